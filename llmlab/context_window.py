"""What a context window does to a prompt and to a model's predictions (chapter 1).

- :func:`fit_to_context` makes a prompt fit a context window, the way serving code
  does: keep the end (or the start) and drop the rest, leaving room for the tokens
  still to be generated.
- :func:`loss_by_context_length` measures what a model loses when the beginning of a
  text falls out of its window.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import _checks

KEEP_CHOICES = ("end", "start")


def _check_window(context_window: int, max_new_tokens: int) -> None:
    if isinstance(context_window, bool) or not isinstance(context_window, int) or context_window < 1:
        raise (ValueError if isinstance(context_window, int) and not isinstance(context_window, bool)
               else _checks.ArgumentTypeError)(f"context_window must be an integer >= 1 (tokens), got {context_window!r}")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise (ValueError if isinstance(max_new_tokens, int) and not isinstance(max_new_tokens, bool)
               else _checks.ArgumentTypeError)(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    if max_new_tokens >= context_window:
        raise ValueError(f"max_new_tokens ({max_new_tokens}) must be smaller than the context window "
                         f"({context_window}), to leave at least one token of prompt")


def fit_to_context(token_ids: list[int] | torch.Tensor, context_window: int, max_new_tokens: int = 0,
                   keep: str = "end") -> tuple[list[int], int]:
    """Cut a prompt so that it plus ``max_new_tokens`` fits in ``context_window`` tokens.

    ``keep="end"`` keeps the most recent tokens (what chat systems do with a long
    conversation); ``keep="start"`` keeps the beginning (what a tokenizer's
    ``truncation=True`` does by default). Returns the kept ids and how many
    tokens were dropped.
    """
    _check_window(context_window, max_new_tokens)
    if keep not in KEEP_CHOICES:
        raise ValueError(f"keep must be one of {KEEP_CHOICES}, got {keep!r}")
    if isinstance(token_ids, torch.Tensor):
        if token_ids.dim() != 1:
            raise ValueError(f"token_ids must be 1-D (one prompt), got shape {tuple(token_ids.shape)}")
        token_ids = token_ids.tolist()
    if isinstance(token_ids, (str, bytes)):
        raise _checks.ArgumentTypeError(f"token_ids must be a list of int token ids, got the str {token_ids!r}; "
                                        f"encode it first: tokenizer({token_ids!r})['input_ids']")
    if not isinstance(token_ids, (list, tuple)):
        raise _checks.ArgumentTypeError(f"token_ids must be a list of int token ids or a 1-D tensor, "
                                        f"got {type(token_ids).__name__}")
    for t in token_ids:
        _checks.non_negative_int("token_ids (each id)", t)
    ids = list(token_ids)
    budget = context_window - max_new_tokens
    dropped = max(0, len(ids) - budget)
    kept = ids[dropped:] if keep == "end" else ids[:budget]
    return kept, dropped


@torch.no_grad()
def loss_by_context_length(model: torch.nn.Module, stories_ids: list[list[int]], target_len: int,
                           context_lengths: list[int], start_id: int) -> dict[int, float]:
    """Mean loss (nats per token) on each story's last ``target_len`` tokens, when only the
    ``k`` tokens just before them are in the window, for each ``k`` in ``context_lengths``.

    Every window starts with ``start_id`` (the end-of-text token that precedes a
    story in training), so ``k = 0`` means "no context at all". Stories shorter
    than ``target_len + max(context_lengths)`` tokens are skipped, so every
    ``k`` scores the same targets.
    """
    _checks.model("model", model)
    if isinstance(target_len, bool) or not isinstance(target_len, int) or target_len < 1:
        raise ValueError(f"target_len must be an integer >= 1, got {target_len!r}")
    if not context_lengths or any(isinstance(k, bool) or not isinstance(k, int) or k < 0 for k in context_lengths):
        raise ValueError(f"context_lengths must be a non-empty list of integers >= 0, got {context_lengths!r}")
    window = _checks.context_window(model)
    if window is not None and 1 + max(context_lengths) + target_len > window:
        raise ValueError(f"1 + max(context_lengths) + target_len = {1 + max(context_lengths) + target_len} "
                         f"exceeds the model's context window ({window})")
    usable = [s for s in stories_ids if len(s) >= target_len + max(context_lengths)]
    if not usable:
        raise ValueError(f"no story has target_len + max(context_lengths) = {target_len + max(context_lengths)} tokens")
    device = next(model.parameters()).device
    out = {}
    for k in context_lengths:
        rows = torch.tensor([[start_id] + s[len(s) - target_len - k:] for s in usable], device=device)  # (N, 1+k+T)
        logits = model(input_ids=rows[:, :-1]).logits[:, -target_len:].float()  # (N, T, V)
        out[k] = F.cross_entropy(logits.flatten(0, 1), rows[:, -target_len:].flatten()).item()
    return out
