"""Run every pass over a graph and keep the results together, read-only.

Each figure is computed here once, by its pass, and indexed by node id; renderers,
`check`, `compare`, `explain` and `verify` only read an `Analysis` (by name, through
`passes.figures`, or by these fields). Nothing downstream recomputes a figure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from functools import cached_property
from itertools import compress
from operator import attrgetter

from archcalc.graph import LayerGraph
from archcalc.layers import Counts, OtherOps
from archcalc.passes import conventions as conventions_pass
from archcalc.passes import counting, receptive_field, sharing
from archcalc.passes import memory as memory_pass
from archcalc.passes import training as training_pass
from archcalc.passes.attention import AttentionFigures, attention_figures
from archcalc.passes.conventions import Counted
from archcalc.passes.counting import FLOPS_PER_MAC
from archcalc.passes.memory import Memory, MemoryOptions
from archcalc.passes.receptive_field import Field
from archcalc.passes.sharing import Sharing
from archcalc.passes.training import Training, TrainingOptions
from archcalc.quiet_gc import paused
from archcalc.records import record
from archcalc.tensor import format_shape, prod


@record
class Warning_:
    """A note about one layer (e.g. a floored division), with where it was written."""

    layer: int
    line: int | None
    message: str


@record
class Totals:
    """The whole network's figures: sums of every node's."""

    counts: Counts
    macs: int
    other_ops: OtherOps
    connections: int
    sharing: Sharing  # every weight-sharing layer's parameters beside its FC equivalent
    reused: int = 0  # parameter elements a per-call count would add again (shared and tied weights)

    @property
    def params(self) -> int:
        """Unique parameter elements: `sum(p.numel() for p in model.parameters())`."""
        return self.counts.params

    @property
    def params_if_unshared(self) -> int:
        """The parameters as tools that count every call of a shared module (or each holder of a
        tied tensor) report them."""
        return self.counts.params + self.reused

    @property
    def flops(self) -> int:
        return FLOPS_PER_MAC * self.macs


@record
class KindTotals:
    """Totals for one kind of layer (conv, fc, ...): where weights and work sit."""

    kind: str
    params: int
    macs: int
    activations: int  # output elements of layers of this kind


@record  # its own __repr__ below is kept
class Analysis:
    """Every static figure of a graph, one value per node (indexed by id) and the totals."""

    graph: LayerGraph
    counts: Sequence[Counts]
    macs: Sequence[int]
    other_ops: Sequence[OtherOps]
    connections: Sequence[int]
    uses: Sequence[int]  # how many layers use each node's weights (0 for a layer using another's)
    sharing: Sequence[Sharing | None]  # None for layers that do not share weights across positions
    rf: Sequence[Field]  # an RF record, or GLOBAL
    memory: Memory  # bytes for the dtype, batch and optimizer it was asked for
    totals: Totals
    kinds: tuple[KindTotals, ...]
    warnings: tuple[Warning_, ...]
    final_rf: int | None  # the last spatial layer before the network goes global (VGG's pool5)
    attention: AttentionFigures  # T² MACs, causal-aware MACs, KV cache (passes/attention.py)

    @property
    def batch(self) -> int:
        """The samples per batch the per-batch figures (and every byte count) are for."""
        return self.memory.options.batch

    convention: str = conventions_pass.DEFAULT  # the counting convention asked for (`--convention`)
    training_options: TrainingOptions | None = None  # the training step's (None: the memory options')

    # The eight conventions and the training step are computed on first read, once: the default
    # table reads neither; JSON, --convention and --training do. Same figures either way.

    @cached_property
    def conventions(self) -> Mapping[str, Counted]:
        """Every counting convention's figures (passes/conventions.py), by name."""
        with paused():
            return conventions_pass.count_all(self.graph, self.macs, self.counts)

    @cached_property
    def training(self) -> Training:
        """One training step (passes/training.py)."""
        options = self.training_options or _training_options(self.memory.options)
        with paused():
            return training_pass.training(self.graph, self.counts, self.macs, options)

    @property
    def counted(self) -> Counted:
        """The network counted under the chosen convention (`--convention`)."""
        return self.conventions[self.convention]

    @property
    def step(self) -> Training:
        """The training step."""
        return self.training

    def flops(self, node_id: int) -> int:
        return FLOPS_PER_MAC * self.macs[node_id]

    def share(self, node_id: int) -> float:
        """This node's share of all parameters, 0..1."""
        total = self.totals.params
        return self.counts[node_id].params / total if total else 0.0

    def by_kind(self) -> tuple[KindTotals, ...]:
        return self.kinds

    @property
    def unknown_ops(self) -> tuple[int, ...]:
        """Nodes of operations archcalc has no rule for (kept by an import with --allow-unknown):
        their parameters are counted as measured, their work in no total."""
        # asked of one node per distinct layer first: most graphs have none, and are not walked
        types = {n.type for n in counting.distinct(self.graph).first if n.layer.kind == "unknown"}
        return tuple([n.id for n in self.graph if n.type in types]) if types else ()

    def excluding(self) -> str:
        """'' or ' (excluding 3 unknown ops)': what every total of work must say."""
        n = len(self.unknown_ops)
        return f" (excluding {n} unknown op{'s' if n != 1 else ''})" if n else ""

    def __repr__(self) -> str:
        g, t = self.graph, self.totals
        return (f"<Analysis {g.name}: input {format_shape(g.input.shape)} → {format_shape(g.output.shape)}, "
                f"{len(g) - 1} layers, {t.params:,} params, {t.macs:,} MACs>")


def analyze(graph: LayerGraph, memory_options: MemoryOptions | None = None, convention: str = "pytorch",
            training_options: TrainingOptions | None = None) -> Analysis:
    with paused():
        return _analyze(graph, memory_options, convention, training_options)


def _analyze(graph: LayerGraph, memory_options: MemoryOptions | None, convention: str,
             training_options: TrainingOptions | None) -> Analysis:
    counts = counting.counts(graph)
    macs = counting.macs(graph)
    other = counting.other_ops(graph)
    connections = counting.connections(graph)
    shared = sharing.sharing(graph, counts)
    totals = Totals(
        counting.summed(graph, counts, Counts()),
        sum(macs),
        counting.summed(graph, other, OtherOps()),
        sum(connections),
        sharing.total(shared),
        counting.reused(graph),
    )
    warned = compress(graph, map(attrgetter("warnings"), graph))  # most nodes have none: picked out in C
    warnings = tuple(
        Warning_(n.id, n.loc.line if n.loc else None, f"{n.text}: {w}") for n in warned for w in n.warnings
    )
    rf = receptive_field.receptive_fields(graph)
    options = memory_options or MemoryOptions(batch=graph.params.get("batch", 1))
    mem = memory_pass.memory(graph, counts, options, totals.counts)
    kinds = _by_kind(graph, counts, macs)
    conventions_pass.get(convention)  # an unknown name is refused now, not at first read
    return Analysis(graph, counts, macs, other, connections, counting.uses(graph), shared, rf, mem, totals,
                    kinds, warnings, receptive_field.last_spatial(graph, rf), attention_figures(graph, options),
                    convention, training_options)


def _training_options(memory: MemoryOptions) -> TrainingOptions:
    """The training step for the memory options' batch and optimizer, in fp32 (or half precision)."""
    precision = {"float16": "fp16", "bfloat16": "bf16"}.get(memory.dtype, "fp32")
    return TrainingOptions(memory.optimizer, precision, batch=memory.batch)


def _by_kind(graph: LayerGraph, counts: Sequence[Counts], macs: Sequence[int]) -> tuple[KindTotals, ...]:
    """Per kind of layer, in the order kinds first occur: each (distinct layer, counts, MACs) once,
    times how often it occurs."""
    layers = counting.distinct(graph)
    sums: dict[str, list[int]] = {}
    for (group, counted, m), times in _tally(layers, counts, macs):
        n = layers.first[group]
        if n.type != "input":
            s = sums.setdefault(n.layer.kind, [0, 0, 0])
            s[0] += counted.params * times
            s[1] += m * times
            s[2] += prod(n.shape) * times
    return tuple(KindTotals(kind, *s) for kind, s in sums.items())


def _tally(layers: counting.Distinct, counts: Sequence[Counts], macs: Sequence[int]
           ) -> list[tuple[tuple[int, Counts, int], int]]:
    """Each distinct (layer, counts, MACs) and how often it occurs, in the order they first occur:
    the distinct layers and their sizes, where every node holds its layer's counts and MACs."""
    if counting.layer_keys(layers, counts, macs) is not None:
        return [((g, counts[n.id], macs[n.id]), k) for g, (n, k) in enumerate(zip(layers.first, layers.times))]
    by_id = {id(c): c for c in counts}  # `counts` holds them: their ids stay unique
    return [((g, by_id[c], m), k) for (g, c, m), k in Counter(zip(layers.group, map(id, counts), macs)).items()]
