"""MXFP4 blocks (llmlab.gguf_blocks) against the gguf package, and quant.roundtrip_weight."""

import gguf
import numpy as np
import torch

from llmlab import gguf_blocks, quant

MX = gguf.GGMLQuantizationType.MXFP4


def _weights(seed: int = 0) -> np.ndarray:
    w = np.random.default_rng(seed).standard_normal((16, 96)).astype(np.float32) * 0.05
    w[0, :32] = 0.0       # an all-zero block
    w[1, 5] = 3.0         # a block with one large weight
    w[2, :32] = 6.0       # exactly the largest E2M1 value times a power of two
    return w


def test_mxfp4_bytes_equal_gguf_quantize():
    w = _weights()
    assert np.array_equal(gguf_blocks.encode_mxfp4(w), gguf.quants.quantize(w, MX))


def test_mxfp4_decode_equals_gguf_dequantize():
    raw = gguf.quants.quantize(_weights(1), MX)
    assert np.array_equal(gguf_blocks.decode_mxfp4(raw), gguf.quants.dequantize(raw, MX))
    assert np.array_equal(gguf_blocks.decode(raw, "MXFP4"), gguf_blocks.decode_mxfp4(raw))


def test_mxfp4_block_is_17_bytes_and_values_lie_on_the_e2m1_grid():
    w = _weights()
    raw = gguf_blocks.encode_mxfp4(w)
    assert raw.shape == (16, 96 // 32 * 17)
    back = gguf_blocks.decode_mxfp4(raw).reshape(-1, 32)
    scale = np.ldexp(1.0, raw.reshape(-1, 17)[:, :1].astype(int) - 127)
    assert np.all(np.isin(np.abs(back / scale), np.abs(gguf_blocks.E2M1_VALUES)))
    assert np.allclose(gguf_blocks.decode_mxfp4(gguf_blocks.encode_mxfp4(w[2:3, :32])), w[2:3, :32])


def test_roundtrip_weight_matches_the_quantizers():
    w = torch.from_numpy(_weights())
    assert torch.equal(quant.roundtrip_weight(w, "int8"), quant.quantize_absmax(w, axis=0).dequantize())
    assert torch.equal(quant.roundtrip_weight(w, "zeropoint", 32),
                       quant.quantize_groupwise(w, 4, 32, "zeropoint").dequantize())
    mx = gguf.quants.dequantize(gguf.quants.quantize(w.numpy(), MX), MX)
    assert np.array_equal(quant.roundtrip_weight(w, "mxfp4").numpy(), mx)


def test_roundtrip_model_changes_a_copy_and_keeps_the_original():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 8))
    before = [p.detach().clone() for p in model.parameters()]
    out = quant.roundtrip_model(model, "mxfp4")
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    for i in (0, 2):
        w = model[i].weight.detach()
        assert torch.equal(out[i].weight.detach(), quant.roundtrip_weight(w, "mxfp4"))
        assert torch.equal(out[i].bias, model[i].bias)
