"""Hugging Face GPT-2 and BERT through `archcalc import`, held to the models' own figures.

tools/hf_reference.py (run with transformers 5.24, nothing downloaded) builds GPT2LMHeadModel,
BertModel and BertForMaskedLM from their default configs (and two small two-layer configs) with
random weights, measures each with PyTorch as Hugging Face runs it — sum(p.numel()), buffers,
FlopCounterMode's FLOPs with eager attention, the output shape of every leaf call — imports it,
and commits the spec archcalc wrote (tests/reference/imported/hf_*.arch) with those figures
(tests/reference/hf_reference.json). These tests read the committed specs on the static path:
no transformers, no torch. Where torch is installed the small specs are verified again in
PyTorch; where transformers is installed the small models are imported again here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archcalc import load_text
from archcalc.passes.analysis import analyze

HERE = Path(__file__).parent / "reference"
REFERENCE = json.loads((HERE / "hf_reference.json").read_text())
MODELS = REFERENCE["models"]
SMALL = ("gpt2_small", "bert_small")


def spec(name: str) -> str:
    return (HERE / MODELS[name]["spec"]).read_text()


def test_every_model_imported_with_the_models_figures() -> None:
    assert set(MODELS) == {"gpt2", "bert", "bert_mlm", *SMALL} and REFERENCE["failed"] == {}
    # GPT-2 small's default config: wte 50,257·768 + wpe 1,024·768 + 12·7,087,872 per block + ln_f 1,536; lm_head tied
    assert MODELS["gpt2"]["params"] == 124_439_808 == 50257 * 768 + 1024 * 768 + 12 * 7_087_872 + 1536
    assert MODELS["gpt2"]["buffers"] == 0
    # BERT-base with its pooler; buffers: the 512 position ids and the 512 default token type ids
    assert MODELS["bert"]["params"] == 109_482_240 and MODELS["bert"]["buffers"] == 1024
    # the masked-LM head: transform dense 768·768 + 768 and its layer norm 1,536, the decoder's bias 30,522
    # (its weight is the word embedding's); no pooler
    assert MODELS["bert_mlm"]["params"] == 109_482_240 - 590_592 + 590_592 + 1536 + 30522


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_imported_spec_gives_the_models_figures(name: str) -> None:
    ref = MODELS[name]
    a = analyze(load_text(spec(name), f"hf_{name}.arch"))
    assert not a.unknown_ops
    assert list(a.graph.input.shape) == ref["input"]
    assert (a.totals.params, a.totals.counts.buffers, a.totals.flops) == (ref["params"], ref["buffers"], ref["flops"])
    shapes = [[path, list(a.graph.node(node).shape)] for path, node in ref["module_nodes"]]
    assert shapes == ref["leaf_calls"]  # every leaf call, in forward order, with PyTorch's shape
    assert ref["verify"]["ok"] in (True, None)


def test_gpt2_reads_as_the_paper_writes_it() -> None:
    """Twelve blocks as one block called 12 times; the output layer a tie to wte, counted once."""
    text = spec("gpt2")
    assert "block gpt2_block:\n" in text and "gpt2_block x12  # transformer.h.0 … transformer.h.11 (12)" in text
    assert "attention/conv1d/causal(heads=12)" in text and "mlp/conv1d(hidden=3072, act=gelu-tanh)" in text
    assert "embedding(vocab=50257, dim=768) as wte, position-embedding(max=1024)" in text
    assert "fc-50257/nobias(tie=wte)" in text
    body = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(body) < 16


def test_bert_reads_as_the_paper_writes_it() -> None:
    text = spec("bert")
    assert "bert_layer x12" in text and "attention(heads=12)" in text
    assert "token-type-embedding(types=2, max=512)" in text and "position-embedding(max=512, ids=true)" in text
    assert "token(0), fc-768, tanh" in text  # the pooler
    mlm = spec("bert_mlm")
    assert "fc-30522(tie=word_embeddings)" in mlm  # the decoder holds the word embedding's weight


@pytest.mark.parametrize(("name", "builtin"), [("gpt2", "gpt2"), ("bert", "bert-base")])
def test_the_import_agrees_with_the_built_in_spec(name: str, builtin: str) -> None:
    """The built-in specs (written by hand from the papers and Hugging Face's classes) at 128 tokens."""
    root = Path(__file__).parent.parent / "specs"
    built = analyze(load_text((root / f"{builtin}.arch").read_text(), f"{builtin}.arch", params={"seq": 128}))
    imported = analyze(load_text(spec(name), f"hf_{name}.arch"))
    for a in (built, imported):
        assert (a.totals.params, a.totals.counts.buffers) == (MODELS[name]["params"], MODELS[name]["buffers"])
    assert built.totals.flops == imported.totals.flops == MODELS[name]["flops"]


def test_what_archcalc_cannot_count_stops_the_import() -> None:
    """GPT-2 with reorder_and_upcast_attn: the attention is listed with its reason, nothing counted."""
    refused = REFERENCE["refused"]
    assert refused["unknown"] == [["transformers.models.gpt2.modeling_gpt2.GPT2Attention", 2]]
    assert "uses 2 operations archcalc has no rule for; nothing was counted:" in refused["message"][0]
    assert "reorder_and_upcast_attn" in refused["message"][1]


@pytest.mark.torch
@pytest.mark.parametrize("name", SMALL)
def test_verify_passes_on_the_small_specs(name: str) -> None:
    pytest.importorskip("torch")
    from archcalc.pytorch.verify import verify

    report = verify(load_text(spec(name), f"hf_{name}.arch"), device="cpu", runs=0, rf=False)
    assert report.ok, report.failures[:3]


@pytest.mark.torch
@pytest.mark.parametrize("name", SMALL)
def test_the_small_models_import_again(name: str) -> None:
    """Where transformers is installed: the import as the tool ran it, the same spec."""
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    import torch

    from archcalc.importers import import_module

    cls = getattr(transformers, MODELS[name]["class"])
    config_cls = transformers.GPT2Config if name.startswith("gpt2") else transformers.BertConfig
    kwargs = dict(item.split("=") for item in MODELS[name]["config"].split(", "))
    with torch.device("meta"):
        model = cls(config_cls(**{k: int(v) for k, v in kwargs.items()}, bos_token_id=0, eos_token_id=0,
                               attn_implementation="eager")).eval()
    imported = import_module(model, (128,), name=name, origin=f"transformers:{MODELS[name]['class']}")
    assert imported.spec.split("\n", 1)[1] == spec(name).split("\n", 1)[1]  # the versions line may differ
