"""llmlab.domain (chapter 9): fertility, the domain corpus, mixing and continued pre-training."""

from __future__ import annotations

import gzip

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from llmlab import domain, zoo
from llmlab.train import TrainConfig


@pytest.fixture(scope="module")
def stories_tokenizer():
    return zoo.load("stories-1m", device="cpu")[1]


def test_fertility_counts_tokens_per_whitespace_word(stories_tokenizer):
    text = "the cat sat on the mat and the dog ran"
    n_tokens = len(stories_tokenizer(text)["input_ids"])
    assert domain.fertility(stories_tokenizer, [text]) == pytest.approx(n_tokens / 10)
    # a word the tokenizer has never seen spells out in pieces: more than one token per word
    assert domain.fertility(stories_tokenizer, "myalgia indemnification") > 2


def test_word_pieces_join_back_to_the_word(stories_tokenizer):
    for word, pieces in domain.word_pieces(stories_tokenizer, "Sig: 1 tab po qid pc & hs"):
        assert stories_tokenizer.convert_tokens_to_string(pieces) == " " + word


def test_word_pieces_under_wordpiece_drop_special_tokens():
    _, wordpiece = zoo.load("minilm", device="cpu")
    pieces = dict(domain.word_pieces(wordpiece, "myalgia biopsy"))
    assert pieces["biopsy"] == ["bio", "##psy"]
    assert "[CLS]" not in sum(pieces.values(), [])


def test_domain_tokenizer_is_more_fertile_on_general_text_and_less_on_its_domain(stories_tokenizer):
    domain_tok = zoo.train_tokenizer(domain.load_domain_corpus("train"), 1024)
    medical = domain.load_domain_corpus("validation", "medical")
    assert domain.fertility(domain_tok, medical) < domain.fertility(stories_tokenizer, medical)
    stories = ["Lily had a red ball. She loved her ball very much.", "Tom and his dog went to the park to play."]
    assert domain.fertility(domain_tok, stories) > domain.fertility(stories_tokenizer, stories)


def test_shipped_domain_corpus_is_the_generator_output(tmp_path):
    path = domain.write_domain_corpus(tmp_path / "domain.txt.gz")
    assert path.read_bytes() == domain.DOMAIN_CORPUS_FILE.read_bytes()
    with gzip.open(path, "rt") as f:
        assert f.read().count("[medical] ") == domain.DOMAIN_CORPUS_DOCS


def test_load_domain_corpus_splits_and_filters():
    train, val = domain.load_domain_corpus("train"), domain.load_domain_corpus("validation")
    assert len(train) + len(val) == 3 * domain.DOMAIN_CORPUS_DOCS
    assert len(val) == int(len(train + val) * domain.VALIDATION_FRACTION)
    assert train + val == domain.load_domain_corpus("all")
    legal = domain.load_domain_corpus("all", "legal")
    assert len(legal) == domain.DOMAIN_CORPUS_DOCS
    assert not any(d.startswith("[") for d in legal)
    with pytest.raises(ValueError, match="split must be one of"):
        domain.load_domain_corpus("test")
    with pytest.raises(ValueError, match="domain must be one of"):
        domain.load_domain_corpus("all", "poetry")


def test_generator_is_seeded_and_rejects_unknown_domains():
    assert domain.generate_domain_corpus(5, seed=1) == domain.generate_domain_corpus(5, seed=1)
    assert domain.generate_domain_corpus(5, seed=1) != domain.generate_domain_corpus(5, seed=2)
    with pytest.raises(ValueError, match="domain must be one of"):
        domain.generate_domain_document(__import__("random").Random(0), "poetry")


def test_mix_documents_hits_the_requested_share():
    docs = domain.mix_documents(["D"] * 3, ["G"] * 3, 0.51, 1000, seed=0)
    assert len(docs) == 1000 and docs.count("D") == 510
    assert set(domain.mix_documents(["D"], [], 1.0, 10)) == {"D"}


def test_empty_domain_corpus_is_refused_with_a_clear_error(stories_tokenizer):
    with pytest.raises(ValueError, match="domain_docs is empty"):
        domain.mix_documents([], ["G"], 0.5, 10)
    with pytest.raises(ValueError, match="only empty or whitespace"):
        domain.mix_documents(["", "  "], ["G"], 0.5, 10)
    with pytest.raises(ValueError, match="documents is empty"):
        domain.encode_documents(stories_tokenizer, [])
    with pytest.raises(ValueError, match="texts is empty"):
        domain.fertility(stories_tokenizer, [])
    with pytest.raises(ValueError, match="domain_fraction must be in"):
        domain.mix_documents(["D"], ["G"], 1.5, 10)


def test_token_share_counts_tokens_not_documents(stories_tokenizer):
    share = domain.token_share(stories_tokenizer, ["a a a a a a"], ["a a"])
    assert share == pytest.approx(6 / 8)


def test_continue_pretraining_lowers_domain_loss_and_reports_before_and_after(stories_tokenizer):
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(stories_tokenizer), n_positions=64, n_embd=32, n_layer=1,
                                       n_head=2, bos_token_id=0, eos_token_id=0))
    dom = domain.load_domain_corpus("train", "financial")[:200]
    gen = ["Tom had a red ball. He played with it in the park."] * 50
    held = {"domain": domain.encode_documents(stories_tokenizer, domain.load_domain_corpus("validation", "financial")),
            "general": domain.encode_documents(stories_tokenizer, gen)}
    cfg = TrainConfig(steps=30, batch_size=8, seq_len=32, lr=3e-3, warmup_steps=3, eval_every=10, eval_batches=2)
    result = domain.continue_pretraining(model, stories_tokenizer, dom, gen, held, cfg, domain_fraction=1.0,
                                         n_docs=200, device="cpu")
    assert result.after["domain"] < result.before["domain"] - 0.5
    assert [r["step"] for r in result.curve] == [0, 10, 20, 30]
    assert result.curve[0]["domain"] == result.before["domain"]
    row = result.row()
    assert row["domain_after"] == round(result.after["domain"], 4) and row["steps"] == 30
    assert not model.training


def test_continue_pretraining_needs_a_held_out_stream(stories_tokenizer):
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(stories_tokenizer), n_positions=64, n_embd=32, n_layer=1,
                                       n_head=2))
    with pytest.raises(ValueError, match="held_out must name"):
        domain.continue_pretraining(model, stories_tokenizer, ["x y"], ["a b"], {}, TrainConfig(steps=1, warmup_steps=0))
