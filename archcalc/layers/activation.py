"""Element-wise activations and softmax. Each counts its own 'other ops' per element."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from archcalc.layers.base import (
    FUNCTIONAL,
    FUNCTIONAL_FLAG,
    SAVED_OUTPUT,
    Arg,
    Args,
    Counts,
    Formula,
    LayerArgError,
    LayerType,
    OtherOps,
    Saved,
    Shaped,
    register,
    saved_input,
)
from archcalc.layers.imported import Emit, OnnxCall, TorchCall, Unsupported, f32, frozen_state, number_text
from archcalc.tensor import Shape, axis_of, prod


class _Activation(LayerType):
    kind = "activation"
    args: ClassVar[tuple[Arg, ...]] = (FUNCTIONAL,)
    flags: ClassVar[Mapping[str, tuple[str, Any]]] = FUNCTIONAL_FLAG
    torch_name: str = ""
    per_element = OtherOps()
    # what its backward keeps, as PyTorch's derivative formulas say (measured:
    # tests/reference/saved_tensors_reference.json): its input, or its output (relu, sigmoid, tanh,
    # softmax: the gradient is a function of the result)
    keeps: ClassVar[str] = "input"

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        return (SAVED_OUTPUT,) if self.keeps == "output" else (saved_input(0),)

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

    def from_torch(self, call: TorchCall) -> Emit | None:
        """One tensor in, the activation's own name out; those with arguments write them."""
        if call.tensor_count() != 1:
            return None
        options = self._torch_options(call)
        return Emit(self.name + (f"({', '.join(options)})" if options else ""))

    def _torch_options(self, call: TorchCall) -> list[str]:
        return []

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        return Emit(self.name) if len(call.inputs) == 1 else None


@register
class ReLU(_Activation):
    keeps = "output"
    name = "relu"
    torch_name = "ReLU"
    per_element = OtherOps(comparisons=1)
    summary = "max(0, x)"
    example = "relu"
    torch_modules = ("torch.nn.ReLU",)
    torch_functions: ClassVar[tuple[str, ...]] = ("torch.nn.functional.relu", "torch.nn.functional.relu_",
        "torch.relu", "torch.relu_", "Tensor.relu", "Tensor.relu_")
    onnx_ops: ClassVar[tuple[str, ...]] = ("Relu",)


def _clip_bounds(call: OnnxCall) -> tuple[float, float]:
    """Clip's min and max: inputs 1 and 2 (opset 11 on), or attributes before."""
    low = call.constants.get(1, call.attrs.get("min", float("-inf")))
    high = call.constants.get(2, call.attrs.get("max", float("inf")))
    return f32(low), f32(high)


@register
class ReLU6(_Activation):
    name = "relu6"
    torch_name = "ReLU6"
    per_element = OtherOps(comparisons=2)
    summary = "min(max(0, x), 6)"
    example = "relu6"
    torch_modules = ("torch.nn.ReLU6",)
    torch_functions: ClassVar[tuple[str, ...]] = ("torch.nn.functional.relu6",)
    onnx_ops: ClassVar[tuple[str, ...]] = ("Clip",)

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        return Emit("relu6") if _clip_bounds(call) == (0.0, 6.0) else None


@register
class LeakyReLU(_Activation):
    name = "leaky-relu"
    aliases = ("leakyrelu", "lrelu")
    args = (Arg("slope", "float", 0.01, aliases=("negative_slope",)), FUNCTIONAL)
    per_element = OtherOps(comparisons=1, multiplies=1)
    summary = "x if x > 0 else slope·x"
    example = "leaky-relu, leaky-relu(slope=0.2)"
    torch_modules = ("torch.nn.LeakyReLU",)
    torch_functions: ClassVar[tuple[str, ...]] = ("torch.nn.functional.leaky_relu", "torch.nn.functional.leaky_relu_")
    onnx_ops: ClassVar[tuple[str, ...]] = ("LeakyRelu",)

    def _torch_options(self, call: TorchCall) -> list[str]:
        slope = call.module.negative_slope if call.module is not None else call.arg(1, "negative_slope", 0.01)
        return [] if slope == 0.01 else [f"slope={number_text(slope)}"]

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        slope = f32(call.attrs.get("alpha", 0.01))
        return Emit("leaky-relu" if abs(slope - 0.01) < 1e-9 else f"leaky-relu(slope={number_text(slope)})")

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        return nn.LeakyReLU(a["slope"])


@register
class Sigmoid(_Activation):
    keeps = "output"
    name = "sigmoid"
    aliases = ("logistic",)
    torch_name = "Sigmoid"
    per_element = OtherOps(exponentials=1, adds=1, divisions=1)
    summary = "1/(1 + e^−x)"
    example = "sigmoid"
    torch_modules = ("torch.nn.Sigmoid",)
    torch_functions: ClassVar[tuple[str, ...]] = ("torch.sigmoid", "torch.nn.functional.sigmoid", "Tensor.sigmoid",
        "Tensor.sigmoid_")
    onnx_ops: ClassVar[tuple[str, ...]] = ("Sigmoid",)


@register
class Tanh(_Activation):
    keeps = "output"
    name = "tanh"
    torch_name = "Tanh"
    per_element = OtherOps(exponentials=1, adds=2, divisions=1)
    summary = "(e^2x − 1)/(e^2x + 1)"
    example = "tanh"
    torch_modules = ("torch.nn.Tanh",)
    torch_functions: ClassVar[tuple[str, ...]] = ("torch.tanh", "torch.nn.functional.tanh", "Tensor.tanh",
        "Tensor.tanh_")
    onnx_ops: ClassVar[tuple[str, ...]] = ("Tanh",)


@register
class Hardswish(_Activation):
    name = "hardswish"
    aliases = ("h-swish", "hswish")
    torch_name = "Hardswish"
    per_element = OtherOps(adds=1, comparisons=2, multiplies=1, divisions=1)
    summary = "x·relu6(x + 3)/6"
    example = "hardswish"
    torch_modules = ("torch.nn.Hardswish",)
    torch_functions: ClassVar[tuple[str, ...]] = ("torch.nn.functional.hardswish",)
    onnx_ops: ClassVar[tuple[str, ...]] = ("HardSwish",)


@register
class Hardsigmoid(_Activation):
    name = "hardsigmoid"
    aliases = ("h-sigmoid", "hsigmoid")
    torch_name = "Hardsigmoid"
    per_element = OtherOps(adds=1, comparisons=2, divisions=1)
    summary = "relu6(x + 3)/6"
    example = "hardsigmoid"
    torch_modules = ("torch.nn.Hardsigmoid",)
    torch_functions: ClassVar[tuple[str, ...]] = ("torch.nn.functional.hardsigmoid",)
    onnx_ops: ClassVar[tuple[str, ...]] = ("HardSigmoid",)

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        """PyTorch's hardsigmoid is ONNX's HardSigmoid with alpha 1/6, beta 1/2 (ONNX's default alpha is 0.2)."""
        alpha, beta = f32(call.attrs.get("alpha", 0.2)), f32(call.attrs.get("beta", 0.5))
        if abs(alpha - 1 / 6) > 1e-6 or abs(beta - 0.5) > 1e-6:
            raise Unsupported(f"alpha={alpha:g}, beta={beta:g}: archcalc's hardsigmoid is relu6(x + 3)/6")
        return Emit("hardsigmoid")


@register
class ELU(_Activation):
    name = "elu"
    args = (Arg("alpha", "float", 1.0), FUNCTIONAL)
    per_element = OtherOps(comparisons=1, exponentials=1, adds=1, multiplies=1)
    summary = "x if x > 0 else alpha·(e^x − 1) (DPN's last BN-activation)"
    example = "elu, elu(alpha=0.5)"
    torch_modules = ("torch.nn.ELU",)
    torch_functions: ClassVar[tuple[str, ...]] = ("torch.nn.functional.elu", "torch.nn.functional.elu_")
    onnx_ops: ClassVar[tuple[str, ...]] = ("Elu",)

    def _torch_options(self, call: TorchCall) -> list[str]:
        alpha = call.module.alpha if call.module is not None else call.arg(1, "alpha", 1.0)
        return [] if alpha == 1.0 else [f"alpha={number_text(alpha)}"]

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        alpha = f32(call.attrs.get("alpha", 1.0))
        return Emit("elu" if alpha == 1.0 else f"elu(alpha={number_text(alpha)})")

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
    torch_modules = ("torch.nn.SiLU",)
    torch_functions: ClassVar[tuple[str, ...]] = ("torch.nn.functional.silu",)
    onnx_ops: ClassVar[tuple[str, ...]] = ()


@register
class GELU(_Activation):
    name = "gelu"
    args = (Arg("approximate", "str", "none", choices=("none", "tanh")), FUNCTIONAL)
    flags = {"tanh": ("approximate", "tanh"), **FUNCTIONAL_FLAG}
    torch_name = "GELU"
    per_element = OtherOps(exponentials=1, adds=1, multiplies=2)
    summary = "x·Φ(x); gelu/tanh the tanh approximation (GPT-2's gelu_new)"
    example = "gelu, gelu/tanh, gelu(approximate=tanh)"
    torch_modules = ("torch.nn.GELU", "transformers.activations.GELUActivation",
                     "transformers.activations.NewGELUActivation", "transformers.activations.GELUTanh")
    torch_functions: ClassVar[tuple[str, ...]] = ("torch.nn.functional.gelu",)
    onnx_ops: ClassVar[tuple[str, ...]] = ("Gelu",)

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        if a["approximate"] == "tanh":  # 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
            n = prod(out)
            return OtherOps(adds=3 * n, multiplies=5 * n, exponentials=n, divisions=n)
        return super().other_ops(a, inputs, out)

    def from_torch(self, call: TorchCall) -> Emit | None:
        if call.tensor_count() != 1:
            return None
        if call.name.startswith("transformers."):  # Hugging Face's gelu (erf) and gelu_new (tanh) modules
            if call.name.endswith(".GELUActivation"):
                if "python" in getattr(call.module.act, "__name__", ""):
                    raise Unsupported("GELUActivation(use_gelu_python=True)")
                return Emit("gelu")
            return Emit("gelu/tanh")
        how = call.module.approximate if call.module is not None else call.arg(1, "approximate", "none")
        return Emit("gelu/tanh" if how == "tanh" else "gelu")

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        return Emit("gelu/tanh" if call.attrs.get("approximate", "none") == "tanh" else "gelu")

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        return nn.GELU(approximate=a["approximate"])


@register
class Hardtanh(_Activation):
    name = "hardtanh"
    args = (Arg("min", "float", -1.0, aliases=("min_val",)), Arg("max", "float", 1.0, aliases=("max_val",)),
            FUNCTIONAL)
    per_element = OtherOps(comparisons=2)
    summary = "min(max(x, min), max): −1 and 1 by default"
    example = "hardtanh, hardtanh(min=0, max=20)"
    torch_modules = ("torch.nn.Hardtanh",)
    torch_functions: ClassVar[tuple[str, ...]] = ("torch.nn.functional.hardtanh", "torch.nn.functional.hardtanh_")
    onnx_ops: ClassVar[tuple[str, ...]] = ("Clip",)

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        low, high = _clip_bounds(call)
        if low == float("-inf") or high == float("inf"):
            return None
        options = [f"{k}={number_text(v)}" for k, v, d in (("min", low, -1.0), ("max", high, 1.0)) if v != d]
        return Emit("hardtanh" + (f"({', '.join(options)})" if options else ""))

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        if a["min"] >= a["max"]:
            raise LayerArgError(f"hardtanh needs min < max, not {a['min']:g} and {a['max']:g}")
        return Shaped(inputs[0])

    def _torch_options(self, call: TorchCall) -> list[str]:
        m = call.module
        if m is not None:
            low, high = m.min_val, m.max_val
        else:
            low, high = call.arg(1, "min_val", -1.0), call.arg(2, "max_val", 1.0)
        return [f"{k}={number_text(v)}" for k, v, d in (("min", low, -1.0), ("max", high, 1.0)) if v != d]

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        return nn.Hardtanh(a["min"], a["max"])


@register
class PReLU(_Activation):
    name = "prelu"
    args = (Arg("per_channel", "bool", False, aliases=("channels",)), Arg("init", "float", 0.25),
            Arg("frozen", "bool", False), FUNCTIONAL)
    flags = {"c": ("per_channel", True), "channels": ("per_channel", True), "frozen": ("frozen", True),
             **FUNCTIONAL_FLAG}
    per_element = OtherOps(comparisons=1, multiplies=1)
    summary = "x if x > 0 else a·x with a learnable slope a: one for all (default) or one per channel (/c)"
    example = "prelu, prelu/c, prelu(per_channel=true)"
    torch_modules = ("torch.nn.PReLU",)
    torch_functions: ClassVar[tuple[str, ...]] = ()
    onnx_ops: ClassVar[tuple[str, ...]] = ("PRelu",)

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        return Counts(weights=self._slopes(a, inputs))

    def _slopes(self, a: Args, inputs: Sequence[Shape]) -> int:
        return inputs[0][0] if a["per_channel"] else 1

    def param_shapes(self, a: Args, inputs: Sequence[Shape], out: Shape) -> dict[str, Shape]:
        return {"weight": (self._slopes(a, inputs),)}

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        """One slope, or one per channel (C)."""
        n = self._slopes(a, inputs)
        return [Formula("weights", str(n), n, "one slope per channel" if a["per_channel"] else "one slope")]

    def from_torch(self, call: TorchCall) -> Emit | None:
        m = call.module
        channels = call.inputs[0][0] if call.inputs[0] else 1
        if m.num_parameters not in (1, channels):
            raise Unsupported(f"{m.num_parameters} slopes for {channels} channels")
        text = "prelu/c" if m.num_parameters > 1 else "prelu"
        return Emit(text + ("/frozen" if frozen_state(m) else ""))

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        slope = call.weights.get(1)
        if slope is None:
            raise Unsupported("its slope is computed, not an initializer")
        per_channel = len(call.inputs[0]) > 0 and slope[:1] == call.inputs[0][:1] and call.inputs[0][0] > 1
        return Emit("prelu/c" if per_channel else "prelu", owns=(1,))

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        return nn.PReLU(self._slopes(a, inputs), init=a["init"])


@register
class Softmax(_Activation):
    keeps = "output"
    name = "softmax"
    aliases: ClassVar[tuple[str, ...]] = ("soft-max",)
    args = (Arg("dim", "int", None), FUNCTIONAL)
    per_element = OtherOps(exponentials=1, adds=1, divisions=1)
    torch_class = "Softmax"
    summary = ("softmax over a dim (PyTorch's); by default the channels, the features of each step of a "
               "sequence, or the last axis of a plain tensor")
    example = "soft-max, softmax(dim=-1)"
    torch_modules = ("torch.nn.Softmax",)
    torch_functions: ClassVar[tuple[str, ...]] = ("torch.nn.functional.softmax", "torch.softmax", "Tensor.softmax")
    onnx_ops: ClassVar[tuple[str, ...]] = ("Softmax",)

    def for_layout(self, a: Args, layout: str) -> Args:
        # channels-first N×C×…: over dim 1; a sequence N×T×F or a plain tensor: the last dim
        return a if a.get("dim") is not None else {**a, "dim": 1 if layout == "channels" else -1}

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        if inputs[0]:
            try:
                axis_of(a["dim"], len(inputs[0]))
            except ValueError as e:
                raise LayerArgError(str(e)) from None
        return Shaped(inputs[0])

    def from_torch(self, call: TorchCall) -> Emit | None:
        if call.tensor_count() != 1:
            return None
        dim = call.module.dim if call.module is not None else call.arg(1, "dim")
        if dim is None:
            raise Unsupported("no dim (PyTorch's implicit choice, deprecated): give dim=")
        return Emit(f"{self.name}(dim={dim})")

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        return Emit(f"{self.name}(dim={int(call.attrs.get('axis', -1))})")

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        return getattr(nn, self.torch_class)(dim=a.get("dim", 1))


@register
class LogSoftmax(Softmax):
    name = "log-softmax"
    aliases = ("logsoftmax", "log_softmax")
    per_element = OtherOps(exponentials=2, adds=2)  # x − max − log Σ e^(x − max): exp and log
    torch_class = "LogSoftmax"
    summary = "log of the softmax over a dim, as nn.LogSoftmax (the same default dim as softmax)"
    example = "log-softmax, log-softmax(dim=-1)"
    torch_modules = ("torch.nn.LogSoftmax",)
    torch_functions: ClassVar[tuple[str, ...]] = ("torch.nn.functional.log_softmax", "torch.log_softmax",
        "Tensor.log_softmax")
    onnx_ops: ClassVar[tuple[str, ...]] = ("LogSoftmax",)
