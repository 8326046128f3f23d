"""Prompt tuning (chapter 10): learn a few soft-prompt embeddings while the model stays frozen.

Lester et al. (2021, "The Power of Scale for Parameter-Efficient Prompt Tuning")
and NVIDIA NeMo's p-tuning keep every weight of a language model fixed and train
only ``n_virtual`` vectors, the *virtual tokens*, that are fed to the model as if
they were the embeddings of real tokens. A :class:`PromptTemplate` says where
they go (``{virtual}``), where the task's fields go (``{story}``, ...) and where
the answer goes (``{answer}``, always last); the loss counts only the answer's
tokens (:func:`answer_loss`).

The model is fed ``inputs_embeds`` instead of ``input_ids``: the embeddings of the
template's text with the soft prompt spliced in. A soft prompt that starts as the
embeddings of real tokens therefore gives exactly the logits of those tokens
typed as text (checked in the tests and in the chapter).

For comparison the module also scores zero-shot and few-shot prompts
(:func:`few_shot_template`), and fine-tunes every weight with the same answer-only
loss (:func:`train_answers` on the bare model).
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .train import TrainConfig, TrainLog, train_loop

VIRTUAL, ANSWER = "virtual", "answer"


# --------------------------------------------------------------------------- the template
class PromptTemplate:
    """A prompt with named slots, for example ``"{virtual}{story} Question: who? Answer: {answer}"``.

    ``{answer}`` must appear once, at the very end. ``{virtual}`` (the soft prompt)
    may appear at most once; other names are filled from each example's dict.
    """

    def __init__(self, template: str) -> None:
        if not isinstance(template, str):
            raise ValueError(f"template must be a string, got {type(template).__name__}")
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
        if names.count(VIRTUAL) > 1:
            raise ValueError(f"template may contain the virtual-token slot {{virtual}} at most once, got {template!r}")
        if any(n == "" or not n.isidentifier() for n in names):
            raise ValueError(f"template slots must be names such as {{story}}, got {names} in {template!r}")
        self.template = template
        self.has_virtual = VIRTUAL in names
        self.fields = [n for n in names if n not in (VIRTUAL, ANSWER)]
        head = template[: -len("{answer}")]
        if self.has_virtual:
            self._before, self._after = head.split("{virtual}")
        else:
            self._before, self._after = "", head

    def __repr__(self) -> str:
        return f"PromptTemplate({self.template!r})"

    def parts(self, example: dict, answer: str | None = None) -> tuple[str, str, str]:
        """The text before the virtual tokens, the text after them, and the answer text.

        A space that ends the prompt moves to the start of the answer, as GPT-2's
        tokenizer attaches spaces to the following word.
        """
        missing = [f for f in self.fields if f not in example]
        if missing:
            raise ValueError(f"example is missing the fields {missing} that {self!r} needs")
        answer = example[ANSWER] if answer is None else answer
        values = {f: example[f] for f in self.fields}
        before = self._before.format(**values)
        after = self._after.format(**values)
        space = ""
        if after.endswith(" "):
            after, space = after[:-1], " "
        return before, after, space + str(answer)

    def text(self, example: dict, answer: str | None = None) -> str:
        """The prompt as plain text with its answer (no virtual tokens): for few-shot demonstrations."""
        before, after, ans = self.parts(example, answer)
        return before + after + ans


def few_shot_template(template: PromptTemplate, demonstrations: list[dict], separator: str = "\n") -> PromptTemplate:
    """``template`` with solved ``demonstrations`` written in front of it (in-context learning, chapter 4)."""
    if template.has_virtual:
        raise ValueError("few-shot prompts are plain text: use a template without {virtual}")
    if not demonstrations:
        raise ValueError("few_shot_template needs at least one demonstration")
    shots = separator.join(template.text(d) for d in demonstrations) + separator
    return PromptTemplate(shots.replace("{", "{{").replace("}", "}}") + template.template)


@dataclass
class Encoded:
    """One example as token ids: before the virtual tokens, after them, and the answer."""

    before: list[int]
    after: list[int]
    answer: list[int]


def encode(tokenizer, template: PromptTemplate, example: dict, answer: str | None = None) -> Encoded:
    """Token ids of the three parts of ``template`` filled with ``example`` (and ``answer``, default its own)."""
    before, after, ans = template.parts(example, answer)
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] if t else [] for t in (before, after, ans)]
    if not ids[2]:
        raise ValueError(f"the answer of {example!r} encodes to no tokens")
    return Encoded(*ids)


# --------------------------------------------------------------------------- the soft prompt
class SoftPrompt(torch.nn.Module):
    """``n_virtual`` trainable embeddings in front of a frozen causal language model (chapter 10).

    ``init_ids`` starts the virtual tokens as the embeddings of those real tokens
    (Lester et al. 2021 found this better than random vectors); otherwise they start
    as the embeddings of ``n_virtual`` tokens drawn at random from the vocabulary.
    Every weight of ``model`` gets ``requires_grad = False``.
    """

    def __init__(self, model, n_virtual: int, init_ids: list[int] | None = None, seed: int = 0) -> None:
        super().__init__()
        if not isinstance(n_virtual, int) or isinstance(n_virtual, bool) or n_virtual < 1:
            raise ValueError(f"n_virtual (the number of virtual tokens) must be an int >= 1, got {n_virtual!r}; "
                             "for no soft prompt, use a template without {virtual} and the bare model")
        embed = model.get_input_embeddings()
        if init_ids is None:
            g = torch.Generator().manual_seed(seed)
            init_ids = torch.randint(0, embed.num_embeddings, (n_virtual,), generator=g).tolist()
        if len(init_ids) != n_virtual:
            raise ValueError(f"init_ids must hold n_virtual = {n_virtual} token ids, got {len(init_ids)}")
        for p in model.parameters():
            p.requires_grad_(False)
        self.model = model
        ids = torch.tensor(init_ids, dtype=torch.long, device=embed.weight.device)
        self.prompt = torch.nn.Parameter(embed(ids).detach().clone())  # (n_virtual, d_model)

    @property
    def n_virtual(self) -> int:
        return self.prompt.shape[0]

    def trainable_parameters(self) -> int:
        """Number of trained values: n_virtual x d_model."""
        return self.prompt.numel()


def _parts(module) -> tuple[torch.nn.Module, torch.Tensor | None]:
    """(language model, soft prompt or None) for a SoftPrompt or a bare model."""
    if isinstance(module, SoftPrompt):
        return module.model, module.prompt
    return module, None


def trainable_parameters(module) -> int:
    """Number of values that training changes: the soft prompt, or every weight of a bare model."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def build_inputs(module, template: PromptTemplate, encoded: list[Encoded]) -> dict[str, torch.Tensor]:
    """``inputs_embeds`` (B, T, d), ``attention_mask`` (B, T) and answer-only ``labels`` (B, T), right-padded.

    Each row is embed(before) + soft prompt + embed(after) + embed(answer); labels
    are -100 except at the answer's tokens.
    """
    model, prompt = _parts(module)
    if template.has_virtual and prompt is None:
        raise ValueError("this template has a {virtual} slot: wrap the model in SoftPrompt")
    if prompt is not None and not template.has_virtual:
        raise ValueError("a SoftPrompt needs a template with a {virtual} slot to say where the virtual tokens go")
    if not encoded:
        raise ValueError("need at least one example")
    embed = model.get_input_embeddings()
    device = embed.weight.device
    rows, labels = [], []
    for e in encoded:
        def emb(ids: list[int]) -> torch.Tensor:
            return embed(torch.tensor(ids, dtype=torch.long, device=device))
        pieces = [emb(e.before)] + ([prompt] if prompt is not None else []) + [emb(e.after), emb(e.answer)]
        row = torch.cat(pieces)  # (T_i, d)
        n_prompt = row.shape[0] - len(e.answer)
        rows.append(row)
        labels.append([-100] * n_prompt + list(e.answer))
    length = max(r.shape[0] for r in rows)
    window = getattr(model.config, "n_positions", None)
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


def answer_log_probs(module, template: PromptTemplate, encoded: list[Encoded]) -> torch.Tensor:
    """Summed log-probability (nats) of each example's answer tokens given its prompt; shape (B,)."""
    model, _ = _parts(module)
    batch = build_inputs(module, template, encoded)
    logits = model(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"]).logits
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)
    target = batch["labels"][:, 1:]
    keep = target != -100
    picked = logp.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * keep).sum(dim=1)


def answer_loss(module, template: PromptTemplate, encoded: list[Encoded]) -> torch.Tensor:
    """Mean cross-entropy (nats per answer token) of the answers: the prompt's tokens carry no loss."""
    model, _ = _parts(module)
    batch = build_inputs(module, template, encoded)
    logits = model(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"]).logits
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), batch["labels"][:, 1:].flatten(),
                           ignore_index=-100)


@torch.no_grad()
def predict(module, tokenizer, template: PromptTemplate, examples: list[dict], candidates: list[str],
            batch_size: int = 64) -> list[str]:
    """For each example, the candidate answer with the highest log-probability (rank classification)."""
    if not candidates:
        raise ValueError("candidates must list at least one possible answer")
    module.eval()
    pairs = [encode(tokenizer, template, ex, c) for ex in examples for c in candidates]
    scores = torch.cat([answer_log_probs(module, template, pairs[i: i + batch_size]).cpu()
                        for i in range(0, len(pairs), batch_size)])
    best = scores.view(len(examples), len(candidates)).argmax(dim=1)
    return [candidates[i] for i in best.tolist()]


def accuracy(module, tokenizer, template: PromptTemplate, examples: list[dict], candidates: list[str]) -> float:
    """Share of ``examples`` whose ``answer`` is the top-scoring candidate (0 to 1)."""
    if not examples:
        raise ValueError("need at least one example to measure accuracy")
    preds = predict(module, tokenizer, template, examples, candidates)
    return sum(p == ex[ANSWER] for p, ex in zip(preds, examples)) / len(examples)


def train_answers(module, tokenizer, template: PromptTemplate, train: list[dict], val: list[dict],
                  cfg: TrainConfig, device: torch.device | str | None = None, progress: bool = False) -> TrainLog:
    """Train ``module`` on the answer-only loss with :func:`llmlab.train.train_loop`; return its log.

    Pass a :class:`SoftPrompt` for prompt tuning (only the virtual tokens learn) or
    a bare model for full fine-tuning (every weight learns). Batches of
    ``cfg.batch_size`` examples are drawn with the loop's seeded generator;
    ``cfg.seq_len`` is unused (examples keep their own lengths). Losses are in nats
    per answer token; the validation loss is on the first ``cfg.eval_batches *
    cfg.batch_size`` validation examples.
    """
    if not train or not val:
        raise ValueError("need at least one training and one validation example")
    device = torch.device(device) if device is not None else next(module.parameters()).device
    module.to(device)
    train_enc = [encode(tokenizer, template, ex) for ex in train]
    val_enc = [encode(tokenizer, template, ex) for ex in val[: cfg.eval_batches * cfg.batch_size]]

    def batch_loss(g: torch.Generator) -> tuple[torch.Tensor, int]:
        idx = torch.randint(0, len(train_enc), (cfg.batch_size,), generator=g).tolist()
        chosen = [train_enc[i] for i in idx]
        return answer_loss(module, template, chosen), sum(len(e.answer) for e in chosen)

    @torch.no_grad()
    def val_loss() -> float:
        module.eval()
        losses = [answer_loss(module, template, val_enc[i: i + cfg.batch_size]).item()
                  for i in range(0, len(val_enc), cfg.batch_size)]
        module.train()
        return sum(losses) / len(losses)

    return train_loop(module, cfg, device, batch_loss, val_loss, progress=progress)


# --------------------------------------------------------------------------- a task on the story world
def make_task(n: int, seed: int = 0) -> list[dict]:
    """``n`` examples of a small task on the story world of :mod:`llmlab.data` (chapter 10).

    Each example is a two-sentence story and a question about it (see the chapter).
    """
    from . import data

    if not isinstance(n, int) or n <= 0:
        raise ValueError(f"n must be a positive int, got {n!r}")
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
