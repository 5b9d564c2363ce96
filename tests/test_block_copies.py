"""A block called again with the argument values of an earlier call, or a line met again (`Again`), at
the same depth, is made as a copy of what the earlier walk made, ids shifted and positions moved to
its line (`expand._Expansion._alike`): for every spec here — the zoo, imported, mutated and generated
specs, and blocks and lines at the edge of what may be copied — the drafts, module paths and block
paths, or the error with its message and position, are the ones the statements make when walked each
time (issue 18)."""

from __future__ import annotations

import pytest

from archcalc import lang
from archcalc.errors import SpecError
from archcalc.lang.size import MAX_NODES
from tests.test_fast_expansion import _drafts, _specs, expansion
from tests.test_fast_paths import differing

CALLS = [  # block bodies and calls where a copy could go wrong
    "block u:\n    residual:\n        conv3-8, relu, conv3-8\n    shortcut: identity\nu x3\nu\nu",
    "block u:\n    residual:\n        conv3-8, bn, relu\nu\nu\nu",  # an automatic shortcut, with BN
    "hidden-activation relu\nblock u:\n    conv3-8\n    fc-4\nu\nu\nfc-4",  # hidden activations inside
    "hidden-activation relu\nblock u:\n    conv3-8\nu\nu",  # the last one dropped: in the last copy
    "block u(c=4):\n    conv3-{c}, relu\nu\nu(8)\nu(c=4)\nu(4)\nu(8)",  # argument values: copy per value
    "block u:\n    a = relu\n    b = relu\n    add(@a, @b)\nu\nu\nx = u\ny = u\nadd(@x, @y)",  # names inside, out
    "block u:\n    @in\nu\nu\nrelu",  # a call that makes nothing
    "block v:\n    relu\nblock u:\n    v\n    v\nu\nu\nu",  # calls inside: numbered afresh each call
    "block u:\n    f = conv3-8, relu\nu\nu",  # a named container inside
    "block u:\n    conv3-8 => 8x32x32\nu\nu",  # an expectation inside
    "block u:\n    conv3-8 as k\nu\nu",  # an instance inside (the second call refuses it)
    "w = fc-8 as e\nblock u:\n    fc-8(tie=e)\nu\nu",  # a tie to an instance outside
    "r = relu as s\nblock u:\n    s\n    relu\nu\nu",  # an instance applied inside
    "block u(t):\n    add(@in, @t)\na = relu\nu(@a)\nu(@a)",  # a tensor argument
    "block u:\n    relu\nm1 = u\nm2 = u\n\"q\" = u\nu x2",  # named calls: each its own module name
    "block u:\n    relu, relu\nconcat:\n    | u\n    | u\nu",  # in branches: deeper nesting
    "block u:\n    nope\nu\nu",  # an error on the first call
    "block u(c=1):\n    conv3-{c}\nu(2)\nu(1)\nu(-1)\nu(2)",  # an error on a later call
    "conv3-8, relu\nconv3-8, relu\nconv3-8, relu",  # a chain's lines
    "hidden-activation relu\nconv3-8, fc-4\nconv3-8, fc-4\nconv3-8, fc-4",  # the last activation dropped
    "a = relu\nrelu, @a\nrelu, @a\nrelu, @a",  # a line that reads a name
    "relu => 3x32x32\nrelu => 3x32x32\nrelu => 3x32x32",  # expectations on lines met again
    "relu\nrelu\nrelu(@nope)\nrelu", "conv3-8, nope\nconv3-8, nope",  # errors on lines met again
    "residual:\n    relu, conv3-8\n    relu, conv3-8\nresidual:\n    relu, conv3-8\n    relu, conv3-8",
    "block u(c=1):\n    conv3-{c}, relu\n    conv3-{c}, relu\nu(4)\nu(8)\nu(4)",  # lines in a block, by values
    "param k=4\nconv3-{k}, relu\nconv3-{k}, relu", "add(@in, @in)\nadd(@in, @in)\nadd(@in, @in)",
    "w = fc-8 as e\nfc-8(tie=e)\nfc-8(tie=e)", "r = relu as s\ns, relu\ns, relu",  # ties and instances
    "block u:\n    relu\nu, relu\nu, relu\nu, relu",  # a line that calls a block
    "a = relu\n@a, relu\n@a\n@a, relu\nrelu\n@a, relu",  # a name read, the input where first met again
    "a = relu\nadd(@a, @a), relu\nadd(@a, @a), relu", "a = relu\nrelu(@a)\nrelu(@a)\nrelu(@a)",
    "block u:\n    relu\n    @in, relu\n    @in, relu\nu\nu",  # `@in` read on a line of a body
]


def _both(text: str, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    copied = _drafts(text)
    with monkeypatch.context() as m:
        m.setattr(expansion._Expansion, "_alike_key", lambda *_: None)  # every call walked
        walked = _drafts(text)
    return copied, walked


def test_a_copied_block_call_is_the_walked_one(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [f"input 3x32x32\n{calls}\n" for calls in CALLS] + _specs()
    differ = differing(texts, _both, monkeypatch)
    assert not differ, f"{len(differ)} specs expand otherwise with copied calls, e.g. {differ[0]!r}"


def test_the_layer_limit_is_met_where_walking_meets_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy that would cross the limit is walked, and fails at the draft that crosses it."""
    calls = MAX_NODES // 3 + 1  # the input and this many calls of three layers: the last crosses
    spec = lang.parse("input 3x32x32\nblock u:\n    relu, relu, relu\n" + "u\n" * calls, "t.arch", bounded=False)

    def expanded() -> object:
        with pytest.raises(SpecError) as e:
            lang.expand(spec)
        return e.value.message, e.value.loc

    copied = expanded()
    with monkeypatch.context() as m:
        m.setattr(expansion._Expansion, "_alike_key", lambda *_: None)
        assert expanded() == copied


def test_calls_alike_are_copied(monkeypatch: pytest.MonkeyPatch) -> None:
    """It is a fast path only if it is taken: a block called alike is walked once."""
    walks: list[int] = []
    statements = expansion._Expansion._statements

    def counting(self: object, stmts: tuple[object, ...], cur: int, ctx: object) -> int:
        walks.append(len(stmts))
        return statements(self, stmts, cur, ctx)  # type: ignore[arg-type]

    monkeypatch.setattr(expansion._Expansion, "_statements", counting)
    lang.expand(lang.parse("input 3x8x8\nblock u:\n    conv3-3, relu\nu x100\nu\n", "t.arch"))
    assert len(walks) == 2  # the body, and the block's body once


def test_lines_alike_are_copied(monkeypatch: pytest.MonkeyPatch) -> None:
    """A chain's line met again is walked once, then copied."""
    walks: list[int] = []
    in_order = expansion._Expansion._in_order

    def counting(self: object, *args: object) -> int:
        walks.append(1)
        return in_order(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(expansion._Expansion, "_in_order", counting)
    lang.expand(lang.parse("input 3x8x8\n" + "conv3-3, relu\n" * 50, "t.arch"))
    assert len(walks) == 2  # the first line, and the first met again
