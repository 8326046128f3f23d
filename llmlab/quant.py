"""Number formats and quantization, from the bits up (chapter 6).

Three ideas, each checked in ``tests/test_quant.py`` against the library that
implements it for real:

* **Floating-point formats** (:func:`float_bits`, :func:`format_info`,
  :func:`representable_values`): how FP32, FP16, BF16 and the two FP8 formats
  store a number, written from scratch (round to nearest, ties to even;
  subnormals; overflow) and checked bit for bit against ``struct`` and torch's
  own dtype conversions.
* **Integer quantization** (:func:`quantize_absmax`, :func:`quantize_zeropoint`,
  :func:`int8_matmul`): absmax (symmetric) and zero-point (asymmetric) INT8,
  per tensor or per channel, checked against ``torch.quantize_per_tensor`` /
  ``torch.quantize_per_channel`` and torch's observers; and the mixed-precision
  decomposition of LLM.int8 (Dettmers et al. 2022) for activations with outlier
  features.
* **Quantizing a model** (:func:`quantize_model`, :func:`torch_dynamic_quantize`,
  :func:`state_bytes`): weight-only INT8 for every linear layer of a model,
  including the ``Conv1D`` layers (transposed linear layers) that GPT-2 uses in
  ``transformers``; 4-bit group-wise weights (:func:`quantize_groupwise`,
  :func:`quantize_model_4bit`, GGUF's Q4_1 layout); and the libraries a reader would
  use: torchao (:func:`torchao_quantize`) and, as history, ``torch.ao``'s dynamic
  quantization.

Sizes are in bytes; values are Python floats or float32 tensors.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import torch
import torch.nn.functional as F
from torch import nn

from . import _checks

# --------------------------------------------------------------------------- float formats


@dataclass(frozen=True)
class _Layout:
    exponent_bits: int
    fraction_bits: int
    torch_dtype: torch.dtype
    ieee: bool  # True: all-ones exponent means inf/NaN. False (e4m3fn): only S.1111.111 is NaN, no inf

    @property
    def bias(self) -> int:
        return 2 ** (self.exponent_bits - 1) - 1

    @property
    def total_bits(self) -> int:
        return 1 + self.exponent_bits + self.fraction_bits


FORMATS: dict[str, _Layout] = {
    "fp32": _Layout(8, 23, torch.float32, True),
    "fp16": _Layout(5, 10, torch.float16, True),
    "bf16": _Layout(8, 7, torch.bfloat16, True),
    "fp8_e4m3": _Layout(4, 3, torch.float8_e4m3fn, False),
    "fp8_e5m2": _Layout(5, 2, torch.float8_e5m2, True),
}


def _layout(fmt: str) -> _Layout:
    if fmt not in FORMATS:
        raise ValueError(f"unknown float format {fmt!r}; allowed: {', '.join(FORMATS)}")
    return FORMATS[fmt]


@dataclass(frozen=True)
class FloatBits:
    """How one number is stored in a floating-point format.

    ``sign``, ``exponent`` and ``fraction`` are bit strings ('0'/'1');
    ``stored`` is the exact value the bits decode to (every value of these
    formats is exactly a Python float); ``kind`` is 'normal', 'subnormal',
    'zero', 'inf' or 'nan'.
    """

    fmt: str
    value: float
    sign: str
    exponent: str
    fraction: str
    stored: float
    kind: str
    bytes_per_value: int

    @property
    def bits(self) -> str:
        """All the bits, sign first, as stored in memory (most significant first)."""
        return self.sign + self.exponent + self.fraction

    @property
    def exact(self) -> str:
        """The stored value written out in full in decimal (no rounding)."""
        if not math.isfinite(self.stored):
            return str(self.stored)
        return format(Decimal(self.stored), "f")

    @property
    def error(self) -> float:
        """Stored minus given value (nan for inf/nan)."""
        return self.stored - self.value if math.isfinite(self.stored) else math.nan


def _decode(layout: _Layout, s: int, e: int, m: int) -> tuple[float, str]:
    """Value and kind of the bit fields (sign, biased exponent, fraction) of ``layout``."""
    e_max = 2**layout.exponent_bits - 1
    sign = -1.0 if s else 1.0
    if layout.ieee and e == e_max:
        return (sign * math.inf, "inf") if m == 0 else (math.nan, "nan")
    if not layout.ieee and e == e_max and m == 2**layout.fraction_bits - 1:
        return math.nan, "nan"
    if e == 0:
        if m == 0:
            return sign * 0.0, "zero"
        return sign * math.ldexp(m, 1 - layout.bias - layout.fraction_bits), "subnormal"
    return sign * math.ldexp(2**layout.fraction_bits + m, e - layout.bias - layout.fraction_bits), "normal"


def _max_finite_fields(layout: _Layout) -> tuple[int, int]:
    e_max = 2**layout.exponent_bits - 1
    if layout.ieee:
        return e_max - 1, 2**layout.fraction_bits - 1
    return e_max, 2**layout.fraction_bits - 2  # S.1111.111 is NaN, so S.1111.110 is the largest


def _encode(layout: _Layout, x: float) -> tuple[int, int, int]:
    """Round ``x`` to the nearest value of ``layout`` (ties to even); return (sign, exponent, fraction) fields."""
    f, e_max_field = layout.fraction_bits, 2**layout.exponent_bits - 1
    if math.isnan(x):
        return 0, e_max_field, (2**f - 1) if not layout.ieee else 2 ** (f - 1)  # a quiet NaN
    s = 1 if math.copysign(1.0, x) < 0 else 0
    a = abs(x)
    big_e, big_m = _max_finite_fields(layout)
    if math.isinf(a):
        return (s, e_max_field, 0) if layout.ieee else (s, big_e, big_m)  # e4m3fn saturates (as torch does)
    if a == 0:
        return s, 0, 0
    e_min = 1 - layout.bias
    exp = max(math.frexp(a)[1] - 1, e_min)  # floor(log2 a), but never below the subnormal range
    quantum = Fraction(2) ** (exp - f)  # spacing of the values in this binade
    n = Fraction(a) / quantum
    n_int = round(n)  # Fraction.__round__ rounds half to even
    if n_int == 2 ** (f + 1):  # rounding carried into the next binade
        exp, n_int = exp + 1, 2**f
    if n_int < 2**f:  # subnormal (or rounded to zero)
        e_field, m_field = 0, n_int
    else:
        e_field, m_field = exp + layout.bias, n_int - 2**f
    if (e_field, m_field) > (big_e, big_m):  # overflow
        return (s, e_max_field, 0) if layout.ieee else (s, big_e, big_m)
    return s, e_field, m_field


def _check_number(x) -> float:
    if isinstance(x, torch.Tensor):
        if x.numel() != 1:
            raise ValueError(f"x must be a single number, got a tensor of shape {tuple(x.shape)}")
        x = x.item()
    if isinstance(x, bool) or not isinstance(x, (int, float)) and not hasattr(x, "__float__"):
        raise _checks.ArgumentTypeError(f"x must be a real number (int or float), got {x!r}")
    if isinstance(x, complex):
        raise _checks.ArgumentTypeError(f"x must be a real number, got the complex number {x!r}")
    return float(x)


def float_bits(x: float, fmt: str) -> FloatBits:
    """Store ``x`` in ``fmt`` ('fp32', 'fp16', 'bf16', 'fp8_e4m3', 'fp8_e5m2'); show the bits.

    Rounds to the nearest representable value, ties to even, as hardware does.
    Values too small become subnormals or zero; values too large become infinity
    (FP8 E4M3 has no infinity: it saturates at its largest value, 448, as
    ``torch.float8_e4m3fn`` conversion does). Chapter 6.
    """
    layout = _layout(fmt)
    value = _check_number(x)
    s, e, m = _encode(layout, value)
    stored, kind = _decode(layout, s, e, m)
    return FloatBits(
        fmt=fmt, value=value, sign=str(s),
        exponent=format(e, f"0{layout.exponent_bits}b"),
        fraction=format(m, f"0{layout.fraction_bits}b"),
        stored=stored, kind=kind, bytes_per_value=layout.total_bits // 8,
    )


def decode_bits(bits: str, fmt: str) -> float:
    """The value of a bit string (sign, exponent, fraction; spaces and dots ignored) in ``fmt``."""
    layout = _layout(fmt)
    clean = bits.replace(" ", "").replace(".", "").replace("_", "")
    if len(clean) != layout.total_bits or set(clean) - {"0", "1"}:
        raise ValueError(f"{fmt} needs {layout.total_bits} bits of '0'/'1', got {bits!r}")
    s = int(clean[0])
    e = int(clean[1 : 1 + layout.exponent_bits], 2)
    m = int(clean[1 + layout.exponent_bits :], 2)
    return _decode(layout, s, e, m)[0]


@dataclass(frozen=True)
class FormatInfo:
    """Range and precision of a float format. ``eps`` is the spacing of values just above 1."""

    fmt: str
    bits: int
    exponent_bits: int
    fraction_bits: int
    bias: int
    max: float
    smallest_normal: float
    smallest_subnormal: float
    eps: float
    bytes_per_value: int


def format_info(fmt: str) -> FormatInfo:
    """Largest value, smallest normal and subnormal, and spacing near 1 of ``fmt``, from its bit layout."""
    layout = _layout(fmt)
    big_e, big_m = _max_finite_fields(layout)
    return FormatInfo(
        fmt=fmt, bits=layout.total_bits, exponent_bits=layout.exponent_bits,
        fraction_bits=layout.fraction_bits, bias=layout.bias,
        max=_decode(layout, 0, big_e, big_m)[0],
        smallest_normal=_decode(layout, 0, 1, 0)[0],
        smallest_subnormal=_decode(layout, 0, 0, 1)[0],
        eps=math.ldexp(1.0, -layout.fraction_bits),
        bytes_per_value=layout.total_bits // 8,
    )


def representable_values(fmt: str) -> torch.Tensor:
    """Every finite non-negative value of ``fmt``, sorted (float64). FP32 is refused: 2**31 values."""
    layout = _layout(fmt)
    if layout.total_bits > 16:
        raise ValueError(f"fmt {fmt!r} has 2**{layout.total_bits} bit patterns, too many to list; "
                         f"allowed: {', '.join(k for k, v in FORMATS.items() if v.total_bits <= 16)}")
    values = []
    for e in range(2**layout.exponent_bits):
        for m in range(2**layout.fraction_bits):
            v, kind = _decode(layout, 0, e, m)
            if kind not in ("inf", "nan"):
                values.append(v)
    return torch.tensor(sorted(values), dtype=torch.float64)


# --------------------------------------------------------------------------- integer quantization

INT8_MIN, INT8_MAX = -128, 127


@dataclass
class Int8Tensor:
    """An INT8-quantized tensor: ``x ≈ (q - zero_point) * scale``.

    ``q`` is int8 with the shape of the original; ``scale`` (float32) and
    ``zero_point`` (int32) are scalars for per-tensor quantization, or keep one
    entry per channel along ``axis`` (size 1 on the other dims, so they broadcast).
    """

    q: torch.Tensor
    scale: torch.Tensor
    zero_point: torch.Tensor
    axis: int | None
    scheme: str

    def dequantize(self) -> torch.Tensor:
        """Back to float32: ``(q - zero_point) * scale``."""
        return (self.q.to(torch.int32) - self.zero_point).to(torch.float32) * self.scale

    @property
    def nbytes(self) -> int:
        """Bytes to store it: 1 per value, 4 per scale, plus 4 per zero point for the zero-point scheme."""
        extra = self.zero_point.numel() * 4 if self.scheme == "zeropoint" else 0
        return self.q.numel() + self.scale.numel() * 4 + extra

    def __post_init__(self) -> None:
        if not isinstance(self.q, torch.Tensor) or self.q.dtype != torch.int8:
            raise _checks.ArgumentTypeError(
                f"q must be a torch.Tensor of dtype int8 (the codes), got {type(self.q).__name__}"
                + (f" of dtype {self.q.dtype}" if isinstance(self.q, torch.Tensor) else "")
                + "; build an Int8Tensor with quantize_int8(x)")
        _checks.tensor("scale", self.scale)
        _checks.tensor("zero_point", self.zero_point)
        if self.axis is not None:
            _checks.integer("axis", self.axis, -self.q.dim(), self.q.dim() - 1)
        _checks.choice("scheme", self.scheme, ("absmax", "zeropoint"))


def _check_tensor(x, axis: int | None) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise _checks.ArgumentTypeError(f"x must be a floating-point torch.Tensor, got {type(x).__name__}"
                         + (f" of dtype {x.dtype}" if isinstance(x, torch.Tensor) else ""))
    if x.numel() == 0:
        raise ValueError("x must not be empty")
    if not torch.isfinite(x).all():
        raise ValueError("x must hold only finite values (no inf or nan): they have no INT8 code")
    if axis is not None:
        if isinstance(axis, bool) or not isinstance(axis, int) or not -x.dim() <= axis < x.dim():
            raise (_checks.ArgumentTypeError if isinstance(axis, bool) or not isinstance(axis, int) else ValueError)(f"axis must be None (per tensor) or an int in [{-x.dim()}, {x.dim() - 1}] "
                             f"for a {x.dim()}-D tensor, got {axis!r}")
    return x.detach().to(torch.float32)


def _reduce(x: torch.Tensor, axis: int | None, op) -> torch.Tensor:
    """Reduce over everything but ``axis`` (or everything when None), keeping broadcastable dims."""
    if axis is None:
        return op(x.flatten(), 0)
    axis = axis % x.dim()
    dims = [d for d in range(x.dim()) if d != axis]
    out = x
    for d in dims:
        out = op(out, d, keepdim=True)
    return out


def _amax(t, d, keepdim=False):
    return t.abs().amax(d, keepdim=keepdim)


def _min(t, d, keepdim=False):
    return t.amin(d, keepdim=keepdim)


def _max(t, d, keepdim=False):
    return t.amax(d, keepdim=keepdim)


def quantize_absmax(x: torch.Tensor, axis: int | None = None) -> Int8Tensor:
    """Absmax (symmetric) INT8: ``scale = max|x| / 127``, ``q = round(x / scale)`` in
    [-127, 127].

    ``axis=None`` uses one scale for the whole tensor; ``axis=k`` one scale per
    index along dimension k (per channel: for a weight of shape (out, in), axis=0
    gives one scale per output feature). Zero stays exactly zero. Chapter 6.
    """
    x = _check_tensor(x, axis)
    absmax = _reduce(x, axis, _amax)
    scale = torch.clamp(absmax / 127.0, min=torch.finfo(torch.float32).eps)
    # times the reciprocal of the scale, as torch's kernels do
    q = torch.clamp(torch.round(x * (1.0 / scale)), -127, 127).to(torch.int8)
    zero_point = torch.zeros_like(scale, dtype=torch.int32)
    return Int8Tensor(q, scale, zero_point, axis, "absmax")


def quantize_zeropoint(x: torch.Tensor, axis: int | None = None) -> Int8Tensor:
    """Zero-point (asymmetric) INT8: map [min, max] onto all 256 codes -128..127.

    ``scale = (max - min) / 255`` and ``zero_point = -128 - round(min / scale)``,
    where the range is widened to include 0 so that zero has an exact code (as
    torch's ``MinMaxObserver`` does). Uses the codes the symmetric scheme wastes
    when values are lopsided (e.g. all positive after a ReLU). Chapter 6.
    """
    x = _check_tensor(x, axis)
    lo = torch.clamp(_reduce(x, axis, _min), max=0.0)  # the range [lo, hi], widened
    hi = torch.clamp(_reduce(x, axis, _max), min=0.0)  # to include 0
    scale = torch.clamp((hi - lo) / float(INT8_MAX - INT8_MIN),
                        min=torch.finfo(torch.float32).eps)
    zero_point = torch.clamp(INT8_MIN - torch.round(lo / scale), INT8_MIN, INT8_MAX)
    zero_point = zero_point.to(torch.int32)
    q = torch.round(x * (1.0 / scale)) + zero_point
    q = torch.clamp(q, INT8_MIN, INT8_MAX).to(torch.int8)
    return Int8Tensor(q, scale, zero_point, axis, "zeropoint")


def quantize_int8(x: torch.Tensor, scheme: str = "absmax", axis: int | None = None) -> Int8Tensor:
    """INT8-quantize ``x`` with ``scheme`` 'absmax' or 'zeropoint' (see those functions)."""
    if scheme == "absmax":
        return quantize_absmax(x, axis)
    if scheme == "zeropoint":
        return quantize_zeropoint(x, axis)
    raise ValueError(f"unknown scheme {scheme!r}; allowed: 'absmax', 'zeropoint'")


def quantization_error(x: torch.Tensor, qx: Int8Tensor) -> dict[str, float]:
    """How far ``qx.dequantize()`` is from ``x``: max and mean absolute error, and relative error (L2 norm ratio)."""
    _checks.tensor("x", x)
    if not isinstance(qx, Int8Tensor):
        raise _checks.ArgumentTypeError(f"qx must be an Int8Tensor (what quantize_int8(x) returns), "
                                        f"got {type(qx).__name__}")
    if tuple(x.shape) != tuple(qx.q.shape):
        raise ValueError(f"x and qx must have the same shape (qx quantizes x), "
                         f"got {tuple(x.shape)} and {tuple(qx.q.shape)}")
    err = qx.dequantize() - x.detach().float()
    return {
        "max_abs_error": err.abs().max().item(),
        "mean_abs_error": err.abs().mean().item(),
        "relative_error": (err.norm() / x.detach().float().norm().clamp_min(1e-30)).item(),
    }


def int8_matmul(x: torch.Tensor, w: torch.Tensor, mode: str = "vector-wise", threshold: float = 6.0) -> torch.Tensor:
    """``x @ w.T`` computed from INT8 codes: x (tokens, features), w (out, features); float32 result.

    mode:
      * 'per-tensor'  one absmax scale for x and one for w;
      * 'vector-wise' one scale per row of x (token) and per row of w (output
        feature), the scheme of LLM.int8 (Dettmers et al. 2022);
      * 'mixed'       LLM.int8's decomposition: the feature columns where some
        |x| >= ``threshold`` are multiplied in float32 (float16 on a GPU), the
        rest vector-wise in INT8, and the two results added.
    The integer products are summed exactly in int32, then rescaled, as an INT8
    matrix unit does. Chapter 6.
    """
    if mode not in ("per-tensor", "vector-wise", "mixed"):
        raise ValueError(f"unknown mode {mode!r}; allowed: 'per-tensor', 'vector-wise', 'mixed'")
    _checks.tensor("x", x)
    _checks.tensor("w", w)
    if x.dim() != 2 or w.dim() != 2 or x.size(1) != w.size(1):
        raise ValueError(f"x must be (tokens, features) and w (out, features) with the same features; "
                         f"got {tuple(x.shape)} and {tuple(w.shape)}")
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    x, w = x.float(), w.float()
    if mode == "mixed":
        outlier = (x.abs() >= threshold).any(dim=0)  # (features,): columns holding an outlier
        regular = int8_matmul(x[:, ~outlier], w[:, ~outlier], "vector-wise") if (~outlier).any() else 0.0
        return regular + x[:, outlier] @ w[:, outlier].T
    axis = None if mode == "per-tensor" else 0
    qx, qw = quantize_absmax(x, axis), quantize_absmax(w, axis)
    acc = qx.q.to(torch.int32) @ qw.q.to(torch.int32).T  # exact integer sums, (tokens, out)
    scale = qx.scale * (qw.scale.T if axis is not None else qw.scale)  # (tokens, 1) * (1, out)
    return acc.to(torch.float32) * scale


# --------------------------------------------------------------------------- quantizing a model


def _linear_weight(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(weight as (out, in), bias) of an nn.Linear or a transformers Conv1D (which stores (in, out))."""
    if isinstance(module, nn.Linear):
        return module.weight.detach(), None if module.bias is None else module.bias.detach()
    if _is_conv1d(module):
        return module.weight.detach().T, module.bias.detach()
    raise ValueError(f"expected nn.Linear or transformers Conv1D, got {type(module).__name__}")


def _is_conv1d(module: nn.Module) -> bool:
    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # pragma: no cover - transformers is a dependency
        return False
    return isinstance(module, Conv1D)


class Int8Linear(nn.Module):
    """A linear layer whose weight is stored as INT8 codes plus scales (weight-only quantization).

    The forward pass dequantizes the weight to the input's dtype and runs an
    ordinary ``F.linear``: it saves memory, not arithmetic. Built from an
    ``nn.Linear`` or a transformers ``Conv1D`` by :meth:`from_module`.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, scheme: str = "absmax",
                 per_channel: bool = True) -> None:
        super().__init__()
        _checks.tensor("weight", weight, dims=2)
        if bias is not None and (not isinstance(bias, torch.Tensor) or tuple(bias.shape) != (weight.shape[0],)):
            raise ValueError(f"bias must be None or a tensor of shape ({weight.shape[0]},) (one per output "
                             f"feature), got {tuple(bias.shape) if isinstance(bias, torch.Tensor) else bias!r:.60}")
        qw = quantize_int8(weight, scheme, axis=0 if per_channel else None)
        self.out_features, self.in_features = weight.shape
        self.scheme, self.per_channel = scheme, per_channel
        self.register_buffer("qweight", qw.q)  # (out, in) int8
        self.register_buffer("scale", qw.scale)  # (out, 1) or () float32
        if scheme == "zeropoint":
            self.register_buffer("zero_point", qw.zero_point)
        else:
            self.zero_point = None
        self.bias = nn.Parameter(bias.detach().clone(), requires_grad=False) if bias is not None else None

    @classmethod
    def from_module(cls, module: nn.Module, scheme: str = "absmax", per_channel: bool = True) -> Int8Linear:
        weight, bias = _linear_weight(module)
        return cls(weight, bias, scheme, per_channel)

    def dequantized_weight(self) -> torch.Tensor:
        """The float32 weight, (out, in), that the INT8 codes stand for."""
        q = self.qweight.to(torch.int32)
        if self.zero_point is not None:
            q = q - self.zero_point
        return q.to(torch.float32) * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.dequantized_weight().to(x.dtype)
        return F.linear(x, w, None if self.bias is None else self.bias.to(x.dtype))

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"scheme={self.scheme}, per_channel={self.per_channel}")


def linear_layers(model: nn.Module, skip_tied: bool = True) -> list[str]:
    """Names of the nn.Linear and transformers Conv1D modules of ``model``.

    With ``skip_tied`` (default), layers whose weight is shared with another
    module (GPT-2's ``lm_head``, tied to the token embedding) are left out:
    quantizing them would store a second copy of the embedding, not save one.
    """
    _checks.model("model", model)
    counts: dict[int, int] = {}
    for module in model.modules():
        for p in module.parameters(recurse=False):
            counts[id(p)] = counts.get(id(p), 0) + 1
    names = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) or _is_conv1d(module):
            if skip_tied and counts.get(id(module.weight), 0) > 1:
                continue
            names.append(name)
    return names


def _set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


def quantize_model(model: nn.Module, scheme: str = "absmax", per_channel: bool = True,
                   layers: list[str] | None = None) -> nn.Module:
    """A copy of ``model`` whose linear layers hold INT8 weights (:class:`Int8Linear`); ``model`` is unchanged.

    ``layers`` names the modules to quantize (default: :func:`linear_layers`,
    which covers GPT-2's ``Conv1D`` projections and skips the tied ``lm_head``).
    ``per_channel`` gives each output feature its own scale. Embeddings,
    layer norms and biases stay in float32. Chapter 6.
    """
    _checks.model("model", model)
    if scheme not in ("absmax", "zeropoint"):
        raise ValueError(f"unknown scheme {scheme!r}; allowed: 'absmax', 'zeropoint'")
    return _replace_linears(model, layers, lambda m: Int8Linear.from_module(m, scheme, per_channel))


def _replace_linears(model: nn.Module, layers: list[str] | None, make) -> nn.Module:
    """A copy of ``model`` with each named linear layer (default: :func:`linear_layers`) replaced by ``make(layer)``."""
    names = linear_layers(model) if layers is None else _checks.strings("layers", layers)
    modules = dict(model.named_modules())
    for name in names:
        if name not in modules or not (isinstance(modules[name], nn.Linear) or _is_conv1d(modules[name])):
            raise ValueError(f"{name!r} is not an nn.Linear or Conv1D of this model; linear layers: {linear_layers(model, False)}")
    out = copy.deepcopy(model)
    for name in names:
        _set_module(out, name, make(out.get_submodule(name)))
    return out


# --------------------------------------------------------------------------- 4-bit, group-wise


@dataclass
class GroupQuantized:
    """A weight (out, in) quantized in groups of ``group_size`` consecutive inputs of each row.

    Every group keeps its own float16 ``scale`` (and, in the zero-point scheme, a float16
    ``minimum``), the layout of GGUF's Q4_1 (zero point) and Q4_0-like absmax blocks:
    ``w ≈ scale * code + minimum`` with codes 0 .. 2**bits - 1 (zero point), or
    ``w ≈ scale * code`` with codes -(2**(bits-1) - 1) .. 2**(bits-1) - 1 (absmax).
    ``codes`` is kept one per byte here for clarity; :attr:`nbytes` counts them packed.
    A row whose length is not a multiple of ``group_size`` ends with a shorter group.
    """

    codes: torch.Tensor      # (out, n_groups, group_size), int16, padded in the last group
    scale: torch.Tensor      # (out, n_groups, 1) float16
    minimum: torch.Tensor | None  # (out, n_groups, 1) float16, zero-point scheme only
    in_features: int
    bits: int
    group_size: int
    scheme: str

    def dequantize(self) -> torch.Tensor:
        """Back to float32, (out, in)."""
        w = self.codes.to(torch.float32) * self.scale.to(torch.float32)
        if self.minimum is not None:
            w = w + self.minimum.to(torch.float32)
        return w.flatten(1)[:, : self.in_features]

    @property
    def nbytes(self) -> int:
        """Bytes to store it: ``bits`` per weight packed, plus 2 bytes per scale and per minimum."""
        out = self.codes.shape[0]
        codes = math.ceil(out * self.in_features * self.bits / 8)
        per_group = 2 + (2 if self.minimum is not None else 0)
        return codes + self.scale.numel() * per_group


def quantize_groupwise(w: torch.Tensor, bits: int = 4, group_size: int = 32,
                       scheme: str = "zeropoint") -> GroupQuantized:
    """Quantize a weight matrix (out, in) with ``bits``-bit codes and one scale per group of inputs.

    ``scheme='zeropoint'`` maps each group's [min, max] onto 2**bits levels (GGUF's Q4_1 and
    the zero-point scheme of chapter 6, without forcing 0 into the range);
    ``scheme='absmax'`` uses ``scale = max|w| / (2**(bits-1) - 1)`` and symmetric codes.
    Smaller groups follow the weights more closely and cost more scales. Chapter 6.
    """
    w = _check_tensor(w, None)
    if w.dim() != 2:
        raise ValueError(f"w must be a weight matrix (out, in), got shape {tuple(w.shape)}")
    bits = _checks.integer("bits", bits, 2, 8)
    group_size = _checks.positive_int("group_size", group_size)
    _checks.choice("scheme", scheme, ("zeropoint", "absmax"))
    out, n_in = w.shape
    n_groups = math.ceil(n_in / group_size)
    pad = n_groups * group_size - n_in
    # a short last group is padded with copies of its last weight, which changes no min or max
    padded = torch.cat([w, w[:, -1:].expand(out, pad)], dim=1) if pad else w
    g = padded.view(out, n_groups, group_size)
    if scheme == "zeropoint":
        lo, hi = g.amin(-1, keepdim=True), g.amax(-1, keepdim=True)
        step = (hi - lo) / (2 ** bits - 1)
        inv = torch.where(step > 0, 1 / torch.where(step > 0, step, 1), 0)
        # as llama.cpp's reference Q4_1 quantizer: codes from the float32 step, add 0.5, truncate
        codes = torch.trunc((g - lo) * inv + 0.5).clamp(0, 2 ** bits - 1)
        scale, minimum = step.to(torch.float16), lo.to(torch.float16)
    else:
        top = 2 ** (bits - 1) - 1
        scale = (g.abs().amax(-1, keepdim=True) / top).to(torch.float16)
        minimum = None
        s = scale.float()
        codes = torch.where(s > 0, torch.round(g / torch.where(s > 0, s, 1)), 0).clamp(-top, top)
    return GroupQuantized(codes.to(torch.int16), scale, minimum, n_in, bits, group_size, scheme)


class Int4Linear(nn.Module):
    """A linear layer whose weight is stored as packed 4-bit codes with float16 scales per group.

    Two codes per byte (``packed``: low nibble first, as in GGUF), one float16 scale (and
    minimum) per group; the forward pass dequantizes and runs ``F.linear``: weight-only, it
    saves memory, not arithmetic.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, group_size: int = 32,
                 scheme: str = "zeropoint") -> None:
        super().__init__()
        gq = quantize_groupwise(weight, 4, group_size, scheme)
        self.out_features, self.in_features = weight.shape
        self.group_size, self.scheme = group_size, scheme
        offset = 8 if scheme == "absmax" else 0  # absmax codes -7..7 are stored as 1..15
        codes = gq.codes.flatten(1)[:, : self.in_features]  # (out, in): the padding is not stored
        flat = (codes.flatten() + offset).to(torch.uint8)
        flat = torch.cat([flat, flat.new_zeros(flat.numel() % 2)])
        self.register_buffer("packed", flat[0::2] | (flat[1::2] << 4))  # two codes per byte
        self.register_buffer("scale", gq.scale)
        if gq.minimum is not None:
            self.register_buffer("minimum", gq.minimum)
        else:
            self.minimum = None
        self.bias = nn.Parameter(bias.detach().clone(), requires_grad=False) if bias is not None else None

    @classmethod
    def from_module(cls, module: nn.Module, group_size: int = 32, scheme: str = "zeropoint") -> Int4Linear:
        weight, bias = _linear_weight(module)
        return cls(weight, bias, group_size, scheme)

    def dequantized_weight(self) -> torch.Tensor:
        """The float32 weight, (out, in), that the 4-bit codes stand for."""
        codes = torch.stack([self.packed & 0x0F, self.packed >> 4], dim=1).flatten()
        codes = codes[: self.out_features * self.in_features].view(self.out_features, self.in_features)
        codes = codes.to(torch.float32) - (8 if self.scheme == "absmax" else 0)
        # every weight's group: input j belongs to group j // group_size
        group = torch.arange(self.in_features, device=codes.device) // self.group_size
        w = codes * self.scale.float()[:, group, 0]
        if self.minimum is not None:
            w = w + self.minimum.float()[:, group, 0]
        return w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.dequantized_weight().to(x.dtype)
        return F.linear(x, w, None if self.bias is None else self.bias.to(x.dtype))

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, 4 bits, "
                f"group_size={self.group_size}, scheme={self.scheme}")


def quantize_model_4bit(model: nn.Module, group_size: int = 32, scheme: str = "zeropoint",
                        layers: list[str] | None = None) -> nn.Module:
    """A copy of ``model`` whose linear layers hold packed 4-bit weights (:class:`Int4Linear`).

    Same layers as :func:`quantize_model` (tied ones skipped); ``model`` is unchanged.
    """
    _checks.model("model", model)
    _checks.positive_int("group_size", group_size)
    _checks.choice("scheme", scheme, ("zeropoint", "absmax"))
    return _replace_linears(model, layers, lambda m: Int4Linear.from_module(m, group_size, scheme))


# --------------------------------------------------------------------------- torchao, the library

TORCHAO_METHODS = ("int8_weight_only", "int8_dynamic", "int4_weight_only")


def torchao_quantize(model: nn.Module, method: str = "int8_weight_only", group_size: int = 32) -> nn.Module:
    """A copy of ``model`` quantized by torchao (``torchao.quantization.quantize_``), the library a reader would use.

    Same layers as :func:`quantize_model` (the tied output layer stays float32).
    ``method``: 'int8_weight_only' (``Int8WeightOnlyConfig``: INT8 weights, a scale per
    output feature), 'int8_dynamic' (``Int8DynamicActivationInt8WeightConfig``:
    activations quantized per token at every call as well), 'int4_weight_only'
    (``IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(group_size))``,
    which on a CPU keeps one 4-bit code per byte). Needs ``pip install torchao``.
    """
    _checks.model("model", model)
    _checks.choice("method", method, TORCHAO_METHODS)
    group_size = _checks.positive_int("group_size", group_size)
    from torchao.quantization import (
        Int8DynamicActivationInt8WeightConfig,
        Int8WeightOnlyConfig,
        IntxWeightOnlyConfig,
        quantize_,
    )
    from torchao.quantization.granularity import PerGroup

    names = set(linear_layers(model))
    if method == "int8_weight_only":
        config = Int8WeightOnlyConfig()
    elif method == "int8_dynamic":
        config = Int8DynamicActivationInt8WeightConfig()
    else:
        widths = {_linear_weight(model.get_submodule(n))[0].shape[1] for n in names}  # Conv1D too
        bad = sorted(w for w in widths if w % group_size)
        if bad:
            raise ValueError(f"torchao's int4_weight_only needs every layer's input size to be a multiple of "
                             f"group_size={group_size}; these are not: {bad}")
        config = IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(group_size))
    out = conv1d_to_linear(model, sorted(names))
    quantize_(out, config, filter_fn=lambda module, fqn: fqn in names)
    return out


def conv1d_to_linear(model: nn.Module, layers: list[str] | None = None) -> nn.Module:
    """A copy of ``model`` with its transformers ``Conv1D`` layers replaced by equal ``nn.Linear`` layers.

    PyTorch's quantization tools know ``nn.Linear`` only; GPT-2's projections are
    ``Conv1D`` (a linear layer with its weight stored transposed), so they must
    be converted first or they stay in float32.
    """
    _checks.model("model", model)
    names = [n for n in (linear_layers(model) if layers is None else layers) if _is_conv1d(model.get_submodule(n))]
    out = copy.deepcopy(model)
    for name in names:
        conv = out.get_submodule(name)
        lin = nn.Linear(conv.nx, conv.nf, dtype=conv.weight.dtype, device=conv.weight.device)
        with torch.no_grad():
            lin.weight.copy_(conv.weight.T)
            lin.bias.copy_(conv.bias)
        _set_module(out, name, lin)
    return out


def torch_dynamic_quantize(model: nn.Module, per_channel: bool = False) -> nn.Module:
    """PyTorch's own dynamic INT8 quantization of the same layers :func:`quantize_model` quantizes (CPU).

    Converts GPT-2's ``Conv1D`` to ``nn.Linear`` (:func:`conv1d_to_linear`), then
    calls ``torch.ao.quantization.quantize_dynamic`` on those layers only (the
    tied ``lm_head`` stays float32). Weights become INT8 (symmetric, per tensor,
    or per output channel with ``per_channel``); activations are quantized to
    UINT8 on the fly at every call, and the matrix product runs in integers.
    ``torch.ao.quantization`` is deprecated in torch 2.13 in favour of the
    ``torchao`` package, but still ships and works on CPU; its warnings are
    silenced here.
    """
    _checks.model("model", model)
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

    names = linear_layers(model)
    converted = conv1d_to_linear(model, names).cpu().float()
    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(converted, {name: qconfig for name in names}, dtype=torch.qint8)


def _inner_tensors(t: torch.Tensor) -> list[torch.Tensor] | None:
    """The plain tensors inside a tensor subclass (torchao's quantized weights), or None for a plain tensor."""
    flatten = getattr(type(t), "__tensor_flatten__", None)
    if flatten is None or type(t) in (torch.Tensor, nn.Parameter):
        return None
    names, _ = t.__tensor_flatten__()
    return [getattr(t, n) for n in names]


def _tensor_bytes(t: torch.Tensor) -> int:
    inner = _inner_tensors(t)
    if inner is not None:  # e.g. torchao's Int8Tensor: its codes, scales and zero points
        return sum(_tensor_bytes(i) for i in inner)
    if t.is_quantized:
        extra = 16  # one float64 scale and one int64 zero point
        if t.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
            extra = t.q_per_channel_scales().numel() * 8 + t.q_per_channel_zero_points().numel() * 8
        return t.numel() * t.element_size() + extra
    return t.numel() * t.element_size()


def state_bytes(model: nn.Module) -> int:
    """Bytes of the tensors in ``model.state_dict()``, counting shared (tied) tensors once.

    Works for torch's quantized modules too: an INT8 weight counts 1 byte per
    value plus its scales and zero points as torch stores them (float64, int64).
    """
    _checks.model("model", model)
    seen: set[tuple[int, int]] = set()
    total = 0

    def add(t) -> None:
        nonlocal total
        if isinstance(t, torch.Tensor):
            plain = not t.is_quantized and _inner_tensors(t) is None
            key = (t.data_ptr(), t.numel()) if plain else (id(t), t.numel())
            if key in seen:
                return
            seen.add(key)
            total += _tensor_bytes(t)
        elif isinstance(t, (tuple, list)):
            for item in t:
                add(item)

    for value in model.state_dict().values():
        add(value)
    return total


# --------------------------------------------------------------------------- round trips on float weights

ROUNDTRIP_SCHEMES = ("int8", "zeropoint", "absmax", "mxfp4")


def roundtrip_weight(w: torch.Tensor, scheme: str = "mxfp4", group_size: int = 32) -> torch.Tensor:
    """The float32 values a weight (out, in) comes back as after storage in ``scheme``.

    ``'int8'``: absmax INT8, one scale per output feature; ``'zeropoint'`` and ``'absmax'``:
    4-bit codes in groups of ``group_size`` inputs (:func:`quantize_groupwise`);
    ``'mxfp4'``: OCP MXFP4 blocks of 32 (``llmlab.gguf_blocks.encode_mxfp4``; ``group_size``
    must be 32 and ``in`` a multiple of 32). Used to measure a scheme against float
    weights without building its storage layout. Chapter 6.
    """
    w = _check_tensor(w, None)
    if w.dim() != 2:
        raise ValueError(f"w must be a weight matrix (out, in), got shape {tuple(w.shape)}")
    _checks.choice("scheme", scheme, ROUNDTRIP_SCHEMES)
    group_size = _checks.positive_int("group_size", group_size)
    if scheme == "int8":
        return quantize_absmax(w, axis=0).dequantize()
    if scheme == "mxfp4":
        from . import gguf_blocks

        if group_size != gguf_blocks.WEIGHTS_PER_BLOCK or w.shape[1] % group_size:
            raise ValueError(f"MXFP4 blocks hold 32 weights: group_size must be 32 and the rows a "
                             f"multiple of 32 long, got group_size={group_size}, shape {tuple(w.shape)}")
        raw = gguf_blocks.encode_mxfp4(w.detach().float().numpy())
        return torch.from_numpy(gguf_blocks.decode_mxfp4(raw))
    return quantize_groupwise(w, 4, group_size, scheme).dequantize()


def roundtrip_model(model: nn.Module, scheme: str = "mxfp4", group_size: int = 32,
                    layers: list[str] | None = None) -> nn.Module:
    """A copy of ``model`` whose linear layers (default :func:`linear_layers`) hold the
    float32 weights of :func:`roundtrip_weight`: the quality of a scheme, not its bytes."""
    _checks.model("model", model)
    _checks.choice("scheme", scheme, ROUNDTRIP_SCHEMES)
    out = copy.deepcopy(model)
    names = linear_layers(out) if layers is None else _checks.strings("layers", layers)
    for name in names:
        module = out.get_submodule(name)
        weight, _ = _linear_weight(module)
        new = roundtrip_weight(weight, scheme, group_size)
        with torch.no_grad():
            module.weight.copy_(new.T if _is_conv1d(module) else new)
    return out
