"""The real assistant's recorded answers of chapter 1: ``llmlab/results/lifecycle_completions.json``.

SmolLM2-135M-Instruct's greedy answers to every prompt of :func:`plan` (the course's use
cases and the chapter's task sets), with the seconds per group.
``python -m llmlab.records.lifecycle_completions [group ...]`` makes it (about 25 minutes on
2 cores); :func:`load` reads it back and refuses a record whose prompts differ from today's,
so a changed prompt cannot be judged by a stale answer.
"""

from __future__ import annotations

import time

import torch

from .. import _checks, zoo
from ..chat import chat_complete
from ..lifecycle import USE_CASES, arithmetic_items, calculator_items, capital_items, sentiment_items
from ..provenance import stamp
from . import read_json, result_path, write_json

NAME = "lifecycle_completions.json"
COMMAND = "python -m llmlab.records.lifecycle_completions"
CODE = ("llmlab/chat.py", "llmlab/lifecycle.py", "llmlab/corpus/lifecycle_tasks.json", "llmlab/records/lifecycle_completions.py")


# The use cases go one at a time, so that the chapter's live re-run of one of them repeats
# exactly the computation that was recorded.
def plan() -> dict[str, tuple[list[str], int, int]]:
    """What :func:`run` generates: group name -> (prompts, max_new_tokens, batch_size)."""
    return {
        "use_cases": ([u.prompt for u in USE_CASES], 80, 1),
        "sentiment": ([i.prompt for i in sentiment_items()], 8, 32),
        "capitals": ([i.prompt for i in capital_items()], 20, 32),
        "arithmetic": ([i.prompt for i in arithmetic_items()], 64, 32),
        "calculator": ([i.prompt for i in calculator_items()], 48, 32),
    }


def run(out=None, groups: list[str] | None = None) -> dict:
    """Generate the greedy answers of the real model to every prompt of :func:`plan` and save them
    to ``out`` (default: the shipped file), stamped with :func:`llmlab.provenance.stamp` and the
    seconds each group took. Returns the record."""
    import platform

    import transformers

    groups_plan = plan()
    if groups is not None and (isinstance(groups, str) or not isinstance(groups, (list, tuple))):
        raise _checks.ArgumentTypeError(f"groups must be None (all) or a list of group names, got "
                                        f"{type(groups).__name__} {groups!r}; allowed: {list(groups_plan)}")
    groups = list(groups_plan) if groups is None else groups
    unknown = [g for g in groups if g not in groups_plan]
    if unknown:
        raise ValueError(f"unknown groups {unknown}; allowed: {list(groups_plan)}")
    result_path(out, NAME)  # a bad path is refused before the work, not after
    torch.manual_seed(0)
    model, tokenizer = zoo.load(zoo.REAL_MODEL, device="cpu")
    record = {"model": zoo.REAL_MODEL, **stamp(COMMAND, *CODE),
              "python": platform.python_version(), "torch": torch.__version__,
              "transformers": transformers.__version__, "decoding": "greedy (model.generate, do_sample=False)",
              "groups": {}}
    for group in groups:
        prompts, max_new, batch = groups_plan[group]
        start = time.perf_counter()
        answers = chat_complete(model, tokenizer, prompts, max_new_tokens=max_new, batch_size=batch)
        record["groups"][group] = {"max_new_tokens": max_new, "batch_size": batch,
                                   "seconds": round(time.perf_counter() - start, 1),
                                   "completions": [{"prompt": p, "answer": a} for p, a in zip(prompts, answers)]}
        print(f"{group}: {len(prompts)} prompts in {record['groups'][group]['seconds']} s", flush=True)
    write_json(record, out, NAME)
    return record


def load(path=None) -> dict:
    """The recorded completions at ``path`` (default: the shipped file) as a dict, its machine a
    dict, checked against today's prompts.

    Raises ``ValueError`` when a group's prompts differ from :func:`plan`.
    """
    record = read_json(path, NAME, COMMAND)
    for group, (prompts, _, _) in plan().items():
        if group not in record["groups"]:
            raise ValueError(f"the record {path or NAME} has no group {group!r}; run {COMMAND}")
        recorded = [c["prompt"] for c in record["groups"][group]["completions"]]
        if recorded != prompts:
            raise ValueError(f"the prompts of group {group!r} changed since {path or NAME} was recorded; "
                             f"run {COMMAND}")
    return record


def main(argv: list[str] | None = None) -> int:
    """``python -m llmlab.records.lifecycle_completions [group ...]``: record chapter 1's completions."""
    import argparse

    parser = argparse.ArgumentParser(prog=COMMAND, description=main.__doc__)
    parser.add_argument("groups", nargs="*", help=f"default: all of {list(plan())}")
    args = parser.parse_args(argv)
    run(groups=args.groups or None)
    print(f"wrote {NAME}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
