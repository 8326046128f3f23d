"""The linter (ruff, configured in ruff.toml) finds nothing in the repository."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _ruff() -> list[str]:
    here = Path(sys.executable).parent / "ruff"  # installed by the test extras beside this Python
    if here.exists():
        return [str(here)]
    if shutil.which("ruff"):
        return ["ruff"]
    pytest.fail("ruff is not installed: `make test` installs it with the test extras (pip install -e '.[test]')")


def test_ruff_finds_nothing():
    done = subprocess.run([*_ruff(), "check", "--no-cache", "--output-format", "concise", "."], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, f"ruff check found problems (run `ruff check --fix .`):\n{done.stdout}{done.stderr}"


def test_ruff_catches_an_unused_import_and_an_undefined_name(tmp_path):
    """The configuration is live: the same command fails on a file with the errors it should find."""
    (tmp_path / "ruff.toml").write_text((ROOT / "ruff.toml").read_text())
    (tmp_path / "bad.py").write_text("import os\n\n\ndef f():\n    return undefined_name\n")
    done = subprocess.run([*_ruff(), "check", "--no-cache", "--output-format", "concise", "."], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert "F401" in done.stdout and "F821" in done.stdout
