"""`archcalc training`: one training step of a network, per layer and in total."""

from __future__ import annotations

import json

import click

from archcalc.cli import cli, format_option, input_option, parse_input, show, spec_argument
from archcalc.cli.commands import parse_settings, set_option, training_options, training_options_from, with_batch


@cli.command()
@spec_argument
@input_option
@format_option("table", "json", "markdown")
@click.option("--optimizer", type=click.Choice(["sgd", "momentum", "adam", "adamw"]), default="adam",
              show_default=True, help="Optimizer state: SGD none, momentum 1, Adam and AdamW 2 fp32 tensors per "
                                      "trained parameter.")
@training_options
@click.option("--batch", type=click.IntRange(min=1), default=None,
              help="Batch size (FLOPs and activation memory scale with it; the same as --set batch=N) "
                   "[default: 1, or the spec's 'param batch'].")
@click.option("--depth", type=click.IntRange(min=0), default=None,
              help="Collapse blocks nested deeper than N into one row each.")
@set_option
def training(spec: str, input_shape: tuple[str, ...], fmt: str, optimizer: str, precision: str,
             checkpoint: str | None, device: str, batch: int | None, depth: int | None,
             settings: tuple[str, ...]) -> None:
    """The FLOPs and memory of one training step of SPEC, per layer.

    Per layer: the forward pass, the gradient with respect to its inputs (none for the first
    layer, whose input is data) and the gradient of its weights (none where /frozen), each from
    the layer's own rule, in FlopCounterMode's convention; FlopCounterMode's own figure, which
    counts a grouped convolution's weight gradient `groups` times; and the bytes of the tensors
    the backward pass keeps (each storage once: a ReLU's output is saved by the ReLU and the
    next conv). In total: the step's FLOPs (6·N·T beside them for a transformer) and every
    memory term: weights, fp32 master copies (mixed precision), gradients, optimizer state,
    buffers, the kept activations (with --checkpoint only each segment's input, plus one
    segment's at a time) and the gradients in flight.

    \b
    Examples:
      archcalc training mobilenet_v2                      # FlopCounterMode's 20× against the real 3×
      archcalc training resnet50 --batch 32 --optimizer adamw --precision bf16
      archcalc training vgg16 --checkpoint 4 --depth 0
      archcalc training examples/gpt2-2x128               # 6·N·T beside the computed step
      archcalc training lstm-lm --format json > step.json
    """
    import archcalc
    from archcalc.passes.analysis import analyze
    from archcalc.passes.memory import MemoryOptions
    from archcalc.report import formats
    from archcalc.report import training as views
    from archcalc.report.columns import by_key

    graph = archcalc.load(spec, parse_input(input_shape), with_batch(parse_settings(settings), batch))
    samples = graph.params["batch"]
    analysis = analyze(graph, MemoryOptions("float32", samples, optimizer),
                       training_options=training_options_from(optimizer, precision, checkpoint, samples, device))
    if fmt == "json":
        click.echo(json.dumps({"name": graph.name, **views.to_dict(analysis)}, indent=2, ensure_ascii=False))
        return
    cols = [by_key()[k] for k in views.COLUMN_KEYS]
    if fmt == "markdown":
        table = formats.to_markdown(analysis, depth, cols)
        click.echo(table + "\n" + "\n".join(f"> {line}" for line in views.summary_lines(analysis)))
        return
    from rich.text import Text

    from archcalc.report.table import layer_table

    # the table and the summary printed one after the other (not a rich Group): the table is then
    # drawn by plain_table where it writes rich's bytes, as `report` draws it
    show([layer_table(analysis, depth, cols), Text("\n".join(views.summary_lines(analysis)))])
