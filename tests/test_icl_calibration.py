"""Contextual calibration, the frozen evaluation set and the real-model record of chapter 4."""

import json
import math
from pathlib import Path

import pytest
import torch

from llmlab import icl
from llmlab.records import icl_real

ROOT = Path(__file__).resolve().parent.parent


def test_calibration_matches_a_hand_computation():
    # p = (0.8, 0.2), content-free p_cf = (0.9, 0.1): p / p_cf = (0.889, 2.0), normalised (0.3077, 0.6923)
    scores = torch.log(torch.tensor([[0.8, 0.2]]))
    cf = torch.log(torch.tensor([0.9, 0.1]))
    out = icl.calibrate(scores, cf).exp()
    a, b = 0.8 / 0.9, 0.2 / 0.1
    assert torch.allclose(out, torch.tensor([[a / (a + b), b / (a + b)]], dtype=torch.float64), atol=1e-9)


def test_calibration_removes_a_bias_towards_one_label():
    # A prompt that adds 2 nats to label 0 whatever the query: uncalibrated, every query gets label 0.
    torch.manual_seed(0)
    truth = torch.arange(200) % 2
    evidence = torch.where(truth == 0, 1.0, -1.0)[:, None] * torch.tensor([0.5, -0.5])
    bias = torch.tensor([2.0, 0.0])
    scores = evidence + bias + 0.1 * torch.randn(200, 2)
    assert (scores.argmax(-1) == 0).all()
    fixed = icl.calibrate(scores, bias)  # the content-free input sees the bias only
    assert (fixed.argmax(-1) == truth).float().mean() > 0.95
    # calibration only shifts each label by a constant: a content-free input with no bias changes nothing
    assert torch.equal(icl.calibrate(scores, torch.zeros(2)).argmax(-1), scores.argmax(-1))


def test_calibrated_scores_are_normalised_log_probabilities():
    out = icl.calibrate(torch.randn(5, 3), torch.randn(5, 3))
    assert torch.allclose(out.exp().sum(-1), torch.ones(5, dtype=torch.float64))


def test_calibration_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="content_free must be"):
        icl.calibrate(torch.zeros(4, 2), torch.zeros(3))
    with pytest.raises(ValueError, match="scores must be"):
        icl.calibrate(torch.zeros(2), torch.zeros(2))


def test_label_conditions_flip_and_replace_the_demonstration_labels():
    demos = [("wonderful", "positive"), ("awful", "negative")]
    labels = ("positive", "negative")
    assert icl.relabel(demos, labels, "natural") == demos
    assert icl.relabel(demos, labels, "flipped") == [("wonderful", "negative"), ("awful", "positive")]
    assert icl.relabel(demos, labels, "unrelated") == [("wonderful", "foo"), ("awful", "bar")]
    with pytest.raises(ValueError, match="condition must be"):
        icl.relabel(demos, labels, "reversed")


def test_the_frozen_evaluation_set_is_balanced_and_says_where_it_came_from():
    for task in icl.REAL_TASKS:
        t = icl.load_eval_set(task)
        assert t["license"] and t["drawn"] and t["source"]
        counts = [sum(lab == label for _, lab in t["items"]) for label in t["labels"]]
        assert counts[0] == counts[1] >= 60
        assert len({w for w, _ in t["items"]}) == len(t["items"])
    sentiment = json.loads((ROOT / "llmlab/corpus/icl_eval.json").read_text())["tasks"]["sentiment"]
    assert all((i["rating"] > 0) == (i["label"] == "positive") and abs(i["rating"]) >= 2 for i in sentiment["items"])


def test_episodes_never_show_the_query_among_its_demonstrations():
    items = icl.load_eval_set("sentiment")["items"]
    for e in icl.real_episodes(items, 8, seed=1, n=50):
        assert e["query"] not in [t for t, _ in e["demos"]] and len(e["demos"]) == 8
    fixed = icl.fixed_episodes("sentiment", 100, 1, 4)
    demos = fixed[0]["demos"]
    assert [lab for _, lab in demos] == ["positive", "negative", "negative", "negative"]
    assert not {t for t, _ in demos} & {e["query"] for e in fixed}


def test_the_record_matches_the_plan_and_its_intervals():
    record = icl_real.load()
    assert [r["name"] for r in record["rows"]] == [c["name"] for c in icl_real.plan()]
    for r in record["rows"]:
        assert math.isclose(r["accuracy"], r["correct"] / r["n"])
        assert (r["ci_low"], r["ci_high"]) == pytest.approx(icl.wilson_interval(r["correct"], r["n"]))
        assert len(r["right"]) == r["n"] and sum(r["right"]) == r["correct"]  # per query, for paired tests
        assert set(r["right"]) <= {0, 1}
    assert record["code_version"] and record["machine"]["cpu_count"]


def test_a_record_of_another_plan_is_refused(tmp_path, monkeypatch):
    record = icl_real.load()
    record["plan"] = record["plan"][:-1]
    path = tmp_path / "icl_real_other.json"
    path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match="another plan"):
        icl_real.load(path)


def test_rouge_l_matches_a_hand_computation():
    from llmlab.metrics import rouge_l

    # LCS of "the cat sat on the mat" and "the cat is on the mat" is "the cat on the mat" (5 words)
    assert rouge_l("the cat sat on the mat", "the cat is on the mat") == pytest.approx(5 / 6)
    # order matters: reversed words share only a one-word subsequence
    assert rouge_l("a b c", "c b a") == pytest.approx(1 / 3)
    assert rouge_l("Ben, tomorrow!", "ben tomorrow") == 1.0
    assert rouge_l("", "anything") == 0.0 and rouge_l("x y", "z") == 0.0
    # precision 2/4, recall 2/2: F1 = 2/3
    assert rouge_l("milk and bread too", "milk bread") == pytest.approx(2 / 3)


def test_the_summaries_record_scores_what_it_stores():
    from llmlab.metrics import rouge_l

    record = json.loads((ROOT / "llmlab/results/icl_summaries.json").read_text())
    pairs = icl.load_dialogues()
    assert record["n"] == len(pairs) and record["shots"] == list(icl.SUMMARY_SHOTS)
    with_shots = [k for k in icl.SUMMARY_SHOTS if k > 0]  # the turns format needs an example
    assert record["formats"] == list(icl.SUMMARY_FORMATS)
    assert len(record["rows"]) == len(pairs) * (len(icl.SUMMARY_SHOTS) + len(with_shots))
    for row in record["rows"]:
        assert row["rouge_l"] == pytest.approx(rouge_l(row["summary"], pairs[row["dialogue"]][1]))
