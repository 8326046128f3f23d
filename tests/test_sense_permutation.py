"""The exact label-permutation test of two groups of vectors (chapter 2, the senses of "bank")."""

import pytest
import torch

from llmlab import attention


def test_hand_computed_two_against_two():
    # a = two copies of e1, b = two copies of e2: within 1, across 0, gap 1.
    # Of the 6 splits of 4 vectors into 2 + 2, the two true ones (a|b and b|a) have gap 1;
    # each mixed split has within 0 and across 0.5, gap -0.5. So p = 2 / 6.
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    test = attention.group_permutation_test(a, b, names=("x", "y"))
    assert test.n_splits == 6
    assert test.gap == pytest.approx(1.0)
    assert test.p == pytest.approx(2 / 6)
    assert "no clear separation" in test.verdict and "6 splits" in test.verdict


def test_five_against_five_floor_and_identical_vectors():
    g = torch.Generator().manual_seed(0)
    a = torch.tensor([5.0, 0, 0]) + 0.1 * torch.randn(5, 3, generator=g)
    b = torch.tensor([0, 5.0, 0]) + 0.1 * torch.randn(5, 3, generator=g)
    test = attention.group_permutation_test(a, b, names=("money", "river"))
    assert test.n_splits == 252 and test.p == pytest.approx(2 / 252)
    assert test.verdict.startswith("money and river vectors closer within")
    same = attention.group_permutation_test(torch.ones(3, 4), torch.ones(3, 4))
    assert same.gap == pytest.approx(0.0, abs=1e-6) and same.p == 1.0
