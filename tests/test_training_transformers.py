"""The training step of the transformer layer types, against PyTorch.

tests/reference/training_transformer_reference.json (tools/training_transformer_reference.py,
torch 2.14.1, torchvision 0.29.1, transformers 5.24.0): per layer type and variant (attention in
each layout, first or after a trained layer, frozen, causal, grouped-query, cross, rotary, Swin's
windows; MLPs; norms; positions and tokens; …) FlopCounterMode's forward and training step and
what `saved_tensors_hooks` sees kept, per node, at batch 1 and 2; the built-in transformer specs
at small sizes, and the library models they stand for at the same sizes, with 6·N·T.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import archcalc
from archcalc.layers.base import REGISTRY, LayerType
from archcalc.passes import counting
from archcalc.passes.training import Training, TrainingOptions, training

REF = json.loads((Path(__file__).parent / "reference" / "training_transformer_reference.json").read_text())

# layer types whose MACs are 0 by their own rule (a lookup, an element-wise window, distances), so the
# base class's "no products, no gradient FLOPs" is their gradient rule: they need no method of their own
ZERO_MACS = {"embedding", "rbf", "subsampling"}
# registered layer types with no gradient or saved-tensors rule, and why: none
EXCLUDED: dict[str, str] = {
    # An imported op archcalc has no rule for (--allow-unknown): nothing is known of its backward,
    # so the training pass names it as not counted rather than guessing a rule.
    "unknown": "opaque imported module: no rule by design, reported as not counted",
    "unknown-tensor": "opaque imported function: no rule by design, reported as not counted",
}


def step(graph: archcalc.LayerGraph, **options: object) -> Training:
    return training(graph, counting.counts(graph), counting.macs(graph), TrainingOptions(**options))  # type: ignore[arg-type]


def test_every_layer_type_has_training_rules() -> None:
    """A type without a `saved` rule, or with MACs and no `gradients` rule, makes `--training` say
    "not counted"; the list of such types is the explained exclusion list (empty)."""
    missing = sorted(
        name for name, t in REGISTRY.items()
        if type(t).saved is LayerType.saved
        or (type(t).gradients is LayerType.gradients and type(t).macs is not LayerType.macs and name not in ZERO_MACS))
    assert missing == sorted(EXCLUDED)
    for name in ZERO_MACS:
        assert type(REGISTRY[name]).gradients is LayerType.gradients


@pytest.mark.parametrize("case", list(REF["cases"]))
def test_layer_type_step_against_flop_counter(case: str) -> None:
    """Forward, and forward + backward in train mode: archcalc's figure is FlopCounterMode's (no grouped
    convolution here) and nothing is left uncounted."""
    ref = REF["cases"][case]
    t = step(archcalc.load(ref["spec"]))
    assert not t.unknown
    assert t.forward == ref["flops"]["forward"]
    assert t.step == t.flop_counter_step == ref["flops"]["train"]


@pytest.mark.parametrize("batch", ["batch_1", "batch_2"])
@pytest.mark.parametrize("case", list(REF["cases"]))
def test_layer_type_saved_tensors(case: str, batch: str) -> None:
    """Per node, the bytes of the storages it is the first to keep; in total, every storage once
    (CPU, float32: a dropout mask is float noise there)."""
    ref = REF["cases"][case]
    rec = ref[batch]
    t = step(archcalc.load(ref["spec"]), batch=rec["batch"], device="cpu")
    measured = {n["id"]: n["new_bytes"] for n in rec["nodes"]}
    assert {i: t.layers[i].saved_bytes for i in measured} == measured
    assert t.saved_bytes == rec["unique_bytes"]


@pytest.mark.parametrize("name", list(REF["zoo"]))
def test_zoo_transformers_training_step(name: str) -> None:
    """The built-in spec at small sizes: archcalc = FlopCounterMode on archcalc's model = FlopCounterMode
    on the library's model (torchvision / Hugging Face, eager or SDPA's math backend), forward and
    training step; the parameters agree too. ConvNeXt's depthwise convolutions are FlopCounterMode's
    over-count, asserted beside the correct figure."""
    ref, lib = REF["zoo"][name], REF["library"][name]
    g = archcalc.load(name, None, ref["params"])
    t = step(g)
    assert not t.unknown
    assert ref["parameters"] == lib["parameters"] == sum(c.params for c in counting.counts(g))
    assert t.forward == ref["flops"]["forward"] == lib["flops"]["forward"]
    assert t.flop_counter_step == ref["flops"]["train"] == lib["flops"]["train"]
    if name == "convnext_tiny":
        assert t.flop_counter_excess > 0 and t.step < t.flop_counter_step
    else:
        assert t.step == t.flop_counter_step


@pytest.mark.parametrize("name", list(REF["zoo"]))
def test_zoo_transformers_saved_tensors(name: str) -> None:
    ref = REF["zoo"][name]
    rec = ref["batch_1"]
    t = step(archcalc.load(name, None, ref["params"]), device="cpu")
    measured = {n["id"]: n["new_bytes"] for n in rec["nodes"]}
    assert {i: t.layers[i].saved_bytes for i in measured} == measured
    assert t.saved_bytes == rec["unique_bytes"]


@pytest.mark.parametrize("name", [n for n in REF["library"] if "six_nt" in REF["library"][n]])
def test_six_nt_beside_the_computed_step(name: str) -> None:
    """N = the library model's parameters less its embedding tables (token, position, token-type),
    T = tokens per sample; the measured step is 6·N·T times the recorded ratio."""
    six = REF["library"][name]["six_nt"]
    t = step(archcalc.load(name, None, REF["zoo"][name]["params"]))
    assert t.six_nt is not None
    assert (t.six_nt.n, t.six_nt.t, t.six_nt.value) == (six["N"], six["T"], six["6NT"])
    assert t.step == six["measured_train"]
    assert round(t.step / t.six_nt.value, 4) == six["measured_over_6NT"]


def test_no_six_nt_where_token_counts_differ() -> None:
    """Swin's stages see 256, 64, 16 and 4 tokens: no single T; ConvNeXt has no attention."""
    for name in ("swin_t", "convnext_tiny"):
        assert step(archcalc.load(name, None, REF["zoo"][name]["params"])).six_nt is None


def test_tied_output_layer_has_one_gradient() -> None:
    """GPT-2's lm_head is wte: its weight-gradient product is computed (FlopCounterMode's mm) and
    accumulates into the one gradient of wte; gradient and optimizer memory hold it once."""
    g = archcalc.load("gpt2", None, REF["zoo"]["gpt2"]["params"])
    t = step(g)
    head = t.layers[-1]
    assert g.node(len(g) - 1).tie is not None
    assert head.grad_weight == head.forward > 0
    assert head.gradient_bytes == 0
    assert t.gradient_bytes == 4 * REF["library"]["gpt2"]["parameters"]


def test_causal_attention_is_never_discounted() -> None:
    """FlopCounterMode's bmm runs over the full T×T: a causal layer's training step is a full one."""
    full = step(archcalc.load("input 6x16 as sequence\nposition-bias\nattention(heads=4)"))
    causal = step(archcalc.load("input 6x16 as sequence\nposition-bias\nattention/causal(heads=4)"))
    assert causal.step == full.step == REF["cases"]["attention_separate"]["flops"]["train"]


def test_frozen_block_first_has_only_the_head_in_backward() -> None:
    t = step(archcalc.load(REF["cases"]["frozen_block_first"]["spec"]))
    assert [s.in_backward for s in t.layers] == [False, False, False, False, True]
    assert t.backward == REF["cases"]["frozen_block_first"]["flops"]["backward"]


def test_rotary_table_needs_no_gradient() -> None:
    """The angle table depends on positions only: it is not in the backward pass, and attention's
    input gradient for it is never asked for (FlopCounterMode and the saved tensors agree: cases
    attention_rotary*)."""
    g = archcalc.load(REF["cases"]["attention_rotary"]["spec"])
    t = step(g)
    rope = next(n.id for n in g if n.type == "rotary")
    attention = next(n.id for n in g if n.type == "attention")
    assert not t.layers[rope].in_backward
    assert t.layers[attention].input_grad == (True, False)


def test_swin_says_why_there_is_no_six_nt() -> None:
    t = step(archcalc.load("swin_t", None, REF["zoo"]["swin_t"]["params"]))
    assert t.six_nt is None
    assert any(n.startswith("no 6·N·T: the attention layers see 256, 64, 16, 4 tokens") for n in t.notes)
