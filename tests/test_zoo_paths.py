"""The zoo reads a spec named by a word with os.path (no pathlib on a cold report's path) and a
path as pathlib spells it, as messages always have: the same file, the same words."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from archcalc.cli import cli
from archcalc.errors import UsageError
from archcalc.zoo import read


@pytest.mark.parametrize("word", ["resnet152", "a.arch", ".", "..", "...", "a b", "a\\b", "~x", "-x", "a\x00b"])
def test_a_word_is_its_own_path(word: str) -> None:  # what lets read() skip pathlib for it
    assert str(Path(word)) == word


def test_names_paths_and_missing_specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.arch").write_text("input 3x8x8\nconv3-4\n")
    (tmp_path / "sub").mkdir()
    assert read("resnet152").filename == "resnet152.arch"
    assert read("net.arch").filename == "net.arch" and read("./net.arch").filename == "net.arch"
    assert read("sub/../net.arch").filename == "sub/../net.arch" and read(".//net.arch").filename == "net.arch"
    assert read("examples/alexnet-hand").filename == "examples/alexnet-hand.arch"
    for directory in ("sub", "sub/", ".", ""):
        with pytest.raises(UsageError, match="is a directory"):
            read(directory)
    with pytest.raises(UsageError, match="no built-in spec or file named 'resnet15'. Did you mean 'resnet152'"):
        read("resnet15")


def test_a_name_too_long_for_the_file_system_is_a_clean_error(tmp_path: Path) -> None:
    """It was an OSError traceback (pathlib's is_dir raises ENAMETOOLONG; os.path answers False)."""
    name = "a" * (os.pathconf(tmp_path, "PC_NAME_MAX") + 1)
    result = CliRunner().invoke(cli, ["report", name])
    assert result.exit_code == 2 and f"error: no built-in spec or file named '{name}'" in result.output
