"""Contextual calibration over many demonstration sets, recorded for chapter 4:
``llmlab/results/icl_calibration.json``.

SmolLM2-135M-Instruct on the first :data:`N` words of the frozen sentiment task (and the topic
task zero-shot): for each demonstration set of :data:`PLAN` the scores (log-probabilities,
nats) of both labels for every query, and the scores the same prompt gives them with each
content-free input of :data:`llmlab.icl.CONTENT_FREE_INPUTS` in place of the query, so that
any calibration (Zhao et al. 2021: one input, or the average of several) can be computed
from the record. The sets are zero-shot, the four fixed sets of
:func:`llmlab.icl.fixed_episodes` (0, 2 and 4 positive examples, two orders) and
:data:`N_RANDOM` sets of four examples drawn at random (seeded), labels and order as they
fall. ``python -m llmlab.records.icl_calibration`` makes it (about 20 minutes on one busy
core; an interrupted run resumes from the sets it finished); :func:`load` refuses a record
whose plan differs from the code's.
"""

from __future__ import annotations

import copy
import json
import random
import time

import torch

from .. import _checks, zoo
from ..compat import cache_argument, returned_cache
from ..icl import (
    CONTENT_FREE_INPUTS,
    REAL_TASKS,
    build_prompt,
    content_free_prompts,
    context_window,
    fixed_episodes,
    load_eval_set,
    score_labels,
)
from ..provenance import stamp
from . import read_json, result_path, write_json

NAME = "icl_calibration.json"
COMMAND = "python -m llmlab.records.icl_calibration"
CODE = ("llmlab/icl.py", "llmlab/corpus/icl_eval.json", "llmlab/records/icl_calibration.py")
N, K, N_RANDOM = 100, 4, 8  # queries, examples per set, random sets
FIXED = ((0, "first"), (2, "first"), (2, "last"), (4, "first"))


def demo_sets(n: int = N) -> list[dict]:
    """The plan: one entry per demonstration set (name, task, demonstrations)."""
    n = _checks.positive_int("n", n)
    sets = [{"name": "zero-shot", "task": "sentiment", "demos": []},
            {"name": "topic zero-shot", "task": "topic", "demos": []}]
    for positives, order in FIXED:
        demos = fixed_episodes("sentiment", n, positives, K, order)[0]["demos"]
        sets.append({"name": f"share {positives}/{K} {order}", "task": "sentiment",
                     "demos": [list(d) for d in demos]})
    pool = load_eval_set("sentiment")["items"][n:]
    for seed in range(1, N_RANDOM + 1):
        demos = random.Random(seed).sample(pool, K)
        sets.append({"name": f"random set {seed}", "task": "sentiment", "demos": [list(d) for d in demos]})
    return sets


@torch.no_grad()
def score_shared_prefix(model, tokenizer, prompts: list[str], labels: list[str],
                        batch_size: int = 16) -> torch.Tensor:
    """The scores of :func:`llmlab.icl.score_labels` (answer prefix ``" "``) for prompts that
    share their first tokens (the demonstrations), reading those once: their keys and values
    are cached and copied for each batch, so a query costs only its own tokens. Falls back
    to :func:`llmlab.icl.score_labels` when a label is not a single token. Returns
    (prompts, labels), nats."""
    _checks.model("model", model)
    if isinstance(prompts, str) or not isinstance(prompts, (list, tuple)) or not prompts \
            or not all(isinstance(t, str) for t in prompts):
        raise _checks.ArgumentTypeError(f"prompts must be a non-empty list of prompt texts, got {prompts!r:.60}")
    fulls = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in prompts]
    common = min(len(ids) for ids in fulls) - 1  # at least one token of each prompt is its own
    while common > 0 and any(ids[:common] != fulls[0][:common] for ids in fulls):
        common -= 1
    p_ids = fulls[0][:common]
    label_ids = []
    for t, ids in zip(prompts, fulls):
        row = []
        for lab in labels:
            both = tokenizer(t + " " + lab, add_special_tokens=False)["input_ids"]
            row.append(both[len(ids):] if both[:len(ids)] == ids else None)
        label_ids.append(row)
    if not p_ids or any(r is None or len(r) != 1 for row in label_ids for r in row):
        return score_labels(model, tokenizer, prompts, [labels] * len(prompts), batch_size=batch_size)
    device = next(model.parameters()).device
    cache = returned_cache(model(input_ids=torch.tensor([p_ids], device=device), use_cache=True))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out = torch.zeros(len(prompts), len(labels), dtype=torch.float64)
    for start in range(0, len(prompts), batch_size):
        chunk = [ids[len(p_ids):] for ids in fulls[start:start + batch_size]]
        width = max(len(c) for c in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), len(p_ids) + width), dtype=torch.long)
        mask[:, :len(p_ids)] = 1
        for row, c in enumerate(chunk):
            ids[row, :len(c)] = torch.tensor(c)
            mask[row, len(p_ids):len(p_ids) + len(c)] = 1
        batch_cache = copy.deepcopy(cache)
        batch_cache.batch_repeat_interleave(len(chunk))
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=True,
                       **{cache_argument(model): batch_cache}).logits
        logp = torch.log_softmax(logits.float(), -1).cpu()
        for row, c in enumerate(chunk):
            for j, lab in enumerate(label_ids[start + row]):
                out[start + row, j] = logp[row, len(c) - 1, lab[0]].item()
    return out


def score_set(model, tokenizer, entry: dict, n: int = N) -> dict:
    """Scores of both labels for the first ``n`` queries and for each content-free input."""
    _checks.model("model", model)
    t = load_eval_set(entry["task"])
    labels, template = list(t["labels"]), REAL_TASKS[entry["task"]]
    demos = [tuple(d) for d in entry["demos"]]
    window = context_window(model)
    prompts = [build_prompt(q, demos, len(demos), template, tokenizer=tokenizer, window=window,
                            labels=labels) for q, _ in t["items"][:n]]
    if demos:
        scores = score_shared_prefix(model, tokenizer, [p.text for p in prompts], labels)
    else:
        scores = score_labels(model, tokenizer, prompts, [labels] * len(prompts), batch_size=16)
    free = score_labels(model, tokenizer, content_free_prompts(demos, template), [labels] * len(CONTENT_FREE_INPUTS))
    return {**entry, "labels": labels, "truth": [labels.index(a) for _, a in t["items"][:n]],
            "scores": [[round(v, 5) for v in row] for row in scores.tolist()],
            "content_free": {x: [round(v, 5) for v in row] for x, row in zip(CONTENT_FREE_INPUTS, free.tolist())}}


def run(out=None, n: int = N, model=None, tokenizer=None) -> dict:
    """Score every set of :func:`demo_sets` and write the record to ``out`` (default: the
    shipped file; ``False`` writes nothing), stamped with :func:`llmlab.provenance.stamp`."""
    if out is not False:
        result_path(out, NAME)  # a bad path is refused before the work, not after
    if model is None:
        model, tokenizer = zoo.load(zoo.REAL_MODEL)
    record = {"what": "chapter 4: contextual calibration over demonstration sets", "model": zoo.REAL_MODEL,
              "n": n, "content_free_inputs": list(CONTENT_FREE_INPUTS), **stamp(COMMAND, *CODE), "sets": []}
    # Resumable: each finished set is appended to a parts file beside the record (one JSON
    # line per set), read back on a rerun and removed when the record is written.
    parts = None if out is False else result_path(out, NAME).with_suffix(".parts.jsonl")
    done = {}
    if parts is not None and parts.exists():
        for line in parts.read_text().splitlines():
            row = json.loads(line)
            done[(row["name"], json.dumps(row["demos"]), row["n"])] = row
    for entry in demo_sets(n):
        key = (entry["name"], json.dumps(entry["demos"]), n)
        if key in done:
            record["sets"].append(done[key])
            continue
        t0 = time.perf_counter()
        row = {**score_set(model, tokenizer, entry, n), "n": n}
        row["seconds"] = round(time.perf_counter() - t0, 1)
        record["sets"].append(row)
        if parts is not None:
            with parts.open("a") as f:
                f.write(json.dumps(row) + "\n")
        print(f"{entry['name']}: {row['seconds']:.0f} s", flush=True)
    record["seconds"] = round(sum(row["seconds"] for row in record["sets"]), 1)
    if out is not False:
        write_json(record, out, NAME)
        parts.unlink(missing_ok=True)
    return record


def load(path=None) -> dict:
    """The record at ``path`` (default: the shipped file) as a dict; refuses one made for
    another plan than :func:`demo_sets`."""
    record = read_json(path, NAME, COMMAND)
    planned = [(e["name"], e["task"], e["demos"]) for e in demo_sets(N)]
    if record.get("n") != N or [(s["name"], s["task"], s["demos"]) for s in record["sets"]] != planned:
        raise ValueError(f"{path or NAME} was made for another plan than llmlab.records.icl_calibration "
                         f"(n={N}, {len(planned)} sets); run `{COMMAND}` again")
    return record


def main(argv: list[str] | None = None) -> int:
    """``python -m llmlab.records.icl_calibration [--out PATH]``: chapter 4's calibration record."""
    import argparse

    parser = argparse.ArgumentParser(prog=COMMAND, description=main.__doc__)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    record = run(args.out)
    print(f"{len(record['sets'])} sets in {record['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
