"""Serving a decoder: the roofline, a lean decoding loop, speculative decoding and a paged KV cache (chapter 14).

Generation has two phases. *Prefill* runs the whole prompt through the model at once: many
tokens share every weight read, so it is limited by arithmetic (FLOP/s). *Decoding* runs one
new token per sequence per step: every weight is read from memory for a handful of
multiplications, so at small batches it is limited by memory bandwidth (bytes/s). The
roofline (Williams et al. 2009) puts both on one picture: attainable FLOP/s =
``min(peak FLOP/s, arithmetic intensity x bandwidth)``, where the intensity is FLOPs per byte
moved. :func:`memory_bandwidth`, :func:`llmlab.bench.matmul_flops`, :func:`step_cost` and :func:`roofline`
measure and compute it for the reader's machine and model.

Everything else here produces *the same tokens as plain greedy decoding*, faster or with less
memory, for a Llama-architecture model (SmolLM2, the project's draft):

- :class:`Decoder`: the model's forward pass written out over its own weights (RMSNorm, rotary
  positions, grouped-query attention, SwiGLU), with a key-value cache that is a preallocated
  tensor and a length, so that rolling back rejected tokens is one assignment;
  :func:`greedy_generate` decodes with it;
- :func:`speculative_generate` (Leviathan et al. 2023; Chen et al. 2023): a cheap draft
  proposes ``k`` tokens, the target checks them all in one forward pass and keeps the longest
  prefix it agrees with, plus one token of its own; with greedy acceptance the output is the
  target's own greedy output;
- :func:`prompt_lookup_generate`: the same with no draft model: proposals are copied from
  the prompt where its last few tokens occurred before (prompt-lookup decoding, as in
  transformers' ``prompt_lookup_num_tokens``);
- :class:`PagedKVCache` and :func:`serve`: continuous batching (Orca, Yu et al. 2022) over a
  cache cut into fixed-size blocks with a block table per request (PagedAttention, Kwon et
  al. 2023): requests join and leave the running batch at every step, and a finished
  request's blocks go straight back to the pool. ``policy="static"`` runs the same requests
  the old way, for comparison.

Tokens are lists or ``(1, T)`` tensors of token ids; times are seconds; sizes are bytes.
``tests/test_serving.py`` checks the decoder against transformers' logits and every decoding
path against plain greedy tokens.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from . import _checks

__all__ = ["memory_bandwidth", "matvec_seconds", "step_cost", "roofline", "Decoder", "greedy_generate",
           "speculative_generate", "prompt_lookup_generate", "SpeculativeStats", "PagedKVCache", "Request",
           "serve", "ServeResult", "expected_tokens_per_pass"]


# --------------------------------------------------------------------------- the roofline
def memory_bandwidth(megabytes: int = 512, tries: int = 5) -> dict[str, float]:
    """Measured memory bandwidth of this machine, bytes/s: ``{"read": ..., "copy": ...}``.

    ``read`` sums a float32 buffer of ``megabytes`` (far larger than any CPU cache, so every
    byte comes from memory), ``copy`` copies it into a second buffer and counts the bytes read
    plus the bytes written. Best of ``tries`` each.
    """
    megabytes = _checks.positive_int("megabytes", megabytes)
    tries = _checks.positive_int("tries", tries)
    a = torch.ones(megabytes * 2**20 // 4)
    b = torch.empty_like(a)
    best_read = best_copy = math.inf
    a.sum()
    b.copy_(a)
    for _ in range(tries):
        t0 = time.perf_counter()
        a.sum()
        t1 = time.perf_counter()
        b.copy_(a)
        t2 = time.perf_counter()
        best_read, best_copy = min(best_read, t1 - t0), min(best_copy, t2 - t1)
    nbytes = a.numel() * 4
    return {"read": nbytes / best_read, "copy": 2 * nbytes / best_copy}


def matvec_seconds(model, repeats: int = 3, rows: int = 1) -> dict[str, float]:
    """Time the matrix products of one batch-1 decoding step alone: every weight matrix of ``model``
    (a Llama-architecture causal LM) times one vector, as a step does them, and nothing else.

    Returns ``{"seconds", "bytes", "bandwidth"}`` (best of ``repeats``; bandwidth in bytes/s): how fast
    this machine's matrix-vector kernels stream the weights, which can be well below what a plain
    sum over memory reaches (:func:`memory_bandwidth`). ``rows`` > 1 times the same products for that
    many tokens at once, as a verifying pass of speculative decoding runs them.
    """
    dec = decoder(model)
    repeats = _checks.positive_int("repeats", repeats)
    rows = _checks.positive_int("rows", rows)
    mats = [w for layer in dec.layers for w in layer if w.dim() == 2]
    vectors = {w.size(1): torch.randn(1, rows, w.size(1)) for w in mats}
    head_in = torch.randn(rows, dec.head_t.size(0))
    nbytes = sum(w.numel() * w.element_size() for w in mats) + dec.head_t.numel() * dec.head_t.element_size()
    best = math.inf
    with torch.inference_mode():
        for _ in range(repeats + 1):  # the first pass warms up
            t0 = time.perf_counter()
            for w in mats:
                F.linear(vectors[w.size(1)], w)
            head_in @ dec.head_t
            best = min(best, time.perf_counter() - t0)
    return {"seconds": best, "bytes": float(nbytes), "bandwidth": nbytes / best}


_CONFIG_KEYS = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size", "vocab_size")


def _config_numbers(config) -> dict:
    missing = [key for key in _CONFIG_KEYS if not hasattr(config, key)]
    if missing:
        hint = "; pass model.config, not the model" if hasattr(config, "config") else ""
        shown = f" {_checks._shown(config)}" if isinstance(config, (str, int, float)) else ""
        raise _checks.ArgumentTypeError(f"config must be a Llama-style model config (model.config, with "
                                        f"{', '.join(_CONFIG_KEYS)}), got {type(config).__name__}{shown} "
                                        f"lacking {missing}{hint}")
    layers = _checks.positive_int("config.num_hidden_layers", config.num_hidden_layers)
    width = _checks.positive_int("config.hidden_size", config.hidden_size)
    heads = _checks.positive_int("config.num_attention_heads", config.num_attention_heads)
    kv_heads = _checks.positive_int("config.num_key_value_heads", getattr(config, "num_key_value_heads", heads))
    head_dim = getattr(config, "head_dim", None) or width // heads
    mlp = _checks.positive_int("config.intermediate_size", config.intermediate_size)
    vocab = _checks.positive_int("config.vocab_size", config.vocab_size)
    per_layer = width * (heads * head_dim) * 2 + width * (kv_heads * head_dim) * 2 + 3 * width * mlp
    return dict(layers=layers, width=width, heads=heads, kv_heads=kv_heads, head_dim=head_dim, vocab=vocab,
                matmul_params=layers * per_layer + width * vocab)


def step_cost(config, batch: int, new_tokens: int, context: int, bytes_per_weight: float = 4.0,
              bytes_per_cache_value: float = 4.0) -> dict[str, float]:
    """FLOPs and bytes moved by one forward pass of a Llama-style decoder (chapter 14's roofline).

    The pass runs ``new_tokens`` tokens for each of ``batch`` sequences, each attending to
    ``context`` earlier tokens already in the key-value cache (prefill: ``new_tokens`` = the
    prompt, ``context`` = 0; a decoding step: ``new_tokens`` = 1). Counted:

    - FLOPs: 2 per weight per token for every matrix multiply (the output layer included,
      for the last token of each sequence only, as generation does), plus the attention
      scores and weighted sums, ``4 x layers x heads x head width`` per (query, key) pair;
    - bytes: every weight once (``bytes_per_weight``: 4 float32, 2 bf16, 1 INT8, the GGUF
      file's average for Q4_1), the cache read once, the new keys and values written once.

    Returns ``{"flops", "bytes", "intensity"}`` (intensity in FLOPs per byte).
    """
    n = _config_numbers(config)
    batch = _checks.positive_int("batch", batch)
    new_tokens = _checks.positive_int("new_tokens", new_tokens)
    context = _checks.non_negative_int("context", context)
    _checks.positive("bytes_per_weight", bytes_per_weight)
    _checks.positive("bytes_per_cache_value", bytes_per_cache_value)
    head_params = n["width"] * n["vocab"]
    body = n["matmul_params"] - head_params
    tokens = batch * new_tokens
    pairs = batch * (new_tokens * context + new_tokens * (new_tokens + 1) / 2)  # causal (query, key) pairs
    flops = 2 * body * tokens + 2 * head_params * batch + 4 * n["layers"] * n["heads"] * n["head_dim"] * pairs
    kv_per_token = 2 * n["layers"] * n["kv_heads"] * n["head_dim"] * bytes_per_cache_value
    nbytes = (n["matmul_params"] * bytes_per_weight + kv_per_token * batch * context
              + kv_per_token * tokens)
    return {"flops": float(flops), "bytes": float(nbytes), "intensity": float(flops / nbytes)}


def roofline(intensity: float, peak_flops: float, bandwidth: float) -> float:
    """Attainable FLOP/s at ``intensity`` FLOPs per byte: ``min(peak_flops, intensity x bandwidth)``."""
    for name, v in (("intensity", intensity), ("peak_flops", peak_flops), ("bandwidth", bandwidth)):
        _checks.positive(name, v)
    return float(min(peak_flops, intensity * bandwidth))


def expected_tokens_per_pass(acceptance: float, k: int) -> float:
    """Tokens a speculative step yields on average when each drafted token is accepted with
    probability ``acceptance``, independently, and ``k`` are drafted: ``(1 - a^(k+1)) / (1 - a)``
    (Leviathan et al. 2023, equation 1); the target's own token counts as one of them."""
    a = _checks.fraction("acceptance", acceptance)
    k = _checks.non_negative_int("k", k)
    if a == 1.0:
        return float(k + 1)
    return float((1 - a ** (k + 1)) / (1 - a))


# --------------------------------------------------------------------------- the decoder
def _rms(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.size(-1) // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


@dataclass
class Cache:
    """A contiguous key-value cache: per layer, keys and values ``(B, KV heads, capacity, D)``, and how many
    positions are filled (``length``). Rolling back is ``cache.length = n``."""

    keys: list
    values: list
    length: int = 0

    @property
    def capacity(self) -> int:
        return self.keys[0].size(2)

    def nbytes(self) -> int:
        """Bytes the cache's tensors occupy (all of the capacity, filled or not)."""
        return sum(t.numel() * t.element_size() for t in self.keys + self.values)


class Decoder:
    """A Llama-architecture causal LM's forward pass over its own weights, for decoding (chapter 14).

    ``model`` is a transformers ``LlamaForCausalLM`` (SmolLM2, the draft). The layers compute
    what transformers computes, with the same weights; two things differ: the output layer is
    multiplied as ``h @ W^T`` stored transposed (on this kind of CPU a matrix-vector product
    reads it about twice as fast), and the cache is preallocated (:class:`Cache`).
    ``vocab_ids`` (optional) lists the model's output ids in another tokenizer's ids, for a
    draft with a smaller vocabulary (:mod:`llmlab.distill`): then :meth:`forward` takes and
    :meth:`next_tokens` returns ids of that tokenizer, and any id outside the list is read as
    the model's last id ("another token").
    """

    def __init__(self, model, vocab_ids: list[int] | torch.Tensor | None = None):
        _checks.model("model", model)
        inner = getattr(model, "model", None)
        layers = getattr(inner, "layers", None)
        if layers is None or not hasattr(layers[0], "self_attn") or not hasattr(layers[0].mlp, "gate_proj"):
            raise TypeError(f"model must be a Llama-architecture causal LM (SmolLM2, llmlab.distill's draft), "
                            f"got {type(model).__name__}")
        cfg = model.config
        self.config = cfg
        n = _config_numbers(cfg)
        self.heads, self.kv_heads, self.head_dim = n["heads"], n["kv_heads"], n["head_dim"]
        self.eps = float(cfg.rms_norm_eps)
        theta = getattr(cfg, "rope_theta", None)
        if theta is None:
            theta = (getattr(cfg, "rope_parameters", None) or {}).get("rope_theta", 10000.0)
        self.inv_freq = 1.0 / (float(theta) ** (torch.arange(0, self.head_dim, 2, dtype=torch.int64).float()
                                                / self.head_dim))
        self.layers = []
        with torch.no_grad():
            for layer in layers:
                a, m = layer.self_attn, layer.mlp
                self.layers.append(tuple(p.detach().float() for p in (
                    layer.input_layernorm.weight, a.q_proj.weight, a.k_proj.weight, a.v_proj.weight, a.o_proj.weight,
                    layer.post_attention_layernorm.weight, m.gate_proj.weight, m.up_proj.weight, m.down_proj.weight)))
            self.embed = inner.embed_tokens.weight.detach().float()
            self.norm = inner.norm.weight.detach().float()
            self.head_t = model.lm_head.weight.detach().float().t().contiguous()  # (C, V)
        self.vocab = self.head_t.size(1)
        self.weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        self._cos = self._sin = torch.empty(0)
        if vocab_ids is not None:
            ids = torch.as_tensor(vocab_ids, dtype=torch.long)
            if ids.dim() != 1 or ids.numel() != self.vocab - 1:
                raise ValueError(f"vocab_ids must list {self.vocab - 1} ids (the model's vocabulary less its "
                                 f"'another token' slot), got shape {tuple(ids.shape)}")
            self.vocab_ids = torch.cat([ids, ids.new_tensor([-1])])
            self._to_own = {int(t): i for i, t in enumerate(ids.tolist())}
        else:
            self.vocab_ids = None

    # -- positions
    def _rotary(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        top = int(positions.max()) + 1
        if self._cos.size(0) < top:
            size = max(top, 2 * self._cos.size(0), 256)
            freqs = torch.outer(torch.arange(size, dtype=torch.float32), self.inv_freq)
            emb = torch.cat((freqs, freqs), dim=-1)
            self._cos, self._sin = emb.cos(), emb.sin()
        return self._cos[positions], self._sin[positions]

    def own_ids(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens`` (ids of the target's tokenizer) as this model's ids (unchanged without ``vocab_ids``)."""
        if self.vocab_ids is None:
            return tokens
        other = self.vocab - 1
        return tokens.new_tensor([[self._to_own.get(int(t), other) for t in row] for row in tokens.tolist()])

    def new_cache(self, batch: int, capacity: int) -> Cache:
        """An empty contiguous cache for ``batch`` sequences of up to ``capacity`` positions."""
        batch = _checks.positive_int("batch", batch)
        capacity = _checks.positive_int("capacity", capacity)
        shape = (batch, self.kv_heads, capacity, self.head_dim)
        return Cache([torch.zeros(shape) for _ in self.layers], [torch.zeros(shape) for _ in self.layers])

    # -- the layers, with the attention step passed in (contiguous or paged)
    def _run(self, x: torch.Tensor, positions: torch.Tensor, attend) -> torch.Tensor:
        B, T, _ = x.shape
        H, KV, D = self.heads, self.kv_heads, self.head_dim
        cos, sin = self._rotary(positions)  # (B, T, D)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        for i, (n1, wq, wk, wv, wo, n2, wg, wu, wd) in enumerate(self.layers):
            h = _rms(x, n1, self.eps)
            q = F.linear(h, wq).view(B, T, H, D).transpose(1, 2)
            k = F.linear(h, wk).view(B, T, KV, D).transpose(1, 2)
            v = F.linear(h, wv).view(B, T, KV, D).transpose(1, 2)
            q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
            o = attend(i, q, k, v)  # (B, H, T, D)
            x = x + F.linear(o.transpose(1, 2).reshape(B, T, H * D), wo)
            h = _rms(x, n2, self.eps)
            x = x + F.linear(F.silu(F.linear(h, wg)) * F.linear(h, wu), wd)
        return x

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Output-layer scores of final hidden states ``(..., C)``: ``(..., V)``."""
        return _rms(hidden, self.norm, self.eps) @ self.head_t

    @torch.inference_mode()
    def forward(self, tokens: torch.Tensor, cache: Cache, last_only: bool = False) -> torch.Tensor:
        """Run ``tokens`` ``(B, T)`` after the ``cache.length`` positions already cached; returns scores
        ``(B, T, V)`` (``(B, 1, V)`` with ``last_only``) and advances ``cache.length`` by T."""
        if not isinstance(cache, Cache):
            raise TypeError(f"cache must be a serving.Cache (Decoder.new_cache), got {type(cache).__name__}")
        tokens = torch.as_tensor(tokens)
        if tokens.dim() != 2 or tokens.size(0) != cache.keys[0].size(0):
            raise ValueError(f"tokens must be (batch, T) with batch {cache.keys[0].size(0)} (the cache's), "
                             f"got shape {tuple(tokens.shape)}")
        B, T = tokens.shape
        start = cache.length
        if start + T > cache.capacity:
            raise ValueError(f"the cache holds {cache.capacity} positions; {start} are used and {T} more "
                             f"do not fit: make it larger")
        positions = torch.arange(start, start + T).expand(B, T)
        mask = None
        if T > 1:
            mask = torch.ones(T, start + T, dtype=torch.bool).tril(start)

        def attend(i, q, k, v):
            cache.keys[i][:, :, start:start + T] = k
            cache.values[i][:, :, start:start + T] = v
            keys, values = cache.keys[i][:, :, :start + T], cache.values[i][:, :, :start + T]
            return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, enable_gqa=KV_GROUPED)

        x = self.embed[self.own_ids(tokens)]
        x = self._run(x, positions, attend)
        cache.length = start + T
        return self.logits(x[:, -1:] if last_only else x)

    def next_tokens(self, scores: torch.Tensor) -> torch.Tensor:
        """Greedy choices from scores ``(..., V)``, as ids of the target's tokenizer."""
        best = scores.argmax(-1)
        return best if self.vocab_ids is None else self.vocab_ids[best]


KV_GROUPED = True  # queries of a group share their key-value head (SDPA's enable_gqa)

_DECODERS: dict[int, tuple[object, Decoder]] = {}


def decoder(model) -> Decoder:
    """``model`` as a :class:`Decoder` (kept for the model's lifetime, so repeated calls do not copy weights);
    a :class:`Decoder` or :class:`llmlab.distill.Draft` is returned as its decoder."""
    if isinstance(model, Decoder):
        return model
    inner = getattr(model, "decoder", None)
    if isinstance(inner, Decoder):
        return inner
    key = id(model)
    if key in _DECODERS and _DECODERS[key][0] is model:
        return _DECODERS[key][1]
    dec = Decoder(model)
    _DECODERS[key] = (model, dec)
    return dec


def _prompt(input_ids, dec: Decoder | None = None) -> list[int]:
    if isinstance(input_ids, str):
        raise _checks.ArgumentTypeError(f"input_ids must be token ids (a (1, T) tensor), got the str "
                                        f"{_checks._shown(input_ids)}; encode the text with the tokenizer first")
    try:
        ids = torch.as_tensor(input_ids)
    except (TypeError, ValueError, RuntimeError):
        raise _checks.ArgumentTypeError(f"input_ids must be token ids (a (1, T) tensor), got "
                                        f"{type(input_ids).__name__} {_checks._shown(input_ids)}") from None
    if ids.dim() == 2:
        if ids.size(0) != 1:
            raise ValueError(f"input_ids must be one sequence (1, T); batch {ids.size(0)} is not supported here "
                             f"(serve() batches requests)")
        ids = ids[0]
    if ids.dim() != 1 or ids.numel() == 0:
        raise ValueError(f"input_ids must be a non-empty (1, T) tensor of token ids, got {tuple(ids.shape)} {ids.dtype}")
    if ids.dtype not in (torch.int64, torch.int32):
        raise _checks.ArgumentTypeError(f"input_ids must be a (1, T) tensor of token ids (int64), got dtype "
                                        f"{ids.dtype}")
    prompt = ids.tolist()
    if dec is not None:
        _in_vocabulary("input_ids", prompt, dec)
    return prompt


def _in_vocabulary(name: str, ids: list[int], dec: Decoder) -> None:
    """Token ids the decoder can embed: in [0, its vocabulary); any id >= 0 for a draft with ``vocab_ids``
    (it reads an id outside its list as "another token")."""
    low, high = min(ids), max(ids)
    if low < 0 or (dec.vocab_ids is None and high >= dec.vocab):
        bound = f"[0, {dec.vocab}) (the model's vocabulary)" if dec.vocab_ids is None else ">= 0"
        raise ValueError(f"{name} must hold token ids in {bound}, got ids from {low} to {high}")


def _eos(eos_token_id) -> int | None:
    return None if eos_token_id is None else _checks.non_negative_int("eos_token_id", eos_token_id)


def _finish(prompt: list[int], out: list[int], max_new_tokens: int, eos: int | None) -> torch.Tensor:
    out = out[:max_new_tokens]
    if eos is not None and eos in out:
        out = out[:out.index(eos) + 1]
    return torch.tensor([prompt + out])


def greedy_generate(model, input_ids, max_new_tokens: int, eos_token_id: int | None = None) -> torch.Tensor:
    """Plain greedy decoding with :class:`Decoder`: one forward pass per new token.

    Returns ``(1, prompt + new)`` token ids, like ``model.generate(..., do_sample=False)``; stops
    after ``eos_token_id`` when given.
    """
    dec = decoder(model)
    prompt = _prompt(input_ids, dec)
    max_new_tokens = _checks.positive_int("max_new_tokens", max_new_tokens)
    eos_token_id = _eos(eos_token_id)
    cache = dec.new_cache(1, len(prompt) + max_new_tokens)
    scores = dec.forward(torch.tensor([prompt]), cache, last_only=True)
    out = []
    while True:
        token = int(dec.next_tokens(scores[0, -1]))
        out.append(token)
        if len(out) >= max_new_tokens or token == eos_token_id:
            break
        scores = dec.forward(torch.tensor([[token]]), cache, last_only=True)
    return _finish(prompt, out, max_new_tokens, eos_token_id)


# --------------------------------------------------------------------------- speculative decoding
@dataclass
class SpeculativeStats:
    """What one speculative run did: target passes (the prompt's included), tokens drafted and accepted."""

    target_passes: int = 0
    drafted: int = 0
    accepted: int = 0
    new_tokens: int = 0
    accepted_per_pass: list = field(default_factory=list)
    proposed_per_pass: list = field(default_factory=list)
    cut_at_other: int = 0  # proposals a small-vocabulary draft stopped at its "another token"

    @property
    def acceptance_rate(self) -> float:
        """Accepted / drafted drafted tokens (nan when nothing was drafted)."""
        return self.accepted / self.drafted if self.drafted else float("nan")

    @property
    def tokens_per_pass(self) -> float:
        """New tokens per verifying pass of the target (the prompt's pass not counted)."""
        passes = self.target_passes - 1
        return self.new_tokens / passes if passes else float("nan")


def _speculate(target, propose, prompt: list[int], max_new_tokens: int, k: int, eos: int | None,
               stats: SpeculativeStats) -> list[int]:
    """The loop shared by both speculative methods. ``propose(seq, k)`` returns up to k proposed ids."""
    tdec = decoder(target)
    cache = tdec.new_cache(1, len(prompt) + max_new_tokens + k + 2)
    scores = tdec.forward(torch.tensor([prompt]), cache, last_only=True)
    stats.target_passes += 1
    out = [int(tdec.next_tokens(scores[0, -1]))]
    seq = prompt + out
    while len(out) < max_new_tokens and out[-1] != eos:
        proposal = propose(seq, min(k, max_new_tokens - len(out)))
        pending = seq[cache.length:]  # the target's last token, not yet in its cache
        base = cache.length
        scores = tdec.forward(torch.tensor([pending + proposal]), cache)
        stats.target_passes += 1
        choices = tdec.next_tokens(scores[0, len(pending) - 1:]).tolist()  # the target's token after each position
        n = 0
        while n < len(proposal) and proposal[n] == choices[n] and proposal[n] != eos:
            n += 1
        if n < len(proposal) and proposal[n] == choices[n]:  # an accepted end-of-turn ends the answer here
            n += 1
            new = proposal[:n]
        else:
            new = proposal[:n] + [choices[n]]
        cache.length = base + len(pending) + n  # keep the accepted proposals' keys and values
        stats.drafted += len(proposal)
        stats.accepted += n
        stats.accepted_per_pass.append(n)
        stats.proposed_per_pass.append(len(proposal))
        out += new
        seq += new
    return out


def speculative_generate(target, draft, input_ids, max_new_tokens: int, k: int, eos_token_id: int | None = None,
                         return_stats: bool = False):
    """Greedy speculative decoding: ``draft`` proposes ``k`` tokens, ``target`` checks them in one pass.

    The target keeps the drafted tokens up to the first one it would not have chosen itself
    and adds its own choice there (or after all ``k``, a bonus token), so the result is exactly
    the target's greedy decoding whatever the draft proposes; a good draft only makes it
    faster. ``draft`` is a causal LM with the target's tokenizer (a transformers Llama model,
    or :class:`llmlab.distill.Draft`). Returns ``(1, prompt + new)`` token ids, and a
    :class:`SpeculativeStats` too with ``return_stats``.
    """
    prompt = _prompt(input_ids)
    max_new_tokens = _checks.positive_int("max_new_tokens", max_new_tokens)
    k = _checks.positive_int("k", k)
    eos_token_id = _eos(eos_token_id)
    ddec = decoder(draft)
    tdec = decoder(target)
    _in_vocabulary("input_ids", prompt, tdec)
    if ddec.vocab_ids is None and ddec.vocab != tdec.vocab:
        raise ValueError(f"draft and target must share a tokenizer: the draft scores {ddec.vocab} tokens, the "
                         f"target {tdec.vocab} (a draft with a smaller vocabulary needs its vocab_ids)")
    dcache = ddec.new_cache(1, len(prompt) + max_new_tokens + k + 2)
    stats = SpeculativeStats()

    def propose(seq: list[int], n: int) -> list[int]:
        dcache.length = min(dcache.length, len(seq) - 1)  # drop what the target rejected
        scores = ddec.forward(torch.tensor([seq[dcache.length:]]), dcache, last_only=True)
        proposal = [int(ddec.next_tokens(scores[0, -1]))]
        # a draft with a smaller vocabulary stops at its "another token" (-1), which it cannot name
        while len(proposal) < n and proposal[-1] not in (eos_token_id, -1):
            scores = ddec.forward(torch.tensor([proposal[-1:]]), dcache, last_only=True)
            proposal.append(int(ddec.next_tokens(scores[0, -1])))
        if -1 in proposal:
            stats.cut_at_other += 1
            proposal = proposal[:proposal.index(-1)]
        return proposal

    out = _speculate(tdec, propose, prompt, max_new_tokens, k, eos_token_id, stats)
    result = _finish(prompt, out, max_new_tokens, eos_token_id)
    stats.new_tokens = result.size(1) - len(prompt)
    return (result, stats) if return_stats else result


def lookup_proposal(seq: list[int], k: int, ngram: int = 3) -> list[int]:
    """Prompt lookup: find the last ``ngram`` (down to 1) tokens of ``seq`` earlier in ``seq`` and propose
    the (up to) ``k`` tokens that followed the earliest such occurrence; ``[]`` when none is found."""
    if not isinstance(seq, (list, tuple)) or not all(isinstance(t, int) and not isinstance(t, bool) for t in seq):
        raise _checks.ArgumentTypeError(f"seq must be a list of token ids (ints), got {type(seq).__name__} "
                                        f"{_checks._shown(seq)}")
    k = _checks.positive_int("k", k)
    ngram = _checks.positive_int("ngram", ngram)
    for size in range(min(ngram, len(seq) - 1), 0, -1):
        tail = seq[-size:]
        for start in range(len(seq) - size):
            if seq[start:start + size] == tail:
                follow = seq[start + size:start + size + k]
                if follow:
                    return follow
    return []


def prompt_lookup_generate(target, input_ids, max_new_tokens: int, k: int, ngram: int = 3,
                           eos_token_id: int | None = None, return_stats: bool = False):
    """Greedy speculative decoding with proposals copied from the text so far (:func:`lookup_proposal`),
    no draft model. Same output as plain greedy decoding; faster when the answer repeats its input
    (extraction, summaries, edits). Returns like :func:`speculative_generate`."""
    prompt = _prompt(input_ids)
    max_new_tokens = _checks.positive_int("max_new_tokens", max_new_tokens)
    k = _checks.positive_int("k", k)
    ngram = _checks.positive_int("ngram", ngram)
    eos_token_id = _eos(eos_token_id)
    _in_vocabulary("input_ids", prompt, decoder(target))
    stats = SpeculativeStats()
    out = _speculate(decoder(target), lambda seq, n: lookup_proposal(seq, n, ngram), prompt, max_new_tokens, k,
                     eos_token_id, stats)
    result = _finish(prompt, out, max_new_tokens, eos_token_id)
    stats.new_tokens = result.size(1) - len(prompt)
    return (result, stats) if return_stats else result


# --------------------------------------------------------------------------- paged cache and continuous batching
class PagedKVCache:
    """A key-value cache cut into ``num_blocks`` blocks of ``block_size`` positions (Kwon et al. 2023).

    Per layer, ``keys[l]`` and ``values[l]`` are ``(num_blocks, KV heads, block_size, D)``. A
    request owns a list of block numbers, its *block table*; position ``p`` of the request lives
    in block ``table[p // block_size]`` at offset ``p % block_size``. Blocks are taken from the
    free list as a request grows and returned when it finishes, so memory follows the tokens
    actually held, not the longest a request might become.
    """

    def __init__(self, layers: int, kv_heads: int, head_dim: int, num_blocks: int, block_size: int = 16):
        for name, v in (("layers", layers), ("kv_heads", kv_heads), ("head_dim", head_dim),
                        ("num_blocks", num_blocks), ("block_size", block_size)):
            _checks.positive_int(name, v)
        self.block_size = block_size
        self.num_blocks = num_blocks
        shape = (num_blocks, kv_heads, block_size, head_dim)
        self.keys = [torch.zeros(shape) for _ in range(layers)]
        self.values = [torch.zeros(shape) for _ in range(layers)]
        self.free = list(range(num_blocks))
        self.peak_used = 0

    @property
    def block_bytes(self) -> int:
        """Bytes of one block across all layers, keys and values."""
        k = self.keys[0]
        return 2 * len(self.keys) * k[0].numel() * k.element_size()

    @property
    def used(self) -> int:
        return self.num_blocks - len(self.free)

    def blocks_for(self, positions: int) -> int:
        """Blocks needed to hold ``positions`` positions."""
        return -(-_checks.non_negative_int("positions", positions) // self.block_size)

    def allocate(self, n: int) -> list[int]:
        """Take ``n`` free blocks (lowest numbers first); ``MemoryError`` if fewer are free."""
        n = _checks.non_negative_int("n", n)
        if n > len(self.free):
            raise MemoryError(f"{n} blocks asked for, {len(self.free)} free of {self.num_blocks}")
        self.free.sort()
        taken, self.free = self.free[:n], self.free[n:]
        self.peak_used = max(self.peak_used, self.used)
        return taken

    def release(self, blocks: list[int]) -> None:
        """Return ``blocks`` to the free list."""
        if len(set(blocks)) != len(blocks) or any(b in self.free or not 0 <= b < self.num_blocks for b in blocks):
            raise ValueError(f"blocks {blocks} must be distinct blocks in use (0 to {self.num_blocks - 1}, not free)")
        self.free.extend(blocks)


@dataclass
class Request:
    """A generation request: prompt token ids, how many new tokens at most, and the step at which it arrives."""

    prompt: list
    max_new_tokens: int
    arrival: int = 0

    def __post_init__(self):
        if not isinstance(self.prompt, (list, tuple)) or not all(
                isinstance(t, int) and not isinstance(t, bool) for t in self.prompt):
            raise _checks.ArgumentTypeError(f"prompt must be a non-empty list of token ids (ints), got "
                                            f"{type(self.prompt).__name__} {_checks._shown(self.prompt)}")
        if not self.prompt or not all(t >= 0 for t in self.prompt):
            raise ValueError(f"prompt must be a non-empty list of token ids, got {self.prompt!r:.80}")
        _checks.positive_int("max_new_tokens", self.max_new_tokens)
        _checks.non_negative_int("arrival", self.arrival)


@dataclass
class ServeResult:
    """What :func:`serve` did: each request's new tokens (in request order), timings and memory."""

    outputs: list
    seconds: float
    steps: int
    batch_sizes: list
    finished_at: list  # the step each request finished at
    started_at: list   # the step each request was admitted at
    peak_blocks: int
    block_bytes: int
    reserved_bytes: int  # what a contiguous cache would have set aside (static: the worst case of each batch)
    wasted_rows: int     # sequence-steps computed for requests already finished (static batching's padding)
    preemptions: int = 0  # requests sent back to wait for want of a free block (continuous batching)
    arrival_seconds: list = field(default_factory=list)   # when the engine reached each request's arrival step
    finished_seconds: list = field(default_factory=list)  # when each request's answer was complete (delivered)

    @property
    def new_tokens(self) -> int:
        return sum(len(o) for o in self.outputs)

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds

    @property
    def peak_cache_bytes(self) -> int:
        return self.peak_blocks * self.block_bytes


@dataclass
class _Running:
    index: int
    tokens: list      # prompt + new tokens so far
    new: list
    table: list
    max_new: int
    done: bool = False
    next_token: int = -1


@torch.inference_mode()
def serve(model, requests: list[Request], max_batch: int = 8, block_size: int = 16, num_blocks: int | None = None,
          policy: str = "continuous", eos_token_id: int | None = None) -> ServeResult:
    """Run ``requests`` through ``model`` on a paged cache, greedily; returns a :class:`ServeResult`.

    Time is counted in decoding steps: a request with ``arrival = s`` may join at step ``s``.
    ``policy="continuous"`` (Orca's iteration-level scheduling): at every step, finished
    requests leave and arrived ones join (their prompt is prefilled first) while there is
    room in the batch and free blocks for the prompt; a request takes one more block each
    time it fills one, and when none is free the request admitted last gives its blocks back
    and waits to be run again from its tokens so far (vLLM's preemption by recomputation).
    ``policy="static"``: a batch of ``max_batch`` requests starts together once that many have
    arrived (fewer when no more will come), each with its whole length reserved, and runs until
    its longest request is done;
    finished rows keep being computed, as padding, and no one joins until the batch ends.
    Each request's tokens are its own greedy decoding, whatever the policy.
    ``num_blocks`` defaults to enough for every request at once.
    """
    dec = decoder(model)
    if not isinstance(requests, (list, tuple)) or not requests or not all(isinstance(r, Request) for r in requests):
        raise TypeError("requests must be a non-empty list of serving.Request")
    max_batch = _checks.positive_int("max_batch", max_batch)
    block_size = _checks.positive_int("block_size", block_size)
    policy = _checks.choice("policy", policy, ("continuous", "static"))
    eos_token_id = _eos(eos_token_id)
    _in_vocabulary("requests' prompts", [t for r in requests for t in r.prompt], dec)
    longest = max(len(r.prompt) + r.max_new_tokens for r in requests)
    if num_blocks is None:
        num_blocks = sum(-(-(len(r.prompt) + r.max_new_tokens) // block_size) for r in requests)
    num_blocks = _checks.positive_int("num_blocks", num_blocks)
    cache = PagedKVCache(len(dec.layers), dec.kv_heads, dec.head_dim, num_blocks, block_size)
    if cache.blocks_for(longest) > num_blocks:
        raise ValueError(f"the longest request ({longest} tokens) needs {cache.blocks_for(longest)} blocks; "
                         f"the cache has {num_blocks}")
    waiting = [_Running(i, list(r.prompt), [], [], r.max_new_tokens)
               for i, r in sorted(enumerate(requests), key=lambda p: (p[1].arrival, p[0]))]
    outputs: list = [None] * len(requests)
    finished_at, started_at = [0] * len(requests), [None] * len(requests)
    running: list[_Running] = []
    batch_sizes, wasted, reserved, step, preempted = [], 0, 0, 0, 0
    t0 = time.perf_counter()
    step_start: dict[int, float] = {}
    finished_seconds = [0.0] * len(requests)
    while waiting or running:
        step_start.setdefault(step, time.perf_counter() - t0)
        if policy == "continuous" or not running:  # admit
            fill = True
            if policy == "static":  # a static batch starts once it is full, or when no one else will come
                arrived = sum(requests[w.index].arrival <= step for w in waiting)
                fill = arrived >= max_batch or all(requests[w.index].arrival <= step for w in waiting)
            admitted = []
            while (fill and waiting and requests[waiting[0].index].arrival <= step
                   and len(running) + len(admitted) < max_batch):
                a = waiting[0]
                length = len(a.tokens) + (a.max_new - len(a.new) if policy == "static" else 0)
                if cache.blocks_for(length) > len(cache.free):
                    break
                waiting.pop(0)
                a.table = cache.allocate(cache.blocks_for(length))
                admitted.append(a)
            if policy == "static" and admitted:
                reserved = max(reserved, len(admitted) * max(len(a.tokens) + a.max_new for a in admitted))
            for a in admitted:
                if started_at[a.index] is None:
                    started_at[a.index] = step
                _prefill(dec, cache, a)
                _emit(a, eos_token_id)
                running.append(a)
        if not running:
            upcoming = [requests[w.index].arrival for w in waiting if requests[w.index].arrival > step]
            step = min(upcoming) if upcoming else step + 1
            continue
        live = [a for a in running if not a.done]
        if policy == "continuous":
            for a in list(live):  # a new block when the next position starts one
                while a in live and len(a.tokens) - 1 >= len(a.table) * block_size:
                    if cache.free:
                        a.table += cache.allocate(1)
                        continue
                    victim = running[-1]  # the latest admitted gives its blocks back and waits
                    cache.release(victim.table)
                    victim.table = []
                    running.remove(victim)
                    if victim in live:
                        live.remove(victim)
                    waiting.insert(0, victim)
                    preempted += 1
        if live:
            rows = running if policy == "static" else live
            batch_sizes.append(len(rows))
            wasted += len(rows) - len(live)
            _decode_step(dec, cache, rows)
            for a in live:
                _emit(a, eos_token_id)
        step += 1
        if policy == "continuous" or all(a.done for a in running):  # retire
            for a in [a for a in running if a.done]:
                outputs[a.index] = a.new
                finished_at[a.index] = step
                finished_seconds[a.index] = time.perf_counter() - t0
                cache.release(a.table)
                running.remove(a)
    seconds = time.perf_counter() - t0
    if policy == "continuous":
        reserved = _contiguous_reserve(requests, max_batch)
    starts = sorted(step_start.items())
    arrival_seconds = [next((t for s_, t in starts if s_ >= r.arrival), seconds) for r in requests]
    return ServeResult(outputs, seconds, step, batch_sizes, finished_at, started_at, cache.peak_used,
                       cache.block_bytes, reserved * cache.block_bytes // block_size, wasted, preempted,
                       arrival_seconds, finished_seconds)


def _contiguous_reserve(requests: list[Request], max_batch: int) -> int:
    """Positions a contiguous cache reserves: ``max_batch`` slots, each as long as the longest request."""
    return min(max_batch, len(requests)) * max(len(r.prompt) + r.max_new_tokens for r in requests)


def _emit(a: _Running, eos: int | None) -> None:
    if a.done:
        return
    a.new.append(a.next_token)
    a.tokens.append(a.next_token)
    if len(a.new) >= a.max_new or a.next_token == eos:
        a.done = True


def _prefill(dec: Decoder, cache: PagedKVCache, a: _Running) -> None:
    """Run a new request's prompt alone and write its keys and values into its blocks."""
    T = len(a.tokens)
    bs = cache.block_size
    mask = torch.ones(T, T, dtype=torch.bool).tril() if T > 1 else None
    slots = torch.tensor([a.table[p // bs] for p in range(T)]), torch.tensor([p % bs for p in range(T)])

    def attend(i, q, k, v):
        cache.keys[i][slots[0], :, slots[1]] = k[0].transpose(0, 1)
        cache.values[i][slots[0], :, slots[1]] = v[0].transpose(0, 1)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=KV_GROUPED)

    x = dec._run(dec.embed[dec.own_ids(torch.tensor([a.tokens]))], torch.arange(T).unsqueeze(0), attend)
    a.next_token = int(dec.next_tokens(dec.logits(x[0, -1])))


def _decode_step(dec: Decoder, cache: PagedKVCache, rows: list[_Running]) -> None:
    """One token for each row: write its key and value into its block, attend over its blocks."""
    bs = cache.block_size
    positions = torch.tensor([[len(a.tokens) - 1] for a in rows])  # the last token's position
    width = max(len(a.table) for a in rows)
    tables = torch.tensor([a.table + [a.table[0]] * (width - len(a.table)) for a in rows])  # (B, width)
    lengths = positions[:, 0] + 1
    valid = torch.arange(width * bs).unsqueeze(0) < lengths.unsqueeze(1)  # (B, width * bs)
    mask = valid[:, None, None, :]
    write_block = tables[torch.arange(len(rows)), positions[:, 0] // bs]
    write_offset = positions[:, 0] % bs

    def attend(i, q, k, v):
        cache.keys[i][write_block, :, write_offset] = k[:, :, 0]
        cache.values[i][write_block, :, write_offset] = v[:, :, 0]
        B = len(rows)
        keys = cache.keys[i][tables].permute(0, 2, 1, 3, 4).reshape(B, dec.kv_heads, width * bs, dec.head_dim)
        values = cache.values[i][tables].permute(0, 2, 1, 3, 4).reshape(B, dec.kv_heads, width * bs, dec.head_dim)
        return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, enable_gqa=KV_GROUPED)

    last = torch.tensor([[a.tokens[-1]] for a in rows])
    x = dec._run(dec.embed[dec.own_ids(last)], positions, attend)
    choices = dec.next_tokens(dec.logits(x[:, -1]))
    for a, t in zip(rows, choices.tolist()):
        a.next_token = t
