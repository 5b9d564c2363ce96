"""Hints for a misspelled name: "did you mean …?", and a known token with its numbers wrong."""

from __future__ import annotations

import difflib
import re

from archcalc.errors import Loc, SpecError
from archcalc.layers import find


def did_you_mean(word: str, candidates: list[str]) -> str | None:
    """The closest candidate, keeping the numbers a paper token spelled (covn3-384 → conv3-384)."""
    low = word.lower()
    close = difflib.get_close_matches(low, candidates, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    prefix = low.rstrip("0123456789-x/.")
    stem = prefix.split("-")[0].rstrip("0123456789x")
    close = difflib.get_close_matches(stem, candidates, n=1, cutoff=0.6) if stem else []
    if close and stem != low:
        return f"did you mean '{close[0]}{low[len(stem):]}'?"
    return None


def refuse_malformed_token(head: str, loc: Loc) -> None:
    """`conv3-6q`: a known layer's token with its numbers wrong gets its own message."""
    stem = re.match(r"[a-z]+(-[a-z]+)*", head.lower())
    found = find(stem.group(0)) if stem else None
    if found is not None and found[0].patterns:
        layer = found[0]
        raise SpecError(f"malformed '{layer.name}' token '{head}'", loc, expected=layer.example)
