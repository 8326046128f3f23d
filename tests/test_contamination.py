"""Contamination checks for chapter 11 (llmlab.contamination) and its record.

The n-gram check and the leak experiment run on invented items, a tokenizer trained here
and tiny seeded models; the batched letter scorer and the text-format margins are checked
against llmlab.evaluation.score_multiple_choice, and the record's summary against its own rows.
"""

from __future__ import annotations

import pytest
import torch

from llmlab import contamination, stats
from llmlab.contamination import (
    choice_logprobs,
    item_text,
    leak_experiment,
    letter_logprobs,
    margin,
    overlap_report,
    summary,
)
from llmlab.evaluation import mc_prompt, score_multiple_choice
from llmlab.tokenization import train_tokenizer

pytestmark = pytest.mark.usefixtures("one_thread")

QUESTIONS = ["Which planet in our solar system is known as the red planet?",
             "How many legs does a spider have when it is fully grown?",
             "What is the name of the largest ocean on the surface of the Earth?",
             "Which gas do plants take in from the air to make their food?",
             "What do you call a word that means the opposite of another word?",
             "Which metal is liquid at room temperature and used in old thermometers?"]
CHOICES = [["Mars", "Venus", "Saturn", "Mercury"], ["six", "eight", "ten", "four"],
           ["Atlantic", "Indian", "Pacific", "Arctic"], ["oxygen", "carbon dioxide", "helium", "neon"],
           ["synonym", "antonym", "homonym", "acronym"], ["iron", "mercury", "copper", "tin"]]
ITEMS = [{"id": f"x-{k}", "subject": "science" if k % 2 else "language", "difficulty": "easy", "question": q,
          "choices": c, "answer": k % 4} for k, (q, c) in enumerate(zip(QUESTIONS, CHOICES))]
BACKGROUND = ["The baker shapes the dough and leaves it to rise in a warm corner of the kitchen.",
              "On Tuesday the committee met to talk about the new bus timetable for the town.",
              "A long walk along the river on a sunny morning is a fine way to start the day."]
TEXTS = QUESTIONS + BACKGROUND + [item_text(i) for i in ITEMS] + ["Answer: A B C D"] * 5


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(TEXTS * 3, 400)


@pytest.fixture(scope="module")
def model(tok, make_llama):
    return make_llama(vocab_size=len(tok), max_position_embeddings=256)


def test_item_text_is_the_letter_prompt_then_the_right_letter():
    item = ITEMS[1]
    context, letters, delimiter = mc_prompt(item, "letter")
    assert item_text(item) == context + " " + letters[item["answer"]]
    assert item_text(item).endswith("Answer: B")
    assert item_text(item, with_answer=False) == context
    assert item_text(item, "text") == f"Question: {item['question']}\nAnswer: eight"


def test_overlap_report_flags_a_planted_question_and_not_a_reworded_one(tok):
    planted = BACKGROUND[0] + " " + item_text(ITEMS[0]) + " " + BACKGROUND[1]
    reworded = "Our neighbour in space that looks rust coloured is which planet of the sun?"
    rows = overlap_report(ITEMS[:2], [planted], tok, n=4)
    assert rows[0]["flagged"] and rows[0]["share"] == 1.0 and rows[0]["found"] == rows[0]["total"] > 0
    assert not rows[1]["flagged"] and rows[1]["share"] == 0.0
    reworded_item = {**ITEMS[0], "question": reworded}
    assert not overlap_report([reworded_item], [planted], tok, n=4)[0]["flagged"]
    assert [r["id"] for r in rows] == ["x-0", "x-1"]


def test_threshold_decides_a_partly_copied_question(tok):
    words = ITEMS[2]["question"].split()
    half = " ".join(words[:len(words) // 2 + 1])  # the first half of the question only
    row = overlap_report([ITEMS[2]], [half], tok, n=3, threshold=1.0)[0]
    assert 0 < row["share"] < 1 and not row["flagged"]
    low = overlap_report([ITEMS[2]], [half], tok, n=3, threshold=row["share"])[0]
    assert low["flagged"]
    assert contamination.FLAG_SHARE == 0.5


def test_a_question_shorter_than_n_is_reported_short_not_flagged(tok):
    short = {**ITEMS[0], "question": "Mars?"}
    row = overlap_report([short], ["Mars? " * 20], tok, n=8)[0]
    assert row == {"id": "x-0", "found": 0, "total": 0, "share": None, "flagged": False, "short": True}


def test_letter_logprobs_match_score_multiple_choice(model, tok):
    ours = letter_logprobs(model, tok, ITEMS, batch_size=4)
    theirs = [r["logprobs"] for r in score_multiple_choice(model, tok, ITEMS, "letter")]
    assert torch.allclose(torch.tensor(ours), torch.tensor(theirs), atol=1e-4)


def test_leak_raises_the_right_letter_and_leaves_the_model_unchanged(model, tok):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    kwargs = dict(background_texts=BACKGROUND, steps=15, lr=1e-2, seed=0, batch_size=2, seq_len=64,
                  train_last_blocks=None)
    result = leak_experiment(model, tok, ITEMS, ["x-0", "x-1"], **kwargs)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    leaked = result["leaked"]
    assert sum(leaked["logprob_after"]) > sum(leaked["logprob_before"]) + 1.0
    assert all(after > b for after, b in zip(leaked["logprob_after"], leaked["logprob_before"]))
    assert len(result["losses"]) == 15 and result["losses"][-1] < result["losses"][0]
    # the controls: as many as leaked, same subjects, none of them leaked
    assert sorted(ITEMS[int(i[2:])]["subject"] for i in result["control_ids"]) == ["language", "science"]
    assert not set(result["control_ids"]) & {"x-0", "x-1"}
    assert item_text(ITEMS[0]) in result["training_text"]
    again = leak_experiment(model, tok, ITEMS, ["x-0", "x-1"], **kwargs)
    assert again["losses"] == result["losses"] and again["control_ids"] == result["control_ids"]


def test_margin_is_the_right_choice_over_the_best_wrong_one():
    assert margin([-1.0, -3.0, -0.5, -2.0], 0) == -0.5
    assert margin([-1.0, -3.0, -0.5, -2.0], 2) == 0.5
    with pytest.raises(ValueError, match="answer"):
        margin([-1.0, -2.0], 2)


def test_text_leak_stores_margins_from_score_multiple_choice(model, tok):
    kwargs = dict(background_texts=BACKGROUND, steps=15, lr=1e-2, seed=0, batch_size=2, seq_len=64,
                  train_last_blocks=None, format="text")
    result = leak_experiment(model, tok, ITEMS, ["x-0", "x-1"], **kwargs)
    assert result["format"] == "text"
    assert item_text(ITEMS[0], "text") in result["training_text"] and item_text(ITEMS[0]) not in result["training_text"]
    # before training the numbers are the untouched model's, scored by the harness-style scorer
    for name in ("leaked", "control"):
        group = [ITEMS[int(i[2:])] for i in result[f"{name}_ids"]]
        records = score_multiple_choice(model, tok, group, "text")
        assert choice_logprobs(model, tok, group, "text") == [r["logprobs"] for r in records]
        for k, (item, r) in enumerate(zip(group, records)):
            right = r["logprobs"][item["answer"]]
            best_wrong = max(v for j, v in enumerate(r["logprobs"]) if j != item["answer"])
            assert result[name]["margin_before"][k] == pytest.approx(right - best_wrong, abs=1e-4)
            assert result[name]["logprob_before"][k] == pytest.approx(right, abs=1e-4)
            assert result[name]["before"][k] == r["correct"]
    # the planted answers are learnt: the right text gains on the wrong ones
    leaked = result["leaked"]
    assert all(a > b for a, b in zip(leaked["margin_after"], leaked["margin_before"]))


def test_leak_trains_only_the_last_blocks_when_asked(model, tok):
    result = leak_experiment(model, tok, ITEMS, ["x-0"], background_texts=BACKGROUND, steps=1, lr=1e-3, seed=1,
                             batch_size=1, seq_len=64, train_last_blocks=1)
    assert result["trained"] == "the last 1 of 2 blocks and the final norm"
    with pytest.raises(ValueError, match="format"):
        leak_experiment(model, tok, ITEMS, ["x-0"], background_texts=BACKGROUND, steps=1, lr=1e-3, seed=1,
                        batch_size=1, seq_len=64, format="chat")


def _record():
    runs = []
    for seed in (0, 1):
        runs.append({"seed": seed, "leaked_ids": ["a", "b"], "control_ids": ["c", "d"] if seed == 0 else ["c", "e"],
                     "leaked": {"before": [False, False], "after": [True, seed == 0],
                                "logprob_before": [-3.0, -2.0], "logprob_after": [-1.0, -1.0 - seed],
                                "margin_before": [-1.0, -0.5], "margin_after": [1.0, 0.5 - seed]},
                     "control": {"before": [True, False], "after": [True, False],
                                 "logprob_before": [-1.0, -2.0], "logprob_after": [-1.0, -2.5],
                                 "margin_before": [0.5, -1.0], "margin_after": [0.5, -1.5]},
                     "overlap": [{"id": "a", "flagged": True}, {"id": "b", "flagged": True},
                                 {"id": "c", "flagged": False}, {"id": "d", "flagged": seed == 1},
                                 {"id": "e", "flagged": seed == 1}]})
    return {"seeds": runs, "corpora_overlap": {"flagged_any": 0, "n_items": 4}, "seconds": 12.0}


def test_summary_pools_the_rows():
    s = summary(_record())
    assert s["leaked_before"] == 0.0 and s["leaked_after"] == 0.75
    assert s["control_before"] == s["control_after"] == 0.5
    assert [r["leaked_after"] for r in s["seeds"]] == [1.0, 0.5]
    assert (s["leaked_flagged"], s["leaked"], s["clean_flagged"], s["clean"]) == (4, 4, 2, 6)
    assert s["leaked_verdict"] == stats.compare([True, True, True, False], [False] * 4,
                                                names=("after training", "before training")).verdict
    names = ("the planted questions", "the controls")
    assert s["specific_verdict"] == stats.compare_unpaired([1.0, 1.0, 1.0, 0.0], [0.0] * 4, names=names).verdict
    assert s["margin_gain_leaked"] == 1.25 and s["margin_gain_control"] == -0.25
    assert s["margin_verdict"] == stats.compare_unpaired([2.0, 1.0, 2.0, 0.0], [0.0, -0.5, 0.0, -0.5],
                                                         names=names).verdict
    assert (s["distinct_leaked"], s["distinct_control"], s["clean_distinct_flagged"]) == (2, 3, 2)
    old = {**_record(), "seeds": [{**r, "leaked": {k: v for k, v in r["leaked"].items() if "margin" not in k}}
                                  for r in _record()["seeds"]]}
    assert summary(old)["margin_verdict"] is None
    assert s["leaked_n"] == 4 and s["corpora_flagged"] == 0
    assert s["leaked_gain_nats"] == 1.25 and s["control_gain_nats"] == -0.25
    assert s["gain_verdict"] == stats.compare_unpaired([2.0, 1.0, 2.0, 0.0], [0.0, -0.5, 0.0, -0.5],
                                                       names=("leaked", "control")).verdict


def test_the_record_has_its_plan_and_its_verdicts_follow_from_its_rows():
    from llmlab.records import evaluation_contamination as rec

    record = rec.load()
    assert record["plan"] == rec.PLAN and record["model"] == "smollm2-135m-instruct"
    assert [r["seed"] for r in record["seeds"]] == rec.PLAN["seeds"]
    n = rec.LEAKED_PER_SUBJECT * 8
    pooled = {"leaked": ([], []), "control": ([], [])}
    changes, rises = {"leaked": [], "control": []}, {"leaked": [], "control": []}
    for run in record["seeds"]:
        assert len(run["leaked_ids"]) == len(run["control_ids"]) == n
        assert not set(run["leaked_ids"]) & set(run["control_ids"])
        assert len(run["losses"]) == rec.PLAN["steps"]
        assert len(run["overlap"]) == record["corpora_overlap"]["n_items"] == 320
        leaked = set(run["leaked_ids"])
        assert run["leaked_flagged"] == sum(r["flagged"] for r in run["overlap"] if r["id"] in leaked)
        for g in pooled:
            assert len(run[g]["before"]) == len(run[g]["after"]) == n
            pooled[g][0].extend(run[g]["after"])
            pooled[g][1].extend(run[g]["before"])
            changes[g] += [float(a) - float(b) for a, b in zip(run[g]["after"], run[g]["before"])]
            rises[g] += [a - b for a, b in zip(run[g]["margin_after"], run[g]["margin_before"])]
            # a wrong item has a negative margin, a right one a positive one (ties aside)
            assert all((m > 0) == r for m, r in zip(run[g]["margin_after"], run[g]["after"]) if m != 0)
    s = summary(record)
    for g, (after, before) in pooled.items():
        assert s[f"{g}_verdict"] == stats.compare(after, before, names=("after training", "before training")).verdict
        assert s[f"{g}_after"] == sum(after) / len(after) and s[f"{g}_n"] == len(after)
    assert s["leaked_flagged"] == sum(r["leaked_flagged"] for r in record["seeds"])
    names = ("the planted questions", "the controls")
    assert s["specific_verdict"] == stats.compare_unpaired(changes["leaked"], changes["control"], names=names).verdict
    assert s["margin_verdict"] == stats.compare_unpaired(rises["leaked"], rises["control"], names=names).verdict
    assert s["margin_gain_leaked"] == pytest.approx(sum(rises["leaked"]) / len(rises["leaked"]))
    assert record["plan"]["format"] == "text"


def test_leak_is_deterministic_with_dropout_and_trains_a_gpt2(tok, make_gpt2):
    gpt2 = make_gpt2(vocab_size=len(tok), n_positions=128)  # GPT-2's dropout of 0.1 is on in training
    kwargs = dict(background_texts=BACKGROUND, steps=2, lr=1e-3, seed=3, batch_size=2, seq_len=64,
                  train_last_blocks=2)
    first = leak_experiment(gpt2, tok, ITEMS, ["x-2"], **kwargs)
    assert leak_experiment(gpt2, tok, ITEMS, ["x-2"], **kwargs)["losses"] == first["losses"]
    assert first["trained"] == "the last 2 of 2 blocks and the final norm"
