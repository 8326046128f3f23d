"""Chapter 1 (lifecycle): the checks that ``exercises/src/01_lifecycle.py`` calls,
its quiz key and their private helpers (the shared machinery is in ``_harness.py``)."""

from __future__ import annotations

from typing import Callable

import torch

from ._harness import _call, _Case, _quiz, _run, _salted, _same_input, _tiny_gpt2, _Wrong


def check_fit_to_context(fn: Callable) -> bool:
    """Chapter 1. ``fn(token_ids, context_window, max_new_tokens) -> (kept_ids, n_dropped)`` keeps the most
    recent tokens so that the prompt plus ``max_new_tokens`` fits the window."""
    from ..context_window import fit_to_context

    def case(ids, window, new, label, hidden=True):
        def run():
            original = list(ids)
            passed = list(ids)
            got = _call(fn, passed, window, new)
            changed = _same_input(original, passed, "the list passed in")
            if changed:
                raise _Wrong(changed)
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
        from ..zoo import load
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
    from ..zoo import load

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


_STAGES = ("scope", "select", "adapt and align", "deploy")  # the choices the exercise lists, in no hidden order
_LIFECYCLE_KEY = {
    "stages in order": (_salted("scope|select|adapt and align|deploy"),
                        "Four stages, from deciding what the model must do to putting it in an application.",
                        _STAGES),
    "prompt engineering": (_salted("adapt and align"), "In which stage do you change the model's behaviour?",
                           _STAGES),
    "quantize for inference": (_salted("deploy"), "Think of what has to happen before users call the model.",
                               _STAGES),
    "one task or many?": (_salted("scope"), "This is decided before any model is chosen.", _STAGES),
    "tokens a 256-token window leaves for the prompt when 60 new tokens are wanted": (
        _salted("196"), "The prompt and the tokens generated share one window."),
}


def check_lifecycle_quiz(answers: dict) -> bool:
    """Chapter 1 quiz: the stages of the project lifecycle and the context window."""
    return _quiz("lifecycle_quiz", answers, _LIFECYCLE_KEY)
