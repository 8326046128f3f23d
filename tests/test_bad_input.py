"""Bad input to the public API raises a clear ValueError or TypeError that names the argument.

Table-driven: each case is (module, public name, args, kwargs, expected exception, message regex).
A raw error from deep inside (IndexError, KeyError, ZeroDivisionError, a torch RuntimeError) or a
silent result fails the case. ``test_every_public_function_has_a_bad_input_case`` walks the package (subpackages included)
and fails when any public function or class that takes arguments has no case here, so a new module or
function must add one (or an entry with its reason in EXCLUDED). The expected exception of each case is
enforced: a wrong type (a str where a number goes, a name where a model goes) raises TypeError; a value
of the right type that is not allowed (negative, empty, out of range, NaN) raises ValueError.
Everything is fast: tiny models built here, no real-model loading, no process launches
(distributed.launcher.run must refuse its arguments before it starts any).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import random
import re

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

import llmlab
from llmlab import attention
from llmlab.train import TrainConfig

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


def case(module, name, args=(), kwargs=None, *, exc, match=""):
    return pytest.param(module, name, tuple(args), dict(kwargs or {}), exc, match,
                        id=re.sub(r"\s+", " ", f"{module}.{name}({', '.join(map(repr, args))[:40]}{', ' if args and kwargs else ''}"
                           f"{', '.join(f'{k}={v!r}' for k, v in (kwargs or {}).items())[:40]})"))


VE, TE = ValueError, TypeError  # the expected exception of each case (enforced)
LEAK = dict(background_texts=["t"], steps=1, lr=1e-3, seed=0, batch_size=1)  # contamination


def plt_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.figure().add_subplot()

def _more_fixtures():
    from llmlab import icl, tinyllama, widgets

    torch.manual_seed(0)
    return (icl.REVIEW_TEMPLATE, icl.ICLTask(), tinyllama.TinyLlamaConfig().to_hf(), widgets.Control("t", "T", [1, 2]),
            tinyllama.TinyLlama(tinyllama.TinyLlamaConfig(num_hidden_layers=1, hidden_size=16, intermediate_size=32,
                                                          num_attention_heads=2, num_key_value_heads=1, head_dim=8)))


ICL_TEMPLATE, ICL_TASK, LLAMA_CFG, CONTROL, TINY_LLAMA = _more_fixtures()
q = torch.randn(1, 2, 4)
CASES = [
    # ------------------------------------------------------------------ attention
    case("attention", "causal_mask", [0], exc=VE, match="t_q"),
    case("attention", "causal_mask", [2.5], exc=TE, match="t_q"),
    case("attention", "causal_mask", ["3"], exc=TE, match="t_q"),
    case("attention", "padding_mask", [torch.tensor([[2, 0]])], exc=VE, match="attention_mask"),
    case("attention", "padding_mask", [[[1, 0]]], exc=TE, match="attention_mask"),
    case("attention", "scaled_dot_product_attention", [q, q, q], {"mask": torch.tensor([[2, 0], [1, 1]])}, exc=VE, match="mask"),
    case("attention", "scaled_dot_product_attention", [q, q, q], {"mask": torch.tensor([[1.0, 0.0], [1.0, 1.0]])}, exc=VE, match="mask"),
    case("attention", "scaled_dot_product_attention", [[[1.0]], q, q], exc=TE, match="q must be a torch.Tensor"),
    case("attention", "scaled_dot_product_attention", [q, q, q], {"scale": 0}, exc=VE, match="scale"),
    case("attention", "scaled_dot_product_attention", [q, q, q], {"mask": torch.ones(3, 3, dtype=torch.bool)}, exc=VE, match="mask"),
    case("attention", "MultiHeadAttention", [8, 3], exc=VE, match="n_heads"),
    case("attention", "MultiHeadAttention", [8.0, 2], exc=TE, match="d_model"),
    case("attention", "sinusoidal_positional_encoding", [0, 8], exc=VE, match="n_positions"),
    case("attention", "sinusoidal_positional_encoding", [4, 7], exc=VE, match="d_model"),
    case("attention", "sinusoidal_positional_encoding", [4.0, 8], exc=TE, match="n_positions"),
    case("attention", "gpt2_forward", [NAME, torch.zeros(1, 3, dtype=torch.long)], exc=TE, match=MODEL_HINT),
    case("attention", "gpt2_forward", [MODEL, torch.tensor([[1, 25]])], exc=VE, match="input_ids.*vocabulary"),
    case("attention", "attention_maps", [NAME, None, "hi"], exc=TE, match=MODEL_HINT),
    case("attention", "contextual_vector", [NAME, None, "a cat", "cat"], exc=TE, match=MODEL_HINT),
    case("attention", "plot_attention", [None, [[0.5]], ["a"]], exc=TE, match="weights"),
    case("attention", "plot_attention", [None, torch.ones(2, 2), "ab"], exc=TE, match="tokens"),
    case("attention", "head_scores", [torch.ones(1, 1, 3, 3), 0], exc=VE, match="first_query"),
    case("attention", "head_scores", [torch.ones(1, 1, 3, 3), 1.5], exc=TE, match="first_query"),
    case("attention", "strongest_head", [[[0.1, 0.2]]], exc=TE, match="score"),
    case("attention", "next_token_probabilities", [NAME, None, "hi"], exc=TE, match=MODEL_HINT),
    case("attention", "group_permutation_test", [torch.ones(1, 3), torch.ones(2, 3)], exc=VE, match="at least 2"),
    case("attention", "GroupTest", [("a", "b"), 0.1, 1.5, 6], exc=VE, match="p must be"),
    case("attention", "group_permutation_test", [torch.ones(2, 3), torch.ones(2, 4)], exc=VE, match="same width"),
    case("attention", "group_permutation_test", [[[1.0]], torch.ones(2, 3)], exc=TE, match="a must be"),
    case("attention", "group_permutation_test", [torch.ones(12, 3), torch.ones(12, 3)], exc=VE, match="max_splits"),
    # ------------------------------------------------------------------ diagrams
    case("diagrams", "decoder_stack", [], {"norm": ""}, exc=TE, match="norm"),
    case("diagrams", "decoder_stack", [], {"mlp": 3}, exc=TE, match="mlp"),
    case("diagrams", "draw_decoder", [None, [("a", "io", False)], 2], exc=TE, match="ax"),
    case("diagrams", "draw_decoder", [plt_axes(), [("a", "what", False)], 2], exc=VE, match="boxes"),
    case("diagrams", "draw_decoder", [plt_axes(), [("a", "io", False)], 0], exc=VE, match="n_layers"),
    # ------------------------------------------------------------------ memory
    case("memory", "bytes_per_param", ["fp8"], exc=VE, match="precision"),
    case("memory", "bytes_per_param", ["mixed", "sgd2"], exc=VE, match="optimizer"),
    case("memory", "model_states_per_gpu", [-1], exc=VE, match="n_params"),
    case("memory", "model_states_per_gpu", [NAN], exc=VE, match="n_params"),
    case("memory", "model_states_per_gpu", [1e9, 0], exc=VE, match="n_gpus"),
    case("memory", "model_states_per_gpu", [1e9, 8, 4], exc=VE, match="zero_stage"),
    case("memory", "activation_bytes", [0, 8, 2, 16], exc=VE, match="n_layers"),
    case("memory", "activation_bytes", [2, 8, 2, 16], {"method": "magic"}, exc=VE, match="method"),
    case("memory", "activation_bytes", [2, 8, 2, 16], {"dropout": "no"}, exc=TE, match="dropout"),
    case("memory", "activation_bytes", [2, 8, 2, 16], {"vocab_size": 0}, exc=VE, match="vocab_size"),
    case("memory", "activation_bytes", [2, 8, 2, 16], {"tensor_parallel": 0}, exc=VE, match="tensor_parallel"),
    case("memory", "model_parallel_gpu_memory", [1e9, 1e8, 64, 3], exc=VE, match="must divide"),
    case("memory", "model_parallel_gpu_memory", [-1.0, 1e8, 64], exc=VE, match="split_params"),
    case("memory", "model_parallel_gpu_memory", [1e9, 1e8, 0], exc=VE, match="n_gpus"),
    case("memory", "gpt_param_count", [2, 0, 100], exc=VE, match="hidden"),
    case("memory", "gpt_param_count", [2, 8, 100, -1], exc=VE, match="seq_len"),
    case("memory", "training_memory", [1e9], {"batch_size": 0}, exc=VE, match="batch_size"),
    case("memory", "training_memory", [1e9], {"activations": "lots"}, exc=VE, match="activation"),
    case("memory", "measure_model_states", [NAME], exc=TE, match=MODEL_HINT),
    case("memory", "measure_model_states", [MODEL, "adam"], exc=TE, match="optimizer"),
    case("memory", "cuda_peak_training_bytes", [NAME, IDS[None, :8]], exc=TE, match=MODEL_HINT),
    case("memory", "saved_activation_bytes", [NAME, IDS[None, :8]], exc=TE, match=MODEL_HINT),
    case("memory", "saved_activation_bytes", [MODEL, torch.tensor([[1, 2, 99]])], exc=VE, match="input_ids"),
    case("memory", "shard_group_size", ["zero4", 4], exc=VE, match="strategy"),
    case("memory", "shard_group_size", ["hybrid", 4, 3], exc=VE, match="sharding_factor"),
    case("memory", "strategy_states_per_gpu", [1e6, "ddp", 0], exc=VE, match="n_gpus"),
    case("memory", "fsdp_shard_numel", [(4, 4), 2, 2], exc=VE, match="index"),
    case("memory", "fsdp_shard_numel", [(4, -4), 2, 0], exc=VE, match="shape"),
    case("memory", "fsdp_shard_numel", ["44", 2, 0], exc=TE, match="shape"),
    case("memory", "fsdp_padded_shard_numel", [(4, 4), 0], exc=VE, match="n_shards"),
    case("memory", "fsdp_padded_shard_numel", [(4, -4), 2], exc=VE, match="shape"),
    case("memory", "zero1_partition", [[4, -1], 2], exc=VE, match="numels"),
    case("memory", "zero1_partition", [[4, 4], 0], exc=VE, match="n_ranks"),
    case("memory", "rank_states_exact", [[(10, -4)], "zero3", 2, 0], exc=VE, match="param_shapes"),
    case("memory", "rank_states_exact", [[(10, 4)], "zero3", 2, 2], exc=VE, match="rank"),
    case("memory", "rank_states_exact", [[(10, 4)], "zero3", 2, 1.0], exc=TE, match="rank"),
    case("memory", "sharded_gpu_memory", [1e9, 8, 3], exc=VE, match="sharding_factor"),
    case("memory", "sharded_gpu_memory", [1e9, 8, 8], {"offload": "zero"}, exc=VE, match="fsdp2"),
    case("memory", "sharded_gpu_memory", [1e9, 8, 8], {"activations": -1}, exc=VE, match="activations"),
    case("memory", "sharded_gpu_memory", [1e9, 8, 8], {"activations": NAN}, exc=VE, match="activations"),
    # ------------------------------------------------------------------ train
    case("train", "TrainConfig", [], {"lr": NAN}, exc=VE, match="lr"),
    case("train", "TrainConfig", [], {"lr": INF}, exc=VE, match="lr"),
    case("train", "TrainConfig", [], {"lr": "3e-3"}, exc=TE, match="lr"),
    case("train", "TrainConfig", [], {"grad_clip": -1.0}, exc=VE, match="grad_clip"),
    case("train", "TrainConfig", [], {"weight_decay": -0.1}, exc=VE, match="weight_decay"),
    case("train", "TrainConfig", [], {"min_lr_ratio": -0.5}, exc=VE, match="min_lr_ratio"),
    case("train", "TrainConfig", [], {"min_lr_ratio": 1.5}, exc=VE, match="min_lr_ratio"),
    case("train", "TrainConfig", [], {"steps": 10.0}, exc=TE, match="steps"),
    case("train", "TrainConfig", [], {"steps": 0}, exc=VE, match="steps"),
    case("train", "TrainConfig", [], {"steps": "100"}, exc=TE, match="steps"),
    case("train", "TrainConfig", [], {"warmup_steps": -1}, exc=VE, match="warmup_steps"),
    case("train", "check_corpus", ["one story"], exc=TE, match="list of strings"),
    case("train", "learning_rate", [0, {"lr": 1e-3}], exc=TE, match="TrainConfig"),
    case("train", "learning_rate", [-1, CFG], exc=VE, match="step"),
    case("train", "random_batch", [IDS, 0, 8, torch.Generator()], exc=VE, match="batch_size"),
    case("train", "random_batch", [IDS, 2, 8, 42], exc=TE, match="generator"),
    case("train", "random_batch", [IDS.float(), 2, 8, torch.Generator()], exc=TE, match="ids"),
    case("train", "cross_entropy", [torch.randn(2, 5), torch.tensor([1, 7])], exc=VE, match="targets"),
    case("train", "causal_lm_loss", [NAME, IDS[None, :4], IDS[None, 1:5]], exc=TE, match=MODEL_HINT),
    case("train", "causal_lm_loss", [MODEL, torch.tensor([[1, 30]]), torch.tensor([[1, 2]])], exc=VE, match="x.*vocabulary"),
    case("train", "make_optimizer", [MODEL, CFG, "gpu"], exc=VE, match="device"),
    case("train", "make_optimizer", [NAME, CFG, "cpu"], exc=TE, match=MODEL_HINT),
    case("train", "make_optimizer", [MODEL, {"lr": 1e-3}, "cpu"], exc=TE, match="TrainConfig"),
    case("train", "evaluate", [MODEL, IDS, CFG, "tpu"], exc=VE, match="device"),
    case("train", "train_causal_lm", [NAME, IDS, IDS, CFG], exc=TE, match=MODEL_HINT),
    case("train", "train_causal_lm", [MODEL, IDS, IDS, {"steps": 2}], exc=TE, match="TrainConfig"),
    case("train", "train_causal_lm", [MODEL, IDS, IDS, CFG], {"device": "gpu0"}, exc=VE, match="device"),
    case("train", "train_loop", [MODEL, CFG, "cpu", None, None], exc=TE, match="batch_loss"),
    case("train", "train_loop", [MODEL, CFG, "quantum", lambda g: None, lambda: 0.0], exc=VE, match="device"),
    case("train", "document_losses", [NAME, [[1, 2, 3]]], exc=TE, match=MODEL_HINT),
    case("train", "document_losses", [MODEL, []], exc=VE, match="non-empty"),
    case("train", "document_losses", [MODEL, [[1]]], exc=VE, match="at least 2 tokens"),
    case("train", "document_losses", [MODEL, [list(range(1, 20))]], exc=VE, match="context window"),
    # ------------------------------------------------------------------ domain
    case("domain", "word_pieces", [None, 5], exc=TE, match="text"),
    case("domain", "fertility", [None, []], exc=VE, match="texts"),
    case("domain", "fertility_table", [[], {}], exc=TE, match="tokenizers"),
    case("domain", "generate_domain_document", [42, "medical"], exc=TE, match=r"rng.*random\.Random\(42\)"),
    case("domain", "generate_domain_document", [random.Random(0), "cooking"], exc=VE, match="domain"),
    case("domain", "generate_domain_corpus", [0], exc=VE, match="n_per_domain"),
    case("domain", "generate_domain_corpus", [2.5], exc=TE, match="n_per_domain"),
    case("domain", "write_domain_corpus", ["/tmp/x.txt.gz", -1], exc=VE, match="n_per_domain"),
    case("domain", "load_domain_corpus", ["test"], exc=VE, match="split"),
    case("domain", "mix_documents", ["abc", ["b"], 0.5, 4], exc=TE, match="domain_docs"),
    case("domain", "mix_documents", [["a"], ["b"], 1.5, 4], exc=VE, match="domain_fraction"),
    case("domain", "mix_documents", [["a"], ["b"], 0.5, 0], exc=VE, match="n_docs"),
    case("domain", "encode_documents", [None, "one doc"], exc=TE, match="docs"),
    case("domain", "token_share", [None, "abc", ["b"]], exc=TE, match="domain_docs"),
    case("domain", "held_out_losses", [MODEL, None, {}], exc=VE, match="texts must name"),
    case("domain", "split_sentences", [42], exc=TE, match="doc must be a string"),
    case("domain", "hold_out_phrases", [["a doc"], "mens rea"], exc=TE, match="phrases must be a non-empty list"),
    case("domain", "hold_out_phrases", [[]], exc=VE, match="docs is empty"),
    case("domain", "phrase_counts", [["a doc"], [""]], exc=VE, match="phrases must hold only non-empty"),
    case("domain", "domain_tokenizer", [0], exc=VE, match="vocab_size must be a positive int"),
    case("domain", "mix_by_tokens", ["stories-1m", ["a"], ["b"], 0.5, 10], exc=TE, match="tokenizer"),
    case("domain", "nats_per_byte", [NAME, None, ["a"]], exc=TE, match=MODEL_HINT),
    case("domain", "fresh_model", [None], exc=TE, match="tokenizer"),
    case("domain", "run_setup", ["resumed", 1.0, ["b"]], exc=VE, match="start must be"),
    case("domain", "run_setup", ["scratch", 1.5, ["b"]], exc=VE, match="domain_share"),
    case("records.domain_adaptation", "load", [42], exc=TE, match="path"),
    case("records.domain_adaptation", "main", [["--steps", "x"]], exc=SystemExit, match=""),
    case("domain", "continue_pretraining", [NAME, None, ["a"], ["b"], {}, CFG], exc=TE, match=MODEL_HINT),
    case("records.domain_adaptation", "run", [], {"steps": 0}, exc=VE, match="steps must be a positive int"),
    case("records.domain_adaptation", "run", [], {"steps": 2.5}, exc=TE, match="steps"),
    # ------------------------------------------------------------------ bench
    case("bench", "matmul_flops", [0], exc=VE, match="size"),
    case("bench", "matmul_flops", [64.0], exc=TE, match="size"),
    case("bench", "matmul_flops", [64], {"device": "gpu"}, exc=VE, match="device"),
    case("bench", "plain_loop", [NAME, IDS, 2, 2, 8], exc=TE, match=MODEL_HINT),
    case("bench", "plain_loop", [MODEL, IDS, 0, 2, 8], exc=VE, match="steps"),
    case("bench", "compare_loops", ["s5"], {"steps": 0}, exc=VE, match="steps"),
    case("bench", "compare_loops", ["s5"], {"rounds": 1.5}, exc=TE, match="rounds"),
    case("bench", "mfu", [0, 10, 1e9], exc=VE, match="n_params"),
    case("bench", "mfu", [10, 10, NAN], exc=VE, match="peak_flops"),
    case("bench", "run", [], {"steps": 0}, exc=VE, match="steps"),
    case("bench", "run", [], {"device": "gpu"}, exc=VE, match="device"),
    case("bench", "report", [{}], exc=TE, match="result"),
    case("records.bench_cpu", "main", [["--steps", "zero"]], exc=SystemExit, match=""),
    case("records.bench_cpu", "run", [], {"steps": 0}, exc=VE, match="steps"),
    case("records.bench_cpu", "load", [42], exc=TE, match="path"),
    # ------------------------------------------------------------------ distributed
    case("distributed.launcher", "max_world_size", ["mpi"], exc=VE, match="backend"),
    case("distributed.launcher", "resolve_backend", ["mpi", 2], exc=VE, match="backend"),
    case("distributed.launcher", "resolve_backend", ["gloo", 0], exc=VE, match="world_size"),
    case("distributed.launcher", "default_sharding_factor", [0], exc=VE, match="world_size"),
    case("distributed.launcher", "default_sharding_factor", [2.0], exc=TE, match="world_size"),
    case("distributed.launcher", "validate", [["ddp"], 0], exc=VE, match="world_size"),
    case("distributed.launcher", "validate", [["sp"], 2], exc=VE, match="strategy"),
    case("distributed.launcher", "validate", [["pp"], 2], {"microbatches": 3}, exc=VE, match="micro-batches"),
    case("distributed.launcher", "validate", [["pp"], 2], {"pp_schedule": "zb"}, exc=VE, match="pp_schedule"),
    case("distributed.launcher", "validate", [["tp"], 3], exc=VE, match="world_size must divide"),
    case("distributed.launcher", "validate", [["ddp"], 2], {"bubble_microbatches": (2,)}, exc=VE, match="add 'pp'"),
    case("tinyllama", "llama_config", [{"layers": 2}], exc=VE, match="unknown llama settings"),
    case("tinyllama", "llama_config", ["smollm2"], exc=TE, match="llama"),
    case("distributed.tables", "tp_all_reduces_per_step", [0], exc=VE, match="n_layers"),
    case("distributed.tables", "model_parallel_table", [None], exc=TE, match="RunResult"),
    case("memory", "bubble_fraction", [2, 0], exc=VE, match="n_microbatches"),
    case("memory", "bubble_fraction", [0.5, 2], exc=TE, match="n_stages"),
    case("memory", "bubble_fraction", [2, 4], {"chunks": 0}, exc=VE, match="chunks"),
    case("distributed.tables", "bubble_table", [None], exc=TE, match="RunResult"),
    case("distributed.launcher", "write_spec", [42], exc=TE, match="folder"),
    case("records.pipeline_bubble", "run", [3], exc=TE, match="out"),
    case("records.pipeline_bubble", "run", ["/tmp/x.json", {"stages": 2}], exc=VE, match="unknown plan keys"),
    case("records.pipeline_bubble", "load", [3], exc=TE, match="path"),
    case("records.pipeline_bubble", "load", ["/nonexistent.json"], exc=VE, match="no bubble record"),
    case("distributed.tables", "model_parallel_peak_table", ["tp"], exc=TE, match="RunResult"),
    case("distributed.explorer", "explorer_parallel_memory", ["7B", 64, 1, 1, 4], exc=VE, match="model"),
    case("distributed.explorer", "explorer_parallel_memory", ["13B", 64, 3, 1, 4], exc=VE, match="must divide"),
    case("distributed.explorer", "explorer_parallel_memory", ["13B", 64, 2, 2, 0], exc=VE, match="microbatches"),
    case("distributed.launcher", "write_spec", ["/tmp/llmlab-spec", ["ddp"], 2], {"stepz": 2}, exc=VE, match="unknown settings"),
    case("distributed.launcher", "write_spec", ["/tmp/llmlab-spec", ["zero4"], 2], exc=VE, match="strategy"),
    case("distributed.results", "read_results", [None], exc=TE, match="spec_path"),
    case("distributed.results", "read_results", ["/nonexistent/spec.json"], exc=VE, match="no spec file"),
    case("distributed.launcher", "validate", [["ddp"], 2], {"lr": NAN}, exc=VE, match="lr"),
    case("distributed.results", "param_shapes", [{"n_layers": 2}], exc=VE, match="unknown model settings"),
    case("distributed.results", "param_shapes", ["stories-1m"], exc=TE, match="model"),
    case("distributed.launcher", "run", [["ddp"], 2], {"lr": NAN}, exc=VE, match="lr"),
    case("distributed.launcher", "run", [["ddp"], 2], {"lr": -1.0}, exc=VE, match="lr"),
    case("distributed.launcher", "run", [["ddp"], 2], {"seed": -1}, exc=VE, match="seed"),
    case("distributed.launcher", "run", [["ddp"], 2], {"steps": 0}, exc=VE, match="steps"),
    case("distributed.launcher", "run", [["ddp"], 2], {"steps": 2.0}, exc=TE, match="steps"),
    case("distributed.launcher", "run", [["ddp"], 2.0], exc=TE, match="world_size"),
    case("distributed.launcher", "run", [["ddp"], 10_000], exc=VE, match="world_size"),
    case("distributed.launcher", "run", [["ddp"], 2], {"n_batches": 0}, exc=VE, match="n_batches"),
    case("distributed.launcher", "run", [["ddp"], 2], {"fail_ranks": (5,)}, exc=VE, match="fail_ranks"),
    case("distributed.launcher", "run", [["ddp"], 2], {"model": "stories-1m"}, exc=TE, match="model"),
    case("distributed.launcher", "run", [["ddp"], 2], {"timeout_s": INF}, exc=VE, match="timeout_s"),
    case("distributed.launcher", "run", [["ddp"], 2], {"sharding_factor": 2}, exc=VE, match="sharding_factor"),
    case("distributed.tables", "predicted_table", [{}], exc=TE, match="RunResult"),
    case("distributed.tables", "textbook_comm_bytes", ["tp", 100, 4], exc=VE, match="strategy"),
    case("distributed.tables", "textbook_comm_bytes", ["ddp", 100, 0], exc=VE, match="world_size"),
    case("distributed.tables", "textbook_comm_bytes", ["hybrid", 100, 4, 3], exc=VE, match="sharding_factor"),
    case("distributed.tables", "textbook_comm_bytes", ["ddp", float("nan"), 4], exc=VE, match="n_params"),
    case("distributed.tables", "textbook_comm_bytes", ["ddp", "1e9", 4], exc=VE, match="n_params"),
    case("distributed.tables", "comm_table", [None], exc=TE, match="RunResult"),
    case("distributed.tables", "peak_table", [None], exc=TE, match="RunResult"),
    case("distributed.tables", "predicted_activation_bytes", ["run"], exc=TE, match="RunResult"),
    case("distributed.explorer", "explorer_memory", ["7B", 64, 8, 3, "mixed", False], exc=VE, match="model"),
    case("distributed.explorer", "explorer_memory", ["13B", 0, 8, 3, "mixed", False], exc=VE, match="n_gpus"),
    case("distributed.explorer", "explorer_memory", ["13B", 64, 8, 5, "mixed", False], exc=VE, match="zero_stage"),
    case("distributed.explorer", "explorer_memory", ["13B", 64, 0, 3, "mixed", False], {"tensor_parallel": 3},
         exc=VE, match="must divide"),
    case("distributed.explorer", "explorer_memory", ["13B", 64, 0, 3, "mixed", False], {"activations": "none"},
         exc=VE, match="activations"),
    case("distributed.explorer", "explorer_memory", ["13B", 64, 0, 3, "mixed", False], {"pipeline_parallel": 0},
         exc=VE, match="pipeline_parallel"),
    case("distributed.explorer", "gpt_shape", [1e6, 24, 2048, 24], exc=VE, match="must exceed"),
    case("distributed.explorer", "gpt_shape", [1e9, 0, 2048, 24], exc=VE, match="layers"),
    case("distributed.results", "check_result", [{}], exc=TE, match="RunResult"),
    case("distributed.tables", "fsdp_tp_states", [None], exc=TE, match="RunResult"),
    case("distributed.launcher", "default_tensor_parallel", [0], exc=VE, match="world_size"),
    case("distributed.launcher", "validate", [["fsdp_tp"], 4], {"tensor_parallel": 3}, exc=VE, match="must divide"),
    case("distributed.launcher", "validate", [["tp"], 2], {"tensor_parallel": 2}, exc=VE, match="add 'fsdp_tp'"),
    case("distributed.launcher", "validate", [["ddp"], 2], {"offload": True}, exc=VE, match="CPUOffloadPolicy"),
    case("distributed.launcher", "validate", [["zero3"], 2], {"offload": 1}, exc=TE, match="offload"),
    case("memory", "model_parallel_gpu_memory", [1e9, 1e8, 64, 2, 2], {"sharding_factor": 3},
         exc=VE, match="sharding_factor"),
    case("memory", "model_parallel_gpu_memory", [1e9, 1e8, 64], {"offload": "yes"}, exc=TE, match="offload"),
    # ------------------------------------------------------------------ quant
    case("quant", "float_bits", [1.0, "fp12"], exc=VE, match="fmt|format"),
    case("quant", "float_bits", ["1.0", "fp32"], exc=TE, match="x"),
    case("quant", "decode_bits", ["0101", "fp32"], exc=VE, match="bits"),
    case("quant", "decode_bits", ["0" * 31 + "2", "fp32"], exc=VE, match="bits"),
    case("quant", "format_info", ["int4"], exc=VE, match="fmt|format"),
    case("quant", "representable_values", ["fp32"], exc=VE, match="fmt|format"),
    case("quant", "quantize_absmax", [[1.0, 2.0]], exc=TE, match="x"),
    case("quant", "quantize_absmax", [torch.ones(2, 2)], {"axis": 2}, exc=VE, match="axis"),
    case("quant", "quantize_zeropoint", [torch.ones(2, 2)], {"axis": 1.0}, exc=TE, match="axis"),
    case("quant", "quantize_int8", [torch.ones(2, 2)], {"scheme": "nf4"}, exc=VE, match="scheme"),
    case("quant", "quantization_error", [torch.ones(2, 2), torch.ones(2, 2)], exc=TE, match="qx"),
    case("quant", "int8_matmul", [torch.ones(2, 3), torch.ones(4, 3)], {"mode": "fast"}, exc=VE, match="mode"),
    case("quant", "int8_matmul", [torch.ones(2, 3), torch.ones(3, 2)], exc=VE, match="same features"),
    case("quant", "Int8Tensor", ["q", 1, 0, None, "absmax"], exc=TE, match="q"),
    case("quant", "Int8Linear", [torch.ones(3), None], exc=VE, match="weight"),
    case("quant", "linear_layers", [NAME], exc=TE, match=MODEL_HINT),
    case("quant", "quantize_model", [NAME], exc=TE, match=MODEL_HINT),
    case("quant", "quantize_model", [MODEL], {"scheme": "nf4"}, exc=VE, match="scheme"),
    case("quant", "quantize_model", [MODEL], {"layers": "transformer.h.0.mlp.c_fc"}, exc=TE, match="layers"),
    case("quant", "conv1d_to_linear", [NAME], exc=TE, match=MODEL_HINT),
    case("quant", "torch_dynamic_quantize", [NAME], exc=TE, match=MODEL_HINT),
    case("quant", "state_bytes", [NAME], exc=TE, match=MODEL_HINT),
    case("quant", "quantize_groupwise", [[[1.0]]], exc=TE, match="x"),
    case("quant", "quantize_groupwise", [torch.ones(4, 32)], {"bits": 1}, exc=VE, match="bits"),
    case("quant", "quantize_groupwise", [torch.ones(4, 32)], {"group_size": 0}, exc=VE, match="group_size"),
    case("quant", "quantize_groupwise", [torch.ones(4, 32)], {"scheme": "nf4"}, exc=VE, match="scheme"),
    case("quant", "quantize_groupwise", [torch.ones(32)], exc=VE, match="matrix"),
    case("quant", "Int4Linear", [torch.ones(3), None], exc=VE, match="matrix"),
    case("quant", "quantize_model_4bit", [NAME], exc=TE, match=MODEL_HINT),
    case("quant", "quantize_model_4bit", [MODEL], {"group_size": 0}, exc=VE, match="group_size"),
    case("quant", "quantize_model_4bit", [MODEL], {"layers": "transformer.h.0.mlp.c_fc"}, exc=TE, match="layers"),
    case("quant", "torchao_quantize", [NAME], exc=TE, match=MODEL_HINT),
    case("quant", "torchao_quantize", [MODEL], {"method": "int3"}, exc=VE, match="method"),
    case("quant", "torchao_quantize", [MODEL], {"method": "int4_weight_only", "group_size": 3}, exc=VE, match="group_size"),
    case("quant", "roundtrip_weight", [torch.ones(2, 32)], {"scheme": "nf4"}, exc=VE, match="scheme"),
    case("quant", "roundtrip_weight", [torch.ones(2, 30)], {"scheme": "mxfp4"}, exc=VE, match="32"),
    case("quant", "roundtrip_weight", [torch.ones(32)], exc=VE, match="matrix"),
    case("quant", "roundtrip_model", [NAME], exc=TE, match=MODEL_HINT),
    case("quant", "roundtrip_model", [MODEL], {"scheme": "int3"}, exc=VE, match="scheme"),
    # ------------------------------------------------------------------ gguf_blocks
    case("gguf_blocks", "bits_per_weight", ["Q2"], exc=VE, match="block type"),
    case("gguf_blocks", "bits_per_weight", [4], exc=TE, match="kind"),
    case("gguf_blocks", "decode_q4_1", [[1, 2, 3]], exc=TE, match="uint8"),
    case("gguf_blocks", "decode_q4_1", [np.zeros(21, dtype=np.uint8)], exc=VE, match="blocks"),
    case("gguf_blocks", "decode_q8_0", [np.zeros(34, dtype=np.float32)], exc=TE, match="uint8"),
    case("gguf_blocks", "encode_q4_1", [np.zeros(31, dtype=np.float32)], exc=VE, match="multiple"),
    case("gguf_blocks", "encode_q4_1", [[0.0] * 32], exc=TE, match="weights"),
    case("gguf_blocks", "decode", [np.zeros(20, dtype=np.uint8), "Q5_K"], exc=VE, match="block type"),
    case("gguf_blocks", "decode", [[1.0], "F32"], exc=TE, match="F32"),
    case("gguf_blocks", "encode_mxfp4", [np.zeros(31, dtype=np.float32)], exc=VE, match="multiple"),
    case("gguf_blocks", "encode_mxfp4", [[0.0] * 32], exc=TE, match="weights"),
    case("gguf_blocks", "decode_mxfp4", [np.zeros(18, dtype=np.uint8)], exc=VE, match="blocks"),
    case("gguf_blocks", "decode_mxfp4", [np.zeros(17, dtype=np.float32)], exc=TE, match="uint8"),
    case("gguf_blocks", "read", [3], exc=TE, match="path"),
    case("gguf_blocks", "read", ["/no/such/file.gguf"], exc=VE, match="no GGUF"),
    case("gguf_blocks", "tensor_weights", ["model.gguf", "x"], exc=TE, match="reader"),
    case("gguf_blocks", "unpermute_rotary", [np.zeros((6, 2)), 2], exc=VE, match="rows"),
    case("gguf_blocks", "unpermute_rotary", [np.zeros((8, 2)), 0], exc=VE, match="n_heads"),
    case("gguf_blocks", "unpermute_rotary", [[[1.0]], 1], exc=TE, match="w"),
    case("gguf_blocks", "hf_name", ["blk.0.attn_x.weight"], exc=VE, match="GGUF tensor name"),
    case("gguf_blocks", "hf_name", [3], exc=TE, match="gguf_name"),
    # ------------------------------------------------------------------ quant_real
    case("quant_real", "english_ids", ["smollm2"], exc=TE, match="tokenizer"),
    case("quant_real", "story_ids", [None], exc=TE, match="tokenizer"),
    case("quant_real", "linear_bytes", [NAME, []], exc=TE, match=MODEL_HINT),
    case("quant_real", "linear_bytes", [MODEL, ["no.such.layer"]], exc=VE, match="no module"),
    case("quant_real", "linear_bytes", [MODEL, "transformer.h.0.mlp.c_fc"], exc=TE, match="names"),
    case("quant_real", "measure_scheme", ["INT3", MODEL, {}], exc=VE, match="name"),
    case("quant_real", "measure_scheme", ["INT8 absmax, per tensor", MODEL, [IDS]], exc=TE, match="texts"),
    case("quant_real", "measure_scheme", ["INT8 absmax, per tensor", MODEL, {"t": IDS}], {"seq_len": 0},
         exc=VE, match="seq_len"),
    case("quant_real", "live_slice", [NAME, None], exc=TE, match=MODEL_HINT),
    case("quant_real", "bitsandbytes_rows", [["x"]], exc=TE, match="texts"),
    case("quant_real", "activation_profile", [NAME, IDS], exc=TE, match=MODEL_HINT),
    case("quant_real", "activation_profile", [MODEL, IDS.view(10, 20)], exc=VE, match="dimensions"),
    case("quant_real", "ActInt8Linear", [torch.nn.Linear(2, 2), "per-row"], exc=VE, match="mode"),
    case("quant_real", "ActInt8Linear", [torch.nn.Linear(2, 2), "mixed"], {"threshold": -1}, exc=VE, match="threshold"),
    case("quant_real", "ActInt8Linear", ["lm_head", "mixed"], exc=TE, match="linear"),
    case("quant_real", "with_int8_activations", [MODEL, "per-row"], exc=VE, match="mode"),
    case("quant_real", "with_int8_activations", [NAME, "mixed"], exc=TE, match=MODEL_HINT),
    case("quant_real", "outlier_summary", [{}], exc=TE, match="profile"),
    case("records.quant_real", "run", [None, ["INT3"]], exc=VE, match="scheme"),
    case("records.quant_real", "run", [None, "INT8 absmax, per tensor"], exc=TE, match="schemes"),
    case("records.quant_real", "run", [42], exc=TE, match="out"),
    case("records.quant_real", "load", [42], exc=TE, match="path"),
    case("records.quant_real", "main", [["--bogus"]], exc=SystemExit, match=""),
    # ------------------------------------------------------------------ train_memory
    case("train_memory", "model_shape", [torch.nn.Linear(2, 2)], exc=TE, match="config"),
    case("train_memory", "model_shape", [NAME], exc=TE, match=MODEL_HINT),
    case("train_memory", "step_peak", [NAME, IDS.view(10, 20)], exc=TE, match=MODEL_HINT),
    case("train_memory", "step_peak", [MODEL, IDS], exc=VE, match="dimensions"),
    case("train_memory", "step_peak", [MODEL, IDS.view(10, 20)], {"steps": 0}, exc=VE, match="steps"),
    case("train_memory", "predict", [MODEL, 0, 4], exc=VE, match="batch_size"),
    case("train_memory", "predict", [MODEL, 2, 1.5], exc=TE, match="seq_len"),
    case("train_memory", "compare", [MODEL, [[1, 2]]], exc=TE, match="batch"),
    case("train_memory", "compare", [NAME, IDS.view(10, 20)], exc=TE, match=MODEL_HINT),
    case("records.training_peaks", "run", [42], exc=TE, match="path"),
    case("records.training_peaks", "load", [42], exc=TE, match="path"),
    case("records.training_peaks", "main", [["--bogus"]], exc=SystemExit, match=""),
    # ------------------------------------------------------------------ metrics
    case("metrics", "entropy_bits", [[0.5, 0.5]], exc=TE, match="probs"),
    case("metrics", "entropy_bits", [torch.tensor([0.5, -0.5])], exc=VE, match="probs"),
    case("metrics", "mean_loss_nats", [NAME, IDS], exc=TE, match=MODEL_HINT),
    case("metrics", "mean_loss_nats", [MODEL, torch.tensor([1, 2, 3, 99] * 10)], {"seq_len": 8}, exc=VE, match="token_ids.*vocabulary"),
    case("metrics", "mean_loss_nats", [MODEL, IDS], {"seq_len": 0}, exc=VE, match="seq_len"),
    case("metrics", "perplexity", [MODEL, IDS], {"batch_size": 0}, exc=VE, match="batch_size"),
    case("metrics", "perplexity", [MODEL, IDS], {"seq_len": 8, "device": "gpu"}, exc=VE, match="device"),
    case("metrics", "distinct_n", [["a b"], 0], exc=VE, match="n"),
    case("metrics", "distinct_n", [["a b"], 1.5], exc=TE, match="n"),
    case("metrics", "repeated_ngram_fraction", ["a b c", 0], exc=VE, match="n"),
    case("metrics", "in_vocabulary_fraction", [["a b"], "a"], exc=TE, match="vocabulary"),
    case("metrics", "rouge_l", [["a"], "a"], exc=TE, match="candidate"),
    # ------------------------------------------------------------------ nf4 (chapter 12)
    case("nf4", "quantize_nf4", [[1.0, 2.0]], exc=TE, match="w must be"),
    case("nf4", "quantize_nf4", [torch.ones(4, dtype=torch.int64)], exc=TE, match="floating"),
    case("nf4", "quantize_nf4", [torch.tensor([1.0, NAN])], exc=VE, match="finite"),
    case("nf4", "quantize_nf4", [torch.ones(0)], exc=VE, match="empty"),
    case("nf4", "quantize_nf4", [torch.ones(4)], {"block_size": 63}, exc=VE, match="block_size.*even"),
    case("nf4", "quantize_nf4", [torch.ones(4)], {"block_size": 0}, exc=VE, match="block_size"),
    case("nf4", "quantize_nf4", [torch.ones(4)], {"double_quant": "yes"}, exc=TE, match="double_quant"),
    case("nf4", "quantize_nf4", [torch.ones(4)], {"scale_block": 0}, exc=VE, match="scale_block"),
    case("nf4", "NF4Tensor", ["codes", torch.ones(1), None, None, (4,)], exc=TE, match="codes.*uint8"),
    case("nf4", "NF4Linear", [torch.ones(2, 2)], exc=TE, match="NF4Tensor"),
    case("nf4", "quantize_model_nf4", [NAME], exc=TE, match=MODEL_HINT),
    case("nf4", "quantize_model_nf4", [MODEL], {"target_modules": "q_proj"}, exc=TE, match="target_modules"),
    case("nf4", "quantize_model_nf4", [MODEL], {"target_modules": ["nope"]}, exc=VE, match="matches no"),
    case("nf4", "quantize_model_nf4", [MODEL], {"target_modules": ["lm_head"]}, exc=VE, match="share"),
    case("nf4", "quantize_model_nf4", [MODEL], {"block_size": 3}, exc=VE, match="block_size"),
    case("nf4", "model_bytes", [NAME], exc=TE, match=MODEL_HINT),
    # ------------------------------------------------------------------ data
    case("data", "generate_story", [42], exc=TE, match=r"rng.*random\.Random\(42\)"),
    case("data", "generate_stories", [-1], exc=VE, match="n"),
    case("data", "generate_stories", [2.5], exc=TE, match="n"),
    case("data", "generate_stories", ["10"], exc=TE, match="n"),
    case("data", "write_corpus", ["/tmp/x.txt.gz", 0], exc=VE, match="n"),
    case("data", "load_corpus", ["dev"], exc=VE, match="split"),
    case("data", "corpus_vocabulary", ["one story"], exc=TE, match="stories"),
    case("data", "icl_review", [7], exc=TE, match="rng"),
    case("data", "icl_classes", [["a review"]], exc=TE, match="review"),
    case("data", "icl_instruction", ["no-such-rule", ("a", "b")], exc=VE, match="rule"),
    case("data", "icl_instruction", ["sentiment", "ab"], exc=TE, match="labels"),
    case("data", "icl_episode", [random.Random(0), 0], exc=VE, match="n_items"),
    case("data", "icl_episode", [3, 4], exc=TE, match="rng"),
    case("data", "icl_episode", [random.Random(0), 4], {"repeat": 1.5}, exc=VE, match="repeat"),
    # ------------------------------------------------------------------ scaling
    case("scaling", "training_flops", [-1, 10], exc=VE, match="n_params"),
    case("scaling", "training_flops", [NAN, 10], exc=VE, match="n_params"),
    case("scaling", "pf_days", ["1e20"], exc=TE, match="flops"),
    case("scaling", "chinchilla_optimal", [0], exc=VE, match="compute_flops"),
    case("scaling", "chinchilla_loss", [1e9, -1], exc=VE, match="n_tokens"),
    case("scaling", "training_days", [1e9, 1e10, 0, 1e14], exc=VE, match="n_gpus"),
    case("scaling", "achieved_flops_per_gpu", [1e9, 1e10, 8, 0], exc=VE, match="days"),
    case("scaling", "optimal_allocation", [-5], exc=VE, match="compute_flops"),
    case("scaling", "plan_budget", [0], exc=VE, match="compute_flops"),
    case("scaling", "reproduce_days_table", [{}, {}], exc=TE, match="days"),
    case("scaling", "reproduce_days_table", [{"5B": {8: 1.0}}, {}], exc=VE, match="sizes"),
    case("scaling", "attention_flops_share", [1e6, 2, 64, 0], exc=VE, match="seq_len"),
    case("scaling", "attention_flops_share", [-1, 2, 64, 128], exc=VE, match="n_params"),
    case("scaling", "plan_budget", [1e23], {"n_gpus": 0}, exc=VE, match="n_gpus"),
    case("scaling", "gpu_hours_to_flops", [-1], exc=VE, match="gpu_hours"),
    case("scaling", "BloombergBudget", [], {"n_params": -1}, exc=VE, match="n_params"),
    case("scaling", "throughput_verdict", [0], exc=VE, match="flops_per_gpu"),
    case("scaling", "throughput_verdict", [1e14], {"far_below": 1.5}, exc=VE, match="far_below"),
    case("scaling", "throughput_verdict", [1e14], {"tolerance": -0.1}, exc=VE, match="tolerance"),
    case("scaling", "published_throughput", [[(175e9, 1024, 24)]], exc=TE, match="runs"),
    case("scaling", "published_throughput", [], {"measured": 0}, exc=VE, match="measured"),
    case("scaling", "predicted_days", [[175e9], [64]], exc=TE, match="sizes"),
    case("scaling", "predicted_days", [{"175B": 175e9}, 64], exc=TE, match="gpu_counts"),
    case("scaling", "predicted_days", [{"175B": 175e9}, [0]], exc=VE, match="n_gpus"),
    case("scaling", "predicted_days", [{"175B": -1.0}, [64]], exc=VE, match="n_params"),
    # ------------------------------------------------------------------ scaling_fits
    case("scaling_fits", "fit_power_law", [[1, 2, 3], [1, 2]], exc=VE, match="x|y|length|same"),
    case("scaling_fits", "fit_power_law", [[1, 2, 3], [1, -2, 3]], exc=VE, match="y"),
    case("scaling_fits", "fit_chinchilla", [[1e6], [1e8], [3.0]], exc=VE, match="point|n_params|at least"),
    case("scaling_fits", "tokens_per_param_at", [1e20, {"a": 1}], exc=TE, match="fit"),
    case("scaling_fits", "isoflop_minima", ["sweep.csv"], exc=TE, match="sweep"),
    case("scaling_fits", "frontier", [None], exc=TE, match="sweep"),
    case("scaling_fits", "fit_frontier", [[1e18, 1e19], [3.0]], exc=VE, match="compute|loss|length|same"),
    # ------------------------------------------------------------------ sweep
    case("sweep", "sweep_model", ["s99"], exc=VE, match="size"),
    case("sweep", "count_params", [NAME], exc=TE, match=MODEL_HINT),
    case("sweep", "sweep_config", ["s5", 0], exc=VE, match="compute_flops"),
    case("sweep", "run_point", ["s99", 1e12, IDS, IDS], exc=VE, match="size"),
    case("records.scaling_sweep", "run", ["/tmp/x.csv", "plan"], exc=TE, match="plan"),
    case("records.scaling_sweep", "load", ["/no/such/file.csv"], exc=VE, match="file|sweep"),
    case("sweep", "rerun", ["s5", None], exc=TE, match="points"),
    case("records.scaling_sweep", "main", [["--no-such-flag"]], exc=SystemExit, match=""),
    case("widgets", "draw_budget", [None, {"n_params": 1}], exc=TE, match="plan"),
    # ------------------------------------------------------------------ lora (chapter 12)
    case("lora", "LoRALinear", ["q_proj", 4, 8.0], exc=TE, match="base must be a layer"),
    case("lora", "LoRALinear", [torch.nn.ReLU(), 4, 8.0], exc=TE, match="in_features"),
    case("lora", "LoRALinear", [torch.nn.Linear(4, 3), 0, 8.0], exc=VE, match="r must"),
    case("lora", "LoRALinear", [torch.nn.Linear(4, 3), 2, 0.0], exc=VE, match="alpha"),
    case("lora", "LoRALinear", [torch.nn.Linear(4, 3), 2, 4.0, 1.0], exc=VE, match="dropout"),
    case("lora", "add_lora", [NAME, 4, 8.0, ["q_proj"]], exc=TE, match=MODEL_HINT),
    case("lora", "add_lora", [MODEL, 4, 8.0, ["q_proj"]], exc=VE, match=r"q_proj.*\['lm_head'\]"),
    case("lora", "add_lora", [MODEL, 0, 8.0, ["lm_head"]], exc=VE, match="r must"),
    case("lora", "add_lora", [MODEL, 4, -1.0, ["lm_head"]], exc=VE, match="alpha"),
    case("lora", "add_lora", [MODEL, 4, 8.0, "lm_head"], exc=TE, match="target_modules"),
    case("lora", "add_lora", [MODEL, 4, 8.0, ["lm_head"]], {"dropout": 1.0}, exc=VE, match="dropout"),
    case("lora", "merge_lora", [NAME], exc=TE, match=MODEL_HINT),
    case("lora", "trainable_parameters", [NAME], exc=TE, match=MODEL_HINT),
    case("lora", "lora_layers", [42], exc=TE, match="model"),
    case("lora", "load_peft_adapter", [MODEL, {}], exc=VE, match="no LoRA adapters"),
    case("lora", "load_peft_adapter", [MODEL, [("a", 1)]], exc=TE, match="state_dict"),
    case("lora", "load_peft_adapter", [MODEL, {}], {"alpha": 0}, exc=VE, match="alpha"),
    case("lora", "lora_count", [0, 4, 2], exc=VE, match="in_features"),
    case("lora", "lora_count", [4, 4, 1.5], exc=TE, match="r must"),
    case("lora", "count_for_model", [NAME, 4, ["q_proj"]], exc=TE, match=MODEL_HINT),
    case("lora", "count_for_model", [MODEL, 4, ["c_attn"]], exc=VE, match="linear layers are named"),
    # ------------------------------------------------------------------ prompt_tuning
    case("prompt_template", "PromptTemplate", ["no answer slot"], exc=VE, match="template"),
    case("prompt_template", "PromptTemplate", [42], exc=TE, match="template"),
    case("prompt_template", "few_shot_template", ["Q: {text} A: {answer}", []], exc=VE, match="template"),
    case("prompt_template", "encode", [None, None, {}], exc=TE, match="tokenizer|template"),
    case("prompt_tuning", "SoftPrompt", [NAME, 4], exc=TE, match=MODEL_HINT),
    case("prompt_tuning", "SoftPrompt", [MODEL, 0], exc=VE, match="n_virtual"),
    case("prompt_tuning", "SoftPrompt", [MODEL, 2], {"init_ids": [1, 99]}, exc=VE, match="init_ids"),
    case("prompt_tuning", "trainable_parameters", [NAME], exc=TE, match=MODEL_HINT),
    case("prompt_tuning", "build_inputs", [NAME, None, []], exc=TE, match=MODEL_HINT),
    case("prompt_tuning", "answer_log_probs", [NAME, None, []], exc=TE, match=MODEL_HINT),
    case("prompt_tuning", "answer_loss", [NAME, None, []], exc=TE, match=MODEL_HINT),
    case("prompt_tuning", "predict", [MODEL, None, None, [{"text": "x"}], "good"], exc=TE, match="candidates"),
    case("prompt_tuning", "predict", [NAME, None, None, [{"text": "x"}], ["good"]], exc=TE, match=MODEL_HINT),
    case("prompt_tuning", "accuracy", [MODEL, None, None, [], ["good"]], exc=VE, match="example"),
    case("prompt_tuning", "train_answers", [NAME, None, None, [], [], CFG], exc=TE, match=MODEL_HINT),
    case("prompt_tuning", "make_task", [0], exc=VE, match="n"),
    case("prompt_tuning", "make_task", [3.0], exc=TE, match="n"),
    case("prompt_template", "PromptTemplate", ["{virtual_0}{x}{virtual_1}{answer}"], exc=VE, match="virtual_token_splits"),
    case("prompt_template", "PromptTemplate", ["{x}{answer}"], {"truncate_field": "y"}, exc=VE, match="truncate_field"),
    case("prompt_tuning", "PromptEncoder", [0, 8], exc=VE, match="n_virtual"),
    case("prompt_tuning", "PromptEncoder", [2, 8, "gru"], exc=VE, match="kind"),
    case("prompt_tuning", "VirtualTokens", ["embed", 2], exc=TE, match="embed"),
    case("prompt_tuning", "VirtualTokens", [MODEL.get_input_embeddings(), 0], exc=VE, match="n_virtual"),
    case("prompt_tuning", "MultiTaskPrompts", [MODEL, {}], exc=TE, match="n_virtual"),
    case("prompt_tuning", "MultiTaskPrompts", [NAME, {"a": 1}], exc=TE, match=MODEL_HINT),
    case("prompt_tuning", "candidate_scores", [MODEL, None, None, [{"text": "x"}], "good"], exc=TE, match="candidates"),
    case("prompt_tuning", "train_tasks", [MODEL, None, {}, CFG], exc=TE, match="MultiTaskPrompts"),
    case("prompt_tuning", "unfreeze_last_layers", [MODEL, 0], exc=VE, match="n_layers"),
    case("prompt_tuning", "unfreeze_last_layers", [MODEL, 5], exc=VE, match="blocks"),
    case("prompt_tuning_real", "real_task", ["sentiment"], exc=TE, match="record"),
    case("prompt_tuning_real", "record_plan", [{"seeds": [0]}], exc=VE, match="missing the settings"),
    case("prompt_tuning_real", "run_one", [NAME, None, {}], exc=TE, match=MODEL_HINT),
    case("records.prompt_tuning_real", "run", [False, "RECORD"], exc=TE, match="record"),
    case("prompt_tuning_real", "summarize", [[]], exc=VE, match="rows"),
    case("records.prompt_tuning_real", "load", [42], exc=TE, match="path"),
    case("records.prompt_tuning_real", "main", [["--bogus"]], exc=SystemExit, match=""),
    case("prompt_tuning_real", "task_data", ["topic"], exc=VE, match="task"),
    case("prompt_tuning_real", "task_data", [3], exc=TE, match="task"),
    case("prompt_tuning_real", "fit_label_bias", ["1.0", [True]], exc=TE, match="log_odds"),
    case("prompt_tuning_real", "fit_label_bias", [[1.0, 2.0], [True, True]], exc=VE, match="both labels"),
    case("prompt_tuning_real", "fit_label_bias", [[1.0, NAN], [True, False]], exc=VE, match="finite"),
    case("prompt_tuning_real", "balanced_demos", ["train", ["a", "b"], 2, 0], exc=TE, match="train"),
    case("prompt_tuning_real", "balanced_demos", [[{"answer": "a"}], ["a", "b"], 3, 0], exc=VE, match="evenly"),
    case("prompt_tuning_real", "label_init_ids", [None, ["a"], 2, 0, 10], exc=TE, match="tokenizer"),
    case("prompt_tuning_real", "per_item", ["rows"], exc=TE, match="rows"),
    case("prompt_tuning_real", "per_item", [[]], exc=VE, match="rows"),
    case("prompt_tuning_real", "run_task_one", [NAME, None, {}, {}], exc=TE, match=MODEL_HINT),
    case("prompt_tuning_real", "run_task_one", [MODEL, None, "run", {}], exc=TE, match="run"),
    case("records.prompt_tuning_tasks", "baseline_plan", ["settings"], exc=TE, match="settings"),
    case("records.prompt_tuning_tasks", "chosen_lr", [[], "arbitrary", "lora"], exc=VE, match="method"),
    case("records.prompt_tuning_tasks", "chosen_lr", ["rows", "arbitrary", "prompt-tuning"], exc=TE, match="rows"),
    case("records.prompt_tuning_tasks", "run", [False, "settings"], exc=TE, match="settings"),
    case("records.prompt_tuning_tasks", "load", [42], exc=TE, match="path"),
    case("records.prompt_tuning_tasks", "main", [["--bogus"]], exc=SystemExit, match=""),
    case("prompt_tuning", "peft_model", [MODEL, {"num_virtual_tokens": 4}], exc=TE, match="PEFT config"),
    # ------------------------------------------------------------------ sampling
    case("sampling", "apply_temperature", [torch.zeros(5), 0], exc=VE, match="temperature"),
    case("sampling", "apply_temperature", [torch.zeros(5), NAN], exc=VE, match="temperature"),
    case("sampling", "top_k_filter", [torch.zeros(5), -1], exc=VE, match="k"),
    case("sampling", "top_k_filter", [torch.zeros(5), 2.5], exc=TE, match="k"),
    case("sampling", "top_p_filter", [torch.zeros(5), 1.5], exc=VE, match="top_p|p must"),
    case("sampling", "min_p_filter", [torch.zeros(5), -0.1], exc=VE, match="min_p"),
    case("sampling", "filter_logits", [torch.zeros(5)], {"top_p": 0}, exc=VE, match="p"),
    case("sampling", "apply_repetition_penalty", [torch.zeros(1, 5), torch.tensor([[1]]), 0], exc=VE, match="penalty"),
    case("sampling", "no_repeat_ngram_filter", [torch.zeros(1, 5), torch.tensor([[1]]), -1], exc=VE, match="n"),
    case("sampling", "process_logits", [torch.zeros(1, 5), torch.tensor([[1]])], {"repetition_penalty": -1}, exc=VE, match="penalty"),
    case("sampling", "next_token_distribution", [torch.zeros(5)], {"temperature": -1}, exc=VE, match="temperature"),
    case("sampling", "greedy_next_token", [[0.1, 0.9]], exc=TE, match="logits"),
    case("sampling", "sample_next_token", [torch.zeros(5)], {"generator": 42}, exc=TE, match="generator"),
    case("sampling", "generate", [NAME, torch.tensor([[1]])], exc=TE, match=MODEL_HINT),
    case("sampling", "generate", [MODEL, torch.tensor([[1, 99]])], exc=VE, match="input_ids.*vocabulary"),
    case("sampling", "generate", [MODEL, torch.tensor([[1]])], {"max_new_tokens": 2.5}, exc=TE, match="max_new_tokens"),
    case("sampling", "beam_search", [MODEL, torch.tensor([[1]])], {"num_beams": 0}, exc=VE, match="num_beams"),
    case("sampling", "beam_search", [NAME, torch.tensor([[1]])], exc=TE, match=MODEL_HINT),
    case("chat", "chat_batch", [NAME, "hello"], exc=TE, match="tokenizer|requests"),
    case("chat", "chat_text", [NAME, "hi"], exc=TE, match="tokenizer"),
    case("chat", "chat_complete", [NAME, None, ["hi"]], exc=TE, match=MODEL_HINT),
    case("chat", "chat_complete", [MODEL, None, "hi"], exc=TE, match="prompts"),
    case("chat", "plain_complete", [NAME, None, ["hi"]], exc=TE, match=MODEL_HINT),
    case("chat", "plain_complete", [MODEL, None, ["hi"]], {"max_new_tokens": 0}, exc=VE, match="max_new_tokens"),
    case("sampling", "generate_settings", [NAME, torch.tensor([[1]]), torch.tensor([[1]]), [{}], 2, 0], exc=TE, match=MODEL_HINT),
    case("sampling", "score_continuations", [NAME, torch.tensor([[1]]), torch.tensor([[1]]), [[1]], 0], exc=TE, match=MODEL_HINT),
    case("records.sampling_sweep", "run", [], {"max_new_tokens": 0}, exc=VE, match="max_new_tokens"),
    case("records.sampling_sweep", "main", [["--only", "no such setting"]], exc=SystemExit, match=""),
    case("records.sampling_playground", "run", [42], exc=TE, match="path"),
    case("records.sampling_playground", "load", [42], exc=TE, match="path"),
    case("records.sampling_playground", "main", [["--bogus"]], exc=SystemExit, match=""),
    case("records.icl_real", "run", [42], exc=TE, match="path"),
    case("records.icl_real", "load", [42], exc=TE, match="path"),
    case("records.icl_real", "main", [["--n", "x"]], exc=SystemExit, match=""),
    case("records.icl_summaries", "run", [42], exc=TE, match="path"),
    case("records.icl_summaries", "load", [42], exc=TE, match="path"),
    case("records.icl_summaries", "main", [["--bogus"]], exc=SystemExit, match=""),
    case("records.icl_cot", "run", [42], exc=TE, match="path"),
    case("records.icl_cot", "load", [42], exc=TE, match="path"),
    case("records.icl_cot", "main", [["--bogus"]], exc=SystemExit, match=""),
    case("records.icl_calibration", "run", [42], exc=TE, match="path"),
    case("records.icl_calibration", "load", [42], exc=TE, match="path"),
    case("records.icl_calibration", "main", [["--bogus"]], exc=SystemExit, match=""),
    case("records.icl_calibration", "demo_sets", [0], exc=VE, match="n must be"),
    case("records.icl_calibration", "score_set", [NAME, None, {}], exc=TE, match=MODEL_HINT),
    case("records.icl_calibration", "score_shared_prefix", [MODEL, None, "text", ["a", "b"]], exc=TE,
         match="prompts"),
    case("records.evaluation_harness", "run", [42], {"python": "/no/python"}, exc=TE, match="path"),
    case("records.evaluation_harness", "run", [False], exc=TE, match="python must be the path"),
    case("records.evaluation_harness", "run", [False, "/no/such/python"], exc=VE, match="interpreter"),
    case("records.evaluation_harness", "run", [False, __file__], {"limit": 0}, exc=VE, match="limit"),
    case("records.evaluation_harness", "load", [42], exc=TE, match="path"),
    case("records.evaluation_harness", "main", [[]], exc=SystemExit, match=""),
    case("records.evaluation_harness", "write_tasks", [42, []], exc=TE, match="folder"),
    case("records.evaluation_harness", "write_tasks", ["/tmp/evalbench_tasks", []], exc=VE, match="items"),
    case("records.evaluation_harness", "accuracy", [[]], exc=VE, match="rows"),
    case("records.evaluation_harness", "accuracy", [[{}], "theirs"], exc=VE, match="key"),
    case("records.evaluation_harness", "summary", [42], exc=TE, match="record"),
    case("records.evaluation_harness", "run_part", ["harness-latin"], exc=VE, match="step"),
    case("records.evaluation_harness", "run_part", ["harness-letter", None], exc=TE, match="python must be the path"),
    case("records.sampling_sweep", "load", [42], exc=TE, match="path"),
    case("sampling", "interval95", [[]], exc=VE, match="values"),
    case("sampling", "summarise", [[]], exc=TE, match="record"),
    case("sampling", "per_prompt", [[]], exc=TE, match="record"),
    case("sampling", "per_prompt", [{}], exc=VE, match="rows"),
    # ------------------------------------------------------------------ zoo
    case("zoo", "model_dir", ["no-such-model"], exc=VE, match="no-such-model|unknown"),
    case("zoo", "model_dir", [MODEL], exc=TE, match="name"),
    case("zoo", "recipe_of", ["no-such-model"], exc=VE, match="no-such-model|unknown"),
    case("zoo", "load", ["no-such-model"], exc=VE, match="no-such-model|unknown"),
    case("zoo", "load", [MODEL], exc=TE, match="name"),
    case("zoo", "load", ["stories-1m"], {"device": "gpu"}, exc=VE, match="device"),
    case("zoo", "hub_reachable", [], {"timeout": -1}, exc=VE, match="timeout"),
    case("zoo", "prepare", ["no-such-model"], exc=VE, match="no-such-model|unknown"),
    case("zoo", "main", [["--no-such-flag"]], exc=SystemExit, match=""),
    # ------------------------------------------------------------------ recipes
    case("recipes", "Recipe", ["x", "d", 0, {}, {}], exc=VE, match="vocab_size"),
    case("recipes", "build", ["no-such-model"], exc=VE, match="no-such-model|unknown"),
    case("recipes", "build", ["stories-1m"], {"steps": 0}, exc=VE, match="steps"),
    case("recipes", "build", ["stories-1m"], {"device": "gpu"}, exc=VE, match="device"),
    case("recipes", "icl_texts", [None, 0, 0], exc=TE, match="recipe|n"),
    # ------------------------------------------------------------------ tokenization
    case("tokenization", "train_tokenizer", ["one story", 100], exc=TE, match="texts"),
    case("tokenization", "train_tokenizer", [["a story"], 0], exc=VE, match="vocab_size"),
    case("tokenization", "train_tokenizer", [["a story"], 100.0], exc=TE, match="vocab_size"),
    case("tokenization", "encode_stories", [None, "one story"], exc=TE, match="stories"),
    case("tokenization", "encode_icl", [None, "text", [], 8], exc=TE, match="texts"),
    case("tokenization", "encode_icl", [None, ["text"], [[]], 0], exc=VE, match="window"),
    case("tokenization", "encode_icl", [None, ["text"], [], 8], exc=VE, match="spans"),
    # ------------------------------------------------------------------ objectives
    case("objectives", "causal_lm_pair", [[1]], exc=VE, match="at least 2 tokens"),
    case("objectives", "causal_lm_pair", ["hello"], exc=TE, match="ids"),
    case("objectives", "masked_lm_pair", [[1, 2, 3], 4, 10], {"mask_prob": 1.5}, exc=VE, match="mask_prob"),
    case("objectives", "masked_lm_pair", [[1, 2, 30], 4, 10], exc=VE, match="ids|vocab"),
    case("objectives", "random_spans", [0], exc=VE, match="length"),
    case("objectives", "random_spans", [10], {"noise_density": 1.5}, exc=VE, match="noise_density"),
    case("objectives", "span_corruption_pair", [[1, 2, 3], [], 0], exc=VE, match="sentinel"),
    case("objectives", "masked_lm_batch", [IDS, 0, 8, torch.Generator(), 1, 20], exc=VE, match="batch_size"),
    case("objectives", "span_corruption_batch", [IDS, 2, 0, torch.Generator(), [18, 19], 0, 0], exc=VE, match="seq_len"),
    case("objectives", "evaluate_objective", [NAME, None, IDS, 1], exc=TE, match=MODEL_HINT),
    case("objectives", "evaluate_objective", [MODEL, None, IDS, 0], exc=TE, match="n_batches|make_batch"),
    case("objectives", "train_objective", [NAME, None, IDS, IDS, CFG], exc=TE, match=MODEL_HINT),
    case("objectives", "train_objective", [MODEL, None, IDS, IDS, {"steps": 1}], exc=TE, match="TrainConfig|make_batch"),
    # ------------------------------------------------------------------ kv_cache
    case("kv_cache", "cache_bytes", [2, 0, 8, 10], exc=VE, match="kv_heads"),
    case("kv_cache", "cache_bytes", [2, 1, 8, 1.5], exc=TE, match="tokens"),
    case("kv_cache", "attention_variants", [2, 9, 2, 64, 10], exc=VE, match="multiple of kv_heads"),
    case("kv_cache", "config_shape", [{"layers": 2}], exc=TE, match="transformers config"),
    case("kv_cache", "decode_step_seconds", [NAME, torch.zeros(1, 4, dtype=torch.long), 2, True], exc=TE,
         match="torch.nn.Module"),
    case("kv_cache", "decode_step_seconds", [MODEL, torch.zeros(4, dtype=torch.long), 2, True], exc=VE, match="ids"),
    # ------------------------------------------------------------------ quality
    case("quality", "token_counter", ["gpt2"], exc=TE, match="tokenizer"),
    case("quality", "QualityRules", [], {"min_words": -1}, exc=VE, match="min_words"),
    case("quality", "QualityRules", [], {"min_alpha_word_fraction": 1.5}, exc=VE, match="min_alpha_word_fraction"),
    case("quality", "quality_problems", [["a doc"]], exc=TE, match="text"),
    case("quality", "quality_filter", ["one doc"], exc=TE, match="docs"),
    case("quality", "normalize_text", [42], exc=TE, match="text"),
    case("quality", "exact_duplicates", ["one doc"], exc=TE, match="docs"),
    case("quality", "exact_dedup", ["one doc"], exc=TE, match="docs"),
    case("quality", "shingles", ["a b c", 0], exc=VE, match="n"),
    case("quality", "jaccard", ["abc", {1}], exc=TE, match="a"),
    case("quality", "minhash_signature", [{1, 2}], {"num_perm": 0}, exc=VE, match="num_perm"),
    case("quality", "near_duplicate_pairs", [["a", "b"]], {"threshold": 1.5}, exc=VE, match="threshold"),
    case("quality", "near_duplicate_pairs", [["a", "b"]], {"num_perm": 100, "bands": 32}, exc=VE, match="bands"),
    case("quality", "near_dedup", ["one doc"], exc=TE, match="docs"),
    case("quality", "clean_corpus", ["one doc"], exc=TE, match="docs"),
    case("quality", "scraped_corpus", [["a story"]], {"junk": 1.5}, exc=VE, match="junk"),
    case("quality", "load_labelled_snippets", [42], exc=TE, match="path"),
    case("quality", "filter_agreement", [["a doc"], ["maybe"]], exc=VE, match="labels"),
    # ------------------------------------------------------------------ memorization
    case("memorization", "ngram_hashes", [[1, 2, 3], 0], exc=VE, match="n must be"),
    case("memorization", "ngram_hashes", ["some text"], exc=TE, match="token ids"),
    case("memorization", "ngram_hashes", [[1, 2, 3]], {"stop_token_id": -1}, exc=VE, match="stop_token_id"),
    case("memorization", "ngram_overlap", [[1, 2, 3], {1, 2}], exc=TE, match="reference"),
    case("memorization", "ngram_overlap", [[1.5, 2.0], np.zeros(0, np.uint64)], exc=VE, match="integer token ids"),
    case("memorization", "exact_continuations", ["not a model", [[1, 2, 3]]], exc=TE, match="model"),
    case("memorization", "exact_continuations", [MODEL, [[1, 2, 3]]], {"prompt_tokens": 0},
         exc=VE, match="prompt_tokens"),
    case("memorization", "exact_continuations", [MODEL, [[1, 2, 3]]], {"prompt_tokens": 2},
         exc=VE, match="at least prompt_tokens"),
    case("memorization", "exact_continuations", [MODEL, []], exc=VE, match="non-empty"),
    # ------------------------------------------------------------------ lifecycle
    case("context_window", "fit_to_context", ["hello world", 5], exc=TE, match="token_ids"),
    case("context_window", "fit_to_context", [[1, 2, 3], 0], exc=VE, match="context_window"),
    case("context_window", "fit_to_context", [[1, 2, 3], 5.0], exc=TE, match="context_window"),
    case("context_window", "fit_to_context", [[1, 2, 3], 5], {"keep": "middle"}, exc=VE, match="keep"),
    case("context_window", "loss_by_context_length", [NAME, [[1, 2]], 1, [1], 0], exc=TE, match=MODEL_HINT),
    case("lifecycle", "draw_lifecycle", [42], exc=TE, match="ax"),
    case("model_card", "hero_gender_counts", ["one story"], exc=TE, match="texts"),
    case("model_card", "measure_model_card", [], {"n_samples": 0}, exc=VE, match="n_samples"),
    case("model_card", "measure_model_card", [], {"temperature": 0}, exc=VE, match="temperature"),
    case("model_card", "compare_cards", [{}, {}], exc=TE, match="card"),
    case("retrieval", "mean_pooled_embeddings", [NAME, None, ["a"]], exc=TE, match=MODEL_HINT),
    case("lifecycle", "choose_labels", [NAME, None, ["hi"], ("a", "b")], exc=TE, match=MODEL_HINT),
    case("lifecycle", "mentions", [42, ["a"]], exc=TE, match="text"),
    case("lifecycle", "first_label", ["text", "ab"], exc=TE, match="labels"),
    case("lifecycle", "last_integer", [42], exc=TE, match="text"),
    case("lifecycle", "first_json_object", [None], exc=TE, match="text"),
    # ------------------------------------------------------------------ cot
    case("cot", "word_problems", [0], exc=ValueError, match="n"),
    case("cot", "word_problems", [3, "a"], exc=TE, match="seed"),
    case("cot", "prompt", [None, "q", "direct"], exc=TE, match="tokenizer"),
    case("cot", "prompt", [None, "q", "shout"], exc=ValueError, match="style"),
    case("cot", "answer_problems", [None, None, {"question": "q"}, "direct"], exc=TE, match="problems"),
    case("cot", "answer_problems", [None, None, [{"q": 1}], "direct"], exc=ValueError, match="question"),
    case("lifecycle", "reply_tokens", [NAME, "a reply", 8], exc=TE, match="tokenizer"),
    case("retrieval", "words", [42], exc=TE, match="text"),
    case("retrieval", "word_overlap", ["the and", "text"], exc=VE, match="content word"),
    case("retrieval", "bm25_scores", ["cat", ["a cat"]], {"b": 2.0}, exc=VE, match="b"),
    case("retrieval", "bm25_scores", [42, ["a cat"]], exc=TE, match="query"),
    case("classifier", "generated_reviews", [10], {"split": "dev"}, exc=VE, match="split"),
    case("classifier", "generated_reviews", [0], exc=VE, match="n"),
    case("classifier", "fit_logistic_regression", [[[1.0]], [1.0]], exc=TE, match="x"),
    case("lifecycle", "Item", [1, "r", "k"], exc=TE, match="prompt"),
    case("lifecycle", "arithmetic_items", [0], exc=VE, match="n"),
    case("lifecycle", "arithmetic_items", [5, 50, 10], exc=VE, match="low|high"),
    case("lifecycle", "accuracy", [[], ["a"]], exc=VE, match="items|answers"),
    case("lifecycle", "format_accuracy", [[]], exc=TE, match="result"),
    case("lifecycle", "count_sentences", [None], exc=TE, match="text"),
    case("lifecycle", "json_matches", ["{}", "ref"], exc=TE, match="reference"),
    case("lifecycle", "calculator", ["__import__('os')"], exc=VE, match="expression"),
    case("lifecycle", "calculator", ["1/0"], exc=VE, match="expression|zero"),
    case("lifecycle", "calculator_items", [2.5], exc=TE, match="n"),
    case("lifecycle", "tool_result", [None], exc=TE, match="answer"),
    case("lifecycle", "UseCase", ["n", "p", "r", "no-such-check"], exc=VE, match="check"),
    case("records.lifecycle_completions", "run", ["/tmp/x.json", "chat"], exc=TE, match="groups"),
    case("records.lifecycle_completions", "main", [["--bogus"]], exc=SystemExit, match=""),
    case("records.lifecycle_completions", "load", [42], exc=TE, match="path"),
    case("lifecycle", "recorded_answers", [{}, "chat"], exc=VE, match="group|record"),
    # ------------------------------------------------------------------ device
    case("device", "supports_bf16", ["gpu"], exc=VE, match="device"),
    case("device", "seed_everything", [-1], exc=VE, match="seed"),
    case("device", "seed_everything", ["42"], exc=TE, match="seed"),
    case("device", "seed_everything", [1.5], exc=TE, match="seed"),
    case("device", "device_info", ["tpu"], exc=VE, match="device"),
    case("device", "memory_allocated", [42], exc=TE, match="device"),
    # ------------------------------------------------------------------ tables
    case("tables", "fmt", [[{"a": 1}]], exc=TE, match="df must be a pandas DataFrame"),
    case("tables", "fmt", [pd.DataFrame({"a": [1]}), {"b": "B"}], exc=VE, match="headers.*'b'"),
    case("tables", "fmt", [pd.DataFrame({"a": [1]})], {"bytes_cols": ["b"]}, exc=VE, match="bytes_cols"),
    case("tables", "fmt", [pd.DataFrame({"a": [1]})], {"bytes_cols": "a"}, exc=TE, match="list"),
    case("tables", "fmt", [pd.DataFrame({"a": [1.0]})], {"digits": -1}, exc=VE, match="digits"),
    case("tables", "fmt", [pd.DataFrame({"a": [1.0]})], {"digits": "2"}, exc=TE, match="digits"),
    case("tables", "format_bytes", ["1 MB"], exc=TE, match="bytes"),
    case("tables", "format_bytes", [NAN], exc=VE, match="finite"),
    # ------------------------------------------------------------------ stats
    case("stats", "wilson_interval", [5, 4], exc=VE, match="successes"),
    case("stats", "wilson_interval", [5, 10], {"level": 95}, exc=VE, match="level"),
    case("stats", "wilson_interval", [2.5, 10], exc=TE, match="successes"),
    case("stats", "bootstrap_interval", [[[1, 2], [3, 4]]], exc=VE, match="one-dimensional"),
    case("stats", "bootstrap_interval", [[1.0, NAN]], exc=VE, match="NaN"),
    case("stats", "mcnemar", [[1, 0, 2], [1, 0, 1]], exc=VE, match="right/wrong"),
    case("stats", "mcnemar", [[1, 0], [1, 0, 1]], exc=VE, match="items"),
    case("stats", "paired_bootstrap", [[], []], exc=VE, match="empty"),
    case("stats", "paired_bootstrap", ["abc", "abd"], exc=TE, match="sequence of numbers"),
    case("stats", "paired_bootstrap", [[1, 2], [1, 2]], {"n_boot": 5}, exc=VE, match="n_boot"),
    case("stats", "compare", [[1, 0], [0, 1]], {"names": "AB"}, exc=TE, match="names"),
    case("stats", "compare", [[1, 0], [0, INF]], exc=VE, match="infinite"),
    case("stats", "compare_timings", [[1.0], [2.0, 2.0]], exc=VE, match="at least twice"),
    case("stats", "compare_timings", [[1.0, -1.0], [2.0, 2.0]], exc=VE, match="positive"),
    case("stats", "compare_timings", [[1.0, 1.0], [2.0, 2.0]], {"min_ratio": 0.5}, exc=VE, match="min_ratio"),
    case("stats", "detectable_difference", [100, 1.5], exc=VE, match="disagreement"),
    case("stats", "detectable_difference", [0, 0.2], exc=VE, match="n"),
    case("stats", "compare_unpaired", [[1.0], [2.0, 3.0]], exc=VE, match="at least 2"),
    case("stats", "compare_unpaired", [["a", "b"], [2.0, 3.0]], exc=TE, match="numbers"),
    case("stats", "compare_unpaired", [[1.0, 2.0], [2.0, 3.0]], {"names": "ab"}, exc=TE, match="names"),
    case("stats", "UnpairedComparison", ["a", "b", 1, 5, 0.0, 0.0, 0.0, 0.0, 1.0], exc=VE, match="at least 2"),
    case("stats", "two_proportions", [5, 3, 1, 10], exc=VE, match="cannot exceed"),
    case("stats", "TwoProportions", ["a", "b", 5, 3, 1, 10, (0, 1), (0, 1), 0.0, 0.0, 0.0, 1.0],
         exc=VE, match="cannot exceed"),
    case("stats", "sign_flip", [[1.0, 2.0], [1.0]], exc=VE, match="one score per item"),
    case("stats", "sign_flip", [[1.0, 2.0], [1.0, 3.0]], {"n_perm": 0}, exc=VE, match="n_perm"),
    case("stats", "sign_flip", ["ab", [1.0, 3.0]], exc=TE, match=""),
    case("stats", "two_proportions", [1, 0, 1, 10], exc=VE, match="n_a and n_b"),
    case("stats", "two_proportions", [1.5, 3, 1, 10], exc=VE, match="k_a"),
    case("stats", "two_proportions", [1, 3, 1, 10], {"names": ("a",)}, exc=TE,
         match="names"),
    # ------------------------------------------------------------------ judge (chapter 11)
    case("judge", "answer_prompt", [None, {"question": "q", "answer": "a"}], exc=TE, match="tokenizer"),
    case("judge", "answer_prompt", [None, {"question": "q"}], exc=VE, match="answer"),
    case("judge", "answer_prompt", [None, "What is it?"], exc=TE, match="dict"),
    case("judge", "contains_answer", [3, "a"], exc=TE, match="prediction"),
    case("judge", "contains_answer", ["x", ""], exc=VE, match="gold"),
    case("judge", "answer_questions", [MODEL, None, []], exc=VE, match="empty"),
    case("judge", "answer_questions", [MODEL, None, {"question": "q", "answer": "a"}], exc=TE, match="list"),
    case("judge", "answer_questions", [MODEL, None, [{"question": "q", "answer": "a"}]], exc=TE,
         match="tokenizer"),
    case("judge", "judge_prompt", [None, "", "a", "b"], exc=VE, match="question"),
    case("judge", "judge_prompt", [None, "q", "a", 3], exc=TE, match="second"),
    case("judge", "judge_margin", [MODEL, None, "q", "a", "b"], exc=TE, match="tokenizer"),
    case("judge", "judge_items", [MODEL, None, [{"question": "q", "answer": "a"}]], exc=VE, match="wrong"),
    case("judge", "judge_summary", [[]], exc=TE, match="records"),
    case("judge", "judge_summary", [[{"right_when_first": True}]], exc=VE, match=r"records\[0\]"),
    case("records.evaluation_judge", "run", [42], exc=TE, match="path"),
    case("records.evaluation_judge", "load", [42], exc=TE, match="path"),
    case("records.evaluation_judge", "main", [["--steps", "1"]], exc=SystemExit, match=""),
    case("records.evaluation_formats", "run", [False], {"formats": ["json"]}, exc=VE, match="format"),
    case("records.evaluation_formats", "run", [False], {"formats": []}, exc=TE, match="formats"),
    case("records.evaluation_formats", "run", [42], exc=TE, match="path"),
    case("records.evaluation_formats", "load", [42], exc=TE, match="path"),
    case("records.evaluation_formats", "main", [["--steps", "1"]], exc=SystemExit, match=""),
    # ------------------------------------------------------------------ contamination
    case("contamination", "item_text", ["q"], exc=TE, match="item"),
    case("contamination", "item_text", [{"question": "q", "choices": ["a", "b"], "answer": 0}, "chat"], exc=VE,
         match="format"),
    case("contamination", "item_text", [{"question": "q", "choices": ["a", "b"], "answer": 0}, "letter", 1],
         exc=TE, match="with_answer"),
    case("contamination", "overlap_report", [{"id": "a"}, ["t"], None], exc=TE, match="items"),
    case("contamination", "overlap_report", [[], ["t"], None], exc=VE, match="empty"),
    case("contamination", "overlap_report", [[{"question": "q", "choices": ["a", "b"], "answer": 0}], ["t"], None],
         exc=VE, match="id"),
    case("contamination", "overlap_report", [[{"id": "a", "question": "q", "choices": ["a", "b"], "answer": 0}],
                                             "text", None], exc=TE, match="training_texts"),
    case("contamination", "overlap_report", [[{"id": "a", "question": "q", "choices": ["a", "b"], "answer": 0}],
                                             ["t"], "gpt2"], exc=TE, match="tokenizer"),
    case("contamination", "letter_logprobs", [NAME, None, [{"id": "a", "question": "q", "choices": ["a", "b"],
                                                            "answer": 0}]], exc=TE, match=MODEL_HINT),
    case("contamination", "letter_logprobs", [MODEL, None, []], exc=VE, match="empty"),
    case("contamination", "leak_experiment", [MODEL, None, [{"id": "a", "question": "q", "choices": ["a", "b"],
                                                             "answer": 0}], ["a"]], LEAK, exc=TE, match="tokenizer"),
    case("contamination", "leak_experiment", [NAME, None, [], ["a"]], LEAK, exc=TE, match=MODEL_HINT),
    case("contamination", "leak_experiment", [MODEL, None, [], ["a"]], {**LEAK, "steps": 0}, exc=TE,
         match="tokenizer"),
    case("contamination", "margin", [[-1.0, -2.0], 2], exc=VE, match="answer"),
    case("contamination", "margin", [[-1.0], 0], exc=VE, match="2 scores"),
    case("contamination", "choice_logprobs", [MODEL, None, [], "chat"], exc=VE, match="format"),
    case("contamination", "choice_logprobs", [MODEL, None, [], "text"], exc=VE, match="empty"),
    case("contamination", "summary", [[]], exc=TE, match="record"),
    case("contamination", "summary", [{"seeds": []}], exc=VE, match="empty"),
    case("records.evaluation_contamination", "run", [42], exc=TE, match="path"),
    case("records.evaluation_contamination", "load", [42], exc=TE, match="path"),
    case("records.evaluation_contamination", "main", [["--steps", "1"]], exc=SystemExit, match=""),
    case("records.evaluation_contamination", "leaked_draw", [[], 0], exc=VE, match="items"),
    # ------------------------------------------------------------------ evaluation
    case("evaluation", "load_benchmark", ["tf"], exc=VE, match="kind"),
    case("evaluation", "load_benchmark", [""], exc=VE, match="kind"),
    case("evaluation", "load_benchmark", [3], exc=TE, match="kind"),
    case("evaluation", "load_benchmark", [None], exc=TE, match="kind"),
    case("evaluation", "choice_logprobs", [MODEL, None, 3, ["a"]], exc=TE, match="context"),
    case("evaluation", "choice_logprobs", [MODEL, None, "q", []], exc=VE, match="choices"),
    case("evaluation", "choice_logprobs", [MODEL, None, "q", "abc"], exc=TE, match="choices"),
    case("evaluation", "choice_logprobs", [MODEL, None, "q", ["a", ""]], exc=VE, match="choices"),
    case("evaluation", "choice_logprobs", [NAME, None, "q", ["a"]], exc=TE, match=MODEL_HINT),
    case("evaluation", "choice_logprobs", [MODEL, "gpt2", "q", ["a"]], exc=TE, match="tokenizer"),
    case("evaluation", "choice_scores", [MODEL, None, None, ["a"]], exc=TE, match="context"),
    case("evaluation", "choice_scores", [MODEL, None, "q", ["a"]], {"delimiter": 1}, exc=TE, match="delimiter"),
    case("evaluation", "mc_prompt", ["q"], exc=TE, match="item"),
    case("evaluation", "mc_prompt", [{"question": "q", "choices": ["a", "b"], "answer": 2}], exc=VE, match="answer"),
    case("evaluation", "mc_prompt", [{"question": "q", "choices": ["a", "b"], "answer": 0}, "essay"], exc=VE,
         match="format"),
    case("evaluation", "mc_prompt", [{"question": "q", "choices": ["a", "b"], "answer": 0}, "chat"], exc=TE,
         match="tokenizer"),
    case("evaluation", "score_multiple_choice", [MODEL, None, {"question": "q"}], exc=TE, match="items"),
    case("evaluation", "score_multiple_choice", [MODEL, None, []], exc=VE, match="items"),
    case("evaluation", "score_multiple_choice", [MODEL, None, [{"question": "q", "choices": ["a", "b"]}]], exc=VE,
         match="answer"),
    case("evaluation", "score_multiple_choice", [MODEL, None, [{"question": "q", "choices": ["a", "b"], "answer": 0}],
                                                 "essay"], exc=VE, match="format"),
    case("evaluation", "normalize_answer", [None], exc=TE, match="text"),
    case("evaluation", "exact_match", [None, "a"], exc=TE, match="prediction"),
    case("evaluation", "exact_match", ["a", " "], exc=VE, match="gold"),
    case("evaluation", "exact_match", ["a", "b", "c"], exc=TE, match="aliases"),
    case("evaluation", "exact_match", ["a", "the"], exc=VE, match="normalise"),
    case("evaluation", "tokenize_13a", [["a b"]], exc=TE, match="text"),
    case("evaluation", "bleu", [["a"], ["a", "b"]], exc=VE, match="one reference per hypothesis"),
    case("evaluation", "bleu", ["a", ["a"]], exc=TE, match="references"),
    case("evaluation", "bleu", [[], []], exc=VE, match="references"),
    case("evaluation", "sentence_bleu", [None, "a"], exc=TE, match="reference"),
    case("evaluation", "sentence_bleu", ["a", ["a"]], exc=TE, match="hypothesis"),
    case("evaluation", "rouge_scores", ["a", None], exc=TE, match="candidate"),
    case("evaluation", "rouge_scores", [3, "a"], exc=TE, match="reference"),
    # ------------------------------------------------------------------ icl
    case("icl", "check_template", ["no slots"], exc=VE, match="input"),
    case("icl", "check_template", [42], exc=VE, match="template"),
    case("icl", "format_example", [ICL_TEMPLATE, 3, "a"], exc=TE, match="text"),
    case("icl", "query_prefix", [ICL_TEMPLATE, None], exc=TE, match="text"),
    case("icl", "build_prompt", [42], exc=VE, match="query"),
    case("icl", "build_prompt", ["q"], {"k": -1}, exc=VE, match="k"),
    case("icl", "context_window", [NAME], exc=TE, match=MODEL_HINT),
    case("icl", "score_labels", [MODEL, None, ["a"], [["x", "y"]]], {"batch_size": -1}, exc=VE, match="batch_size"),
    case("icl", "score_labels", [MODEL, None, "a prompt", [["x", "y"]]], exc=TE, match="prompts"),
    case("icl", "score_labels", [NAME, None, ["a"], [["x", "y"]]], exc=TE, match=MODEL_HINT),
    case("icl", "ICLTask", [], {"labels": "up"}, exc=TE, match="labels must be a pair"),
    case("icl", "ICLTask", [], {"labels": ("up", "up")}, exc=VE, match="labels"),
    case("icl", "wilson_interval", [5, 10], {"z": -1.96}, exc=VE, match="z must be"),
    case("icl", "wilson_interval", [5, 10], {"z": "1.96"}, exc=TE, match="z must be"),
    case("icl", "accuracy_vs_shots", [MODEL, None, ICL_TASK], {"batch_size": -1}, exc=VE, match="batch_size"),
    case("icl", "accuracy_vs_shots", [MODEL, None, "sentiment"], exc=TE, match="ICLTask"),
    case("icl", "ideal_accuracy", [ICL_TASK], {"n": 0}, exc=VE, match="n must be"),
    case("icl", "ideal_accuracy", ["sentiment"], exc=TE, match="ICLTask"),
    case("icl", "episode_text", ["an episode"], exc=TE, match="episode"),
    case("icl", "calibrate", [torch.ones(2, 2), torch.ones(3)], exc=VE, match="content_free"),
    case("icl", "load_eval_set", ["nope"], exc=VE, match="task must be one of"),
    case("icl", "real_episodes", [[("a", "x"), ("b", "y")], -1], exc=VE, match="k must be"),
    case("icl", "real_episodes", [[("a", "x"), ("b", "y")], 2], exc=VE, match="k \\+ 1 items"),
    case("icl", "real_episodes", ["ab", 1], exc=TE, match="items"),
    case("icl", "relabel", [[("a", "x")], ("x", "y"), "weird"], exc=VE, match="condition"),
    case("icl", "chat_prompt", [None, "text"], exc=TE, match="Prompt"),
    case("icl", "real_accuracy", [NAME, None, "sentiment", 2], exc=TE, match=MODEL_HINT),
    case("icl", "real_accuracy", [MODEL, None, "sentiment", -1], exc=VE, match="k must be"),
    case("icl", "fixed_episodes", ["sentiment", 0, 0], exc=VE, match="n must be"),
    case("icl", "fixed_episodes", ["sentiment", 4, 9], exc=VE, match="positives"),
    case("icl", "summary_prompt", [None, 0, 2], exc=TE, match="tokenizer"),
    case("icl", "content_free_prompts", [[]], {"inputs": "N/A"}, exc=TE, match="inputs"),
    case("icl", "average_content_free", [torch.ones(3)], exc=VE, match="content_free"),
    case("icl", "calibrated_predictions", [torch.ones(2, 2), [1.0, 0.0]], exc=TE, match="content_free"),
    case("icl", "percent_texts", [5, 0], exc=VE, match="n > 0"),
    case("icl", "summary_prompt_turns", [None, 0, 1], exc=TE, match="tokenizer"),
    # ------------------------------------------------------------------ llama
    case("llama", "head_dim", [{}], exc=TE, match="Llama config"),
    case("llama", "rope_theta", [42], exc=TE, match="Llama config"),
    case("llama", "RMSNorm", [0], exc=VE, match="width"),
    case("llama", "RMSNorm", [4], {"eps": -1.0}, exc=VE, match="eps"),
    case("llama", "rotary_cos_sin", [torch.arange(4), 3, 1e4], exc=VE, match="even"),
    case("llama", "rotary_cos_sin", [[0, 1], 4, 1e4], exc=TE, match="positions"),
    case("llama", "apply_rotary", [torch.ones(1, 2, 4, 6), torch.ones(4, 4), torch.ones(4, 4)], exc=VE,
         match="cos and sin"),
    case("llama", "SwiGLU", [0, 8], exc=VE, match="width"),
    case("llama", "GroupedQueryAttention", [8, 3, 2, 2], exc=VE, match="multiple of n_kv_heads"),
    case("llama", "GroupedQueryAttention", [8, 2.0, 2, 2], exc=TE, match="n_heads"),
    case("llama", "LlamaBlock", [{}], exc=TE, match="Llama config"),
    case("llama", "llama_forward", [NAME, IDS[None, :4]], exc=TE, match=MODEL_HINT),
    case("llama", "llama_forward", [MODEL, IDS[None, :4]], exc=TE, match="LlamaForCausalLM"),
    case("llama", "parameter_breakdown", [42], exc=TE, match="Llama config"),
    case("llama", "parameter_count", ["smollm2"], exc=TE, match="Llama config"),
    case("llama", "kv_cache_bytes", [LLAMA_CFG, -1], exc=VE, match="tokens"),
    case("llama", "kv_cache_bytes", [LLAMA_CFG, 2.5], exc=TE, match="tokens"),
    case("llama", "cache_tensors", [42], exc=TE, match="cache"),
    case("llama", "cache_bytes", [[torch.ones(1)]], exc=TE, match="cache"),
    # ------------------------------------------------------------------ tinyllama, tinygpt2
    case("tinyllama", "TinyLlamaConfig", [], {"num_hidden_layers": 0}, exc=VE, match="num_hidden_layers"),
    case("tinyllama", "TinyLlamaConfig", [], {"hidden_size": "128"}, exc=TE, match="hidden_size"),
    case("tinyllama", "TinyLlamaConfig", [], {"num_key_value_heads": 3}, exc=VE, match="multiple"),
    case("tinyllama", "TinyLlama", [{}], exc=TE, match="TinyLlamaConfig"),
    case("tinygpt2", "TinyGPT2", [100, 16, 8, -1, 2], exc=VE, match="n_layer"),
    case("tinygpt2", "TinyGPT2", [100, 16, 8.0, 1, 2], exc=TE, match="n_embd"),
    case("tinygpt2", "lm_loss", [NAME, IDS[None, :4]], exc=TE, match="model"),
    case("tinygpt2", "lm_loss", [MODEL, IDS[None, :1]], exc=VE, match="at least 2 tokens"),
    case("tinygpt2", "lm_loss", [MODEL, IDS[:4].float()[None]], exc=TE, match="batch"),
    # ------------------------------------------------------------------ peak
    case("peak", "measure", [42], exc=TE, match="fn must be a callable"),
    case("peak", "measure", [lambda: 1], {"device": "tpu"}, exc=VE, match="device"),
    # ------------------------------------------------------------------ plot
    case("plot", "token_label", [42], exc=TE, match="token"),
    case("plot", "draw_distribution", [plt_axes(), ["a", "b"], [0.5], [0.5, 0.5]], exc=VE, match="lengths 2, 1 and 2"),
    case("plot", "draw_distribution", [None, ["a"], [0.5], [0.5]], exc=TE, match="ax"),
    case("plot", "draw_distribution", [plt_axes(), "ab", [0.5, 0.5], [0.5, 0.5]], exc=TE, match="labels"),
    case("plot", "close", [42], exc=TE, match="Figure"),
    case("plot", "figure_labels", [42], exc=TE, match="Figure"),
    case("plot", "label_problems", [42], exc=TE, match="figure_labels"),
    # ------------------------------------------------------------------ provenance, records, book, compat
    case("provenance", "code_version", [42], exc=TE, match="paths"),
    case("provenance", "stamp", [42], exc=TE, match="command"),
    case("provenance", "stamp", ["  "], exc=VE, match="command"),
    case("provenance", "read_record", [42, "cmd"], exc=TE, match="path"),
    case("provenance", "read_record", ["/no/such/record.json", "python -m x"], exc=VE, match="python -m x"),
    case("records", "result_path", [42, "x.json"], exc=TE, match="path"),
    case("records", "normalise_machine", [42], exc=TE, match="machine"),
    case("records", "describe", ["a machine"], exc=TE, match="machine"),
    case("records", "read_json", [42, "x.json", "cmd"], exc=TE, match="path"),
    case("records", "read_json", ["/no/such/record.json", "x.json", "python -m x"], exc=VE, match="no record"),
    case("records", "write_json", ["not a dict", "/tmp/llmlab-bad-input.json", "x.json"], exc=TE, match="record"),
    case("book", "glue", [42, "x"], exc=TE, match="name"),
    case("book", "glue", ["", 1], exc=VE, match="name"),
    case("book", "show", [42], exc=TE, match="function, class"),
    case("book", "show", [plt_axes], {"lines": (5, 2)}, exc=VE, match="lines"),
    case("book", "Source", [42, "where"], exc=TE, match="code"),
    case("compat", "cache_argument", [NAME], exc=TE, match="model"),
    case("compat", "returned_cache", [42], exc=TE, match="output"),
    # ------------------------------------------------------------------ widgets
    case("widgets", "next_token", [MODEL, None, "hi"], {"n": -3}, exc=VE, match="n must be"),
    case("widgets", "next_token", [NAME, None, "hi"], exc=TE, match=MODEL_HINT),
    case("widgets", "sample_text", [NAME, None, "hi", 4, 1.0, 0, 1.0], exc=TE, match=MODEL_HINT),
    case("widgets", "sample_text", [MODEL, None, "hi", 4, 1.0, 0, 1.0], exc=TE, match="tokenizer"),
    case("widgets", "sampling_playground", [NAME, None], exc=TE, match=MODEL_HINT),
    case("widgets", "Control", ["t", "T", []], exc=VE, match="at least one value"),
    case("widgets", "Control", ["t", "T", [1, 2]], {"value": 3}, exc=VE, match="not one of its values"),
    case("widgets", "explorer_html", [[], lambda: {}, "t"], exc=VE, match="controls is empty"),
    case("widgets", "explorer_html", [[CONTROL], None, "t"], exc=TE, match="frame"),
    case("widgets", "static_explorer", ["c", None, "t"], exc=TE, match="controls"),
    case("widgets", "playground_frame", [NAME, None, "hi", 4, 0, 1.0, 0, 1.0], exc=TE, match=MODEL_HINT),
    case("widgets", "playground_frames", [MODEL, None, "hi"], {"max_new_tokens": -1}, exc=VE, match="max_new_tokens"),
    case("widgets", "static_sampling_playground", [NAME], exc=TE, match="model|tokenizer"),
    case("widgets", "static_sampling_playground", [{}], exc=VE, match="frames record"),
    # ------------------------------------------------------------------ the classes of silent results
    case("objectives", "causal_lm_pair", [[1.5, 2.7, 3.2]], exc=TE, match="truncated"),
    case("metrics", "entropy_bits", [torch.tensor([0.5, 0.9])], exc=VE, match="sum to 1"),
    case("metrics", "entropy_bits", [torch.tensor([0.5, NAN])], exc=VE, match="NaN"),
    case("quality", "jaccard", [None, None], exc=TE, match="a must be a set"),
    case("quality", "QualityRules", [], {"max_words": NAN}, exc=TE, match="max_words"),
    case("quality", "QualityRules", [], {"max_mean_word_length": NAN}, exc=VE, match="max_mean_word_length"),
    case("scaling_fits", "fit_chinchilla", [[1e6] * 6, [1e8] * 6, [3.0] * 6], {"n_boot": -5}, exc=VE, match="n_boot"),
    case("train", "cross_entropy", [torch.zeros(0, 5), torch.zeros(0, dtype=torch.long)], exc=VE,
         match="at least one token"),
    case("distributed.results", "param_shapes", [{"n_layer": -1}], exc=VE, match="n_layer"),
    # ------------------------------------------------------------------ distributed (the parts the workers run)
    case("distributed.data_parallel", "allreduce_hook", [None, 42], exc=TE, match="bucket"),
    case("distributed.data_parallel", "zero1_optimizer", [[torch.nn.Parameter(torch.ones(2))], -1.0], exc=VE, match="lr"),
    case("distributed.data_parallel", "zero1_optimizer", [[], 1e-3], exc=VE, match="params is empty"),
    case("distributed.fsdp", "transformer_blocks", [torch.nn.Linear(2, 2)], exc=TE, match="TinyGPT2"),
    case("distributed.fsdp", "apply_fsdp", [NAME, None], exc=TE, match=MODEL_HINT),
    case("distributed.measure", "merge_counts", [42], exc=TE, match="CommCounter"),
    case("distributed.measure", "merge_counts", [{"bytes": {"a": 1.5}, "calls": {}}], exc=TE, match="whole numbers"),
    case("distributed.measure", "count_p2p", [42], exc=TE, match="CommCounter"),
    case("distributed.measure", "time_chunks", [42], exc=TE, match="PipelineStage"),
    case("distributed.measure", "local", [[1.0]], exc=TE, match="t must be a torch.Tensor"),
    case("distributed.measure", "full", [[1.0]], exc=TE, match="t must be a torch.Tensor"),
    case("distributed.measure", "nbytes", [[1.0]], exc=TE, match="t must be a torch.Tensor"),
    case("distributed.measure", "optimizer_bytes", [42], exc=TE, match="optimizer"),
    case("distributed.pipeline", "pipeline_stage", [MODEL, 0, 2, torch.device("cpu")], exc=TE, match="TinyLlama"),
    case("distributed.pipeline", "pipeline_stage", [TINY_LLAMA, 5, 2, torch.device("cpu")], exc=VE, match="rank"),
    case("distributed.pipeline", "micro_batch_loss", [torch.zeros(2, 3, 5), torch.zeros(2, 4, dtype=torch.long)],
         exc=VE, match="agree"),
    case("distributed.pipeline", "micro_batch_loss", [[1.0], torch.zeros(2)], exc=TE, match="logits"),
    case("distributed.pipeline", "pipeline_schedule", [None, 2], exc=TE, match="PipelineStage"),
    case("distributed.pipeline", "pipeline_step", [None, torch.zeros(2, 3, dtype=torch.long)], exc=TE,
         match="schedule"),
    case("distributed.worker", "run_strategy", ["zero4", {}, IDS, torch.device("cpu"), None], exc=VE,
         match="strategy"),
    case("distributed.worker", "run_strategy", ["ddp", "spec", IDS, torch.device("cpu"), None], exc=TE,
         match="spec"),
    case("distributed.worker", "measure_bubble", ["spec", torch.device("cpu")], exc=TE, match="spec"),
    case("distributed.worker", "run_model_parallel", ["ddp", {}, torch.device("cpu"), None], exc=VE,
         match="strategy"),
    case("distributed.worker", "run_model_parallel", ["tp", {"llama": {}}, torch.device("cpu"), None], exc=VE,
         match="spec lacks"),
    case("distributed.measure", "allocated_bytes", [torch.zeros(2)], exc=TE, match="iterable of tensors"),
    case("distributed.measure", "time_chunks", [None], exc=TE, match="PipelineStage"),
    case("distributed.pipeline", "interleaved_stages", [42, 0, 2, torch.device("cpu")], exc=TE, match="make_model"),
    case("distributed.pipeline", "interleaved_stages", [dict, 0, 2, torch.device("cpu")], {"chunks": 0},
         exc=VE, match="chunks"),
    case("distributed.launcher", "validate", [["pp"], 2], {"bubble_schedules": ("zb",)}, exc=VE,
         match="bubble schedule"),
]

# public names with nothing to validate: records that llmlab builds and returns, and functions without
# arguments. A new public function that takes arguments needs a case above, not an entry here.
RECORDS = {
    "memory": {"ModelStates", "TrainingMemory", "MeasuredStates", "GpuMemory"},
    "train": {"TrainLog"},
    "domain": {"AdaptationResult"},
    "bench": {"LoopTiming"},
    "distributed.results": {"DistributedRunError", "RankResult", "RunResult"},
    "distributed.explorer": {"ExplorerModel"},
    "quant": {"FloatBits", "FormatInfo", "GroupQuantized"},
    "gguf_blocks": {"TensorEntry", "GGUFSummary"},
    "scaling": {"BudgetPlan", "PublishedRun"},
    "scaling_fits": {"Fit"},
    "prompt_template": {"Encoded"},
    "zoo": {"ZooError", "PackagedModel"},
    "quality": {"StepReport", "CleaningResult"},
    "model_card": {"ModelCard"},
    "device": {"DeviceInfo"},
    "tables": {"Table"},
    "stats": {"McNemar", "PairedBootstrap", "Comparison", "TimingComparison", "SignFlip"},
    "evaluation": {"ChoiceScore"},
    "icl": {"Prompt", "PromptTooLong"},
    "peak": {"PeakMemory"},
    "widgets": {"NextToken"},
}


# Modules and names with no case, each with its reason. Everything else public is found by walking the package.
SHOWN = ("shown whole in chapter {}: book.show prints its source from llmlab, and the stored listing must stay "
         "the code the chapter explains, so its checks live where its arguments come from ({})")
EXCLUDED = {
    "distributed.worker.main": "runs inside a torchrun process: launcher.run validates every argument before it "
                               "starts one (its cases are distributed.launcher's)",
    "tinygpt2.Block": SHOWN.format("2.1", "TinyGPT2 checks the sizes it passes to every Block"),
    "distributed.data_parallel.wrap_ddp": SHOWN.format("7", "the worker, after launcher.run's checks"),
    "distributed.fsdp.fsdp_mesh": SHOWN.format("7", "launcher.validate checks world_size and sharding_factor"),
    "distributed.tensor_parallel.tp_mesh": SHOWN.format("7 (the module)", "launcher.validate checks world_size"),
    "distributed.tensor_parallel.apply_tp": SHOWN.format("7 (the module)", "the worker builds the model and mesh"),
    "distributed.fsdp_tp.fsdp_tp_mesh": SHOWN.format("7 (the module)", "launcher.validate checks tensor_parallel"),
    "distributed.fsdp_tp.apply_fsdp_tp": SHOWN.format("7 (the module)", "the worker builds the model and mesh"),
}
# The exercise checks take a student's function and report in print (they return False, they do not raise):
# test_exercise_check_reports_a_non_callable covers every one of them, found by walking llmlab.exercises.
REPORTING_PACKAGE = "exercises"


def all_modules() -> list[str]:
    """Every public module of llmlab, subpackages included (names relative to llmlab)."""
    found = []
    for info in pkgutil.walk_packages(llmlab.__path__, "llmlab."):
        name = info.name.removeprefix("llmlab.")
        if any(part.startswith("_") for part in name.split(".")):
            continue  # private helpers, reached only through the public functions that use them
        found.append(name)
    return sorted(found)


MODULES = [m for m in all_modules() if m.split(".")[0] != REPORTING_PACKAGE]
CHECK_MODULES = [m for m in all_modules() if m.split(".")[0] == REPORTING_PACKAGE and m != REPORTING_PACKAGE]


def public_names(module_name: str) -> list[str]:
    """The public functions and classes defined in ``llmlab.<module_name>`` that take arguments."""
    mod = importlib.import_module(f"llmlab.{module_name}")
    out = []
    for name, obj in vars(mod).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
            continue
        if not (inspect.isfunction(obj) or inspect.isclass(obj)) or name in RECORDS.get(module_name, set()):
            continue
        if f"{module_name}.{name}" in EXCLUDED:
            continue
        try:
            params = inspect.signature(obj).parameters
        except (TypeError, ValueError):
            params = {"?": None}
        if not params:
            continue  # nothing to pass, nothing to get wrong
        out.append(name)
    return out


def test_the_module_list_is_the_package():
    assert "icl" in MODULES and "records.icl_real" in MODULES and "distributed.launcher" in MODULES
    assert all(importlib.util.find_spec(f"llmlab.{m}") for m in MODULES)
    for key in EXCLUDED:
        module, name = key.rsplit(".", 1)
        assert module in MODULES and hasattr(importlib.import_module(f"llmlab.{module}"), name), key
    stale = {m for m, _ in ((c.values[0], c.values[1]) for c in CASES)} - set(MODULES)
    assert not stale, f"cases name modules that do not exist: {sorted(stale)}"


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_function_has_a_bad_input_case(module_name):
    covered = {c.values[1] for c in CASES if c.values[0] == module_name}
    missing = sorted(set(public_names(module_name)) - covered)
    assert not missing, f"llmlab.{module_name}: add a bad-input case for {missing}"


def raised_as_expected(err: BaseException, exc: type) -> bool:
    """A TypeError case must raise a TypeError; a ValueError case a ValueError that is not a TypeError
    (``_checks.ArgumentTypeError`` is both, for the wrong kind of value: it satisfies TypeError cases only)."""
    if exc is ValueError:
        return isinstance(err, ValueError) and not isinstance(err, TypeError)
    return isinstance(err, exc)


@pytest.mark.parametrize("module_name, name, args, kwargs, exc, match", CASES)
def test_bad_input_raises_a_clear_error(module_name, name, args, kwargs, exc, match):
    assert exc in (ValueError, TypeError, SystemExit), f"name one expected exception, got {exc}"
    fn = getattr(importlib.import_module(f"llmlab.{module_name}"), name)
    caught = SystemExit if exc is SystemExit else (ValueError, TypeError)
    try:
        result = fn(*args, **kwargs)
    except caught as err:
        if exc is not SystemExit:
            assert raised_as_expected(err, exc), (f"raised {type(err).__name__} where the case expects "
                                                  f"{exc.__name__}: {err}")
            assert re.search(match, str(err)), f"message {str(err)!r} does not match {match!r}"
        return
    except Exception as err:  # a raw error from deep inside
        pytest.fail(f"raised {type(err).__name__} instead of a clear ValueError/TypeError: {err}")
    pytest.fail(f"returned {type(result).__name__} {str(result)[:80]!r} instead of raising")


def exercise_checks() -> list:
    out = []
    for module_name in CHECK_MODULES:
        for name in public_names(module_name):
            out.append(pytest.param(module_name, name, id=f"{module_name}.{name}"))
    return out


@pytest.mark.parametrize("module_name, name", exercise_checks())
def test_exercise_check_reports_a_non_callable(module_name, name, capsys):
    """A check given something that is not the student's function (or a quiz answer that is not a dict)
    says so in print and returns False: it does not raise at the student."""
    check = getattr(importlib.import_module(f"llmlab.{module_name}"), name)
    n_required = sum(p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                     for p in inspect.signature(check).parameters.values())
    assert check(*[42] * n_required) is False
    printed = capsys.readouterr().out
    assert printed.strip(), "the check printed nothing to tell the student what was wrong"


def test_integer_mask_masks_like_the_boolean_mask_in_torch_sdpa():
    torch.manual_seed(0)
    qq, k, v = (torch.randn(2, 3, 4, 8, dtype=torch.float64) for _ in range(3))
    bool_mask = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]).bool()
    ours, weights = attention.scaled_dot_product_attention(qq, k, v, mask=bool_mask.long())
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(qq, k, v, attn_mask=bool_mask), rtol=0, atol=1e-12)
    assert (weights.masked_select(~bool_mask.expand_as(weights)) == 0).all()
    padding = attention.padding_mask(torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]]))
    assert padding.dtype == torch.bool
