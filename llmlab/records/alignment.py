"""A reward model, DPO and GRPO on the real model, recorded for chapter 13: ``llmlab/results/alignment.json``.

SmolLM2-135M-Instruct, with LoRA adapters (rank 16 on every linear layer of every block)
so that the reference model is the same weights with the adapters off. Parts, in order,
each run written as soon as it ends (runs already in the file are kept when the plan is
unchanged, so a stopped recording resumes):

1. ``samples``: the model as it is answers each of the 120 held-out questions of
   :mod:`llmlab.preferences` ``best_of_n["n"]`` times (sampling at ``temperature``); each
   answer is scored by the principle (:func:`llmlab.preferences.score`) and measured;
   also its greedy answers and whether it already gives the chosen answer more
   probability than the rejected one;
2. ``reward``: a reward model (:class:`llmlab.alignment.RewardModel`) per training set
   (``train``: length says nothing; ``train_long``: the chosen answer is the longer one in
   85% of pairs) and seed; each scores the 120 held-out pairs and every sampled answer of
   part 1 (best-of-n against it is computed from these scores when the record is read);
3. ``dpo``: DPO on ``train`` for each (beta, seed) of ``dpo["runs"]``; held-out implicit-reward accuracy,
   margin and KL to the reference on the held-out chosen answers
   (:func:`llmlab.alignment.response_kl`) every
   ``eval_every`` steps, and the greedy answers after training;
4. ``grpo``: GRPO on the 111 training sums, reward 1 when the reply's last number is the
   sum; greedy accuracy on the 60 held-out sums every ``eval_every`` steps; every sampled
   answer of seed 0 kept;
5. ``proxy``: GRPO on the training questions with a reward model's score as the reward,
   once per training set of part 2 (the reward model trained again as there): per step
   the reward, and what the principle says of the same sampled answers (right, one value
   alone, length); greedy answers to the 120 held-out questions every ``eval_every`` steps,
   with the reward model's score of each.

``python -m llmlab.records.alignment`` makes it (``--parts``, ``--seeds``, ``--out`` and
``--merge`` record it in parts, side by side); :func:`load` reads it back.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from .. import _checks, alignment, chat, lora, preferences, zoo
from ..device import seed_everything
from ..provenance import stamp
from . import read_json, result_path, write_json

NAME = "alignment.json"
COMMAND = "python -m llmlab.records.alignment"
CODE = ("llmlab/alignment.py", "llmlab/lora.py", "llmlab/preferences.py", "llmlab/corpus/preferences.json",
        "llmlab/records/alignment.py")
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PARTS = ("samples", "reward", "dpo", "grpo", "proxy")
PLAN = {
    "seeds": [0, 1, 2],  # every seed of any part; each part runs the seeds it names
    "lora": {"r": 16, "alpha": 32, "targets": ALL_LINEAR},
    "reply_tokens": 48,
    "best_of_n": {"n": 8, "temperature": 0.7, "max_new_tokens": 40},
    "reward": {"sets": {"balanced": "train", "length-correlated": "train_long"}, "seeds": [0, 1],
               "steps": 30, "batch_size": 8, "lr": 1e-3},
    # beta 0.2 with two seeds, the other two values with one (the budget of two CPU cores)
    "dpo": {"betas": [0.05, 0.2, 1.0], "seeds": [0, 1], "runs": [[0.05, 0], [0.2, 0], [0.2, 1], [1.0, 0]],
            "steps": 24, "batch_size": 8, "lr": 2e-4, "eval_every": 12},
    "grpo": {"seeds": [0, 1, 2], "steps": 30, "prompts_per_step": 4, "group_size": 8, "lr": 5e-4,
             "beta": 0.04, "epsilon": 0.2, "max_new_tokens": 20, "temperature": 0.7, "eval_every": 15},
    # GRPO against each reward model (retrained as in the reward part, seed 0): the proxy optimised
    "proxy": {"sets": ["length-correlated", "balanced"], "seed": 0, "steps": 24, "prompts_per_step": 4,
              "group_size": 8, "lr": 5e-4, "beta": 0.04, "epsilon": 0.2, "max_new_tokens": 40,
              "temperature": 0.7, "eval_every": 12},
}


def with_lora(base):
    """A copy of ``base`` with the plan's LoRA adapters (seeded by the caller)."""
    spec = PLAN["lora"]
    return lora.add_lora(copy.deepcopy(base), r=spec["r"], alpha=spec["alpha"], target_modules=spec["targets"])


def _bits(flags) -> str:
    return "".join("1" if f else "0" for f in flags)


def _tokens(tokenizer, texts: list[str]) -> list[int]:
    return [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]


def _samples(model, tokenizer, test: list[dict]) -> dict:
    spec = PLAN["best_of_n"]
    texts = []
    for start in range(0, len(test), 8):  # 8 questions x n answers per generate call
        chunk = test[start:start + 8]
        out = alignment.sample_groups(model, tokenizer, [p["prompt"] for p in chunk], spec["n"],
                                      spec["max_new_tokens"], spec["temperature"], seed=start)
        texts += out["texts"]
    answers = [p["answer"] for p in test for _ in range(spec["n"])]
    greedy = chat.chat_complete(model, tokenizer, [p["prompt"] for p in test], max_new_tokens=PLAN["reply_tokens"])
    with torch.no_grad():
        prompts = [p["prompt"] for p in test]
        pc = alignment.sequence_logps(model, tokenizer, prompts, [p["chosen"] for p in test])
        pr = alignment.sequence_logps(model, tokenizer, prompts, [p["rejected"] for p in test])
    return {"texts": texts, "correct": _bits(preferences.score(t, a) for t, a in zip(texts, answers)),
            "short": _bits(preferences.is_short(t, a) for t, a in zip(texts, answers)),
            "tokens": _tokens(tokenizer, texts),
            "greedy": greedy, "greedy_correct": _bits(preferences.score(t, p["answer"]) for t, p in zip(greedy, test)),
            "prefers_chosen": _bits((pc > pr).tolist())}


def _reward_run(base, tokenizer, which: str, seed: int, test: list[dict], samples: dict) -> dict:
    spec = PLAN["reward"]
    seed_everything(seed)
    model = alignment.RewardModel(with_lora(base), seed=seed)
    pairs = preferences.load_pairs(spec["sets"][which])
    started = time.perf_counter()
    history = alignment.train_reward_model(model, tokenizer, pairs, steps=spec["steps"],
                                           batch_size=spec["batch_size"], lr=spec["lr"], seed=seed)
    seconds = time.perf_counter() - started
    prompts = [p["prompt"] for p in test]
    rc = alignment.reward_scores(model, tokenizer, prompts, [p["chosen"] for p in test])
    rr = alignment.reward_scores(model, tokenizer, prompts, [p["rejected"] for p in test])
    n = PLAN["best_of_n"]["n"]
    scored = alignment.reward_scores(model, tokenizer, [p for p in prompts for _ in range(n)], samples["texts"])
    return {"set": which, "seed": seed, "train_s": round(seconds, 1),
            "loss": [round(r["loss"], 4) for r in history],
            "correct": _bits((rc > rr).tolist()),
            "chosen": [round(x, 4) for x in rc.tolist()], "rejected": [round(x, 4) for x in rr.tolist()],
            "sample_scores": [round(x, 4) for x in scored.tolist()]}


def _dpo_run(base, tokenizer, beta: float, seed: int, test: list[dict], references: dict) -> dict:
    """One DPO run; ``references`` holds the base model's log-probabilities of the train and test
    pairs (the reference of every run, computed once)."""
    spec = PLAN["dpo"]
    seed_everything(seed)
    model = with_lora(base)
    reference = references["test"]
    prompts = [p["prompt"] for p in test]
    evals = []

    def probe(step, m):
        ev = alignment.preference_eval(m, tokenizer, test, beta, reference)
        kl_c = alignment.response_kl(m, tokenizer, prompts, [p["chosen"] for p in test])
        margins = [c - r for c, r in zip(ev["chosen_reward"], ev["rejected_reward"])]
        evals.append({"step": step, "correct": _bits(ev["reward_correct"]),
                      "prefers_chosen": _bits(ev["policy_prefers_chosen"]),
                      "margin": [round(x, 4) for x in margins],
                      "kl_chosen": [round(x, 4) for x in kl_c.tolist()]})
        return {"eval": True}

    started = time.perf_counter()
    history = alignment.train_dpo(model, tokenizer, preferences.load_pairs("train"), beta=beta,
                                  steps=spec["steps"], batch_size=spec["batch_size"], lr=spec["lr"],
                                  seed=seed, reference=references["train"], on_step=probe,
                                  every=spec["eval_every"])
    seconds = time.perf_counter() - started
    replies = chat.chat_complete(model, tokenizer, prompts, max_new_tokens=PLAN["reply_tokens"])
    return {"beta": beta, "seed": seed, "train_s": round(seconds, 1),
            "history": [{k: round(v, 4) for k, v in r.items() if k != "eval"} for r in history],
            "evals": evals, "replies": replies,
            "replies_correct": _bits(preferences.score(t, p["answer"]) for t, p in zip(replies, test))}


def _sum_reward(item: dict, text: str) -> float:
    return float(preferences.score(text, item["answer"]))


def _grpo_eval(model, tokenizer, sums: list[dict], step: int) -> dict:
    replies = chat.chat_complete(model, tokenizer, [s["prompt"] for s in sums], max_new_tokens=PLAN["reply_tokens"])
    return {"step": step, "correct": _bits(preferences.score(t, s["answer"]) for t, s in zip(replies, sums)),
            "tokens": _tokens(tokenizer, replies), "replies": replies}


def _train_grpo(model, tokenizer, items: list[dict], reward, spec: dict, seed: int, probe) -> list[dict]:
    """:func:`llmlab.alignment.train_grpo` with a part's settings (``PLAN["grpo"]`` or ``PLAN["proxy"]``)."""
    return alignment.train_grpo(model, tokenizer, items, reward, steps=spec["steps"],
                                prompts_per_step=spec["prompts_per_step"], group_size=spec["group_size"],
                                lr=spec["lr"], beta=spec["beta"], epsilon=spec["epsilon"],
                                max_new_tokens=spec["max_new_tokens"], temperature=spec["temperature"],
                                seed=seed, on_step=probe, every=spec["eval_every"])


def _grpo_run(base, tokenizer, seed: int) -> dict:
    spec = PLAN["grpo"]
    seed_everything(seed)
    model = with_lora(base)
    train, test = preferences.load_sums("train"), preferences.load_sums("test")
    evals = [_grpo_eval(model, tokenizer, test, 0)]
    sampled = []

    def probe(step, m):
        evals.append(_grpo_eval(m, tokenizer, test, step))
        return {}

    reward = _sum_reward
    if seed == PLAN["grpo"]["seeds"][0]:  # keep every sampled answer of the first seed
        def reward(item, text):
            sampled.append(text)
            return _sum_reward(item, text)
    started = time.perf_counter()
    history = _train_grpo(model, tokenizer, train, reward, spec, seed, probe)
    seconds = time.perf_counter() - started
    return {"seed": seed, "train_s": round(seconds, 1),
            "history": [{k: round(v, 4) for k, v in r.items()} for r in history],
            "evals": evals, "sampled": sampled}


def _proxy_eval(model, reward_model, tokenizer, test: list[dict], step: int) -> dict:
    prompts = [p["prompt"] for p in test]
    replies = chat.chat_complete(model, tokenizer, prompts, max_new_tokens=PLAN["reply_tokens"])
    scores = alignment.reward_scores(reward_model, tokenizer, prompts, replies)
    return {"step": step, "correct": _bits(preferences.score(t, p["answer"]) for t, p in zip(replies, test)),
            "short": _bits(preferences.is_short(t, p["answer"]) for t, p in zip(replies, test)),
            "tokens": _tokens(tokenizer, replies), "scores": [round(x, 4) for x in scores.tolist()],
            "replies": replies}


def _proxy_run(base, tokenizer, which: str, test: list[dict]) -> dict:
    """GRPO against the reward model of ``which`` training set: the proxy, optimised."""
    spec, rspec = PLAN["proxy"], PLAN["reward"]
    seed = spec["seed"]
    seed_everything(seed)
    reward_model = alignment.RewardModel(with_lora(base), seed=seed)
    pairs = preferences.load_pairs(rspec["sets"][which])
    alignment.train_reward_model(reward_model, tokenizer, pairs, steps=rspec["steps"],
                                 batch_size=rspec["batch_size"], lr=rspec["lr"], seed=seed)
    reward_model.eval()
    rc = alignment.reward_scores(reward_model, tokenizer, [p["prompt"] for p in test], [p["chosen"] for p in test])
    rr = alignment.reward_scores(reward_model, tokenizer, [p["prompt"] for p in test],
                                 [p["rejected"] for p in test])
    seed_everything(seed)
    model = with_lora(base)
    questions = preferences.load_pairs("train")  # their prompts and right answers; not their pairs
    seen: list[dict] = []  # every sampled answer, in order: 32 a step

    def reward(item, text):
        r = alignment.reward_scores(reward_model, tokenizer, [item["prompt"]], [text]).item()
        seen.append({"text": text, "reward": r, "correct": preferences.score(text, item["answer"]),
                     "short": preferences.is_short(text, item["answer"])})
        return r

    evals = [_proxy_eval(model, reward_model, tokenizer, test, 0)]

    def probe(step, m):
        evals.append(_proxy_eval(m, reward_model, tokenizer, test, step))
        return {}

    started = time.perf_counter()
    history = _train_grpo(model, tokenizer, questions, reward, spec, seed, probe)
    seconds = time.perf_counter() - started
    per_step = spec["prompts_per_step"] * spec["group_size"]
    sampled = {"correct": _bits(s["correct"] for s in seen), "short": _bits(s["short"] for s in seen),
               "tokens": _tokens(tokenizer, [s["text"] for s in seen]),
               "first": [s["text"] for s in seen[:per_step]], "last": [s["text"] for s in seen[-per_step:]]}
    return {"set": which, "seed": seed, "train_s": round(seconds, 1),
            "reward_model_correct": _bits((rc > rr).tolist()),
            "history": [{k: round(v, 4) for k, v in r.items()} for r in history],
            "sampled": sampled, "evals": evals}


def _check_seeds(seeds) -> list[int]:
    seeds = PLAN["seeds"] if seeds is None else seeds
    if not isinstance(seeds, (list, tuple)) or not seeds or not set(seeds) <= set(PLAN["seeds"]):
        raise ValueError(f"seeds must be a non-empty list of the plan's seeds {PLAN['seeds']}, got {seeds!r}")
    return list(seeds)


def _complete(record: dict) -> bool:
    return (bool(record.get("samples"))
            and len(record["reward"]) == len(PLAN["reward"]["sets"]) * len(PLAN["reward"]["seeds"])
            and len(record["dpo"]) == len(PLAN["dpo"]["runs"])
            and len(record["grpo"]) == len(PLAN["grpo"]["seeds"])
            and len(record.get("proxy", [])) == len(PLAN["proxy"]["sets"]))


def _made(record: dict) -> dict:
    """Which code made a record's runs, when, and which runs it held."""
    return {"code_version": record.get("code_version", "unknown"), "made": record.get("made", "unknown"),
            "seconds": record.get("seconds", 0.0),
            "runs": {key: (1 if key == "samples" else len(record[key])) for key in PARTS if record.get(key)}}


def _same_plan(old: dict | None) -> bool:
    """Whether a record was made by this plan, or by this plan before parts were added to it."""
    return isinstance(old, dict) and all(PLAN.get(k) == v for k, v in old.items())


def run(out=None, model=None, tokenizer=None, parts=PARTS, resume: bool = True, seeds=None) -> dict:
    """Run the parts of the plan; write the record after every run (see the module's doc).

    ``seeds`` limits the reward, DPO and GRPO runs to some of the plan's seeds, so the
    grid can be recorded in parts (each process its own file, merged with :func:`merge`).
    The reward part needs the samples part first (it scores the samples).
    """
    seeds = _check_seeds(seeds)
    parts = tuple(parts) if isinstance(parts, (list, tuple)) else parts
    if not isinstance(parts, tuple) or not parts or any(p not in PARTS for p in parts):
        raise ValueError(f"parts must be a non-empty list of {list(PARTS)}, got {parts!r}")
    if out is not False:
        path = result_path(out, NAME)
    started = time.perf_counter()
    record = {"what": "chapter 13: a reward model, DPO and GRPO with LoRA on the real model",
              "model": zoo.REAL_MODEL, "plan": PLAN, **stamp(COMMAND, *CODE),
              "samples": {}, "reward": [], "dpo": [], "grpo": [], "proxy": [], "seconds": 0.0}
    if resume and out is not False and path.exists():
        old = read_json(out, NAME, COMMAND)
        if _same_plan(old.get("plan")):
            for key in PARTS:
                record[key] = old.get(key, record[key])
            started -= old.get("seconds", 0.0)
            # the runs kept were made by the code of the record's own stamp: keep it
            record["earlier"] = old.get("earlier", []) + [_made(old)]
    if model is None:
        model, tokenizer = zoo.load(zoo.REAL_MODEL, device="cpu")
    model.eval()

    def save():
        record["seconds"] = round(time.perf_counter() - started, 1)
        record["complete"] = _complete(record)
        if out is not False:
            write_json(record, out, NAME)

    def log(text: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {text}", flush=True)

    test = preferences.load_pairs("test")
    if "samples" in parts and not record["samples"]:
        seed_everything(0)
        record["samples"] = _samples(model, tokenizer, test)
        save()
        log(f"samples: {record['samples']['correct'].count('1')} of {len(record['samples']['correct'])} correct")
    if "reward" in parts:
        if not record["samples"]:
            raise RuntimeError("the reward part scores the sampled answers: run the samples part first")
        for seed in [s for s in seeds if s in PLAN["reward"]["seeds"]]:
            for which in PLAN["reward"]["sets"]:
                if any(r["set"] == which and r["seed"] == seed for r in record["reward"]):
                    continue
                record["reward"].append(_reward_run(model, tokenizer, which, seed, test, record["samples"]))
                save()
                row = record["reward"][-1]
                log(f"reward model {which} seed {seed}: {row['correct'].count('1')}/{len(test)}, {row['train_s']} s")
    if "dpo" in parts:
        references = {}
        for beta, seed in PLAN["dpo"]["runs"]:
            if seed not in seeds or any(r["beta"] == beta and r["seed"] == seed for r in record["dpo"]):
                continue
            if not references:  # the base model is every run's reference: computed once
                references = {split: alignment.reference_logps(model, tokenizer, pairs)
                              for split, pairs in (("train", preferences.load_pairs("train")),
                                                   ("test", test))}
            record["dpo"].append(_dpo_run(model, tokenizer, beta, seed, test, references))
            save()
            row = record["dpo"][-1]
            log(f"dpo beta {beta} seed {seed}: {row['evals'][-1]['correct'].count('1')}/{len(test)}, "
                f"{row['train_s']} s")
    if "grpo" in parts:
        for seed in [s for s in seeds if s in PLAN["grpo"]["seeds"]]:
            if any(r["seed"] == seed for r in record["grpo"]):
                continue
            record["grpo"].append(_grpo_run(model, tokenizer, seed))
            save()
            row = record["grpo"][-1]
            log(f"grpo seed {seed}: {row['evals'][0]['correct'].count('1')} -> "
                f"{row['evals'][-1]['correct'].count('1')} of {len(row['evals'][-1]['correct'])}, "
                f"{row['train_s']} s")
    if "proxy" in parts:
        for which in PLAN["proxy"]["sets"]:
            if any(r["set"] == which for r in record["proxy"]):
                continue
            record["proxy"].append(_proxy_run(model, tokenizer, which, test))
            save()
            row = record["proxy"][-1]
            log(f"proxy {which}: reward {row['history'][0]['reward']:.2f} -> {row['history'][-1]['reward']:.2f}, "
                f"right {row['evals'][0]['correct'].count('1')} -> {row['evals'][-1]['correct'].count('1')}, "
                f"{row['train_s']} s")
    save()
    return record


def merge(paths: list, out=None) -> dict:
    """One record from parts made with the same plan: the samples of the first file that has
    them, and every reward, DPO and GRPO run found in any of ``paths`` (first found kept)."""
    if not isinstance(paths, (list, tuple)) or not paths:
        raise ValueError(f"paths must be a non-empty list of record files, got {paths!r}")
    parts = [read_json(p, NAME, COMMAND) for p in paths]
    if not all(_same_plan(p.get("plan")) for p in parts):
        raise ValueError("every part must have been made with this module's PLAN")
    record = dict(parts[0])
    record["plan"] = PLAN
    record["samples"] = next((p["samples"] for p in parts if p["samples"]), {})
    keys = {"reward": ("set", "seed"), "dpo": ("beta", "seed"), "grpo": ("seed",), "proxy": ("set",)}
    for key, ident in keys.items():
        record[key] = []
        for part in parts:
            have = {tuple(r[k] for k in ident) for r in record[key]}
            record[key] += [r for r in part.get(key, []) if tuple(r[k] for k in ident) not in have]
    # the parts ran side by side: the longest is the wall time
    record["seconds"] = round(max(p["seconds"] for p in parts), 1)
    record["parts"] = [{**_made(p), "earlier": p.get("earlier", [])} for p in parts]
    record.pop("earlier", None)
    record["complete"] = _complete(record)
    if out is not False:
        write_json(record, out, NAME)
    return record


def load(path=None) -> dict:
    """The shipped record (or the one at ``path``)."""
    return read_json(path, NAME, COMMAND)


def best_of_n(record: dict, reward_set: str | None, n: int) -> dict[str, list]:
    """Best-of-``n`` per held-out question: the answer the chooser scores highest among the first ``n``.

    ``reward_set`` names the reward models that choose ("balanced" or "length-correlated",
    one choice per seed, pooled), or None for the principle itself (an oracle that picks a
    correct answer whenever one of the ``n`` is correct, the shortest on ties). Returns
    per choice whether it is correct and its length in tokens.
    """
    if not isinstance(record, dict) or "samples" not in record:
        raise _checks.ArgumentTypeError("record must be the alignment record (load())")
    plan = record.get("plan", PLAN)  # the record's own plan says how many answers it sampled
    k = plan["best_of_n"]["n"]
    n = _checks.integer("n", n, low=1, high=k)
    if reward_set is not None and reward_set not in plan["reward"]["sets"]:
        raise ValueError(f"reward_set must be one of {list(plan['reward']['sets'])} or None, got {reward_set!r}")
    samples = record["samples"]
    correct = [c == "1" for c in samples["correct"]]
    tokens = samples["tokens"]
    questions = len(correct) // k
    choosers = ([None] if reward_set is None else
                [r["sample_scores"] for r in record["reward"] if r["set"] == reward_set])
    out = {"correct": [], "tokens": []}
    for scores in choosers:
        for q in range(questions):
            idx = range(q * k, q * k + n)
            if scores is None:
                best = min(idx, key=lambda i: (not correct[i], tokens[i], i))
            else:
                best = max(idx, key=lambda i: (scores[i], -i))
            out["correct"].append(correct[best])
            out["tokens"].append(tokens[best])
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    parser.add_argument("--fresh", action="store_true", help="start over instead of resuming")
    parser.add_argument("--seeds", nargs="+", type=int, help="the seeds to run (default: all)")
    parser.add_argument("--out", help="the file to write (default: the shipped record)")
    parser.add_argument("--merge", nargs="+", metavar="PART", help="merge these part files into --out")
    args = parser.parse_args(argv)
    if args.merge:
        merge(args.merge, out=args.out)
        return 0
    run(out=args.out, parts=tuple(args.parts), resume=not args.fresh, seeds=args.seeds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
