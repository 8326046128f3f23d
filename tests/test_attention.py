"""From-scratch attention (llmlab.attention) equals PyTorch's and the attention inside Hugging Face models."""

import math

import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertModel

from llmlab import attention

SHAPES = [(1, 1, 1, 4), (2, 3, 5, 8), (3, 4, 17, 16), (2, 2, 64, 32)]  # (B, H, T, D)


def qkv(b, h, t, d, t_k=None, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    t_k = t if t_k is None else t_k
    return (torch.randn(b, h, t, d, generator=g, dtype=dtype), torch.randn(b, h, t_k, d, generator=g, dtype=dtype),
            torch.randn(b, h, t_k, d, generator=g, dtype=dtype))


def random_padding(b, t, seed=0):
    """(B, T) attention masks of 1s then 0s, every row with at least one real token."""
    lengths = torch.randint(1, t + 1, (b,), generator=torch.Generator().manual_seed(seed))
    return (torch.arange(t)[None] < lengths[:, None]).long()


# ------------------------------------------------------------------ against torch's SDPA
@pytest.mark.parametrize("shape", SHAPES)
def test_attention_without_mask_equals_torch_sdpa(shape):
    q, k, v = qkv(*shape)
    ours, weights = attention.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v), rtol=0, atol=1e-12)
    torch.testing.assert_close(weights.sum(-1), torch.ones(shape[:3], dtype=q.dtype))


@pytest.mark.parametrize("shape", SHAPES)
def test_causal_attention_equals_torch_sdpa_is_causal(shape):
    q, k, v = qkv(*shape)
    ours, weights = attention.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, is_causal=True), rtol=0, atol=1e-12)
    assert (weights.triu(diagonal=1) == 0).all()  # no weight on any later position


@pytest.mark.parametrize("shape", SHAPES)
def test_padding_mask_equals_torch_sdpa_with_a_boolean_mask(shape):
    b, h, t, d = shape
    q, k, v = qkv(*shape)
    mask = attention.padding_mask(random_padding(b, t))  # (B, 1, 1, T)
    ours, weights = attention.scaled_dot_product_attention(q, k, v, mask=mask)
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), rtol=0, atol=1e-12)
    assert (weights.masked_select(~mask.expand_as(weights)) == 0).all()


@pytest.mark.parametrize("shape", SHAPES)
def test_causal_and_padding_masks_combine_like_torch_sdpa(shape):
    b, h, t, d = shape
    q, k, v = qkv(*shape)
    mask = attention.padding_mask(random_padding(b, t, seed=1)) & attention.causal_mask(t)
    ours, _ = attention.scaled_dot_product_attention(q, k, v, mask=mask)
    theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    real = mask.any(-1, keepdim=True).expand_as(ours)  # queries with at least one key to attend to
    torch.testing.assert_close(ours[real], theirs[real], rtol=0, atol=1e-12)


def test_additive_float_mask_equals_torch_sdpa():
    q, k, v = qkv(2, 3, 7, 8, t_k=9)
    bias = torch.randn(2, 3, 7, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    ours, _ = attention.scaled_dot_product_attention(q, k, v, mask=bias)
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, attn_mask=bias), rtol=0, atol=1e-12)


def test_cross_attention_with_more_keys_than_queries_equals_torch_sdpa():
    q, k, v = qkv(2, 4, 5, 16, t_k=11)
    ours, weights = attention.scaled_dot_product_attention(q, k, v)
    assert weights.shape == (2, 4, 5, 11)
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v), rtol=0, atol=1e-12)


def test_float32_matches_torch_sdpa_to_float32_precision():
    q, k, v = qkv(2, 4, 33, 32, dtype=torch.float32)
    ours, _ = attention.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, is_causal=True), rtol=1e-5, atol=1e-6)


def test_causal_mask_with_cached_keys_lets_the_last_queries_see_everything_before_them():
    mask = attention.causal_mask(2, 5)
    assert mask.tolist() == [[True, True, True, True, False], [True, True, True, True, True]]
    assert torch.equal(attention.causal_mask(4), torch.ones(4, 4, dtype=torch.bool).tril())


def test_a_query_with_nothing_to_attend_to_gets_zero_weights_not_nan():
    q, k, v = qkv(1, 1, 3, 4)
    mask = torch.tensor([[False, False, False], [True, False, False], [True, True, False]])
    out, weights = attention.scaled_dot_product_attention(q, k, v, mask=mask)
    assert torch.isfinite(out).all() and (weights[..., 0, :] == 0).all()


def test_mismatched_shapes_say_what_was_expected():
    q, k, v = qkv(1, 1, 3, 4)
    with pytest.raises(ValueError, match="need q"):
        attention.scaled_dot_product_attention(q, k[..., :2], v)
    with pytest.raises(ValueError, match="multiple of n_heads"):
        attention.MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="t_q <= t_k"):
        attention.causal_mask(5, 3)


# ------------------------------------------------------------------ against nn.MultiheadAttention
@pytest.mark.parametrize("b,t,c,h", [(1, 1, 8, 1), (2, 9, 16, 4), (3, 20, 32, 8)])
def test_multi_head_attention_equals_torch_multihead_attention(b, t, c, h):
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(c, h, batch_first=True).double().eval()
    ours = attention.MultiHeadAttention.from_torch(mha)
    x = torch.randn(b, t, c, dtype=torch.float64)
    pad = random_padding(b, t, seed=2)
    out, weights = ours(x, attention_mask=pad)
    ref, ref_weights = mha(x, x, x, key_padding_mask=~pad.bool(), average_attn_weights=False)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(weights, ref_weights, rtol=0, atol=1e-12)


def test_causal_multi_head_attention_equals_torch_with_a_causal_mask():
    torch.manual_seed(1)
    mha = torch.nn.MultiheadAttention(16, 4, batch_first=True).double().eval()
    ours = attention.MultiHeadAttention.from_torch(mha, causal=True)
    x = torch.randn(2, 12, 16, dtype=torch.float64)
    ref, _ = mha(x, x, x, attn_mask=~attention.causal_mask(12))  # torch's bool attn_mask: True = masked out
    torch.testing.assert_close(ours(x)[0], ref, rtol=0, atol=1e-12)


def test_cross_attention_takes_keys_and_values_from_the_context():
    torch.manual_seed(2)
    mha = torch.nn.MultiheadAttention(16, 2, batch_first=True).double().eval()
    ours = attention.MultiHeadAttention.from_torch(mha)
    x, memory = torch.randn(2, 4, 16, dtype=torch.float64), torch.randn(2, 7, 16, dtype=torch.float64)
    out, weights = ours(x, context=memory)
    torch.testing.assert_close(out, mha(x, memory, memory)[0], rtol=0, atol=1e-12)
    assert weights.shape == (2, 2, 4, 7)


# ------------------------------------------------------------------ against Hugging Face models
def capture(module):
    """Register a hook that keeps the module's input hidden states and output; returns the dict it fills."""
    seen = {}

    def hook(mod, args, kwargs, output):
        seen["input"] = args[0] if args else kwargs["hidden_states"]
        seen["output"] = output[0] if isinstance(output, tuple) else output

    module.register_forward_hook(hook, with_kwargs=True)
    return seen


@pytest.fixture(scope="module")
def tiny_gpt2(make_gpt2):
    """``tiny_gpt2(impl, n_embd=32, n_head=4, seed=0)``: the shared tiny GPT-2 in float64, no dropout,
    GPT-2's own initialisation, with the attention implementation ``impl``."""
    def build(impl, n_embd=32, n_head=4, seed=0):
        return make_gpt2(seed, n_embd=n_embd, n_head=n_head, initializer_range=0.02, resid_pdrop=0.0,
                         embd_pdrop=0.0, attn_pdrop=0.0, attn_implementation=impl).double()

    return build


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
@pytest.mark.parametrize("b,t,n_embd,n_head", [(1, 5, 32, 4), (2, 16, 32, 2), (3, 23, 48, 6)])
def test_multi_head_attention_equals_gpt2_attention_with_the_same_weights(impl, b, t, n_embd, n_head, tiny_gpt2):
    model = tiny_gpt2(impl, n_embd, n_head)
    layer = model.transformer.h[1]
    seen = capture(layer.attn)
    ids = torch.randint(0, 97, (b, t), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        model(input_ids=ids)
        ours, _ = attention.MultiHeadAttention.from_gpt2(layer.attn)(seen["input"])
    torch.testing.assert_close(ours, seen["output"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_gpt2_attention_with_right_padding_equals_ours_on_real_tokens(impl, tiny_gpt2):
    model = tiny_gpt2(impl)
    layer = model.transformer.h[0]
    seen = capture(layer.attn)
    ids = torch.randint(0, 97, (3, 11), generator=torch.Generator().manual_seed(4))
    pad = random_padding(3, 11, seed=5)
    with torch.no_grad():
        model(input_ids=ids, attention_mask=pad)
        ours, _ = attention.MultiHeadAttention.from_gpt2(layer.attn)(seen["input"], attention_mask=pad)
    real = pad.bool()
    torch.testing.assert_close(ours[real], seen["output"][real], rtol=0, atol=1e-12)


def test_our_attention_weights_equal_gpt2_output_attentions(tiny_gpt2):
    model = tiny_gpt2("eager")
    seen = capture(model.transformer.h[1].attn)
    ids = torch.randint(0, 97, (2, 9), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        hf = model(input_ids=ids, output_attentions=True).attentions[1]
        _, ours = attention.MultiHeadAttention.from_gpt2(model.transformer.h[1].attn)(seen["input"])
    torch.testing.assert_close(ours, hf, rtol=0, atol=1e-12)


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
@pytest.mark.parametrize("b,t,hidden,heads", [(1, 4, 32, 4), (2, 13, 64, 8), (4, 30, 24, 3)])
def test_multi_head_attention_equals_bert_attention_with_padding(impl, b, t, hidden, heads):
    torch.manual_seed(7)
    config = BertConfig(vocab_size=101, hidden_size=hidden, num_hidden_layers=2, num_attention_heads=heads,
                        intermediate_size=2 * hidden, max_position_embeddings=64,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, attn_implementation=impl)
    model = BertModel(config).double().eval()
    layer = model.encoder.layer[1]
    seen_in = capture(layer.attention.self)       # its input: the hidden states entering the layer
    seen_out = capture(layer.attention.output.dense)  # its output: heads joined and projected, before the residual
    ids = torch.randint(0, 101, (b, t), generator=torch.Generator().manual_seed(8))
    pad = random_padding(b, t, seed=9)
    with torch.no_grad():
        model(input_ids=ids, attention_mask=pad)
        ours, _ = attention.MultiHeadAttention.from_bert(layer.attention)(seen_in["input"], attention_mask=pad)
    torch.testing.assert_close(ours, seen_out["output"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("b,t", [(1, 1), (2, 10), (3, 64)])
def test_gpt2_forward_from_scratch_gives_the_models_logits(b, t, tiny_gpt2):
    model = tiny_gpt2("sdpa")
    ids = torch.randint(0, 97, (b, t), generator=torch.Generator().manual_seed(10))
    with torch.no_grad():
        torch.testing.assert_close(attention.gpt2_forward(model, ids), model(input_ids=ids).logits,
                                   rtol=0, atol=1e-10)


def test_gpt2_forward_refuses_more_tokens_than_the_context_window(tiny_gpt2):
    with pytest.raises(ValueError, match="context window"):
        attention.gpt2_forward(tiny_gpt2("sdpa"), torch.zeros(1, 65, dtype=torch.long))


# ------------------------------------------------------------------ positions
def test_sinusoidal_encoding_follows_the_papers_formula():
    pe = attention.sinusoidal_positional_encoding(50, 16)
    for pos, i in [(0, 0), (1, 0), (7, 3), (49, 7)]:
        angle = pos / 10000 ** (2 * i / 16)
        assert pe[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
        assert pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)


def test_sinusoidal_encoding_equals_distilbert_sinusoidal_embeddings():
    from transformers.models.distilbert.modeling_distilbert import create_sinusoidal_embeddings

    theirs = torch.empty(128, 64)
    create_sinusoidal_embeddings(128, 64, theirs)
    torch.testing.assert_close(attention.sinusoidal_positional_encoding(128, 64), theirs, rtol=0, atol=1e-6)


def test_sinusoidal_encoding_needs_an_even_width():
    with pytest.raises(ValueError, match="even d_model"):
        attention.sinusoidal_positional_encoding(10, 7)


# ------------------------------------------------------------------ reading real models
def test_attention_maps_from_an_eager_model_are_rows_of_probabilities():
    from llmlab import zoo

    model, tokenizer = zoo.load("minilm", device="cpu", attn_implementation="eager")
    weights, tokens = attention.attention_maps(model, tokenizer, "The teacher taught the student with the book.")
    assert weights.shape == (6, 12, len(tokens), len(tokens)) and tokens[0] == "[CLS]"
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:3]))


def test_attention_maps_from_an_sdpa_model_say_to_load_eager():
    from llmlab import zoo

    model, tokenizer = zoo.load("minilm", device="cpu", attn_implementation="sdpa")
    with pytest.raises(ValueError, match="eager"):
        attention.attention_maps(model, tokenizer, "A short sentence.")


def test_contextual_vector_of_bank_differs_between_money_and_river_sentences():
    from llmlab import zoo

    model, tokenizer = zoo.load("minilm", device="cpu")
    a, b = "I took my money to the bank.", "We sat on the grassy bank."
    last = F.cosine_similarity(attention.contextual_vector(model, tokenizer, a, "bank"),
                               attention.contextual_vector(model, tokenizer, b, "bank"), dim=0)
    assert last < 0.95  # the last layer mixes in the context
    with pytest.raises(ValueError, match="does not occur"):
        attention.contextual_vector(model, tokenizer, a, "river")


def test_contextual_vector_of_all_layers_stacks_each_layer():
    from llmlab import zoo

    model, tokenizer = zoo.load("minilm", device="cpu")
    text = "The teacher taught the student with the book."
    every = attention.contextual_vector(model, tokenizer, text, "student", layer=None)
    assert every.shape == (7, 384)
    torch.testing.assert_close(every[3], attention.contextual_vector(model, tokenizer, text, "student", layer=3))


@pytest.mark.parametrize("causal", [False, True])
def test_fused_path_without_weights_gives_the_same_output(causal):
    torch.manual_seed(3)
    mha = attention.MultiHeadAttention(32, 4, causal=causal).double()
    x = torch.randn(3, 10, 32, dtype=torch.float64)
    pad = random_padding(3, 10, seed=11)
    ours, weights = mha(x, attention_mask=pad)
    fused, none = mha(x, attention_mask=pad, need_weights=False)
    real = pad.bool()
    assert none is None and weights is not None
    torch.testing.assert_close(fused[real], ours[real], rtol=0, atol=1e-12)


# ------------------------------------------------------------------ head scores and predictions
def test_head_scores_find_a_previous_token_head_and_a_sink_head():
    t = 6
    previous = torch.zeros(t, t)
    previous[0, 0] = 1.0
    previous[torch.arange(1, t), torch.arange(t - 1)] = 1.0           # every query on the token before it
    sink = torch.zeros(t, t)
    sink[:, 0] = 1.0                                                   # every query on the first token
    uniform = torch.ones(t, t).tril() / torch.arange(1, t + 1)[:, None]
    maps = torch.stack([torch.stack([uniform, previous]), torch.stack([sink, uniform])])   # (2 layers, 2 heads)
    scores = attention.head_scores(maps)
    assert scores["previous token"].shape == (2, 2)
    assert attention.strongest_head(scores["previous token"]) == (0, 1)
    assert attention.strongest_head(scores["first token"]) == (1, 0)
    assert scores["previous token"][0, 1] == 1.0 and scores["first token"][1, 0] == 1.0
    with pytest.raises(ValueError, match="first_query"):
        attention.head_scores(maps, first_query=0)


def test_next_token_probabilities_sum_to_one_and_match_the_logits():
    from llmlab import zoo

    model, tokenizer = zoo.load("stories-1m", device="cpu")
    probs = attention.next_token_probabilities(model, tokenizer, "Once upon a time")
    assert probs.shape == (model.config.vocab_size,)
    torch.testing.assert_close(probs.sum(), torch.tensor(1.0))
    ids = tokenizer("Once upon a time", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert probs.argmax() == model(input_ids=ids).logits[0, -1].argmax()


def test_plot_attention_returns_the_image_for_a_colour_bar():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    image = attention.plot_attention(ax, torch.eye(3), ["a", "b", "c"], "t", axis_labels=True)
    fig.colorbar(image, ax=ax)
    assert image.get_clim() == (0.0, 1.0) and ax.get_xlabel().startswith("key")
    plt.close(fig)
