"""The vocabulary of tensors every other module speaks: shapes, their sizes and their axis names.

Shapes are channels first without the batch axis, as PyTorch holds them (C×H×W, C×L,
C×D×H×W; a sequence T×F). This module sits below the layer registry so that layers,
passes and reports write and name a shape the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

Shape = tuple[int, ...]

# the spatial axes of a channels-first tensor, by their number: one table for every reader
SPATIAL_AXES: dict[int, tuple[str, ...]] = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def prod(values: Sequence[int]) -> int:
    return math.prod(values)


def format_shape(shape: Sequence[int]) -> str:
    """3×224×224: how every message, report and diagram writes a shape."""
    return "×".join(map(str, shape))


def spatial_axis_names(rank: int) -> tuple[str, ...]:
    """('H', 'W') for two spatial axes; axis0, axis1… past three."""
    return SPATIAL_AXES.get(rank, tuple(f"axis{i}" for i in range(rank)))


def shape_axis_names(rank: int) -> tuple[str, ...]:
    """The axes of a whole channels-first shape: ('F',) for a flat vector, ('C', 'H', 'W') for 3 axes."""
    return ("F",) if rank == 1 else ("C", *spatial_axis_names(rank - 1))


def channels_last(shape: tuple[Any, ...]) -> tuple[Any, ...]:
    """C×H×W → H×W×C, the order course notes write shapes in (a flat shape stays as it is)."""
    return (*shape[1:], shape[0]) if len(shape) > 1 else shape
