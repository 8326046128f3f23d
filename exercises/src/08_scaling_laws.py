# %% [markdown]
# # Exercises: 8. Scaling laws and compute-optimal models
#
# These exercises go with [chapter 8](../../chapters/08_scaling_laws.ipynb). You count
# the compute of a training run, split a compute budget between parameters and tokens
# the Chinchilla way, fit a power law to measured points, and estimate how long a run
# takes on a cluster. Each check runs your code on the example and on hidden cases and
# compares it with `llmlab.scaling`.
#
# Write your code where it says `raise NotImplementedError` or `...`, run the cell,
# then run the check below it.

# %%
import math

import numpy as np

from llmlab import exercises as ex

# %% [markdown] {"exercise": "compute", "minutes": 10}
# ## The compute of a training run
#
# Training a model of $N$ parameters on $D$ tokens takes about $C = 6ND$ floating-point
# operations: 2 per parameter and token in the forward pass, 4 in the backward pass
# (Kaplan et al. 2020, "Scaling Laws for Neural Language Models"). Compute budgets are
# often quoted in petaFLOP/s-days: $10^{15}$ FLOP/s sustained for a whole day (`24 * 3600` s).
# Write `training_compute(n_params, n_tokens)` returning `(flops, pf_days)`.

# %%
def training_compute(n_params: float, n_tokens: float) -> tuple[float, float]:
    """(training FLOPs = 6 N D, the same in petaFLOP/s-days)."""
    ### BEGIN SOLUTION
    flops = 6 * n_params * n_tokens
    return flops, flops / (1e15 * 86_400)
    ### END SOLUTION


# %% {"role": "try"}
flops, days = training_compute(70e9, 1.4e12)
print(f"Chinchilla: {flops:.3g} FLOPs = {days:,.0f} PF-days")

# %% {"role": "check"}
ex.check_training_compute(training_compute)

# %% [markdown] {"exercise": "optimal", "minutes": 10}
# ## Splitting a budget: parameters or tokens?
#
# Hoffmann et al. (2022, "Training Compute-Optimal Large Language Models") found that
# for a fixed budget the loss is lowest with about 20 training tokens per parameter.
# Write `compute_optimal(compute_flops)`: the $(N, D)$ with $6ND = C$ and $D = 20N$.

# %%
def compute_optimal(compute_flops: float) -> tuple[float, float]:
    """(n_params, n_tokens) with 6 N D = C and D = 20 N."""
    ### BEGIN SOLUTION
    n = math.sqrt(compute_flops / (6 * 20))
    return n, 20 * n
    ### END SOLUTION


# %% {"role": "try"}
n, d = compute_optimal(5.76e23)
print(f"{n / 1e9:.0f}e9 parameters, {d / 1e12:.2f}e12 tokens")

# %% {"role": "check"}
ex.check_compute_optimal(compute_optimal)

# %% [markdown] {"exercise": "fit", "minutes": 15}
# ## Fitting a power law
#
# Scaling laws are power laws, $y = a x^b$: straight lines on log-log axes, since
# $\log y = \log a + b \log x$. Write `fit_power_law(x, y)` returning `(a, b)` from a
# least-squares line through $(\log x, \log y)$ (`np.polyfit(..., deg=1)` fits one).

# %%
def fit_power_law(x: list[float], y: list[float]) -> tuple[float, float]:
    """(a, b) of y = a * x**b, least squares in log-log space."""
    ### BEGIN SOLUTION
    b, log_a = np.polyfit(np.log(x), np.log(y), deg=1)
    return float(np.exp(log_a)), float(b)
    ### END SOLUTION


# %% {"role": "try"}
a, b = fit_power_law([1, 2, 4, 8], [3.0, 1.5, 0.75, 0.375])
print(f"a = {a:.4f}, b = {b:.4f}")

# %% {"role": "check"}
ex.check_power_law_fit(fit_power_law)

# %% [markdown] {"exercise": "days", "minutes": 10}
# ## How long on a cluster?
#
# Narayanan et al. (2021, "Efficient Large-Scale Language Model Training on GPU Clusters
# Using Megatron-LM") estimate the time of a run as $8TP/(nX)$ seconds: $T$ tokens, $P$
# parameters, $n$ GPUs each sustaining $X$ FLOP/s, and 8 FLOPs per parameter and token
# because activation recomputation runs the forward pass twice. Write
# `training_days(n_params, n_tokens, n_gpus, flops_per_gpu)`.

# %%
def training_days(n_params: float, n_tokens: float, n_gpus: int,
                  flops_per_gpu: float) -> float:
    """Days to train: 8 T P / (n X) seconds."""
    ### BEGIN SOLUTION
    return 8 * n_tokens * n_params / (n_gpus * flops_per_gpu) / 86_400
    ### END SOLUTION


# %% {"role": "try"}
days = training_days(175e9, 300e9, 1024, 140e12)
print(f"GPT-3 on 1024 GPUs at 140 TFLOP/s: {days:.0f} days")

# %% {"role": "check"}
ex.check_training_days(training_days)

# %% [markdown] {"exercise": "quiz", "minutes": 5}
# ## Quiz: scaling laws
#
# Answer with numbers, and for the last question one of `"straight line"`,
# `"parabola"` or `"exponential"`.

# %%
answers = {
    "tokens per parameter of the Chinchilla rule of thumb": ...,
    "if the compute budget grows 100 times,"
    " how many times larger is the compute-optimal model": ...,
    "on a log-log plot a power law is a (straight line, parabola or exponential)": ...,
}
### BEGIN SOLUTION
answers = {
    "tokens per parameter of the Chinchilla rule of thumb": 20,
    "if the compute budget grows 100 times,"
    " how many times larger is the compute-optimal model": 10,
    "on a log-log plot a power law is a (straight line, parabola or exponential)":
        "straight line",
}
### END SOLUTION

# %% {"role": "check"}
ex.check_scaling_quiz(answers)
