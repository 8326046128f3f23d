"""The rebuild tests ignore release stamps and nothing else."""

import json

import pytest
from saved_files import assert_same_saved_file


def write(path, **fields):
    path.write_text(json.dumps(fields))
    return path


def test_a_different_transformers_version_is_not_a_difference(tmp_path):
    assert_same_saved_file(write(tmp_path / "a.json", n_embd=128, transformers_version="5.24.0"),
                           write(tmp_path / "b.json", n_embd=128, transformers_version="5.23.0"))


def test_a_new_default_field_written_by_a_newer_release_is_allowed(tmp_path):
    assert_same_saved_file(write(tmp_path / "a.json", n_embd=128, new_field=None), write(tmp_path / "b.json", n_embd=128))


def test_a_changed_or_missing_field_fails(tmp_path):
    with pytest.raises(AssertionError, match="n_embd"):
        assert_same_saved_file(write(tmp_path / "a.json", n_embd=64), write(tmp_path / "b.json", n_embd=128))
    with pytest.raises(AssertionError, match="missing.*n_layer"):
        assert_same_saved_file(write(tmp_path / "a.json", n_embd=128), write(tmp_path / "b.json", n_embd=128, n_layer=4))
