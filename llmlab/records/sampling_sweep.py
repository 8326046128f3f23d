"""The recorded decoding sweep of chapter 5: ``llmlab/results/sampling_sweep.json``.

Every decoding setting of :data:`SWEEP_SETTINGS` (greedy, beam search, repetition penalty,
no-repeat 3-grams, temperatures, top-k, top-p, min-p) on the real model for the open-ended
requests of :data:`SWEEP_PROMPTS`, through the chat template; each answer scored by its
repeated 4-grams and the model's own loss. ``python -m llmlab.records.sampling_sweep`` makes
it; :func:`load` reads it back and :func:`llmlab.sampling.summarise` turns it into the
chapter's table.
"""

from __future__ import annotations

import time

import torch

from .. import _checks, metrics, zoo
from ..chat import chat_batch
from ..provenance import stamp
from ..sampling import (
    _rows_per_prompt,
    _setting_kwargs,
    _strip,
    beam_search,
    generate_settings,
    score_continuations,
    summarise,
)
from . import read_json, result_path, write_json

NAME = "sampling_sweep.json"
COMMAND = "python -m llmlab.records.sampling_sweep"
CODE = ("llmlab/sampling.py", "llmlab/chat.py", "llmlab/records/sampling_sweep.py")

#: Open-ended requests (no single right answer), sent through the model's chat template.
SWEEP_PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Describe your favourite season.",
    "What makes a good friend?",
    "Tell me about the history of bread.",
    "Write a poem about the sea.",
    "Describe a walk through a forest.",
    "What would you do with a free day?",
    "Write a letter to your future self.",
]


SWEEP_MODEL = zoo.REAL_MODEL


SWEEP_NEW_TOKENS = 64  # new tokens per continuation (fewer when the model ends its answer)


SWEEP_SAMPLES = 2  # samples per prompt for the random methods


SWEEP_SEED = 0


#: One entry per decoding setting: ``method`` is greedy, beam or sample; the rest are
#: the keyword arguments of :func:`generate` or :func:`beam_search`.
SWEEP_SETTINGS: list[dict] = (
    [{"name": "greedy", "method": "greedy"},
     {"name": "beam search, 4 beams", "method": "beam", "num_beams": 4},
     {"name": "greedy, repetition penalty 1.3", "method": "greedy", "repetition_penalty": 1.3},
     {"name": "greedy, no repeated 3-grams", "method": "greedy", "no_repeat_ngram_size": 3}]
    + [{"name": f"T={t}", "method": "sample", "temperature": t} for t in (0.3, 0.7, 1.0, 1.5)]
    + [{"name": f"T=1, top-k={k}", "method": "sample", "top_k": k} for k in (10, 50)]
    + [{"name": f"T=1, top-p={p}", "method": "sample", "top_p": p} for p in (0.5, 0.9)]
    + [{"name": "T=1, min-p=0.1", "method": "sample", "min_p": 0.1},
       {"name": "T=1.5, top-p=0.9", "method": "sample", "temperature": 1.5, "top_p": 0.9},
       {"name": "T=1.5, min-p=0.1", "method": "sample", "temperature": 1.5, "min_p": 0.1}]
)


def run(out=None, settings: list[dict] | None = None, prompts: list[str] | None = None,
        max_new_tokens: int = SWEEP_NEW_TOKENS, samples: int = SWEEP_SAMPLES, seed: int = SWEEP_SEED,
        model=None, tokenizer=None) -> dict:
    """Decode :data:`SWEEP_PROMPTS` with every setting of :data:`SWEEP_SETTINGS` on the
    real model and write the record (JSON) to ``out`` (default the shipped
    ``llmlab/results/sampling_sweep.json``; ``False`` writes nothing): per row the prompt,
    sample, new tokens, text, repeated 4-grams and the model's own loss on it; plus the
    stamp of :func:`llmlab.provenance.stamp` and the seconds spent. Returns the record."""
    _checks.positive_int("max_new_tokens", max_new_tokens)
    _checks.positive_int("samples", samples)
    _checks.non_negative_int("seed", seed)
    if prompts is not None:
        _checks.strings("prompts", prompts)
    if out is not False:
        result_path(out, NAME)  # a bad path is refused before the work, not after
    if model is None:
        model, tokenizer = zoo.load(SWEEP_MODEL)
    settings = SWEEP_SETTINGS if settings is None else settings
    prompts = SWEEP_PROMPTS if prompts is None else prompts
    stop = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop
    ids, mask = chat_batch(tokenizer, prompts)
    record = {"what": "chapter 5 decoding sweep", "model": SWEEP_MODEL, "prompts": prompts,
              "max_new_tokens": max_new_tokens, "samples": samples, "seed": seed, "stop_token_id": stop,
              **stamp(COMMAND, *CODE), "settings": [], "rows": []}
    started = time.perf_counter()
    with torch.inference_mode():
        batched = [s for s in settings if s["method"] != "beam"]
        results = dict(zip([s["name"] for s in batched],
                           generate_settings(model, ids, mask, batched, max_new_tokens, stop, samples, seed)))
        record["seconds_generate"] = round(time.perf_counter() - started, 1)
        print(f"{len(batched)} settings, one batch: {record['seconds_generate']:.0f}s", flush=True)
        for s in settings:
            if s["method"] == "beam":
                t0 = time.perf_counter()
                out_ids = beam_search(model, ids, max_new_tokens=max_new_tokens, stop_token_id=stop,
                                      attention_mask=mask, **_setting_kwargs(s))
                results[s["name"]] = [_strip(r, stop) for r in out_ids[:, ids.size(1):].tolist()]
                print(f"{s['name']}: {time.perf_counter() - t0:.0f}s", flush=True)
        t0 = time.perf_counter()
        for setting in settings:
            rows = results[setting["name"]]
            per = _rows_per_prompt(setting, samples)
            r_ids, r_mask = ids.repeat_interleave(per, 0), mask.repeat_interleave(per, 0)
            nats = score_continuations(model, r_ids, r_mask, rows, pad, batch_size=16)
            for i, (toks, loss) in enumerate(zip(rows, nats)):
                record["rows"].append({
                    "setting": setting["name"], "prompt": i // per, "sample": i % per, "tokens": toks,
                    "text": tokenizer.decode(toks), "n_tokens": len(toks), "ended": len(toks) < max_new_tokens,
                    "repeated_4grams": metrics.repeated_ngram_fraction(toks, 4), "nats_per_token": loss})
            record["settings"].append(setting)
        record["seconds_score"] = round(time.perf_counter() - t0, 1)
        print(f"scoring: {record['seconds_score']:.0f}s", flush=True)
    record["seconds"] = round(time.perf_counter() - started, 1)
    if out is not False:
        write_json(record, out, NAME)
    return record


def load(path=None) -> dict:
    """The sweep record at ``path`` (default: the shipped file) as a dict, its machine a dict."""
    return read_json(path, NAME, COMMAND)


def main(argv: list[str] | None = None) -> int:
    """``python -m llmlab.records.sampling_sweep [--out PATH] [--only NAME ...]``: the decoding sweep of chapter 5."""
    import argparse

    parser = argparse.ArgumentParser(prog=COMMAND, description=main.__doc__)
    parser.add_argument("--out", default=None)
    parser.add_argument("--only", nargs="*", help="only these setting names (for a quick check)")
    args = parser.parse_args(argv)
    settings = [s for s in SWEEP_SETTINGS if not args.only or s["name"] in args.only]
    if not settings:
        parser.error(f"no setting named {args.only}; names: {[s['name'] for s in SWEEP_SETTINGS]}")
    record = run(args.out, settings)
    print(summarise(record).round(3).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
