"""The training pass builds one `StepFigures` per distinct layer, input-gradient pattern, trained
flag, backward flag, counts and MACs, shared by every node alike in all of them. Each node's
figures here are computed again for that node alone, from the rules and the other passes, and must
equal the shared record's: a cache keyed too loosely would hand a node another's figures."""

from __future__ import annotations

from typing import Any

import pytest

import archcalc
from archcalc.passes import training as tp
from archcalc.passes.analysis import Analysis, analyze
from archcalc.passes.counting import FLOPS_PER_MAC
from archcalc.passes.training import Kept, LayerSteps, StepFigures, TrainingOptions, _Storages
from archcalc.tensor import prod
from tests.conftest import analyze_text


def requires_grad(analysis: Analysis) -> tuple[list[bool], list[bool]]:
    """Per node whether its weights are trained and whether its output requires grad, node by node
    from its own counts and layer type (a sharer's weights train where its owner's do)."""
    graph = analysis.graph
    trained = [tp.own_counts(graph.node(n.shares if n.shares is not None else n.id)).trainable > 0 for n in graph]
    needs: list[bool] = []
    for n in graph:
        blocked = n.type == "input" or n.layer.shape_only
        needs.append(not blocked and (trained[n.id] or any(needs[i] for i in n.inputs)))
    return trained, needs


def reaches_loss(graph: Any) -> list[bool]:
    """Per node: whether the loss (the sum of every output, a node nothing reads) depends on it."""
    reaches = [not graph.consumers(n.id) for n in graph]
    for n in reversed(list(graph)):
        if reaches[n.id]:
            for j in n.inputs:
                reaches[j] = True
    return reaches


def uncached(analysis: Analysis, node_id: int) -> StepFigures:
    """One node's figures, from its own rules, nothing shared with another node."""
    graph, step = analysis.graph, analysis.step
    options = step.options
    trained, needs = requires_grad(analysis)
    n = graph.node(node_id)
    in_backward = needs[node_id] and reaches_loss(graph)[node_id]
    input_grad = tuple(needs[i] for i in n.inputs)
    flops = FLOPS_PER_MAC * options.batch
    backward = tp._rules(n, input_grad, trained[node_id], flops)[2] if in_backward else (0, 0, 0, "")
    return StepFigures(flops * analysis.macs[node_id], *backward, input_grad, trained[node_id], in_backward,
                       *tp._memory_terms(analysis.counts[node_id], options))


def assert_each_node_its_own(analysis: Analysis) -> None:
    for n in analysis.graph:
        assert analysis.step.layers[n.id].figures == uncached(analysis, n.id), n


ALIKE_BUT_ONE = """input 4x8x8
conv3-4, relu
conv3-4, relu
conv3-4/frozen, relu
tower = conv3-4 as twin, relu
twin, relu
conv3-4/nobias, relu
fc-8
fc-8/nobias as head
relu
fc-8/nobias(tie=head)
relu
fc-8/nobias
"""


def test_layers_alike_but_for_one_field_get_their_own_figures() -> None:
    """The first conv (its input needs no gradient), a frozen one, a shared instance applied again
    (its counts 0 at the second call), one without bias, a tied head: each its own figures; the
    identical ones one record."""
    analysis = analyze_text(ALIKE_BUT_ONE)
    assert_each_node_its_own(analysis)
    layers = analysis.step.layers
    convs = [n.id for n in analysis.graph if n.type == "conv"]
    first, second, frozen, twin, again, nobias = convs
    assert layers[first].figures is not layers[second].figures  # input_grad (False,) against (True,)
    assert layers[first].input_grad == (False,) and layers[second].input_grad == (True,)
    assert layers[frozen].weight_grad is False and layers[frozen].optimizer_bytes == 0
    assert layers[again].weight_bytes == 0 < layers[twin].weight_bytes  # the second call owns no weights
    assert layers[nobias].figures != layers[second].figures
    head, tied, plain = [n.id for n in analysis.graph if n.type == "fc"][1:]
    assert analysis.graph.node(tied).tie is not None
    assert layers[tied].weight_bytes == 0 < layers[head].weight_bytes == layers[plain].weight_bytes  # the head's
    relus = [n.id for n in analysis.graph if n.type == "relu" and n.shape == analysis.graph.node(first).shape]
    assert len(relus) == 6
    assert len({id(layers[i].figures) for i in relus}) == 1  # alike: one record
    kept = [layers[i].kept for i in relus]  # each node's own: the storages they name differ
    assert len({tuple(k.storage for k in each) for each in kept}) == len(relus)


@pytest.mark.parametrize("spec", ["resnet18", "gpt2", "siamese", "densenet121", "alexnet-paper", "lstm-lm"])
def test_every_node_of_the_zoo(spec: str) -> None:
    assert_each_node_its_own(archcalc.analyze(spec))


def test_other_options_and_checkpointing() -> None:
    options = TrainingOptions(optimizer="sgd", precision="bf16", checkpoint=3, batch=4, device="cpu")
    analysis = analyze(archcalc.load("resnet18"), training_options=options)
    assert_each_node_its_own(analysis)
    assert {s.segment for s in analysis.step.layers} == {0, 1, 2}


def test_a_step_reads_as_before() -> None:
    """LayerStep's figures read as attributes, the sums as before."""
    s = archcalc.analyze("resnet18").step.layers[1]
    f = s.figures
    assert (s.forward, s.grad_input, s.grad_weight, s.backward, s.step) == (
        f.forward, f.grad_input, f.grad_weight, f.grad_input + f.grad_weight, f.forward + f.grad_input + f.grad_weight)
    assert s.saved_bytes == sum(k.bytes for k in s.kept if k.new)


@pytest.mark.parametrize("spec", ["resnet18", "gpt2", "siamese", "densenet121"])
def test_totals_are_the_sums_over_layers(spec: str) -> None:
    """The totals are summed over the shared figures records, each times the layers sharing it:
    the same as summing every layer's figure."""
    t = archcalc.analyze(spec).step
    for name in ("forward", "grad_input", "grad_weight", "flop_counter_backward", "weight_bytes", "master_bytes",
                 "gradient_bytes", "optimizer_bytes", "saved_bytes"):
        assert getattr(t, name) == sum(getattr(s, name) for s in t.layers), name
    assert len(t._shared) < len(t.layers)


def kept_one_by_one(analysis: Any) -> list[tuple[Kept, ...]]:
    """Every node's kept tensors as the pass made them before it held them compactly: a record per
    tensor in node order, a storage `new` at its first keeper (the oracle of LayerSteps.kept)."""
    graph, steps = analysis.graph, analysis.step.layers
    storages = _Storages(graph, analysis.step.options)
    seen: set[int] = set()
    own = 0
    out = []
    for n in graph:
        kept = []
        for s in steps.saved[n.id] or ():
            if s.tensor == "own":
                own += 1
                what = f"own ({s.dtype}{'' if s.per_sample else ', per batch'})"
                kept.append(Kept(what, ("own", own), storages.own_bytes(s), True))
                continue
            node_id = n.inputs[s.index] if s.tensor == "input" else n.id
            if storages.is_parameter(node_id):
                continue
            base = storages.base[node_id]
            what = f"input {s.index} (layer {node_id})" if s.tensor == "input" else "output"
            kept.append(Kept(what, ("node", base), storages.bytes(node_id), base not in seen))
            seen.add(base)
        out.append(tuple(kept))
    return out


KEPT_TWICE = """input 4x8x8
conv3-4, bn, relu, maxpool2, dropout(0.5), conv3-4/p1
x = flatten
y = reshape(@x, 64)
mul(@y, @y)
mul(@y, @x)
"""


@pytest.mark.parametrize("spec", ["resnet18", "gpt2", "siamese", "densenet121", "lstm-lm", "vit_b_16", "KEPT_TWICE"])
def test_kept_tensors_made_when_read_are_those_made_one_by_one(spec: str) -> None:
    """A node's kept tensors, made from the compact steps when read, equal those made node by node
    in order: a storage kept twice by one node (mul(y, y)) or through a view is new once, own
    tensors are numbered across the graph, free parameters are not kept; the sum is their bytes."""
    analysis = analyze_text(KEPT_TWICE) if spec == "KEPT_TWICE" else archcalc.analyze(spec)
    steps = analysis.step.layers
    assert isinstance(steps, LayerSteps)
    expected = kept_one_by_one(analysis)
    assert [s.kept for s in steps] == expected
    assert analysis.step.saved_bytes == sum(k.bytes for kept in expected for k in kept if k.new)
    assert steps[-1] == steps[len(steps) - 1] and steps[1:3] == (steps[1], steps[2])
    if spec == "KEPT_TWICE":
        twice = next(k for k in expected if len(k) == 2 and k[0].storage == k[1].storage)
        assert [k.new for k in twice] == [True, False]
        assert any(k.storage[0] == "own" for kept in expected for k in kept)


FREE_TENSOR = """input 16x8x8
a = conv3-16
scale = parameter(1x16x1x1)
x = mul(@a, @scale)
conv3-16, relu
"""


@pytest.mark.parametrize("text", [FREE_TENSOR, "input 4x8x8\nconv3-4, relu\nconv3-4, relu\n"])
@pytest.mark.parametrize("options", [TrainingOptions(), TrainingOptions(batch=3, precision="bf16")])
def test_storage_bytes_node_by_node(text: str, options: TrainingOptions) -> None:
    """Each output's bytes, made per distinct layer where every output has the batch axis: equal to
    each node's own elements × dtype × its batch (a free tensor has none)."""
    graph = analyze_text(text).graph
    storages = _Storages(graph, options)
    expected = [prod(n.shape) * options.activation_bytes * (options.batch if n.batched else 1) for n in graph]
    assert storages.size == expected
    assert storages.tensor == [0 if n.type == "parameter" else b for n, b in zip(graph, expected)]
    assert any(not n.batched for n in graph) == (text == FREE_TENSOR)
