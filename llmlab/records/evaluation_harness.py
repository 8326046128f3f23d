"""lm-evaluation-harness on the frozen benchmark, recorded for chapter 11: ``llmlab/results/evaluation_harness.json``.

A cross-check of :mod:`llmlab.evaluation`'s multiple-choice scorer against the tool it
explains, lm-evaluation-harness (Gao et al. 2021, EleutherAI). The harness is not a
dependency of the book: it runs in an environment of its own, named by ``--python``
(made with ``python3 -m venv ENV && ENV/bin/pip install torch==2.13.0 "lm_eval[hf]==0.4.13"
transformers==5.24.0 tokenizers==0.23.3``: the ``hf`` extra brings ``accelerate``, which the
harness's Hugging Face model needs).

:func:`run` writes a local harness task folder: the 320 frozen items of
``load_benchmark("mc")`` as a jsonl dataset and one YAML task per prompt format of
:data:`llmlab.evaluation.FORMATS`. Their ``doc_to_text`` (a Jinja template built from the
question and the choices), ``doc_to_choice`` and ``target_delimiter`` (``" "``) give the
harness the same context and continuations as :func:`llmlab.evaluation.mc_prompt`; the
assembly checks every logged request against ``mc_prompt`` and refuses a difference. The
``"chat"`` task is the letter task run with the harness's ``--apply_chat_template`` flag
(lm_eval 0.4.13 supports it for local tasks): the prompt goes into the model's chat
template as one user message and the target delimiter is dropped, as ``mc_prompt``'s
``"chat"`` format does. The harness runs as a subprocess on the real model's converted
float32 folder (:func:`llmlab.zoo.prepare`), on the CPU, batch size 1, one thread,
offline, with ``--log_samples``, one run per format; the same items are scored with
:func:`llmlab.evaluation.choice_scores` in the book's environment. Each of these six parts
(:data:`STEPS`) is written to a work folder as it finishes, so an interrupted run resumes
and the parts can run side by side (``--step``). The record holds, per item and format,
the harness's log-likelihood and ``is_greedy`` of every choice, its ``acc`` and
``acc_norm``, and llmlab's log-likelihoods; per format the accuracies the harness reported.
:func:`summary` turns it into one row per format (accuracies both ways, the largest
log-likelihood difference and its item).

``python -m llmlab.records.evaluation_harness --python ENV/bin/python`` makes it on all 320
items: about 180,000 tokens through the model (the harness's and llmlab's passes); the
shipped record took about 16 minutes on a shared 2-core machine, the harness and llmlab side
by side (the seconds of each part are in the record). ``--limit N`` keeps the first N
items of each subject; the record says how many items it holds (``n_items``), and
:func:`load` reads it back.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from .. import _checks, zoo
from ..evaluation import FORMATS, choice_scores, load_benchmark, mc_prompt
from ..provenance import stamp
from . import read_json, result_path, write_json

NAME = "evaluation_harness.json"
COMMAND = "python -m llmlab.records.evaluation_harness --python PATH"
CODE = ("llmlab/evaluation.py", "llmlab/corpus/evalbench_mc.json", "llmlab/records/evaluation_harness.py")
TASK_PREFIX = "evalbench_mc_"
#: what is recorded: the benchmark, the formats, the model and how the harness runs it
PLAN = {"benchmark": "mc", "formats": list(FORMATS), "model": zoo.REAL_MODEL, "dtype": "float32",
        "device": "cpu", "batch_size": 1, "num_fewshot": 0, "threads": 1}
#: the harness version the shipped record was made with
HARNESS_VERSION = "0.4.13"

_LETTER_TEXT = ("{{ question.strip() }}\n{% for c in choices %}{{ 'ABCDEFGHIJ'[loop.index0] }}. {{ c }}\n"
                "{% endfor %}Answer:")
_TEXT_TEXT = "Question: {{ question.strip() }}\nAnswer:"
_FIELDS = ("id", "subject", "difficulty", "question", "choices", "answer")


def _task_yaml(task: str, data: Path, text: str, choices) -> str:
    """One harness task in YAML (every string written as a JSON string, which YAML reads as is)."""
    q = json.dumps
    lines = [f"task: {task}", "dataset_path: json", "dataset_kwargs:", "  data_files:",
             f"    test: {q(str(data))}", "test_split: test", "output_type: multiple_choice",
             f"doc_to_text: {q(text)}", f"doc_to_choice: {q(choices)}", "doc_to_target: answer",
             f"target_delimiter: {q(' ')}", "num_fewshot: 0", "metric_list:"]
    for metric in ("acc", "acc_norm"):
        lines += [f"  - metric: {metric}", "    aggregation: mean", "    higher_is_better: true"]
    return "\n".join(lines + ["metadata:", "  version: 1.0"]) + "\n"


def write_tasks(folder, items: list[dict]) -> dict[str, str]:
    """Write the harness task folder for ``items`` into ``folder``: the dataset and one YAML per format.

    Returns ``{format: harness task name}``. The ``"chat"`` task is the letter task under
    its own name (the chat template comes from the harness's ``--apply_chat_template``).
    """
    if not isinstance(folder, (str, os.PathLike)):
        raise _checks.ArgumentTypeError(f"folder must be a directory path, got {type(folder).__name__}")
    if not isinstance(items, list) or not items:
        raise (ValueError if isinstance(items, list) else _checks.ArgumentTypeError)(
            "items must be a non-empty list of multiple-choice items (load_benchmark('mc'))")
    for n, item in enumerate(items):
        mc_prompt(item, "text")  # refuses a malformed item before anything is written
        if len(item["choices"]) != len(items[0]["choices"]):
            raise ValueError(f"items[{n}] has {len(item['choices'])} choices and items[0] has "
                             f"{len(items[0]['choices'])}: the letter task needs one number of choices")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "evalbench_mc.jsonl"
    data.write_text("".join(json.dumps({k: item[k] for k in _FIELDS if k in item}) + "\n" for item in items),
                    encoding="utf-8")
    letters = list("ABCDEFGHIJ"[:len(items[0]["choices"])])
    tasks = {}
    for fmt in FORMATS:
        task = TASK_PREFIX + fmt
        text, choices = (_TEXT_TEXT, "choices") if fmt == "text" else (_LETTER_TEXT, letters)
        (folder / f"{task}.yaml").write_text(_task_yaml(task, data, text, choices), encoding="utf-8")
        tasks[fmt] = task
    return tasks


def _environment(python: str) -> dict:
    code = ("import json, importlib.metadata as m; print(json.dumps({p: m.version(p) for p in "
            "('lm_eval', 'torch', 'transformers', 'tokenizers', 'datasets', 'accelerate')}))")
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300)
    if done.returncode:
        raise RuntimeError(f"{python} could not report its lm_eval/torch/transformers versions:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _harness_command(python: str, folder: Path, tasks: list[str], output: Path, chat: bool) -> list[str]:
    cmd = [python, "-m", "lm_eval", "--model", "hf", "--model_args",
           f"pretrained={zoo.prepare(zoo.REAL_MODEL, progress=False)},dtype=float32",
           "--tasks", ",".join(tasks), "--include_path", str(folder), "--device", "cpu", "--batch_size", "1",
           "--log_samples", "--output_path", str(output)]
    if chat:
        cmd.append("--apply_chat_template")
    return cmd


def _shown(cmd: list[str], tmp: Path) -> str:
    """The harness command line as recorded, the work folder written ``$TMP``."""
    return " ".join(part.replace(str(tmp), "$TMP") for part in cmd)


def _read_samples(output: Path, task: str) -> list[dict]:
    files = sorted(output.rglob(f"samples_{task}_*.jsonl"))
    if not files:
        raise RuntimeError(f"the harness wrote no samples for {task} under {output}")
    rows = [json.loads(line) for line in files[-1].read_text(encoding="utf-8").splitlines() if line.strip()]
    return sorted(rows, key=lambda r: r["doc_id"])


def _read_results(output: Path) -> dict:
    files = sorted(output.rglob("results_*.json"))
    if not files:
        raise RuntimeError(f"the harness wrote no results file under {output}")
    return json.loads(files[-1].read_text(encoding="utf-8"))["results"]


def _loglikelihoods(sample: dict) -> tuple[list[float], list[bool]]:
    """The harness's (log-likelihood, is_greedy) per choice, from a logged sample (numbers or their text)."""
    pairs = sample["filtered_resps"]
    pairs = [p[0] if isinstance(p, list) and p and isinstance(p[0], list) else p for p in pairs]
    return [float(p[0]) for p in pairs], [str(p[1]) == "True" for p in pairs]


def _requests(sample: dict) -> list[tuple[str, str]]:
    """The (context, continuation) pairs the harness scored for one item, in choice order."""
    args = sample["arguments"]
    if isinstance(args, dict):  # {"gen_args_0": {"arg_0": context, "arg_1": continuation}, ...}
        args = [args[k] for k in sorted(args, key=lambda k: int(k.rsplit("_", 1)[1]))]
        return [(a["arg_0"], a["arg_1"]) for a in args]
    return [(a[0], a[1]) for a in args]


def _run_harness(cmd: list[str], env: dict) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"the harness failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return time.perf_counter() - started


def _argmax(values: list[float]) -> int:
    return max(range(len(values)), key=lambda i: (values[i], -i))


#: the parts of a run, each written to the work folder as it finishes (a rerun skips those done)
STEPS = tuple(f"{who}-{fmt}" for who in ("harness", "ours") for fmt in FORMATS)
WORK = Path(tempfile.gettempdir()) / "llmlab_evaluation_harness"


def _check_python(python) -> str:
    if not isinstance(python, (str, os.PathLike)):
        raise _checks.ArgumentTypeError(f"python must be the path of the harness environment's interpreter, "
                                        f"got {type(python).__name__}")
    if not Path(python).is_file():
        raise ValueError(f"python must be an existing interpreter with lm_eval installed, got {str(python)!r}")
    return str(python)


def _work(work, limit) -> tuple[Path, list[dict], dict[str, str]]:
    if work is not None and not isinstance(work, (str, os.PathLike)):
        raise _checks.ArgumentTypeError(f"work must be a folder path or None (the default {WORK}), "
                                        f"got {type(work).__name__}")
    items = load_benchmark("mc")
    if limit is not None:  # the first `limit` items of each subject, in file order
        limit = _checks.integer("limit", limit, 1)
        seen: dict[str, int] = {}
        items = [it for it in items if (seen.__setitem__(it["subject"], seen.get(it["subject"], 0) + 1)
                                        or seen[it["subject"]] <= limit)]
    folder = Path(work if work is not None else WORK) / f"n{len(items)}"
    tasks = write_tasks(folder / "tasks", items)
    return folder, items, tasks


def run_part(step: str, python: str | None = None, limit: int | None = None, work=None, model=None,
             tokenizer=None) -> Path:
    """Run one part of :data:`STEPS` into the work folder (default :data:`WORK`) unless it is done; return it.

    ``"harness-<format>"`` runs the harness (interpreter ``python``) on one format and keeps
    its logged samples; ``"ours-<format>"`` scores the same items with
    :func:`llmlab.evaluation.choice_scores` in this environment. Parts are independent, so
    several can run at once in separate processes; :func:`run` assembles them.
    """
    _checks.choice("step", step, STEPS)
    who, fmt = step.split("-", 1)
    if who == "harness":
        python = _check_python(python)
    folder, items, tasks = _work(work, limit)
    if who == "harness":
        output = folder / f"harness_{fmt}"
        if list(output.rglob("results_*.json")):
            return output
        env = {**os.environ, "OMP_NUM_THREADS": str(PLAN["threads"]), "HF_HUB_OFFLINE": "1",
               "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(folder / "hf"),
               "TOKENIZERS_PARALLELISM": "false"}
        cmd = _harness_command(python, folder / "tasks", [tasks[fmt]], output, fmt == "chat")
        print("running:", _shown(cmd, folder), flush=True)
        seconds = _run_harness(cmd, env)
        (output / "run.json").write_text(json.dumps({"command": _shown(cmd, folder), "seconds": round(seconds, 1)}))
        return output
    path = folder / f"ours_{fmt}.json"
    if path.exists():
        return path
    import torch

    if model is None:
        model, tokenizer = zoo.load(zoo.REAL_MODEL, device="cpu")
    torch.set_num_threads(PLAN["threads"])
    started = time.perf_counter()
    rows = []
    for n, item in enumerate(items):
        context, choices, delimiter = mc_prompt(item, fmt, tokenizer)
        scores = choice_scores(model, tokenizer, context, choices, delimiter=delimiter)
        rows.append({"id": item["id"], "context": context, "choices": choices, "delimiter": delimiter,
                     "logprobs": [s.logprob for s in scores], "is_greedy": [s.is_greedy for s in scores],
                     "n_tokens": [s.n_tokens for s in scores]})
        if (n + 1) % 40 == 0:
            print(f"llmlab, {fmt}: {n + 1} items, {time.perf_counter() - started:.0f} s", flush=True)
    tmp = path.with_suffix(".part")
    tmp.write_text(json.dumps({"seconds": round(time.perf_counter() - started, 1), "rows": rows}))
    tmp.replace(path)
    return path


def run(out=None, python: str | None = None, limit: int | None = None, work=None, model=None,
        tokenizer=None) -> dict:
    """Run the harness (interpreter ``python``) and our scorer on the frozen benchmark, all three formats.

    The parts of :data:`STEPS` not yet in the work folder run first (the harness in a
    subprocess while this process scores with llmlab); then the record is assembled, every
    logged harness request checked against :func:`llmlab.evaluation.mc_prompt`. ``limit``
    keeps the first ``limit`` items of each of the eight subjects (a stratified subset;
    ``None``, all 320 items). Writes ``out`` (default: the shipped file; ``False`` writes nothing),
    stamped with :func:`llmlab.provenance.stamp`, and returns the record.
    """
    if out is not False:
        result_path(out, NAME)  # a bad path is refused before the work, not after
    python = _check_python(python)
    folder, items, tasks = _work(work, limit)
    versions = _environment(python)
    started = time.perf_counter()
    failed: list[BaseException] = []

    def harness_parts() -> None:
        try:
            for fmt in FORMATS:
                run_part(f"harness-{fmt}", python, limit, work)
        except Exception as error:  # re-raised in the main thread below
            failed.append(error)

    thread = threading.Thread(target=harness_parts)
    thread.start()
    try:
        for fmt in FORMATS:
            run_part(f"ours-{fmt}", python, limit, work, model, tokenizer)
    finally:
        thread.join()
    if failed:
        raise failed[0]

    rows, reported, commands, seconds = [], {}, [], {}
    tokenizer = tokenizer if tokenizer is not None else _real_tokenizer()
    for fmt in FORMATS:
        task, output = tasks[fmt], folder / f"harness_{fmt}"
        results = _read_results(output)
        reported[fmt] = {m: results[task][f"{m},none"] for m in ("acc", "acc_norm")}
        meta = json.loads((output / "run.json").read_text())
        commands.append(meta["command"])
        ours = json.loads((folder / f"ours_{fmt}.json").read_text())
        seconds[f"harness-{fmt}"], seconds[f"ours-{fmt}"] = meta["seconds"], ours["seconds"]
        samples = _read_samples(output, task)
        if len(samples) != len(items) or len(ours["rows"]) != len(items):
            raise RuntimeError(f"{fmt}: {len(samples)} harness samples and {len(ours['rows'])} llmlab rows, "
                               f"expected {len(items)} each")
        for item, sample, mine in zip(items, samples, ours["rows"]):
            context, choices, delimiter = mc_prompt(item, fmt, tokenizer)
            asked = _requests(sample)
            expected = [(context, delimiter + c) for c in choices]
            if asked != expected or mine["id"] != item["id"] or (mine["context"], mine["choices"]) != (context, choices):
                raise RuntimeError(f"{task}, item {item['id']}: the harness scored {asked!r:.300}, but mc_prompt "
                                   f"gives {expected!r:.300}")
            harness_ll, greedy = _loglikelihoods(sample)
            rows.append({"id": item["id"], "subject": item["subject"], "format": fmt, "answer": item["answer"],
                         "n_chars": [len(c) for c in choices], "harness": harness_ll, "harness_greedy": greedy,
                         "harness_acc": float(sample["acc"]), "harness_acc_norm": float(sample["acc_norm"]),
                         "ours": mine["logprobs"], "ours_greedy": mine["is_greedy"], "n_tokens": mine["n_tokens"]})
    record = {"what": "chapter 11: lm-evaluation-harness and llmlab.evaluation on the frozen benchmark",
              **stamp(COMMAND, *CODE), "plan": PLAN, "environment": versions, "harness_commands": commands,
              "seconds_per_part": seconds, "n_items": len(items), "reported": reported, "rows": rows}
    record["seconds_assembling"] = round(time.perf_counter() - started, 1)
    if out is not False:
        write_json(record, out, NAME)
    return record


def _real_tokenizer():
    """The real model's tokenizer (with its chat template), as :func:`llmlab.zoo.load` reads it."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(zoo.prepare(zoo.REAL_MODEL, progress=False), local_files_only=True)


def load(path=None) -> dict:
    """The recorded cross-check at ``path`` (default: the shipped file) as a dict, its machine a dict."""
    return read_json(path, NAME, COMMAND)


def accuracy(rows: list[dict], key: str = "harness", norm: bool = False) -> float:
    """The accuracy (0 to 1) of a record's ``rows`` from their log-likelihoods under ``key``.

    ``key`` is ``"harness"`` or ``"ours"``; ``norm=True`` divides each choice's
    log-likelihood by its length in characters first (the harness's ``acc_norm``). Ties go
    to the first choice, as ``np.argmax`` does in the harness.
    """
    _checks.choice("key", key, ("harness", "ours"))
    if not isinstance(norm, bool):
        raise _checks.ArgumentTypeError(f"norm must be a bool, got {type(norm).__name__}")
    if not isinstance(rows, list) or not rows:
        raise (ValueError if isinstance(rows, list) else _checks.ArgumentTypeError)(
            "rows must be a non-empty list of the record's rows (load()['rows'])")
    right = 0
    for row in rows:
        values = row[key]
        if norm:
            values = [v / n for v, n in zip(values, row["n_chars"])]
        right += _argmax(values) == row["answer"]
    return right / len(rows)


def summary(record: dict) -> list[dict]:
    """One row per format: the harness's reported ``acc``/``acc_norm``, the same from its per-item
    log-likelihoods and from ours, and the largest absolute log-likelihood difference (nats) and its item."""
    if not isinstance(record, dict) or "rows" not in record:
        raise _checks.ArgumentTypeError(f"record must be the dict load() returns, got {type(record).__name__}")
    out = []
    for fmt in record["plan"]["formats"]:
        rows = [r for r in record["rows"] if r["format"] == fmt]
        worst = max(((abs(a - b), r["id"]) for r in rows for a, b in zip(r["harness"], r["ours"])),
                    key=lambda t: t[0])
        out.append({"format": fmt, "n": len(rows),
                    "acc_reported": record["reported"][fmt]["acc"],
                    "acc_norm_reported": record["reported"][fmt]["acc_norm"],
                    "acc_harness": accuracy(rows), "acc_norm_harness": accuracy(rows, norm=True),
                    "acc_ours": accuracy(rows, "ours"), "acc_norm_ours": accuracy(rows, "ours", norm=True),
                    "max_abs_diff": worst[0], "max_abs_diff_item": worst[1],
                    "same_greedy": all(r["harness_greedy"] == r["ours_greedy"] for r in rows)})
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m llmlab.records.evaluation_harness --python PATH [--out PATH] [--limit N] [--work DIR]
    [--step STEP]``: the cross-check (``--step`` runs one part only, for running parts side by side)."""
    import argparse

    parser = argparse.ArgumentParser(prog=COMMAND, description=main.__doc__)
    parser.add_argument("--python", required=True, help="the interpreter of the environment that has lm_eval")
    parser.add_argument("--out", default=None)
    parser.add_argument("--limit", type=int, default=None, help="the first N items of each subject (default: all)")
    parser.add_argument("--work", default=None, help=f"where the parts are kept (default {WORK})")
    parser.add_argument("--step", choices=STEPS, default=None, help="run this part only")
    args = parser.parse_args(argv)
    if args.step:
        print("done:", run_part(args.step, args.python, args.limit, args.work))
        return 0
    record = run(args.out, python=args.python, limit=args.limit, work=args.work)
    for row in summary(record):
        print({k: (round(v, 6) if isinstance(v, float) and math.isfinite(v) else v) for k, v in row.items()})
    print(f"{len(record['rows'])} rows; parts took {record['seconds_per_part']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
