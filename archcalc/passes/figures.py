"""Every figure archcalc prints, by name: one registry that columns, JSON, `check`, `explain`
and `compare` read, so a name means the same number everywhere.

A figure reads an `Analysis` (it computes nothing the passes have not): its value for a
group of nodes (a layer, or the layers of a collapsed block) and for the whole network.
Most figures add up over a group; shapes and receptive fields are those of the group's
last node; the sharing factor is the ratio of the group's sums.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from functools import lru_cache
from typing import Any

from archcalc.layers.base import Formula
from archcalc.passes.analysis import Analysis
from archcalc.passes.receptive_field import RF
from archcalc.passes.sharing import total as sharing_total
from archcalc.records import record

Group = Callable[[Analysis, Sequence[int]], Any]


@record
class Figure:
    key: str
    doc: str
    group: Group  # the value for these nodes (one layer, or a collapsed block's layers)
    total: Callable[[Analysis], Any] | None = None  # the whole network's; None: no total
    claimable: bool = False  # `archcalc check` takes `key=N` and `total key=N` for it

    def of(self, analysis: Analysis, node_id: int) -> Any:
        return self.group(analysis, (node_id,))


FIGURES: dict[str, Figure] = {}


def _figure(key: str, doc: str, group: Group, total: Callable[[Analysis], Any] | None = None,
            claimable: bool = False) -> None:
    if key in FIGURES:
        raise RuntimeError(f"figure '{key}' registered twice")
    FIGURES[key] = Figure(key, doc, group, total, claimable)


def _summed(per_node: Callable[[Analysis, int], int]) -> Group:
    # one node (a table's layer row): 0 + its value, what sum gives, without the generator
    return lambda a, ids: 0 + per_node(a, ids[0]) if len(ids) == 1 else sum(per_node(a, i) for i in ids)


def _last(per_node: Callable[[Analysis, int], Any]) -> Group:
    return lambda a, ids: per_node(a, ids[-1])


def _rf_part(what: str) -> Callable[[Analysis, int], Any]:
    """size / jump / start / aligned of a node's field: 'global' (size) or None past a global
    layer, () / None where the tensor has no position axes."""
    def read(a: Analysis, node_id: int) -> Any:
        field = a.rf[node_id]
        if not isinstance(field, RF):
            return str(field) if what == "size" else None
        if field.rank == 0:
            return () if what == "size" else None
        return getattr(field, what)
    return read


def _sharing(a: Analysis, ids: Sequence[int]) -> Any:
    found = [a.sharing[i] for i in ids if a.sharing[i] is not None]
    return sharing_total(found) if found else None


def _fc_equivalent(a: Analysis, ids: Sequence[int]) -> int | None:
    s = _sharing(a, ids)
    return s.fc_equivalent_params if s else None


def _sharing_factor(a: Analysis, ids: Sequence[int]) -> float | None:
    s = _sharing(a, ids)
    return s.factor if s and s.params else None


def _share(a: Analysis, ids: Sequence[int]) -> Fraction:
    total = a.totals.params
    return _fraction(sum(a.counts[i].params for i in ids), total) if total else Fraction(0)


@lru_cache(maxsize=4096)
def _fraction(part: int, whole: int) -> Fraction:
    """part / whole, made once per pair (a table's rows of one layer size share it; ints: exact keys)."""
    return Fraction(part, whole)


def _all(a: Analysis) -> range:
    return range(len(a.graph))


_figure("shape", "output shape, channels first, without the batch axis",
        _last(lambda a, i: a.graph.node(i).shape), lambda a: a.graph.output.shape)
_figure("params", "learnable elements (weights + biases) = sum(p.numel() for p in model.parameters())",
        _summed(lambda a, i: a.counts[i].params), lambda a: a.totals.params, claimable=True)
_figure("weights", "learnable elements that are not biases",
        _summed(lambda a, i: a.counts[i].weights), lambda a: a.totals.counts.weights, claimable=True)
_figure("biases", "learnable bias elements",
        _summed(lambda a, i: a.counts[i].biases), lambda a: a.totals.counts.biases, claimable=True)
_figure("buffers", "non-learnable elements (BatchNorm running mean/var and batch counter)",
        _summed(lambda a, i: a.counts[i].buffers), lambda a: a.totals.counts.buffers, claimable=True)
_figure("macs", "multiply-accumulates of convolution and FC layers; bias adds are not MACs",
        _summed(lambda a, i: a.macs[i]), lambda a: a.totals.macs, claimable=True)
_figure("flops", "2 × MACs, as torch.utils.flop_counter.FlopCounterMode counts",
        _summed(lambda a, i: a.flops(i)), lambda a: a.totals.flops, claimable=True)
_figure("other_ops", "non-MAC operations (bias adds, norms, activations, pooling, merges) per output element",
        _summed(lambda a, i: a.other_ops[i].total), lambda a: a.totals.other_ops.total)
_figure("connections", "each unit's inputs plus one for its bias, summed (LeCun et al. 1998): MACs + bias adds "
        "for conv/FC; LeNet's subsampling counts its window + 1, an RBF unit its inputs",
        _summed(lambda a, i: a.connections[i]), lambda a: a.totals.connections)
_figure("fc_equivalent", "parameters of the FC mapping a conv's input to its output: in·out + out",
        _fc_equivalent, lambda a: _fc_equivalent(a, _all(a)))
_figure("sharing", "per convolution: fc_equivalent_params = in_elements × out_elements + out_elements (an FC "
        "mapping the same input to the same output); factor = fc_equivalent_params / params",
        _sharing_factor, lambda a: _sharing_factor(a, _all(a)))
_figure("share", "share of all parameters, 0..1 (an exact fraction)", _share, lambda a: _share(a, _all(a)))
_figure("rf", "per spatial axis: size r, jump j, start (first input pixel of unit 0), center = start + (r-1)/2; "
        "'global' after global pooling, flatten or FC; null without spatial axes", _last(_rf_part("size")))
_figure("jump", "receptive-field jump: input positions between adjacent output units", _last(_rf_part("jump")))
_figure("start", "input coordinate of the first position unit 0 sees (negative: padding)",
        _last(_rf_part("start")))
_figure("aligned", "whether merged paths share one center", _last(_rf_part("aligned")))
_figure("act_bytes", "output bytes (dtype × batch); the total is what training keeps",
        _summed(lambda a, i: a.memory.nodes[i].activation_bytes), lambda a: a.memory.activation_bytes)
_figure("param_bytes", "parameter bytes for the dtype",
        _summed(lambda a, i: a.memory.nodes[i].param_bytes), lambda a: a.memory.param_bytes)

_figure("quadratic_macs", "the MACs of attention's Q·Kᵀ and A·V (2·heads·T·T'·head_dim), which grow with T²; "
        "the rest of a sequence model's MACs grows with T", _summed(lambda a, i: a.attention.quadratic_macs[i]),
        lambda a: a.attention.total_quadratic_macs)
_figure("causal_macs", "MACs with a causal mask's hidden upper triangle of Q·Kᵀ and A·V left out (T·(T+1)/2 "
        "query-key pairs per head): a figure of its own; FlopCounterMode never discounts masks",
        _summed(lambda a, i: a.attention.causal_macs[i]), lambda a: a.attention.total_causal_macs)
_figure("kv_cache", "elements per sample a decoder keeps between generation steps: 2·kv_heads·head_dim·T per "
        "caching attention layer", _summed(lambda a, i: a.attention.kv_cache[i]),
        lambda a: a.attention.total_kv_cache)
_figure("kv_cache_bytes", "KV-cache bytes: kv_cache elements × batch × bytes per element of the dtype",
        _summed(lambda a, i: a.attention.kv_cache_bytes[i]), lambda a: a.attention.total_kv_cache_bytes)
_figure("counted", "the figure under the chosen --convention (passes/conventions.py): a tool's count, in its "
        "unit (MACs; FLOPs for tf-profiler)",
        _summed(lambda a, i: a.counted.values[i]), lambda a: a.counted.total)
_figure("train_forward", "training step: forward FLOPs for the batch (FlopCounterMode's convention)",
        _summed(lambda a, i: a.step.layers[i].forward), lambda a: a.step.forward)
_figure("train_grad_input", "training step: FLOPs of the gradients w.r.t. the inputs that need one (an RNN's "
        "hidden state too)", _summed(lambda a, i: a.step.layers[i].grad_input), lambda a: a.step.grad_input)
_figure("train_grad_weight", "training step: FLOPs of the weight gradient (none where frozen)",
        _summed(lambda a, i: a.step.layers[i].grad_weight), lambda a: a.step.grad_weight)
_figure("train_step", "training step: forward + backward FLOPs (checkpointing's recomputation apart)",
        _summed(lambda a, i: a.step.layers[i].step), lambda a: a.step.forward + a.step.backward)
_figure("flop_counter_backward", "what FlopCounterMode counts for the backward (a grouped conv's weight "
        "gradient groups times)", _summed(lambda a, i: a.step.layers[i].flop_counter_backward),
        lambda a: a.step.flop_counter_backward)
_figure("train_state_bytes", "training: bytes of a layer's weights, fp32 master copies, gradients and optimizer "
        "state (each term apart in JSON)",
        _summed(lambda a, i: (lambda s: s.weight_bytes + s.master_bytes + s.gradient_bytes + s.optimizer_bytes)(
            a.step.layers[i])),
        lambda a: a.step.weight_bytes + a.step.master_bytes + a.step.gradient_bytes + a.step.optimizer_bytes)
_figure("kept_bytes", "bytes of the tensors the backward pass keeps that this layer is the first to keep "
        "(batch, training precision; each storage once)",
        _summed(lambda a, i: a.step.layers[i].saved_bytes), lambda a: a.step.saved_bytes)

# the figure each worked formula (`Formula.what`) must equal; "output H, W" names shape axes
FORMULA_FIGURES = {"weights": "weights", "biases": "biases", "params": "params", "buffers": "buffers",
                   "MACs": "macs"}


def value(analysis: Analysis, key: str, ids: Sequence[int]) -> Any:
    """A figure for a group of nodes (one layer: `[id]`)."""
    return FIGURES[key].group(analysis, ids)


def total(analysis: Analysis, key: str) -> Any:
    """A figure for the whole network (None where it has none)."""
    figure = FIGURES[key]
    return figure.total(analysis) if figure.total else None


def claimable() -> tuple[str, ...]:
    """The figures `check` takes as `key=N`, in the registry's order."""
    return tuple(k for k, f in FIGURES.items() if f.claimable)


_COUNTED = ("weights", "biases", "params", "buffers")


def formulas(analysis: Analysis, node_id: int) -> tuple[Formula, ...]:
    """The worked formulas of a node: its layer type's own, for its arguments and shapes; where it
    applies another layer's weights or ties one, the counts say whose they are."""
    n = analysis.graph.node(node_id)
    own = n.layer.explain(n.args, n.in_shapes, n.shape)
    if n.shares is not None:
        owner = analysis.graph.node(n.shares)
        note = f"the weights of layer {owner.id} ({owner.text}), counted there"
        return tuple([f for f in own if f.what not in _COUNTED] + [Formula("params", "0", 0, note)])
    if n.tie is not None:
        owner = analysis.graph.node(n.tie.owner)
        c = analysis.counts[node_id]
        tied = n.layer.counts(n.args, n.in_shapes, n.shape).weights - c.weights
        kept = [f for f in own if f.what not in _COUNTED]
        note = f"the {tied:,} tied elements are layer {owner.id}'s ({owner.text})"
        return tuple(kept + [Formula("weights", f"{c.weights + tied} − {tied}", c.weights, note),
                             Formula("params", f"{c.weights} + {c.biases}", c.params)])
    return tuple(own)


def for_formula(analysis: Analysis, node_id: int, what: str) -> list[int]:
    """The analysis figures a formula about `what` stands for (one per output axis it names)."""
    from archcalc.tensor import shape_axis_names

    if what in FORMULA_FIGURES:
        return [FIGURES[FORMULA_FIGURES[what]].of(analysis, node_id)]
    if what.startswith("output "):
        shape = analysis.graph.node(node_id).shape
        axes = shape_axis_names(len(shape))
        return [shape[axes.index(name.strip())] for name in what[len("output "):].split(",")]
    raise KeyError(f"no figure is called '{what}'")


def formulas_for(analysis: Analysis, node_id: int, key: str) -> list[Formula]:
    """The formulas that give one figure of a node: 'params', 'weights', 'MACs' or 'output'."""
    return [f for f in formulas(analysis, node_id) if f.what == key or f.what.split(" ")[0] == key]
