"""Device choice, its override, seeding and the readout."""

import random

import numpy as np
import pytest
import torch

from llmlab import device as dev


def test_env_var_forces_cpu(monkeypatch):
    monkeypatch.setenv(dev.ENV_VAR, "cpu")
    assert dev.best_device() == torch.device("cpu")


def test_without_override_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.delenv(dev.ENV_VAR, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert dev.best_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(dev, "_mps_available", lambda: True)
    assert dev.best_device().type == "mps"
    monkeypatch.setattr(dev, "_mps_available", lambda: False)
    assert dev.best_device().type == "cpu"


def test_unknown_override_is_refused_with_allowed_values(monkeypatch):
    monkeypatch.setenv(dev.ENV_VAR, "tpu")
    with pytest.raises(ValueError, match="must be one of"):
        dev.best_device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_forcing_cuda_without_cuda_says_so(monkeypatch):
    monkeypatch.setenv(dev.ENV_VAR, "cuda")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        dev.best_device()


def test_seed_everything_makes_all_generators_repeat():
    def draw():
        return random.random(), np.random.rand(), torch.rand(3).tolist()

    dev.seed_everything(7)
    first = draw()
    dev.seed_everything(7)
    assert draw() == first
    dev.seed_everything(8)
    assert draw() != first


def test_seed_must_be_a_non_negative_int():
    with pytest.raises(ValueError, match="seed must be"):
        dev.seed_everything(-1)


def test_device_info_reports_cpu_and_memory_in_bytes(monkeypatch):
    info = dev.device_info("cpu")
    assert info.device == "cpu" and info.cpu_count >= 1
    assert info.ram_total_bytes is None or info.ram_total_bytes > 2**28
    assert "torch" in str(info) and "GiB" in str(info)
    assert dev.memory_allocated("cpu") is None
