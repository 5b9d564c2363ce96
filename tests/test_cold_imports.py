"""A cold `archcalc report --format json` imports only what it uses (issue 18's cold start):
no torch, no graph library, no rich (the table's), no difflib (error messages'), no pathlib (and
the urllib.parse and ipaddress it brings: the zoo reads a name with os.path), no csv (the CSV
format's), and of archcalc's own modules neither another command's nor the table's rows and columns."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from archcalc.cli import COMMANDS

NOT_ON_THE_JSON_PATH = ("torch", "networkx", "rich", "difflib", "graphviz", "pathlib", "urllib", "ipaddress", "csv",
                        "fnmatch")
# archcalc's own modules a JSON report does not use: the other commands', the table's rows and columns
NOT_FOR_JSON = sorted({f"archcalc.cli.{module}" for module in COMMANDS.values()} - {"archcalc.cli.commands"}
                      | {"archcalc.report.rows", "archcalc.report.columns", "archcalc.report.table"})


@pytest.mark.parametrize("spec", ["resnet152", "gpt2"])
def test_a_json_report_imports_nothing_it_does_not_use(spec: str) -> None:
    code = (
        "import contextlib, io, json, sys\n"
        "from archcalc.cli import main\n"
        f"sys.argv = ['archcalc', 'report', {spec!r}, '--format', 'json']\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit as e:\n"
        "        assert not e.code, e.code\n"
        "assert json.loads(out.getvalue())['totals']['params'] > 0\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(NOT_ON_THE_JSON_PATH)!r}))))\n"
        f"print(json.dumps(sorted(set(sys.modules) & set({NOT_FOR_JSON!r}))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert [json.loads(line) for line in out.stdout.strip().splitlines()[-2:]] == [[], []]


COMPILED_RECORDS = """
import contextlib, dataclasses, io, sys
from archcalc.cli import main

sys.argv = ['archcalc', 'report', 'resnet152', '--format', 'json']
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main()
    except SystemExit:
        pass


def compiled(cls):  # a method dataclass wrote for this class comes from exec: its file is '<string>'
    names = ('__init__', '__eq__', '__hash__', '__repr__', '__setattr__', '__delattr__')
    methods = (cls.__dict__.get(name) for name in names)
    return any(getattr(getattr(m, '__code__', None), 'co_filename', '') == '<string>' for m in methods)


def written(cls):  # an __init__ records.py wrote on the class's first construction
    return cls.__dict__['__init__'].__code__.co_filename.startswith('<record ')


ours = [m for name, m in list(sys.modules.items()) if name.startswith('archcalc')]
frozen = [v for m in ours for v in vars(m).values() if isinstance(v, type) and v.__module__ == m.__name__
          and dataclasses.is_dataclass(v) and v.__dataclass_params__.frozen]
print(sum(map(written, frozen)), len(frozen), sorted(f'{v.__module__}.{v.__qualname__}' for v in frozen if compiled(v)))
"""


def test_every_frozen_record_a_json_report_loads_is_a_record() -> None:
    """`@dataclass(frozen=True)` compiles six methods for its class at every start; `@record`
    (archcalc/records.py) shares five and writes __init__ when the class is first built: a record
    on this path is made with @record."""
    out = subprocess.run([sys.executable, "-c", COMPILED_RECORDS], capture_output=True, text=True, check=True)
    built, count, compiled = out.stdout.strip().splitlines()[-1].split(" ", 2)
    assert compiled == "[]" and int(count) > 50
    assert 10 < int(built) < int(count) * 0.8  # an __init__ is written only for a record the command builds


TABLE_REPORT = """
import contextlib, io, sys
from archcalc.cli import main

sys.argv = ['archcalc', 'report', sys.argv[1]]
with contextlib.redirect_stdout(io.StringIO()) as out:
    try:
        main()
    except SystemExit as e:
        assert not e.code, e.code
assert 'by kind of layer' in out.getvalue()
print(sorted({m.split('.')[0] for m in sys.modules} & {'rich', 'pygments', 'markdown_it'}))
"""


@pytest.mark.parametrize("spec", ["vgg16", "resnet152", "siamese"])
def test_a_table_report_to_a_pipe_imports_no_rich(spec: str) -> None:
    """To a pipe or a file the table report is plain text (report/plain_table.py draws rich's
    bytes; tests/test_plain_report.py holds them to rich): rich is not loaded at all."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    out = subprocess.run([sys.executable, "-c", TABLE_REPORT, spec], capture_output=True, text=True, check=True,
                         env=env)
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("setting", [{"FORCE_COLOR": "1"}, {"TTY_COMPATIBLE": "1"}])
def test_the_table_does_import_rich_on_a_terminal(setting: dict[str, str]) -> None:
    """The check above can fail: on a terminal (forced as rich forces it) rich draws the parts it
    styles and wraps, and is found in sys.modules."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")} | setting
    out = subprocess.run([sys.executable, "-c", TABLE_REPORT, "vgg16"], capture_output=True, text=True, check=True,
                         env=env)
    assert "'rich'" in out.stdout.strip().splitlines()[-1]


def test_a_report_of_a_built_in_spec_loads_no_importer() -> None:
    """A built-in name or a spec file is no model to import: `archcalc.importers` (its records,
    the spec writer, the checker) and pkgutil stay out; `x.py:Net` or `m.onnx` still reach them."""
    code = ("import contextlib, io, sys\nfrom archcalc.cli import main\n"
            "sys.argv = ['archcalc', 'report', 'resnet152', '--format', 'json']\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    try:\n        main()\n"
            "    except SystemExit as e:\n        assert not e.code\n"
            "print(sorted(m for m in sys.modules if m.startswith('archcalc.importers') or m == 'pkgutil'))\n"
            "import archcalc\n"
            "try:\n    archcalc.load('no_such_module_here:Net')\nexcept Exception:\n    pass\n"
            "print('archcalc.importers' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-2:] == ["[]", "True"]


GC_STATE = """
import atexit, gc, sys
atexit.register(lambda: print('collector', gc.isenabled(), file=sys.stderr))
sys.argv = ['archcalc', *sys.argv[1:]]
from archcalc.cli import main
main()
"""


@pytest.mark.parametrize("args, enabled", [(["list"], False), (["report", "lenet5", "--format", "json"], False),
                                           (["verify", "--help"], True), (["import", "--help"], True)])
def test_a_static_command_runs_without_the_cyclic_collector(args: list[str], enabled: bool) -> None:
    out = subprocess.run([sys.executable, "-c", GC_STATE, *args], capture_output=True, text=True)
    assert out.returncode == 0 and f"collector {enabled}" in out.stderr


def test_the_torch_commands_are_commands() -> None:
    from archcalc.cli import COMMANDS, TORCH_COMMANDS

    assert TORCH_COMMANDS <= set(COMMANDS)
