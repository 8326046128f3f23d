"""llmlab.memory: the ZeRO paper's figures, the syllabus's tables, and the bytes a real
model and torch optimizer hold after a step."""

from __future__ import annotations

import pytest
import torch

from llmlab import memory


@pytest.mark.parametrize("stage,gb", [(0, 120.0), (1, 31.4), (2, 16.6), (3, 1.9)])
def test_zero_paper_figure_1_for_7_5b_parameters_on_64_gpus(stage, gb):
    # Rajbhandari et al. 2020, Figure 1: Psi = 7.5B, K = 12, N_d = 64
    assert memory.model_states_per_gpu(7.5e9, 64, stage).total / 1e9 == pytest.approx(gb, abs=0.05)


def test_bytes_per_parameter_of_each_precision():
    assert (memory.bytes_per_param("mixed").params, memory.bytes_per_param("mixed").grads,
            memory.bytes_per_param("mixed").optimizer) == (2, 2, 12)
    fp32 = memory.bytes_per_param("fp32")
    assert (fp32.params, fp32.grads, fp32.optimizer) == (4, 4, 8)
    assert memory.bytes_per_param("bf16").total == 8
    assert memory.bytes_per_param("fp32", "sgd").total == 8
    assert memory.bytes_per_param("mixed", "sgd").optimizer == 4  # the fp32 master weights remain


def test_syllabus_rule_of_thumb_gives_24_gb_for_1b_parameters():
    # weights 4 + Adam 8 + gradients 4 + activations 8 bytes per parameter (SYLLABUS section 6)
    m = memory.training_memory(1e9, precision="fp32", activations="rule_of_thumb")
    assert m.total == pytest.approx(24e9)
    assert m.as_dict(1e9) == {"params": 4.0, "grads": 4.0, "optimizer": 8.0, "activations": 8.0, "total": 24.0}


def test_stages_shard_the_right_parts():
    base = memory.model_states_per_gpu(1e9, 8, 0)
    s1, s2, s3 = (memory.model_states_per_gpu(1e9, 8, k) for k in (1, 2, 3))
    assert s1.optimizer == base.optimizer / 8 and s1.grads == base.grads and s1.params == base.params
    assert s2.grads == base.grads / 8 and s2.params == base.params
    assert s3.params == base.params / 8 and s3.total == pytest.approx(base.total / 8)
    assert memory.model_states_per_gpu(1e9, 1, 3).total == base.total  # one GPU: nothing to shard across


def test_korthikanti_activation_formula():
    # 34 s b h + 5 a s^2 b per layer, 16-bit activations (Korthikanti et al. 2022, eq. 2)
    s, b, h, a, L = 2048, 4, 1024, 16, 24
    assert memory.activation_bytes(L, h, a, s, b) == L * (34 * s * b * h + 5 * a * s * s * b)
    assert memory.activation_bytes(L, h, a, s, b, "selective") == L * 34 * s * b * h
    assert memory.activation_bytes(L, h, a, s, b, "full_recompute") == L * 2 * s * b * h
    # activations grow linearly with the batch
    assert memory.activation_bytes(L, h, a, s, 2 * b) == 2 * memory.activation_bytes(L, h, a, s, b)
    # fp32 activations: the values double, the one-byte dropout masks (2 s b h + a s^2 b) do not
    assert memory.activation_bytes(L, h, a, s, b, bytes_per_value=4) == L * (66 * s * b * h + 9 * a * s * s * b)


def test_gpt_param_count_equals_a_real_gpt2(make_gpt2):
    model = make_gpt2(0, vocab_size=101, n_positions=40, n_embd=48, n_layer=3, n_head=4)
    assert memory.gpt_param_count(3, 48, 101, 40) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("dtype,precision", [(torch.float32, "fp32"), (torch.bfloat16, "bf16")])
def test_prediction_equals_measured_bytes_after_an_adam_step(dtype, precision, make_gpt2):
    model = make_gpt2(0, vocab_size=64, n_positions=16, initializer_range=0.02).train().to(dtype)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids = torch.randint(0, 64, (2, 9))
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()
    measured = memory.measure_model_states(model, optimizer)
    n_params = sum(p.numel() for p in model.parameters())
    predicted = memory.model_states_per_gpu(n_params, precision=precision, optimizer="adamw")
    assert measured.params == predicted.params
    assert measured.grads == predicted.grads
    # the only difference: Adam's one-element float32 step counter per parameter tensor
    n_tensors = len(list(model.parameters()))
    assert measured.optimizer - predicted.optimizer == measured.optimizer_scalars == 4 * n_tensors


def test_training_memory_needs_the_shape_for_activations():
    with pytest.raises(ValueError, match="needs the model shape: pass n_layers, hidden, n_heads, seq_len"):
        memory.training_memory(1e9)
    full = memory.training_memory(1e9, n_layers=24, hidden=2048, n_heads=16, seq_len=2048, batch_size=2)
    assert full.activations == memory.activation_bytes(24, 2048, 16, 2048, 2)
    fp32 = memory.training_memory(1e9, precision="fp32", n_layers=24, hidden=2048, n_heads=16, seq_len=2048)
    assert fp32.activations == memory.activation_bytes(24, 2048, 16, 2048, 1, bytes_per_value=4)
    assert full.model_states == 16e9
    assert memory.training_memory(1e9, activations="none").total == 16e9


@pytest.mark.parametrize("kwargs,message", [
    (dict(n_params=0), "n_params must be a finite number of parameters > 0"),
    (dict(n_params=-5), "n_params must be a finite number of parameters > 0"),
    (dict(n_params=float("inf")), "n_params must be a finite number of parameters > 0"),
    (dict(n_params=1e9, n_gpus=0), "n_gpus must be a positive int"),
    (dict(n_params=1e9, n_gpus=2.5), "n_gpus must be a positive int"),
    (dict(n_params=1e9, zero_stage=4), "zero_stage must be 0, 1, 2 or 3"),
    (dict(n_params=1e9, zero_stage=-1), "zero_stage must be 0, 1, 2 or 3"),
    (dict(n_params=1e9, precision="fp8"), "unknown precision 'fp8'; allowed: fp32, mixed, bf16"),
    (dict(n_params=1e9, optimizer="lion"), "unknown optimizer 'lion'; allowed: adam, adamw, sgd_momentum, sgd"),
])
def test_model_states_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        memory.model_states_per_gpu(**kwargs)


def test_activation_and_training_memory_bad_input():
    with pytest.raises(ValueError, match="seq_len must be a positive int"):
        memory.activation_bytes(2, 64, 2, 0)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        memory.activation_bytes(2, 64, 2, 16, -1)
    with pytest.raises(ValueError, match="bytes_per_value must be 1, 2, 4 or 8"):
        memory.activation_bytes(2, 64, 2, 16, 1, bytes_per_value=3)
    with pytest.raises(ValueError, match="unknown activation method 'flash'"):
        memory.activation_bytes(2, 64, 2, 16, 1, "flash")
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        memory.training_memory(1e9, activations="rule_of_thumb", batch_size=0)
    with pytest.raises(ValueError, match="unknown activations 'lots'; allowed: korthikanti"):
        memory.training_memory(1e9, activations="lots")
    with pytest.raises(ValueError, match="hidden must be a positive int"):
        memory.gpt_param_count(2, 0, 100)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_peak_is_at_least_the_model_states(make_gpt2):
    model = make_gpt2(0, vocab_size=64, n_positions=16, initializer_range=0.02).train()
    n = sum(p.numel() for p in model.parameters())
    out = memory.cuda_peak_training_bytes(model, torch.randint(0, 64, (2, 9)))
    assert out["peak"] >= memory.model_states_per_gpu(n, precision="fp32").total


def test_saved_activations_grow_linearly_with_batch_and_exclude_weights(make_gpt2):
    model = make_gpt2(0, vocab_size=64, n_positions=32, initializer_range=0.02, resid_pdrop=0.0, embd_pdrop=0.0,
                      attn_pdrop=0.0).train()
    ids = torch.randint(0, 64, (4, 17))
    one = memory.saved_activation_bytes(model, ids[:2])["total"]
    two = memory.saved_activation_bytes(model, ids)["total"]
    assert two == pytest.approx(2 * one, rel=0.02)
    # the logits for the loss are saved: at least batch * tokens * vocab float32 values
    assert one >= 2 * 16 * 64 * 4
    weights = sum(p.numel() * 4 for p in model.parameters())
    assert one < weights + 2 * memory.activation_bytes(2, 32, 2, 16, 2, bytes_per_value=4)
    with pytest.raises(ValueError, match="input_ids must be a"):
        memory.saved_activation_bytes(model, ids[0])


def test_model_parallel_memory_with_one_tensor_and_one_pipeline_rank_is_the_sharding_calculator():
    # t = p = 1: every split parameter is held whole, and the ZeRO stage acts within the sharding groups
    for f, stage, offload in ((1, 3, False), (8, 3, True), (64, 1, False), (16, 2, True)):
        mine = memory.model_parallel_gpu_memory(6e9, 1e9, 64, 1, 1, stage, sharding_factor=f, offload=offload)
        assert mine == memory.sharded_gpu_memory(7e9, 64, f, stage, offload=offload)
    # t = 8 over 64 GPUs: 8 data-parallel copies; sharding within groups of 2 of them
    m = memory.model_parallel_gpu_memory(8e9, 0, 64, tensor_parallel=8, zero_stage=3, sharding_factor=2,
                                         precision="fp32")
    assert m.params == pytest.approx(4 * 8e9 / 8 / 2)
    with pytest.raises(ValueError, match="sharding_factor must divide"):
        memory.model_parallel_gpu_memory(8e9, 0, 64, tensor_parallel=8, sharding_factor=3)


def test_bubble_fraction_is_fill_and_drain_over_the_slots():
    assert memory.bubble_fraction(1, 5) == 0.0          # one stage never waits
    assert memory.bubble_fraction(4, 1) == 0.75         # one micro-batch: 3 of 4 slots idle
    assert memory.bubble_fraction(4, 27) == pytest.approx(0.1)  # m = 9(p - 1) gives 10%
