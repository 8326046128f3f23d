# %% [markdown]
# # Exercises: 4. Prompting and in-context learning
#
# These exercises go with [chapter 4](../../chapters/04_prompting.ipynb). You build a
# few-shot prompt, fit as many examples as the context window allows, score a label by
# its log-probability after the prompt, put an honest error bar on a measured
# accuracy, flip the labels of demonstrations and calibrate a biased prompt. Each check runs your code on the example and on hidden edge cases and
# compares it with `llmlab.icl`.
#
# Write your code where it says `raise NotImplementedError` or `...`, run the cell,
# then run the check below it.

# %%
import math

import torch

from llmlab import exercises as ex
from llmlab import zoo
from llmlab.device import seed_everything

seed_everything(0)
# the bundled tiny GPT-2 (no download)
model, tokenizer = zoo.load("stories-1m", device="cpu")
examples = [("The soup was warm and the staff were kind.", "positive"),
            ("The room was cold and the bed was broken.", "negative"),
            ("A lovely walk by the river with friends.", "positive"),
            ("The train was late again and nobody said sorry.", "negative")]

# %% [markdown] {"exercise": "prompt", "minutes": 10}
# ## A few-shot prompt
#
# A few-shot prompt shows the model $k$ solved examples (demonstrations) before the
# query, so that it continues the pattern. Write `few_shot_prompt(query, examples, k)`:
# the first `k` examples, each written as `"Classify this review: {text}\nSentiment: {label}"`
# and followed by a blank line (`"\n\n"`), then the query written as
# `"Classify this review: {query}\nSentiment:"`. The prompt ends right after
# `Sentiment:`, with no space: the model's next token should be `" positive"` or
# `" negative"`, and GPT-2's tokenizer attaches the space to the word after it.

# %%
def few_shot_prompt(query: str, examples: list[tuple[str, str]], k: int) -> str:
    """The first k (text, label) examples, then the query, in the review template."""
    ### BEGIN SOLUTION
    shots = "".join(f"Classify this review: {text}\nSentiment: {label}\n\n"
                    for text, label in examples[:k])
    return shots + f"Classify this review: {query}\nSentiment:"
    ### END SOLUTION


# %% {"role": "try"}
print(few_shot_prompt("The tea was cold.", examples, 2))

# %% {"role": "check"}
ex.check_few_shot_prompt(few_shot_prompt)

# %% [markdown] {"exercise": "max-shots", "minutes": 15}
# ## As many examples as the window holds
#
# The examples, the query and the answer share the context window. Write
# `max_shots(tokenizer, query, examples, window, labels)`: the largest $k$ (examples
# taken in order) such that the tokens of the $k$-shot prompt plus the tokens of the
# longest label, with its leading space, fit in `window` tokens (an exact fit counts).
# Count tokens with `len(tokenizer(text)["input_ids"])`.

# %%
def max_shots(tokenizer, query: str, examples: list[tuple[str, str]], window: int,
              labels: list[str]) -> int:
    """The most examples whose prompt plus the longest label fit in ``window``."""
    ### BEGIN SOLUTION
    def n_tokens(text: str) -> int:
        return len(tokenizer(text)["input_ids"])

    answer = max(n_tokens(" " + label) for label in labels)
    best = -1
    for k in range(len(examples) + 1):
        if n_tokens(few_shot_prompt(query, examples, k)) + answer > window:
            break
        best = k
    return best
    ### END SOLUTION


# %% {"role": "try"}
fit = max_shots(tokenizer, "The tea was cold.", examples, 128, ["positive", "negative"])
print("examples that fit in 128 tokens:", fit)

# %% {"role": "check"}
ex.check_max_shots(max_shots, tokenizer)

# %% [markdown] {"exercise": "score", "minutes": 15}
# ## Scoring a label
#
# To read a model's answer without generating free text, compare the log-probability
# of each candidate label right after the prompt and take the largest. Write
# `label_log_prob(model, tokenizer, prompt, label)`: tokenize `prompt + " " + label`,
# run the model once, and add up the log-probabilities (`torch.log_softmax`) of the
# label's tokens, each read from the logits at the position *before* it.

# %%
@torch.no_grad()
def label_log_prob(model, tokenizer, prompt: str, label: str) -> float:
    """Sum of the log-probabilities (nats) of the tokens of " " + label after prompt."""
    ### BEGIN SOLUTION
    n_prompt = len(tokenizer(prompt)["input_ids"])
    ids = tokenizer(prompt + " " + label, return_tensors="pt")["input_ids"]
    logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
    targets = ids[0, n_prompt:]
    return logp[n_prompt - 1:-1].gather(1, targets[:, None]).sum().item()
    ### END SOLUTION


# %% {"role": "try"}
prompt = "Once upon a time there was a little"
print({word: round(label_log_prob(model, tokenizer, prompt, word), 2)
       for word in ("girl", "boy", "car")})

# %% {"role": "check"}
ex.check_label_log_prob(label_log_prob, model, tokenizer)

# %% [markdown] {"exercise": "wilson", "minutes": 10}
# ## An error bar for an accuracy
#
# An accuracy measured on $n$ examples is uncertain. The Wilson score interval
# (Wilson 1927, "Probable Inference, the Law of Succession, and Statistical Inference")
# behaves well even at 0 % or 100 %: with $\hat p = k/n$ and $z = 1.96$ for 95 %,
# the centre is $(\hat p + z^2/2n) / (1 + z^2/n)$ and the half-width
# $z \sqrt{\hat p(1-\hat p)/n + z^2/4n^2} / (1 + z^2/n)$. Write `wilson(successes, n)`.

# %%
def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval (low, high) of the proportion successes / n."""
    ### BEGIN SOLUTION
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
    ### END SOLUTION


# %% {"role": "try"}
print("150 of 200 right:", wilson(150, 200))

# %% {"role": "check"}
ex.check_wilson_interval(wilson)

# %% [markdown] {"exercise": "flip-calibrate", "minutes": 15}
# ## Flipped labels and contextual calibration
#
# Two tools of chapter 4's real-model half. First, Wei et al. (2023) test whether a model follows its demonstrations or its prior by
# giving every demonstration the wrong label. Write `flip_labels(demos, labels)`: the
# same (text, label) pairs in the same order, each label replaced by the other word of
# the pair `labels` (for example `("positive", "negative")`).

# %%
def flip_labels(demos: list[tuple[str, str]],
                labels: tuple[str, str]) -> list[tuple[str, str]]:
    """The demonstrations with each of the two labels swapped for the other."""
    ### BEGIN SOLUTION
    return [(text, labels[1] if label == labels[0] else labels[0])
            for text, label in demos]
    ### END SOLUTION


# %% {"role": "try"}
print(flip_labels(examples, ("positive", "negative")))

# %% [markdown]
# Second, a prompt can favour one label whatever the query (for example when most of its
# examples carry that label). Zhao et al. (2021) estimate that bias by scoring the
# labels after a content-free query such as `"N/A"`, then divide it out. Write
# `calibrate(scores, content_free)`: `scores` are log-probabilities of the labels,
# shape (prompts, labels), `content_free` those after `"N/A"`, shape (labels,).
# Normalise both over the labels, divide each probability by its content-free
# probability (subtract the log-probabilities), and renormalise each row; return
# log-probabilities of shape (prompts, labels), leaving `scores` and `content_free`
# unchanged.

# %%
def calibrate(scores: torch.Tensor, content_free: torch.Tensor) -> torch.Tensor:
    """Log of normalise(p / p_cf), row by row."""
    ### BEGIN SOLUTION
    p = torch.log_softmax(scores, -1)
    p_cf = torch.log_softmax(content_free, -1)
    return torch.log_softmax(p - p_cf, -1)
    ### END SOLUTION


# %% {"role": "try"}
# label 0 wins both, but the prompt adds 2 nats to it
biased = torch.tensor([[2.0, 0.0], [1.5, 0.5]])
print(calibrate(biased, torch.tensor([2.0, 0.0])).exp())

# %% {"role": "check"}
ex.check_flip_and_calibrate(flip_labels, calibrate)

# %% [markdown] {"exercise": "quiz", "minutes": 5}
# ## Quiz: in-context learning
#
# Answer with `"yes"` or `"no"`, one of `"zero-shot"`, `"one-shot"` or `"few-shot"`,
# two words, and a number.

# %%
answers = {
    "does in-context learning change the model's weights (yes/no)": ...,
    "name of a prompt with no solved examples (zero-shot, one-shot or few-shot)": ...,
    "what limits how many examples a prompt can hold": ...,
    "accuracy of always answering the more common of two balanced labels"
    " (a number between 0 and 1)": ...,
}
### BEGIN SOLUTION
answers = {
    "does in-context learning change the model's weights (yes/no)": "no",
    "name of a prompt with no solved examples (zero-shot, one-shot or few-shot)":
        "zero-shot",
    "what limits how many examples a prompt can hold": "context window",
    "accuracy of always answering the more common of two balanced labels"
    " (a number between 0 and 1)": 0.5,
}
### END SOLUTION

# %% {"role": "check"}
ex.check_icl_quiz(answers)
