"""The training loop: schedule, batches, and that it actually learns."""

import pytest
import torch

from llmlab.train import TrainConfig, evaluate, learning_rate, random_batch, train_causal_lm


def test_learning_rate_warms_up_linearly_then_decays_to_the_floor():
    cfg = TrainConfig(steps=100, warmup_steps=10, lr=1.0, min_lr_ratio=0.1)
    assert learning_rate(0, cfg) == pytest.approx(0.1)
    assert learning_rate(9, cfg) == pytest.approx(1.0)
    assert learning_rate(55, cfg) == pytest.approx(0.55, abs=0.01)  # half-way down the cosine
    assert learning_rate(100, cfg) == pytest.approx(0.1)
    values = [learning_rate(s, cfg) for s in range(10, 100)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_random_batch_targets_are_inputs_shifted_by_one():
    ids = torch.arange(1000)
    x, y = random_batch(ids, batch_size=4, seq_len=16, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 16)
    assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y[:, 0], x[:, 0] + 1)


def test_training_lowers_the_loss_of_a_tiny_model_on_a_repeating_pattern(make_gpt2):
    model = make_gpt2(0, vocab_size=16, n_positions=32, n_layer=1, initializer_range=0.02)
    ids = torch.tensor([1, 2, 3, 4, 5, 6, 7] * 200)
    cfg = TrainConfig(steps=60, batch_size=8, seq_len=16, lr=1e-2, warmup_steps=5, eval_every=20, eval_batches=2)
    before = evaluate(model, ids, cfg, torch.device("cpu"))
    log = train_causal_lm(model, ids, ids, cfg, device="cpu", progress=False)
    assert [r["step"] for r in log.rows] == [20, 40, 60]
    assert before > 2.0 and log.final_val_loss < 0.2  # from about ln(16) = 2.8 to near zero
    assert log.tokens_seen == 60 * 8 * 16


def test_bf16_autocast_step_runs_and_learns_on_cpu(make_gpt2):
    model = make_gpt2(0, vocab_size=16, n_positions=32, n_layer=1, initializer_range=0.02)
    ids = torch.tensor([1, 2, 3, 4] * 200)
    cfg = TrainConfig(steps=40, batch_size=8, seq_len=16, lr=1e-2, warmup_steps=5, eval_every=40,
                      eval_batches=2, bf16=True)
    log = train_causal_lm(model, ids, ids, cfg, device="cpu", progress=False)
    assert log.final_val_loss < 1.0


@pytest.mark.parametrize("field,value", [("steps", 0), ("batch_size", -1), ("seq_len", 1.5), ("lr", 0.0)])
def test_bad_train_config_is_refused(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_too_short_stream_is_refused():
    with pytest.raises(ValueError, match="need at least"):
        random_batch(torch.arange(5), 2, 8, torch.Generator())


def test_a_llama_is_refused_a_training_window_longer_than_its_max_position_embeddings(make_llama):
    # Llama names its window max_position_embeddings (GPT-2: n_positions); rotary positions would
    # run past it silently, so train must read it too
    model = make_llama(max_position_embeddings=8)
    ids = torch.arange(200) % 64
    cfg = TrainConfig(steps=1, batch_size=2, seq_len=16, eval_every=1, eval_batches=1, warmup_steps=0)
    with pytest.raises(ValueError, match=r"seq_len \(16\) is longer than the model's context window "
                                         r"\(config.max_position_embeddings = 8\)"):
        train_causal_lm(model, ids, ids, cfg, device="cpu", progress=False)

