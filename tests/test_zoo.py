"""The model zoo: bundled checkpoints load offline, match their recipes, and are good enough."""

import json
import time

import pytest
import torch
from saved_files import assert_same_saved_file
from transformers import GPT2Config

from llmlab import data, recipes, tokenization, zoo

BUNDLED = "stories-1m"


@pytest.fixture(scope="module")
def stories():
    return zoo.load(BUNDLED, device="cpu")


def test_available_lists_the_bundled_checkpoint_and_minilm():
    names = zoo.available()
    assert BUNDLED in names and "minilm" in names


def test_recipe_config_matches_the_shipped_config():
    shipped = GPT2Config.from_pretrained(zoo.model_dir(BUNDLED))
    expected = recipes.RECIPES[BUNDLED].gpt2_config()
    for key in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "n_inner",
                "bos_token_id", "eos_token_id", "model_type"):
        assert getattr(shipped, key) == getattr(expected, key), key


def test_recipe_saved_beside_the_checkpoint_is_the_registered_recipe():
    saved = zoo.recipe_of(BUNDLED)["recipe"]
    recipe = recipes.RECIPES[BUNDLED]
    assert saved["model"] == recipe.model and saved["vocab_size"] == recipe.vocab_size
    assert all(saved["train"][k] == v for k, v in recipe.train.items())


def test_a_short_rebuild_reproduces_the_shipped_tokenizer_and_config(tmp_path):
    out = recipes.build(BUNDLED, tmp_path / "rebuilt", steps=2, device="cpu", progress=False)
    rebuilt = json.loads((out / "tokenizer.json").read_text())["model"]["vocab"]
    shipped = json.loads((zoo.model_dir(BUNDLED) / "tokenizer.json").read_text())["model"]["vocab"]
    assert rebuilt == shipped
    assert_same_saved_file(out / "config.json", zoo.model_dir(BUNDLED) / "config.json")


def test_bundled_model_loads_with_auto_classes_from_safetensors(stories):
    model, tokenizer = stories
    assert type(model).__name__ == "GPT2LMHeadModel" and not model.training
    assert (zoo.model_dir(BUNDLED) / "model.safetensors").exists()
    assert not list(zoo.model_dir(BUNDLED).glob("*.bin"))
    text = "Once upon a time, there was a little cat."
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text


def test_unknown_name_names_the_bundled_alternatives():
    with pytest.raises(zoo.ZooError, match=BUNDLED):
        zoo.load("stories-9000b")


def test_hub_model_offline_fails_at_once_naming_bundled_models():
    start = time.perf_counter()
    with pytest.raises(zoo.ZooError) as err:
        zoo.load("hub:some-org/not-cached-model")
    assert time.perf_counter() - start < 10
    assert "offline" in str(err.value) and BUNDLED in str(err.value)


def test_empty_hub_id_is_refused():
    with pytest.raises(zoo.ZooError, match="needs a model id"):
        zoo.load("hub:")


def test_minilm_is_a_real_pretrained_encoder():
    model, tokenizer = zoo.load("minilm", device="cpu")
    sentences = ["A man is playing a guitar.", "Someone is playing an instrument.", "The stock market fell sharply today."]
    batch = tokenizer(sentences, return_tensors="pt", padding=True)
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state  # (3, T, 384)
    assert hidden.shape[-1] == 384 and model.config.num_hidden_layers == 6
    mask = batch["attention_mask"][..., None]
    emb = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)  # mean pooling
    related, unrelated = (emb[0] @ emb[1]).item(), (emb[0] @ emb[2]).item()
    assert related > unrelated + 0.3  # only a trained encoder puts the paraphrase this much closer
    assert tokenizer.tokenize("tokenization") == ["token", "##ization"]  # WordPiece sub-words


def test_bundled_model_is_far_better_than_chance_on_held_out_stories(stories):
    from llmlab.metrics import perplexity

    model, tokenizer = stories
    ids = tokenization.encode_stories(tokenizer, data.load_corpus("validation")[:200])
    ppl = perplexity(model, ids, seq_len=128, device="cpu")
    assert ppl < 2.0  # chance would be the vocabulary size, 1024; the 30-step trial model scores about 40


def test_samples_at_temperature_0_8_are_mostly_corpus_words(stories):
    from llmlab.metrics import in_vocabulary_fraction
    from llmlab.sampling import generate

    model, tokenizer = stories
    prompt = tokenizer(["Once upon a time"] * 8, return_tensors="pt")["input_ids"]
    out = generate(model, prompt, max_new_tokens=60, do_sample=True, temperature=0.8,
                   generator=torch.Generator().manual_seed(0))
    texts = tokenizer.batch_decode(out, skip_special_tokens=True)
    assert in_vocabulary_fraction(texts, data.corpus_vocabulary()) > 0.97


def _llmlab_imports(module: str) -> set[str]:
    """The llmlab modules ``module`` imports anywhere in its source (top level or inside functions)."""
    import ast
    from pathlib import Path

    import llmlab

    tree = ast.parse((Path(llmlab.__file__).parent / f"{module}.py").read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            out |= {node.module} if node.module else {a.name for a in node.names}
    return out


def test_imports_point_one_way_from_data_to_recipes_to_zoo():
    assert not {"zoo", "recipes", "tokenization"} & _llmlab_imports("data")
    assert not {"zoo", "recipes"} & _llmlab_imports("tokenization")
    assert "zoo" not in _llmlab_imports("recipes") and {"data", "tokenization"} <= _llmlab_imports("recipes")


def test_every_recipe_saves_through_one_checkpoint_writer():
    import ast
    import inspect

    from llmlab import recipes

    def saves(fn) -> set[str]:
        calls = {n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "")
                 for n in ast.walk(ast.parse(inspect.getsource(fn))) if isinstance(n, ast.Call)}
        return calls & {"_save_checkpoint", "save_pretrained"}

    assert saves(recipes.build) == saves(recipes._build_icl) == {"_save_checkpoint"}


def test_the_zoo_re_exports_nothing():
    # the recipes' and tokenizers' helpers are imported from their own modules
    for name in ("Recipe", "icl_texts", "encode_stories", "encode_icl", "train_tokenizer"):
        assert not hasattr(zoo, name), name