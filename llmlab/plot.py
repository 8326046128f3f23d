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
    """Apply the book's matplotlib style (call once per notebook)."""
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


def token_label(token: str) -> str:
    """A readable label for a byte-level BPE token: 'Ġ' (a leading space) shown as '␣', newlines as '⏎'."""
    return token.replace("Ġ", "␣").replace("Ċ", "⏎").replace("<|endoftext|>", "<eos>")


def draw_distribution(ax, labels: list[str], before: list[float], after: list[float], title: str = "") -> None:
    """Bars of the probabilities ``before`` a filter (grey) and ``after`` it (blue), per token label."""
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
    plt.close(fig)
