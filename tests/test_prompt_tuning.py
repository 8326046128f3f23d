"""llmlab.prompt_tuning (chapter 10): templates, soft prompts on a frozen model, answer-only loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel

from llmlab import prompt_tuning as pt
from llmlab import zoo
from llmlab.train import TrainConfig

TEMPLATE = "{virtual} {story} Question: how did {name} feel? Answer: {answer}"


@pytest.fixture(scope="module")
def tokenizer():
    return zoo.load("stories-1m", device="cpu")[1]


def tiny_model(tokenizer, seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=128, n_embd=32, n_layer=2, n_head=2,
                                      bos_token_id=0, eos_token_id=0)).eval()


def test_template_splits_around_the_virtual_slot_and_moves_the_space_to_the_answer():
    tpl = pt.PromptTemplate("Q{virtual}: {story} A: {answer}")
    assert tpl.parts({"story": "s", "answer": "yes"}) == ("Q", ": s A:", " yes")
    assert tpl.fields == ["story"] and tpl.has_virtual


@pytest.mark.parametrize("bad, message", [
    ("{story} Answer:", "answer slot"),
    ("{answer} {story}", "must end the template"),
    ("{virtual}{virtual} {answer}", "at most once"),
    ("{answer}{answer}", "exactly once"),
    ("{} {answer}", "slots must be names"),
])
def test_bad_templates_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        pt.PromptTemplate(bad)


def test_missing_field_is_named():
    with pytest.raises(ValueError, match=r"missing the fields \['name'\]"):
        pt.PromptTemplate(TEMPLATE).parts({"story": "x", "answer": "good"})


def test_zero_virtual_tokens_is_refused(tokenizer):
    with pytest.raises(ValueError, match="must be an int >= 1, got 0"):
        pt.SoftPrompt(tiny_model(tokenizer), 0)


def test_soft_prompt_from_real_tokens_gives_the_logits_of_those_tokens_as_text(tokenizer):
    model, tok = zoo.load("stories-1m", device="cpu")
    init = tok(" Once upon a time", add_special_tokens=False)["input_ids"]
    soft = pt.SoftPrompt(model, len(init), init_ids=init)
    tpl = pt.PromptTemplate("One day,{virtual}, {story} Answer: {answer}")
    example = {"story": "Lily felt happy.", "answer": "good"}
    batch = pt.build_inputs(soft, tpl, [pt.encode(tok, tpl, example)])
    with torch.no_grad():
        soft_logits = model(inputs_embeds=batch["inputs_embeds"]).logits
        text = "One day, Once upon a time, Lily felt happy. Answer: good"
        text_logits = model(input_ids=tok(text, return_tensors="pt")["input_ids"]).logits
    torch.testing.assert_close(soft_logits, text_logits)


def test_labels_cover_only_the_answer_tokens(tokenizer):
    model = tiny_model(tokenizer)
    soft = pt.SoftPrompt(model, 3)
    tpl = pt.PromptTemplate(TEMPLATE)
    examples = pt.make_task(4, seed=1)
    enc = [pt.encode(tokenizer, tpl, ex) for ex in examples]
    batch = pt.build_inputs(soft, tpl, enc)
    for row, e in zip(batch["labels"], enc):
        kept = row[row != -100].tolist()
        assert kept == e.answer
        n = len(e.before) + 3 + len(e.after) + len(e.answer)
        assert batch["attention_mask"][enc.index(e)].sum().item() == n


def test_answer_loss_equals_cross_entropy_of_the_answer_tokens_by_hand(tokenizer):
    model = tiny_model(tokenizer)
    tpl = pt.PromptTemplate("{story} Answer: {answer}")
    example = {"story": "Tom felt sad.", "answer": "bad"}
    e = pt.encode(tokenizer, tpl, example)
    ids = torch.tensor([e.before + e.after + e.answer])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0]
        n = len(e.answer)
        expected = F.cross_entropy(logits[-n - 1:-1], ids[0, -n:])
        got = pt.answer_loss(model, tpl, [e])
        logp = pt.answer_log_probs(model, tpl, [e])
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(logp[0], -expected * n)


def test_padding_does_not_change_an_example_score(tokenizer):
    model = tiny_model(tokenizer)
    tpl = pt.PromptTemplate("{story} Answer: {answer}")
    short = pt.encode(tokenizer, tpl, {"story": "Tom.", "answer": "bad"})
    long = pt.encode(tokenizer, tpl, {"story": "Tom took the red ball to the park today.", "answer": "good"})
    with torch.no_grad():
        alone = pt.answer_log_probs(model, tpl, [short])
        batched = pt.answer_log_probs(model, tpl, [short, long])
    torch.testing.assert_close(batched[0], alone[0], atol=1e-5, rtol=1e-5)


def test_soft_prompt_and_template_must_agree(tokenizer):
    model = tiny_model(tokenizer)
    e = pt.encode(tokenizer, pt.PromptTemplate("{story} A: {answer}"), {"story": "x", "answer": "good"})
    with pytest.raises(ValueError, match="needs a template with a \\{virtual\\} slot"):
        pt.build_inputs(pt.SoftPrompt(model, 2), pt.PromptTemplate("{story} A: {answer}"), [e])
    with pytest.raises(ValueError, match="wrap the model in SoftPrompt"):
        pt.build_inputs(tiny_model(tokenizer), pt.PromptTemplate("{virtual}{story} A: {answer}"), [e])


def test_prompt_tuning_trains_only_the_soft_prompt_and_leaves_the_model_bit_identical(tokenizer):
    model = tiny_model(tokenizer)
    frozen = {k: v.clone() for k, v in model.state_dict().items()}
    soft = pt.SoftPrompt(model, 4, seed=0)
    start = soft.prompt.detach().clone()
    tpl = pt.PromptTemplate(TEMPLATE)
    train, val = pt.make_task(64, seed=0), pt.make_task(16, seed=1)
    cfg = TrainConfig(steps=20, batch_size=8, lr=1e-2, warmup_steps=2, eval_every=10, eval_batches=2)
    val_enc = [pt.encode(tokenizer, tpl, ex) for ex in val]
    with torch.no_grad():
        loss_before = pt.answer_loss(soft, tpl, val_enc).item()
    pt.train_answers(soft, tokenizer, tpl, train, val, cfg, device="cpu")
    with torch.no_grad():
        loss_after = pt.answer_loss(soft, tpl, val_enc).item()
    assert pt.trainable_parameters(soft) == soft.trainable_parameters() == 4 * 32
    assert not torch.equal(soft.prompt.detach(), start)
    for k, v in model.state_dict().items():
        assert torch.equal(v, frozen[k]), k
    assert loss_after < loss_before


def test_full_fine_tuning_of_the_bundled_model_learns_the_task():
    model, tokenizer = zoo.load("stories-1m", device="cpu")
    tpl = pt.PromptTemplate("{story} Question: how did {name} feel? Answer: {answer}")
    train, test = pt.make_task(400, seed=0), pt.make_task(100, seed=1)
    assert pt.accuracy(model, tokenizer, tpl, test, ["good", "bad"]) < 0.7  # zero-shot: no better than a guess
    cfg = TrainConfig(steps=60, batch_size=16, lr=1e-3, warmup_steps=6, eval_every=30, eval_batches=2)
    pt.train_answers(model, tokenizer, tpl, train, test, cfg, device="cpu")
    assert pt.trainable_parameters(model) == sum(p.numel() for p in model.parameters())
    assert pt.accuracy(model, tokenizer, tpl, test, ["good", "bad"]) > 0.9


def test_few_shot_template_writes_solved_demonstrations_first():
    tpl = pt.PromptTemplate("{story} A: {answer}")
    shots = pt.few_shot_template(tpl, [{"story": "s1", "answer": "good"}, {"story": "s2", "answer": "bad"}])
    assert shots.parts({"story": "s3", "answer": "good"}) == ("", "s1 A: good\ns2 A: bad\ns3 A:", " good")
    with pytest.raises(ValueError, match="at least one demonstration"):
        pt.few_shot_template(tpl, [])


def test_make_task_is_seeded_and_balanced():
    task = pt.make_task(200, seed=3)
    assert task == pt.make_task(200, seed=3)
    share = sum(ex["answer"] == "good" for ex in task) / len(task)
    assert 0.4 < share < 0.6
    with pytest.raises(ValueError, match="positive int"):
        pt.make_task(0)
