"""The records of a layer graph: a layer before shapes are known (`Draft`), a layer with
everything the passes need (`Node`), and a figure the user claimed (`Expectation`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from archcalc.errors import Loc, Source
from archcalc.layers import REGISTRY, LayerType
from archcalc.tensor import Shape


@dataclass(frozen=True)
class Draft:
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

    @property
    def layer(self) -> LayerType:
        return REGISTRY[self.type]


@dataclass(frozen=True)
class Node:
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
    layout: str = "channels"  # "sequence" (T×F, features last) or "channels" (C×…): LayerType.layout

    @property
    def layer(self) -> LayerType:
        return REGISTRY[self.type]


@dataclass(frozen=True)
class Expectation:
    """A figure the user wrote after `=>` for the node a statement ends on."""

    node: int
    text: str
    loc: Loc


@dataclass(frozen=True)
class DraftGraph:
    """What expansion hands the shapes pass: drafts in creation (topological) order, id 0 the input."""

    drafts: tuple[Draft, ...]
    name: str
    source: Source | None = None
    expectations: tuple[Expectation, ...] = ()
