# %% [markdown]
# # Exercises: 15. Augmenting a model: retrieval and tools
#
# These exercises go with [chapter 15](../../chapters/15_augmentation.ipynb). You write
# the exact search of a dense retriever by cosine similarity, measure the chapter's
# retrievers by recall at k on their recorded rankings, run a model's calculator call as
# the program around the model does, and write the output guardrail that asks whether a
# retrieved passage holds what a reply says; then a short quiz. Each check runs your code
# on the example and on hidden cases and compares it with a reference the check computes
# itself.
#
# No language model writes anything here. The collection of documents and questions and
# the recorded rankings ship with `llmlab`; the first exercise embeds a few documents with
# MiniLM (`zoo.load("minilm")`, installed with the book's packages), which takes seconds
# on a CPU.
#
# Write your code where it says `raise NotImplementedError` or `...`, run the cell,
# then run the check below it.

# %%
import re

import torch

from llmlab import exercises as ex
from llmlab import guardrails, rag, tools
from llmlab.device import seed_everything
from llmlab.lifecycle import calculator
from llmlab.records import augmentation
from llmlab.retrieval import STOPWORDS

seed_everything(0)

# the chapter's collection: invented towns, people, products and other things, and the
# capitals of real countries; each question names the document that answers it
docs = rag.load_documents()
questions = rag.load_questions()
index = {d["id"]: i for i, d in enumerate(docs)}

# %% [markdown] {"exercise": "cosine-search", "minutes": 15}
# ## Cosine search by hand
#
# A dense retriever turns every document into a vector once, turns the question into a
# vector, and returns the documents whose vectors point most nearly the way the
# question's does: the largest cosine similarity, `cos(d, q) = d·q / (|d| |q|)`, which
# ignores how long the vectors are. `rag.Retriever` searches MiniLM's vectors this way,
# exactly, with one matrix product.
#
# Write `search(doc_vectors, query, k)`: `doc_vectors` is an `(N, H)` tensor, one row per
# document, of any lengths; `query` is an `(H,)` tensor; return the `k` documents most
# similar to the query as a list of `(index, cosine)` pairs, best first, as
# `Retriever.search` returns them (`index` is the document's row, an `int`; `cosine` a
# `float`). Documents with equal cosines keep their order, the lower index first:
# `torch.topk` promises no order among ties, while a stable sort keeps it,
# `torch.sort(scores, descending=True, stable=True)`. `k` is at least `1` and at most
# `N`. The check compares with a reference computed in float64, on vectors of different
# lengths, rows that point the same way with different lengths, identical rows (also at
# the `k`-th place), negative cosines, `k = 1` and `k = N`.
#
# The cell below runs your search on five hand-made vectors, then on MiniLM's vectors of
# a few documents of the collection, next to `Retriever.search`. Before you run it: which
# row would a plain dot product put first among the hand-made vectors? MiniLM's vectors
# have length one: which mistake in a search would go unnoticed on them?


# %%
def search(
    doc_vectors: torch.Tensor, query: torch.Tensor, k: int
) -> list[tuple[int, float]]:
    """The k rows of doc_vectors most similar to query by cosine similarity, best first:
    [(index, cosine), ...]."""
    ### BEGIN SOLUTION
    unit_docs = doc_vectors / doc_vectors.norm(dim=1, keepdim=True)
    scores = unit_docs @ (query / query.norm())
    order = torch.sort(scores, descending=True, stable=True).indices[:k]
    return [(int(i), float(scores[i])) for i in order]
    ### END SOLUTION


# %% {"role": "try"}
doc_vectors = torch.tensor(
    [
        [3.0, 0.0, 4.0],
        [0.0, 1.0, 0.0],
        [6.0, 8.0, 0.0],
        [1.0, 0.0, 1.0],
        [0.0, -2.0, 1.0],
    ]
)
query = torch.tensor([1.0, 0.0, 1.0])
print("lengths:", [round(x, 3) for x in doc_vectors.norm(dim=1).tolist()])
print("dot products:", (doc_vectors @ query).tolist())
print("cosine search:", [(i, round(c, 3)) for i, c in search(doc_vectors, query, 3)])

# MiniLM's vectors of the first sixteen documents, and a question about one of them
retriever = rag.Retriever([d["text"] for d in docs[:16]])
asked = next(q for q in questions if q["doc"] == "town-10")["question"]
ours = search(retriever.embeddings, retriever.embed([asked])[0], 3)
library = retriever.search(asked, 3)
print(asked)
print("  ours:           ", [(i, round(c, 3)) for i, c in ours])
print("  Retriever.search:", [(i, round(c, 3)) for i, c in library])
lengths = retriever.embeddings.norm(dim=1)
print("  MiniLM's vector lengths:", sorted({round(x, 3) for x in lengths.tolist()}))

# %% {"role": "check"}
ex.check_cosine_search(search)

# %% [markdown] {"exercise": "recall-at-k", "minutes": 10}
# ## Recall at k
#
# A retriever is measured before any model reads its passages: for each question, is the
# document that answers it, its gold document, among the first `k` the retriever returns?
# With one gold document per question, recall at `k` is the share of questions for which
# it is.
#
# Write `recall_at_k(rankings, gold, k)`: `rankings[i]` lists the indices of the
# documents retrieved for question `i`, best first (it may hold fewer than `k`, and it
# may not hold the gold document at all); `gold[i]` is the index of that question's gold
# document; return the share of questions whose gold document is among the first `k` of
# their ranking, a float between `0` and `1`. The check compares with `rag.recall_at_k`,
# which takes the rank of each gold document instead, on gold documents exactly `k`-th
# and just after, missing from their ranking, rankings shorter and longer than `k`, and
# `k = 1`.
#
# The cell below applies it to the chapter's recorded rankings
# (`llmlab/results/augmentation.json`): for every question of the collection, the first
# ten documents of MiniLM, of BM25 (words matched, Robertson & Zaragoza 2009) and of the
# two fused by reciprocal rank (Cormack et al. 2009). Before you run it: how does a
# question whose gold document is not among the ten count, whatever `k`? And when
# recall at `k` is high, what does it still not tell you about the answers the model
# writes from those passages?


# %%
def recall_at_k(rankings: list[list[int]], gold: list[int], k: int) -> float:
    """The share of questions whose gold document is among the first k of their
    ranking."""
    ### BEGIN SOLUTION
    found = sum(g in ranking[:k] for ranking, g in zip(rankings, gold))
    return found / len(gold)
    ### END SOLUTION


# %% {"role": "try"}
example_rankings = [[4, 1, 7], [2, 0, 5], [3, 6, 1], [0, 2, 4]]
example_gold = [1, 5, 8, 0]
print("the example, k = 2:", recall_at_k(example_rankings, example_gold, 2))

retrieval = augmentation.load()["parts"]["retrieval"]
gold = [index[q["doc"]] for q in questions]
print(f"{len(questions)} questions; recall at k = 1, 3, 5:")
for name, rankings in retrieval["top"].items():
    ours = [recall_at_k(rankings, gold, k) for k in (1, 3, 5)]
    library = [rag.recall_at_k(retrieval["ranks"][name], k) for k in (1, 3, 5)]
    same = all(abs(a - b) < 1e-12 for a, b in zip(ours, library))
    print(
        f"  {name:7s}" + "".join(f"{r:8.3f}" for r in ours),
        f"  (as rag.recall_at_k: {same})",
    )

# %% {"role": "check"}
ex.check_recall_at_k(recall_at_k)

# %% [markdown] {"exercise": "tool-call", "minutes": 15}
# ## Running a tool call
#
# SmolLM2-135M-Instruct's chat template has no slot for tools, so the chapter gives it a
# text protocol in the style of Toolformer (Schick et al. 2023): the model writes
# `<calculator>12 * 35 - 97</calculator>`, generation stops at the closing tag, the
# program runs the calculator and appends `<result>323</result>`, and the model goes on
# writing with the result in view. Write `run_tool_text(text)`, the program's part, for a
# reply `text`:
#
# - find the first complete call, `<calculator>` ... `</calculator>` (other tags do not
#   count);
# - evaluate what stands between the tags, stripped of the spaces around it, with
#   `calculator` (`llmlab.lifecycle.calculator`, imported above: numbers, `+ - * /` and
#   brackets, with `x` and `times` read as `*`; it raises `ValueError` for anything else
#   and for a division by zero);
# - return `text` cut right after the closing tag, with `<result>VALUE</result>`
#   appended: a whole number without a decimal point (`1104`, not `1104.0`), any other
#   number as `f"{value:.6g}"`;
# - when the calculator refuses the expression, append `<result>error: REASON</result>`
#   instead (any reason: the calculator's message, for example); do not raise;
# - when a `<calculator>` tag opens and never closes, the call is malformed: return the
#   whole `text` with an error result appended;
# - return `None` when `text` holds no `<calculator>` tag.
#
# Never run a reply with Python's `eval`: it runs whatever code the text holds. The check
# compares with `tools.parse_call` and `tools.run_call` on replies made up for it. The
# cell below runs a few replies of the kind a small model writes. Before you run it: what
# happens to a result the model invented after its call?


# %%
def run_tool_text(text: str) -> str | None:
    """text cut after its first calculator call, with the call's result appended; None
    without a call."""
    ### BEGIN SOLUTION
    call = re.search(r"<calculator>(.*?)</calculator>", text, re.S)
    if call is None:
        if "<calculator>" in text:  # opened, never closed: a malformed call
            return text + "<result>error: the call is not closed</result>"
        return None
    try:
        value = calculator(call.group(1).strip())
    except ValueError as err:
        return text[: call.end()] + f"<result>error: {err}</result>"
    if isinstance(value, float) and value.is_integer():
        shown = str(int(value))
    elif isinstance(value, float):
        shown = f"{value:.6g}"
    else:
        shown = str(value)
    return text[: call.end()] + f"<result>{shown}</result>"
    ### END SOLUTION


# %% {"role": "try"}
replies = [
    "<calculator>48 * 23</calculator><result>1100</result> The answer is 1100.",
    "12 trays of 35 rolls: <calculator>12 * 35 - 97</calculator>",
    "<calculator>2208 / 2</calculator>",
    "<calculator>2 ** 10</calculator>",
    "The answer is <calculator>12 * 35 - 97",
    "The answer is 1104.",
]
calc = {"calculator": calculator}
for reply in replies:
    call = tools.parse_call(reply, calc)
    print(repr(reply))
    print("  ours:   ", repr(run_tool_text(reply)))
    print("  library:", call and tools.run_call(call, calc))

# %% {"role": "check"}
ex.check_tool_call(run_tool_text)

# %% [markdown] {"exercise": "supported", "minutes": 15}
# ## An output guardrail: does a passage say it?
#
# NeMo Guardrails (Rebedea et al. 2023) puts rails around a model, some on what goes in
# and some on what comes out. The chapter's output rail is lexical: a reply passes when
# every content word it adds to the question occurs in one retrieved passage. Write
#
# - `content_words(text)`: the set of the words of `text` once it is in lower case, a word
#   being a run of letters and digits (the pattern `[a-z0-9]+`), without the `STOPWORDS`
#   (`llmlab.retrieval.STOPWORDS`, imported above);
# - `supported(reply, passages, question)`: `True` when the content words of `reply` that
#   are not content words of `question` are not empty and all occur among the content
#   words of one of the `passages`; `False` otherwise. A reply that adds no word to the
#   question fails: it states no fact a passage could support.
#
# The check compares with `rag.content_words` and `guardrails.supported`, on replies that
# repeat the question's words, take words from two passages that neither holds alone,
# change case, end with a full stop, or add nothing. The cell below tries replies to one
# of the collection's questions against the passage that answers it and against its
# distractor, a passage that states a fact of the same kind about something else. Before
# you run it: which of the replies are right, and which pass?


# %%
def content_words(text: str) -> set[str]:
    """The lower-case words of text (runs of letters and digits), stopwords removed."""
    ### BEGIN SOLUTION
    return set(re.findall(r"[a-z0-9]+", text.lower())) - set(STOPWORDS)
    ### END SOLUTION


def supported(reply: str, passages: list[str], question: str) -> bool:
    """Whether the words reply adds to question all occur in one passage."""
    ### BEGIN SOLUTION
    new = content_words(reply) - content_words(question)
    return bool(new) and any(new <= content_words(p) for p in passages)
    ### END SOLUTION


# %% {"role": "try"}
asked = next(q for q in questions if q["id"] == "q026")
gold_passage = docs[index[asked["doc"]]]["text"]
distractor = docs[index[asked["distractor"]]]["text"]
print(asked["question"], "|", asked["answer"], "| the distractor's:", asked["wrong"])
trials = [
    ("the answer", asked["answer"], [gold_passage]),
    ("in a sentence", f"Halvergrund was founded by {asked['answer']}.", [gold_passage]),
    ("the distractor's name", asked["wrong"], [gold_passage]),
    ("the same, both retrieved", asked["wrong"], [gold_passage, distractor]),
    ("an invented name", "Johann Halver", [gold_passage, distractor]),
    ("the right man, other words", "the ironworks' owner", [gold_passage]),
]
for what, reply, passages in trials:
    ours = supported(reply, passages, asked["question"])
    library = guardrails.supported(reply, passages, asked["question"])[0]
    print(f"  {what:26s} {reply!r:44s} passes: {ours!s:5s} (library: {library})")

# %% {"role": "check"}
ex.check_supported(content_words, supported)

# %% [markdown] {"exercise": "quiz", "minutes": 5}
# ## Quiz: retrieval and tools
#
# Answer each question with one of the choices in its parentheses. The sources:
# retrieval-augmented generation (Lewis et al. 2020), lost in the middle (Liu et al.
# 2023), Toolformer (Schick et al. 2023), NeMo Guardrails (Rebedea et al. 2023), and the
# chapter's own measurements.

# %%
answers = {
    "why retrieved passages help with questions about invented towns"
    " (the answer is in the prompt/the model learns the facts/the model gets "
    "larger)": ...,
    "what recall at k does not measure"
    " (whether the model uses the passage/whether the gold passage is among the first k"
    "/the share of questions covered)": ...,
    "where among many passages a model most often misses the one that matters"
    " (in the middle/at the start/at the end)": ...,
    "the calculator failure a calculator tool cannot fix"
    " (wrong operands/a wrong product/a wrong sum)": ...,
    "the out-of-scope questions a similarity threshold lets through most"
    " (near/off-topic)": ...,
    "does a wrong answer copied from a retrieved distractor passage pass the output"
    " check (yes/no)": ...,
}
### BEGIN SOLUTION
answers = {
    "why retrieved passages help with questions about invented towns"
    " (the answer is in the prompt/the model learns the facts/the model gets "
    "larger)": "the answer is in the prompt",
    "what recall at k does not measure"
    " (whether the model uses the passage/whether the gold passage is among the first k"
    "/the share of questions covered)": "whether the model uses the passage",
    "where among many passages a model most often misses the one that matters"
    " (in the middle/at the start/at the end)": "in the middle",
    "the calculator failure a calculator tool cannot fix"
    " (wrong operands/a wrong product/a wrong sum)": "wrong operands",
    "the out-of-scope questions a similarity threshold lets through most"
    " (near/off-topic)": "near",
    "does a wrong answer copied from a retrieved distractor passage pass the output"
    " check (yes/no)": "yes",
}
### END SOLUTION

# %% {"role": "check"}
ex.check_augmentation_quiz(answers)
