"""scaling_fits.fit_frontier and scaling.BloombergBudget against hand computations."""

import math

import numpy as np
import pytest

from llmlab import scaling, scaling_fits


def test_fit_frontier_recovers_a_planted_floor_and_the_floorless_law_fits_worse():
    c = np.logspace(10, 13, 8)
    loss = 0.4 + 3e4 * c ** -0.45
    fits = scaling_fits.fit_frontier(c, loss, n_boot=20, seed=0)
    floor = fits["with floor"]
    assert floor.params["E"] == pytest.approx(0.4, rel=1e-3)
    assert floor.params["b"] == pytest.approx(0.45, rel=1e-3)
    assert floor.residual_rms < 1e-6 < fits["power law"].residual_rms


def test_fit_frontier_finds_no_floor_in_a_pure_power_law():
    c = np.logspace(10, 13, 8)
    fits = scaling_fits.fit_frontier(c, 5e3 * c ** -0.3, n_boot=20, seed=0)
    assert fits["with floor"].params["E"] < 1e-3
    assert fits["power law"].params["b"] == pytest.approx(-0.3, rel=1e-9)


def test_fit_frontier_needs_four_points():
    with pytest.raises(ValueError, match="at least 4 points"):
        scaling_fits.fit_frontier([1e10, 1e11, 1e12], [3.0, 2.0, 1.0])


def test_bloomberg_budget_by_hand():
    b = scaling.BloombergBudget()
    assert b.tokens_available == 708e9
    assert b.run_flops == pytest.approx(6 * 50.6e9 * 569e9)
    # 1.3M GPU-hours at 102 TFLOP/s, of which the model's own 6 of every 8 FLOPs per parameter and token
    assert b.budget_flops == pytest.approx(1.3e6 * 3600 * 102e12 * 6 / 8)
    table = b.table()
    n_budget = math.sqrt(b.budget_flops / 120) / 1e9  # C = 6 N D, D = 20 N
    assert table["optimal parameters (B)"].iloc[0] == pytest.approx(n_budget)
    assert table["optimal tokens / data set"].iloc[0] == pytest.approx(20 * n_budget * 1e9 / 708e9)
    assert table["optimal tokens / tokens trained"].iloc[1] == pytest.approx(
        20 * math.sqrt(b.run_flops / 120) / 569e9)


def test_a_fit_prints_an_interval_bound_pinned_at_zero_as_zero():
    from llmlab.scaling_fits import Fit

    pinned = Fit({"E": 0.2056}, {"E": 0.1}, {"E": (1.594e-11, 0.36)}, n_points=4)
    again = Fit({"E": 0.2056}, {"E": 0.1}, {"E": (1.778e-11, 0.36)}, n_points=4)
    assert str(pinned) == str(again) == "E = 0.2056 [0, 0.36] (95% intervals, 4 points)"
    real = Fit({"b": -0.05}, {"b": 0.01}, {"b": (-0.0712, -0.0301)}, n_points=9)
    assert str(real) == "b = -0.05 [-0.0712, -0.0301] (95% intervals, 9 points)"
    wide = Fit({"A": 4.076e9}, {"A": 1.0}, {"A": (4836.0, 4.001e16)}, n_points=4)
    assert str(wide) == "A = 4.076e+09 [4836, 4.001e+16] (95% intervals, 4 points)"
