"""What the passes' shortcuts could get wrong: a rule asked once per distinct layer must give every
node its own answer, record sums must equal the sums one by one, and the fast paths of the
receptive-field pass and the path counts must give exactly what the general ones give."""

from __future__ import annotations

import dataclasses
import gc
import random
from fractions import Fraction
from functools import reduce
from typing import Any

import pytest

from archcalc import load_text
from archcalc.graph import LayerGraph, Node
from archcalc.layers import Counts, OtherOps
from archcalc.layers.window import Geometry, Window
from archcalc.passes import counting, receptive_field
from archcalc.passes.analysis import analyze
from archcalc.passes.receptive_field import RF, Profile, merge
from archcalc.tensor import prod
from archcalc.zoo import names, read


def zoo_graph(name: str) -> LayerGraph:
    source = read(name)
    return load_text(source.text, source.filename)


# -- arguments alike by value ----------------------------------------------------------------------


@pytest.mark.parametrize("a, b", [
    ({"bias": True}, {"bias": 1}),  # equal in Python, told apart by type
    ({"scale": 1.0}, {"scale": 1}),
    ({"value": 0.0}, {"value": -0.0}),  # equal floats, different bits
    ({"kernel": (3, 3)}, {"kernel": (3.0, 3)}),
    ({"batched": (True, True)}, {"batched": (1, 1)}),
    ({"kernel": ((1, 2), 3)}, {"kernel": ((1.0, 2), 3)}),
    ({"k": 3}, {"kernel": 3}),
    ({"k": 3}, {"k": 3, "s": 1}),
    ({"k": None}, {"k": 0}),
])
def test_arguments_that_a_rule_could_tell_apart_are_not_alike(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert counting._value_key(a) != counting._value_key(b)


def test_arguments_equal_in_value_and_type_are_alike() -> None:
    assert counting._value_key({"kernel": (3, 3), "bias": True, "v": 0.5, "p": None}) == counting._value_key(
        {"kernel": (3, 3), "bias": True, "v": 0.5, "p": None})
    assert counting._value_key({"k": ((1, 2.5), "x")}) == counting._value_key({"k": ((1, 2.5), "x")})


def test_arguments_holding_anything_else_are_alike_only_to_themselves() -> None:
    one, other = {"dims": [1, 2]}, {"dims": [1, 2]}
    assert counting._value_key(one) == counting._value_key(one)
    assert counting._value_key(one) != counting._value_key(other)


# -- one answer per distinct layer, and every node its own -----------------------------------------


def _rules(n: Node) -> tuple[Any, ...]:
    """Every rule the passes ask once per distinct layer, asked of this node itself."""
    a, i, o = n.args, n.in_shapes, n.shape
    layer = n.layer
    return (counting.own_counts(n), layer.macs(a, i, o), layer.other_ops(a, i, o), layer.connections(a, i, o),
            layer.dense_equivalent(a, i, o), layer.geometry(a, i), layer.quadratic_macs(a, i, o),
            layer.causal_macs(a, i, o), layer.kv_cache(a, i, o), layer.view, layer.shape_only)


@pytest.mark.parametrize("name", names())
def test_every_node_gets_its_own_answer(name: str) -> None:
    graph = zoo_graph(name)
    layers = counting.distinct(graph)
    for n, group in zip(graph, layers.group, strict=True):
        first = layers.first[group]
        assert (first.type, first.in_shapes, first.shape) == (n.type, n.in_shapes, n.shape)
        assert dict(first.args) == dict(n.args)
    assert counting.per_node(graph, _rules) == tuple(_rules(n) for n in graph)


GROUPING_EDGES = """input 3x8x8
block b:
    conv3-4, relu
b, maxpool, b
conv1-4, conv(out=4, kernel=1), conv(4, 1), relu, conv1-4/nobias
flatten, fc10, fc10, relu
"""


@pytest.mark.parametrize("text", [GROUPING_EDGES, *(read(name).text for name in ["resnet18", "gpt2", "inception_v3"])])
def test_the_grouping_by_the_shapes_pass_numbers_is_the_grouping_node_by_node(text: str) -> None:
    # nodes the shapes pass gave one answer are grouped by its number; the same graph without the
    # numbers is grouped by each node's type, arguments and shapes: the same groups, the same firsts
    graph = load_text(text, "g.arch")
    assert graph.alike is not None
    plain = LayerGraph(list(graph), graph.name, graph.source, graph.expectations, graph.params, graph.block_modules)
    assert plain.alike is None
    numbered, by_node = counting.distinct(graph), counting.distinct(plain)
    assert numbered.group == by_node.group
    assert numbered.first == by_node.first and numbered.borrowing == by_node.borrowing
    assert len(set(graph.alike)) >= len(numbered.first) > 1
    if text == GROUPING_EDGES:  # two dicts of one value (`conv(out=4, kernel=1)`, `conv(4, 1)`): one group
        assert len(set(graph.alike)) == len(numbered.first) + 1


def test_a_repeated_block_at_another_size_is_another_layer() -> None:
    # the same block (one arguments dict per layer) at 8×8 and at 4×4: other shapes, other MACs
    graph = load_text("input 3x8x8\nblock b:\n    conv3-4, relu\nb, maxpool, b, maxpool, b\n", "b.arch")
    convs = [n for n in graph if n.type == "conv"]
    assert dict(convs[1].args) == dict(convs[2].args)
    macs = counting.macs(graph)
    assert [macs[n.id] for n in convs] == [3 * 4 * 9 * 64, 4 * 4 * 9 * 16, 4 * 4 * 9 * 4]


def test_each_graph_has_its_own_grouping() -> None:
    text = "input 3x8x8\nconv3-4, relu, conv3-4\n"
    first = load_text(text, "a.arch")
    assert counting.distinct(first) is counting.distinct(first)  # made once
    del first
    gc.collect()  # its arguments' ids may be reused now: the next graph must not meet its grouping
    second = load_text(text.replace("3x8x8", "3x16x16"), "a.arch")
    layers = counting.distinct(second)
    assert all(n is second.node(n.id) for n in layers.first)
    assert analyze(second).macs[1] == 3 * 4 * 9 * 256


def test_the_same_arguments_over_a_sequence_and_over_a_map() -> None:
    # one conv (one arguments dict) reading a channels-first map and, after a transpose, a T×F
    # sequence of the same size: its field is known on the map, unknown on the sequence
    graph = load_text("input 4x4\nblock b:\n    conv1-4\nb\nto-sequence\nb\n", "s.arch")
    fields = receptive_field.receptive_fields(graph)
    convs = [n.id for n in graph if n.type == "conv"]
    layers = counting.distinct(graph)
    assert layers.group[convs[0]] == layers.group[convs[1]]  # one distinct layer: the layouts are the nodes'
    assert isinstance(fields[convs[0]], RF)
    assert fields[convs[1]] == "unknown"


# -- sums over shared records ------------------------------------------------------------------------


@pytest.mark.parametrize("name", names())
def test_record_totals_are_the_sums_one_by_one(name: str) -> None:
    a = analyze(zoo_graph(name))
    assert a.totals.counts == reduce(Counts.__add__, a.counts, Counts())
    assert a.totals.other_ops == reduce(OtherOps.__add__, a.other_ops, OtherOps())
    assert a.memory.param_bytes == sum(m.param_bytes for m in a.memory.nodes)
    by_kind: dict[str, list[int]] = {}
    for n in a.graph:
        if n.type != "input":
            s = by_kind.setdefault(n.layer.kind, [0, 0, 0])
            s[0] += a.counts[n.id].params
            s[1] += a.macs[n.id]
            s[2] += prod(n.shape)
    assert [(k.kind, k.params, k.macs, k.activations) for k in a.kinds] == [(k, *s) for k, s in by_kind.items()]


@pytest.mark.parametrize("name", ["resnet18", "gpt2", "siamese"])  # gpt2 ties a weight, siamese shares one
def test_a_sum_by_distinct_layer_is_the_sum_of_the_records(name: str) -> None:
    graph = zoo_graph(name)
    counts, other = counting.counts(graph), counting.other_ops(graph)
    own = counting.per_node(graph, counting.own_counts)  # every node its layer's record, sharers too
    assert counting.layer_keys(counting.distinct(graph), own) is counting.distinct(graph).group
    layers = counting.distinct(graph)
    later = next(i for i, g in enumerate(layers.group) if layers.first[g].id != i)  # not its layer's first
    copied = list(own)
    copied[later] = dataclasses.replace(copied[later])  # an equal record of its own: not its layer's object
    assert counting.layer_keys(counting.distinct(graph), copied) is None
    frozen = tuple(copied)  # a tuple's answer is kept by its id, with it: asked twice, the same answer
    assert counting.layer_keys(layers, frozen) is None and counting.layer_keys(layers, frozen) is None
    assert layers.held[id(frozen)] == (frozen, False) and layers.held[id(own)] == (own, True)
    for records, zero in [(counts, Counts()), (other, OtherOps()), (own, Counts()), (copied, Counts())]:
        assert counting.summed(graph, records, zero) == counting.total(records, zero) == reduce(
            type(zero).__add__, records, zero)
        convs = [r for r, n in zip(records, graph, strict=True) if n.layer.kind == "conv"]
        assert counting.summed(graph, records, zero, lambda n: n.layer.kind == "conv") == reduce(
            type(zero).__add__, convs, zero)


def test_total_of_no_records_is_zero() -> None:
    assert counting.total([], Counts()) == Counts()


# -- the receptive field's fast paths --------------------------------------------------------------


def test_an_aligned_merge_is_what_the_general_merge_says(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(18)
    node = zoo_graph("resnet18").node(1)
    cases = []
    for _ in range(3000):
        rank = rng.choice([0, 1, 2, 3])
        jump = tuple(rng.choice([1, 2, 4]) for _ in range(rank))
        fields = []
        for _ in range(rng.choice([2, 3])):
            size = tuple(rng.randint(1, 9) for _ in range(rank))
            start = tuple(rng.randint(-4, 0) for _ in range(rank))
            if rng.random() < 0.2:
                fields.append(fields[-1] if fields else RF(size, jump, start))
            elif rng.random() < 0.1:
                fields.append(RF(size, tuple(j * 2 for j in jump), start))  # jumps that differ
            else:
                fields.append(RF(size, jump, start))
        cases.append(tuple(fields))
    fast = [merge(node, f) for f in cases]
    monkeypatch.setattr(receptive_field, "_merge_aligned", lambda inputs: None)
    assert fast == [merge(node, f) for f in cases]


class _Spread(Window):
    """A window the path counts do not recognise: spread by `reads`, one output position at a time."""

    def __init__(self, kernel: int, stride: int, padding: int, dilation: int) -> None:
        self.k, self.s, self.p, self.d = kernel, stride, padding, dilation

    def reads(self, axis: int, o: int) -> range:
        return range(o * self.s - self.p, o * self.s - self.p + self.d * (self.k - 1) + 1, self.d)

    def period(self, axis: int) -> tuple[int, int]:
        return (1, self.s)


def test_the_path_counts_box_filter_is_the_spread_by_reads() -> None:
    rng = random.Random(1998)
    for _ in range(3000):
        counts = tuple(rng.choice([0, rng.randint(1, 10 ** rng.randint(1, 30))]) for _ in range(rng.randint(1, 25)))
        p = Profile(rng.randint(-9, 9), counts if any(counts) else (1,) + counts)
        k, s, pad, d = rng.randint(1, 11), rng.randint(1, 4), rng.randint(0, 5), rng.randint(1, 4)
        fast = receptive_field._back_window(p, k, s, pad, d)
        slow = receptive_field._back(p, _Spread(k, s, pad, d), 0)
        first = next(i for i, c in enumerate(fast.counts) if c)  # the spread starts at the first count reached
        last = max(i for i, c in enumerate(fast.counts) if c)
        assert (fast.start + first, fast.counts[first:last + 1]) == (slow.start, slow.counts), (p, k, s, pad, d)


def _fields_node_by_node(graph: LayerGraph) -> None:
    # node_field takes the general path for every node, asks each layer's geometry itself and
    # keeps no merges: the pass's shortcuts, per-layer answers and merge cache must agree with it
    fields = receptive_field.receptive_fields(graph)
    for node in graph:
        if node.type != "input" and node.inputs:
            alone = receptive_field.node_field(node, [fields[i] for i in node.inputs],
                                               receptive_field.layer_geometry(graph, node))
            assert alone == fields[node.id], (graph.name, node.id, node.text)


@pytest.mark.parametrize("name", names())
def test_the_pass_shortcuts_give_what_node_field_gives(name: str) -> None:
    _fields_node_by_node(zoo_graph(name))


# a field meeting itself: aligned (the shortcut), after a misaligned merge (its note names the node
# that made it), with phases (after an upsampling), and a sequence of two axes' worth of one
FIELDS_MEETING_THEMSELVES = """input 3x16x16
x = conv3-8
d = add(@x, @x)
e = add(@d, @d, @d)
y = maxpool2/s2, upsample2
z = add(@x, @y)
w = add(@z, @z)
u = add(@y, @y)
v = add(@w, @u)
"""


@pytest.mark.parametrize("text", [FIELDS_MEETING_THEMSELVES, "input 4x32\nx = conv3-4\nadd(@x, @x)\n",
                                  "input 2x8x8x8\nx = conv3-4\nadd(@x, @x)\n"])
def test_a_field_meeting_itself_is_what_node_field_gives(text: str) -> None:
    graph = load_text(text)
    if text == FIELDS_MEETING_THEMSELVES:  # each kind of field meets itself: aligned, noted, with phases
        fields = {graph.node(i).name: f for i, f in enumerate(receptive_field.receptive_fields(graph))}
        assert isinstance(fields["d"], RF) and fields["d"] is fields["x"]
        assert isinstance(fields["z"], RF) and not fields["z"].aligned and "layer" in fields["z"].why
        assert isinstance(fields["u"], RF) and fields["u"].phases
    _fields_node_by_node(graph)


# -- the shapes pass asks a rule once per arguments dict and kind of inputs ------------------------


class _Forgetful(dict):  # type: ignore[type-arg]
    """A rule cache that keeps nothing: every node asks its layer's rules itself."""

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


def _shaped(text: str, cached: bool) -> list[Node]:
    from archcalc import lang
    from archcalc.passes import shapes

    inference = shapes._Inference(lang.expand(lang.parse(text, "t.arch")))
    if not cached:
        inference.rules = _Forgetful()
        inference.direct = _Forgetful()
    return list(inference.run())


SAME_SHAPES_OTHER_KINDS = """input 8x8 as sequence
x = relu
to-channels
y = relu
g = parameter(8x8)
h = add(@g, @g)
z = add(@y, @x)
add(@z, @h)
"""


@pytest.mark.parametrize("name", ["resnet18", "gpt2", "vit_b_16", "inception_v3", "lenet5"])
def test_the_shapes_rule_cache_gives_what_each_node_asked_alone_gives(name: str) -> None:
    source = read(name)
    assert _shaped(source.text, cached=True) == _shaped(source.text, cached=False)


def test_the_shapes_rule_cache_asks_again_for_inputs_of_one_shape_and_another_layout() -> None:
    cached, alone = _shaped(SAME_SHAPES_OTHER_KINDS, True), _shaped(SAME_SHAPES_OTHER_KINDS, False)
    assert cached == alone
    relus = [n for n in cached if n.type == "relu"]  # one arguments dict, inputs of one shape (8×8)
    assert [n.layout for n in relus] == ["sequence", "channels"] and relus[0].args is relus[1].args
    assert [n.batched for n in cached if n.type == "add"] == [False, True, True]


# -- a window's recursion with its numbers made once ----------------------------------------------


@pytest.mark.parametrize("jump", [(1, 1), (2, 3), (Fraction(1, 2), 1), (1,), (2, 1, 3)])
@pytest.mark.parametrize("stride", [(1, 1), (2, 1)])
def test_a_window_slides_a_field_as_the_recursion_says(jump: tuple[Any, ...], stride: tuple[int, int]) -> None:
    # two axes are written out (`_slide`), any other number mapped: both are the recursion
    rank = len(jump)
    g = Geometry(kernel=(3, 1, 5)[:rank], stride=(*stride, 3)[:rank], padding=(1, 0, 2)[:rank],
                 dilation=(2, 1, 1)[:rank])
    rf = RF((5, 1, 2)[:rank], jump, (-2, 0, 1)[:rank])
    got = receptive_field._window(rf, g)
    want_size = tuple(r + d * (k - 1) * j for r, d, k, j in zip(rf.size, g.dilation, g.kernel, jump))
    want_jump = tuple(j * s for j, s in zip(jump, g.stride))
    want_start = tuple(b - p * j for b, p, j in zip(rf.start, g.padding, jump))
    assert isinstance(got, RF)
    assert (got.size, got.jump, got.start) == (want_size, want_jump, want_start)
    assert [type(v) for v in (*got.size, *got.jump, *got.start)] == [
        type(v) for v in (*want_size, *want_jump, *want_start)]  # an int stays an int, a Fraction a Fraction
