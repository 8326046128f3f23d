"""Corpus cleaning: the quality rules, exact and near deduplication, and their reports."""

import random

import numpy as np
import pytest

from llmlab import data, quality, tokenization

STORY = data.load_corpus("validation")[0]
OTHER = data.load_corpus("validation")[1]


def word_ngrams(text: str, n: int = 5) -> set[tuple[str, ...]]:
    """Word n-grams computed independently of llmlab (lower case, whitespace words)."""
    words = text.lower().split()
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


# ------------------------------------------------------------------ quality rules
def test_every_bundled_story_passes_the_quality_rules():
    stories = data.load_corpus("validation")
    assert all(quality.quality_problems(s) == [] for s in stories)


@pytest.mark.parametrize("text,rule", [
    ("Home | About | Contact | Login", "word count"),
    (" ".join(["supercalifragilisticexpialidocious"] * 60) + " the and", "mean word length"),
    (" ".join(["12 345 678 910"] * 20) + " the cat and the dog", "words with a letter"),
    ("#sale #toys " * 30 + "the and of with", "symbol ratio"),
    (" ".join(["cat dog sun"] * 30), "stop words"),
    ("\n".join(["buy cheap toys and the best price with us today"] * 10), "duplicate lines"),
])
def test_each_quality_rule_catches_the_junk_it_is_for(text, rule):
    assert rule in quality.quality_problems(text)


def test_quality_filter_counts_documents_and_tokens_removed():
    junk = "Home | About | Contact"
    kept, report, by_rule = quality.quality_filter([STORY, junk, OTHER])
    assert kept == [STORY, OTHER]
    assert (report.docs_in, report.docs_removed) == (3, 1)
    assert report.tokens_removed == 5  # whitespace words of the junk line: Home | About | Contact
    assert report.tokens_in == len(STORY.split()) + 5 + len(OTHER.split())
    assert by_rule["word count"] == 1


def test_tokens_are_counted_with_the_given_tokenizer():

    tokenizer = tokenization.train_tokenizer(data.load_corpus("validation"), 300)
    _, report, _ = quality.quality_filter([STORY, "Home | About"], tokenizer=tokenizer)
    expected = len(tokenizer(STORY)["input_ids"]) + len(tokenizer("Home | About")["input_ids"])
    assert report.tokens_in == expected
    assert report.tokens_removed == len(tokenizer("Home | About")["input_ids"])


# ------------------------------------------------------------------ exact dedup
def test_exact_dedup_ignores_case_and_spacing_and_keeps_the_first_copy():
    docs = [STORY, OTHER, "  " + STORY.upper().replace(". ", ".   \n"), OTHER + "!"]
    kept, report = quality.exact_dedup(docs)
    assert kept == [STORY, OTHER, OTHER + "!"]
    assert report.docs_removed == 1 and report.tokens_removed == len(docs[2].split())


def test_exact_duplicates_of_distinct_texts_is_empty():
    assert quality.exact_duplicates(data.load_corpus("validation")) == []


# ------------------------------------------------------------------ MinHash and near dedup
def test_minhash_agreement_estimates_jaccard():
    a, b = set(range(0, 1000)), set(range(250, 1250))  # Jaccard = 750 / 1250 = 0.6
    sa = quality.minhash_signature(a, num_perm=1024, seed=3)
    sb = quality.minhash_signature(b, num_perm=1024, seed=3)
    assert abs((sa == sb).mean() - 0.6) < 0.05
    assert (quality.minhash_signature(a, 64) == quality.minhash_signature(set(a), 64)).all()


def test_jaccard_of_shingles_matches_an_independent_count():
    edited = STORY.replace("named", "called", 1) if "named" in STORY else STORY + " The end."
    ours = quality.jaccard(quality.shingles(STORY), quality.shingles(edited))
    ga, gb = word_ngrams(STORY), word_ngrams(edited)
    assert ours == pytest.approx(len(ga & gb) / len(ga | gb), abs=0.02)  # 32-bit hashes may rarely collide


def test_near_duplicate_pairs_finds_edited_copies_and_only_them():
    words = STORY.split()
    words[len(words) // 2] = "banana"
    edited = " ".join(words)
    docs = [STORY, OTHER, edited, STORY + "\nShare this story on Facebook."]
    pairs = quality.near_duplicate_pairs(docs, threshold=0.8)
    assert {(i, j) for i, j, _ in pairs} == {(0, 2), (0, 3), (2, 3)}
    for i, j, sim in pairs:
        ga, gb = word_ngrams(docs[i]), word_ngrams(docs[j])
        assert sim == pytest.approx(len(ga & gb) / len(ga | gb), abs=0.02)
        assert sim >= 0.8


def test_near_dedup_keeps_one_document_per_cluster():
    words = STORY.split()
    words[3] = "banana"
    docs = [OTHER, STORY, " ".join(words), STORY + " The end."]
    kept, report, _ = quality.near_dedup(docs)
    assert kept == [OTHER, STORY]
    assert report.docs_removed == 2


def test_near_dedup_recall_on_random_texts_with_one_word_changed():
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(500)]
    originals = [" ".join(rng.choice(vocab) for _ in range(100)) for _ in range(40)]
    copies = []
    for text in originals:
        words = text.split()
        words[rng.randrange(100)] = "changed"
        copies.append(" ".join(words))
    pairs = quality.near_duplicate_pairs(originals + copies, threshold=0.8)
    assert sorted((i, j) for i, j, _ in pairs) == [(k, k + 40) for k in range(40)]


# ------------------------------------------------------------------ pipeline and demo corpus
def test_scraped_corpus_adds_what_it_says_and_is_deterministic():
    stories = data.load_corpus("validation")[:200]
    docs, kinds = quality.scraped_corpus(stories, exact_copies=0.1, near_copies=0.05, junk=0.2, seed=1)
    assert docs[:200] == stories and set(kinds[:200]) == {"original"}
    assert [kinds.count(k) for k in ("exact copy", "near copy", "junk")] == [20, 10, 40]
    assert quality.scraped_corpus(stories, exact_copies=0.1, near_copies=0.05, junk=0.2, seed=1) == (docs, kinds)


def test_clean_corpus_removes_the_injected_junk_and_copies():
    stories = data.load_corpus("validation")[:300]
    docs, kinds = quality.scraped_corpus(stories, seed=0)
    result = quality.clean_corpus(docs)
    q, e, n = result.reports
    assert (q.docs_in, e.docs_in, n.docs_in) == (len(docs), q.docs_kept, e.docs_kept)
    assert len(result.kept) == n.docs_kept
    for kind, step in [("junk", "quality filter"), ("exact copy", "exact dedup")]:
        assert all(r == step for r, k in zip(result.removed_by, kinds) if k == kind), kind
    near = [r for r, k in zip(result.removed_by, kinds) if k == "near copy"]
    assert near.count("near dedup") + near.count("exact dedup") >= 0.8 * len(near)
    originals_removed = sum(r is not None for r, k in zip(result.removed_by, kinds) if k == "original")
    assert originals_removed <= 3
    assert sum(r.tokens_removed for r in result.reports) == sum(len(d.split()) for d in docs) - sum(
        len(d.split()) for d in result.kept)


# ------------------------------------------------------------------ the hand-labelled snippets
def test_the_labelled_snippets_load_with_both_labels_and_distinct_texts():
    snippets = quality.load_labelled_snippets()
    labels = [s["label"] for s in snippets]
    assert len(snippets) >= 20 and labels.count("keep") >= 5 and labels.count("drop") >= 5
    assert len({s["text"] for s in snippets}) == len(snippets)
    assert all(s["kind"] and s["why"] and s["text"].strip() for s in snippets)


def test_filter_agreement_counts_what_the_rules_decide_on_the_snippets():
    snippets = quality.load_labelled_snippets()
    texts, labels = [s["text"] for s in snippets], [s["label"] for s in snippets]
    dropped = [bool(quality.quality_problems(t)) for t in texts]
    expected = {
        "caught": sum(d and lab == "drop" for d, lab in zip(dropped, labels)),
        "missed": sum(not d and lab == "drop" for d, lab in zip(dropped, labels)),
        "wrongly dropped": sum(d and lab == "keep" for d, lab in zip(dropped, labels)),
        "kept": sum(not d and lab == "keep" for d, lab in zip(dropped, labels)),
    }
    assert quality.filter_agreement(texts, labels) == expected
    assert sum(expected.values()) == len(snippets)


def test_filter_agreement_on_hand_made_cases():
    story, menu = STORY, "Home | About | Contact"
    counts = quality.filter_agreement([story, menu, story, menu], ["keep", "drop", "drop", "keep"])
    assert counts == {"caught": 1, "missed": 1, "wrongly dropped": 1, "kept": 1}


def test_the_rules_the_chapter_discusses_behave_as_it_says():
    by_kind = {s["kind"]: s["text"] for s in quality.load_labelled_snippets()}
    assert quality.quality_problems(by_kind["short sentence"]) == ["word count"]  # fine, but under 50 words
    for kind in ("cookie banner", "mojibake", "SEO paragraph", "word salad"):
        assert quality.quality_problems(by_kind[kind]) == [], kind  # prose-shaped junk passes every rule
    assert quality.quality_problems(by_kind["paragraph with a URL"]) == []


def test_a_snippets_file_with_a_bad_label_is_refused(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"snippets": [{"kind": "k", "why": "w", "text": "t", "label": "maybe"}]}')
    with pytest.raises(ValueError, match="label in"):
        quality.load_labelled_snippets(path)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("call,match", [
    (lambda: quality.exact_dedup("one long string"), "docs must be a list of str"),
    (lambda: quality.quality_filter([STORY, 42]), "docs must be a list of str, got an item of type int"),
    (lambda: quality.near_dedup([STORY, None]), "docs must be a list of str, got an item of type NoneType"),
    (lambda: quality.near_duplicate_pairs([STORY], threshold=0.0), r"threshold must be a finite number in \(0\.0, 1\.0\]"),
    (lambda: quality.near_duplicate_pairs([STORY], threshold=1.5), r"threshold must be a finite number in \(0\.0, 1\.0\]"),
    (lambda: quality.near_duplicate_pairs([STORY], num_perm=100, bands=32), "multiple of bands"),
    (lambda: quality.shingles(STORY, n=0), "n must be a positive int"),
    (lambda: quality.QualityRules(min_words=0), "min_words"),
    (lambda: quality.QualityRules(min_words=10, max_words=5), "max_words"),
    (lambda: quality.QualityRules(min_alpha_word_fraction=1.2), "min_alpha_word_fraction"),
    (lambda: quality.scraped_corpus([], junk=0.1), "at least one story"),
    (lambda: quality.scraped_corpus([STORY], junk=2.0), "junk must be a fraction"),
    (lambda: quality.quality_problems(b"bytes"), "text must be a string"),
    (lambda: quality.filter_agreement([STORY], ["keep", "drop"]), "one entry per text"),
    (lambda: quality.filter_agreement([STORY], ["yes"]), "one of"),
])
def test_bad_input_is_refused_with_a_clear_message(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_empty_corpus_is_allowed_and_removes_nothing():
    result = quality.clean_corpus([])
    assert result.kept == [] and all(r.docs_removed == 0 and r.tokens_in == 0 for r in result.reports)
    assert np.isclose(result.reports[0].token_fraction_removed, 0.0)
