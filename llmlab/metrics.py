"""Numbers that describe a language model and the text it writes.

Chapter 3 uses ``perplexity`` (and ``mean_loss_nats``) to follow training;
chapter 5 uses ``entropy_bits`` to show what temperature, top-k and top-p do to a
distribution, and ``distinct_n``, ``repeated_ngram_fraction`` and
``in_vocabulary_fraction`` to compare the text that each decoding method writes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F

from . import _checks

_WORD = re.compile(r"[a-z']+")


def _as_units(sample: str | Sequence[int] | torch.Tensor) -> list:
    """A text becomes its lower-cased whitespace words; token ids stay ids."""
    if isinstance(sample, str):
        return sample.lower().split()
    if isinstance(sample, torch.Tensor):
        if sample.dim() != 1:
            raise ValueError(f"a token sequence must be 1-D, got shape {tuple(sample.shape)}")
        return sample.tolist()
    return list(sample)


def _ngrams(units: list, n: int) -> list[tuple]:
    return [tuple(units[i : i + n]) for i in range(len(units) - n + 1)]


# -----------------------------------------------------------------------------
# distributions


def entropy_bits(probs: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Shannon entropy, in bits, of the probability rows of ``probs`` along ``dim``.

    Uses the convention 0 log 0 = 0, so tokens filtered out (probability 0) add
    nothing. Uniform over V tokens gives log2(V); a one-hot row gives 0.
    """
    _checks.tensor("probs", probs)
    if not probs.is_floating_point():
        raise _checks.ArgumentTypeError(f"probs must be a floating-point tensor of probabilities, got dtype {probs.dtype}")
    if torch.isnan(probs).any():
        raise ValueError("probs must be probabilities, got NaN entries; pass softmax(logits)")
    if (probs < 0).any():
        raise ValueError("probs must be probabilities (>= 0); got negative entries; pass softmax(logits)")
    if probs.numel():
        totals = probs.sum(dim=dim)
        tol = 1e-3 if probs.dtype in (torch.float32, torch.float64) else 2e-2
        if ((totals - 1).abs() > tol).any():
            worst = totals.flatten()[(totals - 1).abs().flatten().argmax()].item()
            raise ValueError(f"probs must be distributions that sum to 1 along dim={dim} (within {tol}), got a "
                             f"row that sums to {worst:.4g}; pass softmax(logits)")
    # xlogy(p, p) = p * ln p, and exactly 0 where p == 0
    return -torch.special.xlogy(probs, probs).sum(dim=dim) / math.log(2)


# -----------------------------------------------------------------------------
# perplexity


@torch.no_grad()
def mean_loss_nats(
    model: torch.nn.Module,
    token_ids: torch.Tensor,
    seq_len: int = 128,
    batch_size: int = 16,
    device: torch.device | str | None = None,
) -> float:
    """Mean next-token cross-entropy, in nats per token, of a causal LM on ``token_ids``.

    ``token_ids`` is a 1-D LongTensor. It is cut into windows of ``seq_len + 1``
    tokens that start every ``seq_len`` tokens (neighbours share one token), so
    each window predicts ``seq_len`` targets and every token after the first is
    predicted exactly once, from at most ``seq_len`` tokens of context. A shorter
    last window takes the leftover tokens. The model runs in eval mode (its mode
    is restored afterwards) on ``device`` (default: the model's own device).
    """
    _checks.model("model", model)
    if not isinstance(token_ids, torch.Tensor) or token_ids.dim() != 1:
        raise ValueError("token_ids must be a 1-D LongTensor of token ids, e.g. tokenizer(text).input_ids as a tensor")
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    _checks.token_ids("token_ids", token_ids, vocab if isinstance(vocab, int) else None)
    if device is not None:
        _checks.device("device", device)
    if token_ids.numel() < 2:
        raise ValueError(f"token_ids must hold at least 2 tokens (one input, one target), got {token_ids.numel()}")
    for name, value in (("seq_len", seq_len), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")

    device = torch.device(device) if device is not None else next(model.parameters()).device
    token_ids = token_ids.long()
    n_targets = token_ids.numel() - 1
    n_full = n_targets // seq_len

    # windows of seq_len + 1 tokens, stride seq_len: (n_full, seq_len + 1)
    windows = [token_ids[: n_full * seq_len + 1].unfold(0, seq_len + 1, seq_len)] if n_full else []
    if n_targets % seq_len:
        windows.append(token_ids[n_full * seq_len :].unsqueeze(0))  # (1, leftover + 1)

    was_training = model.training
    model.eval()
    try:
        total_nats, total_targets = 0.0, 0
        for group in windows:
            for batch in group.split(batch_size):  # (b, L + 1)
                batch = batch.to(device)
                logits = model(input_ids=batch[:, :-1]).logits.float()  # (b, L, V)
                targets = batch[:, 1:]  # (b, L): each position predicts the next token
                nats = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum")
                total_nats += nats.item()
                total_targets += targets.numel()
    finally:
        model.train(was_training)
    return total_nats / total_targets


def perplexity(
    model: torch.nn.Module,
    token_ids: torch.Tensor,
    seq_len: int = 128,
    batch_size: int = 16,
    device: torch.device | str | None = None,
) -> float:
    """Perplexity of a causal LM on ``token_ids``: exp of ``mean_loss_nats``.

    Measured in tokens: the number of equally likely tokens the model is, on
    average, choosing between (a uniform model over V tokens scores exactly V).
    It depends on the tokenizer, so compare perplexities only under one tokenizer.
    """
    return math.exp(mean_loss_nats(model, token_ids, seq_len, batch_size, device))


# -----------------------------------------------------------------------------
# properties of generated text


def distinct_n(samples: Iterable[str | Sequence[int]] | str, n: int) -> float:
    """Distinct n-grams divided by all n-grams, pooled over ``samples`` (0 to 1).

    Strings are split into lower-cased whitespace words; lists (or 1-D tensors) of
    token ids are used as they are. N-grams never cross from one sample to the
    next. Returns 0.0 when no sample is at least ``n`` long. A single string
    counts as one sample.
    """
    n = _checks.positive_int("n", n)
    if isinstance(samples, str):
        samples = [samples]
    all_ngrams = [g for s in samples for g in _ngrams(_as_units(s), n)]
    if not all_ngrams:
        return 0.0
    return len(set(all_ngrams)) / len(all_ngrams)


def repeated_ngram_fraction(tokens: str | Sequence[int], n: int) -> float:
    """Share of n-gram occurrences in one sequence that repeat an earlier n-gram (0 to 1).

    ``"a b a b a b"`` with n=2 has bigrams ab, ba, ab, ba, ab: the last three
    repeat, so 3/5. A greedy decoder stuck in a loop drives this towards 1.
    Strings are split into lower-cased whitespace words. Returns 0.0 when the
    sequence is shorter than ``n``.
    """
    n = _checks.positive_int("n", n)
    grams = _ngrams(_as_units(tokens), n)
    if not grams:
        return 0.0
    seen: set[tuple] = set()
    repeats = 0
    for g in grams:
        repeats += g in seen
        seen.add(g)
    return repeats / len(grams)


def in_vocabulary_fraction(texts: Iterable[str] | str, vocabulary: set[str]) -> float:
    """Share of words in ``texts`` that belong to ``vocabulary`` (0 to 1).

    Words are the matches of ``[a-z']+`` in the lower-cased text; the vocabulary
    is compared lower-cased too. A tiny model's made-up words show up as a
    fraction below 1. Returns 0.0 when the texts hold no words.
    """
    if isinstance(texts, str):
        texts = [texts]
    texts = _checks.strings("texts", list(texts) if isinstance(texts, Iterable) else texts, allow_empty=True)
    if isinstance(vocabulary, (str, bytes)):
        raise _checks.ArgumentTypeError(f"vocabulary must be a set of words, got the single {type(vocabulary).__name__} "
                                        f"{vocabulary!r:.60}; wrap it in a set: {{{vocabulary!r:.60}}}")
    vocabulary = _checks.strings("vocabulary", list(vocabulary) if isinstance(vocabulary, Iterable) else vocabulary,
                                 allow_empty=True)
    vocab = {w.lower() for w in vocabulary}
    words = [w for t in texts for w in _WORD.findall(t.lower())]
    if not words:
        return 0.0
    return sum(w in vocab for w in words) / len(words)


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 (Lin 2004) of two texts: the longest common subsequence of their words.

    Words are lower-cased runs of letters and digits; precision is LCS / candidate words,
    recall LCS / reference words, and the score their harmonic mean (0 when either text
    has no words). It rewards shared words in the same order and nothing else: a correct
    paraphrase scores low, and a fluent copy of the wrong facts can score high.
    """
    _checks.string("candidate", candidate)
    _checks.string("reference", reference)
    a, b = re.findall(r"[a-z0-9]+", candidate.lower()), re.findall(r"[a-z0-9]+", reference.lower())
    if not a or not b:
        return 0.0
    previous = [0] * (len(b) + 1)  # LCS lengths by dynamic programming, one row at a time
    for x in a:
        row = [0]
        for j, y in enumerate(b):
            row.append(previous[j] + 1 if x == y else max(previous[j + 1], row[j]))
        previous = row
    lcs = previous[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(a), lcs / len(b)
    return 2 * precision * recall / (precision + recall)
