"""Fully connected layers: `FC-4096`, `fc-10`, `linear(out=128, bias=false)`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archcalc.layers.base import (
    GLOBAL,
    Arg,
    Args,
    Counts,
    Formula,
    LayerArgError,
    LayerType,
    OtherOps,
    Shape,
    Shaped,
    prod,
    register,
)


@register
class Linear(LayerType):
    name = "fc"
    aliases = ("linear", "dense", "fully-connected")
    patterns = (r"(?:fc|linear)-?(?P<out_features>\d+)",)
    flags = {"nobias": ("bias", False), "bias": ("bias", True)}
    args = (
        Arg("out_features", "int", required=True, aliases=("out", "c", "units"), minimum=1),
        Arg("bias", "bool", True),
    )
    kind = "fc"
    weighted = True
    summary = "fully connected layer; a spatial input is flattened first (an implicit flatten node)"
    example = "FC-4096, fc-10/nobias, linear(out=128)"

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        if len(inputs[0]) != 1:
            raise LayerArgError(f"'fc' needs a flat input, got {'×'.join(map(str, inputs[0]))}")
        return Shaped((a["out_features"],))

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        return Counts(weights=inputs[0][0] * out[0], biases=out[0] if a["bias"] else 0)

    def macs(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        """in·out per sample: one MAC per weight."""
        return inputs[0][0] * out[0]

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        return OtherOps(adds=prod(out) if a["bias"] else 0)

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        """in·out weights (+ out biases); in·out MACs."""
        weights = f"{inputs[0][0]}·{out[0]}"
        counts = self.counts(a, inputs, out)
        return [
            Formula("weights", weights, counts.weights),
            Formula("params", f"{weights} + {out[0]}" if a["bias"] else weights, counts.params,
                    "" if a["bias"] else "no bias"),
            Formula("MACs", weights, self.macs(a, inputs, out)),
        ]

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> str:
        return GLOBAL

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        return nn.Linear(inputs[0][0], a["out_features"], bias=a["bias"])
