"""Prompting and in-context learning: prompt builders and the accuracy-versus-shots curve (chapter 4).

A *k-shot prompt* puts ``k`` solved examples (demonstrations) in front of the
query, in one layout, the *template*::

    Classify this review: the soup was very tasty
    Sentiment: positive

    Classify this review: the song was dull
    Sentiment:

The model's answer is read off by *scoring*: for each candidate label word, the
log-probability the model gives to that word right after the prompt; the
prediction is the candidate with the highest score (Brown et al. 2020 score
classification tasks this way). :func:`accuracy_vs_shots` repeats that over many
episodes of a task and reports accuracy per shot count with a Wilson confidence
interval. Every prompt counts its tokens, so the chapter can show how much of the
context window the examples use, and a prompt that does not fit is refused.

The builders are independent of any particular model: the same calls run on the
bundled ``icl-*`` models (trained on :func:`llmlab.data.icl_episode`) and on a hub
model such as FLAN-T5 (chapter 4's optional section).
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from typing import Sequence

import torch

from . import _checks, data
from .chat import chat_text

INPUT, LABEL = "input", "label"
REVIEW_TEMPLATE = "Classify this review: {input}\nSentiment: {label}"
SEPARATOR = "\n\n"  # between the instruction, the demonstrations and the query


class PromptTooLong(ValueError):
    """A prompt (plus its longest candidate label) needs more tokens than the model's context window."""


# --------------------------------------------------------------------------- templates
def check_template(template: str) -> tuple[str, str]:
    """Split ``template`` at its label slot; return (text before ``{label}``, text after it).

    A template must have exactly one ``{input}`` slot (the query goes there) followed by
    exactly one ``{label}`` slot, and no other slots. Raises ValueError otherwise.
    """
    if not isinstance(template, str):
        raise ValueError(f"template must be a string with {{{INPUT}}} and {{{LABEL}}} slots, got {type(template).__name__}")
    try:
        slots = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as err:
        raise ValueError(f"template is not a valid format string ({err}): {template!r}") from None
    if slots.count(INPUT) != 1:
        raise ValueError(f"template needs exactly one {{{INPUT}}} slot for the query, found {slots.count(INPUT)}: "
                         f"{template!r}; for example {REVIEW_TEMPLATE!r}")
    if slots.count(LABEL) != 1:
        raise ValueError(f"template needs exactly one {{{LABEL}}} slot for the answer, found {slots.count(LABEL)}: "
                         f"{template!r}; for example {REVIEW_TEMPLATE!r}")
    if set(slots) != {INPUT, LABEL}:
        raise ValueError(f"template may only use the slots {{{INPUT}}} and {{{LABEL}}}, found {sorted(set(slots))}")
    before, after = template.split("{" + LABEL + "}")
    if "{" + INPUT + "}" not in before:
        raise ValueError(f"the {{{INPUT}}} slot must come before the {{{LABEL}}} slot: {template!r}")
    return before, after


def format_example(template: str, text: str, label: str) -> str:
    """One solved example (a demonstration): the template with both slots filled."""
    check_template(template)
    for name, value in (("text", text), ("label", label)):
        if not isinstance(value, str):
            raise _checks.ArgumentTypeError(f"{name} must be a str, got {type(value).__name__}")
    return template.format(input=text, label=label)


def query_prefix(template: str, text: str) -> tuple[str, str]:
    """The query with its label slot left empty, and the text that goes before a label word.

    A trailing space of the template (``"Sentiment: "``) is moved onto the label word
    (``" positive"``), because byte-level BPE tokenizers attach a space to the word after it.
    """
    before, _ = check_template(template)
    if not isinstance(text, str):
        raise _checks.ArgumentTypeError(f"text must be a str, got {type(text).__name__}")
    query = before.format(input=text)
    stripped = query.rstrip(" ")
    return stripped, query[len(stripped):]


# --------------------------------------------------------------------------- prompts
@dataclass
class Prompt:
    """A k-shot prompt ready for scoring, with its token counts (chapter 4).

    ``text`` ends where the label word should begin; ``answer_prefix`` goes before a
    label word (usually one space). Token counts include only what the tokenizer
    produces for each part (no special tokens).
    """

    text: str
    answer_prefix: str
    k: int
    instruction_tokens: int
    example_tokens: int
    query_tokens: int
    window: int | None = None

    @property
    def n_tokens(self) -> int:
        return self.instruction_tokens + self.example_tokens + self.query_tokens

    @property
    def window_fraction(self) -> float | None:
        """The share of the context window the whole prompt uses (None when the window is unknown)."""
        return None if self.window is None else self.n_tokens / self.window


def _n_tokens(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0


def build_prompt(
    query: str,
    examples: Sequence[tuple[str, str]] = (),
    k: int | None = None,
    template: str = REVIEW_TEMPLATE,
    instruction: str | None = None,
    tokenizer=None,
    window: int | None = None,
    labels: Sequence[str] = (),
) -> Prompt | str:
    """A zero-, one- or few-shot prompt: an optional instruction, the first ``k`` examples,
    then the query.

    ``examples`` are (input text, label word) pairs; ``k`` defaults to all of them and
    must not exceed how many there are. Without a ``tokenizer`` the prompt text is
    returned. With one, a :class:`Prompt` is returned with the number of tokens of the
    instruction, of the examples and of the query; if ``window`` (the model's context,
    in tokens) is given, a prompt whose tokens plus those of its longest candidate in
    ``labels`` exceed it raises :class:`PromptTooLong`.
    """
    check_template(template)
    if not isinstance(query, str) or not query.strip():
        raise ValueError(f"query must be a non-empty string, got {query!r}")
    examples = list(examples)
    k = len(examples) if k is None else k
    if not isinstance(k, int) or isinstance(k, bool) or k < 0:
        raise ValueError(
            f"k (the number of examples) must be an int >= 0, got {k!r}")
    if k > len(examples):
        raise ValueError(f"k={k} examples asked for, but only {len(examples)} are "
                         f"available; pass more examples or use k <= {len(examples)}")
    for i, example in enumerate(examples[:k]):
        if not (isinstance(example, (tuple, list)) and len(example) == 2
                and all(isinstance(s, str) for s in example)):
            raise ValueError(f"example {i} must be an (input text, label word) pair "
                             f"of strings, got {example!r}")
    head = instruction + SEPARATOR if instruction else ""
    shots = "".join(format_example(template, text, label) + SEPARATOR
                    for text, label in examples[:k])
    query_text, answer_prefix = query_prefix(template, query)
    text = head + shots + query_text
    if tokenizer is None:
        return text
    total = _n_tokens(tokenizer, text)
    instruction_tokens = _n_tokens(tokenizer, head)
    example_tokens = _n_tokens(tokenizer, head + shots) - instruction_tokens
    prompt = Prompt(text, answer_prefix, k, instruction_tokens, example_tokens,
                    total - instruction_tokens - example_tokens, window)
    if window is not None:
        longest = max((_n_tokens(tokenizer, answer_prefix + label) for label in labels),
                      default=0)
        if prompt.n_tokens + longest > window:
            raise PromptTooLong(
                f"the prompt needs {prompt.n_tokens} tokens ({k} examples use "
                f"{example_tokens}) plus {longest} for the label, but the context "
                f"window holds {window}; use fewer or shorter examples")
    return prompt


def context_window(model) -> int | None:
    """The number of positions a model can attend to (GPT-2's n_positions, Llama's max_position_embeddings),
    or None if unbounded (relative positions, T5); see :func:`llmlab._checks.context_window`."""
    if not (isinstance(model, torch.nn.Module) or hasattr(model, "to_dict")):  # a model or its config
        _checks.model("model", model)  # a name or something else: say how to pass a model
    return _checks.context_window(model)


# --------------------------------------------------------------------------- scoring
@torch.no_grad()
def score_labels(model, tokenizer, prompts: Sequence[Prompt | str],
                 candidates: Sequence[Sequence[str]], answer_prefix: str = " ",
                 batch_size: int = 64) -> torch.Tensor:
    """Log-probability (nats, summed over its tokens) of each candidate label right after
    each prompt.

    Returns a (number of prompts, number of candidates) tensor. Works for decoders
    (the label continues the prompt) and encoder-decoders such as FLAN-T5 (the
    prompt is the encoder input, the label the decoder output). Padding is on the
    right for decoders, so positions are the same as for an unpadded prompt.
    """
    _checks.model("model", model)
    batch_size = _checks.positive_int("batch_size", batch_size)
    for name, value in (("prompts", prompts), ("candidates", candidates)):
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise _checks.ArgumentTypeError(f"{name} must be a list (one entry per prompt), got {type(value).__name__}")
    if not prompts:
        raise ValueError("prompts is empty: pass at least one prompt to score")
    if len(prompts) != len(candidates):
        raise ValueError(f"need one list of candidates per prompt, got {len(prompts)} "
                         f"prompts and {len(candidates)}")
    n_cand = {len(c) for c in candidates}
    if len(n_cand) != 1 or 0 in n_cand:
        raise ValueError(
            "every prompt needs the same, non-zero number of candidate labels")
    for cands in candidates:
        if (len(set(cands)) != len(cands)
                or not all(isinstance(c, str) and c.strip() for c in cands)):
            raise ValueError("candidate labels must be different non-empty strings, "
                             f"got {list(cands)!r}")
    seq2seq = model.config.is_encoder_decoder
    pairs = []  # (prompt ids, label ids), one per prompt and candidate, in order
    for prompt, cands in zip(prompts, candidates):
        text = prompt.text if isinstance(prompt, Prompt) else prompt
        prefix = prompt.answer_prefix if isinstance(prompt, Prompt) else answer_prefix
        p_ids = tokenizer(text, add_special_tokens=seq2seq)["input_ids"]
        for c in cands:
            if seq2seq:
                l_ids = tokenizer(c, add_special_tokens=False)["input_ids"]
            else:
                full = tokenizer(text + prefix + c,
                                 add_special_tokens=False)["input_ids"]
                if full[: len(p_ids)] == p_ids:
                    l_ids = full[len(p_ids):]
                else:  # the label merged with the end of the prompt: tokenize it alone
                    l_ids = tokenizer(prefix + c, add_special_tokens=False)["input_ids"]
            pairs.append((p_ids, l_ids))
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    if seq2seq:
        scores = []
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start:start + batch_size]
            scores.extend(_score_seq2seq(model, chunk, pad, device))
        return torch.tensor(scores).view(len(prompts), -1)
    # Decoders: one sequence per prompt when every candidate is a single token (one
    # forward pass reads all of them); otherwise one per prompt and candidate.
    per_prompt = len(pairs) // len(prompts)
    # jobs: (token ids, [(index into pairs, position of the logits that predict the
    # label's first token)])
    jobs = []
    for i in range(len(prompts)):
        group = pairs[i * per_prompt:(i + 1) * per_prompt]
        p_ids = group[0][0]
        if all(len(l) == 1 for _, l in group):
            reads = [(i * per_prompt + j, len(p_ids) - 1) for j in range(per_prompt)]
            jobs.append((p_ids, reads))
        else:
            jobs.extend((p + l, [(i * per_prompt + j, len(p) - 1)])
                        for j, (p, l) in enumerate(group))
    scores = [0.0] * len(pairs)
    for start in range(0, len(jobs), batch_size):
        batch = jobs[start:start + batch_size]
        _score_decoder(model, batch, pairs, scores, pad, device)
    return torch.tensor(scores).view(len(prompts), -1)


def _score_decoder(model, jobs, pairs, scores: list[float], pad: int, device) -> None:
    length = max(len(ids) for ids, _ in jobs)
    ids = torch.full((len(jobs), length), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, (seq, _) in enumerate(jobs):
        ids[row, :len(seq)] = torch.tensor(seq)
        mask[row, :len(seq)] = 1
    logp = torch.log_softmax(model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float(), -1).cpu()
    for row, (_, reads) in enumerate(jobs):
        for index, first in reads:
            label = pairs[index][1]
            positions = torch.arange(first, first + len(label))  # the logits that predict each label token
            scores[index] = logp[row, positions, torch.tensor(label)].sum().item()


def _score_seq2seq(model, chunk, pad: int, device) -> list[float]:
    enc_len, dec_len = max(len(p) for p, _ in chunk), max(len(l) for _, l in chunk)
    ids = torch.full((len(chunk), enc_len), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full((len(chunk), dec_len), -100, dtype=torch.long)
    for i, (p, l) in enumerate(chunk):
        ids[i, :len(p)], mask[i, :len(p)] = torch.tensor(p), 1
        labels[i, :len(l)] = torch.tensor(l)
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device)).logits
    logp = torch.log_softmax(logits.float(), -1).cpu()
    picked = logp.gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    return (picked * (labels != -100)).sum(-1).tolist()


# --------------------------------------------------------------------------- the task and the curve
@dataclass
class ICLTask:
    """A source of in-context episodes over the reviews of :func:`llmlab.data.icl_review` (chapter 4).

    ``rule`` fixes the labelling rule (``None``: a random rule per episode, the hidden-rule
    task the bundled models were trained on); ``labels`` fixes the label words of class 0
    and class 1 (``None``: two words drawn per episode from ``data.LABEL_POOL``);
    ``instruction`` puts the sentence that states the rule and its labels in front.
    """

    rule: str | None = None
    labels: tuple[str, str] | None = None
    instruction: bool = False
    template: str = REVIEW_TEMPLATE

    def __post_init__(self) -> None:
        check_template(self.template)
        if self.rule is not None and self.rule not in data.ICL_RULES:
            raise ValueError(f"rule must be None (random per episode) or one of {sorted(data.ICL_RULES)}, "
                             f"got {self.rule!r}")
        if self.labels is not None:
            if isinstance(self.labels, str) or not isinstance(self.labels, Sequence):
                raise _checks.ArgumentTypeError(
                    f"labels must be a pair of words such as ('positive', 'negative'), or None to draw them, "
                    f"got {type(self.labels).__name__} {self.labels!r}")
            labels = tuple(self.labels)
            if len(labels) == 0:
                raise ValueError("labels is empty: give the two label words (class 0, class 1), or None to draw them")
            if len(labels) != 2 or len(set(labels)) != 2 or not all(isinstance(w, str) and w.strip() for w in labels):
                raise ValueError(f"labels must be two different non-empty words, got {self.labels!r}")
            self.labels = labels

    def episode(self, rng: random.Random, k: int) -> dict:
        """``k`` demonstrations and one query of one episode (rule and label words fixed within it)."""
        episode = data.icl_episode(rng, k + 1, self.rule, self.labels)
        *demos, (query, answer) = episode["items"]
        return {**episode, "demos": demos, "query": query, "answer": answer}


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% with z = 1.96); Wilson (1927).

    The book's statistics live in :mod:`llmlab.stats`; this keeps chapter 4's ``z`` spelling.
    """
    from .stats import _count, _wilson

    if isinstance(z, bool) or not isinstance(z, (int, float)) or not 0 < z < 10:
        raise (ValueError if isinstance(z, (int, float)) and not isinstance(z, bool) else _checks.ArgumentTypeError)(f"z must be a positive number of standard deviations (1.96 for 95%), got {z!r}")
    successes, n = _count("successes", successes), _count("n", n)
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need n > 0 and 0 <= successes <= n, got successes={successes}, n={n}")
    return _wilson(successes, n, float(z))


def accuracy_vs_shots(model, tokenizer, task: ICLTask, shots: Sequence[int] = (0, 1, 2, 4, 8), n: int = 200,
                      seed: int = 0, batch_size: int = 64):
    """Accuracy of ``model`` on ``n`` episodes of ``task`` for each number of demonstrations in ``shots``.

    Chapter 4. The same ``n`` episodes serve every shot count (a k-shot prompt uses the
    first k demonstrations of the episode), so differences between shot counts are not
    differences between episode draws. A prediction is the candidate label word of its
    episode with the highest score (:func:`score_labels`); chance is 1/2. Returns a
    pandas DataFrame with one row per shot count: ``shots``, ``n``, ``correct``,
    ``accuracy``, ``ci_low``, ``ci_high`` (95% Wilson interval), ``prompt_tokens``
    (mean tokens per prompt) and ``right`` (1/0 per episode, in order: the same episodes
    for every shot count, and for every model given the same ``seed``, ``n`` and largest
    shot count, so two rows are compared episode by episode with
    :func:`llmlab.stats.compare`).
    """
    import pandas as pd

    _checks.model("model", model)
    if not isinstance(task, ICLTask):
        raise _checks.ArgumentTypeError(f"task must be an llmlab.icl.ICLTask, got {type(task).__name__}")
    batch_size = _checks.positive_int("batch_size", batch_size)
    shots = list(shots)
    if not shots or any(not isinstance(k, int) or isinstance(k, bool) or k < 0 for k in shots):
        raise ValueError(f"shots must be a non-empty list of ints >= 0, got {shots!r}")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n (episodes per shot count) must be a positive int, got {n!r}")
    rng = random.Random(seed)
    episodes = [task.episode(rng, max(shots)) for _ in range(n)]
    window = context_window(model)
    rows = []
    for k in shots:
        prompts = [build_prompt(e["query"], e["demos"], k, task.template, e["instruction"] if task.instruction else None,
                                tokenizer, window, e["labels"]) for e in episodes]
        scores = score_labels(model, tokenizer, prompts, [list(e["labels"]) for e in episodes], batch_size=batch_size)
        predicted = scores.argmax(-1).tolist()
        right = [int(e["labels"][p] == e["answer"]) for e, p in zip(episodes, predicted)]
        correct = sum(right)
        low, high = wilson_interval(correct, n)
        rows.append({"shots": k, "n": n, "correct": correct, "accuracy": correct / n, "ci_low": low,
                     "ci_high": high, "prompt_tokens": sum(p.n_tokens for p in prompts) / n, "right": right})
    return pd.DataFrame(rows)


def ideal_accuracy(task: ICLTask, shots: Sequence[int] = (0, 1, 2, 4, 8), n: int = 200, seed: int = 0):
    """Expected accuracy of an ideal reader on the same episodes as :func:`accuracy_vs_shots` (chapter 4).

    The ideal reader knows the task family: every rule of ``data.ICL_RULES`` (or only
    ``task.rule`` when it is fixed) and both assignments of the two candidate words to the
    two classes are equally likely beforehand. It keeps the (rule, assignment) pairs that
    agree with all k demonstrations, lets each vote for a label of the query, and answers
    with the majority (a tie is a coin flip, worth 1/2). No model can do better on average;
    the curve shows how much each extra example can still teach. With an instruction it is
    always right. Returns a DataFrame with ``shots``, ``n`` and ``accuracy``.
    """
    import pandas as pd

    if not isinstance(task, ICLTask):
        raise _checks.ArgumentTypeError(f"task must be an llmlab.icl.ICLTask, got {type(task).__name__}")
    shots = list(shots)
    if not shots or any(not isinstance(k, int) or isinstance(k, bool) or k < 0 for k in shots):
        raise ValueError(f"shots must be a non-empty list of ints >= 0, got {shots!r}")
    n = _checks.positive_int("n", n)
    rng = random.Random(seed)
    episodes = [task.episode(rng, max(shots)) for _ in range(n)]
    rules = [task.rule] if task.rule is not None else sorted(data.ICL_RULES)
    rows = []
    for k in shots:
        total = 0.0
        for e in episodes:
            if task.instruction:
                total += 1.0
                continue
            labels, votes = e["labels"], {e["labels"][0]: 0, e["labels"][1]: 0}
            for rule in rules:
                for order in (labels, labels[::-1]):
                    if task.labels is not None and order != labels:
                        continue  # fixed label words: their assignment is known
                    if all(order[data.icl_classes(t)[rule]] == lab for t, lab in e["demos"][:k]):
                        votes[order[data.icl_classes(e["query"])[rule]]] += 1
            right, wrong = votes[e["answer"]], sum(votes.values()) - votes[e["answer"]]
            total += 1.0 if right > wrong else 0.5 if right == wrong else 0.0
        rows.append({"shots": k, "n": n, "accuracy": total / n})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- training text (the zoo's recipes)
def episode_text(episode: dict, template: str = REVIEW_TEMPLATE, instruction: bool = False) -> tuple[str, list[tuple[int, int]]]:
    """An episode written out in full (every item solved), and the character spans of its label words.

    The ``icl-*`` recipes train on these texts with the loss on the label words only,
    so every item is predicted from the items before it: one text teaches 0-shot,
    1-shot, ... at once.
    """
    before, after = check_template(template)
    if not isinstance(episode, dict) or not isinstance(episode.get("items"), (list, tuple)):
        raise _checks.ArgumentTypeError(f"episode must be a dict with 'items' (what ICLTask.episode or "
                                        f"data.icl_episode returns), got {type(episode).__name__}")
    text = episode["instruction"] + SEPARATOR if instruction else ""
    spans = []
    for i, (review, label) in enumerate(episode["items"]):
        query, prefix = query_prefix(template, review)
        text += query + prefix
        spans.append((len(text), len(text) + len(label)))
        text += label + after.format() + (SEPARATOR if i + 1 < len(episode["items"]) else "")
    return text, spans


# --------------------------------------------------------------------------- contextual calibration
CONTENT_FREE = "N/A"  # Zhao et al. (2021)'s content-free input


def calibrate(scores: torch.Tensor, content_free: torch.Tensor) -> torch.Tensor:
    """Contextual calibration (Zhao et al. 2021): remove the bias a prompt gives the labels.

    ``scores`` are log-probabilities of the candidate labels, shape (prompts, labels);
    ``content_free`` the log-probabilities the same prompt gives them when its query is a
    content-free input such as ``"N/A"``, shape (labels,) or (prompts, labels). Both are
    renormalised over the labels; then each label's probability is divided by its
    content-free probability (a subtraction of log-probabilities) and the result
    renormalised. Returns calibrated log-probabilities, shape (prompts, labels): a label
    the prompt favours whatever the query gets its advantage taken away.

    Zhao et al. apply ``softmax(W p + b)`` to the probabilities ``p`` with
    ``W = diag(p_cf)^-1`` and ``b = 0``; this function renormalises ``p / p_cf`` instead.
    Both rank the labels the same way, so the predictions are identical, but the
    calibrated probabilities differ (theirs are flatter).
    """
    scores, content_free = torch.as_tensor(scores, dtype=torch.float64), torch.as_tensor(content_free, dtype=torch.float64)
    if scores.dim() != 2:
        raise ValueError(f"scores must be (prompts, labels), got shape {tuple(scores.shape)}")
    if content_free.dim() == 1 and content_free.shape[0] == scores.shape[1]:
        content_free = content_free.expand_as(scores)
    if content_free.shape != scores.shape:
        raise ValueError(f"content_free must be (labels,) or {tuple(scores.shape)}, got {tuple(content_free.shape)}")
    p = torch.log_softmax(scores, -1)        # log p(label | prompt), over the labels only
    p_cf = torch.log_softmax(content_free, -1)  # log p(label | prompt with "N/A")
    return torch.log_softmax(p - p_cf, -1)   # log of normalise(p / p_cf)


CONTENT_FREE_INPUTS = ("N/A", "", "[MASK]")  # the three Zhao et al. (2021) average


def content_free_prompts(demos: Sequence[tuple[str, str]] = (), template: str = REVIEW_TEMPLATE,
                         inputs: Sequence[str] = CONTENT_FREE_INPUTS) -> list[str]:
    """One prompt per content-free input: the same demonstrations, the query slot holding
    the input instead of a word (the empty string leaves it empty). Score them with
    :func:`score_labels` (answer prefix ``" "``) and average with
    :func:`average_content_free`."""
    check_template(template)
    if isinstance(inputs, str) or not isinstance(inputs, Sequence) or not inputs \
            or not all(isinstance(x, str) for x in inputs):
        raise _checks.ArgumentTypeError(f"inputs must be a non-empty list of strings such as "
                                        f"{list(CONTENT_FREE_INPUTS)!r}, got {inputs!r}")
    shots = "".join(format_example(template, text, label) + SEPARATOR for text, label in demos)
    return [shots + query_prefix(template, x)[0] for x in inputs]


def average_content_free(content_free: torch.Tensor) -> torch.Tensor:
    """Zhao et al. (2021)'s estimate of a prompt's bias from several content-free inputs.

    ``content_free``: log-probabilities (nats) of the labels, shape (inputs, labels), one
    row per content-free input. Each row is renormalised over the labels, the
    probabilities are averaged over the inputs, and the log of the mean is returned, shape
    (labels,), ready for :func:`calibrate`.
    """
    content_free = torch.as_tensor(content_free, dtype=torch.float64)
    if content_free.dim() != 2 or content_free.shape[0] < 1 or content_free.shape[1] < 2:
        raise ValueError(f"content_free must be (inputs, labels) with at least one input and two "
                         f"labels, got shape {tuple(content_free.shape)}")
    return torch.log(torch.softmax(content_free, -1).mean(0))


CALIBRATIONS = ("uncalibrated", *CONTENT_FREE_INPUTS, "average")


def calibrated_predictions(scores, content_free: dict) -> dict[str, list[int]]:
    """The predicted label (an index) of every query, uncalibrated and after contextual
    calibration with each content-free input alone and with their average (Zhao et al. 2021).

    ``scores``: label log-probabilities (nats), shape (queries, labels); ``content_free``:
    {input: label log-probabilities (labels,)}, as :mod:`llmlab.records.icl_calibration`
    stores them. Keys of the result: ``"uncalibrated"``, each input, ``"average"``.
    """
    if not isinstance(content_free, dict) or not content_free:
        raise _checks.ArgumentTypeError(f"content_free must be a non-empty dict {{input: label scores}}, "
                                        f"got {type(content_free).__name__}")
    scores = torch.as_tensor(scores, dtype=torch.float64)
    free = {x: torch.as_tensor(v, dtype=torch.float64) for x, v in content_free.items()}
    out = {"uncalibrated": scores.argmax(-1).tolist()}
    for x, v in free.items():
        out[x] = calibrate(scores, v).argmax(-1).tolist()
    out["average"] = calibrate(scores, average_content_free(torch.stack(list(free.values())))).argmax(-1).tolist()
    return out


def percent_texts(correct: int, n: int) -> tuple[str, str]:
    """``("83%", "75-89%")``: an accuracy of ``correct`` out of ``n`` and its 95% Wilson
    interval, as the chapter writes them."""
    low, high = wilson_interval(correct, n)
    return f"{100 * correct / n:.0f}%", f"{100 * low:.0f}-{100 * high:.0f}%"


# --------------------------------------------------------------------------- a real model on natural words
REAL_TASKS = {"sentiment": REVIEW_TEMPLATE, "topic": "Classify this word: {input}\nTopic: {label}"}
UNRELATED = ("foo", "bar")  # Wei et al. (2023)'s semantically unrelated label words


def load_eval_set(task: str) -> dict:
    """One task of ``llmlab/corpus/icl_eval.json`` (chapter 4): ``labels`` (two words),
    ``items`` [(word, label)], plus its source, license and how it was drawn."""
    import json
    from pathlib import Path

    if task not in REAL_TASKS:
        raise ValueError(f"task must be one of {sorted(REAL_TASKS)}, got {task!r}")
    record = json.loads((Path(__file__).resolve().parent / "corpus" / "icl_eval.json").read_text())
    t = record["tasks"][task]
    return {**t, "labels": tuple(t["labels"]), "items": [(i["input"], i["label"]) for i in t["items"]]}


def real_episodes(items: Sequence[tuple[str, str]], k: int, seed: int = 0, n: int | None = None) -> list[dict]:
    """For each of the first ``n`` items (all by default) as query, ``k`` demonstrations
    drawn (seeded) from all the other items."""
    if isinstance(items, str) or not isinstance(items, Sequence) or not all(
            isinstance(x, (tuple, list)) and len(x) == 2 for x in items):
        raise _checks.ArgumentTypeError(f"items must be a list of (text, label) pairs, got {type(items).__name__}")
    k = _checks.non_negative_int("k", k)
    if n is not None:
        n = _checks.positive_int("n", n)
    if k > len(items) - 1:
        raise ValueError(f"k = {k} demonstrations need at least k + 1 items (the query is never its own "
                         f"demonstration), got {len(items)}")
    rng = random.Random(seed)
    items = list(items)
    episodes = []
    for i, (query, answer) in enumerate(items[:n]):
        others = items[:i] + items[i + 1:]
        episodes.append({"query": query, "answer": answer, "demos": rng.sample(others, k)})
    return episodes


def relabel(demos: Sequence[tuple[str, str]], labels: tuple[str, str], condition: str) -> list[tuple[str, str]]:
    """Demonstrations under a label condition of Wei et al. (2023): ``natural`` (as given),
    ``flipped`` (each label replaced by the other) or ``unrelated`` (``foo`` for the first
    label, ``bar`` for the second)."""
    if condition == "natural":
        return list(demos)
    if condition == "flipped":
        return [(t, labels[1 - labels.index(lab)]) for t, lab in demos]
    if condition == "unrelated":
        return [(t, UNRELATED[labels.index(lab)]) for t, lab in demos]
    raise ValueError(f"condition must be 'natural', 'flipped' or 'unrelated', got {condition!r}")


def chat_prompt(tokenizer, prompt: Prompt) -> Prompt:
    """The same prompt as the user's turn of the model's chat template, the label read
    as the first word of the assistant's answer (no space before it)."""
    from dataclasses import replace

    if not isinstance(prompt, Prompt):
        raise _checks.ArgumentTypeError(f"prompt must be an llmlab.icl.Prompt (from build_prompt), got "
                                        f"{type(prompt).__name__}")
    return replace(prompt, text=chat_text(tokenizer, prompt.text), answer_prefix="")


def real_accuracy(model, tokenizer, task: str, k: int, condition: str = "natural", chat: bool = False,
                  episodes: list[dict] | None = None, seed: int = 0, n: int | None = None,
                  calibrated: bool = False, batch_size: int = 16) -> dict:
    """Accuracy of ``model`` on the frozen ``task`` with ``k`` demonstrations per query (chapter 4).

    Demonstrations come from :func:`real_episodes` (or ``episodes``), their labels under
    ``condition`` (:func:`relabel`); the candidates are the labels the demonstrations use
    (``foo``/``bar`` when unrelated), and a prediction is right when it names the query's
    true class. Returns counts and accuracy, the 95% Wilson interval, the share of
    predictions of the first label, ``right`` (1/0 per query, in item order, for paired
    tests across conditions), mean tokens per prompt and per example; with
    ``calibrated`` the same after contextual calibration (:func:`calibrate`, content-free
    query ``N/A`` with the same demonstrations). ``n`` keeps the first n items.
    """
    t = load_eval_set(task)
    labels = t["labels"]
    episodes = real_episodes(t["items"], k, seed, n) if episodes is None else episodes
    cands = UNRELATED if condition == "unrelated" else labels
    prompts, free = [], []
    for e in episodes:
        demos = relabel(e["demos"][:k], labels, condition)
        for query, out in ((e["query"], prompts), (CONTENT_FREE, free)):
            p = build_prompt(query, demos, k, REAL_TASKS[task], tokenizer=tokenizer, window=context_window(model),
                             labels=cands)
            out.append(chat_prompt(tokenizer, p) if chat else p)
    unique = list(dict.fromkeys(p.text for p in free)) if calibrated else []  # shared demonstrations: one "N/A" each
    both = score_labels(model, tokenizer, prompts + [next(p for p in free if p.text == u) for u in unique],
                        [list(cands)] * (len(prompts) + len(unique)), batch_size=batch_size)
    scores = both[:len(prompts)]
    truth = torch.tensor([labels.index(e["answer"]) for e in episodes])
    row = {"task": task, "k": k, "condition": condition, "chat": chat, "n": len(episodes)}
    variants = [("", scores)]
    if calibrated:
        cf_of = dict(zip(unique, both[len(prompts):]))
        variants.append(("calibrated_", calibrate(scores, torch.stack([cf_of[p.text] for p in free]))))
    for name, s in variants:
        pred = s.argmax(-1)
        correct = int((pred == truth).sum())
        low, high = wilson_interval(correct, len(episodes))
        row.update({f"{name}correct": correct, f"{name}accuracy": correct / len(episodes), f"{name}ci_low": low,
                    f"{name}ci_high": high, f"{name}first_label_share": float((pred == 0).float().mean()),
                    f"{name}right": (pred == truth).long().tolist()})
    row["prompt_tokens"] = sum(p.n_tokens for p in prompts) / len(prompts)
    row["tokens_per_example"] = sum(p.example_tokens for p in prompts) / len(prompts) / k if k else 0.0
    return row


def fixed_episodes(task: str, n: int, positives: int, k: int = 4, order: str = "first", seed: int = 0) -> list[dict]:
    """Zhao et al. (2021)'s setting: one set of ``k`` demonstrations shared by the first ``n``
    queries, ``positives`` of them with the first label, drawn (seeded) from the items after
    the first ``n``; ``order`` puts the first-label demonstrations ``first`` or ``last``."""
    t = load_eval_set(task)
    labels, items = t["labels"], t["items"]
    n, k = _checks.positive_int("n", n), _checks.non_negative_int("k", k)
    positives = _checks.integer("positives", positives, 0, k)
    if order not in ("first", "last"):
        raise ValueError(f"order must be 'first' or 'last', got {order!r}")
    rng = random.Random(seed)
    pool = items[n:]
    first = rng.sample([x for x in pool if x[1] == labels[0]], positives)
    second = rng.sample([x for x in pool if x[1] == labels[1]], k - positives)
    if order not in ("first", "last"):
        raise ValueError(f"order must be 'first' or 'last', got {order!r}")
    demos = first + second if order == "first" else second + first
    return [{"query": q, "answer": a, "demos": demos} for q, a in items[:n]]


# --------------------------------------------------------------------------- the course's lab: few-shot summaries
SUMMARY_TEMPLATE = "Dialogue:\n{input}\nSummary: {label}"
SUMMARY_INSTRUCTION = "Summarize the dialogue in one sentence."
SUMMARY_SHOTS, SUMMARY_NEW_TOKENS = (0, 1, 2), 32


def load_dialogues() -> list[tuple[str, str]]:
    """The frozen (dialogue, reference summary) pairs of ``llmlab/corpus/dialogues.json``."""
    import json
    from pathlib import Path

    record = json.loads((Path(__file__).resolve().parent / "corpus" / "dialogues.json").read_text())
    return [(i["dialogue"], i["summary"]) for i in record["items"]]


def summary_prompt(tokenizer, index: int, k: int) -> str:
    """The k-shot summarisation prompt for dialogue ``index``, in the model's chat template: the
    instruction, the next k dialogues (cyclically) with their summaries, then the dialogue."""
    pairs = load_dialogues()
    demos = [pairs[(index + 1 + j) % len(pairs)] for j in range(k)]
    text = build_prompt(pairs[index][0], demos, k, SUMMARY_TEMPLATE, SUMMARY_INSTRUCTION)
    return chat_text(tokenizer, text)


SUMMARY_FORMATS = ("packed", "turns")


def summary_prompt_turns(tokenizer, index: int, k: int) -> str:
    """The same k-shot summarisation prompt as :func:`summary_prompt`, with the examples as
    conversation turns, the way a chat model is shown them: each example dialogue is a user
    turn (the instruction and the dialogue), its summary the assistant's reply; the dialogue
    to summarise is the last user turn."""
    _checks.tokenizer("tokenizer", tokenizer)
    pairs = load_dialogues()
    index, k = _checks.non_negative_int("index", index), _checks.non_negative_int("k", k)
    if index >= len(pairs):
        raise ValueError(f"index must be below {len(pairs)} (the frozen dialogues), got {index}")
    demos = [pairs[(index + 1 + j) % len(pairs)] for j in range(k)]
    messages = []
    for dialogue, summary in demos:
        messages += [{"role": "user", "content": f"{SUMMARY_INSTRUCTION}\n\nDialogue:\n{dialogue}"},
                     {"role": "assistant", "content": summary}]
    messages.append({"role": "user", "content": f"{SUMMARY_INSTRUCTION}\n\nDialogue:\n{pairs[index][0]}"})
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
