"""A catalogue of wrong answers for the exercise checks of chapter 13 (aligning a model with preferences).

Every entry is a function (or a quiz answer) a student could plausibly write: the Bradley-Terry
difference taken the wrong way round or a loss without its minus; DPO without the reference, with
the margin's sign swapped, beta outside the sigmoid, summed over the batch, or log(sigmoid(x))
that underflows; GRPO's advantages centred on the batch, scaled by the population standard
deviation or without 1e-4, groups taken strided; best-of-n choosing the lowest score, looking past
the first n, pooling questions, breaking ties by the last index, counting characters; a verdict on
reward hacking that looks at the length alone. Each is run through the real check, which must
reject it (return False) and print a message that names the mistake. Right answers written
differently from the solutions must be accepted, and the checks' own references must agree with
the library (``llmlab.alignment``, ``llmlab.records.alignment.best_of_n``) and with values worked
out by hand.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
from dataclasses import dataclass
from typing import Any, Callable

import pytest
import torch
import torch.nn.functional as F

from llmlab import alignment
from llmlab import exercises as ex
from llmlab.exercises import ch13_alignment as ch13
from llmlab.records import alignment as rec

pytestmark = pytest.mark.usefixtures("one_thread")

SHIPPED = rec.result_path(None, rec.NAME)  # llmlab/results/alignment.json


def run_check(check: Callable, answer: Any) -> tuple[bool, str]:
    """Run ``check`` on ``answer`` (a tuple: several functions); return its verdict and printed feedback."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        verdict = check(*answer) if isinstance(answer, tuple) else check(answer)
    return verdict, out.getvalue()


@dataclass
class Wrong:
    check: str     # name of the check in llmlab.exercises
    mistake: str   # the mistake, in words (the test id)
    answer: Any    # the student's function, a tuple of functions, or a quiz dict
    names: str     # a distinctive part of the feedback that names the mistake


@pytest.fixture(autouse=True)
def no_shipped_record(monkeypatch):
    """The catalogue runs on the made-up tables only (the shipped record is tried separately below)."""
    def missing(path=None):
        raise FileNotFoundError("no record in this test")
    monkeypatch.setattr(rec, "load", missing)


# =================================================================== Bradley-Terry
def _bt(p_of, loss_of):
    return lambda rc, rr: (p_of(rc, rr), loss_of(rc, rr))


def _sig(x):
    return 1 / (1 + math.exp(-x))


BT = [
    Wrong("check_bradley_terry", "difference the wrong way round",
          _bt(lambda c, r: _sig(r - c), lambda c, r: -math.log(_sig(r - c))), "wrong way round"),
    Wrong("check_bradley_terry", "rewards added",
          _bt(lambda c, r: _sig(c + r), lambda c, r: -math.log(_sig(c + r))), "DIFFERENCE"),
    Wrong("check_bradley_terry", "loss without the minus",
          _bt(lambda c, r: _sig(c - r), lambda c, r: math.log(_sig(c - r))), "lacks its minus"),
    Wrong("check_bradley_terry", "1 - P as the loss",
          _bt(lambda c, r: _sig(c - r), lambda c, r: 1 - _sig(c - r)), "1 - P is not the loss"),
    Wrong("check_bradley_terry", "-log(1 - P)",
          _bt(lambda c, r: _sig(c - r), lambda c, r: -math.log(1 - _sig(c - r))), "-log(1 - P)"),
    Wrong("check_bradley_terry", "softplus of the wrong sign",
          _bt(lambda c, r: _sig(c - r), lambda c, r: math.log1p(math.exp(c - r))), "-log(1 - P)"),
    Wrong("check_bradley_terry", "rewards as strengths",
          _bt(lambda c, r: c / (c + r), lambda c, r: -math.log(c / (c + r))), "strengths"),
    Wrong("check_bradley_terry", "log base 10",
          _bt(lambda c, r: _sig(c - r), lambda c, r: -math.log10(_sig(c - r))), "base 10"),
]


# =================================================================== DPO
def _dpo(loss_of, rewards=lambda p, r, b: b * (p - r)):
    def fn(pc, pr, rc, rr, beta):
        return loss_of(pc, pr, rc, rr, beta), rewards(pc, rc, beta), rewards(pr, rr, beta)
    return fn


def _margin(pc, pr, rc, rr, beta):
    return beta * ((pc - rc) - (pr - rr))


def _in_place(pc, pr, rc, rr, beta):  # right numbers, but the caller's tensors are changed
    pc -= rc
    pr -= rr
    return -F.logsigmoid(beta * (pc - pr)).mean(), beta * pc, beta * pr


DPO = [
    Wrong("check_dpo", "no reference", _dpo(lambda pc, pr, rc, rr, b: -F.logsigmoid(b * (pc - pr)).mean()),
          "reference is left out"),
    Wrong("check_dpo", "rejected minus chosen",
          _dpo(lambda pc, pr, rc, rr, b: -F.logsigmoid(b * ((pr - rr) - (pc - rc))).mean()), "swapped"),
    Wrong("check_dpo", "softplus of the wrong sign",
          _dpo(lambda *a: F.softplus(_margin(*a)).mean()), "softplus"),
    Wrong("check_dpo", "beta outside the sigmoid",
          _dpo(lambda pc, pr, rc, rr, b: -b * F.logsigmoid((pc - rc) - (pr - rr)).mean()), "from outside"),
    Wrong("check_dpo", "log sigmoid without the minus", _dpo(lambda *a: F.logsigmoid(_margin(*a)).mean()),
          "without the minus"),
    Wrong("check_dpo", "sigmoid without the log", _dpo(lambda *a: -torch.sigmoid(_margin(*a)).mean()),
          "without its log"),
    Wrong("check_dpo", "summed over the batch", _dpo(lambda *a: -F.logsigmoid(_margin(*a)).sum()), "summed"),
    Wrong("check_dpo", "divided by beta",
          _dpo(lambda pc, pr, rc, rr, b: -F.logsigmoid(((pc - rc) - (pr - rr)) / b).mean(),
               rewards=lambda p, r, b: (p - r) / b), "divided by beta"),
    Wrong("check_dpo", "probabilities",
          _dpo(lambda pc, pr, rc, rr, b: -F.logsigmoid(b * ((pc.exp() - rc.exp()) - (pr.exp() - rr.exp()))).mean(),
               rewards=lambda p, r, b: b * (p.exp() - r.exp())), "probabilities were used"),
    Wrong("check_dpo", "log of sigmoid underflows", _dpo(lambda *a: -torch.log(torch.sigmoid(_margin(*a))).mean()),
          "underflows"),
    Wrong("check_dpo", "loss per pair, no mean", _dpo(lambda *a: -F.logsigmoid(_margin(*a))), "one value per pair"),
    Wrong("check_dpo", "rewards without beta",
          _dpo(lambda *a: -F.logsigmoid(_margin(*a)).mean(), rewards=lambda p, r, b: p - r), "beta times"),
    Wrong("check_dpo", "rewards upside down",
          _dpo(lambda *a: -F.logsigmoid(_margin(*a)).mean(), rewards=lambda p, r, b: b * (r - p)), "upside down"),
    Wrong("check_dpo", "rewards without the reference",
          _dpo(lambda *a: -F.logsigmoid(_margin(*a)).mean(), rewards=lambda p, r, b: b * p), "leaves the reference"),
    Wrong("check_dpo", "inputs changed in place", _in_place, "changed"),
]


# =================================================================== advantages
def _groups(rewards, size):
    return [rewards[i:i + size] for i in range(0, len(rewards), size)]


def _adv(centre="group", ddof=1, eps=1e-4, scale="group"):
    def fn(rewards, size):
        out = []
        batch_mean = sum(rewards) / len(rewards)
        batch_std = torch.tensor(rewards, dtype=torch.float64).std(correction=ddof).item()
        for group in _groups(rewards, size):
            mean = sum(group) / len(group) if centre == "group" else batch_mean
            std = torch.tensor(group, dtype=torch.float64).std(correction=ddof).item()
            std = batch_std if scale == "batch" else std
            out += [(r - mean) if scale == "none" else (r - mean) / (std + eps) for r in group]
        return out
    return fn


def _strided(rewards, size):
    t = torch.tensor(rewards, dtype=torch.float64).view(size, -1)  # the groups as columns
    return ((t - t.mean(0)) / (t.std(0) + 1e-4)).reshape(-1).tolist()


def _no_epsilon_python(rewards, size):
    out = []
    for group in _groups(rewards, size):
        mean = sum(group) / len(group)
        std = math.sqrt(sum((r - mean) ** 2 for r in group) / (len(group) - 1))
        out += [(r - mean) / std for r in group]
    return out


def _no_epsilon_torch(rewards, size):
    g = torch.tensor(rewards).view(-1, size)
    return ((g - g.mean(1, keepdim=True)) / g.std(1, keepdim=True)).reshape(-1).tolist()


def _sorts_in_place(rewards, size):  # right values for the sorted list, and the caller's list sorted
    rewards.sort()
    return alignment.grpo_advantages(torch.tensor(rewards), size).tolist()


ADVANTAGES = [
    Wrong("check_advantages", "batch mean", _adv(centre="batch"), "batch's mean"),
    Wrong("check_advantages", "population std (numpy's default)", _adv(ddof=0), "population standard deviation"),
    Wrong("check_advantages", "not divided by the std", _adv(scale="none"), "not divided"),
    Wrong("check_advantages", "the batch's std", _adv(scale="batch"), "whole batch's standard deviation"),
    Wrong("check_advantages", "no epsilon, pure Python", _no_epsilon_python, "division by zero"),
    Wrong("check_advantages", "no epsilon, torch", _no_epsilon_torch, "1e-4 is missing"),
    Wrong("check_advantages", "epsilon 1e-8", _adv(eps=1e-8), "1e-8"),
    Wrong("check_advantages", "groups strided", _strided, "strided"),
    Wrong("check_advantages", "list changed in place", _sorts_in_place, "changed"),
]


# =================================================================== best-of-n and the verdict
def _right_best(samples, scores, k, n):
    kept = [max(range(s, s + n), key=lambda i: scores[i]) for s in range(0, len(scores), k)]
    return (sum(samples["tokens"][i] for i in kept) / len(kept),
            sum(samples["correct"][i] == "1" for i in kept) / len(kept))


def _right_hacked(table):
    first, last = table[min(table)], table[max(table)]
    return last[0] > first[0] and last[1] < first[1]


def _best(**kwargs):
    return lambda samples, scores, k, n: ch13._best_of(samples, scores, k, n, **kwargs)


def _argmin(samples, scores, k, n):
    kept = [min(range(s, s + n), key=lambda i: scores[i]) for s in range(0, len(scores), k)]
    return (sum(samples["tokens"][i] for i in kept) / len(kept),
            sum(samples["correct"][i] == "1" for i in kept) / len(kept))


def _last_on_ties(samples, scores, k, n):
    kept = []
    for s in range(0, len(scores), k):
        best = s
        for i in range(s, s + n):
            if scores[i] >= scores[best]:  # >= moves to the last of equal scores
                best = i
        kept.append(best)
    return (sum(samples["tokens"][i] for i in kept) / len(kept),
            sum(samples["correct"][i] == "1" for i in kept) / len(kept))


def _characters(samples, scores, k, n):
    kept = [max(range(s, s + n), key=lambda i: scores[i]) for s in range(0, len(scores), k)]
    return (sum(len(samples["texts"][i]) for i in kept) / len(kept),
            sum(samples["correct"][i] == "1" for i in kept) / len(kept))


def _percent(samples, scores, k, n):
    tokens, share = _right_best(samples, scores, k, n)
    return tokens, 100 * share


def _swapped_pair(samples, scores, k, n):
    tokens, share = _right_best(samples, scores, k, n)
    return share, tokens


def _hack(**kwargs):
    return lambda table: ch13._hacked(table, **kwargs)


def _only_length(table):
    return table[max(table)][0] > table[min(table)][0]


def _dict_order(table):
    first, last = list(table.values())[0], list(table.values())[-1]
    return last[0] > first[0] and last[1] < first[1]


BEST = [
    Wrong("check_best_of_n", "lowest score", (_argmin, _right_hacked), "LOWEST"),
    Wrong("check_best_of_n", "all k answers", (_best(window="all k"), _right_hacked), "whatever n"),
    Wrong("check_best_of_n", "strided questions", (_best(grouping="strided"), _right_hacked), "strided"),
    Wrong("check_best_of_n", "questions pooled", (_best(grouping="pooled"), _right_hacked), "pooled across"),
    Wrong("check_best_of_n", "ties to the last", (_last_on_ties, _right_hacked), "LAST"),
    Wrong("check_best_of_n", "characters", (_characters, _right_hacked), "characters"),
    Wrong("check_best_of_n", "words", (_best(length="words"), _right_hacked), "in words"),
    Wrong("check_best_of_n", "mean over every candidate", (_best(average="all"), _right_hacked),
          "all n candidates"),
    Wrong("check_best_of_n", "share in percent", (_percent, _right_hacked), "100 times"),
    Wrong("check_best_of_n", "pair in the wrong order", (_swapped_pair, _right_hacked), "wrong order"),
    Wrong("check_best_of_n", "verdict on length alone", (_right_best, _only_length), "only at the length"),
    Wrong("check_best_of_n", "verdict on correctness alone", (_right_best, _hack(test="correct")),
          "only at the share"),
    Wrong("check_best_of_n", "verdict with or", (_right_best, _hack(test="or")), "either change"),
    Wrong("check_best_of_n", "verdict on the last two n", (_right_best, _hack(ends="last two")), "last two n"),
    Wrong("check_best_of_n", "verdict in the dict's order", (_right_best, _dict_order), "dict's order"),
    Wrong("check_best_of_n", "verdict reads (share, tokens)", (_right_best, _hack(order="swapped")),
          "(share correct, mean tokens)"),
]


# =================================================================== quiz
QUIZ = {
    "InstructGPT's step right before reinforcement learning with PPO"
    " (reward model/supervised fine-tuning/pre-training)": "reward model",
    "what InstructGPT adds to the reward so that the policy stays near the"
    " supervised model (KL penalty/value network/length penalty)": "KL penalty",
    "does DPO train a separate reward model (yes/no)": "no",
    "does DPO sample answers from the policy during training (yes/no)": "no",
    "what GRPO drops from PPO (value network/reward/KL penalty)": "value network",
    "GRPO's baseline for a sampled answer (group mean/value estimate/zero)": "group mean",
    "the most common form of reward hacking in RLHF that Singhal et al. 2023"
    " measured (length/flattery/refusal)": "length",
    "where constitutional AI's feedback model gets its preferences"
    " (written principles/human rankings/length)": "written principles",
}
_Q = list(QUIZ)

QUIZ_WRONG = [
    Wrong("check_alignment_quiz", "SFT right before PPO", {**QUIZ, _Q[0]: "supervised fine-tuning"},
          "Ouyang et al. 2022"),
    Wrong("check_alignment_quiz", "a value network keeps it near", {**QUIZ, _Q[1]: "value network"},
          "distribution has moved"),
    Wrong("check_alignment_quiz", "DPO trains a reward model", {**QUIZ, _Q[2]: "yes"}, "implicit reward"),
    Wrong("check_alignment_quiz", "DPO samples", {**QUIZ, _Q[3]: "yes"}, "fixed pairs"),
    Wrong("check_alignment_quiz", "GRPO drops the KL", {**QUIZ, _Q[4]: "KL penalty"}, "as large as the policy"),
    Wrong("check_alignment_quiz", "a value estimate as baseline", {**QUIZ, _Q[5]: "value estimate"},
          "same prompt"),
    Wrong("check_alignment_quiz", "flattery", {**QUIZ, _Q[6]: "flattery"}, "Which property"),
    Wrong("check_alignment_quiz", "human rankings", {**QUIZ, _Q[7]: "human rankings"}, "Bai et al. 2022"),
]

CATALOGUE = BT + DPO + ADVANTAGES + BEST + QUIZ_WRONG


@pytest.mark.parametrize("wrong", CATALOGUE, ids=[f"{w.check[6:]}-{w.mistake}" for w in CATALOGUE])
def test_the_check_rejects_the_wrong_answer_and_names_the_mistake(wrong):
    verdict, out = run_check(getattr(ex, wrong.check), wrong.answer)
    assert verdict is False, f"accepted: {wrong.mistake}\n{out}"
    assert wrong.names in out, f"the feedback does not name the mistake ({wrong.names!r}):\n{out}"
    assert "inf%" not in out and "by 100%" not in out, out


def test_every_check_of_chapter_13_has_at_least_six_wrong_answers():
    checks = {n for n in vars(ch13) if n.startswith("check_") and hasattr(ex, n)}
    counts = {n: sum(w.check == n for w in CATALOGUE) for n in checks}
    assert len(checks) == 5, counts
    assert all(c >= 6 for n, c in counts.items() if n != "check_alignment_quiz"), counts
    assert counts["check_alignment_quiz"] == len(QUIZ)


# ------------------------------------------------------------------ right answers written another way
def _bt_torch(rc, rr):
    d = torch.tensor(rc - rr, dtype=torch.float64)
    return torch.sigmoid(d), F.softplus(-d)


def _bt_exp(rc, rr):
    p = math.exp(rc) / (math.exp(rc) + math.exp(rr))
    return p, -math.log(p)


def _dpo_loop(pc, pr, rc, rr, beta):  # pair by pair, in Python, then back to tensors
    losses, chosen, rejected = [], [], []
    for a, b, c, d in zip(pc.tolist(), pr.tolist(), rc.tolist(), rr.tolist()):
        chosen.append(beta * (a - c))
        rejected.append(beta * (b - d))
        z = chosen[-1] - rejected[-1]
        losses.append(max(-z, 0.0) + math.log1p(math.exp(-abs(z))))  # softplus(-z), stable
    return torch.tensor(sum(losses) / len(losses)), torch.tensor(chosen), torch.tensor(rejected)


def _dpo_library(pc, pr, rc, rr, beta):
    return alignment.dpo_loss(pc, pr, rc, rr, beta), beta * (pc - rc), beta * (pr - rr)


def _adv_library(rewards, size):
    return alignment.grpo_advantages(torch.tensor(rewards, dtype=torch.float64), size)


def _adv_unbiased_by_hand(rewards, size):
    out = []
    for group in _groups(list(rewards), size):
        t = torch.tensor(group, dtype=torch.float64)
        out += ((t - t.mean()) / (t.var(unbiased=True).sqrt() + 1e-4)).tolist()
    return out


def _best_sorted(samples, scores, k, n):  # a stable sort by descending score keeps the first of ties
    kept = [sorted(range(s, s + n), key=lambda i: -scores[i])[0] for s in range(0, len(scores), k)]
    tokens = torch.tensor([samples["tokens"][i] for i in kept], dtype=torch.float64)
    right = torch.tensor([int(samples["correct"][i]) for i in kept], dtype=torch.float64)
    return tokens.mean(), right.mean()


def _hacked_sorted(table):
    ns = sorted(table)
    (t1, c1), (tn, cn) = table[ns[0]], table[ns[-1]]
    return bool(tn - t1 > 0) and bool(cn - c1 < 0)


RIGHT = [
    ("check_bradley_terry", _bt_torch),
    ("check_bradley_terry", _bt_exp),
    ("check_dpo", _dpo_loop),
    ("check_dpo", _dpo_library),
    ("check_advantages", _adv_library),
    ("check_advantages", _adv_unbiased_by_hand),
    ("check_best_of_n", (_best_sorted, _hacked_sorted)),
    ("check_best_of_n", (_right_best, _right_hacked)),
    ("check_alignment_quiz", {**QUIZ, _Q[0]: "Reward model.", _Q[1]: "KL-penalty", _Q[2]: "No",
                              _Q[4]: "the value network", _Q[5]: "Group mean", _Q[6]: "Length"}),
]


@pytest.mark.parametrize("check, answer", RIGHT, ids=[f"{c[6:]}-{i}" for i, (c, _) in enumerate(RIGHT)])
def test_a_right_answer_written_another_way_is_accepted(check, answer):
    verdict, out = run_check(getattr(ex, check), answer)
    assert verdict is True, out


# ------------------------------------------------------------------ the checks' references against the library
def test_the_dpo_example_worked_out_by_hand():
    pc, pr, rc, rr = ch13.EXAMPLE_DPO
    # h_c - h_r per pair: (1 + 1), (-0.5 - 1), (-0.25 - (-0.5)); beta = 0.1
    margins = [0.1 * 2.0, 0.1 * -1.5, 0.1 * 0.25]
    by_hand = sum(math.log1p(math.exp(-m)) for m in margins) / 3
    assert alignment.dpo_loss(pc, pr, rc, rr, 0.1).item() == pytest.approx(by_hand, rel=1e-6)


def test_every_dpo_mistake_changes_the_loss_or_the_rewards():
    for tensors, beta in ((ch13.EXAMPLE_DPO, 0.1), (ch13._dpo_batch(5, 1), 0.5)):
        pc, pr, rc, rr = (t.double() for t in tensors)
        loss = alignment.dpo_loss(pc, pr, rc, rr, beta).item()
        for alt, c, r, words in ch13._dpo_variants(pc, pr, rc, rr, beta):
            assert abs(alt.item() - loss) > 1e-4 or not torch.allclose(c, beta * (pc - rc)), words


@pytest.mark.parametrize("size", [2, 3, 4, 8])
def test_the_advantage_reference_is_grpo_advantages(size):
    g = torch.Generator().manual_seed(size)
    rewards = torch.randint(0, 3, (4 * size,), generator=g).double().mul(0.5).tolist()
    rewards[:size] = [1.0] * size  # a group of equal rewards
    want = alignment.grpo_advantages(torch.tensor(rewards), size).tolist()
    assert ch13._advantages(rewards, size) == pytest.approx(want, abs=1e-5)
    assert ch13._advantages(rewards, size)[:size] == [0.0] * size


def _record_from(samples: dict, scores: list[float]) -> dict:
    """A record in the format of llmlab.records.alignment with one reward model per set."""
    rows = [{"set": s, "seed": 0, "sample_scores": list(scores), "correct": "1"} for s in rec.PLAN["reward"]["sets"]]
    return {"plan": rec.PLAN, "samples": samples, "reward": rows, "dpo": [], "grpo": []}


def test_the_best_of_n_reference_is_the_records_best_of_n():
    k = rec.PLAN["best_of_n"]["n"]
    samples, scores = ch13._table(20, k, seed=3, tie_scores=True)
    record = _record_from(samples, scores)
    for n in range(1, k + 1):
        want = rec.best_of_n(record, "balanced", n)
        tokens, share = ch13._best_of(samples, scores, k, n)
        assert tokens == pytest.approx(sum(want["tokens"]) / len(want["tokens"]))
        assert share == pytest.approx(sum(want["correct"]) / len(want["correct"]))


def test_the_length_loving_table_has_the_answer_worked_out_by_hand():
    samples, scores = ch13._length_loving_table(10, 4)
    assert ch13._best_of(samples, scores, 4, 4) == (9.0, 0.0)  # the longest, 3 + 2 * 3 tokens, always wrong
    tokens_1, share_1 = ch13._best_of(samples, scores, 4, 1)
    # question q's first answer has 3 + 2 * (q % 4) tokens: 3, 5, 7, 9, 3, 5, 7, 9, 3, 5
    assert share_1 == pytest.approx(0.3) and tokens_1 == pytest.approx(5.6)
    assert ch13._hacked(ch13._curve(samples, scores, 4)) is True


def test_the_verdict_reference_on_the_made_up_curves():
    verdicts = [ch13._hacked(curve) for curve, _ in ch13._CURVES]
    assert verdicts == [True, False, False, False, True, True, False]
    # every named mistake gives another verdict on at least one curve
    for kwargs, words in ch13._HACK_VARIANTS:
        assert [ch13._hacked(c, **kwargs) for c, _ in ch13._CURVES] != verdicts, words


def test_every_best_of_n_mistake_changes_an_answer_on_the_made_up_tables():
    tables = [(*ch13._table(30, 4, seed=0), 4, 3), (*ch13._table(25, 6, seed=1, tie_scores=True), 6, 5)]
    for kwargs, words in ch13._BEST_VARIANTS:
        assert any(ch13._best_of(s, c, k, n, **kwargs) != ch13._best_of(s, c, k, n) for s, c, k, n in tables), words


def test_the_best_of_n_check_uses_the_shipped_record_when_it_holds_reward_models(monkeypatch):
    k = rec.PLAN["best_of_n"]["n"]
    samples, scores = ch13._table(12, k, seed=4)
    record = _record_from(samples, scores)
    monkeypatch.setattr(rec, "load", lambda path=None: copy.deepcopy(record))
    verdict, out = run_check(ex.check_best_of_n, (_right_best, _right_hacked))
    assert verdict is True and "2 from the notebook" in out, out
    # numbers typed from the record would fail on the reordered record
    tokens, share = _right_best(samples, scores, k, k)
    verdict, out = run_check(ex.check_best_of_n, (lambda s, c, kk, n: (tokens, share), _right_hacked))
    assert verdict is False and "reordered" in out


def test_the_best_of_n_check_on_the_shipped_record(monkeypatch):
    if not SHIPPED.exists():
        pytest.skip("chapter 13's record is not recorded yet: python -m llmlab.records.alignment")
    record = rec.read_json(None, rec.NAME, rec.COMMAND)  # rec.load is patched away above
    monkeypatch.setattr(rec, "load", lambda path=None: copy.deepcopy(record))
    verdict, out = run_check(ex.check_best_of_n, (_right_best, _right_hacked))
    assert verdict is True, out
    # the reference agrees with the record's own best_of_n, pooled over the seeds of a set
    k = record["plan"]["best_of_n"]["n"]
    for reward_set in rec.PLAN["reward"]["sets"]:
        rows = [r for r in record["reward"] if r["set"] == reward_set]
        if rows:
            want = rec.best_of_n(record, reward_set, k)
            ours = [ch13._best_of(record["samples"], r["sample_scores"], k, k) for r in rows]
            assert sum(t for t, _ in ours) / len(ours) == pytest.approx(sum(want["tokens"]) / len(want["tokens"]))


def test_the_best_of_n_check_falls_back_to_made_up_tables_before_the_reward_models(monkeypatch):
    k = rec.PLAN["best_of_n"]["n"]
    samples, scores = ch13._table(12, k, seed=5)
    record = {**_record_from(samples, scores), "reward": []}  # the samples are in, no reward model yet
    monkeypatch.setattr(rec, "load", lambda path=None: copy.deepcopy(record))
    verdict, out = run_check(ex.check_best_of_n, (_right_best, _right_hacked))
    assert verdict is True and "a made-up table" not in out and "2 from the notebook" in out, out
