"""Chapter 14 (serving a model): the checks that ``exercises/src/14_serving.py`` calls, its quiz key and
their private helpers (the shared machinery is in ``_harness.py``).

The references are computed in the checks: the bytes of the key-value cache with
``llmlab.kv_cache.cache_bytes`` and ``llmlab.llama.kv_cache_bytes`` on configs built here; the tokens
per pass of speculative decoding with ``llmlab.serving.expected_tokens_per_pass`` and the speed-up
from its definition (Leviathan et al. 2023); block tables with ``llmlab.serving.PagedKVCache`` itself
(its ``allocate``, ``release`` and ``blocks_for``); prompt lookup's proposals with
``llmlab.serving.lookup_proposal``. Each check also recomputes the likely mistakes, to name the one a
wrong answer made.
"""

from __future__ import annotations

import copy
import math
import numbers
import random
from typing import Any, Callable

from ._harness import _call, _Case, _NotDone, _number_problem, _quiz, _run, _salted, _same_input, _Wrong


def _number(value: Any, what: str) -> float:
    """A result that must be a number (an int or a float; a one-element tensor or a NumPy number is read too)."""
    if hasattr(value, "numel") and hasattr(value, "item") and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _Wrong(f"{what} is a {type(value).__name__}; expected a number")
    return value


def _same(a: float, b: float, rel: float = 1e-9) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


def _named(got: float, want: float, variants, what: str, rel: float = 1e-9) -> str:
    """The words of the first variant that gives ``got`` (and not ``want``), else how ``got`` differs."""
    for alt, words in variants:
        if alt is not None and not _same(alt, want, rel) and _same(alt, got, rel):
            return words
    return _number_problem(got, want, what, rel=rel) or f"{what} differs from the expected value"


def _call_or_error(fn: Callable, *args) -> tuple[Any, BaseException | None]:
    """Call the student's function; return ``(result, None)``, or ``(None, error)`` when it raised
    MemoryError (which some cases expect). Other errors become feedback, as with ``_call``."""
    if not callable(fn):
        raise _Wrong(f"expected a function, got {type(fn).__name__}: pass the function itself, without calling it")
    try:
        return fn(*args), None
    except NotImplementedError:
        raise _NotDone() from None
    except MemoryError as error:
        return None, error
    except Exception as error:  # noqa: BLE001 -- any error of the student's code is feedback
        raise _Wrong(f"your function raised {type(error).__name__}: {error}") from None


# =================================================================== the key-value cache
def _kv_variants(L: int, H: int, D: int, T: int, B: int, b: int) -> list[tuple[float, str]]:
    """(bytes, the mistake in words) for likely mistakes in 2 x layers x KV heads x D x tokens x batch x bytes."""
    right = 2 * L * H * D * T * B * b
    return [
        (right / 2, "the 2 is missing: the cache holds a key AND a value for every layer, key-value head and "
                    "token"),
        (right / B, "batch is missing: every sequence of the batch keeps keys and values of its own"),
        (right * 8, "that is bits: bytes_per_value is already in bytes (4 for float32, 2 for bfloat16), do not "
                    "multiply by 8"),
        (right / 8, "divided by 8: bytes_per_value is already in bytes, the result is bytes as it is"),
        (right / L, "the layers are missing: every layer keeps keys and values of its own"),
        (right / b, "bytes_per_value is missing: that counts the values, not their bytes"),
        (right / D, "head_dim is missing: a key (or a value) of one head is head_dim numbers"),
        (right * 2, "twice too much: the 2 counts keys and values once each (is it in twice?)"),
        (right / 1e6, "that is in megabytes: return the bytes themselves"),
        (right / 2**20, "that is in MiB (2**20 bytes): return the bytes themselves"),
        (right / 1e9, "that is in gigabytes: return the bytes themselves"),
        (right / 2**30, "that is in GiB (2**30 bytes): return the bytes themselves"),
    ]


def _llama_config(layers: int, hidden: int, heads: int, kv_heads: int, head_dim: int | None = None):
    """A ``transformers.LlamaConfig`` of that shape (small MLP and vocabulary: they do not enter the cache)."""
    from transformers import LlamaConfig

    extra = {} if head_dim is None else {"head_dim": head_dim}
    return LlamaConfig(num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=heads,
                       num_key_value_heads=kv_heads, intermediate_size=64, vocab_size=64, **extra)


def check_kv_bytes(kv_fn: Callable, config_fn: Callable) -> bool:
    """Chapter 14. ``kv_fn(layers, kv_heads, head_dim, tokens, batch, bytes_per_value) -> int``: the bytes of a
    key-value cache, 2 (keys and values) x layers x KV heads x head_dim x tokens x batch x bytes per value
    (compared with ``llmlab.kv_cache.cache_bytes``), and ``config_fn(config, tokens, batch, bytes_per_value)``:
    the same for a Llama-style config, its ``num_key_value_heads`` (not the query heads) and its
    ``head_dim`` (compared with ``llmlab.llama.kv_cache_bytes``), on configs built here."""
    from ..kv_cache import cache_bytes
    from ..llama import head_dim, kv_cache_bytes

    def case(L, H, D, T, B, b, label, hidden=True):
        def run():
            got = _number(_call(kv_fn, L, H, D, T, B, b), "the bytes")
            want = cache_bytes(L, H, D, T, B, b)
            if not _same(got, want):
                raise _Wrong(_named(got, want, _kv_variants(L, H, D, T, B, b), "the bytes"))
        return _Case(label, run, hidden)

    def config_case(shape, T, B, b, label, hidden=True):
        def run():
            config = _llama_config(*shape)
            before = config.to_dict()
            got = _number(_call(config_fn, config, T, B, b), "the bytes")
            if config.to_dict() != before:
                raise _Wrong("your function changed the config passed in: read its numbers, leave it as it is")
            want = kv_cache_bytes(config, T, B, b)
            if _same(got, want):
                return
            L, H, KV, D = config.num_hidden_layers, config.num_attention_heads, config.num_key_value_heads, \
                head_dim(config)
            hidden_size = config.hidden_size
            per_query = 2 * L * H * D * T * B * b
            variants = []
            if hidden_size != H * D:
                variants.append((2 * L * hidden_size * T * B * b,
                                 "hidden_size is the width of all the query heads together, not of the keys: a layer "
                                 "keeps num_key_value_heads x head_dim numbers per token, for keys and again for "
                                 "values"))
            variants.append((per_query, "num_attention_heads counts the query heads: the cache keeps only "
                                        "num_key_value_heads heads (grouped-query attention shares each among "
                                        "several query heads)"
                             + ("; hidden_size, here num_attention_heads x head_dim, is no better"
                                if hidden_size == H * D else "")))
            if hidden_size // H != D:
                variants.append((2 * L * KV * (hidden_size // H) * T * B * b,
                                 "the config gives head_dim: use it; hidden_size // num_attention_heads is only its "
                                 "default when a config has none"))
            variants += [(alt, words + " (in kv_bytes?)") for alt, words in _kv_variants(L, KV, D, T, B, b)]
            raise _Wrong(_named(got, want, variants, "the bytes"))
        return _Case(label, run, hidden)

    smol = (30, 576, 9, 3)  # SmolLM2-135M's shape: layers, hidden size, query heads, KV heads
    return _run("kv_bytes", [
        case(30, 3, 64, 2048, 8, 4, "SmolLM2: 30 layers, 3 KV heads of width 64, 2,048 tokens, batch 8, float32",
             hidden=False),
        config_case(smol, 2048, 8, 4, "SmolLM2-135M-Instruct's config, 2,048 tokens, batch 8, float32",
                    hidden=False),
        case(30, 9, 64, 2048, 8, 4, "the same with 9 KV heads (multi-head attention)"),
        case(32, 32, 128, 4096, 1, 2, "Llama-2-7B's shape (multi-head), 4,096 tokens, batch 1, bfloat16"),
        case(32, 8, 128, 8192, 3, 2, "Llama-3-8B's shape (8 KV heads), 8,192 tokens, batch 3, bfloat16"),
        case(80, 8, 128, 32768, 1, 1, "a 70B-sized shape, 32,768 tokens, 8-bit values"),
        case(24, 1, 64, 1000, 5, 2, "multi-query attention (one KV head), batch 5"),
        case(30, 3, 64, 0, 8, 4, "an empty cache (no token yet)"),
        config_case(smol, 100, 1, 2, "SmolLM2's config, 100 tokens, batch 1, bfloat16"),
        config_case((32, 4096, 32, 8), 8192, 3, 2, "Llama-3-8B's config (32 query heads, 8 KV heads), batch 3"),
        config_case((32, 4096, 32, 32), 4096, 5, 2, "Llama-2-7B's config (multi-head attention), batch 5"),
        config_case((28, 1024, 16, 8, 128), 4096, 3, 2,
                    "a config whose head_dim (128) is not hidden_size / num_attention_heads (64), as Qwen3-0.6B's"),
        config_case((28, 3072, 16, 16, 256), 1024, 1, 2,
                    "multi-head attention with head_dim 256 while hidden_size / num_attention_heads is 192"),
    ])


# =================================================================== speculative decoding
def _tokens_variants(a: float, k: int) -> list[tuple[float | None, str]]:
    """(tokens per pass, the mistake in words) for likely mistakes in (1 - a^(k+1)) / (1 - a)."""
    def series(n):  # 1 + a + ... + a^(n-1)
        return float(n) if a == 1 else (1 - a ** n) / (1 - a)
    right = series(k + 1)
    return [
        (series(k), "one token short: a pass yields a^0 + a^1 + ... + a^k tokens, k + 1 terms: "
                    "(1 - a^(k+1)) / (1 - a)"),
        (right - 1, "that counts only the drafted tokens accepted: every pass also yields one token of the "
                    "target's own (its correction at the first rejection, or a bonus token after all k): add 1"),
        (1 + k * a, "the i-th drafted token is kept only when all those before it were kept too: with "
                    "probability a^i, not a"),
        (k * a, "the i-th drafted token is kept only when all those before it were, with probability a^i; and "
                "the target adds a token of its own"),
        (None if a == 1 else 1 / (1 - a), "the series stops after k drafted tokens: 1 / (1 - a) is its limit "
                                          "when k grows without end"),
        (series(k + 2), "one token too many: a pass yields at most k + 1 tokens, a^0 + ... + a^k"),
        (None if a == 1 else (1 - a ** (k + 1)) / a if a else None,
         "divided by a: the series' sum is (1 - a^(k+1)) / (1 - a)"),
    ]


def _speedup_variants(a: float, k: int, c: float, tokens: float) -> list[tuple[float | None, str]]:
    """(speed-up, the mistake in words) for likely mistakes in tokens / (1 + k * draft_cost)."""
    return [
        (tokens / (k * c) if k * c else None,
         "the target's own verifying pass is left out of the cost: a pass costs 1 + k * draft_cost target steps"),
        (tokens / (1 + c), "the draft runs k steps per pass (one per drafted token), each costing draft_cost: "
                           "1 + k * draft_cost"),
        (tokens / (1 + (k + 1) * c), "the draft runs k steps per pass, one per drafted token, not k + 1"),
        (tokens / (1 + (k - 1) * c), "the draft runs k steps per pass, one per drafted token, not k - 1"),
        ((1 + k * c) / tokens, "upside down: the speed-up is the tokens per pass divided by the cost of a pass"),
        (tokens - k * c, "the cost divides the tokens: tokens per pass / (1 + k * draft_cost)"),
        (tokens * (1 + k * c), "the cost multiplies: divide the tokens per pass by 1 + k * draft_cost"),
        (tokens / (1 + k * c) - 1, "that is the gain (speed-up - 1); the speed-up itself is tokens / cost, 1 "
                                   "when nothing is gained"),
    ]


def check_speculative_speedup(tokens_fn: Callable, speedup_fn: Callable) -> bool:
    """Chapter 14. ``tokens_fn(acceptance, k) -> float``: the tokens a pass of greedy speculative decoding
    yields on average, ``(1 - a^(k+1)) / (1 - a)`` (``k + 1`` when ``a = 1``; compared with
    ``llmlab.serving.expected_tokens_per_pass``), and ``speedup_fn(acceptance, k, draft_cost) -> float``: that
    over the cost of a pass in target steps, ``1 + k * draft_cost`` (Leviathan et al. 2023)."""
    from ..serving import expected_tokens_per_pass

    def call(fn, *args):
        try:
            return _call(fn, *args)
        except _Wrong as problem:
            if "ZeroDivision" not in str(problem):
                raise
            a, k, *cost = args
            if a == 1:
                where = ("at acceptance = 1: every drafted token is kept, k + 1 tokens per pass (the formula is "
                         "0/0 there; return k + 1)")
            elif cost and cost[0] == 0:
                where = ("at draft_cost = 0 (a draft that costs nothing): a pass still costs the target's own "
                         "step, 1 + k * draft_cost")
            else:
                where = f"at acceptance = {a}, k = {k}: the only division the formula needs is by (1 - a)"
            raise _Wrong(f"division by zero {where}") from None

    def tokens_case(a, k, label, hidden=True):
        def run():
            got = _number(call(tokens_fn, a, k), "the tokens per pass")
            want = expected_tokens_per_pass(a, k)
            if not _same(got, want):
                raise _Wrong(_named(got, want, _tokens_variants(a, k), "the tokens per pass"))
        return _Case(f"expected_tokens, a = {a}, k = {k}" + (f" ({label})" if label else ""), run, hidden)

    def speedup_case(a, k, c, label, hidden=True):
        def run():
            got = _number(call(speedup_fn, a, k, c), "the speed-up")
            tokens = expected_tokens_per_pass(a, k)
            want = tokens / (1 + k * c)
            if _same(got, want):
                return
            variants = _speedup_variants(a, k, c, tokens)
            for alt_tokens, words in _tokens_variants(a, k):
                if alt_tokens is not None:
                    variants.append((alt_tokens / (1 + k * c), "the tokens per pass are wrong: " + words))
            try:
                theirs = _number(_call(tokens_fn, a, k), "the tokens per pass")
            except (_Wrong, _NotDone):
                theirs = None
            if theirs is not None and not _same(theirs, tokens):
                variants.append((theirs / (1 + k * c), "the speed-up divides your expected_tokens rightly, but "
                                                       "expected_tokens is wrong here: fix it first"))
            raise _Wrong(_named(got, want, variants, "the speed-up"))
        return _Case(f"expected_speedup, a = {a}, k = {k}, draft_cost = {c}" + (f" ({label})" if label else ""),
                     run, hidden)

    return _run("speculative_speedup", [
        tokens_case(0.6, 4, "", hidden=False),
        speedup_case(0.6, 4, 0.05, "", hidden=False),
        tokens_case(0.0, 3, "every proposal rejected: only the target's token"),
        tokens_case(1.0, 5, "every proposal accepted"),
        tokens_case(0.8, 1, "one drafted token"),
        tokens_case(0.9, 10, ""),
        tokens_case(0.25, 6, ""),
        speedup_case(0.0, 3, 0.1, "every proposal rejected: slower than plain decoding"),
        speedup_case(1.0, 5, 0.02, "every proposal accepted"),
        speedup_case(0.8, 1, 0.1, "one drafted token"),
        speedup_case(0.7, 6, 0.0, "a draft that costs nothing, as prompt lookup"),
        speedup_case(0.5, 3, 0.2, ""),
        speedup_case(0.35, 2, 0.5, "a draft too slow to pay for itself"),
        speedup_case(0.9, 10, 0.03, ""),
    ])


# =================================================================== block tables
def _pool(num_blocks: int, block_size: int):
    from ..serving import PagedKVCache

    return PagedKVCache(layers=1, kv_heads=1, head_dim=1, num_blocks=num_blocks, block_size=block_size)


def _stream(lengths: list[int], num_blocks: int, block_size: int, *, order: str = "lowest",
            blocks: str = "ceil", hand_out: str = "once") -> list[list[int]] | None:
    """The block tables ``PagedKVCache`` gives requests admitted in order (None for MemoryError); keywords
    at their defaults. The others give variants."""
    if (order, blocks, hand_out) == ("lowest", "ceil", "once"):
        pool = _pool(num_blocks, block_size)
        try:
            return [pool.allocate(pool.blocks_for(n)) for n in lengths]
        except MemoryError:
            return None
    free = list(range(num_blocks))
    tables = []
    for n in lengths:
        need = {"ceil": -(-n // block_size), "floor": n // block_size, "plus one": n // block_size + 1}[blocks]
        if need > len(free):
            return None
        if hand_out == "again":  # every request starts from the pool's first block
            tables.append(list(range(need)))
            continue
        taken = free[:need] if order == "lowest" else free[::-1][:need]
        tables.append(taken)
        free = [b for b in free if b not in taken]
    return tables


def _after(tables: list[list[int]], finished: int, new_length: int, num_blocks: int, block_size: int, *,
           reuse: str = "sorted", blocks: str = "ceil") -> list[int] | None:
    """The new request's table (None for MemoryError): ``PagedKVCache`` holding ``tables``, releasing
    ``tables[finished]`` and allocating; keywords at their defaults. The others give variants."""
    held = [b for table in tables for b in table]
    need = {"ceil": -(-new_length // block_size), "floor": new_length // block_size,
            "plus one": new_length // block_size + 1}[blocks]
    if reuse == "sorted" and blocks == "ceil":
        pool = _pool(num_blocks, block_size)
        pool.free = [b for b in range(num_blocks) if b not in held]
        pool.release(list(tables[finished]))
        try:
            return pool.allocate(pool.blocks_for(new_length))
        except MemoryError:
            return None
    unused = [b for b in range(num_blocks) if b not in held]
    if reuse == "sorted":
        free = sorted(unused + list(tables[finished]))
    elif reuse == "appended":  # the freed blocks at the end of the free list, taken from its front
        free = unused + list(tables[finished])
    elif reuse == "never":  # the finished request's blocks are not given back
        free = unused
    else:  # "after highest": numbers after the highest one in use, whatever the pool
        start = max(held, default=-1) + 1
        return list(range(start, start + need))
    return free[:need] if need <= len(free) else None


def _as_table(value: Any, what: str, items: str = "block numbers") -> list[int]:
    """A list of ints returned as a list, a tuple or a 1-D tensor, as a list."""
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise _Wrong(f"{what} is a {type(value).__name__}; expected a list of {items}")
    out = value.tolist() if hasattr(value, "tolist") else list(value)
    if not isinstance(out, list) or not all(isinstance(b, numbers.Integral) and not isinstance(b, bool)
                                            for b in out):
        raise _Wrong(f"{what} is {str(out)[:60]}; expected a list of {items} (ints)")
    return [int(b) for b in out]


def check_block_table(locate_fn: Callable, blocks_fn: Callable, stream_fn: Callable, after_fn: Callable) -> bool:
    """Chapter 14. A paged key-value cache (PagedAttention, Kwon et al. 2023), compared with
    ``llmlab.serving.PagedKVCache``: ``locate_fn(position, block_table, block_size) -> (block, offset)``,
    ``block_table[p // block_size]`` and ``p % block_size``; ``blocks_fn(tokens, block_size) -> int``, rounded
    up; ``stream_fn(lengths, num_blocks, block_size) -> list of block tables`` for requests admitted in order,
    the lowest free blocks first, ``MemoryError`` when a request needs more than are free; and
    ``after_fn(tables, finished_index, new_length, num_blocks, block_size) -> block table`` of a new request
    once one has given its blocks back."""

    def locate_case(p, table, bs, label, hidden=True):
        def run():
            given = list(table)
            got = _call(locate_fn, p, given, bs)
            changed = _same_input(list(table), given, "the block table")
            if changed:
                raise _Wrong(changed)
            want = (table[p // bs], p % bs)
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                raise _Wrong(f"the result is a {type(got).__name__}; expected a pair (block, offset)")
            got = tuple(got)
            if got == want:
                return
            if got == (want[1], want[0]):
                raise _Wrong("the pair is in the wrong order: return (block, offset)")
            if got[0] == p // bs != want[0]:
                raise _Wrong("p // block_size is an index into the request's block table, not a block's number: "
                             "the block is block_table[p // block_size]")
            if got[1] != want[1] and got[1] == p // bs:
                raise _Wrong("the offset within the block is the remainder, p % block_size (p // block_size "
                             "says which entry of the table)")
            if got[1] != want[1] and got[1] == (p % bs) + 1:
                raise _Wrong("the offset is one too large: offsets count from 0, p % block_size")
            if got[0] != want[0] and 0 < p // bs + 1 < len(table) and got[0] == table[p // bs + 1]:
                raise _Wrong("the block is one entry too far down the table: position p is in entry "
                             "p // block_size, counted from 0")
            raise _Wrong(f"(block, offset) = {got}: position {p} is not there")
        return _Case(f"locate: position {p}, table {table}, block_size {bs}" + (f" ({label})" if label else ""),
                     run, hidden)

    def blocks_case(t, bs, label, hidden=True):
        def run():
            got = _call(blocks_fn, t, bs)
            want = -(-t // bs)
            if isinstance(got, float) and got.is_integer():
                got = int(got)
            if isinstance(got, bool) or not isinstance(got, int):
                if isinstance(got, float) and _same(got, t / bs):
                    raise _Wrong(f"{got} is a fraction of a block: blocks are whole, round up to an int")
                raise _Wrong(f"the result is a {type(got).__name__}; expected a whole number of blocks (int)")
            if got == want:
                return
            if got == t // bs:
                raise _Wrong("rounded down: a last block only partly filled is still a whole block, round up "
                             "(-(-tokens // block_size))")
            if got == t // bs + 1:
                raise _Wrong("one block too many when the tokens fill their blocks exactly (or there are none): "
                             "round up, -(-tokens // block_size), rather than add one")
            raise _Wrong(f"{got} blocks for {t} positions of {bs}: round tokens / block_size up")
        return _Case(f"blocks_needed: {t} token{'' if t == 1 else 's'}, block_size {bs}" + (f" ({label})" if label else ""), run, hidden)

    def stream_case(lengths, n, bs, label, hidden=True):
        def run():
            given = list(lengths)
            got, error = _call_or_error(stream_fn, given, n, bs)
            changed = _same_input(list(lengths), given, "the lengths")
            if changed:
                raise _Wrong(changed)
            want = _stream(lengths, n, bs)
            if want is None:
                if error is None:
                    raise _Wrong(f"the requests need {sum(-(-x // bs) for x in lengths)} blocks, the pool has {n}: "
                                 "when a request needs more blocks than are free, raise MemoryError (as "
                                 "PagedKVCache.allocate does)")
                return
            if error is not None:
                raise _Wrong(f"MemoryError, but the pool holds enough blocks ({n}) for these requests"
                             + (": here it is filled exactly; raise only when MORE blocks are asked for than are "
                                "free" if sum(len(t) for t in want) == n else ""))
            if isinstance(got, (str, bytes)) or not hasattr(got, "__iter__"):
                raise _Wrong(f"the result is a {type(got).__name__}; expected a list of block tables")
            tables = [_as_table(t, f"block table {i}") for i, t in enumerate(got)]
            if tables == want:
                return
            if len(tables) != len(want):
                raise _Wrong(f"{len(tables)} block tables for {len(want)} requests: one per request, in order")
            for kwargs, words in _STREAM_VARIANTS:
                if _stream(lengths, n, bs, **kwargs) == tables:
                    raise _Wrong(words)
            first = next(i for i, (a, b) in enumerate(zip(tables, want)) if a != b)
            raise _Wrong(f"request {first} ({lengths[first]} tokens) gets the blocks {tables[first]}: not the "
                         "lowest free ones, or not as many as it needs")
        return _Case(f"allocate_stream: lengths {lengths}, {n} blocks of {bs}" + (f" ({label})" if label else ""),
                     run, hidden)

    def after_case(tables, finished, new, n, bs, label, hidden=True):
        def run():
            given = copy.deepcopy(tables)
            got, error = _call_or_error(after_fn, given, finished, new, n, bs)
            if given != tables:
                raise _Wrong("your function changed the block tables passed in: the caller still needs them (work "
                             "on a copy)")
            want = _after(tables, finished, new, n, bs)
            if want is None:
                if error is None:
                    raise _Wrong(f"the new request needs {-(-new // bs)} blocks and fewer are free: raise "
                                 "MemoryError")
                return
            if error is not None:
                if _after(tables, finished, new, n, bs, reuse="never") is None:
                    raise _Wrong("MemoryError, but the finished request's blocks are free again: the new request "
                                 "may take them")
                raise _Wrong("MemoryError, but enough blocks are free for the new request")
            table = _as_table(got, "the new block table")
            if table == want:
                return
            if table == list(tables[finished]) and len(want) != len(table):
                raise _Wrong("the new request gets the finished request's table as it was: give it as many "
                             "blocks as its own length needs")
            for kwargs, words in _AFTER_VARIANTS:
                if _after(tables, finished, new, n, bs, **kwargs) == table:
                    raise _Wrong(words)
            raise _Wrong(f"the new request gets the blocks {table}: not the lowest free ones, or not as many as "
                         "it needs")
        return _Case(f"after_release: {tables}, request {finished} finishes, a new one of {new} tokens, "
                     f"{n} blocks of {bs}" + (f" ({label})" if label else ""), run, hidden)

    return _run("block_table", [
        locate_case(37, [3, 8, 1], 16, "", hidden=False),
        blocks_case(40, 16, "", hidden=False),
        stream_case([40, 17, 64, 5], 12, 16, "", hidden=False),
        after_case([[0, 1, 2], [3, 4], [5, 6, 7, 8], [9]], 1, 30, 12, 16, "", hidden=False),
        locate_case(0, [6, 2], 16, "the first position"),
        locate_case(15, [6, 2], 16, "the last position of the first block"),
        locate_case(16, [6, 2], 16, "the first position of the second block"),
        locate_case(4, [9, 3, 7, 1, 0, 4], 1, "blocks of one position"),
        locate_case(1000, [12, 5, 30, 2], 256, "blocks of 256 positions"),
        blocks_case(32, 16, "the tokens fill two blocks exactly"),
        blocks_case(0, 16, "no token yet"),
        blocks_case(1, 16, "one token"),
        blocks_case(5, 1, "blocks of one position"),
        blocks_case(1000, 256, ""),
        stream_case([32, 33, 16], 6, 16, "the pool filled exactly"),
        stream_case([40, 40, 40], 8, 16, "the third request does not fit"),
        stream_case([100], 4, 16, "a request larger than the whole pool"),
        stream_case([3, 1, 2], 6, 1, "blocks of one position"),
        stream_case([1, 1, 1, 1, 1], 5, 8, "five one-token requests"),
        stream_case([64, 20, 1], 9, 16, ""),
        after_case([[0, 1, 5], [2, 3], [4, 6]], 0, 40, 10, 16,
                   "tables grown side by side, their blocks out of order"),
        after_case([[0, 1, 5], [2, 3], [4, 6]], 0, 20, 8, 16,
                   "one block never used, and the freed ones, lower, behind it"),
        after_case([[0, 1], [2, 3, 4], [5]], 1, 33, 6, 16, "a full pool: only the freed blocks are left"),
        after_case([[0, 1], [2], [3, 4, 5]], 1, 40, 7, 16, "the new request needs more than are free"),
        after_case([[4, 0], [3, 1, 2]], 1, 16, 8, 16, "the new request fills one block exactly"),
        after_case([[2, 7, 5], [0, 6], [1, 3, 4]], 2, 100, 12, 32, "the last request finishes"),
    ])


_STREAM_VARIANTS = (
    (dict(order="highest"), "takes the highest free numbers first: PagedKVCache.allocate sorts its free list and "
                            "takes the lowest"),
    (dict(blocks="floor"), "the blocks are rounded down: a last block only partly filled is still a whole block"),
    (dict(blocks="plus one"), "one block too many when a request's tokens fill its blocks exactly: round up"),
    (dict(hand_out="again"), "the same blocks are handed out twice: a block given to one request leaves the free "
                             "list until that request releases it"),
)

_AFTER_VARIANTS = (
    (dict(reuse="never"), "the finished request's blocks are not reused first: once released they are free again, "
                          "and allocate takes the lowest free numbers (it sorts its free list), which here are "
                          "among them"),
    (dict(reuse="after highest"), "the new blocks are numbered after the highest in use: the finished request's "
                                  "blocks are free again and the lowest free numbers come first"),
    (dict(reuse="appended"), "the freed blocks are put at the end of the free list: allocate takes the lowest free "
                             "numbers, so sort the free blocks first"),
    (dict(blocks="floor"), "the blocks are rounded down: a last block only partly filled is still a whole block"),
    (dict(blocks="plus one"), "one block too many when the tokens fill their blocks exactly: round up"),
)


# =================================================================== prompt lookup
def _lookup(seq: list[int], k: int, ngram: int, *, which: str = "earliest", fallback: str = "down to 1",
            tail: bool = False, overlap: bool = True, extra: int = 0, start_at: str = "after") -> list[int]:
    """Prompt lookup's proposal (keywords at their defaults: ``llmlab.serving.lookup_proposal``'s rule),
    and likely mistakes."""
    top = min(ngram, len(seq) - 1)
    sizes = {"down to 1": list(range(top, 0, -1)), "none": [top] if top > 0 else [],
             "last token": [1] if top > 0 else []}[fallback]
    for size in sizes:
        end = seq[-size:]
        last = len(seq) - size if tail else len(seq) - size - 1  # the last start looked at
        if not overlap:
            last = min(last, len(seq) - 2 * size)
        starts = list(range(0, last + 1))
        if which == "latest":
            starts.reverse()
        for start in starts:
            if seq[start:start + size] == end:
                first = start + size if start_at == "after" else start
                follow = seq[first:start + size + k + extra]
                if follow or tail:
                    return follow
    return []


_LOOKUP_VARIANTS = (
    (dict(fallback="none"), "an empty proposal, though a shorter tail occurred before: no fallback (or the tail "
                            "itself taken for an occurrence, which nothing follows)? When the last ngram tokens "
                            "occur nowhere before them, try the last ngram - 1, and so on down to the last token "
                            "alone"),
    (dict(tail=True, which="latest"), "the occurrence found is the tail itself (the last n tokens, which nothing "
                                      "follows): look only at EARLIER occurrences, and take the earliest"),
    (dict(tail=True), "the occurrence found is the tail itself (the last n tokens, which nothing follows), so the "
                      "proposal is empty: look only at occurrences that start before it"),
    (dict(which="latest"), "the LATEST earlier occurrence is used: take the earliest (the first in the "
                           "sequence), as lookup_proposal does"),
    (dict(fallback="last token"), "only the last token is matched (or the shortest n-gram is tried first): start "
                                  "from the last ngram tokens and fall back to shorter ones only when they are not "
                                  "found"),
    (dict(extra=1), "k + 1 tokens are proposed: propose k at most"),
    (dict(overlap=False), "an occurrence may overlap the tail: it only has to start before it"),
    (dict(start_at="match"), "the proposal starts with the matched n-gram itself: propose the tokens that FOLLOW "
                             "it"),
)


def check_prompt_lookup(fn: Callable) -> bool:
    """Chapter 14. ``fn(seq, k, ngram) -> list[int]``: prompt lookup's proposal, the (up to) ``k`` tokens that
    followed the earliest earlier occurrence of the last ``ngram`` tokens of ``seq``, falling back to shorter
    n-grams down to one token, ``[]`` when none occurred before (compared with
    ``llmlab.serving.lookup_proposal``)."""
    from ..serving import lookup_proposal

    def case(seq, k, ngram, label, hidden=True):
        def run():
            given = list(seq)
            got = _call(fn, given, k, ngram)
            changed = _same_input(list(seq), given, "the sequence")
            if changed:
                raise _Wrong(changed)
            want = lookup_proposal(list(seq), k, ngram)
            if got is None:
                raise _Wrong("the result is None; expected a list of token ids ([] when there is no proposal)")
            proposal = _as_table(got, "the proposal", "token ids")
            if proposal == want:
                return
            for kwargs, words in _LOOKUP_VARIANTS:
                if _lookup(seq, k, ngram, **kwargs) == proposal:
                    raise _Wrong(words)
            if len(proposal) > k:
                raise _Wrong(f"{len(proposal)} tokens proposed: k = {k} at most")
            raise _Wrong(f"the proposal {proposal} is not what followed the earliest earlier occurrence of the "
                         "longest tail found")
        shown = seq if len(seq) <= 16 else f"{len(seq)} tokens"
        return _Case(f"seq {shown}, k = {k}, ngram = {ngram}" + (f" ({label})" if label else ""), run, hidden)

    rng = random.Random(14)
    randoms = []
    for i in range(10):
        vocab, length = rng.randint(3, 9), rng.randint(6, 40)
        randoms.append(case([rng.randrange(vocab) for _ in range(length)], rng.randint(1, 6), rng.randint(1, 4),
                            f"random sequence {i + 1}"))
    return _run("prompt_lookup", [
        case([5, 1, 2, 3, 6, 7, 1, 2, 3, 8, 9, 1, 2, 3], 4, 3, "", hidden=False),
        case([1, 2, 3, 4, 5], 4, 3, "no token occurs twice: nothing to propose"),
        case([3, 5, 8, 1, 5, 8, 2, 4, 8], 4, 3, "only the last token occurred before"),
        case([1, 2, 9, 9, 1, 2], 4, 3, "the last three tokens occur only at the end"),
        case([5, 5, 5, 5], 4, 3, "an occurrence that overlaps the tail"),
        case([7, 4, 2, 7, 4, 2, 7, 4], 2, 2, "two earlier occurrences, k = 2"),
        case([9, 1, 2, 3, 4, 5, 6, 9], 3, 3, "k = 3 from a one-token match"),
        case([4, 8, 4, 8, 4], 1, 3, "k = 1"),
        case([6], 4, 3, "a single token"),
        case([3, 3], 4, 2, "two equal tokens"),
        case([1, 2, 3, 4, 1, 2, 3], 10, 5, "k larger than what follows"),
        *randoms,
    ])


# =================================================================== quiz
_SERVING_KEY = {
    "the phase of generation that memory bandwidth limits at batch 1 (prefill/decode)": (
        _salted("decode"),
        "In which phase is every weight read from memory for the sake of a single token per sequence, a few "
        "multiplications per byte (Williams et al. 2009's roofline)?"),
    "at a small batch, does doubling the batch double the time of a decoding step (yes/no)": (
        _salted("no"),
        "A decoding step reads all the weights once, whatever the batch: what does a second sequence add to the "
        "bytes moved?"),
    "the tokens greedy speculative decoding returns, next to the target's own greedy"
    " decoding (identical/nearly the same/the draft's)": (
        _salted("identical"),
        "Every kept token is one the target itself chose at that position: what can the draft change but the "
        "speed (Leviathan et al. 2023)?"),
    "when a waiting request can join the running batch under continuous batching"
    " (at any decoding step/when the whole batch has finished/never)": (
        _salted("at any decoding step"),
        "Orca schedules at the level of iterations, not of requests (Yu et al. 2022): how often is the batch "
        "made up again?"),
    "what a paged cache sets aside for a request"
    " (blocks as its tokens arrive/its longest possible length/one token)": (
        _salted("blocks as its tokens arrive"),
        "A contiguous cache reserves the worst case for every request; what does PagedAttention take from its "
        "pool, and when (Kwon et al. 2023)?"),
    "what grouped-query attention makes smaller (the KV cache/the MLP/the vocabulary)": (
        _salted("the kv cache"),
        "Several query heads share one key-value head (Ainslie et al. 2023): what is kept per key-value head "
        "for every token?"),
    "where prompt lookup finds its proposals"
    " (earlier tokens of the text/a draft model/the most frequent tokens)": (
        _salted("earlier tokens of the text"),
        "Prompt lookup runs no second model: what does it copy when the last few tokens occurred before?"),
}


def check_serving_quiz(answers: dict) -> bool:
    """Chapter 14 quiz: the roofline (Williams et al. 2009), speculative decoding (Leviathan et al. 2023),
    continuous batching (Yu et al. 2022), PagedAttention (Kwon et al. 2023), grouped-query attention
    (Ainslie et al. 2023) and prompt lookup."""
    return _quiz("serving_quiz", answers, _SERVING_KEY)
