"""Every layer type archcalc knows, registered by importing its module."""

from archcalc.layers import activation, classic, conv, linear, norm, pool, recurrent, sequence, structural  # noqa: F401
from archcalc.layers.base import GLOBAL, REGISTRY, Counts, Geometry, LayerType, OtherOps, Shape, find

__all__ = ["GLOBAL", "REGISTRY", "Counts", "Geometry", "LayerType", "OtherOps", "Shape", "find"]
