"""The fuzzer's own logic (tests/fuzz): its oracle, shrinking and reproducibility.

Pure functions only, no archcalc runs: these pass whatever archcalc does today.
"""

from __future__ import annotations

from tests.fuzz.cases import SPEC, Case, compact, shell
from tests.fuzz.classify import message_shape, position_problem, read_lines, recursion_cycle
from tests.fuzz.corpus import ROOT
from tests.fuzz.inputs import make_case
from tests.fuzz.minimize import ddmin, option_groups
from tests.fuzz.options import DEFAULT_COMMANDS


def _case(spec: str) -> Case:
    return Case(1, ["report", SPEC], spec)


def test_a_good_position_passes() -> None:
    stderr = "<stdin>:2:11: error: unknown layer 'maxpol'\n 2 | conv3-64, maxpol\n   |           ^^^^^^\n"
    assert position_problem(_case("input 3x8x8\nconv3-64, maxpol\n"), stderr) is None


def test_a_message_without_position_is_caught() -> None:
    assert position_problem(_case("input 3x8x8\nrelu\n"), "<stdin>: error: the spec has no layers\n") == "no position"


def test_lines_end_only_at_newlines() -> None:
    spec = "input 3x8x8\x0cconv3-64\nrelux\n"  # a form feed is not a line break in a text file
    stderr = "<stdin>:3:1: error: unknown layer 'relux'\n 3 | relux\n   | ^^^^^\n"
    assert read_lines(spec)[1] == "relux"
    assert position_problem(_case(spec), stderr) == "line out of range"


def test_a_column_counted_on_expanded_tabs_is_caught() -> None:
    spec = "input 3x8x8\nconv3-8,\n\tconv3-6q\n"
    stderr = ("<stdin>:3:5: error: malformed 'conv' token 'conv3-6q'\n 3 | \tconv3-6q\n"
              "   |     ^^^^^^^^\n")
    assert position_problem(_case(spec), stderr) == "column counts tabs as 4"


def test_message_shape_blanks_quotes_and_numbers() -> None:
    first = "f.arch:3:4: error: repeat count 12 of 'relu' is out of range\n"
    assert message_shape(first) == "repeat count N of '…' is out of range"


def test_recursion_is_keyed_by_the_files_that_recur() -> None:
    frames = [["archcalc/spec/parser.py", f, 1] for f in ("_statement", "_compound") * 50]
    frames.append(["archcalc/errors.py", "loc", 9])
    assert recursion_cycle(frames) == "archcalc/spec/parser.py"


def test_ddmin_finds_the_two_lines_that_matter() -> None:
    lines = [f"line {i}\n" for i in range(40)]
    kept = ddmin(lines, lambda ls: "line 7\n" in ls and "line 31\n" in ls)
    assert kept == ["line 7\n", "line 31\n"]


def test_option_groups_keep_values_with_their_options() -> None:
    groups = option_groups(["report", SPEC, "--format", "json", "--explain", "--depth", "-1"])
    assert groups == [["report"], [SPEC], ["--format", "json"], ["--explain"], ["--depth", "-1"]]


def test_a_case_is_the_same_whatever_ran_before() -> None:
    first = make_case(7, 123, DEFAULT_COMMANDS)
    for other in range(5):
        make_case(7, other, DEFAULT_COMMANDS)
    assert make_case(7, 123, DEFAULT_COMMANDS) == first


def test_the_shell_line_writes_the_exact_bytes() -> None:
    line = shell(Case(1, ["report", SPEC], "input 3x8x8\nrelu\x00 'x' 100%\n\udcff"))
    assert line == r"printf 'input 3x8x8\nrelu\000 \047x\047 100%%\n\377' | archcalc report -"


def test_compact_writes_long_runs_short() -> None:
    assert compact("{" + "1+" * 500 + "1}") == "{«'1+'×500»1}"


def test_a_position_in_a_family_spec_is_read_from_that_file() -> None:
    spec = "use mobilenet_v3\ninput 3\n"
    family = (ROOT / "specs" / "families" / "mobilenet_v3.arch").read_text(encoding="utf-8").split("\n")
    number = next(i for i, line in enumerate(family, 1) if "conv{k}-{c}/s{s}/nobias" in line)
    line = family[number - 1]
    col = line.index("conv") + 1
    stderr = (f"families/mobilenet_v3.arch:{number}:{col}: error: cannot apply 'conv3-16/s2/nobias' to 3\n"
              f" {number} | {line}\n {' ' * len(str(number))} | {' ' * (col - 1)}^^^^\n")
    assert position_problem(_case(spec), stderr) is None


def test_a_bom_is_no_part_of_the_first_line() -> None:
    stderr = "<stdin>:1:1: error: the spec has no input shape\n 1 | # generated 1\n   | ^\n"
    assert position_problem(_case("\ufeff# generated 1"), stderr) is None
