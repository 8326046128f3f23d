"""A catalogue of wrong answers for the exercise checks of chapter 15 (augmenting a model: retrieval and tools).

Every entry is a function (or a quiz answer) a student could plausibly write: a cosine search that ranks
dot products, normalises only the documents or only the query, sorts ascending, ranks by a distance,
returns one pair too many or too few, loses the order of ties (torch.topk), or returns the cosines, the
indices or torch.topk's pair instead of (index, cosine) pairs; recall at k computed as precision, with
the k-th place off by one, a missing gold document counted as found or crashing list.index, divided by
the documents retrieved; a calculator call run with eval, on the last call rather than the first,
keeping the reply after the closing tag, showing 1104.0, ignoring or running a tag that never closes,
raising on a refused expression; an output guardrail that lets two passages combine, keeps the
question's words or the stopwords, matches with case or inside longer words, or passes a reply that
adds nothing. Each is run through the real check, which must reject it (return False) and print a
message that names the mistake. Right answers written differently from the solutions must be accepted,
and the checks' own references must agree with the library (``llmlab.rag``, ``llmlab.tools``,
``llmlab.guardrails``) and with values worked out by hand.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from llmlab import exercises as ex
from llmlab import guardrails, rag, tools
from llmlab.exercises import ch15_augmentation as ch15
from llmlab.lifecycle import calculator
from llmlab.retrieval import STOPWORDS

pytestmark = pytest.mark.usefixtures("one_thread")


def run_check(check: Callable, answer: Any) -> tuple[bool, str]:
    """Run ``check`` on ``answer`` (a tuple: several functions); return its verdict and printed feedback."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        verdict = check(*answer) if isinstance(answer, tuple) else check(answer)
    return verdict, out.getvalue()


@dataclass
class Wrong:
    check: str     # name of the check in llmlab.exercises
    mistake: str   # the mistake, in words (the test id)
    answer: Any    # the student's function, a tuple of functions, or a quiz dict
    names: str     # a distinctive part of the feedback that names the mistake


# =================================================================== cosine search
def _cosine(docs, query):
    return (docs / docs.norm(dim=1, keepdim=True)) @ (query / query.norm())


def _pairs_of(scores, order, k):
    return [(int(i), float(scores[i])) for i in order[:k]]


def _search(docs, query, k):
    scores = _cosine(docs, query)
    return _pairs_of(scores, torch.sort(scores, descending=True, stable=True).indices, k)


def _ranked_by(score_fn, descending=True):
    def search(docs, query, k):
        scores = score_fn(docs, query)
        return _pairs_of(scores, torch.sort(scores, descending=descending, stable=True).indices, k)
    return search


def _topk(docs, query, k):  # right scores, but torch.topk's order among ties
    scores = _cosine(docs, query)
    return _pairs_of(scores, torch.topk(scores, k).indices, k)


def _ascending_reversed(docs, query, k):  # sorted ascending, then the list reversed: ties last index first
    scores = _cosine(docs, query)
    return _pairs_of(scores, torch.sort(scores, stable=True).indices.flip(0), k)


def _normalised_in_place(docs, query, k):
    docs /= docs.norm(dim=1, keepdim=True)
    return _search(docs, query, k)


COSINE = [
    Wrong("check_cosine_search", "dot product without normalising", _ranked_by(lambda d, q: d @ q),
          "those are dot products"),
    Wrong("check_cosine_search", "only the documents normalised",
          _ranked_by(lambda d, q: (d / d.norm(dim=1, keepdim=True)) @ q), "only the documents are normalised"),
    Wrong("check_cosine_search", "only the query normalised", _ranked_by(lambda d, q: d @ (q / q.norm())),
          "only the query is normalised"),
    Wrong("check_cosine_search", "ascending order", _ranked_by(_cosine, descending=False), "ascending"),
    Wrong("check_cosine_search", "Euclidean distance, nearest first",
          _ranked_by(lambda d, q: (d - q).norm(dim=1), descending=False), "Euclidean distance"),
    Wrong("check_cosine_search", "cosine distance as the score",
          _ranked_by(lambda d, q: 1 - _cosine(d, q), descending=False), "cosine distances"),
    Wrong("check_cosine_search", "k + 1 pairs", lambda d, q, k: _search(d, q, k + 1), "one pair too many"),
    Wrong("check_cosine_search", "k - 1 pairs", lambda d, q, k: _search(d, q, k - 1), "one pair too few"),
    Wrong("check_cosine_search", "torch.topk's order among ties", _topk, "not in index order"),
    Wrong("check_cosine_search", "ties reversed by sorting ascending", _ascending_reversed,
          "reverses ties too"),
    Wrong("check_cosine_search", "torch.topk's result returned", lambda d, q, k: torch.topk(_cosine(d, q), k),
          "torch.topk returns"),
    Wrong("check_cosine_search", "the cosines alone", lambda d, q, k: [c for _, c in _search(d, q, k)],
          "the cosines alone"),
    Wrong("check_cosine_search", "the indices alone", lambda d, q, k: [i for i, _ in _search(d, q, k)],
          "the indices alone"),
    Wrong("check_cosine_search", "pairs (cosine, index)", lambda d, q, k: [(c, i) for i, c in _search(d, q, k)],
          "(cosine, index)"),
    Wrong("check_cosine_search", "indices counted from 1",
          lambda d, q, k: [(i + 1, c) for i, c in _search(d, q, k)], "count from 1"),
    Wrong("check_cosine_search", "documents normalised in place", _normalised_in_place, "changed doc_vectors"),
]


# =================================================================== recall at k
def _recall(rankings, gold, k):
    return sum(g in r[:k] for r, g in zip(rankings, gold)) / len(gold)


def _index_or_zero(ranking, g):  # a missing gold document at index 0: "found" first
    return ranking.index(g) if g in ranking else 0


def _precision(rankings, gold, k):
    return sum(g in r[:k] for r, g in zip(rankings, gold)) / (len(gold) * k)


def _rank_le_k_zero_based(rankings, gold, k):  # the 0-based index compared with k: one place too many
    return sum(g in r and r.index(g) <= k for r, g in zip(rankings, gold)) / len(gold)


def _one_too_few(rankings, gold, k):  # the 1-based rank compared with < k
    return sum(g in r and r.index(g) + 1 < k for r, g in zip(rankings, gold)) / len(gold)


def _missing_found(rankings, gold, k):
    return sum(_index_or_zero(r, g) < k for r, g in zip(rankings, gold)) / len(gold)


def _index_raises(rankings, gold, k):
    return sum(r.index(g) < k for r, g in zip(rankings, gold)) / len(gold)


def _per_retrieved(rankings, gold, k):
    return sum(g in r[:k] for r, g in zip(rankings, gold)) / sum(len(r) for r in rankings)


def _sorted_in_place(rankings, gold, k):  # right value, but the caller's rankings are sorted
    for r in rankings:
        r.sort()
    return 0.0 if not rankings else _recall(rankings, gold, k)


RECALL = [
    Wrong("check_recall_at_k", "precision at k", _precision, "precision at k"),
    Wrong("check_recall_at_k", "0-based index <= k", _rank_le_k_zero_based, "one position too many"),
    Wrong("check_recall_at_k", "1-based rank < k", _one_too_few, "one position too few"),
    Wrong("check_recall_at_k", "gold missing counted as found", _missing_found, "counts as found"),
    Wrong("check_recall_at_k", "list.index on a missing gold document", _index_raises, "count that question as a miss"),
    Wrong("check_recall_at_k", "mean over the retrieved documents", _per_retrieved,
          "divided by the documents retrieved"),
    Wrong("check_recall_at_k", "the number of questions found",
          lambda r, g, k: sum(x in y[:k] for y, x in zip(r, g)), "the number of questions found"),
    Wrong("check_recall_at_k", "a percent", lambda r, g, k: 100 * _recall(r, g, k), "a percent"),
    Wrong("check_recall_at_k", "k ignored", lambda r, g, k: sum(x in y for y, x in zip(r, g)) / len(g),
          "k is ignored"),
    Wrong("check_recall_at_k", "rankings sorted in place", _sorted_in_place, "changed the rankings"),
]


# =================================================================== a calculator call
def _shown(value):
    return str(int(value)) if isinstance(value, float) and value.is_integer() else (
        f"{value:.6g}" if isinstance(value, float) else str(value))


def _run_tool(text, *, pick="first", keep_rest=False, evaluate=calculator, show=_shown, unclosed="error",
              strip=True, catch=True, wrap=True):
    """The right answer (keywords at their defaults) or a likely mistake."""
    calls = list(re.finditer(r"<calculator>(.*?)</calculator>", text, re.S))
    if not calls:
        if "<calculator>" not in text:
            return None
        if unclosed == "none":
            return None
        if unclosed == "run":
            expression = text.split("<calculator>", 1)[1]
            return text + f"<result>{show(evaluate(expression.strip()))}</result>"
        return text + "<result>error: the call is not closed</result>"
    call = calls[0] if pick == "first" else calls[-1]
    expression = call.group(1).strip() if strip else call.group(1)
    head, rest = text[:call.end()], text[call.end():]
    try:
        value = show(evaluate(expression))
    except Exception as err:  # noqa: BLE001
        if not catch:
            raise
        value = f"error: {err}"
    result = f"<result>{value}</result>" if wrap else value
    return head + result + (rest if keep_rest else "")


def _appended_at_end(text):  # the right result, put after everything the model wrote
    out = _run_tool(text)
    if out is None or "</calculator>" not in text:
        return out
    return text + out[text.index("</calculator>") + len("</calculator>"):]


def _eval(expression):  # what the calculator must never be: Python itself
    return eval(expression)  # noqa: S307 -- the mistake this entry stands for


TOOL = [
    Wrong("check_tool_call", "the last call run", lambda t: _run_tool(t, pick="last"), "LAST call"),
    Wrong("check_tool_call", "the text after the closing tag kept", lambda t: _run_tool(t, keep_rest=True),
          "after the closing tag"),
    Wrong("check_tool_call", "the result appended after the whole reply", _appended_at_end,
          "after the closing tag"),
    Wrong("check_tool_call", "Python's eval", lambda t: _run_tool(t, evaluate=_eval), "eval"),
    Wrong("check_tool_call", "1104.0", lambda t: _run_tool(t, show=str), "without a decimal point"),
    Wrong("check_tool_call", "an unclosed tag taken for no call", lambda t: _run_tool(t, unclosed="none"),
          "malformed call"),
    Wrong("check_tool_call", "an unclosed tag run anyway", lambda t: _run_tool(t, unclosed="run"),
          "call never closes"),
    Wrong("check_tool_call", "a refused expression raises", lambda t: _run_tool(t, catch=False), "do not raise"),
    Wrong("check_tool_call", "spaces not stripped", lambda t: _run_tool(t, strip=False), "stripped"),
    Wrong("check_tool_call", "the value without its tags", lambda t: _run_tool(t, wrap=False),
          "wrap it in <result>"),
    Wrong("check_tool_call", "no call: the text unchanged", lambda t: _run_tool(t) if "<calculator>" in t else t,
          "return None"),
]


# =================================================================== the output guardrail
def _words(text):
    return set(re.findall(r"[a-z0-9]+", text.lower())) - STOPWORDS


def _supported(reply, passages, question, words=_words):
    new = words(reply) - words(question)
    return bool(new) and any(new <= words(p) for p in passages)


def _combined(reply, passages, question):
    new = _words(reply) - _words(question)
    return bool(new) and new <= set().union(*map(_words, passages))


def _question_kept(reply, passages, question):
    new = _words(reply)
    return bool(new) and any(new <= _words(p) for p in passages)


def _nothing_new(reply, passages, question):  # an empty set is a subset of every passage's words
    new = _words(reply) - _words(question)
    return any(new <= _words(p) for p in passages)


def _substring(reply, passages, question):
    new = _words(reply) - _words(question)
    return bool(new) and any(all(w in p.lower() for w in new) for p in passages)


def _with(words):
    return words, lambda r, p, q: _supported(r, p, q, words)


def _with_stopwords(text):
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def _case_kept(text):
    return {w for w in re.findall(r"[A-Za-z0-9]+", text) if w not in STOPWORDS}


def _split(text):
    return {w for w in text.lower().split() if w not in STOPWORDS}


def _letters(text):
    return set(re.findall(r"[a-z]+", text.lower())) - STOPWORDS


def _passages_cleared(reply, passages, question):  # right verdict, but the caller's list is emptied
    verdict = _supported(reply, passages, question)
    passages.clear()
    return verdict


GUARD = [
    Wrong("check_supported", "words from two passages combined", (_words, _combined), "ONE passage"),
    Wrong("check_supported", "the question's words not removed", (_words, _question_kept),
          "question's own words are not removed"),
    Wrong("check_supported", "stopwords not removed", _with(_with_stopwords), "stopwords are kept"),
    Wrong("check_supported", "case-sensitive matching", _with(_case_kept), "case is kept"),
    Wrong("check_supported", "a reply with nothing new passes", (_words, _nothing_new), "adds no word"),
    Wrong("check_supported", "split at spaces", _with(_split), "punctuation and all"),
    Wrong("check_supported", "words matched inside longer words", (_words, _substring), "whole words"),
    Wrong("check_supported", "digits dropped", _with(_letters), "digits are dropped"),
    Wrong("check_supported", "case-sensitive supported only",
          (_words, lambda r, p, q: _supported(r, p, q, _case_kept)), "compared with their case"),
    Wrong("check_supported", "passages changed in place", (_words, _passages_cleared), "changed the passages"),
    Wrong("check_supported", "a list of words, a str verdict", (_words, lambda r, p, q: "yes"), "True or False"),
]


# =================================================================== quiz
QUIZ = {
    "why retrieved passages help with questions about invented towns"
    " (the answer is in the prompt/the model learns the facts/the model gets larger)":
        "the answer is in the prompt",
    "what recall at k does not measure"
    " (whether the model uses the passage/whether the gold passage is among the first k"
    "/the share of questions covered)": "whether the model uses the passage",
    "where among many passages a model most often misses the one that matters"
    " (in the middle/at the start/at the end)": "in the middle",
    "the calculator failure a calculator tool cannot fix (wrong operands/a wrong product/a wrong sum)":
        "wrong operands",
    "the out-of-scope questions a similarity threshold lets through most (near/off-topic)": "near",
    "does a wrong answer copied from a retrieved distractor passage pass the output check (yes/no)": "yes",
}
_Q = list(QUIZ)

QUIZ_WRONG = [
    Wrong("check_augmentation_quiz", "the model learns the facts", {**QUIZ, _Q[0]: "the model learns the facts"},
          "Lewis et al. 2020"),
    Wrong("check_augmentation_quiz", "recall measures the gold passage",
          {**QUIZ, _Q[1]: "whether the gold passage is among the first k"}, "retriever's ranking"),
    Wrong("check_augmentation_quiz", "lost at the end", {**QUIZ, _Q[2]: "at the end"}, "Liu et al. 2023"),
    Wrong("check_augmentation_quiz", "the tool cannot fix a product", {**QUIZ, _Q[3]: "a wrong product"},
          "computes exactly the expression"),
    Wrong("check_augmentation_quiz", "off-topic questions get through", {**QUIZ, _Q[4]: "off-topic"},
          "worded like the collection's own"),
    Wrong("check_augmentation_quiz", "the output check catches the distractor", {**QUIZ, _Q[5]: "no"},
          "not whether that passage answers"),
]

CATALOGUE = COSINE + RECALL + TOOL + GUARD + QUIZ_WRONG


@pytest.mark.parametrize("wrong", CATALOGUE, ids=[f"{w.check[6:]}-{w.mistake}" for w in CATALOGUE])
def test_the_check_rejects_the_wrong_answer_and_names_the_mistake(wrong):
    verdict, out = run_check(getattr(ex, wrong.check), wrong.answer)
    assert verdict is False, f"accepted: {wrong.mistake}\n{out}"
    assert wrong.names in out, f"the feedback does not name the mistake ({wrong.names!r}):\n{out}"
    assert "inf%" not in out and "by 100%" not in out and "could not be compared" not in out, out


def test_every_check_of_chapter_15_has_at_least_six_wrong_answers():
    checks = {n for n in vars(ch15) if n.startswith("check_") and hasattr(ex, n)}
    counts = {n: sum(w.check == n for w in CATALOGUE) for n in checks}
    assert len(checks) == 5, counts
    assert all(c >= 6 for n, c in counts.items() if n != "check_augmentation_quiz"), counts
    assert counts["check_augmentation_quiz"] == len(QUIZ)


@pytest.mark.parametrize("check", ["check_cosine_search", "check_recall_at_k", "check_tool_call"])
def test_an_unsolved_stub_is_reported_as_not_done(check):
    def stub(*args):
        raise NotImplementedError("your code here")
    verdict, out = run_check(getattr(ex, check), stub)
    assert verdict is False and "not done yet" in out, out


def test_unsolved_guardrail_stubs_and_quiz_are_reported_as_not_done():
    def stub(*args):
        raise NotImplementedError("your code here")
    for answer in [(stub, stub), (_words, stub)]:  # neither done, or only content_words
        verdict, out = run_check(ex.check_supported, answer)
        assert verdict is False and "not done yet" in out, out
    verdict, out = run_check(ex.check_augmentation_quiz, dict.fromkeys(QUIZ, ...))
    assert verdict is False and "not done yet" in out


def test_passing_a_result_instead_of_a_function_is_explained():
    for check, answer in [("check_cosine_search", [(0, 1.0)]), ("check_recall_at_k", 0.5),
                          ("check_tool_call", "<result>323</result>"), ("check_supported", (set(), True))]:
        verdict, out = run_check(getattr(ex, check), answer)
        assert verdict is False and "without calling it" in out, (check, out)


# ------------------------------------------------------------------ right answers written another way
def _search_cosine_similarity(docs, query, k):
    scores = F.cosine_similarity(docs, query.unsqueeze(0), dim=1)
    order = np.argsort(-scores.numpy(), kind="stable")[:k]
    return [(i, scores[i]) for i in order]  # numpy ints and 0-d tensors


def _search_python(docs, query, k):
    rows, q = docs.tolist(), query.tolist()
    norm = math.sqrt(sum(x * x for x in q))
    cos = [sum(a * b for a, b in zip(r, q)) / (math.sqrt(sum(a * a for a in r)) * norm) for r in rows]
    return sorted(enumerate(cos), key=lambda p: (-p[1], p[0]))[:k]


def _search_normalize(docs, query, k):
    scores = F.normalize(docs.double(), dim=1) @ F.normalize(query.double(), dim=0)
    values, order = torch.sort(scores, descending=True, stable=True)
    return list(zip(order[:k].tolist(), values[:k].tolist()))


def _recall_ranks(rankings, gold, k):
    ranks = [r.index(g) + 1 if g in r else len(r) + k + 1 for r, g in zip(rankings, gold)]
    return rag.recall_at_k(ranks, k)


def _recall_numpy(rankings, gold, k):
    return np.mean([g in set(r[:k]) for r, g in zip(rankings, gold)])


def _recall_tensor(rankings, gold, k):
    return torch.tensor([float(g in r[:k]) for r, g in zip(rankings, gold)], dtype=torch.float64).mean()


def _tool_library(text):
    table = {"calculator": calculator}
    call = tools.parse_call(text, table)
    if call is None:
        return None
    done = tools.run_call(call, table)
    if call.get("error"):
        return text + f"<result>error: {done['error']}</result>"
    end = text.index("</calculator>") + len("</calculator>")
    return text[:end] + (f"<result>{done['result']}</result>" if "result" in done
                         else f"<result>Error - {done['error']}</result>")


def _tool_find(text):  # str.find instead of a regex, and repr for a value that is not whole
    start = text.find("<calculator>")
    if start < 0:
        return None
    end = text.find("</calculator>", start)
    if end < 0:
        return text + "<result>error: not closed</result>"
    cut = end + len("</calculator>")
    try:
        value = calculator(text[start + len("<calculator>"):end].strip())
    except ValueError:
        return text[:cut] + "<result>error: refused</result>"
    return text[:cut] + f"<result>{int(value) if value == int(value) else value}</result>"


RIGHT = [
    ("check_cosine_search", _search),
    ("check_cosine_search", _search_cosine_similarity),
    ("check_cosine_search", _search_python),
    ("check_cosine_search", _search_normalize),
    ("check_recall_at_k", _recall),
    ("check_recall_at_k", _recall_ranks),
    ("check_recall_at_k", _recall_numpy),
    ("check_recall_at_k", _recall_tensor),
    ("check_tool_call", _run_tool),
    ("check_tool_call", _tool_library),
    ("check_tool_call", _tool_find),
    ("check_supported", (_words, _supported)),
    ("check_supported", (rag.content_words, guardrails.supported)),  # its (passed, reason) pair
    ("check_supported", (lambda t: sorted(rag.content_words(t)),
                         lambda r, p, q: guardrails.supported(r, tuple(p), q)[0])),
    ("check_augmentation_quiz", {**QUIZ, _Q[0]: "The answer is in the prompt.", _Q[2]: "In the middle",
                                 _Q[3]: "Wrong operands", _Q[5]: "Yes"}),
]


@pytest.mark.parametrize("check, answer", RIGHT, ids=[f"{c[6:]}-{i}" for i, (c, _) in enumerate(RIGHT)])
def test_a_right_answer_written_another_way_is_accepted(check, answer):
    verdict, out = run_check(getattr(ex, check), answer)
    assert verdict is True, out


# ------------------------------------------------------------------ the checks' references
def test_the_cosine_example_worked_out_by_hand():
    docs = torch.tensor([[3.0, 0.0, 4.0], [0.0, 1.0, 0.0], [6.0, 8.0, 0.0], [1.0, 0.0, 1.0], [0.0, -2.0, 1.0]])
    query = torch.tensor([1.0, 0.0, 1.0])
    # row 3 points along the query (cosine 1); row 0 has the largest dot product, 7, and cosine 7 / (5 sqrt 2)
    want = [(3, 1.0), (0, 7 / (5 * math.sqrt(2))), (2, 6 / (10 * math.sqrt(2)))]
    assert ch15._same_pairs(ch15._ranked(ch15._cosines(docs, query), 3), want)
    assert [i for i, _ in ch15._ranked(docs.double() @ query.double(), 3)] == [0, 2, 3]


def test_the_cosine_cases_tie_exactly_or_not_at_all():
    """Equal cosines in the reference are equal in float32 too, and unequal ones are far apart: no
    student's rounding can reorder them."""
    for rows, query, k, label, _ in ch15._search_cases():
        docs, q = torch.tensor(rows), torch.tensor(query)
        ref = ch15._cosines(docs, q)
        single = (docs / docs.norm(dim=1, keepdim=True)) @ (q / q.norm())
        for i in range(len(rows)):
            for j in range(i + 1, len(rows)):
                if ref[i] == ref[j]:
                    assert single[i] == single[j], (label, i, j)
                else:
                    assert abs(ref[i] - ref[j]) > 1e-4, (label, i, j)


def test_every_cosine_mistake_changes_an_answer_of_the_check():
    cases = ch15._search_cases()
    for n, (_, words) in enumerate(ch15._search_variants(torch.eye(2), torch.ones(2), 1)):
        differs = False
        for rows, query, k, _, _ in cases:
            docs, q = torch.tensor(rows), torch.tensor(query)
            alt = ch15._search_variants(docs, q, k)[n][0]
            differs |= not ch15._same_pairs(alt, ch15._ranked(ch15._cosines(docs, q), k))
        assert differs, words


def test_the_recall_reference_is_rag_recall_at_k_and_every_mistake_shows():
    cases = ch15._recall_cases()
    assert ch15._recall_variants(*cases[0][:3])[0][0] == 0.5  # two of the example's four questions found
    assert ch15._recall_variants([[2, 1], [0], [3, 4, 1], [1, 2]], [1, 0, 4, 9], 4)[0][0] == 0.75
    for rankings, gold, k, *_ in cases:
        assert ch15._recall_variants(rankings, gold, k)[0][0] == pytest.approx(_recall(rankings, gold, k))
    for n in range(1, len(ch15._recall_variants(*cases[0][:3]))):
        values = [ch15._recall_variants(r, g, k) for r, g, k, *_ in cases]
        assert any(v[n][0] is not None and not math.isclose(v[n][0], v[0][0]) for v in values), values[0][n][1]


def test_the_tool_reference_is_parse_call_and_run_call():
    assert ch15._tool_reference(ch15._TOOL_CASES[0][0]) == ("<calculator>48 * 23</calculator>", "1104")
    assert ch15._tool_reference("<calculator>2208 / 2</calculator>")[1] == "1104"
    assert ch15._tool_reference("<calculator>2 ** 10</calculator>")[1] is None
    assert ch15._tool_reference("The answer is 1104.") is None
    assert ch15._tool_reference("so <calculator>1 + 1") == ("so <calculator>1 + 1", None)
    for text, label in ch15._TOOL_CASES:
        want = ch15._tool_reference(text)
        assert ch15._tool_problem(text, _run_tool(text)) is None, label
        if want is not None:
            prefix, value = want
            tail = _run_tool(text)[len(prefix):]
            assert text.startswith(prefix), label
            assert tail.startswith("<result>error:") if value is None else tail == f"<result>{value}</result>", label


def test_the_guardrail_reference_is_the_library_and_every_mistake_shows():
    for text, *_ in ch15._WORD_CASES:
        assert _words(text) == rag.content_words(text)
    verdicts = {how: [] for how in ch15._SUPPORT_VARIANTS}
    for reply, passages, question, *_ in ch15._SUPPORT_CASES:
        right = guardrails.supported(reply, passages, question)[0]
        assert ch15._supported(reply, passages, question) == right == _supported(reply, passages, question)
        for how in ch15._SUPPORT_VARIANTS:
            verdicts[how].append(ch15._supported(reply, passages, question, how) != right)
    assert all(any(v) for v in verdicts.values()), verdicts
    # no two mistakes give the same verdicts on every case: the one named is the one made
    patterns = [tuple(v) for v in verdicts.values()]
    assert len(set(patterns)) == len(patterns)
    for alt, words in ch15._WORD_VARIANTS:
        assert any(alt(t) != rag.content_words(t) for t, *_ in ch15._WORD_CASES), words


def test_the_example_question_of_the_guardrail_is_in_the_collection():
    questions = {q["id"]: q for q in rag.load_questions()}
    docs = {d["id"]: d["text"] for d in rag.load_documents()}
    q = questions["q026"]
    assert guardrails.supported(q["answer"], [docs[q["doc"]]], q["question"])[0]
    assert not guardrails.supported(q["wrong"], [docs[q["doc"]]], q["question"])[0]
    assert guardrails.supported(q["wrong"], [docs[q["doc"]], docs[q["distractor"]]], q["question"])[0]
