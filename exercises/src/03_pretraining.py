# %% [markdown]
# # Exercises: 3. Pre-training a (tiny) language model
#
# These exercises go with [chapter 3](../../chapters/03_pretraining.ipynb). You clean a corpus
# (exact duplicates, then near duplicates by word shingles), write the causal
# language-modeling loss and turn losses into a perplexity. Each check runs your code
# on the example and on hidden edge cases and compares it with `llmlab` and with the
# loss Hugging Face's GPT-2 computes.
#
# Write your code where it says `raise NotImplementedError` or `...`, run the cell,
# then run the check below it.

# %%
import math
import unicodedata

import torch
import torch.nn.functional as F

from llmlab import exercises as ex
from llmlab.device import seed_everything

seed_everything(0)

# %% [markdown] {"exercise": "exact-dedup", "minutes": 10}
# ## Exact duplicates, after normalising
#
# Scraped text repeats itself: the same page under two addresses, with other spacing
# or capitals. Two documents are duplicates when their *normalised* texts are equal:
# Unicode NFKC (`unicodedata.normalize("NFKC", text)`, which turns full-width letters
# into ordinary ones), case-folded (`str.casefold`), runs of whitespace made one space,
# ends stripped. Write `exact_duplicates(docs)`: the indices of the documents equal to
# an *earlier* one (the first copy is kept), in increasing order.

# %%
def exact_duplicates(docs: list[str]) -> list[int]:
    """Indices of documents whose normalised text equals an earlier document's."""
    ### BEGIN SOLUTION
    seen, dupes = set(), []
    for i, doc in enumerate(docs):
        key = " ".join(unicodedata.normalize("NFKC", doc).casefold().split())
        if key in seen:
            dupes.append(i)
        seen.add(key)
    return dupes
    ### END SOLUTION


# %% {"role": "try"}
print(exact_duplicates(["A cat.", "a  cat.", "A dog.", "A cat."]))

# %% {"role": "check"}
ex.check_exact_duplicates(exact_duplicates)

# %% [markdown] {"exercise": "shingles", "minutes": 15}
# ## Near duplicates: word shingles and Jaccard similarity
#
# Near duplicates differ by a few words, so exact comparison misses them. Cut each
# normalised text into its set of word $n$-grams ("shingles"; a text shorter than $n$
# words is one shingle, the whole text), and compare two sets with the Jaccard
# similarity $|A \cap B| / |A \cup B|$ (1.0 for two empty sets). Write both functions;
# shingles may be strings (the $n$ words joined by spaces).

# %%
def word_shingles(text: str, n: int) -> set[str]:
    """The set of word n-grams of the normalised text."""
    ### BEGIN SOLUTION
    words = " ".join(unicodedata.normalize("NFKC", text).casefold().split()).split()
    return {" ".join(words[i:i + n]) for i in range(max(1, len(words) - n + 1))}
    ### END SOLUTION


def jaccard(a: set, b: set) -> float:
    """|a & b| / |a | b|, and 1.0 for two empty sets."""
    ### BEGIN SOLUTION
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)
    ### END SOLUTION


# %% {"role": "try"}
a = "the cat sat on the mat today"
b = "the cat sat on the mat yesterday"
# sorted: a set prints in an order that changes between runs
print(sorted(word_shingles(a, 3)))
print("Jaccard:", jaccard(word_shingles(a, 3), word_shingles(b, 3)))

# %% {"role": "check"}
ex.check_shingles_jaccard(word_shingles, jaccard)

# %% [markdown] {"exercise": "causal-loss", "minutes": 15}
# ## The causal language-modeling loss
#
# A causal LM predicts, at every position $t$, the token at $t + 1$. Given the model's
# logits `(B, T, V)` for token ids `(B, T)`, the loss is the mean cross-entropy (in
# nats) of the logits at positions $0 \dots T-2$ against the ids at $1 \dots T-1$.
# Write `causal_lm_loss(logits, input_ids)` with `F.cross_entropy`. The check also
# compares it with the loss a Hugging Face GPT-2 returns when given `labels=input_ids`.

# %%
def causal_lm_loss(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy in nats (a scalar tensor)."""
    ### BEGIN SOLUTION
    vocab = logits.size(-1)
    return F.cross_entropy(logits[:, :-1].reshape(-1, vocab),
                           input_ids[:, 1:].reshape(-1))
    ### END SOLUTION


# %% {"role": "try"}
logits = torch.randn(2, 6, 11)
ids = torch.randint(0, 11, (2, 6))
print("loss:", causal_lm_loss(logits, ids).item(),
      "nats; a uniform guess scores", math.log(11))

# %% {"role": "check"}
ex.check_causal_lm_loss(causal_lm_loss)

# %% [markdown] {"exercise": "perplexity", "minutes": 10}
# ## Perplexity from batch losses
#
# Perplexity is $\exp$ of the mean loss per token (in nats): the number of equally
# likely tokens the model is choosing between, on average. An evaluation loop often
# gives one mean loss per batch, and batches hold different numbers of tokens. Write
# `perplexity(batch_losses, batch_tokens)` that gives every *token* the same weight.

# %%
def perplexity(batch_losses: list[float], batch_tokens: list[int]) -> float:
    """exp of the token-weighted mean of per-batch mean losses (nats per token)."""
    ### BEGIN SOLUTION
    total = sum(loss * n for loss, n in zip(batch_losses, batch_tokens))
    return math.exp(total / sum(batch_tokens))
    ### END SOLUTION


# %% {"role": "try"}
print(perplexity([2.0, 2.5], [100, 100]))

# %% {"role": "check"}
ex.check_perplexity(perplexity)

# %% {"role": "solution-only"}
# The bundled model's perplexity on a few stories, from our loss and our perplexity.
from llmlab import data, zoo

model, tokenizer = zoo.load("stories-1m", device="cpu")
stories = data.load_corpus("validation")[:8]
losses, tokens = [], []
with torch.no_grad():
    for story in stories:
        ids = tokenizer(story, return_tensors="pt").input_ids[:, :128]
        losses.append(causal_lm_loss(model(input_ids=ids).logits, ids).item())
        tokens.append(ids.size(1) - 1)
print(f"perplexity of stories-1m on {len(stories)} stories: "
      f"{perplexity(losses, tokens):.1f} "
      f"(vocabulary: {len(tokenizer)} tokens)")
