"""Print how the running environment differs from the lock (``make test-latest`` calls it).

Usage: ``python tools/lock_drift.py requirements/lock.txt``. Lists the packages whose
installed version is not the locked one, the ones added and the ones gone, and exits 0:
drift is information here, the tests that follow say whether it matters.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path


def read_lock(path: Path) -> dict[str, str]:
    """``{normalised name: version}`` from a file of ``name==version`` lines (comments ignored)."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[normalise(name)] = version.strip()
    return pins


def normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def installed() -> dict[str, str]:
    return {normalise(d.metadata["Name"]): d.version for d in metadata.distributions()
            if normalise(d.metadata["Name"]) != "llmlab"}


def main(argv: list[str]) -> int:
    pins, have = read_lock(Path(argv[0])), installed()
    moved = sorted((n, pins[n], have[n]) for n in pins.keys() & have.keys() if pins[n] != have[n])
    added, gone = sorted(have.keys() - pins.keys()), sorted(pins.keys() - have.keys())
    print(f"against {argv[0]}: {len(moved)} moved, {len(added)} new, {len(gone)} no longer installed")
    for name, old, new in moved:
        print(f"  {name}: {old} -> {new}")
    for name in added:
        print(f"  {name}: new, {have[name]}")
    for name in gone:
        print(f"  {name}: {pins[name]}, no longer installed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["requirements/lock.txt"]))
