"""Checking hand calculations: the figures a spec states after `=>`.

The mini-language, one comma-separated item at a time:

    conv11-96/s4/p0  => 55x55x96, weights=34848, params=34_944, macs=105415200, rf=11
    soft-max         => 1000, total params≈61M, total macs≈724.4M

- a bare shape (`55x55x96`, `96x55x55`, `4096`) or `out=`/`shape=`: the output shape, in the
  course notes' H×W×C order or PyTorch's C×H×W; either is accepted, the result says which matched;
- `params=`, `weights=`, `biases=`, `buffers=`, `macs=`, `flops=`: exact figures; digits may be
  grouped with `_` (not with `,`, which separates items);
- `key≈138M` (or `key~138M`): the figure rounds to 138 millions (K, M, G, T; decimals allowed), with
  the rounding the digits imply: `≈390K` is to the nearest 10K (385,000 … 394,999), `≈138.4M` to the
  nearest 0.1M, `≈35000` to the nearest 1,000 (trailing zeros of a whole number are not significant);
- `rf=11` (or `11x11`, `global`): the receptive-field size, when the RF pass is available;
- `total KEY...`: the same figures for the whole network instead of one layer.

A statement's figures are those of the last layer it wrote; the activation that
`hidden-activation` adds after a conv/FC is skipped, so `conv3-64 => params=1792` means the conv.
"""

from __future__ import annotations

import difflib
import re
from decimal import ROUND_HALF_UP, Decimal, localcontext

from archcalc.errors import Loc, SpecError
from archcalc.graph import Expectation, LayerGraph
from archcalc.passes.figures import claimable
from archcalc.records import record

COUNT_KEYS = claimable()  # params, weights, biases, buffers, macs, flops
KEYS = (*COUNT_KEYS, "rf", "out", "shape")
UNITS = {"k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "B": 10**9, "T": 10**12}
_SYNTAX = "a shape such as 55x55x96, or params=34944, weights=, biases=, buffers=, macs=, flops=, rf=, out="
_NUMBER = re.compile(r"\d(?:_?\d)*")
_ROUNDED = re.compile(r"(\d+(?:\.\d+)?)\s*([kKMGBT])")
_SHAPE = re.compile(r"\d+(?:\s*[x×]\s*\d+)*")


@record
class Rounded:
    """`138M`: a figure that must round to `number` × `unit`, to the place its digits imply."""

    number: Decimal
    unit: int
    text: str

    @property
    def step(self) -> Decimal:
        """The rounding the digits imply, in units: 0.1 for 138.4, 1 for 138, 10 for 390."""
        sign, digits, exponent = self.number.as_tuple()
        assert isinstance(exponent, int)
        if exponent < 0 or not any(digits):
            return Decimal(1).scaleb(exponent)
        zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
        return Decimal(1).scaleb(exponent + zeros)

    def matches(self, actual: int) -> bool:
        with localcontext() as ctx:  # exact for a figure of any size
            ctx.prec = len(str(abs(actual))) + 30
            return (Decimal(actual) / self.unit / self.step).quantize(Decimal(1), ROUND_HALF_UP) * self.step == \
                self.number

    @property
    def value(self) -> int | float:
        exact = self.number * self.unit
        return int(exact) if exact == exact.to_integral_value() else float(exact)

    def bounds(self) -> tuple[int, int]:
        """The smallest and largest whole figures that round to it."""
        with localcontext() as ctx:  # exact for a figure of any size
            ctx.prec = len(str(self.number)) + len(str(self.unit)) + 30
            half = self.step * self.unit / 2
            low, high = self.number * self.unit - half, self.number * self.unit + half
        first = int(low) if low == int(low) else int(low) + (low > 0)
        last = int(high) - 1 if high == int(high) else int(high)
        return max(first, 0), last

    def rounding(self) -> str:
        """'to the nearest 10K (385,000 to 394,999)'."""
        unit = next((k for k, v in UNITS.items() if v == self.unit and k != "k" and k != "B"), "")
        step = self.step
        place = f"{step.normalize():f}{unit}" if unit else f"{int(step):,}" if step >= 1 else f"{step.normalize():f}"
        low, high = self.bounds()
        return f"to the nearest {place} ({low:,} to {high:,})"


@record
class Claim:
    """One item after `=>`: which figure, of which node (or the whole network), and its value."""

    key: str  # shape, rf, or one of COUNT_KEYS
    value: int | tuple[int, ...] | Rounded | str
    text: str
    loc: Loc
    node: int
    total: bool = False


# -- reading the claims ---------------------------------------------------------------------


def claims(graph: LayerGraph) -> list[Claim]:
    """Every claim of every `=>` in the spec; a malformed one is a SpecError at its column."""
    try:
        return [c for e in graph.expectations for c in _parse(e)]
    except SpecError as e:
        raise (e.with_source(graph.source) if graph.source else e) from None


def _parse(exp: Expectation) -> list[Claim]:
    out: list[Claim] = []
    for offset, raw in _split(exp.text):
        loc = Loc(exp.loc.line, exp.loc.col + offset, max(1, len(raw)))
        if not raw:
            raise SpecError("empty item between commas", loc, expected=_SYNTAX)
        if re.fullmatch(r"\d{3}", raw) and out and isinstance(out[-1].value, int) and out[-1].key != "shape":
            written = out[-1].text.split("=")[-1]
            raise SpecError("commas separate items, not thousands", Loc(loc.line, loc.col - 1, 4),
                            hint=f"write {written}{raw} or group digits with _ as in 34_944")
        out.append(_claim(raw, loc, exp.node))
    return out


def _split(text: str) -> list[tuple[int, str]]:
    """Items with their offsets in `text`, whitespace trimmed."""
    items, start = [], 0
    for part in text.split(","):
        lead = len(part) - len(part.lstrip())
        items.append((start + lead, part.strip()))
        start += len(part) + 1
    return items


def _claim(raw: str, loc: Loc, node: int) -> Claim:
    total = re.match(r"total\s+", raw, re.IGNORECASE)
    body, col = (raw[total.end():], loc.col + total.end()) if total else (raw, loc.col)
    m = re.fullmatch(r"([A-Za-z_]\w*)\s*(=|≈|~)\s*(.*)", body)
    if m is None:
        if total:
            raise SpecError("'total' needs a figure", loc,
                            expected="total params=138357544 or total params≈138M")
        return Claim("shape", _shape(body, loc), raw, loc, node)
    key, op, value = m.group(1).lower(), m.group(2), m.group(3).strip()
    key_loc = Loc(loc.line, col, len(m.group(1)))
    value_loc = Loc(loc.line, col + m.start(3), max(1, len(value)))
    if key not in KEYS:
        close = difflib.get_close_matches(key, KEYS, n=1)
        raise SpecError(f"unknown figure '{m.group(1)}'", key_loc, expected=", ".join(KEYS),
                        hint=f"did you mean '{close[0]}'?" if close else None)
    key = "shape" if key == "out" else key
    if total and key not in COUNT_KEYS:
        raise SpecError(f"'total' goes with a count, not '{key}'", key_loc, expected=", ".join(COUNT_KEYS))
    if key == "shape":
        if op != "=":
            raise SpecError("a shape is exact: write out=55x55x96", key_loc)
        return Claim("shape", _shape(value, value_loc), raw, loc, node, bool(total))
    if key == "rf":
        return Claim("rf", _rf(value, value_loc), raw, loc, node)
    return Claim(key, _count(value, op, value_loc), raw, loc, node, bool(total))


def _shape(text: str, loc: Loc) -> tuple[int, ...]:
    if not _SHAPE.fullmatch(text):
        raise SpecError(f"'{text}' is not a shape or a figure", loc, expected=_SYNTAX)
    return _sizes(text, loc)


def _rf(text: str, loc: Loc) -> tuple[int, ...] | str:
    if text.lower() == "global":
        return "global"
    if not _SHAPE.fullmatch(text):
        raise SpecError(f"'{text}' is not a receptive-field size", loc,
                        expected="rf=11, rf=11x11 or rf=global")
    return _sizes(text, loc)


MAX_DIGITS = 40  # a stated figure of more digits is no figure any network has


def _sizes(text: str, loc: Loc) -> tuple[int, ...]:
    parts = re.split(r"\s*[x×]\s*", text)
    if any(len(p) > MAX_DIGITS for p in parts):
        raise SpecError(f"a size of more than {MAX_DIGITS} digits in '{text[:40]}…'", loc,
                        expected="sizes as a network has them: 55x55x96, rf=11x11")
    return tuple(int(p) for p in parts)


def _count(text: str, op: str, loc: Loc) -> int | Rounded:
    rounded = _ROUNDED.fullmatch(text)
    if rounded:
        if op == "=":
            raise SpecError(f"'{text}' is a rounded figure", loc,
                            hint=f"write ≈{text} (or ~{text}) to mean 'rounds to', or the exact figure")
        if len(rounded.group(1)) > MAX_DIGITS:
            raise SpecError(f"a figure of more than {MAX_DIGITS} digits: '{text[:40]}…'", loc,
                            expected="a rounded figure such as ≈138M or ≈15.5G")
        return Rounded(Decimal(rounded.group(1)), UNITS[rounded.group(2)], text)
    if _NUMBER.fullmatch(text):
        if len(text) > MAX_DIGITS:
            raise SpecError(f"a figure of more than {MAX_DIGITS} digits: '{text[:40]}…'", loc,
                            expected="a whole number such as 34944 or 34_944, or ≈138M")
        number = int(text.replace("_", ""))
        return Rounded(Decimal(number), 1, text) if op != "=" else number
    raise SpecError(f"'{text}' is not a figure", loc,
                    expected="a whole number such as 34944 or 34_944, or ≈138M")


