"""Interactive panels for the notebooks (chapter 5: the sampling playground).

ipywidgets panels need a running kernel: their Python callbacks do not run in the
static HTML book. So every panel comes in two forms:

- the live one (:func:`sampling_playground`), an ipywidgets panel for Jupyter, Colab
  and Studio Lab, tagged ``remove-output`` in the chapter;
- a kernel-free one for the HTML book (:func:`static_sampling_playground`), built on
  :func:`static_explorer`: Python computes one *frame* (a bar chart and a line of
  text) for every combination of the slider values, and a small self-contained
  script (no library, no server, no network) shows the frame of the current slider
  positions. It works in the static HTML, in Jupyter and in Colab alike.

:func:`static_explorer` knows nothing about sampling: any panel whose sliders take a
few values each (the sharding explorer: GPUs, ZeRO stage, precision, offload) can
reuse it by writing a function from slider values to a frame.

Chapter 8's compute-budget panels (:func:`budget_slider`, :func:`static_budget_slider`,
:func:`draw_budget`) are built the same way on :mod:`llmlab.scaling`'s arithmetic.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import matplotlib.pyplot as plt
import numpy as np
import torch

from . import _checks, memory, plot
from .distributed.explorer import (
    _COLORS,
    EXPLORER_GPUS,
    EXPLORER_MICROBATCHES,
    EXPLORER_MODELS,
    EXPLORER_PP,
    EXPLORER_PRECISIONS,
    EXPLORER_SHARDING,
    EXPLORER_TP,
    GPU_BYTES,
    _frame,
    _parallel_frame,
    explorer_memory,
)
from .sampling import filter_logits, generate
from .scaling import CHINCHILLA_TOKENS_PER_PARAM, LANDMARKS, BudgetPlan, gpu_hours_to_flops, plan_budget


@dataclass
class NextToken:
    """The next-token distribution of a prompt, before and after filtering (top ``n`` tokens by probability)."""

    labels: list[str]
    before: list[float]
    after: list[float]
    kept: int          # tokens with non-zero probability after filtering (whole vocabulary)
    vocab_size: int


def _check_model_prompt(model, tokenizer, prompt) -> None:
    """A model (not its name), a tokenizer and a str prompt, refused before any work."""
    _checks.model("model", model)
    if not isinstance(prompt, str):
        raise _checks.ArgumentTypeError(f"prompt must be a str, got {type(prompt).__name__}")
    _checks.tokenizer("tokenizer", tokenizer)


@torch.no_grad()
def next_token(model, tokenizer, prompt: str, temperature: float = 1.0, top_k: int = 0,
               top_p: float = 1.0, n: int = 15, min_p: float = 0.0) -> NextToken:
    """Probabilities of the ``n`` most likely next tokens at T = 1 and after the filters."""
    n = _checks.positive_int("n", n)
    _check_model_prompt(model, tokenizer, prompt)
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"].to(model.device)
    logits = model(input_ids=ids).logits[:, -1, :].float()  # (1, V)
    return _next_token(logits, tokenizer, temperature, top_k, top_p, n, min_p)


def _next_token(logits, tokenizer, temperature, top_k, top_p, n, min_p) -> NextToken:
    before = torch.softmax(logits, dim=-1)[0]
    after = torch.softmax(filter_logits(logits, temperature, top_k, top_p, min_p), dim=-1)[0]
    order = torch.argsort(before, descending=True)[:n].tolist()
    labels = [plot.token_label(t) for t in tokenizer.convert_ids_to_tokens(order)]
    return NextToken(labels, before[order].tolist(), after[order].tolist(),
                     kept=int((after > 0).sum()), vocab_size=logits.size(-1))


def sample_text(model, tokenizer, prompt: str, max_new_tokens: int, temperature: float, top_k: int,
                top_p: float, seed: int = 0, min_p: float = 0.0) -> str:
    """One sampled continuation of ``prompt`` (stops at the end-of-text token)."""
    _check_model_prompt(model, tokenizer, prompt)
    _checks.non_negative_int("max_new_tokens", max_new_tokens)
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    out = generate(model, ids, max_new_tokens=max_new_tokens, do_sample=True, temperature=temperature,
                   top_k=top_k, top_p=top_p, min_p=min_p, stop_token_id=tokenizer.eos_token_id,
                   generator=torch.Generator().manual_seed(seed))
    return tokenizer.decode(out[0, ids.size(1):], skip_special_tokens=True)


def _title(temperature: float, top_k: int, top_p: float, kept: int, vocab: int, min_p: float = 0.0) -> str:
    mp = f", min-p={min_p:g}" if min_p else ""
    return (f"T={temperature:g}, top-k={top_k or 'off'}, top-p={top_p:g}{mp}: "
            f"{kept:,} of {vocab:,} tokens can be drawn")


def sampling_playground(model, tokenizer, prompt: str = "The old lighthouse keeper opened the door and saw"):
    """Sliders for temperature, top-k, top-p, min-p, max new tokens and seed, a prompt box,
    the filtered next-token distribution and a sampled continuation. Needs a live kernel."""
    _check_model_prompt(model, tokenizer, prompt)
    import ipywidgets as w
    from IPython.display import display

    controls = dict(
        prompt=w.Text(value=prompt, description="prompt", layout=w.Layout(width="95%")),
        temperature=w.FloatSlider(value=1.0, min=0.05, max=2.5, step=0.05, description="temperature"),
        top_k=w.IntSlider(value=0, min=0, max=50, description="top-k (0=off)"),
        top_p=w.FloatSlider(value=1.0, min=0.05, max=1.0, step=0.05, description="top-p"),
        min_p=w.FloatSlider(value=0.0, min=0.0, max=0.5, step=0.01, description="min-p (0=off)"),
        max_new_tokens=w.IntSlider(value=30, min=0, max=120, description="max new tokens"),
        seed=w.IntSlider(value=0, min=0, max=20, description="seed"),
    )
    out = w.Output()

    def redraw(prompt, temperature, top_k, top_p, min_p, max_new_tokens, seed):
        with out:
            out.clear_output(wait=True)
            if not prompt:
                print("Type a prompt.")
                return
            dist = next_token(model, tokenizer, prompt, temperature, top_k, top_p, min_p=min_p)
            fig, ax = plt.subplots(figsize=(7.5, 3.2))
            plot.draw_distribution(ax, dist.labels, dist.before, dist.after,
                                   title=_title(temperature, top_k, top_p, dist.kept, dist.vocab_size, min_p))
            ax.legend(loc="upper right", fontsize=8)
            plt.show()
            text = sample_text(model, tokenizer, prompt, max_new_tokens, temperature, top_k, top_p, seed, min_p)
            print(prompt + "\033[1m" + text + "\033[0m")

    w.interactive_output(redraw, controls)
    panel = w.VBox([controls["prompt"], w.HBox([controls["temperature"], controls["top_k"]]),
                    w.HBox([controls["top_p"], controls["min_p"]]),
                    w.HBox([controls["max_new_tokens"], controls["seed"]]), out])
    display(panel)
    return panel


# ------------------------------------------------------------ kernel-free panels


@dataclass
class Control:
    """One slider of a :func:`static_explorer`: the values it steps through, in order.

    ``labels`` are what the panel shows for each value (default: the values);
    ``value`` is where the slider starts (default: the first value). A ``text_only``
    control changes only the line of text under the chart (such as the length of a
    sampled continuation): the panel stores one text per value in each frame instead of
    a frame per value.
    """

    name: str
    label: str
    values: list[Any]
    value: Any = None
    labels: list[str] = field(default_factory=list)
    text_only: bool = False

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError(f"control {self.name!r} needs at least one value, got none")
        if self.value is None:
            self.value = self.values[0]
        if self.value not in self.values:
            raise ValueError(f"control {self.name!r} starts at {self.value!r}, which is not one of its values {self.values}")
        if not self.labels:
            self.labels = [f"{v:g}" if isinstance(v, float) else str(v) for v in self.values]
        if len(self.labels) != len(self.values):
            raise ValueError(f"control {self.name!r} has {len(self.values)} values but {len(self.labels)} labels")


_EXPLORER_SCRIPT = r"""
(function () {
  var root = document.getElementById("%(id)s");
  if (!root || root.getAttribute("data-ready")) return;
  var spec = JSON.parse(root.querySelector("script.llmlab-explorer-data").textContent);
  var inputs = root.querySelectorAll("input[data-control]");
  var svg = root.querySelector("svg");
  var NS = "http://www.w3.org/2000/svg";
  function add(parent, name, attrs, text) {
    var node = document.createElementNS(NS, name);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (text !== undefined) node.textContent = text;
    parent.appendChild(node);
    return node;
  }
  function draw() {
    var key = [];
    for (var i = 0; i < inputs.length; i++) {
      if (!spec.controls[i].text_only) key.push(inputs[i].value);
      root.querySelector("output[data-control='" + inputs[i].getAttribute("data-control") + "']")
        .textContent = spec.controls[i].labels[+inputs[i].value];
    }
    var frame = spec.frames[key.join(",")], textAt = null;
    for (var i = 0; i < inputs.length; i++) {
      if (spec.controls[i].text_only) textAt = +inputs[i].value;
    }
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var W = 680, H = 330, L = 56, R = 12, T = 34, B = 78, pw = W - L - R, ph = H - T - B;
    var bars = frame.bars, n = bars.labels.length, ns = bars.series.length, ymax = bars.ymax;
    add(svg, "text", {x: W / 2, y: 18, "text-anchor": "middle", "font-size": 13, "font-weight": "bold"}, frame.title);
    for (var t = 0; t <= 4; t++) {
      var v = ymax * t / 4, y = T + ph - ph * t / 4;
      add(svg, "line", {x1: L, x2: L + pw, y1: y, y2: y, stroke: "#e2e8f0"});
      add(svg, "text", {x: L - 6, y: y + 4, "text-anchor": "end", "font-size": 11}, +v.toPrecision(3));
    }
    add(svg, "text", {x: 14, y: T + ph / 2, "text-anchor": "middle", "font-size": 12,
                      transform: "rotate(-90 14 " + (T + ph / 2) + ")"}, bars.ylabel || "");
    var band = pw / n, base = new Array(n).fill(0);
    for (var s = 0; s < ns; s++) {
      var ser = bars.series[s];
      for (var j = 0; j < n; j++) {
        var val = ser.values[j], h = ph * Math.min(val, ymax) / ymax, x, w, y0;
        if (bars.layout === "grouped") { w = band * 0.8 / ns; x = L + j * band + band * 0.1 + s * w; y0 = T + ph; }
        else if (bars.layout === "stacked") { w = band * 0.7; x = L + j * band + band * 0.15; y0 = T + ph - ph * base[j] / ymax; base[j] += val; }
        else { w = band * 0.8 * Math.pow(0.55, s); x = L + j * band + (band - w) / 2; y0 = T + ph; }
        var rect = add(svg, "rect", {x: x, y: y0 - h, width: w, height: h, fill: ser.color});
        add(rect, "title", {}, bars.labels[j] + ", " + ser.name + ": " + (+val.toPrecision(3)));
      }
      add(svg, "rect", {x: W - R - 250, y: T + 4 + 16 * s, width: 10, height: 10, fill: ser.color});
      add(svg, "text", {x: W - R - 235, y: T + 13 + 16 * s, "font-size": 11}, ser.name);
    }
    for (var j = 0; j < n; j++) {
      var cx = L + j * band + band / 2;
      add(svg, "text", {x: cx, y: T + ph + 12, "text-anchor": "end", "font-size": 11,
                        transform: "rotate(-50 " + cx + " " + (T + ph + 12) + ")"}, bars.labels[j]);
    }
    svg.setAttribute("aria-label", frame.title);
    root.querySelector(".llmlab-explorer-prefix").textContent = frame.prefix || "";
    root.querySelector(".llmlab-explorer-text").textContent =
      (textAt === null ? frame.text : frame.texts[textAt]) || "";
  }
  for (var i = 0; i < inputs.length; i++) inputs[i].addEventListener("input", draw);
  draw();
  root.setAttribute("data-ready", "true");
})();
"""


def explorer_html(controls: list[Control], frame: Callable[..., dict], title: str, note: str = "") -> str:
    """The HTML of a kernel-free panel: sliders, a bar chart and a line of text.

    ``frame(**values)`` is called once for every combination of the controls' values
    and returns ``{"title": str, "bars": {"labels": [...], "series": [{"name", "color",
    "values"}], "ylabel": str, "layout": "overlay" | "grouped" | "stacked", "ymax":
    float (optional: default, the largest value of all frames, so that moving a slider
    never rescales the axis)}, "prefix": str, "text": str}`` (``text`` is shown in bold
    after ``prefix``). A ``text_only`` control (at most one) is not part of the frames'
    combinations: for each of them ``frame`` is called once per value of that control, and
    only the texts are kept (``texts``, one per value). All frames are embedded in the page
    as JSON: keep the number of combinations in the hundreds.
    """
    if isinstance(controls, (str, Control)) or not isinstance(controls, (list, tuple)) or not all(
            isinstance(c, Control) for c in controls):
        raise TypeError(f"controls must be a list of widgets.Control, got {type(controls).__name__}")
    if not controls:
        raise ValueError("controls is empty: a panel needs at least one slider (a widgets.Control)")
    if not callable(frame):
        raise TypeError(f"frame must be a function of the controls' values that returns a frame dict, got "
                        f"{type(frame).__name__}")
    names = [c.name for c in controls]
    if len(set(names)) != len(names):
        raise ValueError(f"control names must be unique, got {names}")
    text_only = [c for c in controls if c.text_only]
    if len(text_only) > 1:
        raise ValueError(f"at most one control can be text_only, got {[c.name for c in text_only]}")
    charted = [c for c in controls if not c.text_only]
    if not charted:
        raise ValueError("every control is text_only: a panel needs at least one control that changes the chart")
    frames = {}
    for combo in itertools.product(*(range(len(c.values)) for c in charted)):
        values = {c.name: c.values[i] for c, i in zip(charted, combo)}
        if text_only:
            t = text_only[0]
            each = [frame(**values, **{t.name: v}) for v in t.values]
            first = dict(each[0])
            first.pop("text", None)
            frames[",".join(map(str, combo))] = {**first, "texts": [f.get("text", "") for f in each]}
        else:
            frames[",".join(map(str, combo))] = frame(**values)
    peak = max((max(max(s["values"]) for s in f["bars"]["series"]) if f["bars"].get("layout") != "stacked"
                else max(map(sum, zip(*(s["values"] for s in f["bars"]["series"])))) for f in frames.values()),
               default=1.0)
    for f in frames.values():
        f["bars"].setdefault("ymax", peak or 1.0)
        f["bars"].setdefault("layout", "overlay")
    data = {"controls": [{"name": c.name, "labels": c.labels, **({"text_only": True} if c.text_only else {})}
                         for c in controls], "frames": frames}
    payload = json.dumps(data, separators=(",", ":"), sort_keys=True)
    safe_payload = payload.replace("</", "<\\/")  # a "</script>" inside a string must not end the tag
    panel_id = "llmlab-explorer-" + hashlib.sha1((title + payload).encode()).hexdigest()[:12]
    sliders = "".join(
        f'<label style="margin-right:1.2em;white-space:nowrap">{html.escape(c.label)} '
        f'<input type="range" data-control="{html.escape(c.name)}" min="0" max="{len(c.values) - 1}" '
        f'step="1" value="{c.values.index(c.value)}" aria-label="{html.escape(c.label)}" style="vertical-align:middle"> '
        f'<output data-control="{html.escape(c.name)}" style="display:inline-block;min-width:2.5em"></output></label>'
        for c in controls)
    return (
        f'<div class="llmlab-explorer tex2jax_ignore mathjax_ignore" id="{panel_id}" '
        f'data-frames="{len(frames)}" style="border:1px solid #cbd5e0;border-radius:6px;padding:0.6em;max-width:720px">'
        f'<div style="font-weight:bold;margin-bottom:0.3em">{html.escape(title)}</div>'
        f'<div class="llmlab-explorer-controls">{sliders}</div>'
        f'<svg class="llmlab-explorer-chart" role="img" viewBox="0 0 680 330" width="100%" '
        f'style="max-width:680px;font-family:sans-serif"></svg>'
        f'<p style="font-family:monospace;font-size:0.9em;margin:0.3em 0"><span class="llmlab-explorer-prefix"></span>'
        f'<b class="llmlab-explorer-text"></b></p>'
        + (f'<p class="llmlab-explorer-note" style="font-size:0.85em;color:#4a5568;margin:0.3em 0 0">{html.escape(note)}</p>' if note else "")
        + f'<script type="application/json" class="llmlab-explorer-data">{safe_payload}</script>'
        f'<script>{_EXPLORER_SCRIPT % {"id": panel_id}}</script></div>'
    )


def static_explorer(controls: list[Control], frame: Callable[..., dict], title: str, note: str = ""):
    """Display :func:`explorer_html` (an ``IPython.display.HTML`` object, shown when it is a cell's last value)."""
    from IPython.display import HTML

    return HTML(explorer_html(controls, frame, title, note))


PLAYGROUND_GRID = dict(
    temperature=[0.5, 1.0, 1.5, 2.0],
    top_k=[0, 10, 50],
    top_p=[0.9, 1.0],
    min_p=[0.0, 0.1],
)
PLAYGROUND_PROMPT = "The old lighthouse keeper opened the door and saw"
PLAYGROUND_NEW_TOKENS = 48
#: the static panel's "max new tokens" slider: each length is the first tokens of the longest
#: continuation, which is what sampling with that limit and the same seed draws
PLAYGROUND_LENGTHS = [6, 12, 24, 48]


def playground_frame(model, tokenizer, prompt: str, max_new_tokens: int, seed: int, temperature: float,
                     top_k: int, top_p: float, min_p: float = 0.0) -> dict:
    """One frame of the kernel-free playground: the next-token chart and a sampled continuation."""
    _check_model_prompt(model, tokenizer, prompt)
    dist = next_token(model, tokenizer, prompt, temperature, top_k, top_p, min_p=min_p)
    text = sample_text(model, tokenizer, prompt, max_new_tokens, temperature, top_k, top_p, seed, min_p)
    return {
        "title": _title(temperature, top_k, top_p, dist.kept, dist.vocab_size, min_p),
        "bars": {"labels": dist.labels, "ylabel": "probability", "layout": "overlay", "ymax": 1.0,
                 "series": [{"name": "before filtering (T = 1)", "color": plot.REMOVED,
                             "values": [round(v, 4) for v in dist.before]},
                            {"name": "after temperature, top-k, top-p, min-p", "color": plot.KEPT,
                             "values": [round(v, 4) for v in dist.after]}]},
        "prefix": prompt, "text": text,
    }


def _frame_key(values: dict) -> str:
    return json.dumps({k: values[k] for k in sorted(values)}, sort_keys=True)


def playground_frames(model, tokenizer, prompt: str, max_new_tokens: int = PLAYGROUND_NEW_TOKENS, seed: int = 0,
                      grid: dict[str, list] | None = None, lengths: list[int] | None = None) -> dict:
    """Every frame of the playground for ``grid`` (default :data:`PLAYGROUND_GRID`):
    ``{"prompt", "max_new_tokens", "seed", "grid", "lengths", "frames": {key: frame}}``,
    JSON-ready.

    The same frames as :func:`playground_frame`, but all the continuations are drawn
    in one batch (:func:`llmlab.sampling.generate_settings`, one row per combination),
    which on a CPU is many times faster than one call per frame. Each frame also keeps
    ``texts``: the continuation cut to each of ``lengths`` new tokens (default
    :data:`PLAYGROUND_LENGTHS` up to ``max_new_tokens``, and ``max_new_tokens``). Sampling
    is causal, so the first n tokens are exactly what sampling n tokens with the same seed
    gives."""
    from .sampling import generate_settings

    _checks.non_negative_int("max_new_tokens", max_new_tokens)
    _checks.non_negative_int("seed", seed)
    if lengths is None:
        lengths = sorted({n for n in PLAYGROUND_LENGTHS if n < max_new_tokens} | {max_new_tokens})
    if isinstance(lengths, (str, bytes)) or not isinstance(lengths, (list, tuple)) or not lengths:
        raise _checks.ArgumentTypeError(f"lengths must be a non-empty list of token counts, got {lengths!r:.80}")
    lengths = [_checks.positive_int("lengths[i]", n) for n in lengths]
    if max(lengths) > max_new_tokens:
        raise ValueError(f"lengths must not exceed max_new_tokens={max_new_tokens}, got {lengths}")
    if grid is not None and (not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values())):
        raise _checks.ArgumentTypeError(f"grid must be a dict of setting -> non-empty list of values, or None, got "
                                        f"{grid!r:.80}")
    _check_model_prompt(model, tokenizer, prompt)
    grid = grid or PLAYGROUND_GRID
    combos = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]
    enc = tokenizer(prompt, return_tensors="pt")
    settings = [{"name": _frame_key(c), "method": "sample", **c} for c in combos]
    with torch.inference_mode():
        texts = generate_settings(model, enc["input_ids"], enc["attention_mask"], settings, max_new_tokens,
                                  tokenizer.eos_token_id, samples=1, seed=seed)
        logits = model(input_ids=enc["input_ids"].to(model.device)).logits[:, -1, :].float()  # (1, V)
        frames = {}
        for values, rows in zip(combos, texts):
            dist = _next_token(logits, tokenizer, values["temperature"], values["top_k"], values["top_p"], 15,
                               values.get("min_p", 0.0))
            frames[_frame_key(values)] = {
                "title": _title(values["temperature"], values["top_k"], values["top_p"], dist.kept,
                                dist.vocab_size, values.get("min_p", 0.0)),
                "bars": {"labels": dist.labels, "ylabel": "probability", "layout": "overlay", "ymax": 1.0,
                         "series": [{"name": "before filtering (T = 1)", "color": plot.REMOVED,
                                     "values": [round(v, 4) for v in dist.before]},
                                    {"name": "after temperature, top-k, top-p, min-p", "color": plot.KEPT,
                                     "values": [round(v, 4) for v in dist.after]}]},
                "prefix": prompt, "text": tokenizer.decode(rows[0], skip_special_tokens=True),
                "texts": {str(n): tokenizer.decode(rows[0][:n], skip_special_tokens=True) for n in lengths},
            }
    return {"prompt": prompt, "max_new_tokens": max_new_tokens, "seed": seed, "grid": grid, "lengths": lengths,
            "frames": frames}


def static_sampling_playground(model, tokenizer=None, prompt: str | None = None, max_new_tokens: int = 30,
                               seed: int = 0, grid: dict[str, list] | None = None):
    """The sampling playground without a kernel: the next-token distribution and a sampled
    continuation of ``prompt`` (seed ``seed``) for every combination of the slider values
    in ``grid`` (default :data:`PLAYGROUND_GRID`).

    ``model`` is either a model (with ``tokenizer`` and ``prompt``: the frames are
    computed now) or a record from :func:`playground_frames` / :func:`llmlab.records.sampling_playground.load`
    (the frames were computed in advance, for a model too slow to run them here).
    """
    if isinstance(model, dict):
        record = model
        missing = [k for k in ("grid", "prompt", "seed", "frames") if k not in record]
        if missing:
            raise ValueError(f"a frames record needs the keys grid, prompt, seed and frames (what playground_frames "
                             f"returns), this one lacks {missing}")
        grid, prompt, seed = record["grid"], record["prompt"], record["seed"]
        name = record.get("model", "the model")
        lengths = record.get("lengths", [])

        def frame(max_new_tokens=None, **values) -> dict:
            f = record["frames"][_frame_key(values)]
            return f if max_new_tokens is None else {**f, "text": f["texts"][str(max_new_tokens)]}
    else:
        if tokenizer is None or prompt is None:
            raise TypeError("static_sampling_playground needs (model, tokenizer, prompt) or a frames record")
        grid = grid or PLAYGROUND_GRID
        name = getattr(getattr(model, "config", None), "name_or_path", "") or "the model"
        lengths = []

        def frame(**values) -> dict:
            return playground_frame(model, tokenizer, prompt, max_new_tokens, seed, **values)

    controls = []
    for key, label in (("temperature", "temperature"), ("top_k", "top-k"), ("top_p", "top-p"),
                       ("min_p", "min-p")):
        if key not in grid:
            continue
        values = grid[key]
        start = {"temperature": 1.0, "top_p": 1.0}.get(key)
        labels = [str(k) if k else "off" for k in values] if key == "top_k" else (
            [f"{v:g}" if v else "off" for v in values] if key == "min_p" else [])
        controls.append(Control(key, label, values, value=start if start in values else None, labels=labels))
    if lengths:
        controls.append(Control("max_new_tokens", "max new tokens", list(lengths), value=max(lengths),
                                text_only=True))

    n = len(list(itertools.product(*grid.values()))) * max(1, len(lengths))
    cut = (" A shorter length shows the first tokens of the longest continuation: sampling is causal, so that "
           "is what the same seed draws with that limit.") if lengths else ""
    note = (f"Runs without a kernel: the chart and the sampled text were computed in advance ({name}) for "
            f"all {n} combinations of these slider values (prompt and seed {seed} fixed).{cut} For any value, "
            "any prompt and other seeds, run the live playground: open this chapter in Colab or SageMaker "
            "Studio Lab (links at the top of the page).")
    return static_explorer(controls, frame, title=f"Sampling playground, prompt {prompt!r}", note=note)


# ------------------------------------------------------------------ chapter 8: what a compute budget buys


def draw_budget(ax, plan: BudgetPlan, tokens_per_param: float = CHINCHILLA_TOKENS_PER_PARAM) -> None:
    """Parameters against tokens (log-log): IsoFLOP lines, the compute-optimal line, the landmarks and ``plan``."""
    if not isinstance(plan, BudgetPlan):
        raise TypeError(f"plan must be a scaling.BudgetPlan (from scaling.plan_budget), got {type(plan).__name__}")
    n = np.logspace(7, 12.5, 50)
    for c in (1e19, 1e21, 1e23, 1e25):
        ax.plot(n, c / (6 * n), color="#cbd5e0", lw=0.8)
        x = min(2e12, c / (6 * 2e8))  # where the line leaves the bottom of the axes, or the right edge
        ax.text(x, c / (6 * x), f"{c:.0e} FLOPs", fontsize=7, color="#718096", va="bottom", ha="right")
    ax.plot(n, tokens_per_param * n, color="#2b6cb0", lw=1.5, label=f"compute-optimal, {tokens_per_param:g} tokens/param")
    for name, (p, t) in LANDMARKS.items():
        ax.plot(p, t, "o", color="#718096")
        offset = {"Chinchilla": (-60, 6), "LLaMA-65B": (6, -2), "BloombergGPT": (-78, -4)}.get(name, (6, 2))
        ax.annotate(name, (p, t), textcoords="offset points", xytext=offset, fontsize=8)
    ax.plot(plan.n_params, plan.n_tokens, "*", color="#c53030", ms=14, label="your budget")
    ax.set(xscale="log", yscale="log", xlim=(1e7, 3e12), ylim=(1e8, 1e14), xlabel="parameters N",
           ylabel="training tokens D", title=f"{plan.compute_flops:.1g} FLOPs buys {plan.n_params / 1e9:.3g}B "
                                            f"parameters on {plan.n_tokens / 1e9:.3g}B tokens")
    ax.legend(loc="upper left", fontsize=8)


def budget_slider():
    """A live compute-budget panel (ipywidgets; needs a kernel): budget in FLOPs or GPU-hours in;
    compute-optimal parameters, tokens, predicted loss and training days out, with the landmarks marked."""
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    budget = w.FloatSlider(value=23, min=18, max=26, step=0.1, description="log10 budget", readout_format=".1f")
    unit = w.ToggleButtons(options=["FLOPs", "GPU-hours"], value="FLOPs", description="budget in")
    gpus = w.IntSlider(value=1024, min=8, max=8192, step=8, description="GPUs")
    tflops = w.FloatSlider(value=150, min=30, max=400, step=10, description="TFLOP/s/GPU")
    ratio = w.FloatSlider(value=20, min=1, max=100, step=1, description="tokens/param")
    text, out = w.HTML(), w.Output()

    def update(*_):
        c = 10 ** budget.value
        if unit.value == "GPU-hours":
            c = gpu_hours_to_flops(c, tflops.value * 1e12)
        plan = plan_budget(c, gpus.value, tflops.value * 1e12, ratio.value)
        text.value = f"<code>{plan}</code>"
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(7, 4.5))
            draw_budget(ax, plan, ratio.value)
            plt.show()

    for control in (budget, unit, gpus, tflops, ratio):
        control.observe(update, names="value")
    update()
    display(w.VBox([w.HBox([budget, unit]), w.HBox([gpus, tflops, ratio]), text, out]))


STATIC_BUDGETS = [float(f"{m}e{e}") for e in range(19, 25) for m in (1, 3)] + [1e25]
STATIC_GPUS = [64, 512, 1024, 4096]
STATIC_TFLOPS = [100, 150, 200]


def static_budget_slider():
    """The compute-budget panel without a kernel (:func:`static_explorer`): one frame per
    (budget, GPUs, per-GPU throughput); bars compare the plan with GPT-3, Chinchilla, LLaMA-65B and BloombergGPT."""
    controls = [
        Control("budget", "budget (FLOPs)", STATIC_BUDGETS, value=1e23, labels=[f"{c:.0e}" for c in STATIC_BUDGETS]),
        Control("gpus", "GPUs", STATIC_GPUS, value=1024),
        Control("tflops", "TFLOP/s per GPU", STATIC_TFLOPS, value=150),
    ]
    names = list(LANDMARKS)

    def frame(budget: float, gpus: int, tflops: int) -> dict:
        plan = plan_budget(budget, gpus, tflops * 1e12)
        params = [plan.n_params] + [LANDMARKS[k][0] for k in names]
        tokens = [plan.n_tokens] + [LANDMARKS[k][1] for k in names]
        return {
            "title": f"{budget:.0e} FLOPs: {plan.n_params / 1e9:.3g}B parameters, {plan.n_tokens / 1e9:.3g}B tokens, "
                     f"{plan.days:,.3g} days",
            "bars": {"labels": ["your budget"] + names, "ylabel": "log10 of the count", "layout": "grouped",
                     "ymax": 14.0,
                     "series": [{"name": "parameters (log10)", "color": "#2b6cb0",
                                 "values": [round(math.log10(v), 3) for v in params]},
                                {"name": "training tokens (log10)", "color": "#dd6b20",
                                 "values": [round(math.log10(v), 3) for v in tokens]}]},
            "prefix": f"{gpus} GPUs at {tflops} TFLOP/s each, 20 tokens per parameter: ",
            "text": str(plan),
        }

    n = len(STATIC_BUDGETS) * len(STATIC_GPUS) * len(STATIC_TFLOPS)
    note = (f"Runs without a kernel: all {n} frames were computed in advance by llmlab.scaling.plan_budget "
            "(Chinchilla's 20 tokens per parameter, their fitted loss, 8 T P / (n X) training days). "
            "For budgets in GPU-hours and other ratios, run the live panel above in Colab or Studio Lab.")
    return static_explorer(controls, frame, title="What a compute budget buys", note=note)

# ------------------------------------------------------------------ chapter 7: the explorers
# Their figures are llmlab.distributed.explorer's (the memory calculator's code); these are the panels.

def static_parallelism_explorer():
    """Tensor x pipeline x data parallelism without a kernel: per-GPU memory and the bubble precomputed for
    every slider position (4 models x 2 GPU counts x 4 TP x 4 PP degrees x 3 micro-batch counts = 384)."""
    controls = [
        Control("model", "model", list(EXPLORER_MODELS), value="175B"),
        Control("n_gpus", "GPUs", [64, 512], value=512),
        Control("tensor_parallel", "tensor parallel", list(EXPLORER_TP), value=8),
        Control("pipeline_parallel", "pipeline stages", list(EXPLORER_PP), value=8),
        Control("microbatches", "micro-batches", list(EXPLORER_MICROBATCHES), value=16),
    ]
    n = math.prod(len(c.values) for c in controls)
    note = (f"Runs without a kernel: all {n} combinations were computed in advance with llmlab.memory "
            "(mixed-precision Adam, ZeRO-1 over the data-parallel copies, sequence 2048, one sequence per "
            "micro-batch, selective activation recomputation, 1F1B).")
    return static_explorer(controls, _parallel_frame, title="3-D parallelism explorer: memory per GPU and bubble",
                           note=note)


def static_sharding_explorer():
    """The sharding explorer without a kernel: per-GPU memory precomputed for every slider position
    (4 models x 3 GPU counts x 3 sharding factors x 3 ZeRO stages x 2 precisions x 2 offload = 432)."""
    controls = [
        Control("model", "model", list(EXPLORER_MODELS), value="13B"),
        Control("n_gpus", "GPUs", list(EXPLORER_GPUS)),
        Control("sharding_factor", "sharding factor", list(EXPLORER_SHARDING), value=8,
                labels=["1 (DDP)", "8 (a node)", "all"]),
        Control("zero_stage", "ZeRO stage", [1, 2, 3], value=3),
        Control("precision", "precision", list(EXPLORER_PRECISIONS)),
        Control("offload", "CPU offload", [False, True], labels=["off", "on"]),
    ]
    n = math.prod(len(c.values) for c in controls)
    note = (f"Runs without a kernel: all {n} combinations were computed in advance with llmlab.memory "
            "(Adam, sequence 2048, one sequence per GPU, activation checkpointing). Other values: run the "
            "live explorer (Colab or Studio Lab links at the top of the page).")
    return static_explorer(controls, _frame, title="Sharding explorer: memory per GPU", note=note)


def sharding_explorer():
    """The live explorer (ipywidgets; needs a kernel): any power-of-two GPU count up to 1024, tensor-
    and pipeline-parallel degrees, micro-batches, any sharding factor dividing the data-parallel
    degree, ZeRO stage, precision, offload, sequence length, micro-batch size and activation
    recomputation. Per-GPU bars and the pipeline bubble, all from :func:`explorer_memory`."""
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    gpus = w.SelectionSlider(options=[2 ** k for k in range(11)], value=64, description="GPUs")
    factor = w.SelectionSlider(options=[2 ** k for k in range(7)], value=8, description="sharding factor")
    tp = w.SelectionSlider(options=list(EXPLORER_TP), value=1, description="tensor parallel")
    pp = w.SelectionSlider(options=list(EXPLORER_PP), value=1, description="pipeline stages")
    # sliders only: their saved views render in the static HTML without extra icon fonts
    controls = dict(
        model=w.SelectionSlider(options=list(EXPLORER_MODELS), value="13B", description="model"),
        n_gpus=gpus, sharding_factor=factor, tensor_parallel=tp, pipeline_parallel=pp,
        microbatches=w.SelectionSlider(options=[1, 2, 4, 8, 16, 32, 64], value=16, description="micro-batches"),
        zero_stage=w.IntSlider(value=3, min=0, max=3, description="ZeRO stage"),
        precision=w.SelectionSlider(options=list(memory.PRECISIONS), value="mixed", description="precision"),
        offload=w.SelectionSlider(options=[("off", False), ("on", True)], value=False, description="CPU offload"),
        seq_len=w.SelectionSlider(options=[512, 1024, 2048, 4096, 8192], value=2048, description="sequence"),
        micro_batch=w.IntSlider(value=1, min=1, max=16, description="micro-batch"),
        activations=w.SelectionSlider(options=[("checkpoint", "full_recompute"), ("selective", "selective")],
                                      value="full_recompute", description="activations"),
    )

    def follow(change):  # the sharding factor: the divisors of the data-parallel degree d = N / (t·p)
        d = max(1, gpus.value // (tp.value * pp.value))
        options = [2 ** k for k in range(int(math.log2(d)) + 1)]
        factor.value = min(factor.value, options[-1])
        factor.options = options

    for slider in (gpus, tp, pp):
        slider.observe(follow, names="value")
    out = w.Output()

    def redraw(**kw):
        with out:
            out.clear_output(wait=True)
            t, p = kw["tensor_parallel"], kw["pipeline_parallel"]
            if kw["n_gpus"] % (t * p):
                print(f"tensor parallel x pipeline stages ({t} x {p}) must divide the GPUs ({kw['n_gpus']})")
                return
            try:
                m, f = explorer_memory(**kw)
            except ValueError as err:
                print(err)
                return
            bubble = memory.bubble_fraction(p, kw["microbatches"])
            fig, ax = plt.subplots(figsize=(6, 3.6))
            bottom = 0.0
            for name, v in (("parameters", m.params), ("gradients", m.grads), ("optimizer states", m.optimizer),
                            ("activations", m.activations)):
                ax.bar(["one GPU"], [v / 1e9], bottom=bottom, color=_COLORS[name], label=name)
                bottom += v / 1e9
            ax.axhline(GPU_BYTES / 1e9, color="k", ls="--", label=f"{GPU_BYTES / 1e9:.0f} GB GPU")
            ax.set_ylabel("GB per GPU")
            fits = "fits" if m.total <= GPU_BYTES else "does NOT fit"
            d = kw["n_gpus"] // (t * p)
            ax.set_title(f"{kw['model']}, {kw['n_gpus']} GPUs = TP {t} x PP {p} x DP {d} (sharding {f}): "
                         f"{m.total / 1e9:,.1f} GB, {fits}; bubble {bubble:.0%}", fontsize=9)
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1, 1))
            plt.show()

    w.interactive_output(redraw, controls)
    panel = w.VBox([w.HBox([controls["model"], controls["precision"], controls["offload"]]),
                    w.HBox([gpus, tp, pp]), w.HBox([factor, controls["zero_stage"], controls["microbatches"]]),
                    w.HBox([controls["seq_len"], controls["micro_batch"], controls["activations"]]), out])
    display(panel)
    return panel
