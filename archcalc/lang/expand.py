"""Expansion: a parsed `Spec` → the layers it describes, in order, as `Draft`s (no shapes yet).

Blocks are called with their arguments, repeats unrolled, branches and residuals
joined, names resolved, and the spec's `hidden-activation` put after every weighted
layer but the last. What depends on shapes (a flatten before an FC on a feature map,
whether an `auto` shortcut is an identity or a projection) is left to the shapes
pass, as a draft that says so. Every expansion is bounded: a spec that would grow
past `MAX_NODES` layers is refused as soon as that is known, never after building it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from operator import itemgetter
from typing import Any, NamedTuple, TypeVar

from archcalc.alike import value_key
from archcalc.errors import Loc, SpecError, UsageError
from archcalc.graph import Draft, DraftGraph, Expectation, Tie
from archcalc.lang.ast import (
    Again,
    BlockDef,
    BodyStatement,
    Branches,
    CallArg,
    InputDecl,
    Item,
    Layer,
    Loop,
    Piece,
    Ref,
    RefCall,
    RefLine,
    Residual,
    Spec,
    Statement,
)
from archcalc.lang.bind import Value, bind, evaluate_piece, parse_shape, spec_batch, spec_params
from archcalc.lang.expr import ExprError, Function, evaluate, substitute
from archcalc.lang.modules import ROOT, SHORTCUT, ModuleTree, counted
from archcalc.lang.parser import MAX_REPEAT
from archcalc.lang.size import MAX_NODES  # bounds every expansion: an error in well under a second
from archcalc.lang.suggest import did_you_mean, layer_kinds, missing_layer, refuse_malformed_token
from archcalc.layers import REGISTRY, LayerType, find
from archcalc.records import record
from archcalc.tensor import Shape

MAX_DEPTH = 64  # block calls inside block calls
MAX_NESTING = 120  # branches, residuals and block calls inside each other, together: Python's stack is finite


INPUT_LAYOUTS = ("channels", "sequence", "plain")


@record
class _Tensor:
    """A block argument given as `@name`: the node the block body reads as `@param`."""

    node: int


def _scope(env: Mapping[str, Any], start: int) -> tuple[dict[str, Any], dict[str, int]]:
    """A block call's numbers (for `{expr}`) and its visible names: `@in` and its tensor arguments."""
    if not env:
        return {}, {"in": start}
    numbers = {k: v for k, v in env.items() if not isinstance(v, _Tensor)}
    return numbers, {"in": start, **{k: v.node for k, v in env.items() if isinstance(v, _Tensor)}}


def _field(name: str, settable: bool = False) -> Any:
    """A `_Open` field read (and, where expansion changes it, written) by its `Draft` name."""
    index = Draft._fields.index(name)

    def put(draft: list[Any], value: Any) -> None:
        draft[index] = value

    return property(itemgetter(index), put if settable else None)


class _Open(list[Any]):
    """A draft while expansion may still change it (its name, its inputs, its location, the last hidden
    activation dropped), frozen into a `Draft` once at the end with its final id and module path: its
    fields in `Draft`'s order in a list, built from a tuple and frozen (`_frozen`) without a Python
    frame, read and written by name. (A 100,000-layer spec builds one per layer: setting a dozen
    attributes a draft and reading them back cost a third of a dense DAG's expansion.)"""

    __slots__ = ()
    id = _field("id")
    type = _field("type")
    args = _field("args")
    inputs = _field("inputs", settable=True)
    text = _field("text")
    loc = _field("loc", settable=True)
    scope = _field("scope")
    name = _field("name", settable=True)
    implicit = _field("implicit")
    shares = _field("shares")
    tie = _field("tie")
    module = _field("module", settable=True)  # its module path, put in once the drafts are final

    @property
    def layer(self) -> LayerType:
        return REGISTRY[self.type]


_NAME, _MODULE = Draft._fields.index("name"), Draft._fields.index("module")
_REFERRED = itemgetter(slice(1, None))  # `@n4` → `n4`
_frozen: Callable[[_Open], Draft] = partial(tuple.__new__, Draft)  # an `_Open` as the `Draft` it holds


@dataclass
class _Instance:
    """A layer or block call named with `as NAME`: what applying it again repeats."""

    name: str
    drafts: list[int]  # the drafts its first application made, in order
    block: BlockDef | None = None  # None: a single layer
    env: dict[str, Any] | None = None  # the block's bound arguments


class _Made(NamedTuple):
    """What a walk of a block call or of a line met again made (`_Expansion._alike`), to make the next
    one alike — the same block or line and values in scope, another input, another place — as copies
    (a residual network calls one block 25,000 times, a chain writes one line 50,000 times): each
    draft's type, arguments, inputs (offsets among these drafts; -1: the walk's input), text, location
    and whether it stands on the walk's line, name and whether it is implicit; the draft handed on (an
    offset, or -1: the input), the (weighted layer, hidden activation) pairs and the module leaves
    (offsets, and their names) among them, and the line the walk was made on (None: a block call's)."""

    drafts: list[tuple[str, Mapping[str, Any], tuple[int, ...], str, Loc | None, bool, str | None, bool]]
    out: int
    pairs: tuple[tuple[int, int], ...]
    leaves: tuple[int, ...]
    names: tuple[str | None, ...]
    line: int | None


@dataclass
class _Replay:
    """A block instance being applied again: each draft it makes shares the next original's weights."""

    owners: list[int]
    done: int = 0


@dataclass
class _Ctx:
    """Where expansion stands: block arguments, visible names, block nesting."""

    env: dict[str, Any] = field(default_factory=dict)
    names: dict[str, int] = field(default_factory=dict)
    scope: tuple[str, ...] = ()
    calls: tuple[str, ...] = ()
    box: int = ROOT  # the module container the layers made here go in (lang/modules.py)


InputShapes = Shape | Mapping[str, Shape]
L = TypeVar("L", Loc, Loc | None)
# a layer token lowered: its type, bound arguments, text as shown, and the call values naming a node or a tie
_Lowered = tuple[LayerType, Mapping[str, Any], str, tuple[tuple[int, str], ...]]
Counts = Callable[[Item, int], int]  # (a repeated item, its count as written) → how many times to expand it


@dataclass
class RepeatRun:
    """One repeat as `expand_repeats` expanded it (the repeated-block summary reads these): the item,
    its count as written, the draft made last before it and the draft each repetition ends on (ids of
    the final drafts)."""

    item: Item
    count: int
    before: int
    ends: list[int] = field(default_factory=list)  # the last draft each repetition made
    outs: list[int] = field(default_factory=list)  # the draft each repetition hands on


def expand(spec: Spec, input_shape: InputShapes | None = None,
           params: Mapping[str, Any] | None = None) -> DraftGraph:
    """The drafts of a spec; `input_shape` overrides its `input` line (a shape, or one per
    input name: `{"left": (3, 64, 64)}`), `params` its `param` values (`{"k": 256}`)."""
    try:
        return _Expansion(spec, params).run(input_shape)
    except SpecError as e:
        raise e.with_source(spec.source) from None


def expand_repeats(spec: Spec, counts: Counts, input_shape: InputShapes | None = None,
                   params: Mapping[str, Any] | None = None) -> tuple[DraftGraph, list[RepeatRun]]:
    """`expand` with every repeat (`xN`, `x{expr}`; not a `for` loop) expanded `counts(item, N)`
    times instead of N, and a record of each repeat expanded: the repeated-block summary
    (archcalc/repeats.py) analyses a spec at a few small counts this way."""
    expansion = _Expansion(spec, params, counts)
    try:
        graph = expansion.run(input_shape)
    except SpecError as e:
        raise e.with_source(spec.source) from None
    return graph, expansion.runs


class _Expansion:
    def __init__(self, spec: Spec, overrides: Mapping[str, Any] | None = None, counts: Counts | None = None) -> None:
        self.spec = spec
        self.counts = counts  # expand_repeats: how many times to expand each repeat
        self.runs: list[RepeatRun] = []
        self.params = spec_params(spec, overrides or {})
        self.batch = spec_batch(self.params, overrides or {})
        self.drafts: list[_Open] = []
        self.hidden = self._hidden_activation()
        self._hidden_args = self.hidden.normalize({}) if self.hidden else {}
        self.hidden_pairs: list[tuple[int, int]] = []  # (weighted layer, its hidden activation)
        self.block_counts: dict[str, int] = {}
        self.expectations: list[tuple[int, Piece]] = []
        self.instances: dict[str, _Instance] = {}  # `as NAME`: weights that can be applied again
        self.bound: dict[Any, dict[str, Any]] = {}  # one binding per distinct way a layer is written
        # a layer token lowered once per text and the values it reads (`_layer_key`), and the last
        # scope dict met with its key (a block body's layers share one; kept, so no other takes its id)
        self.layers: dict[Any, _Lowered] = {}
        self.joins: dict[tuple[str, bool | None], dict[str, Any]] = {}  # `_joined`
        self.scope_key: tuple[dict[str, Any] | None, tuple[Any, ...] | None] = (None, None)
        self.names_read = 0  # how many times a name was looked up (`_ref`): `_alike` asks
        self.made: dict[Any, _Made] = {}  # what walks of block calls and lines met again made, by `_alike_key`
        self.replaying: list[_Replay] = []  # block instances being applied again, innermost last
        self.modules = ModuleTree()
        self.nesting = 0  # how deep expansion is inside branches, residuals and block calls

    # -- entry ------------------------------------------------------------------------
    def run(self, input_shape: InputShapes | None) -> DraftGraph:
        spec = self.spec
        names = self._inputs(input_shape)
        if not spec.body:
            raise SpecError("the spec has no layers", self.drafts[0].loc,
                            expected="layer lines such as 'conv3-64, maxpool'")
        self._statements(spec.body, 0, _Ctx(env=dict(self.params), names=names))
        removed = self._drop_last_hidden_activation()
        name = spec.name or spec.source.filename.rsplit("/", 1)[-1].split(".")[0]
        drafts, new_id = _renumber(self.drafts, removed, self.modules.paths(removed))
        for r in self.runs:
            r.before, r.ends, r.outs = new_id[r.before], [new_id[e] for e in r.ends], [new_id[o] for o in r.outs]
        expectations = tuple(Expectation(new_id[old], p.text, p.loc) for old, p in self.expectations)
        return DraftGraph(tuple(drafts), name, spec.source, expectations, {**self.params, "batch": self.batch},
                          self.modules.block_paths)

    def _inputs(self, override: InputShapes | None) -> dict[str, int]:
        """One input draft per `input` line (ids 0, 1, …), with the caller's shapes put in."""
        decls = self.spec.inputs
        shapes = _overrides(decls, override)
        if not decls:
            if None not in shapes:
                first = self.spec.body[0].loc if self.spec.body else Loc(1, 1)
                raise SpecError("the spec has no input shape", first,
                                expected="a line such as 'input 3x224x224' before the layers")
            return {"input": self._input_draft("input", shapes[None], None, None)}
        names: dict[str, int] = {}
        for d in decls:
            given = shapes.get(d.name, shapes.get(None) if len(decls) == 1 else None)
            shape = given or parse_shape(self._subst(d.shape, _Ctx(env=dict(self.params))), d.shape.loc)
            layout = d.layout.text.lower() if d.layout else None
            if layout is not None and layout not in INPUT_LAYOUTS:
                raise SpecError(f"unknown layout '{d.layout.text}'", d.layout.loc,  # type: ignore[union-attr]
                                expected=", ".join(INPUT_LAYOUTS))
            names[d.name] = self._input_draft(d.name, shape, layout, d.shape.loc)
        return names

    def _input_draft(self, name: str, shape: Shape, layout: str | None, loc: Loc | None) -> int:
        text = ("input " if name == "input" else f"input {name} ") + "x".join(map(str, shape))
        args = {"shape": shape, "name": name, "layout": layout}
        return self._add(REGISTRY["input"], args, [], text, loc, _Ctx())

    def _hidden_activation(self) -> LayerType | None:
        piece = self.spec.hidden_activation
        if piece is None or piece.text.lower() == "none":
            return None
        found = find(piece.text)
        if found is None or found[0].kind != "activation":
            names = sorted(n for n, t in REGISTRY.items() if t.kind == "activation")
            raise SpecError(f"'{piece.text}' is not an activation", piece.loc,
                            expected="one of " + ", ".join(names), hint=did_you_mean(piece.text, names))
        return found[0]

    def _drop_last_hidden_activation(self) -> set[int]:
        """The layer after the last conv/FC gets no hidden activation: its readers read the layer."""
        if not self.hidden_pairs:
            return set()
        weighted, act = self.hidden_pairs[-1]
        for d in self.drafts:
            if act in d.inputs:
                d.inputs = tuple(weighted if x == act else x for x in d.inputs)
        named = self.drafts[act].name
        if named and not self.drafts[weighted].name:  # `head = FC-10`: the name stays with the FC
            self.drafts[weighted].name = named
        return {act}

    # -- statements and items -------------------------------------------------------------
    def _statements(self, stmts: tuple[BodyStatement, ...], cur: int, ctx: _Ctx) -> int:
        for stmt in stmts:
            if isinstance(stmt, RefLine):  # a compact line: made as the statement it stands for
                cur = self._ref_line(stmt, cur, ctx)
                continue
            if isinstance(stmt, Again):
                cur = self._written_again(stmt, cur, ctx)
                continue
            if not stmt.names and stmt.module is None:  # most statements: items in order, nothing named
                cur = self._in_order(stmt, cur, ctx)
                continue
            if len(stmt.items) == 1 and len(stmt.names) == 1 and stmt.module is None and self.counts is None:
                item = stmt.items[0]  # `n5 = add(@n4, @n3)`: one plain layer named, as the general path below
                if type(item.unit) is Layer and item.repeat == 1 and item.loop is None and item.repeat_expr is None:
                    name = stmt.names[0]
                    module = None if self.replaying else name
                    made = self._plain(item, cur, ctx, module)
                    cur = self._unit(item.unit, cur, ctx, module) if made is None else made
                    if stmt.expect is not None:
                        self.expectations.append((cur, stmt.expect))
                    self._name(stmt, name, cur, ctx)
                    continue
            items = stmt.items[:-1] if len(stmt.names) > 1 else stmt.items
            module, inner = self._statement_module(stmt, items, ctx)
            for k, item in enumerate(items):
                cur = self._item(item, cur, inner, module if k == len(items) - 1 else None)
            outs = self._parts(stmt, cur, ctx) if len(stmt.names) > 1 else [cur]
            cur = outs[-1]
            if stmt.expect is not None:
                self.expectations.append((cur, stmt.expect))
            for name, out in zip(stmt.names, outs):
                self._name(stmt, name, out, ctx)
        return cur

    def _ref_line(self, line: RefLine, cur: int, ctx: _Ctx) -> int:
        """`n5 = add(@n4, @n3)` (`RefLine`) made as the statement it stands for is made on the paths above
        (`_plain`), read from its texts: a token lowered before, in a scope without values (a call's
        values could read them), its draft reading the nodes it names. Any other case — its first
        lowering, a name not defined, a block, a repeat's count, the nesting limit — takes those
        paths on that statement, which make it or raise the error."""
        head, name = line.head, line.name
        known = None
        if not (ctx.env or self.counts is not None or self.nesting >= MAX_NESTING or head in self.instances
                or head in self.spec.blocks):
            known = self.layers.get((head, (), len(line.refs)))  # `_layer_key` of a call of references
        if known is not None:
            try:  # (C's loops: no comprehension's frame a line)
                inputs = list(map(ctx.names.__getitem__, map(_REFERRED, line.refs)))
            except KeyError:
                known = None
        if known is None:
            return self._statements((line.statement,), cur, ctx)
        layer = known[0]
        whole = Loc(line.line, line.cols[1], len(line.token))
        node = self._add(layer, known[1], inputs, line.token, whole, ctx, False, None, None,
                         None if self.replaying else name)
        cur = self._hidden_after(layer, node, whole, ctx) if layer.weighted else node
        if name is not None:
            self._name(line, name, cur, ctx)
        return cur

    def _in_order(self, stmt: Statement, cur: int, ctx: _Ctx, line: int | None = None) -> int:
        """A statement that names nothing: its items made in order. `line`: the line where an `Again`
        writes it, on which `_plain` drafts its layers directly (and any other item's are moved)."""
        for item in stmt.items:
            made = self._plain(item, cur, ctx, None, line)
            if made is None:
                before = len(self.drafts)
                made = self._item(item, cur, ctx)
                if line is not None:
                    self._move_drafts(before, stmt.loc.line, line)
            cur = made
        expect = stmt.expect
        if expect is not None:
            if line is not None:
                expect = _moved_piece(expect, stmt.loc.line, line)
            self.expectations.append((cur, expect))
        return cur

    def _written_again(self, again: Again, cur: int, ctx: _Ctx) -> int:
        """A line that repeats an earlier one (`Again`): the earlier line's statement expanded here, and
        every position on that line that it leaves — its drafts', an expectation's, an error's —
        moved to this one. (That line holds this statement alone, so whatever points at it points
        into this statement's text, which stands at the same columns here.)"""
        stmt = again.first
        first, line = stmt.loc.line, again.line
        try:
            if type(stmt) is Statement and not stmt.names and stmt.module is None:  # (as `_statements` asks)
                return self._alike(("line", id(stmt)), ctx, cur, line,  # most: each draft made on this line
                                   lambda: self._in_order(stmt, cur, ctx, line))
            drafts, expectations = len(self.drafts), len(self.expectations)
            cur = self._statements((stmt,), cur, ctx)
        except SpecError as e:
            e.loc = _moved(e.loc, first, line)
            raise
        self._move_drafts(drafts, first, line)
        for k in range(expectations, len(self.expectations)):
            node, piece = self.expectations[k]
            self.expectations[k] = (node, _moved_piece(piece, first, line))
        return cur

    def _move_drafts(self, start: int, first: int, line: int) -> None:
        """The drafts from `start` on: those on line `first` moved to `line`."""
        for k in range(start, len(self.drafts)):  # (not islice: it would walk the drafts before)
            draft = self.drafts[k]
            draft.loc = _moved(draft.loc, first, line)

    def _name(self, stmt: Statement | RefLine, name: str, out: int, ctx: _Ctx) -> None:
        """`name = …`: the statement's draft `out` can be read as `@name` from here on."""
        if name in ctx.names:
            raise SpecError(f"name '{name}' is already defined", stmt.loc)
        ctx.names[name] = out
        draft = self.drafts[out]
        if draft[_NAME] is None:  # (by index: a dense DAG names every draft, and a setter is a Python call)
            draft[_NAME] = name

    def _statement_module(self, stmt: Statement, items: tuple[Item, ...], ctx: _Ctx) -> tuple[str | None, _Ctx]:
        """What a statement's name names (lang/modules.py): its one layer or block call, or a container
        of its layers; the name for its last item and the context its items are made in."""
        if stmt.module is not None:
            name = self._quoted_module(stmt.module, ctx)
        elif len(stmt.names) == 1:
            name = stmt.names[0]
        else:
            return None, ctx
        making = [i for i in items if not isinstance(i.unit, Ref)]
        if not making or self.replaying:
            return None, ctx
        if len(making) == 1 and not isinstance(items[-1].unit, Ref):
            return name, ctx  # one item: it names that (a repeat names each repetition)
        return None, replace(ctx, box=self.modules.box(ctx.box, name))

    @staticmethod
    def _quoted_module(piece: Piece, ctx: _Ctx) -> str:
        """`"block{s}-0"`: a module name as written, its `{expr}` evaluated; any text but a dot."""
        try:
            name = substitute(piece.text, ctx.env, whole=False)
        except ExprError as e:
            raise SpecError(str(e), piece.loc) from None
        if not name or "." in name or name != name.strip():
            raise SpecError(f"'{name}' is not a module name", piece.loc,
                            expected="a name without dots or surrounding spaces, as in '\"block1-0\" = …'")
        return name

    def _parts(self, stmt: Statement, cur: int, ctx: _Ctx) -> list[int]:
        """`q, k, v = chunk(3, dim=-1)`: one draft per name, each a part of the same input."""
        item = stmt.items[-1]
        layer = self._layer_type(item.unit, ctx) if isinstance(item.unit, Layer) else None
        if layer is None or not layer.splits or item.repeat != 1 or item.repeat_expr is not None:
            raise SpecError(f"{len(stmt.names)} names need a layer that makes as many tensors", stmt.loc,
                            expected="'q, k, v = chunk(3, dim=-1)' or 'a, b = split(64, dim=1)'")
        assert isinstance(item.unit, Layer)
        return self._layer(item.unit, cur, ctx, len(stmt.names), stmt.names)

    def _item(self, item: Item, cur: int, ctx: _Ctx, module: str | None = None) -> int:
        if item.loop is not None:
            return self._loop(item, item.loop, cur, ctx, module)
        repeat = item.repeat if item.repeat_expr is None else self._repeat(item.repeat_expr, ctx)
        if repeat != 1 and isinstance(item.unit, Ref):
            raise SpecError("a node reference cannot be repeated", item.repeat_loc)
        if module is not None and repeat != 1 and counted(module, 0) is None:
            ctx, module = replace(ctx, box=self.modules.box(ctx.box, module)), None  # a container of them
        if repeat == 1 and self.counts is None:  # most items: one unit, nothing to count or bound
            return self._unit(item.unit, cur, ctx, module)
        run = None
        if self.counts is not None and repeat > 1:
            run = RepeatRun(item, repeat, len(self.drafts) - 1)
            self.runs.append(run)
            repeat = self.counts(item, repeat)
        for done in range(1, repeat + 1):
            before = len(self.drafts)
            name = counted(module, done - 1) if module is not None and repeat != 1 else module
            cur = self._unit(item.unit, cur, ctx, name)
            if run is not None:
                run.ends.append(len(self.drafts) - 1)
                run.outs.append(cur)
            self._check_growth(len(self.drafts) - before, repeat - done, item)
        return cur

    def _check_growth(self, added: int, left: int, item: Item) -> None:
        """Fail fast on a huge repeat instead of building MAX_NODES drafts first.

        Expansion does not depend on shapes, so every repetition adds exactly as many
        drafts as the first: the total is known after one.
        """
        if left and len(self.drafts) + added * left > MAX_NODES:
            count = len(self.drafts) + added * left
            raise SpecError(f"the spec expands to at least {count:,} layers, more than the limit of {MAX_NODES:,}",
                            item.repeat_loc,
                            hint=f"each of the {left:,} repetitions still to go adds {added:,} "
                                 + ("layer" if added == 1 else "layers"))

    def _loop(self, item: Item, loop: Loop, cur: int, ctx: _Ctx, module: str | None = None) -> int:
        """`item for j in range(start, stop)`: the item once per j, which its arguments may use;
        `module` names each pass as a repeat's repetitions are named (lang/modules.py).

        Each pass may differ in size (j can drive a repeat inside), so only MAX_NODES bounds it."""
        bounds = []
        for piece in loop.bounds:
            value = evaluate_piece(piece, ctx.env)
            if isinstance(value, float) or not isinstance(value, int):
                shown = piece.text if piece.text == repr(value) else f"{piece.text} = {value!r}"
                raise SpecError(f"range's value {shown} is not a whole number", piece.loc,
                                hint="convert it with int(…), round(…), floor(…) or ceil(…)")
            bounds.append(value)
        start, stop = (0, bounds[0]) if len(bounds) == 1 else (bounds[0], bounds[1])
        if stop - start > MAX_REPEAT:
            raise SpecError(f"the loop runs {stop - start:,} times", loop.loc,
                            expected=f"at most {MAX_REPEAT:,} passes")
        name = loop.var.text
        if name in ctx.env:
            raise SpecError(f"'{name}' is already a parameter here: name the loop's counter otherwise",
                            loop.var.loc)
        if module is not None and counted(module, 0) is None:
            ctx, module = replace(ctx, box=self.modules.box(ctx.box, module)), None  # a container of them
        for k, j in enumerate(range(start, stop)):
            cur = self._unit(item.unit, cur, replace(ctx, env={**ctx.env, name: j}),
                             counted(module, k) if module is not None else None)
        return cur

    def _repeat(self, piece: Piece, ctx: _Ctx) -> int:
        """`x{n-1}`: may be 0, so a stage of n blocks can be written `first, rest x{n-1}`."""
        count = evaluate_piece(piece, ctx.env)
        if not isinstance(count, int) or not 0 <= count <= MAX_REPEAT:
            raise SpecError(f"repeat count {piece.text} = {count} is out of range", piece.loc,
                            expected=f"a whole number from 0 to {MAX_REPEAT:,}")
        return count

    def _unit(self, unit: Layer | Ref | Branches | Residual, cur: int, ctx: _Ctx, module: str | None = None) -> int:
        if type(unit) is Ref:
            return self._ref(unit.name, unit.loc, ctx)
        # one level deeper into branches, residuals or blocks: bounded, never a RecursionError
        # (a plain try/finally: a context manager here cost a tenth of a chain's expansion)
        self.nesting += 1
        try:
            if self.nesting > MAX_NESTING:
                raise SpecError(f"the spec nests branches, residuals and block calls more than {MAX_NESTING} "
                                f"levels deep", unit.loc if not isinstance(unit, Layer) else unit.head.loc,
                                expected="a flatter structure")
            if type(unit) is Layer:
                return self._layer(unit, cur, ctx, module=module)[-1]
            if isinstance(unit, Branches):
                return self._branches(unit, cur, ctx, module)
            assert isinstance(unit, Residual)
            return self._residual(unit, cur, ctx, module)
        finally:
            self.nesting -= 1

    def _ref(self, name: str, loc: Loc, ctx: _Ctx) -> int:
        self.names_read += 1
        if name in ctx.names:
            return ctx.names[name]
        raise SpecError(f"no node is named '{name}'", loc, expected="a name defined earlier with 'name = ...'",
                        hint=did_you_mean(name, list(ctx.names)))

    def _branches(self, unit: Branches, cur: int, ctx: _Ctx, module: str | None = None) -> int:
        outs = [self._statements(branch, cur, ctx) for branch in unit.branches]
        return self._add(REGISTRY[unit.kind], self._joined(unit.kind), outs, unit.kind, unit.loc, ctx,
                         module=module)

    def _residual(self, unit: Residual, cur: int, ctx: _Ctx, module: str | None = None) -> int:
        first = len(self.drafts)
        body = self._statements(unit.body, cur, ctx)
        if unit.shortcut == "identity":
            side = cur
        elif unit.shortcut is None or unit.shortcut == "auto":
            # identity or a 1×1 projection, decided once both shapes are known (+ BN if the body uses BN)
            with_bn = any(d.type == "bn" for d in self.drafts[first:])
            shortcut = REGISTRY["auto-shortcut"]
            side = self._add(shortcut, self._joined("auto-shortcut", with_bn), [cur, body], "auto shortcut",
                             unit.loc, ctx, implicit=True, module=SHORTCUT)
        else:
            side = self._statements(unit.shortcut, cur, ctx)
        return self._add(REGISTRY["add"], self._joined("add"), [body, side], "residual add", unit.loc, ctx,
                         module=module)

    def _joined(self, kind: str, bn: bool | None = None) -> Mapping[str, Any]:
        """The arguments of a join expansion puts in (`add`, `concat`, an auto shortcut with or without
        BN): one dict per kind, shared by its drafts as identical layers share theirs."""
        args = self.joins.get((kind, bn))
        if args is None:
            args = self.joins[kind, bn] = REGISTRY[kind].normalize({} if bn is None else {"bn": bn})
        return args

    # -- layers and blocks ----------------------------------------------------------------
    def _layer_type(self, unit: Layer, ctx: _Ctx) -> LayerType | None:
        """The registered layer type a unit names (None for a block or an instance)."""
        head = self._subst(unit.head, ctx)
        if head in self.spec.blocks or head in self.instances:
            return None
        found = find(head)
        return found[0] if found else None

    def _layer(self, unit: Layer, cur: int, ctx: _Ctx, parts: int = 1, module: str | tuple[str, ...] | None = None
               ) -> list[int]:
        """The drafts of one layer token (several for a split into named parts); `module` names its
        module (a tuple: one name per part)."""
        head = unit.head.text if "{" not in unit.head.text else self._subst(unit.head, ctx)
        if head in self.instances:
            return [self._again(self.instances[head], unit, cur, ctx)]
        if head in self.spec.blocks:
            name = module if isinstance(module, str) else None
            return [self._named(unit, ctx, lambda: self._block(self.spec.blocks[head], unit, cur, ctx, name))]
        whole = _whole(unit)
        literal = "{" not in unit.text and not (ctx.env and unit.call)  # it reads no value in scope
        key = self._layer_key(unit, ctx, literal)
        known = self.layers.get(key) if key is not None else None
        if known is None:
            known = self._lower(unit, head, ctx, whole)
            if key is not None:
                self.layers[key] = known
        layer, args, text, links = known
        if literal:  # the key left out the names it refers to: its own text, its own names
            text = unit.text
        inputs, tie = self._links(unit, links, literal, [cur] if layer.max_inputs != 0 else [], ctx)
        if parts > 1:
            names = module if isinstance(module, tuple) else (None,) * parts
            return [self._add(layer, {**args, "part": i, "parts": parts}, inputs, text, whole, ctx, module=names[i])
                    for i in range(parts)]
        name = module if isinstance(module, str) else None
        if unit.instance is None:  # most layers: nothing to keep for applying again
            node = self._add(layer, args, inputs, text, whole, ctx, False, None, tie, name)
        else:
            node = self._named(unit, ctx, lambda: self._add(layer, args, inputs, text, whole, ctx, tie=tie,
                                                            module=name))
        return [self._hidden_after(layer, node, whole, ctx) if layer.weighted else node]

    def _plain(self, item: Item, cur: int, ctx: _Ctx, module: str | None = None, line: int | None = None
               ) -> int | None:
        """An item that is one layer token lowered before and reading no value in scope (`relu` on its
        thousandth line, `add(@n4, @n3)`), its draft made here from the lowering: the node it hands on.
        None for any other item, which takes the general path (`_item`): that path's many steps cost
        more than the draft itself, and most items of a long spec are these. `line`: the line an `Again`
        writes it on, where its draft stands (else its own)."""
        unit = item.unit
        if (type(unit) is not Layer or unit.instance is not None or item.repeat != 1 or item.loop is not None
                or item.repeat_expr is not None or self.counts is not None or self.nesting >= MAX_NESTING):
            return None  # (at the nesting limit the general path refuses the layer)
        head = unit.head.text
        if "{" in unit.text or (ctx.env and unit.call) or head in self.instances or head in self.spec.blocks:
            return None
        known = self.layers.get(self._layer_key(unit, ctx, True))
        if known is None:
            return None
        layer, args, _, links = known
        inputs, tie = self._links(unit, links, True, [cur] if layer.max_inputs != 0 else [], ctx)
        whole = _whole(unit) if line is None else Loc(line, unit.head.loc.col, len(unit.text) or 1)
        node = self._add(layer, args, inputs, unit.text, whole, ctx, False, None, tie, module)
        return self._hidden_after(layer, node, whole, ctx) if layer.weighted else node

    def _links(self, unit: Layer, links: tuple[tuple[int, str], ...], literal: bool, inputs: list[int],
               ctx: _Ctx) -> tuple[list[int], Tie | None]:
        """What a lowered token names in the graph, resolved where it stands: its inputs (the nodes its
        call names, `@x`, else `inputs`) and its tie. A `literal` token's lowering was keyed without
        the names: they are read from its own call."""
        if not links:
            return inputs, None
        call: tuple[CallArg, ...] = unit.call  # type: ignore[assignment]  # links index its call
        refs: list[int] = []
        tie = None
        for index, value in links:
            arg = call[index].value
            if literal:
                value = arg.text
            if value[:1] != "@":
                tie = self._tie(value, arg.loc)
            else:
                refs.append(self._ref(value[1:], arg.loc, ctx))
        return refs or inputs, tie

    def _layer_key(self, unit: Layer, ctx: _Ctx, literal: bool) -> Any:
        """What a layer token's lowering depends on besides the graph: its text, and the values in
        scope (parameters, block arguments, loop counters) where it can read them — an `{expr}`, or a
        call's value, which may name a block argument (`conv(c=c)`). None: not to be cached.

        A `literal` token's key leaves out the nodes its call names (`add(@n4, @n3)` and `add(@n9,
        @n8)` bind alike, as the names go to the graph, not to the arguments); `_layer` reads those,
        and the text shown, from the token itself."""
        if literal:
            if unit.call is None:
                return unit.text
            options = tuple([o.text for o in unit.options]) if unit.options else ()
            if type(unit.call) is RefCall:  # every argument names a node: they bind nothing
                return unit.head.text, options, len(unit.call)
            return (unit.head.text, options,
                    tuple([(a.key, None) if a.key is None and a.value.text[:1] == "@" else (a.key, a.value.text)
                           for a in unit.call]))
        scope = self._scope_key(ctx.env)
        return None if scope is None else (unit.text, scope)

    def _scope_key(self, env: dict[str, Any]) -> tuple[Any, ...] | None:
        """The values of a scope as a key: equal only where every value is the same, of the same type
        (`alike.value_key`). Computed once in a row per scope dict (one per block call or loop pass;
        only the last is kept, so that a million block calls keep no million dicts). None where a
        value has no key (then nothing is cached)."""
        last, known = self.scope_key
        if last is env:
            return known
        try:
            # a `param f(v) = …` function by identity: it lives as long as the expansion
            key: tuple[Any, ...] | None = tuple(
                (name, ("function", id(value)) if isinstance(value, Function) or callable(value) else value_key(value))
                for name, value in env.items())
            hash(key)
        except TypeError:
            key = None
        self.scope_key = (env, key)
        return key

    def _lower(self, unit: Layer, head: str, ctx: _Ctx, whole: Loc) -> _Lowered:
        """A layer token's type, its bound arguments and its text as shown, with the call values that
        name a node (`@x`) or a tie (`tie=wte`): (their index in the call, their text)."""
        found = find(head)
        if found is None:
            refuse_malformed_token(head, unit.head.loc)
            kinds = {**layer_kinds(), **dict.fromkeys([*self.spec.blocks, *self.instances], "block")}
            raise SpecError(
                f"unknown layer '{head}'", unit.head.loc,
                expected="a layer such as conv3-64, maxpool, FC-4096 or relu ('archcalc layers' lists them)",
                hint=missing_layer(head) or did_you_mean(head, list(kinds), kinds, token=True),
            )
        layer, spelled = found
        options = [Value(None, self._subst(o, ctx), o.loc) for o in unit.options]
        call: list[Value] = []
        links: list[tuple[int, str]] = []
        for index, arg in enumerate(unit.call or ()):
            value = self._subst(arg.value, ctx, whole=False)
            if arg.key is None and value.startswith("@"):
                self._ref(value[1:], arg.value.loc, ctx)  # a missing name is refused before any binding
                links.append((index, value))
            elif arg.key == "tie":
                self._tie(value, arg.value.loc)
                links.append((index, value))
            else:
                call.append(Value(arg.key, _value(value, ctx), arg.value.loc))
        args = self._bind(layer, spelled, options, call, whole)
        return layer, args, self._text(unit, ctx), tuple(links)

    def _bind(self, layer: LayerType, spelled: dict[str, str], options: list[Value], call: list[Value],
              whole: Loc) -> dict[str, Any]:
        """`bind`, once per distinct spelling: the drafts of identical layers share one arguments dict
        (nobody changes a draft's arguments)."""
        try:
            key: Any = (layer.name, tuple(spelled.items()), tuple([o.value for o in options]),
                        tuple([(v.key, value_key(v.value)) for v in call]))
            hash(key)
        except TypeError:  # an unhashable value: bind it afresh
            return bind(layer, spelled, options, call, whole)
        args = self.bound.get(key)
        if args is None:
            args = self.bound[key] = bind(layer, spelled, options, call, whole)
        return args

    def _hidden_after(self, layer: LayerType, node: int, loc: Loc, ctx: _Ctx) -> int:
        """The spec's hidden activation after a weighted layer (the last one is dropped at the end)."""
        if not layer.weighted or self.hidden is None:
            return node
        act = self._add(self.hidden, self._hidden_args, [node], self.hidden.name, loc, ctx, implicit=True)
        self.hidden_pairs.append((node, act))
        return act

    def _named(self, unit: Layer, ctx: _Ctx, make: Callable[[], int]) -> int:
        """Run `make`; with `as NAME`, keep the drafts it made as an instance to apply again."""
        if unit.instance is None or self.replaying:  # a replay's names are the original's
            return make()
        name = unit.instance.text
        if name in self.instances or name in self.spec.blocks or find(name) is not None:
            what = ("an instance" if name in self.instances else
                    "a block" if name in self.spec.blocks else "a layer type")
            raise SpecError(f"'{name}' is already {what}: name this one otherwise", unit.instance.loc)
        before = len(self.drafts)
        out = make()
        head = self._subst(unit.head, ctx)
        block = self.spec.blocks.get(head)
        env = self._bind_block(block, unit, ctx) if block else None
        self.instances[name] = _Instance(name, list(range(before, len(self.drafts))), block, env)
        return out

    def _again(self, instance: _Instance, unit: Layer, cur: int, ctx: _Ctx) -> int:
        """`NAME` or `NAME(@x)`: the instance's layers once more, on a new input, with its weights."""
        refs = []
        for arg in unit.call or ():
            value = self._subst(arg.value, ctx, whole=False)
            if arg.key is not None or not value.startswith("@"):
                raise SpecError(f"'{instance.name}' applies an instance as it was made: only inputs "
                                f"(@name) may be given", arg.value.loc, expected=f"{instance.name}(@x)")
            refs.append(self._ref(value[1:], arg.value.loc, ctx))
        if unit.options:
            raise SpecError(f"'{instance.name}' takes no options: it applies the instance as it was made",
                            unit.options[0].loc)
        if instance.block is None:
            owner = self.drafts[instance.drafts[0]]
            inputs = refs or ([cur] if owner.layer.max_inputs != 0 else [])
            node = self._add(owner.layer, dict(owner.args), inputs, instance.name, _whole(unit), ctx,
                             shares=self._root(owner.id))
            return self._hidden_after(owner.layer, node, _whole(unit), ctx)
        if len(refs) > 1:
            raise SpecError(f"block instance '{instance.name}' takes one input", unit.call[1].value.loc)  # type: ignore[index]
        start = refs[0] if refs else cur
        block, env = instance.block, instance.env or {}
        count = self.block_counts[block.name] = self.block_counts.get(block.name, 0) + 1
        numbers, names = _scope(env, start)
        inner = _Ctx({**self.params, **numbers}, names, (*ctx.scope, f"{block.name}#{count}"),
                     (*ctx.calls, block.name))
        replay = _Replay(instance.drafts)
        self.replaying.append(replay)
        try:
            out = self._statements(block.body, start, inner)
        finally:
            self.replaying.pop()
        assert replay.done == len(replay.owners), "a replayed block made other drafts than its first call"
        return out

    def _root(self, draft: int) -> int:
        """The draft that owns the weights `draft` uses (itself, unless it shares another's)."""
        while (owner := self.drafts[draft].shares) is not None:
            draft = owner
        return draft

    def _tie(self, value: str, loc: Loc) -> Tie:
        """`tie=wte` (the same weight) or `tie=wte.T` (its transpose): an instance's weight."""
        name, transposed = (value[:-2], True) if value.endswith(".T") else (value, False)
        instance = self.instances.get(name)
        if instance is None or instance.block is not None:
            raise SpecError(f"'{name}' is not a layer named with 'as'", loc,
                            expected="tie=NAME, where an earlier layer is written '… as NAME' "
                                     "(tie=NAME.T for its transpose)",
                            hint=did_you_mean(name, [n for n, i in self.instances.items() if i.block is None]))
        return Tie(self._root(instance.drafts[0]), transposed)

    def _block(self, block: BlockDef, unit: Layer, cur: int, ctx: _Ctx, module: str | None = None) -> int:
        if unit.options:
            raise SpecError(f"block '{block.name}' takes arguments in parentheses, not options",
                            unit.options[0].loc, expected=f"{block.name}(...)")
        if block.name in ctx.calls:
            chain = " → ".join((*ctx.calls, block.name))
            raise SpecError(f"block '{block.name}' calls itself ({chain})", unit.head.loc)
        if len(ctx.calls) >= MAX_DEPTH:
            raise SpecError(f"blocks nest deeper than {MAX_DEPTH}", unit.head.loc)
        env = self._bind_block(block, unit, ctx)
        count = self.block_counts[block.name] = self.block_counts.get(block.name, 0) + 1
        scope = (*ctx.scope, f"{block.name}#{count}")
        box = ctx.box if self.replaying else self.modules.box(ctx.box, module, scope)
        numbers, names = _scope(env, cur)
        inner = _Ctx({**self.params, **numbers}, names, scope, (*ctx.calls, block.name), box)
        if any(type(v) is _Tensor for v in env.values()):  # it reads a node besides its input
            return self._statements(block.body, cur, inner)
        return self._alike(("block", block.name), inner, cur, None, lambda: self._statements(block.body, cur, inner))

    # -- a block call or a line made as an alike one was ---------------------------------------------
    def _alike(self, what: Any, ctx: _Ctx, start: int, line: int | None, walk: Callable[[], int]) -> int:
        """`walk()` — a block call's body or a line met again, in `ctx`, from `start` (on `line`) — or, where
        an alike walk (`what`: the block, or the line's statement; the values in scope — a block's
        arguments among them —, the calls and the nesting of `ctx`) made only drafts and leaves, copies
        of what it made (`_Made`)."""
        key = self._alike_key(what, ctx)
        made = self.made.get(key) if key is not None else None
        if made is not None and len(self.drafts) + len(made.drafts) <= MAX_NODES:  # (past it: the error, walked)
            return self._made_again(made, start, ctx, line)
        before, marks, leaves = len(self.drafts), self._marks(), len(self.modules.boxes[ctx.box].children)
        reads = self.names_read
        out = walk()
        # (a line that reads a name, `@a` or `add(@a, @b)`, may read another node on another line; a
        # block's body reads only its input and its own names)
        if key is not None and self._marks() == marks and (line is None or self.names_read == reads):
            self._keep(key, before, start, out, self.modules.boxes[ctx.box].children[leaves:], line)
        return out

    def _alike_key(self, what: Any, ctx: _Ctx) -> Any:
        """What a walk's drafts depend on besides its input and its place (`_alike`). None: to be walked
        afresh — under a replay or a repeat count, or with a value that has no key."""
        if self.replaying or self.counts is not None:
            return None
        values = self._scope_key(ctx.env) if ctx.env else ()
        return None if values is None else (what, values, ctx.calls, self.nesting)

    def _marks(self) -> tuple[int, ...]:
        """How much expansion has made of what a walk may make besides drafts and leaves."""
        return (len(self.expectations), len(self.instances), sum(self.block_counts.values()),
                len(self.modules.boxes))

    def _keep(self, key: Any, before: int, start: int, out: int, leaves: list[tuple[bool, int, str | None]],
              line: int | None) -> None:
        """Keep what a walk made to make it again (`_made_again`), where its drafts read, outside
        themselves, only its input."""
        drafts = self.drafts[before:]
        if not all(d.shares is None and d.tie is None and all(i >= before or i == start for i in d.inputs)
                   for d in drafts) or not (out >= before or out == start):
            return
        pairs = tuple((w - before, a - before) for w, a in self.hidden_pairs if w >= before)
        rel = [(d.type, d.args, tuple(i - before if i >= before else -1 for i in d.inputs), d.text, d.loc,
                d.loc is not None and d.loc.line == line, d.name, d.implicit) for d in drafts]
        offsets = tuple(draft - before for _, draft, _ in leaves)
        self.made[key] = _Made(rel, out - before if out >= before else -1, pairs, offsets,
                               tuple(name for _, _, name in leaves), line)

    def _made_again(self, made: _Made, start: int, ctx: _Ctx, line: int | None) -> int:
        """A walk made as an alike one made it (`_Made`): its drafts again, ids shifted, on input `start`,
        in `ctx`'s scope and container, those on the walk's line on `line`."""
        base, scope = len(self.drafts), ctx.scope
        append = self.drafts.append
        for k, (type_, args, inputs, text, loc, moved, name, implicit) in enumerate(made.drafts):
            ids = tuple([start if i < 0 else base + i for i in inputs]) if -1 in inputs else tuple(
                map(base.__add__, inputs))  # (most: no comprehension's frame)
            if moved:
                loc = Loc(line, loc.col, loc.width)  # type: ignore[arg-type, union-attr]
            append(_Open((base + k, type_, args, ids, text, loc, scope, name, implicit, None, None, None)))
        self.modules.add_leaves(ctx.box, map(base.__add__, made.leaves), made.names)
        if made.pairs:
            self.hidden_pairs.extend((base + w, base + a) for w, a in made.pairs)
        return start if made.out < 0 else base + made.out

    def _bind_block(self, block: BlockDef, unit: Layer, ctx: _Ctx) -> dict[str, Any]:
        if not block.params and not unit.call:  # `unit`: nothing to bind (a residual network's every call)
            return {}
        env: dict[str, Any] = {}
        params = [name for name, _ in block.params]
        signature = f"{block.name}({', '.join(params)})"
        for i, arg in enumerate(unit.call or ()):
            key = arg.key if arg.key is not None else (params[i] if i < len(params) else None)
            if key is None:
                count = f"{len(params)} argument" + ("" if len(params) == 1 else "s")
                raise SpecError(f"block '{block.name}' takes {count}, got more",
                                arg.value.loc, expected=signature)
            if key not in params:
                raise SpecError(f"block '{block.name}' has no parameter '{key}'", arg.value.loc,
                                expected=signature, hint=did_you_mean(key, params))
            if key in env:
                raise SpecError(f"parameter '{key}' is given twice", arg.value.loc, expected=signature)
            text = self._subst(arg.value, ctx)
            if text.startswith("@"):  # a tensor: the body reads it as @key
                env[key] = _Tensor(self._ref(text[1:], arg.value.loc, ctx))
                continue
            env[key] = evaluate_piece(arg.value, ctx.env)
        for name, default in block.params:
            if name not in env:
                if default is None:
                    raise SpecError(f"block '{block.name}' needs a value for '{name}'", _whole(unit),
                                    expected=signature)
                env[name] = evaluate_piece(default, self.params)
        return env

    # -- drafts -------------------------------------------------------------------------------
    def _add(self, layer: LayerType, args: Mapping[str, Any], inputs: list[int], text: str,
             loc: Loc | None, ctx: _Ctx, implicit: bool = False, shares: int | None = None,
             tie: Tie | None = None, module: str | None = None) -> int:
        draft = len(self.drafts)
        if draft >= MAX_NODES:
            raise SpecError(f"the spec expands to more than the limit of {MAX_NODES:,} layers", loc)
        given, most = len(inputs), layer.max_inputs
        if given < layer.min_inputs or (most is not None and given > most):
            raise SpecError(f"'{layer.name}' takes {_arity(layer)}, got {given}", loc)
        if self.replaying:  # applying a block instance again: the next original's weights
            owners = [r.owners[r.done] for r in self.replaying]
            for r in self.replaying:
                r.done += 1
            assert self.drafts[owners[-1]].type == layer.name, "a replay must repeat its first call"
            shares = self._root(owners[-1])
            tie = self.drafts[owners[-1]].tie
        self.drafts.append(_Open((draft, layer.name, args, tuple(inputs), text, loc, ctx.scope, None, implicit, shares,
                                  tie, None)))
        if shares is None and layer.name != "input":  # a shared layer calls its owner's module
            self.modules.leaf(ctx.box, draft, module)
        return draft

    # -- text helpers -----------------------------------------------------------------------
    def _subst(self, piece: Piece, ctx: _Ctx, whole: bool = True) -> str:
        """`{expr}` in a piece put in: a head, an option or an input shape spells sizes (whole
        numbers); a call value (`whole=False`) may be a float (`dropout(p={0.1*k})`)."""
        if "{" not in piece.text:
            return piece.text
        try:
            return substitute(piece.text, ctx.env, whole)
        except ExprError as e:
            raise SpecError(str(e), piece.loc) from None

    def _text(self, unit: Layer, ctx: _Ctx) -> str:
        """The layer as written, with block arguments put in: `conv(c=2*c)` shows `conv(c=128)`."""
        if "{" not in unit.text and not (ctx.env and unit.call):
            return unit.text
        text = self._subst(unit.head, ctx) + "".join("/" + self._subst(o, ctx) for o in unit.options)
        if unit.call is not None:
            args = [(f"{a.key}=" if a.key else "") + str(_value(self._subst(a.value, ctx, whole=False), ctx))
                    for a in unit.call]
            text += "(" + ", ".join(args) + ")"
        return text


def _renumber(drafts: list[_Open], removed: set[int], modules: Mapping[int, str]) -> tuple[list[Draft], list[int]]:
    """The final drafts: without the removed ones, ids consecutive again, each with its module path;
    old id → new id, by index (a removed draft maps to its input's)."""
    first_removed = min(removed, default=len(drafts))
    # nothing before the first removed draft moves (all of them, most often): their ids stand, as built
    for old, path in modules.items():
        drafts[old][_MODULE] = path  # (by index: a property's setter is a Python call a draft)
    out = list(map(_frozen, drafts[:first_removed]))  # C's loops: no Python frame a draft
    new_id = list(range(first_removed))
    for d in drafts[first_removed:]:
        if d.id in removed:
            new_id.append(new_id[d.inputs[0]])
            continue
        new_id.append(len(out))
        shares = None if d.shares is None else new_id[d.shares]
        tie = None if d.tie is None else Tie(new_id[d.tie.owner], d.tie.transposed)
        out.append(Draft(len(out), d.type, d.args, tuple(new_id[i] for i in d.inputs), d.text, d.loc, d.scope,
                         d.name, d.implicit, shares, tie, d.module))
    return out, new_id


def _overrides(decls: Sequence[InputDecl], given: InputShapes | None) -> dict[str | None, Shape]:
    """The caller's input shapes by input name (None: the one input of a single-input spec)."""
    if given is None:
        return {}
    names = [d.name for d in decls] or ["input"]
    if not isinstance(given, Mapping):
        if len({d.shape.text for d in decls}) > 1:  # one shape serves inputs declared alike (a Siamese pair)
            raise UsageError(f"this spec has {len(names)} inputs of different shapes ({', '.join(names)}): "
                             f"give each its shape, as in --input {names[0]}=3x64x64")
        return {None: tuple(given)} if len(names) == 1 else {name: tuple(given) for name in names}
    unknown = [k for k in given if k not in names]
    if unknown:
        hint = did_you_mean(unknown[0], names)
        raise UsageError(f"the spec has no input '{unknown[0]}' (its inputs: {', '.join(names)})"
                         + (f"; {hint}" if hint else ""))
    return {name: tuple(shape) for name, shape in given.items()}


def _value(text: str, ctx: _Ctx) -> Any:
    """A call argument: arithmetic over block arguments if it is that, else the text."""
    if ctx.env:
        try:
            return evaluate(text, ctx.env)
        except ExprError:
            pass
    return text


def _moved(loc: L, first: int, line: int) -> L:
    """`loc` moved from line `first` to `line` if it stands there."""
    return loc if loc is None or loc.line != first else Loc(line, loc.col, loc.width)


def _moved_piece(piece: Piece, first: int, line: int) -> Piece:
    """`piece` moved from line `first` to `line` if it stands there."""
    return Piece(piece.text, _moved(piece.loc, first, line))


def _whole(unit: Layer) -> Loc:
    """Where the whole token stands: its head's place as wide as its text (the head's own `Loc` where
    the token is its head alone, `relu`: a record is immutable, so one serves both)."""
    head = unit.head.loc
    width = len(unit.text) or 1
    return head if head.width == width else Loc(head.line, head.col, width)


def _arity(layer: LayerType) -> str:
    if layer.max_inputs is None:
        return f"at least {layer.min_inputs} inputs"
    return f"{layer.max_inputs} input" + ("" if layer.max_inputs == 1 else "s")
