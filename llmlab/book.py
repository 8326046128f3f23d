"""Helpers for the book's notebooks: put computed numbers into the prose.

The book's prose quotes numbers that a cell computed, through myst-nb's ``glue``.
On Colab or SageMaker, where the book's build tools are not installed, ``glue``
does nothing and the notebook still runs.
"""

from __future__ import annotations

from typing import Any


def glue(name: str, value: Any, display: bool = False) -> None:
    """Record ``value`` under ``name`` for ``{glue:text}`name``` in the book's markdown."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str (the key the markdown refers to), got {type(name).__name__}")
    if not name.strip():
        raise ValueError("name must be a non-empty str (the key the markdown refers to), got an empty one")
    try:
        from myst_nb import glue as _glue
    except ImportError:  # outside the book build: nothing to record into
        return
    _glue(name, value, display=display)


class Source:
    """The source code of a function, class or method, shown highlighted in a notebook and in the HTML.

    ``repr`` gives the plain source (what nbval compares and a terminal prints);
    ``_repr_html_`` gives it highlighted by Pygments with inline styles, so the
    static book needs no extra stylesheet.
    """

    def __init__(self, code: str, where: str):
        for name, value in (("code", code), ("where", where)):
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a str, got {type(value).__name__}")
        self.code, self.where = code, where

    def __repr__(self) -> str:
        return f"# {self.where}\n{self.code}"

    def _repr_html_(self) -> str:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer

        body = highlight(self.code, PythonLexer(), HtmlFormatter(noclasses=True, nobackground=True))
        return (f'<div class="llmlab-source"><div style="font-size:0.85em;opacity:0.75">{self.where}</div>'
                f"{body}</div>")


def show(obj: Any, lines: tuple[int, int] | None = None) -> Source:
    """The source of ``obj`` (a function, class, method or module) from llmlab itself, to display in a chapter.

    The book prints the code it teaches from the one copy that the tests check, so
    the page and the library cannot drift apart. ``lines=(first, last)`` keeps a
    part of it, counted from 1 within the object's source. Raises ``TypeError`` for
    objects without Python source (a number, a built-in).
    """
    import inspect
    import textwrap

    target = obj.fget if isinstance(obj, property) else obj
    if not (inspect.isfunction(target) or inspect.isclass(target) or inspect.ismethod(target)
            or inspect.ismodule(target)):
        raise TypeError(f"show() needs a function, class, method or module, got {type(obj).__name__}")
    try:
        code = inspect.getsource(target)
        module = inspect.getmodule(target)
    except (OSError, TypeError) as err:
        raise TypeError(f"show() found no Python source for {obj!r}: {err}") from None
    code = textwrap.dedent(code).rstrip("\n")
    if lines is not None:
        if (not isinstance(lines, tuple) or len(lines) != 2 or not all(isinstance(i, int) for i in lines)
                or not 1 <= lines[0] <= lines[1]):
            raise ValueError(f"lines must be a tuple (first, last) with 1 <= first <= last, got {lines!r}")
        code = "\n".join(code.splitlines()[lines[0] - 1:lines[1]])
    name = getattr(target, "__qualname__", getattr(target, "__name__", ""))
    where = module.__name__ if inspect.ismodule(target) else f"{module.__name__}.{name}" if module else name
    return Source(code, where)
