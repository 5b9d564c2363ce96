"""A PyTorch module → `ModelIR`: traced with torch.fx, shapes and FLOPs measured on the meta device.

`torch.fx` symbolic tracing records every call the forward makes: the modules archcalc knows
(and those of torch.nn it does not) as leaves, and inside everything else the functions and
tensor methods (`F.relu`, `torch.cat`, `x.view`, `x + y`). The traced graph then runs once
on the `meta` device under `FlopCounterMode`, at a batch of 2, with the model's parameters
and buffers swapped for meta tensors of their shapes: nothing is allocated, every output
shape and every operation's FLOPs are measured. Each call is then handed to the layer types
that declare its name (`torch_names`); what none of them writes is listed (or, with
`allow_unknown`, kept as an opaque node).

torch is imported inside the functions here only: the static path never loads this module's
dependencies.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from archcalc.errors import ModelImportError, TorchMissingError, UnknownOpsError
from archcalc.importers.hugging_face import added_embedding, is_hugging_face, traceable
from archcalc.importers.hugging_face import input_dtypes as hugging_face_dtypes
from archcalc.importers.ir import Frame, ModelIR, Op, Ref
from archcalc.importers.torch_names import PARAMETER, TorchNames, class_label, function_label, torch_names
from archcalc.layers.imported import Emit, TensorArg, TorchCall, Unsupported
from archcalc.records import record
from archcalc.tensor import Shape

BATCH = 2  # the traced batch: every batched tensor keeps an axis of 2 first (a 1 would hide a merged batch)
MAX_LEAF_RETRIES = 64


def require_torch() -> Any:
    import warnings

    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
    try:
        import torch
    except ImportError:
        raise TorchMissingError("importing a PyTorch model needs PyTorch, which is not installed: "
                                "pip install 'archcalc[torch]'") from None
    return torch


# -- values while building the IR ---------------------------------------------------------------


@record
class _Static:
    """A Python value the forward computed (a size, a flag): it goes into arguments as it is."""

    value: Any


@record
class _Missing:
    """A tensor archcalc cannot give: why (an LSTM's final state, an unknown op's output)."""

    reason: str


@record
class _Tuple:
    """A tuple of values: a split's parts, an LSTM's (output, state)."""

    items: tuple[Any, ...]


@dataclass(frozen=True, eq=False)
class _Const:
    """Ids the forward makes without reading its inputs (Hugging Face's position and token type ids:
    `torch.arange`, a slice of a `position_ids` or `token_type_ids` buffer): 'positions' or 'types'."""

    kind: str
    buffers: tuple[Any, ...] = ()


@dataclass(frozen=True, eq=False)
class _ConstEmbedding:
    """An nn.Embedding read at such ids: added to the token embedding, it is a position-embedding
    or token-type-embedding item."""

    module: Any
    path: str
    ids: _Const


IDS_BUFFERS = {"position_ids": "positions", "token_type_ids": "types"}


@dataclass
class _Unknown:
    name: str
    where: str
    path: str
    reason: str


def import_module(module: Any, inputs: Mapping[str, Shape] | Shape, *, name: str | None = None,
                  origin: str = "", allow_unknown: bool = False, dtypes: Mapping[str, Any] | None = None) -> ModelIR:
    """Trace `module` with inputs of these shapes (no batch axis; one per forward argument, by
    name, or one shape for the first) and describe it operation by operation."""
    torch = require_torch()
    from torch import nn

    if not isinstance(module, nn.Module):
        raise ModelImportError(f"{origin or 'the target'} is a {type(module).__name__}, not a torch.nn.Module")
    names = torch_names()
    if names.module(type(module)) is not None or (type(module).__module__.startswith("torch.nn.")
                                                  and not isinstance(module, (nn.Sequential, nn.ModuleList))):
        module = nn.Sequential(module)  # a lone layer: traced as the one call of a container
    hugging_face = is_hugging_face(module)
    if hugging_face:
        dtypes = {**hugging_face_dtypes(), **(dtypes or {})}
        name = name or type(module).__name__
    training = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        with traceable(module) if hugging_face else contextlib.nullcontext(module):
            shapes, concrete = _bind_inputs(module, inputs, origin)
            try:
                ir = _import_once(module, shapes, concrete, names, allow_unknown, origin, name, dtypes,
                                  stacks=False, constants=hugging_face)
            except (UnknownOpsError, ModelImportError):
                # again with torch.fx's stack traces (seconds more), so the message names the source lines
                ir = _import_once(module, shapes, concrete, names, allow_unknown, origin, name, dtypes,
                                  stacks=True, constants=hugging_face)
    finally:
        for m, was in training:
            m.training = was
    ir.versions = f"torch {torch.__version__}"
    if hugging_face:
        import transformers

        ir.versions += f", transformers {transformers.__version__}"
        ir.notes.append("traced with Hugging Face's mask builders returning None (no padding mask; a causal mask is "
                        "the attention's causal=true) and eager attention, as FlopCounterMode counts it")
    return ir


def _import_once(module: Any, shapes: dict[str, Shape], concrete: dict, names: TorchNames, allow_unknown: bool,
                 origin: str, name: str | None, dtypes: Mapping[str, Any] | None, stacks: bool,
                 constants: bool = False) -> ModelIR:
    gm = _trace(module, concrete, names, allow_unknown, origin, stacks, buffers=constants)
    values, flops = _run(gm, shapes, concrete, dtypes or {})
    builder = _Builder(module, gm, names, values, flops, allow_unknown, constants)
    return builder.build(name or type(module).__name__, origin, shapes)


# -- inputs -------------------------------------------------------------------------------------


def _bind_inputs(module: Any, inputs: Mapping[str, Shape] | Shape, origin: str) -> tuple[dict[str, Shape], dict]:
    """The forward's tensor arguments with their shapes; every other argument at its default
    (tracing specialises on it)."""
    params = [p for p in inspect.signature(module.forward).parameters.values()
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if not params:
        raise ModelImportError(f"{_label(module, origin)}.forward takes no named arguments to give inputs to")
    names = [p.name for p in params]
    given = dict(inputs) if isinstance(inputs, Mapping) else {names[0]: tuple(inputs)}
    for key in given:
        if key not in names:
            from archcalc.lang.suggest import did_you_mean

            hint = did_you_mean(key, names)
            raise ModelImportError(f"{_label(module, origin)}.forward has no argument '{key}' (its arguments: "
                                   f"{', '.join(names)})" + (f"; {hint}" if hint else ""))
    missing = [p.name for p in params if p.name not in given and p.default is p.empty]
    if missing:
        wanted = ", ".join(f"--input {n}=SHAPE" for n in [*given, *missing])
        raise ModelImportError(
            f"{_label(module, origin)}.forward({', '.join(names)}) needs {len(given) + len(missing)} inputs, "
            f"given {len(given)} ({', '.join(given)}): give a shape for each, as in {wanted}")
    concrete = {p.name: p.default for p in params if p.name not in given}
    return {n: tuple(given[n]) for n in names if n in given}, concrete


def _label(module: Any, origin: str) -> str:
    return origin or type(module).__name__


# -- tracing ------------------------------------------------------------------------------------


def _trace(module: Any, concrete: dict, names: TorchNames, allow_unknown: bool, origin: str,
           stacks: bool = False, buffers: bool = False) -> Any:
    """torch.fx symbolic tracing with archcalc's leaves; where tracing cannot follow a module's
    forward and unknowns are allowed, that module becomes an opaque leaf and tracing starts again."""
    from torch import fx

    leaves: set[str] = set()
    for _ in range(MAX_LEAF_RETRIES):
        tracer = _tracer_class()(names, leaves)
        tracer.record_stack_traces = stacks
        tracer.proxy_buffer_attributes = buffers  # a buffer the forward slices by a size (BERT's position ids)
        try:
            graph = tracer.trace(module, concrete_args=concrete or None)
        except Exception as e:  # noqa: BLE001 - any failure of the user's forward is reported, not raised
            stack = list(getattr(tracer, "module_stack", {}).values())
            inner = stack[-1][0] if stack else ""
            if allow_unknown and inner and inner not in leaves:
                leaves.add(inner)
                continue
            raise _trace_error(e, module, origin, inner) from None
        return fx.GraphModule(tracer.root, graph)
    raise ModelImportError(f"tracing {_label(module, origin)} failed in more than {MAX_LEAF_RETRIES} modules")


def _tracer_class() -> type:
    from torch import fx, nn

    containers = (nn.Sequential, nn.ModuleList, nn.ModuleDict)

    class Tracer(fx.Tracer):
        """Leaves: modules a layer type declares, torch.nn's own modules (named as such when
        archcalc has no rule for them), and modules tracing could not enter."""

        def __init__(self, names: TorchNames, leaves: set[str]) -> None:
            super().__init__()
            self.names, self.leaves = names, leaves

        def is_leaf_module(self, m: Any, qualname: str) -> bool:
            if qualname in self.leaves or self.names.module(type(m)) is not None:
                return True
            return type(m).__module__.startswith("torch.nn.") and not isinstance(m, containers)

    return Tracer


def _trace_error(e: Exception, module: Any, origin: str, inner: str) -> ModelImportError:
    where = user_frame(traceback.extract_tb(e.__traceback__))
    place = f"{where}: " if where else ""
    inside = f" (in module '{inner}')" if inner else ""
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if "cannot be iterated" in text:  # fx's words for it also name "control flow": this check first
        return ModelImportError(
            f"{place}the forward of {_label(module, origin)}{inside} unpacks or loops over a tensor it computed, "
            f"whose number of parts tracing does not know ({text.split('. ', 1)[0]}). Unpack a Python value "
            f"instead (`n, c = x.shape[:2]`, `a, b = x.chunk(2)`), or import with --allow-unknown to keep that "
            f"module as an opaque node")
    if "control flow" in text or "iteration" in text or "bool(" in text:
        return ModelImportError(
            f"{place}the forward of {_label(module, origin)}{inside} decides what to compute from a tensor's "
            f"values, which tracing cannot follow ({text}). Make the decision from Python values (a flag set in "
            f"__init__, a shape), or import with --allow-unknown to keep that module as an opaque node")
    hint = ""
    if type(module).__module__.startswith("transformers."):
        hint = (" archcalc traces Hugging Face models with a forward(input_ids), no mask builders and eager "
                "attention (docs/import.md, Hugging Face models); this one's forward does more than that follows.")
    return ModelImportError(
        f"{place}tracing {_label(module, origin)}{inside} failed: {type(e).__name__}: {text}. archcalc traces "
        f"with torch.fx; a forward it cannot follow can be kept as an opaque node with --allow-unknown.{hint}")


def user_frame(frames: Any) -> str:
    """'model.py:23': the innermost frame of the user's code (not torch's, not archcalc's)."""
    import torch

    skip = (os.path.dirname(torch.__file__), os.path.dirname(os.path.dirname(__file__)))
    found = ""
    for f in frames:
        filename = f.filename if hasattr(f, "filename") else f[0]
        line = f.lineno if hasattr(f, "lineno") else f[1]
        if not filename.startswith(skip) and not filename.startswith("<"):
            found = f"{_short(filename)}:{line}"
    return found


def _short(filename: str) -> str:
    """A path as people read it: relative to here, or from the package down (torchvision/models/resnet.py)."""
    try:
        rel = os.path.relpath(filename)
        if not rel.startswith(".."):
            return rel
    except ValueError:
        pass
    marker = f"{os.sep}site-packages{os.sep}"
    return filename.split(marker, 1)[1] if marker in filename else filename


_FRAME = re.compile(r'File "([^"]+)", line (\d+)')


def node_where(node: Any) -> str:
    """Where the forward made this call, from torch.fx's recorded stack trace."""
    trace = node.meta.get("stack_trace") or node.stack_trace or ""
    return user_frame([(f, int(n)) for f, n in _FRAME.findall(trace)])


# -- running on meta ----------------------------------------------------------------------------


def _run(gm: Any, shapes: Mapping[str, Shape], concrete: Mapping[str, Any],
         dtypes: Mapping[str, Any]) -> tuple[dict[Any, Any], dict[Any, int]]:
    """One forward pass of the traced graph on meta tensors under FlopCounterMode: every node's
    value and the FLOPs counted while it ran."""
    import torch
    from torch import fx, nn
    from torch.utils.flop_counter import FlopCounterMode

    values: dict[Any, Any] = {}
    flops: dict[Any, int] = {}
    failed: list[str] = []

    class Run(fx.Interpreter):
        def run_node(self, n: Any) -> Any:
            before = counter.get_total_flops()
            try:
                value = super().run_node(n)
            except Exception as e:  # the user's op failed on meta: say which (fx rewrites the exception)
                where = node_where(n)
                args, kwargs = self.fetch_args_kwargs_from_env(n)
                got = [x for x in [*args, *kwargs.values()] if isinstance(x, torch.Tensor)]
                shapes = " and ".join("×".join(map(str, t.shape[1:])) or "a scalar" for t in got)
                module = f" = {gm.get_submodule(n.target)!r}" if n.op == "call_module" else ""
                failed.append(f"{where + ': ' if where else ''}running '{_node_label(gm, n)}'{module} on "
                              f"{shapes or 'its inputs'} (per sample) failed: {type(e).__name__}: {_first_line(e)}. "
                              f"Check the input shapes (--input) fit the model")
                raise
            flops[n] = counter.get_total_flops() - before
            values[n] = value
            return value

    class Wrapper(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gm = gm

        def forward(self, *args: Any) -> Any:
            return Run(self.gm).run(*args)

    uses = _placeholder_uses(gm)
    args = []
    for node in gm.graph.nodes:
        if node.op != "placeholder":
            continue
        name = str(node.target).lstrip("*")
        base = name[:-2] if name.endswith("_1") and name[:-2] in concrete else name
        if base in shapes:
            dtype = dtypes.get(base) or (torch.long if uses.get(node.name) == "ids" else torch.float32)
            args.append(torch.zeros((BATCH, *shapes[base]), dtype=dtype, device="meta"))
        else:
            args.append(concrete.get(base, node.args[0] if node.args else None))
    wrapper = Wrapper()
    state = {f"gm.{k}": torch.empty_like(v, device="meta") for k, v in
             [*gm.named_parameters(), *gm.named_buffers()]}
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            torch.func.functional_call(wrapper, state, tuple(args))
    except Exception as e:  # noqa: BLE001 - reported as the node that failed
        raise ModelImportError(failed[0] if failed else f"running the model on the meta device failed: "
                                                         f"{type(e).__name__}: {_first_line(e)}") from None
    return values, flops


def _first_line(e: BaseException) -> str:
    text = str(e.args[0]) if e.args else str(e)
    return text.strip().splitlines()[0] if text.strip() else type(e).__name__


def _placeholder_uses(gm: Any) -> dict[str, str]:
    """'ids' for an input an embedding reads (it gets token ids, long), else 'values'."""
    from torch import nn

    out = {}
    for node in gm.graph.nodes:
        if node.op != "placeholder":
            continue
        for user in node.users:
            if user.op == "call_module" and isinstance(gm.get_submodule(user.target), nn.Embedding):
                out[node.name] = "ids"
            elif user.op == "call_function" and getattr(user.target, "__name__", "") == "embedding":
                out[node.name] = "ids"
    return out


def _node_label(gm: Any, node: Any) -> str:
    if node.op == "call_module":
        return f"{node.target} ({class_label(type(gm.get_submodule(node.target)))})"
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    if node.op == "call_function":
        return function_label(node.target)
    return str(node.target)


# -- the IR -------------------------------------------------------------------------------------


class _Builder:
    """Walk the traced graph: one `Op` per call that makes tensors, references for the rest."""

    def __init__(self, model: Any, gm: Any, names: TorchNames, values: dict[Any, Any], flops: dict[Any, int],
                 allow_unknown: bool, constants: bool = False) -> None:
        import torch

        self.constants = constants  # follow ids made from no input (Hugging Face's positions): _Const
        self.absorb: dict[str, int] = {}  # module path → the op whose item also covers that module's call

        self.torch = torch
        self.model, self.gm, self.names = model, gm, names
        self.values, self.flops = values, flops
        self.allow_unknown = allow_unknown
        self.ops: list[Op] = []
        self.refs: dict[Any, Any] = {}  # fx node → Ref, _Static, _Tuple or _Missing
        self.owner: dict[int, int] = {}  # id(tensor) → op that owns it
        self.module_op: dict[int, int] = {}  # id(module) → first op calling it (with parameters)
        self.param_op: dict[int, int] = {}  # id(Parameter) → its `parameter` op
        self.unknown: list[_Unknown] = []
        self.notes: list[str] = []
        self.dropped_flops = 0

    # -- walking -----------------------------------------------------------------------------------
    def build(self, name: str, origin: str, shapes: Mapping[str, Shape]) -> ModelIR:
        outputs: tuple[Ref, ...] = ()
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                self._placeholder(node, shapes)
            elif node.op == "output":
                outputs = self._outputs(node)
            else:
                self._node(node)
        for path, op_id in self.absorb.items():
            self._unknown_note(self.ops[op_id], f"the forward never calls {path}, which {self.ops[op_id].source} "
                                                "is written with (its output projection)")
        if self.unknown and not self.allow_unknown:
            raise _unknown_error(self.unknown, origin or name)
        if not outputs:
            raise ModelImportError(f"the forward of {origin or name} returns no tensor archcalc can follow")
        self._unused_parameters()
        params = sum(p.numel() for p in self.model.parameters())
        buffers = sum(b.numel() for b in self.model.buffers())
        flops = sum(self.flops.values())
        ir = ModelIR(name, origin, self.ops, outputs, params=params, buffers=buffers,
                     flops=_per_sample(flops), notes=self.notes)
        ir.layouts = _input_layouts(ir)
        return ir

    def _placeholder(self, node: Any, shapes: Mapping[str, Shape]) -> None:
        name = str(node.target).lstrip("*")
        value = self.values.get(node)
        if name not in shapes or not isinstance(value, self.torch.Tensor):
            self.refs[node] = _Static(value)
            return
        op = self._add(Op(len(self.ops), "input", Emit(), shapes=(tuple(shapes[name]),), name=name,
                          source="input"))
        self.refs[node] = Ref(op.id)

    def _outputs(self, node: Any) -> tuple[Ref, ...]:
        found: list[Ref] = []

        def visit(value: Any) -> None:
            if isinstance(value, self.torch.fx.Node):
                value = self.refs.get(value)
            if isinstance(value, Ref):
                found.append(value)
            elif isinstance(value, _Tuple):
                for item in value.items:
                    visit(item)
            elif isinstance(value, (tuple, list)):
                for item in value:
                    visit(item)
            elif isinstance(value, dict):
                for item in value.values():
                    visit(item)

        visit(node.args[0])
        return tuple(dict.fromkeys(found))

    def _node(self, node: Any) -> None:
        value = self.values.get(node)
        torch = self.torch
        if node.op == "call_function" and node.target is _getitem() and isinstance(self.refs.get(node.args[0]),
                                                                                  _Tuple):
            items = self.refs[node.args[0]].items
            index = node.args[1]
            self.refs[node] = items[index] if isinstance(index, int) and -len(items) <= index < len(items) else \
                _Tuple(tuple(items[index])) if isinstance(index, slice) else _Missing("an index into a tuple")
            return
        if self.constants and self._constant(node, value):
            return
        if node.op == "get_attr":
            self._get_attr(node, value)
            return
        if not _has_tensor(value, torch):
            self.refs[node] = _Static(value)
            self.dropped_flops += self.flops.get(node, 0)
            return
        self._call(node, value)

    def _get_attr(self, node: Any, value: Any) -> None:
        torch = self.torch
        param_like = isinstance(value, torch.Tensor) and _is_param(self.gm, node.target)
        if isinstance(value, torch.nn.Parameter) or param_like:
            param = _attr(self.gm, node.target)
            known = self.param_op.get(id(param))
            if known is not None:
                self.refs[node] = Ref(known)
                return
            call = TorchCall(PARAMETER, None, (param,), {}, (), (), tuple(value.shape))
            op = self._free(node, call, value, f"parameter {node.target}", param)
            if op is not None:
                self.param_op[id(param)] = op.id
            return
        if isinstance(value, torch.Tensor):
            kind = "buffer" if _is_buffer(self.gm, node.target) else "tensor attribute"
            self._unknown_op(node, f"{kind} {node.target}", f"the forward reads a {kind} itself", (), value,
                             owned=[_attr(self.gm, node.target)])
            return
        self.refs[node] = _Static(value)

    # -- ids made from no input (Hugging Face's position and token type ids) -----------------------
    def _constant(self, node: Any, value: Any) -> bool:
        """Follow ids the forward makes itself and the embeddings read at them; True where the node
        was one of those (its ref is set)."""
        torch = self.torch
        if node.op == "get_attr":
            kind = IDS_BUFFERS.get(str(node.target).rsplit(".", 1)[-1])
            if kind is None or not isinstance(value, torch.Tensor) or _is_param(self.gm, node.target):
                return False
            self.refs[node] = _Const(kind, (_attr(self.gm, node.target),))
            return True
        if node.op == "call_function" and node.target is torch.arange:
            if any(isinstance(a, torch.fx.Node) and not isinstance(self.refs.get(a), _Static)
                   for a in [*node.args, *node.kwargs.values()]):
                return False
            self.refs[node] = _Const("positions")
            return True
        read = [self.refs.get(a) for a in _fx_nodes((node.args, node.kwargs), torch)]
        consts = [r for r in read if isinstance(r, _Const)]
        embedded = [r for r in read if isinstance(r, _ConstEmbedding)]
        if node.op == "call_module" and consts and len(read) == 1:
            module = self.gm.get_submodule(node.target)
            if isinstance(module, torch.nn.Embedding):
                self.refs[node] = _ConstEmbedding(module, str(node.target), consts[0])
                return True
            return False
        if node.op == "call_method" and node.target == "to" and len(embedded) == 1 and all(
                isinstance(r, (_ConstEmbedding, _Static)) for r in read):
            self.refs[node] = embedded[0]
            return True
        if node.op == "call_function" and node.target in (_operator("add"), _operator("iadd")) and embedded:
            return self._added_embedding(node, value, read, embedded[0])
        if consts and node.op != "call_module" and all(isinstance(r, (_Const, _Static)) for r in read):
            if not isinstance(value, torch.Tensor):  # its size or device: a Python value
                self.refs[node] = _Static(value)
                return True
            if self.flops.get(node, 0):  # work on the ids themselves: not followed (listed as what it is)
                return False
            # token types gathered at the positions (BERT's) are token types, of their own buffer
            kind = "types" if any(c.kind == "types" for c in consts) else "positions"
            buffers = {id(b): b for c in consts if c.kind == kind for b in c.buffers}
            self.refs[node] = _Const(kind, tuple(buffers.values()))
            return True
        return False

    def _added_embedding(self, node: Any, value: Any, read: list[Any], embedded: _ConstEmbedding) -> bool:
        """x + an embedding at the ids 0..T−1 (or the zero token types): one position-embedding or
        token-type-embedding item holding the table and the ids buffer."""
        inputs = [r for r in read if isinstance(r, Ref)]
        if len(read) != 2 or len(inputs) != 1 or not self._batched(inputs[0]):
            return False
        label = class_label(type(embedded.module))
        try:
            text = added_embedding(embedded.ids.kind, embedded.module, embedded.ids.buffers)
        except Unsupported as e:
            self._unknown_op(node, label, str(e), inputs, value, module=embedded.module)
            return True
        op = Op(len(self.ops), type_of(text, "position-embedding"), Emit(text), (inputs[0],),
                (_per(value, True),), True, _frames(node), embedded.path, label, node_where(node),
                flops=_per_sample(self.flops.get(node, 0)))
        if not self._own(op, embedded.module):
            return True
        for b in embedded.ids.buffers:
            op.buffers += self._claim(b, op.id)
        self._add(op)
        self.refs[node] = Ref(op.id)
        return True

    def _absorbed(self, node: Any, value: Any) -> bool:
        """The module call an earlier op's item covers (BERT's attention.output.dense, the output
        projection of `attention`): its parameters, FLOPs and output go to that op."""
        op = self.ops[self.absorb[str(node.target)]]
        read = [self.refs.get(a) for a in _fx_nodes((node.args, node.kwargs), self.torch)]
        if read != [Ref(op.id)] or not isinstance(value, self.torch.Tensor):
            return False
        del self.absorb[str(node.target)]
        module = self.gm.get_submodule(node.target)
        for p in module.parameters():
            if id(p) in self.owner:
                return False
            self.owner[id(p)] = op.id
            op.params += p.numel()
        op.flops += _per_sample(self.flops.get(node, 0))
        op.shapes = (_per(value, op.batched),)
        self.refs[node] = Ref(op.id)
        return True

    # -- one call ----------------------------------------------------------------------------------
    def _call(self, node: Any, value: Any) -> None:
        module = self.gm.get_submodule(node.target) if node.op == "call_module" else None
        if module is not None and str(node.target) in self.absorb and self._absorbed(node, value):
            return
        declared, label = self._declared(node, module)
        inputs: list[Ref] = []
        missing: list[str] = []
        args = _convert(node.args, self.refs, inputs, missing, self.torch)
        # the position ids Hugging Face hands its attention modules: read only by a rotary embedding (listed)
        kwargs = _convert({k: v for k, v in node.kwargs.items() if not (
            k == "position_ids" and isinstance(self.refs.get(v), _Const))}, self.refs, inputs, missing, self.torch)
        if missing:
            self._unknown_op(node, label, missing[0], inputs, value, module=module)
            return
        batched = any(self._batched(r) for r in inputs)
        in_shapes = tuple(self._shape(r) for r in inputs)
        out_shape = _out_shapes(value, batched, self.torch)
        call = TorchCall(declared[0] if declared else label, module, args, kwargs, in_shapes,
                         tuple(self._batched(r) for r in inputs), out_shape,
                         tuple(inputs.index(r) for r in inputs))
        reason = "archcalc has no layer type for it"
        for layer in declared[1] if declared else []:
            try:
                emit = layer.from_torch(call)
            except Unsupported as e:
                reason = str(e)
                break
            except (AttributeError, TypeError, ValueError, KeyError, IndexError) as e:
                reason = f"archcalc could not read it ({type(e).__name__}: {e})"
                break
            if emit is not None and not emit.alias and batched and not _keeps_batch(
                    value if emit.element is None else value[emit.element], self.torch):
                reason = "it moves or merges the batch axis (archcalc keeps the batch first, alone)"
                break
            if emit is not None:
                self._place(node, layer.name, emit, call, inputs, value, module, label)
                return
            reason = f"{label} in this form (a number operand, or arguments {layer.name} does not take)"
        self._unknown_op(node, label, reason, inputs, value, module=module)

    def _declared(self, node: Any, module: Any) -> tuple[tuple[str, list[Any]] | None, str]:
        if node.op == "call_module":
            found = self.names.module(type(module))
            return found, class_label(type(module))
        if node.op == "call_method":
            return self.names.method(node.target), f"Tensor.{node.target}"
        return self.names.function(node.target), function_label(node.target)

    def _place(self, node: Any, layer: str, emit: Emit, call: TorchCall, inputs: list[Ref], value: Any,
               module: Any, label: str) -> None:
        if emit.alias:
            self.refs[node] = inputs[0]
            self.dropped_flops += self.flops.get(node, 0)
            return
        chosen = tuple(inputs[i] for i in emit.inputs) if emit.inputs is not None else tuple(inputs)
        tensors = value if emit.element is None else value[emit.element]
        parts = tensors if emit.parts > 1 else (tensors,)
        batched = any(self._batched(r) for r in chosen)
        shapes = tuple(_per(t, batched) for t in parts)
        flops = self.flops.get(node, 0)
        op = Op(len(self.ops), type_of(emit.text, layer), emit, chosen, shapes, batched, _frames(node),
                str(node.target) if module is not None else "", label, node_where(node),
                flops=_per_sample(flops) if batched else flops)
        if module is not None and not self._own(op, module):
            return
        if emit.absorbs and module is not None:
            self.absorb[".".join([*str(node.target).split(".")[:-1], emit.absorbs])] = op.id
        self._add(op)
        if emit.parts > 1:
            self.refs[node] = _Tuple(tuple(Ref(op.id, i) for i in range(emit.parts)))
        elif emit.element is not None:
            items: list[Any] = [_Missing(f"what {label} returns besides its output (element {i})")
                                for i in range(len(value))]
            items[emit.element] = Ref(op.id)
            self.refs[node] = _Tuple(tuple(items))
        else:
            self.refs[node] = Ref(op.id)

    def _own(self, op: Op, module: Any) -> bool:
        """The module's parameters and buffers go to this op unless an earlier op holds them: the
        same module called again shares them; another module holding one of them is a tie."""
        params = list(module.parameters())
        first = self.module_op.get(id(module))
        if first is not None and params:
            op.shares = first
            return True
        if params:
            self.module_op[id(module)] = op.id
        for name, p in module.named_parameters():
            owner = self.owner.get(id(p))
            if owner is None:
                self.owner[id(p)] = op.id
                op.params += p.numel()
            elif name == "weight" and op.tie is None:
                op.tie = owner
            else:
                self._unknown_note(op, f"its parameter '{name}' is another layer's ({self.ops[owner].path})")
                return False
        for b in module.buffers():
            op.buffers += self._claim(b, op.id)
        return True

    def _claim(self, tensor: Any, op_id: int) -> int:
        """`tensor`'s elements if `op_id` is the first op to hold it, else 0: a tensor several modules
        hold (shared or tied) is counted once, at its first holder, as `model.parameters()` does."""
        if id(tensor) in self.owner:
            return 0
        self.owner[id(tensor)] = op_id
        return int(tensor.numel())

    def _unknown_note(self, op: Op, reason: str) -> None:
        self.unknown.append(_Unknown(op.source, op.where, op.path, reason))

    def _free(self, node: Any, call: TorchCall, value: Any, source: str, param: Any) -> Op | None:
        """A Parameter the forward reads itself: a free tensor (`parameter(1x1x768)`)."""
        for layer in self.names.pseudo.get(PARAMETER, ("", []))[1]:
            emit = layer.from_torch(call)
            if emit is not None:
                op = Op(len(self.ops), layer.name, emit, (), (tuple(value.shape),), False, _frames(node),
                        str(node.target), source, node_where(node))
                op.params += self._claim(param, op.id)
                self._add(op)
                self.refs[node] = Ref(op.id)
                return op
        self._unknown_op(node, source, "no layer type writes a free parameter", (), value, owned=[param])
        return None

    def _unknown_op(self, node: Any, label: str, reason: str, inputs: Any, value: Any, module: Any = None,
                    owned: list[Any] | None = None) -> None:
        """What archcalc has no rule for: listed, or kept as an opaque node (one per tensor it returns)."""
        where = node_where(node)
        path = str(node.target) if module is not None or node.op == "get_attr" else _innermost(node)
        self.unknown.append(_Unknown(label, where, path, reason))
        inputs = tuple(r for r in inputs if isinstance(r, Ref))
        tensors = _tensors(value, self.torch)
        # an output that lost the batch axis is held whole, as a free tensor
        batched = any(self._batched(r) for r in inputs) and _keeps_batch(value, self.torch)
        if not tensors:
            self.refs[node] = _Missing(f"the output of {label}, which archcalc has no rule for")
            return
        refs = []
        for i, t in enumerate(tensors):
            weights = biases = buffers = 0
            if i == 0:
                holders = [module] if module is not None else []
                for m in holders:
                    for pname, p in m.named_parameters():
                        if pname.rsplit(".", 1)[-1].startswith("bias"):
                            biases += self._claim(p, len(self.ops))
                        else:
                            weights += self._claim(p, len(self.ops))
                    for b in m.buffers():
                        buffers += self._claim(b, len(self.ops))
                for t_owned in owned or []:
                    if isinstance(t_owned, self.torch.nn.Parameter):
                        weights += self._claim(t_owned, len(self.ops))
                    else:
                        buffers += self._claim(t_owned, len(self.ops))
            shape = _per(t, batched)
            measured = self.flops.get(node, 0)
            flops = (_per_sample(measured) if batched else measured) if i == 0 else 0
            text = unknown_text(label, shape, weights, biases, buffers, flops, free=not inputs)
            op = Op(len(self.ops), "unknown" if inputs else "unknown-tensor", Emit(text), inputs, (shape,), batched,
                    _frames(node),
                    str(node.target) if module is not None else "", label, where, weights + biases, buffers,
                    flops, unknown=True)
            self._add(op)
            refs.append(Ref(op.id))
        self.refs[node] = refs[0] if not isinstance(value, (tuple, list)) else _Tuple(tuple(refs))

    def _unused_parameters(self) -> None:
        """Parameters of modules the forward never calls (GoogLeNet's auxiliary heads in eval mode)
        still count in sum(p.numel()): kept as free parameters, said so in a note."""
        unused: list[tuple[str, Any]] = [(n, p) for n, p in self.model.named_parameters() if id(p) not in self.owner]
        buffers = [(n, b) for n, b in self.model.named_buffers() if id(b) not in self.owner]
        for name, p in unused:
            emit = Emit(f"parameter({'x'.join(map(str, p.shape)) or '1'})" + ("" if p.requires_grad else "/frozen"))
            self._add(Op(len(self.ops), "parameter", emit, (), (tuple(p.shape),), False, (), "", f"parameter {name}",
                         "", p.numel(), name=f"unused {name}"))
            self.owner[id(p)] = len(self.ops) - 1
        if unused:
            modules = sorted({n.rsplit(".", 1)[0] for n, _ in unused})
            self.notes.append(f"{sum(p.numel() for _, p in unused):,} parameters of modules the forward never "
                              f"calls ({_listed(modules)}) are kept as free parameters, so the count equals "
                              f"sum(p.numel())")
        if buffers:
            self.notes.append(f"{sum(b.numel() for _, b in buffers):,} buffer elements the forward never reads "
                              f"({_listed(sorted(n for n, _ in buffers))}) are not in the spec")

    # -- helpers -------------------------------------------------------------------------------
    def _add(self, op: Op) -> Op:
        self.ops.append(op)
        return op

    def _batched(self, ref: Ref) -> bool:
        return self.ops[ref.op].batched

    def _shape(self, ref: Ref) -> Shape:
        return self.ops[ref.op].shapes[ref.part]


# -- module-level helpers ---------------------------------------------------------------------------


def type_of(text: str, default: str) -> str:
    """The layer type a spec item names (a layer type may write another's item: a view to one axis is
    a `flatten`)."""
    from archcalc.layers import find

    found = find(re.split(r"[/(\s]", text, maxsplit=1)[0])
    return found[0].name if found else default


def _getitem() -> Any:
    import operator

    return operator.getitem


def _operator(name: str) -> Any:
    import operator

    return getattr(operator, name)


def _fx_nodes(value: Any, torch: Any) -> list[Any]:
    """The fx nodes among a call's arguments, in order."""
    if isinstance(value, torch.fx.Node):
        return [value]
    if isinstance(value, (tuple, list)):
        return [n for v in value for n in _fx_nodes(v, torch)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _fx_nodes(v, torch)]
    if isinstance(value, slice):
        return _fx_nodes((value.start, value.stop, value.step), torch)
    return []


def _has_tensor(value: Any, torch: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (tuple, list)):
        return any(_has_tensor(v, torch) for v in value)
    return False


def _tensors(value: Any, torch: Any) -> list[Any]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v, torch)]
    return []


def _keeps_batch(value: Any, torch: Any) -> bool:
    return all(t.dim() >= 1 and t.shape[0] == BATCH for t in _tensors(value, torch))


def _per(t: Any, batched: bool) -> Shape:
    return tuple(t.shape[1:]) if batched else tuple(t.shape)


def _out_shapes(value: Any, batched: bool, torch: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return _per(value, batched)
    if isinstance(value, (tuple, list)):
        return tuple(_out_shapes(v, batched, torch) for v in value)
    return ()


def _per_sample(flops: int) -> int:
    return flops // BATCH if flops % BATCH == 0 else flops / BATCH  # type: ignore[return-value]


def _convert(value: Any, refs: dict[Any, Any], inputs: list[Ref], missing: list[str], torch: Any) -> Any:
    """fx arguments → TorchCall arguments: tensors become TensorArgs (their refs collected in order)."""
    if isinstance(value, torch.fx.Node):
        found = refs.get(value)
        if isinstance(found, Ref):
            inputs.append(found)
            return TensorArg(len(inputs) - 1)
        if isinstance(found, _Tuple):
            return tuple(_convert_item(item, inputs, missing) for item in found.items)
        if isinstance(found, _Missing):
            missing.append(f"it reads {found.reason}")
            return None
        if isinstance(found, (_Const, _ConstEmbedding)):
            missing.append("it reads ids the forward makes itself (position or token type ids), which archcalc "
                           "follows only into an embedding added to the tokens")
            return None
        return found.value if isinstance(found, _Static) else found
    if isinstance(value, tuple):
        return tuple(_convert(v, refs, inputs, missing, torch) for v in value)
    if isinstance(value, list):
        return [_convert(v, refs, inputs, missing, torch) for v in value]
    if isinstance(value, dict):
        return {k: _convert(v, refs, inputs, missing, torch) for k, v in value.items()}
    if isinstance(value, slice):
        return slice(*(_convert(v, refs, inputs, missing, torch) for v in (value.start, value.stop, value.step)))
    return value


def _convert_item(item: Any, inputs: list[Ref], missing: list[str]) -> Any:
    if isinstance(item, Ref):
        inputs.append(item)
        return TensorArg(len(inputs) - 1)
    if isinstance(item, _Missing):
        missing.append(f"it reads {item.reason}")
    return None


def _frames(node: Any) -> tuple[Frame, ...]:
    """The module calls around a node, outermost first; a leaf module's own call left out."""
    stack = node.meta.get("nn_module_stack") or {}
    frames = []
    for key, entry in stack.items():
        path, cls = entry if isinstance(entry, tuple) else (entry, type(None))
        if not path:
            continue
        label = cls if isinstance(cls, str) else f"{cls.__module__}.{cls.__qualname__}"
        frames.append(Frame(str(key), str(path), label))
    if node.op == "call_module" and frames and frames[-1].path == node.target:
        frames.pop()
    return tuple(frames)


def _innermost(node: Any) -> str:
    frames = _frames(node)
    return frames[-1].path if frames else ""


def _attr(gm: Any, target: str) -> Any:
    obj = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _is_param(gm: Any, target: str) -> bool:
    return any(name == target for name, _ in gm.named_parameters())


def _is_buffer(gm: Any, target: str) -> bool:
    return any(name == target for name, _ in gm.named_buffers())


def _listed(names: list[str], most: int = 6) -> str:
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def unknown_text(label: str, shape: Shape, weights: int, biases: int, buffers: int, flops: Any,
                 free: bool = False) -> str:
    """`unknown(op=torch.nn.LayerNorm, shape=197x768, weights=768, biases=768)`; `unknown-tensor(…)`
    for a tensor read with no input."""
    op = label if re.fullmatch(r"[\w.\-]+", label) else '"' + label.replace('"', "'") + '"'
    parts = [f"op={op}", f"shape={'x'.join(map(str, shape)) or '1'}"]
    parts += [f"{k}={v}" for k, v in (("weights", weights), ("biases", biases), ("buffers", buffers)) if v]
    if flops:
        parts.append(f"flops={int(flops)}")
    return f"{'unknown-tensor' if free else 'unknown'}({', '.join(parts)})"


def _input_layouts(ir: ModelIR) -> dict[int, str]:
    """How each input's axes read: channels first where a convolution or pool reads it, a sequence
    for T×F read by a recurrent layer or an FC, else plain (nn.Linear maps the last axis)."""
    readers: dict[int, list[str]] = {}
    for op in ir.ops:
        for r in op.inputs:
            readers.setdefault(r.op, []).append(op.type)
    out = {}
    channels = {"conv", "maxpool", "avgpool", "adaptive-avgpool", "adaptive-maxpool", "bn", "lrn"}
    for op in ir.ops:
        if op.type != "input" or len(op.shape) < 2:
            continue
        kinds = set(readers.get(op.id, []))
        if kinds & channels:
            continue
        out[op.id] = "sequence" if len(op.shape) == 2 else "plain"
    return out


def _unknown_error(unknown: list[_Unknown], label: str) -> UnknownOpsError:
    """Each operation archcalc has no rule for, with its count, where it is and how to go on."""
    grouped: dict[tuple[str, str], list[_Unknown]] = {}
    for u in unknown:
        grouped.setdefault((u.name, u.reason), []).append(u)
    lines = [f"{label} uses {len(unknown)} operation{'s' if len(unknown) != 1 else ''} archcalc has no rule for; "
             f"nothing was counted:"]
    listed = []
    for (op_name, reason), found in grouped.items():
        places = [f"{u.path or '(forward)'}" + (f" at {u.where}" if u.where else "") for u in found]
        shown = "; ".join(dict.fromkeys(places[:4])) + (f"; … {len(places) - 4} more" if len(places) > 4 else "")
        lines.append(f"  {op_name} ×{len(found)}: {reason}")
        lines.append(f"      {shown}")
        listed.append((op_name, len(found), found[0].where or found[0].path))
    lines.append("to go on: `archcalc import TARGET --allow-unknown -o model.arch` keeps each as an opaque node "
                 "with its measured shape and parameters (its MACs are not counted, and every report says so), "
                 "then every command reads model.arch; or give archcalc a layer type that declares it "
                 "(torch_modules / torch_functions and from_torch: docs/import.md)")
    return UnknownOpsError("\n".join(lines), tuple(listed))

