"""Data parallelism: DistributedDataParallel (DDP) and ZeRO stage 1 (chapter 7).

Every rank holds the whole model and takes its own slice of the batch. After backward,
DDP averages the gradients over the ranks with an all-reduce, bucket by bucket, so every
replica takes the same optimizer step. ZeRO-1 keeps DDP and shards only Adam's states:
``ZeroRedundancyOptimizer`` gives each rank the states of a share of the parameters.
Sharding the gradients and the parameters too is :mod:`llmlab.distributed.fsdp`.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

from .. import _checks


def allreduce_hook(group, bucket):  # returns a completed Future[torch.Tensor]
    """DDP communication hook: divide the bucket by the world size, all-reduce it, wait.

    torch's ``default_hooks.allreduce_hook`` does the same but returns
    ``fut.then(lambda ...)``, whose Python callback then runs on one of gloo's own
    threads when the all-reduce completes. Python code on those threads while the
    profiler's Python tracer is active (the profiled step, :mod:`llmlab.peak`) is a
    known source of native crashes, so this hook waits in the calling thread and hands
    DDP a future that is already complete. The price is DDP's overlap of communication
    with computation: the backward pass waits for each bucket instead of running on
    while the bucket travels, so these runs' DDP step times include that wait. The
    gradients, the bytes sent and the memory are those of the default hook."""
    if not callable(getattr(bucket, "buffer", None)):
        raise _checks.ArgumentTypeError(
            f"bucket must be DDP's GradBucket, got {type(bucket).__name__}")
    tensor = bucket.buffer()
    tensor.div_(dist.get_world_size(group))
    dist.all_reduce(tensor, group=group, async_op=True).wait()
    done: torch.futures.Future[torch.Tensor] = torch.futures.Future()
    done.set_result(tensor)
    return done


def wrap_ddp(model: nn.Module, device: torch.device) -> DDP:
    """``model`` (already on ``device``) wrapped in DDP: a full replica on this rank,
    gradients averaged over all ranks during backward."""
    ddp = DDP(model, device_ids=[device.index] if device.type == "cuda" else None,
              gradient_as_bucket_view=True)
    # what DDP's default hook does (average each bucket by an all-reduce), written out
    # so that the all-reduce goes through the Python call that the runs count
    ddp.register_comm_hook(dist.group.WORLD, allreduce_hook)
    return ddp


def zero1_optimizer(params, lr: float) -> torch.optim.Optimizer:
    """Adam with its states sharded over the ranks (ZeRO stage 1): each rank keeps and
    updates the states of its share of whole parameters, then broadcasts them."""
    lr = _checks.positive("lr", lr)
    params = list(params)
    if not params:
        raise ValueError("params is empty: pass model.parameters() of a model")
    # imported here: importing torch.distributed.optim warns about torch.jit.script
    from torch.distributed.optim import ZeroRedundancyOptimizer

    return ZeroRedundancyOptimizer(params, optimizer_class=torch.optim.Adam, lr=lr)
