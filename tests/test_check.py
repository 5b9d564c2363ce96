"""`=> ...` hand calculations: the mini-syntax, its errors, and `archcalc check`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from archcalc import check as chk
from archcalc.cli import cli
from archcalc.errors import SpecError
from tests.conftest import analyze_text

runner = CliRunner()
HEAD = "input 3x227x227\nhidden-activation relu\n"


def results(body: str) -> list[chk.Result]:
    return chk.check(analyze_text(HEAD + body))


def statuses(body: str) -> list[str]:
    return [r.status for r in results(body)]


def run_check(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(cli, ["check", *args], input=stdin)
    return result.exit_code, result.output


# -- the shipped examples ---------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "count"), [("examples/alexnet-hand", 29), ("examples/vgg16-hand", 21)])
def test_shipped_hand_calculations_all_hold(spec: str, count: int) -> None:
    code, out = run_check(spec, "--format", "json")
    assert code == 0, out
    data = json.loads(out)
    assert data["ok"] and data["checked"] == count and data["wrong"] == 0
    assert {r["status"] for r in data["results"]} == {"ok"}


def test_vgg16_hand_states_the_classic_figures() -> None:
    data = json.loads(run_check("examples/vgg16-hand", "--format", "json")[1])
    by_claim = {(r["layer"], r["claim"]): r for r in data["results"]}
    assert by_claim[("conv3-64", "weights=1728")]["actual"] == 1728  # a number, not text
    assert by_claim[("conv3-64", "weights=1728")]["actual_text"] == "1,728"
    assert by_claim[("maxpool", "7x7x512")]["how"] == "as H×W×C"
    assert by_claim[("FC-4096", "weights=102_760_448")]["actual"] == 102_760_448
    total = by_claim[("(network)", "total params≈138M")]
    assert (total["actual"], total["expected"]) == (138_357_544, 138_000_000)
    assert total["how"] == "≈138M is to the nearest 1M (137,500,000 to 138,499,999)"
    assert by_claim[("maxpool", "rf=212")]["actual"] == [212, 212]
    assert by_claim[("maxpool", "rf=212")]["actual_text"] == "212×212"


@pytest.mark.parametrize(("claim", "actual", "ok", "rounding"), [
    ("params≈390K", 392_522, True, "to the nearest 10K (385,000 to 394,999)"),  # as a reader writes it
    ("params≈393K", 392_522, True, "to the nearest 1K (392,500 to 393,499)"),
    ("params≈392K", 392_522, False, "to the nearest 1K (391,500 to 392,499)"),
    ("params≈0.39M", 392_522, True, "to the nearest 0.01M (385,000 to 394,999)"),
    ("params≈400K", 392_522, True, "to the nearest 100K (350,000 to 449,999)"),
    ("params≈392.5K", 392_522, True, "to the nearest 0.1K (392,450 to 392,549)"),
    ("params≈392500", 392_522, True, "to the nearest 100 (392,450 to 392,549)"),
    ("params≈392522", 392_522, True, "to the nearest 1 (392,522 to 392,522)"),
])
def test_an_approximate_claim_rounds_as_its_digits_say(claim: str, actual: int, ok: bool, rounding: str) -> None:
    spec = "input 392521\nFC-1 => " + claim + "\n"  # 392,521 weights + 1 bias = 392,522 parameters
    code, out = run_check("-", "--format", "json", stdin=spec)
    (row,) = json.loads(out)["results"]
    assert row["actual"] == actual and (row["status"] == "ok") is ok
    assert row["how"].endswith(f"is {rounding}")
    assert code == (0 if ok else 1)


def test_a_failed_shape_from_a_default_padding_says_so_and_shows_the_fix() -> None:
    spec = "input 1x32x32\nconv5-6 => 28x28x6\nmaxpool\nconv5-16 => 10x10x16\nmaxpool\nconv5-120/p0 => 1x1x120\n"
    code, out = run_check("-", stdin=spec)
    assert code == 1
    assert ("line 2, 28x28x6: conv5-6 (line 2) pads 2 on each side by default ('same', as a spec's conv does); "
            "the textbook formula, like archcalc calc, assumes no padding: written conv5-6/p0 it gives 28×28×6, "
            "as claimed") in out
    assert ("conv5-6 (line 2) and conv5-16 (line 4) pad 2 on each side by default" in out
            and "written conv5-6/p0 and conv5-16/p0 they give 10×10×16, as claimed" in out)
    data = json.loads(run_check("-", "--format", "json", stdin=spec)[1])
    # the written /p0 of conv5-120 is no default; the two before it are, and they are the cause
    assert [r["note"] is not None for r in data["results"]] == [True, True, True]
    fixed = spec.replace("conv5-6 ", "conv5-6/p0 ").replace("conv5-16 ", "conv5-16/p0 ")
    assert run_check("-", stdin=fixed)[0] == 0


def test_table_shows_marks_and_summary() -> None:
    code, out = run_check("examples/alexnet-hand")
    assert code == 0
    assert "conv11-96/s4/p0" in out and "55x55x96" in out and "✓" in out and "as H×W×C" in out
    assert "29 of 29 figures hold" in out


# -- wrong figures ---------------------------------------------------------------------------


def test_a_wrong_annotation_gives_a_cross_the_right_value_and_its_formula() -> None:
    spec = HEAD + "conv11-96/s4/p0 => 54x54x96, params=34848\nmaxpool3/s2 => 27x27x96\n"
    code, out = run_check("-", stdin=spec)
    assert code == 1
    assert "✗" in out and "✓" in out and "2 wrong" in out
    assert "34,944" in out and "11·11·3·96 + 96 = 34,944" in out
    assert "96×55×55 = 55×55×96 (H×W×C)" in out and "⌊(227 − 11 + 2·0)/4⌋ + 1 = 55" in out


def test_wrong_figures_in_json() -> None:
    spec = HEAD + "conv11-96/s4/p0 => macs=1, flops≈2G\nFC-10 => total params=3\n"
    code, out = run_check("-", "--format", "json", stdin=spec)
    assert code == 1
    rows = json.loads(out)["results"]
    assert [r["status"] for r in rows] == ["wrong", "wrong", "wrong"]
    assert rows[0]["how"] == "96·55·55 · 3·11·11 = 105,415,200"
    assert rows[1]["how"] == ("2·(96·55·55 · 3·11·11) = 210,830,400; "
                              "≈2G is to the nearest 1G (1,500,000,000 to 2,499,999,999)")
    assert rows[1]["expected"] == 2_000_000_000 and rows[1]["actual"] == 210_830_400
    assert rows[1]["rounding"] == {"written": "≈2G", "nearest": 10**9, "low": 1_500_000_000, "high": 2_499_999_999}
    assert rows[2]["layer"] == "(network)" and rows[2]["actual"] == 34944 + 96 * 55 * 55 * 10 + 10
    assert rows[2]["how"] == "conv 34,944 + fc 2,904,010"


# -- what the items mean ------------------------------------------------------------------------


def test_figures_describe_the_layer_not_its_hidden_relu() -> None:
    body = "conv11-96/s4/p0 => params=34944, weights=34848, biases=96, macs=105_415_200\nFC-10\n"
    assert [r.status for r in results(body)] == ["ok"] * 4
    graph = analyze_text(HEAD + body).graph
    assert graph.expectations[0].node == 2 and graph.node(2).type == "relu" and graph.node(2).implicit
    assert chk.subject(graph, 2).text == "conv11-96/s4/p0"


@pytest.mark.parametrize(("claim", "status", "how"), [
    ("55x55x96", "ok", "as H×W×C"),
    ("96x55x55", "ok", "as C×H×W"),
    ("96 × 55 × 55", "ok", "as C×H×W"),
    ("out=55x55x96", "ok", "as H×W×C"),
    ("shape=96x55x55", "ok", "as C×H×W"),
    ("55x96x55", "wrong", "H, W: ⌊(227 − 11 + 2·0)/4⌋ + 1 = 55"),
    ("55x55", "wrong", "H, W: ⌊(227 − 11 + 2·0)/4⌋ + 1 = 55"),
])
def test_shapes_in_either_order(claim: str, status: str, how: str) -> None:
    (r,) = results(f"conv11-96/s4/p0 => {claim}\n")
    assert (r.status, r.how) == (status, how)


def test_a_cube_matches_in_both_orders_without_naming_one() -> None:
    (r,) = chk.check(analyze_text("input 3x8x8\nconv(k=1, c=8, p=0) => 8x8x8\n"))
    assert (r.status, r.how, r.actual) == ("ok", "", "8×8×8")


@pytest.mark.parametrize(("claim", "status"), [
    ("params≈35K", "ok"),        # 34,944 → 34.944K → 35K
    ("params~35K", "ok"),
    ("params≈34.9K", "ok"),
    ("params≈34.94K", "ok"),
    ("params≈34.95K", "wrong"),
    ("params≈34K", "wrong"),
    ("params≈34944", "ok"),
    ("params=34_944", "ok"),
    ("params=34944", "ok"),
    ("params=34945", "wrong"),
    ("macs≈105.4M", "ok"),
    ("flops≈0.2G", "ok"),
    ("flops≈0.21G", "ok"),
    ("total params≈35k", "ok"),
])
def test_exact_and_rounded_figures(claim: str, status: str) -> None:
    assert statuses(f"conv11-96/s4/p0 => {claim}\n") == [status]


def test_rounding_is_half_up() -> None:
    assert statuses("conv(k=1, c=125, p=0, bias=false) => weights≈0.4K\n") == ["ok"]  # 375 → 0.375K → 0.4K


def test_receptive_field() -> None:
    assert statuses("conv11-96/s4/p0 => rf=11\nmaxpool3/s2 => rf=19x19\n") == ["ok", "ok"]
    (wrong,) = results("conv11-96/s4/p0, maxpool3/s2 => rf=17\n")
    assert (wrong.status, wrong.actual) == ("wrong", "19×19")
    assert wrong.how == "r = r_in + D·(K − 1)·j_in = 11 + 1·(3 − 1)·4 = 19"
    assert statuses("conv3-8, gap, FC-10 => rf=global\n") == ["ok"]


def test_receptive_field_without_the_rf_pass_is_not_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chk.verdicts, "rf_size", lambda analysis, node: None)
    code, out = run_check("-", "--format", "json", stdin=HEAD + "conv11-96/s4/p0 => rf=11, params=34944\n")
    assert code == 0
    rf, params = json.loads(out)["results"]
    assert (rf["status"], rf["actual"], rf["actual_text"], rf["how"]) == (
        "unavailable", None, "n/a", "the receptive-field pass is not available")
    assert params["status"] == "ok"


def test_a_spec_without_expectations() -> None:
    code, out = run_check("vgg16")
    assert code == 0 and "vgg16: no '=> ...' figures to check" in out


# -- syntax errors point at the column ------------------------------------------------------------


def error(body: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        results(body)
    return info.value


@pytest.mark.parametrize(("body", "message", "line", "col"), [
    ("conv11-96/s4/p0 => 55x55x96, parms=34944\n", "unknown figure 'parms'", 3, 30),
    ("conv11-96/s4/p0 => params=34,944\n", "commas separate items, not thousands", 3, 29),
    ("conv11-96/s4/p0 => params=35K\n", "'35K' is a rounded figure", 3, 27),
    ("conv11-96/s4/p0 => params=lots\n", "'lots' is not a figure", 3, 27),
    ("conv11-96/s4/p0 => 55y55\n", "'55y55' is not a shape or a figure", 3, 20),
    ("conv11-96/s4/p0 => 55x55x96,, params=1\n", "empty item between commas", 3, 29),
    ("conv11-96/s4/p0 => total rf=11\n", "'total' goes with a count, not 'rf'", 3, 26),
    ("conv11-96/s4/p0 => out≈55x55x96\n", "a shape is exact: write out=55x55x96", 3, 20),
    ("conv11-96/s4/p0 => rf=big\n", "'big' is not a receptive-field size", 3, 23),
])
def test_malformed_items_are_spec_errors_at_their_column(body: str, message: str, line: int,
                                                         col: int) -> None:
    e = error(body)
    assert e.loc is not None and (e.message, e.loc.line, e.loc.col) == (message, line, col)


def test_error_messages_on_the_command_line_show_a_caret() -> None:
    code, out = run_check("-", stdin="input 3x227x227\nconv11-96/s4/p0 => 96x55x55, parms=34944\n")
    assert code == 2 and "Traceback" not in out
    assert out.splitlines() == [
        "<stdin>:2:30: error: unknown figure 'parms'",
        " 2 | conv11-96/s4/p0 => 96x55x55, parms=34944",
        "   |                              ^^^^^",
        "  expected: params, weights, biases, buffers, macs, flops, rf, out, shape",
        "  did you mean 'params'?",
    ]
    code, out = run_check("-", stdin="input 3x227x227\nconv11-96/s4/p0 => params=34,944\n")
    assert code == 2 and "write 34944 or group digits with _ as in 34_944" in out
