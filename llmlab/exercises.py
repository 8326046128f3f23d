"""Checks for the exercise notebooks (``exercises/``): one function per exercise.

A student writes a function (or an answer) in an exercise notebook and passes it to
its check, for example ``check_top_p(top_p_filter)`` (chapter 5). Every check

- runs the student's code on the example shown in the notebook *and* on hidden
  edge cases (ties, batches, empty or exact-fit inputs, other shapes and dtypes),
- compares with the reference in ``llmlab`` (or in torch / Hugging Face, which that
  reference is itself tested against), and
- prints what passed and, for what failed, the input, what was expected in words and
  what went wrong (wrong shape or dtype, off by a constant factor, not normalised,
  too many or too few tokens kept...), without printing the reference's answer.

It returns ``True`` when every case passes and ``False`` otherwise, so tests and
autograders can use it. Quiz answers are stored here only as salted hashes.

Checks by chapter:

- 1 (lifecycle): :func:`check_fit_to_context`, :func:`check_greedy_completion`,
  :func:`check_model_card_numbers`, :func:`check_lifecycle_quiz`
- 2 (transformers): :func:`check_causal_mask`, :func:`check_attention`,
  :func:`check_positional_encoding`, :func:`check_families_quiz`
- 3 (pre-training): :func:`check_causal_lm_loss`, :func:`check_perplexity`,
  :func:`check_exact_duplicates`, :func:`check_shingles_jaccard`
- 4 (prompting): :func:`check_few_shot_prompt`, :func:`check_max_shots`, :func:`check_label_log_prob`,
  :func:`check_wilson_interval`, :func:`check_icl_quiz`,
  :func:`check_flip_and_calibrate`
- 5 (sampling): :func:`check_temperature`, :func:`check_top_k`, :func:`check_top_p`,
  :func:`check_entropy`, :func:`check_sampling_quiz`
- 6 (memory and quantization): :func:`check_model_states`, :func:`check_gpt_param_count`,
  :func:`check_absmax_int8`, :func:`check_zeropoint_int8`, :func:`check_formats_quiz`
- 7 (multi-GPU): :func:`check_max_params`, :func:`check_fsdp_shard`, :func:`check_hybrid_states`,
  :func:`check_comm_bytes`, :func:`check_fsdp_quiz`
- 8 (scaling laws): :func:`check_training_compute`, :func:`check_compute_optimal`,
  :func:`check_power_law_fit`, :func:`check_training_days`, :func:`check_scaling_quiz`
- 9 (domain adaptation): :func:`check_fertility`, :func:`check_token_share`, :func:`check_docs_for_share`,
  :func:`check_domain_quiz`
- 10 (prompt tuning): :func:`check_soft_prompt_params`, :func:`check_prepend`, :func:`check_answer_loss`,
  :func:`check_encoder_params`, :func:`check_place_slots`, :func:`check_peft_quiz`
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F

__all__ = [
    "check_fit_to_context", "check_greedy_completion", "check_model_card_numbers", "check_lifecycle_quiz",
    "check_causal_mask", "check_attention", "check_positional_encoding", "check_families_quiz",
    "check_causal_lm_loss", "check_perplexity", "check_exact_duplicates", "check_shingles_jaccard",
    "check_temperature", "check_top_k", "check_top_p", "check_entropy", "check_sampling_quiz",
    "check_model_states", "check_gpt_param_count", "check_absmax_int8", "check_zeropoint_int8",
    "check_formats_quiz",
    "check_max_params", "check_fsdp_shard", "check_hybrid_states", "check_comm_bytes", "check_fsdp_quiz",
    "check_few_shot_prompt", "check_max_shots", "check_label_log_prob", "check_wilson_interval", "check_icl_quiz",
    "check_flip_and_calibrate",
    "check_training_compute", "check_compute_optimal", "check_power_law_fit", "check_training_days",
    "check_scaling_quiz",
    "check_fertility", "check_token_share", "check_docs_for_share", "check_domain_quiz",
    "check_soft_prompt_params", "check_prepend", "check_answer_loss", "check_encoder_params", "check_place_slots",
    "check_peft_quiz",
]

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
    if wrong:
        print(f"{FAIL} {name}: {len(key) - len(wrong)} of {len(key)} answers right.")
        print("\n".join(wrong))
        return False
    print(f"{PASS} {name}: all {len(key)} answers right.")
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


# =========================================================================== chapter 1
def check_fit_to_context(fn: Callable) -> bool:
    """Chapter 1. ``fn(token_ids, context_window, max_new_tokens) -> (kept_ids, n_dropped)`` keeps the most
    recent tokens so that the prompt plus ``max_new_tokens`` fits the window."""
    from .lifecycle import fit_to_context

    def case(ids, window, new, label, hidden=True):
        def run():
            original = list(ids)
            got = _call(fn, list(ids), window, new)
            want_kept, want_dropped = fit_to_context(ids, window, new, keep="end")
            if not isinstance(got, tuple) or len(got) != 2:
                raise _Wrong(f"expected a tuple (kept_ids, n_dropped), got {type(got).__name__}")
            kept, dropped = got
            if isinstance(kept, torch.Tensor):
                kept = kept.tolist()
            if not isinstance(kept, list):
                raise _Wrong(f"kept_ids is a {type(kept).__name__}; expected a list of token ids")
            if len(kept) + new > window:
                raise _Wrong(f"kept {len(kept)} tokens: with {new} new tokens that makes {len(kept) + new}, "
                             f"more than the window of {window}")
            if kept != want_kept:
                if len(kept) == len(want_kept) and kept == original[:len(kept)]:
                    raise _Wrong("kept the start of the prompt; the most recent tokens (the end) should stay")
                if len(kept) < len(want_kept):
                    raise _Wrong(f"kept {len(kept)} tokens; there was room for more (window minus new tokens)")
                raise _Wrong("kept the wrong tokens (they should be the last ones of the prompt, in order)")
            if dropped != want_dropped:
                raise _Wrong(f"n_dropped is {dropped!r}, but {len(original) - len(kept)} tokens were left out")
        return _Case(label, run, hidden)

    long = list(range(100, 120))
    return _run("fit_to_context", [
        case(long, 16, 4, "20 ids, context_window=16, max_new_tokens=4", hidden=False),
        case(long[:5], 16, 4, "a prompt shorter than the room left (nothing to drop)"),
        case(long[:12], 16, 4, "a prompt that fits exactly"),
        case(long, 8, 0, "max_new_tokens=0 (the whole window is prompt)"),
        case(long, 10, 9, "room for a single prompt token"),
        case([7, 7, 3, 7, 7, 3], 4, 1, "repeated ids"),
    ])


def check_greedy_completion(fn: Callable, model=None, tokenizer=None) -> bool:
    """Chapter 1. ``fn(model, tokenizer, prompt, n_new) -> str`` completes ``prompt`` greedily with
    ``n_new`` new tokens and returns only the completion (the new text), compared with
    ``model.generate(do_sample=False)``. Uses the bundled ``stories-1m`` unless a model is given."""
    if model is None or tokenizer is None:
        from .zoo import load
        model, tokenizer = load("stories-1m", device="cpu")

    def case(prompt, n, label, hidden=True):
        def run():
            got = _call(fn, model, tokenizer, prompt, n)
            ids = tokenizer(prompt, return_tensors="pt").input_ids.to(model.device)
            with torch.no_grad():
                out = model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                     pad_token_id=tokenizer.eos_token_id)
            want = tokenizer.decode(out[0, ids.shape[1]:])
            if not isinstance(got, str):
                raise _Wrong(f"returned a {type(got).__name__}; expected the completion as a str (decode the ids)")
            if got == prompt + want or got.startswith(prompt) and got[len(prompt):] == want:
                raise _Wrong("returned the prompt plus the completion; return only the new text")
            if got != want:
                got_n = len(tokenizer(got).input_ids)
                if got_n != n:
                    raise _Wrong(f"the completion has {got_n} tokens when re-encoded; expected {n} new tokens")
                raise _Wrong("the completion differs from greedy decoding (take the argmax of the last "
                             "position's logits at every step, and append it before the next step)")
        return _Case(f"prompt {prompt!r}, {n} new tokens", run, hidden)

    return _run("greedy_completion", [
        case("Once upon a time", 8, "", hidden=False),
        case("The dog", 1, ""),
        case("Lily and Tom went to the park. They", 12, ""),
    ])


def check_model_card_numbers(fn: Callable) -> bool:
    """Chapter 1. ``fn(model) -> dict`` with keys ``n_parameters`` (distinct parameters: tied weights count
    once), ``context_window``, ``layers``, ``heads``, ``vocab_size``, for a Hugging Face GPT-2 model."""
    from .zoo import load

    def expected(model) -> dict:
        c = model.config
        return {"n_parameters": sum(p.numel() for p in model.parameters()), "context_window": c.n_positions,
                "layers": c.n_layer, "heads": c.n_head, "vocab_size": c.vocab_size}

    def case(make, label, hidden=True):
        def run():
            model = make()
            got = _call(fn, model)
            want = expected(model)
            if not isinstance(got, dict):
                raise _Wrong(f"returned a {type(got).__name__}; expected a dict with keys {sorted(want)}")
            if set(got) != set(want):
                raise _Wrong(f"keys {sorted(got)}; expected exactly {sorted(want)}")
            for key, value in want.items():
                if got[key] != value:
                    if key == "n_parameters":
                        tied = model.get_output_embeddings().weight.numel()
                        if got[key] == value + tied:
                            raise _Wrong("n_parameters counts the tied output embedding a second time "
                                         "(the LM head shares the token-embedding matrix)")
                        if got[key] == value - model.transformer.wpe.weight.numel():
                            raise _Wrong("n_parameters leaves out the position embeddings")
                    raise _Wrong(f"{key} is {got[key]!r}, which does not match the model (read it from the "
                                 "model or its config, do not type it)")
        return _Case(label, run, hidden)

    return _run("model_card_numbers", [
        case(lambda: load("stories-1m", device="cpu")[0], "the bundled stories-1m", hidden=False),
        case(lambda: _tiny_gpt2(3, 24, 3, 77, 40), "a randomly initialised GPT-2 of another shape"),
    ])


_LIFECYCLE_KEY = {
    "stages in order": (_salted("scope|select|adapt and align|deploy"),
                        "Four stages, from deciding what the model must do to putting it in an application."),
    "prompt engineering": (_salted("adapt and align"), "In which stage do you change the model's behaviour?"),
    "quantize for inference": (_salted("deploy"), "Think of what has to happen before users call the model."),
    "one task or many?": (_salted("scope"), "This is decided before any model is chosen."),
    "tokens a 256-token window leaves for the prompt when 60 new tokens are wanted": (
        _salted("196"), "The prompt and the tokens generated share one window."),
}


def check_lifecycle_quiz(answers: dict) -> bool:
    """Chapter 1 quiz: the stages of the project lifecycle and the context window."""
    return _quiz("lifecycle_quiz", answers, _LIFECYCLE_KEY)


# =========================================================================== chapter 2
def check_causal_mask(fn: Callable) -> bool:
    """Chapter 2. ``fn(t) -> (t, t) bool tensor``, True where query i may attend to key j (j <= i)."""
    from .attention import causal_mask

    def case(t, label, hidden=True):
        def run():
            got = _call(fn, t)
            want = causal_mask(t)
            problem = _tensor_problem(got, want, "the mask")
            if problem and isinstance(got, torch.Tensor) and got.shape == want.shape and got.dtype == torch.bool:
                if torch.equal(got, want.T):
                    raise _Wrong("the mask is transposed: row i is query i and may see columns (keys) 0..i")
                if torch.equal(got, ~want):
                    raise _Wrong("True and False are swapped: True should mean 'may attend'")
                if torch.equal(got, want.tril(-1)):
                    raise _Wrong("the diagonal is False: a token may attend to itself")
            if problem:
                raise _Wrong(problem)
        return _Case(f"t = {t}", run, hidden)

    return _run("causal_mask", [case(4, "", hidden=False), case(1, ""), case(7, "")])


def check_attention(fn: Callable) -> bool:
    """Chapter 2. ``fn(q, k, v, mask=None) -> (output, weights)``: scaled dot-product attention with an
    optional boolean mask (True = may attend), for inputs shaped (..., T, D). Compared with
    ``torch.nn.functional.scaled_dot_product_attention``."""
    def case(shape_q, t_k, d_v, masked, label, hidden=True, seed=0):
        def run():
            g = torch.Generator().manual_seed(seed)
            q = torch.randn(*shape_q, generator=g)
            k = torch.randn(*shape_q[:-2], t_k, shape_q[-1], generator=g)
            v = torch.randn(*shape_q[:-2], t_k, d_v, generator=g)
            mask = None
            if masked:
                mask = torch.ones(shape_q[-2], t_k, dtype=torch.bool).tril()
            got = _call(fn, q.clone(), k.clone(), v.clone(), mask)
            if not isinstance(got, tuple) or len(got) != 2:
                raise _Wrong(f"expected a tuple (output, weights), got {type(got).__name__}")
            out, weights = got
            want_out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            want_w = scores.softmax(-1)
            problems = [_tensor_problem(weights, want_w, "weights", atol=1e-5),
                        _tensor_problem(out, want_out, "output", atol=1e-5)]
            if problems[0] and isinstance(weights, torch.Tensor) and weights.shape == want_w.shape:
                sums = weights.sum(-1)
                if not torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
                    col = weights.sum(-2)
                    if torch.allclose(col, torch.ones_like(col), atol=1e-4):
                        raise _Wrong("the weights sum to 1 down each column: softmax over the keys (dim=-1)")
                    raise _Wrong("the weights are not normalised: each row (one query) should sum to 1")
                unscaled = (q @ k.transpose(-2, -1))
                if mask is not None:
                    unscaled = unscaled.masked_fill(~mask, float("-inf"))
                if torch.allclose(weights, unscaled.softmax(-1), atol=1e-5):
                    raise _Wrong("the scores are not scaled: divide Q K^T by sqrt(D), D = size of a key")
                if mask is not None and (weights[..., ~mask].abs() > 1e-6).any():
                    raise _Wrong("masked positions get weight: set their scores to -inf before the softmax")
            for problem in problems:
                if problem:
                    raise _Wrong(problem)
        return _Case(label, run, hidden)

    return _run("attention", [
        case((5, 8), 5, 8, False, "q, k, v of shape (5, 8), no mask", hidden=False),
        case((5, 8), 5, 8, True, "(5, 8) with a causal mask", hidden=False),
        case((2, 3, 4, 6), 7, 5, False, "batched (2, 3, 4, 6) queries, 7 keys, values of size 5", seed=1),
        case((2, 6, 16), 6, 16, True, "batched with a mask", seed=2),
    ])


def check_positional_encoding(fn: Callable) -> bool:
    """Chapter 2. ``fn(n_positions, d_model) -> (n_positions, d_model)`` sinusoidal encoding (Vaswani et al.
    2017): even columns sin(pos / 10000^(2i/d)), odd columns cos of the same angle."""
    from .attention import sinusoidal_positional_encoding

    def case(n, d, label, hidden=True):
        def run():
            got = _call(fn, n, d)
            want = sinusoidal_positional_encoding(n, d)
            problem = _tensor_problem(got, want, "the encoding", atol=1e-5, check_dtype=False)
            if problem and isinstance(got, torch.Tensor) and got.shape == want.shape:
                g = got.to(torch.float64)
                w = want.to(torch.float64)
                swapped = torch.stack([w[:, 1::2], w[:, 0::2]], dim=-1).flatten(1) if d % 2 == 0 else None
                if swapped is not None and torch.allclose(g, swapped, atol=1e-5):
                    raise _Wrong("sin and cos are swapped: sin goes in the even columns (0, 2, ...), cos in the odd")
                if d % 2 == 0 and torch.allclose(g, torch.cat([w[:, 0::2], w[:, 1::2]], 1), atol=1e-5):
                    raise _Wrong("sin and cos are in two halves; they should be interleaved (sin, cos, sin, cos...)")
            if problem:
                raise _Wrong(problem + " (the frequency of column pair i is 1 / 10000^(2i / d_model))")
            if got.dtype not in (torch.float32, torch.float64):
                raise _Wrong(f"dtype {got.dtype}; expected a float tensor")
        return _Case(f"n_positions={n}, d_model={d}", run, hidden)

    return _run("positional_encoding", [case(10, 8, "", hidden=False), case(50, 32, ""), case(3, 2, "")])


_FAMILIES_KEY = {
    "BERT objective": (_salted("masked"), "BERT predicts tokens hidden in the middle of a text, seeing both sides."),
    "GPT objective": (_salted("causal"), "GPT predicts each next token from the tokens before it."),
    "T5 objective": (_salted("span corruption"), "T5 replaces spans with sentinels and writes them out."),
    "family for open-ended generation": (_salted("decoder-only"), "Which family writes text one token at a time "
                                         "with only a left context?"),
    "attention weights in one layer of 12 heads over 100 tokens": (
        _salted("120000"), "Each head has a T x T matrix of weights."),
}


def check_families_quiz(answers: dict) -> bool:
    """Chapter 2 quiz: the three families of transformer, their objectives, attention sizes."""
    return _quiz("families_quiz", answers, _FAMILIES_KEY)


# =========================================================================== chapter 3
def check_causal_lm_loss(fn: Callable) -> bool:
    """Chapter 3. ``fn(logits, input_ids) -> scalar``: mean next-token cross-entropy (nats) of logits
    ``(B, T, V)`` for ids ``(B, T)``: position t predicts token t + 1. Compared with ``F.cross_entropy``
    and with the loss Hugging Face's GPT-2 computes from ``labels=input_ids``."""
    def reference(logits, ids):
        return F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten())

    def case(b, t, v, label, hidden=True, seed=0):
        def run():
            g = torch.Generator().manual_seed(seed)
            logits = torch.randn(b, t, v, generator=g) * 3
            ids = torch.randint(0, v, (b, t), generator=g)
            got = _call(fn, logits.clone(), ids.clone())
            want = reference(logits, ids)
            problem = _number_problem(got, want.item(), "the loss", rel=1e-5)
            if problem and isinstance(got, torch.Tensor) and got.numel() == 1:
                value = got.item()
                if math.isclose(value, F.cross_entropy(logits.flatten(0, 1), ids.flatten()).item(), rel_tol=1e-5):
                    raise _Wrong("no shift: position t must predict token t + 1 (drop the last logits and "
                                 "the first ids)")
                if math.isclose(value, F.cross_entropy(logits[:, 1:].flatten(0, 1),
                                                       ids[:, :-1].flatten()).item(), rel_tol=1e-5):
                    raise _Wrong("shifted the wrong way: the logits at position t predict the id at t + 1")
                if math.isclose(value, want.item() / math.log(2), rel_tol=1e-5):
                    raise _Wrong("the loss is in bits; the convention (and F.cross_entropy) is nats")
            if isinstance(got, torch.Tensor) and got.dim() > 0 and got.numel() > 1:
                raise _Wrong(f"returned a tensor of shape {tuple(got.shape)}; expected a scalar (the mean)")
            if problem:
                raise _Wrong(problem)
        return _Case(label, run, hidden)

    def hf_case():
        model = _tiny_gpt2()
        ids = torch.randint(0, 50, (2, 9), generator=torch.Generator().manual_seed(3))
        with torch.no_grad():
            out = model(input_ids=ids, labels=ids)
        got = _call(fn, out.logits, ids)
        problem = _number_problem(got, out.loss.item(), "the loss", rel=1e-5)
        if problem:
            raise _Wrong(problem + " (compared with the loss GPT-2 returns for labels=input_ids)")

    return _run("causal_lm_loss", [
        case(2, 6, 11, "logits (2, 6, 11), ids (2, 6)", hidden=False),
        case(1, 2, 5, "a single pair of tokens", seed=1),
        case(4, 17, 300, "(4, 17, 300)", seed=2),
        _Case("a tiny GPT-2's logits, against its own loss", hf_case),
    ])


def check_perplexity(fn: Callable) -> bool:
    """Chapter 3. ``fn(batch_losses, batch_tokens) -> float``: perplexity over several batches, given each
    batch's mean loss (nats per token) and its number of predicted tokens."""
    def case(losses, tokens, label, hidden=True):
        def run():
            got = _call(fn, list(losses), list(tokens))
            total = sum(l * n for l, n in zip(losses, tokens)) / sum(tokens)
            want = math.exp(total)
            problem = _number_problem(got, want, "the perplexity", rel=1e-6)
            if problem and isinstance(got, (int, float)) and not isinstance(got, bool):
                if math.isclose(got, math.exp(sum(losses) / len(losses)), rel_tol=1e-9) and not math.isclose(
                        got, want, rel_tol=1e-9):
                    raise _Wrong("averaged the batch means; weight each batch by its number of tokens")
                if math.isclose(got, total, rel_tol=1e-9):
                    raise _Wrong("returned the mean loss; perplexity is exp of it")
                if math.isclose(got, 2 ** total, rel_tol=1e-9):
                    raise _Wrong("used 2 ** loss; the losses are in nats, so use exp")
            if problem:
                raise _Wrong(problem)
        return _Case(f"{label}: losses {list(losses)}, tokens {list(tokens)}", run, hidden)

    return _run("perplexity", [
        case([2.0, 2.5], [100, 100], "two batches", hidden=False),
        case([1.0, 3.0], [300, 10], "a short last batch"),
        case([0.0], [5], "a perfect model"),
        case([math.log(50)] * 3, [7, 8, 9], "a uniform guess over 50 tokens"),
    ])


def check_exact_duplicates(fn: Callable) -> bool:
    """Chapter 3. ``fn(docs) -> list[int]``: indices of documents equal to an earlier one after
    normalisation (case, Unicode NFKC, runs of whitespace); the first copy is kept."""
    from .quality import exact_duplicates, normalize_text

    def case(docs, label, hidden=True):
        def run():
            got = _call(fn, list(docs))
            want = exact_duplicates(docs)
            if not isinstance(got, list):
                raise _Wrong(f"returned a {type(got).__name__}; expected a list of indices")
            if sorted(got) == sorted(want) and got != want:
                raise _Wrong("the right indices in the wrong order: list them in increasing order")
            if got != want:
                keys = [normalize_text(d) for d in docs]
                firsts = {i for i, k in enumerate(keys) if keys.index(k) == i and keys.count(k) > 1}
                if set(got) & firsts:
                    raise _Wrong("marked the first copy as a duplicate; keep the first, list the later ones")
                if len(got) < len(want):
                    raise _Wrong(f"found {len(got)} duplicates, expected {len(want)}: are case, whitespace "
                                 "and Unicode forms normalised before comparing?")
                raise _Wrong(f"found {len(got)} duplicates at {got}; expected {len(want)}")
        return _Case(label, run, hidden)

    return _run("exact_duplicates", [
        case(["A cat.", "a  cat.", "A dog.", "A cat."], "['A cat.', 'a  cat.', 'A dog.', 'A cat.']", hidden=False),
        case([], "no documents"),
        case(["x", "y", "z"], "no duplicates"),
        case(["Tom ran.\n", " tom   RAN.", "Ｔｏｍ ran.", "Tom ran"], "whitespace, case and full-width letters"),
        case(["b", "a", "b", "a", "b"], "several groups"),
    ])


def check_shingles_jaccard(shingle_fn: Callable, jaccard_fn: Callable) -> bool:
    """Chapter 3. ``shingle_fn(text, n) -> set`` of word n-grams of the normalised text (a text shorter
    than n words is one shingle) and ``jaccard_fn(a, b) -> float`` (1.0 for two empty sets); their
    similarities are compared with ``llmlab.quality``."""
    from .quality import jaccard, shingles

    pairs = [
        ("the cat sat on the mat today", "the cat sat on the mat yesterday", 3, True),
        ("One two three four five six", "one  TWO three four five six", 2, True),
        ("a b", "a b c d e", 5, False),
        ("tom saw a big red ball and a small blue ball", "tom saw a big red ball", 2, False),
    ]

    def pair_case(a, b, n, shown):
        def run():
            sa, sb = _call(shingle_fn, a, n), _call(shingle_fn, b, n)
            for s, text in ((sa, a), (sb, b)):
                if not isinstance(s, (set, frozenset)):
                    raise _Wrong(f"shingle_fn returned a {type(s).__name__}; expected a set")
                want_n = len(shingles(text, n))
                if len(s) != want_n:
                    words = len(text.split())
                    raise _Wrong(f"shingle_fn({text!r}, {n}) gives {len(s)} shingles; a text of {words} words "
                                 f"has {want_n} distinct {n}-word shingles")
            got = _call(jaccard_fn, sa, sb)
            want = jaccard(shingles(a, n), shingles(b, n))
            problem = _number_problem(got, want, "the Jaccard similarity", rel=1e-9)
            if problem:
                if isinstance(got, (int, float)) and math.isclose(got, len(sa & sb) / max(1, len(sa)), rel_tol=1e-9):
                    problem += " (divided by the size of the first set; divide by the size of the union)"
                raise _Wrong(problem)
        return _Case(f"{a!r} vs {b!r}, n={n}", run, hidden=not shown)

    def empty():
        got = _call(jaccard_fn, set(), set())
        problem = _number_problem(got, 1.0, "jaccard(set(), set())")
        if problem:
            raise _Wrong(problem + " (two empty sets are identical: 1.0, and no division by zero)")

    return _run("shingles_jaccard", [pair_case(*p) for p in pairs] + [_Case("two empty sets", empty)])


# =========================================================================== chapter 5
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
    from .sampling import top_k_filter

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
    from .sampling import top_p_filter

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
    from .metrics import entropy_bits

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


# =========================================================================== chapter 6
def check_model_states(fn: Callable) -> bool:
    """Chapter 6. ``fn(n_params, n_gpus, zero_stage) -> bytes`` of parameters, gradients and optimizer states
    on one GPU for mixed-precision Adam (2 + 2 + 12 bytes per parameter) under ZeRO stage 0 to 3
    (Rajbhandari et al. 2020), compared with ``llmlab.memory.model_states_per_gpu``."""
    from .memory import model_states_per_gpu

    def case(n, gpus, stage, label, hidden=True):
        def run():
            got = _call(fn, n, gpus, stage)
            want = model_states_per_gpu(n, gpus, stage, precision="mixed", optimizer="adam")
            problem = _number_problem(got, want.total, "the bytes per GPU")
            if problem and isinstance(got, (int, float)) and not isinstance(got, bool):
                for other in range(4):
                    if other != stage and math.isclose(got, model_states_per_gpu(n, gpus, other).total, rel_tol=1e-9):
                        raise _Wrong(f"that is what ZeRO stage {other} keeps; stage {stage} shards "
                                     + ("nothing" if stage == 0 else
                                        ["", "the optimizer states", "optimizer states and gradients",
                                         "optimizer states, gradients and parameters"][stage]))
                if math.isclose(got, n * 16 / gpus, rel_tol=1e-9) and stage < 3:
                    raise _Wrong("divided everything by the number of GPUs; only the sharded states are divided")
                if math.isclose(got, n * 16 * (1 if stage == 0 else 1), rel_tol=1e-9) and stage > 0 and gpus > 1:
                    raise _Wrong("nothing is divided by the number of GPUs")
                if math.isclose(got, n * (4 + 4 + 8) / 1, rel_tol=1e-9) and stage == 0:
                    raise _Wrong("counted fp32 Adam; mixed precision is 2 (params) + 2 (grads) + 12 (fp32 "
                                 "master, momentum, variance) bytes per parameter")
            if problem:
                raise _Wrong(problem)
        return _Case(label, run, hidden)

    return _run("model_states", [
        case(7.5e9, 64, 0, "7.5e9 parameters, 64 GPUs, stage 0", hidden=False),
        case(7.5e9, 64, 2, "7.5e9 parameters, 64 GPUs, stage 2", hidden=False),
        case(7.5e9, 64, 1, "stage 1"),
        case(7.5e9, 64, 3, "stage 3"),
        case(1.3e9, 1, 3, "one GPU: sharding saves nothing"),
        case(175e9, 1024, 2, "175e9 parameters on 1024 GPUs, stage 2"),
    ])


def check_gpt_param_count(fn: Callable) -> bool:
    """Chapter 6. ``fn(n_layers, hidden, vocab_size, seq_len) -> int`` parameters of a GPT-2-shaped model
    (MLP of 4 * hidden, biases, two layer norms per block and one at the end, learned positions, tied
    embeddings), compared with a real ``transformers`` GPT-2 of that shape."""
    def case(layers, hidden, vocab, seq, label, hidden_case=True):
        def run():
            got = _call(fn, layers, hidden, vocab, seq)
            want = sum(p.numel() for p in _tiny_gpt2(layers, hidden, max(1, hidden // 8), vocab, seq).parameters())
            if isinstance(got, (int, float)) and not isinstance(got, bool):
                if got == want + vocab * hidden:
                    raise _Wrong("counted the output layer separately; GPT-2 ties it to the token embedding")
                if got == want - seq * hidden:
                    raise _Wrong("left out the learned position embeddings (seq_len x hidden)")
                if got == 12 * layers * hidden ** 2:
                    raise _Wrong("only 12 L h^2: add the biases, layer norms and embeddings")
                if got == want - 2 * hidden:
                    raise _Wrong("left out the final layer norm (2 x hidden)")
            if isinstance(got, float) and got.is_integer():
                got = int(got)
            if not isinstance(got, int) or isinstance(got, bool):
                raise _Wrong(f"returned a {type(got).__name__}; expected an int (a count)")
            if got != want:
                raise _Wrong(f"{got:,} parameters: that is {got - want:+,} compared with the real model "
                             "(count per block: attention QKV and output, MLP, two layer norms)")
        return _Case(label, run, hidden_case)

    return _run("gpt_param_count", [
        case(2, 16, 50, 32, "2 layers, hidden 16, vocab 50, 32 positions", hidden_case=False),
        case(4, 64, 1000, 128, "4 layers, hidden 64, vocab 1000, 128 positions"),
        case(1, 8, 7, 1, "1 layer, hidden 8, vocab 7, 1 position"),
    ])


def _int8_inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "x = [-1.0, -0.5, 0.0, 0.25, 2.0]": torch.tensor([-1.0, -0.5, 0.0, 0.25, 2.0]),
        "a (4, 16) random matrix": torch.randn(4, 16, generator=g),
        "all positive values (after a ReLU)": torch.rand(64, generator=g) * 3 + 0.5,
        "an outlier of 60 among small values": torch.cat([torch.randn(31, generator=g) * 0.1, torch.tensor([60.0])]),
        "all zeros": torch.zeros(5),
        "float16 input": (torch.randn(10, generator=g) * 4).half(),
    }


def _quant_case(fn, reference, x, label, hidden, zeropoint):
    def run():
        got = _call(fn, x.clone())
        want = reference(x)
        n = 3 if zeropoint else 2
        names = "(q, scale, zero_point)" if zeropoint else "(q, scale)"
        if not isinstance(got, tuple) or len(got) != n:
            raise _Wrong(f"expected a tuple {names}, got {type(got).__name__}"
                         + (f" of length {len(got)}" if isinstance(got, tuple) else ""))
        q, scale = got[0], got[1]
        if not isinstance(q, torch.Tensor) or q.dtype != torch.int8:
            raise _Wrong(f"q should be an int8 tensor, got {getattr(q, 'dtype', type(q).__name__)}: "
                         "round, clamp to the INT8 range, then .to(torch.int8)")
        if q.shape != x.shape:
            raise _Wrong(f"q has shape {tuple(q.shape)}; expected the input's shape {tuple(x.shape)}")
        scale_value = scale.item() if isinstance(scale, torch.Tensor) else scale
        if isinstance(scale_value, bool) or not isinstance(scale_value, (int, float)):
            raise _Wrong(f"scale should be one number (per tensor), got {type(scale).__name__}")
        want_scale = want.scale.item()
        if not math.isclose(scale_value, want_scale, rel_tol=1e-5) and x.abs().max() > 0:
            problem = _number_problem(scale_value, want_scale, "the scale", rel=1e-5)
            if zeropoint and math.isclose(scale_value, x.abs().max().item() / 127, rel_tol=1e-5):
                problem = "the scale is the absmax one; the zero-point scale spreads [min, max] over 255 steps"
            if not zeropoint and math.isclose(scale_value, x.abs().max().item() / 128, rel_tol=1e-5):
                problem = "the scale uses 128; symmetric INT8 uses -127..127, so divide max|x| by 127"
            raise _Wrong(problem)
        if zeropoint:
            zp = got[2]
            zp_value = zp.item() if isinstance(zp, torch.Tensor) else zp
            if zp_value != want.zero_point.item():
                raise _Wrong(f"zero_point is {zp_value!r}; it should be the integer code that 0.0 maps to "
                             "(so that 0 is exact), within -128..127")
        if x.abs().max() > 0:
            codes = torch.clamp(q.to(torch.int32), -128, 127)
            low = int(codes.min())
            if not zeropoint and low == -128:
                raise _Wrong("q uses -128; symmetric INT8 keeps -127..127 so that +x and -x get opposite codes")
        problem = _tensor_problem(q, want.q, "q")
        dequant = (q.to(torch.float32) - (int(got[2]) if zeropoint else 0)) * scale_value
        err = (dequant - x.float()).abs().max().item()
        if problem and (q.to(torch.int32) - want.q.to(torch.int32)).abs().max() <= 1 and err <= want_scale / 2 * 1.001:
            problem = None  # a value exactly half-way between two codes may round either way in float32
        if problem:
            raise _Wrong(problem + f"; its dequantized error is {err:.3g}, more than half a step "
                         f"({want_scale / 2:.3g}): round to the nearest code" if err > want_scale / 2 + 1e-6
                         else problem + " (off by one code: round to nearest, not floor or truncate)")
    return _Case(label, run, hidden)


def check_absmax_int8(fn: Callable) -> bool:
    """Chapter 6. ``fn(x) -> (q, scale)``: symmetric (absmax) INT8 per tensor, ``scale = max|x| / 127``,
    ``q = round(x / scale)`` as int8 in -127..127. Compared with ``llmlab.quant.quantize_absmax``."""
    from .quant import quantize_absmax

    return _run("absmax_int8", [_quant_case(fn, quantize_absmax, x, label, i > 0, False)
                                for i, (label, x) in enumerate(_int8_inputs().items())])


def check_zeropoint_int8(fn: Callable) -> bool:
    """Chapter 6. ``fn(x) -> (q, scale, zero_point)``: asymmetric INT8 per tensor over all 256 codes, with
    the range widened to include 0. Compared with ``llmlab.quant.quantize_zeropoint``."""
    from .quant import quantize_zeropoint

    return _run("zeropoint_int8", [_quant_case(fn, quantize_zeropoint, x, label, i > 0, True)
                                   for i, (label, x) in enumerate(_int8_inputs().items())])


def check_formats_quiz(answers: dict) -> bool:
    """Chapter 6 quiz: float formats. Numeric answers are compared with ``llmlab.quant.format_info``."""
    from .quant import format_info

    if not isinstance(answers, dict):
        print(f"{FAIL} formats_quiz: pass the dict of answers, got a {type(answers).__name__}")
        return False
    questions = {
        "largest finite fp16 value": (format_info("fp16").max, "5 exponent bits: the largest exponent is 15."),
        "largest finite bf16 value": (format_info("bf16").max, "bf16 has fp32's 8 exponent bits."),
        "fraction bits of bf16": (format_info("bf16").fraction_bits, "16 bits = 1 sign + 8 exponent + ?"),
        "spacing of fp16 values just above 1": (format_info("fp16").eps, "2 to the power minus fraction bits."),
        "bytes of a 7e9-parameter model's weights in int8": (7e9, "One byte per value."),
    }
    todo = [q for q in questions if _not_done(answers.get(q, ...))]
    if todo:
        print(f"{FAIL} formats_quiz: not done yet. Replace `...` with your answer for {todo}.")
        return False
    wrong = []
    for q, (want, hint) in questions.items():
        problem = _number_problem(answers[q], want, "your answer", rel=1e-3)
        if problem:
            wrong.append(f"  - {q!r}: {problem}. {hint}")
    if wrong:
        print(f"{FAIL} formats_quiz: {len(questions) - len(wrong)} of {len(questions)} answers right.")
        print("\n".join(wrong))
        return False
    print(f"{PASS} formats_quiz: all {len(questions)} answers right.")
    return True


# =========================================================================== chapter 7
def check_max_params(fn: Callable) -> bool:
    """Chapter 7. ``fn(gpu_bytes, n_gpus, zero_stage) -> float``: the most parameters whose model states
    (mixed-precision Adam, 16 bytes per parameter before sharding) fit in ``gpu_bytes`` on each of
    ``n_gpus`` GPUs under ZeRO stage 0 to 3 (activations left out)."""
    from .memory import model_states_per_gpu

    def case(gpu_bytes, gpus, stage, label, hidden=True):
        def run():
            got = _call(fn, gpu_bytes, gpus, stage)
            want = gpu_bytes / model_states_per_gpu(1, gpus, stage).total
            problem = _number_problem(got, want, "the number of parameters", rel=1e-6)
            if problem and isinstance(got, (int, float)) and not isinstance(got, bool):
                for other in range(4):
                    if other != stage and math.isclose(got, gpu_bytes / model_states_per_gpu(1, gpus, other).total,
                                                       rel_tol=1e-6):
                        raise _Wrong(f"that is the answer for ZeRO stage {other}, not stage {stage}")
                if math.isclose(got, gpu_bytes / 16, rel_tol=1e-6):
                    raise _Wrong("that is what fits on one GPU without sharding; the sharded states are divided "
                                 "by the number of GPUs")
            if problem:
                raise _Wrong(problem)
        return _Case(label, run, hidden)

    return _run("max_params", [
        case(80e9, 64, 0, "80 GB GPUs, 64 of them, stage 0", hidden=False),
        case(80e9, 64, 3, "80 GB GPUs, 64 of them, stage 3", hidden=False),
        case(80e9, 64, 1, "stage 1"),
        case(80e9, 64, 2, "stage 2"),
        case(40e9, 1, 3, "a single 40 GB GPU, stage 3"),
        case(24e9, 1024, 2, "1024 GPUs of 24 GB, stage 2"),
    ])


def check_fsdp_shard(fn: Callable) -> bool:
    """Chapter 7. ``fn(shape, n_shards, index) -> int``: elements in shard ``index`` when FSDP splits a
    tensor on its first dimension into ``n_shards`` chunks the way ``torch.chunk`` does (ceil(d0 / n)
    rows each; the last shards get what is left, possibly nothing). Compared with ``torch.chunk``."""
    def want(shape, n, i):
        if not shape:
            return 1 if i == 0 else 0
        chunks = torch.empty(shape, device="meta").chunk(n, dim=0)
        return chunks[i].numel() if i < len(chunks) else 0

    def case(shape, n, label, hidden=True):
        def run():
            got = [_call(fn, tuple(shape), n, i) for i in range(n)]
            expected = [want(tuple(shape), n, i) for i in range(n)]
            if got == expected:
                return
            if any(isinstance(g, bool) or not isinstance(g, int) for g in got):
                raise _Wrong(f"returned {[type(g).__name__ for g in got][:3]}...; expected ints (element counts)")
            total = math.prod(shape) if shape else 1
            if sum(got) != total:
                raise _Wrong(f"the shards hold {sum(got)} elements together; the tensor has {total}: every "
                             "element must be in exactly one shard")
            if shape and got == [math.prod(shape[1:]) * (shape[0] // n + (i < shape[0] % n)) for i in range(n)]:
                raise _Wrong("spread the leftover rows one per shard (like numpy.array_split); torch.chunk gives "
                             "every shard ceil(rows / n) rows and the last ones what is left")
            raise _Wrong(f"shard sizes {got}; they should follow torch.chunk on the first dimension")
        return _Case(f"shape {tuple(shape)}, {n} shards", run, hidden)

    return _run("fsdp_shard", [
        case((10, 4), 4, "", hidden=False),
        case((8, 3), 4, ""),
        case((3, 5), 4, ""),
        case((7,), 3, ""),
        case((), 2, ""),
        case((1, 1000), 8, ""),
    ])


def check_hybrid_states(fn: Callable) -> bool:
    """Chapter 7. ``fn(n_params, n_gpus, sharding_factor) -> bytes`` of model states per GPU with hybrid
    sharding (FSDP's HYBRID_SHARD): ZeRO stage 3 inside groups of ``sharding_factor`` GPUs, replicas
    across groups; mixed-precision Adam. Compared with ``llmlab.memory.strategy_states_per_gpu``."""
    from .memory import strategy_states_per_gpu

    def case(n, gpus, f, label, hidden=True):
        def run():
            got = _call(fn, n, gpus, f)
            want = strategy_states_per_gpu(n, "hybrid", gpus, f).total
            problem = _number_problem(got, want, "the bytes per GPU")
            if problem and isinstance(got, (int, float)) and not isinstance(got, bool) and f != gpus:
                if math.isclose(got, 16 * n / gpus, rel_tol=1e-9):
                    raise _Wrong("divided by all the GPUs; hybrid sharding divides only within a group of "
                                 "sharding_factor GPUs (the groups are replicas)")
                if math.isclose(got, 16 * n / (gpus // f), rel_tol=1e-9):
                    raise _Wrong("divided by the number of groups; divide by the GPUs in one group")
            if problem:
                raise _Wrong(problem)
        return _Case(label, run, hidden)

    return _run("hybrid_states", [
        case(7e9, 64, 8, "7e9 parameters, 64 GPUs, groups of 8", hidden=False),
        case(7e9, 64, 64, "groups of all 64 GPUs (full sharding)"),
        case(7e9, 64, 1, "groups of 1 (plain replication)"),
        case(70e9, 512, 16, "70e9 parameters, 512 GPUs, groups of 16"),
    ])


def check_comm_bytes(fn: Callable) -> bool:
    """Chapter 7. ``fn(strategy, n_params, n_gpus, bytes_per_value) -> bytes`` each GPU sends per step with
    ring collectives: 2Ψ(n-1)/n for "ddp", "zero1" and "zero2", 3Ψ(n-1)/n for "zero3" (Ψ = bytes of the
    gradients). Compared with ``llmlab.distributed.textbook_comm_bytes``."""
    from .distributed import textbook_comm_bytes

    def case(strategy, n, gpus, bpv, label, hidden=True):
        def run():
            got = _call(fn, strategy, n, gpus, bpv)
            want = textbook_comm_bytes(strategy, n, gpus, bytes_per_value=bpv)
            problem = _number_problem(got, want, "the bytes sent per GPU")
            if problem and isinstance(got, (int, float)) and not isinstance(got, bool):
                psi = n * bpv
                if gpus > 1 and math.isclose(got, want * gpus / (gpus - 1), rel_tol=1e-9):
                    raise _Wrong("left out the (n - 1) / n of a ring: each GPU sends all but its own share")
                if strategy == "zero3" and math.isclose(got, 2 * psi * (gpus - 1) / gpus, rel_tol=1e-9):
                    raise _Wrong("ZeRO-3 gathers the parameters a second time for the backward pass: 3 volumes")
                if strategy != "zero3" and math.isclose(got, 3 * psi * (gpus - 1) / gpus, rel_tol=1e-9):
                    raise _Wrong(f"{strategy} keeps whole parameters: a reduce-scatter and an all-gather, 2 volumes")
            if problem:
                raise _Wrong(problem)
        return _Case(label, run, hidden)

    return _run("comm_bytes", [
        case("ddp", 1.5e9, 8, 2, '"ddp", 1.5e9 parameters, 8 GPUs, 2 bytes per value', hidden=False),
        case("zero3", 1.5e9, 8, 2, '"zero3", same model and GPUs', hidden=False),
        case("zero1", 7e9, 64, 2, '"zero1", 7e9 parameters, 64 GPUs'),
        case("zero2", 7e9, 64, 4, '"zero2", fp32 gradients'),
        case("zero3", 1e6, 2, 4, '"zero3" on 2 GPUs'),
        case("ddp", 1e6, 1, 4, '"ddp" on a single GPU (nothing to send)'),
    ])


_FSDP_KEY = {
    "ZeRO stage of FSDP FULL_SHARD": (_salted("3"), "It shards parameters, gradients and optimizer states."),
    "ZeRO stage of FSDP SHARD_GRAD_OP": (_salted("2"), "Parameters stay whole during the step."),
    "ZeRO stage of FSDP NO_SHARD": (_salted("0"), "Nothing is sharded: this is DDP."),
    "what ZeRO stage 1 shards (parameters, gradients or optimizer states)": (
        _salted("optimizer states"), "Stage 1 shards the largest part of the model states first."),
    "does DDP change the result of a step compared with one GPU on the whole batch (yes/no)": (
        _salted("no"), "The gradients are averaged across replicas before the step."),
}


def check_fsdp_quiz(answers: dict) -> bool:
    """Chapter 7 quiz: ZeRO stages, FSDP sharding strategies, data parallelism."""
    return _quiz("fsdp_quiz", answers, _FSDP_KEY)


# =========================================================================== chapter 4
_REVIEWS = [("The soup was warm and the staff were kind.", "positive"),
            ("The room was cold and the bed was broken.", "negative"),
            ("A lovely walk by the river with friends.", "positive"),
            ("The train was late again and nobody said sorry.", "negative"),
            ("Best cake I have had in years.", "positive"),
            ("The film was long and dull.", "negative")]


def check_few_shot_prompt(fn: Callable) -> bool:
    """Chapter 4. ``fn(query, examples, k) -> str``: the first ``k`` (text, label) examples, each as
    ``"Classify this review: {text}\\nSentiment: {label}"``, each followed by a blank line, then the query
    as ``"Classify this review: {query}\\nSentiment:"`` (no trailing space). Compared with
    ``llmlab.icl.build_prompt``."""
    from .icl import build_prompt

    def case(query, examples, k, label, hidden=True):
        def run():
            got = _call(fn, query, list(examples), k)
            want = build_prompt(query, examples, k)
            if not isinstance(got, str):
                raise _Wrong(f"returned a {type(got).__name__}; expected the prompt as a str")
            if got == want:
                return
            if got.rstrip(" ") == want and got != want:
                raise _Wrong("the prompt ends with a space; end it at 'Sentiment:' (the space goes with the label "
                             "word, which BPE tokenizers attach to the word)")
            if got.count("Classify this review:") != k + 1:
                raise _Wrong(f"the prompt has {got.count('Classify this review:')} reviews; expected {k} examples "
                             "plus the query")
            if query not in got.split("\n\n")[-1]:
                raise _Wrong("the query must come last, after the examples")
            if "\n\n" not in got and k:
                raise _Wrong("separate the examples and the query with a blank line ('\\n\\n')")
            raise _Wrong("the text differs from the format above (check the labels, newlines and spaces)")
        return _Case(label, run, hidden)

    return _run("few_shot_prompt", [
        case("The tea was cold.", _REVIEWS, 2, "2 shots", hidden=False),
        case("The tea was cold.", _REVIEWS, 0, "zero-shot"),
        case("Great view.", _REVIEWS, 6, "all 6 examples"),
        case("Nice.", _REVIEWS[3:], 1, "one shot, a negative example"),
    ])


def check_max_shots(fn: Callable, tokenizer=None) -> bool:
    """Chapter 4. ``fn(tokenizer, query, examples, window, labels) -> int``: the most examples k (taken in
    order) such that the k-shot prompt's tokens plus those of the longest label (with its leading space)
    fit in ``window`` tokens. Compared with ``llmlab.icl.build_prompt``, which refuses a prompt that does
    not fit."""
    from .icl import PromptTooLong, build_prompt

    if tokenizer is None:
        from .zoo import load
        _, tokenizer = load("stories-1m", device="cpu")
    labels = ["positive", "negative"]

    def want(query, examples, window):
        best = -1
        for k in range(len(examples) + 1):
            try:
                build_prompt(query, examples, k, tokenizer=tokenizer, window=window, labels=labels)
                best = k
            except PromptTooLong:
                break
        return best

    def case(query, examples, window, label, hidden=True):
        def run():
            got = _call(fn, tokenizer, query, list(examples), window, list(labels))
            expected = want(query, examples, window)
            if isinstance(got, bool) or not isinstance(got, int):
                raise _Wrong(f"returned a {type(got).__name__}; expected an int (a number of examples)")
            if got == expected:
                return
            if got > expected:
                raise _Wrong(f"{got} examples do not fit in {window} tokens: count the prompt's tokens and add "
                             "the longest label's (with its leading space)")
            raise _Wrong(f"{got} examples, but more fit in {window} tokens (is the label counted twice, or "
                         "the window reduced twice?)")
        return _Case(label, run, hidden)

    full = len(tokenizer(build_prompt("The tea was cold.", _REVIEWS, 6))["input_ids"])
    return _run("max_shots", [
        case("The tea was cold.", _REVIEWS, 128, "a window of 128 tokens", hidden=False),
        case("The tea was cold.", _REVIEWS, 1024, "a window that holds every example"),
        case("The tea was cold.", _REVIEWS, full + 2, "a window that holds all 6 only if the label is short"),
        case("The tea was cold.", _REVIEWS, 40, "a window that holds only the zero-shot prompt"),
    ])


def check_label_log_prob(fn: Callable, model=None, tokenizer=None) -> bool:
    """Chapter 4. ``fn(model, tokenizer, prompt, label) -> float``: the log-probability (nats) of the
    label's tokens, ``" " + label``, right after the prompt, summed over its tokens. Compared with
    ``llmlab.icl.score_labels``. Uses the bundled ``stories-1m`` unless a model is given."""
    from .icl import score_labels

    if model is None or tokenizer is None:
        from .zoo import load
        model, tokenizer = load("stories-1m", device="cpu")

    def case(prompt, label, hidden=True):
        def run():
            got = _call(fn, model, tokenizer, prompt, label)
            want = score_labels(model, tokenizer, [prompt], [[label]]).item()
            problem = _number_problem(got, want, "the log-probability", rel=1e-4)
            if problem and isinstance(got, (int, float)) and not isinstance(got, bool):
                n = len(tokenizer(" " + label, add_special_tokens=False)["input_ids"])
                if got > 0:
                    raise _Wrong("a log-probability is <= 0: use log_softmax of the logits, not the logits")
                if n > 1 and math.isclose(got, want / n, rel_tol=1e-3):
                    raise _Wrong(f"the label has {n} tokens: sum their log-probabilities, not the mean")
            if problem:
                raise _Wrong(problem + " (the logits at position t predict the token at t + 1)")
        return _Case(f"prompt {prompt!r}, label {label!r}", run, hidden)

    return _run("label_log_prob", [
        case("Once upon a time there was a little", "girl", hidden=False),
        case("Tom and Lily went to the", "park"),
        case("The dog was very", "happy"),
        case("She looked at the sky and saw a", "big red balloon"),
    ])


def check_wilson_interval(fn: Callable) -> bool:
    """Chapter 4. ``fn(successes, n) -> (low, high)``: the 95% Wilson score interval (z = 1.96) of an
    accuracy measured on ``n`` examples (Wilson 1927). Compared with ``llmlab.icl.wilson_interval``."""
    from .icl import wilson_interval

    def case(k, n, label, hidden=True):
        def run():
            got = _call(fn, k, n)
            low, high = wilson_interval(k, n)
            if not isinstance(got, tuple) or len(got) != 2:
                raise _Wrong(f"expected a tuple (low, high), got {type(got).__name__}")
            p = k / n
            normal = 1.96 * math.sqrt(p * (1 - p) / n)
            if math.isclose(got[0], max(0.0, p - normal), abs_tol=1e-9) and not math.isclose(got[0], low, abs_tol=1e-6):
                raise _Wrong("that is the normal (Wald) interval p ± 1.96 sqrt(p(1-p)/n); the Wilson interval "
                             "moves the centre towards 1/2 and stays sensible at 0 and n successes")
            for value, ref, name in ((got[0], low, "low"), (got[1], high, "high")):
                problem = _number_problem(value, ref, f"the {name} end", rel=1e-6)
                if problem and abs(value - ref) > 1e-9:
                    raise _Wrong(problem)
        return _Case(label, run, hidden)

    return _run("wilson_interval", [
        case(150, 200, "150 right out of 200", hidden=False),
        case(0, 20, "0 out of 20"),
        case(20, 20, "20 out of 20"),
        case(1, 3, "1 out of 3"),
    ])


def check_calibrate(fn: Callable) -> bool:
    """Chapter 4. ``fn(scores, content_free) -> tensor``: contextual calibration (Zhao et al. 2021).
    ``scores`` (prompts, labels) and ``content_free`` (labels,) are log-probabilities; the answer is the
    log of normalise(p / p_cf), with p and p_cf normalised over the labels. Compared with
    ``llmlab.icl.calibrate``."""
    from .icl import calibrate

    def case(scores, cf, label, hidden=True):
        scores, cf = torch.tensor(scores, dtype=torch.float64), torch.tensor(cf, dtype=torch.float64)

        def run():
            got = _call(fn, scores.clone(), cf.clone())
            want = calibrate(scores, cf)
            try:
                got = torch.as_tensor(got, dtype=torch.float64)
            except (TypeError, ValueError, RuntimeError):
                raise _Wrong(f"returned a {type(got).__name__}; expected a tensor of log-probabilities") from None
            if got.shape != want.shape:
                raise _Wrong(f"returned shape {tuple(got.shape)}; expected {tuple(want.shape)} (prompts, labels)")
            if torch.allclose(got, want, atol=1e-6):
                return
            if torch.allclose(got.exp().sum(-1), torch.ones(len(got), dtype=torch.float64), atol=1e-4) is False:
                raise _Wrong("the result is not normalised: exp of each row should sum to 1 (renormalise, "
                             "for example with torch.log_softmax, after dividing by the content-free probabilities)")
            if torch.allclose(got, torch.log_softmax(scores + cf, -1), atol=1e-6):
                raise _Wrong("you multiplied by the content-free probabilities; divide by them (subtract the "
                             "log-probabilities) so that a label the prompt favours loses its advantage")
            raise _Wrong(f"got {got.exp().numpy().round(4).tolist()} as probabilities; expected "
                         f"{want.exp().numpy().round(4).tolist()}")
        return _Case(label, run, hidden)

    import math

    return _run("calibrate", [
        case([[math.log(0.8), math.log(0.2)]], [math.log(0.9), math.log(0.1)], "p = (0.8, 0.2), p_cf = (0.9, 0.1)",
             hidden=False),
        case([[2.0, 0.0], [1.0, 0.5], [3.0, -1.0]], [2.0, 0.0], "three prompts, a bias of 2 nats for label 0"),
        case([[-1.0, -2.0, -3.0]], [-5.0, -1.0, -1.0], "three labels, scores not normalised"),
        case([[0.0, 0.0]], [0.0, 0.0], "no bias: nothing changes"),
    ])


def check_flip_labels(fn: Callable) -> bool:
    """Chapter 4. ``fn(demos, labels) -> list``: the demonstrations with each label replaced by the other
    of the two ``labels`` (Wei et al. 2023's flipped labels), texts and order kept. Compared with
    ``llmlab.icl.relabel(demos, labels, "flipped")``."""
    from .icl import relabel

    def case(demos, labels, label, hidden=True):
        def run():
            got = _call(fn, list(demos), tuple(labels))
            want = relabel(demos, tuple(labels), "flipped")
            if not isinstance(got, (list, tuple)):
                raise _Wrong(f"returned a {type(got).__name__}; expected a list of (text, label) pairs")
            got = [tuple(x) for x in got]
            if got == want:
                return
            if len(got) != len(want):
                raise _Wrong(f"returned {len(got)} demonstrations; expected {len(want)}, one per input")
            if [t for t, _ in got] != [t for t, _ in want]:
                raise _Wrong("the texts changed or moved; flip only the labels and keep the order")
            if got == list(demos):
                raise _Wrong("the labels are unchanged; each label should become the other one")
            raise _Wrong(f"got labels {[l for _, l in got]}; expected {[l for _, l in want]}")
        return _Case(label, run, hidden)

    return _run("flip_labels", [
        case([("wonderful", "positive"), ("awful", "negative")], ("positive", "negative"), "two demonstrations",
             hidden=False),
        case([("cat", "animal"), ("dog", "animal"), ("pie", "food")], ("animal", "food"), "another label pair"),
        case([("grim", "negative")] * 3, ("positive", "negative"), "all one label"),
        case([], ("positive", "negative"), "no demonstrations"),
    ])


def check_flip_and_calibrate(flip_fn: Callable, calibrate_fn: Callable) -> bool:
    """Chapter 4. Both tools of the real-model half: :func:`check_flip_labels` on ``flip_fn`` and
    :func:`check_calibrate` on ``calibrate_fn`` (each prints its own feedback); True if both pass."""
    return all([check_flip_labels(flip_fn), check_calibrate(calibrate_fn)])


_ICL_KEY = {
    "does in-context learning change the model's weights (yes/no)": (
        _salted("no"), "What is updated when you only add examples to the prompt?"),
    "name of a prompt with no solved examples (zero-shot, one-shot or few-shot)": (
        _salted("zero-shot"), "Count the demonstrations."),
    "what limits how many examples a prompt can hold": (
        _salted("context window"), "Answer with two words: the model reads at most this many tokens."),
    "accuracy of always answering the more common of two balanced labels (a number between 0 and 1)": (
        _salted("0.5"), "Balanced: half of each."),
}


def check_icl_quiz(answers: dict) -> bool:
    """Chapter 4 quiz: in-context learning and prompts."""
    return _quiz("icl_quiz", answers, _ICL_KEY)


# =========================================================================== chapter 8
def check_training_compute(fn: Callable) -> bool:
    """Chapter 8. ``fn(n_params, n_tokens) -> (flops, pf_days)``: training compute ``6 N D`` (2 FLOPs
    forward and 4 backward per parameter and token) and the same in petaFLOP/s-days (1e15 FLOP/s for a
    day of 86,400 s). Compared with ``llmlab.scaling.training_flops`` and ``pf_days``."""
    from .scaling import pf_days, training_flops

    def case(n, d, label, hidden=True):
        def run():
            got = _call(fn, n, d)
            if not isinstance(got, tuple) or len(got) != 2:
                raise _Wrong(f"expected a tuple (flops, pf_days), got {type(got).__name__}")
            flops = training_flops(n, d)
            problem = _number_problem(got[0], flops, "flops", rel=1e-9)
            if problem and isinstance(got[0], (int, float)):
                if math.isclose(got[0], 2 * n * d, rel_tol=1e-9):
                    raise _Wrong("2 N D counts the forward pass only; training adds the backward pass (4 N D)")
            if problem:
                raise _Wrong(problem)
            problem = _number_problem(got[1], pf_days(flops), "pf_days", rel=1e-9)
            if problem and isinstance(got[1], (int, float)) and math.isclose(got[1], flops / 1e15 / 3600, rel_tol=1e-9):
                problem = "divided by an hour of seconds; a PF-day is 1e15 FLOP/s for 86,400 s"
            if problem:
                raise _Wrong(problem)
        return _Case(label, run, hidden)

    return _run("training_compute", [
        case(70e9, 1.4e12, "70e9 parameters on 1.4e12 tokens (Chinchilla)", hidden=False),
        case(175e9, 300e9, "175e9 parameters on 300e9 tokens"),
        case(1e6, 2e7, "a tiny model: 1e6 parameters, 2e7 tokens"),
    ])


def check_compute_optimal(fn: Callable) -> bool:
    """Chapter 8. ``fn(compute_flops) -> (n_params, n_tokens)``: the compute-optimal split of a budget
    ``C = 6 N D`` with ``D = 20 N`` (Hoffmann et al. 2022's rule of thumb). Compared with
    ``llmlab.scaling.chinchilla_optimal``."""
    from .scaling import chinchilla_optimal

    def case(c, label, hidden=True):
        def run():
            got = _call(fn, c)
            if not isinstance(got, tuple) or len(got) != 2:
                raise _Wrong(f"expected a tuple (n_params, n_tokens), got {type(got).__name__}")
            n, d = chinchilla_optimal(c)
            if all(isinstance(v, (int, float)) for v in got):
                if math.isclose(got[0], d, rel_tol=1e-6) and math.isclose(got[1], n, rel_tol=1e-6):
                    raise _Wrong("parameters and tokens are swapped: the tokens are 20 times the parameters")
                if math.isclose(got[1] / got[0], 20, rel_tol=1e-6) and not math.isclose(got[0], n, rel_tol=1e-6):
                    raise _Wrong("20 tokens per parameter, but 6 N D does not come out at the budget: solve "
                                 "C = 6 N (20 N) for N")
            for value, ref, name in ((got[0], n, "n_params"), (got[1], d, "n_tokens")):
                problem = _number_problem(value, ref, name, rel=1e-6)
                if problem:
                    raise _Wrong(problem)
        return _Case(f"a budget of {c:.3g} FLOPs", run, hidden)

    return _run("compute_optimal", [case(5.76e23, "", hidden=False), case(1e21, ""), case(3.14e23, ""),
                                    case(1e15, "")])


def check_power_law_fit(fn: Callable) -> bool:
    """Chapter 8. ``fn(x, y) -> (a, b)``: the power law ``y = a * x**b`` fitted by least squares on
    ``log y = log a + b log x``. Compared with ``llmlab.scaling.fit_power_law``."""
    import numpy as np

    from .scaling import fit_power_law

    def case(x, y, label, hidden=True):
        def run():
            got = _call(fn, list(x), list(y))
            ref = fit_power_law(x, y)
            if not isinstance(got, tuple) or len(got) != 2:
                raise _Wrong(f"expected a tuple (a, b), got {type(got).__name__}")
            a, b = (float(v) for v in got)
            if math.isclose(a, ref.params["b"], rel_tol=1e-4) and math.isclose(b, ref.params["a"], rel_tol=1e-4):
                raise _Wrong("a and b are swapped: b is the exponent (the slope in log-log), a the factor")
            if math.isclose(b, ref.params["b"], rel_tol=1e-4) and math.isclose(a, ref.extra["log_a"], rel_tol=1e-4):
                raise _Wrong("a is the log-log intercept; the factor is exp(intercept)")
            if math.isclose(b, ref.params["b"], rel_tol=1e-4) and math.isclose(a, 10 ** ref.extra["log_a"], rel_tol=1e-4):
                raise _Wrong("a = 10**intercept, but the fit used natural logs (or the other way round)")
            for value, want, name in ((b, ref.params["b"], "b"), (a, ref.params["a"], "a")):
                problem = _number_problem(value, want, f"the fitted {name}", rel=1e-4)
                if problem:
                    raise _Wrong(problem + " (fit a straight line to (log x, log y), e.g. numpy.polyfit)")
        return _Case(label, run, hidden)

    rng = np.random.default_rng(0)
    compute = np.logspace(17, 21, 7)
    noisy = 2.5e-3 * compute ** 0.2 * np.exp(rng.normal(0, 0.05, compute.size))
    return _run("power_law_fit", [
        case([1, 2, 4, 8], [3.0, 1.5, 0.75, 0.375], "x = 1, 2, 4, 8 and y halving each time", hidden=False),
        case(compute.tolist(), noisy.tolist(), "7 noisy points over four decades"),
        case([1e6, 1e7, 1e8], [5.0, 4.0, 3.3], "three points, a slow decline"),
    ])


def check_training_days(fn: Callable) -> bool:
    """Chapter 8. ``fn(n_params, n_tokens, n_gpus, flops_per_gpu) -> days``: Narayanan et al. (2021)'s
    estimate ``8 T P / (n X)`` seconds (8 FLOPs per parameter and token with activation recomputation),
    in days. Compared with ``llmlab.scaling.training_days``."""
    from .scaling import SECONDS_PER_DAY, training_days

    def case(p, t, n, x, label, hidden=True):
        def run():
            got = _call(fn, p, t, n, x)
            want = training_days(p, t, n, x)
            problem = _number_problem(got, want, "the days", rel=1e-6)
            if problem and isinstance(got, (int, float)) and not isinstance(got, bool):
                if math.isclose(got, want * SECONDS_PER_DAY, rel_tol=1e-6):
                    raise _Wrong("that is in seconds; divide by 86,400 for days")
                if math.isclose(got, want * 6 / 8, rel_tol=1e-6):
                    raise _Wrong("6 FLOPs per parameter and token leaves out the recomputed forward pass: use 8")
            if problem:
                raise _Wrong(problem)
        return _Case(label, run, hidden)

    return _run("training_days", [
        case(175e9, 300e9, 1024, 140e12, "GPT-3 size: 175e9 parameters, 300e9 tokens, 1024 GPUs at 140 TFLOP/s",
             hidden=False),
        case(1e12, 450e9, 3072, 163e12, "1e12 parameters, 3072 GPUs"),
        case(7e9, 2e12, 64, 150e12, "7e9 parameters on 64 GPUs"),
    ])


_SCALING_KEY = {
    "tokens per parameter of the Chinchilla rule of thumb": (_salted("20"), "Hoffmann et al. 2022."),
    "if the compute budget grows 100 times, how many times larger is the compute-optimal model": (
        _salted("10"), "N grows with the square root of C when D = 20 N."),
    "on a log-log plot a power law is a (straight line, parabola or exponential)": (
        _salted("straight line"), "Take logs of y = a x^b."),
}


def check_scaling_quiz(answers: dict) -> bool:
    """Chapter 8 quiz: scaling laws."""
    return _quiz("scaling_quiz", answers, _SCALING_KEY)


# =========================================================================== chapter 9
def _stories_tokenizer(tokenizer):
    if tokenizer is None:
        from .zoo import load
        _, tokenizer = load("stories-1m", device="cpu")
    return tokenizer


def check_fertility(fn: Callable, tokenizer=None) -> bool:
    """Chapter 9. ``fn(tokenizer, texts) -> float``: tokens per whitespace-separated word of a list of
    texts (no special tokens). Compared with ``llmlab.domain.fertility``; uses the tokenizer of the
    bundled ``stories-1m`` unless one is given."""
    from .data import load_corpus
    from .domain import fertility, load_domain_corpus

    tokenizer = _stories_tokenizer(tokenizer)

    def case(texts, label, hidden=True):
        def run():
            got = _call(fn, tokenizer, list(texts))
            want = fertility(tokenizer, list(texts))
            problem = _number_problem(got, want, "the fertility", rel=1e-9)
            if problem and isinstance(got, (int, float)) and not isinstance(got, bool):
                words = sum(len(t.split()) for t in texts)
                chars = sum(len(t) for t in texts)
                tokens = want * words
                if math.isclose(got, words / tokens, rel_tol=1e-9):
                    raise _Wrong("that is words per token; fertility is tokens per word (>= 1 for most text)")
                if math.isclose(got, tokens / chars, rel_tol=1e-9):
                    raise _Wrong("divided by characters; divide by the number of words (split at whitespace)")
                if len(texts) > 1 and math.isclose(
                        got, sum(fertility(tokenizer, t) for t in texts) / len(texts), rel_tol=1e-9):
                    raise _Wrong("averaged the texts' fertilities; pool the tokens and the words of all texts")
            if problem:
                raise _Wrong(problem)
        return _Case(label, run, hidden)

    return _run("fertility", [
        case(load_domain_corpus("validation", "legal")[:5], "five legal documents", hidden=False),
        case(load_corpus("validation")[:5], "five stories (the tokenizer's own kind of text)"),
        case(["Hypertension.", "The patient presented with acute myocardial infarction and was given aspirin."],
             "two medical texts of very different lengths"),
    ])


def check_token_share(fn: Callable, tokenizer=None) -> bool:
    """Chapter 9. ``fn(tokenizer, domain_docs, general_docs) -> float``: the share of all tokens that are
    domain tokens when both lists are trained on together. Compared with ``llmlab.domain.token_share``."""
    from .data import load_corpus
    from .domain import load_domain_corpus, token_share

    tokenizer = _stories_tokenizer(tokenizer)
    domain = load_domain_corpus("validation", "financial")
    general = load_corpus("validation")

    def case(d, g, label, hidden=True):
        def run():
            got = _call(fn, tokenizer, list(d), list(g))
            want = token_share(tokenizer, d, g)
            problem = _number_problem(got, want, "the token share", rel=1e-9)
            if problem and isinstance(got, (int, float)) and not isinstance(got, bool):
                if d and g and math.isclose(got, len(d) / (len(d) + len(g)), rel_tol=1e-9):
                    raise _Wrong("that is the share of documents; count tokens (domain documents are longer)")
                if 0 < want < 1 and math.isclose(got, want / (1 - want), rel_tol=1e-9):
                    raise _Wrong("divided by the general tokens only; divide by all tokens")
            if problem:
                raise _Wrong(problem)
        return _Case(label, run, hidden)

    return _run("token_share", [
        case(domain[:10], general[:10], "10 financial documents and 10 stories", hidden=False),
        case(domain[:3], general[:30], "3 financial documents and 30 stories"),
        case(domain[:5], [], "domain documents only"),
    ])


def check_docs_for_share(fn: Callable) -> bool:
    """Chapter 9. ``fn(target_share, domain_tokens_per_doc, general_tokens_per_doc, n_docs) -> float``: how
    many of ``n_docs`` documents must be domain documents for domain tokens to make up ``target_share``
    of all tokens. Checked by computing the share that the answer gives."""
    def case(s, td, tg, n, label, hidden=True):
        def run():
            got = _call(fn, s, td, tg, n)
            if isinstance(got, bool) or not isinstance(got, (int, float)):
                raise _Wrong(f"returned a {type(got).__name__}; expected a number of documents")
            if not 0 <= got <= n:
                raise _Wrong(f"{got:.4g} documents: a number of documents must be between 0 and {n}")
            share = got * td / (got * td + (n - got) * tg) if got * td + (n - got) * tg else 0.0
            if not math.isclose(share, s, rel_tol=1e-6, abs_tol=1e-9):
                hint = ""
                if math.isclose(got, s * n, rel_tol=1e-9):
                    hint = " (that is the share of documents; the documents have different lengths)"
                raise _Wrong(f"with {got:.4g} domain documents the domain tokens are {share:.4f} of all tokens, "
                             f"not {s}{hint}")
        return _Case(label, run, hidden)

    return _run("docs_for_share", [
        case(0.51, 120, 80, 1000, "51% domain tokens, 120 vs 80 tokens per document, 1000 documents", hidden=False),
        case(0.5, 100, 100, 10, "documents of equal length"),
        case(1.0, 50, 200, 100, "only domain tokens"),
        case(0.2, 300, 60, 5000, "long domain documents"),
    ])


_DOMAIN_KEY = {
    "a general tokenizer on specialist text: fertility goes (up or down)": (
        _salted("up"), "Rare words are spelled out in more pieces."),
    "share of financial tokens in BloombergGPT's training data, in percent (nearest integer)": (
        _salted("51"), "Wu et al. 2023: about half."),
    "what mixing general text into domain training protects (general performance, training speed or tokenizer size)": (
        _salted("general performance"), "What does a model forget when trained on one domain only?"),
}


def check_domain_quiz(answers: dict) -> bool:
    """Chapter 9 quiz: domain adaptation."""
    return _quiz("domain_quiz", answers, _DOMAIN_KEY)


# =========================================================================== chapter 10
def check_soft_prompt_params(fn: Callable) -> bool:
    """Chapter 10. ``fn(model, n_virtual) -> (trained, fraction)``: the values prompt tuning trains
    (``n_virtual`` embeddings of the model's width) and their share of the model's own parameters.
    Compared with ``llmlab.prompt_tuning.SoftPrompt``."""
    from .prompt_tuning import SoftPrompt

    def case(make, n, label, hidden=True):
        def run():
            model = make()
            got = _call(fn, model, n)
            total = sum(p.numel() for p in model.parameters())
            trained = SoftPrompt(make(), n).trainable_parameters()
            if not isinstance(got, tuple) or len(got) != 2:
                raise _Wrong(f"expected a tuple (trained, fraction), got {type(got).__name__}")
            if got[0] == total:
                raise _Wrong("that is every weight of the model: prompt tuning freezes them and trains only the "
                             "virtual tokens' embeddings")
            if got[0] == n:
                raise _Wrong("each virtual token is a vector of the model's width, not one number")
            problem = _number_problem(got[0], trained, "the trained values")
            if problem:
                raise _Wrong(problem)
            problem = _number_problem(got[1], trained / total, "the fraction", rel=1e-6)
            if problem and isinstance(got[1], (int, float)) and math.isclose(got[1], 100 * trained / total, rel_tol=1e-6):
                problem = "the fraction is in percent; give it as a fraction (0 to 1)"
            if problem:
                raise _Wrong(problem)
        return _Case(label, run, hidden)

    from .zoo import load
    return _run("soft_prompt_params", [
        case(lambda: load("stories-1m", device="cpu")[0], 20, "stories-1m, 20 virtual tokens", hidden=False),
        case(lambda: _tiny_gpt2(2, 48, 4, 60, 16), 1, "a GPT-2 of width 48, one virtual token"),
        case(lambda: _tiny_gpt2(1, 8, 2, 30, 8), 100, "a tiny GPT-2, 100 virtual tokens"),
    ])


def check_prepend(fn: Callable) -> bool:
    """Chapter 10. ``fn(soft_prompt, input_embeds, attention_mask) -> (embeds, mask)``: the soft prompt
    ``(n, d)`` put in front of every row of ``input_embeds`` ``(B, T, d)``; the mask ``(B, T)`` gets
    ``n`` ones in front (the virtual tokens are always attended to)."""
    def case(n, b, t, d, label, hidden=True, seed=0):
        def run():
            g = torch.Generator().manual_seed(seed)
            prompt = torch.randn(n, d, generator=g)
            x = torch.randn(b, t, d, generator=g)
            mask = torch.ones(b, t, dtype=torch.long)
            mask[0, t // 2:] = 0  # the first row is padded on the right
            got = _call(fn, prompt.clone(), x.clone(), mask.clone())
            if not isinstance(got, tuple) or len(got) != 2:
                raise _Wrong(f"expected a tuple (embeds, mask), got {type(got).__name__}")
            want_x = torch.cat([prompt.expand(b, n, d), x], dim=1)
            want_m = torch.cat([torch.ones(b, n, dtype=mask.dtype), mask], dim=1)
            emb, m = got
            if isinstance(emb, torch.Tensor) and emb.shape == want_x.shape and torch.equal(
                    emb, torch.cat([x, prompt.expand(b, n, d)], dim=1)):
                raise _Wrong("the soft prompt is at the end; it goes in front of the text")
            for problem in (_tensor_problem(emb, want_x, "the embeddings"),
                            _tensor_problem(m, want_m, "the mask", check_dtype=False)):
                if problem:
                    raise _Wrong(problem)
        return _Case(label, run, hidden)

    return _run("prepend", [
        case(3, 2, 5, 4, "3 virtual tokens, a batch of 2 rows of 5 tokens, width 4", hidden=False),
        case(1, 1, 1, 8, "one virtual token, one row of one token"),
        case(20, 4, 7, 16, "20 virtual tokens, batch of 4", seed=1),
    ])


def check_answer_loss(fn: Callable, model=None, tokenizer=None) -> bool:
    """Chapter 10. ``fn(logits, input_ids, n_prompt) -> scalar``: the mean cross-entropy over the answer's
    tokens only (the tokens from position ``n_prompt`` on), each predicted from the position before it.
    Compared with ``llmlab.prompt_tuning.answer_loss`` on the bundled ``stories-1m``."""
    from .prompt_tuning import PromptTemplate, answer_loss, encode

    if model is None or tokenizer is None:
        from .zoo import load
        model, tokenizer = load("stories-1m", device="cpu")
    template = PromptTemplate("{story} Who was the story about? {answer}")

    def case(story, answer, label, hidden=True):
        def run():
            enc = encode(tokenizer, template, {"story": story, "answer": answer})
            ids = torch.tensor([enc.before + enc.after + enc.answer])
            n_prompt = len(enc.before) + len(enc.after)
            with torch.no_grad():
                logits = model(input_ids=ids).logits
                want = answer_loss(model, template, [enc]).item()
            got = _call(fn, logits.clone(), ids.clone(), n_prompt)
            problem = _number_problem(got, want, "the loss", rel=1e-4)
            if problem and isinstance(got, torch.Tensor) and got.numel() == 1:
                whole = F.cross_entropy(logits[0, :-1], ids[0, 1:]).item()
                if math.isclose(got.item(), whole, rel_tol=1e-4):
                    raise _Wrong("the loss covers the prompt too; only the answer's tokens count")
            if problem:
                raise _Wrong(problem + " (the logits at position t predict token t + 1)")
        return _Case(label, run, hidden)

    return _run("answer_loss", [
        case("Lily found a red ball in the park.", "Lily", "a one-token answer", hidden=False),
        case("Tom and his dog went to the beach. They played all day.", "Tom and his dog", "a longer answer"),
        case("Once upon a time, a little bird sang.", "a little bird", "an answer of several tokens"),
    ])


def check_encoder_params(fn: Callable) -> bool:
    """Chapter 10. ``fn(n_virtual, d_model, hidden) -> (trained, stored)``: the values p-tuning's MLP prompt
    encoder trains (PEFT's ``encoder_reparameterization_type="MLP"``: an ``n_virtual x d_model`` input table,
    then linear layers ``d_model -> hidden -> hidden -> d_model`` with biases) and the values kept for
    inference once it is collapsed to a table. Compared with ``llmlab.prompt_tuning.PromptEncoder``."""
    from .prompt_tuning import PromptEncoder, VirtualTokens

    def case(n, d, h, label, hidden=True):
        def run():
            got = _call(fn, n, d, h)
            if not isinstance(got, tuple) or len(got) != 2:
                raise _Wrong(f"expected a tuple (trained, stored), got {type(got).__name__}")
            encoder = PromptEncoder(n, d, "mlp", h)
            trained = sum(p.numel() for p in encoder.parameters())
            stored = VirtualTokens(torch.nn.Embedding(2, d), n, encoder=encoder).collapse().trainable_parameters()
            layers = d * h + h * h + h * d
            if got[0] == trained - (2 * h + d):
                raise _Wrong("the linear layers have biases too (one per output)")
            if got[0] == trained - n * d:
                raise _Wrong("the encoder's input is a trained table of n_virtual x d_model values as well")
            if got[0] == trained - (h * h + h):
                raise _Wrong("PEFT's MLP has three linear layers: d_model -> hidden -> hidden -> d_model")
            if got[0] == layers:
                raise _Wrong("count the input table (n_virtual x d_model) and the biases as well as the matrices")
            problem = _number_problem(got[0], trained, "the trained values")
            if problem:
                raise _Wrong(problem)
            if got[1] == trained:
                raise _Wrong("after collapsing, only the encoder's output is kept: one vector per virtual token")
            problem = _number_problem(got[1], stored, "the values stored for inference")
            if problem:
                raise _Wrong(problem)
        return _Case(label, run, hidden)

    return _run("encoder_params", [
        case(20, 576, 128, "20 virtual tokens, SmolLM2's width 576, hidden 128", hidden=False),
        case(1, 8, 8, "one virtual token, width 8, hidden 8"),
        case(100, 64, 256, "100 virtual tokens, a hidden layer wider than the model"),
    ])


def check_place_slots(fn: Callable, model=None) -> bool:
    """Chapter 10. ``fn(pieces, virtual, splits) -> embeds``: the text pieces' embeddings (``len(splits) + 1``
    tensors ``(T_i, d)``) with the virtual tokens ``(sum(splits), d)`` split among the slots between them,
    in order, as NeMo's ``virtual_token_splits`` says. Compared with ``llmlab.prompt_tuning.build_inputs``
    on the bundled ``stories-1m``."""
    from .prompt_tuning import Encoded, PromptTemplate, SoftPrompt, build_inputs

    if model is None:
        from .zoo import load
        model = load("stories-1m", device="cpu")[0]
    embed = model.get_input_embeddings()

    def case(lengths, splits, label, hidden=True, seed=0):
        def run():
            g = torch.Generator().manual_seed(seed)
            ids = [torch.randint(0, embed.num_embeddings, (n,), generator=g).tolist() for n in lengths]
            template = PromptTemplate("".join(f"{{t{i}}}{{virtual_{i}}}" for i in range(len(splits)))
                                      + f"{{t{len(splits)}}}{{answer}}", list(splits))
            soft = SoftPrompt(model, sum(splits), seed=seed)
            with torch.no_grad():
                virtual = soft.prompt.detach().clone()
                pieces = [embed(torch.tensor(x, dtype=torch.long)) for x in ids]
                want = build_inputs(soft, template, [Encoded(ids, [0])])["inputs_embeds"][0, :-1]
                got = _call(fn, [p.clone() for p in pieces], virtual.clone(), list(splits))
            if isinstance(got, torch.Tensor) and got.shape == want.shape and not torch.allclose(got, want):
                front = torch.cat([virtual] + pieces)
                if torch.allclose(got, front):
                    raise _Wrong("every virtual token is at the front; each slot between the pieces takes its "
                                 "own share, in the order of splits")
                chunks = torch.split(virtual, list(splits[::-1]))
                back = torch.cat([pieces[0]] + [x for c, p in zip(chunks, pieces[1:]) for x in (c, p)])
                if len(set(splits)) > 1 and torch.allclose(got, back):
                    raise _Wrong("the splits are taken in reverse: the first slot gets the first splits[0] tokens")
            problem = _tensor_problem(got, want, "the embeddings")
            if problem:
                raise _Wrong(problem)
        return _Case(label, run, hidden)

    return _run("place_slots", [
        case([3, 4, 2, 0], [4, 2, 1], "NeMo's three slots (splits 4, 2, 1) around a context and a question",
             hidden=False),
        case([0, 5], [3], "one slot at the very start"),
        case([2, 0, 3], [1, 5], "two slots next to each other", seed=1),
        case([1, 1, 1, 1, 1], [1, 1, 1, 1], "four slots of one token", seed=2),
    ])


_PEFT_KEY = {
    "are the model's weights changed by prompt tuning (yes/no)": (
        _salted("no"), "What has requires_grad left on?"),
    "does a soft prompt have to be made of real tokens of the vocabulary (yes/no)": (
        _salted("no"), "The virtual tokens are free vectors in embedding space."),
    "can one frozen model serve many tasks by swapping soft prompts (yes/no)": (
        _salted("yes"), "Each task only needs its own small prompt."),
}


def check_peft_quiz(answers: dict) -> bool:
    """Chapter 10 quiz: prompt tuning."""
    return _quiz("peft_quiz", answers, _PEFT_KEY)
