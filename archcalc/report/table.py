"""The rich table of `archcalc report`."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from archcalc.analysis import Analysis
from archcalc.report.formats import fmt_shape, human
from archcalc.report.rows import Row, rows


def layer_table(analysis: Analysis, depth: int | None = None) -> Table:
    g, t = analysis.graph, analysis.totals
    body = rows(analysis, depth)
    table = Table(title=f"{g.name}  (input {fmt_shape(g.input.shape)})", show_footer=True,
                  header_style="bold", footer_style="bold")
    cells = [_cells(r) for r in body]
    footer = ["", "total", "", fmt_shape(g.output.shape), f"{t.params:,}", f"{t.macs:,}", "100.00%"]
    for i, (title, justify) in enumerate(_COLUMNS):
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


_COLUMNS = (("#", "right"), ("layer", "left"), ("type", "left"), ("output", "left"),
            ("params", "right"), ("MACs", "right"), ("% params", "right"))


def _cells(r: Row) -> list[str]:
    indent = "  " * r.level
    if r.heading:
        return ["", f"{indent}▸ {r.label}", "", "", "", "", ""]
    label = f"{indent}({r.label})" if r.implicit else f"{indent}{r.label}"
    return [r.index, label, r.type, fmt_shape(r.shape), f"{r.params:,}" if r.params else "–",
            f"{r.macs:,}" if r.macs else "–", f"{100 * r.share:.2f}%" if r.params else ""]


def summary(analysis: Analysis) -> Text:
    t = analysis.totals
    text = Text()
    text.append(f"parameters {t.params:,} ({human(t.params)})", style="bold")
    text.append(f" = weights {t.counts.weights:,} + biases {t.counts.biases:,}; buffers {t.counts.buffers:,}\n")
    text.append(f"MACs {t.macs:,} ({human(t.macs)})", style="bold")
    text.append(f"; FLOPs {t.flops:,} ({human(t.flops)}) = 2 × MACs, as FlopCounterMode counts\n")
    text.append(f"other ops {t.other_ops.total:,} (adds {t.other_ops.adds:,}, multiplies {t.other_ops.multiplies:,}, "
                f"divisions {t.other_ops.divisions:,}, comparisons {t.other_ops.comparisons:,}, "
                f"exponentials {t.other_ops.exponentials:,})\n")
    text.append(f"depth {analysis.graph.depth()} weighted layers; {len(analysis.graph) - 1} nodes")
    return text


def warnings_text(analysis: Analysis) -> Text:
    text = Text()
    for w in analysis.warnings:
        where = f"line {w.line}, " if w.line else ""
        text.append(f"warning: {where}layer {w.layer}: {w.message}\n", style="yellow")
    return text


def full_report(analysis: Analysis, depth: int | None = None) -> Group:
    return Group(layer_table(analysis, depth), summary(analysis), warnings_text(analysis))
