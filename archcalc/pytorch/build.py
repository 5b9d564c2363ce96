"""LayerGraph → a runnable torch module: one `call_module` per node in a `torch.fx` graph.

Each node's module comes from its layer type's `torch_module` (the registry), so the
built model is the spec itself, not a re-interpretation of it. Module names are
readable and follow the spec's blocks: `conv_3`, `bottleneck_2.conv_5`. torch is
imported here and only here (and in `verify`), never by the static path.
"""

from __future__ import annotations

import re
import warnings
from typing import TYPE_CHECKING, Any

from archcalc.errors import BuildError, TorchMissingError
from archcalc.graph import LayerGraph, Node

if TYPE_CHECKING:
    from torch import fx, nn

INSTALL_HINT = "pip install 'archcalc[torch]'"


def require_torch() -> Any:
    """The torch module, or a clean error that says how to install it."""
    # a CPU wheel without NumPy warns on import; nothing archcalc does needs NumPy
    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
    try:
        import torch
    except ImportError:
        raise TorchMissingError(f"this needs PyTorch, which is not installed: {INSTALL_HINT}") from None
    return torch


# -- names ------------------------------------------------------------------------------


def _ident(text: str) -> str:
    """A Python identifier from a layer type or block name: 'adaptive-avgpool' → 'adaptive_avgpool'."""
    word = re.sub(r"\W", "_", text)
    return word if word and not word[0].isdigit() else f"_{word}"


def module_names(graph: LayerGraph) -> dict[int, str]:
    """Node id → the dotted module path it gets: block scopes, then `{type}_{id}`.

    Every node but the input gets one. A block instance `bottleneck#2` becomes the
    container `bottleneck_2`; ids make the leaf names unique.
    """
    names: dict[int, str] = {}
    leaves: set[str] = set()
    for n in graph:
        if n.type == "input":
            continue
        leaf = f"{_ident(n.type)}_{n.id}"
        scope = [_ident(part.replace("#", "_")) for part in n.scope]
        # a container that would shadow a leaf of the same path gets a trailing '_'
        for i in range(len(scope)):
            while ".".join(scope[: i + 1]) in leaves:
                scope[i] += "_"
        path = ".".join([*scope, leaf])
        names[n.id] = path
        leaves.add(path)
    return names


def class_name(graph: LayerGraph) -> str:
    """'vgg16' → 'Vgg16', 'resnet50-v1.5' → 'Resnet50V15': the built module's class."""
    parts = [p for p in re.split(r"\W|_", graph.name) if p]
    name = "".join(p[:1].upper() + p[1:] for p in parts) or "Net"
    return name if not name[0].isdigit() else f"Net{name}"


def where(graph: LayerGraph, node: Node) -> str:
    filename = graph.source.filename if graph.source else "<spec>"
    return f"{filename}:{node.loc.line}" if node.loc else filename


# -- modules ------------------------------------------------------------------------------


def node_module(graph: LayerGraph, node: Node) -> nn.Module:
    """The torch module of one node, from its layer type; errors name the type and spec line."""
    try:
        return node.layer.torch_module(node.args, node.in_shapes, node.shape)
    except BuildError as e:
        raise BuildError(f"{where(graph, node)}: cannot build '{node.text}': {e}") from None
    except (ValueError, TypeError, RuntimeError) as e:
        raise BuildError(
            f"{where(graph, node)}: torch rejects '{node.text}' (layer type '{node.type}'): {e}"
        ) from e


def build_modules(graph: LayerGraph) -> dict[int, nn.Module]:
    """Node id → its module, for every node but the input."""
    require_torch()
    return {n.id: node_module(graph, n) for n in graph if n.type != "input"}


def _root(modules: dict[int, nn.Module], names: dict[int, str]) -> nn.Module:
    """An nn.Module holding every node's module at its dotted path (containers for blocks)."""
    from torch import nn

    root = nn.Module()
    for node_id, module in modules.items():
        *scope, leaf = names[node_id].split(".")
        parent = root
        for part in scope:
            if not hasattr(parent, part):
                parent.add_module(part, nn.Module())
            parent = getattr(parent, part)
        parent.add_module(leaf, module)
    return root


def output_order(graph: LayerGraph) -> list[Node]:
    """The graph's outputs: the main output (the last node) first, then side heads in order."""
    main = graph.output
    return [main, *(n for n in graph.outputs() if n.id != main.id)]


def fx_graph(graph: LayerGraph, names: dict[int, str]) -> fx.Graph:
    """One placeholder for the input, one call_module per node, the output(s) last."""
    from torch import fx

    g = fx.Graph()
    values: dict[int, fx.Node] = {}
    for n in graph:
        if n.type == "input":
            values[n.id] = g.placeholder("x")
        else:
            values[n.id] = g.call_module(names[n.id], tuple(values[i] for i in n.inputs))
    outs = [values[n.id] for n in output_order(graph)]
    g.output(outs[0] if len(outs) == 1 else tuple(outs))
    g.lint()
    return g


def build(graph: LayerGraph) -> fx.GraphModule:
    """The spec as a torch.fx GraphModule; `print(model.code)` shows its forward."""
    require_torch()
    from torch import fx

    names = module_names(graph)
    modules = build_modules(graph)
    return fx.GraphModule(_root(modules, names), fx_graph(graph, names), class_name=class_name(graph))


def probe_input(graph: LayerGraph, batch: int = 1, device: str = "cpu", dtype: Any = None) -> Any:
    """A random input batch for the model: token ids below the vocabulary (long) where the
    input feeds embeddings, else standard normal values of `dtype`."""
    torch = require_torch()
    shape = (batch, *graph.input.shape)
    vocab = graph.token_vocab()
    if vocab is not None:
        return torch.randint(0, vocab, shape, device=device)
    return torch.randn(shape, device=device, dtype=dtype or torch.float32)


def _probe_source(graph: LayerGraph, sizes: str) -> str:
    """`probe_input` as the exported file writes it; `sizes` is source text: "1, 3, 32, 32"."""
    vocab = graph.token_vocab()
    return f"torch.randint(0, {vocab}, ({sizes}))" if vocab is not None else f"torch.randn({sizes})"


# -- export: a standalone Python file -----------------------------------------------------------


def export_source(graph: LayerGraph) -> str:
    """Python source of a standalone nn.Module class for the spec; it imports only torch."""
    from archcalc import __version__

    names = module_names(graph)
    modules = build_modules(graph)
    cls = class_name(graph)
    helpers = _helpers_used(modules.values())
    lines = [
        f'"""{graph.name} as a PyTorch module, written by archcalc {__version__} from '
        f'{graph.source.filename if graph.source else "a spec"}.',
        "",
        f"    model = {cls}().eval()",
        f"    y = model({_probe_source(graph, ', '.join(map(str, (1, *graph.input.shape))))})",
        '"""',
        "",
        "import torch",
        "from torch import nn",
        "",
        *(line for source in helpers for line in ["", source.rstrip(), ""]),
        "",
        f"class {cls}(nn.Module):",
        f"    input_shape = {tuple(graph.input.shape)!r}",
        "",
        "    def __init__(self) -> None:",
        "        super().__init__()",
        *_init_lines(modules, names),
        "",
        *_forward_lines(graph, names),
        "",
        "",
        'if __name__ == "__main__":',
        f"    model = {cls}().eval()",
        f"    out = model({_probe_source(graph, f'1, *{cls}.input_shape')})",
        "    shapes = [tuple(o.shape) for o in (out if isinstance(out, tuple) else (out,))]",
        '    print(f"params {sum(p.numel() for p in model.parameters()):,}, output {shapes}")',
        "",
    ]
    return "\n".join(lines)


def _helpers_used(modules: Any) -> list[str]:
    import inspect

    from archcalc.pytorch import modules as torch_modules

    # with their archcalc base classes, in the order torch_modules defines them
    used = {c for m in modules for c in type(m).__mro__ if c.__module__ == torch_modules.__name__}
    return [inspect.getsource(c) for c in sorted(used, key=lambda c: inspect.getsourcelines(c)[1])]


def _init_lines(modules: dict[int, nn.Module], names: dict[int, str]) -> list[str]:
    lines: list[str] = []
    containers: set[str] = set()
    for node_id, module in modules.items():
        path = names[node_id]
        parts = path.split(".")
        for i in range(1, len(parts)):
            box = ".".join(parts[:i])
            if box not in containers:
                containers.add(box)
                lines.append(f"        self.{box} = nn.Module()")
        lines.append(f"        self.{path} = {constructor(module)}")
    return lines


def _forward_lines(graph: LayerGraph, names: dict[int, str]) -> list[str]:
    """`x = self.conv_1(x)` per node, as one writes it by hand.

    A chain reuses its variable (the input's tensor dies at its only consumer, as in
    `out = self.bn1(out)`); a tensor read by several nodes gets its own name and is
    deleted after its last use, so the export holds no more memory than the fx model.
    """
    kept = {n.id for n in output_order(graph)}
    last_use = graph.last_use()
    var: dict[int, str] = {}
    lines = ["    def forward(self, x: torch.Tensor):"]
    for n in graph:
        if n.type == "input":
            var[n.id] = "x"
            continue
        only = n.inputs[0] if len(n.inputs) == 1 else None
        chained = only is not None and graph.consumers(only) == [n.id] and only not in kept
        var[n.id] = var[only] if chained and only is not None else names[n.id].replace(".", "_")
        args = ", ".join(var[i] for i in n.inputs)
        lines.append(f"        {var[n.id]} = self.{names[n.id]}({args})  # {n.text}")
        dead = sorted({var[i] for i in n.inputs if last_use[i] == n.id and i not in kept} - {var[n.id]})
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
            args.append(f"{p.name}={value!r}")
    code = f"{prefix}{cls.__name__}({', '.join(args)})"
    _check_constructor(code, module)
    return code


_MISSING = object()


def _constructor_value(module: nn.Module, name: str) -> Any:
    if name == "bias" and hasattr(module, "bias"):  # stored as a Parameter or None
        return module.bias is not None
    return getattr(module, name, _MISSING)


def _check_constructor(code: str, module: nn.Module) -> None:
    """Construct `code` again; it must give a module with the same repr and parameter shapes."""
    from torch import nn

    from archcalc.pytorch import modules as torch_modules

    namespace: dict[str, Any] = {"nn": nn, **vars(torch_modules)}
    again = eval(code, namespace)  # noqa: S307 - code we just generated from a module
    if repr(again) != repr(module) or _state_shapes(again) != _state_shapes(module):
        raise BuildError(f"cannot write constructor code for {module!r} (got {code})")


def _state_shapes(module: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in module.state_dict().items()]
