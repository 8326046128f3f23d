"""Records in llmlab/results/ are stamped with the commit that made them."""

import subprocess

from llmlab import provenance


def test_code_version_is_the_checkouts_commit():
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=provenance.ROOT,
                          capture_output=True, text=True).stdout.strip()
    assert provenance.code_version("llmlab/provenance.py").removesuffix("+dirty") == head


def test_code_version_is_unknown_without_git(monkeypatch):
    def no_git(*args, **kwargs):
        raise OSError("git: not found")

    monkeypatch.setattr(subprocess, "run", no_git)
    assert provenance.code_version("llmlab/provenance.py") == "unknown"


def test_dirty_marks_uncommitted_changes_of_the_named_files(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    for cmd in (["git", "init", "-q"], ["git", "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q",
                                        "--allow-empty", "-m", "x"]):
        subprocess.run(cmd, cwd=repo, check=True)
    monkeypatch.setattr(provenance, "ROOT", repo)
    assert not provenance.code_version("f.py").endswith("+dirty")
    (repo / "f.py").write_text("x = 1\n")
    assert provenance.code_version("f.py").endswith("+dirty")
    assert not provenance.code_version("g.py").endswith("+dirty")


def test_a_benchmark_record_is_stamped_with_code_version_and_machine():
    import re

    import torch

    from llmlab.records import bench_cpu

    stamp = bench_cpu.stamp(bench_cpu.COMMAND, *bench_cpu.CODE)
    assert re.fullmatch(r"[0-9a-f]{12}(\+dirty)?|unknown", stamp["code_version"])
    assert stamp["machine"]["torch"] == torch.__version__ and stamp["machine"]["cpu_count"] >= 1
    assert stamp["command"] == "python -m llmlab.records.bench_cpu"


def test_the_shipped_benchmark_record_says_its_stamp_was_added_later():
    import json

    record = json.loads((provenance.ROOT / "llmlab/results/bench_cpu.json").read_text())
    assert {"code_version", "machine", "command"} <= set(record)
    assert "added" in record["provenance_note"] and "without re-measuring" in record["provenance_note"]


def test_stamp_carries_command_version_and_machine():
    from llmlab import provenance

    s = provenance.stamp("python -m llmlab.records.example", "llmlab/provenance.py")
    assert s["command"] == "python -m llmlab.records.example"
    assert s["code_version"] == "unknown" or len(s["code_version"].split("+")[0]) == 12
    m = s["machine"]
    assert isinstance(m, dict) and m["cpu_count"] >= 1 and m["torch"].startswith("2.")
    import pytest

    with pytest.raises(ValueError, match="command"):
        provenance.stamp("")
