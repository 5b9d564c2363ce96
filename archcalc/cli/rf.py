"""`archcalc rf`: the receptive field of one layer, with its effective (path-count) profile."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from archcalc.cli import check_output, cli, format_option, input_option, parse_input, path_text, show, spec_argument

if TYPE_CHECKING:
    from archcalc.graph import LayerGraph
    from archcalc.passes.analysis import Analysis


@cli.command()
@spec_argument
@input_option
@click.option("--layer", metavar="ID|NAME", default=None,
              help="The layer: its id (the '#' column of `report`) or its name (`name = ...` in the "
                   "spec). Default: the last spatial layer before the network goes global.")
@click.option("-o", "--output", "plot", metavar="FILE", default=None,
              help="Also draw the profile to FILE: .svg (needs nothing) or .png (needs matplotlib).")
@format_option("table", "json")
def rf(spec: str, input_shape: tuple[str, ...], layer: str | None, plot: str | None, fmt: str) -> None:
    """Receptive field of one layer of SPEC, and how many paths reach it from each input pixel.

    Per spatial axis: size, jump (input pixels between neighbouring units), start (first
    input pixel of unit 0; negative where it sees padding) and center. The bars are the
    "effective receptive field" for uniform weights (Luo et al. 2016): the number of
    paths from each input position to the unit, counted exactly.

    \b
    Examples:
      archcalc rf vgg16                     # pool5: 212×212, jump 32, start -90
      archcalc rf resnet50 --layer 40
      archcalc rf my.arch --layer stem -o stem.svg
      archcalc rf alexnet --format json
    """
    import json

    import archcalc
    from archcalc.passes.receptive_field import PathCountLimit, path_counts
    from archcalc.report.formats import rf_dict
    from archcalc.report.rf_plot import profile_dicts, rf_renderable, rf_summary, save_plot

    check_output(plot)
    analysis = archcalc.analyze(spec, parse_input(input_shape))
    graph = analysis.graph
    node_id = pick_layer(analysis, layer)
    field = analysis.rf[node_id]
    try:
        profiles = path_counts(graph, node_id)
    except PathCountLimit as e:  # too deep to count exactly in reasonable time: the field, and why no paths
        if plot:
            from archcalc.errors import UsageError

            raise UsageError(f"no plot: {e}") from None
        if fmt == "json":
            click.echo(json.dumps({"name": graph.name, "layer": node_id, "spec": graph.node(node_id).text,
                                   "rf": rf_dict(field), "paths": None, "paths_not_counted": str(e)},
                                  indent=2, ensure_ascii=False))
        else:
            show(rf_summary(graph, node_id, field))  # type: ignore[arg-type]
            click.echo(f"paths not counted: {e}")
        return
    except ValueError as e:  # a field too wide to count paths over, or no spatial path to an input
        from archcalc.errors import UsageError

        raise UsageError(str(e)) from None
    if plot:
        save_plot(plot, f"{graph.name}: layer {node_id} {graph.node(node_id).text}", profiles)
    if fmt == "json":
        data = {"name": graph.name, "layer": node_id, "spec": graph.node(node_id).text,
                "rf": rf_dict(field), "paths": profile_dicts(profiles)}
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        show(rf_renderable(graph, node_id, field, profiles))  # type: ignore[arg-type]
        if plot:
            click.echo(f"wrote {path_text(plot)}")


def pick_layer(analysis: Analysis, layer: str | None) -> int:
    """The node asked for, checked to have a spatial field; a clean error otherwise."""
    from archcalc.errors import UsageError
    from archcalc.layers import UNKNOWN
    from archcalc.passes.receptive_field import RF

    graph, fields, last = analysis.graph, analysis.rf, analysis.final_rf
    if layer is None:
        if last is None:
            raise UsageError(f"'{graph.name}' has no layer with spatial axes: no receptive field to show")
        return last
    node_id = _find(graph, layer)
    field = fields[node_id]
    text = graph.node(node_id).text
    hint = f"; the last spatial layer is {last} ({graph.node(last).text})" if last is not None else ""
    if field == UNKNOWN:
        raise UsageError(f"layer {node_id} ({text}) comes after a layer that moves positions (a reshape or "
                         f"permute): its receptive field is not known{hint}")
    if not isinstance(field, RF):
        raise UsageError(f"layer {node_id} ({text}) sees the whole input (its field is global){hint}")
    if field.rank == 0:
        raise UsageError(f"layer {node_id} ({text}) has no spatial axes{hint}")
    return node_id


def _find(graph: LayerGraph, layer: str) -> int:
    import difflib

    from archcalc.errors import UsageError

    if layer.isascii() and layer.isdigit():  # not '²' or '①', which str.isdigit() accepts too
        if len(layer) < 10 and int(layer) < len(graph):
            return int(layer)
        shown = layer if len(layer) < 20 else f"{layer[:12]}… ({len(layer):,} digits)"
        raise UsageError(f"there is no layer {shown}: ids go from 0 to {len(graph) - 1}")
    named = {n.name: n.id for n in graph if n.name}
    if layer in named:
        return named[layer]
    modules = {n.module: n.id for n in graph if n.module and n.shares is None}
    if layer in modules:  # torch's name for it: features.30
        return modules[layer]
    close = difflib.get_close_matches(layer, list(named), n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    known = (f" (named layers: {', '.join(named)})" if named else
             f" ({graph.name} names no layers: give an id, 0 to {len(graph) - 1})") if not close else ""
    example = next(iter(modules), None)
    also = f" Give an id, a name, or a module path such as {example}." if example else ""
    raise UsageError(f"no layer named '{layer}'{known}.{hint}{also}")
