"""No number typed into the book's prose: each is glued from a cell, cited, or a name.

``tools/prose_numbers.py`` finds the numbers; this test fails on any page that has one
that is not on its known list below. The lists hold the typed numbers of the pages that
have not yet been brought through the check (chapters 4 to 10, the exercise pages and
the page for teachers), as counts per number: they may only shrink. A list entry that
the page no longer has fails too, so a fixed number leaves the list in the same change.
"""

import importlib.util
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("prose_numbers", ROOT / "tools" / "prose_numbers.py")
pn = importlib.util.module_from_spec(_spec)
sys.modules["prose_numbers"] = pn  # dataclasses look their module up there
_spec.loader.exec_module(pn)

# Typed numbers known per page, to be removed by glue or a citation (number: count).
KNOWN = {
    "exercises/03_pretraining.md": {"1.0": 1},
    "exercises/05_sampling.md": {"0": 3, "1": 1},
    "exercises/teachers.md": {"5": 14, "10": 29, "15": 25, "20": 6, "35": 1, "40": 1, "45": 1, "50": 2, "55": 2, "60": 2,
                              "65": 3, "70": 1, "75": 2, "127": 1, "128": 1},
}


def _rel(path):
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("page", pn.pages(), ids=_rel)
def test_no_typed_numbers_beyond_the_known_list(page):
    flags = pn.scan(page)
    found = Counter(f.number for f in flags)
    known = Counter(KNOWN.get(_rel(page), {}))
    new = found - known
    sentences = [str(f) for f in flags if f.number in new]
    assert not new, ("numbers typed into the prose: glue them from a cell, cite their source, or (for a name) "
                     "extend the allowlist in tools/prose_numbers.py:\n" + "\n".join(sentences))
    stale = known - found
    assert not stale, f"the known list of {_rel(page)} names numbers the page no longer has: remove {dict(stale)}"


def test_known_lists_name_existing_pages():
    assert set(KNOWN) <= {_rel(p) for p in pn.pages()}
    # the preface, the primer and chapters 1 to 3 have been brought through: they stay clean
    assert not any(k.startswith(("chapters/00", "chapters/01", "chapters/02", "chapters/03")) for k in KNOWN)


# ---- the check itself, on planted text -----------------------------------------------
@pytest.mark.parametrize("text", [
    "The model's loss fell to 0.31 nats per token.",
    "With the cache it took 92 s and without it 117 s.",
    "SmolLM2 labels 87% of the reviews right.",
    "Training ran for 1,200 steps.",
    "| Score an option by hand | 11 |",
    "It is {glue:text}`x` times faster, and 3 times cheaper.",
    "A 1,000-token prompt costs less.",
    "The value $0.25$ nats is typed into math.",
])
def test_flags_a_planted_typed_number(text):
    assert pn.typed_numbers(text), f"not flagged: {text}"


@pytest.mark.parametrize("text", [
    "The model's loss fell to {glue:text}`loss` nats per token.",
    "GPT-3 has 175 billion parameters (Brown et al. 2020).",
    "Chinchilla used 20 tokens per parameter, as Hoffmann et al. (2022) found.",
    "The NVIDIA talk gives 28 days on 800 A100s.",
    "See chapter 3 and chapters 4, 9 and 10, and section 2.2.",
    "GPT-2, FP16, BF16, Q4_1, SmolLM2-135M-Instruct and Llama-3-8B are names.",
    "An 8-bit integer and a 4-bit float; 16-, 8- and 4-bit numbers.",
    "Attention was introduced in 2017.",
    "The course puts it at 80 GB (DeepLearning.AI and AWS, *Generative AI with LLMs* (2023), week 1).",
    "Its table gives 28 days (Grzywaczewski, NVIDIA, *Generative AI Demystified* (2023)).",
    "Under ZeRO stage 2 the gradients are sharded.",
    "The accuracy with its 95% Wilson interval.",
    "Run `top_k=50` in code, and $\\sqrt{d}$ and $2^{16}$ in math.",
    "# 3. Pre-training",
    "| 1. Lifecycle | what it answers |",
    "| [11. Evaluating language models](11_evaluation.md) | Score an option by hand |",
    "*About 10 minutes.*",
    "Released under the Apache License 2.0, with Python 3.10 or newer.",
])
def test_accepts_glued_cited_and_named_numbers(text):
    assert not pn.typed_numbers(text), pn.typed_numbers(text)


def test_reference_list_is_not_prose():
    text = "Our loss is {glue:text}`l`.\n\n## References\n\n- Wilson, E. B. (1927). JASA 22(158). arXiv:2502.02737."
    assert not pn.typed_numbers(text)
