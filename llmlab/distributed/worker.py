"""One rank of a chapter 7 run: what each process of :func:`llmlab.distributed.launcher.run` does.

Started by the launcher as ``python -m llmlab.distributed.worker SPEC.json RANK``, or by torchrun as
``torchrun --standalone --nproc-per-node=N -m llmlab.distributed.worker SPEC.json`` (the rank and the
rendezvous then come from torchrun's environment: ``RANK``, ``MASTER_ADDR``, ``MASTER_PORT``): joins
the process group, trains the same small GPT-2 (data parallel) or Llama (tensor, pipeline and 2-D
parallel) under each requested strategy on the same data, measures what this rank holds and sends,
and writes ``rank<RANK>.json`` next to the spec (or ``rank<RANK>.error`` with the traceback when it
fails). The techniques are the public functions of :mod:`.data_parallel`, :mod:`.fsdp`,
:mod:`.tensor_parallel`, :mod:`.pipeline` and :mod:`.fsdp_tp`; the counting is :mod:`.measure`.
The spec is plain JSON, the results too (:func:`llmlab.distributed.results.read_results` reads them).
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
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.nn as nn

from llmlab import _checks, peak
from llmlab.distributed.data_parallel import wrap_ddp, zero1_optimizer
from llmlab.distributed.fsdp import apply_fsdp, fsdp_mesh
from llmlab.distributed.fsdp_tp import apply_fsdp_tp, fsdp_tp_mesh
from llmlab.distributed.measure import (
    CommCounter,
    FunctionalCommCounter,
    allocated_bytes,
    count_p2p,
    full,
    local,
    merge_counts,
    nbytes,
    optimizer_bytes,
    time_chunks,
)
from llmlab.distributed.pipeline import (
    MULTI_STAGE_SCHEDULES,
    interleaved_stages,
    pipeline_schedule,
    pipeline_stage,
    pipeline_step,
)
from llmlab.distributed.tensor_parallel import apply_tp, tp_mesh
from llmlab.tinygpt2 import TinyGPT2
from llmlab.tinygpt2 import lm_loss as gpt2_loss
from llmlab.tinyllama import TinyLlama, TinyLlamaConfig, lm_loss

# --------------------------------------------------------------------------- data parallelism (GPT-2)


def _mesh_device(device: torch.device) -> str:
    return "cuda" if device.type == "cuda" else "cpu"


def _wrap(model: nn.Module, strategy: str, spec: dict, device: torch.device):
    """Return (model, optimizer) for the data-parallel ``strategy``."""
    lr = spec["lr"]
    if strategy in ("ddp", "zero1"):
        ddp = wrap_ddp(model, device)
        if strategy == "ddp":
            return ddp, torch.optim.Adam(ddp.parameters(), lr=lr)
        return ddp, zero1_optimizer(ddp.parameters(), lr)
    f = spec["sharding_factor"] if strategy == "hybrid" else None
    mesh = fsdp_mesh(_mesh_device(device), dist.get_world_size(), f)
    # pinned host memory needs CUDA; with gloo the shards are CPU tensors already
    apply_fsdp(model, mesh, reshard_after_forward=strategy != "zero2", offload=spec["offload"],
               pin_memory=device.type == "cuda")
    return model, torch.optim.Adam(model.parameters(), lr=lr)


def _peak_dict(result) -> dict:
    return {"peak_bytes": result.peak_bytes, "baseline_bytes": result.baseline_bytes, "method": result.method,
            "at_peak": result.at_peak, "note": result.note}


def _check_run(strategy, allowed: tuple[str, ...], spec, keys: tuple[str, ...]) -> None:
    """A strategy this function runs and a spec dict with the keys it reads (launcher.write_spec writes them)."""
    _checks.choice("strategy", strategy, allowed)
    if not isinstance(spec, dict):
        raise _checks.ArgumentTypeError(f"spec must be the dict launcher.write_spec writes, got {type(spec).__name__}")
    missing = [k for k in keys if k not in spec]
    if missing:
        raise ValueError(f"spec lacks {missing}; write it with distributed.launcher.write_spec")


def run_strategy(strategy: str, spec: dict, data: torch.Tensor, device: torch.device, counter: CommCounter) -> dict:
    """Train the GPT-2 under the data-parallel ``strategy`` (ddp, zero1, zero2, zero3, hybrid) for the spec's
    steps on this rank's rows of ``data``; return what this rank held, sent and measured (bytes, seconds)."""
    _check_run(strategy, ("ddp", "zero1", "zero2", "zero3", "hybrid"), spec, ("seed", "model", "steps"))
    _checks.token_ids("data", data, None)
    rank, world = dist.get_rank(), dist.get_world_size()
    profiled_step_s = 0.0
    torch.manual_seed(spec["seed"])  # same initial weights on every rank and for every strategy
    model = TinyGPT2(**spec["model"]).to(device)
    model, opt = _wrap(model, strategy, spec, device)
    held_in_step: list[int] = []

    def after_forward(module, args, output):  # parameters this rank holds between forward and backward
        # the memory under them: FSDP2's shards and gathered parameters are padded buffers
        held_in_step.append(allocated_bytes(module.parameters()))

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
            opt_big, opt_small = optimizer_bytes(opt)
            resident = allocated_bytes(model.parameters()) + opt_big + opt_small
            if strategy in ("ddp", "zero1"):
                resident += sum(nbytes(p) for p in model.parameters())
            peak_result = peak.measure(forward_backward_step, device=device)
            loss, grads = peak_result.result
        else:
            loss, grads = forward_backward_step()
        elapsed = time.perf_counter() - t0
        if step != measured_step or spec["steps"] == 1:
            times.append(elapsed)  # the profiled step is slower: its time is kept apart
        else:
            profiled_step_s = elapsed
        grad_bytes = allocated_bytes(grads)  # FSDP2: views into a padded reduce-scatter output
        if step == 0 and spec["check_grads"] and strategy == "ddp":
            grads_step0 = [p.grad.detach().clone() for p in inner.parameters()]
        del grads
        if step < spec["steps"] - 1:
            opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        comm.append(counter.take())
    handle.remove()
    opt_bytes, opt_scalars = optimizer_bytes(opt)
    out = {
        "strategy": strategy, "rank": rank, "world_size": world,
        "params": held_in_step[-1], "params_at_rest": allocated_bytes(model.parameters()),
        "grads": grad_bytes, "optimizer": opt_bytes, "optimizer_scalars": opt_scalars,
        "losses": losses, "step_times": times, "comm": comm[-1],
        "peak_cuda_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
        "peak": dict(_peak_dict(peak_result), resident_at_entry=resident),
        "profiled_step_s": profiled_step_s if spec["steps"] > 1 else times[-1],
        # where this rank's parameter shards live (CPUOffloadPolicy moves them to "cpu"; with gloo they
        # are there already)
        "param_devices": sorted({str(local(p).device) for p in model.parameters()}),
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



# --------------------------------------------------------------------------- tensor and pipeline parallelism (Llama)


def _pipeline(model: TinyLlama, device: torch.device, n_micro: int, schedule_name: str):
    """This rank's stage of ``model`` (an equal share of the blocks), its schedule and the list its
    busy intervals are recorded into."""
    stage = pipeline_stage(model, dist.get_rank(), dist.get_world_size(), device)
    busy = time_chunks(stage)  # time spent computing, for the idle fraction
    return model, pipeline_schedule(stage, n_micro, schedule_name), busy


def _interleaved(spec: dict, device: torch.device, n_micro: int, schedule_name: str):
    """This rank's two virtual stages of the Llama, their interleaved schedule and one list of busy
    intervals for both."""

    def make_model() -> TinyLlama:
        torch.manual_seed(spec["seed"])
        return TinyLlama(TinyLlamaConfig(**spec["llama"]))

    stages = interleaved_stages(make_model, dist.get_rank(), dist.get_world_size(), device, chunks=2)
    busy: list = []
    for stage in stages:
        time_chunks(stage, into=busy)
    model = nn.ModuleList([stage.submod for stage in stages])
    return model, pipeline_schedule(stages, n_micro, schedule_name), busy


def measure_bubble(spec: dict, device: torch.device) -> list[dict]:
    """Idle fraction of this rank per schedule and micro-batch count, micro-batches of ``batch_size``
    sequences (forward and backward only, no optimizer): 1 - (time in forward and backward) / step time."""
    _check_run("pp", ("pp",), spec, ("seed", "llama", "bubble_schedules", "bubble_microbatches", "batch_size",
                                     "seq_len"))
    rows = []
    g = torch.Generator().manual_seed(spec["seed"] + 1)
    for schedule_name in spec["bubble_schedules"]:
        for m in spec["bubble_microbatches"]:
            if schedule_name == "1f1b" and m < dist.get_world_size():
                continue  # 1F1B needs at least one micro-batch per stage
            if schedule_name == "interleaved_1f1b" and (m < dist.get_world_size() or m % dist.get_world_size()):
                continue  # interleaved 1F1B: a multiple of the ranks
            torch.manual_seed(spec["seed"])
            if schedule_name in MULTI_STAGE_SCHEDULES:
                model, schedule, busy = _interleaved(spec, device, m, schedule_name)
            else:
                model, schedule, busy = _pipeline(TinyLlama(TinyLlamaConfig(**spec["llama"])).to(device), device, m,
                                                  schedule_name)
            batch = torch.randint(0, spec["llama"]["vocab_size"], (m * spec["batch_size"], spec["seq_len"] + 1),
                                  generator=g).to(device)
            idle, times = [], []
            for repeat in range(spec["bubble_repeats"] + 1):  # the first is a warm-up
                busy.clear()
                dist.barrier()
                t0 = time.perf_counter()
                pipeline_step(schedule, batch)
                elapsed = time.perf_counter() - t0
                model.zero_grad(set_to_none=True)
                if repeat:
                    idle.append(1 - sum(b - a for a, b in busy) / elapsed)
                    times.append(elapsed)
                    # the last timed step's busy intervals, seconds from its start, for a timeline
                    intervals = [(round(a - t0, 6), round(b - t0, 6)) for a, b in busy]
            rows.append({"schedule": schedule_name, "microbatches": m, "idle": sorted(idle)[len(idle) // 2],
                         "step_s": sorted(times)[len(times) // 2], "busy_intervals": intervals,
                         "last_step_s": elapsed})
    return rows


def run_model_parallel(strategy: str, spec: dict, device: torch.device, counter: CommCounter) -> dict:
    """``tp``, ``pp`` or ``fsdp_tp`` on the Llama: every rank sees the whole global batch (TP), its stage
    of it (PP) or its row's share of it (2-D: FSDP across rows, TP within a row); losses and step-0
    gradients are compared with one process training the whole model on the whole batch."""
    _check_run(strategy, ("tp", "pp", "fsdp_tp"), spec, ("llama", "seed", "n_batches", "batch_size", "seq_len", "lr"))
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
        model = apply_tp(model, tp_mesh(_mesh_device(device), world))
    elif strategy == "fsdp_tp":
        t = spec["tensor_parallel"]
        mesh = fsdp_tp_mesh(_mesh_device(device), world, t)
        model = apply_fsdp_tp(model, mesh)
        row = mesh["dp"].get_local_rank()
        share = spec["batch_size"] * t
        rows = slice(row * share, (row + 1) * share)
    else:
        model, schedule, busy = _pipeline(model, device, spec["microbatches"], spec["pp_schedule"])
        undo_p2p = count_p2p(counter)
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
                return loss.item(), merge_counts(functional.take(), counter.take())
            counter.active = True
            loss = pipeline_step(schedule, batch)
            counter.active = False
            opt.step()
            return loss, counter.take()

        if step == spec["steps"] - 1:
            opt_big, opt_small = optimizer_bytes(opt)
            resident = sum(nbytes(p) for p in model.parameters()) + opt_big + opt_small
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
                whole = full(p.grad)
                grad_diff = max(grad_diff, (whole - ref_grads[n]).abs().max().item())
                grad_max = max(grad_max, ref_grads[n].abs().max().item())
        opt.zero_grad(set_to_none=True)
        losses.append(loss)
        comm.append(step_comm)
    if strategy == "pp":
        undo_p2p()
    params = sum(nbytes(p) for p in model.parameters())
    opt_bytes, opt_scalars = optimizer_bytes(opt)
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
        measured = [run_model_parallel(s, spec, device, counter) if s in ("tp", "pp", "fsdp_tp")
                   else run_strategy(s, spec, data, device, counter) for s in spec["strategies"]]
        dist.barrier()
        out_dir = os.path.dirname(spec_path)
        with open(os.path.join(out_dir, f"rank{rank}.json.tmp"), "w") as f:
            json.dump(measured, f)
        os.replace(os.path.join(out_dir, f"rank{rank}.json.tmp"), os.path.join(out_dir, f"rank{rank}.json"))
    except BaseException:
        # written before the group is torn down, which makes the other ranks fail too: the launcher
        # reports the earliest traceback, the cause
        _write_error(spec_path, rank)
        raise
    finally:
        dist.destroy_process_group()


def _write_error(spec_path: str, rank: int) -> None:
    """The current exception's traceback into ``rank<rank>.error`` beside the spec (once)."""
    path = os.path.join(os.path.dirname(spec_path), f"rank{rank}.error")
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write(traceback.format_exc())


if __name__ == "__main__":
    # a crash in native code (exit code -11) prints every thread's Python stack into the rank's log,
    # which launcher.run shows in its error
    faulthandler.enable(file=sys.stderr, all_threads=True)
    _spec = sys.argv[1]
    _given = int(sys.argv[2]) if len(sys.argv) > 2 else None
    _rank = _given if _given is not None else int(os.environ.get("RANK", "0"))
    try:
        main(_spec, _given)
    except BaseException:
        _write_error(_spec, _rank)
        sys.exit(1)
