"""Cleaning a pre-training corpus: a quality filter and deduplication (chapter 3).

Text scraped from the web is full of navigation menus, keyword spam, markup and
copies of the same page. Before pre-training, pipelines such as RefinedWeb
(Penedo et al. 2023) and MassiveText (Rae et al. 2021) drop documents that do not
look like prose and then remove duplicates. This module does the same three steps
at a small scale, each one reporting the documents and tokens it removes:

1. :func:`quality_filter`: heuristic rules in the style of the Gopher rules
   (Rae et al. 2021): word count, mean word length, share of words with a
   letter, symbol ratio, stop words, duplicated lines.
2. :func:`exact_dedup`: drop documents identical after normalisation (case,
   Unicode form, whitespace), found by hashing.
3. :func:`near_dedup`: drop documents whose word 5-gram sets overlap with an
   earlier document's by at least a Jaccard similarity threshold. Candidates
   come from MinHash signatures with locality-sensitive hashing (Broder 1997;
   Leskovec et al., "Mining of Massive Datasets", ch. 3); each candidate pair is
   then confirmed with the exact Jaccard similarity.

:func:`clean_corpus` runs the three in that order. Tokens are counted with the
tokenizer you pass (the one you will train on), or as whitespace words.

:func:`load_labelled_snippets` reads a frozen set of hand-written, real-looking
scraped snippets (cookie banners, menus, keyword spam, mojibake, code, fine
prose...) with a human keep/drop label each, and :func:`filter_agreement`
counts where the filter agrees with those labels and where it does not.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import _checks

_EMPTY = 1 << 32  # the signature of an empty set: above every 32-bit hash
_WORD = re.compile(r"\S+")
GOPHER_STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})


# --------------------------------------------------------------------------- reports
@dataclass
class StepReport:
    """What one cleaning step removed. Token counts use the tokenizer given to the step."""

    step: str
    docs_in: int
    docs_removed: int
    tokens_in: int
    tokens_removed: int

    @property
    def docs_kept(self) -> int:
        return self.docs_in - self.docs_removed

    @property
    def tokens_kept(self) -> int:
        return self.tokens_in - self.tokens_removed

    @property
    def token_fraction_removed(self) -> float:
        return self.tokens_removed / self.tokens_in if self.tokens_in else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "docs_kept": self.docs_kept, "tokens_kept": self.tokens_kept,
                "share of tokens removed": self.token_fraction_removed}


def token_counter(tokenizer=None) -> Callable[[list[str]], list[int]]:
    """A function from documents to their token counts: ``tokenizer``'s tokens, or whitespace words if None."""
    if tokenizer is not None:
        _checks.tokenizer("tokenizer", tokenizer)
    if tokenizer is None:
        return lambda docs: [len(d.split()) for d in docs]
    return lambda docs: [len(ids) for ids in tokenizer(list(docs), add_special_tokens=False)["input_ids"]] if docs else []


def _report(step: str, docs: list[str], removed: list[int], counts: list[int]) -> StepReport:
    return StepReport(step=step, docs_in=len(docs), docs_removed=len(removed),
                      tokens_in=sum(counts), tokens_removed=sum(counts[i] for i in removed))


# --------------------------------------------------------------------------- quality filter
@dataclass
class QualityRules:
    """Thresholds of the document quality filter. Defaults follow Rae et al. (2021), appendix A.1.1."""

    min_words: int = 50
    max_words: int = 100_000
    min_mean_word_length: float = 3.0   # characters
    max_mean_word_length: float = 10.0  # characters
    min_alpha_word_fraction: float = 0.8
    max_symbol_word_ratio: float = 0.1  # "#" and "..." per word
    min_stop_words: int = 2
    max_duplicate_line_fraction: float = 0.3

    def __post_init__(self) -> None:
        _checks.positive_int("min_words", self.min_words)
        _checks.positive_int("max_words", self.max_words)
        for name in ("min_mean_word_length", "max_mean_word_length", "max_symbol_word_ratio"):
            _checks.number(name, getattr(self, name))  # a number, finite (NaN would pass every comparison)
        if self.max_words < self.min_words:
            raise ValueError(f"max_words must be >= min_words ({self.min_words}), got {self.max_words}")
        if not 0 < self.min_mean_word_length <= self.max_mean_word_length:
            raise ValueError("mean word length bounds must satisfy 0 < min_mean_word_length <= max_mean_word_length, "
                             f"got {self.min_mean_word_length} and {self.max_mean_word_length}")
        _checks.fraction("min_alpha_word_fraction", self.min_alpha_word_fraction)
        _checks.fraction("max_duplicate_line_fraction", self.max_duplicate_line_fraction)
        if self.max_symbol_word_ratio < 0:
            raise ValueError(f"max_symbol_word_ratio must be >= 0, got {self.max_symbol_word_ratio}")
        if isinstance(self.min_stop_words, bool) or not isinstance(self.min_stop_words, int) or self.min_stop_words < 0:
            raise ValueError(f"min_stop_words must be an integer >= 0, got {self.min_stop_words!r}")


def quality_problems(text: str, rules: QualityRules | None = None) -> list[str]:
    """Names of the rules ``text`` breaks (an empty list means it passes). Words are whitespace-separated."""
    if not isinstance(text, str):
        raise _checks.ArgumentTypeError(f"text must be a string, got {type(text).__name__}")
    rules = rules or QualityRules()
    words = _WORD.findall(text)
    problems = []
    if not rules.min_words <= len(words) <= rules.max_words:
        problems.append("word count")
    if not words:
        return problems
    mean_len = sum(len(w) for w in words) / len(words)
    if not rules.min_mean_word_length <= mean_len <= rules.max_mean_word_length:
        problems.append("mean word length")
    if sum(any(c.isalpha() for c in w) for w in words) / len(words) < rules.min_alpha_word_fraction:
        problems.append("words with a letter")
    if (text.count("#") + text.count("...") + text.count("\u2026")) / len(words) > rules.max_symbol_word_ratio:
        problems.append("symbol ratio")
    stripped = {w.strip(".,!?;:\"'()").lower() for w in words}
    if len(stripped & GOPHER_STOP_WORDS) < rules.min_stop_words:
        problems.append("stop words")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and 1 - len(set(lines)) / len(lines) > rules.max_duplicate_line_fraction:
        problems.append("duplicate lines")
    return problems


def quality_filter(docs: Sequence[str], rules: QualityRules | None = None,
                   tokenizer=None) -> tuple[list[str], StepReport, dict[str, int]]:
    """Keep the documents that pass every rule.

    Returns the kept documents (in order), the step's report, and how many
    documents broke each rule (a document can break several).
    """
    docs = _checks.strings("docs", docs, allow_empty=True)
    rules = rules or QualityRules()
    problems = [quality_problems(d, rules) for d in docs]
    removed = [i for i, p in enumerate(problems) if p]
    by_rule: dict[str, int] = {}
    for p in problems:
        for name in p:
            by_rule[name] = by_rule.get(name, 0) + 1
    report = _report("quality filter", docs, removed, token_counter(tokenizer)(docs))
    drop = set(removed)
    return [d for i, d in enumerate(docs) if i not in drop], report, by_rule


# --------------------------------------------------------------------------- a labelled check
LABELLED_SNIPPETS = Path(__file__).resolve().parent / "corpus" / "messy_web.json"
LABELS = ("keep", "drop")


def load_labelled_snippets(path: str | Path = LABELLED_SNIPPETS) -> list[dict]:
    """The frozen snippets of real-looking scraped text (chapter 3), each a dict with ``kind``,
    ``label`` ("keep" or "drop", what a careful reader decided for an English prose
    corpus), ``why`` and ``text``. They were written by hand, not generated to fail the rules."""
    import json

    if not isinstance(path, (str, Path)):
        raise TypeError(f"path must be a str or pathlib.Path, got {type(path).__name__}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no labelled snippets at {path}")
    snippets = json.loads(path.read_text(encoding="utf-8"))["snippets"]
    for i, item in enumerate(snippets):
        if not isinstance(item.get("text"), str) or item.get("label") not in LABELS:
            raise ValueError(f"snippet {i} of {path} needs a text (str) and a label in {LABELS}, "
                             f"got label {item.get('label')!r}")
    return snippets


def filter_agreement(texts: Sequence[str], labels: Sequence[str],
                     rules: QualityRules | None = None) -> dict[str, int]:
    """How the quality filter's decisions compare with human ``labels`` ("keep" or "drop").

    Returns four counts: ``caught`` (labelled drop, filter drops), ``missed``
    (labelled drop, filter keeps), ``wrongly dropped`` (labelled keep, filter
    drops) and ``kept`` (labelled keep, filter keeps). Treating "drop" as the
    positive class, precision is caught / (caught + wrongly dropped) and recall is
    caught / (caught + missed).
    """
    texts = _checks.strings("texts", texts, allow_empty=True)
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise ValueError(f"labels must be a list of 'keep'/'drop', one per text, got {type(labels).__name__}")
    if len(labels) != len(texts):
        raise ValueError(f"labels must have one entry per text: {len(texts)} texts, {len(labels)} labels")
    for i, label in enumerate(labels):
        if label not in LABELS:
            raise ValueError(f"labels must each be one of {LABELS}; item {i} is {label!r}")
    rules = rules or QualityRules()
    counts = {"caught": 0, "missed": 0, "wrongly dropped": 0, "kept": 0}
    for text, label in zip(texts, labels):
        dropped = bool(quality_problems(text, rules))
        if label == "drop":
            counts["caught" if dropped else "missed"] += 1
        else:
            counts["wrongly dropped" if dropped else "kept"] += 1
    return counts


# --------------------------------------------------------------------------- exact dedup
def normalize_text(text: str) -> str:
    """Unicode NFKC, case-folded, runs of whitespace made one space, ends stripped."""
    _checks.string("text", text)
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def exact_duplicates(docs: Sequence[str]) -> list[int]:
    """Indices of documents whose normalised text equals an earlier document's (the first copy is kept)."""
    docs = _checks.strings("docs", docs, allow_empty=True)
    seen: set[bytes] = set()
    dupes = []
    for i, doc in enumerate(docs):
        digest = hashlib.sha1(normalize_text(doc).encode("utf-8")).digest()
        if digest in seen:
            dupes.append(i)
        seen.add(digest)
    return dupes


def exact_dedup(docs: Sequence[str], tokenizer=None) -> tuple[list[str], StepReport]:
    """Drop exact duplicates (after :func:`normalize_text`); return the kept documents and the report."""
    docs = _checks.strings("docs", docs, allow_empty=True)
    removed = exact_duplicates(docs)
    report = _report("exact dedup", docs, removed, token_counter(tokenizer)(docs))
    drop = set(removed)
    return [d for i, d in enumerate(docs) if i not in drop], report


# --------------------------------------------------------------------------- near dedup
def shingles(text: str, n: int = 5) -> set[int]:
    """The set of word ``n``-grams of the normalised text, each hashed to a 32-bit integer.

    A text shorter than ``n`` words gives one shingle: the whole text.
    """
    n = _checks.positive_int("n", n)
    words = normalize_text(text).split()
    grams = [" ".join(words[i:i + n]) for i in range(max(1, len(words) - n + 1))]
    return {int.from_bytes(hashlib.blake2b(g.encode("utf-8"), digest_size=4).digest(), "little") for g in grams}


def jaccard(a: set, b: set) -> float:
    """|a ∩ b| / |a ∪ b| (1.0 for two empty sets)."""
    for name, value in (("a", a), ("b", b)):
        if not isinstance(value, (set, frozenset)):
            raise _checks.ArgumentTypeError(f"{name} must be a set (of shingles, see quality.shingles), got "
                                            f"{type(value).__name__} {_checks._shown(value)}")
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _hash_params(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 1 << 63, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)  # odd, 64-bit
    b = rng.integers(0, 1 << 63, size=num_perm, dtype=np.uint64) * np.uint64(2)
    return a, b


def minhash_signature(shingle_set: set[int], num_perm: int = 128, seed: int = 0) -> np.ndarray:
    """MinHash signature, shape (num_perm,): for each of ``num_perm`` random hash functions
    h(x) = mix((a x + b) mod 2^64), with random odd ``a`` and random ``b`` per function and
    ``mix`` the finaliser of the splitmix64 generator (top 32 bits kept), the minimum
    over the shingles.

    Two sets' signatures agree at one position with probability equal to their
    Jaccard similarity, so the share of equal positions estimates it.
    """
    num_perm = _checks.positive_int("num_perm", num_perm)
    return _signature(shingle_set, *_hash_params(num_perm, seed))


def _signature(shingle_set: set[int], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if not shingle_set:
        return np.full(a.shape, _EMPTY, dtype=np.uint64)
    x = np.fromiter(shingle_set, dtype=np.uint64, count=len(shingle_set))[:, None]  # (S, 1), < 2^32
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps around: that is the "mod 2^64"
        z = x * a[None, :] + b[None, :]  # (S, num_perm)
        # splitmix64's finaliser: mixes every input bit into every output bit
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = (z ^ (z >> np.uint64(31))) >> np.uint64(32)  # each < 2^32
    return z.min(axis=0)  # (num_perm,)


def near_duplicate_pairs(docs: Sequence[str], threshold: float = 0.8, n: int = 5, num_perm: int = 128,
                         bands: int = 32, seed: int = 0) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, jaccard)`` with i < j whose word ``n``-gram sets have Jaccard >= ``threshold``.

    Candidates are the pairs whose MinHash signatures agree on every row of at
    least one of ``bands`` bands (``num_perm / bands`` rows each): with 32 bands
    of 4 rows, a pair at Jaccard 0.8 becomes a candidate with probability
    1 - (1 - 0.8^4)^32, over 0.9999. Candidates whose signatures estimate a
    Jaccard more than 0.15 below ``threshold`` (over four standard errors at 128
    hash functions) are dropped; the rest are checked with the exact Jaccard, so
    no reported pair is a false positive.
    """
    docs = _checks.strings("docs", docs, allow_empty=True)
    threshold = _checks.fraction("threshold", threshold, low_open=True)
    num_perm = _checks.positive_int("num_perm", num_perm)
    bands = _checks.positive_int("bands", bands)
    if num_perm % bands:
        raise ValueError(f"num_perm ({num_perm}) must be a multiple of bands ({bands})")
    if len(docs) < 2:
        return []
    sets = [shingles(d, n) for d in docs]
    a, b = _hash_params(num_perm, seed)
    signatures = np.stack([_signature(s, a, b) for s in sets])  # (N, num_perm)
    rows = num_perm // bands
    candidates: set[tuple[int, int]] = set()
    for band in range(bands):
        buckets: dict[bytes, list[int]] = {}
        block = np.ascontiguousarray(signatures[:, band * rows:(band + 1) * rows])
        for i in range(len(docs)):
            buckets.setdefault(block[i].tobytes(), []).append(i)
        for members in buckets.values():
            for x in range(len(members)):
                for y in range(x + 1, len(members)):
                    candidates.add((members[x], members[y]))
    if not candidates:
        return []
    pair_array = np.array(sorted(candidates))  # (P, 2)
    estimate = (signatures[pair_array[:, 0]] == signatures[pair_array[:, 1]]).mean(axis=1)
    pairs = []
    for i, j in pair_array[estimate >= threshold - 0.15].tolist():
        sim = jaccard(sets[i], sets[j])
        if sim >= threshold:
            pairs.append((i, j, sim))
    return pairs


def _cluster_followers(n_docs: int, pairs: list[tuple[int, int, float]]) -> list[int]:
    """Documents joined by pairs form clusters (union-find); all but each cluster's first are returned."""
    parent = list(range(n_docs))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j, _ in pairs:
        ri, rj = root(i), root(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)  # the earliest document represents the cluster
    return [i for i in range(n_docs) if root(i) != i]


def near_dedup(docs: Sequence[str], threshold: float = 0.8, n: int = 5, num_perm: int = 128, bands: int = 32,
               seed: int = 0, tokenizer=None) -> tuple[list[str], StepReport, list[tuple[int, int, float]]]:
    """Drop near duplicates: documents joined by pairs at Jaccard >= ``threshold`` form a cluster,
    and only each cluster's first document is kept. Returns kept documents, report, and the pairs found.
    """
    docs = _checks.strings("docs", docs, allow_empty=True)
    pairs = near_duplicate_pairs(docs, threshold, n, num_perm, bands, seed)
    removed = _cluster_followers(len(docs), pairs)
    report = _report("near dedup", docs, removed, token_counter(tokenizer)(docs))
    drop = set(removed)
    return [d for i, d in enumerate(docs) if i not in drop], report, pairs


# --------------------------------------------------------------------------- pipeline
@dataclass
class CleaningResult:
    """The outcome of :func:`clean_corpus`: kept documents, one report per step, and for every
    input document the step that removed it (None when kept)."""

    kept: list[str]
    reports: list[StepReport]
    removed_by: list[str | None]

    def table(self) -> list[dict]:
        """One dict per step (for ``pandas.DataFrame``): documents and tokens in, removed, kept."""
        return [r.as_dict() for r in self.reports]


def clean_corpus(docs: Sequence[str], tokenizer=None, rules: QualityRules | None = None,
                 threshold: float = 0.8, n: int = 5) -> CleaningResult:
    """Quality filter, then exact dedup, then near dedup (the order RefinedWeb uses: filter, then dedup).

    Tokens are counted once, with ``tokenizer`` (or as whitespace words).
    """
    docs = _checks.strings("docs", docs, allow_empty=True)
    rules = rules or QualityRules()
    counts = token_counter(tokenizer)(docs)
    removed_by: list[str | None] = [None] * len(docs)
    alive = list(range(len(docs)))  # indices into docs of the documents still kept
    reports = []

    def run_step(name: str, removed_local: list[int]) -> None:
        nonlocal alive
        reports.append(_report(name, [docs[i] for i in alive], removed_local, [counts[i] for i in alive]))
        drop = set(removed_local)
        for k in drop:
            removed_by[alive[k]] = name
        alive = [i for k, i in enumerate(alive) if k not in drop]

    run_step("quality filter", [k for k, i in enumerate(alive) if quality_problems(docs[i], rules)])
    run_step("exact dedup", exact_duplicates([docs[i] for i in alive]))
    current = [docs[i] for i in alive]
    pairs = near_duplicate_pairs(current, threshold=threshold, n=n)
    run_step("near dedup", _cluster_followers(len(current), pairs))
    return CleaningResult(kept=[docs[i] for i in alive], reports=reports, removed_by=removed_by)


# --------------------------------------------------------------------------- a demonstration corpus
_FOOTERS = [
    "Share this story: Facebook | Twitter | Email. Posted in Stories for Kids.",
    "Read more bedtime stories at our site. Copyright 2026, all rights reserved.",
    "Did you like this story? Leave a comment below and subscribe for more!",
]
_MENU = ["Home", "About us", "Contact", "Login", "Sign up", "Privacy policy", "Cookie settings", "Shop",
         "Blog", "FAQ", "Terms of use", "Careers", "Newsletter", "Help", "Sitemap"]
_SPAM = ["cheap toys", "best price", "buy now", "free shipping", "kids books sale", "discount code",
         "click here", "top deals"]


def _junk(rng: np.random.Generator) -> str:
    kind = rng.integers(4)
    if kind == 0:  # a navigation bar: few words, no sentences
        return " | ".join(rng.choice(_MENU, size=rng.integers(5, 12), replace=False))
    if kind == 1:  # keyword spam: the same lines over and over
        lines = [", ".join(rng.choice(_SPAM, size=4)) for _ in range(3)]
        return "\n".join(lines[rng.integers(3)] for _ in range(rng.integers(15, 30)))
    if kind == 2:  # markup and hashtags left over from a broken extraction
        tags = " ".join(f"#{w.replace(' ', '')}" for w in rng.choice(_SPAM + _MENU, size=30))
        return f"<div class=\"post\"> {tags} ... </div> ... " + " ".join(["..."] * int(rng.integers(10, 20)))
    # a table of numbers
    return "\n".join(" ".join(str(v) for v in rng.integers(0, 1000, size=8)) for _ in range(rng.integers(8, 16)))


def _near_copy(story: str, rng: np.random.Generator) -> str:
    kind = rng.integers(3)
    if kind == 0:  # the same story on another page, with that page's footer
        return story + "\n" + _FOOTERS[rng.integers(len(_FOOTERS))]
    sentences = story.split(". ")
    if kind == 1 and len(sentences) > 3:  # the last sentence cut off
        return ". ".join(sentences[:-1]) + "."
    words = story.split(" ")  # one word changed
    i = int(rng.integers(len(words)))
    words[i] = {"big": "huge", "little": "small", "happy": "glad"}.get(words[i], "very " + words[i])
    return " ".join(words)


def scraped_corpus(stories: Sequence[str], exact_copies: float = 0.08, near_copies: float = 0.08,
                   junk: float = 0.10, seed: int = 0) -> tuple[list[str], list[str]]:
    """A demonstration of scraped text built from clean ``stories`` (chapter 3).

    Adds, as fractions of ``len(stories)``: exact copies of random stories (with
    changed case or spacing, as re-posted pages have), near copies (a site footer
    added, the last sentence cut, or one word changed), and junk documents
    (navigation bars, keyword spam, markup, tables of numbers). The stories come
    first, in order, and the additions after them in random order, so a
    pipeline that keeps the first copy keeps the original.
    Returns the documents and, for each, what it is: "original", "exact copy",
    "near copy" or "junk". Deterministic for a given ``seed``.
    """
    stories = _checks.strings("stories", stories, allow_empty=True)
    for name, value in (("exact_copies", exact_copies), ("near_copies", near_copies), ("junk", junk)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"{name} must be a fraction in [0, 1], got {value!r}")
    if not stories:
        raise ValueError("stories must hold at least one story to copy from")
    rng = np.random.default_rng(seed)
    docs = [(s, "original") for s in stories]
    for _ in range(round(exact_copies * len(stories))):
        s = stories[rng.integers(len(stories))]
        docs.append((s.upper() if rng.random() < 0.3 else "  " + s.replace(". ", ".  ") + "\n", "exact copy"))
    for _ in range(round(near_copies * len(stories))):
        docs.append((_near_copy(stories[rng.integers(len(stories))], rng), "near copy"))
    for _ in range(round(junk * len(stories))):
        docs.append((_junk(rng), "junk"))
    # the originals come first, as if crawled first; the additions follow in random order
    added = docs[len(stories):]
    docs = docs[:len(stories)] + [added[i] for i in rng.permutation(len(added))]
    return [d for d, _ in docs], [k for _, k in docs]
