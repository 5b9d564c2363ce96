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

# The largest size of one axis (and of a kernel, stride, padding or channel count): 2**40, about
# 1.1·10¹². No real network comes near it, and below it every figure archcalc derives (an
# element count, a receptive field in floats, a ratio) stays finite and prints in a few digits.
MAX_SIZE = 2**40
MAX_SIZE_TEXT = "2**40 = 1,099,511,627,776"


def size_text(n: int) -> str:
    """A whole number as a message writes it: 1,234,567; past 60 digits only its magnitude
    (Python refuses to print an int of more than 4,300 digits at all)."""
    if abs(n).bit_length() > 199:
        return f"{'-' if n < 0 else ''}more than 2**{abs(n).bit_length() - 1}"
    return f"{n:,}"

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


def axis_of(dim: int, rank: int) -> int:
    """A PyTorch dim (the batch is dim 0; negative counts from the end) → the index into a
    shape without the batch axis, or ValueError naming what is wrong."""
    full = rank + 1
    if not -full <= dim < full:
        raise ValueError(f"dim {dim} is out of range for a tensor of {full} dims (with the batch)")
    index = dim % full
    if index == 0:
        raise ValueError("dim 0 is the batch axis, which every layer keeps")
    return index - 1


BATCH = 0  # stands for the batch axis in a whole shape (a real size is at least 1)


def whole(shape: Shape, batched: bool) -> Shape:
    """The shape with the batch axis in front (as BATCH) where the tensor has one."""
    return (BATCH, *shape) if batched else tuple(shape)


def broadcast_whole(shapes: Sequence[Shape]) -> Shape:
    """PyTorch's broadcasting of whole shapes (the batch axis written BATCH): right-aligned, sizes
    equal or 1; a free tensor's size may meet the batch axis only as 1."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(rank):
        sizes = {s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0}
        real = sizes - {1, BATCH}
        if BATCH in sizes and real:
            raise ValueError("a free tensor's size meets the batch axis (make it 1 there)")
        if len(real) > 1:
            raise ValueError(f"sizes {', '.join(map(str, sorted(real)))} do not broadcast")
        out.append(BATCH if BATCH in sizes else (real.pop() if real else 1))
    return tuple(out)


def broadcast(shapes: Sequence[Shape], batched: Sequence[bool]) -> Shape:
    """PyTorch's broadcasting of element-wise inputs, each with the batch axis in front where it
    has one (a free parameter has none): the result's shape without the batch axis."""
    out = broadcast_whole([whole(s, b) for s, b in zip(shapes, batched)])
    return out[1:] if any(batched) else out
