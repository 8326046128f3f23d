"""Retrieval and a calculator tool on the real model, recorded for chapter 15: ``llmlab/results/augmentation.json``.

SmolLM2-135M-Instruct (float32, greedy) on the project's frozen collection (160 documents,
240 questions, 60 out of scope: :mod:`llmlab.rag`) and arithmetic problems (120:
:mod:`llmlab.tools`). Parts, in order, each written as soon as it ends (a part already in
the file is kept when its plan is unchanged, so a stopped recording resumes):

1. ``retrieval``: for MiniLM (:class:`llmlab.rag.Retriever`), BM25 and their fusion, the rank
   of every question's gold document and its first ``top`` documents; the nearest
   document's cosine for every question, out-of-scope ones included;
2. ``prompts``: the first ``questions`` questions (the development set) answered in each prompt
   style of :data:`llmlab.rag.PROMPT_STYLES`, with the gold passage and with MiniLM's first ``k``;
   the chapter uses the best style and leaves these questions out of its figures;
3. ``answers``: the model's reply to every question closed-book, with MiniLM's first ``k``
   passages ("retrieved"), with BM25's first ``k``, and with the gold passage alone (the
   oracle), in batches of ``batch_size`` in question order;
4. ``distractor``: the gold passage with the question's distractor passage beside it, in
   both orders;
5. ``position``: for every ``stride``-th question, the gold passage among ``passages - 1`` of
   MiniLM's nearest wrong documents, at each position;
6. ``tools``: every arithmetic problem answered directly, with chain of thought (batched)
   and with the calculator (:func:`llmlab.tools.answer_with_tools`, one at a time).

``python -m llmlab.records.augmentation`` makes it (``--parts``, ``--fresh``, ``--out``);
:func:`load` reads it back.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from .. import _checks, lifecycle, rag, tools, zoo
from ..provenance import stamp
from . import read_json, result_path, write_json

NAME = "augmentation.json"
COMMAND = "python -m llmlab.records.augmentation"
CODE = ("llmlab/rag.py", "llmlab/tools.py", "llmlab/retrieval.py", "llmlab/chat.py", "llmlab/lifecycle.py",
        "llmlab/corpus/augment_documents.json", "llmlab/corpus/augment_questions.json",
        "llmlab/corpus/augment_arithmetic.json", "llmlab/records/augmentation.py")
PARTS = ("retrieval", "prompts", "answers", "distractor", "position", "tools")
PLAN = {
    "retrieval": {"retrievers": ["minilm", "bm25", "hybrid"], "top": 10},
    "prompts": {"styles": list(rag.PROMPT_STYLES), "conditions": ["oracle", "retrieved"],
                "questions": rag.DEV_QUESTIONS, "k": 3, "batch_size": 8, "max_new_tokens": rag.MAX_NEW_TOKENS},
    "answers": {"conditions": ["closed", "retrieved", "bm25", "oracle"], "k": 3, "batch_size": 8,
                "max_new_tokens": rag.MAX_NEW_TOKENS},
    "distractor": {"orders": ["gold first", "distractor first"], "batch_size": 8,
                   "max_new_tokens": rag.MAX_NEW_TOKENS},
    "position": {"passages": 5, "stride": 2, "batch_size": 8, "max_new_tokens": rag.MAX_NEW_TOKENS},
    "tools": {"styles": list(tools.STYLES), "batch_size": 8, "max_new_tokens": tools.MAX_NEW_TOKENS,
              "max_calls": tools.MAX_CALLS},
}


def _check_docs(docs) -> None:
    if isinstance(docs, (str, bytes)) or not isinstance(docs, (list, tuple)) or not docs \
            or not all(isinstance(d, dict) and "text" in d for d in docs):
        raise _checks.ArgumentTypeError("docs must be the list of documents rag.load_documents returns "
                                        "(dicts with 'text')")


def retrievers(docs: list[dict]) -> dict:
    """The three retrievers of the plan over the collection's texts: ``{"minilm", "bm25", "hybrid"}``."""
    _check_docs(docs)
    texts = [d["text"] for d in docs]
    dense = rag.Retriever(texts)
    sparse = rag.BM25Retriever(texts)
    return {"minilm": dense, "bm25": sparse, "hybrid": rag.HybridRetriever([dense, sparse])}


def _part_retrieval(found: dict, docs, questions, out_of_scope) -> dict:
    index = {d["id"]: i for i, d in enumerate(docs)}
    top = PLAN["retrieval"]["top"]
    result = {"ranks": {}, "top": {}, "seconds": {}}
    for name, r in found.items():
        t0 = time.perf_counter()
        result["ranks"][name] = rag.gold_ranks(r, questions, index)
        result["top"][name] = [[i for i, _ in r.search(q["question"], top)] for q in questions]
        result["seconds"][name] = time.perf_counter() - t0
    dense = found["minilm"]
    result["top_cosine"] = [dense.search(q["question"], 1)[0][1] for q in questions]
    result["top_cosine_out_of_scope"] = [dense.search(q["question"], 1)[0][1] for q in out_of_scope]
    return result


def passages_for(condition: str, q: dict, docs: list[dict], index: dict, tops: dict, k: int) -> list[str]:
    """The passages a question's prompt holds in an ``answers`` condition; ``tops`` maps "minilm" and
    "bm25" to the question's ranked document indices."""
    _checks.choice("condition", condition, PLAN["answers"]["conditions"])
    if condition == "closed":
        return []
    if condition == "oracle":
        return [docs[index[q["doc"]]]["text"]]
    return [docs[i]["text"] for i in tops["bm25" if condition == "bm25" else "minilm"][:k]]


def position_passages(q: dict, docs: list[dict], index: dict, top: list[int], n: int, at: int) -> list[str]:
    """``n`` passages: MiniLM's nearest ``n - 1`` wrong documents in rank order, with the gold one
    inserted at position ``at`` (1 = first)."""
    n = _checks.integer("n", n, low=2)
    at = _checks.integer("at", at, low=1, high=n)
    gold = index[q["doc"]]
    wrong = [i for i in top if i != gold][:n - 1]
    order = wrong[:at - 1] + [gold] + wrong[at - 1:]
    return [docs[i]["text"] for i in order]


def _generate(model, tokenizer, questions, passages: list[list[str]], plan: dict,
              style: str = rag.DEFAULT_STYLE) -> list[str]:
    prompts = [rag.prompt_text(tokenizer, q["question"], p or None, style) for q, p in zip(questions, passages)]
    return rag.generate_answers(model, tokenizer, prompts, plan["max_new_tokens"], plan["batch_size"])


def _condition(model, tokenizer, docs, questions, tops, cond: str, plan: dict,
               style: str = rag.DEFAULT_STYLE) -> dict:
    """The replies to ``questions`` with the passages of ``cond`` (see :func:`passages_for`), timed."""
    t0 = time.perf_counter()
    index = {d["id"]: i for i, d in enumerate(docs)}
    ps = [passages_for(cond, q, docs, index, {name: t[j] for name, t in tops.items()}, plan["k"])
          for j, q in enumerate(questions)]
    return {"replies": _generate(model, tokenizer, questions, ps, plan, style), "seconds": time.perf_counter() - t0}


def _part_answers(model, tokenizer, docs, questions, tops) -> dict:
    plan = PLAN["answers"]
    return {cond: _condition(model, tokenizer, docs, questions, tops, cond, plan) for cond in plan["conditions"]}


def _part_prompts(model, tokenizer, docs, questions, tops) -> dict:
    plan = PLAN["prompts"]
    dev = questions[:plan["questions"]]
    return {f"{style} / {cond}": _condition(model, tokenizer, docs, dev, tops, cond, plan, style)
            for style in plan["styles"] for cond in plan["conditions"]}


def _part_distractor(model, tokenizer, docs, questions) -> dict:
    plan = PLAN["distractor"]
    index = {d["id"]: i for i, d in enumerate(docs)}
    out = {}
    for order in plan["orders"]:
        t0 = time.perf_counter()
        pairs = [[docs[index[q["doc"]]]["text"], docs[index[q["distractor"]]]["text"]] for q in questions]
        ps = [p if order == "gold first" else p[::-1] for p in pairs]
        out[order] = {"replies": _generate(model, tokenizer, questions, ps, plan),
                      "seconds": time.perf_counter() - t0}
    return out


def _part_position(model, tokenizer, docs, questions, top) -> dict:
    plan = PLAN["position"]
    index = {d["id"]: i for i, d in enumerate(docs)}
    chosen = list(range(0, len(questions), plan["stride"]))
    out = {"questions": chosen, "positions": {}}
    for at in range(1, plan["passages"] + 1):
        t0 = time.perf_counter()
        qs = [questions[i] for i in chosen]
        ps = [position_passages(questions[i], docs, index, top[i], plan["passages"], at) for i in chosen]
        out["positions"][str(at)] = {"replies": _generate(model, tokenizer, qs, ps, plan),
                                     "seconds": time.perf_counter() - t0}
    return out


def _part_tools(model, tokenizer, problems) -> dict:
    plan = PLAN["tools"]
    out = {}
    for style in ("direct", "chain of thought"):
        t0 = time.perf_counter()
        prompts = [tools.prompt_text(tokenizer, p["question"], style) for p in problems]
        replies = rag.generate_answers(model, tokenizer, prompts, plan["max_new_tokens"][style], plan["batch_size"])
        out[style] = {"replies": replies, "seconds": time.perf_counter() - t0}
    t0 = time.perf_counter()
    answers, calls, seconds = [], [], []
    for p in problems:
        t1 = time.perf_counter()
        a, c = tools.answer_with_tools(model, tokenizer, p["question"], {"calculator": lifecycle.calculator},
                                       max_calls=plan["max_calls"], max_new_tokens=plan["max_new_tokens"]["calculator"])
        answers.append(a)
        calls.append(c)
        seconds.append(time.perf_counter() - t1)
    out["calculator"] = {"replies": answers, "calls": calls, "seconds_each": seconds,
                         "seconds": time.perf_counter() - t0}
    return out


def run(out=None, parts=PARTS, resume: bool = True) -> dict:
    """Run the plan's ``parts``, writing the record after each (see the module's doc); returns the record."""
    parts = tuple(parts) if hasattr(parts, "__iter__") and not isinstance(parts, (str, dict)) else parts
    if not isinstance(parts, tuple) or not parts or any(p not in PARTS for p in parts):
        raise ValueError(f"parts must be a non-empty list of {list(PARTS)}, got {parts!r}")
    if out is not False:
        result_path(out, NAME)  # a bad path fails here, not after the first part
    torch.manual_seed(0)
    record = {"what": "chapter 15: retrieval and a calculator tool with SmolLM2", "model": zoo.REAL_MODEL,
              "collection": rag.collection_hashes(), "plan": PLAN, **stamp(COMMAND, *CODE),
              "threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
              "parts": {}}
    if resume and out is not False and result_path(out, NAME).exists():
        old = read_json(out, NAME, COMMAND)
        if old.get("collection") == record["collection"]:
            for name, kept in old.get("parts", {}).items():  # keep each part whose own plan is unchanged
                if old.get("plan", {}).get(name) == PLAN.get(name):
                    record["parts"][name] = kept
    docs, questions, outside = rag.load_documents(), rag.load_questions(), rag.load_out_of_scope()
    model = tokenizer = None
    for part in PARTS:
        if part not in parts or part in record["parts"]:
            continue
        print(f"{part} ...", flush=True)
        t0, load0 = time.perf_counter(), os.getloadavg()
        if part == "retrieval":
            result = _part_retrieval(retrievers(docs), docs, questions, outside)
        else:
            if model is None:
                model, tokenizer = zoo.load(zoo.REAL_MODEL, device="cpu")
            if part == "tools":
                result = _part_tools(model, tokenizer, tools.load_problems())
            elif part == "distractor":
                result = _part_distractor(model, tokenizer, docs, questions)
            else:
                if "retrieval" not in record["parts"]:
                    raise ValueError(f"part {part!r} needs the retrieval part: run it first")
                tops = record["parts"]["retrieval"]["top"]
                if part == "position":
                    result = _part_position(model, tokenizer, docs, questions, tops["minilm"])
                else:
                    result = globals()[f"_part_{part}"](model, tokenizer, docs, questions, tops)
        record["parts"][part] = {**result, "seconds_total": time.perf_counter() - t0,
                                 "load_average": [load0, os.getloadavg()],
                                 "code_version": record["code_version"], "made": record["made"]}
        if out is not False:
            write_json(record, out, NAME)
    return record


def load(path=None) -> dict:
    """The shipped record (or the one at ``path``)."""
    return read_json(path, NAME, COMMAND)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    parser.add_argument("--fresh", action="store_true", help="start over instead of resuming")
    parser.add_argument("--out", help="the file to write (default: the shipped record)")
    args = parser.parse_args(argv)
    run(out=args.out, parts=tuple(args.parts), resume=not args.fresh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
