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
from .prompt_tuning import (
    PromptEncoder,
    SoftPrompt,
    _freeze,
    candidate_scores,
    predict,
    train_answers,
    unfreeze_last_layers,
)
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


# --------------------------------------------------------------------------- baselines and a harder task
#: chapter 4's semantically unrelated labels (Wei et al. 2023): the same words, answered "foo"/"bar"
ARBITRARY_LABELS = {"positive": "foo", "negative": "bar"}
TRAINED = ("prompt-tuning", "prompt-tuning (label init)", "p-tuning (mlp)", "fine-tuning (last layer)")
#: the settings of the second comparison (``llmlab.records.prompt_tuning_tasks``): per task, the
#: baselines (zero-shot, a one-offset bias, balanced few-shot) and the trained methods over
#: ``seeds``. Learning rates: on "arbitrary" every trained method runs every rate of its
#: ``lr_grid`` at every seed, and its reported runs are those at the rate with the lowest
#: validation loss averaged over the seeds (the same rule for all); on "sentiment" each runs
#: seed 0 at the first rate of its grid, the rate of :data:`RECORD`. ``long`` trains the
#: methods it names again at their chosen rate for ``steps`` steps instead of RECORD's.
#: Balanced few-shot is calibrated with the average of Zhao et al. (2021)'s three
#: content-free inputs, ``content_free``.
TASKS_RECORD = {
    "tasks": ["sentiment", "arbitrary"], "n_virtual": 4, "seeds": [0, 1, 2], "shots": 4,
    "sentiment_methods": ["prompt-tuning", "fine-tuning (last layer)"],
    "arbitrary_methods": list(TRAINED),
    "lr_grid": {"prompt-tuning": [0.03, 0.3], "prompt-tuning (label init)": [0.03, 0.3],
                "p-tuning (mlp)": [3e-3, 3e-2], "fine-tuning (last layer)": [1e-4, 1e-3]},
    "long": {"methods": ["prompt-tuning", "prompt-tuning (label init)"], "steps": 100},
    "content_free": ["N/A", "", "[MASK]"],
}


def task_data(task: str, record: dict = RECORD) -> dict:
    """:func:`real_task` for ``task="sentiment"``; ``"arbitrary"`` is the same words and splits with the
    labels renamed by :data:`ARBITRARY_LABELS` ("foo" for positive, "bar" for negative), which the
    model cannot know without examples: it sits near chance zero-shot."""
    if not isinstance(task, str):
        raise _checks.ArgumentTypeError(f"task must be a str, 'sentiment' or 'arbitrary', got "
                                        f"{type(task).__name__}")
    if task not in ("sentiment", "arbitrary"):
        raise ValueError(f"task must be 'sentiment' or 'arbitrary', got {task!r}")
    data = real_task(record)
    if task == "arbitrary":
        for split in ("test", "train", "val"):
            data[split] = [{**ex, ANSWER: ARBITRARY_LABELS[ex[ANSWER]]} for ex in data[split]]
        data["labels"] = [ARBITRARY_LABELS[c] for c in data["labels"]]
    return data


def fit_label_bias(log_odds, first, iters: int = 50) -> float:
    """The one-parameter baseline (chapter 10): an offset ``b`` (nats) on the log-odds.

    ``log_odds[i]`` is the zero-shot ``log p(first label) - log p(second label)`` of
    training item i, and ``first[i]`` is True when its answer is the first label. ``b``
    maximises the likelihood of the answers under ``p(first) = sigmoid(log_odds + b)``
    (logistic regression with the slope fixed at 1), by Newton's method. A new item
    gets the first label when ``log_odds + b > 0``.
    """
    if isinstance(log_odds, (str, bytes)) or not hasattr(log_odds, "__len__"):
        kind = type(log_odds).__name__
        raise _checks.ArgumentTypeError(f"log_odds must be a sequence or tensor of "
                                        f"numbers (nats), got {kind}")
    x = torch.as_tensor(log_odds, dtype=torch.float64)
    if x.ndim != 1 or x.numel() == 0 or not torch.isfinite(x).all():
        raise ValueError(f"log_odds must be a non-empty 1-D sequence of finite numbers "
                         f"(nats), got shape {tuple(x.shape)}")
    y = torch.as_tensor(first, dtype=torch.float64)
    if y.shape != x.shape or not ((y == 0) | (y == 1)).all():
        raise ValueError(f"first must hold one True/False per item ({x.numel()} "
                         f"items), got shape {tuple(y.shape)}")
    if y.min() == y.max():
        raise ValueError("first must contain both labels: with one label the best "
                         "offset is infinite")
    b = 0.0
    for _ in range(iters):
        p = torch.sigmoid(x + b)
        step = float((p - y).sum()) / max(float((p * (1 - p)).sum()), 1e-12)
        b -= max(-5.0, min(5.0, step))  # Newton step on the mean log-loss, clipped
        if abs(step) < 1e-10:
            break
    return b


def per_item(rows: list[dict]) -> list[float]:
    """Each test item's accuracy averaged over ``rows`` (runs of one setting, e.g. its seeds),
    from their ``correct_items``: a score per item for a paired test across settings."""
    if not isinstance(rows, list):
        raise _checks.ArgumentTypeError(f"rows must be a list of run rows, got {type(rows).__name__}")
    if not rows or not all(isinstance(r, dict) and "correct_items" in r for r in rows):
        raise ValueError("rows must be a non-empty list of run_task_one rows (with correct_items)")
    items = [r["correct_items"] for r in rows]
    if len({len(c) for c in items}) != 1:
        raise ValueError("the rows were scored on different numbers of test items")
    return [sum(c) / len(c) for c in zip(*items)]


def balanced_demos(train: list[dict], labels: list[str], k: int, seed: int) -> list[dict]:
    """``k`` demonstrations from ``train``, ``k / len(labels)`` of each label, in a seeded random order."""
    if not isinstance(train, list) or not all(isinstance(ex, dict) and ANSWER in ex for ex in train):
        raise _checks.ArgumentTypeError("train must be a list of examples (dicts with an 'answer')")
    labels = _checks.strings("labels", labels)
    k = _checks.positive_int("k", k)
    if k % len(labels):
        raise ValueError(f"k = {k} demonstrations cannot be split evenly among {len(labels)} labels")
    rng = random.Random(seed)
    demos = []
    for label in labels:
        pool = [ex for ex in train if ex[ANSWER] == label]
        if len(pool) < k // len(labels):
            raise ValueError(f"train has only {len(pool)} examples of {label!r}, need {k // len(labels)}")
        demos += rng.sample(pool, k // len(labels))
    rng.shuffle(demos)
    return demos


def label_init_ids(tokenizer, labels: list[str], n_virtual: int, seed: int, vocab_size: int) -> list[int]:
    """Class-label initialisation (Lester et al. 2021): the first virtual tokens start as the tokens of
    the labels (with their leading space), the rest as tokens drawn with ``seed`` from the vocabulary."""
    _checks.tokenizer("tokenizer", tokenizer)
    labels = _checks.strings("labels", labels)
    n_virtual = _checks.positive_int("n_virtual", n_virtual)
    ids = [i for c in labels for i in tokenizer(" " + c, add_special_tokens=False)["input_ids"]][:n_virtual]
    g = torch.Generator().manual_seed(_checks.non_negative_int("seed", seed))
    rest = torch.randint(0, vocab_size, (n_virtual - len(ids),), generator=g).tolist()
    return ids + rest


def run_task_one(model, tokenizer, run: dict, data: dict, record: dict = RECORD,
                 settings: dict = TASKS_RECORD) -> dict:
    """One run of the second comparison: ``run`` has ``task``, ``method``, ``seed`` and, for a trained
    method, ``lr`` (and ``steps``, else :data:`RECORD`'s). Methods: ``"zero-shot"``, ``"bias"`` (:func:`fit_label_bias` on the training
    words' zero-shot log-odds), ``"few-shot (balanced)"`` (:func:`balanced_demos`) and
    :data:`TRAINED`, with ``settings["n_virtual"]`` virtual tokens and :data:`RECORD`'s steps and
    batch. The row holds ``correct_items`` (1/0 per test item, in order) for paired tests."""
    import time

    _checks.model("model", model)
    if not isinstance(run, dict):
        raise _checks.ArgumentTypeError(f"run must be a dict with task, method and seed, got "
                                        f"{type(run).__name__}")
    if not {"task", "method", "seed"} <= set(run):
        raise ValueError(f"run must be a dict with task, method and seed, got {run!r}")
    plain = PromptTemplate(record["template"], truncate_field="input")
    tuned = PromptTemplate(record["virtual_slot"], truncate_field="input")
    labels, method, seed, n = data["labels"], run["method"], run["seed"], settings["n_virtual"]
    t0, row, extra = time.perf_counter(), dict(run), {}
    no_grad = torch.no_grad()
    truth = torch.tensor([labels.index(ex[ANSWER]) for ex in data["test"]])
    if method in ("zero-shot", "bias"):
        scores = candidate_scores(model, tokenizer, plain, data["test"], labels)
        pred, trained = scores.argmax(1), 0
        if method == "bias":
            with no_grad:
                train_s = candidate_scores(model, tokenizer, plain, data["train"], labels)
            first = [ex[ANSWER] == labels[0] for ex in data["train"]]
            b = fit_label_bias(train_s[:, 0] - train_s[:, 1], first)
            pred, trained, extra = (scores[:, 0] - scores[:, 1] + b <= 0).long(), 1, {"offset": round(b, 4)}
    elif method == "few-shot (balanced)":
        from .icl import calibrated_predictions

        template = few_shot_template(plain, balanced_demos(data["train"], labels, settings["shots"], seed))
        inputs = list(settings["content_free"])
        with no_grad:
            scores = candidate_scores(model, tokenizer, template, data["test"], labels)
            free = candidate_scores(model, tokenizer, template, [{"input": x, ANSWER: labels[0]} for x in inputs],
                                    labels)
        pred, trained = scores.argmax(1), 0
        free_of = {x: [round(float(v), 4) for v in f] for x, f in zip(inputs, free)}
        # contextual calibration (Zhao et al. 2021, chapter 4): each input alone and their average
        cal = {m: torch.tensor(p) for m, p in calibrated_predictions(scores, free_of).items()}
        extra = {"scores": [[round(float(v), 4) for v in s] for s in scores], "content_free": free_of,
                 "correct_items_calibrated": (cal["average"] == truth).long().tolist(),
                 "first_label_share_calibrated": float((cal["average"] == 0).float().mean()),
                 "correct_items_by_input": {x: (cal[x] == truth).long().tolist() for x in inputs}}
    elif method in TRAINED:
        steps = run.get("steps", record["steps"])
        steps = _checks.positive_int("run['steps']", steps)
        cfg = TrainConfig(steps=steps, batch_size=record["batch_size"], lr=run["lr"],
                          warmup_steps=record["warmup_steps"], eval_every=steps, eval_batches=3,
                          weight_decay=0.0, seed=seed)
        saved = None
        if method == "fine-tuning (last layer)":
            saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
            trained, module, template = unfreeze_last_layers(model, record["ft_layers"]), model, plain
        else:
            encoder, init = None, None
            if method == "p-tuning (mlp)":
                torch.manual_seed(seed)
                encoder = PromptEncoder(n, model.get_input_embeddings().weight.shape[1], "mlp",
                                        hidden=record["encoder_hidden"])
            elif method == "prompt-tuning (label init)":
                init = label_init_ids(tokenizer, labels, n, seed, model.get_input_embeddings().num_embeddings)
            module = SoftPrompt(model, n, init_ids=init, seed=seed, encoder=encoder)
            trained, template = module.trainable_parameters(), tuned
        log = train_answers(module, tokenizer, template, data["train"], data["val"], cfg,
                            max_length=record["max_length"])
        extra = {"val_loss": log.final_val_loss}
        if isinstance(module, SoftPrompt):
            module.collapse()
        with no_grad:
            pred = candidate_scores(module, tokenizer, template, data["test"], labels).argmax(1)
        if saved is not None:
            model.load_state_dict(saved)
        _freeze(model)
    else:
        raise ValueError(f"method must be zero-shot, bias, few-shot (balanced) or one of {TRAINED}, got {method!r}")
    correct = (pred == truth).long().tolist()
    row.update(extra, trainable=int(trained), correct=sum(correct), accuracy=sum(correct) / len(correct),
               first_label_share=float((pred == 0).float().mean()), correct_items=correct,
               seconds=round(time.perf_counter() - t0, 1))
    return row
