"""Table rows from an Analysis: one per layer, or one per block when collapsed by depth."""

from __future__ import annotations

from dataclasses import dataclass

from archcalc.analysis import Analysis
from archcalc.graph import Node
from archcalc.layers import Shape


@dataclass(frozen=True)
class Row:
    index: str  # node id, or the id range a collapsed block covers
    label: str
    type: str
    shape: Shape
    params: int
    macs: int
    share: float
    level: int  # block nesting, for indentation
    implicit: bool = False
    heading: bool = False  # a block's title row, with no figures of its own


def rows(analysis: Analysis, depth: int | None = None) -> list[Row]:
    """Layer rows with block headings; blocks nested deeper than `depth` become one row each."""
    out: list[Row] = []
    open_scope: tuple[str, ...] = ()
    nodes = list(analysis.graph)
    i = 0
    while i < len(nodes):
        node = nodes[i]
        visible = node.scope if depth is None else node.scope[:depth]
        for level in range(_common(open_scope, visible), len(visible)):
            out.append(Row("", visible[level], "block", (), 0, 0, 0.0, level, heading=True))
        open_scope = visible
        if depth is not None and len(node.scope) > depth:
            key = node.scope[: depth + 1]
            j = i
            while j < len(nodes) and nodes[j].scope[: depth + 1] == key:
                j += 1
            out.append(_collapsed(analysis, nodes[i:j], key[-1], depth))
            i = j
            continue
        out.append(Row(str(node.id), node.text, node.type, node.shape, analysis.counts[node.id].params,
                       analysis.macs[node.id], analysis.share(node.id), len(visible), node.implicit))
        i += 1
    return out


def _collapsed(analysis: Analysis, group: list[Node], title: str, level: int) -> Row:
    ids = [n.id for n in group]
    params = sum(analysis.counts[i].params for i in ids)
    total = analysis.totals.params
    return Row(
        f"{ids[0]}–{ids[-1]}", f"{title} ({len(ids)} layers)", "block", group[-1].shape, params,
        sum(analysis.macs[i] for i in ids), params / total if total else 0.0, level,
    )


def _common(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n
