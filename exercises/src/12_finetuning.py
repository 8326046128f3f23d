# %% [markdown]
# # Exercises: 12. Fine-tuning: full, LoRA and QLoRA
#
# These exercises go with [chapter 12](../../chapters/12_finetuning.ipynb). You count the
# values LoRA trains from a model's layer shapes, merge an adapter into its weight by hand,
# quantize a block of weights to NF4 codes as QLoRA stores them, choose a LoRA rank from the
# recorded comparison of chapter 12, and answer a short quiz. Each check runs your code on
# the example and on hidden cases and compares it with a reference the check computes itself.
#
# The models: a tiny random Llama built here (no download), and the shapes of
# SmolLM2-135M-Instruct read from its config (its weights are not loaded). The record:
# chapter 12's comparison of fine-tuning methods, `llmlab/results/finetuning.json`.
#
# Write your code where it says `raise NotImplementedError` or `...`, run the cell,
# then run the check below it.

# %%
import re

import torch
from torch import nn

from llmlab import exercises as ex
from llmlab import lora, nf4, zoo
from llmlab.device import seed_everything
from llmlab.records import finetuning

seed_everything(0)


def linear_shapes(model: nn.Module) -> dict[str, tuple[int, int]]:
    """{name: (out_features, in_features)} of every nn.Linear of a model."""
    return {name: tuple(m.weight.shape) for name, m in model.named_modules()
            if isinstance(m, nn.Linear)}


# %%
# (transformers imported after llmlab, which keeps torchao's import messages quiet)
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

# a tiny random Llama: 2 layers, grouped-query attention (4 heads, 2 KV heads)
tiny = LlamaForCausalLM(LlamaConfig(
    hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, vocab_size=64, tie_word_embeddings=True)).eval()
# SmolLM2's layers from its config, on the meta device: shapes only, no weights
config = AutoConfig.from_pretrained(zoo.prepare(zoo.REAL_MODEL, progress=False))
with torch.device("meta"):
    smol = AutoModelForCausalLM.from_config(config)

# %% [markdown] {"exercise": "lora-count", "minutes": 15}
# ## What LoRA trains
#
# LoRA (Hu et al. 2021) keeps a linear layer's weight `W` (out x in) frozen and trains
# two thin matrices: `A` (r x in) and `B` (out x r). Write
# `lora_trainable(shapes, r, targets)`: `shapes` maps each linear layer's name to its
# `(out, in)`, as `linear_shapes` above gives it; return the number of values (an `int`)
# the adapters of rank `r` train on the layers that `targets` names. A layer is a target
# when its full name is in `targets` or ends with `"." + target` (PEFT's rule:
# `"q_proj"` picks `model.layers.0.self_attn.q_proj` in every block). The check tests
# other ranks and targets, a full name as a target, and other naming schemes.

# %%
def lora_trainable(shapes: dict[str, tuple[int, int]], r: int,
                   targets: list[str]) -> int:
    """Values LoRA of rank r trains on the target layers of `shapes`."""
    ### BEGIN SOLUTION
    total = 0
    for name, (out_f, in_f) in shapes.items():
        if name in targets or any(name.endswith("." + t) for t in targets):
            total += r * (in_f + out_f)
    return total
    ### END SOLUTION


# %% {"role": "try"}
all_linear = ["q_proj", "k_proj", "v_proj", "o_proj",
              "gate_proj", "up_proj", "down_proj"]
for name, model in (("tiny Llama", tiny), ("SmolLM2-135M", smol)):
    shapes = linear_shapes(model)
    ours = lora_trainable(shapes, 16, all_linear)
    agrees = ours == lora.count_for_model(model, 16, all_linear)
    print(f"{name}: {len(shapes)} linear layers; LoRA r16 on the seven of every block "
          f"trains {ours:,} values; count_for_model agrees: {agrees}")

# %% {"role": "check"}
ex.check_lora_trainable(lora_trainable)

# %% [markdown] {"exercise": "merge", "minutes": 10}
# ## Merging an adapter by hand
#
# After training, the update folds into the weight, `W + (alpha / r) B A`, and the layer
# computes what the adapter did at no extra cost at inference. Write
# `merge(W, A, B, alpha, r)` returning the merged weight (a new tensor in `W`'s dtype);
# leave `W`, `A` and `B` unchanged. The check compares your weight with
# `lora.merge_lora` on a real `LoRALinear`, and the merged layer's outputs with the
# adapter's, for non-square weights, a scaling below one and float64.

# %%
def merge(W: torch.Tensor, A: torch.Tensor, B: torch.Tensor, alpha: float,
          r: int) -> torch.Tensor:
    """The merged weight W + (alpha / r) B A (out x in), W left as it was."""
    ### BEGIN SOLUTION
    return W + (alpha / r) * (B @ A)
    ### END SOLUTION


# %% {"role": "try"}
layer = lora.LoRALinear(nn.Linear(8, 6), r=2, alpha=4.0)
with torch.no_grad():
    layer.lora_B.normal_()  # as if trained: B is no longer zero
x = torch.randn(3, 8)
merged = nn.Linear(8, 6)
with torch.no_grad():
    merged.weight.copy_(merge(layer.base.weight, layer.lora_A, layer.lora_B, 4.0, 2))
    merged.bias.copy_(layer.base.bias)
    same = torch.allclose(merged(x), layer(x), atol=1e-5)
print(f"merged layer equals the adapter within 1e-5: {same}")

# %% {"role": "check"}
ex.check_merge(merge)

# %% [markdown] {"exercise": "nf4", "minutes": 15}
# ## NF4 codes by hand
#
# QLoRA (Dettmers et al. 2023) stores a frozen weight in 4 bits: each block of values is
# divided by its absmax, the largest magnitude `max |x|`, and each value becomes the
# index (0 to 15) of the nearest of NF4's 16 values, `nf4.nf4_codebook()`. Write
# `nf4_codes(x)` for one block `x` (1-D) returning `(codes, absmax)`: an integer tensor
# of indices and a float. The check compares with `nf4.quantize_nf4`, for a block whose
# largest magnitude is negative, small weights, exact zeros and values spread uniformly.

# %%
def nf4_codes(x: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Indices of the nearest NF4 values to x / absmax, and absmax."""
    codebook = nf4.nf4_codebook()
    ### BEGIN SOLUTION
    absmax = x.abs().max().item()
    y = x.float() / absmax if absmax > 0 else x.float()
    codes = (y[:, None] - codebook[None, :]).abs().argmin(dim=1)
    return codes, absmax
    ### END SOLUTION


# %% {"role": "try"}
w = torch.randn(64)
codes, absmax = nf4_codes(w)
back = nf4.nf4_codebook()[codes] * absmax
print(f"codes of the first 8 values: {codes[:8].tolist()}")
print(f"every code used at least once: {len(set(codes.tolist())) == 16}")
print(f"dequantized within 0.3 of the weights: {bool((back - w).abs().max() < 0.3)}")

# %% {"role": "check"}
ex.check_nf4_codes(nf4_codes)

# %% [markdown] {"exercise": "rank", "minutes": 20}
# ## Choosing a rank from the recorded runs
#
# `finetuning.load()` is chapter 12's record: `record["grid"]` is a list of runs, each a
# dict with the `"method"`, the `"seed"`, the `"trainable"` count and `"exact"`, a string
# with one `'1'` (the reply was exactly right) or `'0'` per test message. The runs of
# LoRA on all linear layers are the methods named exactly `"LoRA r<rank>, all linear"`;
# other methods (attention only, QLoRA, replay, full fine-tuning, prompt tuning) do not
# count here. A run's accuracy is `100 *` its share of `'1'`s (percent), and a rank's
# accuracy is the mean over its runs (seeds). Write `smallest_rank_within(record, points)`:
# the smallest rank whose mean is at least the best rank's mean minus `points` (an
# `int`). The check computes its answer from the same record, from that record with its
# ranks' runs exchanged and from made-up records in the same format, with other
# tolerances; the record fills in as its runs end, and the try cell below says when it
# holds no rank yet.

# %%
def smallest_rank_within(record: dict, points: float) -> int:
    """Smallest LoRA rank (all linear layers) within `points` of the best mean."""
    ### BEGIN SOLUTION
    runs = {}
    for row in record["grid"]:
        found = re.fullmatch(r"LoRA r(\d+), all linear", row["method"])
        if found:
            accuracy = 100 * row["exact"].count("1") / len(row["exact"])
            runs.setdefault(int(found.group(1)), []).append(accuracy)
    means = {r: sum(a) / len(a) for r, a in runs.items()}
    best = max(means.values())
    return min(r for r, m in means.items() if m >= best - points - 1e-9)
    ### END SOLUTION


# %% {"role": "try"}
record = finetuning.load()
names = {row["method"] for row in record["grid"]}
if any(re.fullmatch(r"LoRA r\d+, all linear", n) for n in names):
    for points in (0, 2, 5):
        print(f"within {points} points: rank {smallest_rank_within(record, points)}")
else:
    print("the record holds no LoRA run on all linear layers yet")

# %% {"role": "check"}
ex.check_smallest_rank(smallest_rank_within)

# %% [markdown] {"exercise": "quiz", "minutes": 5}
# ## Quiz: LoRA and QLoRA
#
# Answer each question with one of the choices in its parentheses.

# %%
answers = {
    "the LoRA matrix that starts at zero, so training starts from the base model"
    " (A/B)": ...,
    "does a merged LoRA model add latency at inference (yes/no)": ...,
    "the distribution of weights for which NF4's 16 values are"
    " information-theoretically optimal (normal/uniform/laplace)": ...,
    "what double quantization quantizes"
    " (the weights/the block scales/the adapters)": ...,
    "what paged optimizers move to CPU memory when GPU memory runs short"
    " (optimizer states/adapters/activations)": ...,
}
### BEGIN SOLUTION
answers = {
    "the LoRA matrix that starts at zero, so training starts from the base model"
    " (A/B)": "B",
    "does a merged LoRA model add latency at inference (yes/no)": "no",
    "the distribution of weights for which NF4's 16 values are"
    " information-theoretically optimal (normal/uniform/laplace)": "normal",
    "what double quantization quantizes"
    " (the weights/the block scales/the adapters)":
        "the block scales",
    "what paged optimizers move to CPU memory when GPU memory runs short"
    " (optimizer states/adapters/activations)": "optimizer states",
}
### END SOLUTION

# %% {"role": "check"}
ex.check_finetuning_quiz(answers)
