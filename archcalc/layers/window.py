"""Sliding windows: what convolution, pooling and LeNet-5's layers share.

A window layer's geometry per spatial axis (kernel K, stride S, padding P, dilation D)
gives its output size, the formula a student writes for it, and its receptive-field
step. The rules live here once; conv.py, pool.py and classic.py only say which
arguments their windows take.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction

from archcalc.layers.base import Args, Formula, LayerArgError, Shaped, per_axis
from archcalc.records import record
from archcalc.tensor import Shape, format_shape, spatial_axis_names

GLOBAL = "global"  # the geometry of a layer whose every output sees the whole input
UNKNOWN = "unknown"  # positions moved (a reshape, a permute): no window describes where a unit looks

# `/s2`, `/p1`, `/d2`: the short options every window layer understands
SPATIAL_OPTIONS = {"s": "stride", "p": "padding", "d": "dilation"}


Num = int | Fraction  # a receptive-field jump: whole, or a fraction of an input pixel


def exact(value: Num) -> Num:
    """A whole Fraction as the int it is; anything else as it is (so integers stay integers)."""
    return value.numerator if isinstance(value, Fraction) and value.denominator == 1 else value


class Window:
    """Which input positions each output position reads, per spatial axis (the receptive-field pass,
    the path counts and the gradient probe all walk it).

    `reads(axis, o)` lists the input positions output position o reads, in order, padding positions
    included (as if the input went on); `period(axis)` = (p_out, p_in) says the pattern repeats:
    output o + p_out reads what o reads, moved by p_in. A window has (1, S); a layer going up in
    resolution reads the same input for several outputs, and its period is longer.
    """

    __slots__ = ()

    def reads(self, axis: int, o: int) -> Sequence[int]:
        raise NotImplementedError

    def period(self, axis: int) -> tuple[int, int]:
        raise NotImplementedError


@record(slots=True)
class Geometry(Window):
    """A sliding window per spatial axis: convolution and pooling, or (`transposed`) the window of
    a transposed convolution with its own kernel, stride, padding and dilation."""

    kernel: Shape
    stride: Shape
    padding: Shape  # before each axis (left, top); the receptive field's start moves by it
    dilation: Shape
    padding_after: Shape | None = None  # where it differs from `padding` (TensorFlow's SAME)
    transposed: bool = False

    @property
    def after(self) -> Shape:
        return self.padding if self.padding_after is None else self.padding_after

    def reads(self, axis: int, o: int) -> Sequence[int]:
        """A window reads o·S − P + t·D, t < K. A transposed one is the direct convolution over
        its input with S − 1 zeros between the pixels, padded by D·(K − 1) − P: input i reaches
        outputs i·S − P + t·D, so o reads every i = (o + P − t·D)/S that is whole."""
        k, s, p, d = self.kernel[axis], self.stride[axis], self.padding[axis], self.dilation[axis]
        if not self.transposed:
            return range(o * s - p, o * s - p + d * (k - 1) + 1, d)
        return sorted({(o + p - t * d) // s for t in range(k) if (o + p - t * d) % s == 0})

    def period(self, axis: int) -> tuple[int, int]:
        return (self.stride[axis], 1) if self.transposed else (1, self.stride[axis])

    def rf_step(self, axis: int, size: Num, jump: Num, after: Num) -> str:
        """`r = r_in + D·(K − 1)·j_in` with the numbers of one axis put in."""
        k, d = self.kernel[axis], self.dilation[axis]
        return f"r = r_in + D·(K − 1)·j_in = {size} + {d}·({k} − 1)·{jump} = {after}"


@record
class Resampling(Window):
    """Interpolation per spatial axis, as PyTorch's upsample kernels index: output o's source
    coordinate is x = origin + o·step (in input pixels); `nearest` reads ⌊x⌋, `linear` ⌊x⌋ and
    ⌊x⌋ + 1 (⌊x⌋ alone where x is whole: the other weight is 0), `cubic` ⌊x⌋ − 1 … ⌊x⌋ + 2 (x alone
    where it is whole). Positions past the border are listed as they are (PyTorch clamps them to
    the border pixel, which is read anyway)."""

    mode: str  # nearest, linear or cubic
    origin: tuple[Fraction, ...]
    step: tuple[Fraction, ...]

    def reads(self, axis: int, o: int) -> Sequence[int]:
        x = self.origin[axis] + o * self.step[axis]
        low = math.floor(x)
        if self.mode == "nearest" or x == low:
            return [low]
        return [low, low + 1] if self.mode == "linear" else [low - 1, low, low + 1, low + 2]

    def period(self, axis: int) -> tuple[int, int]:
        step = self.step[axis]
        return step.denominator, step.numerator


def window_output(
    size: int, kernel: int, stride: int, padding: int, dilation: int = 1, ceil_mode: bool = False,
    padding_after: int | None = None,
) -> tuple[int, bool]:
    """PyTorch's output size of a sliding window on one axis, and whether it divided exactly.

    O = floor((I + 2P - D(K-1) - 1)/S) + 1; with ceil_mode the division rounds up but
    the last window must start inside the input or the left padding. Uneven padding
    (TensorFlow's SAME) puts P_before + P_after in place of 2P.
    """
    span = size + padding + (padding if padding_after is None else padding_after) - dilation * (kernel - 1) - 1
    exact = span % stride == 0
    # floor division as PyTorch's div_rtn: with ceil_mode a window hanging off the end
    # still counts (span may be negative: a 2-wide ceil pool on a 1-wide input gives 1)
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return max(out, 0), exact


def stride_between(size: int, target: int) -> int | None:
    """The smallest stride S with which a 1×1 window without padding maps `size` positions to
    `target` (⌊(size − 1)/S⌋ + 1 = target), or None when no stride does."""
    if target == 1:
        return max(1, size)
    stride = (size - 1) // target + 1
    return stride if target > 1 and stride <= (size - 1) // (target - 1) else None


def spatial_rank(inputs: Sequence[Shape], layer: str) -> int:
    rank = len(inputs[0]) - 1
    if rank not in (1, 2, 3):
        raise LayerArgError(
            f"'{layer}' needs a C×L, C×H×W or C×D×H×W input, got {format_shape(inputs[0])}"
        )
    return rank


def window_geometry(a: Args, rank: int, sizes: Sequence[int] | None = None) -> Geometry:
    kernel = per_axis(a["kernel"], rank, "kernel")
    dilation = per_axis(a.get("dilation") or 1, rank, "dilation")
    stride = per_axis(a["stride"] if a.get("stride") is not None else kernel, rank, "stride")
    if a.get("same"):
        if a.get("padding") is not None:
            raise LayerArgError("/same computes the padding: give no padding beside it")
        if sizes is None:
            raise LayerArgError("/same padding depends on the input size")
        return same_geometry(kernel, stride, dilation, sizes)
    if a.get("padding") is None:  # "same"-style default: what VGG's conv3-64 means
        padding = tuple(dd * (k - 1) // 2 for k, dd in zip(kernel, dilation))
    else:
        padding = per_axis(a["padding"], rank, "padding")
    return Geometry(kernel, stride, padding, dilation)


def same_geometry(kernel: Shape, stride: Shape, dilation: Shape, sizes: Sequence[int]) -> Geometry:
    """TensorFlow's SAME padding: output ⌈I/S⌉; the padding that takes, split with the odd one
    after (a 3×3/2 conv pads 0 and 1 on an even input, 1 and 1 on an odd one)."""
    before, after = [], []
    for size, k, s, d in zip(sizes, kernel, stride, dilation):
        total = max((-(-size // s) - 1) * s + d * (k - 1) + 1 - size, 0)
        before.append(total // 2)
        after.append(total - total // 2)
    return Geometry(kernel, stride, tuple(before), dilation, None if before == after else tuple(after))


def window_shape(layer: str, a: Args, inputs: Sequence[Shape], channels: int) -> Shaped:
    """Output shape of a sliding window (conv or pool); warns when the floor cuts."""
    g = window_geometry(a, spatial_rank(inputs, layer), inputs[0][1:])
    ceil = bool(a.get("ceil_mode"))
    sizes, warnings = [], []
    for axis, size in enumerate(inputs[0][1:]):
        k, s, p, d = g.kernel[axis], g.stride[axis], g.padding[axis], g.dilation[axis]
        out, exact = window_output(size, k, s, p, d, ceil, g.after[axis])
        if out < 1:
            raise LayerArgError(
                f"kernel {d * (k - 1) + 1} does not fit in input size {size} "
                f"with padding {p} (output would be {out})"
            )
        if not exact:
            warnings.append(_inexact_warning(size, k, s, p, d, out, ceil))
        sizes.append(out)
    return Shaped((channels, *sizes), tuple(dict.fromkeys(warnings)))


def _ratio(numerator: int, denominator: int) -> str:
    """numerator/denominator as `:g` writes a float (55.25, 0.333333), exactly for any size."""
    return f"{Decimal(numerator) / Decimal(denominator):.6g}"


def _inexact_warning(size: int, k: int, s: int, p: int, d: int, out: int, ceil: bool) -> str:
    eff = d * (k - 1) + 1
    how = "rounded up (ceil_mode)" if ceil else "floored"
    return (
        f"({size} − {eff} + 2·{p})/{s} + 1 = {_ratio(size - eff + 2 * p + s, s)} is not whole: "
        f"{how} to {out}"
    )


def window_formulas(a: Args, inputs: Sequence[Shape], out: Shape, g: Geometry) -> list[Formula]:
    """The output size per spatial axis, worked; axes computed alike share one formula."""
    alike: dict[tuple[int, int, int, int, int, int], list[int]] = {}
    for axis, size in enumerate(inputs[0][1:]):
        key = (size, g.kernel[axis], g.stride[axis], g.padding[axis], g.dilation[axis], g.after[axis])
        alike.setdefault(key, []).append(axis)
    names = spatial_axis_names(len(g.kernel))
    ceil = bool(a.get("ceil_mode"))
    return [
        _window_formula("output " + ", ".join(names[i] for i in axes), *key, ceil, out[1 + axes[0]])
        for key, axes in alike.items()
    ]


def _window_formula(what: str, size: int, k: int, s: int, p: int, d: int, after: int, ceil: bool,
                    value: int) -> Formula:
    """`⌊(I − K + 2·P)/S⌋ + 1` (`+ P_l + P_r` where uneven), with the fraction shown when it is not whole."""
    eff = d * (k - 1) + 1
    span = size - eff + p + after
    lo, hi = ("⌈", "⌉") if ceil else ("⌊", "⌋")
    pads = f"2·{p}" if p == after else f"{p} + {after}"
    text = f"{lo}({size} − {eff} + {pads})/{s}{hi} + 1"
    notes = []
    if (-(-span // s) if ceil else span // s) + 1 != value:
        text += " − 1"  # PyTorch's ceil_mode rule
        notes.append("the last window would start in the right padding")
    elif span % s:
        text += f" = {lo}{_ratio(span, s)}{hi} + 1"
        notes.append("not whole: " + ("rounded up" if ceil else "floored"))
    if d > 1:
        notes.append(f"effective kernel D·(K − 1) + 1 = {d}·({k} − 1) + 1 = {eff}")
    return Formula(what, text, value, "; ".join(notes))
