"""`archcalc render`: the layer graph as a diagram (SVG, PNG, PDF or DOT)."""

from __future__ import annotations

import click

from archcalc.cli import check_output, cli, input_option, parse_input, spec_argument


@cli.command("render")
@spec_argument
@click.option("-o", "--output", "output", required=True, metavar="FILE",
              help="Where to write the diagram; the format follows the extension: .svg .png .pdf .dot")
@click.option("--rankdir", type=click.Choice(["TB", "LR"]), default="TB", show_default=True,
              help="Top to bottom, or left to right.")
@click.option("--depth", type=click.IntRange(min=0), default=None,
              help="Collapse blocks nested deeper than N into one box each (0: every top-level block).")
@input_option
def render_command(spec: str, output: str, rankdir: str, depth: int | None, input_shape: tuple[str, ...]) -> None:
    """Draw SPEC as a diagram: layers, shapes, parameters, blocks as clusters.

    Boxes show each layer as written, its output shape and parameters, coloured by kind
    (conv, fc, pool, norm, activation, merge); edges carry the tensor shapes; hidden ReLUs
    and flattens are small dashed boxes. Drawing needs Graphviz's `dot` program; without it
    the .dot file is still written.

    \b
    Examples:
      archcalc render vgg16 -o vgg16.svg
      archcalc render resnet50 -o resnet50.pdf --depth 1
      archcalc render densenet121 -o densenet121.svg --depth 1 --rankdir LR
      archcalc render my.arch -o my.dot
    """
    import archcalc
    from archcalc.report.diagram import render

    check_output(output)
    analysis = archcalc.analyze(spec, parse_input(input_shape))
    path = render(analysis, output, depth, rankdir)
    click.echo(f"wrote {path}")
