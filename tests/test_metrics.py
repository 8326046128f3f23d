"""llmlab.metrics on hand-worked examples and against Hugging Face's own loss."""

import math

import pytest
import torch
from tiny_models import V

from llmlab.metrics import (
    distinct_n,
    entropy_bits,
    in_vocabulary_fraction,
    mean_loss_nats,
    perplexity,
    repeated_ngram_fraction,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model(make_gpt2):
    return make_gpt2()


@pytest.fixture(scope="module")
def text_ids():
    return torch.randint(0, V, (33,), generator=torch.Generator().manual_seed(3))


def hf_loss(model, window):
    """HF's own mean next-token loss (nats) on one window of ids, in eval mode."""
    with torch.no_grad():
        return model(input_ids=window[None], labels=window[None]).loss.item()


# -----------------------------------------------------------------------------
# entropy


@pytest.mark.parametrize("vocab", [1, 2, 7, 97, 1024])
def test_entropy_of_uniform_is_log2_of_vocab_size(vocab):
    h = entropy_bits(torch.full((vocab,), 1.0 / vocab))
    assert h.item() == pytest.approx(math.log2(vocab), abs=1e-5)


def test_entropy_of_one_hot_is_zero_not_nan():
    h = entropy_bits(torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]))
    assert torch.equal(h, torch.zeros(2))


def test_entropy_of_hand_worked_rows_and_other_dims():
    probs = torch.tensor([[0.5, 0.25, 0.25], [0.5, 0.5, 0.0]])  # 1.5 bits and 1 bit
    torch.testing.assert_close(entropy_bits(probs), torch.tensor([1.5, 1.0]))
    torch.testing.assert_close(entropy_bits(probs.T, dim=0), torch.tensor([1.5, 1.0]))


def test_entropy_refuses_negative_probabilities():
    with pytest.raises(ValueError, match="probs must be probabilities"):
        entropy_bits(torch.tensor([1.5, -0.5]))


# -----------------------------------------------------------------------------
# perplexity


def test_perplexity_of_a_uniform_model_is_the_vocab_size(text_ids, make_gpt2):
    uniform = make_gpt2()
    with torch.no_grad():
        uniform.transformer.wte.weight.zero_()  # tied output head: every logit is 0
    ids = torch.randint(0, V, (50,), generator=torch.Generator().manual_seed(4))
    assert perplexity(uniform, ids, seq_len=16, batch_size=2) == pytest.approx(V, rel=1e-5)
    assert mean_loss_nats(uniform, ids, seq_len=16) == pytest.approx(math.log(V), rel=1e-6)


def test_perplexity_of_one_window_is_exp_of_hf_loss(model, text_ids):
    expected = math.exp(hf_loss(model, text_ids))
    assert perplexity(model, text_ids, seq_len=32) == pytest.approx(expected, rel=1e-5)


def test_windows_overlap_by_one_token_so_every_target_counts_once(model, text_ids):
    # 33 ids, seq_len 8: windows ids[0:9], ids[8:17], ids[16:25], ids[24:33], 8 targets each
    losses = [hf_loss(model, text_ids[8 * i : 8 * i + 9]) for i in range(4)]
    for batch_size in (1, 3, 16):  # how windows are batched must not matter
        got = mean_loss_nats(model, text_ids, seq_len=8, batch_size=batch_size)
        assert got == pytest.approx(sum(losses) / 4, rel=1e-5)


def test_leftover_tokens_form_a_shorter_last_window(model, text_ids):
    ids = text_ids[:30]  # 29 targets: three windows of 8 and one of 5
    windows = [ids[0:9], ids[8:17], ids[16:25], ids[24:30]]
    weighted = sum(hf_loss(model, w) * (len(w) - 1) for w in windows) / 29
    assert mean_loss_nats(model, ids, seq_len=8, batch_size=2) == pytest.approx(weighted, rel=1e-5)


def test_perplexity_runs_in_eval_mode_and_restores_training_mode(text_ids, make_gpt2):
    m = make_gpt2()
    expected = math.exp(hf_loss(m, text_ids))  # eval mode: dropout off
    m.train()
    assert perplexity(m, text_ids, seq_len=32) == pytest.approx(expected, rel=1e-5)
    assert m.training


@pytest.mark.parametrize(
    "ids,kw,match",
    [
        (torch.zeros(2, 5, dtype=torch.long), {}, "token_ids must be a 1-D"),
        (torch.zeros(1, dtype=torch.long), {}, "at least 2 tokens"),
        (torch.zeros(9, dtype=torch.long), {"seq_len": 0}, "seq_len must be an integer >= 1"),
        (torch.zeros(9, dtype=torch.long), {"batch_size": 0}, "batch_size must be an integer >= 1"),
    ],
)
def test_perplexity_refuses_bad_input(model, ids, kw, match):
    with pytest.raises(ValueError, match=match):
        perplexity(model, ids, **kw)


# -----------------------------------------------------------------------------
# distinct-n, repetition, vocabulary


def test_distinct_n_on_words_worked_by_hand():
    texts = ["The cat sat", "the cat ran"]
    assert distinct_n(texts, 1) == pytest.approx(4 / 6)  # the, cat, sat, ran of 6 words
    assert distinct_n(texts, 2) == pytest.approx(3 / 4)  # "the cat" twice, "cat sat", "cat ran"
    assert distinct_n(texts, 3) == pytest.approx(1.0)


def test_distinct_n_on_token_lists_worked_by_hand():
    assert distinct_n([[1, 2, 3], [1, 2]], 2) == pytest.approx(2 / 3)
    assert distinct_n([torch.tensor([5, 5, 5, 5])], 1) == pytest.approx(1 / 4)


def test_distinct_n_does_not_join_samples():
    assert distinct_n(["a b", "c d"], 2) == 1.0  # no "b c" bigram
    assert distinct_n(["a b", "c d"], 3) == 0.0  # no sample is 3 long


def test_distinct_n_of_no_ngrams_is_zero():
    assert distinct_n([], 1) == 0.0
    assert distinct_n([""], 1) == 0.0


def test_repeated_ngram_fraction_worked_by_hand():
    s = "a b a b a b"
    assert repeated_ngram_fraction(s, 1) == pytest.approx(4 / 6)
    assert repeated_ngram_fraction(s, 2) == pytest.approx(3 / 5)  # ab ba [ab ba ab]
    assert repeated_ngram_fraction(s, 3) == pytest.approx(2 / 4)  # aba bab [aba bab]
    assert repeated_ngram_fraction("a b c d", 2) == 0.0
    assert repeated_ngram_fraction([7, 7, 7, 7], 1) == pytest.approx(3 / 4)
    assert repeated_ngram_fraction([7], 2) == 0.0


def test_in_vocabulary_fraction_worked_by_hand():
    vocab = {"the", "cat", "sat", "on", "mat"}
    texts = ["The cat sat on the mat.", "Zorp cat!"]  # 8 words, only "zorp" unknown
    assert in_vocabulary_fraction(texts, vocab) == pytest.approx(7 / 8)
    assert in_vocabulary_fraction("don't stop 42", {"Don't"}) == pytest.approx(1 / 2)
    assert in_vocabulary_fraction(["123 ..."], vocab) == 0.0


@pytest.mark.parametrize("n", [0, -1, 1.5])
def test_ngram_size_must_be_a_positive_integer(n):
    with pytest.raises(ValueError, match="n must be a positive int"):
        distinct_n(["a b"], n)
    with pytest.raises(ValueError, match="n must be a positive int"):
        repeated_ngram_fraction("a b", n)
