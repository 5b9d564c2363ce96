"""Receptive field per node and spatial axis, and the path counts of Luo et al. 2016.

The forward recursion of ../shared/conventions.md ("Receptive field"), through each
node's `Geometry` (kernel K, stride S, padding P, dilation D per axis):

    j_out = j_in·S      r_out = r_in + D·(K − 1)·j_in      start_out = start_in − P·j_in

from r = 1, j = 1, start = 0 at the input. Each output unit sees the union of what the input
units it reads see (`Window.reads`: o·S − P + t·D for a window), which for a window is that
recursion exactly.

Going up in resolution (a transposed convolution, upsampling, pixel shuffle, max unpooling)
neighbouring units read the same input unit: a stride-2 transposed conv's units 2q and 2q + 1
both read unit q, so their fields are not one field moved by a jump. The field is then kept
exactly, per phase: the first and last input position each unit of one period sees, the
period (S for a transposed convolution, longer after several) and the pixels the pattern moves
by from one period to the next; the jump is that move per unit, an exact Fraction below 1
(1/S). Sizes and starts stay whole numbers; `RF.size` is the largest field a unit has, `start`
unit 0's first pixel, `RF.window(axis, u)` any unit's. A transposed convolution is the direct
convolution over its input with S − 1 zeros put between the pixels, padded by D·(K − 1) − P, at
stride 1: output o reads every input i = (o + P − t·D)/S that is whole (none, for some o, where
gcd(S, D) > 1: only inserted zeros). Every network without such a layer has period 1 and the
integer record of the recursion above. Where paths merge (add, concat, mul) the
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

import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from itertools import accumulate
from operator import add, attrgetter, mul, sub
from typing import Any

from archcalc.graph import LayerGraph, Node
from archcalc.layers import GLOBAL, UNKNOWN, Geometry
from archcalc.layers.window import Num, Window, exact
from archcalc.passes.counting import distinct
from archcalc.records import record
from archcalc.tensor import Shape, spatial_axis_names

Span = tuple[int, int]  # the first and the last input position one unit sees
MAX_PERIOD = 65_536  # units per period past which a field is given up as unknown (no real network comes near)


@record(slots=True)
class RF:
    """The receptive field of one node's output units, one entry per spatial axis.

    `size` is the most input positions one unit sees, `jump` the input positions between
    neighbouring units (an exact Fraction below 1 after a layer that goes up in resolution),
    `start` the first position unit 0 sees. Where neighbouring units see differently placed
    fields (after a transposed convolution or an upsampling, units u and u + 1 may read the same
    input pixel), `phases` gives per axis the exact span of each unit of one period; unit
    φ + m·q (q = the period) sees that of φ moved by m·q·jump, a whole number of pixels.
    """

    size: tuple[int, ...]
    jump: tuple[Num, ...]
    start: tuple[int, ...]
    aligned: bool = True
    # only where not aligned: per axis, every distinct center the merged paths have
    centers: tuple[tuple[float, ...], ...] = ()
    why: str = ""  # why not aligned, naming the node where it happened
    phases: tuple[tuple[Span | None, ...], ...] = ()  # only where units differ; None: sees no pixel

    @property
    def rank(self) -> int:
        return len(self.size)

    @property
    def center(self) -> tuple[float, ...]:
        """Center of unit 0's field: start + (r − 1)/2 (of the largest path where not aligned)."""
        if not self.phases:
            return tuple(s + (r - 1) / 2 for s, r in zip(self.start, self.size, strict=True))
        return tuple(_mid(_first_seen(_axis(self, a))) for a in range(self.rank))

    def axis_centers(self) -> tuple[tuple[float, ...], ...]:
        return self.centers or tuple((c,) for c in self.center)

    def period(self, axis: int) -> int:
        """Units after which the fields repeat, moved by period·jump pixels (1 for every window net)."""
        return len(self.phases[axis]) if self.phases else 1

    def window(self, axis: int, unit: int = 0) -> Span | None:
        """The first and last input position unit `unit` sees on one axis; None where it sees none
        (it falls between the pixels of an input stretched by a transposed convolution)."""
        return _axis(self, axis).at(unit)


def _mid(span: Span) -> float:
    return (span[0] + span[1]) / 2


def _first_seen(axis: _Axis) -> Span:
    """Unit 0's span, or that of the first unit that sees a pixel (some see none past dilated
    transposed convolutions; a field whose units all see none is NO_INPUT, never an RF)."""
    return next(s for s in axis.spans if s is not None)


@record
class _Axis:
    """One axis of a field as the recursion carries it: the spans of the units of one period, and
    the pixels the fields move by from one period to the next."""

    period: int
    shift: int
    spans: tuple[Span | None, ...]

    def at(self, unit: int) -> Span | None:
        m, phase = divmod(unit, self.period)
        span = self.spans[phase]
        return None if span is None else (span[0] + m * self.shift, span[1] + m * self.shift)

    @property
    def jump(self) -> Num:
        return exact(Fraction(self.shift, self.period))

    @property
    def size(self) -> int:
        return max((hi - lo + 1 for lo, hi in filter(None, self.spans)), default=0)

    def ordered(self) -> bool:
        """Whether every unit sees a pixel and both ends of the fields never move left from one unit
        to the next (true of every window network; a dilated transposed convolution can break it)."""
        spans = [self.at(u) for u in range(self.period + 1)]
        return all(s is not None for s in spans) and all(
            x[0] <= y[0] and x[1] <= y[1] for x, y in zip(spans, spans[1:]))  # type: ignore[index]

    def reduced(self) -> _Axis:
        """The shortest period that describes the same field."""
        for q in range(1, self.period):
            if self.period % q or (self.shift * q) % self.period:
                continue
            moved = self.shift * q // self.period
            if all(_moved(self.spans[u], moved) == self.spans[u + q] for u in range(self.period - q)):
                return _Axis(q, moved, self.spans[:q])
        return self


def _moved(span: Span | None, by: int) -> Span | None:
    return None if span is None else (span[0] + by, span[1] + by)


def _axis(rf: RF, a: int) -> _Axis:
    if rf.phases:
        q = len(rf.phases[a])
        return _Axis(q, int(rf.jump[a] * q), rf.phases[a])
    return _Axis(1, int(rf.jump[a]), ((rf.start[a], rf.start[a] + rf.size[a] - 1),))


def _field(axes: Sequence[_Axis], aligned: bool = True, centers: tuple[tuple[float, ...], ...] = (),
           why: str = "") -> RF:
    """The RF record of per-axis fields (phases kept only where some axis needs them)."""
    starts = []
    for ax in axes:
        first = next((s for s in ax.spans if s is not None), None)
        starts.append(ax.spans[0][0] if ax.spans[0] else first[0] if first else 0)
    uneven = any(ax.period > 1 or None in ax.spans for ax in axes)
    phases = tuple(ax.spans for ax in axes) if uneven else ()
    return RF(tuple(ax.size for ax in axes), tuple(ax.jump for ax in axes), tuple(starts), aligned, centers, why,
              phases)


def coordinate(value: Num | float) -> str:
    """A field's number as text: 5, 15.5, 0.25, 0.125 (a fraction with at most three decimals),
    else the exact fraction: 1/3, 187/320."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int) or value.denominator == 1:
        return str(int(value))
    if 1000 % value.denominator == 0:
        return f"{float(value):g}"
    return str(value)


Field = RF | str  # an RF; GLOBAL (every output unit sees the whole input); UNKNOWN; or NO_INPUT
NO_INPUT = "none"  # a free parameter's value reads no input at all (nor one that reads only inserted zeros)


def axis_names(rank: int) -> tuple[str, ...]:
    """The RF's axes in lower case, as messages name them: ('h', 'w')."""
    return tuple(name.lower() for name in spatial_axis_names(rank))


def receptive_fields(graph: LayerGraph) -> tuple[Field, ...]:
    """The field of every node, by node id (computed in topological order).

    A chain's fields differ from node to node, but what a layer contributes (its geometry, whether
    one unit spans its whole input) does not: that is asked once per distinct layer."""
    layers = distinct(graph)
    geometries = layers.each(lambda n: n.layer.geometry(n.args, n.in_shapes))
    spans_all: dict[int, bool] = {}  # covers_everything, by distinct layer, asked where a window is reached

    def covers(node: Node, window: Window) -> bool:
        group = layers.group[node.id]
        found = spans_all.get(group)
        if found is None:
            found = spans_all[group] = covers_everything(window, node.in_shapes[0][1:], node.shape[1:])
        return found

    # a layer reading one tensor whose field is an RF, through no geometry or a plain window, is the
    # common case: what `_node_field` gives it, without the checks that cannot apply
    simple = layers.each(lambda n: len(n.inputs) == 1 and not n.layer.shape_inputs)
    # and a merge of inputs of one shape through no geometry (a residual's add, a dense block's), the
    # next most common: `_merged` of its inputs' fields, where every one is an RF
    joins = layers.each(lambda n: len(n.inputs) > 1 and not n.layer.shape_inputs
                        and n.in_shapes.count(n.in_shapes[0]) == len(n.in_shapes))
    ranks = layers.each(lambda n: len(positions(n.shape, "channels")))  # a sequence's are as many
    starts = layers.each(lambda n: n.type == "input" or not n.inputs)  # an input, a free parameter
    layouts = list(map(attrgetter("layout"), graph))
    sequences = "sequence" in layouts
    fields: list[Field] = []
    merged: dict[tuple[RF, ...], RF] = {}  # merges that name no node, by their inputs' fields
    slides: dict[int, _Slide | str] = {}  # by distinct layer: GLOBAL (`covers`) or its window's numbers
    # each node's inputs and layout read from columns made in C, not by name per node
    for node, inputs, layout, group, geometry, start, one_input, join, rank in zip(
            graph, map(attrgetter("inputs"), graph), layouts, layers.group, geometries, starts, simple, joins, ranks):
        if start:
            if node.type == "input":  # a plain tensor's axes mean nothing: no positions to follow
                fields.append(UNKNOWN if layout == "plain" else input_field(graph, node.id))
            else:
                fields.append(NO_INPUT)
            continue
        if sequences and isinstance(geometry, Window) and _over_sequence(node, layouts):
            geometry = UNKNOWN
        one = fields[inputs[0]]
        if one_input and layout != "plain" and type(one) is RF:
            if geometry is None:
                fields.append(one if len(one.size) == rank else GLOBAL)
                continue
            if type(geometry) is Geometry:
                # GLOBAL where one unit spans the whole input, else the window's numbers, once per layer
                slide = slides.get(group) or slides.setdefault(
                    group, GLOBAL if covers(node, geometry) else _Slide.of(geometry))
                if isinstance(slide, str):
                    fields.append(slide)
                elif one.phases or geometry.transposed:
                    fields.append(through(one, geometry))
                else:  # a window over a field of period 1: what `through` gives
                    fields.append(_slide(one, geometry, slide))
                continue
        if join and geometry is None and layout != "plain":
            if (len(inputs) == 2 and fields[inputs[1]] is one and type(one) is RF and one.aligned
                    and not (one.phases or one.centers or one.why)):
                # an aligned field of period 1 meeting itself (every add of a dense DAG) where nothing is
                # noted: the merge is that field, as `_merge_aligned` gives it
                fields.append(one if len(one.size) == rank else GLOBAL)
                continue
            meeting = tuple([fields[i] for i in inputs])
            if {*map(type, meeting)} == ONLY_RF:
                field = _merged(node, meeting, merged)  # every one is an RF
                fields.append(field if len(field.size) == rank else GLOBAL)
                continue
        fields.append(_node_field(node, tuple([fields[i] for i in inputs]), geometry, merged, covers))
    return tuple(fields)


ONLY_RF = {RF}


def _over_sequence(node: Node, layouts: Sequence[str]) -> bool:
    """A channels-first window reading a T×F sequence (see `layer_geometry`)."""
    return node.layout != "sequence" and "sequence" in [layouts[i] for i in node.inputs]


def layer_geometry(graph: LayerGraph, node: Node) -> Any:
    """The node's geometry, and UNKNOWN for a channels-first window (a conv, a pool) over a T×F
    sequence: PyTorch slides it along the sequence's features, so its 'positions' are not the
    sequence's (transpose(1, 2) of a C×L map, then conv1: found by the property test)."""
    geometry = node.layer.geometry(node.args, node.in_shapes)
    if (isinstance(geometry, Window) and node.layout != "sequence"
            and any(graph.node(i).layout == "sequence" for i in node.inputs)):
        return UNKNOWN
    return geometry


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


def node_field(node: Node, fields: Sequence[Field], geometry: Any = _ASK,
               merged_by_inputs: dict[tuple[RF, ...], RF] | None = None) -> Field:
    """The field of one node from its inputs' fields and its layer's geometry (asked here unless given);
    `merged_by_inputs` keeps the merges already made (the same fields meeting again give the same field)."""
    if geometry is _ASK:
        geometry = node.layer.geometry(node.args, node.in_shapes)
    return _node_field(node, fields, geometry, merged_by_inputs,
                       lambda n, g: covers_everything(g, n.in_shapes[0][1:], n.shape[1:]))


def _node_field(node: Node, fields: Sequence[Field], geometry: Any, merged_by_inputs: dict[tuple[RF, ...], RF] | None,
                covers: Callable[[Node, Window], bool]) -> Field:
    """`node_field`, with `covers` saying whether a node's window spans its whole input."""
    shape_only = node.layer.shape_inputs  # a crop's or a resize's size reference: no field of its own
    inputs: Sequence[Field] = fields
    shapes: Sequence[Shape] = node.in_shapes
    marks: Sequence[Field] = ()
    if shape_only or {type(f) for f in fields} != {RF}:  # some input adds no field: drop it
        kept = [(f, s) for k, (f, s) in enumerate(zip(fields, node.in_shapes))
                if (type(f) is RF or f != NO_INPUT) and k not in shape_only]  # a free parameter adds no field either
        if not kept:
            return NO_INPUT
        inputs, shapes = [f for f, _ in kept], [s for _, s in kept]
        marks = [f for f in inputs if type(f) is not RF]  # GLOBAL or UNKNOWN
    if GLOBAL in marks:
        return GLOBAL  # e.g. a squeeze-excitation gate computed from a global pool
    if isinstance(geometry, str) and geometry == GLOBAL:
        return GLOBAL
    if UNKNOWN in marks or (isinstance(geometry, str) and geometry == UNKNOWN) or node.layout == "plain":
        return UNKNOWN  # positions moved on the way (a reshape, a permute), or never had a meaning
    if len(inputs) > 1 and shapes.count(shapes[0]) != len(shapes) and any(
            positions(s, node.layout) != positions(shapes[0], node.layout) for s in shapes):
        # a broadcast input (a 1×1 gate) gives every output unit the same extra
        # field: not a window that slides, so no (r, j, start) describes it
        return GLOBAL
    meeting: tuple[RF, ...] = tuple(inputs)  # type: ignore[arg-type]  # every one is an RF by now
    merged = _merged(node, meeting, merged_by_inputs)
    if geometry is None:
        # a layer that changes the number of spatial axes without saying how is
        # taken to mix everything: global, never a made-up number
        return merged if merged.rank == len(positions(node.shape, node.layout)) else GLOBAL
    assert isinstance(geometry, Window)
    if covers(node, geometry):
        return GLOBAL  # a 7×7 average pool on a 7×7 map is a global pool by another name
    return through(merged, geometry)


def _merged(node: Node, meeting: tuple[RF, ...], merged_by_inputs: dict[tuple[RF, ...], RF] | None) -> RF:
    """`merge`, reusing a merge of the same fields where it names no node."""
    if len(meeting) == 1:
        return meeting[0]
    merged = _merge_aligned(meeting)
    if merged is not None:
        return merged
    merged = merged_by_inputs.get(meeting) if merged_by_inputs is not None else None
    if merged is None:
        merged = merge(node, meeting)
        if merged_by_inputs is not None and merged.aligned and not merged.why:
            merged_by_inputs[meeting] = merged  # a merge where nothing disagrees names no node: reusable
    return merged


def covers_everything(g: Window, sizes: Sequence[int], out: Sequence[int]) -> bool:
    """Whether there is one output unit per axis, whose window spans the whole input."""
    def spans(a: int, size: int) -> bool:
        reads = g.reads(a, 0)
        return bool(reads) and reads[0] <= 0 and size - 1 <= reads[-1]

    return bool(sizes) and all(o == 1 and spans(a, size) for a, (size, o) in enumerate(zip(sizes, out, strict=True)))


def through(rf: RF, g: Window) -> RF | str:
    """One layer's forward recursion, per axis: each output unit sees the union of what the input
    units it reads see. For a window (period 1) that is j·S, r + D·(K − 1)·j, start − P·j; a
    layer going up in resolution lengthens the period (a transposed convolution by S)."""
    if not rf.phases and isinstance(g, Geometry) and not g.transposed:
        return _window(rf, g)
    axes = []
    for a in range(rf.rank):
        before = _axis(rf, a)
        p_out, p_in = g.period(a)
        k = before.period // math.gcd(before.period, p_in)  # output periods until the input's phases repeat
        period = p_out * k
        if period > MAX_PERIOD:
            return UNKNOWN
        shift = before.shift * (k * p_in // before.period)
        ordered = before.ordered()
        spans: list[Span | None] = []
        for u in range(period):
            reads = g.reads(a, u)  # in ascending order
            if ordered and reads:  # fields move right as units do: the first and the last read bound them
                first, last = before.at(reads[0]), before.at(reads[-1])
                spans.append((first[0], last[1]) if first and last else None)
                continue
            seen = [s for s in (before.at(i) for i in reads) if s is not None]
            spans.append((min(s[0] for s in seen), max(s[1] for s in seen)) if seen else None)
        if not any(spans):
            return NO_INPUT  # every output reads only zeros put between or around the pixels: no input at all
        axes.append(_Axis(period, shift, tuple(spans)).reduced())
    # every other center of a field that is not aligned moves as unit 0's does: over the units it reads
    centers = tuple(tuple(c + rf.jump[a] * _mean_read(g, a) for c in cs) for a, cs in enumerate(rf.centers))
    return _field(axes, rf.aligned, centers, rf.why)


@record(slots=True)
class _Slide:
    """A window's numbers as the recursion of a field of period 1 reads them, made once per geometry:
    per axis D·(K − 1), S and P; `unit_stride` where every S is 1 (the jump is kept as it is)."""

    spread: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    unit_stride: bool

    @classmethod
    def of(cls, g: Geometry) -> _Slide:
        spread = tuple([d * (k - 1) for d, k in zip(g.dilation, g.kernel)])
        return cls(spread, g.stride, g.padding, all(s == 1 for s in g.stride))


def _window(rf: RF, g: Geometry) -> RF:
    """The recursion through a window, for a field of period 1 (what `through` gives, in closed form)."""
    return _slide(rf, g, _Slide.of(g))


def _slide(rf: RF, g: Geometry, w: _Slide) -> RF:
    """`_window` with the window's numbers at hand (`w`, of `g`): r + D·(K − 1)·j, j·S, start − P·j."""
    jump = rf.jump
    size: tuple[Any, ...]  # whole numbers: a field of period 1 has whole jumps
    start: tuple[Any, ...]
    if len(jump) == 2:  # an image's two axes, the usual: written out, a tenth of the time of the maps below
        (r0, r1), (j0, j1), (b0, b1) = rf.size, jump, rf.start
        (k0, k1), (p0, p1) = w.spread, w.padding
        size, start = (r0 + k0 * j0, r1 + k1 * j1), (b0 - p0 * j0, b1 - p1 * j1)
    else:
        size = tuple(map(add, rf.size, map(mul, w.spread, jump)))
        start = tuple(map(sub, rf.start, map(mul, w.padding, jump)))
    if not w.unit_stride:  # j·1 is j: the same values, of the same types
        jump = tuple(map(mul, jump, w.stride))
    if not rf.centers:
        return RF(size, jump, start, rf.aligned, (), rf.why)
    shift = [j * (d * (k - 1) / 2 - p) for j, d, k, p in zip(rf.jump, g.dilation, g.kernel, g.padding)]
    centers = tuple(tuple(c + shift[a] for c in cs) for a, cs in enumerate(rf.centers))
    return RF(size, jump, start, rf.aligned, centers, rf.why)


def _mean_read(g: Window, axis: int) -> float:
    """The middle of the input units unit 0 reads (the move of a center through the layer)."""
    reads = g.reads(axis, 0)
    return (reads[0] + reads[-1]) / 2 if reads else 0.0


def merge(node: Node, inputs: Sequence[RF]) -> RF:
    """The field where paths meet: per axis the largest, with every disagreement noted."""
    if len(inputs) == 1:
        return inputs[0]
    agreed = _merge_aligned(inputs)
    if agreed is not None:
        return agreed
    if len({f.rank for f in inputs}) > 1:
        raise ValueError(f"layer {node.id} ({node.text}) merges inputs of different spatial rank")
    names = axis_names(inputs[0].rank)
    axes, centers, problems = [], [], []
    for a in range(inputs[0].rank):
        widest = max(inputs, key=lambda f: f.size[a])  # the first of the largest on ties
        axes.append(_axis(widest, a))
        axis_centers = sorted({c for f in inputs for c in f.axis_centers()[a]})
        centers.append(tuple(axis_centers))
        jumps = sorted({f.jump[a] for f in inputs})
        if len(jumps) > 1:
            problems.append(f"jumps differ on axis {names[a]} ({', '.join(map(coordinate, jumps))})")
        if len(axis_centers) > 1:
            listed = ", ".join(coordinate(c) for c in axis_centers)
            problems.append(f"centers differ on axis {names[a]} ({listed})")
        elif len(jumps) == 1 and any(f.phases for f in inputs):
            problems += _phase_centers(inputs, a, names[a])
    inherited = [f.why for f in inputs if not f.aligned]
    aligned = not problems and not inherited
    why = f"layer {node.id} ({node.text}): {'; '.join(problems)}" if problems else (inherited or [""])[0]
    return _field(axes, aligned, () if aligned else tuple(centers), why)


def _merge_aligned(inputs: Sequence[RF]) -> RF | None:
    """The merge of aligned fields of period 1 whose jumps and centers agree on every axis (the
    paths of a residual block, every input of a dense block): per axis the widest (the first of
    the widest), with nothing to note. None where anything differs: `merge` then says what."""
    first = inputs[0]
    if not first.aligned or first.phases or first.centers or first.why:
        return None
    size, jump, start = first.size, first.jump, first.start
    rank = len(size)
    widest: list[RF] = [first] * rank  # per axis, the first of the widest fields
    centers: list[float] | None = None  # the first's, made where a field placed otherwise is met
    for f in inputs:
        if f is first:
            continue
        if not f.aligned or f.phases or f.centers or f.why or len(f.size) != rank or f.jump != jump:
            return None
        if f.start != start or f.size != size:
            if centers is None:
                centers = _centers(first)
            if _centers(f) != centers:
                return None
        for a in range(rank):
            if f.size[a] > widest[a].size[a]:
                widest[a] = f
    if not widest or widest.count(widest[0]) == rank:  # one field is the widest on every axis
        return widest[0] if widest else first
    return RF(tuple(w.size[a] for a, w in enumerate(widest)), first.jump,
              tuple(w.start[a] for a, w in enumerate(widest)))


def _centers(f: RF) -> list[float]:
    """`RF.center` of a field of period 1, as a list."""
    return [b + (r - 1) / 2 for b, r in zip(f.start, f.size)]


def _phase_centers(inputs: Sequence[RF], a: int, name: str) -> list[str]:
    """Where unit 0's centers agree, the other units of a period must agree too."""
    period = math.lcm(*(f.period(a) for f in inputs))
    for u in range(1, period):
        found = sorted({_mid(w) for w in (f.window(a, u) for f in inputs) if w is not None})
        if len(found) > 1:
            return [f"centers differ on axis {name} at unit {u} ({', '.join(map(coordinate, found))})"]
    return []


def last_spatial(graph: LayerGraph, fields: Sequence[Field]) -> int | None:
    """The last node feeding the main output whose field is still spatial (not global).

    That is the feature map before global pooling, the figure papers quote.
    """
    seen = {graph.output.id}  # the output and what it depends on, found walking back from it
    for i in range(graph.output.id, -1, -1):
        if i in seen:
            field = fields[i]
            if isinstance(field, RF) and field.rank > 0:
                return i  # the first found walking back is the last in id order
            seen.update(graph.node(i).inputs)
    return None


# -- effective receptive field: paths per input position (Luo et al. 2016) ----------------


@record
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
# Path counts are exact integers that grow with depth (3^k after k 3-wide convs), so counting them
# costs about positions × bits per layer, cubic in a chain's depth. Past this many bit-positions
# summed over the layers walked (≈ half a second here), archcalc stops and says so.
MAX_PATH_WORK = 200_000_000


class PathCountLimit(ValueError):
    """The exact path counts would cost more than MAX_PATH_WORK: the field itself is still known."""


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
    if rank == 0:  # a flat tensor (`input 4`, an FC's output): nothing to count paths over
        raise ValueError(f"layer {target} ({node.text}) has no spatial axes: there are no per-position paths")
    pending: dict[int, tuple[Profile, ...]] = {target: (Profile(0, (1,)),) * rank}
    work = 0
    for nid in range(target, 0, -1):
        n = graph.node(nid)
        if n.type == "input":  # a second input: the paths end there too
            continue
        here = pending.pop(nid, None)
        if here is None:
            continue
        geometry = layer_geometry(graph, n)
        if geometry in (GLOBAL, UNKNOWN):
            why = "sees the whole input" if geometry == GLOBAL else "moves positions (its field is not known)"
            raise ValueError(f"layer {nid} ({n.text}) {why}: there are no per-position paths")
        back = here if geometry is None else tuple(_back(p, geometry, a) for a, p in enumerate(here))
        if geometry is not None:
            work += sum(p.size * max(p.counts, default=0).bit_length() for p in back)
            if work > MAX_PATH_WORK:
                widest = max(back, key=lambda p: p.size)
                raise PathCountLimit(
                    f"the exact path counts to layer {target} ({node.text}) are too costly to count: at layer {nid} "
                    f"({target - nid + 1:,} layers back) they already reach {max(widest.counts).bit_length():,} "
                    f"bits over {widest.size:,} positions; archcalc counts paths up to {MAX_PATH_WORK:,} "
                    f"bit-positions of work")
        shape_only = set(n.layer.shape_inputs)
        for k, i in enumerate(n.inputs):
            if k not in shape_only:
                pending[i] = _add(pending[i], back) if i in pending else back
    reached = [i for i in sorted(pending) if graph.node(i).type == "input"]
    if not reached:
        raise ValueError(f"layer {target} ({node.text}) reads no input through spatial layers: no per-position paths")
    found = pending[reached[0]]  # the first input it reads, as its receptive field counts
    if any(not p.counts for p in found):
        raise ValueError(f"unit 0 of layer {target} ({node.text}) sees no input position (it falls between the "
                         f"pixels of a stretched input)")
    return found


def _back(p: Profile, g: Window, axis: int) -> Profile:
    """Spread each output position's count over the input positions it reads (a window reads
    o·S − P + t·D, t = 0..K−1; a transposed window every whole (o + P − t·D)/S)."""
    if isinstance(g, Geometry) and not g.transposed:
        return _back_window(p, g.kernel[axis], g.stride[axis], g.padding[axis], g.dilation[axis])
    spread: dict[int, int] = {}
    for k, c in enumerate(p.counts):
        if c:
            for q in g.reads(axis, p.start + k):
                spread[q] = spread.get(q, 0) + c
    if not spread:
        return Profile(p.start, ())
    first, last = min(spread), max(spread)
    return Profile(first, tuple(spread.get(q, 0) for q in range(first, last + 1)))


def _back_window(p: Profile, kernel: int, stride: int, padding: int, dilation: int) -> Profile:
    """Output unit o reads inputs o·S − P + t·D, t = 0..K−1: spread each count over its window.

    As a box filter with running sums along each residue class mod D: linear in the
    profile's length whatever the kernel (a 10,000-wide kernel on a 10,000-wide profile
    would otherwise cost 10⁸ steps)."""
    if not p.counts:
        return p
    length = (p.size - 1) * stride + dilation * (kernel - 1) + 1
    if length > MAX_PROFILE:
        raise ValueError(f"the path counts would span {length:,} input positions on one axis: archcalc counts "
                         f"paths over at most {MAX_PROFILE:,}")
    placed = [0] * length
    placed[:(p.size - 1) * stride + 1:stride] = p.counts  # count k at position k·S
    # counts[x] = Σ_t placed[x − t·D] = running[x] − running[x − K·D], the running sums taken along
    # each residue class mod D (accumulate and map: the loops run in C, over exact integers)
    running = [0] * length
    for r in range(min(dilation, length)):
        running[r::dilation] = accumulate(placed[r::dilation])
    span = dilation * kernel
    window = running[:span] + list(map(sub, running[span:], running[:-span]))
    return Profile(p.start * stride - padding, tuple(window))


def _add(a: tuple[Profile, ...], b: tuple[Profile, ...]) -> tuple[Profile, ...]:
    return tuple(_add_one(x, y) for x, y in zip(a, b, strict=True))


def _add_one(x: Profile, y: Profile) -> Profile:
    if not x.counts or not y.counts:
        return y if not x.counts else x
    if x.start == y.start and x.size == y.size:  # two paths over the same span (a residual's add)
        return Profile(x.start, tuple(map(add, x.counts, y.counts)))
    start = min(x.start, y.start)
    end = max(x.start + x.size, y.start + y.size)
    counts = [0] * (end - start)
    for p in (x, y):  # each added over its own span, in C
        at = p.start - start
        counts[at:at + p.size] = map(add, counts[at:at + p.size], p.counts)
    return Profile(start, tuple(counts))
