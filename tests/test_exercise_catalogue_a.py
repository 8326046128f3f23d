"""A catalogue of wrong answers for the checks of chapters 1 to 4 (and the quiz machinery).

For every check, at least three wrong solutions a student could plausibly write: off by one,
the wrong axis or shift, the wrong unit, an input changed in place, an edge case ignored, the
formula of a neighbouring idea. Each is a real function, run through the real check, which
must return False and print a message that names the mistake (the fragment asserted below).
Right answers in another form (a quiz answer with a capital, a trailing period, a plural, a
number written as a word) must pass, and an answer outside a quiz's choices is told the choices.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import math
import sys
import unicodedata
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from llmlab import exercises as ex
from llmlab.attention import sinusoidal_positional_encoding
from llmlab.icl import build_prompt

ROOT = Path(__file__).resolve().parents[1]


def verdict(check, *args) -> tuple[bool, str]:
    """Run ``check(*args)``; return (what it returned, what it printed)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        passed = check(*args)
    return passed, buffer.getvalue()


CATALOGUE: list = []


def wrong(check, *says: str):
    """Register the decorated function (or tuple of functions) as a wrong answer to ``check``,
    whose feedback must contain every fragment of ``says``."""
    def register(fn):
        args = fn if isinstance(fn, tuple) else (fn,)
        name = getattr(args[0], "__name__", "answer") if not isinstance(fn, tuple) else fn[-1].__name__
        CATALOGUE.append(pytest.param(check, args, says, id=f"{check.__name__}-{name}-{len(CATALOGUE)}"))
        return fn
    return register


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


# =============================================================== chapter 1: the lifecycle
@wrong(ex.check_fit_to_context, "kept the start")
def keeps_the_start(ids, window, new):
    room = window - new
    return ids[:room], max(0, len(ids) - room)


@wrong(ex.check_fit_to_context, "there was room for more")
def one_token_short(ids, window, new):  # off by one: keeps room - 1 tokens
    room = window - new - 1
    dropped = max(0, len(ids) - room)
    return ids[dropped:], dropped


@wrong(ex.check_fit_to_context, "more than the window")
def forgets_the_new_tokens(ids, window, new):
    dropped = max(0, len(ids) - window)
    return ids[dropped:], dropped


@wrong(ex.check_fit_to_context, "n_dropped")
def negative_drop_count(ids, window, new):  # no max(0, ...): a short prompt "drops" a negative number
    dropped = len(ids) - (window - new)
    return ids[max(0, dropped):], dropped


@wrong(ex.check_fit_to_context, "changed the list passed in")
def cuts_in_place(ids, window, new):
    dropped = max(0, len(ids) - (window - new))
    del ids[:dropped]
    return ids, dropped


@torch.no_grad()
def _greedy_ids(model, tok, prompt, n, position=-1, steps=None):
    ids = tok(prompt, return_tensors="pt").input_ids
    start = ids.size(1)
    for _ in range(n if steps is None else steps):
        ids = torch.cat([ids, model(input_ids=ids).logits[0, position].argmax().view(1, 1)], 1)
    return ids, start


@wrong(ex.check_greedy_completion, "only the new text")
def returns_prompt_too(model, tok, prompt, n):
    ids, _ = _greedy_ids(model, tok, prompt, n)
    return tok.decode(ids[0])


@wrong(ex.check_greedy_completion, "differs from greedy decoding")
def argmax_of_first_position(model, tok, prompt, n):
    ids, start = _greedy_ids(model, tok, prompt, n, position=0)
    return tok.decode(ids[0, start:])


@wrong(ex.check_greedy_completion, "new tokens")
def one_token_short_of_n(model, tok, prompt, n):  # range(n - 1)
    ids, start = _greedy_ids(model, tok, prompt, n, steps=n - 1)
    return tok.decode(ids[0, start:])


@wrong(ex.check_greedy_completion, "differs from greedy decoding")
@torch.no_grad()
def samples_instead(model, tok, prompt, n):
    torch.manual_seed(1)
    ids = tok(prompt, return_tensors="pt").input_ids
    start = ids.size(1)
    for _ in range(n):
        probs = model(input_ids=ids).logits[0, -1].softmax(-1)
        ids = torch.cat([ids, torch.multinomial(probs, 1).view(1, 1)], 1)
    return tok.decode(ids[0, start:])


def _card(model, **override):
    c = model.config
    card = {"n_parameters": sum(p.numel() for p in model.parameters()), "context_window": c.n_positions,
            "layers": c.n_layer, "heads": c.n_head, "vocab_size": c.vocab_size}
    return {**card, **override}


@wrong(ex.check_model_card_numbers, "tied output embedding")
def counts_tied_twice(model):
    return _card(model, n_parameters=sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False)))


@wrong(ex.check_model_card_numbers, "position embeddings")
def leaves_out_positions(model):
    return _card(model, n_parameters=sum(p.numel() for n, p in model.named_parameters() if "wpe" not in n))


@wrong(ex.check_model_card_numbers, "heads", "do not type it")
def head_size_for_heads(model):
    return _card(model, heads=model.config.n_embd // model.config.n_head)


@wrong(ex.check_model_card_numbers, "do not type it")
def typed_numbers(model):
    return {"n_parameters": 957184, "context_window": 256, "layers": 4, "heads": 4, "vocab_size": 1024}


@wrong(ex.check_model_card_numbers, "keys")
def other_key_names(model):
    card = _card(model)
    card["n_params"] = card.pop("n_parameters")
    return card


# =============================================================== chapter 2: transformers
@wrong(ex.check_causal_mask, "transposed")
def upper_triangle(t):
    return torch.ones(t, t, dtype=torch.bool).triu()


@wrong(ex.check_causal_mask, "swapped")
def true_means_hidden(t):
    return ~torch.ones(t, t, dtype=torch.bool).tril()


@wrong(ex.check_causal_mask, "diagonal")
def strict_lower(t):
    return torch.ones(t, t, dtype=torch.bool).tril(-1)


@wrong(ex.check_causal_mask, "dtype", "torch.bool")
def float_mask(t):
    return torch.ones(t, t).tril()


def _attention(q, k, v, mask=None, scale=None, dim=-1, fill=float("-inf"), invert=False):
    scores = q @ k.transpose(-2, -1) / (math.sqrt(q.size(-1)) if scale is None else scale)
    if mask is not None:
        scores = scores.masked_fill(mask if invert else ~mask, fill)
    weights = scores.softmax(dim)
    return weights @ v, weights


@wrong(ex.check_attention, "sqrt(D)")
def unscaled(q, k, v, mask=None):
    return _attention(q, k, v, mask, scale=1.0)


@wrong(ex.check_attention, "column")
def softmax_over_queries(q, k, v, mask=None):
    return _attention(q, k, v, mask, dim=-2)


@wrong(ex.check_attention, "masked positions get weight")
def ignores_mask(q, k, v, mask=None):
    return _attention(q, k, v, None)


@wrong(ex.check_attention, "inverted")
def inverted_mask(q, k, v, mask=None):
    return _attention(q, k, v, mask, invert=True)


@wrong(ex.check_attention, "size of the values")
def scaled_by_value_size(q, k, v, mask=None):
    return _attention(q, k, v, mask, scale=math.sqrt(v.size(-1)))


@wrong(ex.check_attention, "masked positions get weight")
def masks_with_zero(q, k, v, mask=None):
    return _attention(q, k, v, mask, fill=0.0)


@wrong(ex.check_positional_encoding, "swapped")
def cos_first(n, d):
    w = sinusoidal_positional_encoding(n, d)
    return torch.stack([w[:, 1::2], w[:, 0::2]], -1).flatten(1)


@wrong(ex.check_positional_encoding, "two halves")
def halves(n, d):
    w = sinusoidal_positional_encoding(n, d)
    return torch.cat([w[:, 0::2], w[:, 1::2]], 1)


@wrong(ex.check_positional_encoding, "shape")
def transposed_encoding(n, d):
    return sinusoidal_positional_encoding(n, d).T


@wrong(ex.check_positional_encoding, "1 / 10000^(2i / d_model)")
def exponent_i_over_d(n, d):  # the pair index i instead of 2i in the exponent
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    freq = 10000.0 ** (-torch.arange(d // 2, dtype=torch.float32) / d)
    pe = torch.zeros(n, d)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
    return pe


@wrong(ex.check_positional_encoding, "position 0")
def positions_from_one(n, d):
    return sinusoidal_positional_encoding(n + 1, d)[1:]


# =============================================================== chapter 3: pre-training
@wrong(ex.check_causal_lm_loss, "no shift")
def no_shift(logits, ids):
    return F.cross_entropy(logits.flatten(0, 1), ids.flatten())


@wrong(ex.check_causal_lm_loss, "wrong way")
def shifted_wrong_way(logits, ids):
    return F.cross_entropy(logits[:, 1:].flatten(0, 1), ids[:, :-1].flatten())


@wrong(ex.check_causal_lm_loss, "bits")
def in_bits(logits, ids):
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten()) / math.log(2)


@wrong(ex.check_causal_lm_loss, "summed")
def summed(logits, ids):
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten(), reduction="sum")


@wrong(ex.check_causal_lm_loss, "expected a scalar")
def per_token(logits, ids):
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten(), reduction="none")


@wrong(ex.check_causal_lm_loss, "probabilities")
def softmax_before_cross_entropy(logits, ids):
    return F.cross_entropy(logits[:, :-1].softmax(-1).flatten(0, 1), ids[:, 1:].flatten())


def _mean_loss(losses, tokens):
    return sum(a * b for a, b in zip(losses, tokens)) / sum(tokens)


@wrong(ex.check_perplexity, "weight each batch")
def unweighted(losses, tokens):
    return math.exp(sum(losses) / len(losses))


@wrong(ex.check_perplexity, "exp of it")
def mean_loss_only(losses, tokens):
    return _mean_loss(losses, tokens)


@wrong(ex.check_perplexity, "use exp")
def base_two(losses, tokens):
    return 2 ** _mean_loss(losses, tokens)


@wrong(ex.check_perplexity, "per-batch perplexities")
def mean_of_perplexities(losses, tokens):
    return sum(math.exp(a) * b for a, b in zip(losses, tokens)) / sum(tokens)


@wrong(ex.check_perplexity, "number of batches")
def divides_by_batches(losses, tokens):
    return math.exp(sum(a * b for a, b in zip(losses, tokens)) / len(tokens))


def _dupes(docs, key):
    seen, out = set(), []
    for i, doc in enumerate(docs):
        if key(doc) in seen:
            out.append(i)
        seen.add(key(doc))
    return out


@wrong(ex.check_exact_duplicates, "normalised")
def raw_equality(docs):
    return _dupes(docs, lambda d: d)


@wrong(ex.check_exact_duplicates, "Unicode")
def lower_only(docs):  # case and whitespace, but no NFKC
    return _dupes(docs, lambda d: " ".join(d.lower().split()))


@wrong(ex.check_exact_duplicates, "whitespace")
def strip_only(docs):  # case and NFKC, but runs of spaces kept
    return _dupes(docs, lambda d: unicodedata.normalize("NFKC", d).casefold().strip())


@wrong(ex.check_exact_duplicates, "first copy")
def marks_first_copy(docs):
    keys = [_norm(d) for d in docs]
    return sorted(i for i, k in enumerate(keys) if k in keys[i + 1:])


@wrong(ex.check_exact_duplicates, "every copy")
def marks_every_copy(docs):
    keys = [_norm(d) for d in docs]
    return [i for i, k in enumerate(keys) if keys.count(k) > 1]


@wrong(ex.check_exact_duplicates, "expected a list")
def returns_a_set(docs):
    return set(_dupes(docs, _norm))


def _shingles(text, n):
    words = _norm(text).split()
    return {" ".join(words[i:i + n]) for i in range(max(1, len(words) - n + 1))}


def _jaccard(a, b):
    return len(a & b) / len(a | b) if a | b else 1.0


def first_set_size(a, b):
    return len(a & b) / max(1, len(a))


def no_empty_guard(a, b):
    return len(a & b) / len(a | b)


def sum_of_sizes(a, b):  # |a| + |b| counts the intersection twice
    return len(a & b) / (len(a) + len(b)) if a or b else 1.0


def character_shingles(text, n):
    return {text[i:i + n] for i in range(max(1, len(text) - n + 1))}


def no_short_text_shingle(text, n):  # a text shorter than n words gets no shingle
    words = _norm(text).split()
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def case_kept(text, n):
    words = text.split()
    return {" ".join(words[i:i + n]) for i in range(max(1, len(words) - n + 1))}


wrong(ex.check_shingles_jaccard, "union")((_shingles, first_set_size))
wrong(ex.check_shingles_jaccard, "two empty sets")((_shingles, no_empty_guard))
wrong(ex.check_shingles_jaccard, "union", "twice")((_shingles, sum_of_sizes))
wrong(ex.check_shingles_jaccard, "words")((character_shingles, _jaccard))
wrong(ex.check_shingles_jaccard, "shorter than")((no_short_text_shingle, _jaccard))
wrong(ex.check_shingles_jaccard, "normalise")((case_kept, _jaccard))


# =============================================================== chapter 4: prompting
@wrong(ex.check_few_shot_prompt, "ends with a space")
def trailing_space(query, examples, k):
    return build_prompt(query, examples, k) + " "


@wrong(ex.check_few_shot_prompt, "blank line")
def single_newline(query, examples, k):
    shots = "".join(f"Classify this review: {t}\nSentiment: {lab}\n" for t, lab in examples[:k])
    return shots + f"Classify this review: {query}\nSentiment:"


@wrong(ex.check_few_shot_prompt, "reviews", "expected")
def one_shot_too_many(query, examples, k):
    return build_prompt(query, examples, min(k + 1, len(examples)))


@wrong(ex.check_few_shot_prompt, "query must come last")
def query_first(query, examples, k):
    shots = "".join(f"\n\nClassify this review: {t}\nSentiment: {lab}" for t, lab in examples[:k])
    return f"Classify this review: {query}\nSentiment:" + shots


@wrong(ex.check_few_shot_prompt, "label")
def no_space_before_label(query, examples, k):
    shots = "".join(f"Classify this review: {t}\nSentiment:{lab}\n\n" for t, lab in examples[:k])
    return shots + f"Classify this review: {query}\nSentiment:"


def _max_shots(tokenizer, query, examples, window, labels, answer=None, fits=lambda used, w: used <= w):
    n = lambda text: len(tokenizer(text)["input_ids"])  # noqa: E731
    extra = max(n(" " + label) for label in labels) if answer is None else answer(n, labels)
    best = -1
    for k in range(len(examples) + 1):
        if not fits(n(build_prompt(query, examples, k)) + extra, window):
            break
        best = k
    return best


@wrong(ex.check_max_shots, "do not fit")
def forgets_the_label(tokenizer, query, examples, window, labels):
    return _max_shots(tokenizer, query, examples, window, labels, answer=lambda n, labels: 0)


@wrong(ex.check_max_shots, "exact fit")
def strict_inequality(tokenizer, query, examples, window, labels):
    return _max_shots(tokenizer, query, examples, window, labels, fits=lambda used, w: used < w)


@wrong(ex.check_max_shots, "counted twice")
def label_twice(tokenizer, query, examples, window, labels):
    return _max_shots(tokenizer, query, examples, window, labels,
                      answer=lambda n, labels: 2 * max(n(" " + label) for label in labels))


@wrong(ex.check_max_shots, "more fit")
def one_fewer(tokenizer, query, examples, window, labels):  # off by one: the last k that fits, minus one
    return max(-1, _max_shots(tokenizer, query, examples, window, labels) - 1)


@torch.no_grad()
def _label_scores(model, tok, prompt, label, sep=" ", offset=1):
    n = len(tok(prompt)["input_ids"])
    ids = tok(prompt + sep + label, return_tensors="pt")["input_ids"]
    logp = torch.log_softmax(model(input_ids=ids).logits[0], -1)
    positions = torch.arange(n - offset, ids.size(1) - offset)
    return logp[positions, ids[0, n:]]


@wrong(ex.check_label_log_prob, "not the mean")
def mean_of_tokens(model, tok, prompt, label):
    return _label_scores(model, tok, prompt, label).mean().item()


@wrong(ex.check_label_log_prob, "position before")
def reads_its_own_position(model, tok, prompt, label):
    return _label_scores(model, tok, prompt, label, offset=0).sum().item()


@wrong(ex.check_label_log_prob, "probability", "log")
def probability_not_log(model, tok, prompt, label):
    return _label_scores(model, tok, prompt, label).sum().exp().item()


@wrong(ex.check_label_log_prob, "first token")
def first_token_only(model, tok, prompt, label):
    return _label_scores(model, tok, prompt, label)[0].item()


@wrong(ex.check_label_log_prob, "<= 0")
@torch.no_grad()
def raw_logits(model, tok, prompt, label):
    n = len(tok(prompt)["input_ids"])
    ids = tok(prompt + " " + label, return_tensors="pt")["input_ids"]
    logits = model(input_ids=ids).logits[0]
    return logits[torch.arange(n - 1, ids.size(1) - 1), ids[0, n:]].sum().item()


def _wilson(k, n, z=1.96, square_term=True, centre_shift=True):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n) if centre_shift else p
    half = z * math.sqrt(p * (1 - p) / n + (z * z / (4 * n * n) if square_term else 0)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@wrong(ex.check_wilson_interval, "Wald")
def wald(k, n):
    p = k / n
    h = 1.96 * math.sqrt(p * (1 - p) / n)
    return max(0.0, p - h), min(1.0, p + h)


@wrong(ex.check_wilson_interval, "z = 1.96")
def ninety_percent(k, n):
    return _wilson(k, n, z=1.645)


@wrong(ex.check_wilson_interval, "100 times too large", "percent")
def in_percent(k, n):
    low, high = _wilson(k, n)
    return 100 * low, 100 * high


@wrong(ex.check_wilson_interval, "z^2/4n^2")
def no_square_term(k, n):
    return _wilson(k, n, square_term=False)


@wrong(ex.check_wilson_interval, "centre")
def centred_on_p(k, n):
    return _wilson(k, n, centre_shift=False)


def _flip(demos, labels):
    return [(t, labels[1] if lab == labels[0] else labels[0]) for t, lab in demos]


def _calibrate(scores, cf):
    return torch.log_softmax(torch.log_softmax(scores, -1) - torch.log_softmax(cf, -1), -1)


@wrong(ex.check_flip_labels, "unchanged")
def keeps_labels(demos, labels):
    return list(demos)


@wrong(ex.check_flip_labels, "texts changed or moved")
def reverses_order(demos, labels):
    return _flip(demos, labels)[::-1]


@wrong(ex.check_flip_labels, "got labels")
def always_first_label(demos, labels):
    return [(t, labels[0]) for t, _ in demos]


@wrong(ex.check_flip_labels, "texts changed or moved")
def pairs_reversed(demos, labels):
    return [(lab, t) for t, lab in _flip(demos, labels)]


@wrong(ex.check_calibrate, "multiplied")
def multiplies(scores, cf):
    return torch.log_softmax(scores + cf, -1)


@wrong(ex.check_calibrate, "not normalised")
def no_renormalisation(scores, cf):
    return torch.log_softmax(scores, -1) - torch.log_softmax(cf, -1)


@wrong(ex.check_calibrate, "probabilities", "log")
def returns_probabilities(scores, cf):
    return _calibrate(scores, cf).exp()


@wrong(ex.check_calibrate, "changed the scores passed in")
def in_place(scores, cf):
    scores -= cf
    return torch.log_softmax(scores, -1)


@wrong(ex.check_calibrate, "over the labels")
def normalises_over_prompts(scores, cf):
    return torch.log_softmax(torch.log_softmax(scores, 0) - torch.log_softmax(cf, -1), 0)


wrong(ex.check_flip_and_calibrate, "multiplied")((_flip, multiplies))
wrong(ex.check_flip_and_calibrate, "unchanged")((keeps_labels, _calibrate))
wrong(ex.check_flip_and_calibrate, "got labels")((always_first_label, _calibrate))


# =============================================================== the quizzes
def _load_generator():
    spec = importlib.util.spec_from_file_location("make_exercises", ROOT / "tools" / "make_exercises.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_exercises"] = module
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


def right_answers(check) -> dict:
    """The quiz's answers, taken from its solution source (not typed here)."""
    for source in gen.sources():
        for exercise in source.exercises():
            if any(c.role == "check" and f"{check.__name__}(" in c.source for c in exercise.cells):
                scope: dict = {}
                for cell in exercise.cells:
                    if cell.kind == "code" and cell.source.lstrip().startswith("answers = {"):
                        exec(gen.split_solution(cell.source)[1], {"torch": torch}, scope)
                return scope["answers"]
    raise LookupError(check.__name__)


QUIZ_WRONG = [
    # (check, question fragment, wrong answer, fragment of the reply)
    (ex.check_lifecycle_quiz, "stages in order", ["select", "scope", "adapt and align", "deploy"], "is not right"),
    (ex.check_lifecycle_quiz, "prompt engineering", "select", "is not right"),
    (ex.check_lifecycle_quiz, "tokens a 256-token", 256, "is not right"),
    (ex.check_lifecycle_quiz, "tokens a 256-token", 316, "is not right"),
    (ex.check_lifecycle_quiz, "quantize", "inference", "answer one of"),
    (ex.check_families_quiz, "BERT objective", "causal", "is not right"),
    (ex.check_families_quiz, "T5 objective", "masked", "is not right"),
    (ex.check_families_quiz, "attention weights", 1200, "is not right"),
    (ex.check_families_quiz, "attention weights", 12 * 100 * 100 * 2, "is not right"),
    (ex.check_families_quiz, "family for open-ended", "encoder-only", "is not right"),
    (ex.check_families_quiz, "family for open-ended", "GPT", "answer one of"),
    (ex.check_icl_quiz, "change the model's weights", "yes", "is not right"),
    (ex.check_icl_quiz, "no solved examples", "one-shot", "is not right"),
    (ex.check_icl_quiz, "no solved examples", "none", "answer one of"),
    (ex.check_icl_quiz, "what limits", "the prompt", "is not right"),
    (ex.check_icl_quiz, "accuracy of always", 1.0, "is not right"),
    (ex.check_icl_quiz, "accuracy of always", 50, "is not right"),
]

QUIZ_RIGHT_IN_ANOTHER_FORM = [
    (ex.check_lifecycle_quiz, "prompt engineering", "Adapt and align."),
    (ex.check_lifecycle_quiz, "stages in order", ["Scope", "select.", "adapt & align", "Deploy"]),
    (ex.check_lifecycle_quiz, "tokens a 256-token", "196"),
    (ex.check_lifecycle_quiz, "tokens a 256-token", 196.0),
    (ex.check_families_quiz, "family for open-ended", "Decoder only"),
    (ex.check_families_quiz, "attention weights", "120,000"),
    (ex.check_families_quiz, "T5 objective", "span-corruption"),
    (ex.check_icl_quiz, "change the model's weights", "No."),
    (ex.check_icl_quiz, "no solved examples", "Zero shot"),
    (ex.check_icl_quiz, "what limits", "the context windows"),
    (ex.check_icl_quiz, "accuracy of always", "0.50"),
]


def _question(check, fragment):
    return next(q for q in right_answers(check) if fragment in q)


for _check, _fragment, _answer, _says in QUIZ_WRONG:
    def _make(check=_check, fragment=_fragment, answer=_answer):
        def answers():
            return {**right_answers(check), _question(check, fragment): answer}
        answers.__name__ = f"{fragment.split()[0]}={answer!r}"
        return answers
    CATALOGUE.append(pytest.param(_check, _make(), (_says,), id=f"{_check.__name__}-{_fragment}-{_answer!r}"))


# =============================================================== the tests
@pytest.mark.parametrize("check,args,says", CATALOGUE)
def test_the_check_rejects_a_wrong_answer_and_names_the_mistake(check, args, says):
    if callable(args) and not isinstance(args, tuple):  # a quiz: the answers are built late
        args = (args(),)
    passed, out = verdict(check, *args)
    assert passed is False, f"accepted a wrong answer:\n{out}"
    for fragment in says:
        assert fragment in out, f"the feedback does not name the mistake ({fragment!r}):\n{out}"


CHAPTERS_1_TO_4 = [ex.check_fit_to_context, ex.check_greedy_completion, ex.check_model_card_numbers,
                   ex.check_lifecycle_quiz, ex.check_causal_mask, ex.check_attention,
                   ex.check_positional_encoding, ex.check_families_quiz, ex.check_causal_lm_loss,
                   ex.check_perplexity, ex.check_exact_duplicates, ex.check_shingles_jaccard,
                   ex.check_few_shot_prompt, ex.check_max_shots, ex.check_label_log_prob,
                   ex.check_wilson_interval, ex.check_icl_quiz, ex.check_flip_and_calibrate,
                   ex.check_flip_labels, ex.check_calibrate]


def test_every_check_of_chapters_1_to_4_has_three_wrong_answers_or_more():
    counts = {check.__name__: 0 for check in CHAPTERS_1_TO_4}
    for param in CATALOGUE:
        counts[param.values[0].__name__] = counts.get(param.values[0].__name__, 0) + 1
    assert all(n >= 3 for n in counts.values()), counts
    used = {c for c in ex.__all__ if c in {f.__name__ for f in CHAPTERS_1_TO_4}}
    first_four = {n.split("(")[0].strip().removeprefix("ex.") for s in gen.sources() if s.name[:2] in {"01", "02", "03", "04"}
                  for e in s.exercises() for c in e.cells if c.role == "check" for n in [c.source.strip().splitlines()[-1]]}
    assert first_four <= used


@pytest.mark.parametrize("check,fragment,answer", QUIZ_RIGHT_IN_ANOTHER_FORM,
                         ids=[f"{c.__name__}-{a!r}" for c, _, a in QUIZ_RIGHT_IN_ANOTHER_FORM])
def test_a_right_quiz_answer_in_another_form_passes(check, fragment, answer):
    answers = {**right_answers(check), _question(check, fragment): answer}
    passed, out = verdict(check, answers)
    assert passed is True, out


def test_an_answer_outside_the_choices_is_told_the_choices_not_that_the_idea_is_wrong():
    question = _question(ex.check_icl_quiz, "weights")
    passed, out = verdict(ex.check_icl_quiz, {**right_answers(ex.check_icl_quiz), question: "No, it does not"})
    assert passed is False
    assert "not in the form asked: answer one of 'yes', 'no'" in out and "is not right" not in out
    passed, out = verdict(ex.check_icl_quiz, {**right_answers(ex.check_icl_quiz), question: "nope"})
    assert passed is False and "is none of 'yes', 'no' (answer one of them)" in out
    question = _question(ex.check_families_quiz, "open-ended")
    passed, out = verdict(ex.check_families_quiz, {**right_answers(ex.check_families_quiz), question: "decoder"})
    assert passed is False and "not in the form asked" in out and "is not right" not in out


def test_the_solutions_pass():  # the catalogue's reference answers are themselves right
    assert verdict(ex.check_fit_to_context, lambda ids, w, n: (ids[max(0, len(ids) - (w - n)):],
                                                                max(0, len(ids) - (w - n))))[0]
    assert verdict(ex.check_shingles_jaccard, _shingles, _jaccard)[0]
    assert verdict(ex.check_flip_and_calibrate, _flip, _calibrate)[0]
    for check in (ex.check_lifecycle_quiz, ex.check_families_quiz, ex.check_icl_quiz):
        assert verdict(check, right_answers(check))[0]


# =============================================================== notebooks and pages in step
def _include_blocks(page: str) -> list[tuple[str, str, str]]:
    import re
    return re.findall(r"```\{include\} (\S+)\n:start-after: (.+)\n:end-before: (.+)\n```", page)


@pytest.mark.parametrize("source", gen.sources(), ids=lambda s: s.name)
def test_the_page_holds_no_solution_and_includes_each_from_the_solutions_file(source):
    page = (ROOT / "exercises" / f"{source.name}.md").read_text(encoding="utf-8")
    blocks = _include_blocks(page)
    assert len(blocks) == page.count("::::{solution}") == len(source.exercises())
    for exercise, (path, begin, end) in zip(source.exercises(), blocks):
        assert f" {exercise.key} -->" in begin
        text = (ROOT / "exercises" / path).read_text(encoding="utf-8")
        assert text.count(begin) == text.count(end) == 1
        included = text.split(begin, 1)[1].split(end, 1)[0]
        for cell in exercise.cells[1:]:
            student, solution = gen.split_solution(cell.source)
            only = [line for line in solution.splitlines() if line.strip() and line not in student.splitlines()]
            for line in only:
                assert line in included, (exercise.key, line)
                assert line not in page.splitlines(), f"{exercise.key}: the page itself shows {line!r}"
            if cell.role == "solution-only":  # a demo: folded with the solution on the page
                assert solution in included


@pytest.mark.parametrize("source", gen.sources(), ids=lambda s: s.name)
def test_the_student_notebook_has_the_demos_and_the_minutes_of_the_page(source):
    import nbformat

    student = nbformat.read(ROOT / gen.STUDENT / f"{source.name}.ipynb", as_version=4)
    solution = nbformat.read(ROOT / gen.SOLUTIONS / f"{source.name}.ipynb", as_version=4)
    assert len(student.cells) == len(solution.cells)
    markdown = "\n".join(c.source for c in student.cells if c.cell_type == "markdown")
    code = "\n".join(c.source for c in student.cells if c.cell_type == "code")
    for exercise in source.exercises():
        assert f"{exercise.cells[0].source.splitlines()[0]}\n\n*About {exercise.minutes} minutes.*" in markdown
        for cell in exercise.cells:
            if cell.role == "solution-only":
                assert cell.source in code, f"{exercise.key}: a demo the text may refer to is missing"


def test_the_documented_command_runs_a_student_notebook():
    """README and teachers.md name `jupyter execute`, which the environment has (nbconvert it lacks)."""
    import shutil

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    teachers = (ROOT / "exercises" / "teachers.md").read_text(encoding="utf-8")
    assert "jupyter execute exercises/student/" in readme and "jupyter execute exercises/student/" in teachers
    assert importlib.util.find_spec("nbclient") is not None
    assert shutil.which("jupyter-execute", path=str(Path(sys.executable).parent)) is not None


def test_the_solution_dropdowns_render_the_included_solutions(tmp_path):
    """Build the exercise pages alone with Sphinx (MyST and sphinx-exercise, as the book does; a second
    or two, not the whole book): every solution dropdown shows its solution, and no marker shows."""
    import html
    import re
    import shutil
    import subprocess

    pytest.importorskip("sphinx_exercise")
    pytest.importorskip("myst_parser")
    (tmp_path / "exercises" / "solutions").mkdir(parents=True)
    names = [s.name for s in gen.sources()]
    for name in names:
        shutil.copy(ROOT / "exercises" / f"{name}.md", tmp_path / "exercises")
        shutil.copy(ROOT / gen.SOLUTIONS / f"{name}_solutions.md", tmp_path / "exercises" / "solutions")
    (tmp_path / "conf.py").write_text('extensions = ["myst_parser", "sphinx_exercise"]\n'
                                      'myst_enable_extensions = ["dollarmath", "colon_fence"]\n'
                                      'exclude_patterns = ["exercises/solutions/**", "_build"]\n')
    (tmp_path / "index.md").write_text("# Exercises\n\n```{toctree}\n" + "\n".join(f"exercises/{n}" for n in names)
                                       + "\n```\n")
    result = subprocess.run([sys.executable, "-m", "sphinx", "-q", "-b", "html", str(tmp_path),
                             str(tmp_path / "_build")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for source in gen.sources():
        built = (tmp_path / "_build" / "exercises" / f"{source.name}.html").read_text(encoding="utf-8")
        dropdowns = re.split(r'<div class="[^"]*\bsolution\b[^"]*\bdropdown\b[^"]*"', built)[1:]
        assert len(dropdowns) == len(source.exercises()), source.name
        text = html.unescape(re.sub(r"<[^>]+>", "", built))
        assert "SOLUTION" not in text.replace("Solution", "")
        for exercise, dropdown in zip(source.exercises(), dropdowns):
            shown = html.unescape(re.sub(r"<[^>]+>", "", dropdown))
            for cell in exercise.cells[1:]:
                student, solution = gen.split_solution(cell.source)
                for line in solution.splitlines():
                    if line.strip() and line not in student.splitlines():
                        assert line.strip() in shown, (source.name, exercise.key, line)


# =============================================================== the shared messages
def test_number_messages_give_a_ratio_or_a_named_cause_never_100_or_inf_percent():
    from llmlab.exercises._harness import _number_problem

    messages = {
        (0, 5.0): "is 0; expected a non-zero number",
        (3.0, 0): "is 3; expected 0",
        (-5.0, 5.0): "wrong sign",
        (500.0, 5.0): "100 times too large",
        (17.0, 5.0): "too large: 3.4 times the expected value",
        (1.0, 5.0): "too small: 0.2 times the expected value",
        (5.5, 5.0): "too large by 10%",
    }
    for (got, want), says in messages.items():
        message = _number_problem(got, want, "the value")
        assert says in message and "100%" not in message and "inf" not in message, message


def test_a_tensor_check_may_accept_any_floating_dtype_and_names_the_dtype_it_expects():
    from llmlab.exercises._harness import _tensor_problem

    want = torch.tensor([0.25, 0.75])
    assert _tensor_problem(want.double(), want, any_float=True) is None
    assert "expected dtype torch.float32" in _tensor_problem(want.double(), want)
    assert "dtype" in _tensor_problem(torch.tensor([0, 1]), want, any_float=True)


def test_a_result_that_breaks_the_comparison_gets_a_cause_not_check_its_type_and_shape():
    from llmlab.exercises._harness import _Case, _run

    def compare_number():
        int("zero")  # what a check does with a zero point the student returned as a str

    def compare_tensor():
        torch.tensor([1.0, 2.0]) + torch.tensor([1.0, 2.0, 3.0])

    passed, out = verdict(_run, "demo", [_Case("a str for a number", compare_number),
                                         _Case("a tensor of the wrong size", compare_tensor)])
    assert passed is False
    assert "should be a number is not one" in out and "ValueError" in out
    assert "dtype or shape does not fit" in out and "check its type and shape" not in out
