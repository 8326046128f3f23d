# %% [markdown]
# # Exercises: 7. Efficient multi-GPU compute strategies
#
# These exercises go with [chapter 7](../../chapters/07_multi_gpu.ipynb). Everything here
# is arithmetic: no process is launched and no GPU is needed. You work out how large a
# model fits under each ZeRO stage, how FSDP cuts a tensor into shards, what hybrid
# sharding keeps on each GPU, how many bytes each strategy sends per step, what a
# tensor-parallel rank holds and how many micro-batches keep a pipeline busy. Each check
# runs your code on the example and on hidden edge cases and compares it with the
# calculator of `llmlab.memory` and `llmlab.distributed` (which the chapter checks
# against real runs).
#
# Write your code where it says `raise NotImplementedError` or `...`, run the cell,
# then run the check below it.

# %%
import math

from llmlab import exercises as ex

# %% [markdown] {"exercise": "max-params", "minutes": 10}
# ## How large a model fits?
#
# Mixed-precision Adam keeps $2 + 2 + 12 = 16$ bytes of model states per parameter
# (16-bit weights, 16-bit gradients, fp32 master weights, momentum and variance). ZeRO
# stage 1 divides the optimizer states (12 bytes) by the number of GPUs $N$, stage 2
# also the gradients, stage 3 also the weights (Rajbhandari et al. 2020). Leaving
# activations out, how many parameters fit when each GPU has `gpu_bytes` of memory?

# %%
def max_params(gpu_bytes: float, n_gpus: int, zero_stage: int) -> float:
    """The most parameters whose model states fit on each GPU.

    Mixed-precision Adam, ZeRO stage 0-3.
    """
    ### BEGIN SOLUTION
    params, grads, optimizer = 2.0, 2.0, 12.0  # bytes per parameter
    if zero_stage >= 1:
        optimizer /= n_gpus
    if zero_stage >= 2:
        grads /= n_gpus
    if zero_stage >= 3:
        params /= n_gpus
    return gpu_bytes / (params + grads + optimizer)
    ### END SOLUTION


# %% {"role": "try"}
for stage in range(4):
    billions = max_params(80e9, 64, stage) / 1e9
    print(f"64 GPUs of 80 GB, ZeRO stage {stage}: {billions:.1f} billion parameters")

# %% {"role": "check"}
ex.check_max_params(max_params)

# %% [markdown] {"exercise": "fsdp-shard", "minutes": 15}
# ## How FSDP cuts a tensor
#
# FSDP2 shards each parameter on its first dimension, like `torch.chunk`: with $n$
# shards, every shard gets $\lceil d_0 / n \rceil$ rows until the rows run out, so the
# last shards can be smaller or even empty. Write `shard_numel(shape, n_shards, index)`,
# the number of elements of shard `index`, with arithmetic only (no tensors). A scalar
# (shape `()`) lives whole in the first shard.

# %%
def shard_numel(shape: tuple[int, ...], n_shards: int, index: int) -> int:
    """Elements in shard ``index`` when dim 0 of ``shape`` is cut into ``n_shards``."""
    ### BEGIN SOLUTION
    if not shape:
        return 1 if index == 0 else 0
    rows = math.ceil(shape[0] / n_shards)
    mine = max(0, min(rows, shape[0] - index * rows))
    return mine * math.prod(shape[1:])
    ### END SOLUTION


# %% {"role": "try"}
print([shard_numel((10, 4), 4, i) for i in range(4)])

# %% {"role": "check"}
ex.check_fsdp_shard(shard_numel)

# %% [markdown] {"exercise": "hybrid", "minutes": 10}
# ## Hybrid sharding
#
# Full sharding over hundreds of GPUs makes every step gather parameters from all of
# them. Hybrid sharding (FSDP's `HYBRID_SHARD`) shards like ZeRO stage 3 inside groups of
# `sharding_factor` GPUs (say, the GPUs of one node) and keeps a replica in every group.
# Write `hybrid_bytes(n_params, n_gpus, sharding_factor)`, the bytes of model states per
# GPU for mixed-precision Adam.

# %%
def hybrid_bytes(n_params: float, n_gpus: int, sharding_factor: int) -> float:
    """Bytes of model states per GPU.

    ZeRO-3 inside groups of sharding_factor GPUs, replicas across the groups.
    """
    ### BEGIN SOLUTION
    return 16 * n_params / sharding_factor
    ### END SOLUTION


# %% {"role": "try"}
for f in (1, 8, 64):
    gb = hybrid_bytes(7e9, 64, f) / 1e9
    print(f"7e9 parameters on 64 GPUs, groups of {f}: {gb:.1f} GB per GPU")

# %% {"role": "check"}
ex.check_hybrid_states(hybrid_bytes)

# %% [markdown] {"exercise": "comm", "minutes": 15}
# ## The price: bytes sent per step
#
# With ring collectives, each GPU of $n$ sends $(n-1)/n$ of a tensor's bytes in an
# all-gather or a reduce-scatter, and twice that in an all-reduce. Per step, DDP
# all-reduces the gradients ($2\Psi(n-1)/n$, with $\Psi$ the gradients' bytes); ZeRO-1
# and ZeRO-2 reduce-scatter the gradients and all-gather the updated weights, the same
# volume; ZeRO-3 gathers the weights once more for the backward pass, $3\Psi(n-1)/n$.
# Write `comm_bytes(strategy, n_params, n_gpus, bytes_per_value)` for `"ddp"`,
# `"zero1"`, `"zero2"` and `"zero3"`.

# %%
def comm_bytes(strategy: str, n_params: float, n_gpus: int,
               bytes_per_value: int) -> float:
    """Bytes each GPU sends per training step with ring collectives."""
    ### BEGIN SOLUTION
    psi = n_params * bytes_per_value
    volumes = {"ddp": 2, "zero1": 2, "zero2": 2, "zero3": 3}[strategy]
    return volumes * psi * (n_gpus - 1) / n_gpus
    ### END SOLUTION


# %% {"role": "try"}
for strategy in ("ddp", "zero3"):
    gb = comm_bytes(strategy, 1.5e9, 8, 2) / 1e9
    print(f"{strategy}: {gb:.2f} GB sent per GPU per step")

# %% {"role": "check"}
ex.check_comm_bytes(comm_bytes)

# %% [markdown] {"exercise": "tp-mlp", "minutes": 10}
# ## Tensor parallelism: what one rank holds
#
# Megatron-LM (Shoeybi et al. 2019) splits a GPT MLP over $t$ GPUs in two steps. The up
# projection, `Linear(hidden, ffn)`, is cut by its **columns** (its output units): each
# rank keeps `ffn / t` rows of the `(ffn, hidden)` weight and the matching `ffn / t`
# biases (PyTorch's `ColwiseParallel`). The down projection, `Linear(ffn, hidden)`, is
# cut by its **rows** (its inputs): each rank keeps `ffn / t` columns of the
# `(hidden, ffn)` weight (`RowwiseParallel`) and produces a partial sum that one
# all-reduce adds up. Its bias is added once, after the all-reduce. Write
# `tp_mlp_bytes(hidden, ffn, t, bytes_per_value)`, the bytes of weights and biases on
# one rank (`t` divides `ffn`).

# %%
def tp_mlp_bytes(hidden: int, ffn: int, t: int, bytes_per_value: int) -> int:
    """Bytes of the up and down projections (weights and biases) on one of t ranks."""
    ### BEGIN SOLUTION
    # columns of the up projection, with their biases
    up = (ffn // t) * hidden + ffn // t
    down = hidden * (ffn // t) + hidden   # rows of the down projection; its bias whole
    return (up + down) * bytes_per_value
    ### END SOLUTION


# %% {"role": "try"}
for t in (1, 2, 8):
    mb = tp_mlp_bytes(4096, 16384, t, 2) / 1e6
    print(f"width 4096, MLP 16384, 16-bit, t = {t}: {mb:.1f} MB per rank")

# %% {"role": "check"}
ex.check_tp_mlp_bytes(tp_mlp_bytes)

# %% [markdown] {"exercise": "bubble", "minutes": 10}
# ## Pipeline parallelism: the bubble
#
# With $p$ stages of equal cost and a batch cut into $m$ micro-batches, GPipe and 1F1B
# both spend $p - 1$ time slots filling the pipe and $p - 1$ draining it, out of
# $m + p - 1$ slots per direction, so each stage is idle a fraction
# $(p - 1)/(m + p - 1)$ of the step (Huang et al. 2019; Narayanan et al. 2021). Write
# `bubble(p, m)`, and `microbatches_for(p, target)`: the fewest micro-batches that keep
# the bubble at most `target` (for example `0.1`). At least one micro-batch, always; and
# "at most" includes an exact fit, where the bubble equals `target`: a closed form
# through float division can miss it by one, so count or compare exactly.

# %%
def bubble(p: int, m: int) -> float:
    """Idle fraction of each stage: p stages, m micro-batches."""
    ### BEGIN SOLUTION
    return (p - 1) / (m + p - 1)
    ### END SOLUTION


def microbatches_for(p: int, target: float) -> int:
    """The fewest micro-batches m with bubble(p, m) <= target."""
    ### BEGIN SOLUTION
    m = 1
    while bubble(p, m) > target:
        m += 1
    return m
    ### END SOLUTION


# %% {"role": "try"}
for p in (2, 4, 8):
    m = microbatches_for(p, 0.1)
    print(f"{p} stages: bubble {bubble(p, 8):.0%} with 8 micro-batches; "
          f"at most 10% from m = {m}")

# %% {"role": "check"}
ex.check_pipeline_bubble(bubble, microbatches_for)

# %% [markdown] {"exercise": "quiz", "minutes": 5}
# ## Quiz: ZeRO and FSDP
#
# Answer the stages with a number, the fourth question with one of `"parameters"`,
# `"gradients"` or `"optimizer states"`, the last with `"yes"` or `"no"`.

# %%
answers = {
    "ZeRO stage of FSDP FULL_SHARD": ...,
    "ZeRO stage of FSDP SHARD_GRAD_OP": ...,
    "ZeRO stage that plain DDP amounts to": ...,
    "what ZeRO stage 1 shards (parameters, gradients or optimizer states)": ...,
    "does DDP change the result of a step compared with one GPU on the whole batch"
    " (yes/no)": ...,
}
### BEGIN SOLUTION
answers = {
    "ZeRO stage of FSDP FULL_SHARD": 3,
    "ZeRO stage of FSDP SHARD_GRAD_OP": 2,
    "ZeRO stage that plain DDP amounts to": 0,
    "what ZeRO stage 1 shards (parameters, gradients or optimizer states)":
        "optimizer states",
    "does DDP change the result of a step compared with one GPU on the whole batch"
    " (yes/no)": "no",
}
### END SOLUTION

# %% {"role": "check"}
ex.check_fsdp_quiz(answers)
