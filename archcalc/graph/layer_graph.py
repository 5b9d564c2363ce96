"""The layer graph: typed nodes, ordered inputs, plain adjacency lists inside.

Node ids are consecutive integers in creation order, which is a topological
order (a node is created after all of its inputs); id 0 is the input. The graph
is small-state on purpose: each edge is held once, as the tensor read and its reader, the last
reader of each tensor found from those in C; each node's consumers are one list, built on first
need, so the verbs below cost what they read and no graph library is imported.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from itertools import chain, compress, repeat
from operator import eq, itemgetter, lt
from typing import Any

from archcalc.errors import Source
from archcalc.graph.nodes import Expectation, Node
from archcalc.layers import REGISTRY

# a node's type and inputs read by position, in C (a NamedTuple's field by name is a descriptor call)
_ID, _TYPE, _INPUTS = (itemgetter(Node._fields.index(name)) for name in ("id", "type", "inputs"))

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
        count = len(self._nodes)
        if list(map(_ID, self._nodes)) != list(range(count)):
            raise AssertionError("node ids must be 0..n-1 in creation order")
        self._inputs = list(map(_INPUTS, self._nodes))  # per node its inputs' ids: the verbs' column
        # every edge, as the tensor read and the node reading it (readers in id order), made in C
        self._sources = list(chain.from_iterable(self._inputs))
        self._readers = list(chain.from_iterable(map(repeat, range(count), map(len, self._inputs))))
        # the invariant the passes rely on (torch.fx's lint, in small): each input made before its reader
        if not all(map(lt, self._sources, self._readers)):
            late = next(r for s, r in zip(self._sources, self._readers) if s >= r)
            raise AssertionError(f"node {late} uses a later node as input")
        self._last_reader = dict(zip(self._sources, self._readers))  # the last reader of each kept

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
        last = self._last_reader
        return [n for n in self._nodes if n.id not in last]

    def token_vocab(self, input_id: int = 0) -> int | None:
        """The smallest vocabulary of the embeddings reading an input, whose values are then
        token ids below it (each axis a position, none a feature); None for any other input."""
        vocabs = [self._nodes[i].args["vocab"] for i in self._readers_of(input_id)
                  if self._nodes[i].type == "embedding"]
        return min(vocabs, default=None)

    def consumers(self, node_id: int) -> list[int]:
        """The nodes that read `node_id`'s output, in id order."""
        return list(self._consumers[node_id])

    def _readers_of(self, node_id: int) -> list[int]:
        """`consumers(node_id)` found among the edges in C, without making every node's list (the
        passes ask this of the inputs only)."""
        if "_consumers" in self.__dict__:
            return self._consumers[node_id]
        return list(dict.fromkeys(compress(self._readers, map(eq, self._sources, repeat(node_id)))))

    @cached_property
    def _consumers(self) -> list[list[int]]:
        """Each node's readers in id order (one tensor read twice by a node: once), made on first need:
        the passes read only the last reader (`last_uses`) and whether there is one (`outputs`)."""
        consumers: list[list[int]] = [[] for _ in self._nodes]
        for source, reader in zip(self._sources, self._readers):
            readers = consumers[source]
            if not readers or readers[-1] != reader:
                readers.append(reader)
        return consumers

    def inputs(self, node_id: int) -> list[Node]:
        return [self._nodes[i] for i in self._nodes[node_id].inputs]

    def last_use(self) -> dict[int, int]:
        """For each node, the id of its last consumer (itself if it has none)."""
        return dict(enumerate(self.last_uses()))

    def last_uses(self) -> list[int]:
        """`last_use` as a list by node id."""
        return list(map(self._last_reader.get, range(len(self._nodes)), range(len(self._nodes))))

    def last_readers(self, unread: int) -> list[int]:
        """By node id, the id of its last consumer, `unread` for a node nothing reads."""
        count = len(self._nodes)
        return list(map(self._last_reader.get, range(count), repeat(unread, count)))

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
        for weight, inputs in zip(map(weights.__getitem__, map(_TYPE, self._nodes)), self._inputs):
            if len(inputs) == 1:  # the usual
                add(weight + best[inputs[0]])
            elif len(inputs) == 2:  # a merge of two: the larger without a call of max
                a, b = best[inputs[0]], best[inputs[1]]
                add(weight + (a if a >= b else b))
            else:
                add(weight + max(map(best.__getitem__, inputs), default=0))
        return max(best, default=0)
