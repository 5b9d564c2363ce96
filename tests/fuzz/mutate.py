"""Mutations of spec text: small edits, hostile values, broken encodings and "bombs".

Each operator takes the text and a random generator and returns the new text and a
label (kept in the case's `origin`, so the report says what made an input). Small
edits (tokens deleted, duplicated, swapped; a number replaced; a character put in)
explore the parser's error paths; hostile numbers (0, −1, 10¹², 10¹⁰⁰, 5,000 digits,
floats, ², ①, ٣) and placeholders (`{10.0**400}`, `{0**-1}`) the arithmetic and the
formatting of figures; encodings (BOM, CRLF, NUL, invalid UTF-8) the reading of text;
bombs (deep nesting of `add:`/`residual:`/`concat:` and of block calls, long
continuation chains, 10,000-term sums, 100 kB lines, sizes of 10⁷) the bounds that
keep archcalc from hanging or exhausting memory. Bombs are large by design, so they
are drawn less often than the cheap edits.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

Op = Callable[[random.Random, str], tuple[str, str]]

_TOKEN = re.compile(r"\s+|[A-Za-z_][A-Za-z0-9_\-]*|\d+(?:\.\d+)?|.", re.DOTALL)
_NUMBER = re.compile(r"\d+")

HOSTILE_NUMBERS = (
    "0", "-1", "1", "2", "1000000000000", "1" + "0" * 100, "9" * 5000, "1.5", "1e3", "0.0", "-0", "²", "①", "٣",
    "３", "1_000", "0x10", "inf", "nan", "10000000", "65", "10001", "4294967296", "",
)
HOSTILE_CHARS = (
    ",", ";", ":", "(", ")", "[", "]", "{", "}", "<", ">", "|", "@", "=", "=>", "#", "/", "\\", '"', "'", "x",
    "×", "*", "\t", "\r", "\r\n", "\n", "\x00", "\x0c", "\x0b", "\x1c", "\x85", "\u2028", "\u00a0", "\u200b",
    "\ufeff", "\udcff", "\udcc3", "\udced\udca0\udc80", "é", "−", "–", "…", "①", "²", "{}", "()", "@@", "//",
    " x", " x0", " x²", "=", "  ", "    ",
)
PLACEHOLDERS = (
    "{10.0**400}", "{0**-1}", "{2**64}", "{10**4400}", "{(-1)**0.5}", "{1e308*10}", "{1/3}", "{7//0}", "{7%0}",
    "{2**65}", "{-(2**63)}", "{k}", "{}", "{{1}}", "{1.5}", "{1e400}", "{0.1+0.2}", "{10**64}", "{(10**64)**64}",
    "{9**64**1}", "{__import__}", "{'a'}", "{1 if 1 else 2}", "{[1]}", "{1j}", "{2input}", "{0x10}", "{1_0}",
    "{+1}", "{--1}", "{3/0}", "{-8//3}", "{2**-1}", "{10.0**-400}",
)


# -- small edits ---------------------------------------------------------------------


def delete_token(rng: random.Random, text: str) -> tuple[str, str]:
    tokens = _TOKEN.findall(text)
    if tokens:
        del tokens[rng.randrange(len(tokens))]
    return "".join(tokens), "delete-token"


def duplicate_token(rng: random.Random, text: str) -> tuple[str, str]:
    tokens = _TOKEN.findall(text)
    if tokens:
        i = rng.randrange(len(tokens))
        tokens.insert(i, tokens[i])
    return "".join(tokens), "duplicate-token"


def swap_tokens(rng: random.Random, text: str) -> tuple[str, str]:
    tokens = _TOKEN.findall(text)
    if len(tokens) > 1:
        i = rng.randrange(len(tokens) - 1)
        j = i + 1 if rng.random() < 0.5 else rng.randrange(len(tokens))
        tokens[i], tokens[j] = tokens[j], tokens[i]
    return "".join(tokens), "swap-tokens"


def replace_number(rng: random.Random, text: str) -> tuple[str, str]:
    spots = list(_NUMBER.finditer(text))
    if not spots:
        return text, "replace-number (none)"
    m = rng.choice(spots)
    value = rng.choice(HOSTILE_NUMBERS)
    return text[: m.start()] + value + text[m.end() :], f"replace-number {value[:12]}"


def insert_char(rng: random.Random, text: str) -> tuple[str, str]:
    i = rng.randrange(len(text) + 1)
    ch = rng.choice(HOSTILE_CHARS)
    return text[:i] + ch + text[i:], f"insert {ch!r}"


def insert_placeholder(rng: random.Random, text: str) -> tuple[str, str]:
    """A `{expr}` in a layer head, an option, a call argument, the input or a repeat."""
    expr = rng.choice(PLACEHOLDERS)
    spots = list(_NUMBER.finditer(text))
    if spots and rng.random() < 0.7:
        m = rng.choice(spots)
        return text[: m.start()] + expr + text[m.end() :], f"placeholder {expr}"
    line = rng.choice([f"conv3-{expr}", f"conv{expr}-8", f"relu x{expr}", f"conv3-8/s{expr}", f"fc-{expr}",
                       f"conv(k=3, c={expr})", f"dropout{expr}", f"maxpool{expr}"])
    return _append_line(text, line), f"placeholder-line {line}"


def truncate(rng: random.Random, text: str) -> tuple[str, str]:
    data = text.encode("utf-8", "surrogateescape")
    cut = rng.randrange(len(data) + 1)
    return data[:cut].decode("utf-8", "surrogateescape"), "truncate"


# -- lines ---------------------------------------------------------------------------


def line_edit(rng: random.Random, text: str) -> tuple[str, str]:
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    kind = rng.choice(["delete", "duplicate", "swap", "indent", "dedent", "tab-indent", "move-first"])
    if kind == "delete":
        del lines[i]
    elif kind == "duplicate":
        lines.insert(i, lines[i])
    elif kind == "swap":
        j = rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "indent":
        lines[i] = rng.choice(["    ", " ", "\t", "  "]) + lines[i]
    elif kind == "dedent":
        lines[i] = lines[i].lstrip()
    elif kind == "tab-indent":
        lines[i] = re.sub(r"^( {4})+", lambda m: "\t" * (len(m.group(0)) // 4), lines[i])
    else:
        lines.insert(0, lines.pop(i))
    return "\n".join(lines), f"line-{kind}"


def encoding(rng: random.Random, text: str) -> tuple[str, str]:
    """BOM, CRLF, lone CR, NUL bytes, invalid UTF-8 bytes, exotic line separators."""
    kind = rng.choice(["bom", "crlf", "cr", "nul", "invalid-utf8", "latin1", "separator", "tabs", "nbsp"])
    if kind == "bom":
        return "\ufeff" + text, "bom"
    if kind == "crlf":
        return text.replace("\n", "\r\n"), "crlf"
    if kind == "cr":
        return text.replace("\n", "\r"), "lone-cr"
    if kind == "latin1":  # the file re-encoded as Latin-1 (× and — become single invalid bytes)
        return text.encode("latin-1", "replace").decode("utf-8", "surrogateescape"), "latin1"
    if kind == "tabs":
        return text.replace("    ", "\t"), "tabs"
    i = rng.randrange(len(text) + 1)
    insert = {"nul": "\x00", "invalid-utf8": rng.choice(["\udcff", "\udcc3", "\udced\udca0\udc80", "\udc80"]),
              "separator": rng.choice(["\x0c", "\x1c", "\x85", "\u2028", "\x0b"]), "nbsp": "\u00a0"}[kind]
    return text[:i] + insert + text[i:], kind


# -- bombs ---------------------------------------------------------------------------


def deep_nesting(rng: random.Random, text: str) -> tuple[str, str]:
    """`add:` / `residual:` / `concat:` nested N deep, each level indented once more."""
    depth = rng.choice([5, 40, 200, 280, 600, 1500])
    kind = rng.choice(["add", "residual", "concat", "mixed"])
    lines = []
    for level in range(depth):
        k = rng.choice(["add", "residual", "concat"]) if kind == "mixed" else kind
        pad = " " * level
        lines.append(pad + ("| " if level and _branchy(lines) else "") + f"{k}:")
    inner = " " * depth + ("| " if _branchy(lines) else "") + "relu"
    lines.append(inner)
    if kind in ("add", "mixed"):
        lines.append(" " * depth + "| identity")
    return _append_line(text, "\n".join(lines)), f"deep-nesting {kind}×{depth}"


def _branchy(lines: list[str]) -> bool:
    return bool(lines) and not lines[-1].rstrip().endswith("residual:")


def block_chain(rng: random.Random, text: str) -> tuple[str, str]:
    """Blocks b0 … bN, each calling the next: nesting of block calls N deep."""
    depth = rng.choice([10, 64, 65, 300, 1200])
    defs = [f"block b{i}: b{i + 1}" for i in range(depth)] + [f"block b{depth}: relu"]
    return _append_line(text, "\n".join(defs) + "\nb0"), f"block-chain×{depth}"


def continuation_chain(rng: random.Random, text: str) -> tuple[str, str]:
    """A layer line continued on N lines, each indented one more than the last."""
    depth = rng.choice([10, 300, 1200, 3000])
    lines = ["relu,"] + [" " * (i + 1) + "relu," for i in range(depth)]
    return _append_line(text, "\n".join(lines)), f"continuation×{depth}"


def param_bomb(rng: random.Random, text: str) -> tuple[str, str]:
    """A `param` line with a huge expression, used by the first layer."""
    n = rng.choice([100, 3000, 10_000])
    expr = rng.choice([
        "+".join(["1"] * n), "-(" * n + "1" + ")" * n, "-" * n + "1", "(" * min(n, 300) + "1" + ")" * min(n, 300),
        "10.0**400", "0**-1", "2input", "(-1)**0.5", "10**4400", "(10**64)**64", "((10**64)**64)**64", "1e400",
        "2**64", "1.5", "-1", "0", "10**100", "9" * 5000, "1" + "*10" * 2000, "k", "1/0", "True", "None",
    ])
    line = f"param k={expr}"
    use = rng.choice(["conv3-{k}", "relu x{k}", "fc-{k}", "conv{k}-8", "conv3-8/s{k}", "input {k}"])
    return line + "\n" + _append_line(text, use), f"param-bomb {expr[:16]}… ({len(expr)} chars) in {use}"


def placeholder_bomb(rng: random.Random, text: str) -> tuple[str, str]:
    n = rng.choice([1000, 10_000])
    expr = rng.choice(["+".join(["1"] * n), "-(" * (n // 10) + "1" + ")" * (n // 10), "-" * n + "1",
                       "1" + "*1" * n])
    where = rng.choice(["conv3-{%s}", "relu x{%s}", "conv3-8/s{%s}", "conv(k=3, c={%s})"])
    return _append_line(text, where % expr), f"placeholder-bomb {where} ({len(expr)} chars)"


def whitespace_bomb(rng: random.Random, text: str) -> tuple[str, str]:
    """Whitespace (or one long word) inside one item: the repeat regex scans it."""
    n = rng.choice([2_000, 20_000, 100_000])
    line = rng.choice([f"relu{' ' * n}y", f"conv3-8{' ' * n}x", f"relu{chr(9) * n}z", "relu " + "x" * n,
                       f"relu,{' ' * n}relu", "a" * n, "relu " * (n // 5) + "x2", "relu, " * (n // 6)])
    return _append_line(text, line), f"whitespace-bomb {len(line)} chars"


def huge_size(rng: random.Random, text: str) -> tuple[str, str]:
    """Sizes that are valid but enormous: 10⁷-wide inputs, 10,000-wide kernels, 10¹² features."""
    choice = rng.choice([
        ("input 1x10000000", "residual:\n    conv3-2/s2\nrelu"),
        ("input 1x10000000", "residual:\n    conv3-1/p2\nrelu"),
        ("input 1x10000000", "conv3-1/s3\nrf"),
        ("input 1x100000x100000", "conv(k=10000, c=1), conv(k=10000, c=1)"),
        ("input 3x20000x20000", "conv(k=10000, c=1)/p0, conv(k=10000, c=1)/p0"),
        ("input 3x1000000000000x1000000000000", "conv3-64, maxpool, fc-1000000000000"),
        ("input 1000000000000", "fc-1000000000000, fc-10"),
        ("input 3x224x224", "conv3-1000000000000, relu, conv11-7/s3"),
        ("input 1x" + "9" * 30, "conv3-1, maxpool"),
        ("input 3x224x224", "fc-" + "9" * 30),
        ("input 3x65536x65536", "conv3-512, maxpool, conv3-512/s3, fc-4096"),
    ])
    header, body = choice
    kept = "\n".join(ln for ln in text.split("\n") if not ln.startswith("input"))
    return f"{header}\n{kept}\n{body}\n", f"huge-size {header} / {body.splitlines()[0]}"


def repeat_count(rng: random.Random, text: str) -> tuple[str, str]:
    count = rng.choice(["x²", "x①", "x٣", "x３", "x10001", "x0", "x-1", "x1.5", "x{10**5000}", "x{(-1)**0.5}",
                        "x{10.0**400}", "x{2**64}", "x{0**-1}", "x{1e308}", "x10000", "×٣", "*²", "x" + "9" * 5000,
                        "x{-1}", "x{k}", "x{}", "x{inf}"])
    line = rng.choice(["relu", "conv3-8", "identity", "bn"]) + " " + count
    return _append_line(text, line), f"repeat {count[:12]}"


def table_bomb(rng: random.Random, text: str) -> tuple[str, str]:
    """A connection table with odd map numbers (LeNet-5's C3)."""
    table = rng.choice(['"0,1,²"', '"0;①"', '"٣"', '"0,1; 1,2; 99999999999999999999"', '"-1"', '""', '"0;;1"',
                        "[0 1; 1 2", '"' + "0," * 5000 + '0"', '"0 1 2 3 4 5 6"', "[]", '"0.5"'])
    return _append_line(text, f"table-conv5-2/p0(table={table})"), f"table {table[:16]}"


def expectation_bomb(rng: random.Random, text: str) -> tuple[str, str]:
    """`=>` claims with malformed numbers (check parses them with Decimal)."""
    claim = rng.choice(["params=1,792", "params≈1.8", "macs≈1e5M", "params=1__0", "params≈.M", "macs≈1.2.3M",
                        "params≈NaNM", "params≈InfK", "params=" + "9" * 5000, "macs≈" + "9" * 5000 + "M",
                        "params≈1e999999999K", "rf=²", "rf=0", "rf=" + "9" * 5000, "55x55x①", "total rf=3",
                        "params≈-1K", "params=", "flops~sNaNK", "params≈١٢K", "params=٣", "params≈1." + "0" * 31 + "K",
                        "macs≈0.00000000000000000000000000001M"])
    return _append_line(text, f"relu => {claim}"), f"expectation {claim[:16]}"


def _append_line(text: str, line: str) -> str:
    return text.rstrip("\n") + "\n" + line + "\n"


SMALL: tuple[tuple[float, Op], ...] = (
    (4, delete_token), (3, duplicate_token), (3, swap_tokens), (5, replace_number), (5, insert_char),
    (2, insert_placeholder), (2, truncate), (4, line_edit), (2, encoding), (1, repeat_count),
    (1, table_bomb), (1, expectation_bomb),
)
BOMBS: tuple[tuple[float, Op], ...] = (
    (2, deep_nesting), (1, block_chain), (1, continuation_chain), (2, param_bomb), (1, placeholder_bomb),
    (1, whitespace_bomb), (2, huge_size),
)


def mutate(rng: random.Random, text: str, bomb_rate: float = 0.12) -> tuple[str, str]:
    """One to three small edits, or (at `bomb_rate`) one bomb; returns the text and the labels."""
    if rng.random() < bomb_rate:
        return _apply(rng, text, BOMBS)
    labels = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        text, label = _apply(rng, text, SMALL)
        labels.append(label)
    return text, " + ".join(labels)


def _apply(rng: random.Random, text: str, ops: tuple[tuple[float, Op], ...]) -> tuple[str, str]:
    op = rng.choices([o for _, o in ops], weights=[w for w, _ in ops])[0]
    return op(rng, text)


# -- equivalent spellings (for the `inconsistent` check) -------------------------------------


def equivalent(rng: random.Random, text: str) -> tuple[str, str]:
    """The same spec spelled differently, as docs/spec-language.md allows: must behave alike."""
    kind = rng.choice(["bom", "crlf", "trailing-space", "comments", "blank-lines", "tabs", "header-last"])
    lines = text.split("\n")
    if kind == "bom":
        return "\ufeff" + text, kind
    if kind == "crlf":
        return text.replace("\n", "\r\n"), kind
    if kind == "trailing-space":
        return "\n".join(ln + rng.choice([" ", "  ", "\t"]) for ln in lines), kind
    if kind == "comments":
        return "\n".join(ln + "  # note" if ln.strip() and '"' not in ln else ln for ln in lines), kind
    if kind == "blank-lines":
        return "\n\n".join(lines), kind
    if kind == "tabs":  # "Tabs count as 4 spaces"
        return "\n".join(re.sub(r"^( {4})+", lambda m: "\t" * (len(m.group(0)) // 4), ln) for ln in lines), kind
    headers = [ln for ln in lines if ln.startswith("name ")]
    rest = [ln for ln in lines if not ln.startswith("name ")]
    return "\n".join(rest + headers) + "\n", kind
