"""`archcalc compare`: one row per network, figures exact; VGG's Table 2 reproduced."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import archcalc
from archcalc import zoo
from archcalc.cli import cli
from archcalc.report import compare

runner = CliRunner()


def test_vgg16_row() -> None:
    r = compare.row(archcalc.analyze("vgg16"))
    assert (r.params, r.macs, r.flops) == (138_357_544, 15_470_264_320, 30_940_528_640)
    assert r.param_bytes == 4 * 138_357_544 == 553_430_176
    assert (r.depth, r.input, r.output) == (16, (3, 224, 224), (1000,))
    # "95% of VGG's weights are in the FC layers": the true figure is 89.36%
    assert r.fc_params == 102_764_544 + 16_781_312 + 4_097_000 == 123_642_856
    assert f"{100 * r.fc_share:.2f}%" == "89.36%"
    assert r.rf == (212, 212)  # pool5 (conventions.md)


def test_the_rf_is_the_last_one_before_the_field_turns_global() -> None:
    assert compare.row(archcalc.analyze("alexnet-paper")).rf == (195, 195)
    resnet = compare.row(archcalc.analyze("resnet18"))
    assert resnet.rf == (435, 435) and resnet.fc_params == 513_000


VGG_TABLE2 = {"vgg11": 133, "vgg11-lrn": 133, "vgg13": 133, "vgg16-c": 134, "vgg16": 138, "vgg19": 144}


def test_vgg_table_2_parameters_in_millions() -> None:
    names = [n for n in VGG_TABLE2 if n in zoo.names()]
    assert "vgg16" in names
    result = runner.invoke(cli, ["compare", *names, "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["name"] for r in rows] == names
    assert {r["name"]: round(r["params"] / 1e6) for r in rows} == {n: VGG_TABLE2[n] for n in names}
    assert all(r["flops"] == 2 * r["macs"] and r["param_bytes"] == 4 * r["params"] for r in rows)


def test_table_and_markdown() -> None:
    table = runner.invoke(cli, ["compare", "alexnet-paper", "vgg16"])
    assert table.exit_code == 0
    assert "138,357,544 (138.4M)" in table.output and "89.36%" in table.output and "527.8 MiB" in table.output
    assert "96.17%" in table.output  # AlexNet: 58,631,144 of 60,965,224 in its FC layers
    md = runner.invoke(cli, ["compare", "vgg16", "--format", "markdown"]).output
    assert md.splitlines()[0].startswith("| network | input | params | MACs | FLOPs |")
    assert ("| vgg16 | 3×224×224 | 138,357,544 (138.4M) | 15,470,264,320 (15.5G) | 30,940,528,640 | "
            "527.8 MiB | 16 | 1000 | 89.36% | 212×212 |") in md


def test_input_override_applies_to_every_network() -> None:
    rows = json.loads(runner.invoke(cli, ["compare", "resnet18", "resnet34", "--input", "3x160x160",
                                          "--format", "json"]).output)
    assert [r["input"] for r in rows] == [[3, 160, 160]] * 2
    assert rows[0]["params"] == 11_689_512


@pytest.mark.parametrize("args", [["compare"], ["compare", "vgg17"]])
def test_errors(args: list[str]) -> None:
    result = runner.invoke(cli, args)
    assert result.exit_code == 2 and "Traceback" not in result.output
