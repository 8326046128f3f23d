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

import re
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

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
    if isinstance(target_len, bool) or not isinstance(target_len, int) or target_len < 1:
        raise ValueError(f"target_len must be an integer >= 1, got {target_len!r}")
    if not context_lengths or any(isinstance(k, bool) or not isinstance(k, int) or k < 0 for k in context_lengths):
        raise ValueError(f"context_lengths must be a non-empty list of integers >= 0, got {context_lengths!r}")
    window = getattr(model.config, "n_positions", None)
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
    ("Adapt and align", ["prompt engineering", "fine-tuning", "human feedback", "evaluate"]),
    ("Deploy", ["optimise for inference", "augment the model", "integrate in the app"]),
]


def draw_lifecycle(ax=None):
    """Draw the four stages of an LLM project (scope, select, adapt and align, deploy)
    as boxes, with the loops back that real projects take. Returns the axes."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    from .plot import ACCENT, KEPT

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
    ax.text((third + fourth + width) / 2, -0.75, "what deployment reveals goes back into adaptation",
            ha="center", fontsize=8.5, color=ACCENT)
    ax.set_xlim(-0.2, 4 * width + 3 * gap + 0.2)
    ax.set_ylim(-1.0, height + 0.9)
    ax.axis("off")
    return ax


# --------------------------------------------------------------------------- model card
_HERO = re.compile(r"\b(girl|boy)\b")


def hero_gender_counts(texts: list[str]) -> dict[str, int]:
    """How many texts introduce a girl or a boy in their first sentence (the corpus's hero)."""
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

    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be an integer >= 1, got {n_samples!r}")
    model, tokenizer = zoo.load(name)
    recipe = zoo.recipe_of(name)
    cfg = model.config
    if getattr(cfg, "is_encoder_decoder", False) or not hasattr(cfg, "n_positions"):
        raise ValueError(f"measure_model_card needs a GPT-2-style decoder; {name!r} is a {cfg.model_type} model")
    stories = data.load_corpus()
    val_ids = zoo.encode_stories(tokenizer, data.load_corpus("validation"))
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
