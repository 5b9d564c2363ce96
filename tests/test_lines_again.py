"""A line that repeats an earlier line of its body word for word is parsed once: the later line is an
`ast.Again` (the first line's statement, shared, and its own number), and expansion moves what it
builds there. Each case here holds that path to the one that rebuilds the statement on every line
(`ast.on_line`, what `parser._shareable` returning False gives): the same drafts, positions,
expectations and errors — message, line:col and caret — on a repeated line's 2nd or 3rd occurrence."""

from __future__ import annotations

import pytest

from archcalc import lang
from archcalc.errors import SpecError
from archcalc.graph import DraftGraph
from archcalc.lang import parser
from archcalc.lang.ast import Again, Spec, on_line
from archcalc.passes.shapes import infer

GOOD = [  # specs whose repeated lines expand without error
    "input 16x8x8\nconv3-16, relu\nconv3-16, relu\nconv3-16, relu\n",
    "input 4x8x8\nconv(k=1, c=4) => 4x8x8\nconv(k=1, c=4) => 4x8x8\n",
    "input 3x4x4\nmaxpool => 3x2x2\nmaxpool => 3x2x2\n",  # (the second expectation is wrong: checked later)
    "input 4x8x8\nrelu\n\"m\" = relu\n\"m\" = relu\n",
    "input 4x8x8\nrelu, conv1-4/s1 ,  bn\nrelu, conv1-4/s1 ,  bn\n",
    "input 4x8x8\na = relu\nadd(@a, @a)\nadd(@a, @a)\nrelu, @a\nrelu, @a\n",
    "name t\ninput 4x8x8\nhidden-activation relu\nFC-16, FC-10\nFC-16, FC-10\n",
    "input 4x8x8\nblock b(c=4):\n    conv1-{c}, relu\n    conv1-{c}, relu\nb\nb(8)\nb\n",
    "input 4x8x8\nblock b:\n    relu\n    relu\nb\nb\nb\n",
    "input 4x8x8\nconv1-4 as c\nc\nc\nc\n",
    "input 4x8x8\nresidual:\n    conv1-4, relu\n    conv1-4, relu\nresidual:\n    conv1-4, relu\n",
    "input 4x8x8\nrelu x2\nrelu x2\nrelu for j in range(2)\nrelu for j in range(2)\n",  # rebuilt: repeats
]

BAD = [  # (spec, the line its first error stands on): each error is raised on a repeated line
    ("input 4x8x8\na = relu\na = relu\n", 3),
    ("input 4x8x8\nconv1-4 as c\nconv1-4 as c\n", 3),
    ("input 3x4x4\nmaxpool\nmaxpool\nmaxpool\n", 4),  # 4 → 2 → 1: the third has nothing to pool
    ("input 3x4x4\nrelu, maxpool\nrelu, maxpool\nrelu, maxpool\n", 4),
    ("input 4x8x8\nblock big:\n    relu x10000\n" + "big\n" * 30, 28),  # past the layer limit on the 25th call
    ("input 4x8x8\nblock b:\n    relu\n    a = relu\n    a = relu\nb\n", 5),
    ("input 4x8x8\nblock b:\n    maxpool\n    maxpool\n    maxpool\n    maxpool\nb\n", 6),
    ("input 4x8x8\nblock b:\n    maxpool\nb\nb\nb\nb\n", 3),  # inside the block: not moved
]


def _graph(text: str) -> DraftGraph:
    return lang.expand(lang.parse(text, "t.arch"))


def _result(text: str) -> object:
    """The drafts, expectations and shapes of a spec, or its first error as the CLI shows it."""
    try:
        graph = _graph(text)
        return graph.drafts, graph.expectations, [n.shape for n in infer(graph)]
    except SpecError as e:
        return "error", str(e), e.loc


def _rebuilt(text: str, monkeypatch: pytest.MonkeyPatch) -> object:
    with monkeypatch.context() as m:
        m.setattr(parser, "_shareable", lambda stmt: False)
        assert not _agains(lang.parse(text, "t.arch", bounded=False))
        return _result(text)


def _agains(spec: Spec) -> list[Again]:
    bodies = [spec.body, *(b.body for b in spec.blocks.values())]
    return [s for body in bodies for s in body if isinstance(s, Again)]


@pytest.mark.parametrize("text", GOOD)
def test_a_line_met_again_expands_as_if_parsed_there(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = _result(text)
    assert shared[0] != "error"  # type: ignore[index]
    assert shared == _rebuilt(text, monkeypatch)


def test_the_drafts_of_a_line_met_again_stand_on_that_line() -> None:
    spec = lang.parse(GOOD[0], "t.arch")
    assert [type(s).__name__ for s in spec.body] == ["Statement", "Again", "Again"]
    drafts = _graph(GOOD[0]).drafts[1:]
    assert [(d.text, d.loc.line, d.loc.col, d.loc.width) for d in drafts if d.loc] == [
        ("conv3-16", 2, 1, 8), ("relu", 2, 11, 4), ("conv3-16", 3, 1, 8), ("relu", 3, 11, 4),
        ("conv3-16", 4, 1, 8), ("relu", 4, 11, 4)]


def test_an_expectation_on_a_line_met_again_stands_on_that_line() -> None:
    graph = _graph(GOOD[1])
    assert [(e.loc.line, e.loc.col) for e in graph.expectations] == [(2, 19), (3, 19)]


@pytest.mark.parametrize(("text", "line"), BAD)
def test_an_error_on_a_line_met_again_points_at_that_line(text: str, line: int,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    assert _agains(lang.parse(text, "t.arch", bounded=False))  # the shared path is taken
    shared = _result(text)
    assert shared[0] == "error" and shared[2].line == line, shared  # type: ignore[index, union-attr]
    assert shared == _rebuilt(text, monkeypatch)


def test_a_line_met_again_reads_as_the_statement_written_there() -> None:
    """Any reader but expansion sees through `Again`: its statement is the line parsed on its own."""
    lines = ["conv3-16, relu", "a = relu => 3x8x8", '"m" = relu', "f(a, k=2) as g", "  relu,   @a"]
    for text in lines:
        indent = len(text) - len(text.lstrip())
        first = parser._statement(parser.Line(text, 3, indent))
        again = Again(first, 9)
        alone = parser._statement(parser.Line(text, 9, indent))
        assert again.statement == on_line(first, 9) == alone, text
        assert (again.items, again.loc, again.names, again.expect, again.module) == (
            alone.items, alone.loc, alone.names, alone.expect, alone.module), text
        assert again.first is first and first.first is first
