"""`archcalc render`: what the DOT says, what the drawn SVG shows, and a clean error without `dot`."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

import archcalc
from archcalc import zoo
from archcalc.cli import cli
from archcalc.report import diagram as render

runner = CliRunner()
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed")


def svg_texts(path: Path) -> list[str]:
    """Every <text> of an SVG, entities decoded (dot writes '-' as &#45;)."""
    root = ET.parse(path).getroot()
    return ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]


def cluster_titles(path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    return ["".join(g.find(f"{ns}text").itertext())  # type: ignore[union-attr]
            for g in root.iter(f"{ns}g") if g.get("class") == "cluster" and g.find(f"{ns}text") is not None]


# -- DOT --------------------------------------------------------------------------------------


def test_dot_has_a_box_per_layer_with_text_shape_params_and_shaped_edges() -> None:
    dot = render.to_dot(archcalc.analyze("vgg16"))
    assert '<<b>conv3-64</b><br/>64×224×224<br/><font point-size="10">1,792 params</font>>' in dot
    assert '<<b>FC-4096</b><br/>4096<br/><font point-size="10">102,764,544 params</font>>' in dot
    assert re.search(r'n0 -> n1 \[label="3×224×224"\]', dot)
    assert re.search(r'n1 -> n2 \[label="64×224×224"\]', dot)
    assert "rankdir=TB" in dot and "138,357,544 params" in dot


def test_colours_by_kind_and_implicit_layers_small_and_dashed() -> None:
    a = archcalc.analyze("vgg16")
    by_key = {b.key: b for b in render.boxes(a)}
    assert (by_key["n1"].kind, by_key["n4"].kind, by_key["n5"].kind) == ("conv", "activation", "pool")
    relu = by_key["n2"]
    assert relu.implicit and relu.small and relu.label == '<<font point-size="9">relu</font>>'
    dot = render.to_dot(a, rankdir="LR")
    assert re.search(r'n1 \[label=<.*?> fillcolor="#9ecae1"\]', dot)  # conv
    assert ('n2 [label=<<font point-size="9">relu</font>> fillcolor="#f4cae4" height=0.2 margin="0.04,0.02" '
            'style="rounded,dashed,filled"]') in dot
    assert "rankdir=LR" in dot


def test_legend_cluster_lists_the_kinds_drawn() -> None:
    dot = render.to_dot(archcalc.analyze("vgg16"))
    legend = dot.split("subgraph cluster_legend", 1)[1]
    for kind in ("conv", "fc", "pool", "activation", "other"):
        assert f"legend_{kind} [label={kind}" in legend
    assert "legend_merge" not in legend and "legend_implicit" in legend


def test_a_projection_shortcut_is_dashed_but_keeps_its_params() -> None:
    a = archcalc.analyze("resnet18")
    shortcut = next(b for b in render.boxes(a) if b.implicit and "conv1-128/s2/nobias" in b.label)
    assert not shortcut.small and "8,192 params" in shortcut.label


def test_blocks_are_clusters_and_depth_collapses_them() -> None:
    a = archcalc.analyze("resnet18")
    full = render.to_dot(a)
    assert "label=\"stage#1\"" in full and "label=\"basic#1\"" in full
    collapsed = render.to_dot(a, depth=1)
    assert "label=\"stage#1\"" in collapsed and "label=\"basic#1\"" not in collapsed
    block = '<<b>{}</b><br/><font point-size="10">{} layers · {} params</font><br/>{}>'
    assert block.format("basic#1", 7, "73,984", "64×56×56") in collapsed
    assert block.format("basic#3", 9, "230,144", "128×28×28") in collapsed
    edges = render.edges(a, depth=1)
    assert ("block0", "block1", "64×56×56") in edges  # basic#1 → basic#2
    assert all(src != dst for src, dst, _ in edges)
    top = render.boxes(a, depth=0)
    assert [b.key for b in top if b.kind == "block"] == ["block0", "block1", "block2", "block3"]


@pytest.mark.skipif("densenet121" not in zoo.names(), reason="no densenet121 spec")
def test_a_densenet_stays_legible_at_depth_one() -> None:
    a = archcalc.analyze("densenet121")
    assert len(a.graph) > 200
    drawn = render.boxes(a, depth=1)
    assert len(drawn) < 90 and sum(b.kind == "block" for b in drawn) == 58  # 6 + 12 + 24 + 16 dense layers
    assert len(render.boxes(a, depth=0)) < 20


# -- files --------------------------------------------------------------------------------------


def test_dot_file_output(tmp_path: Path) -> None:
    out = tmp_path / "lenet.dot"
    result = runner.invoke(cli, ["render", "vgg16", "-o", str(out), "--depth", "0"])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    assert out.read_text().startswith("digraph vgg16 {") and "conv3-64" in out.read_text()


@needs_dot
def test_svg_shows_labels_shapes_params_and_edge_shapes(tmp_path: Path) -> None:
    out = tmp_path / "vgg16.svg"
    result = runner.invoke(cli, ["render", "vgg16", "-o", str(out)])
    assert result.exit_code == 0, result.output
    texts = svg_texts(out)
    assert texts.count("conv3-64") == 2 and "64×224×224" in texts and "1,792 params" in texts
    assert "FC-4096" in texts and "102,764,544 params" in texts and "legend" in texts
    assert not (tmp_path / "vgg16.dot").exists()


@needs_dot
def test_svg_cluster_titles_and_collapsed_blocks(tmp_path: Path) -> None:
    out = tmp_path / "resnet18.svg"
    assert runner.invoke(cli, ["render", "resnet18", "-o", str(out), "--depth", "1"]).exit_code == 0
    titles = cluster_titles(out)
    assert {"stage#1", "stage#2", "stage#3", "stage#4", "legend"} <= set(titles)
    texts = svg_texts(out)
    assert "basic#8" in texts and "7 layers · 4,720,640 params" in texts and "512×7×7" in texts


@needs_dot
@pytest.mark.parametrize(("suffix", "magic"), [(".png", b"\x89PNG"), (".pdf", b"%PDF")])
def test_png_and_pdf(tmp_path: Path, suffix: str, magic: bytes) -> None:
    out = tmp_path / f"alexnet{suffix}"
    assert runner.invoke(cli, ["render", "alexnet-paper", "-o", str(out), "--rankdir", "LR"]).exit_code == 0
    assert out.read_bytes().startswith(magic)


def test_without_dot_the_dot_file_is_written_and_the_error_says_how_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    out = tmp_path / "vgg16.svg"
    result = runner.invoke(cli, ["render", "vgg16", "-o", str(out)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output and not out.exists()
    fallback = tmp_path / "vgg16.dot"
    assert fallback.read_text().startswith("digraph vgg16 {")
    assert (f"error: Graphviz's 'dot' program was not found, so {out} was not drawn; "
            f"the diagram is in {fallback}.") in result.output
    assert "apt-get install graphviz" in result.output and "brew install graphviz" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["-o", "x.jpeg"], "cannot tell the format of 'x.jpeg': end it in .svg, .png, .pdf, .dot"),
    (["-o", "/nonexistent/dir/x.dot"], "error: cannot write /nonexistent/dir/x.dot"),
])
def test_bad_outputs_are_clean_errors(args: list[str], message: str) -> None:
    result = runner.invoke(cli, ["render", "vgg16", *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
