# %% [markdown]
# # Exercises: 5. Generation: decoding and sampling
#
# These exercises go with [chapter 5](../../chapters/05_sampling.ipynb). You write the three
# filters that turn a model's logits into a next-token distribution (temperature,
# top-k, top-p), measure how spread out a distribution is, and answer a short quiz.
# Each exercise ends with a check from `llmlab.exercises`: it runs your code on the
# example and on hidden edge cases, and says what is right and what is wrong.
#
# Write your code where it says `raise NotImplementedError` or `...`, run the cell,
# then run the check below it.

# %%
import torch

from llmlab import exercises as ex
from llmlab.device import seed_everything

seed_everything(0)
logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, -3.0])  # one row to try things on

# %% [markdown] {"exercise": "temperature", "minutes": 10}
# ## Temperature, then softmax
#
# A model gives one logit per token of the vocabulary. Sampling with temperature $T$
# draws from $\mathrm{softmax}(z / T)$. Write `probs_with_temperature(logits, temperature)`
# for logits of any shape `(..., V)`: it returns probabilities of the same shape, each
# row summing to 1, in any floating dtype. Use `torch.softmax`, and leave the caller's
# `logits` unchanged (no in-place division).

# %%
def probs_with_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Probabilities softmax(logits / temperature) over the last dimension."""
    ### BEGIN SOLUTION
    return torch.softmax(logits / temperature, dim=-1)
    ### END SOLUTION


# %% {"role": "try"}
for t in (0.5, 1.0, 2.0):
    print(f"T = {t}:", probs_with_temperature(logits, t))

# %% {"role": "check"}
ex.check_temperature(probs_with_temperature)

# %% [markdown] {"exercise": "top-k", "minutes": 10}
# ## Top-k from its definition
#
# Top-k keeps the $k$ largest logits of each row and sets the others to $-\infty$, so
# that their probability after the softmax is exactly 0. When several logits are equal
# to the $k$-th largest value, keep them all (this is what Hugging Face does).
# When `k` is larger than the vocabulary, keep every token (the check tests this).
# Hint: `torch.topk(logits, min(k, logits.size(-1)), dim=-1).values[..., -1:]` is the
# $k$-th largest value of each row (clamping `k` keeps `torch.topk` from failing).

# %%
def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Logits (..., V), all below each row's k-th largest value set to -inf."""
    ### BEGIN SOLUTION
    kth = torch.topk(logits, min(k, logits.size(-1)), dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))
    ### END SOLUTION


# %% {"role": "try"}
print(top_k_filter(logits, 2))

# %% {"role": "check"}
ex.check_top_k(top_k_filter)

# %% [markdown] {"exercise": "top-p", "minutes": 20}
# ## Top-p (nucleus) from its definition
#
# Top-p keeps the *smallest* set of most probable tokens whose probabilities add up to
# at least $p$ (Holtzman et al. 2020, "The Curious Case of Neural Text Degeneration").
# Sort the probabilities from largest to smallest, add them up, and keep tokens until
# the running sum reaches $p$; the token that crosses $p$ is kept. The most probable
# token always stays. Return the logits with the other tokens at $-\infty$.
#
# Hint: a token is in the nucleus when the probability mass of the tokens *before it*
# in the sorted order is below $p$ (strictly: a token whose mass before it is exactly
# $p$ stays out, as in Hugging Face). `torch.sort`, `cumsum` and `scatter` do the rest.
# With `p = 1` every token stays: rounding in the running sum must not drop the tail.

# %%
def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Logits (..., V) with every token outside the nucleus of mass p set to -inf."""
    ### BEGIN SOLUTION
    # the whole mass: nothing is cut (and no rounding in the running sum can cut
    # the tail)
    if p >= 1.0:
        return logits
    probs = torch.softmax(logits, dim=-1)
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
    # mass of the tokens ranked above each one
    before = sorted_probs.cumsum(dim=-1) - sorted_probs
    keep_sorted = before < p
    keep_sorted[..., 0] = True
    keep = keep_sorted.scatter(-1, order, keep_sorted)
    return logits.masked_fill(~keep, float("-inf"))
    ### END SOLUTION


# %% {"role": "try"}
print(top_p_filter(logits, 0.9))

# %% {"role": "check"}
ex.check_top_p(top_p_filter)

# %% [markdown]
# Your filter should keep the same tokens as Hugging Face's `TopPLogitsWarper`, which
# `model.generate(top_p=...)` uses. (When two tokens tie exactly at the cut, the two
# can differ in which of them is kept, so the check avoids exact ties for top-p.)

# %% {"role": "try"}
from transformers.generation.logits_process import TopPLogitsWarper

batch = torch.randn(4, 100) * 3
ours = top_p_filter(batch, 0.9)
theirs = TopPLogitsWarper(top_p=0.9)(None, batch.clone())
print("same tokens kept as Hugging Face:",
      torch.equal(torch.isfinite(ours), torch.isfinite(theirs)))

# %% [markdown] {"exercise": "entropy", "minutes": 10}
# ## How spread out is the distribution? Entropy in bits
#
# The entropy $H(p) = -\sum_i p_i \log_2 p_i$ counts, in bits, how uncertain the next
# token is: 0 for a sure choice, $\log_2 V$ for a uniform one over $V$ tokens. Tokens
# with probability 0 (filtered out) contribute nothing ($0 \log 0 = 0$). Write
# `entropy_bits(probs)` for rows on the last dimension, for probabilities in any
# floating dtype (float32 or float64); then see how temperature changes it.

# %%
def entropy_bits(probs: torch.Tensor) -> torch.Tensor:
    """Entropy in bits of each probability row (last dimension); 0 log 0 counts as 0."""
    ### BEGIN SOLUTION
    return -torch.special.xlogy(probs, probs).sum(dim=-1) / torch.log(torch.tensor(2.0))
    ### END SOLUTION


# %% {"role": "check"}
ex.check_entropy(entropy_bits)

# %% {"role": "try"}
for t in (0.25, 0.5, 1.0, 2.0, 4.0):
    h = entropy_bits(probs_with_temperature(logits, t)).item()
    most = torch.log2(torch.tensor(6.0)).item()
    print(f"T = {t:<4}  entropy = {h:.2f} bits (at most {most:.2f} for 6 tokens)")

# %% [markdown] {"exercise": "quiz", "minutes": 5}
# ## Quiz: inference parameters
#
# Answer each question in the dictionary. For the first, answer one of
# `"close to 0"`, `"1"` or `"large"`; for the last, `"yes"` or `"no"`; the others are numbers.

# %%
answers = {
    "temperature that makes sampling approach greedy decoding"
    " (close to 0, 1 or large)": ...,
    "top_k that disables the filter in Hugging Face": ...,
    "tokens kept by top_p=1.0 over a vocabulary of 1024": ...,
    "entropy in bits of a uniform distribution over 1024 tokens": ...,
    "is temperature a learned parameter (yes/no)": ...,
}
### BEGIN SOLUTION
answers = {
    "temperature that makes sampling approach greedy decoding"
    " (close to 0, 1 or large)": "close to 0",
    "top_k that disables the filter in Hugging Face": 0,
    "tokens kept by top_p=1.0 over a vocabulary of 1024": 1024,
    "entropy in bits of a uniform distribution over 1024 tokens": 10,
    "is temperature a learned parameter (yes/no)": "no",
}
### END SOLUTION

# %% {"role": "check"}
ex.check_sampling_quiz(answers)
