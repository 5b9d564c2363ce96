"""A named line whose call reads other nodes (`n5 = add(@n4, @n3)`, the dense DAG's and an imported
spec's normal line) is read straight from one match (`parser._simple_layer`), then expanded without
the general item path: each edge it could get wrong gives the tree, the drafts or the error —
message, position, caret — that the general path gives (issue 18)."""

from __future__ import annotations

import pytest

from archcalc import lang
from archcalc.errors import Loc, SpecError
from archcalc.lang import parser
from archcalc.lang.ast import RefLine
from archcalc.passes.shapes import infer
from tests.test_fast_paths import _both

EDGES = [  # the lines a fast reading of `name = head(@a, @b)` could misread
    "n2 = add(@n1,@n0)", "n2 = add( @n1 , @n0 )", "n2 = add(@n1,\t@n0)", "n2\t=\tadd(@n1, @n0)",
    "n2 = add(@n1, @n0) x3", "n2 = add(@n1, @n0) ×3", "n2 = add(@n1, @n0) as a", "n2 = add(@n1, @n0) for j in range(2)",
    "n2 = add(@n1, x3)", "n2 = add(@n1, x 3)", "n2 = add(@n1, * 2)", "n2 = add(@n1, k= x )", "n2 = add(@n1 as b)",
    "n2 = add(@n1, @n0, )", "n2 = add(@n1,, @n0)", "n2 = add(, @n1)", "n2 = add(@n1, @)", "n2 = add(@ n1)",
    "n2 = add(@n1=3)", "n2 = add(@n1, @n0=1)", "n2 = add(@1n)", "n2 = add(@n1, @nope)", "n2 = add(@n1, @n0",
    "n2 = concat(@n1, @n0, dim=1)", "n2 = concat(@n1, @n0, dim = -1)", "n2 = concat(dim=1, @n1, @n0)",
    "n2 = concat(@n1, @n0, dim==1)", "n2 = concat(@n1, @n0, dim=1=2)", "n2 = concat(@n1, @n0, d=@n1)",
    "n2 = reshape(@n1, 12, -1)", "n2 = add/s2(@n1, @n0)", "n2 = add(@n1, @n0)(@n1)", "n2 = add(@n1, @n0) # c",
    "n2 = add(@n1, @n0) => 4x8x8", "n2 = add(@n1,\u00a0@n0)", "n2 = add(@n1, @n0\u200b)", "n2 = @n1", "n2 = add()",
    "n1 = add(@n1, @n0)", "input = add(@n1, @n0)", "param = add(@n1, @n0)", "n2 = add(@in, @n0)",
]


def _spec(line: str) -> str:
    return f"input 4x8x8\nn0 = conv(k=1, c=4)\nn1 = relu\n{line}\n"


@pytest.mark.parametrize("line", EDGES)
def test_the_fast_reading_is_the_general_one(line: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for text in (_spec(line), f"input 4x8x8\nblock b:\n    n0 = conv(k=1, c=4)\n    n1 = relu\n    {line}\nb\n"):
        fast, general = _both(text, monkeypatch)
        assert fast == general


def _expanded(text: str) -> object:
    """What expansion makes of a spec — the drafts with their shapes, or the error in full."""
    try:
        graph = infer(lang.expand(lang.parse(text, "t.arch")))
    except SpecError as e:
        return ("error", e.message, e.loc, e.expected, e.hint)
    return [(n.type, n.name, n.inputs, n.text, n.loc, n.shape, n.module) for n in graph]


@pytest.mark.parametrize("line", EDGES)
def test_the_fast_expansion_is_the_general_one(line: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _expanded(_spec(line))
    with monkeypatch.context() as m:
        m.setattr(parser, "_simple", lambda line: None)
        general = _expanded(_spec(line))
    assert fast == general


def test_the_reference_line_is_read_from_its_match(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dense DAG's line never reaches the general splitting (`_unit`, `_call_args`)."""
    def refuse(*_: object) -> None:
        raise AssertionError("the general path was taken")

    monkeypatch.setattr(parser, "_unit", refuse)
    monkeypatch.setattr(parser, "_call_args", refuse)
    for line in ("n5 = add(@n4, @n3)", "n5 = add(@n4,@n3)", "c = concat(@a, @b, dim=1)", "relu", "conv3-64/s2"):
        stmt = parser._simple(parser.Line(line, 7, 0))
        assert stmt is not None and stmt.loc.line == 7


def test_an_unknown_reference_is_refused_where_it_stands() -> None:
    with pytest.raises(SpecError, match="no node is named 'n9'") as e:
        lang.expand(lang.parse(_spec("n2 = add(@n1,\t@n9)"), "t.arch"))
    # the tab counts to the next multiple of 4, as everywhere in the parser (the caret follows it)
    assert e.value.loc is not None and (e.value.loc.line, e.value.loc.col, e.value.loc.width) == (4, 17, 3)


def test_a_call_of_references_only_is_marked_alike_on_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """`RefCall` (every argument `@name`) is what both parser paths make, and only there."""
    def calls(text: str) -> list[str]:
        spec = lang.parse(text, "t.arch")
        return [type(s.items[0].unit.call).__name__ for s in spec.body]

    text = _spec("n2 = add(@n1,@n0)\nn3 = add(@n2, @n1) x2\nn4 = concat(@n3, @n2, dim=1)\nn5 = f(k=@n4)\n"
                 "n6 = f(@n4=1)\nn7 = f(b@c)\nn8 = add()")
    fast = calls(text)
    with monkeypatch.context() as m:
        m.setattr(parser, "_simple", lambda line: None)
        assert calls(text) == fast
    assert fast[2:] == ["RefCall", "RefCall", "tuple", "tuple", "RefCall", "tuple", "tuple"]  # `@n4=1`: a link


def test_calls_of_references_bind_by_count_and_head() -> None:
    """A lowering kept for `concat(@a, @b)` serves no `concat(@a, @b, @c)`, `concat(@a, @b, dim=2)` nor
    `add(@a, @b)`; each reads its own inputs."""
    text = ("input 4x8x8\na = conv(k=1, c=4)\nb = conv(k=1, c=4)\nc = concat(@a, @b)\nd = concat(@a, @b, @a)\n"
            "e = concat(@a, @b, dim=2)\nf = concat(@b, @a)\ng = add(@a, @a)\nh = add(@c, @c)\n")
    graph = infer(lang.expand(lang.parse(text, "t.arch")))
    by_name = {n.name: n for n in graph if n.name}
    assert [by_name[k].shape for k in "cdefgh"] == [(8, 8, 8), (12, 8, 8), (4, 16, 8), (8, 8, 8), (4, 8, 8),
                                                    (8, 8, 8)]
    assert by_name["f"].inputs == (by_name["b"].id, by_name["a"].id)


PRIMED = [  # where a line follows one that lowered its token already: `expand._ref_line` makes it
    "n2 = add(@n1, @n0)\n{line}", "n2 = add(@n1, @n0)\nn3 = concat(@n1, @n0)\n{line}",
    "param k=4\nn2 = add(@n1, @n0)\n{line}",  # a value in scope: the general path, always
    "block b:\n    m = add(@in, @in)\n    {line}\nb\n{line}",
    "block b:\n    m = add(@in, @in)\nb as t\nt\nt",  # a block instance applied again (a replay)
]


@pytest.mark.parametrize("line", [*EDGES, "n1 = add(@n1, @n0)", "n2 = add(@n1, @n1, @n0)", "n2 = add(@n1)",
                                  "n9 = add(@n1, @n1)\nn9 = add(@n1, @n1)", "add(@n1, @n0)\nadd(@n1, @n0)"])
@pytest.mark.parametrize("around", PRIMED)
def test_a_reference_line_lowered_before_is_made_as_the_general_path_makes_it(
        line: str, around: str, monkeypatch: pytest.MonkeyPatch) -> None:
    text = _spec(around.replace("{line}", line.replace("\n", "\n    " if around.startswith("block") else "\n")))
    fast = _expanded(text)
    with monkeypatch.context() as m:
        m.setattr(parser, "_simple", lambda line: None)  # no `RefLine` at all
        general = _expanded(text)
    assert fast == general


def test_a_reference_line_lowered_before_is_made_from_its_texts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a line whose token is lowered here the first time is read as the statement it stands for."""
    spec = lang.parse(_spec("n2 = add(@n1, @n0)\nn3 = add(@n2, @n1)\nn4 = add(@n3, @n9)"), "t.arch")
    assert [type(s).__name__ for s in spec.body] == ["Statement", "Statement", "RefLine", "RefLine", "RefLine"]
    built: list[int] = []
    statement = RefLine.statement
    monkeypatch.setattr(RefLine, "statement", property(lambda line: built.append(line.line) or statement.fget(line)))
    with pytest.raises(SpecError, match="no node is named 'n9'") as e:
        lang.expand(spec)
    assert built == [4, 6] and e.value.loc == Loc(6, 15, 3)  # the first lowering, and the missing name


WHOLE = [  # lines `parser._REF_LINE` reads whole, or nearly: each must be the `RefLine` `_SIMPLE` reads
    "n2 = add(@n1, @n0)", "add(@n1, @n0)", "n2 = add(@n1)", "n2=add(@n1,@n0)", "n2 = add( @n1 , @n0 )",
    "n2 = add(@x )", "n2 = add(@as, @for)", "n2 = add(@n1, @x)", "x = add(@x, @as)", "n2 = add-x(@n1, @n0)",
    "n2 = ×(@n1, @n0)", "n2 = add(@n1, @n0, @n1)", "n2 = add(@n1.x, @n0)", "n2 = add(@n1, @n0) x2",
    "n2 = add(@n1, @n0) as r", "for = add(@n1, @n0)", "as = add(@n1, @n0)", "n2 = add(@n1, @n0)\t",
]


@pytest.mark.parametrize("line", WHOLE)
@pytest.mark.parametrize("indent", [0, 4])
def test_the_whole_line_reading_is_the_match_and_loop_one(line: str, indent: int,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    text = " " * indent + line.expandtabs(4).rstrip()
    fast = parser._simple(parser.Line(text, 3, indent))
    monkeypatch.setattr(parser, "_REF_LINE", parser.re.compile(r"(?!)"))  # matches nothing
    general = parser._simple(parser.Line(text, 3, indent))
    assert type(fast) is type(general)
    assert fast == general
    if isinstance(fast, RefLine):
        assert (fast.name, fast.token, fast.head, fast.refs, fast.line, fast.cols) == (
            general.name, general.token, general.head, general.refs, general.line, general.cols)  # type: ignore[union-attr]


def test_the_whole_line_reading_is_taken() -> None:
    for line in ("n5 = add(@n4, @n3)", "add(@a)", "n5 = concat(@n4,@n3)"):
        assert parser._REF_LINE.fullmatch(line) is not None
