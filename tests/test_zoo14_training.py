"""One training step through the layer types that go up in resolution, and squeeze-and-excitation.

Against tests/reference/zoo14_training_reference.json (tools/zoo14_training_reference.py, torch
2.14.1): FlopCounterMode over forward and backward of the model archcalc builds, and, per layer,
the bytes of the storages torch.autograd.graph.saved_tensors_hooks sees it keep first, at batch 1
and 2. The `squeeze-excitation` layer against torchvision.ops.SqueezeExcitation itself (its
parameters by name, its leaf modules in call order, its FLOPs forward and backward) and against
the same block written by hand (every figure equal).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import archcalc
from archcalc.layers import GLOBAL
from archcalc.passes import counting
from archcalc.passes.training import Training, TrainingOptions, training

REFERENCE = json.loads((Path(__file__).parent / "reference" / "zoo14_training_reference.json").read_text())
CASES = REFERENCE["cases"]
NEW_TYPES = {"convtranspose", "upsample", "pixel-shuffle", "pixel-unshuffle", "maxunpool", "crop", "instancenorm",
             "squeeze-excitation"}


def step(spec: str, options: TrainingOptions | None = None) -> Training:
    g = archcalc.load(spec)
    return training(g, counting.counts(g), counting.macs(g), options)


@pytest.mark.parametrize("case", list(CASES))
def test_flop_counter_over_forward_and_backward(case: str) -> None:
    t, ref = step(CASES[case]["spec"]), CASES[case]["fcm"]
    assert not t.unknown, t.unknown
    assert t.forward == ref["forward"]
    assert t.flop_counter_step == ref["train"]


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("batch", [1, 2])
def test_saved_tensors_per_layer(case: str, batch: int) -> None:
    rec = CASES[case][f"batch_{batch}"]
    t = step(CASES[case]["spec"], TrainingOptions(batch=batch, device="cpu"))
    measured = {n["id"]: n["new_bytes"] for n in rec["nodes"]}
    assert {i: t.layers[i].saved_bytes for i in measured} == measured
    assert t.saved_bytes == rec["unique_bytes"]


def test_every_new_layer_type_is_measured() -> None:
    """Each layer type of this issue appears in some measured case (so each rule is asserted)."""
    seen = {n["type"] for c in CASES.values() for n in c["batch_1"]["nodes"]}
    assert NEW_TYPES <= seen


def test_grouped_transposed_conv_is_over_counted_by_flop_counter() -> None:
    """FlopCounterMode counts a grouped transposed convolution's weight gradient `groups` times
    (depthwise, groups 4: 12,800 FLOPs of backward for 3,200 of weight gradient); archcalc's step
    counts it once and names the difference (per-layer figures are FLOPs)."""
    t = step(CASES["convtranspose_depthwise_first"]["spec"])
    (layer,) = [s for s in t.layers if s.forward]
    assert (layer.forward, layer.grad_input, layer.grad_weight) == (3_200, 0, 3_200)
    assert layer.flop_counter_backward == 12_800 and "groups" in layer.why
    assert layer.forward + layer.flop_counter_backward == CASES["convtranspose_depthwise_first"]["fcm"]["train"]
    assert t.step == 6_400


# -- squeeze-and-excitation as one layer ---------------------------------------------------------

SE_SPECS = {  # torchvision reference → the layer, on a 16×5×5 input
    "se_16_8_relu_sigmoid": "se-8",
    "se_16_8_relu_hardsigmoid": "se-8/hardsigmoid",
    "se_16_4_silu_sigmoid": "squeeze-excitation(squeeze=4, act=silu)",
}


@pytest.mark.parametrize("name", list(SE_SPECS))
def test_squeeze_excitation_equals_torchvision(name: str) -> None:
    ref = REFERENCE["torchvision_se"][name]
    g = archcalc.load(f"input 16x5x5\nposition-bias\n{SE_SPECS[name]}")
    node = g.node(2)
    assert counting.counts(g)[2].params == ref["params"]
    assert node.layer.param_shapes(node.args, node.in_shapes, node.shape) == {
        k: tuple(v) for k, v in ref["state_dict"].items()}
    parts = node.layer.parts(node.args, node.in_shapes, node.shape)
    assert [(p.name, list(p.shape)) for p in parts] == [(c["name"], c["shape"]) for c in ref["leaf_calls"]]
    t = step(f"input 16x5x5\nposition-bias\n{SE_SPECS[name]}")
    assert t.forward == ref["forward_flops"]
    assert t.flop_counter_step == ref["train_flops"]


@pytest.mark.parametrize(("layer", "block"), [
    ("se-8", "gap(@a), conv1-8, relu, conv1-16, sigmoid"),
    ("se-8/hardsigmoid", "gap(@a), conv1-8, relu, conv1-16, hardsigmoid"),
    ("se-4/silu", "gap(@a), conv1-4, silu, conv1-16, sigmoid"),
])
def test_squeeze_excitation_equals_the_block_by_hand(layer: str, block: str) -> None:
    one = archcalc.analyze(f"input 16x7x7\na = conv3-16\n{layer}")
    hand = archcalc.analyze(f"input 16x7x7\na = conv3-16\ng = {block}\nmul(@a, @g)")
    assert one.totals == hand.totals
    assert one.rf[-1] == hand.rf[-1] == GLOBAL
    t1, t2 = step(f"input 16x7x7\na = conv3-16\n{layer}"), step(f"input 16x7x7\na = conv3-16\ng = {block}\nmul(@a, @g)")
    assert (t1.forward, t1.step, t1.flop_counter_step, t1.saved_bytes) == (
        t2.forward, t2.step, t2.flop_counter_step, t2.saved_bytes)


def test_squeeze_excitation_errors_are_positioned() -> None:
    from archcalc.errors import SpecError

    with pytest.raises(SpecError) as e:
        archcalc.load("input 16\nse-4")
    assert "squeeze-excitation needs a channels-first" in str(e.value)
    with pytest.raises(SpecError) as e:
        archcalc.load("input 16x5x5\nsqueeze-excitation(squeeze=4, gate=tanh)")
    assert "gate" in str(e.value) and "hardsigmoid" in str(e.value)


def test_squeeze_excitation_builds_as_torchvision_names_it() -> None:
    torch = pytest.importorskip("torch")
    from archcalc.pytorch.build import build

    g = archcalc.load("input 16x5x5\nconv3-16\nse-8/hardsigmoid")
    model = build(g)
    names = {k.split(".", 1)[1]: tuple(v.shape) for k, v in model.state_dict().items() if k.count(".") == 2}
    ref = REFERENCE["torchvision_se"]["se_16_8_relu_hardsigmoid"]["state_dict"]
    assert names == {k: tuple(v) for k, v in ref.items()}
    x = torch.randn(2, 16, 5, 5)
    se = list(model.children())[-1]
    assert torch.allclose(se(x), torch.nn.functional.hardsigmoid(
        se.fc2(torch.relu(se.fc1(x.mean((2, 3), keepdim=True))))) * x)
