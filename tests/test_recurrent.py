"""RNN, LSTM, GRU and embeddings: parameters in PyTorch's layout, MACs as FlopCounterMode counts
them, sequence shapes, and an FC applied per time step."""

from __future__ import annotations

from typing import Any

import pytest

import archcalc
from archcalc import load_text
from archcalc.errors import SpecError
from archcalc.layers import REGISTRY
from tests.conftest import analyze_text

# torch_reference.json "modules": nn.LSTM/GRU/RNN/Embedding parameter counts
MODULES = [
    ("lstm_300_128_layers2", "input 10x300\nlstm(hidden=128, layers=2)\n", 352_256),
    ("gru_300_128", "input 10x300\ngru(hidden=128)\n", 165_120),
    ("lstm_300_128_bidirectional", "input 10x300\nlstm-128/bi\n", 440_320),
    ("rnn_100_64", "input 10x100\nrnn-64\n", 10_624),
    ("embedding_10000_300", "input 10\nembedding10000x300\n", 3_000_000),
]


@pytest.mark.parametrize("key, text, params", MODULES, ids=[m[0] for m in MODULES])
def test_params_equal_pytorch_modules(key: str, text: str, params: int, torch_reference: dict) -> None:
    assert analyze_text(text).totals.params == params == torch_reference["modules"][key]["params"]


def test_pytorch_parameter_layout_per_layer_and_direction() -> None:
    # LSTM(300, 128, num_layers=2): layer 0 4·128·(300 + 128), layer 1 4·128·(128 + 128); 2·4·128 biases each
    a = analyze_text("input 10x300\nlstm(hidden=128, layers=2)\n")
    c = a.counts[1]
    assert (c.weights, c.biases) == (4 * 128 * 428 + 4 * 128 * 256, 2 * 2 * 4 * 128)
    # bidirectional, 2 layers: the second layer reads both directions, 2·128 features
    bi = analyze_text("input 7x300\nlstm(hidden=128, layers=2, bidirectional=true)\n").counts[1]
    assert bi.weights == 2 * 4 * 128 * (300 + 128) + 2 * 4 * 128 * (256 + 128)
    assert bi.biases == 2 * 2 * 2 * 4 * 128


def test_counts_equal_torch_numel_for_many_configurations() -> None:
    torch = pytest.importorskip("torch")
    cases = [(cls, f, h, layers, bi) for cls in ("RNN", "LSTM", "GRU") for f, h in ((3, 5), (17, 8))
             for layers in (1, 3) for bi in (False, True)]
    for cls, f, h, layers, bi in cases:
        module = getattr(torch.nn, cls)(f, h, num_layers=layers, bidirectional=bi)
        text = f"input 4x{f}\n{cls.lower()}(hidden={h}, layers={layers}, bidirectional={str(bi).lower()})\n"
        a = analyze_text(text)
        weights = sum(p.numel() for n, p in module.named_parameters() if n.startswith("weight"))
        biases = sum(p.numel() for n, p in module.named_parameters() if n.startswith("bias"))
        assert (a.counts[1].weights, a.counts[1].biases) == (weights, biases), text
        assert a.graph.output.shape == (4, h * (2 if bi else 1))


def test_macs_equal_flop_counter_with_the_unfused_kernel(torch_reference: dict) -> None:
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    ref = torch_reference["modules"]["lstm_300_128_layers2"]
    a = analyze_text("input 10x300\nlstm(hidden=128, layers=2)\n")
    # T·Σ_l 4·H·(F_l + H) = 10·(4·128·428 + 4·128·256)
    assert a.macs[1] == 10 * (4 * 128 * 428 + 4 * 128 * 256) == 3_502_080
    assert 2 * a.macs[1] == ref["flop_counter_flops_mkldnn_disabled"] == 7_004_160
    lstm = torch.nn.LSTM(300, 128, num_layers=2)
    mkldnn = torch.backends.mkldnn
    with mkldnn.flags(enabled=False, allow_tf32=mkldnn.allow_tf32), FlopCounterMode(display=False) as counter:
        lstm(torch.randn(10, 1, 300))
    assert counter.get_total_flops() == 2 * a.macs[1]


def test_archcalc_modules_are_counted_on_every_path() -> None:
    """The built modules run the unfused kernel themselves: FlopCounterMode sees their products."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    for text in ("input 6x9\nlstm(hidden=5, layers=2, bidirectional=true)\n", "input 6x9\ngru-7\n",
                 "input 6x9\nrnn(hidden=4, nonlinearity=relu)\n"):
        a = analyze_text(text)
        node = a.graph.node(1)
        module = node.layer.torch_module(node.args, node.in_shapes, node.shape)
        with FlopCounterMode(display=False) as counter:
            out = module(torch.randn(3, 6, 9))
        assert tuple(out.shape[1:]) == node.shape  # the output sequence only, batch first
        assert counter.get_total_flops() == 2 * 3 * a.macs[1], text


def test_specs_with_recurrent_layers_agree_with_torch() -> None:
    pytest.importorskip("torch")
    from archcalc.pytorch.verify import verify

    text = ("input 12x20\nrnn(hidden=6, layers=2, nonlinearity=relu, bidirectional=true), gru-5/bi, "
            "lstm(h=4, layers=3, dropout=0.2), last, fc-3\n")
    report = verify(load_text(text, "r.arch"), "cpu", batch=2, runs=0)
    assert report.ok, report.failures
    assert {c.what for c in report.checks} >= {"shape", "params", "weights", "biases", "flops"}


# -- sequences, layouts and the FC per time step ----------------------------------------------------


def test_lstm_language_model() -> None:
    a = archcalc.analyze("lstm-lm")
    assert [n.type for n in a.graph] == ["input", "embedding", "dropout", "lstm", "dropout", "fc"]
    assert [n.shape for n in a.graph][1:] == [(35, 650), (35, 650), (35, 650), (35, 650), (35, 10_000)]
    # 10,000·650 + 2·(4·650·(650 + 650) + 2·4·650) + 650·10,000 + 10,000
    assert a.totals.params == 6_500_000 + 2 * 3_385_200 + 6_510_000 == 19_780_400
    # every step: the LSTM's 6,760,000 weights and the FC's 6,500,000, 35 times
    assert a.totals.macs == 35 * (6_760_000 + 6_500_000)
    assert archcalc.analyze("lstm-lm", params={"hidden": 1500}).totals.params == 66_034_000


def test_lstm_lm_agrees_with_torch() -> None:
    pytest.importorskip("torch")
    from archcalc.pytorch.verify import verify

    graph = archcalc.load("lstm-lm", params={"vocab": 500, "hidden": 32, "steps": 7})
    report = verify(graph, "cpu", batch=2, runs=0)
    assert report.ok, report.failures


def test_fc_acts_per_time_step_only_on_sequences() -> None:
    seq = analyze_text("input 10x300\nlstm-64, fc-5\n")
    assert [n.type for n in seq.graph] == ["input", "lstm", "fc"]
    assert seq.graph.output.shape == (10, 5)
    assert (seq.counts[2].params, seq.macs[2]) == (64 * 5 + 5, 10 * 64 * 5)
    # position-wise layers keep the layout; `last` and channels-first tensors are flattened as before
    assert analyze_text("input 10x300\nlstm-64, dropout, relu, fc-5\n").graph.output.shape == (10, 5)
    assert analyze_text("input 10x300\nlstm-64, last, fc-5\n").graph.output.shape == (5,)
    cnn = analyze_text("input 3x8x8\nconv3-4, fc-5\n")
    assert [n.type for n in cnn.graph] == ["input", "conv", "flatten", "fc"]
    # the network's input is channels first: an FC on it flattens, as before
    assert [n.type for n in analyze_text("input 10x300\nfc-5\n").graph] == ["input", "flatten", "fc"]


def test_layout_follows_transposes() -> None:
    text = "input 20\nembedding(vocab=50, dim=8), to-channels, conv3-6, to-sequence, fc-4\n"
    a = analyze_text(text)
    assert [n.shape for n in a.graph] == [(20,), (20, 8), (8, 20), (6, 20), (20, 6), (20, 4)]
    flat = analyze_text("input 20\nembedding(vocab=50, dim=8), to-channels, conv3-6, fc-4\n")
    assert [n.type for n in flat.graph][-2:] == ["flatten", "fc"] and flat.graph.output.shape == (4,)


def test_embedding_frozen_is_a_buffer() -> None:
    torch = pytest.importorskip("torch")
    a = analyze_text("input 12\nembedding(vocab=100, dim=16, frozen=true)\n")
    assert (a.totals.params, a.totals.counts.buffers, a.totals.macs) == (0, 1_600, 0)
    assert analyze_text("input 12\nembed100x16/static\n").totals.counts.buffers == 1_600
    node = a.graph.node(1)
    module: Any = node.layer.torch_module(node.args, node.in_shapes, node.shape)
    assert not list(module.parameters()) and sum(b.numel() for b in module.buffers()) == 1_600
    ids = torch.tensor([[1, 5, 99]])
    assert torch.equal(module(ids), module.weight[ids])


def test_recurrent_other_ops_per_step() -> None:
    # LSTM, per step and layer: 13H adds, 3H multiplies, 3H sigmoids (e, +, ÷) and 2H tanhs (e, 2+, ÷)
    lstm = analyze_text("input 5x3\nlstm-2\n").other_ops[1]
    assert (lstm.adds, lstm.multiplies, lstm.exponentials, lstm.divisions) == (
        5 * (13 * 2 + 3 * 2 + 2 * 2 * 2), 5 * 3 * 2, 5 * 5 * 2, 5 * 5 * 2)
    relu = analyze_text("input 5x3\nrnn-2/relu\n").other_ops[1]
    assert (relu.adds, relu.comparisons, relu.exponentials) == (5 * 3 * 2, 5 * 2, 0)


# -- errors ---------------------------------------------------------------------------------------------

ERRORS = [
    ("input 10x300\nlstm(hidden=0)\n",
     "t.arch:2:1: error: argument 'hidden' of 'lstm' must be a whole number, not '0' (at least 1)"),
    ("input 10x300\ngru-16(layers=0)\n",
     "t.arch:2:1: error: argument 'layers' of 'gru' must be a whole number, not '0' (at least 1)"),
    ("input 3x32x32\nlstm-16\n",
     "t.arch:2:1: error: cannot apply 'lstm-16' to 3×32×32: 'lstm' reads a sequence T×F "
     "(time steps × features), got 3×32×32"),
    ("input 10x300\nrnn(hidden=8, nonlinearity=sigmoid)\n",
     "t.arch:2:1: error: argument 'nonlinearity' of 'rnn' must be a word, not 'sigmoid' (one of tanh, relu)"),
    ("input 10x300\nlstm(hidden=8, layers=2, dropout=1)\n",
     "t.arch:2:1: error: cannot apply 'lstm(hidden=8, layers=2, dropout=1)' to 10×300: "
     "dropout=1 between layers must be at least 0 and below 1"),
    ("input 3x32\nembedding(vocab=10, dim=4)\n",
     "t.arch:2:1: error: cannot apply 'embedding(vocab=10, dim=4)' to 3×32: 'embedding' reads a sequence "
     "of T token ids (an input such as 'input 56'), got 3×32"),
    ("input 10\nembedding(vocab=0, dim=4)\n",
     "t.arch:2:1: error: argument 'vocab' of 'embedding' must be a whole number, not '0' (at least 1)"),
    ("input 3x4x4\nlast\n",
     "t.arch:2:1: error: 'last' needs a sequence (T×F), but 3×4×4 is channels first (C×…)"),
    ("input 3x4x4\nto-channels\n",
     "t.arch:2:1: error: 'to-channels' needs a sequence (T×F), but 3×4×4 is channels first (C×…)"),
    ("input 3x4x4\ntranspose\n",
     "t.arch:2:1: error: cannot apply 'transpose' to 3×4×4: 'transpose' swaps the two axes of a T×F or "
     "F×T tensor, got 3×4×4"),
]


@pytest.mark.parametrize("text, message", ERRORS)
def test_errors_point_at_the_layer(text: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        load_text(text, "t.arch")
    assert str(info.value).splitlines()[0] == message


def test_one_layer_dropout_warns_as_pytorch_does() -> None:
    a = analyze_text("input 10x3\nlstm(hidden=4, dropout=0.5)\n")
    assert [w.message for w in a.warnings] == [
        "lstm(hidden=4, dropout=0.5): dropout between stacked layers does nothing with one layer"]


def test_registered_sequence_types() -> None:
    for name in ("rnn", "lstm", "gru", "embedding", "transpose", "last"):
        assert REGISTRY[name].example
    assert REGISTRY["lstm"].layout == REGISTRY["embedding"].layout == "sequence"
