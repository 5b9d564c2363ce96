"""LayerGraph → a runnable torch module: one `call_module` per node in a `torch.fx` graph.

Each node's module comes from its layer type's `torch_module` (the registry), so the
built model is the spec itself, not a re-interpretation of it. Module names follow the
spec's statements and blocks as torchvision names its modules (`features.0`, `layer1.0.conv1`),
so a torchvision state dict loads into the built or exported model. torch is
imported inside the functions of this package only (and lazily in each layer type's
`torch_module`), never by the static path; `require_torch` says how to install it.
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
    """Node id → the dotted module path it gets, as the spec names it (`features.0`,
    `layer1.0.conv1`, `layer2.0.downsample.0`: lang/modules.py, docs/spec-language.md), so that a
    torchvision state dict loads into the built model.

    Every node but the inputs gets one. A node that applies another's weights again gets that
    node's path: the same module is called twice. A graph made without a spec (one layer of
    `calc`) falls back to block scopes, then `{type}_{id}`. A path that would clash with
    another (a leaf where a container is, or a name given twice) gets a trailing '_'.
    """
    names: dict[int, str] = {}
    taken: set[str] = set()  # every path used, leaves and the containers above them
    leaves: set[str] = set()
    for n in graph:
        if n.type == "input":
            continue
        if n.shares is not None:
            names[n.id] = names[n.shares]
            continue
        parts = n.module.split(".") if n.module else [
            *(_ident(p.replace("#", "_")) for p in n.scope), f"{_ident(n.type)}_{n.id}"]
        for i in range(len(parts) - 1):  # a container must not be a leaf
            while ".".join(parts[: i + 1]) in leaves:
                parts[i] += "_"
        while ".".join(parts) in taken:  # a leaf must be new
            parts[-1] += "_"
        path = ".".join(parts)
        names[n.id] = path
        leaves.add(path)
        taken.update(".".join(parts[: i + 1]) for i in range(len(parts)))
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


def node_module(graph: LayerGraph, node: Node, with_indices: bool = False) -> nn.Module:
    """The torch module of one node, from its layer type (`with_indices`: the one returning its
    max pool's indices too); errors name the type and spec line."""
    try:
        if with_indices:
            return node.layer.indices_module(node.args, node.in_shapes, node.shape)
        return node.layer.torch_module(node.args, node.in_shapes, node.shape)
    except BuildError as e:
        raise BuildError(f"{where(graph, node)}: cannot build '{node.text}': {e}") from None
    except (ValueError, TypeError, RuntimeError) as e:
        raise BuildError(
            f"{where(graph, node)}: torch rejects '{node.text}' (layer type '{node.type}'): {e}"
        ) from e


def index_sources(graph: LayerGraph) -> frozenset[int]:
    """The max pools whose indices a max unpool reads: their modules return (values, indices)."""
    return frozenset(n.inputs[n.layer.index_input] for n in graph if n.layer.index_input is not None)


def build_modules(graph: LayerGraph) -> dict[int, nn.Module]:
    """Node id → its module, for every node but the inputs and those applying another's weights
    (they call the owner's module); a tied layer's weight is its owner's Parameter itself; a
    /frozen layer's parameters do not require grad; a max pool whose indices an unpool reads
    returns them too."""
    require_torch()
    sources = index_sources(graph)
    modules = {n.id: node_module(graph, n, n.id in sources) for n in graph if n.type != "input" and n.shares is None}
    for n in graph:
        if n.args.get("frozen") and n.id in modules and n.tie is None:
            modules[n.id].requires_grad_(False)  # /frozen: parameters still, without gradients
    for n in graph:
        if n.tie is not None:
            modules[n.id] = tie(graph, n, modules[n.id], modules[n.tie.owner])
    return modules


def tie(graph: LayerGraph, node: Node, module: nn.Module, owner: nn.Module) -> nn.Module:
    """`module` with `owner`'s weight as its own: the same Parameter (or its transpose, for a Linear)."""
    from torch import nn

    from archcalc.pytorch.modules import TransposedTie

    if not isinstance(getattr(owner, "weight", None), nn.Parameter):
        raise BuildError(f"{where(graph, node)}: the layer '{node.text}' is tied to has no weight Parameter")
    if node.tie is not None and node.tie.transposed:
        if not isinstance(module, nn.Linear):
            raise BuildError(f"{where(graph, node)}: a transposed tie is built for fc layers only")
        return TransposedTie(owner, module.bias)
    module.weight = owner.weight
    return module


def owned_parameters(graph: LayerGraph, modules: dict[int, nn.Module], names: dict[int, str]) -> dict[
        str, list[tuple[str, str]]]:
    """Container path → the (child, Parameter) pairs it keeps as its own Parameters in the state_dict:
    each layer whose module is nothing but one learned tensor (its `free_tensor`: class-token,
    position-embedding/whole, layer-scale, parameter) that a statement names (`class_token =
    class-token`), not numbered, not tied (docs/spec-language.md 5.1; modules.own_parameters)."""
    owned: dict[str, list[tuple[str, str]]] = {}
    for node_id, module in modules.items():
        tensor = getattr(module, "free_tensor", None)
        container, _, leaf = names[node_id].rpartition(".")
        if tensor is None or leaf.isdigit() or graph.node(node_id).tie is not None:
            continue
        owned.setdefault(container, []).append((leaf, tensor))
    return owned


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


def fx_graph(graph: LayerGraph, names: dict[int, str], indices: frozenset[int] = frozenset()) -> fx.Graph:
    """One placeholder for the input, one call_module per node, the output(s) last. A node in
    `indices` (a max pool an unpool reads) returns (values, indices): its consumers get the values,
    the unpool the indices."""
    import operator

    from torch import fx

    g = fx.Graph()
    values: dict[int, fx.Node] = {}
    found: dict[int, fx.Node] = {}
    for n in graph:
        if n.type == "input":
            values[n.id] = g.placeholder(input_name(graph, n))
            continue
        args = tuple(found[i] if k == n.layer.index_input and i in found else values[i]
                     for k, i in enumerate(n.inputs))
        out = g.call_module(names[n.id], args)
        if n.id in indices:
            values[n.id] = g.call_function(operator.getitem, (out, 0))
            found[n.id] = g.call_function(operator.getitem, (out, 1))
        else:
            values[n.id] = out
    outs = [values[n.id] for n in output_order(graph)]
    g.output(outs[0] if len(outs) == 1 else tuple(outs))
    g.lint()
    return g


def build(graph: LayerGraph) -> fx.GraphModule:
    """The spec as a torch.fx GraphModule; `print(model.code)` shows its forward."""
    return assemble(graph, build_modules(graph), index_sources(graph))


def assemble(graph: LayerGraph, modules: dict[int, nn.Module], indices: frozenset[int] = frozenset()) -> fx.GraphModule:
    """The GraphModule of `graph` with `modules` (node id → module) at the nodes' paths; the nodes
    in `indices` return (values, indices) (`fx_graph`)."""
    require_torch()
    from torch import fx

    from archcalc.pytorch.modules import own_parameters

    names = module_names(graph)
    model = fx.GraphModule(_root(modules, names), fx_graph(graph, names, indices), class_name=class_name(graph))
    for container, pairs in owned_parameters(graph, modules, names).items():  # on the GraphModule's containers
        own_parameters(model.get_submodule(container), pairs)
    return model


def input_name(graph: LayerGraph, node: Node) -> str:
    """The forward argument of an input: `x` for a single unnamed one, else its own name."""
    name = str(node.args.get("name") or "input")
    return "x" if name == "input" else _ident(name)


def probe_input(graph: LayerGraph, batch: int = 1, device: str = "cpu", dtype: Any = None) -> Any:
    """A random input batch for the model (a tuple of them for several inputs): token ids below
    the vocabulary (long) where an input feeds embeddings, else standard normal values of `dtype`."""
    torch = require_torch()
    batches = []
    for node in graph.input_nodes():
        shape = (batch, *node.shape)
        vocab = graph.token_vocab(node.id)
        if vocab is not None:
            batches.append(torch.randint(0, vocab, shape, device=device))
        else:
            batches.append(torch.randn(shape, device=device, dtype=dtype or torch.float32))
    return batches[0] if len(batches) == 1 else tuple(batches)
