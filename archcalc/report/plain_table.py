"""A table drawn as plain text with rich's box characters, for tables too long for rich.

rich measures and wraps every cell of every row (about a millisecond a row here); a
100,000-layer report would take minutes. Past `PLAIN_ROWS` rows the layer table is drawn by
this module instead: the same borders, header, footer and a folding label column, in one
pass over cells whose widths are known (a few microseconds a row), without colours.
"""

from __future__ import annotations

from collections.abc import Sequence

PLAIN_ROWS = 2_000


def draw(title: str, heads: Sequence[tuple[str, str]], rows: Sequence[Sequence[str]], footer: Sequence[str],
         fold: int, fold_width: int) -> str:
    """The table's text: `heads` are (title, justify) per column; column `fold` folds at `fold_width`."""
    widths = [max([len(h), len(footer[i])] + [len(r[i]) for r in rows]) for i, (h, _) in enumerate(heads)]
    widths[fold] = min(widths[fold], fold_width)
    justify = [j for _, j in heads]

    fits = [str.rjust if j == "right" else str.ljust for j in justify]
    laid = list(zip(fits, widths))

    def line(cells: Sequence[str]) -> list[str]:
        if len(cells[fold]) <= widths[fold]:  # nearly every row: nothing to fold
            return ["│ " + " │ ".join([fit(c, w) for c, (fit, w) in zip(cells, laid)]) + " │"]
        folded = [cells[fold][k:k + widths[fold]] for k in range(0, max(1, len(cells[fold])), widths[fold])] or [""]
        out = []
        for part, first in zip(folded, [True] + [False] * (len(folded) - 1)):
            shown = [part if i == fold else (c if first else "") for i, c in enumerate(cells)]
            out.append("│ " + " │ ".join(_fit(c, w, j) for c, w, j in zip(shown, widths, justify)) + " │")
        return out

    bar = ["━" * (w + 2) for w in widths]
    thin = ["─" * (w + 2) for w in widths]
    total = sum(widths) + 3 * len(widths) + 1
    text = [title.center(total).rstrip(), "┏" + "┳".join(bar) + "┓",
            "┃ " + " ┃ ".join(_fit(h, w, j) for (h, j), w in zip(heads, widths)) + " ┃",
            "┡" + "╇".join(bar) + "┩"]
    for r in rows:
        text += line(r)
    text += ["├" + "┼".join(thin) + "┤", *line(footer), "└" + "┴".join(thin) + "┘"]
    return "\n".join(text)


def _fit(cell: str, width: int, justify: str) -> str:
    return cell.rjust(width) if justify == "right" else cell.ljust(width)
