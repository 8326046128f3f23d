"""A GGUF file (llama.cpp's format), read and decoded from scratch (chapter 6).

A GGUF file (the format of llama.cpp and of the real model in llmlab's zoo) is a header,
a list of key-value metadata (architecture, tokenizer, chat template), a table of tensor
descriptions, and then the tensors' bytes, each aligned to ``general.alignment`` bytes.
Quantized tensors are stored in **blocks**: a fixed number of weights that share their
own scale. This module decodes the two block types of SmolLM2-135M-Instruct's file, and MXFP4, with
a few lines of NumPy each, so the bit layout is on the page:

- **Q4_1**: 32 weights in 20 bytes. Bytes 0-1: the scale ``d`` (float16); bytes 2-3: the
  minimum ``m`` (float16); bytes 4-19: 32 codes of 4 bits, two per byte. The low nibble of
  byte ``4 + j`` is weight ``j`` and its high nibble weight ``j + 16``. Each weight is
  ``d * code + m``: the zero-point (asymmetric) scheme with 16 levels per block.
- **Q8_0**: 32 weights in 34 bytes. Bytes 0-1: the scale ``d`` (float16); bytes 2-33:
  32 signed 8-bit codes. Each weight is ``d * code``: the absmax (symmetric) scheme.
- **MXFP4** (OCP Microscaling, 2023; the block type of gpt-oss in GGUF): 32 weights in
  17 bytes. Byte 0: a shared power-of-two scale stored as its exponent plus 127 (E8M0);
  bytes 1-16: 32 FP4 E2M1 codes, two per byte as in Q4_1. Each weight is
  ``2**(e - 127) * E2M1_VALUES[code]``. :func:`encode_mxfp4` writes it as gguf does.

The ``gguf`` package (the file format's reference reader, from the llama.cpp project)
parses the file; the tests check every tensor decoded here against its
``gguf.quants.dequantize``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import _checks

WEIGHTS_PER_BLOCK = 32
# bytes per block of each block type this module decodes: two float16 numbers and 16 bytes of
# 4-bit codes (Q4_1); one float16 scale and 32 bytes of 8-bit codes (Q8_0)
BLOCK_BYTES = {"Q4_1": 2 + 2 + WEIGHTS_PER_BLOCK // 2, "Q8_0": 2 + WEIGHTS_PER_BLOCK}


def bits_per_weight(kind: str) -> float:
    """Bits per weight of a block type, its shared scale (and minimum) included: 5.0 for Q4_1, 8.5 for Q8_0, 32 for F32."""
    _checks.string("kind", kind)
    if kind == "F32":
        return 32.0
    if kind == "F16":
        return 16.0
    if kind not in BLOCK_BYTES:
        raise ValueError(f"unknown block type {kind!r}; llmlab decodes {sorted(BLOCK_BYTES)} (and F32, F16)")
    return BLOCK_BYTES[kind] * 8 / WEIGHTS_PER_BLOCK


def _blocks(raw: np.ndarray, kind: str) -> np.ndarray:
    if not isinstance(raw, np.ndarray) or raw.dtype != np.uint8:
        raise TypeError(f"a {kind} tensor's data must be a NumPy array of uint8 (its raw bytes), "
                        f"got {type(raw).__name__}{'' if not isinstance(raw, np.ndarray) else ' of ' + str(raw.dtype)}")
    if raw.size % BLOCK_BYTES[kind]:
        raise ValueError(f"{raw.size} bytes is not a whole number of {kind} blocks of {BLOCK_BYTES[kind]} bytes")
    return raw.reshape(-1, BLOCK_BYTES[kind])


def _float16(two_bytes: np.ndarray) -> np.ndarray:
    """Columns of two little-endian bytes read as one float16 each, returned as float32 of shape (n, 1)."""
    return np.ascontiguousarray(two_bytes).view("<f2").astype(np.float32)


def decode_q4_1(raw: np.ndarray) -> np.ndarray:
    """Weights of Q4_1 blocks (raw bytes, 20 per block) as float32, in file order.

    Each weight is ``d * code + m``.
    """
    blocks = _blocks(raw, "Q4_1")
    d = _float16(blocks[:, 0:2])                 # (n_blocks, 1) scale
    m = _float16(blocks[:, 2:4])                 # (n_blocks, 1) minimum
    packed = blocks[:, 4:]                       # (n_blocks, 16): two codes per byte
    codes = np.concatenate([packed & 0x0F, packed >> 4], axis=1)  # weights 0-15, 16-31
    return (d * codes + m).reshape(raw.shape[:-1] + (-1,))


def decode_q8_0(raw: np.ndarray) -> np.ndarray:
    """Weights of Q8_0 blocks (raw bytes, 34 per block) as float32, in file order: ``d * code``."""
    blocks = _blocks(raw, "Q8_0")
    d = _float16(blocks[:, 0:2])                 # (n_blocks, 1) scale
    codes = blocks[:, 2:].view(np.int8)          # (n_blocks, 32) signed codes
    return (d * codes).reshape(raw.shape[:-1] + (-1,))


def encode_q4_1(weights: np.ndarray) -> np.ndarray:
    """Weights (float32, a multiple of 32 per row) as Q4_1 blocks, the way llama.cpp's reference quantizer does.

    Per block: ``m = min``, ``d = (max - min) / 15``, ``code = round((w - m) / d)`` clipped
    to 0-15; ``d`` and ``m`` are stored as float16.
    """
    if not isinstance(weights, np.ndarray) or weights.dtype.kind != "f":
        raise TypeError(f"weights must be a NumPy array of floats, got {type(weights).__name__}"
                        + (f" of {weights.dtype}" if isinstance(weights, np.ndarray) else ""))
    w = weights.astype(np.float32, copy=False)
    if w.size % WEIGHTS_PER_BLOCK:
        raise ValueError(f"Q4_1 needs a multiple of {WEIGHTS_PER_BLOCK} weights, got {w.size}")
    b = w.reshape(-1, WEIGHTS_PER_BLOCK)
    lo, hi = b.min(axis=1, keepdims=True), b.max(axis=1, keepdims=True)
    d = (hi - lo) / 15
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    codes = np.clip(((b - lo) * inv + 0.5).astype(np.int32), 0, 15).astype(np.uint8)  # llama.cpp adds 0.5, truncates
    packed = codes[:, :16] | (codes[:, 16:] << 4)
    head = np.concatenate([d.astype("<f2").view(np.uint8), lo.astype("<f2").view(np.uint8)], axis=1)
    return np.concatenate([head, packed], axis=1).reshape(w.shape[:-1] + (-1,))


# ---- MXFP4 (OCP Microscaling, 2023): 32 FP4 values sharing one power-of-two scale ----------
# FP4 E2M1 (1 sign, 2 exponent, 1 fraction bit) has 8 magnitudes; code c (0-15) is
# E2M1_VALUES[c]: bit 3 is the sign. Same order as gguf's MXFP4 table (which doubles them).
E2M1_VALUES = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6],
                       dtype=np.float32)
MXFP4_BLOCK_BYTES = 1 + WEIGHTS_PER_BLOCK // 2  # one E8M0 scale byte + 32 codes of 4 bits


def encode_mxfp4(weights: np.ndarray) -> np.ndarray:
    """Weights (floats, a multiple of 32) as MXFP4 blocks of 17 bytes, in gguf's layout.

    Per block of 32: the shared scale is ``2**(floor(log2(max|w|)) - 2)`` (the largest
    E2M1 magnitude, 6, is ``1.5 * 2**2``), stored as its exponent plus 127 in one byte
    (E8M0); each weight is the E2M1 value nearest to ``w / scale`` (beyond 6: clipped).
    Byte 0 is the scale, bytes 1-16 the codes: low nibble weight j, high nibble j + 16.
    """
    if not isinstance(weights, np.ndarray) or weights.dtype.kind != "f":
        got = type(weights).__name__
        if isinstance(weights, np.ndarray):
            got += f" of {weights.dtype}"
        raise TypeError(f"weights must be a NumPy array of floats, got {got}")
    if weights.size % WEIGHTS_PER_BLOCK:
        raise ValueError(f"MXFP4 needs a multiple of {WEIGHTS_PER_BLOCK} weights, "
                         f"got {weights.size}")
    b = weights.astype(np.float32).reshape(-1, WEIGHTS_PER_BLOCK)  # (n_blocks, 32)
    amax = np.abs(b).max(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        e = np.where(amax > 0, np.floor(np.log2(amax)) - 2 + 127, 0).astype(np.uint8)
    scale = np.ldexp(np.float32(1), e.astype(np.int32) - 127)  # (n_blocks, 1)
    # nearest E2M1 value; on a tie the first in the table, as gguf does
    # (n_blocks, 32, 16): each weight's distance to each of the 16 code values
    distance = np.abs(b[:, :, None] - scale[:, :, None] * E2M1_VALUES)
    codes = distance.argmin(-1).astype(np.uint8)
    packed = codes[:, :16] | (codes[:, 16:] << 4)
    return np.concatenate([e, packed], axis=1).reshape(weights.shape[:-1] + (-1,))


def decode_mxfp4(raw: np.ndarray) -> np.ndarray:
    """Weights of MXFP4 blocks (raw bytes, 17 per block) as float32.

    Each weight is ``2**(e - 127) * E2M1_VALUES[code]``.
    """
    if not isinstance(raw, np.ndarray) or raw.dtype != np.uint8:
        raise TypeError("MXFP4 data must be a NumPy array of uint8 (its raw bytes), "
                        f"got {type(raw).__name__}")
    if raw.size % MXFP4_BLOCK_BYTES:
        raise ValueError(f"{raw.size} bytes is not a whole number of MXFP4 blocks "
                         f"of {MXFP4_BLOCK_BYTES} bytes")
    blocks = raw.reshape(-1, MXFP4_BLOCK_BYTES)
    e = blocks[:, :1].astype(np.int32)                            # (n_blocks, 1) E8M0
    scale = np.ldexp(np.float32(1), e - 127)                      # (n_blocks, 1)
    packed = blocks[:, 1:]                                        # (n_blocks, 16)
    codes = np.concatenate([packed & 0x0F, packed >> 4], axis=1)  # weights 0-15, 16-31
    return (scale * E2M1_VALUES[codes]).reshape(raw.shape[:-1] + (-1,))


def decode(raw: np.ndarray, kind: str) -> np.ndarray:
    """A tensor's raw data (as the ``gguf`` reader gives it) decoded to float32, whatever its block type."""
    _checks.string("kind", kind)
    if kind == "Q4_1":
        return decode_q4_1(raw)
    if kind == "Q8_0":
        return decode_q8_0(raw)
    if kind == "MXFP4":
        return decode_mxfp4(raw)
    if kind in ("F32", "F16"):
        if not isinstance(raw, np.ndarray) or raw.dtype.kind != "f":
            raise TypeError(f"an {kind} tensor's data must be a NumPy array of floats, got {type(raw).__name__}")
        return raw.astype(np.float32)
    raise ValueError(f"unknown block type {kind!r}; llmlab decodes Q4_1, Q8_0, MXFP4, F32 and F16")


@dataclass(frozen=True)
class TensorEntry:
    """One tensor of a GGUF file: its name, block type, shape (PyTorch order: rows first) and bytes in the file."""

    name: str
    kind: str
    shape: tuple[int, ...]
    n_bytes: int
    offset: int

    @property
    def n_weights(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True)
class GGUFSummary:
    """What a GGUF file holds, and where its bytes go."""

    path: Path
    file_bytes: int
    metadata: dict
    tensors: list[TensorEntry]
    data_start: int  # bytes before the first tensor: header, metadata and the tensor table (with padding)

    def by_kind(self) -> dict[str, dict[str, int | float]]:
        """Per block type: tensors, weights, bytes and bits per weight (computed from the bytes)."""
        out: dict[str, dict[str, int | float]] = {}
        for t in self.tensors:
            row = out.setdefault(t.kind, {"tensors": 0, "weights": 0, "bytes": 0})
            row["tensors"] += 1
            row["weights"] += t.n_weights
            row["bytes"] += t.n_bytes
        for row in out.values():
            row["bits per weight"] = row["bytes"] * 8 / row["weights"]
        return out

    def tensor_bytes(self) -> int:
        return sum(t.n_bytes for t in self.tensors)


def _field_value(field):
    """A metadata field's value from the ``gguf`` reader: a number, a string, or a list of them."""
    import gguf

    types = field.types
    if not types:
        return None
    if types[0] == gguf.GGUFValueType.ARRAY:
        if len(field.data) > 8:  # token lists and merges: their length is the fact worth keeping
            return f"<{len(field.data)} items>"
        return [_part(field, i) for i in field.data]
    return _part(field, field.data[0])


def _part(field, index):
    import gguf

    part = field.parts[index]
    if field.types[-1] == gguf.GGUFValueType.STRING:
        return bytes(part).decode("utf-8", errors="replace")
    return part.tolist()[0] if len(part) == 1 else part.tolist()


def read(path: str | Path) -> tuple[GGUFSummary, object]:
    """Parse a GGUF file with the ``gguf`` package: its summary, and the reader (for the tensors' raw data)."""
    import gguf

    if not isinstance(path, (str, Path)):
        raise TypeError(f"path must be a str or pathlib.Path to a .gguf file, got {type(path).__name__}")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no GGUF file at {path}")
    reader = gguf.GGUFReader(str(path))
    metadata = {name: _field_value(f) for name, f in reader.fields.items() if not name.startswith("GGUF.")}
    tensors = [TensorEntry(t.name, t.tensor_type.name, tuple(int(n) for n in reversed(t.shape)),
                           int(t.n_bytes), int(t.data_offset)) for t in reader.tensors]
    summary = GGUFSummary(path, path.stat().st_size, metadata, tensors,
                          min(t.offset for t in tensors) if tensors else path.stat().st_size)
    return summary, reader


def tensor_weights(reader, name: str) -> np.ndarray:
    """One tensor of the file decoded by llmlab, in PyTorch's shape (rows first)."""
    if not hasattr(reader, "tensors") or isinstance(reader, (str, Path)):
        raise TypeError(f"reader must be the gguf.GGUFReader that read() returns (summary, reader = read(path)), "
                        f"got {type(reader).__name__}")
    _checks.string("name", name)
    for t in reader.tensors:
        if t.name == name:
            values = decode(t.data, t.tensor_type.name)
            return values.reshape(tuple(int(n) for n in reversed(t.shape)))
    raise ValueError(f"no tensor named {name!r} in the file; it has e.g. {[t.name for t in reader.tensors[:3]]}")


def unpermute_rotary(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Undo the row order llama.cpp's converter gives ``attn_q`` and ``attn_k`` weights.

    GGUF stores each head's rows with the two rotary halves interleaved (pairs), while
    Hugging Face's Llama keeps the first half then the second half; transformers' GGUF
    loader reverses the permutation the same way.
    """
    if not isinstance(w, np.ndarray) or w.ndim != 2:
        raise TypeError(f"w must be a 2-D NumPy array (rows, columns), got {type(w).__name__}"
                        + (f" of shape {w.shape}" if isinstance(w, np.ndarray) else ""))
    n_heads = _checks.positive_int("n_heads", n_heads)
    rows = w.shape[0]
    if rows % (2 * n_heads):
        raise ValueError(f"w has {rows} rows, which {n_heads} heads of two rotary halves cannot split "
                         f"(rows must be a multiple of 2 * n_heads = {2 * n_heads})")
    return w.reshape(n_heads, rows // n_heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


# the Hugging Face name of each GGUF tensor of a Llama model (blk.N.* in layer N)
_HF_NAMES = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
}


def hf_name(gguf_name: str) -> str:
    """The name a GGUF tensor of a Llama model has in transformers' ``LlamaForCausalLM``."""
    _checks.string("gguf_name", gguf_name)
    if gguf_name == "token_embd.weight":
        return "model.embed_tokens.weight"
    if gguf_name == "output_norm.weight":
        return "model.norm.weight"
    if gguf_name == "output.weight":
        return "lm_head.weight"
    parts = gguf_name.split(".")
    if len(parts) == 4 and parts[0] == "blk" and parts[2] in _HF_NAMES:
        return f"model.layers.{parts[1]}.{_HF_NAMES[parts[2]]}.{parts[3]}"
    raise ValueError(f"{gguf_name!r} is not a GGUF tensor name of a Llama model")
