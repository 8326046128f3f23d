"""Prompt tuning, p-tuning, few-shot prompts and last-layer fine-tuning compared on the real model (chapter 10).

The task is chapter 4's frozen word-sentiment set (:func:`real_task`); :data:`RECORD`
holds the settings of the comparison (splits, template, seeds, numbers of virtual
tokens, steps, learning rates), :func:`record_plan` lists its runs, :func:`run_one`
trains and evaluates one of them on a frozen model (prompts and soft prompts from
:mod:`llmlab.prompt_template` and :mod:`llmlab.prompt_tuning`) and :func:`summarize`
gives each setting's mean and spread over seeds. ``python -m llmlab.records.prompt_tuning_real``
runs the whole grid on the real model (:mod:`llmlab.records.prompt_tuning_real`).
"""

from __future__ import annotations

import random

import torch

from . import _checks
from .prompt_template import ANSWER, PromptTemplate, few_shot_template
from .prompt_tuning import PromptEncoder, SoftPrompt, _freeze, predict, train_answers, unfreeze_last_layers
from .train import TrainConfig

REAL_TEMPLATE = "Classify this review: {input}\nSentiment: {answer}"  # chapter 4's wording (llmlab.icl)
RECORD = {
    "task": "sentiment", "n_test": 100, "n_train": 80, "n_val": 20, "labels": ["positive", "negative"],
    "template": REAL_TEMPLATE, "virtual_slot": "{virtual}" + REAL_TEMPLATE, "max_length": 48,
    "seeds": [0, 1, 2, 3, 4], "n_virtual": [1, 4, 16], "p_tuning_n_virtual": [4, 16], "shots": 4, "encoder_hidden": 128, "ft_layers": 1,
    "steps": 20, "batch_size": 8, "warmup_steps": 2,
    "lr": {"prompt-tuning": 0.03, "p-tuning (mlp)": 3e-3, "fine-tuning (last layer)": 1e-4},
}


def _check_record(record) -> dict:
    if not isinstance(record, dict):
        raise _checks.ArgumentTypeError(f"record must be a dict of settings like llmlab.prompt_tuning_real.RECORD, got "
                                        f"{type(record).__name__}")
    missing = sorted(set(RECORD) - set(record))
    if missing:
        raise ValueError(f"record is missing the settings {missing} (see llmlab.prompt_tuning_real.RECORD)")
    return record


def real_task(record: dict = RECORD) -> dict:
    """The frozen word-sentiment set of chapter 4 (``llmlab/corpus/icl_eval.json``, VADER words), split:
    the first ``n_test`` items test (chapter 4's first 100), the next ``n_train`` train, then ``n_val``."""
    from .icl import load_eval_set

    _check_record(record)
    t = load_eval_set(record["task"])
    items = [{"input": w, ANSWER: label} for w, label in t["items"]]
    a, b = record["n_test"], record["n_test"] + record["n_train"]
    return {"test": items[:a], "train": items[a:b], "val": items[b: b + record["n_val"]],
            "labels": list(record["labels"]), "source": t["source"], "license": t["license"]}


def record_plan(record: dict = RECORD) -> list[dict]:
    """Every run of the grid, seed-major (so a partial record has every setting): zero-shot once, then per
    seed few-shot, prompt tuning at each number of virtual tokens (p-tuning at those of
    ``p_tuning_n_virtual``, the budget of the 2-core machine), and last-layer fine-tuning."""
    _check_record(record)
    plan = [{"method": "zero-shot", "n_virtual": 0, "seed": None}]
    for seed in record["seeds"]:
        plan.append({"method": f"few-shot ({record['shots']} examples)", "n_virtual": 0, "seed": seed})
        for n in record["n_virtual"]:
            plan.append({"method": "prompt-tuning", "n_virtual": n, "seed": seed})
            if n in record["p_tuning_n_virtual"]:
                plan.append({"method": "p-tuning (mlp)", "n_virtual": n, "seed": seed})
        plan.append({"method": "fine-tuning (last layer)", "n_virtual": 0, "seed": seed})
    return plan


def run_one(model, tokenizer, run: dict, record: dict = RECORD, data: dict | None = None,
            progress: bool = False) -> dict:
    """One run of :func:`record_plan` on ``model`` (left as it was: frozen weights restored); its row."""
    import time

    _checks.model("model", model)
    _checks.tokenizer("tokenizer", tokenizer)
    if not isinstance(run, dict) or not {"method", "n_virtual", "seed"} <= set(run):
        raise ValueError(f"run must be a dict with method, n_virtual and seed (one entry of record_plan()), got {run!r}")
    data = real_task(record) if data is None else data
    plain = PromptTemplate(record["template"], truncate_field="input")
    tuned = PromptTemplate(record["virtual_slot"], truncate_field="input")
    labels, method, seed = data["labels"], run["method"], run["seed"]
    t0 = time.perf_counter()
    row = dict(run)

    def cfg(lr: float) -> TrainConfig:
        return TrainConfig(steps=record["steps"], batch_size=record["batch_size"], lr=lr,
                           warmup_steps=record["warmup_steps"], eval_every=record["steps"], eval_batches=3,
                           weight_decay=0.0, seed=seed)

    if method == "zero-shot":
        module, template, trained = model, plain, 0
    elif method.startswith("few-shot"):
        rng = random.Random(seed)
        demos = rng.sample(data["train"], record["shots"])
        module, template, trained = model, few_shot_template(plain, demos), 0
    elif method in ("prompt-tuning", "p-tuning (mlp)"):
        encoder = None
        if method != "prompt-tuning":
            torch.manual_seed(seed)
            encoder = PromptEncoder(run["n_virtual"], model.get_input_embeddings().weight.shape[1], "mlp",
                                    hidden=record["encoder_hidden"])
        module = SoftPrompt(model, run["n_virtual"], seed=seed, encoder=encoder)
        trained = module.trainable_parameters()
        log = train_answers(module, tokenizer, tuned, data["train"], data["val"], cfg(record["lr"][method]),
                            progress=progress, max_length=record["max_length"])
        row["val_loss"] = log.final_val_loss
        module.collapse()  # inference from the fixed table, as NeMo and PEFT do
        template = tuned
    elif method == "fine-tuning (last layer)":
        saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
        trained = unfreeze_last_layers(model, record["ft_layers"])
        log = train_answers(model, tokenizer, plain, data["train"], data["val"], cfg(record["lr"][method]),
                            progress=progress, max_length=record["max_length"])
        row["val_loss"] = log.final_val_loss
        module, template = model, plain
    else:
        raise ValueError(f"unknown method {method!r}")
    preds = predict(module, tokenizer, template, data["test"], labels, max_length=None)
    correct = sum(p == ex[ANSWER] for p, ex in zip(preds, data["test"]))
    row.update(trainable=int(trained), correct=correct, accuracy=correct / len(data["test"]),
               first_label_share=preds.count(labels[0]) / len(preds))
    if method == "fine-tuning (last layer)":
        model.load_state_dict(saved)
    _freeze(model)
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def summarize(rows: list[dict]) -> list[dict]:
    """Per (method, n_virtual): seeds, mean, sample standard deviation, min and max accuracy, trainable values."""
    import statistics

    if not isinstance(rows, list) or not rows or not all(
            isinstance(r, dict) and {"method", "n_virtual", "accuracy", "trainable", "seconds"} <= set(r) for r in rows):
        raise ValueError("rows must be a non-empty list of rows of run_one (method, n_virtual, accuracy, trainable, "
                         "seconds)")
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["n_virtual"]), []).append(r)
    out = []
    for (method, n), rs in groups.items():
        accs = [r["accuracy"] for r in rs]
        out.append({"method": method, "n_virtual": n, "seeds": len(rs), "mean": statistics.fmean(accs),
                    "std": statistics.stdev(accs) if len(accs) > 1 else 0.0, "min": min(accs), "max": max(accs),
                    "trainable": rs[0]["trainable"], "seconds": statistics.fmean(r["seconds"] for r in rs)})
    return out
