"""The layer graph: typed nodes, ordered inputs, plain adjacency lists inside.

Node ids are consecutive integers in creation order, which is a topological
order (a node is created after all of its inputs); id 0 is the input. The graph
is small-state on purpose: each node's consumers are one list, built once, so
the verbs below cost what they read and no graph library is imported.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any

from archcalc.errors import Source
from archcalc.graph.nodes import Expectation, Node
from archcalc.layers import REGISTRY

# a node's type and inputs read by position, in C (a NamedTuple's field by name is a descriptor call)
_TYPE, _INPUTS = itemgetter(Node._fields.index("type")), itemgetter(Node._fields.index("inputs"))

class LayerGraph:
    """A DAG of `Node`s with the verbs passes and renderers use."""

    def __init__(self, nodes: Sequence[Node], name: str, source: Source | None = None,
                 expectations: tuple[Expectation, ...] = (), params: Mapping[str, Any] | None = None,
                 block_modules: Mapping[tuple[str, ...], str] | None = None, alike: Sequence[int] | None = None
                 ) -> None:
        self.name = name
        self.source = source
        self.expectations = expectations
        self.params = dict(params or {})  # the spec's `param` values it was expanded with (and `batch`)
        self.block_modules = dict(block_modules or {})  # a block instance's scope → its module path
        self._nodes = tuple(nodes)
        # per node, a number that nodes holding the same type, arguments dict, tuple of input shapes and
        # output shape (the same objects) share, as the shapes pass made them; None when not known. The
        # passes group alike layers by it (`counting.distinct`) instead of by those four per node
        self.alike = alike
        if alike is not None and len(alike) != len(self._nodes):
            raise AssertionError("one alike number per node")
        self._consumers: list[list[int]] = [[] for _ in self._nodes]
        consumers = self._consumers
        # the invariants the passes rely on (torch.fx's lint, in small), checked as each node is linked
        for index, n in enumerate(self._nodes):
            inputs = n.inputs
            if n.id != index:
                raise AssertionError("node ids must be 0..n-1 in creation order")
            one = len(inputs) == 1  # the usual
            if inputs and (inputs[0] if one else max(inputs)) >= index:
                raise AssertionError(f"node {n.id} uses a later node as input")
            if one:
                consumers[inputs[0]].append(index)
            else:
                for i in dict.fromkeys(inputs):  # one tensor read twice: once
                    consumers[i].append(index)

    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[Node]:
        """Nodes in topological (creation) order."""
        return iter(self._nodes)

    def node(self, node_id: int) -> Node:
        return self._nodes[node_id]

    @property
    def input(self) -> Node:
        """The first input (the only one of most networks)."""
        return self._nodes[0]

    def input_nodes(self) -> list[Node]:
        """Every input, in the order the spec declares them (ids 0, 1, …)."""
        return [n for n in self._nodes if n.type == "input"]

    @property
    def output(self) -> Node:
        return self._nodes[-1]

    def outputs(self) -> list[Node]:
        """Nodes nothing consumes: the output, and any side heads (e.g. auxiliary classifiers)."""
        return [n for n in self._nodes if not self._consumers[n.id]]

    def token_vocab(self, input_id: int = 0) -> int | None:
        """The smallest vocabulary of the embeddings reading an input, whose values are then
        token ids below it (each axis a position, none a feature); None for any other input."""
        vocabs = [self._nodes[i].args["vocab"] for i in self.consumers(input_id)
                  if self._nodes[i].type == "embedding"]
        return min(vocabs, default=None)

    def consumers(self, node_id: int) -> list[int]:
        """The nodes that read `node_id`'s output, in id order."""
        return list(self._consumers[node_id])

    def inputs(self, node_id: int) -> list[Node]:
        return [self._nodes[i] for i in self._nodes[node_id].inputs]

    def last_use(self) -> dict[int, int]:
        """For each node, the id of its last consumer (itself if it has none)."""
        return dict(enumerate(self.last_uses()))

    def last_uses(self) -> list[int]:
        """`last_use` as a list by node id."""
        return [consumers[-1] if consumers else i for i, consumers in enumerate(self._consumers)]

    def ancestors(self, node_id: int) -> set[int]:
        """`node_id` and every node it depends on."""
        seen = {node_id}
        for n in reversed(self._nodes[: node_id + 1]):
            if n.id in seen:
                seen.update(n.inputs)
        return seen

    def downstream(self, starts: Sequence[int]) -> set[int]:
        """`starts` and every node that depends on one of them."""
        seen = set(starts)
        for n in self._nodes:
            if any(i in seen for i in n.inputs):
                seen.add(n.id)
        return seen

    def depth(self) -> int:
        """Weighted layers on the longest path (how papers count depth); an attention layer or an MLP
        counts the two linear layers in a row inside it."""
        weights: dict[str, int] = {}  # by layer type (both are class attributes of a layer type)
        for t in set(map(_TYPE, self._nodes)):
            layer = REGISTRY[t]
            weights[t] = layer.path_depth if layer.path_depth is not None else int(layer.weighted)
        best: list[int] = []
        add = best.append
        for t, inputs in zip(map(_TYPE, self._nodes), map(_INPUTS, self._nodes)):
            if len(inputs) == 1:  # the usual
                add(weights[t] + best[inputs[0]])
            elif len(inputs) == 2:  # a merge of two
                a, b = inputs
                add(weights[t] + max(best[a], best[b]))
            else:
                add(weights[t] + max([best[i] for i in inputs], default=0))
        return max(best, default=0)
