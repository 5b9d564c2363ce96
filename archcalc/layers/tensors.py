"""General tensor operations, as PyTorch writes them: reshape, permute, squeeze, split, reductions,
element-wise arithmetic with broadcasting, matmul of two activations, free parameters, padding.

Dims are PyTorch's: the batch is dim 0 (no layer may touch it) and negative dims count from
the end, so `transpose(1, 2)` and `mean(dim=1)` read as they do in a model's `forward`.
Shapes in archcalc leave the batch out. A free `parameter(…)` has no batch axis; element-wise
ops and matmul broadcast it as PyTorch does.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    register,
    saved_input,
)
from archcalc.layers.imported import (
    ALIAS,
    Emit,
    OnnxCall,
    TorchCall,
    Unsupported,
    all_tensors,
    dims_text,
    number_text,
    size_text,
)
from archcalc.layers.window import GLOBAL, UNKNOWN, Geometry
from archcalc.tensor import BATCH, Shape, axis_of, broadcast, broadcast_whole, format_shape, prod, whole


def _axis(dim: int, shape: Shape) -> int:
    try:
        return axis_of(dim, len(shape))
    except ValueError as e:
        raise LayerArgError(str(e)) from None


def _positions(rank: int, layout: str) -> set[int]:
    """The position axes of a shape without the batch: all but the channels (first) of a
    channels-first tensor, all but the features (last) of a sequence, none of a plain one."""
    if layout == "channels":
        return set(range(1, rank))
    if layout == "sequence":
        return set(range(rank - 1))
    return set()


def _batched(a: Args, count: int) -> tuple[bool, ...]:
    """Which inputs have a batch axis (the shapes pass says, in `for_inputs`)."""
    return tuple(a.get("batched") or (True,) * count)


class _Moves(LayerType):
    """A layer that only moves elements: no parameters, no operations, a view or a copy."""

    layout = "plain"
    view = "view"

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> str | None:
        return UNKNOWN  # positions move: no (r, j, start) describes where a unit looks

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        return ()


@register
class Reshape(_Moves):
    name = "reshape"
    aliases = ("view",)
    args = (Arg("shape", "ints", required=True, variadic=True),)
    summary = "the same elements in another shape (one size may be -1: inferred); the batch stays"
    example = "reshape(12, 64, -1), view(196, 768), reshape(shape=3x256)"
    torch_functions = ("Tensor.view", "Tensor.reshape", "torch.reshape", "Tensor.view_as", "Tensor.reshape_as")
    onnx_ops = ("Reshape",)

    def from_torch(self, call: TorchCall) -> Emit | None:
        """The traced output says the sizes (a `-1` or `x.size(0)` resolved); to one axis it is a flatten;
        to the shape it has (Hugging Face's `input_ids.view(-1, T)`), the tensor itself: no node."""
        if call.batched and call.batched[0] and tuple(call.output) == tuple(call.inputs[0]):
            return ALIAS
        return Emit(_reshape_text(call.inputs[0], call.output))

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        target = call.constants.get(1)
        if target is None:
            raise Unsupported("its target shape is computed from data, not a constant")
        return Emit(_reshape_text(call.inputs[0], _onnx_reshape(call.inputs[0], target, call.attrs)))
    view = "reshape"

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        target, total = list(a["shape"]), prod(inputs[0])
        if target.count(-1) > 1 or any(s < 1 and s != -1 for s in target):
            raise LayerArgError("a reshape takes sizes of at least 1 and at most one -1")
        if -1 in target:
            known = prod([s for s in target if s != -1])
            if total % known:
                raise LayerArgError(f"{total:,} elements do not divide into parts of {known:,} for the -1")
            target[target.index(-1)] = total // known
        if prod(target) != total:
            raise LayerArgError(f"{format_shape(target)} holds {prod(target):,} elements, the input {total:,}")
        return Shaped(tuple(target))

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import Reshape as TorchReshape

        return TorchReshape(tuple(out))


@register
class Permute(_Moves):
    name = "permute"
    args = (Arg("dims", "ints", required=True, variadic=True),)
    summary = "reorders the axes (PyTorch dims: the batch, dim 0, stays first)"
    example = "permute(0, 2, 3, 1), permute(0, 2, 1)"
    torch_modules = ("torchvision.ops.misc.Permute",)  # ConvNeXt's and Swin's channels-last moves
    torch_functions = ("Tensor.permute", "torch.permute")
    onnx_ops = ("Transpose",)

    def from_torch(self, call: TorchCall) -> Emit | None:
        rest = call.args[1:]
        dims = rest[0] if len(rest) == 1 and isinstance(rest[0], (tuple, list)) else rest
        dims = call.module.dims if call.module is not None else call.kwargs.get("dims", dims)
        return Emit(f"permute({dims_text(dims)})")

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        perm = call.attrs.get("perm")
        if perm is None or perm[0] != 0:
            order = "" if perm is None else f", perm {list(perm)}"
            raise Unsupported(f"a transpose that moves the batch axis (or reverses every axis){order}: archcalc's "
                              f"batch axis is dim 0, alone (torch.onnx writes nn.MultiheadAttention sequence-first so)")
        return Emit(f"permute({dims_text(perm)})")
    view = "strided"

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        shape, dims = inputs[0], a["dims"]
        full = len(shape) + 1
        order = [d % full if -full <= d < full else -1 for d in dims]
        if sorted(order) != list(range(full)) or order[0] != 0:
            raise LayerArgError(f"permute needs each of the {full} dims once, the batch (0) first; "
                                f"got {', '.join(map(str, dims))}")
        return Shaped(tuple(shape[d - 1] for d in order[1:]))

    def for_inputs(self, a: Args, layouts: Sequence[str], batched: Sequence[bool]) -> Args:
        return {**a, "layout": layouts[0]}

    def _moves_features(self, a: Args, shape: Shape) -> str | None:
        """The layout a permute keeps the positions of: channels first to features last
        (`permute(0, 2, 3, 1)`, as Swin and ConvNeXt do) gives a sequence-like H×W×C, and back
        (`permute(0, 3, 1, 2)`) channels first; None for any other order."""
        full = len(shape) + 1
        dims = tuple(d % full for d in a["dims"])
        if a.get("layout") == "channels" and dims == (0, *range(2, full), 1):
            return "sequence"
        if a.get("layout") == "sequence" and dims == (0, full - 1, *range(1, full - 1)):
            return "channels"
        return None

    def layout_for(self, a: Args, inputs: Sequence[Shape]) -> str | None:
        return self._moves_features(a, inputs[0]) or "plain"

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> str | None:
        """Positions stay where the features only move to the other end; unknown otherwise."""
        return None if self._moves_features(a, inputs[0]) else UNKNOWN

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import Permute as TorchPermute

        full = len(inputs[0]) + 1
        return TorchPermute(tuple(d % full for d in a["dims"]))


@register
class Squeeze(_Moves):
    name = "squeeze"
    args = (Arg("dim", "int", required=True),)
    summary = "removes a size-1 axis"
    example = "squeeze(1), squeeze(dim=-1)"
    torch_functions = ("Tensor.squeeze", "torch.squeeze")
    onnx_ops = ("Squeeze",)

    def from_torch(self, call: TorchCall) -> Emit | None:
        dim = call.arg(1, "dim")
        if dim is None or not isinstance(dim, int):
            return Emit(_reshape_text(call.inputs[0], call.output))  # every size-1 axis (or several)
        if call.output == call.inputs[0]:
            return ALIAS  # PyTorch's squeeze of an axis that is not 1 leaves the tensor as it is
        return Emit(f"squeeze({dim})")

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        return Emit(_reshape_text(call.inputs[0], _onnx_squeeze(call, squeeze=True)))

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        axis = _axis(a["dim"], inputs[0])
        if inputs[0][axis] != 1:
            raise LayerArgError(f"dim {a['dim']} has size {inputs[0][axis]}, not 1")
        return Shaped(inputs[0][:axis] + inputs[0][axis + 1:])

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import Reshape as TorchReshape

        return TorchReshape(tuple(out))


@register
class Unsqueeze(_Moves):
    name = "unsqueeze"
    args = (Arg("dim", "int", required=True),)
    summary = "inserts a size-1 axis before dim"
    example = "unsqueeze(1)"
    torch_functions = ("Tensor.unsqueeze", "torch.unsqueeze")
    onnx_ops = ("Unsqueeze",)

    def from_torch(self, call: TorchCall) -> Emit | None:
        return Emit(f"unsqueeze({call.arg(1, 'dim')})")

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        return Emit(_reshape_text(call.inputs[0], _onnx_squeeze(call, squeeze=False)))

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        rank = len(inputs[0]) + 1  # the result's rank without the batch
        dim = a["dim"]
        if not -(rank + 1) <= dim <= rank or dim % (rank + 1) == 0:
            raise LayerArgError(f"dim {dim} is out of range (1 to {rank}, or -1 to -{rank}; 0 is the batch)")
        axis = dim % (rank + 1) - 1
        return Shaped(inputs[0][:axis] + (1,) + inputs[0][axis:])

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import Reshape as TorchReshape

        return TorchReshape(tuple(out))


class _Split(_Moves):
    """One part of a tensor cut along one dim; a statement names every part (`a, b = …`)."""

    splits = True
    layout = "same"
    view = "strided"

    def _sizes(self, a: Args, size: int) -> list[int]:
        raise NotImplementedError

    def _span(self, a: Args, shape: Shape) -> tuple[int, int, int]:
        """(axis, start, length) of this part."""
        axis = _axis(a["dim"], shape)
        sizes = self._sizes(a, shape[axis])
        parts = a.get("parts", 1)
        if len(sizes) != parts:
            raise LayerArgError(f"{self.name} cuts {shape[axis]} into {len(sizes)} parts "
                                f"({', '.join(map(str, sizes))}), but {parts} names take them")
        part = a.get("part", 0)
        return axis, sum(sizes[:part]), sizes[part]

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        axis, _, length = self._span(a, inputs[0])
        return Shaped(inputs[0][:axis] + (length,) + inputs[0][axis + 1:])

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> None:
        return None  # a part along the features keeps every position's field

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import Narrow

        axis, start, length = self._span(a, inputs[0])
        return Narrow(axis + 1, start, length)


@register
class Chunk(_Split):
    name = "chunk"
    args = (Arg("chunks", "int", required=True, minimum=1), Arg("dim", "int", -1),
            Arg("part", "int", 0), Arg("parts", "int", 1))
    summary = "cuts a tensor into n parts along dim (the last ones smaller, as torch.chunk); name each part"
    example = "q, k, v = chunk(3, dim=-1)"
    torch_functions = ("Tensor.chunk", "torch.chunk")

    def from_torch(self, call: TorchCall) -> Emit | None:
        return Emit(f"chunk({call.arg(1, 'chunks')}, dim={call.arg(2, 'dim', 0)})", parts=len(call.output))

    def _sizes(self, a: Args, size: int) -> list[int]:
        step = -(-size // a["chunks"])
        return [min(step, size - i) for i in range(0, size, step)]


@register
class Split(_Split):
    name = "split"
    args = (Arg("size", "ints", required=True), Arg("dim", "int", -1), Arg("part", "int", 0),
            Arg("parts", "int", 1))
    summary = "cuts a tensor into parts of the given size(s) along dim, as torch.split; name each part"
    example = "a, b = split(64, dim=1), x, y, z = split(16x16x32, dim=-1)"
    torch_functions = ("Tensor.split", "torch.split")
    onnx_ops = ("Split",)

    def from_torch(self, call: TorchCall) -> Emit | None:
        size = call.arg(1, "split_size_or_sections", call.kwargs.get("split_size"))
        dim = call.arg(2, "dim", 0)
        return Emit(f"split({size_text(size) if not isinstance(size, int) else size}, dim={dim})",
                    parts=len(call.output))

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        axis = int(call.attrs.get("axis", 0))
        sizes = call.constants.get(1, call.attrs.get("split"))
        if sizes is None:
            parts = int(call.attrs.get("num_outputs", 0)) or len(call.output or ())
            if not parts:
                raise Unsupported("split sizes neither given nor stated")
            return Emit(f"chunk({parts}, dim={axis})", parts=parts)
        sizes = [int(v) for v in sizes]
        return Emit(f"split({'x'.join(map(str, sizes))}, dim={axis})", parts=len(sizes))

    def _sizes(self, a: Args, size: int) -> list[int]:
        given = list(a["size"])
        if len(given) == 1:
            step = given[0]
            if step < 1:
                raise LayerArgError("split sizes must be at least 1")
            return [min(step, size - i) for i in range(0, size, step)]
        if sum(given) != size or min(given) < 1:
            raise LayerArgError(f"sizes {', '.join(map(str, given))} do not add up to {size}")
        return given


class _Elementwise(LayerType):
    """Element-wise arithmetic over inputs that broadcast as PyTorch broadcasts them."""

    kind = "merge"
    free_inputs = True
    min_inputs = 2
    max_inputs = 2
    per_element = OtherOps()
    torch_op = ""

    def for_inputs(self, a: Args, layouts: Sequence[str], batched: Sequence[bool]) -> Args:
        return {**a, "batched": tuple(batched)}

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        try:
            return Shaped(broadcast(inputs, _batched(a, len(inputs))))
        except ValueError as e:
            raise LayerArgError(f"cannot combine {' and '.join(format_shape(s) for s in inputs)}: {e}") from None

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        n, e = prod(out) * (len(inputs) - 1), self.per_element
        return OtherOps(e.adds * n, e.multiplies * n, e.divisions * n, e.comparisons * n, e.exponentials * n)

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import Elementwise

        return Elementwise(self.torch_op)

    def rf_probe_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        """A sum: the same inputs reach the output, with gradients that cannot cancel."""
        from archcalc.pytorch.modules import Add

        return Add()

    def from_torch(self, call: TorchCall) -> Emit | None:
        if not all_tensors(call, 2):
            return None  # by a number: no layer type for it
        if call.kwargs.get("alpha", 1) != 1 or call.kwargs.get("rounding_mode") is not None:
            raise Unsupported("alpha or rounding_mode")
        return Emit(self.name)

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        return Emit(self.name) if len(call.inputs) == 2 == call.input_count else None


@register
class Sub(_Elementwise):
    name = "sub"
    aliases = ("subtract",)
    per_element = OtherOps(adds=1)
    torch_op = "sub"
    torch_functions = ("operator.sub", "operator.isub", "torch.sub", "Tensor.sub", "Tensor.sub_")
    onnx_ops = ("Sub",)
    summary = "element-wise difference a − b (broadcasting as PyTorch)"
    example = "sub(@left, @right)"

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        return ()


@register
class Div(_Elementwise):
    name = "div"
    aliases = ("divide",)
    per_element = OtherOps(divisions=1)
    torch_op = "div"
    torch_functions = ("operator.truediv", "operator.itruediv", "torch.div", "Tensor.div", "Tensor.div_")
    onnx_ops = ("Div",)
    summary = "element-wise quotient a / b (broadcasting as PyTorch)"
    example = "div(@x, @norm)"

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """The divisor for the dividend's gradient; both for the divisor's."""
        kept = {1} if input_grad[0] else set()
        kept |= {0, 1} if input_grad[1] else set()
        return tuple(saved_input(i) for i in sorted(kept))


@register
class Abs(LayerType):
    name = "abs"
    summary = "element-wise |x|"
    example = "abs"
    torch_functions = ("torch.abs", "Tensor.abs")
    onnx_ops = ("Abs",)

    def from_torch(self, call: TorchCall) -> Emit | None:
        return Emit("abs")

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        return Emit("abs")

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        return (saved_input(0),)

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        return OtherOps(comparisons=prod(out))

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import Elementwise

        return Elementwise("abs")

    def rf_probe_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        return nn.Identity()  # |x| flips signs, which could cancel gradients


class _Reduce(LayerType):
    args = (Arg("dims", "ints", required=True, variadic=True), Arg("keepdim", "bool", False))
    torch_op = ""

    def _axes(self, a: Args, shape: Shape) -> list[int]:
        axes = sorted({_axis(d, shape) for d in a["dims"]})
        if len(axes) != len(a["dims"]):
            raise LayerArgError("a dim is named twice")
        return axes

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        axes = self._axes(a, inputs[0])
        kept = [1 if i in axes else s for i, s in enumerate(inputs[0])]
        return Shaped(tuple(kept) if a["keepdim"] else tuple(s for i, s in enumerate(inputs[0]) if i not in axes))

    def reduced(self, inputs: Sequence[Shape], out: Shape) -> int:
        """Inputs per output element."""
        return prod(inputs[0]) // max(1, prod(out))

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        return ()

    def for_inputs(self, a: Args, layouts: Sequence[str], batched: Sequence[bool]) -> Args:
        return {**a, "layout": layouts[0]}

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> str | None:
        """Global where every position axis is reduced, unchanged where none is."""
        positions = _positions(len(inputs[0]), a.get("layout", "plain"))
        reduced = set(self._axes(a, inputs[0]))
        if positions and positions <= reduced:
            return GLOBAL
        return None if positions and not positions & reduced and a["keepdim"] else UNKNOWN

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import Reduce

        return Reduce(self.torch_op, tuple(i + 1 for i in self._axes(a, inputs[0])), a["keepdim"])

    def from_torch(self, call: TorchCall) -> Emit | None:
        dims = call.arg(1, "dim")
        if dims is None or (isinstance(dims, (tuple, list)) and not dims):
            raise Unsupported("no dims: it reduces the batch axis too")
        if call.kwargs.get("dtype") is not None:
            raise Unsupported("dtype=")
        keep = bool(call.arg(2, "keepdim", False))
        return Emit(f"{self.name}({dims_text(dims)}{', keepdim=true' if keep else ''})")

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        axes = call.attrs.get("axes", call.constants.get(1))
        if axes is None:
            raise Unsupported("no axes: it reduces the batch axis too")
        keep = bool(call.attrs.get("keepdims", 1))
        return Emit(f"{self.name}({dims_text(axes)}{', keepdim=true' if keep else ''})")


@register
class Mean(_Reduce):
    name = "mean"
    torch_op = "mean"
    torch_functions = ("Tensor.mean", "torch.mean")
    onnx_ops = ("ReduceMean",)
    layout = "plain"
    summary = "the mean over dims (PyTorch dims; keepdim=true keeps them as size 1)"
    example = "mean(1), mean(2, 3, keepdim=true)"

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        return OtherOps(adds=prod(out) * (self.reduced(inputs, out) - 1), divisions=prod(out))


@register
class Sum(_Reduce):
    name = "sum"
    torch_op = "sum"
    torch_functions = ("Tensor.sum", "torch.sum")
    onnx_ops = ("ReduceSum",)
    layout = "plain"
    summary = "the sum over dims (PyTorch dims; keepdim=true keeps them as size 1)"
    example = "sum(1), sum(-1, keepdim=true)"

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        return OtherOps(adds=prod(out) * (self.reduced(inputs, out) - 1))


@register
class Matmul(LayerType):
    name = "matmul"
    aliases = ("bmm",)
    kind = "matmul"
    layout = "plain"
    free_inputs = True
    min_inputs = 2
    max_inputs = 2
    summary = ("torch.matmul of two tensors (batched, broadcasting): MACs = the output's elements × the "
               "contracted size, as FlopCounterMode counts bmm")
    example = "matmul(@q, @kt), matmul(@attn, @v)"
    torch_functions = ("operator.matmul", "torch.matmul", "torch.bmm", "Tensor.matmul", "Tensor.bmm")
    onnx_ops = ("MatMul",)

    def from_torch(self, call: TorchCall) -> Emit | None:
        return Emit("matmul") if all_tensors(call, 2) else None

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        return Emit("matmul") if len(call.inputs) == 2 == call.input_count else None

    def for_inputs(self, a: Args, layouts: Sequence[str], batched: Sequence[bool]) -> Args:
        return {**a, "batched": tuple(batched)}

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        (bx, by) = _batched(a, 2)
        x, y = whole(inputs[0], bx), whole(inputs[1], by)
        if len(x) < 2 or len(y) < 2:
            raise LayerArgError("matmul here needs two matrices or batches of them (2 dims or more each, "
                                "the batch counted)")
        if BATCH in (x[-1], y[-2]):
            raise LayerArgError("matmul would contract the batch axis")
        if x[-1] != y[-2]:
            raise LayerArgError(f"the contracted sizes differ: {format_shape(inputs[0])} @ "
                                f"{format_shape(inputs[1])} ({x[-1]} ≠ {y[-2]})")
        try:
            out = (*broadcast_whole([x[:-2], y[:-2]]), x[-2], y[-1])
        except ValueError as e:
            raise LayerArgError(f"the batch dims of {format_shape(inputs[0])} and {format_shape(inputs[1])}: "
                                f"{e}") from None
        if BATCH in out[1:]:
            raise LayerArgError("the batch axis would move away from the front")
        return Shaped(out[1:] if out and out[0] == BATCH else out)

    def macs(self, a: Args, inputs: Sequence[Shape], out: Shape) -> int:
        """One MAC per output element per contracted element: ∏out · K."""
        return prod(out) * inputs[0][-1]

    def gradients(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
                  weight_grad: bool) -> Gradients:
        """One product per operand that needs a gradient (grad_a = grad·bᵀ, grad_b = aᵀ·grad), each
        the forward's MACs: attention's q·kᵀ and p·v give 4 of them in a trained network."""
        f = self.macs(a, inputs, out)
        return Gradients(f * sum(1 for needs in input_grad if needs))

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """Each operand, for the other's gradient."""
        return ((saved_input(1),) if input_grad[0] else ()) + ((saved_input(0),) if input_grad[1] else ())

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        """∏out · K MACs."""
        return [Formula("MACs", f"{'·'.join(map(str, out))}·{inputs[0][-1]}", self.macs(a, inputs, out),
                        "output elements · contracted size")]

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> str:
        return UNKNOWN

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import Matmul as TorchMatmul

        return TorchMatmul()


@register
class Parameter(LayerType):
    name = "parameter"
    aliases = ("param-tensor", "free-parameter")
    args = (Arg("shape", "ints", required=True, minimum=1, variadic=True), Arg("frozen", "bool", False))
    flags = {"frozen": ("frozen", True)}
    kind = "other"
    layout = "plain"
    min_inputs = 0
    max_inputs = 0
    free_inputs = True
    batched_source = False
    summary = ("a free learnable tensor of the given shape, with no batch axis (a class token 1x1x768, a "
               "position table 1x197x768, a layer scale 768x1x1); element-wise ops broadcast it")
    example = "cls = parameter(1x1x768), gamma = parameter(768, 1, 1)"
    # "parameter": a Parameter the forward reads itself (torch.fx's get_attr); a free tensor
    # expanded over the batch (a class token) is the free tensor itself to archcalc's ops
    torch_functions = ("parameter", "Tensor.expand")

    def from_torch(self, call: TorchCall) -> Emit | None:
        if call.name == "Tensor.expand":  # a free 1×… tensor over the batch: archcalc's ops broadcast it anyway
            free = call.inputs and not call.batched[0] and call.inputs[0][:1] == (1,)
            return ALIAS if free and tuple(call.output)[1:] == call.inputs[0][1:] else None
        shape = "x".join(map(str, call.output))
        frozen = not call.args[0].requires_grad
        return Emit(f"parameter({shape})" + ("/frozen" if frozen else ""))

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        return ()

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        return Shaped(tuple(a["shape"]))

    def counts(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Counts:
        return Counts(weights=prod(out))

    def param_shapes(self, a: Args, inputs: Sequence[Shape], out: Shape) -> dict[str, Shape]:
        return {"weight": tuple(out)}

    def explain(self, a: Args, inputs: Sequence[Shape], out: Shape) -> list[Formula]:
        """∏shape learnable elements."""
        return [Formula("weights", "·".join(map(str, out)), prod(out), "a free tensor")]

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> str:
        return GLOBAL

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import FreeParameter

        return FreeParameter(tuple(out))


PAD_MODES = ("zeros", "reflect", "replicate", "circular")


@register
class Pad(LayerType):
    name = "pad"
    args = (Arg("pads", "ints", required=True, variadic=True, minimum=0),
            Arg("mode", "str", "zeros", choices=PAD_MODES), Arg("value", "float", 0.0))
    summary = ("padding as F.pad writes it: (left, right) of the last axis, then (top, bottom) of the one "
               "before, …; mode zeros, reflect, replicate or circular")
    example = "pad(0, 1, 0, 1), pad(1, 1, mode=reflect)"
    torch_functions = ("torch.nn.functional.pad",)

    def from_torch(self, call: TorchCall) -> Emit | None:
        pads, mode, value = call.arg(1, "pad"), call.arg(2, "mode", "constant"), call.arg(3, "value")
        if any(p < 0 for p in pads):
            raise Unsupported("negative padding (a crop)")
        options = [] if mode == "constant" else [f"mode={mode}"]
        if mode == "constant" and value:
            options.append(f"value={number_text(value)}")
        return Emit(f"pad({', '.join([dims_text(pads), *options])})")

    onnx_ops = ("Pad",)
    ONNX_MODES = {"constant": "zeros", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}

    def from_onnx(self, call: OnnxCall) -> Emit | None:
        """ONNX's pads are every axis's begins, then every axis's ends (the batch first); F.pad's are
        (before, after) pairs from the last axis. All zeros (Swin's window padding where the map is a
        multiple of the window) is the input as it is."""
        pads = call.constants.get(1, call.attrs.get("pads"))
        if pads is None or call.input_count > 3:
            raise Unsupported("padding sizes computed at run time, or only on some axes (an axes input)")
        mode = call.attrs.get("mode", "constant")
        if mode not in self.ONNX_MODES:
            raise Unsupported(f"padding mode '{mode}'")
        value = call.constants.get(2, 0.0)
        value = float(value[0] if isinstance(value, list) else value)
        n = len(pads) // 2
        begins, ends = list(pads[:n]), list(pads[n:])
        if any(p < 0 for p in pads):
            raise Unsupported("negative padding (a crop)")
        if begins[0] or ends[0]:
            raise Unsupported("padding the batch axis")
        if not any(pads):
            return ALIAS
        pairs = [(begins[k], ends[k]) for k in reversed(range(1, n))]  # the last axis first
        if mode == "constant":
            while pairs and pairs[-1] == (0, 0):
                pairs.pop()
        elif pairs[-1] != (0, 0):
            raise Unsupported(f"{mode} padding of the channels")
        else:
            pairs.pop()
        options = [] if mode == "constant" else [f"mode={self.ONNX_MODES[mode]}"]
        if mode == "constant" and value:
            options.append(f"value={number_text(value)}")
        return Emit(f"pad({', '.join([dims_text([p for pair in pairs for p in pair]), *options])})")

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        return ()

    def _pairs(self, a: Args, shape: Shape) -> list[tuple[int, int]]:
        """(before, after) per axis of the shape, last axis first as F.pad counts."""
        pads = list(a["pads"])
        if len(pads) % 2 or len(pads) // 2 > len(shape):
            raise LayerArgError(f"pad takes two numbers per axis, for at most the {len(shape)} axes after the "
                                f"batch; got {len(pads)}")
        return [(pads[i], pads[i + 1]) for i in range(0, len(pads), 2)]

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        out = list(inputs[0])
        pairs = self._pairs(a, inputs[0])
        if a["mode"] != "zeros" and len(pairs) != len(out) - 1:
            # PyTorch's rule: reflect, replicate and circular pad every axis after the channels
            raise LayerArgError(f"{a['mode']} padding takes two numbers for each of the {len(out) - 1} axes after "
                                f"the channels ({2 * (len(out) - 1)} numbers), as F.pad does; got {len(a['pads'])}")
        for k, (before, after) in enumerate(pairs):
            axis = len(out) - 1 - k
            limit = inputs[0][axis] - (1 if a["mode"] == "reflect" else 0)
            if a["mode"] in ("reflect", "circular") and max(before, after) > limit:
                raise LayerArgError(f"{a['mode']} padding {max(before, after)} needs an axis longer than that, "
                                    f"not {inputs[0][axis]}")
            out[axis] += before + after
        return Shaped(tuple(out))

    def for_inputs(self, a: Args, layouts: Sequence[str], batched: Sequence[bool]) -> Args:
        return {**a, "layout": layouts[0]}

    def geometry(self, a: Args, inputs: Sequence[Shape]) -> Geometry | str | None:
        """A 1-wide window that starts `before` positions early, on each spatial axis it pads."""
        shape = inputs[0]
        if a.get("layout") != "channels":
            return UNKNOWN
        before = [0] * (len(shape) - 1)
        for k, (first, _) in enumerate(self._pairs(a, shape)):
            axis = len(shape) - 1 - k
            if axis == 0:
                return UNKNOWN if first else None  # padding the channels moves no position
            before[axis - 1] = first
        ones = (1,) * len(before)
        return Geometry(ones, ones, tuple(before), ones)

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from archcalc.pytorch.modules import Pad as TorchPad

        mode = "constant" if a["mode"] == "zeros" else a["mode"]
        return TorchPad(tuple(a["pads"]), mode, a["value"])


def _reshape_text(shape: Shape, out: Shape) -> str:
    """`reshape(49, 768)`, or `flatten` where everything after the batch becomes one axis."""
    if len(out) == 1 and len(shape) > 1:
        return "flatten"
    return f"reshape({', '.join(map(str, out))})"


def _onnx_reshape(shape: Shape, target: Any, attrs: Any) -> Shape:
    """ONNX Reshape's output (the batch axis first, its size 1 as exported): 0 copies the input's size
    (unless allowzero), -1 takes what is left."""
    full = (1, *shape)
    out = [int(v) for v in target]
    if not attrs.get("allowzero", 0):
        out = [full[i] if v == 0 and i < len(full) else v for i, v in enumerate(out)]
    if -1 in out:
        known = prod([v for v in out if v != -1])
        out[out.index(-1)] = prod(full) // known if known else 0
    if not out or out[0] != 1:
        raise Unsupported(f"a reshape to {out}, which moves the batch axis" + (
            f" (it merges the batch with {out[0]} windows or heads, as a window partition or a sequence-first "
            f"attention does: archcalc's batch axis is dim 0, alone)" if out and out[0] > 1 else ""))
    return tuple(out[1:])


def _onnx_squeeze(call: OnnxCall, squeeze: bool) -> Shape:
    axes = call.constants.get(1, call.attrs.get("axes"))
    full = [1, *call.inputs[0]]
    if axes is None:
        if not squeeze:
            raise Unsupported("unsqueeze without axes")
        out = [full[0]] + [s for s in full[1:] if s != 1]
    else:
        axes = [int(a) for a in (axes if isinstance(axes, (list, tuple)) else [axes])]
        if squeeze:
            rank = len(full)
            drop = {a % rank for a in axes}
            out = [s for i, s in enumerate(full) if i not in drop]
        else:
            rank = len(full) + len(axes)
            out = list(full)
            for a in sorted(a % rank for a in axes):
                out.insert(a, 1)
    if 0 in {a % len(full) for a in (axes or [])} and squeeze:
        raise Unsupported("a squeeze of the batch axis")
    return tuple(out[1:])
