"""Several inputs, shared and tied weights, general tensor operations: archcalc's figures against
the PyTorch models people write by hand for the same networks, and the errors for each construct."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import archcalc
from archcalc.cli import cli
from archcalc.errors import SpecError, UsageError
from tests.conftest import analyze_text

torch = pytest.importorskip("torch")
nn = torch.nn

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from archcalc.pytorch.verify import verify  # noqa: E402


def flops(model: nn.Module, *inputs: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*inputs)
    return int(counter.get_total_flops())


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# -- the three networks of the issue, against hand-written PyTorch -------------------------------


class Siamese(nn.Module):
    """Koch et al. 2015: one tower, called on both images; |a − b| → one sigmoid unit."""

    def __init__(self) -> None:
        super().__init__()
        self.tower = nn.Sequential(
            nn.Conv2d(1, 64, 10), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 7), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(128, 128, 4), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(128, 256, 4), nn.ReLU(), nn.Flatten(), nn.Linear(9216, 4096), nn.Sigmoid(),
        )
        self.head = nn.Linear(4096, 1)

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head((self.tower(left) - self.tower(right)).abs()))


def test_siamese_counts_the_shared_tower_once_and_its_work_twice() -> None:
    a = archcalc.analyze("siamese")
    model = Siamese()
    x = torch.randn(1, 1, 105, 105)
    assert a.totals.params == params(model) == 38_951_745  # Koch et al.'s figure
    assert a.totals.flops == flops(model, x, x) == 3_634_503_680
    assert a.totals.params_if_unshared == 38_951_745 + 38_947_648  # a per-call count adds the tower again
    assert [n.args["name"] for n in a.graph.input_nodes()] == ["left", "right"]
    twins = [(n.id, n.shares) for n in a.graph if n.shares is not None and a.counts[n.shares].params]
    assert len(twins) == 5 and all(a.uses[owner] == 2 for _, owner in twins)  # 4 convs and the FC


class Recursive(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem, self.rec = nn.Conv2d(3, 32, 3, padding=1), nn.Conv2d(32, 32, 3, padding=1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        for _ in range(3):
            x = torch.relu(self.rec(x))
        return self.fc(x.mean((2, 3)))


def test_a_recursive_net_applies_one_conv_three_times() -> None:
    a = analyze_text("input 3x32x32\nconv3-32, relu\nconv3-32 as rec, relu, rec, relu, rec, relu\ngap, fc-10\n")
    model = Recursive()
    assert a.totals.params == params(model) == 896 + 9_248 + 330
    assert a.totals.flops == flops(model, torch.randn(1, 3, 32, 32))
    rec = next(n.id for n in a.graph if n.text == "conv3-32" and n.id > 1)
    assert a.uses[rec] == 3 and [n.shares for n in a.graph if n.text == "rec"] == [rec, rec]


class TiedLM(nn.Module):
    """An LSTM language model whose output layer is its embedding (Press & Wolf 2017)."""

    def __init__(self) -> None:
        super().__init__()
        self.wte = nn.Embedding(10_000, 650)
        self.lstm = nn.LSTM(650, 650, 2, batch_first=True)
        self.head = nn.Linear(650, 10_000)
        self.head.weight = self.wte.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        with torch.backends.mkldnn.flags(enabled=False):  # the unfused kernel FlopCounterMode sees
            return self.head(self.lstm(self.wte(ids))[0])


def test_a_tied_head_is_one_parameter_tensor() -> None:
    a = analyze_text("input 35\nembedding(vocab=10000, dim=650) as wte\nlstm(hidden=650, layers=2)\n"
                     "fc-10000(tie=wte)\n")
    model = TiedLM()
    assert a.totals.params == params(model) == 13_280_400
    assert a.totals.flops == flops(model, torch.randint(0, 10_000, (1, 35)))
    head = a.graph.output
    assert head.tie is not None and head.tie.owner == 1 and a.counts[head.id].params == 10_000  # its bias
    assert a.totals.params_if_unshared == 13_280_400 + 6_500_000


@pytest.mark.parametrize("text", [
    "input 3x32x32\nconv3-32, relu\nconv3-32 as rec, relu, rec, relu, rec, relu\ngap, fc-10\n",
    "input 35\nembedding(vocab=100, dim=16) as wte\nlstm(hidden=16)\nfc-100(tie=wte)\n",
    "input 35\nembedding(vocab=100, dim=16) as wte\nfc-16, fc-100, fc-16(tie=wte.T)\n",
    "input left 3x16x16\ninput right 3x16x16\nblock t:\n    conv3-8, relu, gap, fc-8\n"
    "a = @left, t as tw\nb = @right, tw\nsub(@a, @b), abs, fc-1\n",
])
def test_shared_and_tied_specs_verify_in_torch(text: str) -> None:
    report = verify(archcalc.load(text), "cpu", runs=0)
    assert report.ok, [(c.scope, c.what, c.archcalc, c.torch) for c in report.failures]


# -- every new operation, built in torch and checked figure by figure ----------------------------

OPERATIONS = [
    "input 8x6x6\nreshape(8, 36), transpose(1, 2), fc-4\n",
    "input 8x6x6\nview(2, 4, -1), permute(0, 3, 1, 2), flatten(2), mean(-1)\n",
    "input 8x6x6\nunsqueeze(1), squeeze(1), flatten(start=2), softmax(dim=-1)\n",
    "input 12x5 as plain\nq, k, v = chunk(3, dim=1)\nkt = @k, transpose(1, 2)\nmatmul(@q, @kt), softmax(dim=-1)\n",
    "input 12x5 as plain\na, b = split(5x7, dim=1)\n",
    "input 16x8 as sequence\nfc-32, gelu/tanh, fc-16, log-softmax\n",
    "input 3x8x8\nconv3-4, prelu/c, conv3-4, prelu, hardtanh(min=0, max=6)\n",
    "input 4x7x7\nconv3-8/s2/same, maxpool3/s2/same\n",
    "input 4x8x8\nconv3-8/s2/same, pad(0, 1, 0, 1), pad(1, 1, 1, 1, mode=reflect), conv3-8/p0\n",
    "input 197x16 as sequence\ncls = parameter(1x1x16)\nx = concat(@cls, @input, dim=1)\n"
    "pos = parameter(1x198x16)\nadd(@x, @pos)\n",
    "input 8x4x4\nscale = parameter(8x1x1)\nmul(@input, @scale), sum(1), div(@input, @input)\n",
    "input 6x5\nc = conv3-6\nsub(@input, @c), abs\n",
    "input 3x8x8\nconv3-4/frozen, bn/frozen, fc-3\n",
]


@pytest.mark.parametrize("text", OPERATIONS)
def test_every_new_operation_agrees_with_torch(text: str) -> None:
    report = verify(archcalc.load(text), "cpu", runs=0)
    assert report.ok, [(c.scope, c.what, c.archcalc, c.torch) for c in report.failures]


def test_matmul_macs_are_the_output_times_the_contracted_size() -> None:
    a = analyze_text("input 12x5 as plain\nq, k, v = chunk(3, dim=1)\nkt = @k, transpose(1, 2)\nmatmul(@q, @kt)\n")
    mm = a.graph.output
    assert mm.shape == (4, 4) and a.macs[mm.id] == 4 * 4 * 5
    x = torch.randn(1, 4, 5)
    assert 2 * a.macs[mm.id] == flops(torch.nn.Identity(), x) + 2 * 4 * 4 * 5  # FlopCounterMode's bmm rule


def test_tensorflow_same_padding_is_uneven_on_even_inputs() -> None:
    even = analyze_text("input 3x224x224\nconv3-8/s2/same\n")
    odd = analyze_text("input 3x7x7\nconv3-8/s2/same\n")
    assert even.graph.output.shape == (8, 112, 112) and odd.graph.output.shape == (8, 4, 4)
    g_even = even.graph.output.layer.geometry(even.graph.output.args, even.graph.output.in_shapes)
    g_odd = odd.graph.output.layer.geometry(odd.graph.output.args, odd.graph.output.in_shapes)
    assert (g_even.padding, g_even.after) == ((0, 0), (1, 1))  # type: ignore[union-attr]
    assert (g_odd.padding, g_odd.after) == ((1, 1), (1, 1))  # type: ignore[union-attr]
    assert even.rf[1].start == (0, 0) and odd.rf[1].start == (-1, -1)  # type: ignore[union-attr]


def test_frozen_layers_are_parameters_that_do_not_train() -> None:
    a = analyze_text("input 3x8x8\nconv3-4/frozen, bn, fc-3\n")
    conv = nn.Conv2d(3, 4, 3, padding=1)
    conv.requires_grad_(False)
    model = nn.ModuleList([conv, nn.BatchNorm2d(4), nn.Linear(256, 3)])
    assert a.totals.params == params(model)
    assert a.totals.counts.trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert a.totals.counts.frozen == 112
    report = verify(a.graph, "cpu", runs=0)
    assert report.ok


def test_an_fc_on_a_plain_tensor_maps_its_last_axis_as_nn_linear() -> None:
    plain = analyze_text("input 16x8 as plain\nfc-64\n")
    assert plain.totals.params == params(nn.Linear(8, 64)) == 576 and plain.graph.output.shape == (16, 64)
    flat = analyze_text("input 16x8\nfc-64\n")
    assert flat.totals.params == 8_256
    assert "nn.Linear on (N, 16, 8) would map the last axis (8 → 64)" in flat.warnings[0].message


# -- reports ---------------------------------------------------------------------------------------


def test_json_lists_every_input_and_who_owns_shared_weights() -> None:
    result = CliRunner().invoke(cli, ["report", "siamese", "--format", "json"])
    data = json.loads(result.output)
    assert data["inputs"] == [{"name": "left", "shape": [1, 105, 105], "layout": "channels"},
                              {"name": "right", "shape": [1, 105, 105], "layout": "channels"}]
    assert data["totals"]["unique_params"] == data["totals"]["params"] == 38_951_745
    assert data["totals"]["params_if_unshared"] == 77_899_393
    second = [layer for layer in data["layers"] if layer["shares"] is not None and layer["type"] == "conv"]
    assert [layer["params"] for layer in second] == [0, 0, 0, 0]
    assert all(data["layers"][layer["shares"]]["uses"] == 2 for layer in second)


def test_the_table_marks_shared_weights_and_lists_the_inputs() -> None:
    out = CliRunner().invoke(cli, ["report", "siamese"]).output
    assert "inputs left 1×105×105, right 1×105×105" in out
    assert "conv10-64/p0  [weights used 2×]" in out and "[weights of #2]" in out
    assert "77,899,393 if every use counted its own" in out


def test_several_input_shapes_on_the_command_line() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["report", "siamese", "--input", "left=1x80x80", "--input", "right=1x80x80",
                                 "--format", "json"])
    assert [i["shape"] for i in json.loads(result.output)["inputs"]] == [[1, 80, 80], [1, 80, 80]]
    result = runner.invoke(cli, ["report", "siamese", "--input", "lft=1x80x80"])
    assert result.exit_code == 2
    assert "the spec has no input 'lft' (its inputs: left, right); did you mean 'left'?" in result.output


def test_a_dead_branch_and_a_channels_last_input_are_warned() -> None:
    dead = analyze_text("input 3x8x8\ntower = conv3-4\n@input, conv3-8, relu\nconv3-2\n")
    assert [w.message for w in dead.warnings] == []  # named: a side output, kept on purpose
    dead = analyze_text("input 3x8x8\nconv3-4\n@input, conv3-8\n")
    assert [(w.layer, w.line) for w in dead.warnings] == [(1, 2)]
    assert "feeds nothing (a dead branch, still counted)" in dead.warnings[0].message
    unused = analyze_text("input a 3x8x8\ninput b 3x8x8\n@a, conv3-2\n")
    assert [w.message for w in unused.warnings] == ["input b 3x8x8: input 'b' feeds nothing"]
    last = analyze_text("input 224x224x3\nconv3-8\n")
    assert "looks channels last" in last.warnings[0].message and "did you mean 3x224x224?" in last.warnings[0].message


# -- errors: one positioned message each -----------------------------------------------------------


def error_of(text: str) -> str:
    with pytest.raises(SpecError) as info:
        archcalc.load_text(text, "t.arch")
    return str(info.value)


@pytest.mark.parametrize(("text", "message"), [
    ("input 3x8x8\nsub(@input)\n", "t.arch:2:1: error: 'sub' takes 2 inputs, got 1"),
    ("input 3x8x8\nmean(5)\n", "t.arch:2:1: error: cannot apply 'mean(5)' to 3×8×8: dim 5 is out of range"),
    ("input 3x8x8\nmean(0)\n", "dim 0 is the batch axis, which every layer keeps"),
    ("input 3x8x8\nreshape(5, -1)\n", "192 elements do not divide into parts of 5 for the -1"),
    ("input 3x8x8\nreshape(4, 4)\n", "4×4 holds 16 elements, the input 192"),
    ("input 6x5 as plain\na, b = chunk(2, dim=1)\nmatmul(@a, @b)\n", "the contracted sizes differ: 3×5 @ 3×5 (5 ≠ 3)"),
    ("input 35\nembedding(vocab=100, dim=16) as wte\nfc-50(tie=wte)\n",
     "t.arch:3:1: error: cannot tie 'fc-50(tie=wte)' (weight 50×16) to the weight of layer 1"),
    ("input 35\nfc-50(tie=wte)\n", "t.arch:2:11: error: 'wte' is not a layer named with 'as'"),
    ("input 3x8x8\nconv3-4 as c\nfc-4\nc\n", "cannot apply 'c' to 4: 'conv' needs a C×L, C×H×W or C×D×H×W input"),
    ("input 3x8x8\nconv3-4 as c\nc, conv3-3\nc\n",
     "t.arch:3:1: error: 'c' applies the weights of layer 1 (conv3-4, line 2) to 4×8×8, but they were made for "
     "3×8×8: weight 4×4×3×3, bias 4 here, weight 4×3×3×3, bias 4 there"),
    ("input 3x8x8\nconv3-4 as relu\n", "t.arch:2:12: error: 'relu' is already a layer type: name this one otherwise"),
    ("input 3x8x8\nconv3-4 as c x2\n", "t.arch:2:15: error: 'conv3-4 as c' names one instance; it cannot be repeated"),
    ("input 3x8x8\nconv3-4 as c\nc(k=5)\n", "'c' applies an instance as it was made: only inputs (@name) may be given"),
    ("input 3x8x8\ninput 3x8x8\nrelu\n", "t.arch:2:1: error: the input is declared twice"),
    ("input a 3x8x8\ninput b 3x8x8 as rows\nrelu\n", "t.arch:2:18: error: unknown layout 'rows'"),
    ("input 12x5 as plain\nq, k, v = chunk(2, dim=1)\n", "chunk cuts 12 into 2 parts (6, 6), but 3 names take them"),
    ("input 12x5\nq, k = relu\n", "t.arch:2:1: error: 2 names need a layer that makes as many tensors"),
    ("input 3x8x8\np = parameter(8)\n@p, conv3-8\n",
     "'conv3-8' needs a tensor with a batch axis; 8 is a free parameter"),
    ("input 3x8x8\nx = parameter(2x3)\nconcat(@input, @x)\n", "a free tensor 2×3 joins a batch only with size 1 first"),
    ("input 3x8x8\npad(1, 2, 3)\n", "pad takes two numbers per axis"),
    ("input 3x8x8\nconv3-4/same/p1\n", "/same computes the padding: give no padding beside it"),
    ("input 3x8x8\navgpool3/s2/same\n", "TensorFlow's SAME average pool averages only the real inputs"),
    ("input 3x8x8\ntranspose(1)\n", "transpose takes two dims, or none"),
    ("input 3x8x8\nhardtanh(min=2, max=1)\n", "hardtanh needs min < max"),
])
def test_each_new_construct_has_one_positioned_error(text: str, message: str) -> None:
    assert message in error_of(text)


def test_one_shape_for_inputs_declared_differently_is_refused() -> None:
    with pytest.raises(UsageError, match="give each its shape, as in --input a=3x64x64"):
        archcalc.load_text("input a 3x8x8\ninput b 3x4x4\n@a, relu\n", "t.arch", (3, 16, 16))


@pytest.mark.parametrize(("word", "hint"), [
    ("convtranspose", "'convtranspose' is a transposed convolution, which archcalc has no layer type for yet"),
    ("pad2", "did you mean 'pad'?"),
    ("rleu", "did you mean 'relu'?"),
    ("maxpol", "did you mean 'maxpool'?"),
])
def test_did_you_mean_stays_within_the_operation(word: str, hint: str) -> None:
    assert hint in error_of(f"input 3x8x8\n{word}\n")


def test_no_suggestion_names_another_operation() -> None:
    assert "transpose" not in error_of("input 3x8x8\nconvtransposed\n").split("expected")[1]
    assert "did you mean" not in error_of("input 3x8x8\nadd2d\n")
