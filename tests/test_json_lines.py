"""The JSON report's layer lines (report/json_lines.py) are, byte for byte, the C encoder's text of
each layer's dict (formats._layers, the definition of the fields): on every built-in spec, the
generated graphs, awkward specs, and records altered so that a cache could give one layer's text
to another that looks alike."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest

import archcalc
from archcalc.passes.analysis import Analysis, analyze
from archcalc.passes.memory import MemoryOptions
from archcalc.passes.training import LayerStep, LayerSteps, TrainingOptions
from archcalc.report import formats
from archcalc.report.json_lines import ENCODE, layer_lines
from tests.conftest import analyze_text

SPECS = sorted(p.stem for p in (Path(archcalc.__file__).parent.parent / "specs").glob("*.arch"))


def reference(analysis: Analysis) -> list[str]:
    return [ENCODE(d) for d in formats._layers(analysis)]


def written(analysis: Analysis, monkeypatch: pytest.MonkeyPatch | None = None) -> list[str]:
    """The lines, failing where one was the encoder's (the writer gave up on a value) if asked."""
    if monkeypatch is None:
        return list(layer_lines(analysis))
    original = formats._layers

    def no_fallback(a: Analysis, nodes: Any = None) -> Any:
        assert nodes is None, f"node {nodes[0].id} fell back to the encoder: {nodes[0]}"
        return original(a, nodes)

    monkeypatch.setattr(formats, "_layers", no_fallback)
    try:
        return list(layer_lines(analysis))
    finally:
        monkeypatch.setattr(formats, "_layers", original)


def assert_same(analysis: Analysis, monkeypatch: pytest.MonkeyPatch | None = None) -> None:
    expected, got = reference(analysis), written(analysis, monkeypatch)
    assert len(got) == len(expected) == len(analysis.graph)
    for k, (a, b) in enumerate(zip(expected, got)):
        assert b == a, f"layer {k}"


def test_every_built_in_spec_is_written_without_the_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(SPECS) > 50
    for spec in SPECS:
        assert_same(archcalc.analyze(spec), monkeypatch)


@pytest.mark.parametrize("options", [
    dict(memory_options=MemoryOptions(dtype="float16", batch=8)),
    dict(convention="torchinfo"),
    dict(training_options=TrainingOptions(optimizer="sgd", precision="bf16", checkpoint=3, batch=4, device="cpu")),
])
@pytest.mark.parametrize("spec", ["resnet18", "gpt2", "unet", "siamese", "lstm-lm", "swin_t"])
def test_other_options(spec: str, options: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    assert_same(analyze(archcalc.load(spec), **options), monkeypatch)


def test_the_generated_graphs(monkeypatch: pytest.MonkeyPatch) -> None:
    sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))
    try:
        import bench
    finally:
        sys.path.pop(0)
    for kind, make in bench.GRAPHS.items():
        assert_same(analyze_text(make(300), f"{kind}.arch"), monkeypatch)


AWKWARD = """name "ünïcödé ☃"
input 3x32x32
block tower(c):
	conv3-{c}, relu
	conv3-{c}/frozen, bn
tower(8)
first = conv3-8, relu
residual:
    conv3-8, relu
convtranspose3-8/s2/p1/op1, conv3-8/s2, conv5-8/d2/p4
maxpool
fc-10/nobias, relu
"""


def test_awkward_specs() -> None:
    """Tabs (editor columns), Unicode in names and scopes, frozen layers, transposed convolutions
    (Fraction jumps, phases), global fields, a node's warning (siamese and gpt2, with shared and
    tied weights, are built-in specs)."""
    awkward = analyze_text(AWKWARD)
    assert any("\t" in line for line in awkward.graph.source.lines)
    assert any(n.type == "convtranspose" for n in awkward.graph)
    assert_same(awkward)
    assert_same(analyze_text("input 3x8x8\nfc-4\n"))  # a flattened input: a node's warning


def test_integers_beyond_64_bits() -> None:
    analysis = analyze_text("input 1099511627776\nfc-1099511627776\n")
    assert analysis.macs[1] > 2**64
    assert_same(analysis)


def replaced(analysis: Analysis, node: int, **changes: Any) -> Analysis:
    """`analysis` with one node's records replaced: counts, memory, sharing, rf, step fields."""
    out = analysis
    if "counts" in changes:
        counts = list(out.counts)
        counts[node] = changes["counts"]
        out = dataclasses.replace(out, counts=tuple(counts))
    if "memory" in changes:
        nodes = list(out.memory.nodes)
        nodes[node] = changes["memory"]
        out = dataclasses.replace(out, memory=dataclasses.replace(out.memory, nodes=tuple(nodes)))
    for key in ("sharing", "rf", "macs", "connections", "uses"):
        if key in changes:
            values = list(getattr(out, key))
            values[node] = changes[key]
            out = dataclasses.replace(out, **{key: tuple(values)})
    step = analysis.step
    if "step" in changes:
        layers = list(step.layers)
        layers[node] = replaced_step(layers[node], **changes["step"])
        step = dataclasses.replace(step, layers=tuple(layers))
    if out is analysis:
        out = dataclasses.replace(out)
    out.__dict__["conventions"] = analysis.conventions
    out.__dict__["training"] = step
    return out


def replaced_step(step: LayerStep, **changes: Any) -> LayerStep:
    """A layer's step with some fields changed: its own (kept, segment) or the shared figures' (a new
    figures record, equal-looking to the one the identical layers keep)."""
    own = {k: v for k, v in changes.items() if k in ("kept", "segment")}
    shared = {k: v for k, v in changes.items() if k not in own}
    return dataclasses.replace(step, **own, **({"figures": dataclasses.replace(step.figures, **shared)}
                                               if shared else {}))


def test_layers_that_look_alike_but_differ_in_one_field() -> None:
    """Every cache in the writer is keyed so that it cannot hand a layer another's text: by the
    record object, or by values checked to be exact ints, bools and strs (1 == 1.0 == True)."""
    from fractions import Fraction

    from archcalc.passes.receptive_field import RF
    from archcalc.passes.sharing import Sharing

    base = analyze_text("input 4x8x8\n" + "conv3-4, relu\n" * 4)
    conv, other = 3, 5  # two identical convolutions
    assert base.counts[conv] is base.counts[other] and base.other_ops[conv] is base.other_ops[other]
    c = base.counts[conv]
    s = base.step.layers[conv]
    sh = base.sharing[conv]
    m = base.memory.nodes[conv]
    f = base.rf[conv]
    assert isinstance(f, RF) and sh is not None
    cases: list[dict[str, Any]] = [
        {"counts": dataclasses.replace(c, biases=c.biases + 1)},  # an equal-looking record, one count more
        {"counts": dataclasses.replace(c, frozen=True)},  # True where 1 stands
        {"counts": dataclasses.replace(c, biases=float(c.biases))},
        {"memory": dataclasses.replace(m, buffer_bytes=True)},
        {"memory": dataclasses.replace(m, activation_bytes=m.activation_bytes + 1)},
        {"sharing": Sharing(sh.params, sh.fc_equivalent_params + 1)},
        {"sharing": Sharing(True, 1)},
        {"sharing": Sharing(1, 1)},
        {"rf": dataclasses.replace(f, jump=tuple(Fraction(j) for j in f.jump))},  # == (1, 1), written 1.0
        {"rf": dataclasses.replace(f, size=(True, *f.size[1:]))},
        {"rf": dataclasses.replace(f, start=tuple(float(x) for x in f.start))},
        {"rf": dataclasses.replace(f, aligned=1)},
        {"rf": dataclasses.replace(f, start=tuple(x + 1 for x in f.start))},
        {"macs": True},
        {"macs": 1.0},
        {"connections": float("nan")},
        {"uses": False},
        {"step": {"segment": 0}},
        {"step": {"segment": False}},
        {"step": {"why": "x"}},
        {"step": {"weight_grad": 1}},
        {"step": {"input_grad": (1,)}},
        {"step": {"input_grad": (False,)}},
        {"step": {"forward": True}},
        {"step": {"optimizer_bytes": s.optimizer_bytes + 1}},
        {"step": {"kept": tuple(dataclasses.replace(k, new=1) for k in s.kept)}},
        {"step": {"kept": tuple(dataclasses.replace(k, bytes=float(k.bytes)) for k in s.kept)}},
        {"step": {"kept": tuple(dataclasses.replace(k, what=k.what + "é\"\n") for k in s.kept)}},
    ]
    for change in cases:
        changed = replaced(base, conv, **change)
        expected, got = reference(changed), written(changed)
        assert got == expected, change
        assert got[conv] != reference(base)[conv], change  # the change shows, and only there
        assert [x for k, x in enumerate(got) if k != conv] == [x for k, x in enumerate(reference(base)) if k != conv]


def test_two_layers_equal_but_for_a_type_in_one_document() -> None:
    """Two identical layers, one holding True or a Fraction where the other holds 1: the values
    compare equal, so a cache by value alone would give the second the first's text."""
    from fractions import Fraction

    from archcalc.passes.sharing import Sharing

    base = analyze_text("input 4x8x8\n" + "conv3-4, relu\n" * 4)
    conv, other = 3, 5
    c, m, f, s = base.counts[conv], base.memory.nodes[conv], base.rf[conv], base.step.layers[conv]
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"sharing": Sharing(1, 1)}, {"sharing": Sharing(True, 1)}),
        ({"counts": dataclasses.replace(c, frozen=1)}, {"counts": dataclasses.replace(c, frozen=True)}),
        ({"memory": dataclasses.replace(m, buffer_bytes=1)}, {"memory": dataclasses.replace(m, buffer_bytes=True)}),
        ({"rf": f}, {"rf": dataclasses.replace(f, jump=tuple(Fraction(j) for j in f.jump))}),  # type: ignore[union-attr]
        ({"step": {"segment": 0}}, {"step": {"segment": False}}),
        ({"step": {"input_grad": (True,)}}, {"step": {"input_grad": (1,)}}),
        ({"step": {"weight_grad": True}}, {"step": {"weight_grad": 1}}),
        ({"step": {"forward": 1}}, {"step": {"forward": True}}),
    ]
    assert s.kept
    for first, second in pairs:
        changed = replaced(replaced(base, conv, **first), other, **second)
        got = written(changed)
        assert got == reference(changed), (first, second)
        assert got[conv].split(", ", 1)[1] != got[other].split(", ", 1)[1], (first, second)


def test_sharing_is_cached_by_all_it_holds() -> None:
    """json_lines caches a Sharing's text by (params, fc_equivalent_params): the record holds no more."""
    from archcalc.passes.sharing import Sharing

    assert [f.name for f in dataclasses.fields(Sharing)] == ["params", "fc_equivalent_params"]


def test_a_subset_of_nodes() -> None:
    analysis = archcalc.analyze("resnet18")
    nodes = [analysis.graph.node(i) for i in (0, 5, 7)]
    assert list(layer_lines(analysis, nodes)) == [ENCODE(d) for d in formats._layers(analysis, nodes)]


def test_full_tables_start_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past TABLE_LIMIT texts a table is emptied (memory stays flat): the lines stay the same."""
    from archcalc.report import json_lines

    monkeypatch.setattr(json_lines, "TABLE_LIMIT", 2)
    for spec in ("resnet50", "densenet121", "gpt2", "unet"):
        assert_same(archcalc.analyze(spec), monkeypatch)


def test_kept_tensors_from_the_compact_steps_as_from_records(monkeypatch: pytest.MonkeyPatch) -> None:
    """layer_lines writes the kept tensors from LayerSteps' compact form (a rule keeping one input or
    the output: its text once, each node's ids and bytes filled in) or, for any other sequence of
    steps, from their records: the same lines, on a storage kept twice, through views, own tensors
    and free parameters."""
    from tests.test_training_shared import KEPT_TWICE

    for analysis in (analyze_text(KEPT_TWICE), archcalc.analyze("gpt2"), archcalc.analyze("resnet18")):
        assert isinstance(analysis.step.layers, LayerSteps)
        as_records = replaced(analysis, 0, step={})  # the steps a tuple of LayerStep records
        assert type(as_records.step.layers) is tuple
        assert written(as_records) == written(analysis, monkeypatch)
        assert_same(analysis)
