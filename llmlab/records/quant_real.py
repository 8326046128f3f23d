"""Quantization of the real model, recorded for chapter 6: ``llmlab/results/quant_real.json``.

SmolLM2-135M-Instruct's linear layers quantized by every scheme of
:data:`llmlab.quant_real.SCHEMES`, each with its bytes and perplexity against the model's own
Q4_1 weights; the file's bytes by block type; the activation profile and perplexity with INT8
activations (:data:`llmlab.quant_real.ACT_MODES`); the chapter's live slice.
``python -m llmlab.records.quant_real`` makes it (minutes on 2 cores); :func:`load` refuses a
record made for other schemes or windows.
"""

from __future__ import annotations

import os
import time

import torch

from .. import _checks, gguf_blocks, zoo
from ..metrics import perplexity
from ..provenance import stamp
from ..quant_real import (
    ACT_MODES,
    SCHEMES,
    SEQ_LEN,
    ActInt8Linear,
    activation_profile,
    english_ids,
    live_slice,
    measure_scheme,
    outlier_summary,
    story_ids,
    with_int8_activations,
)
from . import read_json, write_json

NAME = "quant_real.json"
COMMAND = "python -m llmlab.records.quant_real"
CODE = ("llmlab/quant.py", "llmlab/quant_real.py", "llmlab/gguf_blocks.py", "llmlab/corpus/english_passages.txt",
        "llmlab/records/quant_real.py")
#: what is recorded: every weight scheme, the window length and every INT8-activation mode
PLAN = {"schemes": tuple(SCHEMES), "seq_len": SEQ_LEN, "act_modes": ACT_MODES}


def run(out=None, schemes: list[str] | None = None) -> dict:
    """Run the whole grid on the real model and write it to ``out`` (default: the shipped file;
    ``False`` writes nothing), stamped with :func:`llmlab.provenance.stamp`. Returns the record."""
    from tqdm.auto import tqdm

    names = list(SCHEMES) if schemes is None else _checks.strings("schemes", schemes)
    for name in names:
        _checks.choice("scheme", name, list(SCHEMES))
    if out is not None and out is not False and not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out must be a path (str or pathlib.Path), None or False, got {type(out).__name__}")
    started = time.perf_counter()
    model, tokenizer = zoo.load(zoo.REAL_MODEL, device="cpu")
    texts = {"english": english_ids(tokenizer), "stories": story_ids(tokenizer)}
    summary, _ = gguf_blocks.read(zoo.PACKAGED[zoo.REAL_MODEL].file())
    rec = {"what": "chapter 6: quantization of SmolLM2-135M-Instruct, errors against its Q4_1 file",
           "model": zoo.REAL_MODEL, "seq_len": SEQ_LEN, "tokens": {k: int(v.numel()) for k, v in texts.items()},
           **stamp(COMMAND, *CODE),
           "file": {"bytes": summary.file_bytes, "data_start": summary.data_start, "by_kind": summary.by_kind()},
           "schemes": [], "activations": {}}
    for name in tqdm(names, desc="weight schemes"):
        rec["schemes"].append(measure_scheme(name, model, texts))
    profile = activation_profile(model, texts["english"][:512])
    rec["activations"]["residual_top"] = profile["residual_top"]
    rec["activations"]["residual_max_per_layer"] = [float(v) for v in profile["residual"].amax(1)]
    rec["activations"]["linear_input_max"] = {k: float(v.max()) for k, v in profile["linear_inputs"].items()}
    rec["activations"]["outliers"] = outlier_summary(profile)
    act = []
    for mode in tqdm(ACT_MODES, desc="INT8 activations"):
        q = with_int8_activations(model, mode)
        with torch.no_grad():
            ppl = perplexity(q, texts["english"], seq_len=SEQ_LEN, batch_size=8)
        cols = [m.outlier_columns for m in q.modules() if isinstance(m, ActInt8Linear)]
        act.append({"mode": mode, "ppl_english": ppl,
                    "mean_outlier_columns": sum(cols) / len(cols) if mode == "mixed" else 0.0})
    rec["activations"]["int8_activations"] = act
    rec["live_slice"] = live_slice(model, tokenizer)
    rec["seconds"] = round(time.perf_counter() - started, 1)
    if out is not False:
        write_json(rec, out, NAME)
    return rec


def load(path=None) -> dict:
    """The recorded grid at ``path`` (default: the shipped file) as a dict, its machine a dict;
    refuses one whose schemes or windows differ from :data:`llmlab.quant_real.SCHEMES` and ``SEQ_LEN``."""
    rec = read_json(path, NAME, COMMAND)
    if [r["scheme"] for r in rec["schemes"]] != list(SCHEMES) or rec.get("seq_len") != SEQ_LEN:
        raise ValueError(f"{path or NAME} was made for other schemes or windows than llmlab.quant_real's; "
                         f"run `{COMMAND}` again")
    return rec


def main(argv: list[str] | None = None) -> int:
    """``python -m llmlab.records.quant_real [--out PATH]``: measure every scheme on the real model (chapter 6)."""
    import argparse

    parser = argparse.ArgumentParser(prog=COMMAND, description=main.__doc__)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    rec = run(args.out)
    print(f"wrote {args.out or NAME} in {rec['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
