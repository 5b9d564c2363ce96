#!/usr/bin/env python3
"""The model archcalc builds from each torchvision spec computes what torchvision's computes.

Not run by the tests (it needs torchvision); run it from the repository root with an
interpreter that has torch and torchvision (archcalc itself is imported from the checkout):

    PYTHONPATH=. /work/refvenv/bin/python tools/zoo14_same_model.py

For each model: torchvision's model gets random parameters and BatchNorm statistics; its
state dict is copied, tensor by tensor in order, into the fx model `archcalc.build` makes
from the spec (every shape must agree); both run in eval mode on the same random batch of
2, and the outputs must be equal to float32 rounding. A layer in the wrong place, a missing
channel shuffle or a wrong SE input would change the output; parameter counts alone would not.
"""

import sys

import torch
import torchvision

import archcalc
from archcalc.pytorch.build import build

MODELS = {  # spec → (torchvision constructor, input)
    "mobilenet_v3_large": ("mobilenet_v3_large", (3, 96, 96)),
    "mobilenet_v3_small": ("mobilenet_v3_small", (3, 96, 96)),
    "efficientnet_b0": ("efficientnet_b0", (3, 96, 96)),
    "efficientnet_b1": ("efficientnet_b1", (3, 96, 96)),
    "efficientnet_v2_s": ("efficientnet_v2_s", (3, 96, 96)),
    "mnasnet1_0": ("mnasnet1_0", (3, 96, 96)),
    "shufflenet_v2_x0_5": ("shufflenet_v2_x0_5", (3, 96, 96)),
    "shufflenet_v2_x1_0": ("shufflenet_v2_x1_0", (3, 96, 96)),
    "squeezenet1_1": ("squeezenet1_1", (3, 96, 96)),
    "regnet_x_400mf": ("regnet_x_400mf", (3, 96, 96)),
    "regnet_y_400mf": ("regnet_y_400mf", (3, 96, 96)),
    "resnext101_32x8d": ("resnext101_32x8d", (3, 64, 64)),
    "r3d_18": ("video.r3d_18", (3, 8, 56, 56)),
}


def randomise(model):
    """Random weights and BN statistics of a sensible scale (so every layer shows in the output)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith("weight") and t.dim() > 1:
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=g) / fan_in ** 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * 0.1 + (1.0 if name.endswith("weight") else 0.0))


def main():
    failed = 0
    for spec, (ctor, shape) in MODELS.items():
        module = torchvision.models
        for part in ctor.split("."):
            module = getattr(module, part)
        theirs = module(weights=None).eval()
        randomise(theirs)
        ours = build(archcalc.load(spec, shape)).eval()
        src, dst = list(theirs.state_dict().items()), list(ours.state_dict().items())
        assert len(src) == len(dst), (spec, len(src), len(dst))
        state = {}
        for (k_ours, v_ours), (k_theirs, v_theirs) in zip(dst, src):
            assert v_ours.shape == v_theirs.shape, (spec, k_ours, k_theirs, v_ours.shape, v_theirs.shape)
            state[k_ours] = v_theirs
        ours.load_state_dict(state)
        x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            a, b = ours(x), theirs(x)
        diff, scale = (a - b).abs().max().item(), b.abs().max().item()
        ok = diff <= 1e-5 * max(1.0, scale)
        failed += not ok
        print(f"{spec:20s} {'same' if ok else 'DIFFERENT'}: max |difference| {diff:.3g}, "
              f"max |output| {scale:.3g}, {len(src)} tensors")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
