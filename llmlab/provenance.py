"""Where a recorded result came from: the code version that made it (chapters 1, 5 and 8).

Every command that writes into ``llmlab/results/`` stamps its record with the git
commit of the checkout, marked ``+dirty`` when the files that produce the record have
uncommitted changes, so a reader can tell which code made a figure.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def code_version(*paths: str) -> str:
    """The checkout's commit (12 hex digits), plus ``+dirty`` when any of ``paths`` (relative
    to the repository root) has uncommitted changes; ``'unknown'`` outside a git checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip() if paths else ""
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head + ("+dirty" if dirty else "")) if head else "unknown"


def read_record(path, command: str) -> dict:
    """A results file (JSON) read back; a missing one gets an error that names the ``command`` that makes it."""
    import json

    if not isinstance(path, (str, Path)):
        raise TypeError(f"path must be a str or pathlib.Path, got {type(path).__name__}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no record at {path}; run `{command}` to make it")
    return json.loads(path.read_text())
