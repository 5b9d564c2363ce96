"""`archcalc check`: verify the figures a spec states after `=>`; exit 1 when one is wrong."""

from __future__ import annotations

import json
from typing import Any

import click

from archcalc.cli import cli, format_option, input_option, parse_input, show


def _names() -> list[str]:
    from archcalc.passes.conventions import names

    return names()


@cli.command()
@click.argument("specs", metavar="SPEC...", nargs=-1, required=True)
@input_option
@format_option("table", "json")
@click.option("--convention", type=click.Choice(_names()), default="pytorch", show_default=True,
              help="Check macs= and flops= claims against this tool's count (`archcalc conventions`).")
def check(specs: tuple[str, ...], input_shape: tuple[str, ...], fmt: str, convention: str) -> None:
    """Check the hand calculations written after `=>` in each SPEC.

    Each `=>` item is a shape (55x55x96 as H×W×C or 96x55x55 as C×H×W), an exact figure
    (params=34944, weights=, biases=, buffers=, macs=, flops=; digits may be grouped with _),
    a rounded one (params≈138M or params~138M; ≈390K means to the nearest 10K, as a reader
    writes it, and the output says so), rf=11, or `total params≈138M` for the whole network.
    Where a wrong shape comes from a default (conv5-6 pads 'same'; the textbook formula does
    not), the output says so and shows the /p0 fix. Exit status 1 when any is wrong, 0 when all hold.
    Several specs get one verdict block each (with --format json, a list of one object each),
    and the exit status is the worst of them: 2 when a spec could not be read, else 1 when a
    figure is wrong.

    \b
    Examples:
      archcalc check specs/examples/alexnet-hand.arch
      archcalc check examples/vgg16-hand
      archcalc check examples/alexnet-hand examples/vgg16-hand
      archcalc check my.arch --format json
      echo 'input 3x227x227
      conv11-96/s4/p0 => 55x55x96, params=34944' | archcalc check -
      echo 'input 3x224x224
      conv3-64, bn => macs=12_845_056, total macs=99_549_184' | archcalc check - --convention thop
    """
    shape = parse_input(input_shape)  # a bad --input is the command's error, whatever the specs
    if len(specs) == 1:  # one spec: its error is the command's error (exit status 2)
        worst, _ = _check_one(specs[0], shape, fmt, convention)
        if worst:
            click.get_current_context().exit(worst)
        return
    from archcalc.errors import ArchcalcError, SpecError

    statuses: list[int] = []
    blocks: list[dict[str, Any]] = []
    for i, spec in enumerate(specs):
        if fmt != "json" and i:
            click.echo()
        try:
            code, block = _check_one(spec, shape, fmt, convention, several=True)
        except ArchcalcError as e:  # this spec cannot be checked: say so, go on with the others
            message = e.format() if isinstance(e, SpecError) else f"error: {e}"
            if fmt == "json":
                blocks.append({"spec": spec, "ok": False, "error": message})
            else:
                click.echo(f"{spec}: cannot be checked")
                click.echo(message, err=True)
            statuses.append(2)
            continue
        if block is not None:
            blocks.append(block)
        statuses.append(code)
    if fmt == "json":
        click.echo(json.dumps(blocks, indent=2, ensure_ascii=False))
    else:
        counts = [("hold", statuses.count(0)), ("wrong", statuses.count(1)), ("cannot be checked", statuses.count(2))]
        click.echo("\n" + f"{len(specs)} specs: " + ", ".join(f"{n} {what}" for what, n in counts if n))
    if max(statuses):
        click.get_current_context().exit(max(statuses))


def _check_one(spec: str, shape: Any, fmt: str, convention: str,
               several: bool = False) -> tuple[int, dict[str, Any] | None]:
    """Check one spec and show its verdict block: (0 when every figure holds, 1 when one is wrong;
    with `several` and JSON the block, which the caller prints with the others as one list)."""
    import archcalc
    from archcalc.check import check as run
    from archcalc.passes.analysis import analyze

    analysis = analyze(archcalc.load(spec, shape), convention=convention)
    results = run(analysis)
    code = 1 if any(r.status == "wrong" for r in results) else 0
    if fmt == "json":
        data = _json(analysis, results)
        if several:
            return code, {"spec": spec, **data}
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return code, None
    if several:
        click.echo(f"{spec}:")
    if not results:
        click.echo(f"{analysis.graph.name}: no '=> ...' figures to check")
    else:
        show(_table(analysis, results))
    return code, None


def _layer(analysis: Any, r: Any) -> tuple[str, str]:
    from archcalc.check import subject

    if r.claim.total:
        return "", "(network)"
    node = subject(analysis.graph, r.claim.node)  # a hidden ReLU keeps its layer's shape
    return str(node.id), node.text


def _table(analysis: Any, results: list[Any]) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{analysis.graph.name}: hand calculations", header_style="bold")
    for title, justify in (("line", "right"), ("#", "right"), ("layer", "left"), ("claim", "left"),
                           ("", "center"), ("archcalc", "right"), ("how", "left")):
        table.add_column(title, justify=justify, no_wrap=title != "how")  # type: ignore[arg-type]
    style = {"ok": "green", "wrong": "bold red", "unavailable": "dim"}
    for r in results:
        node_id, text = _layer(analysis, r)
        table.add_row(str(r.claim.loc.line), node_id, text, r.claim.text, Text(r.mark, style=style[r.status]),
                      r.actual, r.how)
    notes = [f"line {r.claim.loc.line}, {r.claim.text}: {r.note}" for r in results if r.note]
    wrong = sum(r.status == "wrong" for r in results)
    missing = sum(r.status == "unavailable" for r in results)
    summary = f"{len(results) - wrong - missing} of {len(results)} figures hold"
    summary += f"; {wrong} wrong" if wrong else ""
    summary += f"; {missing} not available" if missing else ""
    parts: list[Table | Text] = [table, *(Text(n, style="yellow") for n in notes),
                                 Text(summary, style="bold red" if wrong else "bold green")]
    return Group(*parts)


def _json(analysis: Any, results: list[Any]) -> dict[str, Any]:
    from archcalc.check import Rounded
    from archcalc.report.formats import editor_column

    def expected(value: Any) -> Any:
        if isinstance(value, Rounded):
            return value.value
        return list(value) if isinstance(value, tuple) else value

    def plain(value: Any) -> Any:
        return list(value) if isinstance(value, tuple) else value

    def rounding(value: Any) -> dict[str, Any] | None:
        if not isinstance(value, Rounded):
            return None
        low, high = value.bounds()
        step = value.step * value.unit
        return {"written": f"≈{value.text}", "nearest": int(step) if step == int(step) else float(step),
                "low": low, "high": high}

    rows = []
    for r in results:
        node_id, text = _layer(analysis, r)
        rows.append({"line": r.claim.loc.line, "column": editor_column(analysis, r.claim.loc),
                     "node": int(node_id) if node_id else None, "layer": text, "claim": r.claim.text,
                     "key": r.claim.key, "total": r.claim.total, "expected": expected(r.claim.value),
                     "rounding": rounding(r.claim.value), "status": r.status, "actual": plain(r.value),
                     "actual_text": r.actual, "how": r.how, "note": r.note or None})
    return {"name": analysis.graph.name, "convention": analysis.convention,
            "ok": not any(r.status == "wrong" for r in results),
            "checked": len(results), "wrong": sum(r.status == "wrong" for r in results), "results": rows}
