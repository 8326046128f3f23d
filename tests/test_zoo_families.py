"""The encoder and the encoder-decoder of chapter 2: bundled, reproducible from their recipes, and trained."""


import pytest
import torch
from saved_files import assert_same_saved_file

from llmlab import data, objectives, recipes, tokenization, zoo

ENCODER, ENCDEC = "stories-encoder", "stories-encoder-decoder"
CONFIG_KEYS = {
    ENCODER: ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
              "max_position_embeddings", "layer_types", "pad_token_id", "eos_token_id", "model_type"),
    ENCDEC: ("vocab_size", "d_model", "encoder_layers", "decoder_layers", "encoder_attention_heads",
             "decoder_attention_heads", "encoder_ffn_dim", "decoder_ffn_dim", "max_position_embeddings",
             "scale_embedding", "pad_token_id", "eos_token_id", "decoder_start_token_id", "forced_eos_token_id",
             "model_type"),
}


@pytest.fixture(scope="module")
def encoder():
    return zoo.load(ENCODER, device="cpu")


@pytest.fixture(scope="module")
def encdec():
    return zoo.load(ENCDEC, device="cpu")


def test_the_three_families_are_bundled_with_their_objectives():
    assert {"stories-1m", ENCODER, ENCDEC} <= set(zoo.available())
    assert [(recipes.RECIPES[n].family, recipes.RECIPES[n].objective) for n in ("stories-1m", ENCODER, ENCDEC)] == [
        ("decoder", "causal"), ("encoder", "masked"), ("encoder-decoder", "span-corruption")]


@pytest.mark.parametrize("name", [ENCODER, ENCDEC])
def test_recipe_config_matches_the_shipped_config(name):
    from transformers import AutoConfig

    shipped = AutoConfig.from_pretrained(zoo.model_dir(name))
    expected = recipes.RECIPES[name].model_config()
    for key in CONFIG_KEYS[name]:
        assert getattr(shipped, key) == getattr(expected, key), key


@pytest.mark.parametrize("name", [ENCODER, ENCDEC])
def test_recipe_saved_beside_the_checkpoint_is_the_registered_recipe(name):
    saved = zoo.recipe_of(name)["recipe"]
    recipe = recipes.RECIPES[name]
    assert saved["model"] == recipe.model and saved["vocab_size"] == recipe.vocab_size
    assert saved["extra"] == recipe.extra and saved["family"] == recipe.family
    assert all(saved["train"][k] == v for k, v in recipe.train.items())


@pytest.mark.parametrize("name", [ENCODER, ENCDEC])
def test_checkpoints_are_small_safetensors(name):
    folder = zoo.model_dir(name)
    assert (folder / "model.safetensors").stat().st_size < 3_000_000
    assert not list(folder.glob("*.bin"))


@pytest.mark.parametrize("name", [ENCODER, ENCDEC])
def test_a_short_rebuild_reproduces_the_shipped_tokenizer_and_config(name, tmp_path):
    out = recipes.build(name, tmp_path / "rebuilt", steps=2, device="cpu", progress=False)
    for file in ("tokenizer.json", "config.json"):
        assert_same_saved_file(out / file, zoo.model_dir(name) / file)


def test_loads_as_the_right_auto_classes(encoder, encdec):
    assert type(encoder[0]).__name__ == "ModernBertForMaskedLM" and not encoder[0].training
    assert type(encdec[0]).__name__ == "PegasusForConditionalGeneration" and not encdec[0].training


def test_special_tokens_come_first_and_absorb_the_space_before_them(encoder, encdec):
    _, tok = encoder
    assert (tok.eos_token_id, tok.pad_token_id, tok.mask_token_id) == (0, 1, 2)
    masked, plain = tok("Tom had a red [MASK].")["input_ids"], tok("Tom had a red ball.")["input_ids"]
    assert len(masked) == len(plain) and masked.count(tok.mask_token_id) == 1
    _, tok = encdec
    assert tok.convert_tokens_to_ids("<extra_id_0>") == 2 and tok.pad_token_id == 1
    assert len(tok("Tom had a red <extra_id_0>.")["input_ids"]) == len(tok("Tom had a red ball.")["input_ids"])


def test_encoder_fills_masks_far_better_than_chance_on_held_out_stories(encoder):
    model, tok = encoder
    recipe = recipes.RECIPES[ENCODER]
    stream = tokenization.encode_stories(tok, data.load_corpus("validation")[:200])
    make = recipe.batch_fn(tok, recipe.train_config())
    loss = objectives.evaluate_objective(model, make, stream, n_batches=4)
    assert loss < 1.5  # chance is ln(1024) = 6.9 nats


def test_encoder_uses_context_on_both_sides(encoder):
    model, tok = encoder
    batch = tok(["Tom had a red [MASK]. He loved his ball very much.",
                 "Tom had a red [MASK]. He loved his kite very much."], return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    at_mask = batch["input_ids"] == tok.mask_token_id
    best = tok.convert_ids_to_tokens(logits[at_mask].argmax(-1).tolist())
    assert best == ["Ġball", "Ġkite"]  # the word after the mask decides the word at it


def test_encoder_decoder_restores_a_dropped_span_on_held_out_stories(encdec):
    model, tok = encdec
    recipe = recipes.RECIPES[ENCDEC]
    stream = tokenization.encode_stories(tok, data.load_corpus("validation")[:200])
    loss = objectives.evaluate_objective(model, recipe.batch_fn(tok, recipe.train_config()), stream, n_batches=4)
    assert loss < 1.0  # chance is ln(1024) = 6.9 nats
    for text, word in [("When the rain stopped, they saw a big <extra_id_0> in the sky.", "rainbow"),
                       ("Once upon a time, there was a little <extra_id_0> named Pip.", "bird")]:
        out = model.generate(**tok(text, return_tensors="pt"), max_new_tokens=8, do_sample=False)
        written = tok.decode(out[0], skip_special_tokens=False)
        assert written.split("<extra_id_0>")[1].split("<")[0].strip() == word, written


def test_encoder_decoder_generation_ends_with_the_end_of_text_token(encdec):
    model, tok = encdec
    out = model.generate(**tok("Tom had a red <extra_id_0>.", return_tensors="pt"), max_new_tokens=30, do_sample=False)
    assert out[0, 0].item() == model.config.decoder_start_token_id and out[0, -1].item() == tok.eos_token_id
