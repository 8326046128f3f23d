# %% [markdown]
# # Exercises: 10. Beyond prompting: prompt tuning and the wider landscape
#
# These exercises go with [chapter 10](../../chapters/10_prompt_tuning.ipynb). You count
# what prompt tuning trains, put a soft prompt in front of a batch of embeddings,
# write the loss that only the answer's tokens carry, count what p-tuning's prompt
# encoder trains and stores, and place virtual tokens in several slots of a template. Each check runs your code on the
# example and on hidden cases and compares it with `llmlab.prompt_tuning`.
#
# Write your code where it says `raise NotImplementedError` or `...`, run the cell,
# then run the check below it.

# %%
import torch
import torch.nn.functional as F

from llmlab import exercises as ex
from llmlab import zoo
from llmlab.device import seed_everything

seed_everything(0)
# the bundled tiny GPT-2 (no download)
model, tokenizer = zoo.load("stories-1m", device="cpu")

# %% [markdown] {"exercise": "params", "minutes": 10}
# ## What prompt tuning trains
#
# Prompt tuning (Lester et al. 2021, "The Power of Scale for Parameter-Efficient Prompt
# Tuning") freezes every weight of the model and trains only $n$ "virtual token"
# embeddings put in front of the input: $n$ vectors of the model's width. Write
# `soft_prompt_params(model, n_virtual)` returning the number of trained values and
# their fraction of the model's own parameters (each distinct parameter counted once).

# %%
def soft_prompt_params(model, n_virtual: int) -> tuple[int, float]:
    """(values a soft prompt of n_virtual tokens trains, their ratio to the model's)."""
    ### BEGIN SOLUTION
    width = model.get_input_embeddings().weight.shape[1]
    trained = n_virtual * width
    return trained, trained / sum(p.numel() for p in model.parameters())
    ### END SOLUTION


# %% {"role": "try"}
trained, fraction = soft_prompt_params(model, 20)
print(f"20 virtual tokens train {trained:,} values, {fraction:.2%} of the model")

# %% {"role": "check"}
ex.check_soft_prompt_params(soft_prompt_params)

# %% [markdown] {"exercise": "prepend", "minutes": 10}
# ## A soft prompt in front of a batch
#
# The model never sees the virtual tokens as ids: their embeddings are put in front
# of the text's embeddings and the model is called with `inputs_embeds`. Write
# `prepend(soft_prompt, input_embeds, attention_mask)`: `soft_prompt` is `(n, d)`,
# `input_embeds` `(B, T, d)`, `attention_mask` `(B, T)`; return the `(B, n + T, d)`
# embeddings and the `(B, n + T)` mask, with ones for the virtual tokens.

# %%
def prepend(soft_prompt: torch.Tensor, input_embeds: torch.Tensor,
            attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The soft prompt in front of every row; the attention mask extended to match."""
    ### BEGIN SOLUTION
    b = input_embeds.shape[0]
    n, d = soft_prompt.shape
    embeds = torch.cat([soft_prompt.expand(b, n, d), input_embeds], dim=1)
    ones = torch.ones(b, n, dtype=attention_mask.dtype, device=attention_mask.device)
    return embeds, torch.cat([ones, attention_mask], dim=1)
    ### END SOLUTION


# %% {"role": "try"}
ids = tokenizer(["Lily saw a cat.", "Tom ran."], return_tensors="pt", padding=True)
embeds, mask = prepend(torch.zeros(3, model.config.n_embd),
                       model.get_input_embeddings()(ids.input_ids),
                       ids.attention_mask)
print(embeds.shape, mask.tolist())

# %% {"role": "check"}
ex.check_prepend(prepend)

# %% [markdown] {"exercise": "loss", "minutes": 15}
# ## A loss on the answer only
#
# When a model is tuned to answer, the prompt's tokens should carry no loss: the model
# is not asked to predict the question. Write `answer_loss(logits, input_ids, n_prompt)`
# for one batch of sequences whose first `n_prompt` tokens are the prompt: the mean
# cross-entropy of the answer's tokens, each read from the logits at the position
# before it. Hint: labels of -100 are ignored by `F.cross_entropy`.

# %%
def answer_loss(logits: torch.Tensor, input_ids: torch.Tensor,
                n_prompt: int) -> torch.Tensor:
    """Mean next-token cross-entropy over the tokens at positions >= n_prompt."""
    ### BEGIN SOLUTION
    labels = input_ids.clone()
    labels[:, :n_prompt] = -100
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(),
                           ignore_index=-100)
    ### END SOLUTION


# %% {"role": "check"}
ex.check_answer_loss(answer_loss, model, tokenizer)

# %% [markdown] {"exercise": "encoder", "minutes": 10}
# ## What p-tuning trains, and what it keeps
#
# P-tuning (Liu et al. 2021, "GPT Understands, Too") computes the virtual tokens with a
# small *prompt encoder*. PEFT's MLP encoder (`PromptEncoderConfig(
# encoder_reparameterization_type="MLP", encoder_hidden_size=hidden)`) starts from its
# own trained table of `n_virtual x d_model` values and sends it through three linear
# layers, `d_model -> hidden -> hidden -> d_model`, each with a bias, with ReLU between
# them. After training the encoder's output is computed once and kept as a fixed table.
# Write `encoder_params(n_virtual, d_model, hidden)` returning the values trained and
# the values kept for inference.

# %%
def encoder_params(n_virtual: int, d_model: int, hidden: int) -> tuple[int, int]:
    """(values the MLP prompt encoder trains, values stored once made a table)."""
    ### BEGIN SOLUTION
    table = n_virtual * d_model
    layers = ((d_model * hidden + hidden) + (hidden * hidden + hidden)
              + (hidden * d_model + d_model))
    return table + layers, n_virtual * d_model
    ### END SOLUTION


# %% {"role": "try"}
trained, stored = encoder_params(20, 576, 128)
print(f"p-tuning trains {trained:,} values and keeps {stored:,} for inference")

# %% {"role": "check"}
ex.check_encoder_params(encoder_params)

# %% [markdown] {"exercise": "slots", "minutes": 15}
# ## Several virtual-prompt slots
#
# NeMo's templates can put virtual tokens in several places, for example
# `<|VIRTUAL_PROMPT_0|>{context}<|VIRTUAL_PROMPT_1|>{question}<|VIRTUAL_PROMPT_2|>{answer}`
# with `virtual_token_splits: [80, 15, 5]`: the first block of virtual tokens goes in the first
# slot, the next block in the second, the last in the third. Write
# `place_slots(pieces, virtual, splits)`: `pieces` holds the embeddings `(T_i, d)` of the
# `len(splits) + 1` texts around the slots (some may be empty, `(0, d)`), `virtual` the
# `(sum(splits), d)` virtual tokens; return the `(sum T_i + sum(splits), d)` sequence
# `pieces[0], slot 0, pieces[1], slot 1, ..., pieces[-1]`. Hint: `torch.split`.

# %%
def place_slots(pieces: list[torch.Tensor], virtual: torch.Tensor,
                splits: list[int]) -> torch.Tensor:
    """The text pieces with the virtual tokens split among the slots between them."""
    ### BEGIN SOLUTION
    chunks = torch.split(virtual, splits)
    out = [pieces[0]]
    for chunk, piece in zip(chunks, pieces[1:]):
        out += [chunk, piece]
    return torch.cat(out)
    ### END SOLUTION


# %% {"role": "try"}
d = model.config.n_embd
# nothing before the first slot
pieces = [torch.zeros(0, d), torch.ones(3, d), torch.ones(2, d)]
print(place_slots(pieces, torch.zeros(5, d), [4, 1]).shape)

# %% {"role": "check"}
ex.check_place_slots(place_slots, model)

# %% [markdown] {"exercise": "quiz", "minutes": 5}
# ## Quiz: prompt tuning
#
# Answer each question with `"yes"` or `"no"`.

# %%
answers = {
    "are the model's weights changed by prompt tuning (yes/no)": ...,
    "does a soft prompt have to be made of real tokens of the vocabulary (yes/no)": ...,
    "can one frozen model serve many tasks by swapping soft prompts (yes/no)": ...,
}
### BEGIN SOLUTION
answers = {
    "are the model's weights changed by prompt tuning (yes/no)": "no",
    "does a soft prompt have to be made of real tokens of the vocabulary (yes/no)":
        "no",
    "can one frozen model serve many tasks by swapping soft prompts (yes/no)": "yes",
}
### END SOLUTION

# %% {"role": "check"}
ex.check_peft_quiz(answers)
