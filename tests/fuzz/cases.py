"""One fuzz input (a `Case`): a command line, a spec text and how the spec reaches archcalc.

A case is plain data so it can travel to the worker process as one JSON line and be
written to the report as the reproducer. Spec text is a `str`; bytes that are not
UTF-8 are kept as lone surrogates (`errors="surrogateescape"`), which JSON escapes as
`\\udcXX` and reads back exactly, so invalid UTF-8 survives the round trip.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, replace
from typing import Any

SPEC = "{spec}"  # stands, in `args`, for the spec argument the worker puts in
VIAS = ("stdin", "file", "arg", "dir", "zeros", "closed")
#   stdin:  SPEC is '-', the text on standard input
#   file:   SPEC is the path of a file holding the text
#   arg:    SPEC is the text itself (archcalc treats an argument with a newline as spec text)
#   dir:    SPEC is the path of a directory
#   zeros:  SPEC is '-', standard input an endless stream of NUL bytes (`< /dev/zero`)
#   closed: SPEC is '-', standard input closed (`<&-`); run as a real process
BLAMES = ("spec", "option", "io")
#   spec:   the command line is known-good: only the spec text is odd, so a spec error
#           must point into it (see classify.unpositioned)
#   option: a command-line value is odd
#   io:     the way the spec is delivered is odd (closed or endless stdin, a directory)


@dataclass
class Case:
    """A command line after `archcalc`, with `{spec}` where the spec argument goes."""

    id: int
    args: list[str]
    spec: str | None = None
    via: str = "stdin"
    blame: str = "spec"
    origin: str = ""  # what made it: "zoo:resnet18 swap", "grammar", "option --batch"
    twin: str | None = None  # an equivalent spelling of `spec`: both must exit alike
    seed_spec: str | None = None  # the zoo spec `spec` was mutated from (for its time baseline)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Case:
        return cls(**data)

    def spec_bytes(self) -> bytes:
        return (self.spec or "").encode("utf-8", "surrogateescape")

    def with_spec(self, spec: str) -> Case:
        """The case with another spec text (and no twin: the twin spelled the old text)."""
        return replace(self, args=list(self.args), spec=spec, twin=None)

    def with_args(self, args: list[str]) -> Case:
        return replace(self, args=list(args))

    def size(self) -> int:
        """How big the reproducer is: what minimisation makes smaller."""
        return len(self.spec_bytes()) + sum(len(a) for a in self.args)


def shell(case: Case) -> str:
    """A bash command line that reproduces the case (for the report)."""
    spec_word = {"stdin": "-", "zeros": "-", "closed": "-", "file": "spec.arch", "dir": "spec.arch",
                 "arg": ansi_quote(case.spec or "")}[case.via]
    words = [spec_word if a == SPEC else shlex.quote(a) if _printable(a) else ansi_quote(a) for a in case.args]
    command = "archcalc " + " ".join(words)
    if case.via == "stdin" and case.spec is None:
        return command
    if case.via == "stdin":
        return f"printf {_printf_quote(case.spec_bytes())} | {command}"
    if case.via == "file":
        return f"printf {_printf_quote(case.spec_bytes())} > spec.arch && {command}"
    if case.via == "dir":
        return f"mkdir -p spec.arch && {command}"
    if case.via == "zeros":
        return f"{command} < /dev/zero"
    if case.via == "closed":
        return f"{command} <&-"
    return command


def _printable(text: str) -> bool:
    return text.isprintable() and text.isascii()


def ansi_quote(text: str) -> str:
    """Bash's $'...' quoting: newlines, tabs and other odd characters stay visible."""
    out = []
    for ch in text:
        if ch in "\\'":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append("".join(f"\\x{b:02x}" for b in ch.encode("utf-8", "surrogateescape")))
    return "$'" + "".join(out) + "'"


def _printf_quote(data: bytes) -> str:
    """A printf format that writes exactly `data`: NUL bytes and invalid UTF-8 as octal escapes."""
    out = []
    for ch in data.decode("utf-8", "surrogateescape"):
        if ch == "%":
            out.append("%%")
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "'":
            out.append("\\047")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch.isprintable() and not 0xDC80 <= ord(ch) <= 0xDCFF:
            out.append(ch)
        else:
            out.append("".join(f"\\{b:03o}" for b in ch.encode("utf-8", "surrogateescape")))
    return "'" + "".join(out) + "'"


def compact(text: str, limit: int = 400) -> str:
    """`text` with long runs written as «'1+'×998», so a 60 kB reproducer reads in one line."""
    import re

    def run(m: re.Match[str]) -> str:
        unit = m.group(1)
        return f"«{unit!r}×{len(m.group(0)) // len(unit)}»"

    short = re.sub(r"(.{1,24}?)\1{7,}", run, text, flags=re.DOTALL)
    return short if len(short) <= limit else short[:limit] + f"… ({len(short) - limit} more characters)"
