# %% [markdown]
# # Exercises: 13. Aligning a model with preferences
#
# These exercises go with [chapter 13](../../chapters/13_alignment.ipynb). You compute
# the Bradley-Terry probability a reward model is trained on, DPO's loss and implicit
# rewards from four log-probabilities, GRPO's group-relative advantages, and best-of-n
# selection against a reward model from the recorded samples, where you look for reward
# hacking; then a short quiz. Each check runs your code on the example and on hidden
# cases and compares it with a reference the check computes itself.
#
# The model: SmolLM2-135M-Instruct (`zoo.REAL_MODEL`, already in the cache) with LoRA
# adapters, in the DPO exercise only. The record: chapter 13's recorded runs,
# `llmlab/results/alignment.json` (`alignment_record.load()`), in the best-of-n
# exercise.
#
# Write your code where it says `raise NotImplementedError` or `...`, run the cell,
# then run the check below it.

# %%
import math

import torch
import torch.nn.functional as F

from llmlab import alignment, lora, preferences, zoo
from llmlab import exercises as ex
from llmlab.device import seed_everything
from llmlab.records import alignment as alignment_record

seed_everything(0)

# %% [markdown] {"exercise": "bradley-terry", "minutes": 10}
# ## The Bradley-Terry model of a preference
#
# A reward model gives each answer a number, its reward. The Bradley-Terry model, as
# InstructGPT (Ouyang et al. 2022) trains its reward model, says that the chosen answer
# is preferred to the rejected one with probability `sigmoid(r_chosen - r_rejected)`,
# and the loss on that pair is the negative natural log of that probability. Write
# `bradley_terry(r_chosen, r_rejected)` returning `(probability, loss)`, two floats.
# The check compares with `alignment.bradley_terry_loss`, for equal rewards, rewards
# shifted by the same amount, negative rewards and a rejected answer far ahead.

# %%
def bradley_terry(r_chosen: float, r_rejected: float) -> tuple[float, float]:
    """P(chosen preferred) under Bradley-Terry, and the loss -log P."""
    ### BEGIN SOLUTION
    d = r_chosen - r_rejected
    probability = 1 / (1 + math.exp(-d))
    loss = math.log1p(math.exp(-d))  # -log sigmoid(d), written to stay finite
    return probability, loss
    ### END SOLUTION


# %% {"role": "try"}
p, loss = bradley_terry(1.5, 0.25)
library = alignment.bradley_terry_loss(torch.tensor([1.5]), torch.tensor([0.25])).item()
print(f"P(chosen preferred) = {p:.3f}, loss = {loss:.3f}")
print(f"equals bradley_terry_loss within 1e-6: {abs(loss - library) < 1e-6}")
shifted = bradley_terry(101.5, 100.25)
print(f"the same with both rewards + 100: {math.isclose(shifted[1], loss)}")

# %% {"role": "check"}
ex.check_bradley_terry(bradley_terry)

# %% [markdown] {"exercise": "dpo", "minutes": 15}
# ## DPO's loss from four log-probabilities
#
# DPO (Rafailov et al. 2023) trains the policy on the preference pairs directly. For
# each pair it needs four numbers, each a response's log-probability summed over its
# tokens: the policy's and the reference model's, for the chosen and for the rejected
# answer. With `h = log pi(y|x) - log pi_ref(y|x)`, the loss of a pair is
# `-log sigmoid(beta * (h_chosen - h_rejected))` and the loss of a batch is the mean
# over its pairs; `beta * h` is the answer's *implicit reward*.
#
# Write `dpo(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)` on a batch
# (four 1-D tensors, one value per pair) returning `(loss, chosen_rewards,
# rejected_rewards)`: the loss a 0-d tensor, the rewards one per pair. A batch, not one
# pair, because averaging over the pairs is part of the loss. The check compares with
# `alignment.dpo_loss` for other betas, a single pair, a policy still equal to its
# reference, float64, and a rejected answer far ahead (where `log(sigmoid(x))`
# underflows: `F.logsigmoid` does not).

# %%
def dpo(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor,
        ref_chosen: torch.Tensor, ref_rejected: torch.Tensor,
        beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DPO's loss (the batch mean) and the implicit rewards of both answers."""
    ### BEGIN SOLUTION
    chosen_rewards = beta * (policy_chosen - ref_chosen)
    rejected_rewards = beta * (policy_rejected - ref_rejected)
    loss = -F.logsigmoid(chosen_rewards - rejected_rewards).mean()
    return loss, chosen_rewards, rejected_rewards
    ### END SOLUTION


# %% {"role": "try"}
# SmolLM2 with LoRA adapters whose B is no longer zero, as if trained a little; the
# reference is the same model with the adapters switched off
model, tok = zoo.load(zoo.REAL_MODEL, device="cpu")
policy = lora.add_lora(model, r=16, alpha=32, target_modules=["q_proj", "v_proj"])
with torch.no_grad():
    for layer in lora.lora_layers(policy).values():
        layer.lora_B.normal_(std=0.002)
pairs = preferences.load_pairs("test")[:4]
prompts = [p["prompt"] for p in pairs]
with torch.no_grad():
    pc = alignment.sequence_logps(policy, tok, prompts, [p["chosen"] for p in pairs])
    pr = alignment.sequence_logps(policy, tok, prompts, [p["rejected"] for p in pairs])
ref_c, ref_r = alignment.reference_logps(policy, tok, pairs)
loss, chosen_rewards, rejected_rewards = dpo(pc, pr, ref_c, ref_r, beta=0.1)
same = abs(loss.item() - alignment.dpo_loss(pc, pr, ref_c, ref_r, 0.1).item()) < 1e-6
print(f"DPO loss on 4 held-out pairs: {loss.item():.4f} (log 2 = {math.log(2):.4f})")
print(f"equals alignment.dpo_loss within 1e-6: {same}")
print(f"pairs whose chosen answer has the larger implicit reward: "
      f"{int((chosen_rewards > rejected_rewards).sum())} of {len(pairs)}")

# %% {"role": "check"}
ex.check_dpo(dpo)

# %% [markdown] {"exercise": "advantages", "minutes": 10}
# ## GRPO's group-relative advantages
#
# GRPO (Shao et al. 2024) samples several answers to each prompt, a *group*, and scores
# each with a reward. An answer's advantage is its reward minus its group's mean,
# divided by the group's standard deviation plus `1e-4`: the sample standard deviation
# (divided by `n - 1`, torch's default), as TRL computes it. Write
# `advantages(rewards, group_size)`: `rewards` is a list of floats holding `group_size`
# consecutive answers per prompt; return the list of advantages, in the same order. The
# check compares with `alignment.grpo_advantages`, for groups whose rewards are all
# equal, several groups, other group sizes and non-binary rewards.

# %%
def advantages(rewards: list[float], group_size: int) -> list[float]:
    """(reward - group mean) / (group std + 1e-4), the groups consecutive."""
    ### BEGIN SOLUTION
    out = []
    for start in range(0, len(rewards), group_size):
        group = rewards[start:start + group_size]
        mean = sum(group) / len(group)
        std = math.sqrt(sum((r - mean) ** 2 for r in group) / (len(group) - 1))
        out += [(r - mean) / (std + 1e-4) for r in group]
    return out
    ### END SOLUTION


# %% {"role": "try"}
rewards = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
ours = advantages(rewards, 4)
library = alignment.grpo_advantages(torch.tensor(rewards), 4)
print("advantages:", [round(a, 3) for a in ours])
print(f"equal to grpo_advantages within 1e-5: "
      f"{torch.allclose(torch.tensor(ours), library, atol=1e-5)}")

# %% {"role": "check"}
ex.check_advantages(advantages)

# %% [markdown] {"exercise": "best-of-n", "minutes": 20}
# ## Best-of-n against a reward model, and reward hacking
#
# The record's `record["samples"]` holds `k` sampled answers to each held-out question
# of chapter 13 (`k = record["plan"]["best_of_n"]["n"]`), question after question:
# `"texts"`, `"tokens"` (each answer's length in tokens), and `"correct"` and `"short"`,
# strings with one `'1'` or `'0'` per answer. Each row of `record["reward"]` is a reward
# model, trained on the `"balanced"` set (length says nothing about which answer is
# preferred) or the `"length-correlated"` one (the chosen answer is mostly the longer),
# and its `"sample_scores"` hold one reward per sampled answer.
#
# Best-of-n keeps, for each question, the answer among its first `n` that the reward
# scores highest (the first of them on a tie). Write
# `best_of_n(samples, scores, k, n)` returning `(mean_tokens, share_correct)` of the
# kept answers, the means over the questions. Then write `reward_hacked(table)`: `table`
# maps each `n` to that pair; return `True` when the answers kept at the largest `n` are
# both longer and less often correct than at `n = 1`: optimising harder against the
# reward lengthens the answers while the principle's score falls (Singhal et al. 2023
# found length to be what reward models most often reward).
#
# The check computes its answers from the same record, from the record reordered and
# from tables made up in its format (other `k` and `n`, ties); compare yours with
# `alignment_record.best_of_n`, which pools the seeds of a reward set.

# %%
def best_of_n(samples: dict, scores: list[float], k: int,
              n: int) -> tuple[float, float]:
    """Mean tokens and share correct of the best-scored of each question's first n."""
    ### BEGIN SOLUTION
    kept = []
    for start in range(0, len(samples["correct"]), k):
        first_n = range(start, start + n)
        # max keeps the first of equal scores
        kept.append(max(first_n, key=lambda i: scores[i]))
    mean_tokens = sum(samples["tokens"][i] for i in kept) / len(kept)
    share_correct = sum(samples["correct"][i] == "1" for i in kept) / len(kept)
    return mean_tokens, share_correct
    ### END SOLUTION


def reward_hacked(table: dict[int, tuple[float, float]]) -> bool:
    """Longer and less often correct at the largest n than at n = 1."""
    ### BEGIN SOLUTION
    (tokens_1, correct_1), (tokens_n, correct_n) = table[min(table)], table[max(table)]
    return tokens_n > tokens_1 and correct_n < correct_1
    ### END SOLUTION


# %% {"role": "try"}
record = alignment_record.load()
k = record["plan"]["best_of_n"]["n"]
ns = [n for n in (1, 2, 4, 8, 16) if n <= k]
for reward_set in ("balanced", "length-correlated"):
    rows = [r for r in record["reward"] if r["set"] == reward_set]
    if not rows:
        print(f"the record holds no {reward_set} reward model yet")
        continue
    table = {}
    for n in ns:  # the mean over the reward models (seeds) of this set
        pairs = [best_of_n(record["samples"], r["sample_scores"], k, n) for r in rows]
        table[n] = tuple(sum(x) / len(pairs) for x in zip(*pairs))
    print(f"{reward_set} reward, mean over its reward models (seeds: {len(rows)}):")
    for n, (tokens, correct) in table.items():
        print(f"  best of {n}: {tokens:5.1f} tokens, {100 * correct:4.1f}% correct")
    print(f"  reward hacked: {reward_hacked(table)}")

# %% {"role": "check"}
ex.check_best_of_n(best_of_n, reward_hacked)

# %% [markdown] {"exercise": "quiz", "minutes": 5}
# ## Quiz: preferences, DPO and GRPO
#
# Answer each question with one of the choices in its parentheses. The sources:
# InstructGPT (Ouyang et al. 2022), DPO (Rafailov et al. 2023), GRPO (Shao et al.
# 2024), length and reward models (Singhal et al. 2023), constitutional AI (Bai et al.
# 2022).

# %%
answers = {
    "InstructGPT's step right before reinforcement learning with PPO"
    " (reward model/supervised fine-tuning/pre-training)": ...,
    "what InstructGPT adds to the reward so that the policy stays near the"
    " supervised model (KL penalty/value network/length penalty)": ...,
    "does DPO train a separate reward model (yes/no)": ...,
    "does DPO sample answers from the policy during training (yes/no)": ...,
    "what GRPO drops from PPO (value network/reward/KL penalty)": ...,
    "GRPO's baseline for a sampled answer (group mean/value estimate/zero)": ...,
    "the most common form of reward hacking in RLHF that Singhal et al. 2023"
    " measured (length/flattery/refusal)": ...,
    "where constitutional AI's feedback model gets its preferences"
    " (written principles/human rankings/length)": ...,
}
### BEGIN SOLUTION
answers = {
    "InstructGPT's step right before reinforcement learning with PPO"
    " (reward model/supervised fine-tuning/pre-training)": "reward model",
    "what InstructGPT adds to the reward so that the policy stays near the"
    " supervised model (KL penalty/value network/length penalty)": "KL penalty",
    "does DPO train a separate reward model (yes/no)": "no",
    "does DPO sample answers from the policy during training (yes/no)": "no",
    "what GRPO drops from PPO (value network/reward/KL penalty)": "value network",
    "GRPO's baseline for a sampled answer (group mean/value estimate/zero)":
        "group mean",
    "the most common form of reward hacking in RLHF that Singhal et al. 2023"
    " measured (length/flattery/refusal)": "length",
    "where constitutional AI's feedback model gets its preferences"
    " (written principles/human rankings/length)": "written principles",
}
### END SOLUTION

# %% {"role": "check"}
ex.check_alignment_quiz(answers)
