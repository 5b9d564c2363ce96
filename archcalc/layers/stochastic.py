"""Stochastic depth (Huang et al. 2016, "Deep Networks with Stochastic Depth"): in training a
residual branch is dropped with probability p — per sample ("row") or for the whole batch
("batch") — and the survivors scaled by 1/(1 − p); at inference it is the identity, so it has
no parameters, no operations and keeps every receptive field. torchvision's
`ops.StochasticDepth` (EfficientNet, ConvNeXt, Swin) and timm's `DropPath` (row mode)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archcalc.layers.base import Arg, Args, LayerArgError, LayerType, Saved, Shaped, register
from archcalc.layers.imported import Emit, TorchCall, number_text
from archcalc.tensor import Shape


@register
class StochasticDepth(LayerType):
    name = "stochastic-depth"
    aliases = ("drop-path", "droppath")
    args = (Arg("p", "float", required=True, aliases=("prob", "drop_prob")),
            Arg("mode", "str", "row", choices=("row", "batch")))
    summary = ("stochastic depth: a residual branch dropped with probability p in training (mode row: per "
               "sample, batch: all at once), the identity at inference")
    example = "stochastic-depth(p=0.2), stochastic-depth(p=0.1, mode=batch), drop-path(p=0.1)"
    torch_modules = ("torchvision.ops.StochasticDepth",)
    torch_functions = ("torchvision.ops.stochastic_depth",)

    def from_torch(self, call: TorchCall) -> Emit | None:
        """The module (p, mode) or torchvision.ops.stochastic_depth(input, p, mode, training)."""
        if call.module is not None:
            p, mode = call.module.p, call.module.mode
        else:
            p, mode = call.arg(1, "p"), call.arg(2, "mode")
        if not isinstance(p, (int, float)) or mode not in ("row", "batch"):
            return None
        return Emit(f"stochastic-depth(p={number_text(p)}" + (", mode=batch)" if mode == "batch" else ")"))

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        if not 0 <= a["p"] <= 1:
            raise LayerArgError(f"stochastic-depth probability p={a['p']:g} is not between 0 and 1", arg="p")
        return Shaped(inputs[0])

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """In training (p > 0), the scaled noise x was multiplied by: one value per sample (row) or one
        for the batch, in the activation dtype (measured)."""
        if not a["p"]:
            return ()
        return (Saved("own", elements=1, per_sample=a["mode"] == "row"),)

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import StochasticDepth as TorchStochasticDepth

        return TorchStochasticDepth(a["p"], a["mode"])
