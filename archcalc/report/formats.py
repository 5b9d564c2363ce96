"""Report formats that are plain text: JSON (a stable interface), CSV and Markdown."""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from itertools import chain, islice, repeat
from operator import attrgetter
from typing import Any, TextIO

from archcalc.errors import Loc
from archcalc.layers import Counts, OtherOps
from archcalc.passes.analysis import Analysis
from archcalc.passes.counting import FLOPS_PER_MAC
from archcalc.passes.figures import FIGURES
from archcalc.passes.memory import NodeMemory
from archcalc.passes.sharing import Sharing
from archcalc.report import conventions as counting_views
from archcalc.report import training as training_views
from archcalc.report.json_lines import layer_pieces
from archcalc.report.numbers import plain
from archcalc.version import __version__

_CONVENTION_FIGURES = ("params", "buffers", "macs", "flops", "other_ops", "rf", "connections", "sharing")
CONVENTIONS = {
    **{key: FIGURES[key].doc for key in _CONVENTION_FIGURES},
    **{key: FIGURES[key].doc for key in ("quadratic_macs", "causal_macs", "kv_cache")},
    "per_sample": "every figure of a layer, and the totals' macs, flops, quadratic_macs and causal_macs, are per "
                  "sample; per_batch multiplies them by the batch (totals.batch); bytes are for the whole batch",
    "memory": "bytes = elements × bytes per element of the dtype; activation_bytes × batch; "
              "inference peak = activations alive at once in topological order (weights apart); "
              "training = params + buffers + gradients + optimizer state + every node's output × batch",
}


def to_dict(analysis: Analysis, layers: Any = None) -> dict[str, Any]:
    """The JSON document: every node with its inputs; integers stay integers. `layers`, if given,
    stands where the list of layers goes (to_json writes them one at a time)."""
    g, t = analysis.graph, analysis.totals
    return {
        "archcalc": __version__,
        "name": g.name,
        "input": list(g.input.shape),
        "inputs": [{"name": n.args["name"], "shape": list(n.shape), "layout": n.layout} for n in g.input_nodes()],
        "output": list(g.output.shape),
        "depth": g.depth(),
        "totals": {
            "params": t.params,
            "unique_params": t.params,
            "params_if_unshared": t.params_if_unshared,
            "trainable": t.counts.trainable,
            "non_trainable": t.counts.frozen,
            "weights": t.counts.weights,
            "biases": t.counts.biases,
            "buffers": t.counts.buffers,
            "macs": t.macs,
            "flops": t.flops,
            "other_ops": asdict(t.other_ops),
            "connections": t.connections,
            "sharing": _sharing_dict(t.sharing),
            "memory": _memory_totals(analysis),
            "unknown_ops": len(analysis.unknown_ops),  # work (macs, flops, other ops) excludes these nodes
            "quadratic_macs": analysis.attention.total_quadratic_macs,
            "causal_macs": analysis.attention.total_causal_macs,
            "batch": analysis.batch,
            "per_sample": _per(analysis, 1, elements := _activation_elements(analysis)),
            "per_batch": _per(analysis, analysis.batch, elements),
            "kv_cache": _kv_cache(analysis),
        },
        "receptive_field": _final_rf(analysis),
        "by_kind": [asdict(k) for k in analysis.kinds],
        "layers": list(_layers(analysis)) if layers is None else layers,
        "warnings": [asdict(w) for w in analysis.warnings],
        "conventions": CONVENTIONS,
        # which convention each figure is under: macs/flops are always FlopCounterMode's; `counted`
        # (per layer and in `convention`) is the one --convention chose; `training` per layer and in total
        "figures_under": {"macs": "pytorch", "flops": "pytorch", "counted": analysis.convention,
                          "training": "pytorch"},
        "convention": counting_views.to_dict(analysis),
        "training": training_views.to_dict(analysis, layers=False),
    }


def editor_column(analysis: Analysis, loc: Loc | None) -> int | None:
    """The parser counts a tab as 4 columns; JSON readers (editors, linters) count characters."""
    if loc is None:
        return None
    source = analysis.graph.source
    return source.editor_column(loc) if source is not None else loc.col


def _layers(analysis: Analysis, nodes: Any = None) -> Iterator[dict[str, Any]]:
    """Each layer's dict in turn (every node's, or those of `nodes`): the analysis's lookups are
    made once here, not once per layer. The definition of a layer's fields: the JSON document's
    lines are written by json_lines.layer_lines, held to this by tests/test_json_lines.py."""
    counts, macs, attention = analysis.counts, analysis.macs, analysis.attention
    quadratic, causal, kv = attention.quadratic_macs, attention.causal_macs, attention.kv_cache
    other_ops, connections, sharing, rfs = analysis.other_ops, analysis.connections, analysis.sharing, analysis.rf
    memory, uses = analysis.memory.nodes, analysis.uses
    counted = analysis.counted
    values, rules = counted.values, counted.rules
    step = analysis.step
    total = analysis.totals.params
    for n in analysis.graph if nodes is None else nodes:
        i = n.id
        c = counts[i]
        loc = n.loc
        yield {
            "id": i,
            "spec": n.text,
            "type": n.type,
            "line": loc.line if loc else None,
            "column": editor_column(analysis, loc),
            "inputs": list(n.inputs),
            "output_shape": list(n.shape),
            "params": c.params,
            "weights": c.weights,
            "biases": c.biases,
            "buffers": c.buffers,
            "macs": macs[i],
            "flops": FLOPS_PER_MAC * macs[i],
            "quadratic_macs": quadratic[i],
            "causal_macs": causal[i],
            "kv_cache_elements": kv[i],
            "other_ops": _ops_dict(other_ops[i]),
            "connections": connections[i],
            "sharing": _sharing_dict(shared) if (shared := sharing[i]) else None,
            "share": share(c, total),
            "rf": rf_dict(rfs[i]),
            "memory": _node_memory_dict(memory[i]),
            "implicit": n.implicit,
            "shares": n.shares,
            "uses": uses[i],
            "tied": None if n.tie is None else {"owner": n.tie.owner, "transposed": n.tie.transposed},
            "frozen": c.frozen,
            "scope": list(n.scope),
            "name": n.name,
            "module": n.module,  # its torch module's path in `build`/`export --torch`: features.0, layer1.0.conv1
            "warnings": list(n.warnings),
            "counted": values[i],
            "counted_rule": rules[i],
            "training": training_views.step_dict(step, i),
        }


def share(c: Counts, total: int) -> float:
    """A layer's fraction of the network's parameters (Analysis.share)."""
    return c.params / total if total else 0.0


def _ops_dict(o: OtherOps) -> dict[str, int]:
    """Other operations by kind (written out, not `asdict`: this runs once per layer)."""
    return {"adds": o.adds, "multiplies": o.multiplies, "divisions": o.divisions, "comparisons": o.comparisons,
            "exponentials": o.exponentials}


def _node_memory_dict(m: NodeMemory) -> dict[str, int]:
    return {"activation_bytes": m.activation_bytes, "param_bytes": m.param_bytes, "buffer_bytes": m.buffer_bytes}


def _sharing_dict(s: Sharing) -> dict[str, Any]:
    """A conv's (or all convs') parameters, the FC-equivalent parameters and their ratio."""
    return {"params": s.params, "fc_equivalent_params": s.fc_equivalent_params, "factor": s.factor}


def rf_dict(field: Any) -> dict[str, Any] | str | None:
    """An RF record as JSON: lists per axis; 'global'; None where there are no spatial axes."""
    from archcalc.passes.receptive_field import RF

    if not isinstance(field, RF):
        return str(field)
    if field.rank == 0:
        return None
    out: dict[str, Any] = {
        "size": list(field.size),
        "jump": [j if isinstance(j, int) else float(j) for j in field.jump],
        "start": list(field.start),
        "center": [plain(c) for c in field.center],
        "aligned": field.aligned,
    }
    if not all(isinstance(j, int) for j in field.jump):  # below 1 after going up in resolution
        out["jump_exact"] = [str(j) for j in field.jump]
    if field.phases:  # neighbouring units see differently placed fields: each unit of one period
        out["period"] = [field.period(a) for a in range(field.rank)]
        out["units"] = [[list(s) if s else None for s in axis] for axis in field.phases]
    if not field.aligned:
        out["centers"] = [[plain(c) for c in axis] for axis in field.axis_centers()]
        out["why"] = field.why
    return out


def _final_rf(analysis: Analysis) -> dict[str, Any] | None:
    """The receptive field of the last spatial layer before the network goes global."""
    node = analysis.final_rf
    if node is None:
        return None
    return {"layer": node, "rf": rf_dict(analysis.rf[node])}


def _memory_totals(analysis: Analysis) -> dict[str, Any]:
    m = analysis.memory
    return {
        **asdict(m.options),
        "bytes_per_element": m.options.bytes_per_element,
        "param_bytes": m.param_bytes,
        "buffer_bytes": m.buffer_bytes,
        "activation_bytes": m.activation_bytes,
        "inference_peak_bytes": m.inference_peak_bytes,
        "inference_peak_at": m.peak_at,
        "inference_bytes": m.inference_bytes,
        "training": {
            "param_bytes": m.param_bytes,
            "buffer_bytes": m.buffer_bytes,
            "gradient_bytes": m.gradient_bytes,
            "optimizer_bytes": m.optimizer_bytes,
            "activation_bytes": m.activation_bytes,
            "total_bytes": m.training_bytes,
        },
    }


def _activation_elements(analysis: Analysis) -> int:
    """Every node's output elements, one sample."""
    return sum(map(math.prod, map(_SHAPE, analysis.graph)))  # in C: this runs over every node


_SHAPE = attrgetter("shape")


def _per(analysis: Analysis, batch: int, elements: int) -> dict[str, int]:
    """The work of `batch` samples (1: per sample), every figure labelled: the JSON's totals
    `macs`/`flops` are per sample, as every per-layer figure is; `elements`: a sample's
    activation elements."""
    t, a = analysis.totals, analysis.attention
    return {
        "samples": batch,
        "macs": t.macs * batch,
        "flops": t.flops * batch,
        "quadratic_macs": a.total_quadratic_macs * batch,
        "linear_macs": (t.macs - a.total_quadratic_macs) * batch,
        "causal_macs": a.total_causal_macs * batch,
        "causal_flops": FLOPS_PER_MAC * a.total_causal_macs * batch,
        "kv_cache_elements": a.total_kv_cache * batch,
        "activation_elements": elements * batch,
    }


def _kv_cache(analysis: Analysis) -> dict[str, Any]:
    """The KV cache per caching attention layer and in total, at the analysis's batch and dtype."""
    a, o = analysis.attention, analysis.memory.options
    return {
        "dtype": o.dtype,
        "batch": o.batch,
        "elements_per_sample": a.total_kv_cache,
        "bytes": a.total_kv_cache_bytes,
        "layers": [{"layer": i, "spec": analysis.graph.node(i).text, "elements_per_sample": a.kv_cache[i],
                    "bytes": a.kv_cache_bytes[i]} for i in a.cached()],
    }


_LAYERS = "\u0000layers\u0000"  # where the layer lines go in the indented document


def to_json(analysis: Analysis) -> str:
    """The JSON document, indented, with one line per layer (see `json_chunks`)."""
    return "".join(json_chunks(analysis))


def write_json(analysis: Analysis, file: TextIO) -> None:
    """The JSON document written to `file` a piece at a time (`json_chunks`), never the whole text
    (a 100,000-layer document is over 100 MB)."""
    for chunk in json_chunks(analysis):
        file.write(chunk)


LINES_A_CHUNK = 256  # layer lines joined into one piece: some 400 KB at most of the usual lines
_NEXT_LINE = (",\n    ",)  # what stands before each layer's line but the first


def json_chunks(analysis: Analysis) -> Iterator[str]:
    """The JSON document in pieces: the head, the layers' lines LINES_A_CHUNK at a time, the tail.

    `json.dumps(indent=…)` runs CPython's pure-Python encoder; the layers — nearly all of
    the document — are written compactly, one per line, as the C encoder writes each layer's
    dict (`json_lines.layer_pieces`, which writes that text without building the dict, as the
    pieces of each line). Integers of any size stay exact. Only one run of lines is held at a time;
    a run is one piece, not LINES_A_CHUNK (each piece costs its reader a call, a writer a write),
    joined from its lines' pieces at once: each byte copied once, not once per line and again per run.
    """
    head = json.dumps(to_dict(analysis, layers=_LAYERS), indent=2, ensure_ascii=False)
    before, after = head.split(json.dumps(_LAYERS), 1)
    yield before
    if not len(analysis.graph):
        yield "[]"
    else:
        lines = layer_pieces(analysis)
        start = ("[\n    ",)
        while run := list(islice(lines, LINES_A_CHUNK)):
            # each line's pieces after its separator, all joined at once: (start, *line, sep, *line, …)
            yield "".join(chain.from_iterable(chain.from_iterable(zip(chain((start,), repeat(_NEXT_LINE)), run))))
            start = _NEXT_LINE
        yield "\n  ]"
    yield after + "\n"


CSV_FIELDS = ("id", "spec", "type", "line", "inputs", "output_shape", "params", "weights", "biases",
              "buffers", "macs", "flops", "share", "implicit", "scope", "rf")


def to_csv(analysis: Analysis, depth: int | None = None, columns: Sequence[Any] | None = None,
           only: str | None = None) -> str:
    """One row per layer, integers exact; lists joined with spaces / x. With `depth`, `columns`
    or `only`, the rows and columns of the table instead (a collapsed block is one row, its ids
    `5-11`), every figure exact."""
    import csv  # here: the JSON report does not load it

    if depth is not None or columns is not None or only is not None:
        return _table_csv(analysis, depth, columns, only)
    buf = io.StringIO()
    fields = CSV_FIELDS + (("counted",) if analysis.convention != "pytorch" else ())
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(fields)
    writer.writerows(_csv_rows(analysis, len(fields) > len(CSV_FIELDS)))
    return buf.getvalue()


def _csv_rows(analysis: Analysis, counted: bool) -> Iterator[list[Any]]:
    """Each layer's CSV row, CSV_FIELDS in order: the JSON's figures (`_layers`), lists joined, the
    share to 6 decimals, the RF as the `rf` figure's cell. Written from the figures directly, not
    from each layer's dict: the dict would make the training step and every convention
    (tests/test_csv_rows.py holds the rows to the dicts')."""
    counts, macs, rfs, total = analysis.counts, analysis.macs, analysis.rf, analysis.totals.params
    values = analysis.counted.values if counted else ()
    rf_figure = FIGURES["rf"]
    # cells by the id of the record they are made from (a field, a shape, a layer's counts): the
    # analysis holds every one of them while this runs, so no id changes hands
    rf_cells: dict[int, Any] = {}
    shapes: dict[int, str] = {}
    shares: dict[int, str] = {}
    for n in analysis.graph:
        i = n.id
        c = counts[i]
        loc = n.loc
        m = macs[i]
        field, shape = rfs[i], n.shape
        rf = rf_cells.get(id(field), rf_cells)
        if rf is rf_cells:
            rf = rf_cells[id(field)] = plain_value(rf_figure.of(analysis, i))
        shape_cell = shapes.get(id(shape)) or shapes.setdefault(id(shape), "x".join(map(str, shape)))
        share_cell = shares.get(id(c)) or shares.setdefault(id(c), f"{share(c, total):.6f}")
        row = [i, n.text, n.type, loc.line if loc else None, " ".join(map(str, n.inputs)), shape_cell,
               c.params, c.weights, c.biases, c.buffers, m, FLOPS_PER_MAC * m, share_cell, n.implicit,
               "/".join(n.scope), rf]
        if counted:
            row.append(values[i])
        yield row


def _table_csv(analysis: Analysis, depth: int | None, columns: Sequence[Any] | None, only: str | None) -> str:
    import csv

    from archcalc.report.columns import select
    from archcalc.report.rows import only as filter_rows
    from archcalc.report.rows import rows

    cols = list(columns) if columns is not None else select(None)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", "layer", "scope", *(c.key for c in cols)])
    g = analysis.graph
    for r in filter_rows(analysis, rows(analysis, depth), only):
        if r.heading:
            continue
        first = g.node(r.ids[0])
        scope = "/".join(first.scope[: r.level] if r.type == "block" else first.scope)
        cells = [c.cell(analysis, r.ids) if c.figure is None else
                 plain_value(FIGURES[c.figure].group(analysis, r.ids)) for c in cols]
        writer.writerow([r.index.replace("–", "-"), r.label, scope, *cells])
    return buf.getvalue()


def plain_value(value: Any) -> Any:
    """A figure as a CSV cell: integers exact, shapes and RFs as 3x224x224, a share as a fraction
    of 1 (6 decimals), 'global' as it is, empty for none."""
    from fractions import Fraction

    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Fraction):
        return f"{float(value):.6f}"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, tuple):
        return "x".join(map(str, value)) if value else ""
    return value


def markdown_text(text: str) -> str:
    """Text that Markdown shows as written in a table cell (no code spans): `|`, `*`, backticks,
    `<`, `[` and a `_` that could start emphasis are escaped."""
    text = re.sub(r"([\\|*`<>\[\]])", r"\\\1", text)
    return re.sub(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])", r"\\_", text)


def to_markdown(analysis: Analysis, depth: int | None = None, columns: Sequence[Any] | None = None,
                only: str | None = None, quiet: bool = False) -> str:
    from archcalc.report.columns import select
    from archcalc.report.notes import lines as note_lines
    from archcalc.report.rows import only as filter_rows
    from archcalc.report.rows import rows

    cols = list(columns) if columns is not None else select(None)
    t = analysis.totals
    lines = [
        f"## {analysis.graph.name}",
        "",
        "| # | layer | " + " | ".join(c.title for c in cols) + " |",
        "|---:|---|" + "".join("---:|" if c.justify == "right" else "---|" for c in cols),
    ]
    for r in filter_rows(analysis, rows(analysis, depth), only):
        indent = "&nbsp;" * 2 * r.level
        if r.heading:
            lines.append(f"| | {indent}**{markdown_text(r.label)}** |" + " |" * len(cols))
            continue
        cells = [markdown_text(c.cell(analysis, r.ids)) for c in cols]
        lines.append(f"| {r.index} | {indent}{markdown_text(r.label)} | " + " | ".join(cells) + " |")
    lines.append("| | **total** | " + " | ".join(f"**{c.footer(analysis)}**" if c.footer(analysis) else ""
                                                   for c in cols) + " |")
    lines += [
        "",
        f"Parameters {t.params:,} (weights {t.counts.weights:,}, biases {t.counts.biases:,}); "
        f"buffers {t.counts.buffers:,}; MACs {t.macs:,}; FLOPs {t.flops:,} (= 2 × MACs){analysis.excluding()}.",
    ]
    from archcalc.report.table import attention_lines, kv_cache_line

    if analysis.batch > 1:
        lines.append(f"Per batch of {analysis.batch} (the figures above are per sample): MACs "
                     f"{t.macs * analysis.batch:,}, FLOPs {t.flops * analysis.batch:,}.")
    lines += [f"\n{markdown_text(line)}" for line in attention_lines(analysis).splitlines()]
    if kv := kv_cache_line(analysis).strip():
        lines.append(f"\n{markdown_text(kv)}")
    lines += ["", *(f"> {line}" for line in counting_views.summary_lines(analysis))] \
        if analysis.convention != "pytorch" else []
    if not quiet:
        lines += [f"\n> warning: {markdown_text(line)}" for line in note_lines(analysis)]
    return "\n".join(lines) + "\n"
