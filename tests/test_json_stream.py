"""`to_json` writes each layer as it goes (no list of every layer's dict held at once); the
document is exactly `to_dict`'s, key order included."""

from __future__ import annotations

import json

import pytest

import archcalc
from archcalc.report.formats import to_dict, to_json


@pytest.mark.parametrize("spec", ["lenet5", "resnet50", "gpt2", "googlenet"])
def test_the_streamed_document_is_to_dict(spec: str) -> None:
    analysis = archcalc.analyze(spec)
    streamed = json.loads(to_json(analysis))
    whole = json.loads(json.dumps(to_dict(analysis)))
    assert streamed == whole
    assert list(streamed) == list(whole)
    assert [list(layer) for layer in streamed["layers"]] == [list(layer) for layer in whole["layers"]]
    assert len(streamed["layers"]) == len(analysis.graph)
