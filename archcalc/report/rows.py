"""Table rows from an Analysis: one per layer, or one per block when collapsed by depth."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from archcalc.graph import Node
from archcalc.passes.analysis import Analysis
from archcalc.records import record


@record
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
    for level, heading, group in _layout(analysis, depth):
        if heading is not None:
            out.append(Row("", heading, level) if group is None else _collapsed(group, heading, level))
        else:
            assert group is not None
            node = group[0]
            out.append(Row(str(node.id), label(analysis, node), level, (node.id,), node.type, node.implicit))
    return out


def _layout(analysis: Analysis, depth: int | None) -> Iterator[tuple[int, str | None, list[Node] | None]]:
    """The table's rows in order, as (level, heading, nodes): a block heading (nodes None), a
    collapsed block (its title and nodes) or one layer (heading None, [node])."""
    open_scope: tuple[str, ...] = ()
    nodes = list(analysis.graph)
    i = 0
    while i < len(nodes):
        node = nodes[i]
        visible = node.scope if depth is None else node.scope[:depth]
        if visible != open_scope:
            for level in range(_common(open_scope, visible), len(visible)):
                yield level, visible[level], None
            open_scope = visible
        if depth is not None and len(node.scope) > depth:
            key = node.scope[: depth + 1]
            j = i
            while j < len(nodes) and nodes[j].scope[: depth + 1] == key:
                j += 1
            yield depth, key[-1], nodes[i:j]
            i = j
            continue
        yield len(visible), None, [node]
        i += 1


ONLY_HELP = ("weighted (conv and FC layers, and attention, MLP, embedding and recurrent layers: a paper's "
             "table), params (every layer with parameters, BN included), or kinds of layer joined by commas: "
             "conv, fc, attention, mlp, embedding, recurrent, norm, pool, activation, merge, matmul, other")
# the kinds whose layers are a network's weight layers though no hidden activation follows them
WEIGHT_KINDS = frozenset({"attention", "mlp", "embedding", "recurrent"})
KINDS = frozenset({"conv", "fc", "attention", "mlp", "embedding", "recurrent", "norm", "pool", "activation",
                   "merge", "matmul", "other"})


def only(analysis: Analysis, body: list[Row], which: str | None) -> list[Row]:
    """The rows holding a layer `which` names ('weighted', 'params' or kinds such as 'conv,fc'), with
    the block headings above them; the totals stay the whole network's."""
    if which is None:
        return body
    keep = matcher(analysis, which)
    out: list[Row] = []
    for r in body:
        if r.heading:
            while out and out[-1].heading and out[-1].level >= r.level:  # an empty heading goes
                out.pop()
            out.append(r)
        elif any(keep(i) for i in r.ids):
            while out and out[-1].heading and out[-1].level >= r.level:  # a heading of a block left behind
                out.pop()
            out.append(r)
    while out and out[-1].heading:
        out.pop()
    return out


def matcher(analysis: Analysis, which: str) -> Callable[[int], bool]:
    from archcalc.errors import UsageError

    words = {w.strip() for w in which.split(",") if w.strip()}
    unknown = words - KINDS - {"weighted", "params"}
    if unknown or not words:
        raise UsageError(f"--only takes {ONLY_HELP}; not '{which}'")
    g = analysis.graph

    def keep(node_id: int) -> bool:
        n = g.node(node_id)
        if n.type == "input":
            return False
        owner = node_id if n.shares is None else n.shares
        return (("weighted" in words and (n.layer.weighted or n.layer.kind in WEIGHT_KINDS))
                or ("params" in words and analysis.counts[owner].params > 0)
                or n.layer.kind in words)
    return keep


def own_name(n: Node) -> bool:
    """Whether the node's statement name names this layer itself (`conv1 = conv7-64`), rather than
    a block call or a group of layers the statement ends on (`layer1 = stage(64, 3)` ends on a
    ReLU inside it; its rows sit under the block's heading)."""
    if not n.name or n.type == "input" or n.name == n.text:
        return False
    return n.module is None or n.module == n.name or n.module.endswith("." + n.name)


def label(analysis: Analysis, node: Node) -> str:
    """The layer as written (with its name), and whose weights it uses where it shares or ties them."""
    text = f"{node.name} = {node.text}" if own_name(node) else node.text
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
        if sum(1 for _ in _layout(analysis, depth)) <= READABLE:  # the rows counted, not made
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
