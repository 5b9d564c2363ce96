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


def test_dot_has_a_box_per_layer_with_text_shape_and_params_and_bare_edges() -> None:
    dot = render.to_dot(archcalc.analyze("vgg16"))
    assert '<<b>conv3-64</b><br/>64×224×224<br/><font point-size="10">1,792 params</font>>' in dot
    assert '<<b>FC-4096</b><br/>4096<br/><font point-size="10">102,764,544 params</font>>' in dot
    # each box shows its output shape, so the edges do not repeat it
    assert re.search(r"\tn0 -> n1\n", dot) and re.search(r"\tn1 -> n2\n", dot)
    assert not re.search(r"-> n\d+ \[label=", dot)
    assert "rankdir=TB" in dot and "138,357,544 params" in dot


def test_colours_by_kind_and_implicit_layers_small_and_dashed() -> None:
    a = archcalc.analyze("vgg16")
    by_key = {b.key: b for b in render.boxes(a)}
    assert (by_key["n1"].kind, by_key["n4"].kind, by_key["n5"].kind) == ("conv", "activation", "pool")
    relu = by_key["n2"]
    assert relu.implicit and relu.small and relu.label == '<<font point-size="9">relu</font>>'
    flatten = next(b for b in by_key.values() if b.small and "flatten" in b.label)
    assert flatten.label == '<<font point-size="9">flatten → 25088</font>>'  # a small box names a new shape
    dot = render.to_dot(a, rankdir="LR")
    assert re.search(r'n1 \[label=<.*?> fillcolor="#9ecae1"\]', dot)  # conv
    assert ('n2 [label=<<font point-size="9">relu</font>> fillcolor="#f4cae4" height=0.2 margin="0.04,0.02" '
            'style="rounded,dashed,filled"]') in dot
    assert "rankdir=LR" in dot


def test_the_legend_is_one_compact_row_under_the_title() -> None:
    dot = render.to_dot(archcalc.analyze("vgg16"))
    assert "cluster_legend" not in dot
    label = dot.split("label=<", 1)[1].split(">\n", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", label)
    assert len(rows) == 2 and "vgg16: input 3×224×224" in rows[0]
    cells = re.findall(r'<td bgcolor="[^"]+"[^>]*>([^<]+)</td>', rows[1])
    assert cells == ["conv", "fc", "pool", "activation", "other"]
    assert "implicit: hidden ReLU, flatten, shortcut" in rows[1]


def test_a_projection_shortcut_is_dashed_but_keeps_its_params() -> None:
    a = archcalc.analyze("resnet18")
    shortcut = next(b for b in render.boxes(a) if b.implicit and "conv1-128/s2/nobias" in b.label)
    assert not shortcut.small and "8,192 params" in shortcut.label


def test_statement_names_show_where_they_name_the_layer() -> None:
    boxes = {b.key: b.label for b in render.boxes(archcalc.analyze("resnet18"))}
    assert boxes["n1"].startswith("<<b>conv1 = conv7-64/s2/nobias</b>")
    assert boxes["n11"].startswith("<<b>relu</b>")  # layer1's last ReLU: the cluster carries 'layer1'
    dot = render.to_dot(archcalc.analyze("resnet18"))
    assert 'label="layer1 = stage#1"' in dot and 'label="layer2.0 = basic#3"' in dot


def test_blocks_are_clusters_and_depth_collapses_them() -> None:
    a = archcalc.analyze("resnet18")
    full = render.to_dot(a)
    assert 'label="layer1 = stage#1"' in full and 'label="layer1.0 = basic#1"' in full
    collapsed = render.to_dot(a, depth=1)
    assert 'label="layer1 = stage#1"' in collapsed and "basic#1\"" not in collapsed
    block = ('<<b>{}</b><br/><font point-size="9">{}</font><br/><font point-size="10">{} · {} params</font>'
             "<br/>{}>")
    assert block.format("basic × 2", "3×3→3×3 + id", "2 × 7 layers", "147,968", "64×56×56") in collapsed
    assert block.format("layer2.0 = basic#3", "3×3→3×3 + 1×1", "9 layers", "230,144", "128×28×28") in collapsed
    edges = render.edges(a, depth=1)
    assert ("block0", "block2", "64×56×56") in edges  # basic × 2 → basic#3
    assert all(src != dst for src, dst, _ in edges)
    top = render.boxes(a, depth=0)
    assert [b.key for b in top if b.kind == "block"] == ["block0", "block1", "block2", "block3"]


def test_blocks_alike_in_a_row_are_one_box_with_a_count() -> None:
    drawn = render.boxes(archcalc.analyze("resnet50"), depth=1)
    titles = [re.match(r"<<b>(.*?)</b>", b.label).group(1) for b in drawn if b.kind == "block"]  # type: ignore[union-attr]
    # the first block of a stage strides and projects: it differs from the ones after it
    assert titles == ["layer1.0 = bottleneck#1", "bottleneck × 2", "layer2.0 = bottleneck#4", "bottleneck × 3",
                      "layer3.0 = bottleneck#8", "bottleneck × 5", "layer4.0 = bottleneck#14", "bottleneck × 2"]
    assert [b.count for b in drawn if b.kind == "block"] == [1, 2, 1, 3, 1, 5, 1, 2]


def test_a_collapsed_block_says_what_is_inside() -> None:
    googlenet = {b.key: b.label for b in render.boxes(archcalc.analyze("googlenet"), depth=0)}
    inception = next(label for label in googlenet.values() if "inception3a" in label)
    # torchvision's "5×5" branch is a 3×3 (its known bug), and the drawing says so
    assert "<b>inception3a = inception#1</b>" in inception  # its module path, its block
    assert ">1×1 | 1×1→3×3 | 1×1→3×3 | pool→1×1<" in inception and "155,872 params" in inception
    assert "256×28×28>" in inception
    paper = render.boxes(archcalc.analyze("googlenet-paper"), depth=0)
    assert any(">1×1 | 1×1→3×3 | 1×1→5×5 | pool→1×1<" in b.label for b in paper)
    dense = render.boxes(archcalc.analyze("densenet121"), depth=2)
    assert any(">id | 1×1→3×3<" in b.label for b in dense)


@needs_dot
@pytest.mark.parametrize("spec", ["googlenet", "googlenet-paper", "squeezenet1_0", "densenet121"])
def test_concat_inputs_are_drawn_in_concat_order(spec: str) -> None:
    a = archcalc.analyze(spec)
    rows = render.branch_rows(a, None)
    assert rows
    assert render.misplaced(render.ordered_digraph(a, None), rows) == 0
    at = render.positions(render.ordered_digraph(a, None))
    first = rows[0]
    assert [at[k] for k in first] == sorted(at[k] for k in first)


def test_the_automatic_depth_keeps_every_zoo_picture_to_a_page() -> None:
    for name in zoo.names():
        a = archcalc.analyze(name)
        depth = render.choose_depth(a)
        drawn = render.boxes(a, depth)
        assert render._weight(drawn) <= render.MAX_BOXES or depth is None, name
        assert depth is None or render._weight(render.boxes(a, depth + 1)) > render.MAX_BOXES, name
    a = archcalc.analyze("densenet121")
    assert render.choose_depth(a) == 2
    assert render.depth_note(a, 2, chosen=True) == (
        "blocks nested deeper than 2 collapsed (26 boxes; chosen so the picture fits a page; "
        "--depth all draws every layer, 486 boxes)")


# -- files --------------------------------------------------------------------------------------


def test_dot_file_output(tmp_path: Path) -> None:
    out = tmp_path / "lenet.dot"
    result = runner.invoke(cli, ["render", "vgg16", "-o", str(out), "--depth", "0"])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    assert out.read_text().startswith("digraph vgg16 {") and "conv3-64" in out.read_text()


@needs_dot
def test_svg_shows_labels_shapes_params_and_the_legend(tmp_path: Path) -> None:
    out = tmp_path / "vgg16.svg"
    result = runner.invoke(cli, ["render", "vgg16", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}: every layer (41 boxes)" in result.output
    texts = svg_texts(out)
    assert texts.count("conv3-64") == 2 and "64×224×224" in texts and "1,792 params" in texts
    assert "classifier = FC-4096" not in texts and "FC-4096" in texts and "102,764,544 params" in texts
    assert {"conv", "fc", "pool", "activation"} <= set(texts)  # the legend row
    assert "3×224×224" in texts and texts.count("64×224×224") == 2  # boxes, not edges, show shapes
    assert not (tmp_path / "vgg16.dot").exists()


@needs_dot
def test_svg_cluster_titles_and_collapsed_blocks(tmp_path: Path) -> None:
    out = tmp_path / "resnet18.svg"
    result = runner.invoke(cli, ["render", "resnet18", "-o", str(out), "--depth", "1"])
    assert result.exit_code == 0 and "--depth all draws every layer" in result.output
    titles = cluster_titles(out)
    assert {"layer1 = stage#1", "layer2 = stage#2", "layer3 = stage#3", "layer4 = stage#4"} <= set(titles)
    texts = svg_texts(out)
    assert "layer4.1 = basic#8" in texts and "7 layers · 4,720,640 params" in texts and "512×7×7" in texts


@needs_dot
def test_the_zoo_renders_to_png_within_bounds(tmp_path: Path) -> None:
    # every built-in spec at its automatic depth: a page-sized PNG, far below cairo's 32,767 px
    import struct

    sizes = {}
    for name in zoo.names():
        out = tmp_path / f"{name}.png"
        result = runner.invoke(cli, ["render", name, "-o", str(out)])
        assert result.exit_code == 0, (name, result.output)
        head = out.read_bytes()[:24]
        assert head.startswith(b"\x89PNG"), name
        sizes[name] = struct.unpack(">II", head[16:24])
    assert all(w <= 2000 and h <= 6000 for w, h in sizes.values()), sizes
    svg = tmp_path / "densenet121.svg"
    assert runner.invoke(cli, ["render", "densenet121", "-o", str(svg)]).exit_code == 0
    assert "dense_layer × 24" in svg_texts(svg) and "id | 1×1→3×3" in svg_texts(svg)


@needs_dot
def test_depth_all_draws_every_layer_and_stays_under_cairos_limit(tmp_path: Path) -> None:
    import struct

    out = tmp_path / "densenet121.png"
    result = runner.invoke(cli, ["render", "densenet121", "-o", str(out), "--depth", "all"])
    assert result.exit_code == 0 and "every layer (486 boxes)" in result.output
    w, h = struct.unpack(">II", out.read_bytes()[16:24])
    assert w < 32_767 and h < 32_767


def test_a_bad_depth_is_a_clean_error() -> None:
    result = runner.invoke(cli, ["render", "vgg16", "-o", "x.dot", "--depth", "deep"])
    assert result.exit_code == 2 and "--depth takes a whole number, auto or all, not 'deep'" in result.output


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
