"""The chapter 8 scaling sweep: tiny GPT-2 models trained over two orders of magnitude of compute.

:func:`run_point` trains one (size, budget) point; ``python -m llmlab.records.scaling_sweep``
trains every point of its plan on the CPU and ships ``llmlab/results/scaling_sweep.csv`` (one
row per run, stamped with the code version and the machine; about 15 CPU-minutes), and
:func:`rerun` trains a few of its points again to set them beside the recorded values.
The analysis of the runs is in :mod:`llmlab.scaling_fits`; the compute counts in
:mod:`llmlab.scaling`.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

from . import _checks
from .scaling import training_flops

if TYPE_CHECKING:
    import pandas as pd

    from .train import TrainConfig

#: Model sizes of the sweep: GPT-2 architecture, the stories-1m tokenizer (1,024 tokens),
#: context 128. Name -> (n_embd, n_layer, n_head); the MLP is 4 * n_embd wide.
SWEEP_SIZES: dict[str, tuple[int, int, int]] = {
    "s0": (8, 1, 2), "s1": (16, 1, 2), "s2": (24, 2, 2), "s3": (32, 3, 4),
    "s4": (48, 3, 4), "s5": (64, 4, 4), "s6": (96, 4, 4),
}
SWEEP_BATCH, SWEEP_SEQ_LEN, SWEEP_LR, SWEEP_EVAL_BATCHES = 8, 128, 3e-3, 32


def sweep_model(size: str, seed: int = 0):
    """A freshly initialised GPT-2 decoder of sweep size ``size`` (a key of :data:`SWEEP_SIZES`),
    its weights drawn with ``seed``."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    if size not in SWEEP_SIZES:
        raise ValueError(f"unknown sweep size {size!r}; sizes: {sorted(SWEEP_SIZES)}")
    seed = _checks.non_negative_int("seed", seed)
    d, layers, heads = SWEEP_SIZES[size]
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=1024, n_positions=SWEEP_SEQ_LEN, n_embd=d, n_layer=layers, n_head=heads,
                     n_inner=4 * d, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(cfg)


def count_params(model) -> dict[str, int]:
    """All parameters (tied embedding once), and those outside the token and position embeddings."""
    _checks.model("model", model)
    total = sum(p.numel() for p in model.parameters())
    emb = model.transformer.wte.weight.numel() + model.transformer.wpe.weight.numel()
    return {"n_params": total, "n_non_embedding": total - emb}


@functools.lru_cache(maxsize=1)
def sweep_data():
    """(train_ids, val_ids): the bundled story corpus encoded with the stories-1m tokenizer (chapter 3).

    Encoded once per process and shared (training only reads them)."""
    from . import data, zoo
    from .tokenization import encode_stories

    _, tokenizer = zoo.load("stories-1m", device="cpu")
    return (encode_stories(tokenizer, data.load_corpus("train")),
            encode_stories(tokenizer, data.load_corpus("validation")))


def sweep_config(size: str, compute_flops: float, seed: int = 0) -> tuple[int, "TrainConfig"]:
    """(n_params, TrainConfig) of the run of ``size`` at ``compute_flops``: D = C / (6 N) tokens, rounded
    to whole steps; ``seed`` orders the training batches."""
    from .train import TrainConfig

    c = _checks.positive("compute_flops", compute_flops)
    seed = _checks.non_negative_int("seed", seed)
    n = count_params(sweep_model(size))["n_params"]
    steps = max(1, round(c / (6 * n) / (SWEEP_BATCH * SWEEP_SEQ_LEN)))
    return n, TrainConfig(steps=steps, batch_size=SWEEP_BATCH, seq_len=SWEEP_SEQ_LEN, lr=SWEEP_LR,
                          warmup_steps=min(50, steps // 10), eval_every=steps, eval_batches=SWEEP_EVAL_BATCHES, seed=seed)


def run_point(size: str, compute_flops: float, train_ids, val_ids, seed: int = 0) -> dict:
    """Train sweep size ``size`` for the budget ``compute_flops`` on the CPU; return its CSV row.

    ``seed`` draws the initial weights and orders the batches; the validation windows are the
    same for every seed, so runs of one point differ only by the seed."""
    import time

    from .train import train_causal_lm

    n, cfg = sweep_config(size, compute_flops, seed)
    model = sweep_model(size, seed)
    counts = count_params(model)
    cpu0 = time.process_time()
    log = train_causal_lm(model, train_ids, val_ids, cfg, device="cpu", progress=False)
    d, layers, heads = SWEEP_SIZES[size]
    tokens = cfg.steps * cfg.tokens_per_step
    return {"size": size, "seed": seed, "n_embd": d, "n_layer": layers, "n_head": heads, **counts,
            "budget_flops": compute_flops, "tokens": tokens, "flops": training_flops(n, tokens),
            "tokens_per_param": round(tokens / n, 3), "steps": cfg.steps, "batch_size": cfg.batch_size,
            "seq_len": cfg.seq_len, "lr": cfg.lr, "val_loss": log.final_val_loss,
            "train_loss": log.rows[-1]["train_loss"], "wall_seconds": round(log.seconds, 2),
            "cpu_seconds": round(time.process_time() - cpu0, 2)}


def rerun(points: list[tuple[str, float]], sweep: "pd.DataFrame") -> "pd.DataFrame":
    """Train the sweep points ``[(size, budget), ...]`` again (seed 0) and set them beside the recorded
    seed-0 values of ``sweep`` (the DataFrame of :func:`llmlab.records.scaling_sweep.load`): columns val_loss,
    shipped_val_loss, deviation = val_loss - shipped_val_loss, nats per token."""
    import pandas as pd

    if isinstance(points, (str, bytes)) or not isinstance(points, (list, tuple)) or not all(
            isinstance(p, (list, tuple)) and len(p) == 2 and isinstance(p[0], str) for p in points):
        raise _checks.ArgumentTypeError(f"points must be a list of (size, budget) pairs, e.g. [('s5', 1e12)], "
                                        f"got {type(points).__name__} {points!r:.60}")
    for size, budget in points:
        _checks.positive("budget", budget)
        if size not in SWEEP_SIZES:
            raise ValueError(f"unknown sweep size {size!r}; sizes: {sorted(SWEEP_SIZES)}")
    if not isinstance(sweep, pd.DataFrame):
        raise _checks.ArgumentTypeError(f"sweep must be a pandas DataFrame from "
                                        f"llmlab.records.scaling_sweep.load(), got {type(sweep).__name__}")
    train_ids, val_ids = sweep_data()
    rows = []
    for size, budget in points:
        shipped = sweep[(sweep["size"] == size) & np.isclose(sweep["budget_flops"], budget)]
        if "seed" in shipped.columns:  # the live run uses seed 0: compare it with seed 0's row
            shipped = shipped[shipped["seed"] == 0]
        if shipped.empty:
            raise ValueError(f"({size!r}, {budget:g}) is not a point of the shipped sweep; see llmlab.records.scaling_sweep.PLAN")
        row = run_point(size, budget, train_ids, val_ids)
        rows.append({"size": size, "budget_flops": budget, "n_params": row["n_params"], "tokens": row["tokens"],
                     "val_loss": row["val_loss"], "shipped_val_loss": float(shipped["val_loss"].iloc[0]),
                     "deviation": row["val_loss"] - float(shipped["val_loss"].iloc[0]),
                     "cpu_seconds": row["cpu_seconds"]})
    return pd.DataFrame(rows)
