"""The property tests' generators reach every layer type in the registry.

tests/test_property.py and tests/test_transformer_property.py check archcalc against PyTorch
only for the layer types their generators write. This test draws a fixed, derandomised batch
from both generators, loads each spec statically (no torch build) and collects the node types;
a type registered in archcalc/layers/ that none of them produces fails it, so a new layer type
comes with its generator. EXCLUDED names the types a random chain cannot hold, each with why.
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from hypothesis import HealthCheck, given, settings  # noqa: E402

from archcalc import load_text  # noqa: E402
from archcalc.errors import SpecError  # noqa: E402
from archcalc.layers import REGISTRY  # noqa: E402
from tests import test_property, test_transformer_property  # noqa: E402

EXCLUDED: dict[str, str] = {
    "input": "not a layer: the graph's input node, in every spec",
    "unknown": "written only by `archcalc import --allow-unknown`: an opaque op of someone else's model, its "
               "figures what the import measured (tests/test_import.py checks them against PyTorch)",
    "unknown-tensor": "as unknown: an opaque free tensor (a buffer or constant) of an imported model",
    "auto-shortcut": "internal: expansion resolves `shortcut: auto` into the identity or a 1×1 conv (+ BN), so no "
                     "graph holds it; rare() writes residuals whose shortcut must project",
}
DRAWS = 1200  # derandomised: the same specs every run; raise it if a rare branch goes missing


def _types(strategy: object, draws: int) -> set[str]:
    seen: set[str] = set()

    @settings(max_examples=draws, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(text: str) -> None:
        try:
            graph = load_text(text, "random.arch")
        except SpecError:
            return
        seen.update(node.type for node in graph)

    collect()
    return seen


def test_every_registered_layer_type_is_generated() -> None:
    covered = _types(test_property.specs(), DRAWS) | _types(test_transformer_property.specs(), DRAWS // 2)
    missing = sorted(set(REGISTRY) - covered - set(EXCLUDED))
    assert not missing, f"layer types no property-test generator produces: {missing}"


def test_exclusions_are_registered_types() -> None:
    assert set(EXCLUDED) <= set(REGISTRY)
