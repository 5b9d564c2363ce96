"""The table report printed to a pipe or a file without rich is byte for byte what rich prints.

`cli.show` prints each part of the table report (the layer table, the summary, the totals by kind,
the warnings) from its `plain_text()` where `plain_output` finds the output is no terminal, and
through rich otherwise. Each test prints the same report both ways, rich as `show` drove it before
(`plain_output` answering no) and the plain way, and compares the bytes: every built-in spec at
its readable depth and `--quiet`, other depths, column choices, `--only`, specs with warnings,
several inputs, shared and tied weights, frozen layers, a batch, a counting convention, training
lines. The rest holds the pieces the plain path relies on to rich itself: its single-cell
characters, its terminal rules, and the text it declines.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import pytest
from rich.cells import cell_len
from rich.console import Console

import archcalc.cli
from archcalc.cli import cli
from archcalc.report import plain_table as plain
from archcalc.report.table import KindTable, Styled
from archcalc.zoo import names


def report(args: list[str], monkeypatch: pytest.MonkeyPatch, *, with_rich: bool) -> str:
    """What `archcalc report ARGS` prints to a pipe: plain, or every part through rich."""
    with monkeypatch.context() as m:
        if with_rich:
            m.setattr(archcalc.cli, "plain_output", lambda file=None: False)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            cli.main(["report", *args], prog_name="archcalc", standalone_mode=False)
    return out.getvalue()


def same(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    plain_bytes = report(args, monkeypatch, with_rich=False)
    rich_bytes = report(args, monkeypatch, with_rich=True)
    assert plain_bytes.splitlines() == rich_bytes.splitlines()  # line by line first: a readable failure
    assert plain_bytes == rich_bytes


@pytest.mark.parametrize("spec", names())
def test_every_built_in_spec_prints_as_rich_prints_it(spec: str, monkeypatch: pytest.MonkeyPatch) -> None:
    same([spec], monkeypatch)
    same([spec, "--quiet"], monkeypatch)


OPTIONS = [["--depth", "0"], ["--depth", "1"], ["--depth", "3"], ["--columns", "all"], ["--only", "conv"],
           ["--batch", "4"], ["--convention", "torchinfo"], ["--convention", "fvcore"], ["--training"],
           ["--dtype", "float16", "--optimizer", "sgd"]]


# warnings (resnet18's floored divisions), several inputs (siamese), tied weights (gpt2),
# attention and a KV cache (gpt2, llama), a recurrent network, an encoder-decoder with skips
@pytest.mark.parametrize("spec", ["resnet18", "siamese", "gpt2", "llama", "lstm-lm", "unet"])
@pytest.mark.parametrize("options", OPTIONS, ids=" ".join)
def test_options_print_as_rich_prints_them(spec: str, options: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    same([spec, *options], monkeypatch)


SHARED_AND_FROZEN = """input 3x32x32
conv3-8/pad1
conv3-8/pad1/frozen
conv3-8/pad1 as twin
twin
relu
global-avgpool
fc-10
"""


def test_shared_and_frozen_weights_print_as_rich_prints_them(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The summary's optional clauses: shared weights counted once, trainable and frozen."""
    spec = tmp_path / "shared.arch"
    spec.write_text(SHARED_AND_FROZEN, encoding="utf-8")
    text = report([str(spec)], monkeypatch, with_rich=False)
    assert "shared and tied weights counted once" in text and "frozen" in text
    same([str(spec)], monkeypatch)


def rich_prints(part: Any) -> str:
    """What rich printed for a part to a pipe, as `cli.show` drove it."""
    out = io.StringIO()
    console = Console(file=out)
    needed = console.measure(part, options=console.options.update(width=10_000)).maximum
    Console(file=out, width=max(80, needed)).print(part)
    return out.getvalue()


@pytest.mark.parametrize("pieces", [
    (("", ""),),
    (("one line", "bold"),),
    (("\nwarning: a", "yellow"), ("\nwarning: b", "yellow")),
    (("trailing spaces   ", ""), ("\n  leading", "cyan")),
    (("wide 漢字 and ᵀ – − ×", "bold"), ("\n" + "x" * 4_000, "")),
    (("[bold]markup[/bold] and :smile: are text here", ""),),
    (("y " * 4_999, ""),),  # one line as wide as the widest console
])
def test_styled_text_prints_as_rich_prints_it(pieces: tuple[tuple[str, str], ...]) -> None:
    styled = Styled(pieces)
    text = styled.plain_text()
    assert text is not None
    assert text + "\n" == rich_prints(styled)


@pytest.mark.parametrize("pieces", [
    (("a\ttab", ""),),  # rich expands it
    (("a\rreturn", ""),),  # rich strips it
    (("z " * 5_001, ""),),  # wider than the widest console: rich wraps it
    (("漢" * 5_001, ""),),
])
def test_styled_text_rich_would_change_is_left_to_rich(pieces: tuple[tuple[str, str], ...]) -> None:
    styled = Styled(pieces)
    assert styled.plain_text() is None
    assert rich_prints(styled) != "".join(p for p, _ in pieces) + "\n"  # the declining is needed


@pytest.mark.parametrize("cells", [
    [],
    [["conv", "1,000", "100.00%", "0", "0.00%", "12", "100.00%"]],
    [["conv", "1", "50.00%", "2", "50.00%", "3", "50.00%"], ["漢字", "1", "–", "2", "−", "3", "ᵀ"]],
    [["a-kind-with-a-long-name-wider-than-its-title", "123,456,789,012", "1.00%", "0", "0.00%", "1", "0.01%"]],
])
def test_the_kinds_table_prints_as_rich_prints_it(cells: list[list[str]]) -> None:
    table = KindTable(cells)
    text = table.plain_text()
    assert text is not None
    assert text + "\n" == rich_prints(table)


@pytest.mark.parametrize("cell", ["[bold]x", ":smile:", " padded", "tab\t"])
def test_a_kinds_table_rich_would_read_otherwise_is_left_to_rich(cell: str) -> None:
    assert KindTable([[cell, "1", "100.00%", "0", "0.00%", "1", "100.00%"]]).plain_text() is None


def test_every_character_measured_without_rich_takes_one_cell_in_rich() -> None:
    wrong = [hex(ord(c)) for c in plain._SINGLE_CELLS if cell_len(c) != 1]
    assert wrong == []
    assert plain.cells("漢字 ×") == cell_len("漢字 ×") == 6  # others are measured by rich


class Stream(io.StringIO):
    def __init__(self, tty: bool, encoding: str = "utf-8") -> None:
        super().__init__()
        self.tty, self._encoding = tty, encoding

    def isatty(self) -> bool:
        return self.tty

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._encoding


@pytest.mark.parametrize("tty", [False, True])
@pytest.mark.parametrize("env", [{}, {"FORCE_COLOR": "1"}, {"FORCE_COLOR": ""}, {"TTY_COMPATIBLE": "0"},
                                 {"TTY_COMPATIBLE": "1"}, {"TTY_COMPATIBLE": "0", "FORCE_COLOR": "1"},
                                 {"TTY_COMPATIBLE": "2", "FORCE_COLOR": "1"}, {"NO_COLOR": "1"}, {"TERM": "dumb"}])
def test_plain_output_is_where_rich_sees_no_terminal(tty: bool, env: dict[str, str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    stream = Stream(tty)
    console = Console(file=stream)
    assert archcalc.cli.plain_output(stream) == (not console.is_terminal)


def test_plain_output_leaves_an_ascii_file_to_rich() -> None:
    """rich draws an ASCII box for a file that is not UTF-8."""
    assert archcalc.cli.plain_output(Stream(False, "ascii")) is False
    assert archcalc.cli.plain_output(Stream(False, "UTF-8")) is True
