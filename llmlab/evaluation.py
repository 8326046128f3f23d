"""Evaluating language models (chapter 11): the frozen benchmark, and (later) how to score a model on it.

- :func:`load_benchmark` reads the project's own benchmark from ``llmlab/corpus``:
  ``"mc"``, 320 four-choice questions (``evalbench_mc.json``), or ``"short"``,
  104 short-answer questions with a gold answer, accepted aliases and a plausible
  wrong answer (``evalbench_short.json``). Both are described, with their SHA-256,
  in ``llmlab/corpus/EVALBENCH.md``; they were written and frozen before any model
  was run on them, and a change means a new file under a new name.

Every item is checked as it loads, so a damaged file fails loudly rather than
scoring a model on a broken question.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import _checks

CORPUS = Path(__file__).resolve().parent / "corpus"
BENCHMARK_FILES = {"mc": "evalbench_mc.json", "short": "evalbench_short.json"}
KINDS = tuple(BENCHMARK_FILES)
DIFFICULTIES = ("easy", "medium", "hard")
N_CHOICES = 4

_COMMON_KEYS = {"id", "subject", "difficulty", "question"}
_KEYS = {"mc": _COMMON_KEYS | {"choices", "answer"},
         "short": _COMMON_KEYS | {"answer", "aliases", "wrong"}}


def _nonempty_str(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _check_item(item: object, kind: str, where: str) -> None:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: an item must be a JSON object, got {type(item).__name__}")
    item_id = item.get("id", "?")
    keys = set(item)
    if keys != _KEYS[kind]:
        raise ValueError(f"{where}, item {item_id!r}: keys must be {sorted(_KEYS[kind])}, got {sorted(keys)}")
    for key in ("id", "subject", "question"):
        if not _nonempty_str(item[key]):
            raise ValueError(f"{where}, item {item_id!r}: {key} must be a non-empty string")
    if item["difficulty"] not in DIFFICULTIES:
        raise ValueError(f"{where}, item {item_id!r}: difficulty must be one of {DIFFICULTIES}, "
                         f"got {item['difficulty']!r}")
    if kind == "mc":
        choices, answer = item["choices"], item["answer"]
        if (not isinstance(choices, list) or len(choices) != N_CHOICES
                or not all(_nonempty_str(c) for c in choices)):
            raise ValueError(f"{where}, item {item_id!r}: choices must be a list of {N_CHOICES} non-empty strings")
        if len({c.strip().lower() for c in choices}) != N_CHOICES:
            raise ValueError(f"{where}, item {item_id!r}: the {N_CHOICES} choices must be distinct, got {choices}")
        if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < N_CHOICES:
            raise ValueError(f"{where}, item {item_id!r}: answer must be an int in 0..{N_CHOICES - 1}, "
                             f"got {answer!r}")
    else:
        if not _nonempty_str(item["answer"]) or not _nonempty_str(item["wrong"]):
            raise ValueError(f"{where}, item {item_id!r}: answer and wrong must be non-empty strings")
        aliases = item["aliases"]
        if not isinstance(aliases, list) or not all(_nonempty_str(a) for a in aliases):
            raise ValueError(f"{where}, item {item_id!r}: aliases must be a list of non-empty strings")


def load_benchmark(kind: str = "mc") -> list[dict]:
    """The items of the frozen benchmark ``kind``: ``"mc"`` (multiple choice) or ``"short"`` (short answer).

    Each ``"mc"`` item is ``{"id", "subject", "difficulty", "question", "choices", "answer"}``
    with four distinct choices and ``answer`` the index (0 to 3) of the right one; each
    ``"short"`` item is ``{"id", "subject", "difficulty", "question", "answer", "aliases",
    "wrong"}``. The file is validated as it is read (the keys, four distinct non-empty
    choices, an answer in 0..3, a known difficulty, unique ids); a ValueError names the
    first bad item. Returns a fresh list of fresh dicts, in file order, on every call.

    >>> items = load_benchmark("mc")
    >>> items[0]["choices"][items[0]["answer"]]
    'light'
    """
    if not isinstance(kind, str):
        raise _checks.ArgumentTypeError(f"kind must be a str, one of {KINDS}, got {type(kind).__name__} {kind!r}")
    if kind not in BENCHMARK_FILES:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    path = CORPUS / BENCHMARK_FILES[kind]
    items = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(items, list) or not items:
        raise ValueError(f"{path.name}: must hold a non-empty JSON list of items")
    seen: set[str] = set()
    for n, item in enumerate(items):
        _check_item(item, kind, f"{path.name} item {n}")
        if item["id"] in seen:
            raise ValueError(f"{path.name}: id {item['id']!r} appears more than once")
        seen.add(item["id"])
    return items
