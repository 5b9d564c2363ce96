"""Each layer's line of the JSON report, written straight from the analysis's figures.

`formats._layers` builds each layer's dict: that is the definition of a layer's fields, and what
`to_dict` and the CSV read. A layer's line in the JSON document is the text that `ENCODE` (the
C encoder, compact with spaces) makes of that dict; building the dict and encoding it cost about
75 µs a layer (some 60 keys in seven nested objects). `layer_lines` writes the same text, byte
for byte, in a fraction of that:

- it writes what the C encoder writes: a str through `json.encoder.encode_basestring` (the C
  encoder's own function when ensure_ascii is off), an int as `int.__repr__`, True, False and
  None as true, false and null; what is rarer (a float, a tie, a warning) through `ENCODE` itself;
- most of a line is the same for every node alike in its type, shape, counts, work, sharing,
  memory, use, counted figure and training figures (`StepFigures`, one record for identical
  layers): those pieces are written once per distinct key of those values and records and
  reused, and only what is a node's own is written per node (its id, spec text, position,
  inputs, receptive field, tie, scope, name, module, warnings, kept tensors, segment). Writing
  an int costs some 200 ns, hashing one a few: a key is far cheaper than the text. Records are
  in a key by id: the analysis's per-node tuples the lines are written from hold every one of
  them while the tables live, so no other object can take such an id meanwhile; values are in
  a key only once checked to be exactly ints, bools or strs (a cache by value alone would not
  do: 1 == 1.0 == True, and a receptive field's Fraction(1) jump is written unlike an int 1).
  The sharing record, new for every node, is in the key by its two counts, only where both are
  exact ints (else by its text);
- the usual receptive field, two axes of ints, is written from the ints directly, its center
  computed as RF.center computes it; the others through the general path, by record;
- a value not of the type written here (a bool or a float where a count stands, a shape holding
  anything but ints) raises `_Unusual`, and that layer's line is `ENCODE` of its dict.

tests/test_json_lines.py compares the lines with `ENCODE` of the dicts on every built-in spec,
the generated graphs and awkward values; tests/test_json_lines_alike.py changes each value of a
shared key alone on one of two identical layers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from json.encoder import encode_basestring
from operator import attrgetter
from typing import Any, TypeVar

from archcalc.graph import Node
from archcalc.layers import OtherOps
from archcalc.layers.base import Saved
from archcalc.passes.analysis import Analysis
from archcalc.passes.counting import FLOPS_PER_MAC, distinct, layer_keys
from archcalc.passes.receptive_field import RF
from archcalc.passes.training import Kept, LayerStep, LayerSteps, StepFigures
from archcalc.report.numbers import plain

# A layer's line: the C encoder, compact, with the spaces of json.dumps (the reference)
ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode

# layer_lines reads a Node's fields by unpacking it once, in this order: a NamedTuple's field read by
# name is a descriptor call each (a line reads a dozen), an unpacking one step
_NODE_FIELDS = ("id", "type", "args", "inputs", "in_shapes", "shape", "text", "loc", "scope", "name", "implicit",
                "warnings", "layout", "shares", "tie", "batched", "module")
if Node._fields != _NODE_FIELDS:
    raise ImportError(f"json_lines unpacks a Node as {_NODE_FIELDS}, not {Node._fields}: write them in order")

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
        image = _image_field(field.size, field.jump, field.start)
        if image is not None:
            return image
        try:
            size, jump, start = _ints(field.size), _ints(field.jump), _ints(field.start)
            center = centers.get((size, start))
            if center is None:
                # from those ints RF.center's values are floats
                center = _remember(centers, (size, start), ", ".join(map(_plain, field.center)))
            return f'{{"size": {size}, "jump": {jump}, "start": {start}, "center": [{center}], "aligned": true}}'
        except _Unusual:
            pass
    return ENCODE(rf_dict(field))


def _image_field(size: tuple[Any, ...], jump: tuple[Any, ...], start: tuple[Any, ...]) -> str | None:
    """The most common field, two axes of exact ints, written directly: its center computed as
    RF.center computes it (start + (size − 1)/2, a float) and written as numbers.plain writes it
    (a whole one as an int). None for any other, which rf_text writes its general way."""
    if not len(size) == len(jump) == len(start) == 2:
        return None
    (r1, r2), (j1, j2), (s1, s2) = size, jump, start
    if not type(r1) is type(r2) is type(j1) is type(j2) is type(s1) is type(s2) is int:
        return None
    try:
        c1, c2 = s1 + (r1 - 1) / 2, s2 + (r2 - 1) / 2
    except OverflowError:  # beyond a float: the general path says so
        return None
    # each center as _plain writes it (a whole float as an int), inline: this runs for most nodes
    return (f'{{"size": [{r1}, {r2}], "jump": [{j1}, {j2}], "start": [{s1}, {s2}], "center": '
            f'[{int(c1) if c1.is_integer() else c1!r}, {int(c2) if c2.is_integer() else c2!r}], "aligned": true}}')


def _plain(center: float) -> str:
    """A center as the encoder writes `numbers.plain` of it (a whole float as an int)."""
    return repr(plain(center))


def _kept(kept: Sequence[Kept]) -> str:
    """Kept tensors as the encoder writes them, and the bytes of the new ones (the step's
    saved_bytes): the text from `"kept"`'s value to `"kept_bytes"`'. Each tensor's values are checked
    to be exactly a str, an int and a bool."""
    parts = []
    saved = 0
    for k in kept:
        what, size, new = k.what, k.bytes, k.new
        if not (type(what) is str and type(size) is int and type(new) is bool):
            raise _Unusual
        parts.append(f'{{"tensor": {encode_basestring(what)}, "bytes": {size}, "new": {"true" if new else "false"}}}')
        if new:
            saved += size
    return f"[{', '.join(parts)}], \"kept_bytes\": {saved}"


def _kept_texts(layers: Sequence[LayerStep], nodes: Iterable[Node]) -> Iterator[str | None]:
    """Each node's kept tensors as `_kept` writes them, in turn (None where a value is not one
    written here: that node's line is ENCODE's). Of LayerSteps from their compact form: a rule that
    keeps one input or the output (the usual) from a text made once per rule, the node's own ids
    and bytes filled in; any other rule, and any other sequence of steps, from the records."""
    if not isinstance(layers, LayerSteps):
        for n in nodes:
            yield _kept_or_none(layers[n.id].kept)
        return
    saved, storage_of, storage_bytes, first_keeper = (layers.saved, layers.storage_of, layers.storage_bytes,
                                                       layers.first_keeper)
    heads: dict[int, tuple[int, str] | None] = {}  # by the id of a rule's saved tensors (`saved` holds them)
    for n in nodes:
        i = n.id
        pattern = saved[i]
        if not pattern:
            yield NOTHING_KEPT
            continue
        head = heads.get(id(pattern), heads)
        if head is heads:
            head = _remember(heads, id(pattern), _one_tensor_head(pattern))
        if head is None:
            yield _kept_or_none(layers.kept(i))
            continue
        which, text = head
        node_id = i if which < 0 else n.inputs[which]
        base = storage_of[node_id]
        size = storage_bytes[base]
        if base < 0:  # a free parameter: not kept
            yield NOTHING_KEPT
        elif not type(size) is type(node_id) is int:
            yield None
        else:
            text = f'{text}{node_id})", "bytes": {size}' if which >= 0 else f'{text}{size}'
            yield f'{text}, "new": true}}], "kept_bytes": {size}' if first_keeper[base] == i else \
                f'{text}, "new": false}}], "kept_bytes": 0'


def _kept_or_none(kept: Sequence[Kept]) -> str | None:
    """`_kept(kept)`, or None where it meets a value not written here."""
    try:
        return _kept(kept)
    except (_Unusual, TypeError):
        return None


NOTHING_KEPT = '[], "kept_bytes": 0'


def _one_tensor_head(pattern: Sequence[Saved]) -> tuple[int, str] | None:
    """A rule that keeps one tensor, an input or the output: (its input's number, -1 for the
    output; its text up to the node's own figures). None for any other rule."""
    if len(pattern) != 1:
        return None
    (s,) = pattern
    if s.tensor == "output":
        return -1, '[{"tensor": "output", "bytes": '
    if s.tensor == "input" and type(s.index) is int and s.index >= 0:
        return s.index, f'[{{"tensor": "input {s.index} (layer '
    return None


# The figures identical layers share (`StepFigures`), read in one call, and the types they must have
# for the text below
_STEP_FIELDS = attrgetter("forward", "grad_input", "grad_weight", "flop_counter_backward", "why", "weight_grad",
                          "in_backward", "weight_bytes", "master_bytes", "gradient_bytes", "optimizer_bytes")
_STEP_TYPES = (int, int, int, int, str, bool, bool, int, int, int, int)


def step_parts(f: StepFigures) -> tuple[str, str]:
    """A layer's shared training figures as `ENCODE(training.step_dict(…))` writes them: the text
    before the kept tensors and the text after them up to the segment. Each value is checked first
    to be exactly an int, a bool or a str."""
    fields = _STEP_FIELDS(f)
    if tuple(map(type, fields)) != _STEP_TYPES:
        raise _Unusual
    forward, grad_input, grad_weight, counted, why, weight_grad, in_backward, weights, master, gradient, state = fields
    return (f'{{"forward": {forward}, "grad_input": {grad_input}, "grad_weight": {grad_weight}, '
            f'"backward": {grad_input + grad_weight}, "step": {forward + grad_input + grad_weight}, '
            f'"flop_counter_backward": {counted}, '
            f'"flop_counter_why": {encode_basestring(why) if why else "null"}, "input_grad": {_bools(f.input_grad)}, '
            f'"weight_grad": {"true" if weight_grad else "false"}, "in_backward": {"true" if in_backward else "false"}',
            f'"weight_bytes": {weights}, "master_bytes": {master}, "gradient_bytes": {gradient}, '
            f'"optimizer_bytes": {state}, "segment": ')


def layer_lines(analysis: Analysis, nodes: Sequence[Node] | None = None) -> Iterator[str]:
    """Each node's line (every node's, or those of `nodes`): `ENCODE` of its `formats._layers` dict."""
    return map("".join, layer_pieces(analysis, nodes))


def layer_pieces(analysis: Analysis, nodes: Sequence[Node] | None = None) -> Iterator[tuple[str, ...]]:
    """Each node's line (every node's, or those of `nodes`) as the texts it joins: a writer joins a
    run of lines' pieces at once, each byte copied once (`formats.json_chunks`).

    Most of a line is the same for every node alike in its distinct layer, shape, counts, work,
    memory, use and training figures: those pieces are written once per distinct such key (`alike`),
    which holds every value they are written from (ints checked to be exactly ints, the records
    by id, the figures of a distinct layer by the layer where every node holds its layer's very
    objects), and only what is the node's own is written per node: its id, position, inputs,
    receptive field, tie, scope, name, module, warnings, kept tensors and segment. Writing an int
    costs far more than hashing one. The analysis's figures are read a node at a time from its
    per-node tuples side by side (`_columns`), which hold every record keyed here by id for as
    long as this runs: no other object can take one of those ids meanwhile."""
    from archcalc.report import formats  # which imports this module

    total = analysis.totals.params
    source = analysis.graph.source
    tabbed = {k for k, line in enumerate(source.lines, 1) if "\t" in line} if source is not None else set()

    layer_columns = _layer_columns(analysis)

    def alike_pieces(n: Node, i: int, figures: StepFigures) -> tuple[str, ...]:
        """The pieces of a line that nodes alike share, in the line's order, around its own fields."""
        m, q, ca, kv_i, conn, c, ops, u, v, rule, mem, shared = (column[i] for column in layer_columns)
        _all_ints(m, q, ca, kv_i, conn, u, v, mem.activation_bytes, mem.param_bytes, mem.buffer_bytes)
        shared_text = "null" if shared is None else ENCODE(formats._sharing_dict(shared))
        before_kept, after_kept = step_texts.get(id(figures)) or _remember(step_texts, id(figures),
                                                                           step_parts(figures))
        return (
            f', "type": {encode_basestring(n.type)}, ',
            f', "output_shape": {_ints(n.shape)}, "params": {_number(c.params)}, "weights": {_number(c.weights)}, '
            f'"biases": {_number(c.biases)}, "buffers": {_number(c.buffers)}, '
            f'"macs": {m}, "flops": {FLOPS_PER_MAC * m}, "quadratic_macs": {q}, "causal_macs": {ca}, '
            f'"kv_cache_elements": {kv_i}, "other_ops": {ops_text(ops)}, '
            f'"connections": {conn}, "sharing": {shared_text}, "share": {_number(formats.share(c, total))}, "rf": ',
            f', "memory": {{"activation_bytes": {mem.activation_bytes}, "param_bytes": {mem.param_bytes}, '
            f'"buffer_bytes": {mem.buffer_bytes}}}, "implicit": {"true" if n.implicit else "false"}, '
            f'"shares": {"null" if n.shares is None else n.shares}, "uses": {u}, "tied": ',
            f', "frozen": {_number(c.frozen)}, "scope": ',
            f', "counted": {v}, "counted_rule": {encode_basestring(rule)}, "training": {before_kept}, "kept": ',
            f', {after_kept}',
        )

    alike: dict[tuple[Any, ...], tuple[str, ...]] = {}
    rf_texts: dict[int, str] = {}
    centers: dict[tuple[str, str], str] = {}
    scope_texts: dict[int, str] = {}
    step_texts: dict[int, tuple[str, str]] = {}
    chosen = analysis.graph if nodes is None else nodes
    ids = None if nodes is None else [n.id for n in nodes]
    layers = analysis.step.layers
    figures_by_id: Sequence[StepFigures]
    segments: Sequence[int | None]
    if isinstance(layers, LayerSteps):
        figures_by_id, segments = layers.figures, layers.segments or [None] * len(layers)
    else:
        figures_by_id, segments = [s.figures for s in layers], [s.segment for s in layers]
    for n, layer, field, figures, segment, kept in zip(
            chosen, *_chosen((_layer_keys(analysis, layer_columns), analysis.rf, figures_by_id, segments), ids),
            _kept_texts(layers, chosen)):
        try:
            i, _, _, inputs, _, shape, text, loc, scope, name, implicit, warnings, _, shares, tie, _, module = n
            if not (type(i) is int and type(implicit) is bool and (shares is None or type(shares) is int)):
                raise _Unusual
            if loc is None:
                line: int | str = "null"  # written as is, as an int is
                column: int | str | None = "null"
            else:
                line = loc.line
                column = loc.col if line not in tabbed else formats.editor_column(analysis, loc)
                if not type(line) is type(column) is int:
                    raise _Unusual
            # the node's position and inputs, one or two of them (the usual) in one text
            if len(inputs) == 1 and type(inputs[0]) is int:
                position = f'"line": {line}, "column": {column}, "inputs": [{inputs[0]}]'
            elif len(inputs) == 2 and type(inputs[0]) is type(inputs[1]) is int:
                position = f'"line": {line}, "column": {column}, "inputs": [{inputs[0]}, {inputs[1]}]'
            else:
                position = f'"line": {line}, "column": {column}, "inputs": {_ints(inputs)}'
            key = (layer, id(shape), implicit, shares, id(figures))
            pieces = alike.get(key) or _remember(alike, key, alike_pieces(n, i, figures))
            layer_type, work, memory_use, frozen, training, after_kept = pieces
            if not (segment is None or type(segment) is int):
                raise _Unusual
            if kept is None:
                raise _Unusual
            scope_text = "[]" if not scope else scope_texts.get(id(scope)) or _remember(scope_texts, id(scope),
                                                                                         strings(scope))
            # the line's pieces, joined once with the others of its run (`formats.json_chunks`): a line is
            # some 1,100 bytes, which one f-string would copy once more
            yield (
                f'{{"id": {i}, "spec": ', encode_basestring(text), layer_type, position, work,
                rf_texts.get(id(field)) or _remember(rf_texts, id(field), rf_text(field, formats.rf_dict, centers)),
                memory_use,
                "null" if tie is None else ENCODE({"owner": tie.owner, "transposed": tie.transposed}),
                frozen, scope_text,
                ', "name": ', (name_text := "null" if name is None else encode_basestring(name)),
                ', "module": ', name_text if module is name else  # a named node's module is its name
                "null" if module is None else encode_basestring(module),
                ', "warnings": ', strings(warnings) if warnings else "[]",
                training, kept, after_kept, "null}}" if segment is None else f"{segment}}}}}")
        except (_Unusual, TypeError):  # TypeError: encode_basestring given what is not a str
            yield ENCODE(next(formats._layers(analysis, (n,)))),


def _layer_columns(analysis: Analysis) -> tuple[Sequence[Any], ...]:
    """The per-node figures a line's shared pieces are written from, each a sequence by node id: most
    are their distinct layer's (or, for a sharer, its own counts')."""
    attention, counted = analysis.attention, analysis.counted
    return (analysis.macs, attention.quadratic_macs, attention.causal_macs, attention.kv_cache,
            analysis.connections, analysis.counts, analysis.other_ops, analysis.uses, counted.values, counted.rules,
            analysis.memory.nodes, analysis.sharing)


def _layer_keys(analysis: Analysis, columns: Sequence[Sequence[Any]]) -> Sequence[Any]:
    """Per node a key of its `_layer_columns` values: its distinct layer where every node holds its
    layer's very objects (`counting.layer_keys`: known without a walk for the columns made once per
    distinct layer, a walk in C for the others), else with the ids of the node's own objects (the
    columns hold them: their ids stay unique)."""
    layers = distinct(analysis.graph)
    return layer_keys(layers, *columns) or list(zip(layers.group, *(map(id, c) for c in columns)))


def _chosen(columns: Sequence[Sequence[Any]], ids: list[int] | None) -> Sequence[Sequence[Any]]:
    """The columns, or of each the values of `ids` only."""
    if ids is None:
        return columns
    return [[column[i] for i in ids] for column in columns]


def ops_text(o: OtherOps) -> str:
    """formats._ops_dict, written out."""
    _all_ints(o.adds, o.multiplies, o.divisions, o.comparisons, o.exponentials)
    return (f'{{"adds": {o.adds}, "multiplies": {o.multiplies}, "divisions": {o.divisions}, '
            f'"comparisons": {o.comparisons}, "exponentials": {o.exponentials}}}')


def strings(values: tuple[str, ...]) -> str:
    """A scope, a node's warnings."""
    return "[" + ", ".join(map(encode_basestring, values)) + "]"
