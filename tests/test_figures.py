"""Every registered figure, walked once: each is read from the analysis by name, shown by a
column, and (where it adds up) its network total is the sum over the layers."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import archcalc
from archcalc.check.claims import COUNT_KEYS
from archcalc.cli import cli
from archcalc.passes import figures
from archcalc.report.columns import COLUMNS

SPECS = ["vgg16", "resnet18", "lenet5-paper", "lstm-lm", "textcnn", "googlenet-paper"]
# figures whose network value is not the sum of the layers': ratios, and the last layer's
NOT_SUMMED = {"shape", "sharing", "rf", "jump", "start", "aligned"}


@pytest.mark.parametrize("name", SPECS)
def test_every_figure_reads_every_layer_and_sums_to_its_total(name: str) -> None:
    analysis = archcalc.analyze(name)
    every = range(len(analysis.graph))
    for key, figure in figures.FIGURES.items():
        values = [figure.of(analysis, i) for i in every]
        assert len(values) == len(analysis.graph), key
        if key not in NOT_SUMMED:
            present = [v for v in values if v is not None]
            assert figures.value(analysis, key, every) == (sum(present) if present else None), key
            if figure.total is not None:
                assert figure.total(analysis) == figures.value(analysis, key, every), key


def test_each_figure_is_read_from_its_pass() -> None:
    a = archcalc.analyze("lenet5-paper")
    c3 = next(n.id for n in a.graph if n.type == "table-conv")
    assert figures.FIGURES["params"].of(a, c3) == a.counts[c3].params == 1_516
    assert figures.FIGURES["connections"].of(a, c3) == a.connections[c3] == 151_600
    assert figures.FIGURES["flops"].of(a, c3) == 2 * a.macs[c3]
    assert figures.FIGURES["rf"].of(a, c3) == (14, 14)  # C1 5 → S2 6 (jump 2) → C3 6 + 4·2
    assert figures.total(a, "connections") == a.totals.connections


def test_every_figure_has_a_column() -> None:
    shown = {c.figure for c in COLUMNS}
    assert set(figures.FIGURES) <= shown, set(figures.FIGURES) - shown
    assert {c.figure for c in COLUMNS if c.figure} <= set(figures.FIGURES)


def test_check_takes_every_claimable_figure() -> None:
    assert COUNT_KEYS == figures.claimable() == ("params", "weights", "biases", "buffers", "macs", "flops")


def test_every_column_renders_for_a_collapsed_block_and_the_footer() -> None:
    result = CliRunner().invoke(cli, ["report", "resnet18", "--columns", "all", "--depth", "1",
                                      "--format", "markdown"])
    assert result.exit_code == 0, result.output
    assert "| **total** |" in result.output
    data = json.loads(CliRunner().invoke(cli, ["report", "resnet18", "--format", "json"]).output)
    a = archcalc.analyze("resnet18")
    for key in ("params", "weights", "biases", "buffers", "macs", "flops", "connections"):
        assert data["totals"][key] == figures.total(a, key), key
        assert [layer[key] for layer in data["layers"]] == [figures.FIGURES[key].of(a, i) for i in range(len(a.graph))]
