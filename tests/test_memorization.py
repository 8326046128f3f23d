"""Verbatim n-gram overlap (chapter 3): hashed n-gram sets agree with plain Python tuples."""

import random

import numpy as np
import pytest
import torch

from llmlab import memorization

STOP = 0


def tuple_ngrams(ids, n, stop=None):
    """Every n-gram of ``ids`` as a tuple, computed without llmlab; those containing ``stop`` left out."""
    grams = [tuple(ids[i:i + n]) for i in range(len(ids) - n + 1)]
    return [g for g in grams if stop is None or stop not in g]


def random_stream(rng, length, vocab=50):
    return [rng.randrange(1, vocab) for _ in range(length)]


def test_distinct_ngrams_match_a_count_with_tuples():
    rng = random.Random(0)
    ids = [rng.randrange(1, 6) for _ in range(2000)]  # a small vocabulary: many repeated n-grams
    for n in (1, 3, 8):
        assert len(memorization.ngram_hashes(ids, n)) == len(set(tuple_ngrams(ids, n)))


def test_overlap_counts_match_a_count_with_tuples():
    rng = random.Random(1)
    train = random_stream(rng, 3000, vocab=8)
    train[::97] = [STOP] * len(train[::97])
    held_out = random_stream(rng, 800, vocab=8)
    for n in (4, 5, 6):
        reference = memorization.ngram_hashes(train, n, stop_token_id=STOP)
        found, total = memorization.ngram_overlap(held_out, reference, n, stop_token_id=STOP)
        seen = set(tuple_ngrams(train, n, STOP))
        grams = tuple_ngrams(held_out, n, STOP)
        assert (found, total) == (sum(g in seen for g in grams), len(grams))
        assert 0 < found < total  # the test data leave both outcomes possible


def test_ngrams_across_the_stop_token_are_left_out():
    ids = [1, 2, 3, STOP, 4, 5, 6]
    assert len(memorization.ngram_hashes(ids, 3, stop_token_id=STOP)) == 2  # (1,2,3) and (4,5,6)
    assert len(memorization.ngram_hashes(ids, 3)) == 5
    reference = memorization.ngram_hashes([9, 2, 3, STOP, 4, 5, 6], 3, stop_token_id=STOP)
    assert memorization.ngram_overlap([3, STOP, 4, 5, 6, 1], reference, 3, stop_token_id=STOP) == (1, 2)


def test_a_copy_of_the_training_text_is_found_in_full_and_random_text_is_not():
    rng = random.Random(2)
    train = random_stream(rng, 5000, vocab=1000)
    reference = memorization.ngram_hashes(train, 8)
    assert memorization.ngram_overlap(train[1200:1400], reference, 8) == (193, 193)
    found, total = memorization.ngram_overlap(random_stream(rng, 500, vocab=1000), reference, 8)
    assert (found, total) == (0, 493)


def test_documents_tensors_and_arrays_give_the_same_counts():
    rng = random.Random(3)
    train = random_stream(rng, 1000, vocab=6)
    docs = [random_stream(rng, 40, vocab=6) for _ in range(5)]
    reference = memorization.ngram_hashes(train, 5)
    as_lists = memorization.ngram_overlap(docs, reference, 5)
    as_tensors = memorization.ngram_overlap([torch.tensor(d) for d in docs], reference, 5)
    as_rows = memorization.ngram_overlap(torch.tensor(docs), reference, 5)
    as_arrays = memorization.ngram_overlap([np.array(d) for d in docs], reference, 5)
    assert as_lists == as_tensors == as_rows == as_arrays
    assert as_lists[1] == 5 * 36
    # separate documents: no n-gram joins the end of one to the start of the next
    joined = memorization.ngram_overlap(sum(docs, []), reference, 5)
    assert joined[1] == 5 * 40 - 4


def test_short_and_empty_inputs_count_nothing():
    reference = memorization.ngram_hashes([1, 2, 3, 4, 5, 6, 7, 8, 9], 8)
    assert memorization.ngram_overlap([1, 2, 3], reference, 8) == (0, 0)
    assert memorization.ngram_overlap([], reference, 8) == (0, 0)
    assert len(memorization.ngram_hashes([], 8)) == 0
    empty = memorization.ngram_hashes([1, 2], 8)
    assert memorization.ngram_overlap([1, 2, 3, 4, 5, 6, 7, 8], empty, 8) == (0, 1)


@pytest.mark.parametrize("call,match", [
    (lambda: memorization.ngram_hashes([1, 2, 3], 0), "n must be a positive int"),
    (lambda: memorization.ngram_hashes([1, 2, 3], 2.5), "n must be a positive int"),
    (lambda: memorization.ngram_hashes("some text", 2), "token ids"),
    (lambda: memorization.ngram_hashes(torch.rand(10), 2), "integer token ids"),
    (lambda: memorization.ngram_hashes([1, -2, 3], 2), ">= 0"),
    (lambda: memorization.ngram_hashes([1, 2, 3], 2, stop_token_id=-1), "stop_token_id"),
    (lambda: memorization.ngram_overlap([1, 2, 3], {1, 2}, 2), "reference must be the sorted uint64 array"),
])
def test_bad_input_is_refused_with_a_clear_message(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
