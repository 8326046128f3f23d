"""Chapter 11 (evaluation): the checks that ``exercises/src/11_evaluation.py`` calls,
its quiz key and their private helpers (the shared machinery is in ``_harness.py``).

Every reference here is computed in the check itself, from the definition the exercise
states (a log-softmax written as ``x - logsumexp(x)`` in float64, the inverse of
``llmlab.stats.detectable_difference`` with :class:`statistics.NormalDist`, word n-grams
as tuples), not by calling ``llmlab.evaluation`` or ``llmlab.contamination``; the tests
compare these references with the library's.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any, Callable

import torch

from ._harness import _call, _Case, _number_problem, _quiz, _run, _salted, _same_input, _Wrong


# =================================================================== scoring an option from logits
def _logits(t: int, v: int, seed: int, scale: float = 3.0, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(t, v, generator=g, dtype=torch.float64)).to(dtype)


def _token_logprobs(logits: torch.Tensor, positions: list[int], ids: list[int]) -> list[float]:
    """log p(ids[k] | position positions[k]), as x - logsumexp(x) in float64."""
    x = logits.detach().to(torch.float64)
    return [(x[p, i] - torch.logsumexp(x[p], dim=0)).item() for p, i in zip(positions, ids)]


def _shifted(logits: torch.Tensor, n_context: int, ids: list[int], shift: int = 1) -> float:
    """The option's summed log-probability read from the positions ``shift`` before its tokens."""
    return sum(_token_logprobs(logits, [n_context - shift + k for k in range(len(ids))], ids))


def _as_float(got: Any) -> float | None:
    if isinstance(got, torch.Tensor) and got.numel() == 1 and got.is_floating_point():
        return got.item()
    if isinstance(got, (int, float)) and not isinstance(got, bool):
        return float(got)
    return None


def _close(a: float | None, b: float) -> bool:
    return a is not None and math.isfinite(a) and math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6)


def _logprob_mistake(got: float | None, logits: torch.Tensor, n_context: int, ids: list[int],
                     scale: float = 1.0) -> str | None:
    """Name the mistake behind a summed log-probability ``got`` (times ``scale``), or None."""
    if got is None:
        return None
    x = logits.detach().to(torch.float64)
    got = got * scale
    right = _shifted(logits, n_context, ids)
    if got > 0:
        return ("the score is positive, and a log-probability is <= 0: probabilities were added "
                "(softmax instead of log_softmax?)")
    if _close(got, _shifted(logits, n_context, ids, shift=0)):
        return ("the logits at position t predict the token at t + 1: the option's tokens are read from the "
                "positions n_context - 1 to T - 2, not from their own positions")
    if _close(got, _shifted(logits, n_context, ids[1:], shift=0)):
        return ("the first option token is missing: it is predicted by the context's last position, "
                "n_context - 1")
    if n_context >= 2 and _close(got, _shifted(logits, n_context, ids, shift=2)):
        return "shifted one position too far: the token at t is predicted by the logits at t - 1, not t - 2"
    wrong_axis = torch.log_softmax(x, dim=0)
    if _close(got, sum(wrong_axis[n_context - 1 + k, i].item() for k, i in enumerate(ids))):
        return "normalised over the wrong dimension: log_softmax over the vocabulary, dim=-1"
    if len(ids) > 1 and _close(got, right / len(ids)):
        return "that is the mean over the option's tokens; the score is their sum"
    raw = sum(x[n_context - 1 + k, i].item() for k, i in enumerate(ids))
    if _close(got, raw):
        return "those are raw logits, not log-probabilities: normalise each position with torch.log_softmax"
    return None


def check_option_logprob(fn: Callable) -> bool:
    """Chapter 11. ``fn(logits, n_context, option_ids) -> float``: the summed log-probability (nats) of an
    option's tokens, which follow the first ``n_context`` tokens of one sequence whose ``(T, V)`` logits
    are given; the logits at position ``t`` predict the token at ``t + 1``. A float or a 0-dim tensor of
    any floating dtype is accepted; ``logits`` must be left unchanged."""
    def case(n_context, ids, v, label, hidden=True, seed=0, dtype=torch.float32):
        def run():
            logits = _logits(n_context + len(ids), v, seed, dtype=dtype)
            before = logits.clone()
            got = _call(fn, logits, n_context, list(ids))
            changed = _same_input(before, logits, "the logits")
            if changed:
                raise _Wrong(changed)
            want = _shifted(before, n_context, list(ids))
            if _as_float(got) is not None and not _close(_as_float(got), want):
                named = _logprob_mistake(_as_float(got), before, n_context, list(ids))
                if named:
                    raise _Wrong(named)
            problem = _number_problem(got, want, "the summed log-probability", rel=1e-4)
            if problem:
                raise _Wrong(problem + " (the logits at position t predict the token at t + 1)")
        return _Case(label, run, hidden)

    return _run("option_logprob", [
        case(5, [3, 17, 8], 20, "a context of 5 tokens, an option of 3, a vocabulary of 20", hidden=False),
        case(6, [11], 30, "an option of a single token", seed=1),
        case(1, [4, 4, 9, 2], 12, "a context of a single token", seed=2),
        case(9, [40, 7, 99, 0, 63], 100, "float64 logits, a vocabulary of 100", seed=3, dtype=torch.float64),
    ])


def check_per_char_logprob(fn: Callable) -> bool:
    """Chapter 11. ``fn(logits, n_context, option_ids, option) -> float``: the option's summed
    log-probability (as in :func:`check_option_logprob`) divided by ``len(option)``, the option text's
    length in characters (lm-evaluation-harness's ``acc_norm``); not its tokens, words or UTF-8 bytes."""
    def case(n_context, ids, option, label, hidden=True, seed=0):
        def run():
            logits = _logits(n_context + len(ids), 50, seed)
            before = logits.clone()
            got = _call(fn, logits, n_context, list(ids), option)
            changed = _same_input(before, logits, "the logits")
            if changed:
                raise _Wrong(changed)
            total = _shifted(before, n_context, list(ids))
            want = total / len(option)
            value = _as_float(got)
            if value is not None and not _close(value, want):
                for divisor, words in ((len(ids), "the number of tokens"),
                                       (len(option.split()), "the number of words"),
                                       (len(option.encode("utf-8")), "the UTF-8 bytes (the harness's acc_bytes)"),
                                       (1, "nothing")):
                    if divisor != len(option) and _close(value, total / divisor):
                        raise _Wrong(f"the sum is divided by {words}; acc_norm divides by the characters of the "
                                     "option's text, len(option)")
                if _close(value, total * len(option)):
                    raise _Wrong("the sum is multiplied by the length; divide it by len(option)")
                named = _logprob_mistake(value, before, n_context, list(ids), scale=len(option))
                if named:
                    raise _Wrong(named)
            problem = _number_problem(got, want, "the score per character", rel=1e-4)
            if problem:
                raise _Wrong(problem)
        return _Case(label, run, hidden)

    return _run("per_char_logprob", [
        case(4, [5, 21], "café", "the option 'café' in two tokens", hidden=False),
        case(3, [7, 1, 33], "naïve idea", "an option of three tokens, two words and an accented letter", seed=1),
        case(1, [12], "Mercury", "a one-token option after a one-token context", seed=2),
        case(6, [2, 9, 9, 40], "crème brûlée", "an option with two accented letters", seed=3),
    ])


# =================================================================== items a difference needs
def _z(q: float) -> float:
    return NormalDist().inv_cdf(q)


def _items(disagreement: float, points: float, alpha: float, power: float, *, sides: int = 2,
           square: bool = True, fraction: bool = True, with_power: bool = True) -> float:
    """The unrounded n; the keywords make the variants a student may write by mistake."""
    z = _z(1 - alpha / sides) + (_z(power) if with_power else 0.0)
    delta = points / 100 if fraction else points
    return (z ** 2 if square else z) * disagreement / delta ** 2


def check_items_needed(fn: Callable) -> bool:
    """Chapter 11. ``fn(disagreement, points, alpha, power) -> int``: the items a two-sided paired test at
    level ``alpha`` needs to detect a difference of ``points`` accuracy points with the given power,
    ``ceil((z_(1-alpha/2) + z_power)^2 * disagreement / (points / 100)^2)``: the inverse of
    ``llmlab.stats.detectable_difference``, computed here with :class:`statistics.NormalDist`."""
    def case(d, points, alpha, power, label, hidden=True):
        def run():
            got = _call(fn, d, points, alpha, power)
            exact = _items(d, points, alpha, power)
            want = math.ceil(exact)
            if isinstance(got, bool) or not isinstance(got, (int, float)):
                raise _Wrong(f"the number of items is a {type(got).__name__}; expected an int")
            if not math.isfinite(got):
                raise _Wrong(f"the number of items is {got}; expected a finite int")
            if got != int(got):
                raise _Wrong(f"{got} is not a whole number of items: round up with math.ceil")
            got = int(got)
            if got == want:
                return
            if got == math.floor(exact) or got == round(exact):
                raise _Wrong("rounded down (or to the nearest): a fractional n rounds UP, or the test falls "
                             "short of the power asked")
            variants = (
                (dict(sides=1), "a one-sided z: the test is two-sided, z_(1-alpha/2) = "
                                "NormalDist().inv_cdf(1 - alpha / 2)"),
                (dict(square=False), "the sum of the two z values is not squared: n = (z_a + z_b)^2 * d / delta^2"),
                (dict(fraction=False), "the difference is in points: divide by 100 to make it a fraction first"),
                (dict(with_power=False), "the power's z is missing: with z_(1-alpha/2) alone the test detects the "
                                         "difference only half the time"),
            )
            for kwargs, words in variants:
                alt = _items(d, points, alpha, power, **kwargs)
                if got in (math.ceil(alt), math.floor(alt), round(alt)) and math.ceil(alt) != want:
                    raise _Wrong(words)
            if got == math.ceil(_items(d ** 0.5, points, alpha, power)):
                raise _Wrong("the disagreement enters as it is, not its square root (n = z^2 * d / delta^2)")
            problem = _number_problem(got, want, "the number of items")
            raise _Wrong(problem or f"the number of items is {got}; expected a different int")
        return _Case(label, run, hidden)

    return _run("items_needed", [
        case(0.2, 5, 0.05, 0.8, "a disagreement of 0.2, a 5-point difference", hidden=False),
        case(0.05, 2, 0.05, 0.8, "methods that rarely disagree, a 2-point difference"),
        case(0.5, 10, 0.01, 0.9, "alpha = 0.01, power = 0.9"),
        case(0.3, 1.5, 0.1, 0.7, "alpha = 0.1, power = 0.7, a difference of 1.5 points"),
    ])


# =================================================================== contaminated items
def _grams(text: str, n: int, lower: bool = True, extra: int = 0) -> list[tuple[str, ...]]:
    words = (text.lower() if lower else text).split()
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1 + extra)]


def _flagged(questions: dict, documents: list, n: int, threshold: float, *, join: bool = False,
             lower: bool = True, extra: int = 0, strict: bool = False) -> set:
    """The reference (keywords at their defaults) and the variants a student may write by mistake."""
    docs = [" ".join(documents)] if join else documents
    seen = {g for doc in docs for g in _grams(doc, n, lower, extra)}
    out = set()
    for key, question in questions.items():
        windows = _grams(question, n, lower, extra)
        if not windows:
            continue
        share = sum(g in seen for g in windows) / len(windows)
        if share > threshold or (share == threshold and not strict):
            out.add(key)
    return out


_STORY = ("the ferry left the harbour at dawn and the gulls followed it out past the lighthouse while "
          "the children counted the waves")
_REWORDED = "the gulls followed the ferry out past the lighthouse"
_EXAMPLE_Q = {
    "chem-1": "What is the chemical symbol of sodium?",
    "geo-4": "Which river flows through the city of Cairo?",
    "bio-2": "What is the name of the process by which plants make food from light?",
    "hist-7": "In which year did the first person walk on the moon?",
}
_EXAMPLE_DOCS = [
    _STORY,
    "quiz night notes: What is the chemical symbol of sodium? answer Na. next round",
    "Plants make their food from light by a process that is called photosynthesis, the name of it.",
    "which river flows through the city of Cairo? The Nile, of course.",
]
_CASE_Q = {
    "a": "Name the largest ocean on Earth.",
    "b": "HOW MANY LEGS DOES A SPIDER HAVE?",
    "c": "What colour is the sky on a clear day?",
}
_CASE_DOCS = [
    "TRIVIA: NAME THE LARGEST OCEAN ON EARTH. the pacific.",
    "how many legs does a spider have? eight, unlike insects with six.",
    "the sky is blue on a clear day, what colour is the sea?",
]
_BOUNDARY_Q = {"split": "one two three four five six", "whole": "red green blue cyan magenta"}
_BOUNDARY_DOCS = ["a list ends with one two three", "four five six starts the next",
                  "colours: red green blue cyan magenta and more"]
_EXACT_Q = {"exact": "birds fly south", "short": "why", "other": "fish swim north today"}
_EXACT_DOCS = ["in autumn birds fly south for the winter", "why not", "fish swim north"]
_THRESHOLD_Q = {"above": "alpha beta gamma delta epsilon zeta", "at": "alpha beta gamma theta iota kappa"}
_THRESHOLD_DOCS = ["greek letters alpha beta gamma delta", "epsilon is not here"]


def check_contaminated(fn: Callable) -> bool:
    """Chapter 11. ``fn(questions, documents, n, threshold) -> set of ids``: the questions (id -> text) whose
    share of word ``n``-gram windows found in the documents is at least ``threshold``. Texts are
    lower-cased and split on whitespace; a question has ``len(words) - n + 1`` windows (one shorter than
    ``n`` words has none and is never flagged); no n-gram of the documents spans two of them. Compared
    with a reference written here from that definition (a list, tuple or set of ids is accepted)."""
    variants = (
        (dict(join=True), "an n-gram spans the end of one document and the start of the next: take each "
                          "document's n-grams on their own"),
        (dict(lower=False), "the matching is case-sensitive: lower-case the questions and the documents"),
        (dict(extra=-1), "a window is missing: a text of m words has m - n + 1 windows (range(len(words) - n "
                         "+ 1)), so a question of exactly n words has one"),
        (dict(extra=1), "one window too many: a text of m words has m - n + 1 windows of n words"),
        (dict(strict=True), "a share exactly at the threshold is flagged too (at least threshold: >=, not >)"),
    )

    def case(questions, documents, n, threshold, label, hidden=True):
        def run():
            q_copy, d_copy = dict(questions), list(documents)
            try:
                got = _call(fn, q_copy, d_copy, n, threshold)
            except _Wrong as error:
                if "ZeroDivisionError" not in str(error):
                    raise
                raise _Wrong(f"{error}: a question with no window (fewer than n words, or exactly n with a window "
                             "count one too low) has a share of 0/0: it is never flagged, skip it") from None
            for before, after, what in ((questions, q_copy, "the questions"), (documents, d_copy, "the documents")):
                changed = _same_input(before, after, what)
                if changed:
                    raise _Wrong(changed)
            if isinstance(got, (dict, str)) or not isinstance(got, (set, frozenset, list, tuple)):
                raise _Wrong(f"the result is a {type(got).__name__}; expected a set of ids")
            got = set(got)
            want = _flagged(questions, documents, n, threshold)
            if got == want:
                return
            if not got <= set(questions):
                raise _Wrong(f"the result holds {len(got - set(questions))} value(s) that are not ids of the "
                             "questions: return the ids (the keys), not the questions' text")
            named = []
            for kwargs, words in variants:
                try:
                    alt = _flagged(questions, documents, n, threshold, **kwargs)
                except ZeroDivisionError:
                    continue
                if alt != want and got == alt:
                    named.append(words)
            for k in (1, 2, 3):
                if k != n and got == _flagged(questions, documents, k, threshold):
                    common = ": with single words, the common ones match every reworded question" if k == 1 else ""
                    named.append(f"that is the answer for n = {k}, not n = {n}{common} (use the n passed in)")
            if named:
                empty = "nothing is flagged; " if not got else ""
                raise _Wrong(empty + (named[0] if len(named) == 1 else
                                      "one of these mistakes gives this answer: " + "; or ".join(named)))
            extra, missing = sorted(got - want), sorted(want - got)
            parts = ([f"{len(extra)} id(s) flagged that are not contaminated"] if extra else []) + (
                [f"{len(missing)} contaminated id(s) not flagged"] if missing else [])
            raise _Wrong("; ".join(parts) + f" (of {len(questions)} questions)")
        return _Case(label, run, hidden)

    return _run("contaminated", [
        case(_EXAMPLE_Q, _EXAMPLE_DOCS, 3, 0.5, "four questions, two planted and one reworded, n = 3",
             hidden=False),
        case(_CASE_Q, _CASE_DOCS, 3, 0.5, "questions and documents in other cases"),
        case(_BOUNDARY_Q, _BOUNDARY_DOCS, 3, 0.75, "a question split across two documents, n = 3"),
        case(_EXACT_Q, _EXACT_DOCS, 3, 0.9, "a question of exactly n words and one shorter than n"),
        case(_THRESHOLD_Q, _THRESHOLD_DOCS, 2, 0.4, "a share exactly at the threshold, n = 2"),
        case({**_EXAMPLE_Q, "story-3": _REWORDED}, _EXAMPLE_DOCS + [_STORY.upper()], 5, 0.4,
             "n = 5, a reworded question that shares short phrases"),
    ])


# =================================================================== quiz
_EVALUATION_KEY = {
    "the format a small model's multiple choice should be scored in (letter/text/chat)": (
        _salted("text"), "Which format asked the model to connect a letter with an option's content, a skill "
                         "small models lack, and which scored the content itself (OLMES's rule)?"),
    "a judge preferring the answer shown first, whatever it says (position bias/length bias/self-preference)": (
        _salted("position bias"), "The preference depends on where the answer stands, not what it says."),
    "how many orders each pair is judged in to measure that bias (one/two)": (
        _salted("two"), "A bias for a position shows only when the same pair is judged with the answers swapped."),
    "does an item both methods get right help a paired test tell them apart (yes/no)": (
        _salted("no"), "McNemar's test looks only at the items on which the two methods disagree."),
}


def check_evaluation_quiz(answers: dict) -> bool:
    """Chapter 11 quiz: scoring formats, position bias and paired tests."""
    return _quiz("evaluation_quiz", answers, _EVALUATION_KEY)
