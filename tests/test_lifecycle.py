"""Chapter 1's helpers: fitting a prompt to a context window and loss against context length
(``context_window``), the lifecycle diagram and the use cases' judges (``lifecycle``), a model card
whose numbers are measured (``model_card``) and sentence embeddings (``retrieval``)."""

import math

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from llmlab import context_window, data, lifecycle, metrics, model_card, retrieval, tokenization, zoo
from llmlab.records import lifecycle_completions


@pytest.fixture(scope="module")
def stories():
    return zoo.load("stories-1m", device="cpu")


# ------------------------------------------------------------------ fit_to_context
def test_keep_end_drops_the_oldest_tokens_and_leaves_room_to_generate():
    kept, dropped = context_window.fit_to_context(list(range(300)), context_window=256, max_new_tokens=56)
    assert kept == list(range(100, 300)) and dropped == 100
    assert len(kept) + 56 == 256


def test_keep_start_matches_the_tokenizers_own_truncation(stories):
    _, tokenizer = stories
    text = " ".join(data.load_corpus("validation")[:3])
    ids = tokenizer(text)["input_ids"]
    kept, dropped = context_window.fit_to_context(ids, 64, keep="start")
    assert kept == tokenizer(text, truncation=True, max_length=64)["input_ids"]
    assert dropped == len(ids) - 64


def test_a_prompt_that_fits_is_unchanged():
    kept, dropped = context_window.fit_to_context(torch.tensor([5, 6, 7]), 10, max_new_tokens=5)
    assert kept == [5, 6, 7] and dropped == 0


@pytest.mark.parametrize("kwargs,match", [
    (dict(context_window=0), "context_window must be an integer >= 1"),
    (dict(context_window=-3), "context_window must be an integer >= 1"),
    (dict(context_window=8, max_new_tokens=8), r"max_new_tokens \(8\) must be smaller"),
    (dict(context_window=8, max_new_tokens=-1), "max_new_tokens must be an integer >= 0"),
    (dict(context_window=8, keep="middle"), "keep must be one of"),
])
def test_bad_window_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        context_window.fit_to_context([1, 2, 3], **kwargs)


def test_a_batch_is_refused_by_fit_to_context():
    with pytest.raises(ValueError, match="1-D"):
        context_window.fit_to_context(torch.zeros(2, 3, dtype=torch.long), 8)


# ------------------------------------------------------------------ loss by context length
def test_loss_by_context_length_equals_a_direct_cross_entropy(stories):
    model, tokenizer = stories
    ids = tokenizer(data.load_corpus("validation")[:4])["input_ids"]
    got = context_window.loss_by_context_length(model, ids, target_len=10, context_lengths=[0, 20], start_id=0)
    # independent: one story at a time, through metrics.mean_loss_nats on the last 10 targets
    for k in (0, 20):
        total = 0.0
        for s in ids:
            window = torch.tensor([0] + s[len(s) - 10 - k:])
            with torch.no_grad():
                logits = model(window[None, :-1]).logits[0, -10:]
            total += torch.nn.functional.cross_entropy(logits, window[-10:], reduction="sum").item()
        assert got[k] == pytest.approx(total / (10 * len(ids)), rel=1e-4)
    assert got[20] < got[0]  # context helps


def test_loss_by_context_length_refuses_windows_the_model_cannot_hold(stories):
    model, _ = stories
    with pytest.raises(ValueError, match="exceeds the model's context window"):
        context_window.loss_by_context_length(model, [[1] * 400], target_len=10, context_lengths=[250], start_id=0)
    with pytest.raises(ValueError, match="context_lengths"):
        context_window.loss_by_context_length(model, [[1] * 40], target_len=10, context_lengths=[], start_id=0)


# ------------------------------------------------------------------ diagram and model card
def test_lifecycle_diagram_names_every_stage():
    ax = lifecycle.draw_lifecycle()
    texts = " ".join(t.get_text() for t in ax.texts)
    for stage in ("Scope", "Select", "Adapt and align", "Deploy", "fine-tuning", "human feedback"):
        assert stage in texts


def test_hero_gender_counts_reads_the_first_sentence_only():
    texts = ["Once, there was a girl named Mia. A boy came.", "A boy named Tom lived here.", "A cat sat."]
    assert model_card.hero_gender_counts(texts) == {"girl": 1, "boy": 1}


def test_model_card_numbers_are_measured_not_copied(stories):
    model, tokenizer = stories
    card = model_card.measure_model_card("stories-1m", n_samples=16, max_new_tokens=20)
    assert card.n_parameters == sum(p.numel() for p in model.parameters())
    assert card.vocab_size == len(tokenizer) and card.context_window == model.config.n_positions
    val_ids = tokenization.encode_stories(tokenizer, data.load_corpus("validation"))
    assert card.evaluation["val_perplexity"] == pytest.approx(metrics.perplexity(model, val_ids, seq_len=128), rel=1e-4)
    assert 1 < card.evaluation["val_perplexity"] < 5  # far below chance (1,024)
    assert 0 <= card.evaluation["girl_share_samples"] <= 1
    assert math.isclose(card.evaluation["girl_share_corpus"], 0.5, abs_tol=0.05)  # the generator picks 50/50
    text = card.to_markdown()
    for section in ("## Model details", "## Intended uses", "## Limitations, risks and biases",
                    "## Training data and procedure", "## Evaluation"):
        assert section in text
    assert f"{card.n_parameters:,}" in text


def test_model_card_refuses_bad_sample_counts():
    with pytest.raises(ValueError, match="n_samples must be an integer >= 1"):
        model_card.measure_model_card("stories-1m", n_samples=0)


# ------------------------------------------------------------------ judging answers (no model needed)
def test_mentions_ignores_case_and_curly_apostrophes():
    assert lifecycle.mentions("It was Pierre L\u2019Enfant.", ["L'Enfant"])
    assert lifecycle.mentions("paris, of course", "Paris")
    assert not lifecycle.mentions("New York City", ["Washington"])
    with pytest.raises(ValueError, match="options must be non-empty strings"):
        lifecycle.mentions("x", [])
    with pytest.raises(TypeError, match="text must be a string"):
        lifecycle.mentions(None, "x")


def test_first_label_takes_the_label_named_first_as_a_whole_word():
    labels = ("positive", "negative")
    assert lifecycle.first_label("Negative, not positive.", labels) == "negative"
    assert lifecycle.first_label("The review is positive, with a negative tone", labels) == "positive"
    assert lifecycle.first_label("It is neutral.", labels) is None
    assert lifecycle.first_label("nonpositive", labels) is None


def test_last_integer_reads_thousands_separators():
    assert lifecycle.last_integer("47 × 38 = 1,786.") == 1786
    assert lifecycle.last_integer("The answer is 880") == 880
    assert lifecycle.last_integer("no digits here") is None


def test_first_json_object_finds_an_object_inside_a_code_fence():
    text = 'Sure:\n```json\n{"a": [1, 2], "b": {"c": "d"}}\n```\nand {"later": 1}'
    assert lifecycle.first_json_object(text) == {"a": [1, 2], "b": {"c": "d"}}
    assert lifecycle.first_json_object('{"cut off": ') is None
    assert lifecycle.first_json_object("[1, 2]") is None


def test_json_matches_ignores_case_and_order_but_not_extra_keys():
    ref = {"people": ["Marie Curie"], "places": ["Warsaw", "Paris"], "dates": ["1891"]}
    assert lifecycle.json_matches('{"people": "marie curie", "places": ["Paris", "Warsaw"], "dates": [1891]}', ref)
    assert not lifecycle.json_matches('{"people": ["Marie Curie"], "places": ["Paris"], "dates": ["1891"]}', ref)
    assert not lifecycle.json_matches('{"people": ["Marie Curie"], "places": ["Warsaw", "Paris"], '
                                      '"dates": ["1891"], "extra": 1}', ref)
    assert not lifecycle.json_matches("no json", ref)


def test_count_sentences():
    assert lifecycle.count_sentences("One. Two! Three?") == 3
    assert lifecycle.count_sentences("No full stop at the end") == 1
    assert lifecycle.count_sentences("") == 0


def test_calculator_does_arithmetic_and_nothing_else():
    assert lifecycle.calculator("59 * 63") == 3717
    assert lifecycle.calculator("59 x 63") == 3717 == lifecycle.calculator("59 × 63")
    assert lifecycle.calculator("(2 + 3) * -4 / 2") == -10
    for bad in ("__import__('os')", "2 ** 100", "1 +", "abs(3)"):
        with pytest.raises(ValueError, match="calculator accepts numbers"):
            lifecycle.calculator(bad)


def test_tool_result_runs_only_a_valid_calculator_call():
    assert lifecycle.tool_result('{"name": "calculator", "arguments": {"expression": "12 * 3"}}') == 36
    assert lifecycle.tool_result('{"name": "math.pow", "arguments": {"expression": "12 * 3"}}') is None
    assert lifecycle.tool_result('{"name": "calculator", "arguments": {"expression": "os.system()"}}') is None
    assert lifecycle.tool_result("12 * 3 = 36") is None


# ------------------------------------------------------------------ the task sets
def test_sentiment_set_is_balanced_and_frozen():
    items = lifecycle.sentiment_items()
    assert len(items) == 30 and sum(i.reference == "positive" for i in items) == 15
    assert items[0].correct("Positive.") and not items[0].correct("The review is neutral, not negative.")


def test_capital_items_accept_every_capital_of_a_country():
    items = {i.prompt: i for i in lifecycle.capital_items()}
    assert len(items) == 19
    south_africa = items["What is the capital of South Africa?"]
    assert south_africa.correct("Its capital is Cape Town.") and not south_africa.correct("Johannesburg")


def test_arithmetic_items_are_seeded_and_their_references_are_products():
    a, b = lifecycle.arithmetic_items(seed=0), lifecycle.arithmetic_items(seed=0)
    assert a == b and len(a) == 30 and a != lifecycle.arithmetic_items(seed=1)
    for item in a:
        x, y = map(int, item.prompt.split("What is ")[1].split("?")[0].split(" times "))
        assert 10 <= x <= 99 and 10 <= y <= 99 and int(item.reference) == x * y
    with pytest.raises(ValueError, match="need n >= 1"):
        lifecycle.arithmetic_items(n=0)
    with pytest.raises(TypeError, match="n must be an integer"):
        lifecycle.arithmetic_items(n=2.5)


def test_calculator_items_ask_the_same_multiplications():
    plain, tool = lifecycle.arithmetic_items(), lifecycle.calculator_items()
    assert [i.reference for i in plain] == [i.reference for i in tool]
    a, b = plain[0].prompt.split("What is ")[1].split("?")[0].split(" times ")
    assert tool[0].correct(f'{{"name": "calculator", "arguments": {{"expression": "{a} * {b}"}}}}')


def test_accuracy_comes_with_a_wilson_interval():
    items = lifecycle.capital_items()[:4]
    got = lifecycle.accuracy(items, ["Buenos Aires", "Sydney", "Brasilia", "Ottawa"])
    assert got["correct"] == 3 and got["accuracy"] == 0.75
    assert got["ci_low"] < 0.75 < got["ci_high"]
    with pytest.raises(ValueError, match="as many answers as items"):
        lifecycle.accuracy(items, ["x"])


def test_every_use_case_has_a_check_that_its_reference_passes():
    for case in lifecycle.USE_CASES:
        reference = case.reference
        if case.name == "essay writing":
            reference = "Walking is good for the heart. It lifts the mood. And it costs nothing."
        if case.name == "chat (a fact)":
            reference = "It was designed by Pierre Charles L'Enfant in 1791."
        assert case.passes(reference), case.name
        assert not case.passes("I don't know."), case.name


def test_the_record_matches_todays_prompts():
    record = lifecycle_completions.load()
    for key in ("code_version", "machine", "torch", "transformers"):
        assert record[key]
    assert isinstance(record["machine"], dict) and record["machine"]["cpu_count"] == 2  # an old one-line stamp, read
    for group, (prompts, max_new, _) in lifecycle_completions.plan().items():
        answers = lifecycle.recorded_answers(record, group)
        assert len(answers) == len(prompts) and all(isinstance(a, str) for a in answers)
        assert record["groups"][group]["max_new_tokens"] == max_new
    with pytest.raises(ValueError, match="no group"):
        lifecycle.recorded_answers(record, "poems")


# ------------------------------------------------------------------ chat template and cards (real model)
@pytest.fixture(scope="module")
def smol():
    return zoo.load("smollm2-135m-instruct", device="cpu")


def test_compare_cards_puts_both_models_side_by_side(stories, smol):
    model, _ = smol
    card = model_card.measure_model_card("stories-1m", n_samples=4, max_new_tokens=5)
    table = model_card.compare_cards(card, zoo.recipe_of("smollm2-135m-instruct"))
    assert list(table.columns) == ["stories-1m", "SmolLM2-135M-Instruct"]
    assert table.loc["parameters", "SmolLM2-135M-Instruct"] == f"{sum(p.numel() for p in model.parameters()):,}"
    assert table.loc["context window (tokens)", "SmolLM2-135M-Instruct"] == "8,192"
    with pytest.raises(ValueError, match="lacks"):
        model_card.compare_cards(card, {"model": "x"})


def test_mean_pooled_embeddings_are_unit_vectors_that_rank_by_meaning():
    enc, tok = zoo.load("minilm", device="cpu")
    vecs = retrieval.mean_pooled_embeddings(enc, tok, ["a dog runs in the park", "a puppy plays outside",
                                                       "the stock market fell"], batch_size=2)
    assert vecs.shape == (3, enc.config.hidden_size)
    assert torch.allclose(vecs.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]


def test_format_accuracy_rounds_to_whole_percent():
    assert lifecycle.format_accuracy({"accuracy": 0.7, "ci_low": 0.52124, "ci_high": 0.8333}) == "70% (52% to 83%)"
    with pytest.raises(ValueError, match="lacks"):
        lifecycle.format_accuracy({"accuracy": 0.5})
