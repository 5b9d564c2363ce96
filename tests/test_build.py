"""The torch builder and `archcalc export --torch`: readable fx models and standalone files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

import archcalc  # noqa: E402
from archcalc import load_text  # noqa: E402
from archcalc.cli import cli  # noqa: E402
from archcalc.errors import BuildError  # noqa: E402
from archcalc.layers import REGISTRY, LayerType  # noqa: E402
from archcalc.passes.analysis import analyze  # noqa: E402
from archcalc.pytorch.build import build, module_names  # noqa: E402
from archcalc.pytorch.export import export_source  # noqa: E402

DAG = """\
name tiny-dag
input 3x16x16
block down(c):
    residual:
        conv3-{c}/s2/nobias, bn, relu
        conv3-{c}/nobias, bn
    shortcut: auto
    relu
stem = conv3-8, bn, relu
d = down(16)
concat:
    | conv1-8
    | maxpool3/s1/p1/ceil, conv1-4
side = @stem, conv1-2
@d, gap, fc-10
"""


def params(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def outputs(out: object) -> list[tuple[int, ...]]:
    return [tuple(o.shape) for o in (out if isinstance(out, tuple) else (out,))]


def test_module_names_follow_statements_blocks_and_numbering() -> None:
    # docs/spec-language.md "Module names": a named statement of several layers is a container
    # numbered 0, 1, …; a block call is a container; unnamed layers are numbered where they stand;
    # the auto shortcut's projection is downsample.0/.1; the implicit flatten takes no number
    graph = load_text(DAG, "dag.arch")
    names = module_names(graph)
    assert [names[i] for i in range(1, len(graph))] == [
        "stem.0", "stem.1", "stem.2",
        "d.0", "d.1", "d.2", "d.3", "d.4", "d.downsample.0", "d.downsample.1", "d.5", "d.6",
        "0", "1", "2", "3", "side", "4", "flatten", "5"]
    model = build(graph)
    assert type(model).__name__ == "TinyDag"
    assert 'getattr(self.d, "0")(stem_2)' in model.code
    assert isinstance(model.get_submodule("d.downsample.0"), torch.nn.Conv2d)  # the auto shortcut
    assert isinstance(model.get_submodule("flatten"), torch.nn.Flatten)  # implicit flatten
    assert list(model.state_dict())[:2] == ["stem.0.weight", "stem.0.bias"]


def test_module_names_without_a_spec_follow_types_and_ids() -> None:
    # a graph made by hand (one layer of `calc`) has no statement names: `{type}_{id}`
    from archcalc.graph import Draft, DraftGraph
    from archcalc.passes.shapes import infer

    conv = REGISTRY["conv"].normalize({"out_channels": 4, "kernel": (3,)})
    graph = infer(DraftGraph((Draft(0, "input", {"shape": (3, 8, 8)}, (), "input 3x8x8", None),
                              Draft(1, "conv", conv, (0,), "conv3-4", None, ("blk#1",))), "by-hand"))
    assert module_names(graph) == {1: "blk_1.conv_1"}


def test_a_name_ending_in_a_number_counts_up_and_a_repeat_is_a_container() -> None:
    spec = ("input 3x8x8\nblock two(c):\n    conv3-{c}\n    relu\n"
            "blocks = two(4) x2\nblock7 = two(4) x2\nconv = conv3-4 x2\n")
    names = module_names(load_text(spec))
    assert list(names.values()) == [
        "blocks.0.0", "blocks.0.1", "blocks.1.0", "blocks.1.1",  # a container of the repetitions
        "block7.0", "block7.1", "block8.0", "block8.1",  # counted from the name's number
        "conv.0", "conv.1"]


def test_shared_and_replayed_layers_call_the_owners_module() -> None:
    siamese = archcalc.load("siamese")
    names = module_names(siamese)
    shared = [n for n in siamese if n.shares is not None]
    assert shared and all(names[n.id] == names[n.shares] for n in shared)
    model = build(siamese)
    assert params(model) == analyze(siamese).totals.params


def test_several_outputs_come_as_a_tuple_main_output_first() -> None:
    graph = load_text(DAG, "dag.arch")
    assert [n.id for n in graph.outputs()] == [16, 17, 20]
    out = build(graph).eval()(torch.randn(2, 3, 16, 16))
    # main output (fc-10) first, then the concat head and the side conv in order
    assert outputs(out) == [(2, 10), (2, 12, 8, 8), (2, 2, 16, 16)]


def test_build_counts_equal_analysis_lenet5() -> None:
    model = archcalc.build("lenet5")
    assert params(model) == analyze(archcalc.load("lenet5")).totals.params == 61_706
    assert outputs(model(torch.randn(1, 1, 32, 32))) == [(1, 10)]


def test_layer_without_torch_equivalent_names_type_and_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(type(REGISTRY["lrn"]), "torch_module", LayerType.torch_module)
    graph = load_text("input 3x8x8\nconv3-4\nlrn\n", "x.arch")
    message = r"x\.arch:3: cannot build 'lrn': layer type 'lrn' has no torch equivalent"
    with pytest.raises(BuildError, match=message):
        build(graph)


def test_verify_of_unbuildable_spec_is_a_clean_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(type(REGISTRY["lrn"]), "torch_module", LayerType.torch_module)
    spec = tmp_path / "x.arch"
    spec.write_text("input 3x8x8\nconv3-4\nlrn\n")
    result = CliRunner().invoke(cli, ["verify", str(spec), "--device", "cpu", "--runs", "0"])
    assert result.exit_code == 2
    assert "layer type 'lrn' has no torch equivalent" in result.output
    assert "Traceback" not in result.output


def _exec_export(source: str) -> dict[str, object]:
    namespace: dict[str, object] = {"__name__": "exported"}
    exec(compile(source, "exported.py", "exec"), namespace)  # noqa: S102 - our own generated file
    return namespace


@pytest.mark.parametrize("spec, shape", [("dag", None), ("vgg11_bn", (3, 32, 32)), ("resnet18", (3, 32, 32))])
def test_export_runs_with_the_same_figures(spec: str, shape: tuple[int, ...] | None) -> None:
    graph = load_text(DAG, "dag.arch") if spec == "dag" else archcalc.load(spec, shape)
    source = export_source(graph)
    assert "import torch" in source and "archcalc" not in source.split('"""', 2)[2]  # imports only torch
    namespace = _exec_export(source)
    cls = next(v for k, v in namespace.items() if isinstance(v, type) and k == type(build(graph)).__name__)
    model = cls().eval()
    fx_model = build(graph).eval()
    x = torch.randn(2, *graph.input.shape)
    assert params(model) == params(fx_model) == analyze(graph).totals.params
    assert sum(b.numel() for b in model.buffers()) == analyze(graph).totals.counts.buffers
    assert outputs(model(x)) == outputs(fx_model(x))
    # the same parameter names and shapes: a state dict moves between the two
    model.load_state_dict(fx_model.state_dict())
    with torch.no_grad():
        ours, theirs = model(x), fx_model(x)
    for a, b in zip(*(o if isinstance(o, tuple) else (o,) for o in (ours, theirs)), strict=True):
        assert torch.equal(a, b)


def test_export_command_writes_a_file_that_runs(tmp_path: Path) -> None:
    target = tmp_path / "lenet.py"
    result = CliRunner().invoke(cli, ["export", "lenet5", "--torch", "-o", str(target)])
    assert result.exit_code == 0, result.output
    run = subprocess.run([sys.executable, str(target)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "params 61,706, output [(1, 10)]" in run.stdout


def test_export_to_stdout_and_needs_torch_flag() -> None:
    result = CliRunner().invoke(cli, ["export", "lenet5", "--torch"])
    assert result.exit_code == 0 and "class Lenet5(nn.Module):" in result.output
    assert CliRunner().invoke(cli, ["export", "lenet5"]).exit_code == 2


def test_static_path_never_imports_torch() -> None:
    code = ("import sys, archcalc, archcalc.cli, archcalc.pytorch.verify, archcalc.pytorch.build, "
            "archcalc.pytorch.export; "
            "archcalc.analyze('vgg16'); assert 'torch' not in sys.modules, 'torch imported'")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
