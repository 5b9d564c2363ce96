"""The seven transformer specs against the PyTorch models themselves (tests/reference/transformer_reference.json,
made by tools/transformer_reference.py: torchvision and Hugging Face models built from their configs).

For every model and measured length: parameters (weights and biases apart), buffers, FlopCounterMode's
FLOPs in total, per operator (the T² term is exactly its `aten.bmm`) and per attention and MLP module,
the output shape of every executed leaf module in forward order (with its class), the KV cache and
Swin's effective shifts. The static path allocates nothing, so Llama-2-7B is checked like the rest.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import archcalc
from archcalc.graph import LayerGraph
from archcalc.layers.attention import sizes
from archcalc.passes.analysis import Analysis, analyze

REFERENCE = Path(__file__).parent / "reference" / "transformer_reference.json"

LLAMA2_7B = {"vocab": 32000, "dim": 4096, "depth": 32, "heads": 32, "kv_heads": 32, "hidden": 11008, "eps": 1e-5}

# reference model → (archcalc spec, its settings, the spec parameter a run's length sets)
MODELS: dict[str, tuple[str, dict[str, Any], str | None]] = {
    "vit_b_16": ("vit_b_16", {}, None),
    "vit_b_32": ("vit_b_32", {}, None),
    "swin_t": ("swin_t", {}, None),
    "convnext_tiny": ("convnext_tiny", {}, None),
    "gpt2": ("gpt2", {}, "seq"),
    "bert_base": ("bert-base", {}, "seq"),
    "llama_small_gqa": ("llama", {}, "seq"),
    "llama2_7b": ("llama", LLAMA2_7B, "seq"),
}

# the layer types each library runs as plain tensor code, not as a module of its own (no leaf)
FUNCTIONAL = {
    "vit_b_16": {"flatten", "transpose", "class-token", "position-embedding", "token"},  # reshape, cat, +, x[:, 0]
    "vit_b_32": {"flatten", "transpose", "class-token", "position-embedding", "token"},
    "swin_t": {"patch-merging"},  # PatchMerging slices and concatenates in its own forward
    "convnext_tiny": {"layer-scale"},  # layer_scale * …
    "gpt2": set(),
    "bert_base": {"token"},  # the pooler's hidden_states[:, 0]
    "llama_small_gqa": set(),
    "llama2_7b": set(),
}

# an archcalc leaf (a layer type, or a layer type's part) → the classes the libraries call for it
LEAF_CLASSES = {
    "conv": {"Conv2d"}, "permute": {"Permute"}, "layernorm": {"LayerNorm"}, "layernorm2d": {"LayerNorm2d"},
    "rmsnorm": {"LlamaRMSNorm"}, "dropout": {"Dropout"}, "stochastic-depth": {"StochasticDepth"},
    "adaptive-avgpool": {"AdaptiveAvgPool2d"}, "flatten": {"Flatten"}, "fc": {"Linear"}, "tanh": {"Tanh"},
    "gelu": {"GELU"},  # ConvNeXt's MLP written as block.3 Linear, block.4 GELU, block.5 Linear
    "embedding": {"Embedding"}, "position-embedding": {"Embedding"}, "token-type-embedding": {"Embedding"},
    "rotary": {"LlamaRotaryEmbedding"}, "attention": {"MultiheadAttention", "ShiftedWindowAttention"},
    **{f"attention.{p}": {"Linear"} for p in ("q", "k", "v", "out")},
    "attention.c_attn": {"Conv1D"}, "attention.c_proj": {"Conv1D"},
    **{f"mlp.{p}": {"Linear", "Conv1D"} for p in ("fc1", "fc2", "gate", "up", "down")},
    "mlp.act": {"GELU", "NewGELUActivation", "GELUActivation", "SiLUActivation"}, "mlp.dropout": {"Dropout"},
}


@cache
def reference() -> dict[str, Any]:
    return json.loads(REFERENCE.read_text())["models"]


def runs() -> list[tuple[str, str]]:
    return [(model, length) for model, entry in reference().items() for length in entry["runs"]]


@cache
def graph(model: str, length: str) -> LayerGraph:
    spec, settings, param = MODELS[model]
    return archcalc.load(spec, params={**settings, **({param: int(length)} if param else {})})


@cache
def analysis(model: str, length: str) -> Analysis:
    return analyze(graph(model, length))


def leaves(g: LayerGraph, functional: set[str]) -> list[tuple[str, list[int]]]:
    """(label, output shape) of every module the spec's layers stand for, in order: a layer, or the
    modules its PyTorch layout calls inside it (`LayerType.parts`)."""
    out = []
    for n in g:
        if n.type in functional or n.type in ("input", "add"):
            continue
        parts = n.layer.parts(n.args, n.in_shapes, n.shape)
        out += [(f"{n.type}.{p.name}", list(p.shape)) for p in parts] or [(n.type, list(n.shape))]
    return out


# -- parameters and buffers ------------------------------------------------------------------------------


@pytest.mark.parametrize("model", list(MODELS))
def test_parameters_and_buffers_equal_the_library_models(model: str) -> None:
    ref = reference()[model]
    t = analysis(model, next(iter(ref["runs"]))).totals
    assert (t.params, t.counts.weights, t.counts.biases, t.counts.buffers) == (
        ref["params"], ref["weights"], ref["biases"], ref["buffers"])


def test_the_published_parameter_counts() -> None:
    published = {"vit_b_16": 86_567_656, "vit_b_32": 88_224_232, "swin_t": 28_288_354, "convnext_tiny": 28_589_128,
                 "gpt2": 124_439_808, "bert_base": 109_482_240, "llama2_7b": 6_738_415_616,
                 "llama_small_gqa": 3_283_200}
    assert {m: analysis(m, next(iter(reference()[m]["runs"]))).totals.params for m in MODELS} == published


def test_gpt2_counts_its_tied_output_layer_once() -> None:
    t = analysis("gpt2", "1024").totals
    ref = reference()["gpt2"]
    assert (t.params, t.params_if_unshared) == (ref["params"], ref["params_counting_ties_twice"])
    assert (t.params, t.params_if_unshared) == (124_439_808, 163_037_184)


@pytest.mark.parametrize("model, block, scope", [
    ("gpt2", "transformer.h.0", ("h#1",)),
    ("bert_base", "encoder.layer.0", ("layer#1",)),
    ("llama_small_gqa", "model.layers.0", ("decoder#1",)),
    ("llama2_7b", "model.layers.0", ("decoder#1",)),
    ("vit_b_16", "encoder.layers.encoder_layer_0", ("encoder#1", "encoder_layers#1", "encoder_block#1")),
    ("swin_t", "features.1.0", ("stage#1", "swin#1")),
    ("swin_t", "features.7.0", ("stage#4", "swin#11")),
    ("swin_t", "features.2", ("merge#1",)),
    ("convnext_tiny", "features.1.0", ("stage#1", "cnblock#1")),
    ("convnext_tiny", "features.4", ("down#2",)),
])
def test_a_block_holds_what_the_library_block_holds(model: str, block: str, scope: tuple[str, ...]) -> None:
    a = analysis(model, next(iter(reference()[model]["runs"])))
    ids = [n.id for n in a.graph if n.scope[: len(scope)] == scope]
    assert ids and sum(a.counts[i].params for i in ids) == reference()[model]["params_of_blocks"][block]


# -- FLOPs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model, length", runs())
def test_flops_equal_flopcountermode_at_every_measured_length(model: str, length: str) -> None:
    run = reference()[model]["runs"][length]
    a = analysis(model, length)
    assert (a.totals.flops, a.totals.macs) == (run["flops"], run["macs"])


@pytest.mark.parametrize("model, length", runs())
def test_the_t2_term_is_exactly_flopcountermodes_bmm(model: str, length: str) -> None:
    """Q·Kᵀ and A·V are the only batched matmuls in each model: archcalc's T² MACs are their count."""
    run = reference()[model]["runs"][length]
    a = analysis(model, length)
    assert 2 * a.attention.total_quadratic_macs == run["flops_by_op"].get("aten.bmm", 0)


@pytest.mark.parametrize("model, length, path, kind, index", [
    ("gpt2", "128", "transformer.h.0.attn", "attention", 0),
    ("gpt2", "1024", "transformer.h.11.attn", "attention", 11),
    ("gpt2", "1024", "transformer.h.11.mlp", "mlp", 11),
    ("bert_base", "512", "encoder.layer.0.attention", "attention", 0),
    ("llama_small_gqa", "512", "model.layers.0.self_attn", "attention", 0),
    ("llama_small_gqa", "512", "model.layers.3.mlp", "mlp", 3),
    ("llama2_7b", "2048", "model.layers.31.self_attn", "attention", 31),
    ("llama2_7b", "2048", "model.layers.31.mlp", "mlp", 31),
    ("vit_b_16", "224", "encoder.layers.encoder_layer_0.self_attention", "attention", 0),
    ("vit_b_16", "224", "encoder.layers.encoder_layer_0.mlp", "mlp", 0),
    ("swin_t", "224", "features.1.1.attn", "attention", 1),  # the first shifted block
    ("swin_t", "224", "features.7.1.attn", "attention", 11),
    ("swin_t", "224", "features.5.3.mlp", "mlp", 7),
])
def test_each_attention_and_mlp_module_counts_what_the_layer_counts(model: str, length: str, path: str, kind: str,
                                                                    index: int) -> None:
    a = analysis(model, length)
    node = [n.id for n in a.graph if n.type == kind][index]
    assert a.flops(node) == sum(reference()[model]["runs"][length]["flops_by_module"][path].values())


def test_gpt2_attention_flops_are_the_hand_formula() -> None:
    """2·T·768·2304 + 2·T·768·768 + 2·(2·T·T·768) per attention module, as the reference asserts."""
    for length in ("128", "1024"):
        a = analysis("gpt2", length)
        per_module = {a.flops(n.id) for n in a.graph if n.type == "attention"}
        t = int(length)
        assert per_module == {2 * t * 768 * 2304 + 2 * t * 768 * 768 + 4 * t * t * 768}
        assert per_module == {reference()["gpt2"]["runs"][length]["hand_check"]["expected_per_attention_module"]}


# -- every leaf module's output shape --------------------------------------------------------------------


@pytest.mark.parametrize("model, length", runs())
def test_every_leaf_module_has_the_library_models_output_shape(model: str, length: str) -> None:
    calls = reference()[model]["runs"][length]["leaf_calls"]
    ours = leaves(graph(model, length), FUNCTIONAL[model])
    assert [shape for _, shape in ours] == [shape for _, _, shape in calls]
    wrong = [(i, label, cls) for i, ((label, _), (_, cls, _)) in enumerate(zip(ours, calls))
             if cls not in LEAF_CLASSES[label]]
    assert not wrong, wrong[:5]


def test_swin_runs_its_last_shifted_block_unshifted_as_torchvision_does() -> None:
    rows = reference()["swin_t"]["runs"]["224"]["window_attention"]["rows"]
    g = graph("swin_t", "224")
    ours = [(list(sizes(n.args, n.in_shapes).shift), list(sizes(n.args, n.in_shapes).window or ()), n.args["heads"])
            for n in g if n.type == "attention"]
    assert ours == [(effective, window, heads) for _, _, effective, window, heads in rows]
    assert reference()["swin_t"]["runs"]["224"]["aten_roll_calls"] == 2 * sum(1 for s, _, _ in ours if any(s))


# -- the KV cache -------------------------------------------------------------------------------------


@pytest.mark.parametrize("model, length", [r for r in runs() if "kv_cache" in reference()[r[0]]["runs"][r[1]]])
def test_the_kv_cache_is_what_the_dynamic_cache_holds(model: str, length: str) -> None:
    cache = reference()[model]["runs"][length]["kv_cache"]
    a = analysis(model, length)
    per_layer = [a.attention.kv_cache[i] for i in a.attention.cached()]
    assert len(per_layer) == cache["measured_num_layers"]
    assert set(per_layer) == {cache["measured_elements_per_layer"]}
    assert a.attention.total_kv_cache == cache["elements_all_layers_formula"]


def test_encoders_keep_no_kv_cache() -> None:
    for model in ("bert_base", "vit_b_16", "swin_t"):
        a = analysis(model, next(iter(reference()[model]["runs"])))
        assert a.attention.total_kv_cache == 0
