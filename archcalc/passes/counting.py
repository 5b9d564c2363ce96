"""Parameters, MACs, other operations and connections per node, as docs/conventions.md defines them.

- params = learnable elements (weights + biases), exactly sum(p.numel()) of the built model;
  buffers (BatchNorm running statistics and batch counter) are counted apart.
- MACs = multiply-accumulates of convolutions and FC layers; bias adds are not MACs.
- FLOPs = FLOPS_PER_MAC × MACs, what torch.utils.flop_counter.FlopCounterMode reports.
- other ops = everything else (bias adds, norms, activations, pooling, merges), by kind.
- connections = each unit's inputs plus one for its bias, summed (LeCun et al. 1998).
- shared and tied weights are counted once, at the layer that owns them: a layer applying
  another's weights again holds no parameters of its own, a tied layer none of the tied
  tensor; MACs are counted per call. `frozen` layers' parameters are counted as frozen.

Each pass returns one value per node, indexed by node id.
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import field, fields, replace
from itertools import compress
from operator import attrgetter, is_, itemgetter, mul
from typing import TYPE_CHECKING, Any, TypeVar

from archcalc.alike import PLAIN, value_key
from archcalc.graph import LayerGraph, Node
from archcalc.layers import Counts, OtherOps
from archcalc.records import record
from archcalc.tensor import prod

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T")
K = TypeVar("K")  # a key of nodes alike: hashable
R = TypeVar("R", bound="DataclassInstance")

FLOPS_PER_MAC = 2  # one multiply and one add: FlopCounterMode's convention, written here only


@record
class Distinct:
    """A graph's distinct layers. A layer type's rules are pure functions of its type, arguments
    and shapes, so identical layers (one arguments dict, the same shapes) get the same answer, and
    generated specs repeat a few layers many times: each rule is asked once per distinct layer."""

    group: tuple[int, ...]  # per node id: the index of its distinct layer
    first: tuple[Node, ...]  # per distinct layer: its first node, which the rules are asked about
    # the nodes whose weights are another's, shared (`shares`) or tied (`tie`), in id order: the few
    # whose counts are not their distinct layer's
    borrowing: tuple[Node, ...] = ()
    times: tuple[int, ...] = ()  # per distinct layer: how many nodes it has
    # by id: tuples of one value per node, each kept with whether every node holds its distinct
    # layer's object (`layer_keys`), found once: what `each` makes holds by construction
    held: dict[int, tuple[tuple[Any, ...], bool]] = field(default_factory=dict, compare=False, repr=False)

    def each(self, rule: Callable[[Node], T]) -> tuple[T, ...]:
        """`rule` of every node (by id), asked of one node per distinct layer."""
        answers = [rule(n) for n in self.first]
        out = picked(answers, self.group)
        self.held[id(out)] = (out, True)
        return out

    def holds(self, column: Sequence[Any]) -> bool:
        """Whether `column` (one value per node id) holds at every node the very object its distinct
        layer's first node holds."""
        known = self.held.get(id(column))
        if known is not None and known[0] is column:
            return known[1]
        firsts = [column[n.id] for n in self.first]
        found = all(map(is_, column, picked(firsts, self.group)))
        if type(column) is tuple:  # kept with it, so that its id stays its own; a list may change
            self.held[id(column)] = (column, found)
        return found


# Each graph's grouping, made once and dropped with the graph. A graph never changes once built,
# and the ids of its arguments dicts stay unique while its nodes live (as long as the graph does).
_DISTINCT: weakref.WeakKeyDictionary[LayerGraph, Distinct] = weakref.WeakKeyDictionary()


def distinct(graph: LayerGraph) -> Distinct:
    """The graph's distinct layers, by `(type, arguments, input shapes, output shape)`: arguments
    alike by value (and by the type of every value: 1, 1.0 and True stay apart), or the same dict."""
    found = _DISTINCT.get(graph)
    if found is None:
        found = _DISTINCT[graph] = _grouped(graph)
    return found


def _grouped(graph: LayerGraph) -> Distinct:
    borrowing = tuple([n for n in graph if n.shares is not None or n.tie is not None])
    if graph.alike is None:
        group, first = _grouping(graph)
        return _distinct(tuple(group), tuple(first), borrowing)
    # the shapes pass numbered the nodes holding the same objects: one node of each number is grouped
    numbers = graph.alike
    ordered = sorted(first_index(numbers).values())  # in node order, so that the groups come in the order they occur
    groups, first = _grouping(map(graph.node, ordered))
    group_of = dict(zip(map(numbers.__getitem__, ordered), groups))
    return _distinct(picked(group_of, numbers), tuple(first), borrowing)


def _distinct(group: tuple[int, ...], first: tuple[Node, ...], borrowing: tuple[Node, ...]) -> Distinct:
    sizes = Counter(group)
    return Distinct(group, first, borrowing, tuple(map(sizes.__getitem__, range(len(first)))))


def _grouping(nodes: Iterable[Node]) -> tuple[list[int], list[Node]]:
    """The group of each of `nodes` (in id order) and the first node of each group."""
    by_object: dict[int, int] = {}  # id(arguments) → the number of their value
    by_value: dict[Any, int] = {}
    index: dict[tuple[Any, ...], int] = {}
    # the shapes pass gives the nodes alike one arguments dict and one tuple of each shape: nodes
    # holding the same objects are found by their ids (the graph holds them), without hashing shapes
    by_identity: dict[tuple[str, int, int, int], int] = {}
    first: list[Node] = []
    group = []
    for n in nodes:
        same = (n.type, id(n.args), id(n.in_shapes), id(n.shape))
        g = by_identity.get(same)
        if g is None:
            args = by_object.get(id(n.args))
            if args is None:
                args = by_object[id(n.args)] = by_value.setdefault(_value_key(n.args), len(by_value))
            key = (n.type, args, n.in_shapes, n.shape)
            g = index.get(key)
            if g is None:
                g = index[key] = len(first)
                first.append(n)
            by_identity[same] = g
        group.append(g)
    return group, first


def _value_key(args: Mapping[str, Any]) -> Any:
    """Arguments as a hashable value that tells apart every two that a rule could tell apart:
    names, values and their types, floats to the bit (`alike.value_key`); an arguments dict holding
    anything else (a dict, a record) is only ever alike to itself."""
    key: list[Any] = []
    try:
        for name, v in args.items():
            t = type(v)
            if t in PLAIN:
                key.append((name, t, v))
            elif t is tuple and PLAIN.issuperset(types := tuple(map(type, v))):
                key.append((name, types, v))  # (3, 3), (True, True): the most common tuples
            else:
                key.append((name, value_key(v)))
    except TypeError:
        return ("object", id(args))
    return tuple(key)


def per_node(graph: LayerGraph, rule: Callable[[Node], T]) -> tuple[T, ...]:
    """`rule` for every node, asked once per distinct layer (`distinct`): only for rules that read
    nothing but a node's type, arguments and shapes."""
    return distinct(graph).each(rule)


def picked(values: Any, keys: Sequence[Any]) -> tuple[Any, ...]:
    """`values[k]` for each of `keys` (one per node id), as a tuple made in C: an itemgetter of every
    key fills it in half the time a map over `values.__getitem__` takes."""
    if len(keys) == 1:  # an itemgetter of one key gives the value, not a tuple
        return (values[keys[0]],)
    return itemgetter(*keys)(values) if keys else ()


def first_index(keys: Sequence[K]) -> dict[K, int]:
    """Each distinct key of `keys` (one per node id) and the first node holding it, made in C (the
    keys written from the last, so the first index of each is the one kept)."""
    return dict(zip(reversed(keys), range(len(keys) - 1, -1, -1)))


def once_per_key(keys: Sequence[K], make: Callable[[K, int], T]) -> dict[K, T]:
    """`make(key, i)` once per distinct key of `keys` (one per node id), `i` the first node holding it,
    in the order the keys first occur: what the nodes alike share, the keys made and looked up in C."""
    first = first_index(keys)
    return {key: make(key, first[key]) for key in dict.fromkeys(keys)}


def layer_keys(layers: Distinct, *columns: Sequence[Any]) -> Sequence[Any] | None:
    """`layers.group`, where each column (one value per node id) holds at every node the very object
    its group's first node holds (a rule's answer per distinct layer, `Distinct.each`): the group
    then tells apart what the columns would. None where some node holds its own (a sharer's counts)."""
    return layers.group if all(map(layers.holds, columns)) else None


def layer_and_records(layers: Distinct, records: Sequence[Any]) -> Sequence[Any]:
    """A key per node for what depends on its distinct layer and its record (its counts): the group
    alone where every node holds its layer's record (`layer_keys`), else (group, id of the record);
    `records` holds the objects, so their ids stay unique while it lives."""
    return layer_keys(layers, records) or list(zip(layers.group, map(id, records)))


def by_owner(graph: LayerGraph, values: Sequence[T]) -> tuple[T, ...]:
    """`values` (one per node id) with a sharer's replaced by its owner's: per node, the value of
    the module it calls."""
    sharers = [n for n in distinct(graph).borrowing if n.shares is not None]
    if not sharers:
        return tuple(values)
    out = list(values)
    for n in sharers:
        out[n.id] = values[n.shares]  # type: ignore[index]
    return tuple(out)


def total(records: Iterable[R], zero: R) -> R:
    """The field-wise sum of frozen records of `zero`'s type (`Counts`, `OtherOps`), each distinct
    object counted once and multiplied by how often it occurs (identical layers share one record),
    instead of one new record per addition."""
    items = list(records)
    if not items:
        return zero
    by_id = dict(zip(map(id, items), items))  # the records live in `items`: their ids stay unique
    tally = Counter(map(id, items))
    kind = type(zero)
    return kind(**{f.name: sum(getattr(by_id[i], f.name) * k for i, k in tally.items()) for f in fields(kind)})


def summed(graph: LayerGraph, records: Sequence[R], zero: R, where: Callable[[Node], bool] | None = None) -> R:
    """`total` of records of one per node id (of the nodes `where` holds for: a rule of a node's
    type, arguments and shapes); where each node holds its distinct layer's record (`layer_keys`),
    each distinct layer's once, times its nodes, without counting the objects."""
    layers = distinct(graph)
    if len(records) != len(layers.group) or layer_keys(layers, records) is None:
        return total(records if where is None else compress(records, per_node(graph, where)), zero)
    kept = [(n, k) for n, k in zip(layers.first, layers.times) if where is None or where(n)]
    once, times = [records[n.id] for n, _ in kept], [k for _, k in kept]
    kind = type(zero)
    return kind(**{f.name: sum(map(mul, map(attrgetter(f.name), once), times)) for f in fields(kind)})


def counts(graph: LayerGraph) -> tuple[Counts, ...]:
    layers = distinct(graph)
    out = layers.each(own_counts)
    if not layers.borrowing:
        return out
    changed = list(out)
    for n in layers.borrowing:
        changed[n.id] = _counts(graph, n)
    return tuple(changed)


def own_counts(n: Node) -> Counts:
    """A layer's parameters as if it owned every one of them (its rule, frozen ones marked)."""
    c = n.layer.counts(n.args, n.in_shapes, n.shape)
    return replace(c, frozen=c.params) if n.args.get("frozen") and c.params else c


def _counts(graph: LayerGraph, n: Node) -> Counts:
    """What this node adds to `sum(p.numel())`: nothing where it applies another's weights,
    its own minus the tied tensor where its weight is another's."""
    if n.shares is not None:
        return Counts()
    c = own_counts(n)
    if n.tie is None:
        return c
    tied = prod(n.layer.param_shapes(n.args, n.in_shapes, n.shape)["weight"])
    frozen = max(0, c.frozen - tied)
    return replace(c, weights=c.weights - tied, frozen=frozen)


def uses(graph: LayerGraph) -> tuple[int, ...]:
    """Per node: how many layers use its weights (itself and every one sharing them); 0 for a sharer."""
    count = [1] * len(graph)
    for n in distinct(graph).borrowing:
        if n.shares is not None:
            count[n.id] -= 1
            count[n.shares] += 1
    return tuple(count)


def reused(graph: LayerGraph) -> int:
    """Parameter elements counted again by every further use of shared or tied weights: what a
    tool that counts each module call (or each module holding a tied tensor) adds on top."""
    total = 0
    for n in distinct(graph).borrowing:
        if n.shares is not None:
            total += own_counts(graph.node(n.shares)).params
        elif n.tie is not None:
            total += prod(n.layer.param_shapes(n.args, n.in_shapes, n.shape)["weight"])
    return total


def macs(graph: LayerGraph) -> tuple[int, ...]:
    return per_node(graph, lambda n: n.layer.macs(n.args, n.in_shapes, n.shape))


def other_ops(graph: LayerGraph) -> tuple[OtherOps, ...]:
    return per_node(graph, lambda n: n.layer.other_ops(n.args, n.in_shapes, n.shape))


def connections(graph: LayerGraph) -> tuple[int, ...]:
    """Per node: every input a unit reads plus one for its bias, summed over units."""
    return per_node(graph, lambda n: n.layer.connections(n.args, n.in_shapes, n.shape))
