"""llmlab.sampling against Hugging Face's warpers and model.generate, plus hand-worked cases."""

import math

import pytest
import torch
from transformers.generation.logits_process import (
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)
from transformers.utils import logging as hf_logging

from tiny_models import V, one_thread, tiny_gpt2  # noqa: F401 (one_thread is an autouse fixture)

from llmlab.metrics import entropy_bits
from llmlab.sampling import (
    apply_temperature,
    filter_logits,
    generate,
    greedy_next_token,
    next_token_distribution,
    sample_next_token,
    top_k_filter,
    top_p_filter,
)

@pytest.fixture(scope="module")
def model():
    hf_logging.set_verbosity_error()  # silence "attention mask not set" for unpadded batches
    return tiny_gpt2()


@pytest.fixture(scope="module")
def prompts():
    return torch.randint(1, V, (4, 5), generator=torch.Generator().manual_seed(1))  # (B, T)


def hf_generate(model, ids, n, stop=None, **kw):
    return model.generate(ids, max_new_tokens=n, eos_token_id=stop, pad_token_id=stop, **kw)


def hf_filter(logits, temperature, top_k, top_p):
    """HF's three warpers in HF's order (temperature, top-k, top-p)."""
    out = TemperatureLogitsWarper(float(temperature))(None, logits)
    if top_k != 0:  # HF's warper refuses 0; generate simply leaves it out
        out = TopKLogitsWarper(top_k=top_k)(None, out)
    return TopPLogitsWarper(top_p=top_p)(None, out)


def kept(logits):
    """Indices of the tokens that survived a filter (finite logits)."""
    return set(torch.nonzero(torch.isfinite(logits.flatten())).flatten().tolist())


# -----------------------------------------------------------------------------
# filters equal Hugging Face's warpers, bit for bit


@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (3, 7), (1, 50), (4, 97), (2, 1000), (1, 5000)])
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
def test_filter_logits_equals_hf_warpers(shape, ties):
    g = torch.Generator().manual_seed(shape[0] * 10_000 + shape[1])
    if ties:  # a handful of integer values: many equal logits at every cut-off
        logits = torch.randint(-3, 4, shape, generator=g).float()
    else:
        logits = 2.0 * torch.randn(shape, generator=g)
    vocab = shape[1]
    for temperature in (0.3, 0.7, 1.0, 1.5):
        for top_k in (0, 1, 2, 5, 50, vocab + 3):
            for top_p in (0.05, 0.3, 0.9, 1.0):
                ours = filter_logits(logits, temperature, top_k, top_p)
                theirs = hf_filter(logits, temperature, top_k, top_p)
                setting = f"T={temperature} k={top_k} p={top_p}"
                assert torch.equal(torch.isinf(ours), torch.isinf(theirs)), setting
                torch.testing.assert_close(ours, theirs, rtol=0, atol=0, msg=setting)


def test_top_k_keeps_every_logit_tied_with_the_kth_value():
    logits = torch.tensor([[3.0, 1.0, 3.0, 3.0, 0.0]])
    assert kept(top_k_filter(logits, 2)) == {0, 2, 3}  # three 3.0s, although k = 2
    assert kept(TopKLogitsWarper(top_k=2)(None, logits)) == {0, 2, 3}


def test_top_p_cuts_through_ties_by_sort_order_like_hf():
    # four equal tokens, p = 0.5: HF keeps exactly two of them, not all four
    logits = torch.zeros(1, 4)
    ours = top_p_filter(logits, 0.5)
    assert len(kept(ours)) == 2
    assert torch.equal(ours, TopPLogitsWarper(top_p=0.5)(None, logits))


# -----------------------------------------------------------------------------
# hand-worked examples


def test_top_p_keeps_smallest_set_reaching_p():
    logits = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    assert kept(top_p_filter(logits, 0.8)) == {0, 1}  # 0.5 + 0.3 reaches 0.8 exactly
    assert kept(top_p_filter(logits, 0.81)) == {0, 1, 2}  # needs the 0.15 too
    assert kept(top_p_filter(logits, 0.5)) == {0}
    assert kept(top_p_filter(logits, 0.96)) == {0, 1, 2, 3}


def test_top_p_renormalises_the_kept_probabilities():
    probs = next_token_distribution(torch.tensor([0.5, 0.3, 0.15, 0.05]).log(), top_p=0.8)
    torch.testing.assert_close(probs, torch.tensor([0.625, 0.375, 0.0, 0.0]))


def test_top_p_always_keeps_the_most_likely_token():
    logits = torch.tensor([[0.1, 2.0, -1.0, 1.9]])
    assert kept(top_p_filter(logits, 1e-9)) == {1}


def test_top_p_of_one_changes_nothing_even_for_extreme_logits():
    logits = torch.tensor([[0.0, -200.0, -1e4]])  # the last two underflow to probability 0
    assert torch.equal(top_p_filter(logits, 1.0), logits)


def test_top_k_keeps_the_k_largest_logits():
    logits = torch.tensor([[1.0, 5.0, 3.0, 4.0, 2.0]])
    assert kept(top_k_filter(logits, 2)) == {1, 3}
    assert kept(top_k_filter(logits, 1)) == {1}


def test_top_k_zero_or_above_vocab_size_keeps_everything():
    logits = torch.randn(3, 10)
    assert torch.equal(top_k_filter(logits, 0), logits)
    assert torch.equal(top_k_filter(logits, 11), logits)


def test_top_k_one_is_greedy():
    logits = torch.randn(64, 30, generator=torch.Generator().manual_seed(2))
    draws = sample_next_token(logits, temperature=1.5, top_k=1, generator=torch.Generator().manual_seed(3))
    assert torch.equal(draws, logits.argmax(dim=-1))
    assert torch.equal(greedy_next_token(logits), logits.argmax(dim=-1))


def test_greedy_picks_the_first_of_tied_maxima():
    assert greedy_next_token(torch.tensor([1.0, 4.0, 4.0, 2.0])).item() == 1


def test_temperature_divides_the_logits():
    torch.testing.assert_close(apply_temperature(torch.tensor([2.0, -4.0]), 2.0), torch.tensor([1.0, -2.0]))


def test_temperature_one_leaves_the_distribution_unchanged():
    logits = torch.randn(5, 40)
    torch.testing.assert_close(next_token_distribution(logits, temperature=1.0), torch.softmax(logits, dim=-1))


def test_lower_temperature_lowers_entropy_and_higher_raises_it():
    logits = torch.tensor([3.0, 1.0, 0.5, 0.0, -1.0])
    temps = [0.1, 0.5, 1.0, 2.0, 10.0]
    h = [entropy_bits(next_token_distribution(logits, temperature=t)).item() for t in temps]
    assert all(a < b for a, b in zip(h, h[1:])), h
    assert h[0] < 0.01  # nearly greedy
    assert h[-1] > 0.95 * math.log2(5)  # nearly uniform


def test_filters_accept_a_single_row_of_logits():
    logits = torch.tensor([1.0, 5.0, 3.0, 4.0])
    assert kept(filter_logits(logits, top_k=2)) == {1, 3}
    token = sample_next_token(logits, top_k=1)
    assert token.shape == () and token.item() == 1


# -----------------------------------------------------------------------------
# sampling


def test_sampling_with_a_seeded_generator_is_reproducible():
    logits = torch.randn(8, 50)
    a = [sample_next_token(logits, 0.9, 20, 0.9, torch.Generator().manual_seed(7)) for _ in range(2)]
    b = sample_next_token(logits, 0.9, 20, 0.9, torch.Generator().manual_seed(8))
    assert torch.equal(a[0], a[1])
    assert not torch.equal(a[0], b)


def test_samples_stay_inside_the_top_k_set():
    logits = torch.randn(1, 40, generator=torch.Generator().manual_seed(4))
    allowed = set(logits[0].argsort(descending=True)[:5].tolist())
    draws = sample_next_token(logits.expand(4000, -1), top_k=5, generator=torch.Generator().manual_seed(5))
    assert set(draws.tolist()) == allowed  # never outside, and every allowed token shows up


def test_samples_stay_inside_the_top_p_set():
    logits = torch.randn(1, 40, generator=torch.Generator().manual_seed(6))
    # the nucleus, worked out with a plain loop: most likely first until the mass reaches p
    probs = torch.softmax(logits[0].double(), dim=-1)
    allowed, mass = set(), 0.0
    for i in probs.argsort(descending=True).tolist():
        allowed.add(i)
        mass += probs[i].item()
        if mass >= 0.7:
            break
    draws = sample_next_token(logits.expand(4000, -1), top_p=0.7, generator=torch.Generator().manual_seed(7))
    assert set(draws.tolist()) <= allowed
    assert len(allowed) > 1


def test_sample_frequencies_match_the_filtered_distribution():
    logits = torch.tensor([2.0, 1.5, 1.0, 0.2, -0.5, -3.0])
    temperature, k, n = 0.8, 4, 6000
    # expected: softmax of logits / T over the 4 largest, renormalised, by hand
    weights = [math.exp(x / temperature) for x in logits[:k].tolist()]
    expected = [w / sum(weights) * n for w in weights] + [0.0, 0.0]
    draws = sample_next_token(logits.expand(n, -1), temperature, k, generator=torch.Generator().manual_seed(9))
    counts = torch.bincount(draws, minlength=6).tolist()
    assert counts[k:] == [0, 0]
    chi2 = sum((c - e) ** 2 / e for c, e in zip(counts[:k], expected[:k]))
    assert chi2 < 21.1  # 99.99% quantile of chi-square with 3 degrees of freedom


# -----------------------------------------------------------------------------
# generate against model.generate


def test_greedy_generate_matches_hf_generate(model, prompts):
    ours = generate(model, prompts, max_new_tokens=30)
    theirs = hf_generate(model, prompts, 30, do_sample=False)
    assert ours.shape == (4, 35)
    assert torch.equal(ours, theirs)
    assert torch.equal(ours[:, :5], prompts)


def test_greedy_generate_pads_finished_rows_like_hf(model, prompts):
    free = hf_generate(model, prompts, 30, do_sample=False)
    stop = int(free[0, 5 + 3])  # a token row 0 really produces
    ours = generate(model, prompts, max_new_tokens=30, stop_token_id=stop)
    assert torch.equal(ours, hf_generate(model, prompts, 30, stop=stop, do_sample=False))
    new = ours[0, 5:]
    first = (new == stop).nonzero()[0].item()
    assert first <= 3 and (new[first:] == stop).all()  # row 0 stopped, then padding


def test_greedy_generate_stops_early_once_every_row_stopped(model, prompts):
    prompt = prompts[1:2]  # (1, T)
    free = hf_generate(model, prompt, 30, do_sample=False)[0, 5:].tolist()
    # first new token that was not produced before it: generation should end right there
    j = next(i for i in range(2, 30) if free[i] not in free[:i])
    ours = generate(model, prompt, max_new_tokens=30, stop_token_id=free[j])
    assert ours.shape == (1, 5 + j + 1)  # stopped early, well before 30 new tokens
    assert ours[0, -1].item() == free[j]
    assert torch.equal(ours, hf_generate(model, prompt, 30, stop=free[j], do_sample=False))


def test_generate_without_cache_gives_the_same_tokens(model, prompts):
    assert torch.equal(generate(model, prompts, 20, use_cache=False), generate(model, prompts, 20))
    kw = dict(do_sample=True, temperature=0.9, top_k=20, top_p=0.9)
    a = generate(model, prompts, 20, generator=torch.Generator().manual_seed(1), use_cache=False, **kw)
    b = generate(model, prompts, 20, generator=torch.Generator().manual_seed(1), **kw)
    assert torch.equal(a, b)


@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, 0, 1.0), (0.7, 5, 1.0), (1.5, 0, 0.9), (1.0, 10, 0.5)])
def test_sampled_generate_matches_hf_generate_under_the_same_seed(model, prompts, temperature, top_k, top_p):
    # both draw with torch.multinomial from torch's global generator, one row at a time
    kw = dict(do_sample=True, temperature=temperature, top_k=top_k, top_p=top_p)
    with torch.random.fork_rng():
        torch.manual_seed(3)
        theirs = hf_generate(model, prompts, 25, **kw)
        torch.manual_seed(3)
        ours = generate(model, prompts, 25, **kw)
    assert torch.equal(ours, theirs)


def test_sampled_generate_is_reproducible_with_a_seeded_generator(model, prompts):
    def run(seed):
        return generate(model, prompts, 20, do_sample=True, top_k=0, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(run(11), run(11))
    assert not torch.equal(run(11), run(12))


def test_generate_zero_new_tokens_returns_the_prompt(model, prompts):
    assert torch.equal(generate(model, prompts, 0), prompts)


def test_greedy_generate_ignores_temperature(model, prompts):
    assert torch.equal(generate(model, prompts, 5, temperature=0.0), generate(model, prompts, 5))


# -----------------------------------------------------------------------------
# bad input says what was wrong


@pytest.mark.parametrize("temperature", [0.0, -1.0])
def test_nonpositive_temperature_is_refused_when_sampling(model, prompts, temperature):
    logits = torch.randn(2, 5)
    with pytest.raises(ValueError, match=r"temperature must be > 0.*do_sample=False"):
        apply_temperature(logits, temperature)
    with pytest.raises(ValueError, match="temperature"):
        sample_next_token(logits, temperature=temperature)
    with pytest.raises(ValueError, match="temperature"):
        generate(model, prompts, 3, do_sample=True, temperature=temperature)


@pytest.mark.parametrize("top_k", [-1, 2.5])
def test_bad_top_k_is_refused(model, prompts, top_k):
    with pytest.raises(ValueError, match=r"top_k must be .*>= 0 \(0 disables it\)"):
        top_k_filter(torch.randn(2, 5), top_k)
    with pytest.raises(ValueError, match="top_k"):
        generate(model, prompts, 3, do_sample=True, top_k=top_k)


def test_negative_top_k_message_names_the_value():
    with pytest.raises(ValueError, match=r"^top_k must be >= 0 \(0 disables it\), got -1$"):
        top_k_filter(torch.randn(2, 5), -1)


@pytest.mark.parametrize("top_p", [0.0, -0.1, 1.5])
def test_top_p_outside_zero_one_is_refused(model, prompts, top_p):
    with pytest.raises(ValueError, match=rf"^top_p must be in \(0, 1\], got {top_p}$"):
        top_p_filter(torch.randn(2, 5), top_p)
    with pytest.raises(ValueError, match="top_p"):
        filter_logits(torch.randn(2, 5), top_p=top_p)
    with pytest.raises(ValueError, match="top_p"):
        generate(model, prompts, 3, do_sample=True, top_p=top_p)


@pytest.mark.parametrize("max_new_tokens", [-1, 2.5, "3", True])
def test_bad_max_new_tokens_is_refused(model, prompts, max_new_tokens):
    with pytest.raises(ValueError, match="max_new_tokens must be"):
        generate(model, prompts, max_new_tokens)


@pytest.mark.parametrize(
    "ids", [torch.tensor([3, 4, 5]), torch.tensor([[3.0, 4.0]]), torch.ones(1, 2, 3, dtype=torch.long), [[3, 4]]]
)
def test_input_ids_must_be_a_2d_long_tensor(model, ids):
    with pytest.raises(ValueError, match=r"input_ids must be a 2-D LongTensor"):
        generate(model, ids, 3)


def test_generating_past_the_context_window_is_refused_with_the_numbers(model, prompts):
    window = model.config.n_positions
    ok = window - prompts.size(1)
    assert generate(model, prompts, max_new_tokens=ok).size(1) == window  # exactly full is allowed
    with pytest.raises(ValueError, match=f"exceeds the model's context window of {window} tokens"):
        generate(model, prompts, max_new_tokens=ok + 1)
