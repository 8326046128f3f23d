"""Benchmark contamination: finding test items in training text, and what a leak does (chapter 11).

A benchmark score means something only if the model has not seen the test items while it
trained. This module does two things with the project's frozen benchmark
(:func:`llmlab.evaluation.load_benchmark`):

- :func:`overlap_report` looks for each item's question in a training text by verbatim
  token n-gram overlap, with chapter 3's hashing (:func:`llmlab.memorization.ngram_hashes`,
  :func:`llmlab.memorization.ngram_overlap`): the check that model reports run on their
  training data (GPT-3's 13-gram check, Brown et al. 2020);
- :func:`leak_experiment` plants some items, with their answers, in a small training text,
  fine-tunes a copy of a model on it for a few steps, and scores the planted items and as
  many clean ones before and after, in the letter or the text format: the accuracy a leak
  buys, and the :func:`margin` of each right answer over the best wrong one (a leak that
  teaches the items raises it; one that teaches only the format does not).

:func:`item_text` writes an item as it would appear in leaked training data, and
:func:`summary` turns the record ``llmlab/results/evaluation_contamination.json``
(``python -m llmlab.records.evaluation_contamination``) into the numbers the chapter states.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from . import _checks, stats
from .evaluation import FORMATS, LETTERS, _check_mc_item, mc_prompt, score_multiple_choice
from .memorization import ngram_hashes, ngram_overlap

#: an item is flagged when at least this share of its question's token n-grams is in the text
FLAG_SHARE = 0.5
#: the n-gram length (tokens) of the overlap check
NGRAM = 8
#: the blocks :func:`leak_experiment` trains by default: the last four (the rest stay frozen)
TRAIN_LAST_BLOCKS = 4
#: tokens per training row in :func:`leak_experiment`
SEQ_LEN = 96


def item_text(item: dict, format: str = "letter", with_answer: bool = True) -> str:
    """The text of a multiple-choice ``item`` as it would stand in leaked training data.

    ``"letter"``: the prompt of :func:`llmlab.evaluation.mc_prompt` (the question, the
    lettered options, ``"Answer:"``), then ``" "`` and the right letter. ``"text"``:
    ``"Question: ...\\nAnswer:"``, then ``" "`` and the right answer's text. With
    ``with_answer=False`` the text stops after ``"Answer:"``. (``"chat"`` needs a
    tokenizer's template and is not a format leaks come in; it is refused.)
    """
    item = _check_mc_item(item)
    if format not in ("letter", "text"):
        raise ValueError(f"format must be 'letter' or 'text' (of {list(FORMATS)}), got {format!r}")
    if not isinstance(with_answer, bool):
        raise _checks.ArgumentTypeError(f"with_answer must be a bool, got {type(with_answer).__name__}")
    context, choices, delimiter = mc_prompt(item, format)
    return context + (delimiter + choices[item["answer"]] if with_answer else "")


def _check_items(items, what: str = "items") -> list[dict]:
    if isinstance(items, dict) or not isinstance(items, (list, tuple)):
        raise _checks.ArgumentTypeError(f"{what} must be a list of item dicts (as load_benchmark('mc') "
                                        f"returns), got {type(items).__name__}")
    if not items:
        raise ValueError(f"{what} is empty: pass at least one multiple-choice item")
    for k, item in enumerate(items):
        _check_mc_item(item, f"{what}[{k}]")
        if "id" not in item:
            raise ValueError(f"{what}[{k}] has no 'id': every item needs one to be reported")
    return list(items)


def _encode(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def overlap_report(items: list[dict], training_texts: list[str], tokenizer, n: int = NGRAM,
                   threshold: float = FLAG_SHARE) -> list[dict]:
    """For each item, the share of its question's token ``n``-grams found in ``training_texts``.

    The question alone is checked, not the whole prompt: a leak copies the question in
    whatever format it came in (lettered options, the question and its answer on a web
    page, a quiz), while the options and ``"Answer:"`` belong to one prompt format and
    would miss the other leaks. Each training text is one document (no n-gram spans two).
    One record per item, in order: ``{"id", "found", "total", "share", "flagged",
    "short"}``: ``found`` of the question's ``total`` n-grams occur in the texts,
    ``share = found / total``, ``flagged`` when ``share >= threshold``. A question shorter
    than ``n`` tokens has no n-gram: it is reported as ``short`` with ``total == 0``,
    ``share`` None and ``flagged`` False (it cannot be checked at this ``n``; use a
    smaller one). ``n`` is in tokens of ``tokenizer``; ``threshold`` a fraction in (0, 1].
    """
    items = _check_items(items)
    texts = _checks.strings("training_texts", training_texts)
    _checks.tokenizer("tokenizer", tokenizer)
    n = _checks.positive_int("n", n)
    threshold = _checks.fraction("threshold", threshold, low_open=True)
    reference = ngram_hashes([_encode(tokenizer, t) for t in texts], n)
    rows = []
    for item in items:
        ids = _encode(tokenizer, item["question"].strip())
        if len(ids) < n:
            rows.append({"id": item["id"], "found": 0, "total": 0, "share": None, "flagged": False,
                         "short": True})
            continue
        found, total = ngram_overlap(ids, reference, n)
        share = found / total
        rows.append({"id": item["id"], "found": found, "total": total, "share": share,
                     "flagged": share >= threshold, "short": False})
    return rows


# --------------------------------------------------------------------------- scoring
def _letter_token_ids(tokenizer, context: str, n_choices: int) -> list[int] | None:
    """The one token of each ``" A"``, ``" B"``... after ``context``, or None if any is not one token."""
    ctx = _encode(tokenizer, context)
    out = []
    for letter in LETTERS[:n_choices]:
        whole = _encode(tokenizer, context + " " + letter)
        if len(whole) != len(ctx) + 1 or whole[:len(ctx)] != ctx:
            return None
        out.append(whole[-1])
    return out


@torch.no_grad()
def letter_logprobs(model: torch.nn.Module, tokenizer, items: list[dict], batch_size: int = 16) -> list[list[float]]:
    """The log-probability (nats) of each option's letter after each item's letter prompt.

    The same numbers as :func:`llmlab.evaluation.score_multiple_choice` in the ``"letter"``
    format (its ``logprobs``), computed for ``batch_size`` items per forward pass: every
    letter is one token read at the prompt's last position, so one row per
    item suffices (left-padded, with explicit positions, so that only the last position's
    logits are computed). An item whose letters are not single tokens after its prompt is scored
    by ``score_multiple_choice`` itself. The model runs in eval mode, restored afterwards.
    """
    items = _check_items(items)
    _checks.model("model", model)
    _checks.tokenizer("tokenizer", tokenizer)
    batch_size = _checks.positive_int("batch_size", batch_size)
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if getattr(tokenizer, "pad_token_id", None) is not None else 0
    out: list[list[float] | None] = [None] * len(items)
    fast = []
    for k, item in enumerate(items):
        context = mc_prompt(item, "letter")[0]
        letters = _letter_token_ids(tokenizer, context, len(item["choices"]))
        if letters is None:
            out[k] = score_multiple_choice(model, tokenizer, [item], "letter")[0]["logprobs"]
        else:
            fast.append((k, _encode(tokenizer, context), letters))
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(fast), batch_size):
            chunk = fast[start:start + batch_size]
            length = max(len(ids) for _, ids, _ in chunk)
            ids = torch.full((len(chunk), length), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), length), dtype=torch.long)
            for r, (_, row, _) in enumerate(chunk):  # left padding: every prompt ends at the last position
                ids[r, length - len(row):] = torch.tensor(row)
                mask[r, length - len(row):] = 1
            positions = (mask.cumsum(-1) - 1).clamp(min=0)  # each row counts from its first real token
            # only the last position's logits are needed: the head runs once per row, not per token
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device),
                           position_ids=positions.to(device), logits_to_keep=1).logits  # (B, 1, V)
            for r, (k, row, letters) in enumerate(chunk):
                logp = torch.log_softmax(logits[r, -1].float(), dim=-1).cpu()  # (V,)
                out[k] = [logp[t].item() for t in letters]
    finally:
        model.train(was_training)
    return out  # type: ignore[return-value]


def margin(scores: Sequence[float], answer: int) -> float:
    """The right choice's score minus the best wrong choice's (nats): positive when the right one wins.

    A leak that teaches the item moves this; one that teaches only the format (every
    choice's log-probability rising alike) does not.
    """
    scores = [float(s) for s in scores]
    if len(scores) < 2 or isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(scores):
        raise ValueError(f"margin needs at least 2 scores and an answer index among them, got {len(scores)} "
                         f"scores and answer {answer!r}")
    return scores[answer] - max(s for i, s in enumerate(scores) if i != answer)


def _right(items: list[dict], logprobs: list[list[float]]) -> tuple[list[bool], list[float], list[float]]:
    """Whether the top choice is the right one (ties to the first, as np.argmax), its log-probability,
    and its :func:`margin` over the best wrong choice."""
    right, lp, gap = [], [], []
    for item, scores in zip(items, logprobs):
        chosen = max(range(len(scores)), key=lambda i: (scores[i], -i))
        right.append(chosen == item["answer"])
        lp.append(scores[item["answer"]])
        gap.append(margin(scores, item["answer"]))
    return right, lp, gap


def choice_logprobs(model: torch.nn.Module, tokenizer, items: list[dict], format: str = "letter") -> list[list[float]]:
    """Each option's summed log-probability (nats) for each item in ``format``.

    ``"letter"``: :func:`letter_logprobs` (batched over items); ``"text"``:
    :func:`llmlab.evaluation.score_multiple_choice`'s ``logprobs`` (the options' full text
    after ``"Question: ...\nAnswer:"``, every option of an item in one batch).
    """
    if format not in ("letter", "text"):
        raise ValueError(f"format must be 'letter' or 'text', got {format!r}")
    if format == "letter":
        return letter_logprobs(model, tokenizer, items)
    return [r["logprobs"] for r in score_multiple_choice(model, tokenizer, _check_items(items), "text")]


# --------------------------------------------------------------------------- the leak
def _blocks(model: torch.nn.Module) -> torch.nn.ModuleList:
    for path in ("model.layers", "transformer.h"):  # Llama-style, GPT-2-style
        obj = model
        for name in path.split("."):
            obj = getattr(obj, name, None)
        if isinstance(obj, torch.nn.ModuleList):
            return obj
    raise ValueError("model has neither model.layers (Llama) nor transformer.h (GPT-2): cannot find its blocks")


def _final_norm(model: torch.nn.Module) -> torch.nn.Module | None:
    for path in ("model.norm", "transformer.ln_f"):
        obj = model
        for name in path.split("."):
            obj = getattr(obj, name, None)
        if isinstance(obj, torch.nn.Module):
            return obj
    return None


def _rows(tokenizer, docs: list[str], seq_len: int, eos: int | None) -> list[list[int]]:
    """Pack documents into rows of at most ``seq_len`` tokens; a document is never split
    unless it is longer than a row on its own (a background passage), then it is cut."""
    pieces = []
    for doc in docs:
        ids = _encode(tokenizer, doc) + ([eos] if eos is not None else [])
        pieces += [ids[i:i + seq_len] for i in range(0, len(ids), seq_len)]
    rows, row = [], []
    for piece in pieces:
        if row and len(row) + len(piece) > seq_len:
            rows.append(row)
            row = []
        row = row + piece
    if row:
        rows.append(row)
    return rows


def leak_experiment(model: torch.nn.Module, tokenizer, items: list[dict], leaked_ids: Sequence[str], *,
                    background_texts: list[str], steps: int, lr: float, seed: int, batch_size: int,
                    control_ids: Sequence[str] | None = None, train_last_blocks: int | None = TRAIN_LAST_BLOCKS,
                    seq_len: int = SEQ_LEN, format: str = "letter") -> dict:
    """Leak some benchmark items into training text, fine-tune a copy of ``model``, score before and after.

    The training text is the leaked items (:func:`item_text` in ``format``: the letter
    prompt and the right letter, or the question and the right answer's text) shuffled among ``background_texts`` (documents of ordinary text), packed into
    rows of at most ``seq_len`` tokens (an item is never split across rows). A deep copy
    of ``model`` trains for ``steps`` steps of ``batch_size`` rows (the rows reshuffled
    at each pass) with AdamW at a constant ``lr`` (no weight decay), next-token
    cross-entropy on every token; only its last ``train_last_blocks`` blocks and the final
    norm train (``None``: every parameter; the tied embedding stays frozen otherwise).
    ``model`` itself is not changed.

    The controls are ``control_ids`` or, by default, as many clean items as leaked, drawn
    (with ``seed``) from the same subjects in the same numbers. Both groups are scored in
    the same ``format`` (:func:`choice_logprobs`) before and after. Returns
    ``{"leaked_ids", "control_ids", "leaked": {...}, "control": {...}, "losses",
    "training_text", "trained", "n_rows", "format", "seconds"}``; each group holds per item
    ``before`` and ``after`` (right or wrong), ``logprob_before``, ``logprob_after``
    (nats, the right choice) and ``margin_before``, ``margin_after`` (:func:`margin`:
    the right choice over the best wrong one, nats); ``losses`` the training loss per
    step (nats per token).
    Deterministic for a given ``seed`` on one machine.
    """
    started = time.perf_counter()
    _checks.model("model", model)
    _checks.tokenizer("tokenizer", tokenizer)
    items = _check_items(items)
    by_id = {item["id"]: item for item in items}
    leaked_ids = _checks.strings("leaked_ids", leaked_ids)
    unknown = [i for i in leaked_ids if i not in by_id]
    if unknown:
        raise ValueError(f"leaked_ids must name items of items; unknown: {unknown[:5]}")
    if len(set(leaked_ids)) != len(leaked_ids):
        raise ValueError("leaked_ids must not repeat an id")
    background = _checks.strings("background_texts", background_texts)
    steps = _checks.positive_int("steps", steps)
    lr = _checks.positive("lr", lr)
    seed = _checks.non_negative_int("seed", seed)
    batch_size = _checks.positive_int("batch_size", batch_size)
    seq_len = _checks.integer("seq_len", seq_len, 8)
    if format not in ("letter", "text"):
        raise ValueError(f"format must be 'letter' or 'text', got {format!r}")
    blocks = _blocks(model)
    if train_last_blocks is not None:
        train_last_blocks = _checks.integer("train_last_blocks", train_last_blocks, 1, len(blocks))
    rng = random.Random(seed)
    if control_ids is None:
        leaked_set = set(leaked_ids)
        control_ids = []
        for subject in sorted({by_id[i].get("subject") for i in leaked_ids}, key=str):
            want = sum(by_id[i].get("subject") == subject for i in leaked_ids)
            pool = [it["id"] for it in items if it.get("subject") == subject and it["id"] not in leaked_set]
            if len(pool) < want:
                raise ValueError(f"subject {subject!r} has {len(pool)} clean items, fewer than the {want} leaked")
            control_ids += rng.sample(pool, want)
    else:
        control_ids = _checks.strings("control_ids", control_ids)
        bad = [i for i in control_ids if i not in by_id or i in set(leaked_ids)]
        if bad:
            raise ValueError(f"control_ids must name items of items that are not leaked; bad: {bad[:5]}")
    leaked = [by_id[i] for i in leaked_ids]
    controls = [by_id[i] for i in control_ids]

    docs = [item_text(item, format) for item in leaked] + background
    rng.shuffle(docs)
    eos = getattr(tokenizer, "eos_token_id", None)
    rows = _rows(tokenizer, docs, seq_len, eos)

    trained = copy.deepcopy(model)
    for p in trained.parameters():
        p.requires_grad_(train_last_blocks is None)
    if train_last_blocks is not None:
        parts = list(_blocks(trained)[-train_last_blocks:]) + [m for m in [_final_norm(trained)] if m is not None]
        for part in parts:
            for p in part.parameters():
                p.requires_grad_(True)
        what = f"the last {train_last_blocks} of {len(blocks)} blocks and the final norm"
    else:
        what = "every parameter"
    params = [p for p in trained.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)

    before = {name: _right(group, choice_logprobs(trained, tokenizer, group, format))
              for name, group in (("leaked", leaked), ("control", controls))}
    device = next(trained.parameters()).device
    pad = tokenizer.pad_token_id if getattr(tokenizer, "pad_token_id", None) is not None else 0
    gen = torch.Generator().manual_seed(seed)
    trained.train()
    with torch.random.fork_rng(devices=[]):  # dropout, if the model has any, draws from this seed only
        torch.manual_seed(seed)
        losses = _train(trained, opt, rows, steps, batch_size, pad, device, gen)
    trained.eval()
    after = {name: _right(group, choice_logprobs(trained, tokenizer, group, format))
             for name, group in (("leaked", leaked), ("control", controls))}
    del trained, opt

    def group(name: str) -> dict:
        return {"before": before[name][0], "after": after[name][0],
                "logprob_before": before[name][1], "logprob_after": after[name][1],
                "margin_before": before[name][2], "margin_after": after[name][2]}

    return {"leaked_ids": list(leaked_ids), "control_ids": list(control_ids), "leaked": group("leaked"),
            "control": group("control"), "losses": losses, "training_text": "\n\n".join(docs), "trained": what,
            "n_rows": len(rows), "format": format, "seconds": time.perf_counter() - started}


def _train(trained: torch.nn.Module, opt: torch.optim.Optimizer, rows: list[list[int]], steps: int,
           batch_size: int, pad: int, device: torch.device, gen: torch.Generator) -> list[float]:
    """``steps`` AdamW steps of ``batch_size`` rows (reshuffled each pass); the loss per step (nats per token)."""
    order: list[int] = []
    losses = []
    for _ in range(steps):
        batch = []
        while len(batch) < batch_size:
            if not order:
                order = torch.randperm(len(rows), generator=gen).tolist()
            batch.append(rows[order.pop()])
        length = max(len(r) for r in batch)
        ids = torch.full((len(batch), length), pad, dtype=torch.long)
        targets = torch.full((len(batch), length), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), length), dtype=torch.long)
        for r, row in enumerate(batch):
            ids[r, :len(row)] = torch.tensor(row)
            targets[r, :len(row)] = torch.tensor(row)
            mask[r, :len(row)] = 1
        logits = trained(input_ids=ids.to(device), attention_mask=mask.to(device)).logits  # (B, L, V)
        loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), targets[:, 1:].flatten().to(device),
                               ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


# --------------------------------------------------------------------------- the record, summarised
def summary(record: dict) -> dict:
    """The numbers chapter 11 states from the contamination record, computed from its per-item rows.

    Per seed (``out["seeds"]``, one dict per seed) and pooled over seeds: the accuracy
    (fraction) of the leaked and the control items before and after the leak, and the
    n-gram check's flags; per seed also each group's verdict (a handful of items: read it
    as what one seed can separate); pooled, the paired verdict of after against before
    for each group (:func:`llmlab.stats.compare`, exact McNemar) and the accuracy change
    with its interval; the n-gram check's flags (leaked flagged of leaked, clean flagged of
    clean, summed over seeds; per seed also how many were too short to check); the project
    corpora's flags and the number of questions too short to check; the record's seconds. And the
    mean rise of the right choice's log-probability (``leaked_gain_nats``,
    ``control_gain_nats``) with the unpaired verdict of leaked against control
    (``gain_verdict``, :func:`llmlab.stats.compare_unpaired`: different items).

    The item-specific measures, planted against control (unpaired, pooled over seeds):
    ``specific_verdict`` compares the per-item change in right or wrong (after minus
    before: -1, 0 or 1); ``margin_gain_leaked``, ``margin_gain_control`` are the mean rise
    of the :func:`margin` (nats) and ``margin_verdict`` compares those rises (None, with
    the gains, for a record without margins). A rise that every choice shares (format
    learning) leaves the margin where it was. ``distinct_leaked``, ``distinct_control``
    count distinct question ids over the seeds (a question can be drawn by two seeds), and
    ``clean_distinct_flagged`` the distinct non-planted ids flagged in any seed.
    """
    if not isinstance(record, dict) or "seeds" not in record:
        raise _checks.ArgumentTypeError("record must be the dict that llmlab.records.evaluation_contamination"
                                        f".load() returns (with 'seeds'), got {type(record).__name__}")
    if not record["seeds"]:
        raise ValueError("record['seeds'] is empty: nothing to summarise")

    def acc(values) -> float:
        return sum(values) / len(values)

    out: dict = {"seeds": []}
    pooled = {g: {"before": [], "after": []} for g in ("leaked", "control")}
    flags = {"leaked_flagged": 0, "leaked": 0, "clean_flagged": 0, "clean": 0}
    for run in record["seeds"]:
        row = {"seed": run["seed"]}
        for g in ("leaked", "control"):
            for when in ("before", "after"):
                row[f"{g}_{when}"] = acc(run[g][when])
                pooled[g][when] += [bool(v) for v in run[g][when]]
            row[f"{g}_verdict"] = stats.compare([bool(v) for v in run[g]["after"]],
                                                [bool(v) for v in run[g]["before"]], names=("after", "before")).verdict
        leaked = set(run["leaked_ids"])
        for key in ("leaked", "clean"):
            mine = [r for r in run["overlap"] if (r["id"] in leaked) == (key == "leaked")]
            row[f"{key}_flagged"] = sum(bool(r["flagged"]) for r in mine)
            row[f"{key}_short"] = sum(r.get("total", 1) == 0 for r in mine)  # too short to check
            flags[key] += len(mine)
            flags[f"{key}_flagged"] += row[f"{key}_flagged"]
        out["seeds"].append(row)
    for g in ("leaked", "control"):
        out[f"{g}_before"], out[f"{g}_after"] = acc(pooled[g]["before"]), acc(pooled[g]["after"])
        comparison = stats.compare(pooled[g]["after"], pooled[g]["before"],
                                   names=("after training", "before training"))
        out[f"{g}_n"] = comparison.n
        out[f"{g}_verdict"] = comparison.verdict
        out[f"{g}_change"] = comparison.interval_text(scale=100, unit=" points")
    # the right letter's log-probability: its rise (nats) for leaked against clean items, unpaired
    gains = {g: [a - b for run in record["seeds"]
                 for a, b in zip(run[g]["logprob_after"], run[g]["logprob_before"])] for g in ("leaked", "control")}
    for g in gains:
        out[f"{g}_gain_nats"] = sum(gains[g]) / len(gains[g])
    out["gain_verdict"] = stats.compare_unpaired(gains["leaked"], gains["control"],
                                                 names=("leaked", "control")).verdict
    names = ("the planted questions", "the controls")
    changes = {g: [float(bool(a)) - float(bool(b)) for run in record["seeds"]
                   for a, b in zip(run[g]["after"], run[g]["before"])] for g in ("leaked", "control")}
    out["specific_verdict"] = stats.compare_unpaired(changes["leaked"], changes["control"], names=names).verdict
    if all("margin_after" in run[g] for run in record["seeds"] for g in ("leaked", "control")):
        rises = {g: [a - b for run in record["seeds"]
                     for a, b in zip(run[g]["margin_after"], run[g]["margin_before"])] for g in ("leaked", "control")}
        out["margin_gain_leaked"] = sum(rises["leaked"]) / len(rises["leaked"])
        out["margin_gain_control"] = sum(rises["control"]) / len(rises["control"])
        out["margin_verdict"] = stats.compare_unpaired(rises["leaked"], rises["control"], names=names).verdict
    else:  # a record made before margins were stored
        out["margin_gain_leaked"] = out["margin_gain_control"] = out["margin_verdict"] = None
    out["distinct_leaked"] = len({i for run in record["seeds"] for i in run["leaked_ids"]})
    out["distinct_control"] = len({i for run in record["seeds"] for i in run["control_ids"]})
    out["clean_distinct_flagged"] = len({r["id"] for run in record["seeds"] for r in run["overlap"]
                                         if r["flagged"] and r["id"] not in set(run["leaked_ids"])})
    out.update(flags)
    corpora = record["corpora_overlap"]
    out["corpora_flagged"] = corpora["flagged_any"]
    out["corpora_items"] = corpora["n_items"]
    out["short"] = corpora.get("short")  # questions shorter than the n-gram: no check possible
    out["seconds"] = record["seconds"]
    return out
