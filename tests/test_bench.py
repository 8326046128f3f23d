"""Tests of the fast paths in llmlab.train and of llmlab.bench (chapter 8). No timing is asserted here.

The chapter timings (repository tooling) are tested in tests/test_chapter_times.py."""

import pytest
import torch
import torch.nn.functional as F

from llmlab import train


def test_fast_cross_entropy_matches_pytorch_value_and_gradient():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 50, generator=g) * 3
    targets = torch.randint(0, 50, (64,), generator=g)
    a = logits.clone().requires_grad_()
    b = logits.clone().requires_grad_()
    fast = train.cross_entropy(a, targets)
    ref = F.cross_entropy(b, targets)
    (2.5 * fast).backward()
    (2.5 * ref).backward()
    assert fast.item() == pytest.approx(ref.item(), rel=1e-6)
    assert torch.allclose(a.grad, b.grad, atol=1e-7)


def test_fast_cross_entropy_refuses_wrong_shapes():
    with pytest.raises(ValueError, match=r"\(n, V\) logits"):
        train.cross_entropy(torch.randn(2, 3, 4), torch.zeros(6, dtype=torch.long))


def test_fused_optimizer_on_cpu_and_same_steps_as_default_adamw():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.LayerNorm(8))
    twin = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.LayerNorm(8))
    twin.load_state_dict(model.state_dict())
    cfg = train.TrainConfig(steps=10, warmup_steps=0, lr=1e-2)
    fast = train.make_optimizer(model, cfg, torch.device("cpu"))
    assert fast.defaults["fused"] is True
    assert [g["weight_decay"] for g in fast.param_groups] == [cfg.weight_decay, 0.0]
    plain = torch.optim.AdamW([{"params": [twin[0].weight], "weight_decay": cfg.weight_decay},
                               {"params": [twin[0].bias, *twin[1].parameters()], "weight_decay": 0.0}],
                              lr=cfg.lr, betas=(0.9, 0.95))
    x = torch.randn(16, 8)
    start = [p.detach().clone() for p in model.parameters()]
    for _ in range(5):
        for m, opt in ((model, fast), (twin, plain)):
            opt.zero_grad()
            m(x).pow(2).mean().backward()
            opt.step()
    # The fused kernel rounds in another order than the loop over tensors, so the two
    # drift apart by float32 rounding (about 1e-6 after five steps on some CPUs): equal
    # to 1e-5, while the steps themselves moved every tensor by far more (about lr * 5).
    for p, q, p0 in zip(model.parameters(), twin.parameters(), start):
        assert (p - p0).abs().max() > 1e-3
        assert torch.allclose(p, q, atol=1e-5, rtol=0)


def test_random_batch_gathers_the_same_windows_as_slicing():
    ids = torch.arange(500) * 7
    x, y = train.random_batch(ids, 6, 10, torch.Generator().manual_seed(3))
    starts = torch.randint(0, 500 - 10 - 1, (6,), generator=torch.Generator().manual_seed(3))
    for row, s in zip(x, starts.tolist()):
        assert torch.equal(row, ids[s : s + 10])
    assert torch.equal(y, x + 7)


def test_mfu_is_model_flops_over_peak_and_refuses_non_positive():
    from llmlab import bench

    assert bench.mfu(1_000_000, 10_000, 1.2e11) == pytest.approx(6e10 / 1.2e11)
    with pytest.raises(ValueError, match="peak_flops must be > 0"):
        bench.mfu(10, 10, 0)
    with pytest.raises(ValueError, match="n_params"):
        bench.mfu(0, 10, 1e9)


def test_matmul_flops_is_a_plausible_rate():
    from llmlab import bench

    rate = bench.matmul_flops(size=128, repeats=2, tries=2)
    assert 1e7 < rate < 1e15  # between a very slow phone and a whole GPU node
    with pytest.raises(ValueError, match="positive"):
        bench.matmul_flops(size=0)


def test_plain_loop_learns_a_repeating_pattern():
    from transformers import GPT2Config, GPT2LMHeadModel

    from llmlab import bench

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=16, n_positions=32, n_embd=32, n_layer=1, n_head=2,
                                       bos_token_id=0, eos_token_id=0))
    ids = torch.tensor([1, 2, 3, 4, 5, 6, 7] * 200)
    assert bench.plain_loop(model, ids, steps=60, batch_size=8, seq_len=16, lr=1e-2) < 0.3


def test_report_names_both_loops_and_their_ratio():
    from llmlab import bench

    loop = lambda tps: {"tokens_per_second": tps, "tokens_per_cpu_second": tps * 2, "mfu": 0.1, "mfu_cpu_time": 0.2}
    text = bench.report({"device": "cpu", "threads": 1, "load_average": None, "matmul_flops": 1e11,
                         "model": {"size": "s5", "n_params": 10, "steps": 1, "batch_size": 1, "seq_len": 1},
                         "loops": {"llmlab.train": loop(300.0), "plain PyTorch loop": loop(200.0)}})
    assert "1.50x wall" in text and "100.0 GFLOP/s" in text and "chapter" not in text


def test_bench_needs_no_repository_folder():
    # what a reader's installed package runs: nothing in llmlab.bench looks for chapters/ or _build/
    import inspect

    from llmlab import bench

    source = inspect.getsource(bench)
    assert "_build" not in source and "doctrees" not in source and '"chapters"' not in source
    assert not hasattr(bench, "execute_chapters") and not hasattr(bench, "chapter_times_from_build")
