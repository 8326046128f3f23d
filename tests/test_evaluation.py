"""Scoring for chapter 11 (llmlab.evaluation): multiple choice from log-likelihoods, exact match, BLEU, ROUGE.

The log-likelihood scorer is checked against a direct computation, one choice at a time,
on tiny seeded models and a tokenizer trained here; the questions are invented (no model
runs on the frozen benchmark in the tests). BLEU and ROUGE are checked against the record
of sacrebleu and rouge-score on the same pairs (tools/crosscheck_metrics.py).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from llmlab import evaluation
from llmlab.evaluation import (
    bleu,
    choice_logprobs,
    choice_scores,
    exact_match,
    mc_prompt,
    normalize_answer,
    rouge_scores,
    score_multiple_choice,
    sentence_bleu,
    tokenize_13a,
)
from llmlab.metrics import rouge_l
from llmlab.tokenization import train_tokenizer

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "llmlab" / "results" / "evaluation_metrics_crosscheck.json"
TEXTS = ["The answer is 42. The capital of France is Paris. Paris is a city of light. "
         "42 is a number. hello world, hello there. Question: what is it? Answer: A B C D"] * 20
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")
CONTEXT = "The capital of France is"
CHOICES = [" Paris", " a city of light", " 42", " hello", "!"]
# invented items in the benchmark's shape
ITEMS = [
    {"id": "x-1", "subject": "geography", "difficulty": "easy", "question": "What is the capital of France?",
     "choices": ["Paris", "hello", "a number", "the light"], "answer": 0},
    {"id": "x-2", "subject": "arithmetic", "difficulty": "medium", "question": "What is six times seven?",
     "choices": ["41", "42", "the answer is 43", "44"], "answer": 1},
]


@pytest.fixture(scope="module")
def tok():
    tokenizer = train_tokenizer(TEXTS, 300)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def model(request, tok, make_gpt2, make_llama):
    return make_gpt2(vocab_size=len(tok)) if request.param == "gpt2" else make_llama(vocab_size=len(tok))


@pytest.fixture(scope="module")
def record():
    return json.loads(RECORD.read_text(encoding="utf-8"))


def encode(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


@torch.no_grad()
def direct_logprob(model, context_ids, cont_ids):
    """Sum of log_softmax at the continuation's positions: one unpadded sequence, no batching."""
    ids = torch.tensor([context_ids + cont_ids])
    logp = torch.log_softmax(model(input_ids=ids).logits.float(), -1)[0]  # (T, V)
    return sum(logp[len(context_ids) - 1 + k, t].item() for k, t in enumerate(cont_ids))


# -----------------------------------------------------------------------------
# choice_logprobs / choice_scores


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_summed_logprob_equals_the_direct_computation_one_choice_at_a_time(model, tok, padding_side):
    ours = choice_logprobs(model, tok, CONTEXT, CHOICES, padding_side=padding_side)
    context_ids = encode(tok, CONTEXT)
    for choice, value in zip(CHOICES, ours):
        cont_ids = encode(tok, CONTEXT + choice)[len(context_ids):]
        assert value == pytest.approx(direct_logprob(model, context_ids, cont_ids), abs=1e-5)
    assert len({len(encode(tok, c)) for c in CHOICES}) > 1  # the batch really is padded


def test_the_order_of_the_choices_does_not_change_their_scores(model, tok):
    forward = choice_logprobs(model, tok, CONTEXT, CHOICES)
    backward = choice_logprobs(model, tok, CONTEXT, CHOICES[::-1])
    assert backward[::-1] == pytest.approx(forward, abs=1e-5)


def test_the_tokenizers_own_padding_side_does_not_matter(model, tok):
    before = tok.padding_side
    try:
        results = []
        for side in ("left", "right"):
            tok.padding_side = side
            results.append(choice_logprobs(model, tok, CONTEXT, CHOICES))
    finally:
        tok.padding_side = before
    assert results[0] == pytest.approx(results[1], abs=1e-5)


def test_trailing_space_of_the_context_moves_to_the_continuation(model, tok):
    as_delimiter = choice_logprobs(model, tok, CONTEXT, ["Paris", "hello"], delimiter=" ")
    in_choice = choice_logprobs(model, tok, CONTEXT, [" Paris", " hello"])
    in_context = choice_logprobs(model, tok, CONTEXT + " ", ["Paris", "hello"])
    assert as_delimiter == pytest.approx(in_choice, abs=1e-6)
    assert in_context == pytest.approx(in_choice, abs=1e-6)


def test_a_choice_merged_into_the_context_scores_the_tokens_past_the_context_as_the_harness_does(model, tok):
    # "4" + "2" tokenizes as " 42": the whole has no token beyond the context's count,
    # so the harness scores no token at all (log-prob 0).
    assert encode(tok, "The answer is 42")[-1] not in encode(tok, "The answer is 4")
    swallowed = choice_scores(model, tok, "The answer is 4", ["2"])[0]
    assert (swallowed.n_tokens, swallowed.logprob, swallowed.is_greedy) == (0, 0.0, True)
    # "hel" + "lo world": "hello" is tokenized differently from "hel"; the model reads the
    # context's own tokens and then the whole's tokens past the context's count.
    context_ids, whole = encode(tok, "hel"), encode(tok, "hello world")
    assert whole[:len(context_ids)] != context_ids
    merged = choice_scores(model, tok, "hel", ["lo world"])[0]
    assert merged.n_tokens == len(whole) - len(context_ids)
    assert merged.logprob == pytest.approx(direct_logprob(model, context_ids, whole[len(context_ids):]), abs=1e-5)


def test_an_empty_context_starts_from_the_bos_token(model, tok):
    value = choice_logprobs(model, tok, "", ["Paris is a city"])[0]
    assert value == pytest.approx(direct_logprob(model, [tok.bos_token_id], encode(tok, "Paris is a city")), abs=1e-5)


def test_a_context_longer_than_the_window_loses_tokens_on_the_left(tok, make_gpt2):
    model = make_gpt2(vocab_size=len(tok), n_positions=16)
    context = "hello world, hello there. " * 6
    context_ids, cont_ids = encode(tok, context.rstrip()), encode(tok, " Paris is a city")
    full = context_ids + cont_ids
    assert len(full) > 17
    value = choice_logprobs(model, tok, context, ["Paris is a city"])[0]
    inputs = full[-17:-1]  # the window: the last 16 tokens before the last target
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([inputs])).logits.float(), -1)[0]  # (16, V)
    expected = sum(logp[16 - len(cont_ids) + k, t].item() for k, t in enumerate(cont_ids))
    assert value == pytest.approx(expected, abs=1e-5)


def test_normalised_scores_divide_by_the_characters_of_the_choice_without_the_delimiter(model, tok):
    scores = choice_scores(model, tok, CONTEXT, ["Paris", "a city of light"], delimiter=" ")
    for score, choice in zip(scores, ["Paris", "a city of light"]):
        assert score.n_chars == score.n_bytes == len(choice)
        assert score.logprob_per_char == pytest.approx(score.logprob / len(choice))
    assert choice_scores(model, tok, CONTEXT, ["café"])[0].n_bytes == 5


@torch.no_grad()
def direct_is_greedy(model, context_ids, cont_ids):
    logits = model(input_ids=torch.tensor([context_ids + cont_ids])).logits[0]  # (T, V)
    return all(logits[len(context_ids) - 1 + k].argmax().item() == t for k, t in enumerate(cont_ids))


def test_is_greedy_says_whether_every_continuation_token_was_the_top_token(model, tok):
    context_ids = encode(tok, CONTEXT)
    with torch.no_grad():
        ranked = model(input_ids=torch.tensor([context_ids])).logits[0, -1].argsort(descending=True).tolist()
    # single tokens that re-encode to themselves after the context, from the most likely down
    usable = [t for t in ranked if encode(tok, CONTEXT + tok.decode([t]))[len(context_ids):] == [t]][:3]
    choices = CHOICES + [tok.decode([t]) for t in usable]
    scores = choice_scores(model, tok, CONTEXT, choices)
    for choice, score in zip(choices, scores):
        cont_ids = encode(tok, CONTEXT + choice)[len(context_ids):]
        assert score.is_greedy == direct_is_greedy(model, context_ids, cont_ids), choice
    assert [s.is_greedy for s in scores[len(CHOICES):]] == [t == ranked[0] for t in usable]


def test_the_models_training_mode_is_restored(tok, make_gpt2):
    model = make_gpt2(vocab_size=len(tok)).train()
    choice_logprobs(model, tok, CONTEXT, CHOICES)
    assert model.training


def test_an_empty_choice_or_list_is_refused(tok, make_gpt2):
    model = make_gpt2(vocab_size=len(tok))
    with pytest.raises(ValueError, match=r"choices\[1\] is the empty string"):
        choice_logprobs(model, tok, CONTEXT, ["Paris", ""])
    with pytest.raises(ValueError, match="non-empty list"):
        choice_logprobs(model, tok, CONTEXT, [])
    with pytest.raises(TypeError, match="context must be a str"):
        choice_logprobs(model, tok, None, ["Paris"])


# -----------------------------------------------------------------------------
# prompt formats and whole items


def test_the_letter_format_lists_the_options_and_scores_the_letters():
    context, choices, delimiter = mc_prompt(ITEMS[0], "letter")
    assert context == ("What is the capital of France?\nA. Paris\nB. hello\nC. a number\nD. the light\nAnswer:")
    assert (choices, delimiter) == (["A", "B", "C", "D"], " ")


def test_the_text_format_scores_the_answers_full_text():
    context, choices, delimiter = mc_prompt(ITEMS[0], "text")
    assert context == "Question: What is the capital of France?\nAnswer:"
    assert (choices, delimiter) == (ITEMS[0]["choices"], " ")


def test_the_chat_format_wraps_the_letter_prompt_in_the_chat_template(tok):
    context, choices, delimiter = mc_prompt(ITEMS[0], "chat", tok)
    letter_prompt = mc_prompt(ITEMS[0], "letter")[0]
    assert context == f"<|user|>{letter_prompt}\n<|assistant|>"
    assert (choices, delimiter) == (["A", "B", "C", "D"], "")


def test_the_chat_format_needs_a_chat_template():
    plain = train_tokenizer(TEXTS, 300)
    with pytest.raises(ValueError, match="chat template"):
        mc_prompt(ITEMS[0], "chat", plain)


@pytest.mark.parametrize("fmt", evaluation.FORMATS)
def test_score_multiple_choice_picks_the_highest_summed_and_per_character_scores(model, tok, fmt):
    records = score_multiple_choice(model, tok, ITEMS, fmt)
    assert [r["id"] for r in records] == ["x-1", "x-2"]
    for item, rec in zip(ITEMS, records):
        context, choices, delimiter = mc_prompt(item, fmt, tok)
        sums = choice_logprobs(model, tok, context, choices, delimiter=delimiter)
        lengths = [len(c) for c in choices]
        assert rec["logprobs"] == pytest.approx(sums, abs=1e-6)
        assert rec["chosen"] == max(range(len(sums)), key=sums.__getitem__)
        norms = [s / n for s, n in zip(sums, lengths)]
        assert rec["chosen_norm"] == max(range(len(norms)), key=norms.__getitem__)
        assert rec["correct"] == (rec["chosen"] == item["answer"])
        assert rec["correct_norm"] == (rec["chosen_norm"] == item["answer"])
        assert (rec["format"], rec["subject"], rec["difficulty"]) == (fmt, item["subject"], item["difficulty"])
        if fmt != "text":  # one character per letter: the two variants agree
            assert rec["chosen"] == rec["chosen_norm"]


def test_score_multiple_choice_refuses_a_broken_item(model, tok):
    with pytest.raises(ValueError, match=r"items\[0\]\['answer'\]"):
        score_multiple_choice(model, tok, [{**ITEMS[0], "answer": 4}])
    with pytest.raises(ValueError, match="has no"):
        score_multiple_choice(model, tok, [{"question": "q?", "choices": ["a", "b"]}])


# -----------------------------------------------------------------------------
# exact match


@pytest.mark.parametrize("text, normal", [
    ("The  Eiffel Tower!", "eiffel tower"),
    ("An apple a day", "apple day"),
    ("9:15", "915"),
    ("  Theory of the atom. ", "theory of atom"),
    ("Ottawa", "ottawa"),
    ("", ""),
])
def test_normalize_answer_follows_the_squad_convention(text, normal):
    assert normalize_answer(text) == normal


def test_exact_match_accepts_the_gold_answer_or_an_alias_after_normalisation():
    assert exact_match("the Pacific Ocean.", "Pacific Ocean")
    assert exact_match("pacific", "Pacific Ocean", aliases=["Pacific"])
    assert not exact_match("Atlantic", "Pacific Ocean", aliases=["Pacific"])
    assert not exact_match("", "Pacific Ocean")
    assert not exact_match("the", "Pacific Ocean")


def test_an_accepted_answer_that_normalises_to_nothing_is_ignored():
    # "A" (the ampere) is the article "a" to the SQuAD normalisation: it would match "the" or "".
    assert exact_match("amps", "ampere", aliases=["amp", "amps", "A"])
    assert not exact_match("the", "ampere", aliases=["A"])
    assert not exact_match("A", "ampere", aliases=["A"])


# -----------------------------------------------------------------------------
# BLEU and ROUGE against sacrebleu and rouge-score (the recorded cross-check)


def test_the_record_holds_enough_pairs_made_by_the_tool_with_its_versions(record):
    spec = importlib.util.spec_from_file_location("crosscheck_metrics", ROOT / "tools" / "crosscheck_metrics.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert len(record["pairs"]) >= 30
    recorded = [(p["reference"], p["hypothesis"]) for p in record["pairs"]]
    assert recorded == tool.PAIRS, "the record is stale: rerun tools/crosscheck_metrics.py"
    assert {name: c["indices"] for name, c in record["corpus_bleu"].items()} == tool.SUBSETS
    assert set(record["packages"]) == {"sacrebleu", "rouge-score"} and record["date"]


def test_corpus_bleu_matches_sacrebleu_within_a_hundredth_of_a_point(record):
    pairs = record["pairs"]
    for name, corpus in record["corpus_bleu"].items():
        ours = bleu([pairs[i]["reference"] for i in corpus["indices"]], [pairs[i]["hypothesis"] for i in corpus["indices"]])
        assert abs(ours - corpus["bleu"]) < 0.01, name


def test_sentence_bleu_matches_sacrebleu_on_every_pair(record):
    worst = max(abs(sentence_bleu(p["reference"], p["hypothesis"]) - p["sentence_bleu"]) for p in record["pairs"])
    assert worst < 0.01


@pytest.mark.parametrize("kind", ["rouge1", "rouge2", "rougeL"])
def test_rouge_matches_rouge_score_on_every_pair(record, kind):
    worst = max(abs(rouge_scores(p["reference"], p["hypothesis"])[kind] - p[kind]) for p in record["pairs"])
    assert worst < 1e-6


def test_the_13a_tokenizer_splits_punctuation_but_keeps_numbers_whole():
    assert tokenize_13a("It costs $3.50, I think.") == ["It", "costs", "$", "3.50", ",", "I", "think", "."]
    assert tokenize_13a("1,000 people; e.g. 3-2") == ["1,000", "people", ";", "e", ".", "g", ".", "3", "-", "2"]
    assert tokenize_13a("Tom &amp; Jerry <skipped>") == ["Tom", "&", "Jerry"]
    assert tokenize_13a("well-known") == ["well-known"]


def test_bleu_is_100_for_copies_and_0_without_a_shared_word():
    refs = ["the cat sat on the mat", "a dog barked at the moon"]
    assert bleu(refs, refs) == pytest.approx(100.0)
    assert bleu(refs, ["zebra", "quantum"]) == 0.0


def test_bleu_needs_one_reference_per_hypothesis():
    with pytest.raises(ValueError, match="one reference per hypothesis"):
        bleu(["a b c", "d e f"], ["a b c"])
    with pytest.raises(TypeError, match="hypotheses must be a list of str"):
        bleu(["a b c"], "a b c")


def test_rouge_l_is_metrics_rouge_l_and_the_scores_are_f1():
    reference, candidate = "the cat sat on the mat", "the cat lay on a mat"
    scores = rouge_scores(reference, candidate)
    assert scores["rougeL"] == rouge_l(candidate, reference)
    # unigrams shared: the, cat, on, mat = 4 of 6 each way
    assert scores["rouge1"] == pytest.approx(4 / 6)
    # bigrams shared: "the cat" = 1 of 5 each way
    assert scores["rouge2"] == pytest.approx(1 / 5)


def test_an_unknown_padding_side_is_refused(tok, make_gpt2):
    with pytest.raises(ValueError, match="padding_side must be one of"):
        choice_logprobs(make_gpt2(vocab_size=len(tok)), tok, CONTEXT, CHOICES, padding_side="middle")
