"""Retrieval-augmented generation on the project's own document collection (chapter 15).

A language model answers from what its weights hold; asked about a town it never read
of, it invents one. Retrieval-augmented generation (Lewis et al. 2020) looks the answer
up first: embed the documents once, embed the question, put the nearest documents in
the prompt, and let the model read them.

- :func:`load_documents`, :func:`load_questions`, :func:`load_out_of_scope` read the
  frozen collection (``llmlab/corpus/augment_*.json``, described in
  ``llmlab/corpus/AUGMENT.md``) and check every item as they load.
- :class:`Retriever` embeds documents with the zoo's MiniLM and searches them exactly by
  cosine similarity; :class:`BM25Retriever` matches words (Okapi BM25);
  :class:`HybridRetriever` fuses rankings by reciprocal rank (Cormack et al. 2009).
  All three answer ``search(query, k) -> [(document index, score), ...]``, best first.
- :func:`recall_at_k` and :func:`gold_ranks` measure a retriever against the questions'
  gold documents.
- :func:`prompt_text` writes the chat prompt (a system message asking for a few words, then
  the passages and the question; other :data:`PROMPT_STYLES` for comparison);
  :func:`generate_answers` answers a batch of prompts greedily;
  :func:`answer` runs the whole loop for one question.
- :func:`contains_answer` and :func:`exact_answer` judge a reply against the gold answer.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path

import torch

from . import _checks
from .chat import _greedy
from .evaluation import normalize_answer
from .retrieval import STOPWORDS, mean_pooled_embeddings, words

CORPUS = Path(__file__).parent / "corpus"
DOCUMENTS_FILE = CORPUS / "augment_documents.json"
QUESTIONS_FILE = CORPUS / "augment_questions.json"
#: the kinds of document in the collection; "capital" documents hold real facts, the rest are invented
KINDS = ("town", "person", "product", "other", "capital")
WORDINGS = ("close", "paraphrase")

#: reciprocal-rank fusion's constant (Cormack, Clarke & Buettcher 2009 found 60 near-optimal)
RRF_K = 60
#: new tokens allowed per answer: enough for a short sentence
MAX_NEW_TOKENS = 24

# The prompt styles compared on the first DEV_QUESTIONS questions (the recording's "prompts" part);
# "system" was the best there and is the default everywhere else.
PROMPT_STYLES = ("system", "example", "plain", "question first")
DEFAULT_STYLE = "system"
#: the first questions of the file, used to choose the prompt style and left out of the chapter's figures
DEV_QUESTIONS = 24
SYSTEM_BOOK = "Answer the question in a few words."
SYSTEM_PASSAGES = "Answer the question in a few words using the passages given."
# the worked example of the "example" style: a passage about a lamp that is not in the collection
EXAMPLE_PASSAGE = ("The Harwick Lantern is a brass oil lamp made by the Pell Works of Dunmore since 1911. "
                   "It burns for nine hours on one filling of oil.")
EXAMPLE_QUESTION = "Who makes the Harwick Lantern?"
EXAMPLE_ANSWER = "the Pell Works"


# --------------------------------------------------------------------------- the collection
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load_json(path: Path):
    if not path.exists():
        raise _checks.MissingFileError(f"{path} is missing: the collection ships inside the llmlab package")
    return json.loads(path.read_text(encoding="utf-8"))


def load_documents() -> list[dict]:
    """The collection's documents, each ``{"id", "kind", "title", "text"}``, in file order.

    The document's index in this list is the index :class:`Retriever` returns.
    """
    docs = _load_json(DOCUMENTS_FILE)
    if not isinstance(docs, list) or not docs:
        raise ValueError(f"{DOCUMENTS_FILE.name} must hold a non-empty list of documents")
    seen = set()
    for i, d in enumerate(docs):
        where = f"{DOCUMENTS_FILE.name}[{i}]"
        if not isinstance(d, dict) or set(d) != {"id", "kind", "title", "text"}:
            raise ValueError(f"{where} must be a dict with exactly id, kind, title, text")
        if d["kind"] not in KINDS:
            raise ValueError(f"{where} has kind {d['kind']!r}; allowed: {KINDS}")
        if not all(isinstance(d[k], str) and d[k].strip() for k in ("id", "title", "text")):
            raise ValueError(f"{where}: id, title and text must be non-empty strings")
        if d["id"] in seen:
            raise ValueError(f"{where}: id {d['id']!r} appears twice")
        seen.add(d["id"])
    return docs


def _questions_file() -> dict:
    data = _load_json(QUESTIONS_FILE)
    if not isinstance(data, dict) or set(data) != {"questions", "out_of_scope"}:
        raise ValueError(f"{QUESTIONS_FILE.name} must hold a dict with 'questions' and 'out_of_scope'")
    return data


def load_questions() -> list[dict]:
    """The in-scope questions, each ``{"id", "question", "answer", "aliases", "doc", "wording", "distractor",
    "wrong"}``: ``doc`` is the id of the document that answers it, ``wording`` whether the question reuses
    that document's words ("close") or not ("paraphrase"), ``distractor`` another document stating a fact of
    the same type and ``wrong`` that fact's value. Checked on load: every answer is in its document's text."""
    texts = {d["id"]: d["text"].lower() for d in load_documents()}
    items = _questions_file()["questions"]
    keys = {"id", "question", "answer", "aliases", "doc", "wording", "distractor", "wrong"}
    for i, q in enumerate(items):
        where = f"{QUESTIONS_FILE.name} questions[{i}]"
        if not isinstance(q, dict) or set(q) != keys:
            raise ValueError(f"{where} must be a dict with exactly {sorted(keys)}")
        if q["doc"] not in texts or q["distractor"] not in texts:
            raise ValueError(f"{where} names a document that is not in the collection")
        if q["answer"].lower() not in texts[q["doc"]]:
            raise ValueError(f"{where}: its answer {q['answer']!r} is not in document {q['doc']}")
        if q["wording"] not in WORDINGS:
            raise ValueError(f"{where} has wording {q['wording']!r}; allowed: {WORDINGS}")
    return items


def load_out_of_scope() -> list[dict]:
    """Questions the collection cannot answer, each ``{"id", "question", "type"}``: ``"off-topic"`` (nothing
    like the collection) or ``"near"`` (worded like its questions, about names it does not hold)."""
    items = _questions_file()["out_of_scope"]
    for i, q in enumerate(items):
        if not isinstance(q, dict) or set(q) != {"id", "question", "type"} or q["type"] not in ("off-topic",
                                                                                           "near"):
            raise ValueError(f"{QUESTIONS_FILE.name} out_of_scope[{i}] must be a dict with id, question and "
                             f"type ('off-topic' or 'near')")
    return items


def collection_hashes() -> dict[str, str]:
    """SHA-256 of the two files, as ``llmlab/corpus/AUGMENT.md`` records them."""
    return {p.name: _sha256(p) for p in (DOCUMENTS_FILE, QUESTIONS_FILE)}


# --------------------------------------------------------------------------- retrievers
def _documents(documents) -> list[str]:
    if isinstance(documents, str) or not isinstance(documents, (list, tuple)):
        raise _checks.ArgumentTypeError(f"documents must be a list of strings (the texts to search), got "
                                        f"{type(documents).__name__}")
    if not documents:
        raise ValueError("documents must hold at least one text")
    for i, d in enumerate(documents):
        if not isinstance(d, str):
            raise _checks.ArgumentTypeError(f"documents[{i}] must be a string, got {type(d).__name__}"
                                            + (" (pass the texts: [d['text'] for d in docs])"
                                               if isinstance(d, dict) else ""))
        if not d.strip():
            raise ValueError(f"documents[{i}] is empty: every document needs some text")
    return list(documents)


def _query(query) -> str:
    if not isinstance(query, str):
        raise _checks.ArgumentTypeError(f"query must be a string, got {type(query).__name__}")
    if not query.strip():
        raise ValueError("query must not be empty")
    return query


def _k(k, n: int) -> int:
    k = _checks.integer("k", k)
    if k < 1:
        raise ValueError(f"k must be at least 1 (how many documents to return), got {k}")
    return min(k, n)


def _top(scores: torch.Tensor, k: int) -> list[tuple[int, float]]:
    # a stable sort: equal scores keep document order, so results never depend on the sort's whims
    order = torch.sort(scores, descending=True, stable=True).indices[:k]
    return [(int(i), float(scores[i])) for i in order]


class Retriever:
    """Dense retrieval: documents and queries embedded by a sentence encoder (by default the zoo's
    ``minilm``, all-MiniLM-L6-v2), searched exactly by cosine similarity.

    Every vector is scaled to length 1, so a dot product is a cosine; :meth:`search` scores the
    query against every document (no approximate index: with hundreds of documents, one matrix
    product is exact and fast).
    """

    def __init__(self, documents: list[str], model: torch.nn.Module | None = None, tokenizer=None,
                 batch_size: int = 32):
        self.documents = _documents(documents)
        if (model is None) != (tokenizer is None):
            raise ValueError("pass both model and tokenizer (a sentence encoder), or neither for the zoo's minilm")
        if model is None:
            from . import zoo

            model, tokenizer = zoo.load("minilm")
        self.model, self.tokenizer = model, tokenizer
        self.batch_size = _checks.positive_int("batch_size", batch_size)
        self.embeddings = self.embed(self.documents)  # (N, H), rows of length 1

    def embed(self, texts: list[str]) -> torch.Tensor:
        """Unit-length sentence vectors ``(len(texts), H)``: mean-pooled last hidden states."""
        return mean_pooled_embeddings(self.model, self.tokenizer, list(texts), self.batch_size).float().cpu()

    def scores(self, query: str) -> torch.Tensor:
        """The cosine similarity of ``query`` to every document, ``(N,)``."""
        return self.scores_many([query])[0]

    def scores_many(self, queries: list[str]) -> torch.Tensor:
        """The cosine similarity of each query to every document, ``(Q, N)``: the queries embedded in
        batches, then one matrix product."""
        return self.embed([_query(q) for q in queries]) @ self.embeddings.T

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """The ``k`` documents most similar to ``query``: ``[(index, cosine), ...]``, best first."""
        return _top(self.scores(query), _k(k, len(self.documents)))


class BM25Retriever:
    """Word matching: Okapi BM25 (Robertson & Zaragoza 2009) over :func:`llmlab.retrieval.words`, with the
    document statistics counted once. Scores equal :func:`llmlab.retrieval.bm25_scores`."""

    def __init__(self, documents: list[str], k1: float = 1.5, b: float = 0.75):
        self.documents = _documents(documents)
        self.k1 = _checks.non_negative("k1", k1)
        self.b = _checks.number("b", b, 0.0, 1.0)
        tokens = [words(d) for d in self.documents]
        self.lengths = torch.tensor([len(t) for t in tokens], dtype=torch.float64)
        if self.lengths.sum() == 0:
            raise ValueError("documents must contain at least one word between them")
        self.counts: list[dict[str, int]] = []
        for t in tokens:
            c: dict[str, int] = {}
            for w in t:
                c[w] = c.get(w, 0) + 1
            self.counts.append(c)
        n = len(tokens)
        df: dict[str, int] = {}
        for c in self.counts:
            for w in c:
                df[w] = df.get(w, 0) + 1
        self.idf = {w: math.log(1 + (n - m + 0.5) / (m + 0.5)) for w, m in df.items()}
        self.norm = self.k1 * (1 - self.b + self.b * self.lengths / self.lengths.mean())  # (N,)

    def scores(self, query: str) -> torch.Tensor:
        """The BM25 score of every document for ``query``, ``(N,)``."""
        out = torch.zeros(len(self.documents), dtype=torch.float64)
        for t in set(words(_query(query))):
            if t not in self.idf:
                continue
            f = torch.tensor([c.get(t, 0) for c in self.counts], dtype=torch.float64)
            out += self.idf[t] * f * (self.k1 + 1) / (f + self.norm)
        return out

    def scores_many(self, queries: list[str]) -> torch.Tensor:
        """:meth:`scores` of each query, stacked: ``(Q, N)``."""
        return torch.stack([self.scores(q) for q in queries])

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """The ``k`` best-scoring documents for ``query``: ``[(index, score), ...]``, best first."""
        return _top(self.scores(query), _k(k, len(self.documents)))


class HybridRetriever:
    """Reciprocal rank fusion (Cormack, Clarke & Buettcher 2009) of several retrievers over the same
    documents: a document scores ``sum over retrievers of 1 / (RRF_K + rank)``, ranks counted from 1.
    Only ranks are fused, so BM25's unbounded scores and cosines need no common scale."""

    def __init__(self, retrievers: list, k: int = RRF_K):
        if isinstance(retrievers, (str, bytes)) or not isinstance(retrievers, (list, tuple)) or len(retrievers) < 2:
            raise _checks.ArgumentTypeError("retrievers must be a list of at least two retrievers")
        for r in retrievers:
            if not hasattr(r, "scores_many") or not hasattr(r, "documents"):
                raise _checks.ArgumentTypeError(f"every retriever needs .scores_many and .documents, got "
                                                f"{type(r).__name__}")
        if any(r.documents != retrievers[0].documents for r in retrievers):
            raise ValueError("every retriever must search the same documents, in the same order")
        self.retrievers = list(retrievers)
        self.documents = retrievers[0].documents
        self.k = _checks.positive_int("k", k)

    def scores(self, query: str) -> torch.Tensor:
        """The fused score of every document, ``(N,)``."""
        return self.scores_many([query])[0]

    def scores_many(self, queries: list[str]) -> torch.Tensor:
        """The fused score of every document for each query, ``(Q, N)``."""
        fused = torch.zeros(len(queries), len(self.documents), dtype=torch.float64)
        for r in self.retrievers:
            order = torch.sort(r.scores_many(queries), dim=1, descending=True, stable=True).indices  # (Q, N)
            ranks = torch.empty_like(order)
            ranks.scatter_(1, order, torch.arange(1, order.size(1) + 1).expand_as(order).contiguous())
            fused += 1.0 / (self.k + ranks.double())
        return fused

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """The ``k`` documents with the highest fused score: ``[(index, score), ...]``, best first."""
        return _top(self.scores(query), _k(k, len(self.documents)))


def gold_ranks(retriever, questions: list[dict], doc_index: dict[str, int]) -> list[int]:
    """The rank (1 = first) at which ``retriever`` puts each question's gold document, searching all."""
    if not hasattr(retriever, "scores_many"):
        raise _checks.ArgumentTypeError(f"retriever must have .scores_many (a Retriever, BM25Retriever or "
                                        f"HybridRetriever), got {type(retriever).__name__}")
    if not questions:
        return []
    scores = retriever.scores_many([q["question"] for q in questions])  # (Q, N)
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices.tolist()
    return [o.index(doc_index[q["doc"]]) + 1 for o, q in zip(order, questions)]


def recall_at_k(ranks: list[int], k: int) -> float:
    """Recall at k for one gold document per question: the share of questions whose gold document
    is among the first ``k`` retrieved, from the ranks :func:`gold_ranks` returns."""
    if isinstance(ranks, (str, bytes)) or not isinstance(ranks, (list, tuple)) or not ranks:
        raise _checks.ArgumentTypeError("ranks must be a non-empty list of ranks (1 = first)")
    for r in ranks:
        _checks.integer("each rank", r, low=1)
    k = _checks.positive_int("k", k)
    return sum(r <= k for r in ranks) / len(ranks)


# --------------------------------------------------------------------------- prompting and answering
def _listed(passages: list[str]) -> str:
    return "\n".join(f"[{i}] {p}" for i, p in enumerate(passages, 1))


def _user_message(question: str, passages: list[str]) -> str:
    if not passages:
        return f"Question: {question}\nAnswer in a few words."
    return f"Passages:\n{_listed(passages)}\n\nQuestion: {question}\nAnswer in a few words, using the passages."


def messages(question: str, passages: list[str] | None = None, style: str = DEFAULT_STYLE) -> list[dict]:
    """The chat messages for ``question`` with ``passages`` (none: closed-book), in one of
    :data:`PROMPT_STYLES`:

    - ``"system"``: a system message asking for a few words (using the passages), then the
      passages, numbered, and the question as the user's message;
    - ``"example"``: one worked example (a question, its passage and a short answer) before it;
    - ``"plain"``: one user message, passages first, the instruction last;
    - ``"question first"``: the question, then the passages, then the instruction.
    """
    _checks.string("question", question, allow_empty=False)
    passages = [] if passages is None else _checks.strings("passages", passages)
    _checks.choice("style", style, PROMPT_STYLES)
    if style == "system":
        user = f"{_listed(passages)}\n\n{question}" if passages else question
        return [{"role": "system", "content": SYSTEM_PASSAGES if passages else SYSTEM_BOOK},
                {"role": "user", "content": user}]
    if style == "question first":
        listed = f"Passages:\n{_listed(passages)}\n" if passages else ""
        return [{"role": "user", "content": f"Question: {question}\n{listed}Answer the question in a few words."}]
    main = {"role": "user", "content": _user_message(question, passages)}
    if style == "plain":
        return [main]
    example = _user_message(EXAMPLE_QUESTION, [EXAMPLE_PASSAGE] if passages else [])
    return [{"role": "user", "content": example}, {"role": "assistant", "content": EXAMPLE_ANSWER}, main]


def prompt_text(tokenizer, question: str, passages: list[str] | None = None, style: str = DEFAULT_STYLE) -> str:
    """The text the model reads: :func:`messages` through the tokenizer's chat template, ending with the
    opening of the assistant's turn."""
    _checks.tokenizer("tokenizer", tokenizer)
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError("this tokenizer has no chat template; rag needs a chat model such as "
                         "smollm2-135m-instruct")
    return tokenizer.apply_chat_template(messages(question, passages, style), add_generation_prompt=True,
                                         tokenize=False)


@torch.no_grad()
def generate_answers(model: torch.nn.Module, tokenizer, prompts: list[str], max_new_tokens: int = MAX_NEW_TOKENS,
                     batch_size: int = 8) -> list[str]:
    """Greedy replies to chat ``prompts`` (texts from :func:`prompt_text`), ``batch_size`` at a time,
    left-padded, each cut at its first line break and stripped.

    Left padding moves a batch's numbers by rounding, so a reply can depend on which prompts
    share its batch: the recorded runs and the chapter use the same batches.
    """
    _checks.model("model", model)
    _checks.tokenizer("tokenizer", tokenizer)
    prompts = _checks.strings("prompts", prompts)
    max_new_tokens = _checks.positive_int("max_new_tokens", max_new_tokens)
    batch_size = _checks.positive_int("batch_size", batch_size)
    # chat's batched greedy loop, each reply cut at its first line break
    return [r.split("\n")[0].strip() for r in _greedy(model, tokenizer, prompts, max_new_tokens, batch_size,
                                                       add_special_tokens=False)]


def answer(model: torch.nn.Module, tokenizer, question: str, retriever, k: int = 3) -> str:
    """Retrieve the ``k`` passages nearest ``question``, put them in the prompt (:func:`prompt_text`) and
    return the model's greedy answer (its first line)."""
    _checks.string("question", question, allow_empty=False)
    if not hasattr(retriever, "search") or not hasattr(retriever, "documents"):
        raise _checks.ArgumentTypeError(f"retriever must be a Retriever (or another object with .search and "
                                        f".documents), got {type(retriever).__name__}")
    hits = retriever.search(question, k)
    text = prompt_text(tokenizer, question, [retriever.documents[i] for i, _ in hits])
    return generate_answers(model, tokenizer, [text], batch_size=1)[0]


# --------------------------------------------------------------------------- judging
def _accepted(gold: str, aliases) -> list[str]:
    _checks.string("gold", gold, allow_empty=False)
    aliases = _checks.strings("aliases", aliases, allow_empty=True) if aliases else []
    accepted = [a for a in (normalize_answer(x) for x in [gold, *aliases]) if a]
    if not accepted:
        raise ValueError(f"gold {gold!r} and its aliases normalise to nothing: no reply could match")
    return accepted


def contains_answer(reply: str, gold: str, aliases=()) -> bool:
    """Whether ``reply`` states ``gold`` (or one of ``aliases``): after SQuAD's normalisation
    (:func:`llmlab.evaluation.normalize_answer`) an accepted answer occurs in the reply as whole words.

    "It was founded in 1742." contains "1742"; "17425" does not. Lenient on purpose: a small
    chat model answers in sentences, which exact match would count wrong.
    """
    _checks.string("reply", reply)
    padded = f" {normalize_answer(reply)} "
    return any(f" {a} " in padded for a in _accepted(gold, aliases))


def exact_answer(reply: str, gold: str, aliases=()) -> bool:
    """SQuAD's exact match (Rajpurkar et al. 2016): the whole normalised reply equals an accepted answer."""
    _checks.string("reply", reply)
    return normalize_answer(reply) in _accepted(gold, aliases)


def content_words(text: str) -> set[str]:
    """The words of ``text`` (lower case, letters and digits) that are not :data:`STOPWORDS`."""
    _checks.string("text", text)
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOPWORDS}


__all__ = [
    "Retriever", "BM25Retriever", "HybridRetriever", "load_documents", "load_questions", "load_out_of_scope",
    "collection_hashes", "gold_ranks", "recall_at_k", "messages", "prompt_text", "generate_answers", "answer",
    "contains_answer", "exact_answer", "content_words", "words",
]
