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

from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from archcalc.graph import LayerGraph, Node
from archcalc.layers import Counts, OtherOps
from archcalc.tensor import prod

T = TypeVar("T")

FLOPS_PER_MAC = 2  # one multiply and one add: FlopCounterMode's convention, written here only


def per_node(graph: LayerGraph, rule: Callable[[Node], T]) -> tuple[T, ...]:
    """`rule` for every node, asked once per distinct layer: identical layers (one arguments dict,
    the same shapes) give the same answer, and generated specs repeat a few layers many times."""
    memo: dict[tuple[Any, ...], T] = {}
    out = []
    for n in graph:
        key = (n.type, id(n.args), n.in_shapes, n.shape)  # args live as long as the graph: ids stay unique
        if key not in memo:
            memo[key] = rule(n)
        out.append(memo[key])
    return tuple(out)


def counts(graph: LayerGraph) -> tuple[Counts, ...]:
    own = per_node(graph, own_counts)
    return tuple(c if n.shares is None and n.tie is None else _counts(graph, n) for n, c in zip(graph, own))


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
    count = [0 if n.shares is not None else 1 for n in graph]
    for n in graph:
        if n.shares is not None:
            count[n.shares] += 1
    return tuple(count)


def reused(graph: LayerGraph) -> int:
    """Parameter elements counted again by every further use of shared or tied weights: what a
    tool that counts each module call (or each module holding a tied tensor) adds on top."""
    total = 0
    for n in graph:
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
