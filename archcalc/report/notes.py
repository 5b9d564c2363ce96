"""Warnings as a reader wants them: the same warning on many layers is one line with a count.

A ResNet floors eight divisions ("… is not whole: floored to 28"); the table, Markdown,
LaTeX and HTML reports show them as one line, "not whole: floored (×8)", naming the layers
and giving the first one in full. JSON keeps every warning as it is (it is data).
"""

from __future__ import annotations

import re

from archcalc.passes.analysis import Analysis, Warning_
from archcalc.records import record


@record
class Note:
    """Warnings of one kind: `key` says what they are, `first` is the first one in full."""

    key: str
    warnings: tuple[Warning_, ...]

    @property
    def first(self) -> Warning_:
        return self.warnings[0]

    @property
    def count(self) -> int:
        return len(self.warnings)

    def text(self) -> str:
        """One line: the warning itself, or its kind with a count, the layers and the first in full."""
        w = self.first
        where = f"line {w.line}, " if w.line else ""
        if self.count == 1:
            return f"{where}layer {w.layer}: {w.message}"
        layers = ", ".join(str(x.layer) for x in self.warnings)
        return f"{self.key} (×{self.count}): layers {layers}; the first, {where}layer {w.layer}: {w.message}"


_NOT_WHOLE = re.compile(r" is not whole: (.*?)(?: to -?\d+)?$")


def kind(w: Warning_) -> str:
    """What a warning says, without the layer and its numbers: 'not whole: floored'."""
    message = w.message.split(": ", 1)[1] if ": " in w.message else w.message
    m = _NOT_WHOLE.search(message)
    if m:
        return f"not whole: {m.group(1)}"
    return re.sub(r"-?\d+(?:\.\d+)?", "N", message)


def grouped(analysis: Analysis) -> list[Note]:
    """The warnings by kind, in the order each kind first appears."""
    groups: dict[str, list[Warning_]] = {}
    for w in analysis.warnings:
        groups.setdefault(kind(w), []).append(w)
    return [Note(key, tuple(ws)) for key, ws in groups.items()]


def lines(analysis: Analysis) -> list[str]:
    return [note.text() for note in grouped(analysis)]
