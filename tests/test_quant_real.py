"""llmlab.quant_real: the chapter 6 measurements on the real model, checked on small models and by hand."""

import pytest
import torch

from llmlab import quant
from llmlab import quant_real as qr
from llmlab.records import quant_real as quant_real_record


@pytest.fixture(scope="module")
def tiny_llama(make_llama):
    return make_llama(0, tie_word_embeddings=True)


def test_int8_activation_layer_equals_int8_matmul_for_every_mode():
    g = torch.Generator().manual_seed(0)
    lin = torch.nn.Linear(48, 16)
    x = torch.randn(2, 5, 48, generator=g)
    x[..., 3] *= 20  # an outlier feature
    for mode in qr.ACT_MODES:
        ours = qr.ActInt8Linear(lin, mode)(x)
        expected = quant.int8_matmul(x.reshape(-1, 48), lin.weight.detach(), mode) + lin.bias.detach()
        assert torch.allclose(ours, expected.reshape(2, 5, 16), atol=1e-5), mode


def test_mixed_keeps_exactly_the_outlier_columns_in_float():
    lin = torch.nn.Linear(8, 4, bias=False)
    x = torch.zeros(3, 8)
    x[:, 2] = 7.0  # column 2 reaches the threshold of 6, column 5 does not
    x[:, 5] = 5.9
    layer = qr.ActInt8Linear(lin, "mixed")
    layer(x)
    assert layer.outlier_columns == 1


def test_activation_profile_reads_the_same_maxima_as_a_hook_by_hand(tiny_llama):
    ids = torch.arange(10) % 64
    profile = qr.activation_profile(tiny_llama, ids)
    seen = {}
    h = tiny_llama.model.layers[1].mlp.down_proj.register_forward_hook(
        lambda m, i, o: seen.update(x=i[0].abs().amax(dim=(0, 1))))
    with torch.no_grad():
        states = tiny_llama(input_ids=ids[None], output_hidden_states=True).hidden_states
    h.remove()
    assert torch.equal(profile["linear_inputs"]["model.layers.1.mlp.down_proj"], seen["x"])
    assert profile["residual"].shape == (3, 32)
    top = profile["residual_top"][2]
    assert top["value"] == pytest.approx(states[2][0].abs().max().item())
    assert states[2][0, top["token"], top["channel"]].abs().item() == pytest.approx(top["value"])
    assert "lm_head" not in profile["linear_inputs"]  # tied to the embedding: not a quantized layer


def test_outlier_summary_counts_channels_at_the_threshold():
    profile = {"linear_inputs": {"a.0.q_proj": torch.tensor([6.0, 5.99, 100.0]),
                                 "a.1.q_proj": torch.tensor([1.0, 2.0, 3.0])}}
    s = qr.outlier_summary(profile)["q_proj"]
    assert s == {"layers": 2, "layers_with_outliers": 1, "max_channels": 2, "mean_channels": 1.0}


def test_every_scheme_quantizes_the_same_layers_and_saves_bytes(tiny_llama):
    ids = torch.arange(40) % 64
    names = quant.linear_layers(tiny_llama)
    ref = qr.measure_scheme("reference (Q4_1 file)", tiny_llama, {"t": ids}, seq_len=16)
    for name in qr.SCHEMES:
        if "4-bit" in name and "torchao" in name:
            continue  # tiny widths of 32 fit only groups of 32; covered in test_quant
        row = qr.measure_scheme(name, tiny_llama, {"t": ids}, seq_len=16)
        if name != "reference (Q4_1 file)":
            assert row["linear_bytes"] < ref["linear_bytes"] / 2, name
        assert row["ppl_t"] > 1
    assert ref["linear_bytes"] == sum(tiny_llama.get_submodule(n).weight.numel() * 4 for n in names)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="name"):
        qr.measure_scheme("INT3", torch.nn.Linear(2, 2), {})
    with pytest.raises(ValueError, match="mode"):
        qr.ActInt8Linear(torch.nn.Linear(2, 2), "per-row")
    with pytest.raises(TypeError):
        qr.activation_profile("smollm2", torch.arange(3))


def test_the_record_matches_the_schemes_and_its_own_claims():
    rec = quant_real_record.load()
    rows = {r["scheme"]: r for r in rec["schemes"]}
    ref = rows["reference (Q4_1 file)"]
    # the file's grid: 4-bit zero point in groups of 32 is the reference itself, in the file's bytes
    assert rows["4-bit zero-point, groups of 32"]["ppl_english"] == ref["ppl_english"]
    assert rows["4-bit zero-point, groups of 32"]["linear_bytes"] == rec["file"]["by_kind"]["Q4_1"]["bytes"]
    assert rec["tokens"]["english"] > 900 and rec["tokens"]["stories"] == qr.STORY_TOKENS
