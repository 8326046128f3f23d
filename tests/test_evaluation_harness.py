"""The record of lm-evaluation-harness on the frozen benchmark (llmlab.records.evaluation_harness, chapter 11).

The harness runs in its own environment, once, by the records module; here the record is
checked for completeness (all 320 items, or the first N of each subject, as its
``n_items`` says) and for its own consistency (the accuracies the harness reported
are what its per-item log-likelihoods give), and llmlab.evaluation's scorer is re-run on
the real model for one item per subject and format and compared with the harness's numbers.
"""

from __future__ import annotations

import pytest

from llmlab import zoo
from llmlab.evaluation import FORMATS, choice_logprobs, load_benchmark, mc_prompt
from llmlab.records import evaluation_harness as eh

pytestmark = pytest.mark.usefixtures("one_thread")

LIVE_TOLERANCE = 1e-3  # nats: the live re-score against the harness's log-likelihood
RECORD_TOLERANCE = 1e-4  # nats: our recorded log-likelihoods against the harness's


@pytest.fixture(scope="module")
def record():
    return eh.load()


@pytest.fixture(scope="module")
def smol():
    return zoo.load(zoo.REAL_MODEL, device="cpu")


def rows_of(record, fmt):
    return [r for r in record["rows"] if r["format"] == fmt]


def test_record_is_stamped_and_complete(record):
    assert record["command"] == eh.COMMAND and record["code_version"] and record["made"]
    assert isinstance(record["machine"], dict)
    assert record["environment"]["lm_eval"] and record["environment"]["transformers"]
    assert all("lm_eval" in c and "--log_samples" in c for c in record["harness_commands"])
    assert record["plan"]["formats"] == list(FORMATS)
    items = load_benchmark("mc")
    subjects = sorted({item["subject"] for item in items})
    per_subject, rest = divmod(record["n_items"], len(subjects))
    assert rest == 0 and per_subject >= 1  # the whole benchmark, or the first N items of each subject
    ids = [item["id"] for item in items
           if [i["id"] for i in items if i["subject"] == item["subject"]].index(item["id"]) < per_subject]
    assert len(ids) == record["n_items"]
    for fmt in FORMATS:
        rows = rows_of(record, fmt)
        assert [r["id"] for r in rows] == ids, fmt
        assert all(len(r["harness"]) == len(r["ours"]) == 4 for r in rows)


@pytest.mark.parametrize("fmt", FORMATS)
def test_reported_accuracies_are_what_the_harness_per_item_numbers_give(record, fmt):
    rows = rows_of(record, fmt)
    reported = record["reported"][fmt]
    n = len(rows)
    assert eh.accuracy(rows) == pytest.approx(reported["acc"], abs=0.5 / n)
    assert eh.accuracy(rows, norm=True) == pytest.approx(reported["acc_norm"], abs=0.5 / n)
    assert sum(r["harness_acc"] for r in rows) / n == pytest.approx(reported["acc"], abs=1e-9)
    assert sum(r["harness_acc_norm"] for r in rows) / n == pytest.approx(reported["acc_norm"], abs=1e-9)


@pytest.mark.parametrize("fmt", FORMATS)
def test_our_recorded_logprobs_match_the_harness(record, fmt):
    row = next(s for s in eh.summary(record) if s["format"] == fmt)
    assert row["max_abs_diff"] < RECORD_TOLERANCE, row
    assert row["acc_ours"] == row["acc_harness"] == pytest.approx(row["acc_reported"])
    assert row["acc_norm_ours"] == row["acc_norm_harness"] == pytest.approx(row["acc_norm_reported"])
    assert row["same_greedy"]


def test_live_scores_match_the_harness_on_one_item_per_subject_and_format(record, smol):
    model, tok = smol
    items = {}
    for item in load_benchmark("mc"):
        items.setdefault(item["subject"], item)  # the first item of each subject
    recorded = {(r["id"], r["format"]): r["harness"] for r in record["rows"]}
    worst = 0.0
    for fmt in FORMATS:
        for item in items.values():
            context, choices, delimiter = mc_prompt(item, fmt, tok)
            ours = choice_logprobs(model, tok, context, choices, delimiter=delimiter)
            worst = max(worst, *(abs(a - b) for a, b in zip(ours, recorded[item["id"], fmt])))
    assert worst < LIVE_TOLERANCE
