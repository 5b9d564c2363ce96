#!/usr/bin/env python3
"""Reference figures for the members of torchvision's model families that are not built-in
specs: EfficientNet B2–B7, MobileNetV3 at other widths and with the segmentation options,
MNASNet 0.5/0.75/1.3, ShuffleNetV2 1.5×/2×, and every other torchvision RegNet. They check
that archcalc's family specs (specs/families/) compute torchvision's rounding rules where
those change a width or a depth; at the named members' multipliers most rules are no-ops.

Stand-alone: imports only the standard library, torch and torchvision; not run by the tests:

    /work/refvenv/bin/python tools/zoo14_families.py > tests/reference/zoo14_families.json

Deterministic (no dates or timings). No weights are downloaded (weights=None). Each model is
built on the meta device (shapes only: nothing is allocated, so RegNetY-128GF costs nothing;
RegNet's width computation alone runs on the CPU, see below) and run once under
FlopCounterMode in eval mode at batch 1. Recorded per member: the
constructor call, the archcalc spec and parameters that stand for it, the input, params,
weights and biases (split by a name ending in "bias"), buffers (BatchNorm counters
included), FlopCounterMode flops, the output shape, and the output shape of every Conv2d
call in forward order (forward hooks).
"""

import json
import sys

import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

tvm = torchvision.models
BlockParams = torchvision.models.regnet.BlockParams
_from_init_params = BlockParams.from_init_params.__func__
SEEN_REGNET_ARGS = []


def _from_init_params_on_cpu(cls, *args, **kwargs):
    """torchvision's own width computation, run on the CPU: it uses tensors (torch.arange,
    .tolist()), which the meta device cannot read back. Records its arguments, so the table
    below is checked against the constructors."""
    SEEN_REGNET_ARGS.append(kwargs)
    with torch.device("cpu"):
        return _from_init_params(cls, *args, **kwargs)


BlockParams.from_init_params = classmethod(_from_init_params_on_cpu)

COMMAND = "/work/refvenv/bin/python tools/zoo14_families.py > tests/reference/zoo14_families.json"

# torchvision's RegNet constructors: (depth, w_0, w_a, w_m, group_width, se_ratio), from
# models/regnet.py (BlockParams.from_init_params calls)
REGNETS = {
    "regnet_y_800mf": (14, 56, 38.84, 2.4, 16, 0.25),
    "regnet_y_1_6gf": (27, 48, 20.71, 2.65, 24, 0.25),
    "regnet_y_3_2gf": (21, 80, 42.63, 2.66, 24, 0.25),
    "regnet_y_8gf": (17, 192, 76.82, 2.19, 56, 0.25),
    "regnet_y_16gf": (18, 200, 106.23, 2.48, 112, 0.25),
    "regnet_y_32gf": (20, 232, 115.89, 2.53, 232, 0.25),
    "regnet_y_128gf": (27, 456, 160.83, 2.52, 264, 0.25),
    "regnet_x_800mf": (16, 56, 35.73, 2.28, 16, 0),
    "regnet_x_1_6gf": (18, 80, 34.01, 2.25, 24, 0),
    "regnet_x_3_2gf": (25, 88, 26.31, 2.25, 48, 0),
    "regnet_x_8gf": (23, 80, 49.56, 2.88, 120, 0),
    "regnet_x_16gf": (22, 216, 55.59, 2.1, 128, 0),
    "regnet_x_32gf": (23, 320, 69.86, 2.0, 168, 0),
}

# EfficientNet B2–B7: (width, depth, dropout, documented crop); B5–B7 use BN eps 1e-3, momentum 0.01
EFFICIENTNETS = {
    "efficientnet_b2": (1.1, 1.2, 0.3, 288),
    "efficientnet_b3": (1.2, 1.4, 0.3, 300),
    "efficientnet_b4": (1.4, 1.8, 0.4, 380),
    "efficientnet_b5": (1.6, 2.2, 0.4, 456),
    "efficientnet_b6": (1.8, 2.6, 0.5, 528),
    "efficientnet_b7": (2.0, 3.1, 0.5, 600),
}


def members():
    """(key, constructor text, builder, archcalc spec, archcalc params, input shape)."""
    out = []
    for name, (w, d, p, crop) in EFFICIENTNETS.items():
        params = {"width": w, "depth": d, "dropout": p}
        if name in ("efficientnet_b5", "efficientnet_b6", "efficientnet_b7"):
            params.update(bn_eps=0.001, bn_momentum=0.01)
        out.append((name, f"torchvision.models.{name}(weights=None)", getattr(tvm, name),
                    "efficientnet_b0", params, (3, crop, crop)))
    for arch, small in (("mobilenet_v3_large", 0), ("mobilenet_v3_small", 1)):
        for width in (0.75, 0.35):
            out.append((f"{arch}_w{width}", f"torchvision.models.{arch}(weights=None, width_mult={width})",
                        lambda arch=arch, width=width: getattr(tvm, arch)(width_mult=width),
                        arch, {"small": small, "width": width}, (3, 224, 224)))
        out.append((f"{arch}_reduced_tail_dilated",
                    f"torchvision.models.{arch}(weights=None, reduced_tail=True, dilated=True)",
                    lambda arch=arch: getattr(tvm, arch)(reduced_tail=True, dilated=True),
                    arch, {"small": small, "reduced_tail": 1, "dilated": 1}, (3, 224, 224)))
    for name, alpha in (("mnasnet0_5", 0.5), ("mnasnet0_75", 0.75), ("mnasnet1_3", 1.3)):
        out.append((name, f"torchvision.models.{name}(weights=None)", getattr(tvm, name),
                    "mnasnet1_0", {"alpha": alpha}, (3, 224, 224)))
    for name, widths in (("shufflenet_v2_x1_5", (176, 352, 704, 1024)), ("shufflenet_v2_x2_0", (244, 488, 976, 2048))):
        out.append((name, f"torchvision.models.{name}(weights=None)", getattr(tvm, name),
                    "shufflenet_v2_x1_0", dict(zip(("c2", "c3", "c4", "c5"), widths)), (3, 224, 224)))
    for name, (depth, w_0, w_a, w_m, g, se) in REGNETS.items():
        params = {"depth": depth, "w_0": w_0, "w_a": w_a, "w_m": w_m, "group_width": g, "se_ratio": se}
        out.append((name, f"torchvision.models.{name}(weights=None)", getattr(tvm, name),
                    "regnet_y_400mf" if se else "regnet_x_400mf", params, (3, 224, 224)))
    return out


def measure(build, shape):
    SEEN_REGNET_ARGS.clear()
    with torch.device("meta"):
        model = build().eval()
    params = list(model.named_parameters())
    biases = sum(p.numel() for n, p in params if n.endswith("bias"))
    total = sum(p.numel() for _, p in params)
    convs = []
    hooks = [m.register_forward_hook(lambda m, i, o: convs.append(list(o.shape[1:])))
             for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        out = model(torch.empty(1, *shape, device="meta"))
    for h in hooks:
        h.remove()
    return {
        "params": total, "weights": total - biases, "biases": biases,
        "buffers": sum(b.numel() for b in model.buffers()),
        "flops": counter.get_total_flops(), "output": list(out.shape[1:]), "conv_shapes": convs,
    }


def main():
    models = {}
    for key, constructor, build, spec, params, shape in members():
        print(key, file=sys.stderr)
        models[key] = {"constructor": constructor, "spec": spec, "params_set": params, "input": list(shape),
                       **measure(build, shape)}
        try:  # torchvision's documented parameter count, where the member has weights
            documented = next(iter(tvm.get_model_weights(key))).meta["num_params"]
        except ValueError:
            documented = None
        assert documented in (None, models[key]["params"]), (key, documented)
        models[key]["documented_num_params"] = documented
        if key in REGNETS:  # the table's values are the constructor's
            seen = SEEN_REGNET_ARGS[0]
            assert (seen["depth"], seen["w_0"], seen["w_a"], seen["w_m"], seen["group_width"],
                    seen.get("se_ratio") or 0) == REGNETS[key], (key, seen)
    json.dump({
        "meta": {"command": COMMAND, "python": sys.version.split()[0], "torch": torch.__version__,
                 "torchvision": torchvision.__version__, "forward_device": "meta"},
        "notes": {
            "what": "members of torchvision's families beyond the named built-in specs, each with the archcalc "
                    "spec and --set values that stand for it",
            "flops": "FlopCounterMode total at batch 1 (2 per multiply-accumulate)",
            "conv_shapes": "output shape (no batch) of every nn.Conv2d call, in forward order",
        },
        "models": models,
    }, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
