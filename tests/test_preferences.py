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
    """The answer worked out here, independently of the generator."""
    numbers = [int(n) for n in re.findall(r"\d+", prompt)]
    if "+" in prompt:
        return str(numbers[0] + numbers[1])
    if " - " in prompt:
        return str(numbers[0] - numbers[1])
    if "times" in prompt:
        return str(numbers[0] * numbers[1])
    if "larger" in prompt:
        return str(max(numbers))
    if "smaller" in prompt:
        return str(min(numbers))
    day = next(d for d in pf.DAYS if d in prompt)
    k = numbers[0] if numbers else 1
    return pf.DAYS[(pf.DAYS.index(day) + (k if "after" in prompt else -k)) % 7]


@pytest.mark.parametrize("split", sorted(pf.SIZES))
def test_every_answer_is_right(split):
    for p in pf.load_pairs(split):
        assert p["answer"] == _computed(p["prompt"]), p


def test_train_long_restyles_the_training_questions_and_the_test_questions_are_new():
    train, long, test = (pf.load_pairs(s) for s in ("train", "train_long", "test"))
    assert [p["prompt"] for p in train] == [p["prompt"] for p in long]
    assert all(pf.value(a["rejected"], a["answer"]) == pf.value(b["rejected"], b["answer"])
               for a, b in zip(train, long))  # the same wrong values, only the styles move
    assert not {p["prompt"] for p in test} & {p["prompt"] for p in train}
    assert len({p["prompt"] for p in train}) == len(train)


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
    ("The day after Monday is tuesday.", "Tuesday", True),
    ("Tuesday, no, Wednesday", "Tuesday", False),
    ("Tuesdays are long", "Tuesday", False),
])
def test_score_reads_the_last_value(reply, answer, want):
    assert pf.score(reply, answer) is want


@pytest.mark.parametrize("reply, answer, want", [
    ("17", "17", True), (" 17. ", "17", True), ("The answer is 17.", "17", False),
    ("Friday", "Friday", True), ("Friday!", "Friday", False), ("16", "17", True),
])
def test_is_short_means_the_value_alone(reply, answer, want):
    assert pf.is_short(reply, answer) is want
