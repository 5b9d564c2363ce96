"""Going up in resolution: transposed convolution (the conv-arithmetic guide's cases), upsampling,
pixel shuffle, max unpooling, crop and instance norm — shapes, counts and FLOPs against
tests/reference/zoo2_reference.json (measured with PyTorch), `archcalc calc convtranspose`, the
output-padding choice, and the errors a user meets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import archcalc
from archcalc.cli import cli
from archcalc.errors import SpecError
from archcalc.layers.transposed import output_padding_choices, output_padding_for, transposed_output
from tests.conftest import analyze_text

REFERENCE = json.loads((Path(__file__).parent / "reference" / "zoo2_reference.json").read_text())
CASES = {k: v for k, v in REFERENCE["transposed_conv"]["cases"].items() if k.startswith("fig")}
runner = CliRunner()


# -- the guide's relationships (Dumoulin & Visin 2016), written as the guide writes them -------------


def guide_conv(rel: int, i: int, k: int, s: int, p: int, d: int) -> int:
    """Relationships 1–6 and 15: a convolution's output size."""
    return {
        1: lambda: (i - k) + 1,                                       # no padding, unit strides
        2: lambda: (i - k) + 2 * p + 1,                               # arbitrary padding
        3: lambda: i,                                                 # half (same) padding
        4: lambda: i + (k - 1),                                       # full padding
        5: lambda: (i - k) // s + 1,                                  # no padding, strides
        6: lambda: (i + 2 * p - k) // s + 1,                          # padding and strides
        15: lambda: (i + 2 * p - k - (k - 1) * (d - 1)) // s + 1,     # dilated
    }[rel]()


def guide_transposed(rel: int, i: int, k: int, s: int, p: int, a: int) -> int:
    """Relationships 8–14: the transposed convolution's output size for its input i' = i."""
    return {
        8: lambda: i + (k - 1),                   # of no padding, unit strides
        9: lambda: i + (k - 1) - 2 * p,           # of arbitrary padding
        10: lambda: i,                            # of half padding
        11: lambda: i - (k - 1),                  # of full padding
        12: lambda: s * (i - 1) + k,              # of no padding, strides
        13: lambda: s * (i - 1) + k - 2 * p,      # of padding, strides
        14: lambda: s * (i - 1) + a + k - 2 * p,  # of padding, strides, odd: a = (i + 2p − k) mod s
    }[rel]()


def _conv_spec(case: dict) -> str:
    return (f"input {case['cin']}x{case['i']}x{case['i']}\n"
            f"conv(c={case['cout']}, k={case['k']}, s={case['s']}, p={case['p']}, d={case['d']}, g={case['groups']})\n")


def _transposed_spec(case: dict, op: int) -> str:
    i = case["conv2d"]["output"][1]
    return (f"input {case['cin']}x{i}x{i}\n"
            f"convtranspose(c={case['cout']}, k={case['k']}, s={case['s']}, p={case['p']}, op={op}, d={case['d']}, "
            f"g={case['groups']})\n")


@pytest.mark.parametrize("name", list(CASES))
def test_the_guides_convolutions_equal_the_guide_and_pytorch(name: str) -> None:
    case = CASES[name]
    ref = case["conv2d"]
    a = analyze_text(_conv_spec(case))
    o = guide_conv(case["guide_relationship"], case["i"], case["k"], case["s"], case["p"], case["d"])
    assert a.graph.output.shape == tuple(ref["output"]) == (case["cout"], o, o)
    assert (a.totals.params, a.totals.flops) == (ref["params"], ref["flops"])


@pytest.mark.parametrize("name, op", [(n, int(k.split("=")[1])) for n, c in CASES.items() for k in c["transposed"]])
def test_the_guides_transposed_convolutions_equal_the_guide_and_pytorch(name: str, op: int) -> None:
    case = CASES[name]
    ref = case["transposed"][f"output_padding={op}"]
    a = analyze_text(_transposed_spec(case, op))
    i = ref["input"][1]
    rel = case["transposed_guide_relationship"]
    if rel is not None:  # the guide covers no dilated transposed convolution (fig. 5.1: PyTorch only)
        o = guide_transposed(14 if op else rel, i, case["k"], case["s"], case["p"], op)
        assert ref["output"][1] == o
    assert a.graph.output.shape == tuple(ref["output"])
    assert (a.totals.params, a.totals.flops, a.totals.counts.buffers) == (ref["params"], ref["flops"], 0)
    # the weight is Cin × Cout/groups × K × K, as PyTorch holds it
    n = a.graph.output
    assert n.layer.param_shapes(n.args, n.in_shapes, n.shape)["weight"] == (
        case["cin"], case["cout"] // case["groups"], case["k"], case["k"])
    # restoring the direct convolution's input size is output_padding = the guide's a
    assert (ref["output"][1] == case["i"]) == ref["restores_conv_input_size"]


@pytest.mark.parametrize("name, op", [(n, int(k.split("=")[1])) for n, c in CASES.items() for k in c["transposed"]
                                      if "guide_equivalent_conv" in c["transposed"][k]])
def test_zero_insertion_is_the_guides_equivalent_convolution(name: str, op: int) -> None:
    # the guide's direct convolution: k' = k, s' = 1, p' = k − p − 1 over the stretched input
    # ĩ' = i' + (i' − 1)(s − 1), a rows more: the same output; FlopCounterMode counts it over the
    # output positions (zeros included), the transposed one over its input positions
    case = CASES[name]
    ref = case["transposed"][f"output_padding={op}"]
    eq = ref["guide_equivalent_conv"]
    a = analyze_text(_transposed_spec(case, op))
    node = a.graph.output
    formulas = node.layer.explain(node.args, node.in_shapes, node.shape)
    zero_insertion = [f for f in formulas if "zero insertion" in f.note]
    stretched, pad = (eq["i_prime"] - 1) * case["s"] + 1, case["k"] - case["p"] - 1
    assert (stretched, pad) == (eq["i_tilde_prime"], eq["p_prime"])
    assert zero_insertion[0].expression.startswith(f"({eq['i_prime']} − 1)·{case['s']} + 1 + {op} + 2·(1·({case['k']}")
    assert zero_insertion[0].value == eq["output"][1] == ref["output"][1]
    side = eq["i_tilde_prime"] + eq["a"]
    direct = analyze_text(f"input {case['cin']}x{side}x{side}\n"
                          f"conv(c={case['cout']}, k={case['k']}, p={eq['p_prime']}, g={case['groups']})\n")
    assert direct.graph.output.shape == tuple(eq["output"])
    assert direct.totals.flops == eq["flops"]


def test_the_guides_pooling_relationship() -> None:
    # relationship 7: o = ⌊(i − k)/s⌋ + 1 for any pooling
    ref = REFERENCE["transposed_conv"]["cases"]["relationship7_pooling_i5_k3_s2"]
    for kind, key in (("maxpool", "MaxPool2d(3, stride=2)"), ("avgpool", "AvgPool2d(3, stride=2)")):
        a = analyze_text(f"input 2x5x5\n{kind}3/s2\n")
        assert a.graph.output.shape == tuple(ref[key]["output"]) == (2, (5 - 3) // 2 + 1, 2)
        assert a.totals.flops == ref[key]["flops"] == 0


def test_macs_count_every_input_element_times_the_whole_kernel() -> None:
    # FlopCounterMode: 2·Cin·∏I·(Cout/groups)·∏K, padding and output_padding ignored — fig. 4.4
    # (a 7×7 → 5×5 transposed conv, padding 2) counts products that land in the cropped border
    case = CASES["fig2.4_full_padding_no_strides"]
    a = analyze_text(_transposed_spec(case, 0))
    assert a.totals.macs == 2 * 7 * 7 * 3 * 3 * 3 == 5292 // 2
    assert a.totals.flops == 5292 > 2 * 3 * 5 * 5 * 2 * 3 * 3  # the direct count over the 5×5 output: 2,700


# -- `archcalc calc convtranspose` ----------------------------------------------------------------


def _calc(*args: str) -> dict[str, Any]:
    result = runner.invoke(cli, ["calc", "convtranspose", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.parametrize("name, op", [(n, int(k.split("=")[1])) for n, c in CASES.items() for k in c["transposed"]])
def test_calc_convtranspose_works_every_case_of_the_guide(name: str, op: int) -> None:
    case = CASES[name]
    ref = case["transposed"][f"output_padding={op}"]
    i = ref["input"][1]
    r = _calc("--input", f"{case['cin']}x{i}x{i}", "--kernel", str(case["k"]), "--stride", str(case["s"]),
              "--padding", str(case["p"]), "--output-padding", str(op), "--dilation", str(case["d"]),
              "--groups", str(case["groups"]), "--out-channels", str(case["cout"]))
    assert (r["output"], r["params"], r["flops"]) == (ref["output"], ref["params"], ref["flops"])
    sizes = [f for f in r["formulas"] if f["what"] == "output H, W"]
    assert [f["value"] for f in sizes] == [ref["output"][1]] * 2  # PyTorch's formula and zero insertion


def test_calc_convtranspose_text_explains_the_formula_and_the_zero_insertion() -> None:
    result = runner.invoke(cli, ["calc", "convtranspose", "--input", "32x7x7", "--kernel", "3", "--stride", "2",
                                 "--padding", "1", "--out-channels", "16"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[:2] == ["convtranspose(c=16, k=3, s=2, p=1, op=0, d=1, g=1, bias=true)", "  input    32×7×7"]
    assert "    H, W   (7 − 1)·2 − 2·1 + 1·(3 − 1) + 0 + 1 = 13  ((I − 1)·S − 2P + D·(K − 1) + output_padding + 1)" \
        in lines
    assert any(line.startswith("    H, W   (7 − 1)·2 + 1 + 0 + 2·(1·(3 − 1) − 1) − 1·(3 − 1) = 13  (zero insertion: "
                               "2 − 1 zeros between neighbouring inputs make 13") for line in lines)
    assert ("    H, W   output_padding 0 → 13 or output_padding 1 → 14: the matching strided conv maps each back "
            "to 7 (--target N picks one)") in lines
    assert "  MACs     32·7·7 · 16·3·3 = 225,792  (every input element times the whole kernel, as FlopCounterMode " \
        "counts it)" in lines
    assert not any(line.startswith("warning") for line in lines)  # the choices row says it


def test_calc_convtranspose_target_picks_the_output_padding() -> None:
    r = _calc("--input", "32x7x7", "--kernel", "3", "--stride", "2", "--padding", "1", "--out-channels", "16",
              "--target", "14")
    assert r["output"] == [16, 14, 14]
    assert "(7 − 1)·2 − 2·1 + 1·(3 − 1) + 1 + 1" in r["formulas"][0]["expression"]
    assert r["output_padding_choices"][0] == {"axis": "H", "input": 7, "sizes": [
        {"output_padding": 0, "output": 13}, {"output_padding": 1, "output": 14}]}
    # per axis, and an unreachable size is refused with the sizes that can be reached
    assert _calc("--input", "4x5x6", "--kernel", "3", "--stride", "2", "--padding", "1", "--out-channels", "4",
                 "--target", "10x11")["output"] == [4, 10, 11]
    bad = runner.invoke(cli, ["calc", "convtranspose", "--input", "32x7x7", "--kernel", "3", "--stride", "2",
                              "--padding", "1", "--out-channels", "16", "--target", "15"])
    assert bad.exit_code == 2
    assert bad.output == ("error: --target 15: no output_padding gives 15 from 7 (kernel 3, stride 2, padding 1, "
                          "dilation 1): output_padding would be 2, and it must be 0 or more and smaller than the "
                          "stride or the dilation; reachable: 13, 14\n")
    both = runner.invoke(cli, ["calc", "convtranspose", "--input", "8x7x7", "--kernel", "3", "--stride", "2",
                               "--out-channels", "4", "--target", "15", "--output-padding", "1"])
    assert both.exit_code == 2 and "not both" in both.output


def test_output_padding_choices_are_the_sizes_the_strided_conv_maps_back() -> None:
    for size, k, s, p, d in [(7, 3, 2, 1, 1), (3, 3, 2, 1, 1), (2, 3, 2, 0, 1), (5, 4, 3, 1, 1), (4, 3, 3, 0, 2)]:
        choices = output_padding_choices(size, k, s, p, d)
        assert len(choices) == s
        for op, o in choices:
            assert o == transposed_output(size, k, s, p, d, op)
            assert (o + 2 * p - d * (k - 1) - 1) // s + 1 == size  # the direct conv undoes it
            assert output_padding_for(o, size, k, s, p, d) == op


# -- the spec warning -----------------------------------------------------------------------------


def test_an_ambiguous_transposed_conv_warns_how_to_choose_output_padding() -> None:
    g = archcalc.load_text("input 32x7x7\nconvtranspose3-16/s2/p1\n", "t.arch")
    assert g.output.warnings == (
        "7 → 13: a convolution with kernel 3, stride 2 and padding 1 maps each of 13 and 14 to 7, so the size to "
        "restore is yours to choose: output_padding=0 gives 13, output_padding=1 gives 14",)
    # no warning where the size is S·I (U-Net's 2×2 up-convolution, output_padding chosen), or at stride 1
    for text in ("convtranspose2-16/s2", "convtranspose3-16/s2/p1/op1", "convtranspose3-16/p1", "deconv4-16/s2/p1"):
        assert archcalc.load_text(f"input 32x7x7\n{text}\n").output.warnings == ()


# -- the other layer types against the PyTorch reference --------------------------------------------

UPSAMPLING = REFERENCE["upsampling"]
LAYERS = {  # reference case → the spec line archcalc writes for it
    "PixelShuffle(2)": "pixel-shuffle(2)",
    "PixelUnshuffle(2)": "pixel-unshuffle(2)",
    "F.interpolate_nearest_scale2": "upsample(scale=2)",
    "F.interpolate_bilinear_size_13x13_align_corners_False": "interpolate(size=13x13, mode=bilinear)",
    "F.interpolate_bilinear_1x1_to_33x33_align_corners_False (ASPPPooling)": "upsample(size=33, mode=bilinear)",
    "Upsample_nearest_scale2": "upsample2",
    "Upsample_nearest_size_9x10": "upsample(size=9x10)",
    "Upsample_bilinear_scale2_align_corners_False": "upsample2/bilinear",
    "Upsample_bilinear_scale2_align_corners_True": "upsample2/bilinear/align",
    "Upsample_bilinear_size_13x13_align_corners_False": "upsample(size=13x13, mode=bilinear)",
    "Upsample_bilinear_size_13x13_align_corners_True": "upsample(size=13, mode=bilinear, align_corners=true)",
    "Upsample_bicubic_scale2_align_corners_False": "upsample(scale=2, mode=bicubic)",
    "Upsample_trilinear_scale2_align_corners_False": "upsample(scale=2, mode=trilinear)",
    "Upsample_trilinear_size_5x7x9_align_corners_False": "upsample(size=5x7x9, mode=trilinear)",
    "InstanceNorm2d(8, affine=False, track_running_stats=False)": "instancenorm",
    "InstanceNorm2d(8, affine=False, track_running_stats=True)": "instancenorm/track",
    "InstanceNorm2d(8, affine=True, track_running_stats=False)": "instancenorm/affine",
    "InstanceNorm2d(8, affine=True, track_running_stats=True)": "instance-norm(affine=true, track_running_stats=true)",
    "MaxPool2d(2) -> MaxUnpool2d(2, output_size=input) on 7x7": "p = maxpool\nmaxunpool(@p, @p)",
    "MaxPool2d(2, return_indices=True) -> MaxUnpool2d(2)  [pooled, indices, unpooled]":
        "p = maxpool\nmaxunpool(@p, @p)",
}


@pytest.mark.parametrize("case", list(LAYERS))
def test_layer_types_equal_pytorch(case: str) -> None:
    ref = UPSAMPLING[case]
    a = analyze_text(f"input {'x'.join(map(str, ref['input']))}\n{LAYERS[case]}\n")
    out = ref["output"][-1] if isinstance(ref["output"][0], list) else ref["output"]
    assert a.graph.output.shape == tuple(out)
    c = a.totals.counts
    assert (c.params, c.buffers, a.totals.flops) == (ref["params"], ref["buffers"], ref["flops"])


def test_every_measured_case_is_covered() -> None:
    # ChannelShuffle is another layer type's; the default-size unpool cannot run on CPU (below)
    left = {k for k in UPSAMPLING if not k.startswith("ChannelShuffle")} - set(LAYERS)
    assert left == {"MaxPool2d(2) -> MaxUnpool2d(2) on 7x7 (default size)"}


def test_max_unpool_restores_the_pools_input_size() -> None:
    # PyTorch's MaxUnpool2d without output_size gives (I − 1)·S + K = 6 on a 7×7 map pooled to 3×3,
    # where the indices (flat positions in the 7×7 map) do not fit: archcalc always passes the
    # pool's input size (output_size=input in the reference, 7×7)
    ref = UPSAMPLING["MaxPool2d(2) -> MaxUnpool2d(2) on 7x7 (default size)"]
    assert ref["output"][-1] == [8, 6, 6]
    a = analyze_text("input 8x7x7\np = maxpool\nx = conv3-8\nmaxunpool(@x, @p)\n")
    assert a.graph.output.shape == (8, 7, 7)


def test_interpolation_output_sizes_floor_input_times_scale() -> None:
    # F.interpolate: ⌊I·scale⌋ per axis; a size per axis; the size of a second input
    a = analyze_text("input 3x7x10\nupsample(scale=1.5)\nupsample(scale=2x3)\nupsample(size=5x4, mode=bilinear)\n"
                     "x = identity\nupsample(@x, @input, mode=nearest-exact)\n")
    assert [n.shape for n in a.graph][1:] == [(3, 10, 15), (3, 20, 45), (3, 5, 4), (3, 5, 4), (3, 7, 10)]
    # other ops per output element: bilinear weighs 4 neighbours, bicubic 16, nearest copies
    b = analyze_text("input 2x4x4\nupsample2/bilinear\nupsample(scale=1, mode=bicubic)\nupsample2\n")
    per = [b.other_ops[i] for i in (1, 2, 3)]
    assert [(o.multiplies, o.adds) for o in per] == [(4 * 128, 3 * 128), (16 * 128, 15 * 128), (0, 0)]


def test_pixel_shuffle_unshuffle_and_crop_shapes() -> None:
    a = analyze_text("input 12x5x7\npixel-shuffle(2)\npixel-unshuffle(2)\ncrop(size=3x4)\n")
    assert [n.shape for n in a.graph][1:] == [(3, 10, 14), (12, 5, 7), (12, 3, 4)]
    crop = a.graph.output
    assert crop.layer.offsets(crop.args, crop.in_shapes) == (1, 1)  # ⌊(5 − 3)/2⌋, ⌊(7 − 4)/2⌋


def test_instance_norm_counts_as_pytorch() -> None:
    a = analyze_text("input 16x8x8\ninstancenorm/affine/track\n")
    assert (a.totals.params, a.totals.counts.buffers) == (32, 33)
    assert a.rf[1] != "global"  # with running statistics it is a per-channel map at inference
    assert analyze_text("input 16x8x8\ninstancenorm\n").rf[1] == "global"  # statistics over every position


# -- errors ------------------------------------------------------------------------------------------


def error_of(text: str) -> str:
    with pytest.raises(SpecError) as e:
        archcalc.load_text(text, "t.arch")
    return str(e.value)


def test_output_padding_must_be_smaller_than_stride_or_dilation() -> None:
    assert error_of("input 3x8x8\nconvtranspose3-4/op1\n") == (
        "t.arch:2:1: error: cannot apply 'convtranspose3-4/op1' to 3×8×8: output_padding 1 must be smaller than the "
        "stride (1) or the dilation (1), PyTorch's rule\n"
        " 2 | convtranspose3-4/op1\n"
        "   | ^^^^^^^^^^^^^^^^^^^^")


@pytest.mark.parametrize("line, message", [
    ("convtranspose3-4/p5", "the output would be 0 wide"),
    ("convtranspose3-4/g2", "groups=2 must divide both the input channels (3)"),
    ("upsample(scale=2, mode=bilinear)\nupsample(scale=2, mode=linear)", "mode linear interpolates a C×L input"),
    ("upsample(scale=2, align_corners=true)", "align_corners goes with the interpolating modes"),
    ("upsample(scale=2, size=4)", "upsample takes one of scale=…, size=… or a second input"),
    ("upsample", "upsample takes one of scale=…, size=… or a second input"),
    ("upsample(scale=0)", "scale factors must be positive"),
    ("upsample(scale=0.01)", "the output would be 0×0"),
    ("pixel-shuffle(2)", "the channels (3) must divide by r² = 4"),
    ("pixel-unshuffle(3)", "H and W (8×8) must divide by the factor 3"),
    ("crop(size=9)", "cannot crop 8×8 to the larger 9×9"),
    ("crop", "crop takes a size"),
    ("c = conv3-3\nmaxunpool(@c, @c)", "its second input must be the max pool whose indices it reads"),
    ("p = maxpool\nmaxunpool(@input, @p)", "the values (3×8×8) must have the shape of the pool's output (3×4×4)"),
    ("p = maxpool3/s2/same\nmaxunpool(@p, @p)", "a /same max pool pads unevenly first"),
    ("gap\ninstancenorm", "instance norm over one position"),
])
def test_wrong_input_is_a_positioned_error(line: str, message: str) -> None:
    text = error_of(f"input 3x8x8\n{line}\n")
    assert message in text, text
    assert text.startswith("t.arch:")


def test_names_people_use_are_layer_types_now() -> None:
    # the "archcalc has no layer type for … yet" hints are gone for these
    a = analyze_text("input 4x8x8\nconvtranspose(k=2, c=4, s=2)\ndeconv2-4/s2\nupconv2-4/s2\n"
                     "interpolate(size=9)\npixelshuffle2\ninstance-norm\np = maxpool\nmax-unpool(@p, @p)\n")
    assert [n.type for n in a.graph][1:] == ["convtranspose"] * 3 + ["upsample", "pixel-shuffle", "instancenorm",
                                                                      "maxpool", "maxunpool"]


# -- how fractional fields read ---------------------------------------------------------------------

UP = "input 1x32x32\nconv3-4/s2/p1\nconvtranspose2-4/s2, conv3-4\nconvtranspose3-4/s3\n"


def test_fields_past_upsampling_in_the_json() -> None:
    result = runner.invoke(cli, ["report", "-", "--format", "json"], input=UP)
    layers = json.loads(result.output)["layers"]
    # after the 2×2 up-convolution and a 3×3 conv: units 2q and 2q + 1 see −3…1 and −1…3, moved
    # by 2 pixels per 2 units (jump 1)
    assert layers[3]["rf"] == {"size": [5, 5], "jump": [1, 1], "start": [-3, -3], "center": [-1, -1],
                               "aligned": True, "period": [2, 2], "units": [[[-3, 1], [-1, 3]]] * 2}
    # a stride-3 transposed conv of kernel 3: three units read each input unit; jump 1/3, exactly
    rf = layers[4]["rf"]
    assert (rf["jump"], rf["jump_exact"], rf["period"]) == ([1 / 3, 1 / 3], ["1/3", "1/3"], [6, 6])
    assert rf["units"][0] == [[-3, 1]] * 3 + [[-1, 3]] * 3


def test_fields_past_upsampling_in_the_table_and_archcalc_rf() -> None:
    table = runner.invoke(cli, ["report", "-", "--columns", "shape,rf,jump,start"], input=UP).output
    assert "│ 4 │ convtranspose3-4/s3 │ 4×96×96 │ 5×5 │ 1/3×1/3 │    -3,-3 │" in table
    assert "receptive field 5×5 (jump 1/3×1/3, start -3,-3) at layer 4" in table
    rf = runner.invoke(cli, ["rf", "-", "--layer", "3"], input=UP).output
    assert "  h: RF 5, jump 1, start -3, center -1\n" in rf
    assert "     units differ; the pattern repeats every 2 units, 2 pixels on: 0: -3…1; 1: -1…3\n" in rf
    half = runner.invoke(cli, ["report", "-", "--columns", "jump"], input="input 1x8\nupsample2\n").output
    assert "0.5" in half
