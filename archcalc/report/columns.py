"""The columns a report can show: one record each, chosen with `--columns`.

A column turns the nodes of a row (one layer, or a collapsed block) into a cell,
and the whole analysis into its footer. Add a column by appending to COLUMNS.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from archcalc.passes.analysis import Analysis
from archcalc.report.numbers import count, percent
from archcalc.tensor import format_shape


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    cell: Callable[[Analysis, Sequence[int]], str]
    footer: Callable[[Analysis], str]
    justify: str = "right"
    default: bool = True
    help: str = ""


def _params(a: Analysis, ids: Sequence[int]) -> str:
    return count(sum(a.counts[i].params for i in ids))


def _share(a: Analysis, ids: Sequence[int]) -> str:
    params = sum(a.counts[i].params for i in ids)
    return percent(params, a.totals.params) if params else ""


COLUMNS: list[Column] = [
    Column("type", "type", lambda a, ids: a.graph.node(ids[-1]).type if len(ids) == 1 else "block",
           lambda a: "", "left", help="layer type"),
    Column("shape", "output", lambda a, ids: format_shape(a.graph.node(ids[-1]).shape),
           lambda a: format_shape(a.graph.output.shape), "left", help="output shape, channels first"),
    Column("params", "params", _params, lambda a: f"{a.totals.params:,}", help="learnable parameters"),
    Column("weights", "weights", lambda a, ids: count(sum(a.counts[i].weights for i in ids)),
           lambda a: f"{a.totals.counts.weights:,}", default=False, help="weights only"),
    Column("biases", "biases", lambda a, ids: count(sum(a.counts[i].biases for i in ids)),
           lambda a: f"{a.totals.counts.biases:,}", default=False, help="biases only"),
    Column("buffers", "buffers", lambda a, ids: count(sum(a.counts[i].buffers for i in ids)),
           lambda a: f"{a.totals.counts.buffers:,}", default=False, help="non-learnable buffers"),
    Column("macs", "MACs", lambda a, ids: count(sum(a.macs[i] for i in ids)),
           lambda a: f"{a.totals.macs:,}", help="multiply-accumulates"),
    Column("flops", "FLOPs", lambda a, ids: count(sum(a.flops(i) for i in ids)),
           lambda a: f"{a.totals.flops:,}", default=False, help="2 × MACs"),
    Column("other", "other ops", lambda a, ids: count(sum(a.other_ops[i].total for i in ids)),
           lambda a: f"{a.totals.other_ops.total:,}", default=False,
           help="non-MAC operations (bias adds, activations, pooling, norms, merges)"),
    Column("share", "% params", _share, lambda a: "100.00%", help="share of all parameters"),
    Column("rf", "RF", lambda a, ids: _rf(a, ids, "size"), lambda a: "", default=False,
           help="receptive field size per axis (H×W), or 'global'"),
    Column("jump", "jump", lambda a, ids: _rf(a, ids, "jump"), lambda a: "", default=False,
           help="receptive-field jump: input pixels between adjacent output units"),
    Column("start", "RF start", lambda a, ids: _rf(a, ids, "start"), lambda a: "", default=False,
           help="input coordinate of the first pixel unit 0 sees (negative: padding)"),
    Column("aligned", "aligned", lambda a, ids: _rf(a, ids, "aligned"), lambda a: "", "left", default=False,
           help="whether merged paths share one center ('no': see the JSON's 'why')"),
    Column("act_bytes", "act. bytes",
           lambda a, ids: count(sum(a.memory.nodes[i].activation_bytes for i in ids)),
           lambda a: f"{a.memory.activation_bytes:,}", default=False,
           help="output bytes (dtype × batch); the total is what training keeps"),
    Column("param_bytes", "param bytes",
           lambda a, ids: count(sum(a.memory.nodes[i].param_bytes for i in ids)),
           lambda a: f"{a.memory.param_bytes:,}", default=False, help="parameter bytes for the dtype"),
    Column("connections", "connections", lambda a, ids: count(sum(_connections(a, ids))),
           lambda a: f"{sum(_connections(a, [n.id for n in a.graph])):,}", default=False,
           help="each unit's inputs plus its bias, summed (LeCun et al. 1998's count)"),
    Column("fc-equivalent", "FC-equivalent", lambda a, ids: _fc_equivalent(a, ids),
           lambda a: _fc_equivalent(a, [n.id for n in a.graph]), default=False,
           help="parameters an FC mapping a conv's input to its output would need: in·out + out"),
    Column("sharing", "sharing", lambda a, ids: _sharing_factor(a, ids),
           lambda a: _sharing_factor(a, [n.id for n in a.graph]), default=False,
           help="FC-equivalent parameters / the conv's parameters (weight sharing's saving)"),
]


def _connections(a: Analysis, ids: Sequence[int]) -> list[int]:
    nodes = [a.graph.node(i) for i in ids]
    return [n.layer.connections(n.args, n.in_shapes, n.shape) for n in nodes]


def _shared(a: Analysis, ids: Sequence[int]) -> Any:
    from archcalc.passes import sharing

    convs = sharing.sharing(a.graph, a.counts)
    found = [convs[i] for i in ids if i in convs]
    return sharing.total(found) if found else None


def _fc_equivalent(a: Analysis, ids: Sequence[int]) -> str:
    s = _shared(a, ids)
    return f"{s.fc_equivalent_params:,}" if s else ""


def _sharing_factor(a: Analysis, ids: Sequence[int]) -> str:
    s = _shared(a, ids)
    return f"{s.factor:,.2f}×" if s and s.params else ""


def _rf(a: Analysis, ids: Sequence[int], what: str) -> str:
    """One receptive-field figure of a row's last node: sizes joined by ×, starts by commas."""
    from archcalc.passes.receptive_field import RF

    field = a.rf[ids[-1]]
    if not isinstance(field, RF):
        return "global" if what == "size" else ""
    if field.rank == 0:
        return "–"
    if what == "aligned":
        return "yes" if field.aligned else "no"
    values = getattr(field, what)
    return ",".join(map(str, values)) if what == "start" else "×".join(map(str, values))


def by_key() -> dict[str, Column]:
    return {c.key: c for c in COLUMNS}


def select(keys: str | None) -> list[Column]:
    """Columns named in a comma list ('params,macs'), or the defaults; 'all' for every one."""
    if keys is None:
        return [c for c in COLUMNS if c.default]
    if keys.strip() == "all":
        return list(COLUMNS)
    known = by_key()
    chosen = []
    for key in (k.strip() for k in keys.split(",") if k.strip()):
        if key not in known:
            from archcalc.errors import UsageError

            raise UsageError(f"unknown column '{key}'; choose from {', '.join(known)} (or 'all')")
        chosen.append(known[key])
    return chosen
