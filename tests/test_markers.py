"""The slow marker reaches the tests it names, and `make test-fast` selects the rest."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _collected(*args: str) -> set[str]:
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", *args, "tests"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    # by test function (parametrized ids may hold object addresses that differ between runs)
    return {line.split("[")[0] for line in done.stdout.splitlines() if "::" in line}


def test_slow_marker_splits_the_suite():
    everything, fast = _collected(), _collected("-m", "not slow")
    slow = everything - fast
    assert fast and slow and fast <= everything
    assert all("test_distributed.py" not in t and "test_browser.py" not in t for t in fast)
    assert any("short_rebuild" in t for t in slow) and not any("short_rebuild" in t for t in fast)
    assert "tests/test_book.py::test_book_builds_without_executing" in slow  # through the built_book fixture
    assert "tests/test_markers.py::test_slow_marker_splits_the_suite" in fast
