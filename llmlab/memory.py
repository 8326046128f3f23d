"""The training-memory calculator (chapter 6; the multi-GPU chapter builds on it).

All sizes are in **bytes** (divide by 1e9 for GB, by 2**30 for GiB).

Training memory has two parts:

* **Model states**, which grow with the number of parameters Ψ: the parameters,
  their gradients and the optimizer's states. :func:`model_states_per_gpu`
  counts them per GPU with the accounting of the ZeRO paper (Rajbhandari et al.
  2020, "ZeRO: Memory Optimizations Toward Training Trillion Parameter Models"):
  mixed-precision Adam keeps 16-bit parameters (2 bytes) and gradients (2 bytes)
  plus K = 12 bytes of fp32 optimizer state (master weights, momentum, variance);
  ZeRO stage 1 shards the optimizer states across the data-parallel GPUs, stage 2
  also the gradients, stage 3 also the parameters. PyTorch FSDP's
  ``FULL_SHARD`` is stage 3 and ``SHARD_GRAD_OP`` stage 2
  (:data:`FSDP_STRATEGY_TO_ZERO_STAGE`).
* **Activations**, which grow with batch size and sequence length: the tensors
  the forward pass saves for the backward pass. :func:`activation_bytes` uses
  Korthikanti et al. (2022, "Reducing Activation Recomputation in Large
  Transformer Models"): s·b·h·(34 + 5·a·s/h) bytes per transformer layer.

:func:`training_memory` adds the two. :func:`measure_model_states` counts the
bytes a real model and optimizer hold, to check the prediction.

How to extend (multi-GPU chapter): every breakdown is a :class:`ModelStates` /
:class:`TrainingMemory` dataclass of byte counts per GPU; a new option (CPU
offload, tensor parallelism) should add a keyword argument and, where memory
moves elsewhere, a field saying where it went, keeping ``total`` = bytes on one GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from . import _checks

# bytes per parameter: (parameters, gradients, optimizer states per optimizer state tensor)
PRECISIONS: dict[str, dict] = {
    # fp32 everything: 4-byte weights and gradients; each optimizer state is fp32
    "fp32": {"params": 4, "grads": 4, "state": 4, "master": 0},
    # mixed precision (ZeRO's accounting): 16-bit weights and gradients, an fp32 master copy of the
    # weights (4 bytes) and fp32 optimizer states, all counted as optimizer state (K = 12 for Adam)
    "mixed": {"params": 2, "grads": 2, "state": 4, "master": 4},
    # pure bf16: weights, gradients and optimizer states all 16-bit (what torch.optim does for bf16 params)
    "bf16": {"params": 2, "grads": 2, "state": 2, "master": 0},
}
# number of state tensors, each the size of the parameters
OPTIMIZER_STATES: dict[str, int] = {"adam": 2, "adamw": 2, "sgd_momentum": 1, "sgd": 0}
FSDP_STRATEGY_TO_ZERO_STAGE = {"NO_SHARD": 0, "SHARD_GRAD_OP": 2, "FULL_SHARD": 3}
ACTIVATION_METHODS = ("korthikanti", "selective", "full_recompute", "rule_of_thumb", "none")
A100_80GB = 80e9  # bytes of memory on an NVIDIA A100 80GB


def _check_shape(name: str, value) -> tuple[int, ...]:
    """``value`` as a tuple of int sizes >= 0 (a tensor shape: tuple, list or torch.Size)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list, torch.Size)):
        raise _checks.ArgumentTypeError(f"{name} must be a tensor shape (a tuple of ints), got {type(value).__name__} {value!r}")
    for d in value:
        if isinstance(d, bool) or not isinstance(d, int):
            raise _checks.ArgumentTypeError(f"{name} must hold int sizes, got {value!r}")
        if d < 0:
            raise ValueError(f"{name} must hold sizes >= 0, got {tuple(value)}")
    return tuple(value)


def _check_precision(precision: str) -> dict:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; allowed: {', '.join(PRECISIONS)}")
    return PRECISIONS[precision]


def _check_optimizer(optimizer: str) -> int:
    if optimizer not in OPTIMIZER_STATES:
        raise ValueError(f"unknown optimizer {optimizer!r}; allowed: {', '.join(OPTIMIZER_STATES)}")
    return OPTIMIZER_STATES[optimizer]


@dataclass(frozen=True)
class ModelStates:
    """Bytes of model states held by one GPU."""

    params: float
    grads: float
    optimizer: float

    @property
    def total(self) -> float:
        return self.params + self.grads + self.optimizer


def bytes_per_param(precision: str = "mixed", optimizer: str = "adam") -> ModelStates:
    """Bytes per parameter of parameters, gradients and optimizer states, unsharded.

    'fp32' Adam: 4 + 4 + 8; 'mixed' Adam: 2 + 2 + 12 (ZeRO's K = 12);
    'bf16' Adam: 2 + 2 + 4.
    """
    if not isinstance(precision, str):
        raise _checks.ArgumentTypeError(
            f"precision must be a str, one of {', '.join(PRECISIONS)}; "
            f"got {precision!r}")
    if not isinstance(optimizer, str):
        raise _checks.ArgumentTypeError(
            f"optimizer must be a str, one of {', '.join(OPTIMIZER_STATES)}; "
            f"got {optimizer!r}")
    p = _check_precision(precision)  # a row of PRECISIONS: bytes per value
    n_states = _check_optimizer(optimizer)  # state tensors: 2 for Adam, 0 for SGD
    return ModelStates(params=p["params"], grads=p["grads"],
                       optimizer=p["master"] + n_states * p["state"])


def model_states_per_gpu(n_params: float, n_gpus: int = 1, zero_stage: int = 0, precision: str = "mixed",
                         optimizer: str = "adam") -> ModelStates:
    """Bytes of parameters, gradients and optimizer states on each of ``n_gpus`` data-parallel GPUs.

    ``zero_stage`` 0 replicates everything; 1 divides the optimizer states by
    ``n_gpus``; 2 also the gradients; 3 also the parameters (ZeRO, Rajbhandari
    et al. 2020). Example from that paper: 7.5B parameters, mixed-precision Adam,
    64 GPUs: 120 GB at stage 0, 31.4 GB at stage 1, 16.6 GB at stage 2, 1.9 GB at stage 3.
    """
    if (isinstance(n_params, bool) or not isinstance(n_params, (int, float)) or not n_params > 0
            or not math.isfinite(n_params)):
        raise ValueError(f"n_params must be a finite number of parameters > 0, got {n_params!r}")
    n_gpus = _checks.positive_int("n_gpus", n_gpus)
    if isinstance(zero_stage, bool) or zero_stage not in (0, 1, 2, 3):
        raise ValueError(f"zero_stage must be 0, 1, 2 or 3 (0 = plain data parallel), got {zero_stage!r}")
    per = bytes_per_param(precision, optimizer)
    return ModelStates(
        params=n_params * per.params / (n_gpus if zero_stage >= 3 else 1),
        grads=n_params * per.grads / (n_gpus if zero_stage >= 2 else 1),
        optimizer=n_params * per.optimizer / (n_gpus if zero_stage >= 1 else 1),
    )


def activation_bytes(n_layers: int, hidden: int, n_heads: int, seq_len: int, batch_size: int = 1,
                     method: str = "korthikanti", bytes_per_value: int = 2, *, dropout: bool = True,
                     vocab_size: int | None = None, tensor_parallel: int = 1) -> float:
    """Bytes of activations a GPT-style transformer keeps for the backward pass.

    Korthikanti et al. (2022), per layer, with dropout, no tensor parallelism,
    16-bit activations (``bytes_per_value=2``):
    'korthikanti'     s·b·h·(34 + 5·a·s/h)  (everything stored, attention scores included);
    'selective'       s·b·h·34              (attention scores recomputed, or FlashAttention);
    'full_recompute'  s·b·h·2               (only each layer's input kept; the rest recomputed).
    Of the 34·s·b·h, 2·s·b·h are one-byte dropout masks, and of the 5·a·s²·b, a·s²·b;
    ``bytes_per_value`` (4 for fp32 activations) rescales the rest. Multiplied by
    ``n_layers``; embeddings, the output layer and the loss are not included unless
    ``vocab_size`` is given: then the same paper's 4·s·b·v bytes for the output projection
    and the cross-entropy (the logits kept in 32 bits) are added. ``dropout=False`` (a model
    without dropout, like the chapter 7 workers) drops the one-byte masks.
    ``tensor_parallel`` = t splits what the paper's Megatron layout splits (its Section 4.2.2, without
    sequence parallelism): s·b·h·(10 + 24/t + 5·a·s/(h·t)) per layer; the 10·s·b·h of layer-norm
    inputs, the attention and MLP inputs and the two dropout masks stay whole on every rank.
    """
    for name, value in (("n_layers", n_layers), ("hidden", hidden), ("n_heads", n_heads),
                        ("seq_len", seq_len), ("batch_size", batch_size)):
        _checks.positive_int(name, value)
    if bytes_per_value not in (1, 2, 4, 8):
        raise ValueError(f"bytes_per_value must be 1, 2, 4 or 8 (bytes of one activation), got {bytes_per_value!r}")
    if not isinstance(dropout, bool):
        raise _checks.ArgumentTypeError(f"dropout must be True or False, got {dropout!r}")
    if vocab_size is not None:
        _checks.positive_int("vocab_size", vocab_size)
    t = _checks.positive_int("tensor_parallel", tensor_parallel)
    s, b, h, a = seq_len, batch_size, hidden, n_heads
    k = bytes_per_value / 2  # the formula counts 2-byte values
    masks = 1 if dropout else 0  # dropout's one-byte masks: 2·s·b·h per layer, a·s²·b for the attention scores
    # of the 32·s·b·h two-byte values, 8 stay whole under tensor parallelism and 24 are split
    if method == "korthikanti":
        per_layer = (k * (8 * s * b * h + 24 * s * b * h / t + 4 * a * s * s * b / t)
                     + masks * (2 * s * b * h + a * s * s * b / t))
    elif method == "selective":
        per_layer = k * (8 * s * b * h + 24 * s * b * h / t) + masks * 2 * s * b * h
    elif method == "full_recompute":
        per_layer = k * 2 * s * b * h
    else:
        raise ValueError(f"unknown activation method {method!r}; allowed: 'korthikanti', 'selective', 'full_recompute'")
    output = 4 * s * b * vocab_size if vocab_size is not None else 0
    return n_layers * per_layer + output


def gpt_param_count(n_layers: int, hidden: int, vocab_size: int, seq_len: int = 0) -> int:
    """Parameters of a GPT-2-shaped model (MLP 4h, tied embeddings): 12·L·h² + 13·L·h + (V + s)·h + 2h."""
    for name, value in (("n_layers", n_layers), ("hidden", hidden), ("vocab_size", vocab_size)):
        _checks.positive_int(name, value)
    if isinstance(seq_len, bool) or not isinstance(seq_len, (int, float)) or seq_len != int(seq_len) or seq_len < 0:
        raise ValueError(f"seq_len must be a whole number >= 0 (0 = no learned positions), got {seq_len!r}")
    L, h = n_layers, hidden
    # per layer: QKV 3h²+3h, out proj h²+h, MLP 8h²+5h, two layer norms 4h
    return L * (12 * h * h + 13 * h) + (vocab_size + seq_len) * h + 2 * h


@dataclass(frozen=True)
class TrainingMemory:
    """Bytes on one GPU during training: model states plus activations."""

    params: float
    grads: float
    optimizer: float
    activations: float

    @property
    def model_states(self) -> float:
        return self.params + self.grads + self.optimizer

    @property
    def total(self) -> float:
        return self.model_states + self.activations

    def as_dict(self, unit: float = 1.0) -> dict[str, float]:
        """Each part (and the total) divided by ``unit`` (e.g. 1e9 for GB)."""
        out = {f.name: getattr(self, f.name) / unit for f in fields(self)}
        out["total"] = self.total / unit
        return out


RULE_OF_THUMB_ACTIVATION_BYTES = 8  # per parameter: "activations and temporaries", high-end estimate (HF)


def training_memory(n_params: float, *, precision: str = "mixed", optimizer: str = "adam",
                    activations: str = "korthikanti", n_layers: int | None = None, hidden: int | None = None,
                    n_heads: int | None = None, seq_len: int | None = None, batch_size: int = 1,
                    n_gpus: int = 1, zero_stage: int = 0,
                    activation_bytes_per_value: int | None = None) -> TrainingMemory:
    """Bytes of training memory per GPU: :func:`model_states_per_gpu` plus activations.

    ``activations`` chooses how activations are estimated:
    'korthikanti', 'selective', 'full_recompute' from the model shape
    (``n_layers``, ``hidden``, ``n_heads``), ``seq_len`` and the per-GPU
    ``batch_size`` (see :func:`activation_bytes`); 'rule_of_thumb' as 8 bytes
    per parameter whatever the batch (the Hugging Face estimate); 'none' leaves
    them out. ZeRO does not shard activations. Activations are 4-byte values
    for precision 'fp32' and 2-byte otherwise, unless ``activation_bytes_per_value``
    says otherwise (2 for fp32 weights under bf16 autocast).
    """
    states = model_states_per_gpu(n_params, n_gpus, zero_stage, precision, optimizer)
    _checks.positive_int("batch_size", batch_size)
    if activations == "rule_of_thumb":
        act = RULE_OF_THUMB_ACTIVATION_BYTES * n_params
    elif activations == "none":
        act = 0.0
    elif activations in ("korthikanti", "selective", "full_recompute"):
        missing = [k for k, v in (("n_layers", n_layers), ("hidden", hidden), ("n_heads", n_heads),
                                  ("seq_len", seq_len)) if v is None]
        if missing:
            raise ValueError(f"activations={activations!r} needs the model shape: pass {', '.join(missing)}")
        per_value = activation_bytes_per_value or (4 if precision == "fp32" else 2)
        act = activation_bytes(n_layers, hidden, n_heads, seq_len, batch_size, activations, per_value)
    else:
        raise ValueError(f"unknown activations {activations!r}; allowed: {', '.join(ACTIVATION_METHODS)}")
    return TrainingMemory(states.params, states.grads, states.optimizer, act)


# --------------------------------------------------------------------------- measuring


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


@dataclass(frozen=True)
class MeasuredStates:
    """Bytes actually held by a model's parameters, gradients and optimizer state tensors.

    ``optimizer_scalars`` is the part of the optimizer bytes held in tensors with
    one element (Adam's per-tensor ``step`` counters), which the per-parameter
    accounting leaves out.
    """

    params: int
    grads: int
    optimizer: int
    optimizer_scalars: int

    @property
    def total(self) -> int:
        return self.params + self.grads + self.optimizer


def measure_model_states(model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None) -> MeasuredStates:
    """Sum the bytes of the unique parameters, their ``.grad`` and every tensor in ``optimizer.state``.

    Tied parameters count once. Call it after ``optimizer.step()`` (before that,
    Adam has not created its states).
    """
    _checks.model("model", model)
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise _checks.ArgumentTypeError(f"optimizer must be a torch.optim.Optimizer or None, got {type(optimizer).__name__}")
    params = list(model.parameters())  # unique: tied weights appear once
    p_bytes = sum(_nbytes(p) for p in params)
    g_bytes = sum(_nbytes(p.grad) for p in params if p.grad is not None)
    o_bytes = scalars = 0
    if optimizer is not None:
        for state in optimizer.state.values():
            for value in state.values():
                if isinstance(value, torch.Tensor):
                    o_bytes += _nbytes(value)
                    if value.numel() == 1:
                        scalars += _nbytes(value)
    return MeasuredStates(p_bytes, g_bytes, o_bytes, scalars)


def cuda_peak_training_bytes(model: torch.nn.Module, input_ids: torch.Tensor, autocast_bf16: bool = True) -> dict:
    """On CUDA: ``torch.cuda.max_memory_allocated`` over one AdamW training step of a causal LM.

    Returns bytes: 'before' (weights only), 'peak' (the highest point, reached in
    the step) and 'after' (weights, gradients and Adam states at rest). Needs a
    CUDA device; raises RuntimeError otherwise.
    """
    _checks.model("model", model)
    _checks.token_ids("input_ids", input_ids, None)
    if input_ids.dim() != 2 or input_ids.size(1) < 2:
        raise ValueError(f"input_ids must be a (batch, tokens) tensor with at least 2 tokens per row, "
                         f"got shape {tuple(input_ids.shape)}")
    if not torch.cuda.is_available():
        raise RuntimeError("cuda_peak_training_bytes needs a CUDA GPU; none is available")
    device = torch.device("cuda")
    model = model.to(device).train()
    input_ids = input_ids.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast_bf16):
        logits = model(input_ids=input_ids[:, :-1]).logits
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), input_ids[:, 1:].flatten())
    loss.backward()
    optimizer.step()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated(device)
    del logits, loss
    after = torch.cuda.memory_allocated(device)
    return {"before": before, "peak": peak, "after": after}


def saved_activation_bytes(model: torch.nn.Module, input_ids: torch.Tensor) -> dict:
    """Measure the activations a causal LM's forward pass and loss keep for backward, in bytes (any device).

    Runs one forward pass and the cross-entropy loss on ``input_ids`` (B, T+1)
    under ``torch.autograd.graph.saved_tensors_hooks`` and adds up the storage
    of every tensor autograd saves, each storage once, leaving out the
    parameters (they are model states, not activations). Returns 'total' and
    'by_shape' (shape and dtype -> [count, bytes]).
    """
    _checks.model("model", model)
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.size(1) < 2:
        raise ValueError("input_ids must be a (batch, tokens) tensor with at least 2 tokens per row")
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    _checks.token_ids("input_ids", input_ids, vocab if isinstance(vocab, int) else None)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, tuple[int, str]] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = (storage.nbytes(), f"{tuple(t.shape)} {str(t.dtype).removeprefix('torch.')}")
        return t

    was_training = model.training
    model.train()
    device = next(model.parameters()).device
    ids = input_ids.to(device)
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            logits = model(input_ids=ids[:, :-1]).logits
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), ids[:, 1:].flatten())
        del loss, logits
    finally:
        model.train(was_training)
    by_shape: dict[str, list[int]] = {}
    for nbytes, key in saved.values():
        entry = by_shape.setdefault(key, [0, 0])
        entry[0] += 1
        entry[1] += nbytes
    return {"total": sum(n for n, _ in saved.values()), "by_shape": by_shape}


# --------------------------------------------------------------------------- multi-GPU strategies (chapter 7)

#: the ZeRO stage each multi-GPU strategy of chapter 7 carries out (``hybrid`` shards like stage 3
#: inside a group of ``sharding_factor`` GPUs and replicates across the groups)
STRATEGY_ZERO_STAGE: dict[str, int] = {"ddp": 0, "zero1": 1, "zero2": 2, "zero3": 3, "hybrid": 3}


def _check_strategy(strategy: str) -> int:
    if not isinstance(strategy, str) or strategy not in STRATEGY_ZERO_STAGE:
        raise ValueError(f"unknown strategy {strategy!r}; allowed: {', '.join(STRATEGY_ZERO_STAGE)}")
    return STRATEGY_ZERO_STAGE[strategy]


def shard_group_size(strategy: str, n_gpus: int, sharding_factor: int | None = None) -> int:
    """Over how many GPUs a strategy divides its sharded states (chapter 7).

    ``ddp`` shards nothing (1); ``zero1``, ``zero2``, ``zero3`` divide over all ``n_gpus``;
    ``hybrid`` divides over ``sharding_factor`` GPUs (1 = full replication, ``n_gpus`` =
    full sharding), which must divide ``n_gpus``.
    """
    _check_strategy(strategy)
    n_gpus = _checks.positive_int("n_gpus", n_gpus)
    if strategy == "hybrid":
        if sharding_factor is None:
            raise ValueError("strategy 'hybrid' needs a sharding_factor (1 = replicate, n_gpus = shard fully)")
        f = _checks.positive_int("sharding_factor", sharding_factor)
        if f > n_gpus or n_gpus % f:
            raise ValueError(f"sharding_factor must divide the number of GPUs ({n_gpus}); got {sharding_factor}")
        return f
    return 1 if strategy == "ddp" else n_gpus


def strategy_states_per_gpu(n_params: float, strategy: str, n_gpus: int, sharding_factor: int | None = None,
                            precision: str = "mixed", optimizer: str = "adam") -> ModelStates:
    """:func:`model_states_per_gpu` for a named strategy of chapter 7: the ideal Ψ/N accounting.

    Parameters are counted as held during the step (between forward and backward), when
    ZeRO-2 / FSDP ``SHARD_GRAD_OP`` holds them whole and ZeRO-3 / ``FULL_SHARD`` one shard.
    """
    stage = _check_strategy(strategy)
    return model_states_per_gpu(n_params, shard_group_size(strategy, n_gpus, sharding_factor), stage,
                                precision, optimizer)


def fsdp_shard_numel(shape: tuple[int, ...], n_shards: int, index: int) -> int:
    """Elements of shard ``index`` of a tensor that FSDP2 splits on dim 0 into ``n_shards`` chunks.

    Like ``torch.chunk``: every shard gets ceil(d0 / n) rows except the last ones, which get
    what is left (possibly nothing). This is the size of the view FSDP2 shows (``to_local()``);
    the memory under it is padded, see :func:`fsdp_padded_shard_numel`.
    """
    n_shards = _checks.positive_int("n_shards", n_shards)
    _checks.integer("index", index)
    if not 0 <= index < n_shards:
        raise ValueError(f"shard index must be in [0, {n_shards}), got {index}")
    shape = _check_shape("shape", shape)
    if not shape:
        return 1 if index == 0 else 0
    rows = math.ceil(shape[0] / n_shards)
    mine = max(0, min(rows, shape[0] - index * rows))
    return mine * math.prod(shape[1:])


def fsdp_padded_shard_numel(shape: tuple[int, ...], n_shards: int) -> int:
    """Elements FSDP2 allocates for one rank's shard of a tensor of ``shape`` (chapter 7).

    torch 2.13's ``FSDPParam`` allocates the padded size of shard 0, ceil(d0 / n) rows, on
    every rank and exposes a narrowed view of the rank's own rows; its gradients are views
    into a reduce-scatter output padded the same way. A scalar is one element.
    """
    n_shards = _checks.positive_int("n_shards", n_shards)
    shape = _check_shape("shape", shape)
    if not shape:
        return 1
    return math.ceil(shape[0] / n_shards) * math.prod(shape[1:])


def zero1_partition(numels: list[int], n_ranks: int) -> list[int]:
    """The rank that ``torch.distributed.optim.ZeroRedundancyOptimizer`` gives each parameter.

    Its greedy rule: parameters sorted by size, largest first (stable), each to the rank
    with the fewest elements so far (lowest rank on a tie). Returns one rank per entry of
    ``numels``, in the given order.
    """
    n_ranks = _checks.positive_int("n_ranks", n_ranks)
    if isinstance(numels, (str, bytes)) or not isinstance(numels, (list, tuple)):
        raise _checks.ArgumentTypeError(f"numels must be a list of element counts, got {type(numels).__name__}")
    for v in numels:
        _checks.non_negative_int("numels (each element count)", v)
    order = sorted(range(len(numels)), key=lambda i: numels[i], reverse=True)
    sizes = [0] * n_ranks
    owner = [0] * len(numels)
    for i in order:
        r = sizes.index(min(sizes))
        owner[i] = r
        sizes[r] += numels[i]
    return owner


def rank_states_exact(param_shapes: list[tuple[int, ...]], strategy: str, world_size: int, rank: int,
                      sharding_factor: int | None = None, precision: str = "fp32",
                      optimizer: str = "adam") -> ModelStates:
    """Bytes of model states on ``rank``, shard by shard, for the parameters of ``param_shapes`` (chapter 7).

    What a run of ``llmlab.distributed`` measures: parameters as held between forward and
    backward, gradients after backward, optimizer states after the step (one-element step
    counters left out). ``zero1`` follows ZeroRedundancyOptimizer's greedy partition of whole
    parameters (:func:`zero1_partition`); ``zero2``, ``zero3`` and ``hybrid`` follow FSDP2's
    dim-0 chunks (:func:`fsdp_shard_numel`); a hybrid rank's shard is ``rank % sharding_factor``
    (the mesh is ``arange(world_size).view(replicas, sharding_factor)``). FSDP2 allocates
    parameters and gradients padded (:func:`fsdp_padded_shard_numel` on every rank; ZeRO-2's
    parameters, gathered, n padded shards); Adam's states are unpadded copies of the view.
    """
    stage = _check_strategy(strategy)
    n = shard_group_size(strategy, world_size, sharding_factor)
    if isinstance(param_shapes, (str, bytes)) or not isinstance(param_shapes, (list, tuple)):
        raise _checks.ArgumentTypeError(f"param_shapes must be a list of shapes (tuples of ints), got "
                                        f"{type(param_shapes).__name__}")
    for shape in param_shapes:
        _check_shape("param_shapes (each shape)", shape)
    _checks.integer("rank", rank)
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    per = bytes_per_param(precision, optimizer)
    shapes = [tuple(s) for s in param_shapes]
    full = [math.prod(s) for s in shapes]
    if strategy == "zero1":
        owner = zero1_partition(full, n)
        mine = [f if o == rank else 0 for f, o in zip(full, owner)]
        return ModelStates(params=per.params * sum(full), grads=per.grads * sum(full),
                           optimizer=per.optimizer * sum(mine))
    mine = [fsdp_shard_numel(s, n, rank % n) for s in shapes]
    padded = [fsdp_padded_shard_numel(s, n) for s in shapes]
    # ZeRO-2 holds its parameters gathered during the step: n padded shards of each
    held = padded if stage >= 3 else [n * p for p in padded] if stage == 2 else full
    return ModelStates(
        params=per.params * sum(held),
        grads=per.grads * sum(padded if stage >= 2 else full),
        optimizer=per.optimizer * sum(mine if stage >= 1 else full),
    )


@dataclass(frozen=True)
class GpuMemory:
    """Bytes on one GPU for the sharding explorer (chapter 7), and the bytes moved to CPU memory."""

    params: float
    grads: float
    optimizer: float
    activations: float
    offloaded: float  # bytes in CPU memory instead (CPU offload)

    @property
    def total(self) -> float:
        """Bytes on the GPU (the offloaded bytes are not)."""
        return self.params + self.grads + self.optimizer + self.activations


def sharded_gpu_memory(n_params: float, n_gpus: int, sharding_factor: int, zero_stage: int = 3,
                       precision: str = "mixed", optimizer: str = "adam", offload: bool | str = False,
                       activations: float = 0.0) -> GpuMemory:
    """Per-GPU bytes with ZeRO stage ``zero_stage`` applied inside groups of ``sharding_factor`` GPUs.

    ``sharding_factor`` 1 is full replication (DDP: nothing is sharded, whatever the stage),
    ``n_gpus`` full sharding, anything between hybrid sharding (FSDP's HYBRID_SHARD: shard
    within a group, replicate across groups). ``offload`` moves the gradients and optimizer
    states (with the fp32 master weights) to CPU memory, ZeRO-Offload's split (Ren et al. 2021,
    "ZeRO-Offload: Democratizing Billion-Scale Model Training"); parameters stay on the GPU.
    ZeRO-Offload itself is built on stage 2 (whole FP16 parameters on every GPU); with
    ``zero_stage`` 3 this is ZeRO-3 with the optimizer offloaded, parameter shards on the GPU.
    ``offload="fsdp2"`` is FSDP2's ``CPUOffloadPolicy``, which also keeps the parameter shards in
    CPU memory: with ``zero_stage`` 3 no model state stays on the GPU between uses (the
    gathered parameters of the running block are copied in and freed, not counted here, as
    ZeRO-3's are not); with stages below 3 the parameters held whole through the step stay.
    ``activations`` (bytes per GPU) are added unchanged: sharding does not divide them.
    """
    n_gpus = _checks.positive_int("n_gpus", n_gpus)
    f = _checks.positive_int("sharding_factor", sharding_factor)
    if f > n_gpus or n_gpus % f:
        raise ValueError(f"sharding_factor must divide the number of GPUs ({n_gpus}); got {sharding_factor}")
    _checks.non_negative("activations", activations)
    if offload != "fsdp2" and not isinstance(offload, bool):
        raise ValueError(f"offload must be False, True (ZeRO-Offload: gradients and optimizer states) or "
                         f"'fsdp2' (CPUOffloadPolicy: parameters too), got {offload!r}")
    s = model_states_per_gpu(n_params, f, zero_stage if f > 1 else 0, precision, optimizer)
    if offload == "fsdp2":
        shard = model_states_per_gpu(n_params, f, 3, precision, optimizer).params
        kept = 0.0 if s.params <= shard else s.params  # stage 3 holds only its shard, now on the CPU
        return GpuMemory(kept, 0.0, 0.0, float(activations), shard + s.grads + s.optimizer)
    moved = s.grads + s.optimizer if offload else 0.0
    return GpuMemory(s.params, 0.0 if offload else s.grads, 0.0 if offload else s.optimizer, float(activations), moved)


def model_parallel_gpu_memory(split_params: float, whole_params: float, n_gpus: int, tensor_parallel: int = 1,
                              pipeline_parallel: int = 1, zero_stage: int = 1, precision: str = "mixed",
                              optimizer: str = "adam", activations: float = 0.0, *,
                              sharding_factor: int | None = None, offload: bool = False) -> GpuMemory:
    """Per-GPU bytes with tensor parallelism t, pipeline parallelism p and data parallelism d = n_gpus / (t·p).

    ``split_params``: the parameters that both splits divide, the blocks' (the matrices and, for the
    pipeline, everything in a block); each GPU holds split_params / (t·p) of them. ``whole_params``:
    the ones neither divides, held by the pipeline stage with the most of them (the embeddings on the
    first stage, the output layer on the last; with one stage, all of them). ZeRO stage ``zero_stage``
    then shards those model states over the d data-parallel copies (Megatron-LM's distributed
    optimizer is stage 1), or, with ``sharding_factor`` f (a divisor of d), within groups of f copies
    and replicated across the groups (hybrid sharding; f = 1 shards nothing). ``offload`` moves the
    gradients and optimizer states to CPU memory (:func:`sharded_gpu_memory`); the bytes moved are in
    ``offloaded``. ``activations``: bytes per GPU, added as given (see :func:`activation_bytes` with
    ``tensor_parallel``). Narayanan et al. (2021) for the layout. With t = p = 1 this is
    :func:`sharded_gpu_memory` of ``split_params + whole_params`` parameters.
    """
    for name, value in (("split_params", split_params), ("whole_params", whole_params)):
        _checks.non_negative(name, value)
    n = _checks.positive_int("n_gpus", n_gpus)
    t = _checks.positive_int("tensor_parallel", tensor_parallel)
    p = _checks.positive_int("pipeline_parallel", pipeline_parallel)
    if n % (t * p):
        raise ValueError(f"tensor_parallel x pipeline_parallel ({t} x {p}) must divide n_gpus ({n})")
    _checks.non_negative("activations", activations)
    if not isinstance(offload, bool):
        raise _checks.ArgumentTypeError(f"offload must be True or False, got {offload!r}")
    d = n // (t * p)
    f = d if sharding_factor is None else _checks.positive_int("sharding_factor", sharding_factor)
    if f > d or d % f:
        raise ValueError(f"sharding_factor must divide the data-parallel degree n_gpus / (t x p) = {d}; "
                         f"got {sharding_factor}")
    local = split_params / (t * p) + whole_params
    if local <= 0:
        raise ValueError("split_params + whole_params must be > 0")
    s = model_states_per_gpu(local, f, zero_stage if f > 1 else 0, precision, optimizer)
    moved = s.grads + s.optimizer if offload else 0.0
    return GpuMemory(s.params, 0.0 if offload else s.grads, 0.0 if offload else s.optimizer, float(activations),
                     moved)


def bubble_fraction(n_stages: int, n_microbatches: int, chunks: int = 1) -> float:
    """The pipeline bubble of GPipe and 1F1B, (p - 1)/(m + p - 1) of each stage's time idle with p stages
    of equal cost and m micro-batches (Huang et al. 2019; Narayanan et al. 2021). Chapter 7.

    ``chunks`` v > 1: interleaved 1F1B with v virtual stages per rank, whose bubble is v times
    shorter (Narayanan et al. 2021): (p - 1)/(v·m + p - 1) of the step."""
    p, m = _checks.positive_int("n_stages", n_stages), _checks.positive_int("n_microbatches", n_microbatches)
    v = _checks.positive_int("chunks", chunks)
    return (p - 1) / (v * m + p - 1)
