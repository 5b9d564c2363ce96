"""The layer graph: typed nodes with ordered inputs, and the verbs passes and renderers use."""

from archcalc.graph.layer_graph import LayerGraph
from archcalc.graph.nodes import Draft, DraftGraph, Expectation, Node, Tie

__all__ = ["Draft", "DraftGraph", "Expectation", "LayerGraph", "Node", "Tie"]
