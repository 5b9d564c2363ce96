#!/usr/bin/env python3
"""One training step of the layer types that go up in resolution, measured with PyTorch.

    PYTHONPATH=. /work/refvenv/bin/python tools/zoo14_training_reference.py \
        > tests/reference/zoo14_training_reference.json

The layer types of issue 14 (convtranspose, upsample in every mode, pixel shuffle and unshuffle,
max unpooling, crop, instance norm, squeeze-excitation) and small networks made of them, as spec
texts built by archcalc's builder. Two measurements per case, with the machinery of the two
reference tools main has (imported from them, so the method is theirs exactly):

- `fcm`: tools/training_specs_reference.py's `run`: train mode, batch 1, float32, CPU, oneDNN
  off, forward and (sum of outputs).backward() inside one FlopCounterMode (`forward`,
  `backward`, `train`, and both split by aten op);
- `saved`: tools/saved_tensors_reference.py's `run_spec` (copied here as `run_spec_indexed`, which
  also passes a max pool's indices to the unpool that reads them): one forward in train mode under
  torch.autograd.graph.saved_tensors_hooks, node by node, every packed tensor classified as a
  parameter, a buffer, an input of the node, its output or its own; at batch 1 and batch 2.

A layer whose input should need a gradient comes after a `position-bias` (trained, no products),
as in tests/test_training.py's hand cases; one without it is the first layer (no input
gradient). The output is deterministic (no date).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from collections import defaultdict  # noqa: E402

import torch  # noqa: E402
from saved_tensors_reference import Recorder, _entry, _storage, _unique, node_records, saved_kind  # noqa: E402
from training_specs_reference import run  # noqa: E402

import archcalc  # noqa: E402
from archcalc.pytorch.build import build_modules, index_sources, probe_input  # noqa: E402

CASES: dict[str, str] = {
    "convtranspose_first": "input 4x5x5\nconvtranspose3-6/s2/p1/op1\n",
    "convtranspose_input_grad": "input 4x5x5\nposition-bias\nconvtranspose3-6/s2/p1/op1\n",
    "convtranspose_grouped_input_grad": "input 4x5x5\nposition-bias\nconvtranspose3-6/s2/g2/nobias\n",
    "convtranspose_depthwise_first": "input 4x5x5\nconvtranspose4-4/s2/p1/g4\n",
    "convtranspose_dilated_frozen": "input 4x5x5\nposition-bias\nconvtranspose3-6/s2/d2/frozen\n",
    "convtranspose_1d_3d": ("input 4x6x6x6\nposition-bias\nconvtranspose2-3/s2\n"
                            "x = reshape(3, 12, 144)\nconvtranspose3-5/s3/p1(@x)\n"),
    "decoder_chain": ("input 8x4x4\nconvtranspose3-6/s2/p1/op1, bn, relu\nconvtranspose4-4/s2/p1, relu\n"
                      "conv3-2, sigmoid\n"),
    "upsample_modes": ("input 3x5x5\na = position-bias\nupsample2(@a)\nupsample(@a, scale=1.5, mode=bilinear)\n"
                       "upsample(@a, size=9x9, mode=bicubic)\nupsample(@a, size=8x11, mode=bilinear, align=true)\n"
                       "upsample(@a, scale=2, mode=nearest-exact)\n"),
    "upsample_after_conv": "input 3x6x6\nconv3-4\nupsample2/bilinear\nconv3-2\n",
    "upsample_1d_3d": ("input 2x4x4x4\na = position-bias\nupsample(@a, scale=2, mode=trilinear)\n"
                       "b = reshape(@a, 2, 64)\nupsample(@b, scale=3, mode=linear)\n"),
    "upsample_to_a_reference": "input 3x8x8\na = conv3-4\nb = maxpool(@a), conv3-4\nupsample(@b, @a, mode=bilinear)\n",
    "pixel_shuffle": "input 8x4x4\nconv3-16\npixel-shuffle(2)\nconv3-4\npixel-unshuffle(2)\n",
    "maxunpool": "input 3x9x9\nconv3-4\np = maxpool\nx = conv3-4\nmaxunpool(@x, @p)\nconv3-2\n",
    "maxunpool_pool_first": "input 3x9x9\np = maxpool\nx = conv3-3\nmaxunpool(@x, @p)\nconv3-2\n",
    "crop_and_concat": ("input 2x12x12\na = conv3-4/p0\nb = maxpool, conv3-4/p0\nu = convtranspose2-4/s2(@b)\n"
                        "c = crop(@a, @u)\nconcat(@c, @u), conv3-2/p0\n"),
    "crop_to_a_size": "input 2x9x9\nposition-bias\ncrop(size=5x5)\nconv1-3\n",
    "instancenorm_plain": "input 3x6x6\nconv3-4\ninstancenorm\nrelu\n",
    "instancenorm_affine": "input 3x6x6\nconv3-4\ninstancenorm/affine\nrelu\n",
    "instancenorm_track": "input 3x6x6\nconv3-4\ninstancenorm/affine/track\nrelu\n",
    "instancenorm_track_plain": "input 3x6x6\nconv3-4\ninstancenorm/track\nrelu\n",
    "instancenorm_first": "input 3x6x6\ninstancenorm/affine\n",
    "conv_autoencoder": "conv_autoencoder",
    "se_relu_sigmoid": "input 16x5x5\nconv3-16\nse-8\n",
    "se_hardsigmoid": "input 16x5x5\nconv3-16\nse-8/hardsigmoid\n",
    "se_silu_first": "input 16x5x5\nse-4/silu\n",
    "se_frozen_input_grad": "input 16x5x5\nposition-bias\nsqueeze-excitation/frozen(squeeze=8)\n",
    "se_frozen_after_conv": "input 16x5x5\nconv3-16\nse-8/frozen/hardsigmoid\n",
    "se_block_by_hand": ("input 16x5x5\na = conv3-16\ng = gap(@a), conv1-8, relu, conv1-16, hardsigmoid\n"
                         "mul(@a, @g)\n"),
}
def run_spec_indexed(spec: str, batch: int, native_rnn: bool = False,
                     input_shape: tuple[int, ...] | None = None) -> dict[str, Any]:
    """saved_tensors_reference.run_spec, line for line, but a max pool an unpool reads returns
    (values, indices): its consumers get the values, the unpool the indices (as the built model)."""
    graph = archcalc.load(spec, input_shape)
    torch.manual_seed(0)
    modules = build_modules(graph)
    for m in modules.values():
        m.train()
    x = probe_input(graph, batch)
    xs = x if isinstance(x, tuple) else (x,)
    # every module's parameters and buffers: a free parameter read by a matmul is saved as its input
    sources = index_sources(graph)  # max pools an unpool reads: they return (values, indices)
    params = {_storage(p) for m in modules.values() for p in m.parameters()}
    buffers = {_storage(b) for m in modules.values() for b in m.buffers()}
    rec = Recorder()
    values: dict[int, torch.Tensor] = {}
    indices: dict[int, torch.Tensor] = {}
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
            ins = [indices[i] if k == n.layer.index_input else values[i] for k, i in enumerate(n.inputs)]
            rec.current, start = n.id, len(rec.packed)
            out = module(*ins)
            if n.id in sources:
                out, indices[n.id] = out
            values[n.id] = out
            for _, t in rec.packed[start:]:
                kind = saved_kind(t, params, buffers, ins, out)
                per_node[n.id].append(_entry(t, kind))
                node_tensors[n.id].append((kind, t))
                all_saved.append((kind, t))
    nodes = node_records(graph, per_node, node_tensors)
    return {"name": graph.name, "batch": batch, "unique_bytes": _unique(all_saved), "nodes": nodes}


# torchvision.ops.SqueezeExcitation(C, S, activation, scale_activation) on a C×5×5 input
TORCHVISION_SE: dict[str, tuple[int, int, str, str]] = {
    "se_16_8_relu_sigmoid": (16, 8, "ReLU", "Sigmoid"),
    "se_16_8_relu_hardsigmoid": (16, 8, "ReLU", "Hardsigmoid"),
    "se_16_4_silu_sigmoid": (16, 4, "SiLU", "Sigmoid"),
}


def torchvision_se(c: int, s: int, act: str, gate: str) -> dict[str, Any]:
    """torchvision's own module: parameters by name, leaf modules in call order with their output
    shapes, FlopCounterMode over forward and backward (the input needing a gradient)."""
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode
    from torchvision.ops import SqueezeExcitation

    torch.manual_seed(0)
    m = SqueezeExcitation(c, s, getattr(nn, act), getattr(nn, gate)).train()
    calls: list[dict[str, Any]] = []
    for name, leaf in m.named_modules():
        if not list(leaf.children()):
            leaf.register_forward_hook(lambda mod, i, o, name=name: calls.append(
                {"name": name, "class": type(mod).__name__, "shape": list(o.shape[1:])}))
    x = torch.randn(1, c, 5, 5, requires_grad=True)
    counter = FlopCounterMode(display=False)
    with counter:
        y = m(x)
        forward = counter.get_total_flops()
        y.sum().backward()
    return {"module": f"torchvision.ops.SqueezeExcitation({c}, {s}, nn.{act}, nn.{gate})", "input": [c, 5, 5],
            "params": sum(p.numel() for p in m.parameters()),
            "state_dict": {k: list(v.shape) for k, v in m.state_dict().items()},
            "leaf_calls": calls, "forward_flops": int(forward), "train_flops": int(counter.get_total_flops())}


def main() -> None:
    out: dict[str, Any] = {
        "meta": {
            "command": "PYTHONPATH=. /work/refvenv/bin/python tools/zoo14_training_reference.py "
                       "> tests/reference/zoo14_training_reference.json",
            "python": sys.version.split()[0], "torch": torch.__version__,
            "how": "fcm: tools/training_specs_reference.py's run (FlopCounterMode over forward and "
                   "(sum of outputs).backward(), train mode, batch 1, float32, CPU, oneDNN off); saved: "
                   "tools/saved_tensors_reference.py's run_spec (torch.autograd.graph.saved_tensors_hooks over "
                   "one train-mode forward, node by node), batch 1 and 2",
        },
        "cases": {},
    }
    for name, spec in CASES.items():
        print(f"[zoo14-training] {name}", file=sys.stderr)
        out["cases"][name] = {"spec": spec, "fcm": run(spec),
                              "batch_1": run_spec_indexed(spec, 1), "batch_2": run_spec_indexed(spec, 2)}
    out["torchvision_se"] = {name: torchvision_se(*args) for name, args in TORCHVISION_SE.items()}
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
