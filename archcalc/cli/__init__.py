"""The command line: thin commands over the library; errors become clean messages here.

Heavy imports (torch, graphviz) happen inside the commands that need them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from archcalc import __version__
from archcalc.errors import ArchcalcError, SpecError


class CleanError(click.ClickException):
    """A library error shown as its own text on stderr, exit status 2, no traceback."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(self.format_message(), err=True)


# Each command and the module of this package that defines it (with @cli.command). A command's
# module is imported when the command is asked for, so `archcalc report` loads neither the other
# commands' modules nor what their options need at import (check's --convention choices are the
# counting conventions: the whole conventions pass). tests/test_cli.py holds this table to the modules.
COMMANDS = {
    "calc": "calc",
    "check": "check",
    "compare": "compare",
    "conventions": "conventions",
    "explain-diff": "conventions",
    "export": "verify",
    "import": "importer",
    "layers": "commands",
    "list": "commands",
    "render": "render",
    "report": "commands",
    "rf": "rf",
    "sweep": "sweep",
    "training": "training",
    "verify": "verify",
}


class ArchcalcGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            import importlib

            # an unknown name loads them all: click's "did you mean" looks among the loaded commands
            for module in [COMMANDS[cmd_name]] if cmd_name in COMMANDS else sorted(set(COMMANDS.values())):
                importlib.import_module(f"{__name__}.{module}")
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SpecError as e:
            raise CleanError(e.format()) from None
        except ArchcalcError as e:
            raise CleanError(f"error: {e}") from None


@click.group(cls=ArchcalcGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="archcalc")
def cli() -> None:
    """Static analysis of neural-network architectures from a text spec.

    \b
    Examples:
      archcalc report vgg16                  # per-layer table: shapes, params, MACs
      archcalc report alexnet --format json  # the same as JSON for programs
      archcalc report my.arch --input 3x32x32
      echo 'input 1x28x28
      conv5-6, maxpool, FC-10' | archcalc report -
      archcalc list                          # the built-in model zoo
      archcalc layers                        # every layer type and its spec syntax
    """


def spec_argument(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument("spec", metavar="SPEC")(f)


def input_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--input", "input_shape", metavar="[NAME=]SHAPE", multiple=True,
                        help="Override the spec's input shape, channels first: 3x32x32; for a spec with "
                             "several inputs NAME=SHAPE, repeatable (--input left=1x64x64 --input right=1x64x64), "
                             "or one SHAPE for inputs declared alike.")(f)


def format_option(*choices: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--format", "fmt", type=click.Choice(choices), default=choices[0],
                        show_default=True, help="Output format.")


def parse_input(values: tuple[str, ...] | str | None) -> tuple[int, ...] | dict[str, tuple[int, ...]] | None:
    """`--input 3x32x32` → a shape; `--input left=1x64x64 --input right=…` → one per input name."""
    given = (values,) if isinstance(values, str) else tuple(values or ())
    if not given:
        return None
    named: dict[str, tuple[int, ...]] = {}
    for value in given:
        name, eq, shape = value.partition("=")
        if not eq:
            if len(given) > 1:
                from archcalc.errors import UsageError

                raise UsageError("several --input values must each name their input: --input left=1x64x64")
            return _shape(value, "--input")
        named[name.strip()] = _shape(shape.strip(), f"--input {name.strip()}=")
    return named


def _shape(value: str, where: str) -> tuple[int, ...]:
    from archcalc.errors import Loc, Source
    from archcalc.lang import parse_shape

    try:
        return parse_shape(value, Loc(1, 1, max(1, len(value))))
    except SpecError as e:
        raise e.with_source(Source(value, where)) from None


def path_text(path: Any) -> str:
    """A path as a message prints it: a name holding bytes that are not UTF-8 (which reach Python
    as lone surrogates) shows them as '\ufffd' instead of failing to print."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def check_output(path: str | None) -> None:
    """Refuse an output path that cannot be written before any work is done (a missing folder,
    a directory), with a message that says which."""
    if path is None:
        return
    from pathlib import Path

    from archcalc.errors import UsageError

    target = Path(path)
    try:
        if target.is_dir():
            raise UsageError(f"cannot write {path_text(path)}: it is a directory")
        folder = target.parent
        if not folder.is_dir():
            raise UsageError(f"cannot write {path_text(path)}: the folder {path_text(folder)} does not exist")
    except OSError as e:  # a name too long for the file system, a loop of links
        raise UsageError(f"cannot write {path_text(path)}: {e.strerror or e}") from None


def show(renderable: Any, file: Any = None) -> None:
    """Print a rich renderable, or a list of them and plain strings (printed as they are), to
    stdout or `file`; when not a terminal, as wide as it needs so no number is cut. A part with
    `plain_text()` (the table report's parts) gives the text rich would print to a UTF-8 pipe or
    file, found without importing rich, or None to leave it to rich; one with `text_for(console)`
    (the layer table) gives the text rich would print on that console, or None."""
    plain = plain_output(file)
    for part in renderable if isinstance(renderable, list) else [renderable]:
        if isinstance(part, str):
            click.echo(part, file=file)
            continue
        text = part.plain_text() if plain and hasattr(part, "plain_text") else None
        if text is not None:
            click.echo(text, file=file)
            continue
        from rich.console import Console

        console = Console(file=file)
        text = part.text_for(console) if hasattr(part, "text_for") else None  # the layer table, drawn as rich would
        if text is not None:
            click.echo(text, file=file, color=True)  # color: its escapes, where rich styles a terminal
            continue
        if not console.is_terminal and not console.is_jupyter:
            from archcalc.report.plain_table import WIDEST  # the plain parts decline lines wider than this

            needed = console.measure(part, options=console.options.update(width=WIDEST)).maximum
            console = Console(file=file, width=max(80, needed))
        console.print(part)


def plain_output(file: Any = None) -> bool:
    """Whether rich would print to `file` (stdout by default) with no styles and no terminal's
    width: a plain UTF-8 pipe or file, outside Jupyter and Windows' legacy console. rich's own
    rules (Console.is_terminal, rich 15): TTY_COMPATIBLE=0/1 says no/yes, a set FORCE_COLOR
    says yes unless empty, else the file's isatty(). Anything unusual (IDLE, a file rich
    proxies, no file) is left to rich."""
    import builtins
    import os

    target = sys.stdout if file is None else file
    if target is None or hasattr(target, "rich_proxied_file") or sys.platform == "win32":
        return False
    if hasattr(builtins, "get_ipython") or "google.colab" in sys.modules:  # rich asks IPython about Jupyter
        return False
    if getattr(sys.stdin, "__module__", "").startswith("idlelib"):
        return False
    if not (getattr(target, "encoding", "utf-8") or "utf-8").lower().startswith("utf"):
        return False  # rich draws an ASCII box there
    tty_compatible = os.environ.get("TTY_COMPATIBLE", "")
    if tty_compatible in ("0", "1"):
        return tty_compatible == "0"
    if os.environ.get("FORCE_COLOR") is not None:
        return os.environ["FORCE_COLOR"] == ""
    isatty = getattr(target, "isatty", None)
    try:
        return isatty is None or not isatty()
    except ValueError:  # a closed file: rich takes it for no terminal
        return True


# the commands that run torch: its modules and autograd graphs make cycles the collector must free
TORCH_COMMANDS = frozenset({"verify", "export", "import"})


def main() -> None:
    """The `archcalc` command. A static command runs with the cyclic collector off until the
    process ends: it builds only acyclic records (hundreds of thousands for a big graph, which
    each collection would walk again to free nothing: ~5 % of a 10,000-layer command), and leaves
    about 500 objects of cyclic garbage whatever the graph's size (measured over report, rf,
    render, check and compare). archcalc/quiet_gc.py pauses it inside, for every caller."""
    if not TORCH_COMMANDS.intersection(sys.argv[1:2]):
        import gc

        gc.disable()
    cli(prog_name="archcalc")


__all__ = ["COMMANDS", "TORCH_COMMANDS", "cli", "main", "show"]
