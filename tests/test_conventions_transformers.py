"""The peer tools' conventions on transformers, to the unit.

tests/reference/peer_transformer_reference.json (tools/peer_transformer_reference.py: torchinfo
1.8.0, fvcore 0.1.5.post20221221, ptflops 0.7.5 both backends, thop 0.1.1.post2209072238, torch
2.14.1) holds each tool's total and parameter count for torchvision's VisionTransformer and
Hugging Face's GPT-2 at small sizes; archcalc's vit_b_16 and gpt2 specs at the same sizes,
counted under each convention, give the same figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import archcalc

REF = json.loads((Path(__file__).parent / "reference" / "peer_transformer_reference.json").read_text())["models"]
TOOL_KEYS = {"torchinfo": "torchinfo", "fvcore": "fvcore", "ptflops": "ptflops", "ptflops-aten": "ptflops_aten",
             "thop": "thop"}
MODELS = {
    "vit_small": ("vit_b_16", {"image": 32, "patch": 8, "dim": 64, "depth": 2, "heads": 4, "mlp": 128, "classes": 10}),
    "gpt2_small": ("gpt2", {"seq": 16, "positions": 16, "vocab": 100, "dim": 32, "depth": 2, "heads": 4}),
    "bert_small": ("bert-base", {"seq": 16, "vocab": 100, "dim": 32, "depth": 2, "heads": 4, "positions": 16}),
    "llama_small": ("llama", {"seq": 16, "vocab": 100, "dim": 32, "depth": 2, "heads": 4, "kv_heads": 2,
                              "hidden": 64}),
}
_CACHE: dict[str, archcalc.Analysis] = {}


def analysis(model: str) -> archcalc.Analysis:
    if model not in _CACHE:
        spec, params = MODELS[model]
        _CACHE[model] = archcalc.analyze(spec, None, params)
    return _CACHE[model]


@pytest.mark.parametrize("convention", list(TOOL_KEYS))
@pytest.mark.parametrize("model", list(MODELS))
def test_each_tool_total_on_transformers(model: str, convention: str) -> None:
    counted = analysis(model).conventions[convention]
    assert counted.total == REF[model]["totals"][TOOL_KEYS[convention]]
    assert not [c for c in counted.caveats if "no rule" in c.text]


@pytest.mark.parametrize("convention", list(TOOL_KEYS))
@pytest.mark.parametrize("model", list(MODELS))
def test_each_tool_parameters_on_transformers(model: str, convention: str) -> None:
    """thop leaves out what it hooks nothing for (nn.MultiheadAttention, Conv1D, nn.Embedding, bare
    parameters, LlamaRMSNorm); torchinfo counts GPT-2's tied table twice (wte and lm_head rows)."""
    assert analysis(model).conventions[convention].params == REF[model]["params_by_tool"][TOOL_KEYS[convention]]


def test_pytorch_convention_is_the_math_form() -> None:
    """archcalc's default counts attention's work; FlopCounterMode on torchvision's ViT in eval under
    no_grad on CPU counts every nn.MultiheadAttention 0 (its fast path, torch._native_multi_head_attention,
    has no formula), which the reference records and archcalc does not copy."""
    a = analysis("vit_small")
    attention = sum(m for n, m in zip(a.graph, a.macs) if n.type == "attention")
    assert a.conventions["pytorch"].total == a.totals.macs
    assert a.totals.macs - REF["vit_small"]["totals"]["flop_counter_macs"] == attention > 0
    assert REF["gpt2_small"]["totals"]["flop_counter_macs"] == analysis("gpt2_small").totals.macs


def test_sdpa_and_missing_hooks_are_named() -> None:
    """Where a tool counts attention's products 0 (fvcore and ptflops-aten on SDPA) or a module 0
    (thop on nn.MultiheadAttention and Conv1D, torchinfo on nn.MultiheadAttention), it says so."""
    vit = analysis("vit_small").conventions
    assert any("scaled_dot_product_attention" in c.text for c in vit["fvcore"].caveats)
    assert any("SDPA" in c.text for c in vit["ptflops-aten"].caveats)
    assert any("nn.MultiheadAttention" in c.text for c in vit["thop"].caveats)
    assert any("leaf" in c.text for c in vit["torchinfo"].caveats)
    gpt2 = analysis("gpt2_small").conventions
    assert any("Conv1D" in c.text and c.layer_type == "attention" for c in gpt2["thop"].caveats)


def test_unmeasured_transformer_variants_are_named() -> None:
    """Swin's windowed (fused) attention and cross-attention: no tool was measured on them, so each
    hooking tool names them rather than guessing."""
    swin = archcalc.analyze("swin_t", None, {"image": 64, "dim": 32, "window": 2, "classes": 10})
    for tool in ("torchinfo", "fvcore", "ptflops", "ptflops-aten", "thop"):
        named = {c.layer_type for c in swin.conventions[tool].caveats if "no rule" in c.text}
        assert "attention" in named, tool


def test_sdpa_probe_by_hand() -> None:
    """The probe (Embedding(50, 32) on 8 ids → LayerNorm → nn.MultiheadAttention(32, 4,
    need_weights=False) → Linear(32, 96) → F.scaled_dot_product_attention (4 heads of 8) → GELU →
    Linear(32, 5)): what each tool prints, by hand. F.scaled_dot_product_attention counts 0 under
    every tool; nn.MultiheadAttention only under ptflops (its own hook) and as projections under
    fvcore and ptflops-aten; FlopCounterMode in eval under no_grad sees neither (fast path, CPU SDPA)."""
    t, e, heads, hd = 8, 32, 4, 8
    in_proj, out_proj, qkv, head = t * e * 3 * e, t * e * e, t * e * 3 * e, t * e * 5
    totals = REF["probe_attention"]["totals"]
    assert totals["flop_counter_macs"] == qkv + head
    assert totals["fvcore"] == 5 * t * e + in_proj + out_proj + qkv + head
    mha_hook = t * e + 3 * t * e * e + 3 * t * e + heads * t * t * (2 * hd + 1) + t * e * (e + 1)
    assert totals["ptflops"] == t * e + mha_hook + (qkv + t * 3 * e) + 2 * t * e + (head + t * 5)
    assert totals["ptflops_aten"] == (in_proj + t * 3 * e) + (out_proj + t * e) + (qkv + t * 3 * e) + (head + t * 5)
    assert totals["thop"] == 4 * t * e + qkv + head
    assert totals["torchinfo"] == 50 * e + 2 * e + (e * 3 * e + 3 * e) + (e * 5 + 5)
