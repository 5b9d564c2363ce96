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

    from archcalc.report.formats import LINES_A_CHUNK, json_chunks, write_json

    analysis = archcalc.analyze("resnet18")
    out = io.StringIO()
    write_json(analysis, out)
    assert out.getvalue() == to_json(analysis)
    assert len(analysis.graph) < LINES_A_CHUNK
    assert len(list(json_chunks(analysis))) == 4  # head, the layers' lines, ']', tail


@pytest.mark.parametrize("size", [1, 2, 7, 69, 70, 71])
def test_runs_of_lines_join_into_the_same_document(size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """However many lines a piece holds (resnet18 has 70 layers), the document is the head, each
    layer's line on its own line, and the tail."""
    from archcalc.report import formats
    from archcalc.report.json_lines import layer_lines

    analysis = archcalc.analyze("resnet18")
    head = json.dumps(to_dict(analysis, layers=formats._LAYERS), indent=2, ensure_ascii=False)
    expected = head.replace(json.dumps(formats._LAYERS), "[\n    " + ",\n    ".join(layer_lines(analysis)) + "\n  ]")
    monkeypatch.setattr(formats, "LINES_A_CHUNK", size)
    chunks = list(formats.json_chunks(analysis))
    assert "".join(chunks) == expected + "\n"
    assert len(chunks) == 3 + -(-70 // size)


def test_the_report_command_writes_the_document_as_it_is() -> None:
    """`report --format json` gives stdout the document unchanged (not searched for terminal
    escapes to strip): a spec's escape character is written `\\u001b`, never as itself."""
    from click.testing import CliRunner

    from archcalc.cli import cli
    from tests.conftest import analyze_text

    spec = 'name "esc\x1b[31mred"\ninput 3x8x8\nconv3-4  # \x1b[31m a comment\n'
    result = CliRunner().invoke(cli, ["report", "-", "--format", "json"], input=spec)
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "\\u001b[31mred" in result.stdout
    assert result.stdout == to_json(analyze_text(spec, "<stdin>"))
