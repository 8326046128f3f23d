"""Helpers for the book's notebooks: put computed numbers into the prose.

The book's prose quotes numbers that a cell computed, through myst-nb's ``glue``.
On Colab or SageMaker, where the book's build tools are not installed, ``glue``
does nothing and the notebook still runs.
"""

from __future__ import annotations

from typing import Any


def glue(name: str, value: Any, display: bool = False) -> None:
    """Record ``value`` under ``name`` for ``{glue:text}`name``` in the book's markdown."""
    try:
        from myst_nb import glue as _glue
    except ImportError:  # outside the book build: nothing to record into
        return
    _glue(name, value, display=display)
