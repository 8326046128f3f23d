"""A small Llama, shaped like SmolLM2, for chapter 7's tensor- and pipeline-parallel runs.

The blocks are :class:`llmlab.llama.LlamaBlock` (chapter 2: RMSNorm, rotary positions,
SwiGLU, grouped-query attention), stacked as in Hugging Face's ``LlamaForCausalLM``:
token embeddings, the blocks, a final RMSNorm and an output projection that is *not*
tied to the embeddings (so that a pipeline can put the two on different ranks). The
submodules carry Hugging Face's names without the ``model.`` prefix, so
:meth:`TinyLlama.from_hf` loads a ``LlamaForCausalLM``'s weights as they are;
``tests/test_tinyllama.py`` checks that both compute the same logits.

A pipeline stage is the same class with parts removed: :meth:`TinyLlama.keep` keeps a
range of blocks and drops the embeddings or the head, and :meth:`forward` skips what is
missing (the layout of the PyTorch pipelining tutorial). Shapes: B batch, T positions,
C width, V vocabulary.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from . import _checks
from .llama import LlamaBlock, RMSNorm, rope_theta
from .tinygpt2 import lm_loss  # noqa: F401 (one loss for both plain-torch models; the ranks import it here)


@dataclass(frozen=True)
class TinyLlamaConfig:
    """Hugging Face ``LlamaConfig`` field names. The default keeps SmolLM2-135M's proportions
    (head width 64 there, 16 here; 3 query heads per key-value head there, 2 here so that
    4 tensor-parallel ranks divide the key-value heads; MLP 2.67x the width) at 4 layers of width 128."""

    vocab_size: int = 1024
    hidden_size: int = 128
    intermediate_size: int = 344
    num_hidden_layers: int = 4
    num_attention_heads: int = 8
    num_key_value_heads: int = 4
    head_dim: int = 16
    max_position_embeddings: int = 256
    rms_norm_eps: float = 1e-5
    rope_theta: float = 100000.0  # SmolLM2's
    tie_word_embeddings: bool = False

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                     "num_key_value_heads", "head_dim", "max_position_embeddings"):
            _checks.positive_int(name, getattr(self, name))
        _checks.positive("rms_norm_eps", self.rms_norm_eps)
        _checks.number("rope_theta", self.rope_theta, low=1.0, low_open=True)
        if not isinstance(self.tie_word_embeddings, bool):
            raise _checks.ArgumentTypeError(f"tie_word_embeddings must be a bool, got {self.tie_word_embeddings!r}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(f"num_attention_heads must be a multiple of num_key_value_heads, got "
                             f"{self.num_attention_heads} and {self.num_key_value_heads}")

    def to_hf(self):
        """The same settings as a ``transformers.LlamaConfig`` (eager attention, no biases)."""
        from transformers import LlamaConfig

        return LlamaConfig(**asdict(self), attn_implementation="eager", bos_token_id=0, eos_token_id=0)


#: SmolLM2-135M's shape (Allal et al. 2025; llmlab.zoo's real model), for comparison
SMOLLM2_135M = TinyLlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                               num_attention_heads=9, num_key_value_heads=3, head_dim=64,
                               max_position_embeddings=8192, tie_word_embeddings=True)


def llama_config(llama: dict | None = None) -> TinyLlamaConfig:
    """The default :class:`TinyLlamaConfig` with the entries of ``llama`` changed (chapter 7's Llama runs)."""
    from dataclasses import fields

    if llama is not None and not isinstance(llama, dict):
        raise _checks.ArgumentTypeError(f"llama must be a dict of TinyLlamaConfig fields or None, "
                                        f"got {type(llama).__name__} {llama!r}")
    allowed = {f.name for f in fields(TinyLlamaConfig)} - {"tie_word_embeddings"}
    unknown = set(llama or {}) - allowed
    if unknown:
        raise ValueError(f"unknown llama settings {sorted(unknown)}; allowed: {sorted(allowed)}")
    return TinyLlamaConfig(**(llama or {}))


class TinyLlama(nn.Module):
    """Llama decoder: embeddings -> LlamaBlocks -> RMSNorm -> output projection (untied)."""

    def __init__(self, config: TinyLlamaConfig) -> None:
        super().__init__()
        if not isinstance(config, TinyLlamaConfig):
            raise TypeError(f"config must be a TinyLlamaConfig, got {type(config).__name__}")
        if config.tie_word_embeddings:
            raise ValueError("TinyLlama keeps the output projection untied (tie_word_embeddings=False)")
        self.config = config
        self.embed_tokens: nn.Embedding | None = nn.Embedding(config.vocab_size, config.hidden_size)
        # a dict keyed "0", "1", ...: the names stay those of the whole model when a stage drops blocks
        self.layers = nn.ModuleDict({str(i): LlamaBlock(config) for i in range(config.num_hidden_layers)})
        self.norm: RMSNorm | None = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.lm_head: nn.Linear | None = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        for name, p in self.named_parameters():  # Llama's initialisation: normal(0, 0.02), norms at 1
            if "norm" not in name:
                nn.init.normal_(p, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Token ids (B, T) -> logits (B, T, V); a stage without embeddings takes (B, T, C) and one
        without the head returns (B, T, C)."""
        h = self.embed_tokens(x) if self.embed_tokens is not None else x   # (B, T, C)
        for block in self.layers.values():
            h = block(h)
        h = self.norm(h) if self.norm is not None else h
        return self.lm_head(h) if self.lm_head is not None else h         # (B, T, V)

    def keep(self, first: int, last: int) -> TinyLlama:
        """This model cut down to blocks ``first`` .. ``last - 1``, the embeddings only if ``first == 0``
        and the final norm and head only if ``last`` is the number of blocks (a pipeline stage)."""
        n = self.config.num_hidden_layers
        if not (0 <= first < last <= n):
            raise ValueError(f"need 0 <= first < last <= {n}, got first={first}, last={last}")
        for i in list(self.layers):
            if not first <= int(i) < last:
                del self.layers[i]
        if first > 0:
            self.embed_tokens = None
        if last < n:
            self.norm = self.lm_head = None
        return self

    @classmethod
    def from_hf(cls, hf_model: nn.Module) -> TinyLlama:
        """A copy of a Hugging Face ``LlamaForCausalLM`` with untied embeddings (same weights)."""
        c = hf_model.config
        config = TinyLlamaConfig(vocab_size=c.vocab_size, hidden_size=c.hidden_size,
                                 intermediate_size=c.intermediate_size, num_hidden_layers=c.num_hidden_layers,
                                 num_attention_heads=c.num_attention_heads,
                                 num_key_value_heads=c.num_key_value_heads,
                                 head_dim=getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads,
                                 max_position_embeddings=c.max_position_embeddings, rms_norm_eps=c.rms_norm_eps,
                                 rope_theta=rope_theta(c), tie_word_embeddings=bool(c.tie_word_embeddings))
        with torch.device("meta"):
            model = cls(config)
        state = {k.removeprefix("model."): v.detach().clone() for k, v in hf_model.state_dict().items()}
        model.load_state_dict(state, assign=True)
        return model
