"""The one error hierarchy of archcalc.

Library code raises these; only the CLI turns them into messages and exit codes.
A `SpecError` knows where in the user's text it happened, so it can show the
line with a caret under the offending column (as lark's `get_context` does).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """The text of a spec and the name to call it by in messages."""

    text: str
    filename: str = "<spec>"

    def line(self, lineno: int) -> str:
        lines = self.text.splitlines()
        return lines[lineno - 1] if 0 < lineno <= len(lines) else ""


@dataclass(frozen=True, slots=True)
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
            lines = [f"{name}:{self.loc.line}:{self.loc.col}: error: {self.message}"]
            if self.source is not None:
                lines += _excerpt(self.source, self.loc)
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


def _excerpt(source: Source, loc: Loc) -> list[str]:
    # columns count a tab as 4, as the parser reads it: show the line the same way
    text = source.line(loc.line).expandtabs(4)
    gutter = str(loc.line)
    pad = " " * len(gutter)
    caret = " " * (loc.col - 1) + "^" * max(1, loc.width)
    return [f" {gutter} | {text}", f" {pad} | {caret}"]
