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

Where the virtual tokens, the task's fields and the answer go is a
:class:`llmlab.prompt_template.PromptTemplate`; :func:`llmlab.prompt_template.encode`
turns an example into token ids. The model is fed ``inputs_embeds`` instead of
``input_ids``: the embeddings of the template's text with the virtual tokens spliced
in (:func:`build_inputs`). :class:`MultiTaskPrompts` keeps one set of virtual tokens
per task in front of one shared frozen model, and :func:`train_tasks` tunes them
together on mixed batches.

For comparison the module also fine-tunes weights with the same answer-only loss
(:func:`train_answers` on the bare model, :func:`unfreeze_last_layers`).
:mod:`llmlab.prompt_tuning_real` holds the chapter's grid on the real model.
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F

from . import _checks
from .prompt_template import ANSWER, Encoded, PromptTemplate, _ids, encode
from .train import TrainConfig, TrainLog, train_loop

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
