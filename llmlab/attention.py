"""Attention from scratch: masks, scaled dot-product and multi-head attention, positions (chapter 2).

Written to be read top to bottom, in the spirit of nanoGPT's ``model.py``, and
checked (``tests/test_attention.py``) against
``torch.nn.functional.scaled_dot_product_attention``, ``torch.nn.MultiheadAttention``
and the attention inside Hugging Face's GPT-2 and BERT given the same weights.

Shapes in comments: B batch, H heads, T (or T_q, T_k) positions, C model width,
D = C / H the width of one head. A *boolean mask* is True where a query may
attend to a key, as in PyTorch's ``scaled_dot_product_attention``.

The second half reads real models: :func:`attention_maps` returns the attention
weights of every layer and head of a Hugging Face model (loaded with
``attn_implementation="eager"``: the default ``"sdpa"`` computes attention
without forming the weights and returns none), :func:`contextual_vector` the
hidden state of one word in one sentence, :func:`head_scores` measures how much
each head attends to the previous token or to the first one (an attention sink),
:func:`next_token_probabilities` reads a decoder's prediction,
:func:`group_permutation_test` asks whether two groups of vectors (the same word
in two senses) are closer within than across, and
:func:`gpt2_forward` re-runs a whole GPT-2 model with this module's pieces, from
token ids to logits. The Llama block (RMSNorm, rotary positions, SwiGLU,
grouped-query attention) is in :mod:`llmlab.llama`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from llmlab import _checks


def _bool_mask(name: str, mask) -> torch.Tensor:
    """A boolean mask (True = keep) from a bool tensor or a tensor of 0/1 (ints or floats).

    An integer 0/1 mask, what a tokenizer's ``attention_mask`` holds, is converted
    to bool so that it masks (adding it to scores would shift them instead). Any
    other value raises ValueError.
    """
    mask = _checks.tensor(name, mask)
    if mask.dtype == torch.bool:
        return mask
    if mask.is_complex():
        raise _checks.ArgumentTypeError(f"{name} must be a bool tensor or a tensor of 0/1, got dtype {mask.dtype}")
    if mask.numel() and not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError(f"{name} must be a bool tensor or hold only 0 and 1 (1 = may attend), "
                         f"got values {sorted(set(mask.flatten().tolist()))[:6]}")
    return mask.bool()



# --------------------------------------------------------------------------- masks
def causal_mask(t_q: int, t_k: int | None = None, device: torch.device | str | None = None) -> torch.Tensor:
    """(T_q, T_k) boolean mask: query i may attend to keys 0..i (plus any earlier keys when T_k > T_q).

    With a cache of earlier keys (``t_k > t_q``), the queries are the *last* T_q
    positions, the lower-right alignment that PyTorch's ``is_causal`` uses only
    for T_q == T_k.
    """
    t_q = _checks.positive_int("t_q", t_q)
    t_k = t_q if t_k is None else _checks.positive_int("t_k", t_k)
    if t_q <= 0 or t_k < t_q:
        raise ValueError(f"need 0 < t_q <= t_k, got t_q={t_q}, t_k={t_k}")
    return torch.ones(t_q, t_k, dtype=torch.bool, device=device).tril(diagonal=t_k - t_q)


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, 1, 1, T_k) boolean mask from a tokenizer's (B, T_k) ``attention_mask`` (1 = real token, 0 = padding)."""
    attention_mask = _bool_mask("attention_mask", attention_mask)
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must be (B, T), got shape {tuple(attention_mask.shape)}")
    return attention_mask.bool()[:, None, None, :]


# --------------------------------------------------------------------------- attention
def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    is_causal: bool = False,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(Q K^T / sqrt(D) + mask) V; returns ``(output, weights)``.

    ``q`` is (..., T_q, D), ``k`` (..., T_k, D), ``v`` (..., T_k, D_v). ``mask`` is
    boolean (True = may attend) or additive floats, broadcastable to
    (..., T_q, T_k); an integer mask of 0/1 (what a tokenizer returns) is read as
    boolean, so it masks; ``is_causal`` adds :func:`causal_mask`. A query that may
    attend to nothing gets zero weights and a zero output (PyTorch's fused kernels
    return NaN or zeros there).
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        _checks.tensor(name, t)
        if t.dim() < 2:
            raise ValueError(f"{name} must have at least 2 dimensions (..., T, D), "
                             f"got shape {tuple(t.shape)}")
    if mask is not None:
        _checks.tensor("mask", mask)
        if not mask.is_floating_point():
            mask = _bool_mask("mask", mask)  # 0/1 from a tokenizer: 1 = attend
        elif (mask.numel() and bool(((mask == 0) | (mask == 1)).all())
              and bool((mask == 1).any())):
            raise ValueError("mask holds only 0.0 and 1.0: a float mask is added to "
                             "the scores, so this would not mask anything; pass "
                             "mask.bool() (True = may attend) or an additive mask "
                             "of 0 and -inf")
    if scale is not None:
        scale = _checks.positive("scale", scale)
    if q.size(-1) != k.size(-1) or k.size(-2) != v.size(-2):
        raise ValueError(f"need q (..., T_q, D), k (..., T_k, D), v (..., T_k, D_v); "
                         f"got "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    scale = 1.0 / math.sqrt(q.size(-1)) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale                         # (..., T_q, T_k)
    allowed = torch.ones_like(scores, dtype=torch.bool)
    if is_causal:
        allowed = allowed & causal_mask(q.size(-2), k.size(-2), device=q.device)
    if mask is not None:
        if mask.dtype == torch.bool:
            try:
                allowed = allowed & mask
            except RuntimeError as err:
                raise ValueError(f"mask of shape {tuple(mask.shape)} does not "
                                 f"broadcast to the scores {tuple(scores.shape)} "
                                 "(..., T_q, T_k)") from err
        else:
            scores = scores + mask
    scores = scores.masked_fill(~allowed, float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # a row allowed nothing: 0
    return weights @ v, weights                   # (..., T_q, D_v), (..., T_q, T_k)


class MultiHeadAttention(nn.Module):
    """Multi-head attention (Vaswani et al. 2017): H heads of width D = C / H, side by side.

    Each head projects the input to its own queries, keys and values, attends, and
    the heads' outputs are concatenated and projected back to width C. Self-attention
    passes one sequence; cross-attention (the decoder of an encoder-decoder) passes
    the encoder's output as ``context``.
    """

    def __init__(self, d_model: int, n_heads: int, bias: bool = True, causal: bool = False) -> None:
        super().__init__()
        d_model = _checks.positive_int("d_model", d_model)
        n_heads = _checks.positive_int("n_heads", n_heads)
        if d_model <= 0 or n_heads <= 0 or d_model % n_heads:
            raise ValueError(f"d_model must be a positive multiple of n_heads, got d_model={d_model}, n_heads={n_heads}")
        self.d_model, self.n_heads, self.causal = d_model, n_heads, causal
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def _split(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C) -> (B, H, T, D)
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, self.d_model // self.n_heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None,
                need_weights: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x`` (B, T, C) -> ``(output (B, T, C), weights (B, H, T, T_k))``.

        ``context`` (B, T_k, C) supplies keys and values (default: ``x``);
        ``attention_mask`` (B, T_k) marks real tokens 1 and padding 0.
        ``need_weights=False`` calls PyTorch's fused kernel instead of the
        from-scratch function: the same result, faster, and no weights (None).
        """
        _checks.tensor("x", x, dims=3)
        if x.size(-1) != self.d_model:
            raise ValueError(f"x must be (B, T, {self.d_model}) for this layer's width, got shape {tuple(x.shape)}")
        if context is not None:
            _checks.tensor("context", context, dims=3)
        context = x if context is None else context
        q, k, v = self._split(self.q_proj(x)), self._split(self.k_proj(context)), self._split(self.v_proj(context))
        mask = padding_mask(attention_mask) if attention_mask is not None else None
        if need_weights:
            out, weights = scaled_dot_product_attention(q, k, v, mask=mask, is_causal=self.causal)  # (B, H, T, D)
        else:
            if self.causal:
                causal = causal_mask(q.size(-2), k.size(-2), device=q.device)
                mask = causal if mask is None else mask & causal
            out, weights = F.scaled_dot_product_attention(q, k, v, attn_mask=mask), None
        out = out.transpose(1, 2).reshape(x.shape)                      # heads side by side: (B, T, C)
        return self.out_proj(out), weights

    # ---- the same weights as a library module ----
    @classmethod
    def from_torch(cls, mha: nn.MultiheadAttention, causal: bool = False) -> "MultiHeadAttention":
        """A copy of a ``torch.nn.MultiheadAttention`` (batch_first, same width for q, k, v)."""
        if not mha._qkv_same_embed_dim:
            raise ValueError("only nn.MultiheadAttention with kdim == vdim == embed_dim is supported")
        new = cls(mha.embed_dim, mha.num_heads, bias=mha.in_proj_bias is not None, causal=causal)
        w = mha.in_proj_weight.detach().chunk(3)
        b = mha.in_proj_bias.detach().chunk(3) if mha.in_proj_bias is not None else (None,) * 3
        new._load(w, b, mha.out_proj.weight.detach(), mha.out_proj.bias)
        return new.to(mha.in_proj_weight.dtype)

    @classmethod
    def from_gpt2(cls, attn: nn.Module) -> "MultiHeadAttention":
        """A copy of a Hugging Face ``GPT2Attention`` (its ``c_attn`` is a Conv1D: weight (C, 3C), x @ W)."""
        c = attn.embed_dim
        new = cls(c, attn.num_heads, causal=True)
        w = attn.c_attn.weight.detach().t().split(c)                   # three (C, C) in nn.Linear layout
        b = attn.c_attn.bias.detach().split(c)
        new._load(w, b, attn.c_proj.weight.detach().t(), attn.c_proj.bias)
        return new.to(attn.c_attn.weight.dtype)

    @classmethod
    def from_bert(cls, attention: nn.Module) -> "MultiHeadAttention":
        """A copy of a Hugging Face ``BertAttention`` (``layer.attention``: self-attention plus its output projection)."""
        s, o = attention.self, attention.output.dense
        new = cls(s.query.in_features, s.num_attention_heads)
        new._load((s.query.weight, s.key.weight, s.value.weight), (s.query.bias, s.key.bias, s.value.bias),
                  o.weight, o.bias)
        return new.to(s.query.weight.dtype)

    @torch.no_grad()
    def _load(self, w, b, w_out, b_out) -> None:
        for proj, weight, bias in zip((self.q_proj, self.k_proj, self.v_proj), w, b):
            proj.weight.copy_(weight)
            if bias is not None:
                proj.bias.copy_(bias)
        self.out_proj.weight.copy_(w_out)
        if b_out is not None:
            self.out_proj.bias.copy_(b_out)


# --------------------------------------------------------------------------- positions
def sinusoidal_positional_encoding(n_positions: int, d_model: int) -> torch.Tensor:
    """(n_positions, d_model) encodings of Vaswani et al. (2017), added to the token embeddings.

    PE[pos, 2i] = sin(pos / 10000^(2i / d_model)), PE[pos, 2i + 1] = cos(same angle):
    each pair of dimensions turns at its own frequency, from one turn per 2*pi
    positions down to one per 10000 * 2*pi.
    """
    n_positions = _checks.positive_int("n_positions", n_positions)
    d_model = _checks.positive_int("d_model", d_model)
    if n_positions <= 0 or d_model <= 0 or d_model % 2:
        raise ValueError(f"need n_positions > 0 and an even d_model > 0, got {n_positions} and {d_model}")
    position = torch.arange(n_positions, dtype=torch.float64)[:, None]          # (T, 1)
    rate = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (C/2,)
    pe = torch.zeros(n_positions, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(position * rate)
    pe[:, 1::2] = torch.cos(position * rate)
    return pe.float()


# --------------------------------------------------------------------------- a whole decoder
@torch.no_grad()
def gpt2_forward(model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    """Logits (B, T, V) of a Hugging Face GPT-2 model, recomputed step by step with this module.

    The pipeline of chapter 2: token embedding lookup, plus learned position
    embeddings; per block, x + attention(LayerNorm(x)) then x + MLP(LayerNorm(x));
    a final LayerNorm; logits against the (tied) embedding table. Softmax over the
    last dimension turns them into next-token probabilities.
    """
    _checks.model("model", model)
    if not hasattr(model, "transformer") or not hasattr(model.transformer, "wte"):
        raise TypeError(f"model must be a Hugging Face GPT-2 model (GPT2LMHeadModel), got {type(model).__name__}")
    _checks.token_ids("input_ids", input_ids, model.config.vocab_size)
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be (B, T), got shape {tuple(input_ids.shape)}")
    gpt = model.transformer
    t = input_ids.size(1)
    if t > model.config.n_positions:
        raise ValueError(f"{t} tokens do not fit the context window of {model.config.n_positions}")
    x = gpt.wte.weight[input_ids] + gpt.wpe.weight[:t]                 # (B, T, C): an embedding is a table row
    for block in gpt.h:
        attn = MultiHeadAttention.from_gpt2(block.attn)
        x = x + attn(F.layer_norm(x, (x.size(-1),), block.ln_1.weight, block.ln_1.bias, block.ln_1.eps))[0]
        h = F.layer_norm(x, (x.size(-1),), block.ln_2.weight, block.ln_2.bias, block.ln_2.eps)
        h = F.gelu(h @ block.mlp.c_fc.weight + block.mlp.c_fc.bias, approximate="tanh")  # (B, T, 4C)
        x = x + h @ block.mlp.c_proj.weight + block.mlp.c_proj.bias
    x = F.layer_norm(x, (x.size(-1),), gpt.ln_f.weight, gpt.ln_f.bias, gpt.ln_f.eps)
    return x @ model.lm_head.weight.t()                                # (B, T, V)


# --------------------------------------------------------------------------- reading real models
@torch.no_grad()
def attention_maps(model: nn.Module, tokenizer, text: str) -> tuple[torch.Tensor, list[str]]:
    """Attention weights of every layer and head for ``text``: ``(weights (L, H, T, T), tokens)``.

    Works for encoders and decoders (for an encoder-decoder, the encoder's
    self-attention). The model must be loaded with ``attn_implementation="eager"``,
    for example ``zoo.load("minilm", attn_implementation="eager")``: the default
    ``"sdpa"`` never forms the weights and returns none.
    """
    _checks.model("model", model)
    _checks.tokenizer("tokenizer", tokenizer)
    _checks.string("text", text, allow_empty=False)
    batch = tokenizer(text, return_tensors="pt").to(model.device)
    if model.config.is_encoder_decoder:
        out = model.get_encoder()(**batch, output_attentions=True)
    else:
        out = model(**batch, output_attentions=True)
    attentions = getattr(out, "encoder_attentions", None) or out.attentions
    if not attentions or any(a is None for a in attentions):
        impl = getattr(model.config, "_attn_implementation", "unknown")
        raise ValueError(f"the model returned no attention weights (attn_implementation={impl!r}); "
                         "load it with attn_implementation='eager' to get them")
    weights = torch.stack([a[0] for a in attentions]).float().cpu()   # (L, H, T, T)
    return weights, tokenizer.convert_ids_to_tokens(batch["input_ids"][0].tolist())


@torch.no_grad()
def contextual_vector(model: nn.Module, tokenizer, text: str, word: str, layer: int | None = -1) -> torch.Tensor:
    """The hidden state (C,) of ``word`` in ``text`` after ``layer`` (0 = the embeddings; -1 = the last layer).

    ``layer=None`` returns every layer at once, (L + 1, C), from one forward pass.
    The first whole-word occurrence of ``word`` (case-insensitive) is located by
    characters; when the tokenizer splits it, its tokens' vectors are averaged.
    """
    import re

    _checks.model("model", model)
    _checks.tokenizer("tokenizer", tokenizer)
    _checks.string("text", text, allow_empty=False)
    _checks.string("word", word, allow_empty=False)
    if layer is not None:
        _checks.integer("layer", layer)
    match = re.search(rf"\b{re.escape(word)}\b", text, flags=re.IGNORECASE)
    if match is None:
        raise ValueError(f"{word!r} does not occur as a word in {text!r}")
    batch = tokenizer(text, return_tensors="pt", return_offsets_mapping=True)
    offsets = batch.pop("offset_mapping")[0]                          # (T, 2) character spans
    inside = (offsets[:, 0] < match.end()) & (offsets[:, 1] > match.start()) & (offsets[:, 1] > offsets[:, 0])
    out = model(**batch.to(model.device), output_hidden_states=True)
    states = out.encoder_hidden_states if getattr(out, "encoder_hidden_states", None) else out.hidden_states
    vectors = torch.stack([h[0, inside.to(model.device)].mean(0) for h in states]).float().cpu()  # (L + 1, C)
    if layer is not None and not -vectors.size(0) <= layer < vectors.size(0):
        raise ValueError(f"layer must be in [{-vectors.size(0)}, {vectors.size(0) - 1}] "
                         f"(0 = the embeddings), got {layer}")
    return vectors if layer is None else vectors[layer]


def plot_attention(ax, weights: torch.Tensor, tokens: list[str], title: str = "", labels: bool = True,
                   axis_labels: bool = False):
    """Draw one (T, T) attention map: row = the query token, column = the key it attends to (0 to 1).

    Returns the image, for a colour bar: ``fig.colorbar(image, ax=axes)``.
    ``axis_labels=True`` names the axes (query token, key token).
    """
    _checks.tensor("weights", weights, dims=2)
    tokens = _checks.strings("tokens", tokens, allow_empty=True)
    if labels and len(tokens) != weights.size(-1):
        raise ValueError(f"tokens must have one name per column of weights ({weights.size(-1)}), got {len(tokens)}")
    image = ax.imshow(weights.numpy(), cmap="Blues", vmin=0.0, vmax=1.0)
    ax.grid(False)
    if labels:
        ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=7)
        ax.set_yticks(range(len(tokens)), tokens, fontsize=7)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    if axis_labels:
        ax.set_xlabel("key token (attended to)", fontsize=8)
        ax.set_ylabel("query token (attending)", fontsize=8)
    if title:
        ax.set_title(title, fontsize=8)
    return image


def head_scores(weights: torch.Tensor, first_query: int = 1) -> dict[str, torch.Tensor]:
    """How strongly each head does two common things: ``{"previous token": (L, H), "first token": (L, H)}``.

    ``weights`` are maps (L, H, T, T) from :func:`attention_maps`. "previous token"
    is the mean weight a query puts on the token just before it (a *previous-token
    head*); "first token" the mean weight on position 0 (in decoders an *attention
    sink*, Xiao et al. 2024). Both are averaged over the queries from
    ``first_query`` on (query 0 of a causal model can only attend to itself) and lie
    in [0, 1].
    """
    _checks.tensor("weights", weights)
    if weights.dim() < 2 or weights.size(-1) != weights.size(-2):
        raise ValueError(f"weights must be attention maps (..., T, T), got shape {tuple(weights.shape)}")
    first_query = _checks.integer("first_query", first_query)
    t = weights.size(-1)
    if not 1 <= first_query < t:
        raise ValueError(f"first_query must be in [1, {t - 1}] for {t} tokens, got {first_query}")
    queries = torch.arange(first_query, t)
    return {"previous token": weights[..., queries, queries - 1].mean(-1),
            "first token": weights[..., queries, 0].mean(-1)}


def strongest_head(score: torch.Tensor) -> tuple[int, int]:
    """(layer, head), counted from 0, of the largest entry of an (L, H) score from :func:`head_scores`."""
    _checks.tensor("score", score, dims=2)
    if not score.numel():
        raise ValueError("score must be a non-empty (L, H) tensor, got an empty one")
    layer, head = divmod(int(score.argmax()), score.size(1))
    return layer, head


@torch.no_grad()
def next_token_probabilities(model: nn.Module, tokenizer, text: str) -> torch.Tensor:
    """A causal LM's probabilities (V,) for the token after ``text`` (softmax of the last position's logits)."""
    _checks.model("model", model)
    _checks.tokenizer("tokenizer", tokenizer)
    _checks.string("text", text, allow_empty=False)
    ids = tokenizer(text, return_tensors="pt")["input_ids"].to(model.device)
    return torch.softmax(model(input_ids=ids).logits[0, -1].float(), dim=-1).cpu()


# ------------------------------------------------------------- two groups of vectors
@dataclass(frozen=True)
class GroupTest:
    """An exact label-permutation test of two groups of vectors (cosine similarity)."""

    names: tuple[str, str]
    gap: float  # mean within-group cosine (the two groups averaged) - mean across
    p: float  # share of all splits with a gap at least as large (exact, one-sided)
    n_splits: int  # every way to split the vectors into groups of the two sizes

    def __post_init__(self) -> None:
        if not 0 <= self.p <= 1:
            raise ValueError(f"p must be a share in [0, 1], got {self.p!r}")
        if isinstance(self.n_splits, bool) or not isinstance(self.n_splits, int) \
                or self.n_splits < 1:
            raise ValueError(f"n_splits must be a positive int, got {self.n_splits!r}")

    @property
    def verdict(self) -> str:
        """E.g. ``"money and river vectors closer within than across (exact ...)"``."""
        p = "p < 0.001" if self.p < 0.001 else f"p = {self.p:.3f}"
        test = f"exact permutation test over all {self.n_splits:,} splits, {p}"
        a, b = self.names
        if self.p < 0.05:
            return f"{a} and {b} vectors closer within their groups than across ({test})"
        return f"no clear separation of the {a} and {b} vectors ({test})"


def _gap(sims: torch.Tensor, in_a: torch.Tensor) -> float:
    """Mean within-group cosine (groups averaged) minus mean across, for one split."""
    in_b = ~in_a
    off = ~torch.eye(len(in_a), dtype=torch.bool)
    within_a = sims[in_a[:, None] & in_a[None] & off].mean()
    within_b = sims[in_b[:, None] & in_b[None] & off].mean()
    across = sims[in_a[:, None] & in_b[None]].mean()
    return float((within_a + within_b) / 2 - across)


def group_permutation_test(a: torch.Tensor, b: torch.Tensor,
                           names: tuple[str, str] = ("A", "B"),
                           max_splits: int = 100_000) -> GroupTest:
    """Are vectors ``a`` (n_a, C) and ``b`` (n_b, C) closer within groups than across?

    The statistic is the gap: the mean cosine similarity within each group (the two
    averaged) minus the mean across groups. The test recomputes it for every way of
    splitting the n_a + n_b vectors into groups of n_a and n_b (the labels permuted)
    and reports the share of splits whose gap is at least the observed one. Each
    vector is one unit, so the pairwise similarities are not treated as independent.
    With 5 + 5 vectors there are 252 splits and, the gap being symmetric in the two
    groups, p cannot go below 2 / 252.
    """
    a, b = _checks.tensor("a", a, dims=2), _checks.tensor("b", b, dims=2)
    if a.size(0) < 2 or b.size(0) < 2:
        raise ValueError(f"each group needs at least 2 vectors, got {a.size(0)} and {b.size(0)}")
    if a.size(1) != b.size(1):
        raise ValueError(f"a and b must have the same width, got {a.size(1)} and {b.size(1)}")
    if (not isinstance(names, (tuple, list)) or len(names) != 2
            or not all(isinstance(n, str) and n for n in names)):
        raise TypeError(f"names must be two non-empty strings, got {names!r}")
    n_a, n = a.size(0), a.size(0) + b.size(0)
    n_splits = math.comb(n, n_a)
    if n_splits > _checks.integer("max_splits", max_splits, low=1):
        raise ValueError(f"{n_splits:,} splits exceed max_splits = {max_splits:,}: "
                         "use fewer vectors or raise max_splits")
    both = torch.cat([a, b]).detach().float().cpu()
    sims = F.cosine_similarity(both[:, None], both[None], dim=-1)
    observed = _gap(sims, torch.arange(n) < n_a)
    at_least = 0
    for group in itertools.combinations(range(n), n_a):
        in_a = torch.zeros(n, dtype=torch.bool)
        in_a[list(group)] = True
        at_least += _gap(sims, in_a) >= observed - 1e-6  # float32 sums: ties
    return GroupTest((names[0], names[1]), observed, at_least / n_splits, n_splits)
