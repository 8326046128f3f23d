"""Chapter 9's comparison at matched bytes: per-document losses, the extended tokenizer, the record."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llmlab import domain, domain_matched, zoo


@pytest.fixture(scope="module")
def story():
    return zoo.load("stories-1m", device="cpu")


def test_doc_losses_equal_nats_per_byte_for_one_short_document(story):
    model, tok = story
    docs = domain.load_domain_corpus("validation")[:4]
    nats, nbytes = domain_matched.doc_losses(model, tok, docs)
    assert nats.shape == nbytes.shape == (4,)
    assert list(nbytes) == [len(d.encode()) + 1 for d in docs]
    for d, n, b in zip(docs, nats, nbytes):
        assert n / b == pytest.approx(domain.nats_per_byte(model, tok, [d]), rel=1e-5)


def test_doc_losses_cut_a_long_document_into_windows_and_score_every_token_once(story):
    model, tok = story
    long_doc = " ".join(domain.load_domain_corpus("validation")[:6])
    n_tokens = len(tok(long_doc, add_special_tokens=False)["input_ids"])
    assert n_tokens > 128  # more than one window
    nats_small, _ = domain_matched.doc_losses(model, tok, [long_doc], seq_len=64, batch_size=3)
    # by hand: the stream end-of-text, document, end-of-text, cut into windows of 65 tokens
    # that share their edge token, each window's targets summed
    stream = [tok.eos_token_id, *tok(long_doc, add_special_tokens=False)["input_ids"], tok.eos_token_id]
    total, n_targets = 0.0, 0
    for s in range(0, len(stream) - 1, 64):
        w = torch.tensor([stream[s:s + 65]])
        logits = model(w[:, :-1]).logits
        total += torch.nn.functional.cross_entropy(logits[0], w[0, 1:], reduction="sum").item()
        n_targets += w.shape[1] - 1
    assert n_targets == len(stream) - 1  # every token after the first, once
    assert nats_small[0] == pytest.approx(total, rel=1e-5)
    # batching does not change the sum
    again, _ = domain_matched.doc_losses(model, tok, [long_doc], seq_len=64, batch_size=1)
    assert again[0] == pytest.approx(nats_small[0], rel=1e-5)


def test_extension_words_are_split_words_ranked_by_the_tokens_they_save(story):
    _, tok = story
    docs = ["the indemnification clause. the indemnification clause.", "a cat sat on the mat"]
    words = domain_matched.extension_words(tok, docs, n=3)
    assert words[0] == " indemnification"  # twice, and split into many pieces
    for w in words:
        assert len(tok(w, add_special_tokens=False)["input_ids"]) > 1
    assert " the" not in words  # already one token
    # only words after a space, and none that starts a longer word anywhere it will be read
    assert all(w.startswith(" ") for w in words)
    docs = ["The flow of funds. The flow of funds.", "The flow returned."]
    assert " flow" in domain_matched.extension_words(tok, docs, n=5)
    assert " flow" not in domain_matched.extension_words(tok, docs, n=5, other_texts=["the flowers grew"])
    assert "The" not in domain_matched.extension_words(tok, docs, n=5)


def test_extended_tokenizer_and_model_start_new_rows_at_the_mean_of_the_pieces(story):
    model, tok = story
    model = type(model)(model.config)  # a copy to grow, with the story model's weights
    model.load_state_dict(zoo.load("stories-1m", device="cpu")[0].state_dict())
    words = [" indemnification", " myalgia"]
    ext = domain_matched.extend_vocabulary(tok, words)
    assert len(ext) == len(tok) + 2 and len(tok) == 1024  # the original is unchanged
    text = "The indemnification clause and myalgia."
    ids = ext(text, add_special_tokens=False)["input_ids"]
    assert len(tok) in ids and len(tok) + 1 in ids
    assert ext.decode(ids) == text
    old_rows = model.get_input_embeddings().weight.detach().clone()
    assert domain_matched.extend_model(model, tok, ext) == 2
    grown = model.get_input_embeddings().weight.detach()
    assert torch.equal(grown[:1024], old_rows)
    pieces = tok(" myalgia", add_special_tokens=False)["input_ids"]
    assert torch.allclose(grown[1025], old_rows[pieces].mean(0))
    assert model.get_output_embeddings().weight.shape[0] == 1026
    with pytest.raises(ValueError, match="repeat"):
        domain_matched.extend_vocabulary(tok, [" a", " a"])


def test_bytes_per_token_counts_the_end_of_text_token_and_its_byte(story):
    _, tok = story
    docs = ["hello world", "a b"]
    n = sum(len(i) + 1 for i in tok(docs, add_special_tokens=False)["input_ids"])
    assert domain_matched.bytes_per_token(tok, docs) == pytest.approx((11 + 1 + 3 + 1) / n)


def test_the_shipped_record_reads_the_same_bytes_in_every_run_with_every_seed():
    from llmlab.records import domain_matched as record

    rec = record.load()
    runs = rec["runs"]
    assert {(r["arm"], r["seed"]) for r in runs} == {(a, s) for a in record.PLAN["arms"] for s in record.PLAN["seeds"]}
    read = np.array([r["bytes_read"] for r in runs])
    assert np.all(np.abs(read / rec["budget_bytes"] - 1) < 0.01)  # matched within a step's rounding
    for r in runs:
        assert len(r["nats"]["domain"]) == len(r["bytes"]["domain"]) == record.PLAN["eval_docs"]
        total = np.sum(r["nats"]["domain"]) / np.sum(r["bytes"]["domain"])
        assert total == pytest.approx(r["after"]["domain"], rel=1e-3)
    by_arm = {a: [r for r in runs if r["arm"] == a] for a in record.PLAN["arms"]}
    # the seeds differ: no two runs of an arm end on the same domain loss
    for arm, rows in by_arm.items():
        assert len({round(r["after"]["domain"], 6) for r in rows}) == len(rows), arm
