"""Calibration with several content-free inputs (Zhao et al. 2021) and its record, chapter 4."""

import math

import pytest
import torch

from llmlab import icl
from llmlab.records import icl_calibration, icl_real


def test_average_of_one_input_is_its_renormalised_log_probabilities():
    cf = torch.log(torch.tensor([[0.3, 0.1]]))  # p = (0.75, 0.25) over the two labels
    out = icl.average_content_free(cf).exp()
    assert torch.allclose(out, torch.tensor([0.75, 0.25], dtype=torch.float64), atol=1e-12)


def test_average_of_opposite_biases_is_uniform_so_calibration_changes_nothing():
    cf = torch.log(torch.tensor([[0.8, 0.2], [0.2, 0.8]]))
    avg = icl.average_content_free(cf)
    assert torch.allclose(avg.exp(), torch.tensor([0.5, 0.5], dtype=torch.float64))
    scores = torch.log(torch.tensor([[0.6, 0.4], [0.3, 0.7]]))
    assert icl.calibrate(scores, avg).argmax(-1).tolist() == [0, 1]


def test_calibrated_predictions_has_every_method_and_removes_a_shared_bias():
    truth = torch.arange(40) % 2
    evidence = torch.where(truth == 0, 0.5, -0.5)[:, None] * torch.tensor([1.0, -1.0])
    scores = evidence + torch.tensor([3.0, 0.0])  # every query pushed to label 0
    free = {x: [3.0, 0.0] for x in icl.CONTENT_FREE_INPUTS}
    preds = icl.calibrated_predictions(scores, free)
    assert list(preds) == list(icl.CALIBRATIONS)
    assert preds["uncalibrated"] == [0] * 40
    assert preds["average"] == truth.tolist() and preds["N/A"] == truth.tolist()


def test_content_free_prompts_keep_the_examples_and_fill_the_query_slot():
    demos = [("great", "positive"), ("awful", "negative")]
    prompts = icl.content_free_prompts(demos)
    assert len(prompts) == len(icl.CONTENT_FREE_INPUTS)
    real = icl.build_prompt("N/A", demos)
    assert prompts[0] == real
    assert prompts[1].endswith("Classify this review:\nSentiment:") or prompts[1].endswith(
        "Classify this review: \nSentiment:")


def test_percent_texts_gives_accuracy_and_wilson_interval():
    value, interval = icl.percent_texts(83, 100)
    low, high = icl.wilson_interval(83, 100)
    assert value == "83%" and interval == f"{100 * low:.0f}-{100 * high:.0f}%"


def test_calibration_record_agrees_with_the_grid_record():
    cal, grid = icl_calibration.load(), icl_real.load()
    sets = {s["name"]: s for s in cal["sets"]}
    rows = {r["name"]: r for r in grid["rows"]}
    for name, row in (("zero-shot", "natural 0"), ("topic zero-shot", "topic natural 0"),
                      ("share 2/4 first", "share 2/4 first")):
        preds = icl.calibrated_predictions(sets[name]["scores"], sets[name]["content_free"])
        right = sum(p == t for p, t in zip(preds["uncalibrated"], sets[name]["truth"]))
        assert math.isclose(right / cal["n"], rows[row]["accuracy"], abs_tol=0.02)
        right_na = sum(p == t for p, t in zip(preds["N/A"], sets[name]["truth"]))
        assert math.isclose(right_na / cal["n"], rows[row]["calibrated_accuracy"], abs_tol=0.02)


def test_calibration_record_refuses_another_plan(tmp_path):
    path = tmp_path / "icl_calibration.json"
    path.write_text('{"n": 3, "sets": [], "command": "x", "code_version": "x", "machine": {}}')
    with pytest.raises(ValueError, match="another plan"):
        icl_calibration.load(path)


def test_scoring_with_a_cached_shared_prefix_equals_scoring_each_prompt():
    from llmlab import zoo

    model, tokenizer = zoo.load("icl-small")
    demos = [("the soup was tasty", "red"), ("the song was dull", "moon")]
    prompts = [icl.build_prompt(q, demos) for q in ("the cake was great", "the show was bad",
                                                    "the band was very great")]
    want = icl.score_labels(model, tokenizer, prompts, [["red", "moon"]] * len(prompts))
    got = icl_calibration.score_shared_prefix(model, tokenizer, prompts, ["red", "moon"], batch_size=2)
    assert torch.allclose(got, want.double(), atol=1e-4)


def test_summary_examples_as_turns_alternate_user_and_assistant():
    from llmlab import zoo

    _, tokenizer = zoo.load(zoo.REAL_MODEL)
    text = icl.summary_prompt_turns(tokenizer, 0, 2)
    assert text.count("<|im_start|>user") == 3 and text.count("<|im_start|>assistant") == 3
    pairs = icl.load_dialogues()
    assert pairs[1][1] in text and pairs[2][1] in text and pairs[0][1] not in text
    assert text.rstrip().endswith("<|im_start|>assistant")
