"""llmlab's modules in layers: each imports only its own layer (without cycles) and those below.

Every import counts, at module level and inside functions (a lazy import is still a
dependency). The layers, bottom to top:

0. plumbing: small helpers every chapter uses;
1. ideas from scratch, which write no files and load no zoo models;
2. models: the recipes and the zoo that loads them;
3. chapter ideas on real models;
4. on top, imported by nothing in llmlab: the panels (``widgets``), the recorded
   experiments (``records``) and the exercise checks (``exercises``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "llmlab"

LAYERS: dict[int, set[str]] = {
    0: {"_checks", "device", "compat", "book", "tables", "plot", "provenance", "stats"},
    # icl sits here, not with the chapter ideas on real models: its prompts and label scoring are
    # from scratch and take the model as an argument, and the recipes of the icl-* checkpoints use them
    1: {"attention", "llama", "tinygpt2", "tinyllama", "diagrams", "kv_cache", "objectives", "metrics",
        "sampling", "quality", "memorization", "quant", "gguf_blocks", "memory", "peak", "train",
        "train_memory", "scaling", "scaling_fits", "data", "tokenization", "evaluation",
        "contamination", "judge", "distributed",
        "chat", "icl", "context_window", "retrieval", "classifier", "prompt_template", "prompt_tuning",
        "lora", "nf4", "orders", "preferences", "alignment", "serving"},
    2: {"recipes", "zoo"},
    3: {"lifecycle", "cot", "model_card", "prompt_tuning_real", "domain", "domain_matched", "quant_real", "sweep", "bench",
        "finetune", "distill", "rag", "tools", "guardrails"},
    4: {"widgets", "records", "exercises"},
}
TOP = 4


def _name(path: Path) -> str:
    """``llmlab.a.b`` for llmlab/a/b.py (a package's __init__ is the package)."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The llmlab modules ``name`` imports anywhere in its file (functions included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # ``from . import zoo`` imports the module llmlab.zoo; ``from .zoo import load`` imports llmlab.zoo
            targets = [f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in known else stem for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target.startswith("llmlab.") and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _layer(module: str) -> int:
    """The layer of ``llmlab.x`` or of a module inside the package ``llmlab.x``."""
    top = module.split(".")[1]
    for layer, names in LAYERS.items():
        if top in names:
            return layer
    raise KeyError(module)


def test_every_module_has_a_layer():
    unplaced = sorted({m.split(".")[1] for m in _modules() if m != "llmlab"} - set().union(*LAYERS.values()))
    assert not unplaced, f"give these modules a layer in tests/test_layers.py: {unplaced}"


def test_no_import_points_up():
    upward = [f"{m} (layer {_layer(m)}) imports {t} (layer {_layer(t)})"
              for m, targets in _graph().items() if m != "llmlab"
              for t in sorted(targets) if _layer(t) > _layer(m)]
    assert not upward, "\n".join(upward)


def test_the_top_layer_is_imported_only_from_the_top():
    """widgets, records and exercises are imported by nothing below them (a record may use a panel's frames)."""
    into_top = [f"{m} imports {t}" for m, targets in _graph().items() if m != "llmlab" and _layer(m) < TOP
                for t in sorted(targets) if _layer(t) == TOP]
    assert not into_top, "\n".join(into_top)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle():
    # a package imports its own modules from __init__; count a module's import of its package as none
    graph = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in _graph().items()}
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_cycle_finder_finds_a_lazy_cycle():
    assert _cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("source, expected", [
    ("from . import zoo", {"llmlab.zoo"}),
    ("def f():\n    from .sampling import machine", {"llmlab.sampling"}),
    ("import llmlab.icl as icl", {"llmlab.icl"}),
])
def test_imports_inside_functions_count(tmp_path, source, expected):
    path = tmp_path / "m.py"
    path.write_text(source)
    assert _imports("llmlab.m", path, {"llmlab.zoo", "llmlab.sampling", "llmlab.icl", "llmlab.m"}) == expected


WRITERS = ("write_text", "json.dump", "to_csv", "write_bytes", "open(")


def test_only_records_write_results():
    """Nothing below llmlab/records/ writes into llmlab/results/."""
    offenders = []
    for name, path in _modules().items():
        if name.startswith("llmlab.records"):
            continue
        text = path.read_text()
        if "results" not in text:
            continue
        for i, line in enumerate(text.splitlines(), 1):
            if any(w in line for w in WRITERS) and ("results" in line.lower() or "RESULTS" in line):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{i}: {line.strip()}")
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value == "results":
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: names the results folder")
    assert not offenders, "\n".join(offenders)
