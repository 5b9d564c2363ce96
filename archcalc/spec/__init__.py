"""Spec text → syntax tree → layer graph."""

from __future__ import annotations

from archcalc.graph import LayerGraph
from archcalc.layers import Shape
from archcalc.spec.lower import lower, parse_shape
from archcalc.spec.parser import parse


def load(text: str, filename: str = "<spec>", input_shape: Shape | None = None) -> LayerGraph:
    """Parse and lower spec text in one step."""
    return lower(parse(text, filename), input_shape)


__all__ = ["load", "lower", "parse", "parse_shape"]
