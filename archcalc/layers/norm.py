"""Normalisation: batch norm (`bn`, 1-D/2-D/3-D by the input's rank), instance norm and local response norm (`LRN`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archcalc.layers.base import (
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
from archcalc.layers.window import GLOBAL, spatial_rank
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
    torch_modules = ("torch.nn.BatchNorm1d", "torch.nn.BatchNorm2d", "torch.nn.BatchNorm3d")
    onnx_ops = ("BatchNormalization",)

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

    def from_torch(self, call: TorchCall) -> Emit | None:
        m = call.module
        if not m.track_running_stats:
            raise Unsupported("track_running_stats=False: archcalc's bn holds running statistics")
        given = {"eps": m.eps, "momentum": m.momentum}  # momentum None (a cumulative mean) counts alike
        options = [f"{k}={number_text(v)}" for k, v in given.items()
                   if v is not None and v != {"eps": 1e-5, "momentum": 0.1}[k]]
        if not m.affine:
            options.append("affine=false")
        text = "bn" + ("/frozen" if frozen_state(m) else "")
        return Emit(text + (f"({', '.join(options)})" if options else ""))

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        """BatchNormalization in inference form: scale and bias are parameters, mean and variance
        buffers (plus the batch counter PyTorch's BatchNorm holds, as archcalc's bn counts)."""
        if any(i not in call.weights for i in (1, 2, 3, 4)):
            raise Unsupported("its scale, bias, mean or variance is computed, not an initializer")
        eps = f32(call.attrs.get("epsilon", 1e-5))
        options = [] if abs(eps - 1e-5) < 1e-12 else [f"eps={number_text(eps)}"]
        return Emit("bn" + (f"({', '.join(options)})" if options else ""), owns=(1, 2, 3, 4))
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
class InstanceNorm(LayerType):
    """Each sample's channel normalised over its own positions, as nn.InstanceNorm1d/2d/3d: no
    affine parameters and no running statistics by default (PyTorch's defaults)."""

    name = "instancenorm"
    aliases = ("instance-norm",)
    args = (Arg("eps", "float", 1e-5), Arg("momentum", "float", 0.1), Arg("affine", "bool", False),
            Arg("track_running_stats", "bool", False, aliases=("track", "running_stats")),
            Arg("frozen", "bool", False))
    flags = {"affine": ("affine", True), "track": ("track_running_stats", True), "frozen": ("frozen", True)}
    kind = "norm"
    summary = ("instance norm over each sample's positions; /affine: γ, β learnable; /track: running mean and "
               "var (and the batch counter) as buffers, used at inference")
    example = "instancenorm, instancenorm/affine, instance-norm(affine=true, track_running_stats=true)"

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        spatial_rank(inputs, self.name)
        if prod(inputs[0][1:]) == 1 and not a["track_running_stats"]:
            raise LayerArgError(f"instance norm over one position ({'×'.join(map(str, inputs[0]))}) has no "
                                "statistics: PyTorch expects more than 1 spatial element")
        return Shaped(inputs[0])

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        c = inputs[0][0]
        learnable = c if a["affine"] else 0
        return Counts(weights=learnable, biases=learnable, buffers=2 * c + 1 if a["track_running_stats"] else 0)

    def param_shapes(self, a: Args, inputs: Sequence[Shape], out: Shape) -> dict[str, Shape]:
        c = inputs[0][0]
        return {"weight": (c,), "bias": (c,)} if a["affine"] else {}

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        """2·C learnable with /affine; 2·C + 1 buffers with /track."""
        c, counts = inputs[0][0], self.counts(a, inputs, out)
        formulas = [Formula("params", f"2·{c}", counts.params, "γ and β") if a["affine"]
                    else Formula("params", "0", 0, "affine=False")]
        if a["track_running_stats"]:
            formulas.append(Formula("buffers", f"2·{c} + 1", counts.buffers, "running mean and var, batch counter"))
        return formulas

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        """At inference with running statistics a per-channel affine map (1 multiply, 1 add); else per
        element Σx and Σx² (2 adds, 1 multiply), − mean (1 add) and ÷ std (1 division), then γ, β."""
        n = prod(out)
        if a["track_running_stats"]:
            return OtherOps(multiplies=n, adds=n)
        affine = n if a["affine"] else 0
        return OtherOps(adds=3 * n + affine, multiplies=n + affine, divisions=n)

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> str | None:
        """Statistics over every position make each output see the whole input; running ones do not."""
        return None if a["track_running_stats"] else GLOBAL

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        cls: Any = (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)[len(out) - 2]
        return cls(out[0], eps=a["eps"], momentum=a["momentum"], affine=a["affine"],
                   track_running_stats=a["track_running_stats"])

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """PyTorch runs it as a batch norm of the 1 × N·C × … reshaped input: it keeps that input and,
        per sample and channel, the mean and the inverse std, the weight repeated N times (affine)
        and the running mean and var repeated (track_running_stats), measured with saved_tensors_hooks;
        nothing where neither the input nor the weight needs a gradient."""
        if not (input_grad[0] or (a["affine"] and weight_grad)):
            return ()
        per_channel = 2 + (1 if a["affine"] else 0) + (2 if a["track_running_stats"] else 0)
        return (saved_input(0), Saved("own", elements=per_channel * inputs[0][0], dtype="float32"))

    def rf_probe_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        """The identity (probed only with running statistics, where it is a per-channel affine map)."""
        from torch import nn

        return nn.Identity()


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
    torch_modules = ("torch.nn.LocalResponseNorm",)
    onnx_ops = ("LRN",)

    def from_torch(self, call: TorchCall) -> Emit | None:
        m = call.module
        return Emit(_lrn_text(m.size, m.alpha, m.beta, m.k))

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        a = call.attrs
        return Emit(_lrn_text(int(a["size"]), f32(a.get("alpha", 1e-4)), f32(a.get("beta", 0.75)),
                              f32(a.get("bias", 1.0))))

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
        from archcalc.pytorch.modules import LocalResponseNorm

        return LocalResponseNorm(a["size"], alpha=a["alpha"], beta=a["beta"], k=a["k"])

    def rf_probe_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        """The identity: LRN's division by the neighbours' energy can turn a gradient negative."""
        from torch import nn

        return nn.Identity()


def _lrn_text(size: int, alpha: float, beta: float, k: float) -> str:
    given = {"size": size, "alpha": alpha, "beta": beta, "k": k}
    defaults = {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}
    options = [f"{key}={number_text(v)}" for key, v in given.items() if v != defaults[key]]
    return "lrn" + (f"({', '.join(options)})" if options else "")
