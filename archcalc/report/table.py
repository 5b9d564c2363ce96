"""The table report of `archcalc report`: the layer table, the summary, the totals by kind."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from archcalc.passes.analysis import Analysis
from archcalc.records import record
from archcalc.report import plain_table as plain
from archcalc.report.columns import Column, select
from archcalc.report.numbers import binary_bytes, exact_bytes, metric, percent
from archcalc.report.plain_table import HEADING, IMPLICIT, LAYER, PLAIN_ROWS
from archcalc.report.rows import Row, rows
from archcalc.report.rows import only as filter_rows
from archcalc.tensor import format_shape

if TYPE_CHECKING:  # rich is imported where it draws: a report to a pipe or a file never loads it
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

LABEL_WIDTH = 60


def layer_table(analysis: Analysis, depth: int | None = None, columns: Sequence[Column] | None = None,
                only: str | None = None) -> LayerTable:
    g = analysis.graph
    cols = list(columns) if columns is not None else select(None)
    body = filter_rows(analysis, rows(analysis, depth), only)
    footer = ["", "total", *(c.footer(analysis) for c in cols)]
    heads = [("#", "right"), ("layer", "left"), *((c.title, c.justify) for c in cols)]
    return LayerTable(f"{g.name}  ({inputs_text(analysis)})", tuple(heads), [_cells(analysis, r, cols) for r in body],
                      [HEADING if r.heading else IMPLICIT if r.implicit else LAYER for r in body], tuple(footer))


@record
class LayerTable:
    """The layer table's cells (labels as written, not escaped), drawn by `plain_table` where it
    writes rich's bytes (`text_for`) and by rich elsewhere (`__rich__`: in a group, in Jupyter,
    on a terminal narrower than the table)."""

    title: str
    heads: tuple[tuple[str, str], ...]  # (title, justify) per column
    cells: list[list[str]]
    kinds: list[str]  # HEADING, IMPLICIT or LAYER per row
    footer: tuple[str, ...]

    def text(self, styles: plain.Styles = plain.NO_STYLES) -> str:
        return plain.draw(self.title, self.heads, self.cells, self.kinds, self.footer, 1, LABEL_WIDTH, styles)

    def text_for(self, console: Console) -> str | None:
        """What `console` would print for the table (without the final newline), or None where
        only rich can draw it exactly."""
        if console.is_jupyter or console.legacy_windows or console.options.ascii_only:  # ascii: rich's ASCII box
            return None
        huge = len(self.cells) > PLAIN_ROWS  # rich would take minutes: plain text, whatever it holds
        if not huge and not plain.usual(self.title, self.heads, self.cells, self.kinds, self.footer, 1):
            return None
        if not console.is_terminal:  # printed as wide as it needs (cli.show)
            return self.text()
        widths = plain.column_widths(self.heads, self.cells, self.footer, 1, LABEL_WIDTH)
        if sum(widths) + 3 * len(widths) + 1 > console.width:
            return self.text() if huge else None  # rich shrinks the columns to the terminal
        return self.text(plain.console_styles(console))

    def plain_text(self) -> str | None:
        """What a console that is not a terminal would print (`text_for`), known without one:
        `cli.show` asks only where it has found the output is a UTF-8 pipe or file."""
        if len(self.cells) > PLAIN_ROWS or plain.usual(self.title, self.heads, self.cells, self.kinds, self.footer, 1):
            return self.text()
        return None

    def __rich__(self) -> Table | Text:
        from rich.text import Text

        if len(self.cells) > PLAIN_ROWS:  # rich lays out every row itself: too slow for a huge network
            return Text(self.text())
        return self.rich()

    def rich(self) -> Table:
        """The table as rich draws it (the reference the plain drawing is held to)."""
        from rich.markup import escape
        from rich.table import Table
        from rich.text import Text

        table = Table(title=self.title, show_footer=True, header_style="bold", footer_style="bold")
        for i, (title, justify) in enumerate(self.heads):
            # every column but the label keeps its full width: numbers are never cut;
            # a long label (a connection table) folds onto more lines instead
            widest = max([len(title), len(self.footer[i])] + [len(c[i]) for c in self.cells])
            label = i == 1
            table.add_column(title, justify=justify, footer=self.footer[i], no_wrap=not label,  # type: ignore[arg-type]
                             min_width=None if label else widest, max_width=LABEL_WIDTH if label else None,
                             overflow="fold")
        for c, kind in zip(self.cells, self.kinds):
            if kind == HEADING:
                table.add_row("", Text(c[1], style="bold cyan"), *c[2:])
            else:
                table.add_row(c[0], escape(c[1]), *c[2:], style="dim" if kind == IMPLICIT else "")
        return table


def inputs_text(analysis: Analysis) -> str:
    """'input 3×224×224', or 'inputs left 1×105×105, right 1×105×105'."""
    nodes = analysis.graph.input_nodes()
    if len(nodes) == 1:
        return f"input {format_shape(nodes[0].shape)}"
    return "inputs " + ", ".join(f"{n.args['name']} {format_shape(n.shape)}" for n in nodes)


def _cells(analysis: Analysis, r: Row, cols: Sequence[Column]) -> list[str]:
    """One row's cells, the label as written."""
    indent = "  " * r.level
    if r.heading:
        return ["", f"{indent}▸ {r.label}", *("" for _ in cols)]
    label = f"{indent}({r.label})" if r.implicit else f"{indent}{r.label}"
    ids = r.ids
    return [r.index, label, *[c.cell(analysis, ids) for c in cols]]


@record
class Styled:
    """Text as (text, style) pieces, the style a rich style name ('' for none): printed as it is
    where nothing styles it (a pipe, a file: `plain_text`, no rich needed), and as a rich Text
    elsewhere (on a terminal rich styles it and word-wraps a long line at the terminal's width)."""

    pieces: tuple[tuple[str, str], ...]

    def plain_text(self) -> str | None:
        """What rich prints for the text (without the final newline) on a console that is not a
        terminal, which `cli.show` makes as wide as the text's longest line; None where rich
        would print something else: a control character or a tab (rich strips or expands them),
        a line over the widest console `cli.show` makes (rich wraps it)."""
        text = "".join(piece for piece, _ in self.pieces)
        if _CONTROL.search(text):
            return None
        # a character takes at most two cells: a line under half the width needs no measuring
        if any(2 * len(line) > plain.WIDEST and plain.cells(line) > plain.WIDEST for line in text.split("\n")):
            return None
        return text

    def __rich__(self) -> Text:
        from rich.text import Text

        text = Text()
        for piece, style in self.pieces:
            text.append(piece, style=style)
        return text


_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")  # all but the newline


def summary(analysis: Analysis) -> Styled:
    t = analysis.totals
    o = t.other_ops
    pieces: list[tuple[str, str]] = []

    def add(text: str, style: str = "") -> None:
        pieces.append((text, style))

    add(f"parameters {t.params:,} ({metric(t.params)})", "bold")
    add(f" = weights {t.counts.weights:,} + biases {t.counts.biases:,}; buffers {t.counts.buffers:,}")
    if t.reused:
        add(f"; shared and tied weights counted once ({t.params_if_unshared:,} if every use counted "
            f"its own, as per-call tools report)")
    if t.counts.frozen:
        add(f"; trainable {t.counts.trainable:,}, frozen {t.counts.frozen:,}")
    add("\n")
    add(f"MACs {t.macs:,} ({metric(t.macs)}){analysis.excluding()}", "bold")
    add(f"; FLOPs {t.flops:,} ({metric(t.flops)}) = 2 × MACs, as FlopCounterMode counts\n")
    add(f"other ops {o.total:,} (adds {o.adds:,}, multiplies {o.multiplies:,}, divisions {o.divisions:,}, "
        f"comparisons {o.comparisons:,}, exponentials {o.exponentials:,})\n")
    if analysis.batch > 1:
        add(f"per batch of {analysis.batch} (the figures above are per sample): MACs "
            f"{t.macs * analysis.batch:,}, FLOPs {t.flops * analysis.batch:,}\n")
    add(attention_lines(analysis))
    add(f"depth {analysis.graph.depth()} weighted layers; {len(analysis.graph) - 1} nodes")
    add(rf_line(analysis))
    add(memory_lines(analysis))
    add(kv_cache_line(analysis))
    from archcalc.report.conventions import summary_lines as counted_lines

    for line in counted_lines(analysis):  # under --convention: the tool's figure and what it cannot see
        add("\n" + line, "cyan" if not line.startswith("  ") else "yellow")
    return Styled(tuple(pieces))


def attention_lines(analysis: Analysis) -> str:
    """The T² part of the MACs and the causal-aware figure, where the network has attention."""
    a, macs = analysis.attention, analysis.totals.macs
    quadratic, causal = a.total_quadratic_macs, a.total_causal_macs
    if not quadratic:
        return ""
    lines = (f"attention: Q·Kᵀ and A·V {quadratic:,} MACs ({percent(quadratic, macs)}), which grow with T²; "
             f"the other {macs - quadratic:,} grow with T\n")
    if causal != macs:
        lines += (f"causal-aware MACs {causal:,} ({metric(causal)}): only the lower triangle of the masked Q·Kᵀ "
                  f"and A·V, T·(T + 1)/2 pairs per head; the MACs and FLOPs above count the full T×T, as "
                  f"FlopCounterMode does\n")
    return lines


def kv_cache_line(analysis: Analysis) -> str:
    """A decoder's KV cache at the batch, length and dtype of the analysis."""
    a, o = analysis.attention, analysis.memory.options
    cached = a.cached()
    if not cached:
        return ""
    sizes = {a.kv_cache[i] for i in cached}
    each = (f"{len(cached)} layers × {sizes.pop():,} elements" if len(sizes) == 1 else
            " + ".join(f"{a.kv_cache[i]:,}" for i in cached) + " elements")
    return (f"\nKV cache ({o.dtype}, batch {o.batch}): {each} per sample = {a.total_kv_cache:,} elements, "
            f"{exact_bytes(a.total_kv_cache_bytes)}")


def rf_line(analysis: Analysis) -> str:
    from archcalc.passes.receptive_field import RF, coordinate

    node = analysis.final_rf
    if node is None:
        return ""
    f = analysis.rf[node]
    assert isinstance(f, RF)
    n = analysis.graph.node(node)
    aligned = "" if f.aligned else f"; not aligned: {f.why}"
    return (f"\nreceptive field {'×'.join(map(str, f.size))} (jump {'×'.join(map(coordinate, f.jump))}, "
            f"start {','.join(map(str, f.start))}) at layer {node} {n.text}, "
            f"the last before it goes global{aligned}")


def memory_lines(analysis: Analysis) -> str:
    m = analysis.memory
    o = m.options
    b = binary_bytes
    peak = analysis.graph.node(m.peak_at)
    state = {"sgd": "no optimizer state", "momentum": f"momentum {b(m.optimizer_bytes)} (1×)",
             "adam": f"Adam state {b(m.optimizer_bytes)} (2×)",
             "adamw": f"AdamW state {b(m.optimizer_bytes)} (2×)"}[o.optimizer]
    return (
        f"\nmemory ({o.dtype}, batch {o.batch}): parameters {exact_bytes(m.param_bytes)}, "
        f"buffers {b(m.buffer_bytes)}; inference activation peak {exact_bytes(m.inference_peak_bytes)} "
        f"at layer {m.peak_at} {peak.text}"
        f"\ntraining ({o.optimizer}, batch {o.batch}): parameters {b(m.param_bytes)} + gradients "
        f"{b(m.gradient_bytes)} + {state} + buffers {b(m.buffer_bytes)} + every output kept "
        f"{b(m.activation_bytes)} = {exact_bytes(m.training_bytes)}"
    )


KIND_ORDER = ("conv", "fc", "attention", "mlp", "embedding", "norm", "activation", "pool", "merge", "other")


KIND_HEADS = (("kind", "left"), ("params", "right"), ("% params", "right"), ("MACs", "right"),
              ("% MACs", "right"), ("activations", "right"), ("% activations", "right"))


def kind_table(analysis: Analysis) -> KindTable:
    """Where the weights, the work and the activations sit, by kind of layer."""
    kinds = sorted(analysis.kinds,
                   key=lambda k: KIND_ORDER.index(k.kind) if k.kind in KIND_ORDER else len(KIND_ORDER))
    t = analysis.totals
    acts = sum(k.activations for k in kinds)
    return KindTable([[k.kind, f"{k.params:,}", percent(k.params, t.params), f"{k.macs:,}", percent(k.macs, t.macs),
                       f"{k.activations:,}", percent(k.activations, acts)] for k in kinds])


@record
class KindTable:
    """The totals by kind of layer: drawn by `plain_table` to a pipe or a file (`plain_text`),
    by rich elsewhere (a terminal's styles and width)."""

    cells: list[list[str]]

    TITLE = "by kind of layer"

    def plain_text(self) -> str | None:
        """What rich prints for the table on a console that is not a terminal, or None where its
        cells hold what rich would read differently (markup, emoji codes, control characters,
        whitespace at an end)."""
        strings = [s for row in self.cells for s in row]
        if any(_UNUSUAL.search(s) or s != s.strip() for s in strings):
            return None
        empty = ("",) * len(KIND_HEADS)
        return plain.draw(self.TITLE, KIND_HEADS, self.cells, [LAYER] * len(self.cells), empty, 0, plain.WIDEST,
                          title_justify="left", show_footer=False)

    def __rich__(self) -> Table:
        from rich.table import Table

        table = Table(title=self.TITLE, header_style="bold", title_justify="left")
        for title, justify in KIND_HEADS:
            table.add_column(title, justify=justify, no_wrap=True)  # type: ignore[arg-type]
        for row in self.cells:
            table.add_row(*row)
        return table


_UNUSUAL = re.compile(r"[\[:\x00-\x1f\x7f-\x9f]")  # markup, an emoji code, a control character


def warnings_text(analysis: Analysis) -> Styled:
    """One line per kind of warning (report/notes.py): eight floored divisions are one line (×8)."""
    from archcalc.report.notes import lines

    return Styled(tuple((f"\nwarning: {line}", "yellow") for line in lines(analysis)))


def full_report(analysis: Analysis, depth: int | None = None, columns: Sequence[Column] | None = None,
                quiet: bool = False, only: str | None = None) -> list[Any]:
    """The table, the summary, the totals by kind and (unless `quiet`) the warnings, in order:
    each drawn as text by `cli.show` where it can be (`plain_text`, `text_for`), by rich elsewhere."""
    parts: list[Any] = [layer_table(analysis, depth, columns, only), summary(analysis), kind_table(analysis)]
    return parts if quiet else [*parts, warnings_text(analysis)]
