"""The from-scratch Llama block (llmlab.llama) equals transformers' LlamaDecoderLayer and LlamaForCausalLM.

Compared in float32: transformers computes RMSNorm and the softmax of eager attention
in float32 whatever the model's dtype, so float64 would not be more exact. TOL is the
tolerance the chapter states for the real model.
"""

import pytest
import torch
from tiny_models import tiny_llama as shared_tiny_llama
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.models.llama.modeling_llama import LlamaRMSNorm, LlamaRotaryEmbedding, apply_rotary_pos_emb

from llmlab import compat, llama, zoo

SMOLLM2 = dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
               num_attention_heads=9, num_key_value_heads=3, head_dim=64, max_position_embeddings=8192,
               tie_word_embeddings=True)


TOL = dict(rtol=1e-5, atol=1e-5)


# three layers, untied, eager attention, rope_theta and eps away from the defaults: a mix-up shows
SETTINGS = dict(vocab_size=97, hidden_size=32, intermediate_size=56, num_hidden_layers=3,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                rope_theta=1000.0, rms_norm_eps=1e-6, tie_word_embeddings=False,
                bos_token_id=0, eos_token_id=1, attn_implementation="eager")


def tiny_config(**changes) -> LlamaConfig:
    return LlamaConfig(**{**SETTINGS, **changes})


def tiny_llama(seed: int = 0, **changes) -> LlamaForCausalLM:
    model = shared_tiny_llama(seed, **{**SETTINGS, **changes})
    with torch.no_grad():  # random norm weights, so that a mix-up of the two norms would show
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    return model


def ids(b: int, t: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 97, (b, t), generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ the pieces
def test_rms_norm_equals_llama_rms_norm():
    torch.manual_seed(0)
    theirs = LlamaRMSNorm(24, eps=1e-6)
    with torch.no_grad():
        theirs.weight.uniform_(0.5, 2.0)
    ours = llama.RMSNorm(24, eps=1e-6)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(3, 5, 24) * 7
    torch.testing.assert_close(ours(x), theirs(x), **TOL)


def test_rms_norm_output_has_unit_root_mean_square_before_the_weight():
    x = torch.randn(4, 16) * 10 + 3
    out = llama.RMSNorm(16, eps=0.0)(x)
    torch.testing.assert_close(out.pow(2).mean(-1), torch.ones(4), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dim,theta", [(8, 1000.0), (64, 100000.0)])
def test_rotary_tables_and_rotation_equal_transformers(dim, theta):
    config = tiny_config(hidden_size=4 * dim, head_dim=dim, rope_theta=theta)
    positions = torch.arange(11)
    cos_t, sin_t = LlamaRotaryEmbedding(config)(torch.zeros(1, 11, dim), positions[None])
    cos, sin = llama.rotary_cos_sin(positions, dim, theta)
    torch.testing.assert_close(cos, cos_t[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(sin, sin_t[0], rtol=0, atol=1e-6)
    q, k = torch.randn(2, 3, 11, dim), torch.randn(2, 3, 11, dim)
    q_t, k_t = apply_rotary_pos_emb(q, k, cos_t, sin_t)
    torch.testing.assert_close(llama.apply_rotary(q, cos, sin), q_t, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(llama.apply_rotary(k, cos, sin), k_t, rtol=1e-5, atol=1e-5)


def test_rotation_keeps_lengths_and_makes_scores_depend_on_distance_only():
    cos, sin = llama.rotary_cos_sin(torch.arange(20), 16, 10000.0)
    q, k = torch.randn(1, 1, 1, 16, dtype=torch.float64), torch.randn(1, 1, 1, 16, dtype=torch.float64)
    rq = llama.apply_rotary(q.expand(1, 1, 20, 16), cos.double(), sin.double())[0, 0]   # q at every position
    rk = llama.apply_rotary(k.expand(1, 1, 20, 16), cos.double(), sin.double())[0, 0]
    torch.testing.assert_close(rq.norm(dim=-1), q.norm().expand(20), rtol=1e-6, atol=1e-6)
    # the score of query at position m with key at position n depends on m - n only
    torch.testing.assert_close(rq[5] @ rk[2], rq[15] @ rk[12], rtol=1e-5, atol=1e-5)


def test_grouped_query_attention_with_one_group_per_head_is_multi_head_attention():
    torch.manual_seed(2)
    gqa = llama.GroupedQueryAttention(16, n_heads=4, n_kv_heads=4, head_width=4).double()
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    cos, sin = torch.ones(6, 4, dtype=torch.float64), torch.zeros(6, 4, dtype=torch.float64)  # no rotation
    out, weights = gqa(x, cos, sin)
    split = lambda t: t.view(2, 6, 4, 4).transpose(1, 2)
    ref = torch.nn.functional.scaled_dot_product_attention(split(gqa.q_proj(x)), split(gqa.k_proj(x)),
                                                           split(gqa.v_proj(x)), is_causal=True)
    torch.testing.assert_close(out, gqa.o_proj(ref.transpose(1, 2).reshape(2, 6, 16)), rtol=0, atol=1e-12)
    assert weights.shape == (2, 4, 6, 6) and (weights.triu(1) == 0).all()


# ------------------------------------------------------------------ against LlamaDecoderLayer
def layer_inputs_and_outputs(model, input_ids):
    """hidden_states[k] enters decoder layer k and hidden_states[k + 1] leaves it (the last is normed)."""
    with torch.no_grad():
        return model(input_ids=input_ids, output_hidden_states=True).hidden_states


@pytest.mark.parametrize("changes", [{}, {"num_key_value_heads": 1}, {"num_key_value_heads": 4},
                                     {"head_dim": 16}])
@pytest.mark.parametrize("b,t", [(1, 1), (2, 9), (3, 33)])
def test_llama_block_equals_llama_decoder_layer(changes, b, t):
    model = tiny_llama(**changes)
    hidden = layer_inputs_and_outputs(model, ids(b, t))
    for k in range(model.config.num_hidden_layers - 1):
        block = llama.LlamaBlock.from_hf(model.model.layers[k], model.config)
        assert next(block.parameters()).dtype == torch.float32
        torch.testing.assert_close(block(hidden[k]), hidden[k + 1], **TOL)


def test_llama_block_with_later_positions_equals_the_layer_given_those_positions():
    model = tiny_llama()
    x = torch.randn(1, 5, 32)
    positions = torch.arange(7, 12)
    layer = model.model.layers[0]
    cos_sin = model.model.rotary_emb(x, positions[None])
    mask = torch.full((5, 5), float("-inf")).triu(1)[None, None]
    with torch.no_grad():
        theirs = layer(x, attention_mask=mask, position_embeddings=cos_sin, position_ids=positions[None])
    theirs = theirs[0] if isinstance(theirs, tuple) else theirs
    ours = llama.LlamaBlock.from_hf(layer, model.config)(x, positions)
    torch.testing.assert_close(ours, theirs, **TOL)


@pytest.mark.parametrize("tied", [False, True])
def test_llama_forward_gives_the_models_logits(tied):
    model = tiny_llama(tie_word_embeddings=tied)
    x = ids(2, 17)
    with torch.no_grad():
        torch.testing.assert_close(llama.llama_forward(model, x), model(input_ids=x).logits, **TOL)


def test_from_hf_copies_the_weights():
    model = tiny_llama()
    block = llama.LlamaBlock.from_hf(model.model.layers[0], model.config)
    with torch.no_grad():
        block.mlp.up_proj.weight.zero_()
    assert model.model.layers[0].mlp.up_proj.weight.abs().sum() > 0


def test_configs_the_block_does_not_implement_are_refused():
    with pytest.raises(ValueError, match="multiple of num_key_value_heads"):
        llama.LlamaBlock(tiny_config(num_key_value_heads=3))
    with pytest.raises(ValueError, match="no biases"):
        llama.LlamaBlock(tiny_config(attention_bias=True))
    with pytest.raises(ValueError, match="rope_type"):
        llama.rope_theta(tiny_config(rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 1e4}))


# ------------------------------------------------------------------ sizes
@pytest.mark.parametrize("changes", [{}, {"tie_word_embeddings": True}, {"num_key_value_heads": 1},
                                     {"head_dim": 16}])
def test_parameter_count_by_formula_equals_the_models(changes):
    model = tiny_llama(**changes)
    assert llama.parameter_count(model.config) == sum(p.numel() for p in model.parameters())


def test_parameter_count_of_smollm2_135m_is_134_515_008():
    config = LlamaConfig(**SMOLLM2, rope_theta=100000.0)
    with torch.device("meta"):                                     # shapes only, no memory
        model = LlamaForCausalLM(config)
    assert llama.parameter_count(config) == sum(p.numel() for p in model.parameters()) == 134_515_008


def test_kv_cache_bytes_by_formula_equals_the_tensors_of_a_real_cache():
    model = tiny_llama(num_key_value_heads=1)
    with torch.no_grad():
        cache = compat.returned_cache(model(input_ids=ids(2, 13), use_cache=True))
    keys = llama.cache_tensors(cache)
    assert len(keys) == 2 * 3 and keys[0].shape == (2, 1, 13, 8)
    assert llama.cache_bytes(cache) == llama.kv_cache_bytes(model.config, 13, batch=2) == 2 * 3 * 1 * 8 * 13 * 2 * 4


def test_kv_cache_of_smollm2_is_three_times_smaller_than_with_nine_full_heads():
    config = LlamaConfig(**SMOLLM2, rope_theta=100000.0)
    gqa = llama.kv_cache_bytes(config, 1000)
    assert gqa == 2 * 30 * 3 * 64 * 1000 * 4
    assert llama.kv_cache_bytes(config, 1000, kv_heads=9) == 3 * gqa
    with pytest.raises(ValueError, match="tokens >= 0"):
        llama.kv_cache_bytes(config, -1)


# ------------------------------------------------------------------ the real model, when installed
REAL = zoo.PACKAGED["smollm2-135m-instruct"]


@pytest.mark.skipif(not (REAL.folder() / "config.json").exists(), reason="needs the converted SmolLM2 cache")
def test_formula_on_the_real_configs_gives_134_515_008():
    config = LlamaConfig.from_pretrained(REAL.folder(), local_files_only=True)
    assert llama.parameter_count(config) == 134_515_008
    assert llama.rope_theta(config) == 100000.0 and llama.head_dim(config) == 64
