"""Stochastic depth (Huang et al. 2016), as torchvision's `StochasticDepth(p, mode)`: a residual
branch dropped at random in training — whole rows (samples, mode=row) or the whole batch
(mode=batch) — and an identity at inference, so it counts nothing.

(Issue 14 adds the same layer type in `layers/shuffle.py`; whichever lands second drops its copy.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archcalc.layers.base import Arg, Args, LayerArgError, LayerType, Shaped, register
from archcalc.tensor import Shape


@register
class StochasticDepth(LayerType):
    name = "stochastic-depth"
    aliases = ("drop-path", "droppath")
    args = (Arg("p", "float", required=True, aliases=("prob", "drop_prob")),
            Arg("mode", "str", "row", choices=("row", "batch")))
    summary = ("stochastic depth (drop path) on a residual branch, as torchvision's StochasticDepth: mode row "
               "(per sample) or batch; an identity at inference")
    example = "stochastic-depth(p=0.1), stochastic-depth(p=0.2, mode=batch)"

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        if not 0 <= a["p"] <= 1:
            raise LayerArgError(f"drop probability p={a['p']:g} is not between 0 and 1")
        return Shaped(inputs[0])

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.transformer import StochasticDepth as TorchStochasticDepth

        return TorchStochasticDepth(a["p"], a["mode"])
