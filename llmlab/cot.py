"""Zero-shot chain-of-thought prompting on problems with checkable answers (chapter 4).

Kojima et al. (2022) found that adding "Let's think step by step" to a question made
large models write out their reasoning and answer multi-step arithmetic far more often
correctly; the NVIDIA talk in the course shows the same zero-shot prompt. This module
writes small two-step word problems with whole-number answers (:func:`word_problems`),
asks a chat model each one twice, once for the answer alone and once to reason first
(:data:`DIRECT_INSTRUCTION`, :data:`STEP_INSTRUCTION`), and reads the last whole number
of the reply as its answer (:func:`answer_problems`).
"""

from __future__ import annotations

import random

import torch

from . import _checks
from .chat import chat_complete, chat_text
from .lifecycle import last_integer

#: the two ways of asking: for the number alone, and to reason first (Kojima et al. 2022)
DIRECT_INSTRUCTION = "Answer with the number only."
STEP_INSTRUCTION = "Let's think step by step, then give the final number."
STYLES = {"direct": DIRECT_INSTRUCTION, "step by step": STEP_INSTRUCTION}
#: new tokens allowed per reply: a number, or a short chain of reasoning
MAX_NEW_TOKENS = {"direct": 8, "step by step": 96}

_NAMES = ("Ana", "Ben", "Carla", "Dev", "Emma", "Femi", "Gus", "Hana", "Ivan", "Jo")
_THINGS = ("apples", "marbles", "stickers", "coins", "books", "pencils", "shells", "cards")


def word_problems(n: int = 40, seed: int = 0) -> list[dict]:
    """``n`` seeded two-step word problems with whole-number answers: ``{"question", "answer"}``.

    Each starts with a count, adds one and takes another away (or the reverse), with
    numbers from 2 to 19 so that every intermediate count stays positive: "Ana has 7
    apples. She gets 5 more and then gives away 3. How many apples does Ana have now?"
    """
    n = _checks.positive_int("n", n)
    seed = _checks.integer("seed", seed)
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        name, thing = rng.choice(_NAMES), rng.choice(_THINGS)
        start, gain = rng.randint(5, 19), rng.randint(2, 19)
        loss = rng.randint(2, start + gain - 1)
        if rng.random() < 0.5:
            text = (f"{name} has {start} {thing}. {name} gets {gain} more and then gives away {loss}. "
                    f"How many {thing} does {name} have now?")
        else:
            loss = rng.randint(2, start - 1)
            text = (f"{name} has {start} {thing}. {name} gives away {loss} and then gets {gain} more. "
                    f"How many {thing} does {name} have now?")
        out.append({"question": text, "answer": start + gain - loss})
    return out


def prompt(tokenizer, question: str, style: str) -> str:
    """The chat prompt for ``question`` asked in ``style`` (a key of :data:`STYLES`): the question,
    then the style's instruction, as one user message with the assistant's turn opened."""
    _checks.string("question", question, allow_empty=False)
    _checks.choice("style", style, tuple(STYLES))
    return chat_text(tokenizer, f"{question}\n{STYLES[style]}")


def answer_problems(model: torch.nn.Module, tokenizer, problems: list[dict], style: str) -> list[dict]:
    """Greedy replies to ``problems`` in ``style``; per problem ``{"reply", "answer", "correct"}``,
    where ``answer`` is the reply's last whole number (None when it has none)."""
    if isinstance(problems, dict) or not isinstance(problems, (list, tuple)) or not problems:
        raise _checks.ArgumentTypeError("problems must be a non-empty list of {'question', 'answer'} dicts, "
                                        "as word_problems returns")
    for i, p in enumerate(problems):
        if not isinstance(p, dict) or "question" not in p or "answer" not in p:
            raise ValueError(f"problems[{i}] must be a dict with 'question' and 'answer'")
    _checks.model("model", model)
    _checks.choice("style", style, tuple(STYLES))
    # one prompt at a time, as recorded: left padding in a batch moves the numbers slightly
    replies = chat_complete(model, tokenizer, [f"{p['question']}\n{STYLES[style]}" for p in problems],
                            MAX_NEW_TOKENS[style], batch_size=1)
    out = []
    for p, reply in zip(problems, replies):
        answer = last_integer(reply)
        out.append({"reply": reply, "answer": answer, "correct": answer == p["answer"]})
    return out
