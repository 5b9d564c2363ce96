"""Table rows from an Analysis: one per layer, or one per block when collapsed by depth."""

from __future__ import annotations

from dataclasses import dataclass

from archcalc.graph import Node
from archcalc.passes.analysis import Analysis


@dataclass(frozen=True)
class Row:
    index: str  # node id, or the id range a collapsed block covers
    label: str
    level: int  # block nesting, for indentation
    ids: tuple[int, ...] = ()  # the nodes this row stands for; empty for a heading
    type: str = ""
    implicit: bool = False

    @property
    def heading(self) -> bool:
        return not self.ids


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
            out.append(Row("", visible[level], level))
        open_scope = visible
        if depth is not None and len(node.scope) > depth:
            key = node.scope[: depth + 1]
            j = i
            while j < len(nodes) and nodes[j].scope[: depth + 1] == key:
                j += 1
            out.append(_collapsed(nodes[i:j], key[-1], depth))
            i = j
            continue
        out.append(Row(str(node.id), label(analysis, node), len(visible), (node.id,), node.type, node.implicit))
        i += 1
    return out


def label(analysis: Analysis, node: Node) -> str:
    """The layer as written (with its name), and whose weights it uses where it shares or ties them."""
    text = f"{node.name} = {node.text}" if node.name else node.text
    weighted = analysis.counts[node.id if node.shares is None else node.shares].params > 0
    if node.shares is not None:
        return f"{text}  [weights of #{node.shares}]" if weighted else text
    uses = analysis.uses[node.id]
    if uses > 1 and weighted:
        text += f"  [weights used {uses}×]"
    if node.tie is not None:
        text += f"  [weight of #{node.tie.owner}{', transposed' if node.tie.transposed else ''}]"
    return text


HUGE = 5_000  # more layers than a reader scrolls through: the table collapses blocks by itself
READABLE = 2_000


def readable_depth(analysis: Analysis) -> int | None:
    """None (every layer) for an ordinary network; for a huge one the deepest block level whose
    table has at most READABLE rows (0 when even that is more)."""
    if len(analysis.graph) <= HUGE:
        return None
    deepest = max((len(n.scope) for n in analysis.graph), default=0)
    for depth in range(deepest, -1, -1):
        if len(rows(analysis, depth)) <= READABLE:
            return depth
    return 0


def _collapsed(group: list[Node], title: str, level: int) -> Row:
    ids = tuple(n.id for n in group)
    return Row(f"{ids[0]}–{ids[-1]}", f"{title} ({len(ids)} layers)", level, ids, "block")


def _common(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n
