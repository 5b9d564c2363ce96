"""Which layer type writes which PyTorch call: read from the layer types' own declarations.

Each layer type names what it reads in a PyTorch model (`torch_modules`, `torch_functions` on
its class). Here those names are resolved to the objects a traced graph holds (a module class,
a function), once per import, so a layer type added later is found by its declaration alone.
Names from libraries the process never imported are skipped: a model cannot use them.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from typing import Any

from archcalc.layers import REGISTRY, LayerType

PARAMETER = "parameter"  # the pseudo-name of a Parameter the forward reads itself (fx's get_attr)


@dataclass
class TorchNames:
    """Resolved declarations: module classes and functions (by identity), methods (by name)."""

    modules: dict[type, tuple[str, list[LayerType]]] = field(default_factory=dict)
    functions: dict[int, tuple[str, list[LayerType]]] = field(default_factory=dict)
    methods: dict[str, tuple[str, list[LayerType]]] = field(default_factory=dict)
    pseudo: dict[str, tuple[str, list[LayerType]]] = field(default_factory=dict)

    def module(self, cls: type) -> tuple[str, list[LayerType]] | None:
        """The declaration for a module class: its own, or a base class's whose forward it keeps
        (a subclass that overrides forward computes something else)."""
        if cls in self.modules:
            return self.modules[cls]
        for base in cls.__mro__[1:]:
            if base in self.modules and getattr(cls, "forward", None) is getattr(base, "forward", None):
                return self.modules[base]
        return None

    def function(self, target: Any) -> tuple[str, list[LayerType]] | None:
        return self.functions.get(id(target))

    def method(self, name: str) -> tuple[str, list[LayerType]] | None:
        return self.methods.get(name)


def resolve(name: str) -> Any:
    """'torch.nn.Conv2d' → the class; None when its library was never imported or lacks it."""
    module_name, _, attr = name.rpartition(".")
    root = module_name.split(".")[0]
    if not module_name or (root not in sys.modules and root not in ("torch", "operator")):
        return None
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        return None


def torch_names() -> TorchNames:
    """Every layer type's declared PyTorch names, resolved."""
    names = TorchNames()
    for layer in REGISTRY.values():
        for name in layer.torch_modules:
            cls = resolve(name)
            if isinstance(cls, type):
                names.modules.setdefault(cls, (name, []))[1].append(layer)
        for name in layer.torch_functions:
            if name == PARAMETER:
                names.pseudo.setdefault(name, (name, []))[1].append(layer)
            elif name.startswith("Tensor."):
                names.methods.setdefault(name[len("Tensor."):], (name, []))[1].append(layer)
            else:
                target = resolve(name)
                if target is not None:
                    names.functions.setdefault(id(target), (name, []))[1].append(layer)
    return names


def function_label(target: Any) -> str:
    """A readable name for a function no layer type declares: 'torch.nn.functional.layer_norm'."""
    module = getattr(target, "__module__", None) or ""
    qualname = getattr(target, "__qualname__", None) or getattr(target, "__name__", None) or repr(target)
    module = {"_operator": "operator", "torch._C._nn": "torch.nn.functional",
              "torch._C._VariableFunctions": "torch"}.get(module, module)
    if str(qualname).startswith("_VariableFunctionsClass."):
        return "torch." + str(qualname).split(".", 1)[1]
    return f"{module}.{qualname}" if module else str(qualname)


def class_label(cls: type) -> str:
    """'torch.nn.modules.normalization.LayerNorm' → 'torch.nn.LayerNorm' (how people write it)."""
    module = cls.__module__
    if module.startswith("torch.nn.modules."):
        module = "torch.nn"
    return f"{module}.{cls.__qualname__}"
