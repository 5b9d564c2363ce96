"""Layers of the classic papers: LeNet-5's connection-table convolution, subsampling and
RBF output (LeCun et al. 1998, Sec. II.B), and AlphaGo's per-position bias (Silver et
al. 2016, Methods).

LeNet-5 counts "connections" as well as trainable parameters: every input a unit reads,
plus one for its bias. `connections` gives that figure, so the paper's per-layer numbers
(C1 122,304; S2 5,880; C3 151,600; S4 2,000; C5 48,120) come out of the report.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from archcalc.layers.base import (
    Arg,
    Args,
    Counts,
    Formula,
    Gradients,
    LayerArgError,
    LayerType,
    OtherOps,
    Saved,
    Shaped,
    dense_params,
    per_axis,
    register,
    saved_input,
)
from archcalc.layers.window import (
    SPATIAL_OPTIONS,
    Geometry,
    spatial_rank,
    window_formulas,
    window_geometry,
    window_shape,
)
from archcalc.tensor import Shape, prod

Table = tuple[tuple[int, ...], ...]


def parse_table(value: Any) -> Table:
    """`"0,1,2; 1,2,3"` or `[0 1 2; 1 2 3]` → ((0, 1, 2), (1, 2, 3)): the input maps of each output map.

    Output maps are separated by ';', the input maps of one by ',' or spaces.
    """
    if isinstance(value, tuple):
        return tuple(tuple(int(i) for i in entry) for entry in value)
    text = str(value).strip().strip("\"'").strip()
    if text[:1] + text[-1:] in ("[]", "()"):
        text = text[1:-1]
    table = []
    for number, entry in enumerate(text.split(";")):
        words = [w for w in re.split(r"[,\s]+", entry.strip()) if w]
        if not words:
            raise LayerArgError(f"connection table: output map {number} reads no input map")
        # a map number of thousands of digits would hit Python's int-from-text limit: no net has 10¹⁸ maps
        bad = next((w for w in words if not (w.isascii() and w.isdigit() and len(w) <= 18)), None)
        if bad is not None:
            raise LayerArgError(f"connection table: output map {number}: '{bad[:20]}{'…' if len(bad) > 20 else ''}' "
                                "is not a map number")
        maps = tuple(int(w) for w in words)
        if len(set(maps)) != len(maps):
            raise LayerArgError(f"connection table: output map {number} names an input map twice")
        table.append(maps)
    return tuple(table)


@register
class TableConv(LayerType):
    name = "table-conv"
    aliases = ("connection-table-conv",)
    patterns = (r"table-conv(?P<kernel>\d+(?:x\d+)*)-(?P<out_channels>\d+)",)
    options = SPATIAL_OPTIONS
    flags = {"nobias": ("bias", False), "bias": ("bias", True), "frozen": ("frozen", True)}
    args = (
        Arg("table", "str", required=True, aliases=("connections",)),
        Arg("out_channels", "int", None, aliases=("c", "out", "filters"), minimum=1),
        Arg("kernel", "size", required=True, aliases=("k", "kernel_size"), minimum=1),
        Arg("stride", "size", 1, aliases=("s",), minimum=1),
        Arg("padding", "size", None, aliases=("p", "pad"), minimum=0),
        Arg("dilation", "size", 1, aliases=("d",), minimum=1),
        Arg("bias", "bool", True),
        Arg("frozen", "bool", False),
    )
    kind = "conv"
    layout = "channels"
    weighted = True
    summary = ("convolution whose output map j reads only the input maps listed in entry j of a "
               "connection table (LeNet-5's C3, Table I)")
    example = 'table-conv5-3/p0(table="0,1,2; 1,2,3; 0,2"), table-conv(k=3, table=[0 1; 1 2])'

    def normalize(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        a = super().normalize(raw)
        a["table"] = parse_table(a["table"])
        if a["out_channels"] is not None and a["out_channels"] != len(a["table"]):
            raise LayerArgError(
                f"the connection table lists {len(a['table'])} output maps, "
                f"but out_channels is {a['out_channels']}"
            )
        a["out_channels"] = len(a["table"])
        return a

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        cin = inputs[0][0]
        for number, entry in enumerate(a["table"]):
            missing = next((i for i in entry if i >= cin), None)
            if missing is not None:
                raise LayerArgError(
                    f"connection table: output map {number} reads input map {missing}, "
                    f"but the input has {cin} maps (0–{cin - 1})"
                )
        return window_shape(self.name, a, inputs, len(a["table"]))

    def _fan_in(self, a: Args) -> int:
        """Input maps summed over output maps: Σ_j |table_j| (60 for LeNet-5's C3)."""
        return sum(len(entry) for entry in a["table"])

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        kernel = per_axis(a["kernel"], len(out) - 1)
        return Counts(weights=self._fan_in(a) * prod(kernel), biases=out[0] if a["bias"] else 0)

    def macs(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        """∏O·Σ_j |table_j|·∏K: one MAC per weight per output position (as conv, only the listed maps)."""
        kernel = per_axis(a["kernel"], len(out) - 1)
        return prod(out[1:]) * self._fan_in(a) * prod(kernel)

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        return OtherOps(adds=prod(out) if a["bias"] else 0)

    def _fan_in_groups(self, a: Args) -> dict[int, int]:
        """Input maps read → how many output maps read that many: each such set runs as one grouped
        convolution in the torch module (`archcalc.pytorch.modules.TableConv`)."""
        sizes: dict[int, int] = {}
        for entry in a["table"]:
            sizes[len(entry)] = sizes.get(len(entry), 0) + 1
        return sizes

    def gradients(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
                  weight_grad: bool) -> Gradients:
        """As a convolution's: the forward's MACs for the input gradient and for the weight
        gradient. The torch module runs one grouped convolution per fan-in, whose weight gradient
        FlopCounterMode counts once per group (`Conv.gradients`)."""
        f = self.macs(a, inputs, out)
        grad_in, grad_w = (f if input_grad[0] else 0), (f if weight_grad else 0)
        per_map = prod(out[1:]) * prod(per_axis(a["kernel"], len(out) - 1))
        counted = sum(maps * maps * n * per_map for n, maps in self._fan_in_groups(a).items())
        if not grad_w or counted == grad_w:
            return Gradients(grad_in, grad_w)
        return Gradients(grad_in, grad_w, grad_in + counted,
                         "FlopCounterMode counts each grouped convolution's weight gradient once per group")

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """What the torch module's pieces keep: the gathered input maps of each fan-in group
        (Σ_j |table_j| maps), and the int64 indices of the gathers, of the biases it picks and of
        the final reordering (not per sample)."""
        positions = prod(inputs[0][1:])
        gathered = Saved("own", elements=self._fan_in(a) * positions)
        indices = self._fan_in(a) + out[0] + (out[0] if a["bias"] else 0)
        return (gathered, Saved("own", elements=indices, dtype="int64", per_sample=False))

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        """K·K·Σ(maps read) weights: output maps grouped by how many input maps they read."""
        g = self.geometry(a, inputs)
        sizes: dict[int, int] = {}
        for entry in a["table"]:
            sizes[len(entry)] = sizes.get(len(entry), 0) + 1
        fan_in = "(" + " + ".join(f"{n}·{count}" for n, count in sorted(sizes.items())) + ")"
        kernel = "·".join(map(str, g.kernel))
        counts = self.counts(a, inputs, out)
        weights = f"{kernel}·{fan_in}"
        listed = ", ".join(f"{count} maps read {n}" for n, count in sorted(sizes.items()))
        return [
            *window_formulas(a, inputs, out, g),
            Formula("weights", weights, counts.weights, listed),
            Formula("params", f"{weights} + {out[0]}" if a["bias"] else weights, counts.params),
            Formula("MACs", f"{'·'.join(map(str, out[1:]))} · {weights}", self.macs(a, inputs, out)),
        ]

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> Geometry:
        return window_geometry(a, len(inputs[0]) - 1)

    def dense_equivalent(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        return dense_params(inputs[0], out)

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import TableConv as TorchTableConv

        g = self.geometry(a, inputs)
        return TorchTableConv(inputs[0][0], a["table"], g.kernel, g.stride, g.padding, g.dilation, bias=a["bias"])


@register
class Subsampling(LayerType):
    name = "subsampling"
    aliases = ("subsample", "sub-sampling")
    patterns = (r"subsampl(?:e|ing)(?P<kernel>\d+(?:x\d+)*)",)
    options = {"s": "stride"}
    flags = {"nobias": ("bias", False), "bias": ("bias", True), "frozen": ("frozen", True)}
    args = (
        Arg("kernel", "size", (2,), aliases=("k", "kernel_size"), minimum=1),
        Arg("stride", "size", None, aliases=("s",), minimum=1),
        Arg("bias", "bool", True),
        Arg("frozen", "bool", False),
    )
    kind = "pool"
    layout = "channels"
    weighted = True  # the paper squashes its output and counts it among the 7 trainable layers
    summary = ("LeNet-5's subsampling: each window's inputs summed, times one trainable coefficient "
               "per map, plus one trainable bias per map")
    example = "subsampling, subsampling2/s2, subsampling(k=3, s=2)"

    def _args(self, a: Args) -> dict[str, Any]:
        return {**a, "padding": (0,), "dilation": 1}

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        return window_shape(self.name, self._args(a), inputs, inputs[0][0])

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        c = inputs[0][0]
        return Counts(weights=c, biases=c if a["bias"] else 0)

    def macs(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        """0: the window is summed first, then multiplied once (element-wise; FlopCounterMode counts none)."""
        return 0

    def _window(self, a: Args, out: Shape) -> int:
        return prod(per_axis(a["kernel"], len(out) - 1))

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        n = prod(out)
        return OtherOps(adds=n * (self._window(a, out) - 1) + (n if a["bias"] else 0), multiplies=n)

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """The torch module's pieces: the pool keeps its input, the product its two factors (the
        window sums, for the coefficient's gradient; the scaled coefficient, per channel)."""
        kept: list[Saved] = []
        if input_grad[0]:
            kept += [saved_input(0), Saved("own", elements=inputs[0][0], per_sample=False)]
        if weight_grad:
            kept.append(Saved("own", elements=prod(out)))
        return tuple(kept)

    def connections(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        """Each unit reads its window and its bias: C·H·W·(K·K + 1), 5,880 for LeNet-5's S2."""
        return prod(out) * (self._window(a, out) + (1 if a["bias"] else 0))

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        """C coefficients and C biases, whatever the map size."""
        c, counts = inputs[0][0], self.counts(a, inputs, out)
        g = self.geometry(a, inputs)
        return [
            *window_formulas(self._args(a), inputs, out, g),
            Formula("weights", str(c), counts.weights, "one coefficient per map"),
            Formula("params", f"2·{c}" if a["bias"] else str(c), counts.params, "a coefficient and a bias per map"),
            Formula("MACs", "0", 0, "sum, then one multiply: element-wise"),
        ]

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> Geometry:
        spatial_rank(inputs, self.name)
        return window_geometry(self._args(a), len(inputs[0]) - 1)

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import Subsampling as TorchSubsampling

        g = self.geometry(a, inputs)
        return TorchSubsampling(inputs[0][0], g.kernel, g.stride, bias=a["bias"])


@register
class RBF(LayerType):
    name = "rbf"
    aliases = ("euclidean-rbf",)
    patterns = (r"rbf-?(?P<out_features>\d+)",)
    flags = {"trainable": ("trainable", True), "fixed": ("trainable", False)}
    args = (
        Arg("out_features", "int", required=True, aliases=("out", "c", "units"), minimum=1),
        Arg("trainable", "bool", False, aliases=("learnable",)),
    )
    kind = "other"
    weighted = True  # LeNet-5's seventh layer: F6 before it keeps its squashing
    summary = ("Euclidean RBF units y_i = Σ_j (x_j − w_ij)² (LeNet-5's output); the centers are fixed "
               "(buffers) unless /trainable")
    example = "rbf-10, rbf(out=10, trainable=true)"

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        if len(inputs[0]) != 1:
            raise LayerArgError(f"'rbf' needs a flat input, got {'×'.join(map(str, inputs[0]))}")
        return Shaped((a["out_features"],))

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        """in·out centers: weights when trainable; the paper fixes them (±1 bitmaps), so buffers."""
        centers = inputs[0][0] * out[0]
        return Counts(weights=centers) if a["trainable"] else Counts(buffers=centers)

    def macs(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        """0: differences squared and summed element-wise (FlopCounterMode counts none); see other ops."""
        return 0

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        n, k = out[0], inputs[0][0]
        # per unit: k differences, k squares, k − 1 adds
        return OtherOps(adds=n * k + n * (k - 1), multiplies=n * k)

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """The differences x_j − w_ij (in·out per sample), for the square's gradient."""
        return (Saved("own", elements=inputs[0][0] * out[0]),)

    def connections(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        """Every unit reads every input: in·out."""
        return inputs[0][0] * out[0]

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        """in·out centers, learnable or fixed."""
        centers = f"{inputs[0][0]}·{out[0]}"
        what = "weights" if a["trainable"] else "buffers"
        note = "" if a["trainable"] else "fixed centers (the paper's ±1 bitmaps)"
        return [Formula(what, centers, inputs[0][0] * out[0], note), Formula("MACs", "0", 0, "element-wise")]

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import RBF as TorchRBF

        return TorchRBF(inputs[0][0], out[0], trainable=a["trainable"])


@register
class PositionBias(LayerType):
    name = "position-bias"
    aliases = ("per-position-bias",)
    args = (Arg("frozen", "bool", False),)
    flags = {"frozen": ("frozen", True)}
    summary = "a learnable bias for every element of the input, x + b (AlphaGo's 'different bias for each position')"
    example = "position-bias"

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        return Counts(biases=prod(inputs[0]))

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        return OtherOps(adds=prod(out))

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        return ()

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        """One bias per element: C·H·W."""
        return [Formula("biases", "·".join(map(str, inputs[0])), prod(inputs[0]), "one per position")]

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import PositionBias as TorchPositionBias

        return TorchPositionBias(tuple(inputs[0]))
