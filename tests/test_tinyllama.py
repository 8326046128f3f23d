"""llmlab.tinyllama: the chapter 7 workers' Llama computes what transformers' LlamaForCausalLM computes."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaForCausalLM

from llmlab import llama
from llmlab.tinyllama import SMOLLM2_135M, TinyLlama, TinyLlamaConfig

TOL = {"rtol": 1e-5, "atol": 1e-5}


def test_forward_equals_llama_for_causal_lm_with_the_same_weights():
    config = TinyLlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=88, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=64)
    torch.manual_seed(0)
    hf = LlamaForCausalLM(config.to_hf()).eval()
    with torch.no_grad():  # norm weights away from 1, so that a swapped norm would show
        for name, p in hf.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    ours = TinyLlama.from_hf(hf).eval()
    ids = torch.randint(0, 97, (2, 11))
    with torch.no_grad():
        expected = hf(ids).logits
        got = ours(ids)
    assert got.shape == (2, 11, 97)
    torch.testing.assert_close(got, expected, **TOL)


def test_pipeline_stages_chained_equal_the_whole_model():
    torch.manual_seed(0)
    whole = TinyLlama(TinyLlamaConfig())
    ids = torch.randint(0, 1024, (2, 9))
    first = TinyLlama(TinyLlamaConfig())
    second = TinyLlama(TinyLlamaConfig())
    first.load_state_dict(whole.state_dict())
    second.load_state_dict(whole.state_dict())
    first.keep(0, 2)
    second.keep(2, 4)
    assert first.lm_head is None and second.embed_tokens is None
    assert sorted(first.layers) == ["0", "1"] and sorted(second.layers) == ["2", "3"]
    with torch.no_grad():
        torch.testing.assert_close(second(first(ids)), whole(ids), **TOL)


def test_default_config_keeps_smollm2s_proportions_and_divides_by_four_ranks():
    c = TinyLlamaConfig()
    assert c.num_attention_heads * c.head_dim == c.hidden_size
    assert c.num_key_value_heads % 4 == 0 and c.num_attention_heads % 4 == 0 and c.intermediate_size % 4 == 0
    ratio = SMOLLM2_135M.intermediate_size / SMOLLM2_135M.hidden_size
    assert abs(c.intermediate_size / c.hidden_size - ratio) < 0.05
    hf_count = llama.parameter_count(c.to_hf())
    assert sum(p.numel() for p in TinyLlama(c).parameters()) == hf_count


def test_bad_stage_range_and_tied_config_are_refused():
    with pytest.raises(ValueError, match="first < last"):
        TinyLlama(TinyLlamaConfig()).keep(2, 2)
    with pytest.raises(ValueError, match="untied"):
        TinyLlama(TinyLlamaConfig(tie_word_embeddings=True))
    with pytest.raises(TypeError, match="TinyLlamaConfig"):
        TinyLlama({"hidden_size": 128})
