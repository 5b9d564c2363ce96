"""Transposed convolution, 1-D/2-D/3-D by the input's rank: `convtranspose3-64/s2/p1/op1`, `deconv4-256/s2/p1`,
`convtranspose(k=2, c=512, s=2)` (U-Net's 2×2 "up-convolution").

Per spatial axis (PyTorch's formula; output_padding is the guide's `a`):

    O = (I − 1)·S − 2·P + D·(K − 1) + output_padding + 1

It is the direct convolution over the input "stretched" by S − 1 zeros between neighbouring
pixels ((I − 1)·S + 1 wide, output_padding more at the end), padded by D·(K − 1) − P on each
side, at stride 1 (Dumoulin & Visin 2016, ch. 4). Its weight is Cin × Cout/groups × K…, as
PyTorch holds it; its MACs are counted as FlopCounterMode counts `aten.convolution` with
transposed=True: every input element times the whole kernel, Cin·∏I · (Cout/groups)·∏K,
products that land in the cropped padding border included, padding and output_padding ignored.
"""

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
from archcalc.layers.window import SPATIAL_OPTIONS, Geometry, spatial_rank
from archcalc.tensor import Shape, prod, spatial_axis_names


def transposed_output(size: int, kernel: int, stride: int, padding: int, dilation: int = 1,
                      output_padding: int = 0) -> int:
    """(I − 1)·S − 2P + D·(K − 1) + output_padding + 1, PyTorch's output size of a transposed convolution."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def output_padding_choices(size: int, kernel: int, stride: int, padding: int,
                           dilation: int = 1) -> list[tuple[int, int]]:
    """(output_padding, output size) for every output size the convolution with the same kernel,
    stride, padding and dilation maps back to `size`, that PyTorch lets output_padding reach
    (it must be smaller than the stride or the dilation). One entry at stride 1."""
    first = transposed_output(size, kernel, stride, padding, dilation)
    # the direct conv gives ⌊(o + 2P − D(K − 1) − 1)/S⌋ + 1 = size for o = first … first + S − 1
    return [(a, first + a) for a in range(stride) if a < max(stride, dilation) and first + a >= 1]


def output_padding_for(target: int, size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """The output_padding that gives `target`; LayerArgError naming the sizes reachable where none does."""
    a = target - transposed_output(size, kernel, stride, padding, dilation)
    if 0 <= a < max(stride, dilation):
        return a
    reachable = [o for _, o in output_padding_choices(size, kernel, stride, padding, dilation)]
    raise LayerArgError(
        f"no output_padding gives {target} from {size} (kernel {kernel}, stride {stride}, padding {padding}, "
        f"dilation {dilation}): output_padding would be {a}, and it must be 0 or more and smaller than the "
        f"stride or the dilation; reachable: {', '.join(map(str, reachable))}")


def ambiguity(size: int, kernel: int, stride: int, padding: int, dilation: int, out: int) -> str:
    """Which output_padding gives which size, where several sizes shrink back to `size` under the
    convolution with the same kernel, stride and padding (the warning of a strided transposed conv)."""
    choices = output_padding_choices(size, kernel, stride, padding, dilation)
    sizes = [o for _, o in choices]
    listed = ", ".join(f"output_padding={a} gives {o}" for a, o in choices)
    return (f"{size} → {out}: a convolution with kernel {kernel}, stride {stride} and padding {padding} maps each of "
            f"{', '.join(map(str, sizes[:-1]))} and {sizes[-1]} to {size}, so the size to restore is yours to "
            f"choose: {listed}")


@register
class ConvTranspose(LayerType):
    name = "convtranspose"
    aliases = ("conv-transpose", "transposed-conv", "deconv", "deconvolution", "upconv", "up-conv")
    patterns = (r"(?:conv-?transpose|transposed-conv|deconv|up-?conv)(?P<kernel>\d+(?:x\d+)*)-(?P<out_channels>\d+)",)
    options = {**SPATIAL_OPTIONS, "g": "groups", "op": "output_padding"}
    flags = {"nobias": ("bias", False), "bias": ("bias", True), "frozen": ("frozen", True)}
    args = (
        Arg("out_channels", "int", required=True, aliases=("c", "out", "filters"), minimum=1),
        Arg("kernel", "size", required=True, aliases=("k", "kernel_size"), minimum=1),
        Arg("stride", "size", (1,), aliases=("s",), minimum=1),
        Arg("padding", "size", (0,), aliases=("p", "pad"), minimum=0),
        Arg("output_padding", "size", (0,), aliases=("op", "a"), minimum=0),
        Arg("dilation", "size", (1,), aliases=("d",), minimum=1),
        Arg("groups", "int", 1, aliases=("g",), minimum=1),
        Arg("bias", "bool", True),
        Arg("frozen", "bool", False),
    )
    kind = "conv"
    layout = "channels"
    weighted = True
    summary = ("transposed convolution (up-convolution): O = (I − 1)·S − 2P + D·(K − 1) + output_padding + 1; "
               "padding 0 by default, as PyTorch; /opN the output padding")
    example = "convtranspose2-512/s2, convtranspose3-16/s2/p1/op1, deconv4-256/s2/p1, convtranspose(k=3, c=32, s=2)"

    def _axes(self, a: Args, rank: int) -> tuple[Shape, Shape, Shape, Shape, Shape]:
        """Kernel, stride, padding, output padding and dilation, one entry per spatial axis."""
        return (per_axis(a["kernel"], rank, "kernel"), per_axis(a["stride"], rank, "stride"),
                per_axis(a["padding"], rank, "padding"), per_axis(a["output_padding"], rank, "output_padding"),
                per_axis(a["dilation"], rank, "dilation"))

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        rank = spatial_rank(inputs, self.name)
        cin, cout, groups = inputs[0][0], a["out_channels"], a["groups"]
        if cin % groups or cout % groups:
            raise LayerArgError(f"groups={groups} must divide both the input channels ({cin}) "
                                f"and the output channels ({cout})")
        kernel, stride, padding, extra, dilation = self._axes(a, rank)
        sizes, warnings = [], []
        for i, k, s, p, op, d in zip(inputs[0][1:], kernel, stride, padding, extra, dilation):
            if op >= s and op >= d:
                raise LayerArgError(f"output_padding {op} must be smaller than the stride ({s}) or the dilation "
                                    f"({d}), PyTorch's rule", arg="output_padding")
            o = transposed_output(i, k, s, p, d, op)
            if o < 1:
                raise LayerArgError(f"the output would be {o} wide: (I − 1)·S − 2P + D·(K − 1) + output_padding + 1 "
                                    f"= ({i} − 1)·{s} − 2·{p} + {d}·({k} − 1) + {op} + 1; less padding fits")
            if len(output_padding_choices(i, k, s, p, d)) > 1 and o != s * i:
                warnings.append(ambiguity(i, k, s, p, d, o))
            sizes.append(o)
        return Shaped((cout, *sizes), tuple(dict.fromkeys(warnings)))

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        weights = prod(self.param_shapes(a, inputs, out)["weight"])
        return Counts(weights=weights, biases=out[0] if a["bias"] else 0)

    def param_shapes(self, a: Args, inputs: Sequence[Shape], out: Shape) -> dict[str, Shape]:
        """PyTorch's ConvTranspose weight is Cin × Cout/groups × K…, the transpose of a conv's."""
        kernel = per_axis(a["kernel"], len(out) - 1)
        shapes: dict[str, Shape] = {"weight": (inputs[0][0], out[0] // a["groups"], *kernel)}
        return {**shapes, "bias": (out[0],)} if a["bias"] else shapes

    def macs(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        """Cin·∏I · (Cout/groups)·∏K: every input element times the whole kernel, as FlopCounterMode
        counts a transposed convolution (padding and output_padding change nothing)."""
        kernel = per_axis(a["kernel"], len(out) - 1)
        return prod(inputs[0]) * (out[0] // a["groups"]) * prod(kernel)

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        return OtherOps(adds=prod(out) if a["bias"] else 0)

    def gradients(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
                  weight_grad: bool) -> Gradients:
        """The input gradient is a direct convolution of the output gradient and the weight gradient
        a convolution of the output gradient with the input: each the forward's MACs (measured:
        tests/reference/zoo14_training_reference.json). FlopCounterMode's convolution_backward
        counts a grouped transposed convolution's weight gradient `groups` times, as a conv's."""
        f = self.macs(a, inputs, out)
        grad_in, grad_w = (f if input_grad[0] else 0), (f if weight_grad else 0)
        groups = a["groups"]
        if groups == 1 or not grad_w:
            return Gradients(grad_in, grad_w)
        return Gradients(grad_in, grad_w, grad_in + groups * grad_w,
                         f"FlopCounterMode counts the grouped weight gradient {groups}× (groups={groups})")

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """Its input, whether or not anything needs its gradient (as a convolution)."""
        return (saved_input(0),)

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        """The output size twice — PyTorch's formula and the zero-insertion view — then weights,
        params and MACs."""
        rank = len(out) - 1
        kernel, stride, padding, extra, dilation = self._axes(a, rank)
        alike: dict[tuple[int, ...], list[int]] = {}
        for axis, size in enumerate(inputs[0][1:]):
            key = (size, kernel[axis], stride[axis], padding[axis], extra[axis], dilation[axis])
            alike.setdefault(key, []).append(axis)
        names = spatial_axis_names(rank)
        sizes: list[Formula] = []
        for (i, k, s, p, op, d), axes in alike.items():
            what = "output " + ", ".join(names[x] for x in axes)
            value = out[1 + axes[0]]
            sizes.append(Formula(what, f"({i} − 1)·{s} − 2·{p} + {d}·({k} − 1) + {op} + 1", value,
                                 "(I − 1)·S − 2P + D·(K − 1) + output_padding + 1"))
            pad = d * (k - 1) - p
            note = (f"zero insertion: {s} − 1 zeros between neighbouring inputs make {(i - 1) * s + 1}" if s > 1
                    else f"zero insertion: none at stride 1 ({i} wide)")
            note += ((f", output_padding adds {op} at the end" if op else "")
                    + f"; padded by D·(K − 1) − P = {pad} on each side" + (" (negative: cropped)" if pad < 0 else "")
                    + f", a stride-1 convolution with kernel {d * (k - 1) + 1} gives the output")
            sizes.append(Formula(what, f"({i} − 1)·{s} + 1 + {op} + 2·({d}·({k} − 1) − {p}) − {d}·({k} − 1)",
                                 value, note))
        cin, cout, groups = inputs[0][0], out[0], a["groups"]
        per_group = f"({cout}/{groups})" if groups > 1 else str(cout)
        taps = "·".join(map(str, kernel))
        weights = f"{cin}·{per_group}·{taps}"
        counts = self.counts(a, inputs, out)
        params = f"{weights} + {cout}" if a["bias"] else weights
        return [
            *sizes,
            Formula("weights", weights, counts.weights,
                    "Cin·(Cout/groups)·∏K: PyTorch's weight is Cin × Cout/groups × K…"),
            Formula("params", params, counts.params, "" if a["bias"] else "no bias"),
            Formula("MACs", f"{'·'.join(map(str, inputs[0]))} · {per_group}·{taps}", self.macs(a, inputs, out),
                    "every input element times the whole kernel, as FlopCounterMode counts it"),
        ]

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> Geometry:
        kernel, stride, padding, _, dilation = self._axes(a, len(inputs[0]) - 1)
        return Geometry(kernel, stride, padding, dilation, transposed=True)

    def dense_equivalent(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        return dense_params(inputs[0], out)

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        kernel, stride, padding, extra, dilation = self._axes(a, len(out) - 1)
        cls: Any = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)[len(kernel) - 1]
        return cls(inputs[0][0], out[0], kernel, stride=stride, padding=padding, output_padding=extra,
                   groups=a["groups"], bias=a["bias"], dilation=dilation)
