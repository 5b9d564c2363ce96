"""Safe arithmetic for spec parameters and block arguments: `{4*c}`, `{c//2}`, `s=2`,
`{max(8, int(c*width + 4) // 8 * 8)}`, `{2 if s == 1 else 1}`.

A small evaluator over Python's expression syntax, bounded and closed: numbers, names from
the environment, `+ - * / // % **`, comparisons, `and`/`or`/`not`, `a if cond else b`, and
calls of the functions in `FUNCTIONS` only (no attribute access, no other calls, no
subscripts). Whole numbers stay exact integers: `/` of two integers that divides exactly is
an integer, `round`, `floor`, `ceil` and `int` give integers, and a comparison gives 1 or 0.
Anything else that mixes in a float (`0.9 * c`, `7 / 2`) is a float, which a size refuses
(`whole_number`): a spec converts it explicitly with `int`, `round`, `floor` or `ceil`.
Every value is bounded (`MAX_BITS`, finite floats, exponents up to 64), so no expression
can hang or exhaust memory.
"""

from __future__ import annotations

import ast
import math
import operator
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from archcalc.records import record

MAX_LENGTH = 2_000  # characters of one expression
MAX_BITS = 1_024  # an integer larger than 2**1024 is refused
MAX_EXPONENT = 64
MAX_CALLS = 10_000  # calls of the spec's own functions in one evaluation

Number = int | float


class ExprError(ValueError):
    pass


@record
class Function:
    """A function the spec defines (`param make_divisible(v, d) = …`): its body sees its
    arguments and the names defined before it, so it can call only earlier functions."""

    name: str
    args: tuple[str, ...]
    body: str
    env: Mapping[str, Any] = field(repr=False, compare=False)
    tree: ast.Expression | None = field(default=None, repr=False, compare=False)
    results: dict[tuple[Any, ...], Any] = field(default_factory=dict, repr=False, compare=False)  # pure: memoised

    def __str__(self) -> str:
        return f"{self.name}({', '.join(self.args)})"


@dataclass
class _Budget:
    calls: int = 0


def _round(x: Number, digits: Number | None = None) -> Number:
    if digits is None:
        return round(x)  # half to even, as Python, numpy and torch round
    return round(x, _whole(digits, "round's digits"))


def _log(x: Number, base: Number | None = None) -> float:
    if x <= 0 or (base is not None and (base <= 0 or base == 1)):
        raise ExprError(f"log({x}{'' if base is None else f', {base}'}) is not defined")
    return math.log(x) if base is None else math.log(x, base)


def _sqrt(x: Number) -> float:
    if x < 0:
        raise ExprError(f"sqrt({x}) is not defined")
    return math.sqrt(x)


def _min_max(f: Callable[..., Number]) -> Callable[..., Number]:
    def g(*xs: Number) -> Number:
        if len(xs) < 2:
            raise ExprError(f"{f.__name__} takes two or more values")
        return f(xs)

    g.__name__ = f.__name__
    return g


# name → (function, fewest arguments, most arguments)
FUNCTIONS: dict[str, tuple[Callable[..., Number], int, int | None]] = {
    "min": (_min_max(min), 2, None),
    "max": (_min_max(max), 2, None),
    "abs": (abs, 1, 1),
    "int": (int, 1, 1),  # towards zero, as Python's int()
    "float": (float, 1, 1),
    "round": (_round, 1, 2),  # to the nearest whole number, half to even
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
    "log": (_log, 1, 2),  # natural, or log(x, base)
    "sqrt": (_sqrt, 1, 1),
}

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
}


def define(name: str, args: tuple[str, ...], body: str, env: Mapping[str, Any]) -> Function:
    """The spec's function `name(args) = body`, seeing `env` (what is defined before it)."""
    source = body.strip()
    if name in FUNCTIONS:
        raise ExprError(f"a function named '{name}' would hide archcalc's {name}()")
    if len(source) > MAX_LENGTH:
        raise ExprError(f"a function body of {len(source):,} characters is too long (at most {MAX_LENGTH:,})")
    tree = _parse(source)
    if tree is None:
        raise ExprError(f"'{_shown(body)}' is not an arithmetic expression")
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    for n in ast.walk(tree):
        if isinstance(n, ast.Name) and n.id not in args and n.id not in env and n.id not in called:
            known = ", ".join(sorted({*args, *env})) or "none here"
            raise ExprError(f"unknown name '{n.id}' in {name}() (names: {known})")
    for f in sorted(called):
        if f not in FUNCTIONS and not isinstance(env.get(f), Function):
            what = "itself" if f == name else f"'{f}', which is not a function defined before it"
            raise ExprError(f"{name}() calls {what} (functions: {', '.join(FUNCTIONS)})")
    return Function(name, args, source, dict(env), tree)


def evaluate(text: str, env: Mapping[str, Any]) -> Any:
    """The value of an arithmetic expression over the names in `env` (int or float)."""
    source = text.strip()
    if len(source) > MAX_LENGTH:
        raise ExprError(f"an expression of {len(source):,} characters is too long (at most {MAX_LENGTH:,})")
    tree = _parse(source)
    if tree is None:
        raise ExprError(f"'{_shown(text)}' is not an arithmetic expression")
    try:
        return _eval(tree.body, env, _shown(text), _Budget())
    except RecursionError:
        raise ExprError(f"'{_shown(text)}' nests too deeply") from None


@lru_cache(maxsize=4096)
def _parse(source: str) -> ast.Expression | None:
    """The syntax tree of an expression (a block body evaluates the same texts at every call).

    Python's own SyntaxWarning ('invalid decimal literal' for `2input`) is silenced: the
    positioned error that follows is the message."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(source, mode="eval")
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return None


def _shown(text: str) -> str:
    """The expression as error messages quote it: a very long one shortened."""
    return text if len(text) <= 80 else text[:77] + "…"


def whole_number(value: Any, text: str) -> int:
    """`value` as a size: a whole number; a float must be converted by the spec, never silently."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ExprError(f"'{text}' is not a number")
    if isinstance(value, float):
        raise ExprError(f"'{text}' is {value!r}, not a whole number: convert it with int(…), round(…), "
                        f"floor(…) or ceil(…)")
    return value


def _whole(value: Any, what: str) -> int:
    if isinstance(value, float) or not isinstance(value, int):
        raise ExprError(f"{what} must be a whole number, not {value!r}")
    return value


def _checked(value: Any, text: str) -> Any:
    """Every intermediate value: a bounded integer or a finite float (a comparison: 1 or 0)."""
    kind = type(value)
    if kind is int:
        if value.bit_length() > MAX_BITS:
            raise ExprError(f"'{text}' is too large (more than 2**{MAX_BITS})")
        return value
    if kind is float and math.isfinite(value):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        if value.bit_length() > MAX_BITS:
            raise ExprError(f"'{text}' is too large (more than 2**{MAX_BITS})")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ExprError(f"'{text}' is not a finite number")
        return value
    if isinstance(value, Function):
        raise ExprError(f"'{text}' uses the function {value.name} as a number: call it, {value}")
    raise ExprError(f"'{text}' is not a number")


def _eval(node: ast.AST, env: Mapping[str, Any], text: str, budget: _Budget) -> Any:
    return _checked(_value(node, env, text, budget), text)


def _value(node: ast.AST, env: Mapping[str, Any], text: str, budget: _Budget) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in env:
            known = ", ".join(sorted(env)) or "none here"
            hint = f"; {node.id}(…) is a function" if node.id in FUNCTIONS else ""
            raise ExprError(f"unknown name '{node.id}' in '{text}' (names: {known}){hint}")
        return env[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
        value = _eval(node.operand, env, text, budget)
        if isinstance(node.op, ast.Not):
            return int(not value)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        return _binary(node, _eval(node.left, env, text, budget), _eval(node.right, env, text, budget), text)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, env, text, budget)
        for op, right_node in zip(node.ops, node.comparators):
            if type(op) not in _COMPARE:
                break
            right = _eval(right_node, env, text, budget)
            if not _COMPARE[type(op)](left, right):
                return 0
            left = right
        else:
            return 1
    if isinstance(node, ast.BoolOp):
        want = isinstance(node.op, ast.Or)  # `or` stops at the first true value, `and` at the first false
        for operand in node.values:
            if bool(_eval(operand, env, text, budget)) == want:
                return int(want)
        return int(not want)
    if isinstance(node, ast.IfExp):  # only the branch taken is evaluated
        return _eval(node.body if _eval(node.test, env, text, budget) else node.orelse, env, text, budget)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords \
            and not any(isinstance(a, ast.Starred) for a in node.args):
        args = [_eval(a, env, text, budget) for a in node.args]
        own = env.get(node.func.id)
        if isinstance(own, Function):
            return _apply(own, args, text, budget)
        return _call(node.func.id, args, text)
    raise ExprError(f"'{text}' is not arithmetic over the spec's parameters and the block's arguments "
                    f"(numbers, + - * / // % **, comparisons, 'a if c else b', {', '.join(FUNCTIONS)})")


def _binary(node: ast.BinOp, left: Any, right: Any, text: str) -> Any:
    if isinstance(node.op, ast.Div):
        if right == 0:
            raise ExprError(f"division by zero in '{text}'")
        if isinstance(left, int) and isinstance(right, int) and left % right == 0:
            return left // right  # whole numbers stay exact
        return left / right
    if type(node.op) not in _BINARY:
        raise ExprError(f"'{text}' uses an operator archcalc does not evaluate (only + - * / // % **)")
    if isinstance(node.op, (ast.FloorDiv, ast.Mod)) and right == 0:
        raise ExprError(f"division by zero in '{text}'")
    if isinstance(node.op, ast.Pow):
        if abs(right) > MAX_EXPONENT:
            raise ExprError(f"exponent too large in '{text}'")
        if left == 0 and right < 0:
            raise ExprError(f"division by zero in '{text}'")
        if left < 0 and isinstance(right, float) and not right.is_integer():
            raise ExprError(f"'{text}' raises a negative number to a fractional power")
    try:
        return _BINARY[type(node.op)](left, right)
    except OverflowError:
        raise ExprError(f"'{text}' is too large") from None


def _apply(f: Function, args: list[Any], text: str, budget: _Budget) -> Any:
    """A call of the spec's own function: its body over its arguments and what it saw."""
    if len(args) != len(f.args):
        raise ExprError(f"{f.name}() takes {len(f.args)} argument{'s' if len(f.args) != 1 else ''}, "
                        f"got {len(args)} in '{text}'")
    key = tuple((type(a), a) for a in args)  # f(1) and f(1.0) may differ: 2 and 2.0
    if key in f.results:
        return f.results[key]
    budget.calls += 1
    if budget.calls > MAX_CALLS:
        raise ExprError(f"'{text}' calls the spec's functions more than {MAX_CALLS:,} times")
    tree = f.tree or _parse(f.body)
    assert tree is not None  # define() parsed it
    result = f.results[key] = _eval(tree.body, {**f.env, **dict(zip(f.args, args))}, text, budget)
    return result


def _call(name: str, args: list[Any], text: str) -> Any:
    given = len(args)
    if name not in FUNCTIONS:
        raise ExprError(f"'{name}' is not a function archcalc evaluates in '{text}' (functions: "
                        f"{', '.join(FUNCTIONS)}, and those the spec defines with 'param f(x) = …')")
    function, fewest, most = FUNCTIONS[name]
    if given < fewest or (most is not None and given > most):
        takes = f"{fewest}" if fewest == most else f"{fewest} or more" if most is None else f"{fewest} to {most}"
        raise ExprError(f"{name}() takes {takes} argument{'s' if most != 1 else ''}, got {given} in '{text}'")
    try:
        return function(*args)
    except ExprError:
        raise
    except OverflowError:
        raise ExprError(f"'{text}' is too large") from None
    except (ValueError, TypeError) as e:
        raise ExprError(f"{name}() in '{text}': {e}") from None


_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def substitute(text: str, env: Mapping[str, Any], whole: bool = True) -> str:
    """Replace every {expr} in text by its value. Where `whole` (a token's head and options,
    which spell sizes) each value must be a whole number; elsewhere a float is written exactly."""
    def value(m: re.Match[str]) -> str:
        result = evaluate(m.group(1), env)
        if whole:
            return str(whole_number(result, m.group(1)))
        return repr(result) if isinstance(result, float) else str(result)

    return _PLACEHOLDER.sub(value, text)
