"""Counting conventions: what each published tool prints for a network, from per-layer facts.

Tools disagree on the same model by up to 9 % (MobileNetV2: FlopCounterMode/2 300,774,272;
torchinfo +0.01 %, fvcore +4.46 %, ptflops +6.49 %, thop +8.88 %) because each counts other
operations. Each convention here is one small pure function of one layer's facts (its type,
arguments, shapes, parameters and MACs) whose docstring states the tool's rule; it returns the
layer's figure and the rule in words (`Term`), or None where it has no rule for that layer
type, which the pass then counts as the layer's MACs and names (`Caveat`). Where a tool's
figure depends on something no per-layer fact holds (how the code was written, the batch, the
kernel PyTorch dispatches to), the convention says so by name in a caveat, never silently.

The rules, op by op with links to the tools' source lines: docs/conventions.md ("Other tools'
counts"); the measurements they reproduce to the unit: tests/reference/peer_reference.json,
peer_reference_tf.json and peer_conventions.md. Every figure is per sample (batch 1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import field
from fractions import Fraction
from itertools import compress
from math import floor
from typing import Any

from archcalc.alike import PLAIN
from archcalc.graph import LayerGraph, Node
from archcalc.layers import Counts
from archcalc.layers.base import per_axis
from archcalc.passes import counting
from archcalc.passes.counting import own_counts
from archcalc.records import record
from archcalc.tensor import prod

MACS, FLOPS = "MACs", "FLOPs"
# the parameters a tool reports, from the graph, each node's counts and their sum (shared and tied
# weights counted once)
ParamsRule = Callable[["LayerGraph", Sequence[Counts], Counts], int]


@record
class Facts:
    """What a convention may read about one layer (one call of its module)."""

    node: Node
    macs: int
    counts: Counts  # the parameters of the module it calls (a shared layer's owner's, a tied one's own)

    @property
    def type(self) -> str:
        return self.node.type

    @property
    def arg(self) -> Mapping[str, object]:
        return self.node.args

    @property
    def inputs(self) -> tuple[tuple[int, ...], ...]:
        return self.node.in_shapes

    @property
    def out(self) -> tuple[int, ...]:
        return self.node.shape

    @property
    def in_elements(self) -> int:
        return prod(self.node.in_shapes[0]) if self.node.in_shapes else 0

    @property
    def out_elements(self) -> int:
        return prod(self.node.shape)

    @property
    def channels(self) -> int:
        return self.node.in_shapes[0][0]

    @property
    def bias_adds(self) -> int:
        """One add per output element where the layer has a bias (conv, FC)."""
        return self.out_elements if self.counts.biases else 0

    @property
    def functional(self) -> bool:
        """Written as a function call (`F.relu(x)`), not a module (`/functional`)."""
        return bool(self.node.args.get("functional"))

    def window(self) -> int:
        """A pool's window: its kernel's elements (adaptive pools: input / output positions)."""
        if "kernel" in self.node.args:
            return prod(per_axis(self.node.args["kernel"], len(self.out) - 1))
        return max(1, prod(self.inputs[0][1:]) // max(1, prod(self.out[1:])))

    @property
    def spatial(self) -> int:
        """Position axes of a channels-first tensor (2 for C×H×W)."""
        return len(self.inputs[0]) - 1

    @property
    def global_pool(self) -> bool:
        return all(s == 1 for s in self.out[1:])


@record
class Term:
    """One layer's figure under a convention, the rule in words, and what it cannot see."""

    value: int
    rule: str
    caveat: str | None = None  # something the figure cannot reproduce, or assumes, said once per kind


@record
class Convention:
    name: str
    tool: str  # the tool and version whose printed figure it reproduces, and the call
    unit: str  # MACS (one per multiply-add: what the tool calls its "FLOPs" or "MACs") or FLOPS
    count: Callable[[Facts], Term | None]
    notes: tuple[str, ...] = ()  # said of every network under this convention
    # the parameters the tool reports, from each node's own (shared and tied weights counted once)
    params: ParamsRule | None = None

    @property
    def rule(self) -> str:
        """The convention's rule, from its counting function's docstring."""
        return " ".join((self.count.__doc__ or "").split())


@record
class Caveat:
    """Something a convention's figure cannot reproduce or assumes, for one layer type."""

    layer_type: str
    text: str
    layers: tuple[int, ...]  # the node ids it concerns


@record
class Counted:
    """A network counted under one convention: per node (by id), the total and the caveats."""

    convention: Convention
    values: tuple[int, ...]
    rules: tuple[str, ...]
    caveats: tuple[Caveat, ...]
    params: int  # the parameters the tool reports
    total: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "total", sum(self.values))

    @property
    def name(self) -> str:
        return self.convention.name

    @property
    def unit(self) -> str:
        return self.convention.unit

    def in_unit(self, unit: str, value: int | None = None) -> int:
        """A value (the total by default) in `unit`: a MAC-unit figure doubled for FLOPs. A FLOPs
        figure is never halved into MACs here (it may be odd): ask for FLOPs instead."""
        v = self.total if value is None else value
        if unit == self.unit:
            return v
        if unit == FLOPS:
            return 2 * v
        raise ValueError(f"{self.name} counts {self.unit}; its figure in MACs would be a guess")

    @property
    def notes(self) -> tuple[str, ...]:
        return self.convention.notes + tuple(c.text for c in self.caveats)


CONVENTIONS: dict[str, Convention] = {}
DEFAULT = "pytorch"


def register(name: str, tool: str, unit: str = MACS, notes: tuple[str, ...] = (),
             params: ParamsRule | None = None
             ) -> Callable[[Callable[[Facts], Term | None]], Callable[[Facts], Term | None]]:
    def add(count: Callable[[Facts], Term | None]) -> Callable[[Facts], Term | None]:
        if name in CONVENTIONS:
            raise RuntimeError(f"convention '{name}' registered twice")
        CONVENTIONS[name] = Convention(name, tool, unit, count, notes, params)
        return count
    return add


def names() -> list[str]:
    return list(CONVENTIONS)


def get(name: str) -> Convention:
    if name not in CONVENTIONS:
        from archcalc.errors import UsageError

        raise UsageError(f"unknown convention '{name}' (one of {', '.join(CONVENTIONS)})")
    return CONVENTIONS[name]


# -- the pass ----------------------------------------------------------------------------------


@record
class Alike:
    """The nodes grouped by the facts a convention reads (type, arguments, shapes, MACs, the counts
    of the module called): its rule reads nothing else, so a repeated layer is counted once."""

    of: tuple[int, ...]  # per node id: its group
    facts: tuple[Facts, ...]  # per group: the facts of its first node


def alike(graph: LayerGraph, macs: Sequence[int]) -> Alike:
    """Each node's group of alike facts, and the facts of each group, made once for every convention."""
    layers = counting.distinct(graph)
    own = counting.per_node(graph, own_counts)  # one object per distinct layer
    called = counting.by_owner(graph, own)  # the counts of the module each node calls
    # `own` holds the counts objects: their ids stay unique
    keys = counting.layer_keys(layers, macs, called) or list(zip(layers.group, macs, map(id, called)))
    facts = counting.once_per_key(keys, lambda _, i: Facts(graph.node(i), macs[i], called[i]))
    index = {key: k for k, key in enumerate(facts)}  # in the order they first occur
    return Alike(counting.picked(index, keys), tuple(facts.values()))


def count(graph: LayerGraph, macs: Sequence[int], name: str, same: Alike | None = None,
          unique: Sequence[Counts] | None = None, summed: Counts | None = None,
          spread: dict[Any, tuple[Any, ...]] | None = None) -> Counted:
    """Every node's figure under the convention `name`, with its caveats grouped by layer type
    (`same` (`alike`), `unique` counts and their sum, where the caller has them already; `spread`:
    the per-node tuples other conventions made of the same `same`, by their per-group values, and the
    nodes of their caveats, by the groups flagged)."""
    convention = get(name)
    same = same if same is not None else alike(graph, macs)
    terms = [_term(convention, f) for f in same.facts]  # once per group of alike nodes
    spread = spread if spread is not None else {}
    values = _per_node([t.value for t in terms], same.of, spread)
    rules = _per_node([t.rule for t in terms], same.of, spread)
    found = _caveats(same, terms, spread)
    unique = unique if unique is not None else counting.counts(graph)
    params = (convention.params or _all_params)(graph, unique, summed or counting.total(unique, Counts()))
    return Counted(convention, values, rules, found, params)


def _caveats(same: Alike, terms: Sequence[Term], made: dict[Any, tuple[Any, ...]]) -> tuple[Caveat, ...]:
    """The caveats of the groups' terms, one per layer type and text with its nodes, in the order
    their first nodes come; each's nodes picked out of every node's group in C, once per set of
    groups (`made`: what other conventions picked, by the groups; conventions often flag alike)."""
    flagged: dict[tuple[str, str], frozenset[int]] = {}  # the groups of each layer type and caveat
    for k, t in enumerate(terms):
        if t.caveat:
            key = (same.facts[k].type, t.caveat)
            flagged[key] = flagged.get(key, frozenset()) | {k}
    found = [Caveat(t, text, _nodes_of(same, groups, made)) for (t, text), groups in flagged.items()]
    return tuple(sorted(found, key=lambda c: c.layers[0]))


def _nodes_of(same: Alike, groups: frozenset[int], made: dict[Any, tuple[Any, ...]]) -> tuple[int, ...]:
    """The nodes of `groups`, in id order (kept in `made` by the groups, beside the per-node values)."""
    found = made.get(groups)
    if found is None:
        found = made[groups] = tuple(compress(range(len(same.of)), map(groups.__contains__, same.of)))
    return found


def _per_node(per_group: list[Any], of: tuple[int, ...], made: dict[Any, tuple[Any, ...]]) -> tuple[Any, ...]:
    """Each node's value from its group's (`of`: per node its group); the same per-group values,
    each of the same type, give the tuple made already (conventions often agree). Only ints and
    texts are looked up: they are equal only where they are the same value (alike.PLAIN)."""
    types = tuple(map(type, per_group))
    if not PLAIN.issuperset(types):
        return counting.picked(per_group, of)
    key = (tuple(per_group), types)
    found = made.get(key)
    if found is None:
        found = made[key] = counting.picked(per_group, of)
    return found


_INPUT = Term(0, "")  # an input computes nothing


def _term(convention: Convention, f: Facts) -> Term:
    """One layer's figure under a convention; a layer type it has no rule for counts as its MACs, said."""
    if f.type == "input":
        return _INPUT
    term = convention.count(f)
    if term is None:
        term = Term(f.macs, "MACs (no rule)",
                    f"{convention.name} has no rule for '{f.type}' (not measured): counted as its MACs")
    return term


def count_all(graph: LayerGraph, macs: Sequence[int], unique: Sequence[Counts] | None = None) -> dict[str, Counted]:
    """The network under every convention (`unique`: the counting pass's counts, if at hand)."""
    same = alike(graph, macs)
    unique = unique if unique is not None else counting.counts(graph)
    summed = counting.summed(graph, unique, Counts())
    spread: dict[Any, tuple[Any, ...]] = {}
    return {name: count(graph, macs, name, same, unique, summed, spread) for name in CONVENTIONS}


@record
class KindDiff:
    """Where two conventions differ, for one layer type: both sums and both rules."""

    layer_type: str
    layers: int
    a: int
    b: int
    rule_a: str
    rule_b: str

    @property
    def diff(self) -> int:
        return self.b - self.a


@record
class Diff:
    """Convention `b` against `a` on one network, per layer type, in one unit."""

    a: Counted
    b: Counted
    unit: str
    rows: tuple[KindDiff, ...]  # largest difference first; types where both agree are left out
    same: tuple[KindDiff, ...]  # the layer types both count alike

    @property
    def total_a(self) -> int:
        return sum(r.a for r in self.rows + self.same)

    @property
    def total_b(self) -> int:
        return sum(r.b for r in self.rows + self.same)

    def percent(self, value: int) -> float:
        """`value` as a percentage of `a`'s total."""
        return 100.0 * value / self.total_a if self.total_a else 0.0


def diff(graph: LayerGraph, a: Counted, b: Counted) -> Diff:
    """Per layer type, what `a` and `b` count (FLOPs where one of them counts FLOPs)."""
    unit = a.unit if a.unit == b.unit else FLOPS
    groups: dict[str, list[int]] = {}
    for n in graph:
        if n.type != "input":
            groups.setdefault(n.type, []).append(n.id)
    rows = []
    for t, ids in groups.items():
        rules_a = dict.fromkeys(a.rules[i] for i in ids)
        rules_b = dict.fromkeys(b.rules[i] for i in ids)
        rows.append(KindDiff(t, len(ids), sum(a.in_unit(unit, a.values[i]) for i in ids),
                             sum(b.in_unit(unit, b.values[i]) for i in ids), "; ".join(rules_a), "; ".join(rules_b)))
    differ = sorted((r for r in rows if r.diff), key=lambda r: (-abs(r.diff), r.layer_type))
    return Diff(a, b, unit, tuple(differ), tuple(r for r in rows if not r.diff))


# -- helpers -------------------------------------------------------------------------------------

# layers that only move, view, join or pick elements: every tool counts them 0
MOVES = frozenset({"flatten", "dropout", "identity", "concat", "slice", "reshape", "permute", "squeeze",
                   "unsqueeze", "chunk", "split", "transpose", "to-channels", "to-sequence", "last", "pad",
                   "parameter", "auto-shortcut"})
# archcalc's own modules (archcalc/pytorch/modules.py): no tool was measured on them
OWN_MODULES = frozenset({"table-conv", "subsampling", "rbf", "position-bias"})
LINEAR_ALGEBRA = frozenset({"conv", "table-conv", "fc", "matmul", "rnn", "lstm", "gru"})


def _all_params(graph: LayerGraph, counts: Sequence[Counts], summed: Counts) -> int:
    """sum(p.numel() for p in model.parameters())."""
    return summed.params


def _trainable(graph: LayerGraph, counts: Sequence[Counts], summed: Counts) -> int:
    """ptflops counts only parameters with requires_grad."""
    return summed.trainable


def _zero(f: Facts) -> Term | None:
    return Term(0, "0") if f.type in MOVES else None


def _rnn_parts(f: Facts) -> list[tuple[int, int]]:
    """(F_l, H) per layer of a recurrent layer: its input's features, then H·directions."""
    h, d = int(f.arg["hidden"]), 2 if f.arg["bidirectional"] else 1  # type: ignore[call-overload]
    layers = int(f.arg["layers"])  # type: ignore[call-overload]
    return [(f.inputs[0][1] if i == 0 else h * d, h) for i in range(layers)]


def _directions(f: Facts) -> int:
    return 2 if f.arg["bidirectional"] else 1


_GATES = {"rnn": 1, "gru": 3, "lstm": 4}


# -- pytorch: FlopCounterMode --------------------------------------------------------------------

_CPU_LSTM = ("FlopCounterMode counts a stock nn.LSTM as 0 on CPU (oneDNN's fused mkldnn_rnn_layer, the "
             "default) and on CUDA (cuDNN): no formula; archcalc counts its gate products, what "
             "FlopCounterMode counts with torch.backends.mkldnn disabled (PyTorch's native cell)")


@register("pytorch", "torch.utils.flop_counter.FlopCounterMode: get_total_flops() / 2 (archcalc's MACs)",
          notes=("FLOPs = 2 × MACs, as FlopCounterMode reports them",))
def pytorch(f: Facts) -> Term:
    """archcalc's own figures: the multiply-accumulates of convolutions, FC layers, matmuls and
    recurrent gate products, as FlopCounterMode counts them (FLOPs = 2 × MACs); bias adds, norms,
    activations, pooling and merges count 0 (they are `other ops`)."""
    if f.type == "lstm":
        return Term(f.macs, "gate MACs", _CPU_LSTM)
    return Term(f.macs, "MACs" if f.macs or f.type in LINEAR_ALGEBRA else "0")


# -- paper: multiply-adds of conv and FC ---------------------------------------------------------


@register("paper", "the multiply-adds of the ResNet and VGG papers' tables (He et al. 2016, Table 1; "
          "Simonyan & Zisserman 2015)")
def paper(f: Facts) -> Term:
    """Multiply-adds of the convolutions and fully connected layers only, as the ResNet and VGG
    papers (and torchvision's model tables, which call them GFLOPS) count them: no bias adds, no
    norms, activations or pooling; matmuls and recurrent layers are left out, and named."""
    if f.type in ("conv", "table-conv", "fc"):
        return Term(f.macs, "MACs")
    if f.macs:
        return Term(0, "left out", "the papers' multiply-adds count convolutions and FC layers only: "
                                   "this layer's MACs are left out")
    return Term(0, "0")


# -- torchinfo 1.8.0 ---------------------------------------------------------------------------


def _torchinfo_params(graph: LayerGraph, counts: Sequence[Counts], summed: Counts) -> int:
    """torchinfo's total_params sums its rows: a weight tied to another module's is counted in both
    (GPT-2's wte and lm_head)."""
    tied = sum(own_counts(n).params - counts[n.id].params for n in counting.distinct(graph).borrowing
               if n.tie is not None and n.shares is None)
    return summed.params + tied


@register("torchinfo", "torchinfo 1.8.0: summary(model, input_size).total_mult_adds", params=_torchinfo_params)
def torchinfo(f: Facts) -> Term | None:
    """torchinfo's "mult-adds": for every leaf module with parameters, its parameters × its output
    rows. A conv (any class whose name contains "Conv") counts (weights + bias) × N × output
    positions, i.e. its MACs plus one bias add per output element; every other module with
    parameters counts N × its parameters (FC: in·out + out; BatchNorm, PReLU, Embedding: their
    parameters, not per element; an FC on a sequence ignores T); LSTM/GRU/RNN count N × T × every
    parameter. Layers without parameters, functional ops and matmuls count 0 (layer_info.py
    calculate_macs)."""
    if f.type in TRANSFORMER:
        return _transformer("torchinfo", f)
    p = f.counts.params
    if f.type in ("conv", "table-conv"):
        return Term(p * prod(f.out[1:]), "(weights + biases)·positions")
    if f.type in ("rnn", "lstm", "gru"):
        return Term(f.inputs[0][0] * p, "T·params")
    if f.type == "parameter":
        return Term(0, "0", "torchinfo has no row for a free tensor read by a functional op: counted 0")
    if f.type in ("fc", "bn", "prelu", "embedding", "rbf", "position-bias", "subsampling"):
        return Term(p, "params" if f.type != "fc" or len(f.inputs[0]) == 1 else "params (T ignored)",
                    "torchinfo counts an FC on a sequence once per sample, not per step (output_size[0] is "
                    "the batch)" if f.type == "fc" and len(f.inputs[0]) > 1 else None)
    if p:
        return None
    return Term(0, "0")


# -- fvcore --------------------------------------------------------------------------------------


@register("fvcore", "fvcore 0.1.5.post20221221: FlopCountAnalysis(model, x).total()")
def fvcore(f: Facts) -> Term | None:
    """fvcore's "flops" (one per multiply-add): conv, FC and matmul MACs without bias;
    BatchNorm (eval) 2 per element (1 without affine); an adaptive average pool on a 2-D map 1 per
    input element; every other op 0 — recurrent layers, embeddings, activations, pools, adds and
    muls with an "Unsupported operator" warning, views and ReLU silently (jit_handles.py)."""
    if f.type in TRANSFORMER:
        return _transformer("fvcore", f)
    if f.type in ("conv", "table-conv", "fc", "matmul"):
        return Term(f.macs, "MACs")
    if f.type == "bn":
        return Term(f.in_elements * (2 if f.arg["affine"] else 1), "2·elements" if f.arg["affine"] else "elements")
    if f.type == "adaptive-avgpool":
        if f.spatial == 2:
            return Term(f.in_elements, "input elements")
        return Term(0, "0 (unsupported)")
    if f.type in ("rnn", "lstm", "gru"):
        return Term(0, "0 (unsupported)", "fvcore has no handle for aten::lstm/gru/rnn: recurrent layers count 0")
    if f.type == "lrn" or f.type in OWN_MODULES:
        return None
    return Term(0, "0")


# -- ptflops 0.7.5, pytorch backend ----------------------------------------------------------------

_PT_TWICE = frozenset({"relu", "prelu", "elu", "gelu"})  # module hook + its patched F.* call
_PT_MODULE = frozenset({"relu6", "leaky-relu"})  # module hook; F.hardtanh / F.leaky_relu unpatched
_PT_FUNCTION = frozenset({"silu", "softmax"})  # no module rule; F.silu / F.softmax patched
_PT_ZERO = frozenset({"sigmoid", "tanh", "hardswish", "hardsigmoid", "hardtanh", "log-softmax", "embedding",
                      "mean", "sum", "abs"})
_PT_POOLS = frozenset({"maxpool", "avgpool", "adaptive-avgpool", "adaptive-maxpool"})
_PT_OPERATORS = ("add, mul, sub and div are taken as the Python operators (+ * - /), which ptflops does not "
                 "see: torch.add / torch.mul / x.add() calls would count one per element")
_PT_MATMUL = ("matmul is taken as a torch.matmul call, which ptflops counts (prod(A)·B[-1]); the @ operator "
              "would count 0")
_PT_RNN_EXTRA = {"rnn": 1, "gru": 7, "lstm": 10}  # g(H) per layer, in H


def _ptflops_rnn(f: Facts) -> int:
    g, extra = _GATES[f.type], _PT_RNN_EXTRA[f.type]
    per_layer = sum(g * h * fl + g * h * h + extra * h + 2 * g * h for fl, h in _rnn_parts(f))
    # ptflops reads weight_ih_l{k} (never the _reverse ones) and doubles for two directions
    return f.inputs[0][0] * per_layer * _directions(f)


@register("ptflops", "ptflops 0.7.5: get_model_complexity_info(model, input_res, as_strings=False) "
          "(backend 'pytorch', the default)",
          params=_trainable,
          notes=("ptflops' figure here is per sample; at batch N it reports its module part once (divided by "
                 "N) and its functional part N times, so it is not N × this figure",))
def ptflops(f: Facts) -> Term | None:
    """ptflops (default backend): module hooks by exact type plus patched functionals. Conv and FC
    count MACs + one bias add per output element (FC: every leading dim); BatchNorm 2 per element
    (1 without affine); ReLU, PReLU, ELU and GELU modules 2 per element (the module hook and its
    F.* call), ReLU6 and LeakyReLU 1, SiLU and Softmax 1 (their F.* call); every pool module 2 per
    input element, F.* pools and F.relu 1; torch.matmul prod(A)·B[-1]; LSTM/GRU/RNN their own gate
    formula; Python operators (+ * @), sigmoid, tanh and embeddings 0 (pytorch_ops.py)."""
    if f.type in TRANSFORMER:
        return _transformer("ptflops", f)
    if f.type in ("conv", "fc"):
        return Term(f.macs + f.bias_adds, "MACs + bias adds" if f.bias_adds else "MACs")
    if f.type == "bn":
        return Term(f.in_elements * (2 if f.arg["affine"] else 1), "2·elements" if f.arg["affine"] else "elements")
    if f.type in _PT_TWICE:
        return Term(f.out_elements, "elements (F.*)") if f.functional else Term(
            2 * f.out_elements, "2·elements (module + F.*)")
    if f.type in _PT_MODULE:
        if f.functional:
            return Term(f.out_elements, "elements (F.relu6)") if f.type == "relu6" else Term(0, "0 (F.leaky_relu)")
        return Term(f.out_elements, "elements")
    if f.type in _PT_FUNCTION:
        return Term(f.in_elements, "elements (F.*)")
    if f.type in _PT_POOLS:
        return Term(f.in_elements, "input elements (F.*)") if f.functional else Term(
            2 * f.in_elements, "2·input elements (module + F.*)")
    if f.type == "matmul":
        return Term(f.macs, "prod(A)·B[-1] (torch.matmul)", _PT_MATMUL)
    if f.type in ("add", "mul", "sub", "div"):
        return Term(0, "0 (Python operator)", _PT_OPERATORS)
    if f.type in ("rnn", "lstm", "gru"):
        return Term(_ptflops_rnn(f), "T·(W_ih + W_hh + gate ops + biases)")
    if f.type in _PT_ZERO:
        return Term(0, "0")
    return _zero(f)


# -- ptflops 0.7.5, aten backend -----------------------------------------------------------------


@register("ptflops-aten", "ptflops 0.7.5: get_model_complexity_info(..., backend='aten')", params=_trainable)
def ptflops_aten(f: Facts) -> Term | None:
    """ptflops' aten backend: FlopCounterMode's products plus bias adds — aten.convolution and
    aten.addmm count their MACs + one per output element when they have a bias, aten.mm, matmul and
    bmm their MACs; GRU/RNN (one addmm per step for each of x·W_ih + b_ih and h·W_hh + b_hh) T × all
    parameters; a CPU LSTM (fused mkldnn_rnn_layer) 0; every other aten op 0 (aten_ops.py)."""
    if f.type in TRANSFORMER:
        return _transformer("ptflops-aten", f)
    if f.type in ("conv", "table-conv", "fc"):
        return Term(f.macs + f.bias_adds, "MACs + bias adds" if f.bias_adds else "MACs")
    if f.type == "matmul":
        return Term(f.macs, "MACs")
    if f.type == "lstm":
        return Term(0, "0 (fused CPU kernel)", "ptflops-aten sees no product of a stock nn.LSTM on CPU (oneDNN's "
                                                "fused mkldnn_rnn_layer, a zero-op): counted 0, as it reports")
    if f.type in ("rnn", "gru"):
        return Term(f.inputs[0][0] * f.counts.params, "T·params (addmm with bias)",
                    "ptflops-aten counts GRU/RNN as PyTorch's CPU cell runs them (one addmm per step); cuDNN "
                    "would count 0")
    if f.type in OWN_MODULES:
        return None
    return Term(0, "0")


# -- thop 0.1.1.post2209072238 -------------------------------------------------------------------

_THOP_RULES = frozenset({"conv", "fc", "bn", "prelu", "softmax", "avgpool", "adaptive-avgpool", "rnn", "gru", "lstm",
                         "relu", "relu6", "leaky-relu", "maxpool", "adaptive-maxpool", "dropout"})


def _thop_rnn_cell(kind: str, i: int, h: int) -> int:
    state = (i + h) * h + h + 2 * h
    if kind == "rnn":
        return h * (i + h) + h + 2 * h
    if kind == "gru":
        return state * 2 + state + h + 3 * h
    return state * 4 + 3 * h + h


def _thop_params(graph: LayerGraph, counts: Sequence[Counts], summed: Counts) -> int:
    """thop adds the parameters of modules it has a rule for: an embedding's table is dropped, and so
    are nn.MultiheadAttention's, Conv1D's and bare parameters (a class token, ViT's position table);
    a layer tied to another's weight holds it as its own (GPT-2's lm_head: the table counted there)."""
    def has_rule(n: Node) -> bool:
        return (n.type in _THOP_RULES or n.type == "layernorm" or (n.type == "mlp" and not n.args["conv1d"])
                or (n.type == "attention" and n.args["layout"] == "separate"))

    total = counting.summed(graph, counts, Counts(), has_rule).params
    for n in counting.distinct(graph).borrowing:  # a sharer adds nothing, a tied layer its own counts
        if has_rule(n):
            total += -counts[n.id].params if n.shares is not None else own_counts(n).params - counts[n.id].params
    return total


@register("thop", "thop 0.1.1.post2209072238: thop.profile(model, inputs=(x,))", params=_thop_params)
def thop(f: Facts) -> Term | None:
    """thop: hooks by exact module type, nothing else. Conv and FC count MACs without bias;
    BatchNorm 2 per element, doubled with affine (4·elements); PReLU 1 per element; average pool 1
    per output element; adaptive average pool int((input/output positions + 1) × outputs); module
    Softmax rows·(3n − 1); RNN/GRU/LSTM its own cell formulas; ReLU, ReLU6, LeakyReLU, max pools
    and dropout 0; every module without a rule (SiLU, Sigmoid, GELU, ELU, embeddings, …) and every
    functional op 0, silently (vision/basic_hooks.py, rnn_hooks.py)."""
    if f.type in TRANSFORMER:
        return _transformer("thop", f)
    if f.type in ("conv", "fc"):
        return Term(f.macs, "MACs")
    if f.functional:
        return Term(0, "0 (functional: no module)")
    if f.type == "bn":
        return Term(f.in_elements * (4 if f.arg["affine"] else 2), "4·elements" if f.arg["affine"] else "2·elements")
    if f.type == "prelu":
        return Term(f.in_elements, "elements")
    if f.type == "avgpool":
        return Term(f.out_elements, "output elements")
    if f.type == "adaptive-avgpool":
        kernel = Fraction(1)
        for i, o in zip(f.inputs[0][1:], f.out[1:]):
            kernel *= Fraction(i, o)
        return Term(floor((kernel + 1) * f.out_elements), "(window + 1)·outputs")
    if f.type == "softmax":
        dim = int(f.arg["dim"])  # type: ignore[call-overload]
        axis = dim - 1 if dim > 0 else len(f.out) + dim
        n = f.out[axis]
        return Term(f.out_elements // n * (3 * n - 1), "rows·(3n − 1)")
    if f.type in ("rnn", "gru", "lstm"):
        cells = sum(_thop_rnn_cell(f.type, fl, h) for fl, h in _rnn_parts(f)) * _directions(f)
        return Term(f.inputs[0][0] * cells, "T·(thop's cell formula)")
    if f.type == "embedding" or f.type in OWN_MODULES:
        return Term(0, "0 (no rule; its parameters dropped)")
    return Term(0, "0")


# -- TensorFlow profiler (tensorflow-cpu 2.21.0, Keras 3.15.1) ---------------------------------------

_TF_UNMEASURED = frozenset({"leaky-relu", "elu", "gelu", "prelu", "hardswish", "hardsigmoid", "hardtanh",
                            "log-softmax", "lrn", "abs"})


def _tf_params(graph: LayerGraph, counts: Sequence[Counts], summed: Counts) -> int:
    """Keras counts a BatchNormalization's moving mean and variance as (non-trainable) parameters."""
    if all(n.type != "bn" for n in counting.distinct(graph).first):
        return summed.params
    return summed.params + sum(2 * n.in_shapes[0][0] for n in graph if n.type == "bn" and n.shares is None)


@register("tf-profiler", "TensorFlow 2.21 profiler: tf.compat.v1.profiler.profile(frozen graph, "
          "options=float_operation()).total_float_ops, on the Keras model", unit=FLOPS, params=_tf_params,
          notes=("tf-profiler counts the Keras model's graph: a spec must mirror the Keras model (its biases, "
                 "its final softmax) for the figures to meet",))
def tf_profiler(f: Facts) -> Term | None:
    """TensorFlow's profiler, in FLOPs (2 per multiply-add): Conv2D, DepthwiseConv2dNative and
    MatMul 2·MACs, plus BiasAdd 1 per output element; Keras' inference BatchNormalization
    2·elements + 6·C (its Mul and AddV2 over the tensor, five ops on C-vectors); residual adds 1 per
    element per extra input, multiplies, subtractions and divisions 1 per element; max and average
    pools k_h·k_w per output; global average pooling (Mean) 1 per input element; Softmax 5 per
    element; Keras' swish (x·sigmoid(x)) its multiply; ReLU, ReLU6, sigmoid, tanh, concat, pad and
    embedding lookups 0 (flops_registry.py, nn_ops.py)."""
    if f.type in ("conv", "fc", "matmul"):
        groups = int(f.arg.get("groups") or 1)  # type: ignore[call-overload]
        if f.type == "conv" and 1 < groups < f.channels:
            return Term(2 * f.macs + f.bias_adds, "2·MACs + bias adds",
                        "TensorFlow's profiler cannot see a grouped (not depthwise) Conv2D: Keras runs it as an "
                        "XLA call, counted 0, and every op after it loses its shape and is skipped")
        return Term(2 * f.macs + f.bias_adds, "2·MACs + bias adds" if f.bias_adds else "2·MACs")
    if f.type == "bn":
        return Term(2 * f.in_elements + 6 * f.channels, "2·elements + 6·C")
    if f.type == "add":
        return Term(f.out_elements * (len(f.inputs) - 1), "elements")
    if f.type in ("mul", "sub", "div"):
        return Term(f.out_elements, "elements")
    if f.type in ("maxpool", "avgpool"):
        return Term(f.window() * f.out_elements, "window·outputs")
    if f.type in ("adaptive-avgpool", "mean"):
        if f.type == "mean" or f.global_pool:
            return Term(f.in_elements, "input elements (Mean)")
        return None
    if f.type == "adaptive-maxpool":
        return Term(0, "0 (Max)") if f.global_pool else None
    if f.type == "sum":
        return Term(f.in_elements - f.out_elements, "inputs − outputs")
    if f.type == "softmax":
        return Term(5 * f.out_elements, "5·elements")
    if f.type == "silu":
        return Term(f.out_elements, "elements (x·sigmoid(x))")
    if f.type in ("relu", "relu6", "sigmoid", "tanh", "embedding"):
        return Term(0, "0")
    if f.type in ("rnn", "lstm", "gru"):
        return Term(2 * f.macs, "2·MACs",
                    "TensorFlow's profiler counts a Keras RNN's while-loop body once, not T times, and skips the "
                    "ops whose shapes it cannot infer (a second layer's): its figure cannot be had from per-layer "
                    "facts; shown here as 2·MACs")
    if f.type in _TF_UNMEASURED or f.type in OWN_MODULES:
        return None
    return _zero(f)



# -- the transformer layer types ---------------------------------------------------------------------
# Measured on torchvision's VisionTransformer (nn.MultiheadAttention, nn.LayerNorm, nn.GELU, a bare
# class token and position table) and Hugging Face's GPT-2 (Conv1D projections, eager attention,
# nn.Embedding position table, NewGELUActivation): tests/reference/peer_transformer_reference.json
# (tools/peer_transformer_reference.py). A variant none of them has (separate or fused projections,
# a gated MLP, RMS norm, …) is named "not measured" by the caller (None).

TRANSFORMER = frozenset({"attention", "mlp", "layernorm", "rmsnorm", "layernorm2d", "groupnorm", "layer-scale",
                         "position-embedding", "token-type-embedding", "class-token", "token", "rotary"})

_SDPA = {
    "fvcore": "torchvision's nn.MultiheadAttention(need_weights=False) runs F.scaled_dot_product_attention, "
              "which fvcore does not support (it warns 'Unsupported operator aten::scaled_dot_product_attention'): "
              "Q·Kᵀ and A·V count 0, the projections (aten::linear) their MACs",
    "ptflops-aten": "torchvision's nn.MultiheadAttention(need_weights=False) runs the CPU SDPA kernel "
                    "(_scaled_dot_product_flash_attention_for_cpu), a zero-op for ptflops' aten backend: Q·Kᵀ and "
                    "A·V count 0, the projections (aten.addmm) their MACs + bias adds",
}
_NOT_LEAF = ("nn.MultiheadAttention is no leaf module (its out_proj is never called): torchinfo's total_mult_adds "
             "sums leaves only and leaves it out (0)")
_THOP_NONE = "thop hooks nothing for {what}: it counts 0, and leaves its parameters out of its count"


def _attention_parts(f: Facts) -> tuple[int, int, int, int, int]:
    """(projection MACs, Q·Kᵀ + A·V MACs, scores, q/k/v bias elements, output bias elements)."""
    from archcalc.layers.attention import sizes

    s = sizes(f.arg, f.inputs)
    projections = s.tokens * s.features * s.q_width + 2 * s.memory_tokens * s.memory_features * s.kv_width \
        + s.tokens * s.q_width * s.width
    qkv_bias = bool(f.arg["bias"])
    out_bias = qkv_bias if f.arg["out_bias"] is None else bool(f.arg["out_bias"])
    return (projections, 2 * s.scores * s.head_dim, s.scores,
            (s.tokens * s.q_width + 2 * s.memory_tokens * s.kv_width) if qkv_bias else 0,
            s.tokens * s.width if out_bias else 0)


def _mlp_parts(f: Facts) -> tuple[int, int, int, bool]:
    """(positions, F, hidden, out) and whether it has biases."""
    t, feat = prod(f.inputs[0][:-1]), f.inputs[0][-1]
    return t, feat, int(f.arg["hidden"]), bool(f.arg["bias"])  # type: ignore[call-overload]


def _transformer(tool: str, f: Facts) -> Term | None:
    layout = f.arg.get("layout")
    if f.type == "attention":
        memory = len(f.inputs) > (2 if f.arg["rotary"] else 1)
        if layout == "fused" or f.arg.get("window") is not None or memory:
            return None  # Swin's windows, cross-attention: not measured
        projections, products, scores, qkv_b, out_b = _attention_parts(f)
        return _attention(tool, f, str(layout), projections, products, scores, qkv_b, out_b)
    if f.type == "mlp":
        if f.arg["gated"]:
            return _gated(tool, f)
        return _mlp(tool, f)
    if f.type == "rmsnorm":  # Hugging Face's LlamaRMSNorm: pow, mean, rsqrt and two multiplies
        if tool == "torchinfo":
            return Term(f.counts.params, "params")
        if tool == "thop":
            return Term(0, "0 (LlamaRMSNorm)", _THOP_NONE.format(what="Hugging Face's LlamaRMSNorm"))
        return Term(0, "0 (LlamaRMSNorm: elementwise ops)", _RMS.get(tool))
    if f.type == "token-type-embedding":  # BERT's token_type_embeddings: nn.Embedding, added with +
        if tool == "torchinfo":
            return Term(f.counts.params, "params (nn.Embedding)")
        if tool == "thop":
            return Term(0, "0 (nn.Embedding)", _THOP_NONE.format(what="nn.Embedding"))
        return Term(0, "0 (a lookup, added with +)")
    if f.type == "layernorm":
        affine = bool(f.arg["affine"])
        return {"torchinfo": Term(f.counts.params, "params"),
                "fvcore": Term(f.in_elements * (5 if affine else 4), "5·elements" if affine else "4·elements"),
                "ptflops": Term(f.in_elements, "elements"),
                "ptflops-aten": Term(0, "0 (native_layer_norm)"),
                "thop": Term(f.in_elements * (4 if affine else 2), "4·elements" if affine else "2·elements")}[tool]
    if f.type == "position-embedding":
        if f.arg["whole"]:  # torchvision's ViT: a bare (1, N, F) parameter added with +
            if tool == "thop":
                return Term(0, "0 (a bare parameter)", _THOP_NONE.format(what="a bare nn.Parameter"))
            return Term(0, "0 (a bare parameter, added with +)")
        if tool == "torchinfo":  # GPT-2's wpe: an nn.Embedding module
            return Term(f.counts.params, "params (nn.Embedding)")
        if tool == "thop":
            return Term(0, "0 (nn.Embedding)", _THOP_NONE.format(what="nn.Embedding"))
        return Term(0, "0 (a lookup, added with +)")
    if f.type == "token":
        return Term(0, "0 (x[:, i])")
    if f.type == "rotary":  # Hugging Face's LlamaRotaryEmbedding: buffers, cos and sin of t·inv_freq
        return Term(0, "0 (the cos/sin table)")
    if f.type == "class-token":  # torchvision's ViT: a bare (1, 1, F) parameter, concatenated
        if tool == "thop":
            return Term(0, "0 (a bare parameter)", _THOP_NONE.format(what="a bare nn.Parameter"))
        return Term(0, "0 (a bare parameter, torch.cat)")
    return None


def _attention(tool: str, f: Facts, layout: str, projections: int, products: int, scores: int, qkv_b: int,
               out_b: int) -> Term | None:
    from archcalc.layers.attention import sizes

    sz = sizes(f.arg, f.inputs)
    t, e = sz.tokens, sz.features
    if layout == "mha":  # torchvision: nn.MultiheadAttention(x, x, x, need_weights=False)
        if tool == "torchinfo":
            return Term(0, "0 (not a leaf)", _NOT_LEAF)
        if tool == "fvcore":
            return Term(projections, "projection MACs (SDPA unsupported)", _SDPA["fvcore"])
        if tool == "ptflops-aten":
            return Term(projections + qkv_b + out_b, "projection MACs + bias adds (SDPA a zero-op)",
                        _SDPA["ptflops-aten"])
        if tool == "thop":
            return Term(0, "0 (no rule)", _THOP_NONE.format(what="nn.MultiheadAttention"))
        # ptflops' multihead_attention_counter_hook: the scaling T·E, the three in-projections and their
        # biases, per head T·T'·(hd + 1 + hd) (Q·Kᵀ, softmax, A·V), the out projection T·E·(E + 1)
        # (its bias counted whether there is one or not)
        value = t * e + (projections - t * e * e) + (3 * t * e if qkv_b else 0) + products + scores + t * e * (e + 1)
        return Term(value, "T·E + 3·T·E² + 3·T·E (biases) + heads·T·T'·(2·hd + 1) + T·E·(E + 1) "
                           "(multihead_attention_counter_hook)")
    if layout == "separate":  # Hugging Face's BERT and LLaMA: nn.Linear q, k, v, out; eager torch.matmul
        if tool == "torchinfo":
            return Term(f.counts.params, "params of q, k, v and out (T ignored); matmuls 0",
                        "torchinfo counts an FC on a sequence once per sample, not per step (output_size[0] is "
                        "the batch)")
        if tool == "fvcore":
            return Term(projections + products, "MACs (aten::linear and matmul)")
        if tool == "ptflops":
            return Term(projections + qkv_b + out_b + products + scores,
                        "MACs + bias adds (nn.Linear) + torch.matmul's prod(A)·B[-1] + softmax elements")
        if tool == "ptflops-aten":
            return Term(projections + products + qkv_b + out_b, "MACs + bias adds")
        return Term(projections, "projection MACs (nn.Linear); torch.matmul 0", _THOP_MATMUL)
    # conv1d: Hugging Face's GPT-2, Conv1D projections (torch.addmm) and eager torch.matmul
    fused = sz.q_width + 2 * sz.kv_width
    if tool == "torchinfo":  # Conv1D has "Conv" in its class name: params × output features
        c_attn = (e * fused + (fused if qkv_b else 0)) * fused
        c_proj = (sz.q_width * sz.width + (sz.width if out_b else 0)) * sz.width
        return Term(c_attn + c_proj, "Conv1D: params·out features, c_attn and c_proj; matmuls 0")
    if tool == "fvcore":
        return Term(projections + products, "MACs (addmm and matmul)")
    if tool == "ptflops":
        bias_once = (fused if qkv_b else 0) + (sz.width if out_b else 0)
        return Term(projections + products + scores + bias_once,
                    "MACs (torch.addmm, torch.matmul) + softmax elements + bias elements once (addmm's input)")
    if tool == "ptflops-aten":
        return Term(projections + products + qkv_b + out_b, "MACs + bias adds")
    return Term(0, "0 (Conv1D: no rule)", _THOP_NONE.format(what="Hugging Face's Conv1D"))


_THOP_MATMUL = ("thop hooks modules only: attention's Q·Kᵀ and A·V (torch.matmul in the attention's forward) "
                "count 0; its q, k, v and out nn.Linear layers their MACs")
_RMS = {"fvcore": "fvcore does not support the elementwise ops of Hugging Face's LlamaRMSNorm (aten::pow, mean, "
                  "rsqrt, mul): 0",
        "ptflops": None, "ptflops-aten": None}
_PT_MLP_ACT = {"gelu": 2, "gelu-tanh": 2, "relu": 2, "silu": 1, "tanh": 0, "sigmoid": 0}  # ptflops, per element


def _mlp(tool: str, f: Facts) -> Term | None:
    t, feat, h, bias = _mlp_parts(f)
    o = int(f.out[-1])
    act = str(f.arg["act"])
    if f.arg["conv1d"]:  # Hugging Face's GPT-2: Conv1D c_fc and c_proj, NewGELUActivation
        if tool == "torchinfo":
            return Term((feat * h + (h if bias else 0)) * h + (h * o + (o if bias else 0)) * o,
                        "Conv1D: params·out features, c_fc and c_proj")
        if tool == "fvcore":
            return Term(f.macs, "MACs (addmm)")
        if tool == "ptflops":
            if act != "gelu-tanh":
                return None
            return Term(f.macs + ((h + o) if bias else 0),
                        "MACs + bias elements once (torch.addmm); NewGELUActivation's Python operators 0")
        if tool == "ptflops-aten":
            return Term(f.macs + (t * (h + o) if bias else 0), "MACs + bias adds")
        return Term(0, "0 (Conv1D: no rule)", _THOP_NONE.format(what="Hugging Face's Conv1D"))
    # torchvision's MLP (nn.Linear, the activation module, dropout, nn.Linear; written with `dropout=`) or
    # Hugging Face's BERT (intermediate.dense, ACT2FN's GELUActivation, output.dense)
    if tool == "torchinfo":
        return Term(f.counts.params, "params of fc1 and fc2 (T ignored)",
                    "torchinfo counts an FC on a sequence once per sample, not per step (output_size[0] is "
                    "the batch)")
    if tool == "fvcore":
        return Term(f.macs, "MACs (aten::linear); the activation unsupported")
    if tool == "ptflops":
        if f.arg["dropout"] is None:  # Hugging Face's activation holds F.gelu from before ptflops patches it
            if act != "gelu":
                return None
            return Term(f.macs + (t * (h + o) if bias else 0), "MACs + bias adds (nn.Linear); GELUActivation 0",
                        _PT_HF_ACT)
        return Term(f.macs + (t * (h + o) if bias else 0) + _PT_MLP_ACT[act] * t * h,
                    "MACs + bias adds (nn.Linear) + the activation module's count")
    if tool == "ptflops-aten":
        return Term(f.macs + (t * (h + o) if bias else 0), "MACs + bias adds (aten.addmm)")
    return Term(f.macs, "MACs (nn.Linear); the activation no rule, 0")


_PT_HF_ACT = ("an MLP written without dropout= is taken as Hugging Face's (BERT's intermediate and output): its "
              "GELUActivation calls the F.gelu it bound before ptflops patched it, counted 0; torchvision's MLP "
              "(written with dropout=…) has an nn.GELU module, counted 2 per element")


def _gated(tool: str, f: Facts) -> Term | None:
    """Hugging Face's LLaMA MLP: gate_proj, up_proj, down_proj (nn.Linear), act_fn (SiLU), a product."""
    t, _, h, bias = _mlp_parts(f)
    o = int(f.out[-1])
    if tool == "torchinfo":
        return Term(f.counts.params, "params of gate, up and down (T ignored)",
                    "torchinfo counts an FC on a sequence once per sample, not per step (output_size[0] is "
                    "the batch)")
    if tool in ("fvcore", "thop"):
        return Term(f.macs, "MACs (nn.Linear); the activation and the product 0")
    biases = t * (2 * h + o) if bias else 0
    if tool == "ptflops-aten":
        return Term(f.macs + biases, "MACs + bias adds" if biases else "MACs")
    if f.arg["act"] != "silu":
        return None
    return Term(f.macs + biases + t * h, "MACs (+ bias adds) + T·hidden (F.silu); the product a Python operator, 0")
