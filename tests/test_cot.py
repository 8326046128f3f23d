"""Chain-of-thought helpers of chapter 4 (llmlab.cot): problems, prompts, answer reading."""

import re

import pytest

from llmlab import cot
from llmlab.lifecycle import last_integer


def test_word_problems_deterministic_and_right_by_construction():
    a, b = cot.word_problems(20, seed=3), cot.word_problems(20, seed=3)
    assert a == b and a != cot.word_problems(20, seed=4)
    for p in a:
        start, first, second = (int(x) for x in re.findall(r"\d+", p["question"]))
        gain, loss = (first, second) if "gets" in p["question"].split(".")[1].split("and")[0] else (second, first)
        assert p["answer"] == start + gain - loss > 0


@pytest.mark.parametrize("reply, expected", [
    ("12", 12), ("The answer is 7.", 7), ("She has 5 + 3 = 8, then 8 - 2 = 6.", 6), ("none", None),
])
def test_answer_reading_takes_the_last_whole_number(reply, expected):
    assert last_integer(reply) == expected


class _ChatTokenizer:
    chat_template = "x"

    def __call__(self, text, **kwargs):
        return {"input_ids": [ord(c) for c in text]}

    def decode(self, ids, **kwargs):
        return "".join(map(chr, ids))

    def apply_chat_template(self, messages, add_generation_prompt, tokenize):
        return "".join(m["content"] for m in messages) + "<assistant>"


def test_prompt_contains_question_and_instruction():
    tok = _ChatTokenizer()
    for style, instruction in cot.STYLES.items():
        text = cot.prompt(tok, "How many?", style)
        assert "How many?" in text and instruction in text
    assert "step by step" in cot.STEP_INSTRUCTION
    tok.chat_template = None
    with pytest.raises(ValueError, match="chat template"):
        cot.prompt(tok, "How many?", "direct")
