"""llmlab.chat: prompts through a chat template, left-padded batches, greedy chat answers and
plain continuations (chapters 1, 4, 5, 10)."""

import pytest

from llmlab import chat, zoo


@pytest.fixture(scope="module")
def stories():
    return zoo.load("stories-1m", device="cpu")


@pytest.fixture(scope="module")
def smol():
    return zoo.load("smollm2-135m-instruct", device="cpu")


def test_chat_text_is_what_apply_chat_template_tokenizes(smol):
    _, tok = smol
    text = chat.chat_text(tok, "What is the capital of France?")
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\n")
    direct = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                     add_generation_prompt=True, return_dict=True)["input_ids"]
    assert tok(text, add_special_tokens=False)["input_ids"] == list(direct)
    assert "You are a pirate" in chat.chat_text(tok, "Hi", system="You are a pirate")


def test_chat_batch_pads_on_the_left_and_leaves_the_tokenizer_alone(smol):
    _, tok = smol
    side = tok.padding_side
    requests = ["Hi", "A much longer question about the weather in Lisbon?"]
    ids, mask = chat.chat_batch(tok, requests)
    assert tok.padding_side == side
    assert mask[0, 0] == 0 and mask[:, -1].all() and ids.shape == mask.shape
    alone = tok(chat.chat_text(tok, requests[0]), add_special_tokens=False)["input_ids"]
    assert ids[0, mask[0].bool()].tolist() == alone
    with pytest.raises(TypeError, match="list of str, got the single str"):
        chat.chat_batch(tok, "Hi")
    with pytest.raises(ValueError, match="non-empty str"):
        chat.chat_batch(tok, ["Hi", " "])


def test_chat_text_refuses_a_tokenizer_without_a_template(stories):
    _, tok = stories
    with pytest.raises(ValueError, match="no chat template"):
        chat.chat_text(tok, "Hi")


def test_batched_greedy_answers_equal_one_at_a_time(smol):
    model, tok = smol
    prompts = ["What is the capital of France?", "Name a colour."]
    batched = chat.chat_complete(model, tok, prompts, max_new_tokens=6)
    single = [chat.chat_complete(model, tok, [p], max_new_tokens=6)[0] for p in prompts]
    assert batched == single
    assert batched[0].startswith("The capital of France is Paris")
    with pytest.raises(ValueError, match="max_new_tokens must be an integer >= 1"):
        chat.chat_complete(model, tok, prompts, max_new_tokens=0)


def test_plain_continuations_add_the_tokenizers_special_tokens_and_batch_like_one_at_a_time(stories):
    model, tok = stories
    prompts = ["Q: What is the capital of France? A:", "Once upon a time"]
    batched = chat.plain_complete(model, tok, prompts, max_new_tokens=8)
    single = [chat.plain_complete(model, tok, [p], max_new_tokens=8)[0] for p in prompts]
    assert batched == single and all(isinstance(a, str) and a == a.strip() for a in batched)
    with pytest.raises(ValueError, match="non-empty str"):
        chat.plain_complete(model, tok, ["Once", "  "])
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        chat.plain_complete(model, tok, prompts, batch_size=0)
