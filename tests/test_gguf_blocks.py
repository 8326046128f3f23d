"""llmlab.gguf_blocks: GGUF's Q4_1 and Q8_0 blocks decoded from scratch, checked against the gguf package."""

import numpy as np
import pytest
import torch

from llmlab import gguf_blocks as gb
from llmlab import quant, zoo

REAL = zoo.PACKAGED["smollm2-135m-instruct"]
needs_file = pytest.mark.skipif(REAL.file() is None, reason=f"needs {REAL.install_command}")


def _f16_bytes(x: float) -> list[int]:
    return list(np.array([x], dtype="<f2").view(np.uint8))


def test_q4_1_block_by_hand():
    # d = 0.5, m = -1.0; byte j holds code j (low nibble) and code 15 - j (high nibble)
    codes_low, codes_high = list(range(16)), [15 - j for j in range(16)]
    packed = [lo | (hi << 4) for lo, hi in zip(codes_low, codes_high)]
    raw = np.array(_f16_bytes(0.5) + _f16_bytes(-1.0) + packed, dtype=np.uint8)
    expected = [0.5 * c - 1.0 for c in codes_low + codes_high]  # weights 0-15 from low nibbles, 16-31 from high
    assert gb.decode_q4_1(raw).tolist() == expected


def test_q8_0_block_by_hand():
    codes = [-128, -1, 0, 1, 127] + [2] * 27
    raw = np.array(_f16_bytes(0.25) + list(np.array(codes, dtype=np.int8).view(np.uint8)), dtype=np.uint8)
    assert gb.decode_q8_0(raw).tolist() == [0.25 * c for c in codes]


def test_bits_per_weight_agree_with_the_gguf_package():
    import gguf

    for kind in ["Q4_1", "Q8_0"]:
        block, size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[kind]]
        assert gb.bits_per_weight(kind) == size * 8 / block
    assert (gb.bits_per_weight("Q4_1"), gb.bits_per_weight("Q8_0")) == (5.0, 8.5)


def test_encode_q4_1_round_trips_a_block_on_its_own_grid():
    w = (np.arange(32, dtype=np.float32) % 16) * 0.125 - 0.5  # codes 0..15 twice, d = 0.125, m = -0.5
    raw = gb.encode_q4_1(w)
    assert raw.shape == (20,) and np.array_equal(gb.decode_q4_1(raw), w)


@pytest.mark.parametrize("call,error", [
    (lambda: gb.decode_q4_1([1, 2, 3]), TypeError),
    (lambda: gb.decode_q4_1(np.zeros(21, dtype=np.uint8)), ValueError),
    (lambda: gb.decode_q8_0(np.zeros(34, dtype=np.float32)), TypeError),
    (lambda: gb.decode(np.zeros(20, dtype=np.uint8), "Q5_K"), ValueError),
    (lambda: gb.bits_per_weight("Q2"), ValueError),
    (lambda: gb.encode_q4_1(np.zeros(31, dtype=np.float32)), ValueError),
    (lambda: gb.hf_name("blk.0.attn_x.weight"), ValueError),
    (lambda: gb.read(3), TypeError),
    (lambda: gb.read("/no/such/file.gguf"), ValueError),
])
def test_bad_input_is_refused_clearly(call, error):
    with pytest.raises(error):
        call()


@pytest.fixture(scope="module")
def real_file():
    return gb.read(REAL.file())


@needs_file
def test_every_tensor_of_the_real_file_decodes_as_gguf_does(real_file):
    import gguf

    _, reader = real_file
    kinds = set()
    for t in reader.tensors:
        ours = gb.decode(t.data, t.tensor_type.name)
        theirs = gguf.quants.dequantize(t.data, t.tensor_type)
        assert ours.shape == theirs.shape and np.array_equal(ours, theirs), t.name
        kinds.add(t.tensor_type.name)
    assert kinds == {"Q4_1", "Q8_0", "F32"}


@needs_file
def test_the_files_size_is_its_header_and_metadata_plus_its_blocks(real_file):
    summary, _ = real_file
    kinds = summary.by_kind()
    assert {k: v["tensors"] for k, v in kinds.items()} == {"Q4_1": 210, "Q8_0": 1, "F32": 61}
    for kind, row in kinds.items():  # bytes are exactly blocks of 32 weights at the type's size
        assert row["bytes"] == row["weights"] * gb.bits_per_weight(kind) / 8
    assert summary.data_start + summary.tensor_bytes() == summary.file_bytes == REAL.file().stat().st_size
    assert summary.metadata["llama.block_count"] == 30 and summary.metadata["llama.embedding_length"] == 576


@needs_file
def test_the_zoos_model_holds_exactly_the_decoded_weights(real_file):
    _, reader = real_file
    model, _ = zoo.load("smollm2-135m-instruct", device="cpu")
    state = model.state_dict()
    heads = {"attn_q": model.config.num_attention_heads, "attn_k": model.config.num_key_value_heads}
    for t in reader.tensors:
        w = gb.tensor_weights(reader, t.name)
        kind = t.name.split(".")[2] if t.name.startswith("blk.") else ""
        if kind in heads:
            w = gb.unpermute_rotary(w, heads[kind])
        assert np.array_equal(w, state[gb.hf_name(t.name)].numpy()), t.name


@needs_file
def test_llmlab_4bit_group_32_zero_point_rebuilds_the_files_q4_1_blocks(real_file):
    """Re-quantizing the file's own weights gives back its bytes: they already lie on that grid."""
    _, reader = real_file
    q4 = [t for t in reader.tensors if t.tensor_type.name == "Q4_1"]
    for t in q4[:: len(q4) // 12]:  # a dozen tensors across the layers
        w = gb.tensor_weights(reader, t.name)
        assert np.array_equal(gb.encode_q4_1(w), t.data), t.name
        back = quant.quantize_groupwise(torch.from_numpy(w), 4, 32, "zeropoint").dequantize()
        assert torch.equal(back, torch.from_numpy(w)), t.name
