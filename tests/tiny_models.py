"""Tiny, seeded, randomly initialised models and settings shared by the unit tests."""

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

V = 97  # vocabulary of the tiny test model


def tiny_gpt2(seed: int = 0, vocab_size: int = V) -> GPT2LMHeadModel:
    """A seeded 2-layer GPT-2 in eval mode. initializer_range=0.3 (not 0.02) gives peaked,
    varied logits, so greedy text changes token often instead of repeating one id."""
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=vocab_size, n_positions=64, n_embd=32, n_layer=2, n_head=2,
        bos_token_id=0, eos_token_id=0, initializer_range=0.3,
    )
    return GPT2LMHeadModel(config).eval()


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors gain nothing from threads, and on a busy 2-core machine each
    multi-threaded op can wait ~10 ms for a second core; restore afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
