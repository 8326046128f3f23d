"""The key-value cache of a decoder: its size in bytes and the time it saves per step (chapter 2).

A decoder writes one token per step, and every step attends to the keys and values of
all earlier tokens in every layer. With a cache, the model keeps them and runs only the
newest token through the network; without one, every step runs the whole prefix again.

- :func:`cache_bytes`: ``2 x layers x KV heads x head width x tokens x batch x bytes``,
  the 2 for keys and values;
- :func:`attention_variants`: that size for multi-head attention (one key-value head per
  query head), grouped-query attention (Ainslie et al. 2023) and multi-query attention
  (one key-value head, Shazeer 2019);
- :func:`decode_step_seconds`: the time of one decoding step at a given position, with
  the cache (one token against the cached prefix) or without (a forward over the prefix).

``tests/test_kv_cache.py`` checks the byte count against the cache ``transformers`` returns.
"""

from __future__ import annotations

import copy
import time

import torch

from . import compat

VARIANTS = ("multi-head", "grouped-query", "multi-query")


def _positive(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return value


def cache_bytes(layers: int, kv_heads: int, head_dim: int, tokens: int, batch: int = 1,
                bytes_per_value: int = 4) -> int:
    """Bytes of a key-value cache: 2 (keys and values) x layers x KV heads x D x tokens x batch x bytes.

    ``head_dim`` is D, the width of one head; ``bytes_per_value`` is 4 for float32,
    2 for float16/bfloat16, 1 for 8-bit. ``tokens`` may be 0 (an empty cache).
    """
    layers, kv_heads = _positive("layers", layers), _positive("kv_heads", kv_heads)
    head_dim, batch = _positive("head_dim", head_dim), _positive("batch", batch)
    tokens = _positive("tokens", tokens, minimum=0)
    bytes_per_value = _positive("bytes_per_value", bytes_per_value)
    return 2 * layers * kv_heads * head_dim * tokens * batch * bytes_per_value


def attention_variants(layers: int, query_heads: int, kv_heads: int, head_dim: int, tokens: int,
                       batch: int = 1, bytes_per_value: int = 4) -> dict[str, int]:
    """Cache bytes for multi-head, grouped-query (``kv_heads``) and multi-query attention.

    Multi-head attention keeps one key-value head per query head (``query_heads``),
    grouped-query attention ``kv_heads`` of them, each shared by a group of query heads,
    and multi-query attention a single one. Returns bytes, keyed by :data:`VARIANTS`.
    """
    query_heads, kv_heads = _positive("query_heads", query_heads), _positive("kv_heads", kv_heads)
    if query_heads % kv_heads:
        raise ValueError(f"query_heads must be a multiple of kv_heads, got {query_heads} and {kv_heads}")
    heads = dict(zip(VARIANTS, (query_heads, kv_heads, 1)))
    return {name: cache_bytes(layers, h, head_dim, tokens, batch, bytes_per_value)
            for name, h in heads.items()}


def config_shape(config) -> dict[str, int]:
    """Layers, query heads, key-value heads and head width of a Llama-style ``transformers`` config."""
    needed = ("num_hidden_layers", "num_attention_heads", "hidden_size")
    if not all(hasattr(config, k) for k in needed):
        raise TypeError(f"config must be a transformers config with {', '.join(needed)}, "
                        f"got {type(config).__name__}")
    heads = config.num_attention_heads
    return {
        "layers": config.num_hidden_layers,
        "query_heads": heads,
        "kv_heads": getattr(config, "num_key_value_heads", None) or heads,
        "head_dim": getattr(config, "head_dim", None) or config.hidden_size // heads,
    }


def decode_step_seconds(
    model: torch.nn.Module, ids: torch.Tensor, position: int, use_cache: bool,
    repeats: int = 3,
) -> tuple[list[float], torch.Tensor]:
    """Seconds of one decoding step at ``position`` (0-based), each of ``repeats`` runs.

    With the cache, the prefix ``ids[:, :position]`` is run once beforehand (not
    timed) and the step is one forward of token ``position`` against a fresh copy of
    that cache. Without it, the step is a forward over ``ids[:, :position + 1]``, as
    a decoder with no cache does at every step. ``ids`` is (1, T), T > ``position``.
    Returns the times and the logits of the last position (the same either way, up
    to rounding).
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (a decoder), "
                        f"got {type(model).__name__}")
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.shape[0] != 1:
        raise ValueError("ids must be a (1, T) tensor of token ids")
    position = _positive("position", position)
    repeats = _positive("repeats", repeats)
    if position >= ids.shape[1]:
        raise ValueError(f"position must be below the length of ids ({ids.shape[1]}), "
                         f"got {position}")
    times = []
    with torch.no_grad():
        if use_cache:  # the prefix, once: (B, KV, position, D) per layer
            out = model(input_ids=ids[:, :position], use_cache=True)
            prefix = compat.returned_cache(out)
            step = ids[:, position:position + 1]  # (1, 1): only the newest token
            name = compat.cache_argument(model)  # past_key_values, or cache from 5.24
        for _ in range(repeats):
            if use_cache:
                cache = copy.deepcopy(prefix)  # the step appends to the cache it gets
                start = time.perf_counter()
                logits = model(input_ids=step, use_cache=True, **{name: cache}).logits
            else:  # the whole prefix again, (1, position + 1)
                start = time.perf_counter()
                logits = model(input_ids=ids[:, :position + 1], use_cache=False).logits
            times.append(time.perf_counter() - start)
    return times, logits[0, -1]
