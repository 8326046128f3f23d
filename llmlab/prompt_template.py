"""Prompt templates for prompt tuning and p-tuning (chapter 10): where the virtual tokens, the task's
fields and the answer go, and the token ids of one filled-in example.

A :class:`PromptTemplate` says where the virtual tokens go (``{virtual}``, or
several slots ``{virtual_0}``, ``{virtual_1}``, ... with ``virtual_token_splits``
sharing the tokens among them), where the task's fields go (``{story}``, ...), and
where the answer goes (``{answer}``, always last). Its ``truncate_field`` is cut
when an example is too long and ``answer_only_loss`` says whether the loss counts
only the answer's tokens (:func:`llmlab.prompt_tuning.answer_loss`).
:meth:`PromptTemplate.from_nemo` reads a task of NeMo's prompt-learning configuration.

:func:`encode` turns a template filled with one example into token ids
(:class:`Encoded`: the text pieces between the virtual slots, and the answer), cut
to a ``max_length`` as NeMo does; :func:`few_shot_template` writes solved
demonstrations in front of a plain template, for comparison with zero- and
few-shot prompts. :mod:`llmlab.prompt_tuning` puts the virtual tokens into the slots.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from . import _checks

VIRTUAL, ANSWER = "virtual", "answer"
_NUMBERED = re.compile(r"virtual_(\d+)$")
_NEMO_SLOT = re.compile(r"<\|VIRTUAL_PROMPT_(\d+)\|>")


# --------------------------------------------------------------------------- the template
class PromptTemplate:
    """A prompt with named slots, for example ``"{virtual}{story} Question: who? Answer: {answer}"``.

    ``{answer}`` must appear once, at the very end. The virtual tokens go in one slot
    ``{virtual}`` or in several numbered slots ``{virtual_0}``, ``{virtual_1}``, ...
    (each once, in order); ``virtual_token_splits`` gives the number of virtual tokens
    of each slot (NeMo's field of that name; needed with several slots). Other names
    are filled from each example's dict. ``truncate_field`` names the field cut (from
    its end) when an example is longer than ``max_length`` in :func:`encode`;
    ``answer_only_loss=False`` puts the loss on every real token, not only the answer's.
    """

    def __init__(self, template: str, virtual_token_splits: list[int] | None = None,
                 truncate_field: str | None = None, answer_only_loss: bool = True) -> None:
        if not isinstance(template, str):
            raise _checks.ArgumentTypeError(f"template must be a string, got {type(template).__name__}")
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as err:
            raise ValueError(f"template {template!r} is not a valid format string: {err}") from err
        names = [name for _, name, _, _ in parsed if name is not None]
        if names.count(ANSWER) != 1:
            raise ValueError(f"template must contain the answer slot {{answer}} exactly once, found it "
                             f"{names.count(ANSWER)} times in {template!r}")
        if names[-1] != ANSWER or parsed[-1][0] is None or not template.endswith("{answer}"):
            raise ValueError(f"the answer slot {{answer}} must end the template (the loss is on what follows "
                             f"the prompt), got {template!r}")
        if any(n == "" or not n.isidentifier() for n in names):
            raise ValueError(f"template slots must be names such as {{story}}, got {names} in {template!r}")
        if any(spec or conv for _, name, spec, conv in parsed if name is not None):
            raise ValueError(f"template slots take no format spec or conversion, got {template!r}")
        plain = [n for n in names if n == VIRTUAL]
        numbered = [n for n in names if _NUMBERED.match(n)]
        if len(plain) > 1:
            raise ValueError(f"template may contain the virtual-token slot {{virtual}} at most once, got {template!r}; "
                             "for several slots write {virtual_0}, {virtual_1}, ...")
        if plain and numbered:
            raise ValueError(f"use either one slot {{virtual}} or numbered slots {{virtual_0}}, {{virtual_1}}, ..., "
                             f"not both, in {template!r}")
        if numbered and numbered != [f"virtual_{i}" for i in range(len(numbered))]:
            raise ValueError(f"numbered virtual slots must be {{virtual_0}}, {{virtual_1}}, ... each once and in "
                             f"order, got {numbered} in {template!r}")
        slots = plain or numbered
        self.template = template
        self.n_slots = len(slots)
        self.fields = [n for n in names if n != ANSWER and n not in slots]
        if virtual_token_splits is not None:
            if not self.n_slots:
                raise ValueError("virtual_token_splits needs a template with virtual slots; this one has none")
            if isinstance(virtual_token_splits, (str, int)) or not isinstance(virtual_token_splits, (list, tuple)):
                raise _checks.ArgumentTypeError(f"virtual_token_splits must be a list of ints (one per slot), got "
                                                f"{type(virtual_token_splits).__name__}")
            splits = [_checks.positive_int("each of virtual_token_splits", s) for s in virtual_token_splits]
            if len(splits) != self.n_slots:
                raise ValueError(f"virtual_token_splits needs one number per virtual slot: {self.n_slots} slots, "
                                 f"got {len(splits)} numbers {splits}")
            self.virtual_token_splits: tuple[int, ...] | None = tuple(splits)
        elif self.n_slots > 1:
            raise ValueError(f"a template with {self.n_slots} virtual slots needs virtual_token_splits "
                             f"(how many virtual tokens go in each)")
        else:
            self.virtual_token_splits = None
        if truncate_field is not None and truncate_field not in self.fields:
            raise ValueError(f"truncate_field must be one of the template's fields {self.fields}, got {truncate_field!r}")
        if not isinstance(answer_only_loss, bool):
            raise _checks.ArgumentTypeError(f"answer_only_loss must be True or False, got {answer_only_loss!r}")
        self.truncate_field = truncate_field
        self.answer_only_loss = answer_only_loss
        head = template[: -len("{answer}")]
        self._texts = re.split(r"\{virtual(?:_\d+)?\}", head) if self.n_slots else [head]

    @classmethod
    def from_nemo(cls, task: dict) -> "PromptTemplate":
        """The template of one entry of NeMo's ``task_templates`` (chapter 10).

        Reads ``prompt_template`` (``<|VIRTUAL_PROMPT_i|>`` becomes ``{virtual_i}``, the
        field named by ``answer_field`` becomes ``{answer}``), ``virtual_token_splits``
        (checked against ``total_virtual_tokens``), ``truncate_field`` (``None`` or
        ``"None"`` for none) and ``answer_only_loss``.
        """
        if not isinstance(task, dict):
            raise _checks.ArgumentTypeError(f"task must be a dict (one entry of NeMo's task_templates), got "
                                            f"{type(task).__name__}")
        missing = [k for k in ("prompt_template", "total_virtual_tokens", "virtual_token_splits", "answer_field")
                   if k not in task]
        if missing:
            raise ValueError(f"a NeMo task template needs the keys {missing}")
        splits = list(task["virtual_token_splits"])
        if sum(splits) != task["total_virtual_tokens"]:
            raise ValueError(f"virtual_token_splits {splits} add up to {sum(splits)}, not total_virtual_tokens = "
                             f"{task['total_virtual_tokens']}")
        text = _NEMO_SLOT.sub(lambda m: "{virtual_" + m.group(1) + "}", task["prompt_template"])
        text = text.replace("{" + task["answer_field"] + "}", "{answer}")
        truncate = task.get("truncate_field")
        return cls(text, splits, None if truncate in (None, "None") else truncate,
                   bool(task.get("answer_only_loss", True)))

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in (("virtual_token_splits", self.virtual_token_splits),
                                                     ("truncate_field", self.truncate_field))
                        if v is not None)
        return f"PromptTemplate({self.template!r}{extra})"

    @property
    def has_virtual(self) -> bool:
        return self.n_slots > 0

    def splits(self, n_virtual: int) -> list[int]:
        """How many of ``n_virtual`` virtual tokens go in each slot, in order."""
        if self.virtual_token_splits is None:
            return [n_virtual] * self.n_slots
        if sum(self.virtual_token_splits) != n_virtual:
            raise ValueError(f"{self!r} splits {sum(self.virtual_token_splits)} virtual tokens among its slots, "
                             f"but the soft prompt has {n_virtual}")
        return list(self.virtual_token_splits)

    def pieces(self, example: dict, answer: str | None = None) -> tuple[list[str], str]:
        """The texts between the virtual slots (one more than there are slots) and the answer text.

        A space that ends the prompt moves to the start of the answer, as GPT-2's
        and SmolLM2's tokenizers attach spaces to the following word.
        """
        if not isinstance(example, dict):
            raise _checks.ArgumentTypeError(f"example must be a dict of the template's fields, got "
                                            f"{type(example).__name__}")
        missing = [f for f in self.fields if f not in example]
        if missing:
            raise ValueError(f"example is missing the fields {missing} that {self!r} needs")
        if answer is None and ANSWER not in example:
            raise ValueError(f"example has no 'answer' and no answer was given: {example!r}")
        answer = example[ANSWER] if answer is None else answer
        values = {f: example[f] for f in self.fields}
        texts = [t.format(**values) for t in self._texts]
        space = ""
        if texts[-1].endswith(" "):
            texts[-1], space = texts[-1][:-1], " "
        return texts, space + str(answer)

    def parts(self, example: dict, answer: str | None = None) -> tuple[str, str, str]:
        """For at most one virtual slot: the text before the virtual tokens, after them, and the answer."""
        if self.n_slots > 1:
            raise ValueError(f"{self!r} has {self.n_slots} virtual slots: use pieces()")
        texts, ans = self.pieces(example, answer)
        return ("", texts[0], ans) if len(texts) == 1 else (texts[0], texts[1], ans)

    def text(self, example: dict, answer: str | None = None) -> str:
        """The prompt as plain text with its answer (no virtual tokens): for few-shot demonstrations."""
        texts, ans = self.pieces(example, answer)
        return "".join(texts) + ans


def few_shot_template(template: PromptTemplate, demonstrations: list[dict], separator: str = "\n") -> PromptTemplate:
    """``template`` with solved ``demonstrations`` written in front of it (in-context learning, chapter 4)."""
    if isinstance(template, str):
        template = PromptTemplate(template)
    if not isinstance(template, PromptTemplate):
        raise _checks.ArgumentTypeError(f"template must be a PromptTemplate, got {type(template).__name__}")
    if template.has_virtual:
        raise ValueError("few-shot prompts are plain text: use a template without {virtual}")
    if not demonstrations:
        raise ValueError("few_shot_template needs at least one demonstration")
    shots = separator.join(template.text(d) for d in demonstrations) + separator
    return PromptTemplate(shots.replace("{", "{{").replace("}", "}}") + template.template,
                          truncate_field=template.truncate_field, answer_only_loss=template.answer_only_loss)


@dataclass
class Encoded:
    """One example as token ids: the text pieces between the virtual slots, and the answer.

    ``task`` names the example's task for :class:`MultiTaskPrompts` (``None`` otherwise).
    """

    pieces: list[list[int]]
    answer: list[int]
    task: str | None = None

    @property
    def before(self) -> list[int]:
        """The tokens before the first virtual slot (all the prompt's tokens without slots)."""
        return self.pieces[0] if len(self.pieces) > 1 else []

    @property
    def after(self) -> list[int]:
        """The tokens after the virtual slot (for templates with at most one slot)."""
        if len(self.pieces) > 2:
            raise ValueError("this example has several virtual slots: read .pieces")
        return self.pieces[-1]

    @property
    def n_text(self) -> int:
        """Real tokens, prompt and answer."""
        return sum(map(len, self.pieces)) + len(self.answer)


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"] if text else []


def encode(tokenizer, template: PromptTemplate, example: dict, answer: str | None = None,
           max_length: int | None = None, n_virtual: int | None = None, task: str | None = None) -> Encoded:
    """Token ids of ``template`` filled with ``example`` (and ``answer``, default its own).

    With ``max_length`` (tokens, virtual ones included: ``n_virtual``, default the
    template's ``virtual_token_splits``), an example that is too long has its
    ``template.truncate_field`` cut from the end, as NeMo does: the field's tokens
    are cut and decoded back to text; without a truncate field it raises ValueError.
    """
    _checks.tokenizer("tokenizer", tokenizer)
    if not isinstance(template, PromptTemplate):
        raise _checks.ArgumentTypeError(f"template must be a PromptTemplate, got {type(template).__name__}")

    def build(ex: dict) -> Encoded:
        texts, ans = template.pieces(ex, answer)
        out = Encoded([_ids(tokenizer, t) for t in texts], _ids(tokenizer, ans), task)
        if not out.answer:
            raise ValueError(f"the answer of {ex!r} encodes to no tokens")
        return out

    enc = build(example)
    if max_length is None:
        return enc
    max_length = _checks.positive_int("max_length", max_length)
    if n_virtual is None:
        n_virtual = sum(template.virtual_token_splits or ())
    n_virtual = _checks.non_negative_int("n_virtual", n_virtual)
    over = enc.n_text + n_virtual - max_length
    if over <= 0:
        return enc
    field = template.truncate_field
    if field is None:
        raise ValueError(f"an example is {enc.n_text + n_virtual} tokens long with its virtual tokens, more than "
                         f"max_length = {max_length}; give the template a truncate_field to cut")
    field_ids = _ids(tokenizer, str(example[field]))
    cut = dict(example)
    while over > 0:
        keep = len(field_ids) - over
        if keep < 0:
            raise ValueError(f"even with its field {field!r} removed the example is longer than max_length = "
                             f"{max_length}")
        field_ids = field_ids[:keep]
        cut[field] = tokenizer.decode(field_ids)
        enc = build(cut)
        over = enc.n_text + n_virtual - max_length
    return enc
