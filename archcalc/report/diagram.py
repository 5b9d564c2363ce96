"""Diagrams: the layer graph as Graphviz DOT, drawn to SVG, PNG or PDF by the `dot` program.

Each box shows the layer as written, its output shape and parameters; edges carry the
tensor shapes; blocks are clusters, and blocks nested deeper than `depth` become one box.
Colours follow the layer's kind. graphviz is imported here only, and only when drawing.
"""

from __future__ import annotations

import html
import shutil
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

from archcalc.errors import RenderError, UsageError
from archcalc.graph import Node
from archcalc.passes.analysis import Analysis
from archcalc.tensor import format_shape

if TYPE_CHECKING:
    import graphviz

FORMATS = ("svg", "png", "pdf", "dot")
COLOURS = {
    "conv": "#9ecae1",
    "fc": "#fdae6b",
    "pool": "#a1d99b",
    "norm": "#fff2a8",
    "activation": "#f4cae4",
    "merge": "#cbc9e2",
    "other": "#f0f0f0",
    "block": "#d9d9d9",
}
INSTALL_HINT = ("install Graphviz: 'apt-get install graphviz' (Debian/Ubuntu) "
                "or 'brew install graphviz' (macOS)")


@dataclass(frozen=True)
class Box:
    """One drawn node: a layer, or a block collapsed into one."""

    key: str
    cluster: tuple[str, ...]  # the scopes it is drawn inside
    label: str  # Graphviz HTML label
    kind: str
    implicit: bool = False  # dashed: archcalc added it (hidden activation, flatten, auto shortcut)
    small: bool = False


@dataclass
class _Cluster:
    boxes: list[Box] = field(default_factory=list)
    children: dict[str, _Cluster] = field(default_factory=dict)


# -- what to draw ------------------------------------------------------------------------


def box_keys(analysis: Analysis, depth: int | None) -> dict[int, str]:
    """The box each node is drawn in: `nID` for a layer, `blockK` shared by a collapsed block."""
    blocks: dict[tuple[str, ...], str] = {}
    keys = {}
    for n in analysis.graph:
        if depth is not None and len(n.scope) > depth:
            keys[n.id] = blocks.setdefault(n.scope[: depth + 1], f"block{len(blocks)}")
        else:
            keys[n.id] = f"n{n.id}"
    return keys


def boxes(analysis: Analysis, depth: int | None = None) -> list[Box]:
    """The boxes in topological order of their first layer."""
    groups: dict[str, list[Node]] = {}
    for node_id, key in box_keys(analysis, depth).items():
        groups.setdefault(key, []).append(analysis.graph.node(node_id))
    out = []
    for key, nodes in groups.items():
        if key.startswith("block"):
            assert depth is not None
            out.append(Box(key, nodes[0].scope[:depth], _block_label(analysis, nodes, depth), "block"))
        else:
            n = nodes[0]
            label = _layer_label(analysis, n)
            out.append(Box(key, n.scope, label, n.layer.kind, n.implicit, _small(analysis, n)))
    return out


def edges(analysis: Analysis, depth: int | None = None) -> list[tuple[str, str, str]]:
    """(from, to, shape) between boxes, once each; edges inside a collapsed block vanish."""
    keys = box_keys(analysis, depth)
    seen: dict[tuple[str, str], str] = {}
    for n in analysis.graph:
        for i in n.inputs:
            if keys[i] != keys[n.id]:
                seen.setdefault((keys[i], keys[n.id]), format_shape(analysis.graph.node(i).shape))
    return [(a, b, shape) for (a, b), shape in seen.items()]


def _small(analysis: Analysis, n: Node) -> bool:
    """Implicit layers without weights (hidden ReLU, flatten) are small; a projection shortcut is not."""
    return n.implicit and not analysis.counts[n.id].params


def _layer_label(analysis: Analysis, n: Node) -> str:
    text = html.escape(n.text)
    if _small(analysis, n):
        return f'<<font point-size="9">{text}</font>>'
    params = analysis.counts[n.id].params
    lines = [f"<b>{text}</b>", format_shape(n.shape)]
    if params:
        lines.append(f'<font point-size="10">{params:,} params</font>')
    return "<" + "<br/>".join(lines) + ">"


def _block_label(analysis: Analysis, nodes: list[Node], depth: int) -> str:
    params = sum(analysis.counts[n.id].params for n in nodes)
    last = max(nodes, key=lambda n: n.id)
    return (f"<<b>{html.escape(nodes[0].scope[depth])}</b><br/>"
            f'<font point-size="10">{len(nodes)} layers · {params:,} params</font><br/>{format_shape(last.shape)}>')


# -- DOT ------------------------------------------------------------------------------------


def digraph(analysis: Analysis, depth: int | None = None, rankdir: str = "TB") -> graphviz.Digraph:
    """The whole diagram as a graphviz.Digraph (imported lazily: only drawing needs it)."""
    import graphviz

    if rankdir not in ("TB", "LR"):
        raise UsageError(f"rankdir must be TB or LR, not '{rankdir}'")
    g = graphviz.Digraph(analysis.graph.name)
    g.attr(rankdir=rankdir, fontname="Helvetica", label=_title(analysis), labelloc="t", fontsize="16")
    g.attr("node", shape="box", style="rounded,filled", fontname="Helvetica", fontsize="11")
    g.attr("edge", fontname="Helvetica", fontsize="9", color="#555555")
    drawn = boxes(analysis, depth)
    _emit(g, _tree(drawn), [0])
    for src, dst, shape in edges(analysis, depth):
        g.edge(src, dst, label=shape)
    _legend(g, {b.kind for b in drawn}, any(b.implicit for b in drawn))
    return g


def to_dot(analysis: Analysis, depth: int | None = None, rankdir: str = "TB") -> str:
    return str(digraph(analysis, depth, rankdir).source)


def _title(analysis: Analysis) -> str:
    t = analysis.totals
    return (f"{analysis.graph.name}: input {format_shape(analysis.graph.input.shape)}, "
            f"{t.params:,} params, {t.macs:,} MACs")


def _tree(drawn: list[Box]) -> _Cluster:
    root = _Cluster()
    for b in drawn:
        here = root
        for scope in b.cluster:
            here = here.children.setdefault(scope, _Cluster())
        here.boxes.append(b)
    return root


def _emit(g: graphviz.Digraph, cluster: _Cluster, counter: list[int]) -> None:
    for b in cluster.boxes:
        attrs = {"label": b.label, "fillcolor": COLOURS.get(b.kind, COLOURS["other"])}
        if b.implicit:
            attrs |= {"style": "rounded,dashed,filled"}
        if b.small:
            attrs |= {"height": "0.2", "margin": "0.04,0.02"}
        if b.kind == "block":
            attrs |= {"shape": "box3d", "style": "filled"}
        g.node(b.key, **attrs)
    for title, child in cluster.children.items():
        counter[0] += 1
        with g.subgraph(name=f"cluster_{counter[0]}") as sub:
            sub.attr(label=title, style="rounded,dashed", color="#888888", fontsize="11")
            _emit(sub, child, counter)


def _legend(g: graphviz.Digraph, kinds: set[str], implicit: bool) -> None:
    shown = [k for k in COLOURS if k in kinds]
    with g.subgraph(name="cluster_legend") as leg:
        leg.attr(label="legend", style="rounded", color="#bbbbbb", fontsize="11", ranksep="0.1")
        keys = []
        for kind in shown:
            attrs = {"label": kind, "fillcolor": COLOURS[kind], "fontsize": "9"}
            if kind == "block":
                attrs |= {"label": "block (collapsed)", "shape": "box3d", "style": "filled"}
            leg.node(f"legend_{kind}", **attrs)
            keys.append(f"legend_{kind}")
        if implicit:
            leg.node("legend_implicit", label="implicit (hidden ReLU, flatten, shortcut)", fontsize="9",
                     style="rounded,dashed,filled", fillcolor=COLOURS["other"])
            keys.append("legend_implicit")
        for a, b in pairwise(keys):  # invisible edges stack the legend
            leg.edge(a, b, style="invis")


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

    Without Graphviz's `dot` program the DOT text is still written, next to `path`
    with the same stem, and a RenderError says how to install it.
    """
    path = Path(path)
    fmt = output_format(path)
    g = digraph(analysis, depth, rankdir)
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


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as e:
        raise RenderError(f"cannot write {path}: {e.strerror}") from None


def _draw(g: graphviz.Digraph, fmt: str) -> bytes:
    import graphviz

    try:
        return bytes(g.pipe(format=fmt))
    except graphviz.ExecutableNotFound:
        raise RenderError(f"Graphviz's 'dot' program could not be run; {INSTALL_HINT}") from None
    except graphviz.CalledProcessError as e:
        detail = (e.stderr or b"").decode(errors="replace").strip()
        raise RenderError(f"'dot' failed to draw the diagram: {detail}") from None


