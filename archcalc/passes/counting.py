"""Parameters, MACs, other operations and connections per node, as docs/conventions.md defines them.

- params = learnable elements (weights + biases), exactly sum(p.numel()) of the built model;
  buffers (BatchNorm running statistics and batch counter) are counted apart.
- MACs = multiply-accumulates of convolutions and FC layers; bias adds are not MACs.
- FLOPs = FLOPS_PER_MAC × MACs, what torch.utils.flop_counter.FlopCounterMode reports.
- other ops = everything else (bias adds, norms, activations, pooling, merges), by kind.
- connections = each unit's inputs plus one for its bias, summed (LeCun et al. 1998).

Each pass returns one value per node, indexed by node id.
"""

from __future__ import annotations

from archcalc.graph import LayerGraph
from archcalc.layers import Counts, OtherOps

FLOPS_PER_MAC = 2  # one multiply and one add: FlopCounterMode's convention, written here only


def counts(graph: LayerGraph) -> tuple[Counts, ...]:
    return tuple(n.layer.counts(n.args, n.in_shapes, n.shape) for n in graph)


def macs(graph: LayerGraph) -> tuple[int, ...]:
    return tuple(n.layer.macs(n.args, n.in_shapes, n.shape) for n in graph)


def other_ops(graph: LayerGraph) -> tuple[OtherOps, ...]:
    return tuple(n.layer.other_ops(n.args, n.in_shapes, n.shape) for n in graph)


def connections(graph: LayerGraph) -> tuple[int, ...]:
    """Per node: every input a unit reads plus one for its bias, summed over units."""
    return tuple(n.layer.connections(n.args, n.in_shapes, n.shape) for n in graph)
