"""Binding: what a spec wrote for one layer → the layer type's arguments, once.

A layer's values arrive three ways — spelled by its paper token (`conv3-64`), as
short options (`/s2`, `/nobias`) and in a call (`conv(k=3, c=64)`, positional or by
keyword, under a name or an alias). Binding maps every one of them to the argument's
canonical name, refuses a value given twice, and hands the canonical values to the
layer type, which converts them and fills in defaults. Nothing else resolves aliases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from archcalc.errors import Loc, SpecError, UsageError
from archcalc.lang.ast import FunctionDef, Piece, Spec
from archcalc.lang.expr import ExprError, define, evaluate
from archcalc.layers import LayerType
from archcalc.layers.base import LayerArgError, parse_size
from archcalc.records import record
from archcalc.tensor import Shape


@record
class Value:
    """One value as the user wrote it: for an argument `key` (None: the next free one), where it stands."""

    key: str | None
    value: Any
    loc: Loc


def bind(layer: LayerType, spelled: Mapping[str, str], options: Sequence[Value], call: Sequence[Value],
         whole: Loc) -> dict[str, Any]:
    """The layer's typed arguments from its token, its `/options` and its call values.

    Options carry their text in `value` (`s2`, `nobias`, `p=1`); call values name their key
    or fill the next free argument in order. A conversion error points at the whole item.
    """
    raw: dict[str, Any] = dict(spelled)
    for option in options:
        key, value = _option(layer, option.value, option.loc)
        _set(raw, layer, key, value, option.loc, whole)
    for given in call:
        key = given.key if given.key is not None else _positional(layer, raw, given.loc)
        variadic = next((a for a in layer.args if a.name == key and a.variadic), None)
        if given.key is None and variadic is not None and key in raw:
            raw[key].append(given.value)  # reshape(12, 64, -1): one argument, many values
        elif given.key is None and variadic is not None:
            raw[key] = [given.value]
        else:
            _set(raw, layer, key, given.value, given.loc, whole)
    try:
        return layer.normalize(raw)
    except LayerArgError as e:
        hint = ("a float where a whole number is needed: convert it with int(…), round(…), floor(…) or ceil(…)"
                if e.arg and _is_float(raw.get(e.arg)) else None)
        raise SpecError(str(e), whole, hint=hint) from None


def _is_float(value: Any) -> bool:
    """A value written or computed as a float (`32.0`, `4*0.5`'s 2.0), which a whole-number argument refuses."""
    if isinstance(value, float):
        return True
    if not isinstance(value, str) or value.lstrip("-").isdigit():
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def canonical(layer: LayerType, key: str) -> str | None:
    """The argument a name or alias stands for; None when the layer has no such argument."""
    return next((a.name for a in layer.args if key in (a.name, *a.aliases)), None)


def _option(layer: LayerType, text: str, loc: Loc) -> tuple[str, Any]:
    low = text.lower()
    if low in layer.flags:
        return layer.flags[low]
    key, eq, value = low.partition("=")
    if not eq:
        letters = len(low) - len(low.lstrip("abcdefghijklmnopqrstuvwxyz_"))
        key, value = low[:letters], low[letters:]
    target = layer.options.get(key) or canonical(layer, key)
    if target is None or value == "":
        raise SpecError(f"unknown option '/{text}' for '{layer.name}'", loc, expected=_options_help(layer))
    return target, value


def _options_help(layer: LayerType) -> str:
    parts = [f"/{k}N ({v})" for k, v in layer.options.items()] + [f"/{f}" for f in layer.flags]
    return ", ".join(parts) if parts else f"no options ('{layer.name}' takes none)"


def _set(raw: dict[str, Any], layer: LayerType, key: str, value: Any, loc: Loc, whole: Loc) -> None:
    """One argument, once: `conv3-64/s2(stride=1)` is a contradiction, not an override."""
    name = canonical(layer, key)
    if name is None:
        known = ", ".join(a.name for a in layer.args) or "none"
        raise SpecError(f"'{layer.name}' has no argument '{key}' (its arguments: {known})", whole)
    if name in raw:
        raise SpecError(f"argument '{name}' of '{layer.name}' is given twice", loc)
    raw[name] = value


def _positional(layer: LayerType, raw: Mapping[str, Any], loc: Loc) -> str:
    """The next argument not yet given: positional values fill them in order."""
    collecting = [a.name for a in layer.args if a.variadic and isinstance(raw.get(a.name), list)]
    if collecting:
        return collecting[0]
    free = [a.name for a in layer.args if a.name not in raw]
    if not free:
        raise SpecError(f"too many arguments for '{layer.name}'", loc,
                        expected=", ".join(a.name for a in layer.args) or "no arguments")
    return free[0]


# -- the spec's own parameters and its input shape ------------------------------------------


BATCH = "batch"  # every spec takes `--set batch=N` (the samples per batch), declared or not


def spec_params(spec: Spec, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The values of the spec's `param` lines, in order (a value may use earlier ones);
    `overrides` replace defaults and must name parameters the spec has, or `batch`, which every
    spec has (1 unless a `param batch=N` line or the caller says otherwise). A function line
    (`param make_divisible(v, d) = …`) defines a function the later arithmetic may call."""
    names = [name for name, p in spec.params if isinstance(p, Piece)]
    unknown = [key for key in overrides if key not in names and key != BATCH]
    if unknown:
        label = spec.name or spec.source.filename
        if any(name == unknown[0] for name, _ in spec.params):
            raise UsageError(f"'{unknown[0]}' is a function of {label}, not a parameter to set")
        raise UsageError(f"{label} has no parameter '{unknown[0]}' (its parameters: {listed_params(spec)})")
    env: dict[str, Any] = {}
    for name, piece in spec.params:
        if isinstance(piece, FunctionDef):
            try:
                env[name] = define(name, piece.args, piece.body.text, env)
            except ExprError as e:
                raise SpecError(str(e), piece.body.loc) from None
        elif name in overrides:
            env[name] = _override(name, overrides[name], env)
        else:
            env[name] = evaluate_piece(piece, env)
    return env


def spec_batch(env: Mapping[str, Any], overrides: Mapping[str, Any]) -> int:
    """The samples per batch: the spec's `param batch`, else the caller's `batch`, else 1."""
    batch = env.get(BATCH, _override(BATCH, overrides[BATCH], env) if BATCH in overrides else 1)
    if not isinstance(batch, int) or batch < 1:
        raise UsageError(f"batch must be a whole number of at least 1, not {batch}")
    return batch


def listed_params(spec: Spec) -> str:
    """`width=1.0, depth=1.0`: the parameters a caller may set, with their defaults."""
    return ", ".join(f"{n}={p.text}" for n, p in spec.params if isinstance(p, Piece)) or "none"


def evaluate_piece(piece: Piece, env: Mapping[str, Any]) -> Any:
    """Arithmetic a spec wrote (`{4*c}`, `s=2`), as a positioned error when it is not."""
    try:
        return evaluate(piece.text.strip("{}"), env)
    except ExprError as e:
        raise SpecError(str(e), piece.loc) from None


def _override(name: str, value: Any, env: Mapping[str, Any]) -> Any:
    """A value from `--set k=256` (text) or the API (a number)."""
    if not isinstance(value, str):
        return value
    try:
        return evaluate(value, env)
    except ExprError:
        raise UsageError(f"parameter '{name}' must be a number (or arithmetic over the parameters "
                         f"before it), not '{value}'") from None


def parse_shape(text: str, loc: Loc | None = None) -> Shape:
    """'3x224x224' → (3, 224, 224), with a clear error for anything else."""
    try:
        shape = parse_size(text)
    except ValueError:
        raise SpecError(f"'{text}' is not a shape", loc,
                        expected="sizes joined by x, channels first: 3x224x224, 1x32x32, 64x100") from None
    if any(s < 1 for s in shape):
        raise SpecError(f"input shape '{text}' has a zero or negative size", loc,
                        expected="every size at least 1")
    if not 1 <= len(shape) <= 4:
        raise SpecError(f"input shape '{text}' has {len(shape)} axes", loc,
                        expected="F, CxL, CxHxW or CxDxHxW")
    return shape
