"""llmlab.tools (chapter 15): the calculator protocol, its loop on the real model, and the failure modes."""

import pytest

from llmlab import lifecycle, tools, zoo

CALC = {"calculator": lifecycle.calculator}


def test_the_problems_are_the_seeded_ones_and_their_answers_are_right():
    problems = tools.load_problems()
    assert problems == tools.make_problems(0)
    assert [p["kind"] for p in problems].count("word problem") == 40 and len(problems) == 120
    for p in problems:
        a, b = (int(x) for x in p["expression"].split()[0:3:2])
        assert str(a) in p["question"] and str(b) in p["question"]
        assert p["answer"] == eval(p["expression"])  # noqa: S307 (a fixed file of digits and operators)
    assert tools.make_problems(1) != problems


@pytest.mark.parametrize("text, expected", [
    ("<calculator>12 * 3</calculator>", {"name": "calculator", "arguments": "12 * 3"}),
    ("so <calculator> 2+2 </calculator><result>4</result>", {"name": "calculator", "arguments": "2+2"}),
    ("<calculator>12 * 3", {"name": "calculator", "arguments": None, "error": "the call is not closed"}),
    ("<search>cats</search>", None),
    ("The answer is 36.", None),
])
def test_parse_call(text, expected):
    assert tools.parse_call(text, CALC) == expected


def test_run_call_keeps_results_and_errors():
    assert tools.run_call({"name": "calculator", "arguments": "12 * 3"}, CALC)["result"] == "36"
    assert tools.run_call({"name": "calculator", "arguments": "7 / 2"}, CALC)["result"] == "3.5"
    bad = tools.run_call({"name": "calculator", "arguments": "12 * 3 = 36"}, CALC)
    assert "does not parse" in bad["error"]
    assert "no tool" in tools.run_call({"name": "search", "arguments": "x"}, CALC)["error"]


@pytest.mark.parametrize("answer, calls, expected", [
    ("The answer is 442.", [], "right"),
    ("The answer is 440.", [], "no call"),
    ("The answer is 74.", [{"name": "calculator", "arguments": "1 = 2", "error": "does not parse"}],
     "malformed call"),
    ("The answer is 1142.", [{"name": "calculator", "arguments": "36 * 22 + 350", "result": "1142"}],
     "wrong operands"),
    ("The answer is 400.", [{"name": "calculator", "arguments": "36 * 22 - 350", "result": "442"}],
     "result not used"),
    ("", [{"name": "calculator", "arguments": "36 * 22 - 350", "result": "442"}], "result not used"),
    ("The answer is 442.", [{"name": "calculator", "arguments": "36 * 22 + 350", "result": "1142"}], "right"),
])
def test_failure_modes(answer, calls, expected):
    assert tools.failure({"answer": 442}, answer, calls) == expected


def test_prompts_show_the_same_examples_in_each_style():
    for style in tools.STYLES:
        msgs = tools.messages("What is 2 plus 2?", style)
        assert msgs[0] == {"role": "system", "content": tools.SYSTEM[style]}
        assert [m["content"] for m in msgs[1::2]] == [q for q, _ in tools.EXAMPLES] + ["What is 2 plus 2?"]
    demo = tools.EXAMPLES[1][1]
    call = tools.parse_call(demo["calculator"], CALC)
    assert lifecycle.calculator(call["arguments"]) == tools.final_number(demo["direct"]) \
        == tools.final_number(demo["chain of thought"])


@pytest.fixture(scope="module")
def real():
    return zoo.load(zoo.REAL_MODEL)


def test_answer_with_tools_runs_the_loop_on_the_real_model(real):
    model, tok = real
    seen = []

    def spy(expression):
        seen.append(expression)
        return lifecycle.calculator(expression)

    problem = tools.load_problems()[40]  # 40 times 28
    answer, calls = tools.answer_with_tools(model, tok, problem["question"], {"calculator": spy})
    assert calls and calls[0]["arguments"] == seen[0]  # the program ran exactly what the model wrote
    assert calls[0]["result"] == str(lifecycle.calculator(seen[0]))
    assert "<result>" not in answer and isinstance(answer, str)
    # with no calls allowed, the call the model writes is returned as text and never run
    seen.clear()
    answer, calls = tools.answer_with_tools(model, tok, problem["question"], {"calculator": spy}, max_calls=0)
    assert calls == [] and seen == [] and "<calculator>" in answer


def test_bad_input_is_refused_clearly(real):
    model, tok = real
    with pytest.raises(TypeError, match="tools must be a non-empty dict"):
        tools.answer_with_tools(model, tok, "What is 2 plus 2?", [lifecycle.calculator])
    with pytest.raises(ValueError, match="lower-case"):
        tools.answer_with_tools(model, tok, "What is 2 plus 2?", {"Calc": lifecycle.calculator})
    with pytest.raises(ValueError, match="style"):
        tools.messages("What is 2 plus 2?", "shout")
    with pytest.raises(TypeError, match="problem"):
        tools.failure(442, "442", [])
