"""The rest of a transformer block: the position-wise MLP (GELU, GELU-tanh, ReLU, SiLU; gated: SwiGLU,
GeGLU), the layer scale of CaiT/ConvNeXt, and Swin's patch-merging rearrangement.

The MLP is one layer (kind `mlp`, so a report's totals by kind show attention against MLP) that
holds the modules PyTorch's MLPs hold, in their call order (`parts`): fc1, the activation,
[a dropout], fc2 — or, gated, gate, the activation, up and down (Hugging Face's LLaMA MLP).
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
    LayerArgError,
    LayerType,
    OtherOps,
    Part,
    Saved,
    Shaped,
    register,
    saved_input,
)
from archcalc.layers.imported import Emit, TorchCall, Unsupported, frozen_state
from archcalc.layers.window import Geometry
from archcalc.tensor import Shape, format_shape, prod

CHANNELS_LAST = "channels-last map H×W×C (features last, as after permute(0, 2, 3, 1))"

# the activations an MLP takes: the registered layer type (and its arguments) that counts its work
MLP_ACTIVATIONS: dict[str, tuple[str, dict[str, str]]] = {
    "gelu": ("gelu", {}), "gelu-tanh": ("gelu", {"approximate": "tanh"}), "relu": ("relu", {}),
    "silu": ("silu", {}), "tanh": ("tanh", {}), "sigmoid": ("sigmoid", {}),
}


@register
class MLP(LayerType):
    name = "mlp"
    aliases = ("ffn", "feed-forward")
    flags = {"gated": ("gated", True), "nobias": ("bias", False), "bias": ("bias", True), "conv1d": ("conv1d", True),
             "frozen": ("frozen", True), "sequential": ("sequential", True)}
    args = (
        Arg("hidden", "int", required=True, aliases=("intermediate", "intermediate_size", "inner", "d_ff"),
            minimum=1),
        Arg("act", "str", "gelu", aliases=("activation", "hidden_act"), choices=tuple(MLP_ACTIVATIONS)),
        Arg("gated", "bool", False, aliases=("glu",)),
        Arg("bias", "bool", True),
        Arg("dropout", "float", None, aliases=("p",)),
        Arg("conv1d", "bool", False),
        Arg("out", "int", None, aliases=("out_features",), minimum=1),
        Arg("frozen", "bool", False),
        Arg("sequential", "bool", False),
    )
    kind = "mlp"
    path_depth = 2  # two linear layers in a row (q/k/v then out; fc1 then fc2)
    summary = ("the position-wise MLP on the last axis: fc1 (F → hidden), act, [dropout], fc2 (hidden → F); "
               "/gated: down(act(gate(x))·up(x)) (SwiGLU with act=silu, GeGLU with gelu); /nobias; "
               "/conv1d: GPT-2's Conv1D weights (in×out); /sequential: one nn.Sequential, its linears "
               "0 and 3 (torchvision's MLPBlock; 0 and 2 without dropout)")
    example = "mlp(hidden=3072), mlp/conv1d(hidden=3072, act=gelu-tanh), mlp/gated/nobias(hidden=11008, act=silu)"

    torch_modules = ("transformers.models.gpt2.modeling_gpt2.GPT2MLP",)

    def from_torch(self, call: TorchCall) -> Emit | None:
        """Hugging Face's GPT2MLP: c_fc and c_proj Conv1D (weights in×out), the activation, dropout."""
        m = call.module
        acts = {"NewGELUActivation": "gelu-tanh", "GELUTanh": "gelu-tanh", "GELUActivation": "gelu"}
        act = acts.get(type(m.act).__name__)
        if act is None:
            raise Unsupported(f"the activation {type(m.act).__name__} (archcalc's mlp has "
                              f"{', '.join(MLP_ACTIVATIONS)})")
        if act == "gelu" and "python" in getattr(getattr(m.act, "act", None), "__name__", ""):
            raise Unsupported("GELUActivation with use_gelu_python")
        frozen = "/frozen" if frozen_state(m) else ""
        return Emit(f"mlp/conv1d{frozen}(hidden={m.c_fc.nf}, act={act})")

    def _sizes(self, a: Args, inputs: Sequence[Shape]) -> tuple[int, int, int, int]:
        """(positions, F, hidden, out)."""
        shape = inputs[0]
        if not shape:
            raise LayerArgError("'mlp' needs an input with at least one axis")
        return prod(shape[:-1]), shape[-1], a["hidden"], a["out"] or shape[-1]

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        if a["dropout"] is not None and not 0 <= a["dropout"] <= 1:
            raise LayerArgError(f"dropout probability p={a['dropout']:g} is not between 0 and 1")
        if a["gated"] and a["dropout"] is not None:
            raise LayerArgError("a gated MLP (LLaMA's) has no dropout between its layers")
        if a["sequential"] and (a["gated"] or a["conv1d"]):
            raise LayerArgError("/sequential is torchvision's MLP (nn.Linear, act, [dropout], nn.Linear): "
                                "not gated, not Conv1D", arg="sequential")
        _, _, _, out = self._sizes(a, inputs)
        return Shaped((*inputs[0][:-1], out))

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        _, f, h, o = self._sizes(a, inputs)
        ins = 2 if a["gated"] else 1
        return Counts(weights=ins * f * h + h * o, biases=(ins * h + o) if a["bias"] else 0)

    def param_shapes(self, a: Args, inputs: Sequence[Shape], out: Shape) -> dict[str, Shape]:
        _, f, h, o = self._sizes(a, inputs)
        layers = [("gate", f, h), ("up", f, h), ("down", h, o)] if a["gated"] else [("fc1", f, h), ("fc2", h, o)]
        if a["sequential"]:  # the module's own names: nn.Sequential's indices
            layers = [("0", f, h), ("3" if a["dropout"] is not None else "2", h, o)]
        shapes: dict[str, Shape] = {}
        for name, i, j in layers:
            shapes[f"{name}.weight"] = (i, j) if a["conv1d"] else (j, i)  # Conv1D: in × out; nn.Linear: out × in
            if a["bias"]:
                shapes[f"{name}.bias"] = (j,)
        return shapes

    def macs(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        """T·(F·hidden + hidden·out), and T·F·hidden more when gated (the up projection)."""
        t, f, h, o = self._sizes(a, inputs)
        return t * ((2 if a["gated"] else 1) * f * h + h * o)

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        """The activation's own ops on T·hidden elements (as its layer type counts them), the gate's
        T·hidden multiplies, and the bias adds."""
        t, _, h, o = self._sizes(a, inputs)
        kind, extra = MLP_ACTIVATIONS[a["act"]]
        act = REGISTRY[kind]
        inner = (*inputs[0][:-1], h)
        ops = act.other_ops(act.normalize(extra), [inner], inner)
        gate = OtherOps(multiplies=t * h) if a["gated"] else OtherOps()
        biases = OtherOps(adds=t * ((2 if a["gated"] else 1) * h + o)) if a["bias"] else OtherOps()
        return ops + gate + biases

    def gradients(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
                  weight_grad: bool) -> Gradients:
        """Its linear layers as linear layers: the ones reading the MLP's input (fc1; gate and up) have a
        grad-input only where that input needs one, the last (fc2, down) always; every one a
        grad-weight where the MLP is trained."""
        t, f, h, _ = self._sizes(a, inputs)
        macs = self.macs(a, inputs, out)
        first = (2 if a["gated"] else 1) * t * f * h
        return Gradients(macs - (0 if input_grad[0] else first), macs if weight_grad else 0)

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """Measured: where trained, its input (fc1's, or gate's and up's: one tensor) and the last
        linear layer's input; the activation's input (GELU, SiLU) or its output (ReLU, tanh, sigmoid:
        one tensor with the last layer's input when nothing is between them); a dropout's mask and
        output (p > 0); gated: up's output and the activation's output, both kept by the product."""
        t, _, h, _ = self._sizes(a, inputs)
        inner = Saved("own", elements=t * h)
        keeps_output = REGISTRY[MLP_ACTIVATIONS[a["act"]][0]].keeps == "output"  # type: ignore[attr-defined]
        kept = [saved_input(0)] if weight_grad else []
        if a["gated"]:
            kept += [inner, inner] if keeps_output else [inner, inner, inner]  # (gate), act, up
            return tuple(kept + ([inner] if weight_grad else []))  # the product, down's input
        kept += [inner]  # the activation's input or output
        if a["dropout"]:
            kept.append(Saved("own", elements=t * h, dtype="mask"))
            return tuple(kept + ([inner] if weight_grad else []))
        return tuple(kept + ([inner] if weight_grad and not keeps_output else []))

    def parts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> tuple[Part, ...]:
        """fc1, act, [dropout], fc2 — or gate, act, up, down — each a module, in call order."""
        inner = (*inputs[0][:-1], a["hidden"])
        if a["gated"]:
            return Part("gate", inner), Part("act", inner), Part("up", inner), Part("down", tuple(out))
        dropout = (Part("dropout", inner),) if a["dropout"] is not None else ()
        return (Part("fc1", inner), Part("act", inner), *dropout, Part("fc2", tuple(out)))

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        """Weights of the two (gated: three) linear layers, their biases, and T·(…) MACs."""
        t, f, h, o = self._sizes(a, inputs)
        c = self.counts(a, inputs, out)
        first = f"2·{f}·{h}" if a["gated"] else f"{f}·{h}"
        formulas = [Formula("weights", f"{first} + {h}·{o}", c.weights,
                            "gate, up and down" if a["gated"] else "fc1 and fc2")]
        if a["bias"]:
            formulas.append(Formula("biases", f"{'2·' if a['gated'] else ''}{h} + {o}", c.biases))
        formulas.append(Formula("MACs", f"{t}·({first} + {h}·{o})", self.macs(a, inputs, out), "per position"))
        return formulas

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.transformer import MLP as TorchMLP

        _, f, h, o = self._sizes(a, inputs)
        if a["sequential"]:
            from archcalc.pytorch.transformer import SequentialMLP

            return SequentialMLP(f, h, o, a["act"], biased=a["bias"], inner_dropout=a["dropout"])
        return TorchMLP(f, h, o, a["act"], gated=a["gated"], biased=a["bias"], inner_dropout=a["dropout"],
                        conv1d=a["conv1d"])

    def rf_probe_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        """The MLP with an identity for its activation: every gradient stays positive."""
        from torch import nn

        module = self.torch_module(a, inputs, out)
        if a["sequential"]:
            module[1] = nn.Identity()
        else:
            module.act = nn.Identity()
        return module


@register
class LayerScale(LayerType):
    name = "layer-scale"
    aliases = ("layerscale",)
    args = (Arg("init", "float", 1e-6, aliases=("value", "layer_scale")),)
    summary = ("x·γ with one learned scale per channel (CaiT, ConvNeXt): γ of shape C×1×1 on a channels-first "
               "tensor, F on a sequence; initialised to init (1e-6)")
    example = "layer-scale, layer-scale(init=1e-5)"

    def for_inputs(self, a: Args, layouts: Sequence[str], batched: Sequence[bool]) -> Args:
        return {**a, "layout": layouts[0]}

    def _gamma(self, a: Args, shape: Shape) -> Shape:
        if not shape:
            raise LayerArgError("'layer-scale' needs an input with at least one axis")
        if a.get("layout") == "channels":
            return (shape[0],) + (1,) * (len(shape) - 1)
        return (shape[-1],)

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        self._gamma(a, inputs[0])
        return Shaped(inputs[0])

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        return Counts(weights=prod(self._gamma(a, inputs[0])))

    def param_shapes(self, a: Args, inputs: Sequence[Shape], out: Shape) -> dict[str, Shape]:
        return {"layer_scale": self._gamma(a, inputs[0])}

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        return OtherOps(multiplies=prod(out))

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """x·γ keeps x for γ's gradient (γ itself is a parameter); measured."""
        return (saved_input(0),) if weight_grad else ()

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        gamma = self._gamma(a, inputs[0])
        return [Formula("weights", str(prod(gamma)), prod(gamma), f"γ of shape {format_shape(gamma)}")]

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.transformer import LayerScale as TorchLayerScale

        return TorchLayerScale(self._gamma(a, inputs[0]), a["init"])


@register
class PatchMerging(LayerType):
    name = "patch-merging"
    aliases = ("patch-merge",)
    layout = "sequence"
    summary = ("Swin's patch merging rearrangement on a channels-last map: H×W×C → ⌈H/2⌉×⌈W/2⌉×4C, each 2×2 "
               "neighbourhood's four vectors side by side in torchvision's order (odd sides padded); follow it "
               "with layernorm and fc-{2C}/nobias")
    example = "patch-merging, layernorm, fc-192/nobias"
    torch_functions = ("torchvision.models.swin_transformer._patch_merging_pad",)

    def from_torch(self, call: TorchCall) -> Emit | None:
        """torchvision's `_patch_merging_pad(x)` (fx-wrapped: one call), the rearrangement its
        PatchMerging and PatchMergingV2 run before their norm and reduction modules."""
        return Emit("patch-merging")

    def for_inputs(self, a: Args, layouts: Sequence[str], batched: Sequence[bool]) -> Args:
        return {**a, "layout": layouts[0]}

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        shape = inputs[0]
        if len(shape) != 3 or a.get("layout") == "channels":
            raise LayerArgError(f"'patch-merging' reads a {CHANNELS_LAST}, got {format_shape(shape)}"
                                + (" channels first" if a.get("layout") == "channels" else ""))
        h, w, c = shape
        return Shaped((-(-h // 2), -(-w // 2), 4 * c))

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """A pad, strided slices and a concatenation: their backward needs only sizes (measured)."""
        return ()

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> Geometry:
        """A 2×2 window with stride 2 over the two position axes."""
        return Geometry((2, 2), (2, 2), (0, 0), (1, 1))

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.transformer import PatchMerging as TorchPatchMerging

        return TorchPatchMerging()
