"""Few-shot dialogue summaries of the real model, recorded for chapter 4: ``llmlab/results/icl_summaries.json``.

SmolLM2-135M-Instruct's greedy summaries (at most :data:`llmlab.icl.SUMMARY_NEW_TOKENS` new
tokens, chat template) of the frozen dialogues of ``llmlab/corpus/dialogues.json`` with 0, 1
and 2 solved examples in the prompt (:data:`llmlab.icl.SUMMARY_SHOTS`), packed into one user
turn or given as alternating user and assistant turns, each scored with
ROUGE-L against the reference. ``python -m llmlab.records.icl_summaries`` makes it (a few
minutes on 2 cores); :func:`load` reads it back.
"""

from __future__ import annotations

import time

import torch

from .. import zoo
from ..icl import (
    SUMMARY_FORMATS,
    SUMMARY_NEW_TOKENS,
    SUMMARY_SHOTS,
    load_dialogues,
    summary_prompt,
    summary_prompt_turns,
)
from ..metrics import rouge_l
from ..provenance import stamp
from . import read_json, result_path, write_json

NAME = "icl_summaries.json"
COMMAND = "python -m llmlab.records.icl_summaries"
CODE = ("llmlab/icl.py", "llmlab/corpus/dialogues.json", "llmlab/records/icl_summaries.py")
#: what is recorded: shot counts and the new-token cap
PLAN = {"shots": SUMMARY_SHOTS, "max_new_tokens": SUMMARY_NEW_TOKENS}
#: the prompt formats (:data:`llmlab.icl.SUMMARY_FORMATS`): examples packed into one user turn, or as
#: alternating user and assistant turns (only with at least one example; zero-shot prompts are the same)
PROMPTS = {"packed": summary_prompt, "turns": summary_prompt_turns}


def run(out=None, model=None, tokenizer=None, reuse: bool = True) -> dict:
    """Greedy summaries of every frozen dialogue with 0, 1 and 2 examples packed in one user
    turn, and with 1 and 2 examples as alternating turns, scored with ROUGE-L against the
    reference; written to ``out`` (default: the shipped file; ``False`` writes nothing),
    stamped with :func:`llmlab.provenance.stamp`. With ``reuse``, rows of an existing record at
    ``out`` made with the same plan are kept (greedy decoding makes them again exactly).
    Returns the record."""
    if out is not False:
        result_path(out, NAME)  # a bad path is refused before the work, not after
    if model is None:
        model, tokenizer = zoo.load(zoo.REAL_MODEL)
    old = {}
    if reuse and out is not False and result_path(out, NAME).exists():
        previous = read_json(out, NAME, COMMAND)
        if previous.get("shots") == list(SUMMARY_SHOTS) and previous.get("max_new_tokens") == SUMMARY_NEW_TOKENS:
            old = {(r.get("format", "packed"), r["k"], r["dialogue"]): r for r in previous["rows"]}
    pairs = load_dialogues()
    stop = tokenizer.convert_tokens_to_ids("<|im_end|>")
    record = {"what": "chapter 4: zero-, one- and two-shot dialogue summaries", "model": zoo.REAL_MODEL,
              "shots": list(SUMMARY_SHOTS), "formats": list(SUMMARY_FORMATS),
              "max_new_tokens": SUMMARY_NEW_TOKENS, "n": len(pairs), **stamp(COMMAND, *CODE), "rows": []}
    started = time.perf_counter()
    with torch.inference_mode():
        for fmt in SUMMARY_FORMATS:
            for k in SUMMARY_SHOTS:
                if fmt != "packed" and k == 0:
                    continue
                for i, (dialogue, reference) in enumerate(pairs):
                    if (fmt, k, i) in old:
                        record["rows"].append({**old[(fmt, k, i)], "format": fmt})
                        continue
                    ids = tokenizer(PROMPTS[fmt](tokenizer, i, k), return_tensors="pt", add_special_tokens=False)
                    new = model.generate(**ids, max_new_tokens=SUMMARY_NEW_TOKENS, do_sample=False,
                                         eos_token_id=stop, pad_token_id=stop)[0, ids["input_ids"].shape[1]:].tolist()
                    text = tokenizer.decode([t for t in new if t != stop]).strip()
                    record["rows"].append({"dialogue": i, "k": k, "format": fmt, "summary": text,
                                           "rouge_l": rouge_l(text, reference),
                                           "prompt_tokens": ids["input_ids"].shape[1]})
                print(f"{fmt}, {k} shots: {time.perf_counter() - started:.0f} s", flush=True)
    record["seconds"] = round(time.perf_counter() - started, 1)
    if old:
        record["seconds_reused"] = previous["seconds"]
    if out is not False:
        write_json(record, out, NAME)
    return record


def load(path=None) -> dict:
    """The recorded summaries at ``path`` (default: the shipped file) as a dict, its machine a dict."""
    return read_json(path, NAME, COMMAND)


def main(argv: list[str] | None = None) -> int:
    """``python -m llmlab.records.icl_summaries [--out PATH]``: chapter 4's few-shot summaries."""
    import argparse

    parser = argparse.ArgumentParser(prog=COMMAND, description=main.__doc__)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    record = run(args.out)
    print(f"{len(record['rows'])} summaries in {record['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
