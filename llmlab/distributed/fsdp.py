"""Fully sharded data parallelism with FSDP2's ``fully_shard`` (chapter 7).

Each rank keeps a shard of every parameter, of its gradient and of its Adam states.
``fully_shard`` is applied to every transformer block, then to the whole model: each
block is a unit whose parameters are all-gathered just before it computes and freed
after, and whose gradients are reduce-scattered as soon as its backward is done.
``reshard_after_forward=True`` frees the gathered parameters after forward and gathers
them again for backward (ZeRO-3, ``FULL_SHARD``); ``False`` keeps them until backward
(ZeRO-2, ``SHARD_GRAD_OP``). On a 2-D mesh (replicas x shards) FSDP2 shards within a
group and replicates across the groups (hybrid sharding, HSDP).
"""

from __future__ import annotations

import torch.nn as nn
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.fsdp import CPUOffloadPolicy, OffloadPolicy, fully_shard

from .. import _checks


def fsdp_mesh(device_type: str, world_size: int,
              sharding_factor: int | None = None) -> DeviceMesh:
    """The ranks as FSDP sees them: one dimension of ``world_size`` shards, or, with
    a ``sharding_factor`` f, world_size / f replicas of f shards (hybrid sharding).
    ``device_type``: "cpu" (gloo) or "cuda" (nccl)."""
    if sharding_factor is None:
        return init_device_mesh(device_type, (world_size,), mesh_dim_names=("shard",))
    replicas = world_size // sharding_factor
    return init_device_mesh(device_type, (replicas, sharding_factor),
                            mesh_dim_names=("replicate", "shard"))


def transformer_blocks(model: nn.Module) -> list[nn.Module]:
    """The blocks of llmlab's GPT-2 (``model.h``) or Llama (``model.layers``)."""
    _checks.model("model", model)
    if not (hasattr(model, "h") or hasattr(getattr(model, "layers", None), "values")):
        raise _checks.ArgumentTypeError(
            "model must be llmlab's TinyGPT2 (blocks in model.h) or TinyLlama "
            f"(model.layers), got {type(model).__name__}")
    return list(model.h) if hasattr(model, "h") else list(model.layers.values())


def apply_fsdp(model: nn.Module, mesh: DeviceMesh, *,
               reshard_after_forward: bool = True, offload: bool = False,
               pin_memory: bool = False) -> nn.Module:
    """Shard ``model`` over ``mesh`` with ``fully_shard``: every block, then the root
    (embeddings, final norm, output layer). ``offload``: CPUOffloadPolicy, shards kept
    in CPU memory (``pin_memory`` needs CUDA). Returns the model, changed in place."""
    policy = CPUOffloadPolicy(pin_memory=pin_memory) if offload else OffloadPolicy()
    for block in transformer_blocks(model):
        fully_shard(block, mesh=mesh, reshard_after_forward=reshard_after_forward,
                    offload_policy=policy)
    # reshard_after_forward given explicitly: left at its default, FSDP2 keeps the
    # root's parameters unsharded from forward to backward
    fully_shard(model, mesh=mesh, reshard_after_forward=reshard_after_forward,
                offload_policy=policy)
    return model
