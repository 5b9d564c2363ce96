#!/usr/bin/env python3
"""Verify every built-in spec against PyTorch and write docs/verification.md.

For each spec of the zoo, at its own input: `archcalc.pytorch.verify` (shapes, parameters,
buffers, FLOPs and receptive fields, per layer and in total), the forward latency,
throughput, achieved TFLOP/s and share of the device's peak; and where torchvision
has a model of the same name, its parameters and FlopCounterMode FLOPs against
archcalc's. torchvision is imported lazily and skipped when missing.

    python tools/verify_zoo.py --device cuda --batch 64
    python tools/verify_zoo.py --device cpu --batch 1 --runs 2 -o /tmp/verification.md
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import archcalc  # noqa: E402
from archcalc import zoo  # noqa: E402
from archcalc.errors import ArchcalcError  # noqa: E402
from archcalc.passes.analysis import analyze  # noqa: E402
from archcalc.pytorch.peaks import device_name  # noqa: E402
from archcalc.pytorch.verify import VerifyReport, default_device, verify  # noqa: E402

# torchvision's constructors where its defaults differ from the spec (no auxiliary heads,
# no input transform: the figures of the main network, as tests/reference records them)
TORCHVISION_KWARGS: dict[str, dict[str, Any]] = {
    "googlenet": {"aux_logits": False, "init_weights": False, "transform_input": False},
    "inception_v3": {"aux_logits": False, "init_weights": False, "transform_input": False},
}


@dataclass(frozen=True)
class Reference:
    params: int
    flops: int


@dataclass(frozen=True)
class Row:
    name: str
    input: tuple[int, ...]
    params: int
    flops: int
    report: VerifyReport | None
    error: str = ""
    torchvision: Reference | None = None


def torchvision_reference(name: str, shape: tuple[int, ...]) -> Reference | None:
    """Parameters and FlopCounterMode FLOPs (batch 1, CPU) of torchvision's model of that name."""
    try:
        import torch
        import torchvision
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        return None
    if name not in torchvision.models.list_models():
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torchvision.models.get_model(name, weights=None, **TORCHVISION_KWARGS.get(name, {})).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, *shape))
    return Reference(sum(p.numel() for p in model.parameters()), counter.get_total_flops())


def verify_one(name: str, args: argparse.Namespace) -> Row:
    graph = archcalc.load(name)
    analysis = analyze(graph)
    shape = tuple(graph.input.shape)
    ref = torchvision_reference(name, shape) if not args.no_torchvision else None
    try:
        report = verify(graph, args.device, args.batch, args.dtype, runs=args.runs, warmup=args.warmup,
                        peak_tflops=args.peak_tflops, rf=not args.no_rf)
        return Row(name, shape, analysis.totals.params, analysis.totals.flops, report, torchvision=ref)
    except ArchcalcError as e:  # out of memory, or a spec torch cannot run: recorded, not fatal
        return Row(name, shape, analysis.totals.params, analysis.totals.flops, None, str(e), ref)


def _compare(ours: int, theirs: int) -> str:
    return f"{theirs:,} =" if ours == theirs else f"**{theirs:,} ≠ {ours:,}**"


def markdown(rows: list[Row], args: argparse.Namespace, command: str) -> str:
    import torch

    first = next((r.report for r in rows if r.report is not None), None)
    peak = first.timing.peak if first and first.timing else None
    lines = [
        "# Verification of the built-in specs against PyTorch",
        "",
        "Every built-in spec built in PyTorch (`archcalc verify`) at its own input: output shapes,",
        "parameters, buffers and FLOPs (`torch.utils.flop_counter.FlopCounterMode`) per layer and in",
        "total, and receptive fields by gradients. Timing: median forward latency after warm-up;",
        "TFLOP/s from archcalc's FLOPs × batch.",
        "",
        f"- device: **{device_name(args.device)}** ({args.device}), dtype {args.dtype}, batch {args.batch}, "
        f"{args.runs} timed runs after {args.warmup} warm-up",
        f"- torch {torch.__version__}, archcalc {archcalc.__version__}, "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "- peak: " + (f"{peak.tflops:g} TFLOP/s ({peak.device}, dense {peak.mode})" if peak else "unknown "
                      "(no entry in archcalc.pytorch.peaks.PEAKS for this device; `--peak-tflops` sets one)"),
        "",
        "Command:",
        "",
        "```",
        command,
        "```",
        "",
        "| spec | input | checks | latency ms | samples/s | TFLOP/s | % of peak "
        "| torchvision params | torchvision FLOPs |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        shape = "×".join(map(str, r.input))
        tv_params = _compare(r.params, r.torchvision.params) if r.torchvision else "—"
        tv_flops = _compare(r.flops, r.torchvision.flops) if r.torchvision else "—"
        if r.report is None:
            lines.append(f"| {r.name} | {shape} | error: {r.error} | | | | | {tv_params} | {tv_flops} |")
            continue
        checks = f"{r.report.passed}/{len(r.report.checks)}" + ("" if r.report.ok else " **✗**")
        t = r.report.timing
        share = f"{100 * t.peak_share:.1f}" if t and t.peak_share is not None else "—"
        timing = "— | — | — | —"
        if t is not None:
            timing = f"{t.latency_ms:.3f} | {t.throughput:,.1f} | {t.tflops:.2f} | {share}"
        lines.append(f"| {r.name} | {shape} | {checks} | {timing} | {tv_params} | {tv_flops} |")
    failed = [r.name for r in rows if r.report is None or not r.report.ok]
    lines += ["", f"{len(rows) - len(failed)}/{len(rows)} specs agree with PyTorch on every figure"
              + (f"; not: {', '.join(failed)}." if failed else "."),
              "In the torchvision columns `=` means torchvision's model has exactly archcalc's figure.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default=None)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float32")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--no-rf", action="store_true", help="skip the receptive-field gradient checks")
    parser.add_argument("--no-torchvision", action="store_true")
    parser.add_argument("--only", nargs="*", default=None, help="these specs only")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "verification.md")
    args = parser.parse_args(argv)
    args.device = args.device or default_device()
    rows = []
    for name in args.only or zoo.names():
        start = time.perf_counter()
        row = verify_one(name, args)
        state = "ok" if row.report and row.report.ok else ("MISMATCH" if row.report else row.error)
        print(f"{name:20s} {state} ({time.perf_counter() - start:.1f} s)", file=sys.stderr)
        rows.append(row)
    command = "python tools/verify_zoo.py " + " ".join(sys.argv[1:] if argv is None else argv)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(markdown(rows, args, command.strip()), encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0 if all(r.report is not None and r.report.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
