"""Memory in bytes, as ../shared/conventions.md ("Memory") defines it.

- Per node: its output (activation) elements × batch × bytes per element of the dtype;
  its parameters and buffers × bytes per element. Buffers are counted at the same
  dtype (BatchNorm's one int64 batch counter too: 8 bytes in PyTorch, a rounding error).
- Inference peak: run the graph in topological (id) order; a tensor is allocated when
  its node runs and freed after its last consumer; the network's input counts, and
  outputs nothing consumes (the result, side heads) stay alive to the end. The peak is
  the largest total alive while a node runs (its inputs and its output together).
  Weights are apart: the peak is activations only. Every node's output is counted as
  a tensor of its own, in-place ReLUs and views (flatten, dropout) included.
- Training estimate for a batch: parameters + buffers + gradients (one per parameter)
  + optimizer state (SGD none, momentum 1×, Adam 2× the parameters) + the activations
  kept for the backward pass, taken as every node's output (the input included) × batch.
  Each term is reported on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate
from operator import attrgetter

from archcalc.errors import UsageError
from archcalc.graph import LayerGraph
from archcalc.layers import Counts
from archcalc.passes import counting
from archcalc.passes.counting import distinct, layer_and_records, once_per_key, picked
from archcalc.records import record
from archcalc.tensor import prod

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}
OPTIMIZER_STATES = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}  # state tensors per parameter


@record
class MemoryOptions:
    dtype: str = "float32"
    batch: int = 1
    optimizer: str = "adam"

    def __post_init__(self) -> None:
        if self.dtype not in DTYPE_BYTES:
            raise UsageError(f"unknown dtype '{self.dtype}' (one of {', '.join(DTYPE_BYTES)})")
        if self.optimizer not in OPTIMIZER_STATES:
            raise UsageError(f"unknown optimizer '{self.optimizer}' (one of {', '.join(OPTIMIZER_STATES)})")
        if self.batch < 1:
            raise UsageError(f"batch must be at least 1, not {self.batch}")

    @property
    def bytes_per_element(self) -> int:
        return DTYPE_BYTES[self.dtype]


@record(slots=True)
class NodeMemory:
    activation_bytes: int  # the node's output, × batch
    param_bytes: int
    buffer_bytes: int


@record
class Memory:
    """Per-node bytes and the totals built from them; every term kept apart."""

    options: MemoryOptions
    nodes: Sequence[NodeMemory]  # by node id
    param_bytes: int
    buffer_bytes: int
    activation_bytes: int  # every node's output (input included) × batch
    inference_peak_bytes: int  # activations alive at once, × batch; weights not included
    peak_at: int  # the node running when the peak is reached

    @property
    def gradient_bytes(self) -> int:
        return self.param_bytes

    @property
    def optimizer_bytes(self) -> int:
        return OPTIMIZER_STATES[self.options.optimizer] * self.param_bytes

    @property
    def inference_bytes(self) -> int:
        """Weights, buffers and the activation peak."""
        return self.param_bytes + self.buffer_bytes + self.inference_peak_bytes

    @property
    def training_bytes(self) -> int:
        return (self.param_bytes + self.buffer_bytes + self.gradient_bytes + self.optimizer_bytes
                + self.activation_bytes)


def node_memory(graph: LayerGraph, counts: Sequence[Counts], options: MemoryOptions) -> tuple[NodeMemory, ...]:
    b = options.bytes_per_element
    layers = distinct(graph)
    keys = layer_and_records(layers, counts)  # one record per distinct layer and counts object
    made = once_per_key(keys, lambda _, i: NodeMemory(prod(graph.node(i).shape) * options.batch * b,
                                                      counts[i].params * b, counts[i].buffers * b))
    return picked(made, keys)


def inference_peak(graph: LayerGraph, sizes: Sequence[int]) -> tuple[int, int]:
    """(largest bytes alive while one node runs, that node's id), running in id order."""
    change = [*sizes, 0]  # bytes allocated at step i, minus bytes freed after i − 1
    for use, size in zip(graph.last_readers(len(graph) - 1), sizes):
        change[use + 1] -= size
    alive = list(accumulate(change[:-1]))
    if not alive:
        return -1, 0
    peak = max(alive)
    return peak, alive.index(peak)  # the first node at which it is reached


def memory(graph: LayerGraph, counts: Sequence[Counts], options: MemoryOptions, summed: Counts | None = None
           ) -> Memory:
    """The memory figures for `options`; `summed`: the counts' sum (`counting.total`), where at hand."""
    nodes = node_memory(graph, counts, options)
    activations = tuple(map(attrgetter("activation_bytes"), nodes))  # read in C
    peak, peak_at = inference_peak(graph, activations)
    b = options.bytes_per_element
    if summed is None:
        summed = counting.total(counts, Counts())
    return Memory(options, nodes, summed.params * b, summed.buffers * b, sum(activations), peak, peak_at)
