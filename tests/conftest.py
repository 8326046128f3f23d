"""Shared fixtures for the test suite.

``make test`` runs ``pytest tests chapters/*.ipynb --nbval ...``: the files in this
folder are ordinary tests, and every chapter notebook is executed and its outputs
compared with the stored ones (sanitized by ``tests/nbval_sanitize.cfg``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Make `import llmlab` work from a plain checkout too (make test installs it editable).
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (the folder holding _config.yml and pyproject.toml)."""
    return ROOT
