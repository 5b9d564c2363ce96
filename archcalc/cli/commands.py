"""`archcalc report`, `list` and `layers`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import click

from archcalc.cli import cli, format_option, input_option, parse_input, path_text, show, spec_argument


def set_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--set NAME=VALUE`, repeatable: overrides a spec's `param` line."""
    return click.option("--set", "settings", metavar="NAME=VALUE", multiple=True,
                        help="Set a spec parameter (a 'param' line), e.g. --set k=256; repeatable.")(f)


def convention_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--convention NAME`: count as one of the published tools does (`archcalc conventions` lists them)."""
    from archcalc.passes.conventions import DEFAULT, names

    return click.option("--convention", type=click.Choice(names()), default=DEFAULT, show_default=True,
                        help="Count MACs as this tool does (its figure per layer, in JSON too); "
                             "`archcalc conventions` lists each one's rule.")(f)


def training_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--precision`, `--checkpoint` and `--device` of the training step."""
    f = click.option("--device", type=click.Choice(["cuda", "cpu"]), default="cuda", show_default=True,
                     help="Where training runs: a dropout mask is 1 byte per element on CUDA, the "
                          "activation dtype on CPU.")(f)
    f = click.option("--checkpoint", metavar="SEGMENTS", default=None,
                     help="Activation checkpointing: the network cut into this many segments (2 or more) "
                          "or 'sqrt' (√layers); only their inputs are kept, each recomputed once.")(f)
    return click.option("--precision", type=click.Choice(["fp32", "fp16", "bf16"]), default="fp32",
                        show_default=True,
                        help="Training precision: fp16/bf16 is mixed precision (half weights, gradients and "
                             "activations; fp32 master weights and optimizer state).")(f)


def training_options_from(optimizer: str, precision: str, checkpoint: str | None, batch: int,
                          device: str) -> Any:
    from archcalc.passes.training import TrainingOptions, parse_checkpoint

    return TrainingOptions(optimizer, precision, parse_checkpoint(checkpoint), batch, device)


def with_convention_column(analysis: Any, cols: list[Any], asked: str | None) -> list[Any]:
    """With --convention, the tool's figure as a column after MACs (unless --columns chose others)."""
    from dataclasses import replace

    from archcalc.report.conventions import title

    if analysis.convention == "pytorch":
        return [c if c.key != "counted" else replace(c, title=title(analysis.counted)) for c in cols]
    from archcalc.report.columns import by_key

    column = replace(by_key()["counted"], title=title(analysis.counted))
    cols = [column if c.key == "counted" else c for c in cols]
    if asked is None:
        at = next((i + 1 for i, c in enumerate(cols) if c.key == "macs"), len(cols))
        cols = cols[:at] + [column] + cols[at:]
    return cols


def training_columns(cols: list[Any]) -> list[Any]:
    from archcalc.report.columns import by_key
    from archcalc.report.training import COLUMN_KEYS

    have = {c.key for c in cols}
    return [by_key()[k] for k in COLUMN_KEYS if k not in have]


def parse_settings(settings: tuple[str, ...]) -> dict[str, str] | None:
    """('k=256', 'vocab=20000') → {'k': '256', 'vocab': '20000'}; the spec checks names and values."""
    from archcalc.errors import UsageError

    out: dict[str, str] = {}
    for item in settings:
        name, eq, value = item.partition("=")
        if not eq or not name.strip() or not value.strip():
            raise UsageError(f"--set takes NAME=VALUE, as in --set k=256 (got '{item}')")
        out[name.strip()] = value.strip()
    return out or None


def with_batch(settings: dict[str, str] | None, batch: int | None) -> dict[str, str] | None:
    """`--batch N` is `--set batch=N`; the two may not disagree."""
    from archcalc.errors import UsageError

    if batch is None:
        return settings
    given = (settings or {}).get("batch")
    if given is not None and given != str(batch):
        raise UsageError(f"--batch {batch} and --set batch={given} disagree: give the batch once")
    return {**(settings or {}), "batch": str(batch)}


@cli.command()
@spec_argument
@input_option
@format_option("table", "json", "csv", "markdown", "latex", "html")
@click.option("--depth", type=click.IntRange(min=0), default=None,
              help="Collapse blocks nested deeper than N into one row each.")
@click.option("--only", "only", metavar="WHICH", default=None,
              help="List only some rows (table, markdown, latex, csv, html): weighted (conv and FC, as a paper's "
                   "table; attention, MLP and embeddings too), params (every layer with parameters), or kinds: "
                   "conv,fc,attention,mlp,embedding,recurrent,norm,pool,activation,merge,matmul,other. "
                   "Totals stay the whole network's.")
@click.option("--quiet", "-q", is_flag=True, help="Leave the warnings out (JSON keeps them: they are data).")
@click.option("-o", "--output", "output", metavar="FILE", default=None,
              help="Write the report to FILE instead of standard output (html: one self-contained page).")
@click.option("--columns", metavar="LIST", default=None,
              help="Comma-separated columns for table/markdown, or 'all' "
                   "(type, shape, params, weights, biases, buffers, macs, flops, other, share, "
                   "rf, jump, start, aligned, act_bytes, param_bytes, connections, fc-equivalent, sharing, "
                   "t2_macs, causal_macs, kv_cache, kv_bytes, "
                   "counted, fwd, grad-in, grad-w, train, fcm-bwd, kept, state).")
@click.option("--explain", is_flag=True,
              help="Show each layer's formulas with the numbers put in (table, markdown, json).")
@click.option("--dtype", type=click.Choice(["float32", "float16", "bfloat16", "int8"]), default="float32",
              show_default=True, help="Element type for the memory figures.")
@click.option("--batch", type=click.IntRange(min=1), default=None,
              help="Batch size for the per-batch figures and memory (the same as --set batch=N) [default: 1, "
                   "or the spec's 'param batch'].")
@click.option("--optimizer", type=click.Choice(["sgd", "momentum", "adam", "adamw"]), default="adam",
              show_default=True,
              help="Optimizer state in the training memory estimate (none, 1× or 2× the parameters).")
@convention_option
@training_options
@click.option("--training", "show_training", is_flag=True,
              help="Add the training step per layer: forward, input and weight gradient FLOPs, "
                   "FlopCounterMode's figure, the bytes kept for backward (see `archcalc training`).")
@click.option("--totals", "totals_only", is_flag=True,
              help="Totals only, no per-layer list (table or json): a block repeated N times is analysed at a "
                   "few small counts and every figure carried to N, exactly (docs/repeats.md), so a spec of a "
                   "million layers written as repeats answers in well under a second. With --depth N, one row "
                   "per block, a run of alike blocks as one row with its count. The JSON has no 'layers' and "
                   "says so in 'summary'.")
@set_option
def report(spec: str, input_shape: tuple[str, ...], fmt: str, depth: int | None, only: str | None, quiet: bool,
           output: str | None, columns: str | None, explain: bool, dtype: str, batch: int | None, optimizer: str,
           convention: str, precision: str, checkpoint: str | None, device: str, show_training: bool,
           totals_only: bool, settings: tuple[str, ...]) -> None:
    """Per-layer shapes, parameters and MACs of SPEC, with totals.

    SPEC is a built-in name (see `archcalc list`), a path to a spec file, or - for
    standard input.

    \b
    Examples:
      archcalc report vgg16
      archcalc report resnet50 --depth 1
      archcalc report alexnet --format json > alexnet.json
      archcalc report specs/lenet5.arch --format markdown
      archcalc report vgg16 --input 3x32x32 --format csv
      archcalc report vgg16 --columns shape,params,flops,other
      archcalc report alexnet-paper --explain   # worked formulas under the table
      archcalc report resnet50 --dtype float16 --batch 32 --optimizer momentum
      archcalc report alphago-policy --set k=256   # a spec parameter ('param k=192')
      archcalc report gpt2 --set seq=128 --set batch=8   # a sequence length and a batch
      archcalc report lenet5-paper --columns shape,params,connections,fc-equivalent,sharing
      archcalc report vgg16 --format latex --only weighted   # a paper's table (booktabs)
      archcalc report resnet50 --format csv --depth 1 --columns shape,params,macs,rf
      archcalc report vgg16 --format html -o vgg16.html      # one page: table, diagram, RF, spec
      archcalc report resnet50 --quiet                       # no warnings
      archcalc report mobilenet_v2 --convention ptflops   # ptflops' figure per layer, and why it differs
      archcalc report resnet50 --training --optimizer adamw --precision bf16
      archcalc report gpt2 --set depth=1000 --totals --format json   # from the repeated blocks
    """
    import archcalc
    from archcalc.report import formats

    if fmt == "json" and columns is None:
        cols: list[Any] = []  # JSON has every figure: no columns to choose, report.columns not loaded
    else:
        from archcalc.report.columns import select

        cols = select(columns)
    from archcalc.passes.analysis import analyze
    from archcalc.passes.memory import MemoryOptions

    if totals_only:
        _totals_report(spec, input_shape, fmt, depth, output, dtype, batch, optimizer, convention, precision,
                       checkpoint, device, settings, (only, columns, explain, show_training))
        return

    graph = archcalc.load(spec, parse_input(input_shape), with_batch(parse_settings(settings), batch))
    samples = graph.params["batch"]
    analysis = analyze(graph, MemoryOptions(dtype, samples, optimizer), convention,
                       training_options_from(optimizer, precision, checkpoint, samples, device))
    if only is not None:
        from archcalc.report.rows import matcher

        matcher(analysis, only)  # a wrong word is an error before anything is written
    given = cols if columns is not None else None
    cols = with_convention_column(analysis, cols, columns)
    if show_training and fmt in ("table", "markdown", "latex", "html"):
        cols = cols + training_columns(cols)
    text: str | Iterable[str] | None = None
    if explain and fmt != "table":
        _report_explained(analysis, fmt, depth, cols)
    elif fmt == "json":
        text = formats.json_chunks(analysis)  # written a piece at a time, never held whole
    elif fmt == "csv":
        text = formats.to_csv(analysis, depth, given, only)
    elif fmt == "markdown":
        text = formats.to_markdown(analysis, depth, cols, only, quiet)
        if show_training:
            from archcalc.report.training import summary_lines

            text += "\n" + "\n".join(f"> {line}" for line in summary_lines(analysis)) + "\n"
    elif fmt == "latex":
        from archcalc.report.latex import to_latex

        text = to_latex(analysis, depth, cols, only)
    elif fmt == "html":
        text = _html(analysis, depth, cols, only, quiet, show_training)
    else:
        from archcalc.report.rows import readable_depth

        chosen = readable_depth(analysis) if depth is None else depth
        if output is None:
            _table_report(analysis, chosen, cols, quiet, only, show_training, explain, None)
        else:
            from archcalc.errors import UsageError

            try:
                with open(output, "w", encoding="utf-8") as f:
                    _table_report(analysis, chosen, cols, quiet, only, show_training, explain, f)
            except OSError as e:
                raise UsageError(f"cannot write {output}: {e.strerror}") from None
            click.echo(f"wrote {path_text(output)}", err=True)
        if chosen != depth:
            click.echo(f"({len(analysis.graph) - 1:,} layers: blocks nested deeper than {chosen} are shown as one "
                       f"row each; --depth {_deepest(analysis)} lists every layer)", err=True)
    if text is not None:
        _write(text, output, verbatim=fmt == "json")


def _totals_report(spec: str, input_shape: tuple[str, ...], fmt: str, depth: int | None, output: str | None,
                   dtype: str, batch: int | None, optimizer: str, convention: str, precision: str,
                   checkpoint: str | None, device: str, settings: tuple[str, ...], per_layer: tuple[Any, ...]) -> None:
    """`report --totals`: the summary of archcalc/repeats.py, as JSON or plain text."""
    import json

    import archcalc
    from archcalc.errors import UsageError
    from archcalc.passes.analysis import analyze
    from archcalc.passes.memory import MemoryOptions
    from archcalc.report.summary import to_text

    if fmt not in ("table", "json"):
        raise UsageError("--totals writes --format table or json (the other formats list layers)")
    if any(per_layer):
        raise UsageError("--totals lists no layers: --only, --columns, --explain and --training need the "
                         "per-layer report (leave out --totals)")

    def analyse(graph: Any) -> Any:
        samples = graph.params["batch"]
        return analyze(graph, MemoryOptions(dtype, samples, optimizer), convention,
                       training_options_from(optimizer, precision, checkpoint, samples, device))

    summary = archcalc.totals(spec, parse_input(input_shape), with_batch(parse_settings(settings), batch), depth,
                              analyse)
    doc = summary.to_dict()
    _write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n" if fmt == "json" else to_text(doc), output)


def _table_report(analysis: Any, depth: int | None, cols: Any, quiet: bool, only: str | None,
                  show_training: bool, explain: bool, file: Any) -> None:
    """The table report, its training lines and worked formulas, to stdout or `file`."""
    from archcalc.report.table import full_report

    show(full_report(analysis, depth, cols, quiet, only), file=file)
    if show_training:
        from archcalc.report.training import summary_lines

        click.echo("\n".join(summary_lines(analysis)), file=file)
    if explain:
        from archcalc.report.explain import to_text

        click.echo("\n" + to_text(analysis), nl=False, file=file)


def _write(text: str | Iterable[str], output: str | None, verbatim: bool = False) -> None:
    """`text`, or its pieces in turn (about a megabyte at a time: a big JSON document is never held
    whole), to stdout or the file `output`. The pieces are made as they are written (a JSON report's
    layer lines), all acyclic: the cyclic collector is paused meanwhile (5 % of a 10,000-layer
    JSON report's CPU, archcalc/quiet_gc.py). `verbatim`: text that holds no terminal escape
    (JSON: the encoders write every control character as `\\u001b`), which stdout is given as it
    is, not searched for escapes to strip as click.echo does on a pipe (0.5 µs a JSON layer)."""
    from archcalc.quiet_gc import paused

    with paused():
        _write_pieces(text, output, verbatim)


def _write_pieces(text: str | Iterable[str], output: str | None, verbatim: bool) -> None:
    from archcalc.errors import UsageError

    if output is None:
        color = True if verbatim else None  # click.echo strips no escape where color is on
        for part in _batched([text] if isinstance(text, str) else text):
            click.echo(part, nl=False, color=color)
        return
    try:
        with open(output, "w", encoding="utf-8") as f:
            for part in _batched([text] if isinstance(text, str) else text):
                f.write(part)
    except OSError as e:
        raise UsageError(f"cannot write {output}: {e.strerror}") from None
    click.echo(f"wrote {path_text(output)}", err=True)


def _batched(pieces: Iterable[str], size: int = 1 << 20) -> Iterator[str]:
    """The pieces joined into runs of about `size` characters."""
    run: list[str] = []
    held = 0
    for piece in pieces:
        run.append(piece)
        held += len(piece)
        if held >= size:
            yield "".join(run)
            run, held = [], 0
    if run:
        yield "".join(run)


def _html(analysis: Any, depth: int | None, cols: Any, only: str | None, quiet: bool, training: bool) -> str:
    """The one-page report: the diagram drawn at the depth that fits a page (when Graphviz is
    installed), the receptive-field profile of the last spatial layer, and the spec."""
    from archcalc.passes.receptive_field import path_counts
    from archcalc.report import diagram
    from archcalc.report.html import Extras, to_html
    from archcalc.report.rf_plot import svg as rf_svg

    chosen = diagram.choose_depth(analysis)
    drawing = diagram.svg_text(analysis, chosen)
    note = (f"drawn with {diagram.depth_note(analysis, chosen, chosen=True)}"
            .replace("--depth all", "'archcalc render SPEC -o FILE --depth all'") if drawing else
            f"no diagram: Graphviz's dot program is not installed ({diagram.INSTALL_HINT})")
    g = analysis.graph
    profile, rf_note = None, ""
    if analysis.final_rf is not None:
        node = g.node(analysis.final_rf)
        profile = rf_svg(f"{g.name}: paths from each input position to layer {node.id} ({node.text})",
                         path_counts(g, node.id))
        rf_note = "how many paths lead from each input position to the centre unit (archcalc rf)"
    extras = Extras(g.source.text if g.source else None, drawing, note, profile, rf_note)
    return to_html(analysis, depth, cols, only, quiet, extras, training)


def _deepest(analysis: Any) -> int:
    return max((len(n.scope) for n in analysis.graph), default=0)


def _report_explained(analysis: Any, fmt: str, depth: int | None, cols: Any) -> None:
    """`--explain` in markdown (a section after the table) and JSON (`formulas` per layer)."""
    import json

    from archcalc.errors import UsageError
    from archcalc.passes import figures
    from archcalc.report import explain, formats

    if fmt == "markdown":
        table = formats.to_markdown(analysis, depth, cols)
        click.echo(table + "\n" + explain.to_markdown(analysis), nl=False)
    elif fmt == "json":
        data = formats.to_dict(analysis)
        for layer in data["layers"]:
            layer["formulas"] = explain.to_dicts(figures.formulas(analysis, layer["id"]))
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        raise UsageError("--explain works with --format table, markdown or json")


@cli.command("list")
@format_option("table", "json")
def list_specs(fmt: str) -> None:
    """The built-in specs: name, source and parameters.

    \b
    Examples:
      archcalc list
      archcalc list --format json
    """
    import json

    import archcalc
    from archcalc import zoo

    items = [(e.name, e.source_line(), archcalc.analyze(e.name)) for e in zoo.entries()]
    if fmt == "json":
        data = [{"name": n, "source": s, "params": a.totals.params, "macs": a.totals.macs,
                 "input": list(a.graph.input.shape)} for n, s, a in items]
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    from rich.table import Table  # here: JSON output needs no rich

    table = Table(title="built-in specs", header_style="bold")
    for col, justify in (("name", "left"), ("source", "left"), ("input", "left"), ("params", "right"),
                         ("MACs", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for name, source, a in items:
        table.add_row(name, source, "×".join(map(str, a.graph.input.shape)), f"{a.totals.params:,}",
                      f"{a.totals.macs:,}")
    show(table)


@cli.command()
@format_option("table", "json")
def layers(fmt: str) -> None:
    """Every layer type the spec language knows, with its syntax.

    \b
    Examples:
      archcalc layers
      archcalc layers --format json
    """
    import json

    from archcalc.layers import REGISTRY

    types = [t for t in REGISTRY.values() if t.name != "input"]
    if fmt == "json":
        data = [{"name": t.name, "aliases": list(t.aliases), "kind": t.kind, "summary": t.summary,
                 "example": t.example, "args": [a.name for a in t.args],
                 "options": {f"/{k}": v for k, v in t.options.items()} | {f"/{f}": v[0] for f, v in t.flags.items()}}
                for t in types]
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    from rich.table import Table

    table = Table(title="layer types", header_style="bold")
    for col in ("name", "also", "example", "what it is"):
        table.add_column(col)
    for t in types:
        table.add_row(t.name, ", ".join(t.aliases), t.example, t.summary)
    show(table)
