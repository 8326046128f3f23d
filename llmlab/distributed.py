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
  replicated across the groups (HSDP, ``HYBRID_SHARD``);
* ``"tp"``     tensor parallelism on the Llama of :mod:`llmlab.tinyllama`
  (``torch.distributed.tensor.parallel``, Megatron-LM's column- then row-wise split of each block);
* ``"pp"``     pipeline parallelism on the same Llama (``torch.distributed.pipelining``, GPipe or
  1F1B over micro-batches), with the idle fraction per rank against the bubble formula.

Each rank also measures the peak bytes of its last training step (:func:`llmlab.peak.measure`);
:func:`peak_table` sets them next to the calculator's model states plus activations.

Per rank it returns the bytes of parameters, gradients and optimizer states held locally
(local shards summed), the step time, the losses, the bytes handed to each kind of
collective in one step and, on CUDA, the peak allocated memory. :func:`predicted_table`
sets them next to :mod:`llmlab.memory`'s prediction. All sizes are bytes, all times seconds.

Why not torchrun: a notebook needs the ranks' measurements back as Python objects, a timeout that
ends a hung run, and a clear error when one rank fails; :func:`run` starts the ranks itself for that.
The same worker runs under torchrun unchanged (:func:`write_spec`, then
``torchrun --standalone --nproc-per-node=N -m llmlab._dist_worker SPEC``, then :func:`read_results`).

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

from . import _checks, memory

STRATEGIES = ("ddp", "zero1", "zero2", "zero3", "hybrid")  # data parallel: the GPT-2 workers
MODEL_PARALLEL = ("tp", "pp")  # tensor and pipeline parallel: the Llama workers (llmlab.tinyllama)
ALL_STRATEGIES = STRATEGIES + MODEL_PARALLEL
PP_SCHEDULES = ("gpipe", "1f1b")
FSDP_STRATEGIES = ("zero2", "zero3", "hybrid")
BACKENDS = ("auto", "gloo", "nccl")
RANKS_PER_CPU_CORE = 2  # gloo: at most this many single-threaded ranks per core

#: the bundled stories-1m GPT-2 (llmlab/models/stories-1m/config.json): 0.96 M parameters
STORIES_1M = dict(vocab_size=1024, n_positions=256, n_embd=128, n_layer=4, n_head=4, n_inner=512)


class DistributedRunError(RuntimeError):
    """A rank failed or the run timed out. ``pids`` are the ranks' process ids (all ended)."""

    def __init__(self, message: str, pids: list[int], signal: int | None = None) -> None:
        super().__init__(message)
        self.pids = pids
        self.signal = signal  # the signal that killed the failed rank (11: a crash in native code), if any


def cpu_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _check_result(result) -> "RunResult":
    if not isinstance(result, RunResult):
        raise _checks.ArgumentTypeError(f"result must be the RunResult returned by distributed.run(), "
                                        f"got {type(result).__name__}")
    return result


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
    world_size = _count("world_size", world_size)
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    if backend == "auto":
        return "nccl" if torch.cuda.is_available() and torch.cuda.device_count() >= world_size else "gloo"
    if backend == "nccl" and not torch.cuda.is_available():
        raise ValueError("backend 'nccl' needs CUDA GPUs and none is available; use 'gloo' (CPU)")
    return backend


def default_sharding_factor(world_size: int) -> int:
    """The hybrid run's sharding factor when none is given: 2 when the world size is even and
    above 2 (two or more replicas of two shards), else the world size (full sharding)."""
    world_size = _count("world_size", world_size)
    return 2 if world_size > 2 and world_size % 2 == 0 else world_size


def _count(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}")
    return value


def validate(strategies, world_size: int, backend: str = "auto", sharding_factor: int | None = None,
             offload: bool = False, steps: int = 4, batch_size: int = 2, seq_len: int = 32,
             model: dict | None = None, timeout_s: float = 120.0, *, lr: float = 3e-3, seed: int = 0,
             n_batches: int = 1, check_grads: bool = True,
             fail_ranks: tuple[int, ...] = (), llama: dict | None = None, microbatches: int = 2,
             pp_schedule: str = "1f1b", bubble_microbatches=(), bubble_repeats: int = 3
             ) -> tuple[list[str], str, int | None]:
    """Check :func:`run`'s arguments; return (strategies, backend, sharding factor). Raises ValueError
    (or :class:`llmlab._checks.ArgumentTypeError`, also a TypeError, for a value of the wrong kind)."""
    if isinstance(strategies, str):
        strategies = [strategies]
    if not isinstance(strategies, (list, tuple)):
        raise _checks.ArgumentTypeError(f"strategies must be a list of strategy names ({', '.join(ALL_STRATEGIES)}), "
                                        f"got {type(strategies).__name__}")
    strategies = list(strategies)
    if not strategies:
        raise ValueError(f"give at least one strategy; allowed: {', '.join(ALL_STRATEGIES)}")
    for s in strategies:
        if s not in ALL_STRATEGIES:
            raise ValueError(f"unknown strategy {s!r}; allowed: {', '.join(ALL_STRATEGIES)}")
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
    _count("n_batches", n_batches)
    _checks.positive("lr", lr)
    _checks.non_negative_int("seed", seed)
    for name, flag in (("offload", offload), ("check_grads", check_grads)):
        if not isinstance(flag, bool):
            raise _checks.ArgumentTypeError(f"{name} must be True or False, got {flag!r}")
    if isinstance(fail_ranks, (str, bytes)) or not isinstance(fail_ranks, (list, tuple)):
        raise _checks.ArgumentTypeError(f"fail_ranks must be a tuple of ranks, got {type(fail_ranks).__name__}")
    for r in fail_ranks:
        _checks.integer("fail_ranks (each rank)", r, low=0, high=world_size - 1)
    if model is not None and not isinstance(model, dict):
        raise _checks.ArgumentTypeError(f"model must be a dict of GPT-2 settings (keys of STORIES_1M) or None, "
                                        f"got {type(model).__name__} {model!r}")
    cfg = dict(STORIES_1M, **(model or {}))
    unknown = set(cfg) - set(STORIES_1M) - {"layer_norm_epsilon"}
    if unknown:
        raise ValueError(f"unknown model settings {sorted(unknown)}; allowed: {sorted(STORIES_1M)}")
    if _count("seq_len", seq_len) > cfg["n_positions"]:
        raise ValueError(f"seq_len must be <= n_positions ({cfg['n_positions']}), got {seq_len}")
    if cfg["n_embd"] % cfg["n_head"]:
        raise ValueError(f"n_embd ({cfg['n_embd']}) must be a multiple of n_head ({cfg['n_head']})")
    for key in ("n_layer", "n_embd", "n_head", "n_positions", "vocab_size"):
        if key in cfg:
            _count(f"model[{key!r}]", cfg[key])
    if (isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not math.isfinite(timeout_s)
            or not timeout_s > 0):
        raise ValueError(f"timeout_s must be > 0 seconds (finite), got {timeout_s!r}")
    _validate_model_parallel(strategies, world_size, batch_size, seq_len, llama, microbatches, pp_schedule,
                             bubble_microbatches, bubble_repeats)
    return strategies, backend, sharding_factor


def llama_config(llama: dict | None = None):
    """The Llama workers' :class:`llmlab.tinyllama.TinyLlamaConfig`, with the entries of ``llama`` changed."""
    from dataclasses import fields as dc_fields

    from .tinyllama import TinyLlamaConfig

    if llama is not None and not isinstance(llama, dict):
        raise _checks.ArgumentTypeError(f"llama must be a dict of TinyLlamaConfig fields or None, "
                                        f"got {type(llama).__name__} {llama!r}")
    allowed = {f.name for f in dc_fields(TinyLlamaConfig)} - {"tie_word_embeddings"}
    unknown = set(llama or {}) - allowed
    if unknown:
        raise ValueError(f"unknown llama settings {sorted(unknown)}; allowed: {sorted(allowed)}")
    return TinyLlamaConfig(**(llama or {}))


def _validate_model_parallel(strategies, world_size, batch_size, seq_len, llama, microbatches, pp_schedule,
                             bubble_microbatches, bubble_repeats) -> None:
    cfg = llama_config(llama)
    if seq_len > cfg.max_position_embeddings:
        raise ValueError(f"seq_len must be <= the Llama's max_position_embeddings ({cfg.max_position_embeddings}), "
                         f"got {seq_len}")
    microbatches = _count("microbatches", microbatches)
    if not isinstance(pp_schedule, str) or pp_schedule not in PP_SCHEDULES:
        raise ValueError(f"unknown pp_schedule {pp_schedule!r}; allowed: {', '.join(PP_SCHEDULES)}")
    if isinstance(bubble_microbatches, (str, bytes)) or not isinstance(bubble_microbatches, (list, tuple)):
        raise _checks.ArgumentTypeError(f"bubble_microbatches must be a tuple of micro-batch counts, "
                                        f"got {type(bubble_microbatches).__name__}")
    for m in bubble_microbatches:
        _count("bubble_microbatches (each count)", m)
    _count("bubble_repeats", bubble_repeats)
    if "tp" in strategies:
        for name in ("num_attention_heads", "num_key_value_heads", "intermediate_size"):
            if getattr(cfg, name) % world_size:
                raise ValueError(f"tensor parallelism splits {name} ({getattr(cfg, name)}) over the ranks: "
                                 f"world_size must divide it, got {world_size}")
    if "pp" in strategies:
        if world_size < 2:
            raise ValueError("pipeline parallelism needs at least 2 ranks (stages), got world_size 1")
        if cfg.num_hidden_layers % world_size:
            raise ValueError(f"each pipeline stage takes an equal share of the {cfg.num_hidden_layers} blocks: "
                             f"world_size must divide it, got {world_size}")
        if (batch_size * world_size) % microbatches:
            raise ValueError(f"the global batch ({batch_size} x {world_size} sequences) must divide into "
                             f"microbatches={microbatches} equal micro-batches")
        if pp_schedule == "1f1b" and microbatches < world_size:
            raise ValueError(f"1F1B needs at least one micro-batch per stage: microbatches >= {world_size}, "
                             f"got {microbatches}")
    elif bubble_microbatches:
        raise ValueError("bubble_microbatches measures the pipeline: add 'pp' to the strategies")


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
    peak: dict | None = None  # peak.measure of the last step: peak_bytes, baseline_bytes, at_peak (by category)
    profiled_step_s: float = 0.0  # the measured step's time (slower under the profiler; not in step_times)
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
    settings: dict = field(default_factory=dict)  # model (the GPT-2 settings), batch_size, seq_len, steps
    # what a first try printed when one of its ranks crashed in native code and the run was started again
    crashes: list[str] = field(default_factory=list)

    def of(self, strategy: str) -> list[RankResult]:
        return [r for r in self.ranks if r.strategy == strategy]

    @property
    def strategies(self) -> list[str]:
        return list(dict.fromkeys(r.strategy for r in self.ranks))

    @property
    def n_params(self) -> int:
        return sum(math.prod(s) for s in self.param_shapes)

    def losses(self, strategy: str) -> list[float]:
        """The global loss of each step: the mean over ranks (equal batch sizes) of their losses; under
        tensor parallelism every rank has the whole loss, under pipeline parallelism the last rank."""
        if strategy == "pp":
            return list(self.of("pp")[-1].losses)
        if strategy == "tp":
            return list(self.of("tp")[0].losses)
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

    if model is not None and not isinstance(model, dict):
        raise _checks.ArgumentTypeError(f"model must be a dict of GPT-2 settings (keys of STORIES_1M) or None, "
                                        f"got {type(model).__name__} {model!r}")
    unknown = set(model or {}) - set(STORIES_1M) - {"layer_norm_epsilon"}
    if unknown:
        raise ValueError(f"unknown model settings {sorted(unknown)}; allowed: {sorted(STORIES_1M)}")
    with torch.device("meta"):
        net = TinyGPT2(**dict(STORIES_1M, **(model or {})))
    return [tuple(p.shape) for p in net.parameters()]


def run(strategies=STRATEGIES, world_size: int = 2, *, backend: str = "auto", sharding_factor: int | None = None,
        offload: bool = False, steps: int = 4, batch_size: int = 2, seq_len: int = 32, n_batches: int = 1,
        lr: float = 3e-3, seed: int = 0, model: dict | None = None, timeout_s: float = 120.0,
        check_grads: bool = True, fail_ranks: tuple[int, ...] = (), llama: dict | None = None,
        microbatches: int = 2, pp_schedule: str = "1f1b", bubble_microbatches=(),
        bubble_repeats: int = 3) -> RunResult:
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
    ``"tp"`` and ``"pp"`` train the Llama of :mod:`llmlab.tinyllama` (``llama`` overrides fields of
    its config) on a global batch of the same size: tensor parallelism splits every block over the
    ranks (Megatron-LM's column- then row-wise split), pipeline parallelism gives each rank an equal
    share of the blocks and runs ``pp_schedule`` ("gpipe" or "1f1b") over ``microbatches``
    micro-batches. Each of their ranks also trains one process on the whole batch, for the loss and
    step-0 gradient check. ``bubble_microbatches`` (with "pp"): micro-batch counts at which the
    pipeline's idle fraction per rank is measured (``bubble_repeats`` timed steps each, micro-batches
    of ``batch_size`` sequences, both schedules).
    Returns a :class:`RunResult`; raises ValueError on bad arguments (before any process
    starts) and :class:`DistributedRunError` when a rank fails or the run times out. A rank
    killed by a signal (a crash inside native code rather than a Python error) gets one fresh
    start of the whole run; a second crash raises, and the result's ``crashes`` lists the first.
    """
    strategies, backend, sharding_factor = validate(strategies, world_size, backend, sharding_factor, offload,
                                                    steps, batch_size, seq_len, model, timeout_s, lr=lr, seed=seed,
                                                    n_batches=n_batches, check_grads=check_grads,
                                                    fail_ranks=fail_ranks, llama=llama, microbatches=microbatches,
                                                    pp_schedule=pp_schedule,
                                                    bubble_microbatches=bubble_microbatches,
                                                    bubble_repeats=bubble_repeats)
    spec = _spec(strategies, world_size, backend, sharding_factor, offload, steps, batch_size, seq_len, n_batches,
                 lr, seed, model, check_grads, fail_ranks, timeout_s, llama, microbatches, pp_schedule,
                 bubble_microbatches, bubble_repeats)
    crashes: list[str] = []
    while True:
        workdir = Path(tempfile.mkdtemp(prefix="llmlab-dist-"))
        try:
            spec_path = workdir / "spec.json"
            spec_path.write_text(json.dumps(spec))
            t0 = time.perf_counter()
            try:
                _launch(spec_path, world_size, timeout_s)
            except DistributedRunError as error:
                # a rank killed by a signal in native code (a crash, not an exception of ours) is started
                # again once, from scratch; the result's ``crashes`` keeps what the first try printed
                if error.signal is None or crashes or fail_ranks:
                    raise
                crashes.append(str(error))
                continue
            result = read_results(spec_path, wall_s=time.perf_counter() - t0)
            result.crashes = crashes
            return result
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def _spec(strategies, world_size, backend, sharding_factor, offload, steps, batch_size, seq_len, n_batches, lr, seed,
          model, check_grads, fail_ranks, timeout_s, llama, microbatches, pp_schedule, bubble_microbatches,
          bubble_repeats) -> dict:
    from dataclasses import asdict

    return dict(strategies=strategies, world_size=world_size, backend=backend, sharding_factor=sharding_factor,
                offload=offload, steps=steps, batch_size=batch_size, seq_len=seq_len, n_batches=n_batches, lr=lr,
                seed=seed, model=dict(STORIES_1M, **(model or {})), check_grads=check_grads,
                fail_ranks=list(fail_ranks), collective_timeout_s=max(5.0, float(timeout_s)), port=free_port(),
                llama=asdict(llama_config(llama)), microbatches=microbatches, pp_schedule=pp_schedule,
                bubble_microbatches=list(bubble_microbatches), bubble_schedules=list(PP_SCHEDULES),
                bubble_repeats=bubble_repeats)


def write_spec(folder, strategies=STRATEGIES, world_size: int = 2, **settings) -> Path:
    """Check the arguments as :func:`run` does and write the run's ``spec.json`` into ``folder`` (created
    if missing); return its path. For launching the same workers yourself, for instance with torchrun::

        python -m torch.distributed.run --standalone --nproc-per-node=2 -m llmlab._dist_worker SPEC

    (each rank then reads its rank and the rendezvous from torchrun's environment), then
    :func:`read_results` (``SPEC``). ``settings``: the keyword arguments of :func:`run`."""
    if not isinstance(folder, (str, os.PathLike)):
        raise _checks.ArgumentTypeError(f"folder must be a path (str or pathlib.Path), got {type(folder).__name__}")
    allowed = ("backend", "sharding_factor", "offload", "steps", "batch_size", "seq_len", "n_batches", "lr", "seed",
               "model", "timeout_s", "check_grads", "fail_ranks", "llama", "microbatches", "pp_schedule",
               "bubble_microbatches", "bubble_repeats")
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise ValueError(f"unknown settings {unknown}; allowed: {', '.join(allowed)}")
    kw = dict(backend="auto", sharding_factor=None, offload=False, steps=4, batch_size=2, seq_len=32, n_batches=1,
              lr=3e-3, seed=0, model=None, timeout_s=120.0, check_grads=True, fail_ranks=(), llama=None,
              microbatches=2, pp_schedule="1f1b", bubble_microbatches=(), bubble_repeats=3)
    kw.update(settings)
    strategies, backend, sharding_factor = validate(
        strategies, world_size, kw["backend"], kw["sharding_factor"], kw["offload"], kw["steps"], kw["batch_size"],
        kw["seq_len"], kw["model"], kw["timeout_s"], lr=kw["lr"], seed=kw["seed"], n_batches=kw["n_batches"],
        check_grads=kw["check_grads"], fail_ranks=kw["fail_ranks"], llama=kw["llama"],
        microbatches=kw["microbatches"], pp_schedule=kw["pp_schedule"],
        bubble_microbatches=kw["bubble_microbatches"], bubble_repeats=kw["bubble_repeats"])
    kw.update(backend=backend, sharding_factor=sharding_factor)
    spec = _spec(strategies, world_size, **kw)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def read_results(spec_path, wall_s: float = 0.0) -> RunResult:
    """The :class:`RunResult` of the workers that ran ``spec_path`` (their ``rank<r>.json`` beside it)."""
    if not isinstance(spec_path, (str, os.PathLike)):
        raise _checks.ArgumentTypeError(f"spec_path must be a path to a spec.json, got {type(spec_path).__name__}")
    spec_path = Path(spec_path)
    if not spec_path.is_file():
        raise ValueError(f"no spec file at {str(spec_path)!r}; write one with distributed.write_spec")
    spec = json.loads(spec_path.read_text())
    ranks = []
    for r in range(spec["world_size"]):
        out = spec_path.parent / f"rank{r}.json"
        if not out.is_file():
            raise ValueError(f"rank {r} wrote no results ({out.name} is missing beside {spec_path.name}): "
                             f"did all {spec['world_size']} ranks finish?")
        for d in json.loads(out.read_text()):
            core = {k: d.pop(k) for k in list(d) if k in RankResult.__dataclass_fields__}
            ranks.append(RankResult(**core, extra=d))
    strategies = spec["strategies"]
    ranks.sort(key=lambda r: (strategies.index(r.strategy), r.rank))
    gpt2 = {k: v for k, v in spec["model"].items() if k in STORIES_1M or k == "layer_norm_epsilon"}
    return RunResult(spec["world_size"], spec["backend"], spec["sharding_factor"], ranks, param_shapes(gpt2), wall_s,
                     dict(model=spec["model"], batch_size=spec["batch_size"], seq_len=spec["seq_len"],
                          steps=spec["steps"], llama=spec["llama"], microbatches=spec["microbatches"],
                          pp_schedule=spec["pp_schedule"]))


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
                killed_by = -codes[r] if codes[r] < 0 else None
                how = (f"was killed by signal {killed_by} ({signal.Signals(killed_by).name})" if killed_by
                       else f"failed (exit code {codes[r]})")
                raise DistributedRunError(f"rank {r} of {world_size} {how}; the other ranks were stopped. "
                                          f"Its error:\n{detail.strip()}", [p.pid for p in procs], killed_by)
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

    _check_result(result)
    rows = []
    for r in result.ranks:
        if r.strategy in MODEL_PARALLEL:  # see model_parallel_table
            continue
        f = result.sharding_factor if r.strategy == "hybrid" else None
        exact = memory.rank_states_exact(result.param_shapes, r.strategy, r.world_size, r.rank, f, "fp32", "adam")
        ideal = memory.strategy_states_per_gpu(result.n_params, r.strategy, r.world_size, f, "fp32", "adam")
        rows.append(dict(strategy=r.strategy, rank=r.rank, params=r.params, grads=r.grads, optimizer=r.optimizer,
                         measured=r.model_states, exact=exact.total, ideal=round(ideal.total),
                         measured_minus_exact=r.model_states - exact.total,
                         measured_minus_ideal=round(r.model_states - ideal.total),
                         step_ms=1000 * r.step_time))
    return pd.DataFrame(rows)


def predicted_activation_bytes(result: RunResult, method: str = "selective") -> float:
    """Activation bytes per rank that :func:`llmlab.memory.activation_bytes` predicts for ``result``'s runs:
    the workers' GPT-2 shape, ``batch_size`` sequences of ``seq_len`` tokens per rank, fp32, no dropout,
    the output layer and loss included (4·s·b·v). ``"selective"``: the attention scores are not kept,
    which is what ``F.scaled_dot_product_attention`` does (a fused kernel keeps only its softmax
    statistics); ``"korthikanti"`` keeps them."""
    _check_result(result)
    if not isinstance(method, str) or method not in ("selective", "korthikanti"):
        raise ValueError(f"method must be 'selective' or 'korthikanti', got {method!r}")
    cfg, st = result.settings["model"], result.settings
    return memory.activation_bytes(cfg["n_layer"], cfg["n_embd"], cfg["n_head"], st["seq_len"], st["batch_size"],
                                   method, 4, dropout=False, vocab_size=cfg["vocab_size"])


def peak_table(result: RunResult):
    """One row per (strategy, rank): the measured peak of the last training step against the calculator.

    ``held_at_entry``: bytes the rank's tensors hold when the step starts (local parameter shards, Adam's
    states, DDP's gradient buckets; counted tensor by tensor). ``peak_above_entry``: the most bytes torch
    allocated on top during the step (:func:`llmlab.peak.measure`: the profiler's memory records on CPU,
    ``max_memory_allocated`` on CUDA). ``measured_peak`` is their sum. ``predicted_peak``: the calculator's
    model states per rank (:func:`llmlab.memory.strategy_states_per_gpu`, fp32 Adam) plus its activations
    (:func:`predicted_activation_bytes`). The ``at_peak_*`` columns split what was live at the peak by the
    profiler's categories where its memory profiler could (else empty); FSDP's DTensor shards are not
    recognised as parameters or optimizer state and land in ``at_peak_other``. A pandas DataFrame, bytes.
    """
    import pandas as pd

    _check_result(result)
    act = predicted_activation_bytes(result)
    rows = []
    for r in result.ranks:
        if r.strategy in MODEL_PARALLEL:  # see model_parallel_table
            continue
        if r.peak is None:
            raise ValueError(f"rank {r.rank} of {r.strategy} has no measured peak (a result from an older run)")
        f = result.sharding_factor if r.strategy == "hybrid" else None
        states = memory.strategy_states_per_gpu(result.n_params, r.strategy, r.world_size, f, "fp32", "adam")
        held, above = r.peak["resident_at_entry"], r.peak["peak_bytes"]
        split = r.peak["at_peak"]
        row = dict(strategy=r.strategy, rank=r.rank, held_at_entry=held, peak_above_entry=above,
                   measured_peak=held + above, predicted_states=round(states.total), predicted_activations=round(act),
                   predicted_peak=round(states.total + act))
        row["measured_minus_predicted"] = row["measured_peak"] - row["predicted_peak"]
        for name, keys in (("params", ("parameters",)), ("grads", ("gradients",)), ("optimizer", ("optimizer_state",)),
                           ("activations", ("activations", "autograd_detail", "temporary")),
                           ("other", ("inputs", "other"))):
            row[f"at_peak_{name}"] = sum(split[k] for k in keys) if split is not None else pd.NA
        rows.append(row)
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
    if not isinstance(strategy, str) or strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; allowed: {', '.join(STRATEGIES)}")
    # a parameter count in a formula may be written 1.5e9: any finite number > 0
    if (isinstance(n_params, bool) or not isinstance(n_params, (int, float))
            or not math.isfinite(n_params) or n_params <= 0):
        raise ValueError(f"n_params must be a finite number > 0 (1.5e9 is fine), got {n_params!r}")
    n = world_size = _count("world_size", world_size)
    bytes_per_value = _count("bytes_per_value", bytes_per_value)
    if sharding_factor is not None:
        sharding_factor = _count("sharding_factor", sharding_factor)
        if world_size % sharding_factor:
            raise ValueError(f"sharding_factor must divide world_size {world_size}; got {sharding_factor}")
    psi = n_params * bytes_per_value
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

    _check_result(result)
    rows = []
    for s in result.strategies:
        if s in MODEL_PARALLEL:  # see model_parallel_table
            continue
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


# --------------------------------------------------------------------------- tensor and pipeline parallelism


def tp_all_reduces_per_step(n_layers: int) -> int:
    """All-reduces one tensor-parallel training step issues with llmlab's plan (Shoeybi et al. 2019):
    forward, one after the attention's output projection and one after the MLP's down projection per
    block; backward, one per column-split matrix for the gradient of its (replicated) input: q, k, v,
    gate and up, 5 per block. Megatron-LM fuses q, k, v into one matrix and gate with up, so it has
    2 + 2 per block. Each all-reduce carries a (B, T, C) activation."""
    return 7 * _count("n_layers", n_layers)


def model_parallel_table(result: RunResult):
    """Per tensor- or pipeline-parallel rank: the largest differences from one process (losses, step-0
    gradients, nats and gradient units), the parameters it holds, what it sent in the last step
    (collectives counted in the worker) and the expected count: ``tp``, :func:`tp_all_reduces_per_step`
    all-reduces of B·T·C·4 bytes; ``pp``, each boundary sends the activations (forward) or their
    gradients (backward) of the whole global batch, B·T·C·4 bytes. A pandas DataFrame."""
    import pandas as pd

    _check_result(result)
    cfg = result.settings["llama"]
    batch = result.settings["batch_size"] * result.world_size
    activation = batch * result.settings["seq_len"] * cfg["hidden_size"] * 4  # bytes of one (B, T, C) fp32 tensor
    rows = []
    for r in result.ranks:
        if r.strategy not in MODEL_PARALLEL:
            continue
        ref = r.extra["single_process_losses"]
        mine = result.losses(r.strategy)
        calls = sum(r.comm["calls"].values())
        sent = sum(r.comm["bytes"].values())
        if r.strategy == "tp":
            expected_calls, expected_bytes = tp_all_reduces_per_step(cfg["num_hidden_layers"]), None
            expected_bytes = expected_calls * activation
        else:  # sends: forward to the next stage (all but the last), backward to the previous (all but the first)
            boundaries = (r.rank < r.world_size - 1) + (r.rank > 0)
            expected_calls = boundaries * result.settings["microbatches"]
            expected_bytes = boundaries * activation
        rows.append({"strategy": r.strategy, "rank": r.rank, "param_bytes": r.params,
                     "loss_max_abs_diff": max(abs(a - b) for a, b in zip(mine, ref)),
                     "grad_max_abs_diff": r.extra["grad_max_abs_diff"], "grad_max_abs": r.extra["grad_max_abs"],
                     "collectives": ", ".join(f"{k.split('@')[0]} x{v}" for k, v in sorted(r.comm["calls"].items())),
                     "calls": calls, "expected_calls": expected_calls, "bytes_sent": sent,
                     "expected_bytes": expected_bytes})
    return pd.DataFrame(rows)


def model_parallel_peak_table(result: RunResult):
    """Per tensor- or pipeline-parallel rank: the measured peak of its last step next to the calculator.

    Model states: :func:`llmlab.memory.model_parallel_gpu_memory` (FP32 Adam) with the Llama's blocks
    split (by t, or by the stages) and the rest whole (tensor parallelism: embeddings, norms and head
    on every rank; pipeline: the rank's own end of the model). Activations: Korthikanti et al.'s
    per-layer count (:func:`llmlab.memory.activation_bytes`, FP32, no dropout, attention scores kept,
    which llmlab's from-scratch attention does), split by t under tensor parallelism; the pipeline
    rank keeps its layers' activations for the micro-batches in flight (GPipe: all m; 1F1B: p - rank,
    at most m) and the last rank the logits and loss (4·s·b·v) of each. Bytes; a pandas DataFrame.
    """
    import pandas as pd

    _check_result(result)
    cfg = llama_config({k: v for k, v in result.settings["llama"].items() if k != "tie_word_embeddings"})
    h, a, L, v = cfg.hidden_size, cfg.num_attention_heads, cfg.num_hidden_layers, cfg.vocab_size
    s, n = result.settings["seq_len"], result.world_size
    batch = result.settings["batch_size"] * n
    in_blocks = L * (2 * h * a * cfg.head_dim + 2 * h * cfg.num_key_value_heads * cfg.head_dim
                     + 3 * h * cfg.intermediate_size + 2 * h)
    embed, head = v * h, v * h + h
    rows = []
    for r in result.ranks:
        if r.strategy not in MODEL_PARALLEL:
            continue
        if r.strategy == "tp":
            states = memory.model_parallel_gpu_memory(in_blocks, embed + head, n, tensor_parallel=n, zero_stage=0,
                                                      precision="fp32")
            act = memory.activation_bytes(L, h, a, s, batch, "korthikanti", 4, dropout=False, vocab_size=v,
                                          tensor_parallel=n)
        else:
            m = result.settings["microbatches"]
            whole = (embed if r.rank == 0 else 0) + (head if r.rank == n - 1 else 0)
            states = memory.model_parallel_gpu_memory(in_blocks, whole, n, pipeline_parallel=n, zero_stage=0,
                                                      precision="fp32")
            flight = m if result.settings["pp_schedule"] == "gpipe" else min(n - r.rank, m)
            micro = batch // m
            per_micro = memory.activation_bytes(L // n, h, a, s, micro, "korthikanti", 4, dropout=False)
            if r.rank == n - 1:
                per_micro += 4 * s * micro * v
            act = flight * per_micro
        held, above = r.peak["resident_at_entry"], r.peak["peak_bytes"]
        rows.append({"strategy": r.strategy, "rank": r.rank, "held_at_entry": held, "peak_above_entry": above,
                     "measured_peak": held + above, "predicted_states": round(states.total),
                     "predicted_activations": round(act), "predicted_peak": round(states.total + act),
                     "measured_minus_predicted": held + above - round(states.total + act)})
    return pd.DataFrame(rows)


def bubble_fraction(n_stages: int, n_microbatches: int) -> float:
    """The pipeline bubble of GPipe and 1F1B, (p - 1)/(m + p - 1) of each stage's time idle with p stages
    of equal cost and m micro-batches (Huang et al. 2019; Narayanan et al. 2021)."""
    p, m = _checks.positive_int("n_stages", n_stages), _checks.positive_int("n_microbatches", n_microbatches)
    return (p - 1) / (m + p - 1)


def bubble_table(result: RunResult):
    """Per schedule, micro-batch count and rank: the measured idle fraction (1 - time computing / step
    time, median of the timed steps) next to :func:`bubble_fraction`. Needs a run with ``"pp"`` and
    ``bubble_microbatches``. A pandas DataFrame."""
    import pandas as pd

    _check_result(result)
    ranks = result.of("pp")
    if not ranks or "bubble" not in ranks[0].extra:
        raise ValueError("this run measured no bubble: run distributed.run(['pp'], ..., bubble_microbatches=(1, 2, 4))")
    rows = []
    for r in ranks:
        for b in r.extra["bubble"]:
            rows.append({"schedule": b["schedule"], "microbatches": b["microbatches"], "rank": r.rank,
                         "idle_measured": b["idle"], "bubble_formula": bubble_fraction(r.world_size, b["microbatches"]),
                         "step_ms": 1000 * b["step_s"]})
    return pd.DataFrame(rows).sort_values(["schedule", "microbatches", "rank"]).reset_index(drop=True)


BUBBLE_RECORD = Path(__file__).resolve().parent / "results" / "pipeline_bubble.json"
#: the recorded grid: world sizes (stages), micro-batch sizes (sequences) and micro-batch counts
BUBBLE_PLAN = {"world_sizes": (2, 4), "micro_batch_sizes": (2, 8), "microbatches": (1, 2, 4, 8, 16),
               "seq_len": 64, "repeats": 3}


def record_bubble(path=BUBBLE_RECORD, plan: dict | None = None) -> dict:
    """Measure the pipeline's idle fraction over :data:`BUBBLE_PLAN` (both schedules) and write it to
    ``path`` as JSON, stamped with the code version and the machine. ``python -m llmlab.distributed
    record-bubble`` (a few minutes on 2 cores). Returns the record."""
    import platform

    from .provenance import code_version

    if not isinstance(path, (str, os.PathLike)):
        raise _checks.ArgumentTypeError(f"path must be a path for the record, got {type(path).__name__}")
    if plan is not None and not isinstance(plan, dict):
        raise _checks.ArgumentTypeError(f"plan must be a dict with keys of BUBBLE_PLAN or None, got {type(plan).__name__}")
    unknown = sorted(set(plan or {}) - set(BUBBLE_PLAN))
    if unknown:
        raise ValueError(f"unknown plan keys {unknown}; allowed: {', '.join(BUBBLE_PLAN)}")
    plan = dict(BUBBLE_PLAN, **(plan or {}))
    rows = []
    t0 = time.perf_counter()
    for n in plan["world_sizes"]:
        if n > max_world_size("gloo"):
            continue
        for b in plan["micro_batch_sizes"]:
            result = run(["pp"], n, backend="gloo", steps=1, batch_size=b, seq_len=plan["seq_len"], microbatches=n,
                         bubble_microbatches=tuple(plan["microbatches"]), bubble_repeats=plan["repeats"],
                         timeout_s=900)
            for row in bubble_table(result).to_dict("records"):
                rows.append(dict(row, stages=n, micro_batch_size=b))
    record = {"what": "chapter 7 pipeline bubble: idle fraction per rank against (p - 1)/(m + p - 1)",
              "plan": plan, "seconds": round(time.perf_counter() - t0, 1),
              "code_version": code_version("llmlab/distributed.py", "llmlab/_dist_worker.py", "llmlab/tinyllama.py"),
              "machine": {"processor": platform.processor() or platform.machine(), "cpu_cores": cpu_cores(),
                          "torch": torch.__version__, "backend": "gloo", "threads_per_rank": 1},
              "rows": rows}
    Path(path).write_text(json.dumps(record, indent=1) + "\n")
    return record


def load_bubble_record(path=BUBBLE_RECORD):
    """The recorded bubble grid (:func:`record_bubble`) as (a pandas DataFrame, the record's stamp)."""
    import pandas as pd

    if not isinstance(path, (str, os.PathLike)):
        raise _checks.ArgumentTypeError(f"path must be a path to the record, got {type(path).__name__}")
    if not Path(path).is_file():
        raise ValueError(f"no bubble record at {str(path)!r}; make it with python -m llmlab.distributed record-bubble")
    record = json.loads(Path(path).read_text())
    stamp = {k: record[k] for k in ("code_version", "machine", "seconds", "plan")}
    return pd.DataFrame(record["rows"]), stamp


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
    if not isinstance(model, str) or model not in EXPLORER_MODELS:
        raise ValueError(f"unknown model {model!r}; allowed: {', '.join(EXPLORER_MODELS)}")
    _count("n_gpus", n_gpus)
    _count("sharding_factor", sharding_factor, low=0)
    if isinstance(zero_stage, bool) or zero_stage not in (0, 1, 2, 3):
        raise ValueError(f"zero_stage must be 0, 1, 2 or 3, got {zero_stage!r}")
    if not isinstance(precision, str) or precision not in memory.PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; allowed: {', '.join(memory.PRECISIONS)}")
    n_params, layers, hidden, heads = EXPLORER_MODELS[model]
    f = n_gpus if sharding_factor == 0 else min(sharding_factor, n_gpus)
    act = memory.activation_bytes(layers, hidden, heads, seq_len, micro_batch, "full_recompute",
                                  4 if precision == "fp32" else 2)
    return memory.sharded_gpu_memory(n_params, n_gpus, f, zero_stage, precision, "adam", offload, act), f


def _memory_series(m: memory.GpuMemory) -> list[dict]:
    """The explorers' stacked bars for one GPU's bytes (GB), after the capacity bar."""
    gb = 1e9
    parts = [("parameters", m.params), ("gradients", m.grads), ("optimizer states", m.optimizer),
             ("activations", m.activations)]
    # the capacity bar first, so that the legend (top right) is drawn over it, not under it
    series = [{"name": "80 GB GPU", "color": _COLORS["capacity"], "values": [0, GPU_BYTES / gb]}]
    return series + [{"name": name, "color": _COLORS[name], "values": [float(f"{v / gb:.3g}"), 0]}
                     for name, v in parts]


def _frame(model: str, n_gpus: int, sharding_factor: int, zero_stage: int, precision: str, offload: bool) -> dict:
    m, f = explorer_memory(model, n_gpus, sharding_factor, zero_stage, precision, offload)
    kind = "DDP" if f == 1 else ("fully sharded" if f == n_gpus else f"hybrid, groups of {f}")
    prefix = f"ZeRO stage {zero_stage if f > 1 else 0} in groups of {f}; " + (
        f"{m.offloaded / 1e9:,.1f} GB per GPU in CPU memory; " if offload else "")
    return _memory_frame(m, f"{model} on {n_gpus} GPUs, {kind}", prefix)


def _memory_frame(m: memory.GpuMemory, heading: str, prefix: str) -> dict:
    """One frame of an explorer: the stacked bar of ``m`` beside the 80 GB capacity, titled ``heading``
    with the total and whether it fits."""
    gb = 1e9
    return {
        "title": f"{heading}: {m.total / gb:,.1f} GB per GPU, {'fits' if m.total <= GPU_BYTES else 'does NOT fit'}",
        "bars": {"labels": ["one GPU", "capacity"], "ylabel": "GB per GPU", "layout": "stacked",
                 "ymax": float(f"{max(GPU_BYTES, m.total) / gb * 1.05:.3g}"), "series": _memory_series(m)},
        "prefix": prefix,
        "text": f"{m.total / gb:,.1f} of 80 GB",
    }


EXPLORER_TP = (1, 2, 4, 8)
EXPLORER_PP = (1, 2, 4, 8)
EXPLORER_MICROBATCHES = (4, 16, 64)


def explorer_parallel_memory(model: str, n_gpus: int, tensor_parallel: int, pipeline_parallel: int,
                             microbatches: int, seq_len: int = 2048, micro_batch: int = 1
                             ) -> tuple[memory.GpuMemory, float]:
    """Per-GPU bytes and the pipeline bubble for the 3-D explorer: :func:`llmlab.memory.model_parallel_gpu_memory`
    with mixed-precision Adam and ZeRO stage 1 over the data-parallel copies, and :func:`bubble_fraction`.

    The blocks' 12·L·h² parameters are split by tensor and pipeline parallelism, the rest (embeddings,
    norms) is held whole by a stage. Activations: the first stage of a 1F1B pipeline keeps min(p, m)
    micro-batches in flight, each through L/p layers, with selective recomputation split by tensor
    parallelism as Korthikanti et al. (2022) write it, s·b·h·(10 + 24/t) bytes per layer, 2048 tokens
    and ``micro_batch`` sequences per micro-batch.
    """
    if not isinstance(model, str) or model not in EXPLORER_MODELS:
        raise ValueError(f"unknown model {model!r}; allowed: {', '.join(EXPLORER_MODELS)}")
    n_params, layers, hidden, heads = EXPLORER_MODELS[model]
    t, p = _checks.positive_int("tensor_parallel", tensor_parallel), _checks.positive_int("pipeline_parallel",
                                                                                          pipeline_parallel)
    m = _checks.positive_int("microbatches", microbatches)
    blocks = 12 * layers * hidden ** 2
    per_layer = memory.activation_bytes(1, hidden, heads, seq_len, micro_batch, "selective", 2, tensor_parallel=t)
    act = per_layer * (layers / p) * min(p, m)
    mem = memory.model_parallel_gpu_memory(blocks, n_params - blocks, n_gpus, t, p, 1, "mixed", "adam", act)
    return mem, bubble_fraction(p, m)


def _parallel_frame(model: str, n_gpus: int, tensor_parallel: int, pipeline_parallel: int, microbatches: int) -> dict:
    m, bubble = explorer_parallel_memory(model, n_gpus, tensor_parallel, pipeline_parallel, microbatches)
    d = n_gpus // (tensor_parallel * pipeline_parallel)
    return _memory_frame(m, f"{model}, {n_gpus} GPUs = TP {tensor_parallel} x PP {pipeline_parallel} x DP {d}",
                         f"pipeline bubble {bubble:.0%} of each step ({microbatches} micro-batches); ")


def static_parallelism_explorer():
    """Tensor x pipeline x data parallelism without a kernel: per-GPU memory and the bubble precomputed for
    every slider position (4 models x 2 GPU counts x 4 TP x 4 PP degrees x 3 micro-batch counts = 384)."""
    from .widgets import Control, static_explorer

    controls = [
        Control("model", "model", list(EXPLORER_MODELS), value="175B"),
        Control("n_gpus", "GPUs", [64, 512], value=512),
        Control("tensor_parallel", "tensor parallel", list(EXPLORER_TP), value=8),
        Control("pipeline_parallel", "pipeline stages", list(EXPLORER_PP), value=8),
        Control("microbatches", "micro-batches", list(EXPLORER_MICROBATCHES), value=16),
    ]
    n = math.prod(len(c.values) for c in controls)
    note = (f"Runs without a kernel: all {n} combinations were computed in advance with llmlab.memory "
            "(mixed-precision Adam, ZeRO-1 over the data-parallel copies, sequence 2048, one sequence per "
            "micro-batch, selective activation recomputation, 1F1B).")
    return static_explorer(controls, _parallel_frame, title="3-D parallelism explorer: memory per GPU and bubble",
                           note=note)


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


if __name__ == "__main__":
    if sys.argv[1:] == ["record-bubble"]:
        rec = record_bubble()
        print(f"wrote {BUBBLE_RECORD} ({len(rec['rows'])} rows, {rec['seconds']} s)")
    else:
        raise SystemExit("usage: python -m llmlab.distributed record-bubble")
