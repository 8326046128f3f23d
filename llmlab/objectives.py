"""Pre-training objectives: the (input, target) pairs the three model families learn from (chapter 2).

One stream of token ids, three ways to turn it into a training example:

- **causal language modeling** (decoders such as GPT): the input is the sequence,
  the target is the same sequence shifted one token left, so every position
  predicts the next token from the tokens before it (:func:`causal_lm_pair`);
- **masked language modeling** (encoders such as BERT, Devlin et al. 2019): about
  15% of the tokens are chosen; of those, 80% become ``[MASK]``, 10% a random
  token and 10% stay as they are, and the model predicts the original token at the
  chosen positions only (:func:`masked_lm_pair`);
- **span corruption** (encoder-decoders such as T5, Raffel et al. 2020): a few short
  spans, about 15% of the tokens in all, are cut out; each span is replaced in the
  input by one sentinel token, and the target lists each sentinel followed by the
  tokens it replaced, then the end-of-text token (:func:`span_corruption_pair`).

Positions that carry no target hold :data:`IGNORE_INDEX` (-100), the label that
PyTorch's cross-entropy and the Hugging Face models skip.

The batch builders and :func:`train_objective` are what the zoo recipes of the
encoder and encoder-decoder use; the loop is :func:`llmlab.train.train_loop`, the
one :func:`llmlab.train.train_causal_lm` uses, with the batch and the loss supplied by
the objective.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from . import _checks
from .device import best_device
from .train import TrainConfig, TrainLog, train_loop

IGNORE_INDEX = -100
OBJECTIVES = ("causal", "masked", "span-corruption")

Batch = dict[str, torch.Tensor]


def _as_long(ids: Sequence[int] | torch.Tensor) -> torch.Tensor:
    if isinstance(ids, (str, bytes)):
        raise _checks.ArgumentTypeError(f"ids must be token ids (a list of ints or an integer tensor), got the "
                                        f"{type(ids).__name__} {ids!r:.60}; tokenize the text first")
    if isinstance(ids, torch.Tensor) and (ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool):
        raise _checks.ArgumentTypeError(f"ids must be an integer tensor of token ids, got dtype {ids.dtype}")
    try:
        as_given = ids if isinstance(ids, torch.Tensor) else torch.as_tensor(ids)
    except (TypeError, ValueError, RuntimeError):
        raise _checks.ArgumentTypeError(f"ids must be token ids (a list of ints or an integer tensor), "
                                        f"got {type(ids).__name__} {ids!r:.60}") from None
    if as_given.is_floating_point() or as_given.is_complex() or as_given.dtype == torch.bool:
        raise _checks.ArgumentTypeError(f"ids must be whole-number token ids, got values of dtype {as_given.dtype} "
                                        f"({ids!r:.60}); a float would be truncated to another token")
    ids = as_given.to(torch.long)
    if ids.dim() not in (1, 2):
        raise ValueError(f"token ids must be 1-D (T,) or 2-D (B, T), got shape {tuple(ids.shape)}")
    return ids


# --------------------------------------------------------------------------- causal
def causal_lm_pair(ids: Sequence[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Causal LM: input ``ids[..., :-1]``, target ``ids[..., 1:]`` (the next token at every position)."""
    ids = _as_long(ids)
    if ids.size(-1) < 2:
        raise ValueError(f"causal LM needs at least 2 tokens, got {ids.size(-1)}")
    return ids[..., :-1], ids[..., 1:]


# --------------------------------------------------------------------------- masked
def masked_lm_pair(
    ids: Sequence[int] | torch.Tensor,
    mask_id: int,
    vocab_size: int,
    mask_prob: float = 0.15,
    random_prob: float = 0.1,
    keep_prob: float = 0.1,
    positions: Sequence[int] | torch.Tensor | None = None,
    special_ids: Sequence[int] = (),
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked LM (BERT): return ``(input_ids, labels)``, both shaped like ``ids``.

    Each token is chosen with probability ``mask_prob`` (never one of
    ``special_ids``), or exactly the indices in ``positions`` when given (for
    demonstrations, last dimension). A chosen token becomes ``mask_id`` with
    probability ``1 - random_prob - keep_prob``, a random token of the vocabulary
    with ``random_prob``, and stays itself with ``keep_prob``. ``labels`` holds the
    original token at chosen positions and :data:`IGNORE_INDEX` elsewhere.
    """
    ids = _as_long(ids)
    vocab_size = _checks.positive_int("vocab_size", vocab_size)
    _checks.token_ids("ids", ids, vocab_size)
    if not 0 < mask_prob < 1:
        raise ValueError(f"mask_prob must be in (0, 1), got {mask_prob}")
    if random_prob < 0 or keep_prob < 0 or random_prob + keep_prob > 1:
        raise ValueError(f"random_prob and keep_prob must be >= 0 and sum to <= 1, got {random_prob} and {keep_prob}")
    if not 0 <= mask_id < vocab_size:
        raise ValueError(f"mask_id must be a token id in [0, {vocab_size}), got {mask_id}")
    if positions is not None:
        chosen = torch.zeros_like(ids, dtype=torch.bool)
        pos = torch.as_tensor(positions, dtype=torch.long)
        if pos.numel() and (pos.min() < -ids.size(-1) or pos.max() >= ids.size(-1)):
            raise ValueError(f"positions must index the last dimension (length {ids.size(-1)}), got {pos.tolist()}")
        chosen[..., pos] = True
    else:
        chosen = torch.rand(ids.shape, generator=generator) < mask_prob
    for special in special_ids:
        chosen &= ids != special
    labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE_INDEX))
    roll = torch.rand(ids.shape, generator=generator)
    to_mask = chosen & (roll < 1 - random_prob - keep_prob)
    to_random = chosen & (roll >= 1 - random_prob - keep_prob) & (roll < 1 - keep_prob)
    inputs = ids.clone()
    inputs[to_mask] = mask_id
    inputs[to_random] = torch.randint(0, vocab_size, (int(to_random.sum()),), generator=generator)
    return inputs, labels


# --------------------------------------------------------------------------- span corruption
def random_spans(length: int, noise_density: float = 0.15, mean_span_length: float = 3.0,
                 generator: torch.Generator | None = None) -> list[tuple[int, int]]:
    """T5's span choice: ``[start, end)`` spans covering about ``noise_density`` of ``length`` tokens.

    Like ``random_spans_noise_mask`` in the T5 code: the number of noise tokens is
    ``round(length * noise_density)`` (at least 1), the number of spans that over
    ``mean_span_length`` (at least 1); noise and kept tokens are each cut into that
    many non-empty runs at random, and the runs alternate, kept first.
    """
    _checks.integer("length", length)
    if length < 2:
        raise ValueError(f"length must be >= 2 (span corruption needs at least 2 tokens), got {length}")
    if not 0 < noise_density < 1:
        raise ValueError(f"noise_density must be in (0, 1), got {noise_density}")
    if mean_span_length < 1:
        raise ValueError(f"mean_span_length must be >= 1, got {mean_span_length}")
    n_noise = min(max(1, round(length * noise_density)), length - 1)
    n_spans = max(1, min(round(n_noise / mean_span_length), n_noise, length - n_noise))

    def segment_lengths(total: int) -> list[int]:  # ``total`` items cut into n_spans non-empty runs
        cuts = sorted((torch.randperm(total - 1, generator=generator)[: n_spans - 1] + 1).tolist())
        bounds = [0, *cuts, total]
        return [b - a for a, b in zip(bounds[:-1], bounds[1:])]

    noise, kept = segment_lengths(n_noise), segment_lengths(length - n_noise)
    spans, start = [], 0
    for k, n in zip(kept, noise):
        start += k
        spans.append((start, start + n))
        start += n
    return spans


def span_corruption_pair(
    ids: Sequence[int] | torch.Tensor,
    sentinel_ids: Sequence[int],
    eos_id: int,
    spans: Sequence[tuple[int, int]] | None = None,
    noise_density: float = 0.15,
    mean_span_length: float = 3.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Span corruption (T5): return ``(input_ids, target_ids)`` for one 1-D sequence.

    Each ``[start, end)`` span (chosen by :func:`random_spans` unless given) is
    replaced in the input by the next sentinel; the target is, for each span, its
    sentinel followed by the removed tokens, and finally ``eos_id``. Example:
    "Tom had a red ball." with span "red" gives the input "Tom had a <X> ball."
    and the target "<X> red" + end-of-text.
    """
    ids = _as_long(ids)
    if ids.dim() != 1:
        raise ValueError(f"span_corruption_pair takes one sequence (T,), got shape {tuple(ids.shape)}")
    if spans is None:
        spans = random_spans(ids.numel(), noise_density, mean_span_length, generator)
    spans = sorted((int(a), int(b)) for a, b in spans)
    if len(spans) > len(sentinel_ids):
        raise ValueError(f"{len(spans)} spans need as many sentinel tokens, got {len(sentinel_ids)}")
    previous_end = 0
    for a, b in spans:
        if not (previous_end <= a < b <= ids.numel()):
            raise ValueError(f"spans must be non-empty, sorted, non-overlapping and inside 0..{ids.numel()}, got {spans}")
        previous_end = b
    tokens = ids.tolist()
    inputs, targets, position = [], [], 0
    for sentinel, (a, b) in zip(sentinel_ids, spans):
        inputs += tokens[position:a] + [sentinel]
        targets += [sentinel] + tokens[a:b]
        position = b
    inputs += tokens[position:]
    targets.append(eos_id)
    return torch.tensor(inputs, dtype=torch.long), torch.tensor(targets, dtype=torch.long)


# --------------------------------------------------------------------------- batches
def _windows(stream: torch.Tensor, batch_size: int, seq_len: int, generator: torch.Generator) -> torch.Tensor:
    """``batch_size`` random windows of ``seq_len`` tokens from a 1-D stream, shape (B, T)."""
    _checks.tensor("stream", stream, dims=1)
    batch_size = _checks.positive_int("batch_size", batch_size)
    seq_len = _checks.positive_int("seq_len", seq_len)
    if not isinstance(generator, torch.Generator):
        raise _checks.ArgumentTypeError(f"generator must be a torch.Generator, got {type(generator).__name__}; "
                                        f"pass torch.Generator().manual_seed(seed)")
    if stream.numel() < seq_len + 1:
        raise ValueError(f"need at least seq_len + 1 = {seq_len + 1} tokens, got {stream.numel()}")
    starts = torch.randint(0, stream.numel() - seq_len, (batch_size,), generator=generator)
    return torch.stack([stream[s: s + seq_len] for s in starts.tolist()])


def masked_lm_batch(stream: torch.Tensor, batch_size: int, seq_len: int, generator: torch.Generator,
                    mask_id: int, vocab_size: int, mask_prob: float = 0.15,
                    special_ids: Sequence[int] = ()) -> Batch:
    """Random windows of the stream, masked by :func:`masked_lm_pair`: ``input_ids`` and ``labels``, each (B, T)."""
    windows = _windows(stream, batch_size, seq_len, generator)
    inputs, labels = masked_lm_pair(windows, mask_id, vocab_size, mask_prob,
                                    special_ids=special_ids, generator=generator)
    return {"input_ids": inputs, "labels": labels}


def span_corruption_batch(stream: torch.Tensor, batch_size: int, seq_len: int, generator: torch.Generator,
                          sentinel_ids: Sequence[int], eos_id: int, pad_id: int,
                          noise_density: float | tuple[float, float] = 0.15, mean_span_length: float = 3.0,
                          min_seq_len: int | None = None) -> Batch:
    """Random windows of the stream, corrupted by :func:`span_corruption_pair` and padded.

    Each window has ``seq_len`` tokens, or a length drawn uniformly from
    ``min_seq_len..seq_len`` when that is given: with one fixed length, every
    example would hide the same number of tokens, and a model learns that count
    instead of reading where each span ends. For the same reason ``noise_density``
    may be a range ``(low, high)``, drawn uniformly for each example. Returns ``input_ids`` and
    ``attention_mask`` (B, T_in) and ``labels`` (B, T_out), with ``pad_id`` in the
    inputs and :data:`IGNORE_INDEX` in the labels where padded.
    """
    min_seq_len = seq_len if min_seq_len is None else min_seq_len
    if not 2 <= min_seq_len <= seq_len:
        raise ValueError(f"min_seq_len must be in [2, seq_len={seq_len}], got {min_seq_len}")
    windows = _windows(stream, batch_size, seq_len, generator)
    lengths = torch.randint(min_seq_len, seq_len + 1, (batch_size,), generator=generator).tolist()
    if isinstance(noise_density, (int, float)):
        densities = [float(noise_density)] * batch_size
    else:
        low, high = noise_density
        densities = (low + (high - low) * torch.rand(batch_size, generator=generator)).tolist()
    pairs = [span_corruption_pair(w[:n], sentinel_ids, eos_id, noise_density=d,
                                  mean_span_length=mean_span_length, generator=generator)
             for w, n, d in zip(windows, lengths, densities)]
    t_in, t_out = max(p[0].numel() for p in pairs), max(p[1].numel() for p in pairs)
    inputs = torch.full((batch_size, t_in), pad_id, dtype=torch.long)
    mask = torch.zeros((batch_size, t_in), dtype=torch.long)
    labels = torch.full((batch_size, t_out), IGNORE_INDEX, dtype=torch.long)
    for row, (x, y) in enumerate(pairs):
        inputs[row, : x.numel()], mask[row, : x.numel()], labels[row, : y.numel()] = x, 1, y
    return {"input_ids": inputs, "attention_mask": mask, "labels": labels}


# --------------------------------------------------------------------------- training
BatchFn = Callable[[torch.Tensor, torch.Generator], Batch]


def _to(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device) for k, v in batch.items()}


@torch.no_grad()
def evaluate_objective(model: torch.nn.Module, make_batch: BatchFn, stream: torch.Tensor, n_batches: int,
                       seed: int = 1234) -> float:
    """Mean loss (nats per predicted token) over ``n_batches`` batches drawn with a fixed seed (the same every call)."""
    _checks.model("model", model)
    if not callable(make_batch):
        raise _checks.ArgumentTypeError(f"make_batch must be a function (stream, generator) -> batch dict, "
                                        f"got {type(make_batch).__name__}")
    n_batches = _checks.positive_int("n_batches", n_batches)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    losses = [model(**_to(make_batch(stream, g), device)).loss.item() for _ in range(n_batches)]
    model.train(was_training)
    return sum(losses) / len(losses)


def train_objective(model: torch.nn.Module, make_batch: BatchFn, train_ids: torch.Tensor, val_ids: torch.Tensor,
                    cfg: TrainConfig, device: torch.device | str | None = None, progress: bool = True) -> TrainLog:
    """Train ``model`` in place on batches from ``make_batch(stream, generator)``; return the loss log (nats per token).

    The same loop as :func:`llmlab.train.train_causal_lm` (AdamW, warm-up then
    cosine learning rate, gradient clipping, an evaluation every ``cfg.eval_every``
    steps on fixed held-out batches); the loss is the model's own, computed from the
    batch's ``labels`` (positions holding :data:`IGNORE_INDEX` are skipped).
    """
    _checks.model("model", model)
    device = torch.device(device) if device is not None else best_device()

    def batch_loss(g: torch.Generator) -> tuple[torch.Tensor, int]:
        batch = _to(make_batch(train_ids, g), device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            loss = model(**batch).loss
        n_tokens = int(batch["attention_mask"].sum()) if "attention_mask" in batch else batch["input_ids"].numel()
        return loss, n_tokens

    return train_loop(model, cfg, device, batch_loss,
                      lambda: evaluate_objective(model, make_batch, val_ids, cfg.eval_batches),
                      progress, stop_on_nan=True)
