#!/usr/bin/env python3
"""Hugging Face GPT-2 and BERT through `archcalc import`, measured against the models themselves.

Each model is built from its config with random weights on the meta device (nothing is
downloaded; transformers 5, attn_implementation="eager": SDPA's CPU kernel has no FLOP formula,
so FlopCounterMode would count its products as 0). PyTorch's own figures are measured on the
model as Hugging Face runs it — its own forward, its own mask builders, batch 1, input ids of
SEQ tokens, on the CPU (the mask builders read the ids' values, which the meta device has not):
sum(p.numel()), buffers, FlopCounterMode's FLOPs and the output shape of every leaf
call in forward order (forward hooks on the modules without children, and on the Hugging Face
modules archcalc reads whole: GPT2Attention, GPT2MLP, BertSelfAttention, whose children are not
hooked). Then archcalc imports the model, the spec is written to
tests/reference/imported/hf_NAME.arch, read back and analysed, and the script asserts that the
analysis gives exactly those figures and that the node standing for each leaf call has that
call's shape (BERT's attention.output.dense is the output projection of the `attention` node
before it, so it is that node). For the small configs (SMALL, two layers) it also runs
`archcalc verify` on the written spec (built and run in PyTorch on the CPU).

    PYTHONPATH=. /work/refvenv/bin/python tools/hf_reference.py > tests/reference/hf_reference.json

tests/test_import_transformers.py asserts the committed specs against the recorded figures
without transformers (or torch). Deterministic: no time or date is recorded.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from typing import Any

warnings.filterwarnings("ignore")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
import transformers  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from archcalc import load_text  # noqa: E402
from archcalc.errors import ArchcalcError, UnknownOpsError  # noqa: E402
from archcalc.importers import import_module  # noqa: E402
from archcalc.passes.analysis import analyze  # noqa: E402
from archcalc.pytorch.verify import verify  # noqa: E402

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECS = os.path.join(HERE, "tests", "reference", "imported")
SEQ = 128
EAGER = {"attn_implementation": "eager"}
MODELS = {
    "gpt2": ("GPT2LMHeadModel", lambda: transformers.GPT2LMHeadModel(transformers.GPT2Config(**EAGER)), "default"),
    "bert": ("BertModel", lambda: transformers.BertModel(transformers.BertConfig(**EAGER)), "default"),
    "bert_mlm": ("BertForMaskedLM", lambda: transformers.BertForMaskedLM(transformers.BertConfig(**EAGER)),
                 "default"),
    "gpt2_small": ("GPT2LMHeadModel", lambda: transformers.GPT2LMHeadModel(transformers.GPT2Config(
        n_layer=2, n_embd=64, n_head=4, vocab_size=1000, n_positions=256, bos_token_id=0, eos_token_id=0, **EAGER)),
        "n_layer=2, n_embd=64, n_head=4, vocab_size=1000, n_positions=256"),
    "bert_small": ("BertModel", lambda: transformers.BertModel(transformers.BertConfig(
        num_hidden_layers=2, hidden_size=64, num_attention_heads=4, intermediate_size=256, vocab_size=1000,
        max_position_embeddings=256, **EAGER)),
        "num_hidden_layers=2, hidden_size=64, num_attention_heads=4, intermediate_size=256, vocab_size=1000, "
        "max_position_embeddings=256"),
}
SMALL = ("gpt2_small", "bert_small")
WHOLE = ("GPT2Attention", "GPT2MLP", "BertSelfAttention")  # read whole by archcalc's layer types


def build(name: str, device: str = "meta") -> Any:
    with torch.device(device):
        model = MODELS[name][1]()
    return model.eval()


def leaf_modules(model: Any) -> list[tuple[str, Any]]:
    """The modules without children and the Hugging Face modules read whole, none inside those."""
    out: list[tuple[str, Any]] = []
    inside: list[str] = []
    for path, module in model.named_modules():
        if not path or any(path.startswith(p + ".") for p in inside):
            continue
        if type(module).__name__ in WHOLE:
            inside.append(path)
            out.append((path, module))
        elif not list(module.children()):
            out.append((path, module))
    return out


def measure(model: Any) -> dict[str, Any]:
    calls: list[list[Any]] = []
    hooks = []
    for path, module in leaf_modules(model):
        def hook(_m: Any, _a: Any, out: Any, path: str = path) -> None:
            tensor = out[0] if isinstance(out, tuple) else out
            calls.append([path, list(tensor.shape[1:])])
        hooks.append(module.register_forward_hook(hook))
    ids = torch.zeros(1, SEQ, dtype=torch.long)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(input_ids=ids, use_cache=False, return_dict=True)
    for h in hooks:
        h.remove()
    main = out.logits if hasattr(out, "logits") else out.last_hidden_state
    entry = {"input": [SEQ], "params": sum(p.numel() for p in model.parameters()),
             "buffers": sum(b.numel() for b in model.buffers()), "flops": counter.get_total_flops(),
             "output": list(main.shape[1:]), "leaf_calls": calls}
    if getattr(out, "pooler_output", None) is not None:
        entry["pooler_output"] = list(out.pooler_output.shape[1:])
    return entry


def module_nodes(imported: Any) -> list[list[Any]]:
    """[path, node] for every leaf call: the import's own pairs, and BERT's attention.output.dense as
    the attention node it is the output projection of."""
    pairs = [[path, node] for path, node in imported.modules]
    out = []
    for path, node in pairs:
        out.append([path, node])
        if path.endswith(".attention.self"):
            out.append([path[: -len("self")] + "output.dense", node])
    return out


def round_trip(name: str) -> dict[str, Any]:
    cls, _, config = MODELS[name]
    truth = measure(build(name, "cpu"))
    imported = import_module(build(name), (SEQ,), name=name, origin=f"transformers:{cls}")
    with open(os.path.join(SPECS, f"hf_{name}.arch"), "w", encoding="utf-8") as f:
        f.write(imported.spec)
    a = analyze(load_text(imported.spec, f"hf_{name}.arch"))
    got = {"params": a.totals.params, "buffers": a.totals.counts.buffers, "flops": a.totals.flops}
    assert got == {k: truth[k] for k in got}, (name, got, {k: truth[k] for k in got})
    assert not a.unknown_ops, name
    nodes = module_nodes(imported)
    assert [[p, list(a.graph.node(i).shape)] for p, i in nodes] == truth["leaf_calls"], name
    entry = {**truth, "class": cls, "config": config, "spec": f"imported/hf_{name}.arch",
             "spec_lines": imported.spec.count("\n"), "blocks": imported.blocks, "nodes": imported.checked.nodes,
             "module_nodes": nodes}
    if name in SMALL:
        report = verify(imported.graph, device="cpu", runs=0, rf=False)
        assert report.ok, (name, report.failures[:3])
        entry["verify"] = {"ok": report.ok, "checks": len(report.checks)}
    else:
        entry["verify"] = {"ok": None, "why": "verified at the small configs (SMALL): a CPU build of the default "
                                              "configs takes minutes on a shared machine"}
    return entry


def refused() -> dict[str, Any]:
    """A config archcalc cannot count exactly stops the import with the unknown-op list: GPT-2 with
    reorder_and_upcast_attn (its attention is a baddbmm in float32, not the eager products)."""
    with torch.device("meta"):
        model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
            n_layer=2, n_embd=64, n_head=4, vocab_size=1000, n_positions=256, bos_token_id=0, eos_token_id=0,
            reorder_and_upcast_attn=True, **EAGER)).eval()
    try:
        import_module(model, (SEQ,), name="gpt2_reorder", origin="transformers:GPT2LMHeadModel")
    except UnknownOpsError as e:
        return {"config": "the small GPT-2 with reorder_and_upcast_attn=True", "message": str(e).splitlines()[:3],
                "unknown": [[op, count] for op, count, _ in e.unknown]}
    raise AssertionError("GPT-2 with reorder_and_upcast_attn imported: archcalc would count it as eager attention")


def main() -> None:
    os.makedirs(SPECS, exist_ok=True)
    models, failed = {}, {}
    for name in sys.argv[1:] or list(MODELS):
        try:
            models[name] = round_trip(name)
            print(f"{name}: ok", file=sys.stderr)
        except ArchcalcError as e:
            failed[name] = str(e).splitlines()[0]
            print(f"{name}: {failed[name]}", file=sys.stderr)
        except AssertionError as e:  # a figure that differs: a bug, recorded so the test names it
            failed[name] = str(e)[:400]
            print(f"{name}: FAILED {failed[name]}", file=sys.stderr)
    out = {
        "meta": {"torch": torch.__version__, "transformers": transformers.__version__,
                 "command": "PYTHONPATH=. /work/refvenv/bin/python tools/hf_reference.py", "seq": SEQ},
        "notes": {
            "figures": "params, buffers: sum of numel over the model's parameters / buffers (GPT-2's lm_head is "
                       "tied to wte: one tensor); flops: FlopCounterMode at batch 1 on the CPU over the "
                       "model's own forward (its mask builders included) with eager attention; leaf_calls: "
                       "[path, output shape without the batch] of every leaf call in forward order",
            "module_nodes": "[path, node id]: the node of the committed spec standing for each leaf call",
            "failed": "models whose import failed or gave a figure other than PyTorch's (empty when all agree)",
            "refused": "a config archcalc cannot count exactly: the import's unknown-op list (no spec written)",
        },
        "models": models,
        "failed": failed,
        "refused": refused(),
    }
    print(json.dumps(out, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
