"""In-context learning on the real model, recorded for chapter 4: ``llmlab/results/icl_real.json``.

SmolLM2-135M-Instruct on the frozen word tasks of ``llmlab/corpus/icl_eval.json`` (the first
:data:`RECORD_N` items of each task), one row per condition of :data:`RECORD_PLAN` (see
:func:`llmlab.icl.real_accuracy`). ``python -m llmlab.records.icl_real`` makes it (about
3 minutes on 2 cores); :func:`load` refuses a record whose plan differs from the code's.
"""

from __future__ import annotations

import time

from .. import zoo
from ..icl import fixed_episodes, real_accuracy
from ..provenance import stamp
from . import read_json, result_path, write_json

NAME = "icl_real.json"
COMMAND = "python -m llmlab.records.icl_real"
CODE = ("llmlab/icl.py", "llmlab/corpus/icl_eval.json", "llmlab/records/icl_real.py")

# The recorded grid (chapter 4): (name, task, k, condition, chat, fixed demonstrations or None).
RECORD_N = 100
RECORD_PLAN = (
    [(f"natural {k}", "sentiment", k, "natural", False, None) for k in (0, 1, 2, 4, 8)]
    + [("flipped 4", "sentiment", 4, "flipped", False, None), ("unrelated 4", "sentiment", 4, "unrelated", False, None)]
    + [("chat 0", "sentiment", 0, "natural", True, None)]
    + [("topic natural 0", "topic", 0, "natural", False, None), ("topic flipped 4", "topic", 4, "flipped", False, None)]
    + [(f"share {p}/4 {o}", "sentiment", 4, "natural", False, (p, o))
       for p, o in ((0, "first"), (2, "first"), (2, "last"), (4, "first"))]
)


def plan() -> list[dict]:
    """The plan of the record as plain data (compared when a record is loaded)."""
    return [{"name": name, "task": task, "k": k, "condition": c, "chat": chat, "fixed": list(f) if f else None}
            for name, task, k, c, chat, f in RECORD_PLAN]


def run(out=None, conditions: list[dict] | None = None, n: int = RECORD_N, model=None, tokenizer=None) -> dict:
    """Run :data:`RECORD_PLAN` (or ``conditions``, entries of :func:`plan`) on the real model and
    write the record to ``out`` (default: the shipped file; ``False`` writes nothing): one row per
    condition (see :func:`llmlab.icl.real_accuracy`), with the seconds it took, plus the plan and
    the stamp of :func:`llmlab.provenance.stamp`. Returns the record."""
    if out is not False:
        result_path(out, NAME)  # a bad path is refused before the work, not after
    if model is None:
        model, tokenizer = zoo.load(zoo.REAL_MODEL)
    conditions = plan() if conditions is None else conditions
    record = {"what": "chapter 4: in-context learning on the real model", "model": zoo.REAL_MODEL, "n": n,
              "plan": conditions, **stamp(COMMAND, *CODE), "rows": []}
    started = time.perf_counter()
    for c in conditions:
        t0 = time.perf_counter()
        episodes = fixed_episodes(c["task"], n, c["fixed"][0], c["k"], c["fixed"][1]) if c["fixed"] else None
        row = real_accuracy(model, tokenizer, c["task"], c["k"], c["condition"], c["chat"], episodes, n=n,
                            calibrated=bool(c["fixed"]) or c["k"] == 0)
        row.update(name=c["name"], seconds=round(time.perf_counter() - t0, 1))
        record["rows"].append(row)
        print(f"{c['name']}: {row['accuracy']:.3f} ({row['seconds']:.0f} s)", flush=True)
    record["seconds"] = round(time.perf_counter() - started, 1)
    if out is not False:
        write_json(record, out, NAME)
    return record


def load(path=None) -> dict:
    """The recorded grid at ``path`` (default: the shipped file) as a dict, its machine a dict;
    refuses a record whose plan or size differs from the code's."""
    record = read_json(path, NAME, COMMAND)
    if record.get("plan") != plan() or record.get("n") != RECORD_N:
        raise ValueError(f"{path or NAME} was made for another plan than llmlab.records.icl_real.RECORD_PLAN "
                         f"(n={RECORD_N}); run `{COMMAND}` again")
    return record


def main(argv: list[str] | None = None) -> int:
    """``python -m llmlab.records.icl_real [--out PATH] [--n N]``: chapter 4's grid on the real model."""
    import argparse

    parser = argparse.ArgumentParser(prog=COMMAND, description=main.__doc__)
    parser.add_argument("--out", default=None)
    parser.add_argument("--n", type=int, default=RECORD_N)
    args = parser.parse_args(argv)
    record = run(args.out, n=args.n)
    print(f"{len(record['rows'])} conditions in {record['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
