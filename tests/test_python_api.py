"""docs/python-api.md: every example runs and prints what the page says (doctest, one block at
a time; a block marked `<!-- needs: pandas -->` or `torch` is skipped where that is missing)."""

from __future__ import annotations

import doctest
import importlib.util
import re
import sys
from pathlib import Path

import pytest

import archcalc
from archcalc.errors import MissingExtraError

PAGE = Path(__file__).resolve().parent.parent / "docs" / "python-api.md"
BLOCK = re.compile(r"(?:<!-- needs: (\w+) -->\n)?```pycon\n(.*?)```", re.S)


def blocks() -> list[tuple[str, str | None, str]]:
    text = PAGE.read_text(encoding="utf-8")
    found = []
    for m in BLOCK.finditer(text):
        line = text[: m.start(2)].count("\n") + 1
        found.append((f"line {line}", m.group(1), m.group(2)))
    return found


def test_the_page_has_an_example_for_every_function() -> None:
    code = "".join(b for _, _, b in blocks())
    for name in ("archcalc.analyze(", "archcalc.summary(", "archcalc.load(", "archcalc.load_text(",
                 "archcalc.build(", ".layers", ".to_dict()", ".to_pandas()", "._repr_html_()",
                 "archcalc.from_module(", "archcalc.from_onnx(", "archcalc.totals("):
        assert name in code, name
    assert set(archcalc.__all__) - {"__version__"} <= {"analyze", "summary", "load", "load_text", "build",
                                                       "from_module", "from_onnx", "totals"}


@pytest.mark.parametrize(("where", "needs", "code"), blocks(), ids=[b[0] for b in blocks()])
def test_example(where: str, needs: str | None, code: str) -> None:
    if needs and importlib.util.find_spec(needs) is None:
        pytest.skip(f"{needs} is not installed")
    parser = doctest.DocTestParser()
    test = parser.get_doctest(code, {}, f"python-api.md {where}", str(PAGE), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    out: list[str] = []
    runner.run(test, out=out.append)
    assert runner.failures == 0, "".join(out)


def test_to_pandas_without_pandas_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now fails
    message = r"needs pandas, which is not installed: pip install 'archcalc\[pandas\]'"
    with pytest.raises(MissingExtraError, match=message):
        archcalc.analyze("lenet5").to_pandas()
    assert issubclass(MissingExtraError, ImportError)


def test_summary_prints_what_report_prints(capsys: pytest.CaptureFixture[str]) -> None:
    from click.testing import CliRunner

    from archcalc.cli import cli

    archcalc.summary("resnet18")
    printed = capsys.readouterr().out
    assert printed == CliRunner().invoke(cli, ["report", "resnet18"]).output
    archcalc.summary(archcalc.analyze("resnet18"), depth=1)
    assert capsys.readouterr().out == CliRunner().invoke(cli, ["report", "resnet18", "--depth", "1"]).output


def test_the_analysis_is_still_the_passes_analysis() -> None:
    from archcalc.passes.analysis import Analysis
    from archcalc.report.formats import to_dict

    a = archcalc.analyze("vgg16")
    assert isinstance(a, Analysis) and len(repr(a)) < 120
    assert a.to_dict() == to_dict(a)
    assert [layer.params for layer in a.layers] == [a.counts[n.id].params for n in a.graph]
