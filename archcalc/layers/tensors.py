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


@register
class Sub(_Elementwise):
    name = "sub"
    aliases = ("subtract",)
    per_element = OtherOps(adds=1)
    torch_op = "sub"
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


@register
class Mean(_Reduce):
    name = "mean"
    torch_op = "mean"
    layout = "plain"
    summary = "the mean over dims (PyTorch dims; keepdim=true keeps them as size 1)"
    example = "mean(1), mean(2, 3, keepdim=true)"

    def other_ops(self, a: Args, inputs: Sequence[Shape], out: Shape) -> OtherOps:
        return OtherOps(adds=prod(out) * (self.reduced(inputs, out) - 1), divisions=prod(out))


@register
class Sum(_Reduce):
    name = "sum"
    torch_op = "sum"
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
