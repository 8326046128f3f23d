"""How fast does this machine train? (chapter 8).

:func:`run` measures, in one run on one machine (:func:`report` prints it):

- the machine's measured matrix-multiply throughput (FLOP/s of a square float32
  ``torch.matmul``, the best of several tries), the ceiling any training loop on it
  can approach;
- the tokens per second of :func:`llmlab.train.train_causal_lm` against a minimal
  plain-PyTorch loop (default AdamW, ``torch.nn.functional.cross_entropy``, no
  schedule, no clipping, no evaluation) on the same model, data, batch and steps;
- each loop's model FLOP utilisation (MFU): ``6 N`` FLOPs per token times tokens per
  second, as a fraction of the measured matmul throughput.

Everything here runs from an installed llmlab. How long each chapter takes to execute
is repository tooling (it reads the book's build and the ``chapters/`` folder):
``python tools/chapter_times.py``.

Timings on a shared machine are noisy: each loop is run several times, alternating,
and the fastest run is kept; CPU time (``time.process_time``) is reported beside
wall time, since other processes slow the wall clock but not the CPU time of a
single-threaded run. ``python -m llmlab.records.bench_cpu`` runs it, prints the report and
writes the record ``llmlab/results/bench_cpu.json``.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass

import torch

from . import _checks


def matmul_flops(size: int = 1024, repeats: int = 10, tries: int = 5, device: str | torch.device = "cpu") -> float:
    """Measured FLOP/s of a (size x size) float32 matmul, best of ``tries`` timings of ``repeats`` products."""
    for name, value in (("size", size), ("repeats", repeats), ("tries", tries)):
        _checks.positive_int(name, value)
    device = _checks.device("device", device)
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(size, size, generator=g, device=device)
    b = torch.randn(size, size, generator=g, device=device)
    _sync(device)
    a @ b  # warm-up
    best = math.inf
    for _ in range(tries):
        _sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 * repeats / best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class LoopTiming:
    """One training loop's best run: tokens, seconds (wall and CPU), tokens/s and MFU (fractions)."""

    name: str
    tokens: int
    wall_seconds: float
    cpu_seconds: float
    final_loss: float

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.wall_seconds

    @property
    def tokens_per_cpu_second(self) -> float:
        return self.tokens / self.cpu_seconds


def plain_loop(model: torch.nn.Module, train_ids: torch.Tensor, steps: int, batch_size: int, seq_len: int,
               lr: float = 3e-3, seed: int = 0, device: str | torch.device = "cpu") -> float:
    """The minimal loop a tutorial would write: sample windows, forward, cross-entropy, backward, AdamW.

    Returns the last loss (nats per token). Same batches as :func:`llmlab.train.random_batch`
    would draw with ``seed``.
    """
    _checks.model("model", model)
    _checks.token_ids("train_ids", train_ids, None)
    steps = _checks.positive_int("steps", steps)
    batch_size = _checks.positive_int("batch_size", batch_size)
    seq_len = _checks.positive_int("seq_len", seq_len)
    _checks.positive("lr", lr)
    if train_ids.numel() < seq_len + 2:
        raise ValueError(f"train_ids must hold at least seq_len + 2 = {seq_len + 2} tokens, got {train_ids.numel()}")
    device = _checks.device("device", device)
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95))
    g = torch.Generator().manual_seed(seed)
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        starts = torch.randint(0, train_ids.numel() - seq_len - 1, (batch_size,), generator=g)
        windows = torch.stack([train_ids[s : s + seq_len + 1] for s in starts.tolist()])
        x, y = windows[:, :-1].to(device), windows[:, 1:].to(device)
        logits = model(input_ids=x).logits
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    _sync(device)
    return loss.item()


def compare_loops(size: str = "s5", steps: int = 40, batch_size: int = 8, seq_len: int = 128, rounds: int = 3,
                  device: str | torch.device = "cpu") -> dict:
    """Best-of-``rounds`` timings of llmlab.train and the plain loop on sweep model ``size`` (chapter 8's sweep).

    Both train a fresh copy of the same model on the same corpus for ``steps`` steps of
    ``batch_size`` x ``seq_len`` tokens; the runs alternate so that background load hits both alike.
    """
    from . import sweep
    from .train import TrainConfig, train_causal_lm

    _checks.string("size", size, allow_empty=False)
    for name, value in (("steps", steps), ("batch_size", batch_size), ("seq_len", seq_len), ("rounds", rounds)):
        _checks.positive_int(name, value)
    device = _checks.device("device", device)
    if rounds < 1 or steps < 1:
        raise ValueError(f"rounds and steps must be >= 1, got {rounds} and {steps}")
    train_ids, val_ids = sweep.sweep_data()
    n_params = sweep.count_params(sweep.sweep_model(size))["n_params"]
    cfg = TrainConfig(steps=steps, batch_size=batch_size, seq_len=seq_len, lr=3e-3, warmup_steps=min(5, steps),
                      eval_every=steps, eval_batches=1, seed=0)
    best: dict[str, LoopTiming] = {}
    for _ in range(rounds):
        for name in ("llmlab.train", "plain PyTorch loop"):
            model = sweep.sweep_model(size)
            wall0, cpu0 = time.perf_counter(), time.process_time()
            if name == "llmlab.train":
                loss = train_causal_lm(model, train_ids, val_ids, cfg, device=device, progress=False).rows[-1]["train_loss"]
            else:
                loss = plain_loop(model, train_ids, steps, batch_size, seq_len, device=device)
            t = LoopTiming(name, steps * batch_size * seq_len, time.perf_counter() - wall0,
                           time.process_time() - cpu0, loss)
            if name not in best or t.wall_seconds < best[name].wall_seconds:
                best[name] = t
    return {"size": size, "n_params": n_params, "steps": steps, "batch_size": batch_size, "seq_len": seq_len,
            "loops": best}


def mfu(n_params: int, tokens_per_second: float, peak_flops: float) -> float:
    """Model FLOP utilisation: ``6 * n_params * tokens_per_second / peak_flops`` (a fraction)."""
    for name, v in (("n_params", n_params), ("tokens_per_second", tokens_per_second), ("peak_flops", peak_flops)):
        _checks.positive(name, v)
    return 6 * n_params * tokens_per_second / peak_flops


def run(size: str = "s5", steps: int = 40, rounds: int = 3, device: str | torch.device = "cpu") -> dict:
    """Everything :mod:`llmlab.bench` measures, as a dict (see the module docstring)."""
    device = _checks.device("device", device)
    for name, value in (("steps", steps), ("rounds", rounds)):
        _checks.positive_int(name, value)
    peak = matmul_flops(device=device)
    loops = compare_loops(size, steps=steps, rounds=rounds, device=device)
    result = {
        "device": str(device), "threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "matmul_flops": peak, "model": {k: v for k, v in loops.items() if k != "loops"}, "loops": {},
    }
    for name, t in loops["loops"].items():
        result["loops"][name] = {**asdict(t), "tokens_per_second": t.tokens_per_second,
                                 "tokens_per_cpu_second": t.tokens_per_cpu_second,
                                 "mfu": mfu(loops["n_params"], t.tokens_per_second, peak),
                                 "mfu_cpu_time": mfu(loops["n_params"], t.tokens_per_cpu_second, peak)}
    return result


def report(result: dict) -> str:
    """The printed form of :func:`run`'s result."""
    if not isinstance(result, dict) or not {"model", "loops", "device"} <= set(result):
        raise _checks.ArgumentTypeError(f"result must be the dict returned by bench.run(), got {type(result).__name__}")
    m = result["model"]
    lines = [f"device {result['device']}, {result['threads']} thread(s), load average {result['load_average']}",
             f"matmul throughput (float32): {result['matmul_flops'] / 1e9:.1f} GFLOP/s",
             f"model: sweep size {m['size']}, {m['n_params']:,} parameters, {m['steps']} steps of "
             f"{m['batch_size']} x {m['seq_len']} tokens (best of the rounds)"]
    for name, t in result["loops"].items():
        lines.append(f"  {name:20s} {t['tokens_per_second']:9,.0f} tokens/s wall ({t['tokens_per_cpu_second']:9,.0f} per CPU-second)"
                     f"   MFU {t['mfu']:.1%} wall, {t['mfu_cpu_time']:.1%} CPU time")
    names = list(result["loops"])
    if len(names) == 2:
        a, b = (result["loops"][n] for n in names)
        lines.append(f"  {names[0]} / {names[1]}: {a['tokens_per_second'] / b['tokens_per_second']:.2f}x wall, "
                     f"{a['tokens_per_cpu_second'] / b['tokens_per_cpu_second']:.2f}x CPU time")
    return "\n".join(lines)
