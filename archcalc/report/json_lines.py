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
from operator import attrgetter
from typing import Any, TypeVar

from archcalc.graph import Node
from archcalc.layers import OtherOps
from archcalc.passes.analysis import Analysis
from archcalc.passes.counting import FLOPS_PER_MAC
from archcalc.passes.receptive_field import RF
from archcalc.passes.training import LayerStep

# A layer's line: the C encoder, compact, with the spaces of json.dumps (the reference)
ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode

R = TypeVar("R")
T = TypeVar("T")


class _Unusual(Exception):
    """A value this writer does not write itself: the layer's line is ENCODE's, from its dict."""


TABLE_LIMIT = 1024  # texts a table holds before it starts again: memory stays flat on a huge graph


def _remember(table: dict[Any, T], key: Any, text: T) -> T:
    """`table[key] = text`, the table emptied first when full (a miss only writes the text again)."""
    if len(table) >= TABLE_LIMIT:
        table.clear()
    table[key] = text
    return text


class _Written:
    """Texts already written, one table per kind of record, keyed by the record's id. Each record
    is kept here while its text is, so that no other object can take its id meanwhile."""

    def __init__(self) -> None:
        self.records: dict[int, list[Any]] = {}  # by the table's id

    def add(self, table: dict[int, T], record: Any, text: T) -> T:
        kept = self.records.setdefault(id(table), [])
        if len(kept) >= TABLE_LIMIT:
            table.clear()
            kept.clear()
        table[id(record)] = text
        kept.append(record)
        return text


def _ints(values: Sequence[Any]) -> str:
    """A tuple of ints as the encoder writes it: [1, 2, 3] (one to three written out: the usual)."""
    count = len(values)
    if count == 1:
        (a,) = values
        if type(a) is int:
            return f"[{a}]"
    elif count == 2:
        a, b = values
        if type(a) is type(b) is int:
            return f"[{a}, {b}]"
    elif count == 3:
        a, b, c = values
        if type(a) is type(b) is type(c) is int:
            return f"[{a}, {b}, {c}]"
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


def _bools(values: tuple[Any, ...]) -> str:
    """A tuple of bools as the encoder writes it: [true, false]."""
    if not all(v is True or v is False for v in values):
        raise _Unusual
    return "[" + ", ".join(["true" if v else "false" for v in values]) + "]"


def rf_text(field: Any, rf_dict: Callable[[Any], Any], centers: dict[tuple[str, str], str]) -> str:
    """A receptive field as `ENCODE(formats.rf_dict(field))` writes it; the usual one (aligned,
    whole jumps, one phase) written here, field by field in rf_dict's order. `centers`: the
    centers' text by the size's and the start's (ints written out: equal texts, equal ints)."""
    if type(field) is RF and field.size and field.aligned is True and not field.phases:
        try:
            size, jump, start = _ints(field.size), _ints(field.jump), _ints(field.start)
            center = centers.get((size, start))
            if center is None:
                # from those ints RF.center's values are floats, written as numbers.plain writes them
                # (a whole one as an int)
                center = _remember(centers, (size, start), ", ".join(
                    [str(int(c)) if c.is_integer() else float.__repr__(c) for c in field.center]))
            return f'{{"size": {size}, "jump": {jump}, "start": {start}, "center": [{center}], "aligned": true}}'
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


# A training step's fields but the kept tensors and the input gradients, read in one call, and
# the types they must have for the text below (segment: None, or a number with checkpointing)
_STEP_FIELDS = attrgetter("forward", "grad_input", "grad_weight", "flop_counter_backward", "why", "weight_grad",
                          "in_backward", "weight_bytes", "master_bytes", "gradient_bytes", "optimizer_bytes", "segment")
_STEP_TYPES = frozenset({(int, int, int, int, str, bool, bool, int, int, int, int, segment)
                         for segment in (type(None), int)})


def step_text(s: LayerStep, texts: dict[tuple[Any, ...], tuple[str, str]]) -> str:
    """A layer's training figures as `ENCODE(training.step_dict(…))` writes them. All but the
    kept tensors are the same for identical layers: written once per distinct value (`texts`),
    each checked first to be exactly an int, a bool or a str, so that equal keys write alike."""
    fields = _STEP_FIELDS(s)
    if tuple(map(type, fields)) not in _STEP_TYPES:
        raise _Unusual
    # the input gradients by their elements' ids: a key written below holds only True's and False's
    # (_bools refuses anything else), so an int 1 can never find it
    key = (fields, tuple(map(id, s.input_grad)))
    parts = texts.get(key)
    if parts is None:
        forward, grad_input, grad_weight, counted, why, weight_grad, in_backward, weights, master, gradient, state, \
            segment = fields
        parts = _remember(texts, key, (
            f'{{"forward": {forward}, "grad_input": {grad_input}, "grad_weight": {grad_weight}, '
            f'"backward": {s.backward}, "step": {s.step}, "flop_counter_backward": {counted}, '
            f'"flop_counter_why": {encode_basestring(why) if why else "null"}, "input_grad": {_bools(s.input_grad)}, '
            f'"weight_grad": {"true" if weight_grad else "false"}, "in_backward": {"true" if in_backward else "false"}',
            f'"weight_bytes": {weights}, "master_bytes": {master}, "gradient_bytes": {gradient}, '
            f'"optimizer_bytes": {state}, "segment": {"null" if segment is None else segment}}}'))
    kept = _kept(s)  # before saved_bytes, which sums the kept tensors' bytes (ints, once checked there)
    return f'{parts[0]}, "kept": {kept}, "kept_bytes": {s.saved_bytes}, {parts[1]}'


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

    def sharing_text(s: Any) -> str:
        if s is None:
            return "null"
        if type(s.params) is not int or type(s.fc_equivalent_params) is not int:
            return ENCODE(formats._sharing_dict(s))
        key = (s.params, s.fc_equivalent_params)  # all a Sharing holds (tests/test_json_lines.py)
        text = shared_texts.get(key)
        if text is None:
            text = _remember(shared_texts, key, ENCODE(formats._sharing_dict(s)))
        return text

    def strings(values: tuple[str, ...]) -> str:  # a scope, a node's warnings
        return "[" + ", ".join(map(encode_basestring, values)) + "]"

    written = _Written()
    add = written.add
    count_texts: dict[int, tuple[str, str, str]] = {}
    ops_texts: dict[int, str] = {}
    rf_texts: dict[int, str] = {}
    centers: dict[tuple[str, str], str] = {}
    shape_texts: dict[int, str] = {}
    scope_texts: dict[int, str] = {}
    shared_texts: dict[tuple[int, int], str] = {}
    step_texts: dict[tuple[Any, ...], tuple[str, str]] = {}
    for n in analysis.graph if nodes is None else nodes:
        i = n.id
        try:
            m, mem, loc, shares, name, module = macs[i], memory[i], n.loc, n.shares, n.name, n.module
            q, ca, kv_i, conn, u, v = quadratic[i], causal[i], kv[i], connections[i], uses[i], values[i]
            a_bytes, p_bytes, b_bytes = mem.activation_bytes, mem.param_bytes, mem.buffer_bytes
            c, ops, field, shape, scope, implicit = counts[i], other_ops[i], rfs[i], n.shape, n.scope, n.implicit
            if not (type(i) is type(m) is type(q) is type(ca) is type(kv_i) is type(conn) is type(u) is type(v)
                    is type(a_bytes) is type(p_bytes) is type(b_bytes) is int and type(implicit) is bool
                    and (shares is None or type(shares) is int)):
                raise _Unusual
            if loc is None:
                where = '"line": null, "column": null'
            else:
                line = loc.line
                column = loc.col if line not in tabbed else formats.editor_column(analysis, loc)
                if not type(line) is type(column) is int:
                    raise _Unusual
                where = f'"line": {line}, "column": {column}'
            # each text is non-empty: `or` writes it where the table has none yet
            params, share_text, frozen = count_texts.get(id(c)) or add(count_texts, c, counts_text(c))
            tied = "null" if n.tie is None else ENCODE({"owner": n.tie.owner, "transposed": n.tie.transposed})
            yield (
                f'{{"id": {i}, "spec": {encode_basestring(n.text)}, "type": {encode_basestring(n.type)}, {where}, '
                f'"inputs": {_inputs(n.inputs)}, '
                f'"output_shape": {shape_texts.get(id(shape)) or add(shape_texts, shape, _ints(shape))}, {params}, '
                f'"macs": {m}, "flops": {FLOPS_PER_MAC * m}, "quadratic_macs": {q}, "causal_macs": {ca}, '
                f'"kv_cache_elements": {kv_i}, '
                f'"other_ops": {ops_texts.get(id(ops)) or add(ops_texts, ops, ops_text(ops))}, '
                f'"connections": {conn}, "sharing": {sharing_text(sharing[i])}, "share": {share_text}, '
                f'"rf": {rf_texts.get(id(field)) or add(rf_texts, field, rf_text(field, formats.rf_dict, centers))}, '
                f'"memory": {{"activation_bytes": {a_bytes}, "param_bytes": {p_bytes}, "buffer_bytes": {b_bytes}}}, '
                f'"implicit": {"true" if implicit else "false"}, "shares": {"null" if shares is None else shares}, '
                f'"uses": {u}, "tied": {tied}, "frozen": {frozen}, '
                f'"scope": {scope_texts.get(id(scope)) or add(scope_texts, scope, strings(scope))}, '
                f'"name": {"null" if name is None else encode_basestring(name)}, '
                f'"module": {"null" if module is None else encode_basestring(module)}, '
                f'"warnings": {strings(n.warnings) if n.warnings else "[]"}, "counted": {v}, '
                f'"counted_rule": {encode_basestring(rules[i])}, "training": {step_text(steps[i], step_texts)}}}')
        except (_Unusual, TypeError):  # TypeError: encode_basestring given what is not a str
            yield ENCODE(next(formats._layers(analysis, (n,))))
