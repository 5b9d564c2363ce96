"""Members of a family: a spec that says `use efficientnet` is that family spec with its own
parameter values, name and input shape (`specs/efficientnet_b1.arch` is EfficientNet with
depth 1.1 at 240×240).

A member holds only header lines: `use`, `name`, `input` and `param`. Its `param` values
replace the family's defaults (each must name a parameter the family has); the caller's
values (`--set depth=1.2`) replace both. Only one level: a family uses no other family.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from archcalc.errors import SpecError
from archcalc.lang.ast import Piece, Spec
from archcalc.lang.bind import listed_params, parse_shape, spec_params
from archcalc.lang.expr import ExprError, substitute
from archcalc.lang.suggest import did_you_mean

if TYPE_CHECKING:
    from archcalc.lang.expand import InputShapes


def derive(member: Spec, family: Spec, input_shape: InputShapes | None,
           params: Mapping[str, Any] | None) -> tuple[Spec, InputShapes | None, dict[str, Any]]:
    """The family spec to expand for `member`, the input shape and the parameter values.

    Errors in the member (a line it may not hold, a parameter the family lacks) point into the
    member's text; the family's own errors point into the family's.
    """
    assert member.uses is not None
    what = f"'use {member.uses.text}'"
    extra = (member.body[0].loc if member.body else
             next(iter(member.blocks.values())).loc if member.blocks else
             member.hidden_activation.loc if member.hidden_activation else None)
    if extra is not None:
        raise SpecError(f"a spec with {what} is the family with other values: it holds only name, input "
                        f"and param lines", extra,
                        expected="'param depth=1.1', 'input 3x240x240', 'name efficientnet_b1'")
    if family.uses is not None:
        raise SpecError(f"family '{member.uses.text}' uses '{family.uses.text}' in turn; a family stands alone",
                        member.uses.loc)
    known = [name for name, p in family.params if isinstance(p, Piece)]
    for name, piece in member.params:
        if not isinstance(piece, Piece):
            raise SpecError(f"a spec with {what} sets the family's parameters; it defines no functions",
                            piece.loc)
        if name not in known:
            raise SpecError(f"family '{member.uses.text}' has no parameter '{name}' (its parameters: "
                            f"{listed_params(family)})", piece.loc, hint=did_you_mean(name, known))
    values = spec_params(member, {})
    shape: InputShapes | None = input_shape
    if shape is None and member.inputs:
        if len(member.inputs) > 1 or member.inputs[0].name != "input" or member.inputs[0].layout is not None:
            raise SpecError(f"a spec with {what} gives one input shape, as in 'input 3x240x240'",
                            member.inputs[-1].loc)
        piece = member.inputs[0].shape
        try:
            text = substitute(piece.text, values)
        except ExprError as e:
            raise SpecError(str(e), piece.loc) from None
        shape = parse_shape(text, piece.loc)
    name = member.name or member.source.filename.rsplit("/", 1)[-1].split(".")[0]
    return replace(family, name=name), shape, {**values, **(params or {})}
