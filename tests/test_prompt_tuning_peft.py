"""llmlab.prompt_tuning against PEFT (chapter 10): the same trainable counts and the same outputs."""

from __future__ import annotations

import copy

import pytest
import torch

peft = pytest.importorskip("peft")
from peft import PromptEncoderConfig, PromptTuningConfig  # noqa: E402

from llmlab import prompt_tuning as pt  # noqa: E402
from llmlab import zoo  # noqa: E402
from llmlab.prompt_template import Encoded, PromptTemplate  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def stories():
    return zoo.load("stories-1m", device="cpu")[0]


def _peft(model, config):
    return pt.peft_model(copy.deepcopy(model), config)


@pytest.mark.parametrize("n_virtual", [1, 7, 20])
def test_prompt_tuning_trains_as_many_values_as_peft(stories, n_virtual, make_gpt2):
    for model in (make_gpt2(), stories):
        theirs = _peft(model, PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=n_virtual))
        ours = pt.SoftPrompt(copy.deepcopy(model), n_virtual)
        assert ours.trainable_parameters() == pt.trainable_parameters(ours) == theirs.get_nb_trainable_parameters()[0]


@pytest.mark.parametrize("n_virtual, hidden", [(1, 16), (10, 128), (20, 64)])
def test_p_tuning_mlp_trains_as_many_values_as_peft(stories, n_virtual, hidden, make_gpt2):
    for model in (make_gpt2(), stories):
        d = model.get_input_embeddings().weight.shape[1]
        theirs = _peft(model, PromptEncoderConfig(task_type="CAUSAL_LM", num_virtual_tokens=n_virtual,
                                                  encoder_hidden_size=hidden, encoder_reparameterization_type="MLP"))
        ours = pt.SoftPrompt(copy.deepcopy(model), n_virtual, encoder=pt.PromptEncoder(n_virtual, d, "mlp", hidden))
        assert pt.trainable_parameters(ours) == theirs.get_nb_trainable_parameters()[0]
        # written out: the table, then d -> hidden -> hidden -> d with biases
        assert ours.trainable_parameters() == n_virtual * d + (d * hidden + hidden) + (hidden * hidden + hidden) \
            + (hidden * d + d)


def test_p_tuning_lstm_trains_as_many_values_as_peft(make_gpt2):
    model = make_gpt2()
    theirs = _peft(model, PromptEncoderConfig(task_type="CAUSAL_LM", num_virtual_tokens=6, encoder_hidden_size=24,
                                              encoder_reparameterization_type="LSTM", encoder_num_layers=2))
    ours = pt.SoftPrompt(copy.deepcopy(model), 6, encoder=pt.PromptEncoder(6, 32, "lstm", 24, num_layers=2))
    assert ours.trainable_parameters() == theirs.get_nb_trainable_parameters()[0]


def _rows(model, n_virtual):
    """Two right-padded rows of token ids and their mask."""
    g = torch.Generator().manual_seed(1)
    vocab = model.get_input_embeddings().num_embeddings
    ids = torch.randint(0, vocab, (2, 9), generator=g)
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[1, 6:] = 0
    return ids, mask


def _ours(soft, ids, mask):
    """llmlab's logits for the same rows: '{virtual}' then the row's tokens (its last one as the answer)."""
    tpl = PromptTemplate("{virtual}{text}{answer}")
    encoded = []
    for row, m in zip(ids, mask):
        real = row[m.bool()].tolist()
        encoded.append(Encoded([[], real[:-1]], real[-1:]))
    batch = pt.build_inputs(soft, tpl, encoded)
    with torch.no_grad():
        return soft.model(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"]).logits


@pytest.mark.parametrize("style", ["prompt-tuning", "p-tuning (mlp)", "p-tuning (lstm)"])
def test_same_virtual_tokens_give_the_same_outputs_as_peft(stories, style):
    model, n = stories, 5
    d = model.get_input_embeddings().weight.shape[1]
    if style == "prompt-tuning":
        config = PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=n)
    else:
        kind = "MLP" if "mlp" in style else "LSTM"
        config = PromptEncoderConfig(task_type="CAUSAL_LM", num_virtual_tokens=n, encoder_hidden_size=16,
                                     encoder_reparameterization_type=kind)
    theirs = _peft(model, config).eval()
    encoder = theirs.prompt_encoder["default"]
    if style == "prompt-tuning":
        ours = pt.SoftPrompt(copy.deepcopy(model), n, seed=3)
        ours.virtual.table.data.copy_(encoder.embedding.weight.data)
    else:
        mine = pt.PromptEncoder(n, d, "mlp" if "mlp" in style else "lstm", 16)
        mine.load_state_dict(encoder.state_dict())  # PEFT's parameter names, loaded as they are
        ours = pt.SoftPrompt(copy.deepcopy(model), n, encoder=mine)
    assert ours.virtual.style == style
    ids, mask = _rows(model, n)
    with torch.no_grad():
        want = theirs(input_ids=ids, attention_mask=mask).logits  # (2, n + 9, V), virtual tokens first
    got = _ours(ours, ids, mask)
    for i in range(2):
        length = n + int(mask[i].sum())
        torch.testing.assert_close(got[i, :length], want[i, :length], atol=1e-5, rtol=1e-5)


def test_collapsed_p_tuning_table_is_what_peft_saves(stories):
    n = 4
    theirs = _peft(stories, PromptEncoderConfig(task_type="CAUSAL_LM", num_virtual_tokens=n, encoder_hidden_size=32,
                                                encoder_reparameterization_type="MLP")).eval()
    mine = pt.PromptEncoder(n, stories.config.n_embd, "mlp", 32)
    mine.load_state_dict(theirs.prompt_encoder["default"].state_dict())
    ours = pt.SoftPrompt(copy.deepcopy(stories), n, encoder=mine)
    ids, mask = _rows(stories, n)
    before = _ours(ours, ids, mask)
    ours.collapse()
    torch.testing.assert_close(ours.virtual.table.detach(), theirs.get_prompt_embedding_to_save("default"))
    torch.testing.assert_close(_ours(ours, ids, mask), before)
    assert ours.virtual.style == "prompt-tuning" and ours.trainable_parameters() == n * stories.config.n_embd
