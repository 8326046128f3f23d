"""The launcher of chapter 7's runs: :func:`run` starts the ranks, waits for them and collects what
they measured.

:func:`run` starts ``world_size`` processes (``python -m llmlab.distributed.worker``), gloo on CPU
or nccl on GPUs, that train the same small model on the same random batches under each
requested strategy:

* ``"ddp"``    DistributedDataParallel: every rank holds everything, gradients are all-reduced
  (:func:`llmlab.distributed.data_parallel.wrap_ddp`);
* ``"zero1"``  ZeroRedundancyOptimizer inside DDP: each rank keeps the Adam states of its
  share of whole parameters (ZeRO stage 1, :func:`llmlab.distributed.data_parallel.zero1_optimizer`);
* ``"zero2"``  FSDP2 ``fully_shard(reshard_after_forward=False)``: gradients and optimizer
  states sharded, parameters kept whole from forward to backward (ZeRO stage 2,
  FSDP's ``SHARD_GRAD_OP``; :func:`llmlab.distributed.fsdp.apply_fsdp`);
* ``"zero3"``  FSDP2 ``fully_shard(reshard_after_forward=True)``: parameters sharded too,
  gathered layer by layer when needed (ZeRO stage 3, ``FULL_SHARD``);
* ``"hybrid"`` FSDP2 on a 2-D mesh: sharded within groups of ``sharding_factor`` ranks,
  replicated across the groups (HSDP, ``HYBRID_SHARD``);
* ``"tp"``     tensor parallelism on the Llama of :mod:`llmlab.tinyllama`
  (:func:`llmlab.distributed.tensor_parallel.apply_tp`, Megatron-LM's column- then row-wise split);
* ``"pp"``     pipeline parallelism on the same Llama (:mod:`llmlab.distributed.pipeline`, GPipe or
  1F1B over micro-batches), with the idle fraction per rank against the bubble formula;
* ``"fsdp_tp"`` 2-D parallelism on the same Llama (:func:`llmlab.distributed.fsdp_tp.apply_fsdp_tp`):
  tensor parallelism within each row of ``tensor_parallel`` ranks, FSDP2 across the rows.

The first five train a GPT-2 (:mod:`llmlab.tinygpt2`). ``offload=True`` applies FSDP2's
``CPUOffloadPolicy`` to the FSDP strategies; with gloo the "device" is the CPU, so the shards
are offloaded from CPU memory to CPU memory: the run shows that the policy works and what it
costs in time, not memory saved.

Why not torchrun: a notebook needs the ranks' measurements back as Python objects, a timeout that
ends a hung run, and a clear error when one rank fails; :func:`run` starts the ranks itself for that.
The same worker runs under torchrun unchanged (:func:`write_spec`, then
``torchrun --standalone --nproc-per-node=N -m llmlab.distributed.worker SPEC``, then
:func:`llmlab.distributed.results.read_results`).

Robustness: arguments are checked before any process starts; the port is a free one
chosen by the system; the process group has a timeout, the whole run a wall-clock timeout;
each rank runs in its own session and is killed (with anything it started) when the run
ends, fails or times out; a failing rank ends the run at once with its traceback.
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
from pathlib import Path

import torch

from .. import _checks
from .._checks import whole_number as _count
from ..tinygpt2 import STORIES_1M
from ..tinyllama import llama_config
from .results import (
    ALL_STRATEGIES,
    BUBBLE_SCHEDULES,
    FSDP_STRATEGIES,
    PP_SCHEDULES,
    STRATEGIES,
    DistributedRunError,
    RunResult,
    read_results,
)

BACKENDS = ("auto", "gloo", "nccl")
RANKS_PER_CPU_CORE = 2  # gloo: at most this many single-threaded ranks per core


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


def validate(strategies, world_size: int, backend: str = "auto", sharding_factor: int | None = None,
             offload: bool = False, steps: int = 4, batch_size: int = 2, seq_len: int = 32,
             model: dict | None = None, timeout_s: float = 120.0, *, lr: float = 3e-3, seed: int = 0,
             n_batches: int = 1, check_grads: bool = True,
             fail_ranks: tuple[int, ...] = (), llama: dict | None = None, microbatches: int = 2,
             pp_schedule: str = "1f1b", bubble_microbatches=(), bubble_repeats: int = 3,
             tensor_parallel: int | None = None,
             bubble_schedules=PP_SCHEDULES) -> tuple[list[str], str, int | None]:
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
    if not isinstance(offload, bool):
        raise _checks.ArgumentTypeError(f"offload must be True or False, got {offload!r}")
    if offload and any(s not in FSDP_STRATEGIES for s in strategies):
        raise ValueError(f"offload is FSDP2's CPUOffloadPolicy: strategies {', '.join(FSDP_STRATEGIES)} only, "
                         f"got {', '.join(s for s in strategies if s not in FSDP_STRATEGIES)}")
    _count("steps", steps)
    _count("batch_size", batch_size)
    _count("n_batches", n_batches)
    _checks.positive("lr", lr)
    _checks.non_negative_int("seed", seed)
    if not isinstance(check_grads, bool):
        raise _checks.ArgumentTypeError(f"check_grads must be True or False, got {check_grads!r}")
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
                             bubble_microbatches, bubble_repeats, tensor_parallel, bubble_schedules)
    return strategies, backend, sharding_factor


def default_tensor_parallel(world_size: int) -> int:
    """The 2-D run's tensor-parallel degree when none is given: 2 (rows of 2 ranks, FSDP across the
    world_size / 2 rows) when the world size is even and above 2, else the world size."""
    world_size = _count("world_size", world_size)
    return 2 if world_size > 2 and world_size % 2 == 0 else world_size


def _validate_model_parallel(strategies, world_size, batch_size, seq_len, llama, microbatches, pp_schedule,
                             bubble_microbatches, bubble_repeats, tensor_parallel=None,
                             bubble_schedules=PP_SCHEDULES) -> None:
    cfg = llama_config(llama)
    if isinstance(bubble_schedules, (str, bytes)) or not isinstance(bubble_schedules, (list, tuple)):
        raise _checks.ArgumentTypeError(f"bubble_schedules must be a tuple of schedule names "
                                        f"({', '.join(BUBBLE_SCHEDULES)}), got {type(bubble_schedules).__name__}")
    for name in bubble_schedules:
        if name not in BUBBLE_SCHEDULES:
            raise ValueError(f"unknown bubble schedule {name!r}; allowed: {', '.join(BUBBLE_SCHEDULES)}")
    if "interleaved_1f1b" in bubble_schedules and 2 * world_size > cfg.num_hidden_layers:
        raise ValueError(f"interleaved 1F1B gives each rank two virtual stages: 2 x world_size must not exceed "
                         f"the Llama's {cfg.num_hidden_layers} blocks, got world_size {world_size}")
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
    if tensor_parallel is not None and "fsdp_tp" not in strategies:
        raise ValueError("tensor_parallel sets the 2-D run's tensor-parallel degree: add 'fsdp_tp' or leave it out "
                         "('tp' splits over all the ranks)")
    degrees = {}
    if "tp" in strategies:
        degrees["tp"] = world_size
    if "fsdp_tp" in strategies:
        t = default_tensor_parallel(world_size) if tensor_parallel is None else tensor_parallel
        t = _count("tensor_parallel", t)
        if world_size % t:
            divisors = [d for d in range(1, world_size + 1) if world_size % d == 0]
            raise ValueError(f"tensor_parallel must divide world_size {world_size} (the mesh is "
                             f"world_size / t rows of t ranks); got {t}, allowed: {divisors}")
        degrees["fsdp_tp"] = t
    for strategy, t in degrees.items():
        degree = "world_size" if strategy == "tp" else "tensor_parallel"
        for name in ("num_attention_heads", "num_key_value_heads", "intermediate_size"):
            if getattr(cfg, name) % t:
                raise ValueError(f"tensor parallelism ({strategy}) splits {name} ({getattr(cfg, name)}) over "
                                 f"{t} ranks: {degree} must divide it, got {t}")
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


def run(strategies=STRATEGIES, world_size: int = 2, *, backend: str = "auto", sharding_factor: int | None = None,
        offload: bool = False, steps: int = 4, batch_size: int = 2, seq_len: int = 32, n_batches: int = 1,
        lr: float = 3e-3, seed: int = 0, model: dict | None = None, timeout_s: float = 120.0,
        check_grads: bool = True, fail_ranks: tuple[int, ...] = (), llama: dict | None = None,
        microbatches: int = 2, pp_schedule: str = "1f1b", bubble_microbatches=(),
        bubble_repeats: int = 3, tensor_parallel: int | None = None,
        bubble_schedules=PP_SCHEDULES) -> RunResult:
    """Train the workers' models under each of ``strategies`` with ``world_size`` processes; measure each rank.

    Every strategy starts from the same weights (seed ``seed``) and sees the same data:
    ``n_batches`` random global batches of ``batch_size * world_size`` sequences of
    ``seq_len + 1`` tokens, cycled over ``steps`` steps, rank r taking rows
    [r·batch_size, (r+1)·batch_size). Adam, fp32, learning rate ``lr``. ``model`` overrides
    entries of :data:`STORIES_1M`. With ``check_grads``, rank 0 also trains one process on
    the whole global batch, to compare DDP's step-0 gradients and the loss curve.
    ``timeout_s`` bounds the whole run (seconds) and each collective. ``fail_ranks``
    makes those ranks raise at the start (to test failure handling). ``offload`` (the FSDP
    strategies only) applies FSDP2's ``CPUOffloadPolicy``: on CUDA the measured bytes are then
    those of shards in CPU memory, and ``peak_cuda_bytes`` is what stayed on the GPU; with gloo the
    shards are CPU tensors either way (device and host memory are the same memory), so only the
    step time changes.
    ``"tp"``, ``"pp"`` and ``"fsdp_tp"`` train the Llama of :mod:`llmlab.tinyllama` (``llama``
    overrides fields of its config) on a global batch of the same size: tensor parallelism splits
    every block over the ranks (Megatron-LM's column- then row-wise split), pipeline parallelism
    gives each rank an equal share of the blocks and runs ``pp_schedule`` ("gpipe" or "1f1b") over
    ``microbatches`` micro-batches, and ``fsdp_tp`` lays the ranks out as a 2-D mesh of
    world_size / t rows of t = ``tensor_parallel`` ranks (default :func:`default_tensor_parallel`):
    tensor parallelism within a row, FSDP2 (ZeRO-3) across the rows, each row taking its share of
    the global batch. Each of their ranks also trains one process on the whole batch, for the loss
    and step-0 gradient check. ``bubble_microbatches`` (with "pp"): micro-batch counts at which the
    pipeline's idle fraction per rank is measured (``bubble_repeats`` timed steps each, micro-batches
    of ``batch_size`` sequences, under each of ``bubble_schedules``: "gpipe", "1f1b", and
    "interleaved_1f1b" with two virtual stages per rank, at the counts that are a multiple of the ranks).
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
                                                    bubble_repeats=bubble_repeats, tensor_parallel=tensor_parallel,
                                                    bubble_schedules=bubble_schedules)
    spec = _spec(strategies, world_size, backend, sharding_factor, offload, steps, batch_size, seq_len, n_batches,
                 lr, seed, model, check_grads, fail_ranks, timeout_s, llama, microbatches, pp_schedule,
                 bubble_microbatches, bubble_repeats, tensor_parallel, bubble_schedules)
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
          bubble_repeats, tensor_parallel=None, bubble_schedules=PP_SCHEDULES) -> dict:
    from dataclasses import asdict

    if "fsdp_tp" in strategies and tensor_parallel is None:
        tensor_parallel = default_tensor_parallel(world_size)
    return dict(strategies=strategies, world_size=world_size, backend=backend, sharding_factor=sharding_factor,
                offload=offload, steps=steps, batch_size=batch_size, seq_len=seq_len, n_batches=n_batches, lr=lr,
                seed=seed, model=dict(STORIES_1M, **(model or {})), check_grads=check_grads,
                fail_ranks=list(fail_ranks), collective_timeout_s=max(5.0, float(timeout_s)), port=free_port(),
                llama=asdict(llama_config(llama)), microbatches=microbatches, pp_schedule=pp_schedule,
                bubble_microbatches=list(bubble_microbatches), bubble_schedules=list(bubble_schedules),
                bubble_repeats=bubble_repeats, tensor_parallel=tensor_parallel)


def write_spec(folder, strategies=STRATEGIES, world_size: int = 2, **settings) -> Path:
    """Check the arguments as :func:`run` does and write the run's ``spec.json`` into ``folder`` (created
    if missing); return its path. For launching the same workers yourself, for instance with torchrun::

        python -m torch.distributed.run --standalone --nproc-per-node=2 -m llmlab.distributed.worker SPEC

    (each rank then reads its rank and the rendezvous from torchrun's environment), then
    :func:`read_results` (``SPEC``). ``settings``: the keyword arguments of :func:`run`."""
    if not isinstance(folder, (str, os.PathLike)):
        raise _checks.ArgumentTypeError(f"folder must be a path (str or pathlib.Path), got {type(folder).__name__}")
    kw = dict(backend="auto", sharding_factor=None, offload=False, steps=4, batch_size=2, seq_len=32, n_batches=1,
              lr=3e-3, seed=0, model=None, timeout_s=120.0, check_grads=True, fail_ranks=(), llama=None,
              microbatches=2, pp_schedule="1f1b", bubble_microbatches=(), bubble_repeats=3, tensor_parallel=None,
              bubble_schedules=PP_SCHEDULES)
    unknown = sorted(set(settings) - set(kw))
    if unknown:
        raise ValueError(f"unknown settings {unknown}; allowed: {', '.join(kw)}")
    kw.update(settings)
    strategies, backend, sharding_factor = validate(
        strategies, world_size, kw["backend"], kw["sharding_factor"], kw["offload"], kw["steps"], kw["batch_size"],
        kw["seq_len"], kw["model"], kw["timeout_s"], lr=kw["lr"], seed=kw["seed"], n_batches=kw["n_batches"],
        check_grads=kw["check_grads"], fail_ranks=kw["fail_ranks"], llama=kw["llama"],
        microbatches=kw["microbatches"], pp_schedule=kw["pp_schedule"],
        bubble_microbatches=kw["bubble_microbatches"], bubble_repeats=kw["bubble_repeats"],
        tensor_parallel=kw["tensor_parallel"], bubble_schedules=kw["bubble_schedules"])
    kw.update(backend=backend, sharding_factor=sharding_factor)
    spec = _spec(strategies, world_size, **kw)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def _kill(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)  # the rank's own session: it and anything it started
            except ProcessLookupError:
                pass
    for p in procs:
        p.wait()


def _first_failure(workdir: Path, failed: list[int]) -> int:
    """The rank whose failure came first among ``failed``: one that left no traceback (killed by a
    signal) before one that did, then the earliest traceback written. Once one rank fails the others
    fail too (their peer is gone), often within the same poll, so the lowest rank is not always the cause."""
    def when(r: int) -> tuple[int, float, int]:
        err = workdir / f"rank{r}.error"
        return (1, err.stat().st_mtime_ns, r) if err.exists() else (0, 0.0, r)

    return min(failed, key=when)


def _launch(spec_path: Path, world_size: int, timeout_s: float) -> None:
    """Start one process per rank, wait for all; on the first failure or at the deadline kill them all."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    root = str(Path(__file__).resolve().parents[2])  # the folder that holds llmlab/
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    workdir = spec_path.parent
    procs: list[subprocess.Popen] = []
    logs = []
    try:
        for r in range(world_size):
            log = open(workdir / f"rank{r}.log", "w")
            logs.append(log)
            procs.append(subprocess.Popen([sys.executable, "-m", "llmlab.distributed.worker", str(spec_path), str(r)],
                                          env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + timeout_s
        while True:
            codes = [p.poll() for p in procs]
            failed = [r for r, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                # a rank still running may have written the traceback that made the others fail
                reported = [r for r, c in enumerate(codes) if c is None and (workdir / f"rank{r}.error").exists()]
                r = _first_failure(workdir, failed + reported)
                _kill(procs)
                err = workdir / f"rank{r}.error"
                detail = err.read_text() if err.exists() else (workdir / f"rank{r}.log").read_text()[-3000:]
                killed_by = -codes[r] if codes[r] is not None and codes[r] < 0 else None
                how = (f"was killed by signal {killed_by} ({signal.Signals(killed_by).name})" if killed_by
                       else f"failed (exit code {codes[r]})" if codes[r] is not None else "failed")
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
