"""llmlab.prompt_template and llmlab.prompt_tuning (chapter 10): templates, soft prompts on a frozen model,
answer-only loss; the plan of llmlab.prompt_tuning_real's grid."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from llmlab import prompt_tuning as pt
from llmlab import zoo
from llmlab.prompt_template import PromptTemplate, encode, few_shot_template
from llmlab.prompt_tuning_real import RECORD, record_plan
from llmlab.train import TrainConfig

TEMPLATE = "{virtual} {story} Question: how did {name} feel? Answer: {answer}"


@pytest.fixture(scope="module")
def tokenizer():
    return zoo.load("stories-1m", device="cpu")[1]


@pytest.fixture(scope="module")
def tiny_model(make_gpt2):
    """``tiny_model(tokenizer, seed=0)``: a fresh two-layer GPT-2 over the tokenizer's vocabulary."""
    return lambda tokenizer, seed=0: make_gpt2(seed, vocab_size=len(tokenizer), n_positions=128,
                                               initializer_range=0.02)


def test_template_splits_around_the_virtual_slot_and_moves_the_space_to_the_answer():
    tpl = PromptTemplate("Q{virtual}: {story} A: {answer}")
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
        PromptTemplate(bad)


def test_missing_field_is_named():
    with pytest.raises(ValueError, match=r"missing the fields \['name'\]"):
        PromptTemplate(TEMPLATE).parts({"story": "x", "answer": "good"})


def test_zero_virtual_tokens_is_refused(tokenizer, tiny_model):
    with pytest.raises(ValueError, match="must be an int >= 1, got 0"):
        pt.SoftPrompt(tiny_model(tokenizer), 0)


def test_soft_prompt_from_real_tokens_gives_the_logits_of_those_tokens_as_text(tokenizer):
    model, tok = zoo.load("stories-1m", device="cpu")
    init = tok(" Once upon a time", add_special_tokens=False)["input_ids"]
    soft = pt.SoftPrompt(model, len(init), init_ids=init)
    tpl = PromptTemplate("One day,{virtual}, {story} Answer: {answer}")
    example = {"story": "Lily felt happy.", "answer": "good"}
    soft_logits, text_logits = _soft_and_text_logits(model, tok, soft, tpl, example,
                                                     "One day, Once upon a time, Lily felt happy. Answer: good")
    torch.testing.assert_close(soft_logits, text_logits)


def _soft_and_text_logits(model, tok, soft, tpl, example, text):
    """Logits of ``example`` through the template with the soft prompt, and of the plain ``text``."""
    batch = pt.build_inputs(soft, tpl, [encode(tok, tpl, example)])
    with torch.no_grad():
        return (model(inputs_embeds=batch["inputs_embeds"]).logits,
                model(input_ids=tok(text, return_tensors="pt")["input_ids"]).logits)


def test_labels_cover_only_the_answer_tokens(tokenizer, tiny_model):
    model = tiny_model(tokenizer)
    soft = pt.SoftPrompt(model, 3)
    tpl = PromptTemplate(TEMPLATE)
    examples = pt.make_task(4, seed=1)
    enc = [encode(tokenizer, tpl, ex) for ex in examples]
    batch = pt.build_inputs(soft, tpl, enc)
    for row, e in zip(batch["labels"], enc):
        kept = row[row != -100].tolist()
        assert kept == e.answer
        n = len(e.before) + 3 + len(e.after) + len(e.answer)
        assert batch["attention_mask"][enc.index(e)].sum().item() == n


def test_answer_loss_equals_cross_entropy_of_the_answer_tokens_by_hand(tokenizer, tiny_model):
    model = tiny_model(tokenizer)
    tpl = PromptTemplate("{story} Answer: {answer}")
    example = {"story": "Tom felt sad.", "answer": "bad"}
    e = encode(tokenizer, tpl, example)
    ids = torch.tensor([e.before + e.after + e.answer])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0]
        n = len(e.answer)
        expected = F.cross_entropy(logits[-n - 1:-1], ids[0, -n:])
        got = pt.answer_loss(model, tpl, [e])
        logp = pt.answer_log_probs(model, tpl, [e])
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(logp[0], -expected * n)


def test_padding_does_not_change_an_example_score(tokenizer, tiny_model):
    model = tiny_model(tokenizer)
    tpl = PromptTemplate("{story} Answer: {answer}")
    short = encode(tokenizer, tpl, {"story": "Tom.", "answer": "bad"})
    long = encode(tokenizer, tpl, {"story": "Tom took the red ball to the park today.", "answer": "good"})
    with torch.no_grad():
        alone = pt.answer_log_probs(model, tpl, [short])
        batched = pt.answer_log_probs(model, tpl, [short, long])
    torch.testing.assert_close(batched[0], alone[0], atol=1e-5, rtol=1e-5)


def test_soft_prompt_and_template_must_agree(tokenizer, tiny_model):
    model = tiny_model(tokenizer)
    e = encode(tokenizer, PromptTemplate("{story} A: {answer}"), {"story": "x", "answer": "good"})
    with pytest.raises(ValueError, match="needs a template with a \\{virtual\\} slot"):
        pt.build_inputs(pt.SoftPrompt(model, 2), PromptTemplate("{story} A: {answer}"), [e])
    with pytest.raises(ValueError, match="wrap the model in SoftPrompt"):
        pt.build_inputs(tiny_model(tokenizer), PromptTemplate("{virtual}{story} A: {answer}"), [e])


def test_prompt_tuning_trains_only_the_soft_prompt_and_leaves_the_model_bit_identical(tokenizer, tiny_model):
    model = tiny_model(tokenizer)
    frozen = {k: v.clone() for k, v in model.state_dict().items()}
    soft = pt.SoftPrompt(model, 4, seed=0)
    start = soft.prompt.detach().clone()
    tpl = PromptTemplate(TEMPLATE)
    train, val = pt.make_task(64, seed=0), pt.make_task(16, seed=1)
    cfg = TrainConfig(steps=20, batch_size=8, lr=1e-2, warmup_steps=2, eval_every=10, eval_batches=2)
    val_enc = [encode(tokenizer, tpl, ex) for ex in val]
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
    tpl = PromptTemplate("{story} Question: how did {name} feel? Answer: {answer}")
    train, test = pt.make_task(400, seed=0), pt.make_task(100, seed=1)
    assert pt.accuracy(model, tokenizer, tpl, test, ["good", "bad"]) < 0.7  # zero-shot: no better than a guess
    cfg = TrainConfig(steps=60, batch_size=16, lr=1e-3, warmup_steps=6, eval_every=30, eval_batches=2)
    pt.train_answers(model, tokenizer, tpl, train, test, cfg, device="cpu")
    assert pt.trainable_parameters(model) == sum(p.numel() for p in model.parameters())
    assert pt.accuracy(model, tokenizer, tpl, test, ["good", "bad"]) > 0.9


def test_few_shot_template_writes_solved_demonstrations_first():
    tpl = PromptTemplate("{story} A: {answer}")
    shots = few_shot_template(tpl, [{"story": "s1", "answer": "good"}, {"story": "s2", "answer": "bad"}])
    assert shots.parts({"story": "s3", "answer": "good"}) == ("", "s1 A: good\ns2 A: bad\ns3 A:", " good")
    with pytest.raises(ValueError, match="at least one demonstration"):
        few_shot_template(tpl, [])


def test_make_task_is_seeded_and_balanced():
    task = pt.make_task(200, seed=3)
    assert task == pt.make_task(200, seed=3)
    share = sum(ex["answer"] == "good" for ex in task) / len(task)
    assert 0.4 < share < 0.6
    with pytest.raises(ValueError, match="positive int"):
        pt.make_task(0)


# --------------------------------------------------------------------------- several slots, NeMo's fields, p-tuning
NEMO_TASK = {  # one entry of NeMo's task_templates, as the seed talk shows it
    "taskname": "squad", "prompt_template": "<|VIRTUAL_PROMPT_0|>{context}<|VIRTUAL_PROMPT_1|>{question}"
                                            "<|VIRTUAL_PROMPT_2|>{answer}",
    "total_virtual_tokens": 100, "virtual_token_splits": [80, 15, 5], "truncate_field": "context",
    "answer_only_loss": True, "answer_field": "answer",
}


def test_nemo_task_template_becomes_numbered_slots_with_its_splits():
    tpl = PromptTemplate.from_nemo(NEMO_TASK)
    assert tpl.template == "{virtual_0}{context}{virtual_1}{question}{virtual_2}{answer}"
    assert tpl.n_slots == 3 and tpl.splits(100) == [80, 15, 5] and tpl.fields == ["context", "question"]
    assert tpl.truncate_field == "context" and tpl.answer_only_loss
    assert tpl.pieces({"context": "c", "question": "q", "answer": "a"}) == (["", "c", "q", ""], "a")
    with pytest.raises(ValueError, match="add up to 100, not total_virtual_tokens = 90"):
        PromptTemplate.from_nemo({**NEMO_TASK, "total_virtual_tokens": 90})


@pytest.mark.parametrize("bad, splits, message", [
    ("{virtual_0}{x}{virtual_1}{answer}", None, "needs virtual_token_splits"),
    ("{virtual_0}{x}{virtual_1}{answer}", [3], "one number per virtual slot"),
    ("{virtual_1}{x}{virtual_0}{answer}", [1, 1], "in order"),
    ("{virtual}{x}{virtual_0}{answer}", [1], "not both"),
    ("{x}{answer}", [2], "has none"),
    ("{virtual_0}{x}{virtual_1}{answer}", [2, 0], "virtual_token_splits"),
])
def test_bad_slot_layouts_are_refused(bad, splits, message):
    with pytest.raises(ValueError, match=message):
        PromptTemplate(bad, splits)


def test_splits_must_match_the_soft_prompt(tokenizer, tiny_model):
    tpl = PromptTemplate("{virtual_0} {story}{virtual_1} Answer: {answer}", [2, 3])
    e = encode(tokenizer, tpl, {"story": "Tom ran.", "answer": "good"})
    with pytest.raises(ValueError, match="splits 5 virtual tokens among its slots, but the soft prompt has 4"):
        pt.build_inputs(pt.SoftPrompt(tiny_model(tokenizer), 4), tpl, [e])


def test_virtual_tokens_split_among_slots_give_the_logits_of_the_text_they_start_from(tokenizer):
    model, tok = zoo.load("stories-1m", device="cpu")
    first, second = (tok(t, add_special_tokens=False)["input_ids"] for t in (" Once upon a time", " The end"))
    soft = pt.SoftPrompt(model, len(first) + len(second), init_ids=first + second)
    tpl = PromptTemplate("One day,{virtual_0}, {story}{virtual_1}. Answer: {answer}", [len(first), len(second)])
    example = {"story": "Lily felt happy", "answer": "good"}
    got, want = _soft_and_text_logits(model, tok, soft, tpl, example,
                                      "One day, Once upon a time, Lily felt happy The end. Answer: good")
    torch.testing.assert_close(got, want)


def test_truncate_field_is_cut_from_its_end_to_fit_max_length(tokenizer):
    tpl = PromptTemplate("{virtual}{story} Answer: {answer}", truncate_field="story")
    story = "Tom took the red ball to the park. Tom felt glad. Then Tom went home and slept."
    full = encode(tokenizer, tpl, {"story": story, "answer": "good"})
    cut = encode(tokenizer, tpl, {"story": story, "answer": "good"}, max_length=12, n_virtual=3)
    assert full.n_text + 3 > 12 >= cut.n_text + 3
    assert cut.answer == full.answer and cut.pieces[-1][-2:] == full.pieces[-1][-2:]  # " Answer:" stays
    kept = tokenizer.decode(cut.pieces[-1])
    assert kept.endswith(" Answer:") and story.startswith(kept[: -len(" Answer:")]) and len(kept) < len(story)
    assert encode(tokenizer, tpl, {"story": story, "answer": "good"}, max_length=100, n_virtual=3) == full
    with pytest.raises(ValueError, match="give the template a truncate_field"):
        encode(tokenizer, PromptTemplate("{virtual}{story} Answer: {answer}"),
                  {"story": story, "answer": "good"}, max_length=12, n_virtual=3)
    with pytest.raises(ValueError, match="even with its field 'story' removed"):
        encode(tokenizer, tpl, {"story": story, "answer": "good"}, max_length=4, n_virtual=3)


def test_answer_only_loss_off_labels_every_real_token_but_no_virtual_one(tokenizer, tiny_model):
    tpl = PromptTemplate("Q{virtual_0} {story}{virtual_1} A: {answer}", [2, 1], answer_only_loss=False)
    e = encode(tokenizer, tpl, {"story": "Tom ran.", "answer": "good"})
    batch = pt.build_inputs(pt.SoftPrompt(tiny_model(tokenizer), 3), tpl, [e])
    want = e.pieces[0] + [-100] * 2 + e.pieces[1] + [-100] + e.pieces[2] + e.answer
    assert batch["labels"][0].tolist() == want
    on = PromptTemplate(tpl.template, [2, 1])
    assert pt.build_inputs(pt.SoftPrompt(tiny_model(tokenizer), 3), on, [e])["labels"][0].tolist() == \
        [-100] * (len(want) - len(e.answer)) + e.answer


@pytest.mark.parametrize("kind", ["mlp", "lstm"])
def test_p_tuning_trains_the_encoder_then_collapses_to_a_table_with_the_same_scores(tokenizer, kind, tiny_model):
    model = tiny_model(tokenizer)
    frozen = {k: v.clone() for k, v in model.state_dict().items()}
    soft = pt.SoftPrompt(model, 4, encoder=kind, seed=0)
    assert soft.virtual.style == f"p-tuning ({kind})" and soft.virtual.table is None
    tpl = PromptTemplate(TEMPLATE)
    train, val = pt.make_task(64, seed=0), pt.make_task(16, seed=1)
    before = soft.prompt.detach().clone()
    cfg = TrainConfig(steps=10, batch_size=8, lr=1e-2, warmup_steps=1, eval_every=10, eval_batches=1,
                      weight_decay=0.0)
    pt.train_answers(soft, tokenizer, tpl, train, val, cfg, device="cpu")
    assert not torch.allclose(soft.prompt.detach(), before)
    for k, v in model.state_dict().items():
        if not k.startswith("virtual."):
            assert torch.equal(v, frozen[k]), k
    scores = pt.candidate_scores(soft, tokenizer, tpl, val, ["good", "bad"])
    n_encoder = soft.trainable_parameters()
    soft.collapse()
    assert soft.virtual.encoder is None and soft.trainable_parameters() == 4 * 32 < n_encoder
    torch.testing.assert_close(pt.candidate_scores(soft, tokenizer, tpl, val, ["good", "bad"]), scores)


def test_encoder_seed_decides_its_weights_and_init_ids_are_refused_with_an_encoder(tokenizer, tiny_model):
    model = tiny_model(tokenizer)
    a, b, c = (pt.SoftPrompt(model, 3, encoder="mlp", seed=s).prompt for s in (0, 0, 1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="init_ids starts a prompt-tuning table"):
        pt.SoftPrompt(model, 2, init_ids=[1, 2], encoder="mlp")
    with pytest.raises(ValueError, match="kind"):
        pt.PromptEncoder(2, 8, "gru")
    with pytest.raises(ValueError, match="num_layers >= 2"):
        pt.PromptEncoder(2, 8, "mlp", num_layers=1)


def test_single_token_scoring_equals_scoring_each_candidate_by_its_own_row(tokenizer, tiny_model):
    soft = pt.SoftPrompt(tiny_model(tokenizer), 2, seed=1)
    tpl = PromptTemplate(TEMPLATE)
    examples = pt.make_task(6, seed=4)
    assert all(len(tokenizer(" " + c)["input_ids"]) == 1 for c in ("good", "sad"))
    fast = pt.candidate_scores(soft, tokenizer, tpl, examples, ["good", "sad"])
    with torch.no_grad():
        slow = torch.stack([pt.answer_log_probs(soft, tpl, [encode(tokenizer, tpl, ex, c) for c in ("good", "sad")])
                            for ex in examples])
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)


def test_several_tasks_tune_together_each_with_its_own_prompt_on_one_frozen_model(tokenizer, tiny_model):
    model = tiny_model(tokenizer)
    frozen = {k: v.clone() for k, v in model.state_dict().items()}
    multi = pt.MultiTaskPrompts(model, {"feeling": 3, "name": 2})
    assert multi.trainable_parameters() == pt.trainable_parameters(multi) == (3 + 2) * 32
    feeling = PromptTemplate(TEMPLATE)
    name = PromptTemplate("{virtual} {story} Question: who is it about? Answer: {answer}")
    data = pt.make_task(48, seed=0)
    names = [{**ex, "answer": ex["name"]} for ex in data]
    start = {k: v().detach().clone() for k, v in multi.tasks.items()}
    cfg = TrainConfig(steps=6, batch_size=8, lr=1e-2, warmup_steps=1, eval_every=6, eval_batches=1, weight_decay=0.0)
    pt.train_tasks(multi, tokenizer, {"feeling": (feeling, data, data[:8]), "name": (name, names, names[:8])}, cfg,
                   device="cpu")
    for k, v in multi.tasks.items():
        assert not torch.equal(v().detach(), start[k]), k
    for k, v in model.state_dict().items():
        assert torch.equal(v, frozen[k]), k
    # a mixed batch gives each row what its own task's soft prompt gives it alone
    mixed = [encode(tokenizer, feeling, data[0], task="feeling"), encode(tokenizer, name, names[1], task="name")]
    with torch.no_grad():
        both = pt.answer_log_probs(multi, {"feeling": feeling, "name": name}, mixed)
        alone = [pt.answer_log_probs(multi.soft_prompt(t), tpl, [e]) for t, tpl, e in
                 (("feeling", feeling, mixed[0]), ("name", name, mixed[1]))]
    torch.testing.assert_close(both, torch.cat(alone), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="unknown task"):
        multi.soft_prompt("sentiment")


def test_unfreeze_last_layers_trains_the_last_block_and_final_norm_only(tokenizer, tiny_model):
    model = tiny_model(tokenizer)
    n = pt.unfreeze_last_layers(model, 1)
    want = sum(p.numel() for p in model.transformer.h[-1].parameters()) + sum(
        p.numel() for p in model.transformer.ln_f.parameters())
    assert n == want == pt.trainable_parameters(model)
    assert not any(p.requires_grad for p in model.transformer.h[0].parameters())
    with pytest.raises(ValueError, match="has 2 blocks"):
        pt.unfreeze_last_layers(model, 3)


def test_record_plan_has_five_seeds_of_every_trained_setting_and_equal_virtual_tokens():
    plan = record_plan()
    counts: dict = {}
    for run in plan:
        counts[(run["method"], run["n_virtual"])] = counts.get((run["method"], run["n_virtual"]), 0) + 1
    assert counts.pop(("zero-shot", 0)) == 1
    assert set(counts.values()) == {len(RECORD["seeds"])} and len(RECORD["seeds"]) >= 5
    assert len(RECORD["n_virtual"]) >= 3 and len(RECORD["p_tuning_n_virtual"]) >= 2
    for n in RECORD["n_virtual"]:
        assert ("prompt-tuning", n) in counts
    for n in RECORD["p_tuning_n_virtual"]:
        assert ("p-tuning (mlp)", n) in counts and n in RECORD["n_virtual"]
