"""Tokenizers trained on the bundled corpora, and corpora encoded into token ids (chapter 3).

:func:`train_tokenizer` trains a byte-level BPE tokenizer (GPT-2's scheme) on a
list of texts; :func:`encode_stories` turns stories or documents into the one long
stream of token ids that :func:`llmlab.train.train_causal_lm` samples windows from;
:func:`encode_icl` pads in-context episodes (chapter 4) into rows whose targets are
the label words alone. The recipes of :mod:`llmlab.recipes` build every bundled
checkpoint's tokenizer with these functions, and the chapters call them to show what a
recipe does.

The special tokens come first in every vocabulary: end-of-text (id 0), then the
padding, mask and sentinel tokens that encoders and encoder-decoders need (chapter 2).
"""

from __future__ import annotations

import torch

from . import _checks
from .train import check_corpus

EOS = "<|endoftext|>"
PAD = "[PAD]"          # encoder and encoder-decoder recipes: padding, distinct from end-of-text
MASK = "[MASK]"        # masked language modeling
SENTINEL = "<extra_id_{}>"  # span corruption (T5's names for its sentinel tokens)


def train_tokenizer(texts: list[str], vocab_size: int, pad_token: str = EOS, mask_token: str | None = None,
                    sentinels: int = 0):
    """Train a byte-level BPE tokenizer (GPT-2's scheme) on ``texts``; return a transformers fast tokenizer.

    Special tokens get the first ids: end-of-text (0), then ``pad_token`` when it
    is not end-of-text, ``mask_token`` and ``sentinels`` sentinel tokens
    ``<extra_id_0>``, ... (encoders and encoder-decoders, chapter 2). The mask and
    sentinel tokens absorb the space before them, as RoBERTa's mask does, because
    in training they replace whole tokens that start with a space. ``vocab_size``
    counts vocabulary entries (256 bytes, the special tokens, then merges).
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    check_corpus(texts)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise _checks.ArgumentTypeError(f"vocab_size must be an int, got {type(vocab_size).__name__} {vocab_size!r}")
    extra = [t for t in (pad_token, mask_token) if t not in (None, EOS)]
    sentinel_tokens = [SENTINEL.format(i) for i in range(sentinels)]
    specials = [EOS, *[AddedToken(t, special=True, lstrip=t != pad_token) for t in extra + sentinel_tokens]]
    if vocab_size < 256 + len(specials):
        raise ValueError(f"vocab_size must be >= {256 + len(specials)} (256 bytes + {len(specials)} special tokens), "
                         f"got {vocab_size}")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer)
    named = {"mask_token": mask_token} if mask_token else {}
    if sentinel_tokens:
        named["additional_special_tokens"] = sentinel_tokens
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=EOS, eos_token=EOS, pad_token=pad_token,
                                   model_max_length=10**6, **named)


def encode_stories(tokenizer, stories: list[str], what: str = "stories") -> torch.Tensor:
    """One long 1-D stream of token ids: each story (or document) followed by the end-of-text token.

    ``what`` names the texts in the error raised for an empty or non-text list.
    """
    check_corpus(stories, what)
    eos = tokenizer.eos_token_id
    ids: list[int] = []
    for chunk in tokenizer(stories, add_special_tokens=False)["input_ids"]:
        ids.extend(chunk)
        ids.append(eos)
    return torch.tensor(ids, dtype=torch.long)


def encode_icl(tokenizer, texts: list[str], spans: list[list[tuple[int, int]]],
               window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids (N, T) padded with end-of-text, and targets (N, T) that are -100 except on label-word tokens.

    ``spans[i]`` holds the character ranges of the label words of ``texts[i]``;
    ``targets[i, t]`` is the token the model must predict at position ``t`` (the next
    one); only label words count, so the loss measures the in-context task alone
    (chapter 4). ``window`` is the model's context window in tokens.
    """
    texts = _checks.strings("texts", texts)
    window = _checks.positive_int("window", window)
    if not isinstance(spans, (list, tuple)) or len(spans) != len(texts):
        raise ValueError(f"spans must be a list with one list of (start, end) character ranges per text "
                         f"({len(texts)} texts), got {_checks._shown(spans)}")
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    length = max(map(len, enc["input_ids"]))
    if length > window:
        raise ValueError(f"training texts need {length} tokens but the model's window is {window}; raise n_positions")
    ids = torch.full((len(texts), length), tokenizer.eos_token_id, dtype=torch.long)
    targets = torch.full((len(texts), length), -100, dtype=torch.long)
    for i, (row, offsets) in enumerate(zip(enc["input_ids"], enc["offset_mapping"])):
        row_t, offsets_t = torch.tensor(row), torch.tensor(offsets).view(-1, 2)
        ids[i, :len(row)] = row_t
        is_label = torch.zeros(len(row), dtype=torch.bool)
        for a, b in spans[i]:  # a token belongs to a label word when their character ranges overlap
            is_label |= (offsets_t[:, 0] < b) & (offsets_t[:, 1] > a)
        is_label[0] = False  # nothing predicts the first token
        targets[i, :len(row) - 1] = torch.where(is_label[1:], row_t[1:], -100)
    return ids, targets
