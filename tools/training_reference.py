#!/usr/bin/env python3
"""Reference FLOP figures for one *training step* (forward + backward), per layer.

Stand-alone: imports only the standard library, torch, torchvision and
transformers.  It is NOT part of archcalc and is not run by the test suite; it
writes the JSON file that archcalc's training-cost tests assert against:

    /work/refvenv/bin/python tools/training_reference.py > tests/reference/training_reference.json

For every case it runs, inside ONE torch.utils.flop_counter.FlopCounterMode
context, a forward pass (model.train(), grad enabled) followed by
``loss.backward()`` with ``loss = output.sum()``, and records:

  fcm.forward / fcm.backward / fcm.train
        FlopCounterMode's total after the forward pass, the part added by the
        backward pass, and the total at the end (= forward + backward).
  fcm.by_op             the same split per aten op ("Global" row)
  fcm.modules           every module FlopCounterMode has a row for, with the
                        forward and backward totals it attributes to it (its
                        ModuleTracker) and the module's "self" share (its total
                        minus its direct children's totals).  Modules absent
                        here were attributed 0.
  layers                archcalc-style rows computed HERE from each layer's own
                        rule and the shapes seen by forward hooks: forward,
                        grad_input (activation gradients), grad_weight, backward
                        = grad_input + grad_weight, the FlopCounterMode figures
                        attributed to that module, and the differences.
  correct               totals with FlopCounterMode's grouped-convolution
                        weight-gradient over-count removed (see below).
  conv_backward_calls   every aten.convolution_backward call: groups,
                        output_mask, FlopCounterMode's grad-input and grad-weight
                        parts and the corrected grad-weight part.
  trace                 (small cases only) every counted aten call in order.

The grouped-convolution bug: conv_backward_flop() in torch/utils/flop_counter.py
computes the weight gradient as conv_flop_count(t(x_shape), t(grad_out_shape),
t(grad_weight_shape)), whose "batch" factor is x_shape[1] = C_in (all input
channels) where only C_in/groups input channels meet each filter.  It is
therefore `groups` times too large.  `correct` divides that part by groups
(checked two ways: a second FlopCounterMode run with a corrected
convolution_backward formula passed as custom_mapping, and the per-layer rules
below, which must agree exactly).

Devices: every case runs on the ``meta`` device (shape-only; FlopCounterMode's
formulas only read shapes) and again on CPU, and the script asserts that both
give identical per-op and per-module counts, except for the cases marked
``"device": "cpu"``, which exist to show a CPU kernel path (oneDNN LSTM, CPU
flash SDPA) and run on CPU only.  Recurrent cases disable oneDNN (mkldnn) so
the LSTM runs as its native decomposition into addmm/mm, as
tools/torch_reference.py does for the forward figures.

Output is deterministic (no date, sorted keys); only random init differs
between runs, and no figure depends on values.
"""

import json
import math
import sys
import warnings
from collections import defaultdict
from math import prod

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
import transformers
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils import flop_counter as fc
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.models.gpt2.modeling_gpt2 import GPT2Attention
from transformers.pytorch_utils import Conv1D

COMMAND = ("/work/refvenv/bin/python tools/training_reference.py "
           "> tests/reference/training_reference.json")

aten = torch.ops.aten
warnings.filterwarnings("ignore", category=UserWarning)
transformers.logging.set_verbosity_error()


# --------------------------------------------------------------------------
# Small modules used by the hand-checkable cases
# --------------------------------------------------------------------------

class MatMul(nn.Module):
    """torch.matmul of two activations (no parameters)."""

    def forward(self, a, b):
        return torch.matmul(a, b)


class CausalSelfAttention(nn.Module):
    """GPT-2-style attention written out: c_attn -> heads -> q@k^T -> causal
    mask -> softmax -> @v -> c_proj (nn.Linear, eager matmuls, no SDPA)."""

    def __init__(self, n_embd, n_head, n_ctx):
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.register_buffer(
            "mask", torch.tril(torch.ones(n_ctx, n_ctx, dtype=torch.bool)),
            persistent=False)

    def forward(self, x):
        b, t, e = x.shape
        q, k, v = self.c_attn(x).split(e, dim=2)
        q, k, v = (z.view(b, t, self.n_head, e // self.n_head).transpose(1, 2)
                   for z in (q, k, v))
        att = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(e // self.n_head)
        att = att.masked_fill(~self.mask[:t, :t], float("-inf"))
        att = F.softmax(att, dim=-1)
        y = torch.matmul(att, v)
        y = y.transpose(1, 2).contiguous().view(b, t, e)
        return self.c_proj(y)


class SelfMHA(nn.Module):
    """nn.MultiheadAttention used as self-attention: mha(x, x, x)[0]."""

    def __init__(self, embed_dim, num_heads, need_weights):
        super().__init__()
        self.mha = nn.MultiheadAttention(embed_dim, num_heads)
        self.need_weights = need_weights

    def forward(self, x):
        return self.mha(x, x, x, need_weights=self.need_weights)[0]


class LSTMLM(nn.Module):
    """Embedding(10000, 650) -> LSTM(650, 650, 2 layers) -> Linear(650, 10000)."""

    def __init__(self, vocab=10000, dim=650, layers=2):
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim)
        self.lstm = nn.LSTM(dim, dim, num_layers=layers)
        self.decoder = nn.Linear(dim, vocab)

    def forward(self, tokens):  # tokens: (T, B)
        out, _ = self.lstm(self.embedding(tokens))
        return self.decoder(out)


# --------------------------------------------------------------------------
# Per-layer rules (independent of FlopCounterMode)
# --------------------------------------------------------------------------

def rg(t):
    return isinstance(t, torch.Tensor) and t.requires_grad


def conv_row(m, x, y):
    w = m.weight
    if m.transposed:
        # weight [C_in, C_out/g, *K]; every input position meets C_out/g * prod(K)
        # weights: 2 * N * prod(I) * C_in * (C_out/g) * prod(K)
        fwd = 2 * x.shape[0] * prod(x.shape[2:]) * prod(w.shape)
    else:
        # weight [C_out, C_in/g, *K]: 2 * N * prod(O) * C_out * (C_in/g) * prod(K)
        fwd = 2 * y.shape[0] * prod(y.shape[2:]) * prod(w.shape)
    return {
        "kind": "ConvTranspose%dd" % (x.dim() - 2) if m.transposed else "Conv%dd" % (x.dim() - 2),
        "groups": m.groups,
        "input": list(x.shape), "output": list(y.shape), "weight": list(w.shape),
        "input_requires_grad": rg(x), "weight_requires_grad": w.requires_grad,
        "bias": m.bias is not None,
        "forward": fwd,
        "terms": {"grad_input": fwd if rg(x) else 0,
                  "grad_weight": fwd if w.requires_grad else 0},
    }


def linear_row(m, x, y, n_in, n_out, kind):
    rows = x.numel() // n_in
    fwd = 2 * rows * n_in * n_out
    return {
        "kind": kind, "input": list(x.shape), "output": list(y.shape),
        "input_requires_grad": rg(x), "weight_requires_grad": m.weight.requires_grad,
        "bias": m.bias is not None,
        "forward": fwd,
        "terms": {"grad_input": fwd if rg(x) else 0,
                  "grad_weight": fwd if m.weight.requires_grad else 0},
    }


def lstm_row(m, x, y):
    assert not m.bidirectional and m.proj_size == 0 and m.bias
    t, b = (x.shape[1], x.shape[0]) if m.batch_first else (x.shape[0], x.shape[1])
    h = m.hidden_size
    fwd = gi = gh = gw = 0
    for layer in range(m.num_layers):
        i = m.input_size if layer == 0 else h
        w_rg = getattr(m, "weight_ih_l%d" % layer).requires_grad
        # forward: per step x_t @ W_ih^T (4H x I) and h_{t-1} @ W_hh^T (4H x H),
        # including t=0 where h_0 = 0 (the product is still computed)
        fwd += 2 * t * b * 4 * h * (i + h)
        # weight gradients: outer products over all T steps for W_ih and W_hh
        gw += 2 * t * b * 4 * h * (i + h) if w_rg else 0
        # gradient w.r.t. the layer input x_t (all T steps), needed unless this
        # is layer 0 and the LSTM input does not require grad
        gi += 2 * t * b * 4 * h * i if (layer > 0 or rg(x)) else 0
        # gradient w.r.t. h_{t-1}: steps 1..T-1 only; h_0 is an internal zero
        # tensor that does not require grad
        gh += 2 * (t - 1) * b * 4 * h * h
    return {
        "kind": "LSTM", "input": list(x.shape), "output": list(y.shape),
        "num_layers": m.num_layers, "hidden_size": h,
        "input_requires_grad": rg(x), "weight_requires_grad": m.weight_ih_l0.requires_grad,
        "bias": True,
        "forward": fwd,
        "terms": {"grad_input": gi, "grad_hidden": gh, "grad_weight": gw},
    }


def attention_core(b, h, tq, tk, d, q_rg=True, kv_rg=True):
    """q@k^T and attn@v, each 2*b*h*tq*tk*d; each operand that requires grad
    costs one more product of the same size in backward."""
    one = 2 * b * h * tq * tk * d
    fwd = 2 * one
    # scores = q @ k^T : grad_q (needs q) and grad_k (needs k)
    # out = attn @ v   : grad_attn (attn requires grad if q or k does) and grad_v
    g = (one if q_rg else 0) + (one if kv_rg else 0) \
        + (one if (q_rg or kv_rg) else 0) + (one if kv_rg else 0)
    return fwd, g


def mha_row(m, x, y):
    assert m._qkv_same_embed_dim and not m.batch_first
    t, b, e = x.shape
    hd = e // m.num_heads
    proj_in = 2 * t * b * e * 3 * e
    proj_out = 2 * t * b * e * e
    core_f, core_g = attention_core(b, m.num_heads, t, t, hd)
    return {
        "kind": "MultiheadAttention", "input": list(x.shape), "output": list(y.shape),
        "num_heads": m.num_heads, "input_requires_grad": rg(x),
        "weight_requires_grad": m.in_proj_weight.requires_grad, "bias": True,
        "forward": proj_in + core_f + proj_out,
        "forward_terms": {"in_proj": proj_in, "attention": core_f, "out_proj": proj_out},
        "terms": {"grad_input": (proj_in if rg(x) else 0) + core_g + proj_out,
                  "grad_weight": proj_in + proj_out},
        "terms_detail": {"in_proj_grad_input": proj_in if rg(x) else 0,
                         "attention_grad": core_g, "out_proj_grad_input": proj_out,
                         "in_proj_grad_weight": proj_in, "out_proj_grad_weight": proj_out},
    }


def attention_self_row(kind, x, n_head):
    b, t, e = x.shape
    core_f, core_g = attention_core(b, n_head, t, t, e // n_head)
    return {
        "kind": kind, "input": list(x.shape), "num_heads": n_head,
        "note": "only the module's own matmuls (q@k^T, attn@v); its c_attn / "
                "c_proj are separate rows",
        "forward": core_f,
        "terms": {"grad_input": core_g, "grad_weight": 0},
    }


def matmul_row(a, b, y):
    one = 2 * prod(y.shape) * a.shape[-1]
    return {
        "kind": "matmul", "input": [list(a.shape), list(b.shape)], "output": list(y.shape),
        "input_requires_grad": [rg(a), rg(b)],
        "forward": one,
        "terms": {"grad_input": (one if rg(a) else 0) + (one if rg(b) else 0),
                  "grad_weight": 0},
    }


def row_for(m, a, k, o):
    """The per-layer row of module m called with args a / kwargs k, output o;
    None for modules without a rule (they do no counted work of their own)."""
    if isinstance(m, nn.modules.conv._ConvNd):
        return conv_row(m, a[0], o)
    if isinstance(m, nn.Linear) and not isinstance(
            m, nn.modules.linear.NonDynamicallyQuantizableLinear):
        return linear_row(m, a[0], o, m.in_features, m.out_features, "Linear")
    if isinstance(m, Conv1D):
        return linear_row(m, a[0], o, m.nx, m.nf, "Conv1D (transformers)")
    if isinstance(m, nn.LSTM):
        return lstm_row(m, a[0], o[0])
    if isinstance(m, nn.MultiheadAttention):
        return mha_row(m, a[0], o[0])
    if isinstance(m, CausalSelfAttention):
        return attention_self_row("CausalSelfAttention (self)", a[0], m.n_head)
    if isinstance(m, GPT2Attention):
        return attention_self_row(
            "GPT2Attention eager (self)", a[0] if a else k["hidden_states"], m.num_heads)
    if isinstance(m, MatMul):
        return matmul_row(a[0], a[1], o)
    return None


def layer_rows(model):
    """Register forward hooks that compute a row per compute layer.

    (MultiheadAttention's out_proj is never called as a module, so it has no
    row; its product is part of the MultiheadAttention row.)"""
    rows, hooks = [], []

    def hook_for(name):
        def hook(mod, args, kwargs, out):
            r = row_for(mod, args, kwargs, out)
            if r is not None:
                r["name"] = name or "(root)"
                rows.append(r)
        return hook

    for name, m in model.named_modules():
        hooks.append(m.register_forward_hook(hook_for(name), with_kwargs=True))
    return rows, hooks


# --------------------------------------------------------------------------
# FlopCounterMode runs
# --------------------------------------------------------------------------

_raw = {op: f.__wrapped__ for op, f in fc.flop_registry.items()
        if op in (aten.mm, aten.addmm, aten.bmm, aten.baddbmm,
                  aten.convolution, aten.convolution_backward)}


def shp(s):
    return None if s is None else [int(v) for v in s]


def instrumented_mapping(log, state, fixed):
    """custom_mapping that logs every counted call; with fixed=True the
    convolution_backward weight-gradient part is divided by groups."""

    def where():
        parents = [p for p in state["counter"].mod_tracker.parents if p != "Global"]
        return max(parents, key=lambda p: (p.count("."), p)) if parents else "Global"

    def mm_like(op):
        def f(*args, out_shape=None, **kw):
            v = _raw[op](*args, out_shape=out_shape, **kw)
            ab = args[1:3] if op in (aten.addmm, aten.baddbmm) else args[0:2]
            log.append({"phase": state["phase"], "op": str(op), "module": where(),
                        "a": shp(ab[0]), "b": shp(ab[1]), "flops": v})
            return v
        return f

    def conv(x, w, bias, stride, padding, dilation, transposed, output_padding,
             groups, *args, out_shape=None, **kw):
        v = _raw[aten.convolution](x, w, bias, stride, padding, dilation, transposed,
                                    output_padding, groups, *args, out_shape=out_shape, **kw)
        log.append({"phase": state["phase"], "op": "aten.convolution", "module": where(),
                    "x": shp(x), "w": shp(w), "out": shp(out_shape), "groups": groups,
                    "transposed": transposed, "flops": v})
        return v

    def conv_bw(grad_out, x, w, bias, stride, padding, dilation, transposed,
                output_padding, groups, output_mask, out_shape=None, **kw):
        v = _raw[aten.convolution_backward](
            grad_out, x, w, bias, stride, padding, dilation, transposed,
            output_padding, groups, output_mask, out_shape=out_shape, **kw)
        gi = fc.conv_flop_count(grad_out, w, out_shape[0], not transposed) if output_mask[0] else 0
        gw = v - gi
        assert gw % groups == 0
        log.append({"phase": state["phase"], "op": "aten.convolution_backward",
                    "module": where(), "grad_out": shp(grad_out), "x": shp(x), "w": shp(w),
                    "groups": groups, "transposed": transposed,
                    "output_mask": [bool(b) for b in output_mask],
                    "fcm_grad_input": gi, "fcm_grad_weight": gw,
                    "correct_grad_weight": gw // groups, "flops": v,
                    "flops_fixed": gi + gw // groups})
        return gi + gw // groups if fixed else v

    return {aten.mm: mm_like(aten.mm), aten.addmm: mm_like(aten.addmm),
            aten.bmm: mm_like(aten.bmm), aten.baddbmm: mm_like(aten.baddbmm),
            aten.convolution: conv, aten.convolution_backward: conv_bw}


def counts(counter):
    return {k: {str(op): int(v) for op, v in ops.items()}
            for k, ops in counter.get_flop_counts().items()}


def one_run(build, dev, custom_mapping=None, state=None, hooks=False):
    torch.manual_seed(0)
    model, make_inputs, take = build()
    model = model.to(dev).train()
    inputs = make_inputs(dev)
    rows, hs = layer_rows(model) if hooks else ([], [])
    counter = FlopCounterMode(display=False, custom_mapping=custom_mapping)
    if state is not None:
        state["counter"], state["phase"] = counter, "forward"
    with counter:
        out = take(model(*inputs))
        fwd = counts(counter)
        if state is not None:
            state["phase"] = "backward"
        out.sum().backward()
    for h in hs:
        h.remove()
    return model, fwd, counts(counter), rows, list(out.shape)


def strip_root(key, root):
    if key == root:
        return "(root)"
    assert key.startswith(root + "."), key
    return key[len(root) + 1:]


def split(fwd, tot):
    """(forward, backward) per key per op from the two snapshots."""
    keys = set(fwd) | set(tot)
    out = {}
    for k in keys:
        f, t = fwd.get(k, {}), tot.get(k, {})
        out[k] = ({op: f.get(op, 0) for op in set(f) | set(t) if f.get(op, 0)},
                  {op: t.get(op, 0) - f.get(op, 0) for op in set(f) | set(t)
                   if t.get(op, 0) - f.get(op, 0)})
    return out


def measure(name, build, device="meta", mkldnn=True, trace=False, desc="", check=True):
    print("[training_reference] %s" % name, file=sys.stderr)
    ctx = torch.backends.mkldnn.flags(enabled=mkldnn)
    with ctx:
        model, fwd, tot, rows, out_shape = one_run(build, device, hooks=True)
        if device == "meta":
            _, fwd_c, tot_c, _, _ = one_run(build, "cpu")
            assert (fwd_c, tot_c) == (fwd, tot), (name, fwd_c, fwd, tot_c, tot)
        log_plain, log_fixed, st = [], [], {}
        _, fwd_p, tot_p, _, _ = one_run(
            build, device, instrumented_mapping(log_plain, st, False), st)
        assert (fwd_p, tot_p) == (fwd, tot), name
        _, _, tot_fixed, _, _ = one_run(
            build, device, instrumented_mapping(log_fixed, st, True), st)

    root = type(model).__name__
    parts = split(fwd, tot)
    g_f, g_b = parts.get("Global", ({}, {}))
    total_f, total_b = sum(g_f.values()), sum(g_b.values())
    fixed_train = sum(tot_fixed.get("Global", {}).values())

    # per-module attribution as FlopCounterMode gives it
    mods = {strip_root(k, root): v for k, v in parts.items() if k != "Global"}
    named = {(n or "(root)"): m for n, m in model.named_modules()}

    def nearest_counted_ancestor(n):
        while n != "(root)":
            n = n.rsplit(".", 1)[0] if "." in n else "(root)"
            if n in mods:
                return n
        return None

    # "self" = total minus the totals of the nearest counted descendants (a
    # ModuleList / ModuleDict is never called, so it has no row of its own)
    kids = defaultdict(list)
    for n in mods:
        if n != "(root)":
            kids[nearest_counted_ancestor(n)].append(n)
    modules = {}
    for n, (f, b) in sorted(mods.items()):
        sf = sum(f.values()) - sum(sum(mods[c][0].values()) for c in kids[n])
        sb = sum(b.values()) - sum(sum(mods[c][1].values()) for c in kids[n])
        modules[n] = {"leaf": not list(named[n].children()), "forward": sum(f.values()),
                      "backward": sum(b.values()), "forward_by_op": f, "backward_by_op": b,
                      "self_forward": sf, "self_backward": sb}
    for e in log_plain:
        if e["module"] != "Global":
            e["module"] = strip_root(e["module"], root)

    # per-layer rows vs FlopCounterMode's attribution
    layers = []
    for r in rows:
        r["grad_input"] = sum(v for k, v in r["terms"].items() if k != "grad_weight")
        r["grad_weight"] = r["terms"]["grad_weight"]
        r["backward"] = r["grad_input"] + r["grad_weight"]
        r["train"] = r["forward"] + r["backward"]
        m = modules.get(r["name"], {"self_forward": 0, "self_backward": 0})
        r["fcm_forward"], r["fcm_backward"] = m["self_forward"], m["self_backward"]
        r["fcm_minus_correct_forward"] = r["fcm_forward"] - r["forward"]
        r["fcm_minus_correct_backward"] = r["fcm_backward"] - r["backward"]
        # what FlopCounterMode's formulas give for this layer (grouped conv:
        # groups * grad_weight), to tell formula errors from attribution errors
        r["fcm_formula_backward"] = r["backward"] + (r.get("groups", 1) - 1) * r["grad_weight"]
        r["fcm_attribution_ok"] = (r["fcm_forward"] == r["forward"]
                                   and r["fcm_backward"] == r["fcm_formula_backward"])
        layers.append(r)
    lf = sum(r["forward"] for r in layers)
    lb = sum(r["backward"] for r in layers)
    if check:
        assert lf == total_f, (name, lf, total_f)
        assert lf + lb == fixed_train, (name, lf + lb, fixed_train)

    conv_calls = [e for e in log_plain if e["op"] == "aten.convolution_backward"]
    overcount = sum(e["fcm_grad_weight"] - e["correct_grad_weight"] for e in conv_calls)
    assert total_f + total_b - overcount == fixed_train, name

    rec = {
        "description": desc,
        "device": device,
        "cpu_crosscheck": ("meta and CPU runs give identical per-op and per-module counts"
                           if device == "meta" else "CPU only"),
        "mkldnn_enabled": mkldnn,
        "output": out_shape,
        "fcm": {
            "forward": total_f, "backward": total_b, "train": total_f + total_b,
            "train_over_forward": round((total_f + total_b) / total_f, 6) if total_f else None,
            "by_op": {"forward": g_f, "backward": g_b},
            "modules": modules,
            "modules_note": "(root) is the model itself; modules absent were attributed 0; "
                            "self_* = the module's total minus the totals of its nearest "
                            "descendants that have a row",
        },
        "correct": {
            "forward": lf, "backward": lb, "train": lf + lb,
            "train_over_forward": round((lf + lb) / lf, 6) if lf else None,
            "grad_input": sum(r["grad_input"] for r in layers),
            "grad_weight": sum(r["grad_weight"] for r in layers),
            "fcm_overcount": overcount,
            "fcm_minus_correct_train": total_f + total_b - (lf + lb),
            "fixed_fcm_train": fixed_train,
        },
        "layers": layers,
        "layers_attribution": {
            "forward_matches": all(r["fcm_minus_correct_forward"] == 0 for r in layers),
            "backward_matches_fcm_formula": all(
                r["fcm_backward"] == r["fcm_formula_backward"] for r in layers),
            "sum_layers_fcm_backward": sum(r["fcm_backward"] for r in layers),
            "sum_layers_fcm_formula_backward": sum(r["fcm_formula_backward"] for r in layers),
            "layers_misattributed": [r["name"] for r in layers if not r["fcm_attribution_ok"]],
        },
        "conv_backward_calls": conv_calls,
    }
    if trace:
        rec["trace"] = log_plain
    if device == "cpu":
        rec["aten_ops_run"] = ops_seen(build, mkldnn)
    return rec


class _OpLog(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.add(str(func._overloadpacket))
        return func(*args, **(kwargs or {}))


def ops_seen(build, mkldnn):
    """Top-level aten ops of forward + backward on CPU, and which of them have
    a FlopCounterMode formula."""
    torch.manual_seed(0)
    model, make_inputs, take = build()
    model.train()
    with torch.backends.mkldnn.flags(enabled=mkldnn), _OpLog() as log:
        take(model(*make_inputs("cpu"))).sum().backward()
    names = {str(k) for k in fc.flop_registry}
    return {"all": sorted(log.ops), "with_formula": sorted(log.ops & names)}


# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------

def single(module, shapes, rgs, take=lambda y: y, dtype=torch.float32, prep=None):
    def build():
        m = module()
        if prep:
            prep(m)

        def make(dev):
            return tuple(torch.zeros(s, device=dev, dtype=dtype).requires_grad_(g)
                         if dtype.is_floating_point else torch.zeros(s, device=dev, dtype=dtype)
                         for s, g in zip(shapes, rgs))
        return m, make, take
    return build


def frozen_weight(m):
    m.weight.requires_grad_(False)


def frozen_middle(m):
    m[2].weight.requires_grad_(False)


def first(y):
    return y[0]


def logits(y):
    return y.logits


SMALL = [
    ("conv2d_3_8_k3p1_in3x8x8_input_nograd",
     single(lambda: nn.Conv2d(3, 8, 3, padding=1), [(1, 3, 8, 8)], [False]),
     "Conv2d(3, 8, 3, padding=1) on 1x3x8x8, input.requires_grad=False (a first layer)"),
    ("conv2d_3_8_k3p1_in3x8x8_input_grad",
     single(lambda: nn.Conv2d(3, 8, 3, padding=1), [(1, 3, 8, 8)], [True]),
     "Conv2d(3, 8, 3, padding=1) on 1x3x8x8, input.requires_grad=True"),
    ("conv2d_8_8_k3_g1_in8x8x8_input_grad",
     single(lambda: nn.Conv2d(8, 8, 3), [(1, 8, 8, 8)], [True]),
     "dense baseline for the grouped cases: Conv2d(8, 8, 3) on 1x8x8x8"),
    ("conv2d_8_8_k3_g8_depthwise_in8x8x8_input_nograd",
     single(lambda: nn.Conv2d(8, 8, 3, groups=8), [(1, 8, 8, 8)], [False]),
     "depthwise Conv2d(8, 8, 3, groups=8) on 1x8x8x8, input.requires_grad=False"),
    ("conv2d_8_8_k3_g8_depthwise_in8x8x8_input_grad",
     single(lambda: nn.Conv2d(8, 8, 3, groups=8), [(1, 8, 8, 8)], [True]),
     "depthwise Conv2d(8, 8, 3, groups=8) on 1x8x8x8, input.requires_grad=True"),
    ("conv2d_8_8_k3_g2_in8x8x8_input_nograd",
     single(lambda: nn.Conv2d(8, 8, 3, groups=2), [(1, 8, 8, 8)], [False]),
     "Conv2d(8, 8, 3, groups=2) on 1x8x8x8, input.requires_grad=False"),
    ("conv2d_8_8_k3_g2_in8x8x8_input_grad",
     single(lambda: nn.Conv2d(8, 8, 3, groups=2), [(1, 8, 8, 8)], [True]),
     "Conv2d(8, 8, 3, groups=2) on 1x8x8x8, input.requires_grad=True"),
    ("convtranspose2d_8_8_k3_g2_in8x8x8_input_grad",
     single(lambda: nn.ConvTranspose2d(8, 8, 3, groups=2), [(1, 8, 8, 8)], [True]),
     "ConvTranspose2d(8, 8, 3, groups=2) on 1x8x8x8 (the transposed branch, "
     "flop_counter.py line 362, has the same over-count)"),
    ("conv2d_3_8_k3p1_frozen_weight_input_grad",
     single(lambda: nn.Conv2d(3, 8, 3, padding=1), [(1, 3, 8, 8)], [True], prep=frozen_weight),
     "Conv2d(3, 8, 3, padding=1), weight.requires_grad_(False) (bias still trainable), "
     "input.requires_grad=True: output_mask = [True, False, True]"),
    ("conv_chain_frozen_middle_input_nograd",
     single(lambda: nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(8, 8, 3, padding=1)),
            [(1, 3, 8, 8)], [False], prep=frozen_middle),
     "Sequential(Conv2d(3,8,3,p=1), ReLU, Conv2d(8,8,3,p=1) with frozen weight, ReLU, "
     "Conv2d(8,8,3,p=1)) on 1x3x8x8, input.requires_grad=False: first conv "
     "[False, True, True], frozen conv [True, False, True], last conv [True, True, True]"),
    ("linear_16_4_bias_input_grad",
     single(lambda: nn.Linear(16, 4), [(1, 16)], [True]),
     "Linear(16, 4) on 1x16, input.requires_grad=True"),
    ("linear_16_4_nobias_input_grad",
     single(lambda: nn.Linear(16, 4, bias=False), [(1, 16)], [True]),
     "Linear(16, 4, bias=False) on 1x16, input.requires_grad=True"),
    ("linear_16_4_bias_input_nograd",
     single(lambda: nn.Linear(16, 4), [(1, 16)], [False]),
     "Linear(16, 4) on 1x16, input.requires_grad=False (a first layer)"),
    ("linear_16_4_bias_frozen_weight_input_grad",
     single(lambda: nn.Linear(16, 4), [(1, 16)], [True], prep=frozen_weight),
     "Linear(16, 4) with weight.requires_grad_(False) (bias trainable), "
     "input.requires_grad=True: only the grad-input mm runs"),
    ("matmul_1x6x8_1x8x5_both_grad",
     single(MatMul, [(1, 6, 8), (1, 8, 5)], [True, True]),
     "torch.matmul(a, b), a 1x6x8 and b 1x8x5 both requiring grad (3-D -> aten.bmm)"),
    ("matmul_1x6x8_1x8x5_a_grad_only",
     single(MatMul, [(1, 6, 8), (1, 8, 5)], [True, False]),
     "torch.matmul(a, b), only a requires grad"),
    ("lstm_8_16_T5_input_nograd",
     single(lambda: nn.LSTM(8, 16), [(5, 1, 8)], [False], take=first),
     "LSTM(8, 16) over T=5, batch 1, input.requires_grad=False, oneDNN disabled "
     "(native decomposition into addmm/mm)"),
    ("lstm_8_16_T5_input_grad",
     single(lambda: nn.LSTM(8, 16), [(5, 1, 8)], [True], take=first),
     "LSTM(8, 16) over T=5, batch 1, input.requires_grad=True, oneDNN disabled"),
    ("mha_E16_h2_T5_need_weights",
     single(lambda: SelfMHA(16, 2, True), [(5, 1, 16)], [True]),
     "nn.MultiheadAttention(16, 2), self-attention on x of shape (T=5, B=1, E=16), "
     "x.requires_grad=True, train mode, need_weights=True (default): the explicit "
     "bmm path of F.multi_head_attention_forward (no fast path, no SDPA)"),
    ("gpt2_style_attention_E128_h4_T64",
     single(lambda: CausalSelfAttention(128, 4, 64), [(1, 64, 128)], [True]),
     "GPT-2-style causal self-attention written out with nn.Linear c_attn/c_proj and "
     "eager torch.matmul (4-D -> aten.bmm), E=128, 4 heads, T=64, x.requires_grad=True"),
]

# Kernel-path variants that only exist on CPU (FlopCounterMode sees a fused op)
PATHS = [
    ("lstm_8_16_T5_input_nograd_mkldnn_default_cpu",
     single(lambda: nn.LSTM(8, 16), [(5, 1, 8)], [False], take=first),
     "as lstm_8_16_T5_input_nograd but with oneDNN enabled (CPU default): fused "
     "aten.mkldnn_rnn_layer / mkldnn_rnn_layer_backward, no flop formula -> 0", True),
    ("mha_E16_h2_T5_no_weights_default_cpu",
     single(lambda: SelfMHA(16, 2, False), [(5, 1, 16)], [True]),
     "nn.MultiheadAttention(16, 2) with need_weights=False on CPU, default SDPA backend: "
     "aten._scaled_dot_product_flash_attention_for_cpu (+ _backward) has no formula "
     "-> attention counted 0; only the projections are counted", True),
]


def tv(name, size):
    def build():
        m = getattr(torchvision.models, name)(weights=None)

        def make(dev):
            return (torch.zeros(1, 3, size, size, device=dev),)
        return m, make, lambda y: y
    return build


def lstm_lm():
    def build():
        m = LSTMLM()

        def make(dev):
            return (torch.zeros(35, 1, dtype=torch.long, device=dev),)
        return m, make, lambda y: y
    return build


GPT2_CFG = dict(n_layer=2, n_embd=128, n_head=4, vocab_size=1000, n_positions=128)


def gpt2():
    def build():
        m = GPT2LMHeadModel(GPT2Config(**GPT2_CFG, attn_implementation="eager"))
        assert m.config._attn_implementation == "eager"

        def make(dev):
            return (torch.zeros(1, 64, dtype=torch.long, device=dev),)
        return m, make, logits
    return build


ZOO = [
    ("resnet18", tv("resnet18", 224), "torchvision resnet18(weights=None), 1x3x224x224", True),
    ("mobilenet_v2", tv("mobilenet_v2", 224),
     "torchvision mobilenet_v2(weights=None), 1x3x224x224 (17 depthwise 3x3 convs)", True),
    ("vgg11_64", tv("vgg11", 64), "torchvision vgg11(weights=None), 1x3x64x64", True),
    ("lstm_lm", lstm_lm(),
     "Embedding(10000, 650) -> LSTM(650, 650, num_layers=2) -> Linear(650, 10000), "
     "tokens (T=35, B=1), oneDNN disabled", False),
    ("gpt2_small", gpt2(),
     "GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=128, n_head=4, vocab_size=1000, "
     "n_positions=128, attn_implementation='eager')), input_ids 1x64 (T=64), "
     "loss = logits.sum(); lm_head tied to wte", True),
]


def gpt2_estimate(rec):
    cfg = GPT2Config(**GPT2_CFG)
    m = GPT2LMHeadModel(cfg)
    L, E, V, T = cfg.n_layer, cfg.n_embd, cfg.vocab_size, 64
    n_total = sum(p.numel() for p in m.parameters())
    n_emb = m.transformer.wte.weight.numel() + m.transformer.wpe.weight.numel()
    n_nonemb = n_total - n_emb
    n_matmul = 12 * L * E * E
    attn = 4 * L * T * T * E  # forward q@k^T + attn@v, full T^2 (mask not exploited)
    head = 2 * T * E * V
    est = {
        "N_total": n_total,
        "N_embedding": n_emb,
        "N_nonembedding": n_nonemb,
        "N_nonembedding_definition": "all parameters except transformer.wte.weight "
                                      "(V*E, tied with lm_head) and transformer.wpe.weight "
                                      "(n_positions*E); includes LayerNorms and biases",
        "N_matmul_weights_12LE2": n_matmul,
        "T": T,
        "6NT_nonembedding": 6 * n_nonemb * T,
        "6NT_total": 6 * n_total * T,
        "6NT_matmul_weights": 6 * n_matmul * T,
        "decomposition_of_measured_train": {
            "6T*12LE^2 (block matmuls)": 6 * n_matmul * T,
            "6T*E*V (lm_head, tied weight)": 3 * head,
            "3*4*L*T^2*E (attention q@k^T, attn@v)": 3 * attn,
            "sum": 6 * n_matmul * T + 3 * head + 3 * attn,
        },
        "measured_train": rec["fcm"]["train"],
        "measured_over_6NT_nonembedding": round(rec["fcm"]["train"] / (6 * n_nonemb * T), 6),
        "note": "6NT with N = non-embedding parameters misses the lm_head product "
                "(V*E weights, counted as embedding because tied to wte) and the T^2 "
                "attention terms, and counts 6T per LayerNorm/bias parameter that "
                "does no matmul. The measured figure is exactly 3x forward.",
    }
    assert est["decomposition_of_measured_train"]["sum"] == rec["fcm"]["train"]
    assert 3 * rec["fcm"]["forward"] == rec["fcm"]["train"]
    return est


def sdpa_fused_formula_note():
    """What the registered fused-SDPA formulas would count for the GPT-2-style
    case's attention (b=1, h=4, T=64, d=32), versus the eager/math autograd."""
    q = (1, 4, 64, 32)
    fwd = fc.sdpa_flop_count(q, q, q)
    bwd = fc.sdpa_backward_flop_count(q, q, q, q)
    return {
        "shapes_bhTd": list(q),
        "sdpa_flop_count_forward": fwd,
        "sdpa_backward_flop_count": bwd,
        "eager_backward_bmm": 2 * fwd,
        "note": "sdpa_backward_flop_count (flop_counter.py lines 593-627) counts 5 "
                "products: it includes recomputing q@k^T (Step 1), so a fused "
                "flash/efficient/cudnn SDPA backward counts 2.5x its forward, "
                "while the eager/math path's autograd runs 4 bmm (2x forward). "
                "Not measured here: those kernels are CUDA-only; on CPU the fused "
                "kernel is _scaled_dot_product_flash_attention_for_cpu, counted 0.",
    }


def sdpa_cpu_cases():
    """F.scaled_dot_product_attention on CPU: default backend vs math backend."""
    out = {}
    q_shape = (1, 4, 64, 32)
    for label, backend in (("default", None), ("math", SDPBackend.MATH)):
        for dev in ("cpu", "meta"):
            q = torch.zeros(q_shape, device=dev, requires_grad=True)
            k = torch.zeros(q_shape, device=dev, requires_grad=True)
            v = torch.zeros(q_shape, device=dev, requires_grad=True)
            c = FlopCounterMode(display=False)
            ctx = sdpa_kernel(backend) if backend else torch.enable_grad()
            with ctx, c:
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
                f = c.get_total_flops()
                y.sum().backward()
            out["%s_%s" % (label, dev)] = {
                "forward": f, "train": c.get_total_flops(),
                "by_op": {str(o): int(n) for o, n in c.get_flop_counts()["Global"].items()}}
    return {"q_k_v_shape": list(q_shape), "is_causal": True,
            "note": "on CPU the default backend runs the fused "
                    "_scaled_dot_product_flash_attention_for_cpu, which FlopCounterMode "
                    "counts as 0 (forward and backward); the math backend (and the meta "
                    "device, which has no fused kernel) decompose into bmm",
            "results": out}


def main():
    torch.set_num_threads(2)
    cases = {}
    for name, build, desc in SMALL:
        mk = not name.startswith("lstm")
        cases[name] = measure(name, build, "meta", mkldnn=mk, trace=True, desc=desc)
    for name, build, desc, mk in PATHS:
        cases[name] = measure(name, build, "cpu", mkldnn=mk, trace=True, desc=desc,
                              check=False)
    for name, build, desc, mk in ZOO:
        cases[name] = measure(name, build, "meta", mkldnn=mk, desc=desc)

    out = {
        "meta": {
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "transformers": transformers.__version__,
            "python": sys.version.split()[0],
            "command": COMMAND,
            "flop_counter_file": "torch/utils/flop_counter.py of the torch above",
        },
        "conventions": {
            "batch": 1, "mode": "model.train(), grad enabled, float32",
            "loss": "output.sum() (the sum and its backward, an expand, count 0)",
            "one_step": "forward and loss.backward() inside one FlopCounterMode; "
                        "fcm.forward is read after the forward, fcm.backward = "
                        "end total - fcm.forward",
            "flops": "FlopCounterMode convention: 2 FLOPs per multiply-accumulate of "
                     "conv / linear / matmul / bmm; bias adds, bias gradients, "
                     "norms, activations, pooling, softmax, embedding count 0",
            "layer_rule": "per product: forward F; grad_input = F if the product's "
                          "activation operand requires grad; grad_weight = F if the "
                          "weight requires grad (grouped conv: F as well, NOT groups*F)",
        },
        "cases": cases,
        "gpt2_6NT": gpt2_estimate(cases["gpt2_small"]),
        "sdpa_cpu": sdpa_cpu_cases(),
        "sdpa_fused_formula": sdpa_fused_formula_note(),
    }
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
