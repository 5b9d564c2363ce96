"""Parameter sharing made visible, and connections as LeCun et al. 1998 count them.

A convolution applies one small kernel at every position. A fully connected layer that
mapped the same input to the same output would need a weight for every (input element,
output element) pair and a bias per output element:

    fc_equivalent = in_elements · out_elements + out_elements

The sharing factor is fc_equivalent / the convolution's parameters: how many times more
parameters the same map would cost without sharing (1 for a kernel that covers the
whole input, which *is* an FC). `connections` are each unit's inputs plus its bias,
the figure LeNet-5's paper gives beside its trainable parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from archcalc.graph import LayerGraph, Node
from archcalc.layers import Counts
from archcalc.tensor import prod


@dataclass(frozen=True)
class Sharing:
    """A convolution's parameters beside those of the FC that maps the same input to the same output."""

    params: int
    fc_equivalent_params: int

    @property
    def factor(self) -> float:
        return self.fc_equivalent_params / self.params if self.params else 0.0

    def __add__(self, other: Sharing) -> Sharing:
        return Sharing(self.params + other.params, self.fc_equivalent_params + other.fc_equivalent_params)


def fc_equivalent(node: Node) -> int:
    """in_elements·out_elements + out_elements: an FC from the node's input to its output."""
    out = prod(node.shape)
    return prod(node.in_shapes[0]) * out + out


def sharing_of(node: Node, counts: Counts) -> Sharing | None:
    """A convolution's (kind 'conv') sharing; None for any other layer."""
    return Sharing(counts.params, fc_equivalent(node)) if node.layer.kind == "conv" else None


def sharing(graph: LayerGraph, counts: Mapping[int, Counts]) -> dict[int, Sharing]:
    """Every convolution with its FC equivalent."""
    found = {n.id: sharing_of(n, counts[n.id]) for n in graph}
    return {i: s for i, s in found.items() if s is not None}


def total(items: Iterable[Sharing]) -> Sharing:
    out = Sharing(0, 0)
    for s in items:
        out = out + s
    return out


def connections(graph: LayerGraph) -> dict[int, int]:
    """Per node: every input a unit reads plus one for its bias, summed over units."""
    return {n.id: n.layer.connections(n.args, n.in_shapes, n.shape) for n in graph}
