"""GPT-2 in plain torch, the model of chapter 7's distributed runs (nanoGPT-style, one short file).

``TinyGPT2`` has the layout of Hugging Face's ``GPT2LMHeadModel`` (tied input and output
embeddings, learned positions, pre-norm blocks, GELU MLP) with ``nn.Linear`` in place of its
transposed ``Conv1D``; ``tests/test_distributed.py`` checks that both compute the same logits.
The distributed workers build it instead of importing transformers, which takes seconds per
process. Shapes in comments: B batch, T positions, C width, h heads, V vocabulary.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import _checks

#: the bundled stories-1m GPT-2 (llmlab/models/stories-1m/config.json): 0.96 M parameters; the
#: default shape of chapter 7's data-parallel runs
STORIES_1M = dict(vocab_size=1024, n_positions=256, n_embd=128, n_layer=4, n_head=4, n_inner=512)


def _check_shape(**sizes) -> None:
    """Every size a positive int, and the width ``n_embd`` a multiple of ``n_head``."""
    for name, value in sizes.items():
        _checks.positive_int(name, value)
    if sizes["n_embd"] % sizes["n_head"]:
        raise ValueError(f"n_head must divide n_embd ({sizes['n_embd']}) into equal heads, got {sizes['n_head']}")


class Block(nn.Module):
    """One GPT-2 block: pre-norm attention, then an MLP (GELU), each with a residual."""

    def __init__(self, d: int, n_head: int, d_ff: int, eps: float) -> None:
        super().__init__()
        self.n_head = n_head
        self.ln_1 = nn.LayerNorm(d, eps=eps)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d, eps=eps)
        self.fc = nn.Linear(d, d_ff)
        self.fc_out = nn.Linear(d_ff, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C) -> (B, T, C)."""
        B, T, C = x.shape
        h = self.n_head
        q, k, v = self.qkv(self.ln_1(x)).split(C, dim=-1)  # (B, T, C) each
        # split the width into h heads: (B, h, T, C/h) each
        q, k, v = (t.view(B, T, h, C // h).transpose(1, 2) for t in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, h, T, C/h)
        x = x + self.proj(a.transpose(1, 2).reshape(B, T, C))  # residual: add to x
        mlp = self.fc_out(F.gelu(self.fc(self.ln_2(x)), approximate="tanh"))  # each token
        return x + mlp  # residual


class TinyGPT2(nn.Module):
    """GPT-2 in plain torch (tied input and output embeddings), the layout of Hugging Face's
    ``GPT2LMHeadModel`` with ``nn.Linear`` in place of its transposed ``Conv1D``. Workers
    build it instead of importing transformers, which takes seconds per process."""

    def __init__(self, vocab_size: int, n_positions: int, n_embd: int, n_layer: int, n_head: int,
                 n_inner: int | None = None, layer_norm_epsilon: float = 1e-5) -> None:
        _check_shape(vocab_size=vocab_size, n_positions=n_positions, n_embd=n_embd, n_layer=n_layer, n_head=n_head)
        if n_inner is not None:
            _checks.positive_int("n_inner", n_inner)
        _checks.positive("layer_norm_epsilon", layer_norm_epsilon)
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(n_positions, n_embd)
        self.h = nn.ModuleList(Block(n_embd, n_head, n_inner or 4 * n_embd, layer_norm_epsilon)
                               for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd, eps=layer_norm_epsilon)
        for m in self.modules():  # GPT-2's initialisation
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V) for token ids ``idx`` (B, T)."""
        pos = torch.arange(idx.size(1), device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        return F.linear(self.ln_f(x), self.wte.weight)  # tied output layer


def lm_loss(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy (nats) of a (B, T+1) batch of token ids, for a model that
    returns logits (this module's GPT-2 and :class:`llmlab.tinyllama.TinyLlama`)."""
    if not isinstance(model, nn.Module):
        raise _checks.ArgumentTypeError(f"model must be a torch.nn.Module that returns logits, got {type(model).__name__}")
    batch = _checks.tensor("batch", batch, dims=2)
    _checks.token_ids("batch", batch, None)
    if batch.size(1) < 2:
        raise ValueError(f"batch must hold at least 2 tokens per row (inputs and their next tokens), got shape "
                         f"{tuple(batch.shape)}")
    logits = model(batch[:, :-1])
    return F.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten())
