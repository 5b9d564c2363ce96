"""The columns a report can show: one record each, chosen with `--columns`.

A column shows one figure (`passes.figures`) of a row's nodes — one layer, or the layers
of a collapsed block — and of the whole network in its footer; it only formats. Add a
column by appending to COLUMNS (and, for a new number, a figure to the registry).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from functools import lru_cache
from typing import Any

from archcalc.passes import figures
from archcalc.passes.analysis import Analysis
from archcalc.passes.receptive_field import coordinate
from archcalc.records import record
from archcalc.report.numbers import count, percent
from archcalc.tensor import format_shape


@record
class Column:
    key: str
    title: str
    figure: str | None  # the figure it shows; None for the layer type
    text: Callable[[Any], str]  # a figure's value as the cell shows it
    justify: str = "right"
    default: bool = True
    foot: Callable[[Any], str] | None = None  # the network's figure in the footer; None: no footer

    @property
    def help(self) -> str:
        return figures.FIGURES[self.figure].doc if self.figure else "layer type"

    def cell(self, analysis: Analysis, ids: Sequence[int]) -> str:
        if self.figure is None:
            return analysis.graph.node(ids[-1]).type if len(ids) == 1 else "block"
        return self.text(figures.FIGURES[self.figure].group(analysis, ids))  # figures.value

    def footer(self, analysis: Analysis) -> str:
        if self.figure is None or self.foot is None:
            return ""
        value = figures.total(analysis, self.figure)
        return "" if value is None else self.foot(value)


def _exact(value: int) -> str:
    return f"{value:,}"


def _count(value: int | None) -> str:
    return "" if value is None else count(value)


def _share(value: Fraction) -> str:
    return _percent_text(value.numerator, value.denominator) if value else ""


@lru_cache(maxsize=4096, typed=True)
def _percent_text(numerator: int, denominator: int) -> str:
    """A share as '12.34%', once per fraction (a Fraction's terms are ints: equal keys, equal shares);
    exact, through Decimal, so it is worth keeping for the next layer of the same size."""
    return percent(numerator, denominator)


def _factor(value: float | None) -> str:
    return f"{value:,.2f}×" if value else ""


def _axes(joiner: str) -> Callable[[Any], str]:
    """An RF tuple joined ('212×212', '-90,-90'); 'global' as it is; '–' without position axes."""
    def text(value: Any) -> str:
        if isinstance(value, str):
            return value
        if value is None:
            return ""
        return joiner.join(map(coordinate, value)) if value else "–"
    return text


def _aligned(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")


COLUMNS: list[Column] = [
    Column("type", "type", None, str, "left"),
    Column("shape", "output", "shape", format_shape, "left", foot=format_shape),
    Column("params", "params", "params", count, foot=_exact),
    Column("weights", "weights", "weights", count, default=False, foot=_exact),
    Column("biases", "biases", "biases", count, default=False, foot=_exact),
    Column("buffers", "buffers", "buffers", count, default=False, foot=_exact),
    Column("macs", "MACs", "macs", count, foot=_exact),
    Column("flops", "FLOPs", "flops", count, default=False, foot=_exact),
    Column("other", "other ops", "other_ops", count, default=False, foot=_exact),
    Column("share", "% params", "share", _share, foot=_share),
    Column("rf", "RF", "rf", _axes("×"), default=False),
    Column("jump", "jump", "jump", _axes("×"), default=False),
    Column("start", "RF start", "start", _axes(","), default=False),
    Column("aligned", "aligned", "aligned", _aligned, "left", default=False),
    Column("act_bytes", "act. bytes", "act_bytes", count, default=False, foot=_exact),
    Column("param_bytes", "param bytes", "param_bytes", count, default=False, foot=_exact),
    Column("connections", "connections", "connections", count, default=False, foot=_exact),
    Column("fc-equivalent", "FC-equivalent", "fc_equivalent", _count, default=False, foot=_count),
    Column("sharing", "sharing", "sharing", _factor, default=False, foot=_factor),
    Column("t2_macs", "T² MACs", "quadratic_macs", count, default=False, foot=_exact),
    Column("causal_macs", "causal MACs", "causal_macs", count, default=False, foot=_exact),
    Column("kv_cache", "KV cache", "kv_cache", count, default=False, foot=_exact),
    Column("kv_bytes", "KV bytes", "kv_cache_bytes", count, default=False, foot=_exact),
    Column("counted", "counted", "counted", count, default=False, foot=_exact),
    Column("fwd", "forward FLOPs", "train_forward", count, default=False, foot=_exact),
    Column("grad-in", "∂input FLOPs", "train_grad_input", count, default=False, foot=_exact),
    Column("grad-w", "∂weight FLOPs", "train_grad_weight", count, default=False, foot=_exact),
    Column("train", "step FLOPs", "train_step", count, default=False, foot=_exact),
    Column("fcm-bwd", "FlopCounterMode ∂", "flop_counter_backward", count, default=False, foot=_exact),
    Column("kept", "kept bytes", "kept_bytes", count, default=False, foot=_exact),
    Column("state", "weights+∂+state bytes", "train_state_bytes", count, default=False, foot=_exact),
]


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
