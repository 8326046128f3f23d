"""Fitting scaling laws to measured runs (chapter 8).

- :func:`fit_power_law` fits ``y = a x^b`` on log-log axes, with Student-t intervals.
- :func:`fit_chinchilla` fits Hoffmann et al. 2022's ``L(N, D) = E + A/N^alpha + B/D^beta``
  to (parameters, tokens, loss) points, with bootstrap intervals, and
  :func:`tokens_per_param_at` reads the compute-optimal ratio off such a fit.
- :func:`isoflop_minima` is Hoffmann et al.'s approach 2 (the bottom of each IsoFLOP
  valley), :func:`frontier` the best run at each budget, and :func:`fit_frontier` two
  laws for that frontier (with and without an irreducible loss).

The laws themselves (``6ND``, Chinchilla's loss and its optimum) live in
:mod:`llmlab.scaling`; this module imports them, never the other way round.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np

from . import _checks
from .scaling import optimal_allocation

if TYPE_CHECKING:
    import pandas as pd


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
        raise ValueError("fit_power_law needs at least 3 points (2 parameters + 1 to "
                         f"estimate the error), got {xs.size}")
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
               ci={"a": (math.exp(la - t * sla), math.exp(la + t * sla)),
                   "b": (b - t * sb, b + t * sb)},
               n_points=int(xs.size), level=level,
               residual_rms=float(np.sqrt(np.mean(resid ** 2))),
               extra={"log_a": la, "log_a_stderr": sla})


def fit_chinchilla(n_params: Sequence[float], n_tokens: Sequence[float],
                   loss: Sequence[float], level: float = 0.95, n_boot: int = 200,
                   seed: int = 0) -> Fit:
    """Fit ``L = E + A / N**alpha + B / D**beta`` to measured (N, D, loss) points.

    Least squares on log L (Hoffmann et al. 2022 fit log L too, with a Huber loss),
    from a small grid of starting points; the ``level`` intervals come from a
    bootstrap over the points (``n_boot`` resamples, seeded), which stays honest when
    the fit is poorly constrained. Needs at least 6 points (5 parameters + 1).
    """
    from scipy.optimize import least_squares

    ns, ds, ls = _arrays({"n_params": n_params, "n_tokens": n_tokens, "loss": loss})
    if ns.size < 6:
        raise ValueError(
            f"fit_chinchilla needs at least 6 points (5 parameters + 1), got {ns.size}")
    level = _checks.number("level", level, 0, 1, low_open=True, high_open=True)
    n_boot = _checks.non_negative_int("n_boot", n_boot)
    seed = _checks.non_negative_int("seed", seed)
    names = ["E", "A", "B", "alpha", "beta"]
    ln_n, ln_d = np.log(ns), np.log(ds)

    def model(theta, ln_n, ln_d):
        e, log_a, log_b, alpha, beta = theta
        return np.exp(e) + np.exp(log_a - alpha * ln_n) + np.exp(log_b - beta * ln_d)

    lower, upper = [-10, -20, -20, 0.0, 0.0], [10, 60, 60, 3.0, 3.0]

    def solve(idx, starts) -> np.ndarray:
        def residuals(th):  # the error in log loss, point by point
            return np.log(model(th, ln_n[idx], ln_d[idx])) - np.log(ls[idx])

        best = None
        for theta0 in starts:
            r = least_squares(residuals, theta0, bounds=(lower, upper))
            if best is None or r.cost < best.cost:
                best = r
        return best.x

    # starting points: a few exponents and floors, A and B set so each term starts at
    # about the mean loss
    log_mean = math.log(ls.mean())
    grid = [np.array([math.log(e0), log_mean + a0 * ln_n.mean(),
                      log_mean + b0 * ln_d.mean(), a0, b0])
            for a0 in (0.2, 0.4, 0.7) for b0 in (0.2, 0.4, 0.7)
            for e0 in (0.5 * ls.min(), 0.9 * ls.min())]
    theta = solve(np.arange(ns.size), grid)
    rng = np.random.default_rng(seed)
    # each resample starts from the full-data optimum (and one grid point, in case the
    # optimum moved far)
    boots = (np.array([solve(rng.integers(0, ns.size, ns.size), [theta, grid[4]])
                       for _ in range(n_boot)])
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
               n_points=int(ns.size), level=level,
               residual_rms=float(np.sqrt(np.mean(resid ** 2))),
               extra={"bootstrap": nat})



def tokens_per_param_at(compute_flops: float, fit: Fit) -> tuple[float, tuple[float, float]]:
    """Compute-optimal tokens per parameter at ``compute_flops`` under a :func:`fit_chinchilla` fit,
    with the interval spanned by its bootstrap resamples (same ``level``)."""
    if not isinstance(fit, Fit):
        raise _checks.ArgumentTypeError(f"fit must be a Fit from fit_chinchilla(...), got {type(fit).__name__}")
    missing = [k for k in ("E", "A", "B", "alpha", "beta") if k not in fit.params]
    if missing:
        raise ValueError(f"fit must be a fit_chinchilla fit (parameters E, A, B, alpha, beta); "
                         f"this one lacks {missing}")
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



def _check_sweep(sweep, columns: tuple[str, ...]) -> None:
    import pandas as pd

    if not isinstance(sweep, pd.DataFrame):
        raise _checks.ArgumentTypeError(f"sweep must be a pandas DataFrame of sweep runs (llmlab.records.scaling_sweep.load()), "
                                        f"got {type(sweep).__name__} {sweep!r:.60}")
    missing = [c for c in columns if c not in sweep.columns]
    if missing:
        raise ValueError(f"sweep lacks the columns {missing}; pass the runs of llmlab.records.scaling_sweep.load()")


def isoflop_minima(sweep) -> "pd.DataFrame":
    """Hoffmann et al. 2022's approach 2: at each budget, fit loss = a (ln N)^2 + b ln N + c over the sizes
    trained and take its minimum. One row per budget with at least 3 sizes: budget_flops, n_opt, tokens_opt
    (= C / 6 N_opt), tokens_per_param, loss_opt, and interior (the minimum lies inside the sizes trained).
    A budget whose parabola bends the wrong way, or whose vertex lies beyond e^200 parameters
    either way, gets no row."""
    import pandas as pd

    _check_sweep(sweep, ("budget_flops", "n_params", "val_loss"))
    rows = []
    for budget, group in sweep.groupby("budget_flops"):
        if len(group) < 3:
            continue
        x, y = np.log(group["n_params"].to_numpy(float)), group["val_loss"].to_numpy(float)
        a, b, c = np.polyfit(x, y, 2)
        if a <= 0:  # no minimum: the curve bends the wrong way
            continue
        x_opt = -b / (2 * a)
        if abs(x_opt) > 200:  # a nearly flat parabola: its vertex is nowhere near any model
            continue
        n_opt = math.exp(x_opt)
        d_opt = budget / (6 * n_opt)
        rows.append({"budget_flops": budget, "n_opt": n_opt, "tokens_opt": d_opt, "tokens_per_param": d_opt / n_opt,
                     "loss_opt": a * x_opt**2 + b * x_opt + c, "interior": bool(x.min() <= x_opt <= x.max()),
                     "curvature": a})
    return pd.DataFrame(rows)


def frontier(sweep) -> "pd.DataFrame":
    """The best run at each budget (the lower envelope of loss against compute)."""
    _check_sweep(sweep, ("budget_flops", "val_loss"))
    best = sweep.loc[sweep.groupby("budget_flops")["val_loss"].idxmin()]
    return best.sort_values("budget_flops").reset_index(drop=True)



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



def seed_means(sweep) -> "pd.DataFrame":
    """One row per (budget, size) point of a sweep run with several seeds: the mean validation
    loss over the seeds (``val_loss``), their sample standard deviation (``val_loss_sd``, 0 for
    one seed) and how many there were (``n_seeds``), beside the point's size and tokens.
    A sweep without a ``seed`` column counts as one seed per point."""
    _check_sweep(sweep, ("budget_flops", "size", "n_params", "val_loss"))
    keep = [c for c in ("n_params", "n_non_embedding", "tokens", "flops") if c in sweep.columns]
    grouped = sweep.groupby(["budget_flops", "size"], sort=True)
    out = grouped[keep].first()
    out["val_loss"] = grouped["val_loss"].mean()
    out["val_loss_sd"] = grouped["val_loss"].std(ddof=1).fillna(0.0)
    out["n_seeds"] = grouped["val_loss"].size()
    return out.reset_index()


def bootstrap_isoflop(sweep, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """How far seed noise moves the IsoFLOP valley bottoms (:func:`isoflop_minima` of the
    :func:`seed_means`).

    Each resample draws, at every (budget, size) point, as many seeds as it has, with
    replacement, averages them, and finds every budget's valley bottom again. Returns
    ``{"draws": DataFrame (draw, budget_flops, n_opt, tokens_per_param, interior),
    "intervals": DataFrame per budget (n_opt and tokens_per_param at the seed means, their
    ``level`` percentile intervals, and the share of draws whose bottom lies inside the sizes
    trained), "ratio": (geometric mean of tokens per parameter over the budgets whose bottom
    lies inside at the seed means, and its interval)}``. The interval of a draw-wise quantity
    is taken over the draws where every one of those budgets has a bottom."""
    import pandas as pd

    _check_sweep(sweep, ("budget_flops", "size", "n_params", "val_loss"))
    n_boot = _checks.positive_int("n_boot", n_boot)
    seed = _checks.non_negative_int("seed", seed)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    means = seed_means(sweep)
    base = isoflop_minima(means)
    inside = base.loc[base["interior"], "budget_flops"].tolist()
    groups = [(key, g["val_loss"].to_numpy(float)) for key, g in sweep.groupby(["budget_flops", "size"], sort=True)]
    rng = np.random.default_rng(seed)
    draws, ratios = [], []
    for i in range(n_boot):
        sample = means.copy()
        sample["val_loss"] = [v[rng.integers(0, v.size, v.size)].mean() for _, v in groups]
        minima = isoflop_minima(sample)
        minima["draw"] = i
        draws.append(minima)
        got = minima.set_index("budget_flops")
        if all(b in got.index for b in inside):
            ratios.append(float(np.exp(np.log(got.loc[inside, "tokens_per_param"]).mean())))
    draws = pd.concat(draws, ignore_index=True)
    q = [0.5 - level / 2, 0.5 + level / 2]
    rows = []
    for _, row in base.iterrows():
        d = draws[draws["budget_flops"] == row["budget_flops"]]
        n_lo, n_hi = np.quantile(d["n_opt"], q)
        r_lo, r_hi = np.quantile(d["tokens_per_param"], q)
        rows.append({"budget_flops": row["budget_flops"], "n_opt": row["n_opt"], "n_opt_lo": n_lo,
                     "n_opt_hi": n_hi, "tokens_per_param": row["tokens_per_param"], "tpp_lo": r_lo,
                     "tpp_hi": r_hi, "interior": row["interior"],
                     "interior_share": float(d["interior"].sum() / n_boot)})
    ratio = float(np.exp(np.log(base.loc[base["interior"], "tokens_per_param"]).mean())) if inside else float("nan")
    r_lo, r_hi = np.quantile(ratios, q) if ratios else (float("nan"), float("nan"))
    return {"draws": draws, "intervals": pd.DataFrame(rows),
            "ratio": (ratio, (float(r_lo), float(r_hi))), "n_ratio_draws": len(ratios)}
