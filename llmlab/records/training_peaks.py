"""Training-step peaks measured against the calculator, recorded for chapter 6:
``llmlab/results/training_peaks.json``.

One steady-state AdamW step (the second of two) of each model of :data:`PLAN`, its peak
measured by :func:`llmlab.peak.measure` with the bytes live at the peak by category, next to
:func:`llmlab.train_memory.predict` (:func:`llmlab.train_memory.compare`).
``python -m llmlab.records.training_peaks`` makes it; :func:`load` reads it back.
"""

from __future__ import annotations

from .. import data, zoo
from ..provenance import stamp
from ..tokenization import encode_stories
from ..train_memory import compare
from . import read_json, result_path, write_json

NAME = "training_peaks.json"
COMMAND = "python -m llmlab.records.training_peaks"
CODE = ("llmlab/train_memory.py", "llmlab/peak.py", "llmlab/memory.py", "llmlab/records/training_peaks.py")
#: the models measured: (name, batch size, sequence length)
PLAN = (("stories-1m", 8, 128), (zoo.REAL_MODEL, 1, 64))


def run(out=None) -> dict:
    """Predicted against measured for every model of :data:`PLAN`, written to ``out`` (default: the
    shipped file; ``False`` writes nothing), stamped with :func:`llmlab.provenance.stamp`."""
    if out is not False:
        result_path(out, NAME)  # a bad path is refused before the work, not after
    rec = {"what": "chapter 6: training-step peaks measured with the profiler against the calculator",
           **stamp(COMMAND, *CODE), "runs": []}
    for name, b, s in PLAN:
        model, tokenizer = zoo.load(name, device="cpu")
        ids = encode_stories(tokenizer, data.load_corpus("validation")[:100])[: b * (s + 1)].view(b, s + 1)
        row = compare(model, ids)
        row["model"] = name
        rec["runs"].append(row)
        print(f"{name}: predicted {row['predicted']['total'] / 1e6:.0f} MB, peak {row['peak_total'] / 1e6:.0f} MB "
              f"({row['seconds']:.0f} s)", flush=True)
    if out is not False:
        write_json(rec, out, NAME)
    return rec


def load(path=None) -> dict:
    """The recorded peaks at ``path`` (default: the shipped file) as a dict, its machine a dict."""
    return read_json(path, NAME, COMMAND)


def main(argv: list[str] | None = None) -> int:
    """``python -m llmlab.records.training_peaks [--out PATH]``: measure the training-step peaks (chapter 6)."""
    import argparse

    parser = argparse.ArgumentParser(prog=COMMAND, description=main.__doc__)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    run(args.out)
    print(f"wrote {args.out or NAME}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
