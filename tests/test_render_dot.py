"""`diagram.Dot` writes DOT text byte for byte as the graphviz package does (render's output depends on it)."""

from __future__ import annotations

import graphviz
import pytest

from archcalc import analyze
from archcalc.report import diagram

AWKWARD = ["", "a", "node", "Node", "a b", "-4.2", ".42", "1abc", "a-b", "#555555", "rounded,filled", "120,300",
           "<<b>x</b>>", "<>", "<", ">", "<a>\n", '"', '\\"', '\\\\"', 'x"y', "é → 3×3"]


def _both(name: str) -> tuple[graphviz.Digraph, diagram.Dot]:
    return graphviz.Digraph(name), diagram.Dot(name)


@pytest.mark.parametrize("text", AWKWARD)
def test_names_and_values_are_quoted_as_graphviz_quotes_them(text: str) -> None:
    ours = diagram._quote(text)
    assert ours == graphviz.quoting.quote(text)
    want, got = _both(text)
    for g in (want, got):
        g.attr(label=text, rankdir="TB")
        g.attr("node", shape="box", style=text)
        g.node("n0", label=text, fillcolor=text, ordering="in")
        g.node(text or "x", z="1", a=text)
        g.edge("n0", text or "x")
    assert got.source == want.source


def test_nested_subgraphs_indent_as_graphviz_does() -> None:
    want, got = _both("g")
    for g in (want, got):
        g.attr("edge", color="#555555", arrowsize="0.7")
        with g.subgraph(name="cluster_1") as sub:
            sub.attr(label="layer1 = stage#1", style="rounded,dashed", margin="14")
            sub.node("n1", label="<<b>conv3-64</b>>")
            with sub.subgraph(name="cluster_2") as inner:
                inner.attr(label="", peripheries="0")
                inner.node("n2", label="<relu>")
        g.edge("n1", "n2")
    assert got.source == want.source


@pytest.mark.parametrize(("spec", "depth"), [("googlenet", 1), ("resnet18", None), ("densenet121", 0),
                                            ("gpt2", None)])
def test_a_drawing_written_by_graphviz_is_the_same_text(spec: str, depth: int | None,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The same diagram (clusters, collapsed blocks, concat ordering) built with graphviz.Digraph."""
    a = analyze(spec)
    ours = diagram.digraph(a, depth).source
    monkeypatch.setattr(diagram, "Dot", graphviz.Digraph)
    theirs = diagram.digraph(a, depth).source
    assert isinstance(theirs, str) and ours == theirs
