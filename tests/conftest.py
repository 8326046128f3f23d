"""Shared fixtures for the test suite.

``make test`` runs ``pytest tests chapters/*.ipynb --nbval ...``: the files in this
folder are ordinary tests, and every chapter notebook is executed and its outputs
compared with the stored ones (sanitized by ``tests/nbval_sanitize.cfg``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

# Make `import llmlab` work from a plain checkout too (make test installs it editable).
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (the folder holding _config.yml and pyproject.toml)."""
    return ROOT


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """The whole book, built once per session from the stored notebook outputs (no execution).

    Returns the build's completed process (its log is stdout + stderr) and the HTML folder.
    tests/test_book.py checks the build and its pages, tests/test_browser.py loads them.
    """
    tmp = tmp_path_factory.mktemp("book")
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    config["execute"]["execute_notebooks"] = "off"
    for name, folder in config["sphinx"].get("local_extensions", {}).items():  # relative to the config file
        config["sphinx"]["local_extensions"][name] = str(ROOT / folder)
    (tmp / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
           "build", str(ROOT), "--config", str(tmp / "_config.yml"), "--path-output", str(tmp)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    return result, tmp / "_build" / "html"
