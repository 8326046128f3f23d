"""Decoding from scratch: greedy, temperature, top-k, top-p (nucleus), min-p, repetition
penalty, no-repeat n-grams and beam search.

Explained in chapter 5, "Decoding and sampling". A language model gives, at each
step, one logit per vocabulary entry; decoding turns those logits into the next
token. Every function here works on the last dimension of a logits tensor, usually
``(B, V)`` (batch, vocabulary), and returns a tensor of the same shape where the
tokens a method rules out are set to ``-inf`` (probability 0 after softmax).

Each filter equals its Hugging Face counterpart (``TemperatureLogitsWarper``,
``TopKLogitsWarper``, ``TopPLogitsWarper``, ``MinPLogitsWarper``,
``RepetitionPenaltyLogitsProcessor``, ``NoRepeatNGramLogitsProcessor``) bit for bit,
ties included; ``generate`` reproduces ``model.generate`` token for token and
``beam_search`` reproduces ``model.generate(num_beams=...)``; the tests check all of it.

The recorded measurements of chapter 5 (every method on the real model, several
prompts and seeds) are made by ``python -m llmlab.records.sampling_sweep``; the
functions here that it uses (:func:`generate_settings`, :func:`score_continuations`,
:func:`summarise`) take the model and the prompts as arguments.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import _checks, compat

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
        raise _checks.ArgumentTypeError(f"top_k must be an integer >= 0 (0 disables it), got {k!r}")
    if k < 0:
        raise ValueError(f"top_k must be >= 0 (0 disables it), got {k}")


def _check_top_p(p: float) -> None:
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        raise ValueError(f"top_p must be a number in (0, 1], got {p!r}")
    if not 0.0 < p <= 1.0:  # also catches NaN
        raise ValueError(f"top_p must be in (0, 1], got {p}")


def _check_min_p(min_p: float) -> None:
    if isinstance(min_p, bool) or not isinstance(min_p, (int, float)):
        raise TypeError(f"min_p must be a number in [0, 1] (0 disables it), got {min_p!r}")
    if not 0.0 <= min_p <= 1.0:  # also catches NaN
        raise ValueError(f"min_p must be in [0, 1] (0 disables it), got {min_p}")


def _check_penalty(penalty: float) -> None:
    if isinstance(penalty, bool) or not isinstance(penalty, (int, float)):
        raise TypeError(f"repetition_penalty must be a number > 0 (1 disables it), got {penalty!r}")
    if not penalty > 0:  # also catches NaN
        raise ValueError(
            f"repetition_penalty must be > 0 (1 disables it, above 1 discourages repeats), got {penalty}"
        )


def _check_ngram_size(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"no_repeat_ngram_size must be an integer >= 0 (0 disables it), got {n!r}")
    if n < 0:
        raise ValueError(f"no_repeat_ngram_size must be >= 0 (0 disables it), got {n}")


def _check_num_beams(num_beams: int) -> None:
    if isinstance(num_beams, bool) or not isinstance(num_beams, int):
        raise TypeError(f"num_beams must be an integer >= 1 (1 is greedy decoding), got {num_beams!r}")
    if num_beams < 1:
        raise ValueError(f"num_beams must be >= 1 (1 is greedy decoding), got {num_beams}")


def _check_history(logits: torch.Tensor, input_ids: torch.Tensor) -> None:
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.dtype != torch.long:
        raise TypeError("input_ids (the tokens so far) must be a 2-D LongTensor (batch, seq_len)")
    if logits.dim() != 2 or logits.size(0) != input_ids.size(0):
        raise ValueError(
            f"logits must be (batch, vocab) with one row per row of input_ids, got logits "
            f"{tuple(logits.shape)} and input_ids {tuple(input_ids.shape)}"
        )


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


def min_p_filter(logits: torch.Tensor, min_p: float) -> torch.Tensor:
    """Min-p filtering (Nguyen et al. 2025): keep the tokens whose probability is at
    least ``min_p`` times the probability of the most likely token; set the rest to
    -inf. Rows are ``(..., V)``.

    The bar moves with the model's confidence: when the top token has 0.9, tokens
    below ``0.9 * min_p`` go; when the top token has only 0.05, the bar is twenty
    times lower and many tokens stay. ``min_p = 0`` disables it; the most likely
    token always survives. Same result as Hugging Face's ``MinPLogitsWarper``.
    """
    _check_min_p(min_p)
    if min_p == 0.0:
        return logits
    probs = logits.softmax(dim=-1)  # (..., V)
    threshold = min_p * probs.amax(dim=-1, keepdim=True)  # (..., 1)
    return logits.masked_fill(probs < threshold, float("-inf"))


def filter_logits(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
    min_p: float = 0.0,
) -> torch.Tensor:
    """Apply temperature, then top-k, then top-p, then min-p (Hugging Face's order) to
    ``(..., V)`` logits.

    Returns logits of the same shape with ruled-out tokens at -inf.
    """
    _check_temperature(temperature)
    _check_top_k(top_k)
    _check_top_p(top_p)
    _check_min_p(min_p)
    if temperature != 1.0:  # like HF, skip the no-op so bits stay untouched
        logits = apply_temperature(logits, temperature)
    logits = top_k_filter(logits, top_k)
    logits = top_p_filter(logits, top_p)
    logits = min_p_filter(logits, min_p)
    return logits


# -----------------------------------------------------------------------------
# processors that look at the text so far (they also apply to greedy decoding)


def apply_repetition_penalty(
    logits: torch.Tensor, input_ids: torch.Tensor, penalty: float,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Make every token that already occurs in ``input_ids`` ``(B, T)`` less likely:
    its logit in ``logits`` ``(B, V)`` is divided by ``penalty`` when positive and
    multiplied by it when negative, so with ``penalty > 1`` it always moves down.
    That sign rule is Hugging Face's ``RepetitionPenaltyLogitsProcessor`` (same
    result); CTRL (Keskar et al. 2019), where the penalty comes from, divides every
    such logit, which raises a negative one. Applied once per token, however often
    it occurred; the prompt counts too, padding (``attention_mask`` 0) does not.
    ``penalty = 1`` changes nothing.
    """
    _check_penalty(penalty)
    _check_history(logits, input_ids)
    if penalty == 1.0:
        return logits
    V = logits.size(-1)
    if attention_mask is not None:  # send padding to a spare column V, dropped below
        input_ids = input_ids.masked_fill(attention_mask == 0, V)
    seen = torch.zeros(logits.size(0), V + 1, dtype=torch.bool, device=logits.device)
    seen = seen.scatter(1, input_ids, True)[:, :V]  # (B, V): occurred at least once
    penalised = torch.where(logits < 0, logits * penalty, logits / penalty)
    return torch.where(seen, penalised, logits)


def no_repeat_ngram_filter(
    logits: torch.Tensor, input_ids: torch.Tensor, n: int
) -> torch.Tensor:
    """Forbid (-inf) every token that would complete an ``n``-gram already present in
    ``input_ids`` ``(B, T)`` (prompt included); ``logits`` is ``(B, V)``.

    With ``n = 3``, if the text so far ends in "of the" and contains "of the sea",
    then "sea" is banned next. ``n = 0`` disables it. Same result as Hugging Face's
    ``NoRepeatNGramLogitsProcessor`` (fairseq's rule).
    """
    _check_ngram_size(n)
    _check_history(logits, input_ids)
    if n == 0 or input_ids.size(1) < n:
        return logits
    banned = torch.zeros_like(logits, dtype=torch.bool)  # (B, V)
    for row, tokens in enumerate(input_ids.tolist()):
        # the n-1 latest tokens
        suffix = tuple(tokens[len(tokens) - n + 1:]) if n > 1 else ()
        for i in range(len(tokens) - n + 1):  # every earlier n-gram tokens[i : i + n]
            if tuple(tokens[i:i + n - 1]) == suffix:
                banned[row, tokens[i + n - 1]] = True
    return logits.masked_fill(banned, float("-inf"))


def process_logits(
    logits: torch.Tensor, input_ids: torch.Tensor, repetition_penalty: float = 1.0,
    no_repeat_ngram_size: int = 0, attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The history-dependent processors in Hugging Face's order: repetition penalty,
    then no-repeat n-grams. ``logits`` ``(B, V)``, ``input_ids`` ``(B, T)``."""
    logits = apply_repetition_penalty(logits, input_ids, repetition_penalty, attention_mask)
    return no_repeat_ngram_filter(logits, input_ids, no_repeat_ngram_size)


# -----------------------------------------------------------------------------
# choosing the next token


def next_token_distribution(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
    min_p: float = 0.0,
) -> torch.Tensor:
    """Probabilities ``(..., V)`` (each row sums to 1) that sampling draws from."""
    return F.softmax(filter_logits(logits, temperature, top_k, top_p, min_p), dim=-1)


def greedy_next_token(logits: torch.Tensor) -> torch.Tensor:
    """Token ids ``(...)`` of the largest logit in each row (first one on ties)."""
    _checks.tensor("logits", logits)
    return torch.argmax(logits, dim=-1)


def sample_next_token(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    min_p: float = 0.0,
) -> torch.Tensor:
    """Draw one token id per row of ``(..., V)`` logits from the filtered distribution.

    Returns a LongTensor of shape ``(...)``. Pass a seeded ``torch.Generator`` for
    reproducible draws; without one, torch's global generator is used (as in HF).
    """
    if generator is not None and not isinstance(generator, torch.Generator):
        raise _checks.ArgumentTypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__} "
                                        f"{generator!r}; pass torch.Generator().manual_seed({generator!r})")
    probs = next_token_distribution(logits, temperature, top_k, top_p, min_p)  # (..., V)
    flat = probs.reshape(-1, probs.size(-1))  # (N, V): multinomial wants 1-D or 2-D
    if generator is not None and generator.device != flat.device:
        # a CPU generator with a GPU model (or the reverse): draw where the generator lives
        ids = torch.multinomial(flat.to(generator.device), num_samples=1, generator=generator).to(flat.device)
    else:
        ids = torch.multinomial(flat, num_samples=1, generator=generator)  # (N, 1)
    return ids.reshape(probs.shape[:-1])


# -----------------------------------------------------------------------------
# the decoding loop


def _check_inputs(model, input_ids, max_new_tokens, attention_mask) -> None:
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
        raise _checks.ArgumentTypeError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
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
    if attention_mask is not None and (
        not isinstance(attention_mask, torch.Tensor) or attention_mask.shape != input_ids.shape
    ):
        got = tuple(attention_mask.shape) if isinstance(attention_mask, torch.Tensor) else type(attention_mask).__name__
        raise ValueError(
            f"attention_mask must be a tensor shaped like input_ids {tuple(input_ids.shape)} "
            f"(1 = token, 0 = left padding), got {got}"
        )
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    _checks.token_ids("input_ids", input_ids, vocab if isinstance(vocab, int) else None)
    window = _checks.context_window(model) if hasattr(model, "config") else None
    if window is not None and input_ids.size(1) + max_new_tokens > window:
        raise ValueError(
            f"prompt ({input_ids.size(1)} tokens) + max_new_tokens ({max_new_tokens}) = "
            f"{input_ids.size(1) + max_new_tokens} exceeds the model's context window of {window} tokens; "
            "shorten the prompt or lower max_new_tokens"
        )


class _Stepper:
    """Runs a causal LM one step at a time with a key-value cache and left padding.

    The first call feeds the whole prompt (the "prefill"); later calls feed only the
    newest token. With an ``attention_mask`` (1 = token, 0 = left padding) the
    padded positions are masked and positions count from each row's first real
    token, as in ``model.generate``.
    """

    def __init__(self, model, attention_mask: torch.Tensor | None, use_cache: bool = True):
        self.model, self.mask, self.use_cache = model, attention_mask, use_cache
        self.cache = None  # the DynamicCache, once the model has returned one
        self.cache_kw = compat.cache_argument(model)  # "cache" (transformers >= 5.24) or "past_key_values"

    def __call__(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``(B, V)`` (float32) after the sequences ``input_ids`` ``(B, T)``."""
        kw = {}
        if self.mask is not None:
            mask = self.mask
            if mask.size(1) < input_ids.size(1):  # new tokens are never padding
                extra = input_ids.size(1) - mask.size(1)
                mask = torch.cat([mask, mask.new_ones(mask.size(0), extra)], dim=1)
            self.mask = mask
            positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)  # (B, T)
            kw["attention_mask"] = mask
        fresh = self.cache is None or not self.use_cache
        step_ids = input_ids if fresh else input_ids[:, -1:]  # with a cache: only the new token
        if self.mask is not None:
            kw["position_ids"] = positions[:, -step_ids.size(1):]
        if self.use_cache:
            out = self.model(input_ids=step_ids, use_cache=True, **{self.cache_kw: self.cache}, **kw)
            self.cache = compat.returned_cache(out)
        else:
            out = self.model(input_ids=step_ids, use_cache=False, **kw)
        return out.logits[:, -1, :].float()  # float32 like HF, whatever the model dtype

    def reorder(self, rows: torch.Tensor) -> None:
        """Keep the cache (and mask) rows ``rows`` ``(B,)``, in that order (beam search)."""
        if self.cache is not None:
            self.cache.reorder_cache(rows)
        if self.mask is not None:
            self.mask = self.mask[rows]


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
    min_p: float = 0.0,
    repetition_penalty: float = 1.0,
    no_repeat_ngram_size: int = 0,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Extend each prompt in ``input_ids`` ``(B, T)`` by up to ``max_new_tokens`` tokens.

    An explicit token-by-token loop over a Hugging Face causal LM. At each step the
    history-dependent processors (``repetition_penalty``, ``no_repeat_ngram_size``)
    adjust the logits; then greedy takes the largest when ``do_sample=False``
    (temperature, top_k, top_p and min_p are then ignored), otherwise a token is
    drawn after temperature, top-k, top-p and min-p. Returns prompt plus new tokens,
    ``(B, T + n)`` with ``n <= max_new_tokens``: generation stops early once every
    row has produced ``stop_token_id``, and rows that finished earlier are padded
    with it. Prompts of different lengths go in left-padded, with an
    ``attention_mask`` (1 = token, 0 = padding). Output equals ``model.generate``
    with the same settings and ``eos_token_id=stop_token_id,
    pad_token_id=stop_token_id``.

    With ``use_cache=True`` the model keeps its keys and values (a ``DynamicCache``)
    and each step feeds it only the newest token; with ``False`` every step runs
    the whole sequence again (same tokens, slower).
    """
    _checks.model("model", model)
    _check_inputs(model, input_ids, max_new_tokens, attention_mask)
    _check_penalty(repetition_penalty)
    _check_ngram_size(no_repeat_ngram_size)
    if do_sample:  # under greedy these settings are ignored, as in HF
        _check_temperature(temperature)
        _check_top_k(top_k)
        _check_top_p(top_p)
        _check_min_p(min_p)

    input_ids = input_ids.to(model.device)
    mask = attention_mask.to(model.device) if attention_mask is not None else None
    step = _Stepper(model, mask, use_cache)
    unfinished = torch.ones(input_ids.size(0), dtype=torch.bool, device=input_ids.device)  # (B,)

    for _ in range(max_new_tokens):
        logits = step(input_ids)  # (B, V)
        logits = process_logits(logits, input_ids, repetition_penalty, no_repeat_ngram_size, step.mask)
        if do_sample:
            next_ids = sample_next_token(logits, temperature, top_k, top_p, generator, min_p)  # (B,)
        else:
            next_ids = greedy_next_token(logits)  # (B,)

        if stop_token_id is not None:
            # rows that already stopped keep emitting the stop token as padding
            next_ids = torch.where(unfinished, next_ids, torch.full_like(next_ids, stop_token_id))
            unfinished = unfinished & (next_ids != stop_token_id)

        input_ids = torch.cat([input_ids, next_ids[:, None]], dim=1)  # (B, T+1)
        if not unfinished.any():
            break
    return input_ids


# -----------------------------------------------------------------------------
# beam search


@torch.no_grad()
def beam_search(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    num_beams: int = 4,
    max_new_tokens: int = 20,
    length_penalty: float = 1.0,
    stop_token_id: int | None = None,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Beam search: keep the ``num_beams`` most probable partial continuations of each
    prompt in ``input_ids`` ``(B, T)`` and return the best finished one, ``(B, T + n)``.

    A beam's score is the sum of its tokens' log-probabilities (nats). At each step
    every beam proposes every token; of the ``num_beams * V`` candidates the best
    ``2 * num_beams`` are looked at: those that end in ``stop_token_id`` (or reach
    ``max_new_tokens``) join the finished list, scored by sum / length **
    ``length_penalty``, and the best ``num_beams`` others go on. A prompt is done when
    it holds ``num_beams`` finished ones and its best running beam, scored at its
    current length, does not beat the worst of them: Hugging Face's default
    ``early_stopping=False``, a heuristic (with ``length_penalty > 0`` a longer
    answer could still overtake; ``early_stopping="never"`` would check that).
    Shorter results are padded with ``stop_token_id``.
    Equals ``model.generate(num_beams=num_beams, do_sample=False,
    length_penalty=length_penalty, eos_token_id=stop_token_id,
    pad_token_id=stop_token_id)``, token for token. ``num_beams=1`` is greedy decoding.
    """
    _checks.model("model", model)
    _check_num_beams(num_beams)
    _check_inputs(model, input_ids, max_new_tokens, attention_mask)
    if isinstance(length_penalty, bool) or not isinstance(length_penalty, (int, float)):
        raise TypeError("length_penalty must be a number (1 = divide by length, "
                        f"0 = none), got {length_penalty!r}")
    if max_new_tokens == 0:
        return input_ids
    B, T = input_ids.shape
    K, dev = num_beams, model.device
    # every prompt row becomes K identical beam rows: (B * K, T)
    rows = input_ids.to(dev).repeat_interleave(K, dim=0)
    mask = None
    if attention_mask is not None:
        mask = attention_mask.to(dev).repeat_interleave(K, dim=0)
    step = _Stepper(model, mask)
    running = rows.view(B, K, T)  # (B, K, t)
    run_scores = torch.zeros(B, K, device=dev)
    run_scores[:, 1:] = -1e9  # at first all beams are equal: let only beam 0 propose
    pad = stop_token_id if stop_token_id is not None else -1
    done_seqs = torch.full((B, K, T + max_new_tokens), pad, dtype=torch.long,
                           device=dev)
    # the finished hypotheses, best first
    done_scores = torch.full((B, K), -1e9, device=dev)
    # is that slot a real hypothesis?
    done_full = torch.zeros(B, K, dtype=torch.bool, device=dev)
    # its number of new tokens
    done_len = torch.zeros(B, K, dtype=torch.long, device=dev)
    # can a prompt still improve?
    open_ = torch.ones(B, 1, dtype=torch.bool, device=dev)
    n_cand = 2 * K  # enough that K candidates survive even if K of them just stopped

    for t in range(max_new_tokens):
        logp = F.log_softmax(step(running.reshape(B * K, -1)), dim=-1)  # (B*K, V)
        V = logp.size(-1)
        total = (logp.view(B, K, V) + run_scores[:, :, None]).view(B, K * V)
        cand_scores, cand_idx = torch.topk(total, n_cand)  # (B, 2K), best first
        beam, token = cand_idx // V, cand_idx % V
        parents = torch.take_along_dim(running, beam[:, :, None], dim=1)
        cand = torch.cat([parents, token[:, :, None]], 2)
        length = t + 1  # new tokens in every candidate
        stops = torch.zeros_like(token, dtype=torch.bool)
        if stop_token_id is not None:
            stops = token == stop_token_id
        if length == max_new_tokens:
            stops = torch.ones_like(stops)  # out of room: every candidate ends here
        # finished: only candidates ranked among the first K may join the finished list
        joins = stops & (torch.arange(n_cand, device=dev) < K)
        new_scores = cand_scores / length ** length_penalty
        new_scores = new_scores + (~open_) * -1e9  # a closed prompt takes no more
        new_scores = new_scores + (~joins) * -1e9
        padded = F.pad(cand, (0, done_seqs.size(2) - cand.size(2)), value=pad)
        pool_seqs = torch.cat([done_seqs, padded], 1)
        pool_scores = torch.cat([done_scores, new_scores], 1)
        pool_full = torch.cat([done_full, joins], 1)
        pool_len = torch.cat([done_len, torch.full_like(token, length)], 1)
        best = torch.topk(pool_scores, K).indices  # (B, K)
        done_seqs = torch.take_along_dim(pool_seqs, best[:, :, None], 1)
        done_scores = torch.take_along_dim(pool_scores, best, 1)
        done_full = torch.take_along_dim(pool_full, best, 1)
        done_len = torch.take_along_dim(pool_len, best, 1)
        if length == max_new_tokens:
            break
        # running: the best K candidates that did not stop
        keep = torch.topk(cand_scores + stops * -1e9, K).indices  # (B, K)
        running = torch.take_along_dim(cand, keep[:, :, None], 1)
        run_scores = torch.take_along_dim(cand_scores + stops * -1e9, keep, 1)
        row0 = K * torch.arange(B, device=dev)[:, None]  # each prompt's first row
        parent = torch.take_along_dim(beam, keep, 1) + row0
        step.reorder(parent.flatten())
        # a prompt is done when its best running beam, even at today's length, cannot
        # beat the worst of K finished hypotheses
        worst_done = done_scores.min(dim=1, keepdim=True).values
        worst = torch.where(done_full, worst_done, -1e9)
        could = run_scores[:, :1] / length ** length_penalty > worst  # (B, K)
        open_ = open_ & could.any(dim=1, keepdim=True)
        if not open_.any():
            break
    # the finished list is sorted best first; crop to the longest generated result
    return done_seqs[:, 0, : T + int(done_len[:, 0].max())]


# -----------------------------------------------------------------------------
# many settings at once, and their answers scored (chapter 5's measurements)
def _setting_kwargs(setting: dict) -> dict:
    return {k: v for k, v in setting.items() if k not in ("name", "method")}


def _rows_per_prompt(setting: dict, samples: int) -> int:
    return samples if setting["method"] == "sample" else 1


@torch.no_grad()
def generate_settings(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, settings: list[dict],
                      max_new_tokens: int, stop_token_id: int, samples: int = 2,
                      seed: int = 0) -> list[list[list[int]]]:
    """Decode the prompts ``input_ids`` ``(P, T)`` (left-padded, with their
    ``attention_mask``) with many greedy or sampling settings at once.

    The same step as :func:`generate`, but every setting owns a block of rows of one
    batch (one row per prompt for greedy, ``samples`` per prompt when sampling), so
    the model runs once per step for all of them: on a CPU the per-step overhead, not
    the arithmetic, is what costs. Each sampling block draws from its own CPU
    generator seeded with ``seed``, so a block gets the tokens that
    ``generate(..., generator=torch.Generator().manual_seed(seed))`` gives for those
    rows alone. Returns, per setting, its rows' new tokens (stop token and padding
    removed), prompt-major.
    """
    _checks.model("model", model)
    blocks, ids, mask = [], [], []
    for s in settings:
        if s["method"] not in ("greedy", "sample"):
            raise ValueError(f"generate_settings runs greedy and sample settings, got {s['method']!r}")
        per = _rows_per_prompt(s, samples)
        start = sum(x.size(0) for x in ids)
        blocks.append((s, start, start + per * input_ids.size(0), torch.Generator().manual_seed(seed)))
        ids.append(input_ids.repeat_interleave(per, 0))
        mask.append(attention_mask.repeat_interleave(per, 0))
    ids = torch.cat(ids).to(model.device)
    step = _Stepper(model, torch.cat(mask).to(model.device))
    T = ids.size(1)
    unfinished = torch.ones(ids.size(0), dtype=torch.bool, device=ids.device)
    for _ in range(max_new_tokens):
        logits = step(ids)  # (N, V): every setting's rows in one forward pass
        next_ids = torch.empty(ids.size(0), dtype=torch.long, device=ids.device)
        for s, lo, hi, gen in blocks:
            kw = _setting_kwargs(s)
            part = process_logits(logits[lo:hi], ids[lo:hi], kw.pop("repetition_penalty", 1.0),
                                  kw.pop("no_repeat_ngram_size", 0), step.mask[lo:hi])
            if s["method"] == "sample":
                next_ids[lo:hi] = sample_next_token(part, generator=gen, **kw)
            else:
                next_ids[lo:hi] = greedy_next_token(part)
        next_ids = torch.where(unfinished, next_ids, torch.full_like(next_ids, stop_token_id))
        unfinished = unfinished & (next_ids != stop_token_id)
        ids = torch.cat([ids, next_ids[:, None]], dim=1)
        if not unfinished.any():
            break
    return [[_strip(row, stop_token_id) for row in ids[lo:hi, T:].tolist()] for _, lo, hi, _ in blocks]


def _strip(row: list[int], stop: int) -> list[int]:
    return row[: row.index(stop)] if stop in row else row


@torch.no_grad()
def score_continuations(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                        new_tokens: list[list[int]], pad_token_id: int, batch_size: int = 8,
                        keep_logits: bool = False):
    """How surprising each continuation is to the model itself, at T = 1 without filters.

    ``input_ids``/``attention_mask`` ``(N, T)`` are left-padded prompts (one row per
    continuation) and ``new_tokens`` the N continuations. Returns a list of N mean
    losses in nats per token (``exp`` of one is that sample's perplexity), and with
    ``keep_logits`` also the list of N ``(n_i, V)`` logits that predicted each new token.
    """
    _checks.model("model", model)
    if len(new_tokens) != input_ids.size(0):
        raise ValueError(f"one continuation per prompt row: got {len(new_tokens)} continuations "
                         f"for {input_ids.size(0)} rows")
    nats, kept = [], []
    T = input_ids.size(1)
    for start in range(0, len(new_tokens), batch_size):
        chunk = new_tokens[start:start + batch_size]
        n = max(1, max(len(r) for r in chunk))
        new = torch.tensor([r + [pad_token_id] * (n - len(r)) for r in chunk], dtype=torch.long)
        new_mask = torch.tensor([[1] * len(r) + [0] * (n - len(r)) for r in chunk], dtype=torch.long)
        ids = torch.cat([input_ids[start:start + len(chunk)], new], 1).to(model.device)
        mask = torch.cat([attention_mask[start:start + len(chunk)], new_mask], 1).to(model.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits.float()
        pred = logits[:, T - 1:T - 1 + n]  # (b, n, V): the logits that predicted each new token
        loss = F.cross_entropy(pred.transpose(1, 2), new.to(model.device), reduction="none")  # (b, n)
        for i, r in enumerate(chunk):
            nats.append(loss[i, :len(r)].mean().item() if r else float("nan"))
            if keep_logits:
                kept.append(pred[i, :len(r)].cpu())
    return (nats, kept) if keep_logits else nats


def interval95(values) -> tuple[float, float, float]:
    """Mean and 95% Student-t interval of independent values (here: one per prompt)."""
    import numpy as np
    from scipy import stats

    v = np.asarray(list(values), dtype=float)
    v = v[~np.isnan(v)]
    if v.size < 2:
        raise ValueError(f"an interval needs at least 2 values, got {v.size}")
    half = stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def per_prompt(record: dict):
    """One row per (setting, prompt) of a sweep record: the mean over that prompt's answers of
    distinct-2 (distinct word pairs / all word pairs *within one answer*, 0 to 1), repeated
    4-grams (share, 0 to 1) and the model's loss on the answer (nats per token).

    Each measure is defined on one answer, so a deterministic method's single answer and
    a sampled one are scored alike; these per-prompt values are what paired tests compare
    (:func:`llmlab.stats.compare` on the same prompts)."""
    import pandas as pd

    from . import metrics

    if not isinstance(record, dict):
        raise _checks.ArgumentTypeError(f"record must be a sweep record (the dict llmlab.records.sampling_sweep.load() returns), "
                                        f"got {type(record).__name__}")
    if "rows" not in record:
        raise ValueError("record lacks ['rows']: pass the sweep record, llmlab.records.sampling_sweep.load()")
    rows = pd.DataFrame(record["rows"])
    rows["distinct-2"] = [metrics.distinct_n(t, 2) for t in rows.text]
    out = rows.groupby(["setting", "prompt"], sort=False).agg(
        **{"distinct-2": ("distinct-2", "mean"), "repeated 4-grams": ("repeated_4grams", "mean"),
           "nats": ("nats_per_token", "mean")})
    return out.reset_index()


def summarise(record: dict):
    """One row per setting of a sweep record: mean and 95% interval over prompts of the
    measures of :func:`per_prompt` (distinct-2 within an answer, repeated 4-grams, and the
    model's perplexity of its own answers); plus mean length and the share that ended.
    Intervals of shares are clipped to [0, 1]."""
    import math

    import pandas as pd

    scores = per_prompt(record)
    rows = pd.DataFrame(record["rows"])
    out = []
    for setting in dict.fromkeys(rows.setting):
        s = rows[rows.setting == setting]
        p = scores[scores.setting == setting]
        row = {"setting": setting}
        for name, vals, f in (("distinct-2", p["distinct-2"], None),
                              ("repeated 4-grams", p["repeated 4-grams"], None),
                              ("perplexity", p["nats"], math.exp)):
            m, lo, hi = interval95(vals)
            if f is None:  # a share: the interval cannot leave [0, 1]
                row[name], row[f"{name} lo"], row[f"{name} hi"] = m, max(lo, 0.0), min(hi, 1.0)
            else:  # perplexity: the interval of the mean loss, mapped through exp
                row[name], row[f"{name} lo"], row[f"{name} hi"] = f(m), f(lo), f(hi)
        row["new tokens"] = s.n_tokens.mean()
        row["ended"] = s.ended.mean()
        out.append(row)
    return pd.DataFrame(out)
