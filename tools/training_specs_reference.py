#!/usr/bin/env python3
"""FlopCounterMode over one training step of models archcalc builds from spec texts.

    PYTHONPATH=. /work/refvenv/bin/python tools/training_specs_reference.py \
        > tests/reference/training_specs_reference.json

Complements training_reference.json (torchvision and Hugging Face models) with the cases its
models do not have: GRU and RNN, stacked and bidirectional recurrent layers, a recurrent layer
after a trainable or a frozen embedding, a tied output layer, layers applied twice with shared
weights, a matmul with a free parameter, frozen layers in a chain, depthwise and grouped
convolutions, LeNet-5's connection-table convolution (grouped convolutions inside), and the
two-block GPT-2 of specs/examples/gpt2-2x128.arch (the figures training_reference.json has for
Hugging Face's model of it).

Each spec is built with archcalc's builder (`archcalc.pytorch.build.build`), put in train mode
and run once, batch 1, float32, on CPU with oneDNN disabled (PyTorch's native recurrent cell,
which FlopCounterMode sees), inside one FlopCounterMode: forward, then `loss.backward()` with
loss = the sum of every output. `forward` is read after the forward, `backward` is the rest.
`by_op` splits both by aten op. The output is deterministic (no date).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

import archcalc
from archcalc.pytorch.build import build, probe_input

CASES: dict[str, str] = {
    "gru_first": "input 7x8 as sequence\ngru(hidden=16)\n",
    "gru_after_conv": "input 7x8 as sequence\nfc-8\ngru(hidden=16, layers=2)\n",
    "rnn_bidirectional_2_layers": "input 6x8 as sequence\nfc-8\nrnn(hidden=12, layers=2, bidirectional=true)\n",
    "rnn_relu_first": "input 6x8 as sequence\nrnn/relu(hidden=12)\n",
    "lstm_bidirectional_after_embedding": ("input 9\nembedding(vocab=40, dim=8)\n"
                                           "lstm(hidden=8, bidirectional=true)\nlast, fc-3\n"),
    "lstm_after_frozen_embedding": "input 9\nembedding/frozen(vocab=40, dim=8)\nlstm(hidden=8, layers=2)\nfc-5\n",
    "lstm_frozen_after_embedding": "input 9\nembedding(vocab=40, dim=8)\nlstm/frozen(hidden=8)\nfc-5\n",
    "tied_output": "input 10\nembedding(vocab=30, dim=8) as wte\nfc-8, relu\nfc-30/nobias(tie=wte)\n",
    "shared_twice": "input 3x8x8\ntower = conv3-4, relu as tw\ntw\nconv1-2\n",
    "matmul_free_parameter": "input 6x8 as sequence\nx = fc-8\nw = parameter(8x5)\nmatmul(@x, @w)\n",
    "attention_products": ("input 6x8 as sequence\nx = fc-8\nq = fc-8(@x)\nk = fc-8(@x)\nv = fc-8(@x)\n"
                           "kt = transpose(@k, -1, -2)\natt = matmul(@q, @kt)\np = softmax(@att)\n"
                           "matmul(@p, @v)\n"),
    "frozen_chain": "input 3x8x8\nconv3-4, relu\nconv3-4/frozen, bn/frozen, relu\nconv3-4/g2, relu\nfc-3/frozen\n",
    "grouped_and_depthwise": "input 8x8x8\nconv3-16/g4, bn, relu\nconv3-16/g16, relu6\nconv1-8/g2\n",
    "first_depthwise": "input 8x8x8\nconv3-8/g8\n",
    "lenet5_paper": "lenet5-paper",
    "gpt2_2x128": "examples/gpt2-2x128",
}


def run(spec: str) -> dict[str, Any]:
    graph = archcalc.load(spec)
    torch.manual_seed(0)
    model = build(graph).train()
    x = probe_input(graph, 1)
    xs = x if isinstance(x, tuple) else (x,)
    counter = FlopCounterMode(display=False)
    with torch.backends.mkldnn.flags(enabled=False), counter:
        out = model(*xs)
        forward = counter.get_total_flops()
        forward_by_op = {str(k): int(v) for k, v in counter.get_flop_counts()["Global"].items()}
        outs = out if isinstance(out, tuple) else (out,)
        sum(o.sum() for o in outs).backward()
    total = counter.get_total_flops()
    by_op = {str(k): int(v) for k, v in counter.get_flop_counts()["Global"].items()}
    return {"name": graph.name, "forward": int(forward), "backward": int(total - forward), "train": int(total),
            "by_op": {"forward": forward_by_op,
                      "backward": {k: v - forward_by_op.get(k, 0) for k, v in by_op.items()
                                   if v - forward_by_op.get(k, 0)}}}


def main() -> None:
    out: dict[str, Any] = {
        "meta": {
            "command": "PYTHONPATH=. /work/refvenv/bin/python tools/training_specs_reference.py "
                       "> tests/reference/training_specs_reference.json",
            "python": sys.version.split()[0], "torch": torch.__version__,
            "how": "archcalc.pytorch.build.build(spec), model.train(), batch 1, float32, CPU, "
                   "torch.backends.mkldnn disabled; forward and (sum of outputs).backward() inside one "
                   "FlopCounterMode",
        },
        "cases": {},
    }
    for name, spec in CASES.items():
        print(f"[training-specs] {name}", file=sys.stderr)
        out["cases"][name] = {"spec": spec, **run(spec)}
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
