"""How a training step is shown (`archcalc training`, `report --training`): per layer its forward,
input-gradient and weight-gradient FLOPs, FlopCounterMode's figure where it differs, the bytes it
keeps for the backward pass; in total every FLOP and memory term. The figures are
passes/training.py's; this only formats them."""

from __future__ import annotations

from typing import Any

from archcalc.passes.analysis import Analysis
from archcalc.passes.training import Training
from archcalc.report.numbers import binary_bytes, exact_bytes

COLUMN_KEYS = ("shape", "fwd", "grad-in", "grad-w", "train", "fcm-bwd", "kept", "state")

_STATES = {"sgd": "no optimizer state (SGD)", "momentum": "momentum buffer (1×)", "adam": "Adam moments (2×)",
           "adamw": "AdamW moments (2×)"}


def _ratio(part: int, whole: int) -> str:
    return f"{part / whole:.3f}×" if whole else "–"


def summary_lines(analysis: Analysis) -> list[str]:
    t = analysis.step
    o = t.options
    lines = [f"training step ({o.optimizer}, {o.precision}{' mixed precision' if o.mixed else ''}, batch {o.batch}): "
             f"forward {t.forward:,} + input gradients {t.grad_input:,} + weight gradients {t.grad_weight:,}"
             + (f" + recomputed forward {t.recompute:,}" if t.recompute else "")
             + f" = {t.step:,} FLOPs ({_ratio(t.step, t.forward)} the forward)"]
    if t.flop_counter_excess:
        grouped = [i for i, s in enumerate(t.layers) if s.flop_counter_backward != s.backward]
        lines.append(f"FlopCounterMode counts {t.flop_counter_step:,} (+{t.flop_counter_excess:,}): its "
                     f"convolution_backward formula counts the weight gradient of {len(grouped)} grouped "
                     f"convolution{'s' if len(grouped) > 1 else ''} groups times (torch/utils/flop_counter.py, "
                     f"conv_backward_flop); column 'FlopCounterMode ∂' shows its figure per layer")
    else:
        lines.append(f"FlopCounterMode counts the same {t.flop_counter_step:,}")
    if t.six_nt:
        s = t.six_nt
        lines.append(f"6·N·T = 6 · {s.n:,} · {s.t} = {s.value:,} FLOPs ({s.definition}); computed "
                     f"{t.forward + t.backward:,} = {_ratio(t.forward + t.backward, s.value)} of it")
    b = binary_bytes
    kept = (f"kept for backward {b(t.kept_bytes)}" if not t.segments else
            f"kept for backward with {len(t.segments)} checkpointed segments {b(t.kept_bytes)} (without: "
            f"{b(t.saved_bytes)})")
    master = f" + fp32 master copies {b(t.master_bytes)}" if t.master_bytes else ""
    lines.append(f"memory ({o.precision}, batch {o.batch}): weights {b(t.weight_bytes)}{master} + gradients "
                 f"{b(t.gradient_bytes)} + {_STATES[o.optimizer]} {b(t.optimizer_bytes)} + buffers "
                 f"{b(t.buffer_bytes)} + {kept} + gradients in flight {b(t.gradient_in_flight_bytes)} = "
                 f"{exact_bytes(t.total_bytes)}")
    for u in t.unknown:
        lines.append(f"not counted: no {u.what} rule for layer type '{u.layer_type}' ({len(u.layers)} layers: "
                     f"{', '.join(map(str, u.layers[:8]))}{'…' if len(u.layers) > 8 else ''})")
    lines += [f"note: {n}" for n in t.notes]
    return lines


def _layer(t: Training, node_id: int) -> dict[str, Any]:
    s = t.layers[node_id]
    f = s.figures  # what the layer shares with identical ones; the kept tensors and segment are its own
    return {
        "forward": f.forward, "grad_input": f.grad_input, "grad_weight": f.grad_weight, "backward": s.backward,
        "step": s.step, "flop_counter_backward": f.flop_counter_backward, "flop_counter_why": f.why or None,
        "input_grad": list(f.input_grad), "weight_grad": f.weight_grad, "in_backward": f.in_backward,
        "kept": [{"tensor": k.what, "bytes": k.bytes, "new": k.new} for k in s.kept],
        "kept_bytes": s.saved_bytes, "weight_bytes": f.weight_bytes, "master_bytes": f.master_bytes,
        "gradient_bytes": f.gradient_bytes, "optimizer_bytes": f.optimizer_bytes, "segment": s.segment,
    }


def to_dict(analysis: Analysis, layers: bool = True) -> dict[str, Any]:
    """The training step for the JSON document: options, FLOPs, memory terms, and per layer (unless
    `layers` is False: the report's JSON puts each layer's beside its other figures)."""
    t = analysis.step
    o = t.options
    return {
        "options": {"optimizer": o.optimizer, "precision": o.precision, "checkpoint": o.checkpoint,
                    "batch": o.batch, "device": o.device},
        "convention": "FlopCounterMode's (2 FLOPs per multiply-accumulate of the products), with a grouped "
                      "convolution's weight gradient counted once, not groups times",
        "flops": {"forward": t.forward, "grad_input": t.grad_input, "grad_weight": t.grad_weight,
                  "backward": t.backward, "recompute": t.recompute, "step": t.step,
                  "flop_counter_backward": t.flop_counter_backward, "flop_counter_step": t.flop_counter_step,
                  "flop_counter_excess": t.flop_counter_excess},
        "six_nt": None if t.six_nt is None else {"n": t.six_nt.n, "t": t.six_nt.t, "batch": t.six_nt.batch,
                                                  "value": t.six_nt.value, "definition": t.six_nt.definition},
        "memory": {"weight_bytes": t.weight_bytes, "master_bytes": t.master_bytes,
                   "gradient_bytes": t.gradient_bytes, "optimizer_bytes": t.optimizer_bytes,
                   "buffer_bytes": t.buffer_bytes, "saved_bytes": t.saved_bytes, "kept_bytes": t.kept_bytes,
                   "gradient_in_flight_bytes": t.gradient_in_flight_bytes, "total_bytes": t.total_bytes},
        "segments": [{"first": s.first, "last": s.last, "boundary_bytes": s.boundary_bytes,
                      "saved_bytes": s.saved_bytes, "recompute_flops": s.forward} for s in t.segments],
        "unknown": [{"layer_type": u.layer_type, "what": u.what, "layers": list(u.layers)} for u in t.unknown],
        "notes": list(t.notes),
        **({"layers": [{"id": n.id, **_layer(t, n.id)} for n in analysis.graph]} if layers else {}),
    }


def layer_dict(analysis: Analysis, node_id: int) -> dict[str, Any]:
    return _layer(analysis.step, node_id)


def step_dict(t: Training, node_id: int) -> dict[str, Any]:
    """One layer's training figures for the JSON document, from the step itself."""
    return _layer(t, node_id)
