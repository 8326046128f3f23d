"""Training memory measured, not summed: the calculator next to a real step's peak (chapter 6).

:func:`llmlab.memory.training_memory` predicts bytes by adding model states and
activations. :func:`step_peak` runs real AdamW training steps of a model and measures,
with :func:`llmlab.peak.measure`, the most bytes torch held during the last one, split
by what the bytes were (parameters, gradients, optimizer state, activations,
temporaries) at that moment. :func:`compare` sets the two side by side.

The first step of AdamW is special: the optimizer creates its two state tensors per
parameter only then, after the backward pass has freed the activations. From the second
step on they exist for the whole step, so :func:`step_peak` measures step ``steps``
(2 by default), the steady state a long run lives in.
"""

from __future__ import annotations

import copy
import time

import torch
from torch import nn

from . import _checks, memory, peak, train

PARTS = ("parameters", "gradients", "optimizer_state", "activations", "temporary", "autograd_detail", "inputs",
         "other")


def model_shape(model: nn.Module) -> dict:
    """Layers, width, heads and vocabulary of a GPT-2 or Llama model from its config."""
    _checks.model("model", model)
    c = getattr(model, "config", None)
    if c is None:
        raise TypeError(f"model must be a transformers model with a config, got {type(model).__name__}")
    get = lambda *names: next(getattr(c, n) for n in names if getattr(c, n, None) is not None)  # noqa: E731
    return {"n_layers": get("num_hidden_layers", "n_layer"), "hidden": get("hidden_size", "n_embd"),
            "n_heads": get("num_attention_heads", "n_head"), "vocab_size": c.vocab_size}


def step_peak(model: nn.Module, batch: torch.Tensor, steps: int = 2, lr: float = 1e-4) -> peak.PeakMemory:
    """Train a copy of ``model`` on ``batch`` (b, s + 1 token ids) for ``steps`` AdamW steps; the last step's peak.

    One step is forward, causal-LM loss, backward, ``optimizer.step()`` and
    ``zero_grad()`` (which frees the gradients, PyTorch's default). ``model`` itself is
    not changed.
    """
    _checks.model("model", model)
    batch = _checks.tensor("batch", batch, dims=2)
    steps = _checks.positive_int("steps", steps)
    m = copy.deepcopy(model).train()
    opt = torch.optim.AdamW(m.parameters(), lr=lr)
    x, y = batch[:, :-1], batch[:, 1:]

    def one_step():
        loss = train.causal_lm_loss(m, x, y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss.detach().item()

    for _ in range(steps - 1):
        one_step()
    return peak.measure(one_step, device="cpu")


def predict(model: nn.Module, batch_size: int, seq_len: int) -> dict:
    """The calculator's bytes for FP32 AdamW training of ``model`` on ``batch_size`` x ``seq_len`` tokens.

    Activations by Korthikanti et al. 2022 without the attention-score term (PyTorch's
    fused attention keeps no score matrix) at 4 bytes per value and without dropout
    masks, plus their 4·s·b·v bytes for the logits and the loss.
    """
    shape = model_shape(model)
    batch_size = _checks.positive_int("batch_size", batch_size)
    seq_len = _checks.positive_int("seq_len", seq_len)
    n = sum(p.numel() for p in model.parameters())
    states = memory.model_states_per_gpu(n, precision="fp32", optimizer="adamw")
    layers = memory.activation_bytes(shape["n_layers"], shape["hidden"], shape["n_heads"], seq_len, batch_size,
                                     "selective", 4, dropout=False)
    logits = memory.activation_bytes(shape["n_layers"], shape["hidden"], shape["n_heads"], seq_len, batch_size,
                                     "selective", 4, dropout=False, vocab_size=shape["vocab_size"]) - layers
    return {"parameters": states.params, "gradients": states.grads, "optimizer_state": states.optimizer,
            "activations (layers)": layers, "logits and loss": logits,
            "total": states.params + states.grads + states.optimizer + layers + logits}


def compare(model: nn.Module, batch: torch.Tensor, steps: int = 2) -> dict:
    """Predicted bytes, and the bytes measured at the peak of a real step, part by part."""
    _checks.model("model", model)
    b, s1 = _checks.tensor("batch", batch, dims=2).shape
    t0 = time.perf_counter()
    measured = step_peak(model, batch, steps)
    at = measured.at_peak or {}
    return {"batch_size": b, "seq_len": s1 - 1, "predicted": predict(model, b, s1 - 1),
            "measured_at_peak": {k: int(at.get(k, 0)) for k in PARTS},
            "peak_total": int(sum(at.values())) if at else None, "peak_above_entry": measured.peak_bytes,
            "method": measured.method, "note": measured.note, "seconds": round(time.perf_counter() - t0, 1)}
