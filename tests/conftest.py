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


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Every test runs with the Hugging Face hub offline: a test that would download fails instead
    (the book's models are bundled or packaged; nothing is fetched at run time)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def make_gpt2():
    """The builder of a tiny seeded GPT-2: ``make_gpt2(seed=0, vocab_size=97, **config)`` returns a
    fresh model in eval mode each call (safe to train); see tests/tiny_models.py for the defaults."""
    from tiny_models import tiny_gpt2

    return tiny_gpt2


@pytest.fixture(scope="session")
def make_llama():
    """The builder of a tiny seeded Llama: ``make_llama(seed=0, **config)``, a fresh model each call."""
    from tiny_models import tiny_llama

    return tiny_llama


@pytest.fixture(scope="session")
def gpt2_model():
    """One tiny GPT-2 (the defaults of ``make_gpt2``) shared by the whole session: read it, never train it."""
    from tiny_models import tiny_gpt2

    return tiny_gpt2()


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors gain nothing from threads, and on a busy 2-core machine each multi-threaded op
    can wait ~10 ms for a second core. Modules of tiny-model tests opt in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``; the count is restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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


# The slow tests (`make test-fast` leaves them out; `make test` runs them): whole modules, tests by
# name, and every test that uses one of the fixtures below. Each takes several seconds or more on
# 2 cores (pytest --durations): real multi-process runs, model rebuilds, subprocess loads of the
# real model, the book build and the browser.
SLOW_MODULES = {"test_distributed.py", "test_browser.py"}
SLOW_TESTS = {
    "test_gguf_blocks.py": {"test_the_zoos_model_holds_exactly_the_decoded_weights"},
    "test_compat.py": {"test_loading_a_model_with_torchao_installed_prints_nothing"},
    "test_prompt_tuning.py": {"test_full_fine_tuning_of_the_bundled_model_learns_the_task"},
    "test_book.py": {"test_book_build_succeeds_when_cells_pass_and_glue_works",
                     "test_book_build_fails_when_a_cell_fails"},
}
SLOW_FIXTURES = {"built_book", "browsed"}
SLOW_NAME_PARTS = ("short_rebuild",)


def pytest_collection_modifyitems(config, items):
    for item in items:
        name, module = item.originalname if hasattr(item, "originalname") else item.name, item.path.name
        if (module in SLOW_MODULES or name in SLOW_TESTS.get(module, ())
                or SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
                or any(part in name for part in SLOW_NAME_PARTS)):
            item.add_marker(pytest.mark.slow)
