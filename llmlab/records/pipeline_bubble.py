"""The recorded pipeline bubble of chapter 7: ``llmlab/results/pipeline_bubble.json``.

The idle fraction per rank of a pipeline-parallel step (the Llama of :mod:`llmlab.tinyllama`,
``torch.distributed.pipelining``, gloo, one thread per rank), GPipe and 1F1B, over :data:`PLAN`:
2 and 4 stages, micro-batches of 2 and 8 sequences, 1 to 16 micro-batches, next to the formula
(p - 1)/(m + p - 1). ``python -m llmlab.records.pipeline_bubble`` makes it again (a few minutes on
2 cores); :func:`load` reads it back for the chapter.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .. import _checks
from ..distributed import launcher
from ..distributed.tables import bubble_table
from ..provenance import stamp

PATH = Path(__file__).resolve().parent.parent / "results" / "pipeline_bubble.json"
COMMAND = "python -m llmlab.records.pipeline_bubble"
#: the recorded grid: world sizes (stages), micro-batch sizes (sequences) and micro-batch counts
PLAN = {"world_sizes": (2, 4), "micro_batch_sizes": (2, 8), "microbatches": (1, 2, 4, 8, 16),
        "seq_len": 64, "repeats": 3}
CODE = ("llmlab/distributed", "llmlab/tinyllama.py", "llmlab/records/pipeline_bubble.py")


def run(out=None, plan: dict | None = None) -> dict:
    """Measure the pipeline's idle fraction over :data:`PLAN` (keys of ``plan`` override it), both
    schedules, world sizes this machine allows, and write the record to ``out`` (default
    :data:`PATH`) as JSON, stamped with :func:`llmlab.provenance.stamp`. Returns the record."""
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise _checks.ArgumentTypeError(f"out must be a path for the record or None, got {type(out).__name__}")
    if plan is not None and not isinstance(plan, dict):
        raise _checks.ArgumentTypeError(f"plan must be a dict with keys of PLAN or None, got {type(plan).__name__}")
    unknown = sorted(set(plan or {}) - set(PLAN))
    if unknown:
        raise ValueError(f"unknown plan keys {unknown}; allowed: {', '.join(PLAN)}")
    plan = dict(PLAN, **(plan or {}))
    rows = []
    t0 = time.perf_counter()
    for n in plan["world_sizes"]:
        if n > launcher.max_world_size("gloo"):
            continue
        for b in plan["micro_batch_sizes"]:
            result = launcher.run(["pp"], n, backend="gloo", steps=1, batch_size=b, seq_len=plan["seq_len"],
                                  microbatches=n, bubble_microbatches=tuple(plan["microbatches"]),
                                  bubble_repeats=plan["repeats"], timeout_s=900)
            for row in bubble_table(result).to_dict("records"):
                rows.append(dict(row, stages=n, micro_batch_size=b))
    record = {"what": "chapter 7 pipeline bubble: idle fraction per rank against (p - 1)/(m + p - 1)",
              "plan": plan, "seconds": round(time.perf_counter() - t0, 1), **stamp(COMMAND, *CODE)}
    # how the ranks ran, beside the machine: the chapter prints these
    record["machine"].update(cpu_cores=launcher.cpu_cores(), backend="gloo", threads_per_rank=1)
    record["rows"] = rows
    Path(out or PATH).write_text(json.dumps(record, indent=1) + "\n")
    return record


def load(path=None):
    """The recorded grid at ``path`` (default :data:`PATH`) as (a pandas DataFrame, its stamp:
    ``code_version``, ``machine``, ``seconds``, ``plan``)."""
    import pandas as pd

    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise _checks.ArgumentTypeError(f"path must be a path to the record or None, got {type(path).__name__}")
    path = Path(path or PATH)
    if not path.is_file():
        raise ValueError(f"no bubble record at {str(path)!r}; make it with {COMMAND}")
    record = json.loads(path.read_text())
    info = {k: record[k] for k in ("code_version", "machine", "seconds", "plan")}
    return pd.DataFrame(record["rows"]), info


def main() -> None:
    record = run()
    print(f"wrote {PATH} ({len(record['rows'])} rows, {record['seconds']} s)")


if __name__ == "__main__":
    main()
