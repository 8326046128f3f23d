"""Talking to a model: prompts through a chat template, batched, and completed greedily (chapters 1, 4, 5, 10).

An instruction-tuned model was trained on conversations wrapped in special tokens; it
answers well only when a prompt is wrapped the same way.

- :func:`chat_text` gives the text the model reads for one user message;
- :func:`chat_batch` a left-padded batch of them, ready for
  :func:`llmlab.sampling.generate` or ``model.generate``;
- :func:`chat_complete` a chat model's greedy answers to user messages;
- :func:`plain_complete` a base model's greedy continuations of plain-text prompts,
  which go in as written, without a template.
"""
from __future__ import annotations

import torch

from . import _checks


def chat_text(tokenizer, prompt: str, system: str | None = None) -> str:
    """The text a chat model actually reads for one user message: its chat template applied.

    The template wraps each turn in the model's special tokens and, for SmolLM2, inserts
    a default system prompt when ``system`` is None. It ends with the opening of the
    assistant's turn (``add_generation_prompt=True``), so the model writes the answer.
    """
    _checks.tokenizer("tokenizer", tokenizer)
    _checks.string("prompt", prompt, allow_empty=False)
    if system is not None:
        _checks.string("system", system)
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError("this tokenizer has no chat template (a base model such as stories-1m); "
                         "pass the prompt as plain text instead")
    messages = ([{"role": "system", "content": system}] if system is not None else [])
    messages.append({"role": "user", "content": prompt})
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def chat_batch(tokenizer, requests: list[str], system: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """User requests through the tokenizer's chat template, left-padded into one batch:
    ``(input_ids, attention_mask)``, both ``(B, T)``.

    Left padding puts every prompt's last token in the last column, so one generation
    call continues all of them; the attention mask tells the model to ignore the padding.
    The tokenizer's own ``padding_side`` is left as it was.
    """
    requests = _checks.strings("requests", requests)
    _checks.tokenizer("tokenizer", tokenizer)
    texts = [chat_text(tokenizer, r, system) for r in requests]
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = side
    return enc["input_ids"], enc["attention_mask"]


def _check_generation(max_new_tokens: int, batch_size: int) -> None:
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be an integer >= 1, got {max_new_tokens!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")


@torch.no_grad()
def _greedy(model: torch.nn.Module, tokenizer, texts: list[str], max_new_tokens: int, batch_size: int,
            add_special_tokens: bool) -> list[str]:
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    answers = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start:start + batch_size], padding=True, padding_side="left",
                          add_special_tokens=add_special_tokens, return_tensors="pt").to(device)
        out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                             eos_token_id=tokenizer.eos_token_id, pad_token_id=pad)
        new = out[:, batch["input_ids"].size(1):]  # (B, <= max_new_tokens)
        answers += [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
    return answers


def chat_complete(model: torch.nn.Module, tokenizer, prompts: list[str], max_new_tokens: int = 48,
                  system: str | None = None, batch_size: int = 32) -> list[str]:
    """Greedy answers of a chat model to each user message in ``prompts`` (new text only).

    The prompts go through the chat template (:func:`chat_text`), left-padded, into
    ``model.generate``, ``batch_size`` at a time; each answer stops at the model's
    end-of-turn token or after ``max_new_tokens`` tokens, and is returned without
    special tokens or surrounding whitespace.
    """
    _checks.model("model", model)
    _check_generation(max_new_tokens, batch_size)
    prompts = _checks.strings("prompts", prompts)
    texts = [chat_text(tokenizer, p, system) for p in prompts]
    return _greedy(model, tokenizer, texts, max_new_tokens, batch_size, add_special_tokens=False)


def plain_complete(model: torch.nn.Module, tokenizer, prompts: list[str], max_new_tokens: int = 20,
                   batch_size: int = 32) -> list[str]:
    """Greedy continuations of plain-text prompts (no chat template), the way a base model is used:
    left-padded, ``batch_size`` at a time, with the tokenizer's own special tokens added; each stops
    at the end-of-text token or after ``max_new_tokens`` tokens, returned without surrounding whitespace."""
    _checks.model("model", model)
    _check_generation(max_new_tokens, batch_size)
    prompts = _checks.strings("prompts", prompts)
    for p in prompts:
        _checks.string("prompts (each prompt)", p, allow_empty=False)
    _checks.tokenizer("tokenizer", tokenizer)
    return _greedy(model, tokenizer, prompts, max_new_tokens, batch_size, add_special_tokens=True)
