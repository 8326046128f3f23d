"""Draft: writes chapters/13_alignment.ipynb (cells only; outputs come from execution).

Chapter 13 waits for its record, llmlab/results/alignment.json (python -m
llmlab.records.alignment; the parts recorded so far are in drafts/). Once it exists:
run this file from the repository root, execute the notebook with
tools/execute_notebooks.py, add it to _toc.yml after chapter 12, and delete this file.
"""
import subprocess
from pathlib import Path

import nbformat as nbf

cells = []


def md(s):
    cells.append(nbf.v4.new_markdown_cell(s.strip("\n")))


def code(s, tags=(), alt=None):
    c = nbf.v4.new_code_cell(s.strip("\n"))
    if tags:
        c.metadata["tags"] = list(tags)
    if alt:
        c.metadata["mystnb"] = {"image": {"alt": alt}}
    cells.append(c)


md(r"""
# 13. Aligning a model with preferences

A model fine-tuned on demonstrations (chapter 12) copies what it was shown. Alignment asks
for something a demonstration cannot fully say: of two answers the model could give, prefer
the one people would choose. This chapter builds the three tools that turn preferences into
training: a **reward model** learned from pairs, **DPO**, which trains the model on the pairs
directly, and **GRPO**, reinforcement learning against a reward a program can check. Each
changes SmolLM2-135M-Instruct, the book's real model, on a CPU, through LoRA adapters
(chapter 12), and each loss is checked against TRL, the library most people use for them.

**What you will learn**

- the pipeline InstructGPT made standard (supervised fine-tuning, a reward model, PPO with
  a KL penalty) and which pieces DPO and GRPO drop;
- the Bradley-Terry loss of a reward model, and how a reward model learns a shortcut when
  length goes with preference in its data;
- reward hacking: what optimising against such a reward does to the answers, measured
  against the principle behind the preferences;
- DPO's loss from four log-probabilities, what beta does, and the KL to the reference;
- GRPO: several sampled answers per prompt, advantages relative to the group, a clipped
  ratio and a KL penalty; what it changes in the answers.

**What it costs**: {glue:text}`runtime_s` seconds on the machine that built this page.
The runs ({glue:text}`n_rm_runs` reward models, {glue:text}`n_dpo_runs` DPO runs,
{glue:text}`n_grpo_runs` GRPO runs) are recorded once by `python -m llmlab.records.alignment`
({glue:text}`record_minutes` minutes on 2 CPU cores); the chapter reads the record and
re-runs the start of one DPO run live, checked against it.
""")

code(r"""
import time

started = time.perf_counter()

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from llmlab import alignment, book, chat, lora, plot, preferences, stats, tables, zoo
from llmlab.book import glue
from llmlab.device import seed_everything
from llmlab.records import alignment as rec

seed_everything(0)
plot.use_style()
torch.set_num_threads(2)
model, tokenizer = zoo.load(zoo.REAL_MODEL)
model.eval()
record = rec.load()
plan = record["plan"]
glue("n_rm_runs", f"{len(record['reward'])}")
glue("n_dpo_runs", f"{len(record['dpo'])}")
glue("n_grpo_runs", f"{len(record['grpo'])}")
glue("record_minutes", f"{record['seconds'] / 60:.0f}")
rm_seeds, dpo_seeds, grpo_seeds = (plan[k]["seeds"] for k in ("reward", "dpo", "grpo"))
glue("rm_seeds", f"{len(rm_seeds)}")
glue("dpo_seeds", f"{len(dpo_seeds)}")
glue("grpo_seeds", f"{len(grpo_seeds)}")


def pct(k, n):
    return f"{100 * k / n:.0f}%"


def pct_ci(flags):  # share of right answers with its Wilson interval
    flags = list(flags)
    low, high = stats.wilson_interval(sum(flags), len(flags))
    return f"{100 * sum(flags) / len(flags):.0f}% ({100 * low:.0f}-{100 * high:.0f}%)"


def bits(text):
    return [c == "1" for c in text]


print(f"model: {zoo.REAL_MODEL}")
print(f"record: {record['code_version']}, {record['seconds'] / 60:.0f} minutes to make")
""")

md(r"""
## The pipeline InstructGPT made standard

Askell et al. (2021) named the goal *helpful, honest and harmless*. Ouyang et al. (2022)
showed how to train towards it at scale, in three steps:

1. **Supervised fine-tuning**: labellers write good answers to prompts; the model is
   fine-tuned on them (chapter 12's method).
2. **A reward model**: the model answers each prompt several times, labellers rank the
   answers, and a copy of the model with a scalar head learns to score answers so that the
   preferred one scores higher.
3. **Reinforcement learning**: the model writes answers, the reward model scores them, and
   PPO (Schulman et al. 2017) raises the probability of high-scoring answers, with a penalty
   `beta * KL(pi || pi_ref)` that keeps the policy `pi` close to the supervised model
   `pi_ref`, so that it cannot drift into text the reward model was never trained on.

Labellers preferred the answers of their 1.3B-parameter InstructGPT to those of the
175B-parameter GPT-3 (Ouyang et al. 2022). The third step is the expensive one: PPO keeps
four models in memory (the policy, the reference, the reward model and a value network
that predicts rewards) and samples from the policy at every step.

Two later methods drop pieces of it. **DPO** (Rafailov et al. 2023) shows that the optimum
of step 3's objective can be written in terms of the policy itself, so the pairs of step 2
train the policy directly: no reward model, no sampling. **GRPO** (Shao et al. 2024) keeps
sampling and a reward but drops the value network: it samples several answers per prompt
and uses their mean reward as the baseline; with a reward a program computes (is the
answer right?), it needs no reward model either. DeepSeek-R1 (DeepSeek-AI 2025) trained
reasoning this way.

**Constitutional AI** (Bai et al. 2022) replaces most human labels: a model critiques and
revises its own answers against a short list of written principles, and the preferences
for the reward model come from a model asked which of two answers better follows those
principles. This chapter's preference set is built in that spirit, from one principle a
program can apply.
""")

md(r"""
## A preference set with a principle a reader can check

Human preference data is expensive and its reasons are hidden. The book wrote its own
(`llmlab/preferences.py`, frozen in `llmlab/corpus/preferences.json`): each question
states two short facts about two people and asks about one of them ("Priya lives in Oslo
and Tom lives in Vienna. Where does Tom live?"), on six topics, with a chosen and a
rejected answer. One principle decides every pair: **the chosen answer is correct and the
rejected one is wrong**. In half the pairs the wrong answer is the other person's value,
there in the prompt; in the other half it is a value the prompt never mentions.
`preferences.score` is the principle as a function, and a test applies it to every pair.
The held-out pairs ask about people never named in training.

Each answer is either *short* (the value alone) or *long* (the value inside friendly
padding). Which answer of a pair is longer is set on purpose, and that is the experiment:
in `train` the chosen answer is the longer one in half the pairs, so length tells nothing;
`train_long` has the same questions and values, restyled so that the chosen answer is the
longer one in most pairs, like the length bias Singhal et al. (2023) found in real
preference data.
""")

code(r"""
splits = {s: preferences.load_pairs(s) for s in preferences.SIZES}
rows = []
for name, pairs in splits.items():
    longer = sum(p["chosen_longer"] for p in pairs)
    principle = all(
        preferences.score(p["chosen"], p["answer"])
        and not preferences.score(p["rejected"], p["answer"])
        for p in pairs
    )
    rows.append({"split": name, "pairs": len(pairs),
                 "chosen is the longer": pct(longer, len(pairs)),
                 "principle holds": "every pair" if principle else "NOT ALL"})
display(tables.fmt(pd.DataFrame(rows), index=False))
test = splits["test"]
glue("n_train_pairs", f"{len(splits['train'])}")
glue("n_test_pairs", f"{len(test)}")
glue("long_share", pct(sum(p["chosen_longer"] for p in splits["train_long"]),
                       len(splits["train_long"])))
for p in test[:2]:
    print(f"\n{p['prompt']}\n  chosen:   {p['chosen']}\n  rejected: {p['rejected']}")
""")

md(r"""
The held-out split has {glue:text}`n_test_pairs` pairs whose questions are not in
training. In `train_long` the chosen answer is the longer one in {glue:text}`long_share`
of pairs.

How does the model do on these questions before any alignment? The recording asked it
each held-out question once greedily and scored the replies by the principle; it also
compared, for each pair, the probability the model gives the chosen and the rejected
answer.
""")

code(r"""
samples = record["samples"]
greedy_ok = bits(samples["greedy_correct"])
prefers = bits(samples["prefers_chosen"])
glue("base_greedy", pct_ci(greedy_ok))
glue("base_prefers", pct_ci(prefers))
chosen_longer = [p["chosen_longer"] for p in test]
pref_long = [x for x, c in zip(prefers, chosen_longer) if c]
pref_short = [x for x, c in zip(prefers, chosen_longer) if not c]
glue("base_prefers_long", pct(sum(pref_long), len(pref_long)))
glue("base_prefers_short", pct(sum(pref_short), len(pref_short)))
for p, reply in list(zip(test, samples["greedy"]))[:4]:
    ok = preferences.score(reply, p["answer"])
    print(f"{p['prompt']:<40} -> {reply[:60]!r} ({'right' if ok else 'wrong'})")
""")

md(r"""
Its greedy replies are right {glue:text}`base_greedy` of the time (95% Wilson interval in
brackets). Given a pair, it gives the chosen answer more probability than the rejected one
for {glue:text}`base_prefers` of held-out pairs: {glue:text}`base_prefers_long` where the
chosen answer is the long one and {glue:text}`base_prefers_short` where it is the short
one. A sequence's probability is a product over its tokens, so a long answer starts with a
handicap of dozens of extra factors below one: raw probability is a poor judge of which
answer is better, which is one reason preference methods compare against a reference.
""")

md(r"""
## The reward model: Bradley-Terry

A reward model maps a prompt and an answer to one number, `r(x, y)`. The Bradley-Terry
model (Bradley & Terry 1952) says the chosen answer `y_c` is preferred to the rejected
`y_r` with probability `sigmoid(r(x, y_c) - r(x, y_r))`, so training minimises the
negative log of that probability over the pairs. Only the difference of the two rewards
matters, never their level.
""")

code(r"""
book.show(alignment.bradley_terry_loss)
""")

md(r"""
The reward model here is the chat model's decoder with a scalar head (a linear layer from
the last hidden state to one number), read at the answer's final token, with LoRA adapters
on every linear layer of every block (rank {glue:text}`rm_rank`). The recording trains one
on `train` and one on `train_long`, {glue:text}`rm_seeds` seeds each, for
{glue:text}`rm_steps` steps of {glue:text}`rm_batch` pairs, and scores the
{glue:text}`n_test_pairs` held-out pairs: a pair counts as right when the chosen answer
scores higher.
""")

code(r"""
rm_plan = plan["reward"]
glue("rm_rank", f"{plan['lora']['r']}")
glue("rm_steps", f"{rm_plan['steps']}")
glue("rm_batch", f"{rm_plan['batch_size']}")
rm = {(r["set"], r["seed"]): r for r in record["reward"]}
short_idx = [i for i, c in enumerate(chosen_longer) if not c]
long_idx = [i for i, c in enumerate(chosen_longer) if c]


def pooled(which, idx=None):  # one flag per held-out pair and seed, seeds one after another
    out = []
    for seed in rm_seeds:
        flags = bits(rm[(which, seed)]["correct"])
        out += [flags[i] for i in (idx if idx is not None else range(len(flags)))]
    return out


rows = []
for which in rm_plan["sets"]:
    rows.append({"trained on": f"{which} ({rm_plan['sets'][which]})",
                 "all held-out pairs": pct_ci(pooled(which)),
                 "chosen is longer": pct_ci(pooled(which, long_idx)),
                 "chosen is shorter": pct_ci(pooled(which, short_idx))})
display(tables.fmt(pd.DataFrame(rows), index=False))
glue("rm_bal_all", pct_ci(pooled("balanced")))
in_prompt = [i for i, p in enumerate(test) if p["wrong_in_prompt"]]
unmentioned = [i for i, p in enumerate(test) if not p["wrong_in_prompt"]]
glue("rm_bal_in_prompt", pct_ci(pooled("balanced", in_prompt)))
glue("rm_bal_unmentioned", pct_ci(pooled("balanced", unmentioned)))
glue("rm_len_long", pct_ci(pooled("length-correlated", long_idx)))
glue("rm_len_short", pct_ci(pooled("length-correlated", short_idx)))
glue("rm_bal_short", pct_ci(pooled("balanced", short_idx)))
v = stats.compare(pooled("balanced", short_idx), pooled("length-correlated", short_idx),
                  names=("the balanced reward model", "the length-correlated one"))
glue("v_rm_short", v.verdict)
""")

md(r"""
Accuracies are pooled over the {glue:text}`rm_seeds` seeds (each held-out pair counted
once per seed), with 95% Wilson intervals. Trained on pairs where length says nothing, the
reward model ranks {glue:text}`rm_bal_all` of held-out pairs right: {glue:text}`rm_bal_unmentioned`
where the wrong answer is a value the prompt never mentions, {glue:text}`rm_bal_in_prompt`
where it is the other person's value. Trained on the same
questions with the chosen answer usually the longer one, it is right
{glue:text}`rm_len_long` of the time when the chosen answer is long, and
{glue:text}`rm_len_short` when it is short. On those pairs, where length points the wrong
way: {glue:text}`v_rm_short` (paired over the same pairs and seeds). The length-correlated
model has learned, at least in part, to reward length.
""")

md(r"""
## Reward hacking: optimising against a proxy

A reward model is a proxy for the principle, and whatever the proxy gets wrong an
optimiser will find. The simplest optimiser is **best-of-n**: sample `n` answers and keep
the one the reward model scores highest (Gao et al. 2023 used it to measure how far a
policy can be pushed against a reward model before the true quality falls). The recording
sampled {glue:text}`bon_n` answers to each held-out question from the model as it is
(temperature {glue:text}`bon_t`); below, each reward model picks among the first `n` of
them, and the principle scores what it picked. A chooser that knows the principle (pick a
correct answer when there is one) shows what was there to find.
""")

code(r"""
bon = plan["best_of_n"]
glue("bon_n", f"{bon['n']}")
glue("bon_t", f"{bon['temperature']}")
ns = [n for n in (1, 2, 4, 8, 16) if n <= bon["n"]]
choosers = {"length-correlated reward model": "length-correlated",
            "balanced reward model": "balanced", "the principle (oracle)": None}
curves = {name: [rec.best_of_n(record, which, n) for n in ns] for name, which in choosers.items()}
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
for name, picks in curves.items():
    axes[0].plot(ns, [np.mean(p["tokens"]) for p in picks], marker="o", label=name)
    axes[1].plot(ns, [100 * np.mean(p["correct"]) for p in picks], marker="o", label=name)
for ax, ylabel in zip(axes, ("mean length of the pick (tokens)", "picks that are right (%)")):
    ax.set_xscale("log", base=2)
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set_xlabel("n, answers sampled per question")
    ax.set_ylabel(ylabel)
axes[1].legend(fontsize=8)
fig.suptitle(f"Best-of-n on {len(test)} held-out questions, {zoo.REAL_MODEL}, "
             f"reward models pooled over {len(rm_seeds)} seeds")
plt.show()
top = ns[-1]
hacked = curves["length-correlated reward model"]
balanced = curves["balanced reward model"]
glue("bon_top", f"{top}")
glue("len_1", f"{np.mean(hacked[0]['tokens']):.0f}")
glue("len_top", f"{np.mean(hacked[-1]['tokens']):.0f}")
glue("len_bal_top", f"{np.mean(balanced[-1]['tokens']):.0f}")
glue("acc_1", pct_ci(hacked[0]["correct"]))
glue("acc_top", pct_ci(hacked[-1]["correct"]))
glue("acc_bal_top", pct_ci(balanced[-1]["correct"]))
glue("acc_oracle_top", pct_ci(curves["the principle (oracle)"][-1]["correct"]))
glue("v_bon_len", stats.compare(hacked[-1]["tokens"], hacked[0]["tokens"],
                                names=(f"best-of-{top}", "one sample")).verdict)
glue("v_bon_acc", stats.compare(hacked[-1]["correct"], hacked[0]["correct"],
                                names=(f"best-of-{top}", "one sample")).verdict)
glue("v_bon_vs_bal", stats.compare(balanced[-1]["correct"], hacked[-1]["correct"],
                                   names=("the balanced model's picks",
                                          "the length-correlated model's")).verdict)
""", alt="Two panels against n, the number of answers sampled per question: the mean length of the answer each chooser picks, and the share of picks that are right, for the length-correlated reward model, the balanced reward model and the principle itself.")

md(r"""
With one sample there is nothing to choose: answers average {glue:text}`len_1` tokens and
{glue:text}`acc_1` are right. The length-correlated reward model's picks at n =
{glue:text}`bon_top` average {glue:text}`len_top` tokens ({glue:text}`v_bon_len`) and
{glue:text}`acc_top` of them are right ({glue:text}`v_bon_acc`). The balanced reward
model's picks at the same n average {glue:text}`len_bal_top` tokens and are right
{glue:text}`acc_bal_top` of the time: {glue:text}`v_bon_vs_bal`. A chooser that knew the
principle would have found a right answer {glue:text}`acc_oracle_top` of the time.
""")

md(r"""
## DPO: the preference pairs train the policy directly

Rafailov et al. (2023) start from step 3's objective, maximise the expected reward minus
`beta * KL(pi || pi_ref)`, whose optimum is `pi*(y|x) ∝ pi_ref(y|x) exp(r(x, y) / beta)`.
Turned around, any policy defines a reward, `beta * log(pi(y|x) / pi_ref(y|x))` (plus a
term that depends on the prompt only and cancels in a pair). Put that *implicit reward*
into the Bradley-Terry loss and the reward model disappears: the loss needs four numbers
per pair, the policy's and the reference's log-probabilities of the chosen and the
rejected answer, each summed over the answer's tokens.
""")

code(r"""
book.show(alignment.dpo_loss)
""")

md(r"""
At the start the policy is the reference, every implicit reward is zero and the loss is
`log 2` for any beta. `sequence_logps` computes the four inputs from text, through the chat
template; the reference is the same model with its LoRA adapters switched off
(`lora.disabled`), so no second copy is kept in memory. The next cell checks the three
losses against TRL's trainers on the same inputs, on a tiny random Llama that reads
SmolLM2's tokenizer (`tests/test_alignment.py` runs the same checks and more).
""")

code(r"""
checks = alignment.check_against_trl(tokenizer)
tolerance = 1e-5
rows = [{"loss": r["loss"], "llmlab": f"{r['llmlab']:.4f}", "TRL": f"{r['TRL']:.4f}",
         f"agree within {tolerance:g}": r["difference"] < tolerance} for r in checks["rows"]]
display(tables.fmt(pd.DataFrame(rows), index=False))
glue("trl_version", checks["trl"])
glue("trl_agree", f"within {tolerance:g}" if checks["worst"] < tolerance else
     f"only within {checks['worst']:.0e}")
""")

md(r"""
The book's Bradley-Terry, DPO and GRPO losses agree with TRL {glue:text}`trl_version`'s
{glue:text}`trl_agree` on the same inputs. (TRL's GRPO by default also multiplies the KL
term by the probability ratio, a correction the paper does not have; the comparison turns
it off.)

### What DPO does to the model

The recording runs DPO on the {glue:text}`n_train_pairs` training pairs (where length
says nothing) for {glue:text}`dpo_steps` steps of {glue:text}`dpo_batch` pairs, at three
values of beta ({glue:text}`dpo_runs_text`), and every {glue:text}`dpo_every` steps
scores the held-out pairs: the share whose chosen answer gets the higher implicit reward,
the mean margin between the two implicit rewards, and how far the policy has moved from
the reference, as the KL divergence between their next-token distributions summed over
the positions of the held-out chosen answers (an exact sum over the vocabulary, no
sampling).
""")

code(r"""
dpo_plan = plan["dpo"]
glue("dpo_steps", f"{dpo_plan['steps']}")
glue("dpo_batch", f"{dpo_plan['batch_size']}")
glue("dpo_every", f"{dpo_plan['eval_every']}")
by_beta = {b: sum(1 for r in record["dpo"] if r["beta"] == b) for b in dpo_plan["betas"]}
glue("dpo_runs_text", ", ".join(f"{n} seed{'s' if n > 1 else ''} at {b}" for b, n in by_beta.items()))
betas = dpo_plan["betas"]
dpo = {(r["beta"], r["seed"]): r for r in record["dpo"]}
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
for beta in betas:
    runs = [r for r in record["dpo"] if r["beta"] == beta]
    steps = [0] + [e["step"] for e in runs[0]["evals"]]
    acc = [[50.0] + [100 * np.mean(bits(e["correct"])) for e in r["evals"]] for r in runs]
    margin = [[0.0] + [np.mean(e["margin"]) for e in r["evals"]] for r in runs]
    kl = [[0.0] + [np.mean(e["kl_chosen"]) for e in r["evals"]] for r in runs]
    for ax, values in zip(axes, (acc, margin, kl)):
        line = ax.plot(steps, np.mean(values, axis=0), marker="o", label=f"beta = {beta}")[0]
        for v in values:
            ax.scatter(steps, v, s=10, color=line.get_color(), alpha=0.5)
labels = ("held-out pairs ranked right (%)", "implicit reward margin", "KL to the reference (nats)")
for ax, ylabel in zip(axes, labels):
    ax.set_xlabel("DPO step")
    ax.set_ylabel(ylabel)
axes[0].legend(fontsize=8)
fig.suptitle(f"DPO with LoRA on {zoo.REAL_MODEL}: lines are means over the seeds of each beta, "
             "dots single runs")
plt.show()
""", alt="Three panels against DPO steps, one line per beta with dots for single seeds: the share of held-out pairs whose chosen answer gets the higher implicit reward, the mean implicit reward margin, and the KL divergence to the reference model.")

md(r"""
At step 0 every implicit reward is zero, so the accuracy is drawn at chance (a tie is not
a right ranking; the plotted 50% marks where a coin would be). The table gives the end of
each run, pooled over seeds, and what the policy's own probabilities now prefer (the
same comparison as before training, without the reference).
""")

code(r"""
rows = []
for beta in betas:
    runs = [r for r in record["dpo"] if r["beta"] == beta]
    last = [r["evals"][-1] for r in runs]
    rows.append({
        "beta": f"{beta:g}",
        "held-out pairs ranked right": pct_ci(sum((bits(e["correct"]) for e in last), [])),
        "margin": f"{np.mean([np.mean(e['margin']) for e in last]):.2f}",
        "KL (nats)": f"{np.mean([np.mean(e['kl_chosen']) for e in last]):.2f}",
        "policy prefers chosen": pct_ci(sum((bits(e["prefers_chosen"]) for e in last), [])),
        "greedy replies right": pct_ci(sum((bits(r["replies_correct"]) for r in runs), [])),
    })
display(tables.fmt(pd.DataFrame(rows), index=False))
mid = betas[1]
mid_runs = [r for r in record["dpo"] if r["beta"] == mid]
after_pref = sum((bits(r["evals"][-1]["prefers_chosen"]) for r in mid_runs), [])
after_ok = sum((bits(r["replies_correct"]) for r in mid_runs), [])
glue("beta_mid", f"{mid}")
glue("dpo_mid_acc", pct_ci(sum((bits(r["evals"][-1]["correct"]) for r in mid_runs), [])))
glue("v_dpo_prefers", stats.compare(after_pref, prefers * len(mid_runs),
                                    names=("the policy after DPO", "before")).verdict)
glue("v_dpo_greedy", stats.compare(after_ok, greedy_ok * len(mid_runs),
                                   names=("greedy replies after DPO", "before")).verdict)
kl_by_beta = {b: np.mean([np.mean(r["evals"][-1]["kl_chosen"]) for r in record["dpo"] if r["beta"] == b])
              for b in betas}
glue("kl_small_beta", f"{kl_by_beta[betas[0]]:.2f}")
glue("kl_large_beta", f"{kl_by_beta[betas[-1]]:.2f}")
glue("beta_small", f"{betas[0]}")
glue("beta_large", f"{betas[-1]}")
""")

md(r"""
At beta = {glue:text}`beta_mid` the policy ranks {glue:text}`dpo_mid_acc` of held-out
pairs right by its implicit reward. Its own probabilities changed too: for preferring the
chosen answer of a held-out pair, {glue:text}`v_dpo_prefers`. Whether it now *answers*
better is a different question, asked of its greedy replies to the same questions:
{glue:text}`v_dpo_greedy`. Beta sets how far the policy may move: on the held-out chosen
answers the KL to the reference is {glue:text}`kl_small_beta` nats at beta =
{glue:text}`beta_small` and {glue:text}`kl_large_beta` at beta = {glue:text}`beta_large`
after the same steps.

Here are replies to the first held-out questions before and after DPO (beta =
{glue:text}`beta_mid`, seed 0):
""")

code(r"""
after = dpo[(mid, dpo_seeds[0])]["replies"]
for p, a, b in list(zip(test, samples["greedy"], after))[:5]:
    print(p["prompt"])
    print(f"  before: {a[:70]!r}")
    print(f"  after:  {b[:70]!r}\n")
""")

md(r"""
### The start of a recorded run, live

The next cell re-runs the first steps of the recorded DPO run at beta =
{glue:text}`beta_mid`, seed 0, with the same pairs, batches and adapters, and compares
its losses with the record's.
""")

code(r"""
# NBVAL_IGNORE_OUTPUT (a timing)
live_steps = 4
seed_everything(dpo_seeds[0])
policy = rec.with_lora(model)
t0 = time.perf_counter()
live = alignment.train_dpo(policy, tokenizer, splits["train"], beta=mid, steps=live_steps,
                           batch_size=dpo_plan["batch_size"], lr=dpo_plan["lr"],
                           seed=dpo_seeds[0])
live_s = time.perf_counter() - t0
recorded = dpo[(mid, dpo_seeds[0])]["history"][:live_steps]
gap = max(abs(a["loss"] - b["loss"]) for a, b in zip(live, recorded))
print(f"{live_steps} DPO steps in {live_s:.0f} s")
for a, b in zip(live, recorded):
    print(f"step {a['step']}: loss {a['loss']:.4f} live, {b['loss']:.4f} recorded")
""", tags=("nbval-ignore-output",))

code(r"""
glue("live_steps", f"{live_steps}")
glue("live_match", "within 0.01" if gap < 0.01 else f"{gap:.3f} apart")
glue("live_loss0", f"{live[0]['loss']:.3f}")
print("live losses match the record:", gap < 0.01)
""")

md(r"""
The live losses match the recorded ones ({glue:text}`live_match` over
{glue:text}`live_steps` steps). The first loss is {glue:text}`live_loss0`, `log 2` to three
places, as it must be with the policy equal to its reference.
""")

md(r"""
## GRPO: reinforcement learning with a reward a program checks

GRPO (Shao et al. 2024) samples a group of `G` answers to each prompt, scores them, and
uses each answer's reward relative to its group as its advantage:
`A_i = (r_i - mean(r)) / (std(r) + eps)`. An answer better than its siblings is pushed up,
a worse one down, and a group whose answers all score the same teaches nothing. No value
network predicts the baseline; the group is the baseline.
""")

code(r"""
book.show(alignment.grpo_advantages)
book.show(alignment.grpo_loss)
""")

md(r"""
The loss is PPO's clipped objective per token, with the ratio `pi / pi_old` between the
policy now and the policy that sampled, plus `beta` times a per-token estimate of the KL to
the reference that is never negative (Shao et al. 2024, eq. 4). With one gradient step per
sampled batch, as here, the ratio is 1 and the clipping never acts; its gradient is then
the plain policy gradient weighted by the advantages.

The task: {glue:text}`n_sums_train` addition questions such as "What is 7 + 12?" (held
out: {glue:text}`n_sums_test` others), reward 1 when the reply's last number is the sum.
The model starts clearly above zero and clearly below the ceiling. Each step samples
{glue:text}`grpo_g` answers to each of {glue:text}`grpo_p` questions at temperature
{glue:text}`grpo_t` (at most {glue:text}`grpo_tokens` tokens), for {glue:text}`grpo_steps`
steps, {glue:text}`grpo_seeds` seeds; every {glue:text}`grpo_every` steps the recording asks
the {glue:text}`n_sums_test` held-out questions greedily.
""")

code(r"""
gp = plan["grpo"]
sums_train, sums_test = preferences.load_sums("train"), preferences.load_sums("test")
for k, v in {"n_sums_train": len(sums_train), "n_sums_test": len(sums_test),
             "grpo_g": gp["group_size"], "grpo_p": gp["prompts_per_step"],
             "grpo_t": gp["temperature"], "grpo_tokens": gp["max_new_tokens"],
             "grpo_steps": gp["steps"], "grpo_every": gp["eval_every"]}.items():
    glue(k, f"{v}")
grpo = sorted(record["grpo"], key=lambda r: r["seed"])
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
for r in grpo:
    h = pd.DataFrame(r["history"])
    axes[0].plot(h["step"], h["reward"].rolling(5, min_periods=1).mean(), label=f"seed {r['seed']}")
    axes[1].plot(h["step"], h["length"].rolling(5, min_periods=1).mean())
    steps = [e["step"] for e in r["evals"]]
    axes[2].plot(steps, [100 * np.mean(bits(e["correct"])) for e in r["evals"]], marker="o")
for ax, ylabel in zip(axes, ("mean reward of the samples", "mean sample length (tokens)",
                             "held-out questions right, greedy (%)")):
    ax.set_xlabel("GRPO step")
    ax.set_ylabel(ylabel)
axes[0].legend(fontsize=8)
fig.suptitle(f"GRPO with LoRA on {zoo.REAL_MODEL}, {len(grpo_seeds)} seeds "
             "(first two panels: running mean over 5 steps)")
plt.show()
start = sum((bits(r["evals"][0]["correct"]) for r in grpo), [])
end = sum((bits(r["evals"][-1]["correct"]) for r in grpo), [])
glue("grpo_start", pct_ci(start))
glue("grpo_end", pct_ci(end))
glue("v_grpo", stats.compare(end, start, names=("after GRPO", "before")).verdict)
per_seed = [f"{pct(sum(bits(r['evals'][0]['correct'])), len(sums_test))} to "
            f"{pct(sum(bits(r['evals'][-1]['correct'])), len(sums_test))}" for r in grpo]
glue("grpo_per_seed", "; ".join(per_seed))
first = np.mean([np.mean([h["reward"] for h in r["history"][:5]]) for r in grpo])
last = np.mean([np.mean([h["reward"] for h in r["history"][-5:]]) for r in grpo])
glue("reward_first", f"{first:.2f}")
glue("reward_last", f"{last:.2f}")
len_first = np.mean([np.mean([h["length"] for h in r["history"][:5]]) for r in grpo])
len_last = np.mean([np.mean([h["length"] for h in r["history"][-5:]]) for r in grpo])
glue("len_first", f"{len_first:.0f}")
glue("len_last", f"{len_last:.0f}")
glue("kl_last", f"{np.mean([r['history'][-1]['kl'] for r in grpo]):.3f}")
""", alt="Three panels against GRPO steps, one line per seed: the mean reward of the sampled answers, their mean length in tokens, and the share of held-out addition questions answered right greedily.")

md(r"""
The mean reward of the sampled answers rises from {glue:text}`reward_first` over the first
five steps to {glue:text}`reward_last` over the last five (means over seeds), and the
samples shrink from {glue:text}`len_first` to {glue:text}`len_last` tokens. On the held-out
questions, answered greedily, the model goes from {glue:text}`grpo_start` to
{glue:text}`grpo_end` right, pooled over seeds ({glue:text}`v_grpo`; per seed:
{glue:text}`grpo_per_seed`). The per-token KL estimate to the reference ends at
{glue:text}`kl_last`.

How the sampled answers changed, seed 0, the same question's group early and late:
""")

code(r"""
sampled = grpo[0]["sampled"]
per_step = gp["prompts_per_step"] * gp["group_size"]
for step in (1, gp["steps"]):
    group = sampled[(step - 1) * per_step:(step - 1) * per_step + gp["group_size"]]
    print(f"step {step}:")
    for text in group[:4]:
        print("   ", repr(textwrap.shorten(text, 72)))
""")

md(r"""
What GRPO learned here is mostly to stop: the samples give the sum and end, instead of
going on into text where a later number spoils the reward. That is typical of
reinforcement learning with a verifiable reward on a small budget: it sharpens what the
model can already do more than it teaches new skills (Yue et al. 2025 make this argument
for reasoning models).
""")

md(r"""
## What this chapter did not do

- **PPO** itself, with its value network, is not implemented: DPO and GRPO are what most
  open models now use, and each of them was checked against TRL.
- The preferences come from one checkable principle, not from people: real preference
  data is noisier, disagrees with itself, and hides its reasons.
- The runs are short (tens of steps) and small (a 135M-parameter model with LoRA); the
  effects measured here are those of the first steps of alignment, not of a finished
  assistant.

## Summary

- A reward model learns from pairs with the Bradley-Terry loss; one trained where length
  goes with preference learns length: {glue:text}`v_rm_short`.
- Best-of-n against that reward model, on length: {glue:text}`v_bon_len`; on
  correctness: {glue:text}`v_bon_acc`.
- DPO needs four log-probabilities per pair and no reward model; at beta =
  {glue:text}`beta_mid`, {glue:text}`v_dpo_prefers`; on greedy answers,
  {glue:text}`v_dpo_greedy`.
- GRPO with an exact-match reward: {glue:text}`v_grpo`.

This notebook ran in {glue:text}`runtime_s` seconds on the machine that built this page.

## References

- Askell, A. et al. (2021). *A General Language Assistant as a Laboratory for Alignment.*
  arXiv:2112.00861.
- Bai, Y. et al. (2022). *Constitutional AI: Harmlessness from AI Feedback.*
  arXiv:2212.08073.
- Bradley, R. A. & Terry, M. E. (1952). *Rank Analysis of Incomplete Block Designs: I.
  The Method of Paired Comparisons.* Biometrika.
- DeepSeek-AI (2025). *DeepSeek-R1: Incentivizing Reasoning Capability in LLMs via
  Reinforcement Learning.* arXiv:2501.12948.
- Gao, L., Schulman, J. & Hilton, J. (2023). *Scaling Laws for Reward Model
  Overoptimization.* ICML.
- Ouyang, L. et al. (2022). *Training Language Models to Follow Instructions with Human
  Feedback.* NeurIPS.
- Rafailov, R. et al. (2023). *Direct Preference Optimization: Your Language Model is
  Secretly a Reward Model.* NeurIPS.
- Schulman, J. et al. (2017). *Proximal Policy Optimization Algorithms.* arXiv:1707.06347.
- Shao, Z. et al. (2024). *DeepSeekMath: Pushing the Limits of Mathematical Reasoning in
  Open Language Models.* arXiv:2402.03300.
- Singhal, P., Goyal, T., Xu, J. & Durrett, G. (2023). *A Long Way to Go: Investigating
  Length Correlations in RLHF.* arXiv:2310.03716.
- Yue, Y. et al. (2025). *Does Reinforcement Learning Really Incentivize Reasoning Capacity
  in LLMs Beyond the Base Model?* arXiv:2504.13837.
""")

code(r"""
# NBVAL_IGNORE_OUTPUT (a timing)
runtime_s = time.perf_counter() - started
glue("runtime_s", f"{runtime_s:.0f}")
print(f"ran in {runtime_s:.0f} s")
""", tags=("nbval-ignore-output",))

for _c in cells:
    if _c.cell_type == "code":
        _out = subprocess.run([".venv/bin/ruff", "format", "--line-length", "88", "-"],
                              input=_c.source, capture_output=True, text=True)
        if _out.returncode == 0:
            _c.source = _out.stdout.rstrip("\n")
        else:
            print("format failed:", _out.stderr[:300])
nb = nbf.v4.new_notebook()
nb.cells = cells
nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
               "language_info": {"name": "python"}}
out = Path("chapters/13_alignment.ipynb").resolve()
nbf.write(nb, out)
print(len(cells), "cells")
subprocess.run([".venv/bin/python", "tools/notebook_header.py", "chapters/13_alignment.ipynb"], check=True)
