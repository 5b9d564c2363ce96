#!/usr/bin/env python3
"""What the backward pass keeps, measured: every tensor autograd saves in one training forward.

    PYTHONPATH=. /work/refvenv/bin/python tools/saved_tensors_reference.py \
        > tests/reference/saved_tensors_reference.json

For each case (a spec text, built by archcalc's builder, or a torchvision model) the model runs
one forward pass in train mode, with grad enabled, on random input (token ids where an input
feeds embeddings), under `torch.autograd.graph.saved_tensors_hooks`. Every tensor autograd packs
is recorded with the node (spec cases: archcalc's node id; the nodes are run one by one in id
order) or module (torchvision cases) running at the time, its shape, dtype and the storage it
lives in, classified as

- `param` / `buffer`: a parameter or buffer of the module (not activation memory);
- `input N`: the storage of the node's N-th input (a view of it counts as it: the storage is
  what stays alive);
- `output`: the storage of the node's output (an in-place op's output is its input's storage,
  and is classified `input 0`);
- `own`: any other storage (BatchNorm's batch mean and inverse std, max-pool indices, the
  dropout noise, a copy an in-place op keeps).

`unique_bytes` sums the bytes of the distinct storages saved (activations only: no parameter,
no buffer), which is what the saved tensors hold alive between the forward and the backward;
per node, `unique_bytes` those it saved and `new_bytes` those no earlier node had saved (what
archcalc's per-layer figure, `LayerStep.saved_bytes`, is). `saved` lists the packed tensors,
alike ones once with the number of `times` they were packed.
Every case runs at batch 1 and batch 2, so per-sample tensors and per-channel ones (BatchNorm's
statistics) can be told apart. LSTM/GRU/RNN cases run twice: with oneDNN (the CPU default) and
with it disabled (PyTorch's native cell, `native`).

Versions: see `meta` in the output. CPU, float32. The output is deterministic (no date).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from typing import Any

import torch
import torchvision

import archcalc
from archcalc.pytorch.build import build_modules, probe_input

# spec text -> what it checks
CASES: dict[str, str] = {
    "conv_bn_relu_chain": """input 3x16x16
conv3-8, bn, relu
conv3-8/nobias, bn, relu6
maxpool
conv3-8/g8/nobias, bn, relu
conv1-16, relu
avgpool
conv3-16/s2, bn, relu
gap, fc-10
""",
    "activations": """input 4x6x6
a = conv3-4
leaky-relu(@a)
sigmoid(@a)
tanh(@a)
hardswish(@a)
hardsigmoid(@a)
elu(@a)
silu(@a)
gelu(@a)
gelu/tanh(@a)
hardtanh(@a)
prelu(@a)
prelu/c(@a)
softmax(@a)
log-softmax(@a)
relu(@a)
relu6(@a)
""",
    "pools": """input 4x12x12
a = conv3-4
maxpool(@a)
maxpool3/s2/p1(@a)
avgpool(@a)
avgpool3/s1/p1(@a)
gap(@a)
adaptive-avgpool3(@a)
adaptive-avgpool(@a, size=24)
gmp(@a)
adaptive-maxpool(@a, size=2)
maxpool3/s2/same(@a)
lrn(@a)
""",
    "merges_and_tensors": """input 4x6x6
a = conv3-8
b = conv3-8(@a)
g = gap(@b), conv1-8, sigmoid
add(@a, @b)
concat(@a, @b)
mul(@a, @b)
mul(@a, @g)
sub(@a, @b)
div(@a, @b)
abs(@a)
slice(@a, 2, 6)
mean(@a, 2, 3)
sum(@a, -1)
pad(@a, 1, 1, 1, 1)
dropout(@a)
identity(@a)
flatten(@a)
reshape(@a, 8, 36)
permute(@a, 0, 2, 3, 1)
transpose(@a, 1, 2)
u = unsqueeze(@a, 1)
squeeze(@u, 1)
q, k = chunk(@a, 2, dim=1)
""",
    "matmul_and_parameters": """input 6x8 as sequence
x = fc-8
w = parameter(8x5)
s = matmul(@x, @w)
kt = transpose(@x, -1, -2)
att = matmul(@x, @kt)
softmax(@att)
p = parameter(1x6x8)
add(@x, @p)
""",
    "first_and_frozen_fc": """input 16
fc-8, relu
fc-8/frozen, relu
fc-4/nobias
""",
    "first_conv_frozen": """input 3x8x8
conv3-4/frozen, relu
conv3-4, bn/frozen, relu
""",
    "sequence_layers": """input 7
embedding(vocab=50, dim=8)
to-channels, conv3-8, relu, to-sequence
rnn(hidden=8)
gru(hidden=8)
lstm(hidden=8, layers=2)
lstm(hidden=4, bidirectional=true)
last, fc-3
""",
    "lenet5_layers": "lenet5-paper",
}

# built-in specs at a small input (the whole network's saved tensors)
ZOO: dict[str, tuple[int, ...]] = {
    "resnet18": (3, 64, 64),
    "mobilenet_v2": (3, 64, 64),
    "vgg11_bn": (3, 32, 32),
    "densenet121": (3, 64, 64),
    "googlenet": (3, 64, 64),
    "alexnet": (3, 224, 224),
    "lstm-lm": (35,),
}
# torchvision models at the same inputs (inplace ReLUs, their own module code)
TORCHVISION: dict[str, tuple[int, ...]] = {
    "resnet18": (3, 64, 64),
    "mobilenet_v2": (3, 64, 64),
    "vgg11_bn": (3, 32, 32),
    "densenet121": (3, 64, 64),
}


def _storage(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


class Recorder:
    """The saved_tensors_hooks pack hook: each packed tensor with the node running."""

    def __init__(self) -> None:
        self.current: Any = None
        self.packed: list[tuple[Any, torch.Tensor]] = []

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        self.packed.append((self.current, t))
        return t


def _entry(t: torch.Tensor, kind: str) -> dict[str, Any]:
    return {"tensor": kind, "shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", ""),
            "storage_bytes": t.untyped_storage().nbytes()}


def _unique(saved: list[tuple[str, torch.Tensor]]) -> int:
    seen: dict[int, int] = {}
    for kind, t in saved:
        if kind not in ("param", "buffer"):
            seen[_storage(t)] = t.untyped_storage().nbytes()
    return sum(seen.values())


def saved_kind(t: Any, params: set[int], buffers: set[int], ins: list[Any], out: Any) -> str:
    """What a tensor the backward keeps is: a parameter, a buffer, input k of its layer, the
    layer's output, or a tensor of its own."""
    s = _storage(t)
    if s in params:
        return "param"
    if s in buffers:
        return "buffer"
    if any(s == _storage(i) for i in ins):
        return f"input {next(k for k, i in enumerate(ins) if s == _storage(i))}"
    return "output" if s == _storage(out) else "own"


def node_records(graph: Any, per_node: dict[int, list[Any]],
                 node_tensors: dict[int, list[Any]]) -> list[dict[str, Any]]:
    """Per node, what it keeps: its storages' bytes, and those no earlier node kept already."""
    nodes = []
    first: set[int] = set()
    for n in graph:
        if n.type == "input":
            continue
        mine = {_storage(t): t.untyped_storage().nbytes() for kind, t in node_tensors[n.id]
                if kind not in ("param", "buffer")}
        new = {k: v for k, v in mine.items() if k not in first}
        first |= set(mine)
        nodes.append({"id": n.id, "type": n.type, "text": n.text, "saved": _grouped(per_node.get(n.id, [])),
                      "unique_bytes": sum(mine.values()), "new_bytes": sum(new.values())})
    return nodes


def run_spec(spec: str, batch: int, native_rnn: bool, input_shape: tuple[int, ...] | None = None) -> dict[str, Any]:
    graph = archcalc.load(spec, input_shape)
    torch.manual_seed(0)
    modules = build_modules(graph)
    for m in modules.values():
        m.train()
    x = probe_input(graph, batch)
    xs = x if isinstance(x, tuple) else (x,)
    # every module's parameters and buffers: a free parameter read by a matmul is saved as its input
    params = {_storage(p) for m in modules.values() for p in m.parameters()}
    buffers = {_storage(b) for m in modules.values() for b in m.buffers()}
    rec = Recorder()
    values: dict[int, torch.Tensor] = {}
    per_node: dict[int, list[dict[str, Any]]] = defaultdict(list)
    node_tensors: dict[int, list[tuple[str, torch.Tensor]]] = defaultdict(list)
    all_saved: list[tuple[str, torch.Tensor]] = []
    with torch.backends.mkldnn.flags(enabled=not native_rnn), \
            torch.autograd.graph.saved_tensors_hooks(rec.pack, lambda t: t):
        for n in graph:
            if n.type == "input":
                values[n.id] = xs[[i.id for i in graph.input_nodes()].index(n.id)]
                continue
            owner = n.shares if n.shares is not None else n.id
            module = modules[owner]
            ins = [values[i] for i in n.inputs]
            rec.current, start = n.id, len(rec.packed)
            out = module(*ins)
            values[n.id] = out
            for _, t in rec.packed[start:]:
                kind = saved_kind(t, params, buffers, ins, out)
                per_node[n.id].append(_entry(t, kind))
                node_tensors[n.id].append((kind, t))
                all_saved.append((kind, t))
    nodes = node_records(graph, per_node, node_tensors)
    return {"name": graph.name, "batch": batch, "unique_bytes": _unique(all_saved), "nodes": nodes}


def _grouped(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entries alike (kind, shape, dtype, storage) once, with how many times they were packed."""
    out: dict[str, dict[str, Any]] = {}
    for e in entries:
        key = json.dumps(e, sort_keys=True)
        out.setdefault(key, {**e, "times": 0})["times"] += 1
    return list(out.values())


def run_torchvision(name: str, shape: tuple[int, ...], batch: int) -> dict[str, Any]:
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).train()
    rec = Recorder()
    params = {_storage(p) for p in model.parameters()} | {_storage(b) for b in model.buffers()}
    x = torch.randn(batch, *shape)
    with torch.autograd.graph.saved_tensors_hooks(rec.pack, lambda t: t):
        model(x)
    saved = [("param" if _storage(t) in params else "activation", t) for _, t in rec.packed]
    return {"model": f"torchvision.models.{name}(weights=None)", "input": list(shape), "batch": batch,
            "unique_bytes": _unique(saved), "packed": len(saved)}


def main() -> None:
    out: dict[str, Any] = {
        "meta": {
            "command": "PYTHONPATH=. /work/refvenv/bin/python tools/saved_tensors_reference.py "
                       "> tests/reference/saved_tensors_reference.json",
            "python": sys.version.split()[0], "torch": torch.__version__,
            "torchvision": torchvision.__version__, "device": "cpu", "dtype": "float32",
            "how": "one forward in train mode, grad enabled, under torch.autograd.graph.saved_tensors_hooks; "
                   "spec models built by archcalc.pytorch.build.build_modules and run node by node in id order",
        },
        "cases": {}, "zoo": {}, "torchvision": {},
    }
    for name, spec in CASES.items():
        rnn = "lstm" in spec or "gru" in spec or "rnn(" in spec
        for batch in (1, 2):
            print(f"[saved] {name} batch {batch}", file=sys.stderr)
            out["cases"].setdefault(name, {"spec": spec})[f"batch_{batch}"] = run_spec(spec, batch, False)
            if rnn:
                out["cases"][name][f"batch_{batch}_native"] = run_spec(spec, batch, True)
    for name, shape in ZOO.items():
        for batch in (1, 2):
            print(f"[saved] zoo {name} batch {batch}", file=sys.stderr)
            res = run_spec(name, batch, name == "lstm-lm", shape)
            out["zoo"].setdefault(name, {"input": list(shape), "native_rnn": name == "lstm-lm"})[
                f"batch_{batch}"] = res
    for name, shape in TORCHVISION.items():
        for batch in (1, 2):
            print(f"[saved] torchvision {name} batch {batch}", file=sys.stderr)
            out["torchvision"].setdefault(name, {})[f"batch_{batch}"] = run_torchvision(name, shape, batch)
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
