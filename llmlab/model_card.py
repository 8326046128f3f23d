"""A model card (Mitchell et al. 2019) for a bundled checkpoint, its numbers measured when it is written (chapter 1).

:func:`measure_model_card` loads the checkpoint and measures its held-out perplexity,
the share of known words in sampled stories and the girl/boy balance of their heroes;
:class:`ModelCard` renders the card as Markdown; :func:`compare_cards` sets it beside
a real model's card.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

from . import _checks

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
        raise TypeError(f"card must be a model_card.ModelCard, got {type(card).__name__}")
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
