"""LeNet-5 as published, Kim's text CNN, AlphaGo's policy network, spec parameters and
parameter sharing: every figure from the papers, by hand, or from PyTorch modules."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

import archcalc
from archcalc import load_text
from archcalc.cli import cli
from archcalc.errors import SpecError, UsageError
from tests.conftest import analyze_text

runner = CliRunner()


def layers_of(analysis: archcalc.passes.analysis.Analysis, *types: str) -> list[int]:
    return [n.id for n in analysis.graph if n.type in types]


def connections(analysis: archcalc.passes.analysis.Analysis, node_id: int) -> int:
    n = analysis.graph.node(node_id)
    return n.layer.connections(n.args, n.in_shapes, n.shape)


# -- LeNet-5 (LeCun et al. 1998, Sec. II.B) -----------------------------------------------------

# Table I of the paper: row i lists the C3 maps that read S2 map i ("X" marks)
TABLE_I = (
    "X---XXX--XXXX-XX",
    "XX---XXX--XXXX-X",
    "XXX---XXX--X-XXX",
    "-XXX--XXXX--X-XX",
    "--XXX--XXXX-XX-X",
    "---XXX--XXXX-XXX",
)


def test_lenet5_paper_connection_table_is_table_one() -> None:
    a = archcalc.analyze("lenet5-paper")
    (c3,) = layers_of(a, "table-conv")
    table = a.graph.node(c3).args["table"]
    grid = tuple("".join("X" if i in table[j] else "-" for j in range(16)) for i in range(6))
    assert grid == TABLE_I
    assert sorted(len(t) for t in table) == [3] * 6 + [4] * 9 + [6]  # 60 (S2, C3) map pairs
    # "The first six C3 feature maps take inputs from every contiguous subsets of three feature
    # maps in S2. The next six take input from every contiguous subset of four. The next three
    # take input from some discontinuous subsets of four. Finally, the last one takes input
    # from all S2 feature maps." (contiguous wraps around: 4, 5, 0)
    def contiguous(entry: tuple[int, ...]) -> bool:
        return any(set(entry) == {(s + i) % 6 for i in range(len(entry))} for s in range(6))

    assert {tuple(sorted(t)) for t in table[:6]} == {tuple(sorted((s + i) % 6 for i in range(3))) for s in range(6)}
    assert {tuple(sorted(t)) for t in table[6:12]} == {tuple(sorted((s + i) % 6 for i in range(4))) for s in range(6)}
    assert all(len(t) == 4 and not contiguous(t) for t in table[12:15]) and len(set(table[12:15])) == 3
    assert table[15] == (0, 1, 2, 3, 4, 5)


def test_lenet5_paper_trainable_parameters_and_connections_as_the_paper_states() -> None:
    a = archcalc.analyze("lenet5-paper")
    ids = layers_of(a, "conv", "subsampling", "table-conv", "fc", "rbf")
    names = ["C1", "S2", "C3", "S4", "C5", "F6", "output"]
    params = {name: a.counts[i].params for name, i in zip(names, ids, strict=True)}
    links = {name: connections(a, i) for name, i in zip(names, ids, strict=True)}
    assert params == {"C1": 156, "S2": 12, "C3": 1_516, "S4": 32, "C5": 48_120, "F6": 10_164, "output": 0}
    # the paper's connection counts (C5: "48,120 trainable connections"); F6's is its 10,164
    assert [links[n] for n in ("C1", "S2", "C3", "S4", "C5")] == [122_304, 5_880, 151_600, 2_000, 48_120]
    assert links["F6"] == 84 * 120 + 84 and links["output"] == 84 * 10
    assert a.totals.params == 60_000
    # the RBF centers are fixed ±1 bitmaps in the paper: not trainable, counted as buffers
    assert a.totals.counts.buffers == 840
    assert a.graph.depth() == 7  # "LeNet-5 comprises 7 layers, not counting the input"
    shapes = [a.graph.node(i).shape for i in ids]
    assert shapes == [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (120, 1, 1), (84,), (10,)]


def test_lenet5_paper_macs_and_other_ops() -> None:
    a = archcalc.analyze("lenet5-paper")
    c1, c3, c5 = layers_of(a, "conv", "table-conv")
    s2, s4 = layers_of(a, "subsampling")
    (rbf,) = layers_of(a, "rbf")
    # C3: 10·10 positions · 25 taps · 60 map pairs
    assert [a.macs[i] for i in (c1, c3, c5)] == [6 * 784 * 25, 100 * 25 * 60, 120 * 400]
    # subsampling: 3 adds per 2×2 sum + 1 bias add, 1 multiply per unit; no MACs
    assert a.macs[s2] == 0
    assert (a.other_ops[s2].adds, a.other_ops[s2].multiplies) == (6 * 196 * 4, 6 * 196)
    assert (a.other_ops[s4].adds, a.other_ops[s4].multiplies) == (16 * 25 * 4, 16 * 25)
    # RBF: 840 differences, 840 squares, 10·83 adds
    assert (a.macs[rbf], a.other_ops[rbf].adds, a.other_ops[rbf].multiplies) == (0, 840 + 830, 840)


def test_connections_column_and_json() -> None:
    table = runner.invoke(cli, ["report", "lenet5-paper", "--columns", "params,connections"])
    assert table.exit_code == 0, table.output
    assert "340,908" in table.output and "122,304" in table.output
    result = runner.invoke(cli, ["report", "lenet5-paper", "--format", "json"])
    data = json.loads(result.output)
    assert [x["connections"] for x in data["layers"] if x["params"]] == [
        122_304, 5_880, 151_600, 2_000, 48_120, 10_164]
    assert data["totals"]["connections"] == 122_304 + 5_880 + 151_600 + 2_000 + 48_120 + 10_164 + 840


def test_table_conv_torch_module_is_a_masked_dense_conv() -> None:
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    a = archcalc.analyze("lenet5-paper")
    node = a.graph.node(layers_of(a, "table-conv")[0])
    module: Any = node.layer.torch_module(node.args, node.in_shapes, node.shape)
    assert sum(p.numel() for p in module.parameters()) == 1_516
    # the same weights scattered into a dense 16×6×5×5 kernel, zero where Table I has no X
    dense = torch.zeros(16, 6, 5, 5)
    offset = 0
    for n, maps in module.groups:
        for j in maps:
            dense[j, list(node.args["table"][j])] = module.weight[offset : offset + n * 25].view(n, 5, 5)
            offset += n * 25
    x = torch.randn(2, 6, 14, 14)
    with FlopCounterMode(display=False) as counter:
        y = module(x)
    expected = torch.nn.functional.conv2d(x, dense, module.bias)
    assert torch.allclose(y, expected, atol=1e-5)
    assert counter.get_total_flops() == 2 * 2 * a.macs[node.id] == 2 * 2 * 150_000


def test_subsampling_and_rbf_torch_modules_compute_what_the_paper_says() -> None:
    torch = pytest.importorskip("torch")
    from archcalc.pytorch.modules import RBF, Subsampling

    sub: Any = Subsampling(3, (2, 2), (2, 2))
    with torch.no_grad():
        sub.weight.copy_(torch.tensor([0.5, 2.0, -1.0]))
        sub.bias.copy_(torch.tensor([1.0, 0.0, 3.0]))
    x = torch.randn(1, 3, 4, 4)
    sums = x.unfold(2, 2, 2).unfold(3, 2, 2).sum((-1, -2))
    assert torch.allclose(sub(x), sums * sub.weight.view(-1, 1, 1) + sub.bias.view(-1, 1, 1), atol=1e-5)
    rbf = RBF(84, 10)
    assert [n for n, _ in rbf.named_buffers()] == ["weight"] and not list(rbf.parameters())
    assert set(rbf.weight.unique().tolist()) <= {-1.0, 1.0}
    v = torch.randn(2, 84)
    assert torch.allclose(rbf(v), torch.cdist(v, rbf.weight) ** 2, atol=1e-3)


def test_lenet5_paper_agrees_with_torch_and_exports() -> None:
    pytest.importorskip("torch")
    from archcalc.pytorch.export import export_source
    from archcalc.pytorch.verify import verify

    graph = archcalc.load("lenet5-paper")
    report = verify(graph, "cpu", batch=2, runs=0)
    assert report.ok, [c for c in report.failures]
    assert "TableConv(in_channels=6" in export_source(graph)


TABLE_ERRORS = [
    ('table-conv5-2/p0(table="0,1; 1,6")',
     "t.arch:2:1: error: cannot apply 'table-conv5-2/p0(table=\"0,1; 1,6\")' to 6×14×14: connection table: "
     "output map 1 reads input map 6, but the input has 6 maps (0–5)"),
    ('table-conv5-3(table="0,1; 1,2")',
     "t.arch:2:1: error: the connection table lists 2 output maps, but out_channels is 3"),
    ("table-conv(k=5, table=[0 1; y 2])",
     "t.arch:2:1: error: connection table: output map 1: 'y' is not a map number"),
    ('table-conv(k=5, table="0,1;")',
     "t.arch:2:1: error: connection table: output map 1 reads no input map"),
    ('table-conv(k=5, table="0,1,1")',
     "t.arch:2:1: error: connection table: output map 0 names an input map twice"),
]


@pytest.mark.parametrize("layer, message", TABLE_ERRORS)
def test_connection_table_errors(layer: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        load_text(f"input 6x14x14\n{layer}\n", "t.arch")
    assert str(info.value).splitlines()[0] == message
    assert str(info.value).splitlines()[2].startswith("   | ^")  # the caret under column 1


def test_connection_table_spellings_agree() -> None:
    quoted = analyze_text('input 4x8x8\ntable-conv3-2(table="0,1; 2,3")\n')
    bracketed = analyze_text("input 4x8x8\ntable-conv(k=3, c=2, table=[0 1; 2 3])\n")
    keyword = analyze_text('input 4x8x8\ntable-conv(table="0, 1 ; 2, 3", kernel=3)\n')
    for a in (quoted, bracketed, keyword):
        assert a.totals.params == 2 * 2 * 9 + 2 and a.graph.output.shape == (2, 8, 8)


# -- Kim 2014: CNN for sentence classification --------------------------------------------------


def test_textcnn_as_kim_describes_it() -> None:
    a = archcalc.analyze("textcnn")
    embedding, transpose = a.graph.node(1), a.graph.node(2)
    assert embedding.shape == (56, 300) and transpose.shape == (300, 56)
    convs = layers_of(a, "conv")
    assert [a.graph.node(i).shape for i in convs] == [(100, 54), (100, 53), (100, 52)]  # no padding
    assert [a.counts[i].params for i in convs] == [300 * 3 * 100 + 100, 300 * 4 * 100 + 100, 300 * 5 * 100 + 100]
    assert a.graph.output.shape == (2,)
    # 18,765·300 + 100·300·(3 + 4 + 5) + 300 + 300·2 + 2
    assert a.totals.params == 5_629_500 + 360_300 + 602 == 5_990_402


def test_textcnn_parameters_change_with_set() -> None:
    a = archcalc.analyze("textcnn", params={"vocab": 20000, "length": 40, "classes": 5})
    assert a.graph.input.shape == (40,)
    assert a.totals.params == 20000 * 300 + 360_300 + 300 * 5 + 5
    result = runner.invoke(cli, ["report", "textcnn", "--set", "vocab=20000", "--set", "classes=5",
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["totals"]["params"] == 20000 * 300 + 360_300 + 1505


def test_textcnn_equals_pytorch_modules() -> None:
    torch = pytest.importorskip("torch")
    nn = torch.nn
    modules = [nn.Embedding(18765, 300), *(nn.Conv1d(300, 100, h) for h in (3, 4, 5)), nn.Linear(300, 2)]
    assert archcalc.analyze("textcnn").totals.params == sum(p.numel() for m in modules for p in m.parameters())
    # the multichannel model: a frozen pretrained table keeps a Parameter with requires_grad=False;
    # archcalc's params are the trainable ones, the frozen table is a buffer
    static = nn.Embedding.from_pretrained(torch.zeros(18765, 300), freeze=True)
    model = nn.ModuleList([static, *modules])
    multi = archcalc.analyze("textcnn-multichannel")
    assert multi.totals.params == sum(p.numel() for p in model.parameters() if p.requires_grad) == 5_990_402
    assert multi.totals.counts.buffers == static.weight.numel() == 5_629_500


def test_text_cnns_agree_with_torch() -> None:
    pytest.importorskip("torch")
    from archcalc.pytorch.verify import verify

    for name in ("textcnn", "textcnn-multichannel"):
        report = verify(archcalc.load(name), "cpu", batch=2, runs=0)
        assert report.ok, (name, report.failures)


# -- AlphaGo SL policy network (Silver et al. 2016, Methods) -------------------------------------


def alphago_params(k: int) -> int:
    """5·5·48·k + k, then 11 × (3·3·k·k + k), then 1·1·k (no bias), then 19·19 position biases."""
    return 25 * 48 * k + k + 11 * (9 * k * k + k) + k + 361


def test_alphago_policy_network() -> None:
    a = archcalc.analyze("alphago-policy")
    # k = 192: 230,592 + 11·331,968 + 192 + 361
    assert a.totals.params == 230_592 + 3_651_648 + 192 + 361 == 3_882_793 == alphago_params(192)
    convs = layers_of(a, "conv")
    assert len(convs) == 13
    assert all(a.graph.node(i).shape == (192, 19, 19) for i in convs[:12])
    head = a.graph.node(convs[12])
    assert head.shape == (1, 19, 19) and a.counts[head.id].biases == 0
    (bias,) = layers_of(a, "position-bias")
    assert a.counts[bias].biases == 361
    assert a.graph.output.type == "softmax" and a.graph.output.shape == (361,)
    # a ReLU after each of the 12 hidden convolutions, none after the 1×1 head
    assert len(layers_of(a, "relu")) == 12
    assert a.graph.node(bias).inputs == (head.id,)


@pytest.mark.parametrize("k, params", [(128, 1_777_641), (256, 6_798_953)])
def test_alphago_policy_with_set(k: int, params: int) -> None:
    assert params == alphago_params(k)
    result = runner.invoke(cli, ["report", "alphago-policy", "--set", f"k={k}", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["totals"]["params"] == params
    assert archcalc.analyze("alphago-policy", params={"k": k}).totals.params == params


def test_alphago_policy_agrees_with_torch() -> None:
    pytest.importorskip("torch")
    from archcalc.pytorch.verify import verify

    report = verify(archcalc.load("alphago-policy", params={"k": 8}), "cpu", batch=2, runs=0)
    assert report.ok, report.failures


# -- spec parameters ------------------------------------------------------------------------------


def test_param_lines_are_the_outermost_environment() -> None:
    text = ("param c=8\nparam m=2*c, n=3\ninput {n}x16x16\n"
            "block b(w):\n    conv3-{w+m}\n"
            "block d(w=c):\n    conv3-{w}\n"
            "conv3-{c}, b(1), d(), conv1-{c} x{n}\n")
    a = analyze_text(text)
    assert a.graph.input.shape == (3, 16, 16)
    convs = [n.shape[0] for n in a.graph if n.type == "conv"]
    assert convs == [8, 17, 8, 8, 8, 8]
    assert analyze_text(text.replace("c=8", "c=4")).graph.output.shape == (4, 16, 16)
    assert archcalc.analyze(text, params={"n": 2}).graph.input.shape == (2, 16, 16)
    # an override is seen by the parameters after it
    assert [n.shape[0] for n in archcalc.load(text, params={"c": "2*3"}) if n.type == "conv"][1] == 1 + 12


PARAM_ERRORS = [
    ("param k\ninput 3x8x8\nconv3-8\n", "t.arch:1:7: error: 'k' is not a parameter with a value"),
    ("param k=1, k=2\ninput 3x8x8\nconv3-8\n", "t.arch:1:12: error: parameter 'k' is defined twice"),
    ("param k=2*j\ninput 3x8x8\nconv3-8\n",
     "t.arch:1:9: error: unknown name 'j' in '2*j' (names: none here)"),
    ("param k=4\ninput 3x8x8\nconv3-{kk}\n",
     "t.arch:3:1: error: unknown name 'kk' in 'kk' (names: k)"),
    ("param\ninput 3x8x8\nconv3-8\n", "t.arch:1:1: error: 'param' needs name=value pairs"),
]


@pytest.mark.parametrize("text, message", PARAM_ERRORS)
def test_param_errors(text: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        load_text(text, "t.arch")
    assert str(info.value).splitlines()[0] == message


def test_unknown_set_names_list_the_spec_parameters() -> None:
    with pytest.raises(UsageError) as info:
        archcalc.load("alphago-policy", params={"filters": 3})
    assert str(info.value) == "alphago-policy has no parameter 'filters' (its parameters: k=192)"
    result = runner.invoke(cli, ["report", "textcnn", "--set", "vocabulary=3"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: textcnn has no parameter 'vocabulary' (its parameters: vocab=18765, length=56, classes=2)")
    assert runner.invoke(cli, ["report", "vgg16", "--set", "k=1"]).output.strip() == (
        "error: vgg16 has no parameter 'k' (its parameters: none)")
    bad = runner.invoke(cli, ["report", "alphago-policy", "--set", "k=many"])
    assert bad.exit_code == 2 and bad.output.strip() == (
        "error: parameter 'k' must be a number (or arithmetic over the parameters before it), not 'many'")
    assert runner.invoke(cli, ["report", "alphago-policy", "--set", "k"]).output.strip() == (
        "error: --set takes NAME=VALUE, as in --set k=256 (got 'k')")


def test_a_node_named_param_is_still_a_node() -> None:
    a = analyze_text("input 3x8x8\nparam = conv3-4\n@param, relu\n")
    assert [n.name for n in a.graph if n.name] == ["param"]


# -- parameter sharing ----------------------------------------------------------------------------


def sharing_of(text: str) -> list[dict[str, float]]:
    result = runner.invoke(cli, ["report", "-", "--format", "json"], input=text)
    assert result.exit_code == 0, result.output
    return [x["sharing"] for x in json.loads(result.output)["layers"] if x["sharing"]]


def test_a_kernel_covering_the_whole_input_is_an_fc() -> None:
    conv = analyze_text("input 1x100x100\nconv100-10/p0\n")
    fc = analyze_text("input 1x100x100\nfc-10\n")
    assert conv.totals.params == fc.totals.params == 100_010
    assert conv.totals.macs == fc.totals.macs == 100_000
    assert sharing_of("input 1x100x100\nconv100-10/p0\n") == [
        {"params": 100_010, "fc_equivalent_params": 10_000 * 10 + 10, "factor": 1.0}]


def test_two_3x3_convolutions_against_one_5x5() -> None:
    two = analyze_text("input 64x56x56\nconv3-64/nobias, conv3-64/nobias\n")
    one = analyze_text("input 64x56x56\nconv5-64/nobias\n")
    assert two.totals.params == 18 * 64 * 64 and one.totals.params == 25 * 64 * 64
    assert two.rf[two.graph.output.id].size == one.rf[one.graph.output.id].size == (5, 5)  # type: ignore[union-attr]
    elements = 64 * 56 * 56
    (first, second) = sharing_of("input 64x56x56\nconv3-64/nobias, conv3-64/nobias\n")
    assert first == second == {"params": 36_864, "fc_equivalent_params": elements * elements + elements,
                               "factor": (elements * elements + elements) / 36_864}


def test_sharing_columns_and_totals() -> None:
    result = runner.invoke(cli, ["report", "lenet5-paper", "--columns", "params,fc-equivalent,sharing"])
    assert result.exit_code == 0, result.output
    c1 = next(line for line in result.output.splitlines() if "conv5-6/p0" in line)
    # 1·32·32 inputs × 6·28·28 outputs + 6·28·28 biases = 4,821,600; / 156
    assert "4,821,600" in c1 and "30,907.69×" in c1
    data = json.loads(runner.invoke(cli, ["report", "lenet5-paper", "--format", "json"]).output)
    assert data["totals"]["sharing"]["params"] == 156 + 1_516 + 48_120
    assert data["totals"]["sharing"]["fc_equivalent_params"] == 4_821_600 + (6 * 196 * 1600 + 1600) + 48_120
    assert [x["sharing"] is None for x in data["layers"]].count(False) == 3  # the three convolutions
