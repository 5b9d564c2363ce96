"""`@record`: a frozen dataclass whose `__eq__`, `__hash__` and `__repr__` are shared functions.

Why: on Python 3.11 `@dataclass(frozen=True)` writes six methods for each class as source text
and compiles each with `exec` (`__init__`, `__repr__`, `__eq__`, `__hash__`, `__setattr__`,
`__delattr__`), about 0.2 ms apiece: the ~75 records a cold `archcalc report` loads cost it
~90 ms of CPU before any work. `@record` lets dataclass write the three it must (the
constructor and the two that keep an instance frozen) and gives the other three from functions
compiled once, here, that read the class's fields through an `operator.attrgetter` made when the
class is decorated. They give what the generated methods give, field for field:

- `a == b`: the values of the fields with `compare=True`, in order, as tuples, when both are
  instances of the same class; `NotImplemented` otherwise;
- `hash(a)`: the hash of the tuple of the fields with `hash=True`, or `compare=True` when
  `hash` is unset;
- `repr(a)`: `QualName(field=value!r, …)` of the fields with `repr=True`, `...` for an instance
  met again inside itself.

A method the class body defines itself is kept, as dataclass keeps it. `tests/test_records.py`
holds each to `@dataclass(frozen=True)`'s on the same classes.
"""

from __future__ import annotations

import dataclasses
import reprlib
from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:  # Python 3.11 has it; for the type checker only, so 3.10 runs too
    from typing import dataclass_transform
else:
    def dataclass_transform(**_: Any) -> Callable[[T], T]:
        return lambda f: f

T = TypeVar("T")


@overload
def record(cls: type[T], /) -> type[T]: ...


@overload
def record(*, slots: bool = False) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(frozen_default=True)
def record(cls: type[T] | None = None, /, *, slots: bool = False) -> type[T] | Callable[[type[T]], type[T]]:
    """`@record` or `@record(slots=True)`: `@dataclass(frozen=True)` (with `slots`), the same
    methods, three of them shared instead of compiled for this class."""
    def wrap(cls: type[T]) -> type[T]:
        return _share_methods(dataclasses.dataclass(cls, frozen=True, eq=False, repr=False, slots=slots))

    return wrap if cls is None else wrap(cls)


def _share_methods(cls: type[T]) -> type[T]:
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    body = dict(cls.__dict__)  # what the class defines itself, before anything is added
    if "__eq__" not in body:
        _add(cls, "__eq__", _eq(_values([f.name for f in fields if f.compare])))
    # dataclass's rule: a __hash__ the body sets is kept, unless it is the None that Python puts
    # in a class body defining __eq__ alone
    if "__hash__" not in body or (body["__hash__"] is None and "__eq__" in body):
        _add(cls, "__hash__", _hash(_values([f.name for f in fields if (f.compare if f.hash is None else f.hash)])))
    if "__repr__" not in body:
        _add(cls, "__repr__", _repr(tuple(f.name for f in fields if f.repr)))
    return cls


def _add(cls: type, name: str, method: Callable[..., Any]) -> None:
    method.__qualname__ = f"{cls.__qualname__}.{name}"
    setattr(cls, name, method)


def _values(names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    """An instance's values of `names` as a tuple (attrgetter gives the bare value for one name)."""
    if len(names) > 1:
        return attrgetter(*names)
    if names:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    return lambda obj: ()


def _eq(compared: Callable[[Any], tuple[Any, ...]]) -> Callable[[Any, Any], Any]:
    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return compared(self) == compared(other)
        return NotImplemented

    return __eq__


def _hash(hashed: Callable[[Any], tuple[Any, ...]]) -> Callable[[Any], int]:
    def __hash__(self: Any) -> int:
        return hash(hashed(self))

    return __hash__


def _repr(shown: tuple[str, ...]) -> Callable[[Any], str]:
    @reprlib.recursive_repr()
    def __repr__(self: Any) -> str:
        return f"{self.__class__.__qualname__}({', '.join(f'{name}={getattr(self, name)!r}' for name in shown)})"

    return __repr__
