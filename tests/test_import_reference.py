"""The torchvision round trips, without torchvision: the specs `archcalc import` wrote for every
torchvision classification model it can import (tests/reference/imported/*.arch) must give the
figures PyTorch measured for the models themselves (tests/reference/import_reference.json, made
by tools/import_reference.py): sum(p.numel()), buffers, FlopCounterMode's FLOPs, and the output
shape of every leaf-module call. One case per model, on the static path: no torch needed.
Where torch is installed, `verify` builds one committed spec per family and checks it again.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from archcalc import load_text
from archcalc.passes.analysis import analyze

HERE = Path(__file__).parent / "reference"
REFERENCE = json.loads((HERE / "import_reference.json").read_text())
MODELS = REFERENCE["models"]
FAMILIES = {"alexnet", "vgg11", "vgg16_bn", "resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2",
            "densenet121", "googlenet", "inception_v3", "squeezenet1_0", "squeezenet1_1", "mobilenet_v2",
            "mobilenet_v3_large", "mobilenet_v3_small", "mnasnet1_0", "shufflenet_v2_x1_0", "regnet_x_400mf",
            "regnet_y_400mf", "efficientnet_b0", "efficientnet_v2_s", "convnext_tiny", "vit_b_32", "swin_t"}
# the models of torchvision's classification zoo archcalc cannot import, and why (the reference records
# the import's own message for each)
LEFT_OUT = {
    "swin_v2_t": "ShiftedWindowAttentionV2: scaled cosine attention with an MLP's continuous position bias",
    "swin_v2_s": "the same",
    "swin_v2_b": "the same",
    "maxvit_t": "RelativePositionalMultiHeadAttention: attention over G×P×D partitions with einsum",
}
# small models the tool verified, built and verified again here where torch is installed
VERIFIED_IN_CI = ("alexnet", "resnet18", "densenet121", "googlenet", "squeezenet1_1", "mobilenet_v3_small",
                  "mnasnet0_5", "shufflenet_v2_x0_5", "regnet_x_400mf", "efficientnet_b0", "convnext_tiny")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_imported_spec_gives_the_models_figures(name: str) -> None:
    ref = MODELS[name]
    text = (HERE / ref["spec"]).read_text()
    a = analyze(load_text(text, f"{name}.arch"))
    assert list(a.graph.input.shape) == ref["input"]
    assert (a.totals.params, a.totals.counts.buffers, a.totals.flops) == (ref["params"], ref["buffers"], ref["flops"])
    assert not a.unknown_ops
    assert list(a.graph.output.shape) == ref["output"]
    shapes = [[path, list(a.graph.node(node).shape)] for path, node in ref["module_nodes"]]
    assert shapes == ref["leaf_calls"]  # every leaf-module call, in forward order, with PyTorch's shape
    assert ref["verify"]["ok"] in (True, None) and ref["onnx"]["ok"] in (True, False, None)


def test_the_round_trips_cover_the_torchvision_zoo() -> None:
    """Every family archcalc's layer types cover is there; one model of each was verified in PyTorch
    and taken through ONNX by the tool."""
    assert FAMILIES <= set(MODELS)
    assert REFERENCE["failed"] == {}  # no model whose import gave a figure other than PyTorch's
    assert set(MODELS) | set(REFERENCE["missing"]) == set(REFERENCE["zoo"])  # every model, imported or named
    assert len(REFERENCE["zoo"]) == 80 and len(MODELS) == 76
    verified = {n for n, r in MODELS.items() if r["verify"]["ok"]}
    assert verified >= set(VERIFIED_IN_CI) and len(verified) >= 15
    assert all(r["verify"]["ok"] in (True, None) for r in MODELS.values())
    onnx_ok = {n for n, r in MODELS.items() if r["onnx"]["ok"]}
    assert len(onnx_ok) >= 14 and {"alexnet", "vgg11_bn", "vit_b_32"} <= onnx_ok  # AlexNet and VGG at 224
    for name in onnx_ok:  # the file's initializers are the model's parameters and statistics
        r = MODELS[name]
        assert (r["onnx"]["params"], r["onnx"]["buffers"]) == (r["params"], r["buffers"]), name
        assert r["onnx"]["initializer_elements"] <= r["params"] + r["buffers"], name  # no batch counters
        if r["onnx"].get("input", r["input"]) == r["input"]:  # the ONNX file's FLOPs are the model's
            assert r["onnx"].get("flops", r["flops"]) == r["flops"], name
            assert r["onnx"].get("output", r["output"]) == r["output"], name
    for name, r in MODELS.items():  # an ONNX file that does not import names what it lacks
        if r["onnx"]["ok"] is False:
            assert r["onnx"].get("unknown") or r["onnx"].get("error"), name


def test_alexnet_and_vgg_round_trip_through_onnx_at_224() -> None:
    """At 64×64 their features end 1×1 and 2×2, and the exporter refuses the adaptive pool to 6×6 / 7×7;
    at 224 the pool is even. FlopCounterMode's FLOPs at 224, measured by the tool, and the figures of the
    imported file (the tool asserts they are equal)."""
    alexnet, vgg = MODELS["alexnet"]["onnx"], MODELS["vgg11_bn"]["onnx"]
    assert alexnet["input"] == vgg["input"] == [3, 224, 224] and alexnet["output"] == vgg["output"] == [1000]
    assert (alexnet["params"], alexnet["buffers"], alexnet["flops"]) == (61_100_840, 0, 1_428_376_960)
    assert (vgg["params"], vgg["buffers"], vgg["flops"]) == (132_868_840, 5_512, 15_218_180_096)
    assert vgg["initializer_elements"] == 132_868_840 + 5_512 - 8  # its 8 BatchNorms' batch counters


def test_swin_through_onnx_stops_on_its_window_partition() -> None:
    """Shape and Pow of constants are folded and a Pad of zeros is no node; what stops Swin-T's file is
    the first window partition, a Reshape that merges the windows into the batch axis, named so."""
    onnx = MODELS["swin_t"]["onnx"]
    assert onnx["ok"] is False and onnx["unknown"] == [["ONNX Reshape", 1]]
    assert "merges the batch with 64 windows" in onnx["reasons"][0]


def test_vit_through_onnx_reads_each_multihead_attention_as_one() -> None:
    """torch.onnx writes nn.MultiheadAttention sequence-first (a Transpose of the batch, MatMul/Reshape/
    Softmax arithmetic, a Transpose back); each is read as one attention/mha, the class token (an Expand
    of an initializer) as its free parameter: the file's figures are the model's, FLOPs included."""
    vit, onnx = MODELS["vit_b_32"], MODELS["vit_b_32"]["onnx"]
    assert onnx["ok"] is True and onnx["input"] == vit["input"] == [3, 224, 224]
    assert (onnx["params"], onnx["buffers"], onnx["flops"]) == (vit["params"], 0, vit["flops"]) == (
        88_224_232, 0, 8_818_372_608)


def test_what_is_missing_is_named() -> None:
    """The models archcalc cannot import yet, each with the operations it has no rule for and why."""
    missing = REFERENCE["missing"]
    assert set(missing) == set(LEFT_OUT)
    assert not set(missing) & set(MODELS)
    for name, entry in missing.items():
        assert entry.get("unknown") or entry.get("error"), name
    for name in ("swin_v2_t", "swin_v2_s", "swin_v2_b"):  # one module each, listed with the reason
        [[op, count]] = missing[name]["unknown"]
        assert op == "torchvision.models.swin_transformer.ShiftedWindowAttentionV2" and count in (12, 24)
        assert "cosine attention" in missing[name]["reasons"][0]
    assert missing["maxvit_t"]["unknown"] == [["torchvision.models.maxvit.RelativePositionalMultiHeadAttention", 22]]
    assert "partitions" in missing["maxvit_t"]["reasons"][0]


def test_swin_reads_torchvisions_window_attention_as_one_layer() -> None:
    """Swin V1's ShiftedWindowAttention is a leaf written as archcalc's windowed attention (shifted in
    every second block, its bias table and index buffer); its patch merging's pad-and-slice is one item."""
    text = (HERE / "imported" / "swin_t.arch").read_text()
    assert "attention/fused(heads={heads}, window=7, shift={shift}, rel_pos=true)" in text  # in the blocks
    calls = re.findall(r"^swin_transformer_block2?\((\d+), (\d+), [\d.]+\)", text, re.M)  # heads, shift, rate
    assert len(calls) == 12 and [shift for _, shift in calls].count("3") == 6
    assert "block patch_merging(c):\n    patch-merging, layernorm, fc-{c}/nobias\n" in text
    ref = MODELS["swin_t"]
    assert (ref["params"], ref["buffers"], ref["flops"]) == (28_288_354, 28_812, 8_981_133_312)
    assert ref["verify"]["ok"] is True


def test_a_resnet_comes_back_as_blocks() -> None:
    text = (HERE / "imported" / "resnet50.arch").read_text()
    body = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(body) < 40  # 175 layers
    assert "block layer(c, n):\n    bottleneck2({c})  # 0\n    bottleneck({c}) x{n}\n" in text
    assert "layer(128, 3)  # layer2\nlayer(256, 5)  # layer3\nlayer(512, 2)  # layer4\n" in text  # 4, 6, 3 blocks


@pytest.mark.torch
@pytest.mark.parametrize("name", VERIFIED_IN_CI)
def test_verify_passes_on_the_committed_spec(name: str) -> None:
    pytest.importorskip("torch")
    from archcalc.pytorch.verify import verify

    graph = load_text((HERE / MODELS[name]["spec"]).read_text(), f"{name}.arch")
    report = verify(graph, device="cpu", runs=0, rf=False)
    assert report.ok, report.failures[:3]
