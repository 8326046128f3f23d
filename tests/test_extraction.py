"""Prompted extraction and the two-proportion comparison (chapter 3), checked against
transformers' ``generate`` and scipy's Fisher test."""

import numpy as np
import pytest
import torch
from scipy import stats as scipy_stats

from llmlab import memorization, stats
from tests.tiny_models import tiny_gpt2


def greedy_docs(model, prompts, new_tokens):
    """Each prompt followed by the model's own greedy continuation, from transformers."""
    out = model.generate(torch.tensor(prompts), max_new_tokens=new_tokens, do_sample=False,
                         min_new_tokens=new_tokens, pad_token_id=0)
    return [row.tolist() for row in out]


def test_the_models_own_greedy_text_is_continued_exactly():
    model = tiny_gpt2()
    prompts = [[5, 6, 7, 8], [9, 10, 11, 12], [40, 41, 42, 43]]
    docs = greedy_docs(model, prompts, 6)
    found = memorization.exact_continuations(model, docs, prompt_tokens=4, new_tokens=6,
                                             batch_size=2)
    assert found.shape == (3, 6) and found.all()


def test_a_changed_token_ends_the_exact_run_from_its_position():
    model = tiny_gpt2()
    docs = greedy_docs(model, [[5, 6, 7, 8]], 6)
    docs[0][4 + 2] = (docs[0][4 + 2] + 1) % 97  # the third continuation token is wrong
    found = memorization.exact_continuations(model, docs, prompt_tokens=4, new_tokens=6)
    assert found[0].tolist() == [True, True, False, False, False, False]


def test_a_start_token_is_put_in_front_of_every_prompt():
    model = tiny_gpt2()
    docs = [d[1:] for d in greedy_docs(model, [[0, 5, 6, 7, 8]], 5)]  # drop the start token
    found = memorization.exact_continuations(model, docs, prompt_tokens=4, new_tokens=5,
                                             start_token_id=0)
    assert found.all()


def test_two_proportions_match_scipy_and_the_wilson_interval():
    res = stats.two_proportions(30, 200, 12, 200, names=("train", "held out"))
    assert res.p == pytest.approx(scipy_stats.fisher_exact([[30, 170], [12, 188]])[1])
    assert res.diff == pytest.approx(0.09)
    low, high = res.interval_a
    ci = scipy_stats.binomtest(30, 200).proportion_ci(method="wilson")
    assert (low, high) == pytest.approx((ci.low, ci.high))
    assert res.low < res.diff < res.high and res.low > 0
    assert res.verdict.startswith("train above held out (Fisher exact p = ")


def test_equal_rates_give_no_clear_difference():
    res = stats.two_proportions(3, 100, 3, 100)
    assert res.diff == 0 and res.p == pytest.approx(1.0)
    assert res.verdict.startswith("no clear difference") and res.low < 0 < res.high
    assert np.isfinite([res.low, res.high]).all()


def test_documents_shorter_than_prompt_and_continuation_are_refused():
    with pytest.raises(ValueError, match="at least prompt_tokens"):
        memorization.exact_continuations(tiny_gpt2(), [[1, 2, 3]], prompt_tokens=2,
                                         new_tokens=2)
