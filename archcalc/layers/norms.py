"""The normalisations of transformers and their CNN descendants: layer norm over the last axis (or
the last N axes), its channels-first 2-D form (ConvNeXt's LayerNorm2d), RMS norm and group norm.

Each holds what PyTorch's module holds (`nn.LayerNorm`: weight and bias of the normalised shape,
`nn.RMSNorm`: a weight, `nn.GroupNorm`: weight and bias per channel) and no buffers: unlike
batch norm they keep no running statistics. None multiplies two tensors, so their MACs are 0
(FlopCounterMode counts 0 for them too); their work is other ops.
"""

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
from archcalc.layers.window import GLOBAL
from archcalc.tensor import Shape, format_shape, prod


def _normalized(a: Args, shape: Shape, layer: str) -> Shape:
    """The trailing axes a layer or RMS norm normalises over: the last `axes` of the input."""
    if len(shape) < a["axes"]:
        raise LayerArgError(f"'{layer}' over the last {a['axes']} axes needs as many, got {format_shape(shape)}")
    return tuple(shape[-a["axes"]:])


def _times(ops: OtherOps, n: int) -> OtherOps:
    return OtherOps(ops.adds * n, ops.multiplies * n, ops.divisions * n, ops.comparisons * n, ops.exponentials * n)


def _statistics(elements: int, groups: int, centred: bool) -> OtherOps:
    """Normalising `elements` in `groups`: layer and group norm per element Σx, x − μ, (x − μ)² and
    its sum, × 1/σ; per group two divisions by N, + eps and the square root. RMS norm per
    element x², its sum and × 1/rms; per group one division, + eps and the square root."""
    if centred:
        per_element, per_group = OtherOps(adds=3, multiplies=2), OtherOps(adds=1, divisions=2, exponentials=1)
    else:
        per_element, per_group = OtherOps(adds=1, multiplies=2), OtherOps(adds=1, divisions=1, exponentials=1)
    return _times(per_element, elements) + _times(per_group, groups)


def _affine(elements: int, scale: bool, shift: bool) -> OtherOps:
    return OtherOps(multiplies=elements if scale else 0, adds=elements if shift else 0)


def _mixes_positions(a: Args, rank: int, normalized_axes: set[int]) -> bool:
    """Whether the normalised axes include a position axis of the input's layout (the statistics
    of one output then come from several positions)."""
    layout = a.get("layout", "sequence")
    positions = set(range(rank - 1)) if layout == "sequence" else set(range(1, rank)) if layout == "channels" \
        else set()
    return bool(positions & normalized_axes)


def _flat(value: Any) -> list[Any]:
    """A constant (a number, nested lists or an array) as a flat list."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flat(v)]
    return [value]


def _norm_text(name: str, axes: int, eps: float, default_eps: float, affine: bool, bias: bool,
               frozen: bool = False) -> str:
    """A layer or RMS norm as the spec writes it: `layernorm/nobias(eps=1e-6, axes=2)`."""
    flags = ("" if affine else "/noaffine") + ("/nobias" if affine and not bias else "") + ("/frozen" if frozen else "")
    options = ([] if eps == default_eps else [f"eps={number_text(eps)}"]) + ([] if axes == 1 else [f"axes={axes}"])
    return name + flags + (f"({', '.join(options)})" if options else "")


def _statistics_kept(groups: int, dtype: str = "float32") -> tuple[Saved, ...]:
    """A normalisation's mean and inverse standard deviation, one each per group of each sample."""
    stat = Saved("own", elements=groups, dtype=dtype)
    return (stat, stat)


class _LastAxes(LayerType):
    kind = "norm"

    def _groups(self, a: Args, inputs: Sequence[Shape]) -> int:
        """Rows normalised apart: the positions before the normalised axes."""
        return prod(inputs[0]) // prod(_normalized(a, inputs[0], self.name))

    def for_inputs(self, a: Args, layouts: Sequence[str], batched: Sequence[bool]) -> Args:
        return {**a, "layout": layouts[0]}

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        _normalized(a, inputs[0], self.name)
        return Shaped(inputs[0])

    def param_shapes(self, a: Args, inputs: Sequence[Shape], out: Shape) -> dict[str, Shape]:
        normalized = _normalized(a, inputs[0], self.name)
        c = self.counts(a, inputs, out)
        shapes = {"weight": normalized, "bias": normalized}
        return {k: v for k, v in shapes.items() if (c.weights if k == "weight" else c.biases)}

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> str | None:
        rank = len(inputs[0])
        return GLOBAL if _mixes_positions(a, rank, set(range(rank - a["axes"], rank))) else None

    def rf_probe_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        """The identity: a normalisation's gradient can be negative, so paths could cancel."""
        from torch import nn

        return nn.Identity()


@register
class LayerNorm(_LastAxes):
    name = "layernorm"
    aliases = ("layer-norm", "ln")
    args = (Arg("eps", "float", 1e-5), Arg("axes", "int", 1, minimum=1, aliases=("last",)),
            Arg("affine", "bool", True, aliases=("elementwise_affine",)), Arg("bias", "bool", True),
            Arg("frozen", "bool", False))
    flags = {"nobias": ("bias", False), "noaffine": ("affine", False), "frozen": ("frozen", True)}
    summary = ("layer norm over the last axis (or the last N: axes=N), as nn.LayerNorm: weight and bias of "
               "the normalised shape (/nobias: weight only, /noaffine: neither); eps 1e-5")
    example = "layernorm, layernorm(eps=1e-6), layernorm(axes=2), layernorm/nobias"
    torch_modules = ("torch.nn.LayerNorm",)
    onnx_ops = ("LayerNormalization",)

    def from_torch(self, call: TorchCall) -> Emit | None:
        m = call.module
        affine = bool(m.elementwise_affine)
        return Emit(_norm_text("layernorm", len(tuple(m.normalized_shape)), m.eps, 1e-5, affine,
                               bias=m.bias is not None, frozen=frozen_state(m)))

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        """LayerNormalization(X, scale, B) over the axes from `axis` on (torch.onnx writes nn.LayerNorm so)."""
        zero_bias = 2 in call.constants and not any(float(v) for v in _flat(call.constants[2]))  # bias=False
        if 1 not in call.weights or call.input_count > 2 and 2 not in call.weights and not zero_bias:
            raise Unsupported("its scale or bias is computed, not an initializer")
        rank = len(call.inputs[0]) + 1
        axis = int(call.attrs.get("axis", -1))
        axes = rank - (axis % rank)
        if axes >= rank:
            raise Unsupported("it normalises over the batch axis")
        text = _norm_text("layernorm", axes, f32(call.attrs.get("epsilon", 1e-5)), 1e-5, True,
                          bias=2 in call.weights)
        return Emit(text, inputs=(0,), owns=(1, 2))

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        n = prod(_normalized(a, inputs[0], self.name)) if a["affine"] else 0
        return Counts(weights=n, biases=n if a["bias"] else 0)

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """`native_layer_norm`'s backward keeps its input and the mean and inverse std of each row
        (float32), trained or frozen, affine or not (measured)."""
        return (saved_input(0), *_statistics_kept(self._groups(a, inputs)))

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        n = prod(out)
        groups = n // prod(_normalized(a, inputs[0], self.name))
        return _statistics(n, groups, centred=True) + _affine(n, a["affine"], a["affine"] and a["bias"])

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        """γ (and β) of the normalised shape."""
        normalized = _normalized(a, inputs[0], self.name)
        c = self.counts(a, inputs, out)
        size = "·".join(map(str, normalized))
        if not a["affine"]:
            return [Formula("params", "0", 0, "elementwise_affine=False")]
        return [Formula("weights", size, c.weights, "γ"),
                Formula("params", f"2·{size}" if a["bias"] else size, c.params, "γ and β" if a["bias"] else "γ only")]

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        return nn.LayerNorm(_normalized(a, inputs[0], self.name), eps=a["eps"], elementwise_affine=a["affine"],
                            bias=a["bias"])


@register
class RMSNorm(_LastAxes):
    name = "rmsnorm"
    aliases = ("rms-norm",)
    args = (Arg("eps", "float", 1e-6), Arg("axes", "int", 1, minimum=1, aliases=("last",)),
            Arg("affine", "bool", True, aliases=("elementwise_affine",)), Arg("frozen", "bool", False))
    flags = {"noaffine": ("affine", False), "frozen": ("frozen", True)}
    summary = ("RMS norm over the last axis (or the last N), as nn.RMSNorm and LLaMA's RMSNorm: x/√(mean x² + eps)·γ, "
               "one weight per feature, no bias, no mean subtracted; eps 1e-6")
    example = "rmsnorm, rmsnorm(eps=1e-5)"
    torch_modules = ("torch.nn.RMSNorm",)

    def from_torch(self, call: TorchCall) -> Emit | None:
        m = call.module
        if m.eps is None:
            raise Unsupported("eps=None (the dtype's machine epsilon): archcalc's rmsnorm takes a number")
        return Emit(_norm_text("rmsnorm", len(tuple(m.normalized_shape)), m.eps, 1e-6, bool(m.elementwise_affine),
                               bias=True, frozen=frozen_state(m)))

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        return Counts(weights=prod(_normalized(a, inputs[0], self.name)) if a["affine"] else 0)

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """Measured (nn.RMSNorm, torch 2.14's composite form on CPU): for the input gradient its input
        and each row's inverse rms; for the weight gradient the normalised input x/rms (a tensor of its
        own), in the activation dtype."""
        kept: tuple[Saved, ...] = ()
        if input_grad[0]:
            kept = (saved_input(0), Saved("own", elements=self._groups(a, inputs)))
        if weight_grad:
            kept += (Saved("own", elements=prod(inputs[0])),)
        return kept

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        n = prod(out)
        groups = n // prod(_normalized(a, inputs[0], self.name))
        return _statistics(n, groups, centred=False) + _affine(n, a["affine"], False)

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        """γ of the normalised shape."""
        size = "·".join(map(str, _normalized(a, inputs[0], self.name)))
        c = self.counts(a, inputs, out)
        return [Formula("params", size if a["affine"] else "0", c.params, "γ; no bias")]

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        return nn.RMSNorm(_normalized(a, inputs[0], self.name), eps=a["eps"], elementwise_affine=a["affine"])


class _PerChannel(LayerType):
    """A norm of a channels-first tensor whose weight and bias are one per channel."""

    kind = "norm"

    def _channels(self, inputs: Sequence[Shape]) -> int:
        if len(inputs[0]) < 2:
            raise LayerArgError(f"'{self.name}' normalises a channels-first tensor C×…, got {format_shape(inputs[0])}")
        return inputs[0][0]

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        self._channels(inputs)
        return Shaped(inputs[0])

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        c = self._channels(inputs) if a["affine"] else 0
        return Counts(weights=c, biases=c)

    def param_shapes(self, a: Args, inputs: Sequence[Shape], out: Shape) -> dict[str, Shape]:
        c = self._channels(inputs)
        return {"weight": (c,), "bias": (c,)} if a["affine"] else {}

    def _groups(self, a: Args, inputs: Sequence[Shape]) -> int:
        raise NotImplementedError

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """Its input and the mean and inverse std of each group of each sample (float32; measured)."""
        return (saved_input(0), *_statistics_kept(self._groups(a, inputs)))

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        """2·C: γ and β per channel."""
        c = self._channels(inputs)
        return [Formula("params", f"2·{c}" if a["affine"] else "0", self.counts(a, inputs, out).params,
                        "γ and β per channel" if a["affine"] else "affine=False")]

    def rf_probe_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        return nn.Identity()


@register
class LayerNorm2d(_PerChannel):
    name = "layernorm2d"
    aliases = ("layernorm-channels", "ln2d")
    args = (Arg("eps", "float", 1e-6), Arg("affine", "bool", True, aliases=("elementwise_affine",)))
    summary = ("layer norm over the channels of a channels-first tensor at every position (torchvision's "
               "LayerNorm2d, ConvNeXt's): C×H×W → C×H×W, 2·C parameters; eps 1e-6")
    example = "layernorm2d, layernorm2d(eps=1e-6)"
    torch_modules = ("torchvision.models.convnext.LayerNorm2d",)

    def from_torch(self, call: TorchCall) -> Emit | None:
        """torchvision's LayerNorm2d: an nn.LayerNorm over the channels, applied channels last."""
        m = call.module
        if len(tuple(m.normalized_shape)) != 1 or m.bias is None and m.elementwise_affine:
            raise Unsupported("a LayerNorm2d over more than the channels, or without a bias")
        text = "layernorm2d" + ("/frozen" if frozen_state(m) else "")
        options = ([] if m.eps == 1e-6 else [f"eps={number_text(m.eps)}"]) + \
            ([] if m.elementwise_affine else ["affine=false"])
        return Emit(text + (f"({', '.join(options)})" if options else ""))

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        n = prod(out)
        return _statistics(n, n // out[0], centred=True) + _affine(n, a["affine"], a["affine"])

    def _groups(self, a: Args, inputs: Sequence[Shape]) -> int:
        """One row per position: the channels are normalised at each."""
        return prod(inputs[0][1:])

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.transformer import LayerNorm2d as TorchLayerNorm2d

        return TorchLayerNorm2d(out[0], eps=a["eps"], elementwise_affine=a["affine"])


@register
class GroupNorm(_PerChannel):
    name = "groupnorm"
    aliases = ("group-norm", "gn")
    args = (Arg("groups", "int", required=True, minimum=1, aliases=("num_groups", "g")), Arg("eps", "float", 1e-5),
            Arg("affine", "bool", True))
    summary = ("group norm, as nn.GroupNorm: the channels in `groups` groups, each normalised over its channels "
               "and every position; weight and bias per channel")
    example = "groupnorm(32), groupnorm(groups=8, eps=1e-6)"
    torch_modules = ("torch.nn.GroupNorm",)

    def from_torch(self, call: TorchCall) -> Emit | None:
        m = call.module
        options = [str(m.num_groups)] + ([] if m.eps == 1e-5 else [f"eps={number_text(m.eps)}"]) + \
            ([] if m.affine else ["affine=false"])
        return Emit("groupnorm" + ("/frozen" if frozen_state(m) else "") + f"({', '.join(options)})")

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        c = self._channels(inputs)
        if c % a["groups"]:
            raise LayerArgError(f"groups={a['groups']} must divide the {c} channels", arg="groups")
        return Shaped(inputs[0])

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        n = prod(out)
        return _statistics(n, a["groups"], centred=True) + _affine(n, a["affine"], a["affine"])

    def _groups(self, a: Args, inputs: Sequence[Shape]) -> int:
        return int(a["groups"])

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> str | None:
        """Global where there are positions: each group's statistics come from all of them."""
        return GLOBAL if len(inputs[0]) > 1 else None

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        return nn.GroupNorm(a["groups"], out[0], eps=a["eps"], affine=a["affine"])
