"""A model that calls tools: a calculator for the arithmetic it gets wrong (chapter 15).

SmolLM2-135M-Instruct's chat template has no slot for tools (it renders system, user and
assistant turns and nothing else), so this module defines a text protocol of its own, in
the style of Toolformer (Schick et al. 2023): the model writes a call inside its answer,

    <calculator>12 * 35 - 97</calculator>

generation stops at the closing tag, the program runs the tool and appends
``<result>323</result>``, and the model goes on writing with the result in view.

- :func:`load_problems` reads the frozen arithmetic problems
  (``llmlab/corpus/augment_arithmetic.json``, made once by :func:`make_problems`).
- :func:`messages` writes the prompt for one of three :data:`STYLES`: the number alone,
  chain of thought (Wei et al. 2022: worked examples that reason before answering), or
  the calculator; all three show the same two worked problems.
- :func:`answer_with_tools` runs the loop for one question; :func:`final_number` reads
  the answer; :func:`failure` names what went wrong: no call, a malformed call, wrong
  operands, or a right result the answer did not use.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import torch

from . import _checks
from .lifecycle import calculator, last_integer

PROBLEMS_FILE = Path(__file__).parent / "corpus" / "augment_arithmetic.json"
KINDS = ("addition", "multiplication", "word problem")
STYLES = ("direct", "chain of thought", "calculator")
#: new tokens per generation: a number, a short chain of reasoning, or a call and an answer
MAX_NEW_TOKENS = {"direct": 10, "chain of thought": 96, "calculator": 48}
#: how many tool calls one answer may make before the loop stops it
MAX_CALLS = 2

_CALL = re.compile(r"<(?P<name>[a-z_]+)>(?P<arguments>.*?)</(?P=name)>", re.S)
_OPEN = re.compile(r"<(?P<name>[a-z_]+)>")
RESULT = "<result>{}</result>"

SYSTEM = {
    "direct": "Answer with the number only.",
    "chain of thought": "Work the problem out step by step, then end with: The answer is N.",
    "calculator": ("You have a calculator. To use it, write <calculator>expression</calculator>; its result "
                   "follows in <result></result>. Then end with: The answer is N."),
}
# Two worked problems, shown in every style: the same questions, answered the style's way.
EXAMPLES = [
    ("What is 14 times 23?", {
        "direct": "322",
        "chain of thought": "14 times 23 is 14 times 20 plus 14 times 3, so 280 + 42 = 322. The answer is 322.",
        "calculator": "<calculator>14 * 23</calculator><result>322</result> The answer is 322.",
    }),
    ("A baker makes 12 trays of 35 rolls and sells 97 rolls. How many rolls are left?", {
        "direct": "323",
        "chain of thought": ("12 trays of 35 rolls make 12 * 35 = 420 rolls. After selling 97, 420 - 97 = 323 "
                             "are left. The answer is 323."),
        "calculator": "<calculator>12 * 35 - 97</calculator><result>323</result> The answer is 323.",
    }),
]

_NAMES = ("Ada", "Bo", "Cleo", "Dara", "Eli", "Faye", "Gil", "Hugo", "Iris", "Juno")
_WORD_TEMPLATES = (
    ("{name} packs {a} boxes with {b} pencils in each box and gives away {c} pencils. "
     "How many pencils does {name} have left?"),
    "A farm has {a} rows of {b} apple trees. A storm knocks down {c} trees. How many trees are still standing?",
    "{name} reads {b} pages a day for {a} days, then tears out {c} pages. How many pages are left?",
    "A hall has {a} rows of {b} seats, and {c} seats are taken. How many seats are free?",
)


# --------------------------------------------------------------------------- the problems
def make_problems(seed: int = 0, per_kind: int = 40) -> list[dict]:
    """``per_kind`` problems of each of :data:`KINDS`, seeded: sums of two three-digit numbers, products of
    two two-digit numbers, and word problems ``a * b - c`` (a from 11 to 39, b from 12 to 49, c below a * b).
    Each is ``{"id", "kind", "question", "expression", "answer"}``."""
    seed = _checks.integer("seed", seed)
    per_kind = _checks.positive_int("per_kind", per_kind)
    rng = random.Random(seed)
    out = []
    for i in range(per_kind):
        a, b = rng.randint(100, 999), rng.randint(100, 999)
        out.append({"id": f"add-{i + 1:02d}", "kind": "addition", "question": f"What is {a} plus {b}?",
                    "expression": f"{a} + {b}", "answer": a + b})
    for i in range(per_kind):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        out.append({"id": f"mul-{i + 1:02d}", "kind": "multiplication", "question": f"What is {a} times {b}?",
                    "expression": f"{a} * {b}", "answer": a * b})
    for i in range(per_kind):
        a, b = rng.randint(11, 39), rng.randint(12, 49)
        c = rng.randint(10, a * b - 1)
        text = _WORD_TEMPLATES[i % len(_WORD_TEMPLATES)].format(name=rng.choice(_NAMES), a=a, b=b, c=c)
        out.append({"id": f"word-{i + 1:02d}", "kind": "word problem", "question": text,
                    "expression": f"{a} * {b} - {c}", "answer": a * b - c})
    return out


def load_problems() -> list[dict]:
    """The frozen arithmetic problems (:func:`make_problems` with seed 0, written once to
    ``augment_arithmetic.json``); checked on load: every answer equals its expression's value."""
    if not PROBLEMS_FILE.exists():
        raise _checks.MissingFileError(f"{PROBLEMS_FILE} is missing: it ships inside the llmlab package")
    problems = json.loads(PROBLEMS_FILE.read_text(encoding="utf-8"))
    for i, p in enumerate(problems):
        if not isinstance(p, dict) or set(p) != {"id", "kind", "question", "expression", "answer"}:
            raise ValueError(f"{PROBLEMS_FILE.name}[{i}] must be a dict with id, kind, question, expression, "
                             f"answer")
        if calculator(p["expression"]) != p["answer"]:
            raise ValueError(f"{PROBLEMS_FILE.name}[{i}]: {p['expression']} is not {p['answer']}")
    return problems


# --------------------------------------------------------------------------- prompts
def messages(question: str, style: str) -> list[dict]:
    """The chat messages for ``question`` in ``style`` (one of :data:`STYLES`): the style's system
    message, the two :data:`EXAMPLES` answered that way, then the question."""
    _checks.string("question", question, allow_empty=False)
    _checks.choice("style", style, STYLES)
    out = [{"role": "system", "content": SYSTEM[style]}]
    for q, answers in EXAMPLES:
        out += [{"role": "user", "content": q}, {"role": "assistant", "content": answers[style]}]
    return out + [{"role": "user", "content": question}]


def prompt_text(tokenizer, question: str, style: str) -> str:
    """:func:`messages` through the tokenizer's chat template, ending where the assistant's turn opens."""
    _checks.tokenizer("tokenizer", tokenizer)
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError("this tokenizer has no chat template; tools needs a chat model such as "
                         "smollm2-135m-instruct")
    return tokenizer.apply_chat_template(messages(question, style), add_generation_prompt=True, tokenize=False)


# --------------------------------------------------------------------------- the tool loop
def _check_tools(tools) -> dict:
    if not isinstance(tools, dict) or not tools:
        raise _checks.ArgumentTypeError(f"tools must be a non-empty dict of name -> function (for example "
                                        f"{{'calculator': lifecycle.calculator}}), got {type(tools).__name__}")
    for name, fn in tools.items():
        if not isinstance(name, str) or not re.fullmatch(r"[a-z_]+", name) or name == "result":
            raise ValueError(f"tool names must be lower-case words (letters and _), not 'result'; got {name!r}")
        if not callable(fn):
            raise _checks.ArgumentTypeError(f"tools[{name!r}] must be a function of one string, got "
                                            f"{type(fn).__name__}")
    return tools


def parse_call(text: str, tools: dict) -> dict | None:
    """The first tool call in ``text``: ``{"name", "arguments"}`` for ``<name>arguments</name>`` with a
    name in ``tools``; ``{"name", "arguments": None, "error"}`` when a tool's tag opens but never closes
    (a malformed call); None when no tool is named."""
    _checks.string("text", text)
    _check_tools(tools)
    for m in _CALL.finditer(text):
        if m.group("name") in tools:
            return {"name": m.group("name"), "arguments": m.group("arguments").strip()}
    for m in _OPEN.finditer(text):
        if m.group("name") in tools:
            return {"name": m.group("name"), "arguments": None, "error": "the call is not closed"}
    return None


def run_call(call: dict, tools: dict) -> dict:
    """Run a parsed call: the call with ``"result"`` (the tool's value as text) or ``"error"`` (why it
    failed: a tool that refuses its arguments raises ValueError, whose message is kept)."""
    _check_tools(tools)
    if not isinstance(call, dict) or "name" not in call or "arguments" not in call:
        raise _checks.ArgumentTypeError("call must be a dict with 'name' and 'arguments', as parse_call returns")
    if call.get("error") or call["arguments"] is None:
        return {**call, "error": call.get("error") or "no arguments"}
    if call["name"] not in tools:
        return {**call, "error": f"no tool named {call['name']!r}"}
    try:
        value = tools[call["name"]](call["arguments"])
    except (ValueError, TypeError, ZeroDivisionError, ArithmeticError) as err:
        return {**call, "error": str(err)}
    return {**call, "result": _shown(value)}


def _shown(value) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


@torch.no_grad()
def _continue(model, tokenizer, text: str, max_new_tokens: int, stop: list[str]) -> str:
    device = next(model.parameters()).device
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(device)
    out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False, stop_strings=stop,
                         tokenizer=tokenizer, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    return tokenizer.decode(out[0, ids["input_ids"].size(1):], skip_special_tokens=True)


def answer_with_tools(model: torch.nn.Module, tokenizer, question: str, tools: dict,
                      max_calls: int = MAX_CALLS, max_new_tokens: int = MAX_NEW_TOKENS["calculator"]
                      ) -> tuple[str, list]:
    """Answer ``question`` with ``tools`` (name -> function of one string) available, greedily.

    The prompt is :func:`prompt_text` in the calculator style. Generation stops at a closing
    tag ``</name>``; the program runs the call (:func:`run_call`), appends
    ``<result>value</result>`` (or ``<result>error: why</result>``) and lets the model go on,
    at most ``max_calls`` times. Returns ``(answer, calls)``: the text the model wrote after
    its last result (all of its reply when it made no call) and the calls, in order, each
    ``{"name", "arguments", "result" or "error"}``.
    """
    _checks.model("model", model)
    _checks.string("question", question, allow_empty=False)
    tools = _check_tools(tools)
    max_calls = _checks.integer("max_calls", max_calls, low=0)
    max_new_tokens = _checks.positive_int("max_new_tokens", max_new_tokens)
    text = prompt_text(tokenizer, question, "calculator")
    stop = [f"</{name}>" for name in tools]
    calls: list[dict] = []
    written = ""  # the model's text since the last result
    for _ in range(max_calls + 1):
        written = _continue(model, tokenizer, text, max_new_tokens, stop)
        call = parse_call(written, tools)
        if call is None or len(calls) == max_calls:
            break
        if call.get("error"):  # an opened, never-closed tag: the reply ends there
            calls.append(run_call(call, tools))
            break
        end = written.index(f"</{call['name']}>") + len(call["name"]) + 3  # cut after the closing tag
        done = run_call(call, tools)
        calls.append(done)
        text += written[:end] + RESULT.format(done["result"] if "result" in done else f"error: {done['error']}")
        written = ""
    return written.strip(), calls


def final_number(answer: str) -> int | None:
    """The answer's number: the last whole number in ``answer`` (see :func:`llmlab.lifecycle.last_integer`)."""
    return last_integer(answer)


def failure(problem: dict, answer: str, calls: list) -> str:
    """What happened to one calculator-style answer, in the order things can go wrong:
    ``"right"``; ``"no call"`` (wrong, and the model never called the tool); ``"malformed call"``
    (its call did not close or the tool refused it); ``"wrong operands"`` (the call ran but computed
    something else); ``"result not used"`` (the call returned the right value and the answer
    still did not give it)."""
    if not isinstance(problem, dict) or "answer" not in problem:
        raise _checks.ArgumentTypeError("problem must be a dict with 'answer', as load_problems returns")
    _checks.string("answer", answer)
    if not isinstance(calls, list):
        raise _checks.ArgumentTypeError(f"calls must be the list answer_with_tools returns, got "
                                        f"{type(calls).__name__}")
    if final_number(answer) == problem["answer"]:
        return "right"
    if not calls:
        return "no call"
    last = calls[-1]
    if "error" in last:
        return "malformed call"
    if last["result"] != str(problem["answer"]):
        return "wrong operands"
    return "result not used"


FAILURES = ("right", "no call", "malformed call", "wrong operands", "result not used")

__all__ = ["make_problems", "load_problems", "messages", "prompt_text", "parse_call", "run_call",
           "answer_with_tools", "final_number", "failure", "FAILURES", "STYLES", "KINDS", "SYSTEM", "EXAMPLES"]
