"""The layer table drawn as text, byte for byte as rich draws it, without rich's per-cell work.

rich measures, wraps and styles every cell of every row, and `cli.show` measures the whole
table once more to size a console that is not a terminal (a millisecond or more a row here; a
100,000-layer report would take minutes). This module writes the same bytes for the layer
table in one pass over cells whose widths it knows: the heavy-head box, one space of padding,
the title centred over the table (and wrapped like rich where it is longer), a folding label
column, and, on a terminal, rich's escape sequences for the row styles (bold header and
footer, italic title, `dim` implicit rows, `bold cyan` block headings). It draws only what it
can draw exactly: `usual` says whether the cells hold nothing rich would read differently
(markup, emoji codes, control characters), and the caller leaves a terminal narrower than
the table to rich, which shrinks columns. tests/test_plain_table.py compares the bytes with
rich's on every built-in spec and on awkward cases. The totals by kind of layer are drawn here
too (a title to the left, no footer: `draw`'s keywords), held to rich by tests/test_plain_report.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from archcalc.records import record

PLAIN_ROWS = 2_000  # past this many rows the plain drawing is used even where rich would differ (rich: minutes)

HEADING, IMPLICIT, LAYER = "heading", "implicit", "layer"

WIDEST = 10_000  # cli.show measures a part within this many cells: the widest console it makes


@record
class Styles:
    """The escape sequences that open and close each style rich gives the table's parts; all
    empty when the output takes no styles (not a terminal, or no colour system)."""

    title: tuple[str, str] = ("", "")
    header: tuple[str, str] = ("", "")  # header and footer (bold)
    implicit: tuple[str, str] = ("", "")  # an implicit layer's row (dim)
    heading: tuple[str, str] = ("", "")  # a block heading's label (bold cyan)


NO_STYLES = Styles()


def console_styles(console: Any) -> Styles:
    """The sequences `console` writes for the table's styles (its colour system, NO_COLOR)."""
    from rich.console import COLOR_SYSTEMS  # the console's colour system by the name it gives

    def pair(name: str) -> tuple[str, str]:
        style = console.get_style(name)
        if console.no_color:
            style = style.without_color
        on, _, off = style.render("\0", color_system=COLOR_SYSTEMS.get(console.color_system),
                                  legacy_windows=console.legacy_windows).partition("\0")
        return on, off

    return Styles(pair("table.title"), pair("bold"), pair("dim"), pair("bold cyan"))


# what rich would not print as it is: markup in a string cell, an emoji code (':name:'), a
# control character (rich strips or expands them), whitespace before the end of a right-aligned cell
_MARKUP = re.compile(r"\[")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_TRAILING = re.compile(r"\s(?:\0|$)")  # cells joined by NUL


def usual(title: str, heads: Sequence[tuple[str, str]], rows: Sequence[Sequence[str]], kinds: Sequence[str],
          footer: Sequence[str], fold: int) -> bool:
    """Whether `draw` writes exactly what rich would for these cells (rich reads markup and emoji
    codes in every string cell but the label, which is escaped, and in no heading, a Text)."""
    columns = list(zip(*rows)) if rows else [() for _ in heads]
    strings = [title, *(h for h, _ in heads), *footer]
    for i, column in enumerate(columns):
        if i != fold:
            strings += column
    marked, labels = "".join(strings), "".join(columns[fold]) if columns else ""
    if _MARKUP.search(marked) or _CONTROL.search(marked) or _CONTROL.search(labels):
        return False
    right = [(h, footer[i], *columns[i]) for i, (h, j) in enumerate(heads) if j == "right"]
    if any(_TRAILING.search("\0".join(c)) for c in right):
        return False
    if ":" in marked or ":" in labels:
        from rich.markup import escape, render  # the cells as rich reads them: emoji codes replaced

        said = [s for s in strings if ":" in s]
        said += [label for label, kind in zip(columns[fold], kinds) if ":" in label and kind != HEADING]
        return all(render(escape(s)).plain == s for s in said)
    return True


def draw(title: str, heads: Sequence[tuple[str, str]], rows: Sequence[Sequence[str]], kinds: Sequence[str],
         footer: Sequence[str], fold: int, fold_width: int, styles: Styles = NO_STYLES, *,
         title_justify: str = "center", show_footer: bool = True) -> str:
    """The table's text: `heads` are (title, justify) per column, `kinds` each row's kind
    (HEADING, IMPLICIT or LAYER); column `fold` is at most `fold_width` wide and folds longer cells.
    Without `show_footer` the table ends at its last row (pass empty footer cells)."""
    columns = _columns(heads, rows, footer, fold, fold_width)
    plain = _Rows(columns, fold, ("", ""))
    bold = _Rows(columns, fold, styles.header)
    dim = _Rows(columns, fold, styles.implicit)
    on, off = styles.heading
    widths = [c.width for c in columns]
    bar = ["━" * (w + 2) for w in widths]
    thin = ["─" * (w + 2) for w in widths]
    t_on, t_off = styles.title
    width = sum(widths) + 3 * len(widths) + 1
    text = [f"{t_on}{line}{t_off}" for line in title_lines(title, width, title_justify)]
    text += ["┏" + "┳".join(bar) + "┓", *bold.lines([h for h, _ in heads], edge="┃"), "┡" + "╇".join(bar) + "┩"]
    line = plain.line
    for cells, kind in zip(rows, kinds):
        if kind == LAYER:
            text += line(cells)
        elif kind == IMPLICIT:
            text += dim.lines(cells)
        else:
            text += plain.lines(cells, label_style=(on, off))
    if show_footer:
        text += ["├" + "┼".join(thin) + "┤", *bold.lines(footer)]
    text.append("└" + "┴".join(thin) + "┘")
    return "\n".join(text)


def column_widths(heads: Sequence[tuple[str, str]], rows: Sequence[Sequence[str]], footer: Sequence[str],
                  fold: int, fold_width: int) -> list[int]:
    """Each column's width in cells, as rich sizes a table that fits: the widest cell (header
    and footer included); the folding column at most `fold_width`."""
    return [c.width for c in _columns(heads, rows, footer, fold, fold_width)]


class _Column:
    """A column as laid out: its width, whether a cell can be wider (only the folding one), and
    how a cell is padded to the width (by characters where every cell is ASCII, else by cells)."""

    def __init__(self, strings: list[str], right: bool, fold_width: int | None) -> None:
        simple = "".join(strings).isascii()
        widest = max(map(len, strings))
        if not simple:  # rich measures in cells; the columns but the label are at least their longest string
            widest = max(map(cells, strings)) if fold_width is not None else max(widest, max(map(cells, strings)))
        self.wider = fold_width is not None and widest > fold_width
        self.width = min(widest, fold_width) if fold_width is not None else widest
        if simple:
            self.fit: Callable[[str, int], str] = str.rjust if right else str.ljust
        else:
            self.fit = _right_in_cells if right else _left_in_cells


def _columns(heads: Sequence[tuple[str, str]], rows: Sequence[Sequence[str]], footer: Sequence[str],
             fold: int, fold_width: int) -> list[_Column]:
    return [_Column([head, footer[i], *(r[i] for r in rows)], justify == "right", fold_width if i == fold else None)
            for i, (head, justify) in enumerate(heads)]


# characters rich counts as one cell each: its own single-cell ranges (rich.cells'
# _SINGLE_CELL_UNICODE_RANGES: Latin with '×' and '·', Greek, Cyrillic, box drawing with '▸',
# Braille), and ranges its width tables give one cell (phonetic 'ᵀ', dashes and punctuation
# '–', super- and subscripts, arrows, mathematical operators '−'): tests/test_plain_report.py
# holds every one to rich. A cell of these is measured without loading rich.
_SINGLE_CELL_RANGES = ((0x20, 0x7E), (0xA0, 0xAC), (0xAE, 0x2FF), (0x370, 0x482), (0x2500, 0x25FC), (0x2800, 0x28FF),
                       (0x1D00, 0x1DBF), (0x2010, 0x2027), (0x2030, 0x205E), (0x2070, 0x209F), (0x2190, 0x22FF))
_SINGLE_CELLS = frozenset(chr(c) for start, end in _SINGLE_CELL_RANGES for c in range(start, end + 1))
_single_cells: Callable[[str], bool] = _SINGLE_CELLS.issuperset


def cells(text: str) -> int:
    """How many terminal cells `text` takes, as rich counts them (CJK takes two)."""
    if text.isascii() or _single_cells(text):
        return len(text)
    from rich.cells import cell_len  # imported here: a report to a pipe need not load rich

    return cell_len(text)


def title_lines(title: str, width: int, justify: str = "center") -> list[str]:
    """The title centred (or to the left) over `width` cells, wrapped into several lines if
    longer, as rich does."""
    if not title:  # rich writes no line for no title
        return []
    if cells(title) <= width and title == title.strip():
        left = (width - cells(title)) // 2 if justify == "center" else 0
        return [" " * left + title + " " * (width - left - cells(title))]
    from rich.text import Text

    lines = Text(title).wrap(_console(), width, justify=justify, overflow="fold")  # type: ignore[arg-type]
    return [line.plain for line in lines]


class _Rows:
    """Writes rows of one style over the table's laid-out columns."""

    def __init__(self, columns: Sequence[_Column], fold: int, style: tuple[str, str]) -> None:
        self.laid = [(c.fit, c.width) for c in columns]
        self.fold, self.fold_width, self.may_fold = fold, columns[fold].width, columns[fold].wider
        on, off = style
        # rich writes a styled cell as three pieces: its left padding, the content, its right padding
        self.on, self.off = on, off
        self.opened, self.closed = f"{on} {off}{on}", f"{off}{on} {off}"
        self.left, self.join, self.right = "│" + self.opened, f"{self.closed}│{self.opened}", self.closed + "│"

    def line(self, row: Sequence[str]) -> list[str]:
        """A row's lines, without a styled label: one, unless its label folds."""
        if self.may_fold and cells(row[self.fold]) > self.fold_width:
            return self.lines(row)
        return [self.left + self.join.join([fit(c, w) for c, (fit, w) in zip(row, self.laid)]) + self.right]

    def lines(self, row: Sequence[str], edge: str = "│", label_style: tuple[str, str] = ("", "")) -> list[str]:
        """A row's lines: more than one where its label folds; the label in `label_style`."""
        folded = _fold(row[self.fold], self.fold_width)
        on, off = label_style
        first = [self.opened + (f"{on}{folded[0]}{off}" if i == self.fold else fit(c, w)) + self.closed
                 for i, (c, (fit, w)) in enumerate(zip(row, self.laid))]
        out = [edge + edge.join(first) + edge]
        for part in folded[1:]:  # rich writes the other cells' lines below their first as one blank piece
            shown = [self.opened + f"{on}{part}{off}" + self.closed if i == self.fold
                     else f"{self.on}{' ' * (w + 2)}{self.off}" for i, (_, w) in enumerate(self.laid)]
            out.append(edge + edge.join(shown) + edge)
        return out


def _fold(label: str, width: int) -> list[str]:
    """The label's lines, each padded to `width`: rich's word wrap, words longer than the
    column folded."""
    if cells(label) <= width:
        return [_left_in_cells(label, width)]
    from rich.text import Text

    return [_left_in_cells(line.plain, width)
            for line in Text(label).wrap(_console(), width, justify="left", overflow="fold")]


@lru_cache(maxsize=1)
def _console() -> Any:
    """A console for rich's word wrap (which reads none of its settings)."""
    import io

    from rich.console import Console

    return Console(file=io.StringIO())


def _left_in_cells(cell: str, width: int) -> str:
    return cell + " " * (width - cells(cell))


def _right_in_cells(cell: str, width: int) -> str:
    return " " * (width - cells(cell)) + cell
