"""`ModelIR` → spec text a person can read: blocks for repeated submodules, names for branches.

The operations are grouped by the module calls they ran in. A call with one tensor in and one
out becomes a block call where its module's class recurs with the same structure (ResNet's
Bottleneck, a stage of them); the numbers that differ between the calls become the block's
parameters (`block bottleneck(c, c2, s)`; a float argument too: ConvNeXt's stochastic-depth rate,
`cnblock(96, 0.0058823529411764705)`), and calls in a row with the same arguments a
repeat (`bottleneck(64, 256) x2`). Everything else is written inline, under a comment naming
the module it came from. A value read by anything but the next item gets a name
(`conv1 = …`, `add(@conv1, @in)`); a module called twice is an instance (`tower(…) as twin`,
later `twin`); a weight another module holds is a tie (`fc-50257/nobias(tie=wte)`).

`write` also returns the order in which the spec's expansion will make each operation's
nodes, so the self-check can compare the two node by node.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from archcalc.importers.ir import ModelIR, Op, Ref
from archcalc.layers import find
from archcalc.layers.imported import Emit

LINE = 96  # items per line until about this width; a statement continues on the next line
RESERVED = {"name", "input", "hidden-activation", "param", "block", "in", "x", "as", "residual", "shortcut",
            "concat", "add"}


@dataclass
class Call:
    """One module call: the operations and calls inside it, in the order they ran."""

    key: str
    path: str
    cls: str
    items: list[Op | Call] = field(default_factory=list)
    parent: Call | None = None
    ops: list[Op] = field(default_factory=list)  # every op inside, nested ones too, in order
    input: Ref | None = None  # the one tensor it reads from outside, when it is one
    output: Ref | None = None  # the one tensor read outside it, when it is one and its last
    blockable: bool = False
    shared_with: Call | None = None  # the first call of the same module (this one applies it again)
    height: int = 0
    block: Block | None = None  # its block, when written as a block call
    args: tuple[str, ...] = ()  # its call's arguments


@dataclass
class Block:
    name: str
    cls: str
    params: list[str]
    lines: list[str]
    members: list[Call]


@dataclass
class Written:
    text: str
    order: list[Ref]  # the node each of the spec's (non-input, non-implicit) nodes stands for, in order
    blocks: int


def write(ir: ModelIR) -> Written:
    return _Writer(ir).run()


class _Writer:
    def __init__(self, ir: ModelIR) -> None:
        self.ir = ir
        self.ops = ir.ops
        self.consumers: dict[Ref, list[int]] = {}
        self.blocks: list[Block] = []
        self.block_names: set[str] = set()
        self.instance_names: dict[int, str] = {}  # op id or id(call) → `as` name
        self.call_instances: dict[int, str] = {}
        self.used_instances: set[str] = set()

    # -- the whole spec ------------------------------------------------------------------------
    def run(self) -> Written:
        live = self._live()
        main = self.ir.outputs[0]
        ops = [op for op in self.ops if op.id in live]
        non_input = [op for op in ops if op.type != "input" and not op.name.startswith("unused ")]
        if not non_input or main.part != 0 or non_input[-1].id != main.op or self.ops[main.op].emit.parts > 1 \
                or self.ops[main.op].type == "input":
            out = Op(len(self.ops), "identity", Emit("identity"), (main,), (self._shape(main),),
                     self.ops[main.op].batched, source="the model's output")
            self.ops.append(out)
            ops.append(out)
            live.add(out.id)
            self.main = Ref(out.id)
        else:
            self.main = main
        _chain_concats(ops)
        for op in ops:
            for r in op.inputs:
                self.consumers.setdefault(r, []).append(op.id)
        self.side = [r for r in self.ir.outputs if r != main]
        root = self._tree([op for op in ops if op.type != "input"])
        self._analyse(root)
        self.shared_calls = [c for c in _calls(root) if c.shared_with is not None]
        replayed = {op.id for c in self.shared_calls for op in c.ops}  # a block instance applies these again
        self.owners = {op.shares for op in ops if op.shares is not None and op.id not in replayed} | {
            op.tie for op in ops if op.tie is not None}
        self._group(root)
        body, order = self._body(root.items, None, root=True)
        return Written(self._text(body), order, len(self.blocks))

    def _live(self) -> set[int]:
        """Ops the outputs depend on, and every op holding parameters (their counts are the model's)."""
        keep = {r.op for r in self.ir.outputs}
        keep |= {op.id for op in self.ops if op.params or op.buffers or op.type in ("input", "parameter")}
        stack = list(keep)
        while stack:
            op = self.ops[stack.pop()]
            for r in op.inputs:
                if r.op not in keep:
                    keep.add(r.op)
                    stack.append(r.op)
        return keep

    def _shape(self, ref: Ref) -> tuple[int, ...]:
        return self.ops[ref.op].shapes[ref.part]

    # -- the call tree -------------------------------------------------------------------------
    def _tree(self, ops: list[Op]) -> Call:
        root = Call("", "", "")
        calls: dict[str, Call] = {}
        unused = [op for op in ops if op.name.startswith("unused ")]
        for op in unused + [op for op in ops if not op.name.startswith("unused ")]:
            node = root
            for frame in op.scope:
                child = calls.get(frame.key)
                if child is None or child.parent is not node:
                    child = Call(frame.key, frame.path, frame.cls, parent=node)
                    calls[frame.key] = child
                    node.items.append(child)
                node = child
            node.items.append(op)
        self._collect(root)
        return root

    def _collect(self, call: Call) -> list[Op]:
        for item in call.items:
            if isinstance(item, Call):
                call.ops += self._collect(item)
                call.height = max(call.height, item.height + 1)
            else:
                call.ops.append(item)
        return call.ops

    def _analyse(self, root: Call) -> None:
        """Which calls can be block calls: one tensor in, one out (their last op's), no weights
        shared with or tied to anything outside. A module called again is a block instance when
        every later call replays the first op for op (`tower(…) as twin`, then `twin`)."""
        calls = _calls(root)
        for item in calls:
            ids = {op.id for op in item.ops}
            ins = {r for op in item.ops for r in op.inputs if r.op not in ids}
            outs = {r for op in item.ops for k in range(max(1, op.emit.parts)) for r in [Ref(op.id, k)]
                    if any(c not in ids for c in self.consumers.get(r, ())) or r == self.main or r in self.side}
            last = item.ops[-1] if item.ops else None
            item.input = next(iter(ins)) if len(ins) == 1 else None
            item.output = next(iter(outs)) if len(outs) == 1 else None
            item.blockable = (item.input is not None and item.output is not None and last is not None
                              and item.output == Ref(last.id) and last.emit.parts == 1 and item.output != self.main
                              and not any(op.name.startswith("unused ") for op in item.ops))
        by_path: dict[str, list[Call]] = {}
        for item in calls:
            if _holds_weights(item):
                by_path.setdefault(item.path, []).append(item)
        instances: set[int] = set()  # ids of calls that are a block instance or replay one
        for same in by_path.values():
            same = [c for c in same if not any(_inside(c, other) for other in same if other is not c)]
            if len(same) < 2:
                continue
            first, again = same[0], same[1:]
            ok = first.blockable and all(c.blockable and self._replays(c, first) for c in again)
            ok = ok and self._sharing_closed(first, again)
            if ok:
                for c in again:
                    c.shared_with = first
                instances |= {id(c) for c in same}
        for item in calls:
            if item.blockable and id(item) not in instances:
                item.blockable = not self._instances_inside(item)

    def _replays(self, again: Call, first: Call) -> bool:
        """The second call of a module applies exactly the first's weights, op for op."""
        if len(again.ops) != len(first.ops):
            return False
        first_ids = {op.id for op in first.ops}
        for a, b in zip(again.ops, first.ops):
            if a.type != b.type or a.tie is not None or b.tie is not None or b.shares is not None:
                return False
            if (a.params or a.shares is not None) and a.shares != b.id:
                return False
            if b.params and a.shares not in first_ids:
                return False
        return True

    def _sharing_closed(self, first: Call, again: list[Call]) -> bool:
        """No op outside these calls shares or ties the first call's weights."""
        inside = {op.id for c in [first, *again] for op in c.ops}
        owned = {op.id for op in first.ops}
        return all(op.id in inside for op in self.ops if op.shares in owned or op.tie in owned)

    def _instances_inside(self, call: Call) -> bool:
        """Whether the call holds an `as` instance or a reuse of one (a block body cannot: a block
        called twice would define the instance twice)."""
        ids = {op.id for op in call.ops}
        if any(op.shares is not None or op.tie is not None for op in call.ops):
            return True
        return any(op.shares in ids or op.tie in ids for op in self.ops)

    # -- blocks -------------------------------------------------------------------------------
    def _group(self, root: Call) -> None:
        """Blockable calls whose module class and structure recur become one block; the numbers
        that differ become its parameters. Inner calls first: a body calls the blocks inside it."""
        calls = [c for c in _calls(root) if c.blockable and c.shared_with is None]
        for height in sorted({c.height for c in calls}):
            level = [c for c in calls if c.height == height]
            bodies = {id(c): self._member_body(c) for c in level}
            groups: dict[tuple[str, str], list[Call]] = {}
            for c in level:
                groups.setdefault((_group_class(c), _skeleton(bodies[id(c)], list(self.block_names))), []).append(c)
            for (_, _), members in groups.items():
                shared = [c for c in _calls(root) if c.shared_with in members]
                if len(members) + len(shared) < 2 or (len(members[0].ops) < 2 and not shared):
                    continue  # a block of one layer reads no better than the layer
                self._make_block(members, [bodies[id(c)] for c in members])
            for c in _calls(root):
                if c.shared_with is not None and c.shared_with.block is not None:
                    c.block, c.args = c.shared_with.block, c.shared_with.args

    def _member_body(self, call: Call) -> list[str]:
        lines, _ = self._body(call.items, call.input, root=False, within=call.path)
        return lines

    def _make_block(self, members: list[Call], bodies: list[list[str]]) -> None:
        code = [[_code(line) for line in b] for b in bodies]
        texts = ["\n".join(c) for c in code]
        params, body, args = _anti_unify(texts, [b.name for b in self.blocks])
        lines = body.split("\n")
        for i, line in enumerate(lines):  # a comment stays where every call has the same one
            notes = {_comment(b[i]) for b in bodies}
            if len(notes) == 1 and notes != {""}:
                lines[i] = f"{line}  # {notes.pop()}"
        name = self._block_name(members[0])
        block = Block(name, members[0].cls, params, lines, members)
        self.blocks.append(block)
        for member, values in zip(members, args):
            member.block, member.args = block, tuple(values)

    def _block_name(self, call: Call) -> str:
        cls = call.cls.rsplit(".", 1)[-1]
        if cls in ("Sequential", "ModuleList", "ModuleDict", ""):
            last = call.path.rsplit(".", 1)[-1]
            cls = re.sub(r"\d+$", "", last) or "stage"
        base = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", cls).lower()
        base = re.sub(r"\W", "_", base).strip("_") or "block"
        if not base[0].isalpha():
            base = "b_" + base
        if base in RESERVED or find(base) is not None:
            base += "_block"
        name, k = base, 2
        while name in self.block_names:
            name, k = f"{base}{k}", k + 1
        self.block_names.add(name)
        return name

    # -- one body (a block's or the spec's) -------------------------------------------------------------
    def _body(self, items: Sequence[Op | Call], block_input: Ref | None, root: bool,
              within: str = "") -> tuple[list[str], list[Ref]]:
        units = self._units(items, root, within)
        units = _repeats(units, self)
        names = _Names(root)
        order: list[Ref] = []
        # which values need a name: read by anything but the unit right after them
        produced = {u.out: u for u in units if isinstance(u, _Unit) and u.out is not None}
        readers: dict[Ref, list[_Unit]] = {}
        for u in units:
            if isinstance(u, _Unit):
                for r in u.inputs:
                    readers.setdefault(r, []).append(u)
        prev: _Unit | None = None
        chained: set[int] = set()
        for u in units:
            if not isinstance(u, _Unit):
                continue
            source = u.inputs[0] if len(u.inputs) == 1 and u.single else None
            if source is not None:
                if prev is None:
                    ok = source == block_input or (root and self._first_input() == source)
                else:
                    ok = prev.out == source and prev.parts == 1
                alone = len(readers.get(source, [])) == 1 and source not in self.side and source != self.main
                if ok and (alone or prev is None) and (prev is None or source in produced):
                    chained.add(id(u))
            prev = u
        need: set[Ref] = set()
        for u in units:
            if not isinstance(u, _Unit):
                continue
            for r in u.inputs:
                if id(u) not in chained or len(u.inputs) != 1:
                    need.add(r)
            if u.out is not None and (u.out in self.side):
                need.add(u.out)
        for u in units:
            if isinstance(u, _Unit) and u.op is not None and u.op.name.startswith("unused ") and u.out is not None:
                need.add(u.out)  # a free parameter nothing reads is named, so it is not a dead end
            if isinstance(u, _Unit) and u.parts > 1:
                need |= {Ref(u.out.op, k) for k in range(u.parts)} if u.out is not None else set()
        lines: list[str] = []
        line: list[str] = []
        ind = "" if root else "    "

        def flush(name: str | None = None, comment: str = "") -> None:
            if line:
                head = f"{name} = " if name else ""
                lines.append(ind + head + ", ".join(line) + (f"  # {comment}" if comment else ""))
                line.clear()

        def ref_text(r: Ref) -> str:
            if r == block_input:
                return "@in"
            op = self.ops[r.op]
            if op.type == "input":
                return "@" + self._input_name(op)
            return "@" + names.of(r)

        for u in units:
            if isinstance(u, str):
                flush()
                lines.append(ind + u)
                continue
            for r in u.inputs:
                if r in need and r != block_input and self.ops[r.op].type != "input":
                    names.want(r, self._label(r))
            text = u.text
            if u.op is not None and u.op.tie is not None:
                text = _with_call_arg(text, f"tie={self._instance(self.ops[u.op.tie])}"
                                      + (".T" if u.op.tie_transposed else ""))
            if u.op is not None and u.op.shares is not None:
                text = self._instance(self.ops[u.op.shares])
            if u.op is not None and u.op.id in self.owners:
                text += f" as {self._instance(u.op)}"
            if u.call is not None and u.call.shared_with is not None:
                text = self._call_instance(u.call.shared_with)
            elif u.call is not None and any(c.shared_with is u.call for c in self.shared_calls):
                text += f" as {self._call_instance(u.call)}"
            if not u.single or not u.inputs:
                refs = [ref_text(r) for r in u.inputs]
                if refs and u.op is not None and u.op.shares is not None:
                    text = f"{text}({', '.join(refs)})"
                elif refs:
                    text = _with_refs(text, refs)
            elif id(u) not in chained:
                flush()
                line.append(ref_text(u.inputs[0]))
                if u.call is not None:
                    line.append(text)
                    name = names.want(u.out, _call_label(u.call)) if u.out is not None and u.out in need else None
                    flush(name, u.comment)
                    order += u.order
                    continue
            if u.parts > 1:
                flush()
                parts = [names.want(Ref(u.out.op, k), self._label(Ref(u.out.op, k))) for k in range(u.parts)]  # type: ignore[union-attr]
                line.append(text)
                lines.append(ind + ", ".join(parts) + " = " + ", ".join(line))
                line.clear()
            elif u.call is not None:
                flush()
                line.append(text)
                name = names.want(u.out, _call_label(u.call)) if u.out is not None and u.out in need else None
                flush(name, u.comment)
            else:
                if line and (not u.inputs or sum(len(t) + 2 for t in line) + len(text) > LINE and id(u) in chained):
                    flush()  # a free tensor (no input) starts a statement of its own
                line.append(text)
                if u.out is not None and u.out in need:
                    flush(names.want(u.out, self._label(u.out)))
            order += u.order
        flush()
        return lines, order

    def _units(self, items: Sequence[Op | Call], root: bool, within: str = "") -> list[_Unit | str]:
        units: list[_Unit | str] = []
        for item in items:
            if isinstance(item, Op):
                if root and item.name.startswith("unused ") and not any(
                        isinstance(u, _Unit) and u.op is not None and u.op.name.startswith("unused ") for u in units):
                    units.append("# never called by the forward (as traced): their parameters, so that the count "
                                 "is sum(p.numel())")
                units.append(_Unit.of_op(item))
            elif item.block is not None:
                units.append(_Unit.of_call(item, _relative(item.path, within)))
            else:
                if len(item.ops) > 1:
                    cls = f": {_short_cls(item.cls)}" if item.cls else ""
                    units.append(f"# {_relative(item.path, within)}{cls}")
                units += self._units(item.items, root, within)
        return units

    def _first_input(self) -> Ref | None:
        return next((Ref(op.id) for op in self.ops if op.type == "input"), None)

    def _input_name(self, op: Op) -> str:
        inputs = [o for o in self.ops if o.type == "input"]
        return "input" if len(inputs) == 1 else _ident(op.name)

    def _label(self, r: Ref) -> str:
        op = self.ops[r.op]
        base = op.path.rsplit(".", 1)[-1] if op.path else op.type.split("-")[-1]
        if op.name.startswith("unused "):
            base = op.name[len("unused "):].replace(".", "_")
        if op.emit.parts > 1:
            base = f"{base}{r.part}"
        return base

    def _instance(self, op: Op) -> str:
        if op.id not in self.instance_names:
            base = _ident(op.path.replace(".", "_") if op.path else op.type)
            last = op.path.rsplit(".", 1)[-1]
            if "." in op.path and not last.isdigit() and _ident(last) not in self.used_instances:
                base = _ident(last)  # transformer.wte → wte, where no other instance has the name
            self.instance_names[op.id] = self._unique_instance(base)
        return self.instance_names[op.id]

    def _call_instance(self, call: Call) -> str:
        if id(call) not in self.call_instances:
            self.call_instances[id(call)] = self._unique_instance("shared_" + _ident(call.path.replace(".", "_")))
        return self.call_instances[id(call)]

    def _unique_instance(self, base: str) -> str:
        if base in RESERVED or find(base) is not None or base in self.block_names:
            base += "_"
        name, k = base, 2
        while name in self.used_instances:
            name, k = f"{base}{k}", k + 1
        self.used_instances.add(name)
        return name

    # -- text -------------------------------------------------------------------------------------
    def _text(self, body: list[str]) -> str:
        ir = self.ir
        lines = [f"# Imported from {ir.origin or ir.name} by archcalc ({ir.versions or ir.framework})."]
        if ir.framework == "onnx":
            lines.append(f"# The file: {ir.params:,} initializer elements read by its nodes (parameters, and "
                         f"BatchNorm statistics as buffers).")
        else:
            lines.append(f"# The model: {ir.params:,} parameters, {ir.buffers:,} buffer elements, "
                         f"{int(ir.flops):,} FLOPs per sample (FlopCounterMode).")
        lines += [f"# note: {note}" for note in ir.notes]
        lines += [f"name {ir.name}"]
        inputs = [op for op in self.ops if op.type == "input"]
        for op in inputs:
            layout = ir.layouts.get(op.id)
            label = "" if len(inputs) == 1 else f"{_ident(op.name)} "
            lines.append(f"input {label}{'x'.join(map(str, op.shape))}" + (f" as {layout}" if layout else ""))
        for block in self.blocks:
            paths = [m.path for m in block.members]
            lines += ["", f"# {_short_cls(block.cls) + ': ' if block.cls else ''}{_paths(paths)}",
                      f"block {block.name}" + (f"({', '.join(block.params)})" if block.params else "") + ":"]
            lines += block.lines
        lines += [""] + body
        return "\n".join(lines) + "\n"


def _chain_concats(ops: list[Op]) -> None:
    """A concat of an earlier concat's inputs and one more tensor (DenseNet's growing feature list) is
    that concat and the new tensor, joined where the new tensor is made: so each dense layer reads
    one tensor and makes one, and repeats as a block. The same tensors, the same figures."""
    seen: dict[tuple[str, tuple[Ref, ...]], int] = {}
    previous: Op | None = None
    for op in ops:
        if op.type == "concat":
            given = op.inputs
            earlier = seen.get((op.emit.text, given[:-1])) if len(given) >= 2 else None
            if earlier is not None and previous is not None and given[-1] == Ref(previous.id):
                op.inputs = (Ref(earlier), given[-1])
                op.scope = previous.scope
            seen[(op.emit.text, given)] = op.id
        previous = op


# -- units ------------------------------------------------------------------------------------------


@dataclass
class _Unit:
    """One item of a body: an op, or a block call (possibly repeated)."""

    text: str
    inputs: tuple[Ref, ...]
    out: Ref | None
    parts: int = 1
    single: bool = True  # reads the previous item (a single-input layer or block call)
    op: Op | None = None
    call: Call | None = None
    comment: str = ""
    order: list[Ref] = field(default_factory=list)
    count: int = 1
    paths: list[str] = field(default_factory=list)  # of the block calls it stands for

    @staticmethod
    def of_op(op: Op) -> _Unit:
        single = len(op.inputs) == 1 and _single_input(op)
        order = [Ref(op.id, k) for k in range(max(1, op.emit.parts))]
        return _Unit(op.emit.text, op.inputs, Ref(op.id) if op.emit.parts == 1 else Ref(op.id, 0), op.emit.parts,
                     single, op, order=order)

    @staticmethod
    def of_call(call: Call, comment: str) -> _Unit:
        block = call.block
        assert block is not None and call.input is not None
        text = block.name + (f"({', '.join(call.args)})" if call.args else "")
        order = [Ref(op.id, k) for op in call.ops for k in range(max(1, op.emit.parts))]
        return _Unit(text, (call.input,), call.output, 1, True, None, call, comment, order, paths=[comment])


def _single_input(op: Op) -> bool:
    """Whether the layer reads the previous item (one tensor in): not a merge, not a split source."""
    layer = find(op.type)
    if op.type == "unknown":
        return len(op.inputs) == 1
    if layer is None:
        from archcalc.layers import REGISTRY

        t = REGISTRY.get(op.type)
        return t is not None and t.max_inputs == 1
    # self-attention reads the item before it, as a one-input layer does (a memory would be a second input)
    return layer[0].max_inputs == 1 or (layer[0].kind == "attention" and layer[0].min_inputs == 1)


def _repeats(units: list[_Unit | str], writer: _Writer) -> list[_Unit | str]:
    """Block calls in a row with the same arguments, each reading only the one before: `call xN`."""
    out: list[_Unit | str] = []
    for u in units:
        last = out[-1] if out else None
        if (isinstance(u, _Unit) and isinstance(last, _Unit) and u.call is not None and last.call is not None
                and u.call.block is last.call.block and u.call.args == last.call.args
                and u.call.shared_with is None and last.call.shared_with is None
                and not any(c.shared_with in (u.call, last.call) for c in writer.shared_calls)
                and u.inputs == (last.out,) and last.out not in writer.side
                and set(writer.consumers.get(last.out, [])) <= {op.id for op in u.call.ops}):  # type: ignore[arg-type]
            merged = _Unit(u.text, last.inputs, u.out, 1, True, None, u.call, "", last.order + u.order,
                           last.count + 1, [*last.paths, *u.paths])
            out[-1] = merged
            continue
        out.append(u)
    for u in out:
        if isinstance(u, _Unit) and u.count > 1:
            u.text += f" x{u.count}"
            u.comment = _paths(u.paths)
    return out


def _call_label(call: Call) -> str:
    return call.path.rsplit(".", 1)[-1] or "block"


def _relative(path: str, within: str) -> str:
    """A module path as seen from inside the block of `within`: 'layer2.0.downsample' → 'downsample'."""
    return path[len(within) + 1:] if within and path.startswith(within + ".") else path


def _paths(paths: list[str]) -> str:
    paths = [p for p in paths if p]
    if len(paths) <= 3:
        return ", ".join(paths)
    return f"{paths[0]} … {paths[-1]} ({len(paths)})"


class _Names:
    """Node names within one body: readable, unique, never a word the language reserves."""

    def __init__(self, root: bool) -> None:
        self.by_ref: dict[Ref, str] = {}
        self.taken: set[str] = set(RESERVED)

    def want(self, ref: Ref, label: str) -> str:
        if ref in self.by_ref:
            return self.by_ref[ref]
        base = _ident(label)
        name, k = base, 2
        while name in self.taken:
            name, k = f"{base}_{k}", k + 1
        self.taken.add(name)
        self.by_ref[ref] = name
        return name

    def of(self, ref: Ref) -> str:
        return self.by_ref.get(ref) or self.want(ref, f"t{ref.op}")


def _ident(text: str) -> str:
    word = re.sub(r"\W", "_", text).strip("_") or "t"
    return word if word[0].isalpha() or word[0] == "_" else f"n{word}"


def _short_cls(cls: str) -> str:
    return cls.replace("torch.nn.modules.container.", "torch.nn.")


def _with_refs(text: str, refs: list[str]) -> str:
    """`concat(dim=2)` + refs → `concat(@a, @b, dim=2)`; `add` → `add(@a, @b)`."""
    if text.endswith(")") and "(" in text:
        head, _, rest = text.partition("(")
        inner = rest[:-1]
        return f"{head}({', '.join(refs + ([inner] if inner else []))})"
    return f"{text}({', '.join(refs)})"


def _with_call_arg(text: str, arg: str) -> str:
    if text.endswith(")") and "(" in text:
        return text[:-1] + f", {arg})"
    return f"{text}({arg})"


def _calls(call: Call) -> list[Call]:
    out = []
    for item in call.items:
        if isinstance(item, Call):
            out.append(item)
            out += _calls(item)
    return out


def _inside(a: Call, b: Call) -> bool:
    p = a.parent
    while p is not None:
        if p is b:
            return True
        p = p.parent
    return False


def _holds_weights(call: Call) -> bool:
    """Its ops hold parameters, or apply another call's again."""
    return any(op.params or op.shares is not None for op in call.ops)


def _group_class(call: Call) -> str:
    return call.cls


# -- numbers that differ between calls of one block -----------------------------------------------

_NAMES_IN_TEXT = re.compile(r"@\w+|^\s*[\w, ]+? = |\bop=(?:\"[^\"]*\"|[\w.\-]+)| as \w+|\btie=\w+(?:\.T)?", re.M)
_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _tokens(text: str, words: Sequence[str] = ()) -> list[str]:
    """The text cut into literal pieces (even positions) and integer tokens (odd); names, `op=` values,
    ties and the `words` given (block names) are kept whole in the literal pieces."""
    kept: list[str] = []

    def mask(m: re.Match[str]) -> str:
        kept.append(m.group(0))
        return f"\x00{chr(0xE000 + len(kept) - 1)}\x00"

    masked = _NAMES_IN_TEXT.sub(mask, text)
    if words:
        masked = re.sub(r"\b(?:" + "|".join(map(re.escape, sorted(words, key=len, reverse=True))) + r")\b(?=\()",
                        mask, masked)
    pieces = _split_numbers(masked)
    unmask = re.compile("\x00(.)\x00", re.S)
    return [unmask.sub(lambda m: kept[ord(m.group(1)) - 0xE000], p) if i % 2 == 0 else p
            for i, p in enumerate(pieces)]


def _split_numbers(text: str) -> list[str]:
    """'conv3-64/s2' → ['conv', '3', '-', '64', '/s', '2', '']; a float is a token too where it is an
    argument's whole value (`p=0.05`: a stochastic-depth rate that differs per block), else literal."""
    out, pos = [""], 0
    for m in _NUMBER.finditer(text):
        token = m.group(0)
        whole_value = text[m.start() - 1:m.start()] == "=" and not text[m.end():m.end() + 1].isalnum()
        if _is_float(token) and not whole_value:
            continue
        out[-1] += text[pos:m.start()]
        out += [token, ""]
        pos = m.end()
    out[-1] += text[pos:]
    return out


def _code(line: str) -> str:
    return line.split("  # ", 1)[0]


def _comment(line: str) -> str:
    return line.split("  # ", 1)[1] if "  # " in line else ""


def _skeleton(lines: list[str], words: Sequence[str] = ()) -> str:
    pieces = _tokens("\n".join(_code(line) for line in lines), words)
    return "#".join(pieces[0::2])


def _anti_unify(texts: list[str], words: list[str]) -> tuple[list[str], str, list[list[str]]]:
    """The block body with a parameter for each number that differs between the calls (`{2*c}`
    where one is a multiple of another), and each call's arguments."""
    cut = [_tokens(t, words) for t in texts]
    literal, tokens = cut[0][0::2], [[c[i] for c in cut] for i in range(1, len(cut[0]), 2)]
    params: list[tuple[str, list[Any]]] = []
    out = [literal[0]]
    for i, column in enumerate(tokens):
        if len(set(column)) == 1:
            out.append(column[0])
        elif any(_is_float(t) for t in column):  # a rate: its own parameter, as written (no multiples)
            out.append("{" + _param_for(column, params, literal[i]) + "}")
        else:
            out.append("{" + _param_for([int(t) for t in column], params, literal[i]) + "}")
        out.append(literal[i + 1])
    names = [n for n, _ in params]
    args = [[str(values[k]) for _, values in params] for k in range(len(texts))]
    return names, "".join(out), args


def _is_float(token: str) -> bool:
    return "." in token or "e" in token.lower()


def _param_for(column: list[Any], params: list[tuple[str, list[Any]]], before: str) -> str:
    for name, values in params:
        if values == column:
            return name
    for name, values in params:
        if not all(isinstance(v, int) for v in (*values, *column)):
            continue
        if all(v and c % v == 0 for c, v in zip(column, values)) and len({c // v for c, v in zip(column, values)}) == 1:
            return f"{column[0] // values[0]}*{name}"
        if all(c and v % c == 0 for c, v in zip(column, values)) and len({v // c for c, v in zip(column, values)}) == 1:
            return f"{name}//{values[0] // column[0]}"
    base = _param_name(before)
    name, k = base, 2
    taken = {n for n, _ in params}
    while name in taken:
        name, k = f"{base}{k}", k + 1
    params.append((name, column))
    return name


def _param_name(before: str) -> str:
    """A parameter's name from what stands before its number: /s2 → s, conv3 → k, -64 → c, x3 → n."""
    tail = before.rsplit("\n", 1)[-1]
    for pattern, name in ((r"/s$", "s"), (r"/p$", "p"), (r"/g$", "g"), (r"/d$", "d"), (r"(conv|pool)$", "k"),
                          (r"-$", "c"), (r" x$", "n"), (r"shape=$", "n"), (r"(\w+)=$", None)):
        m = re.search(pattern, tail)
        if m:
            return name or _ident(m.group(1))
    return "c"
