"""Chapter 1's helpers: fitting a prompt to a context window, loss against context length,
the lifecycle diagram, and a model card whose numbers are measured."""

import math

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from llmlab import data, lifecycle, metrics, zoo


@pytest.fixture(scope="module")
def stories():
    return zoo.load("stories-1m", device="cpu")


# ------------------------------------------------------------------ fit_to_context
def test_keep_end_drops_the_oldest_tokens_and_leaves_room_to_generate():
    kept, dropped = lifecycle.fit_to_context(list(range(300)), context_window=256, max_new_tokens=56)
    assert kept == list(range(100, 300)) and dropped == 100
    assert len(kept) + 56 == 256


def test_keep_start_matches_the_tokenizers_own_truncation(stories):
    _, tokenizer = stories
    text = " ".join(data.load_corpus("validation")[:3])
    ids = tokenizer(text)["input_ids"]
    kept, dropped = lifecycle.fit_to_context(ids, 64, keep="start")
    assert kept == tokenizer(text, truncation=True, max_length=64)["input_ids"]
    assert dropped == len(ids) - 64


def test_a_prompt_that_fits_is_unchanged():
    kept, dropped = lifecycle.fit_to_context(torch.tensor([5, 6, 7]), 10, max_new_tokens=5)
    assert kept == [5, 6, 7] and dropped == 0


@pytest.mark.parametrize("kwargs,match", [
    (dict(context_window=0), "context_window must be an integer >= 1"),
    (dict(context_window=-3), "context_window must be an integer >= 1"),
    (dict(context_window=8, max_new_tokens=8), r"max_new_tokens \(8\) must be smaller"),
    (dict(context_window=8, max_new_tokens=-1), "max_new_tokens must be an integer >= 0"),
    (dict(context_window=8, keep="middle"), "keep must be one of"),
])
def test_bad_window_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lifecycle.fit_to_context([1, 2, 3], **kwargs)


def test_a_batch_is_refused_by_fit_to_context():
    with pytest.raises(ValueError, match="1-D"):
        lifecycle.fit_to_context(torch.zeros(2, 3, dtype=torch.long), 8)


# ------------------------------------------------------------------ loss by context length
def test_loss_by_context_length_equals_a_direct_cross_entropy(stories):
    model, tokenizer = stories
    ids = tokenizer(data.load_corpus("validation")[:4])["input_ids"]
    got = lifecycle.loss_by_context_length(model, ids, target_len=10, context_lengths=[0, 20], start_id=0)
    # independent: one story at a time, through metrics.mean_loss_nats on the last 10 targets
    for k in (0, 20):
        total = 0.0
        for s in ids:
            window = torch.tensor([0] + s[len(s) - 10 - k:])
            with torch.no_grad():
                logits = model(window[None, :-1]).logits[0, -10:]
            total += torch.nn.functional.cross_entropy(logits, window[-10:], reduction="sum").item()
        assert got[k] == pytest.approx(total / (10 * len(ids)), rel=1e-4)
    assert got[20] < got[0]  # context helps


def test_loss_by_context_length_refuses_windows_the_model_cannot_hold(stories):
    model, _ = stories
    with pytest.raises(ValueError, match="exceeds the model's context window"):
        lifecycle.loss_by_context_length(model, [[1] * 400], target_len=10, context_lengths=[250], start_id=0)
    with pytest.raises(ValueError, match="context_lengths"):
        lifecycle.loss_by_context_length(model, [[1] * 40], target_len=10, context_lengths=[], start_id=0)


# ------------------------------------------------------------------ diagram and model card
def test_lifecycle_diagram_names_every_stage():
    ax = lifecycle.draw_lifecycle()
    texts = " ".join(t.get_text() for t in ax.texts)
    for stage in ("Scope", "Select", "Adapt and align", "Deploy", "fine-tuning", "human feedback"):
        assert stage in texts


def test_hero_gender_counts_reads_the_first_sentence_only():
    texts = ["Once, there was a girl named Mia. A boy came.", "A boy named Tom lived here.", "A cat sat."]
    assert lifecycle.hero_gender_counts(texts) == {"girl": 1, "boy": 1}


def test_model_card_numbers_are_measured_not_copied(stories):
    model, tokenizer = stories
    card = lifecycle.measure_model_card("stories-1m", n_samples=16, max_new_tokens=20)
    assert card.n_parameters == sum(p.numel() for p in model.parameters())
    assert card.vocab_size == len(tokenizer) and card.context_window == model.config.n_positions
    val_ids = zoo.encode_stories(tokenizer, data.load_corpus("validation"))
    assert card.evaluation["val_perplexity"] == pytest.approx(metrics.perplexity(model, val_ids, seq_len=128), rel=1e-4)
    assert 1 < card.evaluation["val_perplexity"] < 5  # far below chance (1,024)
    assert 0 <= card.evaluation["girl_share_samples"] <= 1
    assert math.isclose(card.evaluation["girl_share_corpus"], 0.5, abs_tol=0.05)  # the generator picks 50/50
    text = card.to_markdown()
    for section in ("## Model details", "## Intended uses", "## Limitations, risks and biases",
                    "## Training data and procedure", "## Evaluation"):
        assert section in text
    assert f"{card.n_parameters:,}" in text


def test_model_card_refuses_bad_sample_counts():
    with pytest.raises(ValueError, match="n_samples must be an integer >= 1"):
        lifecycle.measure_model_card("stories-1m", n_samples=0)
