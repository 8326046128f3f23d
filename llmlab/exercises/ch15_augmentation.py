"""Chapter 15 (augmenting a model: retrieval and tools): the checks that ``exercises/src/15_augmentation.py``
calls, its quiz key and their private helpers (the shared machinery is in ``_harness.py``).

The references are computed in the checks: cosine search with torch in float64 on vectors made here,
equal cosines in document order as ``llmlab.rag.Retriever.search`` keeps them (a stable sort); recall
at k with ``llmlab.rag.recall_at_k`` on the gold documents' ranks; a calculator call with
``llmlab.tools.parse_call`` and ``llmlab.tools.run_call`` around ``llmlab.lifecycle.calculator``; the
output guardrail with ``llmlab.rag.content_words`` and ``llmlab.guardrails.supported``. Each check also
recomputes the likely mistakes, to name the one a wrong answer made. Where one case cannot tell the
mistakes apart (the guardrail's True or False, a share of questions that two mistakes give alike), the
mistake named is the one that agrees with the student's answers on every case.
"""

from __future__ import annotations

import copy
import math
import numbers
import random
import re
from typing import Any, Callable

import torch

from ._harness import _call, _Case, _NotDone, _quiz, _run, _salted, _same_input, _Wrong


def _first_agreeing(outputs: list, variants: list[list[tuple[Any, str]]], same: Callable) -> str | None:
    """The words of the first mistake whose result agrees with every output the student's function gave
    (``outputs[i]`` is None where it gave none) and differs from the right one somewhere; ``variants[i]``
    lists ``(value, words)`` for case ``i``, the right value first, the mistakes in the same order in
    every case."""
    given = [i for i, out in enumerate(outputs) if out is not None]
    if not given:
        return None
    for j in range(1, len(variants[0])):
        agrees = all(same(outputs[i], variants[i][j][0]) for i in given)
        differs = any(not same(variants[i][j][0], variants[i][0][0]) for i in given)
        if agrees and differs:
            return variants[0][j][1]
    return None


# =================================================================== cosine search
def _cosines(docs: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    d, q = docs.double(), query.double()
    return (d @ q) / (d.norm(dim=1) * q.norm())


def _ranked(scores: torch.Tensor, k: int, ascending: bool = False, reversed_ties: bool = False
            ) -> list[tuple[int, float]]:
    """The first k (index, score) pairs of a stable sort (descending unless ``ascending``)."""
    if reversed_ties:  # sorted ascending, then the list reversed: equal scores end up last index first
        order = torch.sort(scores, stable=True).indices.flip(0)
    else:
        order = torch.sort(scores, descending=not ascending, stable=True).indices
    return [(int(i), float(scores[i])) for i in order[:max(k, 0)]]


def _search_variants(docs: torch.Tensor, query: torch.Tensor, k: int) -> list[tuple[list, str]]:
    """(pairs, the mistake in words) for likely mistakes in cosine search."""
    d, q = docs.double(), query.double()
    cos = _cosines(docs, query)
    unit_d = d / d.norm(dim=1, keepdim=True)
    distance = (d - q).norm(dim=1)
    unit_distance = (unit_d - q / q.norm()).norm(dim=1)
    return [
        (_ranked(d @ q, k), "those are dot products, not cosines: divide each by the lengths of the document "
                            "and of the query, cos(d, q) = d.q / (|d| |q|); a long document otherwise beats a "
                            "short one that points the same way"),
        (_ranked(unit_d @ q, k), "only the documents are normalised: the scores are the cosines times the query's "
                                 "length; divide by |q| too"),
        (_ranked(d @ (q / q.norm()), k), "only the query is normalised: a document's length still counts; divide "
                                         "each document by its own length too"),
        (_ranked(cos, k, ascending=True), "the order is ascending: the least similar documents come first; sort "
                                          "from the largest cosine down"),
        (_ranked(distance, k, ascending=True), "that ranks by Euclidean distance |d - q|, which depends on the "
                                               "vectors' lengths: rank by cosine similarity, largest first"),
        (_ranked(distance, k), "that ranks by Euclidean distance, the largest first: the farthest documents come "
                               "out on top; rank by cosine similarity, largest first"),
        (_ranked(1 - cos, k, ascending=True), "those scores are cosine distances (1 - cosine): return the cosine "
                                              "similarity itself"),
        (_ranked(unit_distance, k, ascending=True), "those scores are distances between the normalised vectors: "
                                                    "return the cosine similarity itself"),
        (_ranked(cos, k, reversed_ties=True), _TIES),
        (_ranked(cos, k + 1), "one pair too many: return exactly k (off by one in a slice?)"),
        (_ranked(cos, k - 1), "one pair too few: return exactly k (off by one in a slice?)"),
    ]


_TIES = ("documents with equal cosines are not in index order, the lower index first: torch.topk and unstable "
         "sorts promise no order among ties, and sorting ascending then reversing the list reverses ties too; "
         "use torch.sort(scores, descending=True, stable=True)")


def _pairs(got: Any, want: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """The student's result as a list of (int, float) pairs, or _Wrong saying what its shape is."""
    if got is None:
        raise _Wrong("the result is None: return the list of (index, cosine) pairs")
    if hasattr(got, "values") and hasattr(got, "indices") and not isinstance(got, dict):
        raise _Wrong("that is what torch.topk returns, (values, indices): return a list of k pairs "
                     "(index, cosine), best first")
    if isinstance(got, torch.Tensor):
        if got.dim() == 1:
            kind = "the indices" if not got.is_floating_point() else "the cosines"
            raise _Wrong(f"a 1-D tensor (of {kind} alone?): return a list of k pairs (index, cosine), best first")
        got = got.tolist()
    if isinstance(got, (str, bytes, dict)) or not hasattr(got, "__iter__"):
        raise _Wrong(f"the result is a {type(got).__name__}; expected a list of (index, cosine) pairs")
    items = list(got)
    if items and all(isinstance(x, numbers.Number) or (isinstance(x, torch.Tensor) and x.numel() == 1)
                     for x in items):
        values = [x.item() if isinstance(x, torch.Tensor) else x for x in items]
        if all(float(v).is_integer() for v in values) and [int(v) for v in values] == [i for i, _ in want]:
            raise _Wrong("the indices alone: return (index, cosine) pairs, as Retriever.search does")
        if len(values) == len(want) and all(math.isclose(v, c, abs_tol=1e-5) for v, (_, c) in zip(values, want)):
            raise _Wrong("the cosines alone: return (index, cosine) pairs, the index first")
        raise _Wrong("a list of numbers: return a list of (index, cosine) pairs, best first")
    pairs = []
    for n, item in enumerate(items):
        if isinstance(item, (str, bytes)) or not hasattr(item, "__len__") or len(item) != 2:
            raise _Wrong(f"item {n} of the result is {str(item)[:40]}; expected a pair (index, cosine)")
        i, c = (x.item() if isinstance(x, torch.Tensor) and x.numel() == 1 else x for x in item)
        if isinstance(i, bool) or not isinstance(i, numbers.Real) or isinstance(c, bool) \
                or not isinstance(c, numbers.Real):
            raise _Wrong(f"item {n} of the result is {str(item)[:40]}; expected a pair of numbers (index, cosine)")
        pairs.append((i, float(c)))
    if all(float(c).is_integer() for _, c in pairs):
        swapped = [(int(c), float(i)) for i, c in pairs]
        if _same_pairs(swapped, want) and not _same_pairs([(int(i), c) for i, c in pairs], want) \
                or any(not float(i).is_integer() for i, _ in pairs):
            raise _Wrong("each pair is (cosine, index): return (index, cosine), the index first")
    if any(not float(i).is_integer() for i, _ in pairs):
        raise _Wrong("an index is not a whole number: the first element of each pair is the document's row "
                     "in doc_vectors")
    return [(int(i), c) for i, c in pairs]


def _same_pairs(a: list[tuple[int, float]], b: list[tuple[int, float]]) -> bool:
    return len(a) == len(b) and all(i == j and math.isclose(x, y, rel_tol=1e-4, abs_tol=1e-5)
                                    for (i, x), (j, y) in zip(a, b))


def _unit_rows(rows: list[list[float]]) -> list[list[float]]:
    return [[x / math.sqrt(sum(v * v for v in row)) for x in row] for row in rows]


def check_cosine_search(fn: Callable) -> bool:
    """Chapter 15. ``fn(doc_vectors, query, k) -> [(index, cosine), ...]``: the ``k`` rows of ``doc_vectors``
    (``(N, H)``, any lengths) most similar to ``query`` (``(H,)``) by cosine similarity, best first, equal
    cosines in index order (a stable sort, as ``llmlab.rag.Retriever.search``), compared with a reference
    computed here with torch in float64."""

    def case(rows, query, k, label, hidden=True):
        def run():
            docs = torch.tensor(rows, dtype=torch.float32)
            q = torch.tensor(query, dtype=torch.float32)
            given_docs, given_q = docs.clone(), q.clone()
            got = _call(fn, given_docs, given_q, k)
            for before, after, what in ((docs, given_docs, "doc_vectors"), (q, given_q, "the query")):
                changed = _same_input(before, after, what)
                if changed:
                    raise _Wrong(changed)
            cos = _cosines(docs, q)
            want = _ranked(cos, k)
            pairs = _pairs(got, want)
            if _same_pairs(pairs, want):
                return
            for alt, words in _search_variants(docs, q, k):
                if not _same_pairs(alt, want) and _same_pairs(pairs, alt):
                    raise _Wrong(words)
            if len(pairs) != k:
                raise _Wrong(f"{len(pairs)} pairs for k = {k}: return exactly k")
            n = docs.size(0)
            if any(not 0 <= i < n for i, _ in pairs):
                if all(1 <= i <= n for i, _ in pairs) and [i - 1 for i, _ in pairs] == [i for i, _ in want]:
                    raise _Wrong("the indices count from 1: the document in row 0 of doc_vectors is index 0")
                raise _Wrong(f"an index is outside 0 to {n - 1}: indices are rows of doc_vectors")
            if [i - 1 for i, _ in pairs] == [i for i, _ in want] and all(i >= 1 for i, _ in pairs):
                raise _Wrong("the indices count from 1: the document in row 0 of doc_vectors is index 0")
            scores_right = all(math.isclose(c, w, rel_tol=1e-4, abs_tol=1e-5) for (_, c), (_, w) in zip(pairs, want))
            true_scores = all(math.isclose(c, float(cos[i]), rel_tol=1e-4, abs_tol=1e-5) for i, c in pairs)
            if scores_right and true_scores:
                raise _Wrong(_TIES)
            if [i for i, _ in pairs] == [i for i, _ in want]:
                raise _Wrong("the documents and their order are right, the cosines are not: cos(d, q) = "
                             "d.q / (|d| |q|)")
            raise _Wrong("these are not the k documents most similar to the query by cosine, best first")
        whole = all(float(x).is_integer() for x in [*query, *(x for row in rows for x in row)])
        shown = f"doc_vectors {rows}, query {query}" if whole and len(rows) <= 6 \
            else f"{len(rows)} documents of {len(query)} numbers"
        return _Case(f"{shown}, k = {k}" + (f" ({label})" if label else ""), run, hidden)

    return _run("cosine_search", [case(*c) for c in _search_cases()])


def _search_cases() -> list[tuple]:
    """(doc rows, query, k, label, hidden) of check_cosine_search: exact ties only between identical rows or
    rows that differ by a power of two (whose cosines are equal in any float arithmetic)."""
    rng = random.Random(15)
    wide = [[rng.gauss(0, 1) * rng.choice((0.5, 1, 3)) for _ in range(16)] for _ in range(20)]
    wide_query = [rng.gauss(0, 1) for _ in range(16)]
    return [
        ([[3.0, 0.0, 4.0], [0.0, 1.0, 0.0], [6.0, 8.0, 0.0], [1.0, 0.0, 1.0], [0.0, -2.0, 1.0]],
         [1.0, 0.0, 1.0], 3, "", False),
        ([[1.0, 2.0, 2.0], [4.0, 0.0, 3.0], [2.0, 4.0, 4.0], [0.0, 1.0, 0.0]], [1.0, 1.0, 1.0], 3,
         "rows 0 and 2 point the same way, row 2 twice as long: equal cosines", True),
        ([[2.0, 1.0, 0.0], [0.0, 0.0, 5.0], [1.0, 3.0, 0.0], [0.0, 4.0, 4.0], [2.0, 1.0, 0.0]],
         [1.0, 1.0, 0.0], 4, "rows 0 and 4 identical", True),
        ([[0.0, 3.0], [1.0, 1.0], [5.0, 0.0], [1.0, 1.0], [2.0, 2.0]], [2.0, 1.0], 2,
         "rows 1, 3 and 4 tie at the top: only the two lowest indices fit", True),
        (_unit_rows([[1.0, 2.0, 0.0], [3.0, 1.0, 1.0], [0.0, 1.0, 4.0], [2.0, 2.0, 1.0]]), [0.0, 6.0, 3.0], 2,
         "unit-length documents, as MiniLM's, and a query of length sqrt(45)", True),
        ([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [-1.0, -1.0], [1.0, -3.0]], [-2.0, -1.0], 5,
         "k = N: the whole ranking, negative cosines included", True),
        ([[10.0, 0.0, 0.0], [0.0, 0.5, 0.5], [3.0, 3.0, 0.0]], [0.0, 1.0, 1.0], 1, "k = 1", True),
        ([[-1.0, 2.0], [4.0, -1.0], [-3.0, -1.0], [2.0, 2.0]], [3.0, -4.0], 3, "negative cosines", True),
        (wide, wide_query, 5, "random vectors of different lengths", True),
    ]


# =================================================================== recall at k
def _recall_variants(rankings: list[list[int]], gold: list[int], k: int) -> list[tuple[float, str]]:
    """(value, the mistake in words) for likely mistakes in recall at k; the right value first."""
    from ..rag import recall_at_k

    n = len(gold)
    ranks = [r.index(g) + 1 if g in r else max(k, len(r)) + 1 for r, g in zip(rankings, gold)]
    hits = sum(g in r[:k] for r, g in zip(rankings, gold))
    right = recall_at_k(ranks, k)
    retrieved = sum(len(r) for r in rankings)
    within = sum(min(k, len(r)) for r in rankings)
    return [
        (right, ""),
        (hits / (n * k), "that is precision at k (the hits divided by k): recall at k is the share of QUESTIONS "
                         "whose gold document is among their first k, hits / number of questions"),
        (sum(g in r[:k + 1] for r, g in zip(rankings, gold)) / n,
         "one position too many: the first k documents of a ranking are ranking[:k], positions 0 to k - 1"),
        (sum(g in r[:k - 1] for r, g in zip(rankings, gold)) / n,
         "one position too few: the first k documents of a ranking are ranking[:k], positions 0 to k - 1 (the "
         "k-th document counts)"),
        (sum(g in r[:k] or g not in r for r, g in zip(rankings, gold)) / n,
         "a gold document missing from its ranking counts as found: that question is a miss"),
        (hits / retrieved if retrieved else None, "divided by the documents retrieved: divide by the number of "
                                                  "questions, each counted once"),
        (hits / within if within else None, "divided by the documents among the first k: divide by the number of "
                                            "questions, each counted once"),
        (sum(g in r for r, g in zip(rankings, gold)) / n, "k is ignored: only the first k documents of each "
                                                          "ranking count"),
        (float(hits), "that is the number of questions found: divide it by the number of questions"),
        (100 * right, "that is a percent: return the share, between 0 and 1"),
    ]


def _close(a: Any, b: Any) -> bool:
    return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _share(value: Any) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if hasattr(value, "item") and not isinstance(value, (int, float)):  # a NumPy number
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _Wrong(f"the result is a {type(value).__name__}; expected a number (the share of questions found)")
    return float(value)


def check_recall_at_k(fn: Callable) -> bool:
    """Chapter 15. ``fn(rankings, gold, k) -> float``: the share of questions whose gold document
    ``gold[i]`` is among the first ``k`` of ``rankings[i]`` (document indices, best first, perhaps fewer than
    ``k``, perhaps without the gold document), compared with ``llmlab.rag.recall_at_k`` on the gold
    documents' ranks."""
    cases_in = _recall_cases()
    variants = [_recall_variants(r, g, k) for r, g, k, *_ in cases_in]
    outputs: list[Any] = []
    for rankings, gold, k, *_ in cases_in:
        try:
            outputs.append(_share(_call(fn, copy.deepcopy(rankings), list(gold), k)))
        except (_Wrong, _NotDone, Exception):  # noqa: BLE001 -- only to name the mistake; the cases report it
            outputs.append(None)
    everywhere = _first_agreeing(outputs, variants, _close)

    def case(index):
        rankings, gold, k, label, *hidden = cases_in[index]

        def run():
            given_r, given_g = copy.deepcopy(rankings), list(gold)
            try:
                got = _call(fn, given_r, given_g, k)
            except _Wrong as problem:
                if "ValueError" in str(problem) and any(g not in r for r, g in zip(rankings, gold)):
                    raise _Wrong(f"{problem}; a gold document is missing from its ranking here (list.index raises "
                                 "ValueError then): count that question as a miss") from None
                raise
            for before, after, what in ((rankings, given_r, "the rankings"), (gold, given_g, "gold")):
                changed = _same_input(before, after, what)
                if changed:
                    raise _Wrong(changed)
            got = _share(got)
            want = variants[index][0][0]
            if _close(got, want):
                return
            if everywhere:
                raise _Wrong(everywhere)
            for alt, words in variants[index][1:]:
                if _close(alt, got) and not _close(alt, want):
                    raise _Wrong(words)
            if not 0 <= got <= 1:
                raise _Wrong(f"{got:g} is not a share: recall at k lies between 0 and 1")
            raise _Wrong(f"{got:g} is not the share of questions whose gold document is among the first k")
        shown = f"rankings {rankings}, gold {gold}" if len(rankings) <= 4 and all(len(r) <= 5 for r in rankings) \
            else f"{len(rankings)} questions"
        return _Case(f"{shown}, k = {k}" + (f" ({label})" if label else ""), run, hidden[0] if hidden else True)

    return _run("recall_at_k", [case(i) for i in range(len(cases_in))])


def _recall_cases() -> list[tuple]:
    """(rankings, gold, k, label[, hidden]) of check_recall_at_k."""
    cases = [
        ([[4, 1, 7], [2, 0, 5], [3, 6, 1], [0, 2, 4]], [1, 5, 8, 0], 2, "", False),
        ([[3, 9, 1, 0, 6], [7, 2, 5, 4, 8], [1, 0, 2, 3, 9]], [1, 5, 2], 3,
         "a gold document exactly k-th in every ranking"),
        ([[5, 2, 6, 1], [0, 3, 1, 4], [8, 6, 7, 2], [2, 9, 3, 0], [4, 1, 0, 5]], [6, 1, 8, 0, 5], 2,
         "gold documents at place k + 1, at place 1 and missing"),
        ([[2, 1], [0], [3, 4, 1], [1, 2]], [1, 0, 4, 9], 4, "rankings shorter than k"),
        ([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0], [4, 2, 0, 1, 3, 5, 6, 7, 8, 9]],
         [0, 0, 5], 1, "k = 1, rankings of ten documents"),
        ([[6, 3, 8], [1, 7, 4], [2, 5, 0]], [9, 9, 9], 3, "no gold document retrieved at all"),
        ([[3, 1, 2], [2, 3, 1], [1, 2, 3], [5, 4, 3], [4, 2, 0], [0, 4, 1]], [3, 3, 1, 5, 2, 3], 3,
         "every ranking holds k documents"),
    ]
    rng = random.Random(15)
    for n in range(2):
        rankings, gold = [], []
        for _ in range(12):
            ranking = rng.sample(range(30), rng.randint(2, 10))
            rankings.append(ranking)
            gold.append(rng.choice(ranking) if rng.random() < 0.75 else rng.randrange(30, 40))
        cases.append((rankings, gold, rng.randint(2, 6), f"random rankings {n + 1}"))

    return cases


# =================================================================== a calculator call
_CALCULATOR_CALL = re.compile(r"<calculator>(.*?)</calculator>", re.S)
_RESULT = re.compile(r"<result>((?:(?!</?result>).)*)</result>", re.S)


def _tools() -> dict:
    from ..lifecycle import calculator

    return {"calculator": calculator}


def _tool_reference(text: str) -> tuple[str, str | None] | None:
    """What the program hands back for ``text``: None when there is no call, else ``(prefix, value)``: the
    text up to and including the closing tag (all of it for a call that never closes) and the result
    to append (None for an error), as ``llmlab.tools.parse_call`` and ``run_call`` give them."""
    from ..tools import parse_call, run_call

    call = parse_call(text, _tools())
    if call is None:
        return None
    if call.get("error"):
        return text, None
    done = run_call(call, _tools())
    prefix = text[:_CALCULATOR_CALL.search(text).end()]
    return prefix, done.get("result")


def _shown_value(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _last_call(text: str) -> tuple[str, str | None] | None:
    """The reference's answer had the LAST complete call been run."""
    from ..tools import run_call

    calls = list(_CALCULATOR_CALL.finditer(text))
    if len(calls) < 2:
        return None
    done = run_call({"name": "calculator", "arguments": calls[-1].group(1).strip()}, _tools())
    return text[:calls[-1].end()], done.get("result")


def _unstripped(text: str) -> str | None:
    """The value of the first call's arguments as written, spaces and all (None when the calculator
    refuses them)."""
    m = _CALCULATOR_CALL.search(text)
    try:
        return _shown_value(_tools()["calculator"](m.group(1))) if m else None
    except (ValueError, ArithmeticError):
        return None


def _result_matches(inner: str, value: str | None) -> bool:
    """Whether the text between <result> and </result> is right: the value (a non-whole number to six
    significant digits or closer), or, where value is None, ``error: `` and a reason."""
    if value is None:
        return inner.lower().startswith("error")
    if inner == value:
        return True
    try:
        want = float(value)
        return not want.is_integer() and math.isclose(float(inner), want, rel_tol=1e-5)
    except ValueError:
        return False


def _tool_problem(text: str, got: Any) -> str | None:
    """Say what is wrong with ``got`` for ``text`` (None when it is right)."""
    want = _tool_reference(text)
    if want is None:
        if got is None:
            return None
        if got == text:
            return "the text came back unchanged: return None when it holds no <calculator> tag"
        return "there is no <calculator> tag in this text: return None"
    prefix, value = want
    unclosed = _CALCULATOR_CALL.search(text) is None
    if got is None:
        if unclosed:
            return ("None, but a <calculator> tag opens here and never closes: that is a malformed call, not no "
                    "call; append <result>error: ...</result> to the whole text")
        return "None, but the text holds a <calculator> call: run it and append its result"
    if not isinstance(got, str):
        return f"the result is a {type(got).__name__}; expected the text (a str) with the result appended"
    if got.startswith(prefix):
        rest = got[len(prefix):]
        m = _RESULT.fullmatch(rest)
        if m and _result_matches(m.group(1), value):
            return None
        if m:
            inner = m.group(1)
            if value is None:
                if unclosed:
                    return ("the call never closes, so it is malformed: append an error result, "
                            "<result>error: ...</result>, without running what follows the tag")
                return ("the calculator refuses this expression (it allows numbers, + - * / and brackets only), "
                        "so the result must be <result>error: ...</result>; a value here means the text was run "
                        "some other way: Python's eval runs any code a model writes, never use it on a reply")
            if inner == value + ".0":
                return f"{inner} is shown with .0: show a whole number without a decimal point (int(value))"
            if inner.startswith("error"):
                written = _CALCULATOR_CALL.search(text).group(1)
                if written != written.strip() and _unstripped(text) is None:
                    return ("an error, but the calculator accepts this expression once the spaces around it are "
                            "stripped: evaluate the text between the tags, .strip()ped")
                return ("an error, but lifecycle.calculator accepts this expression (it reads x and times as *): "
                        "evaluate it with calculator, not with Python's eval")
            return "the value in <result> is not what lifecycle.calculator gives for the call's expression"
        last = _last_call(text)
        if last is not None and got.startswith(last[0]):
            tail = _RESULT.fullmatch(got[len(last[0]):])
            if tail and _result_matches(tail.group(1), last[1]):
                return "the LAST call was run: run the first <calculator> call and cut the text right after it"
        if "<result>" in rest and not rest.startswith("<result>"):
            return ("the text after the closing tag is kept: cut the reply right after </calculator>, then append "
                    "the result (whatever the model wrote after the call, an invented result too, goes)")
        if rest.startswith("<result>") and not rest.endswith("</result>"):
            return ("the text after the closing tag is kept: cut the reply right after </calculator>, then append "
                    "the result")
        if value is not None and rest in (value, value + ".0") \
                or value is None and rest.lower().startswith("error") and "<result>" not in rest:
            return "the value is appended bare: wrap it in <result>...</result>"
        if not rest:
            return "the text is cut at the right place but nothing is appended: add <result>...</result>"
    if got.startswith(text) and text != prefix:
        return ("the result is appended after the whole reply: cut the reply right after </calculator> first "
                "(the text after the closing tag is not kept)")
    last = _last_call(text)
    if last is not None and got.startswith(last[0]):
        return "the LAST call was run: run the first <calculator> call and cut the text right after it"
    if _RESULT.fullmatch(got):
        return "only the result came back: return the reply's text up to and including </calculator>, then it"
    return "the text is not the reply cut right after the first </calculator> with <result>...</result> appended"


def check_tool_call(fn: Callable) -> bool:
    """Chapter 15. ``fn(text) -> str | None``: run the first ``<calculator>...</calculator>`` call of a
    model's reply with ``llmlab.lifecycle.calculator`` and return the reply cut right after the closing tag
    with ``<result>VALUE</result>`` appended (a whole number without ``.0``), ``<result>error: ...</result>``
    when the calculator refuses it or the tag never closes, None without a call; compared with
    ``llmlab.tools.parse_call`` and ``llmlab.tools.run_call``."""

    def case(text, label, hidden=True):
        def run():
            want = _tool_reference(text)
            try:
                got = _call(fn, text)
            except _Wrong as problem:
                if want is not None and want[1] is None:
                    what = "a call that never closes" if _CALCULATOR_CALL.search(text) is None else \
                        "an expression the calculator refuses"
                    raise _Wrong(f"{problem}: on {what}, do not raise; append <result>error: ...</result>") from None
                raise
            problem = _tool_problem(text, got)
            if problem:
                raise _Wrong(problem)
        return _Case(f"{text!r}" + (f" ({label})" if label else ""), run, hidden)

    return _run("tool_call", [case(text, label, hidden=i > 0) for i, (text, label) in enumerate(_TOOL_CASES)])


_TOOL_CASES = [  # (reply, label) of check_tool_call, the notebook's example first
    ("<calculator>48 * 23</calculator><result>1100</result> The answer is 1100.", ""),
    ("First, 12 trays of 35 rolls: <calculator>12 * 35 - 97</calculator>", "text before the call"),
    ("<calculator>2208 / 2</calculator>", "a division with a whole result"),
    ("<calculator>7 / 2</calculator> so each gets", "a result that is not whole"),
    ("<calculator>5 - 12</calculator>", "a negative result"),
    ("<calculator> 12 * 35 </calculator>", "spaces inside the tags"),
    ("<calculator>12 x 35</calculator>", "x for times, which the calculator reads"),
    ("<calculator>2 ** 10</calculator> The answer is 1024.", "a power, which the calculator refuses"),
    ("<calculator>__import__('math').pi</calculator>", "code, not arithmetic"),
    ("<calculator>7 / 0</calculator>", "a division by zero"),
    ("<calculator></calculator>", "an empty call"),
    ("<calculator>30 + 4</calculator><result>34</result> then <calculator>34 * 2</calculator>",
     "two calls"),
    ("The answer is <calculator>12 * 35 - 97", "a tag that never closes"),
    ("The answer is 1104.", "no call"),
    ("<search>rolls</search> <calculator>(3 + 4) * 6</calculator> done", "another tag first"),
]


# =================================================================== the output guardrail
_SUPPORT_VARIANTS = ("combined", "question kept", "stopwords kept", "case", "nothing new", "split", "substring")


def _words(text: str, how: str = "") -> set[str]:
    """Content words as rag.content_words takes them, or by a likely mistake."""
    from ..retrieval import STOPWORDS

    if how == "case":
        return {w for w in re.findall(r"[A-Za-z0-9]+", text) if w not in STOPWORDS}
    if how == "split":
        return {w for w in text.lower().split() if w not in STOPWORDS}
    found = set(re.findall(r"[a-z0-9]+", text.lower()))
    return found if how == "stopwords kept" else found - STOPWORDS


def _supported(reply: str, passages: list[str], question: str, how: str = "") -> bool:
    """``llmlab.guardrails.supported``'s verdict (``how=""``) or a likely mistake's."""
    words = how if how in ("case", "split", "stopwords kept") else ""
    new = _words(reply, words) if how == "question kept" else _words(reply, words) - _words(question, words)
    if not new:
        return how == "nothing new"
    if how == "combined":
        return new <= set().union(*(_words(p) for p in passages))
    if how == "substring":
        return any(all(w in p.lower() for w in new) for p in passages)
    return any(new <= _words(p, words) for p in passages)


_SUPPORT_WORDS = {
    "combined": "the reply's new words are looked for in all the passages together: they must all occur in ONE "
                "passage (two passages can each hold part of a claim that neither makes)",
    "question kept": "the question's own words are not removed: a reply may repeat the question's words; only "
                     "the words it ADDS to the question need a passage",
    "stopwords kept": "the stopwords are kept: remove llmlab.retrieval.STOPWORDS (the, is, they...) from the "
                      "words",
    "case": "the words are compared with their case: lower-case the text first (Pell and pell are one word)",
    "nothing new": "a reply that adds no word to the question passes: it must fail (it states no fact a "
                   "passage could support)",
    "split": "the words are split at spaces, punctuation and all ('works.' is not 'works'): take the runs of "
             "letters and digits, re.findall(r'[a-z0-9]+', text.lower())",
    "substring": "a word is matched inside longer words of the passage ('hour' inside 'hours'): compare whole "
                 "words, the passage's content words",
}

_LANTERN = ("The Harwick Lantern is a brass oil lamp made by the Pell Works of Dunmore since 1911. "
            "It burns for nine hours on one filling of oil.")
_DUNMORE = ("Dunmore is a market town on the River Cale, known for its glass works and its autumn fair. "
            "About 8,000 people live there.")
_WHO = "Who makes the Harwick Lantern?"


def _as_verdict(value: Any) -> bool:
    if isinstance(value, (tuple, list)) and len(value) == 2 and isinstance(value[1], str):
        value = value[0]  # (passed, reason), as guardrails.supported returns
    if hasattr(value, "item") and not isinstance(value, bool):
        value = value.item()
    if not isinstance(value, bool):
        raise _Wrong(f"the result is a {type(value).__name__}; expected True or False")
    return value


def _as_words(value: Any) -> set[str]:
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise _Wrong(f"content_words returned a {type(value).__name__}; expected a set of words (str)")
    out = list(value)
    if not all(isinstance(w, str) for w in out):
        raise _Wrong("content_words returned something that is not all words (str): expected a set of str")
    return set(out)


_WORD_CASES = [  # (text, label, hidden) of check_supported's content_words cases
    ("The Pell Works of Dunmore.", "", False),
    ("It burns for NINE hours!", "capitals and punctuation", True),
    ("They were founded in 1911, in Dunmore.", "stopwords and a number", True),
    ("Cast-iron stoves; a brass band", "a hyphen and a semicolon between words", True),
    ("the and of", "stopwords only", True),
]

_WORD_VARIANTS = [  # (content_words by a likely mistake, the mistake in words)
    (lambda t: {w for w in re.findall(r"[A-Za-z0-9]+", t) if w.lower() not in _stopwords()},
     "the case is kept: lower-case the text first"),
    (lambda t: set(re.findall(r"[a-z0-9]+", t.lower())), "the stopwords are kept: remove "
                                                          "llmlab.retrieval.STOPWORDS"),
    (lambda t: {w for w in t.lower().split() if w not in _stopwords()},
     "split at spaces, punctuation and all ('dunmore.' is not 'dunmore'): take the runs of letters and digits"),
    (lambda t: {w for w in re.findall(r"[a-z]+", t.lower()) if w not in _stopwords()},
     "the digits are dropped: a word is a run of letters AND digits ([a-z0-9]+)"),
    (lambda t: {w for w in re.findall(r"[a-z0-9]+", t) if w not in _stopwords()},
     "the capitals are dropped, not lowered: lower-case the text, then take the words"),
]


_SUPPORT_CASES = [  # (reply, passages, question, label[, hidden]) of check_supported
    ("The Pell Works.", [_DUNMORE, _LANTERN], _WHO, "", False),
    ("The Pell Works, on the River Cale.", [_LANTERN, _DUNMORE], _WHO,
     "the new words are split between two passages"),
    ("The Pell Works makes the Harwick Lantern.", [_LANTERN], _WHO, "the reply repeats the question's words"),
    ("They are the Pell Works.", [_LANTERN], _WHO, "stopwords the passage does not hold"),
    ("PELL WORKS", [_LANTERN], _WHO, "in capitals"),
    ("Brass.", [_LANTERN], "What is the Harwick Lantern made of?", "a capital at the start, a full stop"),
    ("The Harwick Lantern.", [_LANTERN, _DUNMORE], _WHO, "the reply adds nothing to the question"),
    ("The Hollis Company.", [_LANTERN, _DUNMORE], _WHO, "an invented maker"),
    ("Nine hour.", [_LANTERN], "How long does the Harwick Lantern burn?", "a word only inside a longer one"),
    ("Since 1911, in Dunmore.", [_DUNMORE, _LANTERN], "When did the Pell Works start making lamps?",
     "the words are in one passage, one of them in both"),
    ("Glass and an autumn fair", [_LANTERN, _DUNMORE], "What is Dunmore known for?", "the second passage"),
]


def check_supported(words_fn: Callable, supported_fn: Callable) -> bool:
    """Chapter 15. ``words_fn(text) -> set``: the lower-case runs of letters and digits of ``text`` without
    ``llmlab.retrieval.STOPWORDS`` (compared with ``llmlab.rag.content_words``), and
    ``supported_fn(reply, passages, question) -> bool``: True when the content words of ``reply`` not in
    ``question`` are not empty and all occur in one passage (compared with ``llmlab.guardrails.supported``)."""
    from ..guardrails import supported
    from ..rag import content_words

    def word_case(text, label, hidden=True):
        def run():
            got = _as_words(_call(words_fn, text))
            want = content_words(text)
            if got == want:
                return
            if {w.lower() for w in got} - _stopwords() == want:
                raise _Wrong("the case is kept: lower-case the text first, then take its words")
            for alt, words in _WORD_VARIANTS:
                if alt(text) == got and alt(text) != want:
                    raise _Wrong(words)
            extra, missing = sorted(got - want), sorted(want - got)
            raise _Wrong("content_words " + "; ".join(
                part for part in (f"holds {extra[:4]}, which are not content words" if extra else "",
                                  f"lacks {missing[:4]}" if missing else "") if part))
        return _Case(f"content_words({text!r})" + (f" ({label})" if label else ""), run, hidden)

    variants = [[(_supported(r, p, q), "")] + [(_supported(r, p, q, how), _SUPPORT_WORDS[how])
                                               for how in _SUPPORT_VARIANTS]
                for r, p, q, *_ in _SUPPORT_CASES]
    outputs: list[Any] = []
    for reply, passages, question, *_ in _SUPPORT_CASES:
        try:
            outputs.append(_as_verdict(_call(supported_fn, reply, list(passages), question)))
        except (_Wrong, _NotDone, Exception):  # noqa: BLE001 -- only to name the mistake; the cases report it
            outputs.append(None)
    everywhere = _first_agreeing(outputs, variants, lambda a, b: a == b)

    def support_case(index):
        reply, passages, question, label, *hidden = _SUPPORT_CASES[index]

        def run():
            given = list(passages)
            got = _as_verdict(_call(supported_fn, reply, given, question))
            changed = _same_input(list(passages), given, "the passages")
            if changed:
                raise _Wrong(changed)
            want = supported(reply, list(passages), question)[0]
            if got == want:
                return
            if everywhere:
                raise _Wrong(everywhere)
            for alt, words in variants[index][1:]:
                if alt == got:
                    raise _Wrong(words)
            raise _Wrong(f"{got}, but the reply's new words are {'all' if want else 'not all'} in one passage")
        shown = "[" + ", ".join("the Lantern" if p == _LANTERN else "Dunmore" for p in passages) + "]"
        return _Case(f"supported({reply!r}, passages {shown}, {question!r})" + (f" ({label})" if label else ""),
                     run, hidden[0] if hidden else True)

    return _run("supported", [word_case(*c) for c in _WORD_CASES]
                + [support_case(i) for i in range(len(_SUPPORT_CASES))])


def _stopwords() -> frozenset:
    from ..retrieval import STOPWORDS

    return frozenset(STOPWORDS)


# =================================================================== quiz
_AUGMENTATION_KEY = {
    "why retrieved passages help with questions about invented towns"
    " (the answer is in the prompt/the model learns the facts/the model gets larger)": (
        _salted("the answer is in the prompt"),
        "Retrieval changes no weight of the model (Lewis et al. 2020): where does the fact it needs come from "
        "when it answers?"),
    "what recall at k does not measure"
    " (whether the model uses the passage/whether the gold passage is among the first k/the share of "
    "questions covered)": (
        _salted("whether the model uses the passage"),
        "Recall at k reads only the retriever's ranking: what happens once the passages are in the prompt?"),
    "where among many passages a model most often misses the one that matters"
    " (in the middle/at the start/at the end)": (
        _salted("in the middle"),
        "Liu et al. 2023 moved the passage that answers through a long context: which positions did models read "
        "best, and which worst?"),
    "the calculator failure a calculator tool cannot fix (wrong operands/a wrong product/a wrong sum)": (
        _salted("wrong operands"),
        "The tool computes exactly the expression it is given: what if the model hands it numbers that are not "
        "the problem's?"),
    "the out-of-scope questions a similarity threshold lets through most (near/off-topic)": (
        _salted("near"),
        "A threshold sees only how similar a question is to its closest document: which questions are worded "
        "like the collection's own?"),
    "does a wrong answer copied from a retrieved distractor passage pass the output check (yes/no)": (
        _salted("yes"),
        "The check asks whether one passage holds the reply's words, not whether that passage answers the "
        "question."),
}


def check_augmentation_quiz(answers: dict) -> bool:
    """Chapter 15 quiz: retrieval-augmented generation (Lewis et al. 2020), recall at k, lost in the middle
    (Liu et al. 2023), a calculator tool (Schick et al. 2023) and the chapter's guardrails."""
    return _quiz("augmentation_quiz", answers, _AUGMENTATION_KEY)
