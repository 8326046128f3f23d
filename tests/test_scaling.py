"""Tests of llmlab.scaling, scaling_fits, sweep and the budget panels (chapter 8): published figures, inverse relations, fits."""

import math

import numpy as np
import pytest

from llmlab import scaling, scaling_fits, sweep, widgets
from llmlab.records import scaling_sweep


def test_gpt3_training_compute_matches_brown_et_al():
    # Brown et al. 2020, table D.1: GPT-3 175B, 300B tokens, 3.14e23 FLOPs, 3,640 PF-days.
    flops = scaling.training_flops(175e9, 300e9)
    assert flops == pytest.approx(3.14e23, rel=0.01)
    assert scaling.pf_days(flops) == pytest.approx(3640, rel=0.01)
    assert scaling.pf_days(8.64e19) == pytest.approx(1.0)


def test_chinchilla_optimal_inverts_six_n_d():
    # Chinchilla: 70B parameters on 1.4T tokens is 20 tokens per parameter (Hoffmann et al. 2022).
    n, d = scaling.chinchilla_optimal(6 * 70e9 * 1.4e12)
    assert n == pytest.approx(70e9, rel=1e-9) and d == pytest.approx(1.4e12, rel=1e-9)
    n, d = scaling.chinchilla_optimal(1e21, tokens_per_param=5)
    assert d / n == pytest.approx(5) and 6 * n * d == pytest.approx(1e21)


def test_chinchilla_loss_by_hand():
    # 1.69 + 406.4 / 70e9**0.34 + 410.7 / 1.4e12**0.28, worked out by hand: 1.69 + 0.0836 + 0.1631
    assert scaling.chinchilla_loss(70e9, 1.4e12) == pytest.approx(1.9367, abs=5e-4)
    # more parameters or more data never hurts, and the loss tends to E
    assert scaling.chinchilla_loss(1e9, 1e11) > scaling.chinchilla_loss(2e9, 1e11) > scaling.chinchilla_loss(2e9, 2e11)
    assert scaling.chinchilla_loss(1e30, 1e30) == pytest.approx(1.69, abs=1e-3)


def test_training_days_matches_narayanan_et_al():
    # Narayanan et al. 2021, section 5.1: GPT-3 (175B, 300B tokens) on 1024 A100s at 140 TFLOP/s: about 34 days;
    # the 1T model on 450B tokens on 3072 A100s at 163 TFLOP/s: about 84 days.
    assert scaling.training_days(175e9, 300e9, 1024, 140e12) == pytest.approx(34, abs=0.5)
    assert scaling.training_days(1e12, 450e9, 3072, 163e12) == pytest.approx(84, abs=1)
    # without recomputation the factor is 6 instead of 8
    assert scaling.training_days(1, 86400, 1, 1, flops_per_token_factor=6) == pytest.approx(6)
    x = scaling.achieved_flops_per_gpu(175e9, 300e9, 1024, 34.0)
    assert x == pytest.approx(140e12, rel=0.02)


@pytest.mark.parametrize("call", [
    lambda: scaling.training_flops(0, 1e9),
    lambda: scaling.training_flops(1e9, -5),
    lambda: scaling.training_flops(float("nan"), 1),
    lambda: scaling.pf_days(0),
    lambda: scaling.chinchilla_optimal(-1e20),
    lambda: scaling.chinchilla_optimal(1e20, tokens_per_param=0),
    lambda: scaling.chinchilla_loss(0, 1e9),
    lambda: scaling.training_days(1e9, 1e9, 0, 1e12),
    lambda: scaling.training_days(1e9, 1e9, 2.5, 1e12),
    lambda: scaling.training_days(1e9, 1e9, 8, 0),
    lambda: scaling.training_flops("many", 1),
])
def test_non_positive_inputs_raise(call):
    with pytest.raises(ValueError, match="must be"):
        call()


def test_fit_power_law_recovers_exponent_within_interval():
    rng = np.random.default_rng(0)
    x = np.logspace(15, 18, 12)
    y = 7.0 * x ** -0.05 * np.exp(rng.normal(0, 0.01, x.size))
    fit = scaling_fits.fit_power_law(x, y)
    lo, hi = fit.ci["b"]
    assert lo < -0.05 < hi and hi - lo < 0.02
    assert fit.params["a"] == pytest.approx(7.0, rel=0.5)
    exact = scaling_fits.fit_power_law([1, 2, 4], [3, 12, 48])  # y = 3 x^2 exactly
    assert exact.params["b"] == pytest.approx(2) and exact.params["a"] == pytest.approx(3)


def test_fit_power_law_bad_input():
    with pytest.raises(ValueError, match="at least 3 points"):
        scaling_fits.fit_power_law([1, 2], [1, 2])
    with pytest.raises(ValueError, match="> 0"):
        scaling_fits.fit_power_law([1, 2, 0], [1, 2, 3])
    with pytest.raises(ValueError, match="> 0"):
        scaling_fits.fit_power_law([1, 2, 3], [1, -2, 3])
    with pytest.raises(ValueError, match="one value per point"):
        scaling_fits.fit_power_law([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="two different values"):
        scaling_fits.fit_power_law([2, 2, 2], [1, 2, 3])


def test_fit_chinchilla_recovers_synthetic_law():
    truth = {"E": 1.2, "A": 40.0, "B": 60.0, "alpha": 0.3, "beta": 0.35}
    n, d = np.meshgrid(np.logspace(4, 7, 5), np.logspace(6, 9, 5))
    n, d = n.ravel(), d.ravel()
    rng = np.random.default_rng(1)
    loss = np.array([scaling.chinchilla_loss(a, b, truth) for a, b in zip(n, d)]) * np.exp(rng.normal(0, 0.002, n.size))
    fit = scaling_fits.fit_chinchilla(n, d, loss, n_boot=30)
    for k in ("E", "alpha", "beta"):
        lo, hi = fit.ci[k]
        assert lo - 0.02 <= truth[k] <= hi + 0.02, (k, fit)
    assert fit.params["alpha"] == pytest.approx(0.3, abs=0.05)
    assert fit.params["beta"] == pytest.approx(0.35, abs=0.05)


def test_fit_chinchilla_needs_more_points_than_parameters():
    with pytest.raises(ValueError, match="at least 6 points"):
        scaling_fits.fit_chinchilla([1e6] * 5, [1e8] * 5, [3.0] * 5)
    with pytest.raises(ValueError, match="> 0"):
        scaling_fits.fit_chinchilla([1e6] * 6, [1e8] * 6, [3.0] * 5 + [0.0])


def test_optimal_allocation_under_published_fit():
    # equal exponents would give a constant ratio; with alpha > beta, N grows as C^(beta/(alpha+beta)) ~ C^0.45
    n1, d1 = scaling.optimal_allocation(1e21)
    n2, d2 = scaling.optimal_allocation(1e23)
    assert 6 * n1 * d1 == pytest.approx(1e21)
    assert math.log(n2 / n1) / math.log(100) == pytest.approx(0.28 / 0.62, abs=1e-9)


def test_isoflop_minima_finds_the_bottom_of_a_known_valley():
    import pandas as pd

    rows = []
    for budget, n_best in ((1e12, 5e4), (1e13, 2e5)):
        for n in np.logspace(np.log10(n_best) - 1, np.log10(n_best) + 1, 5):
            rows.append({"budget_flops": budget, "n_params": n, "val_loss": 3 + 0.1 * np.log(n / n_best) ** 2})
    minima = scaling_fits.isoflop_minima(pd.DataFrame(rows))
    assert list(minima["n_opt"]) == pytest.approx([5e4, 2e5], rel=1e-6)
    assert list(minima["tokens_opt"]) == pytest.approx([1e12 / 3e5, 1e13 / 12e5], rel=1e-6)
    assert minima["interior"].all() and list(minima["loss_opt"]) == pytest.approx([3, 3])


def test_frontier_keeps_the_best_run_of_each_budget():
    import pandas as pd

    runs = pd.DataFrame({"budget_flops": [1, 1, 2, 2], "val_loss": [3.0, 2.0, 1.5, 1.7], "size": list("abcd")})
    assert list(scaling_fits.frontier(runs)["size"]) == ["b", "c"]


def test_tokens_per_param_with_equal_exponents_is_a_constant():
    # alpha = beta: N_opt = (A/B)^(1/(2 alpha)) sqrt(C/6) and D/N = (B/A)^(1/alpha), whatever the budget
    fit = scaling_fits.Fit(params={"E": 1.0, "A": 100.0, "B": 400.0, "alpha": 0.5, "beta": 0.5}, stderr={}, ci={}, n_points=6)
    for c in (1e15, 1e20):
        ratio, (lo, hi) = scaling_fits.tokens_per_param_at(c, fit)
        assert ratio == pytest.approx(16.0) and lo == hi == pytest.approx(16.0)


def test_sweep_config_spends_the_budget_in_whole_steps():
    n, cfg = sweep.sweep_config("s2", 1e11)
    tokens = cfg.steps * cfg.tokens_per_step
    assert abs(6 * n * tokens - 1e11) <= 6 * n * cfg.tokens_per_step / 2  # rounded to the nearest step
    assert cfg.eval_every == cfg.steps and cfg.warmup_steps <= cfg.steps
    with pytest.raises(ValueError, match="unknown sweep size"):
        sweep.sweep_model("s99")
    with pytest.raises(ValueError, match="compute_flops"):
        sweep.sweep_config("s2", 0)


def test_plan_budget_and_gpu_hours():
    plan = scaling.plan_budget(6 * 70e9 * 1.4e12, n_gpus=1000, flops_per_gpu=1e14)
    assert plan.n_params == pytest.approx(70e9) and plan.n_tokens == pytest.approx(1.4e12)
    assert plan.days == pytest.approx(8 * 70e9 * 1.4e12 / (1000 * 1e14) / 86400)
    assert plan.gpu_hours == pytest.approx(plan.days * 24 * 1000)
    # one GPU-hour at 1e14 FLOP/s is 3.6e17 hardware FLOPs; recomputation leaves 6/8 of it for 6ND
    assert scaling.gpu_hours_to_flops(1, 1e14) == pytest.approx(3.6e17 * 0.75)
    with pytest.raises(ValueError, match="gpu_hours"):
        scaling.gpu_hours_to_flops(0)


def test_static_budget_slider_has_a_frame_per_combination():
    html = widgets.static_budget_slider().data
    n = len(widgets.STATIC_BUDGETS) * len(widgets.STATIC_GPUS) * len(widgets.STATIC_TFLOPS)
    assert f'data-frames="{n}"' in html
    for name in scaling.LANDMARKS:
        assert name in html


def test_shipped_sweep_records_code_version_and_machine_and_two_orders_of_compute():
    runs = scaling_sweep.load()
    assert {"code_version", "machine", "n_params", "tokens", "flops", "val_loss"} <= set(runs.columns)
    assert runs["code_version"].str.len().min() >= 7 and (runs["machine"].str.len() > 0).all()
    assert runs["flops"].max() / runs["flops"].min() >= 100
    assert (runs["flops"] / runs["budget_flops"]).between(0.9, 1.1).all()
    planned = {(size, c, seed) for c, sizes in scaling_sweep.PLAN for size in sizes for seed in scaling_sweep.SEEDS}
    assert set(zip(runs["size"], runs["budget_flops"], runs["seed"])) == planned
    assert len(runs) == len(planned)  # every point once per seed, none twice


def _synthetic_sweep(noise: float, seeds=(0, 1, 2)):
    """Points on parabolas in ln N with their bottom at N = 1000 for every budget, plus seed noise."""
    import pandas as pd

    rng = np.random.default_rng(0)
    rows = []
    for budget in (1e10, 1e11):
        for n in (100, 300, 1000, 3000, 10000):
            for seed in seeds:
                loss = 2.0 + 0.1 * (np.log(n) - np.log(1000)) ** 2 + noise * rng.standard_normal()
                rows.append({"budget_flops": budget, "size": f"n{n}", "n_params": n, "seed": seed,
                             "tokens": budget / (6 * n), "val_loss": loss})
    return pd.DataFrame(rows)


def test_seed_means_average_the_seeds_of_each_point():
    runs = _synthetic_sweep(0.05)
    means = scaling_fits.seed_means(runs)
    assert len(means) == 10 and (means["n_seeds"] == 3).all()
    one = runs[(runs["budget_flops"] == 1e11) & (runs["size"] == "n300")]["val_loss"]
    row = means[(means["budget_flops"] == 1e11) & (means["size"] == "n300")].iloc[0]
    assert row["val_loss"] == pytest.approx(one.mean()) and row["val_loss_sd"] == pytest.approx(one.std(ddof=1))


def test_bootstrap_isoflop_is_tight_without_noise_and_widens_with_it():
    exact = scaling_fits.bootstrap_isoflop(_synthetic_sweep(0.0), n_boot=50)
    ratio, (lo, hi) = exact["ratio"]
    for budget, row in exact["intervals"].set_index("budget_flops").iterrows():
        assert row["n_opt"] == pytest.approx(1000, rel=1e-6)
        assert row["n_opt_lo"] == pytest.approx(1000, rel=1e-6) and row["n_opt_hi"] == pytest.approx(1000, rel=1e-6)
    assert lo == pytest.approx(hi)
    noisy = scaling_fits.bootstrap_isoflop(_synthetic_sweep(0.05), n_boot=200)
    widths = noisy["intervals"]["n_opt_hi"] / noisy["intervals"]["n_opt_lo"]
    assert (widths > 1.05).all()
    ratio, (lo, hi) = noisy["ratio"]
    assert lo < ratio < hi and noisy["n_ratio_draws"] > 150
    with pytest.raises(ValueError, match="n_boot"):
        scaling_fits.bootstrap_isoflop(_synthetic_sweep(0.0), n_boot=0)


def test_sweep_seeds_change_the_weights_and_the_batches():
    a, b = sweep.sweep_model("s0", 0), sweep.sweep_model("s0", 1)
    assert not torch_equal(a.transformer.wte.weight, b.transformer.wte.weight)
    assert sweep.sweep_config("s1", 1e10, 2)[1].seed == 2
    with pytest.raises(ValueError, match="seed"):
        sweep.sweep_model("s0", -1)


def torch_equal(x, y) -> bool:
    import torch

    return bool(torch.equal(x, y))


def test_a_tiny_sweep_point_trains_and_reports_its_row():
    import torch

    ids = torch.randint(0, 1024, (20_000,), generator=torch.Generator().manual_seed(0))
    row = sweep.run_point("s0", 2e9, ids, ids)
    assert row["n_params"] == sweep.count_params(sweep.sweep_model("s0"))["n_params"]
    assert row["flops"] == pytest.approx(6 * row["n_params"] * row["tokens"])
    assert 0 < row["val_loss"] < 8


def test_scaling_keeps_no_old_names():
    # names that moved are imported from their own modules; scaling resolves no old names
    for name in ("fit_chinchilla", "load_sweep", "SWEEP_PLAN", "static_budget_slider"):
        assert not hasattr(scaling, name), name


def test_scaling_imports_none_of_the_modules_built_on_it():
    import subprocess
    import sys

    code = ("import sys, llmlab.scaling; "
            "print(sorted(m for m in ('llmlab.scaling_fits', 'llmlab.sweep', 'llmlab.widgets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_sweep_record_cli_runs_the_budgets_asked_for(monkeypatch):
    seen = {}
    monkeypatch.setattr(scaling_sweep, "run",
                        lambda out, plan, seeds: seen.update(out=out, plan=plan, seeds=seeds) or out)
    assert scaling_sweep.main(["--out", "/tmp/x.csv", "--budgets", "1e10"]) == 0
    assert seen["out"] == "/tmp/x.csv" and [c for c, _ in seen["plan"]] == [1e10]
    assert seen["seeds"] == list(scaling_sweep.SEEDS)
    assert scaling_sweep.main(["--out", "/tmp/x.csv", "--seeds", "2"]) == 0 and seen["seeds"] == [2]
    with pytest.raises(SystemExit):
        scaling_sweep.main(["--budgets", "5"])


def test_published_nemo_runs_imply_the_throughput_worked_out_by_hand():
    # NeMo-Megatron-Launcher, Oct 2023: 175B in about 24 days on 128 nodes of 8 A100s,
    # 75,000 steps of 2,048 sequences of 2,048 tokens = 314,572,800,000 tokens.
    # 8 * 175e9 * 314.5728e9 / (1024 * 24 * 86,400 s) = 207.4 TFLOP/s; with 6 instead of 8, 155.6.
    table = scaling.published_throughput()
    row = table[(table["model"] == "175B") & (table["days"] == 24)].iloc[0]
    assert row["tokens"] == 314_572_800_000 and row["n_gpus"] == 1024
    assert row["flops_8tp"] == pytest.approx(207.407e12, rel=1e-4)
    assert row["flops_6tp"] == pytest.approx(155.556e12, rel=1e-4)
    assert row["verdict_8tp"] == "above measured" and row["verdict_6tp"] == "above measured"
    # 126M in about 20 hours on 64 GPUs: 8 * 126e6 * 314.5728e9 / (64 * 72,000 s) = 68.8 TFLOP/s
    small = table[(table["model"] == "126M") & (table["days"] < 1)].iloc[0]
    assert small["flops_8tp"] == pytest.approx(68.81e12, rel=1e-3) and small["verdict_8tp"] == "far below"
    # the measured 5B run, 300B tokens in 4.8 days on 160 GPUs: 6 * 5e9 * 300e9 / (160 * 414,720 s) = 135.6
    run = table[table["days"] == 4.8].iloc[0]
    assert run["flops_6tp"] == pytest.approx(135.63e12, rel=1e-3) and run["verdict_6tp"] == "consistent"
    assert len(table) == len(scaling.NEMO_GPT3_RUNS) and set(table["model"]) == {"126M", "5B", "20B", "40B", "175B"}


def test_throughput_verdict_bands():
    assert scaling.throughput_verdict(140e12) == "consistent"
    assert scaling.throughput_verdict(146e12) == "consistent"      # within the 5% tolerance
    assert scaling.throughput_verdict(148e12) == "above measured"
    assert scaling.throughput_verdict(71e12) == "consistent"
    assert scaling.throughput_verdict(69e12) == "far below"        # under half of 140
    assert scaling.throughput_verdict(100e12, measured=200e12, far_below=0.6) == "far below"


def test_predicted_days_reproduce_narayanan_et_al_34_days():
    # Narayanan et al. 2021: GPT-3 175B on 300B tokens, 1,024 A100s at 140 TFLOP/s: about 34 days
    grid = scaling.predicted_days({"175B": 175e9, "126M": 126e6}, [64, 1024])
    assert list(grid.columns) == [64, 1024] and list(grid.index) == ["175B", "126M"]
    assert grid.loc["175B", 1024] == pytest.approx(33.91, abs=0.01)
    assert grid.loc["175B", 64] == pytest.approx(16 * grid.loc["175B", 1024])
    assert grid.loc["126M", 1024] == pytest.approx(33.91 * 126e6 / 175e9, rel=1e-3)


def test_sweep_record_resumes_and_merges(tmp_path, monkeypatch):
    import pandas as pd

    calls = []

    def fake_point(size, budget, train_ids, val_ids, seed=0):
        calls.append((size, budget, seed))
        return {"size": size, "seed": seed, "budget_flops": budget, "val_loss": 1.0 + seed}

    monkeypatch.setattr(scaling_sweep, "run_point", fake_point)
    monkeypatch.setattr(scaling_sweep, "sweep_data", lambda: (None, None))
    plan = [(1e10, ["s0", "s1"])]
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    scaling_sweep.run(a, plan, progress=False, seeds=[0])
    scaling_sweep.run(a, plan, progress=False, seeds=[0, 1])  # seed 0 is there: only seed 1 runs
    assert calls == [("s0", 1e10, 0), ("s1", 1e10, 0), ("s0", 1e10, 1), ("s1", 1e10, 1)]
    scaling_sweep.run(b, plan, progress=False, seeds=[2])
    merged = pd.read_csv(scaling_sweep.merge([a, b], tmp_path / "m.csv"))
    assert list(zip(merged["size"], merged["seed"])) == [("s0", 0), ("s1", 0), ("s0", 1), ("s1", 1),
                                                          ("s0", 2), ("s1", 2)]

