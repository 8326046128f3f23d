"""llmlab.train_memory: a real step's measured peak next to the calculator."""

import pytest
import torch

from llmlab import train_memory as tm
from llmlab.records import training_peaks


@pytest.fixture(scope="module")
def tiny(make_gpt2):
    return make_gpt2(0, vocab_size=64, n_positions=32, initializer_range=0.02, resid_pdrop=0.0, embd_pdrop=0.0,
                     attn_pdrop=0.0).train()


def test_prediction_is_the_formula_by_hand(tiny):
    n = sum(p.numel() for p in tiny.parameters())
    p = tm.predict(tiny, batch_size=4, seq_len=16)
    s, b, h, L, v = 16, 4, 32, 2, 64
    assert (p["parameters"], p["gradients"], p["optimizer_state"]) == (4 * n, 4 * n, 8 * n)
    assert p["activations (layers)"] == L * 2 * 32 * s * b * h  # 32·s·b·h two-byte values, at 4 bytes
    assert p["logits and loss"] == 4 * s * b * v
    assert p["total"] == sum(v for k, v in p.items() if k != "total")


def test_steady_state_peak_holds_parameters_and_adam_states_exactly(tiny):
    batch = torch.randint(0, 64, (4, 17), generator=torch.Generator().manual_seed(0))
    row = tm.compare(tiny, batch)
    n_bytes = 4 * sum(p.numel() for p in tiny.parameters())
    at = row["measured_at_peak"]
    assert at["parameters"] == n_bytes
    # AdamW's two states per parameter, plus its 4-byte step counter per tensor
    n_tensors = len(list(tiny.parameters()))
    assert 2 * n_bytes <= at["optimizer_state"] <= 2 * n_bytes + 8 * n_tensors
    assert row["peak_total"] >= n_bytes * 3  # parameters and both states at least
    assert row["batch_size"] == 4 and row["seq_len"] == 16


def test_the_model_passed_in_is_not_trained(tiny):
    before = [p.detach().clone() for p in tiny.parameters()]
    tm.step_peak(tiny, torch.randint(0, 64, (2, 9)), steps=1)
    assert all(torch.equal(a, b) for a, b in zip(before, tiny.parameters()))


@pytest.mark.parametrize("call,error", [
    (lambda m: tm.step_peak("gpt2", torch.zeros(2, 3, dtype=torch.long)), TypeError),
    (lambda m: tm.step_peak(m, torch.zeros(6, dtype=torch.long)), ValueError),
    (lambda m: tm.step_peak(m, torch.zeros(2, 3, dtype=torch.long), steps=0), ValueError),
    (lambda m: tm.model_shape(torch.nn.Linear(2, 2)), TypeError),
])
def test_bad_input_is_refused(tiny, call, error):
    with pytest.raises(error):
        call(tiny)


def test_the_record_holds_the_real_models_states_exactly():
    rec = training_peaks.load()
    real = next(r for r in rec["runs"] if r["model"] == "smollm2-135m-instruct")
    n_bytes = 4 * 134_515_008
    assert real["measured_at_peak"]["parameters"] == real["predicted"]["parameters"] == n_bytes
    assert real["measured_at_peak"]["gradients"] == n_bytes  # the peak falls in the optimizer step
    assert real["peak_total"] > real["predicted"]["parameters"] * 4
