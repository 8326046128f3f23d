"""The recorded chapter 10 grid (llmlab/results/prompt_tuning_real.json): complete, consistent, and its
trainable counts equal SmolLM2-135M's shapes counted by hand."""

from __future__ import annotations

import statistics

import pytest

from llmlab import zoo
from llmlab.prompt_tuning_real import RECORD, record_plan
from llmlab.records import prompt_tuning_real

D, FFN, KV = 576, 1536, 192  # SmolLM2-135M: width, MLP width, 3 KV heads x 64


@pytest.fixture(scope="module")
def record():
    return prompt_tuning_real.load()


def test_record_has_every_run_of_the_plan_and_its_provenance(record):
    assert [{k: r[k] for k in ("method", "n_virtual", "seed")} for r in record["rows"]] == record_plan()
    assert record["model"] == zoo.REAL_MODEL and record["code_version"] != "unknown"
    assert record["machine"]["cpu_count"] >= 1 and record["seconds"] > 0


def test_trainable_counts_are_the_real_models_shapes(record):
    hidden = RECORD["encoder_hidden"]
    block = 2 * D * D + 2 * D * KV + 3 * D * FFN + 2 * D  # attention, MLP, two RMSNorms
    want = {"zero-shot": lambda n: 0, "few-shot (4 examples)": lambda n: 0,
            "prompt-tuning": lambda n: n * D,
            "p-tuning (mlp)": lambda n: n * D + (D * hidden + hidden) + (hidden * hidden + hidden) + (hidden * D + D),
            "fine-tuning (last layer)": lambda n: block + D}  # + the final norm
    for r in record["rows"]:
        assert r["trainable"] == want[r["method"]](r["n_virtual"]), r


def test_summary_is_the_mean_and_spread_of_the_rows(record):
    for s in record["summary"]:
        accs = [r["accuracy"] for r in record["rows"] if (r["method"], r["n_virtual"]) == (s["method"], s["n_virtual"])]
        assert s["seeds"] == len(accs) and (len(accs) == 1 or len(accs) >= 5)
        assert s["mean"] == pytest.approx(statistics.fmean(accs))
        assert s["std"] == pytest.approx(statistics.stdev(accs) if len(accs) > 1 else 0.0)
        assert 0.0 <= s["min"] <= s["mean"] <= s["max"] <= 1.0
    for r in record["rows"]:
        assert r["correct"] == round(r["accuracy"] * RECORD["n_test"])


def test_load_record_refuses_other_settings(tmp_path, monkeypatch, record):
    import json

    changed = dict(record, settings={**record["settings"], "steps": 1})
    (tmp_path / "other.json").write_text(json.dumps(changed))
    with pytest.raises(ValueError, match="other settings"):
        prompt_tuning_real.load(tmp_path / "other.json")
