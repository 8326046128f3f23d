"""Chapter 4 (prompting): the checks that ``exercises/src/04_prompting.py`` calls,
its quiz key and their private helpers (the shared machinery is in ``_harness.py``)."""

from __future__ import annotations

import math
from typing import Callable

import torch

from ._harness import _call, _Case, _number_problem, _quiz, _run, _salted, _same_input, _Wrong

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
    from ..icl import build_prompt

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
    from ..icl import PromptTooLong, build_prompt

    if tokenizer is None:
        from ..zoo import load
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
            if got == expected - 1 and used(query, examples, expected) == window:
                raise _Wrong(f"{expected} examples and the label fill the {window} tokens exactly, and an exact "
                             "fit counts (compare with <=, not <)")
            raise _Wrong(f"{got} examples, but more fit in {window} tokens (is the label counted twice, or "
                         "the window reduced twice?)")
        return _Case(label, run, hidden)

    def used(query, examples, k):
        answer = max(len(tokenizer(" " + label)["input_ids"]) for label in labels)
        return len(tokenizer(build_prompt(query, examples, k))["input_ids"]) + answer

    full = len(tokenizer(build_prompt("The tea was cold.", _REVIEWS, 6))["input_ids"])
    label_tokens = used("The tea was cold.", _REVIEWS, 6) - full
    return _run("max_shots", [
        case("The tea was cold.", _REVIEWS, 128, "a window of 128 tokens", hidden=False),
        case("The tea was cold.", _REVIEWS, 1024, "a window that holds every example"),
        case("The tea was cold.", _REVIEWS, full + 2, "a window that holds all 6 only if the label is short"),
        case("The tea was cold.", _REVIEWS, full + label_tokens, "a window that 6 examples and the label fill "
             "exactly"),
        case("The tea was cold.", _REVIEWS, used("The tea was cold.", _REVIEWS, 3) + label_tokens - 1,
             "a window with room for 3 examples, the label and a few tokens more"),
        case("The tea was cold.", _REVIEWS, 40, "a window that holds only the zero-shot prompt"),
    ])


def check_label_log_prob(fn: Callable, model=None, tokenizer=None) -> bool:
    """Chapter 4. ``fn(model, tokenizer, prompt, label) -> float``: the log-probability (nats) of the
    label's tokens, ``" " + label``, right after the prompt, summed over its tokens. Compared with
    ``llmlab.icl.score_labels``. Uses the bundled ``stories-1m`` unless a model is given."""
    from ..icl import score_labels

    if model is None or tokenizer is None:
        from ..zoo import load
        model, tokenizer = load("stories-1m", device="cpu")

    @torch.no_grad()
    def label_logps(prompt, label, offset):
        n = len(tokenizer(prompt)["input_ids"])
        ids = tokenizer(prompt + " " + label, return_tensors="pt")["input_ids"].to(model.device)
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
        return logp[torch.arange(n - offset, ids.size(1) - offset), ids[0, n:]]

    def first_token(prompt, label):
        return label_logps(prompt, label, 1)[0].item()

    def own_position(prompt, label):
        return label_logps(prompt, label, 0).sum().item()

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
                if 0 < got <= 1 and math.isclose(got, math.exp(want), rel_tol=1e-3):
                    raise _Wrong("that is the probability; return its log (sum the log_softmax values, "
                                 "do not exp them)")
                if n > 1 and math.isclose(got, first_token(prompt, label), rel_tol=1e-4):
                    raise _Wrong(f"scored only the first token of the label; it has {n} tokens: add the "
                                 "log-probability of each")
                if math.isclose(got, own_position(prompt, label), rel_tol=1e-4):
                    raise _Wrong("read each label token's log-probability at its own position; read it from "
                                 "the logits at the position before it (position t predicts token t + 1)")
            if problem:
                raise _Wrong(problem + " (the logits at position t predict the token at t + 1)")
        return _Case(f"prompt {prompt!r}, label {label!r}", run, hidden)

    return _run("label_log_prob", [
        case("Once upon a time there was a little", "girl", hidden=False),
        case("Tom and Lily went to the", "park"),
        case("The dog was very", "happy"),
        case("She looked at the sky and saw a", "big red balloon"),
    ])


def _wilson_variant(k: int, n: int, z: float, square_term: bool = True, shift: bool = True) -> tuple:
    """A Wilson interval written with one of the usual mistakes (to name them), rounded for comparison."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n) if shift else p
    half = z * math.sqrt(p * (1 - p) / n + (z * z / (4 * n * n) if square_term else 0)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _near(got: tuple, want: tuple) -> bool:
    return all(isinstance(g, (int, float)) and math.isclose(g, w, rel_tol=1e-9, abs_tol=1e-12)
               for g, w in zip(got, want))


def check_wilson_interval(fn: Callable) -> bool:
    """Chapter 4. ``fn(successes, n) -> (low, high)``: the 95% Wilson score interval (z = 1.96) of an
    accuracy measured on ``n`` examples (Wilson 1927). Compared with ``llmlab.icl.wilson_interval``."""
    from ..icl import wilson_interval

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
            for z, words in ((1.645, "90%"), (2.576, "99%"), (1.0, "68%")):
                if _near(got, _wilson_variant(k, n, z)):
                    raise _Wrong(f"that is the {words} interval (z = {z}); the 95% interval uses z = 1.96")
            if _near(got, _wilson_variant(k, n, 1.96, square_term=False)):
                raise _Wrong("the half-width lacks its z^2/4n^2 term under the square root")
            if _near(got, _wilson_variant(k, n, 1.96, shift=False)):
                raise _Wrong("the interval is centred on p = k/n; the Wilson centre is (p + z^2/2n) / (1 + z^2/n), "
                             "moved towards 1/2")
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
    from ..icl import calibrate

    def case(scores, cf, label, hidden=True):
        scores, cf = torch.tensor(scores, dtype=torch.float64), torch.tensor(cf, dtype=torch.float64)

        def run():
            passed_scores, passed_cf = scores.clone(), cf.clone()
            got = _call(fn, passed_scores, passed_cf)
            want = calibrate(scores, cf)
            for before, after, what in ((scores, passed_scores, "the scores passed in"),
                                        (cf, passed_cf, "the content-free scores passed in")):
                changed = _same_input(before, after, what)
                if changed:
                    raise _Wrong(changed)
            try:
                got = torch.as_tensor(got, dtype=torch.float64)
            except (TypeError, ValueError, RuntimeError):
                raise _Wrong(f"returned a {type(got).__name__}; expected a tensor of log-probabilities") from None
            if got.shape != want.shape:
                raise _Wrong(f"returned shape {tuple(got.shape)}; expected {tuple(want.shape)} (prompts, labels)")
            if torch.allclose(got, want, atol=1e-6):
                return
            if torch.allclose(got, want.exp(), atol=1e-6):
                raise _Wrong("returned probabilities; return log-probabilities (the log of the normalised ratio)")
            if len(got) > 1 and torch.allclose(got.exp().sum(0), torch.ones(got.size(1), dtype=torch.float64),
                                               atol=1e-4):
                raise _Wrong("normalised over the prompts (dim 0); normalise each row over the labels (dim -1)")
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
    from ..icl import relabel

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
