"""The import checks itself: the written spec, analysed, must give the traced model's figures.

Node by node, in the order the spec's expansion makes them: the layer type, the output shape,
the parameters and buffers each holds, and the FLOPs PyTorch counted for the call; then the
totals (parameters as sum(p.numel()), buffers, FlopCounterMode's FLOPs less what unknown ops
did). A difference is archcalc's bug, never the user's: it stops the import with what differs.
"""

from __future__ import annotations

from archcalc.errors import ModelImportError
from archcalc.importers.ir import ModelIR
from archcalc.importers.writer import Written
from archcalc.passes.analysis import Analysis
from archcalc.records import record
from archcalc.tensor import format_shape


@record
class Checked:
    """What the import compared, and the figures of what it could not count."""

    nodes: int
    unknown: int  # opaque nodes
    unknown_flops: int  # FLOPs PyTorch counted in them (no archcalc total includes them)
    dropped_flops: int  # FLOPs of computations whose results nothing uses (not in the spec)


def check(ir: ModelIR, written: Written, analysis: Analysis) -> Checked:
    graph = analysis.graph
    nodes = [n for n in graph if n.type != "input" and not n.implicit]
    problems: list[str] = []
    if len(nodes) != len(written.order):
        problems.append(f"the spec has {len(nodes)} layers, the model {len(written.order)} operations")
    for node, ref in zip(nodes, written.order):
        op = ir.op(ref)
        where = f"{op.path or op.source}{' (' + op.where + ')' if op.where else ''} → spec line " \
                f"{node.loc.line if node.loc else '?'} `{node.text}`"
        if node.type != op.type:
            problems.append(f"{where}: a '{node.type}' node where the model has {op.source} ('{op.type}')")
            break
        if node.shape != op.shapes[ref.part]:
            theirs = format_shape(op.shapes[ref.part])
            problems.append(f"{where}: output {format_shape(node.shape)}, PyTorch's {theirs}")
        if ref.part:
            continue
        counts = analysis.counts[node.id]
        if op.elements is not None:  # ONNX: initializer elements, parameters and statistics alike
            ours = counts.params + counts.buffers - (1 if node.type == "bn" and counts.buffers else 0)  # PyTorch's
            # batch counter, which ONNX files do not carry
            if ours != op.elements:
                problems.append(f"{where}: {ours:,} parameter and statistics elements, the file's initializers "
                                f"{op.elements:,}")
            continue
        if counts.params != op.params:
            problems.append(f"{where}: {counts.params:,} parameters, PyTorch's module holds {op.params:,}")
        if counts.buffers != op.buffers:
            problems.append(f"{where}: {counts.buffers:,} buffer elements, PyTorch's {op.buffers:,}")
        if not op.unknown and analysis.flops(node.id) != op.flops:
            problems.append(f"{where}: {analysis.flops(node.id):,} FLOPs, FlopCounterMode's {op.flops:,}")
        if len(problems) > 12:
            break
    unknown = [op for op in ir.ops if op.unknown]
    unknown_flops = sum(int(op.flops) for op in unknown)
    emitted = {r.op for r in written.order}
    dropped = sum(int(op.flops) for op in ir.ops if op.id not in emitted and op.type != "input")
    totals = analysis.totals
    expected_buffers = sum(op.buffers for op in ir.ops if op.id in emitted)
    if not problems and ir.framework == "onnx":
        batch_counters = sum(1 for n in graph if n.type == "bn" and n.shares is None)
        ours = totals.params + totals.counts.buffers - batch_counters
        if ours != ir.params:
            problems.append(f"{ours:,} parameter and statistics elements in all, the file's initializers {ir.params:,}")
    elif not problems:
        if totals.params != ir.params:
            problems.append(f"{totals.params:,} parameters in all, sum(p.numel()) is {ir.params:,}")
        if totals.counts.buffers != expected_buffers:
            problems.append(f"{totals.counts.buffers:,} buffer elements in all, the model's modules hold "
                            f"{expected_buffers:,}")
        measured = ir.flops - unknown_flops - dropped
        if totals.flops != measured and ir.framework == "torch":
            problems.append(f"{totals.flops:,} FLOPs in all, FlopCounterMode counted {measured:,} "
                            f"(besides {unknown_flops:,} in unknown ops)")
    if problems:
        raise ModelImportError(
            "archcalc's reading of the model differs from PyTorch's (a bug in archcalc; please report it with the "
            "model):\n  " + "\n  ".join(problems[:12]) + "\nthe spec it wrote:\n" + _numbered(written.text))
    return Checked(len(nodes), len(unknown), unknown_flops, dropped)


def _numbered(text: str) -> str:
    return "\n".join(f"{i:4} | {line}" for i, line in enumerate(text.splitlines(), 1))
