"""Tests of the fast paths in llmlab.train and of llmlab.bench (chapter 8). No timing is asserted here."""

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
    for _ in range(5):
        for m, opt in ((model, fast), (twin, plain)):
            opt.zero_grad()
            m(x).pow(2).mean().backward()
            opt.step()
    for p, q in zip(model.parameters(), twin.parameters()):
        assert torch.allclose(p, q, atol=1e-6)


def test_random_batch_gathers_the_same_windows_as_slicing():
    ids = torch.arange(500) * 7
    x, y = train.random_batch(ids, 6, 10, torch.Generator().manual_seed(3))
    starts = torch.randint(0, 500 - 10 - 1, (6,), generator=torch.Generator().manual_seed(3))
    for row, s in zip(x, starts.tolist()):
        assert torch.equal(row, ids[s : s + 10])
    assert torch.equal(y, x + 7)
