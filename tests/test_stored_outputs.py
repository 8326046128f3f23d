"""What the notebooks store: nothing that depends on a library's warnings or on the machine that ran them.

nbval re-executes every chapter and solution notebook and compares text outputs; these
checks read the stored outputs themselves, so a warning or a machine path is caught even
in a cell whose output nbval is told to ignore, and even before anything re-executes.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted([*ROOT.glob("chapters/*.ipynb"), *ROOT.glob("exercises/solutions/*.ipynb")])

# A warning class or a logger's warning line, as transformers, torch and Python print them.
WARNING = re.compile(r"\b\w*Warning:|\bwarnings\.warn\b|^\[transformers\]|\bUserWarning\b|\bFutureWarning\b",
                     re.MULTILINE)
# A path of the machine that ran the cell: site-packages, a virtual environment, a home folder.
MACHINE_PATH = re.compile(r"(?:site|dist)-packages[/\\]|[/\\]\.venv[/\\]|/root/|/home/\w+/|[A-Z]:\\Users\\")


def outputs(path: Path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for index, cell in enumerate(code):
        for out in cell.get("outputs", []):
            texts = [out.get("text", "")]
            texts += [v for k, v in out.get("data", {}).items() if k.startswith("text/")]
            text = "".join("".join(t) if isinstance(t, list) else t for t in texts)
            yield index, out, text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_cell_stored_a_stderr_stream(path):
    found = [(i, text[:120]) for i, out, text in outputs(path) if out.get("name") == "stderr"]
    assert not found, f"{path.name}: cells (nbval numbering) that wrote to stderr: {found}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_stored_output_shows_a_library_warning_or_a_machine_path(path):
    found = [(i, m.group(0)) for i, _, text in outputs(path)
             for m in [WARNING.search(text) or MACHINE_PATH.search(text)] if m]
    assert not found, f"{path.name}: outputs with a warning or a path of the machine: {found}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_table_shown_goes_through_the_formatting_helper(path):
    # llmlab.tables.fmt marks its HTML with the class llmlab-table; a raw DataFrame has none
    found = [(i, text[:80]) for i, out, _ in outputs(path)
             for text in ["".join(out.get("data", {}).get("text/html", ""))]
             if "<table" in text and "llmlab-table" not in text]
    assert not found, f"{path.name}: tables shown without llmlab.tables.fmt: {found}"


def test_the_checks_catch_what_they_are_for(tmp_path):
    nb = {"cells": [{"cell_type": "code", "source": "", "metadata": {}, "outputs": [
        {"output_type": "stream", "name": "stderr", "text": "x"},
        {"output_type": "stream", "name": "stdout",
         "text": "/opt/venv/lib/python3.11/site-packages/transformers/x.py:1: FutureWarning: old"}]}]}
    path = tmp_path / "bad.ipynb"
    path.write_text(json.dumps(nb))
    with pytest.raises(AssertionError, match="stderr"):
        test_no_cell_stored_a_stderr_stream(path)
    with pytest.raises(AssertionError, match="Warning"):
        test_no_stored_output_shows_a_library_warning_or_a_machine_path(path)
    import pandas as pd

    from llmlab import tables

    frame = pd.DataFrame({"n_params": [1234]})
    raw = {"output_type": "execute_result", "data": {"text/html": frame.to_html()}}
    nb["cells"][0]["outputs"] = [raw]
    path.write_text(json.dumps(nb))
    with pytest.raises(AssertionError, match="tables.fmt"):
        test_every_table_shown_goes_through_the_formatting_helper(path)
    raw["data"]["text/html"] = tables.fmt(frame, {"n_params": "parameters"})._repr_html_()
    path.write_text(json.dumps(nb))
    test_every_table_shown_goes_through_the_formatting_helper(path)


GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`]+)`")


def glued_names(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    return [out["metadata"]["scrapbook"]["name"]
            for cell in nb["cells"] if cell["cell_type"] == "code"
            for out in cell.get("outputs", []) if "scrapbook" in out.get("metadata", {})]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_glue_key_is_stored_once_and_every_reference_has_one(path):
    # The book build warns on a key glued twice (and fails its no-warnings test only
    # after minutes of building); read the stored outputs instead.
    names = glued_names(path)
    twice = sorted({n for n in names if names.count(n) > 1})
    assert not twice, f"{path.name}: glue keys stored more than once: {twice}"
    nb = json.loads(path.read_text())
    used = {m.group(1).split(":")[0] for cell in nb["cells"] if cell["cell_type"] == "markdown"
            for m in GLUE_ROLE.finditer("".join(cell["source"]))}
    missing = sorted(used - set(names))
    assert not missing, f"{path.name}: glue references with no stored value: {missing}"


def test_the_glue_check_catches_a_duplicate_and_a_dangling_reference(tmp_path):
    def glue_output(name):
        return {"output_type": "display_data", "data": {"text/plain": "'1'"},
                "metadata": {"scrapbook": {"name": name, "mime_prefix": ""}}}
    cells = [{"cell_type": "code", "source": "", "metadata": {},
              "outputs": [glue_output("a"), glue_output("a")]}]
    path = tmp_path / "twice.ipynb"
    path.write_text(json.dumps({"cells": cells}))
    with pytest.raises(AssertionError, match="more than once"):
        test_every_glue_key_is_stored_once_and_every_reference_has_one(path)
    cells = [{"cell_type": "code", "source": "", "metadata": {}, "outputs": [glue_output("a")]},
             {"cell_type": "markdown", "source": "{glue:text}`a` and {glue:text}`b`", "metadata": {}}]
    path.write_text(json.dumps({"cells": cells}))
    with pytest.raises(AssertionError, match=r"\['b'\]"):
        test_every_glue_key_is_stored_once_and_every_reference_has_one(path)
