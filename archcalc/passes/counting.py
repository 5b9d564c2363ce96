"""Parameters, MACs and other operations per node, as ../shared/conventions.md defines them.

- params = learnable elements (weights + biases), exactly sum(p.numel()) of the built model;
  buffers (BatchNorm running statistics and batch counter) are counted apart.
- MACs = multiply-accumulates of convolutions and FC layers; bias adds are not MACs.
- FLOPs = 2 × MACs, what torch.utils.flop_counter.FlopCounterMode reports.
- other ops = everything else (bias adds, norms, activations, pooling, merges), by kind.
"""

from __future__ import annotations

from archcalc.graph import LayerGraph
from archcalc.layers import Counts, OtherOps


def counts(graph: LayerGraph) -> dict[int, Counts]:
    return {n.id: n.layer.counts(n.args, n.in_shapes, n.shape) for n in graph}


def macs(graph: LayerGraph) -> dict[int, int]:
    return {n.id: n.layer.macs(n.args, n.in_shapes, n.shape) for n in graph}


def other_ops(graph: LayerGraph) -> dict[int, OtherOps]:
    return {n.id: n.layer.other_ops(n.args, n.in_shapes, n.shape) for n in graph}


def flops(macs_by_node: dict[int, int]) -> dict[int, int]:
    """FLOPs = 2 × MACs: one multiply and one add each (FlopCounterMode's convention)."""
    return {k: 2 * v for k, v in macs_by_node.items()}
