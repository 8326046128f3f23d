"""Pipeline parallelism on the Llama of :mod:`llmlab.tinyllama` (chapter 7).

Each rank keeps a consecutive share of the blocks (the first rank also the embeddings,
the last the final norm and the output layer) and sends activations forward and their
gradients back to its neighbours. The batch is cut into micro-batches that follow each
other through the stages: GPipe (Huang et al. 2019) runs every forward, then every
backward; 1F1B (Narayanan et al. 2021) alternates them as soon as it can, which keeps
fewer micro-batches' activations alive. Interleaved 1F1B (Narayanan et al. 2021) gives
each rank several non-consecutive chunks of blocks (virtual stages), which divides the
bubble by the number of chunks at the price of more sends.
``torch.distributed.pipelining`` provides all three.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.distributed.pipelining import (
    PipelineStage,
    Schedule1F1B,
    ScheduleGPipe,
    ScheduleInterleaved1F1B,
)

from .. import _checks
from ..tinyllama import TinyLlama

SCHEDULES = {"gpipe": ScheduleGPipe, "1f1b": Schedule1F1B}
# schedules over several stages per rank (virtual stages), built by interleaved_stages
MULTI_STAGE_SCHEDULES = {"interleaved_1f1b": ScheduleInterleaved1F1B}


def pipeline_stage(model: TinyLlama, rank: int, world_size: int,
                   device: torch.device) -> PipelineStage:
    """This rank's stage: ``model`` cut down (in place) to an equal share of its
    blocks."""
    if not isinstance(model, TinyLlama):
        raise _checks.ArgumentTypeError(
            f"model must be an llmlab.tinyllama.TinyLlama, got {type(model).__name__}")
    world_size = _checks.positive_int("world_size", world_size)
    rank = _checks.integer("rank", rank, 0, world_size - 1)
    if world_size > model.config.num_hidden_layers:
        raise ValueError(
            f"world_size ({world_size}) must not exceed the model's blocks "
            f"({model.config.num_hidden_layers}): every stage needs one")
    device = _checks.device("device", device)
    n = model.config.num_hidden_layers
    model.keep(rank * n // world_size, (rank + 1) * n // world_size)
    return PipelineStage(model, rank, world_size, device)


def interleaved_stages(make_model: Callable[[], TinyLlama], rank: int, world_size: int,
                       device: torch.device, chunks: int = 2) -> list[PipelineStage]:
    """This rank's ``chunks`` virtual stages for interleaved 1F1B: the blocks cut into
    world_size x chunks stages, stage s on rank s % world_size (rank 0 holds stages 0,
    world_size, ...). ``make_model()`` returns a fresh TinyLlama (the same weights each
    time), cut down in place for each stage."""
    if not callable(make_model):
        raise _checks.ArgumentTypeError(
            "make_model must be a callable returning a TinyLlama, got "
            f"{type(make_model).__name__}")
    world_size = _checks.positive_int("world_size", world_size)
    rank = _checks.integer("rank", rank, 0, world_size - 1)
    chunks = _checks.positive_int("chunks", chunks)
    device = _checks.device("device", device)
    n_stages = world_size * chunks
    stages = []
    for k in range(chunks):
        model = make_model()
        if not isinstance(model, TinyLlama):
            raise _checks.ArgumentTypeError(
                f"make_model must return a TinyLlama, got {type(model).__name__}")
        n = model.config.num_hidden_layers
        if n_stages > n:
            raise ValueError(f"world_size x chunks ({n_stages}) must not exceed the "
                             f"model's blocks ({n}): every virtual stage needs one")
        s = rank + k * world_size
        model.keep(s * n // n_stages, (s + 1) * n // n_stages)
        stages.append(PipelineStage(model.to(device), s, n_stages, device))
    return stages


def micro_batch_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean next-token loss over a micro-batch (the schedule divides the gradients by
    the number of micro-batches, so their sum is the whole batch's gradient)."""
    _checks.tensor("logits", logits, dims=3)
    target = _checks.tensor("target", target, dims=2)
    _checks.token_ids("target", target, logits.size(-1))
    if logits.shape[:2] != target.shape:
        raise ValueError(
            "logits (B, T, V) and target (B, T) must agree in B and T, got "
            f"{tuple(logits.shape)} and {tuple(target.shape)}")
    return F.cross_entropy(logits.flatten(0, 1), target.flatten())


def pipeline_schedule(stage: PipelineStage, n_microbatches: int, name: str = "1f1b"):
    """The schedule ``name`` ("gpipe" or "1f1b") of ``stage``, ``n_microbatches``
    micro-batches per step; "interleaved_1f1b" takes this rank's list of stages
    (:func:`interleaved_stages`)."""
    if name in MULTI_STAGE_SCHEDULES:
        if not (isinstance(stage, list) and stage
                and all(isinstance(s, PipelineStage) for s in stage)):
            raise _checks.ArgumentTypeError(
                f"schedule {name!r} needs a list of PipelineStages "
                f"(from interleaved_stages), got {type(stage).__name__}")
        m = _checks.positive_int("n_microbatches", n_microbatches)
        return MULTI_STAGE_SCHEDULES[name](stage, n_microbatches=m,
                                           loss_fn=micro_batch_loss)
    if not isinstance(stage, PipelineStage):
        raise _checks.ArgumentTypeError(
            "stage must be a PipelineStage (from pipeline_stage), "
            f"got {type(stage).__name__}")
    _checks.positive_int("n_microbatches", n_microbatches)
    schedule = SCHEDULES[_checks.choice("name", name, tuple(SCHEDULES))]
    return schedule(stage, n_microbatches=n_microbatches, loss_fn=micro_batch_loss)


def pipeline_step(schedule, batch: torch.Tensor) -> float | None:
    """One pipelined forward and backward of ``batch`` (B, T+1 token ids): the first
    rank feeds the inputs, the last the targets. Returns the mean loss on the last
    rank, None on the others."""
    if not callable(getattr(schedule, "step", None)):
        raise _checks.ArgumentTypeError("schedule must be a pipeline schedule (from "
                                        "pipeline_schedule), got "
                                        f"{type(schedule).__name__}")
    batch = _checks.tensor("batch", batch, dims=2)
    _checks.token_ids("batch", batch, None)
    if batch.size(1) < 2:
        raise ValueError("batch must hold at least 2 tokens per row (inputs and "
                         f"targets), got shape {tuple(batch.shape)}")
    rank, world = dist.get_rank(), dist.get_world_size()
    losses: list[torch.Tensor] = []
    if rank == 0 and world > 1:
        schedule.step(batch[:, :-1])
    elif rank == world - 1:
        inputs = () if world > 1 else (batch[:, :-1],)
        schedule.step(*inputs, target=batch[:, 1:], losses=losses)
    else:
        schedule.step()
    return sum(float(v.detach()) for v in losses) / len(losses) if losses else None
