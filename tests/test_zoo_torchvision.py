"""The rest of torchvision's classification zoo and its video ResNet equal PyTorch to the unit.

Every figure is compared with tests/reference/zoo2_reference.json (measured with torchvision
0.29.1 by tools/zoo2_reference.py; tests/reference/zoo2_notes.md describes every model):
parameters, weights, biases, buffers (BatchNorm counters included), FlopCounterMode FLOPs, the
input and output shapes, and — leaf module by leaf module, in forward order — the layer type,
its output shape and its FLOPs. With torch installed, each leaf's torch module as archcalc
builds it prints as torchvision's does (kernel, stride, padding, groups, bias, BN eps and
momentum). Families (EfficientNet, MobileNetV3, ShuffleNetV2, RegNet, MNASNet) are one spec
each; tests/reference/zoo14_families.json holds members beyond the named ones, measured by
tools/zoo14_families.py, so every rounding rule is checked where it changes a width.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest

import archcalc
from archcalc.graph import LayerGraph, Node
from archcalc.passes.analysis import Analysis

HERE = Path(__file__).parent / "reference"
REFERENCE = json.loads((HERE / "zoo2_reference.json").read_text())["models"]

# reference key → (built-in spec, input shape given on the command line or None)
CASES: dict[str, tuple[str, tuple[int, ...] | None]] = {
    "mobilenet_v3_large": ("mobilenet_v3_large", None),
    "mobilenet_v3_small": ("mobilenet_v3_small", None),
    "efficientnet_b0": ("efficientnet_b0", None),
    "efficientnet_b1": ("efficientnet_b1", None),
    "efficientnet_b1@224": ("efficientnet_b1", (3, 224, 224)),
    "efficientnet_v2_s": ("efficientnet_v2_s", None),
    "efficientnet_v2_s@224": ("efficientnet_v2_s", (3, 224, 224)),
    "mnasnet1_0": ("mnasnet1_0", None),
    "shufflenet_v2_x0_5": ("shufflenet_v2_x0_5", None),
    "shufflenet_v2_x1_0": ("shufflenet_v2_x1_0", None),
    "squeezenet1_1": ("squeezenet1_1", None),
    "regnet_x_400mf": ("regnet_x_400mf", None),
    "regnet_y_400mf": ("regnet_y_400mf", None),
    "resnext101_32x8d": ("resnext101_32x8d", None),
    "r3d_18": ("r3d_18", None),
}

# torchvision's leaf module classes → archcalc's layer type
LEAF_TYPES = {
    "Conv2d": "conv", "Conv3d": "conv", "Conv3DSimple": "conv", "BatchNorm2d": "bn", "BatchNorm3d": "bn",
    "ReLU": "relu", "SiLU": "silu", "Sigmoid": "sigmoid", "Hardswish": "hardswish", "Hardsigmoid": "hardsigmoid",
    "AdaptiveAvgPool2d": "adaptive-avgpool", "AdaptiveAvgPool3d": "adaptive-avgpool", "MaxPool2d": "maxpool",
    "Linear": "fc", "Dropout": "dropout", "StochasticDepth": "stochastic-depth",
}
# what torchvision does functionally (no module): the merges, torch.flatten, x.mean([2, 3]),
# x.chunk(2, dim=1), channel_shuffle, the SE gate's multiply
FUNCTIONAL = {"input", "add", "concat", "mul", "flatten", "mean", "chunk", "channel-shuffle"}


@cache
def analysis(key: str) -> Analysis:
    spec, shape = CASES[key]
    return archcalc.analyze(spec, shape)


def leaves(graph: LayerGraph) -> list[Node]:
    """The nodes torchvision runs as leaf modules, in archcalc's (topological) order."""
    unexpected = {n.type for n in graph} - set(LEAF_TYPES.values()) - FUNCTIONAL
    assert not unexpected, f"node types with no torchvision counterpart: {unexpected}"
    return [n for n in graph if n.type in LEAF_TYPES.values()]


def reference(key: str) -> dict:
    ref = REFERENCE[key]
    if "leaf_calls" not in ref:  # an '@224' entry records totals; its layers are the full entry's
        ref = {**REFERENCE[key.split("@")[0]], **ref}
    return ref


@pytest.mark.parametrize("key", list(CASES))
def test_totals_equal_pytorch(key: str) -> None:
    a, ref = analysis(key), REFERENCE[key]
    c = a.totals.counts
    ours = {"params": c.params, "weights": c.weights, "biases": c.biases, "buffers": c.buffers,
            "flops": 2 * a.totals.macs, "macs": a.totals.macs}
    assert ours == {k: ref[k] for k in ours}
    assert a.graph.input.shape == tuple(ref["input"])
    assert a.graph.output.shape == tuple(ref["output"])
    assert [n.id for n in a.graph.outputs()] == [a.graph.output.id]  # one head, nothing left unused
    bns = sum(1 for n in a.graph if n.type == "bn")
    assert c.buffers - bns == ref["buffers_without_counters"]  # one num_batches_tracked per BN


@pytest.mark.parametrize("key", [k for k in CASES if "@" not in k])
def test_every_leaf_module_in_forward_order(key: str) -> None:
    """Type, output shape and FLOPs of every leaf call, in the order torchvision runs them."""
    a, ref = analysis(key), reference(key)
    ours = [(n.type, n.shape, 2 * a.macs[n.id]) for n in leaves(a.graph)]
    theirs = [(LEAF_TYPES[cls], tuple(shape), ref["flops_by_leaf"].get(path, 0))
              for path, cls, shape in ref["leaf_calls"]]
    assert len(ours) == len(theirs)
    for i, (x, y) in enumerate(zip(ours, theirs)):
        assert x == y, f"leaf {i} ({ref['leaf_calls'][i][0]}): archcalc {x}, torchvision {y}"


def _normal(text: str) -> str:
    """A module's repr without what does not change it: in-place flags, a size (3, 3) for 3."""
    text = re.sub(r"(, )?inplace=(True|False)", "", text).replace("Conv3DSimple(", "Conv3d(")
    text = re.sub(r"=\((\d+)(?:, \1)*\)", r"=\1", text)
    return "StochasticDepth()" if text.startswith("StochasticDepth(") else text  # torchvision prints no p


@pytest.mark.parametrize("key", [k for k in CASES if "@" not in k])
def test_each_leaf_is_torchvisions_module(key: str) -> None:
    pytest.importorskip("torch")
    a, ref = analysis(key), reference(key)
    modules = dict(ref["leaf_modules"])
    for n, (path, _, _) in zip(leaves(a.graph), ref["leaf_calls"]):
        built = repr(n.layer.torch_module(n.args, n.in_shapes, n.shape))
        assert _normal(built) == _normal(modules[path]), f"{path}: {n.text}"


def _blocks(key: str) -> list[dict]:
    return reference(key)["structure"]["blocks"]


@pytest.mark.parametrize("key", ["efficientnet_b0", "efficientnet_b1", "efficientnet_v2_s"])
def test_stochastic_depth_rates_are_torchvisions(key: str) -> None:
    # p = 0.2·i/N for block i of N; only blocks with a residual call theirs
    ps = [n.args["p"] for n in analysis(key).graph if n.type == "stochastic-depth"]
    assert ps == [b["stochastic_depth_p"] for b in _blocks(key) if b["residual"]]
    assert all(n.args["mode"] == "row" for n in analysis(key).graph if n.type == "stochastic-depth")


def test_shufflenet_shuffles_after_every_unit() -> None:
    g = analysis("shufflenet_v2_x1_0").graph
    shuffles = [n for n in g if n.type == "channel-shuffle"]
    assert len(shuffles) == 4 + 8 + 4 and all(n.args["groups"] == 2 for n in shuffles)
    assert all(g.node(n.inputs[0]).type == "concat" for n in shuffles)
    assert REFERENCE["shufflenet_v2_x1_0"]["aten_ops"]["aten.transpose.int"] == len(shuffles)


@pytest.mark.parametrize("key", ["mobilenet_v3_large", "mobilenet_v3_small", "efficientnet_b0",
                                 "efficientnet_v2_s", "regnet_y_400mf", "mnasnet1_0", "resnext101_32x8d"])
def test_residual_adds_and_gates_are_torchvisions(key: str) -> None:
    g, ops = analysis(key).graph, REFERENCE[key]["aten_ops"]
    adds = sum(1 for n in g if n.type == "add")
    assert adds == ops.get("aten.add_.Tensor", 0) + ops.get("aten.add.Tensor", 0)
    assert sum(1 for n in g if n.type == "mul") == ops.get("aten.mul.Tensor", 0)


def test_torchvisions_documented_figures() -> None:
    # torchvision's model tables: num_params, and "GFLOPS" that are multiply-accumulates
    for key in CASES:
        documented = REFERENCE[key].get("documented")
        if not documented or "@" in key:
            continue
        a = analysis(key)
        assert a.totals.params == documented["num_params"], key
        assert round(a.totals.macs / 1e9, 3) == documented["_ops"], key


# -- the families' other members: each a --set away ----------------------------------------------

FAMILIES = json.loads((HERE / "zoo14_families.json").read_text())["models"]


@pytest.mark.parametrize("key", list(FAMILIES))
def test_family_members_equal_torchvision(key: str) -> None:
    ref = FAMILIES[key]
    a = archcalc.analyze(ref["spec"], tuple(ref["input"]), params=ref["params_set"])
    c = a.totals.counts
    ours = {"params": c.params, "weights": c.weights, "biases": c.biases, "buffers": c.buffers,
            "flops": 2 * a.totals.macs}
    assert ours == {k: ref[k] for k in ours}
    assert a.graph.output.shape == tuple(ref["output"])
    assert [n.shape for n in a.graph if n.type == "conv"] == [tuple(s) for s in ref["conv_shapes"]]


def test_channel_shuffle_is_torchvisions_view_transpose() -> None:
    torch = pytest.importorskip("torch")
    g = archcalc.load("input 12x3x3\nchannel-shuffle(groups=3)\n")
    n = g.output
    module = n.layer.torch_module(n.args, n.in_shapes, n.shape)
    x = torch.randn(2, 12, 3, 3)
    # torchvision's models/shufflenetv2.py channel_shuffle
    b, c, h, w = x.shape
    expected = x.view(b, 3, c // 3, h, w).transpose(1, 2).contiguous().view(b, -1, h, w)
    assert torch.equal(module(x), expected)
    assert n.shape == (12, 3, 3) and archcalc.analyze("input 12x3x3\nchannel-shuffle(groups=3)\n").totals.params == 0


@pytest.mark.parametrize("text, message", [
    ("input 6x4x4\nchannel-shuffle(groups=4)\n",
     "cannot apply 'channel-shuffle(groups=4)' to 6×4×4: groups=4 must divide the input channels (6)"),
    ("input 6\nchannel-shuffle(groups=2)\n",
     "cannot apply 'channel-shuffle(groups=2)' to 6: channel-shuffle needs channels and positions (C×H×W, C×L, …), "
     "got 6"),
    ("input 6x4x4\nchannel-shuffle\n", "'channel-shuffle' needs the argument 'groups'"),
    ("input 6x4x4\nstochastic-depth(p=1.5)\n",
     "cannot apply 'stochastic-depth(p=1.5)' to 6×4×4: stochastic-depth probability p=1.5 is not between 0 and 1"),
    ("input 6x4x4\nstochastic-depth(p=0.1, mode=col)\n",
     "argument 'mode' of 'stochastic-depth' must be a word, not 'col' (one of row, batch)"),
    ("input 6x4x4\nstochastic-depth\n", "'stochastic-depth' needs the argument 'p'"),
])
def test_shuffle_and_stochastic_depth_errors(text: str, message: str) -> None:
    from archcalc.errors import SpecError

    with pytest.raises(SpecError) as info:
        archcalc.load_text(text, "t.arch")
    assert str(info.value).splitlines()[0] == f"t.arch:2:1: error: {message}"


def test_shuffle_and_stochastic_depth_count_nothing_and_keep_the_field() -> None:
    text = ("input 8x16x16\n"
            "conv3-8/s2, channel-shuffle2, stochastic-depth(p=0.3), drop-path(p=0.1, mode=batch), shuffle/g4\n")
    a = archcalc.analyze(text)
    conv, *rest = [n for n in a.graph if n.type != "input"]
    assert [n.type for n in rest] == ["channel-shuffle", "stochastic-depth", "stochastic-depth", "channel-shuffle"]
    for n in rest:
        assert (a.counts[n.id].params, a.counts[n.id].buffers, a.macs[n.id], a.other_ops[n.id].total) == (0, 0, 0, 0)
        assert a.rf[n.id] == a.rf[conv.id] and n.shape == conv.shape
