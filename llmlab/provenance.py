"""Where a recorded result came from: code version, machine and libraries (every recorded result).

Every command that writes into ``llmlab/results/`` stamps its record with :func:`stamp`:
the git commit of the checkout (:func:`code_version`, marked ``+dirty`` when the files
that produce the record have uncommitted changes), the machine it ran on
(:func:`machine`, always a dict) and the command that made it, so a reader can tell
which code, on which machine, made a figure. :func:`read_record` reads a JSON record
back and names the command that makes it when it is missing.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def code_version(*paths: str) -> str:
    """The checkout's commit (12 hex digits), plus ``+dirty`` when any of ``paths`` (relative
    to the repository root) has uncommitted changes; ``'unknown'`` outside a git checkout."""
    bad = [p for p in paths if not isinstance(p, (str, Path))]
    if bad:
        raise TypeError(f"paths must be file paths (str) relative to the repository root, got {type(bad[0]).__name__}"
                        f" {bad[0]!r}")
    paths = tuple(str(p) for p in paths)
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip() if paths else ""
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head + ("+dirty" if dirty else "")) if head else "unknown"


def machine() -> dict:
    """The machine a record was made on: CPU model and count, torch threads, platform and library versions."""
    import os
    import platform

    import torch

    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for lib in ("transformers", "peft", "torchao", "numpy"):
        try:
            versions[lib] = __import__(lib).__version__
        except ImportError:
            pass
    return {"cpu": name, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(), **versions}


def stamp(command: str, *paths: str) -> dict:
    """The provenance block every record carries: ``{"command", "code_version", "machine", "made"}``.

    ``command`` is how to make the record again (``"python -m llmlab.records.sampling_sweep"``);
    ``paths`` are the files (relative to the repository root) whose uncommitted changes
    mark the code version ``+dirty``.
    """
    import datetime

    if not isinstance(command, str) or not command.strip():
        raise (ValueError if isinstance(command, str) else TypeError)(f"command must be the shell command that makes the record, got {command!r}")
    return {"command": command, "code_version": code_version(*paths), "machine": machine(),
            "made": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def read_record(path, command: str) -> dict:
    """A results file (JSON) read back; a missing one gets an error that names the ``command`` that makes it."""
    import json

    if not isinstance(path, (str, Path)):
        raise TypeError(f"path must be a str or pathlib.Path, got {type(path).__name__}")
    path = Path(path)
    if not path.exists():
        from ._checks import MissingFileError  # a FileNotFoundError and a ValueError

        raise MissingFileError(f"no record at {path}; run `{command}` to make it")
    return json.loads(path.read_text())
