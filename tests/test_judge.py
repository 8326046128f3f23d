"""Short answers and the model as judge (llmlab.judge, chapter 11).

The judge's margin is checked against a direct computation on tiny seeded models with a
tokenizer trained here; the summary against hand-counted records of judges whose
behaviour is known (one that always says A, one that is always right, one that
follows the answer in one order and the position in the other); and the shipped record
against its own per-item rows.
"""

from __future__ import annotations

import pytest
import torch

from llmlab import judge
from llmlab.evaluation import exact_match
from llmlab.records import evaluation_judge
from llmlab.tokenization import train_tokenizer

pytestmark = pytest.mark.usefixtures("one_thread")

TEXTS = ["Question: what is the capital of France? Answer A: Paris Answer B: Rome. Which answer is "
         "correct, A or B? Reply with the letter only. A B. Answer the question in a few words."] * 20
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")
ITEMS = [{"id": "g-1", "subject": "geography", "question": "What is the capital of France?",
          "answer": "Paris", "aliases": ["Paris, France"], "wrong": "Rome"},
         {"id": "a-1", "subject": "arithmetic", "question": "What is two plus two?",
          "answer": "4", "aliases": ["four"], "wrong": "5"}]


@pytest.fixture(scope="module")
def tok():
    tokenizer = train_tokenizer(TEXTS, 300)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


@pytest.fixture(scope="module")
def model(tok, make_gpt2):
    return make_gpt2(vocab_size=len(tok), n_positions=256)


@torch.no_grad()
def direct_next_token_logprob(model, tok, context, letter):
    ids = tok(context, add_special_tokens=False)["input_ids"]
    whole = tok(context + letter, add_special_tokens=False)["input_ids"]
    assert whole[:len(ids)] == ids and len(whole) == len(ids) + 1  # the letter is one token of its own
    logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits.float(), -1)[0, -1]
    return logp[whole[-1]].item()


def test_the_margin_is_the_log_probability_of_a_minus_that_of_b(model, tok):
    context = judge.judge_prompt(tok, "What is the capital of France?", "Paris", "Rome")
    assert context.endswith("<|assistant|>") and "Answer A: Paris\nAnswer B: Rome" in context
    expected = direct_next_token_logprob(model, tok, context, "A") - direct_next_token_logprob(model, tok, context, "B")
    assert judge.judge_margin(model, tok, "What is the capital of France?", "Paris", "Rome") == pytest.approx(
        expected, abs=1e-5)


def test_judge_items_swaps_the_order_and_reads_the_verdicts_from_the_margins(model, tok):
    rows = judge.judge_items(model, tok, ITEMS)
    for item, row in zip(ITEMS, rows):
        m1 = judge.judge_margin(model, tok, item["question"], item["answer"], item["wrong"])
        m2 = judge.judge_margin(model, tok, item["question"], item["wrong"], item["answer"])
        assert row["margin_right_first"] == pytest.approx(m1, abs=1e-5)
        assert row["margin_right_second"] == pytest.approx(m2, abs=1e-5)
        assert row["right_when_first"] == (m1 > 0) and row["right_when_second"] == (m2 < 0)
        assert row["picks_first"] == (m1 > 0) + (m2 > 0)
        assert row["right_debiased"] == (m1 - m2 > 0)


def rows(first, second, debiased=None):
    debiased = debiased if debiased is not None else [a and b for a, b in zip(first, second)]
    return [{"right_when_first": a, "right_when_second": b, "picks_first": int(a) + int(not b),
             "right_debiased": d} for a, b, d in zip(first, second, debiased)]


def test_a_judge_that_always_says_a_is_right_only_when_the_right_answer_is_first():
    s = judge.judge_summary(rows([True] * 20, [False] * 20, [True] * 10 + [False] * 10))
    assert (s["right_when_first"], s["right_when_second"], s["right_both"], s["consistent"]) == (1, 0, 0, 0)
    assert s["first_share"] == 1.0 and s["first_share_ci"][0] > 0.8
    assert s["right_debiased"] == 0.5 and s["right_debiased_ci"][0] < 0.5 < s["right_debiased_ci"][1]
    assert s["order_test"].separated and s["order_test"].verdict.startswith("the right answer first above")


def test_a_judge_that_is_always_right_has_no_position_preference():
    s = judge.judge_summary(rows([True] * 20, [True] * 20))
    assert (s["right_both"], s["consistent"], s["first_share"]) == (1, 1, 0.5)
    assert not s["order_test"].separated


def test_consistency_counts_the_same_answer_in_both_orders_right_or_wrong():
    # right in both, wrong in both (consistent: it picked the wrong answer twice), A twice, B twice
    s = judge.judge_summary(rows([True, False, True, False], [True, False, False, True]))
    assert s["consistent"] == 0.5 and s["right_both"] == 0.25
    assert s["first_share"] == pytest.approx((1 + 1 + 2 + 0) / 8)


@pytest.mark.parametrize("prediction, expected", [
    ("The capital is Paris.", True), ("paris", True), ("Parisian food", False), ("Rome", False),
    ("It is Paris, France", True)])
def test_contains_answer_needs_the_answer_as_whole_words(prediction, expected):
    assert judge.contains_answer(prediction, "Paris", ["Paris, France"]) is expected


def test_answers_are_scored_with_exact_match_and_contains(model, tok):
    out = judge.answer_questions(model, tok, ITEMS, max_new_tokens=3)
    assert [r["id"] for r in out] == ["g-1", "a-1"]
    for item, r in zip(ITEMS, out):
        assert r["exact"] == exact_match(r["answer"], item["answer"], item["aliases"])
        assert r["contains"] == judge.contains_answer(r["answer"], item["answer"], item["aliases"])
        assert "\n" not in r["answer"]


def test_the_shipped_record_covers_every_item_and_its_rows_agree_with_themselves():
    record = evaluation_judge.load()
    assert record["plan"] == evaluation_judge.PLAN
    assert len(record["answers"]) == len(record["judge"]) == 104
    for r in record["judge"]:
        m1, m2 = r["margin_right_first"], r["margin_right_second"]
        assert r["right_when_first"] == (m1 > 0) and r["right_when_second"] == (m2 < 0)
        assert r["right_debiased"] == (m1 - m2 > 0)
    for r in record["answers"]:
        assert r["exact"] <= r["contains"] or not r["answer"]  # an exact answer is also contained
