"""Graph-building mistakes get one exact message (file:line:col, the line, a caret) and fail fast.

References to names, block calls and their arguments, recursion, merges of tensors that do
not fit, and expansions too large to build: each must raise a `SpecError`, never hang.
"""

from __future__ import annotations

import time

import pytest

from archcalc import load_text
from archcalc.errors import ShapeError, SpecError
from archcalc.lang import MAX_NODES


def error_of(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_text(text, "t.arch")
    return info.value


# -- names ------------------------------------------------------------------------------------


def test_undefined_name_suggests_the_closest() -> None:
    text = "input 3x32x32\nstem = conv3-16, relu\nconv3-16\nadd(@stme, @stem)\n"
    assert str(error_of(text)) == (
        "t.arch:4:5: error: no node is named 'stme'\n"
        " 4 | add(@stme, @stem)\n"
        "   |     ^^^^^\n"
        "  expected: a name defined earlier with 'name = ...'\n"
        "  did you mean 'stem'?"
    )


def test_a_name_is_only_suggested_as_it_is() -> None:
    """A paper token keeps its numbers (covn3-384 → conv3-384); a name does not: `@n9` among n0 and n1
    once drew "did you mean 'n09'?", a name nobody wrote."""
    assert "did you mean" not in str(error_of("input 3x32x32\nn0 = conv3-16\nn1 = add(@n0, @n9)\n"))
    assert "did you mean 'n10'?" in str(error_of("input 3x32x32\nn10 = conv3-16\nadd(@n10, @n1O)\n"))
    assert "did you mean 'conv3-384'?" in str(error_of("input 3x32x32\ncovn3-384\n"))


def test_a_name_defined_later_is_undefined_so_no_cycle_can_be_written() -> None:
    # A reference sees only names defined above it, so every edge points from an earlier node
    # to a later one: the graph is acyclic by construction. Referring ahead is the only way to
    # try to write a cycle, and it is this error.
    text = "input 3x32x32\nconv3-16\nlater = add(@later, @input)\n"
    assert str(error_of(text)) == (
        "t.arch:3:13: error: no node is named 'later'\n"
        " 3 | later = add(@later, @input)\n"
        "   |             ^^^^^^\n"
        "  expected: a name defined earlier with 'name = ...'"
    )


def test_a_name_defined_later_in_a_block_is_undefined() -> None:
    text = "input 3x32x32\nblock b:\n    x = add(@in, @y)\n    y = relu\n\nb\n"
    assert str(error_of(text)) == (
        "t.arch:3:18: error: no node is named 'y'\n"
        " 3 |     x = add(@in, @y)\n"
        "   |                  ^^\n"
        "  expected: a name defined earlier with 'name = ...'"
    )


# -- block arguments --------------------------------------------------------------------------

UNIT = "input 3x32x32\nblock unit(c, s=1):\n    conv3-{c}/s{s}, relu\n\n"


def test_block_called_with_an_unknown_argument() -> None:
    assert str(error_of(UNIT + "unit(16, t=2)\n")) == (
        "t.arch:5:12: error: block 'unit' has no parameter 't'\n"
        " 5 | unit(16, t=2)\n"
        "   |            ^\n"
        "  expected: unit(c, s)"
    )


def test_block_called_without_a_required_argument() -> None:
    assert str(error_of(UNIT + "unit(s=2)\n")) == (
        "t.arch:5:1: error: block 'unit' needs a value for 'c'\n"
        " 5 | unit(s=2)\n"
        "   | ^^^^^^^^^\n"
        "  expected: unit(c, s)"
    )


def test_block_called_with_an_extra_argument() -> None:
    assert str(error_of(UNIT + "unit(16, 2, 3)\n")) == (
        "t.arch:5:13: error: block 'unit' takes 2 arguments, got more\n"
        " 5 | unit(16, 2, 3)\n"
        "   |             ^\n"
        "  expected: unit(c, s)"
    )


def test_block_argument_given_twice() -> None:
    assert str(error_of(UNIT + "unit(16, c=2)\n")) == (
        "t.arch:5:12: error: parameter 'c' is given twice\n"
        " 5 | unit(16, c=2)\n"
        "   |            ^\n"
        "  expected: unit(c, s)"
    )


# -- recursion --------------------------------------------------------------------------------


def test_block_calling_itself() -> None:
    text = "input 3x32x32\nblock loop(c):\n    conv3-{c}, loop(c)\n\nloop(16)\n"
    assert str(error_of(text)) == (
        "t.arch:3:16: error: block 'loop' calls itself (loop → loop)\n"
        " 3 |     conv3-{c}, loop(c)\n"
        "   |                ^^^^"
    )


def test_block_calling_itself_through_another() -> None:
    text = ("input 3x32x32\nblock ping(c):\n    conv3-{c}, pong(c)\n\n"
            "block pong(c):\n    relu, ping(c)\n\nping(16)\n")
    assert str(error_of(text)) == (
        "t.arch:6:11: error: block 'ping' calls itself (ping → pong → ping)\n"
        " 6 |     relu, ping(c)\n"
        "   |           ^^^^"
    )


# -- merges of tensors that do not fit -----------------------------------------------------------


def test_concatenation_of_different_spatial_sizes() -> None:
    text = "input 3x32x32\nconcat:\n    | conv3-16\n    | conv3-16/s2\n"
    e = error_of(text)
    assert isinstance(e, ShapeError)
    assert str(e) == (
        "t.arch:2:1: error: cannot apply 'concat' to 16×32×32 and 16×16×16: cannot concatenate along "
        "channels: the other axes differ (16×32×32, 16×16×16)\n"
        " 2 | concat:\n"
        "   | ^^^^^^"
    )


def test_concatenation_of_named_nodes_of_different_sizes() -> None:
    text = "input 3x32x32\na = conv3-16\nb = @input, maxpool\nconcat(@a, @b)\n"
    assert str(error_of(text)) == (
        "t.arch:4:1: error: cannot apply 'concat(@a, @b)' to 16×32×32 and 3×16×16: cannot concatenate "
        "along channels: the other axes differ (16×32×32, 3×16×16)\n"
        " 4 | concat(@a, @b)\n"
        "   | ^^^^^^^^^^^^^^"
    )


def test_addition_of_different_shapes() -> None:
    text = "input 3x32x32\nadd:\n    | conv3-16\n    | conv3-32\n"
    assert str(error_of(text)) == (
        "t.arch:2:1: error: cannot apply 'add' to 16×32×32 and 32×32×32: cannot add tensors of "
        "different shapes: 16×32×32 + 32×32×32\n"
        " 2 | add:\n"
        "   | ^^^"
    )


def test_residual_whose_body_changes_the_shape_under_an_identity_shortcut() -> None:
    text = "input 3x32x32\nresidual:\n    conv3-16/s2\nshortcut: identity\n"
    assert str(error_of(text)) == (
        "t.arch:2:1: error: cannot apply 'residual add' to 16×16×16 and 3×32×32: cannot add tensors of "
        "different shapes: 16×16×16 + 3×32×32\n"
        " 2 | residual:\n"
        "   | ^^^^^^^^"
    )


# -- expansions too large to build --------------------------------------------------------------


def test_absurd_repeat_count() -> None:
    assert str(error_of("input 3x32x32\nconv3-16 x100000\n")) == (
        "t.arch:2:11: error: repeat count 100000 is out of range\n"
        " 2 | conv3-16 x100000\n"
        "   |           ^^^^^^\n"
        "  expected: a count from 1 to 10,000"
    )


@pytest.mark.parametrize(("count", "shown"), [("100000", "100000"), ("-1", "-1")])
def test_repeat_count_from_a_block_argument_out_of_range(count: str, shown: str) -> None:
    text = f"input 3x8x8\nblock stack(n):\n    relu x{{n}}\n\nstack({count})\n"
    assert str(error_of(text)) == (
        f"t.arch:3:11: error: repeat count {{n}} = {shown} is out of range\n"
        " 3 |     relu x{n}\n"
        "   |           ^^^\n"
        "  expected: a whole number from 0 to 10,000"
    )


def test_nested_repeats_beyond_the_node_bound_fail_at_once() -> None:
    # 10,000 × 10,000 layers: the parser counts them (`wide` once) and refuses the spec before
    # a single layer is built (tests/test_expansion_limit.py counts that).
    text = "input 3x8x8\nblock wide:\n    relu x10000\n\nwide x10000\n"
    start = time.perf_counter()
    message = str(error_of(text))
    assert time.perf_counter() - start < 5
    assert message == (
        f"t.arch:5:7: error: the spec expands to at least 100,000,001 layers, more than the limit of {MAX_NODES:,}\n"
        " 5 | wide x10000\n"
        "   |       ^^^^^\n"
        "  here 10,000 layers are repeated 10,000 times"
    )


def test_repeats_within_the_bound_still_build() -> None:
    text = "input 3x8x8\nblock wide:\n    relu x100\n\nwide x99\n"
    assert len(load_text(text, "t.arch")) == 1 + 99 * 100
