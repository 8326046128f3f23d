"""llmlab.quant against the libraries it explains: struct and torch dtype conversions for
float bits, torch's quantize_per_tensor / quantize_per_channel and observers for INT8,
and transformers' GPT-2 for model quantization."""

from __future__ import annotations

import math
import struct
import warnings

import pytest
import torch

from llmlab import quant


@pytest.fixture(autouse=True)
def _quiet_torch_ao():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization and quantized tensors are deprecated in 2.13
        yield


def _torch_bits(values: torch.Tensor, fmt: str) -> list[int]:
    layout = quant.FORMATS[fmt]
    ints = {8: torch.uint8, 16: torch.int16, 32: torch.int32}[layout.total_bits]
    return [v % (1 << layout.total_bits) for v in values.to(layout.torch_dtype).view(ints).tolist()]


def _test_values() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    spread = torch.randn(4000, generator=g) * 10.0 ** torch.randint(-45, 39, (4000,), generator=g).float()
    edges = torch.tensor([0.0, -0.0, 1.0, -1.0, 65504.0, 65519.0, 65520.0, 1e-8, 2**-24, 2**-25, 3 * 2**-26,
                          448.0, 464.0, 500.0, 57344.0, 61440.0, 2**-9, 2**-10, 1.5 * 2**-10, 3e38, 1e-45,
                          float("inf"), float("-inf")])
    return torch.cat([spread.float(), edges])


# ---------------------------------------------------------------- float formats


@pytest.mark.parametrize("fmt", list(quant.FORMATS))
def test_float_bits_match_torch_conversion_bit_for_bit(fmt):
    values = _test_values()
    expected = _torch_bits(values, fmt)
    ours = [int(quant.float_bits(v, fmt).bits, 2) for v in values.tolist()]
    assert ours == expected


@pytest.mark.parametrize("fmt,code", [("fp32", ">f"), ("fp16", ">e")])
def test_float_bits_match_struct_from_float64(fmt, code):
    g = torch.Generator().manual_seed(1)
    values = (torch.randn(2000, generator=g, dtype=torch.float64) * 10.0 ** torch.randint(-8, 5, (2000,), generator=g)).tolist()
    for v in values:
        try:
            packed = struct.pack(code, v)
        except OverflowError:
            assert quant.float_bits(v, fmt).kind == "inf"
            continue
        assert int(quant.float_bits(v, fmt).bits, 2) == int.from_bytes(packed, "big"), v


@pytest.mark.parametrize("fmt", list(quant.FORMATS))
def test_stored_value_is_what_torch_stores(fmt):
    values = _test_values()
    stored = values.to(quant.FORMATS[fmt].torch_dtype).double().tolist()
    for v, s in zip(values.tolist(), stored):
        assert quant.float_bits(v, fmt).stored == s


def test_pi_in_each_format_as_the_syllabus_states():
    # SYLLABUS section 6: 3.141592 in FP32 is 3.1415920257568359375; pi in FP16 and BF16 is 3.140625
    assert quant.float_bits(3.141592, "fp32").exact == "3.1415920257568359375"
    assert quant.float_bits(math.pi, "fp16").stored == 3.140625
    assert quant.float_bits(math.pi, "bf16").stored == 3.140625
    assert quant.float_bits(math.pi, "fp32").stored == torch.tensor(math.pi, dtype=torch.float32).item()
    bits = quant.float_bits(math.pi, "fp16")
    assert (bits.sign, bits.exponent, bits.fraction) == ("0", "10000", "1001001000")
    assert [quant.float_bits(math.pi, f).bytes_per_value for f in ("fp32", "fp16", "bf16")] == [4, 2, 2]


@pytest.mark.parametrize("fmt", list(quant.FORMATS))
def test_format_info_equals_torch_finfo(fmt):
    info, fi = quant.format_info(fmt), torch.finfo(quant.FORMATS[fmt].torch_dtype)
    assert info.max == fi.max
    assert info.smallest_normal == fi.smallest_normal
    assert info.eps == fi.eps
    assert info.bits == fi.bits
    smallest = torch.tensor(info.smallest_subnormal, dtype=torch.float64).to(quant.FORMATS[fmt].torch_dtype)
    assert smallest.item() == info.smallest_subnormal > 0
    half = torch.tensor(info.smallest_subnormal / 2, dtype=torch.float64).float().to(quant.FORMATS[fmt].torch_dtype)
    assert half.item() == 0.0  # half the smallest subnormal rounds (to even) to zero


def test_overflow_underflow_examples():
    assert quant.float_bits(70000.0, "fp16").kind == "inf"
    assert quant.float_bits(70000.0, "bf16").stored == torch.tensor(70000.0).bfloat16().item()
    assert quant.float_bits(1e-8, "fp16").stored == 0.0
    assert quant.float_bits(1e-8, "bf16").kind == "normal"
    assert quant.float_bits(1000.0, "fp8_e4m3").stored == 448.0  # saturates, as torch's conversion does
    assert quant.float_bits(float("nan"), "bf16").kind == "nan"


@pytest.mark.parametrize("fmt", ["fp16", "bf16", "fp8_e4m3", "fp8_e5m2"])
def test_representable_values_are_exactly_the_torch_values(fmt):
    ours = quant.representable_values(fmt)
    layout = quant.FORMATS[fmt]
    ints = {8: torch.uint8, 16: torch.int16}[layout.total_bits]
    every = torch.arange(2**layout.total_bits, dtype=torch.int32)
    if layout.total_bits == 16:
        every = (every - 2**16 * (every >= 2**15)).to(torch.int16)
    else:
        every = every.to(ints)
    theirs = every.view(layout.torch_dtype).double()
    theirs = torch.unique(theirs[torch.isfinite(theirs) & (theirs >= 0)])
    assert torch.equal(ours, theirs)


def test_decode_bits_reads_the_bits_back():
    assert quant.decode_bits("0 10000 1001001000", "fp16") == 3.140625
    assert quant.decode_bits("0.1111.110", "fp8_e4m3") == 448.0
    assert math.isnan(quant.decode_bits("0 1111 111", "fp8_e4m3"))


def test_float_format_errors_say_what_is_allowed():
    with pytest.raises(ValueError, match="unknown float format 'fp64'.*fp32, fp16, bf16"):
        quant.float_bits(1.0, "fp64")
    with pytest.raises(ValueError, match="real number"):
        quant.float_bits("pi", "fp32")
    with pytest.raises(ValueError, match="single number"):
        quant.float_bits(torch.ones(3), "fp32")
    with pytest.raises(ValueError, match="too many to list; allowed: fp16"):
        quant.representable_values("fp32")
    with pytest.raises(ValueError, match="needs 16 bits"):
        quant.decode_bits("0101", "fp16")


# ---------------------------------------------------------------- integer quantization


def _samples():
    g = torch.Generator().manual_seed(0)
    for _ in range(30):
        yield torch.randn(64, 48, generator=g) * 3 + torch.rand(1, generator=g).item() * 4


def test_absmax_per_tensor_equals_torch_quantize_per_tensor():
    for x in _samples():
        qx = quant.quantize_absmax(x)
        assert qx.scale.item() == pytest.approx(x.abs().max().item() / 127, rel=1e-7)
        tq = torch.quantize_per_tensor(x, qx.scale.item(), 0, torch.qint8)
        assert torch.equal(tq.int_repr(), qx.q)
        assert torch.equal(tq.dequantize(), qx.dequantize())


def test_absmax_hand_example():
    qx = quant.quantize_absmax(torch.tensor([-2.54, 1.27, 0.0, 0.01]))
    assert qx.scale.item() == pytest.approx(0.02)
    assert qx.q.tolist() == [-127, 64, 0, 0]  # 1.27 / 0.02 = 63.5 rounds to even: 64


def test_zeropoint_per_tensor_equals_torch_observer_and_quantizer():
    from torch.ao.quantization.observer import MinMaxObserver

    for x in _samples():
        qx = quant.quantize_zeropoint(x)
        obs = MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_affine)
        obs(x)
        scale, zero_point = obs.calculate_qparams()
        assert qx.scale.item() == scale.item()
        assert qx.zero_point.item() == zero_point.item()
        tq = torch.quantize_per_tensor(x, scale.item(), int(zero_point), torch.qint8)
        assert torch.equal(tq.int_repr(), qx.q)
        assert torch.equal(tq.dequantize(), qx.dequantize())


def _equal_except_exact_ties(theirs: torch.Tensor, ours: quant.Int8Tensor, x: torch.Tensor) -> None:
    """torch's per-channel kernel adds the zero point before rounding, so at an exact .5 it may land one code away."""
    diff = (theirs.int() - ours.q.int()).abs()
    assert diff.max() <= 1
    ratio = x * (1.0 / ours.scale)
    at_tie = ((ratio - ratio.floor()) - 0.5).abs() < 1e-4
    assert not (diff.bool() & ~at_tie).any()
    assert diff.sum() <= 3


@pytest.mark.parametrize("axis", [0, 1])
def test_per_channel_equals_torch_observer_and_quantize_per_channel(axis):
    from torch.ao.quantization.observer import PerChannelMinMaxObserver

    for x in _samples():
        qz = quant.quantize_zeropoint(x, axis)
        obs = PerChannelMinMaxObserver(ch_axis=axis, dtype=torch.qint8, qscheme=torch.per_channel_affine)
        obs(x)
        scale, zero_point = obs.calculate_qparams()
        assert torch.equal(qz.scale.flatten(), scale)
        assert torch.equal(qz.zero_point.flatten(), zero_point.int())
        tq = torch.quantize_per_channel(x, scale, zero_point, axis, torch.qint8)
        _equal_except_exact_ties(tq.int_repr(), qz, x)

        qa = quant.quantize_absmax(x, axis)
        tq = torch.quantize_per_channel(x, qa.scale.flatten(), torch.zeros(x.size(axis), dtype=torch.long), axis, torch.qint8)
        assert torch.equal(tq.int_repr(), qa.q)
        assert torch.equal(tq.dequantize(), qa.dequantize())


def test_dequantization_error_is_at_most_half_a_step():
    for x in _samples():
        for qx in (quant.quantize_absmax(x), quant.quantize_zeropoint(x), quant.quantize_absmax(x, 0),
                   quant.quantize_zeropoint(x, 1)):
            err = (qx.dequantize() - x).abs()
            assert (err <= qx.scale / 2 + 1e-6 * x.abs().max()).all(), qx.scheme


def test_zeropoint_beats_absmax_on_one_sided_values():
    x = torch.rand(1000, generator=torch.Generator().manual_seed(0)) * 5  # all positive, like after a ReLU
    sym = quant.quantization_error(x, quant.quantize_absmax(x))["mean_abs_error"]
    asym = quant.quantization_error(x, quant.quantize_zeropoint(x))["mean_abs_error"]
    assert asym < 0.6 * sym  # twice the codes over the same range


def test_outlier_feature_breaks_per_tensor_but_not_mixed_decomposition():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 256, generator=g)
    x[:, [7, 100]] *= 60  # two outlier features, present in every token
    w = torch.randn(64, 256, generator=g) * 0.05
    exact = x @ w.T
    rel = {m: ((quant.int8_matmul(x, w, m) - exact).norm() / exact.norm()).item()
           for m in ("per-tensor", "vector-wise", "mixed")}
    assert rel["mixed"] < rel["per-tensor"] / 5
    assert rel["mixed"] < 0.01
    # without outliers the mixed path is the vector-wise path
    clean = torch.randn(16, 64, generator=g)
    w2 = torch.randn(8, 64, generator=g)
    assert torch.equal(quant.int8_matmul(clean, w2, "mixed", threshold=100.0), quant.int8_matmul(clean, w2, "vector-wise"))


def test_int8_matmul_equals_dequantized_float_product():
    g = torch.Generator().manual_seed(2)
    x, w = torch.randn(8, 32, generator=g), torch.randn(16, 32, generator=g)
    qx, qw = quant.quantize_absmax(x, 0), quant.quantize_absmax(w, 0)
    expected = qx.dequantize().double() @ qw.dequantize().double().T
    torch.testing.assert_close(quant.int8_matmul(x, w).double(), expected, rtol=1e-5, atol=1e-5)


def test_int8_errors_say_what_is_allowed():
    x = torch.randn(4, 4)
    with pytest.raises(ValueError, match="floating-point torch.Tensor"):
        quant.quantize_absmax(torch.ones(3, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"axis must be None .* in \[-2, 1\]"):
        quant.quantize_absmax(x, axis=2)
    with pytest.raises(ValueError, match="finite"):
        quant.quantize_zeropoint(torch.tensor([1.0, float("inf")]))
    with pytest.raises(ValueError, match="must not be empty"):
        quant.quantize_absmax(torch.empty(0))
    with pytest.raises(ValueError, match="unknown scheme 'int4'; allowed"):
        quant.quantize_int8(x, "int4")
    with pytest.raises(ValueError, match="unknown mode 'rowwise'; allowed"):
        quant.int8_matmul(x, x, "rowwise")
    with pytest.raises(ValueError, match="same features"):
        quant.int8_matmul(x, torch.randn(4, 5))
    with pytest.raises(ValueError, match="threshold must be > 0"):
        quant.int8_matmul(x, x, "mixed", threshold=0)


# ---------------------------------------------------------------- model quantization


@pytest.fixture(scope="module")
def tiny_gpt2(make_gpt2):
    return make_gpt2(0, n_positions=32, initializer_range=0.02)


def test_linear_layers_cover_conv1d_and_skip_tied_head(tiny_gpt2):
    names = quant.linear_layers(tiny_gpt2)
    assert len(names) == 2 * 4 and "lm_head" not in names
    assert "lm_head" in quant.linear_layers(tiny_gpt2, skip_tied=False)


def test_int8_linear_matches_conv1d_and_torch_per_channel_dequantization(tiny_gpt2):
    conv = tiny_gpt2.transformer.h[0].mlp.c_fc
    lin = quant.Int8Linear.from_module(conv)
    w = conv.weight.detach().T  # (out, in)
    expected = torch.quantize_per_channel(w, lin.scale.flatten(), torch.zeros(w.size(0), dtype=torch.long), 0, torch.qint8)
    assert torch.equal(lin.dequantized_weight(), expected.dequantize())
    x = torch.randn(3, 5, w.size(1))
    torch.testing.assert_close(lin(x), conv(x), rtol=0, atol=0.02 * conv(x).abs().max().item())


def test_quantize_model_keeps_outputs_and_saves_bytes(tiny_gpt2):
    ids = torch.randint(0, 97, (2, 16), generator=torch.Generator().manual_seed(0))
    before = tiny_gpt2(input_ids=ids).logits
    q = quant.quantize_model(tiny_gpt2)
    after = q(input_ids=ids).logits
    assert isinstance(tiny_gpt2.transformer.h[0].attn.c_attn, type(tiny_gpt2.transformer.h[1].attn.c_attn))
    assert not isinstance(tiny_gpt2.transformer.h[0].attn.c_attn, quant.Int8Linear)  # the original is unchanged
    assert (after - before).abs().max() < 0.05 * before.abs().max()
    # the quantized weights: 1 byte each plus one float32 scale per output feature, instead of 4 bytes each
    n_w = sum(m.weight.numel() for n, m in tiny_gpt2.named_modules() if n in quant.linear_layers(tiny_gpt2))
    n_out = sum(m.nf for n, m in tiny_gpt2.named_modules() if n in quant.linear_layers(tiny_gpt2))
    assert quant.state_bytes(tiny_gpt2) - quant.state_bytes(q) == 4 * n_w - (n_w + 4 * n_out)


def test_torch_dynamic_quantize_quantizes_the_same_layers(tiny_gpt2):
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    tq = quant.torch_dynamic_quantize(tiny_gpt2)
    dyn = [n for n, m in tq.named_modules() if isinstance(m, DynamicLinear)]
    assert dyn == quant.linear_layers(tiny_gpt2)
    ids = torch.randint(0, 97, (2, 16), generator=torch.Generator().manual_seed(0))
    before = tiny_gpt2(input_ids=ids).logits
    assert (tq(input_ids=ids).logits - before).abs().max() < 0.05 * before.abs().max()
    assert quant.state_bytes(tq) < 0.5 * quant.state_bytes(tiny_gpt2)


def test_conv1d_to_linear_is_exact(tiny_gpt2):
    lin = quant.conv1d_to_linear(tiny_gpt2)
    ids = torch.randint(0, 97, (2, 16), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(lin(input_ids=ids).logits, tiny_gpt2(input_ids=ids).logits, rtol=1e-5, atol=1e-5)


def test_state_bytes_counts_tied_weights_once(tiny_gpt2):
    unique = sum(p.numel() * 4 for p in tiny_gpt2.parameters())
    assert quant.state_bytes(tiny_gpt2) == unique


def test_quantize_model_errors(tiny_gpt2):
    with pytest.raises(ValueError, match="unknown scheme 'nf4'"):
        quant.quantize_model(tiny_gpt2, scheme="nf4")
    with pytest.raises(ValueError, match="'transformer.wte' is not an nn.Linear or Conv1D"):
        quant.quantize_model(tiny_gpt2, layers=["transformer.wte"])
    with pytest.raises(ValueError, match="expected nn.Linear or transformers Conv1D"):
        quant.Int8Linear.from_module(torch.nn.Embedding(3, 3))


def test_state_bytes_of_torch_dynamic_model_is_one_byte_per_weight_plus_scale(tiny_gpt2):
    tq = quant.torch_dynamic_quantize(tiny_gpt2, per_channel=False)
    layers = quant.linear_layers(tiny_gpt2)
    n_w = sum(tiny_gpt2.get_submodule(n).weight.numel() for n in layers)
    # per tensor: each weight 1 byte, plus the weight's float64 scale and int64 zero point (16 bytes),
    # plus the module's own float32 `scale` and int64 `zero_point` buffers (12 bytes) per layer
    assert quant.state_bytes(tq) == quant.state_bytes(tiny_gpt2) - 4 * n_w + n_w + (16 + 12) * len(layers)


# ---------------------------------------------------------------- 4-bit group-wise and torchao


def test_groupwise_zero_point_hand_example():
    # one group on a grid of 16 levels from -1 with step 0.25 comes back exactly
    w = (torch.arange(32) % 16 * 0.25 - 1.0).view(1, 32)
    gq = quant.quantize_groupwise(w, bits=4, group_size=32, scheme="zeropoint")
    assert gq.scale.item() == 0.25 and gq.minimum.item() == -1.0
    assert torch.equal(gq.dequantize(), w)
    assert gq.nbytes == 16 + 2 + 2  # 32 codes of 4 bits, a float16 scale and a float16 minimum


def test_groupwise_absmax_hand_example():
    w = torch.tensor([[7.0, -3.5, 0.0, 1.0]])
    gq = quant.quantize_groupwise(w, bits=4, group_size=4, scheme="absmax")
    assert gq.scale.item() == 1.0 and gq.minimum is None  # scale = max|w| / 7
    assert gq.codes.flatten().tolist() == [7, -4, 0, 1]  # -3.5 rounds half to even
    assert gq.nbytes == 2 + 2


@pytest.mark.parametrize("scheme", ["zeropoint", "absmax"])
@pytest.mark.parametrize("group_size", [32, 128])
def test_groupwise_error_is_at_most_half_a_step_per_group(scheme, group_size):
    g = torch.Generator().manual_seed(1)
    w = torch.randn(24, 200, generator=g)  # 200 is not a multiple of either group size
    gq = quant.quantize_groupwise(w, 4, group_size, scheme)
    step = gq.scale.float().expand(-1, -1, group_size).flatten(1)[:, :200]
    err = (gq.dequantize() - w).abs()
    # half a step, plus the float16 rounding of the scale (and minimum) stored per group
    assert (err <= 0.5 * step + 1e-3 * w.abs().amax()).all()


def test_smaller_groups_quantize_closer():
    g = torch.Generator().manual_seed(2)
    w = torch.randn(64, 512, generator=g) * torch.linspace(0.1, 3, 512)  # columns of different scales
    errs = [(quant.quantize_groupwise(w, 4, n).dequantize() - w).norm().item() for n in (512, 128, 32)]
    assert errs[0] > errs[1] > errs[2]


@pytest.mark.parametrize("scheme", ["zeropoint", "absmax"])
def test_int4_linear_packs_two_codes_per_byte_and_computes_with_its_codes(scheme):
    g = torch.Generator().manual_seed(3)
    lin = torch.nn.Linear(100, 16)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(16, 100, generator=g))
    q = quant.Int4Linear.from_module(lin, group_size=32, scheme=scheme)
    groups = 16 * 4  # ceil(100 / 32) groups per row
    per_group = 4 if scheme == "zeropoint" else 2
    assert q.packed.dtype == torch.uint8 and q.packed.numel() == 16 * 100 // 2
    assert quant.state_bytes(q) == 16 * 100 // 2 + groups * per_group + 16 * 4  # codes, scales (and minima), bias
    expected = quant.quantize_groupwise(lin.weight, 4, 32, scheme).dequantize()
    assert torch.equal(q.dequantized_weight(), expected)
    x = torch.randn(5, 100, generator=g)
    assert torch.allclose(q(x), x @ expected.T + lin.bias, atol=1e-5)


def test_quantize_model_4bit_replaces_the_same_layers_as_int8(tiny_gpt2):
    q = quant.quantize_model_4bit(tiny_gpt2, group_size=32)
    names = quant.linear_layers(tiny_gpt2)
    assert all(isinstance(q.get_submodule(n), quant.Int4Linear) for n in names)
    assert quant.state_bytes(q) < quant.state_bytes(quant.quantize_model(tiny_gpt2)) < quant.state_bytes(tiny_gpt2)


def test_torchao_int8_weight_only_scale_is_absmax_over_127_5_per_output_channel():
    """torchao's INT8 weight-only is symmetric with a scale per output feature, but its scale is
    max|w| / 127.5 (llmlab's absmax uses 127) and its codes run from -128 to 127: a close grid, not
    the same one."""
    g = torch.Generator().manual_seed(4)
    model = torch.nn.Sequential(torch.nn.Linear(64, 48), torch.nn.ReLU(), torch.nn.Linear(48, 8))
    q = quant.torchao_quantize(model, "int8_weight_only")
    for i in (0, 2):
        w = model[i].weight.detach()
        theirs = q[i].weight
        scale = theirs.scale.reshape(-1, 1).float()  # (out, 1)
        assert torch.allclose(scale, w.abs().amax(dim=1, keepdim=True) / 127.5, rtol=1e-6, atol=0)
        codes = torch.clamp(torch.round(w * (1.0 / scale)), -128, 127)
        assert torch.equal(theirs.qdata.float(), codes)
        assert torch.equal(theirs.dequantize().float(), codes * scale)
        ours = quant.quantize_absmax(w, axis=0)
        assert torch.allclose(ours.scale * 127 / 127.5, scale, rtol=1e-6, atol=0)  # theirs: 0.4% finer
    x = torch.randn(3, 64, generator=g)
    assert torch.allclose(q(x), model(x), atol=0.05)
    # one byte per weight, plus a scale per output feature, plus the float32 biases
    assert quant.state_bytes(q) <= 64 * 48 + 48 * 8 + (48 + 8) * (4 + 4 + 1)


def test_torchao_int4_on_cpu_keeps_one_code_per_byte():
    model = torch.nn.Sequential(torch.nn.Linear(64, 32, bias=False))
    q = quant.torchao_quantize(model, "int4_weight_only", group_size=32)
    codes = q[0].weight.qdata
    assert codes.dtype == torch.int8 and codes.numel() == 64 * 32
    assert int(codes.min()) >= -8 and int(codes.max()) <= 7


@pytest.mark.parametrize("call", [
    lambda: quant.quantize_groupwise(torch.randn(4, 32), bits=1),
    lambda: quant.quantize_groupwise(torch.randn(4, 32), group_size=0),
    lambda: quant.quantize_groupwise(torch.randn(4, 32), scheme="nf4"),
    lambda: quant.quantize_groupwise(torch.randn(32)),
    lambda: quant.quantize_groupwise([[1.0]]),
    lambda: quant.quantize_model_4bit("gpt2"),
    lambda: quant.torchao_quantize(torch.nn.Linear(4, 4), "int3"),
    lambda: quant.torchao_quantize(torch.nn.Sequential(torch.nn.Linear(40, 4)), "int4_weight_only", 32),
])
def test_groupwise_and_torchao_errors_say_what_is_allowed(call):
    with pytest.raises((ValueError, TypeError)):
        call()
