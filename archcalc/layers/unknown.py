"""An operation archcalc has no rule for, kept by `archcalc import --allow-unknown`.

It holds what the import measured — the output shape and the parameters and buffers of the
module it stands for — and says so at every use: its shape rule warns, so every report lists
it, and reports' totals say their MACs and FLOPs exclude it. It is never written by archcalc
on its own, only by an import that was told to keep going.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from archcalc.layers.base import Arg, Args, Counts, Formula, LayerType, Shaped, register
from archcalc.layers.window import UNKNOWN
from archcalc.tensor import Shape, format_shape


@register
class Unknown(LayerType):
    name = "unknown"
    aliases: ClassVar[tuple[str, ...]] = ("opaque",)
    args = (
        Arg("shape", "ints", required=True, minimum=1),
        Arg("op", "str", "?"),
        Arg("weights", "int", 0, minimum=0),
        Arg("biases", "int", 0, minimum=0),
        Arg("buffers", "int", 0, minimum=0),
        Arg("flops", "int", None, minimum=0),
    )
    kind = "unknown"
    layout = "same"  # most are position-wise (a norm, a power): the input's axes keep their meaning
    min_inputs = 0
    max_inputs: ClassVar[int | None] = None
    free_inputs = True
    summary = ("an operation archcalc has no rule for (kept by `archcalc import --allow-unknown`): its measured "
               "output shape and parameters; its MACs and other ops are not counted, and reports say so")
    example = "unknown(op=torch.nn.LayerNorm, shape=197x768, weights=768, biases=768)"

    def op(self, a: Args) -> str:
        return str(a["op"]).strip("\"'")

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        shape = tuple(a["shape"])
        counted = a["weights"] + a["biases"]
        measured = f"; FlopCounterMode counted {a['flops']:,} FLOPs in it" if a["flops"] else ""
        note = (f"unknown operation '{self.op(a)}': archcalc has no rule for it; its output {format_shape(shape)} "
                f"and its {counted:,} parameters are as the import measured them, its MACs and other ops are "
                f"not counted (every total excludes them){measured}")
        return Shaped(shape, (note,))

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        return Counts(weights=a["weights"], biases=a["biases"], buffers=a["buffers"])

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        return [Formula("params", f"{a['weights']} + {a['biases']}", a["weights"] + a["biases"],
                        f"measured on '{self.op(a)}'; no rule")]

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> str:
        return UNKNOWN

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import Opaque

        return Opaque(tuple(out), a["weights"], a["biases"], a["buffers"])

    def rf_probe_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        return None  # nothing is known of where its outputs look


@register
class UnknownTensor(Unknown):
    """A tensor the forward reads itself that archcalc has no type for (a buffer, a constant): an
    unknown operation with no input, held whole (no batch axis)."""

    name = "unknown-tensor"
    aliases = ()
    min_inputs = 0
    max_inputs = 0
    batched_source = False
    layout = "plain"
    summary = ("a tensor the forward reads itself that archcalc has no type for (a buffer, a constant), kept by "
               "`archcalc import --allow-unknown`: its measured shape (no batch axis) and elements")
    example = "unknown-tensor(op=\"buffer pe\", shape=1x512x64, buffers=32768)"
