"""Chapter 13's frozen preference set: the principle holds for every pair, the length shares are as
stated, the held-out questions are held out, and the file is what the generator writes."""

from __future__ import annotations

import hashlib
import re
from collections import Counter

import pytest

from llmlab import preferences as pf


def test_the_frozen_file_is_what_the_generator_writes(tmp_path):
    fresh = pf.write_pairs(tmp_path / "preferences.json")
    assert fresh.read_bytes() == pf.PAIRS_FILE.read_bytes()


def test_no_value_is_in_two_topics_or_in_the_padding():
    words = [v.lower() for values in pf.VALUES.values() for v in values]
    assert len(words) == len(set(words))
    padding = " ".join(pf.OPENINGS + pf.CLOSINGS).lower()
    assert not [w for w in words if re.search(rf"\b{w}\b", padding)]
    assert not re.search(r"\d", padding)


def test_source_note_gives_the_frozen_files_hash():
    note = (pf.CORPUS / "SOURCE.md").read_text(encoding="utf-8")
    digest = hashlib.sha256(pf.PAIRS_FILE.read_bytes()).hexdigest()
    assert digest in note, "llmlab/corpus/SOURCE.md must give preferences.json's SHA-256"


@pytest.mark.parametrize("split", sorted(pf.SIZES))
def test_sizes_tasks_and_the_share_where_the_chosen_answer_is_longer(split):
    pairs = pf.load_pairs(split)
    assert len(pairs) == pf.SIZES[split] and len({p["id"] for p in pairs}) == len(pairs)
    assert Counter(p["task"] for p in pairs) == {t: len(pairs) // len(pf.TASKS) for t in pf.TASKS}
    longer = sum(len(p["chosen"]) > len(p["rejected"]) for p in pairs)
    assert longer == sum(p["chosen_longer"] for p in pairs) == round(pf.LONGER_SHARE[split] * len(pairs))


@pytest.mark.parametrize("split", sorted(pf.SIZES))
def test_the_principle_decides_every_pair(split):
    for p in pf.load_pairs(split):
        assert pf.score(p["chosen"], p["answer"]), p
        assert not pf.score(p["rejected"], p["answer"]), p
        # one answer is the value alone, the other the value inside padding
        assert pf.is_short(p["chosen"], p["answer"]) != pf.is_short(p["rejected"], p["answer"])


def _computed(prompt: str) -> str:
    """The answer read off the prompt here, independently of the generator: the asked person's fact."""
    facts, question = prompt.rsplit(". ", 1)
    asked = next(name for name in pf.NAMES if re.search(rf"\b{name}\b", question))
    clause = next(c for c in facts.split(" and ") if c.startswith(asked + " "))
    words = clause.replace(" car", "").split()
    return words[-1]


@pytest.mark.parametrize("split", sorted(pf.SIZES))
def test_every_answer_is_right(split):
    for p in pf.load_pairs(split):
        assert p["answer"] == _computed(p["prompt"]), p


def test_train_long_restyles_the_training_questions_and_the_test_people_are_new():
    train, long, test = (pf.load_pairs(s) for s in ("train", "train_long", "test"))
    assert [p["prompt"] for p in train] == [p["prompt"] for p in long]
    assert all(pf.value(a["rejected"], a["answer"]) == pf.value(b["rejected"], b["answer"])
               for a, b in zip(train, long))  # the same wrong values, only the styles move
    assert len({p["prompt"] for p in train}) == len(train)

    def names(pairs):
        return {n for p in pairs for n in pf.NAMES if re.search(rf"\b{n}\b", p["prompt"])}

    assert names(test) <= set(pf.TEST_NAMES) and not names(train) & set(pf.TEST_NAMES)


@pytest.mark.parametrize("split", sorted(pf.SIZES))
def test_the_wrong_answer_is_in_the_prompt_in_half_the_pairs_of_each_topic(split):
    pairs = pf.load_pairs(split)
    for p in pairs:
        wrong = pf.value(p["rejected"], p["answer"])
        in_prompt = re.search(rf"\b{re.escape(wrong)}\b", p["prompt"]) is not None
        assert in_prompt == p["wrong_in_prompt"], p
    for task in pf.TASKS:
        flags = [p["wrong_in_prompt"] for p in pairs if p["task"] == task]
        assert abs(sum(flags) - len(flags) / 2) <= 1


def test_the_sums_are_distinct_held_out_and_right():
    train, test = pf.load_sums("train"), pf.load_sums("test")
    assert (len(train), len(test)) == (pf.SUM_SIZES["train"], pf.SUM_SIZES["test"])
    assert not {s["prompt"] for s in train} & {s["prompt"] for s in test}
    for s in train + test:
        a, b = (int(n) for n in re.findall(r"\d+", s["prompt"]))
        assert 1 <= a <= 9 and 1 <= b <= 19 and s["answer"] == str(a + b)


@pytest.mark.parametrize("reply, answer, want", [
    ("17", "17", True),
    ("17.", "17", True),
    ("9 + 8 = 17", "17", True),           # the last number is the value
    ("The answer is 17. Not 16.", "17", False),
    ("It is 170.", "17", False),
    ("Seventeen.", "17", False),          # words are not read
    ("", "17", False),
    ("Tom lives in vienna.", "Vienna", True),  # any case
    ("Vienna, no, Oslo", "Vienna", False),
    ("Viennas are long", "Vienna", False),
    ("Mei has a cat and a dog.", "dog", True),
    ("She swims on Tuesdays.", "Tuesday", False),
    ("The answer is pink. Not red.", "pink", False),
])
def test_score_reads_the_last_value(reply, answer, want):
    assert pf.score(reply, answer) is want


@pytest.mark.parametrize("reply, answer, want", [
    ("17", "17", True), (" 17. ", "17", True), ("The answer is 17.", "17", False),
    ("Friday", "Friday", True), ("Friday!", "Friday", False), ("16", "17", True),
    ("teacher", "nurse", True), ("a teacher", "nurse", False),
])
def test_is_short_means_the_value_alone(reply, answer, want):
    assert pf.is_short(reply, answer) is want


@pytest.mark.parametrize("text, answer, want", [
    ("Tom lives in vienna and Mei lives in Oslo.", "Oslo", ["Vienna", "Oslo"]),  # in order, spelled as listed
    ("9 + 8 = 17", "17", ["9", "8", "17"]),
    ("Viennas are long", "Vienna", []),
    ("Mei has a cat. Tom lives in Oslo.", "cat", ["cat"]),  # another topic's values are not this kind
])
def test_values_in_lists_every_value_of_the_answers_kind(text, answer, want):
    assert pf.values_in(text, answer) == want


def test_values_in_rejects_what_is_not_a_value():
    with pytest.raises(ValueError, match="answer must be a number or a value"):
        pf.values_in("Tom lives in Oslo.", "Atlantis")
    with pytest.raises(TypeError):
        pf.values_in(None, "Oslo")
