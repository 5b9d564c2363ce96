#!/usr/bin/env python3
"""Generate reference figures for archcalc's tests from PyTorch / torchvision / timm.

This script is stand-alone: it imports only the standard library, torch,
torchvision and timm.  It is NOT part of archcalc and is not run by the test
suite; it produces the JSON file that the tests assert against:

    python tools/torch_reference.py > tests/reference/torch_reference.json

(run with an interpreter that has torch, torchvision and timm installed, e.g.
``/tmp/tvenv/bin/python``).  No pretrained weights are ever downloaded: every
model is built with random initialisation, which does not affect any figure
recorded here.

For each model it records (all shapes exclude the batch dimension):

  params                    sum of numel over model.parameters()
  weights / biases          params split by whether the parameter name ends
                            with "bias" (everything else counts as a weight)
  buffers                   sum of numel over model.buffers(); note that every
                            BatchNorm has a 1-element num_batches_tracked buffer
  buffers_without_counters  buffers, excluding those named *num_batches_tracked
  flops                     total of torch.utils.flop_counter.FlopCounterMode
                            over one forward pass at batch size 1
  macs                      flops // 2 (FlopCounterMode counts 2 FLOPs per MAC)
  flops_by_op               FlopCounterMode's global per-aten-op breakdown
  flops_by_module           FlopCounterMode totals for each direct child of
                            the root module (names relative to the root)
  input / output            [C, H, W] fed in, output shape
  conv_shapes               [module_name, output shape] for every Conv1d/2d/3d,
                            in forward execution order (forward hooks)
  linear                    [module_name, in_features, out_features] for every
                            nn.Linear, in forward execution order

A "modules" section adds a few recurrent / embedding layers.
"""

import datetime
import json
import sys
import warnings

import timm
import torch
import torch.nn as nn
import torchvision
from torch.utils.flop_counter import FlopCounterMode

COMMAND = "python tools/torch_reference.py > tests/reference/torch_reference.json"

tvm = torchvision.models

# name -> (constructor, input spatial size).  All torchvision models are built
# with weights=None; models with a random-init step that is slow or that
# warns (googlenet, inception_v3) get init_weights=False, which changes no
# shape or count.
MODELS = {
    "alexnet": (lambda: tvm.alexnet(weights=None), 224),
    "vgg11": (lambda: tvm.vgg11(weights=None), 224),
    "vgg13": (lambda: tvm.vgg13(weights=None), 224),
    "vgg16": (lambda: tvm.vgg16(weights=None), 224),
    "vgg19": (lambda: tvm.vgg19(weights=None), 224),
    "vgg11_bn": (lambda: tvm.vgg11_bn(weights=None), 224),
    "vgg13_bn": (lambda: tvm.vgg13_bn(weights=None), 224),
    "vgg16_bn": (lambda: tvm.vgg16_bn(weights=None), 224),
    "vgg19_bn": (lambda: tvm.vgg19_bn(weights=None), 224),
    "resnet18": (lambda: tvm.resnet18(weights=None), 224),
    "resnet34": (lambda: tvm.resnet34(weights=None), 224),
    "resnet50": (lambda: tvm.resnet50(weights=None), 224),
    "resnet101": (lambda: tvm.resnet101(weights=None), 224),
    "resnet152": (lambda: tvm.resnet152(weights=None), 224),
    "resnext50_32x4d": (lambda: tvm.resnext50_32x4d(weights=None), 224),
    "wide_resnet50_2": (lambda: tvm.wide_resnet50_2(weights=None), 224),
    "densenet121": (lambda: tvm.densenet121(weights=None), 224),
    "densenet169": (lambda: tvm.densenet169(weights=None), 224),
    "densenet201": (lambda: tvm.densenet201(weights=None), 224),
    "googlenet": (
        lambda: tvm.googlenet(
            weights=None, aux_logits=False, init_weights=False, transform_input=False
        ),
        224,
    ),
    "mobilenet_v2": (lambda: tvm.mobilenet_v2(weights=None), 224),
    "squeezenet1_0": (lambda: tvm.squeezenet1_0(weights=None), 224),
    "inception_v3": (
        lambda: tvm.inception_v3(
            weights=None, aux_logits=False, init_weights=False, transform_input=False
        ),
        299,
    ),
    "dpn68": (lambda: timm.create_model("dpn68", pretrained=False), 224),
    "dpn92": (lambda: timm.create_model("dpn92", pretrained=False), 224),
}

# Entries for which only parameter / buffer counts are recorded (no forward).
STATIC_ONLY = {
    "inception_v3_aux": lambda: tvm.inception_v3(
        weights=None, aux_logits=True, init_weights=False, transform_input=False
    ),
}

NOTES = {
    "googlenet": "torchvision.models.googlenet(weights=None, aux_logits=False, "
    "init_weights=False, transform_input=False); transform_input=False so the "
    "forward pass has no input re-normalisation ops",
    "inception_v3": "torchvision.models.inception_v3(weights=None, aux_logits=False, "
    "init_weights=False, transform_input=False); input 3x299x299",
    "inception_v3_aux": "as inception_v3 but aux_logits=True (AuxLogits head "
    "included); params/buffers only, no forward pass",
    "dpn68": "timm.create_model('dpn68', pretrained=False)",
    "dpn92": "timm.create_model('dpn92', pretrained=False)",
    "classifiers_as_conv": "squeezenet1_0, dpn68 and dpn92 have no nn.Linear: "
    "their classifier is a 1x1 nn.Conv2d (listed in conv_shapes, counted under "
    "aten.convolution in flops_by_op)",
    "flop_counter_scope": "FlopCounterMode (this torch version) counts only "
    "matmul-like ops here: aten.convolution and aten.addmm. Pooling, "
    "BatchNorm, ReLU, residual adds, concatenation and softmax contribute 0.",
    "general": "All figures at batch size 1, model.eval(), torch.no_grad(), CPU, "
    "float32, random init (no weights downloaded). flops from "
    "torch.utils.flop_counter.FlopCounterMode; macs = flops // 2. Shapes exclude "
    "the batch dimension. conv_shapes / linear are in forward execution order.",
}


def count_static(model):
    """Parameter and buffer counts (no forward pass needed)."""
    params = weights = biases = 0
    for name, p in model.named_parameters():
        n = p.numel()
        params += n
        if name.endswith("bias"):
            biases += n
        else:
            weights += n
    buffers = buffers_wo = 0
    for name, b in model.named_buffers():
        buffers += b.numel()
        if not name.endswith("num_batches_tracked"):
            buffers_wo += b.numel()
    assert params == weights + biases
    return {
        "params": params,
        "weights": weights,
        "biases": biases,
        "buffers": buffers,
        "buffers_without_counters": buffers_wo,
    }


def strip_root(key, root_name):
    """FlopCounterMode names modules '<RootClass>.<dotted.path>'; drop the root."""
    if key == root_name:
        return ""
    if key.startswith(root_name + "."):
        return key[len(root_name) + 1:]
    return key


def analyse(model, size):
    """Static counts plus one instrumented forward pass at batch size 1."""
    model.eval()
    rec = count_static(model)

    conv_shapes, linears = [], []
    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            hooks.append(m.register_forward_hook(
                lambda mod, inp, out, name=name: conv_shapes.append(
                    [name, list(out.shape[1:])])))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(
                lambda mod, inp, out, name=name: linears.append(
                    [name, mod.in_features, mod.out_features])))

    x = torch.zeros(1, 3, size, size)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        out = model(x)
    for h in hooks:
        h.remove()
    # Every conv / linear module in these models runs exactly once per forward.
    n_conv = sum(isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) for m in model.modules())
    n_lin = sum(isinstance(m, nn.Linear) for m in model.modules())
    assert len(conv_shapes) == n_conv and len(linears) == n_lin

    flops = counter.get_total_flops()
    assert flops % 2 == 0, flops
    counts = counter.get_flop_counts()
    root = type(model).__name__
    by_op = {str(op): int(v) for op, v in counts.get("Global", {}).items()}
    assert sum(by_op.values()) == flops
    by_module = {}
    for key, ops in counts.items():
        if key == "Global":
            continue
        rel = strip_root(key, root)
        if rel and "." not in rel:  # direct children of the root only
            by_module[rel] = int(sum(ops.values()))

    rec.update({
        "input": [3, size, size],
        "output": list(out.shape[1:]),
        "flops": int(flops),
        "macs": int(flops // 2),
        "flops_by_op": by_op,
        "flops_by_module": by_module,
        "conv_shapes": conv_shapes,
        "linear": linears,
    })
    return rec


def small_modules():
    """Parameter counts for a few recurrent / embedding layers, plus LSTM flops."""
    torch.manual_seed(0)
    mods = {
        "lstm_300_128_layers2": nn.LSTM(300, 128, num_layers=2),
        "gru_300_128": nn.GRU(300, 128),
        "lstm_300_128_bidirectional": nn.LSTM(300, 128, bidirectional=True),
        "rnn_100_64": nn.RNN(100, 64),
        "embedding_10000_300": nn.Embedding(10000, 300),
    }
    res = {k: {"repr": repr(m), "params": sum(p.numel() for p in m.parameters())}
           for k, m in mods.items()}

    # FlopCounterMode on LSTM(300,128,num_layers=2), input (T=10, N=1, 300).
    # On CPU the result depends on the kernel path: by default torch dispatches
    # one fused aten.mkldnn_rnn_layer per layer, which has no flop formula, so
    # FlopCounterMode reports 0.  With oneDNN disabled the native path is a
    # decomposition into aten.addmm (one input projection over all T steps and
    # one hidden projection per step, per layer) plus elementwise ops, and
    # FlopCounterMode counts the addmm flops (bias additions are not counted).
    lstm = mods["lstm_300_128_layers2"].eval()

    def lstm_flops():
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            lstm(torch.zeros(10, 1, 300))
        by_op = {str(op): int(v)
                 for op, v in counter.get_flop_counts().get("Global", {}).items()}
        return int(counter.get_total_flops()), by_op

    flops, by_op = lstm_flops()
    with warnings.catch_warnings():
        # toggling the flags emits an unrelated TF32-on-Intel-GPU UserWarning
        warnings.simplefilter("ignore", UserWarning)
        with torch.backends.mkldnn.flags(enabled=False):
            flops_native, by_op_native = lstm_flops()
    res["lstm_300_128_layers2"].update({
        "flop_counter_input": [10, 1, 300],
        "flop_counter_flops": flops,
        "flop_counter_by_op": by_op,
        "flop_counter_flops_mkldnn_disabled": flops_native,
        "flop_counter_by_op_mkldnn_disabled": by_op_native,
        "flop_counter_note": (
            "Default CPU path: the LSTM runs as fused aten.mkldnn_rnn_layer ops "
            "that FlopCounterMode does not count, so flop_counter_flops = %d. "
            "With torch.backends.mkldnn disabled the LSTM decomposes into "
            "aten.addmm and FlopCounterMode counts %d flops (= 2 * sum over "
            "layers of T * (input_size + hidden) * 4*hidden; bias adds and "
            "gate nonlinearities not counted)." % (flops, flops_native)),
    })
    return res


def main():
    torch.set_grad_enabled(False)
    out = {
        "meta": {
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "timm": timm.__version__,
            "python": sys.version.split()[0],
            "date": datetime.date.today().isoformat(),
            "command": COMMAND,
        },
        "notes": NOTES,
        "models": {},
    }
    for name, (ctor, size) in MODELS.items():
        torch.manual_seed(0)
        print(f"[torch_reference] {name}", file=sys.stderr)
        out["models"][name] = analyse(ctor(), size)
    for name, ctor in STATIC_ONLY.items():
        torch.manual_seed(0)
        out["models"][name] = count_static(ctor())
    out["modules"] = small_modules()

    # Known published figures: if any of these fails the script has a bug.
    m = out["models"]
    assert m["vgg16"]["params"] == 138_357_544, m["vgg16"]["params"]
    assert m["vgg16"]["macs"] == 15_470_264_320, m["vgg16"]["macs"]
    assert m["alexnet"]["params"] == 61_100_840, m["alexnet"]["params"]
    assert m["alexnet"]["macs"] == 714_188_480, m["alexnet"]["macs"]
    assert m["resnet50"]["params"] == 25_557_032, m["resnet50"]["params"]
    assert m["dpn92"]["params"] == 37_668_392, m["dpn92"]["params"]
    assert m["dpn92"]["macs"] == 6_501_684_224, m["dpn92"]["macs"]

    json.dump(out, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
