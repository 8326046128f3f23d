# %% [markdown]
# # Exercises: 9. Pre-training for domain adaptation
#
# These exercises go with [chapter 9](../../chapters/09_domain_adaptation.ipynb). You
# measure how badly a general tokenizer fits specialist text, how much of a training
# mix is domain text when counted in tokens, and how many domain documents a target
# mix needs. Each check runs your code on the example and on hidden cases and compares
# it with `llmlab.domain`.
#
# Write your code where it says `raise NotImplementedError` or `...`, run the cell,
# then run the check below it.

# %%
from llmlab import exercises as ex
from llmlab import zoo
from llmlab.data import load_corpus
from llmlab.domain import load_domain_corpus

# a tokenizer trained on children's stories only
_, tokenizer = zoo.load("stories-1m", device="cpu")
legal = load_domain_corpus("validation", "legal")[:5]
stories = load_corpus("validation")[:5]

# %% [markdown] {"exercise": "fertility", "minutes": 10}
# ## Fertility: tokens per word
#
# A tokenizer trained on general text splits the rare words of a specialist domain
# into many short pieces. Fertility measures it: the number of tokens divided by the
# number of words (split at whitespace), pooled over all the texts. Count tokens with
# `tokenizer(text, add_special_tokens=False)["input_ids"]`.

# %%
def fertility(tokenizer, texts: list[str]) -> float:
    """Tokens per whitespace-separated word, pooled over ``texts``."""
    ### BEGIN SOLUTION
    tokens = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"])
                 for t in texts)
    words = sum(len(t.split()) for t in texts)
    return tokens / words
    ### END SOLUTION


# %% {"role": "try"}
print(f"legal text: {fertility(tokenizer, legal):.2f} tokens per word; "
      f"stories: {fertility(tokenizer, stories):.2f}")

# %% {"role": "check"}
ex.check_fertility(fertility, tokenizer)

# %% [markdown] {"exercise": "share", "minutes": 10}
# ## The share of domain tokens in a mix
#
# A training mix is described by the share of its *tokens* that are domain text
# (BloombergGPT: about 51 % financial, Wu et al. 2023, "BloombergGPT: A Large Language
# Model for Finance"). Write `token_share(tokenizer, domain_docs, general_docs)`.

# %%
def token_share(tokenizer, domain_docs: list[str], general_docs: list[str]) -> float:
    """Domain tokens divided by all tokens of the two lists together."""
    ### BEGIN SOLUTION
    def count(docs: list[str]) -> int:
        return sum(len(tokenizer(d, add_special_tokens=False)["input_ids"])
                   for d in docs)

    n_domain, n_general = count(domain_docs), count(general_docs)
    return n_domain / (n_domain + n_general)
    ### END SOLUTION


# %% {"role": "try"}
share = token_share(tokenizer, legal, stories)
print(f"5 legal documents and 5 stories: {share:.1%} of the tokens are legal")

# %% {"role": "check"}
ex.check_token_share(token_share, tokenizer)

# %% [markdown] {"exercise": "mix", "minutes": 10}
# ## How many domain documents for a target share?
#
# Domain documents and general documents differ in length, so a share of documents is
# not a share of tokens. With $t_d$ tokens per domain document, $t_g$ per general
# document and $n$ documents in all, how many domain documents $x$ give a share $s$ of
# domain tokens, $x t_d / (x t_d + (n - x) t_g) = s$? Solve for $x$ (a real number is
# fine).

# %%
def docs_for_share(target_share: float, domain_tokens_per_doc: float,
                   general_tokens_per_doc: float, n_docs: int) -> float:
    """Number of domain documents (of n_docs) whose tokens are target_share of all."""
    ### BEGIN SOLUTION
    s, td, tg = target_share, domain_tokens_per_doc, general_tokens_per_doc
    return s * n_docs * tg / (td * (1 - s) + s * tg)
    ### END SOLUTION


# %% {"role": "try"}
print(f"{docs_for_share(0.51, 120, 80, 1000):.1f} domain documents of 1000")

# %% {"role": "check"}
ex.check_docs_for_share(docs_for_share)

# %% [markdown] {"exercise": "quiz", "minutes": 5}
# ## Quiz: domain adaptation
#
# Answer with `"up"` or `"down"`, a number, and one of `"general performance"`,
# `"training speed"` or `"tokenizer size"`.

# %%
answers = {
    "a general tokenizer on specialist text: fertility goes (up or down)": ...,
    "share of financial tokens in BloombergGPT's training data,"
    " in percent (nearest integer)": ...,
    "what mixing general text into domain training protects"
    " (general performance, training speed or tokenizer size)": ...,
}
### BEGIN SOLUTION
answers = {
    "a general tokenizer on specialist text: fertility goes (up or down)": "up",
    "share of financial tokens in BloombergGPT's training data,"
    " in percent (nearest integer)": 51,
    "what mixing general text into domain training protects"
    " (general performance, training speed or tokenizer size)": "general performance",
}
### END SOLUTION

# %% {"role": "check"}
ex.check_domain_quiz(answers)
