"""The recorded runs of chapter 13 (llmlab/results/alignment.json) checked against what they claim:
every right/wrong flag recomputed from the stored text with the principle, every ranking flag from
the stored rewards, DPO starting at log 2, GRPO's first step at the reference."""

from __future__ import annotations

import math

import pytest

from llmlab import alignment, preferences
from llmlab.records import alignment as rec

# Until the record is made (python -m llmlab.records.alignment), there is nothing to check.
pytestmark = pytest.mark.skipif(not rec.result_path(None, rec.NAME).exists(),
                                reason="chapter 13's record is not recorded yet")


@pytest.fixture(scope="module")
def record():
    return rec.load()


def _bits(text):
    return [c == "1" for c in text]


def test_the_record_is_complete_and_made_by_this_plan(record):
    assert record["complete"] and record["plan"] == rec.PLAN
    assert "+dirty" not in record["code_version"]
    for part in record.get("parts", [record]):
        assert "+dirty" not in part["code_version"]
        for earlier in part.get("earlier", []):  # runs kept from a resumed recording: their code too
            assert "+dirty" not in earlier["code_version"] and earlier["runs"]
    assert record["model"] == "smollm2-135m-instruct"


def test_the_samples_are_scored_by_the_principle(record):
    test = preferences.load_pairs("test")
    s, n = record["samples"], rec.PLAN["best_of_n"]["n"]
    assert len(s["texts"]) == len(s["tokens"]) == len(test) * n
    answers = [p["answer"] for p in test for _ in range(n)]
    assert _bits(s["correct"]) == [preferences.score(t, a) for t, a in zip(s["texts"], answers)]
    assert _bits(s["short"]) == [preferences.is_short(t, a) for t, a in zip(s["texts"], answers)]
    assert _bits(s["greedy_correct"]) == [preferences.score(t, p["answer"]) for t, p in zip(s["greedy"], test)]
    assert 0 < sum(_bits(s["correct"])) < len(answers)  # neither hopeless nor solved


def test_reward_runs_flags_follow_their_scores(record):
    runs = {(r["set"], r["seed"]) for r in record["reward"]}
    assert runs == {(w, s) for w in rec.PLAN["reward"]["sets"] for s in rec.PLAN["reward"]["seeds"]}
    n_samples = len(record["samples"]["texts"])
    for r in record["reward"]:
        assert _bits(r["correct"]) == [c > j for c, j in zip(r["chosen"], r["rejected"])]
        assert len(r["sample_scores"]) == n_samples and len(r["loss"]) == rec.PLAN["reward"]["steps"]


def test_dpo_runs_start_at_log_2_and_their_flags_follow_their_margins(record):
    test = preferences.load_pairs("test")
    plan = rec.PLAN["dpo"]
    assert sorted([r["beta"], r["seed"]] for r in record["dpo"]) == sorted(plan["runs"])
    for r in record["dpo"]:
        assert len(r["history"]) == plan["steps"]
        assert r["history"][0]["loss"] == pytest.approx(math.log(2), abs=2e-4)  # the policy is the reference
        assert [e["step"] for e in r["evals"]] == list(range(plan["eval_every"], plan["steps"] + 1,
                                                             plan["eval_every"]))
        for e in r["evals"]:
            assert _bits(e["correct"]) == [m > 0 for m in e["margin"]]
            assert all(k >= -1e-4 for k in e["kl_chosen"])  # a KL divergence is never negative
        assert _bits(r["replies_correct"]) == [preferences.score(t, p["answer"])
                                               for t, p in zip(r["replies"], test)]


def test_grpo_runs_start_at_the_reference_and_their_flags_follow_their_replies(record):
    sums = preferences.load_sums("test")
    plan = rec.PLAN["grpo"]
    assert sorted(r["seed"] for r in record["grpo"]) == plan["seeds"]
    for r in record["grpo"]:
        assert len(r["history"]) == plan["steps"]
        assert r["history"][0]["kl"] == pytest.approx(0.0, abs=1e-6)
        assert [e["step"] for e in r["evals"]] == list(range(0, plan["steps"] + 1, plan["eval_every"]))
        for e in r["evals"]:
            assert _bits(e["correct"]) == [preferences.score(t, s["answer"]) for t, s in zip(e["replies"], sums)]
    first = next(r for r in record["grpo"] if r["seed"] == plan["seeds"][0])
    assert len(first["sampled"]) == plan["steps"] * plan["prompts_per_step"] * plan["group_size"]
    # every GRPO run starts from the same model: the same greedy replies at step 0
    assert len({tuple(r["evals"][0]["replies"]) for r in record["grpo"]}) == 1


def test_proxy_runs_score_what_they_sampled_by_the_principle(record):
    test = preferences.load_pairs("test")
    plan = rec.PLAN["proxy"]
    assert sorted(r["set"] for r in record["proxy"]) == sorted(plan["sets"])
    per_step = plan["prompts_per_step"] * plan["group_size"]
    reward_runs = {(r["set"], r["seed"]): r for r in record["reward"]}
    for r in record["proxy"]:
        assert len(r["history"]) == plan["steps"]
        assert r["history"][0]["kl"] == pytest.approx(0.0, abs=1e-6)
        s = r["sampled"]
        assert len(s["correct"]) == len(s["short"]) == len(s["tokens"]) == plan["steps"] * per_step
        assert len(s["first"]) == len(s["last"]) == per_step
        # the first and last steps' answers, scored again against the questions those steps drew
        questions = preferences.load_pairs("train")
        batches = list(alignment._batches(len(questions), plan["steps"], plan["prompts_per_step"], plan["seed"]))
        for texts, idx, flags in ((s["first"], batches[0], s["correct"][:per_step]),
                                  (s["last"], batches[-1], s["correct"][-per_step:])):
            answers = [questions[i]["answer"] for i in idx for _ in range(plan["group_size"])]
            assert _bits(flags) == [preferences.score(t, a) for t, a in zip(texts, answers)]
        assert [e["step"] for e in r["evals"]] == list(range(0, plan["steps"] + 1, plan["eval_every"]))
        for e in r["evals"]:
            assert _bits(e["correct"]) == [preferences.score(t, p["answer"]) for t, p in zip(e["replies"], test)]
            assert _bits(e["short"]) == [preferences.is_short(t, p["answer"]) for t, p in zip(e["replies"], test)]
            assert len(e["scores"]) == len(test)
        # the reward model was trained again as in the reward part: it ranks the pairs alike
        same = reward_runs[(r["set"], plan["seed"])]["correct"]
        agree = sum(a == b for a, b in zip(r["reward_model_correct"], same))
        assert agree >= 0.95 * len(test)
    # both runs start from the same model: the same greedy replies at step 0
    assert len({tuple(r["evals"][0]["replies"]) for r in record["proxy"]}) == 1


def test_best_of_n_picks_the_first_sample_at_n_1_and_the_oracle_never_loses_by_choosing(record):
    n = rec.PLAN["best_of_n"]["n"]
    s = record["samples"]
    for which in (None, *rec.PLAN["reward"]["sets"]):
        one = rec.best_of_n(record, which, 1)
        repeats = 1 if which is None else len(rec.PLAN["reward"]["seeds"])
        assert one["correct"] == _bits(s["correct"])[::n] * repeats
    oracle = [sum(rec.best_of_n(record, None, k)["correct"]) for k in range(1, n + 1)]
    assert oracle == sorted(oracle)
    # the oracle is right exactly when one of the n answers is
    any_right = [any(_bits(s["correct"])[q * n:(q + 1) * n]) for q in range(len(s["correct"]) // n)]
    assert rec.best_of_n(record, None, n)["correct"] == any_right
