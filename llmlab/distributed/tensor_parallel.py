"""Tensor parallelism on the Llama of :mod:`llmlab.tinyllama` (chapter 7).

Megatron-LM's split of a block (Shoeybi et al. 2019): the matrices that read the block's
input are cut by output columns, so each rank computes some attention heads and some
MLP units from the whole input; the matrices that write back are cut by input rows, so
each rank gets a partial sum of the output, and one all-reduce adds the partial sums.
PyTorch writes this as a plan for ``parallelize_module``. Embeddings, norms and the
output layer stay whole on every rank.
"""

from __future__ import annotations

from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.tensor.parallel import (
    ColwiseParallel,
    RowwiseParallel,
    parallelize_module,
)

from ..tinyllama import TinyLlama

# the split of every block: "colwise" reads the block's input, "rowwise" writes back
TP_PLAN = {"self_attn.q_proj": "colwise", "self_attn.k_proj": "colwise",
           "self_attn.v_proj": "colwise", "self_attn.o_proj": "rowwise",
           "mlp.gate_proj": "colwise", "mlp.up_proj": "colwise",
           "mlp.down_proj": "rowwise"}


def tp_mesh(device_type: str, world_size: int) -> DeviceMesh:
    """All ``world_size`` ranks in one tensor-parallel group ("cpu" or "cuda")."""
    return init_device_mesh(device_type, (world_size,), mesh_dim_names=("tp",))


def apply_tp(model: TinyLlama, mesh: DeviceMesh) -> TinyLlama:
    """Split every block of ``model`` over the t ranks of ``mesh`` (1-D) by
    :data:`TP_PLAN`. Returns the model, changed in place."""
    t = mesh.size()
    styles = {"colwise": ColwiseParallel, "rowwise": RowwiseParallel}
    for block in model.layers.values():
        plan = {name: styles[kind]() for name, kind in TP_PLAN.items()}
        parallelize_module(block, mesh, plan)
        block.self_attn.n_heads //= t      # each rank now computes H / t query heads
        block.self_attn.n_kv_heads //= t   # and KV / t key-value heads
    return model
