"""Check archcalc's static figures against the model PyTorch builds from the same spec.

`verify(graph)` builds the spec (`torch_build.build`), runs one forward pass on random
input (token ids below the vocabulary where the input feeds embeddings) and compares,
per node and in total: output shapes (forward hooks), parameters and buffers (`numel`
of each module's tensors) and FLOPs (`FlopCounterMode`, per module). Then it times the
forward pass. Every figure is kept with both values, so a mismatch says what archcalc
claimed and what torch measured.
"""

from __future__ import annotations

import platform
import re
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from archcalc.errors import DeviceMemoryError, UsageError, VerifyError
from archcalc.graph import LayerGraph
from archcalc.passes.analysis import Analysis, analyze
from archcalc.pytorch.build import build, class_name, module_names, output_order, probe_input, require_torch, where

if TYPE_CHECKING:
    from torch import nn

Value = int | tuple[int, ...]


# -- records ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One figure compared: archcalc's value against torch's."""

    what: str  # shape, params, weights, biases, buffers, flops, rf
    scope: str  # a module path, or "total"
    node: int | None  # None for totals
    archcalc: Value
    torch: Value
    text: str = ""  # the spec token of the node

    @property
    def ok(self) -> bool:
        return self.archcalc == self.torch


@dataclass(frozen=True)
class Peak:
    """A device's dense peak throughput for one math mode, and where the number comes from."""

    device: str
    mode: str  # FP32, TF32, BF16, FP16, or "given" (--peak-tflops)
    tflops: float


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class VerifyReport:
    spec: str
    device: str  # "cpu" or "cuda"
    device_name: str
    torch_version: str
    dtype: str
    batch: int
    checks: tuple[Check, ...]
    timing: Timing | None

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)

    @property
    def passed(self) -> int:
        return sum(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        data["passed"], data["total"] = self.passed, len(self.checks)
        for check, raw in zip(self.checks, data["checks"], strict=True):
            raw["ok"] = check.ok
        if self.timing is not None:
            data["timing"]["peak_share"] = self.timing.peak_share
        return data


# -- device peaks -------------------------------------------------------------------------------

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


# -- the checks -----------------------------------------------------------------------------------

DTYPES = ("float32", "float16", "bfloat16", "float64")


def default_device() -> str:
    torch = require_torch()
    return "cuda" if torch.cuda.is_available() else "cpu"


def verify(
    graph: LayerGraph,
    device: str | None = None,
    batch: int = 1,
    dtype: str = "float32",
    *,
    runs: int = 20,
    warmup: int = 3,
    peak_tflops: float | None = None,
    rf: bool = True,
) -> VerifyReport:
    """Build `graph` on `device`, run it on random input and compare every figure.

    `runs=0` skips the timing, `rf=False` the receptive-field check (a float64 forward
    and one backward per checked node; never run on token ids, which have no gradient).
    A CUDA out-of-memory error becomes DeviceMemoryError.
    """
    torch = require_torch()
    device = device or default_device()
    torch_dtype = _torch_dtype(dtype)
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"CUDA is not available to this torch ({torch.__version__}); use --device cpu")
    if batch < 1:
        raise UsageError(f"the batch size must be at least 1, not {batch}")
    analysis = analyze(graph)
    try:
        return _verify(graph, analysis, device, batch, torch_dtype, runs, warmup, peak_tflops, rf)
    except torch.cuda.OutOfMemoryError:
        raise DeviceMemoryError(
            f"CUDA ran out of memory verifying '{graph.name}' at batch size {batch}; "
            f"try a smaller batch (--batch {max(1, batch // 2)}) or a smaller --input"
        ) from None


def _torch_dtype(name: str) -> Any:
    torch = require_torch()
    if isinstance(name, torch.dtype):
        return name
    if name not in DTYPES:
        raise UsageError(f"unknown dtype '{name}' (one of {', '.join(DTYPES)})")
    return getattr(torch, name)


def _verify(graph: LayerGraph, analysis: Analysis, device: str, batch: int, torch_dtype: Any,
            runs: int, warmup: int, peak_tflops: float | None, rf: bool) -> VerifyReport:
    import torch

    model = build(graph).to(device=device, dtype=torch_dtype).eval()
    x = probe_input(graph, batch, device, torch_dtype)
    names = module_names(graph)
    shapes, flops, outputs = _run_once(graph, model, names, x)
    checks = [
        *_node_checks(graph, analysis, model, names, shapes, flops, batch),
        *_total_checks(graph, analysis, model, outputs, flops, batch),
        *(receptive_field_checks(graph, analysis, device) if rf else []),
    ]
    timing = None
    if runs > 0:
        peak = _peak(device, torch_dtype, peak_tflops)
        timing = time_forward(model, x, runs, warmup, analysis.totals.flops, peak)
    return VerifyReport(graph.name, device, device_name(device), torch.__version__, str(torch_dtype).replace(
        "torch.", ""), batch, tuple(checks), timing)


def _run_once(graph: LayerGraph, model: nn.Module, names: dict[int, str],
              x: Any) -> tuple[dict[int, tuple[int, ...]], dict[str, int], tuple[Any, ...]]:
    """One forward pass under FlopCounterMode with a hook on every node's module."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    shapes: dict[int, tuple[int, ...]] = {}
    with _hooks(graph, model, names, shapes) as current, FlopCounterMode(display=False) as counter:
        try:
            with torch.no_grad():
                out = model(x)
        except torch.cuda.OutOfMemoryError:
            raise
        except (RuntimeError, ValueError) as e:
            node = graph.node(current[-1]) if current else graph.input
            raise VerifyError(f"{where(graph, node)}: torch fails on '{node.text}': {e}") from e
    prefix = type(model).__name__ + "."
    per_module = {k[len(prefix):]: sum(v.values()) for k, v in counter.get_flop_counts().items()
                  if k.startswith(prefix)}
    per_module["total"] = counter.get_total_flops()
    outputs = out if isinstance(out, tuple) else (out,)
    return shapes, per_module, tuple(tuple(o.shape) for o in outputs)


@contextmanager
def _hooks(graph: LayerGraph, model: nn.Module, names: dict[int, str],
           shapes: dict[int, tuple[int, ...]]) -> Iterator[list[int]]:
    """Record each node's output shape; `current` names the node running (for errors)."""
    current: list[int] = []
    handles = []
    for node_id, path in names.items():
        module = model.get_submodule(path)

        def pre(_m: Any, _a: Any, node_id: int = node_id) -> None:
            current.append(node_id)

        def post(_m: Any, _a: Any, out: Any, node_id: int = node_id) -> None:
            shapes[node_id] = tuple(out.shape)

        handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    try:
        yield current
    finally:
        for h in handles:
            h.remove()


def _per_sample(shape: tuple[int, ...], batch: int) -> tuple[int, ...]:
    """torch's shape without the batch axis (kept whole if the batch axis is wrong)."""
    return shape[1:] if shape and shape[0] == batch else shape


def _tensor_counts(module: nn.Module) -> tuple[int, int, int]:
    """Weights, biases (parameters named 'bias', or 'bias_…' as nn.LSTM's) and buffer elements of a module."""
    weights = biases = 0
    for name, p in module.named_parameters():
        if name.rsplit(".", 1)[-1].split("_")[0] == "bias":
            biases += p.numel()
        else:
            weights += p.numel()
    return weights, biases, sum(b.numel() for b in module.buffers())


def _node_checks(graph: LayerGraph, analysis: Analysis, model: nn.Module, names: dict[int, str],
                 shapes: dict[int, tuple[int, ...]], flops: dict[str, int], batch: int) -> list[Check]:
    checks = []
    for n in graph:
        if n.id not in names:
            continue
        path = names[n.id]
        weights, biases, buffers = _tensor_counts(model.get_submodule(path))
        counts = analysis.counts[n.id]
        measured = _per_sample(shapes[n.id], batch) if n.id in shapes else ()
        checks += [
            Check("shape", path, n.id, tuple(n.shape), measured, n.text),
            Check("params", path, n.id, counts.params, weights + biases, n.text),
            Check("buffers", path, n.id, counts.buffers, buffers, n.text),
            Check("flops", path, n.id, 2 * analysis.macs[n.id] * batch, flops.get(path, 0), n.text),
        ]
    return checks


def _total_checks(graph: LayerGraph, analysis: Analysis, model: nn.Module, outputs: tuple[Any, ...],
                  flops: dict[str, int], batch: int) -> list[Check]:
    weights, biases, buffers = _tensor_counts(model)
    totals = analysis.totals
    checks = [
        Check("params", "total", None, totals.params, weights + biases),
        Check("weights", "total", None, totals.counts.weights, weights),
        Check("biases", "total", None, totals.counts.biases, biases),
        Check("buffers", "total", None, totals.counts.buffers, buffers),
        Check("flops", "total", None, totals.flops * batch, flops["total"]),
    ]
    expected = output_order(graph)
    for i, node in enumerate(expected):
        measured = _per_sample(outputs[i], batch) if i < len(outputs) else ()
        label = "output" if i == 0 else f"output {i + 1}"
        checks.append(Check("shape", label, node.id, tuple(node.shape), measured, node.text))
    return checks


def receptive_field_checks(graph: LayerGraph, analysis: Analysis, device: str = "cpu") -> list[Check]:
    """archcalc's receptive field against the gradient of one output unit w.r.t. the input.

    In float64 with positive weights (1/fan-in) and no activations, max pools replaced by
    average pools of the same geometry (a max pool's gradient reaches one input only), the
    input positions with a nonzero gradient of the centre unit are exactly its field:
    `start + u·jump … + size − 1`, clipped to the input. Checked at each node where the
    jump grows (every downsampling) and at the last spatial node; skipped where the
    field is global or not aligned (merged paths disagree, so no single window is exact).
    Skipped for token-id inputs: integer ids have no gradient, so nothing downstream of
    an embedding is checked this way (its figures come from the static pass alone).
    """
    import torch

    from archcalc.passes.receptive_field import RF, last_spatial

    rf = getattr(analysis, "rf", None)
    if rf is None or len(graph.input.shape) < 2 or graph.token_vocab() is not None:
        return []
    targets = _rf_targets(graph, rf, last_spatial(graph, rf))
    names = module_names(graph)
    model = _gradient_model(graph, names)
    if not targets or model is None:
        return []
    model = model.to(device=device, dtype=torch.float64).eval()
    x = (torch.rand(1, *graph.input.shape, device=device, dtype=torch.float64) + 0.5).requires_grad_()
    outputs: dict[int, Any] = {}
    handles = [model.get_submodule(names[t]).register_forward_hook(
        lambda _m, _a, out, t=t: outputs.__setitem__(t, out)) for t in targets]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    checks = []
    for t in targets:
        field = rf[t]
        assert isinstance(field, RF)
        out = outputs[t]
        centre = tuple((o - 1) // 2 for o in out.shape[2:])
        (grad,) = torch.autograd.grad(out[(0, slice(None), *centre)].sum(), x, retain_graph=True)
        expected = _expected_window(graph, t, field, centre)
        measured = _nonzero_window(grad[0].abs().sum(0))
        node = graph.node(t)
        checks.append(Check("rf", names[t], t, expected, measured, node.text))
    return checks


def _rf_targets(graph: LayerGraph, rf: Any, last: int | None) -> list[int]:
    from archcalc.passes.receptive_field import RF

    def spatial(i: int) -> bool:
        f = rf[i]
        return isinstance(f, RF) and f.rank > 0 and f.aligned

    grows = [n.id for n in graph if n.type != "input" and spatial(n.id)
             and all(isinstance(rf[i], RF) and rf[i].jump != rf[n.id].jump for i in n.inputs)]
    extra = [last] if last and spatial(last) else []  # not the input (id 0)
    # A channel slice after a concat may keep only the narrower paths: the field archcalc
    # gives (the largest over merged paths) is then an upper bound, not the exact window.
    sliced = _downstream(graph, [n.id for n in graph if n.type == "slice"])
    return sorted(set(grows + extra) - sliced)


def _downstream(graph: LayerGraph, starts: list[int]) -> set[int]:
    seen = set(starts)
    for n in graph:
        if any(i in seen for i in n.inputs):
            seen.add(n.id)
    return seen


def _gradient_model(graph: LayerGraph, names: dict[int, str]) -> nn.Module | None:
    """The model with positive averaging weights, no activations, max pools as average pools.

    None where an average pool cannot stand in (PyTorch's 3-D one refuses inputs
    smaller than its kernel, which a max pool with padding accepts).
    """
    import torch
    from torch import nn

    from archcalc.layers import REGISTRY
    from archcalc.layers.base import LayerArgError

    model = build(graph)
    swap = {"maxpool": "avgpool", "adaptive-maxpool": "adaptive-avgpool"}
    for n in graph:
        if n.type in swap:
            twin = REGISTRY[swap[n.type]]
            try:
                twin.shape(n.args, n.in_shapes)
            except LayerArgError:
                return None
            _replace(model, names[n.id], twin.torch_module(n.args, n.in_shapes, n.shape))
        elif n.type != "input" and (n.layer.kind == "activation" or n.type == "lrn"):
            _replace(model, names[n.id], nn.Identity())  # keeps every gradient positive
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            else:
                p.fill_(1.0 / p[0].numel() if p.dim() > 1 else 1.0)
    return model


def _replace(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, leaf = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def _expected_window(graph: LayerGraph, target: int, field: Any, centre: tuple[int, ...]) -> tuple[int, ...]:
    """(first, last) input position per axis that unit `centre` of `target` sees.

    Inside the input that is archcalc's window `start + u·jump … + size − 1`. Where the
    window is clipped by the input's border, padding at any layer on the way may hide
    positions, so the ends come from walking the layers' geometry back within bounds.
    """
    sizes = graph.input.shape[1:]
    window: list[int] = []
    for a, u in enumerate(centre):
        lo = field.start[a] + u * field.jump[a]
        window += [lo, lo + field.size[a] - 1]
    if all(0 <= window[2 * a] and window[2 * a + 1] < sizes[a] for a in range(len(sizes))):
        return tuple(window)
    reach = _reachable(graph, target, centre)
    if any(not r for r in reach):
        return (-1,) * len(window)  # the unit sees only padding: no input at all
    return tuple(v for r in reach for v in (min(r), max(r)))


def _reachable(graph: LayerGraph, target: int, centre: tuple[int, ...]) -> list[set[int]]:
    """Per axis, the input positions some path reaches from one output unit (real positions only)."""
    from archcalc.layers import Geometry

    pending: dict[int, list[set[int]]] = {target: [{u} for u in centre]}
    for nid in range(target, 0, -1):
        here = pending.pop(nid, None)
        if here is None or any(not axis for axis in here):
            continue  # nothing real reaches this node from the unit
        n = graph.node(nid)
        g = n.layer.geometry(n.args, n.in_shapes)
        for i, in_shape in zip(n.inputs, n.in_shapes, strict=True):
            back = here if not isinstance(g, Geometry) else [
                {q for o in axis for t in range(g.kernel[a])
                 if 0 <= (q := o * g.stride[a] - g.padding[a] + t * g.dilation[a]) < in_shape[1 + a]}
                for a, axis in enumerate(here)]
            if any(not axis for axis in back):
                continue
            old = pending.get(i)
            pending[i] = back if old is None else [x | y for x, y in zip(old, back, strict=True)]
    return pending.get(0, [set() for _ in centre])


def _nonzero_window(grad: Any) -> tuple[int, ...]:
    """(first, last) position per axis where the input gradient is nonzero."""
    window: list[int] = []
    for a in range(grad.dim()):
        others = tuple(d for d in range(grad.dim()) if d != a)
        line = grad.sum(others) if others else grad
        hits = line.nonzero().flatten().tolist()
        window += [hits[0], hits[-1]] if hits else [-1, -1]
    return tuple(window)


# -- timing ---------------------------------------------------------------------------------------


def time_forward(model: nn.Module, x: Any, runs: int, warmup: int, flops_per_sample: int,
                 peak: Peak | None) -> Timing:
    """Median latency of `runs` forward passes after `warmup` ones (synchronised on CUDA)."""
    import torch

    cuda = x.device.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        sync()
        for _ in range(runs):
            start = time.perf_counter()
            model(x)
            sync()
            times.append(time.perf_counter() - start)
    latency = statistics.median(times)
    batch = x.shape[0]
    tflops = flops_per_sample * batch / latency / 1e12
    return Timing(latency * 1e3, runs, batch, batch / latency, tflops, peak)


def _peak(device: str, torch_dtype: Any, given: float | None) -> Peak | None:
    name = device_name(device)
    if given is not None:
        return Peak(name, "given", given)
    return find_peak(name, math_mode(torch_dtype, device)) if device == "cuda" else None


def device_name(device: str) -> str:
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


__all__ = ["Check", "Peak", "Timing", "VerifyReport", "class_name", "find_peak", "verify"]
