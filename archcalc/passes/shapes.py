"""Shape inference: drafts → the layer graph, every node with its input and output shapes.

Walks the drafts in order and asks each layer type its rule: its output shape (and
warnings when a division floors), the layout of its output (channels first, a T×F
sequence, or plain), the layers it needs in front (an FC on a feature map: a flatten),
and — for a placeholder such as an `auto` shortcut — what it becomes now that the shapes
are known. A layer that applies another's weights again must fit them, and a tied weight
must have its owner's shape. Ids are renumbered so that they stay consecutive and
topological. Last, a layer whose output nothing reads (and that is neither the network's
output nor named as a side output) gets a warning: a dead branch is still counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import chain
from operator import attrgetter
from typing import Any

from archcalc.errors import Loc, ShapeError, SpecError
from archcalc.graph import Draft, DraftGraph, Expectation, LayerGraph, Node, Tie
from archcalc.layers import REGISTRY, LayerType
from archcalc.layers.base import Implied, LayerArgError
from archcalc.records import record
from archcalc.tensor import MAX_SIZE, MAX_SIZE_TEXT, Shape, format_shape, prod, size_text

_new_node = tuple.__new__  # a Node from its fields in order, without the keyword handling of Node(…)

MAX_NODES = 250_000  # the same bound expansion keeps, with the layers put in here counted

LAYOUT_WORDS = {"sequence": "a sequence (T×F)", "channels": "channels first (C×…)", "plain": "a plain tensor"}


def infer(drafts: DraftGraph) -> LayerGraph:
    """The shaped layer graph of a spec's drafts; a layer that cannot take its input is a
    ShapeError at its line and column."""
    try:
        return _Inference(drafts).run()
    except SpecError as e:
        raise (e.with_source(drafts.source) if drafts.source else e) from None


def infer_ids(drafts: DraftGraph) -> tuple[LayerGraph, dict[int, int]]:
    """`infer`, with each draft's node id (the layers put in front of a draft come just before it)."""
    inference = _Inference(drafts)
    try:
        return inference.run(), inference.new_id
    except SpecError as e:
        raise (e.with_source(drafts.source) if drafts.source else e) from None


class _Inference:
    def __init__(self, drafts: DraftGraph) -> None:
        self.drafts = drafts
        self.nodes: list[Node] = []
        self.new_id: dict[int, int] = {}
        # a rule's answer for one arguments dict on one set of inputs, asked once: drafts of identical
        # layers share their arguments dict, so a generated 100,000-layer chain asks a handful of times.
        # Inputs alike are those of one output shape, layout and batch axis: each such kind of output
        # is numbered (`signatures`), each node's kept by id (`signature`), and a rule keyed by those
        self.rules: dict[tuple[str, int, Any], _Rule] = {}
        # the same answers, by draft type, for drafts that become one node as they are written (no
        # placeholder resolved, no layer put in front, no indices read): `_place` finds those first
        self.direct: dict[tuple[str, int, Any], _Rule] = {}
        self.signatures: dict[tuple[Shape, str, bool], int] = {}
        self.signature: list[int] = []
        self.made: list[_Rule] = []  # every answer, numbered in the order made
        self.answer: list[int] = []  # each node's answer's number, by id: the graph's `alike`
        self._kinds: dict[str, tuple[LayerType, bool, bool]] = {}  # by type name: `_kind`

    def run(self) -> LayerGraph:
        nodes, new_id, direct, signature, answer = self.nodes, self.new_id, self.direct, self.signature, self.answer
        inputs: tuple[int, ...]
        seen: Any  # one number, or a tuple of them
        for d in self.drafts.drafts:
            # a draft's fields unpacked at once: a dozen reads by name cost more than the rest of its walk
            draft_id, type_name, args, drafted, text, loc, scope, name, implicit, shares, tie, module = d
            # the inputs' ids, and the kind of inputs a rule is asked about: the numbers of their kinds of output
            if len(drafted) == 1:  # the usual
                inputs = (new_id[drafted[0]],)
                seen = signature[inputs[0]]
            elif len(drafted) == 2:  # a merge of two, written out: a comprehension is a call
                inputs = (new_id[drafted[0]], new_id[drafted[1]])
                seen = (signature[inputs[0]], signature[inputs[1]])
            else:
                inputs = tuple([new_id[i] for i in drafted])
                seen = tuple([signature[i] for i in inputs])
            key = (type_name, id(args), seen)
            known = direct.get(key)
            if known is None or known.args is not args or shares is not None or tie is not None:
                new_id[draft_id] = self._place(d, list(inputs), key)
                continue
            # the answer's node, as `_node` makes it, written here: a call per node is a tenth of the walk
            node_id = new_id[draft_id] = len(nodes)
            if node_id >= MAX_NODES:
                raise _too_many(loc)
            nodes.append(_new_node(Node, (node_id, known.layer, known.adjusted, inputs, known.in_shapes, known.shape,
                                          text, loc, scope, name, implicit, known.warnings, known.layout, None, None,
                                          known.batched, module)))
            signature.append(known.signature)
            answer.append(known.number)
        expectations = tuple(Expectation(self.new_id[e.node], e.text, e.loc) for e in self.drafts.expectations)
        return LayerGraph(_with_dead_ends(self.nodes), self.drafts.name, self.drafts.source, expectations,
                          self.drafts.params, self.drafts.block_modules, self.answer)

    def _place(self, d: Draft, inputs: list[int], key: tuple[str, int, Any]) -> int:
        """A draft the answers made so far do not place directly (`direct`, keyed by `key`)."""
        new_id = self.new_id
        layer, placeholder, implies = self._kinds.get(d.type) or self._kind(d.type)
        if placeholder:  # most types are none: not asked
            try:
                resolved = layer.resolve(d.args, [self.nodes[i].shape for i in inputs])
            except LayerArgError as e:
                raise ShapeError(str(e), d.loc, hint=e.hint) from None
            if resolved is not None:  # a placeholder: the layers it stands for, on its first input
                return self._chain(resolved, inputs[0], d, placeholder=True)
        before = () if not implies else layer.implicit_before(
            d.args, [self.nodes[i].shape for i in inputs], [self.nodes[i].layout for i in inputs])
        source = None  # where layers are put in front: what they read
        if before:
            source = self.nodes[inputs[0]]
            inputs = [self._chain(before, inputs[0], d)]
        shares = None if d.shares is None else new_id[d.shares]
        tie = None if d.tie is None else Tie(new_id[d.tie.owner], d.tie.transposed)
        node = self._add(layer, d.args, inputs, d.text, d.loc, d.scope, d.implicit, d.name, shares, tie, d.module)
        if not before and layer.index_input is None:
            self.direct[key] = self.made[self.answer[node]]
        if shares is not None or tie is not None:
            self._check_weights(self.nodes[node])
        if source is not None and source.type == "input" and source.args.get("layout") is None:
            self._warn_flattened_input(node, source)
        return node

    def _kind(self, type_name: str) -> tuple[LayerType, bool, bool]:
        """A layer type, whether it is a placeholder (`resolve`) and whether it may ask for layers in
        front of it (`implicit_before`): what its class overrides, looked up once per type."""
        layer = REGISTRY[type_name]
        rules = type(layer)
        found = self._kinds[type_name] = (layer, rules.resolve is not LayerType.resolve,
                                          rules.implicit_before is not LayerType.implicit_before)
        return found

    def _warn_flattened_input(self, node: int, source: Node) -> None:
        """An FC straight on a multi-axis input flattens it, as after a convolution; PyTorch's
        nn.Linear would map the last axis instead. Say which was done, and how to get the other."""
        n, shape = self.nodes[node], source.shape
        note = (f"it reads the {format_shape(shape)} input flattened to {prod(shape):,} features, as after a "
                f"convolution; nn.Linear on (N, {', '.join(map(str, shape))}) would map the last axis "
                f"({shape[-1]} → {n.shape[-1]}): declare `input {'x'.join(map(str, shape))} as plain` for that")
        self.nodes[node] = n._replace(warnings=(*n.warnings, note))

    def _chain(self, steps: Sequence[Implied], start: int, d: Draft, placeholder: bool = False) -> int:
        """The layers put in for `d`: what a placeholder stands for (its module's parts, `downsample.0`,
        `downsample.1`), or the layers in front of it (a flatten, named beside it: torchvision flattens
        in `forward`, so it takes no number)."""
        cur = start
        folder = d.module.rpartition(".")[0] + "." if d.module and "." in d.module else ""
        for i, step in enumerate(steps):
            module = None if d.module is None else (f"{d.module}.{i}" if placeholder else folder + step.type)
            cur = self._add(REGISTRY[step.type], step.args, [cur], step.text, d.loc, d.scope, True, None,
                            module=module)
        return cur

    def _add(self, layer: LayerType, args: Mapping[str, Any], inputs: list[int], text: str, loc: Loc | None,
             scope: tuple[str, ...], implicit: bool, name: str | None, shares: int | None = None,
             tie: Tie | None = None, module: str | None = None) -> int:
        if len(self.nodes) >= MAX_NODES:  # before its rule is asked, which may refuse it
            raise _too_many(loc)
        seen = self._seen(inputs)
        # max unpooling: its arguments come from its pool, which the key does not hold
        indexed = layer.index_input is not None and layer.index_input < len(inputs)
        known = None if indexed else self.rules.get((layer.name, id(args), seen))
        if known is None or known.args is not args:
            known = self._rule(layer, args, inputs, text, loc, indexed)
            if not indexed:
                self.rules[layer.name, id(args), seen] = known
        return self._node(known, tuple(inputs), text, loc, scope, implicit, name, shares, tie, module)

    def _seen(self, inputs: list[int]) -> Any:
        """The kind of inputs a rule is asked about: the numbers of their kinds of output (as `run` finds them)."""
        signature = self.signature
        return signature[inputs[0]] if len(inputs) == 1 else tuple([signature[i] for i in inputs])

    def _node(self, known: _Rule, inputs: tuple[int, ...], text: str, loc: Loc | None, scope: tuple[str, ...],
              implicit: bool, name: str | None, shares: int | None, tie: Tie | None, module: str | None) -> int:
        """The next node: the rule's answer with what is the node's own."""
        nodes = self.nodes
        node_id = len(nodes)
        if node_id >= MAX_NODES:
            raise _too_many(loc)
        nodes.append(_new_node(Node, (node_id, known.layer, known.adjusted, inputs, known.in_shapes,
                                      known.shape, text, loc, scope, name, implicit, known.warnings, known.layout,
                                      shares, tie, known.batched, module)))
        self.signature.append(known.signature)
        self.answer.append(known.number)
        return node_id

    def _rule(self, layer: LayerType, args: Mapping[str, Any], inputs: list[int], text: str, loc: Loc | None,
              indexed: bool) -> _Rule:
        """What the layer's rules give on these inputs: its arguments for them, its output's shape,
        layout and batch axis, and the warnings of its shape rule; a ShapeError where it cannot
        take them."""
        sources = [self.nodes[i] for i in inputs]
        in_shapes = tuple([n.shape for n in sources])
        layouts = tuple([n.layout for n in sources])
        batched = tuple([n.batched for n in sources])
        if layer.needs_layout and layouts[0] != layer.needs_layout:
            raise ShapeError(f"'{text}' needs {LAYOUT_WORDS[layer.needs_layout]}, but "
                             f"{format_shape(in_shapes[0])} is {LAYOUT_WORDS[layouts[0]]}", loc)
        any_batched = any(batched)
        if inputs and not any_batched and not layer.free_inputs:
            raise ShapeError(f"'{text}' needs a tensor with a batch axis; {format_shape(in_shapes[0])} is a "
                             f"free parameter (mix it into an activation first, e.g. with add or mul)", loc)
        adjusted = layer.for_inputs(args, layouts, batched)
        _check_sizes(adjusted, text if layer.name != "input" else "", loc)
        try:
            if indexed:
                source = sources[layer.index_input]  # type: ignore[index]
                adjusted = layer.for_indices(adjusted, source.layer, source.args, source.in_shapes)
            shaped = layer.shape(adjusted, in_shapes)
        except LayerArgError as e:
            received = " and ".join(format_shape(s) for s in in_shapes)
            raise ShapeError(f"cannot apply '{text}' to {received}: {e}", loc, hint=e.hint) from None
        too_big = [s for s in shaped.shape if s > MAX_SIZE]
        if too_big:
            raise ShapeError(f"'{text}' makes an axis of {size_text(too_big[0])}: archcalc's limit for one "
                             f"size is {MAX_SIZE_TEXT} (no real network comes near it)", loc)
        layout = (layer.layout_for(adjusted, in_shapes)
                  or output_layout(layer, adjusted, _batched_layouts(layouts, batched)))
        out_batched = any_batched if inputs else layer.batched_source
        output = (shaped.shape, layout, out_batched)
        kind = self.signatures.setdefault(output, len(self.signatures))
        made = _Rule(layer.name, args, adjusted, in_shapes, shaped.shape, shaped.warnings, layout, out_batched, kind,
                     len(self.made))
        self.made.append(made)
        return made

    def _check_weights(self, n: Node) -> None:
        """A shared layer must fit its owner's weights; a tied one must have its owner's weight shape."""
        mine = n.layer.param_shapes(n.args, n.in_shapes, n.shape)
        if n.shares is not None:
            owner = self.nodes[n.shares]
            theirs = owner.layer.param_shapes(owner.args, owner.in_shapes, owner.shape)
            if mine != theirs:
                raise ShapeError(
                    f"'{n.text}' applies the weights of layer {owner.id} ({owner.text}{_line(owner)}) to "
                    f"{format_shape(n.in_shapes[0])}, but they were made for {format_shape(owner.in_shapes[0])}: "
                    f"{_describe(mine)} here, {_describe(theirs)} there", n.loc)
        if n.tie is not None:
            tied = self.nodes[n.tie.owner]
            owned = tied.layer.param_shapes(tied.args, tied.in_shapes, tied.shape).get("weight")
            weight = mine.get("weight")
            wanted = tuple(reversed(owned)) if owned and n.tie.transposed else owned
            if weight is None or wanted != weight:
                how = "the transpose of " if n.tie.transposed else ""
                flipped = tuple(reversed(owned)) if owned else None
                raise ShapeError(
                    f"cannot tie '{n.text}' (weight {_size(weight)}) to {how}the weight of layer {tied.id} "
                    f"({tied.text}{_line(tied)}, {_size(owned)})", n.loc, hint=_tie_hint(weight, owned, flipped))


@record(slots=True)
class _Rule:
    """A layer's rules' answer for one arguments dict on inputs of one kind, shared by the nodes alike:
    `args` the dict asked about (kept, so that its id stays its own), `signature` the number of the
    kind of output it makes (shape, layout, batch axis), `number` its own: nodes given one answer hold
    one type, arguments dict, tuple of input shapes and output shape (the graph's `alike`)."""

    layer: str  # the layer type's name
    args: Mapping[str, Any]
    adjusted: Mapping[str, Any]
    in_shapes: tuple[Shape, ...]
    shape: Shape
    warnings: tuple[str, ...]
    layout: str
    batched: bool
    signature: int
    number: int  # its place among the answers made


def _too_many(loc: Loc | None) -> SpecError:
    return SpecError(f"the spec expands to more than {MAX_NODES:,} layers", loc)


def _check_sizes(args: Mapping[str, Any], text: str, loc: Loc | None) -> None:
    """Every whole-number argument (a kernel, stride, padding, channel count) within MAX_SIZE."""
    for name, value in args.items():
        for v in value if isinstance(value, tuple) else (value,):
            if isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_SIZE:
                what = f"argument '{name}' of '{text}'" if text else "a size of the input"
                raise ShapeError(f"{what} is {size_text(v)}: archcalc's limit for one "
                                 f"size is {MAX_SIZE_TEXT} (no real network comes near it)", loc)


def _tie_hint(weight: tuple[int, ...] | None, owned: tuple[int, ...] | None,
              flipped: tuple[int, ...] | None) -> str | None:
    if weight is not None and weight == owned:
        return f"without .T it fits: both weights are {_size(weight)}"
    if weight is not None and weight == flipped:
        return f"with .T it fits: the owner's weight transposed is {_size(flipped)}"
    return None


def _line(n: Node) -> str:
    return f", line {n.loc.line}" if n.loc else ""


def _size(shape: tuple[int, ...] | None) -> str:
    return "none" if shape is None else format_shape(shape)


def _describe(shapes: Mapping[str, tuple[int, ...]]) -> str:
    return ", ".join(f"{k} {format_shape(v)}" for k, v in shapes.items()) or "no weights"


def _batched_layouts(layouts: Sequence[str], batched: Sequence[bool]) -> list[str]:
    """The layouts of the inputs with a batch axis: a free parameter broadcast onto a sequence (a
    LayerNorm's γ) keeps it a sequence. All of them where none has one."""
    return [x for x, b in zip(layouts, batched) if b] or list(layouts)


def output_layout(layer: LayerType, args: Mapping[str, Any], inputs: Sequence[str]) -> str:
    """The output's layout from the layer's rule and its inputs' layouts: a position-wise op keeps a
    sequence a sequence and channels channels; a sequence beside a plain tensor is plain (neither is
    flattened before an FC: both map the last axis, as nn.Linear)."""
    if layer.layout == "same":
        # a plain tensor (axes without meaning: a reshape's) joined with a sequence leaves a sequence
        if inputs and "sequence" in inputs and all(x in ("sequence", "plain") for x in inputs):
            return "sequence"
        return "plain" if inputs and all(x == "plain" for x in inputs) else "channels"
    if layer.layout == "swap":
        return {"sequence": "channels", "channels": "sequence"}.get(inputs[0], "plain") if inputs else "plain"
    if layer.layout == "given":  # the input's own, as its header line says
        return str(args.get("layout") or "channels")
    return layer.layout


def _with_dead_ends(nodes: list[Node]) -> list[Node]:
    """Warn where a layer's output is read by nothing: the output, named side heads and free
    parameters excepted (a tower that feeds nothing is counted, so say so)."""
    read = chain.from_iterable(map(attrgetter("inputs"), nodes))
    unread = set(range(len(nodes) - 1)).difference(read)  # the last node is the output
    out = list(nodes)
    for i in sorted(unread):
        n = nodes[i]
        if n.name is None:
            note = (f"input '{n.args['name']}' feeds nothing" if n.type == "input" else
                    "its output feeds nothing (a dead branch, still counted); name it (`head = …`) "
                    "to keep it as an output")
            out[i] = n._replace(warnings=(*n.warnings, note))
    return out
