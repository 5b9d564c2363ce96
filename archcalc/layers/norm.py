"""Normalisation: batch norm (`bn`, 1-D/2-D/3-D by the input's rank) and local response norm (`LRN`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archcalc.layers.base import (
    Arg,
    Args,
    Counts,
    Formula,
    LayerType,
    OtherOps,
    Saved,
    Shaped,
    register,
    saved_input,
)
from archcalc.layers.window import spatial_rank
from archcalc.tensor import Shape, prod


@register
class BatchNorm(LayerType):
    name = "bn"
    aliases = ("batchnorm", "batch-norm")
    args = (Arg("eps", "float", 1e-5), Arg("momentum", "float", 0.1), Arg("affine", "bool", True),
            Arg("frozen", "bool", False))
    flags = {"frozen": ("frozen", True)}
    kind = "norm"
    summary = "batch norm: γ, β learnable; running mean, running var and the batch counter are buffers"
    example = "bn, batchnorm(eps=0.001)"

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        c = inputs[0][0]
        learnable = c if a["affine"] else 0
        return Counts(weights=learnable, biases=learnable, buffers=2 * c + 1)

    def param_shapes(self, a: Args, inputs: Sequence[Shape], out: Shape) -> dict[str, Shape]:
        c = inputs[0][0]
        return {"weight": (c,), "bias": (c,)} if a["affine"] else {}

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        """2·C learnable (γ, β) and 2·C + 1 buffers (running mean, running var, batch counter)."""
        c, counts = inputs[0][0], self.counts(a, inputs, out)
        learnable = (Formula("params", f"2·{c}", counts.params, "γ and β") if a["affine"]
                     else Formula("params", "0", counts.params, "affine=False"))
        buffers = Formula("buffers", f"2·{c} + 1", counts.buffers, "running mean and var, batch counter")
        return [learnable, buffers]

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        # at inference BN is a per-channel affine map x·a + b
        return OtherOps(multiplies=prod(out), adds=prod(out))

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """In training: its input, and the batch's mean and inverse standard deviation per channel
        (float32, whatever the batch), frozen or not."""
        c = inputs[0][0]
        stat = Saved("own", elements=c, dtype="float32", per_sample=False)
        return (saved_input(0), stat, stat)

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        rank = max(1, len(out) - 1)
        cls: Any = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)[rank - 1]
        return cls(out[0], eps=a["eps"], momentum=a["momentum"], affine=a["affine"])


@register
class LRN(LayerType):
    name = "lrn"
    aliases = ("local-response-norm",)
    args = (
        Arg("size", "int", 5, aliases=("n",), minimum=1),
        Arg("alpha", "float", 1e-4),
        Arg("beta", "float", 0.75),
        Arg("k", "float", 2.0),
    )
    kind = "norm"
    summary = "local response normalisation across channels (AlexNet: n=5, α=1e-4, β=0.75, k=2)"
    example = "LRN, lrn(size=5, k=2)"

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        spatial_rank(inputs, self.name)  # torch's LocalResponseNorm needs C×L, C×H×W or C×D×H×W
        return Shaped(inputs[0])

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        n = prod(out)
        # per element: square-sum over `size` neighbours, one power, one division
        return OtherOps(multiplies=n * (a["size"] + 1), adds=n * a["size"], exponentials=n, divisions=n)

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """F.local_response_norm's pieces: its input, the squares padded by size − 1 channels, and two
        tensors of the input's size (the pooled sum and its power)."""
        c, positions = inputs[0][0], prod(inputs[0][1:])
        padded = Saved("own", elements=(c + a["size"] - 1) * positions)
        same = Saved("own", elements=prod(inputs[0]))
        return (saved_input(0), padded, same, same)

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        return nn.LocalResponseNorm(a["size"], alpha=a["alpha"], beta=a["beta"], k=a["k"])

    def rf_probe_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        """The identity: LRN's division by the neighbours' energy can turn a gradient negative."""
        from torch import nn

        return nn.Identity()
