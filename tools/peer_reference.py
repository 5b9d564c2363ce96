#!/usr/bin/env python3
"""Measure what other counting tools report, and reproduce each to the unit.

Stand-alone: imports the standard library, torch, torchvision and the four
peer tools (torchinfo, fvcore, ptflops, thop).  It is NOT part of archcalc and
is not run by the test suite; none of these tools is a dependency of archcalc.
It writes the JSON file that documents the tools' conventions:

    /work/peersvenv/bin/python tools/peer_reference.py > tests/reference/peer_reference.json

(any interpreter with the versions listed in the JSON ``meta`` installed).  No
weights are downloaded: every model is built with random initialisation.

For every model it records
  * torch.utils.flop_counter.FlopCounterMode's total (flops, macs = flops // 2);
  * each tool's own total and its per-module / per-operator breakdown, exactly
    as the tool reports it (see ``TOOL_CALLS`` for the exact calls);
  * the prediction of a small per-layer formula for that tool (the functions
    ``torchinfo_rule``, ``fvcore_rule``, ``ptflops_rule``, ``ptflops_aten_rule``
    and ``thop_rule`` below, which use only a layer's type, its configuration
    (kernel, groups, bias, affine, hidden size, layers, ...), its parameter
    count and its input / output shapes).  The script ASSERTS that the formula
    equals the tool's per-module numbers and its total to the unit, for every
    model; it exits non-zero otherwise.

"Layers" fed to the formulas come from one separate, un-instrumented-by-tools
forward pass (``record_facts``): every call of a module that has no children
(plus nn.MultiheadAttention, whose only child is never called), with its input
and output shapes, and every torch function called directly in a container's
forward (torch.cat, the residual ``+``, F.adaptive_avg_pool2d, F.relu, ...),
with its argument shapes.  archcalc sees the latter as layers too.
"""

import contextlib
import datetime
import io
import json
import logging
import math
import sys
import warnings
from collections import Counter, defaultdict
from importlib import metadata

import ptflops.aten_engine as pt_aten
import ptflops.pytorch_engine as pt_engine
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from fvcore.nn import FlopCountAnalysis, parameter_count
from ptflops import get_model_complexity_info
from thop import profile as thop_profile
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode
from torchinfo import summary

COMMAND = ("/work/peersvenv/bin/python tools/peer_reference.py "
           "> tests/reference/peer_reference.json")

tvm = torchvision.models

# The exact calls (what a user would type; only what is needed to get numbers
# out differs from the defaults).
TOOL_CALLS = {
    "torchinfo": "summary(model, input_size=(1, 3, 224, 224)) for images; "
                 "summary(model, input_data=ids) for token-id models (input_size "
                 "would feed float32 ones, which nn.Embedding rejects). All other "
                 "arguments default (mode=None -> eval, batch_dim=None, "
                 "verbose=None; its printout is discarded). Figures: "
                 ".total_mult_adds, .total_params, and per layer LayerInfo.macs / "
                 ".num_params from .summary_list.",
    "fvcore": "FlopCountAnalysis(model, (x,)); .total(), .by_module(), "
              ".by_operator(), .unsupported_ops(), .uncalled_modules(); the "
              "'Unsupported operator ...' log warnings are captured. "
              "Params from fvcore.nn.parameter_count(model)[''].",
    "ptflops": "get_model_complexity_info(model, (3, 224, 224), "
               "as_strings=False, print_per_layer_stat=False) (backend default "
               "'pytorch'); token-id models add input_constructor=lambda res: "
               "ids (the default input is float32). Per-module __flops__ / "
               "__params__ and __batch_counter__ are read just before ptflops "
               "deletes them (its stop_flops_count is wrapped), and the "
               "functional/tensor-op patch wrappers are wrapped to log each "
               "counted call; neither changes a number.",
    "ptflops_aten": "get_model_complexity_info(..., as_strings=False, "
                    "print_per_layer_stat=False, backend='aten'); its "
                    "FlopCounterMode (a TorchDispatchMode) is subclassed only "
                    "to keep its per-child flop_counts and to list the aten ops "
                    "it treated as zero-ops.",
    "thop": "thop.profile(model, inputs=(x,), ret_layer_info=True) (custom_ops "
            "None, verbose default True, its printout discarded); "
            "ret_layer_info only adds the per-module tree to the return value.",
}


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------

class LSTMNet(nn.Module):
    """(a) Embedding(10000, 300) -> LSTM(300, 128, 2 layers) -> last step -> Linear."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10000, 300)
        self.lstm = nn.LSTM(300, 128, num_layers=2, batch_first=True)
        self.fc = nn.Linear(128, 10)

    def forward(self, ids):
        out, _ = self.lstm(self.emb(ids))
        return self.fc(out[:, -1])


class EmbConvBN(nn.Module):
    """(b) Embedding(1000, 64) on 16 ids -> Conv1d -> BatchNorm1d -> ReLU -> pool -> Linear."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(1000, 64)
        self.conv = nn.Conv1d(64, 32, 3, padding=1)
        self.bn = nn.BatchNorm1d(32)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveMaxPool1d(1)
        self.fc = nn.Linear(32, 5)

    def forward(self, ids):
        x = self.emb(ids).transpose(1, 2)
        x = self.pool(self.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(x, 1))


class ProbeCV(nn.Module):
    """(c) One of each vision layer the peers treat specially (input 3x32x32).

    Not one of the requested models: it exists so that every rule in
    peer_conventions.md is measured, not only read from the tools' sources.
    Residual / product use the Python operators (+, *), as torchvision does;
    torch.add / torch.mul / torch.matmul / F.* are called as functions where a
    tool patches the function.
    """

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)                       # bias
        self.bn = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.gconv = nn.Conv2d(16, 16, 3, padding=1, groups=4, bias=False)
        self.dwconv = nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False)
        self.prelu = nn.PReLU()
        self.lrelu = nn.LeakyReLU(0.1)
        self.relu6 = nn.ReLU6()
        self.elu = nn.ELU()
        self.gelu = nn.GELU()
        self.silu = nn.SiLU()
        self.hswish = nn.Hardswish()
        self.sigmoid = nn.Sigmoid()
        self.tanh = nn.Tanh()
        self.maxpool = nn.MaxPool2d(2)                                   # 32 -> 16
        self.avgpool = nn.AvgPool2d(2)                                   # 16 -> 8
        self.up_nearest = nn.Upsample(scale_factor=2, mode="nearest")    # 8 -> 16
        self.up_bilinear = nn.Upsample(scale_factor=2, mode="bilinear",
                                       align_corners=False)              # 16 -> 32
        self.deconv = nn.ConvTranspose2d(16, 8, 2, stride=2)             # 16 -> 32
        self.gn = nn.GroupNorm(4, 16)
        self.inorm = nn.InstanceNorm2d(16)
        self.bn_noaffine = nn.BatchNorm2d(16, affine=False)
        self.dropout = nn.Dropout(0.5)
        self.amaxpool = nn.AdaptiveMaxPool2d(1)
        self.aavgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8 + 16 + 16, 10)
        self.fc_nobias = nn.Linear(10, 10, bias=False)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):
        x = self.relu(self.bn(self.conv(x)))                 # 16x32x32
        y = self.gconv(x)
        y = self.prelu(y)
        y = self.dwconv(y)
        y = self.lrelu(y) + x                                # residual: Python +
        y = self.relu6(y)
        y = self.elu(y)
        y = self.gelu(y) * self.sigmoid(y)                   # gating: Python *
        y = self.silu(y)
        y = self.hswish(y)
        y = self.tanh(y)
        y = F.relu(y)                                        # functional relu
        y = torch.add(y, x)                                  # torch.add function
        p = self.maxpool(y)                                  # 16x16x16
        q = self.avgpool(p)                                  # 16x8x8
        q = self.up_nearest(q)                               # 16x16x16
        q = torch.cat([q, p], 1)[:, :16]                     # concat, slice
        q = self.up_bilinear(q)                              # 16x32x32
        d = self.deconv(p)                                   # 8x32x32
        g = self.gn(y)
        g = self.inorm(g)
        g = self.bn_noaffine(g)
        g = F.interpolate(g, scale_factor=0.5, mode="nearest")   # 16x16x16
        g = F.max_pool2d(g, 2)                               # 16x8x8
        a = self.amaxpool(d).flatten(1)                      # 8
        b = self.aavgpool(q).flatten(1)                      # 16
        c = F.adaptive_avg_pool2d(g, 1).flatten(1)           # 16
        h = self.dropout(torch.cat([a, b, c], 1))            # 40
        h = self.fc(h)
        h = self.fc_nobias(torch.mul(h, h))                  # torch.mul function
        return self.softmax(h) + F.softmax(h, dim=1)


class ProbeSeq(nn.Module):
    """(d) Sequence layers: Embedding, LayerNorm, MultiheadAttention, GRU, RNN,
    LSTM (bidirectional), Linear on a 3-D input, matmul / bmm (input: 12 ids)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(100, 32)
        self.ln = nn.LayerNorm(32)
        self.mha = nn.MultiheadAttention(32, 4, batch_first=True)
        self.gru = nn.GRU(32, 24, batch_first=True)
        self.rnn = nn.RNN(24, 16, num_layers=2, batch_first=True, bidirectional=True)
        self.lstm = nn.LSTM(32, 8, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(16, 16)                        # on (1, 12, 16)
        self.ln2 = nn.LayerNorm(16, elementwise_affine=False)
        self.head = nn.Linear(16, 3)

    def forward(self, ids):
        x = self.ln(self.emb(ids))                           # 1x12x32
        a, _ = self.mha(x, x, x)
        x = x + a
        g, _ = self.gru(x)                                   # 1x12x24
        r, _ = self.rnn(g)                                   # 1x12x32
        s, _ = self.lstm(r)                                  # 1x12x16
        t = self.proj(s)                                     # Linear on 3-D
        att = torch.matmul(t, t.transpose(1, 2))             # 1x12x12
        t = torch.bmm(F.softmax(att, dim=-1), t)             # 1x12x16
        t = self.ln2(t @ torch.ones(16, 16))                 # Python @
        return self.head(t.mean(1))


# name -> (constructor, input factory, ptflops input_res, kind)
IMG = (3, 224, 224)
MODELS = {
    "vgg16": (lambda: tvm.vgg16(weights=None), lambda: torch.randn(1, *IMG), IMG),
    "resnet50": (lambda: tvm.resnet50(weights=None), lambda: torch.randn(1, *IMG), IMG),
    "densenet121": (lambda: tvm.densenet121(weights=None), lambda: torch.randn(1, *IMG), IMG),
    "mobilenet_v2": (lambda: tvm.mobilenet_v2(weights=None), lambda: torch.randn(1, *IMG), IMG),
    "squeezenet1_0": (lambda: tvm.squeezenet1_0(weights=None), lambda: torch.randn(1, *IMG), IMG),
    "efficientnet_b0": (lambda: tvm.efficientnet_b0(weights=None),
                        lambda: torch.randn(1, *IMG), IMG),
    "lstm_net": (LSTMNet, lambda: torch.randint(0, 10000, (1, 35)), (35,)),
    "emb_conv_bn_net": (EmbConvBN, lambda: torch.randint(0, 1000, (1, 16)), (16,)),
    "probe_cv": (ProbeCV, lambda: torch.randn(1, 3, 32, 32), (3, 32, 32)),
    "probe_seq": (ProbeSeq, lambda: torch.randint(0, 100, (1, 12)), (12,)),
}
REQUESTED = ["vgg16", "resnet50", "densenet121", "mobilenet_v2", "squeezenet1_0",
             "efficientnet_b0", "lstm_net", "emb_conv_bn_net"]

MODEL_NOTES = {
    "lstm_net": "Embedding(10000,300) -> LSTM(300,128,num_layers=2,batch_first=True) "
                "-> out[:, -1] -> Linear(128,10); input: 35 token ids, batch 1",
    "emb_conv_bn_net": "Embedding(1000,64) on 16 ids -> transpose(1,2) -> "
                       "Conv1d(64,32,3,padding=1) -> BatchNorm1d(32) -> ReLU -> "
                       "AdaptiveMaxPool1d(1) -> flatten -> Linear(32,5)",
    "probe_cv": "not requested: one of each vision layer (see ProbeCV in the "
                "script), input 3x32x32, so every per-layer rule is measured",
    "probe_seq": "not requested: Embedding, LayerNorm (affine and not), "
                 "MultiheadAttention(32, 4 heads, batch_first, self-attention, "
                 "need_weights default), GRU, 2-layer bidirectional RNN, "
                 "bidirectional LSTM, Linear on a 3-D input, torch.matmul, "
                 "torch.bmm, F.softmax, Python @; input 12 token ids",
}


def build(name):
    torch.manual_seed(0)
    ctor, make_input, res = MODELS[name]
    model = ctor().eval()
    torch.manual_seed(1)
    return model, make_input(), res


def prod(xs):
    return math.prod(int(v) for v in xs)


def as_int(v):
    """Tools return floats / numpy ints; every figure here must be integral."""
    f = float(v)
    assert f == int(f), v
    return int(f)


# --------------------------------------------------------------------------
# Facts: the layers of one forward pass, with their shapes
# --------------------------------------------------------------------------

ATOMIC_NONLEAF = (nn.MultiheadAttention,)


def is_atomic(m):
    return not any(True for _ in m.children()) or isinstance(m, ATOMIC_NONLEAF)


def tensor_shapes(obj):
    """Shapes of the tensors in obj (nested tuples/lists/dicts), in order."""
    if isinstance(obj, torch.Tensor):
        return [list(obj.shape)]
    if isinstance(obj, (list, tuple)):
        return [s for o in obj for s in tensor_shapes(o)]
    if isinstance(obj, dict):
        return [s for o in obj.values() for s in tensor_shapes(o)]
    return []


def plain(obj):
    """Arguments with tensors replaced by their shapes (for function rules)."""
    if isinstance(obj, torch.Tensor):
        return {"shape": list(obj.shape)}
    if isinstance(obj, (list, tuple)):
        return [plain(o) for o in obj]
    if isinstance(obj, (int, float, str, bool)) or obj is None:
        return obj
    return repr(obj)


def func_name(func):
    qual = getattr(func, "__qualname__", None) or repr(func)
    mod = getattr(func, "__module__", None)
    name = getattr(func, "__name__", qual)
    if qual.startswith("TensorBase.") or qual.startswith("_TensorBase."):
        return "Tensor." + name          # method or Python operator (+, *, @)
    if mod == "torch.nn.functional":
        return "F." + name
    if qual.startswith("_VariableFunctionsClass."):
        return "torch." + name
    return (mod or "?") + "." + qual


class FactRecorder(TorchFunctionMode):
    """Records module calls (hooks) and top-level torch function calls."""

    def __init__(self, model):
        super().__init__()
        self.names = {}
        for n, m in model.named_modules():
            self.names.setdefault(id(m), n)
        self.stack = []          # [(name, module)]
        self.events = []
        self.handles = []
        for m in model.modules():
            self.handles.append(m.register_forward_pre_hook(self._pre))
            self.handles.append(m.register_forward_hook(self._post))

    def _pre(self, mod, inputs):
        self.stack.append((self.names[id(mod)], mod))

    def _post(self, mod, inputs, output):
        name, m = self.stack.pop()
        assert m is mod
        inside = any(is_atomic(sm) for _, sm in self.stack)
        self.events.append({
            "kind": "module", "name": name, "module": mod, "type": type(mod).__name__,
            "in": tensor_shapes(inputs), "out": tensor_shapes(output),
            "atomic": is_atomic(mod) and not inside,
            "scope": [n for n, _ in self.stack],
        })

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inside = any(is_atomic(sm) for _, sm in self.stack)
        if not inside and tensor_shapes(args) \
                and tensor_shapes(out):
            self.events.append({
                "kind": "function", "func": func_name(func),
                "name": self.stack[-1][0] if self.stack else "",
                "scope": [n for n, _ in self.stack],
                "in": tensor_shapes(args), "out": tensor_shapes(out),
                "args": plain(args), "kwargs": {k: plain(v) for k, v in kwargs.items()},
                "atomic": True,
            })
        return out

    def remove(self):
        for h in self.handles:
            h.remove()


def record_facts(name):
    model, x, _ = build(name)
    rec = FactRecorder(model)
    with torch.no_grad(), rec:
        model(x)
    rec.remove()
    layers = [e for e in rec.events if e["atomic"]]
    # Function events recorded at container scope that are pure metadata
    # (size, shape, view, getitem, ...) are kept: every rule gives them 0.
    return model, layers


def flop_counter_total(name, mkldnn=True):
    model, x, _ = build(name)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), torch.backends.mkldnn.flags(enabled=mkldnn), counter:
        model(x)
    by_op = {str(k): int(v) for k, v in counter.get_flop_counts().get("Global", {}).items()}
    return int(counter.get_total_flops()), by_op


# --------------------------------------------------------------------------
# Per-layer rules, one per tool.  Each takes a layer (module call or function
# call) and returns the tool's figure for it.  Only type, configuration,
# parameter counts and shapes are used.
# --------------------------------------------------------------------------

CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
CONVT = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
INORM = (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)
RNNS = (nn.RNN, nn.GRU, nn.LSTM)


def conv_macs(m, x, y, transposed=False):
    """MACs of a convolution without bias: N * prod(spatial) * Cout * Cin/g * prod(k).

    (For a transposed conv the *input* spatial size and the weight
    [Cin, Cout/g, k...] give the same formula.)"""
    spatial = x[2:] if transposed else y[2:]
    return x[0] * prod(spatial) * prod(m.weight.shape)


def torchinfo_rule(layer):
    """torchinfo 1.8.0 LayerInfo.calculate_macs, for a leaf module (0 otherwise)."""
    if layer["kind"] != "module" or any(True for _ in layer["module"].children()):
        return 0   # functional ops: not seen; non-leaf modules (MHA): not summed
    m, y = layer["module"], layer["out"][0]
    cls = type(m).__name__
    macs = 0
    for pname, p in m.named_parameters():
        n = p.numel()
        if pname in ("weight", "bias"):
            if "Conv" in cls:                        # any class name containing Conv
                macs += n * (y[0] * prod(y[2:]))     # params * N * out spatial
            else:
                macs += y[0] * n                     # params * output_size[0]
        elif "weight" in pname or "bias" in pname:   # RNN weight_ih_l0, ...
            macs += y[0] * y[1] * n                  # params * prod(output_size[:2])
    return macs


def torchinfo_params(layer):
    return sum(p.numel() for p in layer["module"].parameters())


def _bn_eval(m):
    return not m.training and m.track_running_stats


def fvcore_rule(layer):
    """fvcore FlopCountAnalysis: per traced aten op; 1 'flop' = 1 MAC."""
    if layer["kind"] == "function":
        return fvcore_function_rule(layer)
    m, x, y = layer["module"], layer["in"][0], layer["out"][0]
    if isinstance(m, CONV):
        return conv_macs(m, x, y)                           # aten::_convolution, no bias
    if isinstance(m, CONVT):
        return conv_macs(m, x, y, transposed=True)
    if isinstance(m, nn.Linear):
        return prod(x) * m.out_features                     # aten::linear, no bias
    if isinstance(m, BN):
        if _bn_eval(m):
            return prod(x) * (2 if m.affine else 1)         # aten::batch_norm (eval)
        return prod(x) * (5 if m.affine else 4)
    if isinstance(m, nn.LayerNorm):
        return prod(x) * (5 if m.elementwise_affine else 4)   # aten::layer_norm
    if isinstance(m, nn.GroupNorm):
        return prod(x) * (5 if m.affine else 4)             # aten::group_norm
    if isinstance(m, INORM):
        return prod(x) * (5 if m.affine else 4)             # aten::instance_norm
    if isinstance(m, nn.AdaptiveAvgPool2d):
        return prod(x)                                      # input numel
    if isinstance(m, nn.Upsample) and len(x) == 4:
        if m.mode == "nearest":
            return prod(y)                                  # upsample_nearest2d
        if m.mode == "bilinear":
            return 4 * prod(y)                              # upsample_bilinear2d
        return 0
    if isinstance(m, nn.MultiheadAttention):
        return mha_fvcore(layer)
    return 0   # Embedding, RNNs, activations, pools, dropout, softmax, ...


def mha_dims(layer):
    """(batch, Lq, Lk, E, heads) of a batch_first-aware MHA call."""
    m = layer["module"]
    q, k = layer["in"][0], layer["in"][1]
    if m.batch_first:
        return q[0], q[1], k[1], m.embed_dim, m.num_heads
    return q[1], q[0], k[0], m.embed_dim, m.num_heads


def mha_fvcore(layer):
    # Traced ops (self-attention, packed in_proj, need_weights=True): one
    # aten::linear (L*N x E -> 3E), two aten::bmm (QK^T and AV) and the out_proj
    # aten::linear.  Scaling / softmax / mean of the weights: unsupported or
    # ignored.
    n, lq, lk, e, h = mha_dims(layer)
    in_proj = n * lq * e * 3 * e
    bmm = 2 * (n * h) * lq * (e // h) * lk
    out_proj = n * lq * e * e
    return in_proj + bmm + out_proj


def fvcore_function_rule(layer):
    f, ins = layer["func"], layer["in"]
    if f == "F.adaptive_avg_pool2d":
        return prod(ins[0])
    if f in ("torch.matmul", "Tensor.matmul"):
        return prod(ins[0]) * ins[1][-1]
    if f in ("torch.bmm", "Tensor.bmm"):
        n, c, t = ins[0]
        return n * c * t * ins[1][-1]
    if f == "F.interpolate":
        mode = layer["kwargs"].get("mode", "nearest")
        if len(ins[0]) == 4:
            return prod(layer["out"][0]) * {"nearest": 1, "bilinear": 4}.get(mode, 0)
    if f == "F.linear":
        return prod(ins[0]) * ins[1][0]
    return 0


# ---- ptflops, default 'pytorch' backend -----------------------------------

PT_ACT = (nn.ReLU, nn.PReLU, nn.ELU, nn.LeakyReLU, nn.ReLU6, nn.GELU)
PT_POOL = (nn.MaxPool1d, nn.AvgPool1d, nn.AvgPool2d, nn.MaxPool2d, nn.MaxPool3d,
           nn.AvgPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveAvgPool1d,
           nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool3d,
           nn.AdaptiveAvgPool3d)
PT_NORM = BN + INORM + (nn.GroupNorm, nn.LayerNorm)
# module type -> the ptflops-patched functional its forward calls (on input 0)
PT_MODULE_FUNCTIONAL = {
    nn.ReLU: "F.relu", nn.PReLU: "F.prelu", nn.ELU: "F.elu", nn.GELU: "F.gelu",
    nn.SiLU: "F.silu", nn.Softmax: "F.softmax",
    nn.MaxPool1d: "F.max_pool1d", nn.MaxPool2d: "F.max_pool2d", nn.MaxPool3d: "F.max_pool3d",
    nn.AvgPool1d: "F.avg_pool1d", nn.AvgPool2d: "F.avg_pool2d", nn.AvgPool3d: "F.avg_pool3d",
    nn.AdaptiveMaxPool1d: "F.adaptive_max_pool1d", nn.AdaptiveMaxPool2d: "F.adaptive_max_pool2d",
    nn.AdaptiveMaxPool3d: "F.adaptive_max_pool3d", nn.AdaptiveAvgPool1d: "F.adaptive_avg_pool1d",
    nn.AdaptiveAvgPool2d: "F.adaptive_avg_pool2d", nn.AdaptiveAvgPool3d: "F.adaptive_avg_pool3d",
    nn.Upsample: "F.interpolate",
}
PT_NUMEL_FUNCS = {"F.relu", "F.prelu", "F.elu", "F.relu6", "F.gelu", "F.silu", "F.softmax",
                  "F.avg_pool1d", "F.avg_pool2d", "F.avg_pool3d",
                  "F.max_pool1d", "F.max_pool2d", "F.max_pool3d",
                  "F.adaptive_avg_pool1d", "F.adaptive_avg_pool2d", "F.adaptive_avg_pool3d",
                  "F.adaptive_max_pool1d", "F.adaptive_max_pool2d", "F.adaptive_max_pool3d"}


def rnn_layer_ptflops(m, w_ih, w_hh):
    h = m.hidden_size
    f = w_ih.numel() + w_hh.numel()
    if isinstance(m, nn.RNN):
        f += h
    elif isinstance(m, nn.GRU):
        f += h + 3 * h + 3 * h
    else:                                      # LSTM
        f += 4 * h + 3 * h + 3 * h
    if m.bias:
        f += 2 * w_ih.shape[0]                 # b_ih + b_hh
    return f


def ptflops_module_rule(layer):
    """ptflops 0.7.5 module hook (MODULES_MAPPING, exact type match)."""
    m, x, y = layer["module"], layer["in"][0], layer["out"][0]
    t = type(m)
    if t in CONV or t in CONVT:
        f = conv_macs(m, x, y, transposed=t in CONVT)
        if m.bias is not None:
            f += x[0] * prod(y[1:])            # one add per output element
        return f
    if t in PT_ACT:
        return prod(y)
    if t in PT_POOL:
        return prod(x)
    if t in PT_NORM:
        return prod(x) * (2 if getattr(m, "affine", False) else 1)   # LayerNorm has no .affine
    if t is nn.Linear:
        return (x[-1] * y[-1] + (y[-1] if m.bias is not None else 0)) * prod(x[:-1])
    if t is nn.Upsample:
        return prod(y[1:])                     # hook takes output[0]: numel / N
    if t in RNNS:
        n, steps = x[0], x[1]                  # assumes batch-first layout
        f = sum(rnn_layer_ptflops(m, getattr(m, f"weight_ih_l{i}"), getattr(m, f"weight_hh_l{i}"))
                for i in range(m.num_layers))
        f *= n * steps
        return f * (2 if m.bidirectional else 1)
    if t is nn.MultiheadAttention:
        n, lq, lk, e, h = mha_dims(layer)
        f = lq * e + 3 * lq * e * e            # q scaling + q/k/v projections (kdim=vdim=E)
        if m.in_proj_bias is not None:
            f += 3 * lq * e
        f += h * (lq * lk * (e // h) * 2 + lq * lk)
        f += lq * e * (e + 1)
        return f * n
    return 0


def ptflops_interpolate(layer_in, size, scale):
    x = layer_in
    if size is not None:
        if isinstance(size, (list, tuple)):
            return prod(size) * prod(x[:2])
        return int(size) ** (len(x) - 2) * prod(x[:2])
    if isinstance(scale, (list, tuple)) and len(scale) == len(x) - 2:
        return prod(x) * prod(int(s) for s in scale)
    return prod(x) * scale ** (len(x) - 2)


def ptflops_functional_rule(layer):
    """Entries ptflops' patched F.* / torch.* wrappers add to the global total."""
    if layer["kind"] == "module":
        m, x = layer["module"], layer["in"][0]
        fn = PT_MODULE_FUNCTIONAL.get(type(m))
        out = []
        if fn == "F.interpolate":
            out.append((fn, ptflops_interpolate(x, m.size, m.scale_factor)))
        elif fn is not None:
            out.append((fn, prod(x)))
        if isinstance(m, nn.MultiheadAttention):
            n, lq, lk, e, h = mha_dims(layer)
            d = e // h
            out += [("torch.bmm", n * h * lq * d * lk),        # Q K^T
                    ("F.softmax", n * h * lq * lk),
                    ("torch.bmm", n * h * lq * lk * d)]        # A V
        return out
    f, ins, args, kw = layer["func"], layer["in"], layer["args"], layer["kwargs"]
    if f in PT_NUMEL_FUNCS:
        return [(f, prod(ins[0]))]
    if f == "F.interpolate":
        size = kw.get("size", args[1] if len(args) > 1 else None)
        scale = kw.get("scale_factor", args[2] if len(args) > 2 else None)
        return [(f, ptflops_interpolate(ins[0], size, scale))]
    if f in ("torch.matmul", "torch.mm", "torch.bmm"):
        return [(f, prod(ins[0]) * ins[1][-1])]
    if f in ("torch.add", "torch.mul"):
        a, b = args[0], args[1]
        if isinstance(a, dict) and isinstance(b, dict):
            sa, sb = a["shape"], b["shape"]
            nd = max(len(sa), len(sb))
            shape = [max(sa[i] if i < len(sa) else 1, sb[i] if i < len(sb) else 1)
                     for i in range(nd)]
            return [(f, prod(shape))]
        return [(f, prod(ins[0]))]
    # Tensor.add / Tensor.mul / Tensor.matmul here are the Python operators
    # (+, *, @) in every model of this script: ptflops does not see them.
    return []


def ptflops_rule(layer):
    mod = ptflops_module_rule(layer) if layer["kind"] == "module" else 0
    return mod + sum(v for _, v in ptflops_functional_rule(layer))


# ---- ptflops, 'aten' backend ----------------------------------------------

def ptflops_aten_rule(layer):
    """ptflops 0.7.5 aten backend: aten.mm/matmul/addmm(+bias)/bmm/convolution(+bias)."""
    if layer["kind"] == "function":
        f, ins = layer["func"], layer["in"]
        if f in ("torch.matmul", "Tensor.matmul", "torch.bmm", "Tensor.bmm",
                 "torch.mm", "Tensor.mm"):
            return prod(ins[0]) * ins[1][-1]
        return 0
    m, x, y = layer["module"], layer["in"][0], layer["out"][0]
    if isinstance(m, CONV + CONVT):
        f = conv_macs(m, x, y, transposed=isinstance(m, CONVT))
        if m.bias is not None:
            f += x[0] * prod(y[1:])
        return f
    if isinstance(m, nn.Linear):
        f = prod(x) * m.out_features
        if m.bias is not None:
            # aten.linear -> aten.addmm on the input folded to 2-D (contiguous
            # input), and ptflops' addmm rule adds one per output element
            f += prod(x[:-1]) * m.out_features
        return f
    if isinstance(m, nn.MultiheadAttention):
        n, lq, lk, e, h = mha_dims(layer)
        d = e // h
        # in_proj: addmm on (L*N, E) x (E, 3E) with bias; bmm QK^T (baddbmm-free
        # path) and AV; out_proj addmm with bias
        f = n * lq * e * 3 * e + n * lq * 3 * e
        f += n * h * lq * d * lk * 2
        f += n * lq * e * e + n * lq * e
        return f
    if isinstance(m, nn.LSTM):
        return 0                                # CPU: fused aten.mkldnn_rnn_layer, a zero-op
    if isinstance(m, (nn.GRU, nn.RNN)):
        # native CPU path: per layer, direction and time step one aten.addmm for
        # x W_ih^T + b_ih and one for h W_hh^T + b_hh
        n, steps = (x[0], x[1]) if m.batch_first else (x[1], x[0])
        f = 0
        for p in m.parameters():
            f += p.numel()                      # weight_* : in x gates, bias_* : gates
        return f * n * steps
    return 0


# ---- thop ------------------------------------------------------------------



def thop_rule(layer):
    """thop 0.1.1.post2209072238 register_hooks (exact type match); float64."""
    if layer["kind"] != "module":
        return 0
    m, x, y = layer["module"], layer["in"][0], layer["out"][0]
    t = type(m)
    if t in CONV or t in CONVT:
        return prod(y) * (x[1] // m.groups) * prod(m.weight.shape[2:])   # no bias
    if t in BN + INORM + (nn.LayerNorm,) or t is nn.SyncBatchNorm:
        f = 2 * prod(x)
        if getattr(m, "affine", False) or getattr(m, "elementwise_affine", False):
            f *= 2
        return f
    if t is nn.PReLU:
        return prod(x)
    if t is nn.Softmax:
        nf = x[m.dim]
        return (prod(x) // nf) * (3 * nf - 1)
    if t in (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d):
        return prod(y)
    if t in (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d):
        k = math.prod(a / b for a, b in zip(x[2:], y[2:]))
        return int((k + 1) * prod(y))
    if t is nn.Linear:
        return m.in_features * prod(y)                                   # no bias
    if t in (nn.Upsample, nn.UpsamplingBilinear2d, nn.UpsamplingNearest2d):
        mult = {"nearest": 1, "linear": 5, "bilinear": 11, "bicubic": 224 + 35}
        return prod(y) * mult.get(m.mode, 0)
    if t in RNNS:
        n, steps = (x[0], x[1]) if m.batch_first else (x[1], x[0])
        h, b = m.hidden_size, m.bias
        cell = {nn.RNN: thop_rnn_cell, nn.GRU: thop_gru_cell, nn.LSTM: thop_lstm_cell}[t]
        dirs = 2 if m.bidirectional else 1
        f = cell(m.input_size, h, b) * dirs
        for _ in range(m.num_layers - 1):
            f += cell(h * dirs, h, b) * dirs
        return f * steps * n
    return 0   # ReLU/ReLU6/LeakyReLU/MaxPools/Dropout: zero_ops; others: no rule


def thop_rnn_cell(i, h, bias):
    return h * (i + h) + h + (2 * h if bias else 0)


def thop_gru_cell(i, h, bias):
    state = (h + i) * h + h + (2 * h if bias else 0)
    return state * 2 + (h + i) * h + h + (2 * h if bias else 0) + h + 3 * h


def thop_lstm_cell(i, h, bias):
    state = (i + h) * h + h + (2 * h if bias else 0)
    return state * 4 + 3 * h + h


def thop_has_rule(m):
    return type(m) in sys.modules["thop.profile"].register_hooks


# --------------------------------------------------------------------------
# Tool runs
# --------------------------------------------------------------------------

def quiet():
    return contextlib.redirect_stdout(io.StringIO())


def module_names(model):
    names = {}
    for n, m in model.named_modules():
        names.setdefault(id(m), n)
    return names


def run_torchinfo(name):
    model, x, _ = build(name)
    names = module_names(model)
    with quiet():
        if x.dtype == torch.long:
            s = summary(model, input_data=x)
        else:
            s = summary(model, input_size=tuple(x.shape))
    layers = []
    for li in s.summary_list:
        layers.append({"name": names.get(li.layer_id, li.var_name), "class": li.class_name,
                       "depth": li.depth, "leaf": li.is_leaf_layer, "executed": li.executed,
                       "macs": int(li.macs), "num_params": int(li.num_params),
                       "output_size": li.output_size})
    return {"total_mult_adds": int(s.total_mult_adds), "total_params": int(s.total_params),
            "trainable_params": int(s.trainable_params), "layers": layers}


def run_fvcore(name):
    model, x, _ = build(name)
    records = []

    class H(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    h = H()
    lg = logging.getLogger("fvcore.nn.jit_analysis")
    lg.addHandler(h)
    try:
        fa = FlopCountAnalysis(model, (x,))
        total = fa.total()
        by_module = {k: as_int(v) for k, v in fa.by_module().items()}
        by_op = {k: as_int(v) for k, v in fa.by_operator().items()}
        unsupported = dict(fa.unsupported_ops())
        uncalled = sorted(fa.uncalled_modules())
    finally:
        lg.removeHandler(h)
    return {"total": as_int(total), "by_operator": by_op, "by_module": by_module,
            "unsupported_ops": unsupported, "uncalled_modules": uncalled,
            "warnings": records, "params": int(parameter_count(model)[""])}


def run_ptflops(name):
    model, x, res = build(name)
    names = module_names(model)
    harvest = {}
    func_log = []
    scope = []

    orig_stop = pt_engine.stop_flops_count

    def stop_and_harvest(self):
        harvest["batch_counter"] = int(self.__batch_counter__)
        harvest["modules"] = [
            {"name": names[id(m)], "type": type(m).__name__,
             "flops": as_int(m.__flops__), "params": int(m.__params__)}
            for m in self.modules() if hasattr(m, "__flops__")]
        return orig_stop(self)

    orig_call = pt_engine.torch_function_wrapper.__call__

    def logged_call(self, *args, **kwargs):
        n = len(self.collector)
        out = orig_call(self, *args, **kwargs)
        op = self.op.__name__ if hasattr(self.op, "__name__") else repr(self.op)
        func_log.append({"op": op, "flops": as_int(self.collector[n]),
                         "scope": scope[-1] if scope else ""})
        return out

    def pre(mod, inp):
        if id(mod) in names:
            scope.append(names[id(mod)])

    def post(mod, inp, out):
        if id(mod) in names:
            scope.pop()

    kwargs = {}
    if x.dtype == torch.long:
        kwargs["input_constructor"] = lambda r: x
    g1 = torch.nn.modules.module.register_module_forward_pre_hook(pre)
    g2 = torch.nn.modules.module.register_module_forward_hook(post)
    pt_engine.stop_flops_count = stop_and_harvest
    pt_engine.torch_function_wrapper.__call__ = logged_call
    try:
        with quiet():
            macs, params = get_model_complexity_info(
                model, res, as_strings=False, print_per_layer_stat=False, **kwargs)
    finally:
        pt_engine.stop_flops_count = orig_stop
        pt_engine.torch_function_wrapper.__call__ = orig_call
        g1.remove()
        g2.remove()
    assert macs is not None, f"ptflops failed on {name}"
    return {"total": int(macs), "params": int(params),
            "batch_counter": harvest["batch_counter"],
            "modules": harvest["modules"],
            "module_sum": sum(m["flops"] for m in harvest["modules"]),
            "functional_calls": func_log,
            "functional_sum": sum(f["flops"] for f in func_log)}


def run_ptflops_aten(name):
    model, x, res = build(name)
    seen = {}

    class Recording(pt_aten.FlopCounterMode):
        instances = []

        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            Recording.instances.append(self)

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            p = str(func._overloadpacket)
            seen[p] = seen.get(p, 0) + 1
            return super().__torch_dispatch__(func, types, args, kwargs)

    kwargs = {}
    if x.dtype == torch.long:
        kwargs["input_constructor"] = lambda r: x
    orig = pt_aten.FlopCounterMode
    pt_aten.FlopCounterMode = Recording
    try:
        with quiet():
            macs, params = get_model_complexity_info(
                model, res, as_strings=False, print_per_layer_stat=False,
                backend="aten", **kwargs)
    finally:
        pt_aten.FlopCounterMode = orig
    assert macs is not None, f"ptflops aten failed on {name}"
    counter = Recording.instances[-1]
    by_child = {k: {str(op): int(v) for op, v in ops.items()}
                for k, ops in counter.flop_counts.items()}
    counted = {str(k) for k in pt_aten.ATEN_OPS_MAPPING}
    return {"total": int(macs), "params": int(params), "by_child": by_child,
            "zero_ops": sorted(p for p in seen if p not in counted)}


def run_thop(name):
    model, x, _ = build(name)
    with quiet():
        ops, params, tree = thop_profile(model, inputs=(x,), ret_layer_info=True)

    def conv(t):
        return {k: {"ops": as_int(v[0]), "params": as_int(v[1]), "children": conv(v[2])}
                for k, v in t.items()}

    no_rule = sorted({type(m).__name__ for m in model.modules()
                      if not any(True for _ in m.children()) and not thop_has_rule(m)})
    return {"total_ops": as_int(ops), "total_params": as_int(params), "tree": conv(tree),
            "leaf_types_without_rule": no_rule}


# --------------------------------------------------------------------------
# Verification: formula == tool, per module and in total
# --------------------------------------------------------------------------

def subtree_sum(layers, rule, prefix):
    """Sum of rule over the layers executed inside module `prefix` (and below)."""
    tot = 0
    for L in layers:
        inside = prefix == "" or L["name"] == prefix or L["name"].startswith(prefix + ".") \
            or prefix in L["scope"]
        if inside:
            tot += rule(L)
    return tot


def verify_torchinfo(layers, got):
    preds = [L for L in layers if L["kind"] == "module" and not any(
        True for _ in L["module"].children())]
    leaf_rows = [r for r in got["layers"] if r["leaf"] and r["executed"]]
    assert len(preds) == len(leaf_rows), (len(preds), len(leaf_rows))
    # both are in call order (hooks fire at the end of each call; summary_list
    # at the start) -- match by name and occurrence
    by_name = defaultdict(list)
    for L in preds:
        by_name[L["name"]].append(L)
    seen = Counter()
    for r in leaf_rows:
        L = by_name[r["name"]][seen[r["name"]]]
        seen[r["name"]] += 1
        p = torchinfo_rule(L)
        assert p == r["macs"], (r["name"], p, r["macs"])
    total = sum(torchinfo_rule(L) for L in layers)
    assert total == got["total_mult_adds"], (total, got["total_mult_adds"])
    return total


def verify_fvcore(layers, got):
    for mod, v in got["by_module"].items():
        p = subtree_sum(layers, fvcore_rule, mod)
        assert p == v, ("fvcore", mod, p, v)
    total = sum(fvcore_rule(L) for L in layers)
    assert total == got["total"], (total, got["total"])
    return total


def verify_ptflops(layers, got):
    mods = [L for L in layers if L["kind"] == "module"]
    by_name = defaultdict(int)
    for L in mods:
        by_name[L["name"]] += ptflops_module_rule(L)
    for r in got["modules"]:
        assert by_name.get(r["name"], 0) == r["flops"], ("ptflops", r, by_name.get(r["name"]))
    pred_f = Counter()
    for L in layers:
        for op, v in ptflops_functional_rule(L):
            pred_f[op.split(".")[-1]] += v
    got_f = Counter()
    for c in got["functional_calls"]:
        got_f[c["op"]] += c["flops"]
    assert +pred_f == +got_f, ("ptflops functional", dict(pred_f), dict(got_f))
    total = sum(ptflops_rule(L) for L in layers)
    assert total == got["total"], (total, got["total"])
    return total


def verify_ptflops_aten(layers, got):
    for child, ops in got["by_child"].items():
        if child == "Global":
            continue
        p = subtree_sum(layers, ptflops_aten_rule, child)
        assert p == sum(ops.values()), ("ptflops aten", child, p, ops)
    total = sum(ptflops_aten_rule(L) for L in layers)
    assert total == got["total"], (total, got["total"])
    return total


def verify_thop(layers, got):
    def walk(tree, prefix):
        for k, v in tree.items():
            full = f"{prefix}.{k}" if prefix else k
            p = subtree_sum(layers, thop_rule, full)
            assert p == v["ops"], ("thop", full, p, v["ops"])
            walk(v["children"], full)
    walk(got["tree"], "")
    total = sum(thop_rule(L) for L in layers)
    assert total == got["total_ops"], (total, got["total_ops"])
    return total


# --------------------------------------------------------------------------

def compact_layers(layers):
    """Per-layer facts as recorded (for the JSON: kind, name, type, shapes)."""
    out = []
    for L in layers:
        d = {"kind": L["kind"], "name": L["name"],
             "type": L.get("type", L.get("func")), "in": L["in"], "out": L["out"]}
        out.append(d)
    return out


def analyse(name):
    print(f"[peer_reference] {name}", file=sys.stderr)
    model, layers = record_facts(name)
    flops, fc_by_op = flop_counter_total(name)
    res = {"flop_counter": {"flops": flops, "macs": flops // 2, "by_op": fc_by_op},
           "params": sum(p.numel() for p in model.parameters())}
    if any(isinstance(m, nn.LSTM) for m in model.modules()):
        # On CPU an nn.LSTM runs as fused aten.mkldnn_rnn_layer ops, which
        # FlopCounterMode (and ptflops' aten backend) count as 0.  With oneDNN
        # off it decomposes into aten.addmm / aten.mm and its gate MACs count.
        f2, by2 = flop_counter_total(name, mkldnn=False)
        res["flop_counter"].update({"flops_mkldnn_disabled": f2, "macs_mkldnn_disabled": f2 // 2,
                                    "by_op_mkldnn_disabled": by2})
    if name in MODEL_NOTES:
        res["note"] = MODEL_NOTES[name]

    ti = run_torchinfo(name)
    fv = run_fvcore(name)
    pt = run_ptflops(name)
    pa = run_ptflops_aten(name)
    th = run_thop(name)

    verified = {
        "torchinfo": verify_torchinfo(layers, ti),
        "fvcore": verify_fvcore(layers, fv),
        "ptflops": verify_ptflops(layers, pt),
        "ptflops_aten": verify_ptflops_aten(layers, pa),
        "thop": verify_thop(layers, th),
    }
    macs = flops // 2
    totals = {"flop_counter_macs": macs, "torchinfo": ti["total_mult_adds"],
              "fvcore": fv["total"], "ptflops": pt["total"],
              "ptflops_aten": pa["total"], "thop": th["total_ops"]}
    res["totals"] = totals
    res["percent_vs_flop_counter_macs"] = {
        k: (round(100.0 * (v - macs) / macs, 4) if macs else None)
        for k, v in totals.items() if k != "flop_counter_macs"}
    if "macs_mkldnn_disabled" in res["flop_counter"]:
        m2 = res["flop_counter"]["macs_mkldnn_disabled"]
        res["percent_vs_flop_counter_macs_mkldnn_disabled"] = {
            k: round(100.0 * (v - m2) / m2, 4) for k, v in totals.items()
            if k != "flop_counter_macs"}
    res["params_by_tool"] = {"torchinfo": ti["total_params"], "fvcore": fv["params"],
                             "ptflops": pt["params"], "ptflops_aten": pa["params"],
                             "thop": th["total_params"]}
    res["formula_verified"] = {k: v == totals[k] for k, v in verified.items()}
    fn_counts = Counter(L["func"] for L in layers if L["kind"] == "function")
    res["functional_calls_outside_modules"] = dict(sorted(fn_counts.items()))
    res["torchinfo"] = ti
    res["fvcore"] = fv
    res["ptflops"] = pt
    res["ptflops_aten"] = pa
    res["thop"] = th
    return res


def batch_convention():
    """Each tool on probe_cv at batch 1 and 2: per batch or per sample?"""
    out = {}
    logging.getLogger("fvcore.nn.jit_analysis").setLevel(logging.ERROR)
    for n in (1, 2):
        torch.manual_seed(0)
        model = ProbeCV().eval()
        x = torch.randn(n, 3, 32, 32)
        with quiet():
            ti = summary(model, input_data=x).total_mult_adds
        fv = FlopCountAnalysis(model, (x,)).total()
        with quiet():
            pt, _ = get_model_complexity_info(model, (3, 32, 32), as_strings=False,
                                              print_per_layer_stat=False,
                                              input_constructor=lambda r, x=x: x)
            pa, _ = get_model_complexity_info(model, (3, 32, 32), as_strings=False,
                                              print_per_layer_stat=False, backend="aten",
                                              input_constructor=lambda r, x=x: x)
            th, _ = thop_profile(model, inputs=(x,))
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(x)
        out[f"batch_{n}"] = {"flop_counter_macs": counter.get_total_flops() // 2,
                             "torchinfo": int(ti), "fvcore": as_int(fv), "ptflops": int(pt),
                             "ptflops_aten": int(pa), "thop": as_int(th)}
    return out


def ptflops_method_vs_operator():
    """ptflops patches torch.Tensor.add (the method), not the + operator."""
    class M(nn.Module):
        def forward(self, x):
            return x.add(x) + x

    with quiet():
        macs, _ = get_model_complexity_info(M(), (4, 5), as_strings=False,
                                            print_per_layer_stat=False)
    return {"forward": "x.add(x) + x on a 1x4x5 input", "ptflops_total": int(macs),
            "note": "20 = the x.add(x) method call only; the '+' operator is not counted"}


def main():
    torch.set_grad_enabled(True)        # the tools run as users run them
    warnings.filterwarnings("ignore")
    out = {
        "meta": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "torchinfo": metadata.version("torchinfo"),
            "fvcore": metadata.version("fvcore"),
            "ptflops": metadata.version("ptflops"),
            "thop": metadata.version("thop"),
            "date": datetime.date.today().isoformat(),
            "command": COMMAND,
            "tool_calls": TOOL_CALLS,
            "general": "batch 1, model.eval(), CPU, float32, random init (no "
                       "downloads); inputs 1x3x224x224 unless a model's note says "
                       "otherwise. Every tool's total and per-module figures are "
                       "asserted equal to the per-layer formulas in the script "
                       "(see peer_conventions.md).",
        },
        "models": {},
    }
    only = sys.argv[1:]             # optional: a subset of models (debugging)
    for name in MODELS:
        if not only or name in only:
            out["models"][name] = analyse(name)
    if only:
        json.dump(out, sys.stdout, indent=1, sort_keys=True)
        return
    out["batch_convention"] = batch_convention()
    out["ptflops_method_vs_operator"] = ptflops_method_vs_operator()

    mv2 = out["models"]["mobilenet_v2"]["totals"]
    assert mv2["flop_counter_macs"] == 300_774_272, mv2
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
