"""Measured peak memory of one call (chapters 6 and 7).

:func:`measure` runs ``fn()`` once and returns a :class:`PeakMemory`: the most bytes
torch's allocator held *above what it held at entry* at any moment during the call,
so a temporary that was freed before ``fn`` returned still counts. That is the
number that decides whether a training step fits, and the one a calculator such as
:func:`llmlab.memory.training_memory` predicts.

How it is measured, and why this way (torch 2.13):

* **CUDA**: the caching allocator keeps the statistic itself.
  ``torch.cuda.reset_peak_memory_stats`` before the call and
  ``torch.cuda.max_memory_allocated`` after it, minus ``torch.cuda.memory_allocated``
  at entry. Exact for tensors; it excludes the allocator's cached-but-free blocks
  (``memory_reserved``) and memory outside torch (NCCL's own buffers, CUDA context).
* **CPU**: the CPU allocator has no peak counter and process RSS is misleading
  (glibc keeps freed pages, other threads allocate), so the call runs under
  ``torch.profiler.profile(profile_memory=True, record_shapes=True, with_stack=True)``.
  The profiler records every allocation and free of torch's CPU allocator with its
  size; its memory profiler (``torch.profiler._memory_profiler.MemoryProfile``, the
  same analysis behind ``export_memory_timeline``) ties each allocation to a tensor
  and gives it a category: parameter, gradient, optimizer state, activation,
  temporary, autograd detail, input. :func:`measure` replays that timeline, adding
  creations and subtracting frees, and takes the maximum; the split by category is
  read at that maximum. ``torch.profiler._memory_profiler`` is a private module; if
  a torch release breaks it the split is returned as ``None`` with the reason in
  ``note`` and the peak falls back to the profiler's raw allocation events.
  No allocator hook exists for the CPU (``torch.cuda.memory._record_memory_history``
  is CUDA only), which is why the profiler is used.

What the CPU figure cannot see: memory allocated outside torch's allocator (gloo's
internal send/receive buffers, Python objects, the interpreter), and the size of
tensors that existed before the call and that the call never touched, so
``baseline_bytes`` on CPU is a lower bound (the bytes of the pre-existing tensors the
call used), not everything the process held.

Kineto (the profiler's backend) logs two lines on stderr each time it starts and
stops; :func:`measure` sets ``KINETO_LOG_LEVEL=6`` (errors only) in the environment
before the first profile so that notebook cells stay free of stderr.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from . import _checks

# The memory profiler's categories, in the order a training step fills them, with the
# names this module reports. "other" is memory the profiler could not tie to a tensor.
CATEGORY_NAMES = {
    "PARAMETER": "parameters",
    "GRADIENT": "gradients",
    "OPTIMIZER_STATE": "optimizer_state",
    "ACTIVATION": "activations",
    "TEMPORARY": "temporary",
    "AUTOGRAD_DETAIL": "autograd_detail",
    "INPUT": "inputs",
}
CATEGORIES = tuple(CATEGORY_NAMES.values()) + ("other",)


@dataclass(frozen=True)
class PeakMemory:
    """What :func:`measure` found (all sizes in bytes).

    ``peak_bytes``: most bytes held above the level at entry at any moment during the call.
    ``baseline_bytes``: bytes allocated at entry (CUDA: exact; CPU: the pre-existing tensors
    the call used, a lower bound; ``None`` if unknown).
    ``at_peak``: bytes live at the peak moment by category (parameters, gradients,
    optimizer_state, activations, temporary, autograd_detail, inputs, other), pre-existing
    tensors included, or ``None`` where no split is available (``note`` says why).
    ``method``: how the figure was obtained. ``result``: what ``fn`` returned.
    """

    peak_bytes: int
    baseline_bytes: int | None
    device: str
    method: str
    at_peak: dict[str, int] | None = None
    note: str = ""
    result: object = field(default=None, repr=False, compare=False)

    @property
    def peak_total_bytes(self) -> int | None:
        """Baseline plus peak: the most bytes held during the call (a lower bound on CPU)."""
        return None if self.baseline_bytes is None else self.baseline_bytes + self.peak_bytes

    @property
    def model_states_bytes(self) -> int | None:
        """Parameters + gradients + optimizer state live at the peak (``None`` without a split)."""
        if self.at_peak is None:
            return None
        return sum(self.at_peak[k] for k in ("parameters", "gradients", "optimizer_state"))

    @property
    def activations_and_other_bytes(self) -> int | None:
        """Everything else live at the peak: activations, temporaries, autograd buffers, inputs, other."""
        if self.at_peak is None:
            return None
        return sum(self.at_peak.values()) - self.model_states_bytes


def _default_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def _measure_cuda(fn, device: torch.device) -> PeakMemory:
    if not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} was asked for but CUDA is not available here; "
                         f"use device='cpu' (or None to pick the available one)")
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    baseline = torch.cuda.memory_allocated(device)
    result = fn()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - baseline
    return PeakMemory(peak_bytes=int(peak), baseline_bytes=int(baseline), device=str(device),
                      method="torch.cuda.max_memory_allocated", at_peak=None,
                      note="no split by category on CUDA (use torch.cuda.memory._record_memory_history "
                           "for one); peak excludes the allocator's cached free blocks", result=result)


def _replay_timeline(memory_profile, device: torch.device) -> tuple[int, int, dict[str, int]]:
    """(peak above baseline, baseline, live bytes by category at the peak) from a MemoryProfile."""
    from torch.profiler._memory_profiler import Action, TensorKey

    live = {name: 0 for name in CATEGORIES}
    baseline = 0
    peak, at_peak = 0, dict(live)
    total = 0

    def name_of(key, version) -> str:
        category = memory_profile._categories.get(key, version) if isinstance(key, TensorKey) else None
        return CATEGORY_NAMES.get(category.name, "other") if category is not None else "other"

    for _t, action, (key, version), size in memory_profile.timeline:
        if key.device.type != device.type:
            continue
        if action == Action.PREEXISTING:
            live[name_of(key, version)] += size
            baseline += size
            total += size
        elif action == Action.CREATE:
            live[name_of(key, version)] += size
            total += size
        elif action == Action.INCREMENT_VERSION:
            live[name_of(key, version)] -= size
            live[name_of(key, version + 1)] += size
        elif action == Action.DESTROY:
            live[name_of(key, version)] -= size
            total -= size
        if total - baseline >= peak:  # >= so that at_peak also holds the pre-existing tensors
            peak = total - baseline
            at_peak = dict(live)
    return int(peak), int(baseline), {k: int(v) for k, v in at_peak.items()}


def _raw_allocation_peak(prof) -> int:
    """Peak above entry from the profiler's raw allocation events (no categories)."""
    from torch._C._profiler import _EventType

    sizes = []

    def walk(node):
        if node.tag == _EventType.Allocation and node.extra_fields.device.type == "cpu":
            sizes.append((node.start_time_ns, node.extra_fields.alloc_size))
        for child in node.children:
            walk(child)

    for root in prof.profiler.kineto_results.experimental_event_tree():
        walk(root)
    total = peak = 0
    for _t, size in sorted(sizes, key=lambda item: item[0]):
        total += size
        peak = max(peak, total)
    return int(peak)


def _measure_cpu(fn) -> PeakMemory:
    from torch.profiler import ProfilerActivity, profile

    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True,
                 with_stack=True) as prof:
        result = fn()
    try:
        memory_profile = prof._memory_profile()
        peak, baseline, at_peak = _replay_timeline(memory_profile, torch.device("cpu"))
        return PeakMemory(peak_bytes=peak, baseline_bytes=baseline, device="cpu",
                          method="torch.profiler memory timeline", at_peak=at_peak,
                          note="baseline_bytes counts only the pre-existing tensors the call used "
                               "(a lower bound); memory outside torch's allocator is not seen",
                          result=result)
    except Exception as error:  # noqa: BLE001 (a private API that a torch release may change)
        return PeakMemory(peak_bytes=_raw_allocation_peak(prof), baseline_bytes=None, device="cpu",
                          method="torch.profiler allocation events", at_peak=None,
                          note=f"no split by category: the memory profiler failed ({type(error).__name__}: "
                               f"{str(error)[:120]})", result=result)


def measure(fn, *, device=None) -> PeakMemory:
    """Run ``fn()`` once and return the peak bytes torch allocated during it (a :class:`PeakMemory`).

    ``device``: where to measure, ``"cpu"`` or ``"cuda"`` (``"cuda:1"``, a ``torch.device``);
    ``None`` picks CUDA when it is available, else the CPU. On the CPU the peak comes from the
    profiler's memory records and is split by category (parameters, gradients, optimizer state,
    activations, ...); on CUDA from the allocator's own peak counter, without a split.
    ``fn``'s return value is in the result's ``result``.
    """
    if not callable(fn):
        raise _checks.ArgumentTypeError(f"fn must be a callable taking no arguments (e.g. a function or "
                                        f"lambda: step(model, batch)), got {type(fn).__name__} "
                                        f"{_checks._shown(fn)}")
    device = _default_device() if device is None else _checks.device("device", device)
    if device.type == "cuda":
        return _measure_cuda(fn, device)
    if device.type == "cpu":
        return _measure_cpu(fn)
    raise ValueError(f"device must be 'cpu' or 'cuda' for peak.measure (no peak counter exists for "
                     f"{device.type!r}), got {str(device)!r}")
