"""Tables for the page: a DataFrame of formatted strings with human headers (every chapter).

A chapter computes a pandas DataFrame with Python names and raw numbers; the
reader should see headers in words with units and numbers rounded the way the
prose talks about them. :func:`fmt` makes that second frame and leaves the
first one alone, so a cell can keep computing with the raw numbers:

    >>> raw = pd.DataFrame({"n_params": [134515008], "weights": [538060032]})
    >>> fmt(raw, {"n_params": "parameters", "weights": "weights (fp32)"},
    ...     bytes_cols=["weights"], index=False)
     parameters weights (fp32)
    134,515,008         538 MB

The result is a :class:`Table`: a DataFrame whose text and HTML displays are
plain ``to_string`` / ``to_html`` output (no Styler, whose HTML carries random
ids), so a stored notebook output is the same on every run.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from llmlab import _checks

MISSING = "—"          # shown for None and NaN
SIGNIFICANT = 4        # significant figures for floats when ``digits`` says nothing
BYTES_SIGNIFICANT = 3  # significant figures for byte counts
BYTE_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")  # decimal: 1 KB = 1000 bytes


class Table(pd.DataFrame):
    """A DataFrame of formatted strings for display; ``show_index`` says whether the index is shown."""

    _metadata = ["show_index"]

    @property
    def _constructor(self):
        return Table

    def __repr__(self) -> str:
        return self.to_string(index=getattr(self, "show_index", True))

    def _repr_html_(self) -> str:
        return self.to_html(index=getattr(self, "show_index", True), border=0,
                            classes="llmlab-table")


def _names(columns: pd.Index) -> list:
    """The names a column may be called by: its key, and for MultiIndex columns each level's value."""
    names = list(columns)
    if isinstance(columns, pd.MultiIndex):
        names += [v for level in columns.levels for v in level]
    return names


def _pick(column, mapping):
    """``mapping``'s entry for ``column`` (its full key first, then a level's value), or None."""
    if column in mapping:
        return column
    if isinstance(column, tuple):
        for part in reversed(column):
            if part in mapping:
                return part
    return None


def _column_list(name: str, value, columns: pd.Index) -> list:
    """``value`` (a list of column names) checked against ``columns``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable) or isinstance(value, Mapping):
        raise _checks.ArgumentTypeError(
            f"{name} must be a list of column names, got {type(value).__name__} {_checks._shown(value)}"
            + (f"; wrap it in a list: [{value!r}]" if isinstance(value, str) else ""))
    value = list(value)
    unknown = [c for c in value if c not in _names(columns)]
    if unknown:
        raise ValueError(f"{name} names columns that the DataFrame does not have: {unknown}; "
                         f"its columns are {list(columns)}")
    return value


def _digits(value, columns: pd.Index) -> tuple[int | None, dict]:
    """``digits`` as (default for every float column, {column: digits})."""
    if value is None:
        return None, {}
    if isinstance(value, Mapping):
        unknown = [c for c in value if c not in _names(columns)]
        if unknown:
            raise ValueError(f"digits names columns that the DataFrame does not have: {unknown}; "
                             f"its columns are {list(columns)}")
        return None, {c: _checks.integer(f"digits[{c!r}]", d, low=0, high=15) for c, d in value.items()}
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _checks.ArgumentTypeError(
            f"digits must be an int (decimal places for every float column) or a mapping "
            f"{{column: int}}, got {type(value).__name__} {_checks._shown(value)}")
    return _checks.integer("digits", value, low=0, high=15), {}


def _missing(value) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral) and math.isnan(value)


def _significant(value: float, figures: int) -> str:
    """``value`` with ``figures`` significant figures, thousands separated, no exponent in [1e-3, 1e15)."""
    if value == 0:
        return "0"
    if not math.isfinite(value):
        return "∞" if value > 0 else "−∞" if value < 0 else MISSING
    size = abs(value)
    if size < 1e-3 or size >= 1e15:
        return f"{value:.{figures - 1}e}"
    decimals = max(0, figures - 1 - math.floor(math.log10(size)))
    text = f"{value:,.{decimals}f}"
    # rounding can add a digit (9.9996 -> 10.000): drop the decimal it no longer needs
    if decimals and len(text.replace(",", "").replace("-", "").replace(".", "").lstrip("0")) > figures:
        text = f"{value:,.{decimals - 1}f}"
    return text


def format_bytes(n, decimals: int | None = None) -> str:
    """A byte count in decimal units (1 KB = 1000 B, 1 MB = 10**6 B, 1 GB = 10**9 B).

    Three significant figures unless ``decimals`` fixes the decimal places:
    ``format_bytes(538060032) == "538 MB"``, ``format_bytes(1234) == "1.23 KB"``.
    Counts under 1000 are shown whole, in bytes.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Real):
        raise _checks.ArgumentTypeError(f"n must be a number of bytes, got {type(n).__name__} {_checks._shown(n)}")
    n = float(n)
    if not math.isfinite(n):
        raise ValueError(f"n must be a finite number of bytes, got {n}")
    if decimals is not None:
        decimals = _checks.integer("decimals", decimals, low=0, high=15)
    size, unit = abs(n), 0
    while unit < len(BYTE_UNITS) - 1 and size >= 1000:
        size, unit = size / 1000, unit + 1
    sign = "-" if n < 0 else ""
    if unit == 0:
        return f"{sign}{size:,.0f} B"
    text = f"{size:.{decimals}f}" if decimals is not None else _significant(size, BYTES_SIGNIFICANT)
    if float(text.replace(",", "")) >= 1000 and unit < len(BYTE_UNITS) - 1:  # 999.7 KB -> 1.00 MB
        size, unit = size / 1000, unit + 1
        text = f"{size:.{decimals}f}" if decimals is not None else _significant(size, BYTES_SIGNIFICANT)
    return f"{sign}{text} {BYTE_UNITS[unit]}"


def _cell(value, *, kind: str, decimals: int | None, whole: bool) -> str:
    """One value as text; ``kind`` is "plain", "bytes" or "percent"."""
    if isinstance(value, str):
        return value
    if _missing(value):
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_cell(v, kind=kind, decimals=decimals, whole=False)}" for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray, pd.Series)):
        items = sorted(value) if isinstance(value, (set, frozenset)) else list(np.asarray(value).ravel()
                                                                              if isinstance(value, np.ndarray)
                                                                              else value)
        return ", ".join(_cell(v, kind=kind, decimals=decimals, whole=False) for v in items)
    if isinstance(value, numbers.Real):
        if kind == "bytes":
            return format_bytes(value, decimals)
        if kind == "percent":
            return f"{float(value) * 100:,.{1 if decimals is None else decimals}f}%"
        if isinstance(value, numbers.Integral):
            return f"{int(value):,}"
        value = float(value)
        if decimals is not None:
            text = f"{value:,.{decimals}f}"
            return "0" if decimals == 0 and text == "-0" else text
        if whole and math.isfinite(value):
            return f"{value:,.0f}"
        return _significant(value, SIGNIFICANT)
    return str(value)


def _whole_floats(series: pd.Series) -> bool:
    """True when a float column holds only whole numbers (an int column that gained a NaN)."""
    if not pd.api.types.is_float_dtype(series.dtype):
        return False
    values = series.dropna().to_numpy()
    return bool(len(values)) and bool(np.all(np.isfinite(values))) and bool(np.all(values == np.round(values)))


def fmt(df: pd.DataFrame, headers: Mapping | None = None, *, bytes_cols: Iterable = (),
        digits: int | Mapping | None = None, percent_cols: Iterable = (), index: bool = True) -> Table:
    """A new DataFrame of strings for the page; ``df`` itself is not changed.

    - ``headers`` maps raw column names (and the index name) to what the reader
      sees, with units: ``{"t_ms": "time (ms)"}``. Columns not named keep their name.
    - Integers get thousands separators (``134,515,008``).
    - Columns in ``bytes_cols`` hold byte counts, shown in decimal units
      (1 KB = 1000 bytes, 1 MB = 10**6, 1 GB = 10**9) with three significant figures.
    - Columns in ``percent_cols`` hold fractions, shown as percentages
      (0.253 -> ``25.3%``; one decimal unless ``digits`` says otherwise).
    - ``digits`` rounds floats: an int for every float column, or ``{column: int}``;
      without it a float shows four significant figures, and a float column of
      whole numbers shows them as integers. For a bytes column, ``digits`` fixes
      the decimals after the unit.
    - Lists, tuples and arrays are joined with ", "; dicts as ``key: value``;
      booleans as yes/no; None and NaN as an em dash.
    - ``index=False`` hides the index in both the text and the HTML display.
    - With MultiIndex columns, ``headers``, ``bytes_cols``, ``percent_cols`` and
      ``digits`` may name a full column key or a value of one of its levels.

    Raises TypeError for a ``df`` that is not a DataFrame or arguments of the wrong
    kind, and ValueError for column names the frame does not have or negative digits.
    """
    if not isinstance(df, pd.DataFrame):
        raise _checks.ArgumentTypeError(
            f"df must be a pandas DataFrame, got {type(df).__name__} {_checks._shown(df)}; "
            f"build one with pd.DataFrame(rows)")
    if headers is None:
        headers = {}
    if not isinstance(headers, Mapping):
        raise _checks.ArgumentTypeError(
            f"headers must be a mapping {{column: 'Header (unit)'}}, got {type(headers).__name__} "
            f"{_checks._shown(headers)}")
    index_names = [n for n in df.index.names if n is not None]
    unknown = [c for c in headers if c not in _names(df.columns) and c not in index_names]
    if unknown:
        raise ValueError(f"headers names columns that the DataFrame does not have: {unknown}; "
                         f"its columns are {list(df.columns)}"
                         + (f" and its index is {index_names}" if index_names else ""))
    bad = {c: h for c, h in headers.items() if not isinstance(h, str)}
    if bad:
        raise _checks.ArgumentTypeError(f"headers must map each column to a str, got {_checks._shown(bad)}")
    bytes_cols = _column_list("bytes_cols", bytes_cols, df.columns)
    percent_cols = _column_list("percent_cols", percent_cols, df.columns)
    both = sorted(set(map(str, bytes_cols)) & set(map(str, percent_cols)))
    if both:
        raise ValueError(f"a column cannot be both bytes and percent: {both}")
    default, per_column = _digits(digits, df.columns)
    if not isinstance(index, (bool, np.bool_)):
        raise _checks.ArgumentTypeError(f"index must be True or False, got {type(index).__name__} "
                                        f"{_checks._shown(index)}")

    data = {}
    for position, column in enumerate(df.columns):
        series = df.iloc[:, position]
        kind = ("bytes" if _pick(column, bytes_cols) is not None
                else "percent" if _pick(column, percent_cols) is not None else "plain")
        key = _pick(column, per_column)
        decimals = per_column[key] if key is not None else None if kind == "bytes" else default
        whole = decimals is None and kind == "plain" and _whole_floats(series)
        data[position] = [_cell(v, kind=kind, decimals=decimals, whole=whole) for v in series.tolist()]

    def label(name):
        return headers.get(name, name) if name is not None else None

    out = Table({i: v for i, v in data.items()})
    if isinstance(df.columns, pd.MultiIndex):
        out.columns = pd.MultiIndex.from_tuples([tuple(str(label(x)) for x in c) for c in df.columns],
                                                names=[label(n) for n in df.columns.names])
    else:
        out.columns = [str(label(c)) for c in df.columns]
    if isinstance(df.index, pd.MultiIndex):
        out.index = pd.MultiIndex.from_tuples(
            [tuple(_cell(v, kind="plain", decimals=None, whole=False) for v in row) for row in df.index],
            names=[label(n) for n in df.index.names])
    else:
        out.index = pd.Index([_cell(v, kind="plain", decimals=None, whole=False) for v in df.index],
                             name=label(df.index.name), dtype=object)
    out.show_index = bool(index)
    return out
