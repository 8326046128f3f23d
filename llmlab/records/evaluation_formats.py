"""The frozen benchmark under three prompt formats, recorded for chapter 11: ``llmlab/results/evaluation_formats.json``.

SmolLM2-135M-Instruct scores every item of ``evalbench_mc.json`` (320 questions) in each
of :data:`llmlab.evaluation.FORMATS` ("letter", "text", "chat") with
:func:`llmlab.evaluation.score_multiple_choice`: per item and format, the summed
log-probability of every choice, the per-character variant, the tokens scored, and
whether the model's choice is right under each. The chapter reads the record back for
its accuracies, per-subject results and paired tests, and re-scores a few items live
to check them against it.

``python -m llmlab.records.evaluation_formats`` makes it (about ten minutes on 2 idle
cores). The file is written after each format, and ``--resume`` keeps the formats a
partial file already holds, so an interrupted run loses at most one format's work.
"""

from __future__ import annotations

import time

import torch

from .. import _checks, zoo
from ..evaluation import FORMATS, load_benchmark, score_multiple_choice
from ..provenance import stamp
from . import RESULTS, read_json, result_path, write_json

NAME = "evaluation_formats.json"
COMMAND = "python -m llmlab.records.evaluation_formats"
CODE = ("llmlab/evaluation.py", "llmlab/corpus/evalbench_mc.json", "llmlab/records/evaluation_formats.py")
#: what is recorded: the model, the formats, every multiple-choice item
PLAN = {"model": zoo.REAL_MODEL, "formats": FORMATS, "benchmark": "mc"}
#: digits kept for the log-probabilities (nats): far below any difference between choices
DIGITS = 6


def _row(record: dict) -> dict:
    row = {k: record[k] for k in ("id", "subject", "difficulty", "format", "answer", "chosen", "correct",
                                  "chosen_norm", "correct_norm", "n_tokens")}
    row["logprobs"] = [round(v, DIGITS) for v in record["logprobs"]]
    row["logprobs_per_char"] = [round(v, DIGITS) for v in record["logprobs_per_char"]]
    return row


def run(out=None, formats=FORMATS, resume: bool = False, model=None, tokenizer=None) -> dict:
    """Score every frozen multiple-choice item in each of ``formats``; write the record to
    ``out`` (default: the shipped file; ``False`` writes nothing) after each format, and
    return it. With ``resume=True`` the formats already in the file at ``out`` are kept
    and not scored again (the file must come from the same plan)."""
    formats = list(formats) if isinstance(formats, (list, tuple)) else formats
    if not isinstance(formats, list) or not formats:
        raise _checks.ArgumentTypeError(f"formats must be a non-empty list of {FORMATS}, got {formats!r}")
    for f in formats:
        _checks.choice("formats[]", f, FORMATS)
    path = None if out is False else result_path(out, NAME)  # a bad path is refused before the work
    record = None
    if resume and path is not None and path.exists():
        record = read_json(path, NAME, COMMAND)
        if record.get("plan") != {**PLAN, "formats": list(FORMATS)}:
            raise ValueError(f"{path} was recorded with another plan ({record.get('plan')}); "
                             f"run without --resume to start again")
    if record is None:
        record = {"what": "chapter 11: the frozen multiple-choice benchmark under three prompt formats",
                  "model": zoo.REAL_MODEL, "plan": {**PLAN, "formats": list(FORMATS)},
                  "torch_threads": torch.get_num_threads(), **stamp(COMMAND, *CODE), "rows": [],
                  "seconds": {}}
    if model is None:
        model, tokenizer = zoo.load(zoo.REAL_MODEL)
    items = load_benchmark("mc")
    for f in formats:
        if f in record["seconds"]:
            continue
        started = time.perf_counter()
        record["rows"] += [_row(r) for r in score_multiple_choice(model, tokenizer, items, f)]
        record["seconds"][f] = round(time.perf_counter() - started, 1)
        print(f"{f}: {record['seconds'][f]:.0f} s", flush=True)
        if path is not None:
            write_json(record, path, NAME)
    return record


def load(path=None) -> dict:
    """The recorded scores at ``path`` (default: the shipped file) as a dict, its machine a dict."""
    return read_json(path, NAME, COMMAND)


def main(argv: list[str] | None = None) -> int:
    """``python -m llmlab.records.evaluation_formats [--out PATH] [--resume]``: chapter 11's format grid."""
    import argparse

    parser = argparse.ArgumentParser(prog=COMMAND, description=main.__doc__)
    parser.add_argument("--out", default=None)
    parser.add_argument("--resume", action="store_true", help="keep the formats the file already holds")
    args = parser.parse_args(argv)
    record = run(args.out, resume=args.resume)
    print(f"{len(record['rows'])} scored items in {sum(record['seconds'].values()):.0f} s -> "
          f"{args.out or RESULTS / NAME}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
