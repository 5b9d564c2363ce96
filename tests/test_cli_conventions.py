"""The command line of counting conventions and training: --convention, explain-diff, conventions,
training and report --training; every figure in JSON says which convention it is under."""

from __future__ import annotations

import json

from click.testing import CliRunner

from archcalc.cli import cli

runner = CliRunner()


def run(*args: str, stdin: str | None = None) -> str:
    result = runner.invoke(cli, list(args), input=stdin)
    assert result.exit_code == 0, result.output
    return result.output


def test_report_json_names_the_convention_of_every_figure() -> None:
    data = json.loads(run("report", "mobilenet_v2", "--convention", "ptflops", "--format", "json"))
    assert data["figures_under"] == {"macs": "pytorch", "flops": "pytorch", "counted": "ptflops",
                                     "training": "pytorch"}
    c = data["convention"]
    assert (c["name"], c["unit"], c["total"], c["params"]) == ("ptflops", "MACs", 320_300_008, 3_504_872)
    assert round(c["percent_vs_pytorch"], 2) == 6.49
    assert sum(layer["counted"] for layer in data["layers"]) == c["total"]
    assert data["totals"]["macs"] == 300_774_272  # macs stay FlopCounterMode's
    assert {x["layer_type"] for x in c["caveats"]} == {"add"}
    assert c["all"]["thop"]["total"] == 327_486_720 and c["all"]["tf-profiler"]["unit"] == "FLOPs"


def test_report_json_default_is_pytorch_and_has_the_training_step() -> None:
    data = json.loads(run("report", "resnet18", "--format", "json"))
    assert data["convention"]["name"] == "pytorch" and data["convention"]["total"] == data["totals"]["macs"]
    t = data["training"]
    assert t["flops"]["step"] == 10_648_412_160 and t["flops"]["flop_counter_step"] == 10_648_412_160
    assert set(t["memory"]) >= {"weight_bytes", "master_bytes", "gradient_bytes", "optimizer_bytes", "buffer_bytes",
                                "saved_bytes", "kept_bytes", "gradient_in_flight_bytes", "total_bytes"}
    first = data["layers"][1]["training"]
    assert first["grad_input"] == 0 and first["kept"][0]["tensor"] == "input 0 (layer 0)"


def test_report_table_shows_the_tools_column_and_what_it_cannot_see() -> None:
    out = run("report", "resnet50", "--convention", "thop", "--depth", "0")
    assert "thop MACs" in out and "under thop" in out and "4,133,742,592" in out
    lstm = run("report", "examples/lstm-net", "--convention", "pytorch")
    assert "pytorch MACs" not in lstm  # the default adds no column


def test_report_csv_and_markdown_with_a_convention() -> None:
    csv = run("report", "squeezenet1_0", "--convention", "fvcore", "--format", "csv")
    assert csv.splitlines()[0].endswith(",counted")
    md = run("report", "squeezenet1_0", "--convention", "fvcore", "--format", "markdown")
    assert "fvcore MACs" in md and "> under fvcore" in md and "819,093,576" in md


def test_explain_diff_table_markdown_json() -> None:
    out = run("explain-diff", "mobilenet_v2", "--between", "pytorch", "fvcore")
    assert "+4.46 %: bn 2·elements (+4.44 %)" in out
    md = run("explain-diff", "mobilenet_v2", "--between", "pytorch", "ptflops", "--format", "markdown")
    assert "| bn | 52 | 0 | 13,356,224 |" in md and "**+6.49 %" in md
    data = json.loads(run("explain-diff", "vgg16", "--between", "pytorch", "tf-profiler", "--format", "json"))
    assert data["unit"] == "FLOPs" and data["totals"]["tf-profiler"] == 30_960_211_824
    assert data["totals"]["pytorch"] == 2 * 15_470_264_320  # MACs doubled to compare with FLOPs
    assert data["rows"][0]["layer_type"] == "conv"


def test_explain_diff_refuses_an_unknown_convention() -> None:
    result = runner.invoke(cli, ["explain-diff", "vgg16", "--between", "pytorch", "flops"])
    assert result.exit_code == 2 and "'flops' is not one of" in result.output


def test_conventions_command() -> None:
    out = run("conventions")
    assert "thop (MACs): thop 0.1.1.post2209072238" in out and "tf-profiler (FLOPs)" in out
    data = json.loads(run("conventions", "--format", "json"))
    assert [c["name"] for c in data][:2] == ["pytorch", "paper"]


def test_compare_with_conventions() -> None:
    data = json.loads(run("compare", "resnet50", "mobilenet_v2", "--convention", "ptflops", "--convention", "thop",
                          "--format", "json"))
    assert data[1]["counted"] == {"ptflops": {"total": 320_300_008, "unit": "MACs"},
                                  "thop": {"total": 327_486_720, "unit": "MACs"}}
    assert data[0]["macs_convention"] == "pytorch"
    table = run("compare", "resnet50", "--convention", "fvcore")
    assert "MACs (fvcore)" in table and "4,111,512,576" in table


def test_check_under_a_convention() -> None:
    spec = "input 3x224x224\nconv3-64, bn => macs=12_845_056, total macs=99_549_184\n"
    assert "2 of 2 figures hold" in run("check", "-", "--convention", "thop", stdin=spec)
    result = runner.invoke(cli, ["check", "-", "--format", "json"], input=spec)
    data = json.loads(result.output)
    assert result.exit_code == 1 and data["convention"] == "pytorch" and data["wrong"] == 2
    tf = runner.invoke(cli, ["check", "-", "--convention", "tf-profiler"], input="input 3x8x8\nconv3-4 => macs=1\n")
    assert "counts FLOPs: claim flops= instead" in tf.output


def test_training_command_table_json_markdown() -> None:
    out = run("training", "mobilenet_v2", "--depth", "0")
    assert "1,782,969,600 FLOPs (2.964× the forward)" in out
    assert "FlopCounterMode counts 12,279,700,992 (+10,496,731,392)" in out and "17 grouped convolutions" in out
    data = json.loads(run("training", "examples/gpt2-2x128", "--format", "json"))
    assert data["six_nt"]["value"] == 152_371_200 and data["flops"]["step"] == 212_729_856
    md = run("training", "lstm-lm", "--format", "markdown")
    assert "> training step" in md and "nn.LSTM as 0 on CPU" in md


def test_training_options_change_the_memory_terms() -> None:
    base = json.loads(run("training", "resnet18", "--format", "json"))["memory"]
    mixed = json.loads(run("training", "resnet18", "--format", "json", "--precision", "bf16", "--optimizer",
                           "adamw", "--batch", "8", "--checkpoint", "4"))
    assert mixed["options"] == {"optimizer": "adamw", "precision": "bf16", "checkpoint": 4, "batch": 8,
                                "device": "cuda"}
    m = mixed["memory"]
    assert m["weight_bytes"] == base["weight_bytes"] // 2 and m["master_bytes"] == base["weight_bytes"]
    assert m["kept_bytes"] < m["saved_bytes"] and len(mixed["segments"]) == 4
    assert mixed["flops"]["recompute"] > 0


def test_bad_checkpoint_is_a_clean_error() -> None:
    result = runner.invoke(cli, ["training", "resnet18", "--checkpoint", "one"])
    assert result.exit_code == 2 and "--checkpoint takes a number of segments" in result.output
    result = runner.invoke(cli, ["training", "resnet18", "--checkpoint", "1"])
    assert result.exit_code == 2 and "2 or more" in result.output


def test_report_training_flag() -> None:
    out = run("report", "resnet18", "--training", "--depth", "0")
    assert "∂weight FLOPs" in out and "training step (adam, fp32, batch 1)" in out
    md = run("report", "resnet18", "--training", "--format", "markdown", "--depth", "0")
    assert "step FLOPs" in md and "> memory (fp32" in md
