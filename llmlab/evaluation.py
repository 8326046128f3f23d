"""Evaluating language models (chapter 11): the frozen benchmark, and how to score a model on it.

- :func:`load_benchmark` reads the project's own benchmark from ``llmlab/corpus``:
  ``"mc"``, 320 four-choice questions (``evalbench_mc.json``), or ``"short"``,
  104 short-answer questions with a gold answer, accepted aliases and a plausible
  wrong answer (``evalbench_short.json``). Both are described, with their SHA-256,
  in ``llmlab/corpus/EVALBENCH.md``; they were written and frozen before any model
  was run on them, and a change means a new file under a new name.
- Multiple choice from log-likelihoods, the way lm-evaluation-harness scores it
  (Gao et al. 2021, EleutherAI): :func:`choice_logprobs` and :func:`choice_scores`
  (the summed log-probability of each choice after a context, and the per-character
  variant behind ``acc_norm``), :func:`mc_prompt` (three prompt formats:
  ``"letter"``, ``"text"``, ``"chat"``) and :func:`score_multiple_choice` (one record
  per item).
- Short answers: :func:`normalize_answer` and :func:`exact_match` (the SQuAD
  convention, Rajpurkar et al. 2016).
- Overlap metrics written from scratch and checked against the maintained packages
  (``tools/crosscheck_metrics.py``, ``llmlab/results/evaluation_metrics_crosscheck.json``):
  :func:`bleu` and :func:`sentence_bleu` (Papineni et al. 2002, as sacrebleu computes
  them, Post 2018) with :func:`tokenize_13a`, and :func:`rouge_scores` (ROUGE-1, ROUGE-2,
  ROUGE-L F1, Lin 2004, as Google's rouge-score package computes them).

Every item is checked as it loads, so a damaged file fails loudly rather than
scoring a model on a broken question.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from . import _checks
from .metrics import rouge_l

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


# -----------------------------------------------------------------------------
# multiple choice from log-likelihoods (lm-evaluation-harness's convention)


@dataclass(frozen=True)
class ChoiceScore:
    """How likely a model finds one choice after a context (nats; a log-probability is <= 0).

    ``logprob`` is the sum of the log-probabilities of the continuation's ``n_tokens``
    tokens; ``is_greedy`` says whether each of those tokens was the model's top token.
    ``n_chars`` and ``n_bytes`` count the choice itself (without the delimiter), as the
    harness does for ``acc_norm`` and ``acc_bytes``.
    """

    choice: str
    logprob: float
    n_tokens: int
    n_chars: int
    n_bytes: int
    is_greedy: bool

    @property
    def logprob_per_char(self) -> float:
        """``logprob / n_chars``: the score behind the harness's ``acc_norm``."""
        return self.logprob / self.n_chars

    @property
    def logprob_per_byte(self) -> float:
        """``logprob / n_bytes`` (UTF-8): the score behind the harness's ``acc_bytes``."""
        return self.logprob / self.n_bytes


PADDING_SIDES = ("right", "left")


def _encode(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _prefix_token_id(tokenizer) -> int:
    for name in ("bos_token_id", "eos_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            return int(value)
    raise ValueError("an empty context needs a start token to condition on, but the tokenizer has neither "
                     "bos_token_id nor eos_token_id; pass a non-empty context")


def _encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context tokens, continuation tokens) as the harness's ``_encode_pair`` makes them."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:  # trailing whitespace belongs to the continuation (" Paris", not "Paris")
        continuation, context = context[-n_spaces:] + continuation, context[:-n_spaces]
    if not context:  # nothing to condition on: start from the start-of-text token
        return [_prefix_token_id(tokenizer)], _encode(tokenizer, continuation)
    whole = _encode(tokenizer, context + continuation)
    context_ids = _encode(tokenizer, context)
    return context_ids, whole[len(context_ids):]


def _check_choices(context, choices, delimiter: str) -> list[str]:
    _checks.string("context", context)
    choices = _checks.strings("choices", choices)
    for i, c in enumerate(choices):
        if not c:
            raise ValueError(f"choices[{i}] is the empty string: every choice needs at least one character")
    _checks.string("delimiter", delimiter)
    return choices


@torch.no_grad()
def choice_scores(model: torch.nn.Module, tokenizer, context: str, choices: list[str], *,
                  delimiter: str = "", padding_side: str = "right") -> list[ChoiceScore]:
    """Score each choice as a continuation of ``context``, the way lm-evaluation-harness does.

    For each choice the continuation is ``delimiter + choice``. As in the harness's
    ``_encode_pair``: trailing whitespace of the context moves to the front of the
    continuation; the context and ``context + continuation`` are tokenized separately
    (no special tokens); and the continuation's tokens are the tokens of the whole past
    the context's token count. The model reads the context's own tokens followed by those,
    and the log-probabilities (log-softmax of the logits, in nats) of the continuation's
    tokens are summed.

    At the boundary this means: when the context's last characters and the choice's first
    merge into one token (a context ending in ``"4"`` and a choice ``"2"``, tokenized as
    ``"42"``), the context "steals" that token: the scored tokens cover fewer characters
    than the choice, and a choice swallowed whole scores no token at all (``n_tokens == 0``,
    ``logprob == 0.0``), exactly as the harness reports it. Put the separator in
    ``delimiter`` (``" "``, the harness's ``target_delimiter``) so that no merge happens.
    An empty (or all-whitespace) context is replaced by the tokenizer's BOS token (EOS
    when there is none), the harness's ``prefix_token_id``. A sequence longer than the
    model's context window loses tokens on the left, as in the harness.

    All choices go through the model in one padded batch, one row per distinct model input
    (choices of one token share the context's row). ``padding_side="right"`` (the
    harness's choice) leaves every position as in an unpadded run; ``"left"`` gives the
    model explicit position ids, so both agree (the tokenizer's own ``padding_side`` is
    not used). The model runs in eval mode, restored afterwards.
    """
    choices = _check_choices(context, choices, delimiter)
    _checks.model("model", model)
    _checks.tokenizer("tokenizer", tokenizer)
    _checks.choice("padding_side", padding_side, PADDING_SIDES)
    window = _checks.context_window(model)

    # (model input, number of continuation tokens, continuation tokens), one per choice
    rows = []
    for choice in choices:
        context_ids, cont_ids = _encode_pair(tokenizer, context, delimiter + choice)
        if window is not None and len(cont_ids) > window:
            raise ValueError(f"the choice {choice[:40]!r} is {len(cont_ids)} tokens long, more than the model's "
                             f"context window of {window} tokens")
        full = context_ids + cont_ids
        inputs = full[-(window + 1):][:-1] if window is not None else full[:-1]
        rows.append((inputs, cont_ids))

    # One batch row per distinct model input: the letter prompts give every choice the same
    # input (the context; the one-token letters are read from its last position), so the
    # context runs once, as the harness's request grouping does. A continuation of no tokens
    # needs no row at all.
    inputs_of = {tuple(inputs) for inputs, cont in rows if cont}
    batch = sorted(inputs_of, key=lambda x: (len(x), x))
    logprobs = [0.0] * len(rows)
    greedy = [True] * len(rows)
    if batch:
        device = next(model.parameters()).device
        pad = tokenizer.pad_token_id if getattr(tokenizer, "pad_token_id", None) is not None else 0
        length = max(len(inputs) for inputs in batch)
        ids = torch.full((len(batch), length), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), length), dtype=torch.long)
        ends = {}  # model input -> (batch row, index just past its last real position)
        for r, inputs in enumerate(batch):
            start = 0 if padding_side == "right" else length - len(inputs)
            ids[r, start:start + len(inputs)] = torch.tensor(inputs)
            mask[r, start:start + len(inputs)] = 1
            ends[inputs] = (r, start + len(inputs))
        kwargs = {"input_ids": ids.to(device), "attention_mask": mask.to(device)}
        if padding_side == "left":  # positions count from each row's first real token
            kwargs["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0).to(device)
        was_training = model.training
        model.eval()
        try:
            logits = model(**kwargs).logits  # (B, L, V)
        finally:
            model.train(was_training)
        for i, (inputs, cont) in enumerate(rows):
            if not cont:
                continue
            r, end = ends[tuple(inputs)]
            # the logits at positions end - n .. end - 1 predict the n continuation tokens
            picked = torch.log_softmax(logits[r, end - len(cont):end].float(), dim=-1).cpu()  # (n, V)
            targets = torch.tensor(cont)
            logprobs[i] = picked.gather(-1, targets[:, None]).sum().item()
            greedy[i] = bool((picked.argmax(-1) == targets).all())
    return [ChoiceScore(choice=c, logprob=logprobs[i], n_tokens=len(rows[i][1]), n_chars=len(c),
                        n_bytes=len(c.encode("utf-8")), is_greedy=greedy[i]) for i, c in enumerate(choices)]


def choice_logprobs(model: torch.nn.Module, tokenizer, context: str, choices: list[str], *,
                    delimiter: str = "", padding_side: str = "right") -> list[float]:
    """The summed log-probability (nats) of each choice's tokens after ``context``.

    The harness's ``loglikelihood`` of ``(context, delimiter + choice)``: see
    :func:`choice_scores` for the tokenization at the boundary and the batching, and for
    the length-normalised variant. The highest value is the model's choice (``acc``).
    """
    return [s.logprob for s in choice_scores(model, tokenizer, context, choices, delimiter=delimiter,
                                             padding_side=padding_side)]


# The three prompt formats of chapter 11. "letter": the options are listed with letters and
# the letter is scored (the harness's MMLU task); "text": the question alone, and the full
# text of each choice scored (its ARC task); "chat": the letter prompt as a user message in
# the tokenizer's chat template, the letter scored right after the assistant's turn opens
# (the harness with --apply_chat_template, which drops the target delimiter).
FORMAT_LETTER, FORMAT_TEXT, FORMAT_CHAT = "letter", "text", "chat"
FORMATS = (FORMAT_LETTER, FORMAT_TEXT, FORMAT_CHAT)
LETTERS = "ABCDEFGHIJ"
LETTER_TEMPLATE = "{question}\n{options}\nAnswer:"  # options: "A. choice" lines
TEXT_TEMPLATE = "Question: {question}\nAnswer:"


def _check_mc_item(item, where: str = "item") -> dict:
    if not isinstance(item, dict):
        raise _checks.ArgumentTypeError(f"{where} must be a dict with 'question', 'choices' and 'answer' "
                                        f"(as load_benchmark('mc') returns), got {type(item).__name__}")
    missing = [k for k in ("question", "choices", "answer") if k not in item]
    if missing:
        raise ValueError(f"{where} {item.get('id', '')!r} has no {missing}: a multiple-choice item needs "
                         f"'question', 'choices' and 'answer'")
    _checks.string(f"{where}['question']", item["question"], allow_empty=False)
    choices = _checks.strings(f"{where}['choices']", item["choices"])
    if not 2 <= len(choices) <= len(LETTERS) or not all(c.strip() for c in choices):
        raise ValueError(f"{where}['choices'] must hold 2 to {len(LETTERS)} non-empty strings, got {choices!r:.80}")
    _checks.integer(f"{where}['answer']", item["answer"], 0, len(choices) - 1)
    return item


def mc_prompt(item: dict, format: str = FORMAT_LETTER, tokenizer=None) -> tuple[str, list[str], str]:
    """``(context, choices, delimiter)`` for a multiple-choice ``item`` in one of :data:`FORMATS`.

    ``"letter"``: the question, then one ``"A. choice"`` line per option, then ``"Answer:"``;
    the choices scored are the letters, after a space. ``"text"``: ``"Question: ...\\nAnswer:"``;
    the choices are the answers' full text, after a space. ``"chat"``: the letter prompt
    as one user message through ``tokenizer``'s chat template (with the opening of the
    assistant's turn), and the letters right after it, with no delimiter; a template that
    ends its assistant opening with a newline (SmolLM2's) gives that newline to the
    continuation, as the harness does, so each letter's score includes the newline's
    log-probability (the same for every choice, so the ranking is unchanged). Pass the result
    to :func:`choice_scores` as ``choice_scores(model, tok, context, choices, delimiter=delimiter)``.
    """
    item = _check_mc_item(item)
    _checks.choice("format", format, FORMATS)
    question, choices = item["question"].strip(), list(item["choices"])
    if format == FORMAT_TEXT:
        return TEXT_TEMPLATE.format(question=question), choices, " "
    letters = list(LETTERS[:len(choices)])
    options = "\n".join(f"{letter}. {choice}" for letter, choice in zip(letters, choices))
    text = LETTER_TEMPLATE.format(question=question, options=options)
    if format == FORMAT_LETTER:
        return text, letters, " "
    _checks.tokenizer("tokenizer", tokenizer)
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError("format 'chat' needs a tokenizer with a chat template (an instruction-tuned model's, "
                         "such as SmolLM2-135M-Instruct); this one has none: use 'letter' or 'text'")
    context = tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                            tokenize=False)
    return context, letters, ""


def _argmax(values: list[float]) -> int:
    return max(range(len(values)), key=lambda i: (values[i], -i))  # the first of equal maxima, as np.argmax


def score_multiple_choice(model: torch.nn.Module, tokenizer, items: list[dict], format: str = FORMAT_LETTER, *,
                          padding_side: str = "right") -> list[dict]:
    """Score each multiple-choice item under one prompt ``format``: one record per item, in order.

    A record holds the item's ``id``, ``subject`` and ``difficulty`` (when it has them),
    ``format``, ``answer`` (the right index), and for both variants the index the model
    chooses and whether it is right: ``chosen`` and ``correct`` from the summed
    log-probabilities (the harness's ``acc``), ``chosen_norm`` and ``correct_norm`` from
    the log-probabilities per character of the choice (``acc_norm``); ``logprobs`` and
    ``logprobs_per_char`` list the two scores of every choice (nats, nats per character),
    ``n_tokens`` the number of tokens scored per choice. In the letter
    formats every choice is one character, so the two variants agree. Ties go to the
    first choice, as ``np.argmax`` does in the harness. Records go straight into
    ``pandas.DataFrame``.
    """
    if isinstance(items, dict) or not isinstance(items, (list, tuple)):
        raise _checks.ArgumentTypeError(f"items must be a list of item dicts (as load_benchmark('mc') returns), "
                                        f"got {type(items).__name__}")
    if not items:
        raise ValueError("items is empty: pass at least one multiple-choice item")
    for n, item in enumerate(items):
        _check_mc_item(item, f"items[{n}]")
    _checks.choice("format", format, FORMATS)
    _checks.model("model", model)
    _checks.tokenizer("tokenizer", tokenizer)
    records = []
    for item in items:
        context, choices, delimiter = mc_prompt(item, format, tokenizer)
        scores = choice_scores(model, tokenizer, context, choices, delimiter=delimiter, padding_side=padding_side)
        sums = [s.logprob for s in scores]
        norms = [s.logprob_per_char for s in scores]  # per character of the answer text, or of the letter
        chosen, chosen_norm = _argmax(sums), _argmax(norms)
        record = {k: item[k] for k in ("id", "subject", "difficulty") if k in item}
        record.update(format=format, answer=item["answer"], chosen=chosen, correct=chosen == item["answer"],
                      chosen_norm=chosen_norm, correct_norm=chosen_norm == item["answer"], logprobs=sums,
                      logprobs_per_char=norms, n_tokens=[s.n_tokens for s in scores])
        records.append(record)
    return records


# -----------------------------------------------------------------------------
# short answers: exact match after normalisation (SQuAD, Rajpurkar et al. 2016)

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """``text`` as the SQuAD evaluation script compares answers (Rajpurkar et al. 2016).

    Lower case; ASCII punctuation removed (not replaced: ``"9:15"`` becomes ``"915"``);
    the articles *a*, *an*, *the* dropped as whole words; runs of whitespace collapsed
    to one space, none at the ends. ``"The  Eiffel Tower!"`` becomes ``"eiffel tower"``.
    """
    _checks.string("text", text)
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str, aliases=()) -> bool:
    """Whether ``prediction`` equals ``gold`` or one of ``aliases`` after :func:`normalize_answer`.

    SQuAD's exact match, maximised over the accepted answers. One departure: an accepted
    answer that normalises to the empty string is ignored (SQuAD's script would let any
    prediction made only of articles and punctuation match it). This bites on single
    letters that are articles: the alias ``"A"`` (the ampere, item ``sci-s13`` of the short
    benchmark) can never be matched, so the answer "A" counts as wrong there; ``"ampere"``,
    ``"amp"`` and the other aliases still count. A gold answer with nothing left is refused.
    """
    _checks.string("prediction", prediction)
    _checks.string("gold", gold, allow_empty=False)
    aliases = _checks.strings("aliases", aliases, allow_empty=True)
    accepted = {normalize_answer(a) for a in [gold, *aliases]} - {""}
    if not accepted:
        raise ValueError(f"gold {gold!r} and its aliases normalise to the empty string: nothing could match")
    return normalize_answer(prediction) in accepted


# -----------------------------------------------------------------------------
# BLEU (Papineni et al. 2002), as sacrebleu computes it (Post 2018)

MAX_NGRAM_ORDER = 4
_13A_RULES = [  # mteval-v13a's language-dependent rules, in sacrebleu's order
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),  # split off symbols and punctuation
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),  # a period or comma unless preceded by a digit
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),  # ... unless followed by a digit
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),  # a dash after a digit
]


def tokenize_13a(text: str) -> list[str]:
    """The words BLEU counts: sacrebleu's default tokenizer ``13a`` (that of WMT's mteval-v13a.pl).

    Drops ``<skipped>``, joins ``-`` + newline, turns newlines into spaces, unescapes
    ``&quot; &amp; &lt; &gt;``, then splits off punctuation and symbols, keeps a period or
    comma between two digits (``3.5``, ``1,000``) and a dash unless it follows a digit.
    Case is kept. Trailing whitespace is stripped first, as sacrebleu does.
    ``"It costs $3.50, I think."`` gives ``It costs $ 3.50 , I think .``.
    """
    _checks.string("text", text)
    line = text.rstrip()
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = line.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    line = f" {line} "
    for pattern, replacement in _13A_RULES:
        line = pattern.sub(replacement, line)
    return line.split()


def _ngram_counts(words: list[str]) -> Counter:
    return Counter(tuple(words[i:i + n]) for n in range(1, MAX_NGRAM_ORDER + 1) for i in range(len(words) - n + 1))


def _bleu_statistics(reference: str, hypothesis: str) -> list[int]:
    """[hypothesis length, reference length, clipped matches for n = 1..4, hypothesis n-grams for n = 1..4]."""
    ref, hyp = tokenize_13a(reference), tokenize_13a(hypothesis)
    ref_counts, hyp_counts = _ngram_counts(ref), _ngram_counts(hyp)
    correct, total = [0] * MAX_NGRAM_ORDER, [0] * MAX_NGRAM_ORDER
    for gram, count in hyp_counts.items():
        total[len(gram) - 1] += count
        correct[len(gram) - 1] += min(count, ref_counts[gram])  # clipped: each reference n-gram counts once
    return [len(hyp), len(ref), *correct, *total]


def _bleu_from_statistics(stats: list[int], effective_order: bool) -> float:
    """BLEU (0-100) from summed statistics, with sacrebleu's default "exp" smoothing.

    The smoothing only acts on an order with no match at all: its precision becomes
    100 / (2^k * total), k counting such orders (NIST's method, Chen and Cherry 2014
    method 3). Without any match BLEU is 0; an order with no n-gram in the hypothesis
    ends the product (BLEU 0, unless ``effective_order`` keeps only the orders before it).
    """
    hyp_len, ref_len = stats[0], stats[1]
    correct, total = stats[2:2 + MAX_NGRAM_ORDER], stats[2 + MAX_NGRAM_ORDER:]
    if not any(correct):
        return 0.0
    brevity = 1.0 if hyp_len >= ref_len else math.exp(1 - ref_len / hyp_len)
    precisions = [0.0] * MAX_NGRAM_ORDER  # in percent, as sacrebleu keeps them
    smooth, order = 1.0, MAX_NGRAM_ORDER
    for n in range(MAX_NGRAM_ORDER):
        if total[n] == 0:
            break
        if effective_order:
            order = n + 1
        if correct[n] == 0:
            smooth *= 2
            precisions[n] = 100.0 / (smooth * total[n])
        else:
            precisions[n] = 100.0 * correct[n] / total[n]
    # sacrebleu floors log(0) at -9999999999, which makes the score 0.0 exactly
    log_sum = sum(math.log(p) if p > 0 else -9999999999 for p in precisions[:order])
    return brevity * math.exp(log_sum / order)


def bleu(references: list[str], hypotheses: list[str]) -> float:
    """Corpus BLEU, 0 to 100, of ``hypotheses`` against one reference each (Papineni et al. 2002).

    Words come from :func:`tokenize_13a` (case kept). For n = 1..4 the matches of the
    hypothesis n-grams are clipped to their count in the reference and summed over the
    corpus, then divided by all hypothesis n-grams; BLEU is the geometric mean of the four
    precisions times the brevity penalty exp(1 - r/c) when the corpus's hypothesis length c
    is below its reference length r. Equal to ``sacrebleu.corpus_bleu(hypotheses,
    [references]).score`` with sacrebleu's defaults, including its "exp" smoothing of an
    order without any match (see the cross-check record). A hypothesis with no words
    counts as length 0.
    """
    references = _checks.strings("references", references, allow_empty=False)
    hypotheses = _checks.strings("hypotheses", hypotheses, allow_empty=False)
    if len(references) != len(hypotheses):
        raise ValueError(f"bleu needs one reference per hypothesis: got {len(references)} references and "
                         f"{len(hypotheses)} hypotheses")
    stats = [sum(column) for column in zip(*(_bleu_statistics(r, h) for r, h in zip(references, hypotheses)))]
    return _bleu_from_statistics(stats, effective_order=False)


def sentence_bleu(reference: str, hypothesis: str) -> float:
    """BLEU (0-100) of one hypothesis, as ``sacrebleu.sentence_bleu(hypothesis, [reference])`` computes it.

    The corpus formula on one pair, with sacrebleu's sentence defaults: "exp" smoothing
    and the effective order (a hypothesis of two words is scored on its unigrams and
    bigrams only). Sentence BLEU is noisy; prefer :func:`bleu` over a whole test set.
    """
    _checks.string("reference", reference)
    _checks.string("hypothesis", hypothesis)
    return _bleu_from_statistics(_bleu_statistics(reference, hypothesis), effective_order=True)


# -----------------------------------------------------------------------------
# ROUGE (Lin 2004), as Google's rouge-score package computes it


def _rouge_words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())  # rouge-score: lower case, non-alphanumeric -> spaces


def _f1(overlap: int, n_candidate: int, n_reference: int) -> float:
    precision, recall = overlap / max(n_candidate, 1), overlap / max(n_reference, 1)
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def rouge_scores(reference: str, candidate: str) -> dict[str, float]:
    """ROUGE-1, ROUGE-2 and ROUGE-L F1 (0 to 1) of ``candidate`` against ``reference`` (Lin 2004).

    As ``rouge_score.rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"]).score(reference,
    candidate)`` with its defaults: words are the lower-cased runs of ASCII letters and
    digits (everything else separates words), no stemming. ROUGE-N counts the n-grams
    shared by both texts (each clipped to its count in the other), ROUGE-L the longest
    common subsequence of words; each is the harmonic mean of precision (over the
    candidate) and recall (over the reference), 0 when nothing is shared. ROUGE-L comes
    from :func:`llmlab.metrics.rouge_l`, whose words and formula are the same.
    Returns ``{"rouge1": ..., "rouge2": ..., "rougeL": ...}``.
    """
    _checks.string("reference", reference)
    _checks.string("candidate", candidate)
    ref, cand = _rouge_words(reference), _rouge_words(candidate)
    out = {}
    for n in (1, 2):
        ref_grams = Counter(tuple(ref[i:i + n]) for i in range(len(ref) - n + 1))
        cand_grams = Counter(tuple(cand[i:i + n]) for i in range(len(cand) - n + 1))
        overlap = sum((ref_grams & cand_grams).values())
        out[f"rouge{n}"] = _f1(overlap, sum(cand_grams.values()), sum(ref_grams.values()))
    out["rougeL"] = rouge_l(candidate, reference)
    return out
