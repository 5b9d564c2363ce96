"""Run every pass over a graph and keep the results together, read-only.

Renderers read an `Analysis`; they never compute figures themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import reduce

from archcalc.graph import LayerGraph, Node
from archcalc.layers import Counts, OtherOps
from archcalc.passes import counting, receptive_field
from archcalc.passes import memory as memory_pass
from archcalc.passes.memory import Memory, MemoryOptions
from archcalc.passes.receptive_field import Field
from archcalc.tensor import prod


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
    rf: Mapping[int, Field]  # per node: an RF record, or GLOBAL
    memory: Memory  # bytes for the dtype, batch and optimizer it was asked for

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
                sum(prod(n.shape) for n in nodes),
            )
            for kind, nodes in kinds.items()
        ]


def analyze(graph: LayerGraph, memory_options: MemoryOptions | None = None) -> Analysis:
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
    rf = receptive_field.receptive_fields(graph)
    mem = memory_pass.memory(graph, counts, memory_options or MemoryOptions())
    return Analysis(graph, counts, macs, other, totals, warnings, rf, mem)
