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
import re
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


# Specs whose state_dict keys are torchvision's but in another order (load_state_dict does not depend on
# the order; the strict load below is run for them too): torchvision registers a module's children in
# its __init__'s order, archcalc in call order, and these two differ. The key test checks them as a set
# and that the order differs in nothing else.
ORDER_ONLY = {
    "swin_t": "PatchMerging registers its reduction before its norm though it calls the norm first "
              "(features.2/4/6.norm before .reduction here)",
}
# Specs named after a torchvision model whose module names are not torchvision's yet, each with why
# (their figures are exact all the same; only the state_dict keys differ). The key test below is an
# xfail(strict) for them — it fails the day one starts to match, so the entry gets removed — and the
# test after it checks the keys differ in nothing but their names.
EXCEPTIONS = {
    # torchvision's LRASPP reads two of its backbone's outputs (IntermediateLayerGetter's "low", features.4,
    # and "high", features.16), and its keys put all 17 feature rows in one container, backbone.0 …
    # backbone.16; a spec's named container (a block call or a named statement) hands on one tensor only,
    # so naming features.4's output for the head and keeping backbone.5 … 16 in the same container needs a
    # way to name a node inside a container that the language does not have yet
    "lraspp_mobilenet_v3_large": "not yet named as torchvision's: backbone.0 … backbone.16 and classifier.cbr, "
                                 ".scale, .low_classifier, .high_classifier there; here the head's names sit at "
                                 "the top level (cbr, scale, low_classifier, high_classifier), the features numbered",
}


def keys(model: Any) -> list[list[Any]]:
    return [[k, list(v.shape)] for k, v in model.state_dict().items()]


def built(name: str) -> Any:
    graph = archcalc.load(name)
    with torch.device("meta"):  # shapes only: nothing is allocated
        return assemble(graph, build_modules(graph))


def built_text(text: str) -> Any:
    graph = archcalc.load_text(text)
    with torch.device("meta"):
        return assemble(graph, build_modules(graph))


def test_the_classic_torchvision_specs_are_all_checked() -> None:
    assert set(TORCHVISION_SPECS) >= {
        "alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
        "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "wide_resnet50_2",
        "densenet121", "densenet169", "densenet201", "googlenet", "inception_v3", "mobilenet_v2",
        "squeezenet1_0"}


def test_every_torchvision_named_spec_on_main_is_checked() -> None:
    # issue 13's and 14's specs; the families are named once through their members
    newer = {"vit_b_16", "vit_b_32", "swin_t", "convnext_tiny", "efficientnet_b0", "efficientnet_b1",
             "efficientnet_v2_s", "mobilenet_v3_large", "mobilenet_v3_small", "mnasnet1_0", "shufflenet_v2_x0_5",
             "shufflenet_v2_x1_0", "squeezenet1_1", "regnet_x_400mf", "regnet_y_400mf", "resnext101_32x8d",
             "r3d_18", "fcn_resnet50", "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"}
    assert newer <= set(TORCHVISION_SPECS)
    assert set(EXCEPTIONS) <= newer and len(TORCHVISION_SPECS) == 43
    assert len(set(TORCHVISION_SPECS) - set(EXCEPTIONS)) == 42


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=EXCEPTIONS[n])) if n in EXCEPTIONS else n
    for n in TORCHVISION_SPECS])
def test_built_model_has_torchvisions_state_dict_keys_and_shapes(name: str) -> None:
    mine, theirs = keys(built(name)), MODELS[name]["state_dict"]
    if name not in ORDER_ONLY:
        assert mine == theirs
        return
    assert mine != theirs and sorted(map(str, mine)) == sorted(map(str, theirs))
    moved = {k.rsplit(".", 2)[0] for (k, _), (t, _) in zip(mine, theirs) if k != t}
    assert moved == {"features.2", "features.4", "features.6"}  # Swin's three PatchMerging modules only


@pytest.mark.parametrize("name", sorted(EXCEPTIONS))
def test_the_exceptions_differ_only_in_names(name: str) -> None:
    # the same tensors, shape for shape: what differs is where they sit and what they are called
    mine, theirs = keys(built(name)), MODELS[name]["state_dict"]
    assert len(mine) == len(theirs)
    assert sorted(tuple(s) for _, s in mine) == sorted(tuple(s) for _, s in theirs)


def test_a_named_free_tensor_is_a_parameter_of_its_container_in_the_state_dict() -> None:
    # ViT's class_token (the model's), encoder.pos_embedding (the Encoder's), a CNBlock's layer_scale:
    # listed first among their container's keys, loaded back into the layer's module
    text = ("name t\ninput 4x3\nblock b:\n    scale = layer-scale(init=0.5)\n    fc-4\n"
            "cls = class-token\nparts = b\nlayer-scale\n")
    model = built_text(text)
    # named: the container's own, first among its keys; unnamed (numbered): a module of its own, as before
    assert [k for k, _ in keys(model)] == ["cls", "parts.scale", "parts.0.weight", "parts.0.bias", "0.layer_scale"]
    state = {k: torch.full_like(v, 7.0, device="cpu") for k, v in model.state_dict().items()}
    model.load_state_dict(state, strict=True, assign=True)
    assert float(model.get_submodule("cls").class_token.detach().flatten()[0]) == 7.0
    assert float(model.get_submodule("parts.scale").layer_scale.detach().flatten()[0]) == 7.0
    assert sum(p.numel() for p in model.parameters()) == archcalc.analyze(text).totals.params


@pytest.mark.parametrize("name", ["vgg16_bn", "resnet50", "googlenet", "inception_v3", "densenet121",
                                  "mobilenet_v2", "squeezenet1_0", "alexnet", "efficientnet_b0",
                                  "mobilenet_v3_small", "shufflenet_v2_x0_5", "mnasnet1_0", "r3d_18",
                                  "vit_b_32", "convnext_tiny", "regnet_y_400mf", "fcn_resnet50",
                                  "deeplabv3_mobilenet_v3_large"])
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
        if name in EXCEPTIONS:  # tried, and refused with torchvision's own error
            assert not result["strict_load"] and "Error(s) in loading state_dict" in result["error"], (name, result)
            continue
        assert result["strict_load"], (name, result)
        assert result["max_abs_diff"] < 1e-3, (name, result)


FAMILIES = json.loads((REFERENCE / "zoo14_families.json").read_text())["models"]
REGNETS = sorted(k for k in FAMILIES if k.startswith("regnet"))


@pytest.mark.parametrize("key", REGNETS)
def test_regnet_stages_are_torchvisions_for_every_member(key: str) -> None:
    # specs/families/regnet.arch groups its blocks into trunk_output.block1 … block4 by a closed form
    # of the width level; the stages must start exactly where the width changes (a stride-2 block with
    # a projection), in every torchvision RegNet, not only the two named specs
    ref = FAMILIES[key]
    graph = archcalc.load(ref["spec"], tuple(ref["input"]), params=ref["params_set"])
    blocks: dict[str, list[int]] = {}
    projected = set()
    for n in graph:
        m = re.match(r"trunk_output\.block(\d+)\.block(\d+)-(\d+)\.", n.module or "")
        if m:
            assert m.group(1) == m.group(2), n.module
            blocks.setdefault(m.group(1), [])
            if int(m.group(3)) not in blocks[m.group(1)]:
                blocks[m.group(1)].append(int(m.group(3)))
            if ".proj.0" in n.module:
                projected.add((m.group(1), int(m.group(3)), n.args["stride"]))
    assert list(blocks) == ["1", "2", "3", "4"]
    assert all(v == list(range(len(v))) for v in blocks.values())
    assert sum(map(len, blocks.values())) == ref["params_set"]["depth"]
    assert {(s, i) for s, i, _ in projected} == {(s, 0) for s in blocks}  # each stage's first block, only
    assert all(stride in ((2,), (2, 2)) for _, _, stride in projected)


def test_a_quoted_name_names_a_module_no_identifier_can_spell() -> None:
    from archcalc.pytorch.build import module_names

    text = ('name q\ninput 3x8x8\nparam s=2\nblock st(k):\n    "blk{k}-0" = conv3-4 for j in range(2)\n'
            '"stem-a" = conv3-4, relu\n"block{s}" = st(s)\n')
    assert list(module_names(archcalc.load_text(text)).values()) == [
        "stem-a.0", "stem-a.1", "block2.blk2-0", "block2.blk2-1"]


@pytest.mark.parametrize(("line", "message"), [
    ('"a.b" = relu', "t.arch:3:2: error: 'a.b' is not a module name"),
    ('"{nope}" = relu', "t.arch:3:2: error: unknown name 'nope'"),
])
def test_a_quoted_name_that_is_not_a_module_name_is_an_error(line: str, message: str) -> None:
    from archcalc.errors import SpecError

    with pytest.raises(SpecError) as e:
        archcalc.load_text(f"name q\ninput 3x8x8\n{line}\n", "t.arch")
    assert str(e.value).startswith(message), str(e.value)


@pytest.mark.parametrize("token", ["mlp/sequential(hidden=8, dropout=0.0)", "mlp/sequential(hidden=8, act=relu)"])
def test_a_sequential_mlp_is_torchvisions_mlp_block(token: str) -> None:
    text = f"name t\ninput 5x4\nmlp = {token}\n"
    graph = archcalc.load_text(text)
    node = next(n for n in graph if n.type == "mlp")
    module = node.layer.torch_module(node.args, node.in_shapes, node.shape)
    assert isinstance(module, torch.nn.Sequential)
    assert {k: tuple(v.shape) for k, v in module.state_dict().items()} == node.layer.param_shapes(
        node.args, node.in_shapes, node.shape)
    assert sum(p.numel() for p in module.parameters()) == archcalc.analyze(text).totals.params


def test_a_sequential_mlp_is_neither_gated_nor_conv1d() -> None:
    from archcalc.errors import SpecError

    with pytest.raises(SpecError, match="/sequential is torchvision's MLP"):
        archcalc.load_text("name t\ninput 5x4\nmlp/sequential/gated(hidden=8, act=silu)\n")
