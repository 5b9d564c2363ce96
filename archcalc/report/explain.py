"""Worked formulas: collect each layer's `explain` and lay them out as text, Markdown or JSON.

The formulas themselves live in the layer classes (next to their shape and count rules);
this module only gathers them and formats them, and names the analysis figure each one
must equal (`figure`), so tests and `archcalc check` can hold the two together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from archcalc.graph import Node
from archcalc.layers.base import Formula
from archcalc.passes.analysis import Analysis
from archcalc.tensor import format_shape, shape_axis_names


@dataclass(frozen=True)
class Worked:
    """One layer and its formulas."""

    node: Node
    formulas: tuple[Formula, ...]


def formulas(analysis: Analysis, node_id: int) -> tuple[Formula, ...]:
    n = analysis.graph.node(node_id)
    return tuple(n.layer.explain(n.args, n.in_shapes, n.shape))


def worked(analysis: Analysis) -> list[Worked]:
    """Every layer that has formulas, in topological order."""
    out = [Worked(n, formulas(analysis, n.id)) for n in analysis.graph]
    return [w for w in out if w.formulas]


def figure(analysis: Analysis, node_id: int, what: str) -> list[int]:
    """The analysis figures a formula about `what` stands for (one per output axis it names)."""
    n = analysis.graph.node(node_id)
    c = analysis.counts[node_id]
    simple = {"weights": c.weights, "biases": c.biases, "params": c.params, "buffers": c.buffers,
              "MACs": analysis.macs[node_id]}
    if what in simple:
        return [simple[what]]
    if what.startswith("output "):
        axes = shape_axis_names(len(n.shape))
        return [n.shape[axes.index(name.strip())] for name in what[len("output "):].split(",")]
    raise KeyError(f"no figure is called '{what}'")


def for_figure(analysis: Analysis, node_id: int, key: str) -> list[Formula]:
    """The formulas that give one figure of a node: 'params', 'weights', 'MACs' or 'output'."""
    return [f for f in formulas(analysis, node_id) if f.what == key or f.what.split(" ")[0] == key]


def line(f: Formula) -> str:
    """`⌊(227 − 11 + 2·0)/4⌋ + 1 = 55`, with the note after the value."""
    note = f"  ({f.note})" if f.note else ""
    return f"{f.expression} = {f.value:,}{note}"


def _heading(n: Node) -> str:
    shapes = " + ".join(format_shape(s) for s in n.in_shapes)
    where = f"line {n.loc.line}, " if n.loc else ""
    text = f"({n.text})" if n.implicit else n.text
    return f"{n.id}  {text}  ({where}{shapes} → {format_shape(n.shape)})"


def to_text(analysis: Analysis) -> str:
    """One block per layer: the heading, then `what   formula = value` lines."""
    blocks = []
    every = worked(analysis)
    width = max((len(f.what) for w in every for f in w.formulas), default=0)
    for w in every:
        body = [f"    {f.what:<{width}}  {line(f)}" for f in w.formulas]
        blocks.append("\n".join([_heading(w.node), *body]))
    return "worked formulas\n\n" + "\n\n".join(blocks) + "\n" if blocks else "no layer has formulas\n"


def to_markdown(analysis: Analysis) -> str:
    lines = ["### Worked formulas", ""]
    for w in worked(analysis):
        n = w.node
        text = f"({n.text})" if n.implicit else n.text
        shapes = " + ".join(format_shape(s) for s in n.in_shapes)
        lines.append(f"**{n.id} `{text}`** ({shapes} → {format_shape(n.shape)})")
        lines.append("")
        lines += [f"- {f.what}: `{f.expression} = {f.value:,}`" + (f" ({f.note})" if f.note else "")
                  for f in w.formulas]
        lines.append("")
    return "\n".join(lines)


def to_dicts(fs: Sequence[Formula]) -> list[dict[str, Any]]:
    return [asdict(f) for f in fs]


