"""Per-document losses and the unpaired comparison of two corpora (chapter 3), checked
against transformers' own loss and scipy's Welch t-test."""

import pytest
import torch
from scipy import stats as scipy_stats

from llmlab import stats, train
from tests.tiny_models import tiny_gpt2


def test_each_document_loss_equals_the_loss_transformers_computes():
    model = tiny_gpt2()
    docs = [[5, 6, 7, 8, 9], [10, 3, 3, 3, 3, 3, 40]]
    ours = train.document_losses(model, docs, start_token_id=0)
    for doc, loss in zip(docs, ours):
        ids = torch.tensor([[0] + doc])
        assert loss == pytest.approx(model(input_ids=ids, labels=ids).loss.item(), abs=1e-5)


def test_documents_longer_than_the_context_window_are_refused():
    with pytest.raises(ValueError, match="context window"):
        train.document_losses(tiny_gpt2(), [list(range(1, 70))])


def test_unpaired_comparison_matches_scipy_welch():
    a, b = [5.1, 5.6, 5.3, 5.9, 5.4], [4.2, 4.8, 4.4, 4.9, 4.6, 4.1]
    res = stats.compare_unpaired(a, b, names=("English", "stories"))
    ref = scipy_stats.ttest_ind(a, b, equal_var=False)
    assert res.p == pytest.approx(ref.pvalue)
    assert res.low < res.diff < res.high and res.low > 0
    assert res.verdict.startswith("English above stories (Welch t-test")


def test_the_same_scores_give_no_clear_difference():
    res = stats.compare_unpaired([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert res.diff == 0 and res.verdict.startswith("no clear difference")
