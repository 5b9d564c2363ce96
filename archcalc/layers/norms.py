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

from archcalc.layers.base import Arg, Args, Counts, Formula, LayerArgError, LayerType, OtherOps, Shaped, register
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


class _LastAxes(LayerType):
    kind = "norm"

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
            Arg("affine", "bool", True, aliases=("elementwise_affine",)), Arg("bias", "bool", True))
    flags = {"nobias": ("bias", False), "noaffine": ("affine", False)}
    summary = ("layer norm over the last axis (or the last N: axes=N), as nn.LayerNorm: weight and bias of "
               "the normalised shape (/nobias: weight only, /noaffine: neither); eps 1e-5")
    example = "layernorm, layernorm(eps=1e-6), layernorm(axes=2), layernorm/nobias"

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        n = prod(_normalized(a, inputs[0], self.name)) if a["affine"] else 0
        return Counts(weights=n, biases=n if a["bias"] else 0)

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
            Arg("affine", "bool", True, aliases=("elementwise_affine",)))
    flags = {"noaffine": ("affine", False)}
    summary = ("RMS norm over the last axis (or the last N), as nn.RMSNorm and LLaMA's RMSNorm: x/√(mean x² + eps)·γ, "
               "one weight per feature, no bias, no mean subtracted; eps 1e-6")
    example = "rmsnorm, rmsnorm(eps=1e-5)"

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        return Counts(weights=prod(_normalized(a, inputs[0], self.name)) if a["affine"] else 0)

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

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        n = prod(out)
        return _statistics(n, n // out[0], centred=True) + _affine(n, a["affine"], a["affine"])

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

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        c = self._channels(inputs)
        if c % a["groups"]:
            raise LayerArgError(f"groups={a['groups']} must divide the {c} channels", arg="groups")
        return Shaped(inputs[0])

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        n = prod(out)
        return _statistics(n, a["groups"], centred=True) + _affine(n, a["affine"], a["affine"])

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> str | None:
        """Global where there are positions: each group's statistics come from all of them."""
        return GLOBAL if len(inputs[0]) > 1 else None

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        return nn.GroupNorm(a["groups"], out[0], eps=a["eps"], affine=a["affine"])
