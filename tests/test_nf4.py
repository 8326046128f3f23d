"""QLoRA's NF4 (llmlab.nf4) against bitsandbytes' NF4 table, torchao's NF4Tensor and the
paper's numbers; round trips, packing, double quantization, the layer and a real model."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from llmlab import nf4, quant

pytestmark = pytest.mark.usefixtures("one_thread")

# bitsandbytes/functional.py, get_4bit_type("nf4") (bitsandbytes-foundation/bitsandbytes):
# the values create_normal_map(offset=0.9677083, use_extra_value=True) gives, as float32.
BNB_NF4 = [
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]


def normal_weight(rows: int = 256, cols: int = 512, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, cols, generator=g) * 0.02


def test_codebook_is_bitsandbytes_nf4_table():
    ours = nf4.nf4_codebook()
    assert ours.dtype == torch.float32 and ours.shape == (16,)
    # bitsandbytes takes its probabilities from a float32 linspace and stores float32 values:
    # 1e-6 covers both roundings (the largest difference is about 1.2e-7)
    torch.testing.assert_close(ours.double(), torch.tensor(BNB_NF4, dtype=torch.float64),
                               rtol=0, atol=1e-6)
    assert ours[7] == 0 and (ours[:7] < 0).all() and (ours[8:] > 0).all()  # zero is exact


def test_codebook_is_built_from_normal_quantiles_independently():
    from scipy.stats import norm

    # the paper: equal-probability bins of N(0, 1); 8 positive and 7 negative quantiles
    delta = 0.5 * (1 / 32 + 1 / 30)  # halfway between 1 - 1/(2*16) and 1 - 1/(2*15)
    pos = norm.ppf([1 - delta - i * (0.5 - delta) / 8 for i in range(8)])
    neg = -norm.ppf([1 - delta - i * (0.5 - delta) / 7 for i in range(7)])
    values = sorted([*neg, 0.0, *pos])
    expected = torch.tensor(values) / max(values)
    torch.testing.assert_close(nf4.nf4_codebook().double(), expected.double(), rtol=0, atol=1e-6)


def test_round_trip_is_codebook_times_block_scale_and_codes_are_nearest():
    w = normal_weight(64, 96)
    for dq in (False, True):
        t = nf4.quantize_nf4(w, block_size=64, double_quant=dq)
        book = nf4.nf4_codebook()  # checked against bitsandbytes' table above
        codes = t.unpacked_codes()
        expected = (book[codes].view(-1, 64) * t.block_scales()[:, None]).flatten()
        assert torch.equal(t.dequantize().flatten(), expected[: w.numel()])
        # every code is the nearest of the 16 values to w / absmax of its block
        blocks = w.flatten().view(-1, 64)
        x = blocks / blocks.abs().amax(1, keepdim=True)
        nearest = (x.flatten()[:, None] - book).abs().argmin(1)
        assert torch.equal(codes[: w.numel()], nearest)


def test_nf4_beats_int4_absmax_on_normal_weights_and_uses_its_codes_evenly():
    w = normal_weight(512, 512)
    q = nf4.quantize_nf4(w, block_size=64, double_quant=False)
    nf4_error = (q.dequantize() - w).pow(2).mean()
    int4 = quant.quantize_groupwise(w, bits=4, group_size=64, scheme="absmax")
    int4_error = (int4.dequantize() - w).pow(2).mean()
    assert nf4_error < 0.8 * int4_error  # measured: about 0.73 of INT4's squared error
    use = torch.bincount(q.unpacked_codes(), minlength=16).double() / w.numel()
    # the 14 inner codes are used about equally (1/16 = 6.25%); the two ends are the block
    # maxima (1 value in 64 = 1.6%) plus the few values near them
    assert ((use[1:15] > 0.03) & (use[1:15] < 0.10)).all(), use
    assert (use[[0, 15]] > 1 / 64).all() and (use[[0, 15]] < 0.03).all(), use
    int4_use = torch.bincount((int4.codes + 7).flatten().long(), minlength=15).double()
    int4_use = int4_use / int4_use.sum()

    def entropy(p: torch.Tensor) -> float:
        p = p[p > 0]
        return float(-(p * p.log2()).sum())

    assert entropy(use) > 3.8 > entropy(int4_use) + 0.3  # NF4 ~3.9 bits of 4; INT4 ~3.4


def test_double_quantized_scales_are_within_an_8_bit_step():
    w = normal_weight(300, 200) * torch.linspace(0.5, 3, 300)[:, None]  # scales that vary
    plain = nf4.quantize_nf4(w, double_quant=False)
    dq = nf4.quantize_nf4(w, double_quant=True)
    assert dq.scales.dtype == torch.int8 and plain.scales.dtype == torch.float32
    exact = plain.scales
    n_sb = math.ceil(exact.numel() / 256)
    assert dq.scale_steps.shape == (n_sb,)
    # the step of each block of 256 scales, from its own absmax around the mean
    centred = F.pad(exact - exact.mean(), (0, n_sb * 256 - exact.numel())).view(n_sb, 256)
    step = (centred.abs().amax(1) / 127).repeat_interleave(256)[: exact.numel()]
    err = (dq.block_scales() - exact).abs()
    assert (err <= step / 2 * (1 + 1e-5)).all() and err.max() > 0
    assert torch.equal(dq.unpacked_codes(), plain.unpacked_codes())  # codes use float32 absmax


def test_bits_per_value_is_the_papers():
    # QLoRA, section 3: 32/64 = 0.5 bit of scales per value; with double quantization
    # 8/64 + 32/(64*256) = 0.127. We also store the mean of the scales: 32 bits in all.
    n = 64 * 256 * 8
    w = torch.randn(n)
    dq = nf4.quantize_nf4(w, block_size=64, double_quant=True, scale_block=256)
    assert dq.bits_per_value() == pytest.approx(4 + 8 / 64 + 32 / (64 * 256) + 32 / n, abs=1e-12)
    assert round(dq.bits_per_value(), 3) == 4.127
    plain = nf4.quantize_nf4(w, block_size=64, double_quant=False)
    assert plain.bits_per_value() == 4 + 32 / 64 == 4.5
    assert plain.nbytes() == {"codes": n // 2, "scales": 4 * n // 64, "constants": 0,
                              "total": n // 2 + 4 * n // 64}
    assert dq.nbytes()["constants"] == 4 * (8 + 1)


def test_packing_two_codes_per_byte_and_odd_sizes():
    book = nf4.nf4_codebook()
    g = torch.Generator().manual_seed(1)
    perm = torch.randperm(16, generator=g)
    t = nf4.quantize_nf4(book[perm], block_size=16, double_quant=False)  # absmax 1: codes = perm
    assert t.codes.dtype == torch.uint8 and t.codes.numel() == 8
    assert t.codes.tolist() == [int(a) * 16 + int(b) for a, b in zip(perm[0::2], perm[1::2])]
    assert torch.equal(t.unpacked_codes(), perm)
    assert torch.equal(t.dequantize(), book[perm])
    for shape in [(3, 5), (7,), (1, 65), (129, 3)]:
        w = torch.randn(shape, generator=g)
        q = nf4.quantize_nf4(w, block_size=64)
        n_blocks = math.ceil(w.numel() / 64)
        assert q.shape == shape and q.dequantize().shape == shape
        assert q.codes.numel() == n_blocks * 32 and q.scales.numel() == n_blocks
        # the padding is zeros (code 7), which leave the block's absmax alone
        assert (q.unpacked_codes()[w.numel():] == 7).all()
        per_value = (q.dequantize() - w).abs() / q.block_scales().repeat_interleave(64)[
            : w.numel()].view(shape)
        assert per_value.max() <= 0.5 * (book[1] - book[0]) + 0.01  # within half the widest gap


def test_nf4_linear_is_f_linear_with_the_dequantized_weight():
    torch.manual_seed(0)
    lin = nn.Linear(96, 40)
    layer = nf4.NF4Linear.from_linear(lin)
    assert (layer.in_features, layer.out_features) == (96, 40)
    assert list(layer.parameters()) == []  # frozen: nothing to train
    x = torch.randn(3, 5, 96)
    w = nf4.quantize_nf4(lin.weight).dequantize()
    assert torch.equal(layer(x), F.linear(x, w, lin.bias))
    assert torch.equal(layer.dequantized_weight(), w)
    # the NF4 parts are buffers: they travel in state_dict and survive a copy
    state = layer.state_dict()
    assert {"codes", "scales", "scale_steps", "scale_mean", "bias"} <= set(state)
    other = nf4.NF4Linear.from_linear(nn.Linear(96, 40))
    other.load_state_dict(state)
    assert torch.equal(other(x), layer(x))
    moved = copy.deepcopy(layer).to(torch.float64)
    assert moved.codes.dtype == torch.uint8 and moved.scales.dtype == torch.int8
    no_bias = nf4.NF4Linear.from_linear(nn.Linear(96, 40, bias=False), double_quant=False)
    assert no_bias.bias is None and no_bias.scale_steps is None


def test_quantize_model_nf4_on_tiny_llama(make_llama):
    model = make_llama()
    ids = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(0))
    before = model(ids).logits
    float_bytes = quant.state_bytes(model)
    all_linear = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    out = nf4.quantize_model_nf4(model)
    assert out is model
    swapped = [n for n, m in model.named_modules() if isinstance(m, nf4.NF4Linear)]
    assert swapped == [n for n in all_linear if n != "lm_head"]
    assert isinstance(model.lm_head, nn.Linear)
    after = model(ids).logits
    assert (after - before).abs().max() < 0.1 * before.abs().max()
    sizes = nf4.model_bytes(model)
    assert sizes["total"] == quant.state_bytes(model)
    assert sizes["nf4_codes"] == sum(m.codes.numel() for m in model.modules()
                                     if isinstance(m, nf4.NF4Linear))
    quantized_values = sum(m.in_features * m.out_features for m in model.modules()
                           if isinstance(m, nf4.NF4Linear))
    assert sizes["nf4_codes"] == quantized_values // 2  # every size here is a whole block
    assert sizes["other"] == float_bytes - 4 * quantized_values  # the float32 weights left
    # only the named layers
    model2 = nf4.quantize_model_nf4(make_llama(), target_modules=["q_proj", "v_proj"])
    names = sorted(n for n, m in model2.named_modules() if isinstance(m, nf4.NF4Linear))
    assert names == sorted(n for n in all_linear if n.endswith(("q_proj", "v_proj")))


def test_unquantized_model_bytes_are_all_other(make_llama):
    model = make_llama()
    sizes = nf4.model_bytes(model)
    assert sizes == {"nf4_codes": 0, "nf4_constants": 0, "other": quant.state_bytes(model),
                     "total": quant.state_bytes(model)}


def test_same_as_torchao_nf4tensor():
    from torchao.quantization import to_nf4

    w = normal_weight(256, 512, seed=3)
    theirs = to_nf4(w, block_size=64, scaler_block_size=256)
    ours = nf4.quantize_nf4(w, block_size=64, double_quant=True, scale_block=256)
    # their table is bitsandbytes' rounded to 4 decimals: half a unit of the last decimal,
    # plus float32 rounding (-0.09105003 was rounded to -0.0911, 5.0008e-5 away)
    torch.testing.assert_close(theirs.nf4, nf4.nf4_codebook(), rtol=0, atol=5.1e-5)
    # codes: same packing (first value in the high nibble); a value within the table's
    # rounding (1e-4) of a midpoint between two codes may go either way
    their_codes = torch.stack([theirs.quantized_data >> 4, theirs.quantized_data & 15], 1)
    their_codes = their_codes.flatten().long()
    differ = their_codes != ours.unpacked_codes()
    assert differ.float().mean() < 1e-3
    blocks = w.flatten().view(-1, 64)
    x = (blocks / blocks.abs().amax(1, keepdim=True)).flatten()
    book = nf4.nf4_codebook()
    mid = (book[1:] + book[:-1]) / 2
    assert ((x[differ, None] - mid).abs().min(1).values < 1e-4).all()
    # scales: both quantize (scale - mean) to 8 bits per block of 256. Ours rounds to a step
    # of absmax/127; theirs to absmax/128 and clamps at 127, so it can be a whole step off
    their_scales = theirs.dequantize_scalers(theirs.quantized_scalers,
                                             theirs.quantization_factor, 256)
    centred = (blocks.abs().amax(1) - blocks.abs().amax(1).mean()).view(-1, 256)
    amax = centred.abs().amax(1).repeat_interleave(256)
    scale_tol = amax / 127 / 2 + amax / 128
    scale_diff = (ours.block_scales() - their_scales).abs()
    assert (scale_diff <= scale_tol * (1 + 1e-5)).all()
    # values: |c s - c' s'| <= |c - c'| s' + |c| |s - s'| with |c| <= 1
    same = ~differ
    tol = (5.1e-5 * their_scales + scale_diff).repeat_interleave(64) * (1 + 1e-5) + 1e-12
    diff = (ours.dequantize().flatten() - theirs.get_original_weight().flatten()).abs()
    assert (diff[same] <= tol[same]).all()


def test_real_model_loses_little_in_nf4():
    from llmlab import zoo

    model, tok = zoo.load("smollm2-135m-instruct")
    model.float().eval()
    text = ("The old lighthouse keeper climbed the stairs every evening to light the lamp, "
            "and the ships that passed in the night never knew his name.")
    ids = tok(text, return_tensors="pt").input_ids
    with torch.no_grad():
        before = model(ids, labels=ids)
        int4 = quant.quantize_model_4bit(model, group_size=64, scheme="absmax")  # a copy
        int4_out = int4(ids, labels=ids)
        nf4.quantize_model_nf4(model)
        after = model(ids, labels=ids)
    n = sum(isinstance(m, nf4.NF4Linear) for m in model.modules())
    assert n == 30 * 7  # q, k, v, o, gate, up, down in each of 30 blocks; the head is tied
    top1 = (after.logits.argmax(-1) == before.logits.argmax(-1)).float().mean()
    ratio = math.exp(after.loss - before.loss)  # perplexity after / before
    print(f"perplexity x{ratio:.3f}, top-1 agreement {top1:.3f}")
    # measured: perplexity 63.0 -> 73.6 in NF4 (x1.16), 112 in INT4 absmax with the same blocks
    int4_top1 = (int4_out.logits.argmax(-1) == before.logits.argmax(-1)).float().mean()
    print(f"INT4: perplexity x{math.exp(int4_out.loss - before.loss):.3f}, top-1 {int4_top1:.3f}")
    assert ratio < 1.3 and after.loss < int4_out.loss and top1 >= int4_top1


def test_from_linear_and_the_constructor_refuse_what_they_cannot_store():
    with pytest.raises(TypeError, match="nn.Linear.*conv1d_to_linear"):
        nf4.NF4Linear.from_linear(nn.Conv1d(2, 2, 1))
    with pytest.raises(ValueError, match="block_size"):
        nf4.NF4Linear.from_linear(nn.Linear(4, 4), block_size=5)
    with pytest.raises(ValueError, match="weight matrix"):
        nf4.NF4Linear(nf4.quantize_nf4(torch.ones(8)))
    with pytest.raises(ValueError, match="bias must have shape"):
        nf4.NF4Linear(nf4.quantize_nf4(torch.ones(4, 8)), torch.ones(3))


def test_shown_code_fits_the_page():
    from llmlab.book import show

    for obj in (nf4.nf4_codebook, nf4.quantize_nf4, nf4.NF4Linear.forward):
        code = show(obj).code
        assert max(len(line) for line in code.splitlines()) <= 88, obj
