"""Shims for transformers releases: generation passes the cache under the name the model takes."""

import warnings

import torch

from llmlab import compat, sampling


def test_the_cache_keyword_is_one_the_models_forward_accepts(make_gpt2, make_llama):
    for model in (make_gpt2(), make_llama()):
        import inspect

        assert compat.cache_argument(model) in inspect.signature(model.forward).parameters


def test_cached_generation_warns_nothing_and_equals_uncached(make_gpt2, make_llama):
    for model in (make_gpt2(), make_llama()):
        ids = torch.tensor([[3, 5, 7]])
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a FutureWarning about the cache keyword fails here
            cached = sampling.generate(model, ids, max_new_tokens=6, use_cache=True)
        assert torch.equal(cached, sampling.generate(model, ids, max_new_tokens=6, use_cache=False))


def test_returned_cache_reads_either_field():
    class New:
        cache = "kv"

    class Old:
        past_key_values = "kv"

    assert compat.returned_cache(New()) == "kv" and compat.returned_cache(Old()) == "kv"


def test_loading_a_model_with_torchao_installed_prints_nothing():
    """transformers imports torchao when it is installed; its import-time logs stay off the page."""
    import subprocess
    import sys

    code = ("from llmlab import zoo\nzoo.load('icl-small')\nimport torchao.quantization\n"
            "import logging\nassert logging.getLogger('torchao').getEffectiveLevel() == logging.ERROR\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout == ""
