"""The machinery every chapter's checks share (:mod:`llmlab.exercises` describes the checks).

- :class:`_Case`, :func:`_run`: a check is a list of cases (the notebook's example and hidden edge
  cases); :func:`_run` runs them, prints one line per failure and a summary, and returns True or False.
- :func:`_call`: calls the student's function, turning ``NotImplementedError`` into :class:`_NotDone`
  ("not done yet") and any other exception into :class:`_Wrong` (feedback on that case).
- :func:`_tensor_problem`, :func:`_number_problem`: say in words how a result differs from the
  reference (shape, dtype, constant factor or shift, too many or too few entries kept...).
- :func:`_salted`, :func:`_norm_answer`, :func:`_quiz`: quiz answers, stored only as salted hashes.
- :func:`_tiny_gpt2`: a small random GPT-2 for the checks of several chapters.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

PASS, FAIL = "\u2705", "\u274c"  # check mark, cross


# =========================================================================== machinery
class _Wrong(Exception):
    """One case failed; the message says what went wrong in words."""


class _NotDone(Exception):
    """The student's code still raises NotImplementedError (or the answer is still ``...``)."""


@dataclass
class _Case:
    label: str          # the input, in words
    run: Callable[[], None]  # raises _Wrong with the problem, or returns None
    hidden: bool = True


def _call(fn: Callable, *args, **kwargs) -> Any:
    """Call the student's function; turn its exceptions into feedback."""
    if not callable(fn):
        raise _Wrong(f"expected a function, got {type(fn).__name__}: pass the function itself, without calling it")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise _NotDone() from None
    except Exception as error:  # noqa: BLE001 -- any error of the student's code is feedback
        raise _Wrong(f"your function raised {type(error).__name__}: {error}") from None


def _run(name: str, cases: list[_Case]) -> bool:
    """Run every case, print one line per failure and a summary; return True if all pass."""
    failures: list[str] = []
    for case in cases:
        try:
            case.run()
        except _NotDone:
            print(f"{FAIL} {name}: not done yet. Replace `raise NotImplementedError` (or `...`) with your code, "
                  "run that cell, then run this check again.")
            return False
        except _Wrong as problem:
            kind = "hidden case" if case.hidden else "the example above"
            failures.append(f"  - {kind}: {case.label}\n    {problem}")
        except Exception as error:  # noqa: BLE001 -- a result of an unexpected kind breaks the comparison
            kind = "hidden case" if case.hidden else "the example above"
            failures.append(f"  - {kind}: {case.label}\n    the result could not be compared with the expected "
                            f"one ({type(error).__name__}: {error}); check its type and shape")
    shown = sum(not c.hidden for c in cases)
    if failures:
        print(f"{FAIL} {name}: {len(failures)} of {len(cases)} cases fail "
              f"({shown} from the notebook, {len(cases) - shown} hidden edge cases).")
        print("\n".join(failures))
        return False
    hidden = len(cases) - shown
    print(f"{PASS} {name}: all {len(cases)} cases pass ({shown} from the notebook, "
          f"{hidden} hidden edge case{'s' if hidden != 1 else ''}).")
    return True


def _not_done(value: Any) -> bool:
    return value is Ellipsis or value is None


def _tensor_problem(got: Any, want: torch.Tensor, what: str = "the result", atol: float = 1e-5,
                    rtol: float = 1e-4, check_dtype: bool = True) -> str | None:
    """Say in words how ``got`` differs from ``want`` (None when it matches)."""
    if not isinstance(got, torch.Tensor):
        return f"{what} is a {type(got).__name__}; expected a torch.Tensor"
    if tuple(got.shape) != tuple(want.shape):
        hint = ""
        if got.numel() == want.numel():
            hint = " (same number of elements: a transpose or reshape too many or too few?)"
        elif got.dim() < want.dim():
            hint = " (a dimension went missing: keepdim, or a reduction over the wrong dim?)"
        return f"{what} has shape {tuple(got.shape)}; expected shape {tuple(want.shape)}{hint}"
    if check_dtype and got.dtype != want.dtype:
        return f"{what} has dtype {got.dtype}; expected dtype {want.dtype}"
    if want.dtype == torch.bool or not want.is_floating_point():
        if torch.equal(got.to(want.dtype), want):
            return None
        wrong = (got.to(want.dtype) != want).nonzero()
        return f"{what} differs at {len(wrong)} of {want.numel()} positions, first at index {tuple(wrong[0].tolist())}"
    got = got.detach().to(torch.float64)
    want = want.detach().to(torch.float64)
    finite_got, finite_want = torch.isfinite(got), torch.isfinite(want)
    if not torch.equal(finite_got, finite_want):
        if torch.isnan(got).any():
            return f"{what} contains NaN (a 0/0, an inf - inf, or a softmax of a row that is all -inf?)"
        extra = int((finite_got & ~finite_want).sum())
        missing = int((~finite_got & finite_want).sum())
        parts = []
        if extra:
            parts.append(f"{extra} entries are finite that should be -inf/inf (kept too many)")
        if missing:
            parts.append(f"{missing} entries are -inf/inf that should be finite (removed too many)")
        return f"{what}: " + "; ".join(parts)
    same_inf = ~finite_want
    if same_inf.any() and not torch.equal(got[same_inf], want[same_inf]):
        return f"{what} has infinities of the wrong sign"
    g, w = got[finite_want], want[finite_want]
    if torch.allclose(g, w, atol=atol, rtol=rtol):
        return None
    nonzero = w.abs() > 1e-9
    if nonzero.sum() >= 2:
        ratio = g[nonzero] / w[nonzero]
        if torch.allclose(ratio, ratio[0].expand_as(ratio), rtol=1e-3) and abs(ratio[0].item() - 1) > 1e-3:
            return f"{what} is off by a constant factor of {ratio[0].item():.4g} everywhere"
    diff = g - w
    if diff.numel() >= 2 and torch.allclose(diff, diff[0].expand_as(diff), atol=atol) and abs(diff[0].item()) > atol:
        return f"{what} is shifted by a constant {diff[0].item():+.4g} everywhere"
    worst = (got - want).abs().nan_to_num(0.0)
    index = tuple(int(i) for i in (worst == worst.max()).nonzero()[0].tolist())
    return f"{what} differs from the expected values by up to {worst.max().item():.3g} (largest at index {index})"


def _number_problem(got: Any, want: float, what: str, rel: float = 1e-6) -> str | None:
    """Say how a number differs (None when it matches to ``rel``)."""
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        return f"{what} is a {type(got).__name__}; expected a number"
    if not math.isfinite(got):
        return f"{what} is {got}; expected a finite number"
    if math.isclose(got, want, rel_tol=rel, abs_tol=1e-12):
        return None
    if want != 0 and got != 0:
        ratio = got / want
        for factor, words in ((2, "2"), (4, "4"), (8, "8"), (1e9, "1e9 (bytes vs GB?)"), (2**30, "2**30 (GiB?)")):
            if math.isclose(ratio, factor, rel_tol=1e-3):
                return f"{what} is {factor:g} times too large (off by a factor of {words})"
            if math.isclose(ratio, 1 / factor, rel_tol=1e-3):
                return f"{what} is {factor:g} times too small (off by a factor of {words})"
    direction = "too large" if got > want else "too small"
    return f"{what} is {direction} by {abs(got - want) / abs(want) * 100 if want else float('inf'):.3g}%"


def _salted(text: str) -> str:
    return hashlib.sha256(("llmlab-exercises:" + text).encode("utf-8")).hexdigest()[:16]


def _norm_answer(value: Any) -> str:
    if isinstance(value, str):
        return " ".join(value.strip().lower().split())
    if isinstance(value, (list, tuple)):
        return "|".join(_norm_answer(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def _quiz(name: str, answers: dict, key: dict[str, tuple[str, str]]) -> bool:
    """Check quiz ``answers`` against salted hashes; ``key`` maps question -> (hash, hint when wrong)."""
    if not isinstance(answers, dict):
        print(f"{FAIL} {name}: pass the dict of answers, got a {type(answers).__name__}")
        return False
    missing = [q for q in key if q not in answers]
    if missing:
        print(f"{FAIL} {name}: the answers dict lacks the questions {missing}")
        return False
    if any(_not_done(answers[q]) for q in key):
        todo = [q for q in key if _not_done(answers[q])]
        print(f"{FAIL} {name}: not done yet. Replace `...` with your answer for {todo}.")
        return False
    wrong = []
    for question, (digest, hint) in key.items():
        if _salted(_norm_answer(answers[question])) != digest:
            wrong.append(f"  - {question!r}: {answers[question]!r} is not right. {hint}")
    return _quiz_verdict(name, len(key), wrong)


def _quiz_verdict(name: str, n_questions: int, wrong: list[str]) -> bool:
    """Print a quiz's verdict: the wrong answers with their hints, or that all were right."""
    if wrong:
        print(f"{FAIL} {name}: {n_questions - len(wrong)} of {n_questions} answers right.")
        print("\n".join(wrong))
        return False
    print(f"{PASS} {name}: all {n_questions} answers right.")
    return True


def _tiny_gpt2(n_layer: int = 2, n_embd: int = 16, n_head: int = 2, vocab_size: int = 50, n_positions: int = 32,
               seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(n_layer=n_layer, n_embd=n_embd, n_head=n_head, vocab_size=vocab_size,
                        n_positions=n_positions, bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(config).eval()
    model.loss_type = "ForCausalLM"  # GPT2LMHeadModel's class name maps to no loss; name the one it uses anyway
    return model
