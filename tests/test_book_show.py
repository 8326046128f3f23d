"""llmlab.book.show: the chapters display llmlab's own source."""

import inspect

import pytest

from llmlab import book, sampling


def test_show_returns_the_functions_own_source_and_where_it_lives():
    src = book.show(sampling.top_p_filter)
    assert src.code == inspect.getsource(sampling.top_p_filter).rstrip("\n")
    assert src.where == "llmlab.sampling.top_p_filter"
    assert repr(src).startswith("# llmlab.sampling.top_p_filter\ndef top_p_filter(")


def test_show_highlights_for_the_html_page_with_inline_styles():
    html = book.show(sampling.top_p_filter)._repr_html_()
    assert "style=" in html and "top_p_filter" in html and "<pre" in html


def test_show_can_keep_a_range_of_lines():
    src = book.show(sampling.top_p_filter, lines=(1, 2))
    assert src.code.splitlines() == inspect.getsource(sampling.top_p_filter).splitlines()[:2]


@pytest.mark.parametrize("bad", [3, "top_p_filter", len])
def test_show_refuses_what_has_no_python_source(bad):
    with pytest.raises(TypeError, match="show\\(\\)"):
        book.show(bad)


@pytest.mark.parametrize("lines", [(0, 2), (3, 1), [1, 2], (1.0, 2)])
def test_show_refuses_a_bad_line_range(lines):
    with pytest.raises(ValueError, match="lines must be"):
        book.show(sampling.top_p_filter, lines=lines)


def _stored_sources():
    """(notebook, cell index, where, code) for every stored ``book.show`` output in the book."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    found = []
    for nb in sorted([*root.glob("chapters/*.ipynb"), *root.glob("exercises/solutions/*.ipynb")]):
        cells = json.loads(nb.read_text())["cells"]
        for i, cell in enumerate(cells):
            for out in cell.get("outputs", []):
                text = "".join(out.get("data", {}).get("text/plain", []))
                if text.startswith("# llmlab.") and "\n" in text:
                    where, code = text.split("\n", 1)
                    found.append((nb.name, i, where[2:], code))
    return found


def test_the_book_shows_some_llmlab_source():
    assert len(_stored_sources()) >= 5


@pytest.mark.parametrize("nb,cell,where,code", _stored_sources(),
                         ids=lambda v: v if isinstance(v, (str, int)) and "\n" not in str(v) else "code")
def test_every_stored_source_listing_matches_the_library_today(nb, cell, where, code):
    """A chapter re-executed before llmlab changed shows stale code: re-execute it."""
    import importlib

    parts = where.split(".")
    for k in range(len(parts), 0, -1):  # the longest importable module prefix, then attributes
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        for attr in parts[k:]:
            obj = getattr(obj, attr)
        break
    current = book.show(obj).code.splitlines()
    stored = code.splitlines()
    runs = [current[i:i + len(stored)] for i in range(len(current) - len(stored) + 1)]
    up_to_date = stored in runs
    assert up_to_date, (f"{nb} cell {cell} shows an older {where}: re-execute the notebook "
                            "(tools/execute_notebooks.py)")
