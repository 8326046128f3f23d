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
