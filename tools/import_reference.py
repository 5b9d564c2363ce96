#!/usr/bin/env python3
"""Round trips of every torchvision classification model through `archcalc import`, measured.

For each model the script measures PyTorch's own figures — sum(p.numel()), buffers,
FlopCounterMode FLOPs at batch 1 and the output shape of every leaf-module call in forward
order (forward hooks) — on the meta device, then imports the model with archcalc, writes the
spec to tests/reference/imported/NAME.arch, reads it back, and asserts that its analysis
gives exactly those figures, that every leaf call's node has that call's shape; for one model
of each family (CHECKED) also that `archcalc verify` of the written spec passes on the CPU, and
it exports that model to ONNX
(torch.onnx.export, the TorchScript exporter, BatchNorm kept: training=PRESERVE; random
distinct weights so no initializer is deduplicated; AlexNet and VGG at 224, ONNX_SIZE), imports
the file and asserts its initializer elements, parameters, buffers, FLOPs and output shape.
Models archcalc cannot import yet are listed with the operations it lacks. The printed JSON goes
to tests/reference/import_reference.json, which tests/test_import_reference.py asserts against
the committed specs (CI has no torchvision).

    PYTHONPATH=. /work/refvenv/bin/python tools/import_reference.py > tests/reference/import_reference.json

imports the whole zoo (every name torchvision.models.list_models gives, 80 in torchvision 0.29). The
committed reference is that whole zoo, made in two parallel parts (7–15 minutes on 2 shared
cores) and merged:

    for k in 0 1; do
        PYTHONPATH=. /work/refvenv/bin/python tools/import_reference.py --part $k/2 > /tmp/ir$k.json &
    done; wait
    /work/refvenv/bin/python tools/import_reference.py --merge /tmp/ir0.json /tmp/ir1.json \
        > tests/reference/import_reference.json

The ONNX part alone of some models, into the committed reference (every other entry as it was):

    PYTHONPATH=. /work/refvenv/bin/python tools/import_reference.py --onnx \
        tests/reference/import_reference.json alexnet vgg11_bn swin_t > /tmp/ir.json

`--families` instead of names imports one or two models of each family (FAMILY_SET), a quick check.
Inputs are 3×64×64 except where SIZE says: ViT and Swin at their own image size (224; Swin V2 256,
MaxViT 224), as torchvision builds them (no image_size= given), Inception-v3 at 80 (its smallest).
Models are built with weights=None; GoogLeNet and Inception-v3 with aux_logits=False (their
auxiliary heads run in training only, so an eval-mode forward never calls them: imported
with them, their parameters are kept as free tensors and their 514 / 1,794 BatchNorm buffer
elements are said to be left out). Deterministic: no time or date is recorded.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import warnings
from typing import Any

warnings.filterwarnings("ignore")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
import torchvision  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from archcalc import load_text  # noqa: E402
from archcalc.errors import ArchcalcError, UnknownOpsError  # noqa: E402
from archcalc.importers import import_module, import_onnx  # noqa: E402
from archcalc.passes.analysis import analyze  # noqa: E402
from archcalc.pytorch.verify import verify  # noqa: E402

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECS = os.path.join(HERE, "tests", "reference", "imported")
SIZE = {"inception_v3": 80, "alexnet": 64, "vit_b_16": 224, "vit_b_32": 224, "vit_l_16": 224, "vit_l_32": 224,
        "vit_h_14": 224, "maxvit_t": 224, "swin_t": 224, "swin_s": 224, "swin_b": 224, "swin_v2_t": 256,
        "swin_v2_s": 256, "swin_v2_b": 256}
KWARGS = {"googlenet": {"aux_logits": False, "init_weights": False},
          "inception_v3": {"aux_logits": False, "init_weights": False}}
# verify (a CPU build and run) and the ONNX round trip (random weights, export, read back) take
# most of the time on a shared CPU: they run for one model of each family, the import and its
# node-by-node check against PyTorch for every model
CHECKED = ("alexnet", "vgg11_bn", "resnet18", "densenet121", "googlenet", "inception_v3", "squeezenet1_1",
           "mobilenet_v3_small", "mnasnet0_5", "shufflenet_v2_x0_5", "regnet_x_400mf", "efficientnet_b0",
           "convnext_tiny", "vit_b_32", "swin_t")
# one or two models of each family (--families): a quick check; the committed reference is the whole zoo
FAMILY_SET = ("alexnet", "vgg11", "vgg11_bn", "vgg16_bn", "resnet18", "resnet50", "resnext50_32x4d",
             "wide_resnet50_2", "densenet121", "googlenet", "inception_v3", "squeezenet1_0", "squeezenet1_1",
             "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "mnasnet0_5", "mnasnet1_0",
             "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "regnet_x_400mf", "regnet_y_400mf", "efficientnet_b0",
             "efficientnet_v2_s", "convnext_tiny", "vit_b_32", "swin_t", "maxvit_t")
# the ONNX round trip at 224: at 64×64 AlexNet's features end 1×1 and VGG's 2×2, and the exporter
# refuses an adaptive pool whose output (6×6, 7×7) does not divide its input; the smallest inputs
# where they are 6×6 and 7×7 are 223 and 224 (32×32 leaves VGG 1×1, uneven too)
ONNX_SIZE = {"alexnet": 224, "vgg11_bn": 224}
ONNX_NOTE = ("the model exported with torch.onnx.export(dynamo=False, training=PRESERVE) and imported: "
             "initializer_elements = params + buffers - the BatchNorm batch counters (not exported); where "
             "recorded, input is the size exported (AlexNet and VGG at 224, ONNX_SIZE) and flops and output "
             "the imported file's analysis, equal to FlopCounterMode's and PyTorch's output at that size")


OPAQUE = (torch.nn.MultiheadAttention, torchvision.models.swin_transformer.ShiftedWindowAttention)


def build(name: str, device: str) -> Any:
    with torch.device(device):
        return torchvision.models.get_model(name, weights=None, **KWARGS.get(name, {})).eval()


def make(name: str) -> Any:
    """On meta where the constructor allows (RegNet's computes widths with tensors: CPU)."""
    try:
        return build(name, "meta")
    except (NotImplementedError, RuntimeError):
        return build(name, "cpu")


def measure(model: Any, size: int) -> dict[str, Any]:
    calls: list[list[Any]] = []
    hooks = []
    for path, module in model.named_modules():
        # leaves, and nn.MultiheadAttention and Swin's ShiftedWindowAttention, whose Linear children are
        # never called as modules (F.linear on their weights)
        if path and (not list(module.children()) or type(module) in OPAQUE):
            def hook(_m: Any, _a: Any, out: Any, path: str = path) -> None:
                tensor = out[0] if isinstance(out, tuple) else out
                calls.append([path, list(tensor.shape[1:])])
            hooks.append(module.register_forward_hook(hook))
    state = {k: torch.empty_like(v, device="meta") for k, v in [*model.named_parameters(), *model.named_buffers()]}
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = torch.func.functional_call(model, state, (torch.zeros(1, 3, size, size, device="meta"),))
    for h in hooks:
        h.remove()
    return {"input": [3, size, size], "params": sum(p.numel() for p in model.parameters()),
            "buffers": sum(b.numel() for b in model.buffers()), "flops": counter.get_total_flops(),
            "output": list(out.shape[1:]), "leaf_calls": calls}


def round_trip(name: str) -> dict[str, Any]:
    size = SIZE.get(name, 64)
    truth = measure(make(name), size)
    imported = import_module(make(name), (3, size, size), name=name, origin=f"torchvision.models:{name}")
    with open(os.path.join(SPECS, f"{name}.arch"), "w", encoding="utf-8") as f:
        f.write(imported.spec)
    a = analyze(load_text(imported.spec, f"{name}.arch"))
    got = {"params": a.totals.params, "buffers": a.totals.counts.buffers, "flops": a.totals.flops}
    assert got == {k: truth[k] for k in got}, (name, got, {k: truth[k] for k in got})
    nodes = [[path, node] for path, node in imported.modules]
    assert [[p, list(a.graph.node(i).shape)] for p, i in nodes] == truth["leaf_calls"], name
    entry = {**truth, "spec": f"imported/{name}.arch", "spec_lines": imported.spec.count("\n"),
             "blocks": imported.blocks, "nodes": imported.checked.nodes, "module_nodes": nodes}
    why = {"ok": None, "why": "checked for one model per family (CHECKED in tools/import_reference.py)"}
    if name in CHECKED:
        report = verify(imported.graph, device="cpu", runs=0, rf=False)
        assert report.ok, (name, report.failures[:3])
        entry["verify"] = {"ok": report.ok, "checks": len(report.checks)}
    else:
        entry["verify"] = why
    entry["onnx"] = onnx_round_trip(name, size, truth) if name in CHECKED else why
    return entry


def onnx_round_trip(name: str, size: int, truth: dict[str, Any]) -> dict[str, Any]:
    """The model exported at ONNX_SIZE (else its import size) and read back: initializer elements,
    parameters, buffers, FLOPs and output shape against PyTorch's at that size."""
    if ONNX_SIZE.get(name, size) != size:
        size = ONNX_SIZE[name]
        truth = measure(make(name), size)
    model = build(name, "cpu")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # distinct values, so the exporter deduplicates no initializer
        for t in [*model.parameters(), *(b for k, b in model.named_buffers() if "running" in k)]:
            t.copy_(torch.rand(t.shape, generator=g) + 0.5)
    buf = io.BytesIO()
    try:
        with contextlib.redirect_stdout(sys.stderr):  # the exporter prints its graph when it fails
            torch.onnx.export(model, (torch.randn(1, 3, size, size),), buf, dynamo=False,
                              training=torch.onnx.TrainingMode.PRESERVE)
    except Exception as e:  # noqa: BLE001 - the exporter's own limits (adaptive pools of uneven sizes)
        return {"ok": None, "why": f"torch.onnx.export: {str(e).splitlines()[0][:160]}"}
    path = os.path.join("/tmp", f"archcalc_{name}.onnx")
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    try:
        imported = import_onnx(path, name=name)
    except UnknownOpsError as e:  # named: the ONNX ops archcalc has no rule for yet, and why
        return {"ok": False, "unknown": [[op, count] for op, count, _ in e.unknown],
                "reasons": [line.strip() for line in str(e).splitlines()[1:]
                            if line.startswith("  ") and not line.startswith("      ")]}
    except ArchcalcError as e:
        return {"ok": False, "error": str(e).splitlines()[0]}
    finally:
        os.remove(path)
    a = analyze(imported.graph)
    counters = sum(1 for k, _ in model.named_buffers() if k.endswith("num_batches_tracked"))
    elements = truth["params"] + truth["buffers"] - counters  # what the file's initializers hold
    ours = a.totals.params + a.totals.counts.buffers - sum(1 for n in a.graph if n.type == "bn")
    assert ours == elements and list(a.graph.output.shape) == truth["output"], (name, ours, elements)
    assert (a.totals.params, a.totals.counts.buffers) == (truth["params"], truth["buffers"]), name
    assert a.totals.flops == truth["flops"] and not a.unknown_ops, (name, a.totals.flops, truth["flops"])
    return {"ok": True, "initializer_elements": elements, "params": a.totals.params,
            "buffers": a.totals.counts.buffers, "nodes": imported.checked.nodes, "input": [3, size, size],
            "flops": a.totals.flops, "output": list(a.graph.output.shape)}


def onnx_again(path: str, names: list[str]) -> None:
    """The committed reference with the ONNX part of the named models made again (`--onnx`): every
    other entry as it was."""
    with open(path, encoding="utf-8") as f:
        ref = json.load(f)
    for name in names:
        size = ref["models"][name]["input"][1]
        ref["models"][name]["onnx"] = onnx_round_trip(name, size, measure(make(name), size))
        print(f"{name}: onnx {ref['models'][name]['onnx']}", file=sys.stderr)
    ref["notes"]["onnx"] = ONNX_NOTE
    print(json.dumps(ref, indent=1, sort_keys=True))


def merge(paths: list[str]) -> None:
    """The JSON of several runs over parts of the zoo (`--part K/N`), as one."""
    runs = []
    for path in paths:  # the JSON is the last thing printed: a run before export's stdout was kept apart
        text = open(path, encoding="utf-8").read()
        runs.append(json.loads(text[0 if text.startswith("{\n") else text.rindex("\n{\n") + 1:]))
    out = {**runs[0], "models": {}, "missing": {}, "failed": {}}
    out.pop("transformers", None)  # Hugging Face's models: tools/hf_reference.py (tests/reference/hf_reference.json)
    for run in runs:
        for key in ("models", "missing", "failed"):
            out[key].update(run.get(key, {}))
    print(json.dumps(out, indent=1, sort_keys=True))


def main() -> None:
    if sys.argv[1:2] == ["--merge"]:
        merge(sys.argv[2:])
        return
    if sys.argv[1:2] == ["--onnx"]:
        onnx_again(sys.argv[2], sys.argv[3:])
        return
    os.makedirs(SPECS, exist_ok=True)
    args = sys.argv[1:]
    part = args[1] if args[:1] == ["--part"] else None  # K/N: every Nth model from the Kth (parallel runs)
    names = args[2:] if part else args
    zoo = torchvision.models.list_models(module=torchvision.models)
    if names == ["--families"]:
        names = list(FAMILY_SET)
    names = names or zoo
    if part:
        k, n = map(int, part.split("/"))
        names = names[k::n]
    models, missing, failed = {}, {}, {}
    for name in names:
        try:
            models[name] = round_trip(name)
            print(f"{name}: ok", file=sys.stderr)
        except UnknownOpsError as e:  # each op with its count, and the message's lines saying why
            missing[name] = {"unknown": [[op, count] for op, count, _ in e.unknown],
                             "reasons": [line.strip() for line in str(e).splitlines()[1:]
                                         if line.startswith("  ") and not line.startswith("      ")]}
            print(f"{name}: unknown ops {missing[name]['unknown']}", file=sys.stderr)
        except ArchcalcError as e:
            missing[name] = {"error": str(e).splitlines()[0]}
            print(f"{name}: {missing[name]['error']}", file=sys.stderr)
        except AssertionError as e:  # a figure that differs: a bug, recorded so the test names it
            failed[name] = str(e)[:400]
            print(f"{name}: FAILED {failed[name]}", file=sys.stderr)
    out = {
        "meta": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                 "command": "PYTHONPATH=. /work/refvenv/bin/python tools/import_reference.py --part K/2, "
                            "K = 0, 1, then --merge (the module docstring)",
                 "kwargs": KWARGS, "sizes": "3×64×64 unless listed in 'sizes_given'", "sizes_given": SIZE},
        "notes": {
            "figures": "params, buffers: sum of numel over parameters / buffers of the torchvision model; flops: "
                       "FlopCounterMode at batch 1 on the meta device; leaf_calls: [path, output shape without the "
                       "batch] of every leaf-module call in forward order (forward hooks; nn.MultiheadAttention and "
                       "Swin's ShiftedWindowAttention count as leaves: their Linear children are never called)",
            "module_nodes": "[path, node id] pairs from archcalc's import: which node of the committed spec "
                            "stands for each leaf call (the test compares the node's shape with leaf_calls)",
            "onnx": ONNX_NOTE,
            "missing": "models archcalc cannot import yet, with the operations it has no rule for (×count) and "
                       "the import's own line for each (why)",
            "zoo": "every classification model torchvision.models.list_models(module=torchvision.models) names",
            "failed": "models whose import gave a figure other than PyTorch's (a bug; empty when all agree)",
        },
        "zoo": zoo,
        "models": models,
        "missing": missing,
        "failed": failed,
    }
    print(json.dumps(out, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
