"""Checks on what goes into a model and what comes out (chapter 15).

NeMo Guardrails, in the NVIDIA talk of the course, puts programmable rails around a
model: some on the user's input, some on the model's output. This module writes two of
each kind's simplest forms for a retrieval assistant, so that each can be measured on
labelled questions: what it catches, and what it blocks wrongly.

- Input, "is this question about the collection at all?":
  :func:`similarity_check` refuses a question whose nearest document is less similar
  than a threshold (:func:`fit_threshold` picks one on labelled questions);
  :func:`names_check` refuses a question naming something (a capitalised word) that no
  document mentions.
- Output, "does a passage say this?": :func:`supported` passes a reply only when its
  content words that are not in the question all occur in one retrieved passage.
"""

from __future__ import annotations

import re

from . import _checks
from .rag import content_words

# Capitalised words that name nothing: question words and sentence openers
_NOT_NAMES = frozenset("what which who whom whose when where why how in on at of for from by is are was were did "
                       "does do the a an name give tell and or i".split())


def _question(question) -> str:
    _checks.string("question", question, allow_empty=False)
    return question


def _scores(name: str, values) -> list[float]:
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)) or not values:
        raise _checks.ArgumentTypeError(f"{name} must be a non-empty list of numbers")
    return [_checks.number(f"each of {name}", v) for v in values]


# --------------------------------------------------------------------------- input
def top_similarity(retriever, question: str) -> float:
    """The cosine similarity of ``question`` to its nearest document."""
    _question(question)
    if not hasattr(retriever, "search"):
        raise _checks.ArgumentTypeError(f"retriever must be a rag.Retriever, got {type(retriever).__name__}")
    return retriever.search(question, 1)[0][1]


def similarity_check(retriever, question: str, threshold: float) -> tuple[bool, str]:
    """``(allowed, reason)``: refused when the nearest document's cosine similarity is below
    ``threshold``."""
    threshold = _checks.number("threshold", threshold, -1.0, 1.0)
    top = top_similarity(retriever, question)
    if top < threshold:
        return False, f"nothing in the collection is close (best cosine {top:.2f} < {threshold:.2f})"
    return True, f"nearest document at cosine {top:.2f}"


def fit_threshold(in_scope: list[float], out_of_scope: list[float]) -> float:
    """The threshold on top similarity that best separates labelled questions: it maximises the mean of
    the share of in-scope questions let through and the share of out-of-scope ones refused (balanced
    accuracy), trying a cut midway between each pair of neighbouring scores; ties go to the lower cut."""
    a, b = _scores("in_scope", in_scope), _scores("out_of_scope", out_of_scope)
    values = sorted(set(a + b))
    cuts = [values[0] - 1e-6] + [(x + y) / 2 for x, y in zip(values, values[1:])] + [values[-1] + 1e-6]

    def balanced(cut: float) -> float:
        return (sum(s >= cut for s in a) / len(a) + sum(s < cut for s in b) / len(b)) / 2

    return max(cuts, key=lambda c: (balanced(c), -c))


def names(question: str) -> list[str]:
    """The capitalised words of ``question`` that may name something, without a possessive 's and
    without question words and openers such as What or In; in order, without repeats."""
    found = []
    for w in re.findall(r"[A-Z][\w'\u2019-]*", _question(question)):
        w = re.sub(r"['\u2019]s$", "", w).strip("'\u2019-")  # Velmora's -> Velmora
        if w.lower() not in _NOT_NAMES and w not in found:
            found.append(w)
    return found


def names_check(question: str, documents: list[str]) -> tuple[bool, str]:
    """``(allowed, reason)``: refused when the question names something (see :func:`names`) that no
    document mentions (case-insensitive, whole words)."""
    if isinstance(documents, str) or not isinstance(documents, (list, tuple)) or not documents:
        raise _checks.ArgumentTypeError("documents must be a non-empty list of texts")
    text = " " + " ".join(re.findall(r"[\w'-]+", " ".join(documents).lower())) + " "
    missing = [n for n in names(question) if f" {n.lower()} " not in text]
    if missing:
        return False, f"names {', '.join(missing)}, which no document mentions"
    return True, "every name is in the collection"


# --------------------------------------------------------------------------- output
def supported(reply: str, passages: list[str], question: str) -> tuple[bool, str]:
    """``(passed, reason)``: the reply passes when the content words it adds to the question (its words
    minus stopwords, minus the question's words) all occur in one of ``passages``.

    A lexical check, cheap and blunt: it cannot tell a passage that states the reply from one
    that merely contains its words, and an answer worded differently from its passage fails.
    """
    _checks.string("reply", reply)
    passages = _checks.strings("passages", passages)
    new = content_words(reply) - content_words(_question(question))
    if not new:
        return False, "the reply adds nothing to the question"
    for i, p in enumerate(passages, 1):
        if new <= content_words(p):
            return True, f"passage {i} holds {', '.join(sorted(new))}"
    return False, f"no passage holds all of {', '.join(sorted(new))}"


__all__ = ["top_similarity", "similarity_check", "fit_threshold", "names", "names_check", "supported"]
