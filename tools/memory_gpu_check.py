#!/usr/bin/env python3
"""Compare archcalc's static inference peak with what CUDA allocates (run on a GPU machine).

    python tools/memory_gpu_check.py vgg16 resnet50 --batch 32
    python tools/memory_gpu_check.py resnet50 --batch 32 --dtype float16 --torchvision

For each spec: archcalc's activation peak (batch B, the dtype's bytes; weights apart) and
torch.cuda.max_memory_allocated() during one no-grad forward pass, minus what was
allocated before the input existed (parameters and buffers), and their ratio. The model
is built from the spec by archcalc.build (or taken from torchvision with --torchvision).

What the two count differently, so a ratio away from 1 is expected where they apply:
archcalc counts every node's output as its own tensor, while PyTorch makes views for
flatten and returns the input itself from dropout in eval (and from in-place ReLUs);
cuDNN's convolution workspace and the caching allocator's rounding (512-byte blocks)
count in max_memory_allocated but not in archcalc.
"""

from __future__ import annotations

import argparse

import torch

import archcalc
from archcalc.passes.analysis import analyze
from archcalc.passes.memory import MemoryOptions
from archcalc.pytorch.build import probe_input

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def build(name: str, torchvision: bool) -> torch.nn.Module:
    if torchvision:
        import torchvision.models as tvm

        kwargs = {"aux_logits": False, "init_weights": False} if name in ("inception_v3", "googlenet") else {}
        return getattr(tvm, name)(weights=None, **kwargs)
    return archcalc.build(name)


def measure(name: str, batch: int, dtype: str, torchvision: bool) -> tuple[int, int, int]:
    """(static peak bytes, measured peak bytes, measured weight bytes)."""
    graph = archcalc.load(name)
    static = analyze(graph, MemoryOptions(dtype, batch)).memory.inference_peak_bytes
    model = build(name, torchvision).to("cuda", DTYPES[dtype]).eval()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    weights = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    with torch.no_grad():
        x = probe_input(graph, batch, "cuda", DTYPES[dtype])
        model(x)
        torch.cuda.synchronize()
    measured = torch.cuda.max_memory_allocated() - weights
    del model, x
    torch.cuda.empty_cache()
    return static, measured, weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("specs", nargs="+")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--dtype", choices=list(DTYPES), default="float32")
    parser.add_argument("--torchvision", action="store_true",
                        help="measure the torchvision model of that name")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("this check needs a CUDA GPU")
    torch.backends.cudnn.benchmark = False
    print(f"{'spec':<20} {'batch':>5} {'static peak':>16} {'cuda peak':>16} {'cuda/static':>11} "
          f"{'weights':>14}")
    for name in args.specs:
        static, measured, weights = measure(name, args.batch, args.dtype, args.torchvision)
        print(f"{name:<20} {args.batch:>5} {static:>16,} {measured:>16,} {measured / static:>11.3f} "
              f"{weights:>14,}")


if __name__ == "__main__":
    main()
