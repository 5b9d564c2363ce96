"""Layers that change the resolution or the extent of a feature map without weights: upsampling
(interpolation by a scale factor, to a size, or to another tensor's size), pixel shuffle and
unshuffle, max unpooling with its pool's indices, and the centre crop of U-Net's skips.

FlopCounterMode counts none of them (interpolation runs `aten.upsample_*`, which it does not
count): their FLOPs are 0. Interpolation's own arithmetic is counted in `other ops`, per output
element: a weighted sum of the 2^d neighbours it reads for (bi/tri)linear (2^d multiplies,
2^d − 1 adds), of 4×4 for bicubic (16 multiplies, 15 adds); nearest copies (nothing).

Receptive fields are exact: output position o of an interpolation reads the input positions
around its source coordinate x = origin + o·step, as PyTorch's kernels index (`Resampling`);
a pixel shuffle reads ⌊o/r⌋, as a nearest upsampling does; a max unpool's output position can
come from every pooled unit whose window holds it, the window of a transposed convolution.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from archcalc.layers.base import (
    Arg,
    Args,
    Formula,
    LayerArgError,
    LayerType,
    OtherOps,
    Saved,
    Shaped,
    per_axis,
    register,
)
from archcalc.layers.window import Geometry, Resampling, spatial_rank
from archcalc.tensor import Shape, format_shape, prod, spatial_axis_names

MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear")
_RANK_OF_MODE = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}
_INPUT_OF_RANK = {1: "C×L", 2: "C×H×W", 3: "C×D×H×W"}


def _scales(text: str | None, rank: int) -> tuple[float, ...] | None:
    """'2' → (2.0, 2.0); '2x1' → (2.0, 1.0); a factor must be positive."""
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in str(text).replace("×", "x").strip("()").replace(",", "x").split("x"))
    except ValueError:
        raise LayerArgError(f"scale must be a number or one per axis (2, 1.5, 2x1), not '{text}'",
                            arg="scale") from None
    if any(not v > 0 or math.isinf(v) for v in values):
        raise LayerArgError(f"scale factors must be positive, not '{text}'", arg="scale")
    if len(values) == 1:
        return values * rank
    if len(values) != rank:
        raise LayerArgError(f"scale {text} has {len(values)} axes, the input has {rank}", arg="scale")
    return values


@register
class Upsample(LayerType):
    name = "upsample"
    aliases = ("interpolate", "resize", "upsampling")
    patterns = (r"upsample(?P<scale>\d+(?:\.\d+)?)",)
    flags = {"nearest": ("mode", "nearest"), "linear": ("mode", "linear"), "bilinear": ("mode", "bilinear"),
             "bicubic": ("mode", "bicubic"), "trilinear": ("mode", "trilinear"),
             "align": ("align_corners", True), "align_corners": ("align_corners", True)}
    args = (
        Arg("scale", "str", None, aliases=("scale_factor",)),
        Arg("size", "size", None, aliases=("output_size",), minimum=1),
        Arg("mode", "str", "nearest", choices=MODES),
        Arg("align_corners", "bool", False, aliases=("align",)),
    )
    layout = "channels"
    min_inputs = 1
    max_inputs = 2
    shape_inputs = (1,)  # upsample(@x, @ref): x to ref's size (F.interpolate(x, size=ref.shape[-2:]))
    summary = ("interpolation as F.interpolate / nn.Upsample: nearest, nearest-exact, (bi/tri)linear or bicubic, "
               "by a scale factor (⌊I·scale⌋), to a size, or to a second input's size; align_corners as PyTorch")
    example = "upsample2, upsample(scale=2, mode=bilinear), upsample(size=33x33, mode=bilinear), upsample(@x, @input)"

    def _mode_rank(self, a: Args, rank: int) -> None:
        mode = a["mode"]
        wanted = _RANK_OF_MODE.get(mode)
        if wanted is not None and wanted != rank:
            better = {1: "linear", 2: "bilinear", 3: "trilinear"}[rank]
            raise LayerArgError(f"mode {mode} interpolates a {_INPUT_OF_RANK[wanted]} input, this one has "
                                f"{rank} spatial {'axes' if rank > 1 else 'axis'}: mode={better}", arg="mode")
        if a["align_corners"] and mode in ("nearest", "nearest-exact"):
            raise LayerArgError("align_corners goes with the interpolating modes (linear, bilinear, bicubic, "
                                "trilinear), not with nearest, as PyTorch says", arg="align_corners")

    def _target(self, a: Args, inputs: Sequence[Shape]) -> tuple[tuple[int, ...], tuple[float, ...] | None]:
        """The output's spatial size, and the scale factors PyTorch indexes by (None: sizes' ratio)."""
        rank = spatial_rank(inputs, self.name)
        given = [what for what, there in (("scale", a["scale"] is not None), ("size", a["size"] is not None),
                                          ("a second input", len(inputs) > 1)) if there]
        if len(given) != 1:
            raise LayerArgError("upsample takes one of scale=…, size=… or a second input whose size to take"
                                + (f"; got {' and '.join(given)}" if given else ""))
        if len(inputs) > 1:
            ref = inputs[1][1:]
            if len(ref) != rank:
                raise LayerArgError(f"the size reference {format_shape(inputs[1])} has {len(ref)} spatial axes, "
                                    f"the input {rank}")
            return tuple(ref), None
        if a["size"] is not None:
            return per_axis(a["size"], rank, "size"), None
        scales = _scales(a["scale"], rank)
        assert scales is not None
        # F.interpolate: ⌊float(I)·scale⌋, in double precision as PyTorch computes it
        return tuple(math.floor(float(i) * s) for i, s in zip(inputs[0][1:], scales)), scales

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        self._mode_rank(a, spatial_rank(inputs, self.name))
        sizes, _ = self._target(a, inputs)
        if min(sizes) < 1:
            raise LayerArgError(f"the output would be {format_shape(sizes)}: ⌊input·scale⌋ must be at least 1")
        return Shaped((inputs[0][0], *sizes))

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        """Nearest copies; linear modes weigh 2^d neighbours (2^d multiplies, 2^d − 1 adds), bicubic 4×4."""
        n, mode = prod(out), a["mode"]
        if mode in ("nearest", "nearest-exact"):
            return OtherOps()
        taps = 16 if mode == "bicubic" else 2 ** (len(out) - 1)
        return OtherOps(multiplies=n * taps, adds=n * (taps - 1))

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        """I·scale per axis where a whole scale factor gives the size."""
        _, scales = self._target(a, inputs)
        if scales is None or any(not s.is_integer() for s in scales):
            return []
        names = spatial_axis_names(len(out) - 1)
        alike: dict[tuple[int, int], list[int]] = {}
        for axis, (i, s) in enumerate(zip(inputs[0][1:], scales)):
            alike.setdefault((i, int(s)), []).append(axis)
        return [Formula("output " + ", ".join(names[x] for x in axes), f"{i}·{s}", out[1 + axes[0]], "I·scale")
                for (i, s), axes in alike.items()]

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> Resampling:
        sizes, scales = self._target(a, inputs)
        mode = a["mode"]
        origins, steps = [], []
        for axis, (i, o) in enumerate(zip(inputs[0][1:], sizes)):
            if mode in ("nearest", "nearest-exact") or not a["align_corners"]:
                # PyTorch indexes by 1/scale_factor where one is given, else by the sizes' ratio
                step = 1 / Fraction(repr(scales[axis])) if scales is not None else Fraction(i, o)
            else:
                step = Fraction(i - 1, o - 1) if o > 1 else Fraction(0)
            if mode == "nearest":
                origin = Fraction(0)
            elif mode == "nearest-exact":
                origin = step / 2
            elif a["align_corners"]:
                origin = Fraction(0)
            else:
                origin = step / 2 - Fraction(1, 2)  # the source of o is (o + ½)·step − ½
            origins.append(origin)
            steps.append(step)
        kind = "nearest" if mode.startswith("nearest") else "cubic" if mode == "bicubic" else "linear"
        return Resampling(kind, tuple(origins), tuple(steps))

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """Nothing: its backward needs only the sizes (measured with saved_tensors_hooks)."""
        return ()

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        align = a["align_corners"] if a["mode"] not in ("nearest", "nearest-exact") else None
        if len(inputs) > 1:
            from archcalc.pytorch.modules import ResizeLike

            return ResizeLike(a["mode"], align)
        _, scales = self._target(a, inputs)
        if scales is not None:
            factor: Any = scales[0] if len(set(scales)) == 1 else scales
            return nn.Upsample(scale_factor=factor, mode=a["mode"], align_corners=align)
        size: Any = tuple(out[1:])
        return nn.Upsample(size=size, mode=a["mode"], align_corners=align)


@register
class PixelShuffle(LayerType):
    name = "pixel-shuffle"
    aliases = ("pixelshuffle", "depth-to-space", "subpixel")
    patterns = (r"pixel-?shuffle(?P<factor>\d+)",)
    args = (Arg("factor", "int", required=True, aliases=("upscale_factor", "r"), minimum=1),)
    layout = "channels"
    summary = "C·r²×H×W → C×rH×rW (Shi et al. 2016's sub-pixel convolution output), as nn.PixelShuffle"
    example = "pixel-shuffle(2), pixelshuffle3"

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        r, (c, *hw) = a["factor"], inputs[0]
        if len(hw) != 2:
            raise LayerArgError(f"pixel shuffle reads a C×H×W input, got {format_shape(inputs[0])}")
        if c % (r * r):
            raise LayerArgError(f"the channels ({c}) must divide by r² = {r * r}")
        return Shaped((c // (r * r), *(s * r for s in hw)))

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        r = a["factor"]
        return [Formula("output C", f"{inputs[0][0]}/({r}·{r})", out[0], "C/r²")]

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> Geometry:
        """Output position o reads ⌊o/r⌋: the window of a transposed convolution with K = S = r."""
        r = (a["factor"],) * 2
        return Geometry(r, r, (0, 0), (1, 1), transposed=True)

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """Nothing: its backward needs only the sizes (measured with saved_tensors_hooks)."""
        return ()

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        return nn.PixelShuffle(a["factor"])


@register
class PixelUnshuffle(LayerType):
    name = "pixel-unshuffle"
    aliases = ("pixelunshuffle", "space-to-depth")
    patterns = (r"pixel-?unshuffle(?P<factor>\d+)",)
    args = (Arg("factor", "int", required=True, aliases=("downscale_factor", "r"), minimum=1),)
    layout = "channels"
    summary = "C×H×W → C·r²×H/r×W/r, as nn.PixelUnshuffle (H and W must divide by r)"
    example = "pixel-unshuffle(2)"

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        r, (c, *hw) = a["factor"], inputs[0]
        if len(hw) != 2:
            raise LayerArgError(f"pixel unshuffle reads a C×H×W input, got {format_shape(inputs[0])}")
        if any(s % r for s in hw):
            raise LayerArgError(f"H and W ({format_shape(hw)}) must divide by the factor {r}")
        return Shaped((c * r * r, *(s // r for s in hw)))

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        r = a["factor"]
        return [Formula("output C", f"{inputs[0][0]}·{r}·{r}", out[0], "C·r²")]

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> Geometry:
        """Output position o reads o·r … o·r + r − 1: an r×r window at stride r."""
        r = (a["factor"],) * 2
        return Geometry(r, r, (0, 0), (1, 1))

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """Nothing: its backward needs only the sizes (measured with saved_tensors_hooks)."""
        return ()

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        return nn.PixelUnshuffle(a["factor"])


@register
class MaxUnpool(LayerType):
    """Puts each value back where its max pool found it (zeros elsewhere): `maxunpool(@x, @pool)`.

    The second input is the max pool node whose indices it reads; the builder makes that pool
    return them. The output has the pool's input size: the indices are flat positions in it, so
    no other size keeps them in place."""

    name = "maxunpool"
    aliases = ("max-unpool", "unpool", "max-unpooling")
    min_inputs = 2
    max_inputs = 2
    index_input = 1
    layout = "channels"
    summary = ("max unpooling (SegNet): maxunpool(@x, @pool) puts x's values at the positions the max pool "
               "@pool took its maxima from; the output has the pool's input size")
    example = "maxunpool(@x, @pool1)"

    def for_indices(self, a: Args, source: LayerType, source_args: Args, source_inputs: Sequence[Shape]) -> Args:
        if not source.index_source:
            raise LayerArgError(f"its second input must be the max pool whose indices it reads "
                                f"(maxunpool(@x, @pool1)), not a '{source.name}' layer")
        g = source.geometry(source_args, source_inputs)
        assert isinstance(g, Geometry)
        if g.padding_after is not None:
            raise LayerArgError("a /same max pool pads unevenly first: its indices point into the padded input")
        return {**a, "kernel": g.kernel, "stride": g.stride, "padding": g.padding, "restores": source_inputs[0]}

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        x, pooled = inputs
        if "restores" not in a:
            raise LayerArgError("its second input must be a max pool (maxunpool(@x, @pool1))")
        if x != pooled:
            raise LayerArgError(f"the values ({format_shape(x)}) must have the shape of the pool's output "
                                f"({format_shape(pooled)}), one index each")
        return Shaped((x[0], *a["restores"][1:]))

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> Geometry:
        """Output position p can hold the value of every pooled unit whose window covers it."""
        rank = len(a["kernel"])
        return Geometry(a["kernel"], a["stride"], a["padding"], (1,) * rank, transposed=True)

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """Its backward gathers the output gradient at the pool's indices: it keeps them, which the pool
        keeps already wherever its input needs a gradient (then nothing new); else the int64 indices."""
        if input_grad[0] and not input_grad[1]:
            return (Saved("own", elements=prod(inputs[1]), dtype="int64"),)
        return ()

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import MaxUnpool as TorchMaxUnpool

        return TorchMaxUnpool(a["kernel"], a["stride"], a["padding"], tuple(out[1:]))

    def rf_probe_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        """A depthwise transposed convolution of the pool's window: each pooled unit reaches every
        position its window covers (the max pool itself is probed as an average pool)."""
        from archcalc.pytorch.modules import UnpoolStandIn

        return UnpoolStandIn(out[0], a["kernel"], a["stride"], a["padding"], tuple(out[1:]))


@register
class Crop(LayerType):
    name = "crop"
    aliases = ("center-crop", "centercrop", "centre-crop")
    args = (Arg("size", "size", None, aliases=("output_size",), minimum=1),)
    layout = "channels"
    min_inputs = 1
    max_inputs = 2
    shape_inputs = (1,)  # crop(@skip, @up): the skip to the up-convolution's size (U-Net)
    view = "strided"  # x[..., a:b, c:d]: a view of its input
    summary = ("centre crop of the spatial axes to a size or to a second input's size, offset ⌊(I − O)/2⌋ "
               "(U-Net's crop before concatenating a skip)")
    example = "crop(@enc4, @up4), crop(size=56x56)"

    def _target(self, a: Args, inputs: Sequence[Shape]) -> Shape:
        rank = spatial_rank(inputs, self.name)
        if (a["size"] is None) == (len(inputs) < 2):
            raise LayerArgError("crop takes a size (crop(size=56x56)) or a second input whose size to take "
                                "(crop(@skip, @up)), one of them")
        if len(inputs) > 1:
            if len(inputs[1]) - 1 != rank:
                raise LayerArgError(f"the size reference {format_shape(inputs[1])} has another number of axes")
            return tuple(inputs[1][1:])
        return per_axis(a["size"], rank, "size")

    def offsets(self, a: Args, inputs: Sequence[Shape]) -> Shape:
        return tuple((i - o) // 2 for i, o in zip(inputs[0][1:], self._target(a, inputs)))

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        target = self._target(a, inputs)
        if any(o > i for i, o in zip(inputs[0][1:], target)):
            raise LayerArgError(f"cannot crop {format_shape(inputs[0][1:])} to the larger {format_shape(target)}")
        return Shaped((inputs[0][0], *target))

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        names = spatial_axis_names(len(out) - 1)
        return [Formula(f"output {names[k]}", f"{i} − 2·{off}" + (" − 1" if (i - o) % 2 else ""), o,
                        "offset ⌊(I − O)/2⌋ = " + str(off))
                for k, (i, o, off) in enumerate(zip(inputs[0][1:], out[1:], self.offsets(a, inputs)))]

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> Geometry:
        """Output position o is input position o + offset: a 1-wide window starting that far in."""
        rank = len(inputs[0]) - 1
        ones = (1,) * rank
        return Geometry(ones, ones, tuple(-off for off in self.offsets(a, inputs)), ones)

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """Nothing: its backward needs only the sizes (measured with saved_tensors_hooks)."""
        return ()

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import CenterCrop

        return CenterCrop(tuple(out[1:]))
