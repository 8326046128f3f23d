"""Prompt tuning and p-tuning (chapter 10): learn virtual-token embeddings while the model stays frozen.

Lester et al. (2021, "The Power of Scale for Parameter-Efficient Prompt Tuning")
keep every weight of a language model fixed and train only ``n_virtual`` vectors,
the *virtual tokens*, fed to the model as if they were the embeddings of real
tokens. P-tuning (Liu et al. 2021, "GPT Understands, Too"; NVIDIA NeMo's
``virtual_prompt_style: p-tuning``; PEFT's ``PromptEncoderConfig``) trains a small
*prompt encoder* (an MLP, or a bidirectional LSTM with an MLP head) that computes
the virtual tokens from a table of its own; after training, its output is
computed once and stored as a fixed table (:meth:`VirtualTokens.collapse`), so
inference costs the same as prompt tuning.

A :class:`PromptTemplate` says where the virtual tokens go (``{virtual}``, or
several slots ``{virtual_0}``, ``{virtual_1}``, ... with ``virtual_token_splits``
sharing the tokens among them), where the task's fields go (``{story}``, ...), and
where the answer goes (``{answer}``, always last). Its ``truncate_field`` is cut
when an example is too long and ``answer_only_loss`` says whether the loss counts
only the answer's tokens (:func:`answer_loss`). :meth:`PromptTemplate.from_nemo`
reads a task of NeMo's prompt-learning configuration.

The model is fed ``inputs_embeds`` instead of ``input_ids``: the embeddings of the
template's text with the virtual tokens spliced in. :class:`MultiTaskPrompts`
keeps one set of virtual tokens per task in front of one shared frozen model, and
:func:`train_tasks` tunes them together on mixed batches.

For comparison the module also scores zero-shot and few-shot prompts
(:func:`few_shot_template`), and fine-tunes weights with the same answer-only loss
(:func:`train_answers` on the bare model). ``python -m llmlab.records.prompt_tuning_real``
runs the chapter's grid on the real model (:mod:`llmlab.records.prompt_tuning_real`).
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import _checks
from .train import TrainConfig, TrainLog, train_loop

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


# --------------------------------------------------------------------------- the virtual tokens
ENCODERS = ("mlp", "lstm")


class PromptEncoder(torch.nn.Module):
    """P-tuning's prompt encoder: a trainable table put through a small network (chapter 10).

    ``kind="mlp"``: ``num_layers`` linear layers with ReLU between them, ``d_model ->
    hidden -> ... -> d_model`` (PEFT's ``encoder_reparameterization_type="MLP"`` is
    ``num_layers=3``; NeMo's ``p_tuning.num_layers`` counts the same way).
    ``kind="lstm"`` (Liu et al. 2021): a bidirectional LSTM of ``num_layers`` layers and
    ``hidden`` units per direction, then the MLP ``2 hidden -> 2 hidden -> d_model``, as
    PEFT's ``"LSTM"``. The module and parameter names are PEFT's (``embedding``,
    ``mlp_head``, ``lstm_head``), so a PEFT prompt encoder's state dict loads as is.
    ``forward()`` returns the ``(n_virtual, d_model)`` virtual tokens.
    """

    def __init__(self, n_virtual: int, d_model: int, kind: str = "mlp", hidden: int | None = None,
                 num_layers: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        n_virtual = _checks.positive_int("n_virtual", n_virtual)
        d_model = _checks.positive_int("d_model", d_model)
        kind = _checks.choice("kind", kind, ENCODERS)
        hidden = d_model if hidden is None else _checks.positive_int("hidden", hidden)
        num_layers = (3 if kind == "mlp" else 2) if num_layers is None else _checks.positive_int("num_layers",
                                                                                                num_layers)
        if kind == "mlp" and num_layers < 2:
            raise ValueError(f"an MLP prompt encoder needs num_layers >= 2 linear layers, got {num_layers}")
        dropout = _checks.fraction("dropout", dropout, high_open=True)
        self.kind, self.hidden, self.num_layers = kind, hidden, num_layers
        self.embedding = torch.nn.Embedding(n_virtual, d_model)  # (n_virtual, d_model), N(0, 1) as in PEFT
        if kind == "lstm":
            self.lstm_head = torch.nn.LSTM(d_model, hidden, num_layers=num_layers, dropout=dropout,
                                           bidirectional=True, batch_first=True)
            self.mlp_head = torch.nn.Sequential(torch.nn.Linear(2 * hidden, 2 * hidden), torch.nn.ReLU(),
                                                torch.nn.Linear(2 * hidden, d_model))
        else:
            sizes = [d_model] + [hidden] * (num_layers - 1) + [d_model]
            layers: list[torch.nn.Module] = []
            for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
                layers.append(torch.nn.Linear(a, b))
                if i < num_layers - 1:
                    layers.append(torch.nn.ReLU())
                    if dropout:
                        layers.append(torch.nn.Dropout(dropout))
            self.mlp_head = torch.nn.Sequential(*layers)

    def forward(self) -> torch.Tensor:
        x = self.embedding.weight.unsqueeze(0)  # (1, n_virtual, d_model)
        if self.kind == "lstm":
            x = self.lstm_head(x)[0]  # (1, n_virtual, 2 hidden)
        return self.mlp_head(x)[0]  # (n_virtual, d_model)


class VirtualTokens(torch.nn.Module):
    """``n_virtual`` virtual-token embeddings of width ``d_model``: a table, or a prompt encoder's output.

    ``encoder=None`` is prompt tuning (Lester et al. 2021): the table itself is trained,
    started as the embeddings of ``init_ids`` (real tokens) or of ``n_virtual`` tokens
    drawn with ``seed`` from ``embed``'s vocabulary. ``encoder="mlp"`` or ``"lstm"`` (or
    a :class:`PromptEncoder`) is p-tuning: the encoder is trained, its parameters
    drawn with ``seed``. :meth:`collapse` turns p-tuning into a fixed table for inference.
    """

    def __init__(self, embed: torch.nn.Embedding, n_virtual: int, init_ids: list[int] | None = None, seed: int = 0,
                 encoder: str | PromptEncoder | None = None) -> None:
        super().__init__()
        if not isinstance(embed, torch.nn.Embedding):
            raise _checks.ArgumentTypeError(f"embed must be the model's input embedding (torch.nn.Embedding, "
                                            f"model.get_input_embeddings()), got {type(embed).__name__}")
        if not isinstance(n_virtual, int) or isinstance(n_virtual, bool) or n_virtual < 1:
            raise ValueError(f"n_virtual (the number of virtual tokens) must be an int >= 1, got {n_virtual!r}; "
                             "for no soft prompt, use a template without {virtual} and the bare model")
        seed = _checks.non_negative_int("seed", seed)
        d_model = embed.weight.shape[1]
        self.table: torch.nn.Parameter | None = None
        self.encoder: PromptEncoder | None = None
        if encoder is not None:
            if init_ids is not None:
                raise ValueError("init_ids starts a prompt-tuning table; a p-tuning encoder starts from random "
                                 "weights (pass encoder=None to start from real tokens)")
            if isinstance(encoder, str):
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    encoder = PromptEncoder(n_virtual, d_model, _checks.choice("encoder", encoder, ENCODERS))
            if not isinstance(encoder, PromptEncoder):
                raise _checks.ArgumentTypeError(f"encoder must be None, 'mlp', 'lstm' or a PromptEncoder, got "
                                                f"{type(encoder).__name__}")
            if encoder.embedding.weight.shape != (n_virtual, d_model):
                raise ValueError(f"the encoder makes {tuple(encoder.embedding.weight.shape)} virtual tokens, "
                                 f"not ({n_virtual}, {d_model})")
            self.encoder = encoder.to(embed.weight.device)
            return
        if init_ids is None:
            g = torch.Generator().manual_seed(seed)
            init_ids = torch.randint(0, embed.num_embeddings, (n_virtual,), generator=g).tolist()
        if len(init_ids) != n_virtual:
            raise ValueError(f"init_ids must hold n_virtual = {n_virtual} token ids, got {len(init_ids)}")
        if any(not 0 <= int(i) < embed.num_embeddings for i in init_ids):
            raise ValueError(f"init_ids must be token ids in [0, {embed.num_embeddings}), got {list(init_ids)}")
        ids = torch.tensor(init_ids, dtype=torch.long, device=embed.weight.device)
        self.table = torch.nn.Parameter(embed(ids).detach().clone())  # (n_virtual, d_model)

    @property
    def n_virtual(self) -> int:
        return (self.table if self.table is not None else self.encoder.embedding.weight).shape[0]

    @property
    def style(self) -> str:
        """``"prompt-tuning"``, or ``"p-tuning (mlp)"`` / ``"p-tuning (lstm)"`` while an encoder computes them."""
        return "prompt-tuning" if self.encoder is None else f"p-tuning ({self.encoder.kind})"

    def forward(self) -> torch.Tensor:
        """The ``(n_virtual, d_model)`` virtual tokens."""
        return self.table if self.encoder is None else self.encoder()

    @torch.no_grad()
    def collapse(self) -> "VirtualTokens":
        """Replace the encoder by its output, a fixed table (what NeMo and PEFT keep for inference); returns self."""
        if self.encoder is not None:
            was = self.encoder.training
            self.encoder.eval()
            table = self.encoder().detach().clone()
            self.encoder.train(was)
            self.encoder = None
            self.table = torch.nn.Parameter(table)
        return self

    def trainable_parameters(self) -> int:
        """Values that training changes: the table (n_virtual x d_model) or every weight of the encoder."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def _freeze(model) -> None:
    for p in model.parameters():
        p.requires_grad_(False)


class SoftPrompt(torch.nn.Module):
    """``n_virtual`` virtual tokens in front of a frozen causal language model.

    ``encoder=None`` is prompt tuning; ``init_ids`` starts the virtual tokens as the
    embeddings of those real tokens (Lester et al. 2021 found this better than random
    vectors), otherwise as the embeddings of ``n_virtual`` tokens drawn at random from
    the vocabulary. ``encoder="mlp"`` or ``"lstm"`` (or a :class:`PromptEncoder`) is
    p-tuning. ``virtual`` passes ready-made :class:`VirtualTokens` instead (shared, not
    copied). Every weight of ``model`` gets ``requires_grad = False``. Chapter 10.
    """

    def __init__(self, model, n_virtual: int | None = None,
                 init_ids: list[int] | None = None, seed: int = 0,
                 encoder: str | PromptEncoder | None = None,
                 virtual: VirtualTokens | None = None) -> None:
        super().__init__()
        _checks.model("model", model)
        if virtual is None:  # the trained part: a table, or a prompt encoder
            virtual = VirtualTokens(model.get_input_embeddings(), n_virtual, init_ids,
                                    seed, encoder)
        elif not isinstance(virtual, VirtualTokens):
            raise _checks.ArgumentTypeError(
                f"virtual must be VirtualTokens, got {type(virtual).__name__}")
        elif n_virtual is not None and n_virtual != virtual.n_virtual:
            raise ValueError(
                f"n_virtual = {n_virtual} but virtual holds {virtual.n_virtual} tokens")
        _freeze(model)  # requires_grad = False for every weight of the model
        self.model = model
        self.virtual = virtual

    @property
    def n_virtual(self) -> int:
        return self.virtual.n_virtual

    @property
    def prompt(self) -> torch.Tensor:
        """The ``(n_virtual, d_model)`` virtual tokens as the model sees them."""
        return self.virtual()

    def collapse(self) -> "SoftPrompt":
        """P-tuning's encoder replaced by its output table (see
        :meth:`VirtualTokens.collapse`); returns self."""
        self.virtual.collapse()
        return self

    def trainable_parameters(self) -> int:
        """Number of trained values: n_virtual x d_model for prompt tuning, the
        encoder's weights for p-tuning."""
        return self.virtual.trainable_parameters()


class MultiTaskPrompts(torch.nn.Module):
    """One set of virtual tokens per task in front of one shared frozen model (NeMo's ``new_tasks``; chapter 10).

    ``n_virtual`` maps each task name to its number of virtual tokens; ``encoder`` and
    ``seed`` are as in :class:`SoftPrompt` (task ``i`` draws with ``seed + i``).
    ``soft_prompt(task)`` is a :class:`SoftPrompt` view of one task (shared weights).
    """

    def __init__(self, model, n_virtual: dict[str, int], encoder: str | None = None, seed: int = 0) -> None:
        super().__init__()
        _checks.model("model", model)
        if not isinstance(n_virtual, dict) or not n_virtual:
            raise _checks.ArgumentTypeError(f"n_virtual must be a dict task name -> number of virtual tokens with at "
                                            f"least one task, got {n_virtual!r}")
        for name in n_virtual:
            _checks.string("task name", name, allow_empty=False)
        _freeze(model)
        self.model = model
        embed = model.get_input_embeddings()
        self.tasks = torch.nn.ModuleDict({name: VirtualTokens(embed, n, seed=seed + i, encoder=encoder)
                                          for i, (name, n) in enumerate(n_virtual.items())})

    def soft_prompt(self, task: str) -> SoftPrompt:
        if task not in self.tasks:
            raise ValueError(f"unknown task {task!r}; the tasks are {list(self.tasks)}")
        return SoftPrompt(self.model, virtual=self.tasks[task])

    def collapse(self) -> "MultiTaskPrompts":
        for v in self.tasks.values():
            v.collapse()
        return self

    def trainable_parameters(self) -> int:
        return sum(v.trainable_parameters() for v in self.tasks.values())


# --------------------------------------------------------------------------- inputs, scores, loss
def _parts(module) -> tuple[torch.nn.Module, object]:
    """(language model, VirtualTokens / dict of them / None) for a SoftPrompt, MultiTaskPrompts or bare model."""
    if isinstance(module, SoftPrompt):
        return module.model, module.virtual
    if isinstance(module, MultiTaskPrompts):
        return module.model, module.tasks
    return module, None


def trainable_parameters(module) -> int:
    """Number of values that training changes: the virtual tokens (or their encoder), or every trainable weight."""
    _checks.model("module", module)
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _window(model) -> int | None:
    return _checks.context_window(model) if hasattr(model, "config") else None


def build_inputs(module, template, encoded: list[Encoded]) -> dict[str, torch.Tensor]:
    """``inputs_embeds`` (B, T, d), ``attention_mask`` (B, T) and ``labels`` (B, T), right-padded.

    Each row is the embedded text pieces with the virtual tokens spliced into the
    template's slots (split by ``virtual_token_splits``), then the embedded answer.
    Labels are -100 except at the answer's tokens, or, with ``answer_only_loss=False``,
    at every real token (never at virtual tokens or padding). For
    :class:`MultiTaskPrompts`, ``template`` is a dict task -> template and each
    example's ``task`` picks its template and its virtual tokens.
    """
    _checks.model("module", module)
    model, virtual = _parts(module)
    if not encoded:
        raise ValueError("need at least one example")
    embed = model.get_input_embeddings()
    device = embed.weight.device
    if isinstance(virtual, torch.nn.ModuleDict):
        if not isinstance(template, dict):
            raise _checks.ArgumentTypeError("with MultiTaskPrompts, template must be a dict task name -> PromptTemplate")
        unknown = sorted({e.task for e in encoded} - set(virtual))
        if unknown:
            raise ValueError(f"examples of unknown tasks {unknown}; the tasks are {list(virtual)} (set Encoded.task)")
        missing = sorted({e.task for e in encoded} - set(template))
        if missing:
            raise ValueError(f"no template for the tasks {missing}")
        tables = {name: virtual[name]() for name in {e.task for e in encoded}}
        jobs = [(template[e.task], tables[e.task], e) for e in encoded]
    else:
        if not isinstance(template, PromptTemplate):
            raise _checks.ArgumentTypeError(f"template must be a PromptTemplate, got {type(template).__name__}")
        if template.has_virtual and virtual is None:
            raise ValueError("this template has a {virtual} slot: wrap the model in SoftPrompt")
        if virtual is not None and not template.has_virtual:
            raise ValueError("a SoftPrompt needs a template with a {virtual} slot to say where the virtual tokens go")
        table = virtual() if virtual is not None else None
        jobs = [(template, table, e) for e in encoded]
    rows, labels = [], []
    for tpl, table, e in jobs:
        if len(e.pieces) != tpl.n_slots + 1:
            raise ValueError(f"an example encoded for {len(e.pieces) - 1} virtual "
                             f"slots was given to {tpl!r}")
        # the virtual tokens (n_virtual, d), cut into one block per slot of the template
        virt = [] if table is None else list(torch.split(table, tpl.splits(len(table))))
        pieces, lab = [], []
        for i, ids in enumerate(e.pieces):
            pieces.append(embed(torch.tensor(ids, dtype=torch.long, device=device)))
            lab += list(ids) if not tpl.answer_only_loss else [-100] * len(ids)
            if i < len(virt):
                pieces.append(virt[i])
                lab += [-100] * virt[i].shape[0]
        pieces.append(embed(torch.tensor(e.answer, dtype=torch.long, device=device)))
        rows.append(torch.cat(pieces))  # (T_i, d)
        labels.append(lab + list(e.answer))
    length = max(r.shape[0] for r in rows)
    window = _window(model)
    if window is not None and length > window:
        raise ValueError(f"an example is {length} tokens long with its prompt, more than the model's "
                         f"context window of {window}")
    d = rows[0].shape[1]
    inputs = torch.zeros(len(rows), length, d, dtype=rows[0].dtype, device=device)
    mask = torch.zeros(len(rows), length, dtype=torch.long, device=device)
    target = torch.full((len(rows), length), -100, dtype=torch.long, device=device)
    for i, (r, lab) in enumerate(zip(rows, labels)):
        inputs[i, : r.shape[0]] = r
        mask[i, : r.shape[0]] = 1
        target[i, : r.shape[0]] = torch.tensor(lab, device=device)
    return {"inputs_embeds": inputs, "attention_mask": mask, "labels": target}


def answer_log_probs(module, template, encoded: list[Encoded]) -> torch.Tensor:
    """Summed log-probability (nats) of each example's answer tokens given its prompt; shape (B,)."""
    _checks.model("module", module)
    model, _ = _parts(module)
    batch = build_inputs(module, template, encoded)
    logits = model(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"]).logits
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)  # (B, T - 1, V): position t predicts token t + 1
    ids = torch.zeros(logp.shape[:2], dtype=torch.long, device=logp.device)
    keep = torch.zeros(logp.shape[:2], dtype=torch.bool, device=logp.device)
    for i, e in enumerate(encoded):
        n = int(batch["attention_mask"][i].sum())  # the answer's tokens are the row's last len(answer)
        ids[i, n - 1 - len(e.answer): n - 1] = torch.tensor(e.answer, device=logp.device)
        keep[i, n - 1 - len(e.answer): n - 1] = True
    picked = logp.gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    return (picked * keep).sum(dim=1)


def answer_loss(module, template, encoded: list[Encoded]) -> torch.Tensor:
    """Mean cross-entropy (nats per token) of the labelled tokens: the answer's only, unless the template's
    ``answer_only_loss`` is False (then every real token's); virtual tokens never carry loss."""
    _checks.model("module", module)
    model, _ = _parts(module)
    batch = build_inputs(module, template, encoded)
    logits = model(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"]).logits
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), batch["labels"][:, 1:].flatten(),
                           ignore_index=-100)


def _check_examples(examples, name: str = "examples") -> list[dict]:
    if isinstance(examples, (str, dict)) or not isinstance(examples, (list, tuple)):
        raise _checks.ArgumentTypeError(f"{name} must be a list of dicts (one per example), got {type(examples).__name__}")
    if not examples:
        raise ValueError(f"{name} must hold at least one example, got an empty list")
    for ex in examples:
        if not isinstance(ex, dict):
            raise _checks.ArgumentTypeError(f"{name} must hold dicts, got an item of type {type(ex).__name__}")
    return list(examples)


@torch.no_grad()
def candidate_scores(module, tokenizer, template: PromptTemplate, examples: list[dict], candidates: list[str],
                     batch_size: int = 64, max_length: int | None = None) -> torch.Tensor:
    """(B, C) summed log-probabilities (nats) of each candidate answer after each example's prompt.

    When every candidate is one token after the prompt (the chapter's labels), one
    forward pass per example scores all of them, with no bias from label length;
    otherwise each (example, candidate) pair is scored by its own row.
    """
    candidates = _checks.strings("candidates", candidates)
    examples = _check_examples(examples)
    _checks.model("module", module)
    _checks.tokenizer("tokenizer", tokenizer)
    if not isinstance(template, PromptTemplate):
        raise _checks.ArgumentTypeError(f"template must be a PromptTemplate, got {type(template).__name__}")
    batch_size = _checks.positive_int("batch_size", batch_size)
    model, virtual = _parts(module)
    n_virtual = virtual.n_virtual if isinstance(virtual, VirtualTokens) else 0
    modes = [(m, m.training) for m in module.modules()]  # restored at the end, submodule by submodule
    module.eval()
    first = [encode(tokenizer, template, ex, candidates[0], max_length, n_virtual) for ex in examples]
    one = [_ids(tokenizer, template.pieces(examples[0], c)[1]) for c in candidates]
    out = []
    if all(len(ids) == 1 for ids in one):
        cand = torch.tensor([ids[0] for ids in one])
        for i in range(0, len(first), batch_size):
            chunk = first[i: i + batch_size]
            batch = build_inputs(module, template, chunk)
            logits = model(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"]).logits
            last = batch["attention_mask"].sum(dim=1) - 2  # the position that predicts the answer token
            logp = F.log_softmax(logits[torch.arange(len(chunk)), last].float(), dim=-1)
            out.append(logp[:, cand.to(logp.device)].cpu())
        scores = torch.cat(out)
    else:
        pairs = [Encoded(e.pieces, _ids(tokenizer, template.pieces(ex, c)[1])) for e, ex in zip(first, examples)
                 for c in candidates]
        scores = torch.cat([answer_log_probs(module, template, pairs[i: i + batch_size]).cpu()
                            for i in range(0, len(pairs), batch_size)]).view(len(examples), len(candidates))
    for m, mode in modes:
        m.training = mode
    return scores


def predict(module, tokenizer, template: PromptTemplate, examples: list[dict], candidates: list[str],
            batch_size: int = 64, max_length: int | None = None) -> list[str]:
    """For each example, the candidate answer with the highest log-probability (rank classification)."""
    scores = candidate_scores(module, tokenizer, template, examples, candidates, batch_size, max_length)
    return [candidates[i] for i in scores.argmax(dim=1).tolist()]


def accuracy(module, tokenizer, template: PromptTemplate, examples: list[dict], candidates: list[str],
             max_length: int | None = None) -> float:
    """Share of ``examples`` whose ``answer`` is the top-scoring candidate (0 to 1)."""
    if not examples:
        raise ValueError("need at least one example to measure accuracy")
    preds = predict(module, tokenizer, template, examples, candidates, max_length=max_length)
    return sum(p == ex[ANSWER] for p, ex in zip(preds, examples)) / len(examples)


# --------------------------------------------------------------------------- training
def _train(module, template, train_enc: list[Encoded], val_enc: list[Encoded], cfg: TrainConfig, device,
           progress: bool) -> TrainLog:
    def n_labelled(e: Encoded, tpl: PromptTemplate) -> int:
        return len(e.answer) if tpl.answer_only_loss else e.n_text

    def tpl_of(e: Encoded) -> PromptTemplate:
        return template[e.task] if isinstance(template, dict) else template

    def batch_loss(g: torch.Generator) -> tuple[torch.Tensor, int]:
        idx = torch.randint(0, len(train_enc), (cfg.batch_size,), generator=g).tolist()
        chosen = [train_enc[i] for i in idx]
        return answer_loss(module, template, chosen), sum(n_labelled(e, tpl_of(e)) for e in chosen)

    @torch.no_grad()
    def val_loss() -> float:
        module.eval()
        losses = [answer_loss(module, template, val_enc[i: i + cfg.batch_size]).item()
                  for i in range(0, len(val_enc), cfg.batch_size)]
        module.train()
        return sum(losses) / len(losses)

    return train_loop(module, cfg, device, batch_loss, val_loss, progress=progress)


def train_answers(module, tokenizer, template: PromptTemplate, train: list[dict], val: list[dict],
                  cfg: TrainConfig, device: torch.device | str | None = None, progress: bool = False,
                  max_length: int | None = None) -> TrainLog:
    """Train ``module`` on the answer-only loss with :func:`llmlab.train.train_loop`; return its log.

    Pass a :class:`SoftPrompt` for prompt tuning or p-tuning (only the virtual tokens
    or their encoder learn) or a bare model for fine-tuning (every weight with
    ``requires_grad`` learns). Batches of ``cfg.batch_size`` examples are drawn with
    the loop's seeded generator; ``cfg.seq_len`` is unused (examples keep their own
    lengths, cut to ``max_length`` by the template's truncate field). Losses are in
    nats per labelled token; the validation loss is on the first ``cfg.eval_batches *
    cfg.batch_size`` validation examples.
    """
    _checks.model("module", module)
    if isinstance(module, MultiTaskPrompts):
        raise _checks.ArgumentTypeError("for MultiTaskPrompts use train_tasks (one template and data set per task)")
    if not train or not val:
        raise ValueError("need at least one training and one validation example")
    train, val = _check_examples(train, "train"), _check_examples(val, "val")
    device = torch.device(device) if device is not None else next(module.parameters()).device
    module.to(device)
    n_virtual = module.n_virtual if isinstance(module, SoftPrompt) else 0
    train_enc = [encode(tokenizer, template, ex, max_length=max_length, n_virtual=n_virtual) for ex in train]
    val_enc = [encode(tokenizer, template, ex, max_length=max_length, n_virtual=n_virtual)
               for ex in val[: cfg.eval_batches * cfg.batch_size]]
    return _train(module, template, train_enc, val_enc, cfg, device, progress)


def train_tasks(module: MultiTaskPrompts, tokenizer, tasks: dict[str, tuple[PromptTemplate, list[dict], list[dict]]],
                cfg: TrainConfig, device: torch.device | str | None = None, progress: bool = False,
                max_length: int | None = None) -> TrainLog:
    """Tune every task's virtual tokens together: ``tasks`` maps a task name to (template, train, val).

    Each batch draws ``cfg.batch_size`` examples from all tasks' training sets pooled
    (so tasks mix in a batch, each row with its own template and virtual tokens), in
    front of the one frozen model; the validation loss pools every task's first
    ``cfg.eval_batches * cfg.batch_size`` validation examples.
    """
    if not isinstance(module, MultiTaskPrompts):
        raise _checks.ArgumentTypeError(f"module must be MultiTaskPrompts, got {type(module).__name__}")
    if not isinstance(tasks, dict) or set(tasks) != set(module.tasks):
        raise ValueError(f"tasks must be a dict with one (template, train, val) for each of {list(module.tasks)}")
    device = torch.device(device) if device is not None else next(module.parameters()).device
    module.to(device)
    templates, train_enc, val_enc = {}, [], []
    for name, (template, train, val) in tasks.items():
        train, val = _check_examples(train, f"train of {name!r}"), _check_examples(val, f"val of {name!r}")
        n = module.tasks[name].n_virtual
        templates[name] = template
        train_enc += [encode(tokenizer, template, ex, max_length=max_length, n_virtual=n, task=name) for ex in train]
        val_enc += [encode(tokenizer, template, ex, max_length=max_length, n_virtual=n, task=name)
                    for ex in val[: cfg.eval_batches * cfg.batch_size]]
    return _train(module, templates, train_enc, val_enc, cfg, device, progress)


# --------------------------------------------------------------------------- a task on the story world
def make_task(n: int, seed: int = 0) -> list[dict]:
    """``n`` examples of a small task on the story world of :mod:`llmlab.data` (chapter 10).

    Each example is a two-sentence story and a question about it (see the chapter).
    """
    from . import data

    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise (ValueError if isinstance(n, int) and not isinstance(n, bool) else _checks.ArgumentTypeError)(
            f"n must be a positive int, got {n!r}")
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        name = rng.choice(data.GIRLS + data.BOYS)
        place, spot = rng.choice(data.PLACES)
        thing, adj = rng.choice(data.THINGS)
        feeling_good = rng.random() < 0.5
        feeling = rng.choice(data.FEELINGS_GOOD if feeling_good else data.FEELINGS_BAD)
        story = f"{name} took the {adj} {thing} to the {place}. {name} felt {feeling}."
        out.append({"story": story, "name": name, ANSWER: "good" if feeling_good else "bad"})
    return out


# --------------------------------------------------------------------------- the library readers use
def peft_model(model, config):
    """``peft.get_peft_model(model, config)`` for a prompt-learning ``config`` (``PromptTuningConfig``,
    ``PromptEncoderConfig``; chapter 10), with the FutureWarning that PEFT 0.21 triggers in transformers 5
    (``is_gradient_checkpointing`` renamed) filtered: the reader cannot act on it."""
    import warnings

    from peft import PeftConfig, get_peft_model

    _checks.model("model", model)
    if not isinstance(config, PeftConfig):
        raise _checks.ArgumentTypeError(f"config must be a PEFT config such as PromptEncoderConfig(...), got "
                                        f"{type(config).__name__}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, config)


# --------------------------------------------------------------------------- fine-tuning only the last layers
def unfreeze_last_layers(model, n_layers: int) -> int:
    """Freeze ``model`` except its last ``n_layers`` transformer blocks and final norm; return the trainable count.

    The cheap end of fine-tuning (chapter 10): the gradient stops at the first trained
    block, so a step costs little more than a forward pass. Works for Llama-style
    (``model.model.layers``, ``model.model.norm``) and GPT-2 (``transformer.h``,
    ``transformer.ln_f``) models.
    """
    _checks.model("model", model)
    n_layers = _checks.positive_int("n_layers", n_layers)
    body = getattr(model, "model", None) or getattr(model, "transformer", None)
    blocks = getattr(body, "layers", None) if body is not None else None
    blocks = blocks if blocks is not None else getattr(body, "h", None)
    norm = getattr(body, "norm", None) or getattr(body, "ln_f", None)
    if blocks is None:
        raise ValueError(f"unfreeze_last_layers knows Llama- and GPT-2-style models, not {type(model).__name__}")
    if n_layers > len(blocks):
        raise ValueError(f"the model has {len(blocks)} blocks, cannot train the last {n_layers}")
    _freeze(model)
    for module in list(blocks[-n_layers:]) + ([norm] if norm is not None else []):
        for p in module.parameters():
            p.requires_grad_(True)
    return trainable_parameters(model)


# --------------------------------------------------------------------------- the recorded grid on the real model
REAL_TEMPLATE = "Classify this review: {input}\nSentiment: {answer}"  # chapter 4's wording (llmlab.icl)
RECORD = {
    "task": "sentiment", "n_test": 100, "n_train": 80, "n_val": 20, "labels": ["positive", "negative"],
    "template": REAL_TEMPLATE, "virtual_slot": "{virtual}" + REAL_TEMPLATE, "max_length": 48,
    "seeds": [0, 1, 2, 3, 4], "n_virtual": [1, 4, 16], "p_tuning_n_virtual": [4, 16], "shots": 4, "encoder_hidden": 128, "ft_layers": 1,
    "steps": 20, "batch_size": 8, "warmup_steps": 2,
    "lr": {"prompt-tuning": 0.03, "p-tuning (mlp)": 3e-3, "fine-tuning (last layer)": 1e-4},
}


def _check_record(record) -> dict:
    if not isinstance(record, dict):
        raise _checks.ArgumentTypeError(f"record must be a dict of settings like llmlab.prompt_tuning.RECORD, got "
                                        f"{type(record).__name__}")
    missing = sorted(set(RECORD) - set(record))
    if missing:
        raise ValueError(f"record is missing the settings {missing} (see llmlab.prompt_tuning.RECORD)")
    return record


def real_task(record: dict = RECORD) -> dict:
    """The frozen word-sentiment set of chapter 4 (``llmlab/corpus/icl_eval.json``, VADER words), split:
    the first ``n_test`` items test (chapter 4's first 100), the next ``n_train`` train, then ``n_val``."""
    from .icl import load_eval_set

    _check_record(record)
    t = load_eval_set(record["task"])
    items = [{"input": w, ANSWER: label} for w, label in t["items"]]
    a, b = record["n_test"], record["n_test"] + record["n_train"]
    return {"test": items[:a], "train": items[a:b], "val": items[b: b + record["n_val"]],
            "labels": list(record["labels"]), "source": t["source"], "license": t["license"]}


def record_plan(record: dict = RECORD) -> list[dict]:
    """Every run of the grid, seed-major (so a partial record has every setting): zero-shot once, then per
    seed few-shot, prompt tuning at each number of virtual tokens (p-tuning at those of
    ``p_tuning_n_virtual``, the budget of the 2-core machine), and last-layer fine-tuning."""
    _check_record(record)
    plan = [{"method": "zero-shot", "n_virtual": 0, "seed": None}]
    for seed in record["seeds"]:
        plan.append({"method": f"few-shot ({record['shots']} examples)", "n_virtual": 0, "seed": seed})
        for n in record["n_virtual"]:
            plan.append({"method": "prompt-tuning", "n_virtual": n, "seed": seed})
            if n in record["p_tuning_n_virtual"]:
                plan.append({"method": "p-tuning (mlp)", "n_virtual": n, "seed": seed})
        plan.append({"method": "fine-tuning (last layer)", "n_virtual": 0, "seed": seed})
    return plan


def run_one(model, tokenizer, run: dict, record: dict = RECORD, data: dict | None = None,
            progress: bool = False) -> dict:
    """One run of :func:`record_plan` on ``model`` (left as it was: frozen weights restored); its row."""
    import time

    _checks.model("model", model)
    _checks.tokenizer("tokenizer", tokenizer)
    if not isinstance(run, dict) or not {"method", "n_virtual", "seed"} <= set(run):
        raise ValueError(f"run must be a dict with method, n_virtual and seed (one entry of record_plan()), got {run!r}")
    data = real_task(record) if data is None else data
    plain = PromptTemplate(record["template"], truncate_field="input")
    tuned = PromptTemplate(record["virtual_slot"], truncate_field="input")
    labels, method, seed = data["labels"], run["method"], run["seed"]
    t0 = time.perf_counter()
    row = dict(run)

    def cfg(lr: float) -> TrainConfig:
        return TrainConfig(steps=record["steps"], batch_size=record["batch_size"], lr=lr,
                           warmup_steps=record["warmup_steps"], eval_every=record["steps"], eval_batches=3,
                           weight_decay=0.0, seed=seed)

    if method == "zero-shot":
        module, template, trained = model, plain, 0
    elif method.startswith("few-shot"):
        rng = random.Random(seed)
        demos = rng.sample(data["train"], record["shots"])
        module, template, trained = model, few_shot_template(plain, demos), 0
    elif method in ("prompt-tuning", "p-tuning (mlp)"):
        encoder = None
        if method != "prompt-tuning":
            torch.manual_seed(seed)
            encoder = PromptEncoder(run["n_virtual"], model.get_input_embeddings().weight.shape[1], "mlp",
                                    hidden=record["encoder_hidden"])
        module = SoftPrompt(model, run["n_virtual"], seed=seed, encoder=encoder)
        trained = module.trainable_parameters()
        log = train_answers(module, tokenizer, tuned, data["train"], data["val"], cfg(record["lr"][method]),
                            progress=progress, max_length=record["max_length"])
        row["val_loss"] = log.final_val_loss
        module.collapse()  # inference from the fixed table, as NeMo and PEFT do
        template = tuned
    elif method == "fine-tuning (last layer)":
        saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
        trained = unfreeze_last_layers(model, record["ft_layers"])
        log = train_answers(model, tokenizer, plain, data["train"], data["val"], cfg(record["lr"][method]),
                            progress=progress, max_length=record["max_length"])
        row["val_loss"] = log.final_val_loss
        module, template = model, plain
    else:
        raise ValueError(f"unknown method {method!r}")
    preds = predict(module, tokenizer, template, data["test"], labels, max_length=None)
    correct = sum(p == ex[ANSWER] for p, ex in zip(preds, data["test"]))
    row.update(trainable=int(trained), correct=correct, accuracy=correct / len(data["test"]),
               first_label_share=preds.count(labels[0]) / len(preds))
    if method == "fine-tuning (last layer)":
        model.load_state_dict(saved)
    _freeze(model)
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def summarize(rows: list[dict]) -> list[dict]:
    """Per (method, n_virtual): seeds, mean, sample standard deviation, min and max accuracy, trainable values."""
    import statistics

    if not isinstance(rows, list) or not rows or not all(
            isinstance(r, dict) and {"method", "n_virtual", "accuracy", "trainable", "seconds"} <= set(r) for r in rows):
        raise ValueError("rows must be a non-empty list of rows of run_one (method, n_virtual, accuracy, trainable, "
                         "seconds)")
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["n_virtual"]), []).append(r)
    out = []
    for (method, n), rs in groups.items():
        accs = [r["accuracy"] for r in rs]
        out.append({"method": method, "n_virtual": n, "seeds": len(rs), "mean": statistics.fmean(accs),
                    "std": statistics.stdev(accs) if len(accs) > 1 else 0.0, "min": min(accs), "max": max(accs),
                    "trainable": rs[0]["trainable"], "seconds": statistics.fmean(r["seconds"] for r in rs)})
    return out
