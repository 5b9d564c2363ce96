"""The one error hierarchy of archcalc.

Library code raises these; only the CLI turns them into messages and exit codes.
A `SpecError` knows where in the user's text it happened, so it can show the
line with a caret under the offending column (as lark's `get_context` does).
"""

from __future__ import annotations

from functools import cached_property

from archcalc.records import record


@record
class Source:
    """The text of a spec and the name to call it by in messages."""

    text: str
    filename: str = "<spec>"

    @cached_property
    def lines(self) -> list[str]:  # split once: a report asks for a line per layer
        return split_lines(self.text)

    def line(self, lineno: int) -> str:
        lines = self.lines
        return lines[lineno - 1] if 0 < lineno <= len(lines) else ""

    def editor_column(self, loc: Loc) -> int:
        """`loc`'s column as an editor counts it (a tab is one character), for machine output."""
        return raw_columns(self.line(loc.line), loc.col, loc.width)[0]


def split_lines(text: str) -> list[str]:
    """The lines of a spec as a text file has them: only "\\n", "\\r\\n" and "\\r" end a line.
    (str.splitlines also breaks at form feeds, \\x1c…\\x1e, U+0085, U+2028 and U+2029, so line
    numbers would disagree with every editor.)"""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


@record(slots=True)
class Loc:
    """A 1-based line and column in a spec, with the width of what is pointed at."""

    line: int
    col: int
    width: int = 1


class ArchcalcError(Exception):
    """Base of every error archcalc raises on purpose."""


class SpecError(ArchcalcError):
    """Something in the spec text is wrong; points at the place."""

    def __init__(
        self,
        message: str,
        loc: Loc | None = None,
        *,
        expected: str | None = None,
        hint: str | None = None,
        source: Source | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc
        self.expected = expected
        self.hint = hint
        self.source = source

    def with_source(self, source: Source) -> SpecError:
        if self.source is None:
            self.source = source
        return self

    def __str__(self) -> str:
        return self.format()

    def format(self) -> str:
        name = self.source.filename if self.source else "<spec>"
        if self.loc is None:
            lines = [f"{name}: error: {self.message}"]
        else:
            raw = self.source.line(self.loc.line) if self.source is not None else ""
            col, width = raw_columns(raw, self.loc.col, self.loc.width)
            lines = [f"{name}:{self.loc.line}:{col}: error: {self.message}"]
            if self.source is not None:
                lines += _excerpt(self.loc.line, raw, col, width)
        if self.expected:
            lines.append(f"  expected: {self.expected}")
        if self.hint:
            lines.append(f"  {self.hint}")
        return "\n".join(lines)


class ShapeError(SpecError):
    """A layer cannot be applied to the tensor it receives."""


class BuildError(ArchcalcError):
    """A spec cannot be turned into a torch module (a layer type has no torch equivalent,
    or torch rejects its arguments); raised by `archcalc.pytorch.build`, names the spec line."""


class TorchMissingError(ArchcalcError):
    """PyTorch is not installed; raised by anything that builds or verifies (the static
    path works without it). The message says how to install it."""


class VerifyError(ArchcalcError):
    """torch could not run a spec archcalc accepted; raised by `archcalc.pytorch.verify`
    during the forward pass, names the layer and its spec line."""


class DeviceMemoryError(ArchcalcError):
    """The device ran out of memory during `archcalc verify`; the message says at which
    batch size and suggests a smaller one."""


class RenderError(ArchcalcError):
    """A diagram could not be drawn or written (no Graphviz `dot` program, `dot` failed,
    or the file cannot be written); raised by `archcalc.report.diagram`."""


class UsageError(ArchcalcError):
    """A command-line value is wrong (not a spec problem)."""


class ModelImportError(ArchcalcError):
    """A model cannot be imported (`archcalc import`, `archcalc.from_module`, `from_onnx`): a target
    that does not import, a factory that raises, a forward needing inputs it was not given,
    control flow tracing cannot follow, a malformed ONNX file. The message says what to do."""


class UnknownOpsError(ModelImportError):
    """The model uses operations archcalc has no rule for; the message lists each with its count
    and where it is, and how to go on (`--allow-unknown`). `unknown` keeps the list."""

    def __init__(self, message: str, unknown: tuple[tuple[str, int, str], ...] = ()) -> None:
        super().__init__(message)
        self.unknown = unknown  # (operation, count, where)
class MissingExtraError(ArchcalcError, ImportError):
    """An optional package is not installed (pandas for `Analysis.to_pandas`); the message says
    which extra installs it."""


def raw_columns(raw: str, col: int, width: int) -> tuple[int, int]:
    """The parser counts a tab as 4 columns (it expands tabs to read indentation); a message
    counts characters, as editors do. Column and width on the expanded line → on the raw one."""
    if "\t" not in raw:
        return col, width
    start = end = None
    x = 0  # the expanded column of raw[i]
    for i, ch in enumerate(raw):
        if start is None and x >= col - 1:
            start = i
        if end is None and x >= col - 1 + width:
            end = i
            break
        x = (x // 4 + 1) * 4 if ch == "\t" else x + 1
    if start is None:
        start = len(raw) + (col - 1 - x)
    if end is None:
        end = len(raw) + max(0, col - 1 + width - x)
    return start + 1, max(1, end - start)


def _excerpt(number: int, raw: str, col: int, width: int) -> list[str]:
    """The raw line and a caret line under the span; the caret line repeats the line's tabs, so
    the carets stand under the text in a terminal whatever its tab width."""
    gutter = str(number)
    pad = " " * len(gutter)
    lead = "".join("\t" if ch == "\t" else " " for ch in raw[: col - 1]) + " " * max(0, col - 1 - len(raw))
    return [f" {gutter} | {raw}", f" {pad} | {lead}{'^' * max(1, width)}"]
