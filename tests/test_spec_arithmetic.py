"""Spec arithmetic (`archcalc/lang/expr.py`), spec functions, loops and family members.

What the torchvision families need to write their rounding rules in the spec itself:
floats, comparisons, `a if c else b`, min/max/round/floor/ceil/int/log, functions the spec
defines (`param make_divisible(v, d) = …`), a loop with a counter (`for j in range(n)`), and
a member spec that is a family with other values (`use efficientnet`). Whole numbers stay
exact, a float is never silently a size, and every evaluation is bounded.
"""

from __future__ import annotations

import math

import pytest
from click.testing import CliRunner

import archcalc
from archcalc import load_text
from archcalc.cli import cli
from archcalc.errors import SpecError, UsageError
from archcalc.lang.expr import MAX_BITS, ExprError, define, evaluate, substitute

runner = CliRunner()


def error_of(text: str) -> str:
    with pytest.raises(SpecError) as info:
        load_text(text, "t.arch")
    return str(info.value)


# -- the evaluator ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, value", [
    ("c // 4", 18), ("c / 4", 18), ("c / 5", 14.4), ("c % 5", 2), ("2 ** 10", 1024), ("2 ** -1", 0.5),
    ("c * 1.0", 72.0), ("0.2 * 3 / 16", 0.2 * 3 / 16),
    ("max(8, int(c * w + 4) // 8 * 8)", 80), ("min(3, 1, 2)", 1), ("abs(-3)", 3),
    ("round(2.5)", 2), ("round(3.5)", 4), ("round(2.675, 2)", 2.67),  # half to even, as Python and torch
    ("floor(-1.5)", -2), ("ceil(2 * 1.1)", 3), ("int(-1.5)", -1), ("float(3)", 3.0),
    ("log(8, 2)", 3.0), ("log(1)", 0.0), ("sqrt(16)", 4.0),
    ("2 if s == 1 else 1", 2), ("1 if s != 1 else 0", 0), ("s == 1 and c > 3", 1), ("s > 1 or c < 3", 0),
    ("not s", 0), ("1 <= s < 3", 1), ("c > 100", 0),
    ("1 / 0 if 0 else 5", 5),  # only the branch taken is evaluated
])
def test_arithmetic(text: str, value: float) -> None:
    result = evaluate(text, {"c": 72, "w": 1.1, "s": 1})
    assert result == value and type(result) is type(value)


@pytest.mark.parametrize("text, message", [
    ("c.real", "'c.real' is not arithmetic over the spec's parameters"),
    ("__import__('os')", "is not arithmetic over the spec's parameters"),
    ("c[0]", "is not arithmetic"),
    ("'a'", "is not arithmetic"),
    ("lambda: 1", "is not arithmetic"),
    ("open(1)", "'open' is not a function archcalc evaluates in 'open(1)'"),
    ("max(1)", "max() takes 2 or more arguments, got 1 in 'max(1)'"),
    ("round(1, 2, 3)", "round() takes 1 to 2 arguments, got 3"),
    ("max(*c)", "is not arithmetic"),
    ("x", "unknown name 'x' in 'x' (names: c)"),
    ("round", "unknown name 'round' in 'round' (names: c); round(…) is a function"),
    ("1 / 0", "division by zero in '1 / 0'"), ("c // 0", "division by zero"), ("c % 0", "division by zero"),
    ("0 ** -1", "division by zero"),
    ("10 ** 65", "exponent too large in '10 ** 65'"),
    ("(2 ** 64) ** 64 * 2 ** 64", f"is too large (more than 2**{MAX_BITS})"),
    ("1e308 * 10", "is not a finite number"), ("1e300 ** 2", "is too large"),
    ("(-8) ** 0.5", "raises a negative number to a fractional power"),
    ("log(0)", "log(0) is not defined"), ("sqrt(-1)", "sqrt(-1) is not defined"),
    ("-" * 1990 + "1", "nests too deeply"),
    ("1 +" * 700 + "1", "characters is too long"),
    ("((1)", "is not an arithmetic expression"),
])
def test_arithmetic_errors(text: str, message: str) -> None:
    with pytest.raises(ExprError) as info:
        evaluate(text, {"c": 72})
    assert message in str(info.value)


def test_round_half_to_even_is_torchs() -> None:
    assert [round(x) for x in (0.5, 1.5, 2.5)] == [0, 2, 2] == [evaluate(f"round({x})", {}) for x in (0.5, 1.5, 2.5)]
    assert evaluate("ceil(0.1 + 0.2)", {}) == math.ceil(0.1 + 0.2) == 1


def test_sizes_are_whole_numbers_never_silently_floats() -> None:
    env = {"c": 72, "w": 1.1}
    assert substitute("conv3-{c*2}/s{c//36}", env) == "conv3-144/s2"
    with pytest.raises(ExprError) as info:
        substitute("conv3-{c*w}", env)
    assert str(info.value) == ("'c*w' is 79.2, not a whole number: convert it with int(…), round(…), "
                               "floor(…) or ceil(…)")
    with pytest.raises(ExprError):
        substitute("conv3-{c*1.0}", env)  # 72.0 is a float too: the spec says how to round
    assert substitute("p={0.1*c}", env, whole=False) == "p=7.2"  # a float argument is written exactly


def test_spec_functions_are_closed_and_bounded() -> None:
    nearest = define("nearest", ("v", "d"), "max(d, int(v + d / 2) // d * d)", {})
    md = define("make_divisible", ("v", "d"),
                "nearest(v, d) + d if nearest(v, d) < 0.9 * v else nearest(v, d)", {"nearest": nearest})
    env = {"nearest": nearest, "make_divisible": md}
    # torchvision's _make_divisible: 72//4 = 18 → 16 < 0.9·18 → 24; 30 → 32; 4 → 8; 123.2 → 120; 211.2 → 208
    assert [evaluate(f"make_divisible({v}, 8)", env) for v in (18, 30, 4, 123.2, 211.2)] == [24, 32, 8, 120, 208]
    with pytest.raises(ExprError, match="takes 2 arguments, got 1"):
        evaluate("make_divisible(3)", env)
    with pytest.raises(ExprError, match="uses the function nearest as a number"):
        evaluate("nearest + 1", env)
    chain = {"f0": define("f0", ("v",), "v + 1", {})}
    for i in range(1, 40):  # each calls the one before twice: 2**40 calls unless results are kept
        chain[f"f{i}"] = define(f"f{i}", ("v",), f"f{i - 1}(v) + f{i - 1}(v)", chain)
    assert evaluate("f39(1)", chain) == 2 ** 40


@pytest.mark.parametrize("body, message", [
    ("g(v)", "f() calls 'g', which is not a function defined before it"),
    ("f(v)", "f() calls itself"),
    ("v + w", "unknown name 'w' in f() (names: v)"),
    ("v +", "is not an arithmetic expression"),
])
def test_spec_function_errors(body: str, message: str) -> None:
    with pytest.raises(ExprError, match=message.replace("(", r"\(").replace(")", r"\)")):
        define("f", ("v",), body, {})


# -- in a spec -------------------------------------------------------------------------------

MAKE_DIVISIBLE = ("param width=1.0\n"
                  "param nearest(v, d) = max(d, int(v + d / 2) // d * d)\n"
                  "param make_divisible(v, d) = nearest(v, d) + d if nearest(v, d) < 0.9 * v else nearest(v, d)\n"
                  "input 3x8x8\n")


def test_functions_and_floats_in_a_spec() -> None:
    text = MAKE_DIVISIBLE + "conv3-{make_divisible(112 * width, 8)}, conv(k=1, c=make_divisible(18, 8))\n"
    assert [n.shape[0] for n in load_text(text) if n.type == "conv"] == [112, 24]
    wider = archcalc.load(text, params={"width": 1.1})
    assert [n.shape[0] for n in wider if n.type == "conv"] == [120, 24]
    dropout = load_text("param k=3\ninput 3x8x8\ndropout(p={0.1*k}), dropout(p=0.05*k)\n")
    assert [n.args["p"] for n in dropout if n.type == "dropout"] == [0.1 * 3, 0.05 * 3]


def test_a_function_is_not_a_parameter_to_set() -> None:
    with pytest.raises(UsageError) as info:
        archcalc.load(MAKE_DIVISIBLE + "conv3-8\n", params={"nearest": 3})
    assert str(info.value) == "'nearest' is a function of <spec>, not a parameter to set"
    with pytest.raises(UsageError) as info:
        archcalc.load(MAKE_DIVISIBLE + "conv3-8\n", params={"depth": 3})
    assert str(info.value) == "<spec> has no parameter 'depth' (its parameters: width=1.0)"


@pytest.mark.parametrize("text, message", [
    ("input 3x8x8\nconv3-{4*0.5}\n",
     "t.arch:2:1: error: '4*0.5' is 2.0, not a whole number: convert it with int(…), round(…), floor(…) or ceil(…)"),
    ("param w=0.5\ninput 3x8x8\nconv(c=4*w, k=3)\n",
     "t.arch:3:1: error: argument 'out_channels' of 'conv' must be a whole number, not '2.0'"),
    ("param f(v) = g(v)\ninput 3x8x8\nconv3-8\n",
     "t.arch:1:14: error: f() calls 'g', which is not a function defined before it (functions: min, max, abs, "
     "int, float, round, floor, ceil, log, sqrt)"),
    ("param f(v, v) = v\ninput 3x8x8\nconv3-8\n", "t.arch:1:7: error: 'f(v, v)' is not a function header"),
    ("param max(v) = v\ninput 3x8x8\nconv3-8\n",
     "t.arch:1:16: error: a function named 'max' would hide archcalc's max()"),
    ("param f(v) = v\ninput 3x8x8\nconv3-{f(1, 2)}\n", "t.arch:3:1: error: f() takes 1 argument, got 2 in 'f(1, 2)'"),
])
def test_errors_in_a_spec_point_at_it(text: str, message: str) -> None:
    assert error_of(text).splitlines()[0] == message


def test_a_float_for_a_whole_number_says_how_to_convert() -> None:
    assert error_of("param w=0.5\ninput 3x8x8\nconv(c=4*w, k=3)\n").splitlines()[-1] == (
        "  a float where a whole number is needed: convert it with int(…), round(…), floor(…) or ceil(…)")


def test_a_product_in_braces_is_not_a_repeat() -> None:
    text = "param c=4\ninput 3x8x8\nconv1-{2 * c}, conv1-{c * 3} x2\n"
    assert [n.shape[0] for n in load_text(text) if n.type == "conv"] == [8, 12, 12]


# -- loops -----------------------------------------------------------------------------------

def test_a_loop_gives_each_pass_its_counter() -> None:
    text = ("input 3x8x8\n"
            "block b(c, i): conv3-{c}, stochastic-depth(p={0.1 * i})\n"
            "b(4, i=j) for j in range(1, 4)\n"
            "conv1-{2 * k + 2} for k in range(3)\n"
            "relu for k in range(0)\n")  # no passes: nothing
    g = load_text(text)
    assert [n.args["p"] for n in g if n.type == "stochastic-depth"] == [0.1 * 1, 0.1 * 2, 0.1 * 3]
    assert [n.shape[0] for n in g if n.type == "conv"][3:] == [2, 4, 6]
    assert g.output.type == "conv"
    assert [n.text for n in g if n.type == "stochastic-depth"][1] == "stochastic-depth(p=0.2)"


@pytest.mark.parametrize("text, message", [
    ("input 3x8x8\nconv3-4 for j in range(2) x3\n",
     "t.arch:2:28: error: an item is repeated either by a count or by a loop, not both"),
    ("input 3x8x8\nconv3-4 for j in rang(2)\n", "t.arch:2:9: error: malformed loop"),
    ("input 3x8x8\nconv3-4 for j in range(1, 2, 3)\n", "t.arch:2:8: error: range takes one or two values, got 3"),
    ("param j=2\ninput 3x8x8\nconv3-4 for j in range(2)\n",
     "t.arch:3:13: error: 'j' is already a parameter here: name the loop's counter otherwise"),
    ("input 3x8x8\nconv3-4 for j in range(2.5)\n", "t.arch:2:24: error: range's value 2.5 is not a whole number"),
    ("input 3x8x8\nconv3-4 for j in range(100000)\n", "t.arch:2:8: error: the loop runs 100,000 times"),
    ("input 3x8x8\n@input for j in range(2)\n", "t.arch:2:7: error: a node reference cannot be repeated"),
])
def test_loop_errors(text: str, message: str) -> None:
    assert error_of(text).splitlines()[0] == message


def test_a_loop_is_bounded_by_the_layer_limit() -> None:
    text = "input 3x8x8\nblock b(n): relu x{n}\nb(10000) for j in range(30)\n"
    assert "the spec expands to more than 250,000 layers" in error_of(text)


# -- families and their members ------------------------------------------------------------------

def test_a_member_is_its_family_with_its_own_values() -> None:
    b1 = archcalc.analyze("efficientnet_b1")
    assert (b1.graph.name, b1.graph.input.shape) == ("efficientnet_b1", (3, 240, 240))
    family = archcalc.analyze("efficientnet_b0", (3, 240, 240), params={"depth": 1.1})
    assert (family.totals.params, family.totals.macs) == (b1.totals.params, b1.totals.macs) == (
        7_794_184, 686_802_832)
    # the caller's values win over the member's, and its input over the member's input line
    b2 = archcalc.analyze("efficientnet_b1", (3, 260, 260), params={"width": 1.1, "depth": 1.2})
    assert b2.graph.input.shape == (3, 260, 260)
    assert b2.totals.params == archcalc.analyze("efficientnet_b0", params={"width": 1.1, "depth": 1.2}).totals.params


def test_a_member_from_the_command_line() -> None:
    result = runner.invoke(cli, ["report", "mobilenet_v3_small", "--set", "width=0.75", "--format", "json"])
    assert result.exit_code == 0, result.output
    with pytest.raises(UsageError) as info:
        archcalc.load("shufflenet_v2_x1_0", params={"c6": 1})
    assert str(info.value) == ("shufflenet_v2_x1_0 has no parameter 'c6' (its parameters: c2=116, c3=232, "
                               "c4=464, c5=1024)")


@pytest.mark.parametrize("text, message", [
    ("use efficientnt\n", "t.arch:1:5: error: no family spec named 'efficientnt'"),
    ("use efficientnet\nparam dept=1.1\n",
     "t.arch:2:12: error: family 'efficientnet' has no parameter 'dept' (its parameters: width=1.0, depth=1.0, "
     "dropout=0.2, stochastic_depth=0.2, bn_eps=1e-5, bn_momentum=0.1, n1=layers(1), n2=layers(2), "
     "n3=layers(2), n4=layers(3), n5=layers(3), n6=layers(4), n7=layers(1), blocks=n1 + n2 + n3 + n4 + n5 + "
     "n6 + n7)"),
    ("use efficientnet\nconv3-8\n",
     "t.arch:2:1: error: a spec with 'use efficientnet' is the family with other values: it holds only name, "
     "input and param lines"),
    ("use efficientnet\nparam f(v) = v\n",
     "t.arch:2:14: error: a spec with 'use efficientnet' sets the family's parameters; it defines no functions"),
    ("use efficientnet\ninput a 3x8x8\n",
     "t.arch:2:1: error: a spec with 'use efficientnet' gives one input shape, as in 'input 3x240x240'"),
    ("use regnet\nuse regnet\n", "t.arch:2:1: error: 'use' is given twice"),
])
def test_member_errors_point_into_the_member(text: str, message: str) -> None:
    assert error_of(text).splitlines()[0] == message


def test_an_unknown_family_lists_the_families() -> None:
    message = error_of("use efficientnt\n")
    assert "expected: one of efficientnet, mobilenet_v3, regnet, shufflenet_v2" in message
    assert message.splitlines()[-1] == "  did you mean 'efficientnet'?"


def test_family_errors_point_into_the_family() -> None:
    # width 0.01 leaves 8 channels everywhere: fine; a width that rounds to no channels is the family's error
    message = error_of("use shufflenet_v2\nparam c2=3\n")
    assert message.startswith("families/shufflenet_v2.arch:")
