"""Serving SmolLM2 fast, recorded for chapter 14: ``llmlab/results/serving.json``.

SmolLM2-135M-Instruct in float32 on this machine's CPU, greedy decoding throughout. Parts, in
order, each written as soon as it ends (a part already in the file is kept when its plan is
unchanged, so a stopped recording resumes and a changed part is measured again):

1. ``roofline``: the machine's matmul FLOP/s and memory bandwidth; the matrix-vector products of
   one decoding step timed alone (:func:`llmlab.serving.matvec_seconds`); one pass over T new tokens
   for each T of ``pass_tokens`` (what a verifying pass costs) and one step of the draft; the model's prefill of
   ``prefill_tokens`` tokens and one decoding step at each batch of ``decode_batches`` (after
   ``decode_context`` cached tokens), best of ``repeats``, each with its FLOPs and bytes
   (:func:`llmlab.serving.step_cost`);
2. ``batching``: ``batch_tokens`` new tokens for each of B requests at once, for every B of
   ``batches``, with :func:`llmlab.serving.serve` and with transformers' ``generate``: total
   tokens/s and the time each request waits for its answer;
3. ``serve``: a simulated stream of requests of different lengths arriving every ``arrival_every``
   decoding steps, through continuous and static batching of the same engine
   (:func:`llmlab.serving.serve`; each policy ``repeats`` times, alternating), continuous batching
   once more with a block pool of ``pool_fraction`` of what a contiguous cache reserves, and each
   request alone with :func:`llmlab.serving.greedy_generate`: tokens, steps, seconds (arrival and
   finish of every request), cache memory, preemptions;
4. ``speculative``: chat requests the draft never saw (:func:`llmlab.distill.held_out_prompts`),
   decoded by transformers' ``generate``, by :func:`llmlab.serving.greedy_generate`, and by
   speculative decoding with the distilled draft at each ``k``; per request, the tokens, the
   seconds of each method (run one after another in a fixed order, request by request) and, per
   verifying pass, the tokens proposed and accepted;
5. ``lookup``: input-grounded requests (quote, summarise and list the points of chapter 6's
   English passages) by the same methods plus prompt lookup and transformers' own prompt lookup;
6. ``precision``: float32, bfloat16 and torchao INT8 weight-only copies of the model: decoding
   tokens/s with ``generate``, perplexity on the English passages, greedy tokens against float32.

``python -m llmlab.records.serving [--parts ...]`` makes it (a part already in the file is kept; delete it
from the file to measure it again); each part carries the ``code_version`` and time (``made``) of the
run that measured it. :func:`load` reads it back.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import time

import torch

from .. import _checks, bench, chat, distill, serving, zoo
from ..provenance import stamp
from . import read_json, result_path, write_json

NAME = "serving.json"
COMMAND = "python -m llmlab.records.serving"
CODE = ("llmlab/serving.py", "llmlab/distill.py", "llmlab/records/serving.py")
PARTS = ("roofline", "batching", "serve", "speculative", "lookup", "precision")
PLAN = {
    "roofline": {"prefill_tokens": 512, "decode_batches": [1, 8, 32], "decode_context": 128, "repeats": 5,
                 "pass_tokens": [1, 2, 3, 4, 5, 7], "matvec_rows": True},
    "batching": {"batches": [1, 2, 4, 8, 16, 32], "batch_tokens": 32, "repeats": 2},
    "serve": {"requests": 32, "max_batch": 8, "block_size": 16, "arrival_every": 2, "max_new_tokens": [16, 96],
              "seed": 0, "repeats": 2, "pool_fraction": 0.5, "static_waits_to_fill": True},
    "speculative": {"prompts": 16, "max_new_tokens": 96, "ks": [2, 3, 4, 6], "per_pass": True},
    "lookup": {"tasks": ["quote", "summarise", "points"], "passages": 6, "max_new_tokens": 96, "k": 4, "ngram": 3},
    "precision": {"prompts": 8, "max_new_tokens": 48},
}
LOOKUP_TASKS = {
    "quote": "Quote the first two sentences of this text exactly.\n\n{}",
    "summarise": "Summarise this text in two sentences.\n\n{}",
    "points": "List the main points of this text.\n\n{}",
}


def _ids(tokenizer, prompt: str) -> torch.Tensor:
    return tokenizer(chat.chat_text(tokenizer, prompt), return_tensors="pt", add_special_tokens=False).input_ids


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _hf_generate(model, ids, n, eos, **kwargs):
    with torch.no_grad():
        return model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False,
                              eos_token_id=eos, pad_token_id=eos, **kwargs)


def passages() -> list[str]:
    """Chapter 6's English passages, one per paragraph."""
    from ..domain import english_passages

    return [p for p in english_passages() if p.strip()]


def _part_roofline(model, tokenizer) -> dict:
    plan = PLAN["roofline"]
    dec = serving.decoder(model)
    peak = bench.matmul_flops(size=1024)
    bandwidth = serving.memory_bandwidth()
    text = " ".join(passages())
    ids = tokenizer(text, return_tensors="pt").input_ids[:, :plan["prefill_tokens"]]
    best = math.inf
    for _ in range(plan["repeats"]):
        cache = dec.new_cache(1, ids.size(1))
        _, s = _timed(lambda: dec.forward(ids, cache, last_only=True))
        best = min(best, s)
    cost = serving.step_cost(model.config, 1, ids.size(1), 0)
    prefill = {"tokens": ids.size(1), "seconds": best, **cost}
    decode = []
    ctx = plan["decode_context"]
    for b in plan["decode_batches"]:
        cache = dec.new_cache(b, ctx + 1)
        dec.forward(ids[:, :ctx].expand(b, ctx), cache)
        step = ids[:, ctx:ctx + 1].expand(b, 1)
        best = math.inf
        for _ in range(plan["repeats"]):
            cache.length = ctx
            _, s = _timed(lambda: dec.forward(step, cache, last_only=True))
            best = min(best, s)
        decode.append({"batch": b, "context": ctx, "seconds": best, **serving.step_cost(model.config, b, 1, ctx)})
    passes = []  # one pass of T new tokens at batch 1, as speculative decoding's verifying pass runs
    cache = dec.new_cache(1, ctx + max(plan["pass_tokens"]))
    dec.forward(ids[:, :ctx], cache)
    for t in plan["pass_tokens"]:
        best = math.inf
        for _ in range(plan["repeats"]):
            cache.length = ctx
            _, s = _timed(lambda: dec.forward(ids[:, ctx:ctx + t], cache))
            best = min(best, s)
        passes.append({"tokens": t, "seconds": best})
    ddec = serving.decoder(distill.load_draft())
    dcache = ddec.new_cache(1, ctx + 1)
    ddec.forward(ids[:, :ctx], dcache)
    best = math.inf
    for _ in range(plan["repeats"]):
        dcache.length = ctx
        _, s = _timed(lambda: ddec.forward(ids[:, ctx:ctx + 1], dcache, last_only=True))
        best = min(best, s)
    return {"matmul_flops": peak, "bandwidth": bandwidth, "prefill": prefill, "decode": decode,
            "matvec": serving.matvec_seconds(model, plan["repeats"]), "passes": passes,
            "matvec_rows": [{"tokens": t, **serving.matvec_seconds(model, plan["repeats"], rows=t)}
                            for t in plan["pass_tokens"]],
            "draft_step_seconds": best, "weight_bytes": dec.weight_bytes}


def _part_batching(model, tokenizer) -> dict:
    plan = PLAN["batching"]
    eos = tokenizer.eos_token_id
    prompts = distill.held_out_prompts()
    rows = []
    n = plan["batch_tokens"]
    for b in plan["batches"]:
        reqs = [serving.Request(_ids(tokenizer, p)[0].tolist(), n) for p in prompts[:b]]
        ids, mask = chat.chat_batch(tokenizer, prompts[:b])
        engine, hf = [], []
        for _ in range(plan["repeats"]):
            res = serving.serve(model, reqs, max_batch=b, policy="continuous")  # no end-of-turn: n tokens each
            engine.append(res.seconds)
            with torch.no_grad():
                _, s = _timed(lambda: model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n,
                                                     min_new_tokens=n, do_sample=False, pad_token_id=eos))
            hf.append(s)
        rows.append({"batch": b, "new_tokens": b * n, "engine_seconds": engine, "generate_seconds": hf})
        print(f"  batching: batch {b}: engine {b * n / min(engine):.1f} tokens/s, generate "
              f"{b * n / min(hf):.1f}", flush=True)
    return {"rows": rows}


def _check_plan(plan) -> None:
    """A serve plan: ``requests`` (at most the held-out prompts), ``max_new_tokens`` (low, high),
    ``arrival_every`` and ``seed``, as in ``PLAN["serve"]``."""
    if not isinstance(plan, dict):
        raise _checks.ArgumentTypeError(f"plan must be a dict like PLAN['serve'], got {type(plan).__name__}")
    missing = [key for key in ("requests", "max_new_tokens", "arrival_every", "seed") if key not in plan]
    if missing:
        raise ValueError(f"plan must have the keys of PLAN['serve'] (requests, max_new_tokens, arrival_every, "
                         f"seed); it lacks {missing}")
    _checks.integer("plan['requests']", plan["requests"], low=1, high=len(distill.held_out_prompts()))
    bounds = plan["max_new_tokens"]
    if (not isinstance(bounds, (list, tuple)) or len(bounds) != 2
            or not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)
            or not 1 <= bounds[0] <= bounds[1]):
        raise ValueError(f"plan['max_new_tokens'] must be [low, high] with 1 <= low <= high, got {bounds!r}")
    _checks.non_negative_int("plan['arrival_every']", plan["arrival_every"])


def serve_requests(tokenizer, plan: dict | None = None) -> list[serving.Request]:
    """The request stream of the serve part: held-out chat requests, each with its own limit of new
    tokens (drawn between the plan's bounds), arriving every ``arrival_every`` steps."""
    import random

    _checks.tokenizer("tokenizer", tokenizer)
    plan = plan or PLAN["serve"]
    _check_plan(plan)
    rng = random.Random(plan["seed"])
    prompts = distill.held_out_prompts()
    chosen = rng.sample(prompts, plan["requests"])
    low, high = plan["max_new_tokens"]
    return [serving.Request(_ids(tokenizer, p)[0].tolist(), rng.randint(low, high), arrival=i * plan["arrival_every"])
            for i, p in enumerate(chosen)]


def _part_serve(model, tokenizer) -> dict:
    plan = PLAN["serve"]
    eos = tokenizer.eos_token_id
    reqs = serve_requests(tokenizer, plan)
    out = {}
    longest = max(len(r.prompt) + r.max_new_tokens for r in reqs)
    reserve_blocks = plan["max_batch"] * -(-longest // plan["block_size"])  # a contiguous cache's reservation
    pool = int(reserve_blocks * plan["pool_fraction"])
    runs = [("continuous", None), ("static", None)] * plan["repeats"] + [("continuous, small pool", pool)]
    for name, blocks in runs:
        res = serving.serve(model, reqs, max_batch=plan["max_batch"], block_size=plan["block_size"],
                            num_blocks=blocks, policy=name.split(",")[0], eos_token_id=eos)
        if name in out:  # a repeat: keep every timing, the first run's details
            out[name]["seconds_repeats"].append(res.seconds)
            continue
        out[name] = {"outputs": res.outputs, "seconds": res.seconds, "seconds_repeats": [res.seconds],
                     "steps": res.steps, "batch_sizes": res.batch_sizes, "finished_at": res.finished_at,
                     "started_at": res.started_at, "arrival_seconds": res.arrival_seconds,
                     "finished_seconds": res.finished_seconds, "num_blocks": blocks or sum(
                         -(-(len(r.prompt) + r.max_new_tokens) // plan["block_size"]) for r in reqs),
                     "peak_blocks": res.peak_blocks, "block_bytes": res.block_bytes,
                     "reserved_bytes": res.reserved_bytes, "wasted_rows": res.wasted_rows,
                     "preemptions": res.preemptions}
        print(f"  serve {name}: {res.new_tokens / res.seconds:.1f} tokens/s, {res.steps} steps, "
              f"{res.preemptions} preemptions", flush=True)
    alone, seconds = [], 0.0
    for r in reqs:
        g, s = _timed(lambda: serving.greedy_generate(model, torch.tensor([r.prompt]), r.max_new_tokens,
                                                      eos_token_id=eos))
        alone.append(g[0, len(r.prompt):].tolist())
        seconds += s
    out["alone"] = {"outputs": alone, "seconds": seconds}
    out["requests"] = [{"prompt_tokens": len(r.prompt), "max_new_tokens": r.max_new_tokens, "arrival": r.arrival}
                       for r in reqs]
    return out


def _methods(model, draft, ids, n, eos, ks, lookup: dict | None):
    """Every method's run on one request, in a fixed order: (name, tokens, seconds, stats)."""
    runs = []
    g, s = _timed(lambda: _hf_generate(model, ids, n, eos))
    runs.append(("generate", g, s, None))
    g, s = _timed(lambda: serving.greedy_generate(model, ids, n, eos_token_id=eos))
    runs.append(("greedy", g, s, None))
    for k in ks:
        (g, st), s = _timed(lambda: serving.speculative_generate(model, draft, ids, n, k, eos_token_id=eos,
                                                                 return_stats=True))
        runs.append((f"draft k={k}", g, s, st))
    if lookup is not None:
        (g, st), s = _timed(lambda: serving.prompt_lookup_generate(model, ids, n, lookup["k"], lookup["ngram"],
                                                                   eos_token_id=eos, return_stats=True))
        runs.append((f"lookup k={lookup['k']}", g, s, st))
        g, s = _timed(lambda: _hf_generate(model, ids, n, eos, prompt_lookup_num_tokens=lookup["k"]))
        runs.append((f"generate lookup k={lookup['k']}", g, s, None))
    return runs


def _method_rows(model, draft, tokenizer, prompts, n, ks, lookup=None, label=None) -> list[dict]:
    eos = tokenizer.eos_token_id
    rows = []
    for i, p in enumerate(prompts):
        ids = _ids(tokenizer, p)
        runs = _methods(model, draft, ids, n, eos, ks, lookup)
        ref = runs[0][1][0, ids.size(1):].tolist()
        row = {"prompt": p if label is None else label[i], "prompt_tokens": ids.size(1), "tokens": ref,
               "methods": {}}
        for name, g, s, st in runs:
            entry = {"seconds": s, "new_tokens": g.size(1) - ids.size(1),
                     "same": g[0, ids.size(1):].tolist() == ref}
            if st is not None:
                entry.update(drafted=st.drafted, accepted=st.accepted, target_passes=st.target_passes,
                             proposed_per_pass=st.proposed_per_pass, accepted_per_pass=st.accepted_per_pass,
                             cut_at_other=st.cut_at_other)
            row["methods"][name] = entry
        rows.append(row)
        fast = {k: round(v["new_tokens"] / v["seconds"], 1) for k, v in row["methods"].items()}
        print(f"  {i + 1}/{len(prompts)} tokens/s {fast}", flush=True)
    return rows


def _part_speculative(model, tokenizer, draft) -> dict:
    plan = PLAN["speculative"]
    prompts = distill.held_out_prompts()[::max(1, len(distill.held_out_prompts()) // plan["prompts"])][:plan["prompts"]]
    return {"rows": _method_rows(model, draft, tokenizer, prompts, plan["max_new_tokens"], plan["ks"])}


def _part_lookup(model, tokenizer, draft) -> dict:
    plan = PLAN["lookup"]
    texts = passages()[:plan["passages"]]
    prompts, labels = [], []
    for task in plan["tasks"]:
        for j, t in enumerate(texts):
            prompts.append(LOOKUP_TASKS[task].format(t))
            labels.append(f"{task} {j}")
    return {"rows": _method_rows(model, draft, tokenizer, prompts, plan["max_new_tokens"], [plan["k"]],
                                 lookup={"k": plan["k"], "ngram": plan["ngram"]}, label=labels)}


def _part_precision(model, tokenizer) -> dict:
    from .. import quant
    from ..quant_real import english_ids

    plan = PLAN["precision"]
    prompts = distill.held_out_prompts()[1::32][:plan["prompts"]]
    text_ids = english_ids(tokenizer)[None]
    copies = {"float32": model, "bfloat16": copy.deepcopy(model).to(torch.bfloat16),
              "int8 weight-only": quant.torchao_quantize(copy.deepcopy(model), "int8_weight_only")}
    out = {}
    reference = None
    for name, m in copies.items():
        with torch.no_grad():
            nll = float(m(input_ids=text_ids, labels=text_ids).loss)
        tokens, seconds = [], []
        for p in prompts:
            ids = _ids(tokenizer, p)
            g, s = _timed(lambda: _hf_generate(m, ids, plan["max_new_tokens"], None,
                                               min_new_tokens=plan["max_new_tokens"]))
            tokens.append(g[0, ids.size(1):].tolist())
            seconds.append(s)
        if reference is None:
            reference = tokens
        out[name] = {"perplexity": math.exp(nll), "tokens": tokens, "seconds": seconds,
                     "weight_bytes": _weight_bytes(m),
                     "same_as_float32": [t == r for t, r in zip(tokens, reference)]}
        print(f"  precision {name}: {plan['max_new_tokens'] * len(prompts) / sum(seconds):.1f} tokens/s, "
              f"perplexity {math.exp(nll):.3f}", flush=True)
    return out


def _weight_bytes(model) -> int:
    total = 0
    for t in list(model.parameters()) + list(model.buffers()):
        inner = [getattr(t, a) for a in ("qdata", "scale", "zero_point") if isinstance(getattr(t, a, None), torch.Tensor)]
        total += sum(x.numel() * x.element_size() for x in inner) if inner else t.numel() * t.element_size()
    return total


def run(out=None, parts=PARTS, resume: bool = True) -> dict:
    """Run the plan's ``parts``, writing the record after each (see the module's doc); returns the record."""
    parts = tuple(parts) if hasattr(parts, "__iter__") and not isinstance(parts, (str, dict)) else parts
    if not isinstance(parts, tuple) or not parts or any(p not in PARTS for p in parts):
        raise ValueError(f"parts must be a non-empty list of {list(PARTS)}, got {parts!r}")
    if out is not False:
        result_path(out, NAME)  # a bad path fails here, not after the first part
    torch.manual_seed(0)
    record = {"what": "chapter 14: serving SmolLM2 on this machine's CPU", "model": zoo.REAL_MODEL,
              "draft": "smollm2-draft", "plan": PLAN, **stamp(COMMAND, *CODE),
              "threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
              "parts": {}}
    if resume and out is not False and result_path(out, NAME).exists():
        old = read_json(out, NAME, COMMAND)
        for name, kept in old.get("parts", {}).items():  # keep each part whose own plan is unchanged
            if old.get("plan", {}).get(name) == PLAN.get(name):
                kept.setdefault("code_version", old.get("code_version"))  # the code that made it
                kept.setdefault("made", old.get("made"))
                record["parts"][name] = kept
    model, tokenizer = zoo.load(zoo.REAL_MODEL, device="cpu")
    draft = distill.load_draft()
    for part in PARTS:
        if part not in parts or part in record["parts"]:
            continue
        print(f"{part} ...", flush=True)
        t0 = time.perf_counter()
        load0 = os.getloadavg()
        if part in ("roofline", "batching", "serve", "precision"):
            result = globals()[f"_part_{part}"](model, tokenizer)
        else:
            result = globals()[f"_part_{part}"](model, tokenizer, draft)
        record["parts"][part] = {**result, "seconds": time.perf_counter() - t0,
                                 "load_average": [load0, os.getloadavg()],
                                 "code_version": record["code_version"], "made": record["made"]}
        if out is not False:
            write_json(record, out, NAME)
    return record


def load(path=None) -> dict:
    """The shipped record (or the one at ``path``)."""
    return read_json(path, NAME, COMMAND)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    parser.add_argument("--fresh", action="store_true", help="start over instead of resuming")
    parser.add_argument("--out", help="the file to write (default: the shipped record)")
    args = parser.parse_args(argv)
    run(out=args.out, parts=tuple(args.parts), resume=not args.fresh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
