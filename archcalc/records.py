"""`@record`: a frozen dataclass whose methods are shared functions or written on first use.

Why: on Python 3.11 `@dataclass(frozen=True)` writes six methods for each class as source text
and compiles each with `exec` (`__init__`, `__repr__`, `__eq__`, `__hash__`, `__setattr__`,
`__delattr__`): about 0.7 ms a class, ~50 ms of CPU for the ~70 records a cold
`archcalc report` loads before any work. `@record` lets dataclass collect the fields (its
`fields`, `replace`, `asdict` and `is_dataclass` work as ever) and writes no method per class
at import:

- `a == b`, `hash(a)`, `repr(a)` and the two methods that keep an instance frozen are
  functions compiled once, here, that read the class's fields through an
  `operator.attrgetter` or a set of names made when the class is decorated;
- `__init__` is written (as dataclass writes it: the fields in order, their defaults and
  factories, `init=False` fields, `__post_init__`) the first time the class is constructed,
  so a record a command never builds costs no compile. A slotted record's fields are stored
  through their slots' descriptors rather than `object.__setattr__` by name: 0.6–0.7 of the
  time per construction, which a graph of 100,000 nodes pays a dozen times a node.

What they give, field for field, is dataclass's:

- `a == b`: the values of the fields with `compare=True`, in order, as tuples, when both are
  instances of the same class; `NotImplemented` otherwise;
- `hash(a)`: the hash of the tuple of the fields with `hash=True`, or `compare=True` when
  `hash` is unset;
- `repr(a)`: `QualName(field=value!r, …)` of the fields with `repr=True`, `...` for an instance
  met again inside itself;
- assigning or deleting an attribute raises `FrozenInstanceError`, and a slotted record pickles
  and copies through `__getstate__`/`__setstate__`.

A method the class body defines itself is kept, as dataclass keeps it. A class this module does
not write for (a dataclass base, `InitVar` or keyword-only fields) is left to dataclass whole.
`tests/test_records.py` holds each method to `@dataclass(frozen=True)`'s on the same classes.
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
    methods, none compiled for this class at import."""
    def wrap(cls: type[T]) -> type[T]:
        if not _writable(cls):
            kept: Any = dataclasses.dataclass(cls, frozen=True, eq=False, repr=False, slots=slots)
            return _share_methods(kept, dataclasses.fields(kept))
        for name in ("__setattr__", "__delattr__"):
            if name in cls.__dict__:  # as dataclass refuses it
                raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
        documented = bool(cls.__dict__.get("__doc__"))
        if not documented:
            cls.__doc__ = cls.__name__  # so dataclass does not ask inspect for a signature
        made: Any = dataclasses.dataclass(cls, init=False, eq=False, repr=False, slots=slots)
        made.__dataclass_params__.init = made.__dataclass_params__.frozen = True
        fields = dataclasses.fields(made)
        _check_defaults(made, fields)
        if not documented:
            made.__doc__ = f"{made.__name__}({', '.join(f.name for f in fields if f.init)})"
        _freeze(made, slots, fields)
        _add(made, "__init__", _first_init(made))
        return _share_methods(made, fields)

    return wrap if cls is None else wrap(cls)


def _writable(cls: type) -> bool:
    """Whether this module writes the class's methods: no dataclass among its bases (dataclass
    checks frozen against them), no InitVar or keyword-only field (its __init__ is dataclass's)."""
    if any(dataclasses.is_dataclass(base) for base in cls.__mro__[1:]):
        return False
    annotations = cls.__dict__.get("__annotations__", {})
    if any("InitVar" in str(kind) or "KW_ONLY" in str(kind) for kind in annotations.values()):
        return False
    return not any(isinstance(value, dataclasses.Field) and value.kw_only is True for value in vars(cls).values())


def _check_defaults(cls: type, fields: tuple[dataclasses.Field[Any], ...]) -> None:
    """dataclass's own check, at decoration as it makes it: a field without a default after one with."""
    seen_default = False
    for f in fields:
        if not f.init:
            continue
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        if seen_default and not has_default:
            raise TypeError(f"non-default argument {f.name!r} follows default argument")
        seen_default = seen_default or has_default


# -- frozen -------------------------------------------------------------------------


def _freeze(cls: Any, slots: bool, fields: tuple[dataclasses.Field[Any], ...]) -> None:
    names = frozenset(f.name for f in fields)

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    _add(cls, "__setattr__", __setattr__)
    _add(cls, "__delattr__", __delattr__)
    if slots:  # pickle and copy would set each slot through the __setattr__ above
        if "__getstate__" not in cls.__dict__:
            _add(cls, "__getstate__", _getstate)
        if "__setstate__" not in cls.__dict__:
            _add(cls, "__setstate__", _setstate)


def _getstate(self: Any) -> list[Any]:
    return [getattr(self, f.name) for f in dataclasses.fields(self)]


def _setstate(self: Any, state: list[Any]) -> None:
    for f, value in zip(dataclasses.fields(self), state):
        object.__setattr__(self, f.name, value)


# -- construction ---------------------------------------------------------------------


class _Factory:
    """The default of a field with a `default_factory`, as dataclass shows it in a signature."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def _first_init(cls: type) -> Callable[..., None]:
    """An `__init__` that writes the class's real one, puts it in its place and runs it."""
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init = _init(cls)
        _add(cls, "__init__", init)
        init(self, *args, **kwargs)

    return __init__


def _init(cls: Any) -> Callable[..., None]:
    """dataclass's `__init__` for `cls`: a parameter per `init` field in order, with its default
    (a factory's marked `_FACTORY` and called when left out), each field stored, then
    `__post_init__()` when the class has one."""
    fields = dataclasses.fields(cls)
    slotted = "__slots__" in cls.__dict__
    values: dict[str, Any] = {"__factory": _FACTORY, "__set": object.__setattr__}
    params, body = ["__self"], []
    for f in fields:
        value = _field_value(f, params, values)
        if value is None:
            continue
        if slotted:  # the slot's own descriptor: a third faster than object.__setattr__ by name
            values[f"__set_{f.name}"] = _slot_setter(cls, f.name)
            body.append(f"__set_{f.name}(__self, {value})")
        else:  # not through `__self.__dict__`: a dict made that way is read three times slower
            body.append(f"__set(__self, {f.name!r}, {value})")
    if hasattr(cls, "__post_init__"):
        body.append("__self.__post_init__()")
    source = f"def __init__({', '.join(params)}):\n" + "".join(f"    {line}\n" for line in body or ["pass"])
    # named after the class, so a traceback and tests/test_cold_imports.py tell it from dataclass's
    exec(compile(source, f"<record {cls.__qualname__}.__init__>", "exec"), values)  # noqa: S102 - field names only
    return values["__init__"]


def _slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    """Sets slot `name` of an instance of `cls`, its frozen `__setattr__` bypassed (a slotted
    dataclass has a slot for every field)."""
    slot = next(k.__dict__[name] for k in cls.__mro__ if name in k.__dict__)
    return slot.__set__


def _field_value(f: dataclasses.Field[Any], params: list[str], values: dict[str, Any]) -> str | None:
    """The expression a field is stored from (adding its parameter and default), or None when an
    `init=False` field without a default stays unset, as dataclass leaves it."""
    default = f"__default_{f.name}"
    factory = f"__factory_{f.name}"
    if f.default is not dataclasses.MISSING:
        values[default] = f.default
    if f.default_factory is not dataclasses.MISSING:
        values[factory] = f.default_factory
    if not f.init:
        if f.default is not dataclasses.MISSING:
            return default
        return f"{factory}()" if f.default_factory is not dataclasses.MISSING else None
    if f.default_factory is not dataclasses.MISSING:
        params.append(f"{f.name}=__factory")
        return f"{factory}() if {f.name} is __factory else {f.name}"
    params.append(f.name if f.default is dataclasses.MISSING else f"{f.name}={default}")
    return f.name


# -- equality, hash, repr -------------------------------------------------------------


def _share_methods(cls: type[T], fields: tuple[dataclasses.Field[Any], ...]) -> type[T]:
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
