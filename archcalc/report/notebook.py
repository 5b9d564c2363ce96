"""The Analysis that `archcalc.analyze` returns: the passes' `Analysis`, able to show itself.

It adds only readers (passes may not import report code, so they live here): a table in
Jupyter (`_repr_html_`), `to_dict()` (the JSON document of `report --format json`),
`layers` (one plain record per layer) and `to_pandas()` (those records as a DataFrame, when
pandas is installed: `pip install 'archcalc[pandas]'`). Every figure is the passes' own.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, NamedTuple

from archcalc.errors import MissingExtraError
from archcalc.passes.analysis import Analysis as PassesAnalysis


class Layer(NamedTuple):
    """One layer's figures as plain Python values (what `report --format json` holds per layer)."""

    id: int
    spec: str  # the layer as written
    type: str
    name: str | None  # the statement's name, if any
    scope: str  # the block instances around it, 'stage#2/bottleneck#3'
    inputs: tuple[int, ...]
    shape: tuple[int, ...]  # output, channels first, no batch axis
    params: int
    weights: int
    biases: int
    buffers: int
    macs: int
    flops: int
    share: float  # of all parameters, 0..1
    rf: tuple[int, ...] | str | None  # receptive-field size per spatial axis, 'global', 'unknown' or None
    implicit: bool  # put in by archcalc (hidden activation, flatten, shortcut projection)
    module: str | None  # its torch module's path in `archcalc.build` and `export --torch`: layer1.0.conv1


@dataclass(frozen=True, repr=False)
class Analysis(PassesAnalysis):
    """Every static figure of a spec; shows itself as a table in a notebook."""

    @classmethod
    def of(cls, analysis: PassesAnalysis) -> Analysis:
        if isinstance(analysis, cls):
            return analysis
        shown = cls(**{f.name: getattr(analysis, f.name) for f in fields(analysis)})
        for lazy in ("conventions", "training"):  # already computed (cached_property): kept, not redone
            if lazy in vars(analysis):
                vars(shown)[lazy] = vars(analysis)[lazy]
        return shown

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of `archcalc report --format json`, as Python values."""
        from archcalc.report.formats import to_dict

        return to_dict(self)

    @property
    def layers(self) -> tuple[Layer, ...]:
        """One record per node, the input first, in topological order."""
        return tuple(_layer(d) for d in self.to_dict()["layers"])

    def to_pandas(self) -> Any:
        """The layers as a pandas DataFrame indexed by id (needs pandas)."""
        try:
            import pandas
        except ImportError:
            raise MissingExtraError("to_pandas() needs pandas, which is not installed: "
                                    "pip install 'archcalc[pandas]' (or pip install pandas)") from None
        return pandas.DataFrame([layer._asdict() for layer in self.layers]).set_index("id")

    def _repr_html_(self) -> str:
        from archcalc.report.html import notebook_html

        return notebook_html(self)


def _layer(d: dict[str, Any]) -> Layer:
    rf = d["rf"]
    size = tuple(rf["size"]) if isinstance(rf, dict) else rf
    return Layer(d["id"], d["spec"], d["type"], d["name"], "/".join(d["scope"]), tuple(d["inputs"]),
                 tuple(d["output_shape"]), d["params"], d["weights"], d["biases"], d["buffers"], d["macs"],
                 d["flops"], d["share"], size, d["implicit"], d["module"])
