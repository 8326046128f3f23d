"""The exercises (exercises/, llmlab.exercises, tools/make_exercises.py).

- The generated notebooks and pages are current (``make_exercises.py --check``).
- Every exercise, taken from the sources so none is forgotten: its check rejects the
  untouched student version and accepts the solution version; every student cell runs.
- Typical wrong answers get the specific message they should, and still return False.
- The generator splits solutions from blanks as documented.
"""

from __future__ import annotations

import importlib.util
import math
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F

from llmlab import exercises as ex

ROOT = Path(__file__).resolve().parents[1]


def _load_generator():
    spec = importlib.util.spec_from_file_location("make_exercises", ROOT / "tools" / "make_exercises.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_exercises"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


gen = _load_generator()
SOURCES = {s.name: s for s in gen.sources()}
EXERCISES = [(name, e.key) for name, s in SOURCES.items() for e in s.exercises()]


# ------------------------------------------------------------------ generated files and structure
def test_there_are_sources_for_the_written_chapters():
    assert {"01_lifecycle", "02_transformers", "03_pretraining", "04_prompting", "05_sampling",
            "06_memory_quantization", "07_multi_gpu", "08_scaling_laws", "09_domain_adaptation",
            "10_prompt_tuning", "11_evaluation", "12_finetuning", "13_alignment",
            "14_serving", "15_augmentation"} <= set(SOURCES)
    for name, source in SOURCES.items():
        # chapter 7 covers three kinds of parallelism: one more exercise than the others may have
        assert 3 <= len(source.exercises()) <= (7 if name == "07_multi_gpu" else 6), name


def test_generated_files_are_current():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "make_exercises.py"), "--check"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_exercise_has_one_check_call_and_every_check_is_used():
    used = set()
    for name, source in SOURCES.items():
        for exercise in source.exercises():
            checks = [c for c in exercise.cells if c.role == "check"]
            assert len(checks) == 1, f"{name}/{exercise.key}: {len(checks)} check cells"
            call = checks[0].source.strip().splitlines()[-1]
            assert call.startswith("ex.check_"), call
            used.add(call.split("(")[0].removeprefix("ex."))
    assert used == set(ex.__all__), set(ex.__all__) ^ used


def test_student_notebooks_hold_no_solution_and_no_outputs():
    for name, source in SOURCES.items():
        student = nbformat.read(ROOT / gen.STUDENT / f"{name}.ipynb", as_version=4)
        solution = nbformat.read(ROOT / gen.SOLUTIONS / f"{name}.ipynb", as_version=4)
        student_code = "\n".join(c.source for c in student.cells if c.cell_type == "code")
        assert gen.BEGIN not in student_code and gen.END not in student_code
        assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code"), name
        assert student_code.count(gen.BLANK) + student_code.count(": ...,") >= len(source.exercises()) - 1
        for exercise in source.exercises():
            for cell in exercise.cells:
                student_version, solution_version = gen.split_solution(cell.source)
                if student_version != solution_version:  # the solution lines are nowhere in the student notebook
                    only = [l for l in solution_version.splitlines()
                            if l.strip() and l not in student_version.splitlines()]
                    assert not any(l in student_code.splitlines() for l in only), (name, exercise.key)
        # the solution notebook is committed executed (nbval then compares its outputs)
        assert any(c.get("outputs") for c in solution.cells if c.cell_type == "code"), name


def test_pages_have_a_solution_dropdown_per_exercise_and_a_colab_link():
    for name, source in SOURCES.items():
        page = (ROOT / "exercises" / f"{name}.md").read_text(encoding="utf-8")
        assert page.count("::::{exercise}") == len(source.exercises())
        assert page.count(":class: dropdown") == page.count("::::{solution}") == len(source.exercises())
        assert f"colab.research.google.com/github/llmlab-book/llmlab/blob/main/exercises/student/{name}.ipynb" in page


def test_make_test_validates_the_solution_notebooks_not_the_student_ones():
    result = subprocess.run(["make", "-s", "--no-print-directory", "-f", "-", "show"], cwd=ROOT, text=True,
                            capture_output=True, input=(ROOT / "Makefile").read_text(encoding="utf-8")
                            + "\nshow:\n\t@echo $(NOTEBOOKS)\n")
    assert result.returncode == 0, result.stderr
    notebooks = result.stdout.split()
    for name in SOURCES:
        assert f"{gen.SOLUTIONS}/{name}.ipynb" in notebooks
    assert not [n for n in notebooks if n.startswith(gen.STUDENT)]


def test_toc_lists_the_teachers_page_and_every_exercise_page():
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    assert "file: exercises/teachers" in toc
    for name in SOURCES:
        assert f"file: exercises/{name}" in toc, name


# ------------------------------------------------------------------ every check, both ways
_results: dict[tuple[str, str], dict] = {}


def results(name: str, version: str) -> dict:
    if (name, version) not in _results:
        torch.manual_seed(0)
        _results[name, version] = gen.run_version(SOURCES[name], version)
    return _results[name, version]


@pytest.mark.parametrize("name,key", EXERCISES, ids=[f"{n}-{k}" for n, k in EXERCISES])
def test_check_rejects_the_student_version(name, key):
    assert results(name, "student")[key] is False


@pytest.mark.parametrize("name,key", EXERCISES, ids=[f"{n}-{k}" for n, k in EXERCISES])
def test_check_accepts_the_solution_version(name, key):
    assert results(name, "solution")[key] is True


def test_student_check_says_what_to_do(capsys):
    def blank(*args):
        raise NotImplementedError("your code here")
    assert ex.check_top_p(blank) is False
    out = capsys.readouterr().out
    assert "not done yet" in out and "NotImplementedError" in out


# ------------------------------------------------------------------ wrong answers get specific feedback
def feedback(check, *args, capsys) -> str:
    assert check(*args) is False
    return capsys.readouterr().out


def test_fit_to_context_feedback(capsys):
    assert "kept the start" in feedback(ex.check_fit_to_context,
                                        lambda ids, w, n: (ids[:w - n], max(0, len(ids) - (w - n))), capsys=capsys)
    assert "more than the window" in feedback(ex.check_fit_to_context,
                                              lambda ids, w, n: (ids[-w:], max(0, len(ids) - w)), capsys=capsys)
    assert "n_dropped" in feedback(ex.check_fit_to_context,
                                   lambda ids, w, n: (ids[max(0, len(ids) - w + n):], 0), capsys=capsys)


@pytest.fixture(scope="module")
def stories_model():
    from llmlab import zoo
    return zoo.load("stories-1m", device="cpu")


def test_greedy_completion_feedback(stories_model, capsys):
    model, tok = stories_model

    @torch.no_grad()
    def with_prompt(model, tok, prompt, n):
        ids = tok(prompt, return_tensors="pt").input_ids
        out = model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=tok.eos_token_id)
        return tok.decode(out[0])

    @torch.no_grad()
    def first_position(model, tok, prompt, n):  # argmax of the first position instead of the last
        ids = tok(prompt, return_tensors="pt").input_ids
        start = ids.size(1)
        for _ in range(n):
            ids = torch.cat([ids, model(input_ids=ids).logits[0, 0].argmax().view(1, 1)], 1)
        return tok.decode(ids[0, start:])

    assert "only the new text" in feedback(ex.check_greedy_completion, with_prompt, model, tok, capsys=capsys)
    assert "differs from greedy decoding" in feedback(ex.check_greedy_completion, first_position, model, tok,
                                                      capsys=capsys)


def test_model_card_feedback(capsys):
    def double_counted(model):
        c = model.config
        return {"n_parameters": sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False)),
                "context_window": c.n_positions, "layers": c.n_layer, "heads": c.n_head, "vocab_size": c.vocab_size}
    assert "tied output embedding" in feedback(ex.check_model_card_numbers, double_counted, capsys=capsys)
    typed = lambda model: {"n_parameters": 957184, "context_window": 256, "layers": 4, "heads": 4, "vocab_size": 1024}
    out = feedback(ex.check_model_card_numbers, typed, capsys=capsys)
    assert "do not type it" in out and "1 of 2 cases fail" in out  # right on the bundled model, wrong on the hidden one


def test_quiz_feedback(capsys):
    answers = {"stages in order": ["select", "scope", "adapt and align", "deploy"], "prompt engineering": "deploy",
               "quantize for inference": "deploy", "one task or many?": "Scope",
               "tokens a 256-token window leaves for the prompt when 60 new tokens are wanted": 196}
    out = feedback(ex.check_lifecycle_quiz, answers, capsys=capsys)
    assert "3 of 5 answers right" in out and "'stages in order'" in out and "'prompt engineering'" in out
    assert "lacks the questions" in feedback(ex.check_families_quiz, {"BERT objective": "masked"}, capsys=capsys)
    assert "answers right" in feedback(ex.check_sampling_quiz, {
        "temperature that makes sampling approach greedy decoding (close to 0, 1 or large)": "large",
        "top_k that disables the filter in Hugging Face": 0,
        "tokens kept by top_p=1.0 over a vocabulary of 1024": 1024,
        "entropy in bits of a uniform distribution over 1024 tokens": 10.0,
        "is temperature a learned parameter (yes/no)": "No"}, capsys=capsys)


def test_causal_mask_feedback(capsys):
    assert "transposed" in feedback(ex.check_causal_mask, lambda t: torch.ones(t, t, dtype=torch.bool).triu(),
                                    capsys=capsys)
    assert "diagonal" in feedback(ex.check_causal_mask, lambda t: torch.ones(t, t, dtype=torch.bool).tril(-1),
                                  capsys=capsys)
    assert "dtype" in feedback(ex.check_causal_mask, lambda t: torch.ones(t, t).tril(), capsys=capsys)


def test_attention_feedback(capsys):
    def unscaled(q, k, v, mask=None):
        s = q @ k.transpose(-2, -1)
        if mask is not None:
            s = s.masked_fill(~mask, float("-inf"))
        w = s.softmax(-1)
        return w @ v, w

    def wrong_dim(q, k, v, mask=None):
        s = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
        if mask is not None:
            s = s.masked_fill(~mask, float("-inf"))
        w = s.softmax(-2)
        return w @ v, w

    def ignores_mask(q, k, v, mask=None):
        w = (q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))).softmax(-1)
        return w @ v, w

    assert "sqrt(D)" in feedback(ex.check_attention, unscaled, capsys=capsys)
    assert "column" in feedback(ex.check_attention, wrong_dim, capsys=capsys)
    out = feedback(ex.check_attention, ignores_mask, capsys=capsys)
    assert "masked positions get weight" in out and "2 of 4 cases fail" in out


def test_positional_encoding_feedback(capsys):
    from llmlab.attention import sinusoidal_positional_encoding as pe

    def swapped(n, d):
        w = pe(n, d)
        return torch.stack([w[:, 1::2], w[:, 0::2]], -1).flatten(1)
    assert "swapped" in feedback(ex.check_positional_encoding, swapped, capsys=capsys)
    assert "two halves" in feedback(ex.check_positional_encoding,
                                    lambda n, d: torch.cat([pe(n, d)[:, 0::2], pe(n, d)[:, 1::2]], 1), capsys=capsys)
    assert "shape" in feedback(ex.check_positional_encoding, lambda n, d: pe(n, d).T, capsys=capsys)


def test_causal_lm_loss_feedback(capsys):
    no_shift = lambda lg, ids: F.cross_entropy(lg.flatten(0, 1), ids.flatten())
    assert "no shift" in feedback(ex.check_causal_lm_loss, no_shift, capsys=capsys)
    wrong_way = lambda lg, ids: F.cross_entropy(lg[:, 1:].flatten(0, 1), ids[:, :-1].flatten())
    assert "wrong way" in feedback(ex.check_causal_lm_loss, wrong_way, capsys=capsys)
    per_token = lambda lg, ids: F.cross_entropy(lg[:, :-1].flatten(0, 1), ids[:, 1:].flatten(), reduction="none")
    assert "expected a scalar" in feedback(ex.check_causal_lm_loss, per_token, capsys=capsys)


def test_perplexity_feedback(capsys):
    assert "weight each batch" in feedback(ex.check_perplexity, lambda l, n: math.exp(sum(l) / len(l)), capsys=capsys)
    mean = lambda l, n: sum(a * b for a, b in zip(l, n)) / sum(n)
    assert "exp of it" in feedback(ex.check_perplexity, mean, capsys=capsys)
    assert "use exp" in feedback(ex.check_perplexity, lambda l, n: 2 ** mean(l, n), capsys=capsys)


def test_exact_duplicates_feedback(capsys):
    def raw(docs):
        seen, out = set(), []
        for i, d in enumerate(docs):
            if d in seen:
                out.append(i)
            seen.add(d)
        return out
    assert "normalised" in feedback(ex.check_exact_duplicates, raw, capsys=capsys)

    def first_copy(docs):
        keys = [" ".join(unicodedata.normalize("NFKC", d).casefold().split()) for d in docs]
        return sorted(i for i, k in enumerate(keys) if k in keys[i + 1:])
    assert "first copy" in feedback(ex.check_exact_duplicates, first_copy, capsys=capsys)


def test_shingles_jaccard_feedback(capsys):
    def shingles(text, n):
        words = " ".join(text.casefold().split()).split()
        return {" ".join(words[i:i + n]) for i in range(max(1, len(words) - n + 1))}
    good_jaccard = lambda a, b: len(a & b) / len(a | b) if a | b else 1.0
    assert "union" in feedback(ex.check_shingles_jaccard, shingles, lambda a, b: len(a & b) / max(1, len(a)),
                               capsys=capsys)
    assert "empty" in feedback(ex.check_shingles_jaccard, shingles, lambda a, b: len(a & b) / len(a | b),
                               capsys=capsys)
    chars = lambda text, n: {text[i:i + n] for i in range(len(text) - n + 1)}
    assert "distinct" in feedback(ex.check_shingles_jaccard, chars, good_jaccard, capsys=capsys)


def test_sampling_feedback(capsys):
    assert "multiplied" in feedback(ex.check_temperature, lambda z, t: torch.softmax(z * t, -1), capsys=capsys)
    assert "apply the softmax" in feedback(ex.check_temperature, lambda z, t: z / t, capsys=capsys)
    assert "not normalised" in feedback(ex.check_temperature, lambda z, t: torch.exp(z / t), capsys=capsys)

    def by_position(z, k):  # exactly k per row: drops ties with the k-th value
        idx = torch.topk(z, min(k, z.size(-1)), -1).indices
        keep = torch.zeros_like(z, dtype=torch.bool).scatter(-1, idx, True)
        return z.masked_fill(~keep, float("-inf"))
    assert "tied" in feedback(ex.check_top_k, by_position, capsys=capsys)

    def exclusive(z, p):  # stops before the token that crosses p
        probs, order = torch.sort(z.softmax(-1), -1, descending=True)
        keep = probs.cumsum(-1) <= p
        keep[..., 0] = True
        return z.masked_fill(~keep.scatter(-1, order, keep), float("-inf"))
    assert "too few" in feedback(ex.check_top_p, exclusive, capsys=capsys)

    def unsorted(z, p):  # forgets to undo the sort
        probs, order = torch.sort(z.softmax(-1), -1, descending=True)
        keep = (probs.cumsum(-1) - probs) < p
        return z.masked_fill(~keep, float("-inf"))
    assert "most probable" in feedback(ex.check_top_p, unsorted, capsys=capsys)

    nats = lambda p: -torch.special.xlogy(p, p).sum(-1)
    assert "nats" in feedback(ex.check_entropy, nats, capsys=capsys)
    assert "0 * log 0" in feedback(ex.check_entropy, lambda p: -(p * torch.log2(p)).sum(-1), capsys=capsys)


def test_memory_feedback(capsys):
    assert "ZeRO stage 0" in feedback(ex.check_model_states, lambda n, g, s: 16 * n, capsys=capsys)
    assert "ZeRO stage 3 keeps" in feedback(ex.check_model_states, lambda n, g, s: 16 * n / g if s else 16 * n,
                                          capsys=capsys)

    def untied(L, h, V, s):
        return L * (12 * h * h + 13 * h) + 2 * V * h + s * h + 2 * h
    assert "ties it" in feedback(ex.check_gpt_param_count, untied, capsys=capsys)
    assert "12 L h^2" in feedback(ex.check_gpt_param_count, lambda L, h, V, s: 12 * L * h * h, capsys=capsys)


def test_int8_feedback(capsys):
    def by_128(x):
        scale = x.float().abs().max().item() / 128 or 1.0
        return torch.clamp(torch.round(x.float() / scale), -128, 127).to(torch.int8), scale
    assert "127" in feedback(ex.check_absmax_int8, by_128, capsys=capsys)

    def floored(x):
        scale = max(x.float().abs().max().item() / 127, 1e-8)
        return torch.floor(x.float() / scale).clamp(-127, 127).to(torch.int8), scale
    assert "round" in feedback(ex.check_absmax_int8, floored, capsys=capsys)

    def as_float(x):
        scale = max(x.float().abs().max().item() / 127, 1e-8)
        return torch.round(x.float() / scale), scale
    assert "int8 tensor" in feedback(ex.check_absmax_int8, as_float, capsys=capsys)

    def absmax_for_zeropoint(x):
        q, scale = as_float(x)
        return q.to(torch.int8), scale, 0
    assert "255 steps" in feedback(ex.check_zeropoint_int8, absmax_for_zeropoint, capsys=capsys)

    def no_widening(x):  # range [min, max] without 0: the zero point is off for all-positive input
        x = x.float()
        lo, hi = x.min().item(), x.max().item()
        scale = max((hi - lo) / 255, 1e-8)
        zp = int(-128 - round(lo / scale))
        return torch.clamp(torch.round(x / scale) + zp, -128, 127).to(torch.int8), scale, zp
    out = feedback(ex.check_zeropoint_int8, no_widening, capsys=capsys)
    assert "all positive" in out and ("scale" in out or "zero_point" in out)

    assert "times too" in feedback(ex.check_formats_quiz, {
        "largest finite fp16 value": 65504.0, "largest finite bf16 value": 3.39e38, "fraction bits of bf16": 7,
        "spacing of fp16 values just above 1": 2 ** -10,
        "bytes of a 7e9-parameter model's weights in int8": 7}, capsys=capsys)


def test_multi_gpu_feedback(capsys):
    assert "stage 0" in feedback(ex.check_max_params, lambda b, n, s: b / 16, capsys=capsys)

    def array_split(shape, n, i):  # leftover rows one per shard: not how torch.chunk cuts
        if not shape:
            return 1 if i == 0 else 0
        return math.prod(shape[1:]) * (shape[0] // n + (i < shape[0] % n))
    assert "torch.chunk" in feedback(ex.check_fsdp_shard, array_split, capsys=capsys)
    floor_rows = lambda shape, n, i: (shape[0] // n) * math.prod(shape[1:]) if shape else 1
    assert "exactly one shard" in feedback(ex.check_fsdp_shard, floor_rows, capsys=capsys)
    assert "within a group" in feedback(ex.check_hybrid_states, lambda p, n, f: 16 * p / n, capsys=capsys)
    assert "(n - 1) / n" in feedback(ex.check_comm_bytes, lambda s, p, n, b: (3 if s == "zero3" else 2) * p * b,
                                     capsys=capsys)
    assert "second time" in feedback(ex.check_comm_bytes, lambda s, p, n, b: 2 * p * b * (n - 1) / n, capsys=capsys)
    whole_div = lambda h, f, t, b: b * (2 * h * f + f + h) / t  # splits the row-split layer's bias too
    assert "bias is not split" in feedback(ex.check_tp_mlp_bytes, whole_div, capsys=capsys)
    assert "biases are missing" in feedback(ex.check_tp_mlp_bytes, lambda h, f, t, b: b * 2 * h * f / t,
                                            capsys=capsys)
    fewest = lambda p, target: next(m for m in range(1, 10_000) if (p - 1) / (m + p - 1) <= target)
    assert "m + p - 1 slots" in feedback(ex.check_pipeline_bubble, lambda p, m: (p - 1) / m, fewest, capsys=capsys)
    good = lambda p, m: (p - 1) / (m + p - 1)
    assert "round up" in feedback(ex.check_pipeline_bubble, good, lambda p, t: max(1, fewest(p, t) - 1),
                                  capsys=capsys)


def test_prompting_feedback(stories_model, capsys):
    from llmlab.icl import build_prompt

    model, tok = stories_model
    assert "ends with a space" in feedback(ex.check_few_shot_prompt, lambda q, e, k: build_prompt(q, e, k) + " ",
                                           capsys=capsys)
    assert "query must come last" in feedback(
        ex.check_few_shot_prompt, lambda q, e, k: build_prompt(q, [], 0) + "\n\n" + build_prompt(q, e, k).rsplit(
            "\n\n", 1)[0] if k else build_prompt(q, e, k), capsys=capsys)

    def no_label(tokenizer, query, examples, window, labels):  # forgets the answer's tokens
        k = -1
        while k + 1 <= len(examples) and len(tokenizer(build_prompt(query, examples, k + 1))["input_ids"]) <= window:
            k += 1
        return k
    assert "do not fit" in feedback(ex.check_max_shots, no_label, tok, capsys=capsys)

    @torch.no_grad()
    def mean_lp(model, tokenizer, prompt, label):
        n = len(tokenizer(prompt)["input_ids"])
        ids = tokenizer(prompt + " " + label, return_tensors="pt")["input_ids"]
        logp = torch.log_softmax(model(input_ids=ids).logits[0], -1)
        return logp[n - 1:-1].gather(1, ids[0, n:, None]).mean().item()
    assert "not the mean" in feedback(ex.check_label_log_prob, mean_lp, model, tok, capsys=capsys)

    def wald(k, n):
        p = k / n
        h = 1.96 * math.sqrt(p * (1 - p) / n)
        return max(0.0, p - h), min(1.0, p + h)
    assert "Wald" in feedback(ex.check_wilson_interval, wald, capsys=capsys)


def test_scaling_feedback(capsys):
    assert "forward pass only" in feedback(ex.check_training_compute, lambda n, d: (2 * n * d, 2 * n * d / 8.64e19),
                                           capsys=capsys)
    assert "86,400" in feedback(ex.check_training_compute, lambda n, d: (6 * n * d, 6 * n * d / 3.6e18),
                                capsys=capsys)
    assert "swapped" in feedback(ex.check_compute_optimal, lambda c: (20 * math.sqrt(c / 120), math.sqrt(c / 120)),
                                 capsys=capsys)
    assert "solve" in feedback(ex.check_compute_optimal, lambda c: (math.sqrt(c / 20), 20 * math.sqrt(c / 20)),
                               capsys=capsys)

    def intercept(x, y):
        import numpy as np
        b, log_a = np.polyfit(np.log(x), np.log(y), 1)
        return float(log_a), float(b)
    assert "exp(intercept)" in feedback(ex.check_power_law_fit, intercept, capsys=capsys)

    def linear_space(x, y):  # a straight line through the raw points: not a power law
        import numpy as np
        b, a = np.polyfit(x, y, 1)
        return float(a), float(b)
    assert "log" in feedback(ex.check_power_law_fit, linear_space, capsys=capsys)
    assert "seconds" in feedback(ex.check_training_days, lambda p, t, n, x: 8 * t * p / (n * x), capsys=capsys)
    assert "use 8" in feedback(ex.check_training_days, lambda p, t, n, x: 6 * t * p / (n * x) / 86400,
                               capsys=capsys)


def test_domain_feedback(stories_model, capsys):
    _, tok = stories_model

    def count(docs):
        return sum(len(tok(d, add_special_tokens=False)["input_ids"]) for d in docs)
    assert "tokens per word" in feedback(ex.check_fertility, lambda t, texts: sum(len(x.split()) for x in texts)
                                         / count(texts), tok, capsys=capsys)
    assert "characters" in feedback(ex.check_fertility, lambda t, texts: count(texts) / sum(map(len, texts)), tok,
                                    capsys=capsys)
    assert "share of documents" in feedback(ex.check_token_share, lambda t, d, g: len(d) / (len(d) + len(g)), tok,
                                            capsys=capsys)
    assert "share of documents" in feedback(ex.check_docs_for_share, lambda s, td, tg, n: s * n, capsys=capsys)


def test_prompt_tuning_feedback(stories_model, capsys):
    model, tok = stories_model

    def everything(m, n):
        total = sum(p.numel() for p in m.parameters())
        return total, 1.0
    assert "freezes them" in feedback(ex.check_soft_prompt_params, everything, capsys=capsys)

    def percent(m, n):
        d = m.get_input_embeddings().weight.shape[1]
        return n * d, 100 * n * d / sum(p.numel() for p in m.parameters())
    assert "percent" in feedback(ex.check_soft_prompt_params, percent, capsys=capsys)

    def at_end(prompt, x, mask):
        b, (n, d) = x.shape[0], prompt.shape
        return torch.cat([x, prompt.expand(b, n, d)], 1), torch.cat([mask, torch.ones(b, n, dtype=mask.dtype)], 1)
    assert "at the end" in feedback(ex.check_prepend, at_end, capsys=capsys)

    def no_mask(prompt, x, mask):
        b, (n, d) = x.shape[0], prompt.shape
        return torch.cat([prompt.expand(b, n, d), x], 1), mask
    assert "the mask has shape" in feedback(ex.check_prepend, no_mask, capsys=capsys)
    whole = lambda logits, ids, n: F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten())
    assert "prompt too" in feedback(ex.check_answer_loss, whole, model, tok, capsys=capsys)

    def layers(d, h):
        return (d * h + h) + (h * h + h) + (h * d + d)
    assert "biases too" in feedback(ex.check_encoder_params, lambda n, d, h: (n * d + d * h + h * h + h * d, n * d),
                                    capsys=capsys)
    assert "input is a trained table" in feedback(ex.check_encoder_params, lambda n, d, h: (layers(d, h), n * d),
                                                  capsys=capsys)
    assert "three linear layers" in feedback(ex.check_encoder_params,
                                             lambda n, d, h: (n * d + d * h + h + h * d + d, n * d), capsys=capsys)
    assert "only the encoder's output" in feedback(
        ex.check_encoder_params, lambda n, d, h: (n * d + layers(d, h),) * 2, capsys=capsys)

    def front(pieces, virtual, splits):
        return torch.cat([virtual] + list(pieces))
    assert "at the front" in feedback(ex.check_place_slots, front, model, capsys=capsys)

    def reverse(pieces, virtual, splits):
        chunks = torch.split(virtual, list(splits[::-1]))
        return torch.cat([pieces[0]] + [x for c, p in zip(chunks, pieces[1:]) for x in (c, p)])
    assert "in reverse" in feedback(ex.check_place_slots, reverse, model, capsys=capsys)


def test_a_function_that_raises_is_reported_with_its_error(capsys):
    out = feedback(ex.check_causal_mask, lambda t: 1 / 0, capsys=capsys)
    assert "ZeroDivisionError" in out and "t = 4" in out


def test_passing_the_result_instead_of_the_function_is_explained(capsys):
    assert "without calling it" in feedback(ex.check_causal_mask, torch.ones(3, 3), capsys=capsys)


# ------------------------------------------------------------------ the generator
def test_split_solution_blanks_functions_and_keeps_student_lines():
    code = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n"
    student, solution = gen.split_solution(code)
    assert student == "def f(x):\n    y = 1\n    " + gen.BLANK
    assert solution == "def f(x):\n    y = 1\n    return x + y"
    code = "### BEGIN SOLUTION\n# STUDENT: answer = ...\nanswer = 42\n### END SOLUTION"
    assert gen.split_solution(code) == ("answer = ...", "answer = 42")
    assert gen.split_solution("a = ...\n### BEGIN SOLUTION\na = 1\n### END SOLUTION") == ("a = ...", "a = ...\na = 1")


@pytest.mark.parametrize("code", ["### BEGIN SOLUTION\nx = 1", "x = 1\n### END SOLUTION",
                                  "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION"])
def test_split_solution_rejects_unbalanced_markers(code):
    with pytest.raises(ValueError, match="SOLUTION"):
        gen.split_solution(code)


def test_parse_reads_cells_options_and_markdown(tmp_path):
    src = tmp_path / "99_demo.py"
    src.write_text('# %% [markdown]\n# # Exercises: demo\n#\n# Intro.\n\n# %%\nimport math\n\n'
                   '# %% [markdown] {"exercise": "one", "minutes": 7}\n# ## First\n# Text.\n\n'
                   '# %%\ndef f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n\n'
                   '# %% {"role": "check"}\nf() == 1\n', encoding="utf-8")
    source = gen.parse(src)
    assert source.title == "Exercises: demo"
    assert [c.kind for c in source.cells] == ["markdown", "code", "markdown", "code", "code"]
    assert source.cells[0].source == "# Exercises: demo\n\nIntro."
    (exercise,) = source.exercises()
    assert (exercise.key, exercise.title, exercise.minutes) == ("one", "First", 7)
    assert gen.run_version(source, "solution") == {"one": True}
    with pytest.raises(NotImplementedError):  # a check cell calling a blank directly is an error of the source
        gen.run_version(source, "student")
    src.write_text("stray text\n# %%\nx = 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="before the first"):
        gen.parse(src)


def test_a_result_of_an_unexpected_kind_is_reported_not_raised(capsys):
    out = feedback(ex.check_zeropoint_int8, lambda x: (torch.zeros_like(x, dtype=torch.int8), 0.1, "zero"),
                   capsys=capsys)
    assert "zero_point" in out or "could not be compared" in out


@pytest.mark.parametrize("check", [ex.check_fsdp_quiz, ex.check_icl_quiz, ex.check_scaling_quiz,
                                   ex.check_domain_quiz, ex.check_peft_quiz, ex.check_finetuning_quiz,
                                   ex.check_alignment_quiz, ex.check_serving_quiz,
                                   ex.check_augmentation_quiz])
def test_every_quiz_names_the_wrong_answer_and_gives_a_hint(check, capsys):
    """Take the quiz's own questions from its solution source, answer one of them wrongly."""
    name = next(n for n, s in SOURCES.items() for e in s.exercises()
                for c in e.cells if c.role == "check" and check.__name__ in c.source)
    right = {}
    for cell in gen.version_cells(SOURCES[name], "solution"):
        if cell.kind == "code" and cell.source.lstrip().startswith("answers = {"):
            right = {}
            exec(cell.source, {"torch": torch}, scope := {})
            right = scope["answers"]
    assert right and check(right) is True
    capsys.readouterr()
    question = next(iter(right))
    wrong = {**right, question: "something else entirely"}
    out = feedback(check, wrong, capsys=capsys)
    assert f"{question!r}" in out and "is not right" in out and f"{len(right) - 1} of {len(right)}" in out
    hint = out.split("is not right")[1]
    assert "something else entirely" in out
    assert not re.search(rf"\b{re.escape(str(right[question]))}\b", hint), f"the hint gives the answer away: {hint}"


def test_calibration_and_flipped_label_feedback(capsys):
    assert "multiplied" in feedback(ex.check_calibrate, lambda s, cf: torch.log_softmax(s + cf, -1), capsys=capsys)
    assert "not normalised" in feedback(ex.check_calibrate,
                                        lambda s, cf: torch.log_softmax(s, -1) - torch.log_softmax(cf, -1),
                                        capsys=capsys)
    assert "unchanged" in feedback(ex.check_flip_labels, lambda d, labels: list(d), capsys=capsys)
    assert "keep the order" in feedback(
        ex.check_flip_labels, lambda d, labels: [(t, labels[1] if l == labels[0] else labels[0]) for t, l in d][::-1],
        capsys=capsys)
    assert ex.check_calibrate(lambda s, cf: torch.log_softmax(torch.log_softmax(s, -1) - torch.log_softmax(cf, -1), -1))
