"""Argument checks shared by llmlab's public functions.

Each check returns the value it accepted (converted where that is safe, e.g. a
numpy integer to ``int``) and raises :class:`ArgumentTypeError` for the wrong
kind of value (a subclass of both ``TypeError`` and ``ValueError``, so code
written against either keeps working) or a ``ValueError`` for a value out of range. Every message names the argument,
shows what was given and says what is allowed, so a student's mistake is caught
at the boundary rather than deep inside torch.
"""

from __future__ import annotations

import math
import numbers
import random
from collections.abc import Sequence

import torch

DEVICE_TYPES = ("cpu", "cuda", "mps")


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong kind (a str where a list is expected, a float where an int is)."""


class MissingFileError(FileNotFoundError, ValueError):
    """A file the call needs is not there (a record not made yet): a FileNotFoundError, and a
    ValueError like the other argument errors, so code written against either keeps working."""


def path(name: str, value):
    """``value`` if it is a file path (str or os.PathLike); anything else is a TypeError."""
    import os

    if isinstance(value, bool) or not isinstance(value, (str, os.PathLike)):
        raise ArgumentTypeError(f"{name} must be a file path (str or pathlib.Path), got {type(value).__name__} "
                                f"{_shown(value)}")
    return value


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def integer(name: str, value, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int in [low, high]; bool, float and str are rejected (TypeError)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{name} must be an int, got {type(value).__name__} {_shown(value)}")
    value = int(value)
    if low is not None and value < low:
        bound = f"<= {high}" if high is not None else ""
        raise ValueError(f"{name} must be an int >= {low}{' and ' + bound if bound else ''}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be an int <= {high}{f' and >= {low}' if low is not None else ''}, got {value}")
    return value


def positive_int(name: str, value) -> int:
    """``value`` as an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{name} must be a positive int, got {type(value).__name__} {_shown(value)}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return int(value)


def non_negative_int(name: str, value) -> int:
    """``value`` as an int >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{name} must be a non-negative int, got {type(value).__name__} {_shown(value)}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value}")
    return int(value)


def number(name: str, value, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite float in the given range; bool, str, nan and inf are rejected."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(f"{name} must be a number, got {type(value).__name__} {_shown(value)}")
    value = float(value)
    left = "(" if low_open else "["
    right = ")" if high_open else "]"
    if high is None and low is not None:
        allowed = f"{'>' if low_open else '>='} {low:g} (a finite number)"
    elif low is None and high is not None:
        allowed = f"{'<' if high_open else '<='} {high:g} (a finite number)"
    else:
        allowed = f"a finite number in {left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
    if not math.isfinite(value):
        raise ValueError(f"{name} must be {allowed}, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {allowed}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return value


def non_negative(name: str, value) -> float:
    """``value`` as a finite float >= 0."""
    return number(name, value, low=0.0)


def positive(name: str, value) -> float:
    """``value`` as a finite float > 0."""
    return number(name, value, low=0.0, low_open=True)


def fraction(name: str, value, low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a float in [0, 1] (ends open as asked)."""
    return number(name, value, low=0.0, high=1.0, low_open=low_open, high_open=high_open)


def string(name: str, value, allow_empty: bool = True) -> str:
    """``value`` as a str."""
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be a str, got {type(value).__name__} {_shown(value)}")
    if not allow_empty and not value.strip():
        raise ValueError(f"{name} must be a non-empty str, got {value!r}")
    return value


def strings(name: str, value, allow_empty: bool = False) -> list[str]:
    """``value`` as a list of str; a bare str is rejected (it would be read one character at a time)."""
    if isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be a list of str, got the single str {_shown(value)}; "
                        f"wrap it in a list: [{_shown(value)}]")
    if not isinstance(value, (Sequence, set, frozenset, tuple)) or isinstance(value, (bytes, dict)):
        raise ArgumentTypeError(f"{name} must be a list of str, got {type(value).__name__} {_shown(value)}")
    value = list(value)
    bad = [v for v in value if not isinstance(v, str)]
    if bad:
        raise ArgumentTypeError(f"{name} must be a list of str, got an item of type {type(bad[0]).__name__}: {_shown(bad[0])}")
    if not allow_empty and not value:
        raise ValueError(f"{name} must be a non-empty list of str, got an empty list")
    return value


def choice(name: str, value, allowed: Sequence) -> object:
    """``value`` if it is one of ``allowed``."""
    try:
        ok = value in allowed
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {_shown(value)}")
    return value


def model(name: str, value) -> torch.nn.Module:
    """``value`` if it is a torch model; a model *name* gets a TypeError that says how to load it."""
    if isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be a model (torch.nn.Module), got the name {value!r}; "
                        f"pass the model returned by zoo.load(name): model, tokenizer = zoo.load({value!r})")
    if not isinstance(value, torch.nn.Module):
        raise ArgumentTypeError(f"{name} must be a model (torch.nn.Module), got {type(value).__name__}; "
                        f"pass the model returned by zoo.load(name)")
    return value


def tokenizer(name: str, value):
    """``value`` if it looks like a Hugging Face tokenizer (callable with ``encode`` and ``decode``)."""
    if isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be a tokenizer, got the name {value!r}; "
                        f"pass the tokenizer returned by zoo.load(name)")
    if not (callable(value) and hasattr(value, "decode")):
        raise ArgumentTypeError(f"{name} must be a Hugging Face tokenizer, got {type(value).__name__}; "
                        f"pass the tokenizer returned by zoo.load(name)")
    return value


def rng(name: str, value) -> random.Random:
    """``value`` if it is a ``random.Random``; an int seed gets a TypeError that shows the fix."""
    if isinstance(value, random.Random):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        raise ArgumentTypeError(f"{name} must be a random.Random, got the int {value}; pass random.Random({value})")
    raise ArgumentTypeError(f"{name} must be a random.Random, got {type(value).__name__} {_shown(value)}")


def device(name: str, value) -> torch.device:
    """``value`` (a torch.device or a name such as "cpu", "cuda", "cuda:1", "mps") as a torch.device."""
    if isinstance(value, torch.device):
        return value
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be a device name such as 'cpu' or 'cuda', or a torch.device; "
                        f"got {type(value).__name__} {_shown(value)}")
    kind, _, index = value.partition(":")
    if kind not in DEVICE_TYPES or (index and not index.isdigit()):
        raise ValueError(f"{name} must be one of {list(DEVICE_TYPES)} (optionally with an index, "
                         f"e.g. 'cuda:0'), got {value!r}")
    return torch.device(value)


def tensor(name: str, value, dims: int | None = None) -> torch.Tensor:
    """``value`` if it is a torch.Tensor (with ``dims`` dimensions when given)."""
    if not isinstance(value, torch.Tensor):
        raise ArgumentTypeError(f"{name} must be a torch.Tensor, got {type(value).__name__} {_shown(value)}")
    if dims is not None and value.dim() != dims:
        raise ValueError(f"{name} must have {dims} dimensions, got shape {tuple(value.shape)}")
    return value


def token_ids(name: str, ids: torch.Tensor, vocab_size: int | None) -> torch.Tensor:
    """``ids`` if it is an integer tensor whose values lie in [0, vocab_size)."""
    ids = tensor(name, ids)
    if ids.dtype in (torch.bool,) or ids.is_floating_point() or ids.is_complex():
        raise ArgumentTypeError(f"{name} must be an integer tensor of token ids, got dtype {ids.dtype}")
    if vocab_size is not None and ids.numel():
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= vocab_size:
            raise ValueError(f"{name} must hold token ids in [0, {vocab_size}) (the model's vocabulary), "
                             f"got ids from {low} to {high}")
    return ids


CONTEXT_WINDOW_KEYS = ("n_positions", "max_position_embeddings", "n_ctx")


def context_window(model_or_config) -> int | None:
    """The number of token positions a model can attend to, read from its config.

    Takes a model (anything with a ``.config``) or a config. GPT-2 calls the window
    ``n_positions`` (``n_ctx`` in old configs), Llama, BERT and most others
    ``max_position_embeddings``; ``None`` means the config names no window (relative
    positions, as in T5). A window below one token raises ValueError.
    """
    found = _window_entry(model_or_config)
    return None if found is None else found[1]


def context_window_key(model_or_config) -> str | None:
    """The config entry :func:`context_window` reads (``"n_positions"``, ``"max_position_embeddings"``...),
    for error messages; ``None`` when there is none."""
    found = _window_entry(model_or_config)
    return None if found is None else found[0]


def _window_entry(model_or_config) -> tuple[str, int] | None:
    config = getattr(model_or_config, "config", model_or_config)
    for key in CONTEXT_WINDOW_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            continue
        if value < 1:
            raise ValueError(f"the model's context window (config.{key}) must be >= 1 token, got {value}")
        return key, int(value)
    return None


# --------------------------------------------------------------------------- counts with a lower bound
# Used by the distributed launcher, its tables and its explorer (as ``_count``): world sizes,
# steps and layer counts, where the bound is part of the message.
def whole_number(name: str, value, low: int = 1) -> int:
    """``value`` if it is an int >= ``low`` (bool refused): "must be a whole number >= low" (distributed)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{name} must be a whole number >= {low}, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}")
    return value
