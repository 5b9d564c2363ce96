"""Expansion makes an item that is a layer token lowered before, reading no value in scope, straight
from its lowering (`expand._Expansion._plain`): for every spec here — the zoo, imported specs, one-layer
lines at the edge of the form, mutated and generated specs — the drafts, or the error with its message
and position, are the ones the general item path makes (issue 18)."""

from __future__ import annotations

import importlib

import pytest

from archcalc import lang
from archcalc.errors import SpecError
from tests.test_fast_paths import LINES, _texts, differing

expansion = importlib.import_module("archcalc.lang.expand")  # the module: `lang.expand` is its function

REPEATED = [  # each token at least twice, so that the second meets its lowering
    "relu\nrelu", "conv3-8, relu\nconv3-8, relu", "a = relu\nb = relu\nadd(@a, @b)\nadd(@b, @a)",
    "w = fc-8 as e\nfc-8(tie=e)\nfc-8(tie=e.T)\nfc-8(tie=e)", "c = conv3-8\nc2 = conv3-8 as s\ns\ns\nconv3-8",
    "block b(c=4):\n    conv3-{c}, relu\n    relu\nb\nb(8)\nrelu", "relu x2\nrelu\nrelu for j in range(2)\nrelu",
    "a = relu\na = relu", "relu\nrelu(@nope)", "add(@in, @in)\nadd(@in, @in)", "relu\nrelu => 3x32x32\nrelu",
    "hidden-activation relu\nconv3-8\nconv3-8\nfc-4\nfc-4", "q, k = chunk(2)\nchunk(2)\nrelu\nrelu",
    "residual:\n    relu\n    relu\nshortcut: identity\nrelu\nrelu", '"m1" = relu\n"m1" = relu\nrelu',
]


def _drafts(text: str) -> object:
    """The expansion of `text` (every draft in full), or the error's message and position."""
    try:
        spec = lang.parse(text, "t.arch")
    except SpecError:
        return "unparsed"
    try:
        return lang.expand(spec)
    except SpecError as e:
        return ("error", e.message, e.loc, e.expected, e.hint)
    except RecursionError:
        return "recursion"


def _both(text: str, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    fast = _drafts(text)
    with monkeypatch.context() as m:
        m.setattr(expansion._Expansion, "_plain", lambda *_: None)
        general = _drafts(text)
    return fast, general


def _specs() -> list[str]:
    texts = _texts()
    texts += [f"input 3x32x32\n{lines}\n" for lines in REPEATED]
    texts += [f"input 3x32x32\n{line}\n{line}\n{line}\n" for line in LINES]
    texts += [f"input 3x32x32\nblock b(c=1):\n    {line}\n    {line}\nb\nb(2)\n" for line in LINES]
    return texts


def test_the_fast_expansion_is_the_general_one(monkeypatch: pytest.MonkeyPatch) -> None:
    differ = differing(_specs(), _both, monkeypatch)
    assert not differ, f"{len(differ)} specs expand otherwise on the fast path, e.g. {differ[0]!r}"


def _nested(blocks: int) -> str:
    """A relu (lowered before, on line 2) inside `blocks` block calls, each around a residual: two
    levels of nesting a block."""
    lines = ["input 3x8x8", "relu", "block c1:", "    residual:", "        relu"]
    for k in range(2, blocks + 1):
        lines += [f"block c{k}:", "    residual:", f"        c{k - 1}"]
    return "\n".join([*lines, f"c{blocks}", ""])


def test_at_the_nesting_limit_the_layer_is_refused_on_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    levels = expansion.MAX_NESTING // 2  # the relu at the limit: one level more is refused
    fast, general = _both(_nested(levels), monkeypatch)
    assert fast == general and isinstance(fast, tuple) and "levels deep" in fast[1] and fast[2].line == 5
    fast, general = _both(_nested(levels - 1), monkeypatch)
    assert fast == general and not isinstance(fast, tuple | str)


def test_the_fast_expansion_takes_the_items_it_is_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the first of identical tokens takes the general path: it is a fast path only if taken."""
    general: list[str] = []
    unit = expansion._Expansion._unit
    monkeypatch.setattr(expansion._Expansion, "_unit", lambda self, u, *a: general.append(u.text) or unit(self, u, *a))
    text = "input 3x8x8\n" + "conv3-8, relu\n" * 50 + "a = relu\n" + "".join(f"n{i} = add(@a, @a)\n" for i in range(50))
    lang.expand(lang.parse(text, "t.arch"))
    assert general == ["conv3-8", "relu", "add(@a, @a)"]
