"""Baselines and a task the real model cannot already solve, recorded for chapter 10:
``llmlab/results/prompt_tuning_tasks.json``.

Two tasks on the frozen real model (:func:`llmlab.prompt_tuning_real.task_data`): the word
sentiment of chapter 4, and the same words with the arbitrary labels "foo"/"bar". Per task:
zero-shot, the one-offset bias baseline, four balanced demonstrations, and the trained
methods of :data:`llmlab.prompt_tuning_real.TASKS_RECORD` with four virtual tokens, each
row holding its right/wrong answer per test word for paired tests (and, for few-shot, the
label scores and the content-free scores its calibration used). On the arbitrary task every
trained method runs every rate of its grid at every seed, and its reported runs are those at
the rate with the lowest validation loss averaged over the seeds (:func:`chosen_lr`); the
prompt-tuning methods then train again at that rate for the longer schedule of
``TASKS_RECORD["long"]``. On the sentiment task the methods run once (seed 0) at the rates
of :data:`llmlab.prompt_tuning_real.RECORD`.
``python -m llmlab.records.prompt_tuning_tasks`` makes it; the file is rewritten after every
run, and a stopped run resumes where it stopped.
"""

from __future__ import annotations

import json

from .. import _checks, zoo
from ..prompt_tuning import _freeze
from ..prompt_tuning_real import RECORD, TASKS_RECORD, run_task_one, task_data
from ..provenance import stamp
from . import read_json, result_path, write_json

NAME = "prompt_tuning_tasks.json"
COMMAND = "python -m llmlab.records.prompt_tuning_tasks"
CODE = ("llmlab/prompt_template.py", "llmlab/prompt_tuning.py", "llmlab/prompt_tuning_real.py",
        "llmlab/corpus/icl_eval.json", "llmlab/records/prompt_tuning_tasks.py")
BASELINES = ("zero-shot", "bias", "few-shot (balanced)")


def _check_settings(settings) -> dict:
    if not isinstance(settings, dict):
        raise _checks.ArgumentTypeError(f"settings must be a dict like llmlab.prompt_tuning_real.TASKS_RECORD, "
                                        f"got {type(settings).__name__}")
    missing = sorted(set(TASKS_RECORD) - set(settings))
    if missing:
        raise ValueError(f"settings is missing {missing} (see llmlab.prompt_tuning_real.TASKS_RECORD)")
    return settings


def baseline_plan(settings: dict = TASKS_RECORD) -> list[dict]:
    """The untrained runs: per task zero-shot and bias once, balanced few-shot per seed."""
    _check_settings(settings)
    plan = []
    for task in settings["tasks"]:
        plan += [{"task": task, "method": "zero-shot", "seed": None}, {"task": task, "method": "bias", "seed": None}]
        plan += [{"task": task, "method": "few-shot (balanced)", "seed": s} for s in settings["seeds"]]
    return plan


def probe_losses(rows: list[dict], task: str, method: str, settings: dict = TASKS_RECORD) -> dict:
    """{rate: [validation loss per seed]} of ``method``'s runs on ``task`` at the recorded steps,
    over the seeds of ``settings`` that have run at every rate of the grid, in seed order."""
    _check_settings(settings)
    if not isinstance(rows, list):
        raise _checks.ArgumentTypeError(f"rows must be a list of rows of the record, got {type(rows).__name__}")
    if method not in settings["lr_grid"]:
        raise ValueError(f"method must be one of {sorted(settings['lr_grid'])}, got {method!r}")
    losses = {(r["lr"], r["seed"]): r["val_loss"] for r in rows
              if r["task"] == task and r["method"] == method and "steps" not in r and "val_loss" in r}
    grid = settings["lr_grid"][method]
    seeds = [s for s in settings["seeds"] if all((lr, s) in losses for lr in grid)]
    return {lr: [losses[lr, s] for s in seeds] for lr in grid} if seeds else {}


def chosen_lr(rows: list[dict], task: str, method: str, settings: dict = TASKS_RECORD) -> float | None:
    """The rate of ``method``'s grid with the lowest validation loss averaged over the seeds that
    have run at every rate (:func:`probe_losses`); None until one seed has run them all."""
    probes = probe_losses(rows, task, method, settings)
    if not probes:
        return None
    return min(probes, key=lambda lr: sum(probes[lr]) / len(probes[lr]))


def _trained_plan(rows: list[dict], settings: dict) -> list[dict]:
    """The trained runs in the order they run: the sentiment task at seed 0, the arbitrary task at
    every seed and every rate, then the long runs at the rates the probes chose once every seed
    has run every rate (``lr`` None until then)."""
    s0 = settings["seeds"][0]
    plan = [{"task": "sentiment", "method": m, "seed": s0, "lr": settings["lr_grid"][m][0]}
            for m in settings["sentiment_methods"]]
    plan += [{"task": "arbitrary", "method": m, "seed": seed, "lr": lr} for seed in settings["seeds"]
             for m in settings["arbitrary_methods"] for lr in settings["lr_grid"][m]]
    long = settings["long"]
    for m in long["methods"]:
        seeds_done = next(iter(probe_losses(rows, "arbitrary", m, settings).values()), [])
        lr = chosen_lr(rows, "arbitrary", m, settings) if len(seeds_done) == len(settings["seeds"]) else None
        plan += [{"task": "arbitrary", "method": m, "seed": seed, "lr": lr, "steps": long["steps"]}
                 for seed in settings["seeds"]]
    return plan


def _key(r: dict) -> tuple:
    return r["task"], r["method"], r["seed"], r.get("lr"), r.get("steps")


def run(out=None, settings: dict = TASKS_RECORD, model=None, tokenizer=None, resume: bool = True,
        progress: bool = True, baselines: bool = True, trained_tasks: list[str] | None = None,
        merge: tuple = (), reverse: bool = False) -> dict:
    """Run every baseline and trained run on the frozen real model, writing the record to ``out``
    (default: the shipped file) after every run, stamped with :func:`llmlab.provenance.stamp`;
    with ``resume`` the rows already in ``out`` are kept and not run again. ``baselines=False``
    and ``trained_tasks`` (a list of task names) run a part only, so that two processes can
    share the work; ``merge`` adds the rows of other record files made that way first, and
    ``reverse`` runs the trained plan from its end.
    Returns the record."""
    _check_settings(settings)
    if trained_tasks is not None and not set(trained_tasks) <= set(settings["tasks"]):
        raise ValueError(f"trained_tasks must be a list of {settings['tasks']}, got {trained_tasks!r}")
    path = result_path(out, NAME)
    if model is None:
        model, tokenizer = zoo.load(zoo.REAL_MODEL)
    _freeze(model)
    rows, seconds = [], 0.0
    if resume and path.exists():
        old = json.loads(path.read_text())
        if old.get("record") == json.loads(json.dumps(RECORD)):  # keep the rows the settings still plan
            methods = {t: set(BASELINES) | set(settings[f"{t}_methods"]) for t in settings["tasks"]}
            rows = [{"code_version": old.get("code_version", "unknown"), **r} for r in old["rows"]
                    if r["task"] in methods and r["method"] in methods[r["task"]]
                    and (r["seed"] is None or r["seed"] in settings["seeds"])
                    and (r["method"] != "few-shot (balanced)" or "content_free" in r)]
            seconds = old.get("seconds", 0.0)
    for other in merge:
        have = {_key(r) for r in rows}
        part = json.loads(result_path(other, NAME).read_text())
        rows += [{"code_version": part.get("code_version", "unknown"), **r} for r in part["rows"]
                 if _key(r) not in have]
    data = {t: task_data(t) for t in settings["tasks"]}
    result = {"what": "chapter 10: baselines and an arbitrary-label task, prompt tuning on the frozen real model",
              "model": zoo.REAL_MODEL, "settings": settings, "record": RECORD,
              "data": {"source": data["sentiment"]["source"], "license": data["sentiment"]["license"]},
              **stamp(COMMAND, *CODE), "rows": rows, "seconds": seconds}
    done = {_key(r) for r in rows}
    for stage in ("baselines", "trained") if baselines else ("trained",):
        plan = baseline_plan(settings) if stage == "baselines" else None
        while True:  # the plan is read again after every run: the long runs need the probes' rates
            if stage == "trained":
                plan = [p for p in _trained_plan(rows, settings)
                        if trained_tasks is None or p["task"] in trained_tasks]
                plan = [p for p in plan if p.get("lr", 0) is not None]  # rates still to be chosen
                plan = plan[::-1] if reverse else plan
            todo = [p for p in plan if _key(p) not in done]
            if not todo:
                break
            one = todo[0]
            row = run_task_one(model, tokenizer, one, data[one["task"]], RECORD, settings)
            row["code_version"] = result["code_version"]  # each run keeps the code that made it
            rows.append(row)
            done.add(_key(row))
            if progress:
                print(f"{row['task']} {row['method']} seed={row['seed']} lr={row.get('lr')} "
                      f"steps={row.get('steps', RECORD['steps'])}: "
                      f"{row['accuracy']:.2f} in {row['seconds']:.0f} s", flush=True)
            result["seconds"] = round(sum(r["seconds"] for r in rows), 1)
            write_json(result, out, NAME)
    result["seconds"] = round(sum(r["seconds"] for r in rows), 1)  # the runs' own seconds, summed
    write_json(result, out, NAME)
    return result


def load(path=None) -> dict:
    """The record at ``path`` (default: the shipped file) as a dict; refuses one made with other settings
    than :data:`llmlab.prompt_tuning_real.TASKS_RECORD` and :data:`llmlab.prompt_tuning_real.RECORD`."""
    result = read_json(path, NAME, COMMAND)
    if (result.get("settings") != json.loads(json.dumps(TASKS_RECORD))
            or result.get("record") != json.loads(json.dumps(RECORD))):
        raise ValueError(f"{path or NAME} was made with other settings than llmlab.prompt_tuning_real.TASKS_RECORD; "
                         f"run `{COMMAND}` again")
    return result


def main(argv: list[str] | None = None) -> int:
    """``python -m llmlab.records.prompt_tuning_tasks [--out PATH] [--fresh]``: chapter 10's baselines and
    arbitrary-label task on the real model."""
    import argparse

    parser = argparse.ArgumentParser(prog=COMMAND, description=main.__doc__)
    parser.add_argument("--out", default=None)
    parser.add_argument("--fresh", action="store_true", help="start again instead of resuming")
    parser.add_argument("--no-baselines", action="store_true", help="run the trained methods only")
    parser.add_argument("--trained-tasks", nargs="*", default=None, help="train on these tasks only")
    parser.add_argument("--merge", nargs="*", default=(), help="add the rows of these record files")
    parser.add_argument("--reverse", action="store_true", help="run the trained plan from its end")
    args = parser.parse_args(argv)
    result = run(args.out, resume=not args.fresh, baselines=not args.no_baselines,
                 trained_tasks=args.trained_tasks, merge=tuple(args.merge), reverse=args.reverse)
    print(f"{len(result['rows'])} runs in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
