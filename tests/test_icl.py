"""Prompt builders, label scoring and the accuracy-versus-shots table of chapter 4."""

import random

import pytest
import torch

from llmlab import data, icl, recipes, tokenization, zoo

DEMOS = [("the soup was very tasty", "red"), ("the song was dull", "blue"), ("the pie was nice", "red")]


@pytest.fixture(scope="module")
def stories():
    return zoo.load("stories-1m", device="cpu")


# --------------------------------------------------------------------------- templates and prompts
def test_zero_one_and_few_shot_prompts_follow_the_review_template():
    assert icl.build_prompt("the cake was bad") == "Classify this review: the cake was bad\nSentiment:"
    assert icl.build_prompt("the cake was bad", DEMOS, k=1) == (
        "Classify this review: the soup was very tasty\nSentiment: red\n\n"
        "Classify this review: the cake was bad\nSentiment:")
    few = icl.build_prompt("the cake was bad", DEMOS, instruction="Say red if the review is positive.")
    assert few.startswith("Say red if the review is positive.\n\nClassify this review: the soup")
    assert few.count("Classify this review:") == 4 and few.endswith("the cake was bad\nSentiment:")


def test_k_larger_than_the_available_examples_is_refused():
    with pytest.raises(ValueError, match="k=4 examples asked for, but only 3 are available"):
        icl.build_prompt("the cake was bad", DEMOS, k=4)
    with pytest.raises(ValueError, match="k .* must be an int >= 0"):
        icl.build_prompt("the cake was bad", DEMOS, k=-1)


@pytest.mark.parametrize("template, message", [
    ("Review: {label}", "exactly one {input} slot"),
    ("Classify this review: {input}\nSentiment:", "exactly one {label} slot"),
    ("{input} {input} {label}", "exactly one {input} slot"),
    ("{label} comes first: {input}", "must come before"),
    ("Review by {author}: {input} -> {label}", "only use the slots"),
])
def test_a_template_without_its_slots_is_refused(template, message):
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        icl.build_prompt("the cake was bad", DEMOS, template=template)


def test_bad_examples_and_empty_queries_are_refused():
    with pytest.raises(ValueError, match="example 1 must be an"):
        icl.build_prompt("the cake was bad", [DEMOS[0], "the song was dull"])
    with pytest.raises(ValueError, match="query must be a non-empty string"):
        icl.build_prompt("  ", DEMOS)


def test_an_empty_label_set_is_refused(stories):
    with pytest.raises(ValueError, match="labels is empty"):
        icl.ICLTask(labels=())
    with pytest.raises(ValueError, match="two different"):
        icl.ICLTask(labels=("yes", "yes"))
    model, tokenizer = stories
    with pytest.raises(ValueError, match="non-zero number of candidate labels"):
        icl.score_labels(model, tokenizer, ["Classify this review: x\nSentiment:"], [[]])


def test_prompt_counts_its_tokens_and_refuses_what_does_not_fit(stories):
    _, tokenizer = stories
    prompts = [icl.build_prompt("the cake was bad", DEMOS, k=k, tokenizer=tokenizer, window=256) for k in range(4)]
    for p in prompts:
        assert p.n_tokens == len(tokenizer(p.text)["input_ids"])
    costs = [p.example_tokens for p in prompts]
    assert costs[0] == 0 and costs[1] < costs[2] < costs[3]
    assert prompts[3].window_fraction == pytest.approx(prompts[3].n_tokens / 256)
    with pytest.raises(icl.PromptTooLong, match="context window holds 40"):
        icl.build_prompt("the cake was bad", DEMOS, tokenizer=tokenizer, window=40, labels=["red", "blue"])


def test_the_template_space_before_the_label_moves_onto_the_label_word():
    assert icl.query_prefix("Review: {input} Answer: {label}", "good") == ("Review: good Answer:", " ")
    assert icl.query_prefix("Review: {input} Answer:{label}", "good") == ("Review: good Answer:", "")


# --------------------------------------------------------------------------- scoring
def test_label_scores_equal_the_library_loss_on_the_label_tokens(stories):
    model, tokenizer = stories
    prompts = ["Once upon a time, there was a little", "Tom and Lily went to the"]
    candidates = [["cat", "big dog"], ["park", "beach"]]
    scores = icl.score_labels(model, tokenizer, prompts, candidates, batch_size=3)
    for i, prompt in enumerate(prompts):
        n_prompt = len(tokenizer(prompt)["input_ids"])
        for j, label in enumerate(candidates[i]):
            ids = tokenizer(prompt + " " + label, return_tensors="pt")["input_ids"]
            targets = ids.clone()
            targets[:, :n_prompt] = -100  # the library's loss on the label tokens only (mean over them)
            with torch.no_grad():
                mean_nll = model(input_ids=ids, labels=targets).loss.item()
            assert scores[i, j].item() == pytest.approx(-mean_nll * (ids.shape[1] - n_prompt), abs=1e-4)


def test_encoder_decoder_label_scores_equal_the_library_loss():
    model, tokenizer = zoo.load("stories-encoder-decoder", device="cpu")
    prompt, labels = "Tom went to the park with his dog.", ["park", "happy cat"]
    scores = icl.score_labels(model, tokenizer, [prompt], [labels])
    for j, label in enumerate(labels):
        enc = tokenizer(prompt, return_tensors="pt")
        target = tokenizer(label, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            mean_nll = model(**enc, labels=target).loss.item()
        assert scores[0, j].item() == pytest.approx(-mean_nll * target.shape[1], abs=1e-4)


# --------------------------------------------------------------------------- the task family
def test_rules_read_the_feature_they_name():
    rng = random.Random(0)
    for _ in range(200):
        text, classes = data.icl_review(rng)
        words = text.split()
        assert classes["sentiment"] == (0 if words[-1] in data.ICL_POSITIVE else 1)
        assert classes["topic"] == (0 if words[1] in data.ICL_FOOD else 1)
        assert classes["emphasis"] == (0 if "very" in words else 1)


def test_the_query_alone_does_not_determine_the_answer():
    """Zero-shot is at chance by construction: the same review gets either label word, equally often."""
    rng = random.Random(1)
    first_word_wins = 0
    answers_by_review: dict[str, set[str]] = {}
    task = icl.ICLTask()
    for _ in range(4000):
        episode = task.episode(rng, 0)
        first_word_wins += episode["answer"] == episode["labels"][0]
        answers_by_review.setdefault(episode["query"], set()).add(episode["answer"])
    assert abs(first_word_wins / 4000 - 0.5) < 0.03
    assert sum(len(a) > 1 for a in answers_by_review.values()) > 0.9 * len(answers_by_review)


def test_instruction_states_the_rule_and_both_label_words():
    episode = data.icl_episode(random.Random(0), 3, rule="topic", labels=("sun", "moon"))
    assert episode["instruction"] == "Say sun if the review is about food and moon if it is about music."
    assert all(label == ("sun" if text.split()[1] in data.ICL_FOOD else "moon") for text, label in episode["items"])
    with pytest.raises(ValueError, match="rule must be one of"):
        data.icl_episode(random.Random(0), 3, rule="length")


def test_training_text_marks_exactly_the_label_words():
    episode = data.icl_episode(random.Random(2), 5)
    text, spans = icl.episode_text(episode, instruction=True)
    assert [text[a:b] for a, b in spans] == [label for _, label in episode["items"]]
    assert text.startswith(episode["instruction"] + "\n\n")
    recipe = recipes.RECIPES["icl-small"]
    tokenizer = tokenization.train_tokenizer([text] * 4, 300)
    ids, targets = tokenization.encode_icl(tokenizer, [text], [spans], 512)
    picked = targets[0][targets[0] >= 0]
    assert tokenizer.decode(picked).replace(" ", "") == "".join(label for _, label in episode["items"])
    assert ids.shape == targets.shape and (targets[0, -1] == -100)  # nothing to predict after the last token
    assert recipe.corpus == "icl"


# --------------------------------------------------------------------------- the table
def test_wilson_interval_matches_scipy():
    from scipy.stats import binomtest

    for k, n in [(0, 20), (7, 20), (150, 200), (200, 200)]:
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        low, high = icl.wilson_interval(k, n)
        assert low == pytest.approx(ci.low, abs=1e-3) and high == pytest.approx(ci.high, abs=1e-3)
    with pytest.raises(ValueError, match="successes"):
        icl.wilson_interval(5, 3)


def test_accuracy_table_has_one_row_per_shot_count(stories):
    model, tokenizer = stories
    table = icl.accuracy_vs_shots(model, tokenizer, icl.ICLTask(), shots=(0, 2), n=12)
    assert table["shots"].tolist() == [0, 2] and (table["n"] == 12).all()
    assert ((table["ci_low"] <= table["accuracy"]) & (table["accuracy"] <= table["ci_high"])).all()
    assert table["prompt_tokens"].iloc[1] > table["prompt_tokens"].iloc[0]
    for _, row in table.iterrows():  # one answer per episode, adding up to the count
        assert len(row["right"]) == 12 and sum(row["right"]) == row["correct"]
    # the episodes depend on the seed and the largest shot count only, not on the other rows
    alone = icl.accuracy_vs_shots(model, tokenizer, icl.ICLTask(), shots=(2,), n=12)
    assert alone["right"].iloc[0] == table["right"].iloc[1]
    with pytest.raises(ValueError, match="shots must be"):
        icl.accuracy_vs_shots(model, tokenizer, icl.ICLTask(), shots=(-1,), n=4)
    with pytest.raises(ValueError, match="task must be"):
        icl.accuracy_vs_shots(model, tokenizer, "sentiment", n=4)


def test_ideal_reader_matches_the_hand_computed_one_shot_accuracy():
    """One example, three equally likely rules: the query agrees with the example on all three features or
    on none with probability 1/4 (then the answer is certain); otherwise the majority of the two rules left
    on one side is right 2 times in 3. So 1/4 + 3/4 * 2/3 = 3/4; and 1/2 without examples."""
    table = icl.ideal_accuracy(icl.ICLTask(), shots=(0, 1), n=3000, seed=5).set_index("shots")["accuracy"]
    assert table[0] == 0.5
    assert abs(table[1] - 0.75) < 0.025
    fixed = icl.ideal_accuracy(icl.ICLTask(rule="sentiment"), shots=(1,), n=200).iloc[0]
    assert fixed["accuracy"] == 1.0  # a known rule: one example names both label words' classes


def test_classes_are_read_back_from_the_review_and_strangers_are_refused():
    assert data.icl_classes("the soup was very tasty") == {"sentiment": 0, "topic": 0, "emphasis": 0}
    assert data.icl_classes("the band was dull") == {"sentiment": 1, "topic": 1, "emphasis": 1}
    with pytest.raises(ValueError, match="not a review of the task family"):
        data.icl_classes("the weather was nice")


def test_bursty_episodes_repeat_earlier_reviews_with_their_labels():
    episode = data.icl_episode(random.Random(4), 40, rule="sentiment", repeat=0.9)
    texts = [t for t, _ in episode["items"]]
    assert len(set(texts)) < 15  # 90% of items copy an earlier review
    label_of = {}
    for text, label in episode["items"]:
        assert label_of.setdefault(text, label) == label  # a repeated review keeps its label
    with pytest.raises(ValueError, match="repeat must be a probability"):
        data.icl_episode(random.Random(0), 3, repeat=1.0)
