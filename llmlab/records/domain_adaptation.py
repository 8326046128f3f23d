"""Continued pre-training against pre-training from scratch, recorded for chapter 9:
``llmlab/results/domain_adaptation_summary.csv`` and ``domain_adaptation_curves.csv``.

The four runs of :func:`llmlab.domain.record_runs` at matched compute (the architecture of
``stories-1m``, a 1,024-entry vocabulary, the schedule :data:`llmlab.domain.RECORD_CONFIG`):
losses before and after in nats per byte, and every ``eval_every`` steps.
``python -m llmlab.records.domain_adaptation`` makes them (about 15 CPU-minutes on 2 cores);
:func:`load` reads them back and refuses a record made for other runs or another schedule.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

from .. import _checks, data
from ..device import seed_everything
from ..domain import RECORD_CONFIG, continue_pretraining, held_out_texts, load_domain_corpus, record_runs, run_setup
from ..provenance import stamp
from ..train import TrainConfig
from . import RESULTS, result_path

NAMES = ("domain_adaptation_summary.csv", "domain_adaptation_curves.csv")
COMMAND = "python -m llmlab.records.domain_adaptation"
CODE = ("llmlab/domain.py", "llmlab/train.py", "llmlab/corpus/domain.txt.gz", "llmlab/records/domain_adaptation.py")
#: what is recorded: the runs (name, start, domain share in tokens) and their schedule
PLAN = {"runs": record_runs(), "config": RECORD_CONFIG}


def stamp_row() -> dict:
    """The provenance every row carries: ``code_version`` and ``machine``, the machine of
    :func:`llmlab.provenance.machine` written as one line (CPU, cores, threads, libraries)."""
    import tokenizers

    s = stamp(COMMAND, *CODE)
    m = s["machine"]
    return {"code_version": s["code_version"],
            "machine": (f"{m['cpu']}; {m['cpu_count']} cores; {m['torch_threads']} torch thread(s); "
                        f"Python {m['python']}; torch {m['torch']}; transformers {m.get('transformers')}; "
                        f"tokenizers {tokenizers.__version__}")}


def run(out=None, steps: int | None = None, progress: bool = True) -> Path:
    """The chapter 9 record: the four runs of :func:`llmlab.domain.record_runs` at matched compute.

    Every run has the same architecture and a 1,024-entry vocabulary (the same parameter
    count), the same schedule (:data:`llmlab.domain.RECORD_CONFIG`) and the same number of
    training tokens, so the same training FLOPs. Writes the two CSV files of :data:`NAMES` into
    the folder ``out`` (default ``llmlab/results``), every row stamped with ``code_version`` and
    ``machine``. ``steps`` shortens the runs. Returns the folder.
    """
    if steps is not None:
        steps = _checks.positive_int("steps", steps)
    if out is not None and not isinstance(out, (str, Path)):
        raise _checks.ArgumentTypeError(f"out must be a folder path (str or Path), got {type(out).__name__}")
    folder = Path(out) if out is not None else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    overrides = ({"steps": steps, "warmup_steps": min(RECORD_CONFIG["warmup_steps"], steps),
                  "eval_every": min(RECORD_CONFIG["eval_every"], steps)} if steps is not None else {})
    cfg = TrainConfig(**{**RECORD_CONFIG, **overrides})
    domain_train, general_train = load_domain_corpus("train"), data.load_corpus("train")
    held_out, meta = held_out_texts(), stamp_row()
    summary, curves = [], []
    for name, start, share in record_runs():
        started = time.perf_counter()
        model, tokenizer, label = run_setup(start, share, general_train)
        seed_everything(0)
        result = continue_pretraining(model, tokenizer, domain_train, general_train, held_out, cfg,
                                      domain_share=share, name=name, device="cpu", progress=progress)
        result.start, result.tokenizer = start, label
        summary.append({**result.row(), "n_params": sum(p.numel() for p in model.parameters()),
                        "wall_seconds": round(time.perf_counter() - started, 1), **meta})
        curves.extend({"run": name, **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()},
                       **meta} for r in result.curve)
    for fname, rows in zip(NAMES, (summary, curves)):
        with open(folder / fname, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return folder


def load(path=None):
    """The recorded summary and curves in the folder ``path`` (default ``llmlab/results``): a pair
    of pandas DataFrames (the summary indexed by run); refuses a record made with other runs or
    another schedule, and names the command that makes it."""
    import pandas as pd

    folder = result_path(path, "")
    paths = [folder / f for f in NAMES]
    for p in paths:
        if not p.exists():
            raise FileNotFoundError(f"no record at {p}; run `{COMMAND}` to make it")
    summary, curves = (pd.read_csv(p) for p in paths)
    expected = [name for name, _, _ in record_runs()]
    if "code_version" not in summary or list(summary["run"]) != expected or \
            set(summary["steps"]) != {RECORD_CONFIG["steps"]}:
        raise ValueError(f"{paths[0]} was made for other runs or another schedule; rerun `{COMMAND}`")
    return summary.set_index("run"), curves


def main(argv: list[str] | None = None) -> int:
    """``python -m llmlab.records.domain_adaptation [--steps N] [--out DIR] [--quiet]``: the chapter 9 record."""
    import argparse

    parser = argparse.ArgumentParser(prog=COMMAND, description=main.__doc__)
    parser.add_argument("--steps", type=int, default=None, help="shorter runs (default: the record's)")
    parser.add_argument("--out", default=None, help="folder for the CSV files (default: llmlab/results)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    print(run(args.out, steps=args.steps, progress=not args.quiet))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
