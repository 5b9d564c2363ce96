"""The inputs the earlier fuzzing round reported (the issue), as fixed cases.

Each is run by `python -m tests.fuzz --issue` (a table of what each gives today) and in
tests/test_fuzz.py next to the random batch, so every reported failure is checked by
name whatever the random draw finds. Case ids are negative to keep them apart.
"""

from __future__ import annotations

from tests.fuzz.cases import SPEC, Case

REPORT = ["report", SPEC, "--format", "table"]
JSON = ["report", SPEC, "--format", "json"]
NEST = 400  # deeper than the parser's recursion allows (3 frames a level, limit 1000)
LOWER_NEST = 280  # parses, but lowering takes 4 frames a level


def _nested(kind: str, depth: int) -> str:
    lines = ["input 8x4x4"]
    for level in range(depth):
        bar = "| " if kind != "residual" and level else ""
        lines.append(" " * level + bar + f"{kind}:")
    bar = "| " if kind != "residual" else ""
    lines += [" " * depth + bar + "relu", *([" " * depth + "| identity"] if kind == "add" else [])]
    return "\n".join(lines) + "\n"


def _continued(depth: int) -> str:
    return "input 8\nrelu,\n" + "".join(" " * (i + 1) + "relu,\n" for i in range(depth))


def _spec(label: str, text: str, args: list[str] | None = None, via: str = "stdin") -> tuple[str, Case]:
    return label, Case(0, args or REPORT, text, via, "spec", f"issue: {label}")


def _option(label: str, args: list[str], text: str | None = "input 3x32x32\nconv3-8, relu, gap, fc-10\n",
            via: str = "stdin", blame: str = "option") -> tuple[str, Case]:
    return label, Case(0, args, text, via, blame, f"issue: {label}")


CASES: list[tuple[str, Case]] = [
    # {expr} evaluation
    _spec("{10.0**400} (float overflow)", "input 3x8x8\nconv3-{10.0**400}\n"),
    _spec("{(10.0**64)**64} (float overflow)", "input 3x8x8\nconv3-{(10.0**64)**64}\n"),
    _spec("big int to float: {(10**64)**6*1.5}", "input 3x8x8\nconv3-{(10**64)**6*1.5}\n"),
    _spec("' * ' inside {expr} read as a repeat", "input 3x8x8\nconv3-{2 * 4}\n"),
    _spec("{0**-1}", "input 3x8x8\nconv3-{0**-1}\n"),
    _spec("{1+1+...} x10,000", "input 3x8x8\nconv3-{" + "+".join(["1"] * 10_000) + "}\n"),
    _spec("{-(-(-...))} x1,000", "input 3x8x8\nconv3-{" + "-(" * 1000 + "1" + ")" * 1000 + "}\n"),
    _spec("{---...1} x10,000", "input 3x8x8\nconv3-{" + "-" * 10_000 + "1}\n"),
    _option("invalid UTF-8 inside braces (SPEC argument)", ["report", "input 3x8x8\nconv3-{\udcff}\n"], None,
            blame="spec"),
    _option("invalid UTF-8 in --set", ["report", SPEC, "--set", "k=\udcff"], "param k=8\ninput 3x8x8\nconv3-{k}\n"),
    _spec("repeat count of 4,300+ digits in a message", "input 3x8x8\nrelu x{((10**64)**64)**2}\n"),
    _spec("argument conversion of 4,300+ digits", "input 3x8x8\nconv3-" + "9" * 5000 + "\n"),
    _spec("substituting a 4,300+ digit value", "input 3x8x8\nconv3-{((10**64)**64)**2}\n"),
    _spec("--format json of a 4,300+ digit figure", "input {(10**64)**64}\nfc-{(10**64)**64}\n", JSON),
    # parsing
    _spec(f"add: nested {NEST} deep", _nested("add", NEST)),
    _spec(f"residual: nested {NEST} deep", _nested("residual", NEST)),
    _spec(f"concat: nested {NEST} deep", _nested("concat", NEST)),
    _spec("continuation chain of 1,200 lines", _continued(1200)),
    _spec("repeat count x²", "input 3x8x8\nrelu x²\n"),
    _spec("repeat count x①", "input 3x8x8\nrelu x①\n"),
    _spec("connection table with ²", 'input 3x8x8\ntable-conv3-2(table="0,1; ²")\n'),
    # lowering
    _spec(f"residual: nested {LOWER_NEST} deep (lowering)", _nested("residual", LOWER_NEST)),
    _spec(f"add: nested {LOWER_NEST} deep (lowering)", _nested("add", LOWER_NEST)),
    _spec("block calls 64 deep", "input 3x8x8\n" + "".join(f"block b{i}: b{i + 1}\n" for i in range(64))
          + "block b64: relu\nb0\n"),
    # huge but valid sizes
    _spec("inexact size warning with huge sizes", "input 1x" + "1" + "0" * 400 + "\nconv3-1/s3/p0\n"),
    _spec("sharing factor of a huge layer", "input 1x" + "1" + "0" * 400 + "\nconv3-1\n",
          ["report", SPEC, "--columns", "shape,params,connections,fc-equivalent,sharing"]),
    _spec("rf of a 2**64-wide kernel", "input 8x32\nconv18446744073709551616-8\n", ["rf", SPEC]),
    _spec("report json of a huge input", "input 1x" + "1" + "0" * 400 + "\nconv3-1\n", JSON),
    _spec("table human formatting of a huge figure", "input 3x8x8\nconv3-" + "1" + "0" * 330 + "\n"),
    _spec("input 1x10000000, auto shortcut that maps", "input 1x10000000\nresidual:\n    conv3-2/s2\n"),
    _spec("input 1x10000000, auto shortcut that cannot map", "input 1x10000000\nresidual:\n    conv3-1/p2\n"),
    _spec("check: rounded figure with 31 decimals (Decimal)",
          "input 3x8x8\nconv3-8 => params≈1." + "0" * 31 + "K\n", ["check", SPEC]),
    _spec("check: NaN rounded figure", "input 3x8x8\nconv3-8 => params≈NaNK\n", ["check", SPEC]),
    # input/output
    _option("closed standard input", REPORT, None, via="closed", blame="io"),
    _option("spec file that is not UTF-8", REPORT, "input 3x8x8\n# caf\udce9\nrelu\n", via="file", blame="io"),
    _option("rf -o into a missing folder", ["rf", SPEC, "-o", "missing/rf.svg"]),
    _option("export -o into a missing folder", ["export", SPEC, "--torch", "-o", "missing/model.py"]),
    _option("report - < /dev/zero", REPORT, None, via="zeros", blame="io"),
    _spec("byte-order mark", "\ufeffinput 3x8x8\nrelu\n"),
    _option("a directory as SPEC", REPORT, None, via="dir", blame="io"),
    # verify
    _option("verify --input 3x100000x100000", ["verify", SPEC, "--device", "cpu", "--runs", "0", "--warmup", "0",
                                                "--input", "3x100000x100000"]),
    _option("verify --batch 10000000", ["verify", SPEC, "--device", "cpu", "--runs", "0", "--warmup", "0",
                                        "--batch", "10000000"]),
    # text escaping its field
    _option("calc conv --kernel with newlines and parentheses",
            ["calc", "conv", "--input", "3x32x32", "--kernel", "3)\nrelu\nconv(k=1, c=4", "--out-channels", "8"],
            None),
    _spec("complex number in a message", "param k=(-1)**0.5\ninput 3x8x8\nrelu x{k}\n"),
    _spec("inf in a message", "input 3x8x8\nrelu x{1e308*10}\n"),
    _spec("param k=2input (SyntaxWarning)", "param k=2input\ninput 3x8x8\nconv3-{k}\n"),
    # hangs on valid input
    _spec("20,000 spaces inside an item", "input 3x8x8\nrelu" + " " * 20_000 + "y\n"),
    _spec("a 1 MB line", "input 3x8x8\nrelu" + " " * 1_000_000 + "y\n"),
    _spec("rf on two conv(k=10000)", "input 1x100000x100000\nconv(k=10000, c=1), conv(k=10000, c=1)\n",
          ["rf", SPEC]),
    # positions
    _spec("a tab before the error", "input 3x8x8\nconv3-8,\n\tconv3-6q\n"),
]


def cases() -> list[Case]:
    out = []
    for i, (_, case) in enumerate(CASES, start=1):
        case.id = -i
        out.append(case)
    return out


def label(case_id: int) -> str:
    return CASES[-case_id - 1][0]
