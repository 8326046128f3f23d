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

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

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
        parts = [f"{k} = {v:.4g} [{self.ci[k][0]:.4g}, {self.ci[k][1]:.4g}]" for k, v in self.params.items()]
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

    def solve(idx) -> np.ndarray:
        best = None
        for alpha0 in (0.2, 0.4, 0.7):
            for beta0 in (0.2, 0.4, 0.7):
                for e0 in (0.5 * ls[idx].min(), 0.9 * ls[idx].min()):
                    theta0 = np.array([math.log(e0), math.log(ls[idx].mean()) + alpha0 * ln_n[idx].mean(),
                                       math.log(ls[idx].mean()) + beta0 * ln_d[idx].mean(), alpha0, beta0])
                    r = least_squares(lambda th: np.log(model(th, ln_n[idx], ln_d[idx])) - np.log(ls[idx]), theta0,
                                      bounds=([-10, -20, -20, 0.0, 0.0], [10, 60, 60, 3.0, 3.0]))
                    if best is None or r.cost < best.cost:
                        best = r
        return best.x

    everything = np.arange(ns.size)
    theta = solve(everything)
    rng = np.random.default_rng(seed)
    boots = np.array([solve(rng.integers(0, ns.size, ns.size)) for _ in range(n_boot)]) if n_boot else np.empty((0, 5))

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
