"""Chapter 13's preference set and its reward task: questions whose answers a program checks.

Each question comes with two short facts about two people ("Priya lives in Oslo and Tom
lives in Vienna.") and asks about one of them ("Where does Tom live?"), on one of six
topics: the city someone lives in, their pet, the colour of their car, their job, their
house number or the day they swim. The right answer is in the prompt, and the principle
behind every preference pair is one a reader can check:

    **the chosen answer is correct and the rejected one is wrong.**

The wrong answer is, in half the pairs, the other person's value (the tempting mistake,
there in the prompt) and, in the other half, a value the prompt never mentions.

Each answer comes in one of two styles: *short* (the value alone, "Vienna") or *long*
(the same value inside friendly padding, "Great question! ... The answer is Vienna. I
hope this helps ..."). In every pair one answer is short and the other long, and which
one is longer is set on purpose, split by split:

- ``train`` (300 pairs): the chosen answer is the longer one in exactly half the pairs,
  so length says nothing about which answer is preferred;
- ``train_long`` (the same 300 questions and values, restyled): the chosen answer is the
  longer one in 85% of pairs, the kind of length correlation Singhal et al. (2023) found
  in human preference data;
- ``test`` (120 pairs): questions about people whose names never occur in training,
  half and half like ``train``.

:func:`score` is the principle as a function: it reads the value a reply gives (the
last value of the question's kind that it names, or its last number) and says whether
it is the right one. :func:`make_pairs` draws everything with a seeded generator;
:func:`write_pairs` freezes it into ``llmlab/corpus/preferences.json``
(``llmlab/corpus/SOURCE.md`` says how) and :func:`load_pairs` reads it back.

The reinforcement-learning task (:func:`load_sums`) is one-digit-plus-small-number
addition, with its own held-out questions: ``"What is 7 + 12?"``, rewarded 1 when the
reply's last number is the sum.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from . import _checks

CORPUS = Path(__file__).resolve().parent / "corpus"
PAIRS_FILE = CORPUS / "preferences.json"
SEED = 2026
SIZES = {"train": 300, "train_long": 300, "test": 120}
SUM_SIZES = {"train": 111, "test": 60}
LONGER_SHARE = {"train": 0.5, "train_long": 0.85, "test": 0.5}
TASKS = ("city", "pet", "colour", "job", "number", "day")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
VALUES = {  # each topic's values; no word is in two lists, or in the padding below
    "city": ("Lisbon", "Dublin", "Oslo", "Vienna", "Prague", "Madrid", "Berlin", "Warsaw",
             "Athens", "Helsinki", "Zurich", "Budapest", "Brussels", "Rome", "Paris", "Riga"),
    "pet": ("cat", "dog", "rabbit", "parrot", "hamster", "turtle", "goldfish", "pony", "lizard",
            "ferret"),
    "colour": ("red", "blue", "green", "black", "white", "yellow", "silver", "purple", "brown",
               "pink"),
    "job": ("teacher", "nurse", "baker", "pilot", "farmer", "plumber", "chef", "dentist",
            "lawyer", "painter"),
    "day": DAYS,
}
FACT = {  # how a fact is stated, and how it is asked
    "city": ("{name} lives in {value}", "Where does {name} live?"),
    "pet": ("{name} has a {value}", "What pet does {name} have?"),
    "colour": ("{name} drives a {value} car", "What colour is {name}'s car?"),
    "job": ("{name} works as a {value}", "What is {name}'s job?"),
    "number": ("{name} lives at number {value}", "What is {name}'s house number?"),
    "day": ("{name} swims on {value}", "On which day does {name} swim?"),
}
NAMES = ["Priya", "Tom", "Aisha", "Lucas", "Mei", "Omar", "Sofia", "Jonas", "Fatima", "Liam",
         "Yuki", "Carlos", "Nadia", "Ben", "Elena", "Kwame", "Hannah", "Ravi", "Chloe", "Diego",
         "Ingrid", "Samir", "Grace", "Mateo", "Zara", "Felix", "Amara", "Noah", "Leila", "Pavel"]
TEST_NAMES = NAMES[20:]  # the test split's people: never named in training

# The long style's padding: no number, and no word of any topic's values.
OPENINGS = [
    "Great question! Let me work through it carefully.",
    "Sure, I would be happy to help you with that.",
    "Thanks for asking! This is a nice little puzzle to think about.",
    "Of course. Let me take a moment to think it over step by step.",
    "Good question, and an easy one to get wrong if you hurry.",
    "Absolutely, here is what I found after thinking it through.",
]
CLOSINGS = [
    "I hope this helps, and feel free to ask if you have any other questions!",
    "Let me know if there is anything else you would like to know.",
    "Please tell me if you would like me to explain any part of it in more detail.",
    "I am always glad to help with questions like this one, so just ask again anytime.",
    "If you have more questions like this, I would be delighted to answer them too.",
    "Have a wonderful afternoon, and good luck with the rest of your work!",
]


def _topic_values(rng: random.Random, topic: str, k: int) -> list[str]:
    """``k`` distinct values of ``topic`` (house numbers from 2 to 99)."""
    if topic == "number":
        return [str(v) for v in rng.sample(range(2, 100), k)]
    return rng.sample(VALUES[topic], k)


def _question(rng: random.Random, topic: str, names: list[str]) -> tuple[dict, str, str]:
    """Two people's facts on ``topic`` and a question about one: the question with its answer,
    the other person's value and a value the prompt does not mention."""
    first, second = rng.sample(names, 2)
    v1, v2, unmentioned = _topic_values(rng, topic, 3)
    fact, ask = FACT[topic]
    asked, answer, theirs = (second, v2, v1) if rng.random() < 0.5 else (first, v1, v2)
    prompt = (f"{fact.format(name=first, value=v1)} and {fact.format(name=second, value=v2)}. "
              f"{ask.format(name=asked)}")
    return {"task": topic, "prompt": prompt, "answer": answer}, theirs, unmentioned


def style(value: str, long: bool, rng: random.Random) -> str:
    """``value`` alone (short) or inside an opening and a closing sentence (long)."""
    _checks.string("value", value, allow_empty=False)
    if not long:
        return value
    return f"{rng.choice(OPENINGS)} The answer is {value}. {rng.choice(CLOSINGS)}"


def _questions(n: int, split: str, seed: int) -> list[dict]:
    """``n`` distinct questions, the topics in turn; for each topic the wrong answer is the other
    person's value in every other question and an unmentioned value in the rest."""
    rng = random.Random(f"{seed}-questions-{split}")
    names = TEST_NAMES if split == "test" else [n for n in NAMES if n not in TEST_NAMES]
    out, seen = [], set()
    while len(out) < n:
        topic = TASKS[len(out) % len(TASKS)]
        q, theirs, unmentioned = _question(rng, topic, names)
        if q["prompt"] in seen:
            continue
        seen.add(q["prompt"])
        q["in_prompt"] = (len(out) // len(TASKS)) % 2 == 0
        q["wrong"] = theirs if q["in_prompt"] else unmentioned
        out.append(q)
    return out


def make_pairs(split: str, seed: int = SEED) -> list[dict]:
    """The ``split``'s pairs: ``{"id", "task", "prompt", "answer", "wrong_in_prompt", "chosen",
    "rejected", "chosen_longer"}``.

    ``train`` and ``train_long`` share their questions and values; only which answer is
    written long differs, in the share :data:`LONGER_SHARE` gives (exactly, then shuffled).
    """
    if split not in SIZES:
        raise ValueError(f"split must be one of {sorted(SIZES)}, got {split!r}")
    _checks.integer("seed", seed)
    questions = _questions(SIZES[split], "test" if split == "test" else "train", seed)
    rng = random.Random(f"{seed}-styles-{split}")
    n_longer = round(LONGER_SHARE[split] * len(questions))
    longer = [True] * n_longer + [False] * (len(questions) - n_longer)
    rng.shuffle(longer)
    pairs = []
    for i, (q, chosen_longer) in enumerate(zip(questions, longer)):
        pairs.append({"id": f"{split}-{i:03d}", "task": q["task"], "prompt": q["prompt"],
                      "answer": q["answer"], "wrong_in_prompt": q["in_prompt"],
                      "chosen": style(q["answer"], chosen_longer, rng),
                      "rejected": style(q["wrong"], not chosen_longer, rng),
                      "chosen_longer": chosen_longer})
    return pairs


def make_sums(split: str, seed: int = SEED) -> list[dict]:
    """Addition questions for the reinforcement-learning runs: ``{"id", "prompt", "answer"}``.

    ``a + b`` with ``a`` from 1 to 9 and ``b`` from 1 to 19: all 171 such questions,
    shuffled with a seeded generator; ``test`` holds 60 of them and ``train`` the other 111.
    """
    if split not in SUM_SIZES:
        raise ValueError(f"split must be one of {sorted(SUM_SIZES)}, got {split!r}")
    _checks.integer("seed", seed)
    every = [(a, b) for a in range(1, 10) for b in range(1, 20)]
    random.Random(f"{seed}-sums").shuffle(every)
    chosen = every[:SUM_SIZES["test"]] if split == "test" else \
        every[SUM_SIZES["test"]:SUM_SIZES["test"] + SUM_SIZES["train"]]
    return [{"id": f"sum-{split}-{i:03d}", "prompt": f"What is {a} + {b}?", "answer": str(a + b)}
            for i, (a, b) in enumerate(chosen)]


def write_pairs(path: Path = PAIRS_FILE) -> Path:
    """Freeze every split into one JSON file (the exact bytes a test regenerates)."""
    _checks.path("path", path)
    data = {split: make_pairs(split) for split in SIZES}
    data.update({f"sums_{split}": make_sums(split) for split in SUM_SIZES})
    Path(path).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return Path(path)


def load_pairs(split: str) -> list[dict]:
    """The frozen ``split`` of pairs ("train", "train_long" or "test") as fresh dicts."""
    if split not in SIZES:
        raise ValueError(f"split must be one of {sorted(SIZES)}, got {split!r}")
    return json.loads(PAIRS_FILE.read_text(encoding="utf-8"))[split]


def load_sums(split: str) -> list[dict]:
    """The frozen addition questions ("train": 111, "test": 60) as fresh dicts."""
    if split not in SUM_SIZES:
        raise ValueError(f"split must be one of {sorted(SUM_SIZES)}, got {split!r}")
    return json.loads(PAIRS_FILE.read_text(encoding="utf-8"))[f"sums_{split}"]


_NUMBER = re.compile(r"-?\d+")


def _kind(answer: str) -> re.Pattern:
    """The pattern of the values of ``answer``'s kind: its topic's words, or numbers."""
    for values in VALUES.values():
        if answer in values:
            return re.compile(r"\b(" + "|".join(values) + r")\b", re.IGNORECASE)
    if _NUMBER.fullmatch(answer):
        return _NUMBER
    raise ValueError(f"answer must be a number or a value of one of the topics {list(VALUES)}, "
                     f"got {answer!r}")


def _canonical(found: str) -> str:
    """A value as its topic list spells it ("vienna" -> "Vienna"); numbers as they are."""
    return next((v for values in VALUES.values() for v in values if v.lower() == found.lower()), found)


def value(reply: str, answer: str) -> str | None:
    """The value ``reply`` gives: the last value of ``answer``'s kind it names (its last
    number, for a number), or None when it names none."""
    _checks.string("reply", reply)
    _checks.string("answer", answer, allow_empty=False)
    found = _kind(answer).findall(reply)
    return _canonical(found[-1]) if found else None


def values_in(text: str, answer: str) -> list[str]:
    """Every value of ``answer``'s kind that ``text`` names, in order (as :func:`value` spells them)."""
    _checks.string("text", text)
    _checks.string("answer", answer, allow_empty=False)
    return [_canonical(found) for found in _kind(answer).findall(text)]


def score(reply: str, answer: str) -> bool:
    """The principle: does ``reply`` give the right answer (:func:`value` equals ``answer``)?"""
    return value(reply, answer) == answer


def is_short(reply: str, answer: str) -> bool:
    """Whether ``reply`` is one value alone, as the short style writes it (a final full stop allowed)."""
    _checks.string("reply", reply)
    _checks.string("answer", answer, allow_empty=False)
    text = reply.strip().rstrip(".").strip()
    return _kind(answer).fullmatch(text) is not None
