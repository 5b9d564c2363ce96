"""`archcalc import model.onnx`: models exported with torch.onnx, read with the onnx package alone.

The exported model's figures are PyTorch's: every initializer a parameter, BatchNorm's mean and
variance buffers (archcalc's `bn` holds PyTorch's batch counter too, which the file does not),
the output shape the model's. Skipped, with the reason, where the onnx package is not installed
(`pip install 'archcalc[onnx]'`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx", reason="the onnx package is an optional extra: pip install 'archcalc[onnx]'")

import archcalc  # noqa: E402
from archcalc.errors import ModelImportError, UnknownOpsError  # noqa: E402
from archcalc.importers import import_onnx  # noqa: E402
from archcalc.passes.analysis import analyze  # noqa: E402
from tests import import_models as M  # noqa: E402

pytestmark = pytest.mark.torch

CASES: dict[str, tuple[Any, Any]] = {
    "resnet-like": (lambda: M.ResNetLike(width=8), (3, 32, 32)),
    "vgg-like": (lambda: M.VGGLike(bn=True), (3, 32, 32)),
    "functional": (M.Functional, (3, 32, 32)),
    "siamese": (M.Siamese, ((1, 16, 16), (1, 16, 16))),
    "layernorm": (M.LayerNormMLP, (5, 16)),
}


def export(model: Any, shapes: Any, path: Path) -> Path:
    """torch.onnx.export (the TorchScript exporter; BatchNorm kept: training=PRESERVE) of the model with
    distinct random weights, so the exporter merges no two initializers."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for t in [*model.parameters(), *(b for k, b in model.named_buffers() if "running" in k)]:
            t.copy_(torch.rand(t.shape, generator=g) + 0.5)
    inputs = tuple(torch.randn(1, *s) for s in (shapes if isinstance(shapes[0], tuple) else (shapes,)))
    torch.onnx.export(model.eval(), inputs, str(path), dynamo=False, training=torch.onnx.TrainingMode.PRESERVE)
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_exported_model_gives_pytorchs_figures(case: str, tmp_path: Path) -> None:
    make, shapes = CASES[case]
    model = make()
    path = export(model, shapes, tmp_path / f"{case}.onnx")
    a = analyze(import_onnx(str(path)).graph)
    assert a.totals.params == sum(p.numel() for p in model.parameters())
    counters = sum(1 for k, _ in model.named_buffers() if k.endswith("num_batches_tracked"))
    assert a.totals.counts.buffers == sum(b.numel() for b in model.buffers()) and counters == sum(
        1 for n in a.graph if n.type == "bn" and n.shares is None)
    inputs = tuple(torch.randn(1, *s) for s in (shapes if isinstance(shapes[0], tuple) else (shapes,)))
    with torch.no_grad():
        assert tuple(a.graph.output.shape) == tuple(model(*inputs).shape[1:])


def test_value_info_shapes_are_checked_against_archcalcs(tmp_path: Path) -> None:
    """With the file's own shapes (onnx's shape inference), every node's shape must agree with archcalc's."""
    path = export(M.ResNetLike(width=8), (3, 32, 32), tmp_path / "r.onnx")
    onnx.save(onnx.shape_inference.infer_shapes(onnx.load(str(path))), str(path))
    assert len(onnx.load(str(path)).graph.value_info) > 40
    graph = archcalc.from_onnx(str(path))
    assert archcalc.analyze(graph).totals.params == sum(p.numel() for p in M.ResNetLike(width=8).parameters())


def test_the_onnx_spec_has_blocks_from_the_exporters_scopes(tmp_path: Path) -> None:
    spec = import_onnx(str(export(M.ResNetLike(width=8), (3, 32, 32), tmp_path / "r.onnx"))).spec
    assert "stage(8) x2  # stages.0.0, stages.0.1" in spec


def test_unknown_onnx_ops_are_listed(tmp_path: Path) -> None:
    path = export(M.WithInstanceNorm(), (3, 8), tmp_path / "ln.onnx")
    with pytest.raises(UnknownOpsError) as e:
        import_onnx(str(path))
    assert ("ONNX InstanceNormalization ×1: archcalc has no layer type for the ONNX op "
            "InstanceNormalization") in str(e.value)


def test_a_malformed_file_gets_one_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf")
    with pytest.raises(ModelImportError, match=r"bad.onnx is not a (readable|valid) ONNX model"):
        import_onnx(str(bad))
    with pytest.raises(ModelImportError, match="no such file"):
        import_onnx(str(tmp_path / "missing.onnx"))


class Padded(torch.nn.Module):
    """F.pad with sizes computed from the shape as Swin pads to its windows (the exporter writes them as
    Shape, Slice with step -1, Concat… on constants; ONNX Pad: every axis's begins, then its ends), and a
    zero pad (Swin's where the map is a multiple of the window): no node."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x: Any) -> Any:
        x = self.conv(x)
        x = torch.nn.functional.pad(x, (1, 2, 0, (4 - x.size(-2) % 4) % 4))
        return torch.nn.functional.pad(x, (0, 0, 0, 0)).relu()


class ScaledByItsWidth(torch.nn.Module):
    """q · C^-0.5 with C read from the shape, as Swin's attention scales q: a Pow of constants, folded;
    what is left is a product by a number, which archcalc has no layer type for."""

    def forward(self, x: Any) -> Any:
        return x * x.size(-1) ** -0.5


def test_pad_is_read_in_f_pads_order(tmp_path: Path) -> None:
    model = Padded()
    path = export(model, (3, 8, 8), tmp_path / "pad.onnx")
    assert {"Shape", "Slice", "Pad"} <= {n.op_type for n in onnx.load(str(path)).graph.node}
    imported = import_onnx(str(path))
    assert "pad(1, 2, 0, 2)" in imported.spec and imported.spec.count("pad(") == 1
    a = analyze(imported.graph)
    assert a.totals.params == sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        assert tuple(a.graph.output.shape) == tuple(model(torch.randn(1, 3, 8, 8)).shape[1:]) == (4, 8, 9)


def test_a_pow_of_constants_is_folded(tmp_path: Path) -> None:
    path = export(ScaledByItsWidth(), (5, 16), tmp_path / "scale.onnx")
    assert "Pow" in {n.op_type for n in onnx.load(str(path)).graph.node}
    with pytest.raises(UnknownOpsError) as e:
        import_onnx(str(path))
    assert [op for op, _, _ in e.value.unknown] == ["ONNX Mul"]  # not the Pow
    assert "a product by a number" in str(e.value)


class ClassToken(torch.nn.Module):
    """ViT's class token: a free 1×1×D parameter expanded over the batch (ONNX Expand of an initializer),
    concatenated before the tokens: the parameter itself, counted once."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Linear(12, 16)
        self.class_token = torch.nn.Parameter(torch.zeros(1, 1, 16))
        self.head = torch.nn.Linear(16, 3)

    def forward(self, x: Any) -> Any:
        x = self.embed(x)
        return self.head(torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1))


def test_a_class_token_expanded_over_the_batch_is_the_parameter(tmp_path: Path) -> None:
    model = ClassToken()
    path = export(model, (5, 12), tmp_path / "cls.onnx")
    assert "Expand" in {n.op_type for n in onnx.load(str(path)).graph.node}
    imported = import_onnx(str(path))
    assert "parameter(1x1x16)" in imported.spec
    a = analyze(imported.graph)
    assert a.totals.params == sum(p.numel() for p in model.parameters()) == 16 * 13 + 16 + 17 * 3
    with torch.no_grad():
        assert tuple(a.graph.output.shape) == tuple(model(torch.randn(1, 5, 12)).shape[1:]) == (6, 3)


class SelfAttention(torch.nn.Module):
    def __init__(self, masked: bool = False) -> None:
        super().__init__()
        self.attn = torch.nn.MultiheadAttention(32, 4, batch_first=True)
        self.mask = torch.triu(torch.full((10, 10), float("-inf")), 1) if masked else None

    def forward(self, x: Any) -> Any:
        return self.attn(x, x, x, need_weights=False, attn_mask=self.mask)[0]


def test_multihead_attention_exported_sequence_first_is_one_attention(tmp_path: Path) -> None:
    """torch.onnx writes nn.MultiheadAttention sequence-first (a Transpose of the batch, the projections,
    per-head Reshapes, MatMul/Softmax/MatMul, the out-projection Gemm, a Transpose back): read as one
    `attention/mha`, with PyTorch's parameters and FlopCounterMode's FLOPs."""
    from torch.utils.flop_counter import FlopCounterMode

    model = SelfAttention()
    path = export(model, (10, 32), tmp_path / "mha.onnx")
    imported = import_onnx(str(path))
    assert "attention/mha(heads=4)" in imported.spec
    a = analyze(imported.graph)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:  # on meta: the CPU's fused path counts 0
        out = SelfAttention().to("meta")(torch.zeros(1, 10, 32, device="meta"))
    assert (a.totals.params, a.totals.flops) == (sum(p.numel() for p in model.parameters()), counter.get_total_flops())
    assert tuple(a.graph.output.shape) == tuple(out.shape[1:]) == (10, 32)


def test_a_masked_attention_is_not_read_as_one(tmp_path: Path) -> None:
    """With a mask the subgraph has another Add: not the form archcalc reads, so the Transpose that moves
    the batch is named."""
    path = export(SelfAttention(masked=True), (10, 32), tmp_path / "masked.onnx")
    with pytest.raises(UnknownOpsError) as e:
        import_onnx(str(path))
    assert [op for op, _, _ in e.value.unknown] == ["ONNX Transpose"]
    assert "perm [1, 0, 2]" in str(e.value) and "sequence-first" in str(e.value)
