"""`archcalc check a.arch b.arch`: one verdict block per spec, the exit status the worst."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from archcalc.cli import cli

runner = CliRunner()  # stdout and stderr apart

GOOD = "name good\ninput 3x227x227\nconv11-96/s4/p0 => 55x55x96, params=34944\n"
WRONG = "name wrong\ninput 3x227x227\nconv11-96/s4/p0 => params=34000\n"
BROKEN = "input 3x227x227\nconv11-96/s4/p0, relux\n"


def write(tmp_path: Path, **specs: str) -> list[str]:
    paths = []
    for name, text in specs.items():
        path = tmp_path / f"{name}.arch"
        path.write_text(text)
        paths.append(str(path))
    return paths


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, ["check", *args])
    return result.exit_code, result.stdout, result.stderr


def test_two_that_hold_exit_0_with_a_block_each(tmp_path: Path) -> None:
    code, out, _ = run("examples/alexnet-hand", "examples/vgg16-hand", *write(tmp_path, good=GOOD))
    assert code == 0, out
    assert "29 of 29 figures hold" in out and "21 of 21 figures hold" in out and "2 of 2 figures hold" in out
    assert out.index("examples/alexnet-hand:") < out.index("examples/vgg16-hand:")
    assert out.rstrip().endswith("3 specs: 3 hold")


def test_a_wrong_figure_anywhere_exits_1(tmp_path: Path) -> None:
    code, out, _ = run(*write(tmp_path, good=GOOD, wrong=WRONG))
    assert code == 1
    assert "0 of 1 figures hold; 1 wrong" in out
    assert out.rstrip().endswith("2 specs: 1 hold, 1 wrong")


def test_a_spec_that_cannot_be_read_is_said_and_the_others_still_checked(tmp_path: Path) -> None:
    good, broken, wrong = write(tmp_path, good=GOOD, broken=BROKEN, wrong=WRONG)
    code, out, err = run(good, broken, wrong)
    assert code == 2  # worst: a spec that cannot be checked
    assert f"{broken}: cannot be checked" in out
    assert f"{broken}:2:18: error: unknown layer 'relux'" in err
    assert "2 of 2 figures hold" in out and "0 of 1 figures hold; 1 wrong" in out
    assert out.rstrip().endswith("3 specs: 1 hold, 1 wrong, 1 cannot be checked")


def test_json_is_a_list_of_one_object_per_spec(tmp_path: Path) -> None:
    good, broken, wrong = write(tmp_path, good=GOOD, broken=BROKEN, wrong=WRONG)
    code, out, _ = run(good, broken, wrong, "--format", "json")
    assert code == 2
    data = json.loads(out)
    assert [d["spec"] for d in data] == [good, broken, wrong]
    assert [d["ok"] for d in data] == [True, False, False]
    assert data[0]["checked"] == 2 and data[0]["name"] == "good"
    assert data[1]["error"].startswith(f"{broken}:2:18: error: unknown layer 'relux'")
    assert data[2]["wrong"] == 1 and data[2]["results"][0]["actual"] == 34944  # a number, as check JSON gives them


def test_one_spec_behaves_as_before(tmp_path: Path) -> None:
    (broken,) = write(tmp_path, broken=BROKEN)
    code, out, err = run(broken)
    assert code == 2 and out == "" and err.startswith(f"{broken}:2:18: error: unknown layer 'relux'")
    code, out, _ = run("examples/alexnet-hand", "--format", "json")
    assert code == 0 and json.loads(out)["checked"] == 29  # one object, not a list


def test_no_spec_is_a_usage_error() -> None:
    code, _, err = run()
    assert code == 2 and "Missing argument 'SPEC...'" in err


def test_a_bad_input_shape_is_the_commands_error(tmp_path: Path) -> None:
    code, out, err = run(*write(tmp_path, good=GOOD, wrong=WRONG), "--input", "3x0x2")
    assert code == 2 and out == "" and "--input" in err
