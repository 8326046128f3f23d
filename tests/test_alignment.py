"""llmlab.alignment (chapter 13) against TRL 1.x's trainers on the same inputs, and by hand.

TRL computes each loss inside its trainer, so each check builds the real trainer on a tiny
Llama that reads SmolLM2's tokenizer, feeds it a batch, and compares what it returns with
llmlab's function on the same tensors:

- ``RewardTrainer.compute_loss`` against :func:`alignment.bradley_terry_loss`;
- ``DPOTrainer.compute_loss`` (policy and a different reference model) against
  :func:`alignment.dpo_loss` on log-probabilities summed over the batch's completion tokens;
- ``GRPOTrainer._compute_loss`` against :func:`alignment.grpo_loss`, with the ratio outside
  the clipping band for some tokens. TRL 1.16 multiplies the KL term by the probability
  ratio by default (``use_bias_correction_kl``), which the paper's loss does not: the check
  turns it off and says so.
"""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch

from llmlab import alignment as al
from llmlab import lora, preferences

pytestmark = pytest.mark.usefixtures("one_thread")

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.fixture(scope="module")
def tok():
    from llmlab import zoo

    return zoo.load("smollm2-135m-instruct", device="cpu")[1]


def _tiny(tok, seed=0, cls=None):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, num_labels=1)
    return (cls or LlamaForCausalLM)(config).eval()


def _dataset(rows):
    from datasets import Dataset

    return Dataset.from_list(rows)


def _conversational(pairs):
    return [{"prompt": [{"role": "user", "content": p["prompt"]}],
             "chosen": [{"role": "assistant", "content": p["chosen"]}],
             "rejected": [{"role": "assistant", "content": p["rejected"]}]} for p in pairs]


def _quiet():
    warnings.simplefilter("ignore")


# ------------------------------------------------------------------ by hand

def test_bradley_terry_by_hand():
    rc, rr = torch.tensor([2.0, 0.0, -1.0]), torch.tensor([0.0, 0.0, 1.0])
    want = (math.log1p(math.exp(-2.0)) + math.log(2.0) + math.log1p(math.exp(2.0))) / 3
    assert al.bradley_terry_loss(rc, rr).item() == pytest.approx(want, rel=1e-6)
    # only the difference counts
    assert al.bradley_terry_loss(rc + 5, rr + 5).item() == pytest.approx(want, rel=1e-6)


def test_dpo_by_hand_and_at_the_reference():
    pc, pr = torch.tensor([-3.0, -10.0]), torch.tensor([-5.0, -9.0])
    rc, rr = torch.tensor([-4.0, -10.0]), torch.tensor([-4.0, -10.0])
    beta = 0.5
    # h_c - h_r = (1 - (-1)) = 2 and (0 - 1) = -1
    want = (math.log1p(math.exp(-beta * 2)) + math.log1p(math.exp(beta * 1))) / 2
    assert al.dpo_loss(pc, pr, rc, rr, beta).item() == pytest.approx(want, rel=1e-6)
    # a policy equal to its reference sits at log 2, whatever beta
    for b in (0.01, 0.1, 1.0):
        assert al.dpo_loss(rc, rr, rc, rr, b).item() == pytest.approx(math.log(2), rel=1e-6)


def test_grpo_advantages_by_hand():
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    adv = al.grpo_advantages(rewards, group_size=4)
    std = torch.tensor([1.0, 0.0, 0.0, 0.0]).std().item()  # sample standard deviation: 0.5
    assert std == pytest.approx(0.5)
    assert adv[:4].tolist() == pytest.approx([0.75 / (0.5 + 1e-4), -0.25 / (0.5 + 1e-4),
                                              -0.25 / (0.5 + 1e-4), -0.25 / (0.5 + 1e-4)], rel=1e-6)
    assert adv[4:].tolist() == [0.0, 0.0, 0.0, 0.0]  # a group that all scored alike teaches nothing


def test_grpo_advantages_as_trl_computes_them():
    from trl.trainer.utils import nanstd

    rewards = torch.tensor([0.0, 1.0, 1.0, 0.5, 0.2, 0.9, 0.0, 0.0, 1.0])
    grouped = rewards.view(-1, 3)
    want = (rewards - grouped.mean(1).repeat_interleave(3)) / (nanstd(grouped, dim=1).repeat_interleave(3) + 1e-4)
    assert torch.allclose(al.grpo_advantages(rewards, 3), want, atol=1e-6)


def test_grpo_loss_at_ratio_one_is_minus_the_mean_advantage_plus_the_kl():
    logps = torch.tensor([[-1.0, -2.0, -0.5], [-0.3, -0.2, -4.0]])
    ref = logps + torch.tensor([[0.1, -0.2, 0.0], [0.5, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    adv = torch.tensor([1.0, -2.0])
    kl = torch.exp(ref - logps) - (ref - logps) - 1
    per_seq = [-1.0 + 0.04 * kl[0].mean(), 2.0 + 0.04 * kl[1, :2].mean()]
    want = (per_seq[0] + per_seq[1]) / 2
    assert al.grpo_loss(logps, logps, ref, mask, adv, 0.2, 0.04).item() == pytest.approx(want.item(), rel=1e-6)
    assert (kl >= 0).all()


# ------------------------------------------------------------------ against TRL

def test_bradley_terry_loss_agrees_with_trl_reward_trainer(tok, tmp_path):
    from transformers import LlamaForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    _quiet()
    model = _tiny(tok, cls=LlamaForSequenceClassification)
    pairs = preferences.load_pairs("train")[:6]
    args = RewardConfig(output_dir=str(tmp_path), per_device_train_batch_size=6, report_to="none",
                        use_cpu=True, bf16=False)
    trainer = RewardTrainer(model=model, args=args, processing_class=tok,
                            train_dataset=_dataset(_conversational(pairs)))
    batch = next(iter(trainer.get_train_dataloader()))
    model.eval()
    with torch.no_grad():
        theirs = trainer.compute_loss(model, dict(batch)).item()
        rewards = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.squeeze(-1)
    rc, rr = rewards.chunk(2)
    assert (rc - rr).abs().max() > 1e-3  # the check compares something
    assert al.bradley_terry_loss(rc, rr).item() == pytest.approx(theirs, abs=1e-6)


def _dpo_batch(tok, tmp_path, beta):
    from trl import DPOConfig, DPOTrainer

    _quiet()
    policy, ref = _tiny(tok, seed=0), _tiny(tok, seed=1)
    pairs = preferences.load_pairs("train")[:4]
    args = DPOConfig(output_dir=str(tmp_path), beta=beta, per_device_train_batch_size=4, report_to="none",
                     use_cpu=True, bf16=False, precompute_ref_log_probs=False)
    trainer = DPOTrainer(model=policy, ref_model=ref, args=args, processing_class=tok,
                         train_dataset=_dataset(_conversational(pairs)))
    return trainer, policy, ref, next(iter(trainer.get_train_dataloader()))


@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_dpo_loss_agrees_with_trl_dpo_trainer(tok, tmp_path, beta):
    trainer, policy, ref, batch = _dpo_batch(tok, tmp_path, beta)
    policy.eval()
    with torch.no_grad():
        theirs = trainer.compute_loss(policy, dict(batch)).item()
        ids, attn, mask = batch["input_ids"], batch["attention_mask"], batch["completion_mask"][:, 1:]
        ours_policy = (al._token_logps(policy, ids, attn)[0] * mask).sum(1)
        ours_ref = (al._token_logps(ref, ids, attn)[0] * mask).sum(1)
    pc, pr = ours_policy.chunk(2)  # TRL's batch: the chosen halves, then the rejected
    rc, rr = ours_ref.chunk(2)
    ours = al.dpo_loss(pc, pr, rc, rr, beta).item()
    assert abs(ours - math.log(2)) > 1e-3  # policy and reference differ, so the check means something
    # the summed log-probabilities are about -300 here (a random model over 49,152 tokens), so float32
    # rounding of the two sums differs by a few 1e-5, and the loss by beta times that
    assert ours == pytest.approx(theirs, abs=1e-4 * beta)


def test_sequence_logps_reads_the_same_tokens_as_trl_but_its_trailing_newline(tok, tmp_path):
    trainer, policy, _, batch = _dpo_batch(tok, tmp_path, 0.1)
    ids, attn, mask = batch["input_ids"], batch["attention_mask"], batch["completion_mask"]
    texts = [tok.decode(row[m.bool()]) for row, m in zip(ids, attn)]
    pairs = preferences.load_pairs("train")[:4]
    lookup = {}
    for p in pairs:
        for key in ("chosen", "rejected"):
            prompt_ids, response_ids = al.encode(tok, [p["prompt"]], [p[key]])[0]
            lookup[tok.decode(prompt_ids + response_ids)] = (p["prompt"], p[key], prompt_ids + response_ids)
    newline = tok("\n", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        for row, text, m, a in zip(ids, texts, mask, attn):
            # TRL's completion ends "<|im_end|>\n"; llmlab's stops at the end-of-turn token
            assert text.endswith("\n")
            prompt, response, ours_ids = lookup[text[:-1]]
            assert row[a.bool()].tolist() == ours_ids + newline
            theirs = (al._token_logps(policy, row[None], a[None])[0] * m[None, 1:]).sum()
            last = al._token_logps(policy, row[a.bool()][None], a[a.bool()][None])[0][0, -1]
            ours = al.sequence_logps(policy, tok, [prompt], [response])[0]
            assert ours.item() == pytest.approx((theirs - last).item(), abs=1e-4)


def _grpo_trainer(tok, tmp_path, beta):
    from trl import GRPOConfig, GRPOTrainer

    _quiet()
    prompts = [{"prompt": [{"role": "user", "content": s["prompt"]}]} for s in preferences.load_sums("train")[:4]]
    # beta=0 at construction: with beta > 0 TRL loads its reference model from the hub by name
    args = GRPOConfig(output_dir=str(tmp_path), beta=0.0, epsilon=0.2, num_generations=4,
                      per_device_train_batch_size=4, report_to="none", use_cpu=True, bf16=False,
                      max_completion_length=8, loss_type="grpo", use_bias_correction_kl=False)
    trainer = GRPOTrainer(model=_tiny(tok), reward_funcs=lambda completions, **_: [0.0] * len(completions),
                          args=args, processing_class=tok, train_dataset=_dataset(prompts))
    trainer.beta = beta
    trainer.model.eval()
    return trainer


def _grpo_inputs(model, tok):
    g = torch.Generator().manual_seed(0)
    b, p, c = 4, 6, 5
    inputs = {"prompt_ids": torch.randint(0, len(tok), (b, p), generator=g),
              "prompt_mask": torch.ones(b, p, dtype=torch.long),
              "completion_ids": torch.randint(0, len(tok), (b, c), generator=g),
              "completion_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 0, 0, 0, 0]]),
              "advantages": torch.tensor([1.2, -0.7, 0.4, -0.9])}
    inputs["prompt_mask"][1, :2] = 0  # a left-padded prompt
    with torch.no_grad():
        logps = al.completion_logps(model, inputs["prompt_ids"], inputs["prompt_mask"],
                                    inputs["completion_ids"], inputs["completion_mask"])
    inputs["old_per_token_logps"] = logps + 0.4 * torch.randn(b, c, generator=g)
    inputs["ref_per_token_logps"] = logps + 0.5 * torch.randn(b, c, generator=g)
    return inputs, logps


@pytest.mark.parametrize("beta", [0.0, 0.04, 0.3])
def test_grpo_loss_agrees_with_trl_grpo_trainer(tok, tmp_path, beta):
    trainer = _grpo_trainer(tok, tmp_path, beta)
    model = trainer.model
    inputs, logps = _grpo_inputs(model, tok)
    ratio = torch.exp(logps - inputs["old_per_token_logps"])[inputs["completion_mask"].bool()]
    assert ((ratio < 0.8) | (ratio > 1.2)).any() and ((ratio > 0.8) & (ratio < 1.2)).any()  # clipping matters
    with torch.no_grad():
        theirs = trainer._compute_loss(model, dict(inputs)).item()
    ours = al.grpo_loss(logps, inputs["old_per_token_logps"], inputs["ref_per_token_logps"],
                        inputs["completion_mask"], inputs["advantages"], 0.2, beta).item()
    assert abs(ours) > 1e-3
    assert ours == pytest.approx(theirs, abs=1e-5)


def test_completion_logps_agree_with_trl_on_a_left_padded_batch(tok, tmp_path):
    trainer = _grpo_trainer(tok, tmp_path, 0.0)
    inputs, logps = _grpo_inputs(trainer.model, tok)
    ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1)
    attn = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1)
    with torch.no_grad():
        theirs = trainer._get_per_token_logps_and_entropies(trainer.model, ids, attn, 5)[0]
    keep = inputs["completion_mask"].bool()
    assert (theirs - logps)[keep].abs().max() < 1e-5


# ------------------------------------------------------------------ the pieces a run uses

def test_sequence_logps_do_not_depend_on_the_batch(tok):
    model = _tiny(tok)
    pairs = preferences.load_pairs("test")[:5]
    prompts, responses = [p["prompt"] for p in pairs], [p["chosen"] for p in pairs]
    with torch.no_grad():
        together = al.sequence_logps(model, tok, prompts, responses, batch_size=5)
        alone = torch.cat([al.sequence_logps(model, tok, [p], [r]) for p, r in zip(prompts, responses)])
    assert torch.allclose(together, alone, atol=1e-4)
    # by hand for one: the response's tokens (and the end-of-turn token) given all before
    prompt_ids, response_ids = al.encode(tok, prompts[:1], responses[:1])[0]
    ids = torch.tensor([prompt_ids + response_ids])
    with torch.no_grad():
        logprobs = model(input_ids=ids).logits[0].log_softmax(-1)
    want = sum(logprobs[len(prompt_ids) + i - 1, t].item() for i, t in enumerate(response_ids))
    assert together[0].item() == pytest.approx(want, abs=1e-4)
    assert response_ids[-1] == tok.eos_token_id


def test_lora_disabled_gives_the_base_model_and_restores_the_adapters(tok):
    base = _tiny(tok)
    model = lora.add_lora(copy.deepcopy(base), r=4, alpha=8, target_modules=TARGETS)
    for layer in lora.lora_layers(model).values():
        torch.nn.init.normal_(layer.lora_B, std=0.5)
    ids = torch.tensor([[1, 5, 9, 200, 3000]])
    with torch.no_grad():
        adapted = model(input_ids=ids).logits
        with lora.disabled(model):
            off = model(input_ids=ids).logits
        again = model(input_ids=ids).logits
        plain = base(input_ids=ids).logits
    assert torch.equal(off, plain) and torch.equal(again, adapted) and not torch.allclose(adapted, plain)
    with pytest.raises(ValueError, match="no LoRA layers"):
        with lora.disabled(base):
            pass


def test_response_kl_is_zero_at_the_start_and_positive_after_a_change(tok):
    model = lora.add_lora(_tiny(tok), r=4, alpha=8, target_modules=TARGETS)
    pairs = preferences.load_pairs("test")[:3]
    args = ([p["prompt"] for p in pairs], [p["chosen"] for p in pairs])
    assert al.response_kl(model, tok, *args).abs().max() < 1e-6
    for layer in lora.lora_layers(model).values():
        torch.nn.init.normal_(layer.lora_B, std=0.5)
    assert (al.response_kl(model, tok, *args) > 1e-3).all()


def test_reward_model_reads_the_last_token_as_transformers_does(tok):
    from transformers import LlamaForSequenceClassification

    causal = _tiny(tok)
    rm = al.RewardModel(causal, seed=3)
    # SmolLM2 pads with its end-of-turn token; transformers would then read the token before it.
    # With an unused pad id it reads the last token, the end-of-turn token, as llmlab does.
    config = copy.deepcopy(causal.config)
    config.pad_token_id = 0  # <|endoftext|>, in none of these sequences
    hf = LlamaForSequenceClassification(config).eval()
    hf.model.load_state_dict(causal.model.state_dict())
    hf.score.weight.data.copy_(rm.head.weight.data)
    pairs = preferences.load_pairs("test")[:4]
    prompts, responses = [p["prompt"] for p in pairs], [p["chosen"] for p in pairs]
    ours = al.reward_scores(rm, tok, prompts, responses, batch_size=4)
    with torch.no_grad():
        for n, (prompt_ids, response_ids) in enumerate(al.encode(tok, prompts, responses)):
            theirs = hf(input_ids=torch.tensor([prompt_ids + response_ids])).logits[0, 0]
            assert ours[n].item() == pytest.approx(theirs.item(), abs=1e-5)


def test_a_dpo_run_raises_the_margin_on_its_pairs(tok):
    model = lora.add_lora(_tiny(tok), r=4, alpha=8, target_modules=TARGETS)
    pairs = preferences.load_pairs("train")[:4]
    history = al.train_dpo(model, tok, pairs, beta=0.1, steps=12, batch_size=4, lr=1e-2, seed=0)
    assert history[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)  # at the reference
    assert history[-1]["margin"] > history[0]["margin"] + 0.1
    assert history[-1]["loss"] < history[0]["loss"]


def test_a_reward_model_run_separates_its_pairs(tok):
    rm = al.RewardModel(lora.add_lora(_tiny(tok), r=4, alpha=8, target_modules=TARGETS), seed=0)
    pairs = preferences.load_pairs("train")[:4]
    history = al.train_reward_model(rm, tok, pairs, steps=50, batch_size=4, lr=5e-3, seed=0)
    assert history[-1]["loss"] < 0.1 * history[0]["loss"] and history[-1]["accuracy"] == 1.0


def test_sampled_groups_mask_after_the_end_of_turn_token(tok):
    model = _tiny(tok)
    out = al.sample_groups(model, tok, ["What is 2 + 3?", "What is 9 + 1?"], group_size=3,
                           max_new_tokens=6, seed=0)
    assert out["completion_ids"].size(0) == 6 and len(out["texts"]) == 6
    for ids, mask in zip(out["completion_ids"], out["completion_mask"]):
        eos = (ids == tok.eos_token_id).nonzero()
        n = int(eos[0]) + 1 if len(eos) else ids.numel()
        assert mask.tolist() == [1] * n + [0] * (ids.numel() - n)
    again = al.sample_groups(model, tok, ["What is 2 + 3?", "What is 9 + 1?"], 3, 6, seed=0)
    assert torch.equal(again["completion_ids"], out["completion_ids"])  # seeded


def test_a_grpo_step_starts_at_the_reference_and_reports_its_batch(tok):
    model = lora.add_lora(_tiny(tok), r=4, alpha=8, target_modules=TARGETS)
    items = preferences.load_sums("train")[:4]
    history = al.train_grpo(model, tok, items, lambda item, text: float(len(text) % 2), steps=2,
                            prompts_per_step=2, group_size=3, lr=1e-2, max_new_tokens=4, seed=0,
                            on_step=lambda step, m: {"probe": step}, every=1)
    assert history[0]["kl"] == pytest.approx(0.0, abs=1e-7)  # the first sample is the reference's
    assert [row["probe"] for row in history] == [1, 2]
    assert set(history[0]) >= {"reward", "length", "kl", "loss", "groups_with_signal"}
    with pytest.raises(ValueError, match="add LoRA"):
        al.train_grpo(_tiny(tok), tok, items, lambda i, t: 0.0, steps=1, prompts_per_step=2,
                      group_size=2, lr=1e-3)


def test_a_grpo_step_in_slices_takes_the_same_step_as_one_pass(tok, monkeypatch):
    """train_grpo accumulates its gradient over MICRO_BATCH completions at a time: the step it
    takes must be the one a single pass over the whole batch takes."""
    items = preferences.load_sums("train")[:4]
    grads, losses = [], []
    for micro in (2, 64):
        monkeypatch.setattr(al, "MICRO_BATCH", micro)
        model = lora.add_lora(_tiny(tok), r=4, alpha=8, target_modules=TARGETS)
        history = al.train_grpo(model, tok, items, lambda item, text: float(len(text) % 3), steps=1,
                                prompts_per_step=2, group_size=3, lr=1e-2, max_new_tokens=5, seed=0)
        assert history[0]["groups_with_signal"] > 0  # a step that moves the adapters
        # the gradient of the step (AdamW's update hides a gradient's scale; the gradient does not)
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.requires_grad]))
        losses.append(history[0]["loss"])
    assert losses[0] == pytest.approx(losses[1], rel=1e-5, abs=1e-7)
    assert grads[0].abs().max() > 0
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-7)


def test_the_chapters_check_against_trl_agrees_and_would_catch_a_wrong_loss(tok, monkeypatch):
    report = al.check_against_trl(tok)
    assert [r["loss"].split()[0] for r in report["rows"]] == ["Bradley-Terry", "DPO", "GRPO"]
    assert report["worst"] < 1e-4 and all(abs(r["TRL"]) > 1e-3 for r in report["rows"])
    # a DPO loss with beta outside the sigmoid: the same check then reports a difference
    monkeypatch.setattr(al, "dpo_loss", lambda pc, pr, rc, rr, beta: -beta * torch.nn.functional.logsigmoid(
        (pc - rc) - (pr - rr)).mean())
    assert al.check_against_trl(tok)["worst"] > 1e-3


def test_dpo_with_the_reference_batch_by_batch_matches_a_precomputed_reference(tok):
    pairs = preferences.load_pairs("train")[:6]
    runs = []
    for precomputed in (False, True):
        model = lora.add_lora(_tiny(tok), r=4, alpha=8, target_modules=TARGETS)
        reference = al.reference_logps(model, tok, pairs) if precomputed else None
        runs.append(al.train_dpo(model, tok, pairs, beta=0.1, steps=3, batch_size=3, lr=1e-2,
                                 seed=1, reference=reference))
    for a, b in zip(*runs):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
    assert runs[0][-1]["loss"] != pytest.approx(runs[0][0]["loss"], abs=1e-4)  # it trained
