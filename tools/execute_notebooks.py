"""Execute notebooks in place and store their outputs (notebooks are committed with outputs).

    python tools/execute_notebooks.py chapters/05_sampling.ipynb [more.ipynb ...]

Runs each notebook top to bottom in a fresh kernel from the notebook's folder,
writes the outputs back into the file, and prints how long it took. Stops at the
first failing cell, leaving the notebook unchanged on disk. Run
``tools/notebook_header.py`` first so the header cells are current; nbval (``make
test``) then checks that a fresh execution reproduces what is stored.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def execute(path: Path, timeout: int = 600) -> float:
    """Execute ``path`` in place; return the seconds it took. Raises CellExecutionError on a failing cell."""
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    nbformat.write(nb, path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        if path.suffix != ".ipynb" or not path.exists():
            print(f"not a notebook: {path}", file=sys.stderr)
            return 2
        try:
            print(f"{path}: executed in {execute(path, args.timeout):.1f} s")
        except CellExecutionError as err:
            print(f"{path}: a cell failed; the file was not changed.\n{err}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
