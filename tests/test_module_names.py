"""torchvision's state dict loads into archcalc's model: the same keys, in the same order, with
the same shapes, for every built-in spec named after a torchvision model.

The keys and shapes were recorded from torchvision 0.29.1 by tools/torchvision_state_dict.py
(tests/reference/torchvision_state_dict.json), so this runs where torchvision is not installed;
the strict loads themselves (`load_state_dict(strict=True)` of a randomly initialised
torchvision model, then equal outputs) were run by the same script's `--load` mode
(tests/reference/torchvision_load.json).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

import archcalc  # noqa: E402
from archcalc import zoo  # noqa: E402
from archcalc.pytorch.build import assemble, build_modules  # noqa: E402
from archcalc.pytorch.export import export_source  # noqa: E402

REFERENCE = Path(__file__).parent / "reference"
MODELS = json.loads((REFERENCE / "torchvision_state_dict.json").read_text())["models"]
TORCHVISION_SPECS = sorted(set(MODELS) & set(zoo.names()))


def keys(model: Any) -> list[list[Any]]:
    return [[k, list(v.shape)] for k, v in model.state_dict().items()]


def test_the_classic_torchvision_specs_are_all_checked() -> None:
    assert set(TORCHVISION_SPECS) >= {
        "alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
        "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "wide_resnet50_2",
        "densenet121", "densenet169", "densenet201", "googlenet", "inception_v3", "mobilenet_v2",
        "squeezenet1_0"}


@pytest.mark.parametrize("name", TORCHVISION_SPECS)
def test_built_model_has_torchvisions_state_dict_keys_and_shapes(name: str) -> None:
    graph = archcalc.load(name)
    with torch.device("meta"):  # shapes only: nothing is allocated
        model = assemble(graph, build_modules(graph))
    assert keys(model) == MODELS[name]["state_dict"]


@pytest.mark.parametrize("name", ["vgg16_bn", "resnet50", "googlenet", "inception_v3", "densenet121",
                                  "mobilenet_v2", "squeezenet1_0", "alexnet"])
def test_exported_file_has_torchvisions_state_dict(name: str) -> None:
    namespace: dict[str, Any] = {"__name__": "exported"}
    exec(compile(export_source(archcalc.load(name)), f"{name}.py", "exec"), namespace)  # noqa: S102
    cls = next(v for v in namespace.values() if isinstance(v, type) and hasattr(v, "input_shape"))
    with torch.device("meta"):
        model = cls()
    assert keys(model) == MODELS[name]["state_dict"]


def test_the_strict_loads_were_run_and_held() -> None:
    loads = json.loads((REFERENCE / "torchvision_load.json").read_text())["models"]
    assert set(loads) >= set(TORCHVISION_SPECS) - {"inception_v3_aux"}
    for name, result in loads.items():
        assert result["strict_load"], (name, result)
        assert result["max_abs_diff"] < 1e-3, (name, result)
