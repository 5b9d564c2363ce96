"""Run every pass over a graph and keep the results together, read-only.

Renderers read an `Analysis`; they never compute figures themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import reduce

from archcalc.graph import LayerGraph, Node
from archcalc.layers import Counts, OtherOps
from archcalc.passes import counting


@dataclass(frozen=True)
class Warning_:
    """A note about one layer (e.g. a floored division), with where it was written."""

    layer: int
    line: int | None
    message: str


@dataclass(frozen=True)
class Totals:
    counts: Counts
    macs: int
    other_ops: OtherOps

    @property
    def params(self) -> int:
        return self.counts.params

    @property
    def flops(self) -> int:
        return 2 * self.macs


@dataclass(frozen=True)
class KindTotals:
    """Totals for one kind of layer (conv, fc, ...): where weights and work sit."""

    kind: str
    params: int
    macs: int
    activations: int  # output elements of layers of this kind


@dataclass(frozen=True)
class Analysis:
    graph: LayerGraph
    counts: Mapping[int, Counts]
    macs: Mapping[int, int]
    other_ops: Mapping[int, OtherOps]
    totals: Totals
    warnings: tuple[Warning_, ...]

    def flops(self, node_id: int) -> int:
        return 2 * self.macs[node_id]

    def share(self, node_id: int) -> float:
        """This node's share of all parameters, 0..1."""
        total = self.totals.params
        return self.counts[node_id].params / total if total else 0.0

    def by_kind(self) -> list[KindTotals]:
        kinds: dict[str, list[Node]] = {}
        for n in self.graph:
            if n.type != "input":
                kinds.setdefault(n.layer.kind, []).append(n)
        return [
            KindTotals(
                kind,
                sum(self.counts[n.id].params for n in nodes),
                sum(self.macs[n.id] for n in nodes),
                sum(_elements(n) for n in nodes),
            )
            for kind, nodes in kinds.items()
        ]


def _elements(node: Node) -> int:
    out = 1
    for s in node.shape:
        out *= s
    return out


def analyze(graph: LayerGraph) -> Analysis:
    counts = counting.counts(graph)
    macs = counting.macs(graph)
    other = counting.other_ops(graph)
    totals = Totals(
        reduce(Counts.__add__, counts.values(), Counts()),
        sum(macs.values()),
        reduce(OtherOps.__add__, other.values(), OtherOps()),
    )
    warnings = tuple(
        Warning_(n.id, n.loc.line if n.loc else None, f"{n.text}: {w}") for n in graph for w in n.warnings
    )
    return Analysis(graph, counts, macs, other, totals, warnings)
