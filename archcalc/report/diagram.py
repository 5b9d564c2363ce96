"""Diagrams: the layer graph as Graphviz DOT, drawn to SVG, PNG or PDF by the `dot` program.

Each box shows the layer as written, its output shape and parameters; edges carry the
tensor shapes; blocks are clusters, and blocks nested deeper than `depth` become one box.
Colours follow the layer's kind. The DOT text is written here, exactly as the graphviz package
writes it (`Dot`); graphviz is imported here only, and only to run `dot` on that text.
"""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import TypeVar

from archcalc.errors import RenderError, UsageError
from archcalc.graph import Node
from archcalc.passes.analysis import Analysis
from archcalc.records import record
from archcalc.report.rows import own_name
from archcalc.tensor import format_shape

FORMATS = ("svg", "png", "pdf", "dot")
COLOURS = {
    "conv": "#9ecae1",
    "fc": "#fdae6b",
    "attention": "#fc9272",
    "mlp": "#fdd0a2",
    "embedding": "#bcbddc",
    "recurrent": "#c6dbef",
    "pool": "#a1d99b",
    "norm": "#fff2a8",
    "activation": "#f4cae4",
    "merge": "#cbc9e2",
    "other": "#f0f0f0",
    "block": "#d9d9d9",
}
INSTALL_HINT = ("install Graphviz: 'apt-get install graphviz' (Debian/Ubuntu) "
                "or 'brew install graphviz' (macOS)")


@record
class Box:
    """One drawn node: a layer, or a block collapsed into one (`count` blocks alike in a row)."""

    key: str
    cluster: tuple[str, ...]  # the scopes it is drawn inside
    label: str  # Graphviz HTML label
    kind: str
    implicit: bool = False  # dashed: archcalc added it (hidden activation, flatten, auto shortcut)
    small: bool = False
    count: int = 1  # blocks drawn as this one box ("bottleneck × 5")


@dataclass
class _Cluster:
    boxes: list[Box] = field(default_factory=list)
    children: dict[str, _Cluster] = field(default_factory=dict)
    order: list[Box | str] = field(default_factory=list)  # boxes and child clusters, as they first appear


# -- what to draw ------------------------------------------------------------------------

MAX_BOXES = 60  # the automatic depth keeps the picture to a page
MAX_INCHES = "120,300"  # and Graphviz shrinks anything larger (PNG stays under cairo's 32,767 px)


def _block_groups(analysis: Analysis, depth: int | None) -> tuple[dict[int, str], dict[str, list[Node]]]:
    """Node id → its box key, and each collapsed block's nodes (blocks nested deeper than `depth`)."""
    blocks: dict[tuple[str, ...], str] = {}
    keys: dict[int, str] = {}
    members: dict[str, list[Node]] = {}
    for n in analysis.graph:
        if depth is not None and len(n.scope) > depth:
            key = blocks.setdefault(n.scope[: depth + 1], f"block{len(blocks)}")
            members.setdefault(key, []).append(n)
        else:
            key = f"n{n.id}"
        keys[n.id] = key
    return keys, members


def _signature(nodes: list[Node]) -> tuple[object, ...]:
    """What makes two blocks alike: the same block, the same layers as written, wired alike."""
    first = nodes[0].id
    index = {n.id: k for k, n in enumerate(nodes)}
    name = nodes[0].scope[len(nodes[0].scope) - 1] if nodes[0].scope else ""
    return (_block_name(name), tuple((n.type, n.text, tuple(index.get(i, -1) for i in n.inputs)) for n in nodes),
            first >= 0)


def _block_name(scope: str) -> str:
    return scope.rsplit("#", 1)[0]


T = TypeVar("T")
_last: list[object] = [None, {}]  # the analysis asked about last, and what was worked out for it


def _memo(analysis: Analysis, what: tuple[object, ...], make: Callable[[], T]) -> T:
    """`make()` once per analysis and question: `render` asks for the same layout and boxes several
    times (to choose the depth, for the note, for each drawing order). Only the analysis asked about
    last is kept, by identity; holding it means its id cannot be reused by another meanwhile."""
    if _last[0] is not analysis:
        _last[:] = [analysis, {}]
    answers: dict[tuple[object, ...], object] = _last[1]  # type: ignore[assignment]
    if what not in answers:
        answers[what] = make()
    return answers[what]  # type: ignore[return-value]


def box_keys(analysis: Analysis, depth: int | None) -> dict[int, str]:
    """The box each node is drawn in: `nID` for a layer, `blockK` shared by a collapsed block, and by
    the blocks alike that follow it in a chain (they are drawn as one box with a count)."""
    keys, _ = _layout(analysis, depth)
    return dict(keys)


def _layout(analysis: Analysis, depth: int | None) -> tuple[dict[int, str], dict[str, list[list[Node]]]]:
    """The box keys and each collapsed block's run of blocks alike (worked out once: callers only read)."""
    return _memo(analysis, ("layout", depth), lambda: _layout_of(analysis, depth))


def _layout_of(analysis: Analysis, depth: int | None) -> tuple[dict[int, str], dict[str, list[list[Node]]]]:
    keys, members = _block_groups(analysis, depth)
    runs: dict[str, list[list[Node]]] = {}
    last_key: str | None = None
    for key, nodes in members.items():
        run = runs.get(last_key) if last_key else None
        alike = run is not None and _signature_at(run[-1], depth) == _signature_at(nodes, depth)
        if run is not None and alike and _follows(analysis, run[-1], nodes):
            run.append(nodes)
            for n in nodes:
                keys[n.id] = last_key  # type: ignore[assignment]
            continue
        runs[key] = [nodes]
        last_key = key
    return keys, runs


def _signature_at(nodes: list[Node], depth: int | None) -> tuple[object, ...]:
    assert depth is not None
    return (nodes[0].scope[:depth], _block_name(nodes[0].scope[depth]), _signature(nodes)[1])


def _follows(analysis: Analysis, before: list[Node], after: list[Node]) -> bool:
    """`after` reads only `before`'s last node from outside itself, and nothing else reads `before`."""
    inside = {n.id for n in after}
    outside = {i for n in after for i in n.inputs if i not in inside}
    last = before[-1].id
    mine = {n.id for n in before}
    readers = {c for n in before for c in analysis.graph.consumers(n.id) if c not in mine}
    return outside == {last} and readers <= inside


def boxes(analysis: Analysis, depth: int | None = None) -> list[Box]:
    """The boxes in topological order of their first layer."""
    return list(_memo(analysis, ("boxes", depth), lambda: tuple(_boxes_of(analysis, depth))))


def _boxes_of(analysis: Analysis, depth: int | None) -> list[Box]:
    keys, runs = _layout(analysis, depth)
    titles = _cluster_titles(analysis) if depth is not None else {}
    node = analysis.graph.node
    out = []
    drawn: set[str] = set()  # collapsed blocks drawn so far (a layer's `nID` comes once)
    for node_id, key in keys.items():  # in graph order: a box where its first layer is
        if not key.startswith("block"):
            n = node(node_id)
            small = _small(analysis, n)
            out.append(Box(key, n.scope, _layer_label(analysis, n, small), n.layer.kind, n.implicit, small))
        elif key not in drawn:
            assert depth is not None
            drawn.add(key)
            blocks = runs[key]
            out.append(Box(key, blocks[0][0].scope[:depth], _block_label(analysis, blocks, depth, titles), "block",
                           count=len(blocks)))
    return out


def edges(analysis: Analysis, depth: int | None = None) -> list[tuple[str, str, str]]:
    """(from, to, shape) between boxes, once each; edges inside a collapsed block vanish. The shape
    is the tensor's, which the source box already shows: the drawing does not repeat it."""
    shape = analysis.graph.node
    return [(a, b, format_shape(shape(i).shape)) for (a, b), i in _edge_sources(analysis, depth).items()]


def _edge_sources(analysis: Analysis, depth: int | None) -> dict[tuple[str, str], int]:
    """Each edge between boxes, in order, and the node whose tensor it first carries."""
    keys, _ = _layout(analysis, depth)
    seen: dict[tuple[str, str], int] = {}
    for n in analysis.graph:
        for i in n.inputs:
            if keys[i] != keys[n.id]:
                seen.setdefault((keys[i], keys[n.id]), i)
    return seen


def choose_depth(analysis: Analysis, limit: int = MAX_BOXES) -> int | None:
    """The deepest block nesting whose drawing has at most `limit` boxes, a small one (a hidden ReLU)
    counting half and each block drawn around boxes one (None: every layer)."""
    deepest = max((len(n.scope) for n in analysis.graph), default=0)
    if deepest == 0 or _weight(boxes(analysis, None)) <= limit:
        return None
    for depth in range(deepest - 1, -1, -1):
        if _weight(boxes(analysis, depth)) <= limit:
            return depth
    return 0


def _weight(drawn: list[Box]) -> float:
    """A box counts 1 (a small one half), and so does each block drawn as a cluster around boxes:
    its title and margins take a box's height (a chain of nested blocks grows tall)."""
    clusters = {b.cluster[:i] for b in drawn for i in range(1, len(b.cluster) + 1)}
    return sum(0.5 if b.small else 1 for b in drawn) + len(clusters)


def depth_note(analysis: Analysis, depth: int | None, chosen: bool) -> str:
    """What a picture shows: 'every layer', or the depth and how to get every layer."""
    drawn = len(boxes(analysis, depth))
    if depth is None:
        return f"every layer ({drawn} boxes)"
    every = len(boxes(analysis, None))
    how = "chosen so the picture fits a page; " if chosen else ""
    return (f"blocks nested deeper than {depth} collapsed ({drawn} boxes; {how}--depth all draws "
            f"every layer, {every} boxes)")


def _small(analysis: Analysis, n: Node) -> bool:
    """Implicit layers without weights (hidden ReLU, flatten) are small; a projection shortcut is not."""
    return n.implicit and not analysis.counts[n.id].params


def _layer_label(analysis: Analysis, n: Node, small: bool) -> str:
    changed = small and bool(n.in_shapes) and n.in_shapes[0] != n.shape
    return _label_text(n.text, n.name if own_name(n) else None, n.shape, changed,
                       analysis.counts[n.id].params, small)


@lru_cache(maxsize=4096)  # keyed by all it reads: layers written alike (a chain of conv3-64) share one
def _label_text(text: str, name: str | None, shape: tuple[int, ...], changed: bool, params: int, small: bool
                ) -> str:
    text = html.escape(text)
    if small:
        shown = f"{text} → {format_shape(shape)}" if changed else text
        return f'<<font point-size="9">{shown}</font>>'
    title = f"{html.escape(name)} = {text}" if name else text
    lines = [f"<b>{title}</b>", format_shape(shape)]
    if params:
        lines.append(f'<font point-size="10">{params:,} params</font>')
    return "<" + "<br/>".join(lines) + ">"


def _block_label(analysis: Analysis, blocks: list[list[Node]], depth: int,
                 titles: dict[tuple[str, ...], str]) -> str:
    nodes = [n for b in blocks for n in b]
    params = sum(analysis.counts[n.id].params for n in nodes)
    last = nodes[-1]
    scope = nodes[0].scope[depth]
    if len(blocks) > 1:
        title = f"{html.escape(_block_name(scope))} × {len(blocks)}"
    else:
        title = html.escape(titles.get(nodes[0].scope[: depth + 1], scope))
    layers = f"{len(blocks)} × {len(blocks[0])} layers" if len(blocks) > 1 else f"{len(blocks[0])} layers"
    return (f"<<b>{title}</b><br/>"
            f'<font point-size="9">{html.escape(inside(analysis, blocks[0]))}</font><br/>'
            f'<font point-size="10">{layers} · {params:,} params</font><br/>{format_shape(last.shape)}>')


MAX_INSIDE = 72


def inside(analysis: Analysis, nodes: list[Node]) -> str:
    """What a collapsed block holds, as a reader sketches it: its convolutions' kernels (and pools,
    FCs, attention, MLPs) in order, `|` between concatenated branches, `+` between added ones (`·`
    multiplied: a gate), `id`
    for a path that passes its input on: '1×1 | 1×1→3×3 | 1×1→5×5 | pool→1×1', '1×1→3×3→1×1 + 1×1',
    a transformer block '(attn + id)→(mlp + id)'."""
    ids = {n.id for n in nodes}
    memo: dict[tuple[int, int | None], str] = {}
    seen: dict[int, set[int]] = {}
    g = analysis.graph

    def ancestors(node_id: int) -> set[int]:  # inside the block
        if node_id not in seen:
            seen[node_id] = set()  # a cycle cannot happen; this only stops a deep re-walk
            out: set[int] = set()
            for i in g.node(node_id).inputs:
                if i in ids:
                    out |= {i} | ancestors(i)
            seen[node_id] = out
        return seen[node_id]

    def chain(node_id: int, stop: int | None = None) -> str:
        """The tokens from the block's input (or from `stop`, left out) up to `node_id`."""
        if node_id == stop:
            return ""
        key = (node_id, stop)
        if key in memo:
            return memo[key]
        n = g.node(node_id)
        if n.layer.kind == "merge" and len(n.inputs) > 1:
            joiner = {"concat": " | ", "mul": " · "}.get(n.type, " + ")
            inner = [i for i in n.inputs if i in ids]
            # a residual: one input leads to all the others (x + f(x)), so it is 'id' after it
            base = next((i for i in inner if all(i == j or i in ancestors(j) for j in inner)
                         and len(inner) == len(n.inputs)), None)
            parts = [chain(i, base) if i in ids else "" for i in n.inputs]
            before = "(" + joiner.join(p or "id" for p in parts) + ")"
            if base is not None and (start := chain(base, stop)):
                before = f"{start}→{before}"
        else:
            before = next((chain(i, stop) for i in n.inputs if i in ids), "")
        word = _token(n)
        memo[key] = f"{before}→{word}" if before and word else before or word
        if len(memo[key]) > 4 * MAX_INSIDE:
            memo[key] = memo[key][: 4 * MAX_INSIDE]
        return memo[key]

    text = chain(nodes[-1].id) or "no convolution"
    if text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1]
    return text if len(text) <= MAX_INSIDE else text[: MAX_INSIDE - 1] + "…"


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def _token(n: Node) -> str:
    kind = n.layer.kind
    if kind == "conv" and "kernel" in n.args:
        kernel = n.args["kernel"]
        sizes = kernel if isinstance(kernel, tuple) else (kernel,)
        if len(sizes) < len(n.shape) - 1:
            sizes = tuple(sizes) * (len(n.shape) - 1)
        return "×".join(map(str, sizes))
    if kind == "fc":
        return "fc"
    if kind == "pool":
        return "pool"
    if kind == "attention":
        return "attn"
    if kind in ("mlp", "recurrent"):
        return n.type
    if kind == "embedding":
        return "emb"
    return ""


# -- DOT text -------------------------------------------------------------------------------
# The graphviz package builds DOT text through layers of wrappers (deprecation checks, quoting,
# sorting) that cost more than the rest of `render` on a large graph; `Dot` writes the same text
# directly, byte for byte as graphviz 0.20/0.21 does: attributes sorted by name, each name and
# value quoted by graphviz's rule (`_quote`), one tab per nesting level. The package still runs `dot`.

_HTML = re.compile(r"<.*>$", re.DOTALL)
_ID = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*|-?(\.[0-9]+|[0-9]+(\.[0-9]*)?))$")
_KEYWORDS = {"node", "edge", "graph", "digraph", "subgraph", "strict"}
_QUOTE = re.compile(r'(?P<escaped_backslashes>(?:\\{2})*)\\?(?P<literal_quote>")')


@lru_cache(maxsize=8192)  # names and values repeat (colours, styles, one label per kind of layer)
def _quote(identifier: str) -> str:
    """graphviz.quoting.quote: an HTML label `<…>` or a plain ID as it is, anything else in quotes."""
    if identifier[:1] == "<" and identifier[-1:] == ">" and len(identifier) > 1:  # a label: _HTML, quickly
        return identifier
    if _HTML.match(identifier) or (_ID.match(identifier) and identifier.lower() not in _KEYWORDS):
        return identifier
    return '"' + _QUOTE.sub(r"\g<escaped_backslashes>\\\g<literal_quote>", identifier) + '"'


def _name(identifier: str) -> str:
    """A node's name: a box key (`n12`, `block3`) is a plain ID, quoted as it is without a cache
    lookup (there is one key per box; the cache is for the values that repeat)."""
    if identifier.isascii() and identifier.isidentifier() and identifier.lower() not in _KEYWORDS:
        return identifier
    return _quote(identifier)


def _attr_text(attrs: dict[str, str]) -> str:
    return " ".join(f"{_quote(k)}={_quote(v)}" for k, v in sorted(attrs.items()))


class Dot:
    """A DOT (di)graph being written: the part of graphviz.Digraph's interface the diagram uses."""

    def __init__(self, name: str = "", subgraph: bool = False) -> None:
        self.name = name
        self.body: list[str] = []
        self._subgraph = subgraph

    def attr(self, kw: str | None = None, **attrs: str) -> None:
        """Graph attributes (`kw` None) or the defaults for every `node` or `edge`."""
        if attrs:
            self.body.append(f"\t{_attr_text(attrs)}\n" if kw is None else f"\t{kw} [{_attr_text(attrs)}]\n")

    def node(self, name: str, label: str | None = None, **attrs: str) -> None:
        """graphviz writes the label first, then the other attributes sorted."""
        parts = [f"label={_quote(label)}"] if label is not None else []
        if attrs:
            parts.append(_attr_text(attrs))
        text = " ".join(parts)
        self.body.append(f"\t{_name(name)} [{text}]\n" if text else f"\t{_name(name)}\n")

    def edge(self, tail: str, head: str) -> None:
        self.body.append(f"\t{_name(tail)} -> {_name(head)}\n")  # box keys hold no ':' port

    @contextmanager
    def subgraph(self, name: str) -> Iterator[Dot]:
        """A subgraph (`cluster_…`: drawn as a cluster), added to this graph's body when done."""
        sub = Dot(name, subgraph=True)
        yield sub
        self.body += [f"\t{line}" for line in sub.lines()]

    def lines(self) -> Iterator[str]:
        name = _quote(self.name) + " " if self.name else ""
        yield f"subgraph {name}{{\n" if self._subgraph and name else f"{name}{{\n" if self._subgraph \
            else f"digraph {name}{{\n"
        yield from self.body
        yield "}\n"

    @property
    def source(self) -> str:
        return "".join(self.lines())


# -- DOT ------------------------------------------------------------------------------------


def digraph(analysis: Analysis, depth: int | None = None, rankdir: str = "TB", reverse: bool = False
            ) -> Dot:
    """The whole diagram as DOT. `reverse` defines each cluster's contents last first (see
    `ordered_digraph`)."""
    if rankdir not in ("TB", "LR"):
        raise UsageError(f"rankdir must be TB or LR, not '{rankdir}'")
    g = Dot(analysis.graph.name)
    drawn = boxes(analysis, depth)
    g.attr(rankdir=rankdir, fontname="Helvetica", label=_title(analysis, drawn), labelloc="t", fontsize="16",
           size=MAX_INCHES, newrank="true", nodesep="0.25", ranksep="0.3")
    g.attr("node", shape="box", style="rounded,filled", fontname="Helvetica", fontsize="11")
    g.attr("edge", color="#555555", arrowsize="0.7")
    _emit(g, _tree(drawn), [0], reverse, _cluster_titles(analysis), {b.key for b in drawn if b.key.startswith("n") and
                                 analysis.graph.node(int(b.key[1:])).type == "concat"})
    for src, dst in _edge_sources(analysis, depth):  # the drawing does not repeat the shape
        g.edge(src, dst)
    return g


def branch_rows(analysis: Analysis, depth: int | None = None) -> list[list[str]]:
    """For each drawn concatenation, the first box of each of its branches, in concat order."""
    keys = box_keys(analysis, depth)
    g = analysis.graph
    rows = []
    for n in g:
        if n.type != "concat" or len(n.inputs) < 2 or not keys[n.id].startswith("n"):
            continue
        firsts = [keys[f] for f in (_branch_start(analysis, i) for i in n.inputs) if f is not None]
        row = list(dict.fromkeys(k for k in firsts if k != keys[n.id]))
        if len(row) > 1:
            rows.append(row)
    return rows


def _branch_start(analysis: Analysis, node_id: int, limit: int = 1000) -> int | None:
    """The first layer of the branch ending at `node_id`: walk back while a layer feeds only this path."""
    g = analysis.graph
    here = node_id
    for _ in range(limit):
        n = g.node(here)
        if len(n.inputs) != 1 or n.type == "input":
            return here if n.type != "input" else None
        before = n.inputs[0]
        if len(g.consumers(before)) > 1 or g.node(before).type == "input":
            return here
        here = before
    return here


def to_dot(analysis: Analysis, depth: int | None = None, rankdir: str = "TB") -> str:
    return str(ordered_digraph(analysis, depth, rankdir).source)


def ordered_digraph(analysis: Analysis, depth: int | None = None, rankdir: str = "TB") -> Dot:
    """The diagram whose concatenations show their inputs in order, left to right (top to bottom
    with rankdir LR). Where the picture has branches, dot lays it out both ways (the order in
    which a cluster defines its contents steers where dot puts them) and the one with fewer
    branches out of order is kept; without the `dot` program, the spec's order."""
    rows = branch_rows(analysis, depth)
    first = digraph(analysis, depth, rankdir)
    if not rows or dot_program() is None:
        return first
    second = digraph(analysis, depth, rankdir, reverse=True)
    return min((first, second), key=lambda g: misplaced(g, rows, rankdir))


def misplaced(g: Dot, rows: list[list[str]], rankdir: str = "TB") -> int:
    """How many pairs of branches dot drew out of their concat order."""
    at = positions(g, rankdir)
    return sum(1 for row in rows for a, b in pairwise(row) if a in at and b in at and at[a] > at[b])


def positions(g: Dot, rankdir: str = "TB") -> dict[str, float]:
    """Where dot puts each box across the flow: x for TB, −y for LR (so smaller is earlier)."""
    at: dict[str, float] = {}
    for line in _draw(g, "plain").decode().splitlines():
        parts = line.split()
        if parts and parts[0] == "node":
            at[parts[1]] = float(parts[2]) if rankdir == "TB" else -float(parts[3])
    return at


def _title(analysis: Analysis, drawn: list[Box]) -> str:
    """The title and, under it, the legend as one compact row of coloured cells."""
    t = analysis.totals
    title = html.escape(f"{analysis.graph.name}: input {format_shape(analysis.graph.input.shape)}, "
                        f"{t.params:,} params, {t.macs:,} MACs")
    kinds = {b.kind for b in drawn}
    cells = [f'<td bgcolor="{COLOURS[k]}" border="1" style="rounded">{"block (collapsed)" if k == "block" else k}</td>'
             for k in COLOURS if k in kinds]
    if any(b.implicit for b in drawn):
        cells.append('<td border="1" style="dashed">implicit: hidden ReLU, flatten, shortcut</td>')
    legend = "".join(cells)
    return (f'<<table border="0" cellspacing="4" cellpadding="3"><tr><td colspan="{len(cells)}">'
            f'<font point-size="16">{title}</font></td></tr>'
            f'<tr>{legend}</tr></table>>')


def _tree(drawn: list[Box]) -> _Cluster:
    root = _Cluster()
    for b in drawn:
        here = root
        for scope in b.cluster:
            if scope not in here.children:
                here.children[scope] = _Cluster()
                here.order.append(scope)
            here = here.children[scope]
        here.boxes.append(b)
        here.order.append(b)
    return root


def _cluster_titles(analysis: Analysis) -> dict[tuple[str, ...], str]:
    """Each block instance's title: its module path and the block, `layer1 = stage#1`
    (`features.3 = inverted#2` where the instance is numbered); for a graph made without module
    paths, the path its layers share."""
    prefixes: dict[tuple[str, ...], list[str]] = {}
    for n in analysis.graph:
        if not n.module or n.shares is not None:
            continue
        parts = n.module.split(".")[:-1]
        for i in range(len(n.scope)):
            key = n.scope[: i + 1]
            known = prefixes.get(key)
            if known is None:
                prefixes[key] = parts
            else:
                k = 0
                while k < min(len(known), len(parts)) and known[k] == parts[k]:
                    k += 1
                prefixes[key] = known[:k]
    own = analysis.graph.block_modules  # the instance's own path, where expansion recorded it
    return {key: (f"{own[key]} = {key[-1]}" if own.get(key) else f"{'.'.join(p)} = {key[-1]}" if p else key[-1])
            for key, p in prefixes.items()}


def _emit(g: Dot, cluster: _Cluster, counter: list[int], reverse: bool,
          titles: dict[tuple[str, ...], str], ordered: set[str], root: _Cluster | None = None,
          path: tuple[str, ...] = ()) -> None:
    root = root or cluster
    for item in reversed(cluster.order) if reverse else cluster.order:
        if isinstance(item, str):
            counter[0] += 1
            with g.subgraph(name=f"cluster_{counter[0]}") as sub:
                sub.attr(label=titles.get((*path, item), item), style="rounded,dashed", color="#888888",
                         fontsize="10", fontcolor="#555555", labeljust="l", labelloc="t", margin="14")
                _emit(sub, cluster.children[item], counter, reverse, titles, ordered, root, (*path, item))
            continue
        b = item
        if cluster.children and cluster is not root:  # a lone box beside clusters: a cluster of its own,
            counter[0] += 1                            # so that dot orders it with them
            with g.subgraph(name=f"cluster_{counter[0]}") as sub:
                sub.attr(label="", peripheries="0", margin="0")
                _box(sub, b, ordered)
            continue
        _box(g, b, ordered)


def _box(g: Dot, b: Box, ordered: set[str]) -> None:
    attrs = {"label": b.label, "fillcolor": COLOURS.get(b.kind, COLOURS["other"])}
    if b.implicit:
        attrs |= {"style": "rounded,dashed,filled"}
    if b.small:
        attrs |= {"height": "0.2", "margin": "0.04,0.02"}
    if b.kind == "block":
        attrs |= {"shape": "box3d", "style": "filled", "margin": "0.2,0.1"}
        if b.count > 1:
            attrs |= {"peripheries": "2"}
    if b.key in ordered:  # a concat's inputs are drawn left to right in their order
        attrs |= {"ordering": "in"}
    g.node(b.key, **attrs)


# -- files ----------------------------------------------------------------------------------


def output_format(path: Path) -> str:
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        endings = ", ".join(f".{f}" for f in FORMATS)
        raise UsageError(f"cannot tell the format of '{path}': end it in {endings}")
    return fmt


def dot_program() -> str | None:
    return shutil.which("dot")


def render(analysis: Analysis, path: str | Path, depth: int | None = None, rankdir: str = "TB") -> Path:
    """Write the diagram to `path` (format from its extension); returns the path written.
    `depth` None draws every layer (`choose_depth` picks one that fits a page).

    Without Graphviz's `dot` program the DOT text is still written, next to `path`
    with the same stem, and a RenderError says how to install it.
    """
    path = Path(path)
    fmt = output_format(path)
    g = ordered_digraph(analysis, depth, rankdir)
    if fmt == "dot":
        _write(path, g.source.encode())
        return path
    if dot_program() is None:
        fallback = path.with_suffix(".dot")
        _write(fallback, g.source.encode())
        raise RenderError(
            f"Graphviz's 'dot' program was not found, so {path} was not drawn; "
            f"the diagram is in {fallback}.\n"
            f"  To draw it, {INSTALL_HINT}, then run again or: dot -T{fmt} {fallback} -o {path}"
        )
    _write(path, _draw(g, fmt))
    return path


def svg_text(analysis: Analysis, depth: int | None = None, rankdir: str = "TB") -> str | None:
    """The diagram as SVG text, or None without Graphviz's `dot` program."""
    if dot_program() is None:
        return None
    return _draw(ordered_digraph(analysis, depth, rankdir), "svg").decode()


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as e:
        raise RenderError(f"cannot write {path}: {e.strerror}") from None


def _draw(g: Dot, fmt: str) -> bytes:
    import graphviz

    try:
        return bytes(graphviz.Source(g.source).pipe(format=fmt))
    except graphviz.ExecutableNotFound:
        raise RenderError(f"Graphviz's 'dot' program could not be run; {INSTALL_HINT}") from None
    except graphviz.CalledProcessError as e:
        detail = (e.stderr or b"").decode(errors="replace").strip()
        raise RenderError(f"'dot' failed to draw the diagram: {detail}") from None


