"""Receptive field: hand-computed tiny graphs, the zoo against PyTorch, path counts, `archcalc rf`.

The zoo figures are asserted against tests/reference/rf_reference.json, measured on
torchvision models by back-propagating from one unit (tools/rf_reference.py).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import archcalc
from archcalc.cli import cli
from archcalc.layers import GLOBAL
from archcalc.passes.receptive_field import RF, Profile, last_spatial, path_counts, receptive_fields
from tests.conftest import analyze_text

RF_REFERENCE = Path(__file__).parent / "reference" / "rf_reference.json"


def fields_of(text: str) -> dict[int, Any]:
    return dict(enumerate(analyze_text(text).rf))


def spatial(field: RF | str) -> RF:
    assert isinstance(field, RF), field
    return field


def last_rf(text: str) -> RF:
    analysis = analyze_text(text)
    return spatial(analysis.rf[len(analysis.graph) - 1])


# -- the forward recursion, by hand ------------------------------------------------------


def test_input_is_one_pixel() -> None:
    assert fields_of("input 3x8x8\nrelu\n")[0] == RF((1, 1), (1, 1), (0, 0))


def test_two_3x3_convs_see_5x5() -> None:
    rf = last_rf("input 1x32x32\nconv3-4, conv3-4\n")
    assert (rf.size, rf.jump, rf.start, rf.center, rf.aligned) == ((5, 5), (1, 1), (-2, -2), (0.0, 0.0), True)


def test_position_preserving_layers_keep_the_field() -> None:
    fields = fields_of("input 1x32x32\nconv3-4, bn, relu, dropout\n")
    assert fields[1] == fields[2] == fields[3] == fields[4]


def test_dilation_spreads_the_kernel() -> None:
    # conv3/d2: D·(K−1) = 4, padding 2 by default; then a plain 3×3 adds 2
    fields = fields_of("input 1x32x32\nconv3-1/d2\nconv3-1\n")
    assert (fields[1].size, fields[1].start) == ((5, 5), (-2, -2))
    assert (fields[2].size, fields[2].start) == ((7, 7), (-3, -3))


def test_stride_two_chain_multiplies_the_jump() -> None:
    fields = fields_of("input 1x64x64\nconv3-1/s2/p1, conv3-1/s2/p1, conv3-1/s2/p1\n")
    assert [fields[i].size[0] for i in (1, 2, 3)] == [3, 7, 15]  # r += 2·j_in, j = 1, 2, 4
    assert [fields[i].jump[0] for i in (1, 2, 3)] == [2, 4, 8]
    assert [fields[i].start[0] for i in (1, 2, 3)] == [-1, -3, -7]  # start −= P·j_in


def test_asymmetric_kernel_and_stride_per_axis() -> None:
    rf = last_rf("input 1x32x32\nconv3x5-1/s2x1/p0, conv3x1-1/s2/p0\n")
    # axis H: 3, then 3 + 2·2 = 7, jump 4; axis W: 5, then 5 + 0, jump 1·2 = 2
    assert (rf.size, rf.jump, rf.start) == ((7, 5), (4, 2), (0, 0))


def test_1d_and_3d() -> None:
    one = last_rf("input 1x100\nconv5-4/s2, conv3-4\n")
    assert (one.size, one.jump, one.start) == ((9,), (2,), (-4,))
    three = last_rf("input 1x8x16x16\nconv3-2, conv(k=1x3x3, c=2, stride=1x2x2, pad=0x1x1)\n")
    assert (three.size, three.jump, three.start) == ((3, 5, 5), (1, 2, 2), (-1, -2, -2))


def test_ceil_mode_pooling_has_the_same_geometry() -> None:
    floor = last_rf("input 1x32x32\nconv3-1, maxpool3/s2\n")
    ceil = last_rf("input 1x32x32\nconv3-1, maxpool3/s2/ceil\n")
    assert floor == ceil == RF((5, 5), (2, 2), (-1, -1))


# -- merges: the Distill library's tests, in our spec language -----------------------------

DISTILL_1 = """input 1x32x32
add:
    | conv1-1/s4/p0
    | conv3-1/s2/p1, conv1-1/s2/p0
"""


def test_aligned_merge_takes_the_larger_field() -> None:
    # receptive_field_computation_test.py, network 1: r 3, jump 4, effective padding 1
    rf = last_rf(DISTILL_1)
    assert (rf.size, rf.jump, rf.start, rf.aligned) == ((3, 3), (4, 4), (-1, -1), True)


def test_intermediate_add_defeats_a_naive_dfs() -> None:
    # network 8: the two branches after the first add have different fields; r 11, jump 8, padding 5
    rf = last_rf(DISTILL_1 + "add:\n    | conv1-1/s2/p0\n    | conv3-1/s2/p1\n")
    assert (rf.size, rf.jump, rf.start, rf.aligned) == ((11, 11), (8, 8), (-5, -5), True)


def test_3x3_path_and_1x1_path_share_a_center() -> None:
    rf = last_rf("input 1x16x16\nadd:\n    | conv3-1\n    | conv1-1\n")
    assert (rf.size, rf.center, rf.aligned, rf.centers) == ((3, 3), (0.0, 0.0), True, ())


def test_padding_1_against_padding_0_is_misaligned() -> None:
    # both give 16×16 from 32×32, but conv3/s2/p1 is centered on 0 and conv2/s2/p0 on 0.5
    analysis = analyze_text("input 1x32x32\nadd:\n    | conv3-1/s2/p1\n    | conv2-1/s2/p0\nconv3-1\n")
    merged, after = spatial(analysis.rf[3]), spatial(analysis.rf[4])
    assert (merged.size, merged.jump, merged.start, merged.aligned) == ((3, 3), (2, 2), (-1, -1), False)
    assert merged.centers == ((0.0, 0.5), (0.0, 0.5))
    assert merged.why == "layer 3 (add): centers differ on axis h (0, 0.5); centers differ on axis w (0, 0.5)"
    # downstream stays misaligned; every center moves by j·(D(K−1)/2 − P) = 0 through a 'same' conv
    assert (after.size, after.aligned) == ((7, 7), False)
    assert (after.centers, after.why) == (merged.centers, merged.why)


def test_different_jumps_are_misaligned_and_say_so() -> None:
    # 32 → 16 either way: a 1×1 with stride 2 (jump 2) or a 17-wide window with stride 1 (jump 1)
    rf = last_rf("input 1x32x32\nadd:\n    | conv1-1/s2/p0\n    | conv17-1/p0\n")
    assert (rf.size, rf.jump, rf.aligned) == ((17, 17), (1, 1), False)
    assert "jumps differ on axis h (1, 2)" in rf.why


def test_concat_merges_like_add() -> None:
    rf = last_rf("input 1x16x16\nconcat:\n    | conv5-2\n    | conv3-2\n    | maxpool3/s1/p1\n")
    assert (rf.size, rf.start, rf.aligned) == ((5, 5), (-2, -2), True)


# -- global --------------------------------------------------------------------------------


def test_global_after_gap_and_after_flatten_fc() -> None:
    a = analyze_text("input 3x32x32\nconv3-8, gap, FC-10\n")
    assert [a.rf[i] for i in (2, 3, 4)] == [GLOBAL, GLOBAL, GLOBAL]  # gap, (flatten), FC
    b = analyze_text("input 3x32x32\nconv3-8, FC-10\n")
    assert b.graph.node(2).type == "flatten" and b.rf[2] == GLOBAL and b.rf[3] == GLOBAL


def test_adaptive_pool_to_a_divisor_is_a_window() -> None:
    rf = last_rf("input 1x14x14\nadaptive-avgpool7\n")  # 14 → 7: a 2×2 window with stride 2
    assert (rf.size, rf.jump) == ((2, 2), (2, 2))


def test_a_window_over_the_whole_map_is_global() -> None:
    # MobileNet v1's avgpool7/s1 on 7×7 and LeNet-5's C5 (a 5×5 conv on 5×5) are global in effect
    assert fields_of("input 8x7x7\navgpool7/s1\n")[1] == GLOBAL
    assert fields_of("input 16x5x5\nconv5-120/p0\n")[1] == GLOBAL
    assert isinstance(fields_of("input 8x8x8\navgpool7/s1\n")[1], RF)  # 2×2 out: still a window
    mobilenet = archcalc.load("mobilenet_v1")
    fields = receptive_fields(mobilenet)
    node = last_spatial(mobilenet, fields)
    assert node is not None and mobilenet.node(node + 1).text == "avgpool7/s1"
    assert spatial(fields[node]).size == (315, 315)


def test_squeeze_excitation_gate_makes_it_global() -> None:
    a = analyze_text("input 8x16x16\nx = conv3-8\ngap, conv1-2, relu, conv1-8\ng = sigmoid\n"
                     "mul(@x, @g)\nconv3-8\n")
    types = [n.type for n in a.graph]
    mul = types.index("mul")
    assert isinstance(a.rf[1], RF)
    assert a.rf[mul] == GLOBAL and a.rf[mul + 1] == GLOBAL  # and everything after
    assert last_spatial(a.graph, a.rf) == 1  # the figure before the gate


def test_flat_input_has_no_spatial_axes() -> None:
    a = analyze_text("input 784\nFC-10\n")
    assert a.rf[0] == RF((), (), ()) and a.rf[1] == GLOBAL
    assert last_spatial(a.graph, a.rf) is None


# -- the zoo -------------------------------------------------------------------------------


@cache
def zoo_rf(name: str) -> RF:
    graph = archcalc.load(name)
    fields = receptive_fields(graph)
    node = last_spatial(graph, fields)
    assert node is not None
    return spatial(fields[node])


@pytest.mark.parametrize(("name", "size", "jump", "start"), [
    ("vgg16", 212, 32, -90),      # the conventions' figure, after pool5
    ("alexnet", 195, 32, -66),
    ("resnet50", 427, 32, -213),
    ("inception_v3", 1311, 32, -618),  # at 299×299
])
def test_published_figures(name: str, size: int, jump: int, start: int) -> None:
    rf = zoo_rf(name)
    assert (rf.size, rf.jump, rf.start, rf.aligned) == ((size, size), (jump, jump), (start, start), True)


def rf_reference() -> dict:
    return json.loads(RF_REFERENCE.read_text())["models"]


@pytest.mark.parametrize("name", sorted(rf_reference()))
def test_equals_pytorch_measurement(name: str) -> None:
    """Size, jump and start per axis equal what back-propagation through torchvision shows."""
    want = rf_reference()[name]
    rf = zoo_rf(name)
    assert archcalc.load(name).input.shape == tuple(want["input"])
    assert (list(rf.size), list(rf.jump), list(rf.start)) == (want["size"], want["jump"], want["start"])


def test_reference_covers_the_torchvision_zoo() -> None:
    names = set(rf_reference())
    assert {"alexnet", "vgg16", "resnet50", "densenet121", "googlenet", "mobilenet_v2", "squeezenet1_0",
            "inception_v3"} <= names


# -- effective receptive field: path counts ------------------------------------------------


def profiles(text: str, node: int | None = None) -> tuple[Profile, ...]:
    graph = archcalc.load(text)
    return path_counts(graph, len(graph) - 1 if node is None else node)


def test_two_3x3_convs_give_the_triangle() -> None:
    assert profiles("input 1x32x32\nconv3-1, conv3-1\n") == (Profile(-2, (1, 2, 3, 2, 1)),) * 2


def test_a_5x5_conv_gives_the_box() -> None:
    assert profiles("input 1x32x32\nconv5-1\n") == (Profile(-2, (1, 1, 1, 1, 1)),) * 2


def test_stride_leaves_gaps_filled_by_overlap() -> None:
    # conv3/s2/p1 then conv3: windows at -1..1, 1..3, 3..5 overlap at 1 and 3
    assert profiles("input 1x32x32\nconv3-1/s2/p1, conv3-1\n")[0] == Profile(-3, (1, 1, 2, 1, 2, 1, 1))


def test_paths_through_a_residual_add() -> None:
    # the identity adds one path at the center
    assert profiles("input 1x16x16\nadd:\n    | conv3-1\n    | identity\n")[0] == Profile(-1, (1, 2, 1))


def test_pooling_counts_one_path_per_window_position() -> None:
    assert profiles("input 1x16x16\nmaxpool2, conv3-1\n")[0] == Profile(-2, (1,) * 6)


def test_per_axis_profiles_of_an_asymmetric_kernel() -> None:
    h, w = profiles("input 1x32x32\nconv1x3-1, conv1x3-1\n")
    assert h == Profile(0, (1,)) and w == Profile(-2, (1, 2, 3, 2, 1))


def test_vgg16_profile_spans_the_rf_with_every_path() -> None:
    graph = archcalc.load("vgg16")
    node = last_spatial(graph, receptive_fields(graph))
    assert node is not None
    h, w = path_counts(graph, node)
    assert h == w and (h.start, h.size) == (-90, 212)
    assert sum(h.counts) == 3**13 * 2**5  # a chain: the product of the kernels (13 convs, 5 pools)
    assert h.counts[0] == h.counts[-1] == 1 and float(h.mean()) == 15.5  # the RF's center


@pytest.mark.parametrize("name", ["resnet50", "inception_v3", "googlenet", "densenet121"])
def test_profile_spans_the_rf_in_branching_nets(name: str) -> None:
    graph = archcalc.load(name)
    fields = receptive_fields(graph)
    node = last_spatial(graph, fields)
    assert node is not None
    rf = spatial(fields[node])
    for a, p in enumerate(path_counts(graph, node)):
        assert (p.start, p.size) == (rf.start[a], rf.size[a])
        assert p.counts[0] > 0 and p.counts[-1] > 0


# -- `archcalc rf` ----------------------------------------------------------------------------


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_cli_default_layer_is_pool5() -> None:
    result = run("rf", "vgg16")
    assert result.exit_code == 0, result.output
    assert "layer 31 maxpool" in result.output
    assert "h: RF 212, jump 32, start -90, center 15.5" in result.output


def test_cli_json_has_the_exact_triangle(tmp_path: Path) -> None:
    spec = tmp_path / "two.arch"
    spec.write_text("input 1x32x32\nconv3-1, conv3-1\n")
    data = json.loads(run("rf", str(spec), "--format", "json").output)
    assert data["layer"] == 2
    assert data["rf"] == {"size": [5, 5], "jump": [1, 1], "start": [-2, -2], "center": [0, 0],
                          "aligned": True}
    assert data["paths"][0] == {"axis": "h", "start": -2, "counts": [1, 2, 3, 2, 1]}


def test_cli_layer_by_id_and_by_name(tmp_path: Path) -> None:
    spec = tmp_path / "named.arch"
    spec.write_text("input 1x32x32\nstem = conv5-1\nconv3-1\n")
    by_name = json.loads(run("rf", str(spec), "--layer", "stem", "--format", "json").output)
    by_id = json.loads(run("rf", str(spec), "--layer", "1", "--format", "json").output)
    assert by_name == by_id and by_name["rf"]["size"] == [5, 5]


def test_cli_svg_needs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed: our own SVG
    out = tmp_path / "rf.svg"
    result = run("rf", "vgg16", "-o", str(out))
    assert result.exit_code == 0, result.output
    svg = out.read_text()
    assert svg.startswith("<svg") and svg.count("<rect") == 1 + 212  # background + one bar per pixel
    assert "x=-90: 1 paths" in svg


def test_cli_png_without_matplotlib_is_a_clean_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = run("rf", "vgg16", "-o", str(tmp_path / "rf.png"))
    assert result.exit_code == 2
    assert "needs matplotlib" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(("args", "message"), [
    (("--layer", "35"), "layer 35 (dropout) sees the whole input (its field is global); "
                        "the last spatial layer is 31 (maxpool)"),
    (("--layer", "99"), "there is no layer 99: ids go from 0 to 40"),
    (("--layer", "pool5"), "no layer named 'pool5' (named layers: features, classifier)."),
    (("--layer", "pool5"), "or a module path such as features.0"),
    (("-o", "rf.pdf"), "the plot is written as .svg or .png"),
])
def test_cli_errors_are_clean(args: tuple[str, ...], message: str) -> None:
    result = run("rf", "vgg16", *args)
    assert result.exit_code == 2
    assert message in result.output
