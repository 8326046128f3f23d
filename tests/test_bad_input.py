"""Bad input to the public API raises a clear ValueError or TypeError that names the argument.

Table-driven: each case is (module, public name, args, kwargs, expected exception, message regex).
A raw error from deep inside (IndexError, KeyError, ZeroDivisionError, a torch RuntimeError) or a
silent result fails the case. ``test_every_public_function_has_a_bad_input_case`` fails when a
module in MODULES gains a public function with no case here, so new functions must add one.
Everything is fast: tiny models built here, no real-model loading, no process launches
(distributed.run must refuse its arguments before it starts any).
"""

from __future__ import annotations

import importlib
import inspect
import random
import re

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from llmlab import attention
from llmlab.train import TrainConfig

MODULES = ["attention", "memory", "train", "domain", "bench", "distributed", "quant", "metrics", "data",
           "scaling", "scaling_fits", "sweep", "prompt_tuning", "sampling", "zoo", "objectives", "quality", "lifecycle", "device",
           "gguf_blocks", "quant_real", "train_memory", "tables", "recipes", "tokenization",
           "memorization", "dist_results", "dist_tables", "dist_explorer", "stats",
           "diagrams"]

NAN, INF = float("nan"), float("inf")


def tiny_gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=20, n_positions=16,
                                      bos_token_id=0, eos_token_id=0)).eval()


MODEL = tiny_gpt2()
IDS = torch.randint(0, 20, (200,))
CFG = TrainConfig(steps=2, batch_size=2, seq_len=8, warmup_steps=1, eval_every=2, eval_batches=1)
NAME = "stories-1m"            # a model name where a model is expected
MODEL_HINT = r"model.*zoo\.load"


def case(module, name, args=(), kwargs=None, exc=(ValueError, TypeError), match=""):
    return pytest.param(module, name, tuple(args), dict(kwargs or {}), exc, match,
                        id=re.sub(r"\s+", " ", f"{module}.{name}({', '.join(map(repr, args))[:40]}{', ' if args and kwargs else ''}"
                           f"{', '.join(f'{k}={v!r}' for k, v in (kwargs or {}).items())[:40]})"))


T, V = ValueError, TypeError


def plt_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.figure().add_subplot()

q = torch.randn(1, 2, 4)
CASES = [
    # ------------------------------------------------------------------ attention
    case("attention", "causal_mask", [0], match="t_q"),
    case("attention", "causal_mask", [2.5], exc=V, match="t_q"),
    case("attention", "causal_mask", ["3"], exc=V, match="t_q"),
    case("attention", "padding_mask", [torch.tensor([[2, 0]])], match="attention_mask"),
    case("attention", "padding_mask", [[[1, 0]]], exc=V, match="attention_mask"),
    case("attention", "scaled_dot_product_attention", [q, q, q], {"mask": torch.tensor([[2, 0], [1, 1]])}, match="mask"),
    case("attention", "scaled_dot_product_attention", [q, q, q], {"mask": torch.tensor([[1.0, 0.0], [1.0, 1.0]])}, match="mask"),
    case("attention", "scaled_dot_product_attention", [[[1.0]], q, q], exc=V, match="q must be a torch.Tensor"),
    case("attention", "scaled_dot_product_attention", [q, q, q], {"scale": 0}, match="scale"),
    case("attention", "scaled_dot_product_attention", [q, q, q], {"mask": torch.ones(3, 3, dtype=torch.bool)}, match="mask"),
    case("attention", "MultiHeadAttention", [8, 3], match="n_heads"),
    case("attention", "MultiHeadAttention", [8.0, 2], exc=V, match="d_model"),
    case("attention", "sinusoidal_positional_encoding", [0, 8], match="n_positions"),
    case("attention", "sinusoidal_positional_encoding", [4, 7], match="d_model"),
    case("attention", "sinusoidal_positional_encoding", [4.0, 8], exc=V, match="n_positions"),
    case("attention", "gpt2_forward", [NAME, torch.zeros(1, 3, dtype=torch.long)], exc=V, match=MODEL_HINT),
    case("attention", "gpt2_forward", [MODEL, torch.tensor([[1, 25]])], match="input_ids.*vocabulary"),
    case("attention", "attention_maps", [NAME, None, "hi"], exc=V, match=MODEL_HINT),
    case("attention", "contextual_vector", [NAME, None, "a cat", "cat"], exc=V, match=MODEL_HINT),
    case("attention", "plot_attention", [None, [[0.5]], ["a"]], exc=V, match="weights"),
    case("attention", "plot_attention", [None, torch.ones(2, 2), "ab"], exc=V, match="tokens"),
    case("attention", "head_scores", [torch.ones(1, 1, 3, 3), 0], match="first_query"),
    case("attention", "head_scores", [torch.ones(1, 1, 3, 3), 1.5], exc=V, match="first_query"),
    case("attention", "strongest_head", [[[0.1, 0.2]]], exc=V, match="score"),
    case("attention", "next_token_probabilities", [NAME, None, "hi"], exc=V, match=MODEL_HINT),
    # ------------------------------------------------------------------ diagrams
    case("diagrams", "decoder_stack", [], {"norm": ""}, exc=V, match="norm"),
    case("diagrams", "decoder_stack", [], {"mlp": 3}, exc=V, match="mlp"),
    case("diagrams", "draw_decoder", [None, [("a", "io", False)], 2], exc=V, match="ax"),
    case("diagrams", "draw_decoder", [plt_axes(), [("a", "what", False)], 2], exc=T, match="boxes"),
    case("diagrams", "draw_decoder", [plt_axes(), [("a", "io", False)], 0], exc=T, match="n_layers"),
    # ------------------------------------------------------------------ memory
    case("memory", "bytes_per_param", ["fp8"], match="precision"),
    case("memory", "bytes_per_param", ["mixed", "sgd2"], match="optimizer"),
    case("memory", "model_states_per_gpu", [-1], match="n_params"),
    case("memory", "model_states_per_gpu", [NAN], match="n_params"),
    case("memory", "model_states_per_gpu", [1e9, 0], match="n_gpus"),
    case("memory", "model_states_per_gpu", [1e9, 8, 4], match="zero_stage"),
    case("memory", "activation_bytes", [0, 8, 2, 16], match="n_layers"),
    case("memory", "activation_bytes", [2, 8, 2, 16], {"method": "magic"}, match="method"),
    case("memory", "activation_bytes", [2, 8, 2, 16], {"dropout": "no"}, exc=V, match="dropout"),
    case("memory", "activation_bytes", [2, 8, 2, 16], {"vocab_size": 0}, match="vocab_size"),
    case("memory", "activation_bytes", [2, 8, 2, 16], {"tensor_parallel": 0}, match="tensor_parallel"),
    case("memory", "model_parallel_gpu_memory", [1e9, 1e8, 64, 3], match="must divide"),
    case("memory", "model_parallel_gpu_memory", [-1.0, 1e8, 64], match="split_params"),
    case("memory", "model_parallel_gpu_memory", [1e9, 1e8, 0], match="n_gpus"),
    case("memory", "gpt_param_count", [2, 0, 100], match="hidden"),
    case("memory", "gpt_param_count", [2, 8, 100, -1], match="seq_len"),
    case("memory", "training_memory", [1e9], {"batch_size": 0}, match="batch_size"),
    case("memory", "training_memory", [1e9], {"activations": "lots"}, match="activation"),
    case("memory", "measure_model_states", [NAME], exc=V, match=MODEL_HINT),
    case("memory", "measure_model_states", [MODEL, "adam"], exc=V, match="optimizer"),
    case("memory", "cuda_peak_training_bytes", [NAME, IDS[None, :8]], exc=V, match=MODEL_HINT),
    case("memory", "saved_activation_bytes", [NAME, IDS[None, :8]], exc=V, match=MODEL_HINT),
    case("memory", "saved_activation_bytes", [MODEL, torch.tensor([[1, 2, 99]])], match="input_ids"),
    case("memory", "shard_group_size", ["zero4", 4], match="strategy"),
    case("memory", "shard_group_size", ["hybrid", 4, 3], match="sharding_factor"),
    case("memory", "strategy_states_per_gpu", [1e6, "ddp", 0], match="n_gpus"),
    case("memory", "fsdp_shard_numel", [(4, 4), 2, 2], match="index"),
    case("memory", "fsdp_shard_numel", [(4, -4), 2, 0], match="shape"),
    case("memory", "fsdp_shard_numel", ["44", 2, 0], exc=V, match="shape"),
    case("memory", "zero1_partition", [[4, -1], 2], match="numels"),
    case("memory", "zero1_partition", [[4, 4], 0], match="n_ranks"),
    case("memory", "rank_states_exact", [[(10, -4)], "zero3", 2, 0], match="param_shapes"),
    case("memory", "rank_states_exact", [[(10, 4)], "zero3", 2, 2], match="rank"),
    case("memory", "rank_states_exact", [[(10, 4)], "zero3", 2, 1.0], exc=V, match="rank"),
    case("memory", "sharded_gpu_memory", [1e9, 8, 3], match="sharding_factor"),
    case("memory", "sharded_gpu_memory", [1e9, 8, 8], {"activations": -1}, match="activations"),
    case("memory", "sharded_gpu_memory", [1e9, 8, 8], {"activations": NAN}, match="activations"),
    # ------------------------------------------------------------------ train
    case("train", "TrainConfig", [], {"lr": NAN}, match="lr"),
    case("train", "TrainConfig", [], {"lr": INF}, match="lr"),
    case("train", "TrainConfig", [], {"lr": "3e-3"}, exc=V, match="lr"),
    case("train", "TrainConfig", [], {"grad_clip": -1.0}, match="grad_clip"),
    case("train", "TrainConfig", [], {"weight_decay": -0.1}, match="weight_decay"),
    case("train", "TrainConfig", [], {"min_lr_ratio": -0.5}, match="min_lr_ratio"),
    case("train", "TrainConfig", [], {"min_lr_ratio": 1.5}, match="min_lr_ratio"),
    case("train", "TrainConfig", [], {"steps": 10.0}, exc=V, match="steps"),
    case("train", "TrainConfig", [], {"steps": 0}, match="steps"),
    case("train", "TrainConfig", [], {"steps": "100"}, exc=V, match="steps"),
    case("train", "TrainConfig", [], {"warmup_steps": -1}, match="warmup_steps"),
    case("train", "check_corpus", ["one story"], match="list of strings"),
    case("train", "learning_rate", [0, {"lr": 1e-3}], exc=V, match="TrainConfig"),
    case("train", "learning_rate", [-1, CFG], match="step"),
    case("train", "random_batch", [IDS, 0, 8, torch.Generator()], match="batch_size"),
    case("train", "random_batch", [IDS, 2, 8, 42], exc=V, match="generator"),
    case("train", "random_batch", [IDS.float(), 2, 8, torch.Generator()], exc=V, match="ids"),
    case("train", "cross_entropy", [torch.randn(2, 5), torch.tensor([1, 7])], match="targets"),
    case("train", "causal_lm_loss", [NAME, IDS[None, :4], IDS[None, 1:5]], exc=V, match=MODEL_HINT),
    case("train", "causal_lm_loss", [MODEL, torch.tensor([[1, 30]]), torch.tensor([[1, 2]])], match="x.*vocabulary"),
    case("train", "make_optimizer", [MODEL, CFG, "gpu"], match="device"),
    case("train", "make_optimizer", [NAME, CFG, "cpu"], exc=V, match=MODEL_HINT),
    case("train", "make_optimizer", [MODEL, {"lr": 1e-3}, "cpu"], exc=V, match="TrainConfig"),
    case("train", "evaluate", [MODEL, IDS, CFG, "tpu"], match="device"),
    case("train", "train_causal_lm", [NAME, IDS, IDS, CFG], exc=V, match=MODEL_HINT),
    case("train", "train_causal_lm", [MODEL, IDS, IDS, {"steps": 2}], exc=V, match="TrainConfig"),
    case("train", "train_causal_lm", [MODEL, IDS, IDS, CFG], {"device": "gpu0"}, match="device"),
    case("train", "train_loop", [MODEL, CFG, "cpu", None, None], exc=V, match="batch_loss"),
    case("train", "train_loop", [MODEL, CFG, "quantum", lambda g: None, lambda: 0.0], match="device"),
    # ------------------------------------------------------------------ domain
    case("domain", "word_pieces", [None, 5], exc=V, match="text"),
    case("domain", "fertility", [None, []], match="texts"),
    case("domain", "fertility_table", [[], {}], exc=V, match="tokenizers"),
    case("domain", "generate_domain_document", [42, "medical"], exc=V, match=r"rng.*random\.Random\(42\)"),
    case("domain", "generate_domain_document", [random.Random(0), "cooking"], match="domain"),
    case("domain", "generate_domain_corpus", [0], match="n_per_domain"),
    case("domain", "generate_domain_corpus", [2.5], exc=V, match="n_per_domain"),
    case("domain", "write_domain_corpus", ["/tmp/x.txt.gz", -1], match="n_per_domain"),
    case("domain", "load_domain_corpus", ["test"], match="split"),
    case("domain", "mix_documents", ["abc", ["b"], 0.5, 4], exc=V, match="domain_docs"),
    case("domain", "mix_documents", [["a"], ["b"], 1.5, 4], match="domain_fraction"),
    case("domain", "mix_documents", [["a"], ["b"], 0.5, 0], match="n_docs"),
    case("domain", "encode_documents", [None, "one doc"], exc=V, match="docs"),
    case("domain", "token_share", [None, "abc", ["b"]], exc=V, match="domain_docs"),
    case("domain", "held_out_losses", [MODEL, None, {}], match="texts must name"),
    case("domain", "split_sentences", [42], exc=V, match="doc must be a string"),
    case("domain", "hold_out_phrases", [["a doc"], "mens rea"], match="phrases must be a non-empty list"),
    case("domain", "hold_out_phrases", [[]], match="docs is empty"),
    case("domain", "phrase_counts", [["a doc"], [""]], match="phrases must hold only non-empty"),
    case("domain", "domain_tokenizer", [0], match="vocab_size must be a positive int"),
    case("domain", "mix_by_tokens", ["stories-1m", ["a"], ["b"], 0.5, 10], exc=V, match="tokenizer"),
    case("domain", "nats_per_byte", [NAME, None, ["a"]], exc=V, match=MODEL_HINT),
    case("domain", "fresh_model", [None], exc=V, match="tokenizer"),
    case("domain", "run_setup", ["resumed", 1.0, ["b"]], match="start must be"),
    case("domain", "run_setup", ["scratch", 1.5, ["b"]], match="domain_share"),
    case("domain", "load_record", [42], exc=V, match="folder must be"),
    case("domain", "main", [["--no-such-flag"]], exc=SystemExit, match=""),
    case("domain", "continue_pretraining", [NAME, None, ["a"], ["b"], {}, CFG], exc=V, match=MODEL_HINT),
    case("domain", "run_recipe", [], {"steps": 0}, match="steps must be a positive int"),
    case("domain", "run_recipe", [], {"steps": 2.5}, exc=V, match="steps"),
    # ------------------------------------------------------------------ bench
    case("bench", "matmul_flops", [0], match="size"),
    case("bench", "matmul_flops", [64.0], exc=V, match="size"),
    case("bench", "matmul_flops", [64], {"device": "gpu"}, match="device"),
    case("bench", "plain_loop", [NAME, IDS, 2, 2, 8], exc=V, match=MODEL_HINT),
    case("bench", "plain_loop", [MODEL, IDS, 0, 2, 8], match="steps"),
    case("bench", "compare_loops", ["s5"], {"steps": 0}, match="steps"),
    case("bench", "compare_loops", ["s5"], {"rounds": 1.5}, exc=V, match="rounds"),
    case("bench", "mfu", [0, 10, 1e9], match="n_params"),
    case("bench", "mfu", [10, 10, NAN], match="peak_flops"),
    case("bench", "run", [], {"steps": 0}, match="steps"),
    case("bench", "run", [], {"device": "gpu"}, match="device"),
    case("bench", "report", [{}], exc=V, match="result"),
    case("bench", "main", [["--steps", "zero"]], exc=SystemExit, match=""),
    # ------------------------------------------------------------------ distributed
    case("distributed", "max_world_size", ["mpi"], match="backend"),
    case("distributed", "resolve_backend", ["mpi", 2], match="backend"),
    case("distributed", "resolve_backend", ["gloo", 0], match="world_size"),
    case("distributed", "default_sharding_factor", [0], match="world_size"),
    case("distributed", "default_sharding_factor", [2.0], exc=V, match="world_size"),
    case("distributed", "validate", [["ddp"], 0], match="world_size"),
    case("distributed", "validate", [["sp"], 2], match="strategy"),
    case("distributed", "validate", [["pp"], 2], {"microbatches": 3}, match="micro-batches"),
    case("distributed", "validate", [["pp"], 2], {"pp_schedule": "zb"}, match="pp_schedule"),
    case("distributed", "validate", [["tp"], 3], match="world_size must divide"),
    case("distributed", "validate", [["ddp"], 2], {"bubble_microbatches": (2,)}, match="add 'pp'"),
    case("distributed", "llama_config", [{"layers": 2}], match="unknown llama settings"),
    case("distributed", "llama_config", ["smollm2"], exc=V, match="llama"),
    case("dist_tables", "tp_all_reduces_per_step", [0], match="n_layers"),
    case("dist_tables", "model_parallel_table", [None], exc=V, match="RunResult"),
    case("memory", "bubble_fraction", [2, 0], match="n_microbatches"),
    case("memory", "bubble_fraction", [0.5, 2], match="n_stages"),
    case("dist_tables", "bubble_table", [None], exc=V, match="RunResult"),
    case("distributed", "write_spec", [42], exc=V, match="folder"),
    case("distributed", "record_bubble", [3], exc=V, match="path"),
    case("distributed", "record_bubble", ["/tmp/x.json", {"stages": 2}], match="unknown plan keys"),
    case("dist_tables", "load_bubble_record", [None], exc=V, match="path"),
    case("dist_tables", "load_bubble_record", ["/nonexistent.json"], match="no bubble record"),
    case("dist_tables", "model_parallel_peak_table", ["tp"], exc=V, match="RunResult"),
    case("dist_explorer", "explorer_parallel_memory", ["7B", 64, 1, 1, 4], match="model"),
    case("dist_explorer", "explorer_parallel_memory", ["13B", 64, 3, 1, 4], match="must divide"),
    case("dist_explorer", "explorer_parallel_memory", ["13B", 64, 2, 2, 0], match="microbatches"),
    case("distributed", "write_spec", ["/tmp/llmlab-spec", ["ddp"], 2], {"stepz": 2}, match="unknown settings"),
    case("distributed", "write_spec", ["/tmp/llmlab-spec", ["zero4"], 2], match="strategy"),
    case("dist_results", "read_results", [None], exc=V, match="spec_path"),
    case("dist_results", "read_results", ["/nonexistent/spec.json"], match="no spec file"),
    case("distributed", "validate", [["ddp"], 2], {"lr": NAN}, match="lr"),
    case("dist_results", "param_shapes", [{"n_layers": 2}], match="unknown model settings"),
    case("dist_results", "param_shapes", ["stories-1m"], exc=V, match="model"),
    case("distributed", "run", [["ddp"], 2], {"lr": NAN}, match="lr"),
    case("distributed", "run", [["ddp"], 2], {"lr": -1.0}, match="lr"),
    case("distributed", "run", [["ddp"], 2], {"seed": -1}, match="seed"),
    case("distributed", "run", [["ddp"], 2], {"steps": 0}, match="steps"),
    case("distributed", "run", [["ddp"], 2], {"steps": 2.0}, match="steps"),
    case("distributed", "run", [["ddp"], 2.0], match="world_size"),
    case("distributed", "run", [["ddp"], 10_000], match="world_size"),
    case("distributed", "run", [["ddp"], 2], {"n_batches": 0}, match="n_batches"),
    case("distributed", "run", [["ddp"], 2], {"fail_ranks": (5,)}, match="fail_ranks"),
    case("distributed", "run", [["ddp"], 2], {"model": "stories-1m"}, exc=V, match="model"),
    case("distributed", "run", [["ddp"], 2], {"timeout_s": INF}, match="timeout_s"),
    case("distributed", "run", [["ddp"], 2], {"sharding_factor": 2}, match="sharding_factor"),
    case("dist_tables", "predicted_table", [{}], exc=V, match="RunResult"),
    case("dist_tables", "textbook_comm_bytes", ["tp", 100, 4], match="strategy"),
    case("dist_tables", "textbook_comm_bytes", ["ddp", 100, 0], match="world_size"),
    case("dist_tables", "textbook_comm_bytes", ["hybrid", 100, 4, 3], match="sharding_factor"),
    case("dist_tables", "textbook_comm_bytes", ["ddp", float("nan"), 4], match="n_params"),
    case("dist_tables", "textbook_comm_bytes", ["ddp", "1e9", 4], match="n_params"),
    case("dist_tables", "comm_table", [None], exc=V, match="RunResult"),
    case("dist_tables", "peak_table", [None], exc=V, match="RunResult"),
    case("dist_tables", "predicted_activation_bytes", ["run"], exc=V, match="RunResult"),
    case("dist_explorer", "explorer_memory", ["7B", 64, 8, 3, "mixed", False], match="model"),
    case("dist_explorer", "explorer_memory", ["13B", 0, 8, 3, "mixed", False], match="n_gpus"),
    case("dist_explorer", "explorer_memory", ["13B", 64, 8, 5, "mixed", False], match="zero_stage"),
    case("dist_explorer", "explorer_memory", ["13B", 64, 0, 3, "mixed", False], {"tensor_parallel": 3},
         match="must divide"),
    case("dist_explorer", "explorer_memory", ["13B", 64, 0, 3, "mixed", False], {"activations": "none"},
         match="activations"),
    case("dist_explorer", "explorer_memory", ["13B", 64, 0, 3, "mixed", False], {"pipeline_parallel": 0},
         match="pipeline_parallel"),
    case("dist_explorer", "gpt_shape", [1e6, 24, 2048, 24], match="must exceed"),
    case("dist_explorer", "gpt_shape", [1e9, 0, 2048, 24], match="layers"),
    case("dist_results", "check_result", [{}], exc=V, match="RunResult"),
    case("dist_tables", "fsdp_tp_states", [None], exc=V, match="RunResult"),
    case("distributed", "default_tensor_parallel", [0], match="world_size"),
    case("distributed", "validate", [["fsdp_tp"], 4], {"tensor_parallel": 3}, match="must divide"),
    case("distributed", "validate", [["tp"], 2], {"tensor_parallel": 2}, match="add 'fsdp_tp'"),
    case("distributed", "validate", [["ddp"], 2], {"offload": True}, match="CPUOffloadPolicy"),
    case("distributed", "validate", [["zero3"], 2], {"offload": 1}, exc=V, match="offload"),
    case("memory", "model_parallel_gpu_memory", [1e9, 1e8, 64, 2, 2], {"sharding_factor": 3},
         match="sharding_factor"),
    case("memory", "model_parallel_gpu_memory", [1e9, 1e8, 64], {"offload": "yes"}, exc=V, match="offload"),
    # ------------------------------------------------------------------ quant
    case("quant", "float_bits", [1.0, "fp12"], match="fmt|format"),
    case("quant", "float_bits", ["1.0", "fp32"], exc=V, match="x"),
    case("quant", "decode_bits", ["0101", "fp32"], match="bits"),
    case("quant", "decode_bits", ["0" * 31 + "2", "fp32"], match="bits"),
    case("quant", "format_info", ["int4"], match="fmt|format"),
    case("quant", "representable_values", ["fp32"], match="fmt|format"),
    case("quant", "quantize_absmax", [[1.0, 2.0]], exc=V, match="x"),
    case("quant", "quantize_absmax", [torch.ones(2, 2)], {"axis": 2}, match="axis"),
    case("quant", "quantize_zeropoint", [torch.ones(2, 2)], {"axis": 1.0}, exc=V, match="axis"),
    case("quant", "quantize_int8", [torch.ones(2, 2)], {"scheme": "nf4"}, match="scheme"),
    case("quant", "quantization_error", [torch.ones(2, 2), torch.ones(2, 2)], exc=V, match="qx"),
    case("quant", "int8_matmul", [torch.ones(2, 3), torch.ones(4, 3)], {"mode": "fast"}, match="mode"),
    case("quant", "int8_matmul", [torch.ones(2, 3), torch.ones(3, 2)], match="same features"),
    case("quant", "Int8Tensor", ["q", 1, 0, None, "absmax"], exc=V, match="q"),
    case("quant", "Int8Linear", [torch.ones(3), None], match="weight"),
    case("quant", "linear_layers", [NAME], exc=V, match=MODEL_HINT),
    case("quant", "quantize_model", [NAME], exc=V, match=MODEL_HINT),
    case("quant", "quantize_model", [MODEL], {"scheme": "nf4"}, match="scheme"),
    case("quant", "quantize_model", [MODEL], {"layers": "transformer.h.0.mlp.c_fc"}, exc=V, match="layers"),
    case("quant", "conv1d_to_linear", [NAME], exc=V, match=MODEL_HINT),
    case("quant", "torch_dynamic_quantize", [NAME], exc=V, match=MODEL_HINT),
    case("quant", "state_bytes", [NAME], exc=V, match=MODEL_HINT),
    case("quant", "quantize_groupwise", [[[1.0]]], exc=V, match="x"),
    case("quant", "quantize_groupwise", [torch.ones(4, 32)], {"bits": 1}, match="bits"),
    case("quant", "quantize_groupwise", [torch.ones(4, 32)], {"group_size": 0}, match="group_size"),
    case("quant", "quantize_groupwise", [torch.ones(4, 32)], {"scheme": "nf4"}, match="scheme"),
    case("quant", "quantize_groupwise", [torch.ones(32)], match="matrix"),
    case("quant", "Int4Linear", [torch.ones(3), None], match="matrix"),
    case("quant", "quantize_model_4bit", [NAME], exc=V, match=MODEL_HINT),
    case("quant", "quantize_model_4bit", [MODEL], {"group_size": 0}, match="group_size"),
    case("quant", "quantize_model_4bit", [MODEL], {"layers": "transformer.h.0.mlp.c_fc"}, exc=V, match="layers"),
    case("quant", "torchao_quantize", [NAME], exc=V, match=MODEL_HINT),
    case("quant", "torchao_quantize", [MODEL], {"method": "int3"}, match="method"),
    case("quant", "torchao_quantize", [MODEL], {"method": "int4_weight_only", "group_size": 3}, match="group_size"),
    # ------------------------------------------------------------------ gguf_blocks
    case("gguf_blocks", "bits_per_weight", ["Q2"], match="block type"),
    case("gguf_blocks", "bits_per_weight", [4], exc=V, match="kind"),
    case("gguf_blocks", "decode_q4_1", [[1, 2, 3]], exc=V, match="uint8"),
    case("gguf_blocks", "decode_q4_1", [np.zeros(21, dtype=np.uint8)], match="blocks"),
    case("gguf_blocks", "decode_q8_0", [np.zeros(34, dtype=np.float32)], exc=V, match="uint8"),
    case("gguf_blocks", "encode_q4_1", [np.zeros(31, dtype=np.float32)], match="multiple"),
    case("gguf_blocks", "encode_q4_1", [[0.0] * 32], exc=V, match="weights"),
    case("gguf_blocks", "decode", [np.zeros(20, dtype=np.uint8), "Q5_K"], match="block type"),
    case("gguf_blocks", "decode", [[1.0], "F32"], exc=V, match="F32"),
    case("gguf_blocks", "read", [3], exc=V, match="path"),
    case("gguf_blocks", "read", ["/no/such/file.gguf"], match="no GGUF"),
    case("gguf_blocks", "tensor_weights", ["model.gguf", "x"], exc=V, match="reader"),
    case("gguf_blocks", "unpermute_rotary", [np.zeros((6, 2)), 2], match="rows"),
    case("gguf_blocks", "unpermute_rotary", [np.zeros((8, 2)), 0], match="n_heads"),
    case("gguf_blocks", "unpermute_rotary", [[[1.0]], 1], exc=V, match="w"),
    case("gguf_blocks", "hf_name", ["blk.0.attn_x.weight"], match="GGUF tensor name"),
    case("gguf_blocks", "hf_name", [3], exc=V, match="gguf_name"),
    # ------------------------------------------------------------------ quant_real
    case("quant_real", "english_ids", ["smollm2"], exc=V, match="tokenizer"),
    case("quant_real", "story_ids", [None], exc=V, match="tokenizer"),
    case("quant_real", "linear_bytes", [NAME, []], exc=V, match=MODEL_HINT),
    case("quant_real", "linear_bytes", [MODEL, ["no.such.layer"]], match="no module"),
    case("quant_real", "linear_bytes", [MODEL, "transformer.h.0.mlp.c_fc"], exc=V, match="names"),
    case("quant_real", "measure_scheme", ["INT3", MODEL, {}], match="name"),
    case("quant_real", "measure_scheme", ["INT8 absmax, per tensor", MODEL, [IDS]], exc=V, match="texts"),
    case("quant_real", "measure_scheme", ["INT8 absmax, per tensor", MODEL, {"t": IDS}], {"seq_len": 0},
         match="seq_len"),
    case("quant_real", "live_slice", [NAME, None], exc=V, match=MODEL_HINT),
    case("quant_real", "bitsandbytes_rows", [["x"]], exc=V, match="texts"),
    case("quant_real", "activation_profile", [NAME, IDS], exc=V, match=MODEL_HINT),
    case("quant_real", "activation_profile", [MODEL, IDS.view(10, 20)], match="dimensions"),
    case("quant_real", "ActInt8Linear", [torch.nn.Linear(2, 2), "per-row"], match="mode"),
    case("quant_real", "ActInt8Linear", [torch.nn.Linear(2, 2), "mixed"], {"threshold": -1}, match="threshold"),
    case("quant_real", "ActInt8Linear", ["lm_head", "mixed"], exc=V, match="linear"),
    case("quant_real", "with_int8_activations", [MODEL, "per-row"], match="mode"),
    case("quant_real", "with_int8_activations", [NAME, "mixed"], exc=V, match=MODEL_HINT),
    case("quant_real", "outlier_summary", [{}], exc=V, match="profile"),
    case("quant_real", "record", [None, ["INT3"]], match="scheme"),
    case("quant_real", "record", [None, "INT8 absmax, per tensor"], exc=V, match="schemes"),
    case("quant_real", "record", [42], exc=V, match="out"),
    case("quant_real", "load_record", [42], exc=V, match="path"),
    # ------------------------------------------------------------------ train_memory
    case("train_memory", "model_shape", [torch.nn.Linear(2, 2)], exc=V, match="config"),
    case("train_memory", "model_shape", [NAME], exc=V, match=MODEL_HINT),
    case("train_memory", "step_peak", [NAME, IDS.view(10, 20)], exc=V, match=MODEL_HINT),
    case("train_memory", "step_peak", [MODEL, IDS], match="dimensions"),
    case("train_memory", "step_peak", [MODEL, IDS.view(10, 20)], {"steps": 0}, match="steps"),
    case("train_memory", "predict", [MODEL, 0, 4], match="batch_size"),
    case("train_memory", "predict", [MODEL, 2, 1.5], match="seq_len"),
    case("train_memory", "compare", [MODEL, [[1, 2]]], exc=V, match="batch"),
    case("train_memory", "compare", [NAME, IDS.view(10, 20)], exc=V, match=MODEL_HINT),
    case("train_memory", "record", [42], exc=V, match="out"),
    case("train_memory", "load_record", [42], exc=V, match="path"),
    # ------------------------------------------------------------------ metrics
    case("metrics", "entropy_bits", [[0.5, 0.5]], exc=V, match="probs"),
    case("metrics", "entropy_bits", [torch.tensor([0.5, -0.5])], match="probs"),
    case("metrics", "mean_loss_nats", [NAME, IDS], exc=V, match=MODEL_HINT),
    case("metrics", "mean_loss_nats", [MODEL, torch.tensor([1, 2, 3, 99] * 10)], {"seq_len": 8}, match="token_ids.*vocabulary"),
    case("metrics", "mean_loss_nats", [MODEL, IDS], {"seq_len": 0}, match="seq_len"),
    case("metrics", "perplexity", [MODEL, IDS], {"batch_size": 0}, match="batch_size"),
    case("metrics", "perplexity", [MODEL, IDS], {"seq_len": 8, "device": "gpu"}, match="device"),
    case("metrics", "distinct_n", [["a b"], 0], match="n"),
    case("metrics", "distinct_n", [["a b"], 1.5], exc=V, match="n"),
    case("metrics", "repeated_ngram_fraction", ["a b c", 0], match="n"),
    case("metrics", "in_vocabulary_fraction", [["a b"], "a"], exc=V, match="vocabulary"),
    case("metrics", "rouge_l", [["a"], "a"], exc=V, match="candidate"),
    # ------------------------------------------------------------------ data
    case("data", "generate_story", [42], exc=V, match=r"rng.*random\.Random\(42\)"),
    case("data", "generate_stories", [-1], match="n"),
    case("data", "generate_stories", [2.5], exc=V, match="n"),
    case("data", "generate_stories", ["10"], exc=V, match="n"),
    case("data", "write_corpus", ["/tmp/x.txt.gz", 0], match="n"),
    case("data", "load_corpus", ["dev"], match="split"),
    case("data", "corpus_vocabulary", ["one story"], exc=V, match="stories"),
    case("data", "icl_review", [7], exc=V, match="rng"),
    case("data", "icl_classes", [["a review"]], exc=V, match="review"),
    case("data", "icl_instruction", ["no-such-rule", ("a", "b")], match="rule"),
    case("data", "icl_instruction", ["sentiment", "ab"], exc=V, match="labels"),
    case("data", "icl_episode", [random.Random(0), 0], match="n_items"),
    case("data", "icl_episode", [3, 4], exc=V, match="rng"),
    case("data", "icl_episode", [random.Random(0), 4], {"repeat": 1.5}, match="repeat"),
    # ------------------------------------------------------------------ scaling
    case("scaling", "training_flops", [-1, 10], match="n_params"),
    case("scaling", "training_flops", [NAN, 10], match="n_params"),
    case("scaling", "pf_days", ["1e20"], exc=V, match="flops"),
    case("scaling", "chinchilla_optimal", [0], match="compute_flops"),
    case("scaling", "chinchilla_loss", [1e9, -1], match="n_tokens"),
    case("scaling", "training_days", [1e9, 1e10, 0, 1e14], match="n_gpus"),
    case("scaling", "achieved_flops_per_gpu", [1e9, 1e10, 8, 0], match="days"),
    case("scaling", "optimal_allocation", [-5], match="compute_flops"),
    case("scaling", "main", [["--no-such-flag"]], exc=SystemExit, match=""),
    case("scaling", "plan_budget", [0], match="compute_flops"),
    case("scaling", "plan_budget", [1e23], {"n_gpus": 0}, match="n_gpus"),
    case("scaling", "gpu_hours_to_flops", [-1], match="gpu_hours"),
    case("scaling", "BloombergBudget", [], {"n_params": -1}, match="n_params"),
    case("scaling", "throughput_verdict", [0], match="flops_per_gpu"),
    case("scaling", "throughput_verdict", [1e14], {"far_below": 1.5}, match="far_below"),
    case("scaling", "throughput_verdict", [1e14], {"tolerance": -0.1}, match="tolerance"),
    case("scaling", "published_throughput", [[(175e9, 1024, 24)]], exc=V, match="runs"),
    case("scaling", "published_throughput", [], {"measured": 0}, match="measured"),
    case("scaling", "predicted_days", [[175e9], [64]], exc=V, match="sizes"),
    case("scaling", "predicted_days", [{"175B": 175e9}, 64], exc=V, match="gpu_counts"),
    case("scaling", "predicted_days", [{"175B": 175e9}, [0]], match="n_gpus"),
    case("scaling", "predicted_days", [{"175B": -1.0}, [64]], match="n_params"),
    # ------------------------------------------------------------------ scaling_fits
    case("scaling_fits", "fit_power_law", [[1, 2, 3], [1, 2]], match="x|y|length|same"),
    case("scaling_fits", "fit_power_law", [[1, 2, 3], [1, -2, 3]], match="y"),
    case("scaling_fits", "fit_chinchilla", [[1e6], [1e8], [3.0]], match="point|n_params|at least"),
    case("scaling_fits", "tokens_per_param_at", [1e20, {"a": 1}], exc=V, match="fit"),
    case("scaling_fits", "isoflop_minima", ["sweep.csv"], exc=V, match="sweep"),
    case("scaling_fits", "frontier", [None], exc=V, match="sweep"),
    case("scaling_fits", "fit_frontier", [[1e18, 1e19], [3.0]], match="compute|loss|length|same"),
    # ------------------------------------------------------------------ sweep
    case("sweep", "sweep_model", ["s99"], match="size"),
    case("sweep", "count_params", [NAME], exc=V, match=MODEL_HINT),
    case("sweep", "sweep_config", ["s5", 0], match="compute_flops"),
    case("sweep", "run_point", ["s99", 1e12, IDS, IDS], match="size"),
    case("sweep", "run_sweep", ["/tmp/x.csv", "plan"], exc=V, match="plan"),
    case("sweep", "load_sweep", ["/no/such/file.csv"], exc=(ValueError, FileNotFoundError), match="file|sweep"),
    case("sweep", "rerun", ["s5"], exc=V, match="points"),
    case("sweep", "main", [["--no-such-flag"]], exc=SystemExit, match=""),
    case("widgets", "draw_budget", [None, {"n_params": 1}], exc=V, match="plan"),
    # ------------------------------------------------------------------ prompt_tuning
    case("prompt_tuning", "PromptTemplate", ["no answer slot"], match="template"),
    case("prompt_tuning", "PromptTemplate", [42], exc=V, match="template"),
    case("prompt_tuning", "few_shot_template", ["Q: {text} A: {answer}", []], exc=V, match="template"),
    case("prompt_tuning", "encode", [None, None, {}], exc=V, match="tokenizer|template"),
    case("prompt_tuning", "SoftPrompt", [NAME, 4], exc=V, match=MODEL_HINT),
    case("prompt_tuning", "SoftPrompt", [MODEL, 0], match="n_virtual"),
    case("prompt_tuning", "SoftPrompt", [MODEL, 2], {"init_ids": [1, 99]}, match="init_ids"),
    case("prompt_tuning", "trainable_parameters", [NAME], exc=V, match=MODEL_HINT),
    case("prompt_tuning", "build_inputs", [NAME, None, []], exc=V, match=MODEL_HINT),
    case("prompt_tuning", "answer_log_probs", [NAME, None, []], exc=V, match=MODEL_HINT),
    case("prompt_tuning", "answer_loss", [NAME, None, []], exc=V, match=MODEL_HINT),
    case("prompt_tuning", "predict", [MODEL, None, None, [{"text": "x"}], "good"], exc=V, match="candidates"),
    case("prompt_tuning", "predict", [NAME, None, None, [{"text": "x"}], ["good"]], exc=V, match=MODEL_HINT),
    case("prompt_tuning", "accuracy", [MODEL, None, None, [], ["good"]], match="example"),
    case("prompt_tuning", "train_answers", [NAME, None, None, [], [], CFG], exc=V, match=MODEL_HINT),
    case("prompt_tuning", "make_task", [0], match="n"),
    case("prompt_tuning", "make_task", [3.0], exc=V, match="n"),
    case("prompt_tuning", "PromptTemplate", ["{virtual_0}{x}{virtual_1}{answer}"], match="virtual_token_splits"),
    case("prompt_tuning", "PromptTemplate", ["{x}{answer}"], {"truncate_field": "y"}, match="truncate_field"),
    case("prompt_tuning", "PromptEncoder", [0, 8], match="n_virtual"),
    case("prompt_tuning", "PromptEncoder", [2, 8, "gru"], match="kind"),
    case("prompt_tuning", "VirtualTokens", ["embed", 2], exc=V, match="embed"),
    case("prompt_tuning", "VirtualTokens", [MODEL.get_input_embeddings(), 0], match="n_virtual"),
    case("prompt_tuning", "MultiTaskPrompts", [MODEL, {}], exc=V, match="n_virtual"),
    case("prompt_tuning", "MultiTaskPrompts", [NAME, {"a": 1}], exc=V, match=MODEL_HINT),
    case("prompt_tuning", "candidate_scores", [MODEL, None, None, [{"text": "x"}], "good"], exc=V, match="candidates"),
    case("prompt_tuning", "train_tasks", [MODEL, None, {}, CFG], exc=V, match="MultiTaskPrompts"),
    case("prompt_tuning", "unfreeze_last_layers", [MODEL, 0], match="n_layers"),
    case("prompt_tuning", "unfreeze_last_layers", [MODEL, 5], match="blocks"),
    case("prompt_tuning", "real_task", ["sentiment"], exc=V, match="record"),
    case("prompt_tuning", "record_plan", [{"seeds": [0]}], match="missing the settings"),
    case("prompt_tuning", "run_one", [NAME, None, {}], exc=V, match=MODEL_HINT),
    case("prompt_tuning", "run_record", [False, "RECORD"], exc=V, match="record"),
    case("prompt_tuning", "summarize", [[]], match="rows"),
    case("prompt_tuning", "load_record", [42], exc=V, match="name"),
    case("prompt_tuning", "main", [["--no-such-flag"]], exc=SystemExit, match=""),
    case("prompt_tuning", "peft_model", [MODEL, {"num_virtual_tokens": 4}], exc=V, match="PEFT config"),
    # ------------------------------------------------------------------ sampling
    case("sampling", "apply_temperature", [torch.zeros(5), 0], match="temperature"),
    case("sampling", "apply_temperature", [torch.zeros(5), NAN], match="temperature"),
    case("sampling", "top_k_filter", [torch.zeros(5), -1], match="k"),
    case("sampling", "top_k_filter", [torch.zeros(5), 2.5], exc=V, match="k"),
    case("sampling", "top_p_filter", [torch.zeros(5), 1.5], match="top_p|p must"),
    case("sampling", "min_p_filter", [torch.zeros(5), -0.1], match="min_p"),
    case("sampling", "filter_logits", [torch.zeros(5)], {"top_p": 0}, match="p"),
    case("sampling", "apply_repetition_penalty", [torch.zeros(1, 5), torch.tensor([[1]]), 0], match="penalty"),
    case("sampling", "no_repeat_ngram_filter", [torch.zeros(1, 5), torch.tensor([[1]]), -1], match="n"),
    case("sampling", "process_logits", [torch.zeros(1, 5), torch.tensor([[1]])], {"repetition_penalty": -1}, match="penalty"),
    case("sampling", "next_token_distribution", [torch.zeros(5)], {"temperature": -1}, match="temperature"),
    case("sampling", "greedy_next_token", [[0.1, 0.9]], exc=V, match="logits"),
    case("sampling", "sample_next_token", [torch.zeros(5)], {"generator": 42}, exc=V, match="generator"),
    case("sampling", "generate", [NAME, torch.tensor([[1]])], exc=V, match=MODEL_HINT),
    case("sampling", "generate", [MODEL, torch.tensor([[1, 99]])], match="input_ids.*vocabulary"),
    case("sampling", "generate", [MODEL, torch.tensor([[1]])], {"max_new_tokens": 2.5}, exc=V, match="max_new_tokens"),
    case("sampling", "beam_search", [MODEL, torch.tensor([[1]])], {"num_beams": 0}, match="num_beams"),
    case("sampling", "beam_search", [NAME, torch.tensor([[1]])], exc=V, match=MODEL_HINT),
    case("sampling", "chat_batch", [NAME, "hello"], exc=V, match="tokenizer|requests"),
    case("sampling", "generate_settings", [NAME, torch.tensor([[1]]), torch.tensor([[1]]), [{}], 2, 0], exc=V, match=MODEL_HINT),
    case("sampling", "score_continuations", [NAME, torch.tensor([[1]]), torch.tensor([[1]]), [[1]], 0], exc=V, match=MODEL_HINT),
    case("sampling", "run_sweep", [], {"max_new_tokens": 0}, match="max_new_tokens"),
    case("sampling", "load_record", [42], exc=V, match="name"),
    case("sampling", "interval95", [[]], match="values"),
    case("sampling", "summarise", [[]], exc=V, match="record"),
    case("sampling", "main", [["--no-such-flag"]], exc=SystemExit, match=""),
    # ------------------------------------------------------------------ zoo
    case("zoo", "train_tokenizer", ["one story", 100], match="texts"),  # re-exported from tokenization
    case("zoo", "build", ["no-such-model"], match="no-such-model|unknown"),  # re-exported from recipes
    case("zoo", "model_dir", ["no-such-model"], match="no-such-model|unknown"),
    case("zoo", "model_dir", [MODEL], exc=V, match="name"),
    case("zoo", "recipe_of", ["no-such-model"], match="no-such-model|unknown"),
    case("zoo", "load", ["no-such-model"], match="no-such-model|unknown"),
    case("zoo", "load", [MODEL], exc=V, match="name"),
    case("zoo", "load", ["stories-1m"], {"device": "gpu"}, match="device"),
    case("zoo", "hub_reachable", [], {"timeout": -1}, match="timeout"),
    case("zoo", "prepare", ["no-such-model"], match="no-such-model|unknown"),
    case("zoo", "main", [["--no-such-flag"]], exc=SystemExit, match=""),
    # ------------------------------------------------------------------ recipes
    case("recipes", "Recipe", ["x", "d", 0, {}, {}], match="vocab_size"),
    case("recipes", "build", ["no-such-model"], match="no-such-model|unknown"),
    case("recipes", "build", ["stories-1m"], {"steps": 0}, match="steps"),
    case("recipes", "build", ["stories-1m"], {"device": "gpu"}, match="device"),
    case("recipes", "icl_texts", [None, 0, 0], exc=V, match="recipe|n"),
    # ------------------------------------------------------------------ tokenization
    case("tokenization", "train_tokenizer", ["one story", 100], match="texts"),
    case("tokenization", "train_tokenizer", [["a story"], 0], match="vocab_size"),
    case("tokenization", "train_tokenizer", [["a story"], 100.0], exc=V, match="vocab_size"),
    case("tokenization", "encode_stories", [None, "one story"], match="stories"),
    case("tokenization", "encode_icl", [None, "text", [], 8], exc=V, match="texts"),
    case("tokenization", "encode_icl", [None, ["text"], [[]], 0], match="window"),
    case("tokenization", "encode_icl", [None, ["text"], [], 8], match="spans"),
    # ------------------------------------------------------------------ objectives
    case("objectives", "causal_lm_pair", [[1]], match="at least 2 tokens"),
    case("objectives", "causal_lm_pair", ["hello"], exc=V, match="ids"),
    case("objectives", "masked_lm_pair", [[1, 2, 3], 4, 10], {"mask_prob": 1.5}, match="mask_prob"),
    case("objectives", "masked_lm_pair", [[1, 2, 30], 4, 10], match="ids|vocab"),
    case("objectives", "random_spans", [0], match="length"),
    case("objectives", "random_spans", [10], {"noise_density": 1.5}, match="noise_density"),
    case("objectives", "span_corruption_pair", [[1, 2, 3], [], 0], match="sentinel"),
    case("objectives", "masked_lm_batch", [IDS, 0, 8, torch.Generator(), 1, 20], match="batch_size"),
    case("objectives", "span_corruption_batch", [IDS, 2, 0, torch.Generator(), [18, 19], 0, 0], match="seq_len"),
    case("objectives", "evaluate_objective", [NAME, None, IDS, 1], exc=V, match=MODEL_HINT),
    case("objectives", "evaluate_objective", [MODEL, None, IDS, 0], match="n_batches|make_batch"),
    case("objectives", "train_objective", [NAME, None, IDS, IDS, CFG], exc=V, match=MODEL_HINT),
    case("objectives", "train_objective", [MODEL, None, IDS, IDS, {"steps": 1}], exc=V, match="TrainConfig|make_batch"),
    # ------------------------------------------------------------------ quality
    case("quality", "token_counter", ["gpt2"], exc=V, match="tokenizer"),
    case("quality", "QualityRules", [], {"min_words": -1}, match="min_words"),
    case("quality", "QualityRules", [], {"min_alpha_word_fraction": 1.5}, match="min_alpha_word_fraction"),
    case("quality", "quality_problems", [["a doc"]], exc=V, match="text"),
    case("quality", "quality_filter", ["one doc"], match="docs"),
    case("quality", "normalize_text", [42], exc=V, match="text"),
    case("quality", "exact_duplicates", ["one doc"], match="docs"),
    case("quality", "exact_dedup", ["one doc"], match="docs"),
    case("quality", "shingles", ["a b c", 0], match="n"),
    case("quality", "jaccard", ["abc", {1}], exc=V, match="a"),
    case("quality", "minhash_signature", [{1, 2}], {"num_perm": 0}, match="num_perm"),
    case("quality", "near_duplicate_pairs", [["a", "b"]], {"threshold": 1.5}, match="threshold"),
    case("quality", "near_duplicate_pairs", [["a", "b"]], {"num_perm": 100, "bands": 32}, match="bands"),
    case("quality", "near_dedup", ["one doc"], match="docs"),
    case("quality", "clean_corpus", ["one doc"], match="docs"),
    case("quality", "scraped_corpus", [["a story"]], {"junk": 1.5}, match="junk"),
    case("quality", "load_labelled_snippets", [42], exc=V, match="path"),
    case("quality", "filter_agreement", [["a doc"], ["maybe"]], match="labels"),
    # ------------------------------------------------------------------ memorization
    case("memorization", "ngram_hashes", [[1, 2, 3], 0], match="n must be"),
    case("memorization", "ngram_hashes", ["some text"], exc=V, match="token ids"),
    case("memorization", "ngram_hashes", [[1, 2, 3]], {"stop_token_id": -1}, match="stop_token_id"),
    case("memorization", "ngram_overlap", [[1, 2, 3], {1, 2}], exc=V, match="reference"),
    case("memorization", "ngram_overlap", [[1.5, 2.0], np.zeros(0, np.uint64)], match="integer token ids"),
    case("memorization", "exact_continuations", ["not a model", [[1, 2, 3]]], exc=V, match="model"),
    case("memorization", "exact_continuations", [MODEL, [[1, 2, 3]]], {"prompt_tokens": 0},
         match="prompt_tokens"),
    case("memorization", "exact_continuations", [MODEL, [[1, 2, 3]]], {"prompt_tokens": 2},
         match="at least prompt_tokens"),
    case("memorization", "exact_continuations", [MODEL, []], match="non-empty"),
    case("memorization", "compare_proportions", [5, 3, 1, 10], match="cannot exceed"),
    case("memorization", "compare_proportions", [1, 0, 1, 10], match="n_a and n_b"),
    case("memorization", "compare_proportions", [1.5, 3, 1, 10], match="k_a"),
    case("memorization", "compare_proportions", [1, 3, 1, 10], {"names": ("a",)}, exc=V,
         match="names"),
    # ------------------------------------------------------------------ lifecycle
    case("lifecycle", "fit_to_context", ["hello world", 5], exc=V, match="token_ids"),
    case("lifecycle", "fit_to_context", [[1, 2, 3], 0], match="context_window"),
    case("lifecycle", "fit_to_context", [[1, 2, 3], 5.0], exc=V, match="context_window"),
    case("lifecycle", "fit_to_context", [[1, 2, 3], 5], {"keep": "middle"}, match="keep"),
    case("lifecycle", "loss_by_context_length", [NAME, [[1, 2]], 1, [1], 0], exc=V, match=MODEL_HINT),
    case("lifecycle", "draw_lifecycle", [42], exc=V, match="ax"),
    case("lifecycle", "hero_gender_counts", ["one story"], exc=V, match="texts"),
    case("lifecycle", "measure_model_card", [], {"n_samples": 0}, match="n_samples"),
    case("lifecycle", "measure_model_card", [], {"temperature": 0}, match="temperature"),
    case("lifecycle", "compare_cards", [{}, {}], exc=V, match="card"),
    case("lifecycle", "mean_pooled_embeddings", [NAME, None, ["a"]], exc=V, match=MODEL_HINT),
    case("lifecycle", "chat_text", [NAME, "hi"], exc=V, match="tokenizer"),
    case("lifecycle", "chat_batch", [None, "hello"], exc=V, match="prompts"),
    case("lifecycle", "chat_complete", [NAME, None, ["hi"]], exc=V, match=MODEL_HINT),
    case("lifecycle", "plain_complete", [NAME, None, ["hi"]], exc=V, match=MODEL_HINT),
    case("lifecycle", "choose_labels", [NAME, None, ["hi"], ("a", "b")], exc=V, match=MODEL_HINT),
    case("lifecycle", "mentions", [42, ["a"]], exc=V, match="text"),
    case("lifecycle", "first_label", ["text", "ab"], exc=V, match="labels"),
    case("lifecycle", "last_integer", [42], exc=V, match="text"),
    case("lifecycle", "first_json_object", [None], exc=V, match="text"),
    case("lifecycle", "Item", [1, "r", "k"], exc=V, match="prompt"),
    case("lifecycle", "arithmetic_items", [0], match="n"),
    case("lifecycle", "arithmetic_items", [5, 50, 10], match="low|high"),
    case("lifecycle", "accuracy", [[], ["a"]], match="items|answers"),
    case("lifecycle", "format_accuracy", [[]], exc=V, match="result"),
    case("lifecycle", "count_sentences", [None], exc=V, match="text"),
    case("lifecycle", "json_matches", ["{}", "ref"], exc=V, match="reference"),
    case("lifecycle", "calculator", ["__import__('os')"], match="expression"),
    case("lifecycle", "calculator", ["1/0"], match="expression|zero"),
    case("lifecycle", "calculator_items", [2.5], exc=V, match="n"),
    case("lifecycle", "tool_result", [None], exc=V, match="answer"),
    case("lifecycle", "UseCase", ["n", "p", "r", "no-such-check"], match="check"),
    case("lifecycle", "record_completions", ["/tmp/x.json", "chat"], exc=V, match="groups"),
    case("lifecycle", "load_record", [42], exc=V, match="path"),
    case("lifecycle", "recorded_answers", [{}, "chat"], match="group|record"),
    case("lifecycle", "main", [["--no-such-flag"]], exc=SystemExit, match=""),
    # ------------------------------------------------------------------ device
    case("device", "supports_bf16", ["gpu"], match="device"),
    case("device", "seed_everything", [-1], match="seed"),
    case("device", "seed_everything", ["42"], exc=V, match="seed"),
    case("device", "seed_everything", [1.5], exc=V, match="seed"),
    case("device", "device_info", ["tpu"], match="device"),
    case("device", "memory_allocated", [42], exc=V, match="device"),
    # ------------------------------------------------------------------ tables
    case("tables", "fmt", [[{"a": 1}]], exc=V, match="df must be a pandas DataFrame"),
    case("tables", "fmt", [pd.DataFrame({"a": [1]}), {"b": "B"}], match="headers.*'b'"),
    case("tables", "fmt", [pd.DataFrame({"a": [1]})], {"bytes_cols": ["b"]}, match="bytes_cols"),
    case("tables", "fmt", [pd.DataFrame({"a": [1]})], {"bytes_cols": "a"}, exc=V, match="list"),
    case("tables", "fmt", [pd.DataFrame({"a": [1.0]})], {"digits": -1}, match="digits"),
    case("tables", "fmt", [pd.DataFrame({"a": [1.0]})], {"digits": "2"}, exc=V, match="digits"),
    case("tables", "format_bytes", ["1 MB"], exc=V, match="bytes"),
    case("tables", "format_bytes", [NAN], match="finite"),
    # ------------------------------------------------------------------ stats
    case("stats", "wilson_interval", [5, 4], exc=T, match="successes"),
    case("stats", "wilson_interval", [5, 10], {"level": 95}, exc=T, match="level"),
    case("stats", "wilson_interval", [2.5, 10], exc=V, match="successes"),
    case("stats", "bootstrap_interval", [[[1, 2], [3, 4]]], exc=T, match="one-dimensional"),
    case("stats", "bootstrap_interval", [[1.0, NAN]], exc=T, match="NaN"),
    case("stats", "mcnemar", [[1, 0, 2], [1, 0, 1]], exc=T, match="right/wrong"),
    case("stats", "mcnemar", [[1, 0], [1, 0, 1]], exc=T, match="items"),
    case("stats", "paired_bootstrap", [[], []], exc=T, match="empty"),
    case("stats", "paired_bootstrap", ["abc", "abd"], exc=V, match="sequence of numbers"),
    case("stats", "paired_bootstrap", [[1, 2], [1, 2]], {"n_boot": 5}, exc=T, match="n_boot"),
    case("stats", "compare", [[1, 0], [0, 1]], {"names": "AB"}, exc=V, match="names"),
    case("stats", "compare", [[1, 0], [0, INF]], exc=T, match="infinite"),
    case("stats", "compare_timings", [[1.0], [2.0, 2.0]], exc=T, match="at least twice"),
    case("stats", "compare_timings", [[1.0, -1.0], [2.0, 2.0]], exc=T, match="positive"),
    case("stats", "compare_timings", [[1.0, 1.0], [2.0, 2.0]], {"min_ratio": 0.5}, exc=T, match="min_ratio"),
    case("stats", "detectable_difference", [100, 1.5], exc=T, match="disagreement"),
    case("stats", "detectable_difference", [0, 0.2], exc=T, match="n"),
]

# public names with nothing to validate: records that llmlab builds and returns, and functions without
# arguments. A new public function that takes arguments needs a case above, not an entry here.
RECORDS = {
    "memory": {"ModelStates", "TrainingMemory", "MeasuredStates", "GpuMemory"},
    "train": {"TrainLog"},
    "domain": {"AdaptationResult"},
    "bench": {"LoopTiming"},
    "dist_results": {"DistributedRunError", "RankResult", "RunResult"},
    "dist_explorer": {"ExplorerModel"},
    "quant": {"FloatBits", "FormatInfo", "GroupQuantized"},
    "gguf_blocks": {"TensorEntry", "GGUFSummary"},
    "scaling": {"BudgetPlan", "PublishedRun"},
    "scaling_fits": {"Fit"},
    "prompt_tuning": {"Encoded"},
    "zoo": {"ZooError", "PackagedModel"},
    "quality": {"StepReport", "CleaningResult"},
    "lifecycle": {"ModelCard"},
    "device": {"DeviceInfo"},
    "tables": {"Table"},
    "stats": {"McNemar", "PairedBootstrap", "Comparison", "TimingComparison"},
}


def public_names(module_name: str) -> list[str]:
    mod = importlib.import_module(f"llmlab.{module_name}")
    out = []
    for name, obj in vars(mod).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
            continue
        if not (inspect.isfunction(obj) or inspect.isclass(obj)) or name in RECORDS.get(module_name, set()):
            continue
        try:
            params = inspect.signature(obj).parameters
        except (TypeError, ValueError):
            params = {"?": None}
        if not params:
            continue  # nothing to pass, nothing to get wrong
        out.append(name)
    return out


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_function_has_a_bad_input_case(module_name):
    covered = {c.values[1] for c in CASES if c.values[0] == module_name}
    missing = sorted(set(public_names(module_name)) - covered)
    assert not missing, f"llmlab.{module_name}: add a bad-input case for {missing}"


@pytest.mark.parametrize("module_name, name, args, kwargs, exc, match", CASES)
def test_bad_input_raises_a_clear_error(module_name, name, args, kwargs, exc, match):
    fn = getattr(importlib.import_module(f"llmlab.{module_name}"), name)
    caught = SystemExit if exc is SystemExit else (ValueError, TypeError)
    try:
        result = fn(*args, **kwargs)
    except caught as err:
        if exc is not SystemExit:
            assert isinstance(err, (ValueError, TypeError)), f"raised {type(err).__name__}: {err}"
            assert re.search(match, str(err)), f"message {str(err)!r} does not match {match!r}"
        return
    except Exception as err:  # a raw error from deep inside
        pytest.fail(f"raised {type(err).__name__} instead of a clear ValueError/TypeError: {err}")
    pytest.fail(f"returned {type(result).__name__} {str(result)[:80]!r} instead of raising")


def test_integer_mask_masks_like_the_boolean_mask_in_torch_sdpa():
    torch.manual_seed(0)
    qq, k, v = (torch.randn(2, 3, 4, 8, dtype=torch.float64) for _ in range(3))
    bool_mask = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]).bool()
    ours, weights = attention.scaled_dot_product_attention(qq, k, v, mask=bool_mask.long())
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(qq, k, v, attn_mask=bool_mask), rtol=0, atol=1e-12)
    assert (weights.masked_select(~bool_mask.expand_as(weights)) == 0).all()
    padding = attention.padding_mask(torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]]))
    assert padding.dtype == torch.bool
