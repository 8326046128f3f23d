"""Chapter 9 (domain adaptation): the checks that ``exercises/src/09_domain_adaptation.py`` calls,
its quiz key and their private helpers (the shared machinery is in ``_harness.py``)."""

from __future__ import annotations

import math
from typing import Callable

from ._harness import _call, _Case, _number_problem, _quiz, _run, _salted, _Wrong


def _stories_tokenizer(tokenizer):
    if tokenizer is None:
        from ..zoo import load
        _, tokenizer = load("stories-1m", device="cpu")
    return tokenizer


def check_fertility(fn: Callable, tokenizer=None) -> bool:
    """Chapter 9. ``fn(tokenizer, texts) -> float``: tokens per whitespace-separated word of a list of
    texts (no special tokens). Compared with ``llmlab.domain.fertility``; uses the tokenizer of the
    bundled ``stories-1m`` unless one is given."""
    from ..data import load_corpus
    from ..domain import fertility, load_domain_corpus

    tokenizer = _stories_tokenizer(tokenizer)

    def case(texts, label, hidden=True):
        def run():
            got = _call(fn, tokenizer, list(texts))
            want = fertility(tokenizer, list(texts))
            problem = _number_problem(got, want, "the fertility", rel=1e-9)
            if problem and isinstance(got, (int, float)) and not isinstance(got, bool):
                words = sum(len(t.split()) for t in texts)
                chars = sum(len(t) for t in texts)
                tokens = want * words
                if math.isclose(got, words / tokens, rel_tol=1e-9):
                    raise _Wrong("that is words per token; fertility is tokens per word (>= 1 for most text)")
                if math.isclose(got, tokens / chars, rel_tol=1e-9):
                    raise _Wrong("divided by characters; divide by the number of words (split at whitespace)")
                if len(texts) > 1 and math.isclose(
                        got, sum(fertility(tokenizer, t) for t in texts) / len(texts), rel_tol=1e-9):
                    raise _Wrong("averaged the texts' fertilities; pool the tokens and the words of all texts")
            if problem:
                raise _Wrong(problem)
        return _Case(label, run, hidden)

    return _run("fertility", [
        case(load_domain_corpus("validation", "legal")[:5], "five legal documents", hidden=False),
        case(load_corpus("validation")[:5], "five stories (the tokenizer's own kind of text)"),
        case(["Hypertension.", "The patient presented with acute myocardial infarction and was given aspirin."],
             "two medical texts of very different lengths"),
    ])


def check_token_share(fn: Callable, tokenizer=None) -> bool:
    """Chapter 9. ``fn(tokenizer, domain_docs, general_docs) -> float``: the share of all tokens that are
    domain tokens when both lists are trained on together. Compared with ``llmlab.domain.token_share``."""
    from ..data import load_corpus
    from ..domain import load_domain_corpus, token_share

    tokenizer = _stories_tokenizer(tokenizer)
    domain = load_domain_corpus("validation", "financial")
    general = load_corpus("validation")

    def case(d, g, label, hidden=True):
        def run():
            got = _call(fn, tokenizer, list(d), list(g))
            want = token_share(tokenizer, d, g)
            problem = _number_problem(got, want, "the token share", rel=1e-9)
            if problem and isinstance(got, (int, float)) and not isinstance(got, bool):
                if d and g and math.isclose(got, len(d) / (len(d) + len(g)), rel_tol=1e-9):
                    raise _Wrong("that is the share of documents; count tokens (domain documents are longer)")
                chars = sum(map(len, d)) + sum(map(len, g))
                words = sum(len(x.split()) for x in d) + sum(len(x.split()) for x in g)
                if chars and math.isclose(got, sum(map(len, d)) / chars, rel_tol=1e-9):
                    raise _Wrong("that is the share of characters; count tokens with the tokenizer")
                if words and math.isclose(got, sum(len(x.split()) for x in d) / words, rel_tol=1e-9):
                    raise _Wrong("that is the share of words; count tokens with the tokenizer")
                if 0 < want < 1 and math.isclose(got, want / (1 - want), rel_tol=1e-9):
                    raise _Wrong("divided by the general tokens only; divide by all tokens")
            if problem:
                raise _Wrong(problem)
        return _Case(label, run, hidden)

    return _run("token_share", [
        case(domain[:10], general[:10], "10 financial documents and 10 stories", hidden=False),
        case(domain[:3], general[:30], "3 financial documents and 30 stories"),
        case(domain[:5], [], "domain documents only"),
    ])


def check_docs_for_share(fn: Callable) -> bool:
    """Chapter 9. ``fn(target_share, domain_tokens_per_doc, general_tokens_per_doc, n_docs) -> float``: how
    many of ``n_docs`` documents must be domain documents for domain tokens to make up ``target_share``
    of all tokens. Checked by computing the share that the answer gives."""
    def case(s, td, tg, n, label, hidden=True):
        def run():
            got = _call(fn, s, td, tg, n)
            if isinstance(got, bool) or not isinstance(got, (int, float)):
                raise _Wrong(f"returned a {type(got).__name__}; expected a number of documents")
            if not 0 <= got <= n:
                raise _Wrong(f"{got:.4g} documents: a number of documents must be between 0 and {n}")
            share = got * td / (got * td + (n - got) * tg) if got * td + (n - got) * tg else 0.0
            if not math.isclose(share, s, rel_tol=1e-6, abs_tol=1e-9):
                hint = ""
                exact = s * n * tg / (td * (1 - s) + s * tg)
                if float(got).is_integer() and not float(exact).is_integer() and abs(got - exact) <= 1:
                    hint = " (rounded to whole documents; return the exact, fractional number)"
                if math.isclose(got, s * n, rel_tol=1e-9):
                    hint = " (that is the share of documents; the documents have different lengths)"
                raise _Wrong(f"with {got:.4g} domain documents the domain tokens are {share:.4f} of all tokens, "
                             f"not {s}{hint}")
        return _Case(label, run, hidden)

    return _run("docs_for_share", [
        case(0.51, 120, 80, 1000, "51% domain tokens, 120 vs 80 tokens per document, 1000 documents", hidden=False),
        case(0.5, 100, 100, 10, "documents of equal length"),
        case(1.0, 50, 200, 100, "only domain tokens"),
        case(0.2, 300, 60, 5000, "long domain documents"),
    ])


_DOMAIN_KEY = {
    "a general tokenizer on specialist text: fertility goes (up or down)": (
        _salted("up"), "Rare words are spelled out in more pieces."),
    "share of financial tokens in BloombergGPT's training data, in percent (nearest integer)": (
        _salted("51"), "Wu et al. 2023: about half."),
    "what mixing general text into domain training protects (general performance, training speed or tokenizer size)": (
        _salted("general performance"), "What does a model forget when trained on one domain only?"),
}


def check_domain_quiz(answers: dict) -> bool:
    """Chapter 9 quiz: domain adaptation."""
    return _quiz("domain_quiz", answers, _DOMAIN_KEY)
