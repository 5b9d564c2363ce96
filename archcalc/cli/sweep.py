"""`archcalc sweep`: one spec at several values of one of its parameters, side by side."""

from __future__ import annotations

import click

from archcalc.cli import cli, format_option, show, spec_argument
from archcalc.cli.commands import parse_settings, set_option, with_batch

MAX_VALUES = 32


def parse_over(text: str) -> tuple[str, list[str]]:
    """'seq=128,1024,8192' → ('seq', ['128', '1024', '8192'])."""
    from archcalc.errors import UsageError

    name, eq, values = text.partition("=")
    items = [v.strip() for v in values.split(",") if v.strip()]
    if not eq or not name.strip() or not items:
        raise UsageError(f"--over takes NAME=V1,V2,…, as in --over seq=128,1024,8192 (got '{text}')")
    if len(items) > MAX_VALUES:
        raise UsageError(f"--over takes at most {MAX_VALUES} values, got {len(items)}")
    return name.strip(), items


@cli.command()
@spec_argument
@click.option("--over", "over", metavar="NAME=V1,V2,…", required=True,
              help="The spec parameter to vary and its values, e.g. --over seq=128,1024,8192.")
@format_option("table", "json", "markdown")
@click.option("--dtype", type=click.Choice(["float32", "float16", "bfloat16", "int8"]), default="float32",
              show_default=True, help="Element type for the byte figures (KV cache, activations, parameters).")
@click.option("--batch", type=click.IntRange(min=1), default=None,
              help="Batch size for the byte figures (the same as --set batch=N) [default: 1].")
@set_option
def sweep(spec: str, over: str, fmt: str, dtype: str, batch: int | None, settings: tuple[str, ...]) -> None:
    """SPEC at several values of one parameter, side by side: parameters, MACs with the part
    that grows with T² (attention's Q·Kᵀ and A·V) apart from the rest, the causal-aware MACs,
    the MACs and parameters by kind of layer (attention, mlp, embedding, norm, …), the KV
    cache, the activation peak and the parameter bytes.

    \b
    Examples:
      archcalc sweep gpt2 --over seq=128,512,1024
      archcalc sweep gpt2 --over seq=128,8192 --set positions=8192   # where the FLOPs go
      archcalc sweep llama --over seq=128,2048,8192 --dtype float16 --batch 8
      archcalc sweep vit_b_16 --over image=224,384 --format json
    """
    import json

    import archcalc
    from archcalc.passes.analysis import analyze
    from archcalc.passes.memory import MemoryOptions
    from archcalc.report.sweep import sweep_dict, sweep_markdown, sweep_table

    name, values = parse_over(over)
    base = with_batch(parse_settings(settings), batch) or {}
    analyses = []
    for value in values:
        graph = archcalc.load(spec, None, {**base, name: value})
        analyses.append(analyze(graph, MemoryOptions(dtype, graph.params["batch"])))
    label = analyses[0].graph.name
    if fmt == "json":
        click.echo(json.dumps(sweep_dict(label, name, values, analyses), indent=2, ensure_ascii=False))
    elif fmt == "markdown":
        click.echo(sweep_markdown(label, name, values, analyses), nl=False)
    else:
        show(sweep_table(label, name, values, analyses))
