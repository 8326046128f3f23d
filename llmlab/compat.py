"""Small shims for what changed between transformers releases, so llmlab runs on a range of them.

The book's own environment is locked (``requirements/lock.txt``), but Colab and
readers' machines bring other versions. Each shim says which release changed what.
"""

from __future__ import annotations

import inspect


def cache_argument(model) -> str:
    """The keyword a causal LM's ``forward`` takes its key-value cache under.

    transformers 5.24 renamed ``past_key_values`` to ``cache`` (the old name still
    works there but prints a FutureWarning on every call); earlier releases only
    know ``past_key_values``.
    """
    if not callable(getattr(model, "forward", None)):
        raise TypeError(f"model must be a model with a forward method (torch.nn.Module), got {type(model).__name__}"
                        + (f" {model!r}; pass the loaded model, not its name" if isinstance(model, str) else ""))
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def returned_cache(output):
    """The key-value cache a forward pass returned (``output.cache`` from 5.24, ``past_key_values`` before)."""
    if not (hasattr(output, "cache") or hasattr(output, "past_key_values")):
        raise TypeError(f"output must be what a forward pass returned (with past_key_values), got "
                        f"{type(output).__name__}")
    cache = getattr(output, "cache", None)
    return cache if cache is not None else getattr(output, "past_key_values", None)


def quiet_torchao_import() -> None:
    """Keep torchao's import-time messages off the reader's page.

    With torchao installed (chapter 6 uses it), transformers imports it while loading
    any model, and torchao 0.18 then logs that its CUDA-only extensions (MXFP8, CUTLASS)
    and Triton are missing, while torch 2.13 logs that torchao registers enum types the
    old way. None of it concerns a CPU reader or can be acted on, so those two loggers
    are set to errors only; everything else torchao or torch report still shows.
    """
    import logging

    for name in ("torchao", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)
