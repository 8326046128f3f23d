"""Does a model repeat its training text? Verbatim n-gram overlap (chapter 3).

A language model trained for several passes over a small corpus can learn to
reproduce stretches of it word for word. A first check is to cut the model's
samples into token n-grams and ask what share of them occur somewhere in the
training text (Lee et al. 2022 did this with 50-token spans and found that over
1% of the unprompted output of models trained on web corpora was copied
verbatim from their training data). A share means little on its own: ordinary text of the same
kind shares n-grams with the training text too (set phrases, and in a templated
corpus whole sentences). The baseline is the same share for held-out text that
the model never trained on; a model that copies sits above it.

The training text's n-grams are kept as a sorted array of 64-bit hashes, so a
corpus of a million tokens takes a few megabytes and a lookup is a binary search.
"""

from __future__ import annotations

import numpy as np
import torch

from . import _checks


def _check_stop(stop_token_id) -> int | None:
    if stop_token_id is None:
        return None
    if isinstance(stop_token_id, bool) or not isinstance(stop_token_id, (int, np.integer)) or stop_token_id < 0:
        raise ValueError(f"stop_token_id must be None or a token id (an integer >= 0), got {stop_token_id!r}")
    return int(stop_token_id)


def _as_ids(ids, what: str = "ids") -> np.ndarray:
    """One sequence of token ids (1-D tensor, array or list of ints) as an int64 array."""
    if isinstance(ids, torch.Tensor):
        if ids.dim() != 1 or ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
            raise ValueError(f"{what} must be a 1-D tensor of integer token ids, got {ids.dtype} of "
                             f"shape {tuple(ids.shape)}")
        array = ids.detach().cpu().numpy().astype(np.int64)
    elif isinstance(ids, np.ndarray):
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"{what} must be a 1-D array of integer token ids, got {ids.dtype} of shape {ids.shape}")
        array = ids.astype(np.int64)
    elif isinstance(ids, (list, tuple)):
        if not all(isinstance(t, (int, np.integer)) and not isinstance(t, bool) for t in ids):
            raise ValueError(f"{what} must hold only integer token ids")
        array = np.asarray(ids, dtype=np.int64).reshape(-1)
    else:
        raise TypeError(f"{what} must be token ids (a 1-D tensor, array or list of ints), got {type(ids).__name__}")
    if array.size and array.min() < 0:
        raise ValueError(f"{what} must hold token ids >= 0, got {int(array.min())}")
    return array


def _documents(ids) -> list[np.ndarray]:
    """One sequence of token ids, a list of such sequences (one per document), or a (B, T) tensor of rows."""
    if isinstance(ids, torch.Tensor) and ids.dim() == 2:
        return [_as_ids(row, f"ids[{i}]") for i, row in enumerate(ids)]
    if isinstance(ids, (list, tuple)) and ids and isinstance(ids[0], (list, tuple, np.ndarray, torch.Tensor)):
        return [_as_ids(d, f"ids[{i}]") for i, d in enumerate(ids)]
    return [_as_ids(ids)]


def _hash_windows(array: np.ndarray, n: int, stop: int | None) -> np.ndarray:
    """The 64-bit hash of every window of ``n`` tokens, leaving out windows that contain ``stop``."""
    width = array.size - n + 1  # number of windows
    if width < 1:
        return np.zeros(0, dtype=np.uint64)
    tokens = array.astype(np.uint64)
    rng = np.random.default_rng(0)  # fixed: the same n-gram gets the same hash in every call
    mult = rng.integers(0, 1 << 63, size=n, dtype=np.uint64) * np.uint64(2) + np.uint64(1)  # odd
    h = np.full(width, np.uint64(0x9E3779B97F4A7C15), dtype=np.uint64)
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps around (mod 2^64) on purpose
        for k in range(n):  # fold in the k-th token of every window at once
            h ^= tokens[k:k + width]
            h *= mult[k]
            h ^= h >> np.uint64(29)
    if stop is not None:  # a window holds the stop token when the running count of stops grows inside it
        stops = np.concatenate([[0], np.cumsum(array == stop)])
        h = h[stops[n:] - stops[:-n] == 0]
    return h


def ngram_hashes(ids, n: int = 8, stop_token_id: int | None = None) -> np.ndarray:
    """The distinct token ``n``-grams of ``ids``, as a sorted array of 64-bit hashes.

    ``ids`` is one sequence of token ids (a 1-D tensor, array or list), a list
    of them (one per document) or a (B, T) tensor (one row per document). N-grams that contain ``stop_token_id`` (the
    end-of-text token between stories) are left out, so no n-gram spans two
    documents. Two different n-grams share a hash with probability about 2^-64.
    """
    n = _checks.positive_int("n", n)
    stop = _check_stop(stop_token_id)
    parts = [_hash_windows(a, n, stop) for a in _documents(ids)]
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.uint64)


def ngram_overlap(ids, reference: np.ndarray, n: int = 8, stop_token_id: int | None = None) -> tuple[int, int]:
    """How many of the token ``n``-grams of ``ids`` occur in ``reference``: ``(found, total)``.

    ``reference`` is :func:`ngram_hashes` of the training text with the same ``n``.
    Every occurrence counts (an n-gram that ``ids`` repeats is counted each time);
    n-grams that contain ``stop_token_id`` are left out, as in :func:`ngram_hashes`.
    """
    n = _checks.positive_int("n", n)
    stop = _check_stop(stop_token_id)
    if not isinstance(reference, np.ndarray) or reference.dtype != np.uint64 or reference.ndim != 1:
        raise TypeError("reference must be the sorted uint64 array that ngram_hashes returns, got "
                        f"{type(reference).__name__}")
    hashes = np.concatenate([_hash_windows(a, n, stop) for a in _documents(ids)])
    if not hashes.size or not reference.size:
        return 0, int(hashes.size)
    at = np.minimum(np.searchsorted(reference, hashes), reference.size - 1)
    return int((reference[at] == hashes).sum()), int(hashes.size)


# ---------------------------------------------------------------- prompted extraction
# Carlini et al. (2021, 2023) measure memorisation by prompting a model with the start of
# a training text and testing whether it completes the rest verbatim. The baseline, as
# for n-grams, is the same test on held-out texts of the same kind.


def exact_continuations(model: torch.nn.Module, docs, prompt_tokens: int = 32,
                        new_tokens: int = 32, start_token_id: int | None = None,
                        batch_size: int = 100) -> np.ndarray:
    """Greedy-continue the first ``prompt_tokens`` tokens of each document; match the truth.

    ``docs`` is a list of token-id sequences (one per document), each at least
    ``prompt_tokens + new_tokens`` tokens long. ``start_token_id`` (such as the
    end-of-text token that precedes a story in the training stream) is put in front of
    every prompt when given. Returns a boolean array of shape ``(len(docs), new_tokens)``:
    entry ``[i, k]`` says whether the first ``k + 1`` generated tokens of document ``i``
    all equal its true next tokens (a running "exact so far"), so column ``k`` is the
    exact-continuation test at length ``k + 1`` tokens.
    """
    from .sampling import generate  # sampling sits above this module's hashing helpers

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (a causal LM), got {type(model).__name__}")
    for name, value in (("prompt_tokens", prompt_tokens), ("new_tokens", new_tokens),
                        ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1 (tokens or documents), got {value!r}")
    start = _check_stop(start_token_id)
    if not isinstance(docs, (list, tuple)) or not docs:
        raise ValueError("docs must be a non-empty list of token-id sequences, one per document")
    arrays = [_as_ids(d, f"docs[{i}]") for i, d in enumerate(docs)]
    need = prompt_tokens + new_tokens
    short = [i for i, a in enumerate(arrays) if a.size < need]
    if short:
        raise ValueError(f"every document needs at least prompt_tokens + new_tokens = {need} tokens; "
                         f"docs[{short[0]}] has {arrays[short[0]].size}")
    head = [] if start is None else [start]
    prompts = torch.tensor([head + a[:prompt_tokens].tolist() for a in arrays])
    truth = torch.tensor(np.stack([a[prompt_tokens:need] for a in arrays]))
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(arrays), batch_size):
        rows = generate(model, prompts[i:i + batch_size].to(device), max_new_tokens=new_tokens)
        new = rows[:, prompts.shape[1]:].cpu()
        if new.shape[1] < new_tokens:  # cannot happen without a stop token; kept for safety
            new = torch.nn.functional.pad(new, (0, new_tokens - new.shape[1]), value=-1)
        out.append(new)
    same = torch.cat(out) == truth
    return torch.cumprod(same.int(), dim=1).bool().numpy()
