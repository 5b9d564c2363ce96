"""The syntax tree of a spec: what the user wrote, before any block is expanded.

Text pieces that may hold `{expr}` placeholders stay text until lowering
substitutes a block's arguments, so every piece keeps its own location.
"""

from __future__ import annotations

from dataclasses import field
from typing import Literal

from archcalc.errors import Loc, Source
from archcalc.records import record


@record(slots=True)
class Piece:
    """A piece of raw text and where it stands."""

    text: str
    loc: Loc


@record(slots=True)
class FunctionDef:
    """`param make_divisible(v, d) = …`: a function of the spec, for its own arithmetic."""

    args: tuple[str, ...]
    body: Piece

    @property
    def text(self) -> str:
        return f"({', '.join(self.args)}) = {self.body.text}"

    @property
    def loc(self) -> Loc:
        return self.body.loc


@record(slots=True)
class CallArg:
    key: str | None
    value: Piece


class RefCall(tuple[CallArg, ...]):
    """A call's arguments when every one is a node reference (`add(@n4, @n3)`): a tuple like any other
    (equal to a tuple of the same arguments) that says so, so that expansion keys the token's lowering
    by its head, options and count of inputs without reading each argument (`expand._layer_key`)."""

    __slots__ = ()

    @staticmethod
    def of(args: list[CallArg]) -> tuple[CallArg, ...]:
        """`args` as a RefCall if each is a positional `@name` (as expansion reads a link), else a tuple."""
        for a in args:
            if a.key is not None or a.value.text[:1] != "@":
                return tuple(args)
        return RefCall(args) if args else ()


@record(slots=True)
class Layer:
    """`conv3-64/s2/nobias`, `conv(k=3, c=64)`, `bottleneck(128, s=2)` or `add(@a, @b)`.

    `instance` names this layer or block call (`conv3-64 as rec`, `tower as siamese`) so that
    writing the name again applies the same weights to another input.
    """

    head: Piece
    options: tuple[Piece, ...] = ()
    call: tuple[CallArg, ...] | None = None
    text: str = ""
    instance: Piece | None = None


@record(slots=True)
class Ref:
    """`@name`: continue from a named node."""

    name: str
    loc: Loc


@record
class Branches:
    """`concat:` or `add:` with one `| ...` line per branch, joined in order."""

    kind: str
    branches: tuple[tuple[Statement, ...], ...]
    loc: Loc


@record
class Residual:
    """`residual:` body, then an optional `shortcut:`: "auto", "identity", or layers.

    `shortcut` is None where no `shortcut:` line follows; that means auto.
    """

    body: tuple[Statement, ...]
    shortcut: tuple[Statement, ...] | Literal["auto", "identity"] | None
    loc: Loc


Unit = Layer | Ref | Branches | Residual


@record(slots=True)
class Loop:
    """`… for j in range(1, n)`: the item once per value of the counter `var`, which its
    arguments may use; `bounds` are range's one or two values (stop, or start and stop)."""

    var: Piece
    bounds: tuple[Piece, ...]
    loc: Loc


@record(slots=True)
class Item:
    unit: Unit
    repeat: int = 1
    repeat_loc: Loc | None = None
    repeat_expr: Piece | None = None  # `x{n-1}` in a block body: counted when the block is called
    loop: Loop | None = None  # `for j in range(n)`: repeated with a counter


@record(slots=True)
class Statement:
    """One line: optional names (`a =`, or `q, k, v =` for a split), then items applied in order."""

    items: tuple[Item, ...]
    loc: Loc
    names: tuple[str, ...] = ()
    expect: Piece | None = None  # `=> 55x55x96, params=34944`: the user's hand calculation
    module: Piece | None = None  # `"block{s}-0" = …`: a quoted module name (no reference), `{expr}` allowed


@record
class BlockDef:
    name: str
    params: tuple[tuple[str, Piece | None], ...]
    body: tuple[Statement, ...]
    loc: Loc


@record
class InputDecl:
    """`input 3x224x224`, `input left 3x105x105` or `input tokens 128 as sequence`."""

    name: str  # 'input' for the unnamed one
    shape: Piece
    layout: Piece | None
    loc: Loc


@record
class Spec:
    source: Source
    name: str | None = None
    inputs: tuple[InputDecl, ...] = ()
    hidden_activation: Piece | None = None
    blocks: dict[str, BlockDef] = field(default_factory=dict)
    body: tuple[Statement, ...] = ()
    comments: tuple[str, ...] = ()
    # `param k=192`: name and default, in order; `param f(v, d) = …` defines a function
    params: tuple[tuple[str, Piece | FunctionDef], ...] = ()
    uses: Piece | None = None  # `use efficientnet`: this spec is that family with its own params
