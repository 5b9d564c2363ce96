#!/usr/bin/env python3
"""Measure receptive fields of torchvision models with PyTorch, for archcalc's RF tests.

Stand-alone (standard library, torch, torchvision); NOT part of archcalc and not run by
the test suite. It writes the JSON file the tests assert against:

    python tools/rf_reference.py > tests/reference/rf_reference.json

(with an interpreter that has torch and torchvision, e.g. /tmp/tvenv/bin/python).

How a receptive field is measured, without any formula:
  * the model is made linear and positive, so no gradient can vanish or cancel: float64,
    every conv weight 1/fan_in, every bias 0, BatchNorm in eval with identity statistics,
    every max pool replaced by an average pool of the same geometry (kernel, stride,
    padding, ceil_mode), every ReLU/ReLU6 an identity, dropout off (eval); the input is
    all ones, so even functional ReLUs pass their gradient;
  * we take the last spatial feature map before global pooling (a forward hook on
    `features`, `layer4`, `inception5b` or `Mixed_7c`) and back-propagate from one unit;
    the input positions with a nonzero gradient are exactly the unit's receptive field;
  * one axis at a time, on a strip input (long along the measured axis, 96 across it),
    the long side doubled until unit c = (output length)//2 sees no border: then
    size = last − first + 1, jump = first(c + 1) − first(c), start = first(c) − c·jump
    (the input coordinate unit 0 would start at, negative where it sees padding).
"""

from __future__ import annotations

import datetime
import json
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

COMMAND = "/tmp/tvenv/bin/python tools/rf_reference.py > tests/reference/rf_reference.json"
ACROSS = 96  # the strip's short side: any size the network accepts gives the same figures
tvm = torchvision.models

# name -> (constructor, hooked module, input size of the spec)
MODELS = {
    "alexnet": (lambda: tvm.alexnet(weights=None), "features", 224),
    **{name: (lambda name=name: getattr(tvm, name)(weights=None), "features", 224)
       for name in ("vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn")},
    **{name: (lambda name=name: getattr(tvm, name)(weights=None), "layer4", 224)
       for name in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                    "resnext50_32x4d", "wide_resnet50_2")},
    **{name: (lambda name=name: getattr(tvm, name)(weights=None), "features", 224)
       for name in ("densenet121", "densenet169", "densenet201")},
    "googlenet": (lambda: tvm.googlenet(weights=None, aux_logits=False, init_weights=False),
                  "inception5b", 224),
    "mobilenet_v2": (lambda: tvm.mobilenet_v2(weights=None), "features", 224),
    "squeezenet1_0": (lambda: tvm.squeezenet1_0(weights=None), "features", 224),
    "inception_v3": (lambda: tvm.inception_v3(weights=None, aux_logits=False, init_weights=False),
                     "Mixed_7c", 299),
}


def _avg_instead_of_max(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                        return_indices=False):
    """F.max_pool2d with an average: same windows, but every position gets gradient."""
    if dilation not in (1, (1, 1)) or return_indices:
        raise NotImplementedError("dilated max pool or indices")
    return F.avg_pool2d(input, kernel_size, stride, padding, ceil_mode=ceil_mode)


def linearise(model: nn.Module) -> nn.Module:
    """Positive weights, zero biases, identity BN statistics, identity activations."""
    model = model.double().eval()
    for name, m in list(model.named_modules()):
        if isinstance(m, nn.Conv2d):
            fan_in = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
            nn.init.constant_(m.weight, 1.0 / fan_in)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
            m.running_mean.zero_()
            m.running_var.fill_(1.0)
        elif isinstance(m, (nn.ReLU, nn.ReLU6)):
            parent, _, leaf = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, leaf, nn.Identity())
    for p in model.parameters():
        p.requires_grad_(False)  # only the input gradient is wanted
    return model


def feature_map(model: nn.Module, hooked: str, x: torch.Tensor) -> torch.Tensor:
    captured = []
    handle = model.get_submodule(hooked).register_forward_hook(lambda m, i, o: captured.append(o))
    try:
        model(x)
    finally:
        handle.remove()
    return captured[0]


def support(model: nn.Module, hooked: str, shape: tuple[int, int], axis: int,
            units: list[int]) -> list[tuple[int, int]]:
    """For each unit index along `axis` (middle across it): first and last input position with gradient."""
    result = []
    for unit in units:
        x = torch.ones(1, 3, *shape, dtype=torch.float64, requires_grad=True)
        y = feature_map(model, hooked, x)
        across = y.shape[3 - axis] // 2
        index = (unit, across) if axis == 0 else (across, unit)
        y[0, :, index[0], index[1]].sum().backward()
        seen = (x.grad[0].abs().sum(0).sum(1 - axis) > 0).nonzero().flatten().tolist()
        result.append((seen[0], seen[-1]))
    return result


def measure_axis(model: nn.Module, hooked: str, axis: int) -> dict[str, int]:
    length = 256
    while length <= 8192:
        shape = (length, ACROSS) if axis == 0 else (ACROSS, length)
        with torch.no_grad():
            out = feature_map(model, hooked, torch.ones(1, 3, *shape, dtype=torch.float64))
        n = out.shape[2 + axis]
        c = n // 2
        (f0, l0), (f1, l1) = support(model, hooked, shape, axis, [c, c + 1])
        if f0 > 0 and l1 < length - 1 and n >= 3:
            jump = f1 - f0
            if l1 - f1 != l0 - f0:
                raise AssertionError("adjacent units see windows of different sizes")
            return {"size": l0 - f0 + 1, "jump": jump, "start": f0 - c * jump, "measured_at": length}
        length *= 2
    raise AssertionError("receptive field larger than 8192")


def measure(name: str) -> dict:
    build, hooked, size = MODELS[name]
    torch.manual_seed(0)
    model = linearise(build())
    axes = [measure_axis(model, hooked, axis) for axis in (0, 1)]
    return {
        "input": [3, size, size],
        "feature_map": hooked,
        "size": [a["size"] for a in axes],
        "jump": [a["jump"] for a in axes],
        "start": [a["start"] for a in axes],
        "measured_at": [a["measured_at"] for a in axes],
    }


def main() -> None:
    F.max_pool2d = _avg_instead_of_max  # modules and functional calls alike go through F
    torch.set_num_threads(max(1, torch.get_num_threads()))
    names = sys.argv[1:] or list(MODELS)
    models = {}
    for name in names:
        models[name] = measure(name)
        print(name, models[name], file=sys.stderr, flush=True)
    meta = {
        "command": COMMAND,
        "generated": datetime.date.today().isoformat(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "method": " ".join(__doc__.split("without any formula:")[1].split()),
        "axes": "size/jump/start are [H, W]; start is the input coordinate of the first pixel "
                "unit 0 sees (negative: padding)",
    }
    # one line per model: easy to read and to diff
    body = ",\n".join(f"    {json.dumps(name)}: {json.dumps(figures)}" for name, figures in models.items())
    meta_text = json.dumps(meta, indent=2, ensure_ascii=False).replace("\n", "\n  ")
    sys.stdout.write(f'{{\n  "meta": {meta_text},\n  "models": {{\n{body}\n  }}\n}}\n')


if __name__ == "__main__":
    main()
