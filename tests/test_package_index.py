"""The package docstring's index names every module of llmlab, so a newcomer can find each one."""

import re
from pathlib import Path

import llmlab

ROOT = Path(llmlab.__file__).parent


def test_index_names_every_module():
    modules = {p.stem for p in ROOT.glob("*.py") if not p.stem.startswith("_")}
    modules |= {p.parent.name for p in ROOT.glob("*/__init__.py")}
    named = set(re.findall(r"^- ``(\w+)``", llmlab.__doc__, re.M))
    named |= set(re.findall(r"``(\w+)``", llmlab.__doc__))
    missing = sorted(modules - named)
    assert not missing, f"add these modules to the index in llmlab/__init__.py: {missing}"


def test_index_names_no_module_that_is_gone():
    modules = {p.stem for p in ROOT.glob("*.py")} | {p.parent.name for p in ROOT.glob("*/__init__.py")}
    listed = set(re.findall(r"^- ``(\w+)``", llmlab.__doc__, re.M))
    assert not listed - modules, f"the index names modules that do not exist: {sorted(listed - modules)}"
