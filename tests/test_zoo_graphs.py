"""The graph zoo (ResNet, DenseNet, Inception, MobileNet, SqueezeNet, DPN) equals PyTorch to the unit.

Every figure of a spec with a torchvision or timm counterpart is compared with
tests/reference/torch_reference.json (measured with PyTorch, see its README): parameters,
weights, biases, buffers, MACs, the output shape and the output shape of every convolution in
forward order. The papers' and torchvision's published (rounded) figures are checked as well.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

import archcalc
from archcalc.passes.analysis import Analysis

REFERENCE = json.loads((Path(__file__).parent / "reference" / "torch_reference.json").read_text())["models"]

# spec name → model name in the reference file (torchvision, or timm for dpn68 / dpn92)
COUNTERPART = {
    "resnet18": "resnet18",
    "resnet34": "resnet34",
    "resnet50": "resnet50",
    "resnet101": "resnet101",
    "resnet152": "resnet152",
    "resnext50_32x4d": "resnext50_32x4d",
    "wide_resnet50_2": "wide_resnet50_2",
    "densenet121": "densenet121",
    "densenet169": "densenet169",
    "densenet201": "densenet201",
    "googlenet": "googlenet",
    "inception_v3": "inception_v3",
    "mobilenet_v2": "mobilenet_v2",
    "squeezenet1_0": "squeezenet1_0",
    "dpn68": "dpn68",
    "dpn92": "dpn92",
}


@cache
def analysis(spec: str) -> Analysis:
    return archcalc.analyze(spec)


def _figures(a: Analysis) -> dict[str, int]:
    c = a.totals.counts
    return {"params": c.params, "weights": c.weights, "biases": c.biases, "buffers": c.buffers,
            "macs": a.totals.macs}


# -- PyTorch, to the unit -------------------------------------------------------------------


@pytest.mark.parametrize("spec", list(COUNTERPART))
def test_totals_equal_pytorch(spec: str) -> None:
    ref = REFERENCE[COUNTERPART[spec]]
    assert _figures(analysis(spec)) == {k: ref[k] for k in ("params", "weights", "biases", "buffers", "macs")}


@pytest.mark.parametrize("spec", list(COUNTERPART))
def test_every_conv_shape_in_forward_order_equals_pytorch(spec: str) -> None:
    ref = REFERENCE[COUNTERPART[spec]]
    g = analysis(spec).graph
    assert g.input.shape == tuple(ref["input"])
    assert [n.shape for n in g if n.type == "conv"] == [tuple(shape) for _, shape in ref["conv_shapes"]]
    linears = [(n.in_shapes[0][0], n.shape[0]) for n in g if n.type == "fc"]
    assert linears == [(i, o) for _, i, o in ref["linear"]]
    assert g.output.shape == tuple(ref["output"])
    assert [n.id for n in g.outputs()] == [g.output.id]  # one head: nothing else is left unused


# torchvision's model tables: "num_params" and "_ops" (GFLOPS, which torchvision counts as
# multiply-adds), from the weights' meta in torchvision 0.29's model sources.
TORCHVISION_PUBLISHED = {
    "resnet18": (11_689_512, 1.814),
    "resnet34": (21_797_672, 3.664),
    "resnet50": (25_557_032, 4.089),
    "resnet101": (44_549_160, 7.801),
    "resnet152": (60_192_808, 11.514),
    "resnext50_32x4d": (25_028_904, 4.23),
    "wide_resnet50_2": (68_883_240, 11.398),
    "densenet121": (7_978_856, 2.834),
    "densenet169": (14_149_480, 3.36),
    "densenet201": (20_013_928, 4.291),
    "googlenet": (6_624_904, 1.498),
    "mobilenet_v2": (3_504_872, 0.301),
    "squeezenet1_0": (1_248_424, 0.819),
}


@pytest.mark.parametrize("spec", list(TORCHVISION_PUBLISHED))
def test_torchvision_published_figures(spec: str) -> None:
    params, gmacs = TORCHVISION_PUBLISHED[spec]
    a = analysis(spec)
    assert a.totals.params == params
    assert round(a.totals.macs / 1e9, 3) == gmacs


def test_inception_v3_auxiliary_head_is_the_only_difference_to_torchvisions_count() -> None:
    # torchvision publishes 27,161,264 parameters for inception_v3: its AuxLogits head included
    # (conv0 1×1 768→128 + BN, conv1 5×5 128→768 + BN, fc 768→1000), which the spec leaves out
    # as torchvision's forward does at inference.
    aux = (768 * 128 + 2 * 128) + (128 * 768 * 25 + 2 * 768) + (768 * 1000 + 1000)
    with_aux = analysis("inception_v3").totals.params + aux
    assert with_aux == REFERENCE["inception_v3_aux"]["params"] == 27_161_264


# -- the papers' rounded figures ----------------------------------------------------------


@pytest.mark.parametrize(("spec", "millions", "gmacs"), [
    ("resnet50", 25.6, 4.1),        # torchvision's table: 25.6M, 4.09 GFLOPS (multiply-adds)
    ("resnext50_32x4d", 25.0, 4.2),  # Xie et al. 2017, Table 1: 25.0M, 4.2 GFLOPs (multiply-adds)
    ("wide_resnet50_2", 68.9, 11.4),  # Zagoruyko & Komodakis 2016: WRN-50-2-bottleneck, 68.9M
    ("mobilenet_v1", 4.2, 0.569),    # Howard et al. 2017, Table 8: 4.2M parameters, 569M mult-adds
    ("mobilenet_v2", 3.5, 0.3),      # torchvision 3.5M; the paper's Table 4 says 3.4M, 300M MAdds
    ("dpn92", 37.7, 6.5),            # Chen et al. 2017, Table 1: 6.5 GFLOPs (multiply-adds)
])
def test_papers_rounded_figures(spec: str, millions: float, gmacs: float) -> None:
    a = analysis(spec)
    assert round(a.totals.params / 1e6, 1) == millions
    assert round(a.totals.macs / 1e9, len(str(gmacs).split(".")[1])) == gmacs


def test_mobilenet_v1_exact() -> None:
    # Howard et al. 2017: 13 depthwise-separable layers with BN after each conv, FC-1000.
    a = analysis("mobilenet_v1")
    assert (a.totals.params, a.totals.macs) == (4_231_976, 568_740_352)
    assert a.graph.output.shape == (1000,)
    depthwise = [n for n in a.graph if n.type == "conv" and n.args["groups"] > 1]
    assert [n.args["groups"] for n in depthwise] == [n.in_shapes[0][0] for n in depthwise]
    assert len(depthwise) == 13


def test_dpn92_exact() -> None:
    a = analysis("dpn92")
    assert (a.totals.params, a.totals.macs) == (37_668_392, 6_501_684_224)


def test_squeezenet_equals_its_papers_table() -> None:
    # Iandola et al. 2016, Table 1: 1,248,424 parameters in all (before pruning)
    assert analysis("squeezenet1_0").totals.params == 1_248_424


def test_resnet_depths_count_weighted_layers_as_the_paper() -> None:
    # He et al. 2016 count convs and the FC on the longest path; projections are on a side path
    for depth in (18, 34, 50, 101, 152):
        assert analysis(f"resnet{depth}").graph.depth() == depth


# -- structure --------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "blocks"), [
    ("resnet18", (2, 2, 2, 2)), ("resnet34", (3, 4, 6, 3)), ("resnet50", (3, 4, 6, 3)),
    ("resnet101", (3, 4, 23, 3)), ("resnet152", (3, 8, 36, 3)),  # He et al. 2016, Table 1
])
def test_resnet_stages_hold_tables_block_counts(spec: str, blocks: tuple[int, ...]) -> None:
    # `stage(c, n)` is `block(c, s), block(c) x{n-1}`: the repeat count comes from an argument
    g = analysis(spec).graph
    per_stage: dict[str, set[str]] = {}
    for n in g:
        if len(n.scope) == 2:
            per_stage.setdefault(n.scope[0], set()).add(n.scope[1])
    assert tuple(len(per_stage[f"stage#{i}"]) for i in range(1, 5)) == blocks
    projections = [n for n in g if n.implicit and n.type == "conv"]
    assert len(projections) == (3 if spec in ("resnet18", "resnet34") else 4)  # Table 1's option B


def test_mobilenet_v2_skips_only_where_stride_1_and_channels_agree() -> None:
    g = analysis("mobilenet_v2").graph
    adds = [n for n in g if n.type == "add"]
    # Table 2: n − 1 residual blocks per row of n = 1, 2, 3, 4, 3, 3, 1
    assert len(adds) == 0 + 1 + 2 + 3 + 2 + 2 + 0
    for add in adds:
        a, b = (g.node(i) for i in add.inputs)
        assert a.shape == b.shape
        assert g.node(add.inputs[1]).type != "conv"  # identity shortcut: never a projection


def test_densenet_layers_concatenate_their_input() -> None:
    g = analysis("densenet121").graph
    concats = [n for n in g if n.type == "concat"]
    assert len(concats) == 6 + 12 + 24 + 16
    assert all(n.shape[0] == n.in_shapes[0][0] + 32 for n in concats)  # growth rate k = 32


def test_dpn_dual_path_widths() -> None:
    # dpn92's conv2: the projection gives 256 + 2·16, each block adds inc = 16 to the dense path
    g = analysis("dpn92").graph
    stage1 = [n.shape[0] for n in g if n.type == "concat" and n.scope[0] == "stage#1"]
    assert stage1 == [304, 320, 336]
    assert g.node(g.output.id).shape == (1000,)


GOOGLENET_TABLE_1 = [  # Szegedy et al. 2015, Table 1: "ops" column, millions of multiply-adds
    ("inception#1", 128), ("inception#2", 304), ("inception#3", 73), ("inception#4", 88),
    ("inception#5", 100), ("inception#6", 119), ("inception#7", 170), ("inception#9", 71),
]


def test_googlenet_paper_inception_modules_match_table_1() -> None:
    # Within 1M: the table truncates some rows (4a: 73.6M is listed as 73M) and rounds others
    # (4b: 87.9M as 88M). Its conv1 (34M) and 5a (54M) rows disagree with the layer sizes it
    # lists (7·7·3·64·112·112 = 118M; 5a computes to 51.1M) and are left out.
    a = analysis("googlenet-paper")
    for scope, millions in GOOGLENET_TABLE_1:
        macs = sum(a.macs[n.id] for n in a.graph if n.scope[:1] == (scope,))
        assert abs(macs / 1e6 - millions) < 1, scope


def test_googlenet_paper_has_two_auxiliary_outputs() -> None:
    a = analysis("googlenet-paper")
    g = a.graph
    assert [(n.name, n.shape) for n in g.outputs()] == [("aux1", (1000,)), ("aux2", (1000,)), (None, (1000,))]
    assert g.outputs()[-1] is g.output  # the main classifier is the last node
    assert g.depth() == 22  # "22 layers deep when counting only layers with parameters"
    aux = {n.id for n in g if n.scope and n.scope[0].startswith("aux_classifier")}
    main_params = a.totals.params - sum(a.counts[i].params for i in aux)
    main_macs = a.totals.macs - sum(a.macs[i] for i in aux)
    assert (main_params, main_macs) == (6_998_552, 1_582_671_872)
    assert round(main_macs / 1e9, 1) == 1.6  # "a computational budget of 1.5 billion multiply-adds"
