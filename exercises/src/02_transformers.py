# %% [markdown]
# # Exercises: 2. How transformers work
#
# These exercises go with chapter 2, mostly its first page,
# [2.1 Attention and the transformer block](../../chapters/02_transformers.ipynb); the
# quiz goes with the second,
# [2.2 Three families and what they are for](../../chapters/02b_transformer_families.ipynb).
# You build the pieces of self-attention from scratch (the causal mask, scaled dot-product
# attention with a mask, sinusoidal positions) and answer a quiz on the three families
# of transformer. Each check runs your code on the example and on hidden edge cases
# (batches, several heads, other sizes) and compares it with PyTorch.
#
# Write your code where it says `raise NotImplementedError` or `...`, run the cell,
# then run the check below it.

# %%
import math

import torch

from llmlab import exercises as ex
from llmlab.device import seed_everything

seed_everything(0)

# %% [markdown] {"exercise": "causal-mask", "minutes": 5}
# ## The causal mask
#
# A decoder predicts each token from the tokens before it, so query $i$ may attend to
# keys $0 \dots i$ only. Write `causal_mask(t)`: a `(t, t)` boolean tensor, `True`
# where query $i$ (row) may attend to key $j$ (column).

# %%
def causal_mask(t: int) -> torch.Tensor:
    """(t, t) bool: True where key j <= query i."""
    ### BEGIN SOLUTION
    return torch.ones(t, t, dtype=torch.bool).tril()
    ### END SOLUTION


# %% {"role": "try"}
print(causal_mask(4))

# %% {"role": "check"}
ex.check_causal_mask(causal_mask)

# %% [markdown] {"exercise": "attention", "minutes": 20}
# ## Scaled dot-product attention, with a mask
#
# Attention (Vaswani et al. 2017, "Attention Is All You Need") mixes the values $V$
# with weights $\mathrm{softmax}(Q K^\top / \sqrt{d})$, one row of weights per query,
# where $d$ is the size of a query and key vector. A boolean `mask` (True = may attend)
# rules keys out by setting their scores to $-\infty$ before the softmax.
#
# Write `attention(q, k, v, mask=None) -> (output, weights)` for `q` of shape
# `(..., T_q, d)`, `k` of shape `(..., T_k, d)` and `v` of shape `(..., T_k, d_v)`; the
# leading dimensions (batch, heads) are any. The check compares it with
# `torch.nn.functional.scaled_dot_product_attention`.

# %%
def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
              mask: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T / sqrt(d), masked) @ v.

    Returns (output (..., T_q, d_v), weights (..., T_q, T_k)).
    """
    ### BEGIN SOLUTION
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights
    ### END SOLUTION


# %% {"role": "try"}
x = torch.randn(4, 8)  # 4 tokens, vectors of size 8
# self-attention: x is the queries, the keys and the values
out, weights = attention(x, x, x, causal_mask(4))
print(weights)

# %% {"role": "check"}
ex.check_attention(attention)

# %% [markdown] {"exercise": "positions", "minutes": 15}
# ## Sinusoidal positional encoding
#
# Attention alone does not see word order. The original transformer (Vaswani et al. 2017) adds to each
# token's embedding a vector that depends on its position $pos$: for column pair $i$
# (columns $2i$ and $2i+1$), $\sin(pos / 10000^{2i/d})$ and $\cos(pos / 10000^{2i/d})$.
# Write `positional_encoding(n_positions, d_model)`, a float tensor of shape
# `(n_positions, d_model)` ($d$ is even), whose row $pos$ is position $pos$, counted from
# `pos = 0`.

# %%
def positional_encoding(n_positions: int, d_model: int) -> torch.Tensor:
    """(n_positions, d_model): sin in even columns, cos in odd columns."""
    ### BEGIN SOLUTION
    pos = torch.arange(n_positions, dtype=torch.float32)[:, None]
    freq = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float32) / d_model)
    pe = torch.zeros(n_positions, d_model)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)
    return pe
    ### END SOLUTION


# %% {"role": "check"}
ex.check_positional_encoding(positional_encoding)

# %% {"role": "solution-only"}
# Nearby positions get similar vectors; the similarity falls off with distance.
pe = positional_encoding(64, 32)
print("dot product of position 10 with positions 10, 11, 15, 40:",
      [round((pe[10] @ pe[j]).item(), 2) for j in (10, 11, 15, 40)])

# %% [markdown] {"exercise": "families", "minutes": 5}
# ## Quiz: three families of transformer
#
# Answer the objectives with one of `"masked"`, `"causal"` or `"span corruption"`; the
# family with one of `"encoder-only"`, `"decoder-only"` or `"encoder-decoder"`; the last
# question with a number.

# %%
answers = {
    "BERT objective": ...,
    "GPT objective": ...,
    "T5 objective": ...,
    "family for open-ended generation": ...,
    "attention weights in one layer of 12 heads over 100 tokens": ...,
}
### BEGIN SOLUTION
answers = {
    "BERT objective": "masked",
    "GPT objective": "causal",
    "T5 objective": "span corruption",
    "family for open-ended generation": "decoder-only",
    "attention weights in one layer of 12 heads over 100 tokens": 12 * 100 * 100,
}
### END SOLUTION

# %% {"role": "check"}
ex.check_families_quiz(answers)
