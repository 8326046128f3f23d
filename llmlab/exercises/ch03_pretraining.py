"""Chapter 3 (pre-training): the checks that ``exercises/src/03_pretraining.py`` calls,
its quiz key and their private helpers (the shared machinery is in ``_harness.py``)."""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from ._harness import _call, _Case, _number_problem, _run, _tiny_gpt2, _Wrong


def check_causal_lm_loss(fn: Callable) -> bool:
    """Chapter 3. ``fn(logits, input_ids) -> scalar``: mean next-token cross-entropy (nats) of logits
    ``(B, T, V)`` for ids ``(B, T)``: position t predicts token t + 1. Compared with ``F.cross_entropy``
    and with the loss Hugging Face's GPT-2 computes from ``labels=input_ids``."""
    def reference(logits, ids):
        return F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten())

    def case(b, t, v, label, hidden=True, seed=0):
        def run():
            g = torch.Generator().manual_seed(seed)
            logits = torch.randn(b, t, v, generator=g) * 3
            ids = torch.randint(0, v, (b, t), generator=g)
            got = _call(fn, logits.clone(), ids.clone())
            want = reference(logits, ids)
            problem = _number_problem(got, want.item(), "the loss", rel=1e-5)
            if problem and isinstance(got, torch.Tensor) and got.numel() == 1:
                value = got.item()
                if math.isclose(value, F.cross_entropy(logits.flatten(0, 1), ids.flatten()).item(), rel_tol=1e-5):
                    raise _Wrong("no shift: position t must predict token t + 1 (drop the last logits and "
                                 "the first ids)")
                if math.isclose(value, F.cross_entropy(logits[:, 1:].flatten(0, 1),
                                                       ids[:, :-1].flatten()).item(), rel_tol=1e-5):
                    raise _Wrong("shifted the wrong way: the logits at position t predict the id at t + 1")
                if math.isclose(value, want.item() / math.log(2), rel_tol=1e-5):
                    raise _Wrong("the loss is in bits; the convention (and F.cross_entropy) is nats")
                if math.isclose(value, want.item() * b * (t - 1), rel_tol=1e-5):
                    raise _Wrong(f"summed over the {b * (t - 1)} predicted tokens; the loss is their mean")
                probs = logits[:, :-1].softmax(-1).flatten(0, 1)
                if math.isclose(value, F.cross_entropy(probs, ids[:, 1:].flatten()).item(), rel_tol=1e-5):
                    raise _Wrong("cross_entropy was given probabilities (a softmax was applied first); it takes "
                                 "the raw logits and applies log_softmax itself")
            if isinstance(got, torch.Tensor) and got.dim() > 0 and got.numel() > 1:
                raise _Wrong(f"returned a tensor of shape {tuple(got.shape)}; expected a scalar (the mean)")
            if problem:
                raise _Wrong(problem)
        return _Case(label, run, hidden)

    def hf_case():
        model = _tiny_gpt2()
        ids = torch.randint(0, 50, (2, 9), generator=torch.Generator().manual_seed(3))
        with torch.no_grad():
            out = model(input_ids=ids, labels=ids)
        got = _call(fn, out.logits, ids)
        problem = _number_problem(got, out.loss.item(), "the loss", rel=1e-5)
        if problem:
            raise _Wrong(problem + " (compared with the loss GPT-2 returns for labels=input_ids)")

    return _run("causal_lm_loss", [
        case(2, 6, 11, "logits (2, 6, 11), ids (2, 6)", hidden=False),
        case(1, 2, 5, "a single pair of tokens", seed=1),
        case(4, 17, 300, "(4, 17, 300)", seed=2),
        _Case("a tiny GPT-2's logits, against its own loss", hf_case),
    ])


def check_perplexity(fn: Callable) -> bool:
    """Chapter 3. ``fn(batch_losses, batch_tokens) -> float``: perplexity over several batches, given each
    batch's mean loss (nats per token) and its number of predicted tokens."""
    def case(losses, tokens, label, hidden=True):
        def run():
            got = _call(fn, list(losses), list(tokens))
            total = sum(l * n for l, n in zip(losses, tokens)) / sum(tokens)
            want = math.exp(total)
            problem = _number_problem(got, want, "the perplexity", rel=1e-6)
            if problem and isinstance(got, (int, float)) and not isinstance(got, bool):
                if math.isclose(got, math.exp(sum(losses) / len(losses)), rel_tol=1e-9) and not math.isclose(
                        got, want, rel_tol=1e-9):
                    raise _Wrong("averaged the batch means; weight each batch by its number of tokens")
                if math.isclose(got, total, rel_tol=1e-9):
                    raise _Wrong("returned the mean loss; perplexity is exp of it")
                if math.isclose(got, 2 ** total, rel_tol=1e-9):
                    raise _Wrong("used 2 ** loss; the losses are in nats, so use exp")
                if math.isclose(got, sum(math.exp(l) * n for l, n in zip(losses, tokens)) / sum(tokens),
                                rel_tol=1e-9):
                    raise _Wrong("averaged the per-batch perplexities; average the losses (weighted by tokens), "
                                 "then take exp once")
                if len(losses) > 1 and math.isclose(got, math.exp(total * sum(tokens) / len(losses)), rel_tol=1e-9):
                    raise _Wrong("divided the summed loss by the number of batches; divide by the number of "
                                 "tokens")
            if problem:
                raise _Wrong(problem)
        return _Case(f"{label}: losses {list(losses)}, tokens {list(tokens)}", run, hidden)

    return _run("perplexity", [
        case([2.0, 2.5], [100, 100], "two batches", hidden=False),
        case([1.0, 3.0], [300, 10], "a short last batch"),
        case([0.0], [5], "a perfect model"),
        case([math.log(50)] * 3, [7, 8, 9], "a uniform guess over 50 tokens"),
    ])


def check_exact_duplicates(fn: Callable) -> bool:
    """Chapter 3. ``fn(docs) -> list[int]``: indices of documents equal to an earlier one after
    normalisation (case, Unicode NFKC, runs of whitespace); the first copy is kept."""
    from ..quality import exact_duplicates, normalize_text

    def case(docs, label, hidden=True):
        def run():
            got = _call(fn, list(docs))
            want = exact_duplicates(docs)
            if not isinstance(got, list):
                raise _Wrong(f"returned a {type(got).__name__}; expected a list of indices")
            if sorted(got) == sorted(want) and got != want:
                raise _Wrong("the right indices in the wrong order: list them in increasing order")
            if got != want:
                keys = [normalize_text(d) for d in docs]
                firsts = {i for i, k in enumerate(keys) if keys.index(k) == i and keys.count(k) > 1}
                if set(want) < set(got) and set(got) - set(want) <= firsts:
                    raise _Wrong("listed every copy; keep the first copy and list only the later ones")
                if set(got) & firsts:
                    raise _Wrong("marked the first copy as a duplicate; keep the first, list the later ones")
                if len(got) < len(want):
                    import unicodedata

                    def dupes(key):
                        seen, out = set(), []
                        for i, doc in enumerate(docs):
                            out += [i] if key(doc) in seen else []
                            seen.add(key(doc))
                        return out
                    if got == dupes(lambda d: " ".join(d.casefold().split())):
                        raise _Wrong(f"found {len(got)} duplicates, expected {len(want)}: case and whitespace are "
                                     "normalised, but not Unicode forms (NFKC turns full-width letters into "
                                     "ordinary ones)")
                    if got == dupes(lambda d: unicodedata.normalize("NFKC", d).casefold().strip()):
                        raise _Wrong(f"found {len(got)} duplicates, expected {len(want)}: case and Unicode forms are "
                                     "normalised, but not runs of whitespace (join the split() words with one "
                                     "space)")
                    raise _Wrong(f"found {len(got)} duplicates, expected {len(want)}: are case, whitespace "
                                 "and Unicode forms normalised before comparing?")
                raise _Wrong(f"found {len(got)} duplicates at {got}; expected {len(want)}")
        return _Case(label, run, hidden)

    return _run("exact_duplicates", [
        case(["A cat.", "a  cat.", "A dog.", "A cat."], "['A cat.', 'a  cat.', 'A dog.', 'A cat.']", hidden=False),
        case([], "no documents"),
        case(["x", "y", "z"], "no duplicates"),
        case(["Tom ran.\n", " tom   RAN.", "Ｔｏｍ ran.", "Tom ran"], "whitespace, case and full-width letters"),
        case(["b", "a", "b", "a", "b"], "several groups"),
    ])


def check_shingles_jaccard(shingle_fn: Callable, jaccard_fn: Callable) -> bool:
    """Chapter 3. ``shingle_fn(text, n) -> set`` of word n-grams of the normalised text (a text shorter
    than n words is one shingle) and ``jaccard_fn(a, b) -> float`` (1.0 for two empty sets); their
    similarities are compared with ``llmlab.quality``."""
    from ..quality import jaccard, shingles

    pairs = [
        ("the cat sat on the mat today", "the cat sat on the mat yesterday", 3, True),
        ("One two three four five six", "one  TWO three four five six", 2, True),
        ("a b", "a b c d e", 5, False),
        ("tom saw a big red ball and a small blue ball", "tom saw a big red ball", 2, False),
    ]

    def pair_case(a, b, n, shown):
        def run():
            sa, sb = _call(shingle_fn, a, n), _call(shingle_fn, b, n)
            for s, text in ((sa, a), (sb, b)):
                if not isinstance(s, (set, frozenset)):
                    raise _Wrong(f"shingle_fn returned a {type(s).__name__}; expected a set")
                want_n = len(shingles(text, n))
                words = len(text.split())
                if words < n and not s:
                    raise _Wrong(f"shingle_fn({text!r}, {n}) gives no shingle; a text shorter than {n} words is "
                                 "one shingle (the whole normalised text)")
                if len(s) != want_n:
                    raise _Wrong(f"shingle_fn({text!r}, {n}) gives {len(s)} shingles; a text of {words} words "
                                 f"has {want_n} distinct {n}-word shingles")
            if not math.isclose(jaccard(set(sa), set(sb)), jaccard(shingles(a, n), shingles(b, n)), rel_tol=1e-9):
                raise _Wrong(f"shingle_fn gives the right number of shingles but not the right ones for n={n}: "
                             "normalise the text first (case, Unicode forms, runs of whitespace), then take "
                             "word n-grams")
            got = _call(jaccard_fn, sa, sb)
            want = jaccard(shingles(a, n), shingles(b, n))
            problem = _number_problem(got, want, "the Jaccard similarity", rel=1e-9)
            if problem:
                if isinstance(got, (int, float)) and math.isclose(got, len(sa & sb) / max(1, len(sa)), rel_tol=1e-9):
                    problem += " (divided by the size of the first set; divide by the size of the union)"
                elif isinstance(got, (int, float)) and math.isclose(got, len(sa & sb) / (len(sa) + len(sb)),
                                                                   rel_tol=1e-9):
                    problem += (" (divided by |a| + |b|, which counts the shared shingles twice; divide by the "
                                "size of the union)")
                raise _Wrong(problem)
        return _Case(f"{a!r} vs {b!r}, n={n}", run, hidden=not shown)

    def empty():
        got = _call(jaccard_fn, set(), set())
        problem = _number_problem(got, 1.0, "jaccard(set(), set())")
        if problem:
            raise _Wrong(problem + " (two empty sets are identical: 1.0, and no division by zero)")

    return _run("shingles_jaccard", [pair_case(*p) for p in pairs] + [_Case("two empty sets", empty)])
