"""A Llama decoder block from scratch: RMSNorm, rotary positions, SwiGLU, grouped-query attention (chapter 2).

The architecture of Llama (Touvron et al. 2023) and of most open decoders since,
among them SmolLM2, the real model of this book. It is GPT-2's block with four
pieces swapped:

- **RMSNorm** (Zhang & Sennrich 2019) instead of LayerNorm: divide by the root mean
  square, no mean subtracted, no bias;
- **rotary positions** (RoPE, Su et al. 2021) instead of a learned position table:
  queries and keys are rotated by an angle that grows with the position, so their
  dot product depends on how far apart two tokens are;
- **SwiGLU** (Shazeer 2020) instead of a GELU MLP: a gate, ``silu(x W_gate)``,
  multiplies ``x W_up`` element by element;
- **grouped-query attention** (GQA, Ainslie et al. 2023): fewer key-value heads
  than query heads; each key-value head serves a group of query heads, which makes
  the key-value cache smaller by that factor.

Written to be read top to bottom, like nanoGPT's ``model.py``; the submodules
carry Hugging Face's names (``self_attn.q_proj``, ``mlp.gate_proj``, ...), so a
layer's ``state_dict`` loads as it is. ``tests/test_llama.py`` checks every piece
against ``transformers``' ``LlamaDecoderLayer`` and ``LlamaForCausalLM``.

Shapes in comments: B batch, T positions, C model width, H query heads,
KV key-value heads, D the width of one head, I the width of the MLP, V vocabulary.
The config is a ``transformers.LlamaConfig`` (or anything with its field names).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import _checks
from .attention import scaled_dot_product_attention
from .kv_cache import cache_bytes as _cache_bytes  # the cache formula, written once

BYTES_PER_FLOAT32 = 4


# --------------------------------------------------------------------------- config
_CONFIG_FIELDS = ("hidden_size", "num_attention_heads", "num_key_value_heads", "num_hidden_layers",
                  "intermediate_size", "vocab_size")


def _config(config, fields: tuple[str, ...] = _CONFIG_FIELDS):
    """``config`` if it is a Llama-style config (a ``LlamaConfig`` or ``model.config``) with positive sizes."""
    missing = [f for f in fields if not hasattr(config, f)]
    if missing:
        raise _checks.ArgumentTypeError(f"config must be a Llama config (transformers.LlamaConfig or model.config), "
                                        f"got {type(config).__name__} without {missing}")
    for f in fields:
        _checks.positive_int(f"config.{f}", getattr(config, f))
    return config


def head_dim(config) -> int:
    """D, the width of one attention head: ``config.head_dim``, else hidden_size / num_attention_heads."""
    _config(config, ("hidden_size", "num_attention_heads"))
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def rope_theta(config) -> float:
    """The base of the rotary angles (``rope_parameters["rope_theta"]`` from transformers 5, ``rope_theta`` before).

    Only plain RoPE is written here; a config with a scaled variant (``rope_type``
    other than ``"default"``, for example Llama 3's) is refused.
    """
    _config(config, ("hidden_size",))
    params = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    kind = params.get("rope_type", params.get("type", "default"))
    if kind != "default":
        raise ValueError(f"only plain rotary positions (rope_type 'default') are written here, got {kind!r}")
    return float(params.get("rope_theta", getattr(config, "rope_theta", 10000.0)))


def _check(config) -> None:
    h, kv = config.num_attention_heads, config.num_key_value_heads
    if h <= 0 or kv <= 0 or h % kv:
        raise ValueError(f"num_attention_heads must be a positive multiple of num_key_value_heads, got {h} and {kv}")
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        raise ValueError("this block has no biases (like Llama); the config asks for attention_bias or mlp_bias")
    if getattr(config, "hidden_act", "silu") != "silu":
        raise ValueError(f"SwiGLU uses silu, got hidden_act={config.hidden_act!r}")


# --------------------------------------------------------------------------- the pieces
class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight, over the last dimension: LayerNorm without mean and bias."""

    def __init__(self, width: int, eps: float = 1e-5) -> None:
        _checks.positive_int("width", width)
        eps = _checks.non_negative("eps", eps)
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., C) -> (..., C)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotary_cos_sin(positions: torch.Tensor, dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotary angles, each (T, D), for integer ``positions`` (T,).

    Dimension pair (i, i + D/2) turns by ``position * theta^(-2i/D)`` radians: the
    first pairs fast, the last ones slowly (the clock hands of the sinusoidal
    encoding, now turning the queries and keys instead of being added to the input).
    """
    positions = _checks.tensor("positions", positions, dims=1)
    _checks.integer("dim", dim)
    if dim <= 0 or dim % 2:
        raise ValueError(f"the head width must be even and positive, got {dim}")
    theta = _checks.number("theta", theta, low=1.0, low_open=True)
    rate = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float32, device=positions.device) / dim)  # (D/2,)
    angle = positions.float()[:, None] * rate[None, :]                 # (T, D/2)
    angle = torch.cat([angle, angle], dim=-1)                          # (T, D): pair i and i + D/2 share one
    return angle.cos(), angle.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each pair (x_i, x_{i+D/2}) of ``x`` (B, heads, T, D) by its angle: a 2-D rotation per pair."""
    for name, value in (("x", x), ("cos", cos), ("sin", sin)):
        _checks.tensor(name, value)
    if x.size(-1) % 2 or cos.shape != sin.shape or cos.size(-1) != x.size(-1) or cos.size(-2) != x.size(-2):
        raise ValueError(f"x (B, heads, T, D) with an even D needs cos and sin of shape (T, D), got x "
                         f"{tuple(x.shape)}, cos {tuple(cos.shape)} and sin {tuple(sin.shape)}")
    first, second = x.chunk(2, dim=-1)                                 # (B, heads, T, D/2) each
    rotated_half = torch.cat([-second, first], dim=-1)                 # the pair turned by 90 degrees
    return x * cos + rotated_half * sin                                # = x cos(angle) + x_90 sin(angle)


class SwiGLU(nn.Module):
    """The feed-forward network of Llama: down( silu(x W_gate) * (x W_up) ), applied to each token alone."""

    def __init__(self, width: int, hidden: int) -> None:
        _checks.positive_int("width", width)
        _checks.positive_int("hidden", hidden)
        super().__init__()
        self.gate_proj = nn.Linear(width, hidden, bias=False)
        self.up_proj = nn.Linear(width, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C) -> (B, T, C)
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))   # gate and up: (B, T, I)


class GroupedQueryAttention(nn.Module):
    """Causal self-attention with H query heads sharing KV key-value heads (H / KV query heads per group).

    KV = H is ordinary multi-head attention; KV = 1 is multi-query attention
    (Shazeer 2019). Only the keys and values are cached during generation, so the
    cache shrinks by H / KV.
    """

    def __init__(self, width: int, n_heads: int, n_kv_heads: int, head_width: int) -> None:
        for name, value in (("width", width), ("n_heads", n_heads), ("n_kv_heads", n_kv_heads),
                            ("head_width", head_width)):
            _checks.positive_int(name, value)
        if n_heads % n_kv_heads:
            raise ValueError(f"n_heads must be a multiple of n_kv_heads (query heads share each key-value head), "
                             f"got {n_heads} and {n_kv_heads}")
        if head_width % 2:
            raise ValueError(f"head_width must be even (rotary positions turn pairs of dimensions), got {head_width}")
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = n_heads, n_kv_heads, head_width
        self.q_proj = nn.Linear(width, n_heads * head_width, bias=False)
        self.k_proj = nn.Linear(width, n_kv_heads * head_width, bias=False)
        self.v_proj = nn.Linear(width, n_kv_heads * head_width, bias=False)
        self.o_proj = nn.Linear(n_heads * head_width, width, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor,
                sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (B, T, C), rotary tables (T, D) -> output (B, T, C), weights (B, H, T, T).
        """
        b, t, _ = x.shape
        h, kv, d = self.n_heads, self.n_kv_heads, self.head_dim
        q = self.q_proj(x).view(b, t, h, d).transpose(1, 2)       # (B, H, T, D)
        k = self.k_proj(x).view(b, t, kv, d).transpose(1, 2)      # (B, KV, T, D)
        v = self.v_proj(x).view(b, t, kv, d).transpose(1, 2)      # (B, KV, T, D)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)   # positions: q, k only
        k = k.repeat_interleave(h // kv, dim=1)    # (B, H, T, D): query heads 0 .. H/KV - 1
        v = v.repeat_interleave(h // kv, dim=1)    # share key-value head 0, and so on
        out, weights = scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, D)
        out = out.transpose(1, 2).reshape(b, t, h * d)            # heads side by side
        return self.o_proj(out), weights                          # (B, T, C), (B, H, T, T)


# --------------------------------------------------------------------------- the block
class LlamaBlock(nn.Module):
    """One decoder layer of Llama: x + attention(RMSNorm(x)), then x + SwiGLU(RMSNorm(x)) (pre-normalization)."""

    def __init__(self, config) -> None:
        super().__init__()
        _config(config)
        _check(config)
        c, eps = config.hidden_size, config.rms_norm_eps
        self.head_dim, self.rope_theta = head_dim(config), rope_theta(config)
        self.input_layernorm = RMSNorm(c, eps)
        self.self_attn = GroupedQueryAttention(c, config.num_attention_heads, config.num_key_value_heads,
                                               self.head_dim)
        self.post_attention_layernorm = RMSNorm(c, eps)
        self.mlp = SwiGLU(c, config.intermediate_size)

    def forward(self, x: torch.Tensor,
                positions: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` (B, T, C) -> (B, T, C); ``positions`` (T,) default 0, 1, ..., T - 1."""
        if positions is None:
            positions = torch.arange(x.size(1), device=x.device)
        cos, sin = rotary_cos_sin(positions, self.head_dim, self.rope_theta)  # (T, D) each
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        attended, _ = self.self_attn(self.input_layernorm(x), cos, sin)  # read others
        x = x + attended                                           # residual connection
        x = x + self.mlp(self.post_attention_layernorm(x))         # each token alone
        return x

    @classmethod
    def from_hf(cls, layer: nn.Module, config) -> "LlamaBlock":
        """A copy of a ``transformers`` ``LlamaDecoderLayer`` (same names, so its state_dict loads as it is)."""
        with torch.device("meta"):                                     # no random init: the weights come next
            block = cls(config)
        block.load_state_dict({k: v.detach().clone() for k, v in layer.state_dict().items()}, assign=True)
        return block.eval()


@torch.no_grad()
def llama_forward(model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    """Logits (B, T, V) of a Hugging Face ``LlamaForCausalLM``, recomputed with :class:`LlamaBlock`.

    Token embeddings (no position table: positions enter as rotations inside
    attention), the blocks, a final RMSNorm, and the output projection (for tied
    embeddings, the embedding table itself). Unpadded inputs only.
    """
    _checks.model("model", model)
    if not hasattr(model, "model") or not hasattr(model.model, "layers"):
        raise _checks.ArgumentTypeError(f"model must be a Hugging Face LlamaForCausalLM, got {type(model).__name__}")
    _checks.token_ids("input_ids", _checks.tensor("input_ids", input_ids, dims=2), model.config.vocab_size)
    config, inner = model.config, model.model
    x = inner.embed_tokens.weight[input_ids]                            # (B, T, C)
    for layer in inner.layers:
        x = LlamaBlock.from_hf(layer, config)(x)
    norm = RMSNorm(config.hidden_size, config.rms_norm_eps).to(x)
    norm.load_state_dict(inner.norm.state_dict())
    return norm(x) @ model.lm_head.weight.t()                           # (B, T, V)


# --------------------------------------------------------------------------- sizes
def parameter_breakdown(config) -> dict[str, int]:
    """Number of parameters of a ``LlamaForCausalLM`` by part, from its config alone.

    Per block: the query and output projections (C x H*D each), the key and value
    projections (C x KV*D each), the three SwiGLU matrices (C x I each) and two
    RMSNorm weights (C each). Plus the embedding table (V x C), the final RMSNorm
    (C) and the output projection (V x C, or 0 when tied to the embeddings).
    """
    _config(config)
    c, d, layers = config.hidden_size, head_dim(config), config.num_hidden_layers
    h, kv, i, v = config.num_attention_heads, config.num_key_value_heads, config.intermediate_size, config.vocab_size
    attention = 2 * c * h * d + 2 * c * kv * d
    mlp, norms = 3 * c * i, 2 * c
    return {"embedding table": v * c,
            "attention (all blocks)": layers * attention,
            "SwiGLU (all blocks)": layers * mlp,
            "RMSNorm (all blocks, and final)": layers * norms + c,
            "output projection": 0 if config.tie_word_embeddings else v * c}


def parameter_count(config) -> int:
    """Total parameters of a ``LlamaForCausalLM`` from its config (tied embeddings counted once)."""
    return sum(parameter_breakdown(config).values())


def kv_cache_bytes(config, tokens: int, batch: int = 1, bytes_per_value: int = BYTES_PER_FLOAT32,
                   kv_heads: int | None = None) -> int:
    """Bytes of the key-value cache for ``tokens`` positions: 2 x layers x KV heads x D x tokens x batch x bytes.

    Keys and values (the 2) of every layer and key-value head. ``kv_heads`` overrides
    the config's, to compare with full multi-head attention (``kv_heads=H``).
    """
    _config(config)
    for name, value in (("tokens", tokens), ("batch", batch), ("bytes_per_value", bytes_per_value)):
        _checks.integer(name, value)
    if kv_heads is not None:
        _checks.positive_int("kv_heads", kv_heads)
    if tokens < 0 or batch < 1 or bytes_per_value < 1:
        raise ValueError(f"need tokens >= 0, batch >= 1 and bytes_per_value >= 1, got {tokens}, {batch}, "
                         f"{bytes_per_value}")
    kv = config.num_key_value_heads if kv_heads is None else kv_heads
    return _cache_bytes(config.num_hidden_layers, kv, head_dim(config), tokens, batch, bytes_per_value)


def cache_tensors(cache) -> list[torch.Tensor]:
    """The key and value tensors, each (B, KV, T, D), held by a ``transformers`` cache (or legacy tuples)."""
    if hasattr(cache, "layers"):                                       # DynamicCache, transformers >= 4.56
        return [t for layer in cache.layers for t in (layer.keys, layer.values) if t is not None]
    if hasattr(cache, "key_cache"):                                    # older DynamicCache
        return [t for pair in zip(cache.key_cache, cache.value_cache) for t in pair]
    if not isinstance(cache, (tuple, list)) or not all(isinstance(pair, (tuple, list)) and len(pair) >= 2
                                                        and all(isinstance(t, torch.Tensor) for t in pair[:2])
                                                        for pair in cache):
        raise _checks.ArgumentTypeError(f"cache must be a transformers cache (output.past_key_values) or a tuple of "
                                        f"(key, value) tensors per layer, got {type(cache).__name__}")
    return [t for pair in cache for t in pair[:2]]                     # tuple of (key, value) per layer


def cache_bytes(cache) -> int:
    """Bytes held by the tensors of a key-value cache (what :func:`kv_cache_bytes` predicts)."""
    return sum(t.numel() * t.element_size() for t in cache_tensors(cache))
