"""llmlab.domain (chapter 9): fertility, the domain corpus, mixing and continued pre-training."""

from __future__ import annotations

import gzip

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from llmlab import domain, tokenization, zoo
from llmlab.records import domain_adaptation
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
    domain_tok = tokenization.train_tokenizer(domain.load_domain_corpus("train"), 1024)
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
    held = {"domain": domain.load_domain_corpus("validation", "financial")[:20], "general": gen[:5]}
    cfg = TrainConfig(steps=30, batch_size=8, seq_len=32, lr=3e-3, warmup_steps=3, eval_every=10, eval_batches=2)
    result = domain.continue_pretraining(model, stories_tokenizer, dom, gen, held, cfg, domain_share=1.0,
                                         device="cpu")
    assert result.after["domain"] < result.before["domain"] - 0.2  # nats per byte
    assert [r["step"] for r in result.curve] == [0, 10, 20, 30]
    assert result.curve[0]["domain"] == result.before["domain"]
    assert result.token_share == 1.0
    row = result.row()
    assert row["domain_after"] == round(result.after["domain"], 4) and row["steps"] == 30
    assert not model.training


def test_continue_pretraining_needs_held_out_documents(stories_tokenizer):
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(stories_tokenizer), n_positions=64, n_embd=32, n_layer=1,
                                       n_head=2))
    with pytest.raises(ValueError, match="held_out must name"):
        domain.continue_pretraining(model, stories_tokenizer, ["x y"], ["a b"], {}, TrainConfig(steps=1, warmup_steps=0))


def test_nats_per_byte_is_the_summed_loss_over_the_utf8_bytes(stories_tokenizer):
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(stories_tokenizer), n_positions=64, n_embd=32, n_layer=1,
                                       n_head=2, bos_token_id=0, eos_token_id=0)).eval()
    doc = "Tom saw a big dog. The dog ran to the park."
    ids = [0] + stories_tokenizer(doc)["input_ids"] + [0]
    with torch.no_grad():  # transformers' own loss: the mean over the len(ids) - 1 predicted tokens
        mean = model(torch.tensor([ids]), labels=torch.tensor([ids])).loss.item()
    expected = mean * (len(ids) - 1) / (len(doc.encode()) + 1)
    assert domain.nats_per_byte(model, stories_tokenizer, [doc], seq_len=64) == pytest.approx(expected, rel=1e-5)
    # windows cut the stream but still predict every token once: the sum changes only by lost context
    short = domain.nats_per_byte(model, stories_tokenizer, [doc], seq_len=4)
    assert short == pytest.approx(expected, rel=0.2) and short != expected
    with pytest.raises(ValueError, match="context window"):
        domain.nats_per_byte(model, stories_tokenizer, [doc], seq_len=65)


def test_hold_out_phrases_removes_every_sentence_with_an_example():
    docs = ["The defendant lacked the requisite Mens Rea. The court agreed.", "Sig: 1 tab po qid pc & hs for 3 days.",
            "Revenue rose. Parents pay rent."]
    kept, held = domain.hold_out_phrases(docs)
    assert kept == ["The court agreed.", "Revenue rose. Parents pay rent."]
    assert held == ["The defendant lacked the requisite Mens Rea.", "Sig: 1 tab po qid pc & hs for 3 days."]
    assert set(domain.phrase_counts(kept).values()) == {0}
    assert domain.phrase_counts(docs, ["mens rea", "rent"]) == {"mens rea": 1, "rent": 1}  # not "parent"


def test_domain_tokenizer_never_saw_the_examples():
    kept, _ = domain.hold_out_phrases(domain.load_domain_corpus("train"))
    counts = domain.phrase_counts(domain.load_domain_corpus("train"))
    assert counts["mens rea"] > 100 and counts["Sig: 1 tab po qid pc & hs"] > 100
    assert set(domain.phrase_counts(kept).values()) == {0}
    assert len(kept) > 0.9 * len(domain.load_domain_corpus("train"))


def test_mix_by_tokens_counts_tokens_not_documents(stories_tokenizer):
    long_docs, short_docs = ["the dog ran " * 30], ["a cat"]
    dom, gen = domain.mix_by_tokens(stories_tokenizer, long_docs, short_docs, 0.5, 2000, seed=0)

    def tokens(docs):  # what the model trains on: each document's tokens and its end-of-text
        return sum(len(stories_tokenizer(d)["input_ids"]) + 1 for d in docs)

    assert tokens(dom) / (tokens(dom) + tokens(gen)) == pytest.approx(0.5, abs=0.05)
    assert tokens(dom) + tokens(gen) >= 2000
    assert len(gen) > 5 * len(dom)  # many short documents balance a few long ones
    dom, gen = domain.mix_by_tokens(stories_tokenizer, long_docs, [], 1.0, 500)
    assert gen == [] and dom
    with pytest.raises(ValueError, match="general_docs is empty"):
        domain.mix_by_tokens(stories_tokenizer, long_docs, [], 0.5, 500)


def test_fresh_model_has_the_bundled_architecture_and_the_new_vocabulary(stories_tokenizer):
    model, _ = zoo.load("stories-1m", device="cpu")
    tok = tokenization.train_tokenizer(domain.load_domain_corpus("train")[:300], 300)
    fresh = domain.fresh_model(tok)
    assert fresh.config.vocab_size == 300 and fresh.config.n_layer == model.config.n_layer
    again = domain.fresh_model(tok)
    assert torch.equal(fresh.lm_head.weight, again.lm_head.weight)
    same_size = domain.fresh_model(stories_tokenizer)
    assert sum(p.numel() for p in same_size.parameters()) == sum(p.numel() for p in model.parameters())
    assert not torch.equal(same_size.lm_head.weight, model.lm_head.weight)


def test_bloomberg_share_is_the_papers_token_split():
    assert domain.bloomberg_domain_share() == pytest.approx(363 / (363 + 345))


def test_record_is_stamped_and_its_starting_losses_reproduce():
    summary, curves = domain_adaptation.load()
    for frame in (summary, curves):
        assert frame["code_version"].notna().all() and frame["machine"].str.contains("torch").all()
    assert list(summary.index) == [name for name, _, _ in domain.record_runs()]
    assert len(set(summary["tokens_seen"])) == 1 and len(set(summary["n_params"])) == 1  # matched compute
    model, tokenizer = zoo.load("stories-1m", device="cpu")
    texts = domain.held_out_texts()
    live = domain.held_out_losses(model, tokenizer, {"domain": texts["domain"][:30], "english": texts["english"]})
    assert live["english"] == pytest.approx(summary.iloc[0]["english_before"], abs=1e-3)
    mixed = summary.loc[[n for n in summary.index if n.startswith("continued, 5")][0]]
    assert mixed["token_share"] == pytest.approx(domain.bloomberg_domain_share(), abs=0.02)


def test_load_refuses_a_record_of_other_runs(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m llmlab.records.domain_adaptation"):
        domain_adaptation.load(tmp_path)
    summary, curves = domain_adaptation.load()
    summary.iloc[:2].to_csv(tmp_path / domain_adaptation.NAMES[0])
    curves.to_csv(tmp_path / domain_adaptation.NAMES[1], index=False)
    with pytest.raises(ValueError, match="other runs"):
        domain_adaptation.load(tmp_path)
