"""`archcalc verify` (static figures against the built torch model) and `archcalc export --torch`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from archcalc.cli import check_output, cli, format_option, input_option, parse_input, path_text, show, spec_argument
from archcalc.cli.commands import parse_settings, set_option

if TYPE_CHECKING:
    from rich.console import Group
    from rich.table import Table

    from archcalc.pytorch.timing import Timing
    from archcalc.pytorch.verify import Check, VerifyReport

MARK = {True: "[green]✓[/]", False: "[red]✗[/]"}


@cli.command()
@spec_argument
@click.option("--device", type=click.Choice(["cuda", "cpu"]), default=None,
              help="Where to run the model [default: cuda when available, else cpu].")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True, help="Batch size.")
@input_option
@click.option("--dtype", type=click.Choice(["float32", "float16", "bfloat16", "float64"]),
              default="float32", show_default=True, help="Parameter and input dtype.")
@format_option("table", "json")
@click.option("--runs", type=click.IntRange(min=0), default=None,
              help="Timed forward passes (median reported); 0 skips the timing "
                   "[default: 20 on CUDA, 3 on CPU].")
@click.option("--warmup", type=click.IntRange(min=0), default=None,
              help="Untimed forward passes first [default: 3 on CUDA, 1 on CPU].")
@click.option("--peak-tflops", type=click.FloatRange(min=0, min_open=True), default=None,
              help="The device's peak TFLOP/s for the '% of peak' figure (overrides the built-in table).")
@click.option("--layers", "all_layers", is_flag=True, help="List every layer's checks, not only mismatches.")
@set_option
def verify(spec: str, device: str | None, batch: int, input_shape: tuple[str, ...], dtype: str, fmt: str,
           runs: int | None, warmup: int | None, peak_tflops: float | None, all_layers: bool,
           settings: tuple[str, ...]) -> None:
    """Build SPEC in PyTorch and check archcalc's figures against it.

    Runs one forward pass on random input and compares, per layer and in total, the
    output shapes, parameters, buffers and FLOPs (torch.utils.flop_counter); then times
    the forward pass: the median of 20 runs on CUDA, of 3 on CPU unless --runs says
    otherwise. Exit status 1 when any figure differs, 2 on errors.

    \b
    Examples:
      archcalc verify vgg16
      archcalc verify resnet50 --device cuda --batch 64 --dtype bfloat16
      archcalc verify alexnet --device cpu --runs 5
      archcalc verify my.arch --input 3x32x32 --layers
      archcalc verify vgg16 --format json
      archcalc verify gpt2 --set seq=32 --device cpu   # a spec parameter ('param seq=1024')
    """
    import json

    import archcalc
    from archcalc.pytorch.verify import verify as run_verify

    graph = archcalc.load(spec, parse_input(input_shape), parse_settings(settings))
    report = run_verify(graph, device, batch, dtype, runs=runs, warmup=warmup, peak_tflops=peak_tflops)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        show(render(report, all_layers, default_runs=runs is None))
    if not report.ok:
        raise SystemExit(1)


@cli.command()
@spec_argument
@input_option
@click.option("--torch", "as_torch", is_flag=True, required=True,
              help="Write a standalone PyTorch nn.Module (the only format so far).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write to FILE instead of standard output.")
def export(spec: str, input_shape: tuple[str, ...], as_torch: bool, output: str | None) -> None:
    """Write SPEC as a standalone Python file defining an nn.Module (imports only torch).

    \b
    Examples:
      archcalc export vgg16 --torch -o vgg16.py
      python vgg16.py        # builds it and prints its parameters and output shape
      archcalc export my.arch --torch --input 3x32x32
    """
    import archcalc
    from archcalc.errors import UsageError
    from archcalc.pytorch.export import export_source

    check_output(output)
    source = export_source(archcalc.load(spec, parse_input(input_shape)))
    if output is None:
        click.echo(source, nl=False)
        return
    try:
        with open(output, "w", encoding="utf-8") as f:
            f.write(source)
    except OSError as e:
        raise UsageError(f"cannot write '{output}': {e.strerror}") from None
    click.echo(f"wrote {path_text(output)}", err=True)


# -- rendering (returns rich objects; the command prints) ----------------------------------------


def render(report: VerifyReport, all_layers: bool, default_runs: bool = False) -> Group:
    from rich.console import Group

    title = (f"[bold]{report.spec}[/]: archcalc vs torch {report.torch_version} on {report.device_name} "
             f"({report.device}, {report.dtype}, batch {report.batch})")
    parts: list[object] = [title, totals_table(report), layer_summary(report)]
    by_node = _layer_checks(report)
    shown = {k: v for k, v in by_node.items() if all_layers or not all(c.ok for c in v)}
    if shown:
        parts.append(layers_table(shown, report.batch))
    if report.timing is not None:
        parts.append(timing_line(report.timing, report, default_runs))
    verdict = "[green]all figures agree[/]" if report.ok else f"[red]{len(report.failures)} mismatch(es)[/]"
    parts.append(f"{report.passed}/{len(report.checks)} checks passed: {verdict}")
    return Group(*parts)  # type: ignore[arg-type]


def _is_total(c: Check) -> bool:
    return c.scope == "total" or c.scope.startswith("output")


def _layer_checks(report: VerifyReport) -> dict[int, list[Check]]:
    out: dict[int, list[Check]] = {}
    for c in report.checks:
        if not _is_total(c) and c.node is not None:
            out.setdefault(c.node, []).append(c)
    return out


def _fmt(what: str, value: object) -> str:
    if what == "shape":
        return "×".join(map(str, value)) if value else "—"  # type: ignore[call-overload]
    if what == "rf":  # the input positions the centre unit sees, first–last per axis
        ends = list(value)  # type: ignore[call-overload]
        if ends and ends[0] < 0:
            return "none"
        return " × ".join(f"{lo}–{hi}" for lo, hi in zip(ends[::2], ends[1::2], strict=True))
    return f"{value:,}"


def _cell(c: Check) -> str:
    """'1,792 ✓', or 'archcalc ≠ torch ✗' in red."""
    if c.ok:
        return f"{_fmt(c.what, c.archcalc)} {MARK[True]}"
    return f"[red]{_fmt(c.what, c.archcalc)} ≠ {_fmt(c.what, c.torch)}[/] {MARK[False]}"


def totals_table(report: VerifyReport) -> Table:
    from rich.table import Table

    table = Table(header_style="bold")
    for col, justify in (("check", "left"), ("archcalc", "right"), ("torch", "right"), ("", "center")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for c in report.checks:
        if _is_total(c):
            what = c.what if c.scope == "total" else f"{c.scope} shape"
            if c.what == "flops":
                what = f"FLOPs (batch {report.batch})"
            table.add_row(what, _fmt(c.what, c.archcalc), _fmt(c.what, c.torch), MARK[c.ok])
    return table


def layer_summary(report: VerifyReport) -> str:
    """'per layer: shape 52/52 ✓, params 52/52 ✓, ...'."""
    parts = []
    layer_checks = [c for c in report.checks if not _is_total(c)]
    for what in dict.fromkeys(c.what for c in layer_checks):
        group = [c for c in layer_checks if c.what == what]
        passed = sum(c.ok for c in group)
        parts.append(f"{what} {passed}/{len(group)} {MARK[passed == len(group)]}")
    return "per layer: " + ", ".join(parts)


def layers_table(by_node: dict[int, list[Check]], batch: int) -> Table:
    """One row per layer: each figure with ✓, or 'archcalc ≠ torch ✗'."""
    from rich.table import Table

    table = Table(title="per layer (archcalc ≠ torch where they differ)", header_style="bold")
    whats = list(dict.fromkeys(c.what for checks in by_node.values() for c in checks))
    heads = [f"FLOPs (batch {batch})" if w == "flops" else w for w in whats]
    for col in ("#", "module", "layer", *heads):
        table.add_column(col, justify="left" if col in ("module", "layer") else "right")
    for node, checks in by_node.items():
        cells = {c.what: _cell(c) for c in checks}
        table.add_row(str(node), checks[0].scope, checks[0].text, *(cells.get(w, "") for w in whats))
    return table


def timing_line(t: Timing, report: VerifyReport, default_runs: bool = False) -> str:
    """'forward: 12.345 ms median of 20 at batch 1 on … · samples/s · TFLOP/s [= % of peak]'.

    The CPU's few default runs are said as such: 'median of 3 runs (CPU default; --runs N for more)'.
    """
    runs = f"{t.runs} runs (CPU default; --runs N for more)" if default_runs and report.device == "cpu" else t.runs
    line = (f"forward: {t.latency_ms:.3f} ms median of {runs} at batch {t.batch} on {report.device_name} · "
            f"{t.throughput:,.1f} samples/s · {t.tflops:.3f} TFLOP/s (archcalc FLOPs)")
    if t.peak is not None and t.peak_share is not None:
        mode = "given peak" if t.peak.mode == "given" else f"{t.peak.device} dense {t.peak.mode} peak"
        line += f" = {100 * t.peak_share:.1f}% of {t.peak.tflops:g} TFLOP/s ({mode})"
    return line
