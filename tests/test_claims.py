"""What a chapter says it costs is what its own stored run measured, within the preface's budget.

Each chapter's "What it costs" line glues the notebook's own time from its first code cell
to its last (``runtime_s``; section 2.2 ``families_runtime_s``), and the preface promises
a budget of about two minutes per chapter on two cores. The stored runs of the chapters
listed in ``OVER_BUDGET`` were taken on a loaded machine or are longer than the budget;
they are to be re-executed on an idle machine (or shortened), which empties the list.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p for p in (ROOT / "chapters").glob("[0-9][0-9]*.ipynb") if not p.name.startswith("00_"))
BUDGET_S = 150  # "about two minutes" in the preface, with room for a slower reader's machine

# chapter file name -> its stored runtime in seconds when this list was written (may only shrink)
# Chapter 7 was last executed on a machine about half as fast as the one that timed the other
# chapters (chapters 6 and 8 took 2.1 and 2.2 times their earlier times there): its eleven
# gloo launches, most of each the start of the ranks' processes, took 170 s.
OVER_BUDGET: dict[str, int] = {"07_multi_gpu.ipynb": 180}


def _cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _glued(path):
    """name -> stored text of every glued value of a notebook."""
    out = {}
    for cell in _cells(path):
        for o in cell.get("outputs", []):
            name = o.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                text = o["data"].get("application/papermill.record/text/plain", "")
                out[name] = text.strip("'\"")
    return out


def _runtime_key(path):
    keys = [k for k in _glued(path) if k.endswith("runtime_s")]
    assert len(keys) == 1, f"{path.name}: glue the notebook's own runtime once (runtime_s), found {keys}"
    return keys[0]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_cost_line_glues_the_notebooks_own_runtime(path):
    key = _runtime_key(path)
    text = "\n".join("".join(c["source"]) for c in _cells(path) if c["cell_type"] == "markdown")
    m = re.search(r"\*\*What it costs\*\*:?(.{0,200})", text, re.S)
    assert m, f"{path.name}: no '**What it costs**' line near the top"
    assert "{glue:text}`" + key + "`" in m.group(1), (
        f"{path.name}: the 'What it costs' line must glue {key}, the notebook's measured time, not a typed estimate")
    source = "\n".join("".join(c["source"]) for c in _cells(path) if c["cell_type"] == "code")
    assert re.search(r"started\s*=\s*time\.perf_counter\(\)", source), f"{path.name}: start the clock in a cell"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_stored_runtime_within_the_preface_budget(path):
    seconds = float(_glued(path)[_runtime_key(path)].replace(",", ""))
    known = OVER_BUDGET.get(path.name)
    if known is None:
        assert seconds <= BUDGET_S, (f"{path.name} ran {seconds:.0f} s in its stored outputs, over the preface's "
                                     f"budget of about two minutes ({BUDGET_S} s): shorten it, or re-execute it "
                                     "on an idle machine")
    else:
        assert seconds <= known, f"{path.name}: stored runtime {seconds:.0f} s grew past its known {known} s"


def test_preface_states_the_budget_the_test_checks():
    preface = (ROOT / "chapters" / "00_preface.md").read_text(encoding="utf-8")
    assert re.search(r"budget of\s+about two minutes", preface)
    assert "{nb-exec-table}" in preface  # the build's own measured times, next to the promise
