"""Sequences: token embeddings and the layers that move between layouts.

A sequence tensor is `T×F` (time steps, then features), as nn.Embedding and nn.LSTM
(batch first) hold it; convolutions read channels first, `F×T`. `to-channels` and
`to-sequence` are the transpose between the two (PyTorch's `x.transpose(1, 2)`), and
lowering tracks which layout a tensor has, so an FC on a sequence acts per time step.
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
    Saved,
    Shaped,
    register,
    saved_input,
)
from archcalc.layers.imported import Emit, OnnxCall, TorchCall, Unsupported, frozen_state
from archcalc.layers.window import UNKNOWN
from archcalc.tensor import Shape, axis_of, format_shape


@register
class Embedding(LayerType):
    name = "embedding"
    aliases = ("embed",)
    patterns = (r"embed(?:ding)?-?(?P<vocab>\d+)x(?P<dim>\d+)",)
    flags = {"frozen": ("frozen", True), "static": ("frozen", True)}
    args = (
        Arg("vocab", "int", required=True, aliases=("num_embeddings", "v"), minimum=1),
        Arg("dim", "int", required=True, aliases=("embedding_dim", "d", "features"), minimum=1),
        Arg("frozen", "bool", False, aliases=("static", "freeze")),
    )
    kind = "embedding"
    layout = "sequence"
    summary = ("token ids T → vectors T×dim (a vocab×dim table); /frozen: not trained, "
               "counted as a buffer")
    example = "embedding(vocab=10000, dim=300), embedding10000x300/frozen"
    torch_modules = ("torch.nn.Embedding",)

    def from_torch(self, call: TorchCall) -> Emit | None:
        m = call.module
        if frozen_state(m):
            raise Unsupported("a frozen nn.Embedding is a parameter to PyTorch; archcalc's embedding/frozen "
                              "counts its table as a buffer")
        return Emit(f"embedding(vocab={m.num_embeddings}, dim={m.embedding_dim})")

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        if len(inputs[0]) != 1:
            raise LayerArgError(
                f"'embedding' reads a sequence of T token ids (an input such as 'input 56'), "
                f"got {format_shape(inputs[0])}"
            )
        return Shaped((inputs[0][0], a["dim"]))

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        """vocab·dim elements: learnable weights, or buffers when frozen (no gradient, no optimizer state)."""
        table = a["vocab"] * a["dim"]
        return Counts(buffers=table) if a["frozen"] else Counts(weights=table)

    def param_shapes(self, a: Args, inputs: Sequence[Shape], out: Shape) -> dict[str, Shape]:
        return {} if a["frozen"] else {"weight": (a["vocab"], a["dim"])}  # a frozen table is a buffer

    def macs(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        """0: a table lookup multiplies nothing (FlopCounterMode counts no FLOPs for it either)."""
        return 0

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """The token ids (int64), for the table's gradient."""
        return (saved_input(0),)

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        """vocab·dim table elements, as weights or (frozen) buffers."""
        table = f"{a['vocab']}·{a['dim']}"
        what = "buffers" if a["frozen"] else "weights"
        note = "frozen: not learnable" if a["frozen"] else ""
        return [Formula(what, table, a["vocab"] * a["dim"], note), Formula("MACs", "0", 0, "a table lookup")]

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        from archcalc.pytorch.modules import FrozenEmbedding

        cls: Any = FrozenEmbedding if a["frozen"] else nn.Embedding
        return cls(a["vocab"], a["dim"])


class _Swap(LayerType):
    """T×F ↔ F×T: what PyTorch code does with `x.transpose(1, 2)` around a Conv1d."""

    layout = "swap"
    view = "strided"

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        return ()

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        if len(inputs[0]) != 2:
            raise LayerArgError(
                f"'{self.name}' swaps the two axes of a T×F or F×T tensor, got {format_shape(inputs[0])}"
            )
        first, second = inputs[0]
        return Shaped((second, first))

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> str | None:
        # the time axis only moves (T×F ↔ F×T): every position keeps its field
        return None

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import Transpose as TorchTranspose

        return TorchTranspose()


@register
class Transpose(_Swap):
    name = "transpose"
    args = (Arg("dim0", "int", None), Arg("dim1", "int", None))
    summary = ("swaps two axes: with no dims the two of a T×F or F×T tensor; transpose(a, b) any two "
               "(PyTorch dims), and on more than two axes the result is a plain tensor")
    example = "transpose, transpose(1, 2), transpose(-2, -1)"
    torch_functions = ("Tensor.transpose", "torch.transpose", "Tensor.swapaxes", "torch.swapaxes")

    def from_torch(self, call: TorchCall) -> Emit | None:
        return Emit(f"transpose({call.arg(1, 'dim0')}, {call.arg(2, 'dim1')})")

    def _axes(self, a: Args, shape: Shape) -> tuple[int, int]:
        if a["dim0"] is None or a["dim1"] is None:
            if a["dim0"] is not a["dim1"]:
                raise LayerArgError("transpose takes two dims, or none (the two axes of a T×F tensor)")
            return 0, 1
        try:
            return axis_of(a["dim0"], len(shape)), axis_of(a["dim1"], len(shape))
        except ValueError as e:
            raise LayerArgError(str(e)) from None

    def _swaps_two(self, a: Args, shape: Shape) -> bool:
        return a["dim0"] is None or (len(shape) == 2 and set(self._axes(a, shape)) == {0, 1})

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        if self._swaps_two(a, inputs[0]):
            return super().shape(a, inputs)
        first, second = self._axes(a, inputs[0])
        out = list(inputs[0])
        out[first], out[second] = out[second], out[first]
        return Shaped(tuple(out))

    def layout_for(self, a: Args, inputs: Sequence[Shape]) -> str | None:
        return None if self._swaps_two(a, inputs[0]) else "plain"

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> str | None:
        return None if self._swaps_two(a, inputs[0]) or a["dim0"] == a["dim1"] else UNKNOWN

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import Transpose as TorchTranspose

        first, second = self._axes(a, inputs[0])
        return TorchTranspose(first + 1, second + 1)


@register
class ToChannels(_Swap):
    name = "to-channels"
    needs_layout = "sequence"
    summary = "a sequence T×F to channels first F×T (what a conv1d reads)"
    example = "to-channels"


@register
class ToSequence(_Swap):
    name = "to-sequence"
    needs_layout = "channels"
    summary = "channels first F×T back to a sequence T×F"
    example = "to-sequence"


@register
class Last(LayerType):
    name = "last"
    aliases = ("last-step",)
    layout = "channels"
    needs_layout = "sequence"
    summary = "the last time step of a sequence: T×H → H (for a classifier after an RNN)"
    example = "last"
    torch_functions = ("operator.getitem",)

    def from_torch(self, call: TorchCall) -> Emit | None:
        """`x[:, -1]` (or `x[:, -1, :]`) of a batch of T×F sequences."""
        index = call.args[1] if len(call.args) > 1 else None
        if not isinstance(index, tuple) or len(call.inputs[0]) != 2 or not call.batched[0]:
            return None
        steps = call.inputs[0][0]
        last = index[1] if len(index) > 1 else None
        tail_ok = all(i == slice(None) or i is Ellipsis for i in index[2:])
        return Emit("last") if index[0] == slice(None) and last in (-1, steps - 1) and tail_ok else None

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        return None
    view = "strided"

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        return ()

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        if len(inputs[0]) != 2:
            raise LayerArgError(f"'last' takes the last step of a T×F sequence, got {format_shape(inputs[0])}")
        return Shaped((inputs[0][1],))

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import LastStep

        return LastStep()
