"""HTML: one self-contained report page (`report --format html`), and the notebook table.

The page needs no network to open: its style and script are inline, the diagram and the
receptive-field profile are inline SVG, and nothing is fetched. It holds the layer table
(sortable by any column, blocks collapsible), the totals and the kinds of layer, the diagram,
the receptive field with its path-count profile, the warnings, the conventions and the spec.
Every number is read from the Analysis; nothing is computed here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from html import escape
from typing import Any

from archcalc.passes import figures
from archcalc.passes.analysis import Analysis
from archcalc.report.columns import Column, select
from archcalc.report.numbers import metric, percent
from archcalc.report.rows import Row, rows
from archcalc.report.rows import only as filter_rows
from archcalc.tensor import format_shape, prod
from archcalc.version import __version__


@dataclass(frozen=True)
class Extras:
    """What the page shows beside the figures: drawn by the caller, who has the tools for it."""

    spec_text: str | None = None
    diagram_svg: str | None = None  # Graphviz's SVG, or None
    diagram_note: str = ""  # at which depth it was drawn, or why there is none
    rf_svg: str | None = None  # the path-count profile of the last spatial layer
    rf_note: str = ""


def to_html(analysis: Analysis, depth: int | None = None, columns: Sequence[Column] | None = None,
            only: str | None = None, quiet: bool = False, extras: Extras = Extras(), training: bool = False) -> str:
    """The whole report as one HTML page (with `training`, the training step's lines too)."""
    from archcalc.report.formats import CONVENTIONS
    from archcalc.report.notes import lines

    g, t = analysis.graph, analysis.totals
    cols = list(columns) if columns is not None else select(None)
    title = f"{g.name}: archcalc report"
    sections = [
        ("layers", "Layers", _layer_table(analysis, filter_rows(analysis, rows(analysis, depth), only), cols,
                                          interactive=True)
         + '<p class="hint">Click a column title to sort (again: descending, a third time: back to the '
           'network\'s order); click a block\'s row to fold it. '
           '<button type="button" id="fold-all">fold all</button> '
           '<button type="button" id="unfold-all">unfold all</button></p>'),
        ("totals", "Totals", _totals(analysis) + _kinds(analysis)),
    ]
    if training:
        from archcalc.report.training import summary_lines

        sections.append(("training", "Training step", '<ul class="training">' + "".join(
            f"<li>{escape(line)}</li>" for line in summary_lines(analysis)) + "</ul>"))
    sections += [
        ("diagram", "Diagram", _figure(extras.diagram_svg, extras.diagram_note)),
        ("rf", "Receptive field", f"<p>{escape(_rf_line(analysis))}</p>" + _figure(extras.rf_svg, extras.rf_note)),
    ]
    if not quiet:
        items = "".join(f"<li>{escape(line)}</li>" for line in lines(analysis)) or "<li>none</li>"
        sections.append(("warnings", f"Warnings ({len(analysis.warnings)})", f'<ul class="warnings">{items}</ul>'))
    sections.append(("conventions", "Conventions", "<dl>" + "".join(
        f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in CONVENTIONS.items()) + "</dl>"))
    if extras.spec_text is not None:
        sections.append(("spec", "Spec", f"<pre class=\"spec\">{escape(extras.spec_text)}</pre>"))
    nav = " · ".join(f'<a href="#{key}">{escape(head.split(" (")[0])}</a>' for key, head, _ in sections)
    body = "\n".join(f'<section id="{key}"><h2>{escape(head)}</h2>\n{html}</section>' for key, head, html in sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="archcalc {escape(__version__)}">
<title>{escape(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>{escape(g.name)}</h1>
<p class="headline">{escape(_headline(analysis))}</p>
<nav>{nav}</nav>
</header>
{body}
<footer>written by archcalc {escape(__version__)}; parameters {t.params:,} = sum(p.numel() for p in
model.parameters()); FLOPs = 2 × MACs, as torch.utils.flop_counter.FlopCounterMode counts.</footer>
<script>{_JS}</script>
</body>
</html>
"""


def notebook_html(analysis: Analysis) -> str:
    """The notebook view of an Analysis: a headline and the layer table (no script: notebooks
    strip it), in a box that scrolls."""
    table = _layer_table(analysis, rows(analysis), select(None), interactive=False)
    return (f'<div class="archcalc"><style>{_NOTEBOOK_CSS}</style>'
            f"<p><b>{escape(analysis.graph.name)}</b>: {escape(_headline(analysis))}</p>"
            f'<div style="max-height:32em;overflow:auto">{table}</div>'
            f"<p>{escape(_totals_line(analysis))}</p>"
            + "".join(f"<p><b>{escape(key)}</b>: {escape(line)}</p>" for key, line in summary_extras(analysis))
            + "</div>")


# -- pieces --------------------------------------------------------------------------------------


def _headline(analysis: Analysis) -> str:
    from archcalc.report.table import inputs_text

    g, t = analysis.graph, analysis.totals
    return (f"{inputs_text(analysis)} → {format_shape(g.output.shape)}; {t.params:,} parameters "
            f"({metric(t.params)}), {t.macs:,} MACs ({metric(t.macs)}), {t.flops:,} FLOPs; "
            f"{len(g) - 1} layers, depth {g.depth()}")


def _totals_line(analysis: Analysis) -> str:
    t = analysis.totals
    return (f"parameters {t.params:,} = weights {t.counts.weights:,} + biases {t.counts.biases:,}; "
            f"buffers {t.counts.buffers:,}; MACs {t.macs:,}; FLOPs {t.flops:,} = 2 × MACs; "
            f"{len(analysis.warnings)} warnings")


def _layer_table(analysis: Analysis, body: list[Row], cols: Sequence[Column], interactive: bool) -> str:
    heads = "".join(f'<th class="{_align(c)}" title="{escape(c.help)}">{escape(c.title)}</th>' for c in cols)
    out = [f'<table class="layers" id="{"layer-table" if interactive else ""}"><thead><tr><th class="num">#</th>'
           f"<th>layer</th>{heads}</tr></thead><tbody>"]
    open_headings: list[tuple[int, str]] = []  # (level, id) of the headings above the row
    for k, r in enumerate(body):
        while open_headings and open_headings[-1][0] >= r.level:
            open_headings.pop()
        parents = " ".join(h for _, h in open_headings)
        pad = f' style="padding-left:{0.3 + 1.2 * r.level:.1f}em"'
        if r.heading:
            hid = f"h{k}"
            out.append(f'<tr class="heading" id="{hid}" data-parents="{parents}"><td></td>'
                       f'<td{pad} colspan="{len(cols) + 1}">▾ {escape(r.label)}</td></tr>')
            open_headings.append((r.level, hid))
            continue
        cells = "".join(f'<td class="{_align(c)}" data-v="{_sort_value(analysis, c, r.ids)}">'
                        f"{escape(c.cell(analysis, r.ids))}</td>" for c in cols)
        kind = " implicit" if r.implicit else ""
        out.append(f'<tr class="layer{kind}" data-parents="{parents}" data-order="{k}">'
                   f'<td class="num" data-v="{r.ids[0]}">{escape(r.index)}</td>'
                   f"<td{pad}>{escape(r.label)}</td>{cells}</tr>")
    foot = "".join(f'<td class="{_align(c)}">{escape(c.footer(analysis))}</td>' for c in cols)
    out.append(f"</tbody><tfoot><tr><td></td><td>total</td>{foot}</tr></tfoot></table>")
    return "\n".join(out)


def _align(c: Column) -> str:
    return "num" if c.justify == "right" else "text"


def _sort_value(analysis: Analysis, c: Column, ids: Sequence[int]) -> str:
    """A number to sort a cell by: counts as they are, shapes by their elements, 'global' last."""
    if c.figure is None:
        return escape(c.cell(analysis, ids))
    value: Any = figures.value(analysis, c.figure, ids)
    if isinstance(value, bool) or value is None:
        return str(int(bool(value)))
    if isinstance(value, (int, float, Fraction)):
        return f"{float(value):.17g}"
    if isinstance(value, tuple):
        return str(prod(value)) if all(isinstance(v, int) for v in value) else "0"
    return "1e300"  # 'global', 'unknown'


def _totals(analysis: Analysis) -> str:
    t, m = analysis.totals, analysis.memory
    items = [
        ("parameters", f"{t.params:,} ({metric(t.params)}) = weights {t.counts.weights:,} + biases "
                       f"{t.counts.biases:,}"),
        ("buffers", f"{t.counts.buffers:,}"),
        ("MACs", f"{t.macs:,} ({metric(t.macs)})"),
        ("FLOPs", f"{t.flops:,} ({metric(t.flops)}) = 2 × MACs"),
        ("other ops", f"{t.other_ops.total:,}"),
        ("depth", f"{analysis.graph.depth()} weighted layers"),
        (f"memory ({m.options.dtype}, batch {m.options.batch})",
         f"parameters {m.param_bytes:,} B; inference activation peak {m.inference_peak_bytes:,} B; "
         f"training ({m.options.optimizer}) {m.training_bytes:,} B"),
    ]
    if t.reused:
        items.insert(1, ("if every use counted its own", f"{t.params_if_unshared:,}"))
    items += summary_extras(analysis)
    return '<dl class="totals">' + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in items) + "</dl>"


def summary_extras(analysis: Analysis) -> list[tuple[str, str]]:
    """The summary lines only some networks have, as the table report words them: the batch, the
    attention's T² part and causal-aware MACs, the KV cache, and the --convention's figure."""
    from archcalc.report.conventions import summary_lines as counted_lines
    from archcalc.report.table import attention_lines, kv_cache_line

    t, items = analysis.totals, []
    if analysis.batch > 1:
        items.append((f"per batch of {analysis.batch}", f"MACs {t.macs * analysis.batch:,}, "
                                                        f"FLOPs {t.flops * analysis.batch:,}"))
    items += [("attention", line.removeprefix("attention: ")) for line in attention_lines(analysis).splitlines()]
    if kv := kv_cache_line(analysis).strip():
        items.append(("KV cache", kv.removeprefix("KV cache ")))
    items += [("--convention", line.strip()) for line in counted_lines(analysis)]
    return items


def _kinds(analysis: Analysis) -> str:
    from archcalc.report.table import KIND_ORDER

    kinds = sorted(analysis.kinds,
                   key=lambda k: KIND_ORDER.index(k.kind) if k.kind in KIND_ORDER else len(KIND_ORDER))
    t = analysis.totals
    acts = sum(k.activations for k in kinds)
    head = "".join(f'<th class="{"text" if h == "kind" else "num"}">{h}</th>' for h in
                   ("kind", "params", "% params", "MACs", "% MACs", "activations", "% activations"))
    body = "".join(
        f'<tr><td>{escape(k.kind)}</td><td class="num">{k.params:,}</td><td class="num">{percent(k.params, t.params)}'
        f'</td><td class="num">{k.macs:,}</td><td class="num">{percent(k.macs, t.macs)}</td>'
        f'<td class="num">{k.activations:,}</td><td class="num">{percent(k.activations, acts)}</td></tr>'
        for k in kinds)
    return f'<h3>By kind of layer</h3><table class="kinds"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _rf_line(analysis: Analysis) -> str:
    from archcalc.report.table import rf_line

    return rf_line(analysis).strip() or "no spatial layer before the network goes global"


def _figure(svg: str | None, note: str) -> str:
    caption = f"<figcaption>{escape(note)}</figcaption>" if note else ""
    if svg is None:
        return f"<figure>{caption}</figure>" if note else ""
    return f'<figure class="svg">{inline_svg(svg)}{caption}</figure>'


def inline_svg(svg: str) -> str:
    """An SVG file's text made fit to sit in a page: no XML prolog or DOCTYPE, scaled to the width."""
    text = re.sub(r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>|<!--.*?-->", "", svg, flags=re.S).strip()
    return re.sub(r"<svg\b", '<svg style="max-width:100%;height:auto"', text, count=1)


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0 auto;max-width:1200px;
padding:0 1.2em 2em;color:#1d1d1f;background:#fff}
h1{margin:.6em 0 .1em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
.headline{color:#444;margin:.2em 0}nav a{color:#0b63c4;text-decoration:none}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:2px 8px;border-bottom:1px solid #eee;white-space:nowrap}
table.layers thead th{position:sticky;top:0;background:#f4f6f8;cursor:pointer;user-select:none}
th.sorted-up::after{content:" ▲"}th.sorted-down::after{content:" ▼"}
td.num,th.num{text-align:right}td.text,th.text{text-align:left}
tr.heading td{font-weight:600;color:#00707a;cursor:pointer;background:#fafcfc}
tr.heading.closed td:nth-child(2){color:#555}
tr.implicit td{color:#888}tfoot td{font-weight:600;border-top:2px solid #ccc}
.hint{color:#666;font-size:12px}dl.totals dt,section#conventions dt{font-weight:600}
dl.totals dd,section#conventions dd{margin:0 0 .4em 1.5em}
figure{margin:0}figure.svg{overflow:auto;border:1px solid #eee;padding:4px}
figcaption{color:#555;font-size:12px;margin-top:.3em}
pre.spec{background:#f6f8fa;padding:.8em;overflow:auto;font-size:12.5px}
ul.warnings li{color:#8a5a00}footer{margin-top:2em;color:#777;font-size:12px}
"""

_NOTEBOOK_CSS = """
.archcalc table{border-collapse:collapse;font-variant-numeric:tabular-nums}
.archcalc th,.archcalc td{padding:1px 6px;white-space:nowrap}
.archcalc td.num,.archcalc th.num{text-align:right}.archcalc td.text,.archcalc th.text{text-align:left}
.archcalc tr.heading td{font-weight:600}.archcalc tr.implicit td{opacity:.6}
"""

_JS = """
(function () {
  "use strict";
  var table = document.getElementById("layer-table");
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var heads = table.tHead.rows[0].cells;
  var sorted = -1, dir = 1;
  function closed() {
    var ids = {};
    rows.forEach(function (r) {
      if (r.classList.contains("heading") && r.classList.contains("closed")) ids[r.id] = 1;
    });
    return ids;
  }
  function refresh() {
    var shut = closed();
    rows.forEach(function (r) {
      var parents = (r.getAttribute("data-parents") || "").split(" ").filter(Boolean);
      var folded = sorted < 0 && parents.some(function (p) { return shut[p]; });
      r.hidden = folded || (sorted >= 0 && r.classList.contains("heading"));
    });
  }
  function order() {
    var list = rows.slice();
    if (sorted >= 0) {
      list = list.filter(function (r) { return r.classList.contains("layer"); });
      list.sort(function (a, b) {
        var x = a.cells[sorted].getAttribute("data-v"), y = b.cells[sorted].getAttribute("data-v");
        var nx = parseFloat(x), ny = parseFloat(y), c;
        if (!isNaN(nx) && !isNaN(ny)) c = nx - ny; else c = String(x).localeCompare(String(y));
        return c * dir || (+a.getAttribute("data-order") - +b.getAttribute("data-order"));
      });
    }
    list.forEach(function (r) { body.appendChild(r); });
    for (var i = 0; i < heads.length; i++) {
      heads[i].classList.toggle("sorted-up", i === sorted && dir === 1);
      heads[i].classList.toggle("sorted-down", i === sorted && dir === -1);
    }
    refresh();
  }
  Array.prototype.forEach.call(heads, function (th, i) {
    th.addEventListener("click", function () {
      if (sorted !== i) { sorted = i; dir = 1; } else if (dir === 1) { dir = -1; } else { sorted = -1; dir = 1; }
      order();
    });
  });
  rows.forEach(function (r) {
    if (!r.classList.contains("heading")) return;
    r.addEventListener("click", function () {
      r.classList.toggle("closed");
      r.cells[1].textContent = (r.classList.contains("closed") ? "▸" : "▾") + r.cells[1].textContent.slice(1);
      refresh();
    });
  });
  function all(shut) {
    rows.forEach(function (r) {
      if (!r.classList.contains("heading")) return;
      r.classList.toggle("closed", shut);
      r.cells[1].textContent = (shut ? "▸" : "▾") + r.cells[1].textContent.slice(1);
    });
    refresh();
  }
  document.getElementById("fold-all").addEventListener("click", function () { all(true); });
  document.getElementById("unfold-all").addEventListener("click", function () { all(false); });
  document.documentElement.setAttribute("data-ready", String(rows.length));
})();
"""
