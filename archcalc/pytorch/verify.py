"""Check archcalc's static figures against the model PyTorch builds from the same spec.

`verify(graph)` builds the spec (`pytorch.build`), runs one forward pass on random
input (token ids below the vocabulary where the input feeds embeddings) and compares,
per node and in total: output shapes (forward hooks), parameters and buffers (`numel`
of each module's tensors), FLOPs (`FlopCounterMode`, per module) and receptive fields
(by gradients, `pytorch.rf_probe`). Then it times the forward pass (`pytorch.timing`).
Every figure is kept with both values, so a mismatch says what archcalc claimed and
what torch measured.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from archcalc.errors import DeviceMemoryError, UsageError, VerifyError
from archcalc.graph import LayerGraph
from archcalc.passes.analysis import Analysis, analyze
from archcalc.passes.memory import DTYPE_BYTES, MemoryOptions
from archcalc.pytorch.build import build, module_names, output_order, probe_input, require_torch, where
from archcalc.pytorch.peaks import device_name, device_peak
from archcalc.pytorch.rf_probe import probe_fields
from archcalc.pytorch.timing import Timing, default_runs, time_forward
from archcalc.records import record

if TYPE_CHECKING:
    from torch import nn

Value = int | tuple[int, ...]


# -- records ----------------------------------------------------------------------------------


@record
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


@record
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
    runs: int | None = None,
    warmup: int | None = None,
    peak_tflops: float | None = None,
    rf: bool = True,
) -> VerifyReport:
    """Build `graph` on `device`, run it on random input and compare every figure.

    `runs` and `warmup` default by device (`timing.default_runs`: 20 after 3 on CUDA, 3
    after 1 on CPU); `runs=0` skips the timing, `rf=False` the receptive-field check (a
    float64 forward and one backward per checked node; never run on token ids, which
    have no gradient). A CUDA out-of-memory error becomes DeviceMemoryError.
    """
    torch = require_torch()
    device = device or default_device()
    default_count, default_warmup = default_runs(device)
    runs = default_count if runs is None else runs
    warmup = default_warmup if warmup is None else warmup
    torch_dtype = _torch_dtype(dtype)
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"CUDA is not available to this torch ({torch.__version__}); use --device cpu")
    if batch < 1:
        raise UsageError(f"the batch size must be at least 1, not {batch}")
    analysis = analyze(graph, MemoryOptions(_memory_dtype(dtype), batch))
    _refuse_what_cannot_fit(graph, analysis, device, batch, 2 if dtype == "float64" else 1)
    try:
        return _verify(graph, analysis, device, batch, torch_dtype, runs, warmup, peak_tflops, rf)
    except torch.cuda.OutOfMemoryError:
        raise DeviceMemoryError(
            f"CUDA ran out of memory verifying '{graph.name}' at batch size {batch}; "
            f"try a smaller batch (--batch {max(1, batch // 2)}) or a smaller --input"
        ) from None


def _memory_dtype(name: str) -> str:
    return name if name in DTYPE_BYTES else "float32"  # float64: counted as float32, then doubled below


def _refuse_what_cannot_fit(graph: LayerGraph, analysis: Analysis, device: str, batch: int, wide: int) -> None:
    """Before anything is allocated: the static memory figure against what the device has free.

    A forward pass holds the weights and the activation peak (the static figures); a margin of
    2× covers the gradient probe's float64 copy and the allocator's rounding. A spec asking for
    more is refused with the figure, instead of trying to allocate terabytes."""
    m = analysis.memory  # `wide`: 2 for float64, which the static figures count as float32
    needed = 2 * wide * (m.param_bytes + m.buffer_bytes + m.inference_peak_bytes)
    free = _free_bytes(device)
    if free is not None and needed > free:
        raise DeviceMemoryError(
            f"verifying '{graph.name}' at batch {batch} needs about {_gib(needed)} "
            f"(weights {_gib(m.param_bytes + m.buffer_bytes)}, activation peak "
            f"{_gib(m.inference_peak_bytes)}, with margin), but the {device} has {_gib(free)} "
            f"free: use a smaller --input or --batch")


def _gib(n: int) -> str:
    return f"{Decimal(n) / 2**30:,.1f} GiB"


def _free_bytes(device: str) -> int | None:
    """Free memory of the device: CUDA's own figure, or the machine's available memory."""
    import torch

    if device == "cuda":
        return int(torch.cuda.mem_get_info()[0])
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


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
        *(_rf_checks(graph, analysis, names, device) if rf else []),
    ]
    timing = None
    if runs > 0:
        peak = device_peak(device, torch_dtype, peak_tflops)
        timing = time_forward(model, as_args(x), runs, warmup, analysis.totals.flops, peak)
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
                out = model(*as_args(x))
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
    """Record each node's output shape; `current` names the node running (for errors).

    A module that several nodes share is called once per node, in node order: its k-th call
    is its k-th node's.
    """
    current: list[int] = []
    handles = []
    for path, nodes in _by_path(names).items():
        module = model.get_submodule(path)
        calls = [0]

        def pre(_m: Any, _a: Any, nodes: list[int] = nodes, calls: list[int] = calls) -> None:
            current.append(nodes[min(calls[0], len(nodes) - 1)])

        def post(_m: Any, _a: Any, out: Any, nodes: list[int] = nodes, calls: list[int] = calls) -> None:
            value = out[0] if isinstance(out, tuple) else out  # a max pool's (values, indices) for an unpool
            shapes[nodes[min(calls[0], len(nodes) - 1)]] = tuple(value.shape)
            calls[0] += 1

        handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    try:
        yield current
    finally:
        for h in handles:
            h.remove()


def _per_sample(shape: tuple[int, ...], batch: int) -> tuple[int, ...]:
    """torch's shape without the batch axis (kept whole if the batch axis is wrong)."""
    return shape[1:] if shape and shape[0] == batch else shape


def _by_path(names: dict[int, str]) -> dict[str, list[int]]:
    """Module path → the nodes that call it, in node order (several where weights are shared)."""
    paths: dict[str, list[int]] = {}
    for node_id, path in sorted(names.items()):
        paths.setdefault(path, []).append(node_id)
    return paths


def as_args(x: Any) -> tuple[Any, ...]:
    """The model's forward arguments: one input batch, or a tuple of them for several inputs."""
    return x if isinstance(x, tuple) else (x,)


def _tensor_counts(module: nn.Module, seen: set[int] | None = None) -> tuple[int, int, int]:
    """Weights, biases (parameters named 'bias', 'bias_…' as nn.LSTM's or '…_bias' as nn.MultiheadAttention's
    in_proj_bias) and buffer elements of a
    module; a Parameter in `seen` (another module's, tied) is not counted again."""
    weights = biases = 0
    for name, p in module.named_parameters():
        if seen is not None:
            if id(p) in seen:
                continue
            seen.add(id(p))
        leaf = name.rsplit(".", 1)[-1]
        if leaf.split("_")[0] == "bias" or leaf.endswith("_bias"):  # bias, bias_ih_l0, in_proj_bias
            biases += p.numel()
        else:
            weights += p.numel()
    return weights, biases, sum(b.numel() for b in module.buffers())


def _node_checks(graph: LayerGraph, analysis: Analysis, model: nn.Module, names: dict[int, str],
                 shapes: dict[int, tuple[int, ...]], flops: dict[str, int], batch: int) -> list[Check]:
    """Per node: its output shape; per module (a shared one once, for all its nodes): parameters,
    buffers and FLOPs, each Parameter counted at the first module that holds it."""
    checks = []
    seen: set[int] = set()
    for path, nodes in _by_path(names).items():
        owner = graph.node(nodes[0])
        for node_id in nodes:
            n = graph.node(node_id)
            shape = shapes.get(node_id, ())
            measured = _per_sample(shape, batch) if n.batched else shape  # a free tensor has no batch axis
            checks.append(Check("shape", path, node_id, tuple(n.shape), measured, n.text))
        weights, biases, buffers = _tensor_counts(model.get_submodule(path), seen)
        counts = analysis.counts[owner.id]
        ours = sum(analysis.flops(i) for i in nodes) * batch
        checks += [
            Check("params", path, owner.id, counts.params, weights + biases, owner.text),
            Check("buffers", path, owner.id, counts.buffers, buffers, owner.text),
            Check("flops", path, owner.id, ours, flops.get(path, 0), owner.text),
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


def _rf_checks(graph: LayerGraph, analysis: Analysis, names: dict[int, str], device: str) -> list[Check]:
    """The receptive fields probed by gradients (`rf_probe`), one check per probed node."""
    return [Check("rf", names[p.node], p.node, p.expected, p.measured, graph.node(p.node).text)
            for p in probe_fields(graph, analysis, device)]


__all__ = ["Check", "VerifyReport", "default_device", "verify"]
