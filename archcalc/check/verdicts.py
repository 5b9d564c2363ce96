"""Checking claims against the analysis: each one ✓, ✗ with the formula that gives the right
figure, or – where the figure is not available."""

from __future__ import annotations

from typing import Any

from archcalc.check.claims import Claim, Rounded, claims
from archcalc.check.defaults import explain_shape
from archcalc.graph import LayerGraph, Node
from archcalc.layers import Geometry
from archcalc.passes import figures
from archcalc.passes.analysis import Analysis
from archcalc.passes.conventions import DEFAULT, FLOPS, MACS, KindDiff
from archcalc.passes.counting import FLOPS_PER_MAC
from archcalc.passes.receptive_field import RF
from archcalc.records import record
from archcalc.tensor import channels_last, format_shape, shape_axis_names


@record
class Result:
    claim: Claim
    status: str  # "ok", "wrong" or "unavailable"
    actual: str  # as the table shows it: '2,432', '96×55×55'
    how: str = ""  # the order a shape matched in, or the formula that gives the right figure
    value: Any = None  # the figure itself: an int, a shape tuple, an RF tuple or 'global'
    note: str = ""  # why a hand calculation may differ: a default it did not assume

    @property
    def mark(self) -> str:
        return {"ok": "✓", "wrong": "✗"}.get(self.status, "–")


def check(analysis: Analysis) -> list[Result]:
    return [_check(analysis, c) for c in claims(analysis.graph)]


def subject(graph: LayerGraph, node_id: int) -> Node:
    """The layer a statement's figures describe: its last one, skipping an implicit activation."""
    n = graph.node(node_id)
    if n.implicit and n.layer.kind == "activation" and len(n.inputs) == 1:
        return graph.node(n.inputs[0])
    return n


def _check(analysis: Analysis, c: Claim) -> Result:
    if c.key == "shape":
        return _check_shape(analysis, c)
    if c.key == "rf":
        return _check_rf(analysis, c)
    if c.key in ("macs", "flops") and analysis.convention != DEFAULT:
        return _check_counted(analysis, c)
    if c.total:
        actual = figures.total(analysis, c.key)
    else:
        actual = figures.FIGURES[c.key].of(analysis, subject(analysis.graph, c.node).id)
    ok = c.value.matches(actual) if isinstance(c.value, Rounded) else c.value == actual
    how = "" if ok else _why(analysis, c)
    if isinstance(c.value, Rounded):
        rounding = f"≈{c.value.text} is {c.value.rounding()}"
        how = f"{how}; {rounding}" if how else rounding
    return Result(c, "ok" if ok else "wrong", f"{actual:,}", how, actual)


def _check_counted(analysis: Analysis, c: Claim) -> Result:
    """`macs=` / `flops=` under `check --convention NAME`: the tool's figure (a MAC-unit one doubled
    for flops=; a FLOPs-unit one is never halved into MACs)."""
    counted = analysis.counted
    node = None if c.total else subject(analysis.graph, c.node).id
    value = counted.total if node is None else counted.values[node]
    if counted.unit == FLOPS and c.key == "macs":
        return Result(c, "unavailable", "n/a", f"{counted.name} counts FLOPs: claim flops= instead")
    actual = 2 * value if c.key == "flops" and counted.unit == MACS else value
    ok = c.value.matches(actual) if isinstance(c.value, Rounded) else c.value == actual
    if ok:
        return Result(c, "ok", f"{actual:,}", f"under {counted.name}")
    rule = (counted.rules[node] if node is not None else
            " + ".join(f"{r.layer_type} {r.b:,}" for r in _by_type(analysis) if r.b))
    doubled = "2 × " if c.key == "flops" and counted.unit == MACS else ""
    return Result(c, "wrong", f"{actual:,}", f"under {counted.name}: {doubled}{rule}")


def _by_type(analysis: Analysis) -> tuple[KindDiff, ...]:
    from archcalc.passes.conventions import diff

    d = diff(analysis.graph, analysis.conventions[DEFAULT], analysis.counted)
    return d.rows + d.same


def _why(analysis: Analysis, c: Claim) -> str:
    """The formula that gives the right figure (the layer's own), or the sum by kind of layer for totals."""
    if c.total:
        if c.key not in ("params", "macs", "flops"):
            return ""
        field = "params" if c.key == "params" else "macs"
        text = " + ".join(f"{k.kind} {getattr(k, field):,}" for k in analysis.kinds if getattr(k, field))
        return f"{FLOPS_PER_MAC}·({text})" if c.key == "flops" else text
    node = subject(analysis.graph, c.node)
    what = {"macs": "MACs", "flops": "MACs"}.get(c.key, c.key)
    found = figures.formulas_for(analysis, node.id, what)
    if not found:
        return ""
    f = found[0]
    if c.key == "flops":
        return f"{FLOPS_PER_MAC}·({f.expression}) = {FLOPS_PER_MAC * f.value:,}"
    return f.line()


def _check_shape(analysis: Analysis, c: Claim) -> Result:
    node = analysis.graph.node(c.node)
    shape, want = node.shape, c.value
    assert isinstance(want, tuple)
    names = shape_axis_names(len(shape))
    first, last = "×".join(names), "×".join(channels_last(names))
    rotated = channels_last(shape)
    actual = format_shape(shape) + (f" = {format_shape(rotated)} ({last})" if len(shape) > 1 else "")
    if want == shape or want == rotated:
        if len(shape) == 1 or shape == rotated:
            order = ""
        else:
            order = f"as {first}" if want == shape else f"as {last}"
        return Result(c, "ok", format_shape(shape), order, shape)
    formulas = "; ".join(f"{f.what[len('output '):]}: {f.line()}"
                         for f in figures.formulas_for(analysis, node.id, "output"))
    cause = explain_shape(analysis.graph, node.id, want)
    return Result(c, "wrong", actual, formulas, shape, cause.text() if cause else "")


def _check_rf(analysis: Analysis, c: Claim) -> Result:
    size = rf_size(analysis, subject(analysis.graph, c.node).id)
    if size is None:
        return Result(c, "unavailable", "n/a", "the receptive-field pass is not available", None)
    want = c.value
    if isinstance(want, tuple) and isinstance(size, tuple) and len(want) == 1:
        want = want * len(size)
    shown = size if isinstance(size, str) else format_shape(size)
    if want == size:
        return Result(c, "ok", shown, value=size)
    return Result(c, "wrong", shown, _rf_formula(analysis, subject(analysis.graph, c.node)), size)


def rf_size(analysis: Analysis, node_id: int) -> tuple[int, ...] | str | None:
    """The receptive-field size of a node per spatial axis, or 'global'; None where it is not known."""
    size: tuple[int, ...] | str | None = figures.FIGURES["rf"].of(analysis, node_id)
    return size


def _rf_formula(analysis: Analysis, node: Node) -> str:
    """`r = r_in + D·(K − 1)·j_in`, the forward recursion, for a one-input window layer."""
    geometry = node.layer.geometry(node.args, node.in_shapes)
    if len(node.inputs) != 1 or not isinstance(geometry, Geometry) or geometry.transposed:
        return ""
    before, after = analysis.rf[node.inputs[0]], analysis.rf[node.id]
    if not isinstance(before, RF) or not isinstance(after, RF) or before.phases or after.phases:
        return ""
    return geometry.rf_step(0, before.size[0], before.jump[0], after.size[0])


