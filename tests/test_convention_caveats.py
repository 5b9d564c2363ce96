"""A convention's caveats name their nodes as a walk of every node would: picked out of the groups
in C and shared between conventions that flag the same groups (passes/conventions.py `_caveats`)."""

from __future__ import annotations

import pytest

from archcalc import load_text
from archcalc.passes import conventions
from archcalc.passes.analysis import analyze
from archcalc.zoo import names, read

SPECS = [n for n in ("mobilenet_v2", "gpt2", "vit_b_16", "inception_v3", "lenet5", "resnet18") if n in names()]


def _walked(same: conventions.Alike, terms: list[conventions.Term]) -> list[tuple[str, str, tuple[int, ...]]]:
    """The caveats as the pass once made them: every node visited, in id order."""
    found: dict[tuple[str, str], list[int]] = {}
    for node_id, k in enumerate(same.of):
        if terms[k].caveat:
            found.setdefault((same.facts[k].type, terms[k].caveat or ""), []).append(node_id)
    return [(t, text, tuple(ids)) for (t, text), ids in found.items()]


@pytest.mark.parametrize("name", SPECS)
def test_the_caveats_are_a_walk_of_every_node(name: str) -> None:
    analysis = analyze(load_text(read(name).text))
    same = conventions.alike(analysis.graph, analysis.macs)
    flagged = {}
    for convention, counted in analysis.conventions.items():
        terms = [conventions._term(conventions.get(convention), f) for f in same.facts]
        want = _walked(same, terms)
        assert [(c.layer_type, c.text, c.layers) for c in counted.caveats] == want, (name, convention)
        flagged[convention] = len(want)
    if name in ("gpt2", "vit_b_16"):  # layers several tools cannot count as archcalc does
        assert sum(1 for k in flagged.values() if k) > 1, flagged
