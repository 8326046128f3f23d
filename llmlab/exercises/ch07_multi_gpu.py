"""Chapter 7 (multi-GPU): the checks that ``exercises/src/07_multi_gpu.py`` calls,
its quiz key and their private helpers (the shared machinery is in ``_harness.py``)."""

from __future__ import annotations

import math
from typing import Callable

import torch

from ._harness import _call, _Case, _number_problem, _quiz, _run, _salted, _Wrong


def check_max_params(fn: Callable) -> bool:
    """Chapter 7. ``fn(gpu_bytes, n_gpus, zero_stage) -> float``: the most parameters whose model states
    (mixed-precision Adam, 16 bytes per parameter before sharding) fit in ``gpu_bytes`` on each of
    ``n_gpus`` GPUs under ZeRO stage 0 to 3 (activations left out)."""
    from ..memory import model_states_per_gpu

    def case(gpu_bytes, gpus, stage, label, hidden=True):
        def run():
            got = _call(fn, gpu_bytes, gpus, stage)
            want = gpu_bytes / model_states_per_gpu(1, gpus, stage).total
            problem = _number_problem(got, want, "the number of parameters", rel=1e-6)
            if problem and isinstance(got, (int, float)) and not isinstance(got, bool):
                for other in range(4):
                    if other != stage and math.isclose(got, gpu_bytes / model_states_per_gpu(1, gpus, other).total,
                                                       rel_tol=1e-6):
                        raise _Wrong(f"that is the answer for ZeRO stage {other}, not stage {stage}")
                if math.isclose(got, gpu_bytes / 16, rel_tol=1e-6):
                    raise _Wrong("that is what fits on one GPU without sharding; the sharded states are divided "
                                 "by the number of GPUs")
            if problem:
                raise _Wrong(problem)
        return _Case(label, run, hidden)

    return _run("max_params", [
        case(80e9, 64, 0, "80 GB GPUs, 64 of them, stage 0", hidden=False),
        case(80e9, 64, 3, "80 GB GPUs, 64 of them, stage 3", hidden=False),
        case(80e9, 64, 1, "stage 1"),
        case(80e9, 64, 2, "stage 2"),
        case(40e9, 1, 3, "a single 40 GB GPU, stage 3"),
        case(24e9, 1024, 2, "1024 GPUs of 24 GB, stage 2"),
    ])


def check_fsdp_shard(fn: Callable) -> bool:
    """Chapter 7. ``fn(shape, n_shards, index) -> int``: elements in shard ``index`` when FSDP splits a
    tensor on its first dimension into ``n_shards`` chunks the way ``torch.chunk`` does (ceil(d0 / n)
    rows each; the last shards get what is left, possibly nothing). Compared with ``torch.chunk``."""
    def want(shape, n, i):
        if not shape:
            return 1 if i == 0 else 0
        chunks = torch.empty(shape, device="meta").chunk(n, dim=0)
        return chunks[i].numel() if i < len(chunks) else 0

    def case(shape, n, label, hidden=True):
        def run():
            got = [_call(fn, tuple(shape), n, i) for i in range(n)]
            expected = [want(tuple(shape), n, i) for i in range(n)]
            if got == expected:
                return
            if any(isinstance(g, bool) or not isinstance(g, int) for g in got):
                raise _Wrong(f"returned {[type(g).__name__ for g in got][:3]}...; expected ints (element counts)")
            total = math.prod(shape) if shape else 1
            if any(g < 0 for g in got):
                raise _Wrong(f"shard sizes {got}: a size is negative; the shards past the end of the tensor "
                             "hold nothing (0), never less")
            if sum(got) != total:
                raise _Wrong(f"the shards hold {sum(got)} elements together; the tensor has {total}: every "
                             "element must be in exactly one shard")
            if shape and got == [math.prod(shape[1:]) * (shape[0] // n + (i < shape[0] % n)) for i in range(n)]:
                raise _Wrong("spread the leftover rows one per shard (like numpy.array_split); torch.chunk gives "
                             "every shard ceil(rows / n) rows and the last ones what is left")
            raise _Wrong(f"shard sizes {got}; they should follow torch.chunk on the first dimension")
        return _Case(f"shape {tuple(shape)}, {n} shards", run, hidden)

    return _run("fsdp_shard", [
        case((10, 4), 4, "", hidden=False),
        case((8, 3), 4, ""),
        case((3, 5), 4, ""),
        case((7,), 3, ""),
        case((), 2, ""),
        case((1, 1000), 8, ""),
    ])


def check_hybrid_states(fn: Callable) -> bool:
    """Chapter 7. ``fn(n_params, n_gpus, sharding_factor) -> bytes`` of model states per GPU with hybrid
    sharding (FSDP's HYBRID_SHARD): ZeRO stage 3 inside groups of ``sharding_factor`` GPUs, replicas
    across groups; mixed-precision Adam. Compared with ``llmlab.memory.strategy_states_per_gpu``."""
    from ..memory import strategy_states_per_gpu

    def case(n, gpus, f, label, hidden=True):
        def run():
            got = _call(fn, n, gpus, f)
            want = strategy_states_per_gpu(n, "hybrid", gpus, f).total
            problem = _number_problem(got, want, "the bytes per GPU")
            if problem and isinstance(got, (int, float)) and not isinstance(got, bool) and f != gpus:
                if math.isclose(got, 16 * n / gpus, rel_tol=1e-9):
                    raise _Wrong("divided by all the GPUs; hybrid sharding divides only within a group of "
                                 "sharding_factor GPUs (the groups are replicas)")
                if math.isclose(got, 16 * n / (gpus // f), rel_tol=1e-9):
                    raise _Wrong("divided by the number of groups; divide by the GPUs in one group")
            if problem:
                raise _Wrong(problem)
        return _Case(label, run, hidden)

    return _run("hybrid_states", [
        case(7e9, 64, 8, "7e9 parameters, 64 GPUs, groups of 8", hidden=False),
        case(7e9, 64, 64, "groups of all 64 GPUs (full sharding)"),
        case(7e9, 64, 1, "groups of 1 (plain replication)"),
        case(70e9, 512, 16, "70e9 parameters, 512 GPUs, groups of 16"),
    ])


def check_comm_bytes(fn: Callable) -> bool:
    """Chapter 7. ``fn(strategy, n_params, n_gpus, bytes_per_value) -> bytes`` each GPU sends per step with
    ring collectives: 2Ψ(n-1)/n for "ddp", "zero1" and "zero2", 3Ψ(n-1)/n for "zero3" (Ψ = bytes of the
    gradients). Compared with ``llmlab.distributed.tables.textbook_comm_bytes``."""
    from ..distributed.tables import textbook_comm_bytes

    def case(strategy, n, gpus, bpv, label, hidden=True):
        def run():
            got = _call(fn, strategy, n, gpus, bpv)
            want = textbook_comm_bytes(strategy, n, gpus, bytes_per_value=bpv)
            problem = _number_problem(got, want, "the bytes sent per GPU")
            if problem and isinstance(got, (int, float)) and not isinstance(got, bool):
                psi = n * bpv
                if gpus == 1:
                    raise _Wrong("a single GPU sends nothing: the ring's (n - 1) / n is 0 for n = 1")
                if math.isclose(got, want / bpv, rel_tol=1e-9):
                    raise _Wrong("that is a number of values; multiply by bytes_per_value")
                if gpus > 1 and math.isclose(got, want * gpus / (gpus - 1), rel_tol=1e-9):
                    raise _Wrong("left out the (n - 1) / n of a ring: each GPU sends all but its own share")
                if strategy == "zero3" and math.isclose(got, 2 * psi * (gpus - 1) / gpus, rel_tol=1e-9):
                    raise _Wrong("ZeRO-3 gathers the parameters a second time for the backward pass: 3 volumes")
                if strategy != "zero3" and math.isclose(got, 3 * psi * (gpus - 1) / gpus, rel_tol=1e-9):
                    raise _Wrong(f"{strategy} keeps whole parameters: a reduce-scatter and an all-gather, 2 volumes")
            if problem:
                raise _Wrong(problem)
        return _Case(label, run, hidden)

    return _run("comm_bytes", [
        case("ddp", 1.5e9, 8, 2, '"ddp", 1.5e9 parameters, 8 GPUs, 2 bytes per value', hidden=False),
        case("zero3", 1.5e9, 8, 2, '"zero3", same model and GPUs', hidden=False),
        case("zero1", 7e9, 64, 2, '"zero1", 7e9 parameters, 64 GPUs'),
        case("zero2", 7e9, 64, 4, '"zero2", fp32 gradients'),
        case("zero3", 1e6, 2, 4, '"zero3" on 2 GPUs'),
        case("ddp", 1e6, 1, 4, '"ddp" on a single GPU (nothing to send)'),
    ])


_FSDP_KEY = {
    "ZeRO stage of FSDP FULL_SHARD": (_salted("3"), "It shards parameters, gradients and optimizer states."),
    "ZeRO stage of FSDP SHARD_GRAD_OP": (_salted("2"), "Parameters stay whole during the step."),
    "ZeRO stage that plain DDP amounts to": (_salted("0"), "DDP keeps a whole copy of every model state on "
                                                           "every GPU."),
    "what ZeRO stage 1 shards (parameters, gradients or optimizer states)": (
        _salted("optimizer states"), "Stage 1 shards the largest part of the model states first."),
    "does DDP change the result of a step compared with one GPU on the whole batch (yes/no)": (
        _salted("no"), "The gradients are averaged across replicas before the step."),
}


def check_fsdp_quiz(answers: dict) -> bool:
    """Chapter 7 quiz: ZeRO stages, FSDP sharding strategies, data parallelism."""
    return _quiz("fsdp_quiz", answers, _FSDP_KEY)


def _split_mlp_bytes(hidden: int, ffn: int, t: int, bytes_per_value: int) -> int:
    """Bytes of one tensor-parallel rank's share of a GPT MLP (up: Linear(hidden, ffn), down:
    Linear(ffn, hidden), both with biases), cut the way Megatron-LM cuts it: the up projection's
    weight and bias by output rows (``ColwiseParallel``), the down projection's weight by input
    columns (``RowwiseParallel``); its bias is added once, after the all-reduce, so every rank keeps
    it whole. Counted from the pieces ``torch.chunk`` gives on meta tensors."""
    up_w, up_b = torch.empty(ffn, hidden, device="meta"), torch.empty(ffn, device="meta")
    down_w, down_b = torch.empty(hidden, ffn, device="meta"), torch.empty(hidden, device="meta")
    mine = (up_w.chunk(t, dim=0)[0].numel() + up_b.chunk(t, dim=0)[0].numel()
            + down_w.chunk(t, dim=1)[0].numel() + down_b.numel())
    return mine * bytes_per_value


def check_tp_mlp_bytes(fn: Callable) -> bool:
    """Chapter 7. ``fn(hidden, ffn, t, bytes_per_value) -> bytes`` of weights and biases one of ``t``
    tensor-parallel ranks holds for a GPT MLP split column-then-row (Shoeybi et al. 2019): up
    projection by columns (weight and bias), down projection by rows (weight; its bias whole).
    Compared with the pieces ``torch.chunk`` cuts from the real shapes."""
    def case(h, f, t, bpv, label, hidden=True):
        def run():
            got = _call(fn, h, f, t, bpv)
            want = _split_mlp_bytes(h, f, t, bpv)
            problem = _number_problem(got, want, "the bytes per rank")
            if problem and isinstance(got, (int, float)) and not isinstance(got, bool):
                whole = bpv * (2 * h * f + f + h)
                if t > 1 and math.isclose(got, whole, rel_tol=1e-9):
                    raise _Wrong("that is the whole MLP: each rank keeps 1/t of the up projection's columns "
                                 "and 1/t of the down projection's rows")
                if t > 1 and math.isclose(got, whole / t, rel_tol=1e-9):
                    raise _Wrong("the down projection's bias is not split: the partial sums are all-reduced "
                                 "first and the bias is added once, so every rank keeps all of it")
                if math.isclose(got, bpv * 2 * h * f / t, rel_tol=1e-9):
                    raise _Wrong("the biases are missing: count the up projection's (split) and the down "
                                 "projection's (whole)")
                if math.isclose(got, want / bpv, rel_tol=1e-9):
                    raise _Wrong("that is a number of values; multiply by bytes_per_value")
            if problem:
                raise _Wrong(problem)
        return _Case(label, run, hidden)

    return _run("tp_mlp_bytes", [
        case(4096, 16384, 8, 2, "width 4096, MLP 16384, t = 8, 16-bit", hidden=False),
        case(4096, 16384, 1, 2, "t = 1 (no split)"),
        case(128, 512, 2, 4, "width 128, MLP 512, t = 2, fp32"),
        case(12288, 49152, 4, 2, "GPT-3 175B's MLP, t = 4"),
    ])


def check_pipeline_bubble(bubble_fn: Callable, microbatches_fn: Callable) -> bool:
    """Chapter 7. ``bubble_fn(p, m) -> float``: the idle fraction (p - 1)/(m + p - 1) of GPipe and 1F1B
    with p equal stages and m micro-batches (compared with :func:`llmlab.memory.bubble_fraction`), and
    ``microbatches_fn(p, target) -> int``: the fewest micro-batches that keep it at most ``target``
    (compared with a search over m in exact fractions; exact fits such as p = 4 and 0.2 are tested)."""
    from fractions import Fraction

    from ..memory import bubble_fraction

    def fewest(p, target):
        m = 1
        while Fraction(p - 1, m + p - 1) > Fraction(str(target)):
            m += 1
        return m

    def bubble_case(p, m, label, hidden=True):
        def run():
            got = _call(bubble_fn, p, m)
            want = bubble_fraction(p, m)
            problem = _number_problem(got, want, "the bubble fraction")
            if problem and isinstance(got, (int, float)) and not isinstance(got, bool):
                if m and math.isclose(got, (p - 1) / m, rel_tol=1e-9):
                    raise _Wrong("a step lasts m + p - 1 slots (p - 1 to fill the pipe and m of work): divide "
                                 "by that, not by m")
                if math.isclose(got, m / (m + p - 1), rel_tol=1e-9):
                    raise _Wrong("that is the busy fraction; the bubble is the idle rest")
            if problem:
                raise _Wrong(problem)
        return _Case(f"bubble, p = {p}, m = {m}" + (f" ({label})" if label else ""), run, hidden)

    def m_case(p, target, label, hidden=True):
        def run():
            got = _call(microbatches_fn, p, target)
            want = fewest(p, target)
            if isinstance(got, bool) or not isinstance(got, int):
                raise _Wrong(f"returned {type(got).__name__}; expected a whole number of micro-batches (int)")
            if got == want:
                return
            if got < 1:
                raise _Wrong(f"{got} micro-batches: a step needs at least one micro-batch, even when one stage "
                             "has no bubble")
            if got == want + 1 and Fraction(p - 1, want + p - 1) == Fraction(str(target)):
                raise _Wrong(f"an exact fit: with {want} micro-batches the bubble is exactly {target}, which is "
                             "allowed (at most, <=). A closed form through float division can land one above: "
                             "count m up, or compare in exact fractions")
            if got == want - 1:
                raise _Wrong(f"with {got} micro-batches the bubble is {bubble_fraction(p, got):.4f}, above "
                             f"{target}: round up")
            if got > want and bubble_fraction(p, got - 1) <= target:
                raise _Wrong(f"{got - 1} micro-batches already keep the bubble at most {target}: the fewest, "
                             "please")
            raise _Wrong(f"{got} micro-batches give a bubble of {bubble_fraction(p, max(got, 1)):.4f}; "
                         f"look for the fewest m with (p - 1)/(m + p - 1) <= {target}")
        return _Case(f"fewest micro-batches, p = {p}, at most {target}" + (f" ({label})" if label else ""),
                     run, hidden)

    return _run("pipeline_bubble", [
        bubble_case(4, 8, "", hidden=False),
        m_case(4, 0.1, "", hidden=False),
        bubble_case(1, 4, "one stage: no bubble"),
        bubble_case(8, 1, "one micro-batch"),
        bubble_case(16, 64, ""),
        m_case(8, 0.1, ""),
        m_case(2, 0.05, ""),
        m_case(1, 0.1, "one stage"),
        m_case(5, 0.25, "exact fit: 4/16 is 0.25"),
        m_case(4, 0.2, "exact fit: 3/15 is 0.2"),
    ])
