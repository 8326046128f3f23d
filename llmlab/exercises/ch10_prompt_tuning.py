"""Chapter 10 (prompt tuning): the checks that ``exercises/src/10_prompt_tuning.py`` calls,
its quiz key and their private helpers (the shared machinery is in ``_harness.py``)."""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from ._harness import _call, _Case, _number_problem, _quiz, _run, _salted, _tensor_problem, _tiny_gpt2, _Wrong


def check_soft_prompt_params(fn: Callable) -> bool:
    """Chapter 10. ``fn(model, n_virtual) -> (trained, fraction)``: the values prompt tuning trains
    (``n_virtual`` embeddings of the model's width) and their share of the model's own parameters.
    Compared with ``llmlab.prompt_tuning.SoftPrompt``."""
    from ..prompt_tuning import SoftPrompt

    def case(make, n, label, hidden=True):
        def run():
            model = make()
            got = _call(fn, model, n)
            total = sum(p.numel() for p in model.parameters())
            trained = SoftPrompt(make(), n).trainable_parameters()
            if not isinstance(got, tuple) or len(got) != 2:
                raise _Wrong(f"expected a tuple (trained, fraction), got {type(got).__name__}")
            if got[0] == total:
                raise _Wrong("that is every weight of the model: prompt tuning freezes them and trains only the "
                             "virtual tokens' embeddings")
            if got[0] == n:
                raise _Wrong("each virtual token is a vector of the model's width, not one number")
            problem = _number_problem(got[0], trained, "the trained values")
            if problem:
                raise _Wrong(problem)
            problem = _number_problem(got[1], trained / total, "the fraction", rel=1e-6)
            if problem and isinstance(got[1], (int, float)) and math.isclose(got[1], 100 * trained / total, rel_tol=1e-6):
                problem = "the fraction is in percent; give it as a fraction (0 to 1)"
            if problem:
                raise _Wrong(problem)
        return _Case(label, run, hidden)

    from ..zoo import load
    return _run("soft_prompt_params", [
        case(lambda: load("stories-1m", device="cpu")[0], 20, "stories-1m, 20 virtual tokens", hidden=False),
        case(lambda: _tiny_gpt2(2, 48, 4, 60, 16), 1, "a GPT-2 of width 48, one virtual token"),
        case(lambda: _tiny_gpt2(1, 8, 2, 30, 8), 100, "a tiny GPT-2, 100 virtual tokens"),
    ])


def check_prepend(fn: Callable) -> bool:
    """Chapter 10. ``fn(soft_prompt, input_embeds, attention_mask) -> (embeds, mask)``: the soft prompt
    ``(n, d)`` put in front of every row of ``input_embeds`` ``(B, T, d)``; the mask ``(B, T)`` gets
    ``n`` ones in front (the virtual tokens are always attended to)."""
    def case(n, b, t, d, label, hidden=True, seed=0):
        def run():
            g = torch.Generator().manual_seed(seed)
            prompt = torch.randn(n, d, generator=g)
            x = torch.randn(b, t, d, generator=g)
            mask = torch.ones(b, t, dtype=torch.long)
            mask[0, t // 2:] = 0  # the first row is padded on the right
            got = _call(fn, prompt.clone(), x.clone(), mask.clone())
            if not isinstance(got, tuple) or len(got) != 2:
                raise _Wrong(f"expected a tuple (embeds, mask), got {type(got).__name__}")
            want_x = torch.cat([prompt.expand(b, n, d), x], dim=1)
            want_m = torch.cat([torch.ones(b, n, dtype=mask.dtype), mask], dim=1)
            emb, m = got
            if isinstance(emb, torch.Tensor) and emb.shape == want_x.shape and torch.equal(
                    emb, torch.cat([x, prompt.expand(b, n, d)], dim=1)):
                raise _Wrong("the soft prompt is at the end; it goes in front of the text")
            if isinstance(m, torch.Tensor) and m.shape == want_m.shape and torch.equal(m[:, n:], mask) \
                    and (m[:, :n] == 0).all():
                raise _Wrong("the virtual tokens' mask entries are 0; they are always attended to: put ones there")
            for problem in (_tensor_problem(emb, want_x, "the embeddings"),
                            _tensor_problem(m, want_m, "the mask", check_dtype=False)):
                if problem:
                    raise _Wrong(problem)
        return _Case(label, run, hidden)

    return _run("prepend", [
        case(3, 2, 5, 4, "3 virtual tokens, a batch of 2 rows of 5 tokens, width 4", hidden=False),
        case(1, 1, 1, 8, "one virtual token, one row of one token"),
        case(20, 4, 7, 16, "20 virtual tokens, batch of 4", seed=1),
    ])


def check_answer_loss(fn: Callable, model=None, tokenizer=None) -> bool:
    """Chapter 10. ``fn(logits, input_ids, n_prompt) -> scalar``: the mean cross-entropy over the answer's
    tokens only (the tokens from position ``n_prompt`` on), each predicted from the position before it.
    Compared with ``llmlab.prompt_tuning.answer_loss`` on the bundled ``stories-1m``."""
    from ..prompt_template import PromptTemplate, encode
    from ..prompt_tuning import answer_loss

    if model is None or tokenizer is None:
        from ..zoo import load
        model, tokenizer = load("stories-1m", device="cpu")
    template = PromptTemplate("{story} Who was the story about? {answer}")

    def case(story, answer, label, hidden=True):
        def run():
            enc = encode(tokenizer, template, {"story": story, "answer": answer})
            ids = torch.tensor([enc.before + enc.after + enc.answer])
            n_prompt = len(enc.before) + len(enc.after)
            with torch.no_grad():
                logits = model(input_ids=ids).logits
                want = answer_loss(model, template, [enc]).item()
            got = _call(fn, logits.clone(), ids.clone(), n_prompt)
            problem = _number_problem(got, want, "the loss", rel=1e-4)
            if problem and isinstance(got, torch.Tensor) and got.numel() == 1:
                whole = F.cross_entropy(logits[0, :-1], ids[0, 1:]).item()
                if math.isclose(got.item(), whole, rel_tol=1e-4):
                    raise _Wrong("the loss covers the prompt too; only the answer's tokens count")
                unshifted = F.cross_entropy(logits[0, n_prompt:], ids[0, n_prompt:]).item()
                if math.isclose(got.item(), unshifted, rel_tol=1e-4):
                    raise _Wrong("the logits at position t predict token t + 1: shift by one (the logits from "
                                 "n_prompt - 1 to the second last against the tokens from n_prompt on)")
                n_answer = ids.shape[1] - n_prompt
                if n_answer > 1 and math.isclose(got.item(), want * n_answer, rel_tol=1e-4):
                    raise _Wrong("that is the sum of the answer tokens' losses; take their mean")
            if problem:
                raise _Wrong(problem + " (the logits at position t predict token t + 1)")
        return _Case(label, run, hidden)

    return _run("answer_loss", [
        case("Lily found a red ball in the park.", "Lily", "a one-token answer", hidden=False),
        case("Tom and his dog went to the beach. They played all day.", "Tom and his dog", "a longer answer"),
        case("Once upon a time, a little bird sang.", "a little bird", "an answer of several tokens"),
    ])


def check_encoder_params(fn: Callable) -> bool:
    """Chapter 10. ``fn(n_virtual, d_model, hidden) -> (trained, stored)``: the values p-tuning's MLP prompt
    encoder trains (PEFT's ``encoder_reparameterization_type="MLP"``: an ``n_virtual x d_model`` input table,
    then linear layers ``d_model -> hidden -> hidden -> d_model`` with biases) and the values kept for
    inference once it is collapsed to a table. Compared with ``llmlab.prompt_tuning.PromptEncoder``."""
    from ..prompt_tuning import PromptEncoder, VirtualTokens

    def case(n, d, h, label, hidden=True):
        def run():
            got = _call(fn, n, d, h)
            if not isinstance(got, tuple) or len(got) != 2:
                raise _Wrong(f"expected a tuple (trained, stored), got {type(got).__name__}")
            encoder = PromptEncoder(n, d, "mlp", h)
            trained = sum(p.numel() for p in encoder.parameters())
            stored = VirtualTokens(torch.nn.Embedding(2, d), n, encoder=encoder).collapse().trainable_parameters()
            layers = d * h + h * h + h * d
            if got[0] == trained - (2 * h + d):
                raise _Wrong("the linear layers have biases too (one per output)")
            if got[0] == trained - n * d:
                raise _Wrong("the encoder's input is a trained table of n_virtual x d_model values as well")
            if got[0] == trained - (h * h + h):
                raise _Wrong("PEFT's MLP has three linear layers: d_model -> hidden -> hidden -> d_model")
            if got[0] == layers:
                raise _Wrong("count the input table (n_virtual x d_model) and the biases as well as the matrices")
            problem = _number_problem(got[0], trained, "the trained values")
            if problem:
                raise _Wrong(problem)
            if got[1] == trained:
                raise _Wrong("after collapsing, only the encoder's output is kept: one vector per virtual token")
            problem = _number_problem(got[1], stored, "the values stored for inference")
            if problem:
                raise _Wrong(problem)
        return _Case(label, run, hidden)

    return _run("encoder_params", [
        case(20, 576, 128, "20 virtual tokens, SmolLM2's width 576, hidden 128", hidden=False),
        case(1, 8, 8, "one virtual token, width 8, hidden 8"),
        case(100, 64, 256, "100 virtual tokens, a hidden layer wider than the model"),
    ])


def check_place_slots(fn: Callable, model=None) -> bool:
    """Chapter 10. ``fn(pieces, virtual, splits) -> embeds``: the text pieces' embeddings (``len(splits) + 1``
    tensors ``(T_i, d)``) with the virtual tokens ``(sum(splits), d)`` split among the slots between them,
    in order, as NeMo's ``virtual_token_splits`` says. Compared with ``llmlab.prompt_tuning.build_inputs``
    on the bundled ``stories-1m``."""
    from ..prompt_template import Encoded, PromptTemplate
    from ..prompt_tuning import SoftPrompt, build_inputs

    if model is None:
        from ..zoo import load
        model = load("stories-1m", device="cpu")[0]
    embed = model.get_input_embeddings()

    def case(lengths, splits, label, hidden=True, seed=0):
        def run():
            g = torch.Generator().manual_seed(seed)
            ids = [torch.randint(0, embed.num_embeddings, (n,), generator=g).tolist() for n in lengths]
            template = PromptTemplate("".join(f"{{t{i}}}{{virtual_{i}}}" for i in range(len(splits)))
                                      + f"{{t{len(splits)}}}{{answer}}", list(splits))
            soft = SoftPrompt(model, sum(splits), seed=seed)
            with torch.no_grad():
                virtual = soft.prompt.detach().clone()
                pieces = [embed(torch.tensor(x, dtype=torch.long)) for x in ids]
                want = build_inputs(soft, template, [Encoded(ids, [0])])["inputs_embeds"][0, :-1]
                got = _call(fn, [p.clone() for p in pieces], virtual.clone(), list(splits))
            if isinstance(got, torch.Tensor) and got.shape == want.shape and not torch.allclose(got, want):
                front = torch.cat([virtual] + pieces)
                if torch.allclose(got, front):
                    raise _Wrong("every virtual token is at the front; each slot between the pieces takes its "
                                 "own share, in the order of splits")
                chunks = torch.split(virtual, list(splits[::-1]))
                back = torch.cat([pieces[0]] + [x for c, p in zip(chunks, pieces[1:]) for x in (c, p)])
                if torch.allclose(got, torch.cat(pieces + [virtual])):
                    raise _Wrong("every virtual token is at the end; each slot between the pieces takes its own "
                                 "share, in the order of splits")
                if len(set(splits)) > 1 and torch.allclose(got, back):
                    raise _Wrong("the splits are taken in reverse: the first slot gets the first splits[0] tokens")
            problem = _tensor_problem(got, want, "the embeddings")
            if problem:
                raise _Wrong(problem)
        return _Case(label, run, hidden)

    return _run("place_slots", [
        case([3, 4, 2, 0], [4, 2, 1], "NeMo's three slots (splits 4, 2, 1) around a context and a question",
             hidden=False),
        case([0, 5], [3], "one slot at the very start"),
        case([2, 0, 3], [1, 5], "two slots next to each other", seed=1),
        case([1, 1, 1, 1, 1], [1, 1, 1, 1], "four slots of one token", seed=2),
    ])


_PEFT_KEY = {
    "are the model's weights changed by prompt tuning (yes/no)": (
        _salted("no"), "What has requires_grad left on?"),
    "does a soft prompt have to be made of real tokens of the vocabulary (yes/no)": (
        _salted("no"), "The virtual tokens are free vectors in embedding space."),
    "can one frozen model serve many tasks by swapping soft prompts (yes/no)": (
        _salted("yes"), "Each task only needs its own small prompt."),
}


def check_peft_quiz(answers: dict) -> bool:
    """Chapter 10 quiz: prompt tuning."""
    return _quiz("peft_quiz", answers, _PEFT_KEY)
