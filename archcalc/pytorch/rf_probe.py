"""The receptive field measured by gradients: which input positions one output unit sees.

In float64, with every layer replaced by the module its type names as its stand-in
(`LayerType.rf_probe_module`: same geometry, positive gradients everywhere; activations
and LRN become identities, max pools average pools) and positive weights (1/fan-in), the
input positions with a nonzero gradient of the centre unit are exactly its field:
`start + u·jump … + size − 1`, clipped to the input. Probed at each node where the
jump grows (every downsampling) and at the last spatial node; skipped where the field
is global or not aligned (merged paths disagree, so no single window is exact).
Skipped for token-id inputs: integer ids have no gradient, so nothing downstream of an
embedding is probed this way (its figures come from the static pass alone).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from archcalc.graph import LayerGraph, Node
from archcalc.layers.window import Num
from archcalc.layers.window import Window as WindowRule
from archcalc.passes.analysis import Analysis
from archcalc.passes.receptive_field import RF, Field, last_spatial, positions
from archcalc.pytorch.build import assemble, module_names
from archcalc.records import record
from archcalc.tensor import Shape

if TYPE_CHECKING:
    from torch import nn

Window = tuple[int, ...]  # (first, last) input position per axis; (-1, -1, …): padding only
T = TypeVar("T")
Step = Callable[[Node, "WindowRule | str | None", Shape, T], "T | None"]


@record
class ProbedField:
    """One node's centre unit: the input window archcalc's field gives, and the one its gradient shows."""

    node: int
    expected: Window
    measured: Window


def probe_fields(graph: LayerGraph, analysis: Analysis, device: str = "cpu") -> list[ProbedField]:
    """archcalc's receptive field against the gradient of one output unit w.r.t. the input."""
    import torch

    rf = analysis.rf
    single = len(graph.input_nodes()) == 1 and not any(n.shares is not None or not n.batched for n in graph)
    image = graph.input.layout == "channels" and len(graph.input.shape) >= 2 and graph.token_vocab() is None
    if not single or not image:
        return []  # one channels-first input, no shared weights or free tensors: what the probe handles
    targets = _rf_targets(graph, rf, last_spatial(graph, rf))
    model = _gradient_model(graph) if targets else None
    if model is None:
        return []
    model = model.to(device=device, dtype=torch.float64).eval()
    x = (torch.rand(1, *graph.input.shape, device=device, dtype=torch.float64) + 0.5).requires_grad_()
    outputs = _forward(model, module_names(graph), targets, x)
    return [_probe(graph, t, rf[t], outputs[t], x) for t in targets]


def _forward(model: nn.Module, names: dict[int, str], targets: list[int], x: Any) -> dict[int, Any]:
    """One forward pass, keeping the output of each target node's module."""
    outputs: dict[int, Any] = {}
    handles = [model.get_submodule(names[t]).register_forward_hook(
        lambda _m, _a, out, t=t: outputs.__setitem__(t, out)) for t in targets]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return outputs


def _probe(graph: LayerGraph, target: int, field: Field, out: Any, x: Any) -> ProbedField:
    """The window the centre unit of `target`'s output sees: by archcalc's field, and by its gradient."""
    import torch

    assert isinstance(field, RF)
    centre = tuple((o - 1) // 2 for o in out.shape[2:])
    (grad,) = torch.autograd.grad(out[(0, slice(None), *centre)].sum(), x, retain_graph=True)
    return ProbedField(target, _expected_window(graph, target, field, centre), _nonzero_window(grad[0].abs().sum(0)))


def _rf_targets(graph: LayerGraph, rf: Sequence[Field], last: int | None) -> list[int]:
    def spatial(i: int) -> bool:
        # the probe reads a unit channels first (N, C, positions…): other layouts are not probed
        f = rf[i]
        return isinstance(f, RF) and f.rank > 0 and f.aligned and graph.node(i).layout == "channels"

    def jump(i: int) -> tuple[Num, ...] | None:
        f = rf[i]
        return f.jump if isinstance(f, RF) else None

    grows = [n.id for n in graph if n.type != "input" and spatial(n.id)
             and all(jump(i) is not None and jump(i) != jump(n.id) for i in n.inputs)]
    extra = [last] if last and spatial(last) else []  # not the input (id 0)
    # A channel slice after a concat may keep only the narrower paths: the field archcalc
    # gives (the largest over merged paths) is then an upper bound, not the exact window.
    sliced = graph.downstream([n.id for n in graph if n.type == "slice"])
    return sorted(set(grows + extra) - sliced)


def _gradient_model(graph: LayerGraph) -> nn.Module | None:
    """The model of each layer's stand-in (`LayerType.rf_probe_module`), weights 1/fan-in, biases 0.

    None where some layer has no stand-in (e.g. a max pool no average pool can replace).
    """
    modules = {}
    for n in graph:
        if n.type != "input":
            module = n.layer.rf_probe_module(n.args, n.in_shapes, n.shape)
            if module is None:
                return None
            modules[n.id] = module
    model = assemble(graph, modules)
    _positive_weights(model)
    return model


def _positive_weights(model: nn.Module) -> None:
    """Every weight 1/fan-in (1 for vectors) and every bias 0: each path adds, none cancels."""
    import torch

    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            else:
                p.fill_(1.0 / p[0].numel() if p.dim() > 1 else 1.0)


def _expected_window(graph: LayerGraph, target: int, field: RF, centre: tuple[int, ...]) -> Window:
    """(first, last) input position per axis that unit `centre` of `target` sees.

    Where no path from the unit passes a padding position (or one past a layer's border), that is
    archcalc's field, `RF.window` (`start + u·jump … + size − 1` for a window network). Near the
    border padding may hide positions, so the ends come from walking the layers' windows back
    within bounds.
    """
    reach, clipped = _reachable(graph, target, centre)
    if not clipped:
        spans = [field.window(a, u) for a, u in enumerate(centre)]
        if any(s is None for s in spans):
            return (-1,) * (2 * len(centre))
        return tuple(v for s in spans for v in s)  # type: ignore[union-attr]
    if any(not r for r in reach):
        return (-1,) * (2 * len(centre))  # the unit sees only padding: no input at all
    return tuple(v for r in reach for v in (min(r), max(r)))


def _reachable(graph: LayerGraph, target: int, centre: tuple[int, ...]) -> tuple[list[set[int]], bool]:
    """Per axis, the input positions some path reaches from one output unit (real positions only),
    and whether some path passed a padding position on the way."""
    clipped = [False]

    def step(node: Node, g: WindowRule | str | None, in_shape: Shape, here: list[set[int]]) -> list[set[int]] | None:
        if not isinstance(g, WindowRule):
            return here  # position-preserving
        mode = node.args.get("mode", "zeros") if node.type == "pad" else "zeros"
        # the position axes of the layer's input: all but the channels, or all but the features of
        # a channels-last tensor (Swin's patch merging reads H×W×C)
        sizes = positions(in_shape, graph.node(node.inputs[0]).layout) if node.inputs else in_shape[1:]
        back = []
        for a, axis in enumerate(here):
            every = {q for o in axis for q in g.reads(a, o)}
            clipped[0] |= any(not 0 <= q < sizes[a] for q in every)
            back.append({m for q in every if (m := _padded(q, sizes[a], mode)) is not None})
        return back if all(back) else None  # None: only padding reaches this input

    def join(x: list[set[int]], y: list[set[int]]) -> list[set[int]]:
        return [p | q for p, q in zip(x, y, strict=True)]

    reached = walk_back(graph, target, [{u} for u in centre], step, join)
    return (reached if reached is not None else [set() for _ in centre]), clipped[0]


def _padded(q: int, size: int, mode: str) -> int | None:
    """The real input position a padded position q reads: none for zeros (F.pad's constant); the
    border for replicate, the mirror for reflect, the wrap-around for circular."""
    if 0 <= q < size:
        return q
    if mode == "replicate":
        return min(max(q, 0), size - 1)
    if mode == "reflect" and size > 1:
        period = 2 * (size - 1)
        q %= period
        return q if q < size else period - q
    if mode == "circular":
        return q % size
    return None



def walk_back(graph: LayerGraph, target: int, seed: T, step: Step[T], join: Callable[[T, T], T]) -> T | None:
    """What reaches the input from `seed` at `target`, walking the nodes in reverse topological order.

    `step(node, geometry, in_shape, here)` carries what reaches a node's output to one of
    its inputs (None: nothing does); where paths meet, `join` merges. None: nothing
    reaches the input.

    `passes.receptive_field.path_counts` walks the same way with path counts instead of
    position sets (both read each layer's `Window.reads`); `walk_back` belongs beside it in
    passes/, where both walks would share it.
    """
    pending: dict[int, T] = {target: seed}
    for nid in range(target, 0, -1):
        here = pending.pop(nid, None)
        if here is None:
            continue
        n = graph.node(nid)
        g = n.layer.geometry(n.args, n.in_shapes)
        shape_only = set(n.layer.shape_inputs)  # a crop's size reference: no path runs through it
        for k, (i, in_shape) in enumerate(zip(n.inputs, n.in_shapes, strict=True)):
            if k in shape_only:
                continue
            back = step(n, g, in_shape, here)
            if back is not None:
                pending[i] = back if i not in pending else join(pending[i], back)
    return pending.get(0)


def _nonzero_window(grad: Any) -> Window:
    """(first, last) position per axis where the input gradient is nonzero."""
    window: list[int] = []
    for a in range(grad.dim()):
        others = tuple(d for d in range(grad.dim()) if d != a)
        line = grad.sum(others) if others else grad
        hits = line.nonzero().flatten().tolist()
        window += [hits[0], hits[-1]] if hits else [-1, -1]
    return tuple(window)
