"""llmlab.sampling against Hugging Face's warpers and model.generate, plus hand-worked cases."""

import math

import pytest
import torch
from tiny_models import V
from transformers.generation.logits_process import (
    MinPLogitsWarper,
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)
from transformers.utils import logging as hf_logging

from llmlab import chat, sampling, zoo
from llmlab.metrics import entropy_bits
from llmlab.sampling import (
    apply_repetition_penalty,
    apply_temperature,
    beam_search,
    filter_logits,
    generate,
    greedy_next_token,
    min_p_filter,
    next_token_distribution,
    no_repeat_ngram_filter,
    sample_next_token,
    top_k_filter,
    top_p_filter,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model(make_gpt2):
    hf_logging.set_verbosity_error()  # silence "attention mask not set" for unpadded batches
    return make_gpt2()


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


# -----------------------------------------------------------------------------
# min-p, repetition penalty, no-repeat n-grams: equal to Hugging Face's processors


def random_logits(shape, seed, ties=False):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-3, 4, shape, generator=g).float() if ties else 2.0 * torch.randn(shape, generator=g)


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("min_p", [0.0, 0.01, 0.1, 0.5, 0.9, 1.0])
def test_min_p_equals_hf_min_p_warper(min_p, ties):
    for shape in [(1, 1), (3, 7), (4, 97), (2, 5000)]:
        logits = random_logits(shape, shape[1], ties)
        assert torch.equal(min_p_filter(logits, min_p), MinPLogitsWarper(min_p)(None, logits)), shape


def test_min_p_keeps_tokens_above_a_share_of_the_top_probability():
    logits = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    assert kept(min_p_filter(logits, 0.3)) == {0, 1, 2}  # bar 0.15: 0.15 stays, 0.05 goes
    assert kept(min_p_filter(logits, 0.31)) == {0, 1}
    assert kept(min_p_filter(logits, 1.0)) == {0}


def test_filter_logits_with_min_p_equals_hf_warpers_in_order():
    logits = random_logits((4, 200), 5)
    for t, k, p, m in [(0.7, 0, 1.0, 0.1), (1.5, 20, 0.9, 0.05), (1.0, 5, 0.95, 0.2)]:
        theirs = hf_filter(logits, t, k, p)
        theirs = MinPLogitsWarper(m)(None, theirs)
        assert torch.equal(filter_logits(logits, t, k, p, m), theirs)


@pytest.mark.parametrize("penalty", [0.5, 1.0, 1.2, 2.0])
def test_repetition_penalty_equals_hf_processor(penalty):
    logits = random_logits((4, 97), 11)
    history = torch.randint(0, 97, (4, 30), generator=torch.Generator().manual_seed(12))
    theirs = RepetitionPenaltyLogitsProcessor(float(penalty))(history, logits.clone())
    assert torch.equal(apply_repetition_penalty(logits, history, penalty), theirs)


def test_repetition_penalty_ignores_left_padding_like_hf():
    logits = random_logits((2, 20), 13)
    history = torch.tensor([[7, 7, 3, 4], [1, 2, 3, 5]])
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    theirs = RepetitionPenaltyLogitsProcessor(1.5, prompt_ignore_length=torch.tensor([2, 0]))(history, logits.clone())
    ours = apply_repetition_penalty(logits, history, 1.5, attention_mask=mask)
    assert torch.equal(ours, theirs)
    assert ours[0, 7] == logits[0, 7]  # token 7 only occurred as padding


def test_repetition_penalty_pushes_seen_tokens_down_whatever_their_sign():
    logits = torch.tensor([[2.0, -2.0, 1.0]])
    out = apply_repetition_penalty(logits, torch.tensor([[0, 1, 1]]), 2.0)
    assert out.tolist() == [[1.0, -4.0, 1.0]]


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_no_repeat_ngram_equals_hf_processor(n):
    for seed in range(5):
        g = torch.Generator().manual_seed(seed)
        history = torch.randint(0, 6, (3, 25), generator=g)  # few ids: many repeated n-grams
        logits = torch.randn(3, 6, generator=g)
        theirs = NoRepeatNGramLogitsProcessor(n)(history, logits.clone())
        assert torch.equal(no_repeat_ngram_filter(logits, history, n), theirs), (n, seed)


def test_no_repeat_ngram_bans_the_token_that_would_repeat_a_trigram():
    history = torch.tensor([[5, 6, 7, 1, 5, 6]])  # "5 6 7" seen; the text ends in "5 6"
    out = no_repeat_ngram_filter(torch.zeros(1, 9), history, 3)
    assert set(range(9)) - kept(out) == {7}


# -----------------------------------------------------------------------------
# generate with processors and left padding, beam search: equal to model.generate


@pytest.fixture(scope="module")
def padded(prompts):
    mask = torch.ones_like(prompts)
    mask[0, :2] = 0
    mask[2, :1] = 0
    return prompts.masked_fill(mask == 0, 0), mask


@pytest.mark.parametrize("kw", [{}, {"repetition_penalty": 1.3}, {"no_repeat_ngram_size": 2},
                                {"repetition_penalty": 0.8, "no_repeat_ngram_size": 3}])
def test_greedy_generate_with_processors_and_padding_matches_hf(model, padded, kw):
    ids, mask = padded
    ours = generate(model, ids, 25, attention_mask=mask, **kw)
    theirs = model.generate(ids, attention_mask=mask, max_new_tokens=25, do_sample=False,
                            eos_token_id=None, pad_token_id=0, **kw)
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize("kw", [{"min_p": 0.1, "temperature": 1.3}, {"min_p": 0.05, "top_p": 0.9},
                                {"repetition_penalty": 1.2, "top_k": 20}])
def test_sampled_generate_with_min_p_and_penalties_matches_hf(model, padded, kw):
    ids, mask = padded
    with torch.random.fork_rng():
        torch.manual_seed(3)
        theirs = model.generate(ids, attention_mask=mask, max_new_tokens=20, do_sample=True,
                                eos_token_id=None, pad_token_id=0, **{"top_k": 0, **kw})
        torch.manual_seed(3)
        ours = generate(model, ids, 20, do_sample=True, attention_mask=mask, **kw)
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize("num_beams", [1, 2, 3, 5])
@pytest.mark.parametrize("stop", [None, 0, 17])
@pytest.mark.parametrize("length_penalty", [1.0, 0.0, 2.0])
def test_beam_search_matches_hf_generate_num_beams(model, prompts, num_beams, stop, length_penalty):
    for n in (1, 4, 20):
        ours = beam_search(model, prompts, num_beams, n, length_penalty=length_penalty, stop_token_id=stop)
        theirs = model.generate(prompts, num_beams=num_beams, max_new_tokens=n, do_sample=False,
                                length_penalty=length_penalty, eos_token_id=stop,
                                pad_token_id=stop if stop is not None else 0)
        assert torch.equal(ours, theirs), n


@pytest.mark.parametrize("stop", [None, 5])
def test_beam_search_with_left_padding_matches_hf(model, padded, stop):
    ids, mask = padded
    ours = beam_search(model, ids, 4, 15, stop_token_id=stop, attention_mask=mask)
    theirs = model.generate(ids, attention_mask=mask, num_beams=4, max_new_tokens=15, do_sample=False,
                            eos_token_id=stop, pad_token_id=stop if stop is not None else 0)
    assert torch.equal(ours, theirs)


def test_one_beam_is_greedy(model, prompts):
    assert torch.equal(beam_search(model, prompts, 1, 12), generate(model, prompts, 12))


def test_beam_search_finds_a_likelier_sequence_than_greedy(model, prompts):
    def total_logprob(seq):
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=seq).logits[:, :-1].float(), -1)
        return logp.gather(-1, seq[:, 1:, None])[:, 4:, 0].sum(-1)  # the new tokens only

    greedy, beams = generate(model, prompts, 8), beam_search(model, prompts, 5, 8)
    assert (total_logprob(beams) >= total_logprob(greedy) - 1e-5).all()


# -----------------------------------------------------------------------------
# bad settings of the new methods


@pytest.mark.parametrize("min_p,error", [(-0.1, ValueError), (1.5, ValueError), (float("nan"), ValueError),
                                         ("0.1", TypeError), (True, TypeError)])
def test_min_p_outside_zero_one_is_refused(model, prompts, min_p, error):
    with pytest.raises(error, match=r"min_p must be .*\[0, 1\]"):
        min_p_filter(torch.randn(2, 5), min_p)
    with pytest.raises(error, match="min_p"):
        generate(model, prompts, 3, do_sample=True, min_p=min_p)


@pytest.mark.parametrize("penalty,error", [(0.0, ValueError), (-1.2, ValueError), ("1.2", TypeError)])
def test_nonpositive_repetition_penalty_is_refused(model, prompts, penalty, error):
    with pytest.raises(error, match=r"repetition_penalty must be .*> 0 .*1 disables it"):
        apply_repetition_penalty(torch.randn(4, V), prompts, penalty)
    with pytest.raises(error, match="repetition_penalty"):
        generate(model, prompts, 3, repetition_penalty=penalty)


@pytest.mark.parametrize("n,error", [(-1, ValueError), (2.0, TypeError)])
def test_bad_no_repeat_ngram_size_is_refused(model, prompts, n, error):
    with pytest.raises(error, match=r"no_repeat_ngram_size must be .*0 disables it"):
        no_repeat_ngram_filter(torch.randn(4, V), prompts, n)
    with pytest.raises(error, match="no_repeat_ngram_size"):
        generate(model, prompts, 3, no_repeat_ngram_size=n)


@pytest.mark.parametrize("num_beams,error", [(0, ValueError), (-2, ValueError), (2.5, TypeError), (True, TypeError)])
def test_bad_num_beams_is_refused(model, prompts, num_beams, error):
    with pytest.raises(error, match=r"num_beams must be .*>= 1 \(1 is greedy decoding\)"):
        beam_search(model, prompts, num_beams, 3)


def test_processors_need_a_2d_history_with_one_row_per_logits_row():
    with pytest.raises(TypeError, match="input_ids .* 2-D LongTensor"):
        apply_repetition_penalty(torch.randn(2, 5), torch.tensor([1, 2]), 1.2)
    with pytest.raises(ValueError, match="one row per row of input_ids"):
        no_repeat_ngram_filter(torch.randn(3, 5), torch.zeros(2, 4, dtype=torch.long), 2)


def test_attention_mask_must_match_the_prompt_shape(model, prompts):
    with pytest.raises(ValueError, match="attention_mask must be a tensor shaped like input_ids"):
        generate(model, prompts, 3, attention_mask=torch.ones(4, 2, dtype=torch.long))


# -----------------------------------------------------------------------------
# the sweep's bookkeeping


def test_interval95_is_a_student_t_interval():
    mean, lo, hi = sampling.interval95([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and lo == pytest.approx(2.5 - 3.182446 * 1.290994 / 2, rel=1e-5) and hi > mean
    with pytest.raises(ValueError, match="at least 2 values"):
        sampling.interval95([1.0])


def test_sweep_settings_are_valid_and_named_uniquely():
    from llmlab.records import sampling_sweep

    names = [s["name"] for s in sampling_sweep.SWEEP_SETTINGS]
    assert len(names) == len(set(names))
    assert {s["method"] for s in sampling_sweep.SWEEP_SETTINGS} == {"greedy", "beam", "sample"}


# -----------------------------------------------------------------------------
# the real model (SmolLM2-135M-Instruct): a short case, exact tokens

@pytest.fixture(scope="module")
def smol():
    if zoo.PACKAGED["smollm2-135m-instruct"].file() is None:
        pytest.skip(f"needs {zoo.PACKAGED['smollm2-135m-instruct'].install_command}")
    return zoo.load("smollm2-135m-instruct", device="cpu")


def test_real_model_beam_search_and_padded_greedy_match_hf(smol):
    model, tok = smol
    ids, mask = chat.chat_batch(tok, ["Name a colour.", "Say hello in French, please."])
    stop = tok.convert_tokens_to_ids("<|im_end|>")
    with torch.inference_mode():
        ours = beam_search(model, ids, num_beams=2, max_new_tokens=6, stop_token_id=stop, attention_mask=mask)
        theirs = model.generate(ids, attention_mask=mask, num_beams=2, max_new_tokens=6, do_sample=False,
                                eos_token_id=stop, pad_token_id=stop)
        assert torch.equal(ours, theirs)
        ours = generate(model, ids, 6, stop_token_id=stop, attention_mask=mask, no_repeat_ngram_size=2,
                        repetition_penalty=1.2)
        theirs = model.generate(ids, attention_mask=mask, max_new_tokens=6, do_sample=False, eos_token_id=stop,
                                pad_token_id=stop, no_repeat_ngram_size=2, repetition_penalty=1.2)
        assert torch.equal(ours, theirs)


def test_the_playground_lengths_are_what_sampling_with_that_limit_draws():
    """The static playground's "max new tokens" slider shows the first n tokens of the longest
    continuation; that is only right if sampling n tokens with the same seed draws them."""
    from llmlab import widgets

    model, tokenizer = zoo.load("stories-1m", device="cpu")
    grid = {"temperature": [1.5], "top_k": [0], "top_p": [1.0], "min_p": [0.0]}
    record = widgets.playground_frames(model, tokenizer, "Once upon a time", max_new_tokens=12, seed=3,
                                       grid=grid, lengths=[5, 12])
    (frame,) = record["frames"].values()
    short = widgets.playground_frames(model, tokenizer, "Once upon a time", max_new_tokens=5, seed=3, grid=grid)
    (alone,) = short["frames"].values()
    assert frame["texts"]["5"] == alone["text"] and frame["texts"]["12"] == frame["text"]
    assert frame["texts"]["5"] != frame["texts"]["12"]
    with pytest.raises(ValueError, match="lengths"):
        widgets.playground_frames(model, tokenizer, "hi", max_new_tokens=4, grid=grid, lengths=[8])


def test_the_shipped_playground_record_has_a_text_per_length():
    from llmlab.records import sampling_playground

    record = sampling_playground.load()
    assert record["lengths"][-1] == record["max_new_tokens"] and len(record["lengths"]) > 1
    for frame in record["frames"].values():
        assert list(frame["texts"]) == [str(n) for n in record["lengths"]]
        assert frame["texts"][str(record["max_new_tokens"])] == frame["text"]
