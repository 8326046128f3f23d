"""Chapter 10's baselines and second task: the one-offset bias fit against scipy, balanced
demonstrations, class-label initialisation, the arbitrary-label task, the per-item scores
of paired tests and the rate-selection rule of llmlab.records.prompt_tuning_tasks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar

from llmlab import prompt_tuning_real as ptr
from llmlab.records import prompt_tuning_tasks


def test_bias_offset_is_the_maximum_likelihood_offset_found_by_scipy():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, generator=g, dtype=torch.float64) * 2 + 1.5
    y = torch.rand(200, generator=g, dtype=torch.float64) < torch.sigmoid(x - 1.5)

    def loss(b: float) -> float:  # mean log-loss of sigmoid(x + b), numerically stable
        z = x.numpy() + b
        return float(np.mean(np.logaddexp(0, z) - y.numpy() * z))

    want = minimize_scalar(loss, bounds=(-20, 20), method="bounded", options={"xatol": 1e-10}).x
    assert ptr.fit_label_bias(x, y) == pytest.approx(want, abs=1e-6)


def test_bias_offset_undoes_a_constant_lean():
    x = torch.tensor([-1.0, 1.0] * 50)
    y = x > 0
    assert ptr.fit_label_bias(x + 3.0, y) == pytest.approx(ptr.fit_label_bias(x, y) - 3.0, abs=1e-8)


def test_balanced_demos_take_the_same_number_of_each_label_and_are_seeded():
    train = [{"input": f"w{i}", "answer": "positive" if i % 3 else "negative"} for i in range(30)]
    demos = ptr.balanced_demos(train, ["positive", "negative"], 4, seed=1)
    assert sorted(d["answer"] for d in demos) == ["negative", "negative", "positive", "positive"]
    assert demos == ptr.balanced_demos(train, ["positive", "negative"], 4, seed=1)
    with pytest.raises(ValueError, match="evenly"):
        ptr.balanced_demos(train, ["positive", "negative"], 3, seed=0)


def test_label_init_starts_with_the_label_tokens():
    from llmlab import zoo

    _, tok = zoo.load("stories-1m", device="cpu")
    ids = ptr.label_init_ids(tok, ["good", "bad"], 4, seed=0, vocab_size=100)
    labels = [tok(" " + c, add_special_tokens=False)["input_ids"] for c in ("good", "bad")]
    assert ids[: sum(map(len, labels))] == labels[0] + labels[1] and len(ids) == 4
    assert all(0 <= i < 100 for i in ids[sum(map(len, labels)):])


def test_arbitrary_task_is_the_sentiment_words_with_renamed_labels():
    a, s = ptr.task_data("arbitrary"), ptr.task_data("sentiment")
    assert a["labels"] == ["foo", "bar"]
    for split in ("test", "train", "val"):
        assert [e["input"] for e in a[split]] == [e["input"] for e in s[split]]
        assert [e["answer"] for e in a[split]] == [ptr.ARBITRARY_LABELS[e["answer"]] for e in s[split]]


def test_per_item_averages_each_item_over_runs():
    rows = [{"correct_items": [1, 0, 1]}, {"correct_items": [1, 1, 0]}]
    assert ptr.per_item(rows) == [1.0, 0.5, 0.5]


def test_rate_selection_averages_the_validation_loss_over_the_seeds_that_ran_every_rate():
    grid = ptr.TASKS_RECORD["lr_grid"]["prompt-tuning"]
    s0, s1 = ptr.TASKS_RECORD["seeds"][:2]

    def row(lr, seed, v, **kw):
        return {"task": "arbitrary", "method": "prompt-tuning", "seed": seed, "lr": lr, "val_loss": v, **kw}

    rows = [row(grid[0], s0, 0.9)]
    assert prompt_tuning_tasks.chosen_lr(rows, "arbitrary", "prompt-tuning") is None
    rows.append(row(grid[1], s0, 0.4))
    assert prompt_tuning_tasks.chosen_lr(rows, "arbitrary", "prompt-tuning") == grid[1]
    # a second seed where the second rate fails badly: the mean over both seeds picks the first
    rows += [row(grid[0], s1, 0.5), row(grid[1], s1, 3.0)]
    assert prompt_tuning_tasks.probe_losses(rows, "arbitrary", "prompt-tuning") == {
        grid[0]: [0.9, 0.5], grid[1]: [0.4, 3.0]}
    assert prompt_tuning_tasks.chosen_lr(rows, "arbitrary", "prompt-tuning") == grid[0]
    # a seed with one rate only does not count, nor does a long run
    rows += [row(grid[1], ptr.TASKS_RECORD["seeds"][2], 0.0), row(grid[1], s0, 0.0, steps=100)]
    assert prompt_tuning_tasks.chosen_lr(rows, "arbitrary", "prompt-tuning") == grid[0]


def test_long_runs_wait_for_every_probe_and_take_the_chosen_rate():
    settings = ptr.TASKS_RECORD
    plan = prompt_tuning_tasks._trained_plan([], settings)
    long = [p for p in plan if "steps" in p]
    assert len(long) == len(settings["long"]["methods"]) * len(settings["seeds"])
    assert all(p["lr"] is None for p in long)
    m = settings["long"]["methods"][0]
    grid = settings["lr_grid"][m]
    rows = [{"task": "arbitrary", "method": m, "seed": s, "lr": lr, "val_loss": 1.0 if lr == grid[1] else 2.0}
            for s in settings["seeds"] for lr in grid]
    long = [p for p in prompt_tuning_tasks._trained_plan(rows, settings) if "steps" in p and p["method"] == m]
    assert {p["lr"] for p in long} == {grid[1]} and {p["steps"] for p in long} == {settings["long"]["steps"]}
    assert prompt_tuning_tasks._trained_plan(rows[:-1], settings)[-1]["lr"] is None


def test_shipped_record_rows_hold_their_answers_per_word():
    record = prompt_tuning_tasks.load()
    assert record["code_version"] != "unknown" and record["rows"]
    for r in record["rows"]:
        assert len(r["correct_items"]) == ptr.RECORD["n_test"], r["method"]
        assert r["correct"] == sum(r["correct_items"]), r["method"]
        if r["method"] in prompt_tuning_tasks.BASELINES:
            assert r["trainable"] == (1 if r["method"] == "bias" else 0), r["method"]
    assert all(r["code_version"] for r in record["rows"]), "every run keeps the code that made it"
    for r in record["rows"]:  # long runs train at the rate the probes chose
        if "steps" in r:
            assert r["lr"] == prompt_tuning_tasks.chosen_lr(record["rows"], r["task"], r["method"])
        if r["method"] == "few-shot (balanced)":
            assert set(r["content_free"]) == set(ptr.TASKS_RECORD["content_free"])


def test_few_shot_calibration_in_the_record_averages_the_three_content_free_inputs():
    """Recomputed by hand from the stored scores: p(label) / mean over inputs of p_cf(label)."""
    import math

    record = prompt_tuning_tasks.load()
    rows = [r for r in record["rows"] if r["method"] == "few-shot (balanced)"]
    assert rows
    for r in rows:
        data = ptr.task_data(r["task"])
        truth = [data["labels"].index(ex["answer"]) for ex in data["test"]]

        def probs(pair):
            z = [math.exp(v) for v in pair]
            return [v / sum(z) for v in z]

        free = [probs(v) for v in r["content_free"].values()]
        mean_cf = [sum(f[j] for f in free) / len(free) for j in range(2)]
        pred = [max(range(2), key=lambda j: probs(s)[j] / mean_cf[j]) for s in r["scores"]]
        assert [int(p == t) for p, t in zip(pred, truth)] == r["correct_items_calibrated"]
        raw = [max(range(2), key=lambda j: s[j]) for s in r["scores"]]
        assert [int(p == t) for p, t in zip(raw, truth)] == r["correct_items"]
