"""Two dimensions at once: FSDP across the rows of a device mesh, tensor parallelism
within each row (chapter 7).

The ranks form a 2-D DeviceMesh of world_size / t rows ("dp") of t ranks ("tp"). Tensor
parallelism (:func:`llmlab.distributed.tensor_parallel.apply_tp`) splits every block
within a row; FSDP2 (:func:`llmlab.distributed.fsdp.apply_fsdp`, ZeRO-3) then shards
those tensor-parallel shards again across the rows. Each row trains on its own share of
the global batch. The order matters, as in torchtitan: tensor parallelism first, FSDP
around it.
"""

from __future__ import annotations

from torch.distributed.device_mesh import DeviceMesh, init_device_mesh

from ..tinyllama import TinyLlama
from .fsdp import apply_fsdp
from .tensor_parallel import apply_tp


def fsdp_tp_mesh(device_type: str, world_size: int, tp: int) -> DeviceMesh:
    """A (data, tensor) mesh of world_size / ``tp`` rows of ``tp`` ranks."""
    return init_device_mesh(device_type, (world_size // tp, tp),
                            mesh_dim_names=("dp", "tp"))


def apply_fsdp_tp(model: TinyLlama, mesh: DeviceMesh) -> TinyLlama:
    """Tensor parallelism within each row of ``mesh``, then FSDP2 (every block, then
    the root) across the rows. Returns the model, changed in place."""
    apply_tp(model, mesh["tp"])
    apply_fsdp(model, mesh["dp"], reshard_after_forward=True)
    return model
