"""Interactive panels for the notebooks (chapter 5: the sampling playground).

Widgets need a running kernel. The static HTML book shows
:func:`playground_snapshot` instead: the same drawing for a few fixed settings,
labelled as a static rendering, next to the launch buttons that open the live one.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch

from . import plot
from .sampling import filter_logits, generate


@dataclass
class NextToken:
    """The next-token distribution of a prompt, before and after filtering (top ``n`` tokens by probability)."""

    labels: list[str]
    before: list[float]
    after: list[float]
    kept: int          # tokens with non-zero probability after filtering (whole vocabulary)
    vocab_size: int


@torch.no_grad()
def next_token(model, tokenizer, prompt: str, temperature: float = 1.0, top_k: int = 0,
               top_p: float = 1.0, n: int = 15) -> NextToken:
    """Probabilities of the ``n`` most likely next tokens at T = 1 and after the filters."""
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"].to(model.device)
    logits = model(input_ids=ids).logits[:, -1, :].float()  # (1, V)
    before = torch.softmax(logits, dim=-1)[0]
    after = torch.softmax(filter_logits(logits, temperature, top_k, top_p), dim=-1)[0]
    order = torch.argsort(before, descending=True)[:n].tolist()
    labels = [plot.token_label(t) for t in tokenizer.convert_ids_to_tokens(order)]
    return NextToken(labels, before[order].tolist(), after[order].tolist(),
                     kept=int((after > 0).sum()), vocab_size=logits.size(-1))


def sample_text(model, tokenizer, prompt: str, max_new_tokens: int, temperature: float, top_k: int,
                top_p: float, seed: int = 0) -> str:
    """One sampled continuation of ``prompt`` (stops at the end-of-text token)."""
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    out = generate(model, ids, max_new_tokens=max_new_tokens, do_sample=True, temperature=temperature,
                   top_k=top_k, top_p=top_p, stop_token_id=tokenizer.eos_token_id,
                   generator=torch.Generator(device=model.device).manual_seed(seed))
    return tokenizer.decode(out[0, ids.size(1):], skip_special_tokens=True)


def _title(temperature: float, top_k: int, top_p: float, kept: int, vocab: int) -> str:
    return f"T={temperature:g}, top-k={top_k or 'off'}, top-p={top_p:g}: {kept} of {vocab} tokens can be drawn"


def playground_snapshot(model, tokenizer, prompt: str, settings: list[tuple[float, int, float]],
                        max_new_tokens: int = 30, seed: int = 0):
    """A static rendering of the playground: one panel per (temperature, top_k, top_p) setting.

    Returns the figure and the sampled continuation of each setting.
    """
    fig, axes = plt.subplots(len(settings), 1, figsize=(7.5, 2.9 * len(settings)), squeeze=False)
    samples = []
    for ax, (t, k, p) in zip(axes[:, 0], settings):
        dist = next_token(model, tokenizer, prompt, t, k, p)
        plot.draw_distribution(ax, dist.labels, dist.before, dist.after,
                               title=_title(t, k, p, dist.kept, dist.vocab_size))
        samples.append(sample_text(model, tokenizer, prompt, max_new_tokens, t, k, p, seed))
    axes[0, 0].legend(loc="upper right", fontsize=8)
    fig.suptitle(f"Static rendering of the sampling playground for the prompt {prompt!r}", fontsize=10)
    fig.tight_layout()
    return fig, samples


def sampling_playground(model, tokenizer, prompt: str = "Once upon a time, there was a little"):
    """Sliders for temperature, top-k, top-p, max new tokens and seed, a prompt box, the
    filtered next-token distribution and a sampled continuation. Needs a live kernel."""
    import ipywidgets as w
    from IPython.display import display

    controls = dict(
        prompt=w.Text(value=prompt, description="prompt", layout=w.Layout(width="95%")),
        temperature=w.FloatSlider(value=1.0, min=0.05, max=2.5, step=0.05, description="temperature"),
        top_k=w.IntSlider(value=0, min=0, max=50, description="top-k (0=off)"),
        top_p=w.FloatSlider(value=1.0, min=0.05, max=1.0, step=0.05, description="top-p"),
        max_new_tokens=w.IntSlider(value=30, min=0, max=120, description="max new tokens"),
        seed=w.IntSlider(value=0, min=0, max=20, description="seed"),
    )
    out = w.Output()

    def redraw(prompt, temperature, top_k, top_p, max_new_tokens, seed):
        with out:
            out.clear_output(wait=True)
            if not prompt:
                print("Type a prompt.")
                return
            dist = next_token(model, tokenizer, prompt, temperature, top_k, top_p)
            fig, ax = plt.subplots(figsize=(7.5, 3.2))
            plot.draw_distribution(ax, dist.labels, dist.before, dist.after,
                                   title=_title(temperature, top_k, top_p, dist.kept, dist.vocab_size))
            ax.legend(loc="upper right", fontsize=8)
            plt.show()
            text = sample_text(model, tokenizer, prompt, max_new_tokens, temperature, top_k, top_p, seed)
            print(prompt + "\033[1m" + text + "\033[0m")

    w.interactive_output(redraw, controls)
    panel = w.VBox([controls["prompt"], w.HBox([controls["temperature"], controls["top_k"]]),
                    w.HBox([controls["top_p"], controls["max_new_tokens"]]), controls["seed"], out])
    display(panel)
    return panel
