"""A catalogue of wrong answers for the exercise checks of chapter 12 (fine-tuning).

Every entry is a function (or a quiz answer) a student could plausibly write: only A counted,
every layer counted, one block only, the MLP forgotten, alpha for alpha / r, the update
transposed, W changed in place, the mean or the standard deviation for absmax, a uniform INT4
grid, the largest rank, one seed, the best single run. Each is run through the real check, which
must reject it (return False) and print a message that names the mistake. Right answers written
differently from the solutions must be accepted, and the checks' own references must agree with
the library (``llmlab.lora``, ``llmlab.nf4``) and with values worked out by hand.
"""

from __future__ import annotations

import contextlib
import copy
import io
import re
from dataclasses import dataclass
from typing import Any, Callable

import pytest
import torch
from tiny_models import tiny_llama

from llmlab import exercises as ex
from llmlab import lora, nf4, zoo
from llmlab.exercises import ch12_finetuning as ch12

pytestmark = pytest.mark.usefixtures("one_thread")


def run_check(check: Callable, answer: Any) -> tuple[bool, str]:
    """Run ``check`` on ``answer``; return its verdict and printed feedback."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        verdict = check(answer)
    return verdict, out.getvalue()


@dataclass
class Wrong:
    check: str     # name of the check in llmlab.exercises
    mistake: str   # the mistake, in words (the test id)
    answer: Any    # the student's function, or a quiz dict
    names: str     # a distinctive part of the feedback that names the mistake


# =================================================================== the LoRA count
def _is_target(name, targets):
    return name in targets or any(name.endswith("." + t) for t in targets)


def _count(per=lambda o, i, r: r * (i + o), pick=_is_target):
    return lambda shapes, r, targets: sum(per(o, i, r) for n, (o, i) in shapes.items() if pick(n, targets))


def _once_per_block(shapes, r, targets):  # one adapter per kind of layer, not per block
    kinds = {n.rsplit(".", 1)[-1]: s for n, s in shapes.items() if _is_target(n, targets)}
    return sum(r * (i + o) for o, i in kinds.values())


def _attention_only(shapes, r, targets):  # the MLP's three projections forgotten
    return sum(r * (i + o) for n, (o, i) in shapes.items()
               if _is_target(n, targets) and re.search(r"[qkvo]_proj$", n))


def _with_head(shapes, r, targets):
    return sum(r * (i + o) for n, (o, i) in shapes.items() if _is_target(n, targets) or n.endswith("head"))


def _drops_head(shapes, r, targets):  # right count, but deletes from the caller's dict
    shapes.pop("lm_head", None)
    shapes.pop("head", None)
    return _count()(shapes, r, targets)


COUNT = [
    Wrong("check_lora_trainable", "r * in only", _count(per=lambda o, i, r: r * i), "only A"),
    Wrong("check_lora_trainable", "r * out only", _count(per=lambda o, i, r: r * o), "only B"),
    Wrong("check_lora_trainable", "2 r max(in, out)", _count(per=lambda o, i, r: 2 * r * max(o, i)),
          "2 * r * max(in, out)"),
    Wrong("check_lora_trainable", "the frozen weights", _count(per=lambda o, i, r: o * i), "frozen weights"),
    Wrong("check_lora_trainable", "every linear layer", _count(pick=lambda n, t: True), "every linear layer"),
    Wrong("check_lora_trainable", "the lm_head too", _with_head, "output head"),
    Wrong("check_lora_trainable", "once per block", _once_per_block, "every block has its own"),
    Wrong("check_lora_trainable", "the MLP forgotten", _attention_only, "gate_proj, up_proj and down_proj"),
    Wrong("check_lora_trainable", "endswith without the dot",
          _count(pick=lambda n, t: any(n.endswith(x) for x in t)), "not 'attn.out_proj'"),
    Wrong("check_lora_trainable", "the input changed", _drops_head, "changed the shapes"),
]


# =================================================================== merging
def _inplace(W, A, B, alpha, r):
    W += (alpha / r) * (B @ A)
    return W


MERGE = [
    Wrong("check_merge", "no scaling", lambda W, A, B, alpha, r: W + B @ A, "the scaling is missing"),
    Wrong("check_merge", "alpha", lambda W, A, B, alpha, r: W + alpha * B @ A, "scaled by alpha:"),
    Wrong("check_merge", "r / alpha", lambda W, A, B, alpha, r: W + r / alpha * B @ A, "scaled by r / alpha"),
    Wrong("check_merge", "A @ B", lambda W, A, B, alpha, r: W + alpha / r * A @ B, "B @ A (out x in)"),
    Wrong("check_merge", "transposed update", lambda W, A, B, alpha, r: W + alpha / r * (B @ A).reshape(W.T.shape).T,
          "transposed"),
    Wrong("check_merge", "W modified in place", _inplace, "changed W"),
    Wrong("check_merge", "only the update", lambda W, A, B, alpha, r: alpha / r * B @ A, "only the update"),
    Wrong("check_merge", "float64 result", lambda W, A, B, alpha, r: W.double() + alpha / r * B.double() @ A.double(),
          "dtype"),
]


# =================================================================== NF4
BOOK = nf4.nf4_codebook()


def _nearest(y):
    return (y.float()[:, None] - BOOK[None]).abs().argmin(dim=1)


def _by(scale_of):
    def codes(x):
        s = scale_of(x)
        return _nearest(x / s), float(s)
    return codes


def _int4(x):
    a = x.abs().max()
    return torch.round((x / a + 1) * 7.5).long(), a.item()


def _floor(x):
    a = x.abs().max()
    return torch.searchsorted(BOOK, (x.float() / a).contiguous(), right=True).sub(1).clamp(0, 15), a.item()


def _values(x):
    a = x.abs().max()
    return BOOK[_nearest(x / a)], a.item()


NF4 = [
    Wrong("check_nf4_codes", "the mean absolute value", _by(lambda x: x.abs().mean()), "mean absolute value"),
    Wrong("check_nf4_codes", "the standard deviation", _by(lambda x: x.std()), "standard deviation"),
    Wrong("check_nf4_codes", "a signed absmax", _by(lambda x: x.max()), "not the largest magnitude"),
    Wrong("check_nf4_codes", "a uniform INT4 grid", _int4, "uniform grid"),
    Wrong("check_nf4_codes", "the floor, not the nearest", _floor, "NEAREST"),
    Wrong("check_nf4_codes", "the codebook values", _values, "not their indices"),
    Wrong("check_nf4_codes", "not divided by absmax", lambda x: (_nearest(x.clamp(-1, 1)), x.abs().max().item()),
          "not divided by absmax"),
]


# =================================================================== the rank
def _runs(record, pattern=r"LoRA r(\d+), all linear", seeds=None):
    out = {}
    for row in record["grid"]:
        m = re.fullmatch(pattern, row["method"])
        if m and (seeds is None or row["seed"] in seeds):
            out.setdefault(int(m.group(1)), []).append(100 * row["exact"].count("1") / len(row["exact"]))
    return out


def _rank(pattern=r"LoRA r(\d+), all linear", seeds=None, scale=1.0, best_of=None, pick=min):
    def answer(record, points):
        runs = _runs(record, pattern, seeds)
        means = {r: scale * sum(a) / len(a) for r, a in runs.items()}
        best = best_of(runs) if best_of else max(means.values())
        return pick(r for r, m in means.items() if m >= best - points - 1e-9)
    return answer


def _trainable_count(record, points):
    rank = _rank()(record, points)
    return next(row["trainable"] for row in record["grid"] if row["method"] == f"LoRA r{rank}, all linear")


def _best_mean_rank(record, points):
    means = {r: sum(a) / len(a) for r, a in _runs(record).items()}
    return max(means, key=means.get)


RANK = [
    Wrong("check_smallest_rank", "the largest rank", lambda rec, p: max(_runs(rec)), "largest rank"),
    Wrong("check_smallest_rank", "the best rank itself", _best_mean_rank, "the rank with the best mean"),
    Wrong("check_smallest_rank", "one seed", _rank(seeds={0}), "only one seed"),
    Wrong("check_smallest_rank", "the best single run", _rank(best_of=lambda runs: max(max(a) for a in runs.values())),
          "best single run"),
    Wrong("check_smallest_rank", "attention, QLoRA and replay runs pooled in", _rank(pattern=r".*\br(\d+)\b.*"),
          "other methods with the same rank"),
    Wrong("check_smallest_rank", "accuracy as a fraction", _rank(scale=0.01), "as a fraction"),
    Wrong("check_smallest_rank", "the trainable count", _trainable_count, "not the rank"),
    Wrong("check_smallest_rank", "the largest within", _rank(pick=max), "largest rank"),
]


# =================================================================== quiz
QUIZ = {
    "the LoRA matrix that starts at zero, so training starts from the base model (A/B)": "B",
    "does a merged LoRA model add latency at inference (yes/no)": "no",
    "the distribution of weights for which NF4's 16 values are information-theoretically optimal"
    " (normal/uniform/laplace)": "normal",
    "what double quantization quantizes (the weights/the block scales/the adapters)": "the block scales",
    "what paged optimizers move to CPU memory when GPU memory runs short (optimizer states/adapters/activations)":
        "optimizer states",
}
_Q = list(QUIZ)

QUIZ_WRONG = [
    Wrong("check_finetuning_quiz", "A starts at zero", {**QUIZ, _Q[0]: "A"}, "Hu et al. 2021"),
    Wrong("check_finetuning_quiz", "merging adds latency", {**QUIZ, _Q[1]: "yes"}, "forward pass"),
    Wrong("check_finetuning_quiz", "uniform", {**QUIZ, _Q[2]: "uniform"}, "quantiles"),
    Wrong("check_finetuning_quiz", "the weights", {**QUIZ, _Q[3]: "the weights"}, "32 bits per 64 weights"),
    Wrong("check_finetuning_quiz", "activations", {**QUIZ, _Q[4]: "activations"}, "unified memory"),
]

CATALOGUE = COUNT + MERGE + NF4 + RANK + QUIZ_WRONG


@pytest.mark.parametrize("wrong", CATALOGUE, ids=[f"{w.check[6:]}-{w.mistake}" for w in CATALOGUE])
def test_the_check_rejects_the_wrong_answer_and_names_the_mistake(wrong):
    verdict, out = run_check(getattr(ex, wrong.check), wrong.answer)
    assert verdict is False, f"accepted: {wrong.mistake}\n{out}"
    assert wrong.names in out, f"the feedback does not name the mistake ({wrong.names!r}):\n{out}"
    assert "inf%" not in out and "by 100%" not in out, out


def test_every_check_of_chapter_12_has_at_least_six_wrong_answers():
    checks = {n for n in vars(ch12) if n.startswith("check_") and n in ex.__all__}
    counts = {n: sum(w.check == n for w in CATALOGUE) for n in checks}
    assert len(checks) == 5, counts
    assert all(c >= 6 for n, c in counts.items() if n != "check_finetuning_quiz"), counts
    assert counts["check_finetuning_quiz"] == len(QUIZ)


# ------------------------------------------------------------------ right answers written another way
def _count_by_suffix(shapes, r, targets):
    total = 0
    for name, (out_f, in_f) in shapes.items():
        parts = name.split(".")
        if any(parts[-len(t.split(".")):] == t.split(".") for t in targets):
            total += r * out_f + r * in_f
    return total


def _merge_einsum(W, A, B, alpha, r):
    return torch.addmm(W, B, A, alpha=alpha / r)


def _nf4_bucketize(x):
    absmax = float(x.abs().amax())
    mid = (BOOK[1:] + BOOK[:-1]) / 2
    return torch.bucketize((x / absmax).float(), mid).to(torch.uint8), torch.tensor(absmax)


def _rank_pooled(record, points):  # pooled over seeds: the same mean when every run has the same items
    right, total = {}, {}
    for row in record["grid"]:
        if m := re.fullmatch(r"LoRA r(\d+), all linear", row["method"]):
            r = int(m.group(1))
            right[r] = right.get(r, 0) + row["exact"].count("1")
            total[r] = total.get(r, 0) + len(row["exact"])
    means = {r: 100 * right[r] / total[r] for r in right}
    best = max(means.values())
    return sorted(r for r in means if best - means[r] <= points + 1e-9)[0]


RIGHT = [
    ("check_lora_trainable", _count_by_suffix),
    ("check_merge", _merge_einsum),
    ("check_nf4_codes", _nf4_bucketize),
    ("check_smallest_rank", _rank_pooled),
    ("check_finetuning_quiz", {**QUIZ, _Q[0]: "b", _Q[1]: "No.", _Q[3]: "block scales", _Q[4]: "Optimizer state"}),
]


@pytest.mark.parametrize("check, answer", RIGHT, ids=[f"{c[6:]}-{i}" for i, (c, _) in enumerate(RIGHT)])
def test_a_right_answer_written_another_way_is_accepted(check, answer):
    verdict, out = run_check(getattr(ex, check), answer)
    assert verdict is True, out


# ------------------------------------------------------------------ the checks' references against the library
ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.mark.parametrize("r, targets", [(8, ["q_proj", "v_proj"]), (16, ALL), (3, ["gate_proj", "down_proj"])])
def test_the_count_reference_agrees_with_count_for_model_on_the_tiny_llama(r, targets):
    model = tiny_llama()
    shapes = {n: tuple(m.weight.shape) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    want = lora.count_for_model(model, r, targets)
    assert ch12._lora_total(shapes, r, targets) == want
    assert lora.trainable_parameters(lora.add_lora(model, r, 2 * r, targets)) == want


def test_the_smollm2_shapes_of_the_check_are_those_of_its_config():
    from transformers import AutoConfig, AutoModelForCausalLM

    folder = zoo.PACKAGED[zoo.REAL_MODEL].folder()
    if not (folder / "config.json").exists():
        pytest.skip("SmolLM2-135M-Instruct is not converted in the cache")
    config = AutoConfig.from_pretrained(folder)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    shapes = {n: tuple(m.weight.shape) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert shapes == ch12._smollm2_shapes()
    for r, targets in ((16, ALL), (1, ALL[:4])):
        assert ch12._lora_total(shapes, r, targets) == lora.count_for_model(model, r, targets)
    # by hand: per block q, o 576x576; k, v 192x576; gate, up 1536x576; down 576x1536; 30 blocks
    assert ch12._lora_total(shapes, 16, ALL) == 30 * 16 * (2 * 1152 + 2 * 768 + 3 * 2112)


def test_the_merge_reference_is_the_formula_and_keeps_the_adapters_outputs():
    layer = ch12._adapter(5, 7, 3, 6.0, seed=0)
    merged = ch12._merged_by_library(layer)
    by_hand = layer.base.weight + 2.0 * layer.lora_B @ layer.lora_A
    assert (merged - by_hand).abs().max().item() < 1e-5
    x = torch.randn(4, 7)
    with torch.no_grad():
        assert torch.allclose(torch.nn.functional.linear(x, merged, layer.base.bias), layer(x), atol=1e-5)


def test_the_nf4_reference_is_the_nearest_codebook_value():
    g = torch.Generator().manual_seed(0)
    for x in (torch.randn(64, generator=g), 0.02 * torch.randn(33, generator=g), torch.rand(64, generator=g) - 0.5):
        codes, absmax = ch12._nf4_reference(x)
        assert absmax == pytest.approx(x.abs().max().item(), rel=1e-6)
        assert torch.equal(codes, _nearest(x / x.abs().max()))


def test_the_rank_reference_on_a_record_worked_out_by_hand():
    record = ch12._made_up(ch12._MADE_UP)
    counts = {(row["method"], row["seed"]): row["exact"].count("1") for row in record["grid"]}
    assert counts[("LoRA r4, all linear", 1)] == 30 and len(record["grid"][0]["exact"]) == 40
    # means over 3 seeds x 40 items: r1 66/120, r4 86/120, r16 98/120, r64 86/120 (percent)
    assert ch12._smallest(ch12._rank_means(record), 2.0) == 16
    assert ch12._smallest(ch12._rank_means(record), 12.0) == 4  # 98 - 86 = 12 items = 10 points
    assert ch12._smallest(ch12._rank_means(record), 30.0) == 1
    two = ch12._made_up(ch12._TWO_SEEDS)
    assert ch12._smallest(ch12._rank_means(two), 5.0) == 32  # 56.25, 60, 70
    assert ch12._smallest(ch12._rank_means(two), 15.0) == 2


def test_every_made_up_mistake_changes_an_answer_of_the_rank_check():
    """A wrong answer the check names must give another answer than the right one in some case."""
    records = [(ch12._made_up(ch12._MADE_UP), 2.0), (ch12._made_up(ch12._MADE_UP), 12.0)]
    for k in range(len(ch12._rank_variants(*records[0]))):
        assert any(ch12._rank_variants(rec, p)[k][0] != ch12._smallest(ch12._rank_means(rec), p)
                   for rec, p in records), k


def test_the_rank_check_uses_the_shipped_record_when_it_holds_ranks(monkeypatch):
    from llmlab.records import finetuning

    record = ch12._made_up(ch12._TWO_SEEDS)
    monkeypatch.setattr(finetuning, "load", lambda path=None: copy.deepcopy(record))
    verdict, out = run_check(ex.check_smallest_rank, _rank())
    assert verdict is True and "3 from the notebook" not in out and "1 from the notebook" in out
    assert "7 cases" in out
    # a typed answer, right for the record, fails on the exchanged ranks
    verdict, out = run_check(ex.check_smallest_rank, lambda rec, p: 32)
    assert verdict is False and "exchanged" in out
