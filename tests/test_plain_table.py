"""The layer table drawn by report/plain_table.py is byte for byte what rich draws.

`cli.show` prints the layer table from `LayerTable.text_for` wherever that gives text, and with
rich otherwise. Each test draws a table both ways, rich as `show` drove it before (a console as
wide as the table needs when not a terminal; the terminal's own width and colour system when it
is one) and the plain way, and compares the text: every built-in spec at every depth whose table
differs, other column choices and `--only`, and generated awkward tables (long labels that fold,
wide characters, empty cells, one row, none, a title longer than the table, markup and emoji
codes that only rich reads).
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

import archcalc
from archcalc.report.columns import select
from archcalc.report.plain_table import HEADING, IMPLICIT, LAYER, PLAIN_ROWS
from archcalc.report.table import LayerTable, layer_table
from archcalc.zoo import names

PIPE: dict[str, Any] = {}  # not a terminal: what tools/output_hashes.py and the tests hash
TERMINALS: dict[str, dict[str, Any]] = {
    "standard": {"force_terminal": True, "width": 1000, "color_system": "standard"},
    "256": {"force_terminal": True, "width": 1000, "color_system": "256"},
    "truecolor": {"force_terminal": True, "width": 1000, "color_system": "truecolor"},
    "NO_COLOR": {"force_terminal": True, "width": 1000, "color_system": "truecolor", "no_color": True},
    "no colour system": {"force_terminal": True, "width": 1000, "color_system": None},
}


def rich_prints(table: LayerTable, **console: Any) -> str:
    """What rich prints for the table, as cli.show drove it."""
    out = io.StringIO()
    drawn = table.rich()
    c = Console(file=out, **console)
    if not c.is_terminal:
        needed = c.measure(drawn, options=c.options.update(width=10_000)).maximum
        c = Console(file=out, width=max(80, needed), **console)
    c.print(drawn)
    return out.getvalue()


def plain_prints(table: LayerTable, **console: Any) -> str | None:
    text = table.text_for(Console(file=io.StringIO(), **console))
    return None if text is None else text + "\n"


def same(table: LayerTable, **console: Any) -> None:
    plain = plain_prints(table, **console)
    assert plain is not None, "the plain drawing declined a table it should draw"
    drawn = rich_prints(table, **console)
    assert plain.splitlines() == drawn.splitlines()  # line by line first: a readable failure
    assert plain == drawn


def distinct_depths(analysis: Any) -> list[int | None]:
    """None (every layer) and each depth whose rows differ from every other's."""
    from archcalc.report.rows import rows

    seen, out = set(), []
    for depth in [None, *range(max((len(n.scope) for n in analysis.graph), default=0))]:
        key = tuple((r.index, r.label) for r in rows(analysis, depth))
        if key not in seen:
            seen.add(key)
            out.append(depth)
    return out


@pytest.mark.parametrize("name", names())
def test_every_built_in_spec_at_every_depth_matches_rich(name: str) -> None:
    analysis = archcalc.analyze(name)
    for depth in distinct_depths(analysis):
        same(layer_table(analysis, depth))


CHOICES = [(None, "all", None), (None, None, "weighted"), (1, "params,macs,share", "conv,fc"),
           (None, "macs", "norm,activation"), (0, "type,rf,jump,start", None)]


@pytest.mark.parametrize("name", ["resnet18", "gpt2", "siamese", "unet", "lenet5", "googlenet"])
@pytest.mark.parametrize("depth,columns,only", CHOICES)
def test_columns_and_only_match_rich(name: str, depth: int | None, columns: str | None, only: str | None) -> None:
    if name not in names():
        pytest.skip(f"no built-in {name}")
    table = layer_table(archcalc.analyze(name), depth, select(columns), only)
    same(table)
    same(table, **TERMINALS["standard"])


@pytest.mark.parametrize("terminal", TERMINALS)
@pytest.mark.parametrize("name", ["resnet18", "gpt2", "vgg16", "lenet5-paper", "efficientnet_b0"])
def test_terminals_get_riches_escape_sequences(name: str, terminal: str) -> None:
    if name not in names():
        pytest.skip(f"no built-in {name}")
    same(layer_table(archcalc.analyze(name), None), **TERMINALS[terminal])


def table(cells: list[list[str]], kinds: list[str] | None = None, title: str = "net  (input 3×32×32)",
          footer: tuple[str, ...] = ("", "total", "conv", "1,234")) -> LayerTable:
    heads = (("#", "right"), ("layer", "left"), ("type", "left"), ("params", "right"))
    return LayerTable(title, heads, cells, kinds or [LAYER] * len(cells), footer)


AWKWARD = {
    "one row": table([["1", "conv3-64", "conv", "1,792"]]),
    "no rows": table([]),
    "empty cells": table([["", "", "", ""], ["2", "x", "", ""]]),
    "label of 60": table([["1", "a" * 60, "conv", "1"]]),
    "label of 61, no spaces": table([["1", "a" * 61, "conv", "1"]]),
    "long label with spaces": table([["1", "conv1 = " + " ".join(f"word{i}" for i in range(30)), "conv", "1"]]),
    "long label, folded words": table([["1", "x " + "y" * 130 + " z", "conv", "1"]]),
    "long indented label": table([["1", "    " + "block " * 15, "conv", "1"]]),
    "long label, implicit row": table([["1", "(" + "relu " * 20 + ")", "relu", "–"]], [IMPLICIT]),
    "long heading": table([["", "  ▸ " + "stage " * 14, "", ""], ["3", "conv", "conv", "9"]], [HEADING, LAYER]),
    "connection table": table([["1", "c3 = conv5-16  [weights used 6×]  " + "[0,1,2] " * 12, "conv", "1,516"]]),
    "wide characters": table([["1", "卷积层 = conv3-64 ▸ × ", "卷积", "1,792"], ["2", "ｆｕｌｌ", "fc", "–"]]),
    "wide characters that fold": table([["1", "卷" * 45, "conv", "1"], ["2", "a" + "积" * 40, "conv", "2"]]),
    "emoji and combining marks": table([["1", "🙂 conv e\u0301", "conv", "1"]]),
    "long title": table([["1", "conv", "conv", "1"]], title="a very long network name " * 4 + "(input 3×32×32)"),
    "long title, no spaces": table([["1", "conv", "conv", "1"]], title="n" * 70),
    "no title": table([["1", "conv", "conv", "1"]], title=""),
    "markup-like label": table([["1", "conv [bold]x[/bold] \\[y]", "conv", "1"]]),
    "a colon in a label": table([["1", "slice(:, 0:2) :notanemoji:", "conv", "1"]]),
    "every kind of row": table([["", "▸ block", "", ""], ["1", "  conv3-64", "conv", "1,792"],
                                ["2", "  (relu)", "relu", "–"]], [HEADING, LAYER, IMPLICIT]),
}


@pytest.mark.parametrize("case", AWKWARD)
@pytest.mark.parametrize("output", ["pipe", "standard", "NO_COLOR"])
def test_awkward_tables_match_rich(case: str, output: str) -> None:
    same(AWKWARD[case], **(PIPE if output == "pipe" else TERMINALS[output]))


def test_what_only_rich_reads_is_left_to_rich() -> None:
    """Markup in a string cell and an emoji code in a label are rich's to draw: the plain
    drawing declines them (below PLAIN_ROWS rows), and show prints rich's table."""
    for t in [table([["1", "conv", "[bold]conv[/bold]", "1"]]), table([["1", "conv :smile:", "conv", "1"]]),
              table([["1", "conv\tx", "conv", "1"]]), table([["1", "conv", "conv", "1 "]]),
              table([["1", "conv", "conv", "1"]], title="[red]net[/red]")]:
        assert plain_prints(t) is None
        assert plain_prints(t, **TERMINALS["standard"]) is None


def test_a_terminal_narrower_than_the_table_is_left_to_rich() -> None:
    t = table([["1", "conv3-64 " * 6, "conv", "1,792"]])
    assert plain_prints(t, force_terminal=True, width=50, color_system="standard") is None
    same(t, force_terminal=True, width=len(rich_prints(t).splitlines()[1]), color_system="standard")


def test_jupyter_and_an_output_that_is_not_unicode_are_left_to_rich() -> None:
    t = table([["1", "conv", "conv", "1"]])
    assert plain_prints(t, force_jupyter=True) is None
    ascii_file = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    assert t.text_for(Console(file=ascii_file)) is None  # rich draws an ASCII box there


def test_a_huge_table_is_drawn_plain_even_in_a_narrow_terminal() -> None:
    t = table([[str(i), "conv", "conv", "1"] for i in range(PLAIN_ROWS + 1)])
    text = plain_prints(t, force_terminal=True, width=20, color_system="standard")
    assert text is not None and text.count("\n") == PLAIN_ROWS + 8  # title, header 3, rows, footer 3
