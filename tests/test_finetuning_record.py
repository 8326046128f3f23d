"""The recorded comparison of chapter 12 (llmlab/results/finetuning.json) checked against what it claims.

Complete for its plan; every run's trainable count equal to one worked out by hand from
SmolLM2's shapes; the learning rates the probe's rule picks; the base model's scores, English
losses and replies reproduced live on a slice.
"""

from __future__ import annotations

import pytest

from llmlab import finetune, orders, zoo
from llmlab.records import finetuning

RECORD = finetuning.load()
# SmolLM2-135M: 30 blocks, hidden 576, 3 key-value heads of 64, MLP 1536 (its config.json)
LAYERS, D, KV, FF = 30, 576, 3 * 64, 1536
PER_RANK = {"attention": LAYERS * ((D + D) * 2 + (D + KV) * 2),
            "all linear": LAYERS * ((D + D) * 2 + (D + KV) * 2 + 3 * (D + FF))}


def test_the_record_is_complete_for_its_plan():
    assert RECORD["plan"] == finetuning.PLAN and RECORD["complete"]
    runs = {(r["method"], r["seed"]) for r in RECORD["grid"]}
    assert runs == {(m, s) for m in finetuning.METHODS for s in finetuning.PLAN["seeds"]}
    assert {r["method"] for r in RECORD["costs"]} == set(finetuning.METHODS)
    n_test = len(orders.load_orders("test"))
    assert all(len(r["exact"]) == n_test and len(r["logprob"]) == n_test for r in RECORD["grid"])
    assert all(len(r["loss"]) == finetuning.PLAN["steps"] for r in RECORD["grid"])


@pytest.mark.parametrize("method", list(finetuning.METHODS))
def test_trainable_counts_are_the_hand_count(method):
    spec = finetuning.METHODS[method]
    if spec["family"] == "full":
        want = 134_515_008  # SmolLM2-135M's parameters (tied embedding counted once)
    elif spec["family"] == "prompt":
        want = spec["n_virtual"] * D
    else:
        layers = "attention" if spec["targets"] == finetuning.ATTENTION else "all linear"
        want = spec["r"] * PER_RANK[layers]
    counts = {r["trainable"] for r in RECORD["grid"] if r["method"] == method}
    assert counts == {want}


def test_the_rates_are_the_probes_choice():
    for family, rates in finetuning.PROBE.items():
        method = finetuning.PROBE_METHOD[family]
        exact = {r["lr"]: r["exact"].count("1") for r in RECORD["probe"] if r["method"] == method}
        assert sorted(exact) == sorted(rates)
        best = max(exact.values())
        assert RECORD["rates"][family] == min(lr for lr, n in exact.items() if n == best)
    for row in RECORD["grid"]:
        assert row["lr"] == RECORD["rates"][finetuning.METHODS[row["method"]]["family"]]


def test_recorded_replies_agree_with_the_one_pass_scores():
    """Replies were generated in padded batches: a near tie may flip, rarely."""
    zero = next(r for r in RECORD["base"] if r["method"] == "zero-shot")
    rows = [r for r in RECORD["grid"] if "replies" in r] + [zero]
    test = orders.load_orders("test")
    for row in rows:
        generated = [reply == orders.answer(it) for reply, it in zip(row["replies"], test)]
        agree = sum(g == (e == "1") for g, e in zip(generated, row["exact"]))
        assert agree >= 0.95 * len(test), row["method"]


def test_the_base_model_is_reproduced_live():
    model, tok = zoo.load("smollm2-135m-instruct", device="cpu")
    model.eval()
    zero = next(r for r in RECORD["base"] if r["method"] == "zero-shot")
    few = next(r for r in RECORD["base"] if r["method"] == "few-shot" and r["seed"] == 1)
    test = orders.load_orders("test")[:16]
    live = finetune.score(model, tok, test)
    assert live["exact"] == [c == "1" for c in zero["exact"][:16]]
    assert live["logprob"] == pytest.approx(zero["logprob"][:16], abs=0.02)
    demos = finetuning.demos_for(1)
    assert [d["id"] for d in demos] == few["demos"]
    live = finetune.score(model, tok, test[:8], demos=demos)
    assert live["exact"] == [c == "1" for c in few["exact"][:8]]
    assert finetune.english_nll(model, tok) == pytest.approx(zero["english_nll"], abs=1e-3)
