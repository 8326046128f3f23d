"""The recipes of the bundled checkpoints, and the command that trains and saves each one.

A :class:`Recipe` holds everything needed to rebuild a checkpoint in
``llmlab/models/``: the corpus, the tokenizer, the architecture, the training
configuration and the seed. ``python -m llmlab.zoo build NAME`` (or
:func:`build`) runs it and saves an ordinary Hugging Face folder (config.json,
model.safetensors, tokenizer.json) plus ``recipe.json`` and ``train_log.csv``;
:mod:`llmlab.zoo` loads the folders. Chapter 3 walks through a recipe step by step.

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
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from . import _checks, data, objectives
from .device import best_device, seed_everything
from .tokenization import MASK, PAD, SENTINEL, encode_icl, encode_stories, train_tokenizer
from .train import TrainConfig, TrainLog, train_causal_lm

MODELS_DIR = Path(__file__).parent / "models"
FAMILIES = {"decoder": "causal", "encoder": "masked", "encoder-decoder": "span-corruption"}


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
        _checks.positive_int("vocab_size", self.vocab_size)
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
    "smollm2-draft": Recipe(
        name="smollm2-draft",
        description=(
            "A Llama-architecture draft of about 4 million parameters for speculative decoding (chapter 14), "
            "distilled from SmolLM2-135M-Instruct: trained on the teacher's greedy answers to 1,070 chat requests, "
            "against its next-token distribution (soft targets) over the 4,095 tokens it writes most often plus "
            "one entry for all others (llmlab.distill). Stored in bfloat16."
        ),
        vocab_size=4096,
        model=dict(hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=4,
                   num_key_value_heads=2, max_position_embeddings=1024),
        train=dict(epochs=12, batch_size=16, lr=3e-3, warmup_steps=20),
        seed=0,
        corpus="distill",
        architecture="llama",
    ),
}


# --------------------------------------------------------------------------- building
def build(name: str, out_dir: str | Path | None = None, steps: int | None = None,
          device: str | None = None, progress: bool = True) -> Path:
    """Run ``name``'s recipe and save the checkpoint folder (default: the bundled one). Returns the folder.

    ``steps`` overrides the recipe's step count, for a quick trial; the saved
    recipe.json then records the override.
    """
    recipe = _recipe(name)
    if recipe.corpus == "distill":  # chapter 14's draft needs the real model: llmlab.distill builds it
        raise ValueError(f"{name!r} is distilled from the real model: build it with "
                         f"`python -m llmlab.distill build {name}`")
    cfg = _train_config(recipe, steps)
    device = _checks.device("device", device) if device is not None else best_device()
    out = Path(out_dir) if out_dir is not None else MODELS_DIR / name
    out.mkdir(parents=True, exist_ok=True)
    if recipe.corpus == "icl":
        return _build_icl(recipe, out, cfg, device, progress)
    seed_everything(recipe.seed)
    train_stories, val_stories = data.load_corpus("train"), data.load_corpus("validation")
    tokenizer = train_tokenizer(train_stories, recipe.vocab_size, **recipe.tokenizer_options())
    train_ids, val_ids = encode_stories(tokenizer, train_stories), encode_stories(tokenizer, val_stories)
    seed_everything(recipe.seed)
    model = recipe.build_model()
    if recipe.objective == "causal":
        log = train_causal_lm(model, train_ids, val_ids, cfg, device=device, progress=progress)
    else:
        log = objectives.train_objective(model, recipe.batch_fn(tokenizer, cfg), train_ids, val_ids, cfg,
                                         device=device, progress=progress)
    facts = {"train_tokens_in_corpus": int(train_ids.numel()), "validation_tokens_in_corpus": int(val_ids.numel())}
    return _save_checkpoint(out, recipe, cfg, model, tokenizer, log, device, facts)


def _train_config(recipe: Recipe, steps: int | None) -> TrainConfig:
    """The recipe's training configuration, with ``steps`` (and a warmup no longer than it) when given."""
    cfg = recipe.train_config()
    if steps is None:
        return cfg
    steps = _checks.positive_int("steps", steps)
    return TrainConfig(**{**asdict(cfg), "steps": steps, "warmup_steps": min(cfg.warmup_steps, steps)})


def _save_checkpoint(out: Path, recipe: Recipe, cfg: TrainConfig, model, tokenizer, log: TrainLog,
                     device: torch.device, facts: dict) -> Path:
    """Save a trained checkpoint into ``out``: the model and tokenizer (safetensors, tokenizer.json),
    the loss log (train_log.csv) and recipe.json (the recipe as run, then ``facts``, then how long
    training took and where). Every recipe saves through here. Returns ``out``."""
    model.to("cpu")
    if recipe.family == "decoder":
        # generation pads with end-of-text (the model config has no pad_token_id: see gpt2_config)
        model.generation_config.pad_token_id = tokenizer.eos_token_id
    model.save_pretrained(out)  # config.json, generation_config.json, model.safetensors
    tokenizer.save_pretrained(out)
    log.to_csv(out / "train_log.csv")
    saved = asdict(recipe)
    saved["train"] = {k: v for k, v in asdict(cfg).items() if k != "seed"}
    meta = {
        "recipe": saved,
        "n_parameters": sum(p.numel() for p in model.parameters()),
        **facts,
        "tokens_seen": log.tokens_seen,
        "train_seconds": round(log.seconds, 1),
        "final_val_loss": log.final_val_loss,
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": str(device),
    }
    (out / "recipe.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out


def icl_texts(recipe: Recipe, n: int, seed: int) -> tuple[list[str], list[list[tuple[int, int]]]]:
    """``n`` training texts of an ``icl-*`` recipe (chapter 4) and the character spans of their label words.

    Each text is one episode of :func:`llmlab.data.icl_episode` with ``extra["n_items"]``
    solved items, its rule drawn from ``extra["rules"]``; a fraction ``extra["instruction_fraction"]``
    of them starts with the instruction that states the rule and its label words.
    """
    import random

    from . import icl

    if not isinstance(recipe, Recipe) or recipe.corpus != "icl":
        raise TypeError(f"recipe must be an icl-* Recipe (corpus='icl'), got {_checks._shown(recipe)}")
    n = _checks.non_negative_int("n", n)
    rng = random.Random(_checks.integer("seed", seed))
    texts, spans = [], []
    for _ in range(n):
        episode = data.icl_episode(rng, recipe.extra["n_items"], rule=rng.choice(recipe.extra["rules"]),
                                   repeat=recipe.extra.get("repeat", 0.0))
        text, label_spans = icl.episode_text(episode, instruction=rng.random() < recipe.extra["instruction_fraction"])
        texts.append(text)
        spans.append(label_spans)
    return texts, spans


def _build_icl(recipe: Recipe, out: Path, cfg: TrainConfig, device: torch.device, progress: bool) -> Path:
    """Train an ``icl-*`` recipe: a small Llama decoder on in-context episodes, loss on label words only (chapter 4)."""
    from . import icl
    from .train import train_loop

    extra = recipe.extra
    seed_everything(recipe.seed)
    if extra.get("init_from"):  # start from a bundled pretrained decoder: its tokenizer and (some of) its layers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        source = MODELS_DIR / extra["init_from"]
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
        pretrained = AutoModelForCausalLM.from_pretrained(source, local_files_only=True, use_safetensors=True)
    else:
        tokenizer_texts, _ = icl_texts(recipe, extra["tokenizer_episodes"], recipe.seed)
        tokenizer = train_tokenizer(tokenizer_texts, recipe.vocab_size)
    window = _checks.context_window(recipe.model_config())
    val_ids, val_targets = encode_icl(tokenizer, *icl_texts(recipe, extra["val_episodes"], recipe.seed + 1), window)
    seed_everything(recipe.seed)
    model = recipe.build_model()
    if extra.get("init_from"):
        # the first n_layer blocks, the embeddings and the final norm of the pretrained model
        state = {k: v for k, v in pretrained.state_dict().items() if k in model.state_dict()}
        model.load_state_dict(state, strict=True)
        del pretrained

    def label_loss(ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = model(input_ids=ids.to(device)).logits
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), targets.to(device).flatten(),
                                                 ignore_index=-100)

    def batch_loss(g: torch.Generator) -> tuple[torch.Tensor, int]:
        # fresh episodes every step, drawn from a seed the loop's generator gives (reproducible)
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=g))
        ids, targets = encode_icl(tokenizer, *icl_texts(recipe, cfg.batch_size, seed), window)
        return label_loss(ids, targets), int(ids.ne(tokenizer.eos_token_id).sum())

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
    return _save_checkpoint(out, recipe, cfg, model, tokenizer, log, device,
                            {"train_episodes": cfg.steps * cfg.batch_size})


def _recipe(name: str) -> Recipe:
    if not isinstance(name, str) or name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; recipes: {sorted(RECIPES)}")
    return RECIPES[name]
