"""Timing the forward pass: the median latency, throughput and achieved TFLOP/s, and how many runs by default."""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING, Any

from archcalc.pytorch.peaks import Peak
from archcalc.records import record

if TYPE_CHECKING:
    from torch import nn


# (timed runs, warm-ups) when not given. A GPU forward takes milliseconds, so 20 runs cost
# nothing; on a CPU one forward of resnet18 at 64×64 takes ~0.1 s and the warm-ups and
# runs were half of `archcalc verify`'s time there: 3 runs after 1 warm-up give a median.
DEFAULT_RUNS = {"cuda": (20, 3), "cpu": (3, 1)}


def default_runs(device: str) -> tuple[int, int]:
    """(runs, warm-ups) for `device` when not given: 20 after 3 on CUDA, 3 after 1 on CPU."""
    return DEFAULT_RUNS["cuda" if device == "cuda" else "cpu"]


@record
class Timing:
    latency_ms: float  # median of `runs` timed forward passes
    runs: int
    batch: int
    throughput: float  # samples per second
    tflops: float  # archcalc's FLOPs × batch / latency
    peak: Peak | None

    @property
    def peak_share(self) -> float | None:
        return self.tflops / self.peak.tflops if self.peak else None


def time_forward(model: nn.Module, args: tuple[Any, ...], runs: int, warmup: int, flops_per_sample: int,
                 peak: Peak | None) -> Timing:
    """Median latency of `runs` forward passes on `args` after `warmup` ones (synchronised on CUDA)."""
    import torch

    cuda = args[0].device.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(*args)
        sync()
        for _ in range(runs):
            start = time.perf_counter()
            model(*args)
            sync()
            times.append(time.perf_counter() - start)
    latency = statistics.median(times)
    batch = args[0].shape[0]
    tflops = flops_per_sample * batch / latency / 1e12
    return Timing(latency * 1e3, runs, batch, batch / latency, tflops, peak)
