"""Chapter 6 (memory and quantization): the checks that ``exercises/src/06_memory_quantization.py`` calls,
its quiz key and their private helpers (the shared machinery is in ``_harness.py``)."""

from __future__ import annotations

import math
from typing import Callable

import torch

from ._harness import (
    FAIL,
    _call,
    _Case,
    _not_done,
    _number_problem,
    _quiz_verdict,
    _run,
    _tensor_problem,
    _tiny_gpt2,
    _Wrong,
)


def check_model_states(fn: Callable) -> bool:
    """Chapter 6. ``fn(n_params, n_gpus, zero_stage) -> bytes`` of parameters, gradients and optimizer states
    on one GPU for mixed-precision Adam (2 + 2 + 12 bytes per parameter) under ZeRO stage 0 to 3
    (Rajbhandari et al. 2020), compared with ``llmlab.memory.model_states_per_gpu``."""
    from ..memory import model_states_per_gpu

    def case(n, gpus, stage, label, hidden=True):
        def run():
            got = _call(fn, n, gpus, stage)
            want = model_states_per_gpu(n, gpus, stage, precision="mixed", optimizer="adam")
            problem = _number_problem(got, want.total, "the bytes per GPU")
            if problem and isinstance(got, (int, float)) and not isinstance(got, bool):
                for other in range(4):
                    if other != stage and math.isclose(got, model_states_per_gpu(n, gpus, other).total, rel_tol=1e-9):
                        raise _Wrong(f"that is what ZeRO stage {other} keeps; stage {stage} shards "
                                     + ("nothing" if stage == 0 else
                                        ["", "the optimizer states", "optimizer states and gradients",
                                         "optimizer states, gradients and parameters"][stage]))
                no_master = want.total - 4 * n / (gpus if stage >= 1 else 1)
                if math.isclose(got, no_master, rel_tol=1e-9):
                    raise _Wrong("the optimizer states are 12 bytes per parameter: Adam's momentum and variance "
                                 "(8) and the fp32 master copy of the weights (4), which is missing")
            if problem:
                raise _Wrong(problem)
        return _Case(label, run, hidden)

    return _run("model_states", [
        case(7.5e9, 64, 0, "7.5e9 parameters, 64 GPUs, stage 0", hidden=False),
        case(7.5e9, 64, 2, "7.5e9 parameters, 64 GPUs, stage 2", hidden=False),
        case(7.5e9, 64, 1, "stage 1"),
        case(7.5e9, 64, 3, "stage 3"),
        case(1.3e9, 1, 3, "one GPU: sharding saves nothing"),
        case(175e9, 1024, 2, "175e9 parameters on 1024 GPUs, stage 2"),
    ])


def check_gpt_param_count(fn: Callable) -> bool:
    """Chapter 6. ``fn(n_layers, hidden, vocab_size, seq_len) -> int`` parameters of a GPT-2-shaped model
    (MLP of 4 * hidden, biases, two layer norms per block and one at the end, learned positions, tied
    embeddings), compared with a real ``transformers`` GPT-2 of that shape."""
    def case(layers, hidden, vocab, seq, label, hidden_case=True):
        def run():
            got = _call(fn, layers, hidden, vocab, seq)
            want = sum(p.numel() for p in _tiny_gpt2(layers, hidden, max(1, hidden // 8), vocab, seq).parameters())
            if isinstance(got, (int, float)) and not isinstance(got, bool):
                if got == want + vocab * hidden:
                    raise _Wrong("counted the output layer separately; GPT-2 ties it to the token embedding")
                if got == want - seq * hidden:
                    raise _Wrong("left out the learned position embeddings (seq_len x hidden)")
                if got == 12 * layers * hidden ** 2:
                    raise _Wrong("only 12 L h^2: add the biases, layer norms and embeddings")
                if got == want - 2 * hidden:
                    raise _Wrong("left out the final layer norm (2 x hidden)")
            if isinstance(got, float) and got.is_integer():
                got = int(got)
            if not isinstance(got, int) or isinstance(got, bool):
                raise _Wrong(f"returned a {type(got).__name__}; expected an int (a count)")
            if got != want:
                raise _Wrong(f"{got:,} parameters: that is {got - want:+,} compared with the real model "
                             "(count per block: attention QKV and output, MLP, two layer norms)")
        return _Case(label, run, hidden_case)

    return _run("gpt_param_count", [
        case(2, 16, 50, 32, "2 layers, hidden 16, vocab 50, 32 positions", hidden_case=False),
        case(4, 64, 1000, 128, "4 layers, hidden 64, vocab 1000, 128 positions"),
        case(1, 8, 7, 1, "1 layer, hidden 8, vocab 7, 1 position"),
    ])


def _int8_inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "x = [-1.0, -0.5, 0.0, 0.25, 2.0]": torch.tensor([-1.0, -0.5, 0.0, 0.25, 2.0]),
        "the largest magnitude is negative: [-3.0, -1.0, 0.5, 1.0]": torch.tensor([-3.0, -1.0, 0.5, 1.0]),
        "a (4, 16) random matrix": torch.randn(4, 16, generator=g),
        "all positive values (after a ReLU)": torch.rand(64, generator=g) * 3 + 0.5,
        "an outlier of 60 among small values": torch.cat([torch.randn(31, generator=g) * 0.1, torch.tensor([60.0])]),
        "all zeros": torch.zeros(5),
        "float16 input": (torch.randn(10, generator=g) * 4).half(),
    }


def _quant_case(fn, reference, x, label, hidden, zeropoint):
    def run():
        got = _call(fn, x.clone())
        want = reference(x)
        n = 3 if zeropoint else 2
        names = "(q, scale, zero_point)" if zeropoint else "(q, scale)"
        if not isinstance(got, tuple) or len(got) != n:
            raise _Wrong(f"expected a tuple {names}, got {type(got).__name__}"
                         + (f" of length {len(got)}" if isinstance(got, tuple) else ""))
        q, scale = got[0], got[1]
        if not isinstance(q, torch.Tensor) or q.dtype != torch.int8:
            raise _Wrong(f"q should be an int8 tensor, got {getattr(q, 'dtype', type(q).__name__)}: "
                         "round, clamp to the INT8 range, then .to(torch.int8)")
        if q.shape != x.shape:
            raise _Wrong(f"q has shape {tuple(q.shape)}; expected the input's shape {tuple(x.shape)}")
        scale_value = scale.item() if isinstance(scale, torch.Tensor) else scale
        if isinstance(scale_value, bool) or not isinstance(scale_value, (int, float)):
            raise _Wrong(f"scale should be one number (per tensor), got {type(scale).__name__}")
        want_scale = want.scale.item()
        if x.abs().max() == 0:
            if not (math.isfinite(scale_value) and scale_value > 0):
                raise _Wrong(f"the scale is {scale_value!r} for an all-zero input: x / scale is then 0 / 0 (NaN); "
                             "guard it with a tiny positive minimum such as torch.finfo(torch.float32).eps")
        elif not math.isclose(scale_value, want_scale, rel_tol=1e-5):
            problem = _number_problem(scale_value, want_scale, "the scale", rel=1e-5)
            lo, hi = x.float().min().item(), x.float().max().item()
            if zeropoint and math.isclose(scale_value, x.abs().max().item() / 127, rel_tol=1e-5):
                problem = "the scale is the absmax one; the zero-point scale spreads [min, max] over 255 steps"
            elif zeropoint and math.isclose(scale_value, want_scale * 255 / 256, rel_tol=1e-5):
                problem = ("the scale divides by 256; the 256 codes leave 255 steps between them: spread "
                           "[min, max] over 255 steps")
            elif zeropoint and (lo > 0 or hi < 0) and math.isclose(scale_value, (hi - lo) / 255, rel_tol=1e-5):
                problem = ("the scale spans [min, max], a range not widened to include 0: with values all of one "
                           "sign, use min(x.min(), 0) and max(x.max(), 0), so that 0.0 has an exact code")
            elif not zeropoint and math.isclose(scale_value, x.abs().max().item() / 128, rel_tol=1e-5):
                problem = "the scale uses 128; symmetric INT8 uses -127..127, so divide max|x| by 127"
            elif not zeropoint and hi != x.abs().max().item() and math.isclose(scale_value, hi / 127, rel_tol=1e-5):
                problem = ("the scale comes from the largest value, x.max(); it must come from the largest "
                           "magnitude, x.abs().max() (here a negative value)")
            raise _Wrong(problem)
        if zeropoint:
            zp = got[2]
            zp_value = zp.item() if isinstance(zp, torch.Tensor) else zp
            if zp_value != want.zero_point.item():
                raise _Wrong(f"zero_point is {zp_value!r}; it should be the integer code that 0.0 maps to "
                             "(so that 0 is exact), within -128..127")
        if x.abs().max() > 0:
            codes = torch.clamp(q.to(torch.int32), -128, 127)
            low = int(codes.min())
            if not zeropoint and low == -128:
                raise _Wrong("q uses -128; symmetric INT8 keeps -127..127 so that +x and -x get opposite codes")
        if zeropoint and int(got[2]) != 0 and torch.equal(
                q, torch.clamp(torch.round(x.float() / scale_value), -128, 127).to(torch.int8)):
            raise _Wrong("q does not include the zero point: add the zero point to round(x / scale), then clamp")
        problem = _tensor_problem(q, want.q, "q")
        dequant = (q.to(torch.float32) - (int(got[2]) if zeropoint else 0)) * scale_value
        err = (dequant - x.float()).abs().max().item()
        if problem and (q.to(torch.int32) - want.q.to(torch.int32)).abs().max() <= 1 and err <= want_scale / 2 * 1.001:
            problem = None  # a value exactly half-way between two codes may round either way in float32
        if problem:
            raise _Wrong(problem + f"; its dequantized error is {err:.3g}, more than half a step "
                         f"({want_scale / 2:.3g}): round to the nearest code" if err > want_scale / 2 + 1e-6
                         else problem + " (off by one code: round to nearest, not floor or truncate)")
    return _Case(label, run, hidden)


def check_absmax_int8(fn: Callable) -> bool:
    """Chapter 6. ``fn(x) -> (q, scale)``: symmetric (absmax) INT8 per tensor, ``scale = max|x| / 127``,
    ``q = round(x / scale)`` as int8 in -127..127; an all-zero input needs a positive scale (no 0 / 0).
    Compared with ``llmlab.quant.quantize_absmax``."""
    from ..quant import quantize_absmax

    return _run("absmax_int8", [_quant_case(fn, quantize_absmax, x, label, i > 0, False)
                                for i, (label, x) in enumerate(_int8_inputs().items())])


def check_zeropoint_int8(fn: Callable) -> bool:
    """Chapter 6. ``fn(x) -> (q, scale, zero_point)``: asymmetric INT8 per tensor over all 256 codes, with
    the range widened to include 0. Compared with ``llmlab.quant.quantize_zeropoint``."""
    from ..quant import quantize_zeropoint

    return _run("zeropoint_int8", [_quant_case(fn, quantize_zeropoint, x, label, i > 0, True)
                                   for i, (label, x) in enumerate(_int8_inputs().items())])


def check_formats_quiz(answers: dict) -> bool:
    """Chapter 6 quiz: float formats. Numeric answers are compared with ``llmlab.quant.format_info``: exactly,
    except the largest bf16 value, which may be rounded to three significant digits."""
    from ..quant import format_info

    if not isinstance(answers, dict):
        print(f"{FAIL} formats_quiz: pass the dict of answers, got a {type(answers).__name__}")
        return False
    questions = {
        "largest finite fp16 value": (format_info("fp16").max, "5 exponent bits: the largest exponent is 15."),
        "largest finite bf16 value": (format_info("bf16").max, "bf16 has fp32's 8 exponent bits."),
        "fraction bits of bf16": (format_info("bf16").fraction_bits, "16 bits = 1 sign + 8 exponent + ?"),
        "spacing of fp16 values just above 1": (format_info("fp16").eps, "2 to the power minus fraction bits."),
        "bytes of a 7e9-parameter model's weights in int8": (7e9, "One byte per value."),
    }
    todo = [q for q in questions if _not_done(answers.get(q, ...))]
    if todo:
        print(f"{FAIL} formats_quiz: not done yet. Replace `...` with your answer for {todo}.")
        return False
    wrong = []
    for q, (want, hint) in questions.items():
        got = answers[q]
        problem = _number_problem(got, want, "your answer", rel=1e-12)
        if problem and q == "largest finite bf16 value" and isinstance(got, (int, float)) \
                and float(f"{got:.3g}") == float(f"{want:.3g}"):
            problem = None  # rounded to three significant digits, as the exercise allows
        if problem and isinstance(got, (int, float)) and not isinstance(got, bool) \
                and math.isclose(got, want, rel_tol=1e-2):
            problem = ("your answer is close but not exact: this value can be computed exactly from the bits "
                       "(or looked up with torch.finfo)")
        if problem:
            wrong.append(f"  - {q!r}: {problem}. {hint}")
    return _quiz_verdict("formats_quiz", len(questions), wrong)
