"""Layers that move or merge tensors: input, flatten, dropout, identity, add, concat, slice, mul,
and the auto shortcut that a residual resolves once its shapes are known."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archcalc.layers.base import (
    REGISTRY,
    Arg,
    Args,
    Formula,
    Implied,
    LayerArgError,
    LayerType,
    OtherOps,
    Shaped,
    register,
)
from archcalc.layers.window import GLOBAL, stride_between
from archcalc.tensor import Shape, format_shape, prod


@register
class Input(LayerType):
    name = "input"
    internal = True  # written as a header line, never as a layer
    layout = "given"
    args = (Arg("shape", "size", required=True), Arg("name", "str", "input"), Arg("layout", "str", None))
    min_inputs = 0
    max_inputs = 0
    summary = "the network's input (written as the header line `input 3x224x224`, or `input left 3x105x105`)"
    example = "input 3x224x224"

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        shape = tuple(a["shape"])
        warnings: tuple[str, ...] = ()
        if len(shape) == 3 and shape[-1] in (1, 3, 4) and shape[0] > 4 and a.get("layout") in (None, "channels"):
            warnings = (f"{format_shape(shape)} looks channels last; archcalc reads shapes channels first "
                        f"(C×H×W): did you mean {'x'.join(map(str, (shape[-1], *shape[:-1])))}?",)
        return Shaped(shape, warnings)


@register
class Flatten(LayerType):
    name = "flatten"
    summary = "C×H×W → C·H·W (inserted by itself before an FC on a spatial tensor)"
    example = "flatten"

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        return Shaped((prod(inputs[0]),))

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        return [Formula("output F", "·".join(map(str, inputs[0])), out[0])] if len(inputs[0]) > 1 else []

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> str | None:
        return GLOBAL if len(inputs[0]) > 1 else None

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        return nn.Flatten()


@register
class Dropout(LayerType):
    name = "dropout"
    patterns = (r"dropout(?P<p>0?\.\d+)",)
    args = (Arg("p", "float", 0.5),)
    summary = "dropout (an identity at inference); p = 0.5 by default"
    example = "dropout, dropout(p=0.2), dropout0.2"

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        if not 0 <= a["p"] <= 1:
            raise LayerArgError(f"dropout probability p={a['p']:g} is not between 0 and 1")
        return Shaped(inputs[0])

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        return nn.Dropout(a["p"])


@register
class Identity(LayerType):
    name = "identity"
    aliases = ("id",)
    summary = "passes its input through (an empty branch)"
    example = "identity"

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        return nn.Identity()


@register
class Add(LayerType):
    name = "add"
    aliases = ("sum",)
    kind = "merge"
    min_inputs = 2
    max_inputs = None
    summary = "element-wise sum of inputs of one shape (a residual connection)"
    example = "add(@a, @b)"

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        first = inputs[0]
        for other in inputs[1:]:
            if other != first:
                raise LayerArgError(
                    "cannot add tensors of different shapes: "
                    + " + ".join(format_shape(s) for s in inputs)
                )
        return Shaped(first)

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        return OtherOps(adds=prod(out) * (len(inputs) - 1))

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import Add as TorchAdd

        return TorchAdd()


@register
class Concat(LayerType):
    name = "concat"
    aliases = ("cat", "concatenate")
    kind = "merge"
    min_inputs = 1
    max_inputs = None
    summary = "concatenation along channels; every other axis must agree"
    example = "concat(@a, @b)"

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        rest = {s[1:] for s in inputs}
        if len(rest) > 1 or len({len(s) for s in inputs}) > 1:
            raise LayerArgError(
                "cannot concatenate along channels: the other axes differ ("
                + ", ".join(format_shape(s) for s in inputs) + ")"
            )
        return Shaped((sum(s[0] for s in inputs), *inputs[0][1:]))

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        return [Formula("output C", " + ".join(str(s[0]) for s in inputs), out[0])] if len(inputs) > 1 else []

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import Concat as TorchConcat

        return TorchConcat()


@register
class Slice(LayerType):
    name = "slice"
    aliases = ("channels",)
    # no end: up to the last channel, so a block can split a tensor whose width grows (DPN's dense path)
    args = (Arg("start", "int", required=True, minimum=0), Arg("end", "int", None, minimum=1))
    summary = "channels [start, end) of the input, or from start on (DPN's split of a dual path)"
    example = "slice(0, 256), slice(start=256, end=320), slice(256)"

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        c = inputs[0][0]
        end = c if a["end"] is None else a["end"]
        if not a["start"] < end <= c:
            raise LayerArgError(f"channel range [{a['start']}, {end}) is not inside the input's {c} channels")
        return Shaped((end - a["start"], *inputs[0][1:]))

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import Slice as TorchSlice

        return TorchSlice(a["start"], a["end"])


@register
class Mul(LayerType):
    name = "mul"
    aliases = ("scale", "multiply")
    kind = "merge"
    min_inputs = 2
    max_inputs = 2
    summary = "element-wise product; the second input may be a C×1×1 gate (squeeze-and-excitation)"
    example = "mul(@features, @gate)"

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        x, gate = inputs
        ok = len(x) == len(gate) and all(g in (1, s) for g, s in zip(gate, x))
        if not ok:
            raise LayerArgError(
                f"cannot multiply {format_shape(x)} by {format_shape(gate)}: the second must broadcast to the first"
            )
        return Shaped(x)

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        return OtherOps(multiplies=prod(out))

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import Mul as TorchMul

        return TorchMul()


@register
class AutoShortcut(LayerType):
    """A residual's `shortcut: auto`: the identity where the body keeps the shape, else a 1×1
    projection (with a BN after it when the body uses BN), as ResNet's option B."""

    name = "auto-shortcut"
    internal = True
    args = (Arg("bn", "bool", False),)
    min_inputs = 2  # the residual's input, and the body's output (for its shape only)
    max_inputs = 2
    summary = ("a residual's automatic shortcut: the identity where the body keeps the shape, else a 1×1 "
               "projection (+ BN when the body has BN); not a layer to write by name")
    example = "residual: ... then shortcut: auto (the default)"

    def resolve(self, a: Args, inputs: Sequence[Shape]) -> tuple[Implied, ...]:
        src, dst = inputs
        if src == dst:
            return ()
        found = [stride_between(a, b) for a, b in zip(src[1:], dst[1:])]
        strides = tuple(s for s in found if s is not None)
        if len(src) != len(dst) or len(src) < 2 or len(strides) != len(found):
            raise LayerArgError(
                f"the auto shortcut cannot map {format_shape(src)} to {format_shape(dst)} with a 1×1 convolution",
                hint="write the shortcut yourself: 'shortcut: conv1-256/s2/nobias, bn'",
            )
        conv = REGISTRY["conv"].normalize(
            {"out_channels": dst[0], "kernel": (1,), "stride": strides, "padding": (0,), "bias": not a["bn"]})
        stride = "x".join(map(str, strides)) if len(set(strides)) > 1 else str(strides[0])
        text = f"conv1-{dst[0]}" + (f"/s{stride}" if max(strides) > 1 else "") + ("/nobias" if a["bn"] else "")
        projection = Implied("conv", conv, text)
        return (projection, Implied("bn", REGISTRY["bn"].normalize({}), "bn")) if a["bn"] else (projection,)

