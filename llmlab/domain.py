"""Pre-training for a domain (chapter 9): tokenizer fertility, a domain corpus, continued pre-training.

A general model meets a specialised field twice. Its *tokenizer* was fitted to
everyday text, so a word like "myalgia" or "indemnification" falls apart into
many short pieces (high *fertility*: tokens per word). Its *weights* were fitted
to everyday usage, so domain text gets a high loss. This module measures both:

- :func:`fertility` and :func:`word_pieces`: tokens per word, and how each word splits;
- :func:`generate_domain_corpus`: legal, medical and financial documents written
  by a program of this project (the same idea as the story generator in
  :mod:`llmlab.data`; the text is CC0, see ``llmlab/corpus/SOURCE.md``), shipped
  as ``llmlab/corpus/domain.txt.gz`` and read back with :func:`load_domain_corpus`;
- :func:`mix_documents`, :func:`encode_documents`, :func:`held_out_losses` and
  :func:`continue_pretraining`: continue training a bundled decoder on domain text,
  alone or mixed with general text (BloombergGPT's recipe, Wu et al. 2023), and
  measure the loss on held-out domain and general text before and after.
"""

from __future__ import annotations

import gzip
import random
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from . import _checks, zoo
from .train import TrainConfig, TrainLog, causal_lm_loss, check_corpus, evaluate, random_batch, train_loop

DOMAINS = ("legal", "medical", "financial")
DOMAIN_CORPUS_FILE = Path(__file__).parent / "corpus" / "domain.txt.gz"
DOMAIN_CORPUS_SEED = 2024
DOMAIN_CORPUS_DOCS = 1500  # per domain
DOC_SEPARATOR = "\n\n"
HEADER = re.compile(r"^\[(legal|medical|financial)\] ")
VALIDATION_FRACTION = 0.1
WORD = re.compile(r"\S+")

# The syllabus's examples (chapter 9), shown token by token in the chapter.
EXAMPLES = {
    "legal": ["mens rea", "res judicata", "consideration", "indemnification", "estoppel"],
    "medical": ["myalgia", "biopsy", "malignant", "Sig: 1 tab po qid pc & hs"],
    "financial": ["EBITDA", "amortization", "basis points", "collateralized"],
}


# --------------------------------------------------------------------------- fertility
def _check_texts(texts, what: str = "texts") -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    check_corpus(list(texts) if isinstance(texts, (list, tuple)) else texts, what)
    return list(texts)


def word_pieces(tokenizer, text: str) -> list[tuple[str, list[str]]]:
    """Split ``text`` at whitespace; return each word with the tokens ``tokenizer`` makes of it.

    A word is tokenized as it appears inside running text, with the space before it
    (byte-level BPE folds that space into the word's first token, shown as ``Ġ``;
    WordPiece drops it). Special tokens ([CLS], [SEP]) are not counted.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text must be a non-empty string, got {text!r}")
    out = []
    for word in WORD.findall(text):
        ids = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
        out.append((word, tokenizer.convert_ids_to_tokens(ids)))
    return out


def fertility(tokenizer, texts: str | list[str]) -> float:
    """Tokens per whitespace-separated word of ``texts`` under ``tokenizer`` (chapter 9).

    1.0 means every word is one token; a general tokenizer on specialist text scores
    higher, because it spells rare words out in short pieces. Counts tokens of the
    whole text (as a model would see it), without special tokens.
    """
    texts = _check_texts(texts)
    n_words = sum(len(WORD.findall(t)) for t in texts)
    n_tokens = sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])
    return n_tokens / n_words


def fertility_table(tokenizers: dict, texts_by_domain: dict[str, list[str]]):
    """A pandas DataFrame of :func:`fertility`: one row per domain, one column per named tokenizer."""
    import pandas as pd

    if not tokenizers or not texts_by_domain:
        raise ValueError("need at least one tokenizer and one domain of texts")
    rows = {domain: {name: fertility(tok, texts) for name, tok in tokenizers.items()}
            for domain, texts in texts_by_domain.items()}
    return pd.DataFrame(rows).T.rename_axis("domain")


# --------------------------------------------------------------------------- the corpus
_PARTIES = ["the Buyer", "the Seller", "the Lessee", "the Lessor", "the Licensee", "the Contractor",
            "the Employer", "the Guarantor", "the Borrower", "the Lender"]
_LEGAL = [
    "The defendant lacked the requisite mens rea, and the charge of {crime} must fail.",
    "The claim is barred by res judicata because the same parties litigated it in {year}.",
    "{P} shall indemnify and hold harmless {Q} against all claims arising from {breach}.",
    "In consideration of the sum of {money}, {P} grants {Q} a non-exclusive license.",
    "This Agreement shall be governed by the laws of {state}, notwithstanding any conflict of laws.",
    "The plaintiff seeks injunctive relief and damages for breach of fiduciary duty.",
    "The court held that the doctrine of promissory estoppel applies to {P}.",
    "{P} warrants that the goods are free from defects in title, material and workmanship.",
    "Any dispute shall be submitted to binding arbitration in {city} under the rules then in force.",
    "The appellate court reversed and remanded, finding the lower court erred as a matter of law.",
    "Pursuant to Section {section}, {P} may terminate this Agreement upon thirty days written notice.",
    "The tort of negligence requires a duty of care, a breach, causation and damages.",
    "The lessee covenants to pay rent quarterly in arrears, together with any applicable surcharge.",
    "Force majeure shall excuse performance for the duration of the event, but not payment obligations.",
    "The testator bequeathed the residuary estate to the trustee, in trust for {beneficiary}.",
    "The motion for summary judgment is granted; there is no genuine dispute of material fact.",
    "Habeas corpus relief was denied because the petitioner failed to exhaust state remedies.",
    "The confidentiality obligations survive termination of this Agreement for {n} years.",
]
_MEDICAL = [
    "Patient presents with {symptom} and myalgia for {n} days; afebrile on examination.",
    "Sig: 1 tab po qid pc & hs for {n} days.",
    "Sig: {k} tabs po bid prn {symptom}; do not exceed {m} tabs in 24 h.",
    "Biopsy of the {organ} lesion showed {finding}.",
    "The lesion was malignant on histology; referral to oncology was made.",
    "History of hypertension and type 2 diabetes mellitus, on metformin {dose} mg bid.",
    "Auscultation revealed bilateral crackles; chest radiograph shows {finding2}.",
    "Differential diagnosis includes {dx1}, {dx2} and {dx3}.",
    "Administer {drug} {dose} mg IV stat, then q{h}h as needed.",
    "Labs: hemoglobin {hb} g/dL, creatinine {cr} mg/dL, potassium {kk} mmol/L.",
    "The patient denies dyspnea, orthopnea or paroxysmal nocturnal dyspnea.",
    "Postoperative course was uncomplicated; the patient was discharged on day {n}.",
    "Echocardiography demonstrated an ejection fraction of {ef}% with mild mitral regurgitation.",
    "Neurological examination: cranial nerves intact, no focal deficit, reflexes symmetric.",
    "Plan: continue {drug}, repeat electrolytes in the morning, physiotherapy consult.",
    "Rx: {drug} {dose} mg, disp #{disp}, refills {k}.",
    "Assessment: {dx1}, likely secondary to {dx2}; monitor for tachycardia and hypotension.",
    "Tenderness over the {organ} with guarding; rule out appendicitis versus cholecystitis.",
]
_FINANCIAL = [
    "Quarterly revenue rose {pct}% year over year to {money}, while EBITDA margin contracted {bp} basis points.",
    "The central bank raised the policy rate by {bp} basis points, citing persistent inflation.",
    "The company issued {money} of senior unsecured notes due {year2} at a coupon of {rate}%.",
    "Amortization of intangible assets reduced operating income by {money}.",
    "The fund's net asset value per share declined {pct}% as credit spreads widened.",
    "Analysts downgraded the stock to underweight, citing weak free cash flow and rising leverage.",
    "The collateralized loan obligation tranche was rated {rating} by the agency.",
    "Diluted earnings per share were {eps}, beating the consensus estimate of {eps2}.",
    "The yield on the ten-year Treasury note rose to {rate}%, flattening the yield curve.",
    "The board authorized a share repurchase program of up to {money}.",
    "Goodwill impairment of {money} was recognized after the annual impairment test.",
    "The bank's common equity tier 1 ratio stood at {rate}%, above the regulatory minimum.",
    "Hedging gains on interest rate swaps offset losses on the fixed income portfolio.",
    "The merger is expected to be accretive to earnings within {n} quarters, subject to regulatory approval.",
    "Volatility in the options market rose as the implied volatility index reached {vix}.",
    "Operating cash flow of {money} covered capital expenditures and the quarterly dividend.",
    "The issuer's debt-to-equity ratio increased to {ratio} after the leveraged buyout.",
    "Foreign exchange headwinds reduced reported revenue by {pct}% on a constant currency basis.",
]
_FILL = {
    "crime": ["fraud", "larceny", "conspiracy", "perjury", "embezzlement", "burglary"],
    "state": ["Delaware", "New York", "California", "England and Wales", "Ontario"],
    "city": ["London", "New York", "Geneva", "Singapore", "Chicago"],
    "breach": ["any breach of warranty", "the negligence of its employees", "any infringement of patents",
               "the use of the premises"],
    "beneficiary": ["the testator's grandchildren", "a charitable foundation", "the surviving spouse"],
    "symptom": ["fever", "cough", "nausea", "headache", "fatigue", "arthralgia", "pruritus", "dyspnea"],
    "organ": ["liver", "skin", "breast", "prostate", "thyroid", "colon", "kidney"],
    "finding": ["a benign nevus", "adenocarcinoma", "chronic inflammation", "squamous cell carcinoma",
                "a well-differentiated neoplasm"],
    "finding2": ["a right lower lobe consolidation", "no acute cardiopulmonary process",
                 "a small pleural effusion", "pulmonary edema"],
    "dx1": ["pneumonia", "sepsis", "pyelonephritis", "cellulitis", "gastroenteritis", "influenza"],
    "dx2": ["dehydration", "hypokalemia", "anemia", "heart failure", "chronic kidney disease"],
    "dx3": ["pulmonary embolism", "myocardial infarction", "pericarditis", "pancreatitis"],
    "drug": ["amoxicillin", "ibuprofen", "furosemide", "lisinopril", "ceftriaxone", "metoprolol",
             "acetaminophen", "prednisone", "ondansetron"],
    "rating": ["AAA", "AA", "A", "BBB", "BB"],
}


def _fill(rng: random.Random, template: str) -> str:
    def money() -> str:
        return f"${rng.randint(1, 950)}.{rng.randint(0, 9)} {rng.choice(['million', 'billion'])}"

    values = {key: rng.choice(options) for key, options in _FILL.items()}
    values |= {
        "P": "", "Q": "", "money": money(), "year": str(rng.randint(1985, 2022)),
        "year2": str(rng.randint(2026, 2040)), "section": f"{rng.randint(1, 19)}.{rng.randint(1, 9)}",
        "n": str(rng.randint(2, 10)), "k": str(rng.randint(1, 3)), "m": str(rng.randint(4, 8)),
        "dose": str(rng.choice([5, 10, 20, 25, 40, 50, 250, 500, 1000])), "h": str(rng.choice([4, 6, 8, 12])),
        "hb": f"{rng.uniform(7, 16):.1f}", "cr": f"{rng.uniform(0.5, 3.5):.1f}", "kk": f"{rng.uniform(2.8, 5.9):.1f}",
        "ef": str(rng.randint(20, 70)), "disp": str(rng.choice([10, 14, 20, 30, 60, 90])),
        "pct": f"{rng.uniform(0.5, 35):.1f}", "bp": str(rng.choice([10, 25, 50, 75, 100, 150])),
        "rate": f"{rng.uniform(0.5, 9.5):.2f}", "eps": f"${rng.uniform(0.1, 9):.2f}",
        "eps2": f"${rng.uniform(0.1, 9):.2f}", "vix": f"{rng.uniform(11, 45):.1f}",
        "ratio": f"{rng.uniform(0.3, 4.5):.2f}",
    }
    values["P"], values["Q"] = rng.sample(_PARTIES, 2)
    text = template.format(**values)
    return text[0].upper() + text[1:]


def generate_domain_document(rng: random.Random, domain: str, n_sentences: tuple[int, int] = (3, 6)) -> str:
    """One document of ``domain`` ("legal", "medical" or "financial"): a few sentences from its templates."""
    _checks.rng("rng", rng)
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
    templates = {"legal": _LEGAL, "medical": _MEDICAL, "financial": _FINANCIAL}[domain]
    k = rng.randint(*n_sentences)
    return " ".join(_fill(rng, t) for t in rng.sample(templates, k))


def generate_domain_corpus(n_per_domain: int = DOMAIN_CORPUS_DOCS, seed: int = DOMAIN_CORPUS_SEED
                           ) -> list[tuple[str, str]]:
    """``n_per_domain`` documents of each domain as ``(domain, text)`` pairs, interleaved, seeded."""
    if not isinstance(n_per_domain, int) or n_per_domain <= 0:
        raise ValueError(f"n_per_domain must be a positive int, got {n_per_domain!r}")
    rng = random.Random(seed)
    return [(d, generate_domain_document(rng, d)) for _ in range(n_per_domain) for d in DOMAINS]


def write_domain_corpus(path: Path = DOMAIN_CORPUS_FILE, n_per_domain: int = DOMAIN_CORPUS_DOCS,
                        seed: int = DOMAIN_CORPUS_SEED) -> Path:
    """Write the domain corpus (gzip, deterministic bytes; one ``[domain] text`` document per paragraph)."""
    text = DOC_SEPARATOR.join(f"[{d}] {t}" for d, t in generate_domain_corpus(n_per_domain, seed))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(text.encode("utf-8"))
    return path


def load_domain_corpus(split: str = "all", domain: str | None = None) -> list[str]:
    """The shipped domain documents: split "train" (first 90%), "validation" (last 10%) or "all".

    ``domain`` keeps only "legal", "medical" or "financial" documents (default: all three).
    """
    allowed = ("all", "train", "validation")
    if split not in allowed:
        raise ValueError(f"split must be one of {allowed}, got {split!r}")
    if domain is not None and domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS} or None, got {domain!r}")
    with gzip.open(DOMAIN_CORPUS_FILE, "rt", encoding="utf-8") as f:
        docs = f.read().split(DOC_SEPARATOR)
    n_val = int(len(docs) * VALIDATION_FRACTION)
    docs = {"all": docs, "train": docs[: len(docs) - n_val], "validation": docs[len(docs) - n_val:]}[split]
    out = []
    for doc in docs:
        m = HEADER.match(doc)
        if m is None:
            raise ValueError(f"corrupt domain corpus: a document does not start with [domain]: {doc[:40]!r}")
        if domain is None or m.group(1) == domain:
            out.append(doc[m.end():])
    return out


# --------------------------------------------------------------------------- continued pre-training
def mix_documents(domain_docs: list[str], general_docs: list[str], domain_fraction: float,
                  n_docs: int, seed: int = 0) -> list[str]:
    """``n_docs`` documents drawn (with replacement, seeded) so that a share ``domain_fraction`` is domain text.

    The share counts documents; :func:`token_share` measures it in tokens. BloombergGPT
    trained on about 51% financial and 49% general tokens (Wu et al. 2023).
    """
    if not 0.0 <= domain_fraction <= 1.0:
        raise ValueError(f"domain_fraction must be in [0, 1], got {domain_fraction}")
    if not isinstance(n_docs, int) or n_docs <= 0:
        raise ValueError(f"n_docs must be a positive int, got {n_docs!r}")
    if domain_fraction > 0:
        check_corpus(domain_docs, "domain_docs")
    if domain_fraction < 1:
        check_corpus(general_docs, "general_docs")
    rng = random.Random(seed)
    n_domain = round(n_docs * domain_fraction)
    docs = [rng.choice(domain_docs) for _ in range(n_domain)] + \
           [rng.choice(general_docs) for _ in range(n_docs - n_domain)]
    rng.shuffle(docs)
    return docs


def encode_documents(tokenizer, docs: list[str]) -> torch.Tensor:
    """One 1-D stream of token ids: each document followed by end-of-text (refuses an empty corpus)."""
    return zoo.encode_stories(tokenizer, docs, what="documents")


def token_share(tokenizer, domain_docs: list[str], general_docs: list[str]) -> float:
    """Share of tokens that are domain tokens when the two lists are trained on together."""
    n_dom = sum(len(x) for x in tokenizer(domain_docs, add_special_tokens=False)["input_ids"]) if domain_docs else 0
    n_gen = sum(len(x) for x in tokenizer(general_docs, add_special_tokens=False)["input_ids"]) if general_docs else 0
    if n_dom + n_gen == 0:
        raise ValueError("both document lists are empty")
    return n_dom / (n_dom + n_gen)


def held_out_losses(model, streams: dict[str, torch.Tensor], cfg: TrainConfig,
                    device: torch.device | str | None = None) -> dict[str, float]:
    """Mean next-token loss (nats per token) of ``model`` on each named held-out stream (llmlab.train.evaluate)."""
    _checks.model("model", model)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    losses = {name: evaluate(model, ids, cfg, device) for name, ids in streams.items()}
    model.eval()  # evaluate() hands the model back in train mode
    return losses


@dataclass
class AdaptationResult:
    """One continued pre-training run: held-out losses (nats per token) before, during and after."""

    name: str
    domain_fraction: float
    before: dict
    after: dict
    curve: list[dict]
    log: TrainLog

    def row(self) -> dict:
        """One flat row for a results table: the run, its size and the losses before and after."""
        row = {"run": self.name, "domain_fraction": self.domain_fraction, "steps": self.log.config["steps"],
               "tokens_seen": self.log.tokens_seen, "seconds": round(self.log.seconds, 1)}
        for key in self.before:
            row[f"{key}_before"] = round(self.before[key], 4)
            row[f"{key}_after"] = round(self.after[key], 4)
        return row


def continue_pretraining(model, tokenizer, domain_docs: list[str], general_docs: list[str],
                         held_out: dict[str, torch.Tensor], cfg: TrainConfig, domain_fraction: float = 1.0,
                         n_docs: int = 4000, name: str = "", device: torch.device | str | None = None,
                         progress: bool = False) -> AdaptationResult:
    """Continue training ``model`` (in place) on a domain/general mix; held-out losses before, during, after.

    The training stream is :func:`mix_documents` encoded with the model's own tokenizer
    (continued pre-training keeps the vocabulary, chapter 9), trained with
    :func:`llmlab.train.train_loop` (AdamW, warm-up then cosine). ``held_out`` names
    validation streams, for example ``{"domain": ..., "general": ...}``; each is
    evaluated with :func:`llmlab.train.evaluate` (the same fixed windows every time)
    before training, every ``cfg.eval_every`` steps (the ``curve``) and at the end.
    """
    _checks.model("model", model)
    if not held_out:
        raise ValueError("held_out must name at least one validation stream, e.g. {'domain': ids}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    train_ids = encode_documents(tokenizer, mix_documents(domain_docs, general_docs, domain_fraction, n_docs,
                                                          seed=cfg.seed))
    before = held_out_losses(model, held_out, cfg, device)
    curve = [{"step": 0, "tokens": 0, **before}]
    seen = {"tokens": 0}

    def batch_loss(g: torch.Generator) -> tuple[torch.Tensor, int]:
        x, y = random_batch(train_ids, cfg.batch_size, cfg.seq_len, g)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            loss = causal_lm_loss(model, x.to(device), y.to(device))
        seen["tokens"] += cfg.tokens_per_step
        return loss, cfg.tokens_per_step

    def val_loss() -> float:
        losses = {k: evaluate(model, ids, cfg, device) for k, ids in held_out.items()}
        curve.append({"step": seen["tokens"] // cfg.tokens_per_step, "tokens": seen["tokens"], **losses})
        return next(iter(losses.values()))

    log = train_loop(model, cfg, device, batch_loss, val_loss, progress=progress)
    after = {k: v for k, v in curve[-1].items() if k in held_out}
    model.eval()
    return AdaptationResult(name or f"{domain_fraction:.0%} domain", domain_fraction, before, after, curve, log)


RECIPE_RUNS = {"domain only": 1.0, "51% domain, 49% general": 0.51}
RECIPE_CONFIG = dict(steps=400, batch_size=16, seq_len=128, lr=1e-3, warmup_steps=40, eval_every=25,
                     eval_batches=4)


def run_recipe(out_dir: str | Path | None = None, model_name: str = "stories-1m", steps: int | None = None,
               progress: bool = True) -> Path:
    """The chapter 9 recipe: continue pre-training ``model_name`` on domain text alone and on the 51/49 mix.

    Writes ``domain_adaptation_summary.csv`` (losses before and after) and
    ``domain_adaptation_curves.csv`` (held-out losses every 25 steps) into ``out_dir``
    (default ``llmlab/results``). ``steps`` (a positive int) shortens the runs;
    None keeps the recipe's 400. Run with ``python -m llmlab.domain``; about
    6 CPU-minutes on 2 cores.
    """
    import csv

    from . import data
    from .device import seed_everything

    if steps is not None:
        steps = _checks.positive_int("steps", steps)
    _checks.string("model_name", model_name, allow_empty=False)
    if out_dir is not None and not isinstance(out_dir, (str, Path)):
        raise _checks.ArgumentTypeError(f"out_dir must be a folder path (str or Path), got {type(out_dir).__name__}")
    out = Path(out_dir) if out_dir is not None else Path(__file__).parent / "results"
    out.mkdir(parents=True, exist_ok=True)
    overrides = ({"steps": steps, "warmup_steps": min(RECIPE_CONFIG["warmup_steps"], steps)}
                 if steps is not None else {})
    cfg = TrainConfig(**{**RECIPE_CONFIG, **overrides})
    domain_train, general_train = load_domain_corpus("train"), data.load_corpus("train")
    summary, curves = [], []
    for name, fraction in RECIPE_RUNS.items():
        seed_everything(0)
        model, tokenizer = zoo.load(model_name, device="cpu")
        held_out = {"domain": encode_documents(tokenizer, load_domain_corpus("validation")),
                    "general": encode_documents(tokenizer, data.load_corpus("validation"))}
        result = continue_pretraining(model, tokenizer, domain_train, general_train, held_out, cfg,
                                      domain_fraction=fraction, name=name, device="cpu", progress=progress)
        summary.append(result.row())
        curves.extend({"run": name, **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}}
                      for r in result.curve)
    for fname, rows in (("domain_adaptation_summary.csv", summary), ("domain_adaptation_curves.csv", curves)):
        with open(out / fname, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return out


if __name__ == "__main__":
    print(run_recipe())
