"""Finding the documents that answer a query: BM25 word matching and sentence embeddings (chapter 1).

- :func:`bm25_scores` scores documents by the query words they contain (Okapi BM25);
  :func:`word_overlap` measures how much of a query's wording a text shares.
- :func:`mean_pooled_embeddings` turns texts into sentence vectors with an encoder,
  compared by their dot product.
- :data:`RETRIEVAL_QUERIES` are the chapter's queries, each worded close to the
  stories of one plot or paraphrased away from them.
"""

from __future__ import annotations

import math
import re

import torch
import torch.nn.functional as F

from . import _checks


def _check_texts(name: str, texts: list[str]) -> None:
    if isinstance(texts, str) or not isinstance(texts, (list, tuple)) or not texts:
        raise TypeError(f"{name} must be a non-empty list of strings, got {type(texts).__name__}")
    bad = [p for p in texts if not isinstance(p, str) or not p.strip()]
    if bad:
        raise ValueError(f"every one of {name} must be a non-empty string, got {bad[0]!r}")


_WORD = re.compile(r"[a-z]+")
STOPWORDS = frozenset(
    "a an the and or but of to in on at for with by from as is are was were be been it its this that these "
    "those he she they them his her their i we you my our your me us who what when where how not no so "
    "then than too very can will just do does did has have had each other one two".split())


def words(text: str) -> list[str]:
    """The lower-case words (runs of letters a-z) of ``text``, in order: the tokens BM25 counts."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    return _WORD.findall(text.lower())


def word_overlap(query: str, text: str) -> float:
    """The share (0 to 1) of the query's content words (its words minus :data:`STOPWORDS`) that also
    occur in ``text``: how much a word-matching method could lean on shared wording."""
    content = set(words(query)) - STOPWORDS
    if not content:
        raise ValueError(f"query must have at least one content word (not a stopword), got {query!r}")
    return len(content & set(words(text))) / len(content)


def bm25_scores(query: str, documents: list[str], k1: float = 1.5,
                b: float = 0.75) -> list[float]:
    """Okapi BM25 score of every document for ``query`` (Robertson & Zaragoza 2009).

    Scores are unitless. For each distinct query word t, a document gains
    ``idf(t) * f (k1 + 1) / (f + k1 (1 - b + b |d| / avgdl))``, where f is how often
    t occurs in the document, |d| the document's length in words and avgdl the mean
    length; ``idf(t) = ln(1 + (N - n_t + 0.5) / (n_t + 0.5))`` with n_t of the N
    documents containing t (the ``1 +`` keeps idf positive, as Lucene does).
    Words are :func:`words`.
    """
    _check_texts("documents", documents)
    if not isinstance(query, str):
        raise TypeError(f"query must be a string, got {type(query).__name__}")
    _checks.non_negative("k1", k1)
    _checks.number("b", b, 0.0, 1.0)
    docs = [words(d) for d in documents]
    n_docs, avgdl = len(docs), sum(len(d) for d in docs) / len(docs)
    if avgdl == 0:
        raise ValueError("documents must contain at least one word between them")
    counts = [{} for _ in docs]
    for c, d in zip(counts, docs):
        for w in d:
            c[w] = c.get(w, 0) + 1
    scores = [0.0] * n_docs
    for t in set(words(query)):
        n_t = sum(t in c for c in counts)  # documents that contain t
        idf = math.log(1 + (n_docs - n_t + 0.5) / (n_t + 0.5))  # rare words weigh more
        for i, (c, d) in enumerate(zip(counts, docs)):
            f = c.get(t, 0)
            if f:  # saturates in f; long documents are scaled down
                norm = k1 * (1 - b + b * len(d) / avgdl)
                scores[i] += idf * f * (k1 + 1) / (f + norm)
    return scores


# A query per story plot of llmlab.data, each with a sentence only stories of that plot contain.
# The first of each pair is worded close to the stories; the second is a paraphrase written to share
# few content words with them (word_overlap measures how few).
RETRIEVAL_QUERIES: list[tuple[str, str, str]] = [  # (query, marker, wording)
    ("a child loses a toy and a friend helps find it", "was gone!", "close"),
    ("a youngster misplaces a plaything and a companion recovers it", "was gone!", "paraphrase"),
    ("children share their food with a hungry friend", "we can share", "close"),
    ("splitting snacks with a starving pal", "we can share", "paraphrase"),
    ("a child keeps trying until they can do something new", "Try again!", "close"),
    ("persistence after failing at an unfamiliar skill", "Try again!", "paraphrase"),
    ("playing outside when it starts to rain", "started to rain", "close"),
    ("a downpour interrupts outdoor games", "started to rain", "paraphrase"),
    ("children help a little animal in trouble", "We must help it", "close"),
    ("rescuing an injured or stranded creature", "We must help it", "paraphrase"),
    ("a child is afraid of something strange at night", "Let us look together", "close"),
    ("a frightening mystery that turns out harmless", "Let us look together", "paraphrase"),
    ("a child makes a birthday gift for a friend", "birthday", "close"),
    ("a handmade present when you cannot afford one", "birthday", "paraphrase"),
    ("two friends race each other", "liked to race", "close"),
    ("the tortoise and the hare: slow and steady beats speedy", "liked to race", "paraphrase"),
    ("children find a treasure map and dig", "treasure map", "close"),
    ("following a chart to unearth buried riches", "treasure map", "paraphrase"),
    ("a shy new child at school makes a friend", "was shy", "close"),
    ("welcoming a timid newcomer to class", "was shy", "paraphrase"),
    ("children cook food together", "kitchen", "close"),
    ("preparing a meal for relatives", "kitchen", "paraphrase"),
]



@torch.no_grad()
def mean_pooled_embeddings(model: torch.nn.Module, tokenizer, texts: list[str],
                           batch_size: int = 50) -> torch.Tensor:
    """Sentence vectors ``(N, hidden)`` from an encoder: the mean of its last hidden states over each text's
    tokens (padding excluded), scaled to length 1, as sentence-transformers does (Reimers & Gurevych 2019)."""
    _checks.model("model", model)
    _check_texts("texts", texts)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(list(texts[i:i + batch_size]), padding=True, truncation=True,
                        return_tensors="pt").to(device)
        hidden = model(**enc).last_hidden_state  # (B, T, H)
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        out.append(F.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1))
    return torch.cat(out)
