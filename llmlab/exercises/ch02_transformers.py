"""Chapter 2 (transformers): the checks that ``exercises/src/02_transformers.py`` calls,
its quiz key and their private helpers (the shared machinery is in ``_harness.py``)."""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from ._harness import _call, _Case, _quiz, _run, _salted, _tensor_problem, _Wrong


def check_causal_mask(fn: Callable) -> bool:
    """Chapter 2. ``fn(t) -> (t, t) bool tensor``, True where query i may attend to key j (j <= i)."""
    from ..attention import causal_mask

    def case(t, label, hidden=True):
        def run():
            got = _call(fn, t)
            want = causal_mask(t)
            problem = _tensor_problem(got, want, "the mask")
            if problem and isinstance(got, torch.Tensor) and got.shape == want.shape and got.dtype == torch.bool:
                if torch.equal(got, want.T):
                    raise _Wrong("the mask is transposed: row i is query i and may see columns (keys) 0..i")
                if torch.equal(got, ~want):
                    raise _Wrong("True and False are swapped: True should mean 'may attend'")
                if torch.equal(got, want.tril(-1)):
                    raise _Wrong("the diagonal is False: a token may attend to itself")
            if problem:
                raise _Wrong(problem)
        return _Case(f"t = {t}", run, hidden)

    return _run("causal_mask", [case(4, "", hidden=False), case(1, ""), case(7, "")])


def check_attention(fn: Callable) -> bool:
    """Chapter 2. ``fn(q, k, v, mask=None) -> (output, weights)``: scaled dot-product attention with an
    optional boolean mask (True = may attend), for inputs shaped (..., T, D). Compared with
    ``torch.nn.functional.scaled_dot_product_attention``."""
    def case(shape_q, t_k, d_v, masked, label, hidden=True, seed=0):
        def run():
            g = torch.Generator().manual_seed(seed)
            q = torch.randn(*shape_q, generator=g)
            k = torch.randn(*shape_q[:-2], t_k, shape_q[-1], generator=g)
            v = torch.randn(*shape_q[:-2], t_k, d_v, generator=g)
            mask = None
            if masked:
                mask = torch.ones(shape_q[-2], t_k, dtype=torch.bool).tril()
            got = _call(fn, q.clone(), k.clone(), v.clone(), mask)
            if not isinstance(got, tuple) or len(got) != 2:
                raise _Wrong(f"expected a tuple (output, weights), got {type(got).__name__}")
            out, weights = got
            want_out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            want_w = scores.softmax(-1)
            problems = [_tensor_problem(weights, want_w, "weights", atol=1e-5),
                        _tensor_problem(out, want_out, "output", atol=1e-5)]
            if problems[0] and isinstance(weights, torch.Tensor) and weights.shape == want_w.shape:
                if mask is not None:
                    inverted = (q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))).masked_fill(mask, float("-inf"))
                    if torch.allclose(weights.detach().float().nan_to_num(), inverted.softmax(-1).nan_to_num(),
                                      atol=1e-5):
                        raise _Wrong("the mask is inverted: the allowed positions get no weight and the masked "
                                     "ones do (fill the scores where the mask is False: masked_fill(~mask, -inf))")
                sums = weights.sum(-1)
                if not torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
                    col = weights.sum(-2)
                    if torch.allclose(col, torch.ones_like(col), atol=1e-4):
                        raise _Wrong("the weights sum to 1 down each column: softmax over the keys (dim=-1)")
                    raise _Wrong("the weights are not normalised: each row (one query) should sum to 1")
                unscaled = (q @ k.transpose(-2, -1))
                if mask is not None:
                    unscaled = unscaled.masked_fill(~mask, float("-inf"))
                if torch.allclose(weights, unscaled.softmax(-1), atol=1e-5):
                    raise _Wrong("the scores are not scaled: divide Q K^T by sqrt(D), D = size of a key")
                if mask is not None and (weights[..., ~mask].abs() > 1e-6).any():
                    raise _Wrong("masked positions get weight: set their scores to -inf before the softmax")
                if v.size(-1) != q.size(-1):
                    by_value = (q @ k.transpose(-2, -1)) / math.sqrt(v.size(-1))
                    if mask is not None:
                        by_value = by_value.masked_fill(~mask, float("-inf"))
                    if torch.allclose(weights, by_value.softmax(-1), atol=1e-5):
                        raise _Wrong("the scores are divided by the square root of the size of the values; "
                                     "D is the size of a query and key (q.size(-1))")
            for problem in problems:
                if problem:
                    raise _Wrong(problem)
        return _Case(label, run, hidden)

    return _run("attention", [
        case((5, 8), 5, 8, False, "q, k, v of shape (5, 8), no mask", hidden=False),
        case((5, 8), 5, 8, True, "(5, 8) with a causal mask", hidden=False),
        case((2, 3, 4, 6), 7, 5, False, "batched (2, 3, 4, 6) queries, 7 keys, values of size 5", seed=1),
        case((2, 6, 16), 6, 16, True, "batched with a mask", seed=2),
    ])


def check_positional_encoding(fn: Callable) -> bool:
    """Chapter 2. ``fn(n_positions, d_model) -> (n_positions, d_model)`` sinusoidal encoding (Vaswani et al.
    2017): even columns sin(pos / 10000^(2i/d)), odd columns cos of the same angle."""
    from ..attention import sinusoidal_positional_encoding

    def case(n, d, label, hidden=True):
        def run():
            got = _call(fn, n, d)
            want = sinusoidal_positional_encoding(n, d)
            problem = _tensor_problem(got, want, "the encoding", atol=1e-5, check_dtype=False)
            if problem and isinstance(got, torch.Tensor) and got.shape == want.shape:
                g = got.to(torch.float64)
                w = want.to(torch.float64)
                swapped = torch.stack([w[:, 1::2], w[:, 0::2]], dim=-1).flatten(1) if d % 2 == 0 else None
                if swapped is not None and torch.allclose(g, swapped, atol=1e-5):
                    raise _Wrong("sin and cos are swapped: sin goes in the even columns (0, 2, ...), cos in the odd")
                if d % 2 == 0 and torch.allclose(g, torch.cat([w[:, 0::2], w[:, 1::2]], 1), atol=1e-5):
                    raise _Wrong("sin and cos are in two halves; they should be interleaved (sin, cos, sin, cos...)")
            if problem and isinstance(got, torch.Tensor) and got.shape == want.shape and n > 1:
                shifted = sinusoidal_positional_encoding(n + 1, d)[1:].to(torch.float64)
                if torch.allclose(got.to(torch.float64), shifted, atol=1e-5):
                    raise _Wrong("the positions start at 1; they start at position 0 (row 0 is sin 0 = 0, cos 0 = 1)")
            if problem:
                raise _Wrong(problem + " (the frequency of column pair i is 1 / 10000^(2i / d_model))")
            if got.dtype not in (torch.float32, torch.float64):
                raise _Wrong(f"dtype {got.dtype}; expected a float tensor")
        return _Case(f"n_positions={n}, d_model={d}", run, hidden)

    return _run("positional_encoding", [case(10, 8, "", hidden=False), case(50, 32, ""), case(3, 2, "")])


_OBJECTIVES = ("masked", "causal", "span corruption")  # the choices the exercise lists
_FAMILIES = ("encoder-only", "decoder-only", "encoder-decoder")
_FAMILIES_KEY = {
    "BERT objective": (_salted("masked"), "BERT predicts tokens hidden in the middle of a text, seeing both sides.",
                       _OBJECTIVES),
    "GPT objective": (_salted("causal"), "GPT predicts each next token from the tokens before it.", _OBJECTIVES),
    "T5 objective": (_salted("span corruption"), "T5 replaces spans with sentinels and writes them out.",
                     _OBJECTIVES),
    "family for open-ended generation": (_salted("decoder-only"), "Which family writes text one token at a time "
                                         "with only a left context?", _FAMILIES),
    "attention weights in one layer of 12 heads over 100 tokens": (
        _salted("120000"), "Each head has a T x T matrix of weights."),
}


def check_families_quiz(answers: dict) -> bool:
    """Chapter 2 quiz: the three families of transformer, their objectives, attention sizes."""
    return _quiz("families_quiz", answers, _FAMILIES_KEY)
