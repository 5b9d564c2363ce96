"""Squeeze-and-excitation (Hu et al. 2018) as one layer: torchvision's `ops.SqueezeExcitation`.

    x · gate(fc2(act(fc1(gap(x)))))

fc1 and fc2 are 1×1 convolutions with biases (C → squeeze → C), `act` is ReLU by default (SiLU in
EfficientNet), `gate` a sigmoid by default (a hard sigmoid in MobileNetV3). Every figure is the
sum of what its five modules and the multiply count as the layer types a spec would write them
with (`gap, conv1-S, relu, conv1-C, sigmoid` and `mul(@in, @gate)`), so writing the block by hand
and writing `squeeze-excitation(S)` give the same parameters, MACs, other ops and FLOPs. The gate
is computed from a global pool: every output unit sees the whole input (a GLOBAL field).
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
    dense_params,
    register,
    saved_input,
)
from archcalc.layers.window import GLOBAL
from archcalc.tensor import Shape, prod

SE_ACTIVATIONS = ("relu", "silu")
SE_GATES = ("sigmoid", "hardsigmoid")


@register
class SqueezeExcitation(LayerType):
    name = "squeeze-excitation"
    aliases = ("squeeze-excite", "squeeze-and-excitation", "se-block")
    patterns = (r"se-(?P<squeeze>\d+)",)
    flags = {"hardsigmoid": ("gate", "hardsigmoid"), "sigmoid": ("gate", "sigmoid"), "silu": ("act", "silu"),
             "relu": ("act", "relu"), "frozen": ("frozen", True)}
    args = (
        Arg("squeeze", "int", required=True, aliases=("squeeze_channels", "sq", "s"), minimum=1),
        Arg("act", "str", "relu", aliases=("activation",), choices=SE_ACTIVATIONS),
        Arg("gate", "str", "sigmoid", aliases=("scale_activation",), choices=SE_GATES),
        Arg("frozen", "bool", False),
    )
    kind = "conv"
    path_depth = 2  # fc1 then fc2
    summary = ("squeeze-and-excitation, torchvision's SqueezeExcitation: x · gate(fc2(act(fc1(gap(x))))), fc1 and "
               "fc2 1×1 convs with biases (C → squeeze → C); act relu (/silu), gate sigmoid (/hardsigmoid)")
    example = "se-16, squeeze-excitation/hardsigmoid(squeeze=240), se-8/silu"

    def _channels(self, a: Args, inputs: Sequence[Shape]) -> tuple[int, int]:
        return inputs[0][0], a["squeeze"]

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        if not 2 <= len(inputs[0]) <= 4:
            raise LayerArgError(f"squeeze-excitation needs a channels-first C×L, C×H×W or C×D×H×W input, "
                                f"not {'×'.join(map(str, inputs[0]))}")
        return Shaped(inputs[0])

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        c, s = self._channels(a, inputs)
        return Counts(weights=2 * c * s, biases=s + c)

    def param_shapes(self, a: Args, inputs: Sequence[Shape], out: Shape) -> dict[str, Shape]:
        c, s = self._channels(a, inputs)
        ones = (1,) * (len(inputs[0]) - 1)
        return {"fc1.weight": (s, c, *ones), "fc1.bias": (s,), "fc2.weight": (c, s, *ones), "fc2.bias": (c,)}

    def macs(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        """C·S + S·C: the two 1×1 convolutions on the pooled 1×1 map."""
        c, s = self._channels(a, inputs)
        return 2 * c * s

    def _pieces(self, a: Args, inputs: Sequence[Shape]) -> list[tuple[str, dict[str, Any], Shape, Shape]]:
        """(layer type, arguments, input, output) of each module, as the hand-written block has them."""
        c, s = self._channels(a, inputs)
        ones = (1,) * (len(inputs[0]) - 1)
        pooled, squeezed = (c, *ones), (s, *ones)
        return [("adaptive-avgpool", {"size": 1}, inputs[0], pooled),
                ("conv", {"out_channels": s, "kernel": 1}, pooled, squeezed),
                (a["act"], {}, squeezed, squeezed),
                ("conv", {"out_channels": c, "kernel": 1}, squeezed, pooled),
                (a["gate"], {}, pooled, pooled)]

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        """The pool's, the biases', the activation's and the gate's ops as their layer types count
        them, and C·H·W multiplies for the scaling."""
        ops = OtherOps(multiplies=prod(out))
        for kind, args, i, o in self._pieces(a, inputs):
            layer = REGISTRY[kind]
            ops = ops + layer.other_ops(layer.normalize(args), [i], o)
        return ops

    def parts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> tuple[Part, ...]:
        """avgpool, fc1, activation, fc2, scale_activation: torchvision's modules in call order."""
        names = ("avgpool", "fc1", "activation", "fc2", "scale_activation")
        return tuple(Part(name, tuple(o)) for name, (_, _, _, o) in zip(names, self._pieces(a, inputs), strict=True))

    def gradients(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
                  weight_grad: bool) -> Gradients:
        """Each 1×1 convolution's input gradient (fc2's wherever anything before it is trained or
        needs one, fc1's only where the input needs one) and, trained, both weight gradients:
        C·S MACs each, as FlopCounterMode's convolution_backward counts them."""
        one = self.macs(a, inputs, out) // 2
        grad_in = (one if input_grad[0] else 0) + (one if input_grad[0] or weight_grad else 0)
        return Gradients(grad_in, 2 * one if weight_grad else 0)

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """Measured with saved_tensors_hooks (tests/reference/zoo14_training_reference.json): the input
        (the multiply keeps it; the pool too where it needs a gradient), the pooled C values (fc1's
        input), the squeezed S values (a ReLU's output, which is fc2's input; a SiLU keeps its input
        as well) and the gate's C values (a sigmoid keeps its output, which the multiply keeps too; a
        hard sigmoid keeps its input, fc2's output, and the multiply its output where the input
        needs a gradient), trained or frozen; nothing where neither needs a gradient."""
        if not (input_grad[0] or weight_grad):
            return ()
        c, s = self._channels(a, inputs)
        acts = 2 if a["act"] == "silu" else 1
        gates = 2 if a["gate"] == "hardsigmoid" and input_grad[0] else 1
        return (saved_input(0), Saved("own", elements=c), *[Saved("own", elements=s)] * acts,
                *[Saved("own", elements=c)] * gates)

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        """2·C·S weights, S + C biases, C·S + S·C MACs."""
        c, s = self._channels(a, inputs)
        counts = self.counts(a, inputs, out)
        return [
            Formula("weights", f"{c}·{s} + {s}·{c}", counts.weights, "fc1 and fc2, 1×1 convolutions"),
            Formula("biases", f"{s} + {c}", counts.biases),
            Formula("params", f"2·{c}·{s} + {s} + {c}", counts.params),
            Formula("MACs", f"{c}·{s} + {s}·{c}", self.macs(a, inputs, out), "on the pooled 1×1 map"),
        ]

    def connections(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        """LeCun's count, as the two 1×1 convolutions have it: their MACs and one bias each per output."""
        c, s = self._channels(a, inputs)
        return self.macs(a, inputs, out) + s + c

    def dense_equivalent(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        """What fc1 and fc2 would hold as FCs on the pooled map: their own parameters (they share none)."""
        pieces = self._pieces(a, inputs)
        return sum(dense_params(i, o) for kind, _, i, o in pieces if kind == "conv")

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> str:
        return GLOBAL  # the gate is computed from a global pool

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.squeeze import SqueezeExcitation as TorchSE

        c, s = self._channels(a, inputs)
        return TorchSE(c, s, len(inputs[0]) - 1, a["act"], a["gate"])
