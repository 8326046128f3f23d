"""Chapter 12 (fine-tuning: full, LoRA and QLoRA): the checks that ``exercises/src/12_finetuning.py``
calls, its quiz key and their private helpers (the shared machinery is in ``_harness.py``).

The references are computed in the checks: the LoRA count from its definition, r * (in + out)
per targeted layer (the tests compare it with ``llmlab.lora.count_for_model``); the merged
weight with ``llmlab.lora.merge_lora`` on a real :class:`llmlab.lora.LoRALinear`, and the
merged layer's outputs against the adapter's; the NF4 codes with ``llmlab.nf4.quantize_nf4``;
the smallest rank from the record itself (``llmlab.records.finetuning``, and records made
from it or in its format), at check time, so that no number of ours is typed here.
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ._harness import _call, _Case, _number_problem, _quiz, _run, _salted, _same_input, _tensor_problem, _Wrong

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ATTENTION = ALL_LINEAR[:4]


# =================================================================== the LoRA count
def _llama_shapes(hidden: int, inter: int, layers: int, heads: int, kv_heads: int, vocab: int,
                  head_dim: int | None = None) -> dict[str, tuple[int, int]]:
    """{name: (out, in)} of a Llama's linear layers, built on the meta device (no weights)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=kv_heads, vocab_size=vocab,
                         head_dim=head_dim or hidden // heads, tie_word_embeddings=True)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    return {n: tuple(m.weight.shape) for n, m in model.named_modules() if isinstance(m, nn.Linear)}


def _tiny_llama_shapes() -> dict[str, tuple[int, int]]:
    """The linear layers of a tiny 2-layer Llama (grouped-query attention: 4 heads, 2 KV heads)."""
    return _llama_shapes(hidden=32, inter=64, layers=2, heads=4, kv_heads=2, vocab=64)


def _smollm2_shapes() -> dict[str, tuple[int, int]]:
    """SmolLM2-135M's linear layers from its published config (30 layers, hidden 576, 9 heads,
    3 KV heads, head_dim 64, intermediate 1536, vocabulary 49,152); no weights are loaded."""
    return _llama_shapes(hidden=576, inter=1536, layers=30, heads=9, kv_heads=3, vocab=49152,
                         head_dim=64)


_TOY_SHAPES = {  # another naming, non-square layers, a head, and names that end alike
    "blocks.0.attn.qkv": (96, 32), "blocks.0.attn.proj": (32, 32), "blocks.0.attn.out_proj": (32, 32),
    "blocks.0.mlp.up": (128, 32), "blocks.0.mlp.down": (32, 128),
    "blocks.1.attn.qkv": (96, 32), "blocks.1.attn.proj": (32, 32), "blocks.1.attn.out_proj": (32, 32),
    "blocks.1.mlp.up": (128, 32), "blocks.1.mlp.down": (32, 128),
    "head": (50, 32),
}


def _targeted(name: str, targets: list[str]) -> bool:
    """PEFT's rule: the full name is a target, or it ends with "." + a target."""
    return name in targets or any(name.endswith("." + t) for t in targets)


def _lora_total(shapes: dict, r: int, targets: list[str], *, per=lambda o, i, r: r * (i + o),
                pick=_targeted) -> int:
    """The reference (keywords at their defaults) and the variants a student may write by mistake."""
    return sum(per(o, i, r) for name, (o, i) in shapes.items() if pick(name, targets))


def _first_block_only(name: str, targets: list[str]) -> bool:
    numbers = re.findall(r"\.(\d+)\.", "." + name)
    return _targeted(name, targets) and all(n == "0" for n in numbers)


_LORA_VARIANTS = (
    (dict(per=lambda o, i, r: r * i), "only A (r x in) is counted: B (out x r) trains too, r * (in + out)"),
    (dict(per=lambda o, i, r: r * o), "only B (out x r) is counted: A (r x in) trains too, r * (in + out)"),
    (dict(per=lambda o, i, r: 2 * r * max(o, i)), "2 * r * max(in, out) is not the count: A is r x in and B "
                                                   "is out x r, so r * (in + out)"),
    (dict(per=lambda o, i, r: o * i), "that is the size of the frozen weights (out x in); LoRA trains "
                                      "r * (in + out) per layer"),
    (dict(per=lambda o, i, r: r * r), "r x r is not an adapter's size: A is r x in and B is out x r"),
    (dict(pick=lambda n, t: True), "every linear layer is counted (the lm_head too): count only the layers "
                                   "that targets names"),
    (dict(pick=lambda n, t: _targeted(n, t) or n.rsplit(".", 1)[-1] in ("lm_head", "head")),
     "the output head is counted: it is not in targets (and its weight is the frozen, tied embedding)"),
    (dict(pick=_first_block_only), "counted once, for the first block only: every block has its own "
                                   "layers, each with its own adapter"),
    (dict(pick=lambda n, t: _targeted(n, t) and n.rsplit(".", 1)[-1] in ATTENTION),
     "only the attention projections are counted: the MLP's gate_proj, up_proj and down_proj are targets too"),
    (dict(pick=lambda n, t: any(n.endswith(x) for x in t)), "a target matches a whole part of the name: "
                                                            "'proj' picks 'attn.proj', not 'attn.out_proj' "
                                                            "(name == t or name.endswith('.' + t))"),
    (dict(pick=lambda n, t: any(x in n for x in t)), "a target matches a whole part of the name, not any "
                                                     "substring (name == t or name.endswith('.' + t))"),
)


def check_lora_trainable(fn: Callable) -> bool:
    """Chapter 12. ``fn(shapes, r, targets) -> int``: the values LoRA trains, r * (in + out) summed over
    the linear layers of ``shapes`` ({name: (out, in)}) that ``targets`` names (the name is a target or
    ends with "." + a target, as in PEFT). The reference is that definition; ``tests/`` check it
    against ``llmlab.lora.count_for_model`` on real models."""
    def case(shapes, r, targets, label, hidden=True):
        def run():
            given = dict(shapes)
            got = _call(fn, given, r, list(targets))
            changed = _same_input(shapes, given, "the shapes")
            if changed:
                raise _Wrong(changed)
            want = _lora_total(shapes, r, targets)
            if isinstance(got, torch.Tensor) and got.numel() == 1:
                got = got.item()
            if isinstance(got, bool) or not isinstance(got, (int, float)):
                raise _Wrong(f"the count is a {type(got).__name__}; expected an int")
            if got == want:
                return
            named = [words for kwargs, words in _LORA_VARIANTS
                     if got == _lora_total(shapes, r, targets, **kwargs) != want]
            if named:
                raise _Wrong(named[0] if len(named) == 1 else
                             "one of these mistakes gives this count: " + "; or ".join(named))
            raise _Wrong(_number_problem(got, want, "the count of trained values") or "wrong count")
        return _Case(label, run, hidden)

    tiny, smol = _tiny_llama_shapes(), _smollm2_shapes()
    return _run("lora_trainable", [
        case(tiny, 8, ["q_proj", "v_proj"], "the tiny Llama, r = 8 on q_proj and v_proj", hidden=False),
        case(smol, 16, ALL_LINEAR, "SmolLM2-135M's shapes, r = 16 on all seven linear layers of a block",
             hidden=False),
        case(smol, 1, ATTENTION, "SmolLM2-135M's shapes, r = 1 on the attention projections"),
        case(tiny, 3, ["gate_proj", "down_proj", "o_proj"], "the tiny Llama, r = 3 on two MLP layers and o_proj"),
        case(_TOY_SHAPES, 4, ["qkv", "down"], "other names, non-square layers, r = 4"),
        case(_TOY_SHAPES, 2, ["proj", "blocks.1.mlp.up"], "a target 'proj' next to 'out_proj', and a full name"),
    ])


# =================================================================== merging by hand
def _adapter(out_f: int, in_f: int, r: int, alpha: float, seed: int, dtype=torch.float32):
    """A real LoRALinear with a trained-looking (non-zero) B, and its bias."""
    from ..lora import LoRALinear

    g = torch.Generator().manual_seed(seed)
    base = nn.Linear(in_f, out_f, dtype=dtype)
    with torch.no_grad():
        base.weight.copy_(torch.randn(out_f, in_f, generator=g, dtype=dtype))
        base.bias.copy_(torch.randn(out_f, generator=g, dtype=dtype))
    lora = LoRALinear(base, r, alpha)
    with torch.no_grad():
        lora.lora_A.copy_(torch.randn(r, in_f, generator=g, dtype=dtype))
        lora.lora_B.copy_(torch.randn(out_f, r, generator=g, dtype=dtype))
    return lora.eval()


def _merged_by_library(lora) -> torch.Tensor:
    from ..lora import merge_lora

    holder = merge_lora(nn.Sequential(copy.deepcopy(lora)))
    return holder[0].weight.detach()


def check_merge(fn: Callable) -> bool:
    """Chapter 12. ``fn(W, A, B, alpha, r) -> Tensor``: the merged weight W + (alpha / r) B A, in W's dtype,
    leaving ``W``, ``A`` and ``B`` unchanged. Compared with ``llmlab.lora.merge_lora`` on a real
    ``LoRALinear``, and the merged layer's outputs with the adapter's."""
    def case(out_f, in_f, r, alpha, label, hidden=True, seed=0, dtype=torch.float32):
        def run():
            lora = _adapter(out_f, in_f, r, alpha, seed, dtype)
            w, a, b = (t.detach().clone() for t in (lora.base.weight, lora.lora_A, lora.lora_B))
            given = [t.clone() for t in (w, a, b)]
            try:
                got = _call(fn, *given, alpha, r)
            except _Wrong as error:
                if "shape" not in str(error) and "size" not in str(error):
                    raise
                raise _Wrong(f"{error}: B is out x r and A is r x in, so the update is B @ A (out x in), "
                             "the shape of W") from None
            for before, after, what in zip((w, a, b), given, ("W", "A", "B")):
                changed = _same_input(before, after, what)
                if changed:
                    raise _Wrong(changed)
            want = _merged_by_library(lora)
            if isinstance(got, torch.Tensor) and got.shape == want.shape and got.is_floating_point() \
                    and not torch.allclose(got.double(), want.double(), rtol=1e-4, atol=1e-5):
                delta = (b.double() @ a.double())
                for alt, words in (
                        (w.double() + delta, "the scaling is missing: the update is (alpha / r) B A"),
                        (w.double() + alpha * delta, "scaled by alpha: the scaling is alpha / r"),
                        (w.double() + (r / alpha) * delta, "scaled by r / alpha: the scaling is alpha / r"),
                        ((alpha / r) * delta, "that is only the update: the merged weight is W + (alpha / r) B A"),
                        (w.double() - (alpha / r) * delta, "the update is subtracted: W + (alpha / r) B A"),
                        (w.double() + (alpha / r) * delta.T, "the update is transposed: B @ A is out x in, "
                                                             "the shape of W")):
                    if torch.allclose(got.double(), alt, rtol=1e-4, atol=1e-5):
                        raise _Wrong(words)
            problem = _tensor_problem(got, want, "the merged weight", atol=1e-5, rtol=1e-4)
            if problem:
                raise _Wrong(problem)
            x = torch.randn(3, in_f, generator=torch.Generator().manual_seed(seed + 7), dtype=dtype)
            with torch.no_grad():
                ours, theirs = F.linear(x, got, lora.base.bias), lora(x)
            problem = _tensor_problem(ours, theirs, "the merged layer's outputs", atol=1e-4, rtol=1e-4)
            if problem:
                raise _Wrong(problem + " (compared with the adapter's, base plus update)")
        return _Case(label, run, hidden)

    return _run("merge", [
        case(6, 4, 2, 4.0, "W 6 x 4, rank 2, alpha 4", hidden=False),
        case(5, 12, 4, 16.0, "W 5 x 12, rank 4, alpha 16 (a scaling of 4)", seed=1),
        case(6, 6, 2, 8.0, "a square W, rank 2, alpha 8", seed=2),
        case(3, 7, 3, 1.5, "float64, rank 3, alpha 1.5 (a scaling below 1)", seed=3, dtype=torch.float64),
        case(8, 8, 1, 2.0, "rank 1", seed=4),
    ])


# =================================================================== NF4 by hand
def _codebook() -> torch.Tensor:
    from ..nf4 import nf4_codebook

    return nf4_codebook()


def _nearest(y: torch.Tensor) -> torch.Tensor:
    return (y.double()[:, None] - _codebook().double()[None]).abs().argmin(dim=1)


def _nf4_reference(x: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Codes and absmax of one block, by ``llmlab.nf4.quantize_nf4`` (no double quantization)."""
    from ..nf4 import quantize_nf4

    n = x.numel()
    q = quantize_nf4(x, block_size=n + n % 2, double_quant=False)
    return q.unpacked_codes()[:n], q.block_scales()[0].item()


def _nf4_variants(x: torch.Tensor) -> list[tuple[Any, Any, str]]:
    """(codes, scale, words) of the mistakes; a None part is not compared."""
    x64 = x.double()
    absmax = x64.abs().max().item()
    grid = torch.round((x64 / absmax + 1) / 2 * 15).long()
    book = _codebook().double()
    floor = (torch.searchsorted(book, (x64 / absmax).contiguous(), right=True) - 1).clamp(0, 15)
    return [
        (_nearest(x64 / x64.abs().mean()), x64.abs().mean().item(),
         "divided by the mean absolute value: NF4 scales each block by its absmax, max |x|"),
        (_nearest(x64 / x64.std()), x64.std().item(), "divided by the standard deviation: NF4 scales each block "
                                                      "by its absmax, max |x|"),
        (_nearest(x64 / x64.max()), x64.max().item(), "the scale is the largest value, not the largest "
                                                      "magnitude: absmax = x.abs().max()"),
        (grid, None, "a uniform grid of 16 levels (INT4): NF4's 16 values are the codebook nf4_codebook(), "
                     "closer together near 0"),
        (floor, None, "the code of the codebook value just below (a floor): take the NEAREST value"),
        (_nearest(x64.clamp(-1, 1)), None, "x is not divided by absmax before looking up the nearest code"),
    ]


def check_nf4_codes(fn: Callable) -> bool:
    """Chapter 12. ``fn(x) -> (codes, absmax)`` for one block ``x`` (1-D): ``absmax = max |x|`` (a float)
    and, per value, the index (0..15, an integer tensor) of the NF4 codebook value nearest to
    ``x / absmax``. Compared with ``llmlab.nf4.quantize_nf4(x, block_size=len(x), double_quant=False)``."""
    def case(x, label, hidden=True):
        def run():
            given = x.clone()
            got = _call(fn, given)
            changed = _same_input(x, given, "the block x")
            if changed:
                raise _Wrong(changed)
            codes, absmax = _nf4_reference(x)
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                raise _Wrong(f"the result is a {type(got).__name__}; expected a pair (codes, absmax)")
            got_codes, got_scale = got
            if isinstance(got_codes, torch.Tensor) and got_codes.is_floating_point():
                book = _codebook().to(got_codes.dtype)
                if got_codes.shape == codes.shape and torch.allclose(got_codes, book[codes], atol=1e-6):
                    raise _Wrong("those are the codebook values, not their indices: return the index "
                                 "(0..15) of the nearest value, as an integer tensor")
                raise _Wrong(f"the codes have dtype {got_codes.dtype}; expected an integer tensor of "
                             "indices 0..15")
            if isinstance(got_codes, torch.Tensor) and got_codes.shape == codes.shape \
                    and not torch.equal(got_codes.long(), codes):
                for alt, scale, words in _nf4_variants(x):
                    if torch.equal(got_codes.long(), alt) and not torch.equal(alt, codes):
                        raise _Wrong(words)
            problem = _tensor_problem(got_codes if not isinstance(got_codes, torch.Tensor)
                                      else got_codes.long(), codes, "the codes")
            if problem:
                raise _Wrong(problem)
            scale = got_scale.item() if isinstance(got_scale, torch.Tensor) and got_scale.numel() == 1 \
                else got_scale
            if isinstance(scale, (int, float)) and not isinstance(scale, bool) and \
                    not math.isclose(scale, absmax, rel_tol=1e-5):
                for _, alt, words in _nf4_variants(x):
                    if alt is not None and math.isclose(scale, alt, rel_tol=1e-5):
                        raise _Wrong(words)
            problem = _number_problem(scale, absmax, "absmax", rel=1e-5)
            if problem:
                raise _Wrong(problem)
        return _Case(label, run, hidden)

    def normal(n, seed, scale=1.0, dtype=torch.float32):
        g = torch.Generator().manual_seed(seed)
        return (scale * torch.randn(n, generator=g, dtype=torch.float64)).to(dtype)

    most_negative = normal(64, 2)
    most_negative[5] = -3.5 * most_negative.abs().max()
    with_zeros = normal(32, 3)
    with_zeros[::4] = 0.0
    return _run("nf4_codes", [
        case(normal(64, 0), "a block of 64 values drawn from N(0, 1)", hidden=False),
        case(normal(64, 1, scale=0.02), "small weights (standard deviation 0.02)"),
        case(most_negative, "a block whose largest magnitude is a negative value"),
        case(with_zeros, "a block holding exact zeros"),
        case(normal(9, 4, dtype=torch.float64), "an odd block of 9 values in float64"),
        case(torch.rand(64, generator=torch.Generator().manual_seed(5)) * 2 - 1,
             "uniformly spread values, where a uniform grid and NF4 differ most"),
    ])


# =================================================================== choosing a rank from the record
_RANK_NAME = re.compile(r"^LoRA r(\d+), all linear$")


def _spec(method: str) -> dict:
    """The plan's spec of a method name made up like the record's (used for the made-up records)."""
    m = re.match(r"^(Q?LoRA) r(\d+)(?:, (all linear|attention))?( \+ replay)?$", method)
    if not m:
        return {"family": "full" if "full" in method else "prompt"}
    spec = {"family": "lora", "r": int(m.group(2)), "targets": ATTENTION if m.group(3) == "attention"
            else ALL_LINEAR}
    if m.group(1) == "QLoRA":
        spec["nf4"] = True
    if m.group(4):
        spec["replay"] = 0.25
    return spec


def _made_up(accuracy: dict[str, list[float]], n: int = 40, seed: int = 0) -> dict:
    """A record in the format of ``llmlab.records.finetuning`` with the given accuracies per method and seed."""
    g = torch.Generator().manual_seed(seed)
    grid = []
    for method, accs in accuracy.items():
        spec = _spec(method)
        r = spec.get("r", 0)
        for s, acc in enumerate(accs):
            k = round(acc * n)
            bits = torch.zeros(n, dtype=torch.long)
            bits[torch.randperm(n, generator=g)[:k]] = 1
            grid.append({"method": method, "seed": s, "trainable": 1000 * r + 7, "split": "test",
                         "exact": "".join(map(str, bits.tolist()))})
    return {"plan": {"seeds": sorted({r["seed"] for r in grid}), "methods": {m: _spec(m) for m in accuracy}},
            "base": [], "grid": grid}


def _rank_means(record: dict, *, name=_RANK_NAME, seeds=None) -> dict[int, float]:
    """Mean exact-match accuracy (percent) over seeds of each rank's runs whose method ``name`` matches."""
    runs: dict[int, list[float]] = {}
    for row in record["grid"]:
        m = name.match(row["method"]) if hasattr(name, "match") else None
        if m and (seeds is None or row["seed"] in seeds):
            runs.setdefault(int(m.group(1)), []).append(100 * row["exact"].count("1") / len(row["exact"]))
    return {r: sum(v) / len(v) for r, v in runs.items()}


def _smallest(means: dict[int, float], points: float, best: float | None = None) -> int | None:
    if not means:
        return None
    best = max(means.values()) if best is None else best
    within = [r for r, m in means.items() if best - m <= points + 1e-9]
    return min(within) if within else None


def _best_single_run(record: dict) -> float:
    return max(100 * row["exact"].count("1") / len(row["exact"]) for row in record["grid"]
               if _RANK_NAME.match(row["method"]))


def _rank_variants(record: dict, points: float) -> list[tuple[Any, str]]:
    means = _rank_means(record)
    seeds = sorted({row["seed"] for row in record["grid"]})
    any_rank = re.compile(r"^.*?\br(\d+)\b.*$")
    trainable = {}
    for row in record["grid"]:
        m = _RANK_NAME.match(row["method"])
        if m:
            trainable[int(m.group(1))] = row["trainable"]
    best_rank = max(means, key=means.get)
    out = [
        (max(means), "that is the largest rank: the question asks for the SMALLEST rank within the "
                     "tolerance of the best mean"),
        (best_rank, "that is the rank with the best mean; the question asks for the smallest rank whose mean "
                    "is within `points` of it"),
        (_smallest(_rank_means(record, seeds=seeds[:1]), points), "only one seed is used: average each rank's "
                                                                  "accuracy over all its seeds"),
        (_smallest(means, points, best=_best_single_run(record)), "the best is the best single run; compare with "
                                                                  "the best rank's MEAN over seeds"),
        (_smallest(_rank_means(record, name=any_rank), points), "runs of other methods with the same rank "
                                                                "(attention only, QLoRA, replay) are averaged in: "
                                                                "use only the methods 'LoRA r<rank>, all linear'"),
        (_smallest({r: m / 100 for r, m in means.items()}, points), "accuracy as a fraction was compared with "
                                                                    "points, which are percentage points"),
        (_smallest(means, points / 100), "points were divided by 100: they are percentage points, and so "
                                         "are the accuracies, 100 * share of '1's"),
    ]
    out += [(trainable[_smallest(means, points)], "that is the number of trained values of the rank, "
                                                  "not the rank: return r")] if trainable else []
    return out


def _example_record() -> dict | None:
    """The shipped record, when it holds runs of at least two ranks on all linear layers."""
    from ..records import finetuning

    try:
        record = finetuning.load()
    except (FileNotFoundError, ValueError):
        return None
    return record if len(_rank_means(record)) >= 2 else None


def _relabelled(record: dict) -> dict:
    """The record with the ranks' runs exchanged (the largest rank's runs go to the smallest, and so on):
    the same numbers, another answer."""
    ranks = sorted(_rank_means(record))
    swap = dict(zip(ranks, ranks[::-1]))
    out = copy.deepcopy(record)
    for row in out["grid"]:
        m = _RANK_NAME.match(row["method"])
        if m:
            row["method"] = f"LoRA r{swap[int(m.group(1))]}, all linear"
    return out


_MADE_UP = {  # accuracies per seed: rank 16 is best on average, rank 64 has the best single run
    "prompt tuning": [0.30, 0.25, 0.35],
    "LoRA r1, all linear": [0.50, 0.60, 0.55],
    "LoRA r4, all linear": [0.60, 0.75, 0.80],
    "LoRA r16, all linear": [0.80, 0.85, 0.80],
    "LoRA r64, all linear": [0.90, 0.55, 0.70],
    "LoRA r4, attention": [0.90, 0.90, 0.90],
    "LoRA r16, attention": [0.40, 0.45, 0.40],
    "QLoRA r16, all linear": [0.80, 0.80, 0.75],
    "full fine-tuning": [0.85, 0.90, 0.85],
    "LoRA r16 + replay": [0.70, 0.80, 0.75],
}
_TWO_SEEDS = {  # a record with two seeds and another set of ranks
    "LoRA r2, all linear": [0.625, 0.5],
    "LoRA r8, all linear": [0.45, 0.75],
    "LoRA r32, all linear": [0.725, 0.675],
    "LoRA r8, attention": [0.2, 0.3],
}


def check_smallest_rank(fn: Callable) -> bool:
    """Chapter 12. ``fn(record, points) -> int``: among the runs of methods named "LoRA r<rank>, all linear"
    in ``record["grid"]``, each rank's mean exact-match accuracy over its seeds (percent: 100 times the
    share of '1's in ``exact``); the smallest rank whose mean is at least the best rank's mean minus
    ``points``. The reference is computed from each record at check time: the shipped one
    (``llmlab.records.finetuning.load()``, when it holds two ranks or more), that record with its ranks'
    runs exchanged, and records made up in its format."""
    def case(record, points, label, hidden=True):
        def run():
            given = copy.deepcopy(record)
            got = _call(fn, given, points)
            if given != record:
                raise _Wrong("your function changed the record passed in: work on a copy")
            want = _smallest(_rank_means(record), points)
            if isinstance(got, bool) or not isinstance(got, int):
                if isinstance(got, float) and got.is_integer():
                    got = int(got)
                else:
                    raise _Wrong(f"the rank is a {type(got).__name__}; expected an int")
            if got == want:
                return
            named = [words for alt, words in _rank_variants(record, points) if alt != want and alt == got]
            if named:
                raise _Wrong(named[0] if len(named) == 1 else
                             "one of these mistakes gives this answer: " + "; or ".join(named))
            ranks = sorted(_rank_means(record))
            if got not in ranks:
                raise _Wrong(f"{got} is not one of the ranks run on all linear layers in this record "
                             f"({len(ranks)} ranks)")
            raise _Wrong(f"rank {got} is not the smallest rank within {points:g} points of the best mean")
        return _Case(label, run, hidden)

    shipped = _example_record()
    cases = []
    if shipped is not None:
        cases += [case(shipped, 2.0, "the shipped record, within 2 points", hidden=False),
                  case(shipped, 0.0, "the shipped record, within 0 points (the best rank itself)"),
                  case(_relabelled(shipped), 2.0, "the shipped record with its ranks' runs exchanged")]
    cases += [
        case(_made_up(_MADE_UP), 2.0, "a made-up record in the same format, within 2 points",
             hidden=shipped is not None),
        case(_made_up(_MADE_UP), 12.0, "the made-up record, within 12 points"),
        case(_made_up(_MADE_UP, n=60, seed=1), 25.0, "the made-up record, within 25 points"),
        case(_made_up(_TWO_SEEDS), 5.0, "two seeds, ranks 2, 8 and 32, within 5 points"),
    ]
    return _run("smallest_rank_within", cases)


# =================================================================== quiz
_FINETUNING_KEY = {
    "the LoRA matrix that starts at zero, so training starts from the base model (A/B)": (
        _salted("b"), "Which product must be zero at the start, and which of its factors is set to zeros "
                      "while the other is random (Hu et al. 2021)?"),
    "does a merged LoRA model add latency at inference (yes/no)": (
        _salted("no"), "After W + (alpha / r) B A, what is left of the adapter in the forward pass?"),
    "the distribution of weights for which NF4's 16 values are information-theoretically optimal"
    " (normal/uniform/laplace)": (
        _salted("normal"), "The codebook's values are quantiles of which distribution (Dettmers et al. 2023)?"),
    "what double quantization quantizes (the weights/the block scales/the adapters)": (
        _salted("the block scales"), "Its saving is about 0.37 bit per parameter: which per-block numbers cost "
                                     "32 bits per 64 weights before it?"),
    "what paged optimizers move to CPU memory when GPU memory runs short"
    " (optimizer states/adapters/activations)": (
        _salted("optimizer states"), "Paged optimizers use unified memory for what AdamW keeps per trained value."),
}


def check_finetuning_quiz(answers: dict) -> bool:
    """Chapter 12 quiz: LoRA (Hu et al. 2021) and QLoRA (Dettmers et al. 2023)."""
    return _quiz("finetuning_quiz", answers, _FINETUNING_KEY)
