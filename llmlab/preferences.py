"""Chapter 13's preference set and its reward task: short questions whose answers a program checks.

Every question has one right answer that a few lines of code compute: a sum, a
difference, a product, the larger or smaller of two numbers, the day some days after
or before a given day.
That makes the principle behind every preference pair checkable by a reader:

    **the chosen answer is correct and the rejected one is wrong.**

Each answer comes in one of two styles: *short* (the value alone, "17") or *long*
(the same value inside friendly padding, "Great question! ... The answer is 17. I hope
this helps ..."). In every pair one answer is short and the other long, and which one
is longer is set on purpose, split by split:

- ``train`` (300 pairs): the chosen answer is the longer one in exactly half the pairs,
  so length says nothing about which answer is preferred;
- ``train_long`` (the same 300 questions and values, restyled): the chosen answer is the
  longer one in 85% of pairs, the kind of length correlation Singhal et al. (2023) found
  in human preference data;
- ``test`` (120 pairs, questions not in training): half and half, like ``train``.

:func:`score` is the principle as a function: it reads the value a reply gives (the
last number in it, or the last day named) and says whether it is the right one.
:func:`make_pairs` draws everything with a seeded generator; :func:`write_pairs`
freezes it into ``llmlab/corpus/preferences.json`` (``llmlab/corpus/SOURCE.md`` says
how) and :func:`load_pairs` reads it back.

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
TASKS = ("add", "subtract", "multiply", "larger", "smaller", "day")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# The long style's padding: no digits and no day names, so the value stays the last one.
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
    "Have a wonderful day, and good luck with the rest of your work!",
]


def _question(rng: random.Random, task: str) -> tuple[str, str]:
    """One question of ``task`` and its answer, both as text."""
    if task == "add":
        a, b = rng.randint(2, 19), rng.randint(2, 19)
        return f"What is {a} + {b}?", str(a + b)
    if task == "subtract":
        a = rng.randint(5, 30)
        b = rng.randint(1, a - 1)
        return f"What is {a} - {b}?", str(a - b)
    if task == "multiply":
        a, b = rng.randint(2, 12), rng.randint(2, 9)
        return f"What is {a} times {b}?", str(a * b)
    if task in ("larger", "smaller"):
        a, b = rng.sample(range(2, 100), 2)
        word = "larger" if task == "larger" else "smaller"
        return f"Which number is {word}, {a} or {b}?", str(max(a, b) if task == "larger" else min(a, b))
    day, k, after = rng.randrange(7), rng.randint(1, 6), rng.random() < 0.5
    word = "after" if after else "before"
    question = (f"Which day comes {word} {DAYS[day]}?" if k == 1 else
                f"Which day is {k} days {word} {DAYS[day]}?")
    return question, DAYS[(day + (k if after else -k)) % 7]


def _wrong(rng: random.Random, task: str, answer: str, prompt: str) -> str:
    """A plausible wrong answer: a near miss for numbers, another day (often a neighbour) for days."""
    if task == "day":
        others = [d for d in DAYS if d != answer]
        return rng.choice(others)
    value = int(answer)
    if task in ("larger", "smaller"):
        numbers = [int(n) for n in re.findall(r"\d+", prompt)]
        return str(next(n for n in numbers if n != value))  # the other number: the tempting mistake
    candidates = [value + d for d in (-10, -2, -1, 1, 2, 10) if value + d >= 0]
    return str(rng.choice(candidates))


def style(value: str, long: bool, rng: random.Random) -> str:
    """``value`` alone (short) or inside an opening and a closing sentence (long)."""
    _checks.string("value", value, allow_empty=False)
    if not long:
        return value
    return f"{rng.choice(OPENINGS)} The answer is {value}. {rng.choice(CLOSINGS)}"


def _questions(n: int, split: str, seed: int) -> list[dict]:
    """``n`` distinct questions, the tasks in turn; the test split's questions differ from training's."""
    rng = random.Random(f"{seed}-questions-{'test' if split == 'test' else 'train'}")
    seen_train = set()
    if split == "test":  # held out: nothing the training questions ask
        seen_train = {q["prompt"] for q in _questions(SIZES["train"], "train", seed)}
    out, seen = [], set()
    while len(out) < n:
        task = TASKS[len(out) % len(TASKS)]
        prompt, answer = _question(rng, task)
        if prompt in seen or prompt in seen_train:
            continue
        seen.add(prompt)
        out.append({"task": task, "prompt": prompt, "answer": answer,
                    "wrong": _wrong(rng, task, answer, prompt)})
    return out


def make_pairs(split: str, seed: int = SEED) -> list[dict]:
    """The ``split``'s pairs: ``{"id", "task", "prompt", "answer", "chosen", "rejected", "chosen_longer"}``.

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
                      "answer": q["answer"],
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


_DAY = re.compile(r"\b(" + "|".join(DAYS) + r")\b", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d+")


def value(reply: str, answer: str) -> str | None:
    """The value ``reply`` gives: its last day name if ``answer`` is a day, else its last number."""
    _checks.string("reply", reply)
    _checks.string("answer", answer, allow_empty=False)
    found = (_DAY if answer in DAYS else _NUMBER).findall(reply)
    return found[-1].capitalize() if found and answer in DAYS else (found[-1] if found else None)


def score(reply: str, answer: str) -> bool:
    """The principle: does ``reply`` give the right answer (:func:`value` equals ``answer``)?"""
    return value(reply, answer) == answer


def is_short(reply: str, answer: str) -> bool:
    """Whether ``reply`` is the value alone, as the short style writes it (a final full stop allowed)."""
    _checks.string("reply", reply)
    _checks.string("answer", answer, allow_empty=False)
    text = reply.strip().rstrip(".").strip()
    return (_DAY if answer in DAYS else _NUMBER).fullmatch(text) is not None
