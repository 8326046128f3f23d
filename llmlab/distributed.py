"""Real multi-process training runs under DDP, ZeRO and FSDP, measured rank by rank (chapter 7).

:func:`run` starts ``world_size`` processes (``python -m llmlab._dist_worker``), gloo on CPU
or nccl on GPUs, that train the same small GPT-2 on the same random batches under each
requested strategy:

* ``"ddp"``    DistributedDataParallel: every rank holds everything, gradients are all-reduced;
* ``"zero1"``  ZeroRedundancyOptimizer inside DDP: each rank keeps the Adam states of its
  share of whole parameters (ZeRO stage 1);
* ``"zero2"``  FSDP2 ``fully_shard(reshard_after_forward=False)``: gradients and optimizer
  states sharded, parameters kept whole from forward to backward (ZeRO stage 2,
  FSDP's ``SHARD_GRAD_OP``);
* ``"zero3"``  FSDP2 ``fully_shard(reshard_after_forward=True)``: parameters sharded too,
  gathered layer by layer when needed (ZeRO stage 3, ``FULL_SHARD``);
* ``"hybrid"`` FSDP2 on a 2-D mesh: sharded within groups of ``sharding_factor`` ranks,
  replicated across the groups (HSDP, ``HYBRID_SHARD``).

Per rank it returns the bytes of parameters, gradients and optimizer states held locally
(local shards summed), the step time, the losses, the bytes handed to each kind of
collective in one step and, on CUDA, the peak allocated memory. :func:`predicted_table`
sets them next to :mod:`llmlab.memory`'s prediction. All sizes are bytes, all times seconds.

Robustness: arguments are checked before any process starts; the port is a free one
chosen by the system; the process group has a timeout, the whole run a wall-clock timeout;
each rank runs in its own session and is killed (with anything it started) when the run
ends, fails or times out; a failing rank ends the run at once with its traceback.

The module also holds the sharding explorer of the chapter (:func:`sharding_explorer`,
live, and :func:`static_sharding_explorer`, kernel-free).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import memory

STRATEGIES = ("ddp", "zero1", "zero2", "zero3", "hybrid")
FSDP_STRATEGIES = ("zero2", "zero3", "hybrid")
BACKENDS = ("auto", "gloo", "nccl")
RANKS_PER_CPU_CORE = 2  # gloo: at most this many single-threaded ranks per core

#: the bundled stories-1m GPT-2 (llmlab/models/stories-1m/config.json): 0.96 M parameters
STORIES_1M = dict(vocab_size=1024, n_positions=256, n_embd=128, n_layer=4, n_head=4, n_inner=512)


class DistributedRunError(RuntimeError):
    """A rank failed or the run timed out. ``pids`` are the ranks' process ids (all ended)."""

    def __init__(self, message: str, pids: list[int]) -> None:
        super().__init__(message)
        self.pids = pids


def cpu_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def max_world_size(backend: str) -> int:
    """The largest world size :func:`run` accepts on this machine.

    gloo (CPU): ``RANKS_PER_CPU_CORE`` single-threaded ranks per CPU core (4 on 2 cores);
    beyond that the ranks mostly wait for the scheduler and timings mean nothing.
    nccl: one rank per GPU (NCCL refuses two ranks on one device).
    """
    if backend == "nccl":
        return torch.cuda.device_count()
    if backend == "gloo":
        return RANKS_PER_CPU_CORE * cpu_cores()
    raise ValueError(f"unknown backend {backend!r}; allowed: 'gloo', 'nccl'")


def resolve_backend(backend: str, world_size: int) -> str:
    """'auto' is nccl when there are at least ``world_size`` GPUs, gloo otherwise."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    if backend == "auto":
        return "nccl" if torch.cuda.is_available() and torch.cuda.device_count() >= world_size else "gloo"
    if backend == "nccl" and not torch.cuda.is_available():
        raise ValueError("backend 'nccl' needs CUDA GPUs and none is available; use 'gloo' (CPU)")
    return backend


def default_sharding_factor(world_size: int) -> int:
    """The hybrid run's sharding factor when none is given: 2 when the world size is even and
    above 2 (two or more replicas of two shards), else the world size (full sharding)."""
    return 2 if world_size > 2 and world_size % 2 == 0 else world_size


def _count(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}")
    return value


def validate(strategies, world_size: int, backend: str = "auto", sharding_factor: int | None = None,
             offload: bool = False, steps: int = 4, batch_size: int = 2, seq_len: int = 32,
             model: dict | None = None, timeout_s: float = 120.0) -> tuple[list[str], str, int | None]:
    """Check :func:`run`'s arguments; return (strategies, backend, sharding factor). Raises ValueError."""
    if isinstance(strategies, str):
        strategies = [strategies]
    strategies = list(strategies)
    if not strategies:
        raise ValueError(f"give at least one strategy; allowed: {', '.join(STRATEGIES)}")
    for s in strategies:
        if s not in STRATEGIES:
            raise ValueError(f"unknown strategy {s!r}; allowed: {', '.join(STRATEGIES)}")
    if len(set(strategies)) != len(strategies):
        raise ValueError(f"each strategy once, got {strategies}")
    world_size = _count("world_size", world_size)
    backend = resolve_backend(backend, world_size)
    limit = max_world_size(backend)
    if world_size > limit:
        why = (f"{RANKS_PER_CPU_CORE} ranks per CPU core x {cpu_cores()} cores" if backend == "gloo"
               else f"one rank per GPU, {limit} GPUs")
        raise ValueError(f"world_size {world_size} is more than this machine can run with {backend} "
                         f"({why}): at most {limit}")
    if sharding_factor is not None and "hybrid" not in strategies:
        raise ValueError("sharding_factor applies to the 'hybrid' strategy only; add 'hybrid' or leave it out")
    if "hybrid" in strategies:
        if sharding_factor is None:
            sharding_factor = default_sharding_factor(world_size)
        sharding_factor = _count("sharding_factor", sharding_factor)
        if sharding_factor > world_size or world_size % sharding_factor:
            divisors = [d for d in range(1, world_size + 1) if world_size % d == 0]
            raise ValueError(f"sharding_factor must divide world_size {world_size}; got {sharding_factor}, "
                             f"allowed: {divisors}")
    if offload:
        if backend != "nccl":
            raise ValueError("offload moves sharded states from GPU to CPU memory; with gloo the states are "
                             "already in CPU memory, so offload needs backend 'nccl' (CUDA GPUs)")
        if any(s not in FSDP_STRATEGIES for s in strategies):
            raise ValueError(f"offload is FSDP2's CPUOffloadPolicy: strategies {', '.join(FSDP_STRATEGIES)} only")
    _count("steps", steps)
    _count("batch_size", batch_size)
    cfg = dict(STORIES_1M, **(model or {}))
    unknown = set(cfg) - set(STORIES_1M) - {"layer_norm_epsilon"}
    if unknown:
        raise ValueError(f"unknown model settings {sorted(unknown)}; allowed: {sorted(STORIES_1M)}")
    if _count("seq_len", seq_len) > cfg["n_positions"]:
        raise ValueError(f"seq_len must be <= n_positions ({cfg['n_positions']}), got {seq_len}")
    if cfg["n_embd"] % cfg["n_head"]:
        raise ValueError(f"n_embd ({cfg['n_embd']}) must be a multiple of n_head ({cfg['n_head']})")
    if not (isinstance(timeout_s, (int, float)) and timeout_s > 0):
        raise ValueError(f"timeout_s must be > 0 seconds, got {timeout_s!r}")
    return strategies, backend, sharding_factor


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the system picks it: bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- results


@dataclass
class RankResult:
    """What one rank measured under one strategy (bytes, seconds, nats)."""

    strategy: str
    rank: int
    world_size: int
    params: int            # parameter bytes held between forward and backward
    params_at_rest: int    # parameter bytes held after the step
    grads: int             # gradient bytes after backward
    optimizer: int         # optimizer-state bytes after the step (one-element step counters excluded)
    optimizer_scalars: int
    losses: list[float]
    step_times: list[float]
    comm: dict             # {"bytes": {collective: bytes}, "calls": {collective: count}} in the last step
    peak_cuda_bytes: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def model_states(self) -> int:
        return self.params + self.grads + self.optimizer

    @property
    def step_time(self) -> float:
        """Median step time after the first (warm-up) step, in seconds."""
        t = sorted(self.step_times[1:] or self.step_times)
        return t[len(t) // 2]


@dataclass
class RunResult:
    """All ranks of all strategies of one :func:`run`."""

    world_size: int
    backend: str
    sharding_factor: int | None
    ranks: list[RankResult]
    param_shapes: list[tuple[int, ...]]
    wall_s: float

    def of(self, strategy: str) -> list[RankResult]:
        return [r for r in self.ranks if r.strategy == strategy]

    @property
    def strategies(self) -> list[str]:
        return list(dict.fromkeys(r.strategy for r in self.ranks))

    @property
    def n_params(self) -> int:
        return sum(math.prod(s) for s in self.param_shapes)

    def losses(self, strategy: str) -> list[float]:
        """The global loss of each step: the mean over ranks (equal batch sizes) of their losses."""
        per_rank = [r.losses for r in self.of(strategy)]
        return [sum(v) / len(v) for v in zip(*per_rank)]

    @property
    def reference(self) -> dict:
        """Single-process reference of the ddp run (rank 0): losses and the step-0 gradient check."""
        for r in self.of("ddp"):
            if "single_process_losses" in r.extra:
                return r.extra
        return {}


def param_shapes(model: dict | None = None) -> list[tuple[int, ...]]:
    """Shapes of the unique parameters of the workers' GPT-2 (tied embeddings once)."""
    from ._dist_worker import TinyGPT2

    with torch.device("meta"):
        net = TinyGPT2(**dict(STORIES_1M, **(model or {})))
    return [tuple(p.shape) for p in net.parameters()]


def run(strategies=STRATEGIES, world_size: int = 2, *, backend: str = "auto", sharding_factor: int | None = None,
        offload: bool = False, steps: int = 4, batch_size: int = 2, seq_len: int = 32, n_batches: int = 1,
        lr: float = 3e-3, seed: int = 0, model: dict | None = None, timeout_s: float = 120.0,
        check_grads: bool = True, fail_ranks: tuple[int, ...] = ()) -> RunResult:
    """Train the workers' GPT-2 under each of ``strategies`` with ``world_size`` processes; measure each rank.

    Every strategy starts from the same weights (seed ``seed``) and sees the same data:
    ``n_batches`` random global batches of ``batch_size * world_size`` sequences of
    ``seq_len + 1`` tokens, cycled over ``steps`` steps, rank r taking rows
    [r·batch_size, (r+1)·batch_size). Adam, fp32, learning rate ``lr``. ``model`` overrides
    entries of :data:`STORIES_1M`. With ``check_grads``, rank 0 also trains one process on
    the whole global batch, to compare DDP's step-0 gradients and the loss curve.
    ``timeout_s`` bounds the whole run (seconds) and each collective. ``fail_ranks``
    makes those ranks raise at the start (to test failure handling). ``offload`` (nccl and the
    FSDP strategies only) applies FSDP2's ``CPUOffloadPolicy``: the measured bytes are then those
    of shards in CPU memory, and ``peak_cuda_bytes`` is what stayed on the GPU.
    Returns a :class:`RunResult`; raises ValueError on bad arguments (before any process
    starts) and :class:`DistributedRunError` when a rank fails or the run times out.
    """
    strategies, backend, sharding_factor = validate(strategies, world_size, backend, sharding_factor, offload,
                                                    steps, batch_size, seq_len, model, timeout_s)
    _count("n_batches", n_batches)
    cfg = dict(STORIES_1M, **(model or {}))
    spec = dict(strategies=strategies, world_size=world_size, backend=backend, sharding_factor=sharding_factor,
                offload=offload, steps=steps, batch_size=batch_size, seq_len=seq_len, n_batches=n_batches, lr=lr,
                seed=seed, model=cfg, check_grads=check_grads, fail_ranks=list(fail_ranks),
                collective_timeout_s=max(5.0, float(timeout_s)), port=free_port())
    workdir = Path(tempfile.mkdtemp(prefix="llmlab-dist-"))
    try:
        spec_path = workdir / "spec.json"
        spec_path.write_text(json.dumps(spec))
        t0 = time.perf_counter()
        _launch(spec_path, world_size, timeout_s)
        wall = time.perf_counter() - t0
        ranks = []
        for r in range(world_size):
            for d in json.loads((workdir / f"rank{r}.json").read_text()):
                core = {k: d.pop(k) for k in list(d) if k in RankResult.__dataclass_fields__}
                ranks.append(RankResult(**core, extra=d))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    ranks.sort(key=lambda r: (strategies.index(r.strategy), r.rank))
    return RunResult(world_size, backend, sharding_factor, ranks, param_shapes(model), wall)


def _kill(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)  # the rank's own session: it and anything it started
            except ProcessLookupError:
                pass
    for p in procs:
        p.wait()


def _launch(spec_path: Path, world_size: int, timeout_s: float) -> None:
    """Start one process per rank, wait for all; on the first failure or at the deadline kill them all."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    workdir = spec_path.parent
    procs: list[subprocess.Popen] = []
    logs = []
    try:
        for r in range(world_size):
            log = open(workdir / f"rank{r}.log", "w")
            logs.append(log)
            procs.append(subprocess.Popen([sys.executable, "-m", "llmlab._dist_worker", str(spec_path), str(r)],
                                          env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + timeout_s
        while True:
            codes = [p.poll() for p in procs]
            failed = [r for r, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                r = failed[0]
                _kill(procs)
                err = workdir / f"rank{r}.error"
                detail = err.read_text() if err.exists() else (workdir / f"rank{r}.log").read_text()[-3000:]
                raise DistributedRunError(f"rank {r} of {world_size} failed (exit code {codes[r]}); the other ranks "
                                          f"were stopped. Its error:\n{detail.strip()}", [p.pid for p in procs])
            if all(c == 0 for c in codes):
                return
            if time.monotonic() > deadline:
                _kill(procs)
                raise DistributedRunError(f"the run did not finish within timeout_s={timeout_s} s; all "
                                          f"{world_size} ranks were stopped", [p.pid for p in procs])
            time.sleep(0.05)
    finally:
        _kill(procs)
        for log in logs:
            log.close()


# --------------------------------------------------------------------------- prediction and communication


def predicted_table(result: RunResult):
    """One row per (strategy, rank): measured bytes, the exact shard-by-shard prediction
    (:func:`llmlab.memory.rank_states_exact`) and the ideal Ψ/N one
    (:func:`llmlab.memory.strategy_states_per_gpu`), fp32 Adam. A pandas DataFrame."""
    import pandas as pd

    rows = []
    for r in result.ranks:
        f = result.sharding_factor if r.strategy == "hybrid" else None
        exact = memory.rank_states_exact(result.param_shapes, r.strategy, r.world_size, r.rank, f, "fp32", "adam")
        ideal = memory.strategy_states_per_gpu(result.n_params, r.strategy, r.world_size, f, "fp32", "adam")
        rows.append(dict(strategy=r.strategy, rank=r.rank, params=r.params, grads=r.grads, optimizer=r.optimizer,
                         measured=r.model_states, exact=exact.total, ideal=round(ideal.total),
                         measured_minus_exact=r.model_states - exact.total,
                         measured_minus_ideal=round(r.model_states - ideal.total),
                         step_ms=1000 * r.step_time))
    return pd.DataFrame(rows)


# ring all-reduce sends 2(n-1)/n of the tensor per rank; all-gather, reduce-scatter, broadcast (n-1)/n
_RING_FACTOR = {"all_reduce": 2.0, "broadcast": 1.0, "all_gather_single": 1.0, "all_gather_into_tensor": 1.0,
                "reduce_scatter_single": 1.0, "reduce_scatter_tensor": 1.0}


def textbook_comm_bytes(strategy: str, n_params: int, world_size: int, sharding_factor: int | None = None,
                        bytes_per_value: int = 4) -> float:
    """Bytes each rank sends per step by the textbook (ring collectives), Rajbhandari et al. 2020.

    DDP and ZeRO-1/2: a reduce-scatter and an all-gather of the gradients' worth, 2Ψ·(n-1)/n;
    ZeRO-3: one more all-gather of the parameters for backward, 3Ψ·(n-1)/n; FSDP without
    resharding after forward (``zero2``) gathers once, 2Ψ·(n-1)/n. Hybrid: ZeRO-3 inside the
    sharding group of f ranks, plus an all-reduce of the gradient shards (Ψ/f) across the
    n/f replicas. Ψ in bytes is ``n_params * bytes_per_value``.
    """
    psi = n_params * bytes_per_value
    n = world_size
    if strategy in ("ddp", "zero1", "zero2"):
        return 2 * psi * (n - 1) / n
    if strategy == "zero3":
        return 3 * psi * (n - 1) / n
    if strategy == "hybrid":
        f = sharding_factor or n
        r = n // f
        return 3 * psi * (f - 1) / f + 2 * (psi / f) * (r - 1) / r
    raise ValueError(f"unknown strategy {strategy!r}; allowed: {', '.join(STRATEGIES)}")


def comm_table(result: RunResult):
    """Per strategy (rank 0, last step): the collectives called (``kind@group size xcalls``), the bytes
    handed to them (counted in the workers), the bytes a ring implementation sends per rank for them
    (derived) and the textbook figure (:func:`textbook_comm_bytes`)."""
    import pandas as pd

    rows = []
    for s in result.strategies:
        r0 = result.of(s)[0]
        counted = r0.comm["bytes"]
        sent = 0.0
        for key, b in counted.items():
            name, _, n = key.partition("@")
            n = int(n or result.world_size)
            sent += _RING_FACTOR[name] * b * (n - 1) / n
        names = {k: k.replace("_single", "").replace("_into_tensor", "") for k in counted}
        rows.append(dict(strategy=s, collectives=", ".join(f"{names[k]} x{r0.comm['calls'][k]}" for k in sorted(counted)),
                         handed_to_collectives=sum(counted.values()), ring_bytes_sent=round(sent),
                         textbook_bytes_sent=round(textbook_comm_bytes(s, result.n_params, result.world_size,
                                                                       result.sharding_factor))))
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- the sharding explorer

#: model shapes for the explorer: (parameters, layers, hidden size, attention heads)
EXPLORER_MODELS: dict[str, tuple[float, int, int, int]] = {
    "1.3B": (1.3e9, 24, 2048, 24),     # GPT-3 XL (Brown et al. 2020, Table 2.1)
    "13B": (13e9, 40, 5140, 40),       # GPT-3 13B (same table)
    "175B": (175e9, 96, 12288, 96),    # GPT-3 (same table)
    "530B": (530e9, 105, 20480, 128),  # Megatron-Turing NLG (Smith et al. 2022)
}
EXPLORER_GPUS = (8, 64, 512)
EXPLORER_SHARDING = (1, 8, 0)  # 0: all the GPUs (full sharding)
EXPLORER_PRECISIONS = ("mixed", "fp32")
GPU_BYTES = 80e9  # an 80 GB GPU (A100 80GB, H100 80GB)
_COLORS = {"parameters": "#4c78a8", "gradients": "#f58518", "optimizer states": "#54a24b",
           "activations": "#b279a2", "capacity": "#d1d5db"}


def explorer_memory(model: str, n_gpus: int, sharding_factor: int, zero_stage: int, precision: str,
                    offload: bool, seq_len: int = 2048, micro_batch: int = 1) -> tuple[memory.GpuMemory, int]:
    """Per-GPU bytes for the explorer and the sharding factor used (0 or above ``n_gpus``: all of them).

    Activations: Korthikanti et al. (2022) with full activation checkpointing (each layer's
    input kept, s·b·h values per layer; 2-byte values under mixed precision, 4-byte under fp32),
    ``seq_len`` tokens, ``micro_batch`` sequences per GPU. Without checkpointing a 175B model's
    activations alone (selective recomputation, 34·s·b·h bytes per layer) pass 80 GB.
    """
    if model not in EXPLORER_MODELS:
        raise ValueError(f"unknown model {model!r}; allowed: {', '.join(EXPLORER_MODELS)}")
    n_params, layers, hidden, heads = EXPLORER_MODELS[model]
    f = n_gpus if sharding_factor == 0 else min(sharding_factor, n_gpus)
    act = memory.activation_bytes(layers, hidden, heads, seq_len, micro_batch, "full_recompute",
                                  4 if precision == "fp32" else 2)
    return memory.sharded_gpu_memory(n_params, n_gpus, f, zero_stage, precision, "adam", offload, act), f


def _frame(model: str, n_gpus: int, sharding_factor: int, zero_stage: int, precision: str, offload: bool) -> dict:
    m, f = explorer_memory(model, n_gpus, sharding_factor, zero_stage, precision, offload)
    gb = 1e9
    kind = "DDP" if f == 1 else ("fully sharded" if f == n_gpus else f"hybrid, groups of {f}")
    parts = [("parameters", m.params), ("gradients", m.grads), ("optimizer states", m.optimizer),
             ("activations", m.activations)]
    # the capacity bar first, so that the legend (top right) is drawn over it, not under it
    series = [{"name": "80 GB GPU", "color": _COLORS["capacity"], "values": [0, GPU_BYTES / gb]}]
    series += [{"name": name, "color": _COLORS[name], "values": [float(f"{v / gb:.3g}"), 0]} for name, v in parts]
    return {
        "title": f"{model} on {n_gpus} GPUs, {kind}: {m.total / gb:,.1f} GB per GPU, "
                 f"{'fits' if m.total <= GPU_BYTES else 'does NOT fit'}",
        "bars": {"labels": ["one GPU", "capacity"], "ylabel": "GB per GPU", "layout": "stacked",
                 "ymax": float(f"{max(GPU_BYTES, m.total) / gb * 1.05:.3g}"), "series": series},
        "prefix": f"ZeRO stage {zero_stage if f > 1 else 0} in groups of {f}; " + (
            f"{m.offloaded / gb:,.1f} GB per GPU in CPU memory; " if offload else ""),
        "text": f"{m.total / gb:,.1f} of 80 GB",
    }


def static_sharding_explorer():
    """The sharding explorer without a kernel: per-GPU memory precomputed for every slider position
    (4 models x 3 GPU counts x 3 sharding factors x 3 ZeRO stages x 2 precisions x 2 offload = 432)."""
    from .widgets import Control, static_explorer

    controls = [
        Control("model", "model", list(EXPLORER_MODELS), value="13B"),
        Control("n_gpus", "GPUs", list(EXPLORER_GPUS)),
        Control("sharding_factor", "sharding factor", list(EXPLORER_SHARDING), value=8,
                labels=["1 (DDP)", "8 (a node)", "all"]),
        Control("zero_stage", "ZeRO stage", [1, 2, 3], value=3),
        Control("precision", "precision", list(EXPLORER_PRECISIONS)),
        Control("offload", "CPU offload", [False, True], labels=["off", "on"]),
    ]
    n = math.prod(len(c.values) for c in controls)
    note = (f"Runs without a kernel: all {n} combinations were computed in advance with llmlab.memory "
            "(Adam, sequence 2048, one sequence per GPU, activation checkpointing). Other values: run the "
            "live explorer (Colab or Studio Lab links at the top of the page).")
    return static_explorer(controls, _frame, title="Sharding explorer: memory per GPU", note=note)


def sharding_explorer():
    """The live sharding explorer (ipywidgets; needs a kernel): any power-of-two GPU count up to 1024,
    any sharding factor dividing it, sequence length and micro-batch too."""
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    gpus = w.SelectionSlider(options=[2 ** k for k in range(11)], value=64, description="GPUs")
    factor = w.SelectionSlider(options=[2 ** k for k in range(7)], value=8, description="sharding factor")
    # sliders only: their saved views render in the static HTML without extra icon fonts
    controls = dict(
        model=w.SelectionSlider(options=list(EXPLORER_MODELS), value="13B", description="model"),
        n_gpus=gpus, sharding_factor=factor,
        zero_stage=w.IntSlider(value=3, min=1, max=3, description="ZeRO stage"),
        precision=w.SelectionSlider(options=list(memory.PRECISIONS), value="mixed", description="precision"),
        offload=w.SelectionSlider(options=[("off", False), ("on", True)], value=False, description="CPU offload"),
        seq_len=w.SelectionSlider(options=[512, 1024, 2048, 4096, 8192], value=2048, description="sequence"),
        micro_batch=w.IntSlider(value=1, min=1, max=16, description="micro-batch"),
    )

    def follow(change):  # sharding factor: the divisors of the GPU count
        factor.options = [2 ** k for k in range(int(math.log2(change["new"])) + 1)]

    gpus.observe(follow, names="value")
    out = w.Output()

    def redraw(**kw):
        with out:
            out.clear_output(wait=True)
            m, f = explorer_memory(**kw)
            fig, ax = plt.subplots(figsize=(6, 3.6))
            bottom = 0.0
            for name, v in (("parameters", m.params), ("gradients", m.grads), ("optimizer states", m.optimizer),
                            ("activations", m.activations)):
                ax.bar(["one GPU"], [v / 1e9], bottom=bottom, color=_COLORS[name], label=name)
                bottom += v / 1e9
            ax.axhline(GPU_BYTES / 1e9, color="k", ls="--", label=f"{GPU_BYTES / 1e9:.0f} GB GPU")
            ax.set_ylabel("GB per GPU")
            fits = "fits" if m.total <= GPU_BYTES else "does NOT fit"
            ax.set_title(f"{kw['model']} on {kw['n_gpus']} GPUs, sharding factor {f}: {m.total / 1e9:,.1f} GB, {fits}")
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1, 1))
            plt.show()

    w.interactive_output(redraw, controls)
    panel = w.VBox([w.HBox([controls["model"], controls["precision"], controls["offload"]]),
                    w.HBox([gpus, factor]), w.HBox([controls["zero_stage"], controls["seq_len"]]),
                    controls["micro_batch"], out])
    display(panel)
    return panel
