"""Chapter 5's per-answer measures: a deterministic method's single answer is scored like a sampled one."""

from __future__ import annotations

import math

import pytest

from llmlab import metrics, sampling


def _row(setting, prompt, sample, text, nats=1.0):
    return {"setting": setting, "prompt": prompt, "sample": sample, "text": text, "tokens": [],
            "n_tokens": len(text.split()), "ended": False,
            "repeated_4grams": metrics.repeated_ngram_fraction(text, 4), "nats_per_token": nats}


def _record():
    rows = [_row("greedy", p, 0, "a b c d e") for p in (0, 1)]
    rows += [_row("sample", p, k, t) for p in (0, 1) for k, t in enumerate(["a b c d e", "x x x x x"])]
    return {"rows": rows, "samples": 2}


def test_a_deterministic_answer_without_repeats_reaches_distinct_2_of_one():
    scores = sampling.per_prompt(_record())
    greedy = scores[scores.setting == "greedy"]
    assert list(greedy["distinct-2"]) == [1.0, 1.0]  # not capped at 0.5 by counting it twice


def test_per_prompt_averages_each_answers_own_measure():
    scores = sampling.per_prompt(_record())
    sample = scores[scores.setting == "sample"]
    # "a b c d e": 4 of 4 pairs distinct; "x x x x x": 1 of 4
    assert list(sample["distinct-2"]) == pytest.approx([(1.0 + 0.25) / 2] * 2)
    assert list(sample["repeated 4-grams"]) == pytest.approx([(0.0 + 0.5) / 2] * 2)


def test_summarise_uses_the_per_prompt_scores():
    rec = _record()
    rec["rows"][0]["nats_per_token"] = 2.0
    table = sampling.summarise(rec).set_index("setting")
    assert table.loc["greedy", "distinct-2"] == 1.0
    assert table.loc["greedy", "perplexity"] == pytest.approx(math.exp(1.5))


def test_every_human_passage_has_its_request_in_the_sweep():
    from llmlab.domain import english_passages
    from llmlab.records import sampling_sweep

    assert len(sampling_sweep.HUMAN_PROMPTS) == len(english_passages())
    assert max(sampling_sweep.HUMAN_PROMPTS) < len(sampling_sweep.SWEEP_PROMPTS)
    assert "bread" in sampling_sweep.SWEEP_PROMPTS[sampling_sweep.HUMAN_PROMPTS[0]]
