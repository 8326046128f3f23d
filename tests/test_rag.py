"""llmlab.rag, llmlab.guardrails and the frozen collection (chapter 15)."""

import hashlib
import math
import re

import pytest
import torch

from llmlab import guardrails, rag, retrieval, zoo

DOCS = ["The cat sat on the mat.", "A dog barked at the mailman all morning.",
        "Cats and dogs can live together.", "The stock market fell on Tuesday.",
        "Rain is expected in the valley tomorrow."]


@pytest.fixture(scope="module")
def minilm():
    return zoo.load("minilm")


@pytest.fixture(scope="module")
def dense(minilm):
    return rag.Retriever(DOCS, *minilm)


# --------------------------------------------------------------------------- retrievers
def test_dense_embeddings_equal_sentence_transformers(minilm, dense):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(zoo.model_dir("minilm")), device="cpu")
    ref = torch.tensor(st.encode(DOCS, normalize_embeddings=True))
    torch.testing.assert_close(dense.embeddings, ref, atol=2e-5, rtol=1e-4)


def test_dense_search_is_exact_cosine_best_first(dense):
    query = "a kitten resting on a rug"
    q = dense.embed([query])[0]
    cos = torch.nn.functional.cosine_similarity(dense.embeddings, q.unsqueeze(0)).tolist()
    hits = dense.search(query, 3)
    assert [i for i, _ in hits] == sorted(range(len(DOCS)), key=lambda i: -cos[i])[:3]
    for i, s in hits:
        assert s == pytest.approx(cos[i], abs=1e-5)
    assert hits[0][0] == 0  # the cat on the mat
    assert len(dense.search(query, 99)) == len(DOCS)


def test_bm25_retriever_equals_the_from_scratch_scores_and_bm25s():
    import bm25s

    sparse = rag.BM25Retriever(DOCS)
    query = "the cat and the dog"
    ours = sparse.scores(query).tolist()
    assert ours == pytest.approx(retrieval.bm25_scores(query, DOCS), rel=1e-12)
    # bm25s's Lucene variant leaves out BM25's constant factor (k1 + 1): the same ranking, scores / 2.5
    ref = bm25s.BM25(method="lucene", k1=1.5, b=0.75)
    ref.index([retrieval.words(d) for d in DOCS], show_progress=False)
    # bm25s counts a repeated query word twice; llmlab (like Lucene) counts each distinct word once
    theirs = ref.get_scores(list(dict.fromkeys(retrieval.words(query)))).tolist()
    assert [s / 2.5 for s in ours] == pytest.approx(theirs, rel=1e-5)
    assert sparse.search("cats dogs", 2)[0][0] == 2  # only words that match exactly count: not "cat", "dog"


def test_bm25_ignores_unknown_words_and_ties_keep_document_order():
    sparse = rag.BM25Retriever(DOCS)
    assert sparse.scores("zebra").tolist() == [0.0] * len(DOCS)
    assert [i for i, _ in sparse.search("zebra", 3)] == [0, 1, 2]


def test_hybrid_is_reciprocal_rank_fusion(dense):
    sparse = rag.BM25Retriever(DOCS)
    hybrid = rag.HybridRetriever([dense, sparse])
    query = "the dog barked"
    rank = {}
    for r in (dense, sparse):
        order = sorted(range(len(DOCS)), key=lambda i: (-float(r.scores(query)[i]), i))
        for pos, i in enumerate(order, 1):
            rank.setdefault(i, []).append(pos)
    expected = [sum(1 / (60 + p) for p in rank[i]) for i in range(len(DOCS))]
    assert hybrid.scores(query).tolist() == pytest.approx(expected)
    assert hybrid.search(query, 1)[0][0] == 1


def test_gold_ranks_and_recall():
    sparse = rag.BM25Retriever(DOCS)
    qs = [{"question": "cat mat", "doc": "a"}, {"question": "market Tuesday", "doc": "d"},
          {"question": "cat mat", "doc": "e"}]
    ranks = rag.gold_ranks(sparse, qs, {"a": 0, "d": 3, "e": 4})
    assert ranks[:2] == [1, 1] and ranks[2] > 1
    assert rag.recall_at_k(ranks, 1) == pytest.approx(2 / 3)
    assert rag.recall_at_k(ranks, 5) == 1.0


# --------------------------------------------------------------------------- judging and prompts
@pytest.mark.parametrize("reply, ok", [
    ("It was founded in 1742.", True), ("1742", True), ("17425", False), ("in 1,742", True),
    ("The Pell Works", True), ("Pell", False), ("", False)])
def test_contains_answer(reply, ok):
    gold = "1742" if "74" in reply or not reply else "Pell Works"
    assert rag.contains_answer(reply, gold) is ok


def test_exact_answer_is_squads_and_stricter_than_contains():
    assert rag.exact_answer("The Pell Works!", "Pell Works")
    assert not rag.exact_answer("It is the Pell Works", "Pell Works")
    assert rag.contains_answer("It is the Pell Works", "Pell Works")
    assert rag.exact_answer("Brasilia", "Brasília", ["Brasilia"])


def test_prompt_styles_hold_the_passages_and_the_question():
    msgs = rag.messages("Who founded Velmora?", ["P one.", "P two."])
    assert msgs == [{"role": "system", "content": rag.SYSTEM_PASSAGES},
                    {"role": "user", "content": "[1] P one.\n[2] P two.\n\nWho founded Velmora?"}]
    assert rag.messages("Who founded Velmora?") == [{"role": "system", "content": rag.SYSTEM_BOOK},
                                                     {"role": "user", "content": "Who founded Velmora?"}]
    for style in rag.PROMPT_STYLES:
        text = "\n".join(m["content"] for m in rag.messages("Who founded Velmora?", ["P one.", "P two."], style))
        assert "Who founded Velmora?" in text and "[1] P one.\n[2] P two." in text
        closed = "\n".join(m["content"] for m in rag.messages("Who founded Velmora?", None, style))
        assert "P one" not in closed and "[1]" not in closed
    example = rag.messages("Q?", ["P."], "example")
    assert rag.EXAMPLE_PASSAGE in example[0]["content"] and example[1]["content"] == rag.EXAMPLE_ANSWER


# --------------------------------------------------------------------------- guardrails
def test_fit_threshold_separates_and_prefers_the_lower_cut():
    assert guardrails.fit_threshold([0.8, 0.9, 0.7], [0.2, 0.3]) == pytest.approx(0.5)
    cut = guardrails.fit_threshold([0.6, 0.9], [0.1, 0.7])  # one of each side is misplaced at best
    assert 0.1 < cut <= 0.6


def test_names_and_names_check():
    assert guardrails.names("In what year was Velmora founded by Osric Tamm?") == ["Velmora", "Osric", "Tamm"]
    assert guardrails.names("How many legs does a spider have?") == []
    assert guardrails.names("What is Marisol Venn's best-known work?") == ["Marisol", "Venn"]
    assert guardrails.names("Who made Velmora\u2019s tiles?") == ["Velmora"]
    docs = ["Velmora lies on the Sallow.", "Osric Tamm was a miller."]
    assert guardrails.names_check("When was Velmora founded?", docs)[0]
    ok, why = guardrails.names_check("When was Dunmarsh founded?", docs)
    assert not ok and "Dunmarsh" in why


def test_supported_needs_one_passage_holding_every_new_word():
    ps = ["Velmora was founded in 1742 by Osric Tamm.", "Kestrel Bay was founded in 1809."]
    assert guardrails.supported("It was founded in 1742.", ps, "When was Velmora founded?")[0]
    assert not guardrails.supported("1809 and 1742", ps, "When was Velmora founded?")[0]
    assert not guardrails.supported("Velmora", ps, "When was Velmora founded?")[0]  # adds nothing
    assert not guardrails.supported("In 1750.", ps, "When was Velmora founded?")[0]


# --------------------------------------------------------------------------- the frozen collection
def _note_hashes():
    text = (rag.CORPUS / "AUGMENT.md").read_text(encoding="utf-8")
    return dict(re.findall(r"`(augment_\w+\.json)` \| \d+ \| `([0-9a-f]{64})`", text))


def test_the_collection_is_frozen_at_its_notes_hashes():
    recorded = _note_hashes()
    assert set(recorded) == {"augment_documents.json", "augment_questions.json", "augment_arithmetic.json"}
    for name, sha in recorded.items():
        assert hashlib.sha256((rag.CORPUS / name).read_bytes()).hexdigest() == sha, name


def test_the_collection_has_what_the_chapter_counts_on():
    docs, qs, out = rag.load_documents(), rag.load_questions(), rag.load_out_of_scope()
    assert len(docs) >= 150 and len(qs) >= 200 and len(out) >= 40
    ids = {d["id"]: d for d in docs}
    assert len(ids) == len(docs) and len({q["id"] for q in qs}) == len(qs)
    assert {d["kind"] for d in docs} == set(rag.KINDS)
    asked = {q["doc"] for q in qs}
    assert all(d["id"] in asked for d in docs), "every document answers at least one question"
    for q in qs:
        doc, other = ids[q["doc"]], ids[q["distractor"]]
        assert q["answer"].lower() in doc["text"].lower()
        assert q["wrong"].lower() in other["text"].lower() and other["kind"] == doc["kind"]
        assert q["distractor"] != q["doc"]
        assert not rag.contains_answer(q["wrong"], q["answer"], q["aliases"]), q["id"]
        assert not rag.contains_answer(q["question"], q["answer"], q["aliases"]), q["id"]
    assert {o["type"] for o in out} == {"off-topic", "near"}


def test_bad_input_is_refused_clearly(dense):
    with pytest.raises(TypeError, match="documents"):
        rag.Retriever("one text")
    with pytest.raises(TypeError, match="d\\['text'\\]"):
        rag.BM25Retriever([{"text": "x"}])
    with pytest.raises(ValueError, match="k must be at least 1"):
        dense.search("cat", 0)
    with pytest.raises(ValueError, match="query"):
        dense.search("  ", 1)
    with pytest.raises(ValueError, match="same documents"):
        rag.HybridRetriever([dense, rag.BM25Retriever(DOCS[:2])])
    with pytest.raises(ValueError, match="normalise to nothing"):
        rag.contains_answer("the", "the")
    assert math.isfinite(guardrails.top_similarity(dense, "cat"))


def test_batched_scores_rank_like_one_query_at_a_time(dense):
    qs = ["a kitten on a rug", "puppies and cats", "shares dropped", "wet weather ahead"]
    sparse = rag.BM25Retriever(DOCS)
    hybrid = rag.HybridRetriever([dense, sparse])
    for r in (dense, sparse, hybrid):
        many = r.scores_many(qs)
        assert many.shape == (len(qs), len(DOCS))
        for row, q in zip(many, qs):
            torch.testing.assert_close(row.double(), r.scores(q).double(), atol=1e-5, rtol=1e-5)
    items = [{"question": q, "doc": d} for q, d in zip(qs, "adde")]
    ranks = rag.gold_ranks(dense, items, {"a": 0, "d": 3, "e": 4})
    assert ranks == [[i for i, _ in dense.search(q["question"], 5)].index({"a": 0, "d": 3, "e": 4}[q["doc"]]) + 1
                     for q in items]
