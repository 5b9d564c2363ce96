"""Receptive fields through sequence layouts: embeddings, transposes, Conv1d over words, RNNs;
and `verify` sending token ids.

Kim 2014's filters see 3, 4 and 5 consecutive words (no padding: start 0, jump 1), max over
time makes the field global; every step of an LSTM sees the whole past, so it is global too.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

import archcalc
from archcalc.cli import cli
from archcalc.layers import GLOBAL
from archcalc.passes.receptive_field import RF, Profile, path_counts, receptive_fields
from tests.conftest import analyze_text


def words(field: RF | str) -> tuple[int, int, int]:
    """(r, jump, start) of a field with one position axis."""
    assert isinstance(field, RF) and field.rank == 1, field
    return field.size[0], field.jump[0], field.start[0]


def node_ids(graph: archcalc.LayerGraph, type_: str) -> list[int]:
    return [n.id for n in graph if n.type == type_]


@pytest.mark.parametrize("spec", ["textcnn", "textcnn-multichannel"])
def test_textcnn_filters_see_3_4_and_5_words(spec: str) -> None:
    a = archcalc.analyze(spec)
    convs = node_ids(a.graph, "conv")
    assert [words(a.rf[c]) for c in convs] == [(3, 1, 0), (4, 1, 0), (5, 1, 0)]
    # each position of the embedding (and of the transposed 300×T map) is its one word
    for n in a.graph:
        if n.type in ("input", "embedding", "add", "transpose"):
            assert words(a.rf[n.id]) == (1, 1, 0), n.text
    # max over time, and everything after it, sees the whole sentence
    pools = node_ids(a.graph, "adaptive-maxpool")
    (concat,) = node_ids(a.graph, "concat")
    assert all(a.rf[i] == GLOBAL for i in [*pools, concat, a.graph.output.id])


def test_textcnn_report_names_the_widest_filter() -> None:
    a = archcalc.analyze("textcnn")
    result = CliRunner().invoke(cli, ["report", "textcnn"])
    assert result.exit_code == 0, result.output
    assert "receptive field 5 (jump 1, start 0) at layer 10 relu" in result.output
    assert a.graph.node(10).inputs == (9,) and a.graph.node(9).text == "conv5-100/p0"


def test_rf_command_shows_five_words_one_path_each() -> None:
    graph = archcalc.load("textcnn")
    (conv5,) = [n.id for n in graph if n.text == "conv5-100/p0"]
    assert path_counts(graph, conv5) == (Profile(0, (1, 1, 1, 1, 1)),)
    assert path_counts(graph, conv5 - 3) == (Profile(0, (1, 1, 1, 1)),)  # conv4
    result = CliRunner().invoke(cli, ["rf", "textcnn", "--layer", str(conv5), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["rf"] == {"size": [5], "jump": [1], "start": [0], "center": [2], "aligned": True}
    assert data["paths"] == [{"axis": "l", "start": 0, "counts": [1, 1, 1, 1, 1]}]
    table = CliRunner().invoke(cli, ["rf", "textcnn"])  # default: the last layer before max over time
    assert table.exit_code == 0 and "l: RF 5, jump 1, start 0, center 2" in table.output


def test_recurrent_outputs_are_global() -> None:
    a = archcalc.analyze("lstm-lm")
    assert [n.type for n in a.graph] == ["input", "embedding", "dropout", "lstm", "dropout", "fc"]
    assert [words(a.rf[i]) for i in (0, 1, 2)] == [(1, 1, 0)] * 3
    assert [a.rf[i] for i in (3, 4, 5)] == [GLOBAL] * 3  # the per-step FC keeps what the LSTM saw
    for layer in ("rnn-8", "gru-8/bi", "lstm(hidden=8, layers=2, bidirectional=true)"):
        assert analyze_text(f"input 10x4\n{layer}\n").rf[1] == GLOBAL, layer


def test_fields_follow_the_layout_through_transposes() -> None:
    # conv3 pads 1: r 3, start −1; the per-step FC and the transposes keep it; a second conv3: r 5, start −2
    a = analyze_text("input 20\nembedding(vocab=50, dim=8), to-channels, conv3-6, to-sequence, fc-4, "
                     "to-channels, conv3-2\n")
    assert [n.layout for n in a.graph] == ["channels", "sequence", "channels", "channels", "sequence",
                                           "sequence", "channels", "channels"]
    assert [words(a.rf[n.id]) for n in a.graph] == [
        (1, 1, 0), (1, 1, 0), (1, 1, 0), (3, 1, -1), (3, 1, -1), (3, 1, -1), (3, 1, -1), (5, 1, -2)]
    assert path_counts(a.graph, 7) == (Profile(-2, (1, 2, 3, 2, 1)),)


def test_a_per_step_gate_on_a_sequence_is_not_a_broadcast_over_positions() -> None:
    # T×8 · T×1 (one gate per step, computed per step): every step keeps its 3 words;
    # read channels first, the feature axes (8 vs 1) would have looked like a broadcast
    a = analyze_text("input 12\nembedding(vocab=20, dim=8), to-channels, conv3-8, to-sequence\n"
                     "x = relu\nfc-1\ng = sigmoid\nmul(@x, @g)\n")
    assert a.graph.output.type == "mul" and a.graph.output.in_shapes == ((12, 8), (12, 1))
    assert words(a.rf[a.graph.output.id]) == (3, 1, -1)


def test_conv_over_words_agrees_with_the_gradient() -> None:
    """The oracle: a unit's gradient w.r.t. the embedding output is nonzero on exactly its words."""
    torch = pytest.importorskip("torch")
    from archcalc.pytorch.build import build, module_names, probe_input

    graph = archcalc.load("textcnn", params={"vocab": 50, "length": 12})
    names = module_names(graph)
    model = build(graph).double().eval()
    seen: dict[int, Any] = {}

    def grab(node: int) -> Any:
        def hook(_m: Any, _a: Any, out: Any) -> Any:
            seen[node] = out if node != 1 else out.detach().requires_grad_()
            return seen[node]
        return hook

    convs = node_ids(graph, "conv")
    for node in (1, *convs):
        model.get_submodule(names[node]).register_forward_hook(grab(node))
    model(probe_input(graph, 1))
    fields = receptive_fields(graph)
    for conv in convs:
        r, j, start = words(fields[conv])
        for unit in (0, 4):
            (grad,) = torch.autograd.grad(seen[conv][0, :, unit].sum(), seen[1], retain_graph=True)
            hits = grad[0].abs().sum(1).nonzero().flatten().tolist()  # T×F: positions first
            assert hits == list(range(start + unit * j, start + unit * j + r)), graph.node(conv).text


# -- verify: token ids -------------------------------------------------------------------------------


def test_probe_input_is_token_ids_below_the_vocabulary() -> None:
    torch = pytest.importorskip("torch")
    from archcalc.pytorch.build import probe_input

    ids = probe_input(archcalc.load("textcnn", params={"vocab": 7}), batch=64)
    assert ids.dtype == torch.long and tuple(ids.shape) == (64, 56)
    assert 0 <= int(ids.min()) and int(ids.max()) < 7
    x = probe_input(archcalc.load("lenet5"), batch=2)
    assert x.dtype == torch.float32 and tuple(x.shape) == (2, 1, 32, 32)


@pytest.mark.parametrize("spec, params", [
    ("textcnn", {"vocab": 100, "length": 20}),
    ("textcnn-multichannel", {"vocab": 100, "length": 20}),
    ("lstm-lm", {"vocab": 300, "hidden": 16, "steps": 9}),
])
def test_verify_sends_token_ids(spec: str, params: dict[str, int]) -> None:
    pytest.importorskip("torch")
    from archcalc.pytorch.verify import verify

    report = verify(archcalc.load(spec, params=params), "cpu", batch=3, runs=0)
    assert report.ok, report.failures
    # integer ids have no gradient: no receptive-field check downstream of an embedding
    assert not [c for c in report.checks if c.what == "rf"]


def test_embeddings_take_only_token_ids() -> None:
    torch = pytest.importorskip("torch")
    graph = archcalc.load("input 4\nembedding(vocab=10, dim=3)\n")
    node = graph.node(1)
    module = node.layer.torch_module(node.args, node.in_shapes, node.shape)
    assert type(module) is torch.nn.Embedding
    with pytest.raises(RuntimeError):
        module(torch.randn(1, 4))  # floats are an error, not silently wrapped into the vocabulary


def test_exported_textcnn_runs_on_token_ids() -> None:
    pytest.importorskip("torch")
    from archcalc.pytorch.export import export_source

    source = export_source(archcalc.load("textcnn", params={"vocab": 30}))
    assert "model(torch.randint(0, 30, (1, *Textcnn.input_shape)))" in source
    namespace: dict[str, Any] = {"__name__": "exported"}
    exec(compile(source, "exported.py", "exec"), namespace)  # noqa: S102 - our own generated file
    model = namespace["Textcnn"]().eval()
    assert tuple(model(namespace["torch"].randint(0, 30, (2, 56))).shape) == (2, 2)


def test_a_layout_change_must_match_the_tensors_layout() -> None:
    from archcalc import load_text
    from archcalc.errors import ShapeError

    with pytest.raises(ShapeError) as info:
        load_text("input 8\nembedding(vocab=100, dim=4), to-channels, to-channels\n", "t.arch")
    assert str(info.value) == (
        "t.arch:2:43: error: 'to-channels' needs a sequence (T×F), but 4×8 is channels first (C×…)\n"
        " 2 | embedding(vocab=100, dim=4), to-channels, to-channels\n"
        "   |                                           ^^^^^^^^^^^"
    )
    with pytest.raises(ShapeError, match="'last' needs a sequence"):
        load_text("input 8\nembedding(vocab=100, dim=4), to-channels, last\n", "t.arch")


def test_softmax_on_a_sequence_normalises_each_steps_features() -> None:
    torch = pytest.importorskip("torch")
    import archcalc

    model = archcalc.build("input 8\nembedding(vocab=100, dim=4), fc-3, softmax\n")
    out = model(torch.randint(0, 100, (2, 8)))
    assert out.shape == (2, 8, 3)
    assert torch.allclose(out.sum(-1), torch.ones(2, 8))
