"""A small fine-tuned classifier, the baseline a prompted model has to beat (chapter 1).

:func:`generated_reviews` writes short labelled reviews whose train and test halves
share no opinion phrase; :func:`fit_logistic_regression` fits a logistic regression on
features of them (for example sentence embeddings from :mod:`llmlab.retrieval`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import _checks

_REVIEW_SUBJECTS = ["The hotel", "This blender", "The pizza place on the corner", "These headphones",
                    "The museum", "My new phone", "The train ride", "This jacket", "The dentist",
                    "The campsite", "The coffee shop", "This laptop", "The bakery", "The rental car",
                    "This vacuum cleaner", "The theme park", "The hair salon", "This backpack",
                    "The sushi bar", "The yoga class"]
# Opinion phrases, split in two halves that share no phrase: training reviews use one half, test
# reviews the other, so a classifier is tested on wording it never saw.
_REVIEW_OPINIONS = {
    ("train", "positive"): ["was excellent", "exceeded my expectations", "was worth every penny",
                            "made my day", "was a delight", "works perfectly", "was fantastic",
                            "is the best I have tried", "left me very happy", "was a pleasant surprise",
                            "impressed the whole family", "did exactly what I hoped"],
    ("train", "negative"): ["was terrible", "broke after a week", "was a waste of money",
                            "ruined our evening", "was a disappointment", "stopped working",
                            "was awful", "is the worst I have tried", "left me very annoyed",
                            "was a nasty surprise", "upset the whole family", "did nothing I hoped"],
    ("test", "positive"): ["was wonderful", "is superb", "was a real treat", "blew me away",
                           "was brilliant", "is great value", "was lovely from start to finish",
                           "never disappoints", "was outstanding", "is a joy to use",
                           "deserves every star", "was just perfect"],
    ("test", "negative"): ["was dreadful", "is useless", "was a rip-off", "let me down",
                           "was horrible", "is poor value", "was unpleasant from start to finish",
                           "always disappoints", "was shoddy", "is a pain to use",
                           "deserves no stars at all", "was a mess"],
}
_REVIEW_DETAILS = ["We went on a Saturday.", "I bought it last month.", "My sister recommended it.",
                   "It was my first visit.", "I used it every day for a while.", "We were a group of four.",
                   "I paid full price.", "A friend came along.", "It came in a blue box.", ""]
SPLITS = ("train", "test")


def generated_reviews(n: int, split: str = "train", seed: int = 0) -> list[tuple[str, str]]:
    """``n`` short reviews ``(text, label)`` of products and places, half positive and half negative,
    in a seeded random order.

    ``split`` picks the half of the opinion phrases used: no phrase of a ``"train"`` review
    occurs in a ``"test"`` review, so the two sets share no text.
    """
    import random

    _checks.positive_int("n", n)
    _checks.choice("split", split, SPLITS)
    rng = random.Random(f"{split}-{seed}")
    out = []
    for i in range(n):
        label = ("positive", "negative")[i % 2]
        detail = rng.choice(_REVIEW_DETAILS)
        text = f"{rng.choice(_REVIEW_SUBJECTS)} {rng.choice(_REVIEW_OPINIONS[split, label])}. {detail}"
        out.append((text.strip(), label))
    rng.shuffle(out)
    return out


def fit_logistic_regression(x: torch.Tensor, y: torch.Tensor, l2: float = 1e-3,
                            steps: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights ``(D,)`` and bias ``()`` of a logistic regression on features ``x`` ``(N, D)`` and
    labels ``y`` ``(N,)`` in {0, 1}: minimises the mean log-loss (nats) plus ``l2 / 2 * |w|^2``
    with L-BFGS from zeros, so it is deterministic. Equals scikit-learn's ``LogisticRegression``
    with ``C = 1 / (N * l2)``.
    """
    _checks.tensor("x", x, dims=2)
    _checks.tensor("y", y, dims=1)
    if y.numel() != x.size(0):
        raise ValueError(f"y must have one label per row of x ({x.size(0)}), got {y.numel()}")
    if not bool(((y == 0) | (y == 1)).all()):
        raise ValueError("y must hold only the labels 0 and 1")
    _checks.positive("l2", l2)
    _checks.positive_int("steps", steps)
    x, y = x.double(), y.double()
    w = torch.zeros(x.size(1), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, bias], lr=1, max_iter=steps, tolerance_grad=1e-10,
                            tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(x @ w + bias, y) + l2 / 2 * (w @ w)
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach(), bias.detach()
