"""The frozen benchmark of chapter 11 (llmlab/corpus/evalbench_*.json) and its loader.

The files must hash to the SHA-256 stated in llmlab/corpus/EVALBENCH.md: any edit, however
small, fails here, and the rule is to publish a new version under a new name instead.
The other tests check the shape of the items and the cues a model could exploit.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections import Counter

import pytest

from llmlab import evaluation
from llmlab.evaluation import load_benchmark

NOTE = evaluation.CORPUS / "EVALBENCH.md"
MC = load_benchmark("mc")
SHORT = load_benchmark("short")
SUBJECTS = sorted({item["subject"] for item in MC})


def stated_hashes() -> dict[str, str]:
    """File name -> SHA-256 as the note's table states them."""
    found = dict(re.findall(r"`(evalbench_\w+\.json)`[^\n]*?`([0-9a-f]{64})`", NOTE.read_text(encoding="utf-8")))
    assert set(found) == set(evaluation.BENCHMARK_FILES.values()), f"EVALBENCH.md states hashes for {sorted(found)}"
    return found


@pytest.mark.parametrize("name", sorted(evaluation.BENCHMARK_FILES.values()))
def test_file_is_frozen_at_the_hash_the_note_states(name):
    actual = hashlib.sha256((evaluation.CORPUS / name).read_bytes()).hexdigest()
    assert actual == stated_hashes()[name], (
        f"{name} changed (SHA-256 {actual}): the benchmark is frozen; write a new version under a new name")


def test_sizes():
    assert len(MC) >= 300 and len(SHORT) >= 100
    per_subject = Counter(item["subject"] for item in MC)
    assert len(per_subject) == 8
    assert min(per_subject.values()) >= 30, per_subject
    assert set(item["subject"] for item in SHORT) == set(SUBJECTS)


def test_mc_schema():
    for item in MC:
        assert set(item) == {"id", "subject", "difficulty", "question", "choices", "answer"}, item["id"]
        assert item["id"].startswith(item["subject"][:3] + "-"), item["id"]
        assert item["difficulty"] in evaluation.DIFFICULTIES
        assert len(item["choices"]) == 4 and all(isinstance(c, str) and c.strip() for c in item["choices"])
        assert type(item["answer"]) is int and 0 <= item["answer"] <= 3
        assert all(text.isascii() for text in [item["question"], *item["choices"]]), item["id"]


def test_short_schema():
    for item in SHORT:
        assert set(item) == {"id", "subject", "difficulty", "question", "answer", "aliases", "wrong"}, item["id"]
        assert item["difficulty"] in evaluation.DIFFICULTIES
        assert isinstance(item["aliases"], list) and all(isinstance(a, str) and a for a in item["aliases"])
        assert 1 <= len(item["answer"].split()) <= 3, item["id"]


def normalise(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces: how short answers will be matched."""
    text = text.lower().translate(str.maketrans("", "", string.punctuation))
    return " ".join(w for w in text.split() if w not in {"a", "an", "the"})


def test_short_wrong_answer_is_not_an_accepted_answer():
    for item in SHORT:
        accepted = {normalise(a) for a in [item["answer"], *item["aliases"]]}
        assert normalise(item["wrong"]) not in accepted, item["id"]
        assert normalise(item["wrong"]), item["id"]


@pytest.mark.parametrize("items", [MC, SHORT], ids=["mc", "short"])
def test_unique_ids_and_questions(items):
    ids = Counter(item["id"] for item in items)
    questions = Counter(item["question"].strip().lower() for item in items)
    assert max(ids.values()) == 1, [k for k, v in ids.items() if v > 1]
    assert max(questions.values()) == 1, [k for k, v in questions.items() if v > 1]


def test_no_choice_repeated_and_no_catch_all_choices():
    for item in MC:
        assert len({c.strip().lower() for c in item["choices"]}) == 4, item["id"]
        for choice in item["choices"]:
            assert not re.search(r"\b(all|none) of the above\b|\bboth [a-d] and [a-d]\b", choice, re.I), item["id"]


def test_answer_positions_are_balanced():
    share = Counter(item["answer"] for item in MC)
    for position in range(4):
        assert 0.18 <= share[position] / len(MC) <= 0.32, share


def test_every_subject_has_all_three_difficulties():
    for items in (MC, SHORT):
        seen = {(item["subject"], item["difficulty"]) for item in items}
        for subject in SUBJECTS:
            assert {d for s, d in seen if s == subject} == set(evaluation.DIFFICULTIES), subject


def test_right_answer_is_seldom_the_longest_choice():
    """A model that always picks the longest choice must not do well: at most 40% of items (strictly longest)."""
    longest = 0
    for item in MC:
        lengths = [len(c) for c in item["choices"]]
        right = lengths.pop(item["answer"])
        longest += right > max(lengths)
    assert longest / len(MC) <= 0.40, f"the right answer is the longest choice in {longest} of {len(MC)} items"


def test_loader_returns_fresh_items():
    items = load_benchmark()
    items[0]["question"] = "changed"
    assert load_benchmark("mc")[0]["question"] != "changed"


@pytest.mark.parametrize("kind", ["tf", "MC", ""])
def test_unknown_kind_is_refused(kind):
    with pytest.raises(ValueError, match="kind must be one of"):
        load_benchmark(kind)


def test_damaged_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(evaluation, "CORPUS", tmp_path)
    good = (NOTE.parent / "evalbench_mc.json").read_text(encoding="utf-8")
    for old, new, message in [('"answer": 0}', '"answer": 4}', "answer must be an int"),
                              ('"id": "sci-002"', '"id": "sci-001"', "more than once")]:
        (tmp_path / "evalbench_mc.json").write_text(good.replace(old, new, 1), encoding="utf-8")
        with pytest.raises(ValueError, match=message):
            load_benchmark("mc")
