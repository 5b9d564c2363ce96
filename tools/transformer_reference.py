#!/usr/bin/env python3
"""Generate reference figures for transformer models from PyTorch / torchvision / transformers.

Stand-alone: imports only the standard library, torch, torchvision and
transformers.  It is NOT part of archcalc and is not run by the test suite; it
produces the JSON file that archcalc's tests assert against:

    /work/refvenv/bin/python tools/transformer_reference.py \
        > tests/reference/transformer_reference.json

No weights are downloaded: torchvision models use weights=None and Hugging
Face models are built from configs (random init).  The primary measurement of
every model runs on the ``meta`` device (shapes only, nothing allocated); the
small models are measured again on CPU as cross-checks and to record the
FlopCounterMode traps (see NOTES).  All shapes exclude the batch dimension
(batch size 1 everywhere).

Per model (independent of input size):
  params                 sum(p.numel() for p in model.parameters()); a tied
                         parameter is one tensor and is counted once
  weights / biases       params split by whether the parameter name ends with
                         "bias" (as tools/torch_reference.py does)
  params_counting_ties_twice
                         sum over named_parameters(remove_duplicate=False)
  tied_parameters        groups of parameter names that are one tensor
  buffers / buffer_list  sum(b.numel() for b in model.buffers()) and one
                         [name, shape, dtype, persistent] row per buffer
                         (persistent=False: not in state_dict)
  parameters             [name, shape] for every parameter (deduplicated)
  direct_parameters_of_non_leaf_modules
                         parameters owned by a module that has children
                         (class token, position embeddings, layer scale, ...)
  stochastic_depth       [module, p, mode] of every StochasticDepth (eval: identity)
  repr                   str(model) split into lines
  config                 Hugging Face config.to_dict() (HF models only)

Per run (one input size / sequence length):
  input                  shape without batch ([3,224,224] or [T]); dtype
  flops / macs           FlopCounterMode total; macs = flops // 2
  flops_by_op            FlopCounterMode's global per-aten-op breakdown
  flops_by_child         total per direct child of the root module
  flops_by_leaf          total per executed leaf module (see leaf_calls)
  flops_by_module        {module path: {op: flops}} for EVERY module that had
                         flops (FlopCounterMode's hierarchical view: a parent
                         includes its children; "" is the root)
  flops_outside_leaves   flops - sum(flops_by_leaf): matmuls that run inside a
                         non-leaf module's own forward (e.g. Q.K^T, A.V)
  leaf_calls             [module_path, class_name, output shape] for every call
                         of an "executed leaf" -- a module during whose call no
                         other module is entered -- in forward order.  For a
                         tuple output the first tensor's shape.  Includes
                         nn.MultiheadAttention / Swin ShiftedWindowAttention,
                         which have child modules they never call.
  modules_called_more_than_once / modules_never_called
  outputs                final output shape(s)
  hand_check             the attention-bearing figures recomputed from the
                         architecture by formula and asserted equal
  cross_checks           the same total measured other ways (asserted equal)
  traps                  what the known wrong measurement paths give (labelled)
  kv_cache               (decoders) formula and measured DynamicCache shapes
"""

import datetime
import json
import sys
import warnings
from contextlib import ExitStack

import torch
import torch.nn as nn
import torchvision
import transformers
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode
from transformers import (
    BertConfig,
    BertModel,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
)

COMMAND = ("/work/refvenv/bin/python tools/transformer_reference.py "
           "> tests/reference/transformer_reference.json")

tvm = torchvision.models
SITE = "site-packages/"

# Published parameter counts; the script fails if a model differs.
EXPECTED_PARAMS = {
    "vit_b_16": 86_567_656,
    "vit_b_32": 88_224_232,
    "swin_t": 28_288_354,
    "convnext_tiny": 28_589_128,
    "gpt2": 124_439_808,
    "bert_base": 109_482_240,
    "llama2_7b": 6_738_415_616,
}

# Buffer elements the notes describe (asserted, so the notes cannot go stale).
EXPECTED_BUFFERS = {
    "vit_b_16": 0, "vit_b_32": 0, "swin_t": 12 * 49 * 49, "convnext_tiny": 0, "gpt2": 0,
    "bert_base": 2 * 512, "llama_small_gqa": 2 * 16, "llama2_7b": 2 * 64,
}

LLAMA_SMALL = dict(
    vocab_size=1000,
    hidden_size=256,
    intermediate_size=688,
    num_hidden_layers=4,
    num_attention_heads=8,
    num_key_value_heads=2,
    max_position_embeddings=2048,
    tie_word_embeddings=False,
)

# Published Llama-2-7B (meta-llama/Llama-2-7b-hf config.json), float32 here.
LLAMA2_7B = dict(
    vocab_size=32000,
    hidden_size=4096,
    intermediate_size=11008,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
    max_position_embeddings=4096,
    rms_norm_eps=1e-5,
    hidden_act="silu",
    tie_word_embeddings=False,
    bos_token_id=1,
    eos_token_id=2,
)

VISION = {
    "vit_b_16": ("torchvision.models.vit_b_16(weights=None)",
                 lambda: tvm.vit_b_16(weights=None), "torchvision/models/vision_transformer.py"),
    "vit_b_32": ("torchvision.models.vit_b_32(weights=None)",
                 lambda: tvm.vit_b_32(weights=None), "torchvision/models/vision_transformer.py"),
    "swin_t": ("torchvision.models.swin_t(weights=None)",
               lambda: tvm.swin_t(weights=None), "torchvision/models/swin_transformer.py"),
    "convnext_tiny": ("torchvision.models.convnext_tiny(weights=None)",
                      lambda: tvm.convnext_tiny(weights=None), "torchvision/models/convnext.py"),
}

TEXT = {
    # name: (constructor text, config factory, model class, source, lengths,
    #        cpu cross-checks?)
    "gpt2": ("GPT2LMHeadModel(GPT2Config())", lambda **kw: GPT2Config(**kw), GPT2LMHeadModel,
             "transformers/models/gpt2/modeling_gpt2.py", [128, 1024], True),
    "bert_base": ("BertModel(BertConfig())  (add_pooling_layer=True)", lambda **kw: BertConfig(**kw),
                  BertModel, "transformers/models/bert/modeling_bert.py", [128, 512], True),
    "llama_small_gqa": ("LlamaForCausalLM(LlamaConfig(%s))" % ", ".join(
        "%s=%r" % kv for kv in LLAMA_SMALL.items()),
        lambda **kw: LlamaConfig(**LLAMA_SMALL, **kw), LlamaForCausalLM,
        "transformers/models/llama/modeling_llama.py", [128, 512], True),
    "llama2_7b": ("LlamaForCausalLM(LlamaConfig(%s))" % ", ".join(
        "%s=%r" % kv for kv in LLAMA2_7B.items()),
        lambda **kw: LlamaConfig(**LLAMA2_7B, **kw), LlamaForCausalLM,
        "transformers/models/llama/modeling_llama.py", [128, 2048], False),
}

# Representative blocks whose parameter count is recorded (params_of_blocks).
BLOCKS = {
    "VisionTransformer": ["encoder.layers.encoder_layer_0"],
    "SwinTransformer": ["features.0", "features.1.0", "features.2", "features.3.0", "features.4",
                        "features.5.0", "features.6", "features.7.0"],
    "ConvNeXt": ["features.0", "features.1.0", "features.2", "features.3.0", "features.4",
                 "features.5.0", "features.6", "features.7.0", "classifier"],
    "GPT2LMHeadModel": ["transformer.h.0", "transformer.h.0.attn", "transformer.h.0.mlp"],
    "BertModel": ["embeddings", "encoder.layer.0", "encoder.layer.0.attention", "pooler"],
    "LlamaForCausalLM": ["model.layers.0", "model.layers.0.self_attn", "model.layers.0.mlp"],
}

NOTES = {
    "general": (
        "Batch size 1, model.eval(), float32, random init (no weights downloaded). Shapes exclude the "
        "batch dimension. flops from torch.utils.flop_counter.FlopCounterMode (2 FLOPs per MAC; it "
        "counts only matmul-like aten ops: convolution, addmm, mm, bmm; norms, softmax, GELU/SiLU, "
        "residual adds, rotary, masks and embeddings lookups count 0); macs = flops // 2. The primary "
        "figures are measured on the meta device; every op used supports meta, so no CPU fallback was "
        "needed. vision: torch.set_grad_enabled(True) + sdpa_kernel(SDPBackend.MATH); text: "
        "attn_implementation='eager' under torch.no_grad()."),
    "trap_sdpa_cpu": (
        "On CPU, FlopCounterMode has no formula for the CPU flash kernel of "
        "F.scaled_dot_product_attention (aten._scaled_dot_product_flash_attention_for_cpu) and counts "
        "attention (Q.K^T and A.V) as 0. Avoided: HF models use attn_implementation='eager' (explicit "
        "torch.matmul, counted as aten.bmm) and torchvision runs inside "
        "sdpa_kernel(SDPBackend.MATH) (SDPA decomposes into aten.bmm). On the meta device SDPA always "
        "decomposes to the math form, so the default path is counted there too. Each affected run "
        "records the wrong CPU figure under traps, and cross_checks shows that sdpa+MATH and eager "
        "agree exactly. Causal masks are never discounted: the counted Q.K^T and A.V are full T x T."),
    "trap_mha_fastpath": (
        "torchvision ViT uses nn.MultiheadAttention. In eval mode with autograd disabled (no_grad / "
        "inference_mode) on CPU or CUDA it takes the fused fast path aten._native_multi_head_attention, "
        "which FlopCounterMode does not see into: the in_proj and out_proj addmm and the attention "
        "bmm all vanish (vit_b_16: 22,542,249,984 counted instead of 35,127,656,448). The SDPA math "
        "backend does not help while no_grad is on. Avoided: grad enabled (no no_grad), eval mode, "
        "MATH backend. The fast path is never taken on the meta device (its device check wants "
        "cpu/cuda), which is why meta figures are right in every mode. The wrong figures are under "
        "traps of each ViT run."),
    "trap_tied_weights": (
        "GPT-2's lm_head.weight IS transformer.wte.weight (one Parameter; _tied_weights_keys). "
        "model.parameters() yields it once: params counts it once. params_counting_ties_twice "
        "shows the figure you get by summing a state_dict or named_parameters(remove_duplicate=False). "
        "params_by_child counts per child, so the tied tensor appears under both transformer and "
        "lm_head there (their sum exceeds params by 38,597,376). "
        "FLOPs are unaffected: the lm_head matmul (aten.mm, 2*T*768*50257) runs and is counted. The "
        "Llama configs here have tie_word_embeddings=False (separate lm_head)."),
    "hand_check": (
        "Each run's hand_check recomputes the attention figures from the architecture and the script "
        "asserts they equal the measurement (per op, and per attention module for GPT-2/BERT/Llama/"
        "ViT), so the script fails if attention were lost."),
    "leaf_calls": (
        "An executed leaf is a module during whose forward no other module's forward is entered. "
        "This includes modules that own children they never call: nn.MultiheadAttention (its "
        "out_proj is used through F.multi_head_attention_forward), Swin's ShiftedWindowAttention "
        "(qkv/proj weights are passed to F.linear inside shifted_window_attention). Modules that "
        "exist but are never called are listed in modules_never_called (their parameters still "
        "count in params). nn.ModuleList containers (never called by design) are not listed. "
        "modules_called_more_than_once: only Swin's per-block StochasticDepth (one module used on "
        "both residual branches)."),
    "surprises": (
        "(1) GPT-2 has no buffers at all in transformers 5.24 (no attn.bias / masked_bias causal "
        "buffers). (2) Llama carries two identical non-persistent rotary buffers, inv_freq and "
        "original_inv_freq (head_dim/2 float32 each). (3) BERT's 1024 buffer elements are int64 "
        "position_ids and token_type_ids (non-persistent). (4) Swin-T's 28,812 buffer elements are "
        "12 persistent int64 relative_position_index tables (49*49 each); the shifted-window "
        "attention mask is rebuilt in every forward, not a buffer. (5) Swin-T stage 4 (7x7 map) "
        "configures shift_size [3,3] on features.7.1 but the forward sets it to 0 because the window "
        "covers the whole map: only 5 of the 6 odd blocks shift (10 aten.roll calls). (6) Swin's "
        "PatchMerging reduction has bias=False (counted as aten.mm, not addmm). (7) Every parameter "
        "count matched the published figure."),
    "buffers": (
        "buffer_list lists every buffer of model.named_buffers(), persistent or not. vit/convnext: "
        "none. swin_t: relative_position_index (int64, 49*49) per block. GPT-2 in this "
        "transformers version has NO buffers (older versions had a per-layer causal-mask buffer "
        "attn.bias; it is gone, the mask is built in forward by masking_utils.create_causal_mask). "
        "BERT: embeddings.position_ids and embeddings.token_type_ids (int64, (1,512), "
        "non-persistent). Llama: model.rotary_emb.inv_freq and model.rotary_emb.original_inv_freq "
        "(float32, head_dim/2 each, non-persistent)."),
    "kv_cache": (
        "kv_cache.elements_per_layer_formula = 2 * num_key_value_heads * head_dim * T (batch 1, "
        "computed from the config; a formula, not a measurement). measured_* are the shapes of "
        "cache.layers[0].keys / .values of the DynamicCache returned by a forward with "
        "use_cache=True (transformers 5 names it output.cache; output.past_key_values is a "
        "deprecated alias). Layout (batch, kv_heads, T, head_dim), stored after rotary for Llama."),
}


# ---------------------------------------------------------------- JSON output

def dumps(obj, level=0):
    """Deterministic JSON: dicts sorted and indented, short scalar lists on one line."""
    pad = "  " * (level + 1)
    end = "  " * level
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = sorted(obj.items(), key=lambda kv: str(kv[0]))
        body = ",\n".join("%s%s: %s" % (pad, json.dumps(str(k)), dumps(v, level + 1))
                          for k, v in items)
        return "{\n%s\n%s}" % (body, end)
    if isinstance(obj, (list, tuple)):
        if not obj:
            return "[]"
        flat = json.dumps(obj, separators=(", ", ": "))
        if "{" not in flat and len(flat) <= 110:
            return flat
        body = ",\n".join(pad + dumps(v, level + 1) for v in obj)
        return "[\n%s\n%s]" % (body, end)
    return json.dumps(obj)


# ---------------------------------------------------------------- static facts

def static_facts(model):
    params = weights = biases = 0
    param_rows = []
    for name, p in model.named_parameters():
        n = p.numel()
        params += n
        if name.endswith("bias"):
            biases += n
        else:
            weights += n
        param_rows.append([name, list(p.shape)])
    assert params == weights + biases == sum(p.numel() for p in model.parameters())

    groups = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        groups.setdefault(id(p), []).append(name)
    tied = [names for names in groups.values() if len(names) > 1]
    with_dups = sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False))

    modules = dict(model.named_modules())
    buffer_rows, buffers = [], 0
    for name, b in model.named_buffers():
        owner, _, short = name.rpartition(".")
        persistent = short not in modules[owner]._non_persistent_buffers_set
        buffer_rows.append([name, list(b.shape), str(b.dtype).replace("torch.", ""), persistent])
        buffers += b.numel()
    assert buffers == sum(b.numel() for b in model.buffers())

    direct = []
    for mname, m in model.named_modules():
        if any(True for _ in m.children()):
            for pname, p in m.named_parameters(recurse=False):
                direct.append(["%s.%s" % (mname, pname) if mname else pname,
                               type(m).__name__, list(p.shape)])

    sd = []
    for mname, m in model.named_modules():
        if type(m).__name__ == "StochasticDepth":
            sd.append([mname, round(float(m.p), 12), m.mode])

    by_child = {n: sum(p.numel() for p in c.parameters()) for n, c in model.named_children()}
    block_params = {b: sum(p.numel() for p in modules[b].parameters())
                    for b in BLOCKS.get(type(model).__name__, []) if b in modules}
    return {
        "params": params,
        "params_by_child": by_child,
        "params_of_blocks": block_params,
        "weights": weights,
        "biases": biases,
        "params_counting_ties_twice": with_dups,
        "tied_parameters": tied,
        "buffers": buffers,
        "buffers_persistent": sum(b.numel() for (_, b), r in zip(model.named_buffers(), buffer_rows)
                                  if r[3]),
        "buffer_list": buffer_rows,
        "parameters": param_rows,
        "direct_parameters_of_non_leaf_modules": direct,
        "stochastic_depth": sd,
        "repr": str(model).split("\n"),
    }


# ---------------------------------------------------------------- instrumented forward

def first_tensor(x):
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, (tuple, list)):
        for v in x:
            t = first_tensor(v)
            if t is not None:
                return t
    return None


class CallRecorder:
    """Forward pre/post hooks on every module: executed leaves in call order."""

    def __init__(self, model):
        self.model = model
        self.stack = []
        self.leaf_calls = []
        self.counts = {}
        self.handles = []
        for name, m in model.named_modules():
            self.handles.append(m.register_forward_pre_hook(self._pre(name)))
            self.handles.append(m.register_forward_hook(self._post(name)))

    def _pre(self, name):
        def hook(mod, args):
            if self.stack:
                self.stack[-1][1] = True
            self.stack.append([name, False])
            self.counts[name] = self.counts.get(name, 0) + 1
        return hook

    def _post(self, name):
        def hook(mod, args, out):
            top = self.stack.pop()
            assert top[0] == name, (top, name)
            if not top[1]:
                t = first_tensor(out)
                shape = list(t.shape[1:]) if t is not None else None
                self.leaf_calls.append([name, type(mod).__name__, shape])
        return hook

    def remove(self):
        for h in self.handles:
            h.remove()


def strip_root(key, root):
    if key == root:
        return ""
    if key.startswith(root + "."):
        return key[len(root) + 1:]
    raise AssertionError(key)


def count_flops(model, call, grad, math):
    """Run call() under FlopCounterMode; returns (total, by_op, by_module, result)."""
    counter = FlopCounterMode(display=False)
    with ExitStack() as st:
        st.enter_context(torch.set_grad_enabled(grad))
        if math:
            st.enter_context(sdpa_kernel(SDPBackend.MATH))
        st.enter_context(counter)
        result = call()
    total = int(counter.get_total_flops())
    counts = counter.get_flop_counts()
    by_op = {str(op): int(v) for op, v in counts.get("Global", {}).items()}
    assert sum(by_op.values()) == total
    root = type(model).__name__
    by_module = {}
    for key, ops in counts.items():
        if key == "Global":
            continue
        by_module[strip_root(key, root)] = {str(op): int(v) for op, v in ops.items()}
    return total, by_op, by_module, result


def instrumented(model, call, grad, math):
    rec = CallRecorder(model)
    try:
        total, by_op, by_module, result = count_flops(model, call, grad, math)
    finally:
        rec.remove()
    assert not rec.stack
    assert total % 2 == 0
    mod_total = {k: sum(v.values()) for k, v in by_module.items()}
    children = [n for n, _ in model.named_children()]
    leaves = []
    for name, _, _ in rec.leaf_calls:
        if name not in leaves:
            leaves.append(name)
    by_leaf = {n: mod_total.get(n, 0) for n in leaves}
    # every module with flops is a leaf or an ancestor of one, or owns matmuls itself
    called = set(rec.counts)
    mods = dict(model.named_modules())
    all_modules = list(mods)
    run = {
        "flops": total,
        "macs": total // 2,
        "flops_by_op": by_op,
        "flops_by_child": {c: mod_total.get(c, 0) for c in children if c in called},
        "flops_by_leaf": by_leaf,
        "flops_by_module": by_module,
        "flops_outside_leaves": total - sum(by_leaf.values()),
        "leaf_calls": rec.leaf_calls,
        "modules_called_more_than_once": {k: v for k, v in rec.counts.items() if v > 1},
        "modules_never_called": [n for n in all_modules if n not in called
                                 and not isinstance(mods[n], (nn.ModuleList, nn.ModuleDict))],
    }
    return run, result


# ---------------------------------------------------------------- vision

class OpCounter(TorchDispatchMode):
    """Counts calls of selected aten ops (used to verify Swin's window shifts)."""

    def __init__(self, names):
        super().__init__()
        self.names = names
        self.counts = {n: 0 for n in names}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in self.counts:
            self.counts[name] += 1
        return func(*args, **(kwargs or {}))


def vit_hand(p, layers=12, h=768, mlp=3072, classes=1000, size=224):
    n = (size // p) ** 2
    s = n + 1
    return {
        "aten.convolution": 2 * n * h * 3 * p * p,
        "aten.addmm": layers * 2 * s * (h * 3 * h + h * h + 2 * h * mlp) + 2 * h * classes,
        "aten.bmm": layers * 2 * (2 * s * s * h),
    }, {
        # per nn.MultiheadAttention call: in_proj + out_proj + Q.K^T + A.V
        "encoder.layers.encoder_layer_%d.self_attention" % i:
            2 * s * h * 3 * h + 2 * s * h * h + 2 * (2 * s * s * h) for i in range(layers)
    }


def swin_hand():
    total_attn = 0
    total = 2 * 56 * 56 * 96 * (3 * 4 * 4)  # patch embedding conv
    res, dim = 56, 96
    for stage, depth in enumerate([2, 2, 6, 2]):
        hw = res * res
        for _ in range(depth):
            attn = 2 * (2 * hw * 49 * dim)  # Q.K^T and A.V over 7x7 windows, all heads
            total_attn += attn
            total += 2 * hw * dim * 3 * dim + 2 * hw * dim * dim + attn + 2 * (2 * hw * dim * 4 * dim)
        if stage < 3:
            total += 2 * (hw // 4) * 4 * dim * 2 * dim  # PatchMerging reduction
            res, dim = res // 2, dim * 2
    total += 2 * 768 * 1000
    return total, total_attn


def convnext_hand():
    total = 2 * 56 * 56 * 96 * 3 * 16  # stem conv 4x4/4
    res = 56
    dims = [96, 192, 384, 768]
    for i, depth in enumerate([3, 3, 9, 3]):
        c, hw = dims[i], res * res
        total += depth * (2 * hw * c * 49 + 2 * (2 * hw * c * 4 * c))  # dwconv 7x7 + 2 linears
        if i < 3:
            total += 2 * (hw // 4) * dims[i + 1] * c * 4  # downsample conv 2x2/2
            res //= 2
    return total + 2 * 768 * 1000


def measure_vision(name):
    text, ctor, source = VISION[name]
    print("[transformer_reference] %s" % name, file=sys.stderr)
    torch.manual_seed(0)
    with torch.device("meta"):
        model = ctor().eval()
    rec = {"constructor": text, "source": SITE + source}
    rec.update(static_facts(model))
    assert rec["params"] == EXPECTED_PARAMS[name], (name, rec["params"])

    x = torch.zeros(1, 3, 224, 224, device="meta")
    ops = OpCounter(["roll"])
    with ops:
        run, out = instrumented(model, lambda: model(x), grad=True, math=True)
    run["input"] = [3, 224, 224]
    run["input_dtype"] = "float32"
    run["outputs"] = {"output": list(out.shape[1:])}
    run["setting"] = "meta device, eval, grad enabled, sdpa_kernel(SDPBackend.MATH)"

    hand = {}
    if name.startswith("vit"):
        p = int(name[-2:])
        want_ops, want_mods = vit_hand(p)
        assert run["flops_by_op"] == want_ops, (name, run["flops_by_op"], want_ops)
        for k, v in want_mods.items():
            assert sum(run["flops_by_module"][k].values()) == v, (k, run["flops_by_module"][k], v)
        hand = {
            "formula": "S = (224/p)^2 + 1 tokens, h = 768: convolution = 2*(S-1)*h*3*p*p; "
                       "addmm = 12*2*S*(h*3h + h*h + 2*h*3072) + 2*h*1000; "
                       "bmm = 12*2*(2*S*S*h) (Q.K^T and A.V); per self_attention call "
                       "2*S*h*3h + 2*S*h*h + 4*S*S*h",
            "expected_by_op": want_ops,
            "expected_per_self_attention": want_mods["encoder.layers.encoder_layer_0.self_attention"],
        }
    elif name == "swin_t":
        total, attn = swin_hand()
        bmm = run["flops_by_op"].get("aten.bmm", 0)
        assert run["flops"] == total, (run["flops"], total)
        assert bmm == attn, (bmm, attn)
        hand = {
            "formula": "patch conv 2*56*56*96*48; per block at HxW, C: qkv 2*HW*C*3C, proj 2*HW*C*C, "
                       "attention 2*(2*HW*49*C) (Q.K^T and A.V within 7x7 windows), mlp 2*2*HW*C*4C; "
                       "patch merging 2*(HW/4)*4C*2C; head 2*768*1000",
            "expected_total": total,
            "expected_attention_bmm": attn,
        }
        # torch.roll runs twice per block whose shift is in effect: stage 4 (7x7 map,
        # window 7) configures shift [3,3] on its odd block but the forward zeroes it.
        run["aten_roll_calls"] = ops.counts["roll"]
        assert ops.counts["roll"] == 2 * (1 + 1 + 3), ops.counts
        shifts = []
        for mname, m in model.named_modules():
            if type(m).__name__ == "ShiftedWindowAttention":
                stage_res = {1: 56, 3: 28, 5: 14, 7: 7}[int(mname.split(".")[1])]
                eff = [0 if w >= stage_res else s for w, s in zip(m.window_size, m.shift_size)]
                shifts.append([mname, list(m.shift_size), eff, list(m.window_size), m.num_heads])
        run["window_attention"] = {
            "columns": ["module", "configured shift_size", "effective shift in forward",
                        "window_size", "num_heads"],
            "rows": shifts,
        }
    elif name == "convnext_tiny":
        total = convnext_hand()
        assert run["flops"] == total, (run["flops"], total)
        hand = {
            "formula": "stem 2*56*56*96*48; per block at HxW, C: dwconv 2*HW*C*49, "
                       "pwconv 2*2*HW*C*4C; downsample 2*(HW/4)*C'*C*4; head 2*768*1000",
            "expected_total": total,
        }
    run["hand_check"] = hand

    # CPU: the correct path must give the same figure; the trap paths are recorded.
    torch.manual_seed(0)
    cpu = ctor().eval()
    xc = torch.zeros(1, 3, 224, 224)
    variants = {
        "cpu_grad_math": (True, True),
        "cpu_no_grad_default": (False, False),
        "cpu_grad_default": (True, False),
        "cpu_no_grad_math": (False, True),
    }
    if not name.startswith("vit"):
        variants = {"cpu_no_grad_default": (False, False)}
    cross, traps = {}, {}
    for label, (grad, math) in variants.items():
        total, by_op, _, _ = count_flops(cpu, lambda: cpu(xc), grad, math)
        if total == run["flops"]:
            cross[label] = total
        else:
            traps[label] = {"flops": total, "flops_by_op": by_op,
                            "missing_flops": run["flops"] - total}
    for label, (grad, math) in {"meta_no_grad_default": (False, False)}.items():
        total, _, _, _ = count_flops(model, lambda: model(x), grad, math)
        cross[label] = total
    assert all(v == run["flops"] for v in cross.values()), cross
    assert "cpu_grad_math" in cross or not name.startswith("vit")
    if name.startswith("vit"):
        assert set(traps) == {"cpu_no_grad_default", "cpu_grad_default", "cpu_no_grad_math"}, traps
        traps["cpu_no_grad_default"]["why"] = (
            "WRONG (trap): nn.MultiheadAttention fast path (aten._native_multi_head_attention) hides "
            "in_proj/out_proj addmm and the attention bmm")
        traps["cpu_no_grad_math"]["why"] = (
            "WRONG (trap): the MATH backend does not disable the MHA fast path; same as no_grad default")
        traps["cpu_grad_default"]["why"] = (
            "WRONG (trap): projections counted, but the CPU SDPA kernel has no flop formula, so "
            "Q.K^T and A.V (all aten.bmm) are missing")
    else:
        assert not traps, traps
    run["cross_checks"] = cross
    run["traps"] = traps
    rec["runs"] = {"224": run}
    return rec


# ---------------------------------------------------------------- text

def text_hand(name, cfg, T):
    """Expected per-op flops (and per attention-module flops) from the config."""
    if name == "gpt2":
        h, L, V = cfg.n_embd, cfg.n_layer, cfg.vocab_size
        inner = cfg.n_inner or 4 * h
        ops = {
            "aten.addmm": L * 2 * T * (h * 3 * h + h * h + h * inner + inner * h),
            "aten.bmm": L * 2 * (2 * T * T * h),
            "aten.mm": 2 * T * h * V,
        }
        mods = {"transformer.h.%d.attn" % i: 2 * T * h * 3 * h + 2 * T * h * h + 2 * 2 * T * T * h
                for i in range(L)}
        formula = ("h=768, L=12, V=50257: addmm (Conv1D) = L*2*T*(h*3h + h*h + h*4h + 4h*h); "
                   "bmm = L*2*(2*T*T*h) (Q.K^T and A.V, 12 heads x 64); mm (lm_head) = 2*T*h*V; "
                   "per attn module 2*T*h*3h + 2*T*h*h + 4*T*T*h")
    elif name == "bert_base":
        h, L, inter = cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size
        ops = {
            "aten.addmm": L * 2 * T * (4 * h * h + 2 * h * inter) + 2 * h * h,
            "aten.bmm": L * 2 * (2 * T * T * h),
        }
        mods = {"encoder.layer.%d.attention.self" % i: 2 * T * 3 * h * h + 2 * 2 * T * T * h
                for i in range(L)}
        formula = ("h=768, L=12, I=3072: addmm = L*2*T*(4*h*h + 2*h*I) + 2*h*h (pooler on token 0); "
                   "bmm = L*2*(2*T*T*h); per attention.self 2*T*3*h*h + 4*T*T*h")
    else:
        h, L, V, inter = cfg.hidden_size, cfg.num_hidden_layers, cfg.vocab_size, cfg.intermediate_size
        nh, kv, hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        proj = h * nh * hd + 2 * h * kv * hd + nh * hd * h
        ops = {
            "aten.mm": L * 2 * T * (proj + 3 * h * inter) + 2 * T * h * V,
            "aten.bmm": L * 2 * (2 * T * T * nh * hd),
        }
        mods = {"model.layers.%d.self_attn" % i: 2 * T * proj + 2 * 2 * T * T * nh * hd
                for i in range(L)}
        formula = ("mm = L*2*T*(h*nh*hd + 2*h*kv*hd + nh*hd*h + 3*h*I) + 2*T*h*V; "
                   "bmm = L*2*(2*T*T*nh*hd) (K/V repeated to all nh heads by repeat_kv, so GQA "
                   "saves nothing in the attention matmuls); per self_attn 2*T*(q,k,v,o) + 4*T*T*nh*hd")
    return ops, mods, formula


def capture_attention_inputs(model, name):
    """Pre-hooks (with kwargs) that record what the attention modules and embeddings get."""
    seen = {}
    handles = []
    attn_cls = {"gpt2": "GPT2Attention", "bert_base": "BertSelfAttention"}.get(name, "LlamaAttention")
    for mname, m in model.named_modules():
        if type(m).__name__ == attn_cls and "attn" not in seen:
            def hook(mod, args, kwargs, mname=mname):
                am = kwargs.get("attention_mask")
                seen.setdefault("attn", (mname, am))
            handles.append(m.register_forward_pre_hook(hook, with_kwargs=True))
        if mname.endswith("token_type_embeddings"):
            def hook2(mod, args):
                seen["token_type_ids"] = args[0]
            handles.append(m.register_forward_pre_hook(hook2))
        if mname.endswith("position_embeddings") or mname.endswith("wpe"):
            def hook3(mod, args):
                seen["position_ids"] = args[0]
            handles.append(m.register_forward_pre_hook(hook3))
    return seen, handles


def describe_mask(seen, T):
    mname, am = seen["attn"]
    if am is None:
        return {"module": mname, "attention_mask": None}
    d = {"module": mname, "shape": list(am.shape), "dtype": str(am.dtype).replace("torch.", "")}
    if am.device.type != "meta":
        m = am[0, 0]
        masked = m < torch.finfo(m.dtype).min / 2 if m.is_floating_point() else ~m
        upper = torch.ones(T, T, dtype=torch.bool).triu(1)
        d["masked_entries"] = int(masked.sum().item())
        d["is_strictly_causal"] = bool(torch.equal(masked, upper))
        d["fill_value"] = float(m.min().item()) if m.is_floating_point() else None
    return d


def build_text(name, device, impl):
    _, cfg_fn, cls, _, _, _ = TEXT[name]
    torch.manual_seed(0)
    with torch.device(device):
        model = cls(cfg_fn(attn_implementation=impl))
    model.eval()
    assert model.config._attn_implementation == impl
    return model


def measure_text(name):
    text, cfg_fn, cls, source, lengths, cpu_checks = TEXT[name]
    print("[transformer_reference] %s" % name, file=sys.stderr)
    model = build_text(name, "meta", "eager")
    cfg = model.config
    rec = {"constructor": text, "source": SITE + source, "attn_implementation": "eager",
           "config": cfg.to_dict()}
    rec.update(static_facts(model))
    assert rec["params"] == EXPECTED_PARAMS.get(name, rec["params"]), (name, rec["params"])
    if name == "gpt2":
        assert rec["tied_parameters"] == [["transformer.wte.weight", "lm_head.weight"]], rec["tied_parameters"]
        assert model.lm_head.weight is model.transformer.wte.weight
    else:
        assert rec["tied_parameters"] == [], rec["tied_parameters"]
    vocab = cfg.vocab_size
    sdpa_meta = build_text(name, "meta", "sdpa")
    cpu = {}
    if cpu_checks:
        cpu = {"eager": build_text(name, "cpu", "eager"), "sdpa": build_text(name, "cpu", "sdpa")}

    runs = {}
    for T in lengths:
        print("[transformer_reference] %s T=%d" % (name, T), file=sys.stderr)
        ids = torch.zeros(1, T, dtype=torch.long, device="meta")
        seen, handles = capture_attention_inputs(model, name)
        try:
            run, out = instrumented(model, lambda ids=ids: model(input_ids=ids), grad=False, math=False)
        finally:
            for hnd in handles:
                hnd.remove()
        run["input"] = [T]
        run["input_dtype"] = "int64"
        run["setting"] = "meta device, eval, torch.no_grad(), attn_implementation='eager', model(input_ids)"
        outs = {}
        for k, v in out.items():
            if isinstance(v, torch.Tensor):
                outs[k] = list(v.shape[1:])
            elif v is not None:
                outs[k] = type(v).__name__
        run["outputs"] = outs
        run["attention_mask_passed_to_attention"] = describe_mask(seen, T)

        want_ops, want_mods, formula = text_hand(name, cfg, T)
        assert run["flops_by_op"] == want_ops, (name, T, run["flops_by_op"], want_ops)
        for k, v in want_mods.items():
            assert sum(run["flops_by_module"][k].values()) == v, (k, run["flops_by_module"][k], v)
        run["hand_check"] = {"formula": formula, "expected_by_op": want_ops,
                             "expected_per_attention_module": next(iter(want_mods.values()))}

        cross, traps = {}, {}
        total, _, _, _ = count_flops(sdpa_meta, lambda ids=ids: sdpa_meta(input_ids=ids), False, True)
        cross["meta_sdpa_math"] = total
        total, _, _, _ = count_flops(sdpa_meta, lambda ids=ids: sdpa_meta(input_ids=ids), False, False)
        cross["meta_sdpa_default"] = total
        if cpu:
            g = torch.Generator().manual_seed(T)
            cids = torch.randint(1, vocab, (1, T), generator=g)
            seen_c, handles = capture_attention_inputs(cpu["eager"], name)
            try:
                total, _, _, _ = count_flops(cpu["eager"], lambda cids=cids: cpu["eager"](input_ids=cids),
                                                 False, False)
            finally:
                for hnd in handles:
                    hnd.remove()
            cross["cpu_eager"] = total
            run["attention_mask_passed_to_attention_cpu"] = describe_mask(seen_c, T)
            if "token_type_ids" in seen_c:
                tt = seen_c["token_type_ids"]
                run["default_token_type_ids"] = {
                    "shape": list(tt.shape), "dtype": str(tt.dtype).replace("torch.", ""),
                    "all_zero": bool((tt == 0).all().item()),
                    "source": "embeddings.token_type_ids buffer (zeros) gathered at position_ids, "
                              "expanded to (batch, T)"}
            if "position_ids" in seen_c:
                pi = seen_c["position_ids"]
                run["default_position_ids"] = {
                    "shape": list(pi.shape),
                    "equals_arange_T": bool((pi[0] == torch.arange(T)).all().item())}
            total, _, _, _ = count_flops(cpu["sdpa"], lambda cids=cids: cpu["sdpa"](input_ids=cids), False, True)
            cross["cpu_sdpa_math"] = total
            total, by_op, _, _ = count_flops(cpu["sdpa"], lambda cids=cids: cpu["sdpa"](input_ids=cids),
                                             False, False)
            traps["cpu_sdpa_default"] = {
                "flops": total, "flops_by_op": by_op, "missing_flops": run["flops"] - total,
                "why": "WRONG (trap): attn_implementation='sdpa' on CPU dispatches to the CPU flash "
                       "kernel, which FlopCounterMode counts as 0: every Q.K^T and A.V is missing"}
            assert by_op.get("aten.bmm", 0) == 0 and run["flops"] - total == want_ops["aten.bmm"]
        assert all(v == run["flops"] for v in cross.values()), cross
        run["cross_checks"] = cross
        run["traps"] = traps

        if name != "bert_base":
            hd = cfg.head_dim if name != "gpt2" else cfg.n_embd // cfg.n_head
            kvh = cfg.num_key_value_heads if name != "gpt2" else cfg.n_head
            L = cfg.num_hidden_layers
            with torch.no_grad():
                out_kv = model(input_ids=ids, use_cache=True)
            cache = out_kv.cache
            k0, v0 = cache.layers[0].keys, cache.layers[0].values
            per_layer = 2 * kvh * hd * T
            assert list(k0.shape) == [1, kvh, T, hd] == list(v0.shape), (k0.shape, v0.shape)
            assert len(cache.layers) == L
            run["kv_cache"] = {
                "elements_per_layer_formula": per_layer,
                "elements_all_layers_formula": per_layer * L,
                "formula": "2 * kv_heads(%d) * head_dim(%d) * T(%d) per layer, %d layers, batch 1"
                           % (kvh, hd, T, L),
                "measured_layer0_keys_shape": list(k0.shape),
                "measured_layer0_values_shape": list(v0.shape),
                "measured_num_layers": len(cache.layers),
                "measured_elements_per_layer": k0.numel() + v0.numel(),
                "cache_class": type(cache).__name__,
                "layer_class": type(cache.layers[0]).__name__,
                "note": "shapes include the batch dimension (batch, kv_heads, T, head_dim)",
            }
        runs[str(T)] = run
    rec["runs"] = runs
    return rec


# ---------------------------------------------------------------- main

def main():
    warnings.filterwarnings("ignore")
    transformers.logging.set_verbosity_error()
    out = {
        "meta": {
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "transformers": transformers.__version__,
            "python": sys.version.split()[0],
            "date": datetime.date.today().isoformat(),
            "command": COMMAND,
        },
        "notes": NOTES,
        "models": {},
    }
    for name in VISION:
        out["models"][name] = measure_vision(name)
    for name in TEXT:
        out["models"][name] = measure_text(name)

    m = out["models"]
    for name, want in EXPECTED_PARAMS.items():
        if m[name]["params"] != want:
            raise SystemExit("%s: %d parameters, expected %d" % (name, m[name]["params"], want))
    for name, want in EXPECTED_BUFFERS.items():
        assert m[name]["buffers"] == want, (name, m[name]["buffers"], want)
    for name, rec in m.items():
        for run in rec["runs"].values():
            more = run["modules_called_more_than_once"]
            assert all(k.endswith("stochastic_depth") and v == 2 for k, v in more.items()), more
            assert bool(more) == (name == "swin_t")
    # Known figure: ViT-B/16 at 224 is 17.56 GMACs when attention is counted.
    assert m["vit_b_16"]["runs"]["224"]["macs"] == 17_563_828_224

    sys.stdout.write(dumps(out))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
