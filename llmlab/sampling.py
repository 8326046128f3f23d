"""Decoding from scratch: greedy, temperature, top-k and top-p (nucleus) sampling.

Explained in chapter 5, "Decoding and sampling". A language model gives, at each
step, one logit per vocabulary entry; decoding turns those logits into the next
token. Every function here works on the last dimension of a logits tensor, usually
``(B, V)`` (batch, vocabulary), and returns a tensor of the same shape where the
tokens a method rules out are set to ``-inf`` (probability 0 after softmax).

Each filter equals its Hugging Face counterpart (``TemperatureLogitsWarper``,
``TopKLogitsWarper``, ``TopPLogitsWarper``) bit for bit, ties included, and
``generate`` reproduces ``model.generate`` token for token; the tests check both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# -----------------------------------------------------------------------------
# validation: one place that says what is allowed


def _check_temperature(temperature: float) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
    if not temperature > 0:  # also catches NaN
        raise ValueError(
            f"temperature must be > 0 when sampling, got {float(temperature)}; "
            "use greedy decoding (do_sample=False) for temperature 0"
        )


def _check_top_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int):
        raise ValueError(f"top_k must be an integer >= 0 (0 disables it), got {k!r}")
    if k < 0:
        raise ValueError(f"top_k must be >= 0 (0 disables it), got {k}")


def _check_top_p(p: float) -> None:
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        raise ValueError(f"top_p must be a number in (0, 1], got {p!r}")
    if not 0.0 < p <= 1.0:  # also catches NaN
        raise ValueError(f"top_p must be in (0, 1], got {p}")


# -----------------------------------------------------------------------------
# the three filters


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Divide logits (nats, any shape ``(..., V)``) by a temperature > 0.

    Below 1 the distribution sharpens towards the argmax; above 1 it flattens
    towards uniform; 1 leaves it unchanged.
    """
    _check_temperature(temperature)
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest logits in each row ``(..., V)``; set the rest to -inf.

    ``k = 0`` disables the filter. Like Hugging Face's ``TopKLogitsWarper``, every
    logit equal to the k-th largest value survives, so ties can keep more than
    ``k`` tokens; ``k > V`` keeps everything.
    """
    _check_top_k(k)
    if k == 0:
        return logits
    k = min(k, logits.size(-1))
    kth_largest = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1)
    # compare by value, not by position: ties with the k-th value are kept
    return logits.masked_fill(logits < kth_largest, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filtering: keep the smallest set of most probable tokens whose
    probabilities sum to at least ``p``; set the rest to -inf. Rows are ``(..., V)``.

    ``p`` is a probability in (0, 1]; ``p = 1`` disables the filter. The most
    probable token is always kept. Follows Hugging Face's ``TopPLogitsWarper``
    step for step (same sort, same sums), so the result is identical, ties
    included: among equal logits at the cut, which ones survive is decided by
    the sort order, not by value.
    """
    _check_top_p(p)
    if p == 1.0:
        return logits
    # Sort ascending so the cumulative sum runs from the least likely token up:
    # a token is dropped when everything at or below it adds up to at most 1 - p,
    # which leaves exactly the smallest top set whose mass reaches p.
    sorted_logits, sorted_idx = torch.sort(logits, descending=False)  # (..., V)
    cum_probs = sorted_logits.softmax(dim=-1).cumsum(dim=-1)  # (..., V)
    sorted_remove = cum_probs <= (1 - p)
    sorted_remove[..., -1:] = False  # never drop the most probable token
    # undo the sort: position sorted_idx[j] gets sorted_remove[j]
    remove = sorted_remove.scatter(-1, sorted_idx, sorted_remove)
    return logits.masked_fill(remove, float("-inf"))


def filter_logits(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0
) -> torch.Tensor:
    """Apply temperature, then top-k, then top-p (Hugging Face's order) to ``(..., V)`` logits.

    Returns logits of the same shape with ruled-out tokens at -inf.
    """
    _check_temperature(temperature)
    _check_top_k(top_k)
    _check_top_p(top_p)
    if temperature != 1.0:  # like HF, skip the no-op so bits stay untouched
        logits = apply_temperature(logits, temperature)
    logits = top_k_filter(logits, top_k)
    logits = top_p_filter(logits, top_p)
    return logits


# -----------------------------------------------------------------------------
# choosing the next token


def next_token_distribution(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0
) -> torch.Tensor:
    """Probabilities ``(..., V)`` (each row sums to 1) that sampling draws from."""
    return F.softmax(filter_logits(logits, temperature, top_k, top_p), dim=-1)


def greedy_next_token(logits: torch.Tensor) -> torch.Tensor:
    """Token ids ``(...)`` of the largest logit in each row (first one on ties)."""
    return torch.argmax(logits, dim=-1)


def sample_next_token(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw one token id per row of ``(..., V)`` logits from the filtered distribution.

    Returns a LongTensor of shape ``(...)``. Pass a seeded ``torch.Generator`` for
    reproducible draws; without one, torch's global generator is used (as in HF).
    """
    probs = next_token_distribution(logits, temperature, top_k, top_p)  # (..., V)
    flat = probs.reshape(-1, probs.size(-1))  # (N, V): multinomial wants 1-D or 2-D
    if generator is not None and generator.device != flat.device:
        # a CPU generator with a GPU model (or the reverse): draw where the generator lives
        ids = torch.multinomial(flat.to(generator.device), num_samples=1, generator=generator).to(flat.device)
    else:
        ids = torch.multinomial(flat, num_samples=1, generator=generator)  # (N, 1)
    return ids.reshape(probs.shape[:-1])


# -----------------------------------------------------------------------------
# the decoding loop


@torch.no_grad()
def generate(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    max_new_tokens: int = 20,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    stop_token_id: int | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
) -> torch.Tensor:
    """Extend each prompt in ``input_ids`` ``(B, T)`` by up to ``max_new_tokens`` tokens.

    An explicit token-by-token loop over a Hugging Face causal LM: greedy when
    ``do_sample=False`` (temperature, top_k and top_p are then ignored), otherwise
    sampling with temperature, top-k and top-p. Returns prompt plus new tokens,
    ``(B, T + n)`` with ``n <= max_new_tokens``: generation stops early once every
    row has produced ``stop_token_id``, and rows that finished earlier are padded
    with it. Greedy output equals ``model.generate(..., do_sample=False,
    eos_token_id=stop_token_id, pad_token_id=stop_token_id)``.

    With ``use_cache=True`` the model keeps its keys and values (a ``DynamicCache``)
    and each step feeds it only the newest token; with ``False`` every step runs
    the whole sequence again (same tokens, slower).
    """
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.dtype != torch.long:
        got = (
            f"a {input_ids.dim()}-D {input_ids.dtype} tensor of shape {tuple(input_ids.shape)}"
            if isinstance(input_ids, torch.Tensor)
            else type(input_ids).__name__
        )
        raise ValueError(
            f"input_ids must be a 2-D LongTensor of shape (batch, seq_len), got {got}; "
            "for one prompt use ids.unsqueeze(0)"
        )
    if input_ids.size(1) == 0:
        raise ValueError("input_ids must hold at least one token per row, got seq_len 0")
    window = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if isinstance(window, int) and input_ids.size(1) + max_new_tokens > window:
        raise ValueError(
            f"prompt ({input_ids.size(1)} tokens) + max_new_tokens ({max_new_tokens}) = "
            f"{input_ids.size(1) + max_new_tokens} exceeds the model's context window of {window} tokens; "
            "shorten the prompt or lower max_new_tokens"
        )
    if do_sample:  # under greedy these settings are ignored, as in HF
        _check_temperature(temperature)
        _check_top_k(top_k)
        _check_top_p(top_p)

    input_ids = input_ids.to(model.device)
    B = input_ids.size(0)
    unfinished = torch.ones(B, dtype=torch.bool, device=input_ids.device)  # (B,)
    past = None  # the DynamicCache, once the model has returned one
    step_input = input_ids  # first step: the whole prompt (the "prefill")

    for _ in range(max_new_tokens):
        if use_cache:
            out = model(input_ids=step_input, past_key_values=past, use_cache=True)
            past = out.past_key_values
        else:
            out = model(input_ids=input_ids, use_cache=False)
        logits = out.logits[:, -1, :].float()  # (B, V); float32 like HF, whatever the model dtype

        if do_sample:
            next_ids = sample_next_token(logits, temperature, top_k, top_p, generator)  # (B,)
        else:
            next_ids = greedy_next_token(logits)  # (B,)

        if stop_token_id is not None:
            # rows that already stopped keep emitting the stop token as padding
            next_ids = torch.where(unfinished, next_ids, torch.full_like(next_ids, stop_token_id))
            unfinished = unfinished & (next_ids != stop_token_id)

        input_ids = torch.cat([input_ids, next_ids[:, None]], dim=1)  # (B, T+1)
        step_input = next_ids[:, None]  # (B, 1): with a cache, only the new token is fed
        if not unfinished.any():
            break
    return input_ids
