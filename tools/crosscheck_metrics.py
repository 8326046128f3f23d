"""Record what the maintained BLEU and ROUGE packages say on a fixed set of sentence pairs (chapter 11).

``llmlab.evaluation.bleu``, ``sentence_bleu`` and ``rouge_scores`` are written from
scratch; ``tests/test_evaluation.py`` checks them against the record this script writes,
``llmlab/results/evaluation_metrics_crosscheck.json``: the pairs themselves, sacrebleu's
corpus BLEU (on all pairs and on named subsets) and sentence BLEU per pair, and
rouge-score's ROUGE-1, ROUGE-2 and ROUGE-L F1 per pair, with the package versions and the
date. sacrebleu and rouge-score are not dependencies of the book, so the script runs in a
throw-away environment of its own, outside the repository:

    python3 -m venv /tmp/xcheck && /tmp/xcheck/bin/pip install sacrebleu rouge-score
    /tmp/xcheck/bin/python tools/crosscheck_metrics.py

It imports nothing from llmlab (that environment has no torch). Both packages run with
their defaults: ``sacrebleu.corpus_bleu(hyps, [refs])`` (tokenizer 13a, case kept, "exp"
smoothing, no effective order), ``sacrebleu.sentence_bleu(hyp, [ref])`` ("exp" smoothing,
effective order) and ``RougeScorer(["rouge1", "rouge2", "rougeL"])`` (no stemmer), scored
as ``score(reference, hypothesis)``.
"""

from __future__ import annotations

import datetime
import json
import platform
import sys
from importlib.metadata import version
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "llmlab" / "results" / "evaluation_metrics_crosscheck.json"

# (reference, hypothesis): short sentences written for this check, each chosen to exercise one
# part of the two metrics (the comment says which).
PAIRS = [
    # exact copies
    ("The cat sat on the mat.", "The cat sat on the mat."),
    ("Water boils at 100 degrees Celsius at sea level.", "Water boils at 100 degrees Celsius at sea level."),
    ("Paris is the capital of France.", "Paris is the capital of France."),
    # paraphrases: right meaning, different words
    ("The cat sat on the mat.", "A cat was sitting on the rug."),
    ("The meeting was postponed until next week.", "They moved the meeting to the following week."),
    ("She quickly finished her homework before dinner.", "Before dinner, she rushed through her homework."),
    ("The train leaves at nine in the morning.", "The train departs at 9 a.m."),
    ("Most plants need sunlight to grow.", "Sunlight is needed by most plants for growth."),
    # partial overlaps and reorderings
    ("The quick brown fox jumps over the lazy dog.", "The quick brown dog jumps over the lazy fox."),
    ("The quick brown fox jumps over the lazy dog.", "A fast brown fox leaps over a lazy dog."),
    ("The children played football in the park after school.", "The children played in the park."),
    ("He bought apples, oranges and bananas at the market.", "He bought apples at the market."),
    ("The red car is parked next to the blue house.", "The blue car is parked next to the red house."),
    ("dog bites man", "man bites dog"),
    ("the the the the", "the the the the the the the"),
    # empty-ish hypotheses
    ("The sun rises in the east.", ""),
    ("The sun rises in the east.", "."),
    ("The sun rises in the east.", "the"),
    ("The sun rises in the east.", "East."),
    ("The sun rises in the east.", "   "),
    # punctuation and case
    ("The Sun rises in the East.", "the sun rises in the east"),
    ("Hello, world!", "hello world"),
    ("It's a well-known fact: cats don't like water.", "Its a well known fact, cats dont like water."),
    ("\"Stop!\" she shouted (loudly).", "Stop, she shouted loudly."),
    ("Tom & Jerry &amp; friends <skipped> are here.", "Tom &amp; Jerry & friends are here."),
    ("The U.S. economy grew, e.g. in 2020.", "The U.S. economy grew e.g. in 2020."),
    # numbers
    ("The price rose from $3.50 to $4.00.", "The price rose from $3.50 to $4."),
    ("There are 1,000 students and 25 teachers.", "There are 1000 students and 25 teachers."),
    ("The score was 3-2 after 90 minutes.", "The score was 3 - 2 after 90 minutes."),
    ("Pi is about 3.14159, and e is about 2.71828.", "Pi is about 3.14, and e is about 2.72."),
    ("The meeting is at 9:15 on 12/05/2024.", "The meeting is at 9.15 on 12 May 2024."),
    ("Multiply 7 by 6 to get 42.", "7 x 6 = 42"),
    # longer texts, line breaks and non-ASCII letters
    ("The committee reviewed the proposal carefully and decided to approve it with minor changes to the budget.",
     "After a careful review, the committee approved the proposal, with small changes to the budget."),
    ("First line of the summary.\nSecond line follows here.", "First line of the summary. Second line follows here."),
    ("The café serves crème brûlée and naïve art.", "The cafe serves creme brulee and naive art."),
    ("A long-term plan was drawn up in mid-2019.", "A long term plan was drawn up in mid 2019."),
]

# Named subsets for corpus BLEU besides "all": the corpus statistics are summed before the
# precisions are taken. "all" has a brevity penalty (its hypotheses are shorter in total);
# "paraphrases" has no trigram or 4-gram match anywhere, so sacrebleu's default "exp"
# smoothing decides its score; "short_hypotheses" has no trigram in any hypothesis, which
# makes corpus BLEU 0 (sentence BLEU, with the effective order, still scores some of them).
SUBSETS = {
    "all": list(range(len(PAIRS))),
    "copies": [0, 1, 2],
    "paraphrases": [3, 4, 5, 6, 7],
    "short_hypotheses": [16, 17, 18, 19],
    "numbers": [26, 27, 28, 29, 30, 31],
}


def main() -> None:
    import sacrebleu
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    pairs = []
    for reference, hypothesis in PAIRS:
        rouge = scorer.score(reference, hypothesis)
        pairs.append({
            "reference": reference,
            "hypothesis": hypothesis,
            "sentence_bleu": sacrebleu.sentence_bleu(hypothesis, [reference]).score,
            "rouge1": rouge["rouge1"].fmeasure,
            "rouge2": rouge["rouge2"].fmeasure,
            "rougeL": rouge["rougeL"].fmeasure,
        })
    corpus = {}
    for name, indices in SUBSETS.items():
        result = sacrebleu.corpus_bleu([PAIRS[i][1] for i in indices], [[PAIRS[i][0] for i in indices]])
        corpus[name] = {"indices": indices, "bleu": result.score, "counts": list(result.counts),
                        "totals": list(result.totals), "sys_len": result.sys_len, "ref_len": result.ref_len}
    # the signatures (the settings each score used), read from metrics that have scored once
    corpus_metric, sentence_metric = sacrebleu.BLEU(), sacrebleu.BLEU(effective_order=True)
    corpus_metric.corpus_score([PAIRS[0][1]], [[PAIRS[0][0]]])
    sentence_metric.sentence_score(PAIRS[0][1], [PAIRS[0][0]])
    record = {
        "made_by": "tools/crosscheck_metrics.py",
        "date": datetime.date.today().isoformat(),
        "python": platform.python_version(),
        "packages": {"sacrebleu": version("sacrebleu"), "rouge-score": version("rouge-score")},
        "settings": {
            "corpus_bleu": "sacrebleu.corpus_bleu(hypotheses, [references]) with its defaults: "
                           + str(corpus_metric.get_signature()),
            "sentence_bleu": "sacrebleu.sentence_bleu(hypothesis, [reference]) with its defaults: "
                             + str(sentence_metric.get_signature()),
            "rouge": "rouge_scorer.RougeScorer(['rouge1', 'rouge2', 'rougeL']).score(reference, hypothesis), "
                     "F1 (fmeasure), use_stemmer=False",
        },
        "pairs": pairs,
        "corpus_bleu": corpus,
    }
    OUT.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({len(pairs)} pairs; corpus BLEU {corpus['all']['bleu']:.2f}) with Python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
