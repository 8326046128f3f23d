"""Recorded experiments: one module per file in ``llmlab/results/``.

Work too long for a chapter runs once, by ``python -m llmlab.records.<name>``, and ships in
``llmlab/results/``; the chapters read it back and re-run a small part live. Each module has
its plan (the constants that say what is measured), ``run(out=None)`` (measure, write the
file to ``out`` or, by default, the shipped file, and return the record), ``load(path=None)``
(``path=None`` reads the shipped file) and ``main()`` (the command).

What ``load`` returns, for every record:

- a JSON record: a ``dict`` (the file as written), its ``"machine"`` always a dict.
  Records made before :mod:`llmlab.provenance` existed stored the machine as one line of
  text in some files (``lifecycle_completions.json``) and as a dict with other keys in
  others; :func:`read_json` turns the line into a dict (``"description"`` holds the line,
  and ``cpu``, ``cpu_count``, ``torch`` and ``torch_threads`` what could be read from it)
  and gives an old dict the keys ``cpu`` and ``processor`` when it has either;
- a CSV record (``scaling_sweep``, ``domain_adaptation``): a pandas ``DataFrame`` (or, for
  the domain comparison's two files, the pair of them); its ``machine`` column stays the
  one-line description every row was written with (:func:`describe`).

(``pipeline_bubble.load`` still returns its rows as a DataFrame with the stamp beside them,
a pair, as chapter 7 reads it.)

Every writer stamps its record with :func:`llmlab.provenance.stamp`. Nothing outside this
package writes into ``llmlab/results/``; nothing in llmlab imports this package.

Modules: ``sampling_sweep``, ``sampling_playground`` (chapter 5); ``lifecycle_completions``
(chapter 1); ``icl_real``, ``icl_calibration``, ``icl_summaries``, ``icl_cot`` (chapter 4); ``quant_real``, ``training_peaks``
(chapter 6); ``pipeline_bubble`` (chapter 7); ``scaling_sweep``, ``bench_cpu`` (chapter 8);
``domain_adaptation``, ``domain_matched`` (chapter 9); ``prompt_tuning_real``, ``prompt_tuning_tasks`` (chapter 10);
``evaluation_formats``, ``evaluation_judge``, ``evaluation_harness``, ``evaluation_contamination``
(chapter 11); ``finetuning`` (chapter 12); ``alignment`` (chapter 13); ``serving`` (chapter 14);
``augmentation`` (chapter 15).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from .. import _checks
from ..provenance import read_record

RESULTS = Path(__file__).resolve().parent.parent / "results"


def result_path(path, name: str) -> Path:
    """``path`` as a Path, or the shipped file ``llmlab/results/<name>`` when ``path`` is None."""
    if path is None:
        return RESULTS / name
    if not isinstance(path, (str, os.PathLike)):
        raise _checks.ArgumentTypeError(f"path must be a path to the record or None (the shipped file), "
                                        f"got {type(path).__name__}")
    return Path(path)


_LINE = re.compile(r"^(?P<cpu>[^;]*); (?P<cores>\d+) cores; (?:torch (?P<torch>\S+), (?P<threads>\d+) thread"
                   r"|(?P<threads2>\d+) torch thread\(s\); Python (?P<python>[^;]+); torch (?P<torch2>[^;]+))")


def normalise_machine(machine) -> dict:
    """A record's ``machine`` as a dict, whichever way it was stored (see the module docstring)."""
    if isinstance(machine, dict):
        out = dict(machine)
        if "cpu" in out or "processor" in out:
            out.setdefault("cpu", out.get("processor"))
            out.setdefault("processor", out.get("cpu"))
        return out
    if isinstance(machine, str):
        out = {"description": machine}
        m = _LINE.match(machine)
        if m:
            out.update(cpu=m["cpu"], processor=m["cpu"], cpu_count=int(m["cores"]),
                       torch=m["torch"] or m["torch2"], torch_threads=int(m["threads"] or m["threads2"]))
            if m["python"]:
                out["python"] = m["python"]
        return out
    raise _checks.ArgumentTypeError(f"machine must be a dict or a one-line description, got {type(machine).__name__}")


def describe(machine: dict) -> str:
    """The one-line description of :func:`llmlab.provenance.machine`'s dict that CSV rows carry:
    ``'CPU; N cores; torch V, T thread(s)'``."""
    if not isinstance(machine, dict):
        raise _checks.ArgumentTypeError(f"machine must be the dict of llmlab.provenance.machine(), got "
                                        f"{type(machine).__name__}; pass normalise_machine(value) for a description")
    return (f"{machine.get('cpu')}; {machine.get('cpu_count')} cores; torch {machine.get('torch')}, "
            f"{machine.get('torch_threads')} thread(s)")


def read_json(path, name: str, command: str) -> dict:
    """A JSON record (``path``, or the shipped ``results/<name>``), its machine normalised to a dict."""
    record = read_record(result_path(path, name), command)
    if isinstance(record, dict) and "machine" in record:
        record["machine"] = normalise_machine(record["machine"])
    return record


def write_json(record: dict, out, name: str) -> Path:
    """Write ``record`` as indented JSON to ``out`` (default: the shipped ``results/<name>``)."""
    if not isinstance(record, dict):
        raise _checks.ArgumentTypeError(f"record must be a dict (a JSON record), got {type(record).__name__}")
    path = result_path(out, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
