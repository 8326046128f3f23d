"""Chapter 5 (sampling): the checks that ``exercises/src/05_sampling.py`` calls,
its quiz key and their private helpers (the shared machinery is in ``_harness.py``)."""

from __future__ import annotations

import math
from typing import Callable

import torch

from ._harness import _call, _Case, _quiz, _run, _salted, _tensor_problem, _Wrong


def _logit_rows(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "one row of 6 logits": torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, -3.0]),
        "a batch of 3 rows of 50 random logits": torch.randn(3, 50, generator=g) * 2,
        "ties: logits [1, 1, 1, 0]": torch.tensor([1.0, 1.0, 1.0, 0.0]),
        "a (2, 2, 10) batch": torch.randn(2, 2, 10, generator=g),
        "one very confident token": torch.tensor([20.0, 0.0, 0.0, 0.0, 0.0]),
    }


def check_temperature(fn: Callable) -> bool:
    """Chapter 5. ``fn(logits, temperature) -> probs``: the softmax of logits / temperature over the last dim."""
    cases = []
    for i, (label, logits) in enumerate(_logit_rows().items()):
        for temperature in ((0.5, 1.0) if i == 0 else (0.7, 2.0)):
            def run(logits=logits, t=temperature):
                got = _call(fn, logits.clone(), t)
                want = torch.softmax(logits / t, dim=-1)
                problem = _tensor_problem(got, want, "the probabilities", atol=1e-6)
                if problem and isinstance(got, torch.Tensor) and got.shape == want.shape:
                    if torch.allclose(got, torch.softmax(logits * t, dim=-1), atol=1e-6) and t != 1:
                        raise _Wrong("multiplied by the temperature; divide the logits by it")
                    if torch.allclose(got, logits / t, atol=1e-6):
                        raise _Wrong("returned scaled logits; apply the softmax to get probabilities")
                    sums = got.sum(-1)
                    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-5):
                        raise _Wrong("the probabilities are not normalised: each row should sum to 1 "
                                     "(softmax over the last dim)")
                if problem:
                    raise _Wrong(problem)
            cases.append(_Case(f"{label}, temperature {temperature}", run, hidden=i > 0))
    return _run("temperature", cases)


def check_top_k(fn: Callable) -> bool:
    """Chapter 5. ``fn(logits, k) -> logits`` with all but the k largest of each row set to -inf (ties with
    the k-th largest value are kept, as in Hugging Face's ``TopKLogitsWarper``)."""
    from ..sampling import top_k_filter

    cases = []
    for i, (label, logits) in enumerate(_logit_rows().items()):
        for k in ((2, 1) if i == 0 else (2, 7) if i != 2 else (2,)):
            def run(logits=logits, k=k):
                got = _call(fn, logits.clone(), k)
                want = top_k_filter(logits, k)
                problem = _tensor_problem(got, want, "the filtered logits")
                if problem and isinstance(got, torch.Tensor) and got.shape == want.shape:
                    kept, want_kept = torch.isfinite(got).sum(-1), torch.isfinite(want).sum(-1)
                    if (kept < want_kept).any() and (want_kept > min(k, logits.size(-1))).any():
                        raise _Wrong(f"keeps {kept.flatten().tolist()} tokens per row; logits tied with the "
                                     "k-th largest value must all be kept (compare by value, not position)")
                    if (kept != want_kept).any():
                        raise _Wrong(f"keeps {kept.flatten().tolist()} tokens per row; expected k = {k} per row "
                                     "(more only when there are ties)")
                    if torch.isfinite(got).all() and (got == 0).any() and not (logits == 0).any():
                        raise _Wrong("removed tokens are 0; set them to -inf so their probability is 0")
                if problem:
                    raise _Wrong(problem)
            cases.append(_Case(f"{label}, k={k}", run, hidden=i > 0))
    return _run("top_k", cases)


def check_top_p(fn: Callable) -> bool:
    """Chapter 5. ``fn(logits, p) -> logits``: keep the smallest set of most probable tokens whose
    probabilities add up to at least p (the most probable token always stays); the rest -inf. Compared
    with ``llmlab.sampling.top_p_filter``, itself tested against Hugging Face's ``TopPLogitsWarper``."""
    from ..sampling import top_p_filter

    cases = []
    rows = _logit_rows()
    del rows["ties: logits [1, 1, 1, 0]"]  # at an exact tie, which token survives depends on the sort
    rows["probabilities 0.5, 0.3, 0.2"] = torch.tensor([0.5, 0.3, 0.2]).log()
    settings = {0: (0.9, 0.5), 1: (0.8, 0.3), 2: (0.6,), 3: (1.0, 0.3), 4: (0.75, 0.85, 0.45)}
    for i, (label, logits) in enumerate(rows.items()):
        for p in settings[i]:
            def run(logits=logits, p=p):
                got = _call(fn, logits.clone(), p)
                want = top_p_filter(logits, p)
                problem = _tensor_problem(got, want, "the filtered logits")
                if problem and isinstance(got, torch.Tensor) and got.shape == want.shape:
                    kept, want_kept = torch.isfinite(got).sum(-1), torch.isfinite(want).sum(-1)
                    if (kept == 0).any():
                        raise _Wrong("a row keeps no token at all; the most probable token must always stay")
                    if p == 1.0 and (kept != want_kept).any():
                        raise _Wrong("p = 1 must keep every token (the filter is off); rounding in the running "
                                     "sum can make it drop the tail, so treat p = 1 apart")
                    if (kept != want_kept).any():
                        more = "too many" if (kept > want_kept).any() else "too few"
                        raise _Wrong(f"keeps {kept.flatten().tolist()} tokens per row: {more}. Keep adding "
                                     "tokens, most probable first, until their probabilities sum to at least "
                                     "p, and include the token that crosses p")
                    if not torch.equal(torch.isfinite(got), torch.isfinite(want)):
                        raise _Wrong("keeps the right number of tokens but not the most probable ones "
                                     "(did the order get lost when sorting and un-sorting?)")
                    if torch.allclose(got.exp().nan_to_num(), torch.softmax(want, -1).nan_to_num(), atol=1e-6):
                        raise _Wrong("returned probabilities; return logits with the removed tokens at -inf")
                if problem:
                    raise _Wrong(problem)
            cases.append(_Case(f"{label}, p={p}", run, hidden=i > 0))
    return _run("top_p", cases)


def check_entropy(fn: Callable) -> bool:
    """Chapter 5. ``fn(probs) -> entropy in bits`` of each row (last dim), with 0 log 0 = 0."""
    from ..metrics import entropy_bits

    def case(probs, label, hidden=True):
        def run():
            got = _call(fn, probs.clone())
            want = entropy_bits(probs)
            problem = _tensor_problem(got, want, "the entropy", atol=1e-5)
            if problem and isinstance(got, torch.Tensor) and got.shape == want.shape:
                if torch.isnan(got).any():
                    raise _Wrong("NaN where a probability is 0: use the convention 0 * log 0 = 0")
                if torch.allclose(got.double(), want.double() * math.log(2), atol=1e-5):
                    raise _Wrong("the entropy is in nats; use log base 2 for bits")
                if torch.allclose(got, -want, atol=1e-5):
                    raise _Wrong("the sign is flipped: entropy is -sum p log p, which is >= 0")
            if problem:
                raise _Wrong(problem)
        return _Case(label, run, hidden)

    g = torch.Generator().manual_seed(0)
    return _run("entropy", [
        case(torch.tensor([0.5, 0.25, 0.25]), "probs [0.5, 0.25, 0.25]", hidden=False),
        case(torch.full((2, 8), 1 / 8), "two uniform rows over 8 tokens"),
        case(torch.tensor([1.0, 0.0, 0.0]), "a one-hot row (zeros inside)"),
        case(torch.softmax(torch.randn(3, 4, 20, generator=g), -1), "a (3, 4, 20) batch"),
    ])


_SAMPLING_KEY = {
    "temperature that makes sampling approach greedy decoding (close to 0, 1 or large)": (
        _salted("close to 0"), "Dividing logits by a small number widens the gaps between them."),
    "top_k that disables the filter in Hugging Face": (_salted("0"), "A value that means 'no limit'."),
    "tokens kept by top_p=1.0 over a vocabulary of 1024": (_salted("1024"), "p = 1 requires the whole mass."),
    "entropy in bits of a uniform distribution over 1024 tokens": (_salted("10"), "log2 of the number of tokens."),
    "is temperature a learned parameter (yes/no)": (_salted("no"), "Is it changed by training or set at inference?"),
}


def check_sampling_quiz(answers: dict) -> bool:
    """Chapter 5 quiz: inference parameters."""
    return _quiz("sampling_quiz", answers, _SAMPLING_KEY)
