"""llmlab.tables.fmt: headers, units and rounding for the tables a reader sees.

Every expected string here is written out by hand from the rule in the docstring
(decimal byte units, thousands separators, significant figures), not produced by
the code under test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llmlab import tables
from llmlab.tables import fmt, format_bytes


@pytest.mark.parametrize("n, text", [
    (0, "0 B"), (999, "999 B"), (1000, "1.00 KB"), (1234, "1.23 KB"), (56_789, "56.8 KB"),
    (999_400, "999 KB"), (999_700, "1.00 MB"), (538_060_032, "538 MB"),
    (134_515_008 * 2, "269 MB"), (1.5e12, "1.50 TB"), (-2048, "-2.05 KB"),
])
def test_byte_counts_use_decimal_units_and_three_significant_figures(n, text):
    assert format_bytes(n) == text


def test_byte_counts_with_fixed_decimals():
    assert format_bytes(538_060_032, 1) == "538.1 MB"
    assert format_bytes(2_500_000_000, 0) == "2 GB"  # round half to even


def test_headers_thousands_bytes_and_percent():
    raw = pd.DataFrame({"n_params": [134_515_008, 1000], "weights": [538_060_032, 999],
                        "acc": [0.253, 1.0]})
    shown = fmt(raw, {"n_params": "parameters", "weights": "weights (fp32)", "acc": "accuracy"},
                bytes_cols=["weights"], percent_cols=["acc"])
    assert list(shown.columns) == ["parameters", "weights (fp32)", "accuracy"]
    assert shown.to_dict("list") == {"parameters": ["134,515,008", "1,000"],
                                     "weights (fp32)": ["538 MB", "999 B"],
                                     "accuracy": ["25.3%", "100.0%"]}


def test_raw_frame_is_untouched():
    raw = pd.DataFrame({"t_ms": [1.23456, 20.0], "n": [1000, 2]})
    before = raw.copy()
    shown = fmt(raw, {"t_ms": "time (ms)"}, digits=1)
    pd.testing.assert_frame_equal(raw, before)
    assert shown is not raw and list(raw.columns) == ["t_ms", "n"]


def test_digits_int_and_mapping():
    raw = pd.DataFrame({"a": [1.23456, -0.04], "b": [2.71828, 10.0]})
    assert fmt(raw, digits=2).to_dict("list") == {"a": ["1.23", "-0.04"], "b": ["2.72", "10.00"]}
    assert fmt(raw, digits={"a": 0}).to_dict("list") == {"a": ["1", "0"], "b": ["2.718", "10.00"]}


def test_floats_default_to_four_significant_figures():
    raw = pd.DataFrame({"x": [0.123456, 12345.678, 9.99996, 0.0000123, 0.0]})
    assert fmt(raw)["x"].tolist() == ["0.1235", "12,346", "10.00", "1.230e-05", "0"]


def test_whole_float_column_with_a_gap_shows_integers_and_a_dash():
    raw = pd.DataFrame({"tokens": [1200.0, np.nan, 3.0]})
    assert fmt(raw)["tokens"].tolist() == ["1,200", "—", "3"]


def test_lists_dicts_and_booleans_are_compact():
    raw = pd.DataFrame({"ids": [[1, 2, 3], (4000,)], "ok": [True, False],
                        "cfg": [{"k": 5}, {"p": 0.9}]})
    shown = fmt(raw)
    assert shown["ids"].tolist() == ["1, 2, 3", "4,000"]
    assert shown["ok"].tolist() == ["yes", "no"]
    assert shown["cfg"].tolist() == ["k: 5", "p: 0.9000"]


def test_index_name_can_be_renamed_and_hidden():
    raw = pd.DataFrame({"n": [1, 2]}, index=pd.Index(["a", "b"], name="model"))
    shown = fmt(raw, {"model": "model", "n": "count"})
    assert shown.index.name == "model" and "count" in repr(shown)
    hidden = fmt(raw, {"n": "count"}, index=False)
    assert repr(hidden).splitlines() == ["count", "    1", "    2"]
    assert "<th>a</th>" not in hidden._repr_html_() and "<th>a</th>" in shown._repr_html_()


def test_html_is_plain_and_the_same_on_every_call():
    raw = pd.DataFrame({"x <tag>": [1.5]})
    one, two = fmt(raw)._repr_html_(), fmt(raw)._repr_html_()
    assert one == two
    assert "id=" not in one and "<style" not in one and "x &lt;tag&gt;" in one
    assert one.startswith('<table class="dataframe llmlab-table">')


def test_result_is_a_table_of_strings():
    shown = fmt(pd.DataFrame({"x": [1, 2.5, None]}))
    assert isinstance(shown, tables.Table)
    assert all(isinstance(v, str) for v in shown["x"])


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"headers": {"nope": "No"}}, ValueError, "headers.*nope.*columns are"),
    ({"headers": ["a"]}, TypeError, "headers must be a mapping"),
    ({"headers": {"a": 3}}, TypeError, "headers must map"),
    ({"bytes_cols": ["nope"]}, ValueError, "bytes_cols.*nope"),
    ({"bytes_cols": "a"}, TypeError, r"wrap it in a list"),
    ({"percent_cols": ["zzz"]}, ValueError, "percent_cols.*zzz"),
    ({"bytes_cols": ["a"], "percent_cols": ["a"]}, ValueError, "both bytes and percent"),
    ({"digits": -1}, ValueError, "digits must be an int >= 0"),
    ({"digits": 1.5}, TypeError, "digits must be an int"),
    ({"digits": {"a": -2}}, ValueError, r"digits\['a'\]"),
    ({"digits": {"q": 2}}, ValueError, "digits names columns"),
    ({"index": "no"}, TypeError, "index must be True or False"),
])
def test_bad_arguments_say_what_is_allowed(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fmt(pd.DataFrame({"a": [1]}), **kwargs)


def test_not_a_dataframe():
    with pytest.raises(TypeError, match="pandas DataFrame"):
        fmt([{"a": 1}])


def test_multiindex_columns_are_renamed_and_rounded_level_by_level():
    raw = pd.DataFrame([[0.51666, 0.4, 12.0]],
                       columns=pd.MultiIndex.from_tuples([("small", "acc"), ("small", "ci_low"),
                                                          ("large", "tokens")]))
    shown = fmt(raw, {"acc": "accuracy", "ci_low": "95% CI low", "tokens": "prompt tokens"},
                percent_cols=["acc", "ci_low"], digits={"tokens": 0})
    assert list(shown.columns) == [("small", "accuracy"), ("small", "95% CI low"),
                                   ("large", "prompt tokens")]
    assert shown.iloc[0].tolist() == ["51.7%", "40.0%", "12"]
