"""`@record` (archcalc/records.py) is `@dataclass(frozen=True)` with three methods shared instead of
compiled per class: the same equality, hash, repr and frozenness, field for field."""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import pickle
import pkgutil
from dataclasses import dataclass, field
from typing import Any

import pytest

import archcalc
from archcalc.errors import Loc
from archcalc.passes.training import Kept
from archcalc.records import record


def twins(slots: bool = False) -> tuple[type, type]:
    """The same class body under `@record` and under `@dataclass(frozen=True)`."""
    def body() -> dict[str, Any]:
        return {
            "__annotations__": {"a": "int", "b": "Any", "hidden": "int", "loose": "int", "no_repr": "str"},
            "b": field(default=()),
            "hidden": field(default=0, compare=False),  # in neither == nor hash
            "loose": field(default=0, hash=False),  # compared, not hashed
            "no_repr": field(default="x", repr=False),
        }

    ours = record(slots=slots)(type("Pair", (), body()))
    theirs = dataclass(frozen=True, slots=slots)(type("Pair", (), body()))
    return ours, theirs


VALUES = [(1,), (1, (2, 3)), (1, (2, 3), 7), (1, (2, 3), 0, 5), (1, (2, 3), 0, 0, "y"), (2,), (float("nan"),)]


@pytest.mark.parametrize("slots", [False, True])
def test_equality_hash_and_repr_are_dataclass_s(slots: bool) -> None:
    ours, theirs = twins(slots)
    for left in VALUES:
        a, b = ours(*left), theirs(*left)
        assert repr(a) == repr(b)
        assert hash(a) == hash(b)
        for right in VALUES:
            assert (a == ours(*right)) == (b == theirs(*right)), (left, right)
            assert (a != ours(*right)) == (b != theirs(*right)), (left, right)
    assert ours(float("nan")) != ours(float("nan")) and theirs(float("nan")) != theirs(float("nan"))
    nan = float("nan")
    assert ours(nan) == ours(nan) and theirs(nan) == theirs(nan)  # a tuple's item is equal to itself
    assert ours(1) != theirs(1) and ours(1).__eq__(theirs(1)) is NotImplemented  # another class is never equal
    assert ours(1) != (1,) and ours(1) == ours(1, hidden=5) and ours(1) != ours(1, loose=5)
    assert hash(ours(1, loose=5)) == hash(ours(1))


@pytest.mark.parametrize("slots", [False, True])
def test_frozen_and_a_dataclass(slots: bool) -> None:
    ours, _ = twins(slots)
    a = ours(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.a = 2  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del a.a  # type: ignore[attr-defined]
    assert dataclasses.is_dataclass(ours) and ours.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert dataclasses.replace(a, a=3) == ours(3) and dataclasses.astuple(a) == (1, (), 0, 0, "x")
    assert hasattr(a, "__dict__") is not slots
    assert ours.__eq__.__qualname__ == "Pair.__eq__" and ours.__repr__.__qualname__ == "Pair.__repr__"


def test_a_method_the_class_defines_is_kept() -> None:
    @record
    class Named:
        name: str

        def __repr__(self) -> str:
            return f"<{self.name}>"

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Named) and other.name.lower() == self.name.lower()

    assert repr(Named("a")) == "<a>" and Named("a") == Named("A")
    assert hash(Named("a")) == hash(("a",))  # dataclass hashes the fields when the body defines only __eq__

    @record
    class Hashed:
        name: str

        def __hash__(self) -> int:
            return 7

    assert hash(Hashed("a")) == 7 and Hashed("a") == Hashed("a")


def test_a_record_inside_itself_is_shown_as_dots() -> None:
    @record
    class Box:
        items: list[Any]

    box = Box([])
    box.items.append(box)
    assert repr(box) == "test_a_record_inside_itself_is_shown_as_dots.<locals>.Box(items=[...])"


def test_the_package_s_records_are_frozen_dataclasses_with_the_shared_methods() -> None:
    """Every `@record` of the static path, as the suite sees them (a loaded Loc shows as before)."""
    assert repr(Loc(3, 5, 2)) == "Loc(line=3, col=5, width=2)" and Loc(3, 5, 2) == Loc(3, 5, 2)
    found = 0
    for info in pkgutil.walk_packages(archcalc.__path__, "archcalc."):
        if info.name == "archcalc.__main__" or info.name.startswith(("archcalc.pytorch", "archcalc.importers")):
            continue  # torch's side (its records are @record too; importing them needs torch)
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, type) and value.__module__ == info.name and dataclasses.is_dataclass(value):
                if value.__eq__.__code__ is twins()[0].__eq__.__code__:  # type: ignore[attr-defined]
                    assert value.__dataclass_params__.frozen, value  # type: ignore[attr-defined]
                    found += 1
    assert found > 50


def construction_twins(slots: bool) -> tuple[type, type]:
    """Every kind of field `__init__` handles, under `@record` and `@dataclass(frozen=True)`."""
    def body() -> dict[str, Any]:
        def __post_init__(self: Any) -> None:
            object.__setattr__(self, "seen", (self.a, self.items))

        return {
            "__annotations__": {"a": "int", "b": "int", "items": "list[int]", "fixed": "int",
                                "made": "dict[str, int]", "unset": "int", "seen": "Any"},
            "b": 2,
            "items": field(default_factory=list),
            "fixed": field(default=7, init=False),
            "made": field(default_factory=lambda: {"k": 1}, init=False),
            "unset": field(init=False),
            "seen": field(default=None, init=False, compare=False),
            "__post_init__": __post_init__,
        }

    ours = record(slots=slots)(type("Built", (), body()))
    theirs = dataclass(frozen=True, slots=slots)(type("Built", (), body()))
    return ours, theirs


def state(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name, "<unset>") for f in dataclasses.fields(obj)}


@pytest.mark.parametrize("slots", [False, True])
def test_construction_is_dataclass_s(slots: bool) -> None:
    ours, theirs = construction_twins(slots)
    assert ours.__init__.__code__.co_filename.endswith("records.py")  # not written before it is first used
    for args, kwargs in [((1,), {}), ((1, 5), {}), ((1,), {"items": [3]}), ((), {"a": 4, "b": 0})]:
        a, b = ours(*args, **kwargs), theirs(*args, **kwargs)
        assert state(a) == state(b) and a.seen == b.seen and state(a)["unset"] == "<unset>"
    assert ours(1).items is not ours(1).items and ours(1).made is not ours(1).made  # a factory per instance
    assert ours.__init__.__code__.co_filename == "<record Built.__init__>"

    def params(cls: type) -> list[tuple[str, str]]:  # names and defaults (dataclass's also annotate)
        return [(p.name, repr(p.default)) for p in inspect.signature(cls).parameters.values()]

    assert params(ours) == params(theirs) == [("a", "<class 'inspect._empty'>"), ("b", "2"), ("items", "<factory>")]
    for args, kwargs in [((), {}), ((1, 2, [], 4), {}), ((1,), {"fixed": 3}), ((1,), {"c": 3})]:
        with pytest.raises(TypeError) as mine:
            ours(*args, **kwargs)
        with pytest.raises(TypeError) as dataclass_s:
            theirs(*args, **kwargs)
        assert str(mine.value).split("() ")[-1] == str(dataclass_s.value).split("() ")[-1]


@pytest.mark.parametrize("slots", [False, True])
def test_frozen_errors_pickling_and_copies_are_dataclass_s(slots: bool) -> None:
    ours, theirs = construction_twins(slots)
    a, b = ours(1, items=[2]), theirs(1, items=[2])
    on_fields = [lambda x: setattr(x, "a", 2), lambda x: delattr(x, "a")]
    on_others = [lambda x: setattr(x, "other", 2), lambda x: delattr(x, "other")]
    for act in on_fields + on_others:
        with pytest.raises(dataclasses.FrozenInstanceError) as mine:
            act(a)
        if slots and act in on_others:  # Python 3.11's slotted dataclass raises TypeError here: its
            with pytest.raises(TypeError):  # __setattr__ refers to the class before slots were added
                act(b)
            continue
        with pytest.raises(dataclasses.FrozenInstanceError) as dataclass_s:
            act(b)
        assert str(mine.value) == str(dataclass_s.value)
    object.__setattr__(a, "unset", 0)  # as a __post_init__ would (copying reads every field)
    for again in (copy.copy(a), copy.deepcopy(a)):
        assert state(again) == state(a) and type(again) is ours
    for kept in (Loc(3, 4, 5), Kept("output", ("node", 3), 12, True)):  # slotted, and not
        assert pickle.loads(pickle.dumps(kept)) == kept
    assert state(dataclasses.replace(a, b=9)) == state(dataclasses.replace(b, b=9))


def test_a_default_before_a_field_without_one_is_refused_at_the_class() -> None:
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):
        record(type("Bad", (), {"__annotations__": {"a": "int", "b": "int"}, "a": 1}))


def test_what_records_does_not_write_for_is_dataclass_s_own() -> None:
    @dataclass(frozen=True)
    class Base:
        a: int

    @record
    class Child(Base):
        b: int = 0

    @record
    class WithInitVar:
        a: int
        scale: dataclasses.InitVar[int] = 1

        def __post_init__(self, scale: int) -> None:
            object.__setattr__(self, "a", self.a * scale)

    assert Child(1, 2) == Child(1, 2) and repr(Child(1)) == "test_what_records_does_not_write_for_is_dataclass_s_own." \
        "<locals>.Child(a=1, b=0)"
    with pytest.raises(dataclasses.FrozenInstanceError):
        Child(1).b = 3  # type: ignore[misc]
    assert WithInitVar(2, 3).a == 6 and Child.__dataclass_params__.frozen  # type: ignore[attr-defined]
