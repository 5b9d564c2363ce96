"""Bad input gets one clear message: file:line:col, the line, a caret, what was expected."""

from __future__ import annotations

import pytest

from archcalc import load_text
from archcalc.errors import ShapeError, SpecError
from archcalc.layers import REGISTRY


def error_of(text: str) -> str:
    with pytest.raises(SpecError) as info:
        load_text(text, "t.arch")
    return str(info.value)


def test_unknown_layer_with_did_you_mean() -> None:
    assert error_of("input 3x32x32\nconv3-64, maxpol\n") == (
        "t.arch:2:11: error: unknown layer 'maxpol'\n"
        " 2 | conv3-64, maxpol\n"
        "   |           ^^^^^^\n"
        "  expected: a layer such as conv3-64, maxpool, FC-4096 or relu ('archcalc layers' lists them)\n"
        "  did you mean 'maxpool'?"
    )


def test_misspelled_layer_keeps_its_numbers_in_the_suggestion() -> None:
    assert error_of("input 3x32x32\ncovn3-384\n").endswith("did you mean 'conv3-384'?")


def test_typod_number_in_a_paper_token() -> None:
    assert error_of("input 3x8x8\nconv3-6q\n") == (
        "t.arch:2:1: error: malformed 'conv' token 'conv3-6q'\n"
        " 2 | conv3-6q\n"
        "   | ^^^^^^^^\n"
        "  expected: conv3-64, conv11-96/s4/p0, conv3-32/g32/nobias, conv(k=1x7, c=192)"
    )


def test_missing_input_line_points_at_the_first_layer() -> None:
    assert error_of("# a comment\nconv3-64\n") == (
        "t.arch:2:1: error: the spec has no input shape\n"
        " 2 | conv3-64\n"
        "   | ^\n"
        "  expected: a line such as 'input 3x224x224' before the layers"
    )


def test_kernel_larger_than_its_input() -> None:
    with pytest.raises(ShapeError) as info:
        load_text("input 3x8x8\nconv11-64/s4/p0\n", "t.arch")
    assert str(info.value) == (
        "t.arch:2:1: error: cannot apply 'conv11-64/s4/p0' to 3×8×8: kernel 11 does not fit in "
        "input size 8 with padding 0 (output would be 0)\n"
        " 2 | conv11-64/s4/p0\n"
        "   | ^^^^^^^^^^^^^^^"
    )


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ("3x0x224", "input shape '3x0x224' has a zero or negative size"),
        ("3x-2x224", "input shape '3x-2x224' has a zero or negative size"),
        ("3xabc", "'3xabc' is not a shape"),
        ("1x2x3x4x5", "input shape '1x2x3x4x5' has 5 axes"),
    ],
)
def test_bad_input_shapes(shape: str, message: str) -> None:
    assert error_of(f"input {shape}\nconv3-8\n").startswith(f"t.arch:1:7: error: {message}\n")


def test_absurd_repeat_count() -> None:
    assert error_of("input 3x32x32\nconv3-8 x1000000\n") == (
        "t.arch:2:10: error: repeat count 1000000 is out of range\n"
        " 2 | conv3-8 x1000000\n"
        "   |          ^^^^^^^\n"
        "  expected: a count from 1 to 10,000"
    )


def test_zero_channels() -> None:
    assert error_of("input 3x32x32\nconv(k=3, c=0)\n").startswith(
        "t.arch:2:1: error: argument 'out_channels' of 'conv' must be a whole number, not '0' (at least 1)"
    )


def test_unknown_option_lists_the_known_ones() -> None:
    assert error_of("input 3x8x8\nconv3-64/q2\n") == (
        "t.arch:2:10: error: unknown option '/q2' for 'conv'\n"
        " 2 | conv3-64/q2\n"
        "   |          ^^\n"
        "  expected: /sN (stride), /pN (padding), /dN (dilation), /gN (groups), /nobias, /bias, /frozen, /same"
    )


def test_groups_must_divide_channels() -> None:
    assert "groups=4 must divide both the input channels (3) and the output channels (64)" in error_of(
        "input 3x8x8\nconv3-64/g4\n"
    )


def test_pool_padding_over_half_the_kernel() -> None:
    assert "padding must be at most half the kernel" in error_of("input 3x8x8\nmaxpool2/p2\n")


def test_unclosed_bracket() -> None:
    assert error_of("input 3x8x8\nconv(k=3, c=8\n").startswith("t.arch:2:")


def test_unknown_hidden_activation() -> None:
    activations = sorted(n for n, t in REGISTRY.items() if t.kind == "activation")
    assert error_of("input 3x8x8\nhidden-activation rleu\nconv3-8\n") == (
        "t.arch:2:19: error: 'rleu' is not an activation\n"
        " 2 | hidden-activation rleu\n"
        "   |                   ^^^^\n"
        f"  expected: one of {', '.join(activations)}\n"
        "  did you mean 'relu'?"
    )


@pytest.mark.parametrize(
    ("layer", "column", "name"),
    [("conv3-64/s2(stride=1)", 20, "stride"), ("conv3-64(c=32)", 12, "out_channels"),
     ("conv(k=3, c=32, kernel=5)", 24, "kernel")],
)
def test_an_argument_given_twice_is_an_error_not_an_override(layer: str, column: int, name: str) -> None:
    assert error_of(f"input 3x8x8\n{layer}\n").startswith(
        f"t.arch:2:{column}: error: argument '{name}' of 'conv' is given twice\n"
    )
