"""llmlab.serving and llmlab.distill (chapter 14): every fast path gives plain greedy decoding's tokens."""

import random

import pytest
import torch
from tiny_models import tiny_llama

from llmlab import distill, serving

pytestmark = pytest.mark.usefixtures("one_thread")

V = 64


def _target(seed=0, **changes):
    return tiny_llama(seed, initializer_range=0.3, max_position_embeddings=256, **changes)


def _hf_greedy(model, ids, n, eos=None, **kwargs):
    with torch.no_grad():
        return model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False,
                              eos_token_id=eos, pad_token_id=0, **kwargs)


def _prompts(n, seed=0, low=3, high=20):
    rng = random.Random(seed)
    return [torch.tensor([[rng.randrange(V) for _ in range(rng.randint(low, high))]]) for _ in range(n)]


def test_decoder_logits_match_transformers():
    model = _target()
    ids = _prompts(1, low=12, high=12)[0]
    dec = serving.Decoder(model)
    cache = dec.new_cache(1, 40)
    with torch.no_grad():
        ref = model(ids).logits
    torch.testing.assert_close(dec.forward(ids[:, :7], cache), ref[:, :7], atol=1e-5, rtol=1e-5)
    # the rest after the cached prefix: the same scores as the whole sequence at once
    torch.testing.assert_close(dec.forward(ids[:, 7:], cache), ref[:, 7:], atol=1e-5, rtol=1e-5)
    assert cache.length == 12
    cache.length = 7  # roll back and run again: same scores
    torch.testing.assert_close(dec.forward(ids[:, 7:], cache, last_only=True), ref[:, -1:], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("seed", range(4))
def test_greedy_generate_equals_transformers(seed):
    model = _target(seed)
    for ids in _prompts(3, seed):
        assert torch.equal(serving.greedy_generate(model, ids, 24), _hf_greedy(model, ids, 24))


def test_greedy_stops_at_end_of_text():
    model = _target()
    ids = _prompts(1)[0]
    full = serving.greedy_generate(model, ids, 30)[0, ids.size(1):].tolist()
    eos = full[5]
    out = serving.greedy_generate(model, ids, 30, eos_token_id=eos)[0, ids.size(1):].tolist()
    assert out == full[:full.index(eos) + 1]
    assert torch.equal(serving.greedy_generate(model, ids, 30, eos_token_id=eos), _hf_greedy(model, ids, 30, eos))


@pytest.mark.parametrize("k", [1, 2, 4, 7])
def test_speculative_equals_greedy_with_any_draft(k):
    target = _target(0)
    drafts = {"itself": target, "unrelated": _target(5, num_hidden_layers=1),
              "noise": tiny_llama(9, num_hidden_layers=1, max_position_embeddings=256)}
    rates = {}
    for name, draft in drafts.items():
        for ids in _prompts(4, seed=k):
            ref = serving.greedy_generate(target, ids, 32)
            out, stats = serving.speculative_generate(target, draft, ids, 32, k, return_stats=True)
            assert torch.equal(out, ref), name
            assert stats.new_tokens == 32 and 0 <= stats.accepted <= stats.drafted
            rates.setdefault(name, []).append(stats.acceptance_rate)
    assert min(rates["itself"]) == 1.0  # the target as its own draft: everything accepted
    assert max(rates["noise"]) < 0.5
    # with everything accepted, each verifying pass gives k + 1 tokens (less at the 32-token limit)
    _, stats = serving.speculative_generate(target, target, _prompts(1)[0], 32, k, return_stats=True)
    assert stats.target_passes - 1 == -(-(32 - 1) // (k + 1))


def test_speculative_equals_transformers_assisted_generation():
    target = _target(0)
    draft = _target(5, num_hidden_layers=1)
    for k in (1, 3, 5):
        for ids in _prompts(3, seed=10 + k):
            with torch.no_grad():
                assisted = target.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=20,
                                           do_sample=False, pad_token_id=0, assistant_model=draft,
                                           num_assistant_tokens=k, num_assistant_tokens_schedule="constant")
            eos = target.generation_config.eos_token_id  # generate stops there by default
            assert torch.equal(serving.speculative_generate(target, draft, ids, 20, k, eos_token_id=eos), assisted)


def test_speculative_stops_at_end_of_text_like_generate():
    target, draft = _target(0), _target(0)
    for ids in _prompts(5, seed=3):
        free = serving.greedy_generate(target, ids, 40)[0, ids.size(1):].tolist()
        eos = free[len(free) // 2]
        ref = _hf_greedy(target, ids, 40, eos)
        assert torch.equal(serving.speculative_generate(target, draft, ids, 40, 4, eos_token_id=eos), ref)
        assert torch.equal(serving.prompt_lookup_generate(target, ids, 40, 4, eos_token_id=eos), ref)


def test_lookup_proposal():
    seq = [5, 6, 7, 8, 9, 1, 5, 6, 7]
    assert serving.lookup_proposal(seq, 3, ngram=3) == [8, 9, 1]
    assert serving.lookup_proposal(seq, 10, ngram=3) == [8, 9, 1, 5, 6, 7]
    assert serving.lookup_proposal([1, 2, 3, 4], 2, ngram=2) == []  # the last tokens never occurred before
    assert serving.lookup_proposal([4, 2, 3, 9, 3], 2, ngram=2) == [9, 3]  # falls back to one token


def test_prompt_lookup_equals_greedy_and_transformers_prompt_lookup():
    model = _target(1)
    rng = random.Random(0)
    for _ in range(4):
        chunk = [rng.randrange(V) for _ in range(10)]
        ids = torch.tensor([chunk + chunk[:4]])  # a prompt that repeats itself: lookup has something to copy
        ref = serving.greedy_generate(model, ids, 30)
        out, stats = serving.prompt_lookup_generate(model, ids, 30, 4, return_stats=True)
        assert torch.equal(out, ref)
        assert torch.equal(_hf_greedy(model, ids, 30, prompt_lookup_num_tokens=4), ref)
        assert stats.drafted > 0


def test_draft_with_small_vocabulary():
    target = _target(0)
    vocab_ids = list(range(10, 10 + 31))  # a draft that knows 31 of the 64 tokens, plus "another token"
    small = tiny_llama(3, vocab_size=32, initializer_range=0.3, max_position_embeddings=256)
    draft = distill.Draft(small, vocab_ids, full_vocab=V)
    ids = _prompts(1)[0]
    out = serving.speculative_generate(target, draft, ids, 24, 3)
    assert torch.equal(out, serving.greedy_generate(target, ids, 24))
    # the wrapper scores the target's vocabulary: -inf outside the draft's, the draft's scores inside
    logits = draft(ids).logits
    assert logits.shape == (1, ids.size(1), V)
    assert torch.isinf(logits[..., :10]).all() and torch.isfinite(logits[..., 10:41]).all()
    dec = draft.decoder
    assert dec.own_ids(torch.tensor([[10, 40, 3]])).tolist() == [[0, 30, 31]]
    assert dec.next_tokens(torch.eye(32)[[0, 30]]).tolist() == [10, 40]


def test_draft_vocabulary_and_coverage():
    rows = [{"answer": [5, 5, 5, 7, 7, 9]}, {"answer": [7, 2]}]
    assert distill.draft_vocabulary(rows, 3) == [5, 7]  # 5 and 7 three times each: ties to the smaller id
    assert distill.draft_vocabulary(rows, 5) == [5, 7, 2, 9]
    assert distill.coverage(rows, [5, 7]) == pytest.approx(6 / 8)
    with pytest.raises(ValueError):
        distill.coverage([{"answer": []}], [5])


def test_prompts_split_by_subject():
    train, held = distill.prompts("train"), distill.held_out_prompts()
    assert len(train) + len(held) == len(distill.SUBJECTS) * len(distill.TASKS)
    assert not set(train) & set(held)
    held_subjects = {s for i, s in enumerate(distill.SUBJECTS) if i % distill.HELD_OUT_EVERY == distill.HELD_OUT_EVERY - 1}
    assert all(any(s in p for s in held_subjects) for p in held)


def _stream(n=10, seed=0, every=1):
    rng = random.Random(seed)
    return [serving.Request([rng.randrange(V) for _ in range(rng.randint(2, 30))], rng.randint(1, 25), arrival=i * every)
            for i in range(n)]


@pytest.mark.parametrize("policy", ["continuous", "static"])
@pytest.mark.parametrize("block_size", [1, 4, 16])
def test_serve_equals_each_request_alone(policy, block_size):
    model = _target(2)
    reqs = _stream(10, seed=block_size)
    res = serving.serve(model, reqs, max_batch=4, block_size=block_size, policy=policy)
    for r, out in zip(reqs, res.outputs):
        assert out == serving.greedy_generate(model, torch.tensor([r.prompt]), r.max_new_tokens)[0, len(r.prompt):].tolist()
    assert max(res.batch_sizes) <= 4
    assert all(s >= r.arrival for s, r in zip(res.started_at, reqs))


def test_serve_stops_at_end_of_text_and_preempts_when_memory_is_short():
    model = _target(2)
    reqs = _stream(8, seed=1, every=0)
    eos = 7
    ref = [serving.greedy_generate(model, torch.tensor([r.prompt]), r.max_new_tokens, eos_token_id=eos)[0, len(r.prompt):]
           .tolist() for r in reqs]
    roomy = serving.serve(model, reqs, max_batch=8, block_size=4, eos_token_id=eos)
    longest = max(len(r.prompt) + r.max_new_tokens for r in reqs)
    tight = serving.serve(model, reqs, max_batch=8, block_size=4, num_blocks=-(-longest // 4) + 2, eos_token_id=eos)
    assert roomy.outputs == ref and tight.outputs == ref
    assert roomy.preemptions == 0 and tight.preemptions > 0
    assert tight.peak_blocks <= -(-longest // 4) + 2


def test_continuous_batching_beats_static_in_steps_and_memory():
    model = _target(2)
    rng = random.Random(4)
    # one long request per batch of four short ones: static batching waits for it, continuous does not
    reqs = [serving.Request([rng.randrange(V) for _ in range(5)], 40 if i % 4 == 0 else 4) for i in range(16)]
    cont = serving.serve(model, reqs, max_batch=4, block_size=4, policy="continuous")
    stat = serving.serve(model, reqs, max_batch=4, block_size=4, policy="static")
    assert cont.outputs == stat.outputs
    assert cont.steps < stat.steps and stat.wasted_rows > 0 and cont.wasted_rows == 0
    assert cont.peak_cache_bytes < cont.reserved_bytes


def test_static_batches_wait_until_full_and_times_are_recorded():
    model = _target(2)
    reqs = _stream(10, seed=5, every=3)
    stat = serving.serve(model, reqs, max_batch=4, block_size=4, policy="static")
    # batches of four (the last one smaller) start only once four requests have arrived
    starts = sorted(set(stat.started_at))
    assert [stat.started_at.count(t) for t in starts] == [4, 4, 2]
    assert starts[0] >= reqs[3].arrival
    for res in (stat, serving.serve(model, reqs, max_batch=4, block_size=4)):
        assert len(res.arrival_seconds) == len(res.finished_seconds) == len(reqs)
        assert all(0 <= a <= f <= res.seconds for a, f in zip(res.arrival_seconds, res.finished_seconds))


def test_speculative_stats_count_every_round():
    target = _target(0)
    small = tiny_llama(3, vocab_size=32, initializer_range=0.3, max_position_embeddings=256)
    draft = distill.Draft(small, list(range(10, 41)), full_vocab=V)
    for ids in _prompts(3, seed=2):
        _, st = serving.speculative_generate(target, draft, ids, 24, 3, return_stats=True)
        assert len(st.proposed_per_pass) == len(st.accepted_per_pass) == st.target_passes - 1
        assert sum(st.proposed_per_pass) == st.drafted and sum(st.accepted_per_pass) == st.accepted
        assert all(0 <= n <= L <= 3 for n, L in zip(st.accepted_per_pass, st.proposed_per_pass))
        # rounds cut at the draft's "another token" propose fewer than k
        assert sum(L < 3 for L in st.proposed_per_pass) >= st.cut_at_other


def test_paged_cache_allocation():
    cache = serving.PagedKVCache(layers=2, kv_heads=1, head_dim=4, num_blocks=5, block_size=3)
    assert cache.block_bytes == 2 * 2 * 1 * 3 * 4 * 4
    assert cache.blocks_for(0) == 0 and cache.blocks_for(3) == 1 and cache.blocks_for(4) == 2
    a = cache.allocate(2)
    b = cache.allocate(3)
    assert sorted(a + b) == list(range(5)) and cache.used == 5
    with pytest.raises(MemoryError):
        cache.allocate(1)
    cache.release(a)
    assert cache.allocate(2) == a  # a finished request's blocks are the next one's
    cache.release(b)
    with pytest.raises(ValueError):
        cache.release(b[:1])  # already free
    with pytest.raises(ValueError):
        cache.release([7])  # no such block


def test_step_cost_counts_every_weight_once():
    model = _target(0)
    cfg = model.config
    # the matrices: every parameter but the norms' and the input embedding's (a step reads one row of it;
    # this model's output layer is a separate matrix, read whole)
    assert not cfg.tie_word_embeddings
    weights = sum(p.numel() for n, p in model.named_parameters() if "norm" not in n and "embed_tokens" not in n)
    one = serving.step_cost(cfg, batch=1, new_tokens=1, context=0)
    kv_per_token = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * (cfg.hidden_size // cfg.num_attention_heads) * 4
    assert one["bytes"] == 4 * weights + kv_per_token
    assert one["flops"] == 2 * weights + 4 * cfg.num_hidden_layers * cfg.hidden_size
    # decoding 8 sequences reads the weights once for all of them: about 8x the intensity
    eight = serving.step_cost(cfg, batch=8, new_tokens=1, context=0)
    assert eight["intensity"] / one["intensity"] > 7
    half = serving.step_cost(cfg, 1, 1, 0, bytes_per_weight=2)
    assert half["bytes"] == 2 * weights + kv_per_token


def test_roofline_and_expected_tokens():
    assert serving.roofline(1.0, peak_flops=100.0, bandwidth=10.0) == 10.0
    assert serving.roofline(50.0, peak_flops=100.0, bandwidth=10.0) == 100.0
    assert serving.expected_tokens_per_pass(0.0, 4) == 1.0
    assert serving.expected_tokens_per_pass(1.0, 4) == 5.0
    rng = random.Random(0)  # against a simulation of independent acceptances
    runs = []
    for _ in range(20000):
        n = 0
        while n < 3 and rng.random() < 0.6:
            n += 1
        runs.append(n + 1)
    assert serving.expected_tokens_per_pass(0.6, 3) == pytest.approx(sum(runs) / len(runs), abs=0.03)


def test_memory_bandwidth_is_measured():
    bw = serving.memory_bandwidth(megabytes=64, tries=2)
    assert set(bw) == {"read", "copy"} and all(1e8 < v < 1e13 for v in bw.values())


@pytest.mark.parametrize("call, error", [
    (lambda m: serving.greedy_generate(m, torch.tensor([[1, 2]]), 0), ValueError),
    (lambda m: serving.greedy_generate(m, torch.tensor([[1, 2], [3, 4]]), 3), ValueError),
    (lambda m: serving.greedy_generate(m, torch.tensor([[]], dtype=torch.long), 3), ValueError),
    (lambda m: serving.speculative_generate(m, m, torch.tensor([[1, 2]]), 3, 0), ValueError),
    (lambda m: serving.speculative_generate(m, tiny_llama(0, vocab_size=32), torch.tensor([[1, 2]]), 3, 2), ValueError),
    (lambda m: serving.prompt_lookup_generate(m, torch.tensor([[1, 2]]), 3, 2, ngram=0), ValueError),
    (lambda m: serving.serve(m, [], max_batch=2), TypeError),
    (lambda m: serving.serve(m, [serving.Request([1, 2], 3)], policy="fifo"), ValueError),
    (lambda m: serving.serve(m, [serving.Request([1, 2], 30)], block_size=4, num_blocks=2), ValueError),
    (lambda m: serving.Request([], 3), ValueError),
    (lambda m: serving.Request([1, -2], 3), ValueError),
    (lambda m: serving.Decoder(torch.nn.Linear(2, 2)), TypeError),
    (lambda m: serving.step_cost(m.config, 0, 1, 0), ValueError),
    (lambda m: serving.expected_tokens_per_pass(1.5, 2), ValueError),
    (lambda m: serving.Decoder(m).forward(torch.tensor([[1] * 9]), serving.Decoder(m).new_cache(1, 8)), ValueError),
])
def test_bad_input(call, error):
    with pytest.raises(error):
        call(_target(0))


# ---------------------------------------------------------------- the bundled draft and the real model
DRAFT = "smollm2-draft"


def test_bundled_draft_matches_its_recipe():
    import json

    from llmlab import recipes, zoo

    folder = zoo.model_dir(DRAFT)
    recipe = recipes.RECIPES[DRAFT]
    expected = distill.DraftConfig(vocab_size=recipe.vocab_size, seed=recipe.seed, **recipe.model,
                                   **recipe.train).llama_config().to_dict()
    shipped = json.loads((folder / "config.json").read_text())
    for key in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "max_position_embeddings", "tie_word_embeddings"):
        assert shipped[key] == expected[key], key
    vocab = json.loads((folder / "draft_vocab.json").read_text())
    assert len(vocab) == recipe.vocab_size - 1 == len(set(vocab))
    assert all(0 <= t < 49152 for t in vocab)
    card = zoo.recipe_of(DRAFT)
    assert card["teacher"] == zoo.REAL_MODEL and card["train_prompts"] == len(distill.prompts("train"))
    assert (folder / "model.safetensors").stat().st_size < 10_000_000  # the bundle stays small


@pytest.fixture(scope="module")
def real():
    from llmlab import zoo

    model, tok = zoo.load(zoo.REAL_MODEL, device="cpu")
    return model, tok, distill.load_draft()


def test_real_model_decoder_and_every_fast_path_give_generates_tokens(real):
    from llmlab import chat

    model, tok, draft = real
    eos = tok.eos_token_id
    for prompt in distill.held_out_prompts()[7:9]:
        ids = tok(chat.chat_text(tok, prompt), return_tensors="pt", add_special_tokens=False).input_ids
        with torch.no_grad():
            ref = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=24, do_sample=False,
                                 eos_token_id=eos, pad_token_id=eos)
            assert torch.allclose(serving.decoder(model).forward(ids, serving.decoder(model).new_cache(1, ids.size(1))),
                                  model(ids).logits, atol=1e-4, rtol=1e-4)
        assert torch.equal(serving.greedy_generate(model, ids, 24, eos_token_id=eos), ref)
        out, stats = serving.speculative_generate(model, draft, ids, 24, 4, eos_token_id=eos, return_stats=True)
        assert torch.equal(out, ref)
        assert stats.acceptance_rate > 0.2  # the distilled draft agrees with the teacher, unlike noise
        assert torch.equal(serving.prompt_lookup_generate(model, ids, 24, 4, eos_token_id=eos), ref)


def test_the_record_says_every_method_gave_the_same_tokens():
    from llmlab.records import serving as rec

    record = rec.load()
    parts = record["parts"]
    assert set(parts) == set(rec.PARTS)
    for part in ("speculative", "lookup"):
        for row in parts[part]["rows"]:
            assert all(m["same"] for m in row["methods"].values()), (part, row["prompt"])
    serve = parts["serve"]
    assert serve["continuous"]["outputs"] == serve["alone"]["outputs"] == serve["static"]["outputs"]
    # continuous batching ended sooner in steps than static batching of the same stream
    assert serve["continuous"]["steps"] < serve["static"]["steps"]
