"""A catalogue of wrong answers for the exercise checks of chapters 5 to 10.

Every entry is a function (or a quiz answer) a student could plausibly write: off by one, the
wrong axis, sign or unit, an in-place change of the input, an edge case ignored, the formula of
the neighbouring concept, the wrong constant. Each is run through the real check, which must
reject it (return False) and, where the mistake can be named, print a message that names it.
A few right answers written differently from the solutions (another float dtype, another way
to write the same formula) must be accepted.
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from llmlab import exercises as ex


def run_check(check: Callable, answer: Any, *extra) -> tuple[bool, str]:
    """Run ``check`` on ``answer`` (and ``extra`` arguments); return its verdict and printed feedback."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        verdict = check(answer, *extra) if not isinstance(answer, tuple) else check(*answer, *extra)
    return verdict, out.getvalue()


@dataclass
class Wrong:
    check: str           # name of the check in llmlab.exercises
    mistake: str         # the mistake, in words (the test id)
    answer: Any          # the student's function (a tuple: several functions), or a quiz dict
    names: str | None    # a distinctive part of the feedback that names the mistake
    needs: str = ""      # "tok": the check also takes the stories-1m tokenizer; "model": its model


# =================================================================== chapter 5: sampling
def _softmax_t(logits, t):
    return torch.softmax(logits / t, dim=-1)


def _in_place_temperature(logits, t):
    logits /= t  # changes the caller's tensor
    return torch.softmax(logits, dim=-1)


def _top_k_by_position(logits, k):  # keeps exactly k per row, drops ties with the k-th value
    k = min(k, logits.size(-1))
    idx = torch.topk(logits, k, dim=-1).indices
    keep = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, idx, True)
    return logits.masked_fill(~keep, float("-inf"))


def _top_k_zeros(logits, k):
    kth = torch.topk(logits, min(k, logits.size(-1)), dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, 0.0)


def _top_k_plus_one(logits, k):
    kth = torch.topk(logits, min(k + 1, logits.size(-1)), dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def _top_k_unclamped(logits, k):  # the k-th value without clamping k to the row length
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def _top_k_smallest(logits, k):
    kth = torch.topk(logits, min(k, logits.size(-1)), dim=-1, largest=False).values[..., -1:]
    return logits.masked_fill(logits > kth, float("-inf"))


def _nucleus(logits, p, rule):
    probs = torch.softmax(logits, dim=-1)
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
    keep_sorted = rule(sorted_probs.cumsum(-1), sorted_probs, p)
    keep_sorted[..., 0] = True
    return logits.masked_fill(~keep_sorted.scatter(-1, order, keep_sorted), float("-inf"))


def _top_p_at_most(logits, p):  # keeps a token while the mass before it is <= p
    if p >= 1:
        return logits
    return _nucleus(logits, p, lambda cum, s, p: cum - s <= p)


def _top_p_without_crossing(logits, p):  # stops before the token that crosses p
    if p >= 1:
        return logits
    return _nucleus(logits, p, lambda cum, s, p: cum < p)


def _top_p_unsorted_mask(logits, p):  # forgets to scatter the mask back to vocabulary order
    probs = torch.softmax(logits, dim=-1)
    sorted_probs, _ = torch.sort(probs, dim=-1, descending=True)
    keep = sorted_probs.cumsum(-1) - sorted_probs < p
    keep[..., 0] = True
    return logits.masked_fill(~keep, float("-inf"))


def _top_p_probs(logits, p):
    return torch.softmax(ex_top_p(logits, p), dim=-1)


def ex_top_p(logits, p):
    if p >= 1:
        return logits
    return _nucleus(logits, p, lambda cum, s, p: cum - s < p)


def _entropy_nats(probs):
    return -torch.special.xlogy(probs, probs).sum(-1)


def _entropy_nan(probs):
    return -(probs * torch.log2(probs)).sum(-1)


def _entropy_sign(probs):
    return torch.special.xlogy(probs, probs).sum(-1) / math.log(2)


def _entropy_dim0(probs):
    return -torch.special.xlogy(probs, probs).sum(0) / math.log(2)


SAMPLING_QUIZ = {
    "temperature that makes sampling approach greedy decoding (close to 0, 1 or large)": "close to 0",
    "top_k that disables the filter in Hugging Face": 0,
    "tokens kept by top_p=1.0 over a vocabulary of 1024": 1024,
    "entropy in bits of a uniform distribution over 1024 tokens": 10,
    "is temperature a learned parameter (yes/no)": "no",
}

CH05 = [
    Wrong("check_temperature", "multiplies by T", lambda z, t: torch.softmax(z * t, -1), "multiplied by the temperature"),
    Wrong("check_temperature", "divides in place", _in_place_temperature, "in place"),
    Wrong("check_temperature", "softmax over dim 0", lambda z, t: torch.softmax(z / t, 0), "not normalised"),
    Wrong("check_temperature", "returns scaled logits", lambda z, t: z / t, "apply the softmax"),
    Wrong("check_temperature", "log_softmax", lambda z, t: torch.log_softmax(z / t, -1), "log_softmax"),
    Wrong("check_top_k", "keeps k by position, ties dropped", _top_k_by_position, "tied with the k-th"),
    Wrong("check_top_k", "removed tokens set to 0", _top_k_zeros, "set them to -inf"),
    Wrong("check_top_k", "k + 1 tokens kept", _top_k_plus_one, "expected k ="),
    Wrong("check_top_k", "k larger than the vocabulary not clamped", _top_k_unclamped, "larger than the vocabulary"),
    Wrong("check_top_k", "keeps the k smallest", _top_k_smallest, "smallest"),
    Wrong("check_top_p", "mass before <= p", _top_p_at_most, "exactly p"),
    Wrong("check_top_p", "drops the token that crosses p", _top_p_without_crossing, "too few"),
    Wrong("check_top_p", "mask left in sorted order", _top_p_unsorted_mask, "order"),
    Wrong("check_top_p", "returns probabilities", _top_p_probs, "returned probabilities"),
    Wrong("check_entropy", "nats", _entropy_nats, "nats"),
    Wrong("check_entropy", "0 log 0 gives NaN", _entropy_nan, "0 * log 0 = 0"),
    Wrong("check_entropy", "sign flipped", _entropy_sign, "sign is flipped"),
    Wrong("check_entropy", "sums over dim 0", _entropy_dim0, "shape"),
    Wrong("check_sampling_quiz", "large temperature for greedy",
          {**SAMPLING_QUIZ, next(iter(SAMPLING_QUIZ)): "large"}, "is not right"),
    Wrong("check_sampling_quiz", "top_k = 1 disables the filter",
          {**SAMPLING_QUIZ, "top_k that disables the filter in Hugging Face": 1}, "is not right"),
    Wrong("check_sampling_quiz", "entropy in nats",
          {**SAMPLING_QUIZ, "entropy in bits of a uniform distribution over 1024 tokens": math.log(1024)},
          "is not right"),
]


# =================================================================== chapter 6: memory and quantization
def _states(n, gpus, stage, optimizer_bytes=12):
    p, g, o = 2 * n, 2 * n, optimizer_bytes * n
    if stage >= 1:
        o /= gpus
    if stage >= 2:
        g /= gpus
    if stage >= 3:
        p /= gpus
    return p + g + o


def _gpt(L, h, V, s, tied=True, positions=True, final_ln=True):
    block = 4 * h * h + 4 * h + 8 * h * h + 5 * h + 4 * h
    return L * block + V * h * (1 if tied else 2) + (s * h if positions else 0) + (2 * h if final_ln else 0)


def _absmax(x, absmax=lambda x: x.abs().max(), steps=127, guard=True, rounding=torch.round, as_int8=True):
    x = x.float()
    scale = absmax(x).item() / steps
    if guard:
        scale = max(scale, 1e-8)
    q = torch.clamp(rounding(x / scale), -127, 127)
    return (q.to(torch.int8) if as_int8 else q), scale


def _zeropoint(x, widen=True, add_zp=True, steps=255, zp_sign=-1):
    x = x.float()
    lo, hi = x.min().item(), x.max().item()
    if widen:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max((hi - lo) / steps, 1e-8)
    zp = int(min(max(-128 + zp_sign * round(lo / scale), -128), 127))
    q = torch.round(x / scale) + (zp if add_zp else 0)
    return torch.clamp(q, -128, 127).to(torch.int8), scale, zp


FORMATS_QUIZ = {"largest finite fp16 value": 65504, "largest finite bf16 value": 3.39e38,
                "fraction bits of bf16": 7, "spacing of fp16 values just above 1": 2 ** -10,
                "bytes of a 7e9-parameter model's weights in int8": 7e9}

CH06 = [
    Wrong("check_model_states", "stage 2 for every stage", lambda n, g, s: _states(n, g, 2), "ZeRO stage"),
    Wrong("check_model_states", "8 bytes of Adam state (no fp32 master copy)",
          lambda n, g, s: _states(n, g, s, optimizer_bytes=8), "master"),
    Wrong("check_model_states", "gigabytes instead of bytes", lambda n, g, s: _states(n, g, s) / 1e9, "bytes vs GB"),
    Wrong("check_model_states", "everything divided by the GPUs", lambda n, g, s: 16 * n / g, "ZeRO stage 3"),
    Wrong("check_gpt_param_count", "untied output layer", lambda L, h, V, s: _gpt(L, h, V, s, tied=False),
          "ties it"),
    Wrong("check_gpt_param_count", "12 L h^2 only", lambda L, h, V, s: 12 * L * h * h, "12 L h^2"),
    Wrong("check_gpt_param_count", "no position embeddings", lambda L, h, V, s: _gpt(L, h, V, s, positions=False),
          "position embeddings"),
    Wrong("check_gpt_param_count", "no final layer norm", lambda L, h, V, s: _gpt(L, h, V, s, final_ln=False),
          "final layer norm"),
    Wrong("check_absmax_int8", "scale from x.max()", lambda x: _absmax(x, absmax=lambda x: x.max()),
          "largest magnitude"),
    Wrong("check_absmax_int8", "no guard for an all-zero input", lambda x: _absmax(x, guard=False), "all-zero"),
    Wrong("check_absmax_int8", "divides by 128", lambda x: _absmax(x, steps=128), "127"),
    Wrong("check_absmax_int8", "floor instead of round", lambda x: _absmax(x, rounding=torch.floor), "round"),
    Wrong("check_absmax_int8", "q left as float", lambda x: _absmax(x, as_int8=False), "int8 tensor"),
    Wrong("check_zeropoint_int8", "zero point not added to q", lambda x: _zeropoint(x, add_zp=False),
          "add the zero point"),
    Wrong("check_zeropoint_int8", "range not widened to include 0", lambda x: _zeropoint(x, widen=False),
          "include 0"),
    Wrong("check_zeropoint_int8", "256 steps", lambda x: _zeropoint(x, steps=256), "255 steps"),
    Wrong("check_zeropoint_int8", "zero point of the wrong sign", lambda x: _zeropoint(x, zp_sign=1),
          "code that 0.0 maps to"),
    Wrong("check_zeropoint_int8", "absmax scale", lambda x: (*_absmax(x), 0), "255 steps"),
    Wrong("check_formats_quiz", "65,535 for the fp16 max", {**FORMATS_QUIZ, "largest finite fp16 value": 65535},
          "exact"),
    Wrong("check_formats_quiz", "8 fraction bits (the implicit bit counted)",
          {**FORMATS_QUIZ, "fraction bits of bf16": 8}, "fraction bits of bf16"),
    Wrong("check_formats_quiz", "fp32 bytes for int8 weights",
          {**FORMATS_QUIZ, "bytes of a 7e9-parameter model's weights in int8": 28e9}, "4 times too large"),
    Wrong("check_formats_quiz", "fp32's spacing", {**FORMATS_QUIZ, "spacing of fp16 values just above 1": 2 ** -23},
          "spacing of fp16"),
]


# =================================================================== chapter 7: multi-GPU
def _fewest_loop(p, target, strict=False):
    m = 1
    while ((p - 1) / (m + p - 1) >= target) if strict else ((p - 1) / (m + p - 1) > target):
        m += 1
    return m


def _chunk_sizes(shape, n, i, clamp=True):
    if not shape:
        return 1 if i == 0 else 0
    rows = -(-shape[0] // n)
    mine = min(rows, shape[0] - i * rows)
    return math.prod(shape[1:]) * (max(mine, 0) if clamp else mine)


FSDP_QUIZ = {
    "ZeRO stage of FSDP FULL_SHARD": 3,
    "ZeRO stage of FSDP SHARD_GRAD_OP": 2,
    "ZeRO stage that plain DDP amounts to": 0,
    "what ZeRO stage 1 shards (parameters, gradients or optimizer states)": "optimizer states",
    "does DDP change the result of a step compared with one GPU on the whole batch (yes/no)": "no",
}

CH07 = [
    Wrong("check_max_params", "unsharded 16 bytes for every stage", lambda b, n, s: b / 16, "stage 0"),
    Wrong("check_max_params", "every stage shards everything", lambda b, n, s: b * n / 16, "stage 3"),
    Wrong("check_max_params", "in billions of parameters", lambda b, n, s: b / _states(1, n, s) / 1e9,
          "bytes vs GB"),
    Wrong("check_fsdp_shard", "leftover rows one per shard",
          lambda shape, n, i: math.prod(shape[1:]) * (shape[0] // n + (i < shape[0] % n)) if shape else int(i == 0),
          "torch.chunk"),
    Wrong("check_fsdp_shard", "floor rows for every shard",
          lambda shape, n, i: (shape[0] // n) * math.prod(shape[1:]) if shape else 1, "exactly one shard"),
    Wrong("check_fsdp_shard", "negative sizes for empty shards", lambda s, n, i: _chunk_sizes(s, n, i, clamp=False),
          "negative"),
    Wrong("check_fsdp_shard", "a 0-d tensor on every shard", lambda s, n, i: _chunk_sizes(s, n, i) if s else 1,
          "exactly one shard"),
    Wrong("check_hybrid_states", "divided by all GPUs", lambda p, n, f: 16 * p / n, "within a group"),
    Wrong("check_hybrid_states", "divided by the groups", lambda p, n, f: 16 * p / (n // f), "number of groups"),
    Wrong("check_hybrid_states", "8 bytes per parameter", lambda p, n, f: 8 * p / f, "2 times too small"),
    Wrong("check_comm_bytes", "no (n - 1) / n", lambda s, p, n, b: (3 if s == "zero3" else 2) * p * b,
          "(n - 1) / n"),
    Wrong("check_comm_bytes", "zero3 like ddp", lambda s, p, n, b: 2 * p * b * (n - 1) / n, "second time"),
    Wrong("check_comm_bytes", "three volumes for every strategy", lambda s, p, n, b: 3 * p * b * (n - 1) / n,
          "keeps whole parameters"),
    Wrong("check_comm_bytes", "values instead of bytes",
          lambda s, p, n, b: (3 if s == "zero3" else 2) * p * (n - 1) / n, "bytes_per_value"),
    Wrong("check_tp_mlp_bytes", "down bias split too", lambda h, f, t, b: b * (2 * h * f + f + h) / t,
          "bias is not split"),
    Wrong("check_tp_mlp_bytes", "no biases", lambda h, f, t, b: b * 2 * h * f / t, "biases are missing"),
    Wrong("check_tp_mlp_bytes", "the whole MLP", lambda h, f, t, b: b * (2 * h * f + f + h), "whole MLP"),
    Wrong("check_tp_mlp_bytes", "values, not bytes", lambda h, f, t, b: 2 * h * f / t + f / t + h,
          "multiply by bytes_per_value"),
    Wrong("check_pipeline_bubble", "divides by m", ((lambda p, m: (p - 1) / m), _fewest_loop), "m + p - 1 slots"),
    Wrong("check_pipeline_bubble", "busy fraction", ((lambda p, m: m / (m + p - 1)), _fewest_loop), "busy fraction"),
    Wrong("check_pipeline_bubble", "one micro-batch too few",
          ((lambda p, m: (p - 1) / (m + p - 1)), lambda p, t: max(1, _fewest_loop(p, t) - 1)), "round up"),
    Wrong("check_pipeline_bubble", "closed form off by one on exact fits",
          ((lambda p, m: (p - 1) / (m + p - 1)), lambda p, t: max(1, math.ceil((p - 1) * (1 - t) / t))),
          "exact fit"),
    Wrong("check_pipeline_bubble", "bubble below the target, not at most",
          ((lambda p, m: (p - 1) / (m + p - 1)), lambda p, t: _fewest_loop(p, t, strict=True)), "exact fit"),
    Wrong("check_pipeline_bubble", "zero micro-batches for one stage",
          ((lambda p, m: (p - 1) / (m + p - 1)), lambda p, t: math.ceil((p - 1) * (1 - t) / t - 1e-9)),
          "at least one"),
    Wrong("check_fsdp_quiz", "FULL_SHARD is stage 2", {**FSDP_QUIZ, "ZeRO stage of FSDP FULL_SHARD": 2},
          "is not right"),
    Wrong("check_fsdp_quiz", "stage 1 shards gradients",
          {**FSDP_QUIZ, "what ZeRO stage 1 shards (parameters, gradients or optimizer states)": "gradients"},
          "is not right"),
    Wrong("check_fsdp_quiz", "DDP is stage 1", {**FSDP_QUIZ, "ZeRO stage that plain DDP amounts to": 1},
          "is not right"),
]


# =================================================================== chapter 8: scaling laws
def _polyfit(x, y):
    b, log_a = np.polyfit(np.log(x), np.log(y), 1)
    return float(log_a), float(b)


SCALING_QUIZ = {
    "tokens per parameter of the Chinchilla rule of thumb": 20,
    "if the compute budget grows 100 times, how many times larger is the compute-optimal model": 10,
    "on a log-log plot a power law is a (straight line, parabola or exponential)": "straight line",
}

CH08 = [
    Wrong("check_training_compute", "2 N D", lambda n, d: (2 * n * d, 2 * n * d / 8.64e19), "forward pass only"),
    Wrong("check_training_compute", "an hour, not a day", lambda n, d: (6 * n * d, 6 * n * d / 3.6e18), "86,400"),
    Wrong("check_training_compute", "teraFLOP/s-days", lambda n, d: (6 * n * d, 6 * n * d / 1e12 / 86400),
          "1e15"),
    Wrong("check_compute_optimal", "swapped", lambda c: (20 * math.sqrt(c / 120), math.sqrt(c / 120)), "swapped"),
    Wrong("check_compute_optimal", "forgot the 6", lambda c: (math.sqrt(c / 20), 20 * math.sqrt(c / 20)), "solve"),
    Wrong("check_compute_optimal", "no square root", lambda c: (c / 120, 20 * c / 120), "solve"),
    Wrong("check_power_law_fit", "log a returned", _polyfit, "exp(intercept)"),
    Wrong("check_power_law_fit", "line through the raw points",
          lambda x, y: tuple(float(v) for v in np.polyfit(x, y, 1)[::-1]), "log"),
    Wrong("check_power_law_fit", "a and b swapped",
          lambda x, y: (_polyfit(x, y)[1], math.exp(_polyfit(x, y)[0])), "swapped"),
    Wrong("check_power_law_fit", "10 ** natural-log intercept",
          lambda x, y: (10 ** _polyfit(x, y)[0], _polyfit(x, y)[1]), "10**intercept"),
    Wrong("check_training_days", "seconds", lambda p, t, n, x: 8 * t * p / (n * x), "seconds"),
    Wrong("check_training_days", "6 FLOPs", lambda p, t, n, x: 6 * t * p / (n * x) / 86400, "use 8"),
    Wrong("check_training_days", "hours", lambda p, t, n, x: 8 * t * p / (n * x) / 3600, "hours"),
    Wrong("check_scaling_quiz", "6 tokens per parameter",
          {**SCALING_QUIZ, "tokens per parameter of the Chinchilla rule of thumb": 6}, "is not right"),
    Wrong("check_scaling_quiz", "the model grows as fast as the budget", {
        **SCALING_QUIZ,
        "if the compute budget grows 100 times, how many times larger is the compute-optimal model": 100},
        "is not right"),
    Wrong("check_scaling_quiz", "an exponential", {
        **SCALING_QUIZ, "on a log-log plot a power law is a (straight line, parabola or exponential)": "exponential"},
        "is not right"),
]


# =================================================================== chapter 9: domain adaptation
def _tokens(tok, docs):
    return sum(len(tok(d, add_special_tokens=False)["input_ids"]) for d in docs)


def _words(docs):
    return sum(len(d.split()) for d in docs)


DOMAIN_QUIZ = {
    "a general tokenizer on specialist text: fertility goes (up or down)": "up",
    "share of financial tokens in BloombergGPT's training data, in percent (nearest integer)": 51,
    "what mixing general text into domain training protects (general performance, training speed or tokenizer "
    "size)": "general performance",
}


def _docs_exact(s, td, tg, n):
    return s * n * tg / (td * (1 - s) + s * tg)


CH09 = [
    Wrong("check_fertility", "words per token", lambda t, x: _words(x) / _tokens(t, x), "words per token", "tok"),
    Wrong("check_fertility", "tokens per character", lambda t, x: _tokens(t, x) / sum(map(len, x)), "characters",
          "tok"),
    Wrong("check_fertility", "mean of the texts' fertilities",
          lambda t, x: sum(_tokens(t, [d]) / _words([d]) for d in x) / len(x), "averaged", "tok"),
    Wrong("check_token_share", "share of documents", lambda t, d, g: len(d) / (len(d) + len(g)),
          "share of documents", "tok"),
    Wrong("check_token_share", "domain over general", lambda t, d, g: _tokens(t, d) / max(_tokens(t, g), 1),
          "general tokens only", "tok"),
    Wrong("check_token_share", "characters, not tokens",
          lambda t, d, g: sum(map(len, d)) / (sum(map(len, d)) + sum(map(len, g))), "count tokens", "tok"),
    Wrong("check_docs_for_share", "share of documents", lambda s, td, tg, n: s * n, "share of documents"),
    Wrong("check_docs_for_share", "lengths swapped", lambda s, td, tg, n: _docs_exact(s, tg, td, n), "not"),
    Wrong("check_docs_for_share", "rounded to whole documents",
          lambda s, td, tg, n: round(_docs_exact(s, td, tg, n)), "rounded"),
    Wrong("check_domain_quiz", "fertility goes down",
          {**DOMAIN_QUIZ, "a general tokenizer on specialist text: fertility goes (up or down)": "down"},
          "is not right"),
    Wrong("check_domain_quiz", "BloombergGPT share as a fraction", {
        **DOMAIN_QUIZ, "share of financial tokens in BloombergGPT's training data, in percent (nearest integer)": 0.51},
        "is not right"),
    Wrong("check_domain_quiz", "mixing protects the tokenizer", {**DOMAIN_QUIZ, list(DOMAIN_QUIZ)[2]: "tokenizer size"},
          "is not right"),
]


# =================================================================== chapter 10: prompt tuning
def _width(m):
    return m.get_input_embeddings().weight.shape[1]


def _total(m):
    return sum(p.numel() for p in m.parameters())


def _enc_layers(d, h):
    return (d * h + h) + (h * h + h) + (h * d + d)


def _prepend(prompt, x, mask, mask_value=1, at_end=False):
    b, (n, d) = x.shape[0], prompt.shape
    virtual = prompt.expand(b, n, d)
    ones = torch.full((b, n), mask_value, dtype=mask.dtype)
    if at_end:
        return torch.cat([x, virtual], 1), torch.cat([mask, ones], 1)
    return torch.cat([virtual, x], 1), torch.cat([ones, mask], 1)


def _answer_loss(logits, ids, n, shift=True, reduce="mean"):
    pred, target = (logits[0, n - 1:-1], ids[0, n:]) if shift else (logits[0, n:], ids[0, n:])
    return F.cross_entropy(pred, target, reduction=reduce)


def _slots(pieces, virtual, splits, order=1, at_end=False):
    if at_end:
        return torch.cat(list(pieces) + [virtual])
    chunks = torch.split(virtual, list(splits[::order]))
    return torch.cat([pieces[0]] + [x for c, p in zip(chunks, pieces[1:]) for x in (c, p)])


PEFT_QUIZ = {
    "are the model's weights changed by prompt tuning (yes/no)": "no",
    "does a soft prompt have to be made of real tokens of the vocabulary (yes/no)": "no",
    "can one frozen model serve many tasks by swapping soft prompts (yes/no)": "yes",
}

CH10 = [
    Wrong("check_soft_prompt_params", "every weight", lambda m, n: (_total(m), 1.0), "freezes them"),
    Wrong("check_soft_prompt_params", "percent", lambda m, n: (n * _width(m), 100 * n * _width(m) / _total(m)),
          "percent"),
    Wrong("check_soft_prompt_params", "one number per virtual token", lambda m, n: (n, n / _total(m)),
          "model's width"),
    Wrong("check_soft_prompt_params", "fraction of the model plus the prompt",
          lambda m, n: (n * _width(m), n * _width(m) / (_total(m) + n * _width(m))), "the fraction"),
    Wrong("check_prepend", "prompt at the end", lambda p, x, m: _prepend(p, x, m, at_end=True), "at the end"),
    Wrong("check_prepend", "mask not extended", lambda p, x, m: (_prepend(p, x, m)[0], m), "the mask has shape"),
    Wrong("check_prepend", "zeros in the mask for the prompt", lambda p, x, m: _prepend(p, x, m, mask_value=0),
          "attended to"),
    Wrong("check_answer_loss", "the prompt counted",
          lambda lg, ids, n: F.cross_entropy(lg[0, :-1], ids[0, 1:]), "prompt too", "model"),
    Wrong("check_answer_loss", "no shift", lambda lg, ids, n: _answer_loss(lg, ids, n, shift=False), "shift",
          "model"),
    Wrong("check_answer_loss", "sum, not mean", lambda lg, ids, n: _answer_loss(lg, ids, n, reduce="sum"),
          "sum", "model"),
    Wrong("check_encoder_params", "no biases", lambda n, d, h: (n * d + d * h + h * h + h * d, n * d),
          "biases too"),
    Wrong("check_encoder_params", "no input table", lambda n, d, h: (_enc_layers(d, h), n * d),
          "input is a trained table"),
    Wrong("check_encoder_params", "two linear layers", lambda n, d, h: (n * d + d * h + h + h * d + d, n * d),
          "three linear layers"),
    Wrong("check_encoder_params", "the encoder kept after collapsing",
          lambda n, d, h: (n * d + _enc_layers(d, h),) * 2, "only the encoder's output"),
    Wrong("check_place_slots", "all at the front", lambda pc, v, s: torch.cat([v] + list(pc)), "at the front",
          "model"),
    Wrong("check_place_slots", "splits reversed", lambda pc, v, s: _slots(pc, v, s, order=-1), "in reverse",
          "model"),
    Wrong("check_place_slots", "all at the end", lambda pc, v, s: _slots(pc, v, s, at_end=True), "at the end",
          "model"),
    Wrong("check_peft_quiz", "weights change", {**PEFT_QUIZ, list(PEFT_QUIZ)[0]: "yes"}, "is not right"),
    Wrong("check_peft_quiz", "real tokens needed", {**PEFT_QUIZ, list(PEFT_QUIZ)[1]: "yes"}, "is not right"),
    Wrong("check_peft_quiz", "one model per task", {**PEFT_QUIZ, list(PEFT_QUIZ)[2]: "no"}, "is not right"),
]

CATALOGUE = {5: CH05, 6: CH06, 7: CH07, 8: CH08, 9: CH09, 10: CH10}
ALL = [(chapter, w) for chapter, wrongs in CATALOGUE.items() for w in wrongs]


@pytest.fixture(scope="module")
def stories():
    from llmlab import zoo
    return zoo.load("stories-1m", device="cpu")


def _extra(wrong: Wrong, request) -> tuple:
    if not wrong.needs:
        return ()
    model, tok = request.getfixturevalue("stories")
    return (tok,) if wrong.needs == "tok" else (model, tok) if wrong.check == "check_answer_loss" else (model,)


@pytest.mark.parametrize("chapter, wrong", ALL, ids=[f"ch{c:02d}-{w.check[6:]}-{w.mistake}" for c, w in ALL])
def test_the_check_rejects_the_wrong_answer_and_names_the_mistake(chapter, wrong, request):
    verdict, out = run_check(getattr(ex, wrong.check), wrong.answer, *_extra(wrong, request))
    assert verdict is False, f"accepted: {wrong.mistake}\n{out}"
    if wrong.names:
        assert wrong.names in out, f"the feedback does not name the mistake ({wrong.names!r}):\n{out}"
    assert "inf%" not in out and "by 100%" not in out, out


def test_every_check_of_chapters_5_to_10_has_at_least_three_wrong_answers():
    modules = [ex.ch05_sampling, ex.ch06_memory_quantization, ex.ch07_multi_gpu, ex.ch08_scaling_laws,
               ex.ch09_domain_adaptation, ex.ch10_prompt_tuning]
    for chapter, module in zip(CATALOGUE, modules):
        checks = {n for n in vars(module) if n.startswith("check_") and n in ex.__all__}
        counts = {n: sum(w.check == n for w in CATALOGUE[chapter]) for n in checks}
        assert checks and all(c >= 3 for c in counts.values()), (chapter, counts)


# ------------------------------------------------------------------ right answers written another way
def _float64_probs(logits, t):
    return torch.softmax(logits.double() / t, dim=-1)


def _entropy_float64(probs):
    p = probs.double()
    return -(p * torch.log2(torch.where(p > 0, p, torch.ones_like(p)))).sum(-1)


RIGHT = [
    ("check_temperature", _float64_probs),
    ("check_entropy", _entropy_float64),
    ("check_top_k", lambda z, k: z.masked_fill(z < z.topk(min(k, z.size(-1)), -1).values[..., -1:], -math.inf)),
    ("check_top_p", ex_top_p),
    ("check_absmax_int8", lambda x: _absmax(x)),
    ("check_zeropoint_int8", _zeropoint),
    ("check_pipeline_bubble", ((lambda p, m: (p - 1) / (m + p - 1)), _fewest_loop)),
    ("check_formats_quiz", FORMATS_QUIZ),
    ("check_fsdp_quiz", FSDP_QUIZ),
]


@pytest.mark.parametrize("check, answer", RIGHT, ids=[f"{c[6:]}-{i}" for i, (c, _) in enumerate(RIGHT)])
def test_a_right_answer_written_another_way_is_accepted(check, answer):
    verdict, out = run_check(getattr(ex, check), answer)
    assert verdict is True, out


def test_the_temperature_check_leaves_no_trace_of_a_function_that_copies():
    verdict, _ = run_check(ex.check_temperature, lambda z, t: torch.softmax(z.clone().div_(t), -1))
    assert verdict is True


def test_top_p_on_an_exact_boundary_keeps_what_hugging_face_keeps():
    from transformers.generation.logits_process import TopPLogitsWarper

    logits = torch.tensor([[0.5, 0.25, 0.125, 0.125]]).log()
    kept = torch.isfinite(TopPLogitsWarper(top_p=0.5)(None, logits.clone())).sum().item()
    assert kept == 1 and torch.isfinite(ex_top_p(logits, 0.5)).sum().item() == kept
    assert torch.isfinite(_top_p_at_most(logits, 0.5)).sum().item() == 2


def test_the_closed_form_really_is_off_by_one_at_an_exact_fit():
    closed = math.ceil((4 - 1) * (1 - 0.2) / 0.2)
    assert closed == 13 and 3 / (12 + 3) <= 0.2
