"""What a layer type sees of a call in someone else's model, and what it answers.

The importers (`archcalc/importers/`) trace a PyTorch module or read an ONNX graph and, for
every operation, ask the layer types that declare it (`torch_modules`, `torch_functions`,
`onnx_ops` on the class) to write it in the spec language (`from_torch`, `from_onnx`). The
records here carry only plain Python values — shapes, numbers, the module object read by
attribute — so a layer type's file imports neither torch nor onnx, and a layer type added
later maps its own PyTorch and ONNX names by declaring them.

A layer type answers with an `Emit` (the spec item), None when the call is not one it
can write (another layer type declaring the same name may), or raises `Unsupported` with
the reason when it is its call but archcalc cannot count it exactly (a BatchNorm without
running statistics): the import then lists it instead of counting it wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import field
from typing import Any

from archcalc.records import record
from archcalc.tensor import Shape


class Unsupported(Exception):
    """This call is the layer type's, but in a form archcalc cannot count exactly: the reason."""


@record
class TensorArg:
    """A tensor among a call's arguments: `index` into the call's `inputs`."""

    index: int


@record
class TorchCall:
    """One call in a traced PyTorch forward, as a layer type's `from_torch` reads it.

    `name` is the declared name it matched: a module class (`torch.nn.Conv2d`), a function
    (`torch.cat`, `torch.nn.functional.relu`, `operator.add`), a tensor method (`Tensor.view`)
    or `parameter` (a Parameter the forward reads itself). Tensor arguments appear in `args` /
    `kwargs` as `TensorArg`s; `inputs` holds their shapes without the batch axis, `batched`
    which have one. `output` is the output's shape (no batch axis), or a tuple of shapes where
    the call returns several tensors. `same[i]` is the first input that is the same tensor as
    input i (i itself where none is).
    """

    name: str
    module: Any = None  # the nn.Module called; read its attributes, never import torch for it
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    inputs: tuple[Shape, ...] = ()
    batched: tuple[bool, ...] = ()
    output: Any = ()
    same: tuple[int, ...] = ()  # per input, the first input that is the same tensor (x passed as q, k and v)

    def arg(self, position: int, name: str, default: Any = None) -> Any:
        """A positional-or-keyword argument, as Python binds it."""
        if name in self.kwargs:
            return self.kwargs[name]
        return self.args[position] if position < len(self.args) else default

    def tensor_count(self) -> int:
        return len(self.inputs)


@record
class OnnxCall:
    """One node of an ONNX graph, as a layer type's `from_onnx` reads it.

    `inputs` are the shapes (no batch axis) of the node's activation inputs; `weights` the
    shapes of its initializer inputs, by input position; `constants` the values of inputs that
    are small constant tensors (a Reshape's target shape), by input position; `attrs` the
    node's attributes as Python values; `output` the output shape (no batch axis).
    """

    op: str
    attrs: Mapping[str, Any] = field(default_factory=dict)
    inputs: tuple[Shape, ...] = ()
    weights: Mapping[int, Shape] = field(default_factory=dict)
    constants: Mapping[int, Any] = field(default_factory=dict)
    output: Any = ()
    input_count: int = 0  # every input the node lists (activations, initializers, constants)


@record
class Emit:
    """A layer type's answer: the spec item that writes the call.

    `text` is the item without its input references (`conv3-64/nobias`, `concat(dim=1)`);
    the importer adds `@name` references where the inputs are not the previous item.
    `inputs` picks and orders the tensor inputs the layer reads (None: all, in order).
    `parts` > 1: the call returns that many tensors and the item is a split statement
    (`a, b = chunk(2, dim=1)`). `element`: the call returns a tuple and this layer's output is
    that element of it (an nn.LSTM's output sequence, element 0). `alias`: the call returns its
    input as it is (`contiguous`, an inference-mode dropout call that is a no-op): no node.
    `owns` names the initializer inputs (ONNX) whose elements are this layer's parameters.
    `absorbs`: the item also covers the next call of this module (a path from the called module's
    parent: BERT's self-attention is written with its output projection, "output.dense").
    """

    text: str = ""
    inputs: tuple[int, ...] | None = None
    parts: int = 1
    element: int | None = None
    alias: bool = False
    owns: tuple[int, ...] = ()
    absorbs: str = ""


ALIAS = Emit(alias=True)


# -- writing values as the spec language reads them ------------------------------------------


def size_text(value: int | Sequence[int]) -> str:
    """(3, 3) → '3', (1, 7) → '1x7', 5 → '5': a size per axis, one number where all agree."""
    values = (value,) if isinstance(value, int) else tuple(value)
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


def per_axis_tuple(value: int | Sequence[int], rank: int) -> tuple[int, ...]:
    values = (value,) * rank if isinstance(value, int) else tuple(value)
    return values * rank if len(values) == 1 else values


def number_text(value: float) -> str:
    """0.1 → '0.1', 1e-05 → '1e-05', 2.0 → '2': a number as short as it reads back exactly."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def f32(value: Any) -> float:
    """A float32 attribute as the number it was written as: 0.20000000298023224 → 0.2."""
    return float(f"{float(value):.7g}")


def dims_text(dims: Any) -> str:
    """(2, 3) → '2, 3'; 1 → '1'."""
    if isinstance(dims, int):
        return str(dims)
    return ", ".join(str(int(d)) for d in dims)


def frozen_state(module: Any) -> bool:
    """Whether every parameter a module holds itself is frozen (requires_grad=False); one frozen
    among trainable ones is a mix archcalc's /frozen cannot write."""
    flags = [p.requires_grad for p in module.parameters(recurse=False)]
    if flags and any(flags) and not all(flags):
        raise Unsupported("some of its parameters are frozen and some are not")
    return bool(flags) and not any(flags)


def all_tensors(call: TorchCall, count: int) -> bool:
    """The call has exactly `count` tensor arguments and nothing else that is a number."""
    return call.tensor_count() == count and all(isinstance(a, TensorArg) for a in call.args[:count])
