"""LayerGraph → the source of a standalone Python file defining the spec as an nn.Module.

The file imports only torch: archcalc's own small modules (`pytorch/modules.py`) are
copied in, and every node's module is written as the constructor call that makes it
again (`constructor`, checked by running it). The names and the forward follow
`build`, so a state dict moves between the exported class and the fx model.
"""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from archcalc.errors import BuildError
from archcalc.graph import LayerGraph, Node
from archcalc.pytorch.build import (
    build_modules,
    class_name,
    index_sources,
    input_name,
    module_names,
    output_order,
    owned_parameters,
)
from archcalc.tensor import prod

if TYPE_CHECKING:
    from torch import nn


def export_source(graph: LayerGraph) -> str:
    """Python source of a standalone nn.Module class for the spec; it imports only torch."""
    from archcalc.pytorch.meta import META_PARAMS, structure_only
    from archcalc.version import __version__

    names = module_names(graph)
    weights = sum(prod(shape) for n in graph for shape in n.layer.param_shapes(n.args, n.in_shapes, n.shape).values())
    with structure_only(weights > META_PARAMS):  # only the modules' structure is read: no weight is initialised
        modules = build_modules(graph)
    cls = class_name(graph)
    helpers = _helpers_used(modules.values())
    owned = owned_parameters(graph, modules, names)
    if owned:  # the state_dict keeps free tensors as their containers' Parameters, as torchvision does
        import inspect

        from archcalc.pytorch.modules import own_parameters

        helpers.append(inspect.getsource(own_parameters))
    lines = [
        f'"""{graph.name} as a PyTorch module, written by archcalc {__version__} from '
        f'{graph.source.filename if graph.source else "a spec"}.',
        "",
        f"    model = {cls}().eval()",
        f"    y = model({_probe_args(graph, lambda n: ', '.join(map(str, (1, *n.shape))))})",
        '"""',
        "",
        "import torch",
        "from torch import nn",
        "",
        *(line for source in helpers for line in ["", source.rstrip(), ""]),
        "",
        f"class {cls}(nn.Module):",
        *_shape_lines(graph),
        "",
        "    def __init__(self) -> None:",
        "        super().__init__()",
        *_init_lines(graph, modules, names),
        *_owned_lines(owned, _sequential([names[i] for i in modules])),
        "",
        *_forward_lines(graph, names),
        "",
        "",
        'if __name__ == "__main__":',
        f"    model = {cls}().eval()",
        f"    out = model({_probe_args(graph, lambda n: _shape_ref(graph, cls, n))})",
        "    shapes = [tuple(o.shape) for o in (out if isinstance(out, tuple) else (out,))]",
        '    print(f"params {sum(p.numel() for p in model.parameters()):,}, output {shapes}")',
        "",
    ]
    return "\n".join(lines)


def _helpers_used(modules: Any) -> list[str]:
    import inspect

    from archcalc.pytorch import modules as torch_modules
    from archcalc.pytorch import transformer

    # with their archcalc base classes, in the order torch_modules defines them
    mro = [c for m in modules for sub in m.modules() for c in type(sub).__mro__]  # nested ones too (SAME's Pad)
    used = {c for c in mro if c.__module__ == torch_modules.__name__}
    helpers = [inspect.getsource(c) for c in sorted(used, key=lambda c: inspect.getsourcelines(c)[1])]
    if any(c.__module__ == transformer.__name__ for c in mro):  # its classes share functions: all of it
        helpers.append(_module_body(inspect.getsource(transformer)))
    return helpers


def _module_body(source: str) -> str:
    """A module's code without its docstring and `from __future__` line: its other imports stay."""
    import ast

    tree = ast.parse(source)
    first = next(node for node in tree.body if not (isinstance(node, ast.Expr) and isinstance(
        node.value, ast.Constant)) and not (isinstance(node, ast.ImportFrom) and node.module == "__future__"))
    return "\n".join(source.splitlines()[first.lineno - 1:])


def _init_lines(graph: LayerGraph, modules: dict[int, nn.Module], names: dict[int, str]) -> list[str]:
    """`self.features = nn.Sequential()`, then each module where its path says.

    A container whose children are numbered 0, 1, … is an `nn.Sequential` (as in torchvision:
    `self.features[0]`); any other is an `nn.Module` with its children as attributes.
    """
    paths = [names[i] for i in modules]
    seq = _sequential(paths)
    lines: list[str] = []
    made: set[str] = set()
    for node_id, module in modules.items():
        parts = names[node_id].split(".")
        for i in range(1, len(parts)):
            box = ".".join(parts[:i])
            if box not in made:
                made.add(box)
                lines.append(f"        {_attach(box, 'nn.Sequential()' if box in seq else 'nn.Module()', seq)}")
        lines += _module_lines(graph, node_id, module, names, seq)
    return lines


def _owned_lines(owned: dict[str, list[tuple[str, str]]], seq: set[str]) -> list[str]:
    """`own_parameters(self.encoder, [('pos_embedding', 'pos_embedding')])`: state_dict keys as torchvision's."""
    return [f"        own_parameters({_access(container, seq)}, {pairs!r})" for container, pairs in owned.items()]


def _module_lines(graph: LayerGraph, node_id: int, module: nn.Module, names: dict[int, str],
                  seq: set[str]) -> list[str]:
    """`self.path = Constructor(...)`, and for a tied layer the line that makes its weight the owner's."""
    path, tie = names[node_id], graph.node(node_id).tie
    if tie is None:
        return [f"        {_attach(path, constructor(module), seq)}"]
    owner = _access(names[tie.owner], seq)
    if tie.transposed:  # x·Wᵀ with the owner's weight transposed: the owner keeps the one Parameter
        bias = getattr(module, "bias", None)
        args = owner + (f", torch.zeros({bias.numel()})" if bias is not None else "")
        return [f"        {_attach(path, f'TransposedTie({args})', seq)}  # weight: {owner}.weight, transposed"]
    return [f"        {_attach(path, constructor(module), seq)}",
            f"        {_access(path, seq)}.weight = {owner}.weight  # tied: one Parameter"]


def _sequential(paths: list[str]) -> set[str]:
    """The containers whose children are exactly 0, 1, …, n−1 in order."""
    children: dict[str, list[str]] = {}
    for path in paths:
        parts = path.split(".")
        for i in range(1, len(parts)):
            kids = children.setdefault(".".join(parts[:i]), [])
            if parts[i] not in kids:
                kids.append(parts[i])
    return {box for box, kids in children.items() if kids == [str(i) for i in range(len(kids))]}


def _access(path: str, seq: set[str]) -> str:
    """Python that reaches a module: `self.layer1[0].conv1`, `getattr(self, "0")` at the top."""
    expr, here = "self", ""
    for part in path.split(".") if path else ():
        if here in seq:
            expr += f"[{part}]"
        elif part.isidentifier() and not keyword.iskeyword(part):
            expr += f".{part}"
        else:
            expr = f"getattr({expr}, {part!r})"
        here = f"{here}.{part}" if here else part
    return expr


def _attach(path: str, code: str, seq: set[str]) -> str:
    parent, _, part = path.rpartition(".")
    if parent in seq:
        return f"{_access(parent, seq)}.append({code})"
    if part.isidentifier() and not keyword.iskeyword(part):
        return f"{_access(parent, seq)}.{part} = {code}"
    return f"{_access(parent, seq)}.add_module({part!r}, {code})"


def _variable(path: str, taken: set[str]) -> str:
    """A local name for a module's output: `features_0`, `x_0` for a top-level `0`."""
    name = re.sub(r"\W", "_", path)
    name = f"x_{name}" if name[0].isdigit() or keyword.iskeyword(name) else name
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def _forward_lines(graph: LayerGraph, names: dict[int, str]) -> list[str]:
    """`x = self.features[0](x)` per node, as one writes it by hand.

    A chain reuses its variable (the input's tensor dies at its only consumer, as in
    `out = self.bn1(out)`); a tensor read by several nodes gets its own name and is
    deleted after its last use, so the export holds no more memory than the fx model.
    """
    kept = {n.id for n in output_order(graph)}
    last_use = graph.last_use()
    sources = index_sources(graph)  # max pools an unpool reads: they return (values, indices)
    seq = _sequential([names[n.id] for n in graph if n.type != "input" and n.shares is None])
    var: dict[int, str] = {n.id: input_name(graph, n) for n in graph.input_nodes()}
    taken = {"x", "self", "torch", "nn", *var.values()}
    arguments = ", ".join(f"{var[n.id]}: torch.Tensor" for n in graph.input_nodes())
    lines = [f"    def forward(self, {arguments}):"]
    for n in graph:
        if n.type == "input":
            continue
        only = n.inputs[0] if len(n.inputs) == 1 else None
        chained = only is not None and graph.consumers(only) == [n.id] and only not in kept and n.id not in sources
        # a second call of a shared module gets a name of its own
        own = names[n.id] + ("" if n.shares is None else f"_{n.id}")
        var[n.id] = var[only] if chained and only is not None else _variable(own, taken)
        args = ", ".join(f"{var[i]}_indices" if k == n.layer.index_input else var[i] for k, i in enumerate(n.inputs))
        target = f"{var[n.id]}, {var[n.id]}_indices" if n.id in sources else var[n.id]
        lines.append(f"        {target} = {_access(names[n.id], seq)}({args})  # {n.text}")
        ended = [i for i in n.inputs if last_use[i] == n.id and i not in kept]
        dead = sorted({var[i] for i in ended} - {var[n.id]} | {f"{var[i]}_indices" for i in ended if i in sources})
        if dead:
            lines.append(f"        del {', '.join(dead)}")
    outs = [var[n.id] for n in output_order(graph)]
    lines.append(f"        return {outs[0] if len(outs) == 1 else '(' + ', '.join(outs) + ')'}")
    return lines


def constructor(module: nn.Module) -> str:
    """Code that constructs the same module: its class and the constructor arguments it keeps.

    Built from the constructor's signature and the attributes the module stores under the
    same names (torch.nn keeps them all); checked by constructing it again.
    """
    import inspect

    from torch import nn

    if type(module) is nn.Sequential:  # a window behind the F.pad of TensorFlow's SAME (padded_evenly)
        return f"nn.Sequential({', '.join(constructor(m) for m in module)})"
    cls = type(module)
    prefix = "nn." if cls.__module__.startswith("torch.nn") else ""
    args = []
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in ("device", "dtype"):
            continue
        value = _constructor_value(module, p.name)
        if value is _MISSING:
            continue
        if p.default is p.empty or value != p.default:
            args.append(f"{p.name}={_literal(value)}")
    code = f"{prefix}{cls.__name__}({', '.join(args)})"
    _check_constructor(code, module)
    return code


_MISSING = object()


def _literal(value: Any) -> str:
    """Python source for a constructor argument; an infinite float (a max pool's SAME padding
    fills with −∞) as float('-inf'), which its repr is not."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    return repr(value)


def _constructor_value(module: nn.Module, name: str) -> Any:
    if name == "bias" and hasattr(module, "bias"):  # stored as a Parameter or None
        return module.bias is not None
    return getattr(module, name, _MISSING)


def _check_constructor(code: str, module: nn.Module) -> None:
    """Construct `code` again; it must give a module with the same repr and parameter shapes."""
    from torch import nn

    from archcalc.pytorch import modules as torch_modules
    from archcalc.pytorch import transformer
    from archcalc.pytorch.meta import structure_only

    namespace: dict[str, Any] = {"nn": nn, **vars(torch_modules), **vars(transformer)}
    weight = next(iter(module.state_dict().values()), None)
    try:
        with structure_only(weight is not None and weight.is_meta):  # on the device the module was built on
            again = eval(code, namespace)  # noqa: S307 - code we just generated from a module
    except Exception as e:  # a module whose constructor arguments it does not keep
        raise BuildError(f"cannot write constructor code for {module!r} (got {code}: {e})") from None
    if repr(again) != repr(module) or _state_shapes(again) != _state_shapes(module):
        raise BuildError(f"cannot write constructor code for {module!r} (got {code})")


def _state_shapes(module: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in module.state_dict().items()]


def _shape_lines(graph: LayerGraph) -> list[str]:
    """`input_shape = (3, 224, 224)`, or `input_shapes = {...}` for several inputs."""
    nodes = graph.input_nodes()
    if len(nodes) == 1:
        return [f"    input_shape = {tuple(nodes[0].shape)!r}"]
    return [f"    input_shapes = {{{', '.join(f'{input_name(graph, n)!r}: {tuple(n.shape)!r}' for n in nodes)}}}"]


def _shape_ref(graph: LayerGraph, cls: str, node: Node) -> str:
    if len(graph.input_nodes()) == 1:
        return f"1, *{cls}.input_shape"
    return f"1, *{cls}.input_shapes[{input_name(graph, node)!r}]"


def _probe_args(graph: LayerGraph, sizes: Callable[[Node], str]) -> str:
    """`build.probe_input` as the exported file writes it, one argument per input; `sizes` gives the
    source text of an input's sizes ("1, 3, 32, 32")."""
    args = []
    for n in graph.input_nodes():
        vocab = graph.token_vocab(n.id)
        args.append(f"torch.randint(0, {vocab}, ({sizes(n)}))" if vocab is not None else f"torch.randn({sizes(n)})")
    return ", ".join(args)

