"""Fully connected layers: `FC-4096`, `fc-10`, `linear(out=128, bias=false)`.

As PyTorch's nn.Linear, the layer maps the last axis. Lowering puts a flatten in front
of a channels-first input (C×H×W, what papers mean by an FC after a conv); on a sequence
(T×F, from an embedding or an RNN) it applies per time step: T×F → T×out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archcalc.layers.base import (
    REGISTRY,
    Arg,
    Args,
    Counts,
    Formula,
    Gradients,
    Implied,
    LayerArgError,
    LayerType,
    OtherOps,
    Saved,
    Shaped,
    register,
    saved_input,
)
from archcalc.layers.imported import Emit, OnnxCall, TorchCall, Unsupported, frozen_state
from archcalc.layers.window import GLOBAL
from archcalc.tensor import Shape, prod


@register
class Linear(LayerType):
    name = "fc"
    aliases = ("linear", "dense", "fully-connected")
    patterns = (r"(?:fc|linear)-?(?P<out_features>\d+)",)
    flags = {"nobias": ("bias", False), "bias": ("bias", True), "frozen": ("frozen", True)}
    args = (
        Arg("out_features", "int", required=True, aliases=("out", "c", "units"), minimum=1),
        Arg("bias", "bool", True),
        Arg("frozen", "bool", False),
    )
    kind = "fc"
    weighted = True
    summary = ("fully connected layer; a spatial input is flattened first (an implicit flatten node), "
               "a sequence T×F is mapped per time step")
    example = "FC-4096, fc-10/nobias, linear(out=128)"
    # Hugging Face's Conv1D (GPT-2) is a linear layer with its weight stored in × out
    torch_modules = ("torch.nn.Linear", "transformers.pytorch_utils.Conv1D")
    onnx_ops = ("Gemm",)

    def implicit_before(self, a: Args, inputs: Sequence[Shape], layouts: Sequence[str]) -> tuple[Implied, ...]:
        """A feature map (C×H×W, what papers mean by an FC after a conv) is flattened first; a
        sequence T×F is mapped per time step, a plain tensor along its last axis (nn.Linear)."""
        if len(inputs[0]) > 1 and layouts[0] == "channels":
            return (Implied("flatten", REGISTRY["flatten"].normalize({}), "flatten"),)
        return ()

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        if not inputs[0]:
            raise LayerArgError("'fc' needs an input with at least one axis")
        return Shaped((*inputs[0][:-1], a["out_features"]))

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        return Counts(weights=inputs[0][-1] * out[-1], biases=out[-1] if a["bias"] else 0)

    def param_shapes(self, a: Args, inputs: Sequence[Shape], out: Shape) -> dict[str, Shape]:
        shapes: dict[str, Shape] = {"weight": (out[-1], inputs[0][-1])}  # nn.Linear's: out × in
        return {**shapes, "bias": (out[-1],)} if a["bias"] else shapes

    def macs(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        """in·out per sample, one MAC per weight; times T when applied per time step."""
        return prod(out[:-1]) * inputs[0][-1] * out[-1]

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        return OtherOps(adds=prod(out) if a["bias"] else 0)

    def gradients(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
                  weight_grad: bool) -> Gradients:
        """grad_x = grad_y·W and grad_W = grad_yᵀ·x: one `mm` each, the forward's MACs, each only
        where needed (the bias gradient is a sum: 0)."""
        f = self.macs(a, inputs, out)
        return Gradients(f if input_grad[0] else 0, f if weight_grad else 0)

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """Its input, for the weight gradient: only when the weight is trained."""
        return (saved_input(0),) if weight_grad else ()

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        """in·out weights (+ out biases); in·out MACs (T·in·out per sequence)."""
        weights = f"{inputs[0][-1]}·{out[-1]}"
        counts = self.counts(a, inputs, out)
        steps = out[:-1]
        return [
            Formula("weights", weights, counts.weights),
            Formula("params", f"{weights} + {out[-1]}" if a["bias"] else weights, counts.params,
                    "" if a["bias"] else "no bias"),
            Formula("MACs", "·".join([*map(str, steps), weights]), self.macs(a, inputs, out),
                    "per time step" if steps else ""),
        ]

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> str | None:
        # per time step it mixes no positions; on a flat vector it sees everything
        return GLOBAL if len(inputs[0]) == 1 else None

    def from_torch(self, call: TorchCall) -> Emit | None:
        m = call.module
        out = m.nf if call.name.endswith("Conv1D") else m.out_features
        return Emit(f"fc-{out}" + ("" if m.bias is not None else "/nobias") + ("/frozen" if frozen_state(m) else ""))

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        """Gemm as torch.onnx exports nn.Linear: Y = X·Bᵀ + C (transB=1), or X·B + C (transB=0)."""
        weight = call.weights.get(1)
        if weight is None or call.input_count > 2 and 2 not in call.weights:
            raise Unsupported("its weight or bias is computed, not an initializer")
        a = call.attrs
        if a.get("transA", 0) or float(a.get("alpha", 1.0)) != 1.0 or float(a.get("beta", 1.0)) != 1.0:
            raise Unsupported("transA, alpha or beta other than nn.Linear's")
        out = weight[0] if a.get("transB", 0) else weight[1]
        bias = call.weights.get(2)
        if bias is not None and bias != (out,):
            raise Unsupported(f"a bias of shape {bias} (nn.Linear's is ({out},))")
        return Emit(f"fc-{out}" + ("" if bias is not None else "/nobias"), owns=(1, 2))

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        return nn.Linear(inputs[0][-1], a["out_features"], bias=a["bias"])
