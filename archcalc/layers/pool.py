"""Pooling: `maxpool`, `maxpool3/s2/p1/ceil`, `avgpool`, `gap`, `gmp`, adaptive pools."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archcalc.layers.base import (
    FUNCTIONAL,
    FUNCTIONAL_FLAG,
    REGISTRY,
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
    saved_input,
)
from archcalc.layers.imported import Emit, OnnxCall, TorchCall, Unsupported, per_axis_tuple, size_text
from archcalc.layers.window import (
    GLOBAL,
    SPATIAL_OPTIONS,
    Geometry,
    spatial_rank,
    window_formulas,
    window_geometry,
    window_shape,
)
from archcalc.tensor import Shape, prod

POOL_ARGS = (
    Arg("kernel", "size", (2,), aliases=("k", "kernel_size"), minimum=1),
    Arg("stride", "size", None, aliases=("s",), minimum=1),
    Arg("padding", "size", (0,), aliases=("p", "pad"), minimum=0),
    Arg("ceil_mode", "bool", False, aliases=("ceil",)),
    Arg("same", "bool", False),
    FUNCTIONAL,
)


class _Pool(LayerType):
    options = {k: v for k, v in SPATIAL_OPTIONS.items() if k != "d"}  # pools take no dilation here
    flags = {"ceil": ("ceil_mode", True), "same": ("same", True), **FUNCTIONAL_FLAG}
    args = POOL_ARGS
    kind = "pool"
    layout = "channels"

    def _window(self, a: Args) -> Args:
        """The window's arguments: no dilation; with /same, the padding is computed, not given."""
        return {**a, "dilation": 1, **({"padding": None} if a.get("same") else {})}

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        g = self.geometry(a, inputs)
        if any(2 * p > k for p, k in zip(g.padding, g.kernel)):
            raise LayerArgError("padding must be at most half the kernel (PyTorch's rule for pooling)")
        return window_shape(self.name, self._window(a), inputs, inputs[0][0])

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> Geometry:
        return window_geometry(self._window(a), len(inputs[0]) - 1, inputs[0][1:])

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        return window_formulas(a, inputs, out, self.geometry(a, inputs))

    def window(self, a: Args, out: Shape) -> int:
        return prod(per_axis(a["kernel"], len(out) - 1))

    def from_torch(self, call: TorchCall) -> Emit | None:
        m = call.module
        rank = len(call.inputs[0]) - 1
        if m is not None:
            kernel, stride, padding, ceil = m.kernel_size, m.stride, m.padding, m.ceil_mode
            extra = {k: getattr(m, k) for k in ("dilation", "return_indices", "count_include_pad", "divisor_override")
                     if hasattr(m, k)}
        else:  # F.max_pool2d(x, k, stride, padding, dilation, ceil_mode), F.avg_pool2d(x, k, stride, padding, ceil)
            kernel = call.arg(1, "kernel_size")
            stride, padding = call.arg(2, "stride"), call.arg(3, "padding", 0)
            if self.name == "maxpool":
                ceil = call.arg(5, "ceil_mode", False)
                extra = {"dilation": call.arg(4, "dilation", 1), "return_indices": call.arg(6, "return_indices", False)}
            else:
                ceil = call.arg(4, "ceil_mode", False)
                extra = {"count_include_pad": call.arg(5, "count_include_pad", True),
                         "divisor_override": call.arg(6, "divisor_override")}
        kernel = per_axis_tuple(kernel, rank)
        stride = kernel if stride is None or stride == () or stride == [] else per_axis_tuple(stride, rank)
        padding = per_axis_tuple(padding, rank)
        if any(d != 1 for d in per_axis_tuple(extra.get("dilation", 1), rank)):
            raise Unsupported("dilation: archcalc's pools have none")
        if extra.get("return_indices"):
            raise Unsupported("return_indices=True")
        if extra.get("divisor_override") is not None:
            raise Unsupported("divisor_override")
        if not extra.get("count_include_pad", True) and any(padding):
            raise Unsupported("count_include_pad=False with padding: archcalc's average counts the padding")
        return Emit(pool_text(self.name, kernel, stride, padding, bool(ceil)))

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        a = call.attrs
        kernel = tuple(a["kernel_shape"])
        rank = len(kernel)
        stride = tuple(a.get("strides", (1,) * rank))
        pads = tuple(a.get("pads", (0,) * 2 * rank))
        if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            raise Unsupported(f"auto_pad={a['auto_pad']}")
        if pads[:rank] != pads[rank:]:
            raise Unsupported(f"uneven padding {pads}")
        if any(d != 1 for d in a.get("dilations", (1,) * rank)):
            raise Unsupported("dilation: archcalc's pools have none")
        if self.name == "avgpool" and any(pads) and not a.get("count_include_pad", 0):
            raise Unsupported("count_include_pad=0 with padding: archcalc's average counts the padding")
        return Emit(pool_text(self.name, kernel, stride, pads[:rank], bool(a.get("ceil_mode", 0))))
    def padded_input(self, a: Args, inputs: Sequence[Shape]) -> Saved | None:
        """TensorFlow's SAME padding pads first (F.pad), and the pool keeps the padded copy."""
        g = self.geometry(a, inputs)
        if g.padding_after is None:
            return None
        sizes = [i + p + q for i, p, q in zip(inputs[0][1:], g.padding, g.padding_after)]
        return Saved("own", elements=inputs[0][0] * prod(sizes))


@register
class MaxPool(_Pool):
    name = "maxpool"
    aliases = ("max-pool",)
    patterns = (r"max-?pool(?P<kernel>\d+(?:x\d+)*)",)
    summary = "max pooling; 2×2 stride 2 by default, stride = kernel unless /sN"
    example = "maxpool, maxpool3/s2, maxpool3/s2/p1, maxpool3/s2/ceil"
    torch_modules = ("torch.nn.MaxPool1d", "torch.nn.MaxPool2d", "torch.nn.MaxPool3d")
    torch_functions = ("torch.nn.functional.max_pool1d", "torch.nn.functional.max_pool2d",
                       "torch.nn.functional.max_pool3d", "torch.max_pool1d", "torch.max_pool2d", "torch.max_pool3d")
    onnx_ops = ("MaxPool",)

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        return OtherOps(comparisons=prod(out) * (self.window(a, out) - 1))

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """Its input (or the padded copy, with /same) and the index of each maximum (int64)."""
        return (self.padded_input(a, inputs) or saved_input(0), Saved("own", elements=prod(out), dtype="int64"))

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        g = self.geometry(a, inputs)
        cls: Any = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)[len(g.kernel) - 1]
        uneven = g.padding_after is not None
        pool = cls(g.kernel, g.stride, 0 if uneven else g.padding, ceil_mode=a["ceil_mode"])
        from archcalc.pytorch.modules import padded_evenly

        return padded_evenly(pool, g.padding, g.padding_after, float("-inf"))

    def rf_probe_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        """The average pool of the same window: a max pool's gradient reaches one input only."""
        return _average_stand_in(REGISTRY["avgpool"], a, inputs, out)


@register
class AvgPool(_Pool):
    name = "avgpool"
    aliases = ("avg-pool",)
    patterns = (r"avg-?pool(?P<kernel>\d+(?:x\d+)*)",)
    summary = "average pooling; 2×2 stride 2 by default (padding counted in the mean, as PyTorch)"
    example = "avgpool, avgpool3/s1/p1"
    torch_modules = ("torch.nn.AvgPool1d", "torch.nn.AvgPool2d", "torch.nn.AvgPool3d")
    torch_functions = ("torch.nn.functional.avg_pool1d", "torch.nn.functional.avg_pool2d",
                       "torch.nn.functional.avg_pool3d")
    onnx_ops = ("AveragePool",)

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        if a.get("same"):
            raise LayerArgError("TensorFlow's SAME average pool averages only the real inputs near the "
                                "border; archcalc has no such pool (write pad(…) and avgpool if zeros are meant)")
        g = self.geometry(a, inputs)
        sizes = inputs[0][1:]
        # PyTorch's avg_pool3d (not 1-D/2-D) checks the unpadded input against the kernel
        if len(sizes) == 3 and any(s < k for s, k in zip(sizes, g.kernel)):
            raise LayerArgError(
                f"3-D average pooling needs every input axis at least the kernel "
                f"({'×'.join(map(str, g.kernel))}), PyTorch's rule"
            )
        return super().shape(a, inputs)

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        return OtherOps(adds=prod(out) * (self.window(a, out) - 1), divisions=prod(out))

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        return (saved_input(0),)

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        g = self.geometry(a, inputs)
        cls: Any = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)[len(g.kernel) - 1]
        return cls(g.kernel, g.stride, g.padding, ceil_mode=a["ceil_mode"])


class _AdaptivePool(LayerType):
    """Pooling to a fixed output size, whatever the input size (PyTorch's Adaptive*Pool)."""

    args = (Arg("size", "size", (1,), aliases=("output_size", "o"), minimum=1), FUNCTIONAL)
    flags = FUNCTIONAL_FLAG
    kind = "pool"
    layout = "channels"
    torch_names: tuple[str, str, str] = ("", "", "")

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        rank = spatial_rank(inputs, self.name)
        return Shaped((inputs[0][0], *per_axis(a["size"], rank, "size")))

    def window(self, inputs: Sequence[Shape], out: Shape) -> int:
        """Inputs per output: exact when the sizes divide, as in every zoo network."""
        return max(1, prod(inputs[0][1:]) // max(1, prod(out[1:])))

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> Geometry | str | None:
        sizes = inputs[0][1:]
        target = per_axis(a["size"], len(sizes), "size")
        if any(t != 1 for t in target) and all(s % t == 0 for s, t in zip(sizes, target)):
            k = tuple(s // t for s, t in zip(sizes, target))
            return Geometry(k, k, (0,) * len(k), (1,) * len(k))
        # a 1×1 output sees everything; uneven windows are treated as global too
        return GLOBAL

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        return getattr(nn, self.torch_names[len(out) - 2])(out[1:])

    def from_torch(self, call: TorchCall) -> Emit | None:
        m = call.module
        if (m.return_indices if m is not None and hasattr(m, "return_indices")
                else call.arg(2, "return_indices", False)):
            raise Unsupported("return_indices=True")
        return Emit(self._text(call.output[1:]))

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        return Emit(self.aliases[0])  # GlobalAveragePool / GlobalMaxPool: 1 per axis

    def _text(self, size: Shape) -> str:
        """`gap` / `gmp` for a 1×… output, else `adaptive-avgpool7`; the output's sizes (an
        output_size of None keeps the input's, so the traced output says what it is)."""
        if all(s == 1 for s in size):
            return self.aliases[0]
        return f"{self.name}{size_text(size)}"


@register
class AdaptiveAvgPool(_AdaptivePool):
    name = "adaptive-avgpool"
    aliases = ("gap", "global-avgpool", "avgpool-global")
    patterns = (r"adaptive-?avg-?pool(?P<size>\d+(?:x\d+)*)",)
    torch_names = ("AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d")
    torch_modules = tuple(f"torch.nn.{n}" for n in torch_names)
    torch_functions = ("torch.nn.functional.adaptive_avg_pool1d", "torch.nn.functional.adaptive_avg_pool2d",
                       "torch.nn.functional.adaptive_avg_pool3d")
    onnx_ops = ("GlobalAveragePool",)
    summary = "adaptive average pooling to a fixed size; gap is the 1×1 global average pool"
    example = "gap, adaptive-avgpool7, adaptive-avgpool(size=6x6)"

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        return OtherOps(adds=prod(out) * (self.window(inputs, out) - 1), divisions=prod(out))

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """Its input; nothing for a 1×1 output, which PyTorch computes as a mean (its gradient
        needs only the sizes)."""
        return () if all(s == 1 for s in out[1:]) else (saved_input(0),)


@register
class AdaptiveMaxPool(_AdaptivePool):
    name = "adaptive-maxpool"
    aliases = ("gmp", "global-maxpool", "max-over-time")
    patterns = (r"adaptive-?max-?pool(?P<size>\d+(?:x\d+)*)",)
    torch_names = ("AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d")
    torch_modules = tuple(f"torch.nn.{n}" for n in torch_names)
    torch_functions = ("torch.nn.functional.adaptive_max_pool1d", "torch.nn.functional.adaptive_max_pool2d",
                       "torch.nn.functional.adaptive_max_pool3d")
    onnx_ops = ("GlobalMaxPool",)
    summary = "adaptive max pooling; gmp is the global max pool (Kim 2014's max-over-time)"
    example = "gmp, adaptive-maxpool(size=1)"

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        return OtherOps(comparisons=prod(out) * (self.window(inputs, out) - 1))

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """Its input and the index of each maximum (int64)."""
        return (saved_input(0), Saved("own", elements=prod(out), dtype="int64"))

    def rf_probe_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        """The adaptive average pool to the same size: its gradient reaches every input of a window."""
        return _average_stand_in(REGISTRY["adaptive-avgpool"], a, inputs, out)


def _average_stand_in(average: LayerType, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
    """The average pool's torch module for a max pool's arguments, built by its own rules;
    None where those refuse the input (PyTorch's 3-D average pool wants every axis at least
    the kernel, which a padded max pool does not)."""
    try:
        average.shape(a, inputs)
    except LayerArgError:
        return None
    return average.torch_module(a, inputs, out)


def pool_text(name: str, kernel: Shape, stride: Shape, padding: Shape, ceil: bool) -> str:
    """`maxpool3/s2/p1/ceil`: stride only where it is not the kernel, padding only where not 0."""
    text = f"{name}{size_text(kernel)}"
    if stride != kernel:
        text += f"/s{size_text(stride)}"
    if any(padding):
        text += f"/p{size_text(padding)}"
    return text + ("/ceil" if ceil else "")
