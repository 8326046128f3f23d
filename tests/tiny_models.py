"""Tiny, seeded, randomly initialised models shared by the unit tests.

Tests get them through the fixtures of tests/conftest.py (``make_gpt2``, ``make_llama``,
``gpt2_model``, ``one_thread``); a module that needs a model at collection time (in a
parametrize list) may call the builders here directly.
"""

import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

V = 97  # vocabulary of the tiny test model

GPT2_DEFAULTS = dict(n_positions=64, n_embd=32, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0,
                     initializer_range=0.3)
LLAMA_DEFAULTS = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)


def tiny_gpt2(seed: int = 0, vocab_size: int = V, **changes) -> GPT2LMHeadModel:
    """A seeded 2-layer GPT-2 in eval mode; ``changes`` override the config (``GPT2_DEFAULTS``).
    initializer_range=0.3 (not 0.02) gives peaked, varied logits, so greedy text changes token
    often instead of repeating one id; pass ``initializer_range=0.02`` for GPT-2's own."""
    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(vocab_size=vocab_size, **{**GPT2_DEFAULTS, **changes})).eval()


def tiny_llama(seed: int = 0, **changes) -> LlamaForCausalLM:
    """A seeded 2-layer Llama (grouped-query attention: 4 heads, 2 KV heads) in eval mode;
    ``changes`` override the config (``LLAMA_DEFAULTS``)."""
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**{**LLAMA_DEFAULTS, **changes})).eval()
