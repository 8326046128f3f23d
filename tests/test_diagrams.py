"""The architecture diagrams of chapter 2 draw the boxes they are given, in order."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from llmlab import diagrams  # noqa: E402


def test_decoder_stack_is_pre_norm_with_two_residuals_per_block():
    boxes = diagrams.decoder_stack()
    block = [label for label, _, inside in boxes if inside]
    assert block == ["LayerNorm", "causal self-attention", "+ residual",
                     "LayerNorm", "MLP (GELU)", "+ residual"]
    assert boxes[0][0].startswith("token ids") and boxes[-1][0].startswith("softmax")


def test_llama_names_replace_the_gpt2_ones():
    boxes = diagrams.decoder_stack(norm="RMSNorm", mlp="SwiGLU")
    labels = [label for label, _, _ in boxes]
    assert "SwiGLU" in labels and "final RMSNorm" in labels and "LayerNorm" not in labels


def test_draw_decoder_draws_every_box_and_the_layer_count():
    fig, ax = plt.subplots()
    boxes = diagrams.decoder_stack()
    drawn = diagrams.draw_decoder(ax, boxes, n_layers=4, title="GPT-2")
    texts = [t.get_text() for t in ax.texts]
    assert drawn == [b[0] for b in boxes]
    assert all(label in texts for label in drawn) and "x 4" in texts
    assert not ax.axison
    plt.close(fig)


@pytest.mark.parametrize("n_layers", [0, 2.0, True])
def test_draw_decoder_refuses_a_bad_layer_count(n_layers):
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="n_layers"):
        diagrams.draw_decoder(ax, diagrams.decoder_stack(), n_layers)
    plt.close(fig)
