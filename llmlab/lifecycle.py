"""The working vocabulary of an LLM project, in code (chapter 1).

- :func:`fit_to_context` makes a prompt fit a context window, the way serving
  code does: keep the end (or the start) and drop the rest, leaving room for the
  tokens still to be generated.
- :func:`loss_by_context_length` measures what a model loses when the beginning of
  a text falls out of its window.
- :func:`draw_lifecycle` draws the project lifecycle: scope, select, adapt and
  align, deploy.
- :func:`measure_model_card` and :class:`ModelCard` write a model card for a
  bundled checkpoint, with its evaluation numbers measured when it is called.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from . import _checks

KEEP_CHOICES = ("end", "start")


# --------------------------------------------------------------------------- context window
def _check_window(context_window: int, max_new_tokens: int) -> None:
    if isinstance(context_window, bool) or not isinstance(context_window, int) or context_window < 1:
        raise ValueError(f"context_window must be an integer >= 1 (tokens), got {context_window!r}")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    if max_new_tokens >= context_window:
        raise ValueError(f"max_new_tokens ({max_new_tokens}) must be smaller than the context window "
                         f"({context_window}), to leave at least one token of prompt")


def fit_to_context(token_ids: list[int] | torch.Tensor, context_window: int, max_new_tokens: int = 0,
                   keep: str = "end") -> tuple[list[int], int]:
    """Cut a prompt so that it plus ``max_new_tokens`` fits in ``context_window`` tokens.

    ``keep="end"`` keeps the most recent tokens (what chat systems do with a long
    conversation); ``keep="start"`` keeps the beginning (what a tokenizer's
    ``truncation=True`` does by default). Returns the kept ids and how many
    tokens were dropped.
    """
    _check_window(context_window, max_new_tokens)
    if keep not in KEEP_CHOICES:
        raise ValueError(f"keep must be one of {KEEP_CHOICES}, got {keep!r}")
    if isinstance(token_ids, torch.Tensor):
        if token_ids.dim() != 1:
            raise ValueError(f"token_ids must be 1-D (one prompt), got shape {tuple(token_ids.shape)}")
        token_ids = token_ids.tolist()
    if isinstance(token_ids, (str, bytes)):
        raise _checks.ArgumentTypeError(f"token_ids must be a list of int token ids, got the str {token_ids!r}; "
                                        f"encode it first: tokenizer({token_ids!r})['input_ids']")
    if not isinstance(token_ids, (list, tuple)):
        raise _checks.ArgumentTypeError(f"token_ids must be a list of int token ids or a 1-D tensor, "
                                        f"got {type(token_ids).__name__}")
    for t in token_ids:
        _checks.non_negative_int("token_ids (each id)", t)
    ids = list(token_ids)
    budget = context_window - max_new_tokens
    dropped = max(0, len(ids) - budget)
    kept = ids[dropped:] if keep == "end" else ids[:budget]
    return kept, dropped


@torch.no_grad()
def loss_by_context_length(model: torch.nn.Module, stories_ids: list[list[int]], target_len: int,
                           context_lengths: list[int], start_id: int) -> dict[int, float]:
    """Mean loss (nats per token) on each story's last ``target_len`` tokens, when only the
    ``k`` tokens just before them are in the window, for each ``k`` in ``context_lengths``.

    Every window starts with ``start_id`` (the end-of-text token that precedes a
    story in training), so ``k = 0`` means "no context at all". Stories shorter
    than ``target_len + max(context_lengths)`` tokens are skipped, so every
    ``k`` scores the same targets.
    """
    _checks.model("model", model)
    if isinstance(target_len, bool) or not isinstance(target_len, int) or target_len < 1:
        raise ValueError(f"target_len must be an integer >= 1, got {target_len!r}")
    if not context_lengths or any(isinstance(k, bool) or not isinstance(k, int) or k < 0 for k in context_lengths):
        raise ValueError(f"context_lengths must be a non-empty list of integers >= 0, got {context_lengths!r}")
    window = _checks.context_window(model)
    if window is not None and 1 + max(context_lengths) + target_len > window:
        raise ValueError(f"1 + max(context_lengths) + target_len = {1 + max(context_lengths) + target_len} "
                         f"exceeds the model's context window ({window})")
    usable = [s for s in stories_ids if len(s) >= target_len + max(context_lengths)]
    if not usable:
        raise ValueError(f"no story has target_len + max(context_lengths) = {target_len + max(context_lengths)} tokens")
    device = next(model.parameters()).device
    out = {}
    for k in context_lengths:
        rows = torch.tensor([[start_id] + s[len(s) - target_len - k:] for s in usable], device=device)  # (N, 1+k+T)
        logits = model(input_ids=rows[:, :-1]).logits[:, -target_len:].float()  # (N, T, V)
        out[k] = F.cross_entropy(logits.flatten(0, 1), rows[:, -target_len:].flatten()).item()
    return out


# --------------------------------------------------------------------------- lifecycle diagram
LIFECYCLE = [
    ("Scope", ["define the use case", "one task or many?"]),
    ("Select", ["use an existing model", "or pre-train your own"]),
    ("Adapt and align", ["prompt engineering", "fine-tuning", "align: human feedback", "evaluate"]),
    ("Deploy", ["optimise for inference", "augment the model", "build the application"]),
]


def draw_lifecycle(ax=None):
    """Draw the four stages of an LLM project (scope, select, adapt and align, deploy)
    as boxes, with the loops back that real projects take. Returns the axes.

    The stages follow DeepLearning.AI and AWS, *Generative AI with LLMs* (2023), week 1,
    whose fourth stage is "application integration" (here "Deploy") and which places the
    iteration inside adapt and align; the arrow from deployment back to adaptation is
    this book's addition."""
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    from .plot import ACCENT, KEPT

    if ax is not None and not isinstance(ax, Axes):
        raise _checks.ArgumentTypeError(f"ax must be a matplotlib Axes or None (draw in a new figure), "
                                        f"got {type(ax).__name__} {ax!r:.60}")
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3.2))
    width, gap, height = 2.3, 0.45, 1.9
    for i, (stage, tasks) in enumerate(LIFECYCLE):
        x = i * (width + gap)
        ax.add_patch(FancyBboxPatch((x, 0), width, height, boxstyle="round,pad=0.05", facecolor="#ebf4ff",
                                    edgecolor=KEPT, linewidth=1.5))
        ax.text(x + width / 2, height - 0.25, f"{i + 1}. {stage}", ha="center", va="center", fontsize=10,
                fontweight="bold", color=KEPT)
        for j, task in enumerate(tasks):
            ax.text(x + 0.15, height - 0.65 - 0.33 * j, f"• {task}", ha="left", va="center", fontsize=8.5)
        if i < len(LIFECYCLE) - 1:
            ax.add_patch(FancyArrowPatch((x + width + 0.05, height / 2), (x + width + gap - 0.05, height / 2),
                                         arrowstyle="-|>", mutation_scale=14, color="black"))
    # adapting is iterative, and deployment feeds back into adaptation
    third = 2 * (width + gap)
    ax.add_patch(FancyArrowPatch((third + width * 0.8, height + 0.08), (third + width * 0.2, height + 0.08),
                                 connectionstyle="arc3,rad=0.6", arrowstyle="-|>", mutation_scale=12, color=ACCENT))
    ax.text(third + width / 2, height + 0.55, "iterate", ha="center", fontsize=8.5, color=ACCENT)
    fourth = 3 * (width + gap)
    ax.add_patch(FancyArrowPatch((fourth + width / 2, -0.08), (third + width / 2, -0.08),
                                 connectionstyle="arc3,rad=-0.35", arrowstyle="-|>", mutation_scale=12, color=ACCENT))
    ax.text((third + fourth + width) / 2, -0.75, "this book's addition: what deployment reveals goes back into adaptation",
            ha="center", fontsize=8.5, color=ACCENT)
    ax.set_xlim(-0.2, 4 * width + 3 * gap + 0.2)
    ax.set_ylim(-1.0, height + 0.9)
    ax.axis("off")
    return ax


# --------------------------------------------------------------------------- model card
_HERO = re.compile(r"\b(girl|boy)\b")


def hero_gender_counts(texts: list[str]) -> dict[str, int]:
    """How many texts introduce a girl or a boy in their first sentence (the corpus's hero)."""
    texts = _checks.strings("texts", texts, allow_empty=True)
    counts = {"girl": 0, "boy": 0}
    for text in texts:
        found = _HERO.search(text.split(".")[0].lower())
        if found:
            counts[found.group(1)] += 1
    return counts


@dataclass
class ModelCard:
    """A model card (Mitchell et al. 2019) for a bundled checkpoint; every number is measured or read from disk."""

    name: str
    description: str
    architecture: str
    n_parameters: int
    vocab_size: int
    context_window: int
    layers: int
    heads: int
    embedding_dim: int
    training: dict
    evaluation: dict = field(default_factory=dict)

    def to_markdown(self) -> str:
        t, e = self.training, self.evaluation
        return "\n".join([
            f"# Model card: `{self.name}`",
            "",
            "## Model details",
            f"- {self.description}",
            f"- Architecture: {self.architecture}, {self.layers} layers, {self.heads} attention heads, "
            f"{self.embedding_dim}-dimensional embeddings.",
            f"- Parameters: {self.n_parameters:,}. Vocabulary: {self.vocab_size:,} byte-level BPE tokens. "
            f"Context window: {self.context_window} tokens.",
            "- License: MIT (code and weights); training data CC0 1.0.",
            "",
            "## Intended uses",
            "- Teaching and experiments: every chapter of this book runs it on a laptop CPU.",
            "- Writing short, simple stories in the style of its training corpus.",
            "- Not for any real application: it knows nothing beyond the corpus's few hundred words.",
            "",
            "## Limitations, risks and biases",
            "- English only; it has never seen digits, code or facts about the world, so it cannot do "
            "arithmetic or answer questions. Asked to, it writes a story.",
            f"- It sees at most {self.context_window} tokens, and its stories can lose track of who is who: a name can change halfway through.",
            f"- It reproduces its corpus's patterns and can skew them: {e['girl_share_corpus']:.0%} of the "
            f"corpus's human heroes are girls; in {e['n_samples']} sampled stories, {e['girl_share_samples']:.0%} "
            f"(± {e['girl_share_se']:.0%}, one standard error).",
            "",
            "## Training data and procedure",
            f"- Data: {t['n_stories']:,} synthetic children's stories written by `llmlab/data.py` (CC0); "
            f"{t['train_tokens']:,} training tokens after tokenization.",
            f"- Procedure: {t['steps']:,} steps of AdamW, {t['tokens_seen']:,} tokens seen "
            f"(about {t['epochs']:.1f} passes over the data), learning rate {t['lr']} with warm-up and cosine decay, "
            f"in {t['train_seconds']:.0f} s on {t['device']}.",
            "- Rebuild: `python -m llmlab.zoo build " + self.name + "`.",
            "",
            "## Evaluation (measured when this card was written)",
            f"- Held-out perplexity: {e['val_perplexity']:.2f} on {e['val_tokens']:,} validation tokens "
            f"(chance: {self.vocab_size:,}).",
            f"- Known words at temperature {e['temperature']}: {e['known_words']:.1%} of the words in "
            f"{e['n_samples']} sampled stories occur in the training corpus.",
        ])


def measure_model_card(name: str = "stories-1m", n_samples: int = 256, max_new_tokens: int = 60,
                       temperature: float = 0.8, seed: int = 0) -> ModelCard:
    """Load a bundled decoder, measure its evaluation numbers now, and return its :class:`ModelCard`.

    Measures held-out perplexity (:func:`llmlab.metrics.perplexity`), the share of
    known words in ``n_samples`` sampled stories, and the girl/boy balance of the
    sampled heroes against the corpus's.
    """
    from . import data, metrics, sampling, zoo
    from .tokenization import encode_stories

    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be an integer >= 1, got {n_samples!r}")
    model, tokenizer = zoo.load(name)
    recipe = zoo.recipe_of(name)
    cfg = model.config
    if getattr(cfg, "is_encoder_decoder", False) or not hasattr(cfg, "n_positions"):
        raise ValueError(f"measure_model_card needs a GPT-2-style decoder; {name!r} is a {cfg.model_type} model")
    stories = data.load_corpus()
    val_ids = encode_stories(tokenizer, data.load_corpus("validation"))
    eos = tokenizer.eos_token_id
    prompt = torch.full((n_samples, 1), eos, dtype=torch.long, device=model.device)  # a story starts after <eos>
    out = sampling.generate(model, prompt, max_new_tokens=max_new_tokens, do_sample=True, temperature=temperature,
                            stop_token_id=eos, generator=torch.Generator(device=model.device).manual_seed(seed))
    samples = tokenizer.batch_decode(out[:, 1:], skip_special_tokens=True)
    corpus_heroes, sample_heroes = hero_gender_counts(stories), hero_gender_counts(samples)
    n_sample_heroes = max(1, sum(sample_heroes.values()))
    girl_share = sample_heroes["girl"] / n_sample_heroes
    train = recipe["recipe"]["train"]
    return ModelCard(
        name=name,
        description=recipe["recipe"]["description"],
        architecture=f"{type(model).__name__} (decoder-only transformer)",
        n_parameters=sum(p.numel() for p in model.parameters()),
        vocab_size=len(tokenizer),
        context_window=cfg.n_positions,
        layers=cfg.n_layer,
        heads=cfg.n_head,
        embedding_dim=cfg.n_embd,
        training={
            "n_stories": len(stories),
            "train_tokens": recipe["train_tokens_in_corpus"],
            "tokens_seen": recipe["tokens_seen"],
            "epochs": recipe["tokens_seen"] / recipe["train_tokens_in_corpus"],
            "steps": train["steps"],
            "lr": train["lr"],
            "train_seconds": recipe["train_seconds"],
            "device": recipe["device"],
        },
        evaluation={
            "val_perplexity": metrics.perplexity(model, val_ids, seq_len=128),
            "val_tokens": val_ids.numel(),
            "temperature": temperature,
            "n_samples": n_samples,
            "known_words": metrics.in_vocabulary_fraction(samples, data.corpus_vocabulary(stories)),
            "girl_share_corpus": corpus_heroes["girl"] / max(1, sum(corpus_heroes.values())),
            "girl_share_samples": girl_share,
            "girl_share_se": (girl_share * (1 - girl_share) / n_sample_heroes) ** 0.5,
            "n_sample_heroes": sum(sample_heroes.values()),
        },
    )


def compare_cards(card: ModelCard, real: dict):
    """Two model cards side by side: a bundled checkpoint's measured :class:`ModelCard` and a real model's
    card (:func:`llmlab.zoo.recipe_of` of a packaged model). Returns a pandas DataFrame, one row per fact."""
    import pandas as pd

    if not isinstance(card, ModelCard):
        raise TypeError(f"card must be a lifecycle.ModelCard, got {type(card).__name__}")
    missing = [k for k in ("model", "developer", "license", "training", "intended_uses", "limitations",
                           "architecture", "n_parameters") if k not in real]
    if missing:
        raise ValueError(f"the real model's card lacks {missing}; load the model once so its config is cached")
    arch = real["architecture"]
    rows = {
        "developer": ("this book (llmlab), recipe in llmlab/recipes.py", real["developer"]),
        "license": ("MIT (code and weights); training data CC0 1.0", real["license"]),
        "architecture": (card.architecture, real["family"]),
        "parameters": (f"{card.n_parameters:,}", f"{real['n_parameters']:,}"),
        "layers": (card.layers, arch["num_hidden_layers"]),
        "attention heads": (card.heads, f"{arch['num_attention_heads']} (query), "
                                        f"{arch['num_key_value_heads']} (key and value)"),
        "embedding size": (card.embedding_dim, arch["hidden_size"]),
        "vocabulary (tokens)": (f"{card.vocab_size:,}", f"{arch['vocab_size']:,}"),
        "context window (tokens)": (f"{card.context_window:,}", f"{arch['max_position_embeddings']:,}"),
        "training": (f"{card.training['tokens_seen']:,} tokens of synthetic stories, "
                     f"{card.training['train_seconds']:.0f} s on a CPU", real["training"]),
        "intended uses": ("teaching; short simple stories", real["intended_uses"]),
        "limitations": ("knows only its stories' few hundred words; no facts, digits or instructions",
                        real["limitations"]),
    }
    return pd.DataFrame(rows, index=[card.name, real["model"]]).T


@torch.no_grad()
def mean_pooled_embeddings(model: torch.nn.Module, tokenizer, texts: list[str],
                           batch_size: int = 50) -> torch.Tensor:
    """Sentence vectors ``(N, hidden)`` from an encoder: the mean of its last hidden states over each text's
    tokens (padding excluded), scaled to length 1, as sentence-transformers does (Reimers & Gurevych 2019)."""
    _checks.model("model", model)
    _check_prompts(texts)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(list(texts[i:i + batch_size]), padding=True, truncation=True,
                        return_tensors="pt").to(device)
        hidden = model(**enc).last_hidden_state  # (B, T, H)
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        out.append(F.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1))
    return torch.cat(out)


# --------------------------------------------------------------------------- a real assistant
TASKS_FILE = Path(__file__).parent / "corpus" / "lifecycle_tasks.json"


def _check_prompts(prompts: list[str]) -> None:
    if isinstance(prompts, str) or not isinstance(prompts, (list, tuple)) or not prompts:
        raise TypeError(f"prompts must be a non-empty list of strings, got {type(prompts).__name__}")
    bad = [p for p in prompts if not isinstance(p, str) or not p.strip()]
    if bad:
        raise ValueError(f"every prompt must be a non-empty string, got {bad[0]!r}")


def chat_text(tokenizer, prompt: str, system: str | None = None) -> str:
    """The text a chat model actually reads for one user message: its chat template applied.

    The template wraps each turn in the model's special tokens and, for SmolLM2, inserts
    a default system prompt when ``system`` is None. It ends with the opening of the
    assistant's turn (``add_generation_prompt=True``), so the model writes the answer.
    """
    _check_prompts([prompt])
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError("this tokenizer has no chat template (a base model such as stories-1m); "
                         "pass the prompt as plain text instead")
    messages = ([{"role": "system", "content": system}] if system is not None else [])
    messages.append({"role": "user", "content": prompt})
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def chat_batch(tokenizer, prompts: list[str], system: str | None = None) -> dict[str, torch.Tensor]:
    """Token ids and attention mask ``(B, T)`` for a batch of user messages, left-padded.

    Left padding puts every prompt's last token in the last column, so one
    ``generate`` call continues all of them; the attention mask tells the model to
    ignore the padding. The tokenizer's own ``padding_side`` is left as it was.
    """
    _check_prompts(prompts)
    texts = [chat_text(tokenizer, p, system) for p in prompts]
    return dict(tokenizer(texts, padding=True, padding_side="left", add_special_tokens=False,
                          return_tensors="pt"))


def _check_generation(max_new_tokens: int, batch_size: int) -> None:
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be an integer >= 1, got {max_new_tokens!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")


@torch.no_grad()
def _greedy(model: torch.nn.Module, tokenizer, texts: list[str], max_new_tokens: int, batch_size: int,
            add_special_tokens: bool) -> list[str]:
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    answers = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start:start + batch_size], padding=True, padding_side="left",
                          add_special_tokens=add_special_tokens, return_tensors="pt").to(device)
        out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                             eos_token_id=tokenizer.eos_token_id, pad_token_id=pad)
        new = out[:, batch["input_ids"].size(1):]  # (B, <= max_new_tokens)
        answers += [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
    return answers


def chat_complete(model: torch.nn.Module, tokenizer, prompts: list[str], max_new_tokens: int = 48,
                  system: str | None = None, batch_size: int = 32) -> list[str]:
    """Greedy answers of a chat model to each user message in ``prompts`` (new text only).

    The prompts go through the chat template (:func:`chat_text`), left-padded, into
    ``model.generate``, ``batch_size`` at a time; each answer stops at the model's
    end-of-turn token or after ``max_new_tokens`` tokens, and is returned without
    special tokens or surrounding whitespace.
    """
    _checks.model("model", model)
    _check_generation(max_new_tokens, batch_size)
    _check_prompts(prompts)
    texts = [chat_text(tokenizer, p, system) for p in prompts]
    return _greedy(model, tokenizer, texts, max_new_tokens, batch_size, add_special_tokens=False)


def plain_complete(model: torch.nn.Module, tokenizer, prompts: list[str], max_new_tokens: int = 20,
                   batch_size: int = 32) -> list[str]:
    """Greedy continuations of plain-text prompts (no chat template), the way a base model is used."""
    _checks.model("model", model)
    _check_generation(max_new_tokens, batch_size)
    _check_prompts(prompts)
    return _greedy(model, tokenizer, list(prompts), max_new_tokens, batch_size, add_special_tokens=True)


def choose_labels(model: torch.nn.Module, tokenizer, prompts: list[str], labels: tuple[str, ...]) -> list[str]:
    """For each prompt, the label the model finds most probable as its continuation (chapter 4's scoring,
    :func:`llmlab.icl.score_labels`): the model picks, but can only pick one of ``labels``."""
    _checks.model("model", model)
    from .icl import score_labels

    _check_prompts(prompts)
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise ValueError(f"labels must be at least two different strings, got {labels!r}")
    scores = score_labels(model, tokenizer, list(prompts), [list(labels)] * len(prompts))  # (N, labels)
    return [labels[i] for i in scores.argmax(dim=1).tolist()]


# --------------------------------------------------------------------------- judging answers
def mentions(text: str, options: list[str] | tuple[str, ...] | str) -> bool:
    """Whether ``text`` mentions any of ``options`` (case-insensitive; curly apostrophes count as straight)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    options = [options] if isinstance(options, str) else list(options)
    if not options or not all(isinstance(o, str) and o for o in options):
        raise ValueError(f"options must be non-empty strings, got {options!r}")
    norm = text.replace("\u2019", "'").lower()
    return any(o.replace("\u2019", "'").lower() in norm for o in options)


def first_label(text: str, labels: list[str] | tuple[str, ...]) -> str | None:
    """The label (of ``labels``, as whole words, case-insensitive) that ``text`` names first, or None."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    if isinstance(labels, str):
        raise _checks.ArgumentTypeError(f"labels must be a list of label strings, got the single str {labels!r}; "
                                        f"wrap it in a list: [{labels!r}]")
    if not labels or not all(isinstance(label, str) and label for label in labels):
        raise ValueError(f"labels must be non-empty strings, got {labels!r}")
    found = [(m.start(), label) for label in labels
             for m in [re.search(rf"\b{re.escape(label)}\b", text, flags=re.IGNORECASE)] if m]
    return min(found)[1] if found else None


def last_integer(text: str) -> int | None:
    """The last whole number written in ``text`` (thousands separators allowed: ``1,786``), or None."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    numbers = re.findall(r"-?\d{1,3}(?:,\d{3})+(?!\d)|-?\d+", text)
    return int(numbers[-1].replace(",", "")) if numbers else None


def _balanced_end(text: str, start: int) -> int | None:
    """Index just past the ``}`` that closes the ``{`` at ``start`` (braces inside JSON strings
    ignored), or None when the text ends before it closes."""
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def first_json_object(text: str) -> dict | None:
    """The JSON object a reply gives, or None: the whole reply when it parses as an object, else its
    first ``{...}`` block (e.g. inside a Markdown code fence), but only when that block closes.

    A reply cut off inside its object gives None, not an inner object that happens to close
    before the cut: that inner object is not the answer the model was writing.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict):
        return whole
    start = text.find("{")
    end = None if start < 0 else _balanced_end(text, start)
    if end is None:
        return None
    try:
        obj = json.loads(text[start:end])
    except json.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def reply_tokens(tokenizer, answer: str, max_new_tokens: int) -> tuple[int, bool]:
    """How many tokens a recorded reply has, and whether it reached the ``max_new_tokens`` cap
    (so generation stopped at the cap, not because the model ended its turn).

    The count re-tokenizes the decoded reply, which gives the generated count for these
    replies (special tokens were dropped when decoding; the end-of-turn token is not counted).
    """
    _checks.tokenizer("tokenizer", tokenizer)
    if not isinstance(answer, str):
        raise TypeError(f"answer must be a string (a decoded reply), got {type(answer).__name__}")
    _checks.positive_int("max_new_tokens", max_new_tokens)
    n = len(tokenizer(answer, add_special_tokens=False)["input_ids"])
    return n, n >= max_new_tokens


# --------------------------------------------------------------------------- frozen task sets
def load_tasks() -> dict:
    """The chapter's frozen prompt sets (``llmlab/corpus/lifecycle_tasks.json``): sentiment, capitals."""
    return json.loads(TASKS_FILE.read_text(encoding="utf-8"))


SENTIMENT_PROMPT = ("Is the sentiment of this review positive or negative? Answer with one word.\n\n"
                    "Review: {text}")
CAPITAL_PROMPT = "What is the capital of {country}?"
ARITHMETIC_PROMPT = "What is {a} times {b}? Answer with the number only."


@dataclass(frozen=True)
class Item:
    """One question of a measured task: the prompt, its reference answer, and how an answer is judged."""

    prompt: str
    reference: str
    kind: str  # "label" (first label named), "mentions" (any accepted), "integer" (last number), "tool"
    accepted: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _checks.string("prompt", self.prompt)
        _checks.string("reference", self.reference)
        _checks.choice("kind", self.kind, ("label", "mentions", "integer", "tool"))
        if not isinstance(self.accepted, tuple) or not all(isinstance(a, str) for a in self.accepted):
            raise _checks.ArgumentTypeError(f"accepted must be a tuple of str (the answers that count), "
                                            f"got {type(self.accepted).__name__} {self.accepted!r:.60}")

    def correct(self, answer: str) -> bool:
        """Whether ``answer`` is right: the judgement is computed, never read off by eye."""
        if self.kind == "label":
            return first_label(answer, self.accepted) == self.reference
        if self.kind == "mentions":
            return mentions(answer, self.accepted or (self.reference,))
        if self.kind == "integer":
            return last_integer(answer) == int(self.reference)
        if self.kind == "tool":
            return tool_result(answer) == int(self.reference)
        raise ValueError(f"unknown kind {self.kind!r}; allowed: 'label', 'mentions', 'integer', 'tool'")


SCORED_SENTIMENT_PROMPT = "Classify this review: {text}\nSentiment:"  # chapter 4's template
STORY_QUESTION_PROMPT = "Q: {question} A:"  # how a question is put to a base model without a chat template


def sentiment_items() -> list[Item]:
    """30 hand-written product and place reviews (15 positive, 15 negative), as questions to a chat model."""
    return [Item(SENTIMENT_PROMPT.format(text=r["text"]), r["label"], "label", ("positive", "negative"))
            for r in load_tasks()["sentiment"]]


def capital_items() -> list[Item]:
    """The capitals of the 19 countries of the G20, as questions; any of a country's capitals counts."""
    return [Item(CAPITAL_PROMPT.format(country=r["country"]), r["capital"][0], "mentions", tuple(r["capital"]))
            for r in load_tasks()["capitals"]]


def arithmetic_items(n: int = 30, low: int = 10, high: int = 99, seed: int = 0) -> list[Item]:
    """``n`` multiplications of two whole numbers drawn uniformly from ``[low, high]`` (seeded), as questions."""
    import random

    for name, v in (("n", n), ("low", low), ("high", high)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{name} must be an integer, got {type(v).__name__}")
    if n < 1 or not 0 <= low <= high:
        raise ValueError(f"need n >= 1 and 0 <= low <= high, got n={n}, low={low}, high={high}")
    rng = random.Random(seed)
    pairs = [(rng.randint(low, high), rng.randint(low, high)) for _ in range(n)]
    return [Item(ARITHMETIC_PROMPT.format(a=a, b=b), str(a * b), "integer") for a, b in pairs]


def accuracy(items: list[Item], answers: list[str]) -> dict:
    """Correct answers out of ``len(items)``, the accuracy and its 95% Wilson interval (Wilson 1927)."""
    from .icl import wilson_interval

    if len(items) != len(answers) or not items:
        raise ValueError(f"need as many answers as items (> 0), got {len(answers)} answers for {len(items)} items")
    correct = sum(item.correct(a) for item, a in zip(items, answers))
    low, high = wilson_interval(correct, len(items))
    return {"n": len(items), "correct": correct, "accuracy": correct / len(items), "ci_low": low, "ci_high": high}


def format_accuracy(result: dict) -> str:
    """An :func:`accuracy` result as text, rounded to whole percent: ``"70% (52% to 83%)"``."""
    missing = [k for k in ("accuracy", "ci_low", "ci_high") if k not in result]
    if missing:
        raise ValueError(f"result lacks {missing}; pass what lifecycle.accuracy returns")
    return f"{result['accuracy']:.0%} ({result['ci_low']:.0%} to {result['ci_high']:.0%})"


def count_sentences(text: str) -> int:
    """Number of sentences in ``text``: runs of text ending in ``.``, ``!`` or ``?`` (or the end)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    return len([s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if re.search(r"\w", s)])


def _normalise(value):
    if isinstance(value, dict):
        return {str(k).lower(): _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return frozenset(str(v).strip().lower() for v in value)
    return frozenset([str(value).strip().lower()])


def json_matches(answer: str, reference: dict) -> bool:
    """Whether the first JSON object in ``answer`` equals ``reference``, ignoring case, and order within lists
    (a single value counts as a one-element list)."""
    if not isinstance(reference, dict):
        raise TypeError(f"reference must be a dict, got {type(reference).__name__}")
    found = first_json_object(answer)
    return found is not None and _normalise(found) == _normalise(reference)


def calculator(expression: str) -> float:
    """Evaluate an arithmetic ``expression`` of numbers, ``+ - * / x ×`` and brackets, as a deployed tool would.

    Only arithmetic is allowed (parsed with :mod:`ast`, never ``eval``); anything
    else raises ``ValueError``, and so does a division by zero.
    """
    import ast
    import operator

    if not isinstance(expression, str):
        raise TypeError(f"expression must be a string, got {type(expression).__name__}")
    ops = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.USub: operator.neg, ast.UAdd: operator.pos}
    text = re.sub(r"(?<=\d)\s*[x×]\s*(?=\d)", "*", expression.replace("times", "*"))

    def value(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
                and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            left, right = value(node.left), value(node.right)
            if isinstance(node.op, ast.Div) and right == 0:
                raise ValueError(f"the expression {expression!r} divides by zero")
            return ops[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in ops:
            return ops[type(node.op)](value(node.operand))
        raise ValueError(f"calculator accepts numbers, + - * / and brackets only: the expression {expression!r} "
                         f"holds something else")

    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise ValueError(f"calculator accepts numbers, + - * / and brackets only: the expression {expression!r} "
                         f"does not parse") from None
    return value(tree.body)


CALCULATOR_PROMPT = ("You can call one tool: calculator(expression: string), which returns the value of an "
                     "arithmetic expression. Reply only with a JSON object of the form "
                     '{{"name": "calculator", "arguments": {{"expression": ...}}}}.\n\n'
                     "Request: What is {a} times {b}?")


def calculator_items(n: int = 30, low: int = 10, high: int = 99, seed: int = 0) -> list[Item]:
    """The same multiplications as :func:`arithmetic_items`, asked as a request to call a calculator tool."""
    items = arithmetic_items(n, low, high, seed)
    pairs = [re.findall(r"\d+", item.prompt)[:2] for item in items]
    return [Item(CALCULATOR_PROMPT.format(a=a, b=b), item.reference, "tool") for (a, b), item in zip(pairs, items)]


def tool_result(answer: str) -> float | None:
    """Run the calculator call that ``answer`` asks for, the way an application would; None when there is no
    valid call (no JSON object, another tool's name, no expression, or one the calculator refuses)."""
    if not isinstance(answer, str):
        raise _checks.ArgumentTypeError(f"answer must be a string (the model's reply), got {type(answer).__name__}")
    call = first_json_object(answer)
    if not call or call.get("name") != "calculator" or not isinstance(call.get("arguments"), dict):
        return None
    expression = call["arguments"].get("expression")
    try:
        return calculator(str(expression)) if expression is not None else None
    except (ValueError, ZeroDivisionError):
        return None


# --------------------------------------------------------------------------- the use cases, judged
@dataclass(frozen=True)
class UseCase:
    """One of the chapter's use-case prompts, with a reference answer and a computed check of an answer."""

    name: str
    prompt: str
    reference: str
    check: str  # what the check tests, in words

    def __post_init__(self) -> None:
        for name in ("name", "prompt", "reference", "check"):
            _checks.string(name, getattr(self, name))
        # USE_CASES are built before _USE_CASE_CHECKS exists; a use case made later needs a computed check
        checks = globals().get("_USE_CASE_CHECKS")
        if checks is not None and self.name not in checks:
            raise ValueError(f"name must be a use case with a computed check, one of {sorted(checks)}; "
                             f"got {self.name!r}")

    def passes(self, answer: str) -> bool:
        """Whether ``answer`` passes this use case's check (see :data:`USE_CASES`)."""
        return _USE_CASE_CHECKS[self.name](answer)


_SUMMARY_TEXT = ("The city council of Riverton voted on Tuesday to close the Main Street library in June, because "
                 "repairing its roof would cost two million dollars. Its books will move to the new community "
                 "centre, which opens in May. Several residents said they would miss the old building.")
_ENTITIES = {"people": ["Marie Curie"], "places": ["Warsaw", "Paris"], "dates": ["1891"]}
_WEATHER_CALL = {"name": "get_weather", "arguments": {"city": "Lisbon", "unit": "celsius"}}

USE_CASES = [
    UseCase("chat (a fact)", "Who designed the street layout of Washington DC?",
            "Pierre (Peter) Charles L'Enfant, in 1791", "names L'Enfant"),
    UseCase("essay writing", "Write a paragraph of exactly three sentences about the benefits of walking.",
            "three sentences on walking", "three sentences that mention walking"),
    UseCase("summarization", "Summarize this text in one sentence.\n\n" + _SUMMARY_TEXT,
            "The Main Street library closes in June because its roof repair is too costly, and its books move "
            "to the new community centre.",
            "one sentence naming the closure, the roof (or repair) and the books"),
    UseCase("translation", "Translate into French: The cat is sleeping on the chair.",
            "Le chat dort sur la chaise.", "contains chat, dort and chaise"),
    UseCase("translation (code)", "Translate this Python function into JavaScript:\n\ndef add(a, b):\n"
            "    return a + b", "function add(a, b) { return a + b; }",
            "contains function add(a, b) and return a + b"),
    UseCase("entity extraction", "Extract the people, places and dates from this sentence. Answer in JSON with "
            'the keys "people", "places" and "dates".\n\nMarie Curie moved from Warsaw to Paris in 1891.',
            json.dumps(_ENTITIES), "parses as JSON with exactly these entities"),
    UseCase("tool call", 'You can call one tool: get_weather(city: string, unit: "celsius" or "fahrenheit"). '
            'Reply only with a JSON object of the form {"name": ..., "arguments": {...}}.\n\n'
            "Request: What is the weather in Lisbon, in celsius?", json.dumps(_WEATHER_CALL),
            "parses as JSON and equals this call"),
]


def _words(answer: str, words: tuple[str, ...]) -> bool:
    return all(re.search(rf"\b{w}\b", answer, flags=re.IGNORECASE) for w in words)


_USE_CASE_CHECKS = {
    "chat (a fact)": lambda a: mentions(a, ["L'Enfant", "Enfant"]),
    "essay writing": lambda a: count_sentences(a) == 3 and mentions(a, "walk"),
    "summarization": lambda a: count_sentences(a) == 1 and mentions(a, "clos") and mentions(a, ["roof", "repair"])
    and mentions(a, "books"),
    "translation": lambda a: _words(a, ("chat", "dort", "chaise")),
    "translation (code)": lambda a: bool(re.search(r"function\s+add\s*\(\s*a\s*,\s*b\s*\)", a))
    and "return a + b" in a,
    "entity extraction": lambda a: json_matches(a, _ENTITIES),
    "tool call": lambda a: json_matches(a, _WEATHER_CALL),
}


# --------------------------------------------------------------------------- small baselines
_WORD = re.compile(r"[a-z]+")
STOPWORDS = frozenset(
    "a an the and or but of to in on at for with by from as is are was were be been it its this that these "
    "those he she they them his her their i we you my our your me us who what when where how not no so "
    "then than too very can will just do does did has have had each other one two".split())


def words(text: str) -> list[str]:
    """The lower-case words (runs of letters a-z) of ``text``, in order: the tokens BM25 counts."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    return _WORD.findall(text.lower())


def word_overlap(query: str, text: str) -> float:
    """The share (0 to 1) of the query's content words (its words minus :data:`STOPWORDS`) that also
    occur in ``text``: how much a word-matching method could lean on shared wording."""
    content = set(words(query)) - STOPWORDS
    if not content:
        raise ValueError(f"query must have at least one content word (not a stopword), got {query!r}")
    return len(content & set(words(text))) / len(content)


def bm25_scores(query: str, documents: list[str], k1: float = 1.5,
                b: float = 0.75) -> list[float]:
    """Okapi BM25 score of every document for ``query`` (Robertson & Zaragoza 2009).

    Scores are unitless. For each distinct query word t, a document gains
    ``idf(t) * f (k1 + 1) / (f + k1 (1 - b + b |d| / avgdl))``, where f is how often
    t occurs in the document, |d| the document's length in words and avgdl the mean
    length; ``idf(t) = ln(1 + (N - n_t + 0.5) / (n_t + 0.5))`` with n_t of the N
    documents containing t (the ``1 +`` keeps idf positive, as Lucene does).
    Words are :func:`words`.
    """
    _check_prompts(documents)
    if not isinstance(query, str):
        raise TypeError(f"query must be a string, got {type(query).__name__}")
    _checks.non_negative("k1", k1)
    _checks.number("b", b, 0.0, 1.0)
    docs = [words(d) for d in documents]
    n_docs, avgdl = len(docs), sum(len(d) for d in docs) / len(docs)
    if avgdl == 0:
        raise ValueError("documents must contain at least one word between them")
    counts = [{} for _ in docs]
    for c, d in zip(counts, docs):
        for w in d:
            c[w] = c.get(w, 0) + 1
    scores = [0.0] * n_docs
    for t in set(words(query)):
        n_t = sum(t in c for c in counts)  # documents that contain t
        idf = math.log(1 + (n_docs - n_t + 0.5) / (n_t + 0.5))  # rare words weigh more
        for i, (c, d) in enumerate(zip(counts, docs)):
            f = c.get(t, 0)
            if f:  # saturates in f; long documents are scaled down
                norm = k1 * (1 - b + b * len(d) / avgdl)
                scores[i] += idf * f * (k1 + 1) / (f + norm)
    return scores


# A query per story plot of llmlab.data, each with a sentence only stories of that plot contain.
# The first of each pair is worded close to the stories; the second is a paraphrase written to share
# few content words with them (word_overlap measures how few).
RETRIEVAL_QUERIES: list[tuple[str, str, str]] = [  # (query, marker, wording)
    ("a child loses a toy and a friend helps find it", "was gone!", "close"),
    ("a youngster misplaces a plaything and a companion recovers it", "was gone!", "paraphrase"),
    ("children share their food with a hungry friend", "we can share", "close"),
    ("splitting snacks with a starving pal", "we can share", "paraphrase"),
    ("a child keeps trying until they can do something new", "Try again!", "close"),
    ("persistence after failing at an unfamiliar skill", "Try again!", "paraphrase"),
    ("playing outside when it starts to rain", "started to rain", "close"),
    ("a downpour interrupts outdoor games", "started to rain", "paraphrase"),
    ("children help a little animal in trouble", "We must help it", "close"),
    ("rescuing an injured or stranded creature", "We must help it", "paraphrase"),
    ("a child is afraid of something strange at night", "Let us look together", "close"),
    ("a frightening mystery that turns out harmless", "Let us look together", "paraphrase"),
    ("a child makes a birthday gift for a friend", "birthday", "close"),
    ("a handmade present when you cannot afford one", "birthday", "paraphrase"),
    ("two friends race each other", "liked to race", "close"),
    ("the tortoise and the hare: slow and steady beats speedy", "liked to race", "paraphrase"),
    ("children find a treasure map and dig", "treasure map", "close"),
    ("following a chart to unearth buried riches", "treasure map", "paraphrase"),
    ("a shy new child at school makes a friend", "was shy", "close"),
    ("welcoming a timid newcomer to class", "was shy", "paraphrase"),
    ("children cook food together", "kitchen", "close"),
    ("preparing a meal for relatives", "kitchen", "paraphrase"),
]


# --------------------------------------------------------------------------- a small fine-tuned classifier
_REVIEW_SUBJECTS = ["The hotel", "This blender", "The pizza place on the corner", "These headphones",
                    "The museum", "My new phone", "The train ride", "This jacket", "The dentist",
                    "The campsite", "The coffee shop", "This laptop", "The bakery", "The rental car",
                    "This vacuum cleaner", "The theme park", "The hair salon", "This backpack",
                    "The sushi bar", "The yoga class"]
# Opinion phrases, split in two halves that share no phrase: training reviews use one half, test
# reviews the other, so a classifier is tested on wording it never saw.
_REVIEW_OPINIONS = {
    ("train", "positive"): ["was excellent", "exceeded my expectations", "was worth every penny",
                            "made my day", "was a delight", "works perfectly", "was fantastic",
                            "is the best I have tried", "left me very happy", "was a pleasant surprise",
                            "impressed the whole family", "did exactly what I hoped"],
    ("train", "negative"): ["was terrible", "broke after a week", "was a waste of money",
                            "ruined our evening", "was a disappointment", "stopped working",
                            "was awful", "is the worst I have tried", "left me very annoyed",
                            "was a nasty surprise", "upset the whole family", "did nothing I hoped"],
    ("test", "positive"): ["was wonderful", "is superb", "was a real treat", "blew me away",
                           "was brilliant", "is great value", "was lovely from start to finish",
                           "never disappoints", "was outstanding", "is a joy to use",
                           "deserves every star", "was just perfect"],
    ("test", "negative"): ["was dreadful", "is useless", "was a rip-off", "let me down",
                           "was horrible", "is poor value", "was unpleasant from start to finish",
                           "always disappoints", "was shoddy", "is a pain to use",
                           "deserves no stars at all", "was a mess"],
}
_REVIEW_DETAILS = ["We went on a Saturday.", "I bought it last month.", "My sister recommended it.",
                   "It was my first visit.", "I used it every day for a while.", "We were a group of four.",
                   "I paid full price.", "A friend came along.", "It came in a blue box.", ""]
SPLITS = ("train", "test")


def generated_reviews(n: int, split: str = "train", seed: int = 0) -> list[tuple[str, str]]:
    """``n`` short reviews ``(text, label)`` of products and places, half positive and half negative,
    in a seeded random order.

    ``split`` picks the half of the opinion phrases used: no phrase of a ``"train"`` review
    occurs in a ``"test"`` review, so the two sets share no text.
    """
    import random

    _checks.positive_int("n", n)
    _checks.choice("split", split, SPLITS)
    rng = random.Random(f"{split}-{seed}")
    out = []
    for i in range(n):
        label = ("positive", "negative")[i % 2]
        detail = rng.choice(_REVIEW_DETAILS)
        text = f"{rng.choice(_REVIEW_SUBJECTS)} {rng.choice(_REVIEW_OPINIONS[split, label])}. {detail}"
        out.append((text.strip(), label))
    rng.shuffle(out)
    return out


def fit_logistic_regression(x: torch.Tensor, y: torch.Tensor, l2: float = 1e-3,
                            steps: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights ``(D,)`` and bias ``()`` of a logistic regression on features ``x`` ``(N, D)`` and
    labels ``y`` ``(N,)`` in {0, 1}: minimises the mean log-loss (nats) plus ``l2 / 2 * |w|^2``
    with L-BFGS from zeros, so it is deterministic. Equals scikit-learn's ``LogisticRegression``
    with ``C = 1 / (N * l2)``.
    """
    _checks.tensor("x", x, dims=2)
    _checks.tensor("y", y, dims=1)
    if y.numel() != x.size(0):
        raise ValueError(f"y must have one label per row of x ({x.size(0)}), got {y.numel()}")
    if not bool(((y == 0) | (y == 1)).all()):
        raise ValueError("y must hold only the labels 0 and 1")
    _checks.positive("l2", l2)
    _checks.positive_int("steps", steps)
    x, y = x.double(), y.double()
    w = torch.zeros(x.size(1), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, bias], lr=1, max_iter=steps, tolerance_grad=1e-10,
                            tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(x @ w + bias, y) + l2 / 2 * (w @ w)
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach(), bias.detach()


# --------------------------------------------------------------------------- the recorded completions
RECORD_FILE = Path(__file__).parent / "results" / "lifecycle_completions.json"
REAL_MODEL = "smollm2-135m-instruct"
# The use cases go one at a time, so that the chapter's live re-run of one of them repeats
# exactly the computation that was recorded.
def record_plan() -> dict[str, tuple[list[str], int, int]]:
    """What :func:`record_completions` generates: group name -> (prompts, max_new_tokens, batch_size)."""
    return {
        "use_cases": ([u.prompt for u in USE_CASES], 80, 1),
        "sentiment": ([i.prompt for i in sentiment_items()], 8, 32),
        "capitals": ([i.prompt for i in capital_items()], 20, 32),
        "arithmetic": ([i.prompt for i in arithmetic_items()], 64, 32),
        "calculator": ([i.prompt for i in calculator_items()], 48, 32),
    }


def _code_version() -> str:
    from .provenance import code_version

    return code_version("llmlab/lifecycle.py", "llmlab/corpus/lifecycle_tasks.json")


def record_completions(path: str | Path = RECORD_FILE, groups: list[str] | None = None) -> dict:
    """Generate the greedy answers of SmolLM2-135M-Instruct to every prompt of :func:`record_plan` and save them.

    The file (JSON) says which code made it (git commit), on what machine, with which
    torch and transformers, and how long each group took. Chapter 1 reads it with
    :func:`load_record` and re-runs part of it live.
    """
    import platform
    import time

    import transformers

    from . import zoo
    from .scaling import machine

    plan = record_plan()
    groups = list(plan) if groups is None else groups
    unknown = [g for g in groups if g not in plan]
    if unknown:
        raise ValueError(f"unknown groups {unknown}; allowed: {list(plan)}")
    torch.manual_seed(0)
    model, tokenizer = zoo.load(REAL_MODEL, device="cpu")
    record = {"model": REAL_MODEL, "code_version": _code_version(), "machine": machine(),
              "python": platform.python_version(), "torch": torch.__version__,
              "transformers": transformers.__version__, "decoding": "greedy (model.generate, do_sample=False)",
              "groups": {}}
    for group in groups:
        prompts, max_new, batch = plan[group]
        start = time.perf_counter()
        answers = chat_complete(model, tokenizer, prompts, max_new_tokens=max_new, batch_size=batch)
        record["groups"][group] = {"max_new_tokens": max_new, "batch_size": batch,
                                   "seconds": round(time.perf_counter() - start, 1),
                                   "completions": [{"prompt": p, "answer": a} for p, a in zip(prompts, answers)]}
        print(f"{group}: {len(prompts)} prompts in {record['groups'][group]['seconds']} s", flush=True)
    Path(path).write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return record


def load_record(path: str | Path = RECORD_FILE) -> dict:
    """The recorded completions (:func:`record_completions`), checked against today's prompts.

    Raises ``ValueError`` when a group's prompts differ from :func:`record_plan`, so a
    changed prompt cannot be judged by a stale answer.
    """
    if not Path(_checks.path("path", path)).is_file():
        raise _checks.MissingFileError(f"no record at {path}; run python -m llmlab.lifecycle record")
    record = json.loads(Path(path).read_text(encoding="utf-8"))
    for group, (prompts, _, _) in record_plan().items():
        if group not in record["groups"]:
            raise ValueError(f"the record {path} has no group {group!r}; run python -m llmlab.lifecycle record")
        recorded = [c["prompt"] for c in record["groups"][group]["completions"]]
        if recorded != prompts:
            raise ValueError(f"the prompts of group {group!r} changed since {path} was recorded; "
                             "run python -m llmlab.lifecycle record")
    return record


def recorded_answers(record: dict, group: str) -> list[str]:
    """The recorded answers of one group, in the order of its prompts."""
    if group not in record.get("groups", {}):
        raise ValueError(f"no group {group!r} in the record; it has {list(record.get('groups', {}))}")
    return [c["answer"] for c in record["groups"][group]["completions"]]


def main(argv: list[str] | None = None) -> int:
    """``python -m llmlab.lifecycle record [group ...]``: record the chapter's completions."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m llmlab.lifecycle", description=main.__doc__)
    parser.add_argument("command", choices=["record"])
    parser.add_argument("groups", nargs="*", help=f"default: all of {list(record_plan())}")
    args = parser.parse_args(argv)
    record_completions(groups=args.groups or None)
    print(f"wrote {RECORD_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
