"""Parameter sharing made visible: a convolution beside the FC that would do its job.

A convolution applies one small kernel at every position. A fully connected layer that
mapped the same input to the same output would need a weight for every (input element,
output element) pair and a bias per output element:

    fc_equivalent = in_elements · out_elements + out_elements

The sharing factor is fc_equivalent / the convolution's parameters: how many times more
parameters the same map would cost without sharing (1 for a kernel that covers the
whole input, which *is* an FC). Which layers share weights across positions is each
layer type's own statement (`LayerType.dense_equivalent`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Any

from archcalc.graph import LayerGraph
from archcalc.layers import Counts
from archcalc.passes import counting
from archcalc.records import record


@record(slots=True)
class Sharing:
    """A convolution's parameters beside those of the FC that maps the same input to the same output."""

    params: int
    fc_equivalent_params: int

    @property
    def factor(self) -> float:
        return float(Fraction(self.fc_equivalent_params, self.params)) if self.params else 0.0

    def __add__(self, other: Sharing) -> Sharing:
        return Sharing(self.params + other.params, self.fc_equivalent_params + other.fc_equivalent_params)


def sharing(graph: LayerGraph, counts: Sequence[Counts]) -> tuple[Sharing | None, ...]:
    """Per node: its parameters and its FC equivalent where it shares weights; None elsewhere."""
    layers = counting.distinct(graph)
    dense = layers.each(lambda n: n.layer.dense_equivalent(n.args, n.in_shapes, n.shape))
    # one answer per distinct layer and counts object, one record per distinct (parameters, FC equivalent)
    keys = counting.layer_and_records(layers, counts)
    records: dict[tuple[int, int], Sharing] = {}

    def answer(_: Any, i: int) -> Sharing | None:
        d = dense[i]
        return None if d is None else records.setdefault((counts[i].params, d), Sharing(counts[i].params, d))

    made = counting.once_per_key(keys, answer)
    out = list(counting.picked(made, keys))
    for n in layers.borrowing:
        if n.shares is not None:  # a second use of the same weights is shown at their owner
            out[n.id] = None
    return tuple(out)


def total(items: Iterable[Sharing | None]) -> Sharing:
    return counting.total([s for s in items if s is not None], Sharing(0, 0))
