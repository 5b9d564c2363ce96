"""A value as a cache key that is equal only to the same value of the same type.

To Python 1 == 1.0 == True and -0.0 == 0.0, but a layer rule may tell them apart (a whole-number
argument takes 4 and refuses 4.0): the expansion's lowering cache (`lang/expand.py`) and the passes'
distinct layers (`passes/counting.py`) key what they share by `value_key`, so that no two values a
rule could tell apart share an answer.
"""

from __future__ import annotations

from typing import Any

PLAIN = frozenset({int, str, bool, type(None)})  # values equal only where their type is also equal


def value_key(value: Any) -> Any:
    """`value` with its type: a float by its exact hex (-0.0 apart from 0.0), a tuple item by item.
    TypeError for any other type: such a value is not keyed (each use is its own)."""
    kind = type(value)
    if kind in PLAIN:
        return kind, value
    if kind is float:
        return kind, value.hex()
    if kind is tuple:
        return kind, tuple([value_key(v) for v in value])
    raise TypeError(f"no value key for {kind.__name__}")
