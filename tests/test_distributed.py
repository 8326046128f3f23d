"""llmlab.distributed (launcher, worker, techniques, tables, explorer): real multi-process runs (gloo on CPU), checked against single-process
training, against the library's own bookkeeping and against llmlab.memory's predictions."""

from __future__ import annotations

import math
import os
import subprocess
import time

import pytest
import torch

from llmlab import memory, widgets
from llmlab.distributed import explorer as dist_explorer
from llmlab.distributed import launcher, results
from llmlab.distributed import tables as dist_tables
from llmlab.records import pipeline_bubble
from llmlab.tinygpt2 import TinyGPT2

# dims that do not divide by 2, so that FSDP's shards are uneven (padding)
ODD = dict(vocab_size=301, n_positions=33, n_embd=36, n_layer=2, n_head=3, n_inner=144)


@pytest.fixture(scope="module")
def odd_run():
    return launcher.run(results.STRATEGIES, 2, steps=3, batch_size=2, seq_len=16, model=ODD,
                           sharding_factor=2, timeout_s=120)


def test_ddp_gradients_equal_single_process_gradients_and_replicas_stay_identical(odd_run):
    ref = odd_run.reference
    assert ref["grad_max_abs"] > 1e-3  # gradients are not all zero
    assert ref["grad_max_abs_diff"] < 1e-6 * max(1.0, ref["grad_max_abs"]) * 10
    for r in odd_run.of("ddp"):
        assert r.extra["max_param_diff_to_rank0"] == 0.0
    assert odd_run.losses("ddp") == pytest.approx(ref["single_process_losses"], abs=1e-5)


def test_all_strategies_follow_the_same_loss_curve(odd_run):
    ddp = odd_run.losses("ddp")
    assert ddp[0] == pytest.approx(math.log(ODD["vocab_size"]), abs=0.1)  # random init: about ln V
    assert ddp[-1] < ddp[0]
    for s in odd_run.strategies:
        assert odd_run.losses(s) == pytest.approx(ddp, abs=1e-5), s


def test_measured_bytes_per_rank_equal_the_shard_by_shard_prediction(odd_run):
    shapes = [tuple(p.shape) for p in TinyGPT2(**ODD).parameters()]
    n_params = memory.gpt_param_count(ODD["n_layer"], ODD["n_embd"], ODD["vocab_size"], ODD["n_positions"])
    assert sum(math.prod(s) for s in shapes) == n_params
    for r in odd_run.ranks:
        f = 2 if r.strategy == "hybrid" else None
        exact = memory.rank_states_exact(shapes, r.strategy, 2, r.rank, f, "fp32", "adam")
        assert (r.params, r.grads, r.optimizer) == (exact.params, exact.grads, exact.optimizer), (r.strategy, r.rank)
        ideal = memory.strategy_states_per_gpu(n_params, r.strategy, 2, f, "fp32", "adam")
        # the ideal figure differs by at most one row per sharded tensor (uneven dim-0 chunks), or,
        # for zero1, by the imbalance of whole parameters
        slack = 16 * sum(math.prod(s[1:]) for s in shapes) if r.strategy != "zero1" else 16 * max(map(math.prod, shapes))
        assert abs(r.model_states - ideal.total) <= slack
    # the two ranks' shards add up to the whole model, for every sharded strategy
    for s in ("zero1", "zero2", "zero3"):
        assert sum(r.optimizer for r in odd_run.of(s)) == 8 * n_params
    # parameters are padded in memory: every rank allocates ceil(d0 / 2) rows of each tensor
    padded = sum(memory.fsdp_padded_shard_numel(s, 2) for s in shapes)
    assert padded > n_params / 2
    assert [r.params for r in odd_run.of("zero3")] == [4 * padded] * 2
    assert [r.params for r in odd_run.of("zero2")] == [4 * 2 * padded] * 2  # gathered, forward to backward


def test_ddp_all_reduces_every_gradient_once_per_step(odd_run):
    n_params = memory.gpt_param_count(ODD["n_layer"], ODD["n_embd"], ODD["vocab_size"], ODD["n_positions"])
    comm = odd_run.of("ddp")[0].comm["bytes"]
    assert comm == {"all_reduce@2": 4 * n_params}
    zero3 = odd_run.of("zero3")[0].comm["bytes"]
    # two all-gathers (forward, backward) and one reduce-scatter, each of the whole model plus padding
    assert 2 * 4 * n_params <= zero3["all_gather_single@2"] <= 2 * 4 * n_params * 1.05
    assert 4 * n_params <= zero3["reduce_scatter_single@2"] <= 4 * n_params * 1.05


def test_a_failing_rank_ends_the_run_promptly_and_leaves_no_process():
    t0 = time.perf_counter()
    with pytest.raises(results.DistributedRunError, match="rank 1 of 2 failed") as err:
        launcher.run(["ddp"], 2, fail_ranks=(1,), timeout_s=60)
    assert time.perf_counter() - t0 < 30
    assert "told to fail" in str(err.value)
    assert len(err.value.pids) == 2
    for pid in err.value.pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def _crashing(monkeypatch, marker):
    """Make rank 0 of the next run kill itself with SIGSEGV (once if ``marker`` is a path, else always)."""
    spec = launcher._spec
    monkeypatch.setattr(launcher, "_spec", lambda *a: dict(spec(*a), crash={"rank": 0, "marker": marker}))


def test_a_rank_crashing_in_native_code_gets_one_fresh_start(monkeypatch, tmp_path):
    _crashing(monkeypatch, str(tmp_path / "crashed-once"))
    result = launcher.run(["ddp"], 2, steps=2, seq_len=8, check_grads=False, timeout_s=60)
    assert len(result.crashes) == 1 and "killed by signal 11 (SIGSEGV)" in result.crashes[0]
    # the faulthandler in the worker printed where the crash happened
    assert "Fatal Python error: Segmentation fault" in result.crashes[0]
    assert len(result.losses("ddp")) == 2


def test_a_second_crash_is_raised(monkeypatch):
    _crashing(monkeypatch, None)
    with pytest.raises(results.DistributedRunError, match="rank 0 of 2 was killed by signal 11") as err:
        launcher.run(["ddp"], 2, steps=2, seq_len=8, check_grads=False, timeout_s=60)
    assert err.value.signal == 11


def test_a_clean_run_records_no_crash(odd_run):
    assert odd_run.crashes == []


def test_a_run_past_its_timeout_is_stopped():
    with pytest.raises(results.DistributedRunError, match="did not finish within") as err:
        launcher.run(["ddp"], 2, timeout_s=0.5)
    for pid in err.value.pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.parametrize("kwargs,message", [
    (dict(strategies=["zero4"], world_size=2), "unknown strategy 'zero4'"),
    (dict(strategies=["ddp"], world_size=launcher.max_world_size("gloo") + 1, backend="gloo"),
     "more than this machine can run"),
    (dict(strategies=["hybrid"], world_size=4, sharding_factor=3), "must divide world_size 4"),
    (dict(strategies=["ddp"], world_size=2, sharding_factor=2), "applies to the 'hybrid' strategy only"),
    (dict(strategies=["ddp", "zero3"], world_size=2, backend="gloo", offload=True), "CPUOffloadPolicy"),
    (dict(strategies=["fsdp_tp"], world_size=4, tensor_parallel=3), "tensor_parallel must divide"),
    (dict(strategies=["tp"], world_size=2, tensor_parallel=2), "add 'fsdp_tp'"),
    (dict(strategies=["ddp"], world_size=0), "world_size must be a whole number >= 1"),
    (dict(strategies=["ddp"], world_size=2, seq_len=1000), "seq_len must be <= n_positions"),
    (dict(strategies=["ddp"], world_size=2, backend="mpi"), "unknown backend"),
])
def test_bad_arguments_raise_before_any_process_starts(monkeypatch, kwargs, message):
    if kwargs.get("world_size") == 4 and launcher.max_world_size("gloo") < 4:
        pytest.skip("this machine cannot run 4 ranks")

    def no_process(*a, **k):
        raise AssertionError("a process was started")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    with pytest.raises(ValueError, match=message):
        launcher.run(**kwargs)


def test_max_world_size_is_two_ranks_per_core():
    assert launcher.max_world_size("gloo") == 2 * len(os.sched_getaffinity(0))


def test_free_port_can_be_bound():
    import socket
    port = launcher.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_tiny_gpt2_computes_what_hugging_face_gpt2_computes():
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = dict(vocab_size=97, n_positions=16, n_embd=24, n_layer=2, n_head=3, n_inner=40)
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(**cfg, activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0,
                                    attn_pdrop=0.0)).eval()
    ours = TinyGPT2(**cfg).eval()
    sd = hf.state_dict()
    new = {"wte.weight": sd["transformer.wte.weight"], "wpe.weight": sd["transformer.wpe.weight"],
           "ln_f.weight": sd["transformer.ln_f.weight"], "ln_f.bias": sd["transformer.ln_f.bias"]}
    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}."
        for ours_name, hf_name in (("qkv", "attn.c_attn"), ("proj", "attn.c_proj"), ("fc", "mlp.c_fc"),
                                   ("fc_out", "mlp.c_proj")):
            new[f"h.{i}.{ours_name}.weight"] = sd[p + hf_name + ".weight"].T  # Conv1D is (in, out)
            new[f"h.{i}.{ours_name}.bias"] = sd[p + hf_name + ".bias"]
        for ln in ("ln_1", "ln_2"):
            new[f"h.{i}.{ln}.weight"], new[f"h.{i}.{ln}.bias"] = sd[p + ln + ".weight"], sd[p + ln + ".bias"]
    ours.load_state_dict(new)
    ids = torch.randint(0, cfg["vocab_size"], (2, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), hf(input_ids=ids).logits, atol=1e-5, rtol=1e-5)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in hf.parameters())


def test_fsdp_shards_are_torch_chunk_pieces():
    for rows in (1, 5, 7, 8, 1001):
        for n in (1, 2, 3, 4):
            pieces = torch.arange(rows * 3).view(rows, 3).chunk(n)
            sizes = [p.numel() for p in pieces] + [0] * (n - len(pieces))
            assert [memory.fsdp_shard_numel((rows, 3), n, i) for i in range(n)] == sizes


def test_zero1_partition_balances_whole_parameters_greedily():
    assert memory.zero1_partition([10, 7, 5, 3, 1], 2) == [0, 1, 1, 0, 1]  # 10+3 | 7+5+1
    assert memory.zero1_partition([4, 4, 4], 4) == [0, 1, 2]


def test_sharding_factor_one_is_ddp_and_full_factor_is_the_zero_stage():
    ddp = memory.model_states_per_gpu(7e9, 1, 0)
    assert memory.sharded_gpu_memory(7e9, 64, 1, zero_stage=3).params == ddp.params
    z3 = memory.model_states_per_gpu(7e9, 64, 3)
    m = memory.sharded_gpu_memory(7e9, 64, 64, zero_stage=3)
    assert (m.params, m.grads, m.optimizer) == (z3.params, z3.grads, z3.optimizer)
    hybrid = memory.sharded_gpu_memory(7e9, 64, 8, zero_stage=3)
    assert hybrid.params == pytest.approx(7e9 * 2 / 8)
    off = memory.sharded_gpu_memory(7e9, 64, 8, zero_stage=3, offload=True)
    assert off.grads == off.optimizer == 0 and off.offloaded == pytest.approx(hybrid.grads + hybrid.optimizer)
    with pytest.raises(ValueError, match="must divide"):
        memory.sharded_gpu_memory(7e9, 64, 3)


def test_textbook_communication_volumes():
    assert dist_tables.textbook_comm_bytes("ddp", 100, 4) == pytest.approx(2 * 400 * 3 / 4)
    assert dist_tables.textbook_comm_bytes("zero3", 100, 4) == pytest.approx(3 * 400 * 3 / 4)
    assert dist_tables.textbook_comm_bytes("hybrid", 100, 4, 4) == dist_tables.textbook_comm_bytes("zero3", 100, 4)


def test_static_explorer_has_a_few_hundred_distinct_frames():
    html = widgets.static_sharding_explorer().data
    assert 'data-frames="432"' in html
    assert len(html) < 300_000
    a, _ = dist_explorer.explorer_memory("175B", 64, 1, 3, "mixed", False)
    b, f = dist_explorer.explorer_memory("175B", 64, 0, 3, "mixed", False)
    assert f == 64
    assert a.total > dist_explorer.GPU_BYTES > b.total


@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs")
def test_nccl_run_measures_peak_memory_and_matches_prediction():
    r = launcher.run(["ddp", "zero3"], 2, backend="nccl", steps=2)
    for x in r.ranks:
        exact = memory.rank_states_exact(r.param_shapes, x.strategy, 2, x.rank, None, "fp32", "adam")
        assert x.model_states == exact.total
        assert x.peak_cuda_bytes >= exact.total


def test_every_rank_measures_a_peak_above_what_it_holds_at_entry(odd_run):
    table = dist_tables.peak_table(odd_run)
    act = dist_tables.predicted_activation_bytes(odd_run)
    assert len(table) == len(odd_run.ranks)
    # the step allocates at least the activations the calculator predicts for it, give or take half
    assert (table["peak_above_entry"] > 0.5 * act).all()
    assert (table["measured_peak"] == table["held_at_entry"] + table["peak_above_entry"]).all()


def test_ddp_peak_split_holds_the_model_states_and_the_activations(odd_run):
    n_params = memory.gpt_param_count(ODD["n_layer"], ODD["n_embd"], ODD["vocab_size"], ODD["n_positions"])
    act = dist_tables.predicted_activation_bytes(odd_run)
    for r in odd_run.of("ddp"):
        split = r.peak["at_peak"]
        assert split is not None, r.peak["note"]
        assert split["parameters"] == 4 * n_params
        assert 8 * n_params <= split["optimizer_state"] <= 8 * n_params + 4 * 64  # + Adam's step counters
        # every gradient lives in DDP's buckets; the tied embedding's second contribution is a temporary
        tied = 4 * ODD["vocab_size"] * ODD["n_embd"]
        assert 4 * n_params <= split["gradients"] <= 4 * n_params + tied + 4096
        live_act = split["activations"] + split["autograd_detail"] + split["temporary"]
        assert 0.7 * act <= live_act <= 2.0 * act, (live_act, act)


def test_predicted_activations_follow_korthikanti_without_dropout(odd_run):
    s, b, h, v, L = 16, 2, ODD["n_embd"], ODD["vocab_size"], ODD["n_layer"]
    # fp32 values: twice the paper's 16-bit 32·s·b·h per layer, plus 4·s·b·v for logits and loss
    assert dist_tables.predicted_activation_bytes(odd_run) == L * 64 * s * b * h + 4 * s * b * v


# ------------------------------------------------------------------ tensor and pipeline parallelism

LLAMA = {"num_hidden_layers": 4}  # the default TinyLlamaConfig: width 128, 8 heads, 4 key-value heads
MP_TOL = 1e-5  # float32: the split sums add in another order


@pytest.fixture(scope="module")
def mp_run():
    return launcher.run(["tp", "pp"], 2, steps=3, batch_size=2, seq_len=16, llama=LLAMA, microbatches=2,
                           pp_schedule="gpipe", bubble_microbatches=(1, 2), bubble_repeats=1, timeout_s=180)


@pytest.mark.parametrize("strategy", ["tp", "pp"])
def test_model_parallel_losses_and_gradients_equal_one_process(mp_run, strategy):
    ranks = mp_run.of(strategy)
    ref = ranks[0].extra["single_process_losses"]
    assert mp_run.losses(strategy)[-1] < mp_run.losses(strategy)[0]  # it trains
    assert mp_run.losses(strategy) == pytest.approx(ref, abs=MP_TOL)
    for r in ranks:
        assert r.extra["grad_max_abs"] > 1e-3
        assert r.extra["grad_max_abs_diff"] < MP_TOL * max(1.0, r.extra["grad_max_abs"])


def _llama_block_and_other_params():
    from llmlab.tinyllama import TinyLlama, TinyLlamaConfig

    whole = TinyLlama(TinyLlamaConfig())
    blocks = sum(p.numel() for n, p in whole.named_parameters() if n.startswith("layers.") and "norm" not in n)
    rest = sum(p.numel() for p in whole.parameters()) - blocks
    return blocks, rest


def test_tensor_parallel_shards_and_all_reduces(mp_run):
    blocks, rest = _llama_block_and_other_params()
    b, t, c = 2 * 2, 16, 128
    for r in mp_run.of("tp"):
        assert r.params == 4 * (blocks // 2 + rest)
        # per block: 2 all-reduces forward (after o_proj, down_proj), 5 backward (inputs of q, k, v, gate, up)
        assert r.comm["calls"] == {"all_reduce@2": 4 * (2 + 5)}
        assert r.comm["bytes"] == {"all_reduce@2": 4 * 7 * b * t * c * 4}


def test_pipeline_sends_each_micro_batch_across_the_boundary(mp_run):
    b, t, c = 2 * 2, 16, 128
    for r in mp_run.of("pp"):
        # rank 0 sends activations forward, rank 1 their gradients back: 2 micro-batches of (b/2, t, c)
        assert r.comm["calls"] == {"send@2": 2}
        assert r.comm["bytes"] == {"send@2": b * t * c * 4}
    names = [set(r.extra["param_names"]) for r in mp_run.of("pp")]
    assert "embed_tokens.weight" in names[0] and "lm_head.weight" in names[1]
    assert not names[0] & names[1]


def test_pipeline_idle_fraction_is_measured_for_each_micro_batch_count(mp_run):
    table = dist_tables.bubble_table(mp_run)
    assert set(table["microbatches"]) == {1, 2}
    assert table["idle_measured"].between(0, 1).all()
    # one micro-batch: each stage waits for the other's whole forward or backward (formula 1/2)
    one = table[(table["schedule"] == "gpipe") & (table["microbatches"] == 1)]
    assert one["idle_measured"].mean() > 0.25
    assert memory.bubble_fraction(2, 1) == 0.5 and memory.bubble_fraction(4, 12) == 0.2


def test_model_parallel_on_four_ranks_equals_one_process():
    run = launcher.run(["tp", "pp"], 4, steps=2, batch_size=1, seq_len=16, llama=LLAMA, microbatches=4,
                          timeout_s=240)
    for s in ("tp", "pp"):
        assert run.losses(s) == pytest.approx(run.of(s)[0].extra["single_process_losses"], abs=MP_TOL)
        assert max(r.extra["grad_max_abs_diff"] for r in run.of(s)) < MP_TOL
    assert run.of("tp")[0].comm["calls"] == {"all_reduce@4": 28}


def test_the_same_worker_runs_under_torchrun(tmp_path):
    import sys
    from pathlib import Path

    spec = launcher.write_spec(tmp_path, ["ddp"], 2, steps=2, batch_size=2, seq_len=16, model=ODD)
    root = str(Path(launcher.__file__).resolve().parents[2])
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           "-m", "llmlab.distributed.worker", str(spec)], env=env, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = results.read_results(spec)
    assert [r.rank for r in result.ranks] == [0, 1]
    ref = result.reference
    assert ref["grad_max_abs_diff"] < 1e-5
    assert result.losses("ddp") == pytest.approx(ref["single_process_losses"], abs=1e-5)


def test_calculator_per_gpu_parameters_match_the_tensor_and_pipeline_runs(mp_run):
    from llmlab.tinyllama import TinyLlama, TinyLlamaConfig

    whole = TinyLlama(TinyLlamaConfig())
    named = dict(whole.named_parameters())
    in_blocks = sum(p.numel() for n, p in named.items() if n.startswith("layers."))
    block_norms = sum(p.numel() for n, p in named.items() if n.startswith("layers.") and "norm" in n)
    embed = named["embed_tokens.weight"].numel()
    head = named["lm_head.weight"].numel() + named["norm.weight"].numel()
    # tensor parallel, 2 ranks: the blocks split, the embeddings, head and final norm whole on each
    tp = memory.model_parallel_gpu_memory(in_blocks, embed + head, 2, tensor_parallel=2, zero_stage=0,
                                          precision="fp32")
    for r in mp_run.of("tp"):
        # the calculator splits the blocks' norms too; the run keeps them whole (4 bytes each)
        assert r.params == tp.params + 4 * block_norms // 2
    # pipeline, 2 stages: half the blocks and the heavier end (the head and final norm) on the last stage
    pp = memory.model_parallel_gpu_memory(in_blocks, max(embed, head), 2, pipeline_parallel=2, zero_stage=0,
                                          precision="fp32")
    assert max(r.params for r in mp_run.of("pp")) == pp.params
    assert pp.optimizer == 2 * pp.params  # Adam: two fp32 states per parameter


def test_tensor_parallel_activations_follow_korthikanti_section_4():
    s, b, h, a = 2048, 1, 4096, 32
    # 16-bit, with dropout, no sequence parallelism: s·b·h·(10 + 24/t + 5·a·s/(h·t)) per layer
    for t in (1, 2, 8):
        expected = s * b * h * (10 + 24 / t + 5 * a * s / (h * t))
        assert memory.activation_bytes(1, h, a, s, b, "korthikanti", tensor_parallel=t) == pytest.approx(expected)
        assert memory.activation_bytes(1, h, a, s, b, "selective", tensor_parallel=t) == pytest.approx(
            s * b * h * (10 + 24 / t))


def test_parallelism_explorer_frames_use_the_calculator_and_the_bubble():
    mem, bubble = dist_explorer.explorer_parallel_memory("175B", 512, 8, 8, 16)
    assert bubble == pytest.approx(7 / 23)
    states = memory.model_parallel_gpu_memory(12 * 96 * 12288 ** 2, 175e9 - 12 * 96 * 12288 ** 2, 512, 8, 8, 1)
    assert mem.params == states.params and mem.optimizer == states.optimizer
    # more tensor parallelism: less memory per GPU
    assert dist_explorer.explorer_parallel_memory("175B", 512, 8, 8, 16)[0].total < \
        dist_explorer.explorer_parallel_memory("175B", 512, 2, 8, 16)[0].total
    html = widgets.static_parallelism_explorer().data
    assert html.count('"title"') >= 300


def test_model_parallel_peaks_are_near_the_calculator_with_activations(mp_run):
    table = dist_tables.model_parallel_peak_table(mp_run)
    assert list(table["strategy"]) == ["tp", "tp", "pp", "pp"]
    # model states plus Korthikanti's activations (split by t, or per micro-batch in flight): within a third
    ratio = table["measured_peak"] / table["predicted_peak"]
    assert ratio.between(0.67, 1.5).all(), ratio.tolist()
    assert (table["peak_above_entry"] > 0.5 * table["predicted_activations"]).all()


def test_gpipe_keeps_more_micro_batches_alive_than_1f1b():
    runs = {s: launcher.run(["pp"], 2, steps=2, batch_size=4, seq_len=16, llama=LLAMA, microbatches=8,
                               pp_schedule=s, timeout_s=180) for s in ("gpipe", "1f1b")}
    first = {s: r.of("pp")[0].peak["peak_bytes"] for s, r in runs.items()}
    # rank 0 holds all 8 micro-batches' activations under GPipe, at most 2 (the stages) under 1F1B
    assert first["gpipe"] > 1.5 * first["1f1b"], first
    for s, r in runs.items():
        assert r.losses("pp") == pytest.approx(r.of("pp")[0].extra["single_process_losses"], abs=MP_TOL)


def test_recorded_bubble_grid_is_stamped_and_complete():
    table, stamp = pipeline_bubble.load()
    assert stamp["code_version"] != "unknown" and stamp["machine"]["backend"] == "gloo"
    plan = stamp["plan"]
    assert set(table["stages"]) <= set(plan["world_sizes"]) and set(table["micro_batch_size"]) == set(plan["micro_batch_sizes"])
    assert table["idle_measured"].between(0, 1).all()
    for _, row in table.iterrows():
        assert row["bubble_formula"] == pytest.approx(memory.bubble_fraction(int(row["stages"]), int(row["microbatches"])))


# ------------------------------------------------------------------ 2-D: FSDP across rows, tensor parallel within


@pytest.fixture(scope="module")
def fsdp_tp_run():
    if launcher.max_world_size("gloo") < 4:
        pytest.skip("this machine cannot run 4 ranks")
    return launcher.run(["fsdp_tp"], 4, steps=3, batch_size=2, seq_len=16, llama=LLAMA, tensor_parallel=2,
                           timeout_s=240)


def test_fsdp_tp_losses_and_gradients_equal_one_process(fsdp_tp_run):
    ranks = fsdp_tp_run.of("fsdp_tp")
    assert len(ranks) == 4 and fsdp_tp_run.settings["tensor_parallel"] == 2
    ref = ranks[0].extra["single_process_losses"]
    losses = fsdp_tp_run.losses("fsdp_tp")
    assert losses[-1] < losses[0]
    assert losses == pytest.approx(ref, abs=MP_TOL)
    for r in ranks:
        assert r.extra["grad_max_abs"] > 1e-3
        assert r.extra["grad_max_abs_diff"] < MP_TOL * max(1.0, r.extra["grad_max_abs"])
    # the two ranks of a tensor-parallel row see the same rows of the batch, the two rows different ones
    assert ranks[0].losses == ranks[1].losses and ranks[2].losses == ranks[3].losses
    assert ranks[0].losses != ranks[2].losses


def test_fsdp_tp_counts_tensor_and_fsdp_collectives(fsdp_tp_run):
    blocks, rest = _llama_block_and_other_params()  # rest: embeddings, head and every norm, kept whole
    row_local = blocks // 2 + rest  # one tensor-parallel rank's parameters (before FSDP)
    b_row, t, c = 2 * 2, 16, 128  # a row trains on its half of the global batch of 8 sequences
    for r in fsdp_tp_run.of("fsdp_tp"):
        assert r.params == 4 * row_local // 2  # then FSDP halves it again across the 2 rows
        calls, sent = r.comm["calls"], r.comm["bytes"]
        # tensor parallel within the row: 7 all-reduces per block of a (b_row, t, c) activation
        assert calls["all_reduce@2"] == 4 * 7 and sent["all_reduce@2"] == 4 * 7 * b_row * t * c * 4
        # FSDP across the rows: every unit (4 blocks, the root) gathered in forward and in backward,
        # its gradients reduce-scattered once; the gathered bytes are the row's whole shard
        gathers = {k: v for k, v in calls.items() if k.startswith("all_gather")}
        scatters = {k: v for k, v in calls.items() if k.startswith("reduce_scatter")}
        assert sum(gathers.values()) == 10 and sum(scatters.values()) == 5
        assert sum(v for k, v in sent.items() if k.startswith("all_gather")) == 2 * 4 * row_local
        assert sum(v for k, v in sent.items() if k.startswith("reduce_scatter")) == 4 * row_local
    table = dist_tables.model_parallel_table(fsdp_tp_run)
    assert (table["calls"] == table["expected_calls"]).all()
    assert (table["bytes_sent"] == table["expected_bytes"]).all()


def test_fsdp_tp_states_and_peak_against_the_calculator(fsdp_tp_run):
    states = dist_tables.fsdp_tp_states(fsdp_tp_run)
    for r in fsdp_tp_run.of("fsdp_tp"):
        # the calculator splits the blocks' norms by t too; the run keeps them whole: within 0.2%
        assert r.params == pytest.approx(states.params, rel=2e-3)
        assert r.optimizer == pytest.approx(states.optimizer, rel=2e-3)
    table = dist_tables.model_parallel_peak_table(fsdp_tp_run)
    ratio = table["measured_peak"] / table["predicted_peak"]
    assert ratio.between(0.67, 1.5).all(), ratio.tolist()


def test_cpu_offload_policy_runs_on_gloo_and_changes_nothing_but_time():
    kw = dict(steps=2, batch_size=2, seq_len=16, model=ODD, timeout_s=120)
    on = launcher.run(["zero3"], 2, offload=True, **kw)
    off = launcher.run(["zero3"], 2, **kw)
    assert on.settings["offload"] is True and off.settings["offload"] is False
    assert on.losses("zero3") == pytest.approx(off.losses("zero3"), abs=1e-6)
    for a, b in zip(on.ranks, off.ranks):
        assert (a.params, a.grads, a.optimizer) == (b.params, b.grads, b.optimizer)
        assert a.extra["param_devices"] == ["cpu"]  # host and "device" are the same memory here


# ------------------------------------------------------------------ the explorers against the runs

EXPLORER_TOL = 2e-3  # relative: the calculator splits the blocks' norms by t, the runs keep them whole


def _tiny_llama_shape():
    from llmlab.tinyllama import TinyLlama, TinyLlamaConfig

    cfg = TinyLlamaConfig()
    named = dict(TinyLlama(cfg).named_parameters())
    total = sum(p.numel() for p in named.values())
    blocks = sum(p.numel() for n, p in named.items() if n.startswith("layers."))
    first = named["embed_tokens.weight"].numel()
    last = named["lm_head.weight"].numel() + named["norm.weight"].numel()
    return dist_explorer.ExplorerModel(total, cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads,
                                     blocks, first, last)


def test_explorer_per_rank_states_match_the_tensor_and_pipeline_runs(mp_run):
    shape = _tiny_llama_shape()
    tp, _ = dist_explorer.explorer_memory(shape, 2, 1, 0, "fp32", False, tensor_parallel=2)
    for r in mp_run.of("tp"):
        assert r.params == pytest.approx(tp.params, rel=EXPLORER_TOL)
        assert r.grads == pytest.approx(tp.grads, rel=EXPLORER_TOL)
        assert r.optimizer == pytest.approx(tp.optimizer, rel=EXPLORER_TOL)
    pp, _ = dist_explorer.explorer_memory(shape, 2, 1, 0, "fp32", False, pipeline_parallel=2, microbatches=2)
    heaviest = max(mp_run.of("pp"), key=lambda r: r.params)
    assert heaviest.params == pytest.approx(pp.params, rel=EXPLORER_TOL)
    assert heaviest.optimizer == pytest.approx(pp.optimizer, rel=EXPLORER_TOL)
    # the bubble the explorer shows is the formula the pipeline run is measured against
    assert memory.bubble_fraction(2, 2) == pytest.approx(1 / 3)


def test_explorer_per_rank_states_match_the_2d_run(fsdp_tp_run):
    shape = _tiny_llama_shape()
    mem, f = dist_explorer.explorer_memory(shape, 4, 0, 3, "fp32", False, tensor_parallel=2)
    assert f == 2  # all the data-parallel copies: the 2 rows
    for r in fsdp_tp_run.of("fsdp_tp"):
        assert r.params == pytest.approx(mem.params, rel=EXPLORER_TOL)
        assert r.optimizer == pytest.approx(mem.optimizer, rel=EXPLORER_TOL)


def test_explorer_with_one_tensor_and_one_pipeline_rank_is_the_sharding_calculator():
    for f, stage in ((1, 3), (8, 3), (0, 1), (0, 2)):
        mem, used = dist_explorer.explorer_memory("13B", 64, f, stage, "mixed", True)
        want = memory.sharded_gpu_memory(13e9, 64, used, stage, "mixed", "adam", True, mem.activations)
        assert (mem.params, mem.grads, mem.optimizer, mem.offloaded) == pytest.approx(
            (want.params, want.grads, want.optimizer, want.offloaded))
    # more tensor or pipeline parallelism: fewer bytes of model states per GPU
    base, _ = dist_explorer.explorer_memory("175B", 512, 0, 1, "mixed", False)
    split, _ = dist_explorer.explorer_memory("175B", 512, 0, 1, "mixed", False, tensor_parallel=8,
                                          pipeline_parallel=8, microbatches=16)
    # the blocks divide by t·p = 64; the embeddings (about 1 of the 175 billion) stay whole on a stage
    assert base.params / 64 < split.params < base.params / 40
    with pytest.raises(ValueError, match="must divide"):
        dist_explorer.explorer_memory("175B", 512, 0, 1, "mixed", False, tensor_parallel=3)


def test_the_bubble_record_is_stamped_and_reads_back(tmp_path):
    plan = {"world_sizes": (2,), "micro_batch_sizes": (2,), "microbatches": (2,), "repeats": 1, "seq_len": 16}
    record = pipeline_bubble.run(tmp_path / "bubble.json", plan)
    assert record["command"] == "python -m llmlab.records.pipeline_bubble"
    assert {"code_version", "made"} <= set(record) and record["machine"]["backend"] == "gloo"
    table, stamp = pipeline_bubble.load(tmp_path / "bubble.json")
    assert len(table) == 2 * 2  # both schedules, both ranks
    assert stamp["plan"]["microbatches"] == [2]
