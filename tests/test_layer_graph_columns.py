"""LayerGraph's verbs read its edges as two columns made in C (the tensor read, its reader): each
verb gives what a walk of every node's inputs gives, and the lint still refuses a bad graph."""

from __future__ import annotations

import pytest

from archcalc import load_text
from archcalc.graph import LayerGraph, Node
from archcalc.layers import REGISTRY
from archcalc.zoo import read

SPECS = ["resnet18", "inception_v3", "gpt2", "densenet121", "lenet5"]
READ_TWICE = "input 4x8x8\nx = conv3-4\ny = add(@x, @x, @x)\nz = relu\nside = relu(@x)\nadd(@z, @y)\n"


def _graph(name: str) -> LayerGraph:
    return load_text(READ_TWICE) if name == "read twice" else load_text(read(name).text)


def _walked(graph: LayerGraph) -> tuple[list[list[int]], int]:
    """Every node's consumers (a tensor read twice by one node: once) and the depth, node by node."""
    consumers: list[list[int]] = [[] for _ in graph]
    best: list[int] = []
    for n in graph:
        for i in dict.fromkeys(n.inputs):
            consumers[i].append(n.id)
        layer = REGISTRY[n.type]
        weight = layer.path_depth if layer.path_depth is not None else int(layer.weighted)
        best.append(weight + max([best[i] for i in n.inputs], default=0))
    return consumers, max(best, default=0)


@pytest.mark.parametrize("name", [*SPECS, "read twice"])
def test_the_verbs_are_what_a_walk_of_the_inputs_gives(name: str) -> None:
    graph = _graph(name)
    consumers, depth = _walked(graph)
    # asked before every node's list is made (found among the edges), then after
    assert [graph._readers_of(i) for i in range(len(graph))] == consumers
    assert "_consumers" not in graph.__dict__
    assert [graph.consumers(i) for i in range(len(graph))] == consumers
    assert [graph._readers_of(i) for i in range(len(graph))] == consumers
    assert graph.last_uses() == [c[-1] if c else i for i, c in enumerate(consumers)]
    assert graph.last_readers(-7) == [c[-1] if c else -7 for c in consumers]
    assert [n.id for n in graph.outputs()] == [i for i, c in enumerate(consumers) if not c]
    assert graph.depth() == depth


def test_the_lint_refuses_a_later_input_and_ids_out_of_order() -> None:
    nodes = list(load_text(READ_TWICE))
    with pytest.raises(AssertionError, match="node 2 uses a later node as input"):
        LayerGraph([*nodes[:2], nodes[2]._replace(inputs=(1, 3)), *nodes[3:]], "bad")
    with pytest.raises(AssertionError, match="node 1 uses a later node as input"):
        LayerGraph([nodes[0], nodes[1]._replace(inputs=(1,)), *nodes[2:]], "bad")
    with pytest.raises(AssertionError, match="node ids must be 0..n-1"):
        LayerGraph([nodes[0], nodes[2], nodes[1], *nodes[3:]], "bad")
    assert isinstance(LayerGraph(nodes, "good").node(0), Node)
