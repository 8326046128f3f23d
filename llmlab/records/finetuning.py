"""Fine-tuning methods compared on the real model, recorded for chapter 12: ``llmlab/results/finetuning.json``.

SmolLM2-135M-Instruct learns chapter 12's order task (:mod:`llmlab.orders`: a message in,
one line of JSON out) by each method of :data:`METHODS`, from the same 400 training
messages, for the same number of optimizer steps of the same batch size, with three seeds
(the seed draws the batches and starts the adapters or the soft prompt). Each run is scored
on the 200 test messages (:func:`llmlab.finetune.score`: is the greedy reply exactly the
reference, and the reference's log-probability), and for forgetting on the book's ten
English passages (loss per token, :func:`llmlab.finetune.english_nll`); seed 0 of the
methods in :data:`MC_METHODS` is also scored on a fixed half of chapter 11's multiple-choice
benchmark (text format), and seed 0 of :data:`REPLY_METHODS` writes real replies to the
test messages (field-by-field scores and a check of the one-pass scoring against generation).

Parts, in order, each run written as soon as it ends (``--resume`` is the default: runs
already in the file are kept when the plan is unchanged):

1. ``base``: the model as it is: zero-shot, and few-shot with three demonstrations drawn
   from the training set by each seed;
2. ``probe``: the learning rate of each family (LoRA, full fine-tuning, prompt tuning) chosen
   from :data:`PROBE` on the 100 validation messages, seed 0, before any test score is seen
   (the same rule for every family: the rate with the most exact replies, ties to the lower
   rate);
3. ``grid``: every method of :data:`METHODS` at its family's rate, seeds 0, 1, 2;
4. ``costs``: per method, three timed training steps and the peak memory of one step
   (:func:`llmlab.peak.measure`), one method after another on the same machine.

``python -m llmlab.records.finetuning`` makes it; :func:`load` reads it back.
"""

from __future__ import annotations

import argparse
import time

import torch

from .. import _checks, finetune, lora, nf4, orders, peak, zoo
from ..device import seed_everything
from ..evaluation import load_benchmark, score_multiple_choice
from ..provenance import stamp
from . import read_json, result_path, write_json

NAME = "finetuning.json"
COMMAND = "python -m llmlab.records.finetuning"
CODE = ("llmlab/finetune.py", "llmlab/lora.py", "llmlab/nf4.py", "llmlab/orders.py",
        "llmlab/corpus/orders.json", "llmlab/records/finetuning.py")
ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
ALL_LINEAR = ATTENTION + ["gate_proj", "up_proj", "down_proj"]
#: name -> how it trains; "family" picks the learning rate (the probe's choice)
METHODS = {
    "prompt tuning": {"family": "prompt", "n_virtual": 16},
    "LoRA r1, all linear": {"family": "lora", "r": 1, "targets": ALL_LINEAR},
    "LoRA r4, all linear": {"family": "lora", "r": 4, "targets": ALL_LINEAR},
    "LoRA r16, all linear": {"family": "lora", "r": 16, "targets": ALL_LINEAR},
    "LoRA r64, all linear": {"family": "lora", "r": 64, "targets": ALL_LINEAR},
    "LoRA r4, attention": {"family": "lora", "r": 4, "targets": ATTENTION},
    "LoRA r16, attention": {"family": "lora", "r": 16, "targets": ATTENTION},
    "QLoRA r16, all linear": {"family": "lora", "r": 16, "targets": ALL_LINEAR, "nf4": True},
    "full fine-tuning": {"family": "full"},
    "LoRA r16 + replay": {"family": "lora", "r": 16, "targets": ALL_LINEAR, "replay": 0.25},
    "full + replay": {"family": "full", "replay": 0.25},
}
PARTS = ("base", "probe", "grid", "costs")
PROBE = {"lora": [5e-4, 2e-3], "full": [2e-5, 1e-4], "prompt": [3e-2, 3e-1]}
PROBE_METHOD = {"lora": "LoRA r16, all linear", "full": "full fine-tuning",
                "prompt": "prompt tuning"}
MC_METHODS = ("LoRA r16, all linear", "full fine-tuning", "LoRA r16 + replay", "full + replay")
REPLY_METHODS = ("LoRA r16, all linear", "full fine-tuning")
#: what is recorded
PLAN = {"seeds": [0, 1, 2], "steps": 16, "batch_size": 8, "warmup": 2, "alpha_over_r": 2,
        "shots": 3, "methods": METHODS, "probe": PROBE, "mc_per_subject": 20,
        "mc_methods": list(MC_METHODS), "reply_methods": list(REPLY_METHODS),
        "n_train": orders.SIZES["train"], "n_val": orders.SIZES["val"],
        "n_test": orders.SIZES["test"], "max_new_tokens": 40}
#: general requests whose own replies (the model's, before any fine-tuning) are replayed
GENERAL = ([f"What is the capital of {c}?" for c in
            ("France", "Japan", "Kenya", "Canada", "Brazil", "Egypt", "Spain", "India")]
           + [f"Give one word that means the opposite of '{w}'." for w in
              ("hot", "early", "happy", "heavy", "open", "quiet", "rich", "strong")]
           + [f"Write one sentence about {t}." for t in
              ("the sea", "a library", "autumn", "bicycles", "bread", "the moon", "trains",
               "gardens")]
           + [f"What is {a} plus {b}?" for a, b in ((2, 3), (7, 5), (10, 4), (6, 6))]
           + [f"Name an animal that lives in {h}." for h in
              ("the desert", "the ocean", "a forest", "the Arctic")])


def mc_items() -> list[dict]:
    """The fixed half of chapter 11's benchmark used for forgetting: the first items of each subject."""
    items = load_benchmark("mc")
    subjects = sorted({it["subject"] for it in items})
    return [it for s in subjects for it in [i for i in items if i["subject"] == s][:PLAN["mc_per_subject"]]]


def demos_for(seed: int) -> list[dict]:
    """The few-shot demonstrations of ``seed``: ``shots`` training messages drawn with it."""
    _checks.non_negative_int("seed", seed)
    train = orders.load_orders("train")
    g = torch.Generator().manual_seed(seed)
    return [train[i] for i in torch.randperm(len(train), generator=g)[:PLAN["shots"]].tolist()]


def prepare(base, tokenizer, method: str, seed: int):
    """A fresh copy of ``base`` set up for ``method``: ``(model, soft_prompt or None)``."""
    _checks.model("base", base)
    _checks.choice("method", method, list(METHODS))
    _checks.non_negative_int("seed", seed)
    spec = METHODS[method]
    seed_everything(seed)  # adapters and soft prompts start from the seed
    model = finetune.fresh_copy(base)
    if spec["family"] == "full":
        return model, None
    for p in model.parameters():
        p.requires_grad_(False)
    if spec["family"] == "prompt":
        from ..prompt_tuning import VirtualTokens

        return model, VirtualTokens(model.get_input_embeddings(), spec["n_virtual"], seed=seed)
    if spec.get("nf4"):
        nf4.quantize_model_nf4(model, spec["targets"])
    lora.add_lora(model, r=spec["r"], alpha=PLAN["alpha_over_r"] * spec["r"],
                  target_modules=spec["targets"])
    return model, None


def _trainable(model, soft_prompt) -> int:
    owner = soft_prompt if soft_prompt is not None else model
    return sum(p.numel() for p in owner.parameters() if p.requires_grad)


def _bits(flags: list[bool]) -> str:
    return "".join("1" if f else "0" for f in flags)


def _train_and_score(base, tokenizer, method: str, seed: int, lr: float, split: str,
                    replay_pairs=()) -> dict:
    """One run: train ``method`` with ``seed`` at ``lr`` and score it on ``split``."""
    spec = METHODS[method]
    model, soft = prepare(base, tokenizer, method, seed)
    t0 = time.perf_counter()
    log = finetune.train(model, tokenizer, orders.load_orders("train"), steps=PLAN["steps"],
                         batch_size=PLAN["batch_size"], lr=lr, seed=seed, soft_prompt=soft,
                         replay=list(replay_pairs) if spec.get("replay") else (),
                         replay_share=spec.get("replay", 0.0), warmup=PLAN["warmup"])
    train_s = time.perf_counter() - t0
    scores = finetune.score(model, tokenizer, orders.load_orders(split), soft_prompt=soft)
    row = {"method": method, "seed": seed, "lr": lr, "split": split,
           "trainable": _trainable(model, soft), "loss": [round(x, 4) for x in log["loss"]],
           "train_s": round(train_s, 1), "exact": _bits(scores["exact"]),
           "logprob": [round(x, 3) for x in scores["logprob"]]}
    if split == "test":
        row["english_nll"] = [round(x, 5) for x in finetune.english_nll(model, tokenizer)]
        if seed == 0 and method in MC_METHODS and soft is None:
            mc = score_multiple_choice(model, tokenizer, mc_items(), format="text")
            row["mc"] = _bits([r["correct"] for r in mc])
        if seed == 0 and method in REPLY_METHODS:
            row["replies"] = finetune.reply(model, tokenizer, orders.load_orders("test"),
                                            max_new_tokens=PLAN["max_new_tokens"])
    return row


def _cost_row(base, tokenizer, method: str, lr: float, replay_pairs=()) -> dict:
    """Three timed training steps and the measured peak bytes of one more step."""
    spec = METHODS[method]
    model, soft = prepare(base, tokenizer, method, 0)
    items = orders.load_orders("train")
    kw = dict(batch_size=PLAN["batch_size"], lr=lr, seed=0, soft_prompt=soft,
              replay=list(replay_pairs) if spec.get("replay") else (),
              replay_share=spec.get("replay", 0.0), warmup=1)
    times = finetune.train(model, tokenizer, items, steps=3, **kw)["step_s"]
    measured = peak.measure(lambda: finetune.train(model, tokenizer, items, steps=1, **kw),
                            device="cpu")
    return {"method": method, "step_s": [round(t, 3) for t in times],
            "peak_bytes": measured.peak_bytes, "baseline_bytes": measured.baseline_bytes,
            "at_peak": measured.at_peak,
            "weight_bytes": nf4.model_bytes(model)["total"], "trainable": _trainable(model, soft)}


def _replay_data(base, tokenizer) -> list[str]:
    """The model's own greedy replies to :data:`GENERAL`, before any fine-tuning."""
    from ..chat import chat_complete

    return chat_complete(base, tokenizer, GENERAL, max_new_tokens=PLAN["max_new_tokens"],
                         batch_size=1)


def _best_rates(probe_rows: list[dict]) -> dict[str, float]:
    """Each family's rate: the most exact replies on the validation set, ties to the lower rate."""
    out = {}
    for family, rates in PROBE.items():
        rows = {r["lr"]: r["exact"].count("1") for r in probe_rows
                if r["method"] == PROBE_METHOD[family]}
        if len(rows) == len(rates):
            out[family] = max(sorted(rows), key=lambda lr: rows[lr])
    return out


def run(out=None, model=None, tokenizer=None, parts=("base", "probe", "grid", "costs"),
        resume: bool = True, seeds=None, methods=None) -> dict:
    """Run the parts of the plan; write the record after every run (see the module's doc).

    ``seeds`` and ``methods`` limit the grid to some of the plan's seeds and methods, so
    that a grid can be recorded in parts (several processes, each writing its own file,
    merged with :func:`merge`).
    """
    methods = list(METHODS) if methods is None else methods
    if not isinstance(methods, (list, tuple)) or not methods or any(m not in METHODS for m in methods):
        raise ValueError(f"methods must be a non-empty list of {list(METHODS)}, got {methods!r}")
    seeds = PLAN["seeds"] if seeds is None else seeds
    if not isinstance(seeds, (list, tuple)) or not set(seeds) <= set(PLAN["seeds"]) or not seeds:
        raise ValueError(f"seeds must be a non-empty list of the plan's seeds {PLAN['seeds']}, "
                         f"got {seeds!r}")
    parts = tuple(parts) if isinstance(parts, (list, tuple)) else parts
    if not isinstance(parts, tuple) or not parts or any(p not in PARTS for p in parts):
        raise ValueError(f"parts must be a non-empty list of {list(PARTS)}, got {parts!r}")
    if out is not False:
        path = result_path(out, NAME)
    started = time.perf_counter()
    record = {"what": "chapter 12: fine-tuning methods on the order task, same data and steps",
              "model": zoo.REAL_MODEL, "plan": PLAN, **stamp(COMMAND, *CODE),
              "base": [], "probe": [], "grid": [], "costs": [], "seconds": 0.0}
    if resume and out is not False and path.exists():
        old = read_json(out, NAME, COMMAND)
        if old.get("plan") == PLAN:
            for key in ("base", "probe", "grid", "costs", "replay", "rates", "parts"):
                if key in old:
                    record[key] = old[key]
            started -= old.get("seconds", 0.0)
    if model is None:
        model, tokenizer = zoo.load(zoo.REAL_MODEL, device="cpu")
    model.eval()

    def save():
        record["seconds"] = round(time.perf_counter() - started, 1)
        record["complete"] = (len(record["grid"]) == len(METHODS) * len(PLAN["seeds"])
                              and len(record["costs"]) == len(METHODS))
        if out is not False:
            write_json(record, out, NAME)

    def log(text: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {text}", flush=True)

    test = orders.load_orders("test")
    if "replay" not in record:
        record["replay"] = _replay_data(model, tokenizer)
        save()
    replay_pairs = _encode_replay(record["replay"], tokenizer)
    if "base" in parts:
        done = {(r["method"], r["seed"]) for r in record["base"]}
        if ("zero-shot", 0) not in done:
            s = finetune.score(model, tokenizer, test)
            mc = score_multiple_choice(model, tokenizer, mc_items(), format="text")
            record["base"].append({
                "method": "zero-shot", "seed": 0, "exact": _bits(s["exact"]),
                "logprob": [round(x, 3) for x in s["logprob"]],
                "english_nll": [round(x, 5) for x in finetune.english_nll(model, tokenizer)],
                "mc": _bits([r["correct"] for r in mc]),
                "replies": finetune.reply(model, tokenizer, test,
                                          max_new_tokens=PLAN["max_new_tokens"])})
            save()
            log("zero-shot")
        for seed in PLAN["seeds"]:
            if ("few-shot", seed) in done:
                continue
            demos = demos_for(seed)
            s = finetune.score(model, tokenizer, test, demos=demos)
            row = {"method": "few-shot", "seed": seed, "demos": [d["id"] for d in demos],
                   "exact": _bits(s["exact"]), "logprob": [round(x, 3) for x in s["logprob"]]}
            if seed == 0:
                row["replies"] = finetune.reply(model, tokenizer, test, demos=demos,
                                                max_new_tokens=PLAN["max_new_tokens"])
            record["base"].append(row)
            save()
            log(f"few-shot seed {seed}")
    if "probe" in parts:
        for family, rates in PROBE.items():
            for lr in rates:
                method = PROBE_METHOD[family]
                if any(r["method"] == method and r["lr"] == lr for r in record["probe"]):
                    continue
                record["probe"].append(_train_and_score(model, tokenizer, method, 0, lr, "val"))
                save()
                log(f"probe {method} lr {lr}: {record['probe'][-1]['exact'].count('1')} exact")
    record["rates"] = _best_rates(record["probe"])
    if "grid" in parts:
        if len(record["rates"]) != len(PROBE):
            raise RuntimeError("the grid needs the probe's rates: run the probe part first")
        for seed in seeds:
            for method, spec in METHODS.items():
                if method not in methods:
                    continue
                if any(r["method"] == method and r["seed"] == seed for r in record["grid"]):
                    continue
                lr = record["rates"][spec["family"]]
                record["grid"].append(_train_and_score(model, tokenizer, method, seed, lr, "test",
                                                      replay_pairs))
                save()
                row = record["grid"][-1]
                log(f"{method} seed {seed}: {row['exact'].count('1')} exact, {row['train_s']} s")
    if "costs" in parts:
        for method, spec in METHODS.items():
            if any(r["method"] == method for r in record["costs"]):
                continue
            lr = record["rates"].get(spec["family"], PROBE[spec["family"]][0])
            record["costs"].append(_cost_row(model, tokenizer, method, lr, replay_pairs))
            save()
            log(f"costs {method}: {min(record['costs'][-1]['step_s'])} s/step")
    save()
    return record


def _encode_replay(replies: list[str], tokenizer) -> list[tuple[list[int], list[int]]]:
    """:data:`GENERAL` and the recorded replies, encoded as (prompt ids, answer ids) pairs."""
    from ..chat import chat_text

    return [(tokenizer(chat_text(tokenizer, q), add_special_tokens=False)["input_ids"],
             tokenizer(a + tokenizer.eos_token, add_special_tokens=False)["input_ids"])
            for q, a in zip(GENERAL, replies)]


def merge(paths: list, out=None) -> dict:
    """One record from parts made with the same plan: every run found in any of ``paths``.

    The base, probe and replay come from the first file; grid and cost rows are taken
    from each file in turn, skipping runs already taken. Written to ``out`` (default: the
    shipped file; ``False`` writes nothing) and returned.
    """
    if not isinstance(paths, (list, tuple)) or not paths:
        raise ValueError(f"paths must be a non-empty list of record files, got {paths!r}")
    parts = [read_json(p, NAME, COMMAND) for p in paths]
    if any(p.get("plan") != PLAN for p in parts):
        raise ValueError("every part must have been made with this module's PLAN")
    record = dict(parts[0])
    record["grid"], record["costs"] = [], []
    for part in parts:
        for key, ident in (("grid", ("method", "seed")), ("costs", ("method",))):
            have = {tuple(r[k] for k in ident) for r in record[key]}
            record[key] += [r for r in part[key] if tuple(r[k] for k in ident) not in have]
    # the parts ran side by side, each from a copy of the record so far: the longest is the wall time
    record["seconds"] = round(max(p["seconds"] for p in parts), 1)
    record["parts"] = [{k: p[k] for k in ("code_version", "made", "seconds")} for p in parts]
    record["complete"] = (len(record["grid"]) == len(METHODS) * len(PLAN["seeds"])
                          and len(record["costs"]) == len(METHODS))
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
    parser.add_argument("--seeds", nargs="+", type=int, help="the grid's seeds to run (default: all)")
    parser.add_argument("--methods", nargs="+", help="the grid's methods to run (default: all)")
    parser.add_argument("--out", help="the file to write (default: the shipped record)")
    parser.add_argument("--merge", nargs="+", metavar="PART", help="merge these part files into --out")
    args = parser.parse_args(argv)
    if args.merge:
        merge(args.merge, out=args.out)
        return 0
    run(out=args.out, parts=tuple(args.parts), resume=not args.fresh, seeds=args.seeds,
        methods=args.methods)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
