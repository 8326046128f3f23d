"""Instruction fine-tuning of a chat model on chapter 12's order task, and how it is scored.

- :func:`encode` turns an order message into the token ids the model reads (the chat
  template, with optional demonstrations as earlier turns) and the ids it must write
  (the reference JSON and the end-of-turn token);
- :func:`answer_loss` is the cross-entropy on the answer's tokens only, the prompt's
  positions masked out (labels of -100), optionally after a soft prompt;
- :func:`train` runs AdamW on whatever parameters are left trainable (all of them for
  full fine-tuning, the adapters after :func:`llmlab.lora.add_lora`, or a soft prompt);
- :func:`score` says, for each item, whether the model's greedy reply is exactly the
  reference (every answer token is the model's top token given the ones before it, and
  so is the end-of-turn token) and what log-probability it gives the reference, in one
  forward pass per batch instead of a generation;
- :func:`reply` generates real replies, for reading and for field-by-field scoring;
- :func:`english_nll` is the forgetting probe: the mean loss per token on the book's
  ten passages of everyday English.
"""

from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F

from . import _checks, chat, orders

IGNORE = -100  # label of a position that does not count in the loss


def _check_item(name: str, item) -> dict:
    if not isinstance(item, dict) or not isinstance(item.get("text"), str):
        raise _checks.ArgumentTypeError(
            f"{name} must be an order dict with a 'text' (as orders.load_orders returns), got "
            f"{_checks._shown(item)}")
    return item


def _check_items(name: str, items) -> list[dict]:
    if isinstance(items, dict) or not isinstance(items, (list, tuple)):
        raise _checks.ArgumentTypeError(f"{name} must be a list of order dicts "
                                        f"(orders.load_orders(split)), got {type(items).__name__}")
    for n, item in enumerate(items):
        _check_item(f"{name}[{n}]", item)
    return list(items)


def messages(item: dict, demos: list[dict] = ()) -> list[dict]:
    """The conversation for one item: the instruction, demonstrations as turns, the message."""
    _check_item("item", item)
    _check_items("demos", demos)
    turns = [{"role": "system", "content": orders.SYSTEM}]
    for demo in demos:
        turns += [{"role": "user", "content": demo["text"]},
                  {"role": "assistant", "content": orders.answer(demo)}]
    return turns + [{"role": "user", "content": item["text"]}]


def encode(tokenizer, item: dict, demos: list[dict] = ()) -> tuple[list[int], list[int]]:
    """``(prompt_ids, answer_ids)``: what the model reads, and what it should write.

    The prompt ends with the opening of the assistant's turn; the answer is the
    reference JSON followed by the end-of-turn token, so a model that has learned the
    task also learns to stop.
    """
    _checks.tokenizer("tokenizer", tokenizer)
    prompt = tokenizer.apply_chat_template(messages(item, demos), add_generation_prompt=True,
                                           tokenize=False)
    target = orders.answer(item) + tokenizer.eos_token
    return (tokenizer(prompt, add_special_tokens=False)["input_ids"],
            tokenizer(target, add_special_tokens=False)["input_ids"])


def batch(pairs: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (-100 outside the answers)."""
    if not isinstance(pairs, (list, tuple)) or not pairs or not all(
            isinstance(p, tuple) and len(p) == 2 and p[1] for p in pairs):
        raise ValueError("pairs must be a non-empty list of (prompt_ids, answer_ids) tuples with "
                         "non-empty answers, as encode returns")
    _checks.integer("pad_id", pad_id, low=0)
    width = max(len(p) + len(a) for p, a in pairs)
    ids = torch.full((len(pairs), width), pad_id)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    labels = torch.full((len(pairs), width), IGNORE)
    for row, (p, a) in enumerate(pairs):
        n = len(p) + len(a)
        ids[row, :n] = torch.tensor(p + a)
        mask[row, :n] = 1
        labels[row, len(p):n] = torch.tensor(a)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _logits(model, inputs: dict, soft_prompt=None) -> torch.Tensor:
    """Logits at the real positions; a soft prompt's virtual tokens go in front of them."""
    if soft_prompt is None:
        return model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
    embeds = model.get_input_embeddings()(inputs["input_ids"])
    virtual = soft_prompt()  # (n_virtual, d_model)
    n = virtual.shape[0]
    embeds = torch.cat([virtual.unsqueeze(0).expand(embeds.shape[0], -1, -1), embeds], dim=1)
    mask = torch.cat([inputs["attention_mask"].new_ones(embeds.shape[0], n),
                      inputs["attention_mask"]], dim=1)
    return model(inputs_embeds=embeds, attention_mask=mask).logits[:, n:]


def answer_loss(model, inputs: dict, soft_prompt=None) -> torch.Tensor:
    """Mean cross-entropy (nats per answer token) over the answer positions only."""
    _checks.model("model", model)
    if not isinstance(inputs, dict) or not {"input_ids", "labels"} <= set(inputs):
        raise ValueError("inputs must be the dict batch() returns "
                         "(input_ids, attention_mask, labels)")
    logits = _logits(model, inputs, soft_prompt)[:, :-1]  # (B, T-1, V): t predicts t+1
    labels = inputs["labels"][:, 1:]  # (B, T-1), -100 on the prompt and the padding
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                           ignore_index=IGNORE)


def _pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def train(model, tokenizer, items: list[dict], *, steps: int, batch_size: int, lr: float,
          seed: int, soft_prompt=None, replay: list[tuple[list[int], list[int]]] = (),
          replay_share: float = 0.0, warmup: int = 2) -> dict:
    """AdamW on the trainable parameters for ``steps`` steps of ``batch_size`` examples.

    Items are drawn in a seeded random order (a new permutation each epoch). With
    ``replay`` (encoded pairs of other data) a ``replay_share`` of each batch comes
    from it instead. The rate rises linearly over ``warmup`` steps, then stays.
    Returns ``{"loss": [...], "step_s": [...]}``, one entry per step.
    """
    _checks.model("model", model)
    items = _check_items("items", items)
    if not items:
        raise ValueError("items is empty: pass the training orders")
    _checks.positive_int("steps", steps)
    _checks.positive_int("batch_size", batch_size)
    _checks.positive("lr", lr)
    _checks.non_negative_int("seed", seed)
    if not 0.0 <= replay_share < 1.0 or (replay_share > 0 and not replay):
        raise ValueError(f"replay_share must be in [0, 1) and needs replay data, got {replay_share}")
    owner = soft_prompt if soft_prompt is not None else model
    params = [p for p in owner.parameters() if p.requires_grad]
    if not params:
        raise ValueError("nothing to train: every parameter is frozen")
    pairs = [encode(tokenizer, item) for item in items]
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    n_replay = round(batch_size * replay_share)
    order, replay_order, out = [], [], {"loss": [], "step_s": []}
    model.train()
    for step in range(steps):
        if len(order) < batch_size - n_replay:
            order += torch.randperm(len(pairs), generator=g).tolist()
        if len(replay_order) < n_replay:
            replay_order += torch.randperm(len(replay), generator=g).tolist()
        chosen = [pairs[i] for i in order[:batch_size - n_replay]]
        chosen += [replay[i] for i in replay_order[:n_replay]]
        del order[:batch_size - n_replay], replay_order[:n_replay]
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / max(warmup, 1))
        start = time.perf_counter()
        loss = answer_loss(model, batch(chosen, _pad_id(tokenizer)), soft_prompt)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        out["step_s"].append(time.perf_counter() - start)
        out["loss"].append(loss.item())
    model.eval()
    return out


@torch.no_grad()
def score(model, tokenizer, items: list[dict], demos: list[dict] = (), soft_prompt=None,
          batch_size: int = 16) -> dict[str, list]:
    """Per item: ``exact`` (the greedy reply is the reference, stop token included) and
    ``logprob`` (the reference's log-probability, nats).

    One forward pass per batch: greedy decoding writes the reference exactly when each
    reference token is the top token after the ones before it, so checking every
    position at once gives the same verdict as generating (for the reference's own
    tokenization; tests/test_finetune.py compares with real generation).
    """
    _checks.model("model", model)
    items = _check_items("items", items)
    _checks.positive_int("batch_size", batch_size)
    model.eval()
    exact, logprob = [], []
    pad = _pad_id(tokenizer)
    for start in range(0, len(items), batch_size):
        pairs = [encode(tokenizer, item, demos) for item in items[start:start + batch_size]]
        inputs = batch(pairs, pad)
        logits = _logits(model, inputs, soft_prompt)[:, :-1].float()
        labels = inputs["labels"][:, 1:]
        counted = labels != IGNORE
        logp = torch.log_softmax(logits, dim=-1)
        picked = logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        top = logits.argmax(-1) == labels
        exact += ((top | ~counted).all(dim=1)).tolist()
        logprob += (picked * counted).sum(dim=1).tolist()
    return {"exact": exact, "logprob": logprob}


@torch.no_grad()
def reply(model, tokenizer, items: list[dict], demos: list[dict] = (), max_new_tokens: int = 48,
          batch_size: int = 8) -> list[str]:
    """The model's greedy replies (new text only), generated, left-padded in batches.

    Left padding can move a near tie between two tokens: with ``batch_size=1`` the
    replies are exactly the ones :func:`score` checks.
    """
    _checks.model("model", model)
    items = _check_items("items", items)
    _checks.positive_int("max_new_tokens", max_new_tokens)
    _checks.positive_int("batch_size", batch_size)
    texts = [tokenizer.apply_chat_template(messages(item, demos), add_generation_prompt=True,
                                           tokenize=False) for item in items]
    model.eval()
    return chat._greedy(model, tokenizer, texts, max_new_tokens, batch_size,
                        add_special_tokens=False)


@torch.no_grad()
def english_nll(model, tokenizer) -> list[float]:
    """Mean loss (nats per token) on each of the book's ten English passages (chapter 6's)."""
    from . import domain

    _checks.model("model", model)
    _checks.tokenizer("tokenizer", tokenizer)
    model.eval()
    out = []
    for text in domain.english_passages():
        ids = torch.tensor([tokenizer(text)["input_ids"]])
        out.append(model(input_ids=ids, labels=ids).loss.item())
    return out


def fresh_copy(model):
    """A deep copy of ``model`` to fine-tune, leaving the original untouched."""
    _checks.model("model", model)
    clone = copy.deepcopy(model)
    for p in clone.parameters():
        p.requires_grad_(True)
    return clone
