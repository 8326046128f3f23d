"""What a run of :func:`llmlab.distributed.launcher.run` returns (chapter 7): the strategy names, the result
types and the reading of the ranks' result files.

* :class:`RankResult`: what one rank measured under one strategy (bytes, seconds, nats);
* :class:`RunResult`: all ranks of all strategies of one run, with the settings it ran with;
* :class:`DistributedRunError`: a rank failed or the run timed out;
* :func:`read_results`: the :class:`RunResult` of the ``rank<r>.json`` files the workers
  (:mod:`llmlab.distributed.worker`) wrote beside a ``spec.json``.

Imports go one way: the launcher (:mod:`llmlab.distributed.launcher`) and the tables
(:mod:`llmlab.distributed.tables`) import this module; it imports none of them.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import _checks
from ..tinygpt2 import STORIES_1M

STRATEGIES = ("ddp", "zero1", "zero2", "zero3", "hybrid")  # data parallel: the GPT-2 workers
# the Llama workers (llmlab.tinyllama): tensor parallel, pipeline parallel, and FSDP x tensor parallel
MODEL_PARALLEL = ("tp", "pp", "fsdp_tp")
ALL_STRATEGIES = STRATEGIES + MODEL_PARALLEL
PP_SCHEDULES = ("gpipe", "1f1b")
# the bubble can also be measured under interleaved 1F1B (two virtual stages per rank)
BUBBLE_SCHEDULES = PP_SCHEDULES + ("interleaved_1f1b",)
FSDP_STRATEGIES = ("zero2", "zero3", "hybrid")  # the strategies FSDP2's CPUOffloadPolicy applies to


class DistributedRunError(RuntimeError):
    """A rank failed or the run timed out. ``pids`` are the ranks' process ids (all ended)."""

    def __init__(self, message: str, pids: list[int], signal: int | None = None) -> None:
        super().__init__(message)
        self.pids = pids
        self.signal = signal  # the signal that killed the failed rank (11: a crash in native code), if any


def check_result(result) -> RunResult:
    """``result`` itself if it is a :class:`RunResult`, else a TypeError saying what is expected."""
    if not isinstance(result, RunResult):
        raise _checks.ArgumentTypeError(f"result must be the RunResult returned by distributed.launcher.run(), "
                                        f"got {type(result).__name__}")
    return result


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
    """All ranks of all strategies of one :func:`llmlab.distributed.launcher.run`."""

    world_size: int
    backend: str
    sharding_factor: int | None
    ranks: list[RankResult]
    param_shapes: list[tuple[int, ...]]
    wall_s: float
    # model (the GPT-2 settings), batch_size, seq_len, steps, llama, microbatches, pp_schedule,
    # tensor_parallel (the 2-D run's), offload
    settings: dict = field(default_factory=dict)
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
        tensor parallelism every rank has the whole loss, under pipeline parallelism the last rank.
        (Under ``fsdp_tp`` the ranks of a tensor-parallel pair hold the same loss, so the mean over
        all ranks is the mean over the data-parallel shards.)"""
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
    from ..tinygpt2 import TinyGPT2

    if model is not None and not isinstance(model, dict):
        raise _checks.ArgumentTypeError(f"model must be a dict of GPT-2 settings (keys of STORIES_1M) or None, "
                                        f"got {type(model).__name__} {model!r}")
    unknown = set(model or {}) - set(STORIES_1M) - {"layer_norm_epsilon"}
    if unknown:
        raise ValueError(f"unknown model settings {sorted(unknown)}; allowed: {sorted(STORIES_1M)}")
    with torch.device("meta"):
        net = TinyGPT2(**dict(STORIES_1M, **(model or {})))
    return [tuple(p.shape) for p in net.parameters()]


def read_results(spec_path, wall_s: float = 0.0) -> RunResult:
    """The :class:`RunResult` of the workers that ran ``spec_path`` (their ``rank<r>.json`` beside it)."""
    if not isinstance(spec_path, (str, os.PathLike)):
        raise _checks.ArgumentTypeError(f"spec_path must be a path to a spec.json, got {type(spec_path).__name__}")
    spec_path = Path(spec_path)
    if not spec_path.is_file():
        raise ValueError(f"no spec file at {str(spec_path)!r}; write one with distributed.launcher.write_spec")
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
                          pp_schedule=spec["pp_schedule"], tensor_parallel=spec.get("tensor_parallel"),
                          offload=spec.get("offload", False)))
