"""Chapter 13 (aligning a model with preferences): the checks that ``exercises/src/13_alignment.py``
calls, its quiz key and their private helpers (the shared machinery is in ``_harness.py``).

The references are computed in the checks: the DPO loss with ``llmlab.alignment.dpo_loss`` and the
implicit rewards from their definition, ``beta * (log pi - log pi_ref)``; the group-relative
advantages from their definition in float64 (the tests compare it with
``llmlab.alignment.grpo_advantages``); best-of-n from the record itself
(``llmlab.records.alignment``: its sampled answers and its reward models' scores, one reward model
at a time, as ``best_of_n`` chooses), from that record reordered and from made-up tables in its
format, at check time, so that no number of ours is typed here; the Bradley-Terry probability
and loss with ``torch.sigmoid`` and ``llmlab.alignment.bradley_terry_loss``.
"""

from __future__ import annotations

import copy
import math
import random
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ._harness import (
    _call,
    _Case,
    _number_problem,
    _quiz,
    _run,
    _salted,
    _same_input,
    _tensor_problem,
    _Wrong,
)


def _scalar(value: Any, what: str) -> float:
    """A number returned as a float, an int or a one-element tensor, as a float."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise _Wrong(
                f"{what} has shape {tuple(value.shape)}; expected one number (the mean over "
                "the batch, not one value per pair)"
            )
        return value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Wrong(
            f"{what} is a {type(value).__name__}; expected a number (a float or a 0-dim tensor)"
        )
    return float(value)


# =================================================================== the DPO loss
def _dpo_variants(
    pc, pr, rc, rr, beta
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, str]]:
    """(loss, chosen rewards, rejected rewards, the mistake in words) for likely mistakes."""
    hc, hr = pc - rc, pr - rr
    z = beta * (hc - hr)
    right_c, right_r = beta * hc, beta * hr
    return [
        (
            -F.logsigmoid(beta * (pc - pr)).mean(),
            right_c,
            right_r,
            "the reference is left out: the margin is "
            "(log pi_c - log ref_c) - (log pi_r - log ref_r), not log pi_c - log pi_r",
        ),
        (
            -F.logsigmoid(-z).mean(),
            right_c,
            right_r,
            "the sign of the margin is swapped (rejected minus chosen, or softplus(z) for "
            "softplus(-z)): the loss is -log sigmoid(beta * (h_chosen - h_rejected)), small "
            "when the chosen answer wins",
        ),
        (
            -beta * F.logsigmoid(hc - hr).mean(),
            right_c,
            right_r,
            "beta multiplies the loss from outside: it goes inside the sigmoid, "
            "-log sigmoid(beta * (h_c - h_r))",
        ),
        (
            F.logsigmoid(z).mean(),
            right_c,
            right_r,
            "log sigmoid without the minus: the loss is -log sigmoid(...), which training "
            "makes smaller",
        ),
        (
            -torch.sigmoid(z).mean(),
            right_c,
            right_r,
            "the sigmoid without its log: the loss is -log sigmoid(beta * margin)",
        ),
        (
            1 - torch.sigmoid(z).mean(),
            right_c,
            right_r,
            "1 - sigmoid is not the loss: take -log sigmoid(beta * margin)",
        ),
        (
            -F.logsigmoid(z).sum(),
            right_c,
            right_r,
            "the losses of the pairs are summed: DPO averages them over the batch (.mean())",
        ),
        (
            -F.logsigmoid((hc - hr) / beta).mean(),
            hc / beta,
            hr / beta,
            "the margin is divided by beta: it is multiplied, beta * (h_c - h_r)",
        ),
        (
            -F.logsigmoid(beta * ((pc.exp() - rc.exp()) - (pr.exp() - rr.exp()))).mean(),
            beta * (pc.exp() - rc.exp()),
            beta * (pr.exp() - rr.exp()),
            "probabilities were used (exp of the log-probabilities): the margin is a difference of "
            "log-probabilities",
        ),
    ]


def _reward_variants(pc, pr, rc, rr, beta) -> list[tuple[torch.Tensor, torch.Tensor, str]]:
    """(chosen rewards, rejected rewards, the mistake in words)."""
    return [
        (
            pc - rc,
            pr - rr,
            "the implicit reward is beta times the log-ratio: beta * (log pi - log ref)",
        ),
        (
            beta * pc,
            beta * pr,
            "the implicit reward leaves the reference out: beta * (log pi - log ref)",
        ),
        (
            beta * (rc - pc),
            beta * (rr - pr),
            "the log-ratio is upside down: beta * (log pi - log ref), "
            "positive when the policy raised the answer",
        ),
        (
            beta * pr - beta * rr,
            beta * pc - beta * rc,
            "the chosen and the rejected rewards are exchanged",
        ),
        ((pc - rc) / beta, (pr - rr) / beta, "the log-ratio is divided by beta: it is multiplied"),
    ]


def _dpo_batch(n: int, seed: int, scale: float = 30.0, move: float = 2.0, dtype=torch.float32):
    """Four log-probabilities per pair, each a sum over a response's tokens (tens of nats)."""
    g = torch.Generator().manual_seed(seed)
    rc = -scale * (0.5 + torch.rand(n, generator=g, dtype=torch.float64))
    rr = -scale * (0.5 + torch.rand(n, generator=g, dtype=torch.float64))
    pc = rc + move * torch.randn(n, generator=g, dtype=torch.float64)
    pr = rr + move * torch.randn(n, generator=g, dtype=torch.float64)
    return tuple(t.to(dtype) for t in (pc, pr, rc, rr))


EXAMPLE_DPO = (
    torch.tensor([-12.0, -30.5, -8.25]),
    torch.tensor([-15.0, -28.0, -9.5]),
    torch.tensor([-13.0, -30.0, -8.0]),
    torch.tensor([-14.0, -29.0, -9.0]),
)


def check_dpo(fn: Callable) -> bool:
    """Chapter 13. ``fn(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta) ->
    (loss, chosen_rewards, rejected_rewards)`` on a batch of pairs (1-D tensors of summed
    log-probabilities): DPO's loss, the mean of ``-log sigmoid(beta * (h_c - h_r))`` with
    ``h = log pi - log pi_ref`` (compared with ``llmlab.alignment.dpo_loss``), and the implicit
    rewards ``beta * h`` of each answer (Rafailov et al. 2023)."""
    from ..alignment import dpo_loss

    def case(tensors, beta, label, hidden=True):
        def run():
            given = tuple(t.clone() for t in tensors)
            got = _call(fn, *given, beta)
            for before, after, what in zip(
                tensors, given, ("policy_chosen", "policy_rejected", "ref_chosen", "ref_rejected")
            ):
                changed = _same_input(before, after, what)
                if changed:
                    raise _Wrong(changed)
            pc, pr, rc, rr = (t.double() for t in tensors)
            loss = dpo_loss(pc, pr, rc, rr, beta).item()
            want_c, want_r = beta * (pc - rc), beta * (pr - rr)
            if not isinstance(got, (tuple, list)) or len(got) != 3:
                raise _Wrong(
                    f"the result is a {type(got).__name__}; expected a triple "
                    "(loss, chosen_rewards, rejected_rewards)"
                )
            got_loss = got[0]
            if isinstance(got_loss, torch.Tensor) and got_loss.numel() == len(pc) > 1:
                raise _Wrong(
                    f"the loss has shape {tuple(got_loss.shape)}, one value per pair: it is their "
                    "mean over the batch, one number"
                )
            value = _scalar(got_loss, "the loss")
            if not math.isfinite(value) or not math.isclose(
                value, loss, rel_tol=1e-4, abs_tol=1e-5
            ):
                for alt, _, _, words in _dpo_variants(pc, pr, rc, rr, beta):
                    alt = alt.item()
                    if not math.isclose(alt, loss, rel_tol=1e-4, abs_tol=1e-5) and (
                        math.isclose(alt, value, rel_tol=1e-4, abs_tol=1e-5)
                        or (math.isinf(alt) and alt == value)
                    ):
                        raise _Wrong(words)
                if not math.isfinite(value):
                    raise _Wrong(
                        f"the loss is {value}; expected a finite number: log(sigmoid(z)) "
                        "underflows to log 0 = -inf when the margin is very negative; "
                        "F.logsigmoid(z) (or -F.softplus(-z)) stays finite"
                    )
                raise _Wrong(_number_problem(value, loss, "the loss", rel=1e-4) or "wrong loss")
            for k, want, what in (
                (1, want_c, "the chosen answers' rewards"),
                (2, want_r, "the rejected answers' rewards"),
            ):
                part = got[k]
                if (
                    isinstance(part, torch.Tensor)
                    and part.shape == want.shape
                    and part.is_floating_point()
                ):
                    for alt_c, alt_r, words in _reward_variants(pc, pr, rc, rr, beta):
                        alt = alt_c if k == 1 else alt_r
                        if not torch.allclose(alt, want, atol=1e-5, rtol=1e-4) and torch.allclose(
                            part.double(), alt, atol=1e-4, rtol=1e-4
                        ):
                            raise _Wrong(words)
                problem = _tensor_problem(part, want, what, atol=1e-4, rtol=1e-4, any_float=True)
                if problem:
                    raise _Wrong(problem)

        return _Case(label, run, hidden)

    far = (
        torch.tensor([-150.0, -20.0]),
        torch.tensor([-25.0, -22.0]),
        torch.tensor([-30.0, -20.5]),
        torch.tensor([-26.0, -23.0]),
    )  # the first pair: the policy has moved far the wrong way
    return _run(
        "dpo",
        [
            case(
                EXAMPLE_DPO,
                0.1,
                "three pairs of summed log-probabilities, beta = 0.1 as above",
                hidden=False,
            ),
            case(
                tuple(EXAMPLE_DPO[2:]) * 2,
                0.1,
                "a policy still equal to its reference (the loss is log 2)",
            ),
            case(
                _dpo_batch(8, 0),
                0.1,
                "eight pairs with log-probabilities of tens of nats, beta = 0.1",
            ),
            case(_dpo_batch(5, 1), 0.5, "five pairs, beta = 0.5"),
            case(_dpo_batch(1, 2), 2.0, "a batch of one pair, beta = 2"),
            case(_dpo_batch(6, 3, dtype=torch.float64), 0.05, "six pairs in float64, beta = 0.05"),
            case(
                far,
                1.0,
                "a pair the policy has pushed far the wrong way (beta * margin about -120)",
            ),
        ],
    )


# =================================================================== group-relative advantages
def _advantages(
    rewards: list[float],
    size: int,
    *,
    eps: float = 1e-4,
    ddof: int = 1,
    centre: str = "group",
    scale: str = "group",
    layout: str = "consecutive",
) -> list[float]:
    """GRPO's advantages in float64 (keywords at their defaults), and likely mistakes."""
    n = len(rewards)
    if layout == "consecutive":
        groups = [list(range(g * size, (g + 1) * size)) for g in range(n // size)]
    else:  # strided: the samples of one prompt taken every n // size places
        groups = [list(range(g, n, n // size)) for g in range(n // size)]

    def mean(xs):
        return sum(xs) / len(xs)

    def std(xs):
        m = mean(xs)
        return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - ddof))

    out = [0.0] * n
    for idx in groups:
        values = [rewards[i] for i in idx]
        m = mean(values) if centre == "group" else mean(rewards)
        s = {"group": std(values), "batch": std(rewards), "none": None}[scale]
        for i in idx:
            if s is None:
                out[i] = rewards[i] - m
            else:
                out[i] = (rewards[i] - m) / (s + eps) if s + eps else math.nan
    return out


_ADVANTAGE_VARIANTS = (
    (
        dict(centre="batch"),
        "the batch's mean is subtracted: each reward is compared with the mean of its "
        "own group (the other answers to the same prompt)",
    ),
    (
        dict(ddof=0),
        "the population standard deviation (dividing by n) is used: GRPO, as TRL, uses the "
        "sample one (n - 1), torch's default .std()",
    ),
    (
        dict(scale="none"),
        "the advantages are not divided by the group's standard deviation (+ 1e-4)",
    ),
    (
        dict(scale="batch"),
        "divided by the whole batch's standard deviation: each group is scaled by its own",
    ),
    (
        dict(eps=0.0),
        "the 1e-4 is missing from the denominator: std + 1e-4 (it keeps a group of equal "
        "rewards from dividing 0 by 0)",
    ),
    (
        dict(eps=0.0, ddof=0),
        "the population standard deviation and no 1e-4: divide by the sample standard "
        "deviation (n - 1) plus 1e-4",
    ),
    (
        dict(layout="strided"),
        "the groups are taken strided (every k-th reward): a group is group_size "
        "CONSECUTIVE rewards, the answers to one prompt",
    ),
    (dict(eps=1e-8), "epsilon is 1e-8: GRPO's value here is 1e-4 (TRL's)"),
)


def check_advantages(fn: Callable) -> bool:
    """Chapter 13. ``fn(rewards, group_size) -> list[float]``: GRPO's advantage of every answer
    (Shao et al. 2024), its reward minus the mean of its group (``group_size`` consecutive rewards,
    the answers to one prompt) over the group's sample standard deviation plus 1e-4, as
    ``llmlab.alignment.grpo_advantages`` computes it."""

    def case(rewards, size, label, hidden=True):
        def run():
            given = list(rewards)
            try:
                got = _call(fn, given, size)
            except _Wrong as problem:
                if "ZeroDivision" in str(problem):
                    raise _Wrong(
                        "division by zero: a group whose rewards are all equal has standard "
                        "deviation 0; add 1e-4 to the standard deviation"
                    ) from None
                raise
            changed = _same_input(list(rewards), given, "the rewards")
            if changed:
                raise _Wrong(changed)
            want = _advantages(rewards, size)
            if isinstance(got, torch.Tensor):
                got = got.tolist()
            if not isinstance(got, (list, tuple)):
                raise _Wrong(f"the result is a {type(got).__name__}; expected a list of floats")
            if len(got) != len(want):
                raise _Wrong(
                    f"the result has {len(got)} values for {len(want)} rewards: one advantage per "
                    "reward"
                )
            try:
                values = [float(x) for x in got]
            except (TypeError, ValueError):
                raise _Wrong("the advantages must be numbers (floats)") from None
            if all(math.isclose(v, w, rel_tol=1e-5, abs_tol=1e-5) for v, w in zip(values, want)):
                return
            for kwargs, words in _ADVANTAGE_VARIANTS:
                alt = _advantages(rewards, size, **kwargs)
                same = all(
                    (math.isnan(a) and math.isnan(v))
                    or math.isclose(a, v, rel_tol=1e-6, abs_tol=1e-6)
                    for a, v in zip(alt, values)
                )
                differs = any(
                    not math.isclose(a, w, rel_tol=1e-5, abs_tol=1e-5) for a, w in zip(alt, want)
                )
                if same and differs:
                    raise _Wrong(words)
            if any(math.isnan(v) for v in values):
                raise _Wrong(
                    "the advantages contain NaN: a group whose rewards are all equal has standard "
                    "deviation 0 (add 1e-4 to it)"
                )
            problem = _tensor_problem(
                torch.tensor(values, dtype=torch.float64),
                torch.tensor(want, dtype=torch.float64),
                "the advantages",
                atol=1e-5,
                rtol=1e-5,
            )
            raise _Wrong(problem or "the advantages differ from the expected ones")

        return _Case(label, run, hidden)

    rng = random.Random(13)
    return _run(
        "advantages",
        [
            case(
                [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                4,
                "the two groups of four 0/1 rewards above",
                hidden=False,
            ),
            case(
                [1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0],
                4,
                "a group whose rewards are all equal, next to one that is not",
            ),
            case([0.0] * 6, 3, "every reward the same: no group teaches anything"),
            case([0.0, 1.0, 1.0, 1.0, 0.0, 0.0], 2, "three groups of two"),
            case(
                [round(rng.uniform(-2, 3), 3) for _ in range(24)],
                8,
                "non-binary rewards, three groups of eight",
            ),
            case(
                [0.5, 2.0, -1.0, 4.0, 4.0, 4.0, 0.25, 0.75, 1.0],
                3,
                "non-binary rewards, three groups of three",
            ),
        ],
    )


# =================================================================== best-of-n against a reward
def _best_of(
    samples: dict,
    scores: list[float],
    k: int,
    n: int,
    *,
    pick=max,
    tie_last: bool = False,
    window: str = "first n",
    grouping: str = "consecutive",
    length: str = "tokens",
    average: str = "chosen",
) -> tuple[float, float]:
    """(mean length in tokens, share correct) of the answers best-of-n chooses: per question, the
    highest score among its first n answers, the first of them on ties (as
    ``llmlab.records.alignment.best_of_n``); keywords at their defaults. The others give
    variants."""
    total = len(scores)
    questions = total // k
    correct = [c == "1" for c in samples["correct"]]
    if length == "tokens":
        size = list(samples["tokens"])
    elif length == "characters":
        size = [len(t) for t in samples["texts"]]
    else:
        size = [len(t.split()) for t in samples["texts"]]
    chosen: list[int] = []
    pools = []
    for q in range(questions):
        idx = (
            list(range(q * k, (q + 1) * k))
            if grouping == "consecutive"
            else list(range(q, total, questions))
        )
        pools.append(idx[:n] if window == "first n" else idx)
    if average == "all":
        flat = [i for pool in pools for i in pool]
        return sum(size[i] for i in flat) / len(flat), sum(correct[i] for i in flat) / len(flat)
    if grouping == "pooled":  # the highest scores of the whole table, whatever their question
        flat = sorted((i for pool in pools for i in pool), key=lambda i: (-scores[i], i))
        chosen = flat[:questions]
    else:
        for pool in pools:
            if tie_last:
                key = lambda i: (scores[i], i)
            else:
                key = (lambda i: (scores[i], -i)) if pick is max else (lambda i: (scores[i], i))
            chosen.append(pick(pool, key=key))
    return sum(size[i] for i in chosen) / len(chosen), sum(correct[i] for i in chosen) / len(chosen)


_BEST_VARIANTS = (
    (
        dict(pick=min),
        "the LOWEST score is chosen: best-of-n keeps the answer the reward model scores highest",
    ),
    (
        dict(window="all k"),
        "the best of all the question's answers is chosen, whatever n: best-of-n looks "
        "only at the first n",
    ),
    (
        dict(grouping="strided"),
        "the answers of a question are taken strided (every Q-th): a question's k "
        "answers are consecutive",
    ),
    (
        dict(grouping="pooled"),
        "the highest scores of the whole table are pooled across questions: choose "
        "one answer per question, among its own",
    ),
    (
        dict(tie_last=True),
        "ties go to the LAST of the tied answers: keep the first (lowest index), as max() does",
    ),
    (dict(length="characters"), "the length is counted in characters: use the record's tokens"),
    (dict(length="words"), "the length is counted in words: use the record's tokens"),
    (
        dict(average="all"),
        "the mean is taken over all n candidates: average only the chosen answer of each question",
    ),
)


def _table(questions: int, k: int, seed: int, tie_scores: bool = False) -> tuple[dict, list[float]]:
    """A made-up table in the record's format, and one reward model's scores of its answers."""
    rng = random.Random(seed)
    words = [
        "Sure",
        "the",
        "answer",
        "is",
        "probably",
        "seventeen",
        "I",
        "hope",
        "this",
        "helps",
        "a",
    ]
    texts, correct, short, tokens, scores = [], [], [], [], []
    for _ in range(questions * k):
        n_words = rng.randint(1, 12)
        texts.append(" ".join(rng.choice(words) for _ in range(n_words)))
        tokens.append(n_words + rng.randint(0, 6))
        is_right = rng.random() < 0.5
        correct.append("1" if is_right else "0")
        short.append("1" if n_words <= 2 else "0")
        value = rng.gauss(0.0, 1.0) + 0.1 * tokens[-1]
        scores.append(round(value) / 2 if tie_scores else round(value, 4))
    samples = {
        "texts": texts,
        "correct": "".join(correct),
        "short": "".join(short),
        "tokens": tokens,
    }
    return samples, scores


def _length_loving_table(questions: int, k: int) -> tuple[dict, list[float]]:
    """A table whose answer is known: the reward is the length, and the shortest answer of each
    question is its only correct one; best-of-k picks the longest answer, always wrong."""
    texts, correct, tokens, scores = [], [], [], []
    for q in range(questions):
        for j in range(k):
            length = 3 + 2 * ((j + q) % k)  # each question's lengths: a rotation of 3, 5, 7, ...
            tokens.append(length)
            texts.append(" ".join(["word"] * length))
            correct.append("1" if length == 3 else "0")
            scores.append(float(length))
    return {
        "texts": texts,
        "correct": "".join(correct),
        "short": "".join(correct),
        "tokens": tokens,
    }, scores


def _shuffled(samples: dict, scores: list[float], k: int, seed: int) -> tuple[dict, list[float]]:
    """The table with its questions in another order and each question's answers shuffled too
    (best-of-n for n < k then sees other answers first)."""
    rng = random.Random(seed)
    questions = len(scores) // k
    order = []
    for q in rng.sample(range(questions), questions):
        block = list(range(q * k, (q + 1) * k))
        rng.shuffle(block)
        order += block
    out = {
        "texts": [samples["texts"][i] for i in order],
        "correct": "".join(samples["correct"][i] for i in order),
        "short": "".join(samples["short"][i] for i in order),
        "tokens": [samples["tokens"][i] for i in order],
    }
    return out, [scores[i] for i in order]


def _record_tables() -> tuple[dict, list[tuple[str, list[float]]], int] | None:
    """The shipped record's samples, its reward models' scores (the first seed of each set) and k,
    when it holds sampled answers and at least one reward model."""
    from ..records import alignment as rec

    try:
        record = rec.load()
    except (OSError, ValueError, KeyError):
        return None
    samples = record.get("samples") or {}
    if not samples.get("tokens") or not record.get("reward"):
        return None
    k = record["plan"]["best_of_n"]["n"]
    chosen: dict[str, list[float]] = {}
    for row in record["reward"]:
        chosen.setdefault(row["set"], row["sample_scores"])
    return samples, sorted(chosen.items()), k


def _curve(samples: dict, scores: list[float], k: int) -> dict[int, tuple[float, float]]:
    """{n: (mean tokens, share correct)} for n = 1, 2, 4, ... up to k."""
    ns = [1 << i for i in range(k.bit_length()) if 1 << i <= k]
    return {n: _best_of(samples, scores, k, n) for n in ns}


def _hacked(
    curve: dict, *, ends: str = "n", test: str = "and", order: str = "tokens first"
) -> bool:
    """True when, from n = 1 to the largest n, the mean length rose and the share correct fell."""
    if ends == "n":
        keys = sorted(curve)
        first, last = curve[keys[0]], curve[keys[-1]]
    elif ends == "inserted":
        items = list(curve.values())
        first, last = items[0], items[-1]
    else:  # the last two n
        keys = sorted(curve)
        first, last = curve[keys[-2]], curve[keys[-1]]
    if order != "tokens first":
        first, last = first[::-1], last[::-1]
    longer, worse = last[0] > first[0], last[1] < first[1]
    return {"and": longer and worse, "or": longer or worse, "length": longer, "correct": worse}[
        test
    ]


_HACK_VARIANTS = (
    (
        dict(test="length"),
        "the verdict looks only at the length: reward hacking is when the length rises "
        "WHILE the share correct falls",
    ),
    (dict(test="correct"), "the verdict looks only at the share correct: the length must rise too"),
    (
        dict(test="or"),
        "either change is taken as hacking: both must happen (length up AND share correct down)",
    ),
    (
        dict(ends="last two"),
        "the last two n are compared: compare n = 1 (no selection) with the largest n",
    ),
    (
        dict(ends="inserted"),
        "the first and last entries of the dict are compared: take n = 1 and the largest "
        "n by their value (min and max of the keys), whatever the dict's order",
    ),
    (
        dict(order="swapped"),
        "each pair is read as (share correct, mean tokens): it is (mean tokens, share correct)",
    ),
)

_CURVES = (  # made-up curves {n: (mean tokens, share correct)} and what they show
    (
        {1: (20.0, 0.5), 2: (25.0, 0.45), 4: (30.0, 0.4), 8: (35.0, 0.35)},
        "longer and less often right",
    ),
    (
        {1: (20.0, 0.5), 2: (22.0, 0.55), 4: (24.0, 0.6), 8: (26.0, 0.62)},
        "longer and more often right",
    ),
    (
        {1: (20.0, 0.5), 2: (18.0, 0.45), 4: (16.0, 0.42), 8: (15.0, 0.4)},
        "shorter and less often right",
    ),
    (
        {1: (20.0, 0.5), 2: (18.0, 0.6), 4: (15.0, 0.7), 8: (12.0, 0.8)},
        "shorter and more often right",
    ),
    (
        {1: (20.0, 0.5), 2: (40.0, 0.3), 4: (35.0, 0.35), 8: (30.0, 0.4)},
        "longer and less often right at n = 8, though better than at n = 4",
    ),
    (
        {8: (35.0, 0.35), 1: (20.0, 0.5), 4: (30.0, 0.4), 2: (25.0, 0.45)},
        "the first curve, its keys in another order",
    ),
    ({1: (3.0, 0.5), 2: (4.0, 0.3), 4: (2.0, 0.1)}, "n up to 4, length below one share's scale"),
)


def check_best_of_n(best_of: Callable, hacked: Callable) -> bool:
    """Chapter 13. ``best_of(samples, scores, k, n) -> (mean_tokens, share_correct)``: per
    question (``k`` consecutive answers in ``samples``, the record's format), the answer with the
    highest score among
    its first ``n`` (the first on ties, as ``llmlab.records.alignment.best_of_n``), then the mean of
    their lengths in tokens and the share of them that are correct (a fraction). ``hacked(curve) ->
    bool``: given ``{n: (mean_tokens, share_correct)}``, whether from n = 1 to the largest n the
    length rose while the share correct fell. The references run on the shipped record
    (``llmlab.records.alignment.load()``, when it holds samples and a reward model), on that record
    reordered and on made-up tables, at check time."""

    def case(samples, scores, k, n, label, hidden=True):
        def run():
            given_s, given_c = copy.deepcopy(samples), list(scores)
            got = _call(best_of, given_s, given_c, k, n)
            if given_s != samples or given_c != scores:
                raise _Wrong(
                    "your function changed the table or the scores passed in: work on a copy"
                )
            tokens, share = _best_of(samples, scores, k, n)
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                raise _Wrong(
                    f"the result is a {type(got).__name__}; expected a pair "
                    "(mean_tokens, share_correct)"
                )
            g_tokens, g_share = (
                _scalar(x, what) for x, what in zip(got, ("the mean length", "the share"))
            )
            if math.isclose(g_tokens, tokens, rel_tol=1e-6, abs_tol=1e-9) and math.isclose(
                g_share, share, rel_tol=1e-6, abs_tol=1e-9
            ):
                return
            if math.isclose(g_tokens, share, abs_tol=1e-9) and math.isclose(
                g_share, tokens, abs_tol=1e-9
            ):
                raise _Wrong("the pair is in the wrong order: return (mean_tokens, share_correct)")
            for kwargs, words in _BEST_VARIANTS:
                alt = _best_of(samples, scores, k, n, **kwargs)
                if (
                    alt != (tokens, share)
                    and math.isclose(alt[0], g_tokens, rel_tol=1e-6, abs_tol=1e-9)
                    and math.isclose(alt[1], g_share, rel_tol=1e-6, abs_tol=1e-9)
                ):
                    raise _Wrong(words)
            problem = _number_problem(
                g_tokens, tokens, "the mean length in tokens"
            ) or _number_problem(g_share, share, "the share correct")
            raise _Wrong(problem or "the result differs from the expected one")

        return _Case(label, run, hidden)

    answers: dict[int, Any] = {}

    def verdict(index, curve, label, hidden=True):
        def run():
            want = _hacked(curve)
            got = _call(hacked, copy.deepcopy(curve))
            if isinstance(got, torch.Tensor) and got.numel() == 1:
                got = bool(got.item())
            if not isinstance(got, bool):
                raise _Wrong(f"the verdict is a {type(got).__name__}; expected True or False")
            if got == want:
                return
            # name the mistake that gives the function's verdict on every curve
            for j, (other, _) in enumerate(curves):
                if j not in answers:
                    try:
                        answers[j] = _call(hacked, copy.deepcopy(other))
                    except _Wrong:
                        answers[j] = None
            for kwargs, words in _HACK_VARIANTS:
                if all(
                    _hacked(other, **kwargs) == answers[j] for j, (other, _) in enumerate(curves)
                ):
                    raise _Wrong(words)
            raise _Wrong(f"the verdict is {got}; the curve is {label}")

        return _Case(f"hacked: {label}", run, hidden)

    cases: list[_Case] = []
    curves = list(_CURVES)
    shipped = _record_tables()
    if shipped is not None:
        samples, sets, k = shipped
        for i, (name, scores) in enumerate(sets):
            cases.append(
                case(
                    samples,
                    scores,
                    k,
                    k,
                    f"the record's answers chosen by the {name!r} reward model, n = k",
                    hidden=i > 0,
                )
            )
            cases.append(case(samples, scores, k, 2, f"the {name!r} reward model, n = 2"))
            moved, moved_scores = _shuffled(samples, scores, k, seed=i)
            cases.append(
                case(
                    moved,
                    moved_scores,
                    k,
                    max(1, k // 2),
                    f"the record reordered (questions and answers shuffled), the {name!r} "
                    "reward model, n = k / 2",
                )
            )
            curves.append(
                (
                    _curve(samples, scores, k),
                    f"best-of-n against the {name!r} reward model of the record",
                )
            )
    table, table_scores = _table(30, 4, seed=0)
    cases += [
        case(
            table,
            table_scores,
            4,
            4,
            "a made-up table, 4 answers per question, n = 4",
            hidden=shipped is not None,
        ),
        case(table, table_scores, 4, 3, "the made-up table, n = 3"),
        case(table, table_scores, 4, 1, "the made-up table, n = 1 (no choice: the first answer)"),
        case(
            *_table(25, 6, seed=1, tie_scores=True),
            6,
            5,
            "scores with ties, 6 answers per question, n = 5",
        ),
        case(
            *_length_loving_table(10, 4),
            4,
            4,
            "a reward that is the length, the shortest answer the only correct one",
        ),
    ]
    cases += [verdict(i, c, label, hidden=i > 0) for i, (c, label) in enumerate(curves)]
    return _run("best_of_n", cases)


# =================================================================== Bradley-Terry
_BT_VARIANTS = (
    (
        lambda c, r: (torch.sigmoid(r - c), -F.logsigmoid(r - c)),
        "the difference is taken the wrong way round: P(chosen preferred) = sigmoid(r_c - r_r)",
    ),
    (
        lambda c, r: (torch.sigmoid(c + r), -F.logsigmoid(c + r)),
        "the rewards are added: only their DIFFERENCE counts, sigmoid(r_c - r_r)",
    ),
    (
        lambda c, r: (torch.sigmoid(c - r), F.logsigmoid(c - r)),
        "the loss lacks its minus: -log P, positive, small when P is near 1",
    ),
    (
        lambda c, r: (torch.sigmoid(c - r), 1 - torch.sigmoid(c - r)),
        "1 - P is not the loss: the loss is -log P",
    ),
    (
        lambda c, r: (torch.sigmoid(c - r), -F.logsigmoid(r - c)),
        "the loss is -log(1 - P) = log(1 + exp(r_c - r_r)): it is -log P = log(1 + exp(r_r - r_c))",
    ),
    (
        lambda c, r: (c / (c + r), -torch.log(c / (c + r))),
        "the rewards are used as strengths r_c / (r_c + "
        "r_r): Bradley-Terry's strengths are exp(r), so "
        "P = exp(r_c) / (exp(r_c) + exp(r_r))",
    ),
    (
        lambda c, r: (torch.sigmoid(c - r), -torch.log10(torch.sigmoid(c - r))),
        "the log is in base 10: the loss uses the natural log",
    ),
)


def check_bradley_terry(fn: Callable) -> bool:
    """Chapter 13. ``fn(r_chosen, r_rejected) -> (p, loss)`` for two rewards (floats): the
    Bradley-Terry probability that the chosen answer is preferred, ``sigmoid(r_c - r_r)``, and
    the reward model's loss on the pair, ``-log p`` (compared with
    ``llmlab.alignment.bradley_terry_loss``)."""
    from ..alignment import bradley_terry_loss

    def case(rc, rr, label, hidden=True):
        def run():
            got = _call(fn, rc, rr)
            c, r = torch.tensor([rc], dtype=torch.float64), torch.tensor([rr], dtype=torch.float64)
            p = torch.sigmoid(c - r).item()
            loss = bradley_terry_loss(c, r).item()
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                raise _Wrong(f"the result is a {type(got).__name__}; expected a pair (p, loss)")
            g_p, g_loss = (_scalar(x, what) for x, what in zip(got, ("p", "the loss")))
            if math.isclose(g_p, p, rel_tol=1e-6, abs_tol=1e-9) and math.isclose(
                g_loss, loss, rel_tol=1e-6, abs_tol=1e-9
            ):
                return
            for alt, words in _BT_VARIANTS:
                a_p, a_loss = (x.item() if isinstance(x, torch.Tensor) else x for x in alt(c, r))
                if (a_p, a_loss) == (p, loss):
                    continue
                if math.isclose(a_p, g_p, rel_tol=1e-6, abs_tol=1e-9) and math.isclose(
                    a_loss, g_loss, rel_tol=1e-6, abs_tol=1e-9
                ):
                    raise _Wrong(words)
            problem = _number_problem(g_p, p, "p", rel=1e-6) or _number_problem(
                g_loss, loss, "the loss", rel=1e-6
            )
            raise _Wrong(problem or "the result differs from the expected one")

        return _Case(label, run, hidden)

    return _run(
        "bradley_terry",
        [
            case(1.5, 0.25, "the rewards above, r_c = 1.5 and r_r = 0.25", hidden=False),
            case(0.25, 1.5, "the rejected answer scored higher"),
            case(2.0, 2.0, "two equal rewards"),
            case(4.0, 3.0, "positive rewards a point apart"),
            case(101.5, 100.25, "the rewards above, both shifted by 100 (only the difference counts)"),
            case(-3.0, -0.5, "negative rewards"),
            case(7.0, -8.0, "the chosen answer fifteen points ahead"),
            case(-6.0, 9.0, "the rejected answer fifteen points ahead"),
        ],
    )


# =================================================================== quiz
_ALIGNMENT_KEY = {
    "InstructGPT's step right before reinforcement learning with PPO"
    " (reward model/supervised fine-tuning/pre-training)": (
        _salted("reward model"),
        "PPO optimises against something trained on rankings of the supervised "
        "model's outputs: what (Ouyang et al. 2022)?",
    ),
    "what InstructGPT adds to the reward so that the policy stays near the"
    " supervised model (KL penalty/value network/length penalty)": (
        _salted("kl penalty"),
        "Which term measures how far the policy's distribution has moved from the "
        "supervised model's?",
    ),
    "does DPO train a separate reward model (yes/no)": (
        _salted("no"),
        "Where does DPO's implicit reward, beta * log(pi / pi_ref), come from (Rafailov et "
        "al. 2023)?",
    ),
    "does DPO sample answers from the policy during training (yes/no)": (
        _salted("no"),
        "What does DPO's loss need besides the fixed pairs and the reference's log-probabilities?",
    ),
    "what GRPO drops from PPO (value network/reward/KL penalty)": (
        _salted("value network"),
        "GRPO's loss still has a reward and a KL term; which model of PPO, as large "
        "as the policy, does it save (Shao et al. 2024)?",
    ),
    "GRPO's baseline for a sampled answer (group mean/value estimate/zero)": (
        _salted("group mean"),
        "Each answer is compared with the other answers to the same prompt: through "
        "which of their statistics?",
    ),
    "the most common form of reward hacking in RLHF that Singhal et al. 2023"
    " measured (length/flattery/refusal)": (
        _salted("length"),
        "Which property of the answers explained much of the reward's improvement in "
        "their measurements?",
    ),
    "where constitutional AI's feedback model gets its preferences"
    " (written principles/human rankings/length)": (
        _salted("written principles"),
        "What does the feedback model read when it compares two answers (Bai et al. 2022)?",
    ),
}


def check_alignment_quiz(answers: dict) -> bool:
    """Chapter 13 quiz: InstructGPT (Ouyang et al. 2022), DPO (Rafailov et al. 2023), GRPO
    (Shao et al. 2024), length bias (Singhal et al. 2023) and constitutional AI (Bai et al.
    2022)."""
    return _quiz("alignment_quiz", answers, _ALIGNMENT_KEY)
