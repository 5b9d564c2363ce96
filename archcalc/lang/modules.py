"""Module paths: where each layer's torch module sits, named as torchvision names its models.

The convention (docs/spec-language.md, "Module names"), which lets a torchvision
`state_dict` load into the exported model:

- a layer's path is the path of the containers around it, then its own name;
- in each container (the network itself, a block instance, a named group of layers) the
  children are numbered 0, 1, 2, … in order, as `nn.Sequential` numbers them, unless a
  statement names them; named children take no number;
- a statement's name names what it makes: one layer (`conv1 = conv7-64/s2/nobias`), one block
  call (`layer1 = stage(64, 3)`: that instance), or, for several layers or a repeated one, a
  container holding them, numbered (`features = conv3-64, conv3-64, maxpool`);
- a repeated item whose name ends in a number names each repetition, counting up from it
  (`denselayer1 = dense_layer x6`: denselayer1 … denselayer6);
- a quoted name (`"block{s}-0" = …`) names a module as written, `{expr}` evaluated (RegNet's
  hyphens); it is no node name;
- hidden activations are children like any layer (VGG's `features.1` is a ReLU); the flatten
  put in before an FC is not numbered (torchvision flattens in `forward`); an automatic
  shortcut's projection is `downsample.0` (conv) and `downsample.1` (BN), as in ResNet.

Expansion records the tree as it goes (`box`, `leaf`); `paths` numbers it once the drafts
are final, so a dropped draft (the last hidden activation) leaves no gap.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter

ROOT = 0
_DRAFT = itemgetter(1)  # a container's child's key: a layer's draft id
SHORTCUT = "downsample"  # ResNet's name for a projection shortcut: downsample.0 conv, downsample.1 BN


@dataclass
class _Box:
    """A container: its parent, its given name (None: numbered) and its children in order."""

    parent: int | None
    name: str | None
    children: list[tuple[bool, int, str | None]] = field(default_factory=list)  # (is a box, key, name)
    scope: tuple[str, ...] | None = None  # the block instance it is, if it is one ('stage#1', …)
    plain: bool = True  # whether every child is an unnamed layer (a long chain's network): numbered in turn


class ModuleTree:
    def __init__(self) -> None:
        self.boxes = [_Box(None, None)]

    def box(self, parent: int, name: str | None, scope: tuple[str, ...] | None = None) -> int:
        """A new container inside `parent` (for a block instance, with its scope); its key."""
        self.boxes.append(_Box(parent, name, scope=scope))
        key = len(self.boxes) - 1
        self.boxes[parent].children.append((True, key, name))
        self.boxes[parent].plain = False
        return key

    def leaf(self, parent: int, draft: int, name: str | None) -> None:
        box = self.boxes[parent]
        box.children.append((False, draft, name))
        if name is not None:
            box.plain = False

    def add_leaves(self, parent: int, drafts: Iterable[int], names: tuple[str | None, ...]) -> None:
        """Layers `drafts` with their `names`, as `leaf` adds each (a walk made again)."""
        box = self.boxes[parent]
        box.children += zip(repeat(False), drafts, names)
        if box.plain and names.count(None) < len(names):
            box.plain = False

    def paths(self, dropped: Iterable[int] = ()) -> dict[int, str]:
        """Draft id → dotted module path, numbering what is unnamed; dropped drafts take no number.
        `block_paths` then holds each block instance's own path (its scope → `features.3`)."""
        gone = set(dropped)
        out: dict[int, str] = {}
        self.block_paths: dict[tuple[str, ...], str] = {}
        self._walk(ROOT, "", gone, out)
        return out

    def _walk(self, key: int, prefix: str, gone: set[int], out: dict[int, str]) -> None:
        box = self.boxes[key]
        if box.plain:  # layers alone, none named: 0, 1, 2, … without a name to step around
            kept = list(map(_DRAFT, box.children))
            if gone:
                kept = [draft for draft in kept if draft not in gone]
            out.update(zip(kept, map(prefix.__add__, map(str, range(len(kept))))))
            return
        number = 0
        used: set[str] = set()
        for is_box, child, name in box.children:
            if is_box:
                inner = self.boxes[child]  # (a container of layers alone holds one unless it is empty)
                if not (inner.children if inner.plain and not gone else self._holds(child, gone)):
                    continue
            elif child in gone:
                continue
            if name is None:
                part, number = str(number), number + 1
            else:
                part = name
            while part in used:  # two statements gave one name (a counted one met a written one)
                part += "_"
            used.add(part)
            if is_box:
                scope = self.boxes[child].scope
                if scope is not None:
                    self.block_paths[scope] = prefix + part
                self._walk(child, f"{prefix}{part}.", gone, out)
            else:
                out[child] = prefix + part

    def _holds(self, key: int, gone: set[int]) -> bool:
        return any(self._holds(c, gone) if is_box else c not in gone for is_box, c, _ in self.boxes[key].children)


def counted(name: str, index: int) -> str | None:
    """`denselayer1`, repetition 2 → `denselayer3`; None for a name without a trailing number."""
    m = re.fullmatch(r"(.*?)(\d+)", name)
    return None if m is None else f"{m.group(1)}{int(m.group(2)) + index}"
