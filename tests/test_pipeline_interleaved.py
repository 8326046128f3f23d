"""Interleaved 1F1B (two virtual stages per rank) and the busy intervals the pipeline runs record."""

from __future__ import annotations

import pytest
import torch

from llmlab import memory
from llmlab.distributed import launcher, results
from llmlab.distributed import tables as dist_tables
from llmlab.distributed.pipeline import interleaved_stages
from llmlab.tinyllama import TinyLlama, TinyLlamaConfig


def test_interleaved_bubble_formula_is_the_plain_one_with_v_times_the_micro_batches():
    assert memory.bubble_fraction(2, 4, chunks=2) == pytest.approx(memory.bubble_fraction(2, 8))
    assert memory.bubble_fraction(4, 8, chunks=1) == memory.bubble_fraction(4, 8)
    # Narayanan et al. (2021): the bubble time shrinks by the number of chunks
    p, m, v = 4, 8, 2
    f = memory.bubble_fraction(p, m, v)
    assert f / (1 - f) == pytest.approx((p - 1) / (v * m))


def test_interleaved_stages_need_a_block_per_virtual_stage():
    with pytest.raises(ValueError, match="virtual stage"):
        interleaved_stages(lambda: TinyLlama(TinyLlamaConfig()), 0, 4, torch.device("cpu"), chunks=2)


def test_interleaved_run_records_busy_intervals_within_each_step():
    run = launcher.run(["pp"], 2, steps=1, batch_size=1, seq_len=8, microbatches=2,
                       bubble_microbatches=(1, 2), bubble_repeats=1, timeout_s=180,
                       bubble_schedules=results.BUBBLE_SCHEDULES)
    table = dist_tables.bubble_table(run)
    il = table[table["schedule"] == "interleaved_1f1b"]
    assert sorted(il["microbatches"]) == [2, 2]  # m = 1 is not a multiple of the 2 ranks: skipped
    assert (il["bubble_formula"] == memory.bubble_fraction(2, 2, chunks=2)).all()
    for r in run.of("pp"):
        for row in r.extra["bubble"]:
            chunks = 2 if row["schedule"] == "interleaved_1f1b" else 1
            # a forward and a backward per micro-batch and virtual stage
            assert len(row["busy_intervals"]) == 2 * row["microbatches"] * chunks
            assert all(0 <= a <= b <= row["last_step_s"] for a, b in row["busy_intervals"])
