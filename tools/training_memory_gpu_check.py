#!/usr/bin/env python3
"""Compare archcalc's training-step memory with what CUDA allocates over a real training step.

    python tools/training_memory_gpu_check.py resnet50 mobilenet_v2 vgg16 densenet121 --batch 32
    python tools/training_memory_gpu_check.py resnet50 --batch 32 --optimizer adamw --precision bf16
    python tools/training_memory_gpu_check.py vgg16 --batch 16 --checkpoint 4
    python tools/training_memory_gpu_check.py lstm-lm examples/gpt2-2x128 --batch 64 --optimizer sgd

Needs a CUDA GPU (run it where one is lent). For each spec it builds archcalc's model on the GPU
in train mode and runs `--warmup` training steps (so the optimizer state exists), then one
measured step:

    optimizer.zero_grad(set_to_none=True); loss = model(x).float().sum(); loss.backward(); optimizer.step()

With `--precision fp16|bf16` it is classic mixed precision, as archcalc counts it: the model's
weights in half precision, an fp32 master copy of each trained weight that the optimizer
updates (its state fp32 too), half-precision gradients copied into the masters' fp32 gradients
one tensor at a time, the masters copied back after the step. With `--checkpoint N` the network
runs segment by segment, every segment but the last under torch.utils.checkpoint (non
reentrant), cut where archcalc cuts it (`Training.segments`).

Printed per spec, in bytes:

- `static`: archcalc's total (weights + master copies + gradients + optimizer state + buffers +
  kept activations + gradients in flight), and `cuda`: torch.cuda.max_memory_allocated() over
  the measured step (everything allocated, the input batch included), and their ratio;
- `kept`: archcalc's activations kept for the backward pass, and `fwd`: what the forward pass
  added to memory_allocated() (the saved tensors and the output), and their ratio.

What the two count differently, so ratios away from 1 are expected where they apply: cuDNN's
workspaces and its BatchNorm reserve space, the caching allocator's 512-byte rounding, the
optimizer's temporaries (foreach Adam allocates a few tensors the size of the parameters),
cuDNN's RNN workspace instead of the native cell's saved tensors (see docs/conventions.md), and
that archcalc's total counts every term at once while gradients appear as saved tensors are
freed. The ratios go into docs/verification.md.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

import archcalc
from archcalc.passes.analysis import analyze
from archcalc.passes.training import TrainingOptions, parse_checkpoint
from archcalc.pytorch.build import build_modules, probe_input

HALF = {"fp16": torch.float16, "bf16": torch.bfloat16}
OPTIMIZERS = {
    "sgd": lambda ps: torch.optim.SGD(ps, lr=1e-3),
    "momentum": lambda ps: torch.optim.SGD(ps, lr=1e-3, momentum=0.9),
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-4),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-4),
}


class Runner(torch.nn.Module):
    """archcalc's node modules run one by one in id order, each tensor freed after its last use;
    with segments, every segment but the last under torch.utils.checkpoint."""

    def __init__(self, graph: Any, segments: tuple[Any, ...]) -> None:
        super().__init__()
        self.graph = graph
        self.nodes = torch.nn.ModuleDict({str(k): m for k, m in build_modules(graph).items()})
        self.segments = [(s.first, s.last) for s in segments] or [(0, len(graph) - 1)]
        self.last_use = graph.last_use()
        self.outputs = {n.id for n in graph.outputs()}

    def _run(self, first: int, last: int, values: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        for n in list(self.graph)[first:last + 1]:
            if n.type == "input":
                continue
            module = self.nodes[str(n.shares if n.shares is not None else n.id)]
            values[n.id] = module(*(values[i] for i in n.inputs))
            for i in set(n.inputs):
                if self.last_use[i] == n.id and i not in self.outputs:
                    del values[i]
        return values

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        from torch.utils.checkpoint import checkpoint

        inputs = {n.id: x for n, x in zip(self.graph.input_nodes(), xs)}
        values: dict[int, torch.Tensor] = dict(inputs)
        for k, (first, last) in enumerate(self.segments):
            if k == len(self.segments) - 1:
                values = self._run(first, last, values)
                continue
            boundary = first - 1 if k else None

            def segment(b: Any, *given: torch.Tensor, first: int = first, last: int = last,
                        boundary: int | None = boundary) -> torch.Tensor:
                local = {n.id: x for n, x in zip(self.graph.input_nodes(), given)}
                if boundary is not None:
                    local[boundary] = b
                return self._run(first, last, local)[last]

            b = values.pop(boundary) if boundary is not None else None
            values[last] = checkpoint(segment, b, *inputs.values(), use_reentrant=False)
        return values[len(self.graph) - 1]


def measure(spec: str, batch: int, optimizer: str, precision: str, checkpoint: int | str | None,
            warmup: int) -> dict[str, int]:
    graph = archcalc.load(spec)
    options = TrainingOptions(optimizer, precision, checkpoint, batch, "cuda")
    step = analyze(graph, training_options=options).step
    torch.manual_seed(0)
    model = Runner(graph, step.segments).cuda().train()
    trained = [p for p in model.parameters() if p.requires_grad]
    dtype = HALF.get(precision)
    if dtype is not None:
        model = model.to(dtype)
        trained = [p for p in model.parameters() if p.requires_grad]
        masters = [p.detach().float().clone().requires_grad_(True) for p in trained]
        opt = OPTIMIZERS[optimizer](masters)
    else:
        masters = []
        opt = OPTIMIZERS[optimizer](trained)
    x = probe_input(graph, batch, "cuda", dtype or torch.float32)
    xs = x if isinstance(x, tuple) else (x,)

    def one_step(record: dict[str, int] | None = None) -> None:
        opt.zero_grad(set_to_none=True)
        for p in trained:
            p.grad = None
        before = torch.cuda.memory_allocated()
        loss = model(*xs).float().sum()
        if record is not None:
            torch.cuda.synchronize()
            record["fwd"] = torch.cuda.memory_allocated() - before
        loss.backward()
        for p, m in zip(trained, masters):  # half gradients into the fp32 masters, one at a time
            m.grad = p.grad.float()
            p.grad = None
        opt.step()
        with torch.no_grad():
            for p, m in zip(trained, masters):
                p.copy_(m)

    for _ in range(warmup):
        one_step()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    record: dict[str, int] = {}
    one_step(record)
    torch.cuda.synchronize()
    record["cuda"] = torch.cuda.max_memory_allocated()
    record["static"] = step.total_bytes
    record["kept"] = step.kept_bytes
    return record  # the model, optimizer and batch go with this frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("specs", nargs="+")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--optimizer", choices=list(OPTIMIZERS), default="adam")
    parser.add_argument("--precision", choices=["fp32", "fp16", "bf16"], default="fp32")
    parser.add_argument("--checkpoint", default=None, help="segments (2 or more) or 'sqrt'")
    parser.add_argument("--warmup", type=int, default=2, help="training steps before the measured one")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("this check needs a CUDA GPU")
    checkpoint = parse_checkpoint(args.checkpoint)
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, optimizer {args.optimizer}, "
          f"precision {args.precision}, checkpoint {checkpoint}, batch {args.batch}")
    print(f"{'spec':<22} {'static':>15} {'cuda':>15} {'cuda/static':>11} {'kept':>15} {'fwd':>15} "
          f"{'fwd/kept':>9}")
    for name in args.specs:
        r = measure(name, args.batch, args.optimizer, args.precision, checkpoint, args.warmup)
        torch.cuda.empty_cache()
        print(f"{name:<22} {r['static']:>15,} {r['cuda']:>15,} {r['cuda'] / r['static']:>11.3f} "
              f"{r['kept']:>15,} {r['fwd']:>15,} {r['fwd'] / r['kept']:>9.3f}")


if __name__ == "__main__":
    main()
