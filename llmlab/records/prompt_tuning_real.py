"""Prompt tuning and p-tuning on the frozen real model, recorded for chapter 10:
``llmlab/results/prompt_tuning_real.json``.

One row per run of :func:`llmlab.prompt_tuning_real.record_plan` with the settings of
:data:`llmlab.prompt_tuning_real.RECORD` (zero-shot, four-shot, prompt tuning, p-tuning and
last-layer fine-tuning over five seeds), each run by :func:`llmlab.prompt_tuning_real.run_one`;
``summary`` per setting by :func:`llmlab.prompt_tuning_real.summarize`.
``python -m llmlab.records.prompt_tuning_real`` makes it (the file is rewritten after every
run); :func:`load` refuses a record made with other settings.
"""

from __future__ import annotations

import json
import time

from .. import _checks, zoo
from ..prompt_tuning import _freeze
from ..prompt_tuning_real import RECORD, _check_record, real_task, record_plan, run_one, summarize
from ..provenance import stamp
from . import read_json, result_path, write_json

NAME = "prompt_tuning_real.json"
COMMAND = "python -m llmlab.records.prompt_tuning_real"
CODE = ("llmlab/prompt_template.py", "llmlab/prompt_tuning.py", "llmlab/prompt_tuning_real.py", "llmlab/corpus/icl_eval.json",
        "llmlab/records/prompt_tuning_real.py")
#: the settings of the grid (steps, batch, learning rates, seeds, virtual tokens)
SETTINGS = RECORD


def run(out=None, record: dict = RECORD, plan: list[dict] | None = None, model=None, tokenizer=None,
        progress: bool = True) -> dict:
    """Run :func:`llmlab.prompt_tuning_real.record_plan` on the frozen real model and write the record to
    ``out`` (default: the shipped file; ``False`` writes nothing), rewritten after every run so a
    stopped grid keeps its rows; stamped with :func:`llmlab.provenance.stamp`. Returns the record."""
    from tqdm.auto import tqdm

    _check_record(record)
    if out is not False:
        result_path(out, NAME)  # a bad path is refused before the work, not after
    if model is None:
        model, tokenizer = zoo.load(zoo.REAL_MODEL)
    _checks.model("model", model)
    _freeze(model)
    plan = record_plan(record) if plan is None else plan
    data = real_task(record)
    result = {"what": "chapter 10: prompt tuning and p-tuning on the frozen real model", "model": zoo.REAL_MODEL,
              "settings": record, "plan": plan, "data": {"source": data["source"], "license": data["license"]},
              **stamp(COMMAND, *CODE), "rows": []}
    started = time.perf_counter()
    bar = tqdm(plan, desc="prompt-tuning grid", disable=not progress)
    for one in bar:
        row = run_one(model, tokenizer, one, record, data)
        result["rows"].append(row)
        bar.set_postfix_str(f"{row['method']} n={row['n_virtual']} seed={row['seed']}: {row['accuracy']:.2f}")
        result["seconds"] = round(time.perf_counter() - started, 1)
        result["summary"] = summarize(result["rows"])
        if out is not False:
            write_json(result, out, NAME)
    return result


def load(path=None) -> dict:
    """The recorded grid at ``path`` (default: the shipped file) as a dict, its machine a dict;
    refuses a record made with other settings than :data:`llmlab.prompt_tuning_real.RECORD`."""
    result = read_json(path, NAME, COMMAND)
    if result.get("settings") != json.loads(json.dumps(RECORD)):
        raise ValueError(f"{path or NAME} was made with other settings than llmlab.prompt_tuning_real.RECORD; "
                         f"run `{COMMAND}` again")
    return result


def main(argv: list[str] | None = None) -> int:
    """``python -m llmlab.records.prompt_tuning_real [--out PATH]``: the chapter 10 grid on the real model."""
    import argparse

    parser = argparse.ArgumentParser(prog=COMMAND, description=main.__doc__)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    result = run(args.out)
    print(f"{len(result['rows'])} runs in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
