"""Every command has help with an example; formats are exact; errors are clean."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from archcalc import __version__
from archcalc.cli import COMMANDS, cli

runner = CliRunner()


def invoke(*args: str, stdin: str | None = None) -> click.testing.Result:
    return runner.invoke(cli, list(args), input=stdin)


def all_commands() -> list[str]:
    return cli.list_commands(click.Context(cli))


def test_the_command_table_names_the_module_of_every_command() -> None:
    """Commands are imported when asked for (cli.COMMANDS); every module of the package, imported,
    defines exactly the commands the table gives it."""
    import importlib
    import os

    import archcalc.cli

    for name in os.listdir(archcalc.cli.__path__[0]):
        if name.endswith(".py") and name != "__init__.py":
            importlib.import_module(f"archcalc.cli.{name[:-3]}")
    assert {name: command.callback.__module__ for name, command in cli.commands.items()} == {
        name: f"archcalc.cli.{module}" for name, module in COMMANDS.items()}


@pytest.mark.parametrize("name", all_commands())
def test_every_command_has_help_with_an_example(name: str) -> None:
    result = invoke(name, "--help")
    assert result.exit_code == 0, result.output
    assert "Example" in result.output and f"archcalc {name}" in result.output


def test_a_mistyped_command_is_told_the_command_it_may_mean() -> None:  # every command loaded to find it
    result = subprocess.run([sys.executable, "-m", "archcalc", "repor", "resnet50"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "No such command 'repor'. (Did you mean one of: 'export', 'report'?)" in result.stderr


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0 and __version__ in result.output


def test_report_json_is_exact_and_complete() -> None:
    result = invoke("report", "vgg16", "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["name"] == "vgg16" and data["input"] == [3, 224, 224] and data["output"] == [1000]
    assert data["totals"]["params"] == 138_357_544 and data["totals"]["macs"] == 15_470_264_320
    assert data["totals"]["flops"] == 2 * 15_470_264_320 and data["totals"]["buffers"] == 0
    first_conv = data["layers"][1]
    assert {k: first_conv[k] for k in ("id", "spec", "type", "line", "inputs", "output_shape", "params",
                                       "macs", "flops")} == {
        "id": 1, "spec": "conv3-64", "type": "conv",
        "line": _first_line_with("specs/vgg16.arch", "features = conv3-64"),
        "inputs": [0],
        "output_shape": [64, 224, 224], "params": 1792, "macs": 86_704_128, "flops": 173_408_256,
    }
    assert all(isinstance(layer["params"], int) for layer in data["layers"])
    assert data["warnings"] == []


def _first_line_with(path: str, text: str) -> int:
    lines = open(path).read().splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.startswith(text))


def test_report_csv_keeps_integers() -> None:
    result = invoke("report", "vgg16", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert sum(int(r["params"]) for r in rows) == 138_357_544
    assert rows[33]["spec"] == "FC-4096" and rows[33]["params"] == "102764544"


def test_report_markdown_and_table_show_the_totals() -> None:
    for fmt in ("markdown", "table"):
        result = invoke("report", "vgg16", "--format", fmt)
        assert result.exit_code == 0
        assert "138,357,544" in result.output and "15,470,264,320" in result.output


def test_report_from_stdin_with_input_override() -> None:
    spec = "input 1x28x28\nconv5-6, maxpool, FC-10\n"
    result = invoke("report", "-", "--input", "1x32x32", "--format", "json", stdin=spec)
    assert json.loads(result.output)["layers"][1]["output_shape"] == [6, 32, 32]


def test_spec_error_is_clean_with_exit_status_2() -> None:
    result = invoke("report", "-", stdin="input 3x32x32\nconv3-64, maxpol\n")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "<stdin>:2:11: error: unknown layer 'maxpol'" in result.output
    assert "did you mean 'maxpool'?" in result.output


def test_bad_input_override_is_clean() -> None:
    result = invoke("report", "vgg16", "--input", "3x0x3")
    assert result.exit_code == 2
    assert "--input:1:1: error: input shape '3x0x3' has a zero or negative size" in result.output


def test_unknown_spec_name_suggests() -> None:
    result = invoke("report", "vgg61")
    assert result.exit_code == 2 and "Did you mean" in result.output and "'vgg16'" in result.output


def test_list_shows_builtin_specs_with_sources() -> None:
    result = invoke("list", "--format", "json")
    entries = {e["name"]: e for e in json.loads(result.output)}
    assert entries["vgg16"]["params"] == 138_357_544
    assert all(e["source"] for e in entries.values())


def test_layers_lists_every_registered_type() -> None:
    from archcalc.layers import REGISTRY

    names = {e["name"] for e in json.loads(invoke("layers", "--format", "json").output)}
    assert names == set(REGISTRY) - {"input"}


def test_report_depth_collapses_blocks() -> None:
    spec = "input 3x8x8\nblock two(c):\n    conv3-{c}, relu\n    conv3-{c}, relu\ntwo(4), two(8)\n"
    result = invoke("report", "-", "--depth", "0", stdin=spec)
    assert "two#1 (4 layers)" in result.output and "two#2 (4 layers)" in result.output
