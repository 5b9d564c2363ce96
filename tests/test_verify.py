"""`archcalc verify`: static figures against the torch model built from the same spec (CPU).

Every built-in spec is verified at a small input, so a wrong layer rule fails CI; a
deliberately wrong rule (monkeypatched off by one) must be reported as a mismatch.
"""

from __future__ import annotations

import json
import sys
from functools import cache

import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

import archcalc  # noqa: E402
from archcalc import zoo  # noqa: E402
from archcalc.cli import cli  # noqa: E402
from archcalc.errors import SpecError  # noqa: E402
from archcalc.graph import LayerGraph  # noqa: E402
from archcalc.layers import REGISTRY, Counts  # noqa: E402
from archcalc.passes.analysis import analyze  # noqa: E402
from archcalc.pytorch.peaks import find_peak  # noqa: E402
from archcalc.pytorch.verify import VerifyReport, verify  # noqa: E402

CHEAP_MACS = 300_000_000  # a spec's own input is used when it costs at most this
MAX_MACS = 2_000_000_000  # the smallest input that works, up to this
SIDES = (32, 64, 75, 96, 128, 160, 224, 299)


# specs whose size is set by their parameters (a sequence length, a width that a position table or
# Swin's windows depend on): the same structure at a size CI affords
SMALL_SETTINGS: dict[str, dict[str, int]] = {
    "gpt2": {"seq": 16, "vocab": 1000, "dim": 96},
    "bert-base": {"seq": 16, "vocab": 1000, "dim": 96},
    "llama": {"seq": 16},
    "vit_b_16": {"image": 32, "dim": 96, "mlp": 384},
    "vit_b_32": {"image": 64, "dim": 96, "mlp": 384},
    "swin_t": {"dim": 32},
    "convnext_tiny": {"image": 32, "dim": 16},
}


def small_graph(name: str) -> LayerGraph:
    """A built-in spec at a size CI affords: its SMALL_SETTINGS, or the input `small_input` picks."""
    if name in SMALL_SETTINGS:
        return archcalc.load(name, params=SMALL_SETTINGS[name])
    return archcalc.load(name, small_input(name))


@cache
def small_input(name: str) -> tuple[int, ...] | None:
    """The spec's own input if cheap, else the smallest square input archcalc accepts, else
    its own input if that is within MAX_MACS (alphago-policy: 19×19 is below every side)."""
    graph = archcalc.load(name)
    own = analyze(graph).totals.macs
    if own <= CHEAP_MACS:
        return None
    c, rank = graph.input.shape[0], len(graph.input.shape) - 1
    for side in ((16,) if rank == 3 else ()) + SIDES:  # a video clip (C×T×H×W) is costly at 32³
        shape = (c,) + (side,) * rank
        try:
            macs = analyze(archcalc.load(name, shape)).totals.macs
        except SpecError:
            continue
        if macs <= MAX_MACS:
            return shape
    if own <= MAX_MACS:
        return None
    pytest.fail(f"{name}: no input up to {SIDES[-1]} is both valid and small enough for CI")


def failures(report: VerifyReport) -> str:
    return "\n".join(f"  {c.scope} '{c.text}': {c.what} archcalc {c.archcalc} != torch {c.torch}"
                     for c in report.failures)


def total(report: VerifyReport, what: str) -> tuple[object, object]:
    check = next(c for c in report.checks if c.scope == "total" and c.what == what)
    return check.archcalc, check.torch


@pytest.mark.parametrize("name", zoo.names())
def test_every_builtin_spec_agrees_with_torch(name: str) -> None:
    graph = small_graph(name)
    report = verify(graph, "cpu", runs=0)
    assert report.ok, f"{name} at {graph.input.shape}:\n{failures(report)}"
    kinds = {c.what for c in report.checks}
    assert {"shape", "params", "buffers", "flops", "weights", "biases"} <= kinds


def test_alexnet_at_224_equals_torchvision(torch_reference: dict) -> None:
    report = verify(archcalc.load("alexnet"), "cpu", runs=0)
    ref = torch_reference["models"]["alexnet"]
    assert report.ok, failures(report)
    # the model built from the spec measures what torchvision's alexnet measures
    assert total(report, "params") == (ref["params"], ref["params"]) == (61_100_840, 61_100_840)
    assert total(report, "flops") == (ref["flops"], ref["flops"]) == (1_428_376_960, 1_428_376_960)


@pytest.mark.parametrize("name, shape, params", [
    ("vgg11", (3, 32, 32), 32_200_040),  # FC-4096 after a 512×1×1 map: 512·4096 + ...
    ("resnet18", (3, 64, 64), 11_689_512),  # global pool: torchvision's figure at any input
])
def test_named_small_inputs(name: str, shape: tuple[int, ...], params: int) -> None:
    report = verify(archcalc.load(name, shape), "cpu", batch=2, runs=0)
    assert report.ok, failures(report)
    assert total(report, "params") == (params, params)
    assert report.batch == 2


def test_receptive_field_is_checked_by_gradients() -> None:
    report = verify(archcalc.load("alexnet"), "cpu", runs=0)
    rf = {c.text + "@" + c.scope: c for c in report.checks if c.what == "rf"}
    assert rf and all(c.ok for c in rf.values())
    # after pool2: conv11/s4/p2, maxpool3/s2, conv5/p2, maxpool3/s2 give r = 11 + 2·4 + 4·8 + 2·8
    # = 67, jump 16, start −2 − 2·8 = −18; the 13×13 map's centre unit 6 sees −18 + 6·16 = 78
    # to 78 + 66 = 144 on both axes
    pool2 = next(c for c in rf.values() if c.scope == "features.5")  # torchvision's name for pool2
    assert pool2.archcalc == pool2.torch == (78, 144, 78, 144)


def test_each_layer_type_names_its_stand_in_for_the_gradient_probe() -> None:
    graph = archcalc.load("input 3x8x8\nconv3-4, relu, lrn, maxpool3/s2/p1, adaptive-maxpool(size=2)\n")
    stand_ins = [n.layer.rf_probe_module(n.args, n.in_shapes, n.shape) for n in list(graph)[1:]]
    nn = torch.nn
    assert [type(m) for m in stand_ins] == [nn.Conv2d, nn.Identity, nn.Identity, nn.AvgPool2d, nn.AdaptiveAvgPool2d]
    pool = stand_ins[3]
    assert (pool.kernel_size, pool.stride, pool.padding) == ((3, 3), (2, 2), (1, 1))  # the max pool's window
    # PyTorch's 3-D average pool refuses an axis smaller than its kernel, a padded max pool does not
    small = archcalc.load("input 1x2x8x8\nmaxpool3/s2/p1\n").output
    assert small.layer.rf_probe_module(small.args, small.in_shapes, small.shape) is None


# -- a wrong rule must fail ------------------------------------------------------------------


def _tiny() -> LayerGraph:
    return archcalc.load("input 3x16x16\nconv3-8, bn, relu, maxpool\nconv3-4/s2, gap, fc-10\n")


def test_a_wrong_macs_rule_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    conv = type(REGISTRY["conv"])
    right = conv.macs
    monkeypatch.setattr(conv, "macs", lambda self, a, i, o: right(self, a, i, o) + 1)
    report = verify(_tiny(), "cpu", runs=0, rf=False)
    assert not report.ok
    wrong = {(c.scope, c.what) for c in report.failures}
    assert wrong == {("0", "flops"), ("4", "flops"), ("total", "flops")}  # module names: the layers' numbers
    conv_1 = next(c for c in report.failures if c.scope == "0")
    assert conv_1.archcalc == conv_1.torch + 2  # type: ignore[operator]  # FLOPs = 2 × MACs


def test_a_wrong_counts_rule_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    bn = type(REGISTRY["bn"])
    right = bn.counts
    monkeypatch.setattr(bn, "counts", lambda self, a, i, o: right(self, a, i, o) + Counts(weights=1))
    report = verify(_tiny(), "cpu", runs=0, rf=False)
    wrong = {(c.scope, c.what) for c in report.failures}
    assert wrong == {("1", "params"), ("total", "params"), ("total", "weights")}


def test_a_wrong_shape_rule_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    flatten = type(REGISTRY["flatten"])
    monkeypatch.setattr(flatten, "torch_module", lambda self, a, i, o: torch.nn.Flatten(start_dim=2))
    graph = archcalc.load("input 3x4x4\nflatten\n")
    report = verify(graph, "cpu", runs=0, rf=False)
    assert [(c.scope, c.archcalc, c.torch) for c in report.failures if c.what == "shape"][0] == (
        "0", (48,), (3, 16))


# -- the command ---------------------------------------------------------------------------------


def test_verify_command_passes_with_table_and_timing() -> None:
    args = ["--device", "cpu", "--runs", "3", "--warmup", "1", "--layers"]
    result = CliRunner().invoke(cli, ["verify", "lenet5", *args])
    assert result.exit_code == 0, result.output
    assert "61,706" in result.output and "✓" in result.output and "✗" not in result.output
    assert "samples/s" in result.output and "TFLOP/s" in result.output
    assert "checks passed: all figures agree" in result.output
    assert "12–17 × 12–17 ✓" in result.output  # the first pool's field, by gradients


def test_verify_on_cpu_defaults_to_three_runs_and_says_so() -> None:
    result = CliRunner().invoke(cli, ["verify", "lenet5", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "median of 3 runs (CPU default; --runs N for more) at batch 1 on" in result.output
    given = CliRunner().invoke(cli, ["verify", "lenet5", "--device", "cpu", "--runs", "3", "--warmup", "1"])
    assert "median of 3 at batch 1 on" in given.output and "CPU default" not in given.output
    timing = verify(archcalc.load("lenet5"), "cpu", rf=False).timing
    assert timing is not None and timing.runs == 3


def test_verify_command_exits_1_on_mismatch(monkeypatch: pytest.MonkeyPatch) -> None:
    conv = type(REGISTRY["conv"])
    right = conv.counts
    monkeypatch.setattr(conv, "counts", lambda self, a, i, o: right(self, a, i, o) + Counts(biases=1))
    result = CliRunner().invoke(cli, ["verify", "lenet5", "--device", "cpu", "--runs", "0"])
    assert result.exit_code == 1
    assert "✗" in result.output and "157 ≠ 156" in result.output  # conv5-6: 6·1·5·5 + 6 = 156


def test_verify_command_json(monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["--device", "cpu", "--runs", "2", "--format", "json", "--peak-tflops", "1.5", "--batch", "4"]
    result = CliRunner().invoke(cli, ["verify", "lenet5", *args])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ok"] and data["passed"] == data["total"] and data["batch"] == 4
    assert data["timing"]["peak"] == {"device": data["device_name"], "mode": "given", "tflops": 1.5}
    timing = data["timing"]
    assert timing["throughput"] == pytest.approx(4 / (timing["latency_ms"] / 1e3))
    flops = 2 * analyze(archcalc.load("lenet5")).totals.macs
    assert timing["tflops"] == pytest.approx(flops * 4 / (timing["latency_ms"] / 1e3) / 1e12)
    assert timing["peak_share"] == pytest.approx(timing["tflops"] / 1.5)


def test_cuda_out_of_memory_is_a_clean_message(monkeypatch: pytest.MonkeyPatch) -> None:
    import archcalc.pytorch.verify as verify_module

    def oom(*args: object, **kwargs: object) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(verify_module, "_verify", oom)
    result = CliRunner().invoke(cli, ["verify", "lenet5", "--device", "cpu", "--batch", "512"])
    assert result.exit_code == 2
    assert "out of memory" in result.output and "batch size 512" in result.output
    assert "--batch 256" in result.output and "Traceback" not in result.output


def test_missing_torch_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    result = CliRunner().invoke(cli, ["verify", "lenet5"])
    assert result.exit_code == 2
    assert "pip install 'archcalc[torch]'" in result.output and "Traceback" not in result.output


def test_cuda_requested_without_cuda_is_a_usage_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = CliRunner().invoke(cli, ["verify", "lenet5", "--device", "cuda"])
    assert result.exit_code == 2 and "CUDA is not available" in result.output


# -- device peaks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("device, mode, label, tflops", [
    ("NVIDIA H100 80GB HBM3", "TF32", "H100 SXM", 494.7),
    ("NVIDIA H100 PCIe", "BF16", "H100 PCIe", 756.5),
    ("NVIDIA H200", "BF16", "H200 SXM", 989.4),
    ("NVIDIA A100-SXM4-80GB", "TF32", "A100", 156.0),
    ("NVIDIA L4", "FP32", "L4", 30.3),
    ("Tesla T4", "FP16", "T4", 65.0),
    ("NVIDIA GeForce RTX 4090", "BF16", "RTX 4090", 165.2),
])
def test_peak_table(device: str, mode: str, label: str, tflops: float) -> None:
    peak = find_peak(device, mode)
    assert peak is not None and (peak.device, peak.mode, peak.tflops) == (label, mode, tflops)


def test_peak_falls_back_or_is_unknown() -> None:
    t4 = find_peak("Tesla T4", "TF32")  # Turing has no TF32: float32 runs at the FP32 rate
    assert t4 is not None and (t4.mode, t4.tflops) == ("FP32", 8.1)
    assert find_peak("Tesla T4", "BF16") is None
    assert find_peak("Intel(R) Xeon(R) Processor", "FP32") is None
