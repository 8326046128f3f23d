"""Scaling laws and compute budgets as arithmetic (chapter 8).

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
  "Training Compute-Optimal Large Language Models"),
  :func:`chinchilla_loss` is their parametric fit ``L(N, D) = E + A/N^alpha + B/D^beta``
  and :func:`optimal_allocation` its minimum at a fixed budget.
- :func:`training_days` is the training-time estimate of Narayanan et al. 2021,
  "Efficient Large-Scale Language Model Training on GPU Clusters Using
  Megatron-LM": ``8 T P / (n X)`` seconds with activation recomputation (an extra
  forward pass), ``6 T P / (n X)`` without; :func:`achieved_flops_per_gpu` is its
  inverse, :func:`throughput_verdict` judges such a figure against a measured one, and
  :data:`NEMO_GPT3_RUNS` holds NVIDIA's published GPT-3 training times to invert.
- :func:`plan_budget`, :func:`gpu_hours_to_flops` and :class:`BloombergBudget` turn a
  budget into a compute-optimal model and back.
- :func:`reproduce_days_table` rebuilds a published table of training days (such as
  :data:`TALK_GPT3_DAYS`, from an NVIDIA talk, Grzywaczewski 2023) and shows the per-GPU
  rate each cell implies; :data:`BESIROGLU_FIT` is Besiroglu et al. 2024's re-fit of
  Hoffmann et al.'s loss, and :func:`attention_flops_share` the part of training compute
  that ``6 N D`` leaves out.

The rest of chapter 8's code lives next door, and each of those modules imports this
one, never the other way round: :mod:`llmlab.scaling_fits` (fitting laws to runs),
:mod:`llmlab.sweep` (the sweep of tiny models; ``python -m llmlab.records.scaling_sweep``
records it) and :mod:`llmlab.widgets` (the compute-budget panels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import _checks

if TYPE_CHECKING:
    import pandas as pd

#: Seconds in a day, and FLOPs in one petaFLOP/s-day (10^15 FLOP/s for 86,400 s).
SECONDS_PER_DAY = 86_400
PF_DAY = 1e15 * SECONDS_PER_DAY

#: Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models", section 3.3 and
#: appendix D.2 (their equation 10): the parametric loss fit ``E + A / N**alpha + B / D**beta``
#: (loss in nats per token on MassiveText, N parameters, D training tokens).
CHINCHILLA_FIT = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}

#: The compute-optimal ratio Hoffmann et al. 2022 is usually summarised by: about 20 tokens per parameter.
CHINCHILLA_TOKENS_PER_PARAM = 20.0


def training_flops(n_params: float, n_tokens: float) -> float:
    """Training compute in FLOPs: ``6 * n_params * n_tokens`` (2 forward + 4 backward
    per parameter per token).

    ``n_params`` counts the weights that take part in matrix products (with a tied
    embedding, counted once: the output projection is a matrix product, the input
    lookup is free); the attention scores add ``6 * n_layer * seq_len * d_model`` per
    token, 9 to 16 per cent for the models of chapter 8, left out as Kaplan et al. 2020
    do.
    """
    return 6.0 * _checks.positive("n_params", n_params) * _checks.positive("n_tokens", n_tokens)


def pf_days(flops: float) -> float:
    """FLOPs expressed in petaFLOP/s-days (1 PF-day = 10^15 FLOP/s * 86,400 s = 8.64e19 FLOPs)."""
    return _checks.positive("flops", flops) / PF_DAY


def chinchilla_optimal(compute_flops: float, tokens_per_param: float = CHINCHILLA_TOKENS_PER_PARAM) -> tuple[float, float]:
    """The compute-optimal (n_params, n_tokens) for a budget of ``compute_flops`` FLOPs.

    Solves ``C = 6 N D`` with ``D = tokens_per_param * N``: ``N = sqrt(C / (6 r))``,
    ``D = r N``. The default ``r = 20`` is Hoffmann et al. 2022's rule of thumb.
    """
    c = _checks.positive("compute_flops", compute_flops)
    r = _checks.positive("tokens_per_param", tokens_per_param)
    n = math.sqrt(c / (6.0 * r))
    return n, r * n


def chinchilla_loss(n_params: float, n_tokens: float, fit: dict | None = None) -> float:
    """Predicted pre-training loss (nats per token) of ``n_params`` parameters trained on ``n_tokens`` tokens.

    ``E + A / N**alpha + B / D**beta`` with the constants of :data:`CHINCHILLA_FIT`
    (Hoffmann et al. 2022), or with ``fit``, a dict of the same five keys (for example
    ``fit_chinchilla(...).params``). E is the entropy of text that no model removes;
    the two other terms are what a finite model and finite data leave on top.
    """
    n = _checks.positive("n_params", n_params)
    d = _checks.positive("n_tokens", n_tokens)
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
    p = _checks.positive("n_params", n_params)
    t = _checks.positive("n_tokens", n_tokens)
    if isinstance(n_gpus, bool) or not isinstance(n_gpus, (int, np.integer)) or n_gpus < 1:
        raise ValueError(f"n_gpus must be a whole number >= 1, got {n_gpus!r}")
    x = _checks.positive("flops_per_gpu", flops_per_gpu)
    k = _checks.positive("flops_per_token_factor", flops_per_token_factor)
    return k * t * p / (n_gpus * x) / SECONDS_PER_DAY


def achieved_flops_per_gpu(n_params: float, n_tokens: float, n_gpus: int, days: float,
                           flops_per_token_factor: float = 8.0) -> float:
    """The per-GPU FLOP/s that makes :func:`training_days` come out at ``days`` (its inverse)."""
    d = _checks.positive("days", days)
    return training_days(n_params, n_tokens, n_gpus, 1.0, flops_per_token_factor) / d


def optimal_allocation(compute_flops: float, fit: dict | None = None) -> tuple[float, float]:
    """Compute-optimal (n_params, n_tokens) under a parametric fit (default: Hoffmann et al. 2022's).

    Minimising ``E + A/N^alpha + B/D^beta`` subject to ``6 N D = C`` gives
    ``N = G (C/6)^(beta/(alpha+beta))`` with ``G = (alpha A / (beta B))^(1/(alpha+beta))``
    and ``D = C / (6 N)`` (Hoffmann et al. 2022, their equation 4).
    """
    c = _checks.positive("compute_flops", compute_flops)
    p = CHINCHILLA_FIT if fit is None else fit
    a, b = p["alpha"], p["beta"]
    g = (a * p["A"] / (b * p["B"])) ** (1.0 / (a + b))
    n = g * (c / 6.0) ** (b / (a + b))
    return n, c / (6.0 * n)


# ------------------------------------------------------------------ what a budget buys

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
    return _checks.positive("gpu_hours", gpu_hours) * 3600 * _checks.positive("flops_per_gpu", flops_per_gpu) * 6.0 / \
        _checks.positive("flops_per_token_factor", flops_per_token_factor)


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

    def __post_init__(self) -> None:
        for name in ("n_params", "tokens_trained", "gpu_hours_budget", "flops_per_gpu", "tokens_per_param"):
            _checks.positive(name, getattr(self, name))
        for name in ("tokens_domain", "tokens_general"):
            _checks.non_negative(name, getattr(self, name))

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


# ------------------------------------------------------------------ published training times

#: Narayanan et al. 2021: GPT-3 175B on 1,024 A100s with Megatron-LM sustained
#: 140 TFLOP/s per GPU (counting 8 T P, recomputation included), and the A100's dense
#: BF16 peak is 312 TFLOP/s (NVIDIA's A100 datasheet).
MEASURED_FLOPS_PER_GPU = 140e12
A100_BF16_PEAK = 312e12


@dataclass(frozen=True)
class PublishedRun:
    """A training time as published: ``days`` on ``n_gpus`` GPUs for ``model`` (``n_params``
    parameters) trained on ``tokens`` tokens, and where it was published."""

    model: str
    n_params: float
    n_gpus: int
    days: float
    tokens: float
    source: str


_MAY_2022 = "README, May 2022"
_OCT_2023 = "README, Oct 2023"
_TOKENS_2022 = 105_000 * 1440 * 2048  # steps x global batch x sequence length of 5b/20b/40b.yaml
_TOKENS_2023 = 75_000 * 2048 * 2048  # the same for every size but 126M in the Oct 2023 configs
_TOKENS_126M = 600_000 * 256 * 2048  # 126m.yaml in both versions

#: NVIDIA's GPT-3 training times, BF16 on DGX A100 nodes (8 A100 80GB each), from the README
#: of github.com/NVIDIA/NeMo-Megatron-Launcher: section "Predefined configurations of GPT
#: models" ("can be trained in about D days using K nodes with 8 GPUs per node") as of commit
#: 2c95835 (May 2022) and commit 80353286 (Oct 2023; the same since Dec 2022), and the one
#: measured run of its section "Training accuracy results", in both versions (5B on 160 GPUs,
#: 300B tokens, 4.8 days). Tokens are max_steps x global_batch_size x 2,048 of the same commit's
#: conf/training/gpt3/<size>.yaml (about 310-315 billion), and 300 billion for the measured run.
NEMO_GPT3_RUNS: list[PublishedRun] = [
    PublishedRun("126M", 126e6, 64, 1.0, _TOKENS_126M, _MAY_2022),
    PublishedRun("5B", 5e9, 160, 7.0, _TOKENS_2022, _MAY_2022),
    PublishedRun("20B", 20e9, 640, 7.0, _TOKENS_2022, _MAY_2022),
    PublishedRun("40B", 40e9, 640, 12.0, _TOKENS_2022, _MAY_2022),
    PublishedRun("175B", 175e9, 1024, 35.0, 100_000 * 1536 * 2048, _MAY_2022),
    PublishedRun("126M", 126e6, 64, 20 / 24, _TOKENS_126M, _OCT_2023),
    PublishedRun("5B", 5e9, 128, 5.0, _TOKENS_2023, _OCT_2023),
    PublishedRun("20B", 20e9, 512, 6.0, _TOKENS_2023, _OCT_2023),
    PublishedRun("40B", 40e9, 1024, 6.0, _TOKENS_2023, _OCT_2023),
    PublishedRun("175B", 175e9, 1024, 24.0, _TOKENS_2023, _OCT_2023),
    PublishedRun("5B", 5e9, 160, 4.8, 300e9, "README, 2022 and 2023, measured run"),
]


def throughput_verdict(flops_per_gpu: float, measured: float = MEASURED_FLOPS_PER_GPU,
                       tolerance: float = 0.05, far_below: float = 0.5) -> str:
    """How a per-GPU throughput implied by a published time compares with a measured one.

    ``"above measured"`` when it exceeds ``measured`` by more than ``tolerance`` (a
    fraction): the time is faster than the measured software achieved, so it assumes
    something else (less recomputation, better kernels) or is optimistic.
    ``"far below"`` under ``far_below * measured``: the GPUs sit mostly idle, as they do
    for a model too small to fill them. ``"consistent"`` in between.
    """
    x = _checks.positive("flops_per_gpu", flops_per_gpu)
    m = _checks.positive("measured", measured)
    tol = _checks.number("tolerance", tolerance, low=0.0)
    low = _checks.number("far_below", far_below, low=0.0, high=1.0, low_open=True, high_open=True)
    if x > m * (1 + tol):
        return "above measured"
    if x < low * m:
        return "far below"
    return "consistent"


def published_throughput(runs: list[PublishedRun] | None = None,
                         measured: float = MEASURED_FLOPS_PER_GPU,
                         peak: float = A100_BF16_PEAK) -> "pd.DataFrame":
    """One row per published run (default :data:`NEMO_GPT3_RUNS`): the per-GPU FLOP/s its
    time implies by ``8 T P / (n X)`` and by ``6 T P / (n X)`` (FLOP/s), as a share of ``peak``,
    and :func:`throughput_verdict` of each against ``measured``."""
    import pandas as pd

    runs = NEMO_GPT3_RUNS if runs is None else runs
    if not isinstance(runs, (list, tuple)) or not all(isinstance(r, PublishedRun) for r in runs):
        raise TypeError(f"runs must be a list of scaling.PublishedRun, got {type(runs).__name__}")
    measured, peak = _checks.positive("measured", measured), _checks.positive("peak", peak)
    rows = []
    for r in runs:
        x8 = achieved_flops_per_gpu(r.n_params, r.tokens, r.n_gpus, r.days, 8.0)
        x6 = achieved_flops_per_gpu(r.n_params, r.tokens, r.n_gpus, r.days, 6.0)
        rows.append({"model": r.model, "n_gpus": r.n_gpus, "days": r.days, "tokens": r.tokens,
                     "flops_8tp": x8, "flops_6tp": x6, "peak_share_8tp": x8 / peak,
                     "verdict_8tp": throughput_verdict(x8, measured),
                     "verdict_6tp": throughput_verdict(x6, measured), "source": r.source})
    return pd.DataFrame(rows)


def predicted_days(sizes: dict[str, float], gpu_counts: list[int], n_tokens: float = 300e9,
                   flops_per_gpu: float = MEASURED_FLOPS_PER_GPU,
                   flops_per_token_factor: float = 8.0) -> "pd.DataFrame":
    """Training days by :func:`training_days` for every model size (rows, name -> parameters) and
    GPU count (columns): a prediction at one per-GPU throughput, the same on any number of GPUs."""
    import pandas as pd

    if not isinstance(sizes, dict) or not sizes:
        raise TypeError(f"sizes must be a non-empty dict of name -> parameters, got {sizes!r}")
    if not isinstance(gpu_counts, (list, tuple)) or not gpu_counts:
        raise TypeError(f"gpu_counts must be a non-empty list of GPU counts, got {gpu_counts!r}")
    return pd.DataFrame(
        {n: [training_days(p, n_tokens, n, flops_per_gpu, flops_per_token_factor) for p in sizes.values()]
         for n in gpu_counts}, index=list(sizes))


# ------------------------------------------------------------------ a table from a talk

#: Grzywaczewski 2023, NVIDIA talk "Generative AI Demystified", slide "GPT-3 Training Time on
#: NVIDIA A100 GPUs": days to train each GPT-3 size on 300 billion tokens in BF16, on 800, 480,
#: 160 and 64 A100s (model -> {GPUs: days}).
TALK_GPT3_DAYS: dict[str, dict[int, float]] = {
    "126M": {800: 0.07, 480: 0.12, 160: 0.37, 64: 0.92},
    "5B": {800: 0.8, 480: 1.3, 160: 3.9, 64: 9.8},
    "20B": {800: 3.6, 480: 6.0, 160: 18.1, 64: 45.3},
    "40B": {800: 6.6, 480: 10.9, 160: 32.8, 64: 82.0},
    "175B": {800: 28.0, 480: 46.7, 160: 140.0, 64: 349.9},
}
#: The parameters each row name of :data:`TALK_GPT3_DAYS` stands for, and its tokens.
TALK_GPT3_SIZES: dict[str, float] = {"126M": 126e6, "5B": 5e9, "20B": 20e9, "40B": 40e9, "175B": 175e9}
TALK_GPT3_TOKENS = 300e9


def reproduce_days_table(days: dict[str, dict[int, float]], sizes: dict[str, float],
                         n_tokens: float = TALK_GPT3_TOKENS,
                         flops_per_token_factor: float = 8.0) -> "pd.DataFrame":
    """Rebuild a published table of training days (model -> {GPUs: days}) with :func:`training_days`.

    Each cell implies a per-GPU rate (FLOP/s, by :func:`achieved_flops_per_gpu`). A table
    that assumes perfect scaling has one rate per model: the row's rate is the geometric
    mean of its cells' rates, and ``formula_days`` is :func:`training_days` at that rate.
    One row per cell: model, n_gpus, days (published), flops_per_gpu (the cell's rate),
    row_flops_per_gpu, formula_days and ratio (published / formula).
    """
    import pandas as pd

    if not isinstance(days, dict) or not days:
        raise TypeError(f"days must be a non-empty dict of model -> {{GPUs: days}}, got {days!r:.60}")
    if not isinstance(sizes, dict):
        raise TypeError(f"sizes must be a dict of model -> parameters, got {type(sizes).__name__}")
    missing = [m for m in days if m not in sizes]
    if missing:
        raise ValueError(f"sizes lacks the models {missing}; it has {sorted(sizes)}")
    rows = []
    for model, cells in days.items():
        if not isinstance(cells, dict) or not cells:
            raise TypeError(f"days[{model!r}] must be a non-empty dict of GPUs -> days, got {cells!r:.60}")
        rates = {n: achieved_flops_per_gpu(sizes[model], n_tokens, n, d, flops_per_token_factor)
                 for n, d in cells.items()}
        row_rate = float(np.exp(np.mean(np.log(list(rates.values())))))
        for n, d in cells.items():
            formula = training_days(sizes[model], n_tokens, n, row_rate, flops_per_token_factor)
            rows.append({"model": model, "n_gpus": n, "days": d, "flops_per_gpu": rates[n],
                         "row_flops_per_gpu": row_rate, "formula_days": formula, "ratio": d / formula})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ since 2023

#: Besiroglu et al. 2024, "Chinchilla Scaling: A replication attempt": their re-fit of Hoffmann
#: et al. 2022's third approach to the data read off Hoffmann et al.'s figure 4.
BESIROGLU_FIT = {"E": 1.82, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}


def attention_flops_share(n_params: float, n_layer: int, d_model: int, seq_len: int) -> float:
    """The training FLOPs that ``6 N D`` leaves out, as a fraction of it (Kaplan et al. 2020).

    Per layer and token, the scores ``Q K^T`` and the weighted sum ``A V`` cost
    ``2 * seq_len * d_model`` FLOPs each over the full context; under a causal mask a
    token sees on average half of it, so the forward pass adds about
    ``2 * n_layer * seq_len * d_model`` FLOPs per token (Kaplan et al.'s count; three
    times that for training) against ``2 N`` for the weights. The share is
    ``n_layer * seq_len * d_model / N`` (a fraction; twice that where the masked half is
    computed anyway, as a plain matrix product does).
    """
    n = _checks.positive("n_params", n_params)
    for name, value in (("n_layer", n_layer), ("d_model", d_model), ("seq_len", seq_len)):
        _checks.positive_int(name, value)
    return n_layer * seq_len * d_model / n
