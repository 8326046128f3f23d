"""The bundled corpus: reproducible from its generator, split cleanly, narrow vocabulary."""

import gzip

import pytest

from llmlab import data


def test_shipped_corpus_file_is_exactly_what_the_generator_writes(tmp_path):
    fresh = data.write_corpus(tmp_path / "stories.txt.gz")
    assert fresh.read_bytes() == data.CORPUS_FILE.read_bytes()


def test_same_seed_same_stories_other_seed_other_stories():
    assert data.generate_stories(50, seed=1) == data.generate_stories(50, seed=1)
    assert data.generate_stories(50, seed=1) != data.generate_stories(50, seed=2)


def test_train_and_validation_splits_are_disjoint_and_cover_the_corpus():
    train, val, everything = data.load_corpus("train"), data.load_corpus("validation"), data.load_corpus()
    assert len(train) + len(val) == len(everything) == data.CORPUS_STORIES
    assert train + val == everything
    assert abs(len(val) / len(everything) - data.VALIDATION_FRACTION) < 0.01


def test_stories_are_plain_english_sentences():
    stories = data.load_corpus("validation")
    for story in stories[:200]:
        assert story[0].isupper() and story.rstrip()[-1] in '.!"'
        assert "{" not in story and "}" not in story  # no unfilled template slots
        assert data.STORY_SEPARATOR not in story


def test_vocabulary_is_narrow_but_not_trivial():
    vocab = data.corpus_vocabulary()
    assert 300 < len(vocab) < 2000
    assert {"the", "happy", "friend", "rain"} <= vocab


def test_corpus_is_gzip_utf8_text():
    with gzip.open(data.CORPUS_FILE, "rt", encoding="utf-8") as f:
        assert f.read(20).startswith(("One", "Once", "Long"))


def test_bad_split_and_bad_count_are_refused():
    with pytest.raises(ValueError, match="split must be one of"):
        data.load_corpus("test")
    with pytest.raises(ValueError, match="n must be >= 0"):
        data.generate_stories(-1)
