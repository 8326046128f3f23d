"""FSDP2 pads every rank's shard in memory: llmlab's exact accounting against torch's fully_shard."""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.testing._internal.distributed.fake_pg import FakeStore

from llmlab import memory
from llmlab.distributed.measure import allocated_bytes, nbytes


@pytest.fixture
def last_of_two_ranks():
    """A process that plays rank 1 of 2 on a fake process group (no communication)."""
    dist.init_process_group("fake", store=FakeStore(), rank=1, world_size=2)
    yield init_device_mesh("cpu", (2,))
    dist.destroy_process_group()


def test_fsdp2_allocates_the_padded_shard_and_shows_a_narrowed_view(last_of_two_ranks):
    model = torch.nn.Sequential(torch.nn.Linear(4, 7), torch.nn.Linear(7, 3))
    shapes = [tuple(p.shape) for p in model.parameters()]
    fully_shard(model, mesh=last_of_two_ranks)
    for p, shape in zip(model.parameters(), shapes):
        assert p.to_local().numel() == memory.fsdp_shard_numel(shape, 2, 1)
        assert p.to_local().untyped_storage().nbytes() == 4 * memory.fsdp_padded_shard_numel(shape, 2)
    params = list(model.parameters())
    padded = sum(memory.fsdp_padded_shard_numel(s, 2) for s in shapes)
    assert allocated_bytes(params) == 4 * padded
    # summing the views under-counts the last rank's odd rows
    assert sum(nbytes(p) for p in params) == 4 * sum(memory.fsdp_shard_numel(s, 2, 1) for s in shapes)
    assert sum(nbytes(p) for p in params) < allocated_bytes(params)


def test_padded_shard_is_shard_zero_on_every_rank():
    for rows in (1, 5, 7, 8):
        for n in (1, 2, 3, 4):
            assert memory.fsdp_padded_shard_numel((rows, 3), n) == memory.fsdp_shard_numel((rows, 3), n, 0)
    assert memory.fsdp_padded_shard_numel((), 4) == 1


def test_exact_accounting_pads_parameters_and_gradients_not_adam_states():
    shapes = [(7, 4), (7,), (3, 7), (3,)]
    full = sum(math.prod(s) for s in shapes)
    padded = sum(memory.fsdp_padded_shard_numel(s, 2) for s in shapes)
    last = memory.rank_states_exact(shapes, "zero3", 2, 1)
    assert (last.params, last.grads) == (4 * padded, 4 * padded)
    assert last.optimizer == 8 * sum(memory.fsdp_shard_numel(s, 2, 1) for s in shapes)
    zero2 = memory.rank_states_exact(shapes, "zero2", 2, 0)
    assert zero2.params == 4 * 2 * padded > 4 * full  # gathered: two padded shards of each tensor
    ddp = memory.rank_states_exact(shapes, "ddp", 2, 1)
    assert (ddp.params, ddp.grads, ddp.optimizer) == (4 * full, 4 * full, 8 * full)


def test_allocated_bytes_counts_a_shared_buffer_once():
    buf = torch.zeros(10)
    assert allocated_bytes([buf[:3], buf[3:]]) == 40
    with pytest.raises(TypeError, match="iterable"):
        allocated_bytes(buf)


def test_fsdp2_offload_moves_the_parameter_shards_too_zero_offload_keeps_them():
    zero = memory.sharded_gpu_memory(13e9, 8, 8, 3, offload=True)
    fsdp2 = memory.sharded_gpu_memory(13e9, 8, 8, 3, offload="fsdp2")
    none = memory.sharded_gpu_memory(13e9, 8, 8, 3)
    assert zero.params == none.params > 0 and zero.grads == zero.optimizer == 0
    assert fsdp2.params == fsdp2.grads == fsdp2.optimizer == 0
    assert fsdp2.offloaded == pytest.approx(none.params + none.grads + none.optimizer)
    # without resharding after forward the gathered parameters stay on the GPU through the step
    assert memory.sharded_gpu_memory(13e9, 8, 8, 2, offload="fsdp2").params == none.params * 8
