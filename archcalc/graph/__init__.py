"""The layer graph: typed nodes, ordered inputs, networkx kept inside.

Node ids are consecutive integers in creation order, which is a topological
order (a node is created after all of its inputs); id 0 is the input.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx

from archcalc.errors import Loc, Source
from archcalc.layers import REGISTRY, LayerType
from archcalc.tensor import Shape


@dataclass(frozen=True)
class Node:
    """One layer instance with everything the passes need to know about it."""

    id: int
    type: str
    args: Mapping[str, Any]
    inputs: tuple[int, ...]
    in_shapes: tuple[Shape, ...]
    shape: Shape
    text: str
    loc: Loc | None
    scope: tuple[str, ...] = ()
    name: str | None = None
    implicit: bool = False
    warnings: tuple[str, ...] = ()
    layout: str = "channels"  # "sequence" (T×F, features last) or "channels" (C×…): LayerType.layout

    @property
    def layer(self) -> LayerType:
        return REGISTRY[self.type]


@dataclass(frozen=True)
class Expectation:
    """A figure the user wrote after `=>` for the node a statement ends on."""

    node: int
    text: str
    loc: Loc


class LayerGraph:
    """A DAG of `Node`s with the verbs passes and renderers use."""

    def __init__(self, nodes: list[Node], name: str, source: Source | None = None,
                 expectations: tuple[Expectation, ...] = ()) -> None:
        self.name = name
        self.source = source
        self.expectations = expectations
        self._nodes = {n.id: n for n in nodes}
        self._g: nx.MultiDiGraph = nx.MultiDiGraph()
        for n in nodes:
            self._g.add_node(n.id)
            for i in n.inputs:
                self._g.add_edge(i, n.id)
        self._check()

    def _check(self) -> None:
        """Invariants the passes rely on (torch.fx's lint, in small)."""
        ids = list(self._nodes)
        if ids != list(range(len(ids))):
            raise AssertionError("node ids must be 0..n-1 in creation order")
        for n in self._nodes.values():
            if any(i >= n.id for i in n.inputs):
                raise AssertionError(f"node {n.id} uses a later node as input")

    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[Node]:
        """Nodes in topological (creation) order."""
        return iter(self._nodes.values())

    def node(self, node_id: int) -> Node:
        return self._nodes[node_id]

    @property
    def input(self) -> Node:
        return self._nodes[0]

    @property
    def output(self) -> Node:
        return self._nodes[len(self._nodes) - 1]

    def outputs(self) -> list[Node]:
        """Nodes nothing consumes: the output, and any side heads (e.g. auxiliary classifiers)."""
        return [n for n in self if self._g.out_degree(n.id) == 0]

    def token_vocab(self) -> int | None:
        """The smallest vocabulary of the embeddings reading the input, whose values are then
        token ids below it (each axis a position, none a feature); None for any other input."""
        vocabs = [self._nodes[i].args["vocab"] for i in self.consumers(0) if self._nodes[i].type == "embedding"]
        return min(vocabs, default=None)

    def consumers(self, node_id: int) -> list[int]:
        return sorted(set(self._g.successors(node_id)))

    def inputs(self, node_id: int) -> list[Node]:
        return [self._nodes[i] for i in self._nodes[node_id].inputs]

    def last_use(self) -> dict[int, int]:
        """For each node, the id of its last consumer (itself if it has none)."""
        return {n: max(self._g.successors(n), default=n) for n in self._nodes}

    def depth(self) -> int:
        """Weighted layers on the longest path (how papers count depth)."""
        best: dict[int, int] = {}
        for n in self:
            here = 1 if n.layer.weighted else 0
            best[n.id] = here + max((best[i] for i in n.inputs), default=0)
        return max(best.values(), default=0)
