"""Statistics for the book's claims: intervals, paired tests and the verdicts the prose glues.

Every chapter that says one method, model or setting is better, worse, larger or
smaller than another on our data says it through this module:

- :func:`wilson_interval` and :func:`bootstrap_interval`: how far one measured rate or
  mean may be from the truth (Wilson 1927; Efron and Tibshirani 1993);
- :func:`mcnemar` (exact): two methods scored right/wrong on the *same* items. Only the
  items on which they disagree carry information (McNemar 1947);
- :func:`paired_bootstrap`: two methods with a score per item (log-likelihood, ROUGE,
  loss), resampling items so that each pair stays together;
- :func:`compare`: either of the two with the difference and its interval, and a
  :attr:`Comparison.verdict` sentence such as
  ``"A above B (McNemar p = 0.003, n = 200)"`` or ``"no clear difference at n = 30 (...)"``;
- :func:`two_proportions` and :func:`compare_unpaired`: two groups of *different* items
  (Fisher's exact test with Newcombe's interval; Welch's t-test), when no pairing exists;
- :func:`compare_timings`: two timings, each the best of several repeats, as a ratio
  within one run.

Two unpaired intervals that overlap, or do not, are not a test: with the same items
under both methods, a paired test is both correct and much more sensitive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

ALPHA = 0.05  # the book's significance level: a verdict says "above"/"below" only when p < ALPHA


def _level(level: float) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ValueError(f"level must be a number in (0, 1), such as 0.95, got {level!r}")
    return float(level)


def _count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return int(value)


def _n_boot(n_boot) -> int:
    n_boot = _count("n_boot", n_boot)
    if n_boot < 100:
        raise ValueError(f"n_boot must be at least 100 resamples, got {n_boot}")
    return n_boot


def _vector(name: str, values, *, binary: bool = False) -> np.ndarray:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(f"{name} must be a sequence of numbers (a list, an array or a tensor), "
                        f"got {type(values).__name__}")
    if hasattr(values, "detach"):  # a torch tensor
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one value per item), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: need at least one item")
    if arr.dtype == bool:
        return arr.astype(float)
    if not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must hold numbers or booleans, got dtype {arr.dtype}")
    arr = arr.astype(float)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or infinite values: every item needs a finite score")
    if binary and not np.all((arr == 0) | (arr == 1)):
        raise ValueError(f"{name} must be right/wrong per item (booleans or 0/1), got other values")
    return arr


def _paired(a, b, *, binary: bool = False) -> tuple[np.ndarray, np.ndarray]:
    a, b = _vector("a", a, binary=binary), _vector("b", b, binary=binary)
    if a.shape != b.shape:
        raise ValueError(f"a paired test needs one score per item for both methods: a has {a.size} items, "
                         f"b has {b.size}")
    return a, b


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion of ``successes`` out of ``n`` (Wilson 1927).

    Unlike the textbook ``p +- 1.96 sqrt(p(1-p)/n)`` it stays inside [0, 1] and keeps
    its coverage near 0 and 1 (an accuracy of 100% on 20 items gives about [0.84, 1]).
    """
    from scipy.stats import norm

    successes, n, level = _count("successes", successes), _count("n", n), _level(level)
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need n > 0 and 0 <= successes <= n, got successes={successes}, n={n}")
    return _wilson(successes, n, float(norm.ppf(0.5 + level / 2)))


def _wilson(successes: int, n: int, z: float) -> tuple[float, float]:
    """The Wilson bounds for ``z`` standard deviations (checked arguments)."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the ends, no rounding residue
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def bootstrap_interval(values, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (items resampled with replacement, seeded)."""
    x, level, n_boot = _vector("values", values), _level(level), _n_boot(n_boot)
    rng = np.random.default_rng(_count("seed", seed))
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


@dataclass(frozen=True)
class McNemar:
    """Exact McNemar test: ``only_a`` items right under A alone, ``only_b`` under B alone."""

    only_a: int
    only_b: int
    n: int
    p: float


def mcnemar(a, b) -> McNemar:
    """Exact (binomial) McNemar test for two methods scored right/wrong on the same items.

    Items both methods get right, or both wrong, say nothing about which is better; of
    the ``only_a + only_b`` items where they disagree, each is equally likely to favour
    either method if neither is better, so the count is Binomial(only_a + only_b, 1/2)
    under that hypothesis. The p-value is two-sided; 1.0 when they never disagree.
    """
    from scipy.stats import binom

    a, b = _paired(a, b, binary=True)
    only_a = int(np.sum((a == 1) & (b == 0)))
    only_b = int(np.sum((a == 0) & (b == 1)))
    k, m = min(only_a, only_b), only_a + only_b
    p = 1.0 if m == 0 else float(min(1.0, 2 * binom.cdf(k, m, 0.5)))
    return McNemar(only_a, only_b, int(a.size), p)


@dataclass(frozen=True)
class PairedBootstrap:
    """Mean difference ``a - b`` per item with its bootstrap interval and two-sided p-value."""

    diff: float
    low: float
    high: float
    p: float
    n: int


def paired_bootstrap(a, b, level: float = 0.95, n_boot: int = 5000, seed: int = 0) -> PairedBootstrap:
    """Paired bootstrap of the mean difference ``mean(a - b)`` over items (seeded).

    Items are resampled with replacement and each keeps both of its scores, so what is
    shared between the methods on an item (its difficulty) cancels. The p-value is twice
    the share of resampled differences on the far side of zero (at least ``1/n_boot``);
    the interval is the percentile interval at ``level``.
    """
    a, b = _paired(a, b)
    level, n_boot = _level(level), _n_boot(n_boot)
    d = a - b
    rng = np.random.default_rng(_count("seed", seed))
    means = d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(axis=1)
    tail = (1 - level) / 2
    if np.all(d == 0):
        p = 1.0
    else:
        p = float(min(1.0, 2 * min(np.mean(means <= 0), np.mean(means >= 0))))
        p = max(p, 1 / n_boot)
    return PairedBootstrap(float(d.mean()), float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail)),
                           p, int(d.size))


#: sign vectors are enumerated exactly up to this many non-zero differences, sampled beyond
EXACT_SIGN_FLIP = 16


@dataclass(frozen=True)
class SignFlip:
    """The paired sign-flip (permutation) test of ``mean(a - b) = 0``: its two-sided p-value."""

    diff: float
    p: float
    n: int
    n_nonzero: int
    exact: bool


def sign_flip(a, b, n_perm: int = 20000, seed: int = 0) -> SignFlip:
    """Exact paired permutation test of the mean difference (Fisher 1935; Good 2005).

    Under the null hypothesis each item's two scores are exchangeable, so each difference
    ``a_i - b_i`` is as likely positive as negative. The p-value is the share of sign
    assignments whose mean is at least as far from zero as the observed one; items with
    a zero difference do not move it. With at most :data:`EXACT_SIGN_FLIP` non-zero
    differences every assignment is enumerated (the smallest possible p is
    ``2 / 2**n_nonzero``: eight items cannot give less than 0.0078); beyond, ``n_perm``
    seeded random assignments estimate it, as ``(1 + hits) / (1 + n_perm)``. Unlike the
    bootstrap's p-value, this one keeps its level at small ``n``.
    """
    a, b = _paired(a, b)
    n_perm = _count("n_perm", n_perm)
    if n_perm < 1:
        raise ValueError(f"n_perm must be at least 1, got {n_perm}")
    d = a - b
    nz = d[d != 0]
    observed = abs(float(d.sum()))
    if nz.size == 0:
        return SignFlip(0.0, 1.0, int(d.size), 0, True)
    tol = 1e-9 * max(1.0, float(np.abs(nz).sum()))
    if nz.size <= EXACT_SIGN_FLIP:
        signs = 1 - 2 * ((np.arange(2 ** nz.size)[:, None] >> np.arange(nz.size)) & 1)
        sums = np.abs(signs @ nz)
        p = float(np.mean(sums >= observed - tol))
        exact = True
    else:
        rng = np.random.default_rng(_count("seed", seed))
        signs = rng.choice(np.array([-1.0, 1.0]), size=(n_perm, nz.size))
        hits = int(np.sum(np.abs(signs @ nz) >= observed - tol))
        p = (1 + hits) / (1 + n_perm)
        exact = False
    return SignFlip(float(d.mean()), min(1.0, p), int(d.size), int(nz.size), exact)


def _p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.0995 else f"p = {p:.2f}"


def _interval_text(diff: float, low: float, high: float, level: float, scale: float, digits: int,
                   unit: str) -> str:
    """``"+4.0 points (95% interval +1.5 to +6.5)"``: a difference times ``scale`` with its interval."""
    f = f"{{:+.{digits}f}}"
    d, lo, hi = (f.format(v * scale) for v in (diff, low, high))
    return f"{d}{unit} ({level:.0%} interval {lo} to {hi})"


def _two_groups_verdict(a_name: str, b_name: str, diff: float, p: float, test: str) -> str:
    """The verdict of a test on two groups of different items; ``test`` names it with its p and sizes."""
    if p >= ALPHA:
        return f"no clear difference between {a_name} and {b_name} ({test})"
    return f"{a_name} {'above' if diff > 0 else 'below'} {b_name} ({test})"


@dataclass(frozen=True)
class Comparison:
    """Two methods on the same items: their means, the difference ``a - b``, its interval and a test."""

    a_name: str
    b_name: str
    n: int
    mean_a: float
    mean_b: float
    diff: float
    low: float
    high: float
    p: float
    test: str  # "McNemar" or "sign-flip test"
    level: float = 0.95

    @property
    def separated(self) -> bool:
        """Whether the test separates the two at the book's level (p < 0.05)."""
        return self.p < ALPHA

    @property
    def direction(self) -> str:
        """"above", "below" or "no clear difference"."""
        if not self.separated:
            return "no clear difference"
        return "above" if self.diff > 0 else "below"

    @property
    def verdict(self) -> str:
        """The sentence the prose glues, e.g. ``"A above B (McNemar p = 0.003, n = 200)"``."""
        if not self.separated:
            return (f"no clear difference between {self.a_name} and {self.b_name} at n = {self.n:,} "
                    f"({self.test} {_p_text(self.p)})")
        return f"{self.a_name} {self.direction} {self.b_name} ({self.test} {_p_text(self.p)}, n = {self.n:,})"

    def interval_text(self, scale: float = 1.0, digits: int = 1, unit: str = "") -> str:
        """The difference with its interval, e.g. ``"+4.0 points (95% interval +1.5 to +6.5)"``."""
        return _interval_text(self.diff, self.low, self.high, self.level, scale, digits, unit)


def compare(a, b, names: tuple[str, str] = ("A", "B"), level: float = 0.95, n_boot: int = 5000,
            seed: int = 0) -> Comparison:
    """Compare two methods scored on the same items; the test is chosen by the scores.

    Right/wrong scores (booleans, or only 0 and 1) get the exact McNemar test; any other
    scores get the paired sign-flip (permutation) test, :func:`sign_flip`, exact for small
    samples. In both cases the difference ``mean(a) - mean(b)`` comes with its paired
    bootstrap interval at ``level``.
    """
    if (not isinstance(names, (tuple, list)) or len(names) != 2
            or not all(isinstance(n, str) and n for n in names)):
        raise TypeError(f"names must be two non-empty strings (a's name, b's name), got {names!r}")
    a, b = _paired(a, b)
    binary = bool(np.all((a == 0) | (a == 1)) and np.all((b == 0) | (b == 1)))
    boot = paired_bootstrap(a, b, level=level, n_boot=n_boot, seed=seed)
    p, test = (mcnemar(a, b).p, "McNemar") if binary else (sign_flip(a, b, seed=seed).p, "sign-flip test")
    return Comparison(names[0], names[1], int(a.size), float(a.mean()), float(b.mean()), boot.diff,
                      boot.low, boot.high, p, test, level)


# ---------------------------------------------------------------- two groups of different items
# When the items differ between the two groups (training stories against held-out ones, two
# corpora), nothing is paired: compare rates with Fisher's exact test and Newcombe's interval,
# means with Welch's t-test. Both are weaker than a paired test on shared items.


@dataclass(frozen=True)
class TwoProportions:
    """Two independent groups, each a count of successes: rates, intervals and a test.

    ``diff = rate_a - rate_b``; its interval is Newcombe's (1998) hybrid score
    interval built from the two Wilson intervals; ``p`` is the two-sided Fisher exact
    test of the 2 x 2 table.
    """

    a_name: str
    b_name: str
    k_a: int
    n_a: int
    k_b: int
    n_b: int
    interval_a: tuple[float, float]
    interval_b: tuple[float, float]
    diff: float
    low: float
    high: float
    p: float
    level: float = 0.95

    def __post_init__(self) -> None:
        if not (0 <= self.k_a <= self.n_a and 0 <= self.k_b <= self.n_b and self.n_a >= 1
                and self.n_b >= 1):
            raise ValueError("counts must satisfy 0 <= k <= n and n >= 1 in both groups (successes "
                             f"cannot exceed items), got {self.k_a} of {self.n_a} and {self.k_b} of {self.n_b}")

    @property
    def rate_a(self) -> float:
        return self.k_a / self.n_a

    @property
    def rate_b(self) -> float:
        return self.k_b / self.n_b

    @property
    def separated(self) -> bool:
        """Whether the Fisher test separates the two rates at p < 0.05."""
        return self.p < ALPHA

    @property
    def verdict(self) -> str:
        """A sentence for the prose, e.g. ``"A above B (Fisher p = 0.002, n = 300 and 300)"``."""
        test = f"Fisher exact {_p_text(self.p)}, n = {self.n_a:,} and {self.n_b:,}"
        return _two_groups_verdict(self.a_name, self.b_name, self.diff, self.p, test)

    def interval_text(self, scale: float = 100.0, digits: int = 1, unit: str = " points") -> str:
        """The difference with its interval, e.g. ``"+4.0 points (95% interval +1.5 to +6.5)"``."""
        return _interval_text(self.diff, self.low, self.high, self.level, scale, digits, unit)


def two_proportions(k_a: int, n_a: int, k_b: int, n_b: int,
                        names: tuple[str, str] = ("A", "B"), level: float = 0.95) -> TwoProportions:
    """Compare the success rates ``k_a / n_a`` and ``k_b / n_b`` of two independent groups.

    Use it when the groups hold different items (training stories against held-out
    stories), where a paired test does not apply. Counts are numbers of items.
    """
    from scipy import stats as scipy_stats

    for name, value in (("k_a", k_a), ("n_a", n_a), ("k_b", k_b), ("n_b", n_b)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be an integer count >= 0, got {value!r}")
    if n_a < 1 or n_b < 1:
        raise ValueError(f"n_a and n_b must be >= 1 (items in each group), got {n_a} and {n_b}")
    if k_a > n_a or k_b > n_b:
        raise ValueError(f"successes cannot exceed items: got {k_a} of {n_a} and {k_b} of {n_b}")
    if (not isinstance(names, (tuple, list)) or len(names) != 2
            or not all(isinstance(n, str) and n for n in names)):
        raise TypeError(f"names must be two non-empty strings, got {names!r}")
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ValueError(f"level must be a number in (0, 1), such as 0.95, got {level!r}")
    z = float(scipy_stats.norm.ppf(0.5 + level / 2))
    (la, ua), (lb, ub) = _wilson(int(k_a), int(n_a), z), _wilson(int(k_b), int(n_b), z)
    pa, pb = k_a / n_a, k_b / n_b
    low = pa - pb - np.sqrt((pa - la) ** 2 + (ub - pb) ** 2)
    high = pa - pb + np.sqrt((ua - pa) ** 2 + (pb - lb) ** 2)
    p = float(scipy_stats.fisher_exact([[k_a, n_a - k_a], [k_b, n_b - k_b]])[1])
    return TwoProportions(names[0], names[1], int(k_a), int(n_a), int(k_b), int(n_b), (la, ua),
                          (lb, ub), pa - pb, float(low), float(high), min(1.0, p), float(level))


@dataclass(frozen=True)
class UnpairedComparison:
    """Two groups of different items (two corpora): means, the difference ``a - b`` and
    its interval, from Welch's t-test (unequal variances)."""

    a_name: str
    b_name: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    low: float
    high: float
    p: float
    level: float = 0.95

    def __post_init__(self) -> None:
        if self.n_a < 2 or self.n_b < 2:
            raise ValueError(f"each group needs at least 2 items, got {self.n_a} and {self.n_b}")

    @property
    def diff(self) -> float:
        return self.mean_a - self.mean_b

    @property
    def verdict(self) -> str:
        """e.g. ``"A above B (Welch t-test p < 0.001, n = 10 and 500)"``."""
        test = f"Welch t-test {_p_text(self.p)}, n = {self.n_a:,} and {self.n_b:,}"
        return _two_groups_verdict(self.a_name, self.b_name, self.diff, self.p, test)

    def interval_text(self, scale: float = 1.0, digits: int = 2, unit: str = " nats") -> str:
        """The difference times ``scale`` with its interval, e.g.
        ``"+2.10 nats (95% interval +1.90 to +2.30)"``; ``scale=100, unit=" points"`` for shares."""
        return _interval_text(self.diff, self.low, self.high, self.level, scale, digits, unit)


def compare_unpaired(a, b, names: tuple[str, str] = ("A", "B"), level: float = 0.95) -> UnpairedComparison:
    """Compare the mean scores (such as losses in nats) of two groups of different items.

    For items that two methods share, use :func:`compare` (paired) instead.
    """
    from scipy import stats as scipy_stats

    if (not isinstance(names, (tuple, list)) or len(names) != 2
            or not all(isinstance(n, str) and n for n in names)):
        raise TypeError(f"names must be two non-empty strings, got {names!r}")
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ValueError(f"level must be a number in (0, 1), such as 0.95, got {level!r}")
    arrays = []
    for name, values in (("a", a), ("b", b)):
        try:
            arr = np.asarray(values, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a sequence of numbers (one score per item)") from None
        if arr.size < 2 or not np.isfinite(arr).all():
            raise ValueError(f"{name} must hold at least 2 finite scores, got {arr.size} values")
        arrays.append(arr)
    res = scipy_stats.ttest_ind(arrays[0], arrays[1], equal_var=False)
    ci = res.confidence_interval(confidence_level=level)
    return UnpairedComparison(names[0], names[1], arrays[0].size, arrays[1].size, float(arrays[0].mean()),
                              float(arrays[1].mean()), float(ci.low), float(ci.high), float(res.pvalue),
                              float(level))


@dataclass(frozen=True)
class TimingComparison:
    """Two timings in one run: the best (smallest) of each one's repeats, and their ratio."""

    a_name: str
    b_name: str
    best_a: float
    best_b: float
    ratio: float  # best_b / best_a: how many times faster A is than B
    repeats: int
    separated: bool
    min_ratio: float

    @property
    def verdict(self) -> str:
        """E.g. ``"with the cache 4.1x faster than without (best of 5 repeats each)"``."""
        rep = f"best of {self.repeats} repeats each"
        if not self.separated:
            return f"no clear difference in time between {self.a_name} and {self.b_name} ({rep})"
        if self.ratio >= 1:
            return f"{self.a_name} {self.ratio:.1f}x faster than {self.b_name} ({rep})"
        return f"{self.a_name} {1 / self.ratio:.1f}x slower than {self.b_name} ({rep})"


def compare_timings(a: Sequence[float], b: Sequence[float], names: tuple[str, str] = ("A", "B"),
                    min_ratio: float = 1.1) -> TimingComparison:
    """Compare two timings, each repeated in the same run (seconds or any one unit).

    The best of the repeats is the least disturbed by the rest of the machine. The
    verdict says "faster" or "slower" only when every repeat of one is below every
    repeat of the other *and* the ratio of the bests is at least ``min_ratio``; a
    machine under load fails the first condition and gets "no clear difference".
    """
    if (not isinstance(names, (tuple, list)) or len(names) != 2
            or not all(isinstance(n, str) and n for n in names)):
        raise TypeError(f"names must be two non-empty strings, got {names!r}")
    ta, tb = _vector("a", a), _vector("b", b)
    if ta.size < 2 or tb.size < 2:
        raise ValueError(f"time each at least twice to compare (best of several repeats), got {ta.size} and {tb.size}")
    if np.any(ta <= 0) or np.any(tb <= 0):
        raise ValueError("timings must be positive durations")
    if isinstance(min_ratio, bool) or not isinstance(min_ratio, (int, float)) or not min_ratio >= 1:
        raise ValueError(f"min_ratio must be a number >= 1, got {min_ratio!r}")
    ratio = float(tb.min() / ta.min())
    apart = bool(ta.max() < tb.min() or tb.max() < ta.min())
    separated = apart and max(ratio, 1 / ratio) >= min_ratio
    return TimingComparison(names[0], names[1], float(ta.min()), float(tb.min()), ratio,
                            int(min(ta.size, tb.size)), separated, float(min_ratio))


def detectable_difference(n: int, disagreement: float, alpha: float = ALPHA, power: float = 0.8) -> float:
    """The smallest accuracy difference a paired test on ``n`` items detects with the given power.

    ``disagreement`` is the share of items on which the two methods disagree (one right,
    the other wrong); the normal approximation to McNemar's test gives
    ``delta = (z_(1-alpha/2) + z_power) * sqrt(disagreement / n)`` (Connor 1987, in the
    limit of a small difference). A planning number, not a result.
    """
    from scipy.stats import norm

    n = _count("n", n)
    if n < 1:
        raise ValueError(f"n (items) must be at least 1, got {n}")
    for name, v in (("disagreement", disagreement), ("alpha", alpha), ("power", power)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1:
            raise ValueError(f"{name} must be a number in (0, 1), got {v!r}")
    return float((norm.ppf(1 - alpha / 2) + norm.ppf(power)) * math.sqrt(disagreement / n))
