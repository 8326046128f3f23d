"""The machinery every chapter's checks share (:mod:`llmlab.exercises` describes the checks).

- :class:`_Case`, :func:`_run`: a check is a list of cases (the notebook's example and hidden edge
  cases); :func:`_run` runs them, prints one line per failure and a summary, and returns True or False.
- :func:`_call`: calls the student's function, turning ``NotImplementedError`` into :class:`_NotDone`
  ("not done yet") and any other exception into :class:`_Wrong` (feedback on that case).
- :func:`_tensor_problem`, :func:`_number_problem`: say in words how a result differs from the
  reference (shape, dtype, constant factor or shift, too many or too few entries kept...).
- :func:`_salted`, :func:`_norm_answer`, :func:`_loose`, :func:`_quiz`: quiz answers, stored only as salted
  hashes; an answer right but for its form passes, one outside the question's choices is told them.
- :func:`_same_input`: says that a function changed its input in place.
- :func:`_tiny_gpt2`: a small random GPT-2 for the checks of several chapters.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
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
                            f"one ({type(error).__name__}: {error}): {_comparison_cause(error)}")
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


def _comparison_cause(error: Exception) -> str:
    """Name, in words, why a result broke the comparison (the exception is the check's, not the student's)."""
    if isinstance(error, ValueError):
        return "a part of the result that should be a number is not one (a str, or None?)"
    if isinstance(error, TypeError):
        return "the result, or a part of it, is of the wrong type (a list, str or None where a number or tensor goes?)"
    if isinstance(error, (IndexError, KeyError)):
        return "the result has fewer parts than asked for (a missing element of a tuple, or a missing key?)"
    if isinstance(error, RuntimeError) and ("dtype" in str(error) or "match" in str(error)):
        return "the result's dtype or shape does not fit the input's (compute in the input's dtype)"
    return "check the type and the shape of what your function returns"


def _same_input(before: Any, after: Any, what: str = "the input") -> str | None:
    """Say that the student's function changed its input in place (None when ``after`` equals ``before``)."""
    if isinstance(before, torch.Tensor):
        same = isinstance(after, torch.Tensor) and after.shape == before.shape and torch.equal(after, before)
    else:
        same = after == before
    if same:
        return None
    return (f"your function changed {what} passed in (an in-place operation such as -=, del or .sub_()): "
            "work on a copy, the caller still needs its own values")


def _not_done(value: Any) -> bool:
    return value is Ellipsis or value is None


def _tensor_problem(got: Any, want: torch.Tensor, what: str = "the result", atol: float = 1e-5,
                    rtol: float = 1e-4, check_dtype: bool = True, any_float: bool = False) -> str | None:
    """Say in words how ``got`` differs from ``want`` (None when it matches).

    ``any_float=True`` accepts a floating result of any dtype where ``want`` is floating (for checks whose
    exercise asks for no dtype); otherwise a dtype other than ``want``'s is named with the one expected.
    """
    if not isinstance(got, torch.Tensor):
        return f"{what} is a {type(got).__name__}; expected a torch.Tensor"
    if tuple(got.shape) != tuple(want.shape):
        hint = ""
        if got.numel() == want.numel():
            hint = " (same number of elements: a transpose or reshape too many or too few?)"
        elif got.dim() < want.dim():
            hint = " (a dimension went missing: keepdim, or a reduction over the wrong dim?)"
        return f"{what} has shape {tuple(got.shape)}; expected shape {tuple(want.shape)}{hint}"
    if check_dtype and got.dtype != want.dtype and not (any_float and got.is_floating_point()
                                                        and want.is_floating_point()):
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
    return _difference_in_words(got, want, what)


def _difference_in_words(got: float, want: float, what: str) -> str:
    """How a finite number differs from the expected one: a named cause, a ratio, or a small relative gap."""
    if want == 0:
        return f"{what} is {got:.4g}; expected 0"
    if got == 0:
        return f"{what} is 0; expected a non-zero number (a count or sum that was never added to?)"
    ratio = got / want
    if math.isclose(ratio, -1, rel_tol=1e-6):
        return f"{what} has the wrong sign (a minus sign missing or one too many)"
    for factor, words in ((2, "2"), (4, "4"), (8, "8"), (100, "100 (a percent instead of a fraction?)"),
                          (1e9, "1e9 (bytes vs GB?)"), (2**30, "2**30 (GiB?)")):
        if math.isclose(ratio, factor, rel_tol=1e-3):
            return f"{what} is {factor:g} times too large (off by a factor of {words})"
        if math.isclose(ratio, 1 / factor, rel_tol=1e-3):
            return f"{what} is {factor:g} times too small (off by a factor of {words})"
    if ratio < 0:
        return f"{what} has the wrong sign: {ratio:.3g} times the expected value"
    if ratio > 1.5 or ratio < 2 / 3:
        return f"{what} is {'too large' if ratio > 1 else 'too small'}: {ratio:.3g} times the expected value"
    direction = "too large" if got > want else "too small"
    return f"{what} is {direction} by {abs(got - want) / abs(want) * 100:.3g}%"


class _Digest(str):
    """A salted hash of a quiz answer (a str), carrying the hash of the answer's loose form too."""

    loose: str


def _hash(text: str) -> str:
    return hashlib.sha256(("llmlab-exercises:" + text).encode("utf-8")).hexdigest()[:16]


def _salted(text: str) -> str:
    """The salted hash of a quiz answer, as written in a key; its ``.loose`` is the hash of :func:`_loose`."""
    digest = _Digest(_hash(text))
    digest.loose = _hash(_loose(text))
    return digest


def _norm_answer(value: Any) -> str:
    if isinstance(value, str):
        return " ".join(value.strip().lower().split())
    if isinstance(value, (list, tuple)):
        return "|".join(_norm_answer(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_ARTICLES = {"the", "a", "an"}


def _number_text(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e18 else repr(value)


def _loose(value: Any) -> str:
    """An answer's form forgiven: case, surrounding quotes and punctuation, a trailing period, hyphens,
    '&' for 'and', a leading article, plurals (a final s), numbers written as words, thousands separators,
    1 and 1.0 and "1.0"."""
    if isinstance(value, (list, tuple)):
        return "|".join(_loose(v) for v in value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return _number_text(value) if math.isfinite(value) else repr(value)
    if not isinstance(value, str):
        return repr(value)
    if "|" in value:  # a key written for a list of answers
        return "|".join(_loose(part) for part in value.split("|"))
    text = unicodedata.normalize("NFKC", value).casefold().strip().strip(" \t\n.,;:!?'\"`")
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    try:
        return _number_text(float(text))
    except ValueError:
        pass
    text = re.sub(r"[-_/]", " ", text.replace("&", " and "))
    text = re.sub(r"[^\w\s.]", "", text)
    words = [_NUMBER_WORDS.get(w, w) for w in text.split()]
    while len(words) > 1 and words[0] in _ARTICLES:
        words = words[1:]
    words = [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words]
    return " ".join(words)


def _choices(question: str) -> tuple[str, ...]:
    """The choices a question lists in a closing parenthesis, as in '(yes/no)' or '(close to 0, 1 or large)'."""
    found = re.search(r"\(([^()]*)\)\s*$", question)
    if not found or found.group(1).startswith(("a ", "an ", "in ")):
        return ()
    inside = found.group(1)
    if "/" not in inside and " or " not in inside:
        return ()
    return tuple(c.strip() for c in re.split(r"/|,| or ", inside) if c.strip())


def _form_only(answer: Any, choices: tuple[str, ...]) -> bool | None:
    """None when the answer is one of the choices (or there are none); else True when it overlaps a choice
    (right words in the wrong form, as '0' for 'close to 0'), False when it has nothing in common with any."""
    if not choices:
        return None
    allowed = {_loose(c) for c in choices}
    parts = answer if isinstance(answer, (list, tuple)) else [answer]
    outside = [_loose(p) for p in parts if _loose(p) not in allowed]
    if not outside:
        return None
    return all(any(set(o.split()) <= set(c.split()) or set(c.split()) <= set(o.split()) for c in allowed)
               for o in outside)


def _quiz(name: str, answers: dict, key: dict[str, tuple]) -> bool:
    """Check quiz ``answers`` against salted hashes; ``key`` maps question -> (hash, hint when wrong) or
    (hash, hint, choices). An answer right but for its form (see :func:`_loose`) passes; an answer outside
    the choices (given, or listed in the question's closing parenthesis) is told the choices."""
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
    for question, (digest, hint, *rest) in key.items():
        answer = answers[question]
        if _hash(_norm_answer(answer)) == digest or _hash(_loose(answer)) == getattr(digest, "loose", None):
            continue
        choices = tuple(rest[0]) if rest else _choices(question)
        form = _form_only(answer, choices)
        listed = ", ".join(repr(c) for c in choices)
        if form:
            wrong.append(f"  - {question!r}: {answer!r} is not in the form asked: answer one of {listed}.")
        elif form is False:
            wrong.append(f"  - {question!r}: {answer!r} is none of {listed} (answer one of them), and it "
                         f"is not right. {hint}")
        else:
            wrong.append(f"  - {question!r}: {answer!r} is not right. {hint}")
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
