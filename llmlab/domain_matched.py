"""Chapter 9's seeded comparison at matched bytes of text, with an extended tokenizer.

The first comparison of chapter 9 (:func:`llmlab.domain.record_runs`) gives every run the same
number of *tokens*. Tokens are not text: a domain tokenizer packs more bytes of domain text
into a token, so at equal tokens its run reads more of the domain. Here every run reads the
same number of **bytes** of training text, each arm is trained with several seeds, and the
held-out losses are kept **per document**, so two arms can be compared with a paired test on
the same documents.

The arms (:data:`ARMS`) are the choices a practitioner has for a small model and a new domain:

- continue the general model with its own tokenizer;
- continue it with its tokenizer **extended** by whole domain words
  (:func:`extend_vocabulary`): the new rows of the embedding start at the mean of the rows
  of the pieces the old tokenizer cut the word into (:func:`extend_model`), a common
  initialisation (Hewitt 2021, "Initializing new word embeddings for pretrained language
  models");
- train from scratch with a tokenizer fitted to the training text;

on domain text alone and, for the first and the last, on BloombergGPT's mix.

- :func:`doc_losses`: nats and bytes of each held-out document, scored on its own;
- :func:`bytes_per_token`: the bytes of text one token of a training stream holds;
- :func:`run_arm`: one seeded run of one arm; ``python -m llmlab.records.domain_matched``
  records every arm and seed (:data:`SEEDS`).
"""

from __future__ import annotations

import random
import re
from collections import Counter

import numpy as np
import torch

from . import _checks, data, tokenization, zoo
from .domain import (
    RECORD_CONFIG,
    bloomberg_domain_share,
    encode_documents,
    fresh_model,
    hold_out_phrases,
    load_domain_corpus,
    mix_by_tokens,
    mix_tokenizer,
    token_share,
)
from .train import TrainConfig, causal_lm_loss, random_batch, train_loop

#: (name, start, tokenizer, domain share in tokens) of every arm; start is "continued"
#: (``stories-1m``) or "scratch" (:func:`llmlab.domain.fresh_model`); tokenizer is "story"
#: (the story BPE), "extended" (story BPE plus :data:`NEW_TOKENS` domain words) or "own" (a
#: BPE of 1,024 entries fitted to the run's training text, as chapter 9's first record does).
ARMS: tuple[tuple[str, str, str, str], ...] = (
    ("continued, story BPE", "continued", "story", "domain"),
    ("continued, extended BPE", "continued", "extended", "domain"),
    ("from scratch, domain BPE", "scratch", "own", "domain"),
    ("continued, story BPE, mix", "continued", "story", "mix"),
    ("from scratch, mix BPE, mix", "scratch", "own", "mix"),
)
SEEDS: tuple[int, ...] = (0, 1, 2)
#: whole domain words added to the story BPE by the extended arm
NEW_TOKENS = 256
#: bytes of training text every run reads: what chapter 9's continued run on domain text
#: reads in its schedule (RECORD_CONFIG's steps of tokens, at the story BPE's bytes per
#: token on the domain training documents), rounded
TOKENS_PER_STEP = RECORD_CONFIG["batch_size"] * RECORD_CONFIG["seq_len"]
EVAL_DOCS = 150
#: documents of each held-out set scored for the curve during training (all of them at the end)
CURVE_DOCS = 50
_WORD = re.compile(r" ?[A-Za-z][A-Za-z'-]+")


def _check_docs(docs, what: str = "docs") -> list[str]:
    docs = _checks.strings(what, docs)
    if not docs or any(not d.strip() for d in docs):
        raise ValueError(f"{what} must be a non-empty list of non-empty texts")
    return docs


def bytes_per_token(tokenizer, docs: list[str]) -> float:
    """UTF-8 bytes of ``docs`` per token of their stream (one end-of-text token after each
    document, and one byte for it, as :func:`llmlab.domain.nats_per_byte` counts)."""
    _checks.tokenizer("tokenizer", tokenizer)
    docs = _check_docs(docs)
    ids = tokenizer(docs, add_special_tokens=False)["input_ids"]
    return sum(len(d.encode("utf-8")) + 1 for d in docs) / sum(len(i) + 1 for i in ids)


@torch.no_grad()
def doc_losses(model, tokenizer, docs: list[str], seq_len: int = 128,
               batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """``(nats, bytes)``, one entry per document: each scored on its own as end-of-text,
    the document, end-of-text (windows of ``seq_len`` tokens, the last token of a window the
    first input of the next), every token after the first predicted once.

    ``nats.sum() / bytes.sum()`` is the set's nats per byte; ``nats / bytes`` is each
    document's, which two models share, so their difference can be tested paired. Bytes count
    the UTF-8 bytes of the document plus one for its end-of-text. Close to
    :func:`llmlab.domain.nats_per_byte`, which lets context run on from one document into the
    next, and equal to it for a single document that fits one window.
    """
    import torch.nn.functional as F

    _checks.model("model", model)
    _checks.tokenizer("tokenizer", tokenizer)
    docs = _check_docs(docs)
    seq_len = _checks.positive_int("seq_len", seq_len)
    batch_size = _checks.positive_int("batch_size", batch_size)
    window = getattr(getattr(model, "config", None), "n_positions", None)
    if isinstance(window, int) and seq_len > window:
        raise ValueError(f"seq_len ({seq_len}) is longer than the model's context window ({window} tokens)")
    eos = tokenizer.eos_token_id
    windows, owners = [], []
    for i, ids in enumerate(tokenizer(docs, add_special_tokens=False)["input_ids"]):
        stream = [eos, *ids, eos]
        for s in range(0, len(stream) - 1, seq_len):
            windows.append(stream[s:s + seq_len + 1])
            owners.append(i)
    nats = np.zeros(len(docs))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    for b in range(0, len(windows), batch_size):
        part = windows[b:b + batch_size]
        width = max(len(w) for w in part)
        padded = torch.full((len(part), width), -100, dtype=torch.long)
        for j, w in enumerate(part):
            padded[j, :len(w)] = torch.tensor(w)
        x, y = padded[:, :-1].clamp(min=0), padded[:, 1:]
        logits = model(x.to(device)).logits.float()
        loss = F.cross_entropy(logits.transpose(1, 2), y.to(device), ignore_index=-100, reduction="none")
        for j, total in enumerate(loss.sum(dim=1).tolist()):
            nats[owners[b + j]] += total
    model.train(was_training)
    return nats, np.array([len(d.encode("utf-8")) + 1 for d in docs], dtype=float)


def extension_words(tokenizer, docs: list[str], n: int = NEW_TOKENS, other_texts: list[str] | None = None) -> list[str]:
    """The ``n`` words of ``docs`` whose own token would save the most tokens: count times
    (pieces - 1) under ``tokenizer``, ties broken alphabetically.

    Only words after a space are candidates, with that space (as a byte-level BPE sees them):
    an added token is matched anywhere in the text, so a word without its space ("The") would
    also match inside other words ("They"). For the same reason a word is skipped when it is
    the start of a longer word, letter after it, anywhere in ``docs`` or ``other_texts`` (the
    other text the tokenizer will read): " flow" would cut " flowers" into " flow" and "ers".
    Words the tokenizer already holds whole are never chosen."""
    _checks.tokenizer("tokenizer", tokenizer)
    docs = _check_docs(docs)
    n = _checks.positive_int("n", n)
    others = [] if other_texts is None else _check_docs(other_texts, "other_texts")
    counts = Counter(w for d in docs for w in _WORD.findall(d) if w.startswith(" "))
    pieces = {w: len(tokenizer(w, add_special_tokens=False)["input_ids"]) for w in counts}
    saving = sorted(((counts[w] * (pieces[w] - 1), w) for w in counts if pieces[w] > 1), key=lambda t: (-t[0], t[1]))
    blob = "\n".join(docs + others)
    chosen = []
    for _, w in saving:
        if re.search(re.escape(w) + "[A-Za-z]", blob):
            continue  # the start of a longer word somewhere: its token would split that word
        chosen.append(w)
        if len(chosen) == n:
            break
    return chosen


def extend_vocabulary(tokenizer, words: list[str]):
    """A copy of ``tokenizer`` with each of ``words`` added as one token (an added token, matched
    in the text before the BPE runs, as ``tokenizer.add_tokens`` does; a word also matches at the
    start of a longer one, " revenue" in " revenues"). Returns the copy."""
    import copy

    from tokenizers import AddedToken

    _checks.tokenizer("tokenizer", tokenizer)
    words = _check_docs(words, "words")
    if len(set(words)) != len(words):
        raise ValueError("words must not repeat")
    extended = copy.deepcopy(tokenizer)
    added = extended.add_tokens([AddedToken(w, single_word=False, lstrip=False, rstrip=False, normalized=False)
                                 for w in words])
    if added != len(words):
        raise ValueError(f"only {added} of {len(words)} words were new to the tokenizer")
    return extended


def extend_model(model, old_tokenizer, new_tokenizer) -> int:
    """Grow ``model``'s (tied) embedding to ``new_tokenizer``'s vocabulary, in place: each new
    row starts at the mean of the rows of the pieces ``old_tokenizer`` cuts its token into.
    Returns the number of rows added."""
    _checks.model("model", model)
    _checks.tokenizer("old_tokenizer", old_tokenizer)
    _checks.tokenizer("new_tokenizer", new_tokenizer)
    old, new = len(old_tokenizer), len(new_tokenizer)
    if new <= old:
        raise ValueError(f"new_tokenizer must have more entries than old_tokenizer ({new} <= {old})")
    emb = model.get_input_embeddings().weight
    if emb.shape[0] != old:
        raise ValueError(f"model has {emb.shape[0]} embedding rows, old_tokenizer {old} entries")
    words = new_tokenizer.convert_ids_to_tokens(list(range(old, new)))
    means = torch.stack([emb.detach()[old_tokenizer(w, add_special_tokens=False)["input_ids"]].mean(0)
                         for w in words])
    model.resize_token_embeddings(new, mean_resizing=False)
    with torch.no_grad():
        model.get_input_embeddings().weight[old:] = means
    model.config.vocab_size = new
    return new - old


def extension_words_for_stories(tokenizer, n: int = NEW_TOKENS) -> list[str]:
    """The words the extended arm adds to the story BPE: :func:`extension_words` of the domain
    training documents (the chapter's examples held out), checked against every other text the
    runs read or are scored on (domain validation, the stories, the English passages)."""
    from .domain import english_passages

    _checks.tokenizer("tokenizer", tokenizer)
    n = _checks.positive_int("n", n)
    kept, _ = hold_out_phrases(load_domain_corpus("train"))
    others = (load_domain_corpus("validation") + data.load_corpus("train") + data.load_corpus("validation")
              + english_passages())
    return extension_words(tokenizer, kept, n, other_texts=others)


def setup(arm: str, seed: int = 0):
    """``(model, tokenizer)`` at the start of one run of ``arm`` (a name of :data:`ARMS`)."""
    names = [a[0] for a in ARMS]
    if arm not in names:
        raise ValueError(f"unknown arm {arm!r}; arms: {names}")
    seed = _checks.non_negative_int("seed", seed)
    _, start, tok_kind, mix = ARMS[names.index(arm)]
    domain_train = load_domain_corpus("train")
    if start == "continued":
        model, tokenizer = zoo.load("stories-1m", device="cpu")
        if tok_kind == "extended":
            extended = extend_vocabulary(tokenizer, extension_words_for_stories(tokenizer))
            extend_model(model, tokenizer, extended)
            tokenizer = extended
        return model, tokenizer
    if mix == "domain":
        kept, _ = hold_out_phrases(domain_train)
        tokenizer = tokenization.train_tokenizer(kept, 1024)
    else:
        tokenizer = mix_tokenizer(domain_train, data.load_corpus("train"))
    return fresh_model(tokenizer, seed=seed), tokenizer


def byte_budget() -> int:
    """Bytes of training text every run reads: chapter 9's continued run on domain text, its
    steps of tokens at the story BPE's bytes per token on the domain training documents."""
    _, tokenizer = zoo.load("stories-1m", device="cpu")
    return round(RECORD_CONFIG["steps"] * TOKENS_PER_STEP * bytes_per_token(tokenizer, load_domain_corpus("train")))


def held_out_texts() -> dict[str, list[str]]:
    """The held-out documents every run is scored on: domain, stories, English passages."""
    from .domain import english_passages

    return {"domain": load_domain_corpus("validation")[:EVAL_DOCS],
            "general": data.load_corpus("validation")[:EVAL_DOCS], "english": english_passages()}


def run_arm(arm: str, seed: int, budget_bytes: int, eval_every: int = 50, progress: bool = False) -> dict:
    """One seeded run of ``arm`` that reads ``budget_bytes`` bytes of training text.

    The training stream is drawn as in chapter 9's first record (:func:`llmlab.domain.mix_by_tokens`,
    seeded), its bytes per token measured, and the steps set so that steps x tokens per step x
    bytes per token is the budget (warm-up a tenth, cosine to the end, chapter 9's learning rate
    and batch). ``seed`` draws the mix, orders the batches and, from scratch, the weights. Returns
    the run's row: steps, bytes per token, the per-document held-out ``nats`` and ``bytes`` at
    the end, and the losses of the first :data:`CURVE_DOCS` documents of each set every
    ``eval_every`` steps (``curve``)."""
    import time

    budget_bytes = _checks.positive_int("budget_bytes", budget_bytes)
    eval_every = _checks.positive_int("eval_every", eval_every)
    started = time.perf_counter()
    model, tokenizer = setup(arm, seed)
    _, _, _, mix = ARMS[[a[0] for a in ARMS].index(arm)]
    share = 1.0 if mix == "domain" else bloomberg_domain_share()
    domain_train, general_train = load_domain_corpus("train"), data.load_corpus("train")
    # draw a stream larger than the run reads to measure its bytes per token, fix the steps,
    # then draw (same seed) the tokens the run reads, as chapter 9's first record does
    dom, gen = mix_by_tokens(tokenizer, domain_train, general_train, share, budget_bytes, seed=seed)
    bpt = bytes_per_token(tokenizer, dom + gen)
    steps = max(1, round(budget_bytes / (bpt * TOKENS_PER_STEP)))
    dom, gen = mix_by_tokens(tokenizer, domain_train, general_train, share, steps * TOKENS_PER_STEP, seed=seed)
    docs = dom + gen
    random.Random(seed).shuffle(docs)
    cfg = TrainConfig(**{**RECORD_CONFIG, "steps": steps, "warmup_steps": max(1, steps // 10),
                         "eval_every": eval_every, "seed": seed})
    train_ids = encode_documents(tokenizer, docs)
    held_out = held_out_texts()

    def losses() -> dict:
        return {name: doc_losses(model, tokenizer, texts, cfg.seq_len) for name, texts in held_out.items()}

    def summary(scored: dict) -> dict:
        return {k: float(n.sum() / b.sum()) for k, (n, b) in scored.items()}

    def curve_point() -> dict:
        return summary({name: doc_losses(model, tokenizer, texts[:CURVE_DOCS], cfg.seq_len)
                        for name, texts in held_out.items()})

    first = losses()
    curve = [{"step": 0, **curve_point()}]
    seen = {"steps": 0}

    def batch_loss(g: torch.Generator):
        x, y = random_batch(train_ids, cfg.batch_size, cfg.seq_len, g)
        seen["steps"] += 1
        return causal_lm_loss(model, x, y), cfg.tokens_per_step

    def val_loss() -> float:
        row = curve_point()
        model.train()
        curve.append({"step": seen["steps"], **row})
        return row["domain"]

    train_loop(model, cfg, torch.device("cpu"), batch_loss, val_loss, progress=progress)
    last = losses()
    model.eval()
    return {"arm": arm, "seed": seed, "steps": steps, "tokens_per_step": TOKENS_PER_STEP,
            "bytes_per_token": round(bpt, 4), "bytes_read": round(steps * TOKENS_PER_STEP * bpt),
            "vocab": len(tokenizer), "n_params": sum(p.numel() for p in model.parameters()),
            "token_share": round(token_share(tokenizer, dom, gen), 4),
            "before": summary(first), "after": summary(last),
            "nats": {k: [round(float(v), 4) for v in n] for k, (n, _) in last.items()},
            "bytes": {k: [int(v) for v in b] for k, (_, b) in last.items()},
            "curve": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in curve],
            "seconds": round(time.perf_counter() - started, 1)}
