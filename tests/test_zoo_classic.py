"""The classic zoo (LeNet-5, AlexNet, VGG) equals torchvision and the papers to the unit.

torchvision's figures are read from tests/reference/torch_reference.json (measured with
PyTorch, see its README); the rest are computed by hand in the comments next to them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import archcalc
from archcalc.passes.analysis import Analysis
from archcalc.zoo import specs_dir

REFERENCE = json.loads((Path(__file__).parent / "reference" / "torch_reference.json").read_text())["models"]

# spec name → torchvision model name in the reference file
TORCHVISION = {
    "alexnet": "alexnet",
    "vgg11": "vgg11",
    "vgg13": "vgg13",
    "vgg16": "vgg16",
    "vgg19": "vgg19",
    "vgg11_bn": "vgg11_bn",
    "vgg13_bn": "vgg13_bn",
    "vgg16_bn": "vgg16_bn",
    "vgg19_bn": "vgg19_bn",
}


def _figures(a: Analysis) -> dict[str, int]:
    c = a.totals.counts
    return {"params": c.params, "weights": c.weights, "biases": c.biases, "buffers": c.buffers,
            "macs": a.totals.macs}


def _conv_shapes(a: Analysis) -> list[tuple[int, ...]]:
    return [n.shape for n in a.graph if n.type == "conv"]


def _linears(a: Analysis) -> list[tuple[int, int]]:
    return [(n.in_shapes[0][0], n.shape[0]) for n in a.graph if n.type == "fc"]


# -- torchvision ---------------------------------------------------------------------------


@pytest.mark.parametrize("spec", sorted(TORCHVISION))
def test_totals_equal_torchvision(spec: str) -> None:
    ref = REFERENCE[TORCHVISION[spec]]
    expected = {k: ref[k] for k in ("params", "weights", "biases", "buffers", "macs")}
    assert _figures(archcalc.analyze(spec)) == expected


@pytest.mark.parametrize("spec", sorted(TORCHVISION))
def test_shapes_equal_torchvision(spec: str) -> None:
    ref = REFERENCE[TORCHVISION[spec]]
    a = archcalc.analyze(spec)
    assert a.graph.input.shape == tuple(ref["input"])
    assert _conv_shapes(a) == [tuple(shape) for _, shape in ref["conv_shapes"]]
    assert _linears(a) == [(i, o) for _, i, o in ref["linear"]]
    assert a.graph.output.shape == tuple(ref["output"])


def test_alexnet_adaptive_pool_follows_torchvision_at_other_sizes() -> None:
    # torchvision.models.alexnet at 1×3×256×256 under FlopCounterMode: 1,854,248,320 flops
    # (torch 2.14.1, torchvision 0.29.1); conv1 gives ⌊(256 − 11 + 4)/4⌋ + 1 = 63, and the
    # adaptive pool still hands 256×6×6 to the classifier, so the FC figures do not change.
    a = archcalc.analyze("alexnet", (3, 256, 256))
    assert a.totals.macs == 927_124_160
    assert a.totals.params == REFERENCE["alexnet"]["params"]


# -- AlexNet's 224 vs 227 -------------------------------------------------------------------


def test_alexnet_224_warns_that_conv1_does_not_divide() -> None:
    a = archcalc.analyze("alexnet")
    conv1 = next(n for n in a.graph if n.type == "conv")
    messages = [w.message for w in a.warnings if w.layer == conv1.id]
    # (224 − 11 + 2·2)/4 + 1 = 55.25, floored to 55
    assert len(messages) == 1
    assert "55.25" in messages[0] and "floored to 55" in messages[0]


def test_alexnet_paper_227_divides_exactly() -> None:
    a = archcalc.analyze("alexnet-paper")
    conv1 = next(n for n in a.graph if n.type == "conv")
    assert conv1.shape == (96, 55, 55)  # (227 − 11)/4 + 1 = 55 exactly
    assert not [w for w in a.warnings if w.layer == conv1.id]
    assert a.warnings == ()


# -- figures computed by hand -----------------------------------------------------------


def test_lenet5() -> None:
    a = archcalc.analyze("lenet5")
    # C1  6·1·25 + 6 = 156          MACs 6·28·28·25   = 117,600
    # C3  16·6·25 + 16 = 2,416      MACs 16·10·10·150 = 240,000
    # C5  120·16·25 + 120 = 48,120  MACs 120·400      =  48,000
    # F6  120·84 + 84 = 10,164      MACs              =  10,080
    # out 84·10 + 10 = 850          MACs              =     840
    assert _figures(a) == {"params": 61_706, "weights": 61_470, "biases": 236, "buffers": 0,
                           "macs": 416_520}
    assert _conv_shapes(a) == [(6, 28, 28), (16, 10, 10), (120, 1, 1)]
    pools = [n.shape for n in a.graph if n.type == "avgpool"]
    assert pools == [(6, 14, 14), (16, 5, 5)]
    assert a.graph.output.shape == (10,)


def test_alexnet_paper() -> None:
    a = archcalc.analyze("alexnet-paper")
    # params: conv1 96·3·121 + 96 = 34,944; conv2 (g2) 256·48·25 + 256 = 307,456;
    # conv3 384·256·9 + 384 = 885,120; conv4 (g2) 384·192·9 + 384 = 663,936;
    # conv5 (g2) 256·192·9 + 256 = 442,624; FC 9216·4096 + 4096 = 37,752,832,
    # 4096·4096 + 4096 = 16,781,312, 4096·1000 + 1000 = 4,097,000 → 60,965,224
    # MACs: 96·55²·363 = 105,415,200; 256·27²·1200 = 223,948,800; 384·13²·2304 = 149,520,384;
    # 384·13²·1728 = 112,140,288; 256·13²·1728 = 74,760,192; FC 58,621,952 → 724,406,816
    assert _figures(a) == {"params": 60_965_224, "weights": 60_954_656, "biases": 10_568,
                           "buffers": 0, "macs": 724_406_816}
    assert round(a.totals.params / 1e6) == 61  # the paper rounds down: "60 million parameters"
    assert _conv_shapes(a) == [(96, 55, 55), (256, 27, 27), (384, 13, 13), (384, 13, 13), (256, 13, 13)]
    pools = [n.shape for n in a.graph if n.type == "maxpool"]
    assert pools == [(96, 27, 27), (256, 13, 13), (256, 6, 6)]
    assert [n.args["groups"] for n in a.graph if n.type == "conv"] == [1, 2, 1, 2, 2]
    assert sum(n.type == "lrn" for n in a.graph) == 2
    assert _linears(a) == [(9216, 4096), (4096, 4096), (4096, 1000)]
    assert a.graph.output.shape == (1000,)


def test_vgg11_lrn_equals_a_plus_a_parameterless_lrn() -> None:
    a, lrn = archcalc.analyze("vgg11"), archcalc.analyze("vgg11-lrn")
    assert _figures(lrn) == _figures(a)  # LRN has no weights and no MACs
    assert [n.type for n in lrn.graph][1:4] == ["conv", "relu", "lrn"]
    assert _conv_shapes(lrn) == _conv_shapes(a)
    assert lrn.graph.output.shape == (1000,)


def test_vgg16_c() -> None:
    c, b = archcalc.analyze("vgg16-c"), archcalc.analyze("vgg13")
    # C = B + conv1-256 at 56² + conv1-512 at 28² and at 14² (1×1: no padding):
    # params 256·256 + 256 = 65,792 and 2 × (512·512 + 512) = 525,312
    #   → 133,047,848 + 591,104 = 133,638,952
    # MACs 256·256·56² = 205,520,896, 512·512·28² = 205,520,896, 512·512·14² = 51,380,224
    #   → 11,308,466,176 + 462,422,016 = 11,770,888,192
    assert _figures(c) == {"params": 133_638_952, "weights": 133_625_536, "biases": 13_416,
                           "buffers": 0, "macs": 11_770_888_192}
    assert _figures(c)["params"] - _figures(b)["params"] == 591_104
    ones = [(n.args["kernel"], n.shape) for n in c.graph if n.type == "conv" and n.args["kernel"] == (1,)]
    assert ones == [((1,), (256, 56, 56)), ((1,), (512, 28, 28)), ((1,), (512, 14, 14))]
    assert len(_conv_shapes(c)) == 13
    assert c.graph.output.shape == (1000,)


@pytest.mark.parametrize(
    ("spec", "millions"),
    [("vgg11", 133), ("vgg11-lrn", 133), ("vgg13", 133), ("vgg16-c", 134), ("vgg16", 138), ("vgg19", 144)],
)
def test_vgg_parameters_round_to_table_2(spec: str, millions: int) -> None:
    # Simonyan & Zisserman 2015, Table 2: "Number of parameters (in millions)"
    assert round(archcalc.analyze(spec).totals.params / 1e6) == millions


@pytest.mark.parametrize(("plain", "bn"), [("vgg11", "vgg11_bn"), ("vgg13", "vgg13_bn"),
                                           ("vgg16", "vgg16_bn"), ("vgg19", "vgg19_bn")])
def test_vgg_bn_adds_exactly_the_batch_norms(plain: str, bn: str) -> None:
    # each BN on C channels: 2C parameters (γ, β) and 2C + 1 buffers (mean, var, counter)
    a, b = archcalc.analyze(plain), archcalc.analyze(bn)
    channels = [s[0] for s in _conv_shapes(a)]
    assert b.totals.params - a.totals.params == sum(2 * c for c in channels)
    assert b.totals.counts.buffers == sum(2 * c + 1 for c in channels)
    assert b.totals.macs == a.totals.macs


# -- every spec in specs/ --------------------------------------------------------------------

ALL_SPECS = sorted(specs_dir().glob("*.arch"))


@pytest.mark.parametrize("path", ALL_SPECS, ids=[p.stem for p in ALL_SPECS])
def test_every_spec_analyzes_and_cites_its_source(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("#") and first.lstrip("# ").strip(), "the first line must cite the source"
    assert len(first) <= 100, "keep the first line short: 'archcalc list' shows it"
    a = archcalc.analyze(path.stem)
    assert a.totals.params > 0
    assert len(a.graph) > 1


def test_the_classic_specs_are_all_there() -> None:
    mine = {"lenet5", "alexnet", "alexnet-paper", "vgg11", "vgg11-lrn", "vgg13", "vgg16-c", "vgg16",
            "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"}
    assert mine <= {p.stem for p in ALL_SPECS}
