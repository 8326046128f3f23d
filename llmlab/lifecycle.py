"""The LLM project lifecycle, and a real assistant measured on the chapter's use cases (chapter 1).

- :func:`draw_lifecycle` draws the project lifecycle: scope, select, adapt and
  align, deploy.
- :data:`USE_CASES` are the course's use cases, each with a reference answer and a
  computed check (:meth:`UseCase.passes`); :func:`sentiment_items`,
  :func:`capital_items`, :func:`arithmetic_items` and :func:`calculator_items` are the
  measured task sets, judged by :meth:`Item.correct` and scored by :func:`accuracy`.
- The judges read an answer the way a program would: :func:`mentions`,
  :func:`first_label`, :func:`last_integer`, :func:`first_json_object`,
  :func:`json_matches`, and a :func:`calculator` tool run by :func:`tool_result`.
- :func:`choose_labels` lets a model pick one of a few labels instead of writing.

Prompting and generation live in :mod:`llmlab.chat`; context windows in
:mod:`llmlab.context_window`; retrieval in :mod:`llmlab.retrieval`; the classifier
baseline in :mod:`llmlab.classifier`; model cards in :mod:`llmlab.model_card`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from . import _checks

TASKS_FILE = Path(__file__).parent / "corpus" / "lifecycle_tasks.json"


# --------------------------------------------------------------------------- lifecycle diagram
LIFECYCLE = [
    ("Scope", ["define the use case", "one task or many?"]),
    ("Select", ["use an existing model", "or pre-train your own"]),
    ("Adapt and align", ["prompt engineering", "fine-tuning", "align: human feedback", "evaluate"]),
    ("Deploy", ["optimise for inference", "augment the model", "build the application"]),
]
#: the chapters of this book that run each stage of :data:`LIFECYCLE`
STAGE_CHAPTERS = {"Scope": "1", "Select": "1, 3, 4, 8", "Adapt and align": "4, 9, 10, 11, 12, 13", "Deploy": "1, 6, 7, 14, 15"}


def draw_lifecycle(ax=None):
    """Draw the four stages of an LLM project (scope, select, adapt and align, deploy)
    as boxes, with the loops back that real projects take. Returns the axes.

    The stages follow DeepLearning.AI and AWS, *Generative AI with LLMs* (2023), week 1,
    whose fourth stage is "application integration" (here "Deploy") and which places the
    iteration inside adapt and align; the arrow from deployment back to adaptation is
    this book's addition. Each task names the chapters of this book that run it
    (:data:`STAGE_CHAPTERS`)."""
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    from .plot import ACCENT, KEPT

    if ax is not None and not isinstance(ax, Axes):
        raise _checks.ArgumentTypeError(f"ax must be a matplotlib Axes or None (draw in a new figure), "
                                        f"got {type(ax).__name__} {ax!r:.60}")
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3.2))
    width, gap, height = 2.3, 0.45, 2.2
    for i, (stage, tasks) in enumerate(LIFECYCLE):
        x = i * (width + gap)
        ax.add_patch(FancyBboxPatch((x, 0), width, height, boxstyle="round,pad=0.05", facecolor="#ebf4ff",
                                    edgecolor=KEPT, linewidth=1.5))
        ax.text(x + width / 2, height - 0.25, f"{i + 1}. {stage}", ha="center", va="center", fontsize=10,
                fontweight="bold", color=KEPT)
        for j, task in enumerate(tasks):
            ax.text(x + 0.15, height - 0.65 - 0.33 * j, f"• {task}", ha="left", va="center", fontsize=8.5)
        chapters = STAGE_CHAPTERS[stage]
        ax.text(x + width / 2, 0.1, f"chapter{'s' if ',' in chapters else ''} {chapters}", ha="center",
                va="bottom", fontsize=7.5, color=ACCENT)
        if i < len(LIFECYCLE) - 1:
            ax.add_patch(FancyArrowPatch((x + width + 0.05, height / 2), (x + width + gap - 0.05, height / 2),
                                         arrowstyle="-|>", mutation_scale=14, color="black"))
    # adapting is iterative, and deployment feeds back into adaptation
    third = 2 * (width + gap)
    ax.add_patch(FancyArrowPatch((third + width * 0.8, height + 0.08), (third + width * 0.2, height + 0.08),
                                 connectionstyle="arc3,rad=0.6", arrowstyle="-|>", mutation_scale=12, color=ACCENT))
    ax.text(third + width / 2, height + 0.55, "iterate", ha="center", fontsize=8.5, color=ACCENT)
    fourth = 3 * (width + gap)
    ax.add_patch(FancyArrowPatch((fourth + width / 2, -0.08), (third + width / 2, -0.08),
                                 connectionstyle="arc3,rad=-0.35", arrowstyle="-|>", mutation_scale=12, color=ACCENT))
    ax.text((third + fourth + width) / 2, -0.75, "this book's addition: what deployment reveals goes back into adaptation",
            ha="center", fontsize=8.5, color=ACCENT)
    ax.set_xlim(-0.2, 4 * width + 3 * gap + 0.2)
    ax.set_ylim(-1.0, height + 0.9)
    ax.axis("off")
    return ax



# --------------------------------------------------------------------------- a model picks a label
def _check_prompts(prompts: list[str]) -> None:
    if isinstance(prompts, str) or not isinstance(prompts, (list, tuple)) or not prompts:
        raise TypeError(f"prompts must be a non-empty list of strings, got {type(prompts).__name__}")
    bad = [p for p in prompts if not isinstance(p, str) or not p.strip()]
    if bad:
        raise ValueError(f"every prompt must be a non-empty string, got {bad[0]!r}")



def choose_labels(model: torch.nn.Module, tokenizer, prompts: list[str], labels: tuple[str, ...]) -> list[str]:
    """For each prompt, the label the model finds most probable as its continuation (chapter 4's scoring,
    :func:`llmlab.icl.score_labels`): the model picks, but can only pick one of ``labels``."""
    _checks.model("model", model)
    from .icl import score_labels

    _check_prompts(prompts)
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise ValueError(f"labels must be at least two different strings, got {labels!r}")
    scores = score_labels(model, tokenizer, list(prompts), [list(labels)] * len(prompts))  # (N, labels)
    return [labels[i] for i in scores.argmax(dim=1).tolist()]


# --------------------------------------------------------------------------- judging answers
def mentions(text: str, options: list[str] | tuple[str, ...] | str) -> bool:
    """Whether ``text`` mentions any of ``options`` (case-insensitive; curly apostrophes count as straight)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    options = [options] if isinstance(options, str) else list(options)
    if not options or not all(isinstance(o, str) and o for o in options):
        raise ValueError(f"options must be non-empty strings, got {options!r}")
    norm = text.replace("\u2019", "'").lower()
    return any(o.replace("\u2019", "'").lower() in norm for o in options)


def first_label(text: str, labels: list[str] | tuple[str, ...]) -> str | None:
    """The label (of ``labels``, as whole words, case-insensitive) that ``text`` names first, or None."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    if isinstance(labels, str):
        raise _checks.ArgumentTypeError(f"labels must be a list of label strings, got the single str {labels!r}; "
                                        f"wrap it in a list: [{labels!r}]")
    if not labels or not all(isinstance(label, str) and label for label in labels):
        raise ValueError(f"labels must be non-empty strings, got {labels!r}")
    found = [(m.start(), label) for label in labels
             for m in [re.search(rf"\b{re.escape(label)}\b", text, flags=re.IGNORECASE)] if m]
    return min(found)[1] if found else None


def last_integer(text: str) -> int | None:
    """The last whole number written in ``text`` (thousands separators allowed: ``1,786``), or None."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    numbers = re.findall(r"-?\d{1,3}(?:,\d{3})+(?!\d)|-?\d+", text)
    return int(numbers[-1].replace(",", "")) if numbers else None


def _balanced_end(text: str, start: int) -> int | None:
    """Index just past the ``}`` that closes the ``{`` at ``start`` (braces inside JSON strings
    ignored), or None when the text ends before it closes."""
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def first_json_object(text: str) -> dict | None:
    """The JSON object a reply gives, or None: the whole reply when it parses as an object, else its
    first ``{...}`` block (e.g. inside a Markdown code fence), but only when that block closes.

    A reply cut off inside its object gives None, not an inner object that happens to close
    before the cut: that inner object is not the answer the model was writing.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict):
        return whole
    start = text.find("{")
    end = None if start < 0 else _balanced_end(text, start)
    if end is None:
        return None
    try:
        obj = json.loads(text[start:end])
    except json.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def reply_tokens(tokenizer, answer: str, max_new_tokens: int) -> tuple[int, bool]:
    """How many tokens a recorded reply has, and whether it reached the ``max_new_tokens`` cap
    (so generation stopped at the cap, not because the model ended its turn).

    The count re-tokenizes the decoded reply, which gives the generated count for these
    replies (special tokens were dropped when decoding; the end-of-turn token is not counted).
    """
    _checks.tokenizer("tokenizer", tokenizer)
    if not isinstance(answer, str):
        raise TypeError(f"answer must be a string (a decoded reply), got {type(answer).__name__}")
    _checks.positive_int("max_new_tokens", max_new_tokens)
    n = len(tokenizer(answer, add_special_tokens=False)["input_ids"])
    return n, n >= max_new_tokens


# --------------------------------------------------------------------------- frozen task sets
def load_tasks() -> dict:
    """The chapter's frozen prompt sets (``llmlab/corpus/lifecycle_tasks.json``): sentiment, capitals."""
    return json.loads(TASKS_FILE.read_text(encoding="utf-8"))


SENTIMENT_PROMPT = ("Is the sentiment of this review positive or negative? Answer with one word.\n\n"
                    "Review: {text}")
CAPITAL_PROMPT = "What is the capital of {country}?"
ARITHMETIC_PROMPT = "What is {a} times {b}? Answer with the number only."


@dataclass(frozen=True)
class Item:
    """One question of a measured task: the prompt, its reference answer, and how an answer is judged."""

    prompt: str
    reference: str
    kind: str  # "label" (first label named), "mentions" (any accepted), "integer" (last number), "tool"
    accepted: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _checks.string("prompt", self.prompt)
        _checks.string("reference", self.reference)
        _checks.choice("kind", self.kind, ("label", "mentions", "integer", "tool"))
        if not isinstance(self.accepted, tuple) or not all(isinstance(a, str) for a in self.accepted):
            raise _checks.ArgumentTypeError(f"accepted must be a tuple of str (the answers that count), "
                                            f"got {type(self.accepted).__name__} {self.accepted!r:.60}")

    def correct(self, answer: str) -> bool:
        """Whether ``answer`` is right: the judgement is computed, never read off by eye."""
        if self.kind == "label":
            return first_label(answer, self.accepted) == self.reference
        if self.kind == "mentions":
            return mentions(answer, self.accepted or (self.reference,))
        if self.kind == "integer":
            return last_integer(answer) == int(self.reference)
        if self.kind == "tool":
            return tool_result(answer) == int(self.reference)
        raise ValueError(f"unknown kind {self.kind!r}; allowed: 'label', 'mentions', 'integer', 'tool'")


SCORED_SENTIMENT_PROMPT = "Classify this review: {text}\nSentiment:"  # chapter 4's template
STORY_QUESTION_PROMPT = "Q: {question} A:"  # how a question is put to a base model without a chat template


def sentiment_items() -> list[Item]:
    """30 hand-written product and place reviews (15 positive, 15 negative), as questions to a chat model."""
    return [Item(SENTIMENT_PROMPT.format(text=r["text"]), r["label"], "label", ("positive", "negative"))
            for r in load_tasks()["sentiment"]]


def capital_items() -> list[Item]:
    """The capitals of the 19 countries of the G20, as questions; any of a country's capitals counts."""
    return [Item(CAPITAL_PROMPT.format(country=r["country"]), r["capital"][0], "mentions", tuple(r["capital"]))
            for r in load_tasks()["capitals"]]


def arithmetic_items(n: int = 30, low: int = 10, high: int = 99, seed: int = 0) -> list[Item]:
    """``n`` multiplications of two whole numbers drawn uniformly from ``[low, high]`` (seeded), as questions."""
    import random

    for name, v in (("n", n), ("low", low), ("high", high)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{name} must be an integer, got {type(v).__name__}")
    if n < 1 or not 0 <= low <= high:
        raise ValueError(f"need n >= 1 and 0 <= low <= high, got n={n}, low={low}, high={high}")
    rng = random.Random(seed)
    pairs = [(rng.randint(low, high), rng.randint(low, high)) for _ in range(n)]
    return [Item(ARITHMETIC_PROMPT.format(a=a, b=b), str(a * b), "integer") for a, b in pairs]


def accuracy(items: list[Item], answers: list[str]) -> dict:
    """Correct answers out of ``len(items)``, the accuracy and its 95% Wilson interval (Wilson 1927)."""
    from .icl import wilson_interval

    if len(items) != len(answers) or not items:
        raise ValueError(f"need as many answers as items (> 0), got {len(answers)} answers for {len(items)} items")
    correct = sum(item.correct(a) for item, a in zip(items, answers))
    low, high = wilson_interval(correct, len(items))
    return {"n": len(items), "correct": correct, "accuracy": correct / len(items), "ci_low": low, "ci_high": high}


def format_accuracy(result: dict) -> str:
    """An :func:`accuracy` result as text, rounded to whole percent: ``"70% (52% to 83%)"``."""
    if not isinstance(result, dict):
        raise _checks.ArgumentTypeError(f"result must be the dict that lifecycle.accuracy returns, got "
                                        f"{type(result).__name__}")
    missing = [k for k in ("accuracy", "ci_low", "ci_high") if k not in result]
    if missing:
        raise ValueError(f"result lacks {missing}; pass what lifecycle.accuracy returns")
    return f"{result['accuracy']:.0%} ({result['ci_low']:.0%} to {result['ci_high']:.0%})"


def count_sentences(text: str) -> int:
    """Number of sentences in ``text``: runs of text ending in ``.``, ``!`` or ``?`` (or the end)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    return len([s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if re.search(r"\w", s)])


def _normalise(value):
    if isinstance(value, dict):
        return {str(k).lower(): _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return frozenset(str(v).strip().lower() for v in value)
    return frozenset([str(value).strip().lower()])


def json_matches(answer: str, reference: dict) -> bool:
    """Whether the first JSON object in ``answer`` equals ``reference``, ignoring case, and order within lists
    (a single value counts as a one-element list)."""
    if not isinstance(reference, dict):
        raise TypeError(f"reference must be a dict, got {type(reference).__name__}")
    found = first_json_object(answer)
    return found is not None and _normalise(found) == _normalise(reference)


def calculator(expression: str) -> float:
    """Evaluate an arithmetic ``expression`` of numbers, ``+ - * / x ×`` and brackets, as a deployed tool would.

    Only arithmetic is allowed (parsed with :mod:`ast`, never ``eval``); anything
    else raises ``ValueError``, and so does a division by zero.
    """
    import ast
    import operator

    if not isinstance(expression, str):
        raise TypeError(f"expression must be a string, got {type(expression).__name__}")
    ops = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.USub: operator.neg, ast.UAdd: operator.pos}
    text = re.sub(r"(?<=\d)\s*[x×]\s*(?=\d)", "*", expression.replace("times", "*"))

    def value(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
                and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            left, right = value(node.left), value(node.right)
            if isinstance(node.op, ast.Div) and right == 0:
                raise ValueError(f"the expression {expression!r} divides by zero")
            return ops[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in ops:
            return ops[type(node.op)](value(node.operand))
        raise ValueError(f"calculator accepts numbers, + - * / and brackets only: the expression {expression!r} "
                         f"holds something else")

    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise ValueError(f"calculator accepts numbers, + - * / and brackets only: the expression {expression!r} "
                         f"does not parse") from None
    return value(tree.body)


CALCULATOR_PROMPT = ("You can call one tool: calculator(expression: string), which returns the value of an "
                     "arithmetic expression. Reply only with a JSON object of the form "
                     '{{"name": "calculator", "arguments": {{"expression": ...}}}}.\n\n'
                     "Request: What is {a} times {b}?")


def calculator_items(n: int = 30, low: int = 10, high: int = 99, seed: int = 0) -> list[Item]:
    """The same multiplications as :func:`arithmetic_items`, asked as a request to call a calculator tool."""
    items = arithmetic_items(n, low, high, seed)
    pairs = [re.findall(r"\d+", item.prompt)[:2] for item in items]
    return [Item(CALCULATOR_PROMPT.format(a=a, b=b), item.reference, "tool") for (a, b), item in zip(pairs, items)]


def tool_result(answer: str) -> float | None:
    """Run the calculator call that ``answer`` asks for, the way an application would; None when there is no
    valid call (no JSON object, another tool's name, no expression, or one the calculator refuses)."""
    if not isinstance(answer, str):
        raise _checks.ArgumentTypeError(f"answer must be a string (the model's reply), got {type(answer).__name__}")
    call = first_json_object(answer)
    if not call or call.get("name") != "calculator" or not isinstance(call.get("arguments"), dict):
        return None
    expression = call["arguments"].get("expression")
    try:
        return calculator(str(expression)) if expression is not None else None
    except (ValueError, ZeroDivisionError):
        return None


# --------------------------------------------------------------------------- the use cases, judged
@dataclass(frozen=True)
class UseCase:
    """One of the chapter's use-case prompts, with a reference answer and a computed check of an answer."""

    name: str
    prompt: str
    reference: str
    check: str  # what the check tests, in words

    def __post_init__(self) -> None:
        for name in ("name", "prompt", "reference", "check"):
            _checks.string(name, getattr(self, name))
        # USE_CASES are built before _USE_CASE_CHECKS exists; a use case made later needs a computed check
        checks = globals().get("_USE_CASE_CHECKS")
        if checks is not None and self.name not in checks:
            raise ValueError(f"name must be a use case with a computed check, one of {sorted(checks)}; "
                             f"got {self.name!r}")

    def passes(self, answer: str) -> bool:
        """Whether ``answer`` passes this use case's check (see :data:`USE_CASES`)."""
        return _USE_CASE_CHECKS[self.name](answer)


_SUMMARY_TEXT = ("The city council of Riverton voted on Tuesday to close the Main Street library in June, because "
                 "repairing its roof would cost two million dollars. Its books will move to the new community "
                 "centre, which opens in May. Several residents said they would miss the old building.")
_ENTITIES = {"people": ["Marie Curie"], "places": ["Warsaw", "Paris"], "dates": ["1891"]}
_WEATHER_CALL = {"name": "get_weather", "arguments": {"city": "Lisbon", "unit": "celsius"}}

USE_CASES = [
    UseCase("chat (a fact)", "Who designed the street layout of Washington DC?",
            "Pierre (Peter) Charles L'Enfant, in 1791", "names L'Enfant"),
    UseCase("essay writing", "Write a paragraph of exactly three sentences about the benefits of walking.",
            "three sentences on walking", "three sentences that mention walking"),
    UseCase("summarization", "Summarize this text in one sentence.\n\n" + _SUMMARY_TEXT,
            "The Main Street library closes in June because its roof repair is too costly, and its books move "
            "to the new community centre.",
            "one sentence naming the closure, the roof (or repair) and the books"),
    UseCase("translation", "Translate into French: The cat is sleeping on the chair.",
            "Le chat dort sur la chaise.", "contains chat, dort and chaise"),
    UseCase("translation (code)", "Translate this Python function into JavaScript:\n\ndef add(a, b):\n"
            "    return a + b", "function add(a, b) { return a + b; }",
            "contains function add(a, b) and return a + b"),
    UseCase("entity extraction", "Extract the people, places and dates from this sentence. Answer in JSON with "
            'the keys "people", "places" and "dates".\n\nMarie Curie moved from Warsaw to Paris in 1891.',
            json.dumps(_ENTITIES), "parses as JSON with exactly these entities"),
    UseCase("tool call", 'You can call one tool: get_weather(city: string, unit: "celsius" or "fahrenheit"). '
            'Reply only with a JSON object of the form {"name": ..., "arguments": {...}}.\n\n'
            "Request: What is the weather in Lisbon, in celsius?", json.dumps(_WEATHER_CALL),
            "parses as JSON and equals this call"),
]


def _words(answer: str, words: tuple[str, ...]) -> bool:
    return all(re.search(rf"\b{w}\b", answer, flags=re.IGNORECASE) for w in words)


_USE_CASE_CHECKS = {
    "chat (a fact)": lambda a: mentions(a, ["L'Enfant", "Enfant"]),
    "essay writing": lambda a: count_sentences(a) == 3 and mentions(a, "walk"),
    "summarization": lambda a: count_sentences(a) == 1 and mentions(a, "clos") and mentions(a, ["roof", "repair"])
    and mentions(a, "books"),
    "translation": lambda a: _words(a, ("chat", "dort", "chaise")),
    "translation (code)": lambda a: bool(re.search(r"function\s+add\s*\(\s*a\s*,\s*b\s*\)", a))
    and "return a + b" in a,
    "entity extraction": lambda a: json_matches(a, _ENTITIES),
    "tool call": lambda a: json_matches(a, _WEATHER_CALL),
}



# --------------------------------------------------------------------------- the recorded completions
# made by llmlab.records.lifecycle_completions
def recorded_answers(record: dict, group: str) -> list[str]:
    """The recorded answers of one group, in the order of its prompts."""
    if group not in record.get("groups", {}):
        raise ValueError(f"no group {group!r} in the record; it has {list(record.get('groups', {}))}")
    return [c["answer"] for c in record["groups"][group]["completions"]]
