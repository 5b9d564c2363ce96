#!/usr/bin/env python3
"""How fast archcalc's static path is, and that it grows linearly with the network.

Three measurements, printed as tables:

1. every built-in spec in-process: parse, expand (blocks unrolled), shapes and the
   passes (counts, MACs, other ops), the median of several runs;
2. every built-in spec from a cold shell: `archcalc report NAME --format json` in a fresh
   process (interpreter start, imports, analysis, JSON), wall time, median of a few runs;
3. generated chains of 1,000 / 10,000 / 100,000 layers (conv3-16 and relu alternating, one
   pair per line) timed per phase, with the time per layer: flat if the growth is linear;
   once more with Python's cyclic garbage collector off, which is what makes it rise.

It also checks that `import archcalc.cli` and a report never import torch.

    .venv/bin/python bench/bench.py             # everything, about two minutes on 2 cores
    .venv/bin/python bench/bench.py --quick     # fewer runs, chains up to 10,000 layers
"""

from __future__ import annotations

import argparse
import functools
import gc
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def median_seconds(fn: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:9.1f}"


# -- torch stays out ----------------------------------------------------------------------------


def torch_free_report() -> bool:
    """Run `archcalc report resnet50` (table and JSON) in this process; True if torch stayed out."""
    from click.testing import CliRunner

    import archcalc.cli

    for args in (["report", "resnet50"], ["report", "resnet50", "--format", "json"]):
        result = CliRunner().invoke(archcalc.cli.cli, args)
        if result.exit_code != 0:
            raise RuntimeError(f"archcalc {' '.join(args)} failed:\n{result.output}")
    return "torch" not in sys.modules


# -- built-in specs -----------------------------------------------------------------------------


def in_process(name: str, runs: int) -> tuple[int, float]:
    """Nodes of the spec and the median seconds of parse + expand + shapes + passes."""
    from archcalc import load_text
    from archcalc.passes.analysis import analyze
    from archcalc.zoo import read

    source = read(name)

    def once() -> Any:
        return analyze(load_text(source.text, source.filename))

    return len(once().graph), median_seconds(once, runs)


def cold_shell(name: str, runs: int) -> float:
    """Median wall seconds of `archcalc report NAME --format json` in a fresh process."""
    exe = Path(sys.executable).parent / "archcalc"
    command = [str(exe), "report", name, "--format", "json"]

    def once() -> None:
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)

    return median_seconds(once, runs)


def zoo_table(runs: int, shell_runs: int) -> None:
    from archcalc.zoo import names

    print(f"\n{'spec':<17}{'nodes':>7}  {'in-process ms':>13}  {'µs/node':>8}  {'cold shell ms':>13}")
    total_in, total_cold = 0.0, 0.0
    for name in names():
        nodes, seconds = in_process(name, runs)
        cold = cold_shell(name, shell_runs)
        total_in, total_cold = total_in + seconds, total_cold + cold
        print(f"{name:<17}{nodes:>7}  {ms(seconds):>13}  {seconds / nodes * 1e6:8.1f}  {ms(cold):>13}")
    print(f"{'all ' + str(len(names())):<17}{'':>7}  {ms(total_in):>13}  {'':>8}  {ms(total_cold):>13}")


# -- chains ---------------------------------------------------------------------------------------


def chain_text(layers: int) -> str:
    """`layers` layers: conv3-16 and relu alternating, one pair per line, on a 16×8×8 input."""
    lines = ["name chain", "input 16x8x8"] + ["conv3-16, relu"] * (layers // 2)
    return "\n".join(lines) + "\n"


def chain_phases(layers: int, runs: int) -> dict[str, float]:
    """Median seconds of each phase: parse, expand, shapes, passes, JSON."""
    from archcalc import lang as spec
    from archcalc.passes.analysis import analyze
    from archcalc.passes.shapes import infer
    from archcalc.report.formats import to_json

    text = chain_text(layers)
    tree = spec.parse(text, "chain.arch")
    drafts = spec.expand(tree)
    graph = infer(drafts)
    analysis = analyze(graph)
    assert len(graph) == layers + 1  # + the input node
    return {
        "parse": median_seconds(lambda: spec.parse(text, "chain.arch"), runs),
        "expand": median_seconds(lambda: spec.expand(tree), runs),
        "shapes": median_seconds(lambda: infer(drafts), runs),
        "passes": median_seconds(lambda: analyze(graph), runs),
        "json": median_seconds(lambda: to_json(analysis), runs),
    }


def without_gc(fn: Callable[[], Any]) -> Any:
    """Run with Python's cyclic garbage collector off (the graph has no cycles to collect)."""
    gc.collect()
    gc.disable()
    try:
        return fn()
    finally:
        gc.enable()


def chain_table(sizes: list[int], runs: int) -> None:
    # The last column repeats the whole measurement with the cyclic GC off: its full
    # collections walk every live object, so their cost grows with the graph and shows up as
    # a rising µs/layer; with the GC off the time per layer stays flat.
    phases = ("parse", "expand", "shapes", "passes", "json")
    head = "".join(f"{p + ' ms':>11}" for p in phases)
    print(f"\n{'layers':>8}{head}{'total ms':>11}{'µs/layer':>10}{'µs/layer, GC off':>18}")
    for layers in sizes:
        n = runs if layers < 100_000 else max(1, runs // 2)
        t = chain_phases(layers, n)
        total = sum(t.values())
        quiet = sum(without_gc(functools.partial(chain_phases, layers, n)).values())
        cells = "".join(f"{ms(t[p]):>11}" for p in phases)
        print(f"{layers:>8}{cells}{ms(total):>11}{total / layers * 1e6:10.1f}{quiet / layers * 1e6:18.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs; chains up to 10,000 layers")
    args = parser.parse_args()
    runs, shell_runs = (3, 1) if args.quick else (7, 3)
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]

    print(f"archcalc benchmark — Python {sys.version.split()[0]}, "
          f"median of {runs} runs in-process, {shell_runs} from a cold shell")
    print(f"torch imported by `import archcalc.cli` + `archcalc report`: "
          f"{'no' if torch_free_report() else 'YES (a bug: the static path must not import torch)'}")
    zoo_table(runs, shell_runs)
    chain_table(sizes, runs)


if __name__ == "__main__":
    main()
