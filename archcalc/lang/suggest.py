"""Hints for a misspelled name: "did you mean …?", and a known token with its numbers wrong.

A suggestion must be the same operation misspelled, never another one that merely looks
alike: `convtranspose` is not a `transpose`, `pad` is not `add`, `prelu` is not `relu`. So a
candidate is refused when the word has a family stem (conv, pool, norm, …) the candidate does
not share, when the word is the candidate with letters added in front or behind (a compound
names another operation), or when a short word starts with another letter. Operations other
tools have and archcalc has not are named as missing, honestly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from archcalc.errors import Loc, SpecError
from archcalc.layers import REGISTRY, find

# a stem in the word → the kind of layer it names
FAMILY_STEMS = (("conv", "conv"), ("pool", "pool"), ("norm", "norm"), ("lstm", "recurrent"), ("gru", "recurrent"),
                ("rnn", "recurrent"), ("embed", "embedding"), ("attn", "attention"), ("attention", "attention"))

# operations people name that archcalc has no layer type for (yet): word → what it is
ELSEWHERE = {
    "deformable-conv": "a deformable convolution", "deform-conv": "a deformable convolution",
    "deformconv": "a deformable convolution",
}


def did_you_mean(word: str, candidates: list[str], kinds: Mapping[str, str] | None = None,
                 token: bool = False) -> str | None:
    """The closest candidate; for a layer `token`, the closest layer name with the numbers the
    paper token spelled kept (covn3-384 → conv3-384). A name (a node's, a parameter's) is only
    ever offered as it is: `@n9` among n0 and n1 is not 'n09'.

    With `kinds` (candidate → its layer kind), only a candidate of the word's family is offered.
    """
    import difflib  # only an error needs it: no spec that reads well pays for its import

    low = word.lower()
    allowed = [c for c in candidates if _same_operation(low, c, kinds)]
    close = difflib.get_close_matches(low, allowed, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    if not token:
        return None
    prefix = low.rstrip("0123456789-x/.")
    stem = prefix.split("-")[0].rstrip("0123456789x")
    close = difflib.get_close_matches(stem, allowed, n=1, cutoff=0.6) if stem else []
    if close and stem != low and _same_operation(stem, close[0], kinds):
        return f"did you mean '{close[0]}{low[len(stem):]}'?"
    return None


def _same_operation(word: str, candidate: str, kinds: Mapping[str, str] | None) -> bool:
    stem = word.split("-")[0].rstrip("0123456789x") or word
    if candidate in stem and len(stem) - len(candidate) >= 2:
        return False  # convtranspose ⊃ transpose: letters added make another operation
    if len(stem) <= 4 and stem[:1] != candidate[:1]:
        return False  # pad / add: a short word misspelled keeps its first letter
    if kinds is not None:
        family = next((kind for s, kind in FAMILY_STEMS if s in stem), None)
        if family is not None and kinds.get(candidate) != family:
            return False
    return True


def missing_layer(word: str) -> str | None:
    """'… is an operation archcalc has no layer type for yet' where the word names one."""
    low = re.sub(r"\d+(d)?$", "", word.lower().replace("_", "-"))  # ConvTranspose2d → convtranspose
    what = ELSEWHERE.get(low) or ELSEWHERE.get(low.replace("-", ""))
    if what is None or find(low) is not None:
        return None
    return f"'{word}' is {what}, which archcalc has no layer type for yet ('archcalc layers' lists those it has)"


def layer_kinds() -> dict[str, str]:
    """Every layer name and alias → its kind (for family-aware suggestions)."""
    return {key: t.kind for t in REGISTRY.values() for key in (t.name, *t.aliases)}


def refuse_malformed_token(head: str, loc: Loc) -> None:
    """`conv3-6q`: a known layer's token with its numbers wrong gets its own message."""
    stem = re.match(r"[a-z]+(-[a-z]+)*", head.lower())
    found = find(stem.group(0)) if stem else None
    if found is not None and found[0].patterns:
        layer = found[0]
        raise SpecError(f"malformed '{layer.name}' token '{head}'", loc, expected=layer.example)
