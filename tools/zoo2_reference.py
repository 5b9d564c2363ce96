#!/usr/bin/env python3
"""Reference figures for the rest of the torchvision zoo, two encoder-decoders and
transposed-convolution / upsampling layers, measured with PyTorch.

Stand-alone: imports only the standard library, torch and torchvision.  It is NOT
part of archcalc and is not run by the test suite; it prints the JSON file that
later tests assert against:

    /work/refvenv/bin/python tools/zoo2_reference.py > tests/reference/zoo2_reference.json

The output is deterministic (no date, no timing, no random values are recorded).
No pretrained weights are downloaded: every torchvision model is built with
weights=None (and weights_backbone=None for the segmentation models).

How the figures are measured
----------------------------
Each model is built on the CPU (random init, which changes no figure recorded
here), its parameters and buffers are counted, then it is moved to the ``meta``
device and run once, in eval mode under torch.no_grad(), on a batch-1 meta input.
Meta tensors carry shapes and dtypes but no data, so nothing is allocated and
the forward pass is instantaneous; FlopCounterMode's formulas and forward hooks
depend on shapes only.  Every op used by these models has a meta kernel (no CPU
fallback was needed).  ``--check-cpu`` re-runs every forward pass on real CPU
tensors and asserts that every recorded figure is identical.

Per model (all shapes exclude the batch dimension):

  params, weights, biases   sum of numel over parameters; split by whether the
                            parameter name ends with "bias" (as torch_reference.py)
  buffers                   sum of numel over buffers (each BatchNorm has a
                            1-element num_batches_tracked buffer)
  buffers_without_counters  buffers, excluding *num_batches_tracked
  flops / macs              FlopCounterMode total at batch 1; macs = flops // 2
  flops_by_op               FlopCounterMode's global per-aten-op breakdown
  flops_by_module           FlopCounterMode totals of each direct child of the root
  flops_by_leaf             FlopCounterMode totals of every leaf module (a module
                            without children) that has a non-zero count; every
                            other leaf counts 0.  Sums to flops for every model here.
  output                    output shape; for the segmentation models a dict
                            {key: shape} (the models return an OrderedDict)
  leaf_calls                [module_path, class_name, output shape] for every call
                            of a leaf module, in forward execution order (forward
                            hooks); a module called several times appears each time
  leaf_call_counts          {path: n} for leaves called more than once
  uncalled_leaves           leaf modules that the forward pass never calls
  leaf_modules              [path, "Class(extra_repr)"] for every leaf module in
                            named_modules() order: the exact layer hyper-parameters
  norm_layers               {"BatchNorm2d eps=.. momentum=..": count}
  aten_ops                  {aten op overload: number of calls} seen by a
                            TorchDispatchMode during the forward pass
  upsample_calls            [aten op, input shape, output shape, extra args] for
                            every interpolation op (they are functional calls in
                            these models, so no leaf hook sees them)
  documented                torchvision's WeightsEnum meta for the model
                            (num_params, _ops in G, crop_size of its transform)
  structure                 per-block configuration read from the built model
                            (channels, kernels, strides, SE squeeze channels,
                            stochastic-depth p, ...) for the models whose widths
                            come from multiplier rules
"""

import argparse
import collections
import json
import sys
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

COMMAND = ("/work/refvenv/bin/python tools/zoo2_reference.py > "
           "tests/reference/zoo2_reference.json")

tvm = torchvision.models
seg = torchvision.models.segmentation
vid = torchvision.models.video


# --------------------------------------------------------------------------
# Models defined here (not in torchvision)
# --------------------------------------------------------------------------

class DoubleConv(nn.Sequential):
    """U-Net level: two valid (unpadded) 3x3 convolutions, each followed by ReLU."""

    def __init__(self, cin, cout):
        super().__init__(
            nn.Conv2d(cin, cout, kernel_size=3, padding=0, bias=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, kernel_size=3, padding=0, bias=True),
            nn.ReLU(inplace=True),
        )


class CenterCrop2d(nn.Module):
    """Crop the last two dims of x to the spatial size of ref, centred
    (offset (H_x - H_ref) // 2).  No parameters."""

    def forward(self, x, ref):
        h, w = x.shape[-2:]
        th, tw = ref.shape[-2:]
        top, left = (h - th) // 2, (w - tw) // 2
        return x[..., top:top + th, left:left + tw]


class UNet(nn.Module):
    """U-Net as in Ronneberger, Fischer & Brox 2015, Fig. 1 (1 input channel,
    2 classes, valid convolutions, conv biases, no BatchNorm, no padding).

    Contracting path: enc1..enc5 = DoubleConv with 64, 128, 256, 512, 1024
    channels, pool1..pool4 = MaxPool2d(2, 2) between them.
    Expansive path, for level l = 4, 3, 2, 1: up{l} = ConvTranspose2d(2C, C, 2,
    stride 2) (the paper's 2x2 "up-convolution", no activation), crop{l} =
    centre crop of enc{l}'s output to up{l}'s size, torch.cat([cropped, up],
    dim=1) (2C channels), dec{l} = DoubleConv(2C, C).
    head = Conv2d(64, 2, 1).  The paper's drop-out at the end of the
    contracting path (Sec. 3.1, not drawn in Fig. 1) is omitted (it changes no
    count or shape)."""

    def __init__(self, in_channels=1, num_classes=2):
        super().__init__()
        ch = [64, 128, 256, 512, 1024]
        self.enc1 = DoubleConv(in_channels, ch[0])
        self.pool1 = nn.MaxPool2d(2, 2)
        self.enc2 = DoubleConv(ch[0], ch[1])
        self.pool2 = nn.MaxPool2d(2, 2)
        self.enc3 = DoubleConv(ch[1], ch[2])
        self.pool3 = nn.MaxPool2d(2, 2)
        self.enc4 = DoubleConv(ch[2], ch[3])
        self.pool4 = nn.MaxPool2d(2, 2)
        self.enc5 = DoubleConv(ch[3], ch[4])
        self.up4 = nn.ConvTranspose2d(ch[4], ch[3], kernel_size=2, stride=2)
        self.crop4 = CenterCrop2d()
        self.dec4 = DoubleConv(ch[4], ch[3])
        self.up3 = nn.ConvTranspose2d(ch[3], ch[2], kernel_size=2, stride=2)
        self.crop3 = CenterCrop2d()
        self.dec3 = DoubleConv(ch[3], ch[2])
        self.up2 = nn.ConvTranspose2d(ch[2], ch[1], kernel_size=2, stride=2)
        self.crop2 = CenterCrop2d()
        self.dec2 = DoubleConv(ch[2], ch[1])
        self.up1 = nn.ConvTranspose2d(ch[1], ch[0], kernel_size=2, stride=2)
        self.crop1 = CenterCrop2d()
        self.dec1 = DoubleConv(ch[1], ch[0])
        self.head = nn.Conv2d(ch[0], num_classes, kernel_size=1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool1(e1))
        e3 = self.enc3(self.pool2(e2))
        e4 = self.enc4(self.pool3(e3))
        e5 = self.enc5(self.pool4(e4))
        u = self.up4(e5)
        d = self.dec4(torch.cat([self.crop4(e4, u), u], dim=1))
        u = self.up3(d)
        d = self.dec3(torch.cat([self.crop3(e3, u), u], dim=1))
        u = self.up2(d)
        d = self.dec2(torch.cat([self.crop2(e2, u), u], dim=1))
        u = self.up1(d)
        d = self.dec1(torch.cat([self.crop1(e1, u), u], dim=1))
        return self.head(d)


def unet_params_by_formula():
    """Independent count: 3x3 conv = 9*cin*cout + cout, 2x2 up-conv =
    4*cin*cout + cout, 1x1 conv = cin*cout + cout."""
    def conv3(i, o):
        return 9 * i * o + o

    n = 0
    chans = [1, 64, 128, 256, 512, 1024]
    for i, o in zip(chans[:-1], chans[1:]):
        n += conv3(i, o) + conv3(o, o)
    for c in [512, 256, 128, 64]:
        n += 4 * (2 * c) * c + c              # up-conv 2C -> C
        n += conv3(2 * c, c) + conv3(c, c)    # DoubleConv(2C, C)
    n += 64 * 2 + 2
    return n


class ConvAutoencoder(nn.Module):
    """Small convolutional autoencoder for 1x28x28 (MNIST-style)."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=2, padding=1),    # 16x14x14
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),   # 32x7x7
            nn.ReLU(),
            nn.Conv2d(32, 64, 7),                        # 64x1x1
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 7),                                       # 32x7x7
            nn.ReLU(),
            nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1),  # 16x14x14
            nn.ReLU(),
            nn.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1),   # 1x28x28
            nn.Sigmoid(),
        )

    def forward(self, x):
        return self.decoder(self.encoder(x))


# --------------------------------------------------------------------------
# Model table
# --------------------------------------------------------------------------

W = tvm  # weights enums live in torchvision.models (and .segmentation/.video)

# key -> (torchvision name or None, constructor source, constructor, input shape,
#         weights enum for the documented figures or None)
MODELS = {}


def _add(key, name, src, ctor, shape, weights=None):
    MODELS[key] = (name, src, ctor, shape, weights)


_add("mobilenet_v3_large", "mobilenet_v3_large", "torchvision.models.mobilenet_v3_large(weights=None)",
     lambda: tvm.mobilenet_v3_large(weights=None), [3, 224, 224], W.MobileNet_V3_Large_Weights)
_add("mobilenet_v3_small", "mobilenet_v3_small", "torchvision.models.mobilenet_v3_small(weights=None)",
     lambda: tvm.mobilenet_v3_small(weights=None), [3, 224, 224], W.MobileNet_V3_Small_Weights)
_add("efficientnet_b0", "efficientnet_b0", "torchvision.models.efficientnet_b0(weights=None)",
     lambda: tvm.efficientnet_b0(weights=None), [3, 224, 224], W.EfficientNet_B0_Weights)
_add("efficientnet_b1", "efficientnet_b1", "torchvision.models.efficientnet_b1(weights=None)",
     lambda: tvm.efficientnet_b1(weights=None), [3, 240, 240], W.EfficientNet_B1_Weights)
_add("efficientnet_b1@224", "efficientnet_b1", "torchvision.models.efficientnet_b1(weights=None)",
     lambda: tvm.efficientnet_b1(weights=None), [3, 224, 224], W.EfficientNet_B1_Weights)
_add("efficientnet_v2_s", "efficientnet_v2_s", "torchvision.models.efficientnet_v2_s(weights=None)",
     lambda: tvm.efficientnet_v2_s(weights=None), [3, 384, 384], W.EfficientNet_V2_S_Weights)
_add("efficientnet_v2_s@224", "efficientnet_v2_s", "torchvision.models.efficientnet_v2_s(weights=None)",
     lambda: tvm.efficientnet_v2_s(weights=None), [3, 224, 224], W.EfficientNet_V2_S_Weights)
_add("mnasnet1_0", "mnasnet1_0", "torchvision.models.mnasnet1_0(weights=None)",
     lambda: tvm.mnasnet1_0(weights=None), [3, 224, 224], W.MNASNet1_0_Weights)
_add("shufflenet_v2_x0_5", "shufflenet_v2_x0_5", "torchvision.models.shufflenet_v2_x0_5(weights=None)",
     lambda: tvm.shufflenet_v2_x0_5(weights=None), [3, 224, 224], W.ShuffleNet_V2_X0_5_Weights)
_add("shufflenet_v2_x1_0", "shufflenet_v2_x1_0", "torchvision.models.shufflenet_v2_x1_0(weights=None)",
     lambda: tvm.shufflenet_v2_x1_0(weights=None), [3, 224, 224], W.ShuffleNet_V2_X1_0_Weights)
_add("squeezenet1_1", "squeezenet1_1", "torchvision.models.squeezenet1_1(weights=None)",
     lambda: tvm.squeezenet1_1(weights=None), [3, 224, 224], W.SqueezeNet1_1_Weights)
_add("regnet_x_400mf", "regnet_x_400mf", "torchvision.models.regnet_x_400mf(weights=None)",
     lambda: tvm.regnet_x_400mf(weights=None), [3, 224, 224], W.RegNet_X_400MF_Weights)
_add("regnet_y_400mf", "regnet_y_400mf", "torchvision.models.regnet_y_400mf(weights=None)",
     lambda: tvm.regnet_y_400mf(weights=None), [3, 224, 224], W.RegNet_Y_400MF_Weights)
_add("resnext101_32x8d", "resnext101_32x8d", "torchvision.models.resnext101_32x8d(weights=None)",
     lambda: tvm.resnext101_32x8d(weights=None), [3, 224, 224], W.ResNeXt101_32X8D_Weights)
_add("r3d_18", "r3d_18", "torchvision.models.video.r3d_18(weights=None)",
     lambda: vid.r3d_18(weights=None), [3, 16, 112, 112], vid.R3D_18_Weights)
for _size in (520, 224):
    _sfx = "" if _size == 520 else "@224"
    _add("fcn_resnet50" + _sfx, "fcn_resnet50",
         "torchvision.models.segmentation.fcn_resnet50(weights=None, weights_backbone=None, aux_loss=False)",
         lambda: seg.fcn_resnet50(weights=None, weights_backbone=None, aux_loss=False),
         [3, _size, _size], seg.FCN_ResNet50_Weights)
    _add("deeplabv3_mobilenet_v3_large" + _sfx, "deeplabv3_mobilenet_v3_large",
         "torchvision.models.segmentation.deeplabv3_mobilenet_v3_large(weights=None, "
         "weights_backbone=None, aux_loss=False)",
         lambda: seg.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, aux_loss=False),
         [3, _size, _size], seg.DeepLabV3_MobileNet_V3_Large_Weights)
    _add("lraspp_mobilenet_v3_large" + _sfx, "lraspp_mobilenet_v3_large",
         "torchvision.models.segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None)",
         lambda: seg.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None),
         [3, _size, _size], seg.LRASPP_MobileNet_V3_Large_Weights)
_add("unet", None, "UNet() defined in tools/zoo2_reference.py (Ronneberger et al. 2015, Fig. 1)",
     UNet, [1, 572, 572])
_add("conv_autoencoder", None, "ConvAutoencoder() defined in tools/zoo2_reference.py",
     ConvAutoencoder, [1, 28, 28])

# The segmentation models with the auxiliary FCN head (aux_loss=True), the
# configuration torchvision's weights document: counts, output dict and flops at
# 3x520x520 (no per-leaf lists).
AUX_VARIANTS = {
    "fcn_resnet50_aux": (
        "torchvision.models.segmentation.fcn_resnet50(weights=None, weights_backbone=None, aux_loss=True)",
        lambda: seg.fcn_resnet50(weights=None, weights_backbone=None, aux_loss=True),
        seg.FCN_ResNet50_Weights),
    "deeplabv3_mobilenet_v3_large_aux": (
        "torchvision.models.segmentation.deeplabv3_mobilenet_v3_large(weights=None, "
        "weights_backbone=None, aux_loss=True)",
        lambda: seg.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, aux_loss=True),
        seg.DeepLabV3_MobileNet_V3_Large_Weights),
}

# Published figures (torchvision's weights documentation, "num_params").  Checked
# against the measured counts; the script fails if any differs.
DOCUMENTED_PARAMS = {
    "mobilenet_v3_large": 5_483_032,
    "mobilenet_v3_small": 2_542_856,
    "efficientnet_b0": 5_288_548,
    "efficientnet_b1": 7_794_184,
    "efficientnet_v2_s": 21_458_488,
    "mnasnet1_0": 4_383_312,
    "shufflenet_v2_x0_5": 1_366_792,
    "shufflenet_v2_x1_0": 2_278_604,
    "squeezenet1_1": 1_235_496,
    "regnet_x_400mf": 5_495_976,
    "regnet_y_400mf": 4_344_144,
    "resnext101_32x8d": 88_791_336,
    "r3d_18": 33_371_472,
    "lraspp_mobilenet_v3_large": 3_221_538,     # no aux head exists
    "fcn_resnet50_aux": 35_322_218,             # documented with aux_loss=True
    "deeplabv3_mobilenet_v3_large_aux": 11_029_328,
}


# --------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------

def count_static(model):
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
    return {"params": params, "weights": weights, "biases": biases,
            "buffers": buffers, "buffers_without_counters": buffers_wo}


def shape_of(x):
    if isinstance(x, torch.Tensor):
        return list(x.shape[1:])
    if isinstance(x, (tuple, list)):
        return [shape_of(v) for v in x]
    if isinstance(x, dict):
        return {k: shape_of(v) for k, v in x.items()}
    raise TypeError(type(x))


def leaf_repr(m):
    return f"{type(m).__name__}({m.extra_repr()})"


class OpRecorder(TorchDispatchMode):
    """Counts every aten op overload and records interpolation calls."""

    def __init__(self):
        super().__init__()
        self.counts = collections.Counter()
        self.upsample = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = str(func)
        self.counts[name] += 1
        if "upsample" in name:
            extra = [a if not isinstance(a, torch.Tensor) else None for a in args[1:]]
            extra = [list(a) if isinstance(a, (tuple, list)) else a for a in extra]
            extra += [f"{k}={v}" for k, v in sorted(kwargs.items())]
            self.upsample.append([name, list(args[0].shape[1:]), list(out.shape[1:]), extra])
        return out


def strip_root(key, root_name):
    if key == root_name:
        return ""
    if key.startswith(root_name + "."):
        return key[len(root_name) + 1:]
    return key


def forward_figures(model, shape, device):
    """One instrumented forward pass at batch size 1 on `device`."""
    model = model.to(device).eval()
    leaves = [(n, m) for n, m in model.named_modules() if n and not any(True for _ in m.children())]
    calls = []
    hooks = [m.register_forward_hook(
        lambda mod, inp, out, name=n: calls.append([name, type(mod).__name__, shape_of(out)]))
        for n, m in leaves]
    x = torch.zeros(1, *shape, device=device)
    counter = FlopCounterMode(display=False)
    rec = OpRecorder()
    with torch.no_grad(), counter, rec:
        out = model(x)
    for h in hooks:
        h.remove()

    flops = int(counter.get_total_flops())
    assert flops % 2 == 0, flops
    counts = counter.get_flop_counts()
    root = type(model).__name__
    by_op = {str(op): int(v) for op, v in counts.get("Global", {}).items()}
    assert sum(by_op.values()) == flops
    leaf_names = {n for n, _ in leaves}
    by_module, by_leaf = {}, {}
    for key, ops in counts.items():
        if key == "Global":
            continue
        rel = strip_root(key, root)
        total = int(sum(ops.values()))
        if rel and "." not in rel:
            by_module[rel] = total
        if rel in leaf_names and total:
            by_leaf[rel] = total
    call_counts = collections.Counter(c[0] for c in calls)
    return {
        "output": shape_of(out),
        "flops": flops,
        "macs": flops // 2,
        "flops_by_op": by_op,
        "flops_by_module": by_module,
        "flops_by_leaf": by_leaf,
        "flops_outside_leaves": flops - sum(by_leaf.values()),
        "leaf_calls": calls,
        "leaf_call_counts": {k: v for k, v in call_counts.items() if v > 1},
        "uncalled_leaves": [n for n, _ in leaves if n not in call_counts],
        "aten_ops": dict(sorted(rec.counts.items())),
        "upsample_calls": rec.upsample,
    }


def norm_summary(model):
    out = collections.Counter()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._NormBase):
            key = (f"{type(m).__name__} eps={m.eps} momentum={m.momentum} "
                   f"affine={m.affine} track_running_stats={m.track_running_stats}")
            out[key] += 1
    return dict(sorted(out.items()))


def documented(weights_enum):
    if weights_enum is None:
        return None
    w = weights_enum.DEFAULT
    kw = getattr(w.transforms, "keywords", {})
    return {
        "weights": str(w),
        "num_params": w.meta["num_params"],
        "_ops": w.meta.get("_ops"),
        "transform": {k: (v if isinstance(v, (int, float, str)) else str(v))
                      for k, v in sorted(kw.items())},
    }


# --------------------------------------------------------------------------
# Per-model structure tables (read from the built torchvision model)
# --------------------------------------------------------------------------

def _act_name(seq):
    acts = [type(m).__name__ for m in seq if isinstance(m, (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU))]
    return acts[0] if acts else None


def structure_mobilenet_v3(model):
    feats = model.features
    rows = []
    for i, blk in enumerate(feats):
        if isinstance(blk, tvm.mobilenetv3.InvertedResidual):
            convs = [m for m in blk.modules() if isinstance(m, nn.Conv2d)]
            dw = [c for c in convs if c.groups > 1][0]
            se = [m for m in blk.modules() if isinstance(m, torchvision.ops.SqueezeExcitation)]
            rows.append({
                "features_index": i,
                "in": convs[0].in_channels,
                "expanded": dw.in_channels,
                "out": blk.out_channels,
                "expand_conv": blk.block[0][0].groups == 1,
                "kernel": dw.kernel_size[0], "stride": dw.stride[0], "dilation": dw.dilation[0],
                "padding": dw.padding[0],
                "se_squeeze": se[0].fc1.out_channels if se else None,
                "activation": _act_name(blk.block[0]),
                "residual": blk.use_res_connect,
            })
    return {
        "stem": leaf_repr(feats[0][0]),
        "blocks": rows,
        "last_conv": leaf_repr(feats[-1][0]),
        "classifier": [leaf_repr(m) for m in model.classifier],
    }


def structure_efficientnet(model):
    rows = []
    feats = model.features
    for s, stage in enumerate(feats):
        if not isinstance(stage, nn.Sequential) or not isinstance(
                stage[0], (tvm.efficientnet.MBConv, tvm.efficientnet.FusedMBConv)):
            continue
        for b, blk in enumerate(stage):
            convs = [m for m in blk.block.modules() if isinstance(m, nn.Conv2d)]
            se = [m for m in blk.block.modules() if isinstance(m, torchvision.ops.SqueezeExcitation)]
            main = [c for c in convs if c.kernel_size[0] > 1][0]
            rows.append({
                "features": f"{s}.{b}",
                "type": type(blk).__name__,
                "in": convs[0].in_channels,
                "expanded": main.out_channels if type(blk).__name__ == "FusedMBConv" else main.in_channels,
                "out": blk.out_channels,
                "kernel": main.kernel_size[0], "stride": main.stride[0],
                "depthwise": main.groups > 1,
                "se_squeeze": se[0].fc1.out_channels if se else None,
                "stochastic_depth_p": blk.stochastic_depth.p,
                "residual": blk.use_res_connect,
            })
    return {
        "stem": leaf_repr(feats[0][0]),
        "blocks": rows,
        "last_conv": leaf_repr(feats[-1][0]),
        "classifier": [leaf_repr(m) for m in model.classifier],
    }


def structure_regnet(model, name):
    fn = {"regnet_x_400mf": dict(depth=22, w_0=24, w_a=24.48, w_m=2.54, group_width=16),
          "regnet_y_400mf": dict(depth=16, w_0=48, w_a=27.89, w_m=2.09, group_width=8, se_ratio=0.25)}[name]
    bp = tvm.regnet.BlockParams.from_init_params(**fn)
    blocks = []
    for sname, stage in model.trunk_output.named_children():
        for bname, blk in stage.named_children():
            f = blk.f
            blocks.append({
                "block": f"trunk_output.{sname}.{bname}",
                "in": f.a[0].in_channels, "bottleneck": f.b[0].out_channels, "out": f.c[0].out_channels,
                "groups": f.b[0].groups, "stride": f.b[0].stride[0],
                "se_squeeze": f.se.fc1.out_channels if hasattr(f, "se") else None,
                "proj": blk.proj is not None,
            })
    return {
        "init_params": fn,
        "stage_depths": bp.depths, "stage_widths": bp.widths, "group_widths": bp.group_widths,
        "bottleneck_multipliers": bp.bottleneck_multipliers, "strides": bp.strides, "se_ratio": bp.se_ratio,
        "stem": leaf_repr(model.stem[0]),
        "blocks": blocks,
    }


def structure_shufflenet(model):
    return {
        "stage_out_channels": model._stage_out_channels,
        "stage_repeats": [len(model.stage2), len(model.stage3), len(model.stage4)],
    }


def structure_mnasnet(model):
    rows = []
    for i, m in enumerate(model.layers):
        if isinstance(m, nn.Sequential):
            for j, blk in enumerate(m):
                c = [x for x in blk.layers if isinstance(x, nn.Conv2d)]
                rows.append({"layers": f"{i}.{j}", "in": c[0].in_channels, "mid": c[0].out_channels,
                             "out": c[2].out_channels, "kernel": c[1].kernel_size[0],
                             "stride": c[1].stride[0], "residual": blk.apply_residual})
    return {"depths": tvm.mnasnet._get_depths(1.0), "blocks": rows}


def structure_resnet_like(model):
    """Per bottleneck/basic block: conv kernels, strides, dilations, groups, widths."""
    rows = []
    body = model.backbone if hasattr(model, "backbone") else model
    for lname in ["layer1", "layer2", "layer3", "layer4"]:
        layer = getattr(body, lname, None)
        if layer is None:
            continue
        for b, blk in enumerate(layer):
            convs = [(n, m) for n, m in blk.named_modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))]
            rows.append({"block": f"{lname}.{b}",
                         "convs": [[n, list(m.kernel_size), list(m.stride), list(m.padding),
                                    list(m.dilation), m.groups, m.in_channels, m.out_channels]
                                   for n, m in convs]})
    return {"columns": "[name, kernel, stride, padding, dilation, groups, in, out]", "blocks": rows}


def structure_for(key, name, model):
    if name in ("mobilenet_v3_large", "mobilenet_v3_small"):
        return structure_mobilenet_v3(model)
    if name and name.startswith("efficientnet"):
        return structure_efficientnet(model)
    if name and name.startswith("regnet"):
        return structure_regnet(model, name)
    if name and name.startswith("shufflenet"):
        return structure_shufflenet(model)
    if name == "mnasnet1_0":
        return structure_mnasnet(model)
    if name in ("resnext101_32x8d", "fcn_resnet50", "r3d_18"):
        return structure_resnet_like(model)
    if name in ("deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"):
        body = model.backbone
        return {"backbone_children": [n for n, _ in body.named_children()],
                "return_layers": dict(body.return_layers),
                "dilated_blocks": [[n, leaf_repr(m)] for n, m in body.named_modules()
                                   if isinstance(m, nn.Conv2d) and m.dilation[0] > 1]}
    return None


def analyse(key, device):
    name, src, ctor, shape, wenum = MODELS[key]
    torch.manual_seed(0)
    model = ctor().eval()
    rec = {"torchvision_name": name, "constructor": src, "input": shape}
    rec.update(count_static(model))
    rec["norm_layers"] = norm_summary(model)
    rec["documented"] = documented(wenum)
    if "@" not in key:
        rec["leaf_modules"] = [[n, leaf_repr(m)] for n, m in model.named_modules()
                               if n and not any(True for _ in m.children())]
        rec["structure"] = structure_for(key, name, model)
    rec.update(forward_figures(model, shape, device))
    return rec


# --------------------------------------------------------------------------
# Transposed convolution (Dumoulin & Visin 2016) and upsampling facts
# --------------------------------------------------------------------------

def run_op(module, x_shape, device, extra_input=None):
    """Output shape, params, buffers, FlopCounterMode flops and aten ops of one call."""
    module = module.to(device).eval()
    rec = OpRecorder()
    counter = FlopCounterMode(display=False)
    x = torch.zeros(*x_shape, device=device)
    with torch.no_grad(), counter, rec:
        out = module(x) if extra_input is None else module(x, extra_input(device))
    st = count_static(module)
    return {
        "input": list(x_shape[1:]),
        "output": shape_of(out),
        "params": st["params"], "buffers": st["buffers"],
        "buffers_without_counters": st["buffers_without_counters"],
        "flops": int(counter.get_total_flops()),
        "flops_by_op": {str(k): int(v) for k, v in counter.get_flop_counts().get("Global", {}).items()},
        "aten_ops": dict(sorted(rec.counts.items())),
    }


# (name, relationship, i, k, s, p, d, transposed figure, transposed relationship)
GUIDE_CASES = [
    ("fig2.1_no_padding_no_strides", 1, 4, 3, 1, 0, 1, "fig4.1", 8),
    ("fig2.2_arbitrary_padding_no_strides", 2, 5, 4, 1, 2, 1, "fig4.2", 9),
    ("fig2.3_same_padding_no_strides", 3, 5, 3, 1, 1, 1, "fig4.3", 10),
    ("fig2.4_full_padding_no_strides", 4, 5, 3, 1, 2, 1, "fig4.4", 11),
    ("fig2.5_no_padding_strides", 5, 5, 3, 2, 0, 1, "fig4.5", 12),
    ("fig2.6_padding_strides", 6, 5, 3, 2, 1, 1, "fig4.6", 13),
    ("fig2.7_padding_strides_odd", 6, 6, 3, 2, 1, 1, "fig4.7", 14),
    ("fig5.1_dilation", 15, 7, 3, 1, 0, 2, None, None),
]

CIN, COUT = 2, 3


def conv_out(i, k, s, p, d):
    return (i + 2 * p - k - (k - 1) * (d - 1)) // s + 1


def convT_out(i, k, s, p, d, op):
    return (i - 1) * s - 2 * p + d * (k - 1) + op + 1


def guide_facts(device):
    cases = {}
    for name, rel, i, k, s, p, d, tfig, trel in GUIDE_CASES:
        for groups, cin, cout in [(1, CIN, COUT)] + ([(2, 4, 6)] if name.startswith("fig2.6") else []):
            key = name if groups == 1 else name + "_groups2"
            conv = nn.Conv2d(cin, cout, k, stride=s, padding=p, dilation=d, groups=groups)
            c = run_op(conv, (1, cin, i, i), device)
            o = c["output"][1]
            assert o == conv_out(i, k, s, p, d), (name, o)
            assert c["flops"] == 2 * o * o * k * k * (cin // groups) * cout
            entry = {
                "guide_relationship": rel, "i": i, "k": k, "s": s, "p": p, "d": d,
                "groups": groups, "cin": cin, "cout": cout,
                "conv2d": {"module": leaf_repr(conv), **c,
                           "flop_formula": "2 * o_h * o_w * k * k * (cin / groups) * cout"},
                "transposed": {},
            }
            entry["transposed_guide_figure"] = tfig
            entry["transposed_guide_relationship"] = trel
            a = (i + 2 * p - k - (k - 1) * (d - 1)) % s
            entry["a"] = a
            ops = [0] + ([1] if s > 1 else [])
            for op in ops:
                ct = nn.ConvTranspose2d(cin, cout, k, stride=s, padding=p, output_padding=op,
                                        dilation=d, groups=groups)
                t = run_op(ct, (1, cin, o, o), device)
                ot = t["output"][1]
                assert ot == convT_out(o, k, s, p, d, op), (name, op, ot)
                # FlopCounterMode's transposed formula: input spatial size x weight numel.
                assert t["flops"] == 2 * o * o * k * k * cin * (cout // groups), (name, t["flops"])
                t["module"] = leaf_repr(ct)
                t["flop_formula"] = "2 * i_h * i_w * k * k * cin * (cout / groups)  (INPUT spatial size)"
                t["restores_conv_input_size"] = ot == i
                if d == 1:
                    # The guide's equivalent direct convolution: stretch the input
                    # (s - 1 zeros between units), pad p' = k - p - 1 on every side
                    # plus `op` extra rows/columns at the bottom/right, unit stride.
                    i_tilde = o + (o - 1) * (s - 1)
                    p_prime = k - p - 1
                    eq = nn.Conv2d(cin, cout, k, stride=1, padding=p_prime, groups=groups)
                    e = run_op(eq, (1, cin, i_tilde + op, i_tilde + op), device)
                    assert e["output"][1] == ot, (name, op, e["output"], ot)
                    t["guide_equivalent_conv"] = {
                        "i_prime": o, "i_tilde_prime": i_tilde, "p_prime": p_prime, "a": op,
                        "output": e["output"], "flops": e["flops"],
                        "note": "Conv2d(k, stride 1, padding p') over the stretched input of size "
                                "i_tilde' + a; same output size as the ConvTranspose2d",
                    }
                entry["transposed"][f"output_padding={op}"] = t
            cases[key] = entry

    # Pooling (Relationship 7) on the Fig. 2.5 geometry.
    pool = {}
    for cls in (nn.MaxPool2d, nn.AvgPool2d):
        m = cls(3, stride=2)
        pool[cls.__name__ + "(3, stride=2)"] = {"module": leaf_repr(m), **run_op(m, (1, CIN, 5, 5), device)}
    cases["relationship7_pooling_i5_k3_s2"] = pool
    return cases


def upsampling_facts(device):
    x4 = (1, 8, 6, 6)
    x5 = (1, 8, 4, 6, 6)
    f = {}

    def add(name, module, shape, extra=None):
        f[name] = {"module": leaf_repr(module), **run_op(module, shape, device, extra)}

    add("Upsample_nearest_scale2", nn.Upsample(scale_factor=2, mode="nearest"), x4)
    add("Upsample_nearest_size_9x10", nn.Upsample(size=(9, 10), mode="nearest"), x4)
    add("Upsample_bilinear_scale2_align_corners_False",
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), x4)
    add("Upsample_bilinear_scale2_align_corners_True",
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True), x4)
    add("Upsample_bilinear_size_13x13_align_corners_False",
        nn.Upsample(size=(13, 13), mode="bilinear", align_corners=False), x4)
    add("Upsample_bilinear_size_13x13_align_corners_True",
        nn.Upsample(size=(13, 13), mode="bilinear", align_corners=True), x4)
    add("Upsample_trilinear_scale2_align_corners_False",
        nn.Upsample(scale_factor=2, mode="trilinear", align_corners=False), x5)
    add("Upsample_trilinear_size_5x7x9_align_corners_False",
        nn.Upsample(size=(5, 7, 9), mode="trilinear", align_corners=False), x5)
    add("Upsample_bicubic_scale2_align_corners_False",
        nn.Upsample(scale_factor=2, mode="bicubic", align_corners=False), x4)

    class Interp(nn.Module):
        def __init__(self, **kw):
            super().__init__()
            self.kw = kw

        def forward(self, x):
            return F.interpolate(x, **self.kw)

        def extra_repr(self):
            return "F.interpolate(" + ", ".join(f"{k}={v}" for k, v in self.kw.items()) + ")"

    add("F.interpolate_nearest_scale2", Interp(scale_factor=2, mode="nearest"), x4)
    add("F.interpolate_bilinear_size_13x13_align_corners_False",
        Interp(size=(13, 13), mode="bilinear", align_corners=False), x4)
    add("F.interpolate_bilinear_1x1_to_33x33_align_corners_False (ASPPPooling)",
        Interp(size=(33, 33), mode="bilinear", align_corners=False), (1, 8, 1, 1))
    add("PixelShuffle(2)", nn.PixelShuffle(2), x4)
    add("PixelUnshuffle(2)", nn.PixelUnshuffle(2), x4)
    add("ChannelShuffle(2)", nn.ChannelShuffle(2), x4)
    add("ChannelShuffle(4)", nn.ChannelShuffle(4), x4)

    class PoolUnpool(nn.Module):
        def __init__(self):
            super().__init__()
            self.pool = nn.MaxPool2d(2, return_indices=True)
            self.unpool = nn.MaxUnpool2d(2)

        def forward(self, x):
            y, idx = self.pool(x)
            return y, idx, self.unpool(y, idx)

    add("MaxPool2d(2, return_indices=True) -> MaxUnpool2d(2)  [pooled, indices, unpooled]", PoolUnpool(), x4)

    class PoolUnpoolSize(PoolUnpool):
        def forward(self, x):
            y, idx = self.pool(x)
            return self.unpool(y, idx, output_size=x.shape[-2:])

    add("MaxPool2d(2) -> MaxUnpool2d(2, output_size=input) on 7x7", PoolUnpoolSize(), (1, 8, 7, 7))
    add("MaxPool2d(2) -> MaxUnpool2d(2) on 7x7 (default size)", PoolUnpool(), (1, 8, 7, 7))
    for affine in (False, True):
        for trs in (False, True):
            add(f"InstanceNorm2d(8, affine={affine}, track_running_stats={trs})",
                nn.InstanceNorm2d(8, affine=affine, track_running_stats=trs), x4)
    return f


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------

def dumps(obj, indent=0, width=110):
    """JSON with sorted keys; containers that fit in `width` go on one line."""
    flat = json.dumps(obj, sort_keys=True)
    if not isinstance(obj, (dict, list)) or len(flat) + indent <= width:
        return flat
    pad = " " * (indent + 2)
    if isinstance(obj, dict):
        body = ",\n".join(f"{pad}{json.dumps(k)}: {dumps(v, indent + 2, width)}"
                          for k, v in sorted(obj.items()))
        return "{\n" + body + "\n" + " " * indent + "}"
    body = ",\n".join(pad + dumps(v, indent + 2, width) for v in obj)
    return "[\n" + body + "\n" + " " * indent + "]"


NOTES = {
    "general": "Batch size 1, model.eval(), torch.no_grad(), float32. Models are built on the "
               "CPU with random init (weights=None, weights_backbone=None), counted, then moved to "
               "the meta device for the forward pass; --check-cpu re-runs every forward pass on CPU "
               "tensors and asserts identical figures. Shapes exclude the batch dimension.",
    "flop_counter_scope": "FlopCounterMode counts only matmul-like ops; in these models "
                          "aten.convolution (including transposed convolutions) and aten.addmm. "
                          "BatchNorm, activations, pooling, SE gating multiplies, residual adds, "
                          "concatenation, channel shuffle, interpolation (aten.upsample_*), pixel "
                          "shuffle, max-unpool and instance norm all count 0. Bias additions are "
                          "not counted (the formula counts 2 FLOPs per multiply-accumulate).",
    "transposed_conv_flops": "FlopCounterMode counts a transposed convolution as 2 * (INPUT spatial "
                             "size) * Cin * (Cout/groups) * prod(kernel): every input element times "
                             "the whole kernel, including the products that land in the cropped "
                             "padding border (so for padding > 0 it exceeds a count over output "
                             "positions). Recorded under aten.convolution.",
    "keys": "Keys ending in '@224' are the same model at 224x224 (static figures identical to the "
            "base key; leaf_modules and structure are omitted there). The segmentation base keys are "
            "at 3x520x520, efficientnet_b1 at 240, efficientnet_v2_s at 384.",
    "segmentation": "Segmentation models are built with aux_loss=False (fcn, deeplabv3) and return "
                    "OrderedDict {'out': ...}. The final resize to the input size is a functional "
                    "F.interpolate(mode='bilinear', align_corners=False) in the model's forward, "
                    "not a module: see upsample_calls. The aux_variants entries are the "
                    "aux_loss=True configuration that torchvision's weights document; they return "
                    "{'out', 'aux'}, both resized to the input size.",
    "documented_ops": "documented._ops is torchvision's published 'GFLOPS' figure; it equals "
                      "macs / 1e9 at the documented crop size (i.e. torchvision's 'FLOPs' are "
                      "multiply-accumulates), see doc_ops_check.",
    "leaf": "A leaf is a module without children. leaf_calls lists every call in forward order; "
            "modules called more than once (e.g. ResNet's shared self.relu) appear each time and "
            "are listed in leaf_call_counts; uncalled_leaves lists leaves the forward never calls "
            "(e.g. ShuffleNetV2's empty branch1 in stride-1 blocks, num_batches_tracked is a buffer "
            "not a module).",
    "conv_arithmetic": "Case names follow the figure and relationship numbers of Dumoulin & Visin, "
                       "'A guide to convolution arithmetic for deep learning' (arXiv:1603.07285), "
                       "read from its LaTeX source (github.com/vdumoulin/conv_arithmetic, "
                       "conv_arithmetic.tex at 92fb927): report class, figures numbered per chapter "
                       "(ch. 2 convolution, ch. 4 transposed, ch. 5 dilated), relationships numbered "
                       "1-15 across the guide. Each transposed case is nn.ConvTranspose2d with the SAME "
                       "k, s, p (and d, groups) as the direct convolution, applied to that "
                       "convolution's output size i' = o; output_padding plays the guide's 'a' "
                       "(Relationship 14). guide_equivalent_conv is the guide's direct convolution "
                       "(k' = k, s' = 1, p' = k - p - 1 over the stretched input i~' = i' + (i'-1)(s-1), "
                       "plus a extra rows/columns).",
}


def build(device):
    out = {
        "meta": {
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "python": sys.version.split()[0],
            "command": COMMAND,
            "forward_device": device,
        },
        "notes": NOTES,
        "models": {},
        "aux_variants": {},
    }
    for key in MODELS:
        print(f"[zoo2_reference] {key}", file=sys.stderr)
        out["models"][key] = analyse(key, device)
    for key, (src, ctor, wenum) in AUX_VARIANTS.items():
        print(f"[zoo2_reference] {key}", file=sys.stderr)
        torch.manual_seed(0)
        m = ctor().eval()
        rec = {"constructor": src, "input": [3, 520, 520], **count_static(m),
               "norm_layers": norm_summary(m), "documented": documented(wenum)}
        fw = forward_figures(m, [3, 520, 520], device)
        rec.update({k: fw[k] for k in ("output", "flops", "macs", "flops_by_op", "flops_by_module",
                                       "upsample_calls")})
        out["aux_variants"][key] = rec
    out["transposed_conv"] = {"cin": CIN, "cout": COUT, "cases": guide_facts(device)}
    out["upsampling"] = upsampling_facts(device)
    return out


def checks(out):
    m, so = out["models"], out["aux_variants"]
    figs = {**{k: v["params"] for k, v in m.items()}, **{k: v["params"] for k, v in so.items()}}
    for key, want in DOCUMENTED_PARAMS.items():
        assert figs[key] == want, (key, figs[key], want)
        doc = (m.get(key) or so.get(key))["documented"]
        assert doc["num_params"] == want, (key, doc)
    assert m["unet"]["params"] == unet_params_by_formula() == 31_030_658, m["unet"]["params"]
    assert m["unet"]["output"] == [2, 388, 388]
    assert m["conv_autoencoder"]["output"] == [1, 28, 28]
    seg_out = {"out": [21, 520, 520]}
    for k in ("fcn_resnet50", "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"):
        assert m[k]["output"] == seg_out, (k, m[k]["output"])
    for k, v in m.items():
        assert v["flops_outside_leaves"] == 0, k
    # torchvision's documented _ops (G) = macs / 1e9 rounded to 3 decimals at the
    # documented crop size, for the classification / video models.
    # The segmentation weights are documented with the aux head: compare those
    # with the aux_variants entries, the rest with the base entries.
    doc_check = {}
    for k, v in list(m.items()) + list(so.items()):
        d = v["documented"]
        if d is None or "@" in k or k in ("fcn_resnet50", "deeplabv3_mobilenet_v3_large"):
            continue
        doc_check[k] = {"documented_ops": d["_ops"], "macs_over_1e9": round(v["macs"] / 1e9, 3),
                        "input": v["input"], "equal": round(v["macs"] / 1e9, 3) == d["_ops"]}
    out["doc_ops_check"] = doc_check
    for k, v in doc_check.items():
        assert v["equal"], (k, v)
    assert so["fcn_resnet50_aux"]["output"] == {"out": [21, 520, 520], "aux": [21, 520, 520]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check-cpu", action="store_true",
                    help="also run every forward pass on CPU tensors and assert identical figures "
                         "(slow: a few minutes on 2 cores); prints nothing on success but a line to stderr")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out = build("meta")
        checks(out)
        if args.check_cpu:
            cpu = build("cpu")
            checks(cpu)
            for sect in ("models", "aux_variants", "transposed_conv", "upsampling", "doc_ops_check"):
                for k in out[sect]:
                    assert out[sect][k] == cpu[sect][k], (sect, k)
            print("[zoo2_reference] --check-cpu: meta and CPU figures identical", file=sys.stderr)
    sys.stdout.write(dumps(out) + "\n")


if __name__ == "__main__":
    main()
