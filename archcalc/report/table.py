"""The rich table of `archcalc report`."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group
from rich.table import Table
from rich.text import Text

from archcalc.analysis import Analysis
from archcalc.report.columns import Column, select
from archcalc.report.formats import fmt_shape, human
from archcalc.report.rows import Row, rows


def layer_table(analysis: Analysis, depth: int | None = None, columns: Sequence[Column] | None = None) -> Table:
    g = analysis.graph
    cols = list(columns) if columns is not None else select(None)
    body = rows(analysis, depth)
    cells = [_cells(analysis, r, cols) for r in body]
    footer = ["", "total", *(c.footer(analysis) for c in cols)]
    table = Table(title=f"{g.name}  (input {fmt_shape(g.input.shape)})", show_footer=True,
                  header_style="bold", footer_style="bold")
    heads = [("#", "right"), ("layer", "left"), *((c.title, c.justify) for c in cols)]
    for i, (title, justify) in enumerate(heads):
        # every column but the label keeps its full width: numbers are never cut
        widest = max([len(title), len(footer[i])] + [len(c[i]) for c in cells])
        table.add_column(title, justify=justify, footer=footer[i], no_wrap=True,  # type: ignore[arg-type]
                         min_width=None if i == 1 else widest)
    for r, c in zip(body, cells):
        if r.heading:
            table.add_row("", Text(c[1], style="bold cyan"), *c[2:])
        else:
            table.add_row(*c, style="dim" if r.implicit else "")
    return table


def _cells(analysis: Analysis, r: Row, cols: Sequence[Column]) -> list[str]:
    indent = "  " * r.level
    if r.heading:
        return ["", f"{indent}▸ {r.label}", *("" for _ in cols)]
    label = f"{indent}({r.label})" if r.implicit else f"{indent}{r.label}"
    return [r.index, label, *(c.cell(analysis, r.ids) for c in cols)]


def summary(analysis: Analysis) -> Text:
    t = analysis.totals
    o = t.other_ops
    text = Text()
    text.append(f"parameters {t.params:,} ({human(t.params)})", style="bold")
    text.append(f" = weights {t.counts.weights:,} + biases {t.counts.biases:,}; buffers {t.counts.buffers:,}\n")
    text.append(f"MACs {t.macs:,} ({human(t.macs)})", style="bold")
    text.append(f"; FLOPs {t.flops:,} ({human(t.flops)}) = 2 × MACs, as FlopCounterMode counts\n")
    text.append(f"other ops {o.total:,} (adds {o.adds:,}, multiplies {o.multiplies:,}, divisions {o.divisions:,}, "
                f"comparisons {o.comparisons:,}, exponentials {o.exponentials:,})\n")
    text.append(f"depth {analysis.graph.depth()} weighted layers; {len(analysis.graph) - 1} nodes")
    return text


def warnings_text(analysis: Analysis) -> Text:
    text = Text()
    for w in analysis.warnings:
        where = f"line {w.line}, " if w.line else ""
        text.append(f"\nwarning: {where}layer {w.layer}: {w.message}", style="yellow")
    return text


def full_report(analysis: Analysis, depth: int | None = None, columns: Sequence[Column] | None = None) -> Group:
    return Group(layer_table(analysis, depth, columns), summary(analysis), warnings_text(analysis))
