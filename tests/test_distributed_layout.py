"""llmlab.distributed is a package of readable parallel code: one module per technique with
public functions a training script would call, none of them hidden behind 'not for direct use'."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import llmlab.distributed

TECHNIQUES = {
    "data_parallel": ["wrap_ddp", "zero1_optimizer", "allreduce_hook"],
    "fsdp": ["fsdp_mesh", "apply_fsdp", "transformer_blocks"],
    "tensor_parallel": ["TP_PLAN", "tp_mesh", "apply_tp"],
    "pipeline": ["pipeline_stage", "pipeline_schedule", "pipeline_step"],
    "fsdp_tp": ["fsdp_tp_mesh", "apply_fsdp_tp"],
}
MODULES = sorted(m.name for m in pkgutil.iter_modules(llmlab.distributed.__path__))


@pytest.mark.parametrize("module, names", TECHNIQUES.items())
def test_each_technique_is_public_in_its_own_module(module, names):
    mod = importlib.import_module(f"llmlab.distributed.{module}")
    for name in names:
        obj = getattr(mod, name)
        if callable(obj):
            assert obj.__module__ == mod.__name__, f"{name} is defined in {obj.__module__}, not {module}"
            assert inspect.getdoc(obj), f"llmlab.distributed.{module}.{name} has no docstring"


def test_the_worker_imports_the_techniques_instead_of_defining_them():
    from llmlab.distributed import worker

    for module, names in TECHNIQUES.items():
        mod = importlib.import_module(f"llmlab.distributed.{module}")
        for name in names:
            if hasattr(worker, name):
                assert getattr(worker, name) is getattr(mod, name)
    assert worker.apply_fsdp.__module__ == "llmlab.distributed.fsdp"
    assert worker.apply_tp.__module__ == "llmlab.distributed.tensor_parallel"


@pytest.mark.parametrize("module", ["__init__"] + MODULES)
def test_no_module_says_it_is_not_for_direct_use(module):
    name = "llmlab.distributed" if module == "__init__" else f"llmlab.distributed.{module}"
    doc = importlib.import_module(name).__doc__
    assert doc, f"{name} has no docstring"
    first = doc.strip().splitlines()[0].lower()
    assert "not for direct use" not in first and "internal" not in first, f"{name}: {first!r}"


@pytest.mark.parametrize("module", sorted(TECHNIQUES))
def test_technique_modules_fit_the_page(module):
    """The book shows these modules' functions: no line wider than the page's 88 characters."""
    source = inspect.getsource(importlib.import_module(f"llmlab.distributed.{module}"))
    wide = [i + 1 for i, line in enumerate(source.splitlines()) if len(line) > 88]
    assert not wide, f"llmlab.distributed.{module}: lines over 88 characters: {wide}"


def test_the_package_reexports_nothing():
    """No compatibility layer: callers import from the module that defines a name."""
    pkg = llmlab.distributed
    assert not hasattr(pkg, "__getattr__")
    public = [n for n in vars(pkg) if not n.startswith("_") and n not in MODULES]
    assert public == [], f"llmlab.distributed re-exports {public}"
