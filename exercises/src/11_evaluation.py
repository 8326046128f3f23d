# %% [markdown]
# # Exercises: 11. Evaluating language models
#
# These exercises go with [chapter 11](../../chapters/11_evaluation.ipynb). You score a
# multiple-choice option from a model's logits by hand, normalise that score by the
# option's length as `acc_norm` does, work out how many items a benchmark needs to
# resolve a difference, find test questions planted in training text by word n-gram
# overlap, and answer a short quiz. Each check runs your code on the example and on
# hidden cases and compares it with a reference the check computes itself.
#
# Write your code where it says `raise NotImplementedError` or `...`, run the cell,
# then run the check below it.

# %%
import math
from statistics import NormalDist

import torch

from llmlab import exercises as ex
from llmlab import zoo
from llmlab.device import seed_everything

seed_everything(0)
# the bundled tiny GPT-2 (no download)
model, tokenizer = zoo.load("stories-1m", device="cpu")

# %% [markdown] {"exercise": "logprob", "minutes": 15}
# ## Scoring one option from the logits
#
# A multiple-choice option is scored by how likely the model finds its tokens after the
# question: the sum of their log-probabilities (nats). One sequence holds the context's
# `n_context` tokens followed by the option's tokens `option_ids`, and the model's
# `(T, V)` logits for it are given. Write `option_logprob(logits, n_context, option_ids)`
# returning that sum as a float (a 0-dim tensor of any floating dtype is accepted too).
# The logits at position `t` predict the token at position `t + 1`, so the first option
# token is read from the context's last position. Use `torch.log_softmax`, and leave
# `logits` unchanged. The check tests an option of a single token and a context of a
# single token.

# %%
def option_logprob(logits: torch.Tensor, n_context: int,
                   option_ids: list[int]) -> float:
    """Summed log-probability of the option tokens after the first n_context."""
    ### BEGIN SOLUTION
    logp = torch.log_softmax(logits.double(), dim=-1)
    positions = torch.arange(n_context - 1, n_context - 1 + len(option_ids))
    return logp[positions, torch.tensor(option_ids)].sum().item()
    ### END SOLUTION


# %% {"role": "try"}
context = "Lily had a red ball. The ball was"
ctx_ids = tokenizer(context)["input_ids"]
for option in (" red", " blue"):
    opt_ids = tokenizer(option)["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ctx_ids + opt_ids])).logits[0]
    print(f"{option!r}: {option_logprob(logits, len(ctx_ids), opt_ids):.3f} nats")

# %% {"role": "check"}
ex.check_option_logprob(option_logprob)

# %% [markdown] {"exercise": "acc-norm", "minutes": 10}
# ## Normalised by length, as `acc_norm`
#
# A long option collects more negative terms than a short one. lm-evaluation-harness's
# `acc_norm` divides each option's summed log-probability by the option's length in
# characters (of the text `option` itself; not its tokens, words or UTF-8 bytes).
# Write `per_char_logprob(logits, n_context, option_ids, option)`: the score of the
# exercise above divided by `len(option)`. The check tests options with accented letters.

# %%
def per_char_logprob(logits: torch.Tensor, n_context: int, option_ids: list[int],
                     option: str) -> float:
    """The option's summed log-probability per character of its text."""
    ### BEGIN SOLUTION
    return option_logprob(logits, n_context, option_ids) / len(option)
    ### END SOLUTION


# %% {"role": "try"}
for option in (" red", " very blue"):
    opt_ids = tokenizer(option)["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ctx_ids + opt_ids])).logits[0]
    score = per_char_logprob(logits, len(ctx_ids), opt_ids, option)
    print(f"{option!r}: {score:.3f} nats per character")

# %% {"role": "check"}
ex.check_per_char_logprob(per_char_logprob)

# %% [markdown] {"exercise": "items", "minutes": 15}
# ## How many items a difference needs
#
# Chapter 11's `stats.detectable_difference(n, disagreement)` is the smallest accuracy
# difference $\delta$ (a fraction) that a paired test on $n$ items detects:
# $\delta = (z_{1-\alpha/2} + z_{\mathrm{power}}) \sqrt{d / n}$, where $d$ is the share
# of items on which the two methods disagree. Invert it: write
# `items_needed(disagreement, points, alpha, power)` returning the number of items $n$
# (an `int`, rounded up) for a difference of `points` accuracy points (`5` means
# `0.05`). The test is two-sided: $z_{1-\alpha/2}$ is
# `NormalDist().inv_cdf(1 - alpha / 2)`. The check also tries other levels and powers.

# %%
def items_needed(disagreement: float, points: float, alpha: float = 0.05,
                 power: float = 0.8) -> int:
    """Items a paired test at level alpha needs to detect `points` with `power`."""
    ### BEGIN SOLUTION
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    return math.ceil(z ** 2 * disagreement / (points / 100) ** 2)
    ### END SOLUTION


# %% {"role": "try"}
for d in (0.05, 0.2, 0.5):
    print(f"disagreement {d:.0%}: {items_needed(d, 5)} items for 5 points")

# %% {"role": "check"}
ex.check_items_needed(items_needed)

# %% [markdown] {"exercise": "contamination", "minutes": 20}
# ## Finding planted test questions
#
# A benchmark question that appears in the training text is contaminated. Write
# `contaminated(questions, documents, n, threshold)`: `questions` maps an id to a
# question, `documents` is a list of training documents. Lower-case every text and
# split it on whitespace (`text.lower().split()`); a question's word `n`-grams are its
# `len(words) - n + 1` windows of `n` consecutive words (a question shorter than `n`
# words has none and is never flagged). Return the set of ids whose share of n-gram
# windows found in the documents is at least `threshold`. An n-gram of the documents
# lies inside one document: none spans the end of one and the start of the next.
# The check tests a question of exactly `n` words, a share exactly at the threshold,
# and questions written in another case.

# %%
def contaminated(questions: dict[str, str], documents: list[str], n: int,
                 threshold: float) -> set[str]:
    """Ids of the questions whose word n-grams are found in the documents."""
    ### BEGIN SOLUTION
    def grams(text):
        words = text.lower().split()
        return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]

    seen = {g for doc in documents for g in grams(doc)}
    flagged = set()
    for key, question in questions.items():
        windows = grams(question)
        if windows and sum(g in seen for g in windows) / len(windows) >= threshold:
            flagged.add(key)
    return flagged
    ### END SOLUTION


# %% {"role": "try"}
questions = {"q1": "What gas do plants take in from the air?",
             "q2": "Which planet is closest to the sun?"}
documents = ["Notes. What gas do plants take in from the air? Carbon dioxide.",
             "The planet nearest the sun is Mercury."]
print(contaminated(questions, documents, 3, 0.5))

# %% {"role": "check"}
ex.check_contaminated(contaminated)

# %% [markdown] {"exercise": "quiz", "minutes": 5}
# ## Quiz: what the chapter measured
#
# Answer each question with one of the choices in its parentheses.

# %%
answers = {
    "the format a small model's multiple choice should be scored in"
    " (letter/text/chat)": ...,
    "a judge preferring the answer shown first, whatever it says"
    " (position bias/length bias/self-preference)": ...,
    "how many orders each pair is judged in to measure that bias (one/two)": ...,
    "does an item both methods get right help a paired test tell them apart"
    " (yes/no)": ...,
}
### BEGIN SOLUTION
answers = {
    "the format a small model's multiple choice should be scored in"
    " (letter/text/chat)": "text",
    "a judge preferring the answer shown first, whatever it says"
    " (position bias/length bias/self-preference)": "position bias",
    "how many orders each pair is judged in to measure that bias (one/two)": "two",
    "does an item both methods get right help a paired test tell them apart"
    " (yes/no)": "no",
}
### END SOLUTION

# %% {"role": "check"}
ex.check_evaluation_quiz(answers)
