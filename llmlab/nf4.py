"""QLoRA's 4-bit NormalFloat (NF4), from scratch (chapter 12).

QLoRA (Dettmers et al. 2023) fine-tunes a frozen base model stored in 4 bits. Three ideas:

* **NF4** (:func:`nf4_codebook`): 16 values placed at quantiles of the normal distribution,
  so that normally distributed weights, scaled by the absolute maximum of their block, use
  every code about equally often. Zero is exact: 7 negative values, 0, and 8 positive ones.
* **Block-wise absmax** (:func:`quantize_nf4`, :class:`NF4Tensor`): every block of 64
  values keeps its own scale, so one outlier spoils only its block.
* **Double quantization**: the float32 scales (32 bits per 64 values, 0.5 bit per value)
  are themselves quantized to 8 bits in blocks of 256, after subtracting their mean, which
  brings the cost of the scales down to 8/64 + 32/(64*256) = 0.127 bit per value.

Layers and models: :class:`NF4Linear` holds a frozen NF4 weight and dequantizes it on every
forward; :func:`quantize_model_nf4` swaps a model's linear layers for it;
:func:`model_bytes` says where the bytes of such a model go. Checked in ``tests/test_nf4.py``
against bitsandbytes' NF4 table and torchao's ``NF4Tensor``.

One simplification: the scales are double-quantized with symmetric INT8 (absmax / 127 per
block of 256 scales). bitsandbytes stores them in its 8-bit dynamic float format instead;
the sizes are the same. Sizes are in bytes; dequantized values are float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import _checks
from .quant import _set_module, linear_layers, state_bytes

# The largest probability whose quantile becomes the code 1.0 (before normalising): halfway
# between 1 - 1/(2*15) and 1 - 1/(2*16), the choice of bitsandbytes' create_normal_map. The
# quantile of 1 itself would be infinite.
NF4_OFFSET = 0.9677083


def nf4_codebook() -> torch.Tensor:
    """The 16 values of NF4, sorted, from -1 to 1 (float32), from normal quantiles.

    8 positive values are the quantiles of N(0, 1) at 8 evenly spaced probabilities from
    ``NF4_OFFSET`` down to (not including) 0.5, and 7 negative ones likewise mirrored,
    so that 0 is a code of its own; all are divided by the largest. Chapter 12.
    """
    one = torch.tensor(1.0, dtype=torch.float64)
    normal = torch.distributions.Normal(0 * one, one)
    p_pos = torch.linspace(NF4_OFFSET, 0.5, 9, dtype=torch.float64)[:-1]  # 8 values
    p_neg = torch.linspace(NF4_OFFSET, 0.5, 8, dtype=torch.float64)[:-1]  # 7 values
    values = torch.cat([-normal.icdf(p_neg), 0 * one[None], normal.icdf(p_pos)])
    values = values.sort().values
    return (values / values.max()).to(torch.float32)


_CODEBOOK = nf4_codebook()


@dataclass
class NF4Tensor:
    """A tensor stored in NF4: two 4-bit codes per byte and one scale per block.

    ``codes``: uint8, two codes per byte, the first value of each pair in the high nibble;
    the values are flattened (row-major) and padded with zeros to whole blocks.
    ``scales``: the absmax of each block, float32, or (``double_quant``) its int8 code.
    ``scale_steps`` (float32, one per block of ``scale_block`` scales) and ``scale_mean``
    (float32, one number): how to decode the int8 scales (None without double quantization):
    ``scale = scales * scale_steps[block of scales] + scale_mean``.
    """

    codes: torch.Tensor
    scales: torch.Tensor
    scale_steps: torch.Tensor | None
    scale_mean: torch.Tensor | None
    shape: torch.Size
    block_size: int = 64
    scale_block: int = 256

    def __post_init__(self) -> None:
        if not isinstance(self.codes, torch.Tensor) or self.codes.dtype != torch.uint8:
            raise _checks.ArgumentTypeError(
                f"codes must be a uint8 torch.Tensor (two 4-bit codes per byte), got "
                f"{type(self.codes).__name__}"
                + (f" of dtype {self.codes.dtype}" if isinstance(self.codes, torch.Tensor) else "")
                + "; build an NF4Tensor with quantize_nf4(w)")
        _checks.tensor("scales", self.scales)
        if (self.scale_steps is None) != (self.scale_mean is None):
            raise ValueError("scale_steps and scale_mean must both be tensors (double "
                             "quantization) or both be None")
        self.shape = torch.Size(self.shape)
        n = math.prod(self.shape)
        if self.scales.numel() != math.ceil(n / self.block_size) or \
                self.codes.numel() * 2 != self.scales.numel() * self.block_size:
            raise ValueError(f"codes ({self.codes.numel()} bytes) and scales "
                             f"({self.scales.numel()}) do not fit shape {tuple(self.shape)} "
                             f"in blocks of {self.block_size}")

    @property
    def double_quant(self) -> bool:
        """True when the scales are stored as 8-bit codes."""
        return self.scale_steps is not None

    def unpacked_codes(self) -> torch.Tensor:
        """One code (0..15, int64) per value of the padded, flattened tensor."""
        return torch.stack([self.codes >> 4, self.codes & 0xF], dim=1).flatten().long()

    def block_scales(self) -> torch.Tensor:
        """The scale (absmax) of every block as used to dequantize, float32."""
        if not self.double_quant:
            return self.scales.float()
        n = self.scales.numel()
        q = _pad(self.scales.float(), self.scale_block).view(-1, self.scale_block)
        return (q * self.scale_steps[:, None]).flatten()[:n] + self.scale_mean

    def dequantize(self) -> torch.Tensor:
        """Back to float32 with the original shape: ``codebook[code] * scale of its block``."""
        values = _CODEBOOK.to(self.codes.device)[self.unpacked_codes()]
        blocks = values.view(-1, self.block_size) * self.block_scales()[:, None]
        return blocks.flatten()[: math.prod(self.shape)].view(self.shape)

    def nbytes(self) -> dict[str, int]:
        """Bytes to store it: ``codes`` (half a byte per value, padding included),
        ``scales`` (4 per block, or 1 with double quantization), ``constants`` (the
        float32 steps and mean of double quantization, else 0) and their ``total``."""
        sizes = {"codes": self.codes.numel(),
                 "scales": self.scales.numel() * self.scales.element_size(), "constants": 0}
        if self.double_quant:
            sizes["constants"] = 4 * (self.scale_steps.numel() + self.scale_mean.numel())
        sizes["total"] = sum(sizes.values())
        return sizes

    def bits_per_value(self) -> float:
        """Bits of storage per value of the original tensor (everything in :meth:`nbytes`)."""
        return 8 * self.nbytes()["total"] / math.prod(self.shape)


def _pad(x: torch.Tensor, block: int) -> torch.Tensor:
    """``x`` (1-D) with zeros appended up to a whole number of blocks."""
    return F.pad(x, (0, -x.numel() % block))


def _pack(codes: torch.Tensor) -> torch.Tensor:
    """Two 4-bit codes per byte: [a, b, c, d] -> [a<<4 | b, c<<4 | d] (uint8)."""
    codes = codes.to(torch.uint8)
    return codes[0::2] << 4 | codes[1::2]


def _double_quantize(scales: torch.Tensor, scale_block: int):
    """Int8 codes of the mean-subtracted scales, one float32 step per block of them, the mean."""
    mean = scales.mean()
    blocks = _pad(scales - mean, scale_block).view(-1, scale_block)
    steps = blocks.abs().amax(dim=1) / 127
    safe = torch.where(steps > 0, steps, 1.0)  # an all-equal block: every code is 0
    q = torch.round(blocks / safe[:, None]).clamp(-127, 127).to(torch.int8)
    return q.flatten()[: scales.numel()], steps, mean


def _check_weight(w) -> torch.Tensor:
    if not isinstance(w, torch.Tensor) or not w.is_floating_point():
        raise _checks.ArgumentTypeError(
            f"w must be a floating-point torch.Tensor, got {type(w).__name__}"
            + (f" of dtype {w.dtype}" if isinstance(w, torch.Tensor) else ""))
    if w.numel() == 0:
        raise ValueError(f"w must not be empty, got shape {tuple(w.shape)}")
    if not torch.isfinite(w).all():
        raise ValueError("w must hold only finite values (no inf or nan): they have no NF4 code")
    return w.detach().to(torch.float32)


def _check_options(block_size, double_quant, scale_block) -> None:
    _checks.positive_int("block_size", block_size)
    if block_size % 2:
        raise ValueError(f"block_size must be an even int (two 4-bit codes share a byte), "
                         f"got {block_size}")
    if not isinstance(double_quant, bool):
        raise _checks.ArgumentTypeError(f"double_quant must be True or False, got "
                                        f"{type(double_quant).__name__} {double_quant!r}")
    _checks.positive_int("scale_block", scale_block)


def quantize_nf4(w: torch.Tensor, block_size: int = 64, double_quant: bool = True,
                 scale_block: int = 256) -> NF4Tensor:
    """``w`` (any shape) in NF4: blocks of ``block_size`` values, each value the nearest
    code of ``w / absmax(block)``. A size that is not a whole number of blocks is padded
    with zeros (``shape`` remembers the original). With ``double_quant`` the float32
    scales are stored in 8 bits, in blocks of ``scale_block``. Chapter 12."""
    _check_options(block_size, double_quant, scale_block)
    w = _check_weight(w)
    blocks = _pad(w.flatten(), block_size).view(-1, block_size)
    absmax = blocks.abs().amax(dim=1)  # float32, one per block
    x = blocks / torch.where(absmax > 0, absmax, 1.0)[:, None]  # now in [-1, 1]
    # the nearest code: the number of midpoints between neighbouring codes below x
    midpoints = (_CODEBOOK[1:] + _CODEBOOK[:-1]) / 2
    codes = torch.bucketize(x.flatten(), midpoints)
    scales, steps, mean = absmax, None, None
    if double_quant:  # the scales themselves in 8 bits
        scales, steps, mean = _double_quantize(absmax, scale_block)
    return NF4Tensor(_pack(codes), scales, steps, mean, w.shape, block_size,
                     scale_block)


class _DequantMatmul(torch.autograd.Function):
    """``x @ W.T`` with W dequantized from NF4 in the forward pass and again in the backward.

    Autograd would otherwise keep every layer's dequantized float weight alive until
    the backward pass, which gives back the memory NF4 saved. Like bitsandbytes'
    ``MatMul4Bit``, this keeps only the 4-bit weight and dequantizes it a second time
    to send the gradient on to ``x``; the weight itself gets no gradient (it is frozen).
    """

    @staticmethod
    def forward(ctx, x, layer):
        ctx.layer = layer
        return x @ layer.weight_nf4.dequantize().to(x.dtype).T

    @staticmethod
    def backward(ctx, grad):
        w = ctx.layer.weight_nf4.dequantize().to(grad.dtype)
        return grad @ w, None


class NF4Linear(nn.Module):
    """A frozen linear layer whose weight is stored in NF4 (QLoRA's base layer).

    The NF4 parts are buffers, so ``state_dict()`` and ``.to(device)`` carry them; the
    layer has no parameters. ``weight_nf4`` rebuilds the :class:`NF4Tensor` from them.
    Chapter 12.
    """

    def __init__(self, weight_nf4: NF4Tensor, bias: torch.Tensor | None = None):
        super().__init__()
        if not isinstance(weight_nf4, NF4Tensor):
            raise _checks.ArgumentTypeError(
                f"weight_nf4 must be an NF4Tensor (from quantize_nf4(w)), got "
                f"{type(weight_nf4).__name__}; to convert an nn.Linear use "
                f"NF4Linear.from_linear(linear)")
        if len(weight_nf4.shape) != 2:
            raise ValueError(f"weight_nf4 must hold a weight matrix (out, in), got shape "
                             f"{tuple(weight_nf4.shape)}")
        self.out_features, self.in_features = weight_nf4.shape
        if bias is not None and _checks.tensor("bias", bias).shape != (self.out_features,):
            raise ValueError(f"bias must have shape ({self.out_features},), "
                             f"got {tuple(bias.shape)}")
        self.block_size, self.scale_block = weight_nf4.block_size, weight_nf4.scale_block
        self.register_buffer("codes", weight_nf4.codes)
        self.register_buffer("scales", weight_nf4.scales)
        self.register_buffer("scale_steps", weight_nf4.scale_steps)
        self.register_buffer("scale_mean", weight_nf4.scale_mean)
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())

    @classmethod
    def from_linear(cls, linear: nn.Linear, block_size: int = 64,
                    double_quant: bool = True) -> NF4Linear:
        """The NF4 version of ``linear`` (its bias, if any, stays float32)."""
        if not isinstance(linear, nn.Linear):
            raise _checks.ArgumentTypeError(
                f"linear must be an nn.Linear, got {type(linear).__name__}; GPT-2's Conv1D "
                f"layers can be turned into nn.Linear with llmlab.quant.conv1d_to_linear")
        w = quantize_nf4(linear.weight, block_size, double_quant)
        return cls(w, linear.bias)

    @property
    def weight_nf4(self) -> NF4Tensor:
        """The weight as an :class:`NF4Tensor` (sharing this layer's buffers)."""
        return NF4Tensor(self.codes, self.scales, self.scale_steps, self.scale_mean,
                         torch.Size((self.out_features, self.in_features)),
                         self.block_size, self.scale_block)

    def dequantized_weight(self) -> torch.Tensor:
        """The weight (out, in) as the forward pass uses it, float32."""
        return self.weight_nf4.dequantize()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x @ W.T + b``, W dequantized from NF4 on every call (then in x's dtype).

        The float weight lives only during the matmul: the backward pass dequantizes
        again instead of keeping it (:class:`_DequantMatmul`).
        """
        y = _DequantMatmul.apply(x, self)
        return y if self.bias is None else y + self.bias.to(x.dtype)

    def extra_repr(self) -> str:
        dq = self.scale_steps is not None
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"block_size={self.block_size}, double_quant={dq}, bias={self.bias is not None}")


def _matches(name: str, targets: list[str]) -> bool:
    return any(name == t or name.endswith("." + t) for t in targets)


def quantize_model_nf4(model: nn.Module, target_modules: list[str] | None = None,
                       block_size: int = 64, double_quant: bool = True) -> nn.Module:
    """Replace ``model``'s nn.Linear layers by :class:`NF4Linear`, in place; return ``model``.

    ``target_modules``: the layers whose name ends with one of the entries (as in PEFT:
    ``["q_proj", "v_proj"]``). None: every nn.Linear except the output head (and any layer
    whose weight is tied to another module, such as a head tied to the embedding).
    Embeddings and norms stay as they are. Chapter 12.
    """
    _checks.model("model", model)
    _check_options(block_size, double_quant, 256)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    untied = set(linear_layers(model))  # leaves out layers whose weight is shared
    linears = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    if target_modules is None:
        names = [n for n, m in linears.items() if n in untied and m is not head]
    else:
        targets = _checks.strings("target_modules", target_modules)
        names = [n for n in linears if _matches(n, targets)]
        for t in targets:
            if not any(_matches(n, [t]) for n in linears):
                suffixes = sorted({n.rpartition(".")[2] for n in linears})
                raise ValueError(f"target_modules entry {t!r} matches no nn.Linear of the "
                                 f"model; the linear layers end with {suffixes}")
        tied = [n for n in names if n not in untied]
        if tied:
            raise ValueError(f"{tied} share their weight with another module (a tied head); "
                             f"quantizing them would store a second copy: leave them out")
    for name in names:
        _set_module(model, name, NF4Linear.from_linear(linears[name], block_size, double_quant))
    return model


def model_bytes(model: nn.Module) -> dict[str, int]:
    """Bytes of ``model``'s state: ``nf4_codes`` (packed 4-bit codes), ``nf4_constants``
    (block scales and the constants of double quantization), ``other`` (every other tensor:
    embeddings, norms, biases, float weights) and ``total``, which equals
    :func:`llmlab.quant.state_bytes` (tied tensors counted once)."""
    _checks.model("model", model)
    codes = constants = 0
    for module in model.modules():
        if isinstance(module, NF4Linear):
            sizes = module.weight_nf4.nbytes()
            codes += sizes["codes"]
            constants += sizes["scales"] + sizes["constants"]
    total = state_bytes(model)
    return {"nf4_codes": codes, "nf4_constants": constants,
            "other": total - codes - constants, "total": total}
