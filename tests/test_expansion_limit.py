"""A spec past the expansion limit is refused before it is built, with the limit and the count.

Cheapness is asserted by counting work (layers drafted), not by timing: a million-layer spec
written as repeats drafts no layer at all when the parser can count it, and one repetition's
worth when only expansion can (a repeat count from a block argument)."""

from __future__ import annotations

import importlib

import pytest

from archcalc import load_text
from archcalc.errors import SpecError
from archcalc.lang import MAX_NODES, parse

expand_module = importlib.import_module("archcalc.lang.expand")  # the module: `lang.expand` is its function


@pytest.fixture
def drafted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every layer expansion drafts, counted."""
    made: list[int] = []
    add = expand_module._Expansion._add

    def counting(self: expand_module._Expansion, *args: object, **kwargs: object) -> int:
        made.append(1)
        return add(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(expand_module._Expansion, "_add", counting)
    return made


def error_of(text: str) -> str:
    with pytest.raises(SpecError) as info:
        load_text(text, "t.arch")
    return str(info.value)


MILLION = "input 16x8x8\nblock thousand:\n    conv3-16, relu x999\n\nthousand x1000\n"


def test_a_million_layer_repeat_is_refused_by_the_parser(drafted: list[int]) -> None:
    assert error_of(MILLION) == (
        f"t.arch:5:11: error: the spec expands to at least 1,000,001 layers, more than the limit of {MAX_NODES:,}\n"
        " 5 | thousand x1000\n"
        "   |           ^^^^\n"
        "  here 1,000 layers are repeated 1,000 times"
    )
    assert drafted == []  # not one layer drafted


def test_the_parser_itself_refuses_it() -> None:
    with pytest.raises(SpecError, match="at least 1,000,001 layers"):
        parse(MILLION, "t.arch")


def test_the_count_adds_every_line_and_points_at_the_one_that_crosses(drafted: list[int]) -> None:
    text = ("input 3x8x8\nblock wide:\n    relu x10000\n\nwide x20\nconcat:\n    | wide x5\n    | wide x5\n"
            "wide x20\n")
    message = error_of(text)
    # 1 input + 20·10,000 + (10·10,000 + the concat) + 20·10,000: the second `wide x20` crosses
    assert message.splitlines()[0] == (
        f"t.arch:6:1: error: the spec expands to at least 500,002 layers, more than the limit of {MAX_NODES:,}")
    assert drafted == []


def test_a_count_only_expansion_knows_is_refused_after_one_repetition(drafted: list[int]) -> None:
    text = "input 3x8x8\nblock wide(n):\n    relu x{n}\n\nwide(1000) x1000\n"
    message = error_of(text)
    assert message.splitlines()[0] == (
        f"t.arch:5:13: error: the spec expands to at least 1,000,001 layers, more than the limit of {MAX_NODES:,}")
    assert "each of the 999 repetitions still to go adds 1,000 layers" in message
    assert len(drafted) == 1 + 1000  # the input and one repetition


def test_a_spec_at_the_limit_parses() -> None:
    parse("input 3x8x8\nblock wide:\n    relu x1000\n\nwide x249\nrelu x999\n", "t.arch")  # 250,000 layers


@pytest.mark.parametrize("text", [
    "input 3x8x8\nblock b(n): relu x{n-1}\nb(1) x10000\nb(1) x10000\nb(1) x10000\n",  # empty bodies count 0
    "input 3x8x8\nblock b(n): relu x{n-1}\nb(1) as t\nt x10000\nt x10000\nt x10000\n",  # an empty instance, too
])
def test_what_may_be_empty_counts_nothing(text: str) -> None:
    assert len(load_text(text, "t.arch")) == 1


def test_a_loop_written_on_two_lines_runs_on_both() -> None:
    # the parser parses a repeated line once and moves it: its loop must move with it
    text = "input 3x8x8\nconv3-4 for j in range(2)\nconv3-4 for j in range(2)\n"
    assert len(load_text(text, "t.arch")) == 1 + 2 + 2
    bad = "input 3x8x8\nconv3-4 for j in range(2)\nconv3-4 for j in range(2.5)\nconv3-4 for j in range(2.5)\n"
    assert error_of(bad).splitlines()[0] == "t.arch:3:24: error: range's value 2.5 is not a whole number"
