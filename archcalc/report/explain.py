"""Worked formulas laid out as text, Markdown or JSON.

The formulas themselves live in the layer classes (next to their shape and count rules)
and are gathered by `passes.figures.formulas`, which also names the analysis figure each
one must equal; this module only formats them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from archcalc.graph import Node
from archcalc.layers.base import Formula
from archcalc.passes import figures
from archcalc.passes.analysis import Analysis
from archcalc.records import record
from archcalc.tensor import format_shape


@record
class Worked:
    """One layer and its formulas."""

    node: Node
    formulas: tuple[Formula, ...]


def worked(analysis: Analysis) -> list[Worked]:
    """Every layer that has formulas, in topological order."""
    out = [Worked(n, figures.formulas(analysis, n.id)) for n in analysis.graph]
    return [w for w in out if w.formulas]


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
        body = [f"    {f.what:<{width}}  {f.line()}" for f in w.formulas]
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


