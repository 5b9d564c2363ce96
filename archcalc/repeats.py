"""The totals of a spec that repeats blocks, at a cost set by its distinct blocks, not by N.

A repeat `block x1000` (or `cbr(64) x1000` inside a block repeated 1,000 times) is expanded a
few times at small counts, each analysed as usual, and every figure of the JSON document (its
layer list apart) is carried to the written counts. That is exact, not an estimate, when the
repetitions after the first are interchangeable — which this module checks before it relies on it:

- the repeat is **summarisable** when every repetition after the first hands on a tensor of the
  shape (and layout) it was given (the first may change it, as a stage's first block does), and
  nothing crosses a repetition's boundary but that tensor: a layer of repetition j reads only
  layers of repetition j, the tensor repetition j-1 handed on, or layers made before the repeat
  (a decoder block reading the encoder's output); nothing after the repeat reads inside it but its
  output; no shared instance or tie points from one repetition into another or from outside in.
- then each repetition between the first two and the last is the same layers in the same
  surroundings, so every figure that adds over layers (parameters, buffers, MACs, FLOPs, other
  operations, totals by kind, activation bytes, the training step's FLOPs and bytes, every
  counting convention's total, the KV cache, the sharing sums) is an affine function of each
  count N — a + b·N — from N = BASE on, and a figure that is a maximum (the inference peak: the
  peak inside one of those repetitions is the same peak, the tensors alive across the repeat —
  a skip around a whole stage — being the same ones) is constant there; a receptive field whose
  jump the block keeps grows by the same size and shift per repetition. With several repeats
  (nested ones too) a figure is affine in each count: multilinear.
- so the spec is analysed at the 2^k corners of {BASE, BASE+1} for its k summarised repeats,
  each figure is interpolated to the written counts with integer weights, and the result is
  checked against one more analysis per repeat, at BASE+2: a figure that is not affine there
  (a path count that doubles per block, a checkpoint split that moves) makes the whole answer
  fall back to expanding the spec, as today (refused past the layer limit, with its message).
  Integers are carried exactly; a float or text figure must be the same at every corner, except
  the sharing factors, which are recomputed from their carried sums.

Per-layer lists the document keeps in its totals are summarised: warnings and the KV cache's
layers are grouped by what they say with a `count`; a convention's caveats and the training step's
unknown layers give their number of layers instead of their ids. A block instance's number in a
label (`stage#13`) is carried like any other number.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from archcalc.errors import SpecError
from archcalc.graph import LayerGraph
from archcalc.lang.ast import Item, Layer, Spec
from archcalc.lang.expand import InputShapes, RepeatRun, expand_repeats
from archcalc.lang.parser import parse
from archcalc.lang.size import item_loc, layers_at_most
from archcalc.passes.analysis import Analysis
from archcalc.passes.shapes import infer_ids
from archcalc.quiet_gc import paused
from archcalc.records import record

BASE = 4  # the smallest count analysed: a first repetition, two in the middle, a last
SMALLEST = BASE + 3  # a repeat of fewer is expanded as written (its corners would cost as much)
EXPAND_BELOW = 5_000  # layers up to which expanding is cheaper than the 3+ analyses a summary makes
MAX_SITES = 4  # at most 2**4 + 4 analyses; the other repeats are expanded as written

Key = tuple[int, int]  # (id of the repeated item in the parsed spec, its count as written)


class NotDerivable(Exception):
    """A figure that is not the same affine function at every corner: expand instead."""


@record
class Site:
    """A repeat summarised: where it is written and how many times it repeats there."""

    line: int | None
    column: int | None
    text: str
    count: int


@dataclass
class Summary:
    """The JSON document of the spec without its layer list, every figure the expanded analysis's.

    `summarised` lists the repeats carried to their counts (empty: the spec was expanded, as
    `reason` says); `nodes_built` counts the layer nodes every analysis built together, the work."""

    document: dict[str, Any]
    summarised: tuple[Site, ...]
    layers: int  # nodes of the expanded graph, inputs included
    analyses: int = 0
    nodes_built: int = 0
    reason: str | None = None  # why nothing was summarised, if so
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.document,
            "summary": {
                "what": "totals of the expanded network, computed from its repeated blocks without expanding "
                        "them (archcalc/repeats.py): no per-layer list; 'archcalc report' without --totals "
                        "lists every layer",
                "expanded_layers": self.layers,
                "repeats": [{"line": s.line, "column": s.column, "spec": s.text, "count": s.count}
                            for s in self.summarised],
                "analyses": self.analyses,
                "nodes_built": self.nodes_built,
                "fell_back": self.reason,
            },
        }


Document = Callable[[Analysis], dict[str, Any]]
Analyse = Callable[[LayerGraph], Analysis]


def summarize_spec(spec: Spec, analyse: Analyse, document: Document, input_shape: InputShapes | None = None,
                   params: Mapping[str, Any] | None = None, depth: int | None = None, base: int = BASE,
                   smallest: int | None = None, summarise: bool = True, expand_below: int = 0) -> Summary:
    """The summary of a parsed spec (parsed with `bounded=False`): `analyse` makes an Analysis of a
    graph (with the caller's memory, convention and training options), `document` its JSON document
    (the layer list left out); `depth` adds the rows of `--depth N` (report/summary.py). `summarise=False`
    expands, as the check of this module does; a spec known to expand to at most `expand_below` layers
    is expanded too (the CLI and `archcalc.totals` pass EXPAND_BELOW: a summary there costs more)."""
    with paused():
        return _Summariser(spec, analyse, _with_rows(document, depth), input_shape, params, base,
                           smallest if smallest is not None else base + 3, expand_below).run(summarise)


def summarize_graph(graph: LayerGraph, analyse: Analyse, document: Document, depth: int | None = None) -> Summary:
    """The summary of a graph already built (an imported model): nothing left to summarise."""
    analysis = analyse(graph)
    return Summary(_summarised_lists(_with_rows(document, depth)(analysis)), (), len(graph), 1, len(graph),
                   "a graph already built")


def _with_rows(document: Document, depth: int | None) -> Document:
    if depth is None:
        return document

    def with_rows(analysis: Analysis) -> dict[str, Any]:
        from archcalc.report.summary import depth_rows

        return {**document(analysis), "rows": depth_rows(analysis, depth)}
    return with_rows


def summarize_text(text: str, filename: str, analyse: Analyse, document: Document,
                   input_shape: InputShapes | None = None, params: Mapping[str, Any] | None = None,
                   **options: Any) -> Summary:
    """Spec text → its summary (a `use FAMILY` member through its family spec, as `load_text`)."""
    spec = parse(text, filename, bounded=False)
    if spec.uses is not None:
        from archcalc.lang.family import derive
        from archcalc.zoo import family

        try:
            source = family(spec.uses.text, spec.uses.loc)
            spec, input_shape, params = derive(spec, parse(source.text, source.filename, bounded=False),
                                               input_shape, params)
        except SpecError as e:
            raise e.with_source(spec.source) from None
    return summarize_spec(spec, analyse, document, input_shape, params, **options)


class _Summariser:
    def __init__(self, spec: Spec, analyse: Analyse, document: Document, input_shape: InputShapes | None,
                 params: Mapping[str, Any] | None, base: int, smallest: int, expand_below: int = 0) -> None:
        self.spec, self.analyse, self.document = spec, analyse, document
        self.input_shape, self.params = input_shape, params
        self.base, self.smallest = base, max(smallest, base + 3)
        self.expand_below = expand_below
        self.discovered = 0  # the layers of the graph the repeats were found in
        self.analyses = 0
        self.nodes_built = 0

    def run(self, summarise: bool) -> Summary:
        try:
            return self._run(summarise)
        except SpecError:  # a spec past the limit even as summarised: the message `archcalc report` gives
            self._refuse_oversize()
            raise

    def _refuse_oversize(self) -> None:
        from archcalc.lang.size import refuse_oversize

        try:
            refuse_oversize(self.spec)
        except SpecError as e:
            raise e.with_source(self.spec.source) from None

    def _run(self, summarise: bool) -> Summary:
        if not summarise:
            return self._expanded("asked to expand")
        small = layers_at_most(self.spec, self.expand_below) if self.expand_below else None
        if small is not None:  # its corners would cost more than the spec itself
            return self._expanded(f"{small:,} layers: expanding costs less than summarising")
        keys, items = self._sites()
        if not keys:
            return self._expanded("no repeat of " + f"{self.smallest} or more that can be summarised")
        if self._at_most(keys) <= self.expand_below:
            return self._expanded(f"at most {self.expand_below:,} layers: expanding costs less than summarising")
        # repeat i is analysed at b, b+1 (and b+2, the check) with b = base + 3i: no two repeats are ever
        # expanded to the same count, so that blocks alike only at a corner do not look alike
        bases = {k: self.base + 3 * i for i, k in enumerate(keys)}
        corners = {}
        for corner in itertools.product((0, 1), repeat=len(keys)):
            point = {k: bases[k] + c for k, c in zip(keys, corner)}
            corners[corner] = self._document(point)
        try:
            result = _interpolate(corners, [k[1] - bases[k] for k in keys])
            for i, key in enumerate(keys):  # one more analysis per repeat: affine there too
                point = dict(bases) | {key: bases[key] + 2}
                wanted = _interpolate(corners, [2 if j == i else 0 for j in range(len(keys))])
                if wanted != self._document(point):
                    raise NotDerivable(f"a figure is not affine in the count of the repeat at line "
                                       f"{_line(items[key])}")
        except NotDerivable as e:
            return self._expanded(str(e))
        layers = result.pop("\u0000nodes")
        sites = tuple(Site(_line(items[k]), _column(items[k]), _text(items[k]), k[1]) for k in keys)
        return Summary(result, sites, layers, self.analyses, self.nodes_built)

    # -- which repeats --------------------------------------------------------------------
    def _sites(self) -> tuple[list[Key], dict[Key, Item]]:
        """The repeats to summarise: found at the base count, refused ones expanded as written,
        until every one left passes (each refusal may reveal others)."""
        refused: set[Key] = set()
        while True:
            found: dict[Key, Item] = {}
            graph, new_id, runs = self._graph(self._discovering(found, frozenset(refused)))
            bad = {(id(r.item), r.count) for r in runs if (id(r.item), r.count) in found
                   and not _summarisable(r, graph, new_id)}
            keys = [k for k in found if k not in bad]
            if len(keys) > MAX_SITES:  # the largest counts are worth the most
                keep = set(sorted(keys, key=lambda k: -k[1])[:MAX_SITES])
                bad |= {k for k in keys if k not in keep}
            if not bad:
                self.discovered = len(graph)
                return keys, found
            refused |= bad

    def _at_most(self, keys: Sequence[Key]) -> int:
        """A bound on the expanded layer count from the discovery's graph (each repeat at the base
        count): a repeat of N grows its share of the graph N/base times at most."""
        bound = Fraction(self.discovered)
        for _, count in keys:
            bound *= Fraction(count, self.base)
        return int(bound) + 1

    def _discovering(self, found: dict[Key, Item], refused: frozenset[Key]) -> Callable[[Item, int], int]:
        """The counts of the discovery: every repeat that may be summarised at the base count, noted."""
        def count(item: Item, n: int) -> int:
            key = (id(item), n)
            if n < self.smallest or key in refused:
                return n
            found[key] = item
            return self.base
        return count

    def _graph(self, count: Callable[[Item, int], int]) -> tuple[LayerGraph, dict[int, int], list[RepeatRun]]:
        drafts, runs = expand_repeats(self.spec, count, self.input_shape, self.params)
        graph, new_id = infer_ids(drafts)
        self.nodes_built += len(graph)
        return graph, new_id, runs

    def _document(self, point: Mapping[Key, int]) -> dict[str, Any]:
        graph, _, _ = self._graph(lambda item, n: point.get((id(item), n), n))
        analysis = self.analyse(graph)
        self.analyses += 1
        return {**_summarised_lists(self.document(analysis)), "\u0000nodes": len(graph)}

    def _expanded(self, reason: str) -> Summary:
        self._refuse_oversize()  # past the limit: refused as `archcalc report` refuses it
        graph, _, _ = self._graph(lambda item, n: n)
        analysis = self.analyse(graph)
        self.analyses += 1
        return Summary(_summarised_lists(self.document(analysis)), (), len(graph), self.analyses,
                       self.nodes_built, reason)


def _summarisable(run: RepeatRun, graph: LayerGraph, new_id: Mapping[int, int]) -> bool:
    """Whether the repetitions after the first are interchangeable (the module's docstring)."""
    start = new_id[run.before]
    ends = [new_id[e] for e in run.ends]
    if [new_id[o] for o in run.outs] != ends:  # each repetition hands on the last layer it made
        return False
    bounds = [start, *ends]
    for j in range(2, len(bounds)):  # repetition j-1 (0-based) spans (bounds[j-1], bounds[j]]
        low, high = bounds[j - 1], bounds[j]
        given, out = graph.node(low), graph.node(high)
        if high > low and (out.shape, out.layout, out.batched) != (given.shape, given.layout, given.batched):
            return False
        for i in range(low + 1, high + 1):
            n = graph.node(i)
            if any(not (low < x <= high or x == low or x <= start) for x in n.inputs):
                return False
            owners = [o for o in (n.shares, n.tie.owner if n.tie else None) if o is not None]
            if any(not low < o <= high for o in owners):
                return False
    last = bounds[-1]
    for i in range(last + 1, len(graph)):
        n = graph.node(i)
        owners = [o for o in (n.shares, n.tie.owner if n.tie else None) if o is not None]
        if any(start < x < last for x in (*n.inputs, *owners)):
            return False
    return True


def _summarised_lists(doc: dict[str, Any]) -> dict[str, Any]:
    """The per-layer lists of the totals, grouped so that their length does not grow with a count."""
    doc = dict(doc)
    doc.pop("layers", None)
    if "warnings" in doc:
        doc["warnings"] = _grouped([{k: v for k, v in w.items() if k != "layer"} for w in doc["warnings"]])
    totals = doc.get("totals")
    if isinstance(totals, dict) and isinstance(totals.get("kv_cache"), dict):
        kv = dict(totals["kv_cache"])
        kv["layers"] = _grouped([{k: v for k, v in x.items() if k != "layer"} for x in kv["layers"]])
        doc["totals"] = {**totals, "kv_cache": kv}
    convention = doc.get("convention")
    if isinstance(convention, dict) and convention.get("caveats"):
        doc["convention"] = {**convention,
                             "caveats": [{**c, "layers": len(c["layers"])} for c in convention["caveats"]]}
    training = doc.get("training")
    if isinstance(training, dict) and training.get("unknown"):
        training = dict(training)
        training["unknown"] = [{**u, "layers": len(u["layers"])} for u in training["unknown"]]
        doc["training"] = training
    return doc


def _grouped(entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Equal entries once each, in order of first appearance, with how many there are."""
    seen: dict[str, dict[str, Any]] = {}
    for e in entries:
        key = repr(sorted(e.items()))
        if key in seen:
            seen[key]["count"] += 1
        else:
            seen[key] = {**e, "count": 1}
    return list(seen.values())


def _interpolate(corners: Mapping[tuple[int, ...], Any], steps: Sequence[int]) -> Any:
    """The multilinear function through the corners' values, at `steps` (count − BASE per repeat):
    integer weights, so integers stay exact."""
    weights = []
    for corner in corners:
        w = 1
        for c, t in zip(corner, steps):
            w *= t if c else 1 - t
        weights.append(w)
    return _derived(_combine(list(corners.values()), weights, ()))


def _combine(values: list[Any], weights: list[int], path: tuple[Any, ...]) -> Any:
    first = values[0]
    if isinstance(first, str) and _NUMBERED.search(first) and any(v != first for v in values):
        return _numbered_text(values, weights, path)
    if path and (path[-1] in _DERIVED or path[-2:] == ("six_nt", "definition")):
        return None  # a ratio of two figures, or words about them: made again from them (_derived)
    if isinstance(first, bool) or first is None or isinstance(first, str):
        if any(v != first or type(v) is not type(first) for v in values):
            raise NotDerivable(f"{_path(path)} differs between counts")
        return first
    if isinstance(first, int):
        if any(isinstance(v, bool) or not isinstance(v, int) for v in values):
            raise NotDerivable(f"{_path(path)} differs in kind between counts")
        return sum(w * v for w, v in zip(weights, values))
    if isinstance(first, float):
        if all(isinstance(v, float) and v == first for v in values):
            return first
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            exact = sum(w * Fraction(v) for w, v in zip(weights, values))  # an RF center: a half-integer
            if exact.denominator in (1, 2):
                return float(exact)
        raise NotDerivable(f"{_path(path)} is not the same affine figure at every count")
    if isinstance(first, dict):
        if any(not isinstance(v, dict) or v.keys() != first.keys() for v in values):
            raise NotDerivable(f"{_path(path)} has other fields at other counts")
        return {k: _combine([v[k] for v in values], weights, (*path, k)) for k in first}
    if isinstance(first, (list, tuple)):
        if any(not isinstance(v, (list, tuple)) or len(v) != len(first) for v in values):
            raise NotDerivable(f"{_path(path)} has another length at other counts")
        return [_combine([v[i] for v in values], weights, (*path, i)) for i in range(len(first))]
    raise NotDerivable(f"{_path(path)} is a {type(first).__name__}")


_DERIVED = ("factor", "percent_vs_pytorch")


def _derived(doc: dict[str, Any]) -> dict[str, Any]:
    """The ratios of the document, from the figures carried to the counts, as the passes make them:
    each sharing factor (FC-equivalent parameters / parameters) and each convention's percentage
    against FlopCounterMode's figure."""
    from archcalc.passes.conventions import DEFAULT, FLOPS
    from archcalc.passes.sharing import Sharing
    from archcalc.passes.training import six_nt_definition
    from archcalc.report.conventions import percent_vs

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "factor" in node and "fc_equivalent_params" in node:
                node["factor"] = Sharing(node["params"], node["fc_equivalent_params"]).factor
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)
    six_nt = doc.get("training", {}).get("six_nt")
    if isinstance(six_nt, dict):
        params = doc["totals"]["params"]
        six_nt["definition"] = six_nt_definition(params, params - six_nt["n"], six_nt["t"])
    convention = doc.get("convention")
    if isinstance(convention, dict) and DEFAULT in convention.get("all", {}):
        base = convention["all"][DEFAULT]

        def percent(x: Mapping[str, Any]) -> float | None:
            ours = base["total"] if x["unit"] == base["unit"] else 2 * base["total"] if x["unit"] == FLOPS else None
            if ours is None:
                raise NotDerivable(f"{x['unit']} against {base['unit']}")
            return percent_vs(x["total"], ours)

        for x in convention["all"].values():
            x["percent_vs_pytorch"] = percent(x)
        convention["percent_vs_pytorch"] = percent(convention)
    return doc


_NUMBERED = re.compile(r"#(\d+)")  # a block instance's number in a scope or label: `stage#3`


def _numbered_text(values: list[Any], weights: list[int], path: tuple[Any, ...]) -> str:
    """A label whose block instance numbers (`stage#13`) move with the counts before it: the text
    alike at every corner, each number carried as any other."""
    if any(not isinstance(v, str) for v in values):
        raise NotDerivable(f"{_path(path)} differs in kind between counts")
    parts = [_NUMBERED.split(v) for v in values]
    if any(len(p) != len(parts[0]) for p in parts):
        raise NotDerivable(f"{_path(path)} differs between counts")
    out = []
    for i, piece in enumerate(parts[0]):
        if i % 2 == 0:  # the text between the numbers
            if any(p[i] != piece for p in parts):
                raise NotDerivable(f"{_path(path)} differs between counts")
            out.append(piece)
        else:
            out.append(f"#{sum(w * int(p[i]) for w, p in zip(weights, parts))}")
    return "".join(out)


def _path(path: tuple[Any, ...]) -> str:
    return ".".join(map(str, path)) or "the document"


def _line(item: Item) -> int:
    return item_loc(item).line


def _column(item: Item) -> int:
    return item_loc(item).col


def _text(item: Item) -> str:
    unit = item.unit
    return unit.text if isinstance(unit, Layer) else type(unit).__name__.lower()
