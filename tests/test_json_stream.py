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


def test_write_json_writes_to_json_a_piece_at_a_time() -> None:
    import io

    from archcalc.report.formats import json_chunks, write_json

    analysis = archcalc.analyze("resnet18")
    out = io.StringIO()
    write_json(analysis, out)
    assert out.getvalue() == to_json(analysis)
    assert len(list(json_chunks(analysis))) == len(analysis.graph) + 4  # head, '[', a line per layer, ']', tail
