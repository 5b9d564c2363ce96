"""Counting conventions: each tool's figure reproduced to the unit from archcalc's per-layer facts.

The figures are the tools' own, recorded with their versions in tests/reference/peer_reference.json
(torchinfo 1.8.0, fvcore 0.1.5.post20221221, ptflops 0.7.5 with both backends, thop
0.1.1.post2209072238, FlopCounterMode of torch 2.14.1 on torchvision 0.29.1's models) and
peer_reference_tf.json (TensorFlow 2.21's profiler on Keras 3.15's models); peer_conventions.md
says how each was measured and what each tool counts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import archcalc
from archcalc import zoo
from archcalc.passes import conventions
from archcalc.passes.analysis import Analysis

REFERENCE = Path(__file__).parent / "reference"
PEERS = json.loads((REFERENCE / "peer_reference.json").read_text())["models"]
TF = json.loads((REFERENCE / "peer_reference_tf.json").read_text())["models"]

# the tools' names in the reference file
TOOL_KEYS = {"torchinfo": "torchinfo", "fvcore": "fvcore", "ptflops": "ptflops", "ptflops-aten": "ptflops_aten",
             "thop": "thop"}

# archcalc spec -> the reference model it is
TORCH_MODELS = {
    "resnet50": "resnet50",
    "mobilenet_v2": "mobilenet_v2",
    "densenet121": "densenet121",
    "squeezenet1_0": "squeezenet1_0",
    "examples/torchvision-vgg16": "vgg16",
    "examples/lstm-net": "lstm_net",
    "examples/emb-conv-bn-net": "emb_conv_bn_net",
    "efficientnet_b0": "efficientnet_b0",  # issue 14's spec, on main: SiLU, sigmoid gates, stochastic depth
}

_PARAMS = [pytest.param(spec, ref, id=spec) for spec, ref in TORCH_MODELS.items()]


_CACHE: dict[str, Analysis] = {}


def analysis(spec: str) -> Analysis:
    if spec not in _CACHE:
        _CACHE[spec] = archcalc.analyze(spec)
    return _CACHE[spec]


@pytest.mark.parametrize(("spec", "ref"), _PARAMS)
@pytest.mark.parametrize("convention", list(TOOL_KEYS))
def test_each_tool_total_to_the_unit(spec: str, ref: str, convention: str) -> None:
    counted = analysis(spec).conventions[convention]
    assert counted.total == PEERS[ref]["totals"][TOOL_KEYS[convention]]


@pytest.mark.parametrize(("spec", "ref"), _PARAMS)
@pytest.mark.parametrize("convention", list(TOOL_KEYS))
def test_each_tool_parameter_count(spec: str, ref: str, convention: str) -> None:
    """thop drops the parameters of modules it has no rule for (the embeddings); ptflops counts the
    trainable ones; the others count them all."""
    assert analysis(spec).conventions[convention].params == PEERS[ref]["params_by_tool"][TOOL_KEYS[convention]]


@pytest.mark.parametrize(("spec", "ref"), _PARAMS)
def test_pytorch_convention_is_flop_counter_mode(spec: str, ref: str) -> None:
    a = analysis(spec)
    fc = PEERS[ref]["flop_counter"]
    assert a.conventions["pytorch"].total == a.totals.macs
    if "macs_mkldnn_disabled" in fc:  # the CPU LSTM: 0 to FlopCounterMode, said by name
        assert a.totals.macs == fc["macs_mkldnn_disabled"] != fc["macs"]
        assert any("nn.LSTM as 0 on CPU" in c.text for c in a.conventions["pytorch"].caveats)
    else:
        assert a.totals.macs == fc["macs"]


@pytest.mark.parametrize(("spec", "ref"), [p for p in _PARAMS if "lstm" not in p.values[0]])
def test_torchinfo_layer_by_layer(spec: str, ref: str) -> None:
    """torchinfo's rows (one per leaf module call, in call order) against archcalc's layers, in order:
    every non-zero row is one layer's figure."""
    a = analysis(spec)
    counted = a.conventions["torchinfo"]
    ours = [v for v in counted.values if v]
    rows = [r["macs"] for r in PEERS[ref]["torchinfo"]["layers"] if r["leaf"] and r["executed"] and r["macs"]]
    assert ours == rows


def test_mobilenet_v2_spread_is_explained() -> None:
    """The issue's numbers: FlopCounterMode/2 300,774,272; torchinfo +0.01 %, fvcore +4.46 %, ptflops
    +6.49 %, thop +8.88 %."""
    a = analysis("mobilenet_v2")
    pct = {name: round(100 * (c.total - a.totals.macs) / a.totals.macs, 2) for name, c in a.conventions.items()
           if c.unit == conventions.MACS}
    assert a.totals.macs == 300_774_272
    assert (pct["torchinfo"], pct["fvcore"], pct["ptflops"], pct["thop"]) == (0.01, 4.46, 6.49, 8.88)


def test_explain_diff_mobilenet_fvcore() -> None:
    """fvcore − FlopCounterMode = BatchNorm 2·elements over 52 norms + the pool's input elements."""
    a = analysis("mobilenet_v2")
    d = conventions.diff(a.graph, a.conventions["pytorch"], a.conventions["fvcore"])
    rows = {r.layer_type: r for r in d.rows}
    assert set(rows) == {"bn", "adaptive-avgpool"}
    assert (rows["bn"].layers, rows["bn"].diff, rows["bn"].rule_b) == (52, 13_356_224, "2·elements")
    assert rows["adaptive-avgpool"].diff == 62_720
    assert d.total_b - d.total_a == 314_193_216 - 300_774_272
    assert round(d.percent(d.total_b - d.total_a), 4) == 4.4615


def test_explain_diff_ptflops_names_bn_relu6_and_bias() -> None:
    a = analysis("mobilenet_v2")
    d = conventions.diff(a.graph, a.conventions["pytorch"], a.conventions["ptflops"])
    assert [r.layer_type for r in d.rows][:2] == ["bn", "relu6"]
    assert {r.layer_type for r in d.rows} == {"bn", "relu6", "fc", "adaptive-avgpool"}
    assert sum(r.diff for r in d.rows) == 320_300_008 - 300_774_272


# -- TensorFlow's profiler on Keras' models ------------------------------------------------------

KERAS = {
    "vgg16": "vgg16",  # the paper's configuration with its softmax is Keras' VGG16
    "examples/keras-resnet50": "resnet50",
    "examples/keras-mobilenet_v2": "mobilenet_v2",
    "examples/keras-densenet121": "densenet121",
}


@pytest.mark.parametrize(("spec", "ref"), list(KERAS.items()))
def test_tf_profiler_total_float_ops(spec: str, ref: str) -> None:
    a = analysis(spec)
    tf = a.conventions["tf-profiler"]
    assert tf.unit == conventions.FLOPS
    assert tf.total == TF[ref]["tf_total_float_ops"]
    assert a.totals.macs == TF[ref]["graph_macs"]
    assert tf.params == TF[ref]["keras_params"]
    assert not tf.caveats


def test_tf_profiler_names_what_it_cannot_reproduce() -> None:
    """Keras' LSTM runs in a while loop whose body TF counts once: no per-layer rule gives 443,216."""
    tf = analysis("examples/lstm-net").conventions["tf-profiler"]
    assert tf.total != TF["lstm_net"]["tf_total_float_ops"]
    assert any("while-loop body once" in c.text for c in tf.caveats)
    grouped = archcalc.analyze("input 8x8x8\nconv3-8/g2").conventions["tf-profiler"]
    assert any("grouped (not depthwise) Conv2D" in c.text for c in grouped.caveats)


# -- what per-layer facts cannot see is said by name ---------------------------------------------


def test_ptflops_names_its_assumptions() -> None:
    """ptflops counts torch.add but not +, and scales its functional part with the batch."""
    counted = analysis("resnet50").conventions["ptflops"]
    texts = " ".join(counted.notes)
    assert "Python operators" in texts and "functional part N times" in texts
    assert next(c for c in counted.caveats if c.layer_type == "add").layers  # the residual adds, by id


def test_functional_calls_count_differently() -> None:
    """`/functional` (F.relu, F.adaptive_avg_pool2d) changes what ptflops and thop count, nothing else."""
    module = archcalc.analyze("input 8x4x4\nconv3-8, relu, gap")
    function = archcalc.analyze("input 8x4x4\nconv3-8, relu/functional, gap/functional")
    assert module.totals == function.totals
    for name in ("pytorch", "torchinfo", "fvcore", "ptflops-aten", "tf-profiler"):
        assert module.conventions[name].total == function.conventions[name].total
    assert module.conventions["ptflops"].total - function.conventions["ptflops"].total == 128 + 128
    assert module.conventions["thop"].total - function.conventions["thop"].total == 8 * (16 + 1)


def test_a_layer_type_without_a_rule_is_named_never_silent() -> None:
    """Every node a convention has no rule for is counted as its MACs and listed in a caveat."""
    for spec in zoo.names():
        a = archcalc.analyze(spec)
        for counted in a.conventions.values():
            unruled = {i for i, rule in enumerate(counted.rules) if rule == "MACs (no rule)"}
            named = {i for c in counted.caveats if "no rule" in c.text for i in c.layers}
            assert unruled == named, (spec, counted.name)


def test_lenet_own_modules_are_named_for_the_hooking_tools() -> None:
    counted = analysis("lenet5-paper").conventions["ptflops"]
    assert {c.layer_type for c in counted.caveats if "no rule" in c.text} >= {"table-conv", "subsampling"}


def test_paper_convention_is_conv_and_fc_multiply_adds() -> None:
    a = analysis("resnet50")
    assert a.conventions["paper"].total == a.totals.macs  # every MAC of a CNN is a conv's or an FC's
    lstm = analysis("examples/lstm-net").conventions["paper"]
    assert lstm.total == 1_280 and any("left out" in c.text for c in lstm.caveats)


def test_registry_states_each_rule() -> None:
    assert set(conventions.names()) == {"pytorch", "paper", "torchinfo", "fvcore", "ptflops", "ptflops-aten", "thop",
                                         "tf-profiler"}
    for c in conventions.CONVENTIONS.values():
        assert len(c.rule) > 80 and c.tool, c.name


def test_unknown_convention_is_a_usage_error() -> None:
    from archcalc.errors import UsageError

    with pytest.raises(UsageError, match="unknown convention 'flops'.*one of pytorch"):
        conventions.get("flops")
