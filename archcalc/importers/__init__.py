"""Models people already have, in: PyTorch modules (traced) and ONNX files (read), written as specs.

    imported = import_target("torchvision.models:resnet50", (3, 224, 224))
    print(imported.spec)            # blocks, names, comments: a spec to read and keep
    imported.graph                  # the LayerGraph every command works on

An import traces the model (`torch_trace`: torch.fx on the meta device) or reads its graph
(`onnx_graph`: the onnx package, no runtime), asks each layer type to write the calls it
declares, writes the spec (`writer`), parses it back and checks that its analysis gives the
model's own figures node by node (`check`). torch and onnx are imported inside functions only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from archcalc.graph import LayerGraph
from archcalc.importers.check import Checked, check
from archcalc.importers.ir import ModelIR
from archcalc.importers.target import is_target, parse_args, parse_target
from archcalc.importers.writer import write
from archcalc.records import record
from archcalc.tensor import Shape

InputShapes = Shape | Mapping[str, Shape]


@record
class Imported:
    """An imported model: the spec written for it, its graph, and what the import checked."""

    spec: str
    graph: LayerGraph
    checked: Checked
    notes: tuple[str, ...]
    seconds: float
    blocks: int
    modules: tuple[tuple[str, int], ...] = ()  # (module path, node id) of each module call, in order

def import_module(module: Any, input_shape: InputShapes, *, name: str | None = None, origin: str = "",
                  allow_unknown: bool = False, notes: Sequence[str] = ()) -> Imported:
    """A torch.nn.Module (on any device, meta included) with inputs of these shapes (no batch axis;
    one per forward argument by name, or one shape for the first)."""
    from archcalc.importers.torch_trace import import_module as trace

    start = time.perf_counter()
    ir = trace(module, input_shape, name=name, origin=origin, allow_unknown=allow_unknown)
    ir.notes = [*notes, *ir.notes]
    return _finish(ir, start)


def import_target(target: str, input_shape: InputShapes | None = None, args: Sequence[str] | Mapping[str, Any] = (),
                  *, allow_unknown: bool = False, name: str | None = None) -> Imported:
    """`package.module:factory`, `path/to/model.py:Net` (called with `args`) or `model.onnx`."""
    from archcalc.errors import UsageError

    if target.endswith(".onnx"):
        return import_onnx(target, input_shape, allow_unknown=allow_unknown, name=name)
    parsed = parse_target(target)
    if input_shape is None:
        raise UsageError(f"importing {target} needs the input shape without the batch axis: --input 3x224x224 "
                         f"(or --input NAME=SHAPE per forward argument)")
    from archcalc.importers.target import build

    kwargs = dict(args) if isinstance(args, Mapping) else parse_args(args)
    start = time.perf_counter()
    model, note = build(parsed, kwargs)
    label = name or parsed.attr.rsplit(".", 1)[-1]
    result = import_module(model, input_shape, name=label, origin=parsed.text, allow_unknown=allow_unknown,
                           notes=[note] if note else [])
    return Imported(result.spec, result.graph, result.checked, result.notes, time.perf_counter() - start,
                    result.blocks, result.modules)


def import_onnx(path: str, input_shape: InputShapes | None = None, *, allow_unknown: bool = False,
                name: str | None = None) -> Imported:
    """An ONNX file, read with the onnx package (no runtime): initializers are parameters; shapes
    from the graph's value_info where it has them, archcalc's own inference elsewhere."""
    from archcalc.importers.onnx_graph import read_onnx

    start = time.perf_counter()
    ir = read_onnx(path, input_shape, allow_unknown=allow_unknown, name=name)
    return _finish(ir, start)


def _finish(ir: ModelIR, start: float) -> Imported:
    from archcalc.errors import ModelImportError, SpecError
    from archcalc.lang import expand, parse
    from archcalc.passes.analysis import analyze
    from archcalc.passes.shapes import infer

    written = write(ir)
    try:
        graph = infer(expand(parse(written.text, f"{ir.name}.arch")))
    except SpecError as e:
        raise ModelImportError("the spec archcalc wrote does not read back (a bug in archcalc; please report it "
                               "with the model):\n" + e.format()) from None
    checked = check(ir, written, analyze(graph))
    nodes = [n for n in graph if n.type != "input" and not n.implicit]
    modules = tuple((ir.op(ref).path, node.id) for node, ref in zip(nodes, written.order)
                    if ref.part == 0 and ir.op(ref).path and ir.op(ref).type not in ("parameter", "unknown-tensor"))
    return Imported(written.text, graph, checked, tuple(ir.notes), time.perf_counter() - start, written.blocks,
                    modules)


__all__ = ["Imported", "import_module", "import_onnx", "import_target", "is_target"]
