"""The records of a layer graph: a layer before shapes are known (`Draft`), a layer with
everything the passes need (`Node`), and a figure the user claimed (`Expectation`).

`Draft` and `Node` are NamedTuples, not `@record`s: a graph makes one of each per layer, and a
tuple of 17 fields is built in a third of the time 17 slots are filled (0.5 µs against 1.6 on
this machine), its fields read as fast. Both are as frozen; `_replace` makes a changed copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import Any, NamedTuple

from archcalc.errors import Loc, Source
from archcalc.layers import REGISTRY, LayerType
from archcalc.records import record
from archcalc.tensor import Shape


@record(slots=True)
class Tie:
    """A layer whose weight is another layer's (GPT-2's output projection is its token embedding):
    `owner` is that layer's id; `transposed` when this layer uses the owner's weight transposed."""

    owner: int
    transposed: bool = False


class Draft(NamedTuple):
    """One layer as the spec's expansion wrote it: type, bound arguments and inputs, no shapes yet.

    The shapes pass turns drafts into `Node`s; some drafts only exist there as a
    promise (an `auto` shortcut becomes an identity or a projection once the two
    shapes are known).
    """

    id: int
    type: str
    args: Mapping[str, Any]
    inputs: tuple[int, ...]
    text: str
    loc: Loc | None
    scope: tuple[str, ...] = ()
    name: str | None = None
    implicit: bool = False
    shares: int | None = None  # the draft whose weights this one applies again (`as NAME`, then NAME)
    tie: Tie | None = None
    module: str | None = None  # its torch module's dotted path (`features.0`, `layer1.0.conv1`); lang/modules.py

    @property
    def layer(self) -> LayerType:
        return REGISTRY[self.type]


class Node(NamedTuple):
    """One layer instance with everything the passes need to know about it."""

    id: int
    type: str
    args: Mapping[str, Any]
    inputs: tuple[int, ...]
    in_shapes: tuple[Shape, ...]
    shape: Shape
    text: str
    loc: Loc | None
    scope: tuple[str, ...] = ()
    name: str | None = None
    implicit: bool = False
    warnings: tuple[str, ...] = ()
    layout: str = "channels"  # "channels" (C×…), "sequence" (T×F, features last) or "plain": LayerType.layout
    shares: int | None = None  # the node that owns the weights this one applies again
    tie: Tie | None = None  # the node whose weight this one uses as its own
    batched: bool = True  # False for a free tensor (`parameter(…)`), which has no batch axis
    module: str | None = None  # the dotted path of its torch module, as the spec names it (lang/modules.py)

    @property
    def layer(self) -> LayerType:
        return REGISTRY[self.type]


@record(slots=True)
class Expectation:
    """A figure the user wrote after `=>` for the node a statement ends on."""

    node: int
    text: str
    loc: Loc


@record(slots=True)
class DraftGraph:
    """What expansion hands the shapes pass: drafts in creation (topological) order, id 0 the input."""

    drafts: tuple[Draft, ...]
    name: str
    source: Source | None = None
    expectations: tuple[Expectation, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)  # the spec's `param` values (and `batch`)
    block_modules: Mapping[tuple[str, ...], str] = field(default_factory=dict)  # block scope → its module path
