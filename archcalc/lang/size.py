"""How many layers a parsed spec expands to, at least, known without expanding it.

A spec of a million layers is a few short lines (`block wide: relu x1000`, `wide x1000`);
building its drafts only to refuse them costs seconds and hundreds of megabytes. The
parser asks this module instead: every layer token makes at least one layer, a branch or
residual one more for its join, a repeat multiplies, a block call counts its body — each
block counted once, however often it is called. What depends on values only expansion
knows (`x{n-1}`, `for j in range(n)`, a block's arguments) counts as zero, so the figure is
a lower bound: a spec it refuses is one expansion would refuse too, only later.
"""

from __future__ import annotations

from archcalc.errors import Loc, SpecError
from archcalc.lang.ast import BodyStatement, Branches, Item, Layer, Ref, RefLine, Residual, Spec

MAX_NODES = 250_000  # bounds every expansion: an error in well under a second, never a hang
MAX_BLOCK_DEPTH = 64  # as expansion's: blocks deeper than this count 0 here, and expansion refuses them


def layers_at_most(spec: Spec, limit: int) -> int | None:
    """The spec's expanded layer count when it is known to be at most `limit` without expanding
    (no count or block name written as `{expr}`, no loop, no instance that may be a block); else None."""
    count = _Count(spec)
    total = max(1, len(spec.inputs)) + sum(map(count.line, spec.body))
    return total if count.exact and total <= limit else None


def refuse_oversize(spec: Spec) -> None:
    """Raise at the first top-level item past `MAX_NODES`, naming the limit and the count."""
    count = _Count(spec)
    if max(1, len(spec.inputs)) + sum(map(count.line, spec.body)) <= MAX_NODES:  # most specs: no line to find
        return
    total = max(1, len(spec.inputs))
    crossing: tuple[BodyStatement, int, int] | None = None
    for stmt in spec.body:
        added = count.line(stmt)
        if crossing is None and total + added > MAX_NODES:  # at which of its items: counted one by one
            running = total
            for index, item in enumerate(stmt.first.items):
                item_added = count.item(item)
                running += item_added
                if running > MAX_NODES:
                    crossing = (stmt, index, item_added)
                    break
        total += added
    if crossing is None:
        return
    stmt, index, added = crossing
    item = stmt.items[index]  # on its own line
    loc = item.repeat_loc if item.repeat_loc is not None else item_loc(item)
    hint = (f"here {added // item.repeat:,} layers are repeated {item.repeat:,} times" if item.repeat > 1
            else None)
    raise SpecError(f"the spec expands to at least {total:,} layers, more than the limit of {MAX_NODES:,}",
                    loc, hint=hint)


class _Count:
    """Lower bounds per unit; a block's body is counted once (blocks call blocks a million times)."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.blocks: dict[str, int] = {}
        self.exact = True  # False once a part counted 0 only because it is not known before expanding
        self.open: set[str] = set()  # blocks being counted: a block that calls itself counts 0 (expansion refuses it)
        self.block_instances = {u.instance.text for u in _named_layers(spec)  # instances that may be of blocks
                                if u.instance and (u.head.text in spec.blocks or "{" in u.head.text)}

    def statements(self, stmts: tuple[BodyStatement, ...]) -> int:
        return sum(map(self.line, stmts))

    def line(self, stmt: BodyStatement) -> int:
        """A body's line: its items (an `Again` line's are its first's); a `RefLine` is one layer,
        as its item counts, unless its head may name a block."""
        first = stmt if type(stmt) is RefLine else stmt.first
        if type(first) is RefLine and first.head not in self.spec.blocks and first.head not in self.block_instances:
            return 1
        return sum(map(self.item, first.items))

    def item(self, item: Item) -> int:
        if item.loop is not None or item.repeat_expr is not None:  # counted when expanded
            self.exact = False
            return 0
        unit = item.unit
        if type(unit) is Layer and item.repeat == 1 and unit.head.text not in self.spec.blocks and (
                "{" not in unit.head.text and unit.head.text not in self.block_instances):
            return 1  # most items: one layer, as `unit` counts it
        return self.unit(unit) * item.repeat

    def unit(self, unit: object) -> int:
        if isinstance(unit, Ref):
            return 0
        if isinstance(unit, Branches):
            return 1 + sum(self.statements(b) for b in unit.branches)
        if isinstance(unit, Residual):
            shortcut = self.statements(unit.shortcut) if isinstance(unit.shortcut, tuple) else 0
            return 1 + self.statements(unit.body) + shortcut
        assert isinstance(unit, Layer)
        head = unit.head.text
        if head in self.spec.blocks:
            return self.block(head)
        if "{" in head or head in self.block_instances:  # may name a block, whose body may be empty
            self.exact = False
            return 0
        return 1

    def block(self, name: str) -> int:
        if name not in self.blocks:
            if name in self.open or len(self.open) >= MAX_BLOCK_DEPTH:
                self.exact = False
                return 0
            self.open.add(name)
            self.blocks[name] = self.statements(self.spec.blocks[name].body)
            self.open.discard(name)
        return self.blocks[name]


def _named_layers(spec: Spec) -> list[Layer]:
    """Every layer token written in the spec with `as NAME`, once per place it is written (a line met
    again: once, as its first)."""
    out: list[Layer] = []

    def walk(stmts: tuple[BodyStatement, ...]) -> None:
        for stmt in stmts:
            if type(stmt) is RefLine or type(stmt.first) is RefLine:  # no `as NAME` there
                continue
            for item in stmt.first.items:  # (an `Again` line names what its first does)
                unit = item.unit
                if type(unit) is Layer:
                    if unit.instance is not None:
                        out.append(unit)
                elif isinstance(unit, Branches):
                    for branch in unit.branches:
                        walk(branch)
                elif isinstance(unit, Residual):
                    walk(unit.body)
                    if isinstance(unit.shortcut, tuple):
                        walk(unit.shortcut)

    walk(spec.body)
    for block in spec.blocks.values():
        walk(block.body)
    return out


def item_loc(item: Item) -> Loc:
    """Where an item stands: its layer's head, or the unit's own place."""
    unit = item.unit
    return unit.head.loc if isinstance(unit, Layer) else unit.loc
