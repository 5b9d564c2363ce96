"""archcalc: shapes, parameters, MACs/FLOPs, receptive field and memory of a network
from a declarative spec, without allocating a single weight.

    >>> import archcalc
    >>> archcalc.analyze("vgg16").totals.params
    138357544

docs/python-api.md shows every function with an example.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from archcalc.version import __version__

if TYPE_CHECKING:
    import torch

    from archcalc.graph import LayerGraph
    from archcalc.lang.expand import InputShapes
    from archcalc.repeats import Summary
    from archcalc.report.notebook import Analysis


def load_text(text: str, filename: str = "<spec>", input_shape: InputShapes | None = None,
              params: Mapping[str, Any] | None = None) -> LayerGraph:
    """Spec text → LayerGraph: parse, expand blocks and repeats, infer every shape.

    `filename` names the text in error messages; `params` override its `param` values.
    """
    from archcalc.lang import expand, parse
    from archcalc.passes.shapes import infer
    from archcalc.quiet_gc import paused

    with paused():
        spec = parse(text, filename)
        if spec.uses is not None:  # `use efficientnet`: the family spec with this spec's values
            from archcalc.errors import SpecError
            from archcalc.lang.family import derive
            from archcalc.zoo import family

            try:
                source = family(spec.uses.text, spec.uses.loc)
                spec, input_shape, params = derive(spec, parse(source.text, source.filename), input_shape, params)
            except SpecError as e:
                raise e.with_source(spec.source) from None
        return infer(expand(spec, input_shape, params))


def load(spec: str, input_shape: InputShapes | None = None, params: Mapping[str, Any] | None = None) -> LayerGraph:
    """A built-in name, a path, spec text (anything with a newline), or a model to import
    (`model.py:Net`, `package.module:factory`, `model.onnx`) → LayerGraph.

    `params` override the spec's `param` lines: `load("alphago-policy", params={"k": 256})`.
    An imported model's graph holds the spec written for it (`graph.source.text`).
    """
    from archcalc.zoo import read

    if "\n" in spec:
        return load_text(spec.removeprefix("\ufeff"), "<spec>", input_shape, params)
    if spec.endswith(".onnx") or ":" in spec:  # what a target needs: a built-in name or a path loads no importer
        from archcalc.importers.target import is_target

        if is_target(spec) and not _is_spec_file(spec):
            from archcalc.errors import UsageError
            from archcalc.importers import import_target

            if params:
                raise UsageError(f"{spec} is a model to import, not a spec: it has no 'param' lines to set")
            return import_target(spec, input_shape).graph
    source = read(spec)
    return load_text(source.text, source.filename, input_shape, params)


def _is_spec_file(text: str) -> bool:
    import os

    return os.path.exists(text) and not text.endswith((".py", ".onnx"))


def from_module(module: Any, input_shape: InputShapes, *, allow_unknown: bool = False,
                name: str | None = None) -> LayerGraph:
    """A torch.nn.Module → LayerGraph, traced on the meta device (nothing allocated; the module may
    live on any device, meta included). `input_shape` has no batch axis: one shape for the forward's
    first argument, or one per argument name. The spec written for it is `graph.source.text`;
    `allow_unknown` keeps operations archcalc has no rule for as opaque nodes instead of refusing."""
    from archcalc.importers import import_module

    return import_module(module, input_shape, name=name, allow_unknown=allow_unknown).graph


def from_onnx(path: str, input_shape: InputShapes | None = None, *, allow_unknown: bool = False) -> LayerGraph:
    """An ONNX file → LayerGraph, read with the onnx package (no runtime); `input_shape` (no batch
    axis) where the file's inputs have symbolic sizes."""
    from archcalc.importers import import_onnx

    return import_onnx(path, input_shape, allow_unknown=allow_unknown).graph


def analyze(spec: str | LayerGraph, input_shape: InputShapes | None = None,
            params: Mapping[str, Any] | None = None) -> Analysis:
    """Every static figure of a spec (see `load` for what `spec` and `params` may be), or of a
    LayerGraph already loaded (`from_module`, `from_onnx`).

    The Analysis shows itself as a table in Jupyter; `.layers` are plain records, `.to_dict()` the
    JSON document of `archcalc report --format json`, `.to_pandas()` a DataFrame (with pandas).
    """
    from archcalc.graph import LayerGraph
    from archcalc.passes.analysis import analyze as run
    from archcalc.report.notebook import Analysis

    return Analysis.of(run(spec if isinstance(spec, LayerGraph) else load(spec, input_shape, params)))


def totals(spec: str, input_shape: InputShapes | None = None, params: Mapping[str, Any] | None = None,
           depth: int | None = None, analyse: Callable[[LayerGraph], Any] | None = None) -> Summary:
    """The totals of a spec without its per-layer list, a repeated block analysed once per distinct
    block and carried to its count (archcalc/repeats.py; docs/python-api.md): a spec of a million
    layers written as repeats costs as its distinct blocks. `.document` holds every figure of the JSON
    document of `archcalc report --format json` but `layers`, each equal to the expanded analysis's;
    `.to_dict()` is `archcalc report --totals --format json`. `depth` adds the rows of `--depth N`,
    alike blocks as one row with a count; `analyse` (a graph → `passes.analysis.Analysis`) sets the
    memory, convention and training options, as `archcalc report`'s options do."""
    from archcalc import repeats
    from archcalc.passes.analysis import analyze as run
    from archcalc.report.formats import to_dict

    def document(analysis: Any) -> dict[str, Any]:
        return to_dict(analysis, layers=[])

    analyse = analyse or run
    if "\n" in spec:
        return repeats.summarize_text(spec.removeprefix("\ufeff"), "<spec>", analyse, document, input_shape,
                                      params, depth=depth, expand_below=repeats.EXPAND_BELOW)
    from archcalc.importers.target import is_target

    if is_target(spec) and not _is_spec_file(spec):
        return repeats.summarize_graph(load(spec, input_shape, params), analyse, document, depth)
    from archcalc.zoo import read

    source = read(spec)
    return repeats.summarize_text(source.text, source.filename, analyse, document, input_shape, params,
                                  depth=depth, expand_below=repeats.EXPAND_BELOW)


def summary(spec: str | Analysis, input_shape: InputShapes | None = None, params: Mapping[str, Any] | None = None,
            depth: int | None = None, columns: str | None = None, file: Any = None) -> None:
    """Print what `archcalc report SPEC` prints: the layer table, the totals, the kinds of layer
    and the warnings (torchinfo's `summary`, for a spec). `spec` may be an Analysis already made;
    `depth` collapses blocks, `columns` is the comma list of `--columns`; `file` defaults to stdout.
    """
    from archcalc.cli import show
    from archcalc.passes.analysis import Analysis as Static
    from archcalc.report.columns import select
    from archcalc.report.table import full_report

    analysis = spec if isinstance(spec, Static) else analyze(spec, input_shape, params)
    show(full_report(analysis, depth, select(columns)), file=file)


def build(spec: str, input_shape: InputShapes | None = None,
          params: Mapping[str, Any] | None = None) -> torch.fx.GraphModule:
    """The spec as a runnable torch module (needs PyTorch); `print(model.code)` shows it."""
    from archcalc.pytorch.build import build as build_graph

    return build_graph(load(spec, input_shape, params))


__all__ = ["__version__", "analyze", "build", "from_module", "from_onnx", "load", "load_text", "summary", "totals"]
