"""`archcalc render`: the layer graph as a diagram (SVG, PNG, PDF or DOT)."""

from __future__ import annotations

from typing import Any

import click

from archcalc.cli import check_output, cli, input_option, parse_input, path_text, spec_argument


def parse_depth(value: str) -> int | None | str:
    """'auto', 'all' (every layer: None) or a whole number."""
    from archcalc.errors import UsageError

    text = value.strip().lower()
    if text == "auto":
        return "auto"
    if text in ("all", "full"):
        return None
    if text.isascii() and text.isdigit() and len(text) < 10:
        return int(text)
    shown = value if len(value) <= 40 else value[:40] + "…"
    raise UsageError(f"--depth takes a whole number, auto or all, not '{shown}'")


def resolve_depth(analysis: Any, value: str) -> tuple[int | None, str]:
    """The depth to draw at and what the picture then shows (for the message)."""
    from archcalc.report.diagram import choose_depth, depth_note

    depth = parse_depth(value)
    if depth == "auto":
        chosen = choose_depth(analysis)
        return chosen, depth_note(analysis, chosen, chosen=True)
    assert depth is None or isinstance(depth, int)
    return depth, depth_note(analysis, depth, chosen=False)


@cli.command("render")
@spec_argument
@click.option("-o", "--output", "output", required=True, metavar="FILE",
              help="Where to write the diagram; the format follows the extension: .svg .png .pdf .dot")
@click.option("--rankdir", type=click.Choice(["TB", "LR"]), default="TB", show_default=True,
              help="Top to bottom, or left to right.")
@click.option("--depth", default="auto", show_default=True, metavar="N|auto|all",
              help="Collapse blocks nested deeper than N into one box each (0: every top-level block); "
                   "auto: the deepest that keeps the picture to about 60 boxes; all: every layer.")
@input_option
def render_command(spec: str, output: str, rankdir: str, depth: str, input_shape: tuple[str, ...]) -> None:
    """Draw SPEC as a diagram: layers, shapes, parameters, blocks as clusters.

    Boxes show each layer as written, its output shape and parameters, coloured by kind
    (conv, fc, pool, norm, activation, merge); a collapsed block says what it holds
    ("1×1 | 1×1→3×3 | 1×1→5×5 | pool→1×1") and blocks alike in a row are one box
    ("bottleneck × 5"). Concatenated branches are drawn left to right in their order; hidden
    ReLUs and flattens are small dashed boxes. By default the depth is chosen so the picture
    fits a page; --depth all draws every layer. Drawing needs Graphviz's `dot` program;
    without it the .dot file is still written.

    \b
    Examples:
      archcalc render vgg16 -o vgg16.svg
      archcalc render resnet50 -o resnet50.pdf --depth 1
      archcalc render densenet121 -o densenet121.png            # depth chosen to fit
      archcalc render densenet121 -o densenet121.svg --depth all --rankdir LR
      archcalc render my.arch -o my.dot
    """
    import archcalc
    from archcalc.report.diagram import render

    check_output(output)
    analysis = archcalc.analyze(spec, parse_input(input_shape))
    chosen, note = resolve_depth(analysis, depth)
    path = render(analysis, output, chosen, rankdir)
    click.echo(f"wrote {path_text(path)}: {note}")
