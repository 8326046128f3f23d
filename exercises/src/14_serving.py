# %% [markdown]
# # Exercises: 14. Serving a model: fast, cheap generation
#
# These exercises go with [chapter 14](../../chapters/14_serving.ipynb). You size the
# key-value cache of a Llama-style model from its config, work out what speculative
# decoding can gain from its acceptance rate and the cost of its draft, hand out the
# blocks of a paged cache as PagedAttention does, write prompt lookup's proposals and
# count the passes they save SmolLM2 on a real request; then a short quiz. Each check runs
# your code on the example and on hidden cases and compares it with a reference the check
# computes itself.
#
# The model: SmolLM2-135M-Instruct (`zoo.REAL_MODEL`, already in the cache). Its config is
# read below; its weights are loaded only in the prompt-lookup exercise, which decodes
# one request with it.
#
# Write your code where it says `raise NotImplementedError` or `...`, run the cell,
# then run the check below it.

# %%
import torch

from llmlab import chat, kv_cache, llama, serving, zoo
from llmlab import exercises as ex
from llmlab.device import seed_everything
from llmlab.domain import english_passages

seed_everything(0)

# %%
# (transformers imported after llmlab, which keeps torchao's import messages quiet)
from transformers import AutoConfig, AutoModelForCausalLM

# SmolLM2's config, and its layers on the meta device: shapes only, no weights
config = AutoConfig.from_pretrained(zoo.prepare(zoo.REAL_MODEL, progress=False))
with torch.device("meta"):
    smol = AutoModelForCausalLM.from_config(config)

# %% [markdown] {"exercise": "kv-bytes", "minutes": 10}
# ## The size of the key-value cache
#
# While it decodes, a model keeps the key and the value of every token it has seen, in
# every layer, so that each new token attends to them without computing them again. With
# grouped-query attention (Ainslie et al. 2023) only the key-value heads are kept:
# `num_key_value_heads` of them, each `head_dim` numbers wide, however many query heads
# share them. Write `kv_bytes(layers, kv_heads, head_dim, tokens, batch,
# bytes_per_value)`, the bytes of the cache of `batch` sequences of `tokens` tokens each
# (`bytes_per_value`: `4` for float32, `2` for bfloat16), and
# `config_kv_bytes(config, tokens, batch, bytes_per_value)`, the same for a model's config
# (`config.num_hidden_layers`, `config.num_key_value_heads`, `config.head_dim`). The
# check compares with `llmlab.kv_cache.cache_bytes` and `llmlab.llama.kv_cache_bytes`,
# for multi-head and multi-query attention, an empty cache, bfloat16 and 8-bit values,
# and a config whose `head_dim` is not `hidden_size / num_attention_heads`.
#
# The cell below applies it to SmolLM2 for a context of `tokens = 2048` at `batch = 8` in
# float32. Before you run it: how large would the cache be with multi-head attention, one
# key-value head per query head (`config.num_attention_heads` of them)? By what factor
# does grouped-query attention shrink it, and how does the cache compare with the weights?


# %%
def kv_bytes(
    layers: int,
    kv_heads: int,
    head_dim: int,
    tokens: int,
    batch: int,
    bytes_per_value: int,
) -> int:
    """Bytes of the keys and values of `batch` sequences of `tokens` tokens."""
    ### BEGIN SOLUTION
    return 2 * layers * kv_heads * head_dim * tokens * batch * bytes_per_value
    ### END SOLUTION


def config_kv_bytes(config, tokens: int, batch: int, bytes_per_value: int) -> int:
    """kv_bytes for a Llama-style model's config."""
    ### BEGIN SOLUTION
    c = config
    per_token = kv_bytes(c.num_hidden_layers, c.num_key_value_heads, c.head_dim, 1, 1, 1)
    return per_token * tokens * batch * bytes_per_value
    ### END SOLUTION


# %% {"role": "try"}
ours = config_kv_bytes(config, 2048, 8, 4)
library = kv_cache.cache_bytes(
    config.num_hidden_layers,
    config.num_key_value_heads,
    llama.head_dim(config),
    2048,
    8,
    4,
)
every_head = kv_bytes(
    config.num_hidden_layers,
    config.num_attention_heads,
    llama.head_dim(config),
    2048,
    8,
    4,
)
weights = 4 * sum(p.numel() for p in smol.parameters())
print(
    f"SmolLM2's cache, 2,048 tokens x 8 sequences, float32: {ours / 1e6:,.0f} MB "
    f"(equal to kv_cache.cache_bytes: {ours == library})"
)
print(
    f"with one key-value head per query head ({config.num_attention_heads}, multi-head "
    f"attention): {every_head / 1e6:,.0f} MB, {every_head / ours:.0f} times as much"
)
print(f"the weights in float32: {weights / 1e6:,.0f} MB")

# %% {"role": "check"}
ex.check_kv_bytes(kv_bytes, config_kv_bytes)

# %% [markdown] {"exercise": "speculative-speedup", "minutes": 15}
# ## What speculative decoding can gain
#
# In speculative decoding (Leviathan et al. 2023; Chen et al. 2023) a cheap draft proposes
# `k` tokens, one forward pass of the target checks them all, and the target keeps the
# proposals up to the first it disagrees with, plus one token of its own: its correction
# there, or a bonus token after all `k`. When each drafted token is accepted with
# probability `a`, independently, a pass yields on average `(1 - a^(k+1)) / (1 - a)`
# tokens, and `k + 1` when `a = 1`. A pass costs one step of the target and `k` steps of
# the draft; when a draft step costs `draft_cost` target steps, the speed-up over plain
# decoding is the tokens per pass over `1 + k * draft_cost` (Leviathan et al. 2023's
# improvement factor).
#
# Write `expected_tokens(acceptance, k)` and `expected_speedup(acceptance, k,
# draft_cost)`. The check compares with `serving.expected_tokens_per_pass` and with the
# formula, for `a = 0`, `a = 1`, `k = 1`, a draft that costs nothing (`draft_cost = 0`,
# as prompt lookup) and a draft too slow to pay for itself. The cell below looks for the
# best `k` when `a = 0.6` and `draft_cost = 0.05`: why does drafting more not always pay?


# %%
def expected_tokens(acceptance: float, k: int) -> float:
    """Tokens per target pass when each of k drafted tokens is kept with probability
    acceptance."""
    ### BEGIN SOLUTION
    if acceptance == 1:
        return float(k + 1)
    return (1 - acceptance ** (k + 1)) / (1 - acceptance)
    ### END SOLUTION


def expected_speedup(acceptance: float, k: int, draft_cost: float) -> float:
    """Speed-up over plain decoding: tokens per pass over the cost of a pass, in target
    steps."""
    ### BEGIN SOLUTION
    return expected_tokens(acceptance, k) / (1 + k * draft_cost)
    ### END SOLUTION


# %% {"role": "try"}
print(
    f"a = 0.6, k = 4: {expected_tokens(0.6, 4):.4f} tokens per pass "
    f"(serving.expected_tokens_per_pass: "
    f"{serving.expected_tokens_per_pass(0.6, 4):.4f})"
)
speedups = {k: expected_speedup(0.6, k, 0.05) for k in range(1, 11)}
for k, s in speedups.items():
    print(
        f"  k = {k:2d}: {expected_tokens(0.6, k):.3f} tokens per pass, speed-up {s:.3f}"
    )
best_k = max(speedups, key=speedups.get)
print(f"best k for a = 0.6 and a draft step at 5% of the target's: {best_k}")

# %% {"role": "check"}
ex.check_speculative_speedup(expected_tokens, expected_speedup)

# %% [markdown] {"exercise": "block-table", "minutes": 15}
# ## A paged cache by hand: block tables
#
# PagedAttention (Kwon et al. 2023) cuts the cache into blocks of `block_size` positions,
# all in one pool, and gives a request blocks as it grows. A request's *block table*
# lists its blocks in order: its position `p` lives in block
# `block_table[p // block_size]`, at offset `p % block_size` in that block. Write
#
# - `locate(position, block_table, block_size)`, returning `(block, offset)`;
# - `blocks_needed(tokens, block_size)`: how many blocks hold `tokens` positions;
# - `allocate_stream(lengths, num_blocks, block_size)`: requests of `lengths[i]` tokens
#   join, in order, a pool of blocks numbered from `0` to `num_blocks - 1`; give each the
#   blocks it needs, the lowest free numbers first, as `serving.PagedKVCache.allocate`
#   does, and return the list of their block tables; raise `MemoryError` when a request
#   needs more blocks than are free;
# - `after_release(tables, finished_index, new_length, num_blocks, block_size)`: the
#   requests holding `tables` are running; request `finished_index` finishes and gives its
#   blocks back, then a request of `new_length` tokens arrives: return its block table
#   (the lowest free numbers first; `MemoryError` when too few are free). Leave `tables`
#   as it is.
#
# The check compares with `serving.PagedKVCache`, for positions on a block's edges,
# lengths that fill their blocks exactly, a pool that runs out or is filled exactly, and
# tables whose blocks are no longer in order, as they are once requests have grown side by
# side.


# %%
def locate(position: int, block_table: list[int], block_size: int) -> tuple[int, int]:
    """(block, offset) that holds a request's position."""
    ### BEGIN SOLUTION
    return block_table[position // block_size], position % block_size
    ### END SOLUTION


def blocks_needed(tokens: int, block_size: int) -> int:
    """Blocks that hold `tokens` positions."""
    ### BEGIN SOLUTION
    return -(-tokens // block_size)
    ### END SOLUTION


def allocate_stream(
    lengths: list[int], num_blocks: int, block_size: int
) -> list[list[int]]:
    """Each request's block table, the lowest free blocks first; MemoryError when they
    run out."""
    ### BEGIN SOLUTION
    free = list(range(num_blocks))
    tables = []
    for length in lengths:
        n = blocks_needed(length, block_size)
        if n > len(free):
            raise MemoryError(f"{n} blocks needed, {len(free)} free")
        tables.append(free[:n])
        free = free[n:]
    return tables
    ### END SOLUTION


def after_release(
    tables: list[list[int]],
    finished_index: int,
    new_length: int,
    num_blocks: int,
    block_size: int,
) -> list[int]:
    """The new request's block table once request finished_index has given its blocks
    back."""
    ### BEGIN SOLUTION
    held = {b for i, table in enumerate(tables) if i != finished_index for b in table}
    free = [b for b in range(num_blocks) if b not in held]
    n = blocks_needed(new_length, block_size)
    if n > len(free):
        raise MemoryError(f"{n} blocks needed, {len(free)} free")
    return free[:n]
    ### END SOLUTION


# %% {"role": "try"}
lengths = [40, 17, 64, 5]
tables = allocate_stream(lengths, 12, 16)
pool = serving.PagedKVCache(
    layers=1, kv_heads=1, head_dim=1, num_blocks=12, block_size=16
)
library = [pool.allocate(pool.blocks_for(n)) for n in lengths]
print("block tables:", tables, f"(as PagedKVCache hands them out: {tables == library})")
print(
    "position 37 of the first request lives in (block, offset):",
    locate(37, tables[0], 16),
)
print(
    "a request of 30 tokens once the second finishes:",
    after_release(tables, 1, 30, 12, 16),
)
longest = 256  # a contiguous cache reserves the longest a request may become, for each
print(
    f"positions set aside: paged {16 * sum(len(t) for t in tables)}, "
    f"contiguous {longest * len(lengths)}"
)

# %% {"role": "check"}
ex.check_block_table(locate, blocks_needed, allocate_stream, after_release)

# %% [markdown] {"exercise": "prompt-lookup", "minutes": 10}
# ## Prompt lookup: proposals without a draft
#
# When an answer repeats its input (a quote, a summary, an edit), its next tokens can be
# guessed without a draft model: find where the last few tokens occurred before and copy
# what followed them. This is prompt lookup decoding (Saxena 2023), transformers'
# `prompt_lookup_num_tokens`. Write `propose(seq, k, ngram)` as `serving.lookup_proposal`
# does it: take the last `ngram` tokens of `seq`, find their earliest occurrence that
# starts before them (it may overlap them), and propose the tokens that follow it, `k` at
# most. When the last `ngram` tokens occur nowhere before, try the last `ngram - 1`, and so
# on down to the last token alone; return `[]` when even that never occurred before. The
# check compares with `serving.lookup_proposal` on sequences made up for it and on random
# ones.
#
# The cell below asks SmolLM2 to quote a passage, decodes it with
# `serving.prompt_lookup_generate`, and then replays the answer with your `propose`:
# each pass of the target keeps the proposed tokens that match what greedy decoding
# writes, plus one of its own. Compare the tokens per pass with what `expected_tokens`
# predicts at the measured acceptance: that formula takes each drafted token to be
# accepted independently of the others; are copied tokens?


# %%
def propose(seq: list[int], k: int, ngram: int) -> list[int]:
    """Up to k tokens that followed the earliest earlier occurrence of seq's last
    n-gram."""
    ### BEGIN SOLUTION
    for size in range(min(ngram, len(seq) - 1), 0, -1):
        tail = seq[-size:]
        for start in range(len(seq) - size):
            if seq[start : start + size] == tail:
                return seq[start + size : start + size + k]
    return []
    ### END SOLUTION


# %% {"role": "try"}
print(
    "a made-up sequence:",
    propose([5, 1, 2, 3, 6, 7, 1, 2, 3, 8, 9, 1, 2, 3], 4, 3),
    serving.lookup_proposal([5, 1, 2, 3, 6, 7, 1, 2, 3, 8, 9, 1, 2, 3], 4, 3),
)

model, tok = zoo.load(zoo.REAL_MODEL, device="cpu")
eos = tok.convert_tokens_to_ids("<|im_end|>")
request = (
    "Quote the first two sentences of this text exactly.\n\n" + english_passages()[0]
)
ids = tok(
    chat.chat_text(tok, request), return_tensors="pt", add_special_tokens=False
).input_ids
k, ngram, max_new = 4, 3, 48
fast, stats = serving.prompt_lookup_generate(
    model, ids, max_new, k, ngram, eos_token_id=eos, return_stats=True
)
plain = serving.greedy_generate(model, ids, max_new, eos_token_id=eos)
print(f"the same tokens as plain greedy decoding: {torch.equal(fast, plain)}")

# replay: each pass keeps the proposals that match the greedy answer, and one token more
prompt, answer = ids[0].tolist(), fast[0, ids.size(1) :].tolist()
done, passes, drafted, accepted = 1, 0, 0, 0  # the prompt's pass gives the first token
while done < len(answer):
    proposal = propose(prompt + answer[:done], min(k, max_new - done), ngram)
    n = 0
    while (
        n < len(proposal) and done + n < len(answer) and proposal[n] == answer[done + n]
    ):
        n += 1
    passes, drafted, accepted, done = (
        passes + 1,
        drafted + len(proposal),
        accepted + n,
        done + n + 1,
    )
print(
    f"{len(answer)} tokens in {passes} passes after the prompt's: "
    f"{len(answer) / passes:.2f} "
    f"tokens per pass (prompt_lookup_generate counted the same passes: "
    f"{passes == stats.target_passes - 1})"
)
rate = accepted / drafted
print(
    f"acceptance {rate:.2f}; expected_tokens at that rate and k = {k}: "
    f"{expected_tokens(rate, k):.2f} tokens per pass"
)
print(repr(tok.decode(answer[:24])))

# %% {"role": "check"}
ex.check_prompt_lookup(propose)

# %% [markdown] {"exercise": "quiz", "minutes": 5}
# ## Quiz: serving
#
# Answer each question with one of the choices in its parentheses. The sources: the
# roofline (Williams et al. 2009), speculative decoding (Leviathan et al. 2023; Chen et
# al. 2023), continuous batching (Orca, Yu et al. 2022), PagedAttention (Kwon et al. 2023),
# grouped-query attention (Ainslie et al. 2023).

# %%
answers = {
    "the phase of generation that memory bandwidth limits at batch 1 "
    "(prefill/decode)": ...,
    "at a small batch, does doubling the batch double the time of a decoding step "
    "(yes/no)": ...,
    "the tokens greedy speculative decoding returns, next to the target's own greedy"
    " decoding (identical/nearly the same/the draft's)": ...,
    "when a waiting request can join the running batch under continuous batching"
    " (at any decoding step/when the whole batch has finished/never)": ...,
    "what a paged cache sets aside for a request"
    " (blocks as its tokens arrive/its longest possible length/one token)": ...,
    "what grouped-query attention makes smaller (the KV cache/the MLP/the "
    "vocabulary)": ...,
    "where prompt lookup finds its proposals"
    " (earlier tokens of the text/a draft model/the most frequent tokens)": ...,
}
### BEGIN SOLUTION
answers = {
    "the phase of generation that memory bandwidth limits at batch 1 "
    "(prefill/decode)": "decode",
    "at a small batch, does doubling the batch double the time of a decoding step "
    "(yes/no)": "no",
    "the tokens greedy speculative decoding returns, next to the target's own greedy"
    " decoding (identical/nearly the same/the draft's)": "identical",
    "when a waiting request can join the running batch under continuous batching"
    " (at any decoding step/when the whole batch has "
    "finished/never)": "at any decoding step",
    "what a paged cache sets aside for a request"
    " (blocks as its tokens arrive/its longest possible length/one "
    "token)": "blocks as its tokens arrive",
    "what grouped-query attention makes smaller (the KV cache/the MLP/the "
    "vocabulary)": "the KV cache",
    "where prompt lookup finds its proposals"
    " (earlier tokens of the text/a draft model/the most frequent "
    "tokens)": "earlier tokens of the text",
}
### END SOLUTION

# %% {"role": "check"}
ex.check_serving_quiz(answers)
