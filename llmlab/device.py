"""Pick the best device, seed every generator, and report what the reader runs on.

Used by every chapter. The choice is CUDA, then Apple's MPS, then the CPU; the
environment variable ``LLMLAB_DEVICE`` (``cpu``, ``cuda``, ``cuda:1``, ``mps``)
overrides it, for example to force the CPU on a GPU machine.
"""

from __future__ import annotations

import os
import platform
import random
from dataclasses import dataclass

import numpy as np
import torch

from . import _checks

ENV_VAR = "LLMLAB_DEVICE"
_ALLOWED = ("cpu", "cuda", "mps")


def best_device() -> torch.device:
    """Return the device llmlab computes on: $LLMLAB_DEVICE if set, else cuda > mps > cpu."""
    forced = os.environ.get(ENV_VAR, "").strip()
    if forced:
        kind = forced.split(":")[0]
        if kind not in _ALLOWED:
            raise ValueError(f"{ENV_VAR} must be one of {_ALLOWED} (optionally 'cuda:N'), got {forced!r}")
        if kind == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"{ENV_VAR}={forced!r} but CUDA is not available on this machine")
        if kind == "mps" and not _mps_available():
            raise RuntimeError(f"{ENV_VAR}={forced!r} but MPS is not available on this machine")
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def supports_bf16(device: torch.device | str | None = None) -> bool:
    """True when bf16 autocast is supported and useful on ``device`` (CPU always supports it)."""
    device = _checks.device("device", device) if device is not None else best_device()
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type in ("cpu", "mps")


def seed_everything(seed: int = 0) -> None:
    """Seed Python's, NumPy's and torch's generators (all devices) so a cell gives the same numbers each run."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise (ValueError if isinstance(seed, int) and not isinstance(seed, bool) else _checks.ArgumentTypeError)(
            f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds CUDA and MPS generators


@dataclass
class DeviceInfo:
    """What the reader runs on. Memory figures are in bytes (None where unknown)."""

    device: str
    name: str
    torch_version: str
    cpu_count: int
    ram_total_bytes: int | None
    accelerator_memory_bytes: int | None

    def __str__(self) -> str:
        gib = lambda b: "unknown" if b is None else f"{b / 2**30:.1f} GiB"  # noqa: E731
        lines = [
            f"device       : {self.device} ({self.name})",
            f"torch        : {self.torch_version}",
            f"CPU cores    : {self.cpu_count}",
            f"RAM          : {gib(self.ram_total_bytes)}",
        ]
        if self.device != "cpu":
            lines.append(f"device memory: {gib(self.accelerator_memory_bytes)}")
        return "\n".join(lines)


def _ram_total_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def device_info(device: torch.device | str | None = None) -> DeviceInfo:
    """Describe ``device`` (default: :func:`best_device`) and the machine's memory in bytes."""
    device = _checks.device("device", device) if device is not None else best_device()
    name, acc_mem = platform.processor() or platform.machine(), None
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        name, acc_mem = props.name, props.total_memory
    elif device.type == "mps":
        name = "Apple GPU (MPS)"
        acc_mem = getattr(torch.mps, "recommended_max_memory", lambda: None)()
    return DeviceInfo(
        device=str(device),
        name=name,
        torch_version=torch.__version__,
        cpu_count=os.cpu_count() or 1,
        ram_total_bytes=_ram_total_bytes(),
        accelerator_memory_bytes=acc_mem,
    )


def memory_allocated(device: torch.device | str | None = None) -> int | None:
    """Bytes currently allocated by torch on an accelerator; None on the CPU (torch does not track it)."""
    device = _checks.device("device", device) if device is not None else best_device()
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device)
    if device.type == "mps":
        return torch.mps.current_allocated_memory()
    return None
