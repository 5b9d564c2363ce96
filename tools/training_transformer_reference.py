#!/usr/bin/env python3
"""One training step of the transformer layer types, measured: FLOPs and what the backward keeps.

    PYTHONPATH=. /work/refvenv/bin/python tools/training_transformer_reference.py \
        > tests/reference/training_transformer_reference.json

Three sets of cases, each run at batch 1 (and the spec cases at batch 2 for the saved tensors),
`model.train()`, float32, on CPU, loss = the sum of every output:

- `cases`: small specs, one layer type each (attention in every layout, causal, grouped-query,
  cross, rotary, Swin's shifted windows; the MLP plain, with dropout, ReLU, gated, Conv1D; the
  norms; position, token-type, class-token and token layers; rotary; patch merging; layer scale;
  stochastic depth; channel shuffle), with the layer's input requiring grad (a `position-bias`
  in front, trained, no products) or not, and frozen;
- `zoo`: the built-in transformer specs at small sizes (`params`);
- `library`: the library models the zoo specs stand for (torchvision's VisionTransformer,
  SwinTransformer and ConvNeXt; Hugging Face's GPT-2, BERT and LLaMA with
  `attn_implementation="eager"`) at the same sizes: their FlopCounterMode training step, to
  show the spec's model and the library's count the same.

FLOPs: the spec is built with archcalc's builder (eager attention: explicit matmuls) and run
inside one FlopCounterMode, forward then `loss.backward()`; the library models run under
`sdpa_kernel(SDPBackend.MATH)` (on CPU the fused SDPA kernel counts 0: training_notes.md §2.5).
Saved tensors: `torch.autograd.graph.saved_tensors_hooks` on the spec's modules run node by node
(the method of tools/saved_tensors_reference.py: per node, the bytes of the storages it is the
first to save, `new_bytes`, and every storage once, `unique_bytes`). The output is deterministic.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
import torchvision
import transformers
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import archcalc
from archcalc.pytorch.build import build, build_modules, probe_input

sys.path.insert(0, str(Path(__file__).parent))
from saved_tensors_reference import Recorder, _entry, _storage, _unique, node_records, saved_kind  # noqa: E402

SEQ = "input 6x16 as sequence\n"
GRAD = "position-bias\n"  # trained, no products: what follows gets an input that requires grad
MAP = "input 16x4x4\npermute(0, 2, 3, 1)\n"  # a channels-last map H×W×C for Swin's windows and patch merging

CASES: dict[str, str] = {
    # attention
    "attention_first": SEQ + "attention(heads=4)\n",
    "attention_separate": SEQ + GRAD + "attention(heads=4)\n",
    "attention_frozen": SEQ + GRAD + "attention/frozen(heads=4)\n",
    "attention_fused_nobias": SEQ + GRAD + "attention/fused/nobias(heads=2)\n",
    "attention_mha": SEQ + GRAD + "attention/mha(heads=4)\n",
    "attention_mha_first": SEQ + "attention/mha(heads=4)\n",
    "attention_conv1d_causal": SEQ + GRAD + "attention/conv1d/causal(heads=4)\n",
    "attention_gqa_causal": SEQ + GRAD + "attention/causal/nobias(heads=4, kv_heads=2)\n",
    "attention_mqa_width": SEQ + GRAD + "attention(heads=4, kv_heads=1, head_dim=8, dim=24)\n",
    "attention_rotary": (SEQ + GRAD + "x = identity\nrope = rotary(@x, dim=4)\n"
                         "attention/causal/nobias/rope(@x, @rope, heads=4, kv_heads=2)\n"),
    "attention_rotary_partial": (SEQ + GRAD + "x = identity\nrope = rotary(@x, dim=2)\n"
                                 "attention/rope(@x, @rope, heads=2)\n"),
    "attention_cross": ("input q 6x16 as sequence\ninput m 5x12 as sequence\nx = position-bias(@q)\n"
                        "y = position-bias(@m)\nattention(@x, @y, heads=4)\n"),
    "attention_cross_memory_nograd": ("input q 6x16 as sequence\ninput m 5x12 as sequence\nx = position-bias(@q)\n"
                                      "attention(@x, @m, heads=4)\n"),
    "attention_window": MAP + "position-bias\nattention/fused/relpos(heads=2, window=2)\n",
    "attention_window_shift": MAP + "position-bias\nattention/fused/relpos(heads=2, window=2, shift=1)\n",
    "attention_window_first": MAP + "attention/fused/relpos(heads=2, window=2, shift=1)\n",
    # MLP
    "mlp_gelu": SEQ + GRAD + "mlp(hidden=32)\n",
    "mlp_first": SEQ + "mlp(hidden=32)\n",
    "mlp_frozen": SEQ + GRAD + "mlp/frozen(hidden=32)\n",
    "mlp_dropout": SEQ + GRAD + "mlp(hidden=32, dropout=0.1)\n",
    "mlp_dropout_zero": SEQ + GRAD + "mlp(hidden=32, dropout=0.0)\n",
    "mlp_relu": SEQ + GRAD + "mlp(hidden=32, act=relu)\n",
    "mlp_tanh": SEQ + GRAD + "mlp(hidden=32, act=tanh)\n",
    "mlp_sigmoid": SEQ + GRAD + "mlp(hidden=32, act=sigmoid)\n",
    "mlp_silu": SEQ + GRAD + "mlp(hidden=32, act=silu)\n",
    "mlp_gated_silu_nobias": SEQ + GRAD + "mlp/gated/nobias(hidden=32, act=silu)\n",
    "mlp_gated_relu": SEQ + GRAD + "mlp/gated(hidden=32, act=relu)\n",
    "mlp_gated_first": SEQ + "mlp/gated/nobias(hidden=32, act=silu)\n",
    "mlp_conv1d_gelu_tanh": SEQ + GRAD + "mlp/conv1d(hidden=32, act=gelu-tanh, out=8)\n",
    # norms
    "layernorm": SEQ + GRAD + "layernorm\n",
    "layernorm_first": SEQ + "layernorm\n",
    "layernorm_frozen": SEQ + GRAD + "layernorm/frozen\n",
    "layernorm_nobias": SEQ + GRAD + "layernorm/nobias\n",
    "layernorm_noaffine": SEQ + GRAD + "layernorm/noaffine\n",
    "layernorm_axes2": SEQ + GRAD + "layernorm(axes=2)\n",
    "rmsnorm": SEQ + GRAD + "rmsnorm\n",
    "rmsnorm_first": SEQ + "rmsnorm\n",
    "rmsnorm_frozen": SEQ + GRAD + "rmsnorm/frozen\n",
    "frozen_block_after_trained": SEQ + GRAD + "layernorm/frozen, attention/frozen(heads=4), mlp/frozen(hidden=32)\n",
    "frozen_block_first": SEQ + "layernorm/frozen, attention/frozen(heads=4), mlp/frozen(hidden=32), fc-4\n",
    "rmsnorm_noaffine": SEQ + GRAD + "rmsnorm/noaffine\n",
    "layernorm2d": "input 8x4x4\nposition-bias\nlayernorm2d\n",
    "layernorm2d_first": "input 8x4x4\nlayernorm2d\n",
    "groupnorm": "input 8x4x4\nposition-bias\ngroupnorm(groups=2)\n",
    "groupnorm_first": "input 8x4x4\ngroupnorm(groups=2)\n",
    "layer_scale_channels": "input 8x4x4\nposition-bias\nlayer-scale\n",
    "layer_scale_sequence": SEQ + GRAD + "layer-scale\n",
    "layer_scale_first": SEQ + "layer-scale\n",
    # positions, tokens
    "position_embedding": SEQ + GRAD + "position-embedding(max=8)\n",
    "position_embedding_first": SEQ + "position-embedding(max=8)\n",
    "position_embedding_frozen": SEQ + GRAD + "position-embedding/frozen(max=8)\n",
    "position_embedding_whole": SEQ + GRAD + "position-embedding/whole(max=6)\n",
    "position_embedding_ids": SEQ + "position-embedding/ids(max=8)\n",
    "sinusoidal_positions": SEQ + GRAD + "sinusoidal-positions\n",
    "token_type_embedding": SEQ + GRAD + "token-type-embedding(types=2)\n",
    "token_type_embedding_first": SEQ + "token-type-embedding(types=2, max=8)\n",
    "class_token": SEQ + GRAD + "class-token\n",
    "class_token_first": SEQ + "class-token\n",
    "token": SEQ + GRAD + "token(0)\n",
    "token_last": SEQ + GRAD + "token(-1)\n",
    "embedding_then_positions": ("input 6\nembedding(vocab=20, dim=16) as wte\nposition-embedding(max=8)\n"
                                 "layernorm\nfc-20/nobias(tie=wte)\n"),
    # rearrangements
    "patch_merging": MAP + "position-bias\npatch-merging\n",
    "patch_merging_odd": "input 4x5x3\npermute(0, 2, 3, 1)\nposition-bias\npatch-merging\n",
    "stochastic_depth_row": "input 8x4x4\nposition-bias\nstochastic-depth(p=0.2)\n",
    "stochastic_depth_batch": "input 8x4x4\nposition-bias\nstochastic-depth(p=0.2, mode=batch)\n",
    "stochastic_depth_zero": "input 8x4x4\nposition-bias\nstochastic-depth(p=0.0)\n",
    "channel_shuffle": "input 8x4x4\nposition-bias\nchannel-shuffle(groups=2)\n",
    "channel_shuffle_after_conv": "input 8x4x4\nconv1-8\nchannel-shuffle(groups=4)\nconv1-8\n",
}

# the library models' embedding tables (Kaplan et al.'s N leaves them out) and tokens per sample
EMBEDDING_TABLES = {
    "vit_b_16": (("encoder.pos_embedding",), 17),
    "gpt2": (("transformer.wte.weight", "transformer.wpe.weight"), 16),
    "bert-base": (("embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                   "embeddings.token_type_embeddings.weight"), 16),
    "llama": (("model.embed_tokens.weight",), 16),
}

# built-in specs at small sizes; the library model each stands for at the same sizes
ZOO: dict[str, dict[str, Any]] = {
    "vit_b_16": {"image": 32, "patch": 8, "dim": 64, "depth": 2, "heads": 4, "mlp": 128, "classes": 10},
    "swin_t": {"image": 64, "dim": 32, "window": 2, "classes": 10},
    "convnext_tiny": {"image": 32, "dim": 16, "classes": 10},
    "gpt2": {"seq": 16, "positions": 16, "vocab": 100, "dim": 32, "depth": 2, "heads": 4},
    "bert-base": {"seq": 16, "vocab": 100, "dim": 32, "depth": 2, "heads": 4, "positions": 16},
    "llama": {"seq": 16, "vocab": 100, "dim": 32, "depth": 2, "heads": 4, "kv_heads": 2, "hidden": 64},
}


def _library(name: str) -> tuple[str, Any, Any]:
    """(constructor in words, the model, its loss for a batch-1 input)."""
    from torchvision.models import convnext, swin_transformer, vision_transformer

    p = ZOO[name]
    if name == "vit_b_16":
        text = ("torchvision VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4, "
                "hidden_dim=64, mlp_dim=128, num_classes=10)")
        m = vision_transformer.VisionTransformer(32, 8, 2, 4, 64, 128, num_classes=10)
        return text, m, lambda: m(torch.randn(1, 3, 32, 32)).sum()
    if name == "swin_t":
        text = ("torchvision SwinTransformer(patch_size=[4, 4], embed_dim=32, depths=[2, 2, 6, 2], "
                "num_heads=[1, 2, 4, 8], window_size=[2, 2], stochastic_depth_prob=0.2, num_classes=10)")
        m = swin_transformer.SwinTransformer([4, 4], 32, [2, 2, 6, 2], [1, 2, 4, 8], [2, 2],
                                             stochastic_depth_prob=0.2, num_classes=10)
        return text, m, lambda: m(torch.randn(1, 3, 64, 64)).sum()
    if name == "convnext_tiny":
        text = ("torchvision ConvNeXt([CNBlockConfig(16, 32, 3), (32, 64, 3), (64, 128, 9), (128, None, 3)], "
                "stochastic_depth_prob=0.1, num_classes=10)")
        cfg = convnext.CNBlockConfig
        m = convnext.ConvNeXt([cfg(16, 32, 3), cfg(32, 64, 3), cfg(64, 128, 9), cfg(128, None, 3)],
                              stochastic_depth_prob=0.1, num_classes=10)
        return text, m, lambda: m(torch.randn(1, 3, 32, 32)).sum()
    ids = torch.randint(0, p["vocab"], (1, p["seq"]))
    if name == "gpt2":
        cfg = transformers.GPT2Config(vocab_size=100, n_positions=16, n_embd=32, n_layer=2, n_head=4,
                                      attn_implementation="eager")
        m = transformers.GPT2LMHeadModel(cfg)
        return "GPT2LMHeadModel(GPT2Config(vocab_size=100, n_positions=16, n_embd=32, n_layer=2, n_head=4))", m, \
            lambda: m(input_ids=ids).logits.sum()
    if name == "bert-base":
        cfg = transformers.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                      intermediate_size=128, max_position_embeddings=16,
                                      attn_implementation="eager")
        m = transformers.BertModel(cfg)
        return ("BertModel(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, "
                "intermediate_size=128, max_position_embeddings=16)); loss = pooler_output.sum()"), m, \
            lambda: m(input_ids=ids).pooler_output.sum()
    cfg = transformers.LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=16,
                                   rms_norm_eps=1e-6, attn_implementation="eager")
    m = transformers.LlamaForCausalLM(cfg)
    return ("LlamaForCausalLM(LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2, "
            "num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=16, rms_norm_eps=1e-6))"), m, \
        lambda: m(input_ids=ids).logits.sum()


def _ops(counter: FlopCounterMode) -> dict[str, int]:
    return {str(k): int(v) for k, v in counter.get_flop_counts()["Global"].items()}


def flops_of(loss_fn: Any) -> dict[str, Any]:
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter:
        loss = loss_fn()
        forward, forward_ops = counter.get_total_flops(), _ops(counter)
        loss.backward()
    total, ops = counter.get_total_flops(), _ops(counter)
    return {"forward": int(forward), "backward": int(total - forward), "train": int(total),
            "by_op": {"forward": forward_ops,
                      "backward": {k: v - forward_ops.get(k, 0) for k, v in ops.items() if v - forward_ops.get(k, 0)}}}


def spec_flops(graph: Any) -> dict[str, Any]:
    torch.manual_seed(0)
    model = build(graph).train()
    x = probe_input(graph, 1)
    xs = x if isinstance(x, tuple) else (x,)

    def loss() -> torch.Tensor:
        out = model(*xs)
        outs = out if isinstance(out, tuple) else (out,)
        return sum(o.sum() for o in outs)

    return flops_of(loss)


def spec_saved(graph: Any, batch: int) -> dict[str, Any]:
    """tools/saved_tensors_reference.py's run_spec, on a loaded graph (zoo specs with `params`)."""
    torch.manual_seed(0)
    modules = build_modules(graph)
    for m in modules.values():
        m.train()
    x = probe_input(graph, batch)
    xs = x if isinstance(x, tuple) else (x,)
    params = {_storage(p) for m in modules.values() for p in m.parameters()}
    buffers = {_storage(b) for m in modules.values() for b in m.buffers()}
    rec = Recorder()
    values: dict[int, torch.Tensor] = {}
    per_node: dict[int, list[dict[str, Any]]] = defaultdict(list)
    node_tensors: dict[int, list[tuple[str, torch.Tensor]]] = defaultdict(list)
    all_saved: list[tuple[str, torch.Tensor]] = []
    with torch.autograd.graph.saved_tensors_hooks(rec.pack, lambda t: t):
        for n in graph:
            if n.type == "input":
                values[n.id] = xs[[i.id for i in graph.input_nodes()].index(n.id)]
                continue
            owner = n.shares if n.shares is not None else n.id
            ins = [values[i] for i in n.inputs]
            rec.current, start = n.id, len(rec.packed)
            out = modules[owner](*ins)
            values[n.id] = out
            for _, t in rec.packed[start:]:
                kind = saved_kind(t, params, buffers, ins, out)
                per_node[n.id].append(_entry(t, kind))
                node_tensors[n.id].append((kind, t))
                all_saved.append((kind, t))
    nodes = node_records(graph, per_node, node_tensors)
    return {"batch": batch, "unique_bytes": _unique(all_saved), "nodes": nodes}


def main() -> None:
    only = set(sys.argv[1:])
    out: dict[str, Any] = {
        "meta": {
            "command": "PYTHONPATH=. /work/refvenv/bin/python tools/training_transformer_reference.py "
                       "> tests/reference/training_transformer_reference.json",
            "python": sys.version.split()[0], "torch": torch.__version__, "torchvision": torchvision.__version__,
            "transformers": transformers.__version__, "device": "cpu", "dtype": "float32",
            "how": "model.train(), loss = sum of every output, forward + loss.backward() inside one FlopCounterMode "
                   "(sdpa_kernel(SDPBackend.MATH)); saved tensors by torch.autograd.graph.saved_tensors_hooks on "
                   "archcalc's modules run node by node in id order",
        },
        "cases": {}, "zoo": {}, "library": {},
    }
    for name, spec in CASES.items():
        if only and name not in only:
            continue
        print(f"[train] {name}", file=sys.stderr)
        graph = archcalc.load(spec)
        out["cases"][name] = {"spec": spec, "flops": spec_flops(graph),
                              "batch_1": spec_saved(graph, 1), "batch_2": spec_saved(graph, 2)}
    for name, params in ZOO.items():
        if only and name not in only:
            continue
        print(f"[train] zoo {name}", file=sys.stderr)
        graph = archcalc.load(name, None, params)
        counts = sum(p.numel() for p in build(graph).parameters())
        out["zoo"][name] = {"params": params, "parameters": int(counts), "flops": spec_flops(graph),
                            "batch_1": spec_saved(graph, 1)}
        torch.manual_seed(0)
        text, model, loss = _library(name)
        model.train()
        lib = out["library"][name] = {"constructor": text,
                                      "parameters": int(sum(p.numel() for p in model.parameters())),
                                      "flops": flops_of(loss)}
        if name in EMBEDDING_TABLES:
            tables, tokens = EMBEDDING_TABLES[name]
            named = dict(model.named_parameters())
            embedding = sum(named[t].numel() for t in tables)
            n = lib["parameters"] - embedding
            lib["six_nt"] = {"tables": list(tables), "embedding_params": int(embedding), "N": int(n), "T": tokens,
                             "6NT": 6 * int(n) * tokens, "measured_train": lib["flops"]["train"],
                             "measured_over_6NT": round(lib["flops"]["train"] / (6 * n * tokens), 4)}
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
