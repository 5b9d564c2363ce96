"""Safe arithmetic for block arguments: `{4*c}`, `{c//2}`, `s=2`."""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Mapping
from typing import Any

_OPS: dict[type, Any] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}


class ExprError(ValueError):
    pass


def evaluate(text: str, env: Mapping[str, Any]) -> Any:
    """Evaluate integer arithmetic over the names in `env`; '/' must divide exactly (where a float takes
    part it is plain division: `0.2*k/11`)."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        raise ExprError(f"'{text}' is not an arithmetic expression") from None
    return _eval(tree.body, env, text)


def _eval(node: ast.AST, env: Mapping[str, Any], text: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in env:
            known = ", ".join(sorted(env)) or "none here"
            raise ExprError(f"unknown name '{node.id}' in '{text}' (names: {known})")
        return env[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _eval(node.operand, env, text)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, env, text), _eval(node.right, env, text)
        if isinstance(node.op, ast.Div):
            if isinstance(left, float) or isinstance(right, float):  # a rate such as 0.2*k/11
                if right == 0:
                    raise ExprError(f"division by zero in '{text}'")
                return left / right
            if right == 0 or left % right:
                raise ExprError(f"'{text}' does not divide exactly (use // to floor)")
            return left // right
        if type(node.op) in _OPS:
            if isinstance(node.op, (ast.FloorDiv, ast.Mod)) and right == 0:
                raise ExprError(f"division by zero in '{text}'")
            if isinstance(node.op, ast.Pow) and abs(right) > 64:
                raise ExprError(f"exponent too large in '{text}'")
            return _OPS[type(node.op)](left, right)
    raise ExprError(f"'{text}' is not integer arithmetic over the block's arguments")


_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def substitute(text: str, env: Mapping[str, Any]) -> str:
    """Replace every {expr} in text by its value."""
    return _PLACEHOLDER.sub(lambda m: _format(evaluate(m.group(1), env)), text)


def _format(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
