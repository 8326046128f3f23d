"""Chapter 9's seeded comparison at matched bytes of text: ``llmlab/results/domain_matched.json``.

Every arm of :data:`llmlab.domain_matched.ARMS` (continued with the story BPE, continued with the
story BPE extended by whole domain words, from scratch with a BPE of its own; on domain text
alone, and two of them on BloombergGPT's mix) with every seed of :data:`PLAN`, each run reading
the same bytes of training text (:func:`llmlab.domain_matched.byte_budget`). Per run: steps,
bytes per token, held-out losses before and after (nats per byte), the loss of every held-out
document at the end (for paired tests), the curve every ``eval_every`` steps and the seconds.
``python -m llmlab.records.domain_matched`` makes it (about 40 minutes on 2 cores with two
processes: ``--seeds 0 1`` and ``--seeds 2 --out B.json``, joined by ``--merge``); it is
rewritten after every run and resumes. :func:`load` reads it back.
"""

from __future__ import annotations

from .. import _checks
from ..domain_matched import ARMS, CURVE_DOCS, EVAL_DOCS, NEW_TOKENS, SEEDS, byte_budget, run_arm
from ..provenance import stamp
from . import read_json, result_path, write_json

NAME = "domain_matched.json"
COMMAND = "python -m llmlab.records.domain_matched"
CODE = ("llmlab/domain_matched.py", "llmlab/domain.py", "llmlab/train.py", "llmlab/records/domain_matched.py")
#: what is recorded: the arms, the seeds, the words added, the held-out documents, the curve step
PLAN = {"arms": [a[0] for a in ARMS], "seeds": list(SEEDS), "new_tokens": NEW_TOKENS,
        "eval_docs": EVAL_DOCS, "curve_docs": CURVE_DOCS, "eval_every": 50}


def _key(run: dict) -> tuple[str, int]:
    return run["arm"], int(run["seed"])


def run(out=None, seeds=SEEDS, arms=None, progress: bool = True) -> dict:
    """Train every arm (default all of :data:`PLAN`) with every seed of ``seeds``; the record is
    written to ``out`` (default: the shipped file) after every run, and runs already in it are
    kept. Returns the record."""
    path = result_path(out, NAME)
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, (list, tuple)) or not seeds:
        raise _checks.ArgumentTypeError(f"seeds must be a non-empty list of non-negative ints, e.g. [0, 1, 2], "
                                        f"got {type(seeds).__name__} {seeds!r:.60}")
    seeds = [_checks.non_negative_int("seed", s) for s in seeds]
    arms = PLAN["arms"] if arms is None else _checks.strings("arms", arms)
    for arm in arms:
        if arm not in PLAN["arms"]:
            raise ValueError(f"unknown arm {arm!r}; arms: {PLAN['arms']}")
    record = read_json(path, NAME, COMMAND) if path.exists() else None
    budget = byte_budget()
    if record is None or record.get("budget_bytes") != budget:
        record = {"what": "chapter 9: continued pre-training against from scratch at matched bytes, seeded",
                  "model": "stories-1m", **PLAN, "budget_bytes": budget, **stamp(COMMAND, *CODE), "runs": []}
    done = {_key(r) for r in record["runs"]}
    for seed in seeds:
        for arm in arms:
            if (arm, seed) in done:
                continue
            row = {**run_arm(arm, seed, budget, eval_every=PLAN["eval_every"]),
                   "code_version": record["code_version"]}
            record["runs"].append(row)
            record["seconds"] = round(sum(r["seconds"] for r in record["runs"]), 1)
            write_json(record, out, NAME)
            if progress:
                print(f"{arm}, seed {seed}: {row['steps']} steps, domain {row['before']['domain']:.3f} -> "
                      f"{row['after']['domain']:.3f} nats per byte, {row['seconds']:.0f} s", flush=True)
    return record


def merge(paths, out=None) -> dict:
    """Join records made in parallel into ``out`` (default: the shipped file): the runs of all,
    the first file's run where two hold the same (arm, seed) (so a re-made run goes first),
    ordered as :data:`PLAN`; every run keeps the code version of the record it came from, the
    top level the stamp of the first file and all code versions. Refuses records made with
    another byte budget."""
    if isinstance(paths, (str, bytes)) or not isinstance(paths, (list, tuple)) or not paths:
        raise _checks.ArgumentTypeError(f"paths must be a non-empty list of record paths, got {type(paths).__name__}")
    records = [read_json(p, NAME, COMMAND) for p in paths]
    if len({r["budget_bytes"] for r in records}) != 1:
        raise ValueError("the records were made with different byte budgets; remake them with the same code")
    runs: dict[tuple[str, int], dict] = {}
    for r in records:
        for row in r["runs"]:
            runs.setdefault(_key(row), {**row, "code_version": row.get("code_version", r["code_version"])})
    order = {arm: i for i, arm in enumerate(PLAN["arms"])}
    merged = {**records[0], "runs": sorted(runs.values(), key=lambda r: (r["seed"], order[r["arm"]]))}
    merged["seconds"] = round(sum(r["seconds"] for r in merged["runs"]), 1)
    merged["code_versions"] = sorted({r["code_version"] for r in records})
    write_json(merged, out, NAME)
    return merged


def load(path=None) -> dict:
    """The record at ``path`` (default: the shipped file) as a dict; refuses one made for another
    :data:`PLAN` or missing a run of it."""
    record = read_json(path, NAME, COMMAND)
    made = {key: record.get(key) for key in PLAN}
    if made != PLAN:
        raise ValueError(f"{NAME} was made for the plan {made}, not {PLAN}; remake it with {COMMAND}")
    have = {_key(r) for r in record["runs"]}
    missing = [(a, s) for s in PLAN["seeds"] for a in PLAN["arms"] if (a, s) not in have]
    if missing:
        raise ValueError(f"{NAME} lacks the runs {missing}; finish it with {COMMAND}")
    return record


def main(argv: list[str] | None = None) -> int:
    """``python -m llmlab.records.domain_matched [--seeds 0 1 2] [--arms ...] [--out PATH]
    [--merge A.json B.json]``: chapter 9's seeded comparison at matched bytes."""
    import argparse

    parser = argparse.ArgumentParser(prog=COMMAND, description=main.__doc__)
    parser.add_argument("--out", default=None)
    parser.add_argument("--seeds", nargs="*", type=int, default=list(SEEDS))
    parser.add_argument("--arms", nargs="*", default=None)
    parser.add_argument("--merge", nargs="*", default=None, metavar="JSON")
    args = parser.parse_args(argv)
    if args.merge is not None:
        if not args.merge:
            parser.error("--merge needs at least one record")
        merged = merge(args.merge, args.out)
        print(f"{len(merged['runs'])} runs in {merged['seconds']:.0f} s")
        return 0
    record = run(args.out, seeds=args.seeds, arms=args.arms)
    print(f"{len(record['runs'])} runs in {record['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
