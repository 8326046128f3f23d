"""Scaling laws and compute-optimal models as code (chapter 8).

- :func:`training_flops` counts the floating-point operations of training a model
  of ``N`` parameters on ``D`` tokens, about ``6 N D`` (Kaplan et al. 2020,
  "Scaling Laws for Neural Language Models"): per token and per parameter, the
  forward pass does one multiply and one add (2 FLOPs) and the backward pass twice
  that (4 FLOPs: the gradient with respect to the activations and the gradient
  with respect to the weights, one matrix product each).
- :func:`pf_days` turns FLOPs into petaFLOP/s-days (10^15 FLOP/s for 24 hours),
  the unit of Brown et al. 2020, "Language Models are Few-Shot Learners".
- :func:`chinchilla_optimal` splits a compute budget into parameters and tokens at
  a fixed number of tokens per parameter (about 20; Hoffmann et al. 2022,
  "Training Compute-Optimal Large Language Models"), and
  :func:`chinchilla_loss` is their parametric fit ``L(N, D) = E + A/N^alpha + B/D^beta``.
- :func:`training_days` is the training-time estimate of Narayanan et al. 2021,
  "Efficient Large-Scale Language Model Training on GPU Clusters Using
  Megatron-LM": ``8 T P / (n X)`` seconds with activation recomputation (an extra
  forward pass), ``6 T P / (n X)`` without.
- :func:`fit_power_law` and :func:`fit_chinchilla` fit measured points, with
  confidence intervals.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from .train import TrainConfig

#: Seconds in a day, and FLOPs in one petaFLOP/s-day (10^15 FLOP/s for 86,400 s).
SECONDS_PER_DAY = 86_400
PF_DAY = 1e15 * SECONDS_PER_DAY

#: Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models", section 3.3 and
#: appendix D.2 (their equation 10): the parametric loss fit ``E + A / N**alpha + B / D**beta``
#: (loss in nats per token on MassiveText, N parameters, D training tokens).
CHINCHILLA_FIT = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}

#: The compute-optimal ratio Hoffmann et al. 2022 is usually summarised by: about 20 tokens per parameter.
CHINCHILLA_TOKENS_PER_PARAM = 20.0


def _positive(name: str, value) -> float:
    """``value`` as a float, or a ValueError naming ``name`` if it is not a finite number > 0."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if not math.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return x


def training_flops(n_params: float, n_tokens: float) -> float:
    """Training compute in FLOPs: ``6 * n_params * n_tokens`` (2 forward + 4 backward per parameter per token).

    ``n_params`` counts the weights that take part in matrix products (with a tied
    embedding, counted once: the output projection is a matrix product, the input
    lookup is free); the attention scores add ``6 * n_layer * seq_len * d_model`` per
    token, a few per cent for the models of chapter 8, left out as Kaplan et al. 2020 do.
    """
    return 6.0 * _positive("n_params", n_params) * _positive("n_tokens", n_tokens)


def pf_days(flops: float) -> float:
    """FLOPs expressed in petaFLOP/s-days (1 PF-day = 10^15 FLOP/s * 86,400 s = 8.64e19 FLOPs)."""
    return _positive("flops", flops) / PF_DAY


def chinchilla_optimal(compute_flops: float, tokens_per_param: float = CHINCHILLA_TOKENS_PER_PARAM) -> tuple[float, float]:
    """The compute-optimal (n_params, n_tokens) for a budget of ``compute_flops`` FLOPs.

    Solves ``C = 6 N D`` with ``D = tokens_per_param * N``: ``N = sqrt(C / (6 r))``,
    ``D = r N``. The default ``r = 20`` is Hoffmann et al. 2022's rule of thumb.
    """
    c = _positive("compute_flops", compute_flops)
    r = _positive("tokens_per_param", tokens_per_param)
    n = math.sqrt(c / (6.0 * r))
    return n, r * n


def chinchilla_loss(n_params: float, n_tokens: float, fit: dict | None = None) -> float:
    """Predicted pre-training loss (nats per token) of ``n_params`` parameters trained on ``n_tokens`` tokens.

    ``E + A / N**alpha + B / D**beta`` with the constants of :data:`CHINCHILLA_FIT`
    (Hoffmann et al. 2022), or with ``fit``, a dict of the same five keys (for example
    ``fit_chinchilla(...).params``). E is the entropy of text that no model removes;
    the two other terms are what a finite model and finite data leave on top.
    """
    n = _positive("n_params", n_params)
    d = _positive("n_tokens", n_tokens)
    p = CHINCHILLA_FIT if fit is None else fit
    missing = {"E", "A", "B", "alpha", "beta"} - set(p)
    if missing:
        raise ValueError(f"fit must have the keys E, A, B, alpha, beta; missing {sorted(missing)}")
    return p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]


def training_days(n_params: float, n_tokens: float, n_gpus: int, flops_per_gpu: float,
                  flops_per_token_factor: float = 8.0) -> float:
    """Days to train, after Narayanan et al. 2021: ``factor * T * P / (n * X)`` seconds, in days.

    ``T`` tokens, ``P`` parameters, ``n`` GPUs each sustaining ``X`` FLOP/s (the
    achieved rate, not the datasheet peak). ``factor`` is 8 with activation
    recomputation (forward, forward again, backward: 2 + 2 + 4) and 6 without.
    """
    p = _positive("n_params", n_params)
    t = _positive("n_tokens", n_tokens)
    if isinstance(n_gpus, bool) or not isinstance(n_gpus, (int, np.integer)) or n_gpus < 1:
        raise ValueError(f"n_gpus must be a whole number >= 1, got {n_gpus!r}")
    x = _positive("flops_per_gpu", flops_per_gpu)
    k = _positive("flops_per_token_factor", flops_per_token_factor)
    return k * t * p / (n_gpus * x) / SECONDS_PER_DAY


def achieved_flops_per_gpu(n_params: float, n_tokens: float, n_gpus: int, days: float,
                           flops_per_token_factor: float = 8.0) -> float:
    """The per-GPU FLOP/s that makes :func:`training_days` come out at ``days`` (its inverse)."""
    d = _positive("days", days)
    return training_days(n_params, n_tokens, n_gpus, 1.0, flops_per_token_factor) / d


# ------------------------------------------------------------------ fits


@dataclass
class Fit:
    """A fitted law: best values, standard errors and ``level`` confidence intervals, by parameter name."""

    params: dict[str, float]
    stderr: dict[str, float]
    ci: dict[str, tuple[float, float]]
    n_points: int
    level: float = 0.95
    residual_rms: float = 0.0
    extra: dict = field(default_factory=dict)

    def __str__(self) -> str:
        def shown(x: float, scale: float) -> str:
            # a bootstrap bound pinned at a parameter's lower limit of 0 comes out as 1e-11 or 2e-11
            # from run to run: a bound below a millionth of the value is printed as the 0 it is
            return "0" if abs(x) < 1e-6 * scale else f"{x:.4g}"

        parts = []
        for k, v in self.params.items():
            lo, hi = self.ci[k]
            scale = abs(v) or max(abs(lo), abs(hi))  # bounds are judged against the value itself
            parts.append(f"{k} = {v:.4g} [{shown(lo, scale)}, {shown(hi, scale)}]")
        return f"{', '.join(parts)} ({self.level:.0%} intervals, {self.n_points} points)"


def _arrays(named: dict[str, Sequence[float]]) -> list[np.ndarray]:
    out, length = [], None
    for name, values in named.items():
        a = np.asarray(values, dtype=float).ravel()
        if length is not None and a.size != length:
            raise ValueError(f"{name} has {a.size} values but the first input has {length}: give one value per point")
        length = a.size
        if not np.all(np.isfinite(a)) or np.any(a <= 0):
            bad = a[~(np.isfinite(a) & (a > 0))][0]
            raise ValueError(f"{name} must hold only finite values > 0 (they are fitted on log scales), got {bad!r}")
        out.append(a)
    return out


def fit_power_law(x: Sequence[float], y: Sequence[float], level: float = 0.95) -> Fit:
    """Fit ``y = a * x**b`` by least squares on ``log y = log a + b log x``.

    Returns a :class:`Fit` with ``a`` and ``b``; the intervals are Student-t intervals
    of the linear regression (``b``'s is symmetric, ``a``'s is exp of a symmetric one).
    Needs at least 3 points (2 parameters and one degree of freedom for the error).
    """
    from scipy import stats

    xs, ys = _arrays({"x": x, "y": y})
    if xs.size < 3:
        raise ValueError(f"fit_power_law needs at least 3 points (2 parameters + 1 to estimate the error), got {xs.size}")
    if np.ptp(np.log(xs)) == 0:
        raise ValueError("x must take at least two different values to fit an exponent")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    lx, ly = np.log(xs), np.log(ys)
    res = stats.linregress(lx, ly)
    dof = xs.size - 2
    t = stats.t.ppf(0.5 + level / 2, dof)
    resid = ly - (res.intercept + res.slope * lx)
    b, sb = float(res.slope), float(res.stderr)
    la, sla = float(res.intercept), float(res.intercept_stderr)
    return Fit(params={"a": math.exp(la), "b": b},
               stderr={"a": math.exp(la) * sla, "b": sb},
               ci={"a": (math.exp(la - t * sla), math.exp(la + t * sla)), "b": (b - t * sb, b + t * sb)},
               n_points=int(xs.size), level=level, residual_rms=float(np.sqrt(np.mean(resid ** 2))),
               extra={"log_a": la, "log_a_stderr": sla})


def fit_chinchilla(n_params: Sequence[float], n_tokens: Sequence[float], loss: Sequence[float],
                   level: float = 0.95, n_boot: int = 200, seed: int = 0) -> Fit:
    """Fit ``L = E + A / N**alpha + B / D**beta`` to measured (N, D, loss) points.

    Least squares on log L (Hoffmann et al. 2022 fit log L too, with a Huber loss),
    from a small grid of starting points; the ``level`` intervals come from a
    bootstrap over the points (``n_boot`` resamples, seeded), which stays honest when
    the fit is poorly constrained. Needs at least 6 points (5 parameters + 1).
    """
    from scipy.optimize import least_squares

    ns, ds, ls = _arrays({"n_params": n_params, "n_tokens": n_tokens, "loss": loss})
    if ns.size < 6:
        raise ValueError(f"fit_chinchilla needs at least 6 points (5 parameters + 1), got {ns.size}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    names = ["E", "A", "B", "alpha", "beta"]
    ln_n, ln_d = np.log(ns), np.log(ds)

    def model(theta, ln_n, ln_d):
        e, log_a, log_b, alpha, beta = theta
        return np.exp(e) + np.exp(log_a - alpha * ln_n) + np.exp(log_b - beta * ln_d)

    lower, upper = [-10, -20, -20, 0.0, 0.0], [10, 60, 60, 3.0, 3.0]

    def solve(idx, starts) -> np.ndarray:
        best = None
        for theta0 in starts:
            r = least_squares(lambda th: np.log(model(th, ln_n[idx], ln_d[idx])) - np.log(ls[idx]), theta0,
                              bounds=(lower, upper))
            if best is None or r.cost < best.cost:
                best = r
        return best.x

    grid = [np.array([math.log(e0), math.log(ls.mean()) + a0 * ln_n.mean(), math.log(ls.mean()) + b0 * ln_d.mean(), a0, b0])
            for a0 in (0.2, 0.4, 0.7) for b0 in (0.2, 0.4, 0.7) for e0 in (0.5 * ls.min(), 0.9 * ls.min())]
    theta = solve(np.arange(ns.size), grid)
    rng = np.random.default_rng(seed)
    # each resample starts from the full-data optimum (and one grid point, in case the optimum moved far)
    boots = (np.array([solve(rng.integers(0, ns.size, ns.size), [theta, grid[4]]) for _ in range(n_boot)])
             if n_boot else np.empty((0, 5)))

    def natural(th) -> np.ndarray:
        return np.array([math.exp(th[0]), math.exp(th[1]), math.exp(th[2]), th[3], th[4]])

    best = natural(theta)
    nat = np.array([natural(b) for b in boots]) if len(boots) else np.tile(best, (1, 1))
    lo, hi = np.quantile(nat, [0.5 - level / 2, 0.5 + level / 2], axis=0)
    resid = np.log(model(theta, ln_n, ln_d)) - np.log(ls)
    return Fit(params=dict(zip(names, map(float, best))),
               stderr=dict(zip(names, map(float, nat.std(axis=0)))),
               ci={k: (float(a), float(b)) for k, a, b in zip(names, lo, hi)},
               n_points=int(ns.size), level=level, residual_rms=float(np.sqrt(np.mean(resid ** 2))),
               extra={"bootstrap": nat})


def optimal_allocation(compute_flops: float, fit: dict | None = None) -> tuple[float, float]:
    """Compute-optimal (n_params, n_tokens) under a parametric fit (default: Hoffmann et al. 2022's).

    Minimising ``E + A/N^alpha + B/D^beta`` subject to ``6 N D = C`` gives
    ``N = G (C/6)^(beta/(alpha+beta))`` with ``G = (alpha A / (beta B))^(1/(alpha+beta))``
    and ``D = C / (6 N)`` (Hoffmann et al. 2022, their equation 4).
    """
    c = _positive("compute_flops", compute_flops)
    p = CHINCHILLA_FIT if fit is None else fit
    a, b = p["alpha"], p["beta"]
    g = (a * p["A"] / (b * p["B"])) ** (1.0 / (a + b))
    n = g * (c / 6.0) ** (b / (a + b))
    return n, c / (6.0 * n)


def tokens_per_param_at(compute_flops: float, fit: Fit) -> tuple[float, tuple[float, float]]:
    """Compute-optimal tokens per parameter at ``compute_flops`` under a :func:`fit_chinchilla` fit,
    with the interval spanned by its bootstrap resamples (same ``level``)."""
    n, d = optimal_allocation(compute_flops, fit.params)
    boot = fit.extra.get("bootstrap")
    if boot is None or len(boot) == 0:
        return d / n, (d / n, d / n)
    ratios = []
    for e, a, b, alpha, beta in boot:
        nb, db = optimal_allocation(compute_flops, {"E": e, "A": a, "B": b, "alpha": alpha, "beta": beta})
        ratios.append(db / nb)
    lo, hi = np.quantile(ratios, [0.5 - fit.level / 2, 0.5 + fit.level / 2])
    return d / n, (float(lo), float(hi))


# ------------------------------------------------------------------ the sweep (recipe)

#: Model sizes of the sweep: GPT-2 architecture, the stories-1m tokenizer (1,024 tokens),
#: context 128. Name -> (n_embd, n_layer, n_head); the MLP is 4 * n_embd wide.
SWEEP_SIZES: dict[str, tuple[int, int, int]] = {
    "s0": (8, 1, 2), "s1": (16, 1, 2), "s2": (24, 2, 2), "s3": (32, 3, 4),
    "s4": (48, 3, 4), "s5": (64, 4, 4), "s6": (96, 4, 4),
}
#: Compute budgets (FLOPs, 6ND) and the sizes trained at each: an IsoFLOP design, as in
#: Hoffmann et al. 2022's approach 2, shifted to our scale (two orders of magnitude).
SWEEP_PLAN: list[tuple[float, list[str]]] = [
    (1e10, ["s0", "s1", "s2", "s3"]),
    (3e10, ["s0", "s1", "s2", "s3", "s4"]),
    (1e11, ["s0", "s1", "s2", "s3", "s4"]),
    (3e11, ["s1", "s2", "s3", "s4", "s5"]),
    (1e12, ["s2", "s3", "s4", "s5", "s6"]),
    (2e12, ["s3", "s4", "s5"]),
]
SWEEP_BATCH, SWEEP_SEQ_LEN, SWEEP_LR, SWEEP_EVAL_BATCHES = 8, 128, 3e-3, 32
RESULTS_DIR = Path(__file__).parent / "results"
SWEEP_CSV = RESULTS_DIR / "scaling_sweep.csv"


def sweep_model(size: str):
    """A freshly initialised (seed 0) GPT-2 decoder of sweep size ``size`` (a key of :data:`SWEEP_SIZES`)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    if size not in SWEEP_SIZES:
        raise ValueError(f"unknown sweep size {size!r}; sizes: {sorted(SWEEP_SIZES)}")
    d, layers, heads = SWEEP_SIZES[size]
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=1024, n_positions=SWEEP_SEQ_LEN, n_embd=d, n_layer=layers, n_head=heads,
                     n_inner=4 * d, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(cfg)


def count_params(model) -> dict[str, int]:
    """All parameters (tied embedding once), and those outside the token and position embeddings."""
    total = sum(p.numel() for p in model.parameters())
    emb = model.transformer.wte.weight.numel() + model.transformer.wpe.weight.numel()
    return {"n_params": total, "n_non_embedding": total - emb}


@functools.lru_cache(maxsize=1)
def sweep_data():
    """(train_ids, val_ids): the bundled story corpus encoded with the stories-1m tokenizer (chapter 3).

    Encoded once per process and shared (training only reads them)."""
    from . import data, zoo

    _, tokenizer = zoo.load("stories-1m", device="cpu")
    return (zoo.encode_stories(tokenizer, data.load_corpus("train")),
            zoo.encode_stories(tokenizer, data.load_corpus("validation")))


def sweep_config(size: str, compute_flops: float) -> tuple[int, "TrainConfig"]:
    """(n_params, TrainConfig) of the run of ``size`` at ``compute_flops``: D = C / (6 N) tokens, rounded to whole steps."""
    from .train import TrainConfig

    c = _positive("compute_flops", compute_flops)
    n = count_params(sweep_model(size))["n_params"]
    steps = max(1, round(c / (6 * n) / (SWEEP_BATCH * SWEEP_SEQ_LEN)))
    return n, TrainConfig(steps=steps, batch_size=SWEEP_BATCH, seq_len=SWEEP_SEQ_LEN, lr=SWEEP_LR,
                          warmup_steps=min(50, steps // 10), eval_every=steps, eval_batches=SWEEP_EVAL_BATCHES, seed=0)


def code_version() -> str:
    """The git commit of the checkout (``+dirty`` when train.py or scaling.py has uncommitted changes)."""
    from .provenance import code_version as stamp

    return stamp("llmlab/train.py", "llmlab/scaling.py")


def machine() -> str:
    """A one-line description of the CPU (model name, cores) and torch's thread count."""
    import os
    import platform

    import torch

    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}; {os.cpu_count()} cores; torch {torch.__version__}, {torch.get_num_threads()} thread(s)"


def run_point(size: str, compute_flops: float, train_ids, val_ids) -> dict:
    """Train sweep size ``size`` for the budget ``compute_flops`` on the CPU; return its CSV row."""
    import time

    from .train import train_causal_lm

    n, cfg = sweep_config(size, compute_flops)
    model = sweep_model(size)
    counts = count_params(model)
    cpu0 = time.process_time()
    log = train_causal_lm(model, train_ids, val_ids, cfg, device="cpu", progress=False)
    d, layers, heads = SWEEP_SIZES[size]
    tokens = cfg.steps * cfg.tokens_per_step
    return {"size": size, "n_embd": d, "n_layer": layers, "n_head": heads, **counts,
            "budget_flops": compute_flops, "tokens": tokens, "flops": training_flops(n, tokens),
            "tokens_per_param": round(tokens / n, 3), "steps": cfg.steps, "batch_size": cfg.batch_size,
            "seq_len": cfg.seq_len, "lr": cfg.lr, "val_loss": log.final_val_loss,
            "train_loss": log.rows[-1]["train_loss"], "wall_seconds": round(log.seconds, 2),
            "cpu_seconds": round(time.process_time() - cpu0, 2)}


def run_sweep(out: str | Path = SWEEP_CSV, plan: list[tuple[float, list[str]]] | None = None,
              progress: bool = True) -> Path:
    """Run every (budget, size) of ``plan`` (default :data:`SWEEP_PLAN`) and write one CSV row per run.

    Rows are written as they finish; each records the code version and the machine.
    """
    import csv
    import time

    plan = SWEEP_PLAN if plan is None else plan
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    train_ids, val_ids = sweep_data()
    meta = {"code_version": code_version(), "machine": machine()}
    start = time.perf_counter()
    with open(out, "w", newline="") as f:
        writer = None
        for budget, sizes in plan:
            for size in sizes:
                row = {**run_point(size, budget, train_ids, val_ids), **meta}
                if writer is None:
                    writer = csv.DictWriter(f, fieldnames=list(row))
                    writer.writeheader()
                writer.writerow(row)
                f.flush()
                if progress:
                    print(f"C={budget:.0e} {size} N={row['n_params']} D={row['tokens']} loss={row['val_loss']:.4f} "
                          f"cpu={row['cpu_seconds']:.1f}s wall={row['wall_seconds']:.1f}s "
                          f"(total {time.perf_counter() - start:.0f}s)", flush=True)
    return out


def load_sweep(path: str | Path = SWEEP_CSV):
    """The shipped sweep (or another CSV written by :func:`run_sweep`) as a pandas DataFrame."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no sweep at {path}; run `python -m llmlab.scaling sweep` to make it")
    return pd.read_csv(path)


def main(argv: list[str] | None = None) -> int:
    """``python -m llmlab.scaling sweep [--out PATH] [--budgets 3e10 1e11]``: the chapter 8 sweep."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m llmlab.scaling", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sw = sub.add_parser("sweep", help="train every model of the sweep and write the CSV")
    sw.add_argument("--out", default=str(SWEEP_CSV))
    sw.add_argument("--budgets", nargs="*", type=float, help="only these budgets of SWEEP_PLAN (FLOPs)")
    args = parser.parse_args(argv)
    plan = SWEEP_PLAN if not args.budgets else [(c, s) for c, s in SWEEP_PLAN if c in args.budgets]
    if not plan:
        parser.error(f"no budget of SWEEP_PLAN matches {args.budgets}; budgets: {[c for c, _ in SWEEP_PLAN]}")
    print(run_sweep(args.out, plan))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# ------------------------------------------------------------------ the compute-budget slider

#: Well-known models: parameters and training tokens as published. GPT-3: Brown et al. 2020; Chinchilla:
#: Hoffmann et al. 2022; LLaMA-65B: Touvron et al. 2023, "LLaMA: Open and Efficient Foundation Language
#: Models"; BloombergGPT: Wu et al. 2023, "BloombergGPT: A Large Language Model for Finance".
LANDMARKS: dict[str, tuple[float, float]] = {
    "GPT-3": (175e9, 300e9),
    "Chinchilla": (70e9, 1.4e12),
    "LLaMA-65B": (65.2e9, 1.4e12),
    "BloombergGPT": (50.6e9, 569e9),
}


@dataclass
class BudgetPlan:
    """What a compute budget buys: Chinchilla-optimal size and data, predicted loss, time on a GPU cluster."""

    compute_flops: float
    n_params: float
    n_tokens: float
    predicted_loss: float
    days: float
    gpu_hours: float

    def __str__(self) -> str:
        return (f"{self.compute_flops:.2g} FLOPs ({pf_days(self.compute_flops):,.0f} PF-days): "
                f"{self.n_params / 1e9:,.3g}B parameters on {self.n_tokens / 1e9:,.3g}B tokens, "
                f"predicted loss {self.predicted_loss:.3f}; {self.days:,.3g} days "
                f"({self.gpu_hours:,.3g} GPU-hours)")


def plan_budget(compute_flops: float, n_gpus: int = 1024, flops_per_gpu: float = 150e12,
                tokens_per_param: float = CHINCHILLA_TOKENS_PER_PARAM,
                flops_per_token_factor: float = 8.0) -> BudgetPlan:
    """The compute-optimal model for ``compute_flops`` (6ND FLOPs) and how long it trains (Narayanan et al. 2021)."""
    n, d = chinchilla_optimal(compute_flops, tokens_per_param)
    days = training_days(n, d, n_gpus, flops_per_gpu, flops_per_token_factor)
    return BudgetPlan(compute_flops, n, d, chinchilla_loss(n, d), days, days * 24 * n_gpus)


def gpu_hours_to_flops(gpu_hours: float, flops_per_gpu: float = 150e12, flops_per_token_factor: float = 8.0) -> float:
    """The 6ND training compute that ``gpu_hours`` buy at ``flops_per_gpu`` achieved FLOP/s each
    (hardware FLOPs times 6 / factor: recomputation spends 8ND of hardware work on 6ND of training)."""
    return _positive("gpu_hours", gpu_hours) * 3600 * _positive("flops_per_gpu", flops_per_gpu) * 6.0 / \
        _positive("flops_per_token_factor", flops_per_token_factor)


def draw_budget(ax, plan: BudgetPlan, tokens_per_param: float = CHINCHILLA_TOKENS_PER_PARAM) -> None:
    """Parameters against tokens (log-log): IsoFLOP lines, the compute-optimal line, the landmarks and ``plan``."""
    n = np.logspace(7, 12.5, 50)
    for c in (1e19, 1e21, 1e23, 1e25):
        ax.plot(n, c / (6 * n), color="#cbd5e0", lw=0.8)
        x = min(2e12, c / (6 * 2e8))  # where the line leaves the bottom of the axes, or the right edge
        ax.text(x, c / (6 * x), f"{c:.0e} FLOPs", fontsize=7, color="#718096", va="bottom", ha="right")
    ax.plot(n, tokens_per_param * n, color="#2b6cb0", lw=1.5, label=f"compute-optimal, {tokens_per_param:g} tokens/param")
    for name, (p, t) in LANDMARKS.items():
        ax.plot(p, t, "o", color="#718096")
        offset = {"Chinchilla": (-60, 6), "LLaMA-65B": (6, -2), "BloombergGPT": (-78, -4)}.get(name, (6, 2))
        ax.annotate(name, (p, t), textcoords="offset points", xytext=offset, fontsize=8)
    ax.plot(plan.n_params, plan.n_tokens, "*", color="#c53030", ms=14, label="your budget")
    ax.set(xscale="log", yscale="log", xlim=(1e7, 3e12), ylim=(1e8, 1e14), xlabel="parameters N",
           ylabel="training tokens D", title=f"{plan.compute_flops:.1g} FLOPs buys {plan.n_params / 1e9:.3g}B "
                                            f"parameters on {plan.n_tokens / 1e9:.3g}B tokens")
    ax.legend(loc="upper left", fontsize=8)


def budget_slider():
    """A live compute-budget panel (ipywidgets; needs a kernel): budget in FLOPs or GPU-hours in;
    compute-optimal parameters, tokens, predicted loss and training days out, with the landmarks marked."""
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    budget = w.FloatSlider(value=23, min=18, max=26, step=0.1, description="log10 budget", readout_format=".1f")
    unit = w.ToggleButtons(options=["FLOPs", "GPU-hours"], value="FLOPs", description="budget in")
    gpus = w.IntSlider(value=1024, min=8, max=8192, step=8, description="GPUs")
    tflops = w.FloatSlider(value=150, min=30, max=400, step=10, description="TFLOP/s/GPU")
    ratio = w.FloatSlider(value=20, min=1, max=100, step=1, description="tokens/param")
    text, out = w.HTML(), w.Output()

    def update(*_):
        c = 10 ** budget.value
        if unit.value == "GPU-hours":
            c = gpu_hours_to_flops(c, tflops.value * 1e12)
        plan = plan_budget(c, gpus.value, tflops.value * 1e12, ratio.value)
        text.value = f"<code>{plan}</code>"
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(7, 4.5))
            draw_budget(ax, plan, ratio.value)
            plt.show()

    for control in (budget, unit, gpus, tflops, ratio):
        control.observe(update, names="value")
    update()
    display(w.VBox([w.HBox([budget, unit]), w.HBox([gpus, tflops, ratio]), text, out]))


STATIC_BUDGETS = [float(f"{m}e{e}") for e in range(19, 25) for m in (1, 3)] + [1e25]
STATIC_GPUS = [64, 512, 1024, 4096]
STATIC_TFLOPS = [100, 150, 200]


def static_budget_slider():
    """The compute-budget panel without a kernel (llmlab.widgets.static_explorer): one frame per
    (budget, GPUs, per-GPU throughput); bars compare the plan with GPT-3, Chinchilla, LLaMA-65B and BloombergGPT."""
    from .widgets import Control, static_explorer

    controls = [
        Control("budget", "budget (FLOPs)", STATIC_BUDGETS, value=1e23, labels=[f"{c:.0e}" for c in STATIC_BUDGETS]),
        Control("gpus", "GPUs", STATIC_GPUS, value=1024),
        Control("tflops", "TFLOP/s per GPU", STATIC_TFLOPS, value=150),
    ]
    names = list(LANDMARKS)

    def frame(budget: float, gpus: int, tflops: int) -> dict:
        plan = plan_budget(budget, gpus, tflops * 1e12)
        params = [plan.n_params] + [LANDMARKS[k][0] for k in names]
        tokens = [plan.n_tokens] + [LANDMARKS[k][1] for k in names]
        return {
            "title": f"{budget:.0e} FLOPs: {plan.n_params / 1e9:.3g}B parameters, {plan.n_tokens / 1e9:.3g}B tokens, "
                     f"{plan.days:,.3g} days",
            "bars": {"labels": ["your budget"] + names, "ylabel": "log10 of the count", "layout": "grouped",
                     "ymax": 14.0,
                     "series": [{"name": "parameters (log10)", "color": "#2b6cb0",
                                 "values": [round(math.log10(v), 3) for v in params]},
                                {"name": "training tokens (log10)", "color": "#dd6b20",
                                 "values": [round(math.log10(v), 3) for v in tokens]}]},
            "prefix": f"{gpus} GPUs at {tflops} TFLOP/s each, 20 tokens per parameter: ",
            "text": str(plan),
        }

    n = len(STATIC_BUDGETS) * len(STATIC_GPUS) * len(STATIC_TFLOPS)
    note = (f"Runs without a kernel: all {n} frames were computed in advance by llmlab.scaling.plan_budget "
            "(Chinchilla's 20 tokens per parameter, their fitted loss, 8 T P / (n X) training days). "
            "For budgets in GPU-hours and other ratios, run the live panel above in Colab or Studio Lab.")
    return static_explorer(controls, frame, title="What a compute budget buys", note=note)


# ------------------------------------------------------------------ analysing the sweep


def isoflop_minima(sweep) -> "pd.DataFrame":
    """Hoffmann et al. 2022's approach 2: at each budget, fit loss = a (ln N)^2 + b ln N + c over the sizes
    trained and take its minimum. One row per budget with at least 3 sizes: budget_flops, n_opt, tokens_opt
    (= C / 6 N_opt), tokens_per_param, loss_opt, and interior (the minimum lies inside the sizes trained)."""
    import pandas as pd

    rows = []
    for budget, group in sweep.groupby("budget_flops"):
        if len(group) < 3:
            continue
        x, y = np.log(group["n_params"].to_numpy(float)), group["val_loss"].to_numpy(float)
        a, b, c = np.polyfit(x, y, 2)
        if a <= 0:  # no minimum: the curve bends the wrong way
            continue
        x_opt = -b / (2 * a)
        n_opt = math.exp(x_opt)
        d_opt = budget / (6 * n_opt)
        rows.append({"budget_flops": budget, "n_opt": n_opt, "tokens_opt": d_opt, "tokens_per_param": d_opt / n_opt,
                     "loss_opt": a * x_opt**2 + b * x_opt + c, "interior": bool(x.min() <= x_opt <= x.max()),
                     "curvature": a})
    return pd.DataFrame(rows)


def frontier(sweep) -> "pd.DataFrame":
    """The best run at each budget (the lower envelope of loss against compute)."""
    best = sweep.loc[sweep.groupby("budget_flops")["val_loss"].idxmin()]
    return best.sort_values("budget_flops").reset_index(drop=True)


def rerun(points: list[tuple[str, float]], sweep=None) -> "pd.DataFrame":
    """Train the sweep points ``[(size, budget), ...]`` again and set them beside the shipped values
    (columns val_loss, shipped_val_loss, deviation = val_loss - shipped_val_loss, nats per token)."""
    import pandas as pd

    sweep = load_sweep() if sweep is None else sweep
    train_ids, val_ids = sweep_data()
    rows = []
    for size, budget in points:
        shipped = sweep[(sweep["size"] == size) & np.isclose(sweep["budget_flops"], budget)]
        if shipped.empty:
            raise ValueError(f"({size!r}, {budget:g}) is not a point of the shipped sweep; see SWEEP_PLAN")
        row = run_point(size, budget, train_ids, val_ids)
        rows.append({"size": size, "budget_flops": budget, "n_params": row["n_params"], "tokens": row["tokens"],
                     "val_loss": row["val_loss"], "shipped_val_loss": float(shipped["val_loss"].iloc[0]),
                     "deviation": row["val_loss"] - float(shipped["val_loss"].iloc[0]),
                     "cpu_seconds": row["cpu_seconds"]})
    return pd.DataFrame(rows)


def fit_frontier(compute: Sequence[float], loss: Sequence[float], level: float = 0.95,
                 n_boot: int = 200, seed: int = 0) -> dict[str, Fit]:
    """Two laws for the compute frontier (the best loss at each budget), fitted on log loss.

    ``"power law"``: ``L = a C^-b``, no floor (:func:`fit_power_law`, Student-t intervals).
    ``"with floor"``: ``L = E + A C^-b``, an irreducible loss ``E`` that no budget removes
    (Kaplan et al. 2020 and Hoffmann et al. 2022 both have one), with bootstrap intervals
    over the points (``n_boot`` resamples, seeded). Compare their ``residual_rms`` (in log
    loss): the floor earns its extra parameter only if it fits clearly better. Needs at
    least 4 points (3 parameters + 1).
    """
    from scipy.optimize import least_squares

    cs, ls = _arrays({"compute": compute, "loss": loss})
    if cs.size < 4:
        raise ValueError(f"fit_frontier needs at least 4 points (3 parameters + 1), got {cs.size}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    plain = fit_power_law(cs, ls, level)
    ln_c = np.log(cs) - np.log(cs).mean()  # centred, so that A stays of the order of the losses

    def model(theta, x):
        log_e, log_a, b = theta
        return np.exp(log_e) + np.exp(log_a - b * x)

    def solve(idx) -> np.ndarray:
        best = None
        for e0 in (0.1, 0.5, 0.9):
            for b0 in (0.3, 1.0):
                theta0 = [math.log(e0 * ls[idx].min()), math.log(ls[idx].mean()), b0]
                r = least_squares(lambda th: np.log(model(th, ln_c[idx])) - np.log(ls[idx]), theta0,
                                  bounds=([-30, -30, 0.0], [10, 10, 10.0]))
                if best is None or r.cost < best.cost:
                    best = r
        return best.x

    theta = solve(np.arange(cs.size))
    rng = np.random.default_rng(seed)
    boots = np.array([solve(rng.integers(0, cs.size, cs.size)) for _ in range(n_boot)]) if n_boot else theta[None]
    shift = np.log(cs).mean()  # undo the centring: A C^-b with C in FLOPs

    def natural(th):
        return np.array([math.exp(th[0]), math.exp(th[1] + th[2] * shift), th[2]])

    best, nat = natural(theta), np.array([natural(b) for b in boots])
    lo, hi = np.quantile(nat, [0.5 - level / 2, 0.5 + level / 2], axis=0)
    resid = np.log(model(theta, ln_c)) - np.log(ls)
    names = ["E", "A", "b"]
    floor = Fit(params=dict(zip(names, map(float, best))), stderr=dict(zip(names, map(float, nat.std(axis=0)))),
                ci={k: (float(a), float(b)) for k, a, b in zip(names, lo, hi)}, n_points=int(cs.size),
                level=level, residual_rms=float(np.sqrt(np.mean(resid ** 2))), extra={"bootstrap": nat})
    return {"power law": plain, "with floor": floor}


@dataclass(frozen=True)
class BloombergBudget:
    """BloombergGPT's compute, two ways, with every assumption named (Wu et al. 2023).

    ``run_flops`` is the run itself, 6 N D for the parameters and tokens trained;
    ``budget_flops`` is the whole budget of GPU-hours at the reported per-GPU speed,
    converted to 6ND-equivalent FLOPs (the reported speed counts recomputation, 8 FLOPs
    per parameter per token, so the model's own share is 6/8 of it). Each has its
    Chinchilla-optimal split at ``tokens_per_param``.
    """

    n_params: float = 50.6e9
    tokens_trained: float = 569e9
    tokens_domain: float = 363e9  # FinPile, financial tokens in the data set
    tokens_general: float = 345e9  # public general-purpose tokens in the data set
    gpu_hours_budget: float = 1.3e6
    flops_per_gpu: float = 102e12  # achieved, per A100, as reported
    tokens_per_param: float = CHINCHILLA_TOKENS_PER_PARAM

    @property
    def tokens_available(self) -> float:
        return self.tokens_domain + self.tokens_general

    @property
    def run_flops(self) -> float:
        return training_flops(self.n_params, self.tokens_trained)

    @property
    def budget_flops(self) -> float:
        return gpu_hours_to_flops(self.gpu_hours_budget, self.flops_per_gpu)

    def optimum(self, compute_flops: float) -> tuple[float, float]:
        return chinchilla_optimal(compute_flops, self.tokens_per_param)

    def table(self) -> "pd.DataFrame":
        """One row per view: compute, the optimal parameters and tokens, and the optimal tokens
        against the data set and against what was trained."""
        import pandas as pd

        rows = []
        for view, c in (("the whole budget (1.3M GPU-hours)", self.budget_flops),
                        ("the run as trained (6ND)", self.run_flops)):
            n, d = self.optimum(c)
            rows.append({"compute from": view, "FLOPs": c, "optimal parameters (B)": n / 1e9,
                         "optimal tokens (B)": d / 1e9, "optimal tokens / data set": d / self.tokens_available,
                         "optimal tokens / tokens trained": d / self.tokens_trained})
        return pd.DataFrame(rows).set_index("compute from")
