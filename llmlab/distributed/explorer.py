"""The sharding and 3-D parallelism explorers of chapter 7: per-GPU memory of real model shapes.

* :func:`explorer_memory`: per-GPU bytes of parameters, gradients, optimizer states and
  activations for a model on ``n_gpus`` GPUs with tensor parallelism t, pipeline parallelism p
  and sharded data parallelism over the d = n_gpus / (t·p) copies (sharding factor, ZeRO stage,
  precision, CPU offload). The model states are :func:`llmlab.memory.model_parallel_gpu_memory`,
  the activations :func:`llmlab.memory.activation_bytes`, the bubble
  :func:`llmlab.memory.bubble_fraction`: the calculator's code, which the chapter and
  ``tests/test_distributed.py`` check against the measured runs;
* :func:`_frame`, :func:`_parallel_frame`: one slider position's figures, as the panels show them.

The panels themselves (the live ``sharding_explorer`` and the kernel-free
``static_sharding_explorer`` and ``static_parallelism_explorer``) live with the book's other
panels in :mod:`llmlab.widgets`, which imports this module. Imports go one way: this module
imports :mod:`llmlab.memory`, never the launcher or the panels.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import _checks, memory
from .._checks import whole_number as _count


@dataclass(frozen=True)
class ExplorerModel:
    """A model shape for the explorers. ``block_params``: the parameters inside the transformer blocks,
    which tensor and pipeline parallelism split; ``first_params`` and ``last_params``: the rest as held
    by the first and the last pipeline stage (embeddings; final norm and output layer). With one stage
    the rest, ``n_params - block_params``, is held whole."""

    n_params: float
    layers: int
    hidden: int
    heads: int
    block_params: float
    first_params: float
    last_params: float


def gpt_shape(n_params: float, layers: int, hidden: int, heads: int) -> ExplorerModel:
    """A GPT-3-style shape: 12·L·h² parameters in the blocks; with tied embeddings each end of a
    pipeline holds the embedding matrix (Megatron-LM keeps a copy on the last stage), so each end
    is counted with all the rest, n_params - 12·L·h²."""
    _checks.positive("n_params", n_params)
    for name, value in (("layers", layers), ("hidden", hidden), ("heads", heads)):
        _count(name, value)
    blocks = 12 * layers * hidden ** 2
    if blocks >= n_params:
        raise ValueError(f"n_params ({n_params:g}) must exceed the blocks' 12·L·h² = {blocks:g}")
    return ExplorerModel(n_params, layers, hidden, heads, blocks, n_params - blocks, n_params - blocks)


#: model shapes for the explorer: (parameters, layers, hidden size, attention heads)
EXPLORER_MODELS: dict[str, tuple[float, int, int, int]] = {
    "1.3B": (1.3e9, 24, 2048, 24),     # GPT-3 XL (Brown et al. 2020, Table 2.1)
    "13B": (13e9, 40, 5140, 40),       # GPT-3 13B (same table)
    "175B": (175e9, 96, 12288, 96),    # GPT-3 (same table)
    "530B": (530e9, 105, 20480, 128),  # Megatron-Turing NLG (Smith et al. 2022)
}
EXPLORER_GPUS = (8, 64, 512)
EXPLORER_SHARDING = (1, 8, 0)  # 0: all the GPUs (full sharding)
EXPLORER_PRECISIONS = ("mixed", "fp32")
EXPLORER_ACTIVATIONS = ("full_recompute", "selective")
GPU_BYTES = 80e9  # an 80 GB GPU (A100 80GB, H100 80GB)
_COLORS = {"parameters": "#4c78a8", "gradients": "#f58518", "optimizer states": "#54a24b",
           "activations": "#b279a2", "capacity": "#d1d5db"}


def _shape(model) -> ExplorerModel:
    if isinstance(model, ExplorerModel):
        return model
    if not isinstance(model, str) or model not in EXPLORER_MODELS:
        raise ValueError(f"unknown model {model!r}; allowed: {', '.join(EXPLORER_MODELS)} "
                         f"or an ExplorerModel")
    return gpt_shape(*EXPLORER_MODELS[model])


def explorer_memory(model, n_gpus: int, sharding_factor: int, zero_stage: int, precision: str,
                    offload: bool, seq_len: int = 2048, micro_batch: int = 1, *, tensor_parallel: int = 1,
                    pipeline_parallel: int = 1, microbatches: int = 1,
                    activations: str = "full_recompute") -> tuple[memory.GpuMemory, int]:
    """Per-GPU bytes for the explorers and the sharding factor used.

    ``model``: a name of :data:`EXPLORER_MODELS` or an :class:`ExplorerModel`. The n_gpus GPUs are
    t = ``tensor_parallel`` x p = ``pipeline_parallel`` x d data-parallel copies; ZeRO stage
    ``zero_stage`` applies within groups of ``sharding_factor`` of the d copies (0 or above d: all
    of them; 1: plain replication, DDP). Model states: :func:`llmlab.memory.model_parallel_gpu_memory`
    (the blocks split by t·p, the rest whole on its stage). Activations
    (:func:`llmlab.memory.activation_bytes`, ``seq_len`` tokens, ``micro_batch`` sequences per
    micro-batch; 2-byte values under mixed precision, 4-byte under fp32): ``"full_recompute"``
    keeps each layer's input only (s·b·h values per layer, whole on every tensor-parallel rank),
    ``"selective"`` recomputes the attention scores (s·b·h·(10 + 24/t) bytes per layer, Korthikanti
    et al. 2022); a pipeline stage holds its L/p layers for min(p, m) micro-batches in flight (1F1B,
    ``microbatches`` = m). Without checkpointing a 175B model's activations alone pass 80 GB.
    """
    shape = _shape(model)
    n_gpus = _count("n_gpus", n_gpus)
    _count("sharding_factor", sharding_factor, low=0)
    if isinstance(zero_stage, bool) or zero_stage not in (0, 1, 2, 3):
        raise ValueError(f"zero_stage must be 0, 1, 2 or 3, got {zero_stage!r}")
    if not isinstance(precision, str) or precision not in memory.PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; allowed: {', '.join(memory.PRECISIONS)}")
    if not isinstance(activations, str) or activations not in EXPLORER_ACTIVATIONS:
        raise ValueError(f"unknown activations {activations!r}; allowed: {', '.join(EXPLORER_ACTIVATIONS)}")
    t = _checks.positive_int("tensor_parallel", tensor_parallel)
    p = _checks.positive_int("pipeline_parallel", pipeline_parallel)
    m = _checks.positive_int("microbatches", microbatches)
    if n_gpus % (t * p):
        raise ValueError(f"tensor_parallel x pipeline_parallel ({t} x {p}) must divide n_gpus ({n_gpus})")
    d = n_gpus // (t * p)
    f = d if sharding_factor == 0 else min(sharding_factor, d)
    whole = shape.n_params - shape.block_params if p == 1 else max(shape.first_params, shape.last_params)
    per_layer = memory.activation_bytes(1, shape.hidden, shape.heads, seq_len, micro_batch, activations,
                                        4 if precision == "fp32" else 2, tensor_parallel=t)
    act = per_layer * (shape.layers / p) * min(p, m)  # L/p layers per stage, on average
    mem = memory.model_parallel_gpu_memory(shape.block_params, whole, n_gpus, t, p, zero_stage, precision,
                                           "adam", act, sharding_factor=f, offload=offload)
    return mem, f


def _memory_series(m: memory.GpuMemory) -> list[dict]:
    """The explorers' stacked bars for one GPU's bytes (GB), after the capacity bar."""
    gb = 1e9
    parts = [("parameters", m.params), ("gradients", m.grads), ("optimizer states", m.optimizer),
             ("activations", m.activations)]
    # the capacity bar first, so that the legend (top right) is drawn over it, not under it
    series = [{"name": "80 GB GPU", "color": _COLORS["capacity"], "values": [0, GPU_BYTES / gb]}]
    return series + [{"name": name, "color": _COLORS[name], "values": [float(f"{v / gb:.3g}"), 0]}
                     for name, v in parts]


def _frame(model: str, n_gpus: int, sharding_factor: int, zero_stage: int, precision: str, offload: bool) -> dict:
    m, f = explorer_memory(model, n_gpus, sharding_factor, zero_stage, precision, offload)
    kind = "DDP" if f == 1 else ("fully sharded" if f == n_gpus else f"hybrid, groups of {f}")
    prefix = f"ZeRO stage {zero_stage if f > 1 else 0} in groups of {f}; " + (
        f"{m.offloaded / 1e9:,.1f} GB per GPU in CPU memory; " if offload else "")
    return _memory_frame(m, f"{model} on {n_gpus} GPUs, {kind}", prefix)


def _memory_frame(m: memory.GpuMemory, heading: str, prefix: str) -> dict:
    """One frame of an explorer: the stacked bar of ``m`` beside the 80 GB capacity, titled ``heading``
    with the total and whether it fits."""
    gb = 1e9
    return {
        "title": f"{heading}: {m.total / gb:,.1f} GB per GPU, {'fits' if m.total <= GPU_BYTES else 'does NOT fit'}",
        "bars": {"labels": ["one GPU", "capacity"], "ylabel": "GB per GPU", "layout": "stacked",
                 "ymax": float(f"{max(GPU_BYTES, m.total) / gb * 1.05:.3g}"), "series": _memory_series(m)},
        "prefix": prefix,
        "text": f"{m.total / gb:,.1f} of 80 GB",
    }


EXPLORER_TP = (1, 2, 4, 8)
EXPLORER_PP = (1, 2, 4, 8)
EXPLORER_MICROBATCHES = (4, 16, 64)


def explorer_parallel_memory(model, n_gpus: int, tensor_parallel: int, pipeline_parallel: int,
                             microbatches: int, seq_len: int = 2048, micro_batch: int = 1
                             ) -> tuple[memory.GpuMemory, float]:
    """Per-GPU bytes and the pipeline bubble for the 3-D explorer: :func:`explorer_memory` with
    mixed-precision Adam, ZeRO stage 1 over all the data-parallel copies and selective activation
    recomputation (1F1B: the first stage keeps min(p, m) micro-batches in flight), and
    :func:`llmlab.memory.bubble_fraction` (p - 1)/(m + p - 1)."""
    mem, _ = explorer_memory(model, n_gpus, 0, 1, "mixed", False, seq_len, micro_batch,
                             tensor_parallel=tensor_parallel, pipeline_parallel=pipeline_parallel,
                             microbatches=microbatches, activations="selective")
    return mem, memory.bubble_fraction(pipeline_parallel, microbatches)


def _parallel_frame(model: str, n_gpus: int, tensor_parallel: int, pipeline_parallel: int, microbatches: int) -> dict:
    m, bubble = explorer_parallel_memory(model, n_gpus, tensor_parallel, pipeline_parallel, microbatches)
    d = n_gpus // (tensor_parallel * pipeline_parallel)
    return _memory_frame(m, f"{model}, {n_gpus} GPUs = TP {tensor_parallel} x PP {pipeline_parallel} x DP {d}",
                         f"pipeline bubble {bubble:.0%} of each step ({microbatches} micro-batches); ")
