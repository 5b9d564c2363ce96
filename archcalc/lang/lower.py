"""Lowering: a parsed `Spec` → a `LayerGraph`, expanding blocks, repeats and branches.

Shapes are inferred while lowering because the structure depends on them: an FC
on a spatial tensor gets a flatten in front, an `auto` shortcut becomes a
projection only when the two sides differ. Every expansion is bounded.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from archcalc.errors import Loc, ShapeError, SpecError, UsageError
from archcalc.graph import Expectation, LayerGraph, Node
from archcalc.lang.ast import BlockDef, Branches, Item, Layer, Piece, Ref, Residual, Spec, Statement
from archcalc.lang.expr import ExprError, evaluate, substitute
from archcalc.lang.parser import MAX_REPEAT
from archcalc.layers import REGISTRY, LayerType, find
from archcalc.layers.base import LayerArgError, all_names, parse_size
from archcalc.layers.window import window_output
from archcalc.tensor import Shape, format_shape

MAX_NODES = 250_000  # bounds every expansion: an error in well under a second, never a hang
MAX_DEPTH = 64


@dataclass
class _Proto:
    """A node while lowering; frozen into a `Node` once ids are final."""

    type: str
    args: dict[str, Any]
    inputs: list[int]
    in_shapes: tuple[Shape, ...]
    shape: Shape
    text: str
    loc: Loc | None
    scope: tuple[str, ...]
    implicit: bool
    warnings: tuple[str, ...]
    name: str | None = None
    layout: str = "channels"  # "sequence" (T×F) or "channels" (C×…): see LayerType.layout


@dataclass
class _Ctx:
    """Where lowering stands: block arguments, visible names, block nesting."""

    env: dict[str, Any] = field(default_factory=dict)
    names: dict[str, int] = field(default_factory=dict)
    scope: tuple[str, ...] = ()
    calls: tuple[str, ...] = ()


def lower(spec: Spec, input_shape: Shape | None = None, params: Mapping[str, Any] | None = None) -> LayerGraph:
    """Build the layer graph of a spec; `input_shape` overrides its `input` line, `params`
    its `param` values (`{"k": 256}`)."""
    try:
        return _Lowering(spec, params).run(input_shape)
    except SpecError as e:
        raise e.with_source(spec.source) from None


class _Lowering:
    def __init__(self, spec: Spec, overrides: Mapping[str, Any] | None = None) -> None:
        self.spec = spec
        self.params = spec_params(spec, overrides or {})
        self.protos: list[_Proto] = []
        self.hidden = self._hidden_activation()
        self.hidden_pairs: list[tuple[int, int]] = []
        self.block_counts: dict[str, int] = {}
        self.expectations: list[tuple[int, Piece]] = []

    # -- entry ------------------------------------------------------------------------
    def run(self, input_shape: Shape | None) -> LayerGraph:
        spec = self.spec
        shape, loc = self._input_shape(input_shape)
        text = "input " + "x".join(map(str, shape))
        self._add(REGISTRY["input"], {"shape": shape}, [], text, loc, _Ctx())
        if not spec.body:
            raise SpecError("the spec has no layers", loc, expected="layer lines such as 'conv3-64, maxpool'")
        top = _Ctx(env=dict(self.params), names={"input": 0})
        self._statements(spec.body, 0, top)
        if self.hidden_pairs:
            self._drop_activation(*self.hidden_pairs[-1])
        name = spec.name or spec.source.filename.rsplit("/", 1)[-1].split(".")[0]
        nodes, new_id = self._freeze()
        expectations = tuple(Expectation(new_id[old], p.text, p.loc) for old, p in self.expectations)
        return LayerGraph(nodes, name, spec.source, expectations)

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
                            expected="one of " + ", ".join(names), hint=_did_you_mean(piece.text, names))
        return found[0]

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
                self.protos[cur].name = self.protos[cur].name or stmt.name
        return cur

    def _item(self, item: Item, cur: int, ctx: _Ctx) -> int:
        repeat = item.repeat if item.repeat_expr is None else self._repeat(item.repeat_expr, ctx)
        if repeat != 1 and isinstance(item.unit, Ref):
            raise SpecError("a node reference cannot be repeated", item.repeat_loc)
        for done in range(1, repeat + 1):
            start, before = cur, len(self.protos)
            cur = self._unit(item.unit, cur, ctx)
            self._check_growth(start, cur, len(self.protos) - before, repeat - done, item)
        return cur

    def _check_growth(self, start: int, end: int, added: int, left: int, item: Item) -> None:
        """Fail fast on a huge repeat instead of building MAX_NODES nodes first.

        Lowering is deterministic, so a repetition that keeps its input's shape is followed by
        repetitions that each add exactly as many nodes: the total is known now.
        """
        if left and self.protos[start].shape == self.protos[end].shape:
            if len(self.protos) + added * left > MAX_NODES:
                raise SpecError(f"the spec expands to more than {MAX_NODES:,} layers", item.repeat_loc,
                                hint=f"each of the {left:,} repetitions still to go adds {added:,} layers")

    def _repeat(self, piece: Piece, ctx: _Ctx) -> int:
        """`x{n-1}`: may be 0, so a stage of n blocks can be written `first, rest x{n-1}`."""
        count = self._eval(piece, ctx.env)
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
                        hint=_did_you_mean(name, list(ctx.names)))

    def _branches(self, unit: Branches, cur: int, ctx: _Ctx) -> int:
        outs = [self._statements(branch, cur, ctx) for branch in unit.branches]
        return self._add(REGISTRY[unit.kind], {}, outs, unit.kind, unit.loc, ctx)

    def _residual(self, unit: Residual, cur: int, ctx: _Ctx) -> int:
        first = len(self.protos)
        body = self._statements(unit.body, cur, ctx)
        if isinstance(unit.shortcut, str):  # "identity", or "auto" written or by default
            if unit.shortcut == "identity":
                side = cur
            else:
                with_bn = any(p.type == "bn" for p in self.protos[first:])
                side = self._auto_shortcut(cur, body, with_bn, unit.loc, ctx)
        else:
            side = self._statements(unit.shortcut, cur, ctx)
        return self._add(REGISTRY["add"], {}, [body, side], "residual add", unit.loc, ctx)

    def _auto_shortcut(self, cur: int, body: int, with_bn: bool, loc: Loc, ctx: _Ctx) -> int:
        """Identity when shapes agree, else a 1×1 projection (+ BN if the body uses BN)."""
        src, dst = self.protos[cur].shape, self.protos[body].shape
        if src == dst:
            return cur
        found = [_stride_between(a, b) for a, b in zip(src[1:], dst[1:])]
        strides = tuple(s for s in found if s is not None)
        if len(src) != len(dst) or len(src) < 2 or len(strides) != len(found):
            raise ShapeError(
                f"the auto shortcut cannot map {format_shape(src)} to {format_shape(dst)} with a 1×1 convolution",
                loc, hint="write the shortcut yourself: 'shortcut: conv1-256/s2/nobias, bn'",
            )
        args = {"out_channels": dst[0], "kernel": (1,), "stride": strides, "padding": (0,), "bias": not with_bn}
        conv = REGISTRY["conv"]
        stride = "x".join(map(str, strides)) if len(set(strides)) > 1 else str(strides[0])
        text = f"conv1-{dst[0]}" + (f"/s{stride}" if max(strides) > 1 else "") + ("/nobias" if with_bn else "")
        side = self._add(conv, conv.normalize(args), [cur], text, loc, ctx, implicit=True)
        if with_bn:
            side = self._add(REGISTRY["bn"], REGISTRY["bn"].normalize({}), [side], "bn", loc, ctx, implicit=True)
        return side

    # -- layers and blocks ----------------------------------------------------------------
    def _layer(self, unit: Layer, cur: int, ctx: _Ctx) -> int:
        head = self._subst(unit.head, ctx)
        if head in self.spec.blocks:
            return self._block(self.spec.blocks[head], unit, cur, ctx)
        found = find(head)
        if found is None:
            _malformed_token(head, unit.head.loc)
            raise SpecError(
                f"unknown layer '{head}'", unit.head.loc,
                expected="a layer such as conv3-64, maxpool, FC-4096 or relu ('archcalc layers' lists them)",
                hint=_did_you_mean(head, all_names() + list(self.spec.blocks)),
            )
        layer, spelled = found
        raw: dict[str, Any] = dict(spelled)
        for option in unit.options:
            key, value = _option(layer, self._subst(option, ctx), option.loc)
            _set(raw, layer, key, value, option.loc)
        inputs = [cur]
        refs = []
        for arg in unit.call or ():
            value = self._subst(arg.value, ctx)
            if arg.key is None and value.startswith("@"):
                refs.append(self._ref(value[1:], arg.value.loc, ctx))
            elif arg.key is None:
                raw[_positional(layer, raw, arg.value.loc)] = _value(value, ctx)
            else:
                _set(raw, layer, arg.key, _value(value, ctx), arg.value.loc)
        if refs:
            inputs = refs
        try:
            args = layer.normalize(raw)
        except LayerArgError as e:
            raise SpecError(str(e), _whole(unit)) from None
        text = self._text(unit, ctx)
        source = self.protos[inputs[0]]
        if layer.name == "fc" and len(source.shape) > 1 and source.layout != "sequence":
            flat = REGISTRY["flatten"]
            inputs = [self._add(flat, {}, inputs, "flatten", _whole(unit), ctx, implicit=True)]
        node = self._add(layer, args, inputs, text, _whole(unit), ctx)
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
        env = self._bind(block, unit, ctx)
        count = self.block_counts[block.name] = self.block_counts.get(block.name, 0) + 1
        inner = _Ctx({**self.params, **env}, {"in": cur}, (*ctx.scope, f"{block.name}#{count}"),
                     (*ctx.calls, block.name))
        return self._statements(block.body, cur, inner)

    def _bind(self, block: BlockDef, unit: Layer, ctx: _Ctx) -> dict[str, Any]:
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
                                expected=signature, hint=_did_you_mean(key, params))
            if key in env:
                raise SpecError(f"parameter '{key}' is given twice", arg.value.loc, expected=signature)
            env[key] = self._eval(arg.value, ctx.env)
        for name, default in block.params:
            if name not in env:
                if default is None:
                    raise SpecError(f"block '{block.name}' needs a value for '{name}'", _whole(unit),
                                    expected=signature)
                env[name] = self._eval(default, self.params)
        return env

    # -- nodes ------------------------------------------------------------------------------
    def _add(self, layer: LayerType, args: dict[str, Any], inputs: list[int], text: str,
             loc: Loc | None, ctx: _Ctx, implicit: bool = False) -> int:
        if len(self.protos) >= MAX_NODES:
            raise SpecError(f"the spec expands to more than {MAX_NODES:,} layers", loc)
        if len(inputs) < layer.min_inputs or (layer.max_inputs is not None and len(inputs) > layer.max_inputs):
            raise SpecError(f"'{layer.name}' takes {_arity(layer)}, got {len(inputs)}", loc)
        in_shapes = tuple(self.protos[i].shape for i in inputs)
        in_layouts = [self.protos[i].layout for i in inputs]
        if layer.needs_layout and in_layouts[0] != layer.needs_layout:
            raise ShapeError(f"'{text}' needs {_LAYOUT_WORDS[layer.needs_layout]}, but "
                             f"{format_shape(in_shapes[0])} is {_LAYOUT_WORDS[in_layouts[0]]}", loc)
        args = dict(layer.for_layout(args, in_layouts[0])) if in_layouts else args
        try:
            shaped = layer.shape(args, in_shapes)
        except LayerArgError as e:
            received = " and ".join(format_shape(s) for s in in_shapes)
            raise ShapeError(f"cannot apply '{text}' to {received}: {e}", loc) from None
        layout = _layout(layer, in_layouts)
        self.protos.append(_Proto(layer.name, args, list(inputs), in_shapes, shaped.shape, text, loc,
                                  ctx.scope, implicit, shaped.warnings, layout=layout))
        return len(self.protos) - 1

    def _drop_activation(self, weighted: int, act: int) -> None:
        """The layer after the last conv/FC gets no hidden activation: bypass it."""
        for proto in self.protos:
            proto.inputs = [weighted if i == act else i for i in proto.inputs]
        self.protos[act].type = ""  # marked removed

    def _freeze(self) -> tuple[list[Node], dict[int, int]]:
        new_id: dict[int, int] = {}
        nodes: list[Node] = []
        for old, p in enumerate(self.protos):
            if not p.type:
                continue
            new_id[old] = len(nodes)
            nodes.append(Node(len(nodes), p.type, p.args, tuple(new_id[i] for i in p.inputs), p.in_shapes,
                              p.shape, p.text, p.loc, p.scope, p.name, p.implicit, p.warnings, p.layout))
        new_id.update({old: new_id[p.inputs[0]] for old, p in enumerate(self.protos) if not p.type})
        return nodes, new_id

    # -- text helpers -----------------------------------------------------------------------
    def _subst(self, piece: Piece, ctx: _Ctx) -> str:
        if "{" not in piece.text:
            return piece.text
        try:
            return substitute(piece.text, ctx.env)
        except ExprError as e:
            raise SpecError(str(e), piece.loc) from None

    def _eval(self, piece: Piece, env: dict[str, Any]) -> Any:
        try:
            return evaluate(piece.text.strip("{}"), env)
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


def spec_params(spec: Spec, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The values of the spec's `param` lines, in order (a value may use earlier ones);
    `overrides` replace defaults and must name parameters the spec has."""
    names = [name for name, _ in spec.params]
    unknown = [key for key in overrides if key not in names]
    if unknown:
        listed = ", ".join(f"{n}={p.text}" for n, p in spec.params) or "none"
        label = spec.name or spec.source.filename
        raise UsageError(f"{label} has no parameter '{unknown[0]}' (its parameters: {listed})")
    env: dict[str, Any] = {}
    for name, piece in spec.params:
        if name in overrides:
            env[name] = _override(name, overrides[name], env)
            continue
        try:
            env[name] = evaluate(piece.text, env)
        except ExprError as e:
            raise SpecError(str(e), piece.loc) from None
    return env


def _override(name: str, value: Any, env: Mapping[str, Any]) -> Any:
    """A value from `--set k=256` (text) or the API (a number)."""
    if not isinstance(value, str):
        return value
    try:
        return evaluate(value, env)
    except ExprError:
        raise UsageError(f"parameter '{name}' must be a number (or arithmetic over the parameters "
                         f"before it), not '{value}'") from None


_LAYOUT_WORDS = {"sequence": "a sequence (T×F)", "channels": "channels first (C×…)"}


def _layout(layer: LayerType, inputs: list[str]) -> str:
    """The output's layout from the layer's rule and its inputs' layouts."""
    if layer.layout == "same":
        return "sequence" if inputs and all(x == "sequence" for x in inputs) else "channels"
    if layer.layout == "swap":
        return "channels" if inputs and inputs[0] == "sequence" else "sequence"
    return layer.layout


def parse_shape(text: str, loc: Loc | None = None) -> Shape:
    """'3x224x224' → (3, 224, 224), with a clear error for anything else."""
    try:
        shape = parse_size(text)
    except ValueError:
        raise SpecError(f"'{text}' is not a shape", loc,
                        expected="sizes joined by x, channels first: 3x224x224, 1x32x32, 64x100") from None
    if any(s < 1 for s in shape):
        raise SpecError(f"input shape '{text}' has a zero or negative size", loc,
                        expected="every size at least 1")
    if not 1 <= len(shape) <= 4:
        raise SpecError(f"input shape '{text}' has {len(shape)} axes", loc,
                        expected="F, CxL, CxHxW or CxDxHxW")
    return shape


def _option(layer: LayerType, text: str, loc: Loc) -> tuple[str, Any]:
    low = text.lower()
    if low in layer.flags:
        return layer.flags[low]
    key, eq, value = low.partition("=")
    if not eq:
        letters = len(low) - len(low.lstrip("abcdefghijklmnopqrstuvwxyz_"))
        key, value = low[:letters], low[letters:]
    names = {a: a for arg in layer.args for a in (arg.name, *arg.aliases)}
    target = layer.options.get(key) or names.get(key)
    if target is None or value == "":
        raise SpecError(f"unknown option '/{text}' for '{layer.name}'", loc,
                        expected=_options_help(layer))
    return target, value


def _options_help(layer: LayerType) -> str:
    parts = [f"/{k}N ({v})" for k, v in layer.options.items()] + [f"/{f}" for f in layer.flags]
    return ", ".join(parts) if parts else f"no options ('{layer.name}' takes none)"


def _set(raw: dict[str, Any], layer: LayerType, key: str, value: Any, loc: Loc) -> None:
    """One argument, once: `conv3-64/s2(stride=1)` is a contradiction, not an override."""
    name = next((a.name for a in layer.args if key in (a.name, *a.aliases)), key)
    if name in raw:
        raise SpecError(f"argument '{name}' of '{layer.name}' is given twice", loc)
    raw[name] = value


def _positional(layer: LayerType, raw: dict[str, Any], loc: Loc) -> str:
    """The next argument not yet given: positional values fill them in order."""
    free = [a.name for a in layer.args if a.name not in raw and not set(a.aliases) & raw.keys()]
    if not free:
        raise SpecError(f"too many arguments for '{layer.name}'", loc,
                        expected=", ".join(a.name for a in layer.args) or "no arguments")
    return free[0]


def _value(text: str, ctx: _Ctx) -> Any:
    """A call argument: arithmetic over block arguments if it is that, else the text."""
    if ctx.env:
        try:
            return evaluate(text, ctx.env)
        except ExprError:
            pass
    return text


def _stride_between(src: int, dst: int) -> int | None:
    for s in range(1, src + 1):
        if window_output(src, 1, s, 0)[0] == dst:
            return s
    return None


def _did_you_mean(word: str, candidates: list[str]) -> str | None:
    low = word.lower()
    close = difflib.get_close_matches(low, candidates, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    prefix = low.rstrip("0123456789-x/.")
    stem = prefix.split("-")[0].rstrip("0123456789x")
    close = difflib.get_close_matches(stem, candidates, n=1, cutoff=0.6) if stem else []
    if close and stem != low:
        return f"did you mean '{close[0]}{low[len(stem):]}'?"
    return None


def _malformed_token(head: str, loc: Loc) -> None:
    """`conv3-6q`: a known layer's token with its numbers wrong gets its own message."""
    stem = re.match(r"[a-z]+(-[a-z]+)*", head.lower())
    found = find(stem.group(0)) if stem else None
    if found is not None and found[0].patterns:
        layer = found[0]
        raise SpecError(f"malformed '{layer.name}' token '{head}'", loc, expected=layer.example)


def _whole(unit: Layer) -> Loc:
    return Loc(unit.head.loc.line, unit.head.loc.col, max(1, len(unit.text)))


def _arity(layer: LayerType) -> str:
    if layer.max_inputs is None:
        return f"at least {layer.min_inputs} inputs"
    return f"{layer.max_inputs} input" + ("" if layer.max_inputs == 1 else "s")


