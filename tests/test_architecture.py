"""The import rule of docs/architecture.md: every arrow points one way.

Each folder of the package may import only the folders below it; `cli` and the façade
(`archcalc/__init__.py`) may import anything. Lazy imports inside functions count too:
a dependency is a dependency. The one exception is each layer type's `torch_module` /
`rf_probe_module` method, which builds its module from `archcalc.pytorch.modules`, so
that a layer type stays one file.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "archcalc"

# what each part may import (besides itself); the order is the pipeline's
ALLOWED: dict[str, set[str]] = {
    "records": set(),  # @record, the frozen dataclass every part's records are made with
    "alike": set(),  # value keys equal only for the same value of the same type (caches of lang and passes)
    "version": set(),
    "errors": {"records"},
    "tensor": set(),
    "zoo": {"errors", "records"},
    "quiet_gc": set(),
    "layers": {"errors", "tensor", "records"},
    "graph": {"errors", "tensor", "layers", "records"},
    "lang": {"errors", "tensor", "layers", "graph", "records", "alike"},
    "passes": {"errors", "tensor", "layers", "graph", "quiet_gc", "records", "alike"},
    "check": {"errors", "tensor", "layers", "graph", "passes", "records"},
    "report": {"errors", "tensor", "layers", "graph", "passes", "version", "records"},
    "pytorch": {"errors", "tensor", "layers", "graph", "passes", "version", "records"},
    # models in (torch.fx traces, ONNX graphs) → spec text; it reads the layer types' declarations, asks
    # lang for "did you mean" and parses and analyses what it wrote to check it against the model
    "importers": {"errors", "tensor", "layers", "graph", "lang", "passes", "version", "records"},
    # the repeated-block summary: expands a spec at a few small counts (lang), analyses each (passes) and
    # carries the JSON document's figures (report) to the written counts
    "repeats": {"errors", "tensor", "layers", "graph", "lang", "passes", "quiet_gc", "report", "version", "zoo",
                "records"},
}
ANYTHING = {"cli", "__init__", "__main__"}
LAYER_TORCH_METHODS = {"torch_module", "rf_probe_module"}


def part(path: Path) -> str:
    """The top-level part of the package a file belongs to: 'layers', 'errors', '__init__'…"""
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.name != "__init__.py" else "__init__"


def imports(path: Path) -> list[tuple[str, str | None]]:
    """(imported archcalc part, enclosing function name) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, str | None]] = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, child.name)
                continue
            names: list[str] = []
            if isinstance(child, ast.ImportFrom) and child.module:
                names = [child.module] if child.module != "archcalc" else [f"archcalc.{a.name}" for a in child.names]
            elif isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            for name in names:
                pieces = name.split(".")
                if pieces[0] == "archcalc":
                    found.append((pieces[1] if len(pieces) > 1 else "__init__", function))
            visit(child, function)

    visit(tree, None)
    return found


def test_every_import_points_down() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = part(path)
        if here in ANYTHING:
            continue
        for target, function in imports(path):
            if target == here or target in ALLOWED[here]:
                continue
            if here == "layers" and target == "pytorch" and function in LAYER_TORCH_METHODS:
                continue
            wrong.append(f"{path.relative_to(PACKAGE.parent)} ({here}) imports archcalc.{target}")
    assert not wrong, "imports against the rule in docs/architecture.md:\n" + "\n".join(wrong)


def test_the_rule_names_every_part_of_the_package() -> None:
    parts = {part(p) for p in PACKAGE.rglob("*.py")}
    assert parts <= set(ALLOWED) | ANYTHING, parts - set(ALLOWED) - ANYTHING
