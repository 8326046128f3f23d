"""Benchmark contamination on the real model, recorded for chapter 11: ``llmlab/results/evaluation_contamination.json``.

For each seed of :data:`PLAN`, :func:`llmlab.contamination.leak_experiment` plants
:data:`LEAKED_PER_SUBJECT` items of each subject of the frozen multiple-choice benchmark
among the project's English passages, in the text format (``"Question: ...\nAnswer: "`` and
the right answer's text, :func:`llmlab.contamination.item_text`), fine-tunes a copy of
SmolLM2-135M-Instruct on that text for a few steps, and scores the planted items and as many
clean controls of the same subjects before and after in the same format (each option's full
text, :func:`llmlab.evaluation.score_multiple_choice`); every seed draws other items. Per item
it keeps right or wrong and the margin of the right option's summed log-probability over the
best wrong one's: format learning lifts every option alike and leaves the margin, an item
learnt lifts its own answer. Then :func:`llmlab.contamination.overlap_report` checks all 320
questions against that seed's training text (the planted ones should be flagged, the others
not), and, once, against the project's own corpora (the clean baseline).
``python -m llmlab.records.evaluation_contamination`` makes it (about 8 minutes with one
thread on a busy 2-core machine, written after every seed; ``--resume`` keeps the seeds
already written); :func:`load` reads it back.

Why the text format: in the letter format this model answers "A" to almost everything
(about 25% right), so a leak there mostly taught the format. An earlier record in that
format, with the settings below, moved the planted items from 24% to 39% right and the
controls from 28% to 27%, but the planted-against-control difference in change was not
separated (Welch p = 0.10), and the right letter's log-probability rose as much for the
controls. In the text format the model has signal (about 60% right), and the margin
separates item learning from format learning.

The settings were set on seed 0 alone, before the other seeds ran, by one rule: the planted
items' accuracy must rise clearly while the controls stay near their start. In the letter format two tries
failed it (lr 1e-3 for 6 steps among all ten passages wrecked the model; lr 3e-4 for 8 steps
among three passages taught only the format) and :data:`PLAN`'s settings (two passages of
background, 12 steps of 8 rows at lr 5e-4: about four passes over the 23 rows of text) were
used. In the text format (shorter items, 13 rows: about seven passes) the first try, those same settings, met the rule on seed 0 (planted
25 to 37 right of 40, controls 24 to 22; the margin rose 3.9 nats for the planted items and
0.4 for the controls), so nothing was tuned further. Pooled over the three seeds the planted
items go from 55% to 87% right and the controls from 63% to 57% (a small cost of the
fine-tuning to clean items, McNemar p = 0.039 at n = 120), while the margin rises 3.8 nats for
the planted items and 0.06 for the controls. Each seed takes 2 to 3 minutes with one thread on
a busy 2-core machine.
"""

from __future__ import annotations

import random
import time

from .. import zoo
from ..contamination import FLAG_SHARE, NGRAM, SEQ_LEN, TRAIN_LAST_BLOCKS, leak_experiment, overlap_report
from ..device import seed_everything
from ..evaluation import load_benchmark
from ..provenance import stamp
from . import read_json, result_path, write_json

NAME = "evaluation_contamination.json"
COMMAND = "python -m llmlab.records.evaluation_contamination"
CODE = ("llmlab/contamination.py", "llmlab/evaluation.py", "llmlab/memorization.py",
        "llmlab/corpus/evalbench_mc.json", "llmlab/corpus/english_passages.txt",
        "llmlab/records/evaluation_contamination.py")
LEAKED_PER_SUBJECT = 5
#: what is recorded: seeds, items per subject, the training settings, the n-gram check
PLAN = {"seeds": [0, 1, 2], "leaked_per_subject": LEAKED_PER_SUBJECT, "background_passages": 2, "steps": 12,
        "lr": 5e-4,
        "batch_size": 8, "seq_len": SEQ_LEN, "train_last_blocks": TRAIN_LAST_BLOCKS, "ngram": NGRAM,
        "flag_share": FLAG_SHARE, "format": "text"}


def leaked_draw(items: list[dict], seed: int, per_subject: int = LEAKED_PER_SUBJECT) -> list[str]:
    """The ids planted for ``seed``: ``per_subject`` items of each subject, drawn with ``random.Random(seed)``."""
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise ValueError("items must be a non-empty list of benchmark items (load_benchmark('mc'))")
    rng = random.Random(seed)
    subjects = sorted({item["subject"] for item in items})
    return [i for s in subjects for i in rng.sample([it["id"] for it in items if it["subject"] == s], per_subject)]


def project_corpora() -> dict[str, list[str]]:
    """The project's own training corpora, each a list of documents, read as their modules read them."""
    from ..data import load_corpus
    from ..domain import english_passages, load_domain_corpus
    from ..icl import load_dialogues

    return {"stories": load_corpus("all"), "domain": load_domain_corpus("all"), "english": english_passages(),
            "dialogues": [f"{d}\n{s}" for d, s in load_dialogues()]}


def run(out=None, model=None, tokenizer=None, seeds=None, resume: bool = False) -> dict:
    """Run :data:`PLAN` (or only ``seeds``); write the record to ``out`` (default: the shipped file;
    ``False`` writes nothing), stamped with :func:`llmlab.provenance.stamp`, after every seed
    (``"complete"`` says whether all are in). ``resume=True`` keeps the seeds already in the
    file at ``out`` when its plan is :data:`PLAN`, and runs only the others. Returns the record."""
    if out is not False:
        path = result_path(out, NAME)  # a bad path is refused before the work, not after
    started = time.perf_counter()
    done: dict = {}
    corpora_done = None
    if resume and out is not False and path.exists():
        old = read_json(out, NAME, COMMAND)
        if old.get("plan") == PLAN:
            done = old
        elif all(old.get("plan", {}).get(k) == PLAN[k] for k in ("ngram", "flag_share")):
            corpora_done = old["corpora_overlap"]  # the corpora check does not depend on the training
    if model is None:
        model, tokenizer = zoo.load(zoo.REAL_MODEL, device="cpu")
    items = load_benchmark("mc")
    from ..domain import english_passages

    record = {"what": "chapter 11: benchmark items leaked into fine-tuning text, before and after",
              "model": zoo.REAL_MODEL, "plan": PLAN, **stamp(COMMAND, *CODE), "seeds": []}
    if done:
        record["corpora_overlap"], record["seeds"] = done["corpora_overlap"], done["seeds"]
        started -= done.get("seconds", 0.0)
    elif corpora_done is not None:
        record["corpora_overlap"] = corpora_done
    else:
        corpora = project_corpora()
        flagged: dict[str, list[str]] = {}
        for name, docs in corpora.items():
            rows = overlap_report(items, docs, tokenizer, n=NGRAM, threshold=FLAG_SHARE)
            flagged[name] = [r["id"] for r in rows if r["flagged"]]
            print(f"corpus {name}: {len(flagged[name])} flagged, {time.perf_counter() - started:.0f} s", flush=True)
        any_flagged = sorted(set().union(*flagged.values()))
        record["corpora_overlap"] = {"n_items": len(items), "n_docs": {k: len(v) for k, v in corpora.items()},
                                     "flagged": flagged, "flagged_any": len(any_flagged),
                                     "short": sum(r["short"] for r in rows)}
    wanted = PLAN["seeds"] if seeds is None else seeds
    for seed in wanted:
        if any(r["seed"] == seed for r in record["seeds"]):
            continue
        seed_everything(seed)
        t0 = time.perf_counter()
        result = leak_experiment(model, tokenizer, items, leaked_draw(items, seed),
                                 background_texts=english_passages()[:PLAN["background_passages"]], steps=PLAN["steps"], lr=PLAN["lr"],
                                 seed=seed, batch_size=PLAN["batch_size"], seq_len=PLAN["seq_len"],
                                 train_last_blocks=PLAN["train_last_blocks"], format=PLAN["format"])
        overlap = overlap_report(items, [result["training_text"]], tokenizer, n=NGRAM, threshold=FLAG_SHARE)
        leaked = set(result["leaked_ids"])
        run_record = {"seed": seed, "trained": result["trained"], "n_rows": result["n_rows"],
                      "leaked_ids": result["leaked_ids"], "control_ids": result["control_ids"],
                      "leaked": result["leaked"], "control": result["control"], "losses": result["losses"],
                      "overlap": [{k: r[k] for k in ("id", "found", "total", "flagged")} for r in overlap],
                      "leaked_flagged": sum(r["flagged"] for r in overlap if r["id"] in leaked),
                      "clean_flagged": sum(r["flagged"] for r in overlap if r["id"] not in leaked),
                      "seconds": round(time.perf_counter() - t0, 1)}
        record["seeds"].append(run_record)
        print(f"seed {seed}: leaked {sum(result['leaked']['before'])} -> {sum(result['leaked']['after'])}, "
              f"control {sum(result['control']['before'])} -> {sum(result['control']['after'])}, "
              f"{run_record['seconds']:.0f} s", flush=True)
        record["seconds"] = round(time.perf_counter() - started, 1)
        record["complete"] = sorted(r["seed"] for r in record["seeds"]) == sorted(PLAN["seeds"])
        if out is not False:  # after every seed, so that a stopped run can resume
            write_json(record, out, NAME)
    record["seconds"] = round(time.perf_counter() - started, 1)
    record["complete"] = sorted(r["seed"] for r in record["seeds"]) == sorted(PLAN["seeds"])
    if out is not False:
        write_json(record, out, NAME)
    return record


def load(path=None) -> dict:
    """The recorded contamination experiment at ``path`` (default: the shipped file) as a dict."""
    return read_json(path, NAME, COMMAND)


def main(argv: list[str] | None = None) -> int:
    """``python -m llmlab.records.evaluation_contamination [--out PATH]``: chapter 11's leak experiment."""
    import argparse

    parser = argparse.ArgumentParser(prog=COMMAND, description=main.__doc__)
    parser.add_argument("--out", default=None)
    parser.add_argument("--resume", action="store_true", help="keep the seeds already in the file")
    args = parser.parse_args(argv)
    record = run(args.out, resume=args.resume)
    print(f"{len(record['seeds'])} seeds in {record['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
