"""Pre-training refuses bad input with a clear message (chapter 3): an empty or non-text
corpus, a vocabulary smaller than the byte alphabet, a context window of zero."""

import pytest
import torch

from llmlab import data, tokenization
from llmlab.train import TrainConfig, train_causal_lm

STORIES = data.load_corpus("validation")[:50]


@pytest.mark.parametrize("corpus,match", [
    ([], "is empty"),
    (["", "   ", "\n"], "only empty or whitespace"),
    ("Once upon a time", "list of strings"),
    ([b"Once upon a time"], "item 0 is bytes"),
    (["Once upon a time", 42], "item 1 is int"),
    (None, "list of strings"),
])
def test_tokenizer_refuses_a_corpus_without_text(corpus, match):
    with pytest.raises(ValueError, match=match):
        tokenization.train_tokenizer(corpus, 300)


def test_tokenizer_refuses_a_vocabulary_smaller_than_the_byte_alphabet():
    with pytest.raises(ValueError, match="vocab_size must be >= 257"):
        tokenization.train_tokenizer(STORIES, 256)


def test_smallest_allowed_vocabulary_is_bytes_plus_end_of_text():
    tokenizer = tokenization.train_tokenizer(STORIES, 257)
    assert len(tokenizer) == 257
    text = STORIES[0]
    assert len(tokenizer(text)["input_ids"]) == len(text.encode("utf-8"))  # no merges: one token per byte


@pytest.mark.parametrize("stories,match", [([], "stories is empty"), ([None], "item 0 is NoneType")])
def test_encoding_refuses_a_corpus_without_text(stories, match):
    tokenizer = tokenization.train_tokenizer(STORIES, 300)
    with pytest.raises(ValueError, match=match):
        tokenization.encode_stories(tokenizer, stories)


def test_a_context_window_of_zero_is_refused_by_the_training_config():
    with pytest.raises(ValueError, match="seq_len must be a positive int, got 0"):
        TrainConfig(seq_len=0)


@pytest.fixture(scope="module")
def tiny_model(make_gpt2):
    """``tiny_model(n_positions)``: a one-layer GPT-2 with a 300-token vocabulary and that window."""
    return lambda n_positions: make_gpt2(0, vocab_size=300, n_positions=n_positions, n_embd=16, n_layer=1,
                                         initializer_range=0.02)


def test_a_model_with_a_context_window_of_zero_is_refused(tiny_model):
    ids = torch.arange(200) % 300
    cfg = TrainConfig(steps=1, batch_size=2, seq_len=8, eval_every=1, eval_batches=1, warmup_steps=0)
    with pytest.raises(ValueError, match=r"context window \(config.n_positions\) must be >= 1"):
        train_causal_lm(tiny_model(0), ids, ids, cfg, device="cpu", progress=False)


def test_training_windows_longer_than_the_context_window_are_refused(tiny_model):
    ids = torch.arange(200) % 300
    cfg = TrainConfig(steps=1, batch_size=2, seq_len=32, eval_every=1, eval_batches=1, warmup_steps=0)
    with pytest.raises(ValueError, match=r"seq_len \(32\) is longer than the model's context window"):
        train_causal_lm(tiny_model(16), ids, ids, cfg, device="cpu", progress=False)


@pytest.mark.parametrize("ids,match", [
    (torch.rand(200), "train_ids must be a 1-D tensor of integer token ids"),
    (torch.zeros(4, 50, dtype=torch.long), "train_ids must be a 1-D tensor"),
    ([1, 2, 3], "got list"),
])
def test_training_refuses_token_streams_that_are_not_integer_ids(ids, match, tiny_model):
    cfg = TrainConfig(steps=1, batch_size=2, seq_len=8, eval_every=1, eval_batches=1, warmup_steps=0)
    with pytest.raises(ValueError, match=match):
        train_causal_lm(tiny_model(16), ids, torch.arange(100), cfg, device="cpu", progress=False)


def test_valid_input_still_trains(tiny_model):
    ids = torch.arange(400) % 300
    cfg = TrainConfig(steps=2, batch_size=2, seq_len=16, eval_every=1, eval_batches=1, warmup_steps=0)
    log = train_causal_lm(tiny_model(16), ids, ids, cfg, device="cpu", progress=False)
    assert [r["step"] for r in log.rows] == [1, 2]
