"""What a rank of a chapter 7 run counts: bytes handed to collectives, bytes held, time computing.

Kept apart from the techniques (:mod:`.data_parallel`, :mod:`.fsdp`, ...), as picotron keeps its
communication apart from its algorithms: these wrappers only watch.

* :class:`CommCounter`: the Python collectives (``dist.all_reduce``, ...) that DDP's hook and FSDP2 call;
* :class:`FunctionalCommCounter`: the functional collectives DTensor issues (tensor parallelism);
* :func:`count_p2p`: the sends of the pipeline schedules; :func:`time_chunks`: a stage's busy time;
* :func:`nbytes`, :func:`optimizer_bytes`: bytes of the local shards; :func:`allocated_bytes`: the
  bytes of the memory under them (FSDP2 allocates a padded shard and shows a narrowed view of it).
"""

from __future__ import annotations

import time
from collections import defaultdict

import torch
import torch.distributed as dist
from torch.utils._python_dispatch import TorchDispatchMode

from .. import _checks

_COLLECTIVES = ("all_reduce", "broadcast", "all_gather_single", "all_gather_into_tensor",
                "reduce_scatter_single", "reduce_scatter_tensor")


class CommCounter:
    """Wraps torch.distributed's collectives to add up, per kind, the bytes of the tensors each
    call hands over: the all-reduced or broadcast tensor, the all-gather's output (whole, gathered)
    and the reduce-scatter's input (whole, before scattering). Counts while ``active``."""

    def __init__(self) -> None:
        self.bytes: dict[str, int] = defaultdict(int)
        self.calls: dict[str, int] = defaultdict(int)
        self.active = False
        self._orig = {name: getattr(dist, name) for name in _COLLECTIVES}
        for name in _COLLECTIVES:
            setattr(dist, name, self._wrap(name, self._orig[name]))

    def _wrap(self, name, fn):
        def counted(*args, **kwargs):
            if self.active:
                if name in ("all_gather_single", "all_gather_into_tensor"):
                    t = kwargs.get("output_tensor", args[0] if args else None)
                elif name in ("reduce_scatter_single", "reduce_scatter_tensor"):
                    t = kwargs.get("input", args[1] if len(args) > 1 else None)
                else:
                    t = kwargs.get("tensor", args[0] if args else None)
                group = kwargs.get("group")
                key = f"{name}@{dist.get_world_size(group)}"  # the kind and the size of the group
                self.bytes[key] += t.numel() * t.element_size()
                self.calls[key] += 1
            return fn(*args, **kwargs)
        return counted

    def take(self) -> dict:
        """The counts so far, ``{"bytes": {kind@group: bytes}, "calls": {kind@group: calls}}``; resets them."""
        out = {"bytes": dict(self.bytes), "calls": dict(self.calls)}
        self.bytes.clear()
        self.calls.clear()
        return out


_FUNCTIONAL_COLLECTIVES = ("all_reduce", "all_gather_into_tensor", "reduce_scatter_tensor", "all_to_all_single",
                           "broadcast")


def _group_size(args) -> int:
    """The size of the process group a functional collective runs on (its last argument names the group)."""
    from torch.distributed.distributed_c10d import _resolve_process_group

    name = args[-1] if args and isinstance(args[-1], str) else None
    return _resolve_process_group(name).size() if name else dist.get_world_size()


class FunctionalCommCounter(TorchDispatchMode):
    """Counts the collectives DTensor issues (``_c10d_functional`` ops, which bypass the Python
    ``dist.all_reduce``), forward and backward: per kind, calls and bytes of the input tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes: dict[str, int] = defaultdict(int)
        self.calls: dict[str, int] = defaultdict(int)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.namespace == "_c10d_functional" and func.overloadpacket.__name__ in _FUNCTIONAL_COLLECTIVES:
            t = args[0]
            key = f"{func.overloadpacket.__name__}@{_group_size(args)}"
            self.bytes[key] += t.numel() * t.element_size()
            self.calls[key] += 1
        return func(*args, **(kwargs or {}))

    def take(self) -> dict:
        """The counts so far, as :meth:`CommCounter.take`; resets them."""
        out = {"bytes": dict(self.bytes), "calls": dict(self.calls)}
        self.bytes.clear()
        self.calls.clear()
        return out


def merge_counts(*counts: dict) -> dict:
    """The sum of several :meth:`CommCounter.take` results."""
    for c in counts:
        if not (isinstance(c, dict) and all(isinstance(c.get(part), dict) for part in ("bytes", "calls"))):
            raise _checks.ArgumentTypeError(f"counts must be CommCounter.take() results (dicts with 'bytes' and 'calls'), "
                                            f"got {type(c).__name__} {_checks._shown(c)}")
        if not all(isinstance(v, int) and not isinstance(v, bool) for part in ("bytes", "calls") for v in c[part].values()):
            raise _checks.ArgumentTypeError(f"counts must hold whole numbers of bytes and calls, got {c!r:.80}")
    out: dict = {"bytes": {}, "calls": {}}
    for c in counts:
        for part in ("bytes", "calls"):
            for k, v in c[part].items():
                out[part][k] = out[part].get(k, 0) + v
    return out


def count_p2p(counter: CommCounter):
    """Count the bytes the pipeline schedules send (their sends go through ``schedules._batch_p2p``)
    into ``counter`` while it is active. Returns a function that undoes the counting."""
    from torch.distributed.pipelining import schedules

    if not isinstance(counter, CommCounter):
        raise _checks.ArgumentTypeError(f"counter must be a CommCounter, got {type(counter).__name__}")
    original = schedules._batch_p2p

    def counted(p2p_ops, desc=None):
        if counter.active:
            for op in p2p_ops:
                if getattr(op.op, "__name__", "") == "isend":
                    counter.bytes[f"send@{dist.get_world_size()}"] += op.tensor.numel() * op.tensor.element_size()
                    counter.calls[f"send@{dist.get_world_size()}"] += 1
        return original(p2p_ops, desc)

    def undo() -> None:
        schedules._batch_p2p = original

    schedules._batch_p2p = counted
    return undo


def time_chunks(stage, into: list | None = None) -> list[tuple[float, float]]:
    """Record the (start, end) of every forward and backward chunk ``stage`` computes (a
    ``PipelineStage``), for the idle fraction; returns the list the intervals are appended to
    (``into``, to gather several stages of one rank in one list, or a new one)."""
    if not all(callable(getattr(stage, m, None)) for m in ("forward_one_chunk", "backward_one_chunk")):
        raise _checks.ArgumentTypeError(f"stage must be a PipelineStage (from pipeline.pipeline_stage), got "
                                        f"{type(stage).__name__}")
    if into is not None and not isinstance(into, list):
        raise _checks.ArgumentTypeError(f"into must be a list or None, got {type(into).__name__}")
    busy: list[tuple[float, float]] = [] if into is None else into
    for name in ("forward_one_chunk", "backward_one_chunk"):
        original = getattr(stage, name)

        def timed(*args, _original=original, **kwargs):
            t0 = time.perf_counter()
            out = _original(*args, **kwargs)
            busy.append((t0, time.perf_counter()))
            return out

        setattr(stage, name, timed)
    return busy


def local(t: torch.Tensor) -> torch.Tensor:
    """This rank's shard of ``t`` (a DTensor's ``to_local()``), or ``t`` itself."""
    _checks.tensor("t", t)
    return t.to_local() if hasattr(t, "to_local") else t


def full(t: torch.Tensor) -> torch.Tensor:
    """The whole tensor of a DTensor (gathered from every rank), or ``t`` itself."""
    _checks.tensor("t", t)
    return t.full_tensor() if hasattr(t, "full_tensor") else t


def nbytes(t: torch.Tensor) -> int:
    """Bytes of this rank's shard of ``t``."""
    t = local(t)
    return t.numel() * t.element_size()


def allocated_bytes(tensors) -> int:
    """Bytes of the memory that holds ``tensors`` on this rank: each distinct storage under
    their local shards counted once, whole.

    Differs from summing :func:`nbytes` where a tensor is a view into a larger buffer: FSDP2
    allocates every rank's shard at the padded size ceil(d0 / n) rows and exposes a narrowed
    view (``to_local()``), and its gradients are views into one padded reduce-scatter output.
    """
    if isinstance(tensors, torch.Tensor):
        raise _checks.ArgumentTypeError("tensors must be an iterable of tensors (e.g. model.parameters()), "
                                        "got a single tensor; wrap it in a list")
    seen: dict[int, int] = {}
    for t in tensors:
        t = local(t)
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


def optimizer_bytes(opt) -> tuple[int, int]:
    """Bytes of ``opt``'s states on this rank: (tensors, one-element tensors such as Adam's step)."""
    inner = getattr(opt, "optim", opt)  # ZeroRedundancyOptimizer keeps this rank's states in .optim
    if not isinstance(inner, torch.optim.Optimizer):
        raise _checks.ArgumentTypeError(f"opt must be a torch optimizer (or a ZeroRedundancyOptimizer), got "
                                        f"{type(opt).__name__}")
    big = scalars = 0
    for state in inner.state.values():
        for v in state.values():
            if isinstance(v, torch.Tensor):
                if local(v).numel() <= 1:
                    scalars += nbytes(v)
                else:
                    big += nbytes(v)
    return big, scalars
