"""The syntax tree of a spec: what the user wrote, before any block is expanded.

Text pieces that may hold `{expr}` placeholders stay text until lowering
substitutes a block's arguments, so every piece keeps its own location.
"""

from __future__ import annotations

from dataclasses import field
from itertools import repeat
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
    branches: tuple[tuple[Statement | RefLine, ...], ...]  # one statement a branch: none is ever an `Again`
    loc: Loc


@record
class Residual:
    """`residual:` body, then an optional `shortcut:`: "auto", "identity", or layers.

    `shortcut` is None where no `shortcut:` line follows; that means auto.
    """

    body: tuple[BodyStatement, ...]
    shortcut: tuple[BodyStatement, ...] | Literal["auto", "identity"] | None
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

    @property
    def first(self) -> Statement:
        """The statement as first written: itself (an `Again`'s is the earlier line's)."""
        return self

    @property
    def statement(self) -> Statement:
        """The statement as parsed on its line: itself (as `RefLine` and `Again` have one)."""
        return self


@record(slots=True)
class RefLine:
    """`n5 = add(@n4, @n3)`, the name optional: one layer token without options whose call names
    nodes alone (a dense DAG's every line, an imported spec's most), held as its texts and columns
    rather than as the thirteen records of its `Statement`. Expansion reads it directly
    (`expand._Expansion._ref_line`); for every other reader it reads as that statement
    (`statement`, `items`, `loc`, …), built afresh on each read."""

    name: str | None
    token: str  # `add(@n4, @n3)`, as written
    head: str  # `add`
    refs: tuple[str, ...]  # `@n4`, `@n3`
    line: int
    cols: tuple[int, ...]  # 1-based: the statement's, the head's, then each reference's

    @property
    def statement(self) -> Statement:
        line, cols = self.line, self.cols
        call = RefCall([CallArg(None, Piece(ref, Loc(line, col, len(ref)))) for ref, col in zip(self.refs, cols[2:])])
        layer = Layer(Piece(self.head, Loc(line, cols[1], len(self.head))), (), call, self.token)
        return Statement((Item(layer),), self.loc, self.names)

    def __eq__(self, other: object) -> bool:
        """Equal to the statement it stands for (the same line parsed in full), as to itself."""
        if isinstance(other, (RefLine, Statement)):
            return self.statement == other.statement
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.statement)

    @property
    def first(self) -> RefLine:
        return self

    @property
    def items(self) -> tuple[Item, ...]:
        return self.statement.items

    @property
    def loc(self) -> Loc:
        return Loc(self.line, self.cols[0], 1)

    @property
    def names(self) -> tuple[str, ...]:
        return () if self.name is None else (self.name,)

    @property
    def expect(self) -> None:
        return None

    @property
    def module(self) -> None:
        return None


@record(slots=True)
class Again:
    """A line written word for word as an earlier line of the same body (a generated spec repeats
    one line thousands of times): that line's statement, shared, and this line's number: one record
    for the ten a line's statement holds. Expansion expands `first` as if written here, every
    position on `first`'s line moved to this one (`expand._Expansion._written_again`). The
    parser makes one only where the statement holds no repeat nor loop: a repeat's item is told
    apart by identity (`repeats.py`), so each line keeps its own. For every other reader it reads
    as the statement written here (`statement`, `items`, `loc`, …), built afresh on each read."""

    first: Statement | RefLine
    line: int

    @property
    def statement(self) -> Statement:
        return on_line(self.first.statement, self.line)

    @property
    def items(self) -> tuple[Item, ...]:
        return self.statement.items

    @property
    def loc(self) -> Loc:
        return Loc(self.line, self.first.loc.col, self.first.loc.width)

    @property
    def names(self) -> tuple[str, ...]:
        return self.first.names

    @property
    def expect(self) -> Piece | None:
        expect = self.first.expect
        return None if expect is None else _piece_on_line(expect, self.line)  # as `statement` moves it

    @property
    def module(self) -> Piece | None:
        module = self.first.module
        return None if module is None else _piece_on_line(module, self.line)


# what a body holds: a statement a line, compact or not, or an earlier line's met again
BodyStatement = Statement | RefLine | Again


@record
class BlockDef:
    name: str
    params: tuple[tuple[str, Piece | None], ...]
    body: tuple[BodyStatement, ...]
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
    body: tuple[BodyStatement, ...] = ()
    comments: tuple[str, ...] = ()
    # `param k=192`: name and default, in order; `param f(v, d) = …` defines a function
    params: tuple[tuple[str, Piece | FunctionDef], ...] = ()
    uses: Piece | None = None  # `use efficientnet`: this spec is that family with its own params


# -- a statement moved to another line --------------------------------------------------


def on_line(stmt: Statement, number: int) -> Statement:
    """The same statement written on another line: every position moved to that line (the records
    rebuilt directly, without helpers: the parser calls it once a line where a line repeats an earlier
    one's repeat or loop)."""
    loc = stmt.loc
    if loc.line == number:
        return stmt
    items = tuple(map(_item_on_line, stmt.items, repeat(number)))  # (map: no comprehension's frame per line)
    if stmt.expect is None and stmt.module is None:  # most lines
        return Statement(items, Loc(number, loc.col, loc.width), stmt.names)
    return Statement(items, Loc(number, loc.col, loc.width), stmt.names,
                     None if stmt.expect is None else _piece_on_line(stmt.expect, number),
                     None if stmt.module is None else _piece_on_line(stmt.module, number))


def _piece_on_line(p: Piece, number: int) -> Piece:
    return Piece(p.text, Loc(number, p.loc.col, p.loc.width))


def _item_on_line(item: Item, number: int) -> Item:
    u = item.unit
    if type(u) is Layer:
        h = u.head
        head = Piece(h.text, Loc(number, h.loc.col, h.loc.width))
        if not u.options and u.call is None and u.instance is None:  # most tokens: a head alone
            unit: Layer | Ref = Layer(head, (), None, u.text)
        else:
            options = tuple([_piece_on_line(o, number) for o in u.options]) if u.options else ()
            # RefCall.of: a call of references alone stays one on every line (expansion keys it so)
            call = None if u.call is None else RefCall.of([CallArg(a.key, _piece_on_line(a.value, number))
                                                          for a in u.call])
            instance = None if u.instance is None else _piece_on_line(u.instance, number)
            unit = Layer(head, options, call, u.text, instance)
    else:
        assert isinstance(u, Ref), "a one-line statement holds layers and references only"
        unit = Ref(u.name, Loc(number, u.loc.col, u.loc.width))
    if item.repeat_loc is None and item.loop is None:  # repeat_expr has a repeat_loc
        return Item(unit, item.repeat)
    repeat_loc = None if item.repeat_loc is None else Loc(number, item.repeat_loc.col, item.repeat_loc.width)
    repeat_expr = None if item.repeat_expr is None else _piece_on_line(item.repeat_expr, number)
    lp = item.loop
    loop = None if lp is None else Loop(_piece_on_line(lp.var, number),
                                        tuple([_piece_on_line(b, number) for b in lp.bounds]),
                                        Loc(number, lp.loc.col, lp.loc.width))
    return Item(unit, item.repeat, repeat_loc, repeat_expr, loop)
