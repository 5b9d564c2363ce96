"""Every layer type archcalc knows, registered by importing its module."""

from archcalc.layers import activation, classic, conv, linear, norm, pool, recurrent, sequence, structural  # noqa: F401
from archcalc.layers.base import REGISTRY, Counts, LayerType, OtherOps, find
from archcalc.layers.window import GLOBAL, Geometry
from archcalc.tensor import Shape

__all__ = ["GLOBAL", "REGISTRY", "Counts", "Geometry", "LayerType", "OtherOps", "Shape", "find"]
