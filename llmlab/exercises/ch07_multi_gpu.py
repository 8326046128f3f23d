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
    gradients). Compared with ``llmlab.distributed.textbook_comm_bytes``."""
    from ..distributed import textbook_comm_bytes

    def case(strategy, n, gpus, bpv, label, hidden=True):
        def run():
            got = _call(fn, strategy, n, gpus, bpv)
            want = textbook_comm_bytes(strategy, n, gpus, bytes_per_value=bpv)
            problem = _number_problem(got, want, "the bytes sent per GPU")
            if problem and isinstance(got, (int, float)) and not isinstance(got, bool):
                psi = n * bpv
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
    "ZeRO stage of FSDP NO_SHARD": (_salted("0"), "Nothing is sharded: this is DDP."),
    "what ZeRO stage 1 shards (parameters, gradients or optimizer states)": (
        _salted("optimizer states"), "Stage 1 shards the largest part of the model states first."),
    "does DDP change the result of a step compared with one GPU on the whole batch (yes/no)": (
        _salted("no"), "The gradients are averaged across replicas before the step."),
}


def check_fsdp_quiz(answers: dict) -> bool:
    """Chapter 7 quiz: ZeRO stages, FSDP sharding strategies, data parallelism."""
    return _quiz("fsdp_quiz", answers, _FSDP_KEY)
