"""The (input, target) pairs of the three pre-training objectives (llmlab.objectives)."""

import pytest
import torch

from llmlab import objectives
from llmlab.objectives import IGNORE_INDEX

MASK, VOCAB = 2, 50
SENTINELS, EOS, PAD = [40, 41, 42, 43, 44, 45, 46, 47], 0, 1


def test_causal_pair_targets_are_the_inputs_shifted_by_one():
    x, y = objectives.causal_lm_pair([10, 11, 12, 13])
    assert x.tolist() == [10, 11, 12] and y.tolist() == [11, 12, 13]
    xb, yb = objectives.causal_lm_pair(torch.arange(12).view(2, 6))
    assert torch.equal(xb[:, 1:], yb[:, :-1])


def test_causal_pair_needs_two_tokens():
    with pytest.raises(ValueError, match="at least 2"):
        objectives.causal_lm_pair([5])


def test_masked_pair_at_given_positions_masks_them_and_labels_only_them():
    ids = torch.tensor([10, 11, 12, 13, 14])
    x, y = objectives.masked_lm_pair(ids, MASK, VOCAB, positions=[1, 3], random_prob=0.0, keep_prob=0.0)
    assert x.tolist() == [10, MASK, 12, MASK, 14]
    assert y.tolist() == [IGNORE_INDEX, 11, IGNORE_INDEX, 13, IGNORE_INDEX]


def test_masked_pair_follows_berts_15_percent_and_80_10_10_split():
    ids = torch.randint(3, VOCAB, (200, 100), generator=torch.Generator().manual_seed(0))
    x, y = objectives.masked_lm_pair(ids, MASK, VOCAB, generator=torch.Generator().manual_seed(1))
    chosen = y != IGNORE_INDEX
    assert torch.equal(y[chosen], ids[chosen])  # labels are the original tokens
    assert torch.equal(x[~chosen], ids[~chosen])  # unchosen tokens are untouched
    assert abs(chosen.float().mean().item() - 0.15) < 0.01
    masked = (x[chosen] == MASK).float().mean().item()
    kept = (x[chosen] == ids[chosen]).float().mean().item()
    assert abs(masked - 0.8) < 0.02 and abs(kept - 0.1 - 0.1 / VOCAB) < 0.02  # random tokens can hit the original


def test_masked_pair_never_chooses_special_tokens():
    ids = torch.tensor([[EOS] * 50 + [7] * 50] * 40)
    _, y = objectives.masked_lm_pair(ids, MASK, VOCAB, special_ids=[EOS], generator=torch.Generator().manual_seed(2))
    assert (y[:, :50] == IGNORE_INDEX).all() and (y[:, 50:] != IGNORE_INDEX).any()


def test_masked_pair_rejects_bad_settings():
    with pytest.raises(ValueError, match="mask_prob"):
        objectives.masked_lm_pair([1, 2, 3], MASK, VOCAB, mask_prob=1.5)
    with pytest.raises(ValueError, match="mask_id"):
        objectives.masked_lm_pair([1, 2, 3], 99, VOCAB)
    with pytest.raises(ValueError, match="positions"):
        objectives.masked_lm_pair([1, 2, 3], MASK, VOCAB, positions=[3])


def test_span_corruption_replaces_each_span_by_a_sentinel_and_the_target_restores_it():
    ids = [10, 11, 12, 13, 14, 15, 16]  # "Thank you for inviting me to your"
    x, y = objectives.span_corruption_pair(ids, SENTINELS, EOS, spans=[(2, 4), (5, 6)])
    assert x.tolist() == [10, 11, 40, 14, 41, 16]
    assert y.tolist() == [40, 12, 13, 41, 15, EOS]


def test_random_span_corruption_round_trips_to_the_original_sequence():
    g = torch.Generator().manual_seed(3)
    for length in [2, 5, 20, 128, 300]:
        ids = torch.randint(3, 40, (length,), generator=g)
        x, y = objectives.span_corruption_pair(ids, list(range(100, 164)), EOS, generator=g)
        restored, spans = [], {}
        current = None
        for token in y.tolist()[:-1]:
            if token >= 100:
                current = token
                spans[current] = []
            else:
                spans[current].append(token)
        for token in x.tolist():
            restored += spans[token] if token >= 100 else [token]
        assert restored == ids.tolist() and y[-1].item() == EOS


def test_random_spans_cover_about_the_noise_density_in_spans_of_about_the_mean_length():
    g = torch.Generator().manual_seed(4)
    spans = [objectives.random_spans(128, 0.15, 3.0, g) for _ in range(200)]
    noise = [sum(b - a for a, b in s) for s in spans]
    assert all(n == round(128 * 0.15) for n in noise)
    assert all(len(s) == round(19 / 3.0) for s in spans)
    assert all(0 < s[0][0] for s in spans)  # kept tokens come first


def test_span_corruption_rejects_overlapping_spans_and_too_few_sentinels():
    with pytest.raises(ValueError, match="non-overlapping"):
        objectives.span_corruption_pair([1, 2, 3, 4, 5], SENTINELS, EOS, spans=[(0, 3), (2, 4)])
    with pytest.raises(ValueError, match="sentinel"):
        objectives.span_corruption_pair(list(range(20)), SENTINELS[:1], EOS, spans=[(1, 2), (4, 5)])


def test_batches_have_matching_shapes_and_ignore_padding():
    stream = torch.randint(3, 40, (5000,), generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(6)
    mlm = objectives.masked_lm_batch(stream, 4, 32, g, MASK, VOCAB)
    assert mlm["input_ids"].shape == mlm["labels"].shape == (4, 32)
    span = objectives.span_corruption_batch(stream, 4, 64, g, SENTINELS, EOS, PAD)
    assert span["input_ids"].shape == span["attention_mask"].shape
    assert ((span["input_ids"] == PAD) == (span["attention_mask"] == 0)).all()
    assert (span["labels"][:, 0] == SENTINELS[0]).all()


def test_train_objective_lowers_the_masked_lm_loss_of_a_tiny_bert():
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                       intermediate_size=64, max_position_embeddings=32))
    stream = torch.arange(3, 13).repeat(400)  # each token follows from its neighbours
    make = lambda s, g: objectives.masked_lm_batch(s, 16, 32, g, MASK, VOCAB)  # noqa: E731
    before = objectives.evaluate_objective(model, make, stream, n_batches=2)
    cfg = objectives.TrainConfig(steps=150, batch_size=16, seq_len=32, lr=3e-3, warmup_steps=10, eval_every=50,
                                 eval_batches=2)
    log = objectives.train_objective(model, make, stream, stream, cfg, device="cpu", progress=False)
    assert before > 3.5 and log.final_val_loss < before - 1.0  # from about ln(50) nats to well below it
    assert not model.training
