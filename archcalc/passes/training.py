"""One training step, computed per layer: its FLOPs and the memory it holds.

FLOPs (FlopCounterMode's convention: 2 per multiply-accumulate of the products; bias gradients,
norms and activations count 0). Per layer: the forward pass, the gradient with respect to its
inputs and the gradient of its weights, each from the layer type's own rule
(`LayerType.gradients`):

- an input needs a gradient only if something upstream of it is trained (the first layer's
  input, an image or token ids, needs none); a layer's weights get one unless they are frozen;
- a product of two activations (attention's q·kᵀ, p·v) has a gradient per operand;
- a grouped convolution's weight gradient is the forward's MACs, not `groups` times them:
  FlopCounterMode's `convolution_backward` formula counts it as a dense one, and its figure is
  kept beside the correct one, with the difference per layer (`flop_counter`).

One step = forward + backward (+ the forward of the checkpointed segments again). For a network
with products of two activations (a transformer) the `6·N·T` estimate is put beside it, with N
(the parameters outside embedding layers) and T (tokens per sample) stated.

Memory, in bytes, every term apart: weights (in the training precision), their fp32 master
copies (mixed precision), gradients, optimizer state (fp32: SGD none, momentum 1, Adam and AdamW
2 tensors per trained parameter), buffers, the activations the backward pass keeps (each layer's
`LayerType.saved` tensors, each storage once: a ReLU's output saved by the ReLU and by the next
conv is one tensor, and a view keeps its base), and the largest pair of activation gradients in
flight during the backward pass. With activation checkpointing only each segment's input is kept,
plus one segment's saved tensors at a time while it is recomputed.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from functools import cached_property
from itertools import count
from operator import attrgetter, itemgetter
from typing import overload

from archcalc.errors import UsageError
from archcalc.graph import LayerGraph, Node
from archcalc.layers import Counts
from archcalc.layers.base import Gradients, Saved
from archcalc.passes.counting import FLOPS_PER_MAC, by_owner, distinct, once_per_key, own_counts, per_node
from archcalc.records import record
from archcalc.tensor import prod

OPTIMIZERS = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}  # fp32 state tensors per trained parameter
PRECISIONS = {"fp32": 4, "fp16": 2, "bf16": 2}  # bytes of a weight, a gradient and an activation
MASTER_BYTES = 4  # mixed precision keeps an fp32 copy of every trained weight
STATE_BYTES = 4
DEVICES = ("cuda", "cpu")
# a node's inputs and batched flag read by position, in C (a NamedTuple's field by name is a descriptor call)
_INPUTS, _BATCHED = (itemgetter(Node._fields.index(name)) for name in ("inputs", "batched"))


@record
class TrainingOptions:
    """`checkpoint`: None, a number of segments (2 or more) or "sqrt" (√(layers) segments)."""

    optimizer: str = "adam"
    precision: str = "fp32"
    checkpoint: int | str | None = None
    batch: int = 1
    device: str = "cuda"  # a dropout mask is 1 byte per element on CUDA, the activation dtype on CPU

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise UsageError(f"unknown optimizer '{self.optimizer}' (one of {', '.join(OPTIMIZERS)})")
        if self.precision not in PRECISIONS:
            raise UsageError(f"unknown precision '{self.precision}' (one of {', '.join(PRECISIONS)})")
        if self.batch < 1:
            raise UsageError(f"batch must be at least 1, not {self.batch}")
        if self.device not in DEVICES:
            raise UsageError(f"unknown device '{self.device}' (one of {', '.join(DEVICES)})")
        c = self.checkpoint
        if c is not None and c != "sqrt" and not (isinstance(c, int) and c >= 2):
            raise UsageError(f"--checkpoint takes a number of segments (2 or more) or 'sqrt', not '{c}'")

    @property
    def mixed(self) -> bool:
        return self.precision != "fp32"

    @property
    def activation_bytes(self) -> int:
        return PRECISIONS[self.precision]


def parse_checkpoint(text: str | None) -> int | str | None:
    """'none' / None → None, 'sqrt' → 'sqrt', '4' → 4; anything else is refused by the options."""
    if text is None or text.lower() in ("none", "off", "0", ""):
        return None
    if text.lower() == "sqrt":
        return "sqrt"
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"--checkpoint takes a number of segments (2 or more), 'sqrt' or 'none', not '{text}'") \
            from None


@record(slots=True)
class Kept:
    """One tensor a layer's backward keeps: which storage (a node's output, or the layer's own),
    its bytes for the batch, and whether this layer is the first to keep it."""

    what: str  # "input 0 (layer 12)", "output", "own: int64", …
    storage: tuple[str, int]  # ("node", id) or ("own", n)
    bytes: int
    new: bool


@record
class StepFigures:
    """A layer's training figures that identical layers share: one record per distinct layer
    (type, arguments, shapes), input-gradient pattern, trained and backward flags, counts and
    MACs — all the figures are made of (FLOPs and bytes for the batch)."""

    forward: int
    grad_input: int
    grad_weight: int
    flop_counter_backward: int  # what FlopCounterMode counts for its backward
    why: str  # why FlopCounterMode's figure differs ("" where it does not)
    input_grad: tuple[bool, ...]
    weight_grad: bool
    in_backward: bool
    weight_bytes: int
    master_bytes: int
    gradient_bytes: int
    optimizer_bytes: int


@record(slots=True)
class LayerStep:
    """One layer's share of a training step: the figures it shares with identical layers, and what
    is its own (the tensors it keeps name its inputs' ids; its checkpoint segment). FLOPs and bytes
    for the batch; each figure reads as an attribute (`step.forward`)."""

    figures: StepFigures
    kept: tuple[Kept, ...]
    segment: int | None  # the checkpoint segment, where checkpointing is on

    @property
    def forward(self) -> int:
        return self.figures.forward

    @property
    def grad_input(self) -> int:
        return self.figures.grad_input

    @property
    def grad_weight(self) -> int:
        return self.figures.grad_weight

    @property
    def flop_counter_backward(self) -> int:
        return self.figures.flop_counter_backward

    @property
    def why(self) -> str:
        return self.figures.why

    @property
    def input_grad(self) -> tuple[bool, ...]:
        return self.figures.input_grad

    @property
    def weight_grad(self) -> bool:
        return self.figures.weight_grad

    @property
    def in_backward(self) -> bool:
        return self.figures.in_backward

    @property
    def weight_bytes(self) -> int:
        return self.figures.weight_bytes

    @property
    def master_bytes(self) -> int:
        return self.figures.master_bytes

    @property
    def gradient_bytes(self) -> int:
        return self.figures.gradient_bytes

    @property
    def optimizer_bytes(self) -> int:
        return self.figures.optimizer_bytes

    @property
    def backward(self) -> int:
        return self.figures.grad_input + self.figures.grad_weight

    @property
    def step(self) -> int:
        return self.figures.forward + self.backward

    @property
    def saved_bytes(self) -> int:
        """Bytes this layer adds to what the backward pass keeps (a storage counts at its first keeper)."""
        return sum([k.bytes for k in self.kept if k.new])


@record
class SixNT:
    """Kaplan et al.'s 6·N·T training FLOPs of a transformer, beside the computed ones."""

    n: int  # parameters outside embedding layers
    t: int  # tokens per sample
    batch: int
    definition: str

    @property
    def value(self) -> int:
        return 6 * self.n * self.t * self.batch


@record
class Unknown:
    """A layer type the pass has no rule for: what it could not count, and where."""

    layer_type: str
    what: str  # "gradient" or "saved tensors"
    layers: tuple[int, ...]


@record
class Segment:
    first: int
    last: int  # node ids, inclusive
    boundary_bytes: int  # its input, kept by the checkpoint
    saved_bytes: int  # what its layers keep while it is recomputed (its boundary aside)
    forward: int  # FLOPs recomputed in the backward pass (0 for the last segment, run normally)


@record
class Training:
    options: TrainingOptions
    layers: Sequence[LayerStep]  # by node id: a LayerSteps, each record made when read
    unknown: tuple[Unknown, ...]
    six_nt: SixNT | None
    segments: tuple[Segment, ...]
    buffer_bytes: int
    gradient_in_flight_bytes: int  # the largest (output gradient + input gradients) of one layer, for the batch
    notes: tuple[str, ...]

    # Each total is a sum over every layer and some read others (step, total_bytes): computed
    # once, on first read (the record is frozen; cached_property writes the instance's __dict__).

    @cached_property
    def _shared(self) -> tuple[tuple[StepFigures, int], ...]:
        """Each distinct figures record and how many layers share it: the totals are summed from these."""
        layers = self.layers
        figures = layers.figures if isinstance(layers, LayerSteps) else [s.figures for s in layers]
        by_id = dict(zip(map(id, figures), figures))  # `figures` holds them: their ids stay unique
        return tuple((by_id[i], k) for i, k in Counter(map(id, figures)).items())

    def _summed(self, name: str) -> int:
        """A figure summed over every layer."""
        value = attrgetter(name)
        return sum([value(f) * k for f, k in self._shared])

    # -- FLOPs ------------------------------------------------------------------------------
    @cached_property
    def forward(self) -> int:
        return self._summed("forward")

    @cached_property
    def grad_input(self) -> int:
        return self._summed("grad_input")

    @cached_property
    def grad_weight(self) -> int:
        return self._summed("grad_weight")

    @cached_property
    def backward(self) -> int:
        return self.grad_input + self.grad_weight

    @cached_property
    def recompute(self) -> int:
        return sum(s.forward for s in self.segments)

    @cached_property
    def step(self) -> int:
        """Forward + backward (+ the checkpointed segments' forward again)."""
        return self.forward + self.backward + self.recompute

    @cached_property
    def flop_counter_backward(self) -> int:
        return self._summed("flop_counter_backward")

    @cached_property
    def flop_counter_step(self) -> int:
        """What FlopCounterMode reports for forward + backward (its grouped-conv over-count included;
        with checkpointing, the recomputed forward too)."""
        return self.forward + self.flop_counter_backward + self.recompute

    @cached_property
    def flop_counter_excess(self) -> int:
        return self.flop_counter_backward - self.backward

    # -- memory ------------------------------------------------------------------------------
    @cached_property
    def weight_bytes(self) -> int:
        return self._summed("weight_bytes")

    @cached_property
    def master_bytes(self) -> int:
        return self._summed("master_bytes")

    @cached_property
    def gradient_bytes(self) -> int:
        return self._summed("gradient_bytes")

    @cached_property
    def optimizer_bytes(self) -> int:
        return self._summed("optimizer_bytes")

    @cached_property
    def saved_bytes(self) -> int:
        """Every storage the backward pass keeps, once (without checkpointing)."""
        if isinstance(self.layers, LayerSteps):
            return self.layers.saved_bytes
        return sum([k.bytes for s in self.layers for k in s.kept if k.new])

    @cached_property
    def kept_bytes(self) -> int:
        """What is kept for the backward pass at its peak: all saved tensors, or with checkpointing the
        segments' inputs plus the largest segment's saved tensors."""
        if not self.segments:
            return self.saved_bytes
        return sum(s.boundary_bytes for s in self.segments) + max(s.saved_bytes for s in self.segments)

    @cached_property
    def total_bytes(self) -> int:
        """Every term at once: weights, master copies, gradients, optimizer state, buffers, the
        kept activations and the gradients in flight."""
        return (self.weight_bytes + self.master_bytes + self.gradient_bytes + self.optimizer_bytes
                + self.buffer_bytes + self.kept_bytes + self.gradient_in_flight_bytes)


# -- the pass ------------------------------------------------------------------------------------


def _trained(graph: LayerGraph) -> tuple[bool, ...]:
    """Per node, whether its weights are trained."""
    own = per_node(graph, lambda n: own_counts(n).trainable > 0)  # asked once per distinct layer
    return by_owner(graph, own)  # a sharer's weights train where its owner's do


_ONE_INPUT = {need: (need,) for need in (True, False)}  # the usual input-gradient patterns, made once
_TWO_INPUTS = {(a, b): (a, b) for a in (True, False) for b in (True, False)}


def _gradient_flow(graph: LayerGraph, trained: Sequence[bool], grads: Sequence[int]
                   ) -> tuple[list[bool], list[tuple[bool, ...]], int]:
    """Per node whether its output requires grad and which of its inputs need a gradient; and the
    largest (output gradient + input gradients) of a layer in the backward pass, in bytes (`grads`:
    each node's gradient's). One walk in node order, inputs read by position: an input comes
    before its readers.

    A node is in the backward pass where its output requires grad: the loss sums every output
    (every node nothing reads), and each node is read by another or is an output, so the loss
    depends on every node."""
    never = per_node(graph, lambda n: n.type == "input" or n.layer.shape_only)  # no gradient flows out
    needs: list[bool] = []
    patterns: list[tuple[bool, ...]] = []
    need_of, pattern_of = needs.append, patterns.append
    in_flight = 0
    for i, inputs, blocked, weight_grad in zip(count(), map(_INPUTS, graph), never, trained):
        if len(inputs) == 1:  # the usual: one input
            a = inputs[0]
            upstream = needs[a]
            pattern: tuple[bool, ...] = _ONE_INPUT[upstream]
            here = grads[i] + grads[a] if upstream else grads[i]
        elif len(inputs) == 2:  # an add or a product of two
            a, b = inputs
            need_a, need_b = needs[a], needs[b]
            pattern = _TWO_INPUTS[need_a, need_b]
            upstream = need_a or need_b
            here = grads[i] + (grads[a] if need_a else 0) + (grads[b] if need_b else 0)
        else:
            pattern = tuple([needs[j] for j in inputs])
            upstream = True in pattern
            here = grads[i] + sum([grads[j] for j, need in zip(inputs, pattern) if need])
        need = not blocked and (weight_grad or upstream)
        need_of(need)
        pattern_of(pattern)
        if need and here > in_flight:
            in_flight = here
    return needs, patterns, in_flight


class _Storages:
    """Which storage each node's output lives in, and its bytes for the batch."""

    def __init__(self, graph: LayerGraph, options: TrainingOptions) -> None:
        self.graph, self.options = graph, options
        self.base: list[int] = []
        self.contiguous: list[bool] = []
        views = per_node(graph, lambda n: n.layer.view)
        if views.count(None) == len(views):  # no view anywhere (a plain CNN): each output its own storage
            self.base, self.contiguous = list(range(len(graph))), [True] * len(graph)
            views = ()
        for n, view in zip(graph, views):
            if view is None or not n.inputs:  # its own storage, the most common case
                self.base.append(n.id)
                self.contiguous.append(True)
                continue
            source = n.inputs[0]
            if view in ("view", "strided") or (view == "reshape" and self.contiguous[source]):
                self.base.append(self.base[source])
                self.contiguous.append(view != "strided" and self.contiguous[source])
            else:
                self.base.append(n.id)
                self.contiguous.append(True)
        types = {n.type for n in distinct(graph).first}  # every type is among them
        parameters = {n.id for n in graph if n.type == "parameter"} if "parameter" in types else set()
        self.parameter = [b in parameters for b in self.base] if parameters else [False] * len(graph)
        elements = per_node(graph, lambda n: prod(n.shape))
        outputs = self._outputs(graph, elements)
        # its gradient's size: 0 for a free parameter (parameter memory, counted apart)
        self.tensor = [0 if p else b for b, p in zip(outputs, self.parameter)] if parameters else outputs
        # the bytes of the storage a node's output is, by the storage's node id: token ids are int64 (an
        # input read by an embedding)
        tokens = [n for n in graph.input_nodes() if graph.token_vocab(n.id) is not None] if "embedding" in types \
            else []
        batch = options.batch
        self.size = list(outputs) if tokens else outputs
        for n in tokens:
            self.size[n.id] = elements[n.id] * 8 * (batch if n.batched else 1)

    def _outputs(self, graph: LayerGraph, elements: Sequence[int]) -> list[int]:
        """Each node's output for the batch, in the activation dtype (`elements`: each one's)."""
        act, batch = self.options.activation_bytes, self.options.batch
        batched = list(map(_BATCHED, graph))
        if all(batched):  # the usual: every output has the batch axis, its bytes its distinct layer's
            return list(per_node(graph, lambda n: elements[n.id] * act * batch))
        return [e * act * (batch if b else 1) for b, e in zip(batched, elements)]

    def is_parameter(self, node_id: int) -> bool:
        return self.parameter[node_id]

    def bytes(self, node_id: int) -> int:
        """The bytes of the storage node `node_id`'s output lives in (token ids: int64)."""
        return self.size[self.base[node_id]]

    def tensor_bytes(self, node_id: int) -> int:
        """A node's output itself (its gradient's size), for the batch; 0 for a free parameter."""
        return self.tensor[node_id]

    def own_bytes(self, s: Saved) -> int:
        per = {"activation": self.options.activation_bytes, "float32": 4, "int64": 8,
               "mask": 1 if self.options.device == "cuda" else self.options.activation_bytes}[s.dtype]
        return s.elements * per * (self.options.batch if s.per_sample else 1)


class LayerSteps(Sequence[LayerStep]):
    """Every node's step (`Training.layers`), held compactly: per node the figures it shares with
    the nodes alike and the tensors its rule says its backward keeps (each one object for all of
    them), per storage the node that keeps it first. A node's LayerStep, a Kept record per tensor,
    is made when it is read: a 100,000-node graph's JSON report writes every node's kept tensors
    from this form (json_lines), with no record per node or tensor."""

    __slots__ = ("figures", "saved", "segments", "saved_bytes", "storage_of", "storage_bytes", "first_keeper",
                 "_graph", "_shared", "_storages", "_own_from")

    def __init__(self, graph: LayerGraph, shared: Sequence[_Alike], storages: _Storages) -> None:
        self._graph, self._shared, self._storages = graph, shared, storages
        self.figures: list[StepFigures] = list(map(attrgetter("figures"), shared))
        self.saved: list[Sequence[Saved] | None] = list(map(attrgetter("saved"), shared))  # None: no rule
        self.segments: tuple[int | None, ...] | None = None  # per node its checkpoint segment, if on
        # per node the storage its output lives in (by node id; -1: a free parameter's, never kept), per
        # storage its bytes and the node that keeps it first (-1: none)
        self.storage_of = [-1 if p else b for b, p in zip(storages.base, storages.parameter)] \
            if True in storages.parameter else storages.base
        self.storage_bytes = storages.size
        self.first_keeper, self._own_from, self.saved_bytes = _first_keepers(graph, self.saved, storages,
                                                                             self.storage_of)

    def with_segments(self, segments: Sequence[int | None]) -> LayerSteps:
        """The same steps, each in its checkpoint segment."""
        steps = copy.copy(self)
        steps.segments = tuple(segments)
        return steps

    def __len__(self) -> int:
        return len(self.figures)

    @overload
    def __getitem__(self, i: int) -> LayerStep: ...

    @overload
    def __getitem__(self, i: slice) -> tuple[LayerStep, ...]: ...

    def __getitem__(self, i: int | slice) -> LayerStep | tuple[LayerStep, ...]:
        if isinstance(i, slice):
            return tuple(map(self.__getitem__, range(len(self))[i]))
        i = range(len(self))[i]  # a negative index counts from the end; IndexError beyond it
        segment = None if self.segments is None else self.segments[i]
        if not self.saved[i] and segment is None:
            return self._shared[i].unkept
        return LayerStep(self.figures[i], self.kept(i), segment)

    def __iter__(self) -> Iterator[LayerStep]:
        return map(self.__getitem__, range(len(self)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, (LayerSteps, tuple)):
            return NotImplemented
        return tuple(self) == tuple(other)

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"LayerSteps({list(self)!r})"

    def kept(self, i: int) -> tuple[Kept, ...]:
        """The tensors node `i`'s backward keeps, a record each; `new` where it keeps a storage first."""
        pattern = self.saved[i]
        if not pattern:
            return NOTHING_KEPT
        n, storages = self._graph.node(i), self._storages
        own = self._own_from.get(i, 0)
        out: list[Kept] = []
        mine: set[int] = set()  # the storages kept already by this node
        for s in pattern:
            if s.tensor == "own":
                what = f"own ({s.dtype}{'' if s.per_sample else ', per batch'})"
                out.append(Kept(what, ("own", own), storages.own_bytes(s), True))
                own += 1
                continue
            node_id = _read(n, s)
            base = self.storage_of[node_id]
            if base < 0:
                continue  # a free parameter read by a matmul: parameter memory, counted apart
            what = f"input {s.index} (layer {node_id})" if s.tensor == "input" else "output"
            new = self.first_keeper[base] == i and base not in mine
            out.append(Kept(what, ("node", base), storages.size[base], new))
            mine.add(base)
        return tuple(out)


def _read(n: Node, s: Saved) -> int:
    """The node whose output a saved tensor of `n` is: one of its inputs, or its own output."""
    return n.inputs[s.index] if s.tensor == "input" else n.id


def _first_keepers(graph: LayerGraph, saved: Sequence[Sequence[Saved] | None], storages: _Storages,
                   storage_of: Sequence[int]) -> tuple[list[int], dict[int, int], int]:
    """Per storage (by node id) the node that keeps it first (-1: none); the number of the first
    own tensor of each node that keeps some (numbered from 1 in node order); and the bytes of every
    storage kept, each once. `storage_of`: per node its output's storage (-1: a free parameter's)."""
    first = [-1] * len(graph)
    own_from: dict[int, int] = {}
    own = 1
    total = 0
    sizes = storages.size
    for n, pattern in zip(graph, saved):
        if not pattern:
            continue
        i = n.id
        for s in pattern:
            if s.tensor == "own":
                own_from.setdefault(i, own)
                own += 1
                total += storages.own_bytes(s)
                continue
            base = storage_of[_read(n, s)]
            if base < 0:
                continue
            if first[base] < 0:
                first[base] = i
                total += sizes[base]
    return first, own_from, total


def _memory_terms(c: Counts, options: TrainingOptions) -> tuple[int, int, int, int]:
    """(weight, master copy, gradient, optimizer state) bytes of one layer's parameters."""
    w = PRECISIONS[options.precision]
    trained = c.trainable
    return (c.params * w, trained * MASTER_BYTES if options.mixed else 0, trained * w,
            trained * OPTIMIZERS[options.optimizer] * STATE_BYTES)


def training(graph: LayerGraph, counts: Sequence[Counts], macs: Sequence[int],
             options: TrainingOptions | None = None) -> Training:
    """The training step of `graph` for `options`: per layer and in total."""
    options = options or TrainingOptions()
    trained = _trained(graph)
    storages = _Storages(graph, options)
    in_backward, patterns, in_flight = _gradient_flow(graph, trained, storages.tensor)
    # a layer type's rules are pure functions of its type, arguments and shapes, which inputs need a
    # gradient and whether it is trained: a repeated layer asks them once, and the figures they give
    # (with its forward FLOPs and its counts' bytes) are one record for every node alike in all of them;
    # only the kept tensors (which name the node's inputs) are the node's
    keys = list(zip(distinct(graph).group, patterns, trained, in_backward, map(id, counts), macs))
    alike = _alike_steps(graph, keys, counts, options)
    shared = list(map(alike.__getitem__, keys))
    steps = LayerSteps(graph, shared, storages)
    segments = _segments(graph, steps, storages, options) if options.checkpoint else ()
    if segments:
        where = {i: k for k, s in enumerate(segments) for i in range(s.first, s.last + 1)}
        steps = steps.with_segments([where.get(i) for i in range(len(graph))])
    buffers = sum([c.buffers for c in counts]) * PRECISIONS[options.precision]
    notes = _notes(graph)
    unknown = _unknown(graph, shared) if any(s.no_gradient or s.saved is None for s in alike.values()) else ()
    return Training(options, steps, unknown, six_nt(graph, counts, options.batch), segments, buffers,
                    in_flight, notes)


_StepKey = tuple[int, tuple[bool, ...], bool, bool, int, int]  # see `_alike_steps`


def _alike_steps(graph: LayerGraph, keys: Sequence[_StepKey], counts: Sequence[Counts], options: TrainingOptions
                 ) -> dict[_StepKey, _Alike]:
    """What the nodes of each key share (`keys`: per node its distinct layer, input-gradient pattern,
    trained and backward flags, id of its counts and MACs), asked of its first node."""
    flops = FLOPS_PER_MAC * options.batch

    def shared(key: _StepKey, i: int) -> _Alike:
        _, pattern, weight_grad, back, _, m = key
        return _alike(graph.node(i), pattern, weight_grad, back, flops, m, _memory_terms(counts[i], options))

    return once_per_key(keys, shared)


def _unknown(graph: LayerGraph, shared: Sequence[_Alike]) -> tuple[Unknown, ...]:
    """The layers whose type has no gradient rule or no saved-tensor rule, by type, in id order."""
    unknown: dict[tuple[str, str], list[int]] = {}
    for n, same in zip(graph, shared):
        if same.no_gradient:
            unknown.setdefault((n.type, "gradient"), []).append(n.id)
        if same.saved is None:
            unknown.setdefault((n.type, "saved tensors"), []).append(n.id)
    return tuple(Unknown(t, what, tuple(ids)) for (t, what), ids in unknown.items())


NOTHING_KEPT: tuple[Kept, ...] = ()
NO_BACKWARD = (0, 0, 0, "")  # gradient FLOPs of a layer outside the backward pass (input, weight, counted, why)


@record(slots=True)
class _Alike:
    """What every node alike in its distinct layer, input-gradient pattern, trained and backward flags,
    counts and MACs shares: its figures, the tensors its rule says its backward keeps (None: no rule),
    whether it has no gradient rule, and its step where it keeps nothing (one record for all of them)."""

    figures: StepFigures
    saved: Sequence[Saved] | None
    no_gradient: bool
    unkept: LayerStep


def _alike(n: Node, input_grad: tuple[bool, ...], trained: bool, back: bool, flops: int, macs: int,
           memory_terms: tuple[int, int, int, int]) -> _Alike:
    """The shared part of node `n`'s step: its rules asked where it is in the backward pass."""
    g, saved, backward = _rules(n, input_grad, trained, flops) if back else (Gradients(), (), NO_BACKWARD)
    figures = StepFigures(flops * macs, *backward, input_grad, trained, back, *memory_terms)
    return _Alike(figures, saved, g is None, LayerStep(figures, NOTHING_KEPT, None))


def _rules(n: Node, input_grad: tuple[bool, ...], trained: bool, flops: int
           ) -> tuple[Gradients | None, Sequence[Saved] | None, tuple[int, int, int, str]]:
    """A layer's gradient and saved-tensor rules, and its gradient FLOPs for the batch (input, weight,
    what FlopCounterMode counts, why that differs)."""
    g = n.layer.gradients(n.args, n.in_shapes, n.shape, input_grad, trained)
    saved = n.layer.saved(n.args, n.in_shapes, n.shape, input_grad, trained)
    counted = g or Gradients()
    return g, saved, (flops * counted.input, flops * counted.weight, flops * counted.counted, counted.why)


def _notes(graph: LayerGraph) -> tuple[str, ...]:
    layers = distinct(graph).first  # one node of each distinct layer: every type and shape is among them
    types = {n.type for n in layers}
    notes = []
    attention = {prod(n.in_shapes[0][:-1]) for n in layers if n.type == "attention"}
    if len(attention) > 1:
        seen = ", ".join(f"{t:,}" for t in sorted(attention, reverse=True))
        notes.append(f"no 6·N·T: the attention layers see {seen} tokens per sample (no single T)")
    if "lstm" in types:
        notes.append("FlopCounterMode counts a stock nn.LSTM as 0 on CPU (oneDNN) and CUDA (cuDNN), forward and "
                     "backward; these are the products of PyTorch's native cell (oneDNN disabled), which it counts")
    if types & {"rnn", "lstm", "gru"}:
        notes.append("recurrent layers' saved tensors are those of PyTorch's native cell (measured on CPU at "
                     "batch 1; at a larger batch it also keeps a time-major copy of its input); cuDNN and oneDNN "
                     "keep a workspace of their own instead")
    return tuple(notes)


# -- activation checkpointing ----------------------------------------------------------------------


def cut_points(graph: LayerGraph) -> list[int]:
    """Nodes after which only their own output is still needed (inputs and free parameters aside):
    where a network can be cut into segments that hand one tensor on."""
    free = {n.id for n in graph if n.type in ("input", "parameter")}
    last_use = graph.last_use()
    open_after: list[int] = []  # ids whose output is still needed after the current node
    cuts = []
    for n in graph:
        open_after = [i for i in open_after if last_use[i] > n.id]
        if n.id not in free and last_use[n.id] > n.id:
            open_after.append(n.id)
        live = [i for i in open_after if i not in free]
        if n.type != "input" and live == [n.id] and n.id != len(graph) - 1:
            cuts.append(n.id)
    return cuts


def _segments(graph: LayerGraph, steps: Sequence[LayerStep], storages: _Storages,
              options: TrainingOptions) -> tuple[Segment, ...]:
    cuts = cut_points(graph)
    layers = sum(1 for s in steps if s.in_backward)
    wanted = max(2, round(math.sqrt(layers))) if options.checkpoint == "sqrt" else int(options.checkpoint or 1)
    total = sum(s.saved_bytes for s in steps)
    chosen: list[int] = []
    running = 0
    for n in graph:
        running += steps[n.id].saved_bytes
        if len(chosen) < wanted - 1 and n.id in cuts and running >= total * (len(chosen) + 1) / wanted:
            chosen.append(n.id)
    bounds = [-1, *chosen, len(graph) - 1]
    out = []
    for k in range(len(bounds) - 1):
        first, last = bounds[k] + 1, bounds[k + 1]
        boundary = bounds[k] if k else None
        keys: dict[tuple[str, int], int] = {}
        for i in range(first, last + 1):
            for kept in steps[i].kept:
                keys[kept.storage] = kept.bytes
        if boundary is not None:
            keys.pop(("node", storages.base[boundary]), None)
        boundary_bytes = storages.bytes(boundary) if boundary is not None else sum(
            storages.bytes(n.id) for n in graph.input_nodes())
        forward = sum(steps[i].forward for i in range(first, last + 1)) if k < len(bounds) - 2 else 0
        out.append(Segment(first, last, boundary_bytes, sum(keys.values()), forward))
    return tuple(out) if len(out) > 1 else ()


# -- 6·N·T ------------------------------------------------------------------------------------------


EMBEDDING_TABLES = ("embedding", "position-embedding", "token-type-embedding")  # outside Kaplan et al.'s N


def six_nt(graph: LayerGraph, counts: Sequence[Counts], batch: int) -> SixNT | None:
    """6·N·T where the network multiplies two activations (an `attention` layer, or a `matmul` of two
    activations): N = the parameters outside the embedding tables (token, position and token-type
    embeddings), T = the query positions of those products (tokens per sample). None where there is
    no such product, or where they see different numbers of positions (Swin's stages): 6·N·T
    assumes every parameter meets every one of T tokens."""
    if not any(n.type in ("attention", "matmul") for n in distinct(graph).first):
        return None
    products = [n for n in graph if n.type == "attention" or (
        n.type == "matmul" and all(graph.node(i).type != "parameter" and graph.node(i).batched for i in n.inputs))]
    if not products:
        return None
    tokens = {prod(n.in_shapes[0][:-1]) if n.type == "attention" else n.shape[-2] for n in products}
    if len(tokens) != 1:
        return None
    t = tokens.pop()
    embedding = sum(counts[n.id].params for n in graph if n.type in EMBEDDING_TABLES)
    n_params = sum(c.params for c in counts) - embedding
    return SixNT(n_params, t, batch, six_nt_definition(sum(c.params for c in counts), embedding, t))


def six_nt_definition(params: int, embedding: int, t: int) -> str:
    """What N and T of 6·N·T are, in words."""
    return f"N = all {params:,} parameters less the {embedding:,} of embedding tables; T = {t} tokens per sample"
