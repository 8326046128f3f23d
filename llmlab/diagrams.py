"""Box diagrams of model architectures, drawn with matplotlib (chapter 2).

:func:`decoder_stack` names the boxes of a pre-norm decoder from the bottom up
(token ids to logits); :func:`draw_decoder` draws them as a column of labelled
boxes, with the repeated block framed and its two residual connections drawn as
arrows that skip past the sublayer they wrap.
"""

from __future__ import annotations

from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

#: the kinds of box, and their fill colours
COLOURS = {"io": "#edf2f7", "norm": "#fefcbf", "attention": "#bee3f8", "mlp": "#c6f6d5",
           "add": "#ffffff", "embed": "#e9d8fd"}


def _name(arg: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"{arg} must be a non-empty string, got {value!r}")
    return value


def decoder_stack(norm: str = "LayerNorm", mlp: str = "MLP (GELU)",
                  positions: str = "+ learned positions",
                  output: str = "output projection (tied)") -> list[tuple[str, str, bool]]:
    """The boxes of a pre-norm decoder, bottom to top: ``(label, kind, inside_block)``.

    Token ids, embedding (with ``positions``), then one block (norm, causal
    self-attention, residual add, norm, ``mlp``, residual add) that repeats N
    times, then the final norm, the ``output`` projection and the softmax. The
    defaults describe GPT-2; a Llama-style model passes ``norm="RMSNorm"``,
    ``mlp="SwiGLU"`` and ``positions="(RoPE inside attention)"``.
    """
    norm, mlp = _name("norm", norm), _name("mlp", mlp)
    positions, output = _name("positions", positions), _name("output", output)
    return [("token ids (B, T)", "io", False),
            (f"token embedding {positions}", "embed", False),
            (norm, "norm", True),
            ("causal self-attention", "attention", True),
            ("+ residual", "add", True),
            (norm, "norm", True),
            (mlp, "mlp", True),
            ("+ residual", "add", True),
            (f"final {norm}", "norm", False),
            (output, "embed", False),
            ("softmax: P(next token)", "io", False)]


def draw_decoder(ax, boxes: list[tuple[str, str, bool]], n_layers: int, title: str = "") -> list[str]:
    """Draw ``boxes`` from :func:`decoder_stack` on ``ax`` as a column; returns the labels drawn.

    The block's boxes are framed and marked "x ``n_layers``"; each "+ residual"
    box gets an arrow from the input of the sublayer it closes (the residual
    stream). Axis units are arbitrary, so the axes are hidden.
    """
    if not hasattr(ax, "add_patch"):
        raise TypeError(f"ax must be a matplotlib Axes, got {type(ax).__name__}")
    if not isinstance(boxes, list) or not boxes or not all(
            isinstance(b, tuple) and len(b) == 3 and isinstance(b[0], str) and b[1] in COLOURS
            for b in boxes):
        raise ValueError(f"boxes must be a non-empty list of (label, kind, inside_block) with kind "
                         f"in {sorted(COLOURS)}, as decoder_stack returns")
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 1:
        raise ValueError(f"n_layers must be a positive integer, got {n_layers!r}")
    step, height, width = 1.0, 0.62, 4.8  # box pitch and size, in axis units
    centres = []
    for i, (label, kind, _) in enumerate(boxes):
        y = i * step
        centres.append(y)
        ax.add_patch(FancyBboxPatch((-width / 2, y - height / 2), width, height,
                                    boxstyle="round,pad=0.02", fc=COLOURS[kind], ec="#4a5568"))
        ax.text(0, y, label, ha="center", va="center", fontsize=9)
        if i:
            ax.annotate("", (0, y - height / 2), (0, centres[i - 1] + height / 2),
                        arrowprops=dict(arrowstyle="->", color="#4a5568"))
    inside = [i for i, b in enumerate(boxes) if b[2]]
    if inside:
        lo, hi = centres[inside[0]] - 0.45, centres[inside[-1]] + 0.45
        ax.add_patch(Rectangle((-width / 2 - 0.5, lo), width + 1.0, hi - lo, fill=False,
                               ls="--", ec="#718096"))
        ax.text(width / 2 + 0.6, (lo + hi) / 2, f"x {n_layers}", fontsize=11, va="center")
        sublayer_start = inside[0]
        for i in inside:
            if boxes[i][1] == "add":  # skip from below the sublayer's norm to this add
                y0 = centres[sublayer_start] - step / 2
                ax.add_patch(FancyArrowPatch((-width / 2, y0), (-width / 2, centres[i]),
                                             connectionstyle="arc3,rad=-0.5", arrowstyle="->",
                                             color="#c05621", mutation_scale=10))
                sublayer_start = i + 1
    ax.set_xlim(-width / 2 - 1.4, width / 2 + 1.4)
    ax.set_ylim(-0.6, centres[-1] + 0.6)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return [b[0] for b in boxes]
