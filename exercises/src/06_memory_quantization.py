# %% [markdown]
# # Exercises: 6. Memory and quantization
#
# These exercises go with [chapter 6](../../chapters/06_memory_quantization.ipynb). You count
# what training memory is made of, count the parameters of a GPT-2-shaped model from
# its shape, quantize tensors to INT8 in the two ways the chapter shows, and answer a
# quiz on float formats. Each check runs your code on the example and on hidden edge
# cases and says what is right and what is wrong.
#
# Write your code where it says `raise NotImplementedError` or `...`, run the cell,
# then run the check below it.

# %%
import torch

from llmlab import exercises as ex
from llmlab.device import seed_everything

seed_everything(0)

# %% [markdown] {"exercise": "model-states", "minutes": 15}
# ## Model states per GPU under ZeRO
#
# Mixed-precision training with Adam keeps, per parameter (Rajbhandari et al. 2020), 2 bytes
# of 16-bit weights,
# 2 bytes of 16-bit gradients and 12 bytes of optimizer state (an fp32 master copy of
# the weights, the momentum and the variance, 4 bytes each). With plain data
# parallelism every GPU holds all of it. ZeRO (Rajbhandari et al. 2020, "ZeRO: Memory
# Optimizations Toward Training Trillion Parameter Models") shards it across the
# $N_d$ data-parallel GPUs: stage 1 divides the optimizer states by $N_d$, stage 2 also
# the gradients, stage 3 also the parameters.
#
# Write `model_state_bytes(n_params, n_gpus, zero_stage)`, the bytes on one GPU.

# %%
def model_state_bytes(n_params: float, n_gpus: int, zero_stage: int) -> float:
    """Bytes of parameters + gradients + optimizer states on one GPU.

    Mixed-precision Adam, ZeRO stage 0-3.
    """
    ### BEGIN SOLUTION
    params, grads, optimizer = 2 * n_params, 2 * n_params, 12 * n_params
    if zero_stage >= 1:
        optimizer /= n_gpus
    if zero_stage >= 2:
        grads /= n_gpus
    if zero_stage >= 3:
        params /= n_gpus
    return params + grads + optimizer
    ### END SOLUTION


# %% {"role": "try"}
for stage in range(4):
    gb = model_state_bytes(7.5e9, 64, stage) / 1e9
    print(f"7.5e9 parameters, 64 GPUs, ZeRO stage {stage}: {gb:.1f} GB per GPU")

# %% {"role": "check"}
ex.check_model_states(model_state_bytes)

# %% [markdown] {"exercise": "param-count", "minutes": 15}
# ## Parameters of a GPT-2-shaped model, from its shape
#
# A GPT-2 block has an attention layer (a fused query-key-value projection of
# $h \times 3h$ with $3h$ biases, and an output projection of $h \times h$ with $h$ biases),
# an MLP ($h \to 4h \to h$, with biases) and two layer norms ($2h$ each). Around the $L$
# blocks: a token embedding ($V \times h$), learned positions ($s \times h$) and a final
# layer norm; the output layer shares the token embedding's matrix (tied weights).
#
# Write `gpt_params(n_layers, hidden, vocab_size, seq_len)`. The check compares it with
# real `transformers` GPT-2 models of several shapes.

# %%
def gpt_params(n_layers: int, hidden: int, vocab_size: int, seq_len: int) -> int:
    """Number of parameters of a GPT-2-shaped model (tied embeddings)."""
    ### BEGIN SOLUTION
    h = hidden
    attention = (h * 3 * h + 3 * h) + (h * h + h)
    mlp = (h * 4 * h + 4 * h) + (4 * h * h + h)
    norms = 2 * 2 * h
    return n_layers * (attention + mlp + norms) + vocab_size * h + seq_len * h + 2 * h
    ### END SOLUTION


# %% {"role": "check"}
ex.check_gpt_param_count(gpt_params)

# %% {"role": "solution-only"}
from llmlab import zoo

model, _ = zoo.load("stories-1m", device="cpu")
c = model.config
print("formula:", gpt_params(c.n_layer, c.n_embd, c.vocab_size, c.n_positions),
      "| counted in stories-1m:", sum(p.numel() for p in model.parameters()))

# %% [markdown] {"exercise": "absmax", "minutes": 15}
# ## Absmax (symmetric) INT8
#
# Symmetric INT8 maps the largest magnitude of the tensor to $2^7 - 1$:
# $\text{scale} = \max|x| / (2^7 - 1)$ and $q = \mathrm{round}(x / \text{scale})$, kept in
# $-(2^7 - 1) \dots 2^7 - 1$ and stored as `torch.int8`. Dequantizing gives $q \cdot \text{scale}$.
# Write `absmax_int8(x) -> (q, scale)` for one scale per tensor. The largest magnitude
# may be a negative value. Mind a tensor of zeros (do not divide by zero: the scale
# must stay positive) and inputs in float16.

# %%
def absmax_int8(x: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Symmetric per-tensor INT8: (q as int8, scale as a float)."""
    ### BEGIN SOLUTION
    x = x.float()
    scale = max(x.abs().max().item() / 127, torch.finfo(torch.float32).eps)
    q = torch.clamp(torch.round(x / scale), -127, 127).to(torch.int8)
    return q, scale
    ### END SOLUTION


# %% {"role": "try"}
x = torch.tensor([-1.0, -0.5, 0.0, 0.25, 2.0])
q, scale = absmax_int8(x)
print("q =", q, " scale =", scale, " dequantized =", q.float() * scale)

# %% {"role": "check"}
ex.check_absmax_int8(absmax_int8)

# %% [markdown] {"exercise": "zeropoint", "minutes": 20}
# ## Zero-point (asymmetric) INT8
#
# When values are lopsided (all positive after a ReLU, say), absmax wastes half of the
# codes. Zero-point quantization maps $[\min, \max]$ onto all $2^8$ codes
# $-2^7 \dots 2^7 - 1$: $\text{scale} = (\max - \min) / (2^8 - 1)$,
# $\text{zero\_point} = -2^7 - \mathrm{round}(\min / \text{scale})$
# and $q = \mathrm{round}(x / \text{scale}) + \text{zero\_point}$, clamped to the INT8 range.
# Widen the range to include zero first ($\min \le 0 \le \max$), so that zero has an exact
# code (the zero point). Dequantizing gives $(q - \text{zero\_point}) \cdot \text{scale}$.
#
# Write `zeropoint_int8(x) -> (q, scale, zero_point)`. The check uses the same inputs as
# for absmax: values of one sign, a tensor of zeros (keep the scale positive) and float16.

# %%
def zeropoint_int8(x: torch.Tensor) -> tuple[torch.Tensor, float, int]:
    """Asymmetric per-tensor INT8: (q as int8, scale as a float, zero_point as int)."""
    ### BEGIN SOLUTION
    x = x.float()
    lo, hi = min(x.min().item(), 0.0), max(x.max().item(), 0.0)
    scale = max((hi - lo) / 255, torch.finfo(torch.float32).eps)
    zero_point = int(min(max(-128 - round(lo / scale), -128), 127))
    q = torch.clamp(torch.round(x / scale) + zero_point, -128, 127).to(torch.int8)
    return q, scale, zero_point
    ### END SOLUTION


# %% {"role": "try"}
relu_out = torch.rand(8) * 3
q, scale, zero_point = zeropoint_int8(relu_out)
print("q =", q, " zero_point =", zero_point)
error = ((q.float() - zero_point) * scale - relu_out).abs().max().item()
print("largest error:", error, "(half a step:", scale / 2, ")")

# %% {"role": "check"}
ex.check_zeropoint_int8(zeropoint_int8)

# %% {"role": "solution-only"}
# Zero-point against absmax on all-positive values: zero-point's steps are about
# half as wide.
q_abs, s_abs = absmax_int8(relu_out)
print(f"absmax step {s_abs:.4f}, zero-point step {scale:.4f}")

# %% [markdown] {"exercise": "formats", "minutes": 10}
# ## Quiz: float formats
#
# Answer with numbers. You may compute them (from the bit layouts, IEEE 2019 and
# Kalamkar et al. 2019: fp16 has 5 exponent and 10 fraction bits, bf16 8 and 7) or look them up with `torch.finfo`. Give exact
# values; only the largest bf16 value may be rounded to three significant digits.

# %%
answers = {
    "largest finite fp16 value": ...,
    "largest finite bf16 value": ...,
    "fraction bits of bf16": ...,
    "spacing of fp16 values just above 1": ...,
    "bytes of a 7e9-parameter model's weights in int8": ...,
}
### BEGIN SOLUTION
answers = {
    "largest finite fp16 value": (2 - 2**-10) * 2**15,
    "largest finite bf16 value": torch.finfo(torch.bfloat16).max,
    "fraction bits of bf16": 7,
    "spacing of fp16 values just above 1": 2**-10,
    "bytes of a 7e9-parameter model's weights in int8": 7e9,
}
### END SOLUTION

# %% {"role": "check"}
ex.check_formats_quiz(answers)
