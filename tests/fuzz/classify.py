"""What a run's outcome means: a class, and a signature that groups runs with one cause.

Classes, checked in this order (the first that applies wins):

- **memory**: the run needed more memory than the cap: a `MemoryError` once the worker's
  address space came within half the cap of it (else it is a traceback: CPython's parser
  raises `MemoryError` for deeply nested expressions without using memory), an allocation
  failure that torch reported (also when archcalc wrapped it into a message), an output
  file over the size cap, or the worker killed by the kernel.
- **hang**: the run took more CPU time than its limit (worker.py: `--timeout`, longer for a
  spec of many layers or a mutation of a big zoo spec).
- **crash**: the worker process died (a segmentation fault, an abort).
- **traceback**: an exception other than `SystemExit` escaped the command: exactly what
  the user would see as a Python traceback.
- **inconsistent**: an equivalent spelling of a spec (a BOM, CRLF, tabs for 4 spaces …,
  all allowed by docs/spec-language.md) exits with another status than the original.
- **leak**: Python internals in what the user reads: a Python warning that would be
  printed (`SyntaxWarning`, torch's `UserWarning`), or in a message a complex number,
  `inf`/`nan` as a value, Python's int-digit-limit text, an object repr, or a quoted
  text made only of invisible characters (`unexpected '\\ufeff'`; a plain space is fine).
- **bad-output**: exit 0/1 but the output is not what was asked: `--format json` that is
  not strict JSON (NaN, Infinity, truncated), or an `-o FILE` that was not written.
- **accepted**: `calc` exited 0 although a size option held spec syntax (a newline, a
  comma, parentheses, `=`, `/`, `{}`, `#`, `;`, `@`, `|`): the value escaped its field.
- **misleading**: the message says there is no spec file named SPEC, but SPEC exists.
- **unpositioned**: the spec text is at fault, yet the message does not point into it.
  The rule, precisely: the exit status is 2; the case's blame is "spec" (the command line
  is known-good, see options.py); the spec came on stdin, in a file or as an argument;
  it is valid UTF-8 without a NUL byte (archcalc refuses a binary file by name and line,
  `holds a NUL byte on line 3: not a text file`) with at least one line that is not blank
  or a comment; and the first
  line of stderr is not `NAME:LINE:COL: error: ...` (NAME `<stdin>`, the file name or
  `<spec>`) followed by the excerpt ` LINE | TEXT` and a caret line, where LINE is a line
  of the spec (or of `families/FAMILY.arch`, where the spec says `use FAMILY` and the
  error is in the family's text) (lines end at "\\n", "\\r\\n" or "\\r", as Python's text files read them; no
  other character ends a line), TEXT is that line exactly, COL is at most its length + 1,
  and the carets start at COL, COL counting characters (a tab is one: the excerpt shows
  the raw line, so a column counted on tabs expanded to 4 is off; it is caught when a text
  the message quotes stands under the carets only in the tab-expanded line). A message
  with no position at all counts only when the same spec text also fails `archcalc
  report - --format json` (so the spec is at fault, not the command: `rf` on a network
  without a spatial layer is a fair unpositioned error).
- **ok** (exit 0 or 1) and **error** (exit 2 with a message): fine. (**internal** marks
  a bug of the fuzzer itself, never archcalc's.)

Signatures: a traceback by exception type and innermost archcalc frame (file:function:
line), a RecursionError by the files whose functions recur (seen at least 3 times among
the innermost 200 frames, so wherever the limit strikes in the cycle); a hang or memory
by the innermost archcalc frame (file:function) when it was stopped; a message without
a position, a Python warning and a misleading message by the message's shape (quoted
text and numbers blanked); a wrong position, a leak or an inconsistency by what is
wrong (`excerpt is not the line`, `a complex number`, `bom`), since one cause shows in
many messages.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fuzz.cases import SPEC, Case
from tests.fuzz.options import CALC_SIZE_OPTIONS

OK = ("ok", "error", "internal")  # internal: the fuzzer's own bug (worker.main), shown, not counted
FAILURES = ("traceback", "hang", "memory", "crash", "unpositioned", "leak", "bad-output", "accepted",
            "misleading", "inconsistent")
CLASSES = (*OK, *FAILURES)

Rerun = Callable[[Case], dict[str, Any]]  # runs another case in the same worker: its outcome

_ALLOC = re.compile(r"can't allocate memory|not enough memory|out of memory|MemoryError|File too large|"
                    r"Cannot allocate memory", re.I)
_POSITION = re.compile(r"^(?P<name>.*?):(?P<line>\d+):(?P<col>\d+): error: (?P<msg>.*)$")
_SPEC_SYNTAX = re.compile(r"[\n,()=/{}#;@|]")
_SHOWN_WARNINGS = ("SyntaxWarning", "UserWarning", "RuntimeWarning", "Warning", "FutureWarning", "BytesWarning",
                   "UnicodeWarning")
_LEAKS = (
    (re.compile(r"Traceback \(most recent call last\)"), "a traceback in the message"),
    (re.compile(r"\(?-?\d[\d.e+-]*[+-]\d[\d.e+-]*j\)?|\b\d+(\.\d+)?j\b"), "a complex number"),
    (re.compile(r"(?<![\w'])-?(inf|nan)(?![\w'])", re.I), "inf or nan as a value"),
    (re.compile(r"Exceeds the limit \(\d+ digits\)|set_int_max_str_digits"), "Python's int-digit limit"),
    (re.compile(r"<[\w.]+ object at 0x[0-9a-f]+>"), "an object repr"),
    (re.compile(r"Decimal\(|InvalidOperation|ConversionSyntax"), "a Decimal repr"),
    (re.compile(r"\b[A-Z]\w+(Error|Exception)\b: "), "a Python exception name"),
)


@dataclass
class Verdict:
    kind: str
    signature: str
    detail: dict[str, Any] = field(default_factory=dict)


def classify(case: Case, outcome: dict[str, Any], rerun: Rerun) -> Verdict:
    """The class of one run; `rerun` runs other command lines for the rules that need one."""
    for rule in (_memory, _hang, _crash, _traceback):
        verdict = rule(case, outcome)
        if verdict is not None:
            return verdict
    verdict = _inconsistent(case, outcome, rerun)  # before leak: a BOM's fault is being read at all
    for rule in (_leak, _bad_output, _accepted, _misleading):
        verdict = verdict or rule(case, outcome)
    verdict = verdict or _unpositioned(case, outcome, rerun)
    if verdict is not None:
        return verdict
    kind = "error" if outcome.get("exit") == 2 else "ok"
    return Verdict(kind, kind)


# -- resource classes -------------------------------------------------------------------


def _memory(case: Case, outcome: dict[str, Any]) -> Verdict | None:
    exc = outcome.get("exception") or {}
    text = f"{exc.get('type', '')}: {exc.get('message', '')}\n{outcome.get('stderr', '')}"
    if exc.get("type") == "MemoryError" and not outcome.get("near_cap", True):
        return None  # CPython's parser raises MemoryError for deep nesting: a traceback, not memory
    if outcome["event"] == "memory" or exc.get("type") == "MemoryError":
        return Verdict("memory", f"memory {exc.get('type') or 'MemoryError'} at {where(outcome, lines=False)}",
                       {"where": where(outcome)})
    if _ALLOC.search(text):
        site = f"at {where(outcome, lines=False)}" if exc else f"(in the message) {message_shape(outcome['stderr'])}"
        return Verdict("memory", f"memory allocation failed {site}", {"where": where(outcome)})
    return None


def _hang(case: Case, outcome: dict[str, Any]) -> Verdict | None:
    if outcome["event"] in ("timeout", "killed") or outcome["elapsed"] > outcome["limit"]:
        site = where(outcome, lines=False) if outcome.get("frames") else "? (no stack: it ended as the limit struck)"
        return Verdict("hang", f"hang at {site}",
                       {"where": where(outcome), "elapsed": round(outcome["elapsed"], 2),
                        "uninterruptible": outcome["event"] == "killed"})
    return None


def _crash(case: Case, outcome: dict[str, Any]) -> Verdict | None:
    if outcome["event"] == "crash":
        return Verdict("crash", f"crash ({outcome.get('signal')}) at {where(outcome, lines=False)}",
                       {"where": where(outcome)})
    return None


def _traceback(case: Case, outcome: dict[str, Any]) -> Verdict | None:
    exc = outcome.get("exception")
    if not exc:
        return None
    site = where(outcome)
    if exc["type"] == "RecursionError":
        site = "recursion in " + recursion_cycle(outcome["frames"])
    return Verdict("traceback", f"{exc['type']} at {site}", {"where": where(outcome), "message": exc["message"]})


def where(outcome: dict[str, Any], lines: bool = True) -> str:
    """The innermost archcalc frame, 'archcalc/spec/parser.py:_item:285' (else the innermost)."""
    frames = outcome.get("frames") or []
    ours = [f for f in frames if f[0].startswith("archcalc/")] or frames
    if not ours:
        return "?"
    file, func, line = ours[-1]
    return f"{file}:{func}:{line}" if lines else f"{file}:{func}"


def recursion_cycle(frames: list[list[Any]]) -> str:
    """The files of the archcalc functions that recur (seen ≥ 3 times in the innermost 200
    frames): one recursion, wherever in its cycle the limit struck; else the innermost."""
    inner = [f for f in frames[-200:] if f[0].startswith("archcalc/")]
    counts = Counter(f"{f[0]}:{f[1]}" for f in inner)
    files = sorted({name.split(":")[0] for name, n in counts.items() if n >= 3})
    if files:
        return " ".join(files)
    return f"{inner[-1][0]}:{inner[-1][1]}" if inner else "?"


# -- message classes ------------------------------------------------------------------


def _leak(case: Case, outcome: dict[str, Any]) -> Verdict | None:
    for warning in outcome.get("warnings", []):
        category = warning.split(":", 1)[0]
        if category in _SHOWN_WARNINGS:
            return Verdict("leak", f"leak ({category}): {message_shape(warning)}",
                           {"warning": warning[:300]})
    message = _own_words(outcome.get("stderr", ""))
    for pattern, what in _LEAKS:
        m = pattern.search(message)
        if m:
            return Verdict("leak", f"leak ({what})",
                           {"found": m.group(0)[:80], "message": outcome.get("stderr", "")[:300]})
    invisible = _invisible_quote(outcome.get("stderr", ""))
    if invisible:
        return Verdict("leak", f"leak (invisible character quoted: U+{ord(invisible[0]):04X})",
                       {"quoted": ascii(invisible)})
    return None


def _own_words(stderr: str) -> str:
    """The message without the spec excerpt and quoted text: what archcalc wrote itself."""
    kept = [ln for ln in stderr.splitlines() if not re.match(r"^ +(\d+ )?\| ", ln + " ")]
    text = "\n".join(kept)
    text = re.sub(r"^.*?:\d+:\d+: error: ", "", text, flags=re.M)
    return re.sub(r"'[^'\n]*'|\"[^\"\n]*\"", "''", text)


def _invisible_quote(stderr: str) -> str | None:
    """A quoted text in the message's first line made only of characters a terminal shows as
    nothing or as blank (BOM, NUL, NBSP, zero-width space …; a plain space reads fine)."""
    import unicodedata

    first = stderr.split("\n", 1)[0]
    for quoted in re.findall(r"'([^'\n]+)'", first):
        if all(ch != " " and unicodedata.category(ch) in ("Cf", "Cc", "Zs", "Zl", "Zp", "Cs") for ch in quoted):
            return quoted
    return None


def message_shape(message: str) -> str:
    """The first line with file:line:col, quoted text and numbers blanked: groups one message."""
    lines = message.strip().splitlines()
    first = lines[0] if lines else "(no message)"
    first = re.sub(r"^.*?:\d+:\d+: error: ", "", first)
    first = re.sub(r"^[^\s:]*: error: ", "error: ", first)
    first = re.sub(r"^error: [^\s:]+:\d+: ", "error: ", first)  # torch's errors name the spec line so
    first = re.sub(r"'[^']*'", "'…'", first)
    first = re.sub(r"\d+", "N", first)
    return first[:110]


# -- output classes --------------------------------------------------------------------


def _bad_output(case: Case, outcome: dict[str, Any]) -> Verdict | None:
    if outcome.get("exit") not in (0, 1) or outcome.get("exception"):
        return None
    if _wants_json(case.args):
        problem = _json_problem(outcome.get("stdout", ""))
        if problem:
            return Verdict("bad-output", f"bad-output ({problem}) in {case.args[0]}", {"problem": problem})
    missing = [p for p, exists in outcome.get("written", {}).items() if not exists]
    if missing and outcome.get("exit") == 0:
        return Verdict("bad-output", f"bad-output (-o file not written) in {case.args[0]}", {"missing": missing})
    return None


def _wants_json(args: list[str]) -> bool:
    return any(a == "--format" and b == "json" for a, b in zip(args, args[1:]))


def _json_problem(text: str) -> str | None:
    def reject(name: str) -> Any:
        raise ValueError(f"{name} in JSON")

    try:
        json.loads(text, parse_constant=reject)
    except ValueError as e:
        return str(e).split(":")[0][:60]
    return None


def _accepted(case: Case, outcome: dict[str, Any]) -> Verdict | None:
    if case.args[:1] != ["calc"] or outcome.get("exit") != 0:
        return None
    for option, value in zip(case.args, case.args[1:]):
        if option in CALC_SIZE_OPTIONS and _SPEC_SYNTAX.search(value):
            return Verdict("accepted", f"accepted: calc {case.args[1]} took spec syntax in a size option",
                           {"option": option, "value": value})
    return None


def _misleading(case: Case, outcome: dict[str, Any]) -> Verdict | None:
    stderr = outcome.get("stderr", "")
    if case.via in ("file", "dir") and outcome.get("exit") == 2 and "file named 'spec.arch'" in stderr:
        return Verdict("misleading", f"misleading ({case.via} exists): {message_shape(stderr)}")
    return None


# -- positions --------------------------------------------------------------------------


def _unpositioned(case: Case, outcome: dict[str, Any], rerun: Rerun) -> Verdict | None:
    if not _spec_at_fault_possible(case, outcome):
        return None
    problem = position_problem(case, outcome.get("stderr", ""))
    if problem is None:
        return None
    if problem == "no position" and not _spec_rejected(case, rerun):
        return None
    label = f"{problem}: {message_shape(outcome.get('stderr', ''))}" if problem == "no position" else problem
    return Verdict("unpositioned", f"unpositioned ({label})", {"message": outcome["stderr"][:400]})


def _spec_at_fault_possible(case: Case, outcome: dict[str, Any]) -> bool:
    if outcome.get("exit") != 2 or case.blame != "spec" or case.via not in ("stdin", "file", "arg"):
        return False
    if case.spec is None or case.args[0] == "calc":
        return False
    text = case.spec
    if any(0xDC80 <= ord(ch) <= 0xDCFF for ch in text) or "\x00" in text:
        return False  # not UTF-8, or a NUL byte (not a text file): a message naming the file (and line) is fair
    return any(ln.split("#", 1)[0].strip() for ln in read_lines(text))


def read_lines(text: str) -> list[str]:
    """The spec's lines as a text file reads them: "\\r\\n" and "\\r" end a line as "\\n" does
    (and a final line break ends the last line; it does not start another); a leading BOM is
    not part of the first line."""
    text = text[1:] if text.startswith("\ufeff") else text  # a byte-order mark marks the encoding: no text
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return lines[:-1] if len(lines) > 1 and lines[-1] == "" else lines


def position_problem(case: Case, stderr: str) -> str | None:
    """None when stderr points into the spec as the docstring's rule says; else what is wrong."""
    lines = stderr.split("\n")
    m = _POSITION.match(lines[0])
    if not m:
        return "no position"
    number, col = int(m.group("line")), int(m.group("col"))
    spec_lines = read_lines(_text_named(m.group("name"), case.spec or ""))
    if not 1 <= number <= len(spec_lines):
        return "line out of range"
    real = spec_lines[number - 1]
    excerpt = re.match(rf"^ {number} \| (.*)$", lines[1]) if len(lines) > 1 else None
    if excerpt is None:
        return "no excerpt"
    if excerpt.group(1) != real:
        return "excerpt is not the line"
    if not 1 <= col <= len(real) + 1:
        tabs = "\t" in real and col <= len(real.expandtabs(4)) + 1
        return "column counts tabs as 4" if tabs else "column past the line"
    return _caret_problem(m.group("msg"), real, col, lines[2] if len(lines) > 2 else "")


def _text_named(name: str, spec: str) -> str:
    """The text a message's position refers to: the spec, or a built-in family spec that a
    `use FAMILY` line read (its errors point into `families/FAMILY.arch`, as documented)."""
    from tests.fuzz.corpus import SPECS

    if name.startswith("families/") and name.endswith(".arch") and "/" not in name[len("families/"):]:
        path = SPECS / name
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return spec


def _caret_problem(message: str, line: str, col: int, caret_line: str) -> str | None:
    """The carets start at COL; on a line with tabs, COL counts characters, not expanded tabs:
    a text the message quotes that stands under the carets only in the tab-expanded line
    shows the column was counted after expanding (the excerpt shows the raw tab)."""
    carets = caret_line.split("| ", 1)[-1]
    if "^" not in carets or carets.index("^") != col - 1:
        return "caret not at the column"
    if "\t" in line[: col - 1]:
        width, expanded = carets.count("^"), line.expandtabs(4)
        for quoted in re.findall(r"'([^']+)'", message):
            under, under_expanded = line[col - 1 : col - 1 + width], expanded[col - 1 : col - 1 + width]
            if len(quoted) == width and under_expanded == quoted != under:
                return "column counts tabs as 4"
    return None


def _spec_rejected(case: Case, rerun: Rerun) -> bool:
    """Whether the spec text itself fails: `archcalc report - --format json` does not exit 0."""
    check = rerun(case.with_args(["report", SPEC, "--format", "json"]))
    return check.get("exit") != 0 or bool(check.get("exception")) or check["event"] != "done"


def _inconsistent(case: Case, outcome: dict[str, Any], rerun: Rerun) -> Verdict | None:
    if case.twin is None or outcome.get("exception"):
        return None
    original = rerun(case.with_spec(case.twin))
    if original["event"] != "done" or original.get("exit") == outcome.get("exit"):
        return None
    label = case.origin.split()[-1]
    return Verdict("inconsistent", f"inconsistent ({label}): exit {original.get('exit')} → {outcome.get('exit')}",
                   {"original_exit": original.get("exit"), "message": outcome.get("stderr", "")[:300]})
