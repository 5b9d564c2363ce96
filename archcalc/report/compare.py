"""Networks side by side, one row each, as the VGG paper's Table 2 compares configurations A–E."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict

from archcalc.passes import figures
from archcalc.passes.analysis import Analysis
from archcalc.records import record
from archcalc.report.numbers import binary_bytes, metric, percent
from archcalc.tensor import format_shape


@record
class Row:
    name: str
    input: tuple[int, ...]
    output: tuple[int, ...]
    params: int
    macs: int
    flops: int
    param_bytes: int  # for the analysis's dtype (float32 by default, what `compare` uses)
    depth: int  # weighted layers on the longest path
    fc_params: int
    rf: tuple[int, ...] | str | None  # of the last spatial layer; 'global' if none; None without position axes
    counted: tuple[tuple[str, int, str], ...] = ()  # (convention, total, unit) for each --convention asked

    @property
    def fc_share(self) -> float:
        return self.fc_params / self.params if self.params else 0.0


def row(analysis: Analysis, conventions: Sequence[str] = ()) -> Row:
    """One network's row; `conventions` adds each one's total (passes/conventions.py)."""
    g, t = analysis.graph, analysis.totals
    fc = sum(k.params for k in analysis.kinds if k.kind == "fc")
    counted = tuple((name, analysis.conventions[name].total, analysis.conventions[name].unit) for name in conventions)
    return Row(g.name, g.input.shape, g.output.shape, t.params, t.macs, t.flops, analysis.memory.param_bytes,
               g.depth(), fc, _last_spatial_rf(analysis), counted)


def _last_spatial_rf(analysis: Analysis) -> tuple[int, ...] | str | None:
    """The RF of the last spatial layer before the field turns global (VGG's pool5, ResNet's last
    ReLU before its global pool); 'global' when every spatial layer sees everything."""
    if analysis.final_rf is not None:
        size: tuple[int, ...] = figures.FIGURES["rf"].of(analysis, analysis.final_rf)
        return size
    spatial = [n for n in analysis.graph if len(n.shape) > 1 and n.type != "input"]
    return "global" if spatial else None


def has_rf(rows: Sequence[Row]) -> bool:
    return any(r.rf is not None for r in rows)


# -- formats -------------------------------------------------------------------------------

_TITLES = ("network", "input", "params", "MACs", "FLOPs", "param memory (float32)", "depth", "output",
           "FC share of params")


def _cells(r: Row, rf: bool) -> list[str]:
    cells = [r.name, format_shape(r.input), _with_metric(r.params), _with_metric(r.macs), f"{r.flops:,}",
             binary_bytes(r.param_bytes, "MiB"), str(r.depth), format_shape(r.output),
             percent(r.fc_params, r.params)]
    if rf:
        cells.append("–" if r.rf is None else r.rf if isinstance(r.rf, str) else format_shape(r.rf))
    cells += [_with_metric(total) for _, total, _ in r.counted]
    return cells


def _with_metric(value: int) -> str:
    """'138,357,544 (138.4M)': exact, then as the paper's tables round it."""
    return f"{value:,} ({metric(value, 1, '')})"


def titles(rows: Sequence[Row]) -> list[str]:
    counted = [f"{unit} ({name})" for name, _, unit in rows[0].counted] if rows else []
    return [*_TITLES, *(["RF (last spatial layer)"] if has_rf(rows) else []), *counted]


def table_rows(rows: Sequence[Row]) -> list[list[str]]:
    rf = has_rf(rows)
    return [_cells(r, rf) for r in rows]


def to_markdown(rows: Sequence[Row]) -> str:
    heads = titles(rows)
    lines = ["| " + " | ".join(heads) + " |",
             "|" + "|".join("---" if i in (0, 1, 7) else "---:" for i in range(len(heads))) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(rows)]
    return "\n".join(lines) + "\n\nMACs are multiply-accumulates; FLOPs = 2 × MACs. " \
                              "Parameter memory is params × 4 bytes (float32); 1 MiB = 2^20 bytes.\n"


def to_json(rows: Sequence[Row]) -> str:
    data = []
    for r in rows:
        item = asdict(r)
        item |= {"input": list(r.input), "output": list(r.output), "fc_share": r.fc_share,
                 "rf": list(r.rf) if isinstance(r.rf, tuple) else r.rf,
                 "macs_convention": "pytorch", "flops_convention": "pytorch",
                 "counted": {name: {"total": total, "unit": unit} for name, total, unit in r.counted}}
        data.append(item)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
