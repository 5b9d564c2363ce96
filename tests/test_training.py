"""One training step: FLOPs per layer against FlopCounterMode, and what the backward pass keeps.

FLOPs: tests/reference/training_reference.json (torchvision and Hugging Face models, small hand
cases; torch 2.14.1) and training_specs_reference.json (the models archcalc builds from specs:
GRU, RNN, tied, shared, frozen, grouped). Where FlopCounterMode is wrong (a grouped convolution's
weight gradient, `groups` times too large) both figures are asserted: archcalc's, and
FlopCounterMode's reproduced from the per-layer breakdown.

Saved tensors: tests/reference/saved_tensors_reference.json, measured with
torch.autograd.graph.saved_tensors_hooks on the models archcalc builds and on torchvision's.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

import archcalc
from archcalc.passes import counting
from archcalc.passes.analysis import Analysis
from archcalc.passes.training import Training, TrainingOptions, cut_points, training

REFERENCE = Path(__file__).parent / "reference"
TRAIN = json.loads((REFERENCE / "training_reference.json").read_text())
CASES = TRAIN["cases"]
SPECS = json.loads((REFERENCE / "training_specs_reference.json").read_text())["cases"]
SAVED = json.loads((REFERENCE / "saved_tensors_reference.json").read_text())


def step(spec: str, shape: tuple[int, ...] | None = None, options: TrainingOptions | None = None) -> Training:
    g = archcalc.load(spec, shape)
    return training(g, counting.counts(g), counting.macs(g), options)


# a layer whose input requires grad is written after a position-bias (trained, no products)
HAND = {
    "conv2d_3_8_k3p1_in3x8x8_input_nograd": "input 3x8x8\nconv3-8",
    "conv2d_3_8_k3p1_in3x8x8_input_grad": "input 3x8x8\nposition-bias\nconv3-8",
    "conv2d_3_8_k3p1_frozen_weight_input_grad": "input 3x8x8\nposition-bias\nconv3-8/frozen",
    "conv2d_8_8_k3_g1_in8x8x8_input_grad": "input 8x8x8\nposition-bias\nconv3-8/p0",
    "conv2d_8_8_k3_g2_in8x8x8_input_grad": "input 8x8x8\nposition-bias\nconv3-8/p0/g2",
    "conv2d_8_8_k3_g2_in8x8x8_input_nograd": "input 8x8x8\nconv3-8/p0/g2",
    "conv2d_8_8_k3_g8_depthwise_in8x8x8_input_grad": "input 8x8x8\nposition-bias\nconv3-8/p0/g8",
    "conv2d_8_8_k3_g8_depthwise_in8x8x8_input_nograd": "input 8x8x8\nconv3-8/p0/g8",
    "conv_chain_frozen_middle_input_nograd": "input 3x8x8\nconv3-8, relu, conv3-8/frozen, relu, conv3-8",
    "linear_16_4_bias_input_grad": "input 16\nposition-bias\nfc-4",
    "linear_16_4_nobias_input_grad": "input 16\nposition-bias\nfc-4/nobias",
    "linear_16_4_bias_input_nograd": "input 16\nfc-4",
    "linear_16_4_bias_frozen_weight_input_grad": "input 16\nposition-bias\nfc-4/frozen",
    "matmul_1x6x8_1x8x5_both_grad": "input 6x8 as sequence\na = position-bias\nb = parameter(1x8x5)\nmatmul(@a, @b)",
    "matmul_1x6x8_1x8x5_a_grad_only": ("input 6x8 as sequence\na = position-bias\nb = parameter/frozen(1x8x5)\n"
                                       "matmul(@a, @b)"),
    "lstm_8_16_T5_input_nograd": "input 5x8 as sequence\nlstm(hidden=16)",
    "lstm_8_16_T5_input_grad": "input 5x8 as sequence\nposition-bias\nlstm(hidden=16)",
    "gpt2_style_attention_E128_h4_T64": """input 64x128 as sequence
position-bias
fc-384
q, k, v = chunk(3, dim=-1)
qh = reshape(@q, 64, 4, 32), permute(0, 2, 1, 3)
kh = reshape(@k, 64, 4, 32), permute(0, 2, 1, 3)
vh = reshape(@v, 64, 4, 32), permute(0, 2, 1, 3)
kt = transpose(@kh, -1, -2)
att = matmul(@qh, @kt), softmax(dim=-1)
matmul(@att, @vh), permute(0, 2, 1, 3), reshape(64, 128)
fc-128""",
}
ZOO = {
    "resnet18": ("resnet18", None),
    "mobilenet_v2": ("mobilenet_v2", None),
    "vgg11_64": ("examples/torchvision-vgg11", (3, 64, 64)),
    "lstm_lm": ("lstm-lm", None),
    "gpt2_small": ("examples/gpt2-2x128", None),
}


@pytest.mark.parametrize("case", list(HAND))
def test_hand_cases_against_flop_counter(case: str) -> None:
    t, ref = step(HAND[case]), CASES[case]
    assert t.forward == ref["fcm"]["forward"]
    assert t.flop_counter_step == ref["fcm"]["train"]
    assert t.step == ref["correct"]["train"]


@pytest.mark.parametrize("case", list(ZOO))
def test_zoo_training_step_against_flop_counter(case: str) -> None:
    spec, shape = ZOO[case]
    t, ref = step(spec, shape), CASES[case]
    assert t.forward == ref["fcm"]["forward"]
    assert t.flop_counter_step == ref["fcm"]["train"]
    assert t.step == ref["correct"]["train"]
    assert t.grad_weight == ref["correct"]["grad_weight"]
    assert t.flop_counter_excess == ref["correct"]["fcm_overcount"]


def test_mobilenet_v2_both_figures() -> None:
    """FlopCounterMode: 12,279,700,992 FLOPs (20.4× the forward); correct: 1,782,969,600 (2.96×). The
    17 depthwise convolutions carry the whole 10,496,731,392 over-count."""
    t = step("mobilenet_v2")
    assert (t.forward, t.step, t.flop_counter_step) == (601_548_544, 1_782_969_600, 12_279_700_992)
    over = [s for s in t.layers if s.flop_counter_backward != s.backward]
    assert len(over) == 17 and all("groups" in s.why for s in over)
    assert sum(s.flop_counter_backward - s.backward for s in over) == 10_496_731_392


@pytest.mark.parametrize("case", ["resnet18", "mobilenet_v2", "vgg11_64", "lstm_lm"])
def test_per_layer_rows(case: str) -> None:
    """Every product layer, in order: forward, input gradient (an LSTM's hidden-state gradient
    included), weight gradient, and FlopCounterMode's backward for it."""
    spec, shape = ZOO[case]
    t = step(spec, shape)
    ours = [(s.forward, s.grad_input, s.grad_weight, s.flop_counter_backward) for s in t.layers if s.forward]
    rows = [(r["forward"], r["terms"]["grad_input"] + r["terms"].get("grad_hidden", 0), r["terms"]["grad_weight"],
             r["fcm_formula_backward"]) for r in CASES[case]["layers"]]
    assert ours == rows


def test_first_layer_needs_no_input_gradient() -> None:
    t = step("resnet18")
    first = next(s for s in t.layers if s.forward)
    assert first.grad_input == 0 and first.grad_weight == first.forward


def test_gpt2_six_nt_beside_the_computed_step() -> None:
    """6·N·T with N = the parameters outside the embeddings: 152,371,200 against a computed
    212,729,856 (3 × forward: the LM head's product and attention's T² terms are what 6NT misses)."""
    t = step("examples/gpt2-2x128")
    ref = TRAIN["gpt2_6NT"]
    assert t.six_nt is not None
    assert (t.six_nt.n, t.six_nt.t) == (ref["N_nonembedding"], ref["T"])
    assert t.six_nt.value == ref["6NT_nonembedding"]
    assert t.step == ref["measured_train"] == 3 * t.forward
    assert step("resnet18").six_nt is None


@pytest.mark.parametrize("case", list(SPECS))
def test_specs_built_by_archcalc_against_flop_counter(case: str) -> None:
    """GRU, RNN, bidirectional, frozen embeddings and layers, ties, shared weights, free parameters,
    grouped convolutions, LeNet-5's table convolution: forward and FlopCounterMode's training step."""
    t, ref = step(SPECS[case]["spec"]), SPECS[case]
    assert t.forward == ref["forward"]
    assert t.flop_counter_step == ref["train"]
    assert not t.unknown


def test_grouped_conv_difference_is_stated_per_layer() -> None:
    t = step("input 8x8x8\nconv3-16/g4, bn, relu\nconv3-16/g16, relu6\nconv1-8/g2")
    rows = [s for s in t.layers if s.forward]
    assert [s.flop_counter_backward - s.backward for s in rows] == [3 * rows[0].grad_weight,
                                                                     15 * rows[1].grad_weight,
                                                                     1 * rows[2].grad_weight]
    assert [s.why for s in rows] == [f"FlopCounterMode counts the grouped weight gradient {g}× (groups={g})"
                                     for g in (4, 16, 2)]


def test_frozen_layers_get_no_weight_gradient() -> None:
    t = step("input 3x8x8\nconv3-8, relu, conv3-8/frozen, relu, conv3-8")
    convs = [s for s in t.layers if s.forward]
    assert [s.grad_weight > 0 for s in convs] == [True, False, True]
    assert [s.grad_input > 0 for s in convs] == [False, True, True]
    nothing = step("input 3x8x8\nconv3-8/frozen, relu, conv3-8")
    assert nothing.layers[1].in_backward is False and nothing.layers[3].grad_input == 0


@pytest.mark.torch
def test_flop_counter_live_on_the_built_model() -> None:
    """The installed torch's FlopCounterMode on archcalc's own model of a few specs, forward and backward."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    from archcalc.pytorch.build import build, probe_input

    for spec in ("input 8x8x8\nconv3-16/g4, bn, relu, conv3-16/g16, gap, fc-5",
                 "input 7\nembedding(vocab=20, dim=8)\ngru(hidden=8, layers=2)\nfc-3"):
        g = archcalc.load(spec)
        model = build(g).train()
        counter = FlopCounterMode(display=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # oneDNN's note about TF32 on Intel GPUs
            with torch.backends.mkldnn.flags(enabled=False), counter:
                model(probe_input(g, 1)).sum().backward()
        t = training(g, counting.counts(g), counting.macs(g))
        assert counter.get_total_flops() == t.flop_counter_step


# -- what the backward pass keeps ------------------------------------------------------------------


def _recurrent(rec: dict) -> bool:
    return any(n["type"] in ("rnn", "lstm", "gru") for n in rec["nodes"])


def _saved_cases() -> list:
    out = []
    for name, case in SAVED["cases"].items():
        for key in ("batch_1", "batch_2"):
            out.append(pytest.param(case["spec"], case[key], None, id=f"{name}-{key}"))
    for name, case in SAVED["zoo"].items():
        for key in ("batch_1", "batch_2"):
            out.append(pytest.param(name, case[key], tuple(case["input"]), id=f"{name}-{key}"))
    return out


@pytest.mark.parametrize(("spec", "rec", "shape"), _saved_cases())
def test_saved_tensors_per_layer_against_saved_tensors_hooks(spec: str, rec: dict, shape: tuple | None) -> None:
    """Per layer, the bytes of the storages it is the first to keep; in total, every storage once.
    CPU, float32: a dropout mask is float noise there. Recurrent layers at a batch above 1 keep a
    time-major copy of a strided input too, which archcalc names and does not count."""
    t = step(spec, shape, TrainingOptions(batch=rec["batch"], device="cpu"))
    measured = {n["id"]: n["new_bytes"] for n in rec["nodes"]}
    if rec["batch"] > 1 and _recurrent(rec):
        assert any("time-major copy" in note for note in t.notes)
        measured = {i: b for i, b in measured.items() if t.layers[i].in_backward
                    and rec["nodes"][[n["id"] for n in rec["nodes"]].index(i)]["type"] not in ("rnn", "lstm", "gru")}
        assert all(t.layers[i].saved_bytes == b for i, b in measured.items())
        return
    assert {i: t.layers[i].saved_bytes for i in measured} == measured
    assert t.saved_bytes == rec["unique_bytes"]


@pytest.mark.parametrize("name", list(SAVED["torchvision"]))
def test_saved_tensors_equal_torchvisions_own_model(name: str) -> None:
    """torchvision's models (in-place ReLUs and ReLU6s, their own forward code) keep exactly what
    archcalc's spec of them does."""
    tv = SAVED["torchvision"][name]
    for key in ("batch_1", "batch_2"):
        rec = tv[key]
        t = step(name, tuple(rec["input"]), TrainingOptions(batch=rec["batch"], device="cpu"))
        assert t.saved_bytes == rec["unique_bytes"]


def test_relu_after_conv_keeps_one_tensor() -> None:
    """conv → relu → conv: the ReLU's output is saved by the ReLU and by the next conv — once;
    the first conv's output is kept by nobody."""
    t = step("input 3x8x8\nconv3-8, relu, conv3-8")
    assert [len(s.kept) for s in t.layers] == [0, 1, 1, 1]
    assert t.saved_bytes == (3 + 8) * 64 * 4  # the image and the ReLU's output
    every_output = sum(4 * 8 * 64 for _ in range(3)) + 3 * 64 * 4
    assert t.saved_bytes < every_output


# -- memory terms ------------------------------------------------------------------------------------


def test_memory_terms_by_optimizer_and_precision() -> None:
    spec = "input 3x8x8\nconv3-8, bn, relu\nfc-10"
    g = archcalc.load(spec)
    counts = counting.counts(g)
    params = sum(c.params for c in counts)
    base = step(spec)
    assert (base.weight_bytes, base.gradient_bytes, base.optimizer_bytes, base.master_bytes) == (
        4 * params, 4 * params, 8 * params, 0)
    for optimizer, states in (("sgd", 0), ("momentum", 1), ("adam", 2), ("adamw", 2)):
        assert step(spec, options=TrainingOptions(optimizer)).optimizer_bytes == 4 * states * params
    mixed = step(spec, options=TrainingOptions("adam", "bf16"))
    assert (mixed.weight_bytes, mixed.master_bytes, mixed.gradient_bytes, mixed.optimizer_bytes) == (
        2 * params, 4 * params, 2 * params, 8 * params)
    assert mixed.saved_bytes < base.saved_bytes  # activations at 2 bytes; BN statistics stay fp32
    assert mixed.total_bytes == (mixed.weight_bytes + mixed.master_bytes + mixed.gradient_bytes
                                 + mixed.optimizer_bytes + mixed.buffer_bytes + mixed.kept_bytes
                                 + mixed.gradient_in_flight_bytes)


def test_frozen_parameters_have_no_gradient_or_state() -> None:
    t = step("input 16\nfc-8/frozen, relu\nfc-4")
    frozen, trained = t.layers[1], t.layers[3]
    assert frozen.weight_bytes == 4 * (16 * 8 + 8) and frozen.gradient_bytes == frozen.optimizer_bytes == 0
    assert trained.gradient_bytes == 4 * (8 * 4 + 4)


def test_checkpointing_keeps_segment_inputs_and_recomputes() -> None:
    t = step("vgg16", options=TrainingOptions(checkpoint=4))
    plain = step("vgg16")
    assert len(t.segments) == 4
    assert t.kept_bytes < plain.kept_bytes
    assert t.recompute == sum(s.forward for s in t.segments[:-1]) > 0 and t.segments[-1].forward == 0
    assert t.step == plain.step + t.recompute
    assert all(s.last + 1 == n.first for s, n in zip(t.segments, t.segments[1:]))
    assert step("resnet18", options=TrainingOptions(checkpoint="sqrt")).segments


def test_cut_points_are_where_one_tensor_crosses() -> None:
    g = archcalc.load("input 3x8x8\nconv3-8, relu\nresidual:\n    conv3-8, relu\n    conv3-8\nshortcut: identity\n"
                      "relu, gap, fc-2")
    cuts = cut_points(g)
    assert 2 in cuts  # after the first relu: the residual's input is the one tensor alive
    assert not {3, 4, 5} & set(cuts)  # inside the residual the shortcut's input is alive too


def test_analysis_carries_the_training_step() -> None:
    a: Analysis = archcalc.analyze("resnet18")
    assert a.step.step == CASES["resnet18"]["correct"]["train"]
