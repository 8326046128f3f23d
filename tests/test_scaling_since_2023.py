"""The NVIDIA talk's GPT-3 table, the re-fit of Chinchilla's loss and the attention FLOPs (chapter 8)."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from llmlab import scaling


def test_talk_table_is_one_rate_per_model_within_rounding():
    table = scaling.reproduce_days_table(scaling.TALK_GPT3_DAYS, scaling.TALK_GPT3_SIZES)
    assert len(table) == 20
    assert table["ratio"].between(0.9, 1.1).all()
    # the formula at a row's rate divides the days by the ratio of GPU counts (perfect scaling)
    row = table[table["model"] == "175B"].set_index("n_gpus")
    assert row.loc[64, "formula_days"] / row.loc[800, "formula_days"] == pytest.approx(800 / 64)


def test_cell_rate_inverts_training_days():
    table = scaling.reproduce_days_table({"175B": {800: 28.0}}, {"175B": 175e9})
    rate = table["flops_per_gpu"].iloc[0]
    assert scaling.training_days(175e9, 300e9, 800, rate) == pytest.approx(28.0)


def test_besiroglu_refit_moves_the_optimum_back_near_twenty_tokens_per_parameter():
    c = scaling.training_flops(70e9, 1.4e12)
    n_pub, d_pub = scaling.optimal_allocation(c)
    n_re, d_re = scaling.optimal_allocation(c, scaling.BESIROGLU_FIT)
    assert n_pub / 1e9 == pytest.approx(32.5, abs=0.5) and d_pub / n_pub == pytest.approx(93, abs=1)
    assert n_re / 1e9 == pytest.approx(73, abs=1) and d_re / n_re == pytest.approx(18.4, abs=0.5)


def test_attention_share_matches_counted_matmuls_of_a_gpt2_forward():
    """Count the FLOPs of a tiny GPT-2's forward pass with torch's counter: the weights
    give 2N per token, the rest is the attention's QK^T and AV products over the full
    context (the eager path computes the masked half too): twice the causal share."""
    from torch.utils.flop_counter import FlopCounterMode

    cfg = GPT2Config(vocab_size=64, n_positions=32, n_embd=16, n_layer=2, n_head=2,
                     bos_token_id=0, eos_token_id=0, attn_implementation="eager")
    model = GPT2LMHeadModel(cfg).eval()
    seq_len = 32
    n_matmul = sum(p.numel() for n, p in model.named_parameters()
                   if p.dim() == 2 and "wpe" not in n)  # tied wte counted once, as lm_head
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, seq_len, dtype=torch.long))
    per_token = counter.get_total_flops() / seq_len
    share = scaling.attention_flops_share(n_matmul, cfg.n_layer, cfg.n_embd, seq_len)
    assert per_token == pytest.approx(2 * n_matmul * (1 + 2 * share), rel=1e-6)
    assert math.isclose(share, cfg.n_layer * seq_len * cfg.n_embd / n_matmul)
