"""`archcalc import`: PyTorch models in, a readable spec out, every figure PyTorch's own.

Each model of tests/import_models.py (the styles people write: a ResNet, a VGG, a functional
forward, shared modules, a tied LM, an LSTM) is imported, the written spec is parsed afresh and
analysed, and its figures must equal what PyTorch measures on the original model here and now:
sum(p.numel()), buffers, FlopCounterMode's FLOPs and the output shape of every leaf-module call
(forward hooks). `archcalc verify` of the written spec must pass too.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import subprocess
import sys
from contextlib import contextmanager
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

import archcalc  # noqa: E402
from archcalc import load_text  # noqa: E402
from archcalc.cli import cli  # noqa: E402
from archcalc.errors import ModelImportError, UnknownOpsError  # noqa: E402
from archcalc.importers import import_module, import_target  # noqa: E402
from archcalc.passes.analysis import analyze  # noqa: E402
from tests import import_models as M  # noqa: E402

pytestmark = pytest.mark.torch

CASES: dict[str, tuple[Any, Any]] = {
    "resnet-like": (lambda: M.ResNetLike(width=8, blocks=2), (3, 32, 32)),
    "vgg-like": (lambda: M.VGGLike(), (3, 32, 32)),
    "vgg-like-bn": (lambda: M.VGGLike(bn=True), (3, 32, 32)),
    "functional": (M.Functional, (3, 32, 32)),
    "siamese": (M.Siamese, {"left": (1, 16, 16), "right": (1, 16, 16)}),
    "recursive": (M.Recursive, (3, 8, 8)),
    "tied-lm": (M.TiedLM, (12,)),
    "lstm": (M.LSTMClassifier, (7,)),
    "encoder": (M.Encoder, (10, 32)),
    "norms-shuffle": (M.NormsAndShuffle, (3, 8, 8)),
}


@contextmanager
def _unfused_rnn() -> Any:
    """PyTorch's fused oneDNN RNN kernel hides its products from FlopCounterMode (conventions.md)."""
    mkldnn = torch.backends.mkldnn
    with mkldnn.flags(enabled=False, allow_tf32=mkldnn.allow_tf32):
        yield


def measure(model: Any, shapes: Any) -> dict[str, Any]:
    """What PyTorch says of the model: parameters, buffers, FlopCounterMode FLOPs at batch 1, and the
    output shape of every leaf-module call in forward order (forward hooks)."""
    from torch.utils.flop_counter import FlopCounterMode

    named = shapes if isinstance(shapes, dict) else {"x": shapes}
    embeds = any(isinstance(m, torch.nn.Embedding) for m in model.modules())
    inputs = [torch.randint(0, 10, (1, *s)) if embeds else torch.randn(1, *s) for s in named.values()]
    calls: list[tuple[str, tuple[int, ...]]] = []
    hooks = []
    for path, module in model.named_modules():
        # leaves, and nn.MultiheadAttention, whose out_proj is never called as a module
        if path and (not list(module.children()) or isinstance(module, torch.nn.MultiheadAttention)):
            def hook(_m: Any, _a: Any, out: Any, path: str = path) -> None:
                tensor = out[0] if isinstance(out, tuple) else out
                calls.append((path, tuple(tensor.shape[1:])))
            hooks.append(module.register_forward_hook(hook))
    model.eval()
    # grad on and the math SDPA kernel: with grad off nn.MultiheadAttention takes its fused fast path, and
    # the CPU flash kernel has no FLOP formula; both hide products from FlopCounterMode (conventions.md)
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.MATH), _unfused_rnn(), FlopCounterMode(display=False) as counter:
        model(*inputs)
    for h in hooks:
        h.remove()
    return {"params": sum(p.numel() for p in model.parameters()), "buffers": sum(b.numel() for b in model.buffers()),
            "flops": counter.get_total_flops(), "calls": calls}


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_equals_pytorch(case: str) -> None:
    make, shapes = CASES[case]
    model = make()
    truth = measure(model, shapes)
    imported = import_module(model, shapes, name=case)
    a = analyze(load_text(imported.spec, f"{case}.arch"))  # the written text, read afresh
    assert (a.totals.params, a.totals.counts.buffers, a.totals.flops) == (
        truth["params"], truth["buffers"], truth["flops"])
    ours = [(path, tuple(a.graph.node(i).shape)) for path, i in imported.modules]
    assert ours == [c for c in truth["calls"] if c[0] in {p for p, _ in imported.modules}]
    assert len(ours) == len(truth["calls"])  # every leaf call is a node of the spec


@pytest.mark.parametrize("case", sorted(CASES))
def test_verify_passes_on_the_imported_spec(case: str) -> None:
    from archcalc.pytorch.verify import verify

    make, shapes = CASES[case]
    report = verify(import_module(make(), shapes, name=case).graph, device="cpu", runs=0, rf=False)
    assert report.ok, [c for c in report.failures]


def test_figures_people_know() -> None:
    """Hand-checked: the Siamese pair is 8·9 + 8 + 392·32 + 32 + 33 = 12,689 parameters, counted once
    (12,656 more if each tower call counted its own); the tied LM's output projection adds no parameter."""
    siamese = analyze(import_module(M.Siamese(), {"left": (1, 16, 16), "right": (1, 16, 16)}).graph)
    assert (siamese.totals.params, siamese.totals.params_if_unshared) == (12_689, 12_689 + 12_656)
    tied = analyze(import_module(M.TiedLM(), (12,)).graph)
    assert tied.totals.params == 100 * 16 + 16 * 16 + 16


def test_the_spec_reads_like_a_hand_written_one() -> None:
    spec = import_module(M.ResNetLike(width=8, blocks=2), (3, 32, 32), name="resnet-like").spec
    body = [line for line in spec.splitlines() if line and not line.startswith("#")]
    assert "block basic(c):" in spec and "basic(8) x2  # stages.0.0, stages.0.1" in spec
    assert "stage(16)  # stages.1" in spec and "stage(32)  # stages.2" in spec
    assert len(body) < 25  # 52 layers, in blocks
    siamese = import_module(M.Siamese(), {"left": (1, 16, 16), "right": (1, 16, 16)}).spec
    assert "tower as shared_tower" in siamese and "@right, shared_tower" in siamese
    assert "fc-100/nobias(tie=wte)" in import_module(M.TiedLM(), (12,)).spec
    assert "conv3-8 as conv_, relu, conv_, relu, conv_, relu" in import_module(M.Recursive(), (3, 8, 8)).spec


def test_transformer_and_norm_modules_are_written_as_their_layer_types() -> None:
    spec = import_module(M.Encoder(), (10, 32)).spec
    for item in ("input 10x32 as sequence", "class_token = parameter(1x1x32)",
                 "attn = @add_2, layernorm, attention/mha(heads=4)\n", "layernorm(eps=1e-06)",
                 "cross = attention/mha/nobias(@add_4, @input, heads=4)", "rmsnorm, token(0), fc-5"):
        assert item in spec, item
    spec = import_module(M.NormsAndShuffle(), (3, 8, 8)).spec
    assert "conv3-16, groupnorm(4), relu, channel-shuffle(groups=4), conv3-16/g4" in spec
    assert "groupnorm(2, eps=1e-06, affine=false), relu" in spec


def test_what_a_layer_type_cannot_write_exactly_is_listed_with_the_reason() -> None:
    """nn.RMSNorm's default eps (None: the dtype's epsilon) and a masked attention are listed, not guessed."""
    with pytest.raises(UnknownOpsError) as e:
        import_module(torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.RMSNorm(8)), (3, 8))
    assert "torch.nn.RMSNorm ×1: eps=None (the dtype's machine epsilon): archcalc's rmsnorm takes a number" in str(
        e.value)
    with pytest.raises(UnknownOpsError) as e:
        import_module(M.MaskedAttention(), (6, 16))
    assert ("torch.nn.MultiheadAttention ×1: a mask: archcalc's attention attends to every position (or "
            "/causal, written so)") in str(e.value)


def test_functional_calls_are_seen() -> None:
    spec = import_module(M.Functional(), (3, 32, 32)).spec
    for item in ("mul(@sigmoid, @relu)", "concat(@relu, @mul)", "leaky-relu(slope=0.2)", "scale = parameter(1x16x1x1)",
                 "adaptive-avgpool4", "flatten", "dropout(p=0.1)", "log-softmax(dim=-1)"):
        assert item in spec, item


# -- what archcalc cannot count ---------------------------------------------------------------------


def test_unknown_operations_stop_the_import_with_a_list() -> None:
    with pytest.raises(UnknownOpsError) as e:
        import_module(M.WithInstanceNorm(), (3, 8), name="ln")
    text = str(e.value)
    assert text.startswith("ln uses 2 operations archcalc has no rule for; nothing was counted:")
    assert ("  torch.nn.InstanceNorm1d ×1: archcalc has no layer type for it\n"
            "      norm at tests/import_models.py:") in text
    assert "  Tensor.pow ×1: archcalc has no layer type for it\n      (forward) at tests/import_models.py:" in text
    assert "--allow-unknown" in text
    assert e.value.unknown[0][:2] == ("torch.nn.InstanceNorm1d", 1)


def test_allow_unknown_keeps_opaque_nodes_flagged_everywhere() -> None:
    imported = import_module(M.WithInstanceNorm(), (3, 8), allow_unknown=True)
    assert ("fc-8, unknown(op=torch.nn.InstanceNorm1d, shape=3x8, weights=3, biases=3)\n"
            "unknown = unknown(op=Tensor.pow") in imported.spec
    a = analyze(imported.graph)
    assert a.totals.params == sum(p.numel() for p in M.WithInstanceNorm().parameters()) == 78
    assert len(a.unknown_ops) == 2 and a.excluding() == " (excluding 2 unknown ops)"
    assert any("unknown operation 'torch.nn.InstanceNorm1d'" in w.message for w in a.warnings)
    from archcalc.report import formats

    assert json.loads(formats.to_json(a))["totals"]["unknown_ops"] == 2
    assert "(excluding 2 unknown ops)" in formats.to_markdown(a)


# -- bad input: one clear message each ------------------------------------------------------------


def line_of(text: str) -> int:
    """The line of tests/import_models.py that holds `text` (messages name the user's source line)."""
    lines = open("tests/import_models.py", encoding="utf-8").read().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


@pytest.mark.parametrize(("target", "shape", "message"), [
    ("tests/import_models.py:DataDependent", (4,),
     f"tests/import_models.py:{line_of('if x.sum() > 0')}: the forward of tests/import_models.py:DataDependent "
     "decides what to compute from a tensor's values, which tracing cannot follow"),
    ("tests/import_models.py:LoopsOverATensor", (4,),
     f"tests/import_models.py:{line_of('for part in self.fc(x)')}: the forward of "
     "tests/import_models.py:LoopsOverATensor unpacks or loops over a tensor it computed, "
     "whose number of parts tracing does not know"),
    ("tests/import_models.py:TwoInputs", (4,),
     "tests/import_models.py:TwoInputs.forward(x, mask) needs 2 inputs, given 1 (x): give a shape for each, as in "
     "--input x=SHAPE, --input mask=SHAPE"),
    ("tests/import_models.py:broken_factory", (4,),
     f"tests/import_models.py:{line_of('config file is missing')}: calling broken_factory() raised RuntimeError: "
     "the config file is missing"),
    ("tests/import_models.py:Nope", (4,), "tests/import_models.py has no 'Nope'"),
    ("tests/no_such_file.py:Net", (4,),
     "tests/no_such_file.py: no such file (the target is tests/no_such_file.py:Net)"),
    ("no_such_package.models:net", (4,),
     "no module named 'no_such_package' (the target is no_such_package.models:net): is it installed in this Python"),
    ("tests/import_models.py:ResNetLike", (4, 32, 32),
     f"tests/import_models.py:{line_of('self.fc(torch.flatten(self.pool')}: running 'stem.0 (torch.nn.Conv2d)' = "
     "Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False) on 4×32×32 (per sample) "
     "failed: RuntimeError: Invalid channel dimensions. Check the input shapes (--input) fit the model"),
])
def test_bad_targets_get_one_clear_message(target: str, shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(ModelImportError) as e:
        import_target(target, shape)
    assert message in str(e.value), str(e.value)
    assert "Traceback" not in str(e.value)


def test_a_factory_with_arguments() -> None:
    imported = import_target("tests/import_models.py:make_resnet", (3, 16, 16), ["width=4"])
    assert analyze(imported.graph).totals.params == sum(p.numel() for p in M.make_resnet(4).parameters())
    with pytest.raises(ModelImportError, match=r"calling make_resnet\(depth=3\) raised TypeError"):
        import_target("tests/import_models.py:make_resnet", (3, 16, 16), ["depth=3"])


# -- the command line --------------------------------------------------------------------------------


def test_cli_import_writes_a_spec_every_command_reads(tmp_path: Any) -> None:
    out = tmp_path / "resnet.arch"
    r = CliRunner().invoke(cli, ["import", "tests/import_models.py:ResNetLike", "--input", "3x32x32", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "checked: every layer's output shape, parameters, buffers and FLOPs equal the model's" in r.output
    truth = sum(p.numel() for p in M.ResNetLike().parameters())
    assert archcalc.analyze(str(out)).totals.params == truth
    r = CliRunner().invoke(cli, ["report", "tests/import_models.py:VGGLike", "--input", "3x32x32", "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["totals"]["params"] == sum(p.numel() for p in M.VGGLike().parameters())
    for command in (["rf"], ["check"], ["verify", "--runs", "0", "--device", "cpu"]):
        r = CliRunner().invoke(cli, [*command, "tests/import_models.py:VGGLike", "--input", "3x32x32"])
        assert r.exit_code == 0, (command, r.output)


def test_cli_errors_are_one_message_and_status_2() -> None:
    r = CliRunner().invoke(cli, ["import", "tests/import_models.py:WithInstanceNorm", "--input", "3x8"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert r.output.startswith("error: tests/import_models.py:WithInstanceNorm uses 2 operations archcalc has no rule")
    r = CliRunner().invoke(cli, ["import", "tests/import_models.py:VGGLike"])
    assert r.exit_code == 2 and "needs the input shape without the batch axis: --input 3x224x224" in r.output
    r = CliRunner().invoke(cli, ["import", "tests/import_models.py:make_resnet", "--input", "3x8x8", "--arg", "4"])
    assert r.exit_code == 2 and "--arg takes KEY=VALUE" in r.output


def test_from_module_on_the_facade() -> None:
    graph = archcalc.from_module(M.VGGLike(), (3, 32, 32))
    assert graph.source is not None and graph.source.text.startswith("# Imported from VGGLike by archcalc")
    assert archcalc.analyze(graph).totals.params == sum(p.numel() for p in M.VGGLike().parameters())


# -- a 70-billion-parameter model on the meta device ----------------------------------------------------

BIG = """
import json, resource, sys, time
sys.path.insert(0, ".")
import torch
from archcalc.importers import import_module
from tests.import_models import Llama
start = time.perf_counter()
with torch.device("meta"):
    model = Llama()
imported = import_module(model, (128,), allow_unknown=True, name="llama-70b")
from archcalc.passes.analysis import analyze
a = analyze(imported.graph)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": time.perf_counter() - start, "peak_mb": peak,
                  "params": a.totals.params, "model": sum(p.numel() for p in model.parameters()),
                  "flops": a.totals.flops, "unknown": len(a.unknown_ops), "blocks": imported.blocks}))
"""


def test_a_70_billion_parameter_model_imports_on_meta_in_little_memory() -> None:
    out = subprocess.run([sys.executable, "-c", BIG], capture_output=True, text=True, check=True, timeout=600)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["params"] == r["model"] == 68_976_648_192
    assert r["blocks"] == 2  # RMSNorm and the decoder block: `llama_block x80`
    assert r["peak_mb"] < 2048, r  # nothing allocated: the process stays small (about 0.35 GB measured)
    assert r["seconds"] < 300, r


# -- every declared PyTorch name resolves ---------------------------------------------------------------


def test_every_declared_torch_name_resolves() -> None:
    from archcalc.importers.torch_names import PARAMETER, resolve
    from archcalc.layers import REGISTRY

    missing = []
    for layer in REGISTRY.values():
        for name in (*layer.torch_modules, *layer.torch_functions):
            if name == PARAMETER or name.startswith(("Tensor.", "transformers.")):
                continue
            if name.startswith("torchvision.") and importlib.util.find_spec("torchvision") is None:
                continue  # torchvision's names resolve where it is installed (tools/import_reference.py)
            if name.startswith("torchvision."):
                importlib.import_module("torchvision")
            if resolve(name) is None:
                missing.append(f"{layer.name}: {name}")
        for name in layer.torch_functions:
            if name.startswith("Tensor.") and not hasattr(torch.Tensor, name[len("Tensor."):]):
                missing.append(f"{layer.name}: {name}")
    assert not missing, missing


def test_a_view_to_its_own_shape_and_a_whole_slice_are_no_nodes() -> None:
    """A view to the shape a tensor has (Hugging Face's `input_ids.view(-1, T)`) and a slice keeping it
    whole (`hidden[:, 0:, :]`, its logits_to_keep=0) are no nodes,
    and an instance is named by its module's last name where no other has it (`as wte`)."""
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.ModuleDict({"wte": nn.Embedding(50, 8)})
            self.head = nn.Linear(8, 50, bias=False)
            self.head.weight = self.body["wte"].weight

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            x = self.body["wte"](ids)
            return self.head(x.view(-1, x.shape[1], x.shape[2])[:, 0:, :])

    imported = import_module(Net(), (6,))
    body = [line for line in imported.spec.splitlines() if line and not line.startswith("#")]
    assert body == ["name Net", "input 6", "embedding(vocab=50, dim=8) as wte, fc-50/nobias(tie=wte)"]
    assert analyze(imported.graph).totals.params == 400


def test_a_rate_that_differs_per_block_becomes_a_block_parameter() -> None:
    # ConvNeXt's and EfficientNet's stochastic-depth rate grows block by block: the blocks were written
    # out one by one (convnext_tiny in 116 lines, now 52); a float shared by every call stays written
    from archcalc.importers.writer import _anti_unify

    texts = ["conv3-96, layernorm(eps=1e-06), stochastic-depth(p=0)",
             "conv3-192, layernorm(eps=1e-06), stochastic-depth(p=0.0058823529411764705)"]
    params, body, args = _anti_unify(texts, [])
    assert params == ["c", "p"] and body == "conv3-{c}, layernorm(eps=1e-06), stochastic-depth(p={p})"
    assert args == [["96", "0"], ["192", "0.0058823529411764705"]]
