"""A catalogue of wrong answers for the exercise checks of chapter 11 (evaluation).

Every entry is a function (or a quiz answer) a student could plausibly write: the logits read
at the token's own position, softmax for log_softmax, a mean for a sum, the wrong length unit,
a one-sided z, a rounding down, n-grams across documents, case-sensitive matching, a window
count off by one. Each is run through the real check, which must reject it (return False) and
print a message that names the mistake. Right answers written differently from the solutions
must be accepted, and the checks' own references must agree with the library's functions.
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from llmlab import exercises as ex
from llmlab.exercises import ch11_evaluation as ch11


def run_check(check: Callable, answer: Any) -> tuple[bool, str]:
    """Run ``check`` on ``answer``; return its verdict and printed feedback."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        verdict = check(answer)
    return verdict, out.getvalue()


@dataclass
class Wrong:
    check: str     # name of the check in llmlab.exercises
    mistake: str   # the mistake, in words (the test id)
    answer: Any    # the student's function, or a quiz dict
    names: str     # a distinctive part of the feedback that names the mistake


# =================================================================== scoring an option
def _score(logits, n_context, ids, shift=1, norm=lambda z: torch.log_softmax(z, dim=-1), reduce=torch.sum,
           skip_first=False):
    values = norm(logits)
    ids = torch.tensor(ids)
    positions = torch.arange(n_context - shift, n_context - shift + len(ids))
    if skip_first:
        positions, ids = positions[1:], ids[1:]
    return reduce(values[positions, ids]).item()


def _in_place(logits, n_context, ids):
    logits -= logits.logsumexp(-1, keepdim=True)  # normalises the caller's tensor
    return logits[torch.arange(n_context - 1, n_context - 1 + len(ids)), torch.tensor(ids)].sum().item()


def _option_by_loop(logits, n_context, ids):  # right, written with a loop and F.cross_entropy
    total = 0.0
    for k, token in enumerate(ids):
        total -= F.cross_entropy(logits[n_context - 1 + k].double(), torch.tensor(token)).item()
    return total


LOGPROB = [
    Wrong("check_option_logprob", "read at the token's own position",
          lambda lg, n, ids: _score(lg, n, ids, shift=0), "positions n_context - 1"),
    Wrong("check_option_logprob", "softmax instead of log_softmax",
          lambda lg, n, ids: _score(lg, n, ids, norm=lambda z: torch.softmax(z, -1)), "softmax instead of log_softmax"),
    Wrong("check_option_logprob", "mean instead of sum",
          lambda lg, n, ids: _score(lg, n, ids, reduce=torch.mean), "the mean over the option's tokens"),
    Wrong("check_option_logprob", "first option token forgotten",
          lambda lg, n, ids: _score(lg, n, ids, skip_first=True), "first option token is missing"),
    Wrong("check_option_logprob", "raw logits",
          lambda lg, n, ids: _score(lg, n, ids, norm=lambda z: z), "raw logits"),
    Wrong("check_option_logprob", "log_softmax over dim 0",
          lambda lg, n, ids: _score(lg, n, ids, norm=lambda z: torch.log_softmax(z, dim=0)), "wrong dimension"),
    Wrong("check_option_logprob", "normalised in place", _in_place, "in-place operation"),
]

PER_CHAR = [
    Wrong("check_per_char_logprob", "per token",
          lambda lg, n, ids, opt: _score(lg, n, ids) / len(ids), "divided by the number of tokens"),
    Wrong("check_per_char_logprob", "per word",
          lambda lg, n, ids, opt: _score(lg, n, ids) / len(opt.split()), "divided by the number of words"),
    Wrong("check_per_char_logprob", "per UTF-8 byte",
          lambda lg, n, ids, opt: _score(lg, n, ids) / len(opt.encode()), "UTF-8 bytes"),
    Wrong("check_per_char_logprob", "multiplied by the length",
          lambda lg, n, ids, opt: _score(lg, n, ids) * len(opt), "multiplied by the length"),
    Wrong("check_per_char_logprob", "no shift, then per character",
          lambda lg, n, ids, opt: _score(lg, n, ids, shift=0) / len(opt), "positions n_context - 1"),
]


# =================================================================== items a difference needs
def _n(d, points, alpha, power, z_alpha=None, square=True, scale=100, rounding=math.ceil, root=False):
    from scipy.stats import norm

    z = (norm.ppf(1 - alpha / 2) if z_alpha is None else z_alpha(alpha)) + norm.ppf(power)
    return rounding((z ** 2 if square else z) * (math.sqrt(d) if root else d) / (points / scale) ** 2)


def _no_power(d, points, alpha, power):
    from scipy.stats import norm

    return math.ceil(norm.ppf(1 - alpha / 2) ** 2 * d / (points / 100) ** 2)


def _one_sided(alpha):
    from scipy.stats import norm

    return norm.ppf(1 - alpha)


ITEMS = [
    Wrong("check_items_needed", "one-sided z", lambda d, p, a, pw: _n(d, p, a, pw, z_alpha=_one_sided), "one-sided"),
    Wrong("check_items_needed", "sum of z not squared", lambda d, p, a, pw: _n(d, p, a, pw, square=False),
          "not squared"),
    Wrong("check_items_needed", "rounded down", lambda d, p, a, pw: _n(d, p, a, pw, rounding=math.floor),
          "rounded down"),
    Wrong("check_items_needed", "rounded to the nearest", lambda d, p, a, pw: _n(d, p, a, pw, rounding=round),
          "to the nearest"),
    Wrong("check_items_needed", "truncated with int", lambda d, p, a, pw: _n(d, p, a, pw, rounding=int),
          "rounded down"),
    Wrong("check_items_needed", "points used as a fraction", lambda d, p, a, pw: _n(d, p, a, pw, scale=1),
          "in points"),
    Wrong("check_items_needed", "power's z forgotten", _no_power, "power's z is missing"),
    Wrong("check_items_needed", "square root of the disagreement", lambda d, p, a, pw: _n(d, p, a, pw, root=True),
          "not its square root"),
    Wrong("check_items_needed", "not rounded", lambda d, p, a, pw: _n(d, p, a, pw, rounding=float),
          "round up with math.ceil"),
]


# =================================================================== contaminated items
def _windows(text, n, lower=True, extra=0):
    words = text.lower().split() if lower else text.split()
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1 + extra)]


def _contaminated(questions, documents, n, threshold, *, join=False, lower=True, extra=0, strict=False,
                  fixed_n=None, guard=True):
    n = fixed_n or n
    docs = [" ".join(documents)] if join else documents
    seen = set()
    for doc in docs:
        seen.update(_windows(doc, n, lower))
    out = set()
    for key, question in questions.items():
        windows = _windows(question, n, lower, extra)
        if guard and not windows:
            continue
        share = sum(w in seen for w in windows) / len(windows)
        if share > threshold or (share == threshold and not strict):
            out.add(key)
    return out


def _texts_not_ids(questions, documents, n, threshold):
    return {questions[k] for k in _contaminated(questions, documents, n, threshold)}


def _drops_clean_items(questions, documents, n, threshold):
    flagged = _contaminated(questions, documents, n, threshold)
    for key in list(questions):
        if key not in flagged:
            del questions[key]  # changes the caller's dict
    return set(questions)


def _contaminated_counter(questions, documents, n, threshold):  # right, written with ngram lists per doc
    grams = set()
    for doc in documents:
        w = doc.lower().split()
        grams |= set(zip(*(w[i:] for i in range(n))))
    found = []
    for key, q in questions.items():
        w = q.lower().split()
        windows = list(zip(*(w[i:] for i in range(n))))
        if len(windows) and np.mean([g in grams for g in windows]) >= threshold:
            found.append(key)
    return sorted(found)


CONTAMINATED = [
    Wrong("check_contaminated", "n-grams across documents", lambda q, d, n, t: _contaminated(q, d, n, t, join=True),
          "spans the end of one document"),
    Wrong("check_contaminated", "unigrams", lambda q, d, n, t: _contaminated(q, d, n, t, fixed_n=1),
          "n = 1"),
    Wrong("check_contaminated", "n of the example hard-coded", lambda q, d, n, t: _contaminated(q, d, n, t, fixed_n=3),
          "not n = 5"),
    Wrong("check_contaminated", "case-sensitive", lambda q, d, n, t: _contaminated(q, d, n, t, lower=False),
          "case-sensitive"),
    Wrong("check_contaminated", "one window too few", lambda q, d, n, t: _contaminated(q, d, n, t, extra=-1),
          "a window is missing"),
    Wrong("check_contaminated", "one window too few, 0/0",
          lambda q, d, n, t: _contaminated(q, d, n, t, extra=-1, guard=False), "0/0"),
    Wrong("check_contaminated", "one window too many", lambda q, d, n, t: _contaminated(q, d, n, t, extra=1),
          "one window too many"),
    Wrong("check_contaminated", "strictly above the threshold",
          lambda q, d, n, t: _contaminated(q, d, n, t, strict=True), ">=, not >"),
    Wrong("check_contaminated", "the questions' text returned", _texts_not_ids, "not ids of the questions"),
    Wrong("check_contaminated", "clean items deleted from the input", _drops_clean_items, "changed the questions"),
]


# =================================================================== quiz
QUIZ = {
    "the format a small model's multiple choice should be scored in (letter/text/chat)": "text",
    "a judge preferring the answer shown first, whatever it says (position bias/length bias/self-preference)":
        "position bias",
    "how many orders each pair is judged in to measure that bias (one/two)": "two",
    "does an item both methods get right help a paired test tell them apart (yes/no)": "no",
}
_Q = list(QUIZ)

QUIZ_WRONG = [
    Wrong("check_evaluation_quiz", "letter format for a small model", {**QUIZ, _Q[0]: "letter"}, "OLMES"),
    Wrong("check_evaluation_quiz", "length bias", {**QUIZ, _Q[1]: "length bias"}, "where the answer stands"),
    Wrong("check_evaluation_quiz", "one order", {**QUIZ, _Q[2]: "one"}, "answers swapped"),
    Wrong("check_evaluation_quiz", "agreements help the test", {**QUIZ, _Q[3]: "yes"}, "disagree"),
]

CATALOGUE = LOGPROB + PER_CHAR + ITEMS + CONTAMINATED + QUIZ_WRONG


@pytest.mark.parametrize("wrong", CATALOGUE, ids=[f"{w.check[6:]}-{w.mistake}" for w in CATALOGUE])
def test_the_check_rejects_the_wrong_answer_and_names_the_mistake(wrong):
    verdict, out = run_check(getattr(ex, wrong.check), wrong.answer)
    assert verdict is False, f"accepted: {wrong.mistake}\n{out}"
    assert wrong.names in out, f"the feedback does not name the mistake ({wrong.names!r}):\n{out}"
    assert "inf%" not in out and "by 100%" not in out, out


def test_every_check_of_chapter_11_has_at_least_three_wrong_answers():
    checks = {n for n in vars(ch11) if n.startswith("check_") and n in ex.__all__}
    counts = {n: sum(w.check == n for w in CATALOGUE) for n in checks}
    assert len(checks) == 5 and all(c >= 3 for c in counts.values()), counts


# ------------------------------------------------------------------ right answers written another way
RIGHT = [
    ("check_option_logprob", _option_by_loop),
    ("check_option_logprob", lambda lg, n, ids: torch.log_softmax(lg, -1)[n - 1:n - 1 + len(ids)]
     .gather(1, torch.tensor(ids)[:, None]).sum()),  # a 0-dim tensor in the logits' dtype
    ("check_per_char_logprob", lambda lg, n, ids, opt: _option_by_loop(lg, n, ids) / len(opt)),
    ("check_items_needed", lambda d, p, a, pw: float(np.ceil(_n(d, p, a, pw, rounding=float)))),
    ("check_contaminated", _contaminated_counter),
    ("check_evaluation_quiz", {**QUIZ, _Q[1]: "Position-bias", _Q[2]: 2, _Q[0]: "Text."}),
]


@pytest.mark.parametrize("check, answer", RIGHT, ids=[f"{c[6:]}-{i}" for i, (c, _) in enumerate(RIGHT)])
def test_a_right_answer_written_another_way_is_accepted(check, answer):
    verdict, out = run_check(getattr(ex, check), answer)
    assert verdict is True, out


# ------------------------------------------------------------------ the checks' references against the library
def test_the_option_reference_agrees_with_the_harness_style_scorer():
    from llmlab import evaluation, zoo

    model, tokenizer = zoo.load("stories-1m", device="cpu")
    context, choices = "Lily had a red ball. The ball was", ["red", "very blue"]
    scores = evaluation.choice_scores(model, tokenizer, context, choices, delimiter=" ")
    for choice, score in zip(choices, scores):
        ctx = tokenizer(context, add_special_tokens=False)["input_ids"]
        full = tokenizer(context + " " + choice, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([full])).logits[0]
        ours = ch11._shifted(logits, len(ctx), full[len(ctx):])
        assert len(full) - len(ctx) == score.n_tokens
        assert math.isclose(ours, score.logprob, rel_tol=1e-4, abs_tol=1e-4)
        assert math.isclose(ours / len(choice), score.logprob_per_char, rel_tol=1e-4, abs_tol=1e-4)


@pytest.mark.parametrize("d, points, alpha, power", [(0.2, 5, 0.05, 0.8), (0.05, 2, 0.05, 0.8),
                                                     (0.5, 10, 0.01, 0.9), (0.3, 1.5, 0.1, 0.7)])
def test_the_items_reference_inverts_detectable_difference(d, points, alpha, power):
    from llmlab import stats

    n = math.ceil(ch11._items(d, points, alpha, power))
    assert stats.detectable_difference(n, d, alpha, power) <= points / 100
    assert stats.detectable_difference(n - 1, d, alpha, power) > points / 100


def test_the_contamination_reference_agrees_with_ngram_overlap():
    from llmlab.memorization import ngram_hashes, ngram_overlap

    cases = [(ch11._EXAMPLE_Q, ch11._EXAMPLE_DOCS, 3, 0.5), (ch11._CASE_Q, ch11._CASE_DOCS, 3, 0.5),
             (ch11._BOUNDARY_Q, ch11._BOUNDARY_DOCS, 3, 0.75), (ch11._EXACT_Q, ch11._EXACT_DOCS, 3, 0.9),
             (ch11._THRESHOLD_Q, ch11._THRESHOLD_DOCS, 2, 0.4)]
    for questions, documents, n, threshold in cases:
        vocab: dict[str, int] = {}

        def ids(text):
            return [vocab.setdefault(w, len(vocab)) for w in text.lower().split()]

        reference = ngram_hashes([ids(doc) for doc in documents], n)
        flagged = set()
        for key, question in questions.items():
            q = ids(question)
            if len(q) < n:
                continue
            found, total = ngram_overlap(q, reference, n)
            if found / total >= threshold:
                flagged.add(key)
        assert flagged == ch11._flagged(questions, documents, n, threshold), (questions, flagged)


def test_each_contamination_case_separates_the_mistakes_it_is_there_for():
    assert ch11._flagged(ch11._BOUNDARY_Q, ch11._BOUNDARY_DOCS, 3, 0.75, join=True) != \
        ch11._flagged(ch11._BOUNDARY_Q, ch11._BOUNDARY_DOCS, 3, 0.75)
    assert ch11._flagged(ch11._CASE_Q, ch11._CASE_DOCS, 3, 0.5, lower=False) == set()
    assert ch11._flagged(ch11._EXACT_Q, ch11._EXACT_DOCS, 3, 0.9) == {"exact"}
    assert ch11._flagged(ch11._THRESHOLD_Q, ch11._THRESHOLD_DOCS, 2, 0.4, strict=True) == {"above"}
