"""The scaling sweep of chapter 8: ``llmlab/results/scaling_sweep.csv``.

Tiny GPT-2 models (:data:`llmlab.sweep.SWEEP_SIZES`) trained at every (budget, size) of
:data:`PLAN` on the CPU (:func:`llmlab.sweep.run_point`), one row per run, stamped with the
code version and the machine (one line, :func:`llmlab.records.describe`).
``python -m llmlab.records.scaling_sweep [--out PATH] [--budgets 3e10 1e11] [--seeds 0 1 2]`` makes
it (about 15 CPU-minutes a seed; resumable, and two processes with their own ``--out`` and
``--seeds`` are joined by ``--merge A.csv B.csv``); :func:`load` reads it back as a DataFrame, which :func:`llmlab.sweep.rerun`
and :mod:`llmlab.scaling_fits` take.
"""

from __future__ import annotations

import csv
import time

from .. import _checks
from ..provenance import stamp
from ..sweep import SWEEP_SIZES, run_point, sweep_data
from . import describe, result_path

NAME = "scaling_sweep.csv"
COMMAND = "python -m llmlab.records.scaling_sweep"
CODE = ("llmlab/train.py", "llmlab/sweep.py", "llmlab/scaling.py", "llmlab/records/scaling_sweep.py")
#: Compute budgets (FLOPs, 6ND) and the sizes trained at each: an IsoFLOP design, as in
#: Hoffmann et al. 2022's approach 2, shifted to our scale (two orders of magnitude).
PLAN: list[tuple[float, list[str]]] = [
    (1e10, ["s0", "s1", "s2", "s3"]),
    (3e10, ["s0", "s1", "s2", "s3", "s4"]),
    (1e11, ["s0", "s1", "s2", "s3", "s4"]),
    (3e11, ["s1", "s2", "s3", "s4", "s5"]),
    (1e12, ["s2", "s3", "s4", "s5", "s6"]),
    (2e12, ["s3", "s4", "s5"]),
]


def _check_plan(plan) -> list[tuple[float, list[str]]]:
    """``plan`` if it is a list of (budget, [size, ...]) pairs with known sizes and budgets > 0."""
    if isinstance(plan, (str, bytes)) or not isinstance(plan, (list, tuple)) or not all(
            isinstance(p, (list, tuple)) and len(p) == 2 for p in plan):
        raise _checks.ArgumentTypeError(f"plan must be a list of (budget, [size, ...]) pairs, e.g. [(1e12, ['s3', 's4'])], "
                                        f"got {type(plan).__name__} {plan!r:.60}")
    for budget, sizes in plan:
        _checks.positive("budget", budget)
        for size in _checks.strings("sizes", sizes):
            if size not in SWEEP_SIZES:
                raise ValueError(f"unknown sweep size {size!r}; sizes: {sorted(SWEEP_SIZES)}")
    return plan


#: Seeds of every point: each draws the initial weights and the order of the batches.
SEEDS: tuple[int, ...] = (0, 1, 2)


def _check_seeds(seeds) -> tuple[int, ...]:
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, (list, tuple)) or not seeds:
        raise _checks.ArgumentTypeError(f"seeds must be a non-empty list of non-negative ints, e.g. [0, 1, 2], "
                                        f"got {type(seeds).__name__} {seeds!r:.60}")
    return tuple(_checks.non_negative_int("seed", s) for s in seeds)


def _key(row) -> tuple[str, float, int]:
    return str(row["size"]), float(row["budget_flops"]), int(row.get("seed", 0) or 0)


def run(out=None, plan: list[tuple[float, list[str]]] | None = None, progress: bool = True,
        seeds=SEEDS):
    """Run every (budget, size) of ``plan`` (default :data:`PLAN`) with every seed of ``seeds``
    and write one CSV row per run to ``out`` (default: the shipped file).

    Resumable: the runs already in ``out`` (same size, budget and seed) are kept and skipped; new
    rows are appended as they finish, each with the code version and the machine of
    :func:`llmlab.provenance.stamp`. Returns the path written."""
    plan = PLAN if plan is None else _check_plan(plan)
    seeds = _check_seeds(seeds)
    out = result_path(out, NAME)
    out.parent.mkdir(parents=True, exist_ok=True)
    done: set[tuple[str, float, int]] = set()
    fields = None
    if out.exists() and out.stat().st_size:
        with open(out, newline="") as f:
            reader = csv.DictReader(f)
            fields = reader.fieldnames
            done = {_key(r) for r in reader}
    todo = [(c, size, seed) for seed in seeds for c, sizes in plan for size in sizes
             if (size, float(c), seed) not in done]
    if not todo:
        return out
    train_ids, val_ids = sweep_data()
    s = stamp(COMMAND, *CODE)
    meta = {"code_version": s["code_version"], "machine": describe(s["machine"])}
    start = time.perf_counter()
    with open(out, "a", newline="") as f:
        writer = None if fields is None else csv.DictWriter(f, fieldnames=fields)
        for budget, size, seed in todo:
            row = {**run_point(size, budget, train_ids, val_ids, seed), **meta}
            if writer is None:
                writer = csv.DictWriter(f, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)
            f.flush()
            if progress:
                print(f"C={budget:.0e} {size} seed={seed} N={row['n_params']} D={row['tokens']} "
                      f"loss={row['val_loss']:.4f} cpu={row['cpu_seconds']:.1f}s wall={row['wall_seconds']:.1f}s "
                      f"(total {time.perf_counter() - start:.0f}s)", flush=True)
    return out


def merge(paths, out=None):
    """Join sweep CSV files made in parallel (``--out`` and ``--seeds`` per process) into ``out``
    (default: the shipped file): one row per (size, budget, seed), the first file's row where
    two hold the same run, ordered by seed, budget and size as in :data:`PLAN`. Returns the path."""
    if isinstance(paths, (str, bytes)) or not isinstance(paths, (list, tuple)) or not paths:
        raise _checks.ArgumentTypeError(f"paths must be a non-empty list of CSV paths, got {type(paths).__name__}")
    rows: dict[tuple[str, float, int], dict] = {}
    fields: list[str] = []
    for p in paths:
        with open(p, newline="") as f:
            reader = csv.DictReader(f)
            for name in reader.fieldnames or []:
                if name not in fields:
                    fields.append(name)
            for r in reader:
                rows.setdefault(_key(r), r)
    order = {(size, float(c)): i for i, (c, size) in
             enumerate((c, size) for c, sizes in PLAN for size in sizes)}
    out = result_path(out, NAME)
    ranked = sorted(rows.items(), key=lambda kv: (kv[0][2], order.get(kv[0][:2], len(order)), kv[0]))
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for _, r in ranked:
            writer.writerow({k: r.get(k, "") for k in fields})
    return out


def load(path=None):
    """The sweep at ``path`` (default: the shipped file) as a pandas DataFrame, one row per run."""
    import pandas as pd

    path = result_path(path, NAME)
    if not path.exists():
        raise _checks.MissingFileError(f"no sweep at {path}; run `{COMMAND}` to make it")
    return pd.read_csv(path)


def main(argv: list[str] | None = None) -> int:
    """``python -m llmlab.records.scaling_sweep [--out PATH] [--budgets 3e10 1e11]``: the chapter 8 sweep."""
    import argparse

    parser = argparse.ArgumentParser(prog=COMMAND, description="Train every model of the chapter 8 sweep "
                                     "and write the CSV.")
    parser.add_argument("--out", default=None)
    parser.add_argument("--budgets", nargs="*", type=float, help="only these budgets of PLAN (FLOPs)")
    parser.add_argument("--seeds", nargs="*", type=int, default=list(SEEDS), help="seeds to run (default: SEEDS)")
    parser.add_argument("--merge", nargs="*", default=None, metavar="CSV",
                        help="join these CSV files into --out instead of training")
    args = parser.parse_args(argv)
    if args.merge is not None:
        if not args.merge:
            parser.error("--merge needs at least one CSV file")
        print(merge(args.merge, args.out))
        return 0
    plan = PLAN if not args.budgets else [(c, s) for c, s in PLAN if c in args.budgets]
    if not plan:
        parser.error(f"no budget of PLAN matches {args.budgets}; budgets: {[c for c, _ in PLAN]}")
    print(run(args.out, plan, seeds=args.seeds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
