"""Chapter 1's baselines: a JSON reply cut off mid-object, BM25, word overlap, generated reviews
and the logistic-regression probe (checked against scikit-learn)."""

import math

import pytest
import torch

from llmlab import classifier, lifecycle, retrieval


def test_first_json_object_rejects_a_reply_cut_inside_its_object():
    cut = '{\n "people": {"name": "Marie Curie", "address": {"city": "Warsaw"}, "place": {"name": '
    assert lifecycle.first_json_object(cut) is None  # not the inner {"city": "Warsaw"}


def test_first_json_object_reads_the_whole_reply_or_a_closed_block():
    assert lifecycle.first_json_object('{"a": 1}') == {"a": 1}
    assert lifecycle.first_json_object('Here: {"a": "}{", "b": {"c": 2}} done') == {"a": "}{", "b": {"c": 2}}
    assert lifecycle.first_json_object('{"q": "say \\"hi\\" {"}') == {"q": 'say "hi" {'}


def test_bm25_matches_a_hand_computed_example():
    docs = ["the cat sat", "the dog sat on the dog"]
    scores = retrieval.bm25_scores("dog", docs, k1=1.5, b=0.75)
    idf = math.log(1 + (2 - 1 + 0.5) / (1 + 0.5))  # ln 2
    tf = 2 * 2.5 / (2 + 1.5 * (1 - 0.75 + 0.75 * 6 / 4.5))
    assert scores[0] == 0.0
    assert scores[1] == pytest.approx(idf * tf, rel=1e-12)


def test_bm25_prefers_the_document_with_the_rarer_word():
    docs = ["a cat and a dog", "a cat", "a cat again"]
    scores = retrieval.bm25_scores("dog cat", docs)
    assert max(range(3), key=scores.__getitem__) == 0


def test_word_overlap_ignores_stopwords():
    assert retrieval.word_overlap("the cat and the hat", "a cat sat") == 0.5
    with pytest.raises(ValueError, match="content word"):
        retrieval.word_overlap("the and of", "anything")


def test_generated_review_splits_share_no_text_and_are_balanced():
    train = classifier.generated_reviews(200, "train")
    test = classifier.generated_reviews(100, "test")
    assert not {t for t, _ in train} & {t for t, _ in test}
    assert sum(label == "positive" for _, label in test) == 50
    assert classifier.generated_reviews(10, "test") == classifier.generated_reviews(10, "test")


def test_logistic_regression_equals_scikit_learn():
    sklearn = pytest.importorskip("sklearn.linear_model")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(120, 5, generator=g, dtype=torch.float64)
    y = ((x[:, 0] - 0.5 * x[:, 1] + 0.3 * torch.randn(120, generator=g, dtype=torch.float64)) > 0).double()
    w, b = classifier.fit_logistic_regression(x, y, l2=1e-2)
    ref = sklearn.LogisticRegression(C=1 / (120 * 1e-2), tol=1e-10, max_iter=10_000).fit(x.numpy(), y.numpy())
    assert torch.allclose(w, torch.tensor(ref.coef_[0]), atol=1e-4)
    assert float(b) == pytest.approx(float(ref.intercept_[0]), abs=1e-4)


def test_reply_tokens_flags_a_reply_that_reached_the_cap():
    class Tok:
        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": text.split()}

        def decode(self, ids):
            return " ".join(ids)

    assert lifecycle.reply_tokens(Tok(), "a b c", 3) == (3, True)
    assert lifecycle.reply_tokens(Tok(), "a b", 3) == (2, False)
