"""Distillation: a small draft model trained on SmolLM2's own outputs (chapter 14).

Hinton et al. (2015) train a small *student* to match a large *teacher*'s output
distribution (its "soft targets") rather than the one right token. Chapter 14 uses the
student as the *draft* of speculative decoding: it proposes the next few tokens of
SmolLM2-135M-Instruct, which the teacher then checks in one pass. A draft is only useful
if it is much cheaper than the teacher and agrees with it often.

The recipe, one command (``python -m llmlab.distill build smollm2-draft``):

1. :func:`prompts`: chat requests written from templates and subjects (no outside text);
   a fifth of the subjects are held out (:func:`held_out_prompts`) for measuring the draft;
2. :func:`teacher_outputs`: the teacher's greedy answers to the training prompts, as token
   ids (the text the draft will be asked to predict at serving time);
3. :func:`draft_vocabulary`: the ``V - 1`` token ids the teacher writes most often, plus one
   slot for "any other token". The draft's output layer covers only these, which keeps it
   small and fast (a frequency-ranked draft vocabulary, as in FR-Spec, Zhao et al. 2025);
   the teacher still checks every token against its full vocabulary, so the served output
   is unchanged;
4. :func:`train_draft`: a small Llama-architecture decoder, its embeddings started from a
   projection of the teacher's own, trained to minimise the KL divergence from the
   teacher's next-token distribution (restricted to the draft vocabulary) at every
   position of the teacher's answers.

The draft is an ordinary transformers ``LlamaForCausalLM`` over the draft vocabulary;
``draft_vocab.json`` beside it maps its ids to SmolLM2's. :class:`Draft` wraps the two so
that it reads and writes SmolLM2 token ids.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import _checks

SUBJECTS = [
    "the moon", "bread", "volcanoes", "honey bees", "rain", "the ocean", "trains", "chess", "coffee", "maps",
    "libraries", "bicycles", "clouds", "music", "gardens", "the heart", "salt", "glass", "forests", "rivers",
    "birds", "bridges", "the sun", "snow", "computers", "paper", "soap", "owls", "mountains", "deserts",
    "penguins", "cheese", "clocks", "kites", "lighthouses", "whales", "tea", "spiders", "rainbows", "thunder",
    "islands", "farms", "apples", "dogs", "cats", "horses", "museums", "boats", "candles", "umbrellas",
    "planets", "stars", "caves", "wind", "batteries", "magnets", "telescopes", "rice", "coral reefs", "frogs",
    "sleep", "exercise", "friendship", "cooking", "painting", "recycling", "electricity", "fire", "ice",
    "dinosaurs", "butterflies", "ants", "wolves", "elephants", "sharks", "tomatoes", "potatoes", "chocolate",
    "the internet", "email", "photography", "football", "swimming", "running", "reading", "writing", "maths",
    "history", "languages", "weather", "seasons", "earthquakes", "tides", "wheels", "bread ovens", "windmills",
    "solar panels", "vaccines", "teeth", "bones", "muscles", "the brain", "lungs", "plants", "seeds", "trees",
    "flowers", "mushrooms", "bacteria", "volunteering", "saving money", "budgets", "markets", "cities",
    "villages", "roads", "airplanes", "rockets", "satellites", "robots", "calendars", "festivals", "games",
    "puzzles", "jokes", "stories", "poems", "songs", "dance", "theatre", "films", "schools", "teachers",
]
TASKS = [
    "Explain {} to a ten-year-old.",
    "Write three short facts about {}.",
    "Write a short story about {}.",
    "What are {} used for?",
    "Describe {} in two sentences.",
    "Write a short poem about {}.",
    "Give two tips for someone learning about {}.",
    "Why do people care about {}?",
    "What is one common mistake people make about {}?",
    "Write a friendly note to a friend about {}.",
]
HELD_OUT_EVERY = 5  # every fifth subject is held out: the draft never sees its prompts


def _rows(name: str, rows) -> list[dict]:
    """``rows`` if it is a list of the teacher's answers (dicts with an ``"answer"`` list of token ids)."""
    if not isinstance(rows, (list, tuple)) or not all(
            isinstance(r, dict) and isinstance(r.get("answer"), (list, tuple)) for r in rows):
        raise _checks.ArgumentTypeError(f"{name} must be a list of dicts with an 'answer' list of token ids "
                                        f"(teacher_outputs), got {type(rows).__name__} {_checks._shown(rows)}")
    return list(rows)


def _vocab_ids(name: str, vocab_ids, high: int | None = None) -> list[int]:
    """``vocab_ids`` if it is a non-empty list of distinct token ids (each below ``high`` when given)."""
    if not isinstance(vocab_ids, (list, tuple)) or not all(
            isinstance(t, int) and not isinstance(t, bool) for t in vocab_ids):
        raise _checks.ArgumentTypeError(f"{name} must be a list of token ids (draft_vocabulary), got "
                                        f"{type(vocab_ids).__name__} {_checks._shown(vocab_ids)}")
    if not vocab_ids or len(set(vocab_ids)) != len(vocab_ids) or min(vocab_ids) < 0 or (
            high is not None and max(vocab_ids) >= high):
        bound = f" below {high}" if high is not None else ""
        raise ValueError(f"{name} must be a non-empty list of distinct token ids >= 0{bound}, got "
                         f"{_checks._shown(vocab_ids)}")
    return list(vocab_ids)


def _draft_config(name: str, cfg) -> DraftConfig:
    if not isinstance(cfg, DraftConfig):
        raise _checks.ArgumentTypeError(f"{name} must be a distill.DraftConfig, got {type(cfg).__name__} "
                                        f"{_checks._shown(cfg)}")
    return cfg


def prompts(split: str = "train") -> list[str]:
    """The chat requests of ``split`` (``"train"`` or ``"held-out"``): every task template with every subject of the split."""
    if split not in ("train", "held-out"):
        raise ValueError(f"split must be 'train' or 'held-out', got {split!r}")
    held = split == "held-out"
    subjects = [s for i, s in enumerate(SUBJECTS) if (i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1) == held]
    return [task.format(subject) for subject in subjects for task in TASKS]


def held_out_prompts() -> list[str]:
    """The prompts whose subjects the draft never saw (:func:`prompts` with ``"held-out"``)."""
    return prompts("held-out")


@torch.no_grad()
def teacher_outputs(model, tokenizer, requests: list[str], max_new_tokens: int = 96, batch_size: int = 16,
                    progress: bool = False) -> list[dict]:
    """The teacher's greedy answers to ``requests``: one dict per request with the prompt's token ids
    (``prompt``, chat template applied) and the answer's (``answer``, ending at the end-of-turn token
    when the teacher wrote it within ``max_new_tokens``)."""
    from .chat import chat_batch

    _checks.model("model", model)
    _checks.tokenizer("tokenizer", tokenizer)
    requests = _checks.strings("requests", requests)
    _checks.positive_int("max_new_tokens", max_new_tokens)
    _checks.positive_int("batch_size", batch_size)
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    out = []
    start_time = time.perf_counter()
    for start in range(0, len(requests), batch_size):
        ids, mask = chat_batch(tokenizer, requests[start:start + batch_size])
        gen = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                             eos_token_id=eos, pad_token_id=pad)
        for row in range(ids.size(0)):
            prompt = ids[row][mask[row].bool()].tolist()
            answer = gen[row, ids.size(1):].tolist()
            if eos in answer:
                answer = answer[:answer.index(eos) + 1]
            out.append({"prompt": prompt, "answer": answer})
        if progress:
            done = min(start + batch_size, len(requests))
            print(f"  teacher answers {done}/{len(requests)} ({time.perf_counter() - start_time:.0f} s)", flush=True)
    return out


def draft_vocabulary(rows: list[dict], size: int) -> list[int]:
    """The ``size - 1`` token ids that occur most often in the teacher's answers (``rows`` from
    :func:`teacher_outputs`), most frequent first; ties go to the smaller id. The draft's last id,
    ``size - 1``, stands for every other token."""
    from collections import Counter

    rows = _rows("rows", rows)
    size = _checks.integer("size", size, low=2)
    counts = Counter(t for row in rows for t in row["answer"])
    ranked = sorted(counts, key=lambda t: (-counts[t], t))
    return ranked[:size - 1]


def coverage(rows: list[dict], vocab_ids: list[int]) -> float:
    """Share of the answer tokens in ``rows`` that are in ``vocab_ids`` (the rest the draft cannot propose)."""
    rows = _rows("rows", rows)
    keep = set(_vocab_ids("vocab_ids", vocab_ids))
    tokens = [t for row in rows for t in row["answer"]]
    if not tokens:
        raise ValueError("rows hold no answer tokens")
    return sum(t in keep for t in tokens) / len(tokens)


@torch.no_grad()
def soft_targets(teacher, rows: list[dict], vocab_ids: list[int], top: int = 16, batch_size: int = 8,
                 progress: bool = False) -> list[dict]:
    """The teacher's next-token distribution at every answer position of ``rows``, over the draft vocabulary.

    For each row: ``ids`` (prompt + answer, the teacher's token ids), ``start`` (the first position
    whose next token is an answer token) and, per position from ``start``, the ``top`` most likely
    draft-vocabulary entries (``targets``, draft ids) with their probabilities (``probs``), the
    probability of all tokens outside the vocabulary going to the "other" entry first.
    """
    _checks.model("teacher", teacher)
    if not isinstance(getattr(getattr(teacher, "config", None), "vocab_size", None), int):
        raise _checks.ArgumentTypeError(f"teacher must be a transformers causal LM (zoo.load), got "
                                        f"{type(teacher).__name__}")
    rows = _rows("rows", rows)
    vocab_ids = _vocab_ids("vocab_ids", vocab_ids, teacher.config.vocab_size)
    _checks.integer("top", top, low=1, high=len(vocab_ids) + 1)
    _checks.positive_int("batch_size", batch_size)
    index = torch.full((teacher.config.vocab_size,), len(vocab_ids), dtype=torch.long)
    index[torch.tensor(vocab_ids)] = torch.arange(len(vocab_ids))
    out = []
    t0 = time.perf_counter()
    for start in range(0, len(rows), batch_size):
        batch = rows[start:start + batch_size]
        seqs = [r["prompt"] + r["answer"] for r in batch]
        width = max(len(s) for s in seqs)
        ids = torch.zeros(len(seqs), width, dtype=torch.long)
        mask = torch.zeros(len(seqs), width, dtype=torch.long)
        for i, s in enumerate(seqs):  # right padding: positions count from 0 in every row
            ids[i, :len(s)] = torch.tensor(s)
            mask[i, :len(s)] = 1
        probs = teacher(input_ids=ids, attention_mask=mask).logits.float().softmax(-1)
        grouped = torch.zeros(len(seqs), width, len(vocab_ids) + 1)
        grouped.index_add_(2, index, probs)  # every token outside the vocabulary into the last entry
        for i, r in enumerate(batch):
            first = len(r["prompt"]) - 1
            last = len(seqs[i]) - 1
            p, t = grouped[i, first:last].topk(top, dim=-1)
            out.append({"ids": seqs[i], "start": first, "targets": t.to(torch.int16 if len(vocab_ids) < 32767
                                                                           else torch.int32),
                        "probs": p.half()})
        if progress:
            print(f"  soft targets {min(start + batch_size, len(rows))}/{len(rows)} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return out


@dataclass
class DraftConfig:
    """The draft's shape and training (sizes in tokens and entries; lr for AdamW)."""

    vocab_size: int = 4096
    hidden_size: int = 256
    intermediate_size: int = 768
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 1024
    epochs: int = 12
    batch_size: int = 16
    lr: float = 3e-3
    warmup_steps: int = 20
    seed: int = 0

    def __post_init__(self):
        _checks.integer("vocab_size", self.vocab_size, low=2)
        for name in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                     "num_key_value_heads", "max_position_embeddings", "epochs", "batch_size"):
            _checks.positive_int(name, getattr(self, name))
        if self.hidden_size % self.num_attention_heads or self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(f"num_attention_heads must divide hidden_size and num_key_value_heads must divide "
                             f"num_attention_heads, got {self.hidden_size}, {self.num_attention_heads} and "
                             f"{self.num_key_value_heads}")
        _checks.positive("lr", self.lr)
        _checks.non_negative_int("warmup_steps", self.warmup_steps)
        _checks.integer("seed", self.seed)

    def llama_config(self):
        from transformers import LlamaConfig

        other = self.vocab_size - 1
        return LlamaConfig(vocab_size=self.vocab_size, hidden_size=self.hidden_size,
                           intermediate_size=self.intermediate_size, num_hidden_layers=self.num_hidden_layers,
                           num_attention_heads=self.num_attention_heads,
                           num_key_value_heads=self.num_key_value_heads,
                           max_position_embeddings=self.max_position_embeddings, rope_theta=100000.0,
                           tie_word_embeddings=True, bos_token_id=other, eos_token_id=other, pad_token_id=other)


def init_draft(cfg: DraftConfig, teacher, vocab_ids: list[int]):
    """A fresh draft whose embeddings are the teacher's, for the draft vocabulary, projected onto their
    ``hidden_size`` principal directions (a start that already groups similar tokens)."""
    from transformers import LlamaForCausalLM

    cfg = _draft_config("cfg", cfg)
    _checks.model("teacher", teacher)
    if not callable(getattr(teacher, "get_input_embeddings", None)):
        raise _checks.ArgumentTypeError(f"teacher must be a transformers causal LM (zoo.load), got "
                                        f"{type(teacher).__name__}")
    vocab_ids = _vocab_ids("vocab_ids", vocab_ids, teacher.get_input_embeddings().num_embeddings)
    if len(vocab_ids) > cfg.vocab_size - 1:
        raise ValueError(f"vocab_ids must list at most cfg.vocab_size - 1 = {cfg.vocab_size - 1} ids (the last "
                         f"entry is 'another token'), got {len(vocab_ids)}")
    torch.manual_seed(cfg.seed)
    model = LlamaForCausalLM(cfg.llama_config())
    with torch.no_grad():
        rows = teacher.get_input_embeddings().weight[torch.tensor(vocab_ids)].float()
        centred = rows - rows.mean(0)
        q = min(cfg.hidden_size, *centred.shape)
        _, _, v = torch.pca_lowrank(centred, q=q, center=False)
        projected = centred @ v[:, :q]
        projected = projected / projected.std() * model.model.embed_tokens.weight.std()
        model.model.embed_tokens.weight[:len(vocab_ids), :q] = projected
    return model


def train_draft(model, targets: list[dict], vocab_ids: list[int], cfg: DraftConfig,
                progress: bool = False) -> list[dict]:
    """Distil: minimise the cross-entropy of the draft's predictions against the teacher's soft targets
    (its top entries, renormalised), position by position over the answers. Returns the loss log."""
    _checks.model("model", model)
    if not isinstance(targets, (list, tuple)) or not all(
            isinstance(r, dict) and {"ids", "start", "targets", "probs"} <= r.keys() for r in targets):
        raise _checks.ArgumentTypeError(f"targets must be a list of soft_targets rows (dicts with ids, start, "
                                        f"targets, probs), got {type(targets).__name__} {_checks._shown(targets)}")
    if not targets:
        raise ValueError("targets must be a non-empty list of soft_targets rows, got an empty list")
    vocab_ids = _vocab_ids("vocab_ids", vocab_ids)
    cfg = _draft_config("cfg", cfg)
    index = {t: i for i, t in enumerate(vocab_ids)}
    other = len(vocab_ids)
    g = torch.Generator().manual_seed(cfg.seed)
    steps_per_epoch = math.ceil(len(targets) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.0)

    def lr_at(step: int) -> float:
        if step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / cfg.warmup_steps
        frac = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
        return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))

    log = []
    model.train()
    t0 = time.perf_counter()
    step = 0
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(targets), generator=g).tolist()
        for b in range(steps_per_epoch):
            batch = [targets[i] for i in order[b * cfg.batch_size:(b + 1) * cfg.batch_size]]
            width = max(len(r["ids"]) for r in batch)
            ids = torch.full((len(batch), width), other, dtype=torch.long)
            for i, r in enumerate(batch):
                ids[i, :len(r["ids"])] = torch.tensor([index.get(t, other) for t in r["ids"]])
            logp = model(input_ids=ids).logits.float().log_softmax(-1)
            loss_sum, count = 0.0, 0
            for i, r in enumerate(batch):
                n = r["targets"].size(0)
                p = r["probs"].float()
                p = p / p.sum(-1, keepdim=True)
                rows = logp[i, r["start"]:r["start"] + n]
                loss_sum = loss_sum - (p * rows.gather(-1, r["targets"].long())).sum()
                count += n
            loss = loss_sum / count
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            log.append({"step": step, "epoch": epoch, "loss": loss.item(), "seconds": time.perf_counter() - t0})
            if progress and step % 20 == 0:
                print(f"  step {step}/{total} loss {loss.item():.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
            step += 1
    model.eval()
    return log


class Draft(torch.nn.Module):
    """The distilled draft in SmolLM2's token ids, ready for :func:`llmlab.serving.speculative_generate`.

    ``model`` scores the draft vocabulary; ``vocab_ids`` lists SmolLM2's id of each of its entries
    but the last ("another token"). Called like a transformers model on SmolLM2 ids, it returns
    scores over SmolLM2's whole vocabulary (``-inf`` outside the draft's); ``decoder`` is the
    :class:`llmlab.serving.Decoder` that speculative decoding runs.
    """

    def __init__(self, model, vocab_ids: list[int], full_vocab: int = 49152):
        super().__init__()
        from .serving import Decoder

        _checks.model("model", model)
        full_vocab = _checks.positive_int("full_vocab", full_vocab)
        _vocab_ids("vocab_ids", vocab_ids, full_vocab)
        self.model = model
        self.vocab_ids = list(vocab_ids)
        self.full_vocab = full_vocab
        self.decoder = Decoder(model, vocab_ids=self.vocab_ids)
        index = torch.full((full_vocab,), len(self.vocab_ids), dtype=torch.long)
        index[torch.tensor(self.vocab_ids)] = torch.arange(len(self.vocab_ids))
        self.register_buffer("index", index, persistent=False)

    def forward(self, input_ids: torch.Tensor, **kwargs):
        from types import SimpleNamespace

        own = self.model(input_ids=self.index[input_ids], **kwargs).logits[..., :-1]
        full = own.new_full((*own.shape[:-1], self.full_vocab), float("-inf"))
        full[..., torch.tensor(self.vocab_ids)] = own
        return SimpleNamespace(logits=full)

    @property
    def config(self):
        return self.model.config


TEACHER_TOKENS = 96   # new tokens per teacher answer
TOP = 16              # soft-target entries kept per position
HELD_OUT_AGREEMENT = 60  # held-out prompts whose teacher answers measure the draft's agreement


@torch.no_grad()
def agreement(draft_model, rows: list[dict], vocab_ids: list[int]) -> dict:
    """How often the draft's top choice is the teacher's greedy token, position by position over the teacher's
    answers in ``rows`` (teacher forcing): ``{"agreement", "positions", "covered"}``, ``covered`` the share of
    answer tokens inside the draft vocabulary (the most the draft can agree)."""
    _checks.model("draft_model", draft_model)
    rows = _rows("rows", rows)
    vocab_ids = _vocab_ids("vocab_ids", vocab_ids)
    if not any(r["answer"] for r in rows):
        raise ValueError("rows hold no answer tokens: agreement needs the teacher's answers (teacher_outputs)")
    index = {t: i for i, t in enumerate(vocab_ids)}
    other = len(vocab_ids)
    hits = n = covered = 0
    for r in rows:
        seq = r["prompt"] + r["answer"]
        ids = torch.tensor([[index.get(t, other) for t in seq]])
        best = draft_model(input_ids=ids).logits[0].argmax(-1)
        first = len(r["prompt"]) - 1
        for pos, token in enumerate(r["answer"]):
            choice = int(best[first + pos])
            hits += choice < other and vocab_ids[choice] == token
            covered += token in index
            n += 1
    return {"agreement": hits / n, "positions": n, "covered": covered / n}


def build_draft(recipe, out: Path, progress: bool = True) -> Path:
    """Run the draft's recipe (see the module docstring) and save it into ``out``; returns ``out``.

    The teacher's answers are kept in the cache folder (:func:`llmlab.zoo.cache_dir`) and reused by
    a later build with the same settings, since generating them is most of the time.
    """
    import csv
    from dataclasses import asdict

    from . import recipes, zoo

    if not isinstance(recipe, recipes.Recipe):
        raise _checks.ArgumentTypeError(f"recipe must be a recipes.Recipe (recipes.RECIPES['smollm2-draft']), got "
                                        f"{type(recipe).__name__} {_checks._shown(recipe)}")
    out = Path(_checks.path("out", out))
    cfg = DraftConfig(vocab_size=recipe.vocab_size, seed=recipe.seed, **recipe.model, **recipe.train)
    teacher, tokenizer = zoo.load(zoo.REAL_MODEL, device="cpu")
    answers, teacher_seconds = {}, {}
    for split in ("train", "held-out"):
        requests = prompts(split)[:None if split == "train" else HELD_OUT_AGREEMENT]
        cached = zoo.cache_dir() / "distill" / f"teacher-{split}-{len(requests)}x{TEACHER_TOKENS}.json"
        if cached.exists():  # {"seconds": how long generating took, "rows": [...]}
            kept = json.loads(cached.read_text())
            answers[split], teacher_seconds[split] = kept["rows"], kept["seconds"]
        else:
            t0 = time.perf_counter()
            answers[split] = teacher_outputs(teacher, tokenizer, requests, TEACHER_TOKENS, progress=progress)
            teacher_seconds[split] = time.perf_counter() - t0
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_text(json.dumps({"seconds": teacher_seconds[split], "rows": answers[split]}))
    vocab = draft_vocabulary(answers["train"], cfg.vocab_size)
    t1 = time.perf_counter()
    targets = soft_targets(teacher, answers["train"], vocab, TOP, progress=progress)
    target_seconds = time.perf_counter() - t1
    model = init_draft(cfg, teacher, vocab)
    t2 = time.perf_counter()
    log = train_draft(model, targets, vocab, cfg, progress=progress)
    train_seconds = time.perf_counter() - t2
    held = agreement(model, answers["held-out"], vocab)
    out.mkdir(parents=True, exist_ok=True)
    model.to(torch.bfloat16).save_pretrained(out)  # bfloat16 on disk (half the bytes); computed in float32
    (out / "draft_vocab.json").write_text(json.dumps(vocab) + "\n")
    with open(out / "train_log.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["step", "epoch", "loss", "seconds"])
        writer.writeheader()
        writer.writerows({**row, "loss": round(row["loss"], 5), "seconds": round(row["seconds"], 2)} for row in log)
    meta = {
        "recipe": asdict(recipe), "draft_config": asdict(cfg), "teacher": zoo.REAL_MODEL,
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "train_prompts": len(answers["train"]), "train_answer_tokens": sum(len(r["answer"]) for r in answers["train"]),
        "teacher_tokens": TEACHER_TOKENS, "soft_target_entries": TOP,
        "train_coverage": coverage(answers["train"], vocab),
        "held_out_prompts": len(answers["held-out"]), "held_out_agreement": held,
        "teacher_answer_seconds": {k: round(v, 1) for k, v in teacher_seconds.items()}, "soft_target_seconds": round(target_seconds, 1),
        "train_seconds": round(train_seconds, 1), "final_loss": log[-1]["loss"],
        "torch_version": torch.__version__, "threads": torch.get_num_threads(), "device": "cpu",
    }
    (out / "recipe.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out


def load_draft(name: str = "smollm2-draft") -> Draft:
    """The bundled draft (float32 weights) as a :class:`Draft`."""
    from transformers import AutoModelForCausalLM

    from . import zoo

    folder = zoo.model_dir(name)
    vocab_file = Path(folder) / "draft_vocab.json"
    if not vocab_file.exists():
        raise ValueError(f"{name!r} is not a draft model (no draft_vocab.json in {folder})")
    with zoo._quiet_loading():
        model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, use_safetensors=True,
                                                     dtype=torch.float32).eval()
    return Draft(model, json.loads(vocab_file.read_text()))


def main(argv: list[str] | None = None) -> int:
    """``python -m llmlab.distill build smollm2-draft [--out FOLDER]``: run the draft's recipe (see the module's doc)."""
    import argparse

    from . import recipes

    names = sorted(n for n, r in recipes.RECIPES.items() if r.corpus == "distill")
    parser = argparse.ArgumentParser(prog="python -m llmlab.distill", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="distil a draft from its recipe")
    b.add_argument("name", choices=names)
    b.add_argument("--out", help="output folder (default: the bundled folder inside llmlab/models)")
    args = parser.parse_args(argv)
    recipe = recipes.RECIPES[args.name]
    out = build_draft(recipe, Path(args.out) if args.out else recipes.MODELS_DIR / args.name)
    print(f"saved {args.name} to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
