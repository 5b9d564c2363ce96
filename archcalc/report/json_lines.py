"""Each layer's line of the JSON report, written straight from the analysis's figures.

`formats._layers` builds each layer's dict: that is the definition of a layer's fields, and what
`to_dict` and the CSV read. A layer's line in the JSON document is the text that `ENCODE` (the
C encoder, compact with spaces) makes of that dict; building the dict and encoding it cost about
75 µs a layer (some 60 keys in seven nested objects). `layer_lines` writes the same text, byte
for byte, in a fraction of that:

- it writes what the C encoder writes: a str through `json.encoder.encode_basestring` (the C
  encoder's own function when ensure_ascii is off), an int as `int.__repr__`, True, False and
  None as true, false and null; what is rarer (a float, a tie, a warning) through `ENCODE` itself;
- a sub-object identical layers share (`counting.per_node` gives them one record for their
  counts, other ops and receptive field) is written once per record and its text reused. Those
  caches are keyed by the record's id and keep the record, so no other object can take that id
  while the cache lives. (A cache by value would not do: 1 == 1.0 == True, and a receptive
  field's Fraction(1) jump is written unlike an int 1.) The sharing record, new for every
  node, is cached by its two counts, and only where both are exact ints;
- a value not of the type written here (a bool or a float where a count stands, a shape holding
  anything but ints) raises `_Unusual`, and that layer's line is `ENCODE` of its dict.

tests/test_json_lines.py compares the lines with `ENCODE` of the dicts on every built-in spec,
the generated graphs and awkward values.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from json.encoder import encode_basestring
from typing import Any, TypeVar

from archcalc.graph import Node
from archcalc.layers import OtherOps
from archcalc.passes.analysis import Analysis
from archcalc.passes.counting import FLOPS_PER_MAC
from archcalc.passes.receptive_field import RF
from archcalc.passes.training import LayerStep
from archcalc.report.numbers import plain

# A layer's line: the C encoder, compact, with the spaces of json.dumps (the reference)
ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode

R = TypeVar("R")
T = TypeVar("T")


class _Unusual(Exception):
    """A value this writer does not write itself: the layer's line is ENCODE's, from its dict."""


def _by_identity(make: Callable[[R], T]) -> Callable[[R], T]:
    """`make(record)`, once per record object (the record is kept: its id stays its own)."""
    texts: dict[int, tuple[R, T]] = {}

    def text(record: R) -> T:
        hit = texts.get(id(record))
        if hit is None:
            hit = texts[id(record)] = (record, make(record))
        return hit[1]

    return text


def _ints(values: Sequence[Any]) -> str:
    """A tuple of ints as the encoder writes it: [1, 2, 3]."""
    if bool in map(type, values):  # True is an int, written `true`
        raise _Unusual
    try:
        return "[" + ", ".join(map(int.__repr__, values)) + "]"
    except TypeError:  # not an int at all
        raise _Unusual from None


def _bool(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    raise _Unusual


def _string(value: Any) -> str:
    """A str or None."""
    if value is None:
        return "null"
    if type(value) is not str:
        raise _Unusual
    return encode_basestring(value)


def _int_or_none(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is not int:
        raise _Unusual
    return int.__repr__(value)


def _number(value: Any) -> str:
    """An int or a float as the encoder writes it (NaN and the infinities through ENCODE)."""
    kind = type(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float and value - value == 0:  # finite
        return float.__repr__(value)
    return ENCODE(value)


def _all_ints(*values: Any) -> None:
    for v in values:
        if type(v) is not int:
            raise _Unusual


def _bools(values: tuple[Any, ...], texts: dict[tuple[int, ...], str] = {}) -> str:  # noqa: B006 (the cache)
    """A tuple of bools as the encoder writes it: [true, false]. Cached by the elements' ids:
    True and False are the only objects with theirs, so (1,) is never taken for (True,)."""
    key = tuple(map(id, values))
    text = texts.get(key)
    if text is None:
        if not all(v is True or v is False for v in values):
            raise _Unusual
        text = texts[key] = "[" + ", ".join("true" if v else "false" for v in values) + "]"
    return text


def rf_text(field: Any, rf_dict: Callable[[Any], Any]) -> str:
    """A receptive field as `ENCODE(formats.rf_dict(field))` writes it; the usual one (aligned,
    whole jumps, one phase) written here, field by field in rf_dict's order."""
    if type(field) is RF and field.size and field.aligned is True and not field.phases:
        try:
            return (f'{{"size": {_ints(field.size)}, "jump": {_ints(field.jump)}, "start": {_ints(field.start)}, '
                    f'"center": [{", ".join([_number(plain(c)) for c in field.center])}], "aligned": true}}')
        except _Unusual:
            pass
    return ENCODE(rf_dict(field))


def _kept(step: LayerStep) -> str:
    parts = []
    for k in step.kept:
        what, size, new = k.what, k.bytes, k.new
        if not (type(what) is str and type(size) is int and type(new) is bool):
            raise _Unusual
        parts.append(f'{{"tensor": {encode_basestring(what)}, "bytes": {size}, "new": {"true" if new else "false"}}}')
    return "[" + ", ".join(parts) + "]"


def step_text(s: LayerStep) -> str:
    """A layer's training figures as `ENCODE(training.step_dict(…))` writes them."""
    why, weight_grad, in_backward, segment = s.why, s.weight_grad, s.in_backward, s.segment
    if not (type(s.forward) is type(s.grad_input) is type(s.grad_weight) is type(s.flop_counter_backward)
            is type(s.weight_bytes) is type(s.master_bytes) is type(s.gradient_bytes) is type(s.optimizer_bytes)
            is int and type(weight_grad) is type(in_backward) is bool and type(why) is str
            and (segment is None or type(segment) is int)):
        raise _Unusual
    kept = _kept(s)  # before saved_bytes, which sums the kept tensors' bytes (ints, once checked there)
    return (f'{{"forward": {s.forward}, "grad_input": {s.grad_input}, "grad_weight": {s.grad_weight}, '
            f'"backward": {s.backward}, "step": {s.step}, "flop_counter_backward": {s.flop_counter_backward}, '
            f'"flop_counter_why": {encode_basestring(why) if why else "null"}, '
            f'"input_grad": {_bools(s.input_grad)}, "weight_grad": {"true" if weight_grad else "false"}, '
            f'"in_backward": {"true" if in_backward else "false"}, "kept": {kept}, "kept_bytes": {s.saved_bytes}, '
            f'"weight_bytes": {s.weight_bytes}, "master_bytes": {s.master_bytes}, '
            f'"gradient_bytes": {s.gradient_bytes}, "optimizer_bytes": {s.optimizer_bytes}, '
            f'"segment": {"null" if segment is None else segment}}}')


def _inputs(inputs: tuple[int, ...]) -> str:
    if len(inputs) == 1 and type(inputs[0]) is int:  # the most common: one input
        return f"[{inputs[0]}]"
    return _ints(inputs)


def layer_lines(analysis: Analysis, nodes: Sequence[Node] | None = None) -> Iterator[str]:
    """Each node's line (every node's, or those of `nodes`): `ENCODE` of its `formats._layers` dict."""
    from archcalc.report import formats  # which imports this module

    counts, macs, attention = analysis.counts, analysis.macs, analysis.attention
    quadratic, causal, kv = attention.quadratic_macs, attention.causal_macs, attention.kv_cache
    connections, sharing, rfs, other_ops = analysis.connections, analysis.sharing, analysis.rf, analysis.other_ops
    memory, uses = analysis.memory.nodes, analysis.uses
    values, rules = analysis.counted.values, analysis.counted.rules
    steps = analysis.step.layers
    total = analysis.totals.params
    source = analysis.graph.source
    tabbed = {k for k, line in enumerate(source.lines, 1) if "\t" in line} if source is not None else set()

    def counts_text(c: Any) -> tuple[str, str, str]:
        """The counts' fields: params … buffers, share, frozen (three places in the line)."""
        return (f'"params": {_number(c.params)}, "weights": {_number(c.weights)}, "biases": {_number(c.biases)}, '
                f'"buffers": {_number(c.buffers)}', _number(formats.share(c, total)), _number(c.frozen))

    def ops_text(o: OtherOps) -> str:  # formats._ops_dict, written out
        _all_ints(o.adds, o.multiplies, o.divisions, o.comparisons, o.exponentials)
        return (f'{{"adds": {o.adds}, "multiplies": {o.multiplies}, "divisions": {o.divisions}, '
                f'"comparisons": {o.comparisons}, "exponentials": {o.exponentials}}}')

    counts_of = _by_identity(counts_text)
    ops_of = _by_identity(ops_text)
    rf_of = _by_identity(lambda field: rf_text(field, formats.rf_dict))
    shape_of = _by_identity(_ints)
    shared_texts: dict[tuple[int, int], str] = {}

    def sharing_text(s: Any) -> str:
        if type(s.params) is not int or type(s.fc_equivalent_params) is not int:
            return ENCODE(formats._sharing_dict(s))
        key = (s.params, s.fc_equivalent_params)  # all a Sharing holds (tests/test_json_lines.py)
        text = shared_texts.get(key)
        if text is None:
            text = shared_texts[key] = ENCODE(formats._sharing_dict(s))
        return text

    for n in analysis.graph if nodes is None else nodes:
        i = n.id
        try:
            m, mem, loc, text, kind, implicit = macs[i], memory[i], n.loc, n.text, n.type, n.implicit
            q, ca, kv_i, conn, u, v = quadratic[i], causal[i], kv[i], connections[i], uses[i], values[i]
            a_bytes, p_bytes, b_bytes = mem.activation_bytes, mem.param_bytes, mem.buffer_bytes
            if not (type(i) is type(m) is type(q) is type(ca) is type(kv_i) is type(conn) is type(u) is type(v)
                    is type(a_bytes) is type(p_bytes) is type(b_bytes) is int
                    and type(text) is type(kind) is str and type(implicit) is bool):
                raise _Unusual
            if loc is None:
                where = '"line": null, "column": null'
            else:
                line = loc.line
                column = loc.col if line not in tabbed else formats.editor_column(analysis, loc)
                if not type(line) is type(column) is int:
                    raise _Unusual
                where = f'"line": {line}, "column": {column}'
            params, share_text, frozen = counts_of(counts[i])
            shared = sharing[i]
            tied = "null" if n.tie is None else ENCODE({"owner": n.tie.owner, "transposed": n.tie.transposed})
            yield (
                f'{{"id": {i}, "spec": {encode_basestring(text)}, "type": {encode_basestring(kind)}, {where}, '
                f'"inputs": {_inputs(n.inputs)}, "output_shape": {shape_of(n.shape)}, {params}, '
                f'"macs": {m}, "flops": {FLOPS_PER_MAC * m}, "quadratic_macs": {q}, "causal_macs": {ca}, '
                f'"kv_cache_elements": {kv_i}, "other_ops": {ops_of(other_ops[i])}, "connections": {conn}, '
                f'"sharing": {"null" if shared is None else sharing_text(shared)}, "share": {share_text}, '
                f'"rf": {rf_of(rfs[i])}, "memory": {{"activation_bytes": {a_bytes}, "param_bytes": {p_bytes}, '
                f'"buffer_bytes": {b_bytes}}}, "implicit": {"true" if implicit else "false"}, '
                f'"shares": {_int_or_none(n.shares)}, "uses": {u}, "tied": {tied}, "frozen": {frozen}, '
                f'"scope": {ENCODE(list(n.scope)) if n.scope else "[]"}, "name": {_string(n.name)}, '
                f'"module": {_string(n.module)}, "warnings": {ENCODE(list(n.warnings)) if n.warnings else "[]"}, '
                f'"counted": {v}, "counted_rule": {_string(rules[i])}, "training": {step_text(steps[i])}}}')
        except _Unusual:
            yield ENCODE(next(formats._layers(analysis, (n,))))
