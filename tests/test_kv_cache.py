"""llmlab.kv_cache: the cache's size against the tensors transformers returns, and one decoding step."""

import pytest
import torch
from tiny_models import tiny_llama

from llmlab import compat, kv_cache, llama, zoo


def real_cache(model, batch: int, tokens: int):
    ids = torch.randint(0, model.config.vocab_size, (batch, tokens), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return compat.returned_cache(model(input_ids=ids, use_cache=True))


@pytest.mark.parametrize("kv_heads", [4, 2, 1])  # multi-head, grouped-query, multi-query
def test_cache_bytes_equals_the_tensors_transformers_returns(kv_heads):
    model = tiny_llama(num_key_value_heads=kv_heads)
    shape = kv_cache.config_shape(model.config)
    assert shape == {"layers": 2, "query_heads": 4, "kv_heads": kv_heads, "head_dim": 8}
    cache = real_cache(model, batch=2, tokens=11)
    expected = kv_cache.cache_bytes(shape["layers"], kv_heads, shape["head_dim"], tokens=11, batch=2)
    assert expected == llama.cache_bytes(cache) == 2 * 2 * kv_heads * 8 * 11 * 2 * 4


def test_attention_variants_shrink_by_the_number_of_query_heads_per_kv_head():
    sizes = kv_cache.attention_variants(32, 32, 8, 128, tokens=8192, bytes_per_value=2)  # Llama-3-8B
    assert sizes["grouped-query"] == 2 * 32 * 8 * 128 * 8192 * 2 == 1024**3  # 1 GiB per sequence
    assert sizes["multi-head"] == 4 * sizes["grouped-query"] == 32 * sizes["multi-query"]
    assert kv_cache.cache_bytes(3, 1, 4, tokens=0) == 0


@pytest.mark.skipif(not (zoo.PACKAGED["smollm2-135m-instruct"].folder() / "config.json").exists(),
                    reason="needs the converted SmolLM2 cache")
def test_cache_bytes_of_smollm2_equals_its_real_cache():
    model, _ = zoo.load("smollm2-135m-instruct")
    shape = kv_cache.config_shape(model.config)
    assert shape == {"layers": 30, "query_heads": 9, "kv_heads": 3, "head_dim": 64}
    assert llama.cache_bytes(real_cache(model, batch=1, tokens=7)) == kv_cache.cache_bytes(30, 3, 64, tokens=7)


def test_a_cached_step_gives_the_logits_of_a_forward_over_the_whole_prefix():
    model = tiny_llama()
    ids = torch.randint(0, 64, (1, 20), generator=torch.Generator().manual_seed(1))
    cached_times, cached = kv_cache.decode_step_seconds(model, ids, 12, use_cache=True, repeats=2)
    full_times, full = kv_cache.decode_step_seconds(model, ids, 12, use_cache=False, repeats=2)
    assert len(cached_times) == len(full_times) == 2 and min(cached_times + full_times) > 0
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(full, model(ids[:, :13]).logits[0, -1])


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="multiple of kv_heads"):
        kv_cache.attention_variants(2, 9, 2, 64, tokens=10)
    with pytest.raises(ValueError, match="position must be below"):
        kv_cache.decode_step_seconds(tiny_llama(), torch.zeros(1, 5, dtype=torch.long), 5, True)
