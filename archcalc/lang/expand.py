"""Expansion: a parsed `Spec` → the layers it describes, in order, as `Draft`s (no shapes yet).

Blocks are called with their arguments, repeats unrolled, branches and residuals
joined, names resolved, and the spec's `hidden-activation` put after every weighted
layer but the last. What depends on shapes (a flatten before an FC on a feature map,
whether an `auto` shortcut is an identity or a projection) is left to the shapes
pass, as a draft that says so. Every expansion is bounded: a spec that would grow
past `MAX_NODES` layers is refused as soon as that is known, never after building it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from archcalc.errors import Loc, SpecError
from archcalc.graph import Draft, DraftGraph, Expectation
from archcalc.lang.ast import BlockDef, Branches, Item, Layer, Piece, Ref, Residual, Spec, Statement
from archcalc.lang.bind import Value, bind, evaluate_piece, parse_shape, spec_params
from archcalc.lang.expr import ExprError, evaluate, substitute
from archcalc.lang.parser import MAX_REPEAT
from archcalc.lang.suggest import did_you_mean, refuse_malformed_token
from archcalc.layers import REGISTRY, LayerType, find
from archcalc.layers.base import all_names
from archcalc.tensor import Shape

MAX_NODES = 250_000  # bounds every expansion: an error in well under a second, never a hang
MAX_DEPTH = 64


@dataclass
class _Ctx:
    """Where expansion stands: block arguments, visible names, block nesting."""

    env: dict[str, Any] = field(default_factory=dict)
    names: dict[str, int] = field(default_factory=dict)
    scope: tuple[str, ...] = ()
    calls: tuple[str, ...] = ()


def expand(spec: Spec, input_shape: Shape | None = None, params: Mapping[str, Any] | None = None) -> DraftGraph:
    """The drafts of a spec; `input_shape` overrides its `input` line, `params` its `param`
    values (`{"k": 256}`)."""
    try:
        return _Expansion(spec, params).run(input_shape)
    except SpecError as e:
        raise e.with_source(spec.source) from None


class _Expansion:
    def __init__(self, spec: Spec, overrides: Mapping[str, Any] | None = None) -> None:
        self.spec = spec
        self.params = spec_params(spec, overrides or {})
        self.drafts: list[Draft] = []
        self.hidden = self._hidden_activation()
        self.hidden_pairs: list[tuple[int, int]] = []  # (weighted layer, its hidden activation)
        self.block_counts: dict[str, int] = {}
        self.expectations: list[tuple[int, Piece]] = []

    # -- entry ------------------------------------------------------------------------
    def run(self, input_shape: Shape | None) -> DraftGraph:
        spec = self.spec
        shape, loc = self._input_shape(input_shape)
        self._add(REGISTRY["input"], {"shape": shape}, [], "input " + "x".join(map(str, shape)), loc, _Ctx())
        if not spec.body:
            raise SpecError("the spec has no layers", loc, expected="layer lines such as 'conv3-64, maxpool'")
        self._statements(spec.body, 0, _Ctx(env=dict(self.params), names={"input": 0}))
        removed = self._drop_last_hidden_activation()
        name = spec.name or spec.source.filename.rsplit("/", 1)[-1].split(".")[0]
        drafts, new_id = _renumber(self.drafts, removed)
        expectations = tuple(Expectation(new_id[old], p.text, p.loc) for old, p in self.expectations)
        return DraftGraph(tuple(drafts), name, spec.source, expectations)

    def _input_shape(self, override: Shape | None) -> tuple[Shape, Loc | None]:
        piece = self.spec.input
        if override is not None:
            return tuple(override), piece.loc if piece else None
        if piece is None:
            first = self.spec.body[0].loc if self.spec.body else Loc(1, 1)
            raise SpecError("the spec has no input shape", first,
                            expected="a line such as 'input 3x224x224' before the layers")
        return parse_shape(self._subst(piece, _Ctx(env=dict(self.params))), piece.loc), piece.loc

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
        for i, d in enumerate(self.drafts):
            if act in d.inputs:
                self.drafts[i] = replace(d, inputs=tuple(weighted if x == act else x for x in d.inputs))
        named = self.drafts[act].name
        if named and not self.drafts[weighted].name:  # `head = FC-10`: the name stays with the FC
            self.drafts[weighted] = replace(self.drafts[weighted], name=named)
        return {act}

    # -- statements and items -------------------------------------------------------------
    def _statements(self, stmts: tuple[Statement, ...], cur: int, ctx: _Ctx) -> int:
        for stmt in stmts:
            for item in stmt.items:
                cur = self._item(item, cur, ctx)
            if stmt.expect is not None:
                self.expectations.append((cur, stmt.expect))
            if stmt.name is not None:
                if stmt.name in ctx.names:
                    raise SpecError(f"name '{stmt.name}' is already defined", stmt.loc)
                ctx.names[stmt.name] = cur
                if self.drafts[cur].name is None:
                    self.drafts[cur] = replace(self.drafts[cur], name=stmt.name)
        return cur

    def _item(self, item: Item, cur: int, ctx: _Ctx) -> int:
        repeat = item.repeat if item.repeat_expr is None else self._repeat(item.repeat_expr, ctx)
        if repeat != 1 and isinstance(item.unit, Ref):
            raise SpecError("a node reference cannot be repeated", item.repeat_loc)
        for done in range(1, repeat + 1):
            before = len(self.drafts)
            cur = self._unit(item.unit, cur, ctx)
            self._check_growth(len(self.drafts) - before, repeat - done, item)
        return cur

    def _check_growth(self, added: int, left: int, item: Item) -> None:
        """Fail fast on a huge repeat instead of building MAX_NODES drafts first.

        Expansion does not depend on shapes, so every repetition adds exactly as many
        drafts as the first: the total is known after one.
        """
        if left and len(self.drafts) + added * left > MAX_NODES:
            raise SpecError(f"the spec expands to more than {MAX_NODES:,} layers", item.repeat_loc,
                            hint=f"each of the {left:,} repetitions still to go adds {added:,} layers")

    def _repeat(self, piece: Piece, ctx: _Ctx) -> int:
        """`x{n-1}`: may be 0, so a stage of n blocks can be written `first, rest x{n-1}`."""
        count = evaluate_piece(piece, ctx.env)
        if not isinstance(count, int) or not 0 <= count <= MAX_REPEAT:
            raise SpecError(f"repeat count {piece.text} = {count} is out of range", piece.loc,
                            expected=f"a whole number from 0 to {MAX_REPEAT:,}")
        return count

    def _unit(self, unit: Layer | Ref | Branches | Residual, cur: int, ctx: _Ctx) -> int:
        if isinstance(unit, Ref):
            return self._ref(unit.name, unit.loc, ctx)
        if isinstance(unit, Branches):
            return self._branches(unit, cur, ctx)
        if isinstance(unit, Residual):
            return self._residual(unit, cur, ctx)
        return self._layer(unit, cur, ctx)

    def _ref(self, name: str, loc: Loc, ctx: _Ctx) -> int:
        if name in ctx.names:
            return ctx.names[name]
        raise SpecError(f"no node is named '{name}'", loc, expected="a name defined earlier with 'name = ...'",
                        hint=did_you_mean(name, list(ctx.names)))

    def _branches(self, unit: Branches, cur: int, ctx: _Ctx) -> int:
        outs = [self._statements(branch, cur, ctx) for branch in unit.branches]
        return self._add(REGISTRY[unit.kind], {}, outs, unit.kind, unit.loc, ctx)

    def _residual(self, unit: Residual, cur: int, ctx: _Ctx) -> int:
        first = len(self.drafts)
        body = self._statements(unit.body, cur, ctx)
        if unit.shortcut == "identity":
            side = cur
        elif unit.shortcut is None or unit.shortcut == "auto":
            # identity or a 1×1 projection, decided once both shapes are known (+ BN if the body uses BN)
            with_bn = any(d.type == "bn" for d in self.drafts[first:])
            shortcut = REGISTRY["auto-shortcut"]
            side = self._add(shortcut, shortcut.normalize({"bn": with_bn}), [cur, body], "auto shortcut",
                             unit.loc, ctx, implicit=True)
        else:
            side = self._statements(unit.shortcut, cur, ctx)
        return self._add(REGISTRY["add"], {}, [body, side], "residual add", unit.loc, ctx)

    # -- layers and blocks ----------------------------------------------------------------
    def _layer(self, unit: Layer, cur: int, ctx: _Ctx) -> int:
        head = self._subst(unit.head, ctx)
        if head in self.spec.blocks:
            return self._block(self.spec.blocks[head], unit, cur, ctx)
        found = find(head)
        if found is None:
            refuse_malformed_token(head, unit.head.loc)
            raise SpecError(
                f"unknown layer '{head}'", unit.head.loc,
                expected="a layer such as conv3-64, maxpool, FC-4096 or relu ('archcalc layers' lists them)",
                hint=did_you_mean(head, all_names() + list(self.spec.blocks)),
            )
        layer, spelled = found
        options = [Value(None, self._subst(o, ctx), o.loc) for o in unit.options]
        inputs, call = [cur], []
        refs = []
        for arg in unit.call or ():
            value = self._subst(arg.value, ctx)
            if arg.key is None and value.startswith("@"):
                refs.append(self._ref(value[1:], arg.value.loc, ctx))
            else:
                call.append(Value(arg.key, _value(value, ctx), arg.value.loc))
        if refs:
            inputs = refs
        args = bind(layer, spelled, options, call, _whole(unit))
        node = self._add(layer, args, inputs, self._text(unit, ctx), _whole(unit), ctx)
        if layer.weighted and self.hidden is not None:
            act = self._add(self.hidden, self.hidden.normalize({}), [node], self.hidden.name,
                            _whole(unit), ctx, implicit=True)
            self.hidden_pairs.append((node, act))
            return act
        return node

    def _block(self, block: BlockDef, unit: Layer, cur: int, ctx: _Ctx) -> int:
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
        inner = _Ctx({**self.params, **env}, {"in": cur}, (*ctx.scope, f"{block.name}#{count}"),
                     (*ctx.calls, block.name))
        return self._statements(block.body, cur, inner)

    def _bind_block(self, block: BlockDef, unit: Layer, ctx: _Ctx) -> dict[str, Any]:
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
            env[key] = evaluate_piece(arg.value, ctx.env)
        for name, default in block.params:
            if name not in env:
                if default is None:
                    raise SpecError(f"block '{block.name}' needs a value for '{name}'", _whole(unit),
                                    expected=signature)
                env[name] = evaluate_piece(default, self.params)
        return env

    # -- drafts -------------------------------------------------------------------------------
    def _add(self, layer: LayerType, args: dict[str, Any], inputs: list[int], text: str,
             loc: Loc | None, ctx: _Ctx, implicit: bool = False) -> int:
        if len(self.drafts) >= MAX_NODES:
            raise SpecError(f"the spec expands to more than {MAX_NODES:,} layers", loc)
        if len(inputs) < layer.min_inputs or (layer.max_inputs is not None and len(inputs) > layer.max_inputs):
            raise SpecError(f"'{layer.name}' takes {_arity(layer)}, got {len(inputs)}", loc)
        self.drafts.append(Draft(len(self.drafts), layer.name, args, tuple(inputs), text, loc, ctx.scope,
                                 implicit=implicit))
        return len(self.drafts) - 1

    # -- text helpers -----------------------------------------------------------------------
    def _subst(self, piece: Piece, ctx: _Ctx) -> str:
        if "{" not in piece.text:
            return piece.text
        try:
            return substitute(piece.text, ctx.env)
        except ExprError as e:
            raise SpecError(str(e), piece.loc) from None

    def _text(self, unit: Layer, ctx: _Ctx) -> str:
        """The layer as written, with block arguments put in: `conv(c=2*c)` shows `conv(c=128)`."""
        if "{" not in unit.text and not (ctx.env and unit.call):
            return unit.text
        text = self._subst(unit.head, ctx) + "".join("/" + self._subst(o, ctx) for o in unit.options)
        if unit.call is not None:
            args = [(f"{a.key}=" if a.key else "") + str(_value(self._subst(a.value, ctx), ctx))
                    for a in unit.call]
            text += "(" + ", ".join(args) + ")"
        return text


def _renumber(drafts: list[Draft], removed: set[int]) -> tuple[list[Draft], dict[int, int]]:
    """Drafts without the removed ones, ids consecutive again; old id → new id (a removed
    draft maps to its input's)."""
    new_id: dict[int, int] = {}
    out: list[Draft] = []
    for d in drafts:
        if d.id in removed:
            new_id[d.id] = new_id[d.inputs[0]]
            continue
        new_id[d.id] = len(out)
        out.append(replace(d, id=len(out), inputs=tuple(new_id[i] for i in d.inputs)))
    return out, new_id


def _value(text: str, ctx: _Ctx) -> Any:
    """A call argument: arithmetic over block arguments if it is that, else the text."""
    if ctx.env:
        try:
            return evaluate(text, ctx.env)
        except ExprError:
            pass
    return text


def _whole(unit: Layer) -> Loc:
    return Loc(unit.head.loc.line, unit.head.loc.col, max(1, len(unit.text)))


def _arity(layer: LayerType) -> str:
    if layer.max_inputs is None:
        return f"at least {layer.min_inputs} inputs"
    return f"{layer.max_inputs} input" + ("" if layer.max_inputs == 1 else "s")
