"""A catalogue of wrong answers for the exercise checks of chapter 14 (serving a model).

Every entry is a function (or a quiz answer) a student could plausibly write: a key-value cache without
its 2 (keys and values), without the batch, in bits, sized by the query heads or by hidden_size, or with
head_dim worked out when the config gives it; speculative decoding's tokens per pass cut one term short,
without the target's own token, or linear in the acceptance, and a speed-up that forgets the target's
verifying pass or runs the draft k + 1 times; block tables not mapped through the table, offsets taken
by division, blocks rounded down, the highest free blocks taken first, no MemoryError, freed blocks not
reused or put behind the others; prompt lookup taking the latest occurrence, matching the tail itself,
without its fallback to shorter n-grams, or proposing k + 1 tokens. Each is run through the real
check, which must reject it (return False) and print a message that names the mistake. Right answers
written differently from the solutions must be accepted, and the checks' own references must agree
with the library (``llmlab.kv_cache``, ``llmlab.llama``, ``llmlab.serving``) and with values worked
out by hand.
"""

from __future__ import annotations

import contextlib
import heapq
import io
import math
import random
from dataclasses import dataclass
from typing import Any, Callable

import pytest

from llmlab import exercises as ex
from llmlab import kv_cache, llama, serving
from llmlab.exercises import ch14_serving as ch14

pytestmark = pytest.mark.usefixtures("one_thread")


def run_check(check: Callable, answer: Any) -> tuple[bool, str]:
    """Run ``check`` on ``answer`` (a tuple: several functions); return its verdict and printed feedback."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        verdict = check(*answer) if isinstance(answer, tuple) else check(answer)
    return verdict, out.getvalue()


@dataclass
class Wrong:
    check: str     # name of the check in llmlab.exercises
    mistake: str   # the mistake, in words (the test id)
    answer: Any    # the student's function, a tuple of functions, or a quiz dict
    names: str     # a distinctive part of the feedback that names the mistake


# =================================================================== the key-value cache
def _kv(L, H, D, T, B, b):
    return 2 * L * H * D * T * B * b


def _config_kv(config, T, B, b):
    return _kv(config.num_hidden_layers, config.num_key_value_heads, config.head_dim, T, B, b)


def _kv_with(kv_fn):  # the right config function, through a (wrong) kv_bytes
    return kv_fn, lambda c, T, B, b: kv_fn(c.num_hidden_layers, c.num_key_value_heads, c.head_dim, T, B, b)


def _in_megabytes(L, H, D, T, B, b):
    return _kv(L, H, D, T, B, b) / 1e6


KV = [
    Wrong("check_kv_bytes", "no 2 for keys and values", _kv_with(lambda L, H, D, T, B, b: L * H * D * T * B * b),
          "the 2 is missing"),
    Wrong("check_kv_bytes", "batch forgotten", _kv_with(lambda L, H, D, T, B, b: 2 * L * H * D * T * b),
          "batch is missing"),
    Wrong("check_kv_bytes", "bits instead of bytes", _kv_with(lambda L, H, D, T, B, b: 8 * _kv(L, H, D, T, B, b)),
          "that is bits"),
    Wrong("check_kv_bytes", "layers forgotten", _kv_with(lambda L, H, D, T, B, b: 2 * H * D * T * B * b),
          "layers are missing"),
    Wrong("check_kv_bytes", "values, not bytes", _kv_with(lambda L, H, D, T, B, b: 2 * L * H * D * T * B),
          "bytes_per_value is missing"),
    Wrong("check_kv_bytes", "megabytes", _kv_with(_in_megabytes), "megabytes"),
    Wrong("check_kv_bytes", "a string with its unit", _kv_with(lambda *a: f"{_kv(*a) / 1e6:.0f} MB"),
          "expected a number"),
    Wrong("check_kv_bytes", "query heads instead of KV heads",
          (_kv, lambda c, T, B, b: _kv(c.num_hidden_layers, c.num_attention_heads, c.head_dim, T, B, b)),
          "num_attention_heads counts the query heads"),
    Wrong("check_kv_bytes", "hidden size instead of KV heads x head_dim",
          (_kv, lambda c, T, B, b: 2 * c.num_hidden_layers * c.hidden_size * T * B * b), "hidden_size is the width"),
    Wrong("check_kv_bytes", "head_dim from hidden_size when the config gives it",
          (_kv, lambda c, T, B, b: _kv(c.num_hidden_layers, c.num_key_value_heads,
                                       c.hidden_size // c.num_attention_heads, T, B, b)),
          "the config gives head_dim"),
    Wrong("check_kv_bytes", "config function without the batch",
          (_kv, lambda c, T, B, b: _config_kv(c, T, 1, b)), "batch is missing"),
]


# =================================================================== speculative decoding
def _tokens(a, k):
    return float(k + 1) if a == 1 else (1 - a ** (k + 1)) / (1 - a)


def _speedup(a, k, c):
    return _tokens(a, k) / (1 + k * c)


def _a_to_the_k(a, k):
    return float(k) if a == 1 else (1 - a ** k) / (1 - a)


def _accepted_only(a, k):
    return _tokens(a, k) - 1


def _no_special_case(a, k):  # 0/0 at a = 1
    return (1 - a ** (k + 1)) / (1 - a)


SPECULATIVE = [
    Wrong("check_speculative_speedup", "a^k instead of a^(k+1)", (_a_to_the_k, _speedup), "one token short"),
    Wrong("check_speculative_speedup", "no bonus token", (_accepted_only, _speedup),
          "counts only the drafted tokens accepted"),
    Wrong("check_speculative_speedup", "linear in the acceptance", (lambda a, k: 1 + k * a, _speedup),
          "not a"),
    Wrong("check_speculative_speedup", "no case for a = 1", (_no_special_case, _speedup),
          "division by zero at acceptance = 1"),
    Wrong("check_speculative_speedup", "the limit for endless k",
          (lambda a, k: float(k + 1) if a == 1 else 1 / (1 - a), _speedup), "its limit"),
    Wrong("check_speculative_speedup", "divided by k * draft_cost without the 1",
          (_tokens, lambda a, k, c: _tokens(a, k) / (k * c)), "verifying pass is left out"),
    Wrong("check_speculative_speedup", "divided by k * draft_cost, guarded at 0",
          (_tokens, lambda a, k, c: _tokens(a, k) / (k * c) if c else _tokens(a, k)), "verifying pass is left out"),
    Wrong("check_speculative_speedup", "the draft runs k + 1 steps",
          (_tokens, lambda a, k, c: _tokens(a, k) / (1 + (k + 1) * c)), "not k + 1"),
    Wrong("check_speculative_speedup", "draft cost not multiplied by k",
          (_tokens, lambda a, k, c: _tokens(a, k) / (1 + c)), "the draft runs k steps per pass"),
    Wrong("check_speculative_speedup", "upside down", (_tokens, lambda a, k, c: (1 + k * c) / _tokens(a, k)),
          "upside down"),
    Wrong("check_speculative_speedup", "speed-up on the wrong tokens per pass",
          (_a_to_the_k, lambda a, k, c: _a_to_the_k(a, k) / (1 + k * c)), "the tokens per pass are wrong"),
]


# =================================================================== block tables
def _locate(p, table, bs):
    return table[p // bs], p % bs


def _blocks(t, bs):
    return -(-t // bs)


def _stream(lengths, n, bs, blocks=_blocks, lowest=True, strict=True):
    free, tables = list(range(n)), []
    for length in lengths:
        need = blocks(length, bs)
        if need > len(free) or (not strict and need == len(free)):
            raise MemoryError("out of blocks")
        taken = free[:need] if lowest else free[::-1][:need]
        tables.append(taken)
        free = [b for b in free if b not in taken]
    return tables


def _no_memory_error(lengths, n, bs):  # hands out what is left and carries on
    free, tables = list(range(n)), []
    for length in lengths:
        need = _blocks(length, bs)
        tables.append(free[:need])
        free = free[need:]
    return tables


def _twice(lengths, n, bs):  # every request numbered from block 0
    if sum(_blocks(x, bs) for x in lengths) > n:
        raise MemoryError("out of blocks")
    return [list(range(_blocks(x, bs))) for x in lengths]


def _after(tables, finished, new, n, bs, blocks=_blocks):
    held = {b for i, t in enumerate(tables) if i != finished for b in t}
    free = [b for b in range(n) if b not in held]
    need = blocks(new, bs)
    if need > len(free):
        raise MemoryError("out of blocks")
    return free[:need]


def _after_not_reused(tables, finished, new, n, bs):
    held = {b for t in tables for b in t}
    free = [b for b in range(n) if b not in held]
    if _blocks(new, bs) > len(free):
        raise MemoryError("out of blocks")
    return free[:_blocks(new, bs)]


def _after_highest(tables, finished, new, n, bs):
    start = max(b for t in tables for b in t) + 1
    return list(range(start, start + _blocks(new, bs)))


def _after_appended(tables, finished, new, n, bs):  # freed blocks behind the never-used ones
    held = {b for t in tables for b in t}
    free = [b for b in range(n) if b not in held] + list(tables[finished])
    if _blocks(new, bs) > len(free):
        raise MemoryError("out of blocks")
    return free[:_blocks(new, bs)]


def _after_in_place(tables, finished, new, n, bs):  # right blocks, but the caller's tables lose one
    tables.pop(finished)
    held = {b for t in tables for b in t}
    free = [b for b in range(n) if b not in held]
    if _blocks(new, bs) > len(free):
        raise MemoryError("out of blocks")
    return free[:_blocks(new, bs)]


def _after_value_error(tables, finished, new, n, bs):
    try:
        return _after(tables, finished, new, n, bs)
    except MemoryError:
        raise ValueError("not enough blocks") from None


def _floor(t, bs):
    return t // bs


def _plus_one(t, bs):
    return t // bs + 1


RIGHT_BLOCKS = (_locate, _blocks, _stream, _after)


def _blocks_with(**changed):
    parts = dict(zip(("locate", "blocks", "stream", "after"), RIGHT_BLOCKS))
    parts.update(changed)
    return tuple(parts.values())


BLOCKS = [
    Wrong("check_block_table", "block index not mapped through the table",
          _blocks_with(locate=lambda p, t, bs: (p // bs, p % bs)), "index into the request's block table"),
    Wrong("check_block_table", "offset = position // block_size",
          _blocks_with(locate=lambda p, t, bs: (t[p // bs], p // bs)), "remainder"),
    Wrong("check_block_table", "offset and block swapped",
          _blocks_with(locate=lambda p, t, bs: (p % bs, t[p // bs])), "wrong order"),
    Wrong("check_block_table", "offset counted from 1",
          _blocks_with(locate=lambda p, t, bs: (t[p // bs], p % bs + 1)), "count from 0"),
    Wrong("check_block_table", "floor instead of ceil", _blocks_with(blocks=_floor), "rounded down"),
    Wrong("check_block_table", "one more block than floor", _blocks_with(blocks=_plus_one), "one block too many"),
    Wrong("check_block_table", "a fraction of a block", _blocks_with(blocks=lambda t, bs: t / bs),
          "fraction of a block"),
    Wrong("check_block_table", "floor inside allocate_stream",
          _blocks_with(stream=lambda ls, n, bs: _stream(ls, n, bs, blocks=_floor)), "rounded down"),
    Wrong("check_block_table", "highest free blocks first",
          _blocks_with(stream=lambda ls, n, bs: _stream(ls, n, bs, lowest=False)), "highest free numbers"),
    Wrong("check_block_table", "no MemoryError", _blocks_with(stream=_no_memory_error), "raise MemoryError"),
    Wrong("check_block_table", "MemoryError when the pool is filled exactly",
          _blocks_with(stream=lambda ls, n, bs: _stream(ls, n, bs, strict=False)), "filled exactly"),
    Wrong("check_block_table", "the same blocks handed out twice", _blocks_with(stream=_twice), "handed out twice"),
    Wrong("check_block_table", "freed blocks not reused", _blocks_with(after=_after_not_reused), "not reused"),
    Wrong("check_block_table", "new blocks after the highest", _blocks_with(after=_after_highest),
          "after the highest"),
    Wrong("check_block_table", "freed blocks put behind the others", _blocks_with(after=_after_appended),
          "sort the free blocks"),
    Wrong("check_block_table", "tables changed in place", _blocks_with(after=_after_in_place),
          "changed the block tables"),
    Wrong("check_block_table", "ValueError instead of MemoryError", _blocks_with(after=_after_value_error),
          "raised ValueError"),
]


# =================================================================== prompt lookup
def _lookup(**kwargs):
    return lambda seq, k, ngram: ch14._lookup(seq, k, ngram, **kwargs)


def _latest(seq, k, ngram):
    for size in range(min(ngram, len(seq) - 1), 0, -1):
        tail = seq[-size:]
        for start in range(len(seq) - size - 1, -1, -1):
            if seq[start:start + size] == tail:
                return seq[start + size:start + size + k]
    return []


def _with_tail(seq, k, ngram):  # the occurrence at the very end is looked at too
    for size in range(min(ngram, len(seq) - 1), 0, -1):
        tail = seq[-size:]
        for start in range(len(seq) - size + 1):
            if seq[start:start + size] == tail:
                return seq[start + size:start + size + k]
    return []


def _no_fallback(seq, k, ngram):
    tail = seq[-ngram:]
    for start in range(len(seq) - ngram):
        if seq[start:start + ngram] == tail:
            return seq[start + ngram:start + ngram + k]
    return []


def _k_plus_one(seq, k, ngram):
    return serving.lookup_proposal(seq, k + 1, ngram)


def _appends(seq, k, ngram):  # right proposal, but the caller's sequence grows
    out = serving.lookup_proposal(seq, k, ngram)
    seq.extend(out)
    return out


def _none_when_missing(seq, k, ngram):
    return serving.lookup_proposal(seq, k, ngram) or None


LOOKUP = [
    Wrong("check_prompt_lookup", "latest occurrence", _latest, "LATEST"),
    Wrong("check_prompt_lookup", "the tail itself matched", _with_tail, "tail itself"),
    Wrong("check_prompt_lookup", "no fallback to shorter n-grams", _no_fallback, "no fallback"),
    Wrong("check_prompt_lookup", "k + 1 tokens", _k_plus_one, "k + 1 tokens"),
    Wrong("check_prompt_lookup", "no overlap with the tail", _lookup(overlap=False), "may overlap"),
    Wrong("check_prompt_lookup", "only the last token", _lookup(fallback="last token"), "only the last token"),
    Wrong("check_prompt_lookup", "the matched n-gram proposed too", _lookup(start_at="match"), "FOLLOW"),
    Wrong("check_prompt_lookup", "sequence changed in place", _appends, "changed the sequence"),
    Wrong("check_prompt_lookup", "None for no proposal", _none_when_missing, "None"),
]


# =================================================================== quiz
QUIZ = {
    "the phase of generation that memory bandwidth limits at batch 1 (prefill/decode)": "decode",
    "at a small batch, does doubling the batch double the time of a decoding step (yes/no)": "no",
    "the tokens greedy speculative decoding returns, next to the target's own greedy"
    " decoding (identical/nearly the same/the draft's)": "identical",
    "when a waiting request can join the running batch under continuous batching"
    " (at any decoding step/when the whole batch has finished/never)": "at any decoding step",
    "what a paged cache sets aside for a request"
    " (blocks as its tokens arrive/its longest possible length/one token)": "blocks as its tokens arrive",
    "what grouped-query attention makes smaller (the KV cache/the MLP/the vocabulary)": "the KV cache",
    "where prompt lookup finds its proposals"
    " (earlier tokens of the text/a draft model/the most frequent tokens)": "earlier tokens of the text",
}
_Q = list(QUIZ)

QUIZ_WRONG = [
    Wrong("check_serving_quiz", "prefill bandwidth-bound", {**QUIZ, _Q[0]: "prefill"}, "Williams et al. 2009"),
    Wrong("check_serving_quiz", "doubling the batch doubles a step", {**QUIZ, _Q[1]: "yes"}, "bytes moved"),
    Wrong("check_serving_quiz", "speculative output only nearly the same", {**QUIZ, _Q[2]: "nearly the same"},
          "Leviathan et al. 2023"),
    Wrong("check_serving_quiz", "joins when the batch ends", {**QUIZ, _Q[3]: "when the whole batch has finished"},
          "Yu et al. 2022"),
    Wrong("check_serving_quiz", "paged cache reserves the longest", {**QUIZ, _Q[4]: "its longest possible length"},
          "Kwon et al. 2023"),
    Wrong("check_serving_quiz", "GQA shrinks the MLP", {**QUIZ, _Q[5]: "the MLP"}, "Ainslie et al. 2023"),
    Wrong("check_serving_quiz", "prompt lookup uses a draft", {**QUIZ, _Q[6]: "a draft model"}, "no second model"),
]

CATALOGUE = KV + SPECULATIVE + BLOCKS + LOOKUP + QUIZ_WRONG


@pytest.mark.parametrize("wrong", CATALOGUE, ids=[f"{w.check[6:]}-{w.mistake}" for w in CATALOGUE])
def test_the_check_rejects_the_wrong_answer_and_names_the_mistake(wrong):
    verdict, out = run_check(getattr(ex, wrong.check), wrong.answer)
    assert verdict is False, f"accepted: {wrong.mistake}\n{out}"
    assert wrong.names in out, f"the feedback does not name the mistake ({wrong.names!r}):\n{out}"
    assert "inf%" not in out and "by 100%" not in out, out


def test_every_check_of_chapter_14_has_at_least_six_wrong_answers():
    checks = {n for n in vars(ch14) if n.startswith("check_") and hasattr(ex, n)}
    counts = {n: sum(w.check == n for w in CATALOGUE) for n in checks}
    assert len(checks) == 5, counts
    assert all(c >= 6 for n, c in counts.items() if n != "check_serving_quiz"), counts
    assert counts["check_serving_quiz"] == len(QUIZ)


# ------------------------------------------------------------------ right answers written another way
def _kv_prod(L, H, D, T, B, b):
    return math.prod((2, L, H, D, T, B, b))


def _config_library(config, T, B, b):
    return llama.kv_cache_bytes(config, T, B, b)


def _config_by_hand(config, T, B, b):  # head_dim when the config has one, else hidden_size / heads
    d = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return float(2 * config.num_hidden_layers * config.num_key_value_heads * d * T * B * b)


def _tokens_loop(a, k):  # the series term by term: a = 1 needs no special case
    return sum(a ** i for i in range(k + 1))


def _speedup_loop(a, k, c):
    return _tokens_loop(a, k) / (1 + k * c)


def _locate_divmod(p, table, bs):
    entry, offset = divmod(p, bs)
    return [table[entry], offset]


def _blocks_ceil(t, bs):
    return math.ceil(t / bs)


def _stream_heap(lengths, n, bs):
    free = list(range(n))
    heapq.heapify(free)
    tables = []
    for length in lengths:
        need = math.ceil(length / bs)
        if need > len(free):
            raise MemoryError(f"{need} blocks asked for, {len(free)} free")
        tables.append([heapq.heappop(free) for _ in range(need)])
    return tables


def _after_library(tables, finished, new, n, bs):
    pool = serving.PagedKVCache(1, 1, 1, n, bs)
    pool.allocate(n)  # take everything, then give back what is not held
    pool.release([b for b in range(n) if b not in {x for t in tables for x in t}])
    pool.release(tables[finished])
    return pool.allocate(pool.blocks_for(new))


def _lookup_tuples(seq, k, ngram):  # n-grams as tuples, scanned with a generator
    for size in range(min(ngram, len(seq) - 1), 0, -1):
        tail = tuple(seq[-size:])
        hit = next((s for s in range(len(seq) - size) if tuple(seq[s:s + size]) == tail), None)
        if hit is not None:
            return tuple(seq[hit + size:hit + size + k])
    return ()


RIGHT = [
    ("check_kv_bytes", (_kv_prod, _config_library)),
    ("check_kv_bytes", (kv_cache.cache_bytes, _config_by_hand)),
    ("check_speculative_speedup", (_tokens_loop, _speedup_loop)),
    ("check_speculative_speedup", (serving.expected_tokens_per_pass, _speedup)),
    ("check_block_table", (_locate_divmod, _blocks_ceil, _stream_heap, _after_library)),
    ("check_block_table", RIGHT_BLOCKS),
    ("check_prompt_lookup", serving.lookup_proposal),
    ("check_prompt_lookup", _lookup_tuples),
    ("check_serving_quiz", {**QUIZ, _Q[0]: "Decode.", _Q[1]: "No", _Q[2]: "Identical", _Q[5]: "KV cache",
                            _Q[6]: "Earlier tokens of the text"}),
]


@pytest.mark.parametrize("check, answer", RIGHT, ids=[f"{c[6:]}-{i}" for i, (c, _) in enumerate(RIGHT)])
def test_a_right_answer_written_another_way_is_accepted(check, answer):
    verdict, out = run_check(getattr(ex, check), answer)
    assert verdict is True, out


# ------------------------------------------------------------------ the checks' references against the library
def test_smollm2s_cache_worked_out_by_hand():
    config = ch14._llama_config(30, 576, 9, 3)  # SmolLM2-135M's shape, as the check builds it
    assert llama.head_dim(config) == 64
    by_hand = 2 * 30 * 3 * 64 * 2048 * 8 * 4  # keys and values, layers, KV heads, width, tokens, batch, float32
    assert llama.kv_cache_bytes(config, 2048, 8, 4) == by_hand == kv_cache.cache_bytes(30, 3, 64, 2048, 8, 4)
    # with every query head its own key-value head: three times as much
    assert llama.kv_cache_bytes(config, 2048, 8, 4, kv_heads=9) == 3 * by_hand


def test_the_head_dim_config_keeps_its_own_head_dim():
    config = ch14._llama_config(28, 1024, 16, 8, 128)
    assert llama.head_dim(config) == 128 != config.hidden_size // config.num_attention_heads


def test_the_speculative_references_worked_out_by_hand():
    # a = 0.6, k = 4: 1 + 0.6 + 0.36 + 0.216 + 0.1296 tokens per pass
    assert serving.expected_tokens_per_pass(0.6, 4) == pytest.approx(2.3056)
    assert serving.expected_tokens_per_pass(1.0, 5) == 6.0 and serving.expected_tokens_per_pass(0.0, 3) == 1.0
    # the best k over 1..10 at a = 0.6 and a draft step at 0.05 target steps is 4
    assert max(range(1, 11), key=lambda k: _speedup(0.6, k, 0.05)) == 4


@pytest.mark.parametrize("a, k", [(0.6, 4), (0.0, 3), (1.0, 5), (0.8, 1), (0.25, 6)])
def test_every_tokens_per_pass_variant_is_computed_for_the_case(a, k):
    right = serving.expected_tokens_per_pass(a, k)
    values = [alt for alt, _ in ch14._tokens_variants(a, k) if alt is not None]
    assert all(math.isfinite(v) for v in values)
    assert any(not math.isclose(v, right) for v in values)


def test_the_block_references_are_paged_kv_caches():
    assert ch14._stream([40, 17, 64, 5], 12, 16) == _stream([40, 17, 64, 5], 12, 16)
    assert ch14._stream([40, 40, 40], 8, 16) is None
    tables = [[0, 1, 5], [2, 3], [4, 6]]  # grown side by side
    assert ch14._after(tables, 0, 40, 10, 16) == [0, 1, 5] == _after(tables, 0, 40, 10, 16)
    assert ch14._after(tables, 0, 20, 8, 16) == [0, 1]
    assert ch14._after([[0, 1], [2], [3, 4, 5]], 1, 40, 7, 16) is None


def test_every_block_mistake_changes_an_answer_of_the_check():
    streams = [([40, 17, 64, 5], 12, 16), ([32, 33, 16], 6, 16), ([3, 1, 2], 6, 1), ([64, 20, 1], 9, 16)]
    for kwargs, words in ch14._STREAM_VARIANTS:
        assert any(ch14._stream(*s, **kwargs) != ch14._stream(*s) for s in streams), words
    afters = [([[0, 1, 5], [2, 3], [4, 6]], 0, 20, 8, 16), ([[0, 1], [2, 3, 4], [5]], 1, 33, 6, 16),
              ([[4, 0], [3, 1, 2]], 1, 16, 8, 16)]
    for kwargs, words in ch14._AFTER_VARIANTS:
        assert any(ch14._after(*a, **kwargs) != ch14._after(*a) for a in afters), words


def test_the_lookup_reference_is_lookup_proposal():
    rng = random.Random(0)
    for _ in range(300):
        seq = [rng.randrange(rng.randint(2, 8)) for _ in range(rng.randint(1, 30))]
        k, ngram = rng.randint(1, 6), rng.randint(1, 4)
        assert ch14._lookup(seq, k, ngram) == serving.lookup_proposal(seq, k, ngram), (seq, k, ngram)


def test_every_lookup_mistake_changes_a_proposal_of_the_check():
    cases = [([5, 1, 2, 3, 6, 7, 1, 2, 3, 8, 9, 1, 2, 3], 4, 3), ([3, 5, 8, 1, 5, 8, 2, 4, 8], 4, 3),
             ([1, 2, 9, 9, 1, 2], 4, 3), ([5, 5, 5, 5], 4, 3), ([7, 4, 2, 7, 4, 2, 7, 4], 2, 2)]
    for kwargs, words in ch14._LOOKUP_VARIANTS:
        assert any(ch14._lookup(*c, **kwargs) != serving.lookup_proposal(*c) for c in cases), words
