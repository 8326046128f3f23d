"""LoRA from scratch (chapter 12): a frozen linear layer plus a trainable low-rank update.

Hu et al. (2021, "LoRA: Low-Rank Adaptation of Large Language Models") keep a pretrained
weight ``W`` (out_features x in_features) frozen and learn its change as a product of two
thin matrices, ``B A`` with ``A`` (r x in_features) and ``B`` (out_features x r):

    y = W x + (alpha / r) * B A x

``B`` starts at zero, so a freshly added adapter leaves the model's outputs unchanged, and
only ``r * (in_features + out_features)`` values per layer are trained. After training,
``B A`` folds into ``W`` (:func:`merge_lora`) and inference costs what it did before.
QLoRA (Dettmers et al. 2023) keeps the same adapters over a 4-bit base layer: the base is
any module with ``in_features``, ``out_features`` and a forward (``llmlab.nf4``'s
``NF4Linear``, for one).

The names follow PEFT (``LoraConfig``, ``get_peft_model``): ``lora_A``, ``lora_B``,
``scaling``, ``target_modules`` matched like PEFT's, so a PEFT adapter loads as is
(:func:`load_peft_adapter`).
"""

from __future__ import annotations

import contextlib
import math
import re

import torch
from torch import nn

from . import _checks


class LoRALinear(nn.Module):
    """A frozen ``base`` layer plus a trainable update, (alpha / r) B A (chapter 12).

    ``base``: an ``nn.Linear`` or any module with ``in_features``, ``out_features``
    and a forward (a 4-bit layer for QLoRA); its parameters are frozen. ``r``: the
    rank of the update; ``alpha``: its scale, ``scaling = alpha / r``; ``dropout``:
    the probability of zeroing an input value of the adapter path (training only).
    """

    def __init__(self, base: nn.Module, r: int, alpha: float,
                 dropout: float = 0.0) -> None:
        super().__init__()
        _check_base(base)
        self.r = _checks.positive_int("r", r)
        self.alpha = _checks.positive("alpha", alpha)
        p = _checks.fraction("dropout", dropout, high_open=True)
        self.base = base.requires_grad_(False)  # the pretrained weight stays as it is
        self.scaling = self.alpha / self.r
        device, dtype = _device_dtype(base)
        # A: random as PEFT's default (Kaiming-uniform, a = sqrt(5)); B: zeros, B A = 0
        self.lora_A = nn.Parameter(torch.empty(self.r, base.in_features, device=device,
                                               dtype=dtype))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, self.r, device=device,
                                               dtype=dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(p)

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)  # the frozen path
        h = self.dropout(x.to(self.lora_A.dtype))
        update = (h @ self.lora_A.T) @ self.lora_B.T  # down to r values, then back up
        return (y + update * self.scaling).to(y.dtype)  # summed in the adapter's dtype

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha:g}, scaling={self.scaling:g}"


def _check_base(base) -> None:
    if not isinstance(base, nn.Module):
        raise _checks.ArgumentTypeError(
            f"base must be a layer (torch.nn.Module with in_features and out_features), "
            f"got {type(base).__name__}")
    if isinstance(base, LoRALinear):
        raise ValueError("base already has a LoRA adapter (a LoRALinear); "
                         "pass its .base or merge it first with merge_lora")
    for name in ("in_features", "out_features"):
        value = getattr(base, name, None)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _checks.ArgumentTypeError(
                f"base must have an int {name} >= 1 (an nn.Linear or a layer shaped like one),"
                f" got {type(base).__name__} with {name}={value!r}")


def _device_dtype(base: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Where the adapter lives: the base's device, in float32 (float64 for a float64 base).
    A 16-bit or 4-bit base still gets float32 adapters, as PEFT's default does."""
    tensors = list(base.parameters()) + list(base.buffers())
    device = tensors[0].device if tensors else torch.device("cpu")
    wide = any(t.dtype == torch.float64 for t in tensors)
    return device, torch.float64 if wide else torch.float32


def _is_linear(module: nn.Module) -> bool:
    """A layer LoRA can wrap: an nn.Linear, or a layer shaped like one (a 4-bit NF4Linear)."""
    if isinstance(module, LoRALinear):
        return False
    shaped = all(isinstance(getattr(module, n, None), int) for n in ("in_features", "out_features"))
    return isinstance(module, nn.Linear) or shaped


def _matches(name: str, targets: list[str]) -> bool:
    """PEFT's rule: the full module name is a target, or it ends with "." + a target."""
    return name in targets or any(name.endswith("." + t) for t in targets)


def _targets(model: nn.Module, target_modules) -> dict[str, nn.Module]:
    """The linear layers of ``model`` that ``target_modules`` names; ValueError if none."""
    targets = _checks.strings("target_modules", target_modules)
    if [t for t in targets if not t.strip()]:
        raise ValueError(f"target_modules must hold non-empty names, got {targets!r}")
    names = dict(model.named_modules())
    wrapped = [n for n, m in names.items() if isinstance(m, LoRALinear) and _matches(n, targets)]
    if wrapped:
        raise ValueError(f"these layers already have a LoRA adapter: {wrapped[:4]}; "
                         "add adapters once, or merge_lora first")
    found = {n: m for n, m in names.items() if _is_linear(m) and _matches(n, targets)}
    if not found:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in names.items() if _is_linear(m)})
        raise ValueError(f"target_modules {targets!r} match no linear layer of the model; "
                         f"its linear layers are named {linear} (full names work too)")
    return found


def add_lora(model: nn.Module, r: int, alpha: float, target_modules: list[str],
             dropout: float = 0.0) -> nn.Module:
    """Wrap every linear layer named in ``target_modules`` in a :class:`LoRALinear`.

    A name matches as in PEFT: ``"q_proj"`` picks ``model.layers.0.self_attn.q_proj``
    and every other layer whose name ends with it; a full name picks one layer. Every
    other parameter of the model is frozen. Changes ``model`` in place, returns it.
    """
    model = _checks.model("model", model)
    r, alpha = _checks.positive_int("r", r), _checks.positive("alpha", alpha)
    dropout = _checks.fraction("dropout", dropout, high_open=True)
    found = _targets(model, target_modules)
    model.requires_grad_(False)  # only the adapters will train
    for name, layer in found.items():
        parent, _, child = name.rpartition(".")
        lora = LoRALinear(layer, r, alpha, dropout)
        setattr(model.get_submodule(parent), child, lora)
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold each adapter into its base weight, W <- W + (alpha / r) B A, and put the
    plain ``nn.Linear`` back in its place. The merged model computes the same outputs
    at no extra cost. Changes ``model`` in place and returns it."""
    model = _checks.model("model", model)
    layers = lora_layers(model)
    shared = _shared_weights(model)
    for name, lora in layers.items():
        if not isinstance(lora.base, nn.Linear):
            kind = type(lora.base).__name__
            raise ValueError(f"cannot merge {name}: its base is a {kind}, not an "
                             "nn.Linear; dequantize it to an nn.Linear first")
        if id(lora.base.weight) in shared:
            tied = " and ".join(shared[id(lora.base.weight)])
            raise ValueError(f"cannot merge {name}: its weight is tied ({tied}), and "
                             "merging would change every copy; keep this adapter "
                             "unmerged, or leave the layer out of target_modules")
    with torch.no_grad():
        for name, lora in layers.items():
            w = lora.base.weight
            delta = lora.scaling * (lora.lora_B.float() @ lora.lora_A.float())
            w.copy_((w.float() + delta).to(w.dtype))
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, lora.base)
    return model


def _shared_weights(model: nn.Module) -> dict[int, list[str]]:
    """The parameters that appear under more than one name (tied embeddings), by id."""
    names: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(p), []).append(name)
    return {i: n for i, n in names.items() if len(n) > 1}


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """The model's :class:`LoRALinear` layers by module name (empty if it has none)."""
    model = _checks.model("model", model)
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def trainable_parameters(model: nn.Module) -> int:
    """The number of values (not tensors) that will train: those with requires_grad."""
    model = _checks.model("model", model)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def lora_count(in_features: int, out_features: int, r: int) -> int:
    """Values one adapter trains: A is r x in_features, B is out_features x r."""
    in_features = _checks.positive_int("in_features", in_features)
    out_features = _checks.positive_int("out_features", out_features)
    r = _checks.positive_int("r", r)
    return r * (in_features + out_features)


def count_for_model(model: nn.Module, r: int, target_modules: list[str]) -> int:
    """The number of values :func:`add_lora` would train, without changing ``model``."""
    model = _checks.model("model", model)
    r = _checks.positive_int("r", r)
    found = _targets(model, target_modules)
    return sum(lora_count(m.in_features, m.out_features, r) for m in found.values())


# PEFT's key for one adapter matrix: base_model.model.<name>.lora_A[.<adapter>].weight
_PEFT_KEY = re.compile(r"^(?:base_model\.model\.)?(.+)\.lora_([AB])(?:\.[^.]+)?\.weight$")


def load_peft_adapter(model: nn.Module, state_dict: dict, alpha: float | None = None
                      ) -> nn.Module:
    """Copy a PEFT LoRA adapter into ``model``, which already has adapters
    (:func:`add_lora` with the same ``r`` and ``target_modules``).

    ``state_dict``: what PEFT's ``get_peft_model_state_dict`` returns or
    ``save_pretrained`` writes (``adapter_model.safetensors``), with keys such as
    ``base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight``. ``alpha``:
    PEFT keeps it in ``adapter_config.json`` (``lora_alpha``), not in the state dict;
    when given, it sets every layer's ``scaling = alpha / r``; otherwise the scaling
    of ``add_lora`` stays. Raises ValueError listing missing or unexpected keys, or
    a shape that does not fit.
    """
    model = _checks.model("model", model)
    if not isinstance(state_dict, dict):
        raise _checks.ArgumentTypeError(f"state_dict must be a dict of tensors, "
                                        f"got {type(state_dict).__name__}")
    if alpha is not None:
        alpha = _checks.positive("alpha", alpha)
    layers = lora_layers(model)
    if not layers:
        raise ValueError("model has no LoRA adapters: call add_lora with the adapter's "
                         "r and target_modules first")
    ours, unexpected = {}, []
    for key, value in state_dict.items():
        m = _PEFT_KEY.match(str(key))
        if m and m.group(1) in layers and isinstance(value, torch.Tensor):
            ours[(m.group(1), m.group(2))] = value
        else:
            unexpected.append(key)
    missing = [f"{n}.lora_{ab}" for n in layers for ab in "AB" if (n, ab) not in ours]
    if missing or unexpected:
        raise ValueError(f"the adapter does not fit the model: missing {missing[:4]} "
                         f"({len(missing)} in all), unexpected {unexpected[:4]} "
                         f"({len(unexpected)} in all); add_lora with the adapter's "
                         f"target_modules first")
    for (name, ab), value in ours.items():
        target = getattr(layers[name], f"lora_{ab}")
        if value.shape != target.shape:
            raise ValueError(f"{name}.lora_{ab} has shape {tuple(value.shape)} in the "
                             f"adapter but {tuple(target.shape)} in the model: "
                             "add_lora with the adapter's r")
    with torch.no_grad():
        for (name, ab), value in ours.items():
            getattr(layers[name], f"lora_{ab}").copy_(value)
    if alpha is not None:
        for lora in layers.values():
            lora.alpha, lora.scaling = alpha, alpha / lora.r
    return model


def disabled(model: nn.Module) -> contextlib.AbstractContextManager:
    """A ``with`` block in which every adapter of ``model`` adds nothing: the frozen base model answers.

    Like PEFT's ``disable_adapter()``: the reference model of preference tuning (chapter
    13) is the same weights without the update, so no second copy is kept in memory.
    Each layer's ``scaling`` is set to zero and restored on leaving, even after an error.
    The model is checked here, before the block.
    """
    layers = lora_layers(model)
    if not layers:
        raise ValueError("model has no LoRA layers to disable; add them with add_lora first")
    return _scaled_to_zero(layers)


@contextlib.contextmanager
def _scaled_to_zero(layers: dict[str, LoRALinear]):
    saved = {name: layer.scaling for name, layer in layers.items()}
    try:
        for layer in layers.values():
            layer.scaling = 0.0
        yield
    finally:
        for name, layer in layers.items():
            layer.scaling = saved[name]
