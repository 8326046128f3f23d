"""One rank of a run of :mod:`llmlab.distributed` (chapter 7). Not for direct use.

Started by :func:`llmlab.distributed.run` as ``python -m llmlab._dist_worker SPEC.json RANK``:
joins the process group, trains the same small GPT-2 under each requested strategy on the
same data, measures what this rank holds and sends, and writes ``rank<RANK>.json`` next to
the spec (or ``rank<RANK>.error`` with the traceback when it fails).
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
import traceback
from collections import defaultdict
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

# --------------------------------------------------------------------------- the model


class Block(nn.Module):
    """One GPT-2 block: pre-norm attention and MLP (GELU, tanh approximation) with residuals."""

    def __init__(self, d: int, n_head: int, d_ff: int, eps: float) -> None:
        super().__init__()
        self.n_head = n_head
        self.ln_1 = nn.LayerNorm(d, eps=eps)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d, eps=eps)
        self.fc = nn.Linear(d, d_ff)
        self.fc_out = nn.Linear(d_ff, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln_1(x)).split(C, dim=-1)  # (B, T, C) each
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, h, T, C/h)
        x = x + self.proj(a.transpose(1, 2).reshape(B, T, C))
        return x + self.fc_out(F.gelu(self.fc(self.ln_2(x)), approximate="tanh"))


class TinyGPT2(nn.Module):
    """GPT-2 in plain torch (tied input and output embeddings), the layout of Hugging Face's
    ``GPT2LMHeadModel`` with ``nn.Linear`` in place of its transposed ``Conv1D``. Workers
    build it instead of importing transformers, which takes seconds per process."""

    def __init__(self, vocab_size: int, n_positions: int, n_embd: int, n_layer: int, n_head: int,
                 n_inner: int | None = None, layer_norm_epsilon: float = 1e-5) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(n_positions, n_embd)
        self.h = nn.ModuleList(Block(n_embd, n_head, n_inner or 4 * n_embd, layer_norm_epsilon)
                               for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd, eps=layer_norm_epsilon)
        for m in self.modules():  # GPT-2's initialisation
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V) for token ids ``idx`` (B, T)."""
        pos = torch.arange(idx.size(1), device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        return F.linear(self.ln_f(x), self.wte.weight)  # tied output layer


def lm_loss(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy (nats) of a (B, T+1) batch."""
    logits = model(batch[:, :-1])
    return F.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten())


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


def _wrap(model: nn.Module, strategy: str, spec: dict, device: torch.device):
    """Return (model, optimizer) for ``strategy``."""
    world = dist.get_world_size()
    lr = spec["lr"]
    if strategy in ("ddp", "zero1"):
        from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
        from torch.nn.parallel import DistributedDataParallel as DDP
        ddp = DDP(model, device_ids=[device.index] if device.type == "cuda" else None,
                  gradient_as_bucket_view=True)
        # the default hook, made explicit so its all-reduce goes through the (counted) Python call
        ddp.register_comm_hook(dist.group.WORLD, default_hooks.allreduce_hook)
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
    policy = CPUOffloadPolicy() if spec["offload"] else OffloadPolicy()
    for block in model.h:
        fully_shard(block, mesh=mesh, reshard_after_forward=reshard, offload_policy=policy)
    # reshard_after_forward given explicitly: left at its default, FSDP2 keeps the root's parameters
    # unsharded from forward to backward
    fully_shard(model, mesh=mesh, reshard_after_forward=reshard, offload_policy=policy)
    return model, torch.optim.Adam(model.parameters(), lr=lr)


def run_strategy(strategy: str, spec: dict, data: torch.Tensor, device: torch.device, counter: CommCounter) -> dict:
    rank, world = dist.get_rank(), dist.get_world_size()
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
    for step in range(spec["steps"]):
        batch = data[step % data.size(0), rank * b:(rank + 1) * b].to(device)
        dist.barrier()
        t0 = time.perf_counter()
        counter.active = True
        loss = lm_loss(model, batch)
        loss.backward()
        counter.active = False
        grad_bytes = sum(_nbytes(p.grad) for p in model.parameters() if p.grad is not None)
        if step == 0 and spec["check_grads"] and strategy == "ddp":
            grads_step0 = [p.grad.detach().clone() for p in inner.parameters()]
        counter.active = True
        opt.step()
        counter.active = False
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
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
    }
    if strategy == "ddp":
        # replicas identical after the steps: compare every rank's flat parameters with rank 0's
        flat = torch.cat([p.detach().flatten() for p in inner.parameters()])
        ref = flat.clone()
        dist.broadcast(ref, src=0)
        out["max_param_diff_to_rank0"] = (flat - ref).abs().max().item()
        if grads_step0 is not None and rank == 0:
            out.update(_single_process_reference(spec, data, grads_step0, device))
    del model, opt, inner
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
        loss = lm_loss(model, data[step % data.size(0)].to(device))
        loss.backward()
        if step == 0:
            for p, g in zip(model.parameters(), ddp_grads):
                max_diff = max(max_diff, (p.grad - g).abs().max().item())
                max_grad = max(max_grad, p.grad.abs().max().item())
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return {"single_process_losses": losses, "grad_max_abs_diff": max_diff, "grad_max_abs": max_grad}


# --------------------------------------------------------------------------- entry point


def main(spec_path: str, rank: int) -> None:
    with open(spec_path) as f:
        spec = json.load(f)
    torch.set_num_threads(1)
    world = spec["world_size"]
    if spec["backend"] == "nccl":
        device = torch.device("cuda", rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    dist.init_process_group(spec["backend"], init_method=f"tcp://127.0.0.1:{spec['port']}", rank=rank,
                            world_size=world, timeout=timedelta(seconds=spec["collective_timeout_s"]),
                            **({"device_id": device} if device.type == "cuda" else {}))
    try:
        if rank in spec.get("fail_ranks", []):
            raise RuntimeError(f"rank {rank} was told to fail (fail_ranks={spec['fail_ranks']})")
        g = torch.Generator().manual_seed(spec["seed"])
        # (distinct batches, global batch, tokens + 1): every rank draws the same tensor and takes its rows
        data = torch.randint(0, spec["model"]["vocab_size"],
                             (spec["n_batches"], spec["batch_size"] * world, spec["seq_len"] + 1), generator=g)
        counter = CommCounter()
        results = [run_strategy(s, spec, data, device, counter) for s in spec["strategies"]]
        dist.barrier()
        out_dir = os.path.dirname(spec_path)
        with open(os.path.join(out_dir, f"rank{rank}.json.tmp"), "w") as f:
            json.dump(results, f)
        os.replace(os.path.join(out_dir, f"rank{rank}.json.tmp"), os.path.join(out_dir, f"rank{rank}.json"))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    _spec, _rank = sys.argv[1], int(sys.argv[2])
    try:
        main(_spec, _rank)
    except BaseException:
        with open(os.path.join(os.path.dirname(_spec), f"rank{_rank}.error"), "w") as _f:
            _f.write(traceback.format_exc())
        sys.exit(1)
