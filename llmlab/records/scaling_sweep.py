"""The scaling sweep of chapter 8: ``llmlab/results/scaling_sweep.csv``.

Tiny GPT-2 models (:data:`llmlab.sweep.SWEEP_SIZES`) trained at every (budget, size) of
:data:`PLAN` on the CPU (:func:`llmlab.sweep.run_point`), one row per run, stamped with the
code version and the machine (one line, :func:`llmlab.records.describe`).
``python -m llmlab.records.scaling_sweep [--out PATH] [--budgets 3e10 1e11]`` makes it (about
15 CPU-minutes); :func:`load` reads it back as a DataFrame, which :func:`llmlab.sweep.rerun`
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


def run(out=None, plan: list[tuple[float, list[str]]] | None = None, progress: bool = True):
    """Run every (budget, size) of ``plan`` (default :data:`PLAN`) and write one CSV row per run to
    ``out`` (default: the shipped file). Rows are written as they finish; each records the code
    version and the machine of :func:`llmlab.provenance.stamp`. Returns the path written."""
    plan = PLAN if plan is None else _check_plan(plan)
    out = result_path(out, NAME)
    out.parent.mkdir(parents=True, exist_ok=True)
    train_ids, val_ids = sweep_data()
    s = stamp(COMMAND, *CODE)
    meta = {"code_version": s["code_version"], "machine": describe(s["machine"])}
    start = time.perf_counter()
    with open(out, "w", newline="") as f:
        writer = None
        for budget, sizes in plan:
            for size in sizes:
                row = {**run_point(size, budget, train_ids, val_ids), **meta}
                if writer is None:
                    writer = csv.DictWriter(f, fieldnames=list(row))
                    writer.writeheader()
                writer.writerow(row)
                f.flush()
                if progress:
                    print(f"C={budget:.0e} {size} N={row['n_params']} D={row['tokens']} loss={row['val_loss']:.4f} "
                          f"cpu={row['cpu_seconds']:.1f}s wall={row['wall_seconds']:.1f}s "
                          f"(total {time.perf_counter() - start:.0f}s)", flush=True)
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
    args = parser.parse_args(argv)
    plan = PLAN if not args.budgets else [(c, s) for c, s in PLAN if c in args.budgets]
    if not plan:
        parser.error(f"no budget of PLAN matches {args.budgets}; budgets: {[c for c, _ in PLAN]}")
    print(run(args.out, plan))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
