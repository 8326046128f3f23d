"""llmlab.stats against scipy on known cases, and its verdicts both ways."""

import numpy as np
import pytest
from scipy import stats as sp

from llmlab import stats


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (81, 263), (20, 20), (150, 200)])
@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_wilson_matches_scipy(k, n, level):
    ref = sp.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    low, high = stats.wilson_interval(k, n, level)
    assert low == pytest.approx(ref.low, abs=1e-9) and high == pytest.approx(ref.high, abs=1e-9)


def test_wilson_newcombe_worked_example():
    # Newcombe (1998), Statistics in Medicine 17: 81 of 263 gives 0.2553 to 0.3662
    low, high = stats.wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


@pytest.mark.parametrize("only_a,only_b,both", [(10, 2, 50), (3, 3, 10), (0, 7, 1), (25, 12, 100), (0, 0, 5)])
def test_mcnemar_exact_matches_scipy_binomtest(only_a, only_b, both):
    a = [1] * only_a + [0] * only_b + [1] * both + [0] * 4
    b = [0] * only_a + [1] * only_b + [1] * both + [0] * 4
    r = stats.mcnemar(a, b)
    assert (r.only_a, r.only_b, r.n) == (only_a, only_b, len(a))
    expected = 1.0 if only_a + only_b == 0 else sp.binomtest(only_a, only_a + only_b, 0.5).pvalue
    assert r.p == pytest.approx(expected, rel=1e-12)


def test_mcnemar_ignores_agreements():
    """Items both get right or both wrong do not move the p-value."""
    few = stats.mcnemar([1] * 9 + [0] * 1, [0] * 9 + [1] * 1)
    many = stats.mcnemar([1] * 9 + [0] * 1 + [1] * 500, [0] * 9 + [1] * 1 + [1] * 500)
    assert few.p == pytest.approx(many.p)


def test_paired_bootstrap_interval_agrees_with_scipy():
    rng = np.random.default_rng(1)
    a = rng.normal(0.3, 1.0, 300)
    b = a - rng.normal(0.2, 0.5, 300)
    ours = stats.paired_bootstrap(a, b, n_boot=20000, seed=3)
    ref = sp.bootstrap((a - b,), np.mean, method="percentile", n_resamples=20000,
                       random_state=np.random.default_rng(4)).confidence_interval
    assert ours.low == pytest.approx(ref.low, abs=0.01) and ours.high == pytest.approx(ref.high, abs=0.01)
    assert ours.diff == pytest.approx(np.mean(a - b))
    assert ours.p < 0.001  # a shift of 0.2 with sd 0.5 over 300 items is far from zero


def test_paired_beats_unpaired_overlap():
    """Two overlapping unpaired intervals, yet the paired test separates them."""
    rng = np.random.default_rng(0)
    difficulty = rng.normal(0, 3, 100)
    a = difficulty + 0.3 + rng.normal(0, 0.1, 100)
    b = difficulty
    ia, ib = stats.bootstrap_interval(a), stats.bootstrap_interval(b)
    assert ia[0] < ib[1]  # the unpaired intervals overlap
    assert stats.compare(a, b).separated


def test_compare_verdicts_both_ways():
    a = [1] * 40 + [0] * 10 + [1] * 150
    b = [0] * 40 + [1] * 10 + [1] * 150
    c = stats.compare(a, b, names=("LoRA", "full"))
    assert c.test == "McNemar" and c.separated and c.direction == "above"
    assert c.verdict.startswith("LoRA above full (McNemar p < 0.001, n = 200)")
    assert c.diff == pytest.approx(0.15)
    assert c.low < 0.15 < c.high
    flipped = stats.compare(b, a, names=("full", "LoRA"))
    assert flipped.direction == "below"
    tie = stats.compare([1, 0, 1, 0, 1] * 6, [0, 1, 1, 0, 1] * 6, names=("x", "y"))
    assert not tie.separated
    assert tie.verdict.startswith("no clear difference between x and y at n = 30 (McNemar p = ")
    assert tie.verdict.count("n = ") == 1


def test_compare_scores_uses_the_sign_flip_test_and_a_bootstrap_interval():
    c = stats.compare([0.5, 0.7, 0.9, 0.4], [0.4, 0.6, 0.9, 0.5])
    assert c.test == "sign-flip test"
    assert "+" in c.interval_text(scale=100, unit=" points")


@pytest.mark.parametrize("n, seed", [(6, 0), (8, 1), (12, 2), (16, 3)])
def test_sign_flip_is_exact_and_equals_scipys_permutation_test(n, seed):
    from scipy.stats import permutation_test

    rng = np.random.default_rng(seed)
    a, b = rng.normal(0.3, 1, n), rng.normal(0, 1, n)
    ours = stats.sign_flip(a, b)
    theirs = permutation_test((a, b), lambda x, y: np.mean(x - y), permutation_type="samples",
                              n_resamples=np.inf, alternative="two-sided")
    assert ours.exact and ours.p == pytest.approx(theirs.pvalue, abs=1e-12)


def test_sign_flip_cannot_go_below_its_floor_at_small_n():
    # eight differences all positive: the smallest p an exact test allows is 2 / 2**8
    f = stats.sign_flip([1.0] * 8, [0.0] * 8)
    assert f.p == pytest.approx(2 / 256)
    # the bootstrap's p-value, which the test replaced, claims far more here
    assert stats.paired_bootstrap([1.0] * 8, [0.0] * 8).p < f.p
    assert "p = 0.008" in stats.compare([1.0] * 8, [0.0] * 8).verdict


def test_sign_flip_samples_beyond_the_exact_size_and_ignores_ties():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.0, 1, 40), rng.normal(0.0, 1, 40)
    sampled = stats.sign_flip(a, b, n_perm=20000)
    from scipy.stats import permutation_test

    ref = permutation_test((a, b), lambda x, y: np.mean(x - y), permutation_type="samples",
                           n_resamples=20000, alternative="two-sided", random_state=1).pvalue
    assert not sampled.exact and abs(sampled.p - ref) < 0.03
    tied = stats.sign_flip([1.0, 2.0, 3.0, 5.0], [1.0, 2.0, 3.0, 4.0])
    assert (tied.n, tied.n_nonzero) == (4, 1) and tied.p == 1.0
    assert stats.sign_flip([1.0, 1.0], [1.0, 1.0]).p == 1.0


def test_timings_verdicts():
    fast, slow = [1.0, 1.05, 1.1], [2.0, 2.1, 2.4]
    assert stats.compare_timings(fast, slow, ("cached", "uncached")).verdict.startswith("cached 2.0x faster")
    assert stats.compare_timings(slow, fast, ("x", "y")).verdict.startswith("x 2.0x slower")
    loaded = stats.compare_timings([1.0, 3.0], [1.2, 2.0], ("x", "y"))  # the repeats overlap
    assert not loaded.separated and "no clear difference" in loaded.verdict
    close = stats.compare_timings([1.0, 1.01], [1.03, 1.04])  # apart but by 3%
    assert not close.separated


def test_detectable_difference_shrinks_with_n():
    d100, d400 = stats.detectable_difference(100, 0.2), stats.detectable_difference(400, 0.2)
    assert d400 == pytest.approx(d100 / 2)
    assert 0.1 < d100 < 0.15  # (1.96 + 0.84) * sqrt(0.2 / 100) = 0.125


@pytest.mark.parametrize("call,exc", [
    (lambda: stats.wilson_interval(5, 4), ValueError),
    (lambda: stats.wilson_interval(5, 10, level=95), ValueError),
    (lambda: stats.wilson_interval(2.5, 10), TypeError),
    (lambda: stats.mcnemar([1, 0, 2], [1, 0, 1]), ValueError),
    (lambda: stats.mcnemar([1, 0], [1, 0, 1]), ValueError),
    (lambda: stats.paired_bootstrap([], []), ValueError),
    (lambda: stats.paired_bootstrap([1.0, float("nan")], [1.0, 2.0]), ValueError),
    (lambda: stats.paired_bootstrap("abc", "abd"), TypeError),
    (lambda: stats.paired_bootstrap([1, 2], [1, 2], n_boot=5), ValueError),
    (lambda: stats.compare([1, 0], [0, 1], names="AB"), TypeError),
    (lambda: stats.compare_timings([1.0], [2.0, 2.0]), ValueError),
    (lambda: stats.compare_timings([1.0, -1.0], [2.0, 2.0]), ValueError),
    (lambda: stats.detectable_difference(100, 1.5), ValueError),
    (lambda: stats.bootstrap_interval([[1, 2], [3, 4]]), ValueError),
])
def test_bad_input(call, exc):
    with pytest.raises(exc):
        call()


def test_two_proportions_against_scipy_fisher_and_newcombe():
    r = stats.two_proportions(30, 100, 15, 100, names=("train", "held-out"))
    assert r.p == pytest.approx(sp.fisher_exact([[30, 70], [15, 85]])[1])
    # Newcombe (1998), method 10, from the two Wilson intervals
    (la, ua), (lb, ub) = stats.wilson_interval(30, 100), stats.wilson_interval(15, 100)
    assert r.low == pytest.approx(0.15 - ((0.30 - la) ** 2 + (ub - 0.15) ** 2) ** 0.5)
    assert r.high == pytest.approx(0.15 + ((ua - 0.30) ** 2 + (0.15 - lb) ** 2) ** 0.5)
    assert r.verdict.startswith("train above held-out (Fisher exact p = 0.0")
    same = stats.two_proportions(10, 100, 11, 100)
    assert same.verdict.startswith("no clear difference between A and B")


def test_compare_unpaired_is_welchs_test():
    rng = np.random.default_rng(2)
    a, b = rng.normal(1.0, 1.0, 40), rng.normal(0.0, 2.0, 60)
    r = stats.compare_unpaired(a, b)
    ref = sp.ttest_ind(a, b, equal_var=False)
    assert r.p == pytest.approx(ref.pvalue)
    ci = ref.confidence_interval()
    assert (r.low, r.high) == pytest.approx((ci.low, ci.high))
    assert r.diff == pytest.approx(a.mean() - b.mean())
