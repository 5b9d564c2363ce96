"""A hand-written parser for spec text: lines → indentation tree → statements.

Each scanning function takes the line and a position and returns the new
position with what it read (tomli's style). Errors carry a `Loc`, so the CLI
can show the line with a caret. Nothing here knows the layer types: a token
like `conv3-64/s2` is split into its head and options and kept as text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal

from archcalc.errors import Loc, Source, SpecError, split_lines
from archcalc.lang.ast import (
    Again,
    BlockDef,
    BodyStatement,
    Branches,
    CallArg,
    FunctionDef,
    InputDecl,
    Item,
    Layer,
    Loop,
    Piece,
    Ref,
    RefCall,
    RefLine,
    Residual,
    Spec,
    Statement,
    on_line,
)
from archcalc.lang.size import refuse_oversize

HEADERS = ("name", "hidden-activation")
_HEAD_WORDS = ("param", "input", "use", "block", *HEADERS)  # what a line that is not a statement starts with
COMPOUNDS = ("concat", "add", "residual")
MAX_REPEAT = 10_000
MAX_NESTING = 100  # indentation levels: far beyond any network, well inside Python's own stack
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FUNCTION = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(([^()]*)\)")
_WORD = r"A-Za-z0-9_.\-×"  # the characters of a layer token, outside `{expr}` (an option's also '=')
_WORD_RUN = re.compile(f"[{_WORD}]*")
_WORD_RUN_EQ = re.compile(f"[{_WORD}=]*")  # an option's (`/p=1`)


@dataclass(slots=True)
class Line:
    """One non-blank line with the lines indented under it."""

    text: str  # comment stripped, trailing space stripped, indentation kept
    number: int
    indent: int
    children: list[Line] = field(default_factory=list)

    @property
    def body(self) -> str:
        return self.text[self.indent :]

    def loc(self, pos: int, width: int = 1) -> Loc:
        return Loc(self.number, pos + 1, width)


def parse(text: str, filename: str = "<spec>", bounded: bool = True) -> Spec:
    """Parse spec text; raises SpecError pointing into it. `bounded`: refuse a spec that expands past
    the layer limit (the repeated-block summary, which never expands it all, parses with False)."""
    source = Source(text, filename)
    try:
        comments: list[str] = []
        spec = _parse_tree(_line_tree(text, comments), source, tuple(comments))
        if bounded:
            refuse_oversize(spec)  # a million layers in three lines: refused here, not after building them
        return spec
    except SpecError as e:
        raise e.with_source(source) from None


# -- lines and indentation ---------------------------------------------------------


def _line_tree(text: str, comments: list[str]) -> list[Line]:
    """The lines as a tree by indentation; the text of each comment line put in `comments`."""
    roots: list[Line] = []
    stack: list[Line] = []
    for number, raw in enumerate(split_lines(text), start=1):
        if "#" in raw and raw.lstrip().startswith("#"):
            comments.append(raw.split("#", 1)[1].strip())
            continue
        stripped = (raw.split("#", 1)[0] if "#" in raw else raw).rstrip()
        if not stripped:  # stripped at the right: empty, or it ends in a visible character
            continue
        if "\t" in stripped:
            stripped = stripped.expandtabs(4)
        indent = len(stripped) - len(stripped.lstrip(" "))
        line = Line(stripped, number, indent)
        if not indent:  # a top-level line (most lines of a long spec): it closes every open one
            roots.append(line)
            stack.clear()
            stack.append(line)
            continue
        while stack and stack[-1].indent >= indent:
            stack.pop()
        (stack[-1].children if stack else roots).append(line)
        stack.append(line)
        if len(stack) > MAX_NESTING:
            raise SpecError(f"lines nest deeper than {MAX_NESTING} levels of indentation", line.loc(indent),
                            expected="a flatter spec: put deep structure into blocks")
    return roots


def _parse_tree(roots: list[Line], source: Source, comments: tuple[str, ...]) -> Spec:
    header: dict[str, Piece] = {}
    blocks: dict[str, BlockDef] = {}
    body_lines: list[Line] = []
    params: list[tuple[str, Piece | FunctionDef]] = []
    inputs: list[InputDecl] = []
    for line in roots:
        if not line.text.startswith(_HEAD_WORDS, line.indent):  # most lines: a layer or a named node
            body_lines.append(line)
            continue
        word = line.body.split(None, 1)[0]
        if word == "param" and not line.body[5:].lstrip().startswith("="):  # not a node named 'param'
            _params(line, params)
        elif word == "input" and not line.body[5:].lstrip().startswith("="):
            inputs.append(_input(line, inputs))
        elif word in HEADERS or (word == "use" and not line.body[3:].lstrip().startswith("=")):
            _header(line, word, header)
        elif word == "block":
            block = _block(line)
            if block.name in blocks:
                raise SpecError(f"block '{block.name}' is defined twice", block.loc)
            blocks[block.name] = block
        else:
            body_lines.append(line)
    return Spec(
        source=source,
        name=header["name"].text if "name" in header else None,
        inputs=tuple(inputs),
        hidden_activation=header.get("hidden-activation"),
        blocks=blocks,
        body=_statements(body_lines),
        comments=comments,
        params=tuple(params),
        uses=header.get("use"),
    )


def _params(line: Line, params: list[tuple[str, Piece | FunctionDef]]) -> None:
    """`param k=192` or `param vocab=20000, length=56`: names and default values; `param
    half(v) = v // 2`: a function the spec's arithmetic may call."""
    start = line.indent + len("param")
    pieces = _split_top(line.text[start:], start, line.number)
    if not pieces or line.children:
        where = line.children[0].loc(line.children[0].indent) if line.children else line.loc(line.indent, 5)
        raise SpecError("'param' needs name=value pairs" if not pieces else "unexpected indented line", where,
                        expected="a line such as 'param k=192' or 'param vocab=20000, length=56'")
    for piece in pieces:
        key, eq, value = piece.text.partition("=")
        key, value = key.strip(), value.strip()
        function = _FUNCTION.fullmatch(key)
        if not eq or not (_IDENT.fullmatch(key) or function) or not value:
            raise SpecError(f"'{piece.text}' is not a parameter with a value", piece.loc,
                            expected="name=value, as in 'param k=192', or a function: 'param half(v) = v // 2'")
        name = function.group(1) if function else key
        if any(k == name for k, _ in params):
            raise SpecError(f"parameter '{name}' is defined twice", piece.loc)
        raw = piece.text[piece.text.index("=") + 1 :]
        col = piece.loc.col + piece.text.index("=") + 1 + len(raw) - len(raw.lstrip())
        body = Piece(value, Loc(piece.loc.line, col, len(value)))
        if function is None:
            params.append((name, body))
            continue
        args = tuple(a.strip() for a in function.group(2).split(",")) if function.group(2).strip() else ()
        if not args or not all(_IDENT.fullmatch(a) for a in args) or len(set(args)) < len(args):
            raise SpecError(f"'{key}' is not a function header", piece.loc,
                            expected="a name and distinct argument names, as in 'param make_divisible(v, d) = …'")
        params.append((name, FunctionDef(args, body)))


def _header(line: Line, word: str, header: dict[str, Piece]) -> None:
    rest = line.body[len(word) :]
    value = rest.strip()
    start = line.indent + len(word) + (len(rest) - len(rest.lstrip()))
    if not value:
        raise SpecError(f"'{word}' needs a value", line.loc(line.indent, len(word)),
                        expected=_HEADER_EXAMPLES[word])
    if word in header:
        raise SpecError(f"'{word}' is given twice", line.loc(line.indent, len(word)))
    if line.children:
        raise SpecError("unexpected indented line", line.children[0].loc(line.children[0].indent))
    header[word] = Piece(value, line.loc(start, len(value)))


_HEADER_EXAMPLES = {
    "name": "a name, as in 'name vgg16'",
    "hidden-activation": "an activation, as in 'hidden-activation relu'",
    "use": "a family spec, as in 'use efficientnet'",
}

_INPUT = re.compile(r"(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s+(?=\S))?(?P<shape>.+?)(?:\s+as\s+(?P<layout>\S+))?")
_INPUT_EXAMPLE = "a shape, as in 'input 3x224x224', or a name and a shape: 'input left 3x105x105'"


def _input(line: Line, earlier: list[InputDecl]) -> InputDecl:
    """`input [NAME] SHAPE [as LAYOUT]`: one of the network's input tensors."""
    rest = line.body[len("input"):]
    start = line.indent + len("input") + (len(rest) - len(rest.lstrip()))
    value = rest.strip()
    keyword = line.loc(line.indent, len("input"))
    if not value:
        raise SpecError("'input' needs a value", keyword, expected=_INPUT_EXAMPLE)
    if line.children:
        raise SpecError("unexpected indented line", line.children[0].loc(line.children[0].indent))
    m = _INPUT.fullmatch(value)
    assert m is not None  # the pattern matches any non-empty text

    def piece(group: str) -> Piece | None:
        text = m.group(group)
        return None if text is None else Piece(text, line.loc(start + m.start(group), len(text)))

    shape, layout = piece("shape"), piece("layout")
    assert shape is not None
    name = m.group("name") or "input"
    if any(d.name == name for d in earlier):
        what = "the input" if name == "input" else f"input '{name}'"
        raise SpecError(f"{what} is declared twice", keyword,
                        hint="name each input: 'input left 3x105x105' and 'input right 3x105x105'")
    return InputDecl(name, shape, layout, keyword)


# -- blocks and statements ----------------------------------------------------------

_BLOCK = re.compile(r"block\s+([A-Za-z_][A-Za-z0-9_\-]*)\s*(\((.*)\))?\s*:(.*)$")


def _block(line: Line) -> BlockDef:
    m = _BLOCK.match(line.body)
    if not m:
        raise SpecError(
            "malformed block definition",
            line.loc(line.indent, len(line.body)),
            expected="'block NAME(arg, arg=default):' followed by indented lines",
        )
    name, params_text, inline = m.group(1), m.group(3) or "", m.group(4).strip()
    params_start = line.indent + (m.start(3) if m.group(3) is not None else 0)
    params = _block_params(line, params_text, params_start)
    body_lines = list(line.children)
    if inline:
        start = line.indent + m.start(4) + (len(m.group(4)) - len(m.group(4).lstrip()))
        body_lines.insert(0, Line(" " * start + inline, line.number, start))
    if not body_lines:
        raise SpecError(f"block '{name}' has no body", line.loc(line.indent, len(line.body)),
                        expected="indented lines under the block, or layers after its ':'")
    return BlockDef(name, params, _statements(body_lines), line.loc(line.indent, 5 + 1 + len(name)))


def _block_params(line: Line, text: str, start: int) -> tuple[tuple[str, Piece | None], ...]:
    params: list[tuple[str, Piece | None]] = []
    for piece in _split_top(text, start, line.number):
        key, _, default = piece.text.partition("=")
        key = key.strip()
        if not _IDENT.fullmatch(key):
            raise SpecError(f"'{piece.text}' is not a parameter name", piece.loc,
                            expected="a name, or name=default")
        if any(k == key for k, _ in params):
            raise SpecError(f"parameter '{key}' is listed twice", piece.loc)
        default_piece = Piece(default.strip(), piece.loc) if default.strip() else None
        if params and params[-1][1] is not None and default_piece is None:
            raise SpecError(f"parameter '{key}' without a default follows one with a default", piece.loc)
        params.append((key, default_piece))
    return tuple(params)


def _statements(lines: list[Line]) -> tuple[BodyStatement, ...]:
    out: list[BodyStatement] = []
    seen: dict[str, Statement | RefLine] = {}  # a line's text parsed once: generated specs repeat lines
    shared: dict[str, bool] = {}  # whether a statement in `seen` may be shared by the lines that repeat it
    for line in lines:
        if line.text.startswith("shortcut", line.indent) and (
                line.body.startswith("shortcut:") or line.body.startswith("shortcut :")):
            _attach_shortcut(out, line)
            continue
        if line.children:
            out.append(_statement(line))
            continue
        known = seen.get(line.text)
        if known is None:  # a new line (a dense DAG's every line): parsed here, on its own line already
            out.append(seen.setdefault(line.text, _simple(line) or _general(line)))  # (as `_statement`)
            continue
        share = shared.get(line.text)
        if share is None:
            share = shared[line.text] = _shareable(known)
        out.append(Again(known, line.number) if share else on_line(known.statement, line.number))
    return tuple(out)


def _shareable(stmt: Statement | RefLine) -> bool:
    """Whether lines that repeat `stmt` may share it (`Again`): no item repeated nor looped, as
    a repeat's item is told apart by identity (`repeats.py` keys its sites so)."""
    return type(stmt) is RefLine or all(item.repeat_loc is None and item.loop is None for item in stmt.items)


def _attach_shortcut(out: list[BodyStatement], line: Line) -> None:
    last = out[-1].items[-1].unit if out and out[-1].items else None
    if not isinstance(last, Residual) or last.shortcut is not None:
        raise SpecError("'shortcut:' must come right after a 'residual:' body",
                        line.loc(line.indent, 8))
    rest = line.body.split(":", 1)[1]
    start = line.indent + line.body.index(":") + 1 + (len(rest) - len(rest.lstrip()))
    value = rest.strip()
    shortcut: tuple[BodyStatement, ...] | Literal["auto", "identity"]
    if value == "auto" and not line.children:
        shortcut = "auto"
    elif value == "identity" and not line.children:
        shortcut = "identity"
    else:
        lines = ([Line(" " * start + value, line.number, start)] if value else []) + line.children
        if not lines:
            raise SpecError("'shortcut:' needs a value", line.loc(line.indent, 9),
                            expected="auto, identity, or layers such as conv1-256/s2/nobias, bn")
        shortcut = _statements(lines)
    residual = Residual(last.body, shortcut, last.loc)
    stmt = out[-1]
    out[-1] = Statement((*stmt.items[:-1], Item(residual)), stmt.loc, stmt.names, stmt.expect, stmt.module)


# `a = ...` or `q, k, v = ...`; not `==`, not `maxpool => ...`
_NAMED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*(?:\s*,\s*[A-Za-z_][A-Za-z0-9_]*)*)\s*=(?![=>])\s*")
_COMPOUND = re.compile(r"(concat|add|residual)\s*:\s*$")
# `"block1-0" = ...`: a module name no identifier can spell (docs/spec-language.md 5.1), not a reference
_QUOTED = re.compile(r'"([^"\n]*)"\s*=(?![=>])\s*')


# `name = head/options(arguments)`, the name and the options optional, the arguments without brackets,
# quotes, braces or '=>': most lines of a generated or imported spec, one layer each
_SIMPLE = re.compile(r"(?:([A-Za-z_][A-Za-z0-9_]*)\s*=\s*)?"  # the name
                     rf"(([{_WORD}]+(?:/[{_WORD}=]+)*)"  # the layer: head and options …
                     r"(?:\(([^()\[\]{}\"'>]*)\))?)")  # … and the call's arguments
# one argument of such a call and the comma after it: `@x`, `key=value` or `value`, no blank inside
# the value (anything else is split by `_call_args`)
_CALL_ARG = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_]*)\s*=\s*)?([A-Za-z0-9_.+\-×@]+)\s*(?:,|$)")


# `name = head(@a, @b)`, the name optional, one or two references that are identifiers: the dense DAG's
# every line, read whole by one match. No loop, repeat nor instance can hide in it (their words need a
# blank before them, and its only blanks stand next to a bracket or a comma), so it is the `RefLine`
# `_SIMPLE` and `_simple_args` read from it (tests/test_fast_lines.py holds the two readings equal).
_REF_LINE = re.compile(r"(?:([A-Za-z_][A-Za-z0-9_]*)\s*=\s*)?"  # the name
                       rf"(([{_WORD}]+)\(\s*"  # the head
                       r"(@[A-Za-z_][A-Za-z0-9_]*)\s*(?:,\s*(@[A-Za-z_][A-Za-z0-9_]*)\s*)?\))")  # the references


def _simple(line: Line) -> Statement | RefLine | None:
    """A one-layer line (`_SIMPLE`) as `_statement` parses it, without its general splitting: one item,
    no loop, no repeat, no instance (each asked as `_item` asks it, where the word it needs is in the
    token at all); a `RefLine` where the layer has no option and its call names nodes alone; None for
    any other line."""
    ref = _REF_LINE.fullmatch(line.text, line.indent)
    if ref is not None:
        name, token, head, first, second = ref.groups()
        if second is None:
            return RefLine(name, token, head, (first,), line.number, (line.indent + 1, ref.start(3) + 1,
                                                                      ref.start(4) + 1))
        return RefLine(name, token, head, (first, second), line.number,
                       (line.indent + 1, ref.start(3) + 1, ref.start(4) + 1, ref.start(5) + 1))
    m = _SIMPLE.fullmatch(line.text, line.indent)
    if m is None:
        return None
    name, token, words, inner = m.groups()
    if ("for" in token and _FOR.search(token)) or ("as" in token and _instance_suffix(token) is not None) or (
            ("x" in token or "×" in token or "*" in token) and _repeat_suffix(token) is not None):
        return None
    number = line.number
    args = None if inner is None else _simple_args(m)
    if args is not None and args[0] and "/" not in words:
        _, values, _, cols = args
        return RefLine(name, token, words, tuple(values), number, (line.indent + 1, m.start(3) + 1, *cols))
    if inner is not None and args is None:  # an argument `_CALL_ARG` does not read: `_unit` splits them
        unit = _unit(token, number, m.start(2) + 1)
    else:
        unit = _simple_layer(m, number, token, words, args)
    return Statement((Item(unit),), Loc(number, line.indent + 1, 1), () if name is None else (name,))


def _simple_args(m: re.Match[str]) -> tuple[bool, list[str], list[str | None], list[int]] | None:
    """The arguments of a `_SIMPLE` match's call when each is `@x`, `key=value` or a value (`_CALL_ARG`):
    whether there are some and every one is a positional `@x` (as `RefCall.of` tells), their values,
    keys and 1-based columns; None otherwise. The columns are the match's: the line's text is what the
    locations count in."""
    text = m.string
    refs, values, keys, cols = True, [], [], []
    pos, end = m.span(4)
    while pos < end:
        a = _CALL_ARG.match(text, pos, end)
        if a is None:
            return None
        key, value = a.groups()
        refs = refs and key is None and value[0] == "@"
        values.append(value)
        keys.append(key)
        cols.append(a.start(2) + 1)
        pos = a.end()
    return refs and bool(values), values, keys, cols


def _simple_layer(m: re.Match[str], number: int, token: str, words: str,
                  args: tuple[bool, list[str], list[str | None], list[int]] | None) -> Layer:
    """The layer of a `_SIMPLE` match built straight from the match and its call's arguments, as `_unit`
    builds it."""
    call: tuple[CallArg, ...] | None = None
    if args is not None:
        _, values, keys, cols = args
        call = RefCall.of([CallArg(key, Piece(value, Loc(number, col, len(value))))
                           for key, value, col in zip(keys, values, cols)])
    col = m.start(3) + 1
    if "/" not in words:
        return Layer(Piece(words, Loc(number, col, len(words))), (), call, token)
    head, *rest = words.split("/")
    options = []
    at = col + len(head) + 1
    for option in rest:
        options.append(Piece(option, Loc(number, at, len(option))))
        at += len(option) + 1
    return Layer(Piece(head, Loc(number, col, len(head))), tuple(options), call, token)


def _statement(line: Line) -> Statement | RefLine:
    if not line.children:
        simple = _simple(line)
        if simple is not None:
            return simple
    return _general(line)


def _general(line: Line) -> Statement:
    pos = line.indent
    names: tuple[str, ...] = ()
    module: Piece | None = None
    quoted = _QUOTED.match(line.text, pos)
    if quoted:
        module = Piece(quoted.group(1), line.loc(quoted.start(1), max(1, len(quoted.group(1)))))
        pos = quoted.end()
    m = None if quoted else _NAMED.match(line.text, pos)
    if m and not line.text[m.end() - 1 :].startswith("=="):
        names, pos = tuple(n.strip() for n in m.group(1).split(",")), m.end()
        twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
        if twice:
            raise SpecError(f"name '{twice}' is given twice", line.loc(line.indent, m.end(1) - line.indent))
    compound = _COMPOUND.match(line.text, pos)
    if compound:
        unit = _compound(line, compound.group(1), pos)
        return Statement((Item(unit),), line.loc(line.indent), names, None, module)
    text, expect = _expectation(line, pos)
    items: list[Item] = []
    for piece in _split_top(text, pos, line.number):
        items.append(_item(piece))
    for child in line.children:  # an indented continuation of a plain line
        items.extend(_statement(child).items)
    if not items:
        raise SpecError("expected layers after '='", line.loc(pos), expected="a layer such as conv3-64")
    return Statement(tuple(items), line.loc(line.indent), names, expect, module)


def _expectation(line: Line, pos: int) -> tuple[str, Piece | None]:
    """Split `layers => expected figures` into the layers and the expectation."""
    text = line.text[pos:]
    arrow = text.find("=>")
    if arrow < 0:
        return text, None
    raw = text[arrow + 2 :]
    value = raw.strip()
    start = pos + arrow + 2 + (len(raw) - len(raw.lstrip()))
    if not value:
        raise SpecError("expected figures after '=>'", line.loc(pos + arrow, 2),
                        expected="e.g. '=> 55x55x96, params=34944, macs=105415200, rf=11'")
    return text[:arrow], Piece(value, line.loc(start, len(value)))


def _compound(line: Line, kind: str, pos: int) -> Residual | Branches:
    loc = line.loc(pos, len(kind))
    if not line.children:
        raise SpecError(f"'{kind}:' needs indented lines under it", loc,
                        expected="'| ...' branch lines" if kind != "residual" else "the residual body")
    if kind == "residual":
        return Residual(_statements(line.children), None, loc)
    branches = []
    for child in line.children:
        if not child.body.startswith("|"):
            raise SpecError(f"each branch of '{kind}:' starts with '|'", child.loc(child.indent),
                            expected="'| conv1-64' (one line per branch)")
        start = child.indent + 1 + (len(child.body[1:]) - len(child.body[1:].lstrip()))
        first = Line(" " * start + child.body[1:].strip(), child.number, start, child.children)
        if not first.body:
            first = Line(" " * start + "identity", child.number, start, child.children)
        branches.append((_statement(first),))
    return Branches(kind, tuple(branches), loc)


# -- items --------------------------------------------------------------------------


_SPECIAL = re.compile(r"[,()\[\]{}\"']")


_NESTING = re.compile(r"[()\[\]{}\"']")


def _split_top(text: str, offset: int, line: int) -> list[Piece]:
    """Split at commas outside brackets; each piece stripped, with its location (`offset`: the text's
    0-based column on `line`)."""
    if _NESTING.search(text) is None:  # no bracket nor quote (most items): every comma splits
        return _split_commas(text, offset, line)
    pieces, depth, start, quote = [], 0, 0, ""
    for m in _SPECIAL.finditer(text + ","):  # only the characters that matter: C speed on long lines
        i, ch = m.start(), m.group()
        if quote:  # commas inside "..." belong to the value (a connection table)
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
            if depth < 0:
                raise SpecError(f"unmatched '{ch}'", _loc(line, offset + i))
        elif ch == "," and depth == 0:
            raw = text[start:i]
            stripped = raw.strip()
            lead = len(raw) - len(raw.lstrip())
            if not stripped and i < len(text):
                raise SpecError("empty item between commas", _loc(line, offset + start + lead),
                                expected="a layer such as conv3-64")
            if stripped:
                pieces.append(Piece(stripped, _loc(line, offset + start + lead, len(stripped))))
            start = i + 1
    if depth > 0:
        raise SpecError("unclosed bracket", _loc(line, offset + len(text) - 1), expected="')'")
    if quote:
        raise SpecError("unclosed quote", _loc(line, offset + len(text) - 1), expected=quote)
    return pieces


def _loc(line: int, pos: int, width: int = 1) -> Loc:
    """The place of 0-based column `pos` on `line` (as `Line.loc`)."""
    return Loc(line, pos + 1, width)


def _split_commas(text: str, offset: int, line: int) -> list[Piece]:
    """`_split_top` for a text without brackets or quotes, with its errors: an empty piece between
    commas is refused, one after a trailing comma is dropped."""
    pieces: list[Piece] = []
    start = 0
    for raw in text.split(","):
        end = start + len(raw)
        stripped = raw.strip()
        if stripped:
            lead = len(raw) - len(raw.lstrip())
            pieces.append(Piece(stripped, Loc(line, offset + start + lead + 1, len(stripped))))
        elif end < len(text):
            raise SpecError("empty item between commas", _loc(line, offset + start + len(raw)),
                            expected="a layer such as conv3-64")
        start = end + 1
    return pieces


_LOOP = re.compile(r"for\s+(?P<var>[A-Za-z_][A-Za-z0-9_]*)\s+in\s+range\s*\((?P<bounds>.*)\)$")
_FOR = re.compile(r"(?<=\s)for(?=\s)")  # the word 'for' after a blank: where a loop may start
_FOR_WORD = re.compile(r"for\s+\S")


def _find_loop(text: str) -> tuple[re.Match[str], int] | None:
    """The first `for j in range(…)` that ends the text, and where the blank before it starts.

    Anchored at each word 'for' rather than searched with a leading `\\s+`: a search would
    try every position of a long run of blanks (20,000 spaces: seconds, quadratic)."""
    if "for" not in text:  # most items: nothing to scan
        return None
    for word in _FOR.finditer(text):
        m = _LOOP.match(text, word.start())
        if m is not None:
            return m, len(text[: word.start()].rstrip())
    return None


def _loop(text: str, loc: Loc) -> tuple[str, Loop | None]:
    """`conv3-{c} for j in range(1, n)`: the item's text before the loop, and the loop."""
    found = _find_loop(text)
    if found is None:
        return text, None
    m, start = found
    var = Piece(m.group("var"), Loc(loc.line, loc.col + m.start("var"), len(m.group("var"))))
    bounds = tuple(_split_top(m.group("bounds"), loc.col - 1 + m.start("bounds"), loc.line))
    where = Loc(loc.line, loc.col + start, len(text) - start)
    if not 1 <= len(bounds) <= 2:
        raise SpecError(f"range takes one or two values, got {len(bounds)}", where,
                        expected="range(n) (0 to n − 1) or range(start, stop)")
    return text[:start], Loop(var, bounds, where)


def _item(piece: Piece) -> Item:
    text, loc = piece.text, piece.loc
    text, loop = _loop(text, loc)
    repeat, repeat_loc, repeat_expr = 1, None, None
    suffix = _repeat_suffix(text)
    if suffix:
        head_end, count_start = suffix
        count = text[count_start:]
        repeat_loc = Loc(loc.line, loc.col + count_start, len(count))
        if count.startswith("{"):  # `x{n-1}`: a block argument decides, so lowering counts it
            repeat_expr = Piece(count, repeat_loc)
        elif not (count.isascii() and count.isdigit()):  # '²' and '٣' are digits to str.isdigit
            raise SpecError(f"repeat count '{_shown(count)}' is not a whole number", repeat_loc,
                            expected="a count such as x3")
        else:
            if len(count) > 6 or not 1 <= int(count) <= MAX_REPEAT:
                raise SpecError(f"repeat count {_shown(count)} is out of range", repeat_loc,
                                expected=f"a count from 1 to {MAX_REPEAT:,}")
            repeat = int(count)
        text = text[:head_end]
        if loop is not None or _find_loop(text):
            raise SpecError("an item is repeated either by a count or by a loop, not both", repeat_loc,
                            hint="repeat it with 'for j in range(…)' alone")
    bad = next((w.start() for w in _FOR.finditer(text) if _FOR_WORD.match(text, w.start())), None
               ) if "for" in text else None
    if loop is None and bad is not None and not re.search(r"[\"'\[]", text[bad:]):
        raise SpecError("malformed loop", Loc(loc.line, loc.col + bad, len(text) - bad),
                        expected="'… for j in range(n)' or '… for j in range(start, stop)'")
    instance = None
    named = _instance_suffix(text)
    if named:
        head_end, name_start = named
        instance = Piece(text[name_start:], Loc(loc.line, loc.col + name_start, len(text) - name_start))
        if repeat_loc is not None or loop is not None:
            raise SpecError(f"'{text}' names one instance; it cannot be repeated", repeat_loc or loop.loc,  # type: ignore[union-attr]
                            hint=f"apply the same weights again with '{instance.text} x…' after it")
        text = text[:head_end]
    unit = _unit(text, loc.line, loc.col)
    if instance is not None:
        if not isinstance(unit, Layer):
            raise SpecError("'as' names a layer or a block call", instance.loc,
                            expected="'conv3-64 as c1' or 'tower as siamese'")
        unit = replace(unit, instance=instance)
    if loop is not None and isinstance(unit, Ref):
        raise SpecError("a node reference cannot be repeated", loop.loc)
    return Item(unit, repeat, repeat_loc, repeat_expr, loop)


def _repeat_suffix(text: str) -> tuple[int, int] | None:
    """(end of the layer, start of the count) of a trailing repeat — `x3`, `× 3`, `* 2`, `x{n-1}`,
    after whitespace — or None. Scanned from the end in one pass (a regex here backtracked
    quadratically on long runs of spaces)."""
    if text.endswith("}"):
        count = text.rfind("{")
        if count < 0:
            return None
        mark = len(text[:count].rstrip()) - 1
    else:
        parts = text.rsplit(None, 1)
        if len(parts) < 2:
            return None
        count = len(text) - len(parts[1])
        if len(parts[1]) > 1 and parts[1][0] in "x×*":  # the mark glued to the count: x3
            mark, count = count, count + 1
        else:
            mark = len(parts[0]) - 1
    if mark < 1 or text[mark] not in "x×*" or not text[mark - 1].isspace() or count >= len(text):
        return None
    if text[:mark].count("{") > text[:mark].count("}"):
        return None  # `conv1-{4 * c}`: a product inside an expression, not a repeat
    return len(text[:mark].rstrip()), count


def _instance_suffix(text: str) -> tuple[int, int] | None:
    """(end of the layer, start of the name) of a trailing `as NAME`, or None."""
    parts = text.rsplit(None, 2)
    if len(parts) < 3 or parts[1] != "as" or not _IDENT.fullmatch(parts[2]):
        return None
    name = len(text) - len(parts[2])
    keyword = text.rindex("as", 0, name)
    return len(text[:keyword].rstrip()), name


def _invisible(ch: str) -> bool:
    import unicodedata

    return ch != " " and unicodedata.category(ch) in ("Cf", "Cc", "Cs", "Co", "Cn", "Zs", "Zl", "Zp", "Mn")


def _char(ch: str) -> str:
    """One character as a message names it: quoted when it shows, by code point and name when a
    terminal shows it as nothing or a blank (a zero-width space, a BOM, a control character)."""
    import unicodedata

    if _invisible(ch):
        name = unicodedata.name(ch, "")
        return f"U+{ord(ch):04X}" + (f" ({name.lower()})" if name else "") + ", an invisible character"
    return f"'{ch}'"


def _quoted(text: str) -> str:
    """A user's text quoted, its invisible characters written as \\uXXXX (a lone one named)."""
    if len(text) == 1:
        return _char(text)
    return "'" + "".join(f"\\u{ord(c):04x}" if c != "\t" and _invisible(c) else c for c in text) + "'"


def _shown(text: str, limit: int = 40) -> str:
    """A user's text as a message quotes it: at most `limit` characters."""
    return text if len(text) <= limit else text[:limit] + "…"


def _unit(text: str, line: int, col: int) -> Layer | Ref:
    """A layer token or `@name` whose text starts at `line`, `col`."""
    if text.startswith("@"):
        if not _IDENT.fullmatch(text[1:]):
            raise SpecError(f"'{text}' is not a node reference", Loc(line, col, len(text)), expected="'@name'")
        return Ref(text[1:], Loc(line, col, len(text)))
    pos = _scan_word(text, 0)
    if pos == 0:
        raise SpecError(f"unexpected {_char(text[0])}", Loc(line, col),
                        expected="a layer such as conv3-64, maxpool or FC-4096")
    head = Piece(text[:pos], Loc(line, col, pos))
    options: list[Piece] = []
    while pos < len(text) and text[pos] == "/":
        end = _scan_word(text, pos + 1, option=True)
        if end == pos + 1:
            raise SpecError("expected an option after '/'", Loc(line, col + pos),
                            expected="an option such as /s2, /p1 or /nobias")
        options.append(Piece(text[pos + 1 : end], Loc(line, col + pos + 1, end - pos - 1)))
        pos = end
    call = None
    if pos < len(text) and text[pos] == "(":
        if not text.endswith(")"):
            raise SpecError("expected ')' to close the argument list", Loc(line, col + len(text) - 1))
        call = _call_args(text[pos + 1 : -1], line, col + pos + 1)
        pos = len(text)
    if pos < len(text):
        raise SpecError(f"unexpected {_quoted(text[pos:])} after '{text[:pos]}'", Loc(line, col + pos, len(text) - pos),
                        expected="',' between layers, an option like /s2, or a repeat like x3")
    return Layer(head, tuple(options), call, text)


def _scan_word(text: str, pos: int, option: bool = False) -> int:
    """The end of a word that may hold {expr} placeholders (an option's may hold '=')."""
    run = _WORD_RUN_EQ if option else _WORD_RUN
    while True:
        pos = run.match(text, pos).end()  # type: ignore[union-attr]  # a run of word characters, maybe empty
        if pos >= len(text) or text[pos] != "{":
            return pos
        close = text.find("}", pos)
        if close < 0:
            return pos
        pos = close + 1


_KEYWORD = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.+)$")


def _call_args(text: str, line: int, col: int) -> tuple[CallArg, ...]:
    """The arguments of a call whose text (inside the parentheses) starts at `line`, `col`."""
    args = []
    for piece in _split_top(text, col - 1, line):
        m = None if piece.text.startswith("@") else _KEYWORD.match(piece.text)  # `@x` is never `key=`
        if m:
            value_col = piece.loc.col + m.start(2)
            args.append(CallArg(m.group(1), Piece(m.group(2), Loc(piece.loc.line, value_col, len(m.group(2))))))
        else:
            args.append(CallArg(None, piece))
    return RefCall.of(args)
