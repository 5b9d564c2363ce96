"""Memory: bytes per node, the inference peak and the training estimate on graphs small enough
to work out by hand; where the weights and the work sit (by kind); the report's fields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from archcalc import load_text
from archcalc.cli import cli
from archcalc.errors import UsageError
from archcalc.passes.analysis import analyze
from archcalc.passes.memory import Memory, MemoryOptions
from tests.conftest import analyze_text

# 0 input 1×8×8 = 64 · 1 conv3-2 2×8×8 = 128 (params 2·9 + 2 = 20) · 2 relu 128 · 3 maxpool 2×4×4 = 32
# · 4 (flatten) 32 · 5 FC-10 10 (params 32·10 + 10 = 330)
TINY = "input 1x8x8\nconv3-2, relu, maxpool, FC-10\n"


def tiny(dtype: str = "float32", batch: int = 1, optimizer: str = "adam") -> Memory:
    return analyze(load_text(TINY, "tiny.arch"), MemoryOptions(dtype, batch, optimizer)).memory


def test_per_node_bytes_by_hand() -> None:
    m = tiny()
    assert [m.nodes[i].activation_bytes for i in range(6)] == [4 * e for e in (64, 128, 128, 32, 32, 10)]
    assert [m.nodes[i].param_bytes for i in range(6)] == [0, 80, 0, 0, 0, 1320]
    assert (m.param_bytes, m.buffer_bytes, m.activation_bytes) == (1400, 0, 4 * 394)


def test_inference_peak_by_hand() -> None:
    # alive while each node runs: 64 | 64+128 | 128+128 (the input died after the conv)
    # | 128+32 | 32+32 | 32+10
    m = tiny()
    assert (m.inference_peak_bytes, m.peak_at) == (4 * 256, 2)
    assert m.inference_bytes == 1400 + 4 * 256


def test_training_estimate_by_hand() -> None:
    m = tiny(optimizer="adam")
    assert (m.gradient_bytes, m.optimizer_bytes) == (1400, 2800)
    assert m.training_bytes == 1400 + 0 + 1400 + 2800 + 4 * 394
    assert tiny(optimizer="momentum").optimizer_bytes == 1400
    assert tiny(optimizer="sgd").optimizer_bytes == 0


@pytest.mark.parametrize(("dtype", "size"), [("float32", 4), ("float16", 2), ("bfloat16", 2), ("int8", 1)])
def test_dtype_and_batch_scale(dtype: str, size: int) -> None:
    m = tiny(dtype, batch=3)
    assert m.param_bytes == 350 * size  # parameters do not grow with the batch
    assert m.activation_bytes == 394 * 3 * size
    assert m.inference_peak_bytes == 256 * 3 * size


def test_a_tensor_lives_until_its_last_consumer() -> None:
    # 0 input, 1 conv3, 2 identity (the shortcut reads the input after the conv), 3 add: 1×16×16 = 256 each
    a = analyze_text("input 1x16x16\nadd:\n    | conv3-1\n    | identity\n")
    assert [n.type for n in a.graph] == ["input", "conv", "identity", "add"]
    assert (a.memory.inference_peak_bytes, a.memory.peak_at) == (4 * 3 * 256, 2)


def test_outputs_nobody_consumes_stay_alive() -> None:
    # node 2 (conv3-2, 2×4×4) is a side head: still held when node 3 runs
    a = analyze_text("input 1x4x4\na = conv3-1\nconv3-2\n@a, conv1-1\n")
    assert a.graph.consumers(2) == []
    assert a.memory.inference_peak_bytes == 4 * (16 + 32 + 16)


def test_vgg16_weights_sit_in_the_fc_layers() -> None:
    kinds = {k.kind: k for k in analyze_text(open_spec("vgg16")).by_kind()}
    total = 138_357_544
    assert kinds["fc"].params == 123_642_856 and kinds["conv"].params == 14_714_688
    assert f"{100 * kinds['fc'].params / total:.2f}%" == "89.36%"
    assert kinds["conv"].macs / (kinds["conv"].macs + kinds["fc"].macs) > 0.99  # the work sits in the convs


def test_vgg16_memory_figures() -> None:
    m = analyze_text(open_spec("vgg16")).memory
    assert m.param_bytes == 4 * 138_357_544
    # the peak: conv1_1's output and its ReLU's, 64×224×224 each
    assert (m.inference_peak_bytes, m.peak_at) == (2 * 4 * 64 * 224 * 224, 2)


def open_spec(name: str) -> str:
    from archcalc.zoo import read

    return read(name).text


def test_bad_options_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="unknown dtype 'float64'"):
        MemoryOptions(dtype="float64")
    with pytest.raises(UsageError, match="batch must be at least 1"):
        MemoryOptions(batch=0)


# -- the report ------------------------------------------------------------------------------


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_json_has_rf_and_memory_fields() -> None:
    result = run("report", "vgg16", "--format", "json", "--dtype", "float16", "--batch", "2",
                 "--optimizer", "sgd")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    pool5 = data["layers"][31]
    assert pool5["rf"] == {"size": [212, 212], "jump": [32, 32], "start": [-90, -90],
                           "center": [15.5, 15.5], "aligned": True}
    assert data["layers"][32]["rf"] == "global"
    assert pool5["memory"] == {"activation_bytes": 2 * 2 * 512 * 7 * 7, "param_bytes": 0, "buffer_bytes": 0}
    assert data["layers"][1]["memory"]["param_bytes"] == 2 * 1792
    mem = data["totals"]["memory"]
    assert (mem["dtype"], mem["batch"], mem["optimizer"]) == ("float16", 2, "sgd")
    assert mem["bytes_per_element"] == 2
    assert mem["param_bytes"] == 2 * 138_357_544
    assert mem["training"]["optimizer_bytes"] == 0
    assert mem["training"]["total_bytes"] == sum(v for k, v in mem["training"].items() if k != "total_bytes")
    assert data["receptive_field"] == {"layer": 31, "rf": pool5["rf"]}


def test_json_marks_misaligned_fields(tmp_path: Path) -> None:
    spec = tmp_path / "mis.arch"
    spec.write_text("input 1x32x32\nadd:\n    | conv3-1/s2/p1\n    | conv2-1/s2/p0\n")
    rf = json.loads(run("report", str(spec), "--format", "json").output)["layers"][3]["rf"]
    assert rf["aligned"] is False and rf["centers"] == [[0, 0.5], [0, 0.5]]
    assert rf["why"].startswith("layer 3 (add): centers differ on axis h")


def test_table_shows_memory_rf_and_kinds() -> None:
    result = run("report", "vgg16", "--batch", "8", "--optimizer", "momentum")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "receptive field 212×212 (jump 32×32, start -90,-90) at layer 31 maxpool" in out
    assert "memory (float32, batch 8): parameters 553,430,176 B (527.8 MiB)" in out
    assert "inference activation peak 205,520,896 B (196.0 MiB) at layer 2 relu" in out
    assert "momentum 527.8 MiB (1×)" in out
    assert "by kind of layer" in out and "89.36%" in out


def test_columns_for_rf_and_bytes() -> None:
    result = run("report", "vgg16", "--columns", "rf,jump,start,aligned,act_bytes,param_bytes")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "│ 31 " in line)
    assert "212×212" in row and "32×32" in row and "-90,-90" in row and "yes" in row and "100,352" in row
    assert "global" in next(line for line in result.output.splitlines() if "│ 33 " in line)
