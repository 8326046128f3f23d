"""One small, readable training loop for causal language models (chapter 3).

The zoo's recipes, the scaling sweep and the tuning chapters all train with
:func:`train_causal_lm`. It follows the shape of nanoGPT's ``train.py``: sample
random windows from one long stream of token ids, predict each next token, step
AdamW on a warm-up-then-cosine learning-rate schedule, and log the loss.
It runs on any device and can use bf16 autocast.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
from tqdm.auto import tqdm

from . import _checks
from .device import best_device


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run. Sizes are in tokens, rates per step."""

    steps: int = 1000
    batch_size: int = 32
    seq_len: int = 128
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 50
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_every: int = 100
    eval_batches: int = 8
    seed: int = 0
    bf16: bool = False

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "seq_len", "eval_every", "eval_batches"):
            _checks.positive_int(name, getattr(self, name))
        _checks.positive("lr", self.lr)
        _checks.fraction("min_lr_ratio", self.min_lr_ratio)
        _checks.non_negative("weight_decay", self.weight_decay)
        _checks.positive("grad_clip", self.grad_clip)
        _checks.non_negative_int("warmup_steps", self.warmup_steps)
        _checks.non_negative_int("seed", self.seed)
        if not isinstance(self.bf16, bool):
            raise TypeError(f"bf16 must be True or False, got {type(self.bf16).__name__} {self.bf16!r}")
        if not 0 <= self.warmup_steps <= self.steps:
            raise ValueError(f"warmup_steps must be in [0, steps={self.steps}], got {self.warmup_steps}")

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len


@dataclass
class TrainLog:
    """What a run did: one row per evaluation, plus totals (seconds, tokens)."""

    config: dict
    rows: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    tokens_seen: int = 0

    @property
    def final_val_loss(self) -> float:
        return self.rows[-1]["val_loss"]

    def to_csv(self, path) -> None:
        import csv

        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(self.rows[0]))
            writer.writeheader()
            writer.writerows(self.rows)


def check_corpus(texts, what: str = "texts") -> None:
    """Refuse a corpus that cannot be trained on: not a list of strings, empty, or with no text at all.

    Called by :func:`llmlab.tokenization.train_tokenizer` and :func:`llmlab.tokenization.encode_stories` (chapter 3).
    """
    if isinstance(texts, (str, bytes)) or not isinstance(texts, (list, tuple)):
        raise _checks.ArgumentTypeError(f"{what} must be a list of strings (one per document), got {type(texts).__name__}")
    if not texts:
        raise ValueError(f"{what} is empty: pass at least one document (a non-empty string)")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise _checks.ArgumentTypeError(f"{what} must hold only strings; item {i} is {type(text).__name__}")
    if not any(text.strip() for text in texts):
        raise ValueError(f"{what} holds only empty or whitespace strings: there is no text to learn from")


def _check_config(cfg) -> "TrainConfig":
    if isinstance(cfg, dict):
        raise TypeError("cfg must be a TrainConfig, got a dict; pass TrainConfig(**cfg)")
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
    return cfg


def learning_rate(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to ``cfg.lr``, then cosine decay to ``cfg.lr * cfg.min_lr_ratio`` at the last step."""
    _checks.non_negative_int("step", step)
    _check_config(cfg)
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def random_batch(ids: torch.Tensor, batch_size: int, seq_len: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``batch_size`` windows of ``seq_len + 1`` tokens; return inputs and next-token targets, each (B, T)."""
    _checks.token_ids("ids", ids, None)
    batch_size = _checks.positive_int("batch_size", batch_size)
    seq_len = _checks.positive_int("seq_len", seq_len)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}; "
                        f"pass torch.Generator().manual_seed(seed)")
    if ids.numel() < seq_len + 2:
        raise ValueError(f"need at least seq_len + 2 = {seq_len + 2} tokens, got {ids.numel()}")
    starts = torch.randint(0, ids.numel() - seq_len - 1, (batch_size,), generator=generator)
    windows = ids[starts[:, None] + torch.arange(seq_len + 1)]  # (B, T+1), one gather instead of B slices
    return windows[:, :-1], windows[:, 1:]


class _CrossEntropy(torch.autograd.Function):
    """Mean cross-entropy with a one-pass backward: the gradient is ``(softmax(z) - onehot(y)) / n``.

    Same value and gradient as ``torch.nn.functional.cross_entropy`` (checked in
    tests/test_train.py); on a CPU its backward is several times faster for the
    small models of chapters 3 and 8, where the vocabulary projection and the loss
    are a large share of the work.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_probs = torch.log_softmax(logits, dim=-1)
        ctx.save_for_backward(log_probs, targets)
        return -log_probs.gather(1, targets[:, None]).mean()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        log_probs, targets = ctx.saved_tensors
        probs = torch.exp(log_probs)
        probs.scatter_add_(1, targets[:, None], probs.new_full((targets.numel(), 1), -1.0))
        return probs.mul_(grad / log_probs.size(0)), None


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (nats per token) of (n, V) ``logits`` against (n,) integer ``targets``.

    The fast path of :class:`_CrossEntropy` when a gradient is needed, otherwise
    ``torch.nn.functional.cross_entropy``.
    """
    _checks.tensor("logits", logits)
    _checks.token_ids("targets", targets, logits.size(-1) if logits.dim() == 2 else None)
    if logits.dim() != 2 or targets.dim() != 1 or logits.size(0) != targets.size(0):
        raise ValueError(f"cross_entropy takes (n, V) logits and (n,) targets, got {tuple(logits.shape)} and {tuple(targets.shape)}")
    if targets.numel() == 0 or logits.size(-1) == 0:
        raise ValueError(f"cross_entropy needs at least one token and one vocabulary entry (the mean of nothing is "
                         f"NaN), got logits of shape {tuple(logits.shape)}")
    if logits.requires_grad and torch.is_grad_enabled():
        return _CrossEntropy.apply(logits, targets)
    return torch.nn.functional.cross_entropy(logits, targets)


def causal_lm_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (nats per token) of predicting ``y`` from ``x``; both (B, T) token ids."""
    _checks.model("model", model)
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    _checks.token_ids("x", x, vocab if isinstance(vocab, int) else None)
    _checks.token_ids("y", y, vocab if isinstance(vocab, int) else None)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same (B, T) shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    logits = model(input_ids=x).logits  # (B, T, V)
    return cross_entropy(logits.flatten(0, 1).float(), y.flatten())


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not biases and norms), betas (0.9, 0.95).

    Uses the fused implementation (one kernel for all parameters) on CPU and CUDA when
    every parameter is a floating-point tensor on ``device``; otherwise PyTorch's default.
    """
    _checks.model("model", model)
    _check_config(cfg)
    device = _checks.device("device", device)
    params = list(model.parameters())
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    fused = device.type in ("cpu", "cuda") and all(p.is_floating_point() and p.device.type == device.type for p in params)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, betas=(0.9, 0.95), **({"fused": True} if fused else {}),
    )


@torch.no_grad()
def evaluate(model: torch.nn.Module, ids: torch.Tensor, cfg: TrainConfig, device: torch.device) -> float:
    """Mean loss (nats per token) over ``cfg.eval_batches`` fixed windows of ``ids``."""
    _checks.model("model", model)
    _check_config(cfg)
    device = _checks.device("device", device)
    _checks.token_ids("ids", ids, None)
    model.eval()
    g = torch.Generator().manual_seed(1234)  # the same windows at every evaluation
    losses = []
    for _ in range(cfg.eval_batches):
        x, y = random_batch(ids, cfg.batch_size, cfg.seq_len, g)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            losses.append(causal_lm_loss(model, x.to(device), y.to(device)).item())
    model.train()
    return sum(losses) / len(losses)


def train_causal_lm(
    model: torch.nn.Module,
    train_ids: torch.Tensor,
    val_ids: torch.Tensor,
    cfg: TrainConfig,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> TrainLog:
    """Train ``model`` in place on 1-D streams of token ids; return the loss log (losses in nats per token).

    ``progress`` shows a tqdm bar (turn it off in tests and in notebooks checked by nbval).
    """
    _checks.model("model", model)
    _check_config(cfg)
    for name, ids in (("train_ids", train_ids), ("val_ids", val_ids)):
        if not isinstance(ids, torch.Tensor) or ids.dim() != 1 or ids.dtype.is_floating_point or ids.dtype == torch.bool:
            raise ValueError(f"{name} must be a 1-D tensor of integer token ids (see tokenization.encode_stories), got "
                             f"{type(ids).__name__}{'' if not isinstance(ids, torch.Tensor) else f' {ids.dtype} of shape {tuple(ids.shape)}'}")
    window = _checks.context_window(model)  # GPT-2's n_positions, Llama's max_position_embeddings
    if window is not None and cfg.seq_len > window:
        raise ValueError(f"seq_len ({cfg.seq_len}) is longer than the model's context window "
                         f"(config.{_checks.context_window_key(model)} = {window}); use seq_len <= {window}")
    device = _checks.device("device", device) if device is not None else best_device()

    def batch_loss(g: torch.Generator) -> tuple[torch.Tensor, int]:
        x, y = random_batch(train_ids, cfg.batch_size, cfg.seq_len, g)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            return causal_lm_loss(model, x.to(device), y.to(device)), cfg.tokens_per_step

    return train_loop(model, cfg, device, batch_loss, lambda: evaluate(model, val_ids, cfg, device), progress)


def train_loop(
    model: torch.nn.Module,
    cfg: TrainConfig,
    device: torch.device,
    batch_loss: Callable[[torch.Generator], tuple[torch.Tensor, int]],
    val_loss: Callable[[], float],
    progress: bool = True,
    stop_on_nan: bool = False,
) -> TrainLog:
    """The loop every trainer in llmlab shares; returns the loss log (nats per token).

    ``batch_loss(generator)`` draws one training batch with ``generator`` and returns
    its loss and the number of tokens it trained on; ``val_loss()`` returns the
    held-out loss. AdamW (no weight decay on biases and norms), warm-up then cosine
    learning rate, gradient clipping, and an evaluation every ``cfg.eval_every``
    steps. ``stop_on_nan`` raises as soon as the loss stops being finite.
    """
    _checks.model("model", model)
    _check_config(cfg)
    device = _checks.device("device", device)
    if not callable(batch_loss):
        raise TypeError(f"batch_loss must be a function generator -> (loss, n_tokens), got {type(batch_loss).__name__}")
    if not callable(val_loss):
        raise TypeError(f"val_loss must be a function () -> float, got {type(val_loss).__name__}")
    model.to(device).train()
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    optimizer = make_optimizer(model, cfg, device)
    log = TrainLog(config=asdict(cfg))
    start = time.perf_counter()
    bar = tqdm(range(cfg.steps), desc="training", disable=not progress)
    running = None
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, cfg)
        loss, n_tokens = batch_loss(g)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        value = loss.item()
        if stop_on_nan and not math.isfinite(value):
            raise FloatingPointError(
                f"loss became {value} at step {step}; lower the learning rate")
        running = value if running is None else 0.9 * running + 0.1 * value
        log.tokens_seen += n_tokens
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            val = val_loss()
            log.rows.append({
                "step": step + 1,
                "tokens": log.tokens_seen,
                "train_loss": round(running, 4),
                "val_loss": round(val, 4),
                "lr": learning_rate(step, cfg),
                "seconds": round(time.perf_counter() - start, 1),
            })
            bar.set_postfix(train=f"{running:.3f}", val=f"{val:.3f}")
    log.seconds = time.perf_counter() - start
    model.eval()
    return log


# ---------------------------------------------------------------- per-document losses
# The loss of one run is a mean over windows; to say that one model or one corpus gives a
# lower loss than another, the book needs the loss of every held-out document and a test.


@torch.no_grad()
def document_losses(model: torch.nn.Module, docs, start_token_id: int | None = None) -> list[float]:
    """Mean next-token loss (nats per token) of ``model`` on each document of ``docs``.

    ``docs`` is a list of token-id sequences (lists or 1-D tensors), each at most the
    model's context window long (with ``start_token_id`` in front, when given, as the
    end-of-text token that precedes a story in the training stream). Each document is
    scored on its own, every token after the first predicted from all tokens before it.
    """
    _checks.model("model", model)
    if not isinstance(docs, (list, tuple)) or not docs:
        raise ValueError("docs must be a non-empty list of token-id sequences, one per document")
    if start_token_id is not None:
        _checks.non_negative_int("start_token_id", start_token_id)
    head = [] if start_token_id is None else [int(start_token_id)]
    window = _checks.context_window(model)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    losses = []
    for i, doc in enumerate(docs):
        ids = head + (doc.tolist() if isinstance(doc, torch.Tensor) else list(doc))
        if len(ids) < 2:
            raise ValueError(f"docs[{i}] needs at least 2 tokens (with the start token) to score, got {len(ids)}")
        if window is not None and len(ids) > window:
            raise ValueError(f"docs[{i}] has {len(ids)} tokens, more than the model's context window "
                             f"({window}); cut it into shorter documents")
        t = torch.tensor([ids], device=device)
        losses.append(causal_lm_loss(model, t[:, :-1], t[:, 1:]).item())
    model.train(was_training)
    return losses
