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
    "chapters/04_prompting.ipynb": {"0": 2, "1": 2, "2": 2, "50": 4, "100": 1},
    "chapters/05_sampling.ipynb": {"0": 2, "0.01": 1, "0.02": 1, "0.1": 2, "0.10": 1, "0.20": 1, "0.3": 1, "0.5": 1, "0.9": 3, "1": 1, "1.3": 1, "1.5": 3, "2": 1, "4": 1, "90": 2, "95": 1},
    "chapters/06_memory_quantization.ipynb": {"0": 3, "0.001": 1, "0.17": 1, "1": 10, "1.0078125": 1, "1.9": 1, "2": 10, "2.13": 1, "3": 1, "3.141592": 1, "4": 22, "5": 4, "6": 4, "7": 1, "7.5": 1, "8": 18, "8.5": 1, "10": 1, "12": 2, "16": 13, "16.6": 1, "18": 1, "20": 7, "23": 1, "24": 6, "30": 2, "31.4": 1, "32": 13, "34": 2, "40": 1, "61": 1, "64": 4, "80": 9, "99.9": 1, "120": 1, "127": 3, "128": 8, "135": 1, "175": 1, "210": 2, "255": 1, "256": 3, "448": 1, "512": 4, "754": 1, "1,024": 1, "1,536": 1, "2048": 5, "49,152": 1, "50,257": 1, "70,000": 1},
    "chapters/07_multi_gpu.ipynb": {"0": 6, "0.5": 1, "1": 12, "1.5": 1, "2": 28, "3": 2, "4": 12, "7": 3, "8": 11, "16": 4, "32": 2, "64": 3, "80": 5, "128": 1, "512": 4, "1024": 1},
    "chapters/08_scaling_laws.ipynb": {"0.05": 1, "0.07": 1, "0.28": 1, "0.34": 1, "0.5": 1, "1.3": 2, "1.4": 1, "2": 2, "3": 1, "5": 1, "6": 3, "8": 3, "8.64": 1, "16": 1, "20": 10, "24": 1, "28": 1, "34": 1, "53": 2, "64": 5, "67.5": 1, "70": 1, "100": 1, "102": 2, "128": 1, "140": 6, "174.6": 1, "300": 2, "312": 2, "345": 1, "350": 2, "363": 1, "366": 1, "512": 2, "569": 1, "624": 1, "708": 1, "768": 1, "800": 3, "1,024": 4},
    "chapters/09_domain_adaptation.ipynb": {"1": 5, "1.0": 1, "1.3": 1, "2": 1, "8": 1, "20": 1, "40": 2, "49": 1, "50": 1, "50.6": 2, "102": 1, "128": 1, "345": 1, "363": 1, "569": 1, "1,024": 9, "2,048": 4, "49,152": 3},
    "chapters/10_prompt_tuning.ipynb": {"0": 2, "0.01": 1, "1": 6, "4": 7, "11": 1, "16": 7, "20": 1, "30": 1, "39": 1, "65": 1, "80": 1, "82": 1, "90": 1, "100": 1, "128": 2},
    "exercises/03_pretraining.md": {"1.0": 1},
    "exercises/05_sampling.md": {"0": 3, "1": 1},
    "exercises/06_memory_quantization.md": {"0": 1, "0.0": 1, "2": 1, "4": 1, "5": 1, "7": 1, "8": 1, "10": 1, "12": 1, "127": 5, "128": 2, "255": 1, "256": 1},
    "exercises/07_multi_gpu.md": {"0": 1, "0.1": 1, "2": 2, "12": 1, "16": 1},
    "exercises/08_scaling_laws.md": {"86,400": 1},
    "exercises/10_prompt_tuning.md": {"5": 1, "15": 1, "80": 1},
    "exercises/teachers.md": {"1": 4, "2": 4, "3": 4, "4": 6, "5": 14, "6": 5, "7": 7, "8": 5, "9": 4, "10": 28, "15": 15, "20": 3, "35": 1, "40": 1, "45": 1, "50": 2, "55": 1, "65": 1, "70": 1, "75": 2, "127": 1, "128": 1},
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
