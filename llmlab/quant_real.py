"""Quantization measured on the real model, SmolLM2-135M-Instruct (chapter 6).

The model's file is itself quantized (Q4_1, see :mod:`llmlab.gguf_blocks`), and the
original full-precision weights are not available offline. So every error here is
measured against the file's own values, dequantized to float32: **the reference is
the Q4_1 model**, and a scheme whose grid contains Q4_1's (4-bit zero point in groups
of 32) reproduces it exactly.

What is measured, per scheme: the bytes of the quantized linear layers and of the whole
model, and perplexity on two held-out texts: the project's English passages
(``llmlab/corpus/english_passages.txt``) and stories of the bundled corpus's
validation split. Then the activations: per-channel maxima of the residual stream and
of every linear layer's input (the outlier features of Dettmers et al. 2022 and the
massive activations of Sun et al. 2024), and perplexity when the linear layers' inputs
are quantized to INT8 per tensor, per token, or with LLM.int8's mixed-precision
decomposition.

The full grid runs once (``python -m llmlab.records.quant_real``, minutes on two CPU
cores) and ships as ``llmlab/results/quant_real.json`` with the code version and
machine; the chapter re-runs a slice live (:func:`live_slice`) and checks it against the record.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from . import _checks, quant

SEQ_LEN = 128          # tokens per perplexity window
STORY_TOKENS = 1024    # tokens of held-out stories (the English passages are about 1,000 tokens)
OUTLIER_THRESHOLD = 6.0  # Dettmers et al. 2022: a feature with |x| >= 6 is an outlier
PASSAGES = Path(__file__).resolve().parent / "corpus" / "english_passages.txt"


def english_ids(tokenizer) -> torch.Tensor:
    """The project's English passages as one stream of token ids (1-D)."""
    _checks.tokenizer("tokenizer", tokenizer)
    return tokenizer(PASSAGES.read_text(), return_tensors="pt").input_ids[0]


def story_ids(tokenizer, n_tokens: int = STORY_TOKENS) -> torch.Tensor:
    """The first ``n_tokens`` tokens of the story corpus's validation split, under this tokenizer (1-D)."""
    from . import data
    from .tokenization import encode_stories

    _checks.tokenizer("tokenizer", tokenizer)
    n_tokens = _checks.positive_int("n_tokens", n_tokens)
    return encode_stories(tokenizer, data.load_corpus("validation")[:200])[:n_tokens]


# --------------------------------------------------------------------------- weight schemes

# name -> (what it is, a function from the reference model to a quantized copy)
SCHEMES: dict[str, tuple[str, Callable[[nn.Module], nn.Module]]] = {
    "reference (Q4_1 file)": ("the file's weights, dequantized to float32", lambda m: m),
    "INT8 absmax, per tensor": ("llmlab", lambda m: quant.quantize_model(m, "absmax", per_channel=False)),
    "INT8 absmax, per channel": ("llmlab", lambda m: quant.quantize_model(m, "absmax", per_channel=True)),
    "INT8 zero-point, per tensor": ("llmlab", lambda m: quant.quantize_model(m, "zeropoint", per_channel=False)),
    "INT8 zero-point, per channel": ("llmlab", lambda m: quant.quantize_model(m, "zeropoint", per_channel=True)),
    "4-bit zero-point, groups of 32": ("llmlab (Q4_1's layout)", lambda m: quant.quantize_model_4bit(m, 32, "zeropoint")),
    "4-bit zero-point, groups of 128": ("llmlab", lambda m: quant.quantize_model_4bit(m, 128, "zeropoint")),
    "4-bit absmax, groups of 32": ("llmlab", lambda m: quant.quantize_model_4bit(m, 32, "absmax")),
    "4-bit absmax, groups of 128": ("llmlab", lambda m: quant.quantize_model_4bit(m, 128, "absmax")),
    "torchao INT8 weight-only": ("torchao Int8WeightOnlyConfig", lambda m: quant.torchao_quantize(m, "int8_weight_only")),
    "torchao INT8 dynamic": ("torchao Int8DynamicActivationInt8WeightConfig",
                             lambda m: quant.torchao_quantize(m, "int8_dynamic")),
    "torchao 4-bit weight-only, groups of 32": ("torchao IntxWeightOnlyConfig(int4, PerGroup(32))",
                                                lambda m: quant.torchao_quantize(m, "int4_weight_only", 32)),
}


def _texts(texts) -> dict[str, torch.Tensor]:
    """``texts`` if it maps labels (str) to 1-D tensors of token ids."""
    if not isinstance(texts, dict):
        raise TypeError(f"texts must be a dict of label -> 1-D tensor of token ids, got {type(texts).__name__}")
    for label, ids in texts.items():
        _checks.string("a label of texts", label, allow_empty=False)
        _checks.tensor(f"texts[{label!r}]", ids, dims=1)
    return texts


def linear_bytes(model: nn.Module, names: list[str]) -> int:
    """Bytes held by the named (linear) modules of ``model``: codes, scales and biases."""
    _checks.model("model", model)
    names = _checks.strings("names", names, allow_empty=True)
    known = dict(model.named_modules())
    missing = [n for n in names if n not in known]
    if missing:
        raise ValueError(f"model has no module named {missing[0]!r}; its linear layers: {quant.linear_layers(model)[:4]} ...")
    return sum(quant.state_bytes(model.get_submodule(n)) for n in names)


def measure_scheme(name: str, model: nn.Module, texts: dict[str, torch.Tensor],
                   seq_len: int = SEQ_LEN) -> dict:
    """Quantize ``model`` (the reference) by scheme ``name`` and measure its bytes and perplexities."""
    from .metrics import perplexity

    _checks.choice("name", name, list(SCHEMES))
    _checks.model("model", model)
    texts = _texts(texts)
    seq_len = _checks.positive_int("seq_len", seq_len)
    names = quant.linear_layers(model)
    t0 = time.perf_counter()
    q = SCHEMES[name][1](model)
    row = {"scheme": name, "how": SCHEMES[name][0], "linear_bytes": linear_bytes(q, names),
           "model_bytes": quant.state_bytes(q), "quantize_seconds": round(time.perf_counter() - t0, 1)}
    with torch.no_grad():
        for label, ids in texts.items():
            row[f"ppl_{label}"] = perplexity(q, ids, seq_len=seq_len, batch_size=8)
    return row


LIVE_TOKENS = 2 * SEQ_LEN + 1  # the chapter's live re-run: the first two windows of the English passages
LIVE_SCHEMES = ("reference (Q4_1 file)", "INT8 absmax, per tensor", "4-bit zero-point, groups of 128")


def live_slice(model: nn.Module, tokenizer, schemes=LIVE_SCHEMES) -> dict[str, float]:
    """Perplexity on the first :data:`LIVE_TOKENS` tokens of the English passages, per scheme (the chapter's re-run)."""
    from .metrics import perplexity

    _checks.model("model", model)
    ids = english_ids(tokenizer)[:LIVE_TOKENS]
    out = {}
    with torch.no_grad():
        for name in schemes:
            _checks.choice("scheme", name, list(SCHEMES))
            out[name] = perplexity(SCHEMES[name][1](model), ids, seq_len=SEQ_LEN, batch_size=8)
    return out


def bitsandbytes_rows(texts: dict[str, torch.Tensor], seq_len: int = SEQ_LEN) -> list[dict]:
    """LLM.int8 and NF4 (bitsandbytes, through transformers) on the real model: bytes and perplexity. CUDA only.

    Loads the converted float32 copy of the Q4_1 file with ``BitsAndBytesConfig(load_in_8bit=True)``
    (Dettmers et al. 2022, threshold 6) and with ``load_in_4bit=True, bnb_4bit_quant_type="nf4"``
    (Dettmers et al. 2023, QLoRA's 4-bit NormalFloat). Raises a clear error without a GPU or
    without ``pip install bitsandbytes``.
    """
    from . import zoo
    from .metrics import perplexity

    texts = _texts(texts)
    if not torch.cuda.is_available():
        raise RuntimeError("bitsandbytes' LLM.int8 and NF4 kernels need a CUDA GPU; none is available here")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise RuntimeError("bitsandbytes is not installed: pip install bitsandbytes") from None
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    folder = zoo.prepare(zoo.REAL_MODEL, progress=False)
    configs = {"bitsandbytes LLM.int8": BitsAndBytesConfig(load_in_8bit=True),
               "bitsandbytes NF4": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                      bnb_4bit_compute_dtype=torch.float16)}
    rows = []
    for name, config in configs.items():
        model = AutoModelForCausalLM.from_pretrained(folder, quantization_config=config, device_map="cuda",
                                                     local_files_only=True)
        row = {"scheme": name, "model_bytes": int(model.get_memory_footprint())}
        with torch.no_grad():
            for label, ids in texts.items():
                row[f"ppl_{label}"] = perplexity(model, ids, seq_len=seq_len, batch_size=8, device="cuda")
        rows.append(row)
        del model
        torch.cuda.empty_cache()
    return rows


# --------------------------------------------------------------------------- activations

def activation_profile(model: nn.Module, ids: torch.Tensor) -> dict:
    """Per-channel maxima of |activation| over the tokens of ``ids`` (1-D), from one forward pass.

    ``residual``: (layers + 1, hidden), the residual stream entering each decoder layer and
    leaving the last; ``linear_inputs``: {linear layer name: (in_features,)} for every layer
    :func:`quant.linear_layers` lists; ``residual_top``: per layer, the largest magnitude,
    its channel and the token position where it occurs.
    """
    _checks.model("model", model)
    ids = _checks.tensor("ids", ids, dims=1)
    maxima: dict[str, torch.Tensor] = {}
    hooks = []
    for name in quant.linear_layers(model):
        def keep(mod, inp, out, name=name):
            maxima[name] = inp[0].detach().abs().flatten(0, -2).amax(0)
        hooks.append(model.get_submodule(name).register_forward_hook(keep))
    try:
        with torch.no_grad():
            out = model(input_ids=ids[None].to(next(model.parameters()).device), output_hidden_states=True)
    finally:
        for h in hooks:
            h.remove()
    states = torch.stack(out.hidden_states)[:, 0].abs()  # (layers + 1, tokens, hidden)
    residual = states.amax(1)
    flat = states.flatten(1).argmax(1)
    top = [{"layer": i, "value": float(states[i].flatten()[j]), "token": int(j // states.shape[2]),
            "channel": int(j % states.shape[2])} for i, j in enumerate(flat.tolist())]
    return {"residual": residual.cpu(), "linear_inputs": {k: v.cpu() for k, v in maxima.items()},
            "residual_top": top}


class ActInt8Linear(nn.Module):
    """A linear layer computed with INT8 activations and INT8 weights (:func:`quant.int8_matmul`).

    The weight's codes are made once (per output feature for 'vector-wise' and 'mixed', one
    scale for 'per-tensor', as ``int8_matmul`` does); every call quantizes its input by
    ``mode`` and multiplies codes, summing the products exactly. A simulation of an INT8
    matrix unit in float64 arithmetic (exact for these sums), not a fast kernel.
    """

    def __init__(self, linear: nn.Linear, mode: str, threshold: float = OUTLIER_THRESHOLD):
        super().__init__()
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be an nn.Linear, got {type(linear).__name__}")
        _checks.choice("mode", mode, ("per-tensor", "vector-wise", "mixed"))
        threshold = _checks.positive("threshold", threshold)
        self.mode, self.threshold = mode, threshold
        w = linear.weight.detach().float()
        self.register_buffer("weight", w)
        qw = quant.quantize_absmax(w, None if mode == "per-tensor" else 0)
        self.register_buffer("w_codes", qw.q.to(torch.float64))
        self.register_buffer("w_scale", qw.scale)
        self.bias = linear.bias
        self.outlier_columns = 0  # columns kept in float32 at the last call ('mixed')

    def _int8(self, x: torch.Tensor, codes: torch.Tensor, w_scale: torch.Tensor) -> torch.Tensor:
        qx = quant.quantize_absmax(x, None if self.mode == "per-tensor" else 0)
        acc = qx.q.to(torch.float64) @ codes.T  # exact integer sums
        return acc.to(torch.float32) * (qx.scale * (w_scale.T if self.mode != "per-tensor" else w_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1]).float()
        if self.mode == "mixed":
            outlier = (x2.abs() >= self.threshold).any(0)
            self.outlier_columns = int(outlier.sum())
            y = x2[:, outlier] @ self.weight[:, outlier].T
            if (~outlier).any():
                # the regular columns, vector-wise: their codes are re-made without the outlier columns
                w = self.weight[:, ~outlier]
                qw = quant.quantize_absmax(w, 0)
                y = y + self._int8(x2[:, ~outlier], qw.q.to(torch.float64), qw.scale)
        else:
            y = self._int8(x2, self.w_codes, self.w_scale)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], -1).to(x.dtype)


def with_int8_activations(model: nn.Module, mode: str, threshold: float = OUTLIER_THRESHOLD) -> nn.Module:
    """A copy of ``model`` whose linear layers (:func:`quant.linear_layers`) run on INT8 activations."""
    import copy

    _checks.model("model", model)
    _checks.choice("mode", mode, ("per-tensor", "vector-wise", "mixed"))
    out = copy.deepcopy(model)
    for name in quant.linear_layers(model):
        parent, _, child = name.rpartition(".")
        setattr(out.get_submodule(parent) if parent else out, child,
                ActInt8Linear(out.get_submodule(name), mode, threshold))
    return out


def outlier_summary(profile: dict, threshold: float = OUTLIER_THRESHOLD) -> dict:
    """From :func:`activation_profile`: how many input channels reach ``threshold``, per kind of linear layer."""
    if not isinstance(profile, dict) or not isinstance(profile.get("linear_inputs"), dict):
        raise TypeError("profile must be what activation_profile() returns (a dict with 'linear_inputs')")
    threshold = _checks.positive("threshold", threshold)
    kinds: dict[str, list[int]] = {}
    for name, m in profile["linear_inputs"].items():
        kind = name.rsplit(".", 1)[-1]
        kinds.setdefault(kind, []).append(int((m >= threshold).sum()))
    return {k: {"layers": len(v), "layers_with_outliers": sum(1 for c in v if c), "max_channels": max(v),
                "mean_channels": sum(v) / len(v)} for k, v in kinds.items()}


# --------------------------------------------------------------------------- the record

ACT_MODES = ("per-tensor", "vector-wise", "mixed")
