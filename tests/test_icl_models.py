"""The bundled in-context learners of chapter 4: reproducible from their recipes, and they learn from examples."""

import random

import pytest
from saved_files import assert_same_saved_file

from llmlab import data, icl, recipes, zoo

ICL_MODELS = ["icl-small", "icl-large"]
TASK = icl.ICLTask(rule="sentiment")  # the rule the bundled models were trained on; label words drawn per episode
TOLD = icl.ICLTask(rule="sentiment", instruction=True)
CONFIG_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
               "intermediate_size", "max_position_embeddings", "bos_token_id", "eos_token_id", "tie_word_embeddings",
               "model_type")


@pytest.fixture(scope="module")
def tables():
    """Accuracy at 0, 1, 2 and 8 shots (no instruction) and at 0 shots with the instruction, for both sizes."""
    out = {}
    for name in ICL_MODELS:
        model, tokenizer = zoo.load(name, device="cpu")
        plain = icl.accuracy_vs_shots(model, tokenizer, TASK, shots=(0, 1, 2, 8), n=300, seed=11)
        told = icl.accuracy_vs_shots(model, tokenizer, TOLD, shots=(0,), n=300, seed=11)
        out[name] = (plain.set_index("shots")["accuracy"], told["accuracy"].iloc[0])
    return out


@pytest.mark.parametrize("name", ICL_MODELS)
def test_recipe_config_matches_the_shipped_config(name):
    from transformers import AutoConfig

    shipped = AutoConfig.from_pretrained(zoo.model_dir(name))
    expected = recipes.RECIPES[name].model_config()
    for key in CONFIG_KEYS:
        assert getattr(shipped, key) == getattr(expected, key), key


@pytest.mark.parametrize("name", ICL_MODELS)
def test_recipe_saved_beside_the_checkpoint_is_the_registered_recipe(name):
    saved = zoo.recipe_of(name)["recipe"]
    recipe = recipes.RECIPES[name]
    assert saved["model"] == recipe.model and saved["vocab_size"] == recipe.vocab_size
    assert saved["extra"] == recipe.extra and saved["corpus"] == "icl"
    assert all(saved["train"][k] == v for k, v in recipe.train.items())


@pytest.mark.parametrize("name", ICL_MODELS)
def test_checkpoints_are_small_safetensors(name):
    folder = zoo.model_dir(name)
    assert (folder / "model.safetensors").stat().st_size < 3_000_000
    assert not list(folder.glob("*.bin")) and (folder / "train_log.csv").exists()


def test_a_short_rebuild_reproduces_the_shipped_tokenizer_and_config(tmp_path):
    name = ICL_MODELS[0]
    out = recipes.build(name, tmp_path / "rebuilt", steps=2, device="cpu", progress=False)
    for file in ("tokenizer.json", "config.json"):
        assert_same_saved_file(out / file, zoo.model_dir(name) / file)


def test_every_word_the_models_read_is_one_token_and_eight_shots_fit_the_window():
    model, tokenizer = zoo.load(ICL_MODELS[0], device="cpu")
    words = data.ICL_POSITIVE + data.ICL_NEGATIVE + data.ICL_FOOD + data.ICL_MUSIC + data.LABEL_POOL
    for word in words + data.icl_instruction("sentiment", ("x", "y")).split()[1:-1]:
        if word not in ("x", "y"):
            assert len(tokenizer(" " + word)["input_ids"]) == 1, word
    episode = TOLD.episode(random.Random(0), 8)
    prompt = icl.build_prompt(episode["query"], episode["demos"], 8, instruction=episode["instruction"],
                              tokenizer=tokenizer, window=icl.context_window(model), labels=episode["labels"])
    assert prompt.n_tokens < icl.context_window(model)


@pytest.mark.parametrize("name", ICL_MODELS)
def test_zero_shot_is_at_chance_and_eight_shots_are_far_above(tables, name):
    plain, _ = tables[name]
    assert 0.40 <= plain[0] <= 0.60  # chance is 0.5 by construction; 300 episodes: +-0.057 at 95%
    assert plain[8] >= 0.80


@pytest.mark.parametrize("name", ICL_MODELS)
def test_an_instruction_replaces_the_examples_at_zero_shots(tables, name):
    plain, told = tables[name]
    assert told >= plain[0] + 0.15


def test_the_larger_model_is_ahead_with_one_example(tables):
    assert tables["icl-large"][0][1] > tables["icl-small"][0][1]
