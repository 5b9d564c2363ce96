"""Convolution, 1-D/2-D/3-D by the input's rank: `conv3-64`, `conv11-96/s4/p0`, `conv1x7-192`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archcalc.layers.base import (
    Arg,
    Args,
    Counts,
    Formula,
    Gradients,
    LayerArgError,
    LayerType,
    OtherOps,
    Saved,
    Shaped,
    dense_params,
    per_axis,
    register,
    saved_input,
)
from archcalc.layers.imported import Emit, OnnxCall, TorchCall, Unsupported, frozen_state, per_axis_tuple, size_text
from archcalc.layers.window import (
    SPATIAL_OPTIONS,
    Geometry,
    window_formulas,
    window_geometry,
    window_shape,
)
from archcalc.tensor import Shape, prod


@register
class Conv(LayerType):
    name = "conv"
    aliases = ("convolution",)
    patterns = (r"conv(?P<kernel>\d+(?:x\d+)*)-(?P<out_channels>\d+)",)
    options = {**SPATIAL_OPTIONS, "g": "groups"}
    flags = {"nobias": ("bias", False), "bias": ("bias", True), "frozen": ("frozen", True), "same": ("same", True)}
    args = (
        Arg("out_channels", "int", required=True, aliases=("c", "out", "filters"), minimum=1),
        Arg("kernel", "size", required=True, aliases=("k", "kernel_size"), minimum=1),
        Arg("stride", "size", 1, aliases=("s",), minimum=1),
        Arg("padding", "size", None, aliases=("p", "pad"), minimum=0),
        Arg("dilation", "size", 1, aliases=("d",), minimum=1),
        Arg("groups", "int", 1, aliases=("g",), minimum=1),
        Arg("bias", "bool", True),
        Arg("frozen", "bool", False),
        Arg("same", "bool", False),
    )
    kind = "conv"
    layout = "channels"
    weighted = True
    summary = ("convolution; padding defaults to dilation·(kernel−1)//2 ('same' at stride 1); /same is "
               "TensorFlow's SAME (output ⌈I/S⌉, the odd padding after)")
    example = "conv3-64, conv11-96/s4/p0, conv3-32/g32/nobias, conv(k=1x7, c=192)"
    torch_modules = ("torch.nn.Conv1d", "torch.nn.Conv2d", "torch.nn.Conv3d")
    onnx_ops = ("Conv",)

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

    def param_shapes(self, a: Args, inputs: Sequence[Shape], out: Shape) -> dict[str, Shape]:
        kernel = per_axis(a["kernel"], len(out) - 1)
        shapes: dict[str, Shape] = {"weight": (out[0], inputs[0][0] // a["groups"], *kernel)}
        return {**shapes, "bias": (out[0],)} if a["bias"] else shapes

    def macs(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        """Cout·∏O·(Cin/groups)·∏K: one MAC per weight per output position."""
        kernel = per_axis(a["kernel"], len(out) - 1)
        return prod(out) * (inputs[0][0] // a["groups"]) * prod(kernel)

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        return OtherOps(adds=prod(out) if a["bias"] else 0)

    def gradients(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
                  weight_grad: bool) -> Gradients:
        """The input gradient is a transposed convolution and the weight gradient a convolution of
        the input with the output gradient: each the forward's MACs, groups included.
        FlopCounterMode's `convolution_backward` formula (torch/utils/flop_counter.py,
        `conv_backward_flop`, grad-weight branch) takes the input's channels whole: it counts the
        weight gradient of a grouped convolution `groups` times."""
        f = self.macs(a, inputs, out)
        grad_in, grad_w = (f if input_grad[0] else 0), (f if weight_grad else 0)
        groups = a["groups"]
        if groups == 1 or not grad_w:
            return Gradients(grad_in, grad_w)
        return Gradients(grad_in, grad_w, grad_in + groups * grad_w,
                         f"FlopCounterMode counts the grouped weight gradient {groups}× (groups={groups})")

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """Its input, whether or not anything needs its gradient (the padded copy with /same, whose
        F.pad runs first)."""
        g = self.geometry(a, inputs)
        if g.padding_after is None:
            return (saved_input(0),)
        sizes = [i + p + q for i, p, q in zip(inputs[0][1:], g.padding, g.padding_after)]
        return (Saved("own", elements=inputs[0][0] * prod(sizes)),)

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
        return window_geometry(a, len(inputs[0]) - 1, inputs[0][1:])

    def dense_equivalent(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        return dense_params(inputs[0], out)

    def from_torch(self, call: TorchCall) -> Emit | None:
        m = call.module
        if m.padding_mode != "zeros":
            raise Unsupported(f"padding_mode={m.padding_mode!r}: archcalc's conv pads with zeros")
        rank = len(m.kernel_size)
        same = m.padding == "same"  # PyTorch's 'same' (stride 1) is TensorFlow's SAME: the odd one after
        padding = (0,) * rank if m.padding == "valid" or same else m.padding
        return Emit(conv_text(m.out_channels, m.kernel_size, m.stride, padding, m.dilation, m.groups,
                              m.bias is not None, frozen_state(m), same))

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        weight = call.weights.get(1)
        if weight is None or call.input_count > 2 and 2 not in call.weights:
            raise Unsupported("its weight or bias is computed, not an initializer")
        rank = len(weight) - 2
        kernel = tuple(call.attrs.get("kernel_shape", weight[2:]))
        stride = tuple(call.attrs.get("strides", (1,) * rank))
        dilation = tuple(call.attrs.get("dilations", (1,) * rank))
        pads = tuple(call.attrs.get("pads", (0,) * 2 * rank))
        auto = call.attrs.get("auto_pad", "NOTSET")
        if auto not in ("NOTSET", "VALID", "SAME_UPPER"):
            raise Unsupported(f"auto_pad={auto}")
        same = auto == "SAME_UPPER"
        if not same and pads[:rank] != pads[rank:]:
            raise Unsupported(f"uneven padding {pads}")
        return Emit(conv_text(weight[0], kernel, stride, (0,) * rank if same else pads[:rank], dilation,
                              int(call.attrs.get("group", 1)), 2 in call.weights, False, same), owns=(1, 2))

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        g = self.geometry(a, inputs)
        cls: Any = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[len(g.kernel) - 1]
        uneven = g.padding_after is not None
        conv = cls(
            inputs[0][0], a["out_channels"], g.kernel, stride=g.stride, padding=0 if uneven else g.padding,
            dilation=g.dilation, groups=a["groups"], bias=a["bias"],
        )
        from archcalc.pytorch.modules import padded_evenly

        return padded_evenly(conv, g.padding, g.padding_after)


def conv_text(out_channels: int, kernel: Any, stride: Any, padding: Any, dilation: Any, groups: int, bias: bool,
              frozen: bool, same: bool) -> str:
    """`conv3-64/s2/nobias`: the options only where they differ from conv's defaults."""
    rank = len(kernel)
    stride, dilation = per_axis_tuple(stride, rank), per_axis_tuple(dilation, rank)
    padding = per_axis_tuple(padding, rank)
    text = f"conv{size_text(kernel)}-{out_channels}"
    if any(s != 1 for s in stride):
        text += f"/s{size_text(stride)}"
    default = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
    if not same and padding != default:
        text += f"/p{size_text(padding)}"
    if any(d != 1 for d in dilation):
        text += f"/d{size_text(dilation)}"
    if groups != 1:
        text += f"/g{groups}"
    flags = (("/same", same), ("/nobias", not bias), ("/frozen", frozen))
    return text + "".join(flag for flag, on in flags if on)
