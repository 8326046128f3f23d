"""Short answers and a model as judge (chapter 11): exact match on generated answers, and pairwise judging.

- :func:`answer_prompt` and :func:`answer_questions`: the model answers each short-answer
  question of the frozen benchmark greedily; the answer is scored with exact match after
  normalisation (:func:`llmlab.evaluation.exact_match`) and, more leniently, with
  :func:`contains_answer` (an accepted answer appears in the output as whole words).
- :func:`judge_prompt`, :func:`judge_margin` and :func:`judge_items`: LLM-as-a-judge in
  its pairwise form (Zheng et al. 2023, MT-Bench): the judge reads a question and two
  answers, A and B, and says which is right. Its verdict is read from log-likelihoods, as
  a multiple-choice item is: the log-probability of "A" minus that of "B" as the first
  token of its reply (:func:`llmlab.evaluation.choice_logprobs`). Each pair is judged in
  both orders, so a judge that prefers a position rather than an answer shows it.
- :func:`judge_summary`: agreement with the known right answer in each order, consistency
  across the swap, and the share of verdicts for the first position, with intervals.
"""

from __future__ import annotations

import torch

from . import _checks, stats
from .chat import chat_complete, chat_text
from .evaluation import choice_logprobs, exact_match, normalize_answer

#: what the model is asked before each short-answer question
ANSWER_INSTRUCTION = "Answer the question in a few words, with no explanation."
#: new tokens allowed for a short answer
ANSWER_TOKENS = 12
#: the judge's instruction; the two answers fill {first} (A) and {second} (B)
JUDGE_TEMPLATE = ("Question: {question}\nAnswer A: {first}\nAnswer B: {second}\n"
                  "Which answer is correct, A or B? Reply with the letter only.")
#: the first tokens of the judge's reply that are read: the first answer, then the second
JUDGE_LETTERS = ("A", "B")


def _check_short_item(item, where: str = "item") -> dict:
    if not isinstance(item, dict):
        raise _checks.ArgumentTypeError(f"{where} must be a dict with 'question' and 'answer' (as "
                                        f"load_benchmark('short') returns), got {type(item).__name__}")
    missing = [k for k in ("question", "answer") if k not in item]
    if missing:
        raise ValueError(f"{where} {item.get('id', '')!r} has no {missing}: a short-answer item needs "
                         f"'question' and 'answer'")
    _checks.string(f"{where}['question']", item["question"], allow_empty=False)
    _checks.string(f"{where}['answer']", item["answer"], allow_empty=False)
    _checks.strings(f"{where}['aliases']", item.get("aliases", []), allow_empty=True)
    return item


def _check_items(items, what: str, need_wrong: bool = False) -> list[dict]:
    if isinstance(items, dict) or not isinstance(items, (list, tuple)):
        raise _checks.ArgumentTypeError(f"{what} must be a list of short-answer item dicts (as "
                                        f"load_benchmark('short') returns), got {type(items).__name__}")
    if not items:
        raise ValueError(f"{what} is empty: pass at least one short-answer item")
    for n, item in enumerate(items):
        _check_short_item(item, f"{what}[{n}]")
        if need_wrong:
            if "wrong" not in item:
                raise ValueError(f"{what}[{n}] has no 'wrong' answer: the judge compares the right answer "
                                 f"with a wrong one")
            _checks.string(f"{what}[{n}]['wrong']", item["wrong"], allow_empty=False)
    return list(items)


def _answer_message(item: dict) -> str:
    return f"{ANSWER_INSTRUCTION}\nQuestion: {item['question'].strip()}"


def answer_prompt(tokenizer, item: dict) -> str:
    """The chat prompt for one short-answer ``item``: :data:`ANSWER_INSTRUCTION`, then the question,
    as one user message, with the opening of the assistant's turn."""
    return chat_text(tokenizer, _answer_message(_check_short_item(item)))


def contains_answer(prediction: str, gold: str, aliases=()) -> bool:
    """Whether an accepted answer appears in ``prediction`` as whole words, both normalised.

    More lenient than :func:`llmlab.evaluation.exact_match`: "The answer is Paris." contains
    "Paris". It also accepts an output that lists several answers, which is why the two
    scores are reported side by side rather than this one alone.
    """
    _checks.string("prediction", prediction)
    _checks.string("gold", gold, allow_empty=False)
    aliases = _checks.strings("aliases", aliases, allow_empty=True)
    said = f" {normalize_answer(prediction)} "
    return any(f" {a} " in said for a in {normalize_answer(x) for x in [gold, *aliases]} - {""})


def answer_questions(model: torch.nn.Module, tokenizer, items: list[dict],
                     max_new_tokens: int = ANSWER_TOKENS) -> list[dict]:
    """Greedy answers to short-answer ``items``, one record per item, in order.

    A record holds the item's ``id`` and ``subject`` (when it has them), the ``answer`` (the
    first line of the model's reply, at most ``max_new_tokens`` tokens), ``exact`` (exact
    match after normalisation against the gold answer and its aliases) and ``contains``
    (:func:`contains_answer`).
    """
    items = _check_items(items, "items")
    _checks.model("model", model)
    _checks.tokenizer("tokenizer", tokenizer)
    max_new_tokens = _checks.positive_int("max_new_tokens", max_new_tokens)
    # one prompt at a time: left padding in a batch moves the numbers slightly, and the
    # recorded answers are reproduced exactly this way
    replies = chat_complete(model, tokenizer, [_answer_message(i) for i in items], max_new_tokens,
                            batch_size=1)
    records = []
    for item, reply in zip(items, replies):
        answer = reply.split("\n", 1)[0].strip()  # the first line of the reply
        aliases = item.get("aliases", [])
        record = {k: item[k] for k in ("id", "subject") if k in item}
        record.update(answer=answer, exact=exact_match(answer, item["answer"], aliases),
                      contains=contains_answer(answer, item["answer"], aliases))
        records.append(record)
    return records


def judge_prompt(tokenizer, question: str, first: str, second: str) -> str:
    """The judge's chat prompt: :data:`JUDGE_TEMPLATE` with ``first`` as answer A and ``second``
    as answer B, as one user message, with the opening of the assistant's turn."""
    for name, value in (("question", question), ("first", first), ("second", second)):
        _checks.string(name, value, allow_empty=False)
    return chat_text(tokenizer, JUDGE_TEMPLATE.format(question=question.strip(), first=first.strip(),
                                                      second=second.strip()))


def judge_margin(model: torch.nn.Module, tokenizer, question: str, first: str, second: str) -> float:
    """How strongly the judge prefers the first answer (A) to the second (B): the log-probability
    of "A" minus that of "B" as the first token of its reply (nats). Positive means A."""
    context = judge_prompt(tokenizer, question, first, second)
    a, b = choice_logprobs(model, tokenizer, context, list(JUDGE_LETTERS))
    return a - b


def judge_items(model: torch.nn.Module, tokenizer, items: list[dict]) -> list[dict]:
    """Judge each item's right answer against its ``wrong`` one, in both orders.

    One record per item: ``id``, ``subject``, ``margin_right_first`` (the right answer is A)
    and ``margin_right_second`` (the right answer is B), each :func:`judge_margin` in nats;
    ``right_when_first`` (the judge picks A when A is right), ``right_when_second`` (it
    picks B when B is right), ``picks_first`` (how many of its two verdicts say A: 0, 1
    or 2), and ``right_debiased``: whether the right answer wins once the position is
    cancelled, ``margin_right_first - margin_right_second > 0`` (the pull towards A is the
    same in both orders, so it drops out of the difference).
    """
    items = _check_items(items, "items", need_wrong=True)
    _checks.model("model", model)
    records = []
    for item in items:
        q, right, wrong = item["question"], item["answer"], item["wrong"]
        m1 = judge_margin(model, tokenizer, q, right, wrong)
        m2 = judge_margin(model, tokenizer, q, wrong, right)
        record = {k: item[k] for k in ("id", "subject") if k in item}
        record.update(margin_right_first=round(m1, 6), margin_right_second=round(m2, 6),
                      right_when_first=m1 > 0, right_when_second=m2 < 0, picks_first=int(m1 > 0) + int(m2 > 0),
                      right_debiased=m1 - m2 > 0)
        records.append(record)
    return records


def judge_summary(records: list[dict], level: float = 0.95) -> dict:
    """What :func:`judge_items` records say about the judge, with Wilson intervals (``level``).

    ``n`` pairs; ``right_when_first`` and ``right_when_second``: the share of pairs judged
    right in each order; ``right_both``: right in both orders (the judge's real agreement
    with the truth: it did not get there by position); ``consistent``: the same answer
    chosen in both orders, right or wrong; ``first_share``: the share of all ``2 n``
    verdicts that say A (0.5 for a judge with no position preference; its interval is a
    bootstrap over pairs, since a pair's two verdicts are not independent); ``right_debiased``:
    the share of pairs the right answer wins once the position is cancelled (a judge with
    no signal beyond position sits at 0.5, inside the interval); each with its
    ``(low, high)`` interval under the key's name plus ``_ci`` (Wilson, except for
    ``first_share``). ``order_test``: the paired
    comparison of the two orders on the same pairs (:func:`llmlab.stats.compare`: exact
    McNemar), whose verdict says whether the order changed how often the judge is right.
    """
    if isinstance(records, dict) or not isinstance(records, (list, tuple)) or not records:
        raise _checks.ArgumentTypeError("records must be the non-empty list that judge_items returns")
    keys = ("right_when_first", "right_when_second", "picks_first", "right_debiased")
    for n, r in enumerate(records):
        if not isinstance(r, dict) or any(k not in r for k in keys):
            raise ValueError(f"records[{n}] must be a judge_items record with {keys}")
    n = len(records)
    first = [bool(r["right_when_first"]) for r in records]
    second = [bool(r["right_when_second"]) for r in records]
    counts = {"right_when_first": sum(first), "right_when_second": sum(second),
              "right_both": sum(a and b for a, b in zip(first, second)),
              "consistent": sum(a == b for a, b in zip(first, second)),
              "right_debiased": sum(bool(r["right_debiased"]) for r in records)}
    out = {"n": n}
    for key, k in counts.items():
        out[key], out[key + "_ci"] = k / n, stats.wilson_interval(k, n, level)
    # a pair's two verdicts are not independent: resample pairs, not verdicts
    per_pair = [int(r["picks_first"]) / 2 for r in records]
    out["first_share"] = sum(per_pair) / n
    out["first_share_ci"] = stats.bootstrap_interval(per_pair, level)
    out["order_test"] = stats.compare(first, second, names=("the right answer first", "the right answer second"),
                                      level=level)
    return out
