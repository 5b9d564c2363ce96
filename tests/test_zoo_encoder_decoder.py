"""Encoder–decoders (U-Net, a convolutional autoencoder) and torchvision's segmentation heads
(FCN-ResNet50, DeepLabV3- and LR-ASPP-MobileNetV3-Large) equal PyTorch to the unit.

Every figure is asserted against tests/reference/zoo2_reference.json (measured with PyTorch by
tools/zoo2_reference.py, described in zoo2_notes.md): parameters, weights, biases, buffers,
FlopCounterMode FLOPs, the output shape, every leaf module's class and output shape in forward
order, and each functional resize (the segmentation models' F.interpolate calls, nodes here).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

import archcalc
from archcalc.passes.analysis import Analysis

ZOO2 = json.loads((Path(__file__).parent / "reference" / "zoo2_reference.json").read_text())["models"]

# reference key → (spec, input); the segmentation models are measured at 520 and at 224
MODELS = {
    "conv_autoencoder": ("conv_autoencoder", None),
    "unet": ("unet", None),
    "fcn_resnet50": ("fcn_resnet50", None),
    "fcn_resnet50@224": ("fcn_resnet50", (3, 224, 224)),
    "deeplabv3_mobilenet_v3_large": ("deeplabv3_mobilenet_v3_large", None),
    "deeplabv3_mobilenet_v3_large@224": ("deeplabv3_mobilenet_v3_large", (3, 224, 224)),
    "lraspp_mobilenet_v3_large": ("lraspp_mobilenet_v3_large", None),
    "lraspp_mobilenet_v3_large@224": ("lraspp_mobilenet_v3_large", (3, 224, 224)),
}
SEGMENTATION = {"fcn_resnet50", "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"}

# archcalc's layer type → the torch.nn class its leaf module is in the reference model
LEAF_CLASS = {"conv": "Conv2d", "convtranspose": "ConvTranspose2d", "bn": "BatchNorm2d", "relu": "ReLU",
              "hardswish": "Hardswish", "hardsigmoid": "Hardsigmoid", "sigmoid": "Sigmoid", "maxpool": "MaxPool2d",
              "adaptive-avgpool": "AdaptiveAvgPool2d", "dropout": "Dropout", "crop": "CenterCrop2d"}
FUNCTIONAL = {"input", "add", "concat", "mul"}  # torch.cat, +, * in the reference models' forward


@cache
def analysis(key: str) -> Analysis:
    spec, shape = MODELS[key]
    return archcalc.analyze(spec, shape)


def _output(ref: dict) -> tuple[int, ...]:
    out = ref["output"]
    return tuple(out["out"] if isinstance(out, dict) else out)


@pytest.mark.parametrize("key", list(MODELS))
def test_totals_equal_pytorch(key: str) -> None:
    ref, a = ZOO2[key], analysis(key)
    c = a.totals.counts
    ours = {"params": c.params, "weights": c.weights, "biases": c.biases, "buffers": c.buffers,
            "flops": a.totals.flops, "macs": a.totals.macs}
    assert ours == {k: ref[k] for k in ours}
    assert a.graph.input.shape == tuple(ref["input"])
    assert a.graph.output.shape == _output(ref)
    assert [n.id for n in a.graph.outputs()] == [a.graph.output.id]  # one head, nothing left dangling


@pytest.mark.parametrize("key", list(MODELS))
def test_every_leaf_module_in_forward_order_equals_pytorch(key: str) -> None:
    ref, a = ZOO2[key], analysis(key)
    functional = FUNCTIONAL | ({"upsample"} if MODELS[key][0] in SEGMENTATION else set())
    ours = [(LEAF_CLASS[n.type], n.shape) for n in a.graph if n.type not in functional]
    assert ours == [(cls, tuple(shape)) for _, cls, shape in ref["leaf_calls"]]


@pytest.mark.parametrize("key", [k for k in MODELS if MODELS[k][0] in SEGMENTATION])
def test_the_functional_resizes_are_nodes_with_pytorchs_shapes(key: str) -> None:
    # torchvision resizes with F.interpolate(mode="bilinear", align_corners=False) in forward
    ref, a = ZOO2[key], analysis(key)
    ours = [(n.in_shapes[0], n.shape, n.args["mode"], n.args["align_corners"]) for n in a.graph
            if n.type == "upsample"]
    assert ours == [(tuple(i), tuple(o), "bilinear", align) for _, i, o, (_, align) in ref["upsample_calls"]]
    assert all(a.flops(n.id) == 0 for n in a.graph if n.type == "upsample")  # FlopCounterMode: 0


@pytest.mark.parametrize("key", ["unet", "conv_autoencoder"])
def test_flops_of_every_layer_equal_pytorchs(key: str) -> None:
    # flops_by_leaf: FlopCounterMode per module, in forward order (the convolutions)
    ref, a = ZOO2[key], analysis(key)
    ours = [a.flops(n.id) for n in a.graph if n.type in ("conv", "convtranspose")]
    theirs = [ref["flops_by_leaf"][name] for name, cls, _ in ref["leaf_calls"] if cls.startswith("Conv")]
    assert ours == theirs


def test_unet_as_the_paper_draws_it() -> None:
    # Ronneberger et al. 2015, Fig. 1: 572 → 388, the contracting path 568, 280, 136, 64, 28, the
    # crops 4, 16, 40, 88 pixels in from each side
    a = analysis("unet")
    g = a.graph
    assert (g.input.shape, g.output.shape) == ((1, 572, 572), (2, 388, 388))
    named = {n.name: n for n in g if n.name}
    assert [named[f"e{k}"].shape[1] for k in range(1, 5)] == [568, 280, 136, 64]
    crops = [n for n in g if n.type == "crop"]
    assert [n.layer.offsets(n.args, n.in_shapes) for n in crops] == [(4, 4), (16, 16), (40, 40), (88, 88)]
    assert [n.shape for n in g if n.type == "convtranspose"] == [(512, 56, 56), (256, 104, 104), (128, 200, 200),
                                                                 (64, 392, 392)]
    assert a.totals.params == 31_030_658  # the closed form Σ(9·cin·cout + cout) + Σ(4·2C·C + C) + 64·2 + 2


def test_unet_output_units_see_188_to_204_input_pixels() -> None:
    # valid convolutions only: unit u's field starts at 16·⌊u/16⌋ (the deepest path moves in steps
    # of 16) and holds 188 or 204 pixels; the jump is 1 on average. Checked by gradients in
    # tests/test_rf_upsampling.py.
    rf = analysis("unet").rf[-1]
    assert (rf.size, rf.jump, rf.start, rf.period(0)) == ((204, 204), (1, 1), (0, 0), 16)
    assert [rf.window(0, u) for u in (0, 3, 4, 15, 16, 387)] == [(0, 187), (0, 187), (0, 203), (0, 203),
                                                                 (16, 203), (384, 571)]
    # the skips join the up-convolutions half a fine pixel off, alternately on either side
    assert not rf.aligned and "centers differ" in rf.why


def test_segmentation_specs_follow_the_input_size() -> None:
    # the final resize reads the input's size (upsample(@classifier, @input)): --input 3x224x224 works
    for key in ("fcn_resnet50@224", "deeplabv3_mobilenet_v3_large@224", "lraspp_mobilenet_v3_large@224"):
        assert analysis(key).graph.output.shape == (21, 224, 224)


def test_documented_parameter_counts_with_and_without_the_aux_head() -> None:
    # torchvision documents the aux-head variants; the specs leave the aux head out (aux_loss off)
    aux = json.loads((Path(__file__).parent / "reference" / "zoo2_reference.json").read_text())["aux_variants"]
    assert analysis("fcn_resnet50").totals.params == 32_957_013 != aux["fcn_resnet50_aux"]["params"] == 35_322_218
    # FCNHead(1024, 21) on layer3: 3×3 1024 → 256 + BN + 1×1 256 → 21 with bias
    assert 32_957_013 + 9 * 1024 * 256 + 2 * 256 + 256 * 21 + 21 == 35_322_218
    assert analysis("lraspp_mobilenet_v3_large").totals.params == 3_221_538  # torchvision's num_params
