"""Element-wise activations and softmax. Each counts its own 'other ops' per element."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archcalc.layers.base import Arg, Args, LayerType, OtherOps, register
from archcalc.tensor import Shape, prod


class _Activation(LayerType):
    kind = "activation"
    torch_name: str = ""
    per_element = OtherOps()

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        n = prod(out)
        e = self.per_element
        return OtherOps(e.adds * n, e.multiplies * n, e.divisions * n, e.comparisons * n, e.exponentials * n)

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        return getattr(nn, self.torch_name)()

    def rf_probe_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        """The identity: every gradient passes on unchanged and positive, whatever the activation's slope."""
        from torch import nn

        return nn.Identity()


@register
class ReLU(_Activation):
    name = "relu"
    torch_name = "ReLU"
    per_element = OtherOps(comparisons=1)
    summary = "max(0, x)"
    example = "relu"


@register
class ReLU6(_Activation):
    name = "relu6"
    torch_name = "ReLU6"
    per_element = OtherOps(comparisons=2)
    summary = "min(max(0, x), 6)"
    example = "relu6"


@register
class LeakyReLU(_Activation):
    name = "leaky-relu"
    aliases = ("leakyrelu", "lrelu")
    args = (Arg("slope", "float", 0.01, aliases=("negative_slope",)),)
    per_element = OtherOps(comparisons=1, multiplies=1)
    summary = "x if x > 0 else slope·x"
    example = "leaky-relu, leaky-relu(slope=0.2)"

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        return nn.LeakyReLU(a["slope"])


@register
class Sigmoid(_Activation):
    name = "sigmoid"
    aliases = ("logistic",)
    torch_name = "Sigmoid"
    per_element = OtherOps(exponentials=1, adds=1, divisions=1)
    summary = "1/(1 + e^−x)"
    example = "sigmoid"


@register
class Tanh(_Activation):
    name = "tanh"
    torch_name = "Tanh"
    per_element = OtherOps(exponentials=1, adds=2, divisions=1)
    summary = "(e^2x − 1)/(e^2x + 1)"
    example = "tanh"


@register
class Hardswish(_Activation):
    name = "hardswish"
    aliases = ("h-swish", "hswish")
    torch_name = "Hardswish"
    per_element = OtherOps(adds=1, comparisons=2, multiplies=1, divisions=1)
    summary = "x·relu6(x + 3)/6"
    example = "hardswish"


@register
class Hardsigmoid(_Activation):
    name = "hardsigmoid"
    aliases = ("h-sigmoid", "hsigmoid")
    torch_name = "Hardsigmoid"
    per_element = OtherOps(adds=1, comparisons=2, divisions=1)
    summary = "relu6(x + 3)/6"
    example = "hardsigmoid"


@register
class ELU(_Activation):
    name = "elu"
    args = (Arg("alpha", "float", 1.0),)
    per_element = OtherOps(comparisons=1, exponentials=1, adds=1, multiplies=1)
    summary = "x if x > 0 else alpha·(e^x − 1) (DPN's last BN-activation)"
    example = "elu, elu(alpha=0.5)"

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        return nn.ELU(a["alpha"])


@register
class SiLU(_Activation):
    name = "silu"
    aliases = ("swish",)
    torch_name = "SiLU"
    per_element = OtherOps(exponentials=1, adds=1, divisions=1, multiplies=1)
    summary = "x·sigmoid(x)"
    example = "silu"


@register
class GELU(_Activation):
    name = "gelu"
    torch_name = "GELU"
    per_element = OtherOps(exponentials=1, adds=1, multiplies=2)
    summary = "x·Φ(x)"
    example = "gelu"


@register
class Softmax(_Activation):
    name = "softmax"
    aliases = ("soft-max",)
    per_element = OtherOps(exponentials=1, adds=1, divisions=1)
    summary = "softmax over the channels, or over the features of each step of a sequence"
    example = "soft-max"

    def for_layout(self, a: Args, layout: str) -> Args:
        # channels-first N×C×…: over dim 1; a sequence N×T×F: over the features, the last dim
        return {**a, "dim": -1 if layout == "sequence" else 1}

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        return nn.Softmax(dim=a.get("dim", 1))
