"""Worked formulas (`report --explain`) and the one-layer calculator (`archcalc calc`).

Every formula is held to two things: its arithmetic gives its value, and its value is
the figure the passes compute — for every node of every built-in spec.
"""

from __future__ import annotations

import json
import math
import re

import pytest
from click.testing import CliRunner

import archcalc
from archcalc import zoo
from archcalc.cli import cli
from archcalc.layers.base import Formula
from archcalc.passes import figures
from archcalc.report import explain
from tests.conftest import analyze_text

runner = CliRunner()


def evaluate(expression: str) -> float:
    """The arithmetic before the first ' = ' of a formula, as Python computes it."""
    text = expression.split(" = ")[0]
    for symbol, python in (("·", "*"), ("−", "-"), ("⌊", "floor("), ("⌋", ")"), ("⌈", "ceil("), ("⌉", ")")):
        text = text.replace(symbol, python)
    assert re.fullmatch(r"(?:[\d\s()+\-*/]|floor|ceil)*", text), f"not plain arithmetic: {expression}"
    return eval(text, {"__builtins__": {}, "floor": math.floor, "ceil": math.ceil})  # noqa: S307


def by_what(analysis: archcalc.passes.analysis.Analysis, node_id: int) -> dict[str, str]:
    return {f.what: f.line() for f in figures.formulas(analysis, node_id)}


ALL_SPECS = [e.name for e in zoo.entries()] + ["examples/alexnet-hand", "examples/vgg16-hand"]


@pytest.mark.parametrize("name", ALL_SPECS)
def test_every_formula_equals_the_pass_and_its_own_arithmetic(name: str) -> None:
    analysis = archcalc.analyze(name)
    seen = 0
    for node in analysis.graph:
        for f in figures.formulas(analysis, node.id):
            axes = len(f.what.split(","))
            assert figures.for_formula(analysis, node.id, f.what) == [f.value] * axes, (node.text, f)
            assert evaluate(f.expression) == f.value, (node.text, f)
            seen += 1
    weighted = [n for n in analysis.graph if n.layer.kind in ("conv", "fc")]
    assert seen >= 3 * len(weighted)  # weights, params and MACs of each conv/FC at least


def test_alexnet_paper_conv1_pool_and_fc_as_written_by_hand() -> None:
    a = archcalc.analyze("alexnet-paper")
    conv1, pool1, fc6 = 1, 4, 17
    assert by_what(a, conv1) == {
        "output H, W": "⌊(227 − 11 + 2·0)/4⌋ + 1 = 55",
        "weights": "11·11·3·96 = 34,848",
        "params": "11·11·3·96 + 96 = 34,944",
        "MACs": "96·55·55 · 3·11·11 = 105,415,200",
    }
    assert by_what(a, pool1) == {"output H, W": "⌊(55 − 3 + 2·0)/2⌋ + 1 = 27"}
    assert by_what(a, fc6)["params"] == "9216·4096 + 4096 = 37,752,832"
    assert by_what(a, fc6 - 1) == {"output F": "256·6·6 = 9,216"}  # the implicit flatten


def test_grouped_conv_shows_groups_and_its_figures() -> None:
    a = archcalc.analyze("alexnet-paper")
    conv2 = by_what(a, 5)
    assert conv2["params"] == "5·5·(96/2)·256 + 256 = 307,456"
    assert conv2["MACs"] == "256·27·27 · (96/2)·5·5 = 223,948,800"


def test_batchnorm_learnable_and_buffers() -> None:
    a = analyze_text("input 3x8x8\nconv3-64/nobias, bn\n")
    assert by_what(a, 2) == {
        "params": "2·64 = 128  (γ and β)",
        "buffers": "2·64 + 1 = 129  (running mean and var, batch counter)",
    }
    assert by_what(a, 1)["params"] == "3·3·3·64 = 1,728  (no bias)"


def test_dilation_shows_the_effective_kernel() -> None:
    a = analyze_text("input 64x56x56\nconv3-64/d2\n")  # padding defaults to 2 here
    assert by_what(a, 1)["output H, W"] == (
        "⌊(56 − 5 + 2·2)/1⌋ + 1 = 56  (effective kernel D·(K − 1) + 1 = 2·(3 − 1) + 1 = 5)")


def test_ceil_mode_rounds_up_and_applies_pytorchs_last_window_rule() -> None:
    up = analyze_text("input 8x56x56\nmaxpool3/s2/ceil\n")
    assert by_what(up, 1)["output H, W"] == (
        "⌈(56 − 3 + 2·0)/2⌉ + 1 = ⌈26.5⌉ + 1 = 28  (not whole: rounded up)")
    # 5 + 2·1 wide, window 2, stride 2: ⌈5/2⌉ + 1 = 4 windows, but the 4th would start in the padding
    cut = analyze_text("input 1x5x5\nmaxpool2/s2/p1/ceil\n")
    assert cut.graph.output.shape == (1, 3, 3)
    assert by_what(cut, 1)["output H, W"] == (
        "⌈(5 − 2 + 2·1)/2⌉ + 1 − 1 = 3  (the last window would start in the right padding)")


def test_inexact_floor_shows_the_fraction() -> None:
    a = analyze_text("input 3x224x224\nconv11-96/s4/p2\n")
    assert by_what(a, 1)["output H, W"] == "⌊(224 − 11 + 2·2)/4⌋ + 1 = ⌊54.25⌋ + 1 = 55  (not whole: floored)"


def test_non_square_axes_get_one_formula_each() -> None:
    a = analyze_text("input 3x32x20\nconv(k=1x7, c=8, p=0)\n")
    assert by_what(a, 1)["output H"] == "⌊(32 − 1 + 2·0)/1⌋ + 1 = 32"
    assert by_what(a, 1)["output W"] == "⌊(20 − 7 + 2·0)/1⌋ + 1 = 14"


def test_layers_without_formulas_explain_nothing() -> None:
    a = analyze_text("input 3x8x8\nrelu, dropout\n")
    assert explain.worked(a) == []
    assert explain.to_text(a) == "no layer has formulas\n"


# -- report --explain ------------------------------------------------------------------------


def test_report_explain_table_prints_a_block_per_layer_after_the_table() -> None:
    result = runner.invoke(cli, ["report", "alexnet-paper", "--explain"])
    assert result.exit_code == 0, result.output
    after = result.output.split("worked formulas", 1)[1]
    assert "1  conv11-96/s4/p0  (line" in after and "3×227×227 → 96×55×55)" in after
    assert "    output H, W  ⌊(227 − 11 + 2·0)/4⌋ + 1 = 55" in after
    assert "    params       9216·4096 + 4096 = 37,752,832" in after
    assert "16  (flatten)" in after


def test_report_explain_markdown_and_json() -> None:
    md = runner.invoke(cli, ["report", "alexnet-paper", "--explain", "--format", "markdown"])
    assert md.exit_code == 0
    assert "### Worked formulas" in md.output
    assert "- MACs: `96·55·55 · 3·11·11 = 105,415,200`" in md.output
    data = json.loads(runner.invoke(cli, ["report", "alexnet-paper", "--explain", "--format", "json"]).output)
    assert data["layers"][1]["formulas"][2] == {"what": "params", "expression": "11·11·3·96 + 96",
                                                "value": 34944, "note": ""}
    bad = runner.invoke(cli, ["report", "vgg16", "--explain", "--format", "csv"])
    assert bad.exit_code == 2 and "--explain works with" in bad.output


# -- archcalc calc -------------------------------------------------------------------------------


def calc(*args: str) -> tuple[int, str]:
    result = runner.invoke(cli, ["calc", *args])
    return result.exit_code, result.output


def test_calc_conv_alexnet_conv1() -> None:
    code, out = calc("conv", "--input", "227", "--kernel", "11", "--stride", "4", "--padding", "0",
                     "--in-channels", "3", "--out-channels", "96")
    assert code == 0, out
    assert out.splitlines() == [
        "conv(c=96, k=11, s=4, p=0, d=1, g=1, bias=true)",
        "  input    3×227×227",
        "  output   96×55×55",
        "    H, W   ⌊(227 − 11 + 2·0)/4⌋ + 1 = 55",
        "  weights  11·11·3·96 = 34,848",
        "  biases   96",
        "  params   11·11·3·96 + 96 = 34,944",
        "  MACs     96·55·55 · 3·11·11 = 105,415,200",
        "  FLOPs    2·105,415,200 = 210,830,400  (FLOPs = 2 × MACs)",
    ]


def test_calc_conv_warns_when_the_division_is_not_exact() -> None:
    code, out = calc("conv", "--input", "3x224x224", "--kernel", "11", "--stride", "4", "--padding", "2",
                     "--out-channels", "96")
    assert code == 0
    assert "⌊(224 − 11 + 2·2)/4⌋ + 1 = ⌊54.25⌋ + 1 = 55" in out
    assert "warning: (224 − 11 + 2·2)/4 + 1 = 55.25 is not whole: floored to 55" in out


def test_calc_conv_groups_dilation_no_bias_json() -> None:
    code, out = calc("conv", "--input", "64x56x56", "--kernel", "3", "--dilation", "2", "--padding", "2",
                     "--groups", "2", "--out-channels", "64", "--no-bias", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["output"] == [64, 56, 56] and data["weights"] == 3 * 3 * 32 * 64 and data["biases"] == 0
    assert data["macs"] == 64 * 56 * 56 * 32 * 9 and data["flops"] == 2 * data["macs"]
    formulas = [Formula(**f) for f in data["formulas"]]
    assert [f.what for f in formulas] == ["output H, W", "weights", "params", "MACs"]
    assert all(evaluate(f.expression) == f.value for f in formulas)


def test_calc_pool_and_fc() -> None:
    code, out = calc("pool", "--input", "55", "--kernel", "3", "--stride", "2")
    assert code == 0
    assert out.splitlines() == ["maxpool(k=3, s=2, p=0, ceil=false)", "  input   55×55", "  output  27×27",
                                "    H, W  ⌊(55 − 3 + 2·0)/2⌋ + 1 = 27"]
    code, out = calc("pool", "--input", "96x56x56", "--kernel", "3", "--stride", "2", "--ceil",
                     "--type", "avg")
    assert code == 0 and "  output  96×28×28" in out and "rounded up (ceil_mode) to 28" in out
    code, out = calc("fc", "--in", "9216", "--out", "4096")
    assert code == 0
    assert "  params   9216·4096 + 4096 = 37,752,832" in out and "  MACs     9216·4096 = 37,748,736" in out


@pytest.mark.parametrize(("args", "message"), [
    (("conv", "--input", "3x227x227", "--in-channels", "4", "--kernel", "11", "--out-channels", "96"),
     "error: --input has 3 channels but --in-channels says 4"),
    (("conv", "--input", "5", "--in-channels", "3", "--kernel", "11", "--out-channels", "8"),
     "kernel 11 does not fit in input size 5 with padding 0"),
    (("conv", "--input", "2x3x4x5", "--in-channels", "3", "--kernel", "1", "--out-channels", "8"),
     "error: --input must be 227, 227x227 (H×W) or 3x227x227 (C×H×W), not '2x3x4x5'"),
    (("pool", "--input", "big", "--kernel", "2"), "error: --input must be sizes joined by x"),
])
def test_calc_errors_are_clean(args: tuple[str, ...], message: str) -> None:
    code, out = calc(*args)
    assert code == 2 and message in out and "Traceback" not in out


def test_calc_conv_answers_the_size_question_without_channels() -> None:
    # a student's question: what size comes out of a 3×3, stride-2 conv on 7×7?
    code, out = calc("conv", "--input", "7", "--kernel", "3", "--stride", "2")
    assert code == 0, out
    assert out.splitlines()[:4] == ["conv(k=3, s=2, p=0, d=1, g=1, bias=true)", "  input   7×7", "  output  3×3",
                                    "    H, W  ⌊(7 − 3 + 2·0)/2⌋ + 1 = 3"]
    assert "  params" not in out and "  MACs" not in out
    assert "note: parameters and MACs need the channels: --in-channels (or --input CxHxW) and --out-channels" in out
    assert "note: padding 0: calc's default, as the textbook formula; a spec's conv (conv3-64) pads 'same'" in out
    # the output channels alone are not enough for parameters either: still the size, no error
    code, out = calc("conv", "--input", "227", "--kernel", "11", "--stride", "4", "--out-channels", "96")
    assert code == 0 and "  output  55×55" in out and "  params" not in out
    # with --padding written, no note about its default
    code, out = calc("conv", "--input", "7", "--kernel", "3", "--padding", "1", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["output"] == [7, 7] and data["notes"] == [
        "parameters and MACs need the channels: --in-channels (or --input CxHxW) and --out-channels"]
    assert "params" not in data and [f["what"] for f in data["formulas"]] == ["output H, W"]
