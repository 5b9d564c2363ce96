"""The seed corpus: the built-in zoo specs (`specs/*.arch`, `specs/examples/*.arch`,
`specs/families/*.arch`) as text.

They are read as files (data, not archcalc internals). Each gets a weight for drawing:
large networks (DenseNet-201 expands to 800 layers) cost seconds per table, so they
are drawn less often than LeNet-5. The weight comes from each spec's layer count, as
`archcalc report NAME --format json` gave it when `zoo.json` beside this file was
written (`python -m tests.fuzz --refresh-zoo`). Keeping the counts in a file makes the
draw, and so case N of a seed, independent of what archcalc does today: a spec that a
change in archcalc breaks must not reshuffle every case. A spec missing from the file
gets the weight of a 200-layer one.
"""

from __future__ import annotations

import functools
import json
import random
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"


@dataclass(frozen=True)
class Seed:
    name: str  # as `archcalc report NAME` knows it: 'resnet18', 'examples/alexnet-hand'
    text: str
    weight: float  # how often to draw it: 1 up to 40 layers, 40/layers beyond
    params: int  # its parameter count (export builds every weight: keep it to small ones)


ZOO_FILE = Path(__file__).with_name("zoo.json")
UNKNOWN = {"layers": 200, "params": 10**9}


@functools.lru_cache(maxsize=1)
def zoo() -> tuple[Seed, ...]:
    sizes = json.loads(ZOO_FILE.read_text(encoding="utf-8")) if ZOO_FILE.exists() else {}
    seeds = []
    for path in _paths():
        name = _name(path)
        size = sizes.get(name, UNKNOWN)
        seeds.append(Seed(name, path.read_text(encoding="utf-8"), min(1.0, 40 / max(1, size["layers"])),
                          size["params"]))
    return tuple(seeds)


def _paths() -> list[Path]:
    return (sorted(SPECS.glob("*.arch")) + sorted((SPECS / "examples").glob("*.arch"))
            + sorted((SPECS / "families").glob("*.arch")))


def _name(path: Path) -> str:
    return path.relative_to(SPECS).with_suffix("").as_posix()


def refresh() -> dict[str, dict[str, int]]:
    """Measure every zoo spec's layers and parameters with the CLI and write zoo.json."""
    from click.testing import CliRunner

    from archcalc.cli import cli

    sizes = {}
    for path in _paths():
        result = CliRunner().invoke(cli, ["report", _name(path), "--format", "json"])
        try:
            data = json.loads(result.stdout)
            sizes[_name(path)] = {"layers": len(data["layers"]), "params": int(data["totals"]["params"])}
        except (ValueError, KeyError, TypeError):
            continue
    ZOO_FILE.write_text(json.dumps(sizes, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return sizes


def pick(rng: random.Random, small: float = 0.0, max_params: int | None = None) -> Seed:
    """A zoo spec, drawn by weight; `small` keeps to those of at least that weight (0.5: at
    most 80 layers), `max_params` to small models."""
    seeds = [s for s in zoo() if s.weight >= small and (max_params is None or s.params <= max_params)]
    return rng.choices(seeds, weights=[s.weight for s in seeds])[0]


def names() -> list[str]:
    return [s.name for s in zoo()]


def read(name: str) -> str:
    """The text of one zoo spec by name, without drawing weights (for the worker)."""
    return (SPECS / f"{name}.arch").read_text(encoding="utf-8")
