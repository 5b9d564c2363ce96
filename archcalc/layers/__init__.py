"""Every layer type archcalc knows, registered by importing its module."""

from archcalc.layers import (  # noqa: F401
    activation,
    attention,
    classic,
    conv,
    embeddings,
    linear,
    norm,
    norms,
    pool,
    recurrent,
    sequence,
    shuffle,
    stochastic,
    structural,
    tensors,
    transformer,
    unknown,
)
from archcalc.layers.base import REGISTRY, Counts, LayerType, OtherOps, find
from archcalc.layers.window import GLOBAL, UNKNOWN, Geometry
from archcalc.tensor import Shape

__all__ = ["GLOBAL", "UNKNOWN", "REGISTRY", "Counts", "Geometry", "LayerType", "OtherOps", "Shape", "find"]
