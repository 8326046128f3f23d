"""The tables of chapter 7's runs: measured bytes, peaks, communication and the pipeline bubble,
each set next to the calculator (:mod:`llmlab.memory`) or the textbook formula.

Every function takes the :class:`llmlab.distributed.results.RunResult` that
:func:`llmlab.distributed.launcher.run` returns and gives a pandas DataFrame (bytes, seconds):

* data parallelism: :func:`predicted_table` (model states per rank, exact and ideal),
  :func:`peak_table` (the measured peak of a step against states plus activations),
  :func:`comm_table` (bytes handed to each collective against :func:`textbook_comm_bytes`);
* tensor, pipeline and 2-D (FSDP x tensor) parallelism: :func:`model_parallel_table`
  (equality with one process, collectives counted against expected) and
  :func:`model_parallel_peak_table`;
* the pipeline bubble: :func:`bubble_table` (measured idle fraction against
  :func:`llmlab.memory.bubble_fraction`); the recorded grid is
  :mod:`llmlab.records.pipeline_bubble`.

Imports go one way: this module imports :mod:`llmlab.distributed.results` and :mod:`llmlab.memory`,
never the launcher.
"""

from __future__ import annotations

import math

from .. import memory
from .._checks import whole_number as _count
from ..memory import bubble_fraction
from ..tinyllama import llama_config
from .results import MODEL_PARALLEL, STRATEGIES, RunResult, check_result

# --------------------------------------------------------------------------- data parallelism


def predicted_table(result: RunResult):
    """One row per (strategy, rank): measured bytes, the exact shard-by-shard prediction
    (:func:`llmlab.memory.rank_states_exact`) and the ideal Ψ/N one
    (:func:`llmlab.memory.strategy_states_per_gpu`), fp32 Adam. A pandas DataFrame."""
    import pandas as pd

    check_result(result)
    rows = []
    for r in result.ranks:
        if r.strategy in MODEL_PARALLEL:  # see model_parallel_table
            continue
        f = result.sharding_factor if r.strategy == "hybrid" else None
        exact = memory.rank_states_exact(result.param_shapes, r.strategy, r.world_size, r.rank, f, "fp32", "adam")
        ideal = memory.strategy_states_per_gpu(result.n_params, r.strategy, r.world_size, f, "fp32", "adam")
        rows.append(dict(strategy=r.strategy, rank=r.rank, params=r.params, grads=r.grads, optimizer=r.optimizer,
                         measured=r.model_states, exact=exact.total, ideal=round(ideal.total),
                         measured_minus_exact=r.model_states - exact.total,
                         measured_minus_ideal=round(r.model_states - ideal.total),
                         step_ms=1000 * r.step_time))
    return pd.DataFrame(rows)


def predicted_activation_bytes(result: RunResult, method: str = "selective") -> float:
    """Activation bytes per rank that :func:`llmlab.memory.activation_bytes` predicts for ``result``'s runs:
    the workers' GPT-2 shape, ``batch_size`` sequences of ``seq_len`` tokens per rank, fp32, no dropout,
    the output layer and loss included (4·s·b·v). ``"selective"``: the attention scores are not kept,
    which is what ``F.scaled_dot_product_attention`` does (a fused kernel keeps only its softmax
    statistics); ``"korthikanti"`` keeps them."""
    check_result(result)
    if not isinstance(method, str) or method not in ("selective", "korthikanti"):
        raise ValueError(f"method must be 'selective' or 'korthikanti', got {method!r}")
    cfg, st = result.settings["model"], result.settings
    return memory.activation_bytes(cfg["n_layer"], cfg["n_embd"], cfg["n_head"], st["seq_len"], st["batch_size"],
                                   method, 4, dropout=False, vocab_size=cfg["vocab_size"])


def peak_table(result: RunResult):
    """One row per (strategy, rank): the measured peak of the last training step against the calculator.

    ``held_at_entry``: bytes the rank's tensors hold when the step starts (local parameter shards, Adam's
    states, DDP's gradient buckets; counted tensor by tensor). ``peak_above_entry``: the most bytes torch
    allocated on top during the step (:func:`llmlab.peak.measure`: the profiler's memory records on CPU,
    ``max_memory_allocated`` on CUDA). ``measured_peak`` is their sum. ``predicted_peak``: the calculator's
    model states per rank (:func:`llmlab.memory.strategy_states_per_gpu`, fp32 Adam) plus its activations
    (:func:`predicted_activation_bytes`). The ``at_peak_*`` columns split what was live at the peak by the
    profiler's categories where its memory profiler could (else empty); FSDP's DTensor shards are not
    recognised as parameters or optimizer state and land in ``at_peak_other``. A pandas DataFrame, bytes.
    """
    import pandas as pd

    check_result(result)
    act = predicted_activation_bytes(result)
    rows = []
    for r in result.ranks:
        if r.strategy in MODEL_PARALLEL:  # see model_parallel_table
            continue
        if r.peak is None:
            raise ValueError(f"rank {r.rank} of {r.strategy} has no measured peak (a result from an older run)")
        f = result.sharding_factor if r.strategy == "hybrid" else None
        states = memory.strategy_states_per_gpu(result.n_params, r.strategy, r.world_size, f, "fp32", "adam")
        held, above = r.peak["resident_at_entry"], r.peak["peak_bytes"]
        split = r.peak["at_peak"]
        row = dict(strategy=r.strategy, rank=r.rank, held_at_entry=held, peak_above_entry=above,
                   measured_peak=held + above, predicted_states=round(states.total), predicted_activations=round(act),
                   predicted_peak=round(states.total + act))
        row["measured_minus_predicted"] = row["measured_peak"] - row["predicted_peak"]
        for name, keys in (("params", ("parameters",)), ("grads", ("gradients",)), ("optimizer", ("optimizer_state",)),
                           ("activations", ("activations", "autograd_detail", "temporary")),
                           ("other", ("inputs", "other"))):
            row[f"at_peak_{name}"] = sum(split[k] for k in keys) if split is not None else pd.NA
        rows.append(row)
    return pd.DataFrame(rows)


# ring all-reduce sends 2(n-1)/n of the tensor per rank; all-gather, reduce-scatter, broadcast (n-1)/n
_RING_FACTOR = {"all_reduce": 2.0, "broadcast": 1.0, "all_gather_single": 1.0, "all_gather_into_tensor": 1.0,
                "reduce_scatter_single": 1.0, "reduce_scatter_tensor": 1.0}


def textbook_comm_bytes(strategy: str, n_params: int, world_size: int, sharding_factor: int | None = None,
                        bytes_per_value: int = 4) -> float:
    """Bytes each rank sends per step by the textbook (ring collectives), Rajbhandari et al. 2020.

    DDP and ZeRO-1/2: a reduce-scatter and an all-gather of the gradients' worth, 2Ψ·(n-1)/n;
    ZeRO-3: one more all-gather of the parameters for backward, 3Ψ·(n-1)/n; FSDP without
    resharding after forward (``zero2``) gathers once, 2Ψ·(n-1)/n. Hybrid: ZeRO-3 inside the
    sharding group of f ranks, plus an all-reduce of the gradient shards (Ψ/f) across the
    n/f replicas. Ψ in bytes is ``n_params * bytes_per_value``.
    """
    if not isinstance(strategy, str) or strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; allowed: {', '.join(STRATEGIES)}")
    # a parameter count in a formula may be written 1.5e9: any finite number > 0
    if (isinstance(n_params, bool) or not isinstance(n_params, (int, float))
            or not math.isfinite(n_params) or n_params <= 0):
        raise ValueError(f"n_params must be a finite number > 0 (1.5e9 is fine), got {n_params!r}")
    n = world_size = _count("world_size", world_size)
    bytes_per_value = _count("bytes_per_value", bytes_per_value)
    if sharding_factor is not None:
        sharding_factor = _count("sharding_factor", sharding_factor)
        if world_size % sharding_factor:
            raise ValueError(f"sharding_factor must divide world_size {world_size}; got {sharding_factor}")
    psi = n_params * bytes_per_value
    if strategy in ("ddp", "zero1", "zero2"):
        return 2 * psi * (n - 1) / n
    if strategy == "zero3":
        return 3 * psi * (n - 1) / n
    if strategy == "hybrid":
        f = sharding_factor or n
        r = n // f
        return 3 * psi * (f - 1) / f + 2 * (psi / f) * (r - 1) / r
    raise ValueError(f"unknown strategy {strategy!r}; allowed: {', '.join(STRATEGIES)}")


def comm_table(result: RunResult):
    """Per strategy (rank 0, last step): the collectives called (``kind@group size xcalls``), the bytes
    handed to them (counted in the workers), the bytes a ring implementation sends per rank for them
    (derived) and the textbook figure (:func:`textbook_comm_bytes`)."""
    import pandas as pd

    check_result(result)
    rows = []
    for s in result.strategies:
        if s in MODEL_PARALLEL:  # see model_parallel_table
            continue
        r0 = result.of(s)[0]
        counted = r0.comm["bytes"]
        sent = 0.0
        for key, b in counted.items():
            name, _, n = key.partition("@")
            n = int(n or result.world_size)
            sent += _RING_FACTOR[name] * b * (n - 1) / n
        names = {k: k.replace("_single", "").replace("_into_tensor", "") for k in counted}
        rows.append(dict(strategy=s, collectives=", ".join(f"{names[k]} x{r0.comm['calls'][k]}" for k in sorted(counted)),
                         handed_to_collectives=sum(counted.values()), ring_bytes_sent=round(sent),
                         textbook_bytes_sent=round(textbook_comm_bytes(s, result.n_params, result.world_size,
                                                                       result.sharding_factor))))
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- tensor and pipeline parallelism


def tp_all_reduces_per_step(n_layers: int) -> int:
    """All-reduces one tensor-parallel training step issues with llmlab's plan (Shoeybi et al. 2019):
    forward, one after the attention's output projection and one after the MLP's down projection per
    block; backward, one per column-split matrix for the gradient of its (replicated) input: q, k, v,
    gate and up, 5 per block. Megatron-LM fuses q, k, v into one matrix and gate with up, so it has
    2 + 2 per block. Each all-reduce carries a (B, T, C) activation."""
    return 7 * _count("n_layers", n_layers)


def _llama_sizes(result: RunResult) -> dict:
    """Parameter counts of the run's Llama: inside the blocks, the embeddings, the head with the final norm."""
    cfg = llama_config({k: v for k, v in result.settings["llama"].items() if k != "tie_word_embeddings"})
    h, L, v = cfg.hidden_size, cfg.num_hidden_layers, cfg.vocab_size
    in_blocks = L * (2 * h * cfg.num_attention_heads * cfg.head_dim + 2 * h * cfg.num_key_value_heads * cfg.head_dim
                     + 3 * h * cfg.intermediate_size + 2 * h)
    return {"cfg": cfg, "in_blocks": in_blocks, "embed": v * h, "head": v * h + h}


def _tp_local_params(result: RunResult, t: int) -> int:
    """Parameters one rank of a tensor-parallel group of t holds: the blocks' matrices split by t, the
    blocks' norms, the embeddings, the final norm and the head whole."""
    z = _llama_sizes(result)
    norms = 2 * z["cfg"].num_hidden_layers * z["cfg"].hidden_size
    return (z["in_blocks"] - norms) // t + norms + z["embed"] + z["head"]


def fsdp_tp_states(result: RunResult) -> memory.GpuMemory:
    """The calculator's model states per rank of ``result``'s ``fsdp_tp`` run (FP32 Adam):
    :func:`llmlab.memory.model_parallel_gpu_memory` with the blocks split by the tensor-parallel degree t
    and everything (blocks' shares, embeddings, head) sharded ZeRO-3 over the world_size / t rows."""
    check_result(result)
    t = result.settings.get("tensor_parallel")
    if not result.of("fsdp_tp") or not t:
        raise ValueError("this run has no 'fsdp_tp' strategy: run distributed.launcher.run(['fsdp_tp'], 4)")
    z = _llama_sizes(result)
    return memory.model_parallel_gpu_memory(z["in_blocks"], z["embed"] + z["head"], result.world_size,
                                            tensor_parallel=t, zero_stage=3, precision="fp32")


def model_parallel_table(result: RunResult):
    """Per tensor-, pipeline- or 2-D-parallel rank: the largest differences from one process (losses, step-0
    gradients, nats and gradient units), the parameters it holds, what it sent in the last step
    (collectives counted in the worker) and the expected count: ``tp``, :func:`tp_all_reduces_per_step`
    all-reduces of B·T·C·4 bytes; ``pp``, each boundary sends the activations (forward) or their
    gradients (backward) of the whole global batch, B·T·C·4 bytes; ``fsdp_tp``, the all-reduces of ``tp``
    within a row (on the row's share of the batch) plus FSDP's all-gather of every unit's parameters in
    forward and again in backward and one reduce-scatter of its gradients, across the rows (units: each
    block and the root; the gathered bytes are the row's tensor-parallel shard, whole).
    A pandas DataFrame."""
    import pandas as pd

    check_result(result)
    cfg = result.settings["llama"]
    batch = result.settings["batch_size"] * result.world_size
    activation = batch * result.settings["seq_len"] * cfg["hidden_size"] * 4  # bytes of one (B, T, C) fp32 tensor
    rows = []
    for r in result.ranks:
        if r.strategy not in MODEL_PARALLEL:
            continue
        ref = r.extra["single_process_losses"]
        mine = result.losses(r.strategy)
        calls = sum(r.comm["calls"].values())
        sent = sum(r.comm["bytes"].values())
        if r.strategy == "tp":
            expected_calls = tp_all_reduces_per_step(cfg["num_hidden_layers"])
            expected_bytes = expected_calls * activation
        elif r.strategy == "fsdp_tp":
            t = result.settings["tensor_parallel"]
            rows_of_mesh = result.world_size // t
            all_reduces = tp_all_reduces_per_step(cfg["num_hidden_layers"]) if t > 1 else 0
            units = cfg["num_hidden_layers"] + 1  # FSDP units: each block and the root
            fsdp_calls = 3 * units if rows_of_mesh > 1 else 0
            expected_calls = all_reduces + fsdp_calls
            # each all-gather returns a unit's row-local parameters whole, forward and backward; the
            # reduce-scatter takes its gradients whole: 3 x the row's tensor-parallel shard, in bytes
            expected_bytes = (all_reduces * activation // rows_of_mesh
                              + (3 * 4 * _tp_local_params(result, t) if fsdp_calls else 0))
        else:  # sends: forward to the next stage (all but the last), backward to the previous (all but the first)
            boundaries = (r.rank < r.world_size - 1) + (r.rank > 0)
            expected_calls = boundaries * result.settings["microbatches"]
            expected_bytes = boundaries * activation
        rows.append({"strategy": r.strategy, "rank": r.rank, "param_bytes": r.params,
                     "loss_max_abs_diff": max(abs(a - b) for a, b in zip(mine, ref)),
                     "grad_max_abs_diff": r.extra["grad_max_abs_diff"], "grad_max_abs": r.extra["grad_max_abs"],
                     "collectives": ", ".join(f"{k.split('@')[0]}@{k.split('@')[1]} x{v}" if r.strategy == "fsdp_tp"
                                              else f"{k.split('@')[0]} x{v}" for k, v in sorted(r.comm["calls"].items())),
                     "calls": calls, "expected_calls": expected_calls, "bytes_sent": sent,
                     "expected_bytes": expected_bytes})
    return pd.DataFrame(rows)


def model_parallel_peak_table(result: RunResult):
    """Per tensor-, pipeline- or 2-D-parallel rank: the measured peak of its last step next to the calculator.

    Model states: :func:`llmlab.memory.model_parallel_gpu_memory` (FP32 Adam) with the Llama's blocks
    split (by t, or by the stages) and the rest whole (tensor parallelism: embeddings, norms and head
    on every rank; pipeline: the rank's own end of the model; ``fsdp_tp``: :func:`fsdp_tp_states`).
    Activations: Korthikanti et al.'s per-layer count (:func:`llmlab.memory.activation_bytes`, FP32, no
    dropout, attention scores kept, which llmlab's from-scratch attention does), split by t under tensor
    parallelism (``fsdp_tp``: on the row's share of the batch); the pipeline rank keeps its layers'
    activations for the micro-batches in flight (GPipe: all m; 1F1B: p - rank, at most m) and the last
    rank the logits and loss (4·s·b·v) of each. Bytes; a pandas DataFrame.
    """
    import pandas as pd

    check_result(result)
    z = _llama_sizes(result)
    cfg = z["cfg"]
    h, a, L, v = cfg.hidden_size, cfg.num_attention_heads, cfg.num_hidden_layers, cfg.vocab_size
    s, n = result.settings["seq_len"], result.world_size
    batch = result.settings["batch_size"] * n
    in_blocks, embed, head = z["in_blocks"], z["embed"], z["head"]
    rows = []
    for r in result.ranks:
        if r.strategy not in MODEL_PARALLEL:
            continue
        if r.strategy == "tp":
            states = memory.model_parallel_gpu_memory(in_blocks, embed + head, n, tensor_parallel=n, zero_stage=0,
                                                      precision="fp32")
            act = memory.activation_bytes(L, h, a, s, batch, "korthikanti", 4, dropout=False, vocab_size=v,
                                          tensor_parallel=n)
        elif r.strategy == "fsdp_tp":
            t = result.settings["tensor_parallel"]
            states = fsdp_tp_states(result)
            act = memory.activation_bytes(L, h, a, s, batch // (n // t), "korthikanti", 4, dropout=False,
                                          vocab_size=v, tensor_parallel=t)
        else:
            m = result.settings["microbatches"]
            whole = (embed if r.rank == 0 else 0) + (head if r.rank == n - 1 else 0)
            states = memory.model_parallel_gpu_memory(in_blocks, whole, n, pipeline_parallel=n, zero_stage=0,
                                                      precision="fp32")
            flight = m if result.settings["pp_schedule"] == "gpipe" else min(n - r.rank, m)
            micro = batch // m
            per_micro = memory.activation_bytes(L // n, h, a, s, micro, "korthikanti", 4, dropout=False)
            if r.rank == n - 1:
                per_micro += 4 * s * micro * v
            act = flight * per_micro
        held, above = r.peak["resident_at_entry"], r.peak["peak_bytes"]
        rows.append({"strategy": r.strategy, "rank": r.rank, "held_at_entry": held, "peak_above_entry": above,
                     "measured_peak": held + above, "predicted_states": round(states.total),
                     "predicted_activations": round(act), "predicted_peak": round(states.total + act),
                     "measured_minus_predicted": held + above - round(states.total + act)})
    return pd.DataFrame(rows)


def bubble_table(result: RunResult):
    """Per schedule, micro-batch count and rank: the measured idle fraction (1 - time computing / step
    time, median of the timed steps) next to :func:`bubble_fraction`. Needs a run with ``"pp"`` and
    ``bubble_microbatches``. A pandas DataFrame."""
    import pandas as pd

    check_result(result)
    ranks = result.of("pp")
    if not ranks or "bubble" not in ranks[0].extra:
        raise ValueError("this run measured no bubble: run distributed.launcher.run(['pp'], ..., bubble_microbatches=(1, 2, 4))")
    rows = []
    for r in ranks:
        for b in r.extra["bubble"]:
            rows.append({"schedule": b["schedule"], "microbatches": b["microbatches"], "rank": r.rank,
                         "idle_measured": b["idle"],
                         "bubble_formula": bubble_fraction(r.world_size, b["microbatches"],
                                                           2 if b["schedule"] == "interleaved_1f1b" else 1),
                         "step_ms": 1000 * b["step_s"]})
    return pd.DataFrame(rows).sort_values(["schedule", "microbatches", "rank"]).reset_index(drop=True)
