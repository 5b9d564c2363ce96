"""Hashes of every output a speed change must leave byte-identical.

For every built-in spec, every imported reference spec (tests/reference/imported/) and the
bench's generated graphs (1,000 layers): the SHA-256 of `report --format json`, of the table
(`report`, plain text), of `report --format csv`, of `check` and of `rf`, run in-process
through the CLI. `--write FILE` records them; `--against FILE` compares and lists every
difference (exit 1 if any). Run it before and after an optimisation:

    .venv/bin/python tools/output_hashes.py --write /tmp/before.json
    .venv/bin/python tools/output_hashes.py --against /tmp/before.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

COMMANDS = {
    "json": ["report", "{spec}", "--format", "json"],
    "table": ["report", "{spec}"],
    "csv": ["report", "{spec}", "--format", "csv"],
    "check": ["check", "{spec}"],
    "rf": ["rf", "{spec}"],
}


def specs(folder: Path) -> dict[str, str]:
    """Name → what to pass as SPEC: built-in names, imported spec files, generated graph files."""
    import bench  # bench/bench.py: the generated graphs
    from archcalc.zoo import names

    out = {name: name for name in names()}
    for path in sorted((ROOT / "tests" / "reference" / "imported").glob("*.arch")):
        out[f"imported/{path.stem}"] = str(path.relative_to(ROOT))  # run from ROOT: the same text in any checkout
    for kind, make in bench.GRAPHS.items():
        path = folder / f"{kind.replace(' ', '_')}.arch"
        path.write_text(make(1000), encoding="utf-8")
        out[f"generated/{kind}"] = str(path)
    return out


def hashes() -> dict[str, dict[str, str]]:
    from archcalc.cli import cli

    runner = CliRunner()
    os.chdir(ROOT)  # every path given relative to the checkout: messages name the file, alike in any checkout
    folder = Path(".output-hashes")
    folder.mkdir(exist_ok=True)
    out: dict[str, dict[str, str]] = {}
    for name, spec in specs(folder).items():
        out[name] = {}
        for what, args in COMMANDS.items():
            result = runner.invoke(cli, [a.format(spec=spec) for a in args], env={"COLUMNS": "200"})
            text = f"exit {result.exit_code}\n{result.output}"
            out[name][what] = hashlib.sha256(text.encode()).hexdigest()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", metavar="FILE")
    group.add_argument("--against", metavar="FILE")
    options = parser.parse_args()
    now = hashes()
    if options.write:
        Path(options.write).write_text(json.dumps(now, indent=1, sort_keys=True), encoding="utf-8")
        print(f"{sum(map(len, now.values()))} outputs of {len(now)} specs recorded in {options.write}")
        return
    before = json.loads(Path(options.against).read_text(encoding="utf-8"))
    differ = [f"{name} {what}" for name in sorted(set(before) | set(now)) for what in COMMANDS
              if before.get(name, {}).get(what) != now.get(name, {}).get(what)]
    total = sum(map(len, now.values()))
    listed = "" if not differ else ": differ: " + ", ".join(differ)
    print(f"{total - len(differ)} of {total} outputs identical{listed}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
