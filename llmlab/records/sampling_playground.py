"""The recorded frames of chapter 5's kernel-free sampling playground: ``llmlab/results/sampling_playground.json``.

One frame per combination of :data:`llmlab.widgets.PLAYGROUND_GRID` (temperature, top-k,
top-p, min-p) for :data:`llmlab.widgets.PLAYGROUND_PROMPT` on the real model: the next-token
chart and a continuation sampled with seed 0. ``python -m llmlab.records.sampling_playground``
makes it; :func:`load` reads it back for :func:`llmlab.widgets.static_sampling_playground`.
"""

from __future__ import annotations

import time

from .. import zoo
from ..provenance import stamp
from ..widgets import PLAYGROUND_GRID, PLAYGROUND_PROMPT, playground_frames
from . import read_json, result_path, write_json

NAME = "sampling_playground.json"
COMMAND = "python -m llmlab.records.sampling_playground"
CODE = ("llmlab/sampling.py", "llmlab/widgets.py", "llmlab/records/sampling_playground.py")
#: what is recorded: the real model, the prompt and every slider combination of the grid
PLAN = {"model": zoo.REAL_MODEL, "prompt": PLAYGROUND_PROMPT, "grid": PLAYGROUND_GRID}


def run(out=None, prompt: str = PLAYGROUND_PROMPT) -> dict:
    """Compute the real model's playground frames and write them, stamped with
    :func:`llmlab.provenance.stamp`, to ``out`` (default the shipped
    ``llmlab/results/sampling_playground.json``). Returns the record."""
    result_path(out, NAME)  # a bad path is refused before the work, not after
    started = time.perf_counter()
    model, tokenizer = zoo.load(PLAN["model"])
    record = {"what": "chapter 5 sampling playground frames", "model": PLAN["model"],
              **stamp(COMMAND, *CODE), **playground_frames(model, tokenizer, prompt)}
    record["seconds"] = round(time.perf_counter() - started, 1)
    path = write_json(record, out, NAME)
    print(f"{len(record['frames'])} frames in {record['seconds']:.0f}s -> {path}")
    return record


def load(path=None) -> dict:
    """The frames record at ``path`` (default: the shipped file) as a dict, its machine a dict."""
    return read_json(path, NAME, COMMAND)


def main(argv: list[str] | None = None) -> int:
    """``python -m llmlab.records.sampling_playground [--out PATH]``: the playground's frames (chapter 5)."""
    import argparse

    parser = argparse.ArgumentParser(prog=COMMAND, description=main.__doc__)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    run(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
