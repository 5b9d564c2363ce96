"""Convolution, 1-D/2-D/3-D by the input's rank: `conv3-64`, `conv11-96/s4/p0`, `conv1x7-192`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archcalc.layers.base import (
    Arg,
    Args,
    Counts,
    Formula,
    Geometry,
    LayerArgError,
    LayerType,
    OtherOps,
    Shape,
    Shaped,
    format_shape,
    per_axis,
    prod,
    register,
    window_output,
)

SPATIAL_OPTIONS = {"s": "stride", "p": "padding", "d": "dilation"}


def spatial_rank(inputs: Sequence[Shape], layer: str) -> int:
    rank = len(inputs[0]) - 1
    if rank not in (1, 2, 3):
        raise LayerArgError(
            f"'{layer}' needs a C×L, C×H×W or C×D×H×W input, got {format_shape(inputs[0])}"
        )
    return rank



def window_shape(layer: str, a: Args, inputs: Sequence[Shape], channels: int) -> Shaped:
    """Output shape of a sliding window (conv or pool); warns when the floor cuts."""
    g = window_geometry(a, spatial_rank(inputs, layer))
    ceil = bool(a.get("ceil_mode"))
    sizes, warnings = [], []
    for axis, size in enumerate(inputs[0][1:]):
        k, s, p, d = g.kernel[axis], g.stride[axis], g.padding[axis], g.dilation[axis]
        out, exact = window_output(size, k, s, p, d, ceil)
        if out < 1:
            raise LayerArgError(
                f"kernel {d * (k - 1) + 1} does not fit in input size {size} "
                f"with padding {p} (output would be {out})"
            )
        if not exact:
            warnings.append(_inexact_warning(size, k, s, p, d, out, ceil))
        sizes.append(out)
    return Shaped((channels, *sizes), tuple(dict.fromkeys(warnings)))


def _inexact_warning(size: int, k: int, s: int, p: int, d: int, out: int, ceil: bool) -> str:
    eff = d * (k - 1) + 1
    how = "rounded up (ceil_mode)" if ceil else "floored"
    return (
        f"({size} − {eff} + 2·{p})/{s} + 1 = {(size - eff + 2 * p) / s + 1:g} is not whole: "
        f"{how} to {out}"
    )


AXIS_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def window_formulas(a: Args, inputs: Sequence[Shape], out: Shape, g: Geometry) -> list[Formula]:
    """The output size per spatial axis, worked; axes computed alike share one formula."""
    alike: dict[tuple[int, int, int, int, int], list[int]] = {}
    for axis, size in enumerate(inputs[0][1:]):
        key = (size, g.kernel[axis], g.stride[axis], g.padding[axis], g.dilation[axis])
        alike.setdefault(key, []).append(axis)
    names = AXIS_NAMES[len(g.kernel)]
    ceil = bool(a.get("ceil_mode"))
    return [
        _window_formula("output " + ", ".join(names[i] for i in axes), *key, ceil, out[1 + axes[0]])
        for key, axes in alike.items()
    ]


def _window_formula(what: str, size: int, k: int, s: int, p: int, d: int, ceil: bool, value: int) -> Formula:
    """`⌊(I − K + 2·P)/S⌋ + 1`, with the fraction shown when it is not whole."""
    eff = d * (k - 1) + 1
    span = size - eff + 2 * p
    lo, hi = ("⌈", "⌉") if ceil else ("⌊", "⌋")
    text = f"{lo}({size} − {eff} + 2·{p})/{s}{hi} + 1"
    notes = []
    if (-(-span // s) if ceil else span // s) + 1 != value:
        text += " − 1"  # PyTorch's ceil_mode rule
        notes.append("the last window would start in the right padding")
    elif span % s:
        text += f" = {lo}{span / s:g}{hi} + 1"
        notes.append("not whole: " + ("rounded up" if ceil else "floored"))
    if d > 1:
        notes.append(f"effective kernel D·(K − 1) + 1 = {d}·({k} − 1) + 1 = {eff}")
    return Formula(what, text, value, "; ".join(notes))


def window_geometry(a: Args, rank: int) -> Geometry:
    kernel = per_axis(a["kernel"], rank, "kernel")
    dilation = per_axis(a.get("dilation") or 1, rank, "dilation")
    stride = per_axis(a["stride"] if a.get("stride") is not None else kernel, rank, "stride")
    if a.get("padding") is None:  # "same"-style default: what VGG's conv3-64 means
        padding = tuple(dd * (k - 1) // 2 for k, dd in zip(kernel, dilation))
    else:
        padding = per_axis(a["padding"], rank, "padding")
    return Geometry(kernel, stride, padding, dilation)


@register
class Conv(LayerType):
    name = "conv"
    aliases = ("convolution",)
    patterns = (r"conv(?P<kernel>\d+(?:x\d+)*)-(?P<out_channels>\d+)",)
    options = {**SPATIAL_OPTIONS, "g": "groups"}
    flags = {"nobias": ("bias", False), "bias": ("bias", True)}
    args = (
        Arg("out_channels", "int", required=True, aliases=("c", "out", "filters"), minimum=1),
        Arg("kernel", "size", required=True, aliases=("k", "kernel_size"), minimum=1),
        Arg("stride", "size", 1, aliases=("s",), minimum=1),
        Arg("padding", "size", None, aliases=("p", "pad"), minimum=0),
        Arg("dilation", "size", 1, aliases=("d",), minimum=1),
        Arg("groups", "int", 1, aliases=("g",), minimum=1),
        Arg("bias", "bool", True),
    )
    kind = "conv"
    layout = "channels"
    weighted = True
    summary = "convolution; padding defaults to dilation·(kernel−1)//2 ('same' at stride 1)"
    example = "conv3-64, conv11-96/s4/p0, conv3-32/g32/nobias, conv(k=1x7, c=192)"

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        cin, cout, groups = inputs[0][0], a["out_channels"], a["groups"]
        if cin % groups or cout % groups:
            raise LayerArgError(
                f"groups={groups} must divide both the input channels ({cin}) "
                f"and the output channels ({cout})"
            )
        return window_shape(self.name, a, inputs, cout)

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        kernel = per_axis(a["kernel"], len(out) - 1)
        weights = out[0] * (inputs[0][0] // a["groups"]) * prod(kernel)
        return Counts(weights=weights, biases=out[0] if a["bias"] else 0)

    def macs(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        """Cout·∏O·(Cin/groups)·∏K: one MAC per weight per output position."""
        kernel = per_axis(a["kernel"], len(out) - 1)
        return prod(out) * (inputs[0][0] // a["groups"]) * prod(kernel)

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        return OtherOps(adds=prod(out) if a["bias"] else 0)

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        """K·K·Cin·Cout (+ Cout) parameters; Cout·H·W · Cin·K·K MACs; Cin becomes (Cin/groups)."""
        g = self.geometry(a, inputs)
        cin, cout, groups = inputs[0][0], out[0], a["groups"]
        per_group = f"({cin}/{groups})" if groups > 1 else str(cin)
        kernel = "·".join(map(str, g.kernel))
        weights = f"{kernel}·{per_group}·{cout}"
        counts = self.counts(a, inputs, out)
        params = f"{weights} + {cout}" if a["bias"] else weights
        return [
            *window_formulas(a, inputs, out, g),
            Formula("weights", weights, counts.weights),
            Formula("params", params, counts.params, "" if a["bias"] else "no bias"),
            Formula("MACs", f"{'·'.join(map(str, out))} · {per_group}·{kernel}", self.macs(a, inputs, out)),
        ]

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> Geometry:
        return window_geometry(a, len(inputs[0]) - 1)

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        g = self.geometry(a, inputs)
        cls: Any = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[len(g.kernel) - 1]
        return cls(
            inputs[0][0], a["out_channels"], g.kernel, stride=g.stride, padding=g.padding,
            dilation=g.dilation, groups=a["groups"], bias=a["bias"],
        )
