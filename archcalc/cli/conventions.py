"""`archcalc explain-diff` (where two counting conventions differ) and `archcalc conventions`."""

from __future__ import annotations

import json

import click

from archcalc.cli import cli, format_option, input_option, parse_input, show, spec_argument
from archcalc.cli.commands import parse_settings, set_option


def _names() -> list[str]:
    from archcalc.passes.conventions import names

    return names()


@cli.command("explain-diff")
@spec_argument
@click.option("--between", nargs=2, type=click.Choice(_names()), default=("pytorch", "ptflops"), show_default=True,
              metavar="A B", help="The two conventions to compare (`archcalc conventions` lists them).")
@input_option
@format_option("table", "markdown", "json")
@set_option
def explain_diff(spec: str, between: tuple[str, str], input_shape: tuple[str, ...], fmt: str,
                 settings: tuple[str, ...]) -> None:
    """Where two counting conventions differ on SPEC, by layer type, with percentages.

    Each row is one layer type: how many layers, what each convention counts for them and by
    which rule, the difference and its share of A's total. The headline sums it up
    ("+4.46 %: bn 2·elements …"); what a convention cannot reproduce from per-layer facts is
    named under the table.

    \b
    Examples:
      archcalc explain-diff mobilenet_v2 --between pytorch fvcore
      archcalc explain-diff resnet50 --between pytorch ptflops --format markdown
      archcalc explain-diff examples/lstm-net --between pytorch torchinfo
      archcalc explain-diff vgg16 --between pytorch tf-profiler --format json
    """
    import archcalc
    from archcalc.passes import conventions
    from archcalc.passes.analysis import analyze
    from archcalc.report import conventions as views

    analysis = analyze(archcalc.load(spec, parse_input(input_shape), parse_settings(settings)))
    a, b = (analysis.conventions[name] for name in between)
    d = conventions.diff(analysis.graph, a, b)
    if fmt == "json":
        click.echo(json.dumps(views.diff_dict(analysis, d), indent=2, ensure_ascii=False))
    elif fmt == "markdown":
        click.echo(views.diff_markdown(analysis, d), nl=False)
    else:
        show(views.diff_table(analysis, d))


@cli.command("conventions")
@format_option("table", "json")
def list_conventions(fmt: str) -> None:
    """The counting conventions --convention takes: the tool each reproduces and its rule.

    \b
    Examples:
      archcalc conventions
      archcalc conventions --format json
      archcalc report mobilenet_v2 --convention thop
    """
    from archcalc.report import conventions as views

    if fmt == "json":
        click.echo(json.dumps(views.registry_dicts(), indent=2, ensure_ascii=False))
    else:
        click.echo(views.registry_text(), nl=False)
