"""tools/chapter_times.py: chapter execution times from the book's build or from executing them now."""

import importlib.util
import pickle
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_tool():
    spec = importlib.util.spec_from_file_location("chapter_times", ROOT / "tools" / "chapter_times.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ct = load_tool()


class FakeEnv:  # what Sphinx pickles, reduced to the attribute myst-nb fills
    def __init__(self, nb_metadata):
        self.nb_metadata = nb_metadata


def test_times_from_a_build_record(tmp_path):
    env = FakeEnv({"chapters/08_scaling_laws": {"exec_data": {"runtime": 21.5}},
                   "chapters/01_lifecycle": {"exec_data": {"runtime": 3.0}},
                   "intro": {"exec_data": None}})
    path = tmp_path / "environment.pickle"
    path.write_bytes(pickle.dumps(env))
    assert ct.times_from_build(path) == {"chapters/01_lifecycle": 3.0, "chapters/08_scaling_laws": 21.5}


def test_no_build_record_or_a_broken_one_is_empty(tmp_path):
    assert ct.times_from_build(tmp_path / "missing.pickle") == {}
    (tmp_path / "broken.pickle").write_bytes(b"not a pickle")
    assert ct.times_from_build(tmp_path / "broken.pickle") == {}
    with pytest.raises(TypeError, match="environment"):
        ct.times_from_build(42)


@pytest.fixture
def chapters(tmp_path):
    for name in ("01_lifecycle", "02_pretraining", "10_prompt_tuning", "08_scaling_laws"):
        (tmp_path / f"{name}.ipynb").write_text("{}")
    return tmp_path


def test_one_name_as_a_str_is_one_name_not_its_characters(chapters):
    # "01" iterated character by character would match "0" and "1": every chapter here
    assert [p.stem for p in ct.select_chapters("01", chapters)] == ["01_lifecycle"]
    assert [p.stem for p in ct.select_chapters(["01", "08"], chapters)] == ["01_lifecycle", "08_scaling_laws"]
    assert len(ct.select_chapters(None, chapters)) == 4 == len(ct.select_chapters([], chapters))


@pytest.mark.parametrize("names, exc, match", [
    (["no-such-chapter"], ValueError, "no chapter notebook matches"),
    ([1], TypeError, "names"),
    ([""], TypeError, "names"),
    (7, TypeError, "names"),
])
def test_select_chapters_refuses_bad_names(chapters, names, exc, match):
    with pytest.raises(exc, match=match):
        ct.select_chapters(names, chapters)


def test_execute_chapters_runs_only_the_named_chapter(chapters, monkeypatch):
    import nbclient
    import nbformat

    ran = []

    class Client:
        def __init__(self, nb, **kw):
            self.path = kw["resources"]["metadata"]["path"]

        def execute(self):
            ran.append(self.path)

    monkeypatch.setattr(nbclient, "NotebookClient", Client)
    monkeypatch.setattr(nbformat, "read", lambda path, as_version: {})
    times = ct.execute_chapters("01", chapters=chapters)
    assert list(times) == ["chapters/01_lifecycle"] and len(ran) == 1
    with pytest.raises(ValueError, match="timeout"):
        ct.execute_chapters("01", timeout=0, chapters=chapters)


def test_report_lists_each_notebook_or_says_there_is_no_record():
    assert "no record" in ct.report({}, "last make book build")
    text = ct.report({"chapters/05_sampling": 12.5}, "executed now")
    assert "executed now" in text and "chapters/05_sampling" in text and "12.5 s" in text
