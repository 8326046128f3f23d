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


def _float_problem(got, want: torch.Tensor, what: str, atol: float = 1e-5) -> str | None:
    """Like :func:`_tensor_problem`, but any floating dtype (float32, float64...) is accepted."""
    if isinstance(got, torch.Tensor) and not got.is_floating_point():
        return f"{what} has dtype {got.dtype}; expected a floating-point tensor (float32 or float64)"
    return _tensor_problem(got, want, what, atol=atol, check_dtype=False)


def check_temperature(fn: Callable) -> bool:
    """Chapter 5. ``fn(logits, temperature) -> probs``: the softmax of logits / temperature over the last dim,
    in any floating dtype, without changing ``logits`` in place."""
    cases = []
    for i, (label, logits) in enumerate(_logit_rows().items()):
        for temperature in ((0.5, 1.0) if i == 0 else (0.7, 2.0)):
            def run(logits=logits, t=temperature):
                given = logits.clone()
                got = _call(fn, given, t)
                if not torch.equal(given, logits):
                    raise _Wrong("your function changed the caller's logits in place (`/=` or `div_`): compute "
                                 "`logits / temperature`, a new tensor, and leave the input as it was")
                want = torch.softmax(logits / t, dim=-1)
                problem = _float_problem(got, want, "the probabilities", atol=1e-6)
                if problem and isinstance(got, torch.Tensor) and got.shape == want.shape:
                    got = got.detach().double()
                    if torch.allclose(got, torch.softmax(logits * t, dim=-1).double(), atol=1e-6) and t != 1:
                        raise _Wrong("multiplied by the temperature; divide the logits by it")
                    if torch.allclose(got, (logits / t).double(), atol=1e-6):
                        raise _Wrong("returned scaled logits; apply the softmax to get probabilities")
                    if torch.allclose(got, torch.log_softmax(logits / t, dim=-1).double(), atol=1e-5):
                        raise _Wrong("returned log-probabilities (log_softmax); use torch.softmax")
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
    the k-th largest value are kept, as in Hugging Face's ``TopKLogitsWarper``; a k larger than the
    vocabulary keeps every token)."""
    from ..sampling import top_k_filter

    cases = []
    for i, (label, logits) in enumerate(_logit_rows().items()):
        for k in ((2, 1) if i == 0 else (2, 7) if i != 2 else (2,)):
            def run(logits=logits, k=k):
                vocab = logits.size(-1)
                try:
                    got = _call(fn, logits.clone(), k)
                except _Wrong as error:
                    if k > vocab:
                        raise _Wrong(f"k = {k} is larger than the vocabulary ({vocab} tokens) and {error}: keep "
                                     "every token then; clamp k with min(k, logits.size(-1))") from None
                    raise
                want = top_k_filter(logits, k)
                problem = _tensor_problem(got, want, "the filtered logits")
                if problem and isinstance(got, torch.Tensor) and got.shape == want.shape:
                    kept, want_kept = torch.isfinite(got).sum(-1), torch.isfinite(want).sum(-1)
                    if torch.equal(got, logits.masked_fill(~torch.isfinite(want), 0.0)):
                        raise _Wrong("removed tokens are 0; set them to -inf so their probability is 0")
                    smallest = torch.topk(logits, min(k, vocab), dim=-1, largest=False).values[..., -1:]
                    if torch.equal(torch.isfinite(got), logits <= smallest) and not torch.equal(
                            logits <= smallest, torch.isfinite(want)):
                        raise _Wrong("kept the k smallest logits; keep the k largest (torch.topk's default)")
                    if (kept < want_kept).any() and (want_kept > min(k, vocab)).any():
                        raise _Wrong(f"keeps {kept.flatten().tolist()} tokens per row; logits tied with the "
                                     "k-th largest value must all be kept (compare by value, not position)")
                    if (kept != want_kept).any():
                        raise _Wrong(f"keeps {kept.flatten().tolist()} tokens per row; expected k = {k} per row "
                                     "(more only when there are ties, all when k exceeds the vocabulary)")
                if problem:
                    raise _Wrong(problem)
            cases.append(_Case(f"{label}, k={k}" + (" (larger than the vocabulary)" if k > logits.size(-1) else ""),
                               run, hidden=i > 0))
    return _run("top_k", cases)


def _keep_at_most(logits: torch.Tensor, p: float) -> torch.Tensor:
    """The tokens a nucleus with ``<= p`` in place of ``< p`` keeps (one token too many at an exact boundary)."""
    sorted_probs, order = torch.sort(torch.softmax(logits, dim=-1), dim=-1, descending=True)
    keep = sorted_probs.cumsum(-1) - sorted_probs <= p
    keep[..., 0] = True
    return keep.scatter(-1, order, keep)


def check_top_p(fn: Callable) -> bool:
    """Chapter 5. ``fn(logits, p) -> logits``: keep the smallest set of most probable tokens whose
    probabilities add up to at least p (the most probable token always stays); the rest -inf. Compared
    with ``llmlab.sampling.top_p_filter``, itself tested against Hugging Face's ``TopPLogitsWarper``."""
    from ..sampling import top_p_filter

    cases = []
    rows = _logit_rows()
    del rows["ties: logits [1, 1, 1, 0]"]  # at an exact tie, which token survives depends on the sort
    rows["probabilities 0.5, 0.3, 0.2"] = torch.tensor([0.5, 0.3, 0.2]).log()
    # the mass before the second token is exactly p: it stays out (Hugging Face keeps one token)
    rows["probabilities 0.5, 0.25, 0.125, 0.125 (an exact boundary)"] = torch.tensor([0.5, 0.25, 0.125, 0.125]).log()
    settings = {0: (0.9, 0.5), 1: (0.8, 0.3), 2: (0.6,), 3: (1.0, 0.3), 4: (0.75, 0.85, 0.45), 5: (0.5,)}
    for i, (label, logits) in enumerate(rows.items()):
        for p in settings[i]:
            def run(logits=logits, p=p):
                got = _call(fn, logits.clone(), p)
                want = top_p_filter(logits, p)
                problem = _tensor_problem(got, want, "the filtered logits")
                if problem and isinstance(got, torch.Tensor) and got.shape == want.shape:
                    kept, want_kept = torch.isfinite(got).sum(-1), torch.isfinite(want).sum(-1)
                    if torch.allclose(got.double(), torch.softmax(want, -1).double(), atol=1e-6):
                        raise _Wrong("returned probabilities; return logits with the removed tokens at -inf")
                    at_most = _keep_at_most(logits, p)
                    if p < 1 and torch.equal(torch.isfinite(got), at_most) and not torch.equal(
                            at_most, torch.isfinite(want)):
                        raise _Wrong("kept a token whose mass before it is exactly p: the nucleus is complete once "
                                     "the sum reaches p, so keep a token only while the mass before it is below p "
                                     "(< p, not <= p, as in Hugging Face)")
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
                if problem:
                    raise _Wrong(problem)
            cases.append(_Case(f"{label}, p={p}", run, hidden=i > 0))
    return _run("top_p", cases)


def check_entropy(fn: Callable) -> bool:
    """Chapter 5. ``fn(probs) -> entropy in bits`` of each row (last dim), with 0 log 0 = 0, in any
    floating dtype."""
    from ..metrics import entropy_bits

    def case(probs, label, hidden=True):
        def run():
            got = _call(fn, probs.clone())
            want = entropy_bits(probs)
            problem = _float_problem(got, want, "the entropy", atol=1e-5)
            if problem and isinstance(got, torch.Tensor) and got.shape == want.shape:
                got, want = got.detach().double(), want.double()
                if torch.isnan(got).any():
                    raise _Wrong("NaN where a probability is 0: use the convention 0 * log 0 = 0")
                if torch.allclose(got, want * math.log(2), atol=1e-5):
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
        case(torch.tensor([[0.25, 0.75, 0.0]], dtype=torch.float64), "float64 probabilities"),
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
