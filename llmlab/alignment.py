"""Aligning a chat model with preferences (chapter 13): a reward model, DPO and GRPO from scratch.

The three objectives, each a few lines, under the names the book's checks use:

- :func:`bradley_terry_loss`: a reward model learns from pairs: the mean of
  ``-log sigmoid(r_chosen - r_rejected)`` (the Bradley-Terry model of a preference, as
  InstructGPT, Ouyang et al. 2022, trains its reward model);
- :func:`dpo_loss`: Direct Preference Optimization (Rafailov et al. 2023) trains the
  policy on the same pairs without a reward model: the mean of
  ``-log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r)))``, each term a response's
  log-probability summed over its tokens (:func:`sequence_logps`);
- :func:`grpo_advantages` and :func:`grpo_loss`: Group Relative Policy Optimization
  (Shao et al. 2024) samples several answers per prompt, scores each with a reward,
  and pushes up the answers that beat their group's mean, with a clipped probability
  ratio and a KL penalty to the reference model; no value network.

Around them, what a run needs: :class:`RewardModel` (the chat model's decoder with a
scalar head), :func:`train_reward_model`, :func:`train_dpo`, :func:`sample_groups` and
:func:`train_grpo`. The policy trains through LoRA adapters (``llmlab.lora``), so the
reference model is the same weights with the adapters switched off
(:func:`llmlab.lora.disabled`) and no second copy is kept.

The tests check the losses against TRL's ``RewardTrainer``, ``DPOTrainer`` and
``GRPOTrainer`` on the same inputs (``tests/test_alignment.py``).
"""

from __future__ import annotations

import random
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from . import _checks, chat, lora

GRPO_EPSILON = 1e-4  # added to a group's standard deviation (TRL's value) so a tie divides safely


# ------------------------------------------------------------------ the three losses

def _vector(name: str, value) -> torch.Tensor:
    value = _checks.tensor(name, value)
    if value.dim() != 1 or value.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-D tensor (one value per pair), "
                         f"got shape {tuple(value.shape)}")
    return value


def _same_shape(**tensors) -> None:
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"the inputs must have one shape, got {shapes}")


def bradley_terry_loss(reward_chosen: torch.Tensor, reward_rejected: torch.Tensor) -> torch.Tensor:
    """Mean of ``-log sigmoid(r_c - r_r)``: the loss of a reward model on a batch of pairs.

    Under the Bradley-Terry model the probability that the chosen answer is preferred
    is ``sigmoid(r_c - r_r)``; the loss is that probability's negative log, so only the
    difference of the two rewards matters, never their level.
    """
    rc, rr = _vector("reward_chosen", reward_chosen), _vector("reward_rejected", reward_rejected)
    _same_shape(reward_chosen=rc, reward_rejected=rr)
    return -F.logsigmoid(rc - rr).mean()


def dpo_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
             ref_chosen_logps: torch.Tensor, ref_rejected_logps: torch.Tensor,
             beta: float) -> torch.Tensor:
    """DPO's loss, the mean over the batch of ``-log sigmoid(beta * (h_c - h_r))``.

    ``h = log pi(y|x) - log pi_ref(y|x)`` for the chosen and the rejected response, each
    log-probability summed over the response's tokens. ``beta * h`` is the *implicit
    reward* (Rafailov et al. 2023, eq. 5); a small ``beta`` lets the policy move far from
    the reference before the loss stops pushing, a large one keeps it close.
    """
    tensors = {"policy_chosen_logps": policy_chosen_logps,
               "policy_rejected_logps": policy_rejected_logps,
               "ref_chosen_logps": ref_chosen_logps, "ref_rejected_logps": ref_rejected_logps}
    tensors = {name: _vector(name, t) for name, t in tensors.items()}
    _same_shape(**tensors)
    beta = _checks.positive("beta", beta)
    h_c = tensors["policy_chosen_logps"] - tensors["ref_chosen_logps"]
    h_r = tensors["policy_rejected_logps"] - tensors["ref_rejected_logps"]
    return -F.logsigmoid(beta * (h_c - h_r)).mean()


def grpo_advantages(rewards: torch.Tensor, group_size: int,
                    epsilon: float = GRPO_EPSILON) -> torch.Tensor:
    """Each reward minus its group's mean, divided by the group's standard deviation plus ``epsilon``.

    ``rewards`` holds ``group_size`` consecutive samples per prompt. The standard
    deviation is the sample one (Bessel's n - 1), as TRL computes it. A group whose
    samples all score the same gets advantages of zero: it teaches nothing.
    """
    rewards = _vector("rewards", rewards).float()
    group_size = _checks.integer("group_size", group_size, low=2)
    epsilon = _checks.positive("epsilon", epsilon)
    if rewards.numel() % group_size:
        raise ValueError(f"rewards has {rewards.numel()} values, not a whole number of groups "
                         f"of group_size={group_size}")
    groups = rewards.view(-1, group_size)
    mean = groups.mean(dim=1, keepdim=True)
    std = groups.std(dim=1, keepdim=True)  # unbiased
    return ((groups - mean) / (std + epsilon)).reshape(-1)


def grpo_loss(logps: torch.Tensor, old_logps: torch.Tensor, ref_logps: torch.Tensor,
              mask: torch.Tensor, advantages: torch.Tensor, epsilon: float = 0.2,
              beta: float = 0.04) -> torch.Tensor:
    """GRPO's loss on per-token log-probabilities ``(B, T)`` of ``B`` sampled completions.

    Per token: ``-min(ratio * A, clip(ratio, 1 - epsilon, 1 + epsilon) * A) + beta * KL``
    with ``ratio = exp(logps - old_logps)`` (the policy now against the one that
    sampled), ``A`` the completion's advantage, and the KL to the reference estimated
    per token as ``exp(ref - logps) - (ref - logps) - 1`` (Shao et al. 2024, eq. 4:
    never negative, zero when the two agree). Averaged over each completion's own
    tokens (``mask``), then over completions.
    """
    logps = _checks.tensor("logps", logps, dims=2)
    old_logps = _checks.tensor("old_logps", old_logps, dims=2)
    ref_logps = _checks.tensor("ref_logps", ref_logps, dims=2)
    mask = _checks.tensor("mask", mask, dims=2)
    _same_shape(logps=logps, old_logps=old_logps, ref_logps=ref_logps, mask=mask)
    advantages = _vector("advantages", advantages)
    if advantages.numel() != logps.size(0):
        raise ValueError(f"advantages has {advantages.numel()} values for {logps.size(0)} completions")
    epsilon = _checks.number("epsilon", epsilon, low=0.0)
    beta = _checks.non_negative("beta", beta)
    mask = mask.to(logps.dtype)
    if (mask.sum(dim=1) == 0).any():
        raise ValueError("every completion needs at least one token in mask")
    a = advantages.to(logps.dtype).unsqueeze(1)
    ratio = torch.exp(logps - old_logps)
    per_token = -torch.min(ratio * a, ratio.clamp(1 - epsilon, 1 + epsilon) * a)
    if beta:
        diff = ref_logps - logps
        per_token = per_token + beta * (torch.exp(diff) - diff - 1)
    return ((per_token * mask).sum(dim=1) / mask.sum(dim=1)).mean()


# ------------------------------------------------------------------ responses as tokens

def encode(tokenizer, prompts: list[str], responses: list[str]) -> list[tuple[list[int], list[int]]]:
    """``(prompt_ids, response_ids)`` per pair: the chat template's prompt, then the response
    and the end-of-turn token, tokenized apart (as TRL does) so the boundary is the same
    whatever the response."""
    _checks.tokenizer("tokenizer", tokenizer)
    prompts = _checks.strings("prompts", prompts)
    responses = _checks.strings("responses", responses)
    if len(prompts) != len(responses):
        raise ValueError(f"prompts and responses must pair up, got {len(prompts)} and {len(responses)}")
    out = []
    for p, r in zip(prompts, responses):
        prompt_ids = tokenizer(chat.chat_text(tokenizer, p), add_special_tokens=False)["input_ids"]
        response_ids = tokenizer(r + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        out.append((prompt_ids, response_ids))
    return out


def _pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def _right_pad(pairs, pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``input_ids``, ``attention_mask`` and ``response_mask`` (1 where a response token is), right-padded."""
    width = max(len(p) + len(r) for p, r in pairs)
    ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(pairs), width), dtype=torch.long)
    resp = torch.zeros((len(pairs), width), dtype=torch.long)
    for i, (p, r) in enumerate(pairs):
        ids[i, :len(p) + len(r)] = torch.tensor(p + r)
        attn[i, :len(p) + len(r)] = 1
        resp[i, len(p):len(p) + len(r)] = 1
    return ids.to(device), attn.to(device), resp.to(device)


def _token_logps(model, ids: torch.Tensor, attn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of every token given those before it ``(B, T-1)``, and the log-softmax rows."""
    logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1].float()
    logprobs = logits.log_softmax(dim=-1)
    return logprobs.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1), logprobs


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _padded_batches(model, tokenizer, prompts: list[str], responses: list[str], batch_size: int):
    """The pairs encoded and right-padded, ``batch_size`` at a time, on the model's device."""
    _checks.model("model", model)
    batch_size = _checks.positive_int("batch_size", batch_size)
    pairs = encode(tokenizer, prompts, responses)
    for start in range(0, len(pairs), batch_size):
        yield _right_pad(pairs[start:start + batch_size], _pad_id(tokenizer), _device(model))


def sequence_logps(model, tokenizer, prompts: list[str], responses: list[str],
                   batch_size: int = 16) -> torch.Tensor:
    """``log pi(response | prompt)`` for each pair: the response's token log-probabilities summed
    (its end-of-turn token included), ``(N,)``. Differentiable when gradients are on."""
    out = []
    for ids, attn, resp in _padded_batches(model, tokenizer, prompts, responses, batch_size):
        token, _ = _token_logps(model, ids, attn)
        out.append((token * resp[:, 1:]).sum(dim=1))
    return torch.cat(out)


@torch.no_grad()
def response_kl(model, tokenizer, prompts: list[str], responses: list[str],
                batch_size: int = 16) -> torch.Tensor:
    """KL(policy || reference) summed over each response's positions, ``(N,)``, exactly.

    At every position of the given response the policy's next-token distribution is
    compared with the reference's (the same model with its LoRA adapters off) over the
    whole vocabulary, and the divergences are summed over the response. It measures
    how far training has moved the model on fixed text, without sampling.
    """
    out = []
    for ids, attn, resp in _padded_batches(model, tokenizer, prompts, responses, batch_size):
        _, policy = _token_logps(model, ids, attn)
        with lora.disabled(model):
            _, ref = _token_logps(model, ids, attn)
        # the distribution at position t predicts token t + 1: keep the rows that predict a response token
        kl = (policy.exp() * (policy - ref)).sum(dim=-1)
        out.append((kl * resp[:, 1:]).sum(dim=1))
    return torch.cat(out)


# ------------------------------------------------------------------ the reward model

class RewardModel(nn.Module):
    """A chat model's decoder with a scalar head: one number per (prompt, response).

    The head reads the final hidden state at the response's last token (the
    end-of-turn token), as transformers' ``LlamaForSequenceClassification`` does at
    the last non-padding token. ``causal_lm`` is used, not copied: give it a copy of
    its own (add LoRA to it first, or after, as you like).
    """

    def __init__(self, causal_lm: nn.Module, seed: int = 0) -> None:
        super().__init__()
        _checks.model("causal_lm", causal_lm)
        body = getattr(causal_lm, "model", None)
        hidden = getattr(getattr(causal_lm, "config", None), "hidden_size", None)
        if body is None or not isinstance(hidden, int):
            raise ValueError("causal_lm must be a transformers causal language model with "
                             ".model (the decoder) and config.hidden_size, such as SmolLM2")
        self.body = body
        self.head = nn.Linear(hidden, 1, bias=False)
        generator = torch.Generator().manual_seed(_checks.integer("seed", seed))
        with torch.no_grad():
            self.head.weight.copy_(torch.randn(1, hidden, generator=generator) * 0.02)
        self.head.to(device=_device(body), dtype=next(body.parameters()).dtype)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        last = attention_mask.sum(dim=1) - 1  # right padding: the last real token
        return self.head(hidden[torch.arange(hidden.size(0), device=hidden.device), last]).squeeze(-1).float()


def reward_scores(reward_model: RewardModel, tokenizer, prompts: list[str], responses: list[str],
                  batch_size: int = 32) -> torch.Tensor:
    """The reward model's score of each (prompt, response), ``(N,)``."""
    if not isinstance(reward_model, RewardModel):
        raise TypeError(f"reward_model must be an alignment.RewardModel, got {type(reward_model).__name__}")
    with torch.no_grad():
        return torch.cat([reward_model(ids, attn) for ids, attn, _ in
                          _padded_batches(reward_model, tokenizer, prompts, responses, batch_size)])


def _check_pairs(pairs) -> list[dict]:
    if isinstance(pairs, dict) or not isinstance(pairs, (list, tuple)) or not pairs:
        raise TypeError("pairs must be a non-empty list of dicts with 'prompt', 'chosen' and "
                        "'rejected' (preferences.load_pairs(split))")
    for n, pair in enumerate(pairs):
        if not isinstance(pair, dict) or not all(isinstance(pair.get(k), str)
                                                 for k in ("prompt", "chosen", "rejected")):
            raise TypeError(f"pairs[{n}] must be a dict with string 'prompt', 'chosen' and "
                            f"'rejected', got {_checks._shown(pair)}")
    return list(pairs)


def _batches(n_items: int, steps: int, batch_size: int, seed: int):
    """Indices of ``steps`` batches: shuffled passes over the items, a new order each pass."""
    rng = random.Random(seed)
    order: list[int] = []
    for _ in range(steps):
        while len(order) < batch_size:
            more = list(range(n_items))
            rng.shuffle(more)
            order += more
        yield order[:batch_size]
        order = order[batch_size:]


def _trainable(model) -> list[nn.Parameter]:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has nothing to train: add LoRA adapters (lora.add_lora) first")
    return params


def _probed(row: dict, model, step: int, steps: int, on_step, every: int) -> dict:
    """``row`` with ``on_step(step, model)``'s dict merged in every ``every`` steps and after the last."""
    if on_step is not None and ((every and step % every == 0) or step == steps):
        model.eval()
        row.update(on_step(step, model))
    return row


def _train_args(steps, batch_size, lr, seed) -> tuple[int, int, float, int]:
    return (_checks.positive_int("steps", steps), _checks.positive_int("batch_size", batch_size),
            _checks.positive("lr", lr), _checks.integer("seed", seed))


def train_reward_model(reward_model: RewardModel, tokenizer, pairs: list[dict], *, steps: int,
                       batch_size: int, lr: float, seed: int = 0) -> list[dict]:
    """AdamW on the reward model's trainable parameters with :func:`bradley_terry_loss`.

    Returns one row per step: ``loss``, ``accuracy`` (the share of the batch's pairs
    where the chosen answer scores higher) and ``margin`` (mean ``r_c - r_r``).
    """
    if not isinstance(reward_model, RewardModel):
        raise TypeError(f"reward_model must be an alignment.RewardModel, got {type(reward_model).__name__}")
    pairs = _check_pairs(pairs)
    steps, batch_size, lr, seed = _train_args(steps, batch_size, lr, seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(_trainable(reward_model), lr=lr, weight_decay=0.0)
    reward_model.train()
    history = []
    for idx in _batches(len(pairs), steps, batch_size, seed):
        chosen = encode(tokenizer, [pairs[i]["prompt"] for i in idx], [pairs[i]["chosen"] for i in idx])
        rejected = encode(tokenizer, [pairs[i]["prompt"] for i in idx], [pairs[i]["rejected"] for i in idx])
        ids, attn, _ = _right_pad(chosen + rejected, _pad_id(tokenizer), _device(reward_model))
        rc, rr = reward_model(ids, attn).chunk(2)
        loss = bradley_terry_loss(rc, rr)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append({"loss": loss.item(), "accuracy": (rc > rr).float().mean().item(),
                        "margin": (rc - rr).mean().item()})
    reward_model.eval()
    return history


# ------------------------------------------------------------------ DPO

def reference_logps(model, tokenizer, pairs: list[dict], batch_size: int = 16
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference model's ``(chosen, rejected)`` log-probabilities for every pair, computed once.

    With adapters on the model, they are switched off for this; without any, the model
    as it is now is the reference.
    """
    pairs = _check_pairs(pairs)
    prompts = [p["prompt"] for p in pairs]
    with torch.no_grad():
        if lora.lora_layers(model):
            with lora.disabled(model):
                c = sequence_logps(model, tokenizer, prompts, [p["chosen"] for p in pairs], batch_size)
                r = sequence_logps(model, tokenizer, prompts, [p["rejected"] for p in pairs], batch_size)
        else:
            c = sequence_logps(model, tokenizer, prompts, [p["chosen"] for p in pairs], batch_size)
            r = sequence_logps(model, tokenizer, prompts, [p["rejected"] for p in pairs], batch_size)
    return c, r


def train_dpo(model, tokenizer, pairs: list[dict], *, beta: float, steps: int, batch_size: int,
              lr: float, seed: int = 0, reference: tuple[torch.Tensor, torch.Tensor] | None = None,
              on_step: Callable[[int, nn.Module], dict] | None = None, every: int = 0) -> list[dict]:
    """DPO with AdamW on the model's trainable parameters (its LoRA adapters).

    The reference log-probabilities come from the same model with the adapters off,
    batch by batch (or, without adapters, from the model before the first step); when
    several runs share them, pass them once as ``reference``, the ``(chosen, rejected)``
    of :func:`reference_logps` for these pairs. Returns one row per step: ``loss``,
    ``reward_accuracy`` (share of the batch where the chosen answer's implicit reward
    beats the rejected one's), ``margin`` (mean difference of the implicit rewards),
    ``chosen_reward`` and ``rejected_reward``; every ``every`` steps (and after the
    last) ``on_step(step, model)``'s dict is merged into the row.
    """
    _checks.model("model", model)
    pairs = _check_pairs(pairs)
    beta = _checks.positive("beta", beta)
    steps, batch_size, lr, seed = _train_args(steps, batch_size, lr, seed)
    every = _checks.non_negative_int("every", every)
    params = _trainable(model)
    adapters = bool(lora.lora_layers(model))
    if reference is None and not adapters:  # full fine-tuning: the reference is the model now
        reference = reference_logps(model, tokenizer, pairs)
    if reference is not None:
        ref_c, ref_r = (_vector("reference", t) for t in reference)
        if ref_c.numel() != len(pairs) or ref_r.numel() != len(pairs):
            raise ValueError(f"reference must hold one chosen and one rejected log-probability per "
                             f"pair ({len(pairs)}), got {ref_c.numel()} and {ref_r.numel()}")
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    history = []
    for step, idx in enumerate(_batches(len(pairs), steps, batch_size, seed), start=1):
        model.train()
        prompts = [pairs[i]["prompt"] for i in idx]
        both = sequence_logps(model, tokenizer, prompts + prompts,
                              [pairs[i]["chosen"] for i in idx] + [pairs[i]["rejected"] for i in idx],
                              batch_size=2 * len(idx))
        pc, pr = both.chunk(2)
        if reference is not None:
            rc, rr = ref_c[idx], ref_r[idx]
        else:  # with adapters, the reference is the same model with them off, batch by batch
            with torch.no_grad(), lora.disabled(model):
                rc, rr = sequence_logps(model, tokenizer, prompts + prompts,
                                        [pairs[i]["chosen"] for i in idx]
                                        + [pairs[i]["rejected"] for i in idx],
                                        batch_size=2 * len(idx)).chunk(2)
        loss = dpo_loss(pc, pr, rc, rr, beta)
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            chosen_reward, rejected_reward = beta * (pc - rc), beta * (pr - rr)
        row = {"step": step, "loss": loss.item(),
               "reward_accuracy": (chosen_reward > rejected_reward).float().mean().item(),
               "margin": (chosen_reward - rejected_reward).mean().item(),
               "chosen_reward": chosen_reward.mean().item(),
               "rejected_reward": rejected_reward.mean().item()}
        history.append(_probed(row, model, step, steps, on_step, every))
    model.eval()
    return history


@torch.no_grad()
def preference_eval(model, tokenizer, pairs: list[dict], beta: float,
                    reference: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, list]:
    """Per held-out pair: the implicit rewards ``beta * (log pi - log pi_ref)`` of both answers,
    whether the chosen one's is higher, and whether the policy itself gives the chosen
    answer more probability than the rejected one."""
    pairs = _check_pairs(pairs)
    beta = _checks.positive("beta", beta)
    ref_c, ref_r = reference if reference is not None else reference_logps(model, tokenizer, pairs)
    prompts = [p["prompt"] for p in pairs]
    pc = sequence_logps(model, tokenizer, prompts, [p["chosen"] for p in pairs])
    pr = sequence_logps(model, tokenizer, prompts, [p["rejected"] for p in pairs])
    chosen, rejected = beta * (pc - ref_c), beta * (pr - ref_r)
    return {"chosen_reward": chosen.tolist(), "rejected_reward": rejected.tolist(),
            "reward_correct": (chosen > rejected).tolist(),
            "policy_prefers_chosen": (pc > pr).tolist()}


# ------------------------------------------------------------------ GRPO

@torch.no_grad()
def sample_groups(model, tokenizer, prompts: list[str], group_size: int, max_new_tokens: int,
                  temperature: float = 1.0, seed: int = 0) -> dict:
    """``group_size`` sampled answers to each prompt (plain sampling at ``temperature``).

    Returns ``prompt_ids`` and ``prompt_mask`` (left-padded, each prompt repeated
    ``group_size`` times), ``completion_ids`` and ``completion_mask`` (1 up to and
    including the end-of-turn token, 0 after), and ``texts``, the answers decoded.
    """
    _checks.model("model", model)
    prompts = _checks.strings("prompts", prompts)
    group_size = _checks.positive_int("group_size", group_size)
    max_new_tokens = _checks.positive_int("max_new_tokens", max_new_tokens)
    temperature = _checks.positive("temperature", temperature)
    ids, mask = chat.chat_batch(tokenizer, prompts)
    ids = ids.repeat_interleave(group_size, dim=0).to(_device(model))
    mask = mask.repeat_interleave(group_size, dim=0).to(_device(model))
    torch.manual_seed(_checks.integer("seed", seed))
    out = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=temperature,
                         top_k=0, top_p=1.0, max_new_tokens=max_new_tokens,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=_pad_id(tokenizer))
    completion = out[:, ids.size(1):]
    is_eos = completion == tokenizer.eos_token_id
    # 1 up to and including the first end-of-turn token
    after = (is_eos.cumsum(dim=1) - is_eos.long()) > 0
    completion_mask = (~after).long()
    texts = [tokenizer.decode(c[m.bool()], skip_special_tokens=True).strip()
             for c, m in zip(completion, completion_mask)]
    return {"prompt_ids": ids, "prompt_mask": mask, "completion_ids": completion,
            "completion_mask": completion_mask, "texts": texts}


def completion_logps(model, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                     completion_ids: torch.Tensor, completion_mask: torch.Tensor,
                     temperature: float = 1.0) -> torch.Tensor:
    """Per-token log-probabilities of the completions ``(B, C)`` (the prompt left-padded).

    The logits are divided by ``temperature`` first, as in sampling: the policy being
    trained is the one that sampled (TRL's GRPO does the same).
    """
    temperature = _checks.positive("temperature", temperature)
    _checks.model("model", model)
    names = ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask")
    tensors = [_checks.tensor(n, t, dims=2) for n, t in zip(names, (prompt_ids, prompt_mask, completion_ids,
                                                                   completion_mask))]
    _same_shape(prompt_ids=tensors[0], prompt_mask=tensors[1])
    _same_shape(completion_ids=tensors[2], completion_mask=tensors[3])
    if prompt_ids.size(0) != completion_ids.size(0):
        raise ValueError(f"prompt_ids has {prompt_ids.size(0)} rows and completion_ids {completion_ids.size(0)}")
    ids = torch.cat([prompt_ids, completion_ids], dim=1)
    attn = torch.cat([prompt_mask, completion_mask], dim=1)
    positions = (attn.cumsum(dim=1) - 1).clamp(min=0)  # as generate numbers left-padded tokens
    logits = model(input_ids=ids, attention_mask=attn, position_ids=positions).logits
    logits = logits[:, prompt_ids.size(1) - 1:-1].float() / temperature
    return logits.log_softmax(dim=-1).gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)


MICRO_BATCH = 8  # completions per forward-backward pass in train_grpo


def train_grpo(model, tokenizer, items: list[dict], reward: Callable[[dict, str], float], *,
               steps: int, prompts_per_step: int, group_size: int, lr: float, beta: float = 0.04,
               epsilon: float = 0.2, max_new_tokens: int = 20, temperature: float = 1.0,
               seed: int = 0, on_step: Callable[[int, nn.Module], dict] | None = None,
               every: int = 0) -> list[dict]:
    """GRPO with AdamW on the model's LoRA adapters, one gradient step per sampled batch.

    Each step draws ``prompts_per_step`` items, samples ``group_size`` answers to each
    (:func:`sample_groups`), scores them with ``reward(item, text)``, turns the rewards
    into :func:`grpo_advantages` and takes one step on :func:`grpo_loss` (the sampling
    policy is the current one, so the ratio starts at 1; its gradient is the policy
    gradient). Returns one row per step: ``reward`` (mean), ``length`` (mean completion
    tokens), ``kl`` (mean per-token estimate), ``loss``, ``groups_with_signal`` (share of
    groups whose rewards differ) and, every ``every`` steps and after the last,
    ``on_step(step, model)``'s dict.
    """
    _checks.model("model", model)
    if isinstance(items, dict) or not isinstance(items, (list, tuple)) or not items or not all(
            isinstance(i, dict) and isinstance(i.get("prompt"), str) for i in items):
        raise TypeError("items must be a non-empty list of dicts with a 'prompt' "
                        "(preferences.load_sums(split))")
    if not callable(reward):
        raise TypeError(f"reward must be a function (item, text) -> float, got {type(reward).__name__}")
    steps, prompts_per_step, lr, seed = _train_args(steps, prompts_per_step, lr, seed)
    group_size = _checks.integer("group_size", group_size, low=2)
    beta = _checks.non_negative("beta", beta)
    every = _checks.non_negative_int("every", every)
    if not lora.lora_layers(model):
        raise ValueError("train_grpo keeps the reference as the model with its adapters off: "
                         "add LoRA adapters (lora.add_lora) first")
    params = _trainable(model)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    history = []
    for step, idx in enumerate(_batches(len(items), steps, prompts_per_step, seed), start=1):
        model.eval()
        batch = sample_groups(model, tokenizer, [items[i]["prompt"] for i in idx], group_size,
                              max_new_tokens, temperature, seed=seed * 100_003 + step)
        texts = batch["texts"]
        rewards = torch.tensor([float(reward(items[i], t))
                                for n, i in enumerate(idx) for t in texts[n * group_size:(n + 1) * group_size]])
        advantages = grpo_advantages(rewards, group_size)
        args = (batch["prompt_ids"], batch["prompt_mask"], batch["completion_ids"], batch["completion_mask"])
        with torch.no_grad(), lora.disabled(model):
            ref = completion_logps(model, *args, temperature=temperature)
        model.train()
        mask = batch["completion_mask"]
        opt.zero_grad()
        # the loss is a mean over completions: its gradient is accumulated over slices of
        # MICRO_BATCH completions, each weighted by its share, to bound the activations kept
        total, parts = mask.size(0), []
        loss = torch.zeros(())
        for lo in range(0, total, MICRO_BATCH):
            part = slice(lo, lo + MICRO_BATCH)
            logps = completion_logps(model, *(a[part] for a in args), temperature=temperature)
            share = logps.size(0) / total
            piece = grpo_loss(logps, logps.detach(), ref[part], mask[part], advantages[part], epsilon, beta)
            (piece * share).backward()
            loss = loss + piece.detach() * share
            parts.append(logps.detach())
        logps = torch.cat(parts)
        opt.step()
        with torch.no_grad():
            diff = ref - logps
            kl = ((torch.exp(diff) - diff - 1) * mask).sum() / mask.sum()
        groups = rewards.view(-1, group_size)
        row = {"step": step, "reward": rewards.mean().item(),
               "length": mask.sum(dim=1).float().mean().item(), "kl": kl.item(), "loss": loss.item(),
               "groups_with_signal": (groups.max(dim=1).values > groups.min(dim=1).values).float().mean().item()}
        history.append(_probed(row, model, step, steps, on_step, every))
    model.eval()
    return history


# ------------------------------------------------------------------ against TRL

def _tiny_llama(tokenizer, seed: int, sequence_classification: bool = False):
    """A seeded 2-layer Llama that reads ``tokenizer``'s ids (random weights, for checks only)."""
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=256, pad_token_id=_pad_id(tokenizer),
                         eos_token_id=tokenizer.eos_token_id, num_labels=1)
    cls = LlamaForSequenceClassification if sequence_classification else LlamaForCausalLM
    return cls(config).eval()


def check_against_trl(tokenizer, pairs: list[dict] | None = None, beta: float = 0.1) -> dict:
    """The three losses here and in TRL's own trainers, on the same inputs.

    On tiny random Llamas that read ``tokenizer`` (no weights to download), TRL's
    ``RewardTrainer``, ``DPOTrainer`` (a policy and a different reference) and
    ``GRPOTrainer`` each compute their loss on a batch; :func:`bradley_terry_loss`,
    :func:`dpo_loss` and :func:`grpo_loss` compute theirs from the same tensors. TRL's
    GRPO is built with ``use_bias_correction_kl=False`` (by default TRL 1.x multiplies
    the KL term by the probability ratio; the paper's loss does not). Returns
    ``{"trl": version, "rows": [{"loss", "llmlab", "TRL", "difference"}], "worst": max}``.
    Needs TRL (``pip install trl``).
    """
    try:
        import datasets
        import trl
        from datasets import Dataset
    except ImportError as err:  # pragma: no cover - TRL is in the project's lock
        raise ImportError("check_against_trl needs TRL and datasets: pip install trl") from err
    _checks.tokenizer("tokenizer", tokenizer)
    beta = _checks.positive("beta", beta)
    if pairs is None:
        from . import preferences
        pairs = preferences.load_pairs("train")[:4]
    pairs = _check_pairs(pairs)
    rows = [{"prompt": [{"role": "user", "content": p["prompt"]}],
             "chosen": [{"role": "assistant", "content": p["chosen"]}],
             "rejected": [{"role": "assistant", "content": p["rejected"]}]} for p in pairs]
    out = []
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # TRL tokenizes its tiny data sets with a progress bar each
    try:
        _trl_losses(trl, Dataset, tokenizer, rows, len(pairs), beta, out)
    finally:
        if bars:
            datasets.enable_progress_bars()
    for row in out:
        row["difference"] = abs(row["llmlab"] - row["TRL"])
    return {"trl": trl.__version__, "rows": out, "worst": max(r["difference"] for r in out)}


def _trl_losses(trl, Dataset, tokenizer, rows: list[dict], n_pairs: int, beta: float,
                out: list[dict]) -> None:
    """The body of :func:`check_against_trl`: appends one row per loss to ``out``."""
    import tempfile
    import warnings

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        common = dict(output_dir=tmp, report_to="none", use_cpu=True, bf16=False,
                      per_device_train_batch_size=n_pairs)
        # the reward model's loss
        scorer = _tiny_llama(tokenizer, 0, sequence_classification=True)
        trainer = trl.RewardTrainer(model=scorer, args=trl.RewardConfig(**common),
                                    processing_class=tokenizer, train_dataset=Dataset.from_list(rows))
        batch = next(iter(trainer.get_train_dataloader()))
        scorer.eval()
        theirs = trainer.compute_loss(scorer, dict(batch)).item()
        rewards = scorer(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        ours = bradley_terry_loss(*rewards.squeeze(-1).chunk(2)).item()
        out.append({"loss": "Bradley-Terry (reward model)", "llmlab": ours, "TRL": theirs})
        # DPO: a policy and a different reference on TRL's own batch
        policy, ref = _tiny_llama(tokenizer, 0), _tiny_llama(tokenizer, 1)
        trainer = trl.DPOTrainer(model=policy, ref_model=ref, processing_class=tokenizer,
                                 args=trl.DPOConfig(beta=beta, precompute_ref_log_probs=False, **common),
                                 train_dataset=Dataset.from_list(rows))
        batch = next(iter(trainer.get_train_dataloader()))
        policy.eval()
        theirs = trainer.compute_loss(policy, dict(batch)).item()
        ids, attn, mask = batch["input_ids"], batch["attention_mask"], batch["completion_mask"][:, 1:]
        pc, pr = (_token_logps(policy, ids, attn)[0] * mask).sum(1).chunk(2)  # chosen half, rejected half
        rc, rr = (_token_logps(ref, ids, attn)[0] * mask).sum(1).chunk(2)
        out.append({"loss": f"DPO (beta {beta:g})", "llmlab": dpo_loss(pc, pr, rc, rr, beta).item(),
                    "TRL": theirs})
        # GRPO on a hand-made batch: a left-padded prompt, ratios inside and outside the clip
        prompts = [{"prompt": r["prompt"]} for r in rows]
        grpo_args = trl.GRPOConfig(beta=0.0, epsilon=0.2, num_generations=n_pairs,
                                   max_completion_length=8, loss_type="grpo",
                                   use_bias_correction_kl=False, **common)
        # built with beta = 0 (with beta > 0 TRL loads its reference from the hub by name), then set
        trainer = trl.GRPOTrainer(model=_tiny_llama(tokenizer, 2), args=grpo_args,
                                  reward_funcs=lambda completions, **_: [0.0] * len(completions),
                                  processing_class=tokenizer, train_dataset=Dataset.from_list(prompts))
        trainer.beta = 0.04
        grpo_model = trainer.model.eval()
        g = torch.Generator().manual_seed(0)
        n, width = 4, 5
        batch = {"prompt_ids": torch.randint(0, len(tokenizer), (n, 6), generator=g),
                 "prompt_mask": torch.ones(n, 6, dtype=torch.long),
                 "completion_ids": torch.randint(0, len(tokenizer), (n, width), generator=g),
                 "completion_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0],
                                                  [1, 0, 0, 0, 0]]),
                 "advantages": torch.tensor([1.2, -0.7, 0.4, -0.9])}
        batch["prompt_mask"][1, :2] = 0
        logps = completion_logps(grpo_model, batch["prompt_ids"], batch["prompt_mask"],
                                 batch["completion_ids"], batch["completion_mask"])
        batch["old_per_token_logps"] = logps + 0.4 * torch.randn(n, width, generator=g)
        batch["ref_per_token_logps"] = logps + 0.5 * torch.randn(n, width, generator=g)
        theirs = trainer._compute_loss(grpo_model, dict(batch)).item()
        ours = grpo_loss(logps, batch["old_per_token_logps"], batch["ref_per_token_logps"],
                         batch["completion_mask"], batch["advantages"], 0.2, 0.04).item()
        out.append({"loss": "GRPO (epsilon 0.2, beta 0.04)", "llmlab": ours, "TRL": theirs})
