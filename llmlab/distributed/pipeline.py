"""Pipeline parallelism on the Llama of :mod:`llmlab.tinyllama` (chapter 7).

Each rank keeps a consecutive share of the blocks (the first rank also the embeddings,
the last the final norm and the output layer) and sends activations forward and their
gradients back to its neighbours. The batch is cut into micro-batches that follow each
other through the stages: GPipe (Huang et al. 2019) runs every forward, then every
backward; 1F1B (Narayanan et al. 2021) alternates them as soon as it can, which keeps
fewer micro-batches' activations alive. ``torch.distributed.pipelining`` provides both.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe

from ..tinyllama import TinyLlama

SCHEDULES = {"gpipe": ScheduleGPipe, "1f1b": Schedule1F1B}


def pipeline_stage(model: TinyLlama, rank: int, world_size: int,
                   device: torch.device) -> PipelineStage:
    """This rank's stage: ``model`` cut down (in place) to an equal share of its
    blocks."""
    n = model.config.num_hidden_layers
    model.keep(rank * n // world_size, (rank + 1) * n // world_size)
    return PipelineStage(model, rank, world_size, device)


def micro_batch_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean next-token loss over a micro-batch (the schedule divides the gradients by
    the number of micro-batches, so their sum is the whole batch's gradient)."""
    return F.cross_entropy(logits.flatten(0, 1), target.flatten())


def pipeline_schedule(stage: PipelineStage, n_microbatches: int, name: str = "1f1b"):
    """The schedule ``name`` ("gpipe" or "1f1b") of ``stage``, ``n_microbatches``
    micro-batches per step."""
    schedule = SCHEDULES[name]
    return schedule(stage, n_microbatches=n_microbatches, loss_fn=micro_batch_loss)


def pipeline_step(schedule, batch: torch.Tensor) -> float | None:
    """One pipelined forward and backward of ``batch`` (B, T+1 token ids): the first
    rank feeds the inputs, the last the targets. Returns the mean loss on the last
    rank, None on the others."""
    rank, world = dist.get_rank(), dist.get_world_size()
    losses: list[torch.Tensor] = []
    if rank == 0 and world > 1:
        schedule.step(batch[:, :-1])
    elif rank == world - 1:
        inputs = () if world > 1 else (batch[:, :-1],)
        schedule.step(*inputs, target=batch[:, 1:], losses=losses)
    else:
        schedule.step()
    return sum(float(v) for v in losses) / len(losses) if losses else None
