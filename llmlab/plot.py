"""Shared figure style and small drawing helpers (every chapter).

Every figure in the book states its finding in the title and labels its axes
with units; these helpers keep that uniform.
"""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt

KEPT = "#2b6cb0"      # tokens a filter keeps
REMOVED = "#cbd5e0"   # tokens a filter removes
ACCENT = "#c05621"


def use_style() -> None:
    """Apply the book's matplotlib style (call once per notebook).

    In a notebook it also records each shown figure's axis labels in the output's
    metadata (:func:`record_labels`), which the book's tests check.
    """
    mpl.rcParams.update({
        "figure.figsize": (7.0, 3.6),
        "figure.dpi": 100,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.titlesize": 11,
        "axes.titleweight": "bold",
        "font.size": 10,
        "legend.frameon": False,
    })
    record_labels()


def token_label(token: str) -> str:
    """A readable label for a byte-level BPE token: 'Ġ' (a leading space) shown as '␣', newlines as '⏎'."""
    if not isinstance(token, str):
        raise TypeError(f"token must be a str (from tokenizer.convert_ids_to_tokens), got {type(token).__name__}")
    return token.replace("Ġ", "␣").replace("Ċ", "⏎").replace("<|endoftext|>", "<eos>")


def draw_distribution(ax, labels: list[str], before: list[float], after: list[float], title: str = "") -> None:
    """Bars of the probabilities ``before`` a filter (grey) and ``after`` it (blue), per token label."""
    if not hasattr(ax, "bar"):
        raise TypeError(f"ax must be a matplotlib Axes, got {type(ax).__name__}")
    for name, value in (("labels", labels), ("before", before), ("after", after)):
        if isinstance(value, str) or not hasattr(value, "__len__"):
            raise TypeError(f"{name} must be a list (one entry per token), got {type(value).__name__}")
    if not len(labels) == len(before) == len(after):
        raise ValueError(f"labels, before and after must have one entry per token each, got lengths "
                         f"{len(labels)}, {len(before)} and {len(after)}")
    xs = range(len(labels))
    ax.bar(xs, before, color=REMOVED, label="before filtering (T = 1)")
    ax.bar(xs, after, color=KEPT, width=0.5, label="after temperature, top-k, top-p")
    ax.set_xticks(list(xs), labels, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1)
    if title:
        ax.set_title(title)
    ax.grid(axis="x", visible=False)


def close(fig) -> None:
    """Close a figure after it has been shown, so notebooks do not keep hundreds open."""
    if not isinstance(fig, plt.Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    plt.close(fig)


# ------------------------------------------------------- axis labels, recorded with each figure

LABELS_KEY = "llmlab"   # key of the record in a PNG output's metadata (notebook ``outputs[i].metadata``)


def _is_colorbar(ax) -> bool:
    return getattr(ax, "_colorbar", None) is not None


def _shows_ticks(axis) -> bool:
    """True when an axis is drawn with at least one tick label that has text (so it needs a name)."""
    return axis.get_visible() and any(t.get_visible() and t.get_text().strip()
                                      for t in axis.get_ticklabels())


def _is_heatmap(ax) -> bool:
    from matplotlib.collections import QuadMesh

    return bool(ax.images) or any(isinstance(c, QuadMesh) for c in ax.collections)


def figure_labels(fig) -> dict:
    """What a figure names: per drawn axes its title, axis labels and whether it needs them.

    Returned as a JSON-ready dict ``{"axes": [...], "colorbars": [...], "supxlabel": ...,
    "supylabel": ..., "suptitle": ...}``; :func:`use_style` stores it in the metadata of
    every figure a notebook shows, so the book's tests can check the stored notebooks
    (see :func:`label_problems`). Call it after the figure is drawn (tick texts are
    only known then); axes turned off (``ax.axis("off")``, diagrams) are left out.
    """
    if not isinstance(fig, plt.Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")

    def text(t):
        return t.get_text().strip() if t is not None else ""

    axes, colorbars = [], []
    for ax in fig.axes:
        if _is_colorbar(ax):
            colorbars.append({"label": ax.get_ylabel().strip() or ax.get_xlabel().strip()})
            continue
        if not ax.axison or not ax.get_visible():
            continue
        axes.append({"title": ax.get_title().strip() or ax.get_title(loc="left").strip(),
                     "xlabel": ax.get_xlabel().strip(), "ylabel": ax.get_ylabel().strip(),
                     "x_ticks": _shows_ticks(ax.xaxis), "y_ticks": _shows_ticks(ax.yaxis),
                     "heatmap": _is_heatmap(ax)})
    return {"axes": axes, "colorbars": colorbars, "supxlabel": text(getattr(fig, "_supxlabel", None)),
            "supylabel": text(getattr(fig, "_supylabel", None)), "suptitle": text(getattr(fig, "_suptitle", None))}


def label_problems(labels: dict | None) -> list[str]:
    """What a reader cannot tell from a figure, from its :func:`figure_labels` record; [] when all is named.

    Every drawn axis with tick labels needs a name (its own label, or the figure's
    ``supxlabel``/``supylabel`` for a grid); a heatmap needs both axis names even
    without ticks, and a labelled colour bar. ``None`` (a figure shown without the
    record, i.e. not after :func:`use_style`) is a problem too.
    """
    if labels is None:
        return ["no axis-label record: call llmlab.plot.use_style() before drawing"]
    if not isinstance(labels, dict) or not isinstance(labels.get("axes"), list):
        raise TypeError(f"labels must be the dict figure_labels returns (with an 'axes' list) or None, got "
                        f"{type(labels).__name__}")
    out = []
    for i, ax in enumerate(labels["axes"]):
        name = f"axes {i + 1}" + (f" ({ax['title'][:40]!r})" if ax["title"] else "")
        for axis in ("x", "y"):
            named = ax[f"{axis}label"] or labels[f"sup{axis}label"]
            if not named and (ax[f"{axis}_ticks"] or ax["heatmap"]):
                out.append(f"{name}: the {axis} axis has no label")
        if ax["heatmap"] and not labels["colorbars"]:
            out.append(f"{name}: a heatmap without a colour bar")
    out += [f"colour bar {i + 1} has no label" for i, bar in enumerate(labels["colorbars"]) if not bar["label"]]
    return out


def _png_with_labels(fig, _inner):
    data = _inner(fig)
    if data is None:  # an empty figure: nothing is shown
        return None
    metadata = {}
    if isinstance(data, tuple):
        data, metadata = data
    return data, {**(metadata or {}), LABELS_KEY: figure_labels(fig)}


def record_labels() -> bool:
    """Store :func:`figure_labels` with every PNG figure the running IPython kernel shows.

    Wraps the kernel's PNG formatter for matplotlib figures (the inline backend's
    ``print_figure``), so the record rides along in the output's metadata and the
    image is unchanged. Returns False outside IPython (nothing to do) or before the
    inline backend has registered a PNG formatter.
    """
    import functools

    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    from matplotlib.figure import Figure

    formatter = shell.display_formatter.formatters["image/png"]
    if Figure not in formatter.type_printers and mpl.get_backend() in (
            "inline", "module://matplotlib_inline.backend_inline"):
        # the inline backend registers its formatters when it is first imported, which
        # pyplot otherwise does at the first figure (too late to wrap them here)
        import importlib

        importlib.import_module("matplotlib_inline.backend_inline")
    try:
        inner = formatter.lookup_by_type(Figure)
    except KeyError:
        return False
    if getattr(inner, "func", None) is _png_with_labels:
        return True
    formatter.for_type(Figure, functools.partial(_png_with_labels, _inner=inner))
    return True
