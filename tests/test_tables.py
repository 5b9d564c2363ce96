"""Tables for papers and scripts: LaTeX (booktabs), `--only`, Markdown without code spans, CSV
that honours --depth/--columns and carries the RF, `--quiet`, grouped warnings, `-o FILE`."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from archcalc.cli import cli

runner = CliRunner()


def report(*args: str) -> str:
    result = runner.invoke(cli, ["report", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_latex_is_a_booktabs_table_with_exact_numbers() -> None:
    out = report("vgg16", "--format", "latex", "--only", "weighted")
    lines = out.splitlines()
    assert r"\usepackage{booktabs}" in lines[1]
    assert [x for x in lines if x.startswith("\\") and x.endswith("rule")] == [r"\toprule", r"\midrule",
                                                                               r"\midrule", r"\bottomrule"]
    assert r"\begin{tabular}{rlllrrr}" in lines and r"\end{table}" in lines
    assert r"\# & Layer & Type & Output & Params & MACs & \% params \\" in lines
    body = lines[lines.index(r"\midrule") + 1: len(lines) - 1 - lines[::-1].index(r"\midrule")]
    assert len(body) == 16  # VGG-16: 13 convs and 3 FCs, the rows of the paper's table
    assert body[0] == r"1 & conv3-64 & conv & 64$\times$224$\times$224 & 1,792 & 86,704,128 & 0.00\% \\"
    assert r" & Total &  & 1000 & 138,357,544 & 15,470,264,320 & 100.00\% \\" in lines


def test_latex_escapes_what_latex_would_read() -> None:
    from archcalc.report.latex import escape

    assert escape("dense_layer#3 50% a&b {x} ~ ^ \\") == (
        r"dense\_layer\#3 50\% a\&b \{x\} \~{} \^{} \textbackslash{}")
    assert escape("3×224×224 → ⌊x⌋ − 1") == r"3$\times$224$\times$224 $\to$ $\lfloor$x$\rfloor$ $-$ 1"
    out = report("resnet18", "--format", "latex", "--depth", "1")
    assert r"\multicolumn{7}{l}{\textit{stage\#1}} \\" in out
    assert r"5--11 & \quad basic\#1 (7 layers) & block" in out


@pytest.mark.parametrize(("which", "types"), [
    ("weighted", {"conv", "fc"}), ("params", {"conv", "fc", "bn"}), ("norm", {"bn"}),
    ("conv,pool", {"conv", "maxpool", "adaptive-avgpool"}),  # resnet18's gap is an adaptive average pool
])
def test_only_keeps_the_rows_asked_for_and_their_headings(which: str, types: set[str]) -> None:
    rows = list(csv.DictReader(io.StringIO(report("resnet18", "--format", "csv", "--only", which,
                                                  "--columns", "type,params"))))
    assert {r["type"] for r in rows} == types
    table = report("resnet18", "--only", "weighted")
    assert "▸ stage#1" in table and " relu " not in table and "11,689,512" in table  # totals stay the network's


def test_only_with_a_wrong_word_is_a_clean_error() -> None:
    result = runner.invoke(cli, ["report", "vgg16", "--only", "weigthed"])
    assert result.exit_code == 2 and "--only takes weighted" in result.output and "not 'weigthed'" in result.output


def test_markdown_cells_have_no_code_spans() -> None:
    out = report("densenet121", "--format", "markdown", "--depth", "2")
    assert "`" not in out
    assert "| 1 | &nbsp;&nbsp;conv0 = conv7-64/s2/nobias | conv |" in out
    assert "dense_layer#1 (8 layers)" in out  # an underscore inside a word stays as written
    from archcalc.report.formats import markdown_text

    assert markdown_text("a|b *c* `d` <e> _f_") == r"a\|b \*c\* \`d\` \<e\> \_f\_"


def test_csv_honours_depth_and_columns_and_carries_the_rf() -> None:
    rows = list(csv.DictReader(io.StringIO(report("resnet18", "--format", "csv", "--depth", "1",
                                                  "--columns", "shape,params,macs,rf,jump,start"))))
    assert list(rows[0]) == ["id", "layer", "scope", "shape", "params", "macs", "rf", "jump", "start"]
    block = next(r for r in rows if r["layer"] == "basic#3 (9 layers)")
    assert block == {"id": "19-27", "layer": "basic#3 (9 layers)", "scope": "stage#2", "shape": "128x28x28",
                     "params": "230144", "macs": "179830784", "rf": "67x67", "jump": "8x8", "start": "-33x-33"}
    assert sum(int(r["params"]) for r in rows) == 11_689_512
    assert rows[-1]["rf"] == "global" and rows[-1]["jump"] == ""
    default = list(csv.DictReader(io.StringIO(report("vgg16", "--format", "csv"))))
    assert default[31]["spec"] == "maxpool" and default[31]["rf"] == "212x212"  # pool5
    assert default[33]["rf"] == "global" and default[33]["params"] == "102764544"


def test_quiet_hides_warnings_and_repeated_ones_are_grouped() -> None:
    loud = report("resnet50")
    notes = [line for line in loud.splitlines() if line.startswith("warning:")]
    assert notes == ["warning: not whole: floored (×8): layers 1, 4, 40, 45, 82, 87, 144, 149; the first, "
                     "line 26, layer 1: conv7-64/s2/nobias: (224 − 7 + 2·3)/2 + 1 = 112.5 is not whole: "
                     "floored to 112"]
    assert "warning" not in report("resnet50", "--quiet")
    markdown = report("resnet50", "--format", "markdown")
    assert markdown.count("> warning:") == 1 and "(×8)" in markdown
    assert "warning" not in report("resnet50", "--format", "markdown", "-q")
    import json

    assert len(json.loads(report("resnet50", "--format", "json", "--quiet"))["warnings"]) == 8  # data stays


@pytest.mark.parametrize("fmt", ["table", "markdown", "latex", "csv", "json", "html"])
def test_output_to_a_file(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"vgg16.{fmt}"
    result = runner.invoke(cli, ["report", "vgg16", "--format", fmt, "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "138,357,544" in text or "138357544" in text or "102764544" in text  # csv: per layer only
    assert re.fullmatch(rf"wrote {re.escape(str(out))}\n", result.output) or fmt == "table"
