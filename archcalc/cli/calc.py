"""`archcalc calc conv|convtranspose|pool|fc`: one layer worked by hand, every figure with its formula.

Each command hands its values straight to the layer type's own rules (nothing is
written as spec text and parsed again), builds the one-layer graph and runs the normal
passes on it, so the figures and formulas are exactly those of `report --explain`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import click

from archcalc.cli import cli, format_option
from archcalc.records import record
from archcalc.tensor import format_shape


@record
class _Given:
    """One command-line value for one argument of the layer type."""

    option: str  # how the user wrote it: --kernel
    arg: str  # the layer type's argument: kernel
    value: Any


@record
class _Input:
    channels: int | None  # None: the user gave only the spatial size (pooling needs no channels)
    spatial: tuple[int, ...]


@cli.group()
def calc() -> None:
    """Work out one conv, transposed conv, pool or FC layer: output size, parameters, MACs, with formulas.

    \b
    Examples:
      archcalc calc conv --input 227 --kernel 11 --stride 4 --in-channels 3 --out-channels 96
      archcalc calc conv --input 3x224x224 --kernel 11 --stride 4 --padding 2 --out-channels 64
      archcalc calc convtranspose --input 32x7x7 --kernel 3 --stride 2 --padding 1 --out-channels 16 --target 14
      archcalc calc pool --input 55 --kernel 3 --stride 2
      archcalc calc fc --in 9216 --out 4096
    """


_SIZES = re.compile(r"[0-9]{1,16}(?:[x×][0-9]{1,16})*")  # 3, 1x7: nothing else reaches the layer rule


def _sizes_only(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A size option holds sizes, exactly: no parentheses, commas or spec text ('3)\nrelu'), no
    Unicode digits, no 5,000-digit number."""
    if value is not None and not _SIZES.fullmatch(value):
        from archcalc.errors import UsageError

        shown = value if len(value) <= 40 else value[:40] + "…"
        raise UsageError(f"{param.opts[0]} must be a whole number or sizes joined by x (3 or 1x7, at most 16 "
                         f"digits each), not {shown!r}")
    return value


def _size_option(name: str, default: str | None, help_text: str) -> Callable[[Any], Any]:
    return click.option(name, default=default, required=default is None, metavar="N[xN]",
                        show_default=default is not None, help=help_text, callback=_sizes_only)


@calc.command("conv")
@click.option("--input", "input_size", required=True, metavar="SIZE",
              help="Input size: 227 (square), 227x227 (H×W) or 3x227x227 (C×H×W).")
@_size_option("--kernel", None, "Kernel size: 11 or 1x7.")
@_size_option("--stride", "1", "Stride.")
@click.option("--padding", default=None, metavar="N[xN]", callback=_sizes_only,
              help="Zero padding on each side  [default: 0, the textbook formula's; a spec's conv pads 'same']")
@_size_option("--dilation", "1", "Dilation (the kernel spans D·(K−1)+1 inputs).")
@click.option("--groups", type=click.IntRange(min=1), default=1, show_default=True, help="Groups.")
@click.option("--in-channels", type=click.IntRange(min=1), default=None,
              help="Input channels C (only parameters and MACs need them).")
@click.option("--out-channels", type=click.IntRange(min=1), default=None,
              help="Output channels, the filters (only parameters and MACs need them).")
@click.option("--no-bias", is_flag=True, help="The layer has no bias.")
@format_option("text", "json")
def conv(input_size: str, kernel: str, stride: str, padding: str | None, dilation: str, groups: int,
         in_channels: int | None, out_channels: int | None, no_bias: bool, fmt: str) -> None:
    """One convolution: output size, weights, parameters, MACs, FLOPs, each with its formula.

    Padding defaults to 0 here (the textbook formula), unlike `conv3-64` in a spec, which pads
    'same'. Without channel counts it answers the size question alone.

    \b
    Examples:
      archcalc calc conv --input 7 --kernel 3 --stride 2      # the output size only
      archcalc calc conv --input 227 --kernel 11 --stride 4 --in-channels 3 --out-channels 96
      archcalc calc conv --input 3x224x224 --kernel 11 --stride 4 --padding 2 --out-channels 96
      archcalc calc conv --input 56 --kernel 3 --dilation 2 --padding 2 --in-channels 64 --out-channels 64
      archcalc calc conv --input 32x56x56 --kernel 3 --padding 1 --groups 32 --out-channels 32 --no-bias
    """
    given = _parse_input(input_size)
    spatial_only = out_channels is None or (given.channels is None and in_channels is None)
    channels = groups if spatial_only else _channels(given, in_channels)
    pad = padding if padding is not None else "0"
    values = [_Given("--out-channels", "out_channels", out_channels or groups), _Given("--kernel", "kernel", kernel),
              _Given("--stride", "stride", stride), _Given("--padding", "padding", pad),
              _Given("--dilation", "dilation", dilation), _Given("--groups", "groups", groups),
              _Given("--no-bias", "bias", not no_bias)]
    filters = "" if spatial_only else f"c={out_channels}, "
    label = (f"conv({filters}k={kernel}, s={stride}, p={pad}, d={dilation}, g={groups}, "
             f"bias={'false' if no_bias else 'true'})")
    notes = []
    if padding is None:
        notes.append("padding 0: calc's default, as the textbook formula; a spec's conv (conv3-64) pads 'same' "
                     "unless written /p0")
    if spatial_only:
        notes.append("parameters and MACs need the channels: --in-channels (or --input CxHxW) and --out-channels")
    _run("conv", (channels, *given.spatial), values, label, fmt, spatial_only=spatial_only, notes=notes)


@calc.command("convtranspose")
@click.option("--input", "input_size", required=True, metavar="SIZE",
              help="Input size: 7 (square), 7x7 (H×W) or 32x7x7 (C×H×W).")
@_size_option("--kernel", None, "Kernel size: 3 or 3x3.")
@_size_option("--stride", "1", "Stride (S − 1 zeros go between neighbouring inputs).")
@_size_option("--padding", "0", "Padding: taken off each side of the full output.")
@_size_option("--output-padding", "0", "Rows/columns added at the end (smaller than the stride or the dilation).")
@_size_option("--dilation", "1", "Dilation.")
@click.option("--groups", type=click.IntRange(min=1), default=1, show_default=True, help="Groups.")
@click.option("--in-channels", type=click.IntRange(min=1), default=None, help="Input channels C.")
@click.option("--out-channels", type=click.IntRange(min=1), required=True, help="Output channels.")
@click.option("--no-bias", is_flag=True, help="The layer has no bias.")
@click.option("--target", default=None, metavar="N[xN]",
              help="The output size wanted: archcalc picks the output padding that gives it.")
@format_option("text", "json")
def convtranspose(input_size: str, kernel: str, stride: str, padding: str, output_padding: str, dilation: str,
                  groups: int, in_channels: int | None, out_channels: int, no_bias: bool, target: str | None,
                  fmt: str) -> None:
    """One transposed convolution: output size (PyTorch's formula and the zero-insertion view),
    weights, parameters, MACs, FLOPs, and which output padding gives which size.

    O = (I − 1)·S − 2P + D·(K − 1) + output_padding + 1. Under a strided convolution with the
    same kernel, stride and padding, S output sizes shrink back to I; --target says which one
    you want and archcalc finds the output padding.

    \b
    Examples:
      archcalc calc convtranspose --input 2 --kernel 3 --stride 2 --in-channels 2 --out-channels 3
      archcalc calc convtranspose --input 32x7x7 --kernel 3 --stride 2 --padding 1 --out-channels 16 --target 14
      archcalc calc convtranspose --input 1024x28x28 --kernel 2 --stride 2 --out-channels 512
      archcalc calc convtranspose --input 3 --kernel 3 --dilation 2 --in-channels 2 --out-channels 3 --format json
    """
    given = _parse_input(input_size)
    channels = _channels(given, in_channels)
    if target is not None:
        if output_padding != "0":
            from archcalc.errors import UsageError

            raise UsageError("--target chooses the output padding: give --target or --output-padding, not both")
        output_padding = _output_padding_for(target, given.spatial, kernel, stride, padding, dilation)
    values = [_Given("--out-channels", "out_channels", out_channels), _Given("--kernel", "kernel", kernel),
              _Given("--stride", "stride", stride), _Given("--padding", "padding", padding),
              _Given("--output-padding", "output_padding", output_padding), _Given("--dilation", "dilation", dilation),
              _Given("--groups", "groups", groups), _Given("--no-bias", "bias", not no_bias)]
    label = (f"convtranspose(c={out_channels}, k={kernel}, s={stride}, p={padding}, op={output_padding}, "
             f"d={dilation}, g={groups}, bias={'false' if no_bias else 'true'})")
    analysis = _analysis("convtranspose", (channels, *given.spatial), values, label)
    result = _result(analysis, spatial_only=False)
    result["output_padding_choices"] = _choices(analysis)
    if any(len(c["sizes"]) > 1 for c in result["output_padding_choices"]):
        result["warnings"] = [w for w in result["warnings"] if w not in _ambiguity_warnings(analysis)]
    if fmt == "json":
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        click.echo(_text(result))


def _axes_of(text: str, rank: int, option: str) -> tuple[int, ...]:
    from archcalc.errors import UsageError
    from archcalc.layers.base import LayerArgError, parse_size, per_axis

    try:
        return per_axis(parse_size(text), rank, option)
    except (ValueError, LayerArgError) as e:
        raise UsageError(f"{option} must be a size like 14 or 14x14 for the input's {rank} axes, not '{text}'"
                         + (f" ({e})" if isinstance(e, LayerArgError) else "")) from None


def _output_padding_for(target: str, spatial: tuple[int, ...], kernel: str, stride: str, padding: str,
                        dilation: str) -> str:
    """The --output-padding that gives --target on every axis, or a clean error naming what is reachable."""
    from archcalc.errors import UsageError
    from archcalc.layers.base import LayerArgError
    from archcalc.layers.transposed import output_padding_for

    rank = len(spatial)
    wanted, k, s, p, d = (_axes_of(v, rank, o) for v, o in ((target, "--target"), (kernel, "--kernel"),
                                                              (stride, "--stride"), (padding, "--padding"),
                                                              (dilation, "--dilation")))
    try:
        pads = [output_padding_for(*axis) for axis in zip(wanted, spatial, k, s, p, d)]
    except LayerArgError as e:
        raise UsageError(f"--target {target}: {e}") from None
    return "x".join(map(str, pads)) if len(set(pads)) > 1 else str(pads[0])


def _ambiguity_warnings(analysis: Any) -> set[str]:
    """The node's warnings that say which output padding gives which size (the choices rows say it)."""
    from archcalc.layers.base import per_axis
    from archcalc.layers.transposed import ambiguity

    node = analysis.graph.output
    a, sizes = node.args, node.in_shapes[0][1:]
    rank = len(sizes)
    k, s, p, d = (per_axis(a[key], rank) for key in ("kernel", "stride", "padding", "dilation"))
    return {ambiguity(sizes[i], k[i], s[i], p[i], d[i], node.shape[1 + i]) for i in range(rank)}


def _choices(analysis: Any) -> list[dict[str, Any]]:
    """Per spatial axis, the output sizes that the matching convolution maps back to the input's, each
    with the output padding that gives it."""
    from archcalc.layers.base import per_axis
    from archcalc.layers.transposed import output_padding_choices
    from archcalc.tensor import spatial_axis_names

    node = analysis.graph.output
    a, sizes = node.args, node.in_shapes[0][1:]
    rank = len(sizes)
    k, s, p, d = (per_axis(a[key], rank) for key in ("kernel", "stride", "padding", "dilation"))
    names = spatial_axis_names(rank)
    return [{"axis": names[i], "input": sizes[i],
             "sizes": [{"output_padding": op, "output": o} for op, o in output_padding_choices(sizes[i], k[i], s[i],
                                                                                             p[i], d[i])]}
            for i in range(rank)]


@calc.command("pool")
@click.option("--input", "input_size", required=True, metavar="SIZE",
              help="Input size: 55 (square), 55x55 (H×W) or 96x55x55 (C×H×W).")
@_size_option("--kernel", None, "Window size: 3 or 3x3.")
@click.option("--stride", default=None, metavar="N[xN]", callback=_sizes_only,
              help="Stride (default: the kernel size, as PyTorch).")
@_size_option("--padding", "0", "Padding on each side (at most half the kernel).")
@click.option("--ceil", is_flag=True, help="ceil_mode: round the division up (PyTorch's rule).")
@click.option("--type", "kind", type=click.Choice(["max", "avg"]), default="max", show_default=True)
@format_option("text", "json")
def pool(input_size: str, kernel: str, stride: str | None, padding: str, ceil: bool, kind: str,
         fmt: str) -> None:
    """One max or average pool: output size with its formula.

    \b
    Examples:
      archcalc calc pool --input 55 --kernel 3 --stride 2
      archcalc calc pool --input 112 --kernel 3 --stride 2 --padding 1
      archcalc calc pool --input 56 --kernel 3 --stride 2 --ceil
      archcalc calc pool --input 96x55x55 --kernel 3 --stride 2 --format json
    """
    given = _parse_input(input_size)
    values = [_Given("--kernel", "kernel", kernel), _Given("--padding", "padding", padding),
              _Given("--ceil", "ceil_mode", ceil)]
    if stride:
        values.append(_Given("--stride", "stride", stride))
    stride_arg = f", s={stride}" if stride else ""
    label = f"{kind}pool(k={kernel}{stride_arg}, p={padding}, ceil={'true' if ceil else 'false'})"
    _run(f"{kind}pool", (given.channels or 1, *given.spatial), values, label, fmt,
         spatial_only=given.channels is None)


@calc.command("fc")
@click.option("--in", "in_features", type=click.IntRange(min=1), required=True, help="Input features.")
@click.option("--out", "out_features", type=click.IntRange(min=1), required=True, help="Output features.")
@click.option("--no-bias", is_flag=True, help="The layer has no bias.")
@format_option("text", "json")
def fc(in_features: int, out_features: int, no_bias: bool, fmt: str) -> None:
    """One fully connected layer: weights, parameters, MACs, FLOPs, each with its formula.

    \b
    Examples:
      archcalc calc fc --in 9216 --out 4096
      archcalc calc fc --in 25088 --out 4096 --format json
    """
    values = [_Given("--out", "out_features", out_features), _Given("--no-bias", "bias", not no_bias)]
    _run("fc", (in_features,), values, f"fc(out={out_features}, bias={'false' if no_bias else 'true'})", fmt,
         spatial_only=False)


# -- the shared pipeline ------------------------------------------------------------


def _parse_input(text: str) -> _Input:
    from archcalc.errors import UsageError
    from archcalc.layers.base import parse_size

    try:
        if not _SIZES.fullmatch(text):
            raise ValueError(text)
        sizes = parse_size(text)
    except ValueError:
        raise UsageError(
            f"--input must be sizes joined by x (227, 227x227 or 3x227x227), not '{text}'") from None
    if not 1 <= len(sizes) <= 3 or min(sizes) < 1:
        raise UsageError(f"--input must be 227, 227x227 (H×W) or 3x227x227 (C×H×W), not '{text}'")
    if len(sizes) == 1:
        return _Input(None, sizes * 2)
    if len(sizes) == 2:
        return _Input(None, sizes)
    return _Input(sizes[0], sizes[1:])


def _channels(given: _Input, in_channels: int | None) -> int:
    from archcalc.errors import UsageError

    if given.channels is not None and in_channels is not None and given.channels != in_channels:
        raise UsageError(f"--input has {given.channels} channels but --in-channels says {in_channels}")
    channels = given.channels if given.channels is not None else in_channels
    if channels is None:
        raise UsageError("give the input channels: --in-channels 3, or --input 3x227x227")
    return channels


def _run(layer: str, input_shape: tuple[int, ...], values: list[_Given], label: str, fmt: str,
         spatial_only: bool, notes: list[str] | None = None) -> None:
    """Analyse `input SHAPE` + one layer, then print its figures and formulas."""
    result = _result(_analysis(layer, input_shape, values, label), spatial_only)
    if spatial_only and layer == "conv":  # sizes only: no channel counts were given
        result = {k: v for k, v in result.items() if k not in ("weights", "biases", "params", "macs", "flops")}
        result["formulas"] = [f for f in result["formulas"] if f["what"].startswith("output ")]
    result["notes"] = list(notes or [])
    if fmt == "json":
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        click.echo(_text(result))


def _analysis(layer_name: str, input_shape: tuple[int, ...], values: list[_Given], label: str) -> Any:
    """The one-layer graph from the layer type's own rules; a wrong value names its option."""
    from archcalc.errors import SpecError, UsageError
    from archcalc.graph import Draft, DraftGraph
    from archcalc.layers import REGISTRY
    from archcalc.layers.base import LayerArgError
    from archcalc.passes.analysis import analyze
    from archcalc.passes.shapes import infer

    layer = REGISTRY[layer_name]
    try:
        args = layer.normalize({v.arg: v.value for v in values})
    except LayerArgError as e:
        wrong = next((v for v in values if v.arg == e.arg), None)
        raise UsageError(f"{wrong.option} {str(wrong.value)!r}: {e}" if wrong else str(e)) from None
    shape = "x".join(map(str, input_shape))
    drafts = DraftGraph((Draft(0, "input", {"shape": input_shape}, (), f"input {shape}", None),
                         Draft(1, layer.name, args, (0,), label, None)), f"calc-{layer_name}")
    try:
        return analyze(infer(drafts))
    except SpecError as e:
        raise UsageError(e.message) from None


def _result(analysis: Any, spatial_only: bool) -> dict[str, Any]:
    from archcalc.passes import figures
    from archcalc.report import explain

    node = analysis.graph.output
    c = analysis.counts[node.id]
    keep = slice(1, None) if spatial_only else slice(None)
    return {
        "layer": node.type,
        "spec": node.text,
        "input": list(node.in_shapes[0][keep]),
        "output": list(node.shape[keep]),
        "weights": c.weights,
        "biases": c.biases,
        "params": c.params,
        "macs": analysis.macs[node.id],
        "flops": analysis.flops(node.id),
        "formulas": explain.to_dicts(figures.formulas(analysis, node.id)),
        "warnings": list(node.warnings),
    }


def _choice_rows(choices: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """A transposed convolution's sizes to choose from, one row for the axes that agree."""
    alike: dict[str, list[str]] = {}
    for choice in choices:
        sizes = choice["sizes"]
        if len(sizes) > 1:
            listed = " or ".join(f"output_padding {c['output_padding']} → {c['output']}" for c in sizes)
            text = (f"{listed}: the matching strided conv maps each back to {choice['input']} "
                    f"(--target N picks one)")
            alike.setdefault(text, []).append(choice["axis"])
    return [(f"  {', '.join(axes)}", text) for text, axes in alike.items()]


def _text(r: dict[str, Any]) -> str:
    from archcalc.layers.base import Formula

    formulas = [Formula(**f) for f in r["formulas"]]
    rows: list[tuple[str, str]] = [("input", format_shape(r["input"])), ("output", format_shape(r["output"]))]
    rows += [(f"  {f.what[len('output '):]}" if f.what.startswith("output ") else f.what, f.line())
             for f in formulas]
    rows[2 + sum(f.what.startswith("output ") for f in formulas):2] = _choice_rows(r.get("output_padding_choices", []))
    if r.get("weights") or r.get("macs"):
        if r["biases"]:
            before_params = next(i for i, (k, _) in enumerate(rows) if k == "params")
            rows.insert(before_params, ("biases", f"{r['biases']:,}"))
        rows.append(("FLOPs", f"2·{r['macs']:,} = {r['flops']:,}  (FLOPs = 2 × MACs)"))
    width = max(len(k) for k, _ in rows)
    lines = [r["spec"], *(f"  {k:<{width}}  {v}" for k, v in rows)]
    lines += [f"warning: {w}" for w in r["warnings"]]
    lines += [f"note: {n}" for n in r.get("notes", [])]
    return "\n".join(lines)


