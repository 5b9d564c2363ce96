"""Shape inference: drafts → the layer graph, every node with its input and output shapes.

Walks the drafts in order and asks each layer type its rule: its output shape (and
warnings when a division floors), the layout of its output (channels first or a T×F
sequence), the layers it needs in front (an FC on a feature map: a flatten), and —
for a placeholder such as an `auto` shortcut — what it becomes now that the shapes
are known. Ids are renumbered so that they stay consecutive and topological.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from archcalc.errors import Loc, ShapeError, SpecError
from archcalc.graph import Draft, DraftGraph, Expectation, LayerGraph, Node
from archcalc.layers import REGISTRY, LayerType
from archcalc.layers.base import Implied, LayerArgError
from archcalc.tensor import format_shape

MAX_NODES = 250_000  # the same bound expansion keeps, with the layers put in here counted

_LAYOUT_WORDS = {"sequence": "a sequence (T×F)", "channels": "channels first (C×…)"}


def infer(drafts: DraftGraph) -> LayerGraph:
    """The shaped layer graph of a spec's drafts; a layer that cannot take its input is a
    ShapeError at its line and column."""
    try:
        return _Inference(drafts).run()
    except SpecError as e:
        raise (e.with_source(drafts.source) if drafts.source else e) from None


class _Inference:
    def __init__(self, drafts: DraftGraph) -> None:
        self.drafts = drafts
        self.nodes: list[Node] = []
        self.new_id: dict[int, int] = {}

    def run(self) -> LayerGraph:
        for d in self.drafts.drafts:
            self.new_id[d.id] = self._place(d)
        expectations = tuple(Expectation(self.new_id[e.node], e.text, e.loc) for e in self.drafts.expectations)
        return LayerGraph(self.nodes, self.drafts.name, self.drafts.source, expectations)

    def _place(self, d: Draft) -> int:
        inputs = [self.new_id[i] for i in d.inputs]
        layer = d.layer
        try:
            resolved = layer.resolve(d.args, [self.nodes[i].shape for i in inputs])
        except LayerArgError as e:
            raise ShapeError(str(e), d.loc, hint=e.hint) from None
        if resolved is not None:  # a placeholder: the layers it stands for, on its first input
            return self._chain(resolved, inputs[0], d)
        before = layer.implicit_before(d.args, [self.nodes[i].shape for i in inputs],
                                       [self.nodes[i].layout for i in inputs])
        if before:
            inputs = [self._chain(before, inputs[0], d)]
        return self._add(layer, d.args, inputs, d.text, d.loc, d.scope, d.implicit, d.name)

    def _chain(self, steps: Sequence[Implied], start: int, d: Draft) -> int:
        cur = start
        for step in steps:
            cur = self._add(REGISTRY[step.type], step.args, [cur], step.text, d.loc, d.scope, True, None)
        return cur

    def _add(self, layer: LayerType, args: Mapping[str, Any], inputs: list[int], text: str, loc: Loc | None,
             scope: tuple[str, ...], implicit: bool, name: str | None) -> int:
        if len(self.nodes) >= MAX_NODES:
            raise SpecError(f"the spec expands to more than {MAX_NODES:,} layers", loc)
        in_shapes = tuple(self.nodes[i].shape for i in inputs)
        layouts = [self.nodes[i].layout for i in inputs]
        if layer.needs_layout and layouts[0] != layer.needs_layout:
            raise ShapeError(f"'{text}' needs {_LAYOUT_WORDS[layer.needs_layout]}, but "
                             f"{format_shape(in_shapes[0])} is {_LAYOUT_WORDS[layouts[0]]}", loc)
        args = layer.for_layout(args, layouts[0]) if layouts else args
        try:
            shaped = layer.shape(args, in_shapes)
        except LayerArgError as e:
            received = " and ".join(format_shape(s) for s in in_shapes)
            raise ShapeError(f"cannot apply '{text}' to {received}: {e}", loc, hint=e.hint) from None
        node = Node(len(self.nodes), layer.name, args, tuple(inputs), in_shapes, shaped.shape, text, loc, scope,
                    name, implicit, shaped.warnings, output_layout(layer, layouts))
        self.nodes.append(node)
        return node.id


def output_layout(layer: LayerType, inputs: Sequence[str]) -> str:
    """The output's layout from the layer's rule and its inputs' layouts."""
    if layer.layout == "same":
        return "sequence" if inputs and all(x == "sequence" for x in inputs) else "channels"
    if layer.layout == "swap":
        return "channels" if inputs and inputs[0] == "sequence" else "sequence"
    return layer.layout
