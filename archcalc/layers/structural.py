"""Layers that move or merge tensors: input, flatten, dropout, identity, add, concat, slice, mul,
and the auto shortcut that a residual resolves once its shapes are known."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archcalc.layers.base import (
    REGISTRY,
    Arg,
    Args,
    Formula,
    Implied,
    LayerArgError,
    LayerType,
    OtherOps,
    Saved,
    Shaped,
    register,
    saved_input,
)
from archcalc.layers.imported import ALIAS, Emit, OnnxCall, TensorArg, TorchCall, Unsupported, all_tensors, number_text
from archcalc.layers.window import GLOBAL, UNKNOWN, stride_between
from archcalc.tensor import Shape, axis_of, broadcast, format_shape, prod


@register
class Input(LayerType):
    name = "input"
    internal = True  # written as a header line, never as a layer
    layout = "given"
    args = (Arg("shape", "size", required=True), Arg("name", "str", "input"), Arg("layout", "str", None))
    min_inputs = 0
    max_inputs = 0
    summary = "the network's input (written as the header line `input 3x224x224`, or `input left 3x105x105`)"
    example = "input 3x224x224"

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        return ()

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        shape = tuple(a["shape"])
        warnings: tuple[str, ...] = ()
        if len(shape) == 3 and shape[-1] in (1, 3, 4) and shape[0] > 4 and a.get("layout") in (None, "channels"):
            warnings = (f"{format_shape(shape)} looks channels last; archcalc reads shapes channels first "
                        f"(C×H×W): did you mean {'x'.join(map(str, (shape[-1], *shape[:-1])))}?",)
        return Shaped(shape, warnings)


@register
class Flatten(LayerType):
    name = "flatten"
    args = (Arg("start", "int", 1, aliases=("start_dim",)), Arg("end", "int", -1, aliases=("end_dim",)))
    summary = ("axes start..end joined into one, as torch.flatten (PyTorch dims, the batch is 0); by default "
               "everything after the batch: C×H×W → C·H·W (put in by itself before an FC on a feature map)")
    example = "flatten, flatten(2), flatten(start=1, end=2)"
    torch_modules = ("torch.nn.Flatten",)
    torch_functions = ("torch.flatten", "Tensor.flatten")
    onnx_ops = ("Flatten",)

    def from_torch(self, call: TorchCall) -> Emit | None:
        if call.module is not None:
            start, end = call.module.start_dim, call.module.end_dim
        else:  # torch.flatten(x) starts at dim 0, the batch: the importer refuses what merges the batch
            start, end = call.arg(1, "start_dim", 0), call.arg(2, "end_dim", -1)
        return Emit(flatten_text(start, end, len(call.inputs[0]) + 1))

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        if int(call.attrs.get("axis", 1)) != 1:
            raise Unsupported(f"axis={call.attrs['axis']}: archcalc flattens after the batch axis")
        return Emit("flatten")
    view = "reshape"

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        return ()

    def _span(self, a: Args, shape: Shape) -> tuple[int, int]:
        try:
            first, last = axis_of(a["start"], len(shape)), axis_of(a["end"], len(shape))
        except ValueError as e:
            raise LayerArgError(str(e)) from None
        if first > last:
            raise LayerArgError(f"start dim {a['start']} comes after end dim {a['end']}")
        return first, last

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        first, last = self._span(a, inputs[0])
        shape = inputs[0]
        return Shaped((*shape[:first], prod(shape[first:last + 1]), *shape[last + 1:]))

    def _everything(self, a: Args, inputs: Sequence[Shape]) -> bool:
        return self._span(a, inputs[0]) == (0, len(inputs[0]) - 1)

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        if len(inputs[0]) > 1 and self._everything(a, inputs):
            return [Formula("output F", "·".join(map(str, inputs[0])), out[0])]
        return []

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> str | None:
        if self._everything(a, inputs):
            return GLOBAL if len(inputs[0]) > 1 else None
        return UNKNOWN

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        return nn.Flatten(a["start"], a["end"])


@register
class Dropout(LayerType):
    name = "dropout"
    patterns = (r"dropout(?P<p>0?\.\d+)",)
    args = (Arg("p", "float", 0.5),)
    summary = "dropout (an identity at inference); p = 0.5 by default"
    example = "dropout, dropout(p=0.2), dropout0.2"
    torch_modules = ("torch.nn.Dropout", "torch.nn.Dropout1d", "torch.nn.Dropout2d", "torch.nn.Dropout3d")
    torch_functions = ("torch.nn.functional.dropout", "torch.dropout")
    onnx_ops = ("Dropout",)

    def from_torch(self, call: TorchCall) -> Emit | None:
        p = call.module.p if call.module is not None else call.arg(1, "p", 0.5)
        return Emit("dropout" if p == 0.5 else f"dropout(p={number_text(p)})")

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        ratio = call.constants.get(1, call.attrs.get("ratio", 0.5))
        return Emit("dropout" if ratio == 0.5 else f"dropout(p={number_text(float(ratio))})")

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """In training, the mask it multiplied by (on CPU the scaled noise, of the activation dtype;
        CUDA's fused kernel keeps one byte per element)."""
        return (Saved("own", elements=prod(out), dtype="mask"),) if a["p"] else ()

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        if not 0 <= a["p"] <= 1:
            raise LayerArgError(f"dropout probability p={a['p']:g} is not between 0 and 1")
        return Shaped(inputs[0])

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        return nn.Dropout(a["p"])


@register
class Identity(LayerType):
    name = "identity"
    aliases = ("id",)
    summary = "passes its input through (an empty branch)"
    example = "identity"
    torch_modules = ("torch.nn.Identity",)
    # calls that hand back their input's values: no node of their own
    torch_functions = ("Tensor.contiguous", "Tensor.clone", "torch.clone", "Tensor.detach", "Tensor.float",
                       "Tensor.to", "Tensor.type_as")
    onnx_ops = ("Identity",)

    def from_torch(self, call: TorchCall) -> Emit | None:
        if call.module is not None:
            return Emit("identity")
        return ALIAS if call.inputs and call.output == call.inputs[0] else None

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        return ALIAS
    view = "view"

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        return ()

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        return nn.Identity()


@register
class Add(LayerType):
    name = "add"
    kind = "merge"
    min_inputs = 2
    max_inputs = None
    free_inputs = True
    summary = "element-wise sum of its inputs (a residual connection), broadcasting as PyTorch does"
    example = "add(@a, @b), add(@x, @position_table)"
    torch_functions = ("operator.add", "operator.iadd", "torch.add", "Tensor.add", "Tensor.add_")
    onnx_ops = ("Add", "Sum")

    def from_torch(self, call: TorchCall) -> Emit | None:
        if not all_tensors(call, 2):
            return None  # a number added: no layer type for it
        if call.kwargs.get("alpha", 1) != 1:
            raise Unsupported("alpha other than 1")
        return Emit("add")

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        return Emit("add") if len(call.inputs) >= 2 and len(call.inputs) == call.input_count else None

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        return ()

    def for_inputs(self, a: Args, layouts: Sequence[str], batched: Sequence[bool]) -> Args:
        return {**a, "batched": tuple(batched)}

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        try:
            return Shaped(broadcast(inputs, a.get("batched") or (True,) * len(inputs)))
        except ValueError as e:
            raise LayerArgError(
                "cannot add tensors of different shapes: " + " + ".join(format_shape(s) for s in inputs)
            ) from e

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        return OtherOps(adds=prod(out) * (len(inputs) - 1))

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import Add as TorchAdd

        return TorchAdd()


@register
class Concat(LayerType):
    name = "concat"
    aliases = ("cat", "concatenate")
    args = (Arg("dim", "int", 1),)
    kind = "merge"
    min_inputs = 1
    max_inputs = None
    free_inputs = True
    summary = ("concatenation along a dim (PyTorch's: 1, the channels, by default); every other axis must "
               "agree; a free parameter whose first size is 1 is expanded over the batch (a class token)")
    example = "concat(@a, @b), concat(@cls, @tokens, dim=1)"
    torch_functions = ("torch.cat", "torch.concat", "torch.concatenate")
    onnx_ops = ("Concat",)

    def from_torch(self, call: TorchCall) -> Emit | None:
        tensors = call.arg(0, "tensors", ())
        if not all(isinstance(t, TensorArg) for t in tensors):
            return None
        dim = call.arg(1, "dim", 0)
        return Emit("concat" if dim == 1 else f"concat(dim={dim})")

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        if len(call.inputs) != call.input_count:
            return None
        axis = int(call.attrs.get("axis", 1))
        return Emit("concat" if axis == 1 else f"concat(dim={axis})")

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        return ()

    def for_inputs(self, a: Args, layouts: Sequence[str], batched: Sequence[bool]) -> Args:
        return {**a, "batched": tuple(batched)}

    def _shapes(self, a: Args, inputs: Sequence[Shape]) -> list[Shape]:
        """Each input without its batch axis; a free tensor 1×… stands for its expansion over the batch."""
        out = []
        for shape, batched in zip(inputs, a.get("batched") or (True,) * len(inputs)):
            if not batched:
                if not shape or shape[0] != 1:
                    raise LayerArgError(f"a free tensor {format_shape(shape)} joins a batch only with size 1 "
                                        f"first (as parameter(1x1x768) is expanded over the batch)")
                shape = shape[1:]
            out.append(tuple(shape))
        return out

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        shapes = self._shapes(a, inputs)
        try:
            axis = axis_of(a["dim"], len(shapes[0]))
        except ValueError as e:
            raise LayerArgError(str(e)) from None
        rest = {s[:axis] + s[axis + 1:] for s in shapes}
        if len(rest) > 1 or len({len(s) for s in shapes}) > 1:
            where = "channels" if a["dim"] == 1 else f"dim {a['dim']}"
            raise LayerArgError(
                f"cannot concatenate along {where}: the other axes differ ("
                + ", ".join(format_shape(s) for s in inputs) + ")"
            )
        return Shaped((*shapes[0][:axis], sum(s[axis] for s in shapes), *shapes[0][axis + 1:]))

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        if len(inputs) < 2 or a["dim"] != 1:
            return []
        return [Formula("output C", " + ".join(str(s[0]) for s in self._shapes(a, inputs)), out[0])]

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import Concat as TorchConcat

        return TorchConcat(a["dim"], tuple(a.get("batched") or ()))


@register
class Slice(LayerType):
    name = "slice"
    aliases = ("channels",)
    # no end: up to the last channel, so a block can split a tensor whose width grows (DPN's dense path)
    args = (Arg("start", "int", required=True, minimum=0), Arg("end", "int", None, minimum=1))
    summary = "channels [start, end) of the input, or from start on (DPN's split of a dual path)"
    example = "slice(0, 256), slice(start=256, end=320), slice(256)"
    torch_functions = ("operator.getitem",)

    def from_torch(self, call: TorchCall) -> Emit | None:
        """`x[:, a:b]`: channels a to b (negative ends counted from the last, as Python does); a slice
        that keeps every element (Hugging Face's `logits_to_keep=0`, `x[:, 0:, :]`) is no node."""
        index = call.args[1] if len(call.args) > 1 else None
        index = index if isinstance(index, tuple) else (index,)
        if call.batched and call.batched[0] and len(call.inputs) == 1 and tuple(call.output) == tuple(
                call.inputs[0]) and all(i == slice(None) or i == slice(0, None) or i is Ellipsis for i in index):
            return ALIAS
        rest = [i for i in index[2:] if i != slice(None) and i is not Ellipsis]
        if len(index) < 2 or index[0] != slice(None) or not isinstance(index[1], slice) or rest:
            return None
        channels = call.inputs[0][0]
        start, end, step = index[1].indices(channels)
        if step != 1 or start >= end:
            return None
        return Emit(f"slice({start})" if end == channels else f"slice({start}, {end})")

    onnx_ops = ("Slice",)

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        """Slice of the channels (axis 1) with constant bounds and step 1: `slice(a, b)`."""
        starts, ends = call.constants.get(1), call.constants.get(2)
        axes, steps = call.constants.get(3, [0] if starts is None else list(range(len(starts)))), call.constants.get(4)
        if starts is None or ends is None or len(starts) != 1 or list(axes) != [1] or (steps and list(steps) != [1]):
            raise Unsupported("a slice other than of the channels with constant bounds")
        channels = call.inputs[0][0]
        start, end, _ = slice(int(starts[0]), min(int(ends[0]), channels)).indices(channels)
        return Emit(f"slice({start})" if end == channels else f"slice({start}, {end})")
    view = "strided"

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        return ()

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        c = inputs[0][0]
        end = c if a["end"] is None else a["end"]
        if not a["start"] < end <= c:
            raise LayerArgError(f"channel range [{a['start']}, {end}) is not inside the input's {c} channels")
        return Shaped((end - a["start"], *inputs[0][1:]))

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import Slice as TorchSlice

        return TorchSlice(a["start"], a["end"])


@register
class Mul(LayerType):
    name = "mul"
    aliases = ("scale", "multiply")
    kind = "merge"
    min_inputs = 2
    max_inputs = 2
    free_inputs = True
    summary = ("element-wise product, broadcasting as PyTorch does (a C×1×1 gate of squeeze-and-excitation, "
               "a layer scale)")
    example = "mul(@features, @gate), mul(@x, @gamma)"
    torch_functions = ("operator.mul", "operator.imul", "torch.mul", "Tensor.mul", "Tensor.mul_")
    onnx_ops = ("Mul",)

    def from_torch(self, call: TorchCall) -> Emit | None:
        return Emit("mul") if all_tensors(call, 2) else None  # by a number: no layer type for it

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        if len(call.inputs) == 1 and call.constants:
            raise Unsupported("a product by a number the graph computes (x · c): archcalc has no layer type that "
                              "multiplies by a number")
        return Emit("mul") if len(call.inputs) == 2 == call.input_count else None

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """Each factor, for the other's gradient: b if a needs one, a if b does."""
        return ((saved_input(1),) if input_grad[0] else ()) + ((saved_input(0),) if input_grad[1] else ())

    def for_inputs(self, a: Args, layouts: Sequence[str], batched: Sequence[bool]) -> Args:
        return {**a, "batched": tuple(batched)}

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        x, gate = inputs
        try:
            return Shaped(broadcast(inputs, a.get("batched") or (True, True)))
        except ValueError:
            raise LayerArgError(
                f"cannot multiply {format_shape(x)} by {format_shape(gate)}: the second must broadcast to the first"
            ) from None

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        return OtherOps(multiplies=prod(out))

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import Mul as TorchMul

        return TorchMul()


@register
class AutoShortcut(LayerType):
    """A residual's `shortcut: auto`: the identity where the body keeps the shape, else a 1×1
    projection (with a BN after it when the body uses BN), as ResNet's option B."""

    name = "auto-shortcut"
    internal = True
    args = (Arg("bn", "bool", False),)
    min_inputs = 2  # the residual's input, and the body's output (for its shape only)
    max_inputs = 2
    summary = ("a residual's automatic shortcut: the identity where the body keeps the shape, else a 1×1 "
               "projection (+ BN when the body has BN); not a layer to write by name")
    example = "residual: ... then shortcut: auto (the default)"

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        return ()

    def resolve(self, a: Args, inputs: Sequence[Shape]) -> tuple[Implied, ...]:
        src, dst = inputs
        if src == dst:
            return ()
        found = [stride_between(a, b) for a, b in zip(src[1:], dst[1:])]
        strides = tuple(s for s in found if s is not None)
        if len(src) != len(dst) or len(src) < 2 or len(strides) != len(found):
            raise LayerArgError(
                f"the auto shortcut cannot map {format_shape(src)} to {format_shape(dst)} with a 1×1 convolution",
                hint="write the shortcut yourself: 'shortcut: conv1-256/s2/nobias, bn'",
            )
        conv = REGISTRY["conv"].normalize(
            {"out_channels": dst[0], "kernel": (1,), "stride": strides, "padding": (0,), "bias": not a["bn"]})
        stride = "x".join(map(str, strides)) if len(set(strides)) > 1 else str(strides[0])
        text = f"conv1-{dst[0]}" + (f"/s{stride}" if max(strides) > 1 else "") + ("/nobias" if a["bn"] else "")
        projection = Implied("conv", conv, text)
        return (projection, Implied("bn", REGISTRY["bn"].normalize({}), "bn")) if a["bn"] else (projection,)



def flatten_text(start: int, end: int, rank: int) -> str:
    """`flatten` for everything after the batch, else `flatten(start, end)` (PyTorch dims, `rank`
    counting the batch)."""
    if start % rank == 1 and end % rank == rank - 1:
        return "flatten"
    return f"flatten({start}, {end})"
