"""Chapter 8 (scaling laws): the checks that ``exercises/src/08_scaling_laws.py`` calls,
its quiz key and their private helpers (the shared machinery is in ``_harness.py``)."""

from __future__ import annotations

import math
from typing import Callable

from ._harness import _call, _Case, _number_problem, _quiz, _run, _salted, _Wrong


def check_training_compute(fn: Callable) -> bool:
    """Chapter 8. ``fn(n_params, n_tokens) -> (flops, pf_days)``: training compute ``6 N D`` (2 FLOPs
    forward and 4 backward per parameter and token) and the same in petaFLOP/s-days (1e15 FLOP/s for a
    day of 86,400 s). Compared with ``llmlab.scaling.training_flops`` and ``pf_days``."""
    from ..scaling import pf_days, training_flops

    def case(n, d, label, hidden=True):
        def run():
            got = _call(fn, n, d)
            if not isinstance(got, tuple) or len(got) != 2:
                raise _Wrong(f"expected a tuple (flops, pf_days), got {type(got).__name__}")
            flops = training_flops(n, d)
            problem = _number_problem(got[0], flops, "flops", rel=1e-9)
            if problem and isinstance(got[0], (int, float)):
                if math.isclose(got[0], 2 * n * d, rel_tol=1e-9):
                    raise _Wrong("2 N D counts the forward pass only; training adds the backward pass (4 N D)")
            if problem:
                raise _Wrong(problem)
            problem = _number_problem(got[1], pf_days(flops), "pf_days", rel=1e-9)
            if problem and isinstance(got[1], (int, float)) and math.isclose(got[1], flops / 1e15 / 3600, rel_tol=1e-9):
                problem = "divided by an hour of seconds; a PF-day is 1e15 FLOP/s for 86,400 s"
            if problem and isinstance(got[1], (int, float)) and math.isclose(got[1], flops / 1e12 / 86400,
                                                                             rel_tol=1e-9):
                problem = "divided by 1e12 (tera); a petaFLOP/s is 1e15 FLOP/s"
            if problem:
                raise _Wrong(problem)
        return _Case(label, run, hidden)

    return _run("training_compute", [
        case(70e9, 1.4e12, "70e9 parameters on 1.4e12 tokens (Chinchilla)", hidden=False),
        case(175e9, 300e9, "175e9 parameters on 300e9 tokens"),
        case(1e6, 2e7, "a tiny model: 1e6 parameters, 2e7 tokens"),
    ])


def check_compute_optimal(fn: Callable) -> bool:
    """Chapter 8. ``fn(compute_flops) -> (n_params, n_tokens)``: the compute-optimal split of a budget
    ``C = 6 N D`` with ``D = 20 N`` (Hoffmann et al. 2022's rule of thumb). Compared with
    ``llmlab.scaling.chinchilla_optimal``."""
    from ..scaling import chinchilla_optimal

    def case(c, label, hidden=True):
        def run():
            got = _call(fn, c)
            if not isinstance(got, tuple) or len(got) != 2:
                raise _Wrong(f"expected a tuple (n_params, n_tokens), got {type(got).__name__}")
            n, d = chinchilla_optimal(c)
            if all(isinstance(v, (int, float)) for v in got):
                if math.isclose(got[0], d, rel_tol=1e-6) and math.isclose(got[1], n, rel_tol=1e-6):
                    raise _Wrong("parameters and tokens are swapped: the tokens are 20 times the parameters")
                if math.isclose(got[1] / got[0], 20, rel_tol=1e-6) and not math.isclose(got[0], n, rel_tol=1e-6):
                    raise _Wrong("20 tokens per parameter, but 6 N D does not come out at the budget: solve "
                                 "C = 6 N (20 N) for N")
            for value, ref, name in ((got[0], n, "n_params"), (got[1], d, "n_tokens")):
                problem = _number_problem(value, ref, name, rel=1e-6)
                if problem:
                    raise _Wrong(problem)
        return _Case(f"a budget of {c:.3g} FLOPs", run, hidden)

    return _run("compute_optimal", [case(5.76e23, "", hidden=False), case(1e21, ""), case(3.14e23, ""),
                                    case(1e15, "")])


def check_power_law_fit(fn: Callable) -> bool:
    """Chapter 8. ``fn(x, y) -> (a, b)``: the power law ``y = a * x**b`` fitted by least squares on
    ``log y = log a + b log x``. Compared with ``llmlab.scaling_fits.fit_power_law``."""
    import numpy as np

    from ..scaling_fits import fit_power_law

    def case(x, y, label, hidden=True):
        def run():
            got = _call(fn, list(x), list(y))
            ref = fit_power_law(x, y)
            if not isinstance(got, tuple) or len(got) != 2:
                raise _Wrong(f"expected a tuple (a, b), got {type(got).__name__}")
            a, b = (float(v) for v in got)
            if math.isclose(a, ref.params["b"], rel_tol=1e-4) and math.isclose(b, ref.params["a"], rel_tol=1e-4):
                raise _Wrong("a and b are swapped: b is the exponent (the slope in log-log), a the factor")
            if math.isclose(b, ref.params["b"], rel_tol=1e-4) and math.isclose(a, ref.extra["log_a"], rel_tol=1e-4):
                raise _Wrong("a is the log-log intercept; the factor is exp(intercept)")
            if math.isclose(b, ref.params["b"], rel_tol=1e-4) and math.isclose(a, 10 ** ref.extra["log_a"], rel_tol=1e-4):
                raise _Wrong("a = 10**intercept, but the fit used natural logs (or the other way round)")
            for value, want, name in ((b, ref.params["b"], "b"), (a, ref.params["a"], "a")):
                problem = _number_problem(value, want, f"the fitted {name}", rel=1e-4)
                if problem:
                    raise _Wrong(problem + " (fit a straight line to (log x, log y), e.g. numpy.polyfit)")
        return _Case(label, run, hidden)

    rng = np.random.default_rng(0)
    compute = np.logspace(17, 21, 7)
    noisy = 2.5e-3 * compute ** 0.2 * np.exp(rng.normal(0, 0.05, compute.size))
    return _run("power_law_fit", [
        case([1, 2, 4, 8], [3.0, 1.5, 0.75, 0.375], "x = 1, 2, 4, 8 and y halving each time", hidden=False),
        case(compute.tolist(), noisy.tolist(), "7 noisy points over four decades"),
        case([1e6, 1e7, 1e8], [5.0, 4.0, 3.3], "three points, a slow decline"),
    ])


def check_training_days(fn: Callable) -> bool:
    """Chapter 8. ``fn(n_params, n_tokens, n_gpus, flops_per_gpu) -> days``: Narayanan et al. (2021)'s
    estimate ``8 T P / (n X)`` seconds (8 FLOPs per parameter and token with activation recomputation),
    in days. Compared with ``llmlab.scaling.training_days``."""
    from ..scaling import SECONDS_PER_DAY, training_days

    def case(p, t, n, x, label, hidden=True):
        def run():
            got = _call(fn, p, t, n, x)
            want = training_days(p, t, n, x)
            problem = _number_problem(got, want, "the days", rel=1e-6)
            if problem and isinstance(got, (int, float)) and not isinstance(got, bool):
                if math.isclose(got, want * SECONDS_PER_DAY, rel_tol=1e-6):
                    raise _Wrong("that is in seconds; divide by 86,400 for days")
                if math.isclose(got, want * 24, rel_tol=1e-6):
                    raise _Wrong("that is in hours; divide the seconds by 86,400 for days")
                if math.isclose(got, want * 6 / 8, rel_tol=1e-6):
                    raise _Wrong("6 FLOPs per parameter and token leaves out the recomputed forward pass: use 8")
            if problem:
                raise _Wrong(problem)
        return _Case(label, run, hidden)

    return _run("training_days", [
        case(175e9, 300e9, 1024, 140e12, "GPT-3 size: 175e9 parameters, 300e9 tokens, 1024 GPUs at 140 TFLOP/s",
             hidden=False),
        case(1e12, 450e9, 3072, 163e12, "1e12 parameters, 3072 GPUs"),
        case(7e9, 2e12, 64, 150e12, "7e9 parameters on 64 GPUs"),
    ])


_SCALING_KEY = {
    "tokens per parameter of the Chinchilla rule of thumb": (_salted("20"), "Hoffmann et al. 2022."),
    "if the compute budget grows 100 times, how many times larger is the compute-optimal model": (
        _salted("10"), "N grows with the square root of C when D = 20 N."),
    "on a log-log plot a power law is a (straight line, parabola or exponential)": (
        _salted("straight line"), "Take logs of y = a x^b."),
}


def check_scaling_quiz(answers: dict) -> bool:
    """Chapter 8 quiz: scaling laws."""
    return _quiz("scaling_quiz", answers, _SCALING_KEY)
