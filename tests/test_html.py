"""`archcalc report --format html`: one self-contained page, checked as text and in a real
headless Chromium (skipped, with the reason, where no Chromium is installed)."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import archcalc
from archcalc.cli import cli
from archcalc.report.html import to_html
from tests import browser

runner = CliRunner()
CHROMIUM = browser.chromium()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed")


def write(tmp_path: Path, spec: str, *args: str) -> Path:
    out = tmp_path / f"{spec}.html"
    result = runner.invoke(cli, ["report", spec, "--format", "html", "-o", str(out), *args])
    assert result.exit_code == 0, result.output
    return out


def test_the_page_is_self_contained(tmp_path: Path) -> None:
    text = write(tmp_path, "resnet50").read_text()
    assert text.startswith("<!DOCTYPE html>") and "<style>" in text and "<script>" in text
    # nothing to fetch: no external script, style sheet, image or font
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", text)
    assert not re.search(r"(src|href)=\"(https?:)?//", text) and "@import" not in text and "url(" not in text
    for section in ("layers", "totals", "diagram", "rf", "warnings", "conventions", "spec"):
        assert f'<section id="{section}">' in text
    assert "25,557,032" in text and "layer1 = stage(64, 3, s=1)" in text  # figures and the spec's text
    assert "not whole: floored (×8)" in text  # warnings grouped


def test_one_row_per_layer_and_a_heading_per_block() -> None:
    a = archcalc.analyze("resnet18")
    page = to_html(a)
    assert page.count('<tr class="layer') == len(a.graph)
    blocks = {n.scope[:k] for n in a.graph for k in range(1, len(n.scope) + 1)}
    assert page.count('<tr class="heading"') == len(blocks)


def test_only_depth_columns_and_quiet_reach_the_page() -> None:
    a = archcalc.analyze("resnet50")
    weighted = to_html(a, only="weighted")
    assert weighted.count('<tr class="layer') == 54  # 49 convs on the main path, 4 projections, the FC
    assert '<section id="warnings">' not in to_html(a, quiet=True)
    collapsed = to_html(a, depth=1)
    assert "bottleneck#1 (12 layers)" in collapsed
    from archcalc.report.columns import select

    rf = to_html(a, columns=select("rf,jump"))
    assert ">RF</th>" in rf and ">jump</th>" in rf and ">212×212<" not in rf and ">427×427<" in rf


def test_without_graphviz_the_page_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    text = html.unescape(write(tmp_path, "vgg16").read_text())
    assert "no diagram: Graphviz's dot program is not installed" in text and "<svg" in text  # the RF profile


@needs_dot
def test_the_diagram_is_inline_svg(tmp_path: Path) -> None:
    text = write(tmp_path, "densenet121").read_text()
    diagram = text.split('<section id="diagram">', 1)[1].split("</section>", 1)[0]
    assert "<svg" in diagram and "<?xml" not in diagram and "dense_layer × 24" in diagram
    assert "collapsed (26 boxes; chosen so the picture fits a page" in diagram


@needs_chromium
def test_the_page_in_a_real_browser(tmp_path: Path) -> None:
    assert CHROMIUM is not None
    a = archcalc.analyze("resnet50")
    path = write(tmp_path, "resnet50")
    with browser.page(CHROMIUM) as page:
        page.open(path)
        page.wait_for("document.documentElement.getAttribute('data-ready') !== null")
        assert page.console == [], page.console  # no errors, no warnings, nothing logged
        rows = "document.querySelectorAll('#layer-table tbody tr.layer')"
        visible = f"Array.from({rows}).filter(r => !r.hidden).length"
        assert page.evaluate(f"{rows}.length") == len(a.graph)  # one row per layer
        assert page.evaluate(visible) == len(a.graph)
        # sort by parameters, largest first: layer4.0.conv2 (512·512·9 = 2,359,296; the FC has 2,049,000)
        page.evaluate("document.querySelectorAll('#layer-table thead th')[4].click()")
        page.evaluate("document.querySelectorAll('#layer-table thead th')[4].click()")
        first = page.evaluate(f"{rows}[0].cells[1].textContent")
        assert first.strip() == "conv2 = conv3-512/s2/nobias", first
        page.evaluate("document.querySelectorAll('#layer-table thead th')[4].click()")  # back in order
        assert page.evaluate(f"{rows}[0].cells[0].textContent") == "0"
        # fold the first stage: its 3 bottlenecks (10 + 12 + 10… layers) disappear
        page.evaluate("document.querySelector('#layer-table tr.heading').click()")
        stage1 = sum(1 for n in a.graph if n.scope[:1] == ("stage#1",))
        assert page.evaluate(visible) == len(a.graph) - stage1
        page.evaluate("document.getElementById('unfold-all').click()")
        assert page.evaluate(visible) == len(a.graph)
        assert page.evaluate("document.querySelectorAll('#diagram svg, #rf svg').length") == (
            2 if shutil.which("dot") else 1)
        width, height, pixels = browser.png_pixels(page.screenshot())
        assert page.console == [], page.console
    assert (width, height) == (1280, 1600)
    # not blank: dark text on most of the page's height, and more than a few colours
    inked = [y for y, row in enumerate(pixels) if min(row) < 100]
    colours = {row[i:i + 3] for row in pixels[::8] for i in range(0, len(row), 24)}
    assert len(inked) > height // 4 and len(colours) > 20
