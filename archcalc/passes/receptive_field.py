"""Receptive field per node and spatial axis, and the path counts of Luo et al. 2016.

The forward recursion of ../shared/conventions.md ("Receptive field"), through each
node's `Geometry` (kernel K, stride S, padding P, dilation D per axis):

    j_out = j_in·S      r_out = r_in + D·(K − 1)·j_in      start_out = start_in − P·j_in

from r = 1, j = 1, start = 0 at the input. Where paths merge (add, concat, mul) the
largest field wins, per axis; differing jumps or centers mark the node *not aligned*
and keep every center. Global pooling, flatten of a spatial tensor, an FC on it or a
gate computed from a global value make the field GLOBAL, and so is everything after;
so does a window layer whose one output unit spans its whole input (avgpool7 on 7×7).
This is the algorithm of the Distill receptive-field library (google-research/
receptive_field), run forward in topological order, one record per value.

Position axes follow each node's layout: all but the first of a channels-first tensor
(C×H×W), all but the last of a sequence (T×F), every axis of token ids (an input read by
embeddings). An embedding gives each position its one token's vector, so r = 1, j = 1,
start = 0 over the T tokens; `to-channels`/`to-sequence` only move the axis and keep the
field, and a Conv1d of width 3 after them sees 3 words. A recurrent layer's step t sees
every step before it (and after it, bidirectional): not a window that slides, so GLOBAL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from archcalc.graph import LayerGraph, Node
from archcalc.layers import GLOBAL, UNKNOWN, Geometry
from archcalc.passes.counting import per_node
from archcalc.tensor import spatial_axis_names


@dataclass(frozen=True, slots=True)
class RF:
    """The receptive field of one node's output units, one entry per spatial axis."""

    size: tuple[int, ...]
    jump: tuple[int, ...]
    start: tuple[int, ...]
    aligned: bool = True
    # only where not aligned: per axis, every distinct center the merged paths have
    centers: tuple[tuple[float, ...], ...] = ()
    why: str = ""  # why not aligned, naming the node where it happened

    @property
    def rank(self) -> int:
        return len(self.size)

    @property
    def center(self) -> tuple[float, ...]:
        """Center of unit 0's field: start + (r − 1)/2 (of the largest path where not aligned)."""
        return tuple(s + (r - 1) / 2 for s, r in zip(self.start, self.size, strict=True))

    def axis_centers(self) -> tuple[tuple[float, ...], ...]:
        return self.centers or tuple((c,) for c in self.center)


Field = RF | str  # an RF; GLOBAL (every output unit sees the whole input); UNKNOWN; or NO_INPUT
NO_INPUT = "none"  # a free parameter's value reads no input at all


def axis_names(rank: int) -> tuple[str, ...]:
    """The RF's axes in lower case, as messages name them: ('h', 'w')."""
    return tuple(name.lower() for name in spatial_axis_names(rank))


def receptive_fields(graph: LayerGraph) -> tuple[Field, ...]:
    """The field of every node, by node id (computed in topological order)."""
    geometries = per_node(graph, lambda n: n.layer.geometry(n.args, n.in_shapes))
    fields: list[Field] = []
    for node in graph:
        if node.type == "input":  # a plain tensor's axes mean nothing: no positions to follow
            fields.append(UNKNOWN if node.layout == "plain" else input_field(graph, node.id))
        elif not node.inputs:
            fields.append(NO_INPUT)
        else:
            fields.append(node_field(node, [fields[i] for i in node.inputs], geometries[node.id]))
    return tuple(fields)


def positions(shape: Sequence[int], layout: str) -> tuple[int, ...]:
    """The sizes of a tensor's position axes: all but the features (last) of a sequence T×F,
    all but the channels (first) of a channels-first tensor."""
    return tuple(shape[:-1] if layout == "sequence" else shape[1:])


def input_field(graph: LayerGraph, input_id: int = 0) -> RF:
    """r = 1, j = 1, start = 0 on every position axis of an input; token ids have no feature axis."""
    node = graph.node(input_id)
    if graph.token_vocab(input_id) is not None:
        rank = len(node.shape)
    else:
        rank = len(positions(node.shape, node.layout))
    return RF((1,) * rank, (1,) * rank, (0,) * rank)


_ASK = object()  # node_field asks the layer for its geometry


def node_field(node: Node, fields: Sequence[Field], geometry: Any = _ASK) -> Field:
    """The field of one node from its inputs' fields and its layer's geometry (asked here unless given)."""
    kept = [(f, s) for f, s in zip(fields, node.in_shapes) if f != NO_INPUT]  # a free parameter adds no field
    if not kept:
        return NO_INPUT
    inputs = [f for f, _ in kept]
    if any(f == GLOBAL for f in inputs):
        return GLOBAL  # e.g. a squeeze-excitation gate computed from a global pool
    if geometry is _ASK:
        geometry = node.layer.geometry(node.args, node.in_shapes)
    if geometry == GLOBAL:
        return GLOBAL
    if UNKNOWN in inputs or geometry == UNKNOWN or node.layout == "plain":
        return UNKNOWN  # positions moved on the way (a reshape, a permute), or never had a meaning
    here = positions(node.shape, node.layout)
    if len(inputs) > 1 and any(positions(s, node.layout) != here for _, s in kept):
        # a broadcast input (a 1×1 gate) gives every output unit the same extra
        # field: not a window that slides, so no (r, j, start) describes it
        return GLOBAL
    merged = merge(node, [f for f in inputs if isinstance(f, RF)])
    if geometry is None:
        # a layer that changes the number of spatial axes without saying how is
        # taken to mix everything: global, never a made-up number
        return merged if merged.rank == len(here) else GLOBAL
    assert isinstance(geometry, Geometry)
    if covers_everything(geometry, node.in_shapes[0][1:], node.shape[1:]):
        return GLOBAL  # a 7×7 average pool on a 7×7 map is a global pool by another name
    return through(merged, geometry)


def covers_everything(g: Geometry, sizes: Sequence[int], out: Sequence[int]) -> bool:
    """Whether there is one output unit per axis, whose window spans the whole input."""
    return bool(sizes) and all(
        o == 1 and g.padding[a] >= 0 and size - 1 <= g.dilation[a] * (g.kernel[a] - 1) - g.padding[a]
        for a, (size, o) in enumerate(zip(sizes, out, strict=True))
    )


def through(rf: RF, g: Geometry) -> RF:
    """One window layer's forward recursion, per axis."""
    axes = range(rf.rank)
    size = tuple(rf.size[a] + g.dilation[a] * (g.kernel[a] - 1) * rf.jump[a] for a in axes)
    jump = tuple(rf.jump[a] * g.stride[a] for a in axes)
    start = tuple(rf.start[a] - g.padding[a] * rf.jump[a] for a in axes)
    # every center moves as start + (r − 1)/2 does
    shift = tuple(rf.jump[a] * (g.dilation[a] * (g.kernel[a] - 1) / 2 - g.padding[a]) for a in axes)
    centers = tuple(tuple(c + shift[a] for c in cs) for a, cs in enumerate(rf.centers))
    return RF(size, jump, start, rf.aligned, centers, rf.why)


def merge(node: Node, inputs: Sequence[RF]) -> RF:
    """The field where paths meet: per axis the largest, with every disagreement noted."""
    if len(inputs) == 1:
        return inputs[0]
    if len({f.rank for f in inputs}) > 1:
        raise ValueError(f"layer {node.id} ({node.text}) merges inputs of different spatial rank")
    names = axis_names(inputs[0].rank)
    size, jump, start, centers, problems = [], [], [], [], []
    for a in range(inputs[0].rank):
        widest = max(inputs, key=lambda f: f.size[a])  # the first of the largest on ties
        size.append(widest.size[a])
        jump.append(widest.jump[a])
        start.append(widest.start[a])
        axis_centers = sorted({c for f in inputs for c in f.axis_centers()[a]})
        centers.append(tuple(axis_centers))
        jumps = sorted({f.jump[a] for f in inputs})
        if len(jumps) > 1:
            problems.append(f"jumps differ on axis {names[a]} ({', '.join(map(str, jumps))})")
        if len(axis_centers) > 1:
            listed = ", ".join(f"{c:g}" for c in axis_centers)
            problems.append(f"centers differ on axis {names[a]} ({listed})")
    inherited = [f.why for f in inputs if not f.aligned]
    aligned = not problems and not inherited
    why = f"layer {node.id} ({node.text}): {'; '.join(problems)}" if problems else (inherited or [""])[0]
    return RF(tuple(size), tuple(jump), tuple(start), aligned, () if aligned else tuple(centers), why)


def last_spatial(graph: LayerGraph, fields: Sequence[Field]) -> int | None:
    """The last node feeding the main output whose field is still spatial (not global).

    That is the feature map before global pooling, the figure papers quote.
    """
    ancestors = graph.ancestors(graph.output.id)
    spatial = [i for i in ancestors if isinstance(fields[i], RF) and fields[i].rank > 0]  # type: ignore[union-attr]
    return max(spatial, default=None)


# -- effective receptive field: paths per input position (Luo et al. 2016) ----------------


@dataclass(frozen=True)
class Profile:
    """Paths from each input position to one output unit, along one axis.

    `counts[k]` is the number of paths from input coordinate `start + k` to unit 0 of
    the node (so `start` matches the RF's start). Exact Python integers.
    """

    start: int
    counts: tuple[int, ...]

    @property
    def size(self) -> int:
        return len(self.counts)

    def mean(self) -> Fraction:
        total = sum(self.counts)
        return Fraction(sum((self.start + k) * c for k, c in enumerate(self.counts)), total)

    def sd(self) -> float:
        """Standard deviation of the input coordinate, weighting positions by their paths."""
        total = sum(self.counts)
        m = self.mean()
        var = Fraction(sum((self.start + k - m) ** 2 * c for k, c in enumerate(self.counts)), total)
        return float(var) ** 0.5

    def central(self, fraction: Fraction = Fraction(95, 100)) -> tuple[int, int]:
        """First and last input coordinate of the central `fraction` of the paths."""
        total = sum(self.counts)
        low, high = total * (1 - fraction) / 2, total * (1 + fraction) / 2
        seen, first, last = 0, None, self.start + self.size - 1
        for k, c in enumerate(self.counts):
            seen += c
            if first is None and seen > low:
                first = self.start + k
            if seen >= high:
                last = self.start + k
                break
        return (first if first is not None else self.start), last


MAX_PROFILE = 1_000_000  # input positions per axis a path-count profile may span (4 lists of ints each)


def path_counts(graph: LayerGraph, target: int) -> tuple[Profile, ...]:
    """Per axis, the number of paths from each input position to one unit of `target`.

    Uniform weights, as Luo et al.'s "effective receptive field": each kernel tap and
    each pooling-window position is one path, channels are not counted, and paths
    through merges add. The unit is taken away from the borders (positions in the
    padding count as if the input went on), so the profile spans exactly the RF.
    Computed backwards, in reverse topological order, by "transposed convolution"
    of the count vectors with a kernel of ones.
    """
    node = graph.node(target)
    rank = len(positions(node.shape, node.layout))
    pending: dict[int, tuple[Profile, ...]] = {target: (Profile(0, (1,)),) * rank}
    for nid in range(target, 0, -1):
        n = graph.node(nid)
        if n.type == "input":  # a second input: the paths end there too
            continue
        here = pending.pop(nid, None)
        if here is None:
            continue
        geometry = n.layer.geometry(n.args, n.in_shapes)
        if geometry in (GLOBAL, UNKNOWN):
            why = "sees the whole input" if geometry == GLOBAL else "moves positions (its field is not known)"
            raise ValueError(f"layer {nid} ({n.text}) {why}: there are no per-position paths")
        back = here if geometry is None else tuple(
            _back(p, geometry.kernel[a], geometry.stride[a], geometry.padding[a], geometry.dilation[a])  # type: ignore[union-attr]
            for a, p in enumerate(here)
        )
        for i in n.inputs:
            pending[i] = _add(pending[i], back) if i in pending else back
    reached = [i for i in sorted(pending) if graph.node(i).type == "input"]
    if not reached:
        raise ValueError(f"layer {target} ({node.text}) reads no input through spatial layers: no per-position paths")
    return pending[reached[0]]  # the first input it reads, as its receptive field counts


def _back(p: Profile, kernel: int, stride: int, padding: int, dilation: int) -> Profile:
    """Output unit o reads inputs o·S − P + t·D, t = 0..K−1: spread each count over its window.

    As a box filter with running sums along each residue class mod D: linear in the
    profile's length whatever the kernel (a 10,000-wide kernel on a 10,000-wide profile
    would otherwise cost 10⁸ steps)."""
    length = (p.size - 1) * stride + dilation * (kernel - 1) + 1
    if length > MAX_PROFILE:
        raise ValueError(f"the path counts would span {length:,} input positions on one axis: archcalc counts "
                         f"paths over at most {MAX_PROFILE:,}")
    placed = [0] * length
    for k, c in enumerate(p.counts):
        placed[k * stride] = c
    counts = [0] * length
    span = dilation * kernel
    for x in range(length):  # counts[x] = Σ_t placed[x − t·D] = running[x] − running[x − K·D]
        counts[x] = placed[x] + (counts[x - dilation] if x >= dilation else 0)
    window = list(counts)
    for x in range(span, length):
        window[x] = counts[x] - counts[x - span]
    return Profile(p.start * stride - padding, tuple(window))


def _add(a: tuple[Profile, ...], b: tuple[Profile, ...]) -> tuple[Profile, ...]:
    return tuple(_add_one(x, y) for x, y in zip(a, b, strict=True))


def _add_one(x: Profile, y: Profile) -> Profile:
    start = min(x.start, y.start)
    end = max(x.start + x.size, y.start + y.size)
    counts = [0] * (end - start)
    for p in (x, y):
        for k, c in enumerate(p.counts):
            counts[p.start - start + k] += c
    return Profile(start, tuple(counts))
