"""Modules built for their structure only: no weight initialised, nothing drawn at random.

`export` reads a built model's modules (their constructor arguments and parameter shapes), never
their values. So nn.init's functions and the tensor methods that only fill values are skipped,
and `randn`/`rand`/`randint` give an empty tensor of their shape: an empty CPU tensor whose pages
are never written costs no memory (40M parameters: no resident megabyte, no second of CPU).
A model too big to reserve even that goes to the meta device, whose first use of many factories
(`arange`, `normal_`, `randn`) imports sympy and torch._dynamo, about 2 s of CPU once a process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

# the tensor methods that only fill values (nn.init's functions are recognised by their module)
_FILLS = frozenset({"normal_", "uniform_", "erfinv_", "exponential_", "log_normal_", "cauchy_", "geometric_",
                    "random_", "bernoulli_"})
_FACTORIES = frozenset({"randn", "rand", "randint"})


class _NoRandomness(TorchFunctionMode):
    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        target = args[0] if args else kwargs.get("tensor")
        if (name in _FILLS or getattr(func, "__module__", "") == "torch.nn.init") and isinstance(target, torch.Tensor):
            return target
        if name in _FACTORIES and getattr(func, "__module__", "") == "torch" and "generator" not in kwargs:
            return _empty(name, args, kwargs)
        return func(*args, **kwargs)


def _empty(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor:
    """What `torch.randn(size)`, `rand(size)` or `randint([low,] high, size)` would give, unfilled."""
    size = kwargs.pop("size", None) or (args[-1] if name == "randint" else args)
    if name != "randint" and len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)):
        size = size[0]
    dtype = kwargs.pop("dtype", None) or (torch.int64 if name == "randint" else None)
    return torch.empty(tuple(size), dtype=dtype, device=kwargs.pop("device", None),
                       requires_grad=kwargs.pop("requires_grad", False))


META_PARAMS = 50_000_000  # parameters past which the modules are built on the meta device


@contextlib.contextmanager
def structure_only(on_meta: bool) -> Iterator[None]:
    """Build modules without initialising or drawing a value; on the meta device if `on_meta`."""
    with torch.device("meta") if on_meta else contextlib.nullcontext(), _NoRandomness():
        yield
