"""How fast the sweep's machine trains, recorded for chapter 8: ``llmlab/results/bench_cpu.json``.

:func:`llmlab.bench.run` on the machine that made the scaling sweep: matmul throughput,
tokens per second and MFU of :func:`llmlab.train.train_causal_lm` and of a plain PyTorch loop.
``python -m llmlab.records.bench_cpu [--size s5] [--steps 40] [--rounds 3]`` prints the
report and writes the record; :func:`load` reads it back.

The shipped record's stamp was added after the measurement, without re-measuring (its
``provenance_note`` says what the run itself recorded); its ``machine`` is a dict of what
was known, which :func:`load` returns as written (with no ``cpu`` key).
"""

from __future__ import annotations

from ..bench import report
from ..bench import run as measure
from ..provenance import stamp
from . import read_json, write_json

NAME = "bench_cpu.json"
COMMAND = "python -m llmlab.records.bench_cpu"
CODE = ("llmlab/bench.py", "llmlab/train.py", "llmlab/sweep.py", "llmlab/scaling.py", "llmlab/records/bench_cpu.py")
#: what is measured: the sweep size, steps per loop and rounds (the best round is kept), on the CPU
PLAN = {"size": "s5", "steps": 40, "rounds": 3, "device": "cpu"}


def run(out=None, size: str = PLAN["size"], steps: int = PLAN["steps"], rounds: int = PLAN["rounds"],
        device: str = PLAN["device"]) -> dict:
    """Measure (:func:`llmlab.bench.run`), stamp with :func:`llmlab.provenance.stamp` and write the
    record to ``out`` (default: the shipped file; ``False`` writes nothing). Returns the record."""
    result = {**measure(size, steps, rounds, device), **stamp(COMMAND, *CODE)}
    if out is not False:
        write_json(result, out, NAME)
    return result


def load(path=None) -> dict:
    """The recorded benchmark at ``path`` (default: the shipped file) as a dict."""
    return read_json(path, NAME, COMMAND)


def main(argv: list[str] | None = None) -> int:
    """``python -m llmlab.records.bench_cpu [--size s5] [--steps 40] [--rounds 3] [--device cpu] [--out PATH]``."""
    import argparse

    parser = argparse.ArgumentParser(prog=COMMAND, description=main.__doc__)
    parser.add_argument("--size", default=PLAN["size"], help="sweep model size (llmlab.sweep.SWEEP_SIZES)")
    parser.add_argument("--steps", type=int, default=PLAN["steps"])
    parser.add_argument("--rounds", type=int, default=PLAN["rounds"])
    parser.add_argument("--device", default=PLAN["device"])
    parser.add_argument("--out", default=None, help="where to write the record (default: the shipped file)")
    args = parser.parse_args(argv)
    result = run(args.out, args.size, args.steps, args.rounds, args.device)
    print(report(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
