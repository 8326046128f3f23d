"""Zero-shot chain of thought of the real model, recorded for chapter 4: ``llmlab/results/icl_cot.json``.

SmolLM2-135M-Instruct's greedy replies to :data:`PLAN` ``["n"]`` two-step word problems of
:func:`llmlab.cot.word_problems`, asked once for the number alone and once to think step by
step (:data:`llmlab.cot.STYLES`), with the answer read from each reply and marked right or
wrong. ``python -m llmlab.records.icl_cot`` makes it (several minutes on 2 cores);
:func:`load` reads it back.
"""

from __future__ import annotations

import time

from .. import zoo
from ..cot import MAX_NEW_TOKENS, STYLES, answer_problems, word_problems
from ..provenance import stamp
from . import read_json, result_path, write_json

NAME = "icl_cot.json"
COMMAND = "python -m llmlab.records.icl_cot"
CODE = ("llmlab/cot.py", "llmlab/records/icl_cot.py")
#: what is recorded: how many problems, from which seed, asked in which styles
PLAN = {"n": 40, "seed": 0, "styles": list(STYLES)}


def run(out=None, model=None, tokenizer=None) -> dict:
    """Greedy replies to the :data:`PLAN` problems in every style, each with the answer read
    from it and whether it is right; written to ``out`` (default: the shipped file; ``False``
    writes nothing), stamped with :func:`llmlab.provenance.stamp`. Returns the record."""
    if out is not False:
        result_path(out, NAME)  # a bad path is refused before the work, not after
    if model is None:
        model, tokenizer = zoo.load(zoo.REAL_MODEL)
    problems = word_problems(PLAN["n"], PLAN["seed"])
    record = {"what": "chapter 4: zero-shot chain of thought on two-step word problems",
              "model": zoo.REAL_MODEL, **PLAN, "max_new_tokens": dict(MAX_NEW_TOKENS),
              **stamp(COMMAND, *CODE), "problems": problems, "replies": {}}
    started = time.perf_counter()
    for style in STYLES:
        record["replies"][style] = answer_problems(model, tokenizer, problems, style)
        print(f"{style}: {time.perf_counter() - started:.0f} s", flush=True)
    record["seconds"] = round(time.perf_counter() - started, 1)
    if out is not False:
        write_json(record, out, NAME)
    return record


def load(path=None) -> dict:
    """The recorded replies at ``path`` (default: the shipped file) as a dict, its machine a
    dict; a record made for another :data:`PLAN` is refused with a ValueError."""
    record = read_json(path, NAME, COMMAND)
    made = {key: record.get(key) for key in PLAN}
    if made != PLAN:
        raise ValueError(f"{NAME} was made for the plan {made}, not {PLAN}; remake it with {COMMAND}")
    return record


def main(argv: list[str] | None = None) -> int:
    """``python -m llmlab.records.icl_cot [--out PATH]``: chapter 4's chain-of-thought replies."""
    import argparse

    parser = argparse.ArgumentParser(prog=COMMAND, description=main.__doc__)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    record = run(args.out)
    right = {s: sum(r["correct"] for r in rows) for s, rows in record["replies"].items()}
    print(f"right of {record['n']}: {right} in {record['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
