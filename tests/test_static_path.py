"""The static path imports no torch and computes the figures the conventions define."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import archcalc
from archcalc.layers.window import window_output
from tests.conftest import analyze_text


def test_report_never_imports_torch() -> None:
    code = (
        "import sys, json\n"
        "from click.testing import CliRunner\n"
        "from archcalc.cli import cli\n"
        "r = CliRunner().invoke(cli, ['report', 'vgg16', '--format', 'json'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


# -- where torch may be imported ---------------------------------------------------------------

PACKAGE = Path(archcalc.__file__).parent
TORCH_PACKAGE = PACKAGE / "pytorch"  # builder, export, verify, probes: torch anywhere here
IMPORTERS = PACKAGE / "importers"  # models in: torch inside functions only (the package imports without it)
LAYERS = PACKAGE / "layers"
# in a layer type's file, only inside these methods (they run only when building)
TORCH_METHODS = frozenset({"torch_module", "rf_probe_module"})


def _names_torch(name: str | None) -> bool:
    return name is not None and (name == "torch" or name.startswith("torch."))


def _imports_torch(node: ast.AST) -> bool:
    """`import torch…`, `from torch… import …`, or `import_module("torch…")` / `__import__("torch…")`."""
    if isinstance(node, ast.Import):
        return any(_names_torch(alias.name) for alias in node.names)
    if isinstance(node, ast.ImportFrom):
        return node.level == 0 and _names_torch(node.module)
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        func = node.func
        called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        return called in ("import_module", "__import__") and _names_torch(str(node.args[0].value))
    return False


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def torch_imports(node: ast.AST, functions: tuple[str, ...] = ()) -> Iterator[tuple[int, tuple[str, ...]]]:
    """(line, enclosing functions) of every torch import under `node`; `if TYPE_CHECKING:` bodies never run."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from torch_imports(other, functions)
            continue
        if _imports_torch(child):
            yield child.lineno, functions
        inner = (*functions, child.name) if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else functions
        yield from torch_imports(child, inner)


def test_torch_is_imported_only_by_the_pytorch_package_and_layer_torch_methods() -> None:
    allowed, wrong = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        for line, functions in torch_imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            place = f"{path.relative_to(PACKAGE.parent)}:{line} (in {'.'.join(functions) or 'the module'})"
            ok = path.is_relative_to(TORCH_PACKAGE) or (
                path.is_relative_to(LAYERS) and bool(functions) and functions[-1] in TORCH_METHODS) or (
                path.is_relative_to(IMPORTERS) and bool(functions))
            (allowed if ok else wrong).append(place)
    assert not wrong, "torch imported outside archcalc/pytorch/ and the layer types' torch methods:\n" + \
        "\n".join(wrong)
    # the scan sees the imports that are allowed, so it cannot pass by finding nothing
    assert any("/layers/" in p for p in allowed) and any("/pytorch/" in p for p in allowed)
    assert any("/importers/" in p for p in allowed)


def test_the_torch_import_scan_sees_every_form() -> None:
    code = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import torch\n"  # never runs: not counted
        "import torch.nn as nn\n"
        "def f():\n    from torch import fx\n    importlib.import_module('torch.utils')\n"
        "class L:\n    def torch_module(self):\n        import torch\n"
    )
    found = list(torch_imports(ast.parse(code)))
    assert found == [(4, ()), (6, ("f",)), (7, ("f",)), (10, ("torch_module",))]


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "dilation", "ceil", "expected"),
    [
        (227, 11, 4, 0, 1, False, (55, True)),  # AlexNet conv1: (227 − 11)/4 + 1 = 55
        (224, 11, 4, 2, 1, False, (55, False)),  # torchvision: (224 − 11 + 4)/4 + 1 = 55.25
        (55, 3, 2, 0, 1, False, (27, True)),  # overlapping pool: (55 − 3)/2 + 1 = 27
        (112, 3, 2, 0, 1, True, (56, False)),  # GoogLeNet ceil_mode: ⌈109/2⌉ + 1 = 56
        (5, 2, 2, 1, 1, True, (3, False)),  # ceil would start the last window in the right padding: 4 → 3
        (32, 3, 1, 2, 2, False, (32, True)),  # dilation 2: effective kernel 5
    ],
)
def test_window_formula_matches_pytorchs(size: int, kernel: int, stride: int, padding: int,
                                         dilation: int, ceil: bool, expected: tuple[int, bool]) -> None:
    assert window_output(size, kernel, stride, padding, dilation, ceil) == expected


def test_vgg16_totals_equal_torchvision(torch_reference: dict) -> None:
    ref = torch_reference["models"]["vgg16"]
    a = analyze_text(open("specs/vgg16.arch").read())
    assert (a.totals.params, a.totals.macs, a.totals.flops) == (138_357_544, 15_470_264_320, 30_940_528_640)
    assert (a.totals.counts.weights, a.totals.counts.biases) == (ref["weights"], ref["biases"])
    assert a.totals.macs == ref["macs"] and a.totals.flops == ref["flops"]


def test_bias_adds_are_other_ops_not_macs() -> None:
    a = analyze_text("input 3x4x4\nconv3-2\n")
    # 2 maps × 4×4 positions × 3·3·3 weights; 32 bias adds go to 'other ops'
    assert a.macs[1] == 2 * 16 * 27
    assert a.other_ops[1].adds == 32


def test_batchnorm_statistics_are_buffers_not_params() -> None:
    a = analyze_text("input 3x4x4\nconv3-8/nobias, bn\n")
    bn = a.counts[2]
    assert (bn.weights, bn.biases, bn.buffers) == (8, 8, 2 * 8 + 1)
    assert a.totals.params == 8 * 27 + 16


def test_grouped_convolution_counts() -> None:
    a = analyze_text("input 32x8x8\nconv3-64/g32\n")
    assert a.counts[1].weights == 64 * (32 // 32) * 9
    assert a.macs[1] == 64 * 8 * 8 * 1 * 9


def test_inexact_division_is_floored_and_warned() -> None:
    a = analyze_text("input 3x224x224\nconv11-64/s4/p2\n")
    assert a.graph.output.shape == (64, 55, 55)
    assert [w.message for w in a.warnings] == [
        "conv11-64/s4/p2: (224 − 11 + 2·2)/4 + 1 = 55.25 is not whole: floored to 55"
    ]


def test_hidden_activation_follows_every_weighted_layer_but_the_last() -> None:
    g = analyze_text("input 3x8x8\nhidden-activation relu\nconv3-4, maxpool, FC-10, FC-2, soft-max\n").graph
    assert [n.type for n in g] == ["input", "conv", "relu", "maxpool", "flatten", "fc", "relu", "fc", "softmax"]
    assert [n.implicit for n in g if n.type in ("relu", "flatten")] == [True, True, True]


def test_one_three_dimensional_convolutions() -> None:
    one = analyze_text("input 16x100\nconv3-32, maxpool\n")
    assert one.graph.output.shape == (32, 50) and one.counts[1].params == 32 * 16 * 3 + 32
    three = analyze_text("input 3x16x112x112\nconv3-64, maxpool\n")
    assert three.graph.output.shape == (64, 8, 56, 56) and three.counts[1].params == 64 * 3 * 27 + 64
