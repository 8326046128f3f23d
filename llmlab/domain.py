"""Pre-training for a domain (chapter 9): tokenizer fertility, a domain corpus, continued pre-training.

A general model meets a specialised field twice. Its *tokenizer* was fitted to
everyday text, so a word like "myalgia" or "indemnification" falls apart into
many short pieces (high *fertility*: tokens per word). Its *weights* were fitted
to everyday usage, so domain text gets a high loss. This module measures both:

- :func:`fertility` and :func:`word_pieces`: tokens per word, and how each word splits;
  :func:`hold_out_phrases` keeps the chapter's examples out of the domain tokenizers'
  training text (:func:`domain_tokenizer`); :func:`real_tokenizer` is SmolLM2's;
- :func:`generate_domain_corpus`: legal, medical and financial documents written
  by a program of this project (the same idea as the story generator in
  :mod:`llmlab.data`; the text is CC0, see ``llmlab/corpus/SOURCE.md``), shipped
  as ``llmlab/corpus/domain.txt.gz`` and read back with :func:`load_domain_corpus`;
- :func:`mix_by_tokens`, :func:`nats_per_byte` and :func:`continue_pretraining`:
  train a decoder on domain text, alone or mixed with general text in a share of
  tokens (BloombergGPT's recipe, Wu et al. 2023), either continuing a bundled model
  or from scratch (:func:`fresh_model`), and measure the loss per byte on held-out
  domain text, stories and English before and after;
- :func:`record_runs`, :func:`run_setup` and :func:`continue_pretraining` are the four runs
  of the chapter at matched compute; ``python -m llmlab.records.domain_adaptation`` records
  them and :func:`llmlab.records.domain_adaptation.load` reads them back.
"""

from __future__ import annotations

import gzip
import random
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from . import _checks, recipes, tokenization, zoo
from .train import TrainConfig, TrainLog, causal_lm_loss, check_corpus, random_batch, train_loop

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
        raise (ValueError if isinstance(text, str) else _checks.ArgumentTypeError)(
            f"text must be a non-empty string, got {text!r}")
    out = []
    for word in WORD.findall(text):
        ids = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
        out.append((word, tokenizer.convert_ids_to_tokens(ids)))
    return out


def fertility(tokenizer, texts: str | list[str]) -> float:
    """Tokens per whitespace-separated word of ``texts`` under ``tokenizer``.

    1.0 means every word is one token; a general tokenizer on specialist text scores
    higher, because it spells rare words out in short pieces. Counts tokens of the
    whole text (as a model would see it), without special tokens. Chapter 9.
    """
    texts = _check_texts(texts)
    n_words = sum(len(WORD.findall(t)) for t in texts)
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]  # one list per text
    n_tokens = sum(len(text_ids) for text_ids in ids)
    return n_tokens / n_words


def fertility_table(tokenizers: dict, texts_by_domain: dict[str, list[str]]):
    """A pandas DataFrame of :func:`fertility`: one row per domain, one column per named tokenizer."""
    import pandas as pd

    if not isinstance(tokenizers, dict):
        raise _checks.ArgumentTypeError(f"tokenizers must be a dict mapping a name to a tokenizer, "
                                        f"got {type(tokenizers).__name__} {tokenizers!r:.60}")
    if not isinstance(texts_by_domain, dict):
        raise _checks.ArgumentTypeError(f"texts_by_domain must be a dict mapping a domain to a list of texts, "
                                        f"got {type(texts_by_domain).__name__} {texts_by_domain!r:.60}")
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
    if isinstance(n_per_domain, bool) or not isinstance(n_per_domain, int) or n_per_domain <= 0:
        raise (ValueError if isinstance(n_per_domain, int) and not isinstance(n_per_domain, bool)
               else _checks.ArgumentTypeError)(f"n_per_domain must be a positive int, got {n_per_domain!r}")
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


# --------------------------------------------------------------------------- out-of-sample examples
EXAMPLE_PHRASES = tuple(p for phrases in EXAMPLES.values() for p in phrases)
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z$])")


def _phrases(phrases) -> re.Pattern:
    if isinstance(phrases, str) or not isinstance(phrases, (list, tuple)) or not phrases:
        raise (ValueError if isinstance(phrases, (list, tuple)) else _checks.ArgumentTypeError)(f"phrases must be a non-empty list of strings, got {phrases!r}")
    if not all(isinstance(p, str) and p.strip() for p in phrases):
        raise ValueError(f"phrases must hold only non-empty strings, got {phrases!r}")
    return re.compile("|".join(rf"(?<!\w){re.escape(p)}(?!\w)" for p in phrases), re.IGNORECASE)


def split_sentences(doc: str) -> list[str]:
    """The sentences of ``doc``: split after ".", "!" or "?" where a space and a capital (or "$") follow."""
    if not isinstance(doc, str):
        raise TypeError(f"doc must be a string, got {type(doc).__name__}")
    return [s for s in SENTENCE.split(doc.strip()) if s]


def hold_out_phrases(docs: list[str], phrases=EXAMPLE_PHRASES) -> tuple[list[str], list[str]]:
    """Remove every sentence that contains one of ``phrases`` (whole words, any case) from ``docs``.

    Returns ``(kept, held)``: the documents without those sentences (a document left
    empty is dropped) and the removed sentences. Chapter 9 trains its domain tokenizers
    on ``kept`` of the training documents, so that the syllabus's examples
    (:data:`EXAMPLES`) and the sentences that carry them are out of sample.
    """
    docs = _check_texts(docs, "docs")
    pattern = _phrases(phrases)
    kept, held = [], []
    for doc in docs:
        keep = []
        for sentence in split_sentences(doc):
            (held if pattern.search(sentence) else keep).append(sentence)
        if keep:
            kept.append(" ".join(keep))
    return kept, held


def phrase_counts(texts: list[str], phrases=EXAMPLE_PHRASES) -> dict[str, int]:
    """How many times each of ``phrases`` occurs in ``texts`` (whole words, any case)."""
    texts = _check_texts(texts)
    _phrases(phrases)
    return {p: sum(len(_phrases([p]).findall(t)) for t in texts) for p in phrases}


def domain_tokenizer(vocab_size: int, docs: list[str] | None = None):
    """A byte-level BPE of ``vocab_size`` entries trained on ``docs`` (default: the domain training
    split) with the example sentences held out (:func:`hold_out_phrases`); chapter 9."""
    vocab_size = _checks.positive_int("vocab_size", vocab_size)
    kept, _ = hold_out_phrases(load_domain_corpus("train") if docs is None else docs)
    return tokenization.train_tokenizer(kept, vocab_size)


def real_tokenizer():
    """SmolLM2-135M-Instruct's tokenizer (a 49,152-entry byte-level BPE trained on general web text),
    read offline from the converted folder of :func:`llmlab.zoo.prepare`; chapter 9's general tokenizer."""
    from transformers import AutoTokenizer

    with zoo._quiet_loading():
        return AutoTokenizer.from_pretrained(zoo.prepare(zoo.REAL_MODEL, progress=False), local_files_only=True)


# --------------------------------------------------------------------------- mixing, loss per byte
def mix_documents(domain_docs: list[str], general_docs: list[str], domain_fraction: float,
                  n_docs: int, seed: int = 0) -> list[str]:
    """``n_docs`` documents drawn (with replacement, seeded) so that a share ``domain_fraction`` is domain text.

    The share counts *documents*, which is not how training mixes are described:
    BloombergGPT's shares are shares of tokens (Wu et al. 2023). Use
    :func:`mix_by_tokens` for that; :func:`token_share` measures a mix in tokens.
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


def mix_by_tokens(tokenizer, domain_docs: list[str], general_docs: list[str],
                  domain_share: float, n_tokens: int,
                  seed: int = 0) -> tuple[list[str], list[str]]:
    """A training mix of about ``n_tokens`` tokens of which a share ``domain_share`` is
    domain text.

    Counts tokens under ``tokenizer`` (each document's tokens plus its end-of-text), as
    BloombergGPT's shares do (Wu et al. 2023). Documents are drawn with replacement,
    seeded, until each part reaches its budget. Returns ``(domain part, general part)``;
    their concatenation, shuffled, is the training set. :func:`token_share` of the two
    is the realised share without the end-of-text tokens (one per document).
    """
    _checks.tokenizer("tokenizer", tokenizer)
    _checks.fraction("domain_share", domain_share)
    n_tokens = _checks.positive_int("n_tokens", n_tokens)
    rng = random.Random(seed)

    def draw(docs: list[str], what: str, budget: float) -> list[str]:
        if budget <= 0:
            return []
        check_corpus(docs, what)
        # each document's tokens, plus one for the end-of-text token after it
        ids = tokenizer(list(docs), add_special_tokens=False)["input_ids"]
        lengths = [len(doc_ids) + 1 for doc_ids in ids]
        out, total = [], 0
        while total < budget:
            i = rng.randrange(len(docs))
            out.append(docs[i])
            total += lengths[i]
        return out

    return (draw(domain_docs, "domain_docs", domain_share * n_tokens),
            draw(general_docs, "general_docs", (1 - domain_share) * n_tokens))


def encode_documents(tokenizer, docs: list[str]) -> torch.Tensor:
    """One 1-D stream of token ids: each document followed by end-of-text (refuses an empty corpus)."""
    _checks.strings("docs", docs, allow_empty=True)
    _checks.tokenizer("tokenizer", tokenizer)
    return tokenization.encode_stories(tokenizer, docs, what="documents")


def token_share(tokenizer, domain_docs: list[str], general_docs: list[str]) -> float:
    """Share of tokens that are domain tokens when the two lists are trained on together."""
    _checks.strings("domain_docs", domain_docs, allow_empty=True)
    _checks.strings("general_docs", general_docs, allow_empty=True)
    _checks.tokenizer("tokenizer", tokenizer)
    n_dom = sum(len(x) for x in tokenizer(domain_docs, add_special_tokens=False)["input_ids"]) if domain_docs else 0
    n_gen = sum(len(x) for x in tokenizer(general_docs, add_special_tokens=False)["input_ids"]) if general_docs else 0
    if n_dom + n_gen == 0:
        raise ValueError("both document lists are empty")
    return n_dom / (n_dom + n_gen)


@torch.no_grad()
def nats_per_byte(model, tokenizer, docs: list[str], seq_len: int = 128, batch_size: int = 16) -> float:
    """Next-token loss of ``model`` on ``docs``, summed over every token and divided by the text's bytes.

    Per byte rather than per token, so that models with different tokenizers compare:
    a tokenizer whose tokens are longer has fewer, harder predictions per token, and the
    same text in bytes. The stream is end-of-text, document, end-of-text, document, ...,
    cut into windows of ``seq_len`` tokens without overlap; every token of every document
    and every end-of-text after one is predicted once. Bytes are the UTF-8 bytes of the
    documents plus one per document for its end-of-text (which stands for the paragraph
    break between documents). Units: nats per byte (divide by ln 2 for bits per byte).
    """
    import torch.nn.functional as F

    _checks.model("model", model)
    _checks.tokenizer("tokenizer", tokenizer)
    docs = _check_texts(docs, "docs")
    seq_len = _checks.positive_int("seq_len", seq_len)
    batch_size = _checks.positive_int("batch_size", batch_size)
    window = getattr(getattr(model, "config", None), "n_positions", None)
    if isinstance(window, int) and seq_len > window:
        raise ValueError(f"seq_len ({seq_len}) is longer than the model's context window ({window} tokens)")
    eos = tokenizer.eos_token_id
    ids = torch.cat([torch.tensor([eos]), encode_documents(tokenizer, docs)])
    n_windows = -(-(ids.numel() - 1) // seq_len)
    padded = torch.full((n_windows * seq_len + 1,), -100, dtype=torch.long)
    padded[: ids.numel()] = ids
    x = padded[:-1].clamp(min=0).view(n_windows, seq_len)  # padding enters as id 0 and is never a target
    y = padded[1:].view(n_windows, seq_len)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total = 0.0
    for i in range(0, n_windows, batch_size):
        logits = model(x[i:i + batch_size].to(device)).logits.float()
        total += F.cross_entropy(logits.reshape(-1, logits.size(-1)), y[i:i + batch_size].reshape(-1).to(device),
                                 ignore_index=-100, reduction="sum").item()
    model.train(was_training)
    return total / sum(len(d.encode("utf-8")) + 1 for d in docs)


def held_out_losses(model, tokenizer, texts: dict[str, list[str]], seq_len: int = 128) -> dict[str, float]:
    """:func:`nats_per_byte` of ``model`` on each named list of held-out documents."""
    if not isinstance(texts, dict) or not texts:
        raise ValueError("texts must name at least one list of held-out documents, e.g. {'domain': docs}")
    return {name: nats_per_byte(model, tokenizer, docs, seq_len) for name, docs in texts.items()}


# --------------------------------------------------------------------------- continued pre-training, from scratch
def fresh_model(tokenizer, like: str = "stories-1m", seed: int = 0):
    """An untrained decoder with the architecture of the bundled model ``like`` and ``tokenizer``'s
    vocabulary (chapter 9's model trained from scratch). Seeded: the same weights every time."""
    from .device import seed_everything

    _checks.tokenizer("tokenizer", tokenizer)
    _checks.non_negative_int("seed", seed)
    if like not in recipes.RECIPES:
        raise ValueError(f"like must name a bundled model, one of {sorted(recipes.RECIPES)}, got {like!r}")
    recipe = recipes.RECIPES[like]
    if recipe.family != "decoder":
        raise ValueError(f"like must name a bundled decoder, got {like!r} ({recipe.family})")
    seed_everything(seed)
    config = recipe.model_config()
    config.vocab_size = len(tokenizer)
    config.bos_token_id = config.eos_token_id = tokenizer.eos_token_id
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_config(config).eval()


@dataclass
class AdaptationResult:
    """One training run on a domain/general mix: held-out losses (nats per byte) before, during and after."""

    name: str
    domain_share: float
    token_share: float
    before: dict
    after: dict
    curve: list[dict]
    log: TrainLog
    start: str = ""
    tokenizer: str = ""

    def row(self) -> dict:
        """One flat row for a results table: the run, its size and the losses before and after."""
        row = {"run": self.name, "start": self.start, "tokenizer": self.tokenizer,
               "domain_share": round(self.domain_share, 4), "token_share": round(self.token_share, 4),
               "steps": self.log.config["steps"], "tokens_seen": self.log.tokens_seen,
               "seconds": round(self.log.seconds, 1)}
        for key in self.before:
            row[f"{key}_before"] = round(self.before[key], 4)
            row[f"{key}_after"] = round(self.after[key], 4)
        return row


def continue_pretraining(model, tokenizer, domain_docs: list[str], general_docs: list[str],
                         held_out: dict[str, list[str]], cfg: TrainConfig, domain_share: float = 1.0,
                         n_tokens: int | None = None, name: str = "", device: torch.device | str | None = None,
                         progress: bool = False) -> AdaptationResult:
    """Train ``model`` (in place) on a domain/general mix; held-out losses before, during and after.

    The training set is :func:`mix_by_tokens` (a share ``domain_share`` of about
    ``n_tokens`` tokens, default the tokens the run will see) encoded with ``tokenizer``,
    trained with :func:`llmlab.train.train_loop` (AdamW, warm-up then cosine). With a
    pretrained model and its own tokenizer this is continued pre-training; with
    :func:`fresh_model` and a new tokenizer it is pre-training from scratch (chapter 9).
    ``held_out`` names lists of validation documents, for example ``{"domain": ...,
    "general": ...}``; each is scored with :func:`nats_per_byte` before training, every
    ``cfg.eval_every`` steps (the ``curve``) and at the end.
    """
    _checks.model("model", model)
    if not isinstance(held_out, dict) or not held_out:
        raise ValueError("held_out must name at least one list of validation documents, e.g. {'domain': docs}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    n_tokens = cfg.steps * cfg.tokens_per_step if n_tokens is None else n_tokens
    dom, gen = mix_by_tokens(tokenizer, domain_docs, general_docs, domain_share, n_tokens, seed=cfg.seed)
    docs = dom + gen
    random.Random(cfg.seed).shuffle(docs)
    train_ids = encode_documents(tokenizer, docs)
    model.to(device)
    before = held_out_losses(model, tokenizer, held_out, cfg.seq_len)
    curve = [{"step": 0, "tokens": 0, **before}]
    seen = {"tokens": 0}

    def batch_loss(g: torch.Generator) -> tuple[torch.Tensor, int]:
        x, y = random_batch(train_ids, cfg.batch_size, cfg.seq_len, g)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            loss = causal_lm_loss(model, x.to(device), y.to(device))
        seen["tokens"] += cfg.tokens_per_step
        return loss, cfg.tokens_per_step

    def val_loss() -> float:
        losses = held_out_losses(model, tokenizer, held_out, cfg.seq_len)
        model.train()
        curve.append({"step": seen["tokens"] // cfg.tokens_per_step, "tokens": seen["tokens"], **losses})
        return next(iter(losses.values()))

    log = train_loop(model, cfg, device, batch_loss, val_loss, progress=progress)
    after = {k: v for k, v in curve[-1].items() if k in held_out}
    model.eval()
    return AdaptationResult(name or f"{domain_share:.0%} domain", domain_share, token_share(tokenizer, dom, gen),
                            before, after, curve, log)


# --------------------------------------------------------------------------- the recorded comparison
ENGLISH_PASSAGES = Path(__file__).parent / "corpus" / "english_passages.txt"  # chapter 6's passages
EVAL_DOCS = 150  # held-out domain documents (50 of each domain) and held-out stories scored per evaluation
RECORD_CONFIG = dict(steps=400, batch_size=16, seq_len=128, lr=1e-3, warmup_steps=40, eval_every=50,
                     eval_batches=1)


def bloomberg_domain_share() -> float:
    """BloombergGPT's financial share of its data set, in tokens (363B of 708B; Wu et al. 2023),
    from :class:`llmlab.scaling.BloombergBudget` (the figures chapter 8 uses)."""
    from . import scaling

    bbg = scaling.BloombergBudget()
    return bbg.tokens_domain / bbg.tokens_available


def english_passages() -> list[str]:
    """The project's ten passages of everyday English (chapter 6; ``llmlab/corpus/SOURCE.md``)."""
    return [p for p in ENGLISH_PASSAGES.read_text(encoding="utf-8").split("\n\n") if p.strip()]


def held_out_texts() -> dict[str, list[str]]:
    """The recorded comparison's held-out documents: domain, stories (the general model's corpus), English."""
    from . import data

    return {"domain": load_domain_corpus("validation")[:EVAL_DOCS],
            "general": data.load_corpus("validation")[:EVAL_DOCS],
            "english": english_passages()}


def record_runs() -> list[tuple[str, str, float]]:
    """The four runs of the record: ``(name, start, domain share in tokens)``; start is "continued"
    (``stories-1m`` and its story tokenizer) or "scratch" (:func:`fresh_model`, a 1,024-entry BPE)."""
    share = bloomberg_domain_share()
    mix = f"{share:.0%} domain tokens"
    return [("continued, domain only", "continued", 1.0), (f"continued, {mix}", "continued", share),
            ("from scratch, domain only", "scratch", 1.0), (f"from scratch, {mix}", "scratch", share)]


def run_setup(start: str, domain_share: float, general_docs: list[str]):
    """Model, tokenizer and tokenizer label of one recorded run (see :func:`record_runs`)."""
    if start not in ("continued", "scratch"):
        raise ValueError(f"start must be 'continued' or 'scratch', got {start!r}")
    _checks.fraction("domain_share", domain_share)
    if start == "continued":
        model, tokenizer = zoo.load("stories-1m", device="cpu")
        return model, tokenizer, "stories BPE 1,024"
    domain_train = load_domain_corpus("train")
    if domain_share >= 1.0:
        tokenizer, label = domain_tokenizer(1024, domain_train), "domain BPE 1,024"
    else:
        tokenizer, label = mix_tokenizer(domain_train, general_docs), "mix BPE 1,024"
    return fresh_model(tokenizer), tokenizer, label


def mix_tokenizer(domain_train: list[str], general_docs: list[str]):
    """A 1,024-entry BPE of a mix: the domain training text (the chapter's examples held out)
    and about as many bytes of ``general_docs``, the from-scratch mix runs' tokenizer."""
    kept, _ = hold_out_phrases(domain_train)
    general_docs = _check_texts(general_docs, "general_docs")
    budget, general = sum(map(len, kept)), []
    for doc in general_docs:
        if budget <= 0:
            break
        general.append(doc)
        budget -= len(doc)
    return tokenization.train_tokenizer(kept + general, 1024)
