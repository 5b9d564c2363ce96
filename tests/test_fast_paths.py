"""The speed paths of loading a spec give what the general paths give (issue 18).

- The parser reads a one-layer line (`n5 = add(@n4, @n3)`, `conv3-64/s2`) without its general
  splitting (`parser._simple`): for every text here, the syntax tree — or the error, its message and
  position — is the one the general path makes.
- Expansion lowers a layer token once per text and the values it can read (`expand._layer_key`):
  the same text under another `param` value, another block argument, another loop counter or a
  name bound to another node must not reuse an answer.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from archcalc import lang
from archcalc.errors import SpecError
from archcalc.lang import parser
from archcalc.lang.ast import on_line
from archcalc.lang.size import item_loc
from archcalc.passes.shapes import infer
from tests.fuzz import grammar, mutate
from tests.fuzz.corpus import zoo

ROOT = Path(__file__).resolve().parent.parent

LINES = [  # one-layer lines at the edge of the fast path's form, each parsed both ways
    "conv3-64", "conv3-64/s2/nobias", "n5 = add(@n4, @n3)", "x=relu", "f()", "f( a , b )", "f(a,,b)", "f(a,)",
    "f(,a)", "add(@a, x3)", "add(@a, x 3)", "add(@a, *2)", "f(a, for b)", "f(a , for , b)", "former(a)", "f(a for b)",
    "transformer(64)", "a = =b", "a == b", "a = >b", "conv//s2", "conv/", "f(a=>b)", "relu as r", "f(a) as g",
    "conv3-64 x3", "conv3-64 ×3", "conv(k=3, c=64)", "conv(k = 3 , c=64)", "dropout(p=0.5)", "reshape(12, 64, -1)",
    "fc-10(tie=wte.T)", "a = chunk(3, dim=-1)", "q, k = chunk(2)", "p = b(@in)", "p=b(c=1, d=@x)", "×3",
    "f(a)(b)", "f(a) b", "relu relu", "conv3-{c}", "x{n}", "f(=3)", "f(a=)", "f(@)", "f(@ x)", "@a",
    "n = @a", "name2 = FC-4096", "residual", "add", "add:", "1x1", "conv3-64/p=1", "conv3-64/p=1=2",
]


def _both(text: str, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    """The parse of `text` (a tree, or the error's message and position) with and without the fast path."""
    def parse() -> object:
        try:
            return lang.parse(text, "t.arch")
        except SpecError as e:
            return ("error", e.message, e.loc, e.expected, e.hint)
        except RecursionError:  # a bomb the general path refuses elsewhere: alike is all that matters
            return "recursion"

    fast = parse()
    with monkeypatch.context() as m:
        m.setattr(parser, "_simple", lambda line: None)
        general = parse()
    return fast, general


def _texts() -> list[str]:
    texts = [seed.text for seed in zoo()]
    texts += [p.read_text(encoding="utf-8") for p in sorted((ROOT / "tests/reference/imported").glob("*.arch"))]
    texts += [f"input 3x32x32\n{line}\n" for line in LINES]
    texts += [f"input 3x32x32\nblock b(c=1):\n    {line}\nb\n" for line in LINES]
    rng = random.Random(18)
    seeds = [seed.text for seed in zoo() if len(seed.text) < 4000]
    texts += [mutate.mutate(rng, rng.choice(seeds))[0] for _ in range(400)]
    texts += [grammar.spec(rng) for _ in range(200)]
    return texts


def differing(texts: list[str], both: Callable[[str, pytest.MonkeyPatch], tuple[object, object]],
              monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The start of each text whose two readings (`both`: the fast path's, the general one's) differ."""
    return [text[:200] for text in texts if (pair := both(text, monkeypatch))[0] != pair[1]]


def test_the_fast_line_parse_is_the_general_one(monkeypatch: pytest.MonkeyPatch) -> None:
    differ = differing(_texts(), _both, monkeypatch)
    assert not differ, f"{len(differ)} texts parse otherwise on the fast path, e.g. {differ[0]!r}"


def test_the_fast_path_takes_the_lines_it_is_for() -> None:
    """It is a fast path only if it is taken: a named add of two references, a token with options."""
    for text in ("n5 = add(@n4, @n3)", "conv3-64/s2/nobias", "fc(4096)", "x = transformer(64, heads=4)"):
        assert parser._simple(parser.Line(text, 1, 0)) is not None
    for text in ("conv3-64 x3", "a, b = chunk(2)", "relu as r", "add:", "f(g(x))"):
        assert parser._simple(parser.Line(text, 1, 0)) is None


# -- the lowering cache ------------------------------------------------------------------------------


def _shapes(text: str, **params: object) -> list[tuple[str, tuple[int, ...]]]:
    graph = infer(lang.expand(lang.parse(text, "t.arch"), params=params or None))
    return [(n.text, n.shape) for n in graph]


def test_one_text_under_two_block_arguments() -> None:
    text = "input 3x8x8\nblock b(c):\n    conv(k=1, c=c)\nb(4)\nb(6)\nb(c=4)\n"
    assert [s[0] for _, s in _shapes(text)[1:]] == [4, 6, 4]


def test_one_text_under_two_param_values_and_types() -> None:
    text = "param c=4\ninput 3x8x8\nconv(k=1, c=c)\n"
    assert _shapes(text)[-1][1] == (4, 8, 8)
    assert _shapes(text, c=6)[-1][1] == (6, 8, 8)
    floats = "input 3x8x8\nblock b(c):\n    conv(k=1, c=c)\nb(4)\nb(4.0)\n"  # 4 == 4.0: the second is refused
    with pytest.raises(SpecError, match="whole number|integer|float"):
        _shapes(floats)


def test_one_text_under_two_loop_counters() -> None:
    text = "input 3x8x8\nconv(k=1, c={4 + j}) for j in range(3)\n"
    assert [s[0] for _, s in _shapes(text)[1:]] == [4, 5, 6]


def test_one_reference_text_bound_to_two_nodes() -> None:
    """`add(@a, @in)` in a block body names other nodes in each call: references are not cached."""
    text = ("input 3x8x8\nblock b(c):\n    a = conv(k=1, c=c)\n    add(@a, @a)\n"
            "b(4)\nb(6)\n")
    graph = infer(lang.expand(lang.parse(text, "t.arch")))
    adds = [n for n in graph if n.type == "add"]
    assert [graph.node(n.inputs[0]).shape[0] for n in adds] == [4, 6]
    assert adds[0].inputs != adds[1].inputs


def test_a_missing_reference_is_refused_where_it_stands() -> None:
    text = "input 3x8x8\nblock b:\n    add(@in, @x)\nx = relu\nb\n"
    with pytest.raises(SpecError, match="no node is named 'x'") as e:
        lang.expand(lang.parse(text, "t.arch"))
    assert e.value.loc is not None and e.value.loc.line == 3


def test_literal_tokens_that_name_other_nodes() -> None:
    """`add(@x, @y)` and `add(@y, @x)` bind alike but read other inputs, and each shows its own text;
    `concat(@x, @y, dim=0)` and `(…, dim=1)` bind otherwise."""
    text = ("input 4x8x8\nx = conv(k=1, c=4)\ny = conv(k=3, c=4, p=1)\na = add(@x, @y)\nb = add(@y, @x)\n"
            "c = concat(@a, @b, dim=1)\nd = concat(@a, @b, dim=2)\nadd(@c, @c)\nmul(@d, @d)\n")
    graph = infer(lang.expand(lang.parse(text, "t.arch")))
    by_name = {n.name: n for n in graph if n.name}
    x, y = by_name["x"].id, by_name["y"].id
    assert by_name["a"].inputs == (x, y) and by_name["b"].inputs == (y, x)
    assert (by_name["a"].text, by_name["b"].text) == ("add(@x, @y)", "add(@y, @x)")
    assert by_name["c"].shape == (8, 8, 8) and by_name["d"].shape == (4, 16, 8)


def test_a_line_met_again_is_the_line_parsed_afresh() -> None:
    """A line's text parsed once (`parser._statements`): the same text on a later line is the first
    statement moved there (`ast.on_line`), equal to that line parsed on its own, with its own positions."""
    lines = [*LINES, "relu, conv3-64/s2, @a", "a = relu => 3x8x8", '"m" = relu', "conv3-64 x3 , relu",
             "conv3-{c} for j in range(1, 3)", "f(a, k=2) as g", "  relu,   relu"]
    for text in lines:
        indent = len(text) - len(text.lstrip())
        try:
            first = parser._statement(parser.Line(text, 3, indent))
        except SpecError:
            continue
        moved = on_line(first, 9)
        assert moved == parser._statement(parser.Line(text, 9, indent)), text
        assert moved.loc.line == 9 and all(item_loc(i).line == 9 for i in moved.items), text
