"""`archcalc compare`: several networks side by side, one row each."""

from __future__ import annotations

from typing import Any

import click

from archcalc.cli import cli, format_option, input_option, parse_input, show


def _names() -> list[str]:
    from archcalc.passes.conventions import names

    return names()


@cli.command()
@click.argument("specs", nargs=-1, required=True, metavar="SPEC...")
@input_option
@format_option("table", "markdown", "json")
@click.option("--convention", "conventions", multiple=True, type=click.Choice(_names()), metavar="NAME",
              help="Add a column with each network's total under this counting convention (repeatable; "
                   "`archcalc conventions` lists them).")
def compare(specs: tuple[str, ...], input_shape: tuple[str, ...], fmt: str, conventions: tuple[str, ...]) -> None:
    """Compare networks: params, MACs, FLOPs, parameter memory, depth, output, FC share.

    One row per SPEC, as the VGG paper's Table 2 compares its configurations A–E. The FC share
    is the fraction of all parameters in fully connected layers; with the receptive-field pass
    installed the RF of the last spatial layer is shown too.

    \b
    Examples:
      archcalc compare vgg11 vgg11-lrn vgg13 vgg16-c vgg16 vgg19
      archcalc compare alexnet vgg16 resnet50 --format markdown
      archcalc compare resnet18 resnet34 --input 3x160x160 --format json
      archcalc compare resnet50 mobilenet_v2 --convention ptflops --convention fvcore
    """
    import archcalc
    from archcalc.report import compare as cmp

    shape = parse_input(input_shape)
    rows = [cmp.row(archcalc.analyze(spec, shape), conventions) for spec in specs]
    if fmt == "json":
        click.echo(cmp.to_json(rows), nl=False)
    elif fmt == "markdown":
        click.echo(cmp.to_markdown(rows), nl=False)
    else:
        show(_table(rows))


def _table(rows: list[Any]) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from archcalc.report import compare as cmp

    table = Table(title="compared", header_style="bold")
    for i, title in enumerate(cmp.titles(rows)):
        table.add_column(title, justify="left" if i in (0, 1, 7) else "right", no_wrap=True)
    for cells in cmp.table_rows(rows):
        table.add_row(*cells)
    note = Text("MACs are multiply-accumulates; FLOPs = 2 × MACs. Parameter memory = params × 4 bytes "
                "(float32); 1 MiB = 2^20 bytes. Depth = weighted layers on the longest path.", style="dim")
    return Group(table, note)
