"""peak.measure: the peak bytes torch allocated during one call, on CPU from the profiler."""

from __future__ import annotations

import pytest
import torch

from llmlab import peak

MB = 1_000_000
SLACK = 4096  # bytes: small allocations torch makes around the tensor (a scalar, a size buffer)


def test_one_known_tensor_gives_its_size_as_the_peak():
    n = 1_000_000  # float32 elements, 4 MB

    def allocate():
        return torch.empty(n, dtype=torch.float32)

    result = peak.measure(allocate, device="cpu")
    assert n * 4 <= result.peak_bytes <= n * 4 + SLACK
    assert result.result.numel() == n  # fn's return value comes back


def test_a_freed_temporary_still_counts_in_the_peak():
    def temporary_then_small():
        big = torch.ones(3 * MB // 4)  # 3 MB, freed before returning
        total = big.sum()
        del big
        small = torch.zeros(MB // 4)  # 1 MB, still alive at the end
        return total + small.sum()

    result = peak.measure(temporary_then_small, device="cpu")
    assert 3 * MB <= result.peak_bytes <= 3 * MB + SLACK


def test_two_live_tensors_add_up():
    def both():
        a = torch.empty(MB // 4)
        b = torch.empty(MB // 2, dtype=torch.float64)
        return a, b

    result = peak.measure(both, device="cpu")
    assert 5 * MB <= result.peak_bytes <= 5 * MB + SLACK


def test_tensors_from_before_the_call_are_baseline_not_peak():
    existing = torch.zeros(MB // 4)  # 1 MB allocated before the call

    def in_place():
        existing.add_(1.0)
        return float(existing[0])

    result = peak.measure(in_place, device="cpu")
    assert result.peak_bytes <= SLACK
    assert result.baseline_bytes >= MB


def test_training_step_split_matches_the_bytes_the_model_and_adam_hold():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 64))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(32, 64)
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())

    def step():
        loss = model(x).pow(2).mean()
        loss.backward()
        opt.step()
        return loss.detach()

    result = peak.measure(step, device="cpu")
    split = result.at_peak
    assert split is not None, result.note
    assert split["parameters"] == param_bytes
    assert split["gradients"] == param_bytes
    # Adam keeps two states the size of the parameters plus one step counter (a 4-byte tensor) each
    assert 2 * param_bytes <= split["optimizer_state"] <= 2 * param_bytes + 16 * len(list(model.parameters()))
    assert result.model_states_bytes >= 4 * param_bytes
    # the step created gradients and Adam's state, so the peak is at least those
    assert result.peak_bytes >= 3 * param_bytes


def test_raw_allocation_events_agree_with_the_timeline():
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        t = torch.empty(MB // 4)
        del t
        torch.empty(MB // 8)
    assert MB <= peak._raw_allocation_peak(prof) <= MB + SLACK


@pytest.mark.parametrize("fn", [42, "step", None])
def test_fn_that_is_not_callable_is_refused(fn):
    with pytest.raises(TypeError, match="fn must be a callable"):
        peak.measure(fn)


@pytest.mark.parametrize("device", ["tpu", "gpu", "cuda:x"])
def test_unknown_device_is_refused(device):
    with pytest.raises(ValueError, match="device"):
        peak.measure(lambda: None, device=device)


def test_device_of_the_wrong_type_is_refused():
    with pytest.raises(TypeError, match="device"):
        peak.measure(lambda: None, device=0)


def test_mps_has_no_peak_counter():
    with pytest.raises(ValueError, match="no peak counter"):
        peak.measure(lambda: None, device="mps")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when CUDA is missing")
def test_cuda_without_cuda_says_so():
    with pytest.raises(ValueError, match="CUDA is not available"):
        peak.measure(lambda: None, device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none here)")
def test_cuda_peak_of_one_known_tensor():
    def allocate():
        return torch.empty(MB // 4, device="cuda")

    result = peak.measure(allocate, device="cuda")
    assert MB <= result.peak_bytes <= MB + 512 * 1024  # the caching allocator rounds to 512-byte blocks
    assert result.at_peak is None
