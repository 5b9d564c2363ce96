"""The device a model runs on: its name, and its dense peak throughput for '% of peak'."""

from __future__ import annotations

import platform
import re
from typing import Any

from archcalc.records import record


@record
class Peak:
    """A device's dense peak throughput for one math mode, and where the number comes from."""

    device: str
    mode: str  # FP32, TF32, BF16, FP16, or "given" (--peak-tflops)
    tflops: float


# Dense peaks in TFLOP/s (no 2:4 sparsity: the datasheets' starred figures are halved).
# Sources: NVIDIA datasheets — H100 (nvidia.com/en-us/data-center/h100, SXM / PCIe / NVL
# columns), H200 (nvidia.com/en-us/data-center/h200, SXM / NVL), A100 80GB SXM & PCIe
# (nvidia.com/en-us/data-center/a100), L4 (nvidia.com/en-us/data-center/l4), T4
# (nvidia.com/en-us/data-center/tesla-t4: FP32 8.1, mixed-precision FP16 65; Turing has
# no TF32 or BF16 tensor cores), and the NVIDIA Ada Lovelace architecture whitepaper
# v1.1, Appendix A (GeForce RTX 4090; tensor figures with FP32 accumulate).
# Regex on torch.cuda.get_device_name(), first match wins.
PEAKS: tuple[tuple[str, str, dict[str, float]], ...] = (
    (r"H200.*NVL", "H200 NVL", {"FP32": 60.0, "TF32": 417.5, "BF16": 835.5, "FP16": 835.5}),
    (r"H200", "H200 SXM", {"FP32": 67.0, "TF32": 494.7, "BF16": 989.4, "FP16": 989.4}),
    (r"H100.*NVL", "H100 NVL", {"FP32": 60.0, "TF32": 417.5, "BF16": 835.5, "FP16": 835.5}),
    (r"H100.*PCIe", "H100 PCIe", {"FP32": 51.2, "TF32": 378.0, "BF16": 756.5, "FP16": 756.5}),
    (r"H100", "H100 SXM", {"FP32": 67.0, "TF32": 494.7, "BF16": 989.4, "FP16": 989.4}),
    (r"A100", "A100", {"FP32": 19.5, "TF32": 156.0, "BF16": 312.0, "FP16": 312.0}),
    (r"\bL4\b", "L4", {"FP32": 30.3, "TF32": 60.0, "BF16": 121.0, "FP16": 121.0}),
    (r"\bT4\b", "T4", {"FP32": 8.1, "FP16": 65.0}),
    (r"RTX 4090", "RTX 4090", {"FP32": 82.6, "TF32": 82.6, "BF16": 165.2, "FP16": 165.2}),
)


def find_peak(device_name: str, mode: str) -> Peak | None:
    """The dense peak of a known GPU in one math mode; None for CPUs and unknown GPUs."""
    for pattern, label, peaks in PEAKS:
        if re.search(pattern, device_name):
            if mode == "TF32" and "TF32" not in peaks:  # no TF32 units: float32 runs as FP32
                mode = "FP32"
            return Peak(label, mode, peaks[mode]) if mode in peaks else None
    return None


def math_mode(torch_dtype: Any, device: str) -> str:
    """Which peak applies: float32 convolutions run as TF32 on cuDNN unless disabled."""
    import torch

    if torch_dtype == torch.bfloat16:
        return "BF16"
    if torch_dtype == torch.float16:
        return "FP16"
    if device == "cuda" and torch.backends.cudnn.allow_tf32:
        return "TF32"
    return "FP32"


def device_peak(device: str, torch_dtype: Any, given: float | None) -> Peak | None:
    """The peak to compare against: the one given (--peak-tflops), else the table's for a GPU."""
    name = device_name(device)
    if given is not None:
        return Peak(name, "given", given)
    return find_peak(name, math_mode(torch_dtype, device)) if device == "cuda" else None


def device_name(device: str) -> str:
    """'NVIDIA H100 80GB HBM3' for CUDA, the CPU's model name for "cpu"."""
    import torch

    if device == "cuda":
        return str(torch.cuda.get_device_name())
    return _cpu_name()


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"
