"""One rank of a run of :mod:`llmlab.distributed` (chapter 7). Not for direct use.

Started by :func:`llmlab.distributed.run` as ``python -m llmlab._dist_worker SPEC.json RANK``, or by
torchrun as ``torchrun --standalone --nproc-per-node=N -m llmlab._dist_worker SPEC.json`` (the rank
and the rendezvous then come from torchrun's environment: ``RANK``, ``MASTER_ADDR``, ``MASTER_PORT``):
joins the process group, trains the same small GPT-2 (data parallel) or Llama (tensor, pipeline
and 2-D parallel) under each requested strategy on the same data, measures what this rank holds
and sends, and writes ``rank<RANK>.json`` next to the spec (or ``rank<RANK>.error`` with the
traceback when it fails). It imports no other part of :mod:`llmlab.distributed`: the spec is
plain JSON, the results too (:func:`llmlab.dist_results.read_results` reads them).
"""

from __future__ import annotations

import faulthandler
import gc
import json
import os
import signal
import sys
import time
import traceback
from collections import defaultdict
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from llmlab import peak

# the models live in their own modules; imported here for the strategies (and older imports)
from llmlab.tinygpt2 import TinyGPT2  # noqa: F401
from llmlab.tinygpt2 import lm_loss as gpt2_loss
from llmlab.tinyllama import TinyLlama, TinyLlamaConfig, lm_loss

# --------------------------------------------------------------------------- counting collectives

_COLLECTIVES = ("all_reduce", "broadcast", "all_gather_single", "all_gather_into_tensor",
                "reduce_scatter_single", "reduce_scatter_tensor")


class CommCounter:
    """Wraps torch.distributed's collectives to add up, per kind, the bytes of the tensors each
    call hands over: the all-reduced or broadcast tensor, the all-gather's output (whole, gathered)
    and the reduce-scatter's input (whole, before scattering)."""

    def __init__(self) -> None:
        self.bytes: dict[str, int] = defaultdict(int)
        self.calls: dict[str, int] = defaultdict(int)
        self.active = False
        self._orig = {name: getattr(dist, name) for name in _COLLECTIVES}
        for name in _COLLECTIVES:
            setattr(dist, name, self._wrap(name, self._orig[name]))

    def _wrap(self, name, fn):
        def counted(*args, **kwargs):
            if self.active:
                if name in ("all_gather_single", "all_gather_into_tensor"):
                    t = kwargs.get("output_tensor", args[0] if args else None)
                elif name in ("reduce_scatter_single", "reduce_scatter_tensor"):
                    t = kwargs.get("input", args[1] if len(args) > 1 else None)
                else:
                    t = kwargs.get("tensor", args[0] if args else None)
                group = kwargs.get("group")
                key = f"{name}@{dist.get_world_size(group)}"  # the kind and the size of the group
                self.bytes[key] += t.numel() * t.element_size()
                self.calls[key] += 1
            return fn(*args, **kwargs)
        return counted

    def take(self) -> dict:
        out = {"bytes": dict(self.bytes), "calls": dict(self.calls)}
        self.bytes.clear()
        self.calls.clear()
        return out


# --------------------------------------------------------------------------- measuring


def _local(t: torch.Tensor) -> torch.Tensor:
    return t.to_local() if hasattr(t, "to_local") else t


def _nbytes(t: torch.Tensor) -> int:
    t = _local(t)
    return t.numel() * t.element_size()


def _optimizer_bytes(opt) -> tuple[int, int]:
    inner = getattr(opt, "optim", opt)  # ZeroRedundancyOptimizer keeps this rank's states in .optim
    big = scalars = 0
    for state in inner.state.values():
        for v in state.values():
            if isinstance(v, torch.Tensor):
                if _local(v).numel() <= 1:
                    scalars += _nbytes(v)
                else:
                    big += _nbytes(v)
    return big, scalars


# --------------------------------------------------------------------------- one strategy


def _allreduce_bucket(group, bucket):  # returns a completed torch.futures.Future[torch.Tensor]
    """DDP communication hook: divide the bucket by the world size, all-reduce it, wait.

    torch's ``default_hooks.allreduce_hook`` does the same but returns ``fut.then(lambda ...)``,
    whose Python callback then runs on one of gloo's own threads when the all-reduce completes.
    Python code on those threads while the profiler's Python tracer is active (the profiled
    step, :mod:`llmlab.peak`) is a known source of native crashes, so this hook waits in the
    calling thread and hands DDP a future that is already complete. The price is DDP's overlap
    of communication with computation: the backward pass waits for each bucket instead of
    running on while the bucket travels, so these runs' DDP step times include that wait. The
    gradients, the bytes sent and the memory are those of the default hook."""
    tensor = bucket.buffer()
    tensor.div_(dist.get_world_size(group))
    dist.all_reduce(tensor, group=group, async_op=True).wait()
    done: torch.futures.Future[torch.Tensor] = torch.futures.Future()
    done.set_result(tensor)
    return done


def _wrap(model: nn.Module, strategy: str, spec: dict, device: torch.device):
    """Return (model, optimizer) for ``strategy``."""
    world = dist.get_world_size()
    lr = spec["lr"]
    if strategy in ("ddp", "zero1"):
        from torch.nn.parallel import DistributedDataParallel as DDP
        ddp = DDP(model, device_ids=[device.index] if device.type == "cuda" else None,
                  gradient_as_bucket_view=True)
        # what DDP's default hook does (average each bucket by an all-reduce), written out so that the
        # all-reduce goes through the (counted) Python call
        ddp.register_comm_hook(dist.group.WORLD, _allreduce_bucket)
        if strategy == "ddp":
            return ddp, torch.optim.Adam(ddp.parameters(), lr=lr)
        from torch.distributed.optim import ZeroRedundancyOptimizer
        return ddp, ZeroRedundancyOptimizer(ddp.parameters(), optimizer_class=torch.optim.Adam, lr=lr)
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import CPUOffloadPolicy, OffloadPolicy, fully_shard
    mesh_device = "cuda" if device.type == "cuda" else "cpu"
    if strategy == "hybrid":
        f = spec["sharding_factor"]
        mesh = init_device_mesh(mesh_device, (world // f, f), mesh_dim_names=("replicate", "shard"))
    else:
        mesh = init_device_mesh(mesh_device, (world,), mesh_dim_names=("shard",))
    reshard = strategy != "zero2"
    # pinned host memory needs CUDA; with gloo the shards are CPU tensors already
    policy = CPUOffloadPolicy(pin_memory=device.type == "cuda") if spec["offload"] else OffloadPolicy()
    for block in model.h:
        fully_shard(block, mesh=mesh, reshard_after_forward=reshard, offload_policy=policy)
    # reshard_after_forward given explicitly: left at its default, FSDP2 keeps the root's parameters
    # unsharded from forward to backward
    fully_shard(model, mesh=mesh, reshard_after_forward=reshard, offload_policy=policy)
    return model, torch.optim.Adam(model.parameters(), lr=lr)


def _peak_dict(result) -> dict:
    return {"peak_bytes": result.peak_bytes, "baseline_bytes": result.baseline_bytes, "method": result.method,
            "at_peak": result.at_peak, "note": result.note}


def run_strategy(strategy: str, spec: dict, data: torch.Tensor, device: torch.device, counter: CommCounter) -> dict:
    rank, world = dist.get_rank(), dist.get_world_size()
    profiled_step_s = 0.0
    torch.manual_seed(spec["seed"])  # same initial weights on every rank and for every strategy
    model = TinyGPT2(**spec["model"]).to(device)
    model, opt = _wrap(model, strategy, spec, device)
    held_in_step: list[int] = []

    def after_forward(module, args, output):  # parameters this rank holds between forward and backward
        held_in_step.append(sum(_nbytes(p) for p in module.parameters()))

    inner = getattr(model, "module", model)
    handle = inner.register_forward_hook(after_forward)
    b = spec["batch_size"]
    losses, times, comm = [], [], []
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    grad_bytes = 0
    grads_step0 = None
    measured_step = spec["steps"] - 1  # the last step: Adam's states exist, as in every later step
    peak_result = None
    for step in range(spec["steps"]):
        batch = data[step % data.size(0), rank * b:(rank + 1) * b].to(device)
        dist.barrier()
        t0 = time.perf_counter()

        def forward_backward_step():
            counter.active = True
            loss = gpt2_loss(model, batch)
            loss.backward()
            counter.active = False
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            counter.active = True
            opt.step()
            counter.active = False
            if device.type == "cuda":
                torch.cuda.synchronize()
            return loss, grads

        if step == measured_step:
            # what this rank holds as the step starts: its parameters (shards), Adam's states and, under
            # DDP, the gradient buckets, which DDP keeps from step to step (``set_to_none`` only drops
            # the views into them); FSDP frees its gradients
            opt_big, opt_small = _optimizer_bytes(opt)
            resident = sum(_nbytes(p) for p in model.parameters()) + opt_big + opt_small
            if strategy in ("ddp", "zero1"):
                resident += sum(_nbytes(p) for p in model.parameters())
            peak_result = peak.measure(forward_backward_step, device=device)
            loss, grads = peak_result.result
        else:
            loss, grads = forward_backward_step()
        elapsed = time.perf_counter() - t0
        if step != measured_step or spec["steps"] == 1:
            times.append(elapsed)  # the profiled step is slower: its time is kept apart
        else:
            profiled_step_s = elapsed
        grad_bytes = sum(_nbytes(g) for g in grads)
        if step == 0 and spec["check_grads"] and strategy == "ddp":
            grads_step0 = [p.grad.detach().clone() for p in inner.parameters()]
        del grads
        if step < spec["steps"] - 1:
            opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        comm.append(counter.take())
    handle.remove()
    opt_bytes, opt_scalars = _optimizer_bytes(opt)
    out = {
        "strategy": strategy, "rank": rank, "world_size": world,
        "params": held_in_step[-1], "params_at_rest": sum(_nbytes(p) for p in model.parameters()),
        "grads": grad_bytes, "optimizer": opt_bytes, "optimizer_scalars": opt_scalars,
        "losses": losses, "step_times": times, "comm": comm[-1],
        "peak_cuda_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
        "peak": dict(_peak_dict(peak_result), resident_at_entry=resident),
        "profiled_step_s": profiled_step_s if spec["steps"] > 1 else times[-1],
        # where this rank's parameter shards live (CPUOffloadPolicy moves them to "cpu"; with gloo they
        # are there already)
        "param_devices": sorted({str(_local(p).device) for p in model.parameters()}),
    }
    if strategy == "ddp":
        # replicas identical after the steps: compare every rank's flat parameters with rank 0's
        flat = torch.cat([p.detach().flatten() for p in inner.parameters()])
        ref = flat.clone()
        dist.broadcast(ref, src=0)
        out["max_param_diff_to_rank0"] = (flat - ref).abs().max().item()
        if grads_step0 is not None and rank == 0:
            out.update(_single_process_reference(spec, data, grads_step0, device))
    model = opt = inner = None  # the step closure holds them too; dropping the names frees them
    gc.collect()  # free this strategy's model before the next one is built (and measured, on CUDA)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


def _single_process_reference(spec: dict, data: torch.Tensor, ddp_grads: list[torch.Tensor],
                              device: torch.device) -> dict:
    """One process, the whole global batch: gradients of step 0 and the loss curve (rank 0 only)."""
    torch.manual_seed(spec["seed"])
    model = TinyGPT2(**spec["model"]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=spec["lr"])
    losses, max_diff, max_grad = [], 0.0, 0.0
    for step in range(spec["steps"]):
        loss = gpt2_loss(model, data[step % data.size(0)].to(device))
        loss.backward()
        if step == 0:
            for p, g in zip(model.parameters(), ddp_grads):
                max_diff = max(max_diff, (p.grad - g).abs().max().item())
                max_grad = max(max_grad, p.grad.abs().max().item())
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return {"single_process_losses": losses, "grad_max_abs_diff": max_diff, "grad_max_abs": max_grad}


# --------------------------------------------------------------------------- tensor and pipeline parallelism


_FUNCTIONAL_COLLECTIVES = ("all_reduce", "all_gather_into_tensor", "reduce_scatter_tensor", "all_to_all_single",
                           "broadcast")


def _group_size(args) -> int:
    """The size of the process group a functional collective runs on (its last argument names the group)."""
    from torch.distributed.distributed_c10d import _resolve_process_group

    name = args[-1] if args and isinstance(args[-1], str) else None
    return _resolve_process_group(name).size() if name else dist.get_world_size()


class FunctionalCommCounter(TorchDispatchMode):
    """Counts the collectives DTensor issues (``_c10d_functional`` ops, which bypass the Python
    ``dist.all_reduce``), forward and backward: per kind, calls and bytes of the input tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes: dict[str, int] = defaultdict(int)
        self.calls: dict[str, int] = defaultdict(int)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.namespace == "_c10d_functional" and func.overloadpacket.__name__ in _FUNCTIONAL_COLLECTIVES:
            t = args[0]
            key = f"{func.overloadpacket.__name__}@{_group_size(args)}"
            self.bytes[key] += t.numel() * t.element_size()
            self.calls[key] += 1
        return func(*args, **(kwargs or {}))

    def take(self) -> dict:
        out = {"bytes": dict(self.bytes), "calls": dict(self.calls)}
        self.bytes.clear()
        self.calls.clear()
        return out


# Megatron-LM's split of a Llama block (Shoeybi et al. 2019): the matrices that read the block's input
# are cut by output columns (each rank computes some heads, some MLP units), the matrices that write
# back are cut by input rows, and one all-reduce sums their partial outputs
TP_PLAN = {"self_attn.q_proj": "colwise", "self_attn.k_proj": "colwise", "self_attn.v_proj": "colwise",
           "self_attn.o_proj": "rowwise", "mlp.gate_proj": "colwise", "mlp.up_proj": "colwise",
           "mlp.down_proj": "rowwise"}


def tensor_parallel(model: TinyLlama, world: int, mesh_device: str, mesh=None) -> TinyLlama:
    """Shard every block of ``model`` over ``world`` ranks by :data:`TP_PLAN` (on ``mesh``, a 1-D
    DeviceMesh of ``world`` ranks, if given); embeddings, norms and the head stay replicated."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

    mesh = mesh or init_device_mesh(mesh_device, (world,), mesh_dim_names=("tp",))
    styles = {"colwise": ColwiseParallel, "rowwise": RowwiseParallel}
    for block in model.layers.values():
        parallelize_module(block, mesh, {name: styles[kind]() for name, kind in TP_PLAN.items()})
        block.self_attn.n_heads //= world      # each rank now computes H / world query heads
        block.self_attn.n_kv_heads //= world   # and KV / world key-value heads
    return model


def fsdp_tensor_parallel(model: TinyLlama, world: int, tp: int, mesh_device: str) -> tuple[TinyLlama, int]:
    """2-D parallelism: a (data, tensor) DeviceMesh of world / tp rows of ``tp`` ranks. Tensor
    parallelism (:func:`tensor_parallel`) within each row, then FSDP2 ``fully_shard`` of every block and
    of the root across the rows (ZeRO-3: the tensor-parallel shards are sharded again on dim 0).
    Returns the model and this rank's row (which share of the global batch it trains on)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(mesh_device, (world // tp, tp), mesh_dim_names=("dp", "tp"))
    tensor_parallel(model, tp, mesh_device, mesh=mesh["tp"])
    for block in model.layers.values():
        fully_shard(block, mesh=mesh["dp"], reshard_after_forward=True)
    fully_shard(model, mesh=mesh["dp"], reshard_after_forward=True)
    return model, mesh["dp"].get_local_rank()


def _merge(*counts: dict) -> dict:
    out: dict = {"bytes": {}, "calls": {}}
    for c in counts:
        for part in ("bytes", "calls"):
            for k, v in c[part].items():
                out[part][k] = out[part].get(k, 0) + v
    return out


def _full(t: torch.Tensor) -> torch.Tensor:
    return t.full_tensor() if hasattr(t, "full_tensor") else t


def _count_p2p(counter: CommCounter):
    """Count the bytes the pipeline schedules send (their sends go through ``schedules._batch_p2p``)."""
    from torch.distributed.pipelining import schedules

    original = schedules._batch_p2p

    def counted(p2p_ops, desc=None):
        if counter.active:
            for op in p2p_ops:
                if getattr(op.op, "__name__", "") == "isend":
                    counter.bytes[f"send@{dist.get_world_size()}"] += op.tensor.numel() * op.tensor.element_size()
                    counter.calls[f"send@{dist.get_world_size()}"] += 1
        return original(p2p_ops, desc)

    schedules._batch_p2p = counted
    return original


def _pipeline(model: TinyLlama, spec: dict, device: torch.device, n_micro: int, schedule_name: str):
    """This rank's stage of ``model`` (an equal share of the blocks) and its schedule."""
    from torch.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe

    rank, world = dist.get_rank(), dist.get_world_size()
    n = model.config.num_hidden_layers
    model.keep(rank * n // world, (rank + 1) * n // world)
    stage = PipelineStage(model, rank, world, device)
    busy: list[tuple[float, float]] = []
    for name in ("forward_one_chunk", "backward_one_chunk"):  # time spent computing, for the idle fraction
        original = getattr(stage, name)

        def timed(*args, _original=original, **kwargs):
            t0 = time.perf_counter()
            out = _original(*args, **kwargs)
            busy.append((t0, time.perf_counter()))
            return out

        setattr(stage, name, timed)

    def loss_fn(logits, target):  # mean over the micro-batch; the schedule divides gradients by n_micro
        return F.cross_entropy(logits.flatten(0, 1), target.flatten())

    kind = {"gpipe": ScheduleGPipe, "1f1b": Schedule1F1B}[schedule_name]
    return model, kind(stage, n_microbatches=n_micro, loss_fn=loss_fn), busy


def _pipeline_step(schedule, batch: torch.Tensor) -> float | None:
    """One pipelined forward and backward of ``batch`` (B, T+1); the mean loss on the last rank, else None."""
    rank, world = dist.get_rank(), dist.get_world_size()
    losses: list[torch.Tensor] = []
    if rank == 0 and world > 1:
        schedule.step(batch[:, :-1])
    elif rank == world - 1:
        schedule.step(*(() if world > 1 else (batch[:, :-1],)), target=batch[:, 1:], losses=losses)
    else:
        schedule.step()
    return sum(float(v) for v in losses) / len(losses) if losses else None


def measure_bubble(spec: dict, device: torch.device) -> list[dict]:
    """Idle fraction of this rank per schedule and micro-batch count, micro-batches of ``batch_size``
    sequences (forward and backward only, no optimizer): 1 - (time in forward and backward) / step time."""
    rows = []
    g = torch.Generator().manual_seed(spec["seed"] + 1)
    for schedule_name in spec["bubble_schedules"]:
        for m in spec["bubble_microbatches"]:
            if schedule_name == "1f1b" and m < dist.get_world_size():
                continue  # 1F1B needs at least one micro-batch per stage
            torch.manual_seed(spec["seed"])
            model, schedule, busy = _pipeline(TinyLlama(TinyLlamaConfig(**spec["llama"])).to(device), spec,
                                              device, m, schedule_name)
            batch = torch.randint(0, spec["llama"]["vocab_size"], (m * spec["batch_size"], spec["seq_len"] + 1),
                                  generator=g).to(device)
            idle, times = [], []
            for repeat in range(spec["bubble_repeats"] + 1):  # the first is a warm-up
                busy.clear()
                dist.barrier()
                t0 = time.perf_counter()
                _pipeline_step(schedule, batch)
                elapsed = time.perf_counter() - t0
                model.zero_grad(set_to_none=True)
                if repeat:
                    idle.append(1 - sum(b - a for a, b in busy) / elapsed)
                    times.append(elapsed)
            rows.append({"schedule": schedule_name, "microbatches": m, "idle": sorted(idle)[len(idle) // 2],
                         "step_s": sorted(times)[len(times) // 2]})
    return rows


def run_model_parallel(strategy: str, spec: dict, device: torch.device, counter: CommCounter) -> dict:
    """``tp``, ``pp`` or ``fsdp_tp`` on the Llama: every rank sees the whole global batch (TP), its stage
    of it (PP) or its row's share of it (2-D: FSDP across rows, TP within a row); losses and step-0
    gradients are compared with one process training the whole model on the whole batch."""
    rank, world = dist.get_rank(), dist.get_world_size()
    cfg = TinyLlamaConfig(**spec["llama"])
    g = torch.Generator().manual_seed(spec["seed"])
    data = torch.randint(0, cfg.vocab_size, (spec["n_batches"], spec["batch_size"] * world, spec["seq_len"] + 1),
                         generator=g)
    # the single-process reference, on every rank (the model is small): losses and step-0 gradients
    torch.manual_seed(spec["seed"])
    ref = TinyLlama(cfg).to(device)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=spec["lr"])
    ref_losses, ref_grads = [], {}
    for step in range(spec["steps"]):
        loss = lm_loss(ref, data[step % data.size(0)].to(device))
        loss.backward()
        if step == 0:
            ref_grads = {n: p.grad.detach().clone() for n, p in ref.named_parameters()}
        ref_opt.step()
        ref_opt.zero_grad(set_to_none=True)
        ref_losses.append(loss.item())
    del ref, ref_opt

    torch.manual_seed(spec["seed"])  # the same initial weights as the reference
    model = TinyLlama(cfg).to(device)
    busy: list = []
    rows = slice(None)  # the rows of the global batch this rank trains on
    if strategy == "tp":
        model = tensor_parallel(model, world, "cuda" if device.type == "cuda" else "cpu")
    elif strategy == "fsdp_tp":
        t = spec["tensor_parallel"]
        model, row = fsdp_tensor_parallel(model, world, t, "cuda" if device.type == "cuda" else "cpu")
        share = spec["batch_size"] * t
        rows = slice(row * share, (row + 1) * share)
    else:
        model, schedule, busy = _pipeline(model, spec, device, spec["microbatches"], spec["pp_schedule"])
        original_p2p = _count_p2p(counter)
    opt = torch.optim.Adam(model.parameters(), lr=spec["lr"])
    losses, times, comm, idle = [], [], [], []
    grad_diff = grad_max = 0.0
    peak_result, resident, profiled_step_s = None, 0, 0.0
    for step in range(spec["steps"]):
        batch = data[step % data.size(0), rows].to(device)
        busy.clear()
        dist.barrier()
        t0 = time.perf_counter()

        def one_step():
            if strategy == "tp":
                with FunctionalCommCounter() as functional:
                    loss = lm_loss(model, batch)
                    loss.backward()
                    opt.step()
                return loss.item(), functional.take()
            if strategy == "fsdp_tp":  # FSDP's collectives are Python calls, TP's functional ones
                with FunctionalCommCounter() as functional:
                    counter.active = True
                    loss = lm_loss(model, batch)
                    loss.backward()
                    opt.step()
                    counter.active = False
                return loss.item(), _merge(functional.take(), counter.take())
            counter.active = True
            loss = _pipeline_step(schedule, batch)
            counter.active = False
            opt.step()
            return loss, counter.take()

        if step == spec["steps"] - 1:
            opt_big, opt_small = _optimizer_bytes(opt)
            resident = sum(_nbytes(p) for p in model.parameters()) + opt_big + opt_small
            peak_result = peak.measure(one_step, device=device)
            loss, step_comm = peak_result.result
            profiled_step_s = time.perf_counter() - t0
        else:
            loss, step_comm = one_step()
            times.append(time.perf_counter() - t0)
            if busy:
                idle.append(1 - sum(b - a for a, b in busy) / times[-1])
        if step == 0:
            for n, p in model.named_parameters():
                full = _full(p.grad)
                grad_diff = max(grad_diff, (full - ref_grads[n]).abs().max().item())
                grad_max = max(grad_max, ref_grads[n].abs().max().item())
        opt.zero_grad(set_to_none=True)
        losses.append(loss)
        comm.append(step_comm)
    if strategy == "pp":
        from torch.distributed.pipelining import schedules
        schedules._batch_p2p = original_p2p
    params = sum(_nbytes(p) for p in model.parameters())
    opt_bytes, opt_scalars = _optimizer_bytes(opt)
    out = {"strategy": strategy, "rank": rank, "world_size": world, "params": params, "params_at_rest": params,
           "grads": params, "optimizer": opt_bytes, "optimizer_scalars": opt_scalars,
           # pipeline: only the last rank computes the loss; the others report the reference's
           "losses": [v if v is not None else float("nan") for v in losses], "step_times": times or [profiled_step_s],
           "comm": comm[-1], "peak_cuda_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
           "peak": dict(_peak_dict(peak_result), resident_at_entry=resident), "profiled_step_s": profiled_step_s,
           "single_process_losses": ref_losses, "grad_max_abs_diff": grad_diff, "grad_max_abs": grad_max,
           "param_names": [n for n, _ in model.named_parameters()]}
    if strategy == "pp":
        out["idle"] = idle
        if spec["bubble_microbatches"]:
            out["bubble"] = measure_bubble(spec, device)
    model = opt = None  # as above: the step closure holds them too
    gc.collect()
    return out


# --------------------------------------------------------------------------- entry point


def main(spec_path: str, rank: int | None = None) -> None:
    with open(spec_path) as f:
        spec = json.load(f)
    if rank is None:  # under torchrun
        rank, init_method = int(os.environ["RANK"]), "env://"
        if int(os.environ["WORLD_SIZE"]) != spec["world_size"]:
            raise RuntimeError(f"torchrun started {os.environ['WORLD_SIZE']} processes for a spec written for "
                               f"world_size {spec['world_size']}")
    else:
        init_method = f"tcp://127.0.0.1:{spec['port']}"
    torch.set_num_threads(1)
    world = spec["world_size"]
    if spec["backend"] == "nccl":
        device = torch.device("cuda", rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    dist.init_process_group(spec["backend"], init_method=init_method, rank=rank,
                            world_size=world, timeout=timedelta(seconds=spec["collective_timeout_s"]),
                            **({"device_id": device} if device.type == "cuda" else {}))
    try:
        crash = spec.get("crash")  # tests only: {"rank": r, "marker": path or None}
        if crash and rank == crash["rank"] and not (crash["marker"] and os.path.exists(crash["marker"])):
            if crash["marker"]:
                open(crash["marker"], "w").close()  # crash on the first try only
            os.kill(os.getpid(), signal.SIGSEGV)
        if rank in spec.get("fail_ranks", []):
            raise RuntimeError(f"rank {rank} was told to fail (fail_ranks={spec['fail_ranks']})")
        g = torch.Generator().manual_seed(spec["seed"])
        # (distinct batches, global batch, tokens + 1): every rank draws the same tensor and takes its rows
        data = torch.randint(0, spec["model"]["vocab_size"],
                             (spec["n_batches"], spec["batch_size"] * world, spec["seq_len"] + 1), generator=g)
        counter = CommCounter()
        results = [run_model_parallel(s, spec, device, counter) if s in ("tp", "pp", "fsdp_tp")
                   else run_strategy(s, spec, data, device, counter) for s in spec["strategies"]]
        dist.barrier()
        out_dir = os.path.dirname(spec_path)
        with open(os.path.join(out_dir, f"rank{rank}.json.tmp"), "w") as f:
            json.dump(results, f)
        os.replace(os.path.join(out_dir, f"rank{rank}.json.tmp"), os.path.join(out_dir, f"rank{rank}.json"))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    # a crash in native code (exit code -11) prints every thread's Python stack into the rank's log,
    # which distributed.run shows in its error
    faulthandler.enable(file=sys.stderr, all_threads=True)
    _spec = sys.argv[1]
    _given = int(sys.argv[2]) if len(sys.argv) > 2 else None
    _rank = _given if _given is not None else int(os.environ.get("RANK", "0"))
    try:
        main(_spec, _given)
    except BaseException:
        with open(os.path.join(os.path.dirname(_spec), f"rank{_rank}.error"), "w") as _f:
            _f.write(traceback.format_exc())
        sys.exit(1)
