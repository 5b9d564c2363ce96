"""`archcalc import`: a PyTorch model or an ONNX file, written as a spec."""

from __future__ import annotations

import click

from archcalc.cli import cli, input_option, parse_input


@cli.command("import")
@click.argument("target", metavar="TARGET")
@input_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the spec to this file (default: standard output).")
@click.option("--arg", "args", metavar="KEY=VALUE", multiple=True,
              help="An argument for the factory or class, as a Python literal (--arg num_classes=10); repeatable.")
@click.option("--allow-unknown", is_flag=True,
              help="Keep operations archcalc has no rule for as opaque nodes (their shape and parameters as "
                   "measured; their MACs are not counted, and every report says so) instead of stopping.")
@click.option("--name", default=None, help="The spec's name (default: the factory's or the file's).")
def import_model(target: str, input_shape: tuple[str, ...], output: str | None, args: tuple[str, ...],
                 allow_unknown: bool, name: str | None) -> None:
    """Write a model you already have as a spec: blocks, names, comments, every figure exact.

    TARGET is package.module:factory or path/to/model.py:ClassOrFactory (called with no
    arguments, or with --arg), or an .onnx file. A PyTorch model is built and traced on the
    meta device (torch.fx): nothing is allocated, so a 70-billion-parameter model imports
    on a laptop. The spec is read back and checked before it is written: every layer's
    output shape, parameters, buffers and FLOPs equal what PyTorch measures for the model.

    Every other command takes a TARGET in place of a spec too (report, rf, render, check,
    compare, verify), importing it in memory.

    \b
    Examples:
      archcalc import torchvision.models:resnet50 --input 3x224x224 -o resnet50.arch
      archcalc import model.py:Net --input 1x28x28
      archcalc import model.py:make_model --input 3x32x32 --arg width=64 --arg depth=4
      archcalc import model.py:Siamese --input left=1x105x105 --input right=1x105x105
      archcalc import model.onnx -o model.arch
      archcalc import model.py:Net --input 3x224x224 --allow-unknown
      archcalc report model.py:Net --input 1x28x28
    """
    from archcalc.importers import import_target

    result = import_target(target, parse_input(input_shape), args, allow_unknown=allow_unknown, name=name)
    if output:
        with open(output, "w", encoding="utf-8") as f:
            f.write(result.spec)
    else:
        click.echo(result.spec, nl=False)
    graph, checked = result.graph, result.checked
    from archcalc.passes.analysis import analyze

    totals = analyze(graph).totals
    where = f" to {output}" if output else ""
    unknown = (f"; {checked.unknown} unknown op{'s' if checked.unknown != 1 else ''} kept as opaque nodes "
               f"(MACs exclude them)" if checked.unknown else "")
    click.echo(f"imported {target}{where} in {result.seconds:.1f} s: {checked.nodes} layers, {result.blocks} "
               f"block{'s' if result.blocks != 1 else ''}; {totals.params:,} parameters, {totals.macs:,} MACs"
               f"{unknown}", err=True)
    click.echo("checked: every layer's output shape, parameters, buffers and FLOPs equal the model's "
               "(PyTorch, FlopCounterMode)" if graph.source and "onnx" not in target[-5:] else
               "checked: every layer's output shape and parameters equal the ONNX graph's", err=True)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
