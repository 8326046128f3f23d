"""The recorded decoding sweep of chapter 5: ``llmlab/results/sampling_sweep.json``.

Every decoding setting of :data:`SWEEP_SETTINGS` (greedy, beam search, repetition penalty,
no-repeat 3-grams, temperatures, top-k, top-p, min-p) on the real model for the open-ended
requests of :data:`SWEEP_PROMPTS`, through the chat template; each answer scored by its
repeated 4-grams and the model's own loss. The ten English passages of
``llmlab/corpus/english_passages.txt`` are scored the same way, as answers to the requests
written for them (:data:`HUMAN_PROMPTS`). ``python -m llmlab.records.sampling_sweep --parts
DIR`` makes it (resuming from the settings already in ``DIR``); :func:`load` reads it back,
:func:`llmlab.sampling.per_prompt` gives the per-request scores that paired tests compare
and :func:`llmlab.sampling.summarise` the chapter's table.
"""

from __future__ import annotations

import re
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
#: Prompts 8 to 17 are the requests that the ten English passages of
#: ``llmlab/corpus/english_passages.txt`` answer, in the file's order (see :data:`HUMAN_PROMPTS`).
SWEEP_PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Describe your favourite season.",
    "What makes a good friend?",
    "Tell me about the history of bread.",
    "Write a poem about the sea.",
    "Describe a walk through a forest.",
    "What would you do with a free day?",
    "Write a letter to your future self.",
    "Explain how bread is made.",
    "Write a short report of a residents' meeting about a new bus timetable.",
    "How do I fix a flat bicycle tyre?",
    "Explain how rain forms.",
    "Write a thank-you note to a neighbour who looked after your cat.",
    "Describe an old lighthouse and its history.",
    "How do I make a good study plan?",
    "Describe a morning at a farmers' market.",
    "What should I do when a computer program runs slowly?",
    "Describe a town that has learned to live with a river that floods.",
    "Write a story about a lost dog.",
    "Describe your ideal house.",
    "What is the best way to learn a new language?",
    "Write a short speech for a friend's wedding.",
    "Describe a busy train station.",
    "Tell me about a city you would like to visit.",
]

#: The prompt index of each reference passage (``domain.english_passages()``, in order).
HUMAN_PROMPTS = list(range(8, 18))

#: The setting name under which the reference passages (written for the book, not sampled
#: from the model; the name is historical) appear in the record's rows.
HUMAN = "human-written"


SWEEP_MODEL = zoo.REAL_MODEL


SWEEP_NEW_TOKENS = 48  # new tokens per continuation (fewer when the model ends its answer)


SWEEP_SAMPLES = 1  # samples per prompt for the random methods (more prompts buy more than more samples)


SWEEP_SEED = 0


#: One entry per decoding setting: ``method`` is greedy, beam or sample; the rest are
#: the keyword arguments of :func:`generate` or :func:`beam_search`.
SWEEP_SETTINGS: list[dict] = [
    {"name": "greedy", "method": "greedy"},
    {"name": "greedy, repetition penalty 1.3", "method": "greedy", "repetition_penalty": 1.3},
    {"name": "greedy, no repeated 3-grams", "method": "greedy", "no_repeat_ngram_size": 3},
    {"name": "T=1.0", "method": "sample", "temperature": 1.0},
    {"name": "T=1, top-p=0.9", "method": "sample", "top_p": 0.9},
    {"name": "T=1, top-k=50", "method": "sample", "top_k": 50},
    {"name": "T=1.5", "method": "sample", "temperature": 1.5},
    {"name": "T=1.5, min-p=0.1", "method": "sample", "temperature": 1.5, "min_p": 0.1},
    {"name": "beam search, 4 beams", "method": "beam", "num_beams": 4},
]


def _decode_group(model, ids, mask, group: list[dict], max_new_tokens: int, stop: int, samples: int,
                  seed: int) -> list[list[list[int]]]:
    """The new tokens of a group of settings, per setting prompt-major: greedy and sampling
    settings in one batch (:func:`generate_settings`), a beam setting alone."""
    if group[0]["method"] == "beam":
        got = beam_search(model, ids, max_new_tokens=max_new_tokens, stop_token_id=stop,
                          attention_mask=mask, **_setting_kwargs(group[0]))
        return [[_strip(r, stop) for r in got[:, ids.size(1):].tolist()]]
    return generate_settings(model, ids, mask, group, max_new_tokens, stop, samples, seed)


def _human_rows(tokenizer, max_new_tokens: int) -> list[tuple[int, list[int]]]:
    """(prompt index, first ``max_new_tokens`` tokens) of each reference passage."""
    from ..domain import english_passages

    return [(i, tokenizer(text, add_special_tokens=False)["input_ids"][:max_new_tokens])
            for i, text in zip(HUMAN_PROMPTS, english_passages(), strict=True)]


def run(out=None, settings: list[dict] | None = None, prompts: list[str] | None = None,
        max_new_tokens: int = SWEEP_NEW_TOKENS, samples: int = SWEEP_SAMPLES, seed: int = SWEEP_SEED,
        model=None, tokenizer=None, parts=None) -> dict:
    """Decode :data:`SWEEP_PROMPTS` with every setting of :data:`SWEEP_SETTINGS` on the
    real model and write the record (JSON) to ``out`` (default the shipped
    ``llmlab/results/sampling_sweep.json``; ``False`` writes nothing): per row the prompt,
    sample, new tokens, text, repeated 4-grams and the model's own loss on it (nats per
    token); plus, with the default prompts, the reference passages scored the same way
    as answers to their requests; the stamp of :func:`llmlab.provenance.stamp` and the
    seconds spent. ``parts`` (a folder) keeps each finished setting as a file, so that an
    interrupted run resumes where it stopped. Returns the record."""
    import json
    from pathlib import Path

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
    with_human = prompts is None
    prompts = SWEEP_PROMPTS if prompts is None else prompts
    stop = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop
    ids, mask = chat_batch(tokenizer, prompts)
    record = {"what": "chapter 5 decoding sweep", "model": SWEEP_MODEL, "prompts": prompts,
              "max_new_tokens": max_new_tokens, "samples": samples, "seed": seed, "stop_token_id": stop,
              **stamp(COMMAND, *CODE), "settings": [], "rows": []}
    started = time.perf_counter()
    folder = Path(parts) if parts is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    batched = [s for s in settings if s["method"] != "beam"]
    groups = [batched[i:i + 3] for i in range(0, len(batched), 3)]  # about 72 rows a batch
    groups += [[s] for s in settings if s["method"] == "beam"]
    if with_human:
        groups.insert(0, [None])
    with torch.inference_mode():
        for group in groups:
            names = [s["name"] if s else HUMAN for s in group]
            part = (folder / (re.sub(r"[^A-Za-z0-9.=-]+", "_", "+".join(names)) + ".json")
                    if folder else None)
            if part is not None and part.exists():
                record["rows"] += json.loads(part.read_text())
                record["settings"] += [s for s in group if s]
                continue
            t0 = time.perf_counter()
            decoded = (_decode_group(model, ids, mask, group, max_new_tokens, stop, samples, seed)
                       if group[0] else [None])
            rows = []
            for setting, toks in zip(group, decoded):
                rows += _score(model, tokenizer, ids, mask, setting, toks, max_new_tokens, samples, pad)
            record["rows"] += rows
            record["settings"] += [s for s in group if s]
            if part is not None:
                part.write_text(json.dumps(rows))
            print(f"{' + '.join(names)}: {time.perf_counter() - t0:.0f}s", flush=True)
    record["seconds"] = round(time.perf_counter() - started, 1)
    if out is not False:
        write_json(record, out, NAME)
    return record


def _score(model, tokenizer, ids, mask, setting, toks, max_new_tokens, samples, pad) -> list[dict]:
    """The record's rows of one setting (``None``: the reference passages)."""
    name = setting["name"] if setting else HUMAN
    if setting is None:  # the reference passages, answers to their requests
        pairs = _human_rows(tokenizer, max_new_tokens)
        index = [(i, 0) for i, _ in pairs]
        toks = [t for _, t in pairs]
        r_ids, r_mask = ids[[i for i, _ in pairs]], mask[[i for i, _ in pairs]]
    else:
        per = _rows_per_prompt(setting, samples)
        index = [(i // per, i % per) for i in range(len(toks))]
        r_ids, r_mask = ids.repeat_interleave(per, 0), mask.repeat_interleave(per, 0)
    nats = score_continuations(model, r_ids, r_mask, toks, pad, batch_size=16)
    rows = [{"setting": name, "prompt": p, "sample": k, "tokens": t, "text": tokenizer.decode(t),
             "n_tokens": len(t), "ended": setting is not None and len(t) < max_new_tokens,
             "repeated_4grams": metrics.repeated_ngram_fraction(t, 4), "nats_per_token": loss}
            for (p, k), t, loss in zip(index, toks, nats)]
    return rows


def load(path=None) -> dict:
    """The sweep record at ``path`` (default: the shipped file) as a dict, its machine a dict."""
    return read_json(path, NAME, COMMAND)


def main(argv: list[str] | None = None) -> int:
    """``python -m llmlab.records.sampling_sweep [--out PATH] [--only NAME ...]``: the decoding sweep of chapter 5."""
    import argparse

    parser = argparse.ArgumentParser(prog=COMMAND, description=main.__doc__)
    parser.add_argument("--out", default=None)
    parser.add_argument("--only", nargs="*", help="only these setting names (for a quick check)")
    parser.add_argument("--parts", default=None, help="a folder for finished settings (resumes there)")
    args = parser.parse_args(argv)
    settings = [s for s in SWEEP_SETTINGS if not args.only or s["name"] in args.only]
    if not settings:
        parser.error(f"no setting named {args.only}; names: {[s['name'] for s in SWEEP_SETTINGS]}")
    record = run(args.out, settings, parts=args.parts)
    print(summarise(record).round(3).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
