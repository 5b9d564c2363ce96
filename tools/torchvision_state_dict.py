"""torchvision's state_dict key lists, and a strict load of each into archcalc's exported model.

    /work/refvenv/bin/python tools/torchvision_state_dict.py      # tests/reference/torchvision_state_dict.json
    PYTHONPATH=. /work/refvenv/bin/python tools/torchvision_state_dict.py --load   # the strict loads
    PYTHONPATH=. /work/refvenv/bin/python tools/torchvision_state_dict.py --load r3d_18 swin_t   # some, merged

The first mode imports only torch and torchvision: for every model below it builds the
torchvision model with random weights (weights=None; on the meta device where it can be,
so nothing is allocated) and records each state_dict key with its shape, in order. tests/test_module_names.py
asserts that archcalc's built model for the spec of the same name has exactly these keys and
shapes (CI has torch but not torchvision).

`--load` also imports archcalc (run from the repository root): for every built-in spec that has
a recorded model it exports the spec with `export_source`, runs the file, loads a randomly
initialised torchvision model's state_dict into it with `load_state_dict(strict=True)`, and
compares the two models' outputs on one random input in eval mode. It prints one line per
model and writes tests/reference/torchvision_load.json with what it found.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torchvision

REFERENCE = Path(__file__).resolve().parent.parent / "tests" / "reference"
tvm = torchvision.models

# spec name -> constructor source (evaluated with torchvision's namespaces), input shape
MODELS: dict[str, tuple[str, tuple[int, ...]]] = {
    **{name: (f"tvm.{name}(weights=None)", (3, 224, 224)) for name in (
        "alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
        "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d",
        "wide_resnet50_2", "densenet121", "densenet169", "densenet201", "mobilenet_v2", "mobilenet_v3_large",
        "mobilenet_v3_small", "squeezenet1_0", "squeezenet1_1", "mnasnet1_0", "shufflenet_v2_x0_5",
        "shufflenet_v2_x1_0", "efficientnet_b0", "regnet_x_400mf", "regnet_y_400mf", "vit_b_16", "vit_b_32",
        "swin_t", "convnext_tiny")},
    "efficientnet_b1": ("tvm.efficientnet_b1(weights=None)", (3, 240, 240)),
    "efficientnet_v2_s": ("tvm.efficientnet_v2_s(weights=None)", (3, 384, 384)),
    # the zoo's specs are the inference networks: no auxiliary classifiers, no input transform
    "googlenet": ("tvm.googlenet(weights=None, aux_logits=False, transform_input=False, init_weights=False)",
                  (3, 224, 224)),
    "inception_v3": ("tvm.inception_v3(weights=None, aux_logits=False, transform_input=False, init_weights=False)",
                     (3, 299, 299)),
    "r3d_18": ("tvm.video.r3d_18(weights=None)", (3, 16, 112, 112)),
    "fcn_resnet50": ("tvm.segmentation.fcn_resnet50(weights=None, weights_backbone=None, aux_loss=False)",
                     (3, 520, 520)),
    "deeplabv3_mobilenet_v3_large": (
        "tvm.segmentation.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, aux_loss=False)",
        (3, 520, 520)),
    "lraspp_mobilenet_v3_large": (
        "tvm.segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None)", (3, 520, 520)),
}


def make(name: str) -> torch.nn.Module:
    return eval(MODELS[name][0], {"tvm": tvm})  # noqa: S307 - our own constructor strings


def record() -> None:
    models = {}
    for name, (source, shape) in MODELS.items():
        try:
            with torch.device("meta"):
                model = make(name)
        except NotImplementedError:  # RegNet computes its widths from tensors at construction
            model = make(name)
        models[name] = {"constructor": f"torchvision.models.{source[4:]}", "input": list(shape),
                        "state_dict": [[k, list(v.shape)] for k, v in model.state_dict().items()]}
        print(f"{name}: {len(models[name]['state_dict'])} keys")
    out = {"meta": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                    "made_by": "tools/torchvision_state_dict.py"},
           "models": models}
    (REFERENCE / "torchvision_state_dict.json").write_text(_one_key_a_line(out))


def _one_key_a_line(data: dict) -> str:
    """JSON with one state_dict entry a line: small enough to read and to diff."""
    lines = ["{", f' "meta": {json.dumps(data["meta"])},', ' "models": {']
    for i, (name, m) in enumerate(data["models"].items()):
        keys = ",\n".join(f"   {json.dumps(k)}" for k in m["state_dict"])
        lines.append(f'  {json.dumps(name)}: {{"constructor": {json.dumps(m["constructor"])}, '
                     f'"input": {json.dumps(m["input"])}, "state_dict": [\n{keys}\n  ]}}'
                     + ("," if i < len(data["models"]) - 1 else ""))
    lines += [" }", "}", ""]
    return "\n".join(lines)


def load(only: list[str]) -> None:
    """The strict loads; with names, only those models, merged into the recorded file."""
    import archcalc
    from archcalc import zoo
    from archcalc.pytorch.export import export_source

    path = REFERENCE / "torchvision_load.json"
    results = json.loads(path.read_text())["models"] if only and path.exists() else {}
    for name in sorted(set(MODELS) & set(zoo.names()) & (set(only) if only else set(MODELS))):
        torch.manual_seed(0)
        theirs = make(name).eval()
        graph = archcalc.load(name)
        namespace: dict[str, object] = {"__name__": "exported"}
        exec(compile(export_source(graph), f"{name}.py", "exec"), namespace)  # noqa: S102 - archcalc's export
        cls = next(v for v in namespace.values() if isinstance(v, type) and issubclass(v, torch.nn.Module)
                   and v.__module__ == "exported" and hasattr(v, "input_shape"))
        ours = cls().eval()
        try:
            ours.load_state_dict(theirs.state_dict(), strict=True)
        except RuntimeError as e:
            results[name] = {"strict_load": False, "error": str(e).splitlines()[0]}
            print(f"{name}: strict load FAILED: {str(e)[:400]}")
            continue
        x = torch.randn(2, *graph.input.shape)
        with torch.no_grad():
            a, b = ours(x), theirs(x)
        a = a[0] if isinstance(a, tuple) else a
        b = b["out"] if isinstance(b, dict) else b
        if graph.output.type in ("softmax", "log-softmax"):  # the paper's soft-max after torchvision's logits
            b = torch.softmax(b, dim=1) if graph.output.type == "softmax" else torch.log_softmax(b, dim=1)
        diff = (a - b).abs().max().item()
        results[name] = {"strict_load": True, "keys": len(theirs.state_dict()), "max_abs_diff": diff}
        print(f"{name}: strict load ok, {len(theirs.state_dict())} keys, outputs differ by at most {diff:.3g}")
    out = {"meta": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                    "made_by": "tools/torchvision_state_dict.py --load"}, "models": dict(sorted(results.items()))}
    path.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    args = sys.argv[1:]
    load([a for a in args if a != "--load"]) if "--load" in args else record()
