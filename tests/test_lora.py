"""llmlab.lora against PEFT (chapter 12): the same trainable counts, the same outputs, the same
adapter files; merging, freezing and dropout."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

peft = pytest.importorskip("peft")
from peft import LoraConfig, get_peft_model  # noqa: E402

from llmlab import lora  # noqa: E402

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    # PEFT's notes on its own API: tied lm_head (tested here on purpose), a renamed property
    pytest.mark.filterwarnings("ignore:Model has `tie_word_embeddings=True`:UserWarning"),
    pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning"),
]

ATTN = ["q_proj", "v_proj"]
ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
CONFIGS = [(1, ATTN), (4, ["q_proj"]), (8, ALL), (2, ["model.layers.1.mlp.down_proj", "k_proj"])]


def _peft(model, r, targets, alpha=16.0, dropout=0.0):
    config = LoraConfig(task_type="CAUSAL_LM", r=r, lora_alpha=alpha, target_modules=targets,
                        lora_dropout=dropout)
    return get_peft_model(copy.deepcopy(model), config)


def _randomise_b(peft_model, seed=0):
    """PEFT starts B at zero; give it random values so that the adapters change the outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)


def _copy_from_peft(ours, theirs):
    """Copy PEFT's A and B by hand (not through load_peft_adapter), layer by layer."""
    inner = theirs.base_model.model
    with torch.no_grad():
        for name, layer in lora.lora_layers(ours).items():
            peft_layer = inner.get_submodule(name)
            layer.lora_A.copy_(peft_layer.lora_A["default"].weight)
            layer.lora_B.copy_(peft_layer.lora_B["default"].weight)


def _ids(vocab, n=12, seed=1):
    return torch.randint(0, vocab, (2, n), generator=torch.Generator().manual_seed(seed))


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


@pytest.fixture(scope="module")
def smollm2():
    from llmlab import zoo

    return zoo.load("smollm2-135m-instruct", device="cpu")[0]


# --------------------------------------------------------------------------- counts
@pytest.mark.parametrize("r, targets", CONFIGS)
def test_trains_as_many_values_as_peft_on_the_tiny_llama(make_llama, r, targets):
    model = make_llama()
    theirs = _peft(model, r, targets).get_nb_trainable_parameters()[0]
    predicted = lora.count_for_model(model, r, targets)
    assert lora.trainable_parameters(model) == sum(p.numel() for p in model.parameters())
    ours = lora.add_lora(model, r, 16.0, targets)
    assert lora.trainable_parameters(ours) == predicted == theirs


def test_counts_by_hand_on_the_tiny_llama(make_llama):
    # hidden 32, 4 heads of 8, 2 KV heads: q and o are 32 x 32, k and v are 32 -> 16
    model = make_llama()
    assert lora.count_for_model(model, 4, ["q_proj"]) == 2 * 4 * (32 + 32)
    assert lora.count_for_model(model, 4, ATTN) == 2 * (4 * (32 + 32) + 4 * (32 + 16))
    assert lora.lora_count(576, 1536, 8) == 8 * (576 + 1536)


def test_trains_as_many_values_as_peft_on_the_real_model(smollm2):
    model = smollm2
    for r, targets in [(8, ATTN), (16, ALL), (4, ["lm_head"])]:
        theirs = _peft(model, r, targets).get_nb_trainable_parameters()[0]
        assert lora.count_for_model(model, r, targets) == theirs, (r, targets)
    assert not lora.lora_layers(model)  # counting changed nothing


def test_same_logits_as_peft_on_the_real_model(smollm2):
    model = smollm2
    ids = _ids(model.config.vocab_size, n=8)
    theirs = _peft(model, 8, ATTN, alpha=16.0)
    _randomise_b(theirs)
    ours = lora.add_lora(copy.deepcopy(model), 8, 16.0, ATTN)
    _copy_from_peft(ours, theirs)
    want, got = _logits(theirs, ids), _logits(ours, ids)
    assert (want - _logits(model, ids)).abs().max() > 1e-2  # the adapters do change the logits
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- outputs
def test_fresh_adapters_leave_the_logits_unchanged(make_llama):
    model = make_llama()
    ids = _ids(64)
    before = _logits(model, ids)
    after = _logits(lora.add_lora(model, 4, 8.0, ALL + ["lm_head"]), ids)
    assert len(lora.lora_layers(model)) == 2 * 7 + 1
    assert torch.equal(before, after)  # B = 0: exactly the base model


@pytest.mark.parametrize("r, targets", CONFIGS)
def test_same_logits_as_peft_with_random_b(make_llama, r, targets):
    model = make_llama()
    ids = _ids(64)
    theirs = _peft(model, r, targets, alpha=2.0 * r + 3)
    _randomise_b(theirs)
    ours = lora.add_lora(model, r, 2.0 * r + 3, targets)
    _copy_from_peft(ours, theirs)
    want, got = _logits(theirs, ids), _logits(ours, ids)
    with theirs.disable_adapter():
        base = _logits(theirs, ids)
    assert (want - base).abs().max() > 1e-3  # the adapters do change the logits
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_same_gradients_as_peft(make_llama):
    model = make_llama()
    ids = _ids(64)
    theirs = _peft(model, 4, ATTN)
    _randomise_b(theirs)
    ours = lora.add_lora(model, 4, 16.0, ATTN)
    _copy_from_peft(ours, theirs)
    theirs(input_ids=ids, labels=ids).loss.backward()
    ours(input_ids=ids, labels=ids).loss.backward()
    inner = theirs.base_model.model
    for name, layer in lora.lora_layers(ours).items():
        for ab in "AB":
            want = getattr(inner.get_submodule(name), f"lora_{ab}")["default"].weight.grad
            torch.testing.assert_close(getattr(layer, f"lora_{ab}").grad, want,
                                       rtol=1e-5, atol=1e-7)


def test_loads_an_adapter_peft_saved(make_llama, tmp_path):
    from safetensors.torch import load_file

    model = make_llama()
    ids = _ids(64)
    theirs = _peft(model, 4, ALL, alpha=12.0)
    _randomise_b(theirs, seed=3)
    theirs.save_pretrained(tmp_path)
    state = load_file(tmp_path / "adapter_model.safetensors")
    assert "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" in state
    ours = lora.add_lora(model, 4, 1.0, ALL)  # the wrong alpha: load_peft_adapter sets it
    lora.load_peft_adapter(ours, state, alpha=12.0)
    torch.testing.assert_close(_logits(ours, ids), _logits(theirs, ids), rtol=1e-5, atol=1e-6)


def test_load_refuses_an_adapter_for_other_layers_or_rank(make_llama, tmp_path):
    model = make_llama()
    state = {k: v for k, v in _peft(model, 4, ATTN).state_dict().items() if "lora_" in k}
    with pytest.raises(ValueError, match="missing.*k_proj"):
        lora.load_peft_adapter(lora.add_lora(make_llama(), 4, 8.0, ["q_proj", "k_proj"]), state)
    with pytest.raises(ValueError, match="shape"):
        lora.load_peft_adapter(lora.add_lora(make_llama(), 2, 8.0, ATTN), state)
    lora.load_peft_adapter(lora.add_lora(make_llama(), 4, 8.0, ATTN), state)  # ".default." keys


# --------------------------------------------------------------------------- merging
def test_merged_model_computes_the_same_logits_with_the_original_parameters(make_llama):
    model = make_llama()
    n_before = sum(p.numel() for p in model.parameters())
    ids = _ids(64)
    theirs = _peft(model, 4, ALL, alpha=8.0)
    _randomise_b(theirs)
    ours = lora.add_lora(model, 4, 8.0, ALL)
    _copy_from_peft(ours, theirs)
    unmerged = _logits(ours, ids)
    merged_model = lora.merge_lora(ours)
    merged = _logits(merged_model, ids)
    assert not lora.lora_layers(merged_model)
    assert not any(isinstance(m, lora.LoRALinear) for m in merged_model.modules())
    assert sum(p.numel() for p in merged_model.parameters()) == n_before
    torch.testing.assert_close(merged, unmerged, rtol=1e-5, atol=1e-5)
    # the merged weights are PEFT's merged weights
    peft_merged = theirs.merge_and_unload()
    for (name, w), (peft_name, peft_w) in zip(merged_model.state_dict().items(),
                                              peft_merged.state_dict().items()):
        assert name == peft_name
        torch.testing.assert_close(w, peft_w, rtol=1e-6, atol=1e-7)


def test_merge_refuses_a_weight_tied_to_the_embeddings(make_llama):
    model = lora.add_lora(make_llama(tie_word_embeddings=True), 2, 4.0, ["q_proj", "lm_head"])
    with torch.no_grad():
        for layer in lora.lora_layers(model).values():
            layer.lora_B.normal_()
    ids = _ids(64)
    before = _logits(model, ids)
    with pytest.raises(ValueError, match="tied.*embed_tokens"):
        lora.merge_lora(model)
    assert len(lora.lora_layers(model)) == 3 and torch.equal(_logits(model, ids), before)


class FourBitLike(nn.Module):
    """A stand-in for a quantized layer: in_features, out_features, a frozen byte buffer."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("codes", torch.zeros(4, dtype=torch.uint8))
        self.inner = linear

    def forward(self, x):
        return self.inner(x)


def test_wraps_a_layer_shaped_like_a_linear_and_refuses_to_merge_it():
    torch.manual_seed(0)
    model = nn.Sequential(FourBitLike(nn.Linear(6, 5)), nn.ReLU())
    x = torch.randn(3, 6)
    want = model(x)
    lora.add_lora(model, 2, 4.0, ["0"])
    layer = lora.lora_layers(model)["0"]
    assert (layer.in_features, layer.out_features) == (6, 5)
    assert layer.lora_A.dtype == torch.float32 and layer.lora_A.requires_grad
    assert not any(p.requires_grad for p in layer.base.parameters())
    assert torch.equal(model(x), want)
    with pytest.raises(ValueError, match="dequantize"):
        lora.merge_lora(model)
    assert lora.lora_layers(model)  # nothing was changed


# --------------------------------------------------------------------------- training
def test_a_gradient_step_changes_only_a_and_b(make_llama):
    model = lora.add_lora(make_llama(), 4, 8.0, ATTN)
    ids = _ids(64)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):  # step 1 moves B (A's gradient is 0 while B = 0), step 2 moves A
        opt.zero_grad()
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
    frozen = [p for n, p in model.named_parameters() if "lora_" not in n]
    assert all(p.grad is None and not p.requires_grad for p in frozen)
    for name, value in model.state_dict().items():
        if ".lora_" in name:
            assert not torch.equal(value, before[name]), name
        else:
            assert torch.equal(value, before[name]), name


def test_initialisation_is_peft_default():
    torch.manual_seed(0)
    base = nn.Linear(40, 30)
    theirs = get_peft_model(nn.Sequential(copy.deepcopy(base)),
                            LoraConfig(r=8, lora_alpha=16, target_modules=["0"]))
    peft_layer = theirs.base_model.model[0]
    torch.manual_seed(1)  # both draw A from the same generator state
    ours = lora.LoRALinear(base, 8, 16.0)
    torch.manual_seed(1)
    peft_layer.reset_lora_parameters("default", True)  # PEFT's default initialisation
    assert torch.equal(ours.lora_A, peft_layer.lora_A["default"].weight)
    assert torch.equal(ours.lora_B, peft_layer.lora_B["default"].weight)
    assert torch.equal(ours.lora_B, torch.zeros(30, 8))
    assert ours.scaling == peft_layer.scaling["default"] == 2.0
    bound = 1 / 40 ** 0.5  # kaiming_uniform_ with a = sqrt(5): U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert ours.lora_A.abs().max() <= bound and ours.lora_A.abs().max() > 0.8 * bound


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64])
def test_adapter_dtype_and_outputs_as_peft_for_other_base_dtypes(dtype):
    torch.manual_seed(0)
    base = nn.Linear(16, 8).to(dtype)
    ours = lora.LoRALinear(base, 4, 8.0)
    theirs = get_peft_model(nn.Sequential(copy.deepcopy(base)),
                            LoraConfig(r=4, lora_alpha=8, target_modules=["0"]))
    peft_layer = theirs.base_model.model[0]
    assert ours.lora_A.dtype == peft_layer.lora_A["default"].weight.dtype  # float32 for bf16
    with torch.no_grad():
        ours.lora_B.normal_()
        peft_layer.lora_A["default"].weight.copy_(ours.lora_A)
        peft_layer.lora_B["default"].weight.copy_(ours.lora_B)
        x = torch.randn(5, 16).to(dtype)
        got, want = ours(x), theirs(x)
    assert got.dtype == want.dtype == dtype
    assert torch.equal(got, want)


def test_dropout_acts_in_training_only_and_as_in_peft():
    torch.manual_seed(0)
    base = nn.Linear(16, 8)
    ours = lora.LoRALinear(base, 4, 8.0, dropout=0.5)
    theirs = get_peft_model(nn.Sequential(copy.deepcopy(base)),
                            LoraConfig(r=4, lora_alpha=8, target_modules=["0"], lora_dropout=0.5))
    peft_layer = theirs.base_model.model[0]
    with torch.no_grad():
        ours.lora_B.normal_()
        peft_layer.lora_A["default"].weight.copy_(ours.lora_A)
        peft_layer.lora_B["default"].weight.copy_(ours.lora_B)
    x = torch.randn(5, 16)
    ours.eval()
    theirs.eval()
    plain = base(x) + 2.0 * x @ ours.lora_A.T @ ours.lora_B.T
    torch.testing.assert_close(ours(x), plain, rtol=1e-6, atol=1e-6)
    assert torch.equal(ours(x), ours(x))
    ours.train()
    theirs.train()
    torch.manual_seed(7)
    train = ours(x)
    assert not torch.allclose(train, plain, atol=1e-3)
    assert not torch.equal(ours(x), train)  # a fresh mask each call
    torch.manual_seed(7)
    torch.testing.assert_close(train, theirs(x), rtol=1e-6, atol=1e-6)  # the same mask
