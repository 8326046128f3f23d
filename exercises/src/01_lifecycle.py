# %% [markdown]
# # Exercises: 1. Generative AI and the LLM project lifecycle
#
# These exercises go with [chapter 1](../../chapters/01_lifecycle.ipynb). You fit a prompt into
# a context window, complete a prompt greedily with the bundled model, read the numbers
# of a model card from a model instead of typing them, and answer a quiz on the project
# lifecycle. Each check runs your code on the example and on hidden edge cases and says
# what is right and what is wrong.
#
# Write your code where it says `raise NotImplementedError` or `...`, run the cell,
# then run the check below it.

# %%
import torch

from llmlab import exercises as ex
from llmlab import zoo
from llmlab.device import seed_everything

seed_everything(0)
# the bundled tiny GPT-2 (no download)
model, tokenizer = zoo.load("stories-1m", device="cpu")

# %% [markdown] {"exercise": "context-window", "minutes": 10}
# ## Fit a prompt into the context window
#
# A model reads at most `context_window` tokens, and the tokens it generates share that
# window with the prompt. When a prompt is too long, chat systems drop its *oldest*
# tokens. Write `fit_to_context(token_ids, context_window, max_new_tokens)`: it returns
# the last tokens of the prompt that leave room for `max_new_tokens` new ones, and how
# many tokens it dropped. A prompt that already fits loses nothing; return a new list and
# leave `token_ids` as it was (the caller may still need it).

# %%
def fit_to_context(token_ids: list[int], context_window: int,
                   max_new_tokens: int) -> tuple[list[int], int]:
    """(kept ids: the most recent that leave room for max_new_tokens, ids dropped)."""
    ### BEGIN SOLUTION
    room = context_window - max_new_tokens
    dropped = max(0, len(token_ids) - room)
    return list(token_ids[dropped:]), dropped
    ### END SOLUTION


# %% {"role": "try"}
kept, dropped = fit_to_context(list(range(100, 120)), context_window=16,
                               max_new_tokens=4)
print(kept, dropped)

# %% {"role": "check"}
ex.check_fit_to_context(fit_to_context)

# %% [markdown] {"exercise": "greedy", "minutes": 15}
# ## Prompt, completion, inference: a greedy loop
#
# Inference turns a prompt into a completion one token at a time: run the model on the
# ids so far, take the logits at the *last* position, pick the most probable token
# (greedy decoding), append it, repeat. Write `complete(model, tokenizer, prompt, n_new)`
# that returns only the new text (decode the new ids with `tokenizer.decode`). The check
# compares it with `model.generate(do_sample=False)`.

# %%
@torch.no_grad()
def complete(model, tokenizer, prompt: str, n_new: int) -> str:
    """The greedy completion of ``prompt``: ``n_new`` new tokens, decoded, no prompt."""
    ids = tokenizer(prompt, return_tensors="pt").input_ids  # (1, T)
    ### BEGIN SOLUTION
    start = ids.size(1)
    for _ in range(n_new):
        next_id = model(input_ids=ids).logits[0, -1].argmax()
        ids = torch.cat([ids, next_id.view(1, 1)], dim=1)
    return tokenizer.decode(ids[0, start:])
    ### END SOLUTION


# %% {"role": "try"}
print(repr(complete(model, tokenizer, "Once upon a time", 8)))

# %% {"role": "check"}
ex.check_greedy_completion(complete, model, tokenizer)

# %% [markdown] {"exercise": "model-card", "minutes": 10}
# ## The numbers of a model card, read from the model
#
# A model card (Mitchell et al. 2019, "Model Cards for Model Reporting") states what a
# model is. Its numbers should be read from the model, not typed. Write
# `card_numbers(model)` for a Hugging Face GPT-2 model: a dict with `n_parameters`
# (each distinct parameter counted once: GPT-2's output layer *shares* the token
# embedding's matrix), `context_window`, `layers`, `heads` and `vocab_size` (see
# `model.config`).

# %%
def card_numbers(model) -> dict:
    """n_parameters, context_window, layers, heads and vocab_size of a GPT-2 model."""
    ### BEGIN SOLUTION
    config = model.config
    return {
        # parameters() lists a shared one once
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "context_window": config.n_positions,
        "layers": config.n_layer,
        "heads": config.n_head,
        "vocab_size": config.vocab_size,
    }
    ### END SOLUTION


# %% {"role": "try"}
print(card_numbers(model))

# %% {"role": "check"}
ex.check_model_card_numbers(card_numbers)

# %% [markdown] {"exercise": "lifecycle", "minutes": 5}
# ## Quiz: the project lifecycle
#
# The chapter's lifecycle has four stages: `"scope"`, `"select"`, `"adapt and align"`
# and `"deploy"`. Give the stages in order as a list, name the stage of each task, and
# answer the last question with a number.

# %%
answers = {
    "stages in order": ...,
    "prompt engineering": ...,
    "quantize for inference": ...,
    "one task or many?": ...,
    "tokens a 256-token window leaves for the prompt"
    " when 60 new tokens are wanted": ...,
}
### BEGIN SOLUTION
answers = {
    "stages in order": ["scope", "select", "adapt and align", "deploy"],
    "prompt engineering": "adapt and align",
    "quantize for inference": "deploy",
    "one task or many?": "scope",
    "tokens a 256-token window leaves for the prompt"
    " when 60 new tokens are wanted": 256 - 60,
}
### END SOLUTION

# %% {"role": "check"}
ex.check_lifecycle_quiz(answers)
