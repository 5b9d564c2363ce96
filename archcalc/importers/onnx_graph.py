"""An ONNX file → `ModelIR`, read with the onnx package alone (no runtime).

Each node goes to the layer types that declare its op type (`onnx_ops`, `from_onnx`). Its
initializer inputs are its parameters (a BatchNormalization's mean and variance are its
buffers, as archcalc's `bn` holds them, with the batch counter PyTorch's BatchNorm adds).
Output shapes come from the graph's `value_info` where the file has them, and from archcalc's
own rules elsewhere: each item is applied to its inputs' shapes as the spec will apply it,
and where the file states a shape, the two must agree. Shape arithmetic the exporter left in
the graph (`Shape` → `Gather` → `Concat` → `Reshape`) is folded to constants.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from archcalc.errors import ModelImportError, SpecError, UnknownOpsError
from archcalc.importers.ir import Frame, ModelIR, Op, Ref
from archcalc.layers import REGISTRY, LayerType
from archcalc.layers.imported import Emit, OnnxCall, Unsupported
from archcalc.tensor import Shape

INSTALL = "pip install 'archcalc[onnx]'"
FREE_OPERANDS = ("Add", "Mul", "Sub", "Div", "MatMul", "Concat")  # an initializer operand: a free parameter
FOLDABLE = ("Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Slice", "Mul", "Div", "Add", "Sub",
            "Constant", "ConstantOfShape", "Identity", "Range", "Floor", "Neg", "Reshape", "Mod", "Pow", "Sqrt",
            "Equal", "Not", "Where", "Expand", "ScatterND", "Transpose")
# folded only where every input is a constant the graph computes, never an initializer (ViT's class token
# is an Expand of one: a parameter, not shape arithmetic)
CONSTANTS_ONLY = ("Pow", "Sqrt", "Equal", "Not", "Where", "Expand", "ScatterND", "Transpose")


def require_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ModelImportError(f"reading ONNX files needs the onnx package, which is not installed: {INSTALL}") \
            from None
    return onnx


def read_onnx(path: str, input_shape: Any = None, *, allow_unknown: bool = False, name: str | None = None) -> ModelIR:
    onnx = require_onnx()
    if not os.path.exists(path):
        raise ModelImportError(f"{path}: no such file")
    try:
        model = onnx.load(path)
    except Exception as e:  # noqa: BLE001 - a malformed file: say so in one line
        raise ModelImportError(f"{path} is not a readable ONNX model ({type(e).__name__}: "
                               f"{str(e).strip().splitlines()[0] if str(e).strip() else 'cannot parse'}); "
                               f"export it again (torch.onnx.export) or check the file is complete") from None
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # noqa: BLE001
        raise ModelImportError(f"{path} is not a valid ONNX model: {str(e).strip().splitlines()[0]}") from None
    label = name or os.path.splitext(os.path.basename(path))[0].replace("-", "_") or "model"
    return _Reader(model, path, label, input_shape, allow_unknown).read()


class _Reader:
    def __init__(self, model: Any, path: str, name: str, input_shape: Any, allow_unknown: bool) -> None:
        from onnx import numpy_helper

        self.numpy_helper = numpy_helper
        self.model, self.path, self.name = model, path, name
        self.graph = model.graph
        self.input_shape = input_shape
        self.allow_unknown = allow_unknown
        self.inits = {i.name: i for i in self.graph.initializer}
        self.consts: dict[str, Any] = {}  # folded values (numpy arrays)
        self.refs: dict[str, Ref] = {}  # tensor name → op output
        self.alias: dict[str, str] = {}  # Identity of an initializer → the initializer
        self.ops: list[Op] = []
        self.known: dict[str, Shape] = {}  # value_info shapes, batch axis included
        self.unknown: list[tuple[str, str, str]] = []
        self.missing: set[str] = set()  # outputs of unknown nodes not kept: what reads them is not listed again
        self.shared: set[str] = set()  # initializers several nodes read
        self.layer_of: dict[tuple[str, tuple[str, ...], str], int] = {}  # a layer's initializers → its op
        self.owner: dict[str, int] = {}  # initializer → the op whose parameters it is
        self.skip: set[str] = set()  # nodes read as part of a subgraph already written (nn.MultiheadAttention's)
        self.layers: dict[str, list[LayerType]] = {}
        for layer in REGISTRY.values():
            for op in layer.onnx_ops:
                self.layers.setdefault(op, []).append(layer)

    def read(self) -> ModelIR:
        for vi in [*self.graph.value_info, *self.graph.output]:
            shape = _dims(vi)
            if shape is not None and all(isinstance(d, int) for d in shape):
                self.known[vi.name] = tuple(shape)
        self._inputs()
        for node in self.graph.node:
            self._node(node)
        if self.unknown and not self.allow_unknown:
            raise _unknown_error(self.unknown, self.path)
        outputs = tuple(self.refs[o.name] for o in self.graph.output if o.name in self.refs)
        if not outputs:
            raise ModelImportError(f"{self.path}: no graph output comes from the graph's nodes")
        used = {name for name in self.owner}
        elements = sum(op.elements or 0 for op in self.ops)
        unused = [n for n in self.inits if n not in used and n not in self.alias.values()]
        notes = []
        if self.shared:
            notes.append(f"{len(self.shared)} initializers are read by several nodes (torch.onnx stores identical "
                         f"tensors once): each node counts them, as the model exported held them apart")
        if unused:
            notes.append(f"{sum(math.prod(self.inits[n].dims) for n in unused):,} initializer elements no node "
                         f"reads as weights ({', '.join(unused[:6])}{' …' if len(unused) > 6 else ''}) are not in "
                         f"the spec")
        import onnx

        opset = max((o.version for o in self.model.opset_import if o.domain in ("", "ai.onnx")), default=0)
        ir = ModelIR(self.name, self.path, self.ops, outputs, params=elements, notes=notes, framework="onnx",
                     versions=f"onnx {onnx.__version__}, opset {opset}")
        from archcalc.importers.torch_trace import _input_layouts

        ir.layouts = _input_layouts(ir)
        return ir

    # -- inputs ---------------------------------------------------------------------------------------
    def _inputs(self) -> None:
        given = self.input_shape
        inputs = [i for i in self.graph.input if i.name not in self.inits]
        if isinstance(given, Mapping):
            bad = [k for k in given if k not in {i.name for i in inputs}]
            if bad:
                raise ModelImportError(f"{self.path} has no input '{bad[0]}' (its inputs: "
                                       f"{', '.join(i.name for i in inputs)})")
        for k, vi in enumerate(inputs):
            dims = _dims(vi) or []
            mine = given.get(vi.name) if isinstance(given, Mapping) else (given if k == 0 else None)
            if mine is not None:
                shape = tuple(mine)
            elif dims[1:] and all(isinstance(d, int) and d > 0 for d in dims[1:]):
                shape = tuple(dims[1:])
            else:
                raise ModelImportError(f"{self.path}: input '{vi.name}' has sizes {dims} the file leaves open: "
                                       f"give them without the batch axis, --input {vi.name}=3x224x224")
            op = Op(len(self.ops), "input", Emit(), shapes=(shape,), name=_ident(vi.name), source="input")
            self.ops.append(op)
            self.refs[vi.name] = Ref(op.id)

    # -- nodes ----------------------------------------------------------------------------------------
    def _node(self, node: Any) -> None:
        if node.name and node.name in self.skip:
            return
        names = [self.alias.get(n, n) for n in node.input]
        if node.op_type == "Transpose" and self._mha(node, names):
            return
        if node.op_type == "Constant":
            self._fold(node, names)
            return
        if all(not n or n in self.consts or (n in self.inits and node.op_type not in CONSTANTS_ONLY) for n in names) \
                and node.op_type in FOLDABLE and node.op_type != "Identity":
            if self._fold(node, names):
                return
        if node.op_type == "Shape" and names and names[0] in self.refs:
            shape = self._full(self.refs[names[0]])
            import numpy as np

            self.consts[node.output[0]] = np.array(shape, dtype=np.int64)
            return
        if node.op_type == "Identity" and names:
            if names[0] in self.inits:
                self.alias[node.output[0]] = names[0]
            elif names[0] in self.consts:
                self.consts[node.output[0]] = self.consts[names[0]]
            elif names[0] in self.refs:
                self.refs[node.output[0]] = self.refs[names[0]]
            return
        if node.op_type == "Expand" and names and names[0] in self.inits and names[1:2] and names[1] in self.consts:
            dims = tuple(self.inits[names[0]].dims)
            try:
                import numpy as np

                same = dims[:1] == (1,) and tuple(np.broadcast_shapes(dims, tuple(self.consts[names[1]]))) == dims
            except ValueError:
                same = False
            if same:  # a free 1×… tensor over the (exported) batch of 1, as ViT's class token: the tensor itself
                self.refs[node.output[0]] = self.refs[self._free(names[0], _scope(node.name)[0])]
                return
        if any(n in self.missing for n in names):
            self.missing.update(node.output)  # downstream of an op already listed
            return
        if node.op_type in FREE_OPERANDS and any(n in self.inits for n in names) and any(n in self.refs for n in names):
            frames = _scope(node.name)[0]  # placed with the node that reads it, before it
            names = [self._free(n, frames) if n in self.inits else n for n in names]  # x·γ with γ an initializer
        acts = [(k, n) for k, n in enumerate(names) if n and n in self.refs]
        weights = {k: tuple(self.inits[n].dims) for k, n in enumerate(names) if n in self.inits}
        constants = {k: self.consts[n] for k, n in enumerate(names) if n in self.consts}
        attrs = {a.name: _attr(a) for a in node.attribute}
        refs = [self.refs[n] for _, n in acts]
        shapes = tuple(self.ops[r.op].shapes[r.part] for r in refs)
        known = [self.known.get(o) for o in node.output]
        outputs = tuple(s[1:] if s else None for s in known)
        call = OnnxCall(node.op_type, attrs, shapes, weights,
                        {k: v.tolist() if hasattr(v, "tolist") else v for k, v in constants.items()},
                        outputs[0] if len(outputs) == 1 else outputs, len(names))
        label = f"{node.op_type} {node.name}".strip()
        reason = f"archcalc has no layer type for the ONNX op {node.op_type}"
        for layer in self.layers.get(node.op_type, []):
            try:
                emit = layer.from_onnx(call)
            except Unsupported as e:
                reason = str(e)
                break
            except (KeyError, IndexError, TypeError, ValueError) as e:
                reason = f"archcalc could not read it ({type(e).__name__}: {e})"
                break
            if emit is None:
                continue
            if emit.alias:
                self.refs[node.output[0]] = refs[0]
                return
            try:
                inferred = _infer(emit, shapes, [self.ops[r.op].batched for r in refs])
            except SpecError as e:
                reason = f"archcalc cannot apply '{emit.text}' to it: {e.message}"
                break
            for mine, theirs in zip(inferred, outputs):
                if theirs is not None and tuple(theirs) != tuple(mine):
                    raise ModelImportError(
                        f"{self.path}: node {label}: archcalc's '{emit.text}' gives {mine}, the file's value_info "
                        f"says {tuple(theirs)} (a bug in archcalc's mapping of {node.op_type}; please report it)")
            owned = [names[k] for k in emit.owns if k < len(names) and names[k] in self.inits]
            frames, path = _scope(node.name)
            # A node reading exactly an earlier node's initializers, with its attributes, applies that layer
            # again (a Siamese tower). Otherwise each node counts every initializer it reads: torch.onnx stores
            # identical tensors once (a fresh model's BatchNorm ones and zeros), which the model held apart.
            key = (node.op_type, tuple(owned), repr(sorted(attrs.items())))
            again = self.layer_of.get(key) if owned else None
            batched = any(self.ops[r.op].batched for r in refs) or not refs
            op = Op(len(self.ops), _type_of(emit.text, layer.name), emit, tuple(refs), tuple(inferred), batched,
                    frames, path=path or node.name, source=f"ONNX {node.op_type}",
                    elements=0 if again is not None else sum(math.prod(self.inits[n].dims) for n in owned),
                    shares=again)
            if owned and again is None:
                self.layer_of[key] = op.id
            for n in owned:
                if n in self.owner and again is None:
                    self.shared.add(n)
                self.owner.setdefault(n, op.id)
            self.ops.append(op)
            for k, out in enumerate(node.output[:len(inferred)]):
                self.refs[out] = Ref(op.id, k)
            return
        self._unknown(node, label, reason, refs, names, known)

    def _mha(self, node: Any, names: list[str]) -> bool:
        """torch.onnx's nn.MultiheadAttention (batch_first self-attention, no mask), written sequence-first:
        in its module's scope, a Transpose (1, 0, 2) of the one input, the in-projection (a MatMul with the
        E×3E weight, an Add of the 3E bias), per-head Reshapes to (T, H, D), two MatMuls between them around
        one Softmax, the out-projection Gemm (E×E, E) and a Transpose back. Read as one
        `attention/mha(heads=H)` holding those four initializers; any other form is left to the nodes."""
        import numpy as np

        perm = next((tuple(_attr(a)) for a in node.attribute if a.name == "perm"), None)
        if perm != (1, 0, 2) or not names or names[0] not in self.refs or "/" not in node.name.strip("/"):
            return False
        ref = self.refs[names[0]]
        shape = self.ops[ref.op].shapes[ref.part]
        if len(shape) != 2 or not self.ops[ref.op].batched:
            return False
        tokens, width = shape
        prefix = node.name.rsplit("/", 1)[0] + "/"
        body = [n for n in self.graph.node if n.name.startswith(prefix)]
        first = next((n for n in body if n.op_type != "Constant"), None)
        if first is None or first.name != node.name:  # the scope begins with this Transpose
            return False
        names_in = {n.name for n in body}
        produced = {o for n in body for o in n.output}
        read_outside = {i for n in self.graph.node if n.name not in names_in for i in n.input} | \
            {o.name for o in self.graph.output}
        outs = [o for n in body for o in n.output if o in read_outside]
        external = {self.alias.get(i, i) for n in body for i in n.input if i and i not in produced}
        floats = {i for i in external if i in self.inits and self.inits[i].data_type in (1, 10, 11, 16)}
        if len(outs) != 1 or {i for i in external if i in self.refs} != {names[0]} or \
                any(i not in self.inits and i not in self.consts and i not in self.refs for i in external):
            return False
        data, ops = {names[0]}, []  # the nodes computing from the input, in order
        for n in body:
            if n.op_type != "Shape" and any(self.alias.get(i, i) in data for i in n.input):  # sizes: not data
                data.update(n.output)
                ops.append(n)
        kinds = [n.op_type for n in ops]
        allowed = {"Transpose", "MatMul", "Add", "Reshape", "Unsqueeze", "Squeeze", "Gather", "Mul", "Softmax", "Gemm"}
        if set(kinds) - allowed or kinds.count("Softmax") != 1 or kinds.count("MatMul") != 3 or \
                kinds.count("Gemm") != 1 or kinds.count("Add") != 1 or ops[-1].op_type != "Transpose":
            return False
        dims = {i: tuple(self.inits[i].dims) for i in floats}
        by_shape = sorted(dims.values())
        if by_shape != sorted([(width, 3 * width), (3 * width,), (width, width), (width,)]) or len(floats) != 4:
            return False
        consts = {}
        for n in body:
            if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
                consts[n.output[0]] = self.numpy_helper.to_array(n.attribute[0].t)
        for n in ops:
            if n.op_type in ("MatMul", "Add", "Gemm", "Mul"):
                other = [self.alias.get(i, i) for i in n.input if self.alias.get(i, i) not in data]
                if n.op_type == "MatMul" and other and dims.get(other[0]) != (width, 3 * width):
                    return False
                if n.op_type == "Add" and (len(other) != 1 or dims.get(other[0]) != (3 * width,)):
                    return False
                if n.op_type == "Gemm" and (sorted(dims.get(i, ()) for i in other) != [(width,), (width, width)]
                                            or _attr_of(n, "transB", 0) != 1 or _attr_of(n, "alpha", 1.0) != 1.0
                                            or _attr_of(n, "beta", 1.0) != 1.0):
                    return False
                if n.op_type == "Mul" and any(i in self.inits or i in data for i in other):
                    return False
            if n.op_type == "Softmax" and _attr_of(n, "axis", -1) not in (-1, 3):
                return False
        before = ops[:kinds.index("Softmax")]  # q, k and v split into heads: (T, B·H, D), the batch 1
        heads = {int(v[1]) for n in before if n.op_type == "Reshape" for t in [consts.get(n.input[1])]
                 if t is not None for v in [np.atleast_1d(t)] if v.size == 3 and v[0] == tokens and
                 v[1] * v[2] == width}
        if len(heads) != 1:
            return False
        emit = Emit(f"attention/mha(heads={heads.pop()})")
        try:
            inferred = _infer(emit, (shape,), [True])
        except SpecError:
            return False
        frames, path = _scope(node.name)
        op = Op(len(self.ops), _type_of(emit.text, "attention"), emit, (ref,), tuple(inferred), True, frames,
                path=path or prefix.strip("/"), source="ONNX nn.MultiheadAttention (MatMul, Softmax, Gemm)",
                elements=sum(math.prod(d) for d in dims.values()))
        for i in floats:
            self.owner.setdefault(i, op.id)
        self.ops.append(op)
        self.refs[outs[0]] = Ref(op.id)
        self.skip.update(names_in)
        return True

    def _unknown(self, node: Any, label: str, reason: str, refs: list[Ref], names: list[str],
                 known: list[Shape | None]) -> None:
        from archcalc.importers.torch_trace import unknown_text

        self.unknown.append((f"ONNX {node.op_type}", node.name, reason))
        for k, out in enumerate(node.output):
            shape = known[k]
            if shape is None or not self.allow_unknown:
                if not self.allow_unknown:
                    self.missing.update(node.output)
                    return
                raise ModelImportError(
                    f"{self.path}: node {label} ({node.op_type}) is an op archcalc has no rule for, and the file "
                    f"states no shape for its output '{out}'; add shapes to the file first "
                    f"(onnx.shape_inference.infer_shapes) so it can be kept as an opaque node")
            weights = sum(math.prod(self.inits[n].dims) for n in names if n in self.inits) if k == 0 else 0
            text = unknown_text(f"ONNX.{node.op_type}", shape[1:], weights, 0, 0, 0, free=not refs)
            frames, path = _scope(node.name)
            op = Op(len(self.ops), "unknown" if refs else "unknown-tensor", Emit(text), tuple(refs), (shape[1:],),
                    True, frames, path=path or node.name, source=f"ONNX {node.op_type}", unknown=True,
                    elements=weights)
            if k == 0:
                for n in names:
                    if n in self.inits:
                        self.owner.setdefault(n, op.id)
            self.ops.append(op)
            self.refs[out] = Ref(op.id)

    def _free(self, name: str, frames: tuple[Frame, ...] = ()) -> str:
        """An initializer used as an operand (a layer scale, a bias added by itself): a free parameter."""
        key = "\x00param " + name
        if key not in self.refs:
            shape = tuple(self.inits[name].dims)
            op = Op(len(self.ops), "parameter", Emit(f"parameter({'x'.join(map(str, shape)) or '1'})"), (),
                    (shape,), False, frames, path=name.replace("/", "."), source=f"initializer {name}",
                    elements=math.prod(shape) if name not in self.owner else 0)
            self.owner.setdefault(name, op.id)
            self.ops.append(op)
            self.refs[key] = Ref(op.id)
        return key

    def _full(self, ref: Ref) -> tuple[int, ...]:
        return (1, *self.ops[ref.op].shapes[ref.part])

    def _fold(self, node: Any, names: list[str]) -> bool:
        """Shape arithmetic on constants, as numpy computes it; False where it is not that."""
        import numpy as np

        attrs = {a.name: _attr(a) for a in node.attribute}
        vals: list[Any] = [self.consts[n] if n in self.consts else
                           self.numpy_helper.to_array(self.inits[n]) if n in self.inits else None for n in names]
        op = node.op_type
        out: Any
        try:
            if op == "Constant":
                t = next(a for a in node.attribute if a.name in ("value", "value_ints", "value_int", "value_float",
                                                                  "value_floats"))
                out = self.numpy_helper.to_array(t.t) if t.name == "value" else np.array(_attr(t))
            elif op == "Shape":  # of a folded constant: its sizes (opset 15's start and end)
                dims = np.shape(vals[0])
                out = np.array(dims[attrs.get("start", 0):attrs.get("end", len(dims))], dtype=np.int64)
            elif op == "Gather":
                out = np.take(vals[0], vals[1], axis=attrs.get("axis", 0))
            elif op == "Unsqueeze":
                axes: Any = attrs.get("axes", vals[1] if len(vals) > 1 else None)
                out = vals[0]
                for a in sorted(int(x) for x in np.atleast_1d(axes)):
                    out = np.expand_dims(out, a)
            elif op == "Squeeze":
                axes = attrs.get("axes", vals[1] if len(vals) > 1 else None)  # noqa: F841 - read below
                out = np.squeeze(vals[0], axis=tuple(int(x) for x in np.atleast_1d(axes)) if axes is not None else None)
            elif op == "Concat":
                out = np.concatenate([np.atleast_1d(v) for v in vals], axis=attrs.get("axis", 0))
            elif op == "Cast":
                out = vals[0]
            elif op in ("Mul", "Div", "Add", "Sub"):
                fn = {"Mul": np.multiply, "Div": np.floor_divide, "Add": np.add, "Sub": np.subtract}[op]
                out = fn(vals[0], vals[1])
            elif op == "Slice":
                data, starts, ends = vals[0], vals[1], vals[2]
                axes = vals[3] if len(vals) > 3 and vals[3] is not None else range(len(starts))
                steps = vals[4] if len(vals) > 4 and vals[4] is not None else [1] * len(starts)
                index = [slice(None)] * np.ndim(data)
                for s, e, a, k in zip(starts, ends, axes, steps):
                    index[int(a)] = slice(int(s), int(e), int(k))
                out = data[tuple(index)]
            elif op == "Reshape":
                out = np.reshape(vals[0], vals[1])
            elif op in ("Floor", "Neg"):
                out = np.floor(vals[0]) if op == "Floor" else -vals[0]
            elif op == "Transpose":
                out = np.transpose(vals[0], attrs.get("perm"))
            elif op == "Pow":
                out = np.power(vals[0], vals[1]).astype(np.result_type(vals[0]))  # ONNX: the base's type
            elif op == "Sqrt":
                out = np.sqrt(vals[0])
            elif op == "Equal":
                out = np.equal(vals[0], vals[1])
            elif op == "Not":
                out = np.logical_not(vals[0])
            elif op == "Where":
                out = np.where(vals[0], vals[1], vals[2])
            elif op == "Expand":
                out = vals[0] * np.ones(tuple(int(d) for d in vals[1]), dtype=vals[0].dtype)  # bidirectional
            elif op == "ScatterND":
                out = np.array(vals[0], copy=True)
                for idx, upd in zip(vals[1].reshape(-1, vals[1].shape[-1]),
                                    vals[2].reshape(-1, *vals[0].shape[vals[1].shape[-1]:])):
                    out[tuple(int(i) for i in idx)] = upd
            elif op == "Mod":
                out = (np.fmod if attrs.get("fmod", 0) else np.mod)(vals[0], vals[1])
            elif op == "Identity":
                out = vals[0]
            elif op == "ConstantOfShape":
                value = next((a.t for a in node.attribute if a.name == "value"), None)
                fill = self.numpy_helper.to_array(value) if value is not None else np.zeros(1, np.float32)
                out = np.full(tuple(int(d) for d in np.atleast_1d(vals[0])), fill.reshape(-1)[0], dtype=fill.dtype)
            elif op == "Range":
                out = np.arange(vals[0], vals[1], vals[2])
            else:
                return False
        except Exception:  # noqa: BLE001 - not foldable: the node is read as a layer instead
            return False
        self.consts[node.output[0]] = np.asarray(out)
        return True


def _infer(emit: Emit, shapes: tuple[Shape, ...], batched: list[bool]) -> list[Shape]:
    """The output shape(s) archcalc gives the item on inputs of these shapes (its own shape rules, through
    the spec language, exactly as the written spec will apply it); a free tensor is a `parameter`."""
    from archcalc.importers.writer import _with_refs
    from archcalc.lang import expand, parse
    from archcalc.passes.shapes import infer

    given = [k for k, b in enumerate(batched) if b] or [-1]
    lines = [f"input i{k} 1 as plain" for k in given]
    lines += [f"i{k} = parameter({'x'.join(map(str, s))})" for k, s in enumerate(shapes) if not batched[k]]
    refs = [f"@i{k}" for k in range(len(shapes))]
    item = emit.text if len(shapes) == 1 and batched[0] else _with_refs(emit.text, refs) if shapes else emit.text
    if emit.parts > 1:
        item = ", ".join(f"p{k}" for k in range(emit.parts)) + " = " + item
    overrides = {f"i{k}": shapes[k] for k in given if k >= 0} or {"i-1": (1,)}
    drafts = expand(parse("\n".join([*lines, item]).replace("i-1", "i_none") + "\n", "<onnx node>"),
                    {k.replace("i-1", "i_none"): v for k, v in overrides.items()})
    graph = infer(drafts)
    made = [n for n in graph if n.type != "input" and not n.implicit]
    return [tuple(n.shape) for n in made[-emit.parts:]]


def _scope(name: str) -> tuple[tuple[Frame, ...], str]:
    """torch.onnx names nodes by the module calls around them ('/layer1/layer1.0/conv1/Conv'): those calls,
    as frames with dotted paths ('layer1', 'layer1.0', 'layer1.0.conv1'), and the innermost path."""
    if not name.startswith("/"):
        return (), ""
    parts = name.strip("/").split("/")[:-1]
    frames, path, key = [], "", ""
    for part in parts:
        path = part if not path or part.startswith(path + ".") else f"{path}.{part}"
        key += "/" + part
        frames.append(Frame(key, path, ""))
    return tuple(frames), path


def _type_of(text: str, default: str) -> str:
    from archcalc.importers.torch_trace import type_of

    return type_of(text, default)


def _dims(vi: Any) -> list[Any] | None:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]


def _attr_of(node: Any, name: str, default: Any) -> Any:
    return next((_attr(a) for a in node.attribute if a.name == name), default)


def _attr(a: Any) -> Any:
    from onnx import helper

    value = helper.get_attribute_value(a)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return tuple(v.decode() if isinstance(v, bytes) else v for v in value)
    return value


def _ident(text: str) -> str:
    import re

    word = re.sub(r"\W", "_", text).strip("_") or "x"
    return word if word[0].isalpha() else f"x{word}"


def _unknown_error(unknown: list[tuple[str, str, str]], path: str) -> UnknownOpsError:
    grouped: dict[tuple[str, str], list[str]] = {}
    for op, node, reason in unknown:
        grouped.setdefault((op, reason), []).append(node)
    lines = [f"{path} uses {len(unknown)} node{'s' if len(unknown) != 1 else ''} archcalc has no rule for; nothing "
             f"was counted:"]
    for (op, reason), nodes in grouped.items():
        lines.append(f"  {op} ×{len(nodes)}: {reason}")
        lines.append("      " + ", ".join(nodes[:6]) + (f", … {len(nodes) - 6} more" if len(nodes) > 6 else ""))
    lines.append("to go on: `archcalc import FILE.onnx --allow-unknown -o model.arch` keeps each as an opaque node "
                 "with the shape the file states and its initializers as parameters; or give archcalc a layer type "
                 "that declares the op (onnx_ops and from_onnx: docs/import.md)")
    return UnknownOpsError("\n".join(lines), tuple((op, len(nodes), nodes[0]) for (op, _), nodes in grouped.items()))
