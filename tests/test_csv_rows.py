"""The CSV report's rows are written from the figures (formats._csv_rows), not from each layer's
JSON dict: they must stay what the dicts give, on every built-in spec and under a convention."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

import archcalc
from archcalc.passes.analysis import Analysis, analyze
from archcalc.passes.figures import FIGURES
from archcalc.report import formats
from tests.conftest import analyze_text

SPECS = sorted(p.stem for p in (Path(archcalc.__file__).parent.parent / "specs").glob("*.arch"))


def from_dicts(analysis: Analysis) -> str:
    """The CSV as it was made before: from each layer's dict (formats._layers)."""
    buf = io.StringIO()
    fields = formats.CSV_FIELDS + (("counted",) if analysis.convention != "pytorch" else ())
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in formats._layers(analysis):
        row["inputs"] = " ".join(map(str, row["inputs"]))
        row["output_shape"] = "x".join(map(str, row["output_shape"]))
        row["scope"] = "/".join(row["scope"])
        row["share"] = f"{row['share']:.6f}"
        row["rf"] = formats.plain_value(FIGURES["rf"].of(analysis, row["id"]))
        writer.writerow({k: row[k] for k in fields})
    return buf.getvalue()


def test_every_built_in_spec() -> None:
    for spec in SPECS:
        analysis = archcalc.analyze(spec)
        assert formats.to_csv(analysis) == from_dicts(analysis), spec


@pytest.mark.parametrize("spec", ["resnet18", "gpt2", "unet", "siamese"])
def test_under_a_convention(spec: str) -> None:
    analysis = analyze(archcalc.load(spec), convention="fvcore")
    text = formats.to_csv(analysis)
    assert text.splitlines()[0].endswith(",counted")
    assert text == from_dicts(analysis)


def test_the_csv_does_not_make_the_training_step() -> None:
    analysis = analyze_text("input 3x8x8\nconv3-4, relu\nfc-2\n")
    formats.to_csv(analysis)
    assert "training" not in analysis.__dict__ and "conventions" not in analysis.__dict__
