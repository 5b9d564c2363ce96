"""Spec text → syntax tree → layer graph."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archcalc.graph import LayerGraph
from archcalc.lang.lower import lower, parse_shape
from archcalc.lang.parser import parse
from archcalc.tensor import Shape


def load(text: str, filename: str = "<spec>", input_shape: Shape | None = None,
         params: Mapping[str, Any] | None = None) -> LayerGraph:
    """Parse and lower spec text in one step; `params` override the spec's `param` values."""
    return lower(parse(text, filename), input_shape, params)


__all__ = ["load", "lower", "parse", "parse_shape"]
