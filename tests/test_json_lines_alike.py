"""json_lines writes the pieces of a line that nodes alike share once per distinct key, and each
node's own fields per node: layers alike in everything but one field (an input, a name, a frozen
flag, a tie, a scope, a shared instance, a kept tensor's bytes) each get their own line, equal to
the C encoder's text of their dict. And the two-axis receptive fields it writes from ints are the
general path's text, center arithmetic included."""

from __future__ import annotations

import dataclasses
import random
from fractions import Fraction
from typing import Any

import pytest

from archcalc.passes.receptive_field import RF
from archcalc.report import formats
from archcalc.report.json_lines import ENCODE, _image_field, rf_text
from tests.conftest import analyze_text
from tests.test_json_lines import assert_same, reference, replaced, written

ALIKE_BUT_ONE = """input 4x8x8
conv3-4, relu
conv3-4, relu
named = conv3-4, relu
conv3-4/frozen, relu
tower = conv3-4 as twin, relu
twin, relu
block b:
    conv3-4, relu
b
b
fc-8
fc-8/nobias as head
relu
fc-8/nobias(tie=head)
relu
fc-8/nobias
"""


def test_layers_alike_but_for_one_field(monkeypatch: pytest.MonkeyPatch) -> None:
    analysis = analyze_text(ALIKE_BUT_ONE)
    assert_same(analysis, monkeypatch)  # and no line fell back to the encoder
    nodes = list(analysis.graph)
    assert any(n.name for n in nodes) and any(n.tie for n in nodes) and any(n.shares is not None for n in nodes)
    assert len({n.scope for n in nodes}) > 1 and any(n.text.endswith("/frozen") for n in nodes)


def test_many_alike_with_small_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    from archcalc.report import json_lines

    monkeypatch.setattr(json_lines, "TABLE_LIMIT", 2)
    assert_same(analyze_text(ALIKE_BUT_ONE * 1), monkeypatch)
    assert_same(analyze_text("input 4x8x8\n" + "conv3-4, relu\nconv3-4/frozen, relu\n" * 5), monkeypatch)


def test_kept_tensors_alike_but_for_a_type() -> None:
    """Two identical layers whose kept tensor holds 1 and True: each is written as its own type
    (its values checked to be exactly an int and a bool, else the encoder writes the line)."""
    base = analyze_text("input 4x8x8\n" + "conv3-4, relu\n" * 4)
    conv, other = 3, 5
    kept = base.step.layers[conv].kept
    assert kept
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"step": {"kept": tuple(dataclasses.replace(k, bytes=1) for k in kept)}},
         {"step": {"kept": tuple(dataclasses.replace(k, bytes=True) for k in kept)}}),
        ({"step": {"kept": tuple(dataclasses.replace(k, new=True) for k in kept)}},
         {"step": {"kept": tuple(dataclasses.replace(k, new=1) for k in kept)}}),
        ({"step": {"kept": ()}}, {"step": {"kept": kept}}),
    ]
    for first, second in pairs:
        changed = replaced(replaced(base, conv, **first), other, **second)
        got = written(changed)
        assert got == reference(changed), (first, second)
        assert got[conv].split(", ", 1)[1] != got[other].split(", ", 1)[1], (first, second)


def general(field: RF) -> str:
    return ENCODE(formats.rf_dict(field))


def test_two_axis_fields_are_the_general_text() -> None:
    rng = random.Random(18)
    values = [0, 1, 2, 3, 7, 8, 2**52 - 1, 2**52, 2**53 + 1, 2**60 + 3, 10**30 + 1]
    for _ in range(3000):
        size = tuple(rng.choice([rng.randrange(0, 600), rng.choice(values)]) for _ in range(2))
        start = tuple(rng.choice([-1, 1]) * rng.choice([rng.randrange(0, 600), rng.choice(values)]) for _ in range(2))
        jump = tuple(rng.choice([1, 2, 4, 32, rng.choice(values)]) for _ in range(2))
        field = RF(size, jump, start)
        assert _image_field(size, jump, start) == general(field), field
        assert rf_text(field, formats.rf_dict, {}) == general(field), field


def test_fields_it_leaves_to_the_general_path() -> None:
    for size, jump, start in [((3,), (1,), (-1,)), ((3, 3, 3), (1, 1, 1), (-1, -1, -1)),
                              ((True, 3), (1, 1), (-1, -1)), ((3, 3), (Fraction(1, 2), 1), (-1, -1)),
                              ((3.0, 3), (1, 1), (-1, -1)), ((3, 3), (1,), (-1, -1))]:
        assert _image_field(size, jump, start) is None
    huge = RF((10**400, 3), (1, 1), (0, -1))  # beyond a float: left to the general path
    assert _image_field(huge.size, huge.jump, huge.start) is None


def with_node(analysis: Any, node: int, **changes: Any) -> Any:
    """`analysis` with one node's own fields changed (its graph rebuilt around the new node)."""
    from archcalc.graph import LayerGraph

    g = analysis.graph
    nodes = list(g)
    nodes[node] = nodes[node]._replace(**changes)
    graph = LayerGraph(nodes, g.name, g.source, g.expectations, g.params, g.block_modules)
    out = dataclasses.replace(analysis, graph=graph)
    out.__dict__["conventions"] = analysis.conventions
    out.__dict__["training"] = analysis.step
    return out


def with_counted(analysis: Any, node: int, value: Any = None, rule: Any = None) -> Any:
    counted = analysis.counted
    values, rules = list(counted.values), list(counted.rules)
    values[node] = values[node] if value is None else value
    rules[node] = rules[node] if rule is None else rule
    changed = dataclasses.replace(counted, values=tuple(values), rules=tuple(rules))
    out = dataclasses.replace(analysis)
    out.__dict__["conventions"] = {**analysis.conventions, analysis.convention: changed}
    out.__dict__["training"] = analysis.step
    return out


def with_attention(analysis: Any, node: int, **changes: Any) -> Any:
    a = analysis.attention
    fields = {}
    for key, value in changes.items():
        values = list(getattr(a, key))
        values[node] = value
        fields[key] = tuple(values)
    out = dataclasses.replace(analysis, attention=dataclasses.replace(a, **fields))
    out.__dict__["conventions"] = analysis.conventions
    out.__dict__["training"] = analysis.step
    return out


def test_each_shared_value_alone_changes_the_line() -> None:
    """Each value the shared pieces are written from, changed alone to another exact value on one of
    two identical layers: only that layer's line changes, as the encoder writes it (a key missing
    one of them would hand the layer its twin's text)."""
    from archcalc.layers import OtherOps

    base = analyze_text("input 4x8x8\n" + "conv3-4, relu\n" * 4)
    conv = 3  # identical to 5
    n = base.graph.node(conv)
    ops = base.other_ops[conv]
    cases = [
        replaced(base, conv, macs=base.macs[conv] + 1),
        replaced(base, conv, connections=base.connections[conv] + 1),
        replaced(base, conv, uses=base.uses[conv] + 1),
        with_attention(base, conv, quadratic_macs=1),
        with_attention(base, conv, causal_macs=1),
        with_attention(base, conv, kv_cache=1),
        with_counted(base, conv, value=base.counted.values[conv] + 1),
        with_counted(base, conv, rule=base.counted.rules[conv] + " (changed)"),
        with_node(base, conv, implicit=not n.implicit),
        with_node(base, conv, shares=1),
        with_node(base, conv, shape=(*n.shape[:-1], n.shape[-1] + 1)),
        with_node(base, conv, type="conv2"),
        with_node(base, conv, text=n.text + " "),
    ]
    other_ops = list(base.other_ops)
    other_ops[conv] = OtherOps(**{**dataclasses.asdict(ops), "adds": ops.adds + 1})
    ops_changed = dataclasses.replace(base, other_ops=tuple(other_ops))
    ops_changed.__dict__["conventions"] = base.conventions
    ops_changed.__dict__["training"] = base.step
    cases.append(ops_changed)
    before = reference(base)
    for changed in cases:
        expected, got = reference(changed), written(changed)
        assert got == expected
        assert got[conv] != before[conv]
        assert [x for k, x in enumerate(got) if k != conv] == [x for k, x in enumerate(before) if k != conv]
