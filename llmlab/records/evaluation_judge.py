"""Short answers and the model as judge, recorded for chapter 11: ``llmlab/results/evaluation_judge.json``.

SmolLM2-135M-Instruct on the 104 frozen short-answer questions (``evalbench_short.json``):
its greedy answers, scored with exact match and with the lenient "contains" match
(:func:`llmlab.judge.answer_questions`), and the same model as a pairwise judge of each
question's right answer against its recorded wrong one, in both orders
(:func:`llmlab.judge.judge_items`). The chapter reads the record back and re-runs a few
items live to check it. ``python -m llmlab.records.evaluation_judge`` makes it (about a
minute on 2 idle cores).
"""

from __future__ import annotations

import time

import torch

from .. import zoo
from ..evaluation import load_benchmark
from ..judge import ANSWER_INSTRUCTION, ANSWER_TOKENS, JUDGE_TEMPLATE, answer_questions, judge_items
from ..provenance import stamp
from . import RESULTS, read_json, result_path, write_json

NAME = "evaluation_judge.json"
COMMAND = "python -m llmlab.records.evaluation_judge"
CODE = ("llmlab/judge.py", "llmlab/evaluation.py", "llmlab/corpus/evalbench_short.json",
        "llmlab/records/evaluation_judge.py")
#: what is recorded: the model, the answer instruction and cap, the judge's template
PLAN = {"model": zoo.REAL_MODEL, "benchmark": "short", "answer_instruction": ANSWER_INSTRUCTION,
        "answer_tokens": ANSWER_TOKENS, "judge_template": JUDGE_TEMPLATE}


def run(out=None, model=None, tokenizer=None) -> dict:
    """Answer and judge every frozen short-answer item; write the record to ``out`` (default:
    the shipped file; ``False`` writes nothing), stamped; return it."""
    path = None if out is False else result_path(out, NAME)
    if model is None:
        model, tokenizer = zoo.load(zoo.REAL_MODEL)
    items = load_benchmark("short")
    record = {"what": "chapter 11: short answers by exact match, and the model as a pairwise judge",
              "plan": PLAN, "torch_threads": torch.get_num_threads(), **stamp(COMMAND, *CODE)}
    started = time.perf_counter()
    record["answers"] = answer_questions(model, tokenizer, items)
    record["answers_seconds"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    record["judge"] = judge_items(model, tokenizer, items)
    record["judge_seconds"] = round(time.perf_counter() - started, 1)
    if path is not None:
        write_json(record, path, NAME)
    return record


def load(path=None) -> dict:
    """The recorded answers and verdicts at ``path`` (default: the shipped file), its machine a dict."""
    return read_json(path, NAME, COMMAND)


def main(argv: list[str] | None = None) -> int:
    """``python -m llmlab.records.evaluation_judge [--out PATH]``: chapter 11's short answers and judge."""
    import argparse

    parser = argparse.ArgumentParser(prog=COMMAND, description=main.__doc__)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    record = run(args.out)
    print(f"{len(record['answers'])} answers in {record['answers_seconds']:.0f} s, {len(record['judge'])} pairs "
          f"judged in {record['judge_seconds']:.0f} s -> {args.out or RESULTS / NAME}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
