"""llmlab/records: one module per file in llmlab/results/, each with run, load and main; load reads
the shipped file whatever its stamp's age."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pandas as pd
import pytest

from llmlab import records

RECORDS = ["sampling_sweep", "sampling_playground", "lifecycle_completions", "icl_real", "icl_summaries", "icl_calibration", "icl_cot",
           "prompt_tuning_real", "quant_real", "training_peaks", "domain_adaptation", "scaling_sweep", "bench_cpu",
           "evaluation_contamination", "evaluation_formats", "evaluation_judge", "prompt_tuning_tasks",
           "evaluation_harness", "finetuning", "alignment", "serving", "augmentation", "domain_matched"]
RESULTS = Path(records.__file__).resolve().parent.parent / "results"


@pytest.mark.parametrize("name", RECORDS)
def test_every_record_has_run_load_and_main(name):
    module = importlib.import_module(f"llmlab.records.{name}")
    for fn in ("run", "load", "main"):
        assert callable(getattr(module, fn)), fn
    assert list(inspect.signature(module.run).parameters)[0] == "out"
    assert list(inspect.signature(module.load).parameters) == ["path"]
    # the command, plus the arguments it cannot run without (the harness needs its environment)
    assert module.COMMAND.split(" --")[0] == f"python -m llmlab.records.{name}"


@pytest.mark.parametrize("name", [n for n in RECORDS if n not in ("domain_adaptation", "scaling_sweep")])
def test_a_json_record_loads_as_a_dict_with_a_dict_machine(name):
    record = importlib.import_module(f"llmlab.records.{name}").load()
    assert isinstance(record, dict) and isinstance(record["machine"], dict)


def test_csv_records_load_as_dataframes():
    from llmlab.records import domain_adaptation, scaling_sweep

    assert isinstance(scaling_sweep.load(), pd.DataFrame)
    summary, curves = domain_adaptation.load()
    assert isinstance(summary, pd.DataFrame) and isinstance(curves, pd.DataFrame)


def test_every_results_file_has_its_record_module():
    names = {p.name for p in RESULTS.iterdir() if p.suffix in (".json", ".csv")}
    covered = set()
    for name in RECORDS + ["pipeline_bubble"]:
        module = importlib.import_module(f"llmlab.records.{name}")
        covered |= set(getattr(module, "NAMES", ())) | {getattr(module, "NAME", None), getattr(module, "PATH", Path()).name}
    # a file made by a repository tool (tools/*.py names it) is that tool's, not a record's
    tools = " ".join(t.read_text() for t in (RESULTS.parent.parent / "tools").glob("*.py"))
    assert {n for n in names - covered if n not in tools} == set()


def test_an_old_one_line_machine_becomes_a_dict():
    m = records.normalise_machine("Intel(R) Xeon(R) Processor; 2 cores; torch 2.13.0+cpu, 1 thread(s)")
    assert m == {"description": "Intel(R) Xeon(R) Processor; 2 cores; torch 2.13.0+cpu, 1 thread(s)",
                 "cpu": "Intel(R) Xeon(R) Processor", "processor": "Intel(R) Xeon(R) Processor", "cpu_count": 2,
                 "torch": "2.13.0+cpu", "torch_threads": 1}
    assert records.describe(m) == m["description"]
    old = records.normalise_machine({"processor": "x86_64", "cpu_count": 2})
    assert old["cpu"] == old["processor"] == "x86_64"
    with pytest.raises(TypeError):
        records.normalise_machine(42)


def test_load_refuses_a_path_that_is_not_one():
    from llmlab.records import sampling_sweep

    with pytest.raises(TypeError, match="path"):
        sampling_sweep.load(42)
    with pytest.raises(FileNotFoundError, match="python -m llmlab.records.sampling_sweep"):
        sampling_sweep.load("/no/such/record.json")
