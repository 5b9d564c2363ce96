"""The built-in model zoo: the spec files under `specs/`, looked up by name."""

from __future__ import annotations

import os
import re
import sys
from typing import TYPE_CHECKING

from archcalc.errors import Loc, Source, SpecError, UsageError
from archcalc.records import record

if TYPE_CHECKING:
    from pathlib import Path

# Paths as strings and os.path: pathlib (and the urllib.parse and ipaddress it imports) costs a
# cold `archcalc report NAME` ~5 ms of CPU; it is imported only where a Path is given back.
_PACKAGED = os.path.join(os.path.dirname(__file__), "specs")  # where a wheel puts them
_CHECKOUT = os.path.join(os.path.dirname(os.path.dirname(__file__)), "specs")  # an editable install or a checkout


def _specs_root() -> str:
    return _PACKAGED if os.path.isdir(_PACKAGED) else _CHECKOUT


def specs_dir() -> Path:
    from pathlib import Path

    return Path(_specs_root())


@record
class ZooEntry:
    """A built-in spec: its name and its file."""

    name: str
    path: Path

    def source_line(self) -> str:
        """The first comment line: the paper (and table) the spec follows."""
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if line.startswith("#"):
                return line.lstrip("# ").strip()
        return ""


def entries() -> list[ZooEntry]:
    root = specs_dir()
    return sorted((ZooEntry(p.stem, p) for p in root.glob("*.arch")), key=lambda e: _order(e.name))


def _order(name: str) -> list[str | int]:
    """Natural order: vgg11 before vgg16, resnet18 before resnet101."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def names() -> list[str]:
    return [e.name for e in entries()]


MAX_SPEC_BYTES = 16 * 2**20  # a spec of 250,000 layers is a few MB; more is not a spec


def read(spec: str) -> Source:
    """A spec given as a built-in name, a path, or '-' for standard input."""
    if spec == "-":
        return Source(_decode(_stdin_bytes(), "<stdin>"), "<stdin>")
    if spec and "/" not in spec:  # a name: pathlib would write it as it is, and join it as os.path does
        path, builtin = spec, os.path.join(_specs_root(), f"{spec}.arch")
    else:  # pathlib's spelling of a path ('./a.arch' is 'a.arch'), as messages have always shown it
        from pathlib import Path

        path, builtin = str(Path(spec)), str(Path(_specs_root()) / f"{spec}.arch")
    if os.path.isdir(path):
        raise UsageError(f"'{spec}' is a directory, not a spec file")
    if os.path.isfile(path):
        return Source(_decode(_file_bytes(path), path), path)
    if os.path.isfile(builtin):
        return Source(_decode(_file_bytes(builtin), spec), f"{spec}.arch")
    import difflib

    close = difflib.get_close_matches(spec, names(), n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UsageError(f"no built-in spec or file named '{spec}'.{hint} ('archcalc list' shows the built-in ones)")


def _stdin_bytes() -> bytes:
    stream = getattr(sys.stdin, "buffer", None)
    try:
        data = stream.read(MAX_SPEC_BYTES + 1) if stream is not None else sys.stdin.read(MAX_SPEC_BYTES + 1).encode()
    except (ValueError, OSError, AttributeError):  # closed, or no standard input at all
        raise UsageError("cannot read the spec from standard input: it is closed") from None
    return _bounded(data, "standard input")


def _file_bytes(path: str | Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return _bounded(f.read(MAX_SPEC_BYTES + 1), str(path))
    except OSError as e:
        raise UsageError(f"cannot read '{path}': {e.strerror}") from None


def _bounded(data: bytes, where: str) -> bytes:
    if len(data) > MAX_SPEC_BYTES:
        raise UsageError(f"{where} holds more than {MAX_SPEC_BYTES // 2**20} MiB: too large for a spec "
                         f"(archcalc reads at most {MAX_SPEC_BYTES:,} bytes)")
    return data


def _decode(data: bytes, where: str) -> str:
    """UTF-8 text, a leading byte-order mark dropped; any other encoding is refused by position."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise UsageError(f"{where} is not UTF-8 text: byte 0x{data[e.start]:02x} on line {line} "
                         f"(save the spec as UTF-8)") from None
    if "\x00" in text:
        raise UsageError(f"{where} holds a NUL byte on line {text[: text.index(chr(0))].count(chr(10)) + 1}: "
                         f"not a text file")
    return text.removeprefix("\ufeff")


def families() -> list[str]:
    """The family specs under `specs/families/`: what a spec's `use NAME` line may name."""
    return sorted(p.stem for p in (specs_dir() / "families").glob("*.arch"))


def family(name: str, loc: Loc | None = None) -> Source:
    """The family spec `use NAME` names; an error at `loc` with the families there are."""
    path = specs_dir() / "families" / f"{name}.arch"
    if re.fullmatch(r"[A-Za-z0-9_\-]+", name) and path.is_file():
        return Source(_decode(_file_bytes(path), str(path)), f"families/{name}.arch")
    import difflib

    close = difflib.get_close_matches(name, families(), n=1)
    raise SpecError(f"no family spec named '{name}'", loc, expected="one of " + (", ".join(families()) or "none"),
                    hint=f"did you mean '{close[0]}'?" if close else None)
